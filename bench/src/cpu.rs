//! CPU time per process, read from `/proc`, so that every throughput can
//! say where the cores went: the worker, the simulator, the broker, the TSDB,
//! the harness itself, or something else on the machine.

use std::collections::BTreeMap;
use std::time::Instant;

/// A process whose CPU time a scenario accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// Every `ingest-worker` of the scenario, summed.
    Worker,
    /// `factory-sim`.
    Simulator,
    /// RabbitMQ's Erlang VM.
    Broker,
    /// VictoriaMetrics.
    Tsdb,
    /// This harness (publisher, no-op consumer, TSDB client, proxy).
    Harness,
    /// Whatever else ran on the machine (other builds, the kernel's idle
    /// accounting aside).
    Other,
}

impl Component {
    /// Every component, in the order tables list them.
    pub const ALL: [Component; 6] = [
        Component::Worker,
        Component::Simulator,
        Component::Broker,
        Component::Tsdb,
        Component::Harness,
        Component::Other,
    ];

    /// Short name for keys and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Worker => "worker",
            Component::Simulator => "simulator",
            Component::Broker => "broker",
            Component::Tsdb => "tsdb",
            Component::Harness => "harness",
            Component::Other => "other",
        }
    }
}

/// The processes to watch, found once per measurement.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    pids: Vec<(Component, u32)>,
    ticks_per_second: f64,
}

/// One reading of every watched process and of the machine.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    seconds: BTreeMap<Component, f64>,
    machine_busy: f64,
}

/// CPU seconds each component used between two samples, and the wall time.
#[derive(Debug, Clone, Default)]
pub struct CpuUse {
    /// Wall-clock seconds between the samples.
    pub wall: f64,
    /// CPU seconds per component.
    pub seconds: BTreeMap<Component, f64>,
}

impl CpuUse {
    /// CPU seconds of one component.
    pub fn of(&self, component: Component) -> f64 {
        self.seconds.get(&component).copied().unwrap_or(0.0)
    }

    /// Cores kept busy on average, all components together.
    pub fn busy_cores(&self) -> f64 {
        self.seconds.values().sum::<f64>() / self.wall.max(1e-9)
    }
}

impl CpuMeter {
    /// Watches the broker and the TSDB (found by process name), the
    /// simulator, the harness and the given workers.
    pub fn new(simulator: u32, workers: &[u32]) -> Self {
        let mut pids = vec![
            (Component::Simulator, simulator),
            (Component::Harness, std::process::id()),
        ];
        pids.extend(workers.iter().map(|&pid| (Component::Worker, pid)));
        pids.extend(find_by_name("beam.smp").map(|pid| (Component::Broker, pid)));
        pids.extend(find_by_name("victoria-metric").map(|pid| (Component::Tsdb, pid)));
        Self {
            pids,
            ticks_per_second: ticks_per_second(),
        }
    }

    /// Reads every watched process now.
    pub fn sample(&self) -> CpuSample {
        let mut seconds = BTreeMap::new();
        for &(component, pid) in &self.pids {
            let ticks = process_ticks(pid).unwrap_or(0);
            *seconds.entry(component).or_insert(0.0) += ticks as f64 / self.ticks_per_second;
        }
        CpuSample {
            at: Instant::now(),
            seconds,
            machine_busy: machine_busy_ticks().unwrap_or(0) as f64 / self.ticks_per_second,
        }
    }
}

impl CpuSample {
    /// What each component used since `earlier`. `Other` is the machine's
    /// busy time that no watched process accounts for.
    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        let mut seconds = BTreeMap::new();
        for (&component, &now) in &self.seconds {
            let before = earlier.seconds.get(&component).copied().unwrap_or(0.0);
            seconds.insert(component, (now - before).max(0.0));
        }
        let watched: f64 = seconds.values().sum();
        let machine = self.machine_busy - earlier.machine_busy;
        seconds.insert(Component::Other, (machine - watched).max(0.0));
        CpuUse {
            wall: self.at.duration_since(earlier.at).as_secs_f64(),
            seconds,
        }
    }
}

/// User plus system ticks of a process (fields 14 and 15 of its `stat`).
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after
    // the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Busy ticks of the whole machine: every `cpu` column but idle and iowait.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let columns: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|c| c.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let busy = columns.iter().take(8).enumerate();
    Some(
        busy.filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, t)| t)
            .sum(),
    )
}

/// Processes whose `comm` starts with `name` (it is cut at 15 bytes).
fn find_by_name(name: &str) -> impl Iterator<Item = u32> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let name = name.to_owned();
    entries.filter_map(move |entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        comm.trim().starts_with(&name).then_some(pid)
    })
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), 100 when it
/// cannot be asked, which is its value on every common Linux build.
fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_can_read_its_own_cpu_time() {
        assert!(process_ticks(std::process::id()).is_some());
        assert!(machine_busy_ticks().is_some());
    }
}
