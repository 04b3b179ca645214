//! Circuit breakers for the factory API and the TSDB: after enough
//! consecutive failed jobs blamed on one dependency, the worker stops
//! consuming until that dependency answers again, instead of pushing every
//! job through its retries while it is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::watch;

use crate::error::Dependency;

/// The breakers of both dependencies and a signal that fires when either opens.
#[derive(Debug, Clone)]
pub struct Circuits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    threshold: u32,
    factory: Breaker,
    tsdb: Breaker,
    open: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: AtomicU32,
    open: AtomicBool,
}

impl Circuits {
    /// Breakers that open after `threshold` consecutive failures.
    pub fn new(threshold: u32) -> Self {
        let (open, _) = watch::channel(false);
        for dependency in [Dependency::Factory, Dependency::Tsdb] {
            metrics::gauge!("ingest_circuit_open", "dependency" => dependency.as_str()).set(0.0);
        }
        Self {
            inner: Arc::new(Inner {
                threshold,
                factory: Breaker::default(),
                tsdb: Breaker::default(),
                open,
            }),
        }
    }

    fn breaker(&self, dependency: Dependency) -> &Breaker {
        match dependency {
            Dependency::Factory => &self.inner.factory,
            Dependency::Tsdb => &self.inner.tsdb,
        }
    }

    /// A job got through both dependencies.
    pub fn record_success(&self) {
        for breaker in [&self.inner.factory, &self.inner.tsdb] {
            breaker.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// A job failed because `dependency` looks down. Returns whether its
    /// circuit is open now (it may have been open already).
    pub fn record_outage(&self, dependency: Dependency) -> bool {
        let breaker = self.breaker(dependency);
        let failures = breaker.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.inner.threshold && !breaker.open.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                dependency = dependency.as_str(),
                failures,
                "circuit opened; consuming pauses until the dependency answers"
            );
            metrics::gauge!("ingest_circuit_open", "dependency" => dependency.as_str()).set(1.0);
            self.inner.open.send_replace(true);
        }
        breaker.open.load(Ordering::Acquire)
    }

    /// Whether the circuit of `dependency` is open.
    pub fn is_open(&self, dependency: Dependency) -> bool {
        self.breaker(dependency).open.load(Ordering::Acquire)
    }

    /// The dependencies whose circuits are open.
    pub fn open_dependencies(&self) -> Vec<Dependency> {
        [Dependency::Factory, Dependency::Tsdb]
            .into_iter()
            .filter(|&d| self.is_open(d))
            .collect()
    }

    /// Closes the circuit of `dependency` after a successful probe.
    pub fn close(&self, dependency: Dependency) {
        let breaker = self.breaker(dependency);
        breaker.consecutive_failures.store(0, Ordering::Relaxed);
        if breaker.open.swap(false, Ordering::AcqRel) {
            tracing::info!(
                dependency = dependency.as_str(),
                "circuit closed; consuming resumes"
            );
            metrics::gauge!("ingest_circuit_open", "dependency" => dependency.as_str()).set(0.0);
        }
        if self.open_dependencies().is_empty() {
            self.inner.open.send_replace(false);
        }
    }

    /// A receiver that sees `true` whenever any circuit is open.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.inner.open.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_a_success_resets_the_count() {
        let circuits = Circuits::new(3);
        assert!(!circuits.record_outage(Dependency::Tsdb));
        assert!(!circuits.record_outage(Dependency::Tsdb));
        circuits.record_success();
        assert!(!circuits.record_outage(Dependency::Tsdb));
        assert!(!circuits.record_outage(Dependency::Tsdb));
        assert!(circuits.record_outage(Dependency::Tsdb));
        assert!(*circuits.watch().borrow());
        assert!(!circuits.is_open(Dependency::Factory));
    }

    #[test]
    fn closing_the_last_open_circuit_clears_the_signal() {
        let circuits = Circuits::new(1);
        circuits.record_outage(Dependency::Tsdb);
        circuits.record_outage(Dependency::Factory);
        circuits.close(Dependency::Tsdb);
        assert!(*circuits.watch().borrow());
        circuits.close(Dependency::Factory);
        assert!(!*circuits.watch().borrow());
        assert!(circuits.open_dependencies().is_empty());
    }
}
