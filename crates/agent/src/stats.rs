//! Resource usage of the node and of its pods and containers, as the kubelet reports it.
//!
//! CPU comes from cumulative counters (`/proc/stat` for the node, the cgroup's `cpuacct.usage` or
//! `cpu.stat usage_usec` for pods and containers); the usage in nanocores is the delta between two
//! samples divided by the time between them. Memory is the working set (usage minus inactive file
//! pages), as the kubelet's eviction manager and metrics-server use it. The background sampler
//! ([`Collector::tick`]) keeps the previous sample, like cAdvisor's housekeeping interval.
//!
//! Pods live in the cgroupfs layout the runtime configures: `<controller>/daas/pod<uid>/<container id>`
//! (cgroup v1 controllers `cpuacct` and `memory`, or the v2 unified hierarchy).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::runtime::{ContainerState, Runtime, SandboxState};

/// How often the background sampler takes the base sample of the CPU rates.
pub const SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Relative cgroup of the pod with this uid (see `runtime::cri::CGROUP_ROOT`).
pub fn pod_cgroup(uid: &str) -> String {
    format!("daas/pod{uid}")
}

/// A cumulative CPU counter read at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    /// Cumulative CPU time in nanoseconds.
    pub usage_ns: u64,
    pub at: Instant,
}

/// Usage in nanocores between two samples of the same counter; `None` when the counter went back
/// (the cgroup was recreated) or no time passed.
pub fn usage_nano_cores(prev: &CpuSample, cur: &CpuSample) -> Option<u64> {
    let dt = cur.at.checked_duration_since(prev.at)?.as_nanos();
    if dt == 0 || cur.usage_ns < prev.usage_ns {
        return None;
    }
    let d = (cur.usage_ns - prev.usage_ns) as u128;
    u64::try_from(d * 1_000_000_000 / dt).ok()
}

/// Memory of a cgroup (or the node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemorySample {
    pub usage_bytes: u64,
    pub working_set_bytes: u64,
    pub rss_bytes: u64,
    /// For the node: MemAvailable.
    pub available_bytes: Option<u64>,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

/// Reads cgroup counters under a cgroupfs mount point (normally `/sys/fs/cgroup`).
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
}

impl CgroupFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        CgroupFs { root: root.into() }
    }

    /// The v2 directory of `rel`: the hybrid layout's `unified` mount, or the pure v2 root.
    fn v2_dir(&self, rel: &str) -> Option<PathBuf> {
        [self.root.join("unified").join(rel), self.root.join(rel)]
            .into_iter()
            .find(|d| d.join("cpu.stat").is_file() || d.join("memory.current").is_file())
    }

    /// Cumulative CPU time of the cgroup `rel` in nanoseconds.
    pub fn cpu_usage_ns(&self, rel: &str) -> Option<u64> {
        for ctl in ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"] {
            if let Some(v) = read_u64(&self.root.join(ctl).join(rel).join("cpuacct.usage")) {
                return Some(v);
            }
        }
        let d = self.v2_dir(rel)?;
        let text = std::fs::read_to_string(d.join("cpu.stat")).ok()?;
        stat_field(&text, "usage_usec").map(|us| us.saturating_mul(1000))
    }

    /// Memory usage and working set of the cgroup `rel`.
    pub fn memory(&self, rel: &str) -> Option<MemorySample> {
        let v1 = self.root.join("memory").join(rel);
        if let Some(usage) = read_u64(&v1.join("memory.usage_in_bytes")) {
            let stat = std::fs::read_to_string(v1.join("memory.stat")).unwrap_or_default();
            let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
            return Some(MemorySample {
                usage_bytes: usage,
                working_set_bytes: usage.saturating_sub(inactive),
                rss_bytes: stat_field(&stat, "total_rss").unwrap_or(0),
                available_bytes: None,
            });
        }
        let d = self.v2_dir(rel)?;
        let usage = read_u64(&d.join("memory.current"))?;
        let stat = std::fs::read_to_string(d.join("memory.stat")).unwrap_or_default();
        let inactive = stat_field(&stat, "inactive_file").unwrap_or(0);
        Some(MemorySample {
            usage_bytes: usage,
            working_set_bytes: usage.saturating_sub(inactive),
            rss_bytes: stat_field(&stat, "anon").unwrap_or(0),
            available_bytes: None,
        })
    }
}

/// USER_HZ of `/proc/stat` (100 on every Linux architecture Kubernetes supports).
const USER_HZ: u64 = 100;

/// Busy CPU time of the node in nanoseconds from `/proc/stat` text (all but idle and iowait).
pub fn node_cpu_ns(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    Some(
        total
            .saturating_sub(idle)
            .saturating_mul(1_000_000_000 / USER_HZ),
    )
}

/// The node's memory from `/proc/meminfo` text: working set = total - available.
pub fn node_memory(meminfo: &str) -> Option<MemorySample> {
    let kb = |k: &str| stat_field(meminfo, k).map(|v| v * 1024);
    let total = kb("MemTotal:")?;
    let available = kb("MemAvailable:")?;
    let free = kb("MemFree:").unwrap_or(available);
    let used = total.saturating_sub(available);
    Some(MemorySample {
        usage_bytes: total.saturating_sub(free),
        working_set_bytes: used,
        rss_bytes: kb("AnonPages:").unwrap_or(0),
        available_bytes: Some(available),
    })
}

/// Usage of one container or pod at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub cpu_ns: Option<u64>,
    pub nano_cores: Option<u64>,
    pub memory: Option<MemorySample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStats {
    pub name: String,
    pub start_time: DateTime<Utc>,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodStats {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub start_time: DateTime<Utc>,
    pub usage: Usage,
    pub containers: Vec<ContainerStats>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub node_name: String,
    pub time: DateTime<Utc>,
    pub node: Usage,
    pub pods: Vec<PodStats>,
}

/// Samples the node and its pods; keeps the previous CPU sample of every counter.
pub struct Collector {
    cgroups: CgroupFs,
    proc_root: PathBuf,
    prev: Mutex<HashMap<String, CpuSample>>,
}

impl Collector {
    pub fn new(cgroup_root: impl Into<PathBuf>, proc_root: impl Into<PathBuf>) -> Self {
        Collector {
            cgroups: CgroupFs::new(cgroup_root),
            proc_root: proc_root.into(),
            prev: Mutex::new(HashMap::new()),
        }
    }

    /// The host's `/sys/fs/cgroup` and `/proc`.
    pub fn host() -> Self {
        Collector::new("/sys/fs/cgroup", "/proc")
    }

    fn usage(
        &self,
        key: &str,
        cpu_ns: Option<u64>,
        memory: Option<MemorySample>,
        at: Instant,
        remember: bool,
    ) -> Usage {
        let mut prev = self.prev.lock().unwrap_or_else(|e| e.into_inner());
        let cur = cpu_ns.map(|usage_ns| CpuSample { usage_ns, at });
        let nano_cores = match (prev.get(key), cur.as_ref()) {
            (Some(p), Some(c)) => usage_nano_cores(p, c),
            _ => None,
        };
        if let Some(c) = cur {
            // The first sample of a counter is kept even at scrape time, so the next one has a rate.
            if remember || !prev.contains_key(key) {
                prev.insert(key.to_string(), c);
            }
        }
        Usage {
            cpu_ns,
            nano_cores,
            memory,
        }
    }

    /// Reads every counter now. With `remember`, the samples become the base of the next rates
    /// (the background sampler); a scrape computes rates against them without moving them.
    pub async fn collect(&self, node_name: &str, runtime: &dyn Runtime, remember: bool) -> Summary {
        let at = Instant::now();
        let stat = std::fs::read_to_string(self.proc_root.join("stat")).unwrap_or_default();
        let meminfo = std::fs::read_to_string(self.proc_root.join("meminfo")).unwrap_or_default();
        let node = self.usage(
            "node",
            node_cpu_ns(&stat),
            node_memory(&meminfo),
            at,
            remember,
        );
        let mut pods = Vec::new();
        let listed = runtime.list_pods().await.unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        for p in listed.iter().filter(|p| p.state == SandboxState::Ready) {
            let Ok(st) = runtime.pod_status(&p.uid).await else {
                continue;
            };
            let pod_rel = pod_cgroup(&p.uid);
            let mut containers = Vec::new();
            for c in &st.containers {
                let ContainerState::Running { started_at } = c.state else {
                    continue;
                };
                let id = c.container_id.rsplit("://").next().unwrap_or_default();
                if id.is_empty() {
                    continue;
                }
                let rel = format!("{pod_rel}/{id}");
                let key = format!("c/{}/{}", p.uid, c.name);
                seen.insert(key.clone());
                let usage = self.usage(
                    &key,
                    self.cgroups.cpu_usage_ns(&rel),
                    self.cgroups.memory(&rel),
                    at,
                    remember,
                );
                containers.push(ContainerStats {
                    name: c.name.clone(),
                    start_time: started_at,
                    usage,
                });
            }
            let key = format!("p/{}", p.uid);
            seen.insert(key.clone());
            let usage = self.usage(
                &key,
                self.cgroups.cpu_usage_ns(&pod_rel),
                self.cgroups.memory(&pod_rel),
                at,
                remember,
            );
            pods.push(PodStats {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid.clone(),
                start_time: p.created_at,
                usage,
                containers,
            });
        }
        if remember {
            // Forget counters of pods and containers that are gone.
            let mut prev = self.prev.lock().unwrap_or_else(|e| e.into_inner());
            prev.retain(|k, _| k == "node" || seen.contains(k));
        }
        Summary {
            node_name: node_name.to_string(),
            time: Utc::now(),
            node,
            pods,
        }
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn usage_json(u: &Usage, time: &str) -> (Value, Value) {
    let mut cpu = json!({"time": time});
    if let Some(n) = u.nano_cores {
        cpu["usageNanoCores"] = json!(n);
    }
    if let Some(n) = u.cpu_ns {
        cpu["usageCoreNanoSeconds"] = json!(n);
    }
    let mut mem = json!({"time": time});
    if let Some(m) = &u.memory {
        mem["usageBytes"] = json!(m.usage_bytes);
        mem["workingSetBytes"] = json!(m.working_set_bytes);
        mem["rssBytes"] = json!(m.rss_bytes);
        if let Some(a) = m.available_bytes {
            mem["availableBytes"] = json!(a);
        }
    }
    (cpu, mem)
}

impl Summary {
    /// The kubelet's Summary API (`/stats/summary`, stats/v1alpha1) shape.
    pub fn to_json(&self) -> Value {
        let time = ts(&self.time);
        let (cpu, memory) = usage_json(&self.node, &time);
        let pods: Vec<Value> = self
            .pods
            .iter()
            .map(|p| {
                let (cpu, memory) = usage_json(&p.usage, &time);
                let containers: Vec<Value> = p
                    .containers
                    .iter()
                    .map(|c| {
                        let (cpu, memory) = usage_json(&c.usage, &time);
                        json!({"name": c.name, "startTime": ts(&c.start_time), "cpu": cpu, "memory": memory})
                    })
                    .collect();
                json!({
                    "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                    "startTime": ts(&p.start_time),
                    "containers": containers,
                    "cpu": cpu,
                    "memory": memory,
                })
            })
            .collect();
        json!({
            "node": {"nodeName": self.node_name, "cpu": cpu, "memory": memory},
            "pods": pods,
        })
    }

    /// The kubelet's `/metrics/resource` (Prometheus text format, with sample timestamps).
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write;
        let ms = self.time.timestamp_millis();
        let secs = |ns: u64| ns as f64 / 1e9;
        let esc = |v: &str| {
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v} {ms}");
            }
        };
        let cl = |p: &PodStats, c: &ContainerStats| {
            format!(
                "{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}}",
                esc(&c.name),
                esc(&p.namespace),
                esc(&p.name)
            )
        };
        let pl = |p: &PodStats| {
            format!(
                "{{namespace=\"{}\",pod=\"{}\"}}",
                esc(&p.namespace),
                esc(&p.name)
            )
        };
        let containers = || {
            self.pods
                .iter()
                .flat_map(|p| p.containers.iter().map(move |c| (p, c)))
        };
        family(
            "container_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
            "counter",
            containers()
                .filter_map(|(p, c)| Some((cl(p, c), secs(c.usage.cpu_ns?))))
                .collect(),
        );
        family(
            "container_memory_working_set_bytes",
            "[STABLE] Current working set of the container in bytes",
            "gauge",
            containers()
                .filter_map(|(p, c)| Some((cl(p, c), c.usage.memory?.working_set_bytes as f64)))
                .collect(),
        );
        family(
            "container_start_time_seconds",
            "[STABLE] Start time of the container since unix epoch in seconds",
            "gauge",
            containers()
                .map(|(p, c)| (cl(p, c), c.start_time.timestamp() as f64))
                .collect(),
        );
        family(
            "node_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
            "counter",
            self.node
                .cpu_ns
                .map(|n| (String::new(), secs(n)))
                .into_iter()
                .collect(),
        );
        family(
            "node_memory_working_set_bytes",
            "[STABLE] Current working set of the node in bytes",
            "gauge",
            self.node
                .memory
                .map(|m| (String::new(), m.working_set_bytes as f64))
                .into_iter()
                .collect(),
        );
        family(
            "pod_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
            "counter",
            self.pods
                .iter()
                .filter_map(|p| Some((pl(p), secs(p.usage.cpu_ns?))))
                .collect(),
        );
        family(
            "pod_memory_working_set_bytes",
            "[STABLE] Current working set of the pod in bytes",
            "gauge",
            self.pods
                .iter()
                .filter_map(|p| Some((pl(p), p.usage.memory?.working_set_bytes as f64)))
                .collect(),
        );
        let _ = writeln!(
            out,
            "# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 0"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nano_cores_from_deltas() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(500);
        let a = CpuSample {
            usage_ns: 1_000_000_000,
            at: t0,
        };
        // Half a second of one busy core = 1 core = 1e9 nanocores.
        let b = CpuSample {
            usage_ns: 1_500_000_000,
            at: t1,
        };
        assert_eq!(usage_nano_cores(&a, &b), Some(1_000_000_000));
        // 50 ms of CPU in 500 ms = 100m.
        let c = CpuSample {
            usage_ns: 1_050_000_000,
            at: t1,
        };
        assert_eq!(usage_nano_cores(&a, &c), Some(100_000_000));
        // A recreated cgroup (counter went back) and no elapsed time give no rate.
        let reset = CpuSample {
            usage_ns: 10,
            at: t1,
        };
        assert_eq!(usage_nano_cores(&a, &reset), None);
        assert_eq!(usage_nano_cores(&a, &a), None);
        assert_eq!(usage_nano_cores(&b, &a), None);
    }

    #[test]
    fn node_counters_from_proc() {
        let stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        // busy = 100+5+50+3+2 = 160 ticks = 1.6 s.
        assert_eq!(node_cpu_ns(stat), Some(1_600_000_000));
        assert_eq!(node_cpu_ns("intr 1 2"), None);
        let mem = "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    600 kB\nAnonPages: 100 kB\n";
        let m = node_memory(mem).expect("meminfo");
        assert_eq!(m.working_set_bytes, 400 * 1024);
        assert_eq!(m.available_bytes, Some(600 * 1024));
        assert_eq!(m.usage_bytes, 800 * 1024);
        assert!(node_memory("MemTotal: 5 kB\n").is_none());
    }

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, s).expect("write");
    }

    #[test]
    fn cgroup_v1_and_v2_counters() {
        let d = tempfile::tempdir().expect("tempdir");
        let v1 = CgroupFs::new(d.path());
        let rel = "daas/podu1/abc";
        write(
            &d.path().join("cpuacct").join(rel).join("cpuacct.usage"),
            "123456\n",
        );
        write(
            &d.path()
                .join("memory")
                .join(rel)
                .join("memory.usage_in_bytes"),
            "1000\n",
        );
        write(
            &d.path().join("memory").join(rel).join("memory.stat"),
            "cache 10\ntotal_rss 700\ntotal_inactive_file 300\n",
        );
        assert_eq!(v1.cpu_usage_ns(rel), Some(123456));
        let m = v1.memory(rel).expect("memory");
        assert_eq!(
            (m.usage_bytes, m.working_set_bytes, m.rss_bytes),
            (1000, 700, 700)
        );
        assert_eq!(v1.cpu_usage_ns("daas/missing"), None);

        let d2 = tempfile::tempdir().expect("tempdir");
        let v2 = CgroupFs::new(d2.path());
        write(
            &d2.path().join("unified").join(rel).join("cpu.stat"),
            "usage_usec 42\nuser_usec 40\n",
        );
        write(
            &d2.path().join("unified").join(rel).join("memory.current"),
            "5000\n",
        );
        write(
            &d2.path().join("unified").join(rel).join("memory.stat"),
            "anon 4000\ninactive_file 1000\n",
        );
        assert_eq!(v2.cpu_usage_ns(rel), Some(42_000));
        assert_eq!(v2.memory(rel).map(|m| m.working_set_bytes), Some(4000));
    }

    #[tokio::test]
    async fn collector_rates_between_samples() {
        use crate::runtime::{fake::FakeRuntime, PodSpecLite};
        let cg = tempfile::tempdir().expect("tempdir");
        let proc_dir = tempfile::tempdir().expect("tempdir");
        write(&proc_dir.path().join("stat"), "cpu  100 0 0 1000 0 0 0 0\n");
        write(
            &proc_dir.path().join("meminfo"),
            "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\n",
        );
        let rt = FakeRuntime::new();
        let spec = PodSpecLite {
            uid: "u1".into(),
            namespace: "default".into(),
            name: "busy".into(),
            containers: vec![crate::runtime::ContainerSpecLite {
                name: "main".into(),
                image: "busybox".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        rt.run_pod(&spec).await.expect("run");
        let st = rt.pod_status("u1").await.expect("status");
        let id = st.containers[0]
            .container_id
            .rsplit("://")
            .next()
            .expect("id")
            .to_string();
        let crel = format!("daas/podu1/{id}");
        write(
            &cg.path().join("cpuacct").join(&crel).join("cpuacct.usage"),
            "0",
        );
        write(&cg.path().join("cpuacct/daas/podu1/cpuacct.usage"), "0");
        write(
            &cg.path()
                .join("memory")
                .join(&crel)
                .join("memory.usage_in_bytes"),
            "2048",
        );
        let c = Collector::new(cg.path(), proc_dir.path());
        let first = c.collect("n1", &rt, true).await;
        assert_eq!(first.pods.len(), 1);
        assert_eq!(first.pods[0].containers[0].usage.nano_cores, None);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // 100 ms of CPU during >= 100 ms: close to (at most) one core.
        write(
            &cg.path().join("cpuacct").join(&crel).join("cpuacct.usage"),
            "100000000",
        );
        write(&proc_dir.path().join("stat"), "cpu  110 0 0 1000 0 0 0 0\n");
        let second = c.collect("n1", &rt, false).await;
        let n = second.pods[0].containers[0].usage.nano_cores.expect("rate");
        assert!(n > 100_000_000 && n <= 1_000_000_000, "{n}");
        assert!(second.node.nano_cores.expect("node rate") > 0);
        assert_eq!(second.pods[0].usage.nano_cores, Some(0));
        let js = second.to_json();
        assert_eq!(js["pods"][0]["podRef"]["name"], "busy");
        assert_eq!(
            js["pods"][0]["containers"][0]["memory"]["workingSetBytes"],
            2048
        );
        assert_eq!(js["node"]["memory"]["availableBytes"], 500 * 1024);
        let text = second.to_prometheus();
        assert!(text.contains("container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"busy\"} 2048 "), "{text}");
        assert!(text.contains("container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"busy\"} 0.1 "), "{text}");
        assert!(
            text.contains("\nnode_memory_working_set_bytes 512000 "),
            "{text}"
        );
    }
}
