//! A small client of the RabbitMQ management HTTP API: queues, exchanges and
//! bindings of the vhost named in the AMQP URL.

use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Map, Value};

use ingest_shared::SecretUrl;

use crate::cli::Password;

/// Where and how to reach the management API.
#[derive(Debug, Clone)]
pub struct ManagementConfig {
    /// Base URL, e.g. `http://127.0.0.1:15672` (`--management-url`).
    pub base_url: String,
    /// User (`--management-user`).
    pub user: String,
    /// Password (`--management-password`), never printed.
    pub password: Password,
    /// The AMQP URL, whose path names the vhost (`/%2f` or none means `/`).
    pub amqp_url: SecretUrl,
}

/// A management API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// The AMQP URL does not parse, so no vhost can be read from it.
    #[error("cannot read the vhost from the AMQP URL {url}")]
    BadAmqpUrl {
        /// The URL, password redacted.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The request could not be made or its answer read.
    #[error("management API request GET {url} failed")]
    Request {
        /// The URL requested.
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error status.
    #[error("management API answered {status} to GET {url}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// The start of the answer's body.
        body: String,
    },
}

/// One queue as the management API describes it (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// `classic`, `quorum` or `stream`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Whether it survives a broker restart.
    #[serde(default)]
    pub durable: bool,
    /// The `x-` arguments it was declared with.
    #[serde(default)]
    pub arguments: Map<String, Value>,
    /// Messages ready for delivery.
    #[serde(default)]
    pub messages_ready: u64,
    /// Messages delivered and not yet acknowledged.
    #[serde(default)]
    pub messages_unacknowledged: u64,
    /// Consumers attached.
    #[serde(default)]
    pub consumers: u64,
    /// Rates, absent until the queue saw traffic.
    #[serde(default)]
    pub message_stats: MessageStats,
}

/// Message rates of a queue, per second, over the API's sampling window.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageStats {
    /// Publishes into the queue.
    #[serde(default)]
    pub publish_details: Rate,
    /// Deliveries and gets out of the queue.
    #[serde(default)]
    pub deliver_get_details: Rate,
    /// Acknowledgements.
    #[serde(default)]
    pub ack_details: Rate,
}

/// One rate.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Rate {
    /// Messages per second.
    #[serde(default)]
    pub rate: f64,
}

/// The API client, bound to one vhost.
#[derive(Debug, Clone)]
pub struct ManagementClient {
    http: reqwest::Client,
    config: ManagementConfig,
    vhost_path: String,
}

impl ManagementClient {
    /// A client for the vhost of the configured AMQP URL.
    pub fn new(config: ManagementConfig) -> Result<Self, ManagementError> {
        let vhost = vhost_of(&config.amqp_url)?;
        Ok(Self {
            http: reqwest::Client::new(),
            vhost_path: encode(&vhost),
            config,
        })
    }

    /// `GET /api/queues/{vhost}/{name}`; `None` when the queue does not exist.
    pub async fn queue(&self, name: &str) -> Result<Option<QueueInfo>, ManagementError> {
        self.get(&format!("queues/{}/{}", self.vhost_path, encode(name)))
            .await
    }

    /// `GET /api/exchanges/{vhost}/{name}`; `None` when it does not exist.
    pub async fn exchange(&self, name: &str) -> Result<Option<Value>, ManagementError> {
        self.get(&format!("exchanges/{}/{}", self.vhost_path, encode(name)))
            .await
    }

    /// `GET /api/bindings/{vhost}/e/{exchange}/q/{queue}`: the bindings
    /// between them (empty when either is missing).
    pub async fn bindings(
        &self,
        exchange: &str,
        queue: &str,
    ) -> Result<Vec<Value>, ManagementError> {
        let path = format!(
            "bindings/{}/e/{}/q/{}",
            self.vhost_path,
            encode(exchange),
            encode(queue)
        );
        Ok(self.get(&path).await?.unwrap_or_default())
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, ManagementError> {
        let url = format!("{}/api/{path}", self.config.base_url.trim_end_matches('/'));
        let request_failed = |source| ManagementError::Request {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .get(&url)
            .basic_auth(&self.config.user, Some(self.config.password.expose()))
            .send()
            .await
            .map_err(request_failed)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ManagementError::Status {
                url,
                status,
                body: body.chars().take(200).collect(),
            });
        }
        response.json().await.map(Some).map_err(request_failed)
    }
}

/// The vhost an AMQP URL names: its path without the leading `/`,
/// percent-decoded; no path means `/`.
pub fn vhost_of(amqp_url: &SecretUrl) -> Result<String, ManagementError> {
    let url = url::Url::parse(amqp_url.expose()).map_err(|source| ManagementError::BadAmqpUrl {
        url: amqp_url.to_string(),
        source,
    })?;
    let path = url.path().trim_start_matches('/');
    if path.is_empty() {
        return Ok("/".into());
    }
    Ok(percent_decode_str(path).decode_utf8_lossy().into_owned())
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhosts_come_from_the_url_path() {
        let vhost = |url: &str| vhost_of(&url.parse().unwrap()).unwrap();
        assert_eq!(vhost("amqp://u:p@h:5672/%2f"), "/");
        assert_eq!(vhost("amqp://u:p@h:5672"), "/");
        assert_eq!(vhost("amqp://u:p@h:5672/fleet"), "fleet");
        assert_eq!(encode("/"), "%2F");
        assert_eq!(encode("t-1.ingest.jobs"), "t%2D1%2Eingest%2Ejobs");
    }
}
