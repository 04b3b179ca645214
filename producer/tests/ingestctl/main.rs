//! Integration tests of `ingestctl` against the real broker on 127.0.0.1
//! (RabbitMQ with the management plugin). Each test has its own topology
//! prefix and deletes it at the end, so tests run in parallel.

mod dlq;
mod enqueue;
mod helpers;
mod replay;
mod status;
