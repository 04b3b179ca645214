//! Connecting to RabbitMQ with a name that shows in the management UI.

use lapin::{Connection, ConnectionProperties};

use crate::secret::SecretUrl;

/// Opens a connection, naming it `name` for the broker's connection list.
pub async fn connect(url: &SecretUrl, name: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url.expose(), properties).await
}
