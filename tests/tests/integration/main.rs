//! Integration tests against the real broker and the real TSDB. One binary,
//! one fleet (prefix, devices, simulator, workers) per test.

mod ingestion;
mod observability;
