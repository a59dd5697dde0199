//! Process series in the names every Prometheus exporter uses (`process_*`), read from
//! `/proc/self` at scrape time, and `wsgate_build_info`. Linux only: elsewhere the collector
//! exports nothing (the `process_*` names are a Linux convention of the client libraries).
//!
//! Reads files, never calls into libc: CPU and start times are in `USER_HZ` ticks, which the
//! kernel fixes at 100 for every userspace interface on every architecture it supports
//! (`sysconf(_SC_CLK_TCK)` would answer 100), and the resident size comes from `VmRSS` in kB,
//! so no page size is needed. A file that cannot be read leaves its series out of that scrape.
//!
//! Does not own the registry or the HTTP answer: [`super::Metrics`] and `crate::admin` do.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use super::names::{self, Name};

/// Kernel ticks per second in `/proc` (`USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// `process_cpu_seconds` (a counter: scraped with `_total`).
pub const CPU_SECONDS: Name = Name {
    name: "process_cpu_seconds",
    help: "Total user and system CPU time spent in seconds",
};
/// Resident set size.
pub const RESIDENT_MEMORY: Name = Name {
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes",
};
/// Open file descriptors.
pub const OPEN_FDS: Name = Name {
    name: "process_open_fds",
    help: "Number of open file descriptors",
};
/// The soft `RLIMIT_NOFILE`.
pub const MAX_FDS: Name = Name {
    name: "process_max_fds",
    help: "Maximum number of open file descriptors",
};
/// Unix time the process started.
pub const START_TIME: Name = Name {
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds",
};

/// The process series' names as scraped (counters with `_total`).
pub const SCRAPED: &[&str] = &[
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuildLabels {
    version: &'static str,
}

impl BuildLabels {
    /// This build's labels.
    pub(super) fn this() -> BuildLabels {
        BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// A family holding the one build-info series at 1.
pub(super) fn build_info(r: &mut Registry) -> Family<BuildLabels, Gauge> {
    let family: Family<BuildLabels, Gauge> =
        super::register(r, names::BUILD_INFO, &Family::default());
    family.get_or_create(&BuildLabels::this()).set(1);
    family
}

/// Reads `/proc/self` on every scrape.
#[derive(Debug, Default)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(now) = snapshot() else {
            return Ok(());
        };
        if let Some(cpu) = now.cpu_seconds {
            let counter = ConstCounter::new(cpu);
            let m = encoder.encode_descriptor(
                CPU_SECONDS.name,
                CPU_SECONDS.help,
                None,
                counter.metric_type(),
            )?;
            counter.encode(m)?;
        }
        let gauges = [
            (RESIDENT_MEMORY, now.resident_bytes),
            (OPEN_FDS, now.open_fds),
            (MAX_FDS, now.max_fds),
            (START_TIME, now.start_time),
        ];
        for (name, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                let m =
                    encoder.encode_descriptor(name.name, name.help, None, gauge.metric_type())?;
                gauge.encode(m)?;
            }
        }
        Ok(())
    }
}

/// One reading of the process; a field is `None` when its file could not be read or parsed.
#[derive(Debug, Default)]
struct Snapshot {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    start_time: Option<f64>,
}

#[cfg(target_os = "linux")]
fn snapshot() -> Option<Snapshot> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let stat = read("/proc/self/stat");
    let fields = stat.as_deref().and_then(stat_fields);
    let ticks = |i: usize| -> Option<f64> { fields.as_ref()?.get(i)?.parse::<f64>().ok() };
    let cpu_seconds =
        (ticks(13).zip(ticks(14))).map(|(user, system)| (user + system) / TICKS_PER_SECOND);
    let boot = read("/proc/stat").as_deref().and_then(boot_time);
    let start_time = boot.zip(ticks(21)).map(|(b, t)| b + t / TICKS_PER_SECOND);
    Some(Snapshot {
        cpu_seconds,
        resident_bytes: read("/proc/self/status")
            .as_deref()
            .and_then(resident_bytes),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as f64),
        max_fds: read("/proc/self/limits")
            .as_deref()
            .and_then(max_open_files),
        start_time,
    })
}

#[cfg(not(target_os = "linux"))]
fn snapshot() -> Option<Snapshot> {
    None
}

/// The fields of `/proc/self/stat` after the command name, numbered as in proc(5) minus one
/// (index 0 is `pid`): the name sits in parentheses and may hold spaces and `)`, so the split
/// starts after its last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (head, rest) = stat.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?;
    let mut fields = vec![pid, "comm"];
    fields.extend(rest.split_whitespace());
    Some(fields)
}

/// `btime` of `/proc/stat`: boot time in Unix seconds.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// `VmRSS:` of `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<f64> {
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

/// The soft limit of `Max open files` in `/proc/self/limits` (`unlimited` reads as none).
fn max_open_files(limits: &str) -> Option<f64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parens_does_not_shift_the_fields() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1234 0";
        let f = stat_fields(stat).expect("fields");
        assert_eq!(f[0], "42");
        assert_eq!(f[2], "S");
        assert_eq!((f[13], f[14], f[21]), ("250", "50", "1234"));
    }

    #[test]
    fn limits_status_and_btime_parse() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(
            resident_bytes("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2048.0 * 1024.0)
        );
        assert_eq!(boot_time("cpu 1 2\nbtime 1700000000\n"), Some(1.7e9));
    }
}
