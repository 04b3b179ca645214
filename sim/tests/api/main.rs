//! Integration tests of the simulator over real HTTP: each test starts its
//! own server on an ephemeral port with `factory_sim::spawn`.

mod faults;
mod helpers;
mod readings;
mod stats;
