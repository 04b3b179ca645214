//! Starting and stopping the HTTP server, in a binary or inside a test.

use axum::Router;
use axum::routing::{delete, get, post};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::faults::{DeviceCorruption, DeviceFailure, FaultError, FaultSettings, FaultsSnapshot};
use crate::state::SimState;
use crate::stats::StatsSnapshot;
use crate::{admin, api};

/// Serves the simulator on `listener` until the process ends.
///
/// Fails at once with [`io::ErrorKind::InvalidInput`] when `config` is not
/// valid.
pub async fn serve(listener: TcpListener, config: SimConfig) -> io::Result<()> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves the simulator on `listener` until `shutdown` completes, then
/// finishes the requests in flight and returns.
///
/// Fails at once with [`io::ErrorKind::InvalidInput`] when `config` is not
/// valid.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let state = Arc::new(SimState::new(&config).map_err(invalid_config)?);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts a simulator on an ephemeral port of 127.0.0.1, serving from a
/// tokio task, for tests that run it in-process.
///
/// Fails with [`io::ErrorKind::InvalidInput`] when `config` is not valid.
pub async fn spawn(config: SimConfig) -> io::Result<SimHandle> {
    let state = Arc::new(SimState::new(&config).map_err(invalid_config)?);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();

    let app = router(Arc::clone(&state));
    let signal = shutdown.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await
    });

    Ok(SimHandle {
        addr,
        state,
        shutdown,
        task: Some(task),
    })
}

/// A simulator running in-process; dropping it stops the server.
///
/// Besides the HTTP admin API, the handle changes faults and reads counters
/// directly, which saves a test an HTTP round trip.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's base URL, such as `http://127.0.0.1:41234`, without a
    /// trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every fault in force, as `GET /admin/faults` answers.
    pub fn faults(&self) -> FaultsSnapshot {
        self.state.faults.snapshot()
    }

    /// Replaces the global fault settings, as `PUT /admin/faults` does.
    pub fn set_faults(&self, settings: FaultSettings) -> Result<(), FaultError> {
        self.state.faults.set_global(settings)
    }

    /// Fails the next requests for `device`, as
    /// `POST /admin/devices/{device}/fail` does.
    pub fn fail_device(&self, device: &str, failure: DeviceFailure) -> Result<(), FaultError> {
        self.state.faults.fail_device(device, failure)
    }

    /// Corrupts readings of `device`, as
    /// `POST /admin/devices/{device}/corrupt` does.
    pub fn corrupt_device(
        &self,
        device: &str,
        corruption: DeviceCorruption,
    ) -> Result<(), FaultError> {
        self.state.faults.corrupt_device(device, corruption)
    }

    /// Clears every fault, as `DELETE /admin/faults` does.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// The counters, as `GET /stats` answers.
    pub fn stats(&self) -> StatsSnapshot {
        self.state.stats.snapshot()
    }

    /// Clears every fault and zeroes the counters, as `POST /admin/reset`
    /// does.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stops accepting connections, waits for the requests in flight, and
    /// returns the server's result.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // The task finishes the requests in flight on its own; a test that
        // needs it gone first calls `shutdown().await`.
        self.shutdown.cancel();
    }
}

/// Every route of the simulator.
fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/devices/{device}/readings", get(api::get_readings))
        .route("/healthz", get(api::healthz))
        .route("/stats", get(api::get_stats))
        .route(
            "/admin/faults",
            get(admin::get_faults)
                .put(admin::put_faults)
                .delete(admin::delete_faults),
        )
        .route("/admin/devices/{device}/fail", post(admin::fail_device))
        .route(
            "/admin/devices/{device}/corrupt",
            post(admin::corrupt_device),
        )
        .route("/admin/devices/{device}", delete(admin::clear_device))
        .route("/admin/reset", post(admin::reset))
        .with_state(state)
}

fn invalid_config(error: crate::config::ConfigError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error)
}
