//! Watching the simulated factory API from a test: when its requests came.

use std::time::Duration;

use factory_sim::SimHandle;
use tokio::time::Instant;

/// How often [`wait_for_requests`] looks at the counters: the error of the
/// instants it returns.
pub const REQUEST_POLL: Duration = Duration::from_millis(5);

/// Waits until the simulator has counted `count` reading requests and
/// returns when it saw that, at most [`REQUEST_POLL`] after it happened.
/// Panics after `timeout`.
pub async fn wait_for_requests(sim: &SimHandle, count: u64, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        let seen = sim.stats().requests;
        if seen >= count {
            return now;
        }
        assert!(
            now < deadline,
            "the factory got {seen} of {count} requests within {timeout:?}"
        );
        tokio::time::sleep(REQUEST_POLL).await;
    }
}
