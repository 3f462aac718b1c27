//! Metering: integrate each pod's use from its node's stats summary (the kubelet Summary API
//! shape the agents serve) into per-(namespace, node) accumulators for the current settlement
//! period, counting only intervals in which the node's heartbeat was verified.
//!
//! Per observation of a node at time `now` after its previous verified observation at `prev`
//! (`dt = now - prev`):
//! - CPU: the delta of the pod's cumulative `cpu.usageCoreNanoSeconds` (a counter that went down
//!   was reset, so it counts from zero; a pod new on a node already observed counts from zero);
//! - memory: `memory.workingSetBytes` x `dt` (byte-milliseconds);
//! - pod time: `dt` (capped at the pod's age for a pod that started within the interval);
//! - the node's verified uptime: `dt`.
//!
//! A node whose heartbeat is not verified (Ready not True, not staked) or whose summary is
//! missing accrues nothing and loses its baseline, so the gap is never billed: the next verified
//! observation only sets a new baseline. Accumulators keep raw units (ns, byte-ms, ms) and
//! [`Meter::take`] converts with floor division, carrying the remainders into the next period,
//! so nothing is lost to rounding across periods.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde_json::Value;

/// Nanoseconds per CPU-millisecond.
const NS_PER_MS: u128 = 1_000_000;
/// Byte-milliseconds per MiB-second.
const BYTE_MS_PER_MIB_S: u128 = 1024 * 1024 * 1000;

/// A node as the meter sees it at one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub name: String,
    /// The node's heartbeat is verified: Ready=True (a Lease renewed with the node's seal token)
    /// and it is backed by an active stake.
    pub verified: bool,
}

/// Why stats could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("listing nodes: {0}")]
    Nodes(#[from] daas_apiserver::ApiError),
}

/// Where the meter reads nodes and their summaries (the real one asks the agents through the
/// node proxy; tests script it).
#[async_trait]
pub trait StatsSource: Send + Sync {
    async fn nodes(&self) -> Result<Vec<NodeState>, StatsError>;
    /// The node's `/stats/summary` (None when it did not answer).
    async fn summary(&self, node: &str) -> Option<Value>;
}

/// Raw usage of one (namespace, node) in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Raw {
    pub cpu_ns: u128,
    pub mem_byte_ms: u128,
    pub pod_ms: u128,
}

impl Raw {
    fn add(&mut self, o: &Raw) {
        self.cpu_ns = self.cpu_ns.saturating_add(o.cpu_ns);
        self.mem_byte_ms = self.mem_byte_ms.saturating_add(o.mem_byte_ms);
        self.pod_ms = self.pod_ms.saturating_add(o.pod_ms);
    }

    /// Whole units (CPU-ms, MiB-s, pod-s) and what is left over.
    pub fn units(&self) -> (Units, Raw) {
        let u = Units {
            cpu_ms: clamp(self.cpu_ns / NS_PER_MS),
            mem_mib_s: clamp(self.mem_byte_ms / BYTE_MS_PER_MIB_S),
            pod_s: clamp(self.pod_ms / 1000),
        };
        let rest = Raw {
            cpu_ns: self.cpu_ns - u128::from(u.cpu_ms) * NS_PER_MS,
            mem_byte_ms: self.mem_byte_ms - u128::from(u.mem_mib_s) * BYTE_MS_PER_MIB_S,
            pod_ms: self.pod_ms - u128::from(u.pod_s) * 1000,
        };
        (u, rest)
    }
}

fn clamp(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Usage in the units the ledger prices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Units {
    pub cpu_ms: u64,
    pub mem_mib_s: u64,
    pub pod_s: u64,
}

impl Units {
    pub fn is_zero(&self) -> bool {
        self.cpu_ms == 0 && self.mem_mib_s == 0 && self.pod_s == 0
    }
}

/// One metered (namespace, node) of a period, in whole units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteredLine {
    pub namespace: String,
    pub node: String,
    pub units: Units,
}

/// What one period metered: usage lines and each node's verified uptime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metered {
    pub lines: Vec<MeteredLine>,
    pub uptime_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy)]
struct PodBase {
    cpu_ns: u64,
}

#[derive(Debug, Default)]
struct NodeBase {
    at_ms: u64,
    pods: HashMap<String, PodBase>,
}

/// Which namespaces are billed: user namespaces (`u-` + 16 hex digits); system and admin
/// namespaces are not.
pub fn billed_namespace(ns: &str) -> bool {
    ns.strip_prefix("u-")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The per-period accumulators.
#[derive(Debug, Default)]
pub struct Meter {
    nodes: HashMap<String, NodeBase>,
    usage: BTreeMap<(String, String), Raw>,
    uptime_ms: BTreeMap<String, u64>,
}

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget a node's baseline (its heartbeat is not verified now, or it did not answer).
    pub fn unverified(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// Integrate one verified observation of `node` at `now_ms`.
    pub fn observe(&mut self, node: &str, now_ms: u64, summary: &Value) {
        let prev = self.nodes.remove(node);
        let mut base = NodeBase {
            at_ms: now_ms,
            pods: HashMap::new(),
        };
        let dt = prev
            .as_ref()
            .map(|p| now_ms.saturating_sub(p.at_ms))
            .unwrap_or(0);
        for pod in summary["pods"].as_array().into_iter().flatten() {
            let ns = pod["podRef"]["namespace"].as_str().unwrap_or("");
            let uid = pod["podRef"]["uid"].as_str().unwrap_or("");
            if uid.is_empty() {
                continue;
            }
            let cpu = pod["cpu"]["usageCoreNanoSeconds"].as_u64();
            if let Some(c) = cpu {
                base.pods.insert(uid.to_string(), PodBase { cpu_ns: c });
            }
            let Some(prev) = &prev else { continue };
            if dt == 0 || !billed_namespace(ns) {
                continue;
            }
            // A counter that went down was reset; a pod new on this node counts from zero.
            let cpu_ns = match (cpu, prev.pods.get(uid)) {
                (Some(c), Some(b)) if c >= b.cpu_ns => c - b.cpu_ns,
                (Some(c), _) => c,
                (None, _) => 0,
            };
            let age_ms = pod["startTime"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| now_ms.saturating_sub(u64::try_from(t.timestamp_millis()).unwrap_or(0)));
            let pod_ms = match (prev.pods.contains_key(uid), age_ms) {
                (false, Some(age)) => dt.min(age),
                _ => dt,
            };
            let ws = pod["memory"]["workingSetBytes"].as_u64().unwrap_or(0);
            let add = Raw {
                cpu_ns: u128::from(cpu_ns),
                mem_byte_ms: u128::from(ws) * u128::from(pod_ms),
                pod_ms: u128::from(pod_ms),
            };
            self.usage
                .entry((ns.to_string(), node.to_string()))
                .or_default()
                .add(&add);
        }
        if prev.is_some() && dt > 0 {
            let u = self.uptime_ms.entry(node.to_string()).or_default();
            *u = u.saturating_add(dt);
        }
        self.nodes.insert(node.to_string(), base);
    }

    /// One metering pass over `source` at `now_ms`.
    pub async fn pass(&mut self, source: &dyn StatsSource, now_ms: u64) -> Result<(), StatsError> {
        let nodes = source.nodes().await?;
        let known: std::collections::HashSet<&str> =
            nodes.iter().map(|n| n.name.as_str()).collect();
        self.nodes.retain(|n, _| known.contains(n.as_str()));
        for n in &nodes {
            if !n.verified {
                self.unverified(&n.name);
                continue;
            }
            match source.summary(&n.name).await {
                Some(s) => self.observe(&n.name, now_ms, &s),
                None => self.unverified(&n.name),
            }
        }
        Ok(())
    }

    /// The current period's usage so far, in whole units (for the Usage objects).
    pub fn peek(&self) -> Metered {
        Metered {
            lines: self
                .usage
                .iter()
                .map(|((ns, node), raw)| MeteredLine {
                    namespace: ns.clone(),
                    node: node.clone(),
                    units: raw.units().0,
                })
                .filter(|l| !l.units.is_zero())
                .collect(),
            uptime_ms: self.uptime_ms.clone(),
        }
    }

    /// End the period: its whole units, with the sub-unit remainders kept for the next one.
    pub fn take(&mut self) -> Metered {
        let mut lines = Vec::new();
        let mut rest = BTreeMap::new();
        for ((ns, node), raw) in std::mem::take(&mut self.usage) {
            let (units, r) = raw.units();
            if !units.is_zero() {
                lines.push(MeteredLine {
                    namespace: ns.clone(),
                    node: node.clone(),
                    units,
                });
            }
            if r != Raw::default() {
                rest.insert((ns, node), r);
            }
        }
        self.usage = rest;
        Metered {
            lines,
            uptime_ms: std::mem::take(&mut self.uptime_ms),
        }
    }

    /// Put a period's usage back (its settlement was refused or not attempted): it is carried
    /// into the next report, never lost.
    pub fn restore(&mut self, m: &Metered) {
        for l in &m.lines {
            self.usage
                .entry((l.namespace.clone(), l.node.clone()))
                .or_default()
                .add(&Raw {
                    cpu_ns: u128::from(l.units.cpu_ms) * NS_PER_MS,
                    mem_byte_ms: u128::from(l.units.mem_mib_s) * BYTE_MS_PER_MIB_S,
                    pod_ms: u128::from(l.units.pod_s) * 1000,
                });
        }
        for (n, u) in &m.uptime_ms {
            let e = self.uptime_ms.entry(n.clone()).or_default();
            *e = e.saturating_add(*u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    const NS: &str = "u-0123456789abcdef";
    const MIB: u64 = 1024 * 1024;

    fn summary(pods: &[(&str, &str, u64, u64)]) -> Value {
        let pods: Vec<Value> = pods
            .iter()
            .map(|(ns, uid, cpu, ws)| {
                json!({"podRef": {"name": uid, "namespace": ns, "uid": uid},
                    "startTime": "2020-01-01T00:00:00Z",
                    "cpu": {"usageCoreNanoSeconds": cpu},
                    "memory": {"workingSetBytes": ws}})
            })
            .collect();
        json!({"node": {"nodeName": "n"}, "pods": pods})
    }

    #[test]
    fn integrates_cpu_memory_and_pod_time() {
        let mut m = Meter::new();
        m.observe("n1", 0, &summary(&[(NS, "a", 5_000_000_000, 10 * MIB)]));
        // 10 s later: 2 CPU-seconds more, 10 MiB working set.
        m.observe(
            "n1",
            10_000,
            &summary(&[(NS, "a", 7_000_000_000, 10 * MIB)]),
        );
        let r = m.take();
        assert_eq!(
            r.lines,
            vec![MeteredLine {
                namespace: NS.into(),
                node: "n1".into(),
                units: Units {
                    cpu_ms: 2000,
                    mem_mib_s: 100,
                    pod_s: 10
                }
            }]
        );
        assert_eq!(r.uptime_ms.get("n1"), Some(&10_000));
        // The next period starts empty.
        assert_eq!(m.take().lines, vec![]);
    }

    #[test]
    fn counter_reset_counts_from_zero_and_new_pods_from_zero() {
        let mut m = Meter::new();
        m.observe("n1", 0, &summary(&[(NS, "a", 9_000_000_000, 0)]));
        m.observe(
            "n1",
            1000,
            &summary(&[(NS, "a", 3_000_000, 0), (NS, "b", 4_000_000, 0)]),
        );
        let r = m.take();
        assert_eq!(
            r.lines[0].units.cpu_ms, 7,
            "3 ms after the reset + 4 ms of the new pod"
        );
    }

    #[test]
    fn system_and_admin_namespaces_are_not_billed() {
        let mut m = Meter::new();
        let s0 = summary(&[("kube-system", "a", 0, MIB), ("default", "b", 0, MIB)]);
        let s1 = summary(&[
            ("kube-system", "a", 9_000_000, MIB),
            ("default", "b", 9_000_000, MIB),
            ("u-xyz", "c", 9_000_000, MIB),
        ]);
        m.observe("n1", 0, &s0);
        m.observe("n1", 5000, &s1);
        assert!(m.take().lines.is_empty());
        assert!(billed_namespace(NS));
        assert!(!billed_namespace("u-0123456789ABCDEFG"));
    }

    #[test]
    fn unverified_intervals_accrue_nothing() {
        let mut m = Meter::new();
        m.observe("n1", 0, &summary(&[(NS, "a", 0, MIB)]));
        // Heartbeat lost: nothing accrues, and the gap is not billed when it comes back.
        m.unverified("n1");
        m.observe("n1", 60_000, &summary(&[(NS, "a", 50_000_000_000, MIB)]));
        let r = m.take();
        assert!(r.lines.is_empty(), "{r:?}");
        assert_eq!(r.uptime_ms.get("n1"), None);
        m.observe("n1", 61_000, &summary(&[(NS, "a", 50_001_000_000, MIB)]));
        let r = m.take();
        assert_eq!(r.lines[0].units.cpu_ms, 1);
        assert_eq!(r.uptime_ms.get("n1"), Some(&1000));
    }

    #[test]
    fn remainders_carry_and_refused_periods_are_restored() {
        let mut m = Meter::new();
        m.observe("n1", 0, &summary(&[(NS, "a", 0, 0)]));
        m.observe("n1", 1500, &summary(&[(NS, "a", 1_500_000, 0)]));
        let first = m.take();
        assert_eq!(first.lines[0].units.cpu_ms, 1);
        assert_eq!(first.lines[0].units.pod_s, 1);
        m.observe("n1", 3000, &summary(&[(NS, "a", 3_000_000, 0)]));
        // Refused: put back, and the next report holds both periods.
        m.restore(&first);
        let both = m.take();
        assert_eq!(both.lines[0].units.cpu_ms, 3);
        assert_eq!(both.lines[0].units.pod_s, 3);
        assert_eq!(both.uptime_ms.get("n1"), Some(&3000));
    }

    struct Script {
        nodes: Vec<NodeState>,
        summaries: Mutex<HashMap<String, Value>>,
    }

    #[async_trait]
    impl StatsSource for Script {
        async fn nodes(&self) -> Result<Vec<NodeState>, StatsError> {
            Ok(self.nodes.clone())
        }
        async fn summary(&self, node: &str) -> Option<Value> {
            self.summaries.lock().unwrap().get(node).cloned()
        }
    }

    #[tokio::test]
    async fn pass_reads_only_verified_nodes() {
        let src = Script {
            nodes: vec![
                NodeState {
                    name: "good".into(),
                    verified: true,
                },
                NodeState {
                    name: "lost".into(),
                    verified: false,
                },
            ],
            summaries: Mutex::new(HashMap::new()),
        };
        let set = |cpu: u64| {
            let mut s = src.summaries.lock().unwrap();
            s.insert("good".into(), summary(&[(NS, "a", cpu, 0)]));
            s.insert("lost".into(), summary(&[(NS, "b", cpu, 0)]));
        };
        let mut m = Meter::new();
        set(0);
        m.pass(&src, 0).await.unwrap();
        set(2_000_000);
        m.pass(&src, 1000).await.unwrap();
        let r = m.take();
        assert_eq!(r.lines.len(), 1);
        assert_eq!(r.lines[0].node, "good");
        assert_eq!(r.lines[0].units.cpu_ms, 2);
        assert_eq!(r.uptime_ms.keys().collect::<Vec<_>>(), vec!["good"]);
    }
}
