//! What the bench reads about processes, the machine and the API server: RSS and CPU time
//! from `/proc/<pid>`, the API server's request counters from its `/metrics`.

use std::time::Duration;

use kube::Client;

/// One reading of a process: resident memory and CPU time used so far.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    /// `VmRSS` from `/proc/<pid>/status`, in KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS), in KiB.
    pub peak_kib: u64,
    /// User + system CPU time from `/proc/<pid>/stat`.
    pub cpu: Duration,
}

impl ProcSample {
    /// Reads `/proc/<pid>`; panics when the process is gone (a bench that lost its subject
    /// must not print figures).
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_else(|e| panic!("reading /proc/{pid}/stat: {e}"));
        // The command name (field 2) may hold spaces; the fields after its ')' are plain.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3.
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Self {
            rss_kib: kib("VmRSS:"),
            peak_kib: kib("VmHWM:"),
            cpu: Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64),
        }
    }

    /// RSS in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    /// Peak RSS in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// `sysconf(_SC_CLK_TCK)`, the unit of `/proc/<pid>/stat` times, from `getconf`.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The machine the figures were taken on: cores, CPU model, memory, load.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{cores} cores ({model}), {mem_gib:.0} GiB RAM, load average {}",
        load()
    )
}

/// The 1, 5 and 15 minute load averages.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Requests the API server has answered so far, from its `/metrics`
/// (`apiserver_request_total`): all of them, and the writes among them; and the CPU it has
/// used (`process_cpu_seconds_total`, which a managed cluster may not expose).
#[derive(Clone, Debug, Default)]
pub struct ApiRequests {
    /// The API server's CPU seconds, when its metrics tell.
    pub cpu_seconds: Option<f64>,
    /// Every request.
    pub total: f64,
    /// POST, PUT, PATCH, APPLY and DELETE requests.
    pub writes: f64,
    /// The writes by verb and resource (`PATCH gitrepositories/status`; dry runs marked).
    pub writes_by_resource: std::collections::BTreeMap<String, f64>,
}

/// The value of label `name` in the label text of a sample (`verb="PATCH",...`).
fn label<'a>(labels: &'a str, name: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\""))
        .and_then(|value| value.split('"').next())
        .unwrap_or_default()
}

impl ApiRequests {
    /// Reads the counters now.
    pub async fn read(client: &Client) -> Self {
        let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
        let text = client
            .request_text(request)
            .await
            .expect("the API server's /metrics");
        let mut counts = Self::default();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("process_cpu_seconds_total ") {
                counts.cpu_seconds = value.trim().parse().ok();
                continue;
            }
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            counts.total += value;
            let writing = [
                "POST",
                "PUT",
                "PATCH",
                "APPLY",
                "DELETE",
                "DELETECOLLECTION",
            ]
            .iter()
            .any(|verb| rest.contains(&format!("verb=\"{verb}\"")));
            if writing {
                counts.writes += value;
                let labels = rest.rsplit_once('}').map_or("", |(labels, _)| labels);
                let subresource = label(labels, "subresource");
                let key = format!(
                    "{} {}{}{}{}",
                    label(labels, "verb"),
                    label(labels, "resource"),
                    if subresource.is_empty() { "" } else { "/" },
                    subresource,
                    if label(labels, "dry_run").is_empty() {
                        ""
                    } else {
                        " (dry run)"
                    },
                );
                *counts.writes_by_resource.entry(key).or_default() += value;
            }
        }
        counts
    }

    /// The requests between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        let writes_by_resource = self
            .writes_by_resource
            .iter()
            .map(|(key, n)| {
                let before = earlier.writes_by_resource.get(key).copied().unwrap_or(0.0);
                (key.clone(), n - before)
            })
            .filter(|(_, n)| *n > 0.0)
            .collect();
        Self {
            cpu_seconds: self
                .cpu_seconds
                .zip(earlier.cpu_seconds)
                .map(|(now, before)| now - before),
            total: self.total - earlier.total,
            writes: self.writes - earlier.writes,
            writes_by_resource,
        }
    }

    /// The writes by verb and resource, e.g. `APPLY configmaps 2000, PATCH events 51`.
    pub fn writes_summary(&self) -> String {
        self.writes_by_resource
            .iter()
            .map(|(key, n)| format!("{key} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
