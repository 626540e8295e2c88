//! The standard `process_*` metrics, read from Linux `/proc`.

use crate::collector::{Collector, CollectorOutput};

/// Exposes the standard process metrics that Prometheus' own client
/// libraries export, with the same names:
///
/// | metric | source |
/// |---|---|
/// | `process_cpu_seconds_total` | utime + stime, `/proc/self/stat` |
/// | `process_resident_memory_bytes` | `VmRSS`, `/proc/self/status` |
/// | `process_virtual_memory_bytes` | `VmSize`, `/proc/self/status` |
/// | `process_open_fds` | entries of `/proc/self/fd` |
/// | `process_max_fds` | soft `Max open files`, `/proc/self/limits` |
/// | `process_start_time_seconds` | starttime + `btime` of `/proc/stat` |
/// | `process_threads` | `Threads`, `/proc/self/status` |
///
/// On other systems, or when `/proc` cannot be read, the affected metrics
/// are left out of the scrape (never a made-up zero).
///
/// ```
/// use cortex_metrics::{Format, MetricsRegistry, ProcessCollector};
///
/// let registry = MetricsRegistry::new();
/// registry.register_collector(ProcessCollector::new());
/// let text = registry.encode(Format::Prometheus);
/// if cfg!(target_os = "linux") {
///     assert!(text.contains("process_resident_memory_bytes "));
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessCollector {
    _private: (),
}

/// Linux reports times in "USER_HZ" ticks; the kernel ABI fixes it at 100
/// on every architecture Rust targets (it is what procps and the Go client
/// assume too).
const TICKS_PER_SECOND: f64 = 100.0;

impl ProcessCollector {
    /// A collector for the current process.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Collector for ProcessCollector {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let stat = stat.as_deref().and_then(parse_stat);
        if let Some(stat) = &stat {
            out.counter(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                (stat.utime + stat.stime) as f64 / TICKS_PER_SECOND,
            );
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(kib) = status_field(&status, "VmRSS:") {
                out.gauge(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                    (kib * 1024) as f64,
                );
            }
            if let Some(kib) = status_field(&status, "VmSize:") {
                out.gauge(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                    (kib * 1024) as f64,
                );
            }
            if let Some(threads) = status_field(&status, "Threads:") {
                out.gauge(
                    "process_threads",
                    "Number of OS threads in the process.",
                    threads as f64,
                );
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The read_dir handle itself is one of the entries.
            let open = dir.count().saturating_sub(1);
            out.gauge(
                "process_open_fds",
                "Number of open file descriptors.",
                open as f64,
            );
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .as_deref()
            .and_then(parse_max_fds)
        {
            out.gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                max,
            );
        }
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .as_deref()
            .and_then(parse_boot_time);
        if let (Some(stat), Some(boot)) = (&stat, boot) {
            out.gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                boot as f64 + stat.start_ticks as f64 / TICKS_PER_SECOND,
            );
        }
    }
}

#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
}

/// Fields after the command name, which sits in parentheses and may itself
/// contain spaces and parentheses, hence the search for the last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
    })
}

fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn parse_max_fds(limits: &str) -> Option<f64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(f64::INFINITY)
    } else {
        soft.parse::<u64>().ok().map(|v| v as f64)
    }
}

fn parse_boot_time(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("btime "))?;
    line["btime ".len()..].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_hostile_command_names() {
        let line = "1234 (evil) name (x) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 9000 1000 200";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                utime: 250,
                stime: 50,
                start_ticks: 9000
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) R 1"), None);
    }

    #[test]
    fn limits_and_status_parsing() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024.0));
        assert_eq!(
            status_field("VmRSS:\t  5120 kB\nThreads:\t4\n", "VmRSS:"),
            Some(5120)
        );
        assert_eq!(status_field("Threads:\t4\n", "Threads:"), Some(4));
        assert_eq!(
            parse_boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn registering_twice_or_over_a_taken_name_keeps_the_exposition_valid() {
        let registry = crate::MetricsRegistry::new();
        registry.gauge("process_threads", "mine").unwrap().set(7);
        registry.register_collector(ProcessCollector::new());
        registry.register_collector(ProcessCollector::new());
        let text = registry.encode(crate::Format::Prometheus);
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            assert_eq!(
                text.matches(&format!("{line}\n")).count(),
                1,
                "duplicate {line}"
            );
        }
        assert!(text.contains("\nprocess_threads 7\n"), "{text}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exposes_every_standard_process_metric_on_linux() {
        let registry = crate::MetricsRegistry::new();
        registry.register_collector(ProcessCollector::new());
        let text = registry.encode(crate::Format::Prometheus);
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "process_threads",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
    }
}
