//! A stand-in for the TSDB on loopback. In `Slow` mode it answers every
//! write 204 after a fixed delay without storing anything (the legacy
//! database's speed); in `Stamp` mode it forwards each write to the real
//! TSDB and notes, per device, when the TSDB answered (the latency run).

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio_util::sync::{CancellationToken, DropGuard};

/// What the proxy does with a write.
#[derive(Debug, Clone)]
pub enum ProxyMode {
    /// Answers 204 after the delay; stores nothing.
    Slow(Duration),
    /// Forwards to this write URL and stamps the answer with the device.
    Stamp(String),
}

/// One write the proxy answered.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    /// When its request arrived.
    pub arrived: Instant,
    /// When the proxy had its answer (after the delay, or from the TSDB).
    pub answered: Instant,
    /// `machine_id` of its first line (`Stamp` mode only).
    pub device: Option<String>,
}

struct ProxyState {
    mode: ProxyMode,
    http: reqwest::Client,
    writes: Mutex<Vec<WriteRecord>>,
}

/// A running proxy; stopped when dropped.
pub struct TsdbProxy {
    state: Arc<ProxyState>,
    addr: SocketAddr,
    _stop: DropGuard,
}

impl TsdbProxy {
    /// Starts a proxy on an ephemeral loopback port.
    pub async fn start(mode: ProxyMode) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the TSDB proxy")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ProxyState {
            mode,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .tcp_nodelay(true)
                .build()?,
            writes: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/write", post(write))
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(Self {
            state,
            addr,
            _stop: stop.drop_guard(),
        })
    }

    /// The write URL to give the worker.
    pub fn write_url(&self) -> String {
        format!("http://{}/write", self.addr)
    }

    /// Every write answered so far.
    pub fn writes(&self) -> Vec<WriteRecord> {
        lock(&self.state.writes).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock only ever interrupts a `push`; the list
    // is still whole.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn write(
    State(state): State<Arc<ProxyState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    let (status, device) = match &state.mode {
        ProxyMode::Slow(delay) => {
            tokio::time::sleep(*delay).await;
            (StatusCode::NO_CONTENT, None)
        }
        ProxyMode::Stamp(url) => {
            let device = first_device(&body, &headers);
            (
                forward(&state.http, url, query, &headers, body).await,
                device,
            )
        }
    };
    lock(&state.writes).push(WriteRecord {
        arrived,
        answered: Instant::now(),
        device,
    });
    status
}

async fn forward(
    http: &reqwest::Client,
    url: &str,
    query: Option<String>,
    headers: &HeaderMap,
    body: Bytes,
) -> StatusCode {
    let url = match query {
        Some(query) => format!("{url}?{query}"),
        None => url.to_owned(),
    };
    let mut request = http.post(url).body(body);
    if let Some(encoding) = headers.get("content-encoding") {
        request = request.header("content-encoding", encoding);
    }
    match request.send().await {
        Ok(response) => {
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        Err(_) => StatusCode::BAD_GATEWAY,
    }
}

/// The `machine_id` tag of the body's first line, decompressing only the
/// first few hundred bytes.
fn first_device(body: &[u8], headers: &HeaderMap) -> Option<String> {
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let mut head = vec![0; 512];
    let read = if gzip {
        let mut decoder = flate2::read::MultiGzDecoder::new(body);
        let mut filled = 0;
        while filled < head.len() {
            match decoder.read(&mut head[filled..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => filled += n,
            }
        }
        filled
    } else {
        let n = body.len().min(head.len());
        head[..n].copy_from_slice(&body[..n]);
        n
    };
    let text = std::str::from_utf8(&head[..read]).ok()?;
    let line = text.lines().next()?;
    let value = &line[line.find("machine_id=")? + "machine_id=".len()..];
    let end = value.find([',', ' ']).unwrap_or(value.len());
    Some(value[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_device_is_read_from_a_gzipped_first_line() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder
            .write_all(b"machine_reading,cell=c,machine_id=dev-7,zone=z t=1.0 1\n")
            .unwrap();
        let body = encoder.finish().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-encoding", "gzip".parse().unwrap());
        assert_eq!(first_device(&body, &headers).as_deref(), Some("dev-7"));
    }
}
