//! The Gherkin features under `features/`, run against the real broker and
//! TSDB. Steps stay thin: they call the harness in `ingest_tests`.

mod steps;

use cucumber::World as _;
use steps::FleetWorld;

#[tokio::main]
async fn main() {
    let features = concat!(env!("CARGO_MANIFEST_DIR"), "/../features");
    FleetWorld::cucumber()
        .max_concurrent_scenarios(4)
        .fail_on_skipped()
        .after(|_, _, _, _, world| {
            Box::pin(async move {
                if let Some(world) = world
                    && let Some(fleet) = world.fleet.take()
                {
                    fleet.clean_up().await;
                }
            })
        })
        .run_and_exit(features)
        .await;
}
