//! The worker's per-reading path on its own, for profilers: parses factory
//! pages into line protocol and compresses them into a batch exactly as a
//! job does, with no network, and prints what each step costs per reading.
//!
//! ```sh
//! cargo run --release -p ingest-bench --example encode [pages]
//! valgrind --tool=callgrind target/release/examples/encode 20
//! ```

use std::time::{Duration, Instant};

use backon::ExponentialBuilder;
use chrono::{TimeZone, Utc};
use ingest_worker::store::{Batch, TsdbWriter};
use ingest_worker::transform::encode_page;
use url::Url;

/// Readings per page, as the worker asks for by default.
const PAGE: usize = 1000;

fn main() {
    let pages: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);

    // One page of the simulator's readings, as it would serve it.
    let start = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let end = start + chrono::Duration::seconds(PAGE as i64);
    let readings: Vec<_> =
        factory_sim::readings("press-07", start, end, Duration::from_secs(1)).collect();
    let page = serde_json::to_vec(&serde_json::json!({
        "readings": readings,
        "next_cursor": null,
    }))
    .expect("a page serialises");

    let gzip = TsdbWriter::new(
        reqwest::Client::new(),
        &Url::parse("http://127.0.0.1:8428/write").unwrap(),
        true,
        ExponentialBuilder::default(),
    );

    let mut parse = Duration::ZERO;
    let mut compress = Duration::ZERO;
    let (mut raw_bytes, mut gzip_bytes) = (0, 0);
    for _ in 0..pages {
        let began = Instant::now();
        let mut lines = Vec::with_capacity(page.len() / 2);
        let summary = encode_page(&page, "press-07", &mut lines).expect("the page parses");
        let parsed = Instant::now();
        let mut batch = Batch::default();
        gzip.append(&mut batch, &lines, summary.points as usize)
            .expect("compresses");
        compress += parsed.elapsed();
        parse += parsed - began;
        raw_bytes += lines.len();
        gzip_bytes += batch.take().0.len();
        assert_eq!(summary.points as usize, PAGE);
    }

    let readings = (pages * PAGE) as f64;
    let per = |d: Duration| d.as_secs_f64() * 1e9 / readings;
    println!(
        "{pages} pages of {PAGE} readings ({} bytes of JSON each)",
        page.len()
    );
    println!("  parse + line protocol: {:>6.0} ns/reading", per(parse));
    println!("  gzip (fast):           {:>6.0} ns/reading", per(compress));
    println!(
        "  line protocol {:.0} bytes/reading, gzip {:.1} bytes/reading ({:.1}:1)",
        raw_bytes as f64 / readings,
        gzip_bytes as f64 / readings,
        raw_bytes as f64 / gzip_bytes as f64
    );
}
