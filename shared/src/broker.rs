//! Connecting to RabbitMQ with a name that shows in the management UI and a
//! frame size that keeps the client's buffers small.

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::secret::SecretUrl;

/// The largest AMQP frame a connection asks for when its URL names none
/// (`?frame_max=` overrides it). lapin keeps a read and a write buffer of 32
/// frames per connection, so RabbitMQ's default of 128 KiB would cost 8 MiB
/// per connection; a job or a dead letter (64 KiB of body at most, plus
/// headers) fits in three frames of 32 KiB.
pub const FRAME_MAX: u32 = 32 * 1024;

/// Opens a connection, naming it `name` for the broker's connection list.
pub async fn connect(url: &SecretUrl, name: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    match amqp_uri(url) {
        Some(uri) => Connection::connect_uri(uri, properties).await,
        // lapin refuses a URL it cannot parse, in its own words.
        None => Connection::connect(url.expose(), properties).await,
    }
}

fn amqp_uri(url: &SecretUrl) -> Option<AMQPUri> {
    let mut uri: AMQPUri = url.expose().parse().ok()?;
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    Some(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_small_unless_the_url_asks_for_other() {
        let url = |text: &str| amqp_uri(&SecretUrl::new(text)).unwrap();
        assert_eq!(
            url("amqp://guest:guest@127.0.0.1:5672/%2f").query.frame_max,
            Some(FRAME_MAX)
        );
        assert_eq!(
            url("amqp://127.0.0.1:5672/%2f?frame_max=131072")
                .query
                .frame_max,
            Some(131_072)
        );
    }

    #[test]
    fn a_url_that_is_not_amqp_is_left_to_lapin() {
        assert!(amqp_uri(&SecretUrl::new("http://127.0.0.1:5672")).is_none());
    }
}
