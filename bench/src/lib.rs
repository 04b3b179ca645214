//! The benchmark harness: runs the fleet against the real broker, the real
//! TSDB and the factory simulator, next to the ceilings of the broker and
//! the TSDB measured in the same run, and reports medians with their spread.
//!
//! The modules, in the order a run uses them:
//! - [`config`]: flags, and the sizes of a full or a `--quick` run.
//! - [`plan`]: the jobs each scenario enqueues (devices and ranges).
//! - [`broker`]: declaring, filling and deleting a scenario's queues.
//! - [`fleet`]: the simulator and worker processes, their metrics and memory.
//! - [`cpu`]: CPU time per process, to say where the cores went.
//! - [`proxy`]: the TSDB stand-in that answers late, or forwards and stamps.
//! - [`ceiling`]: the broker's and the TSDB's ceilings, without the worker.
//! - [`drain`]: the worker draining a pre-filled queue.
//! - [`latency`]: enqueue → ack at a paced rate.
//! - [`scenarios`]: every scenario of one repetition, in order.
//! - [`stats`]: medians, spreads and percentiles.
//! - [`report`]: the table, the targets, the JSON and the doc section.
//! - [`plot`]: throughput against in-flight jobs and against workers.

pub mod broker;
pub mod ceiling;
pub mod config;
pub mod cpu;
pub mod drain;
pub mod fleet;
pub mod latency;
pub mod plan;
pub mod plot;
pub mod proxy;
pub mod report;
pub mod scenarios;
pub mod stats;

use std::time::Instant;

use anyhow::Context;

use crate::config::BenchConfig;
use crate::fleet::Sim;
use crate::scenarios::Bench;
use crate::stats::Samples;

/// What a run asks of the caller's exit code: the harness either worked
/// (whatever the targets say) or broke.
#[derive(Debug)]
pub struct RunOutcome {
    /// Targets that were missed in a full run.
    pub missed_targets: usize,
}

/// Runs every scenario `runs` times, then prints and writes the results.
pub async fn run(config: BenchConfig) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    let sizes = config.sizes();
    std::fs::create_dir_all(config.out_dir.join("logs"))
        .with_context(|| format!("creating {}", config.out_dir.display()))?;

    let sim = Sim::start(&config.bin_dir, &config.out_dir.join("logs")).await?;
    let bench = Bench::new(&config, sizes.clone(), &sim).await;
    let result = match bench {
        Ok(bench) => {
            let mut samples = Samples::default();
            let outcome = bench.run_all(&mut samples).await;
            bench.close().await;
            outcome.map(|()| samples)
        }
        Err(err) => Err(err),
    };
    sim.stop().await;
    let samples = result?;

    let report = report::Report::build(&config, &sizes, samples, started.elapsed()).await;
    report.print();
    report.write_json(&config.out_dir)?;
    // Only a whole run may stand for the fleet in the doc: a `--quick` or
    // `--only` run leaves the doc and the plot as they are.
    if !config.quick && config.only.is_empty() {
        plot::draw(&report, &config.plot, &config.font)?;
        report.write_doc(&config.doc)?;
    }
    Ok(RunOutcome {
        missed_targets: report.missed_targets(),
    })
}
