//! Node lifecycle (upstream's node lifecycle controller, plus a slashing guard).
//!
//! A node is *silent* when this controller has not observed a newer Lease `renewTime` in
//! `kube-node-lease` nor a changed Ready `lastHeartbeatTime` for the grace period, measured on the
//! master's monotonic clock from when it saw them ([`health::HealthMap`], upstream's
//! `probeTimestamp`), never by comparing the node-written time with the master's wall clock; a
//! node first seen (and every node when this controller starts) counts from then.
//!
//! A silent node at once becomes Ready=Unknown and gets the `unreachable` NoSchedule taint; a node
//! still heard but reporting Ready=False (e.g. shutting down) gets the `not-ready` one. The
//! NoExecute taint of the same key, which has [`crate::tainteviction`] evict the pods that do not
//! tolerate it (new pods tolerate both for 300 s by default: the API server's
//! DefaultTolerationSeconds admission), goes through the zone's rate limiter
//! (`topology.kubernetes.io/zone`): [`EvictionConfig::eviction_rate`] nodes/s, the secondary rate
//! in a partially disrupted large zone, none in a partially disrupted small one, and none
//! anywhere when every zone is fully disrupted (upstream assumes the master is the one cut off
//! and takes the NoExecute taints off again).
//!
//! Slashing takes real money, so a node is reported to the [`NodeFailureHandler`] (the master
//! slashes its stake) only when (a) its eviction was admitted by the rate limiter (it carries the
//! unreachable NoExecute taint), (b) its zone is not fully disrupted, (c) the master is not lagging
//! ([`health::MasterLag`]: this controller stalled within the last grace period, Lease renewals
//! reach it late, or it hears no node at all), and (d) it has been continuously silent for the
//! grace period plus [`EvictionConfig::slash_delay`]. A deferred report is retried on the next
//! pass, never dropped. A node that is not-ready but heard is never reported. A node heard again
//! and Ready gets its taints removed; one going from unreachable to not-ready or back has its
//! NoExecute taint swapped at once (its eviction was already admitted), as upstream does.

pub mod health;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use health::{Census, Disruption, HealthMap, LagMonitor, ZoneState, Zones};
pub use health::{Clock, EvictionConfig, ManualClock, MonotonicClock};

use crate::informer::Informers;
use crate::util::{self, CORE};
use crate::Controller;

pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// Set when the failure was reported (so it is reported once per outage).
pub const FAILED_ANNOTATION: &str = "k3s-daas.io/failure-reported-at";
const COMPONENT: &str = "node-controller";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
const ALL_LEASES: &str = "/apis/coordination.k8s.io/v1/leases";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Why a node failure could not be reported.
#[derive(Debug, thiserror::Error)]
pub enum NodeFailureError {
    /// The Node object has no name (nothing to report; not retried).
    #[error("node object has no metadata.name")]
    NoName,
    /// No stake backs the node: there is nothing to slash (not retried).
    #[error("no stake holds node {node:?}")]
    NotStaked { node: String },
    /// The handler's backend failed (ledger, enclave not registered yet, ...); retried.
    #[error("{0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl NodeFailureError {
    /// Whether a later pass should report the failure again.
    pub fn retry(&self) -> bool {
        matches!(self, NodeFailureError::Backend(_))
    }
}

/// What happens when a node is declared dead (e.g. a slashing report).
#[async_trait]
pub trait NodeFailureHandler: Send + Sync + 'static {
    /// Called once per outage. A retryable error is logged and the report retried on the next
    /// pass.
    async fn node_failed(&self, node: &Value, reason: &str) -> Result<(), NodeFailureError>;
}

pub struct NodeLifecycleController {
    client: LocalClient,
    /// Where Nodes and Leases are read from: the shared caches in the controller manager (at
    /// 1,000 nodes a direct list of every Node and Lease per pass was its largest cost).
    informers: Informers,
    grace: Duration,
    handler: Option<Arc<dyn NodeFailureHandler>>,
    cfg: EvictionConfig,
    clock: Arc<dyn Clock>,
    health: HealthMap,
    zones: Zones,
    lag: LagMonitor,
    /// The last master lag logged (so a long deferral is logged when it starts, not every pass).
    logged_lag: bool,
}

impl NodeLifecycleController {
    pub fn new(
        client: LocalClient,
        grace: Duration,
        handler: Option<Arc<dyn NodeFailureHandler>>,
    ) -> Self {
        NodeLifecycleController {
            informers: Informers::direct(client.clone()),
            client,
            grace,
            handler,
            cfg: EvictionConfig::default(),
            clock: Arc::new(MonotonicClock),
            health: HealthMap::default(),
            zones: Zones::default(),
            lag: LagMonitor::new(grace),
            logged_lag: false,
        }
    }

    /// Read Nodes and Leases from the shared caches (and write through their client).
    pub fn with_informers(mut self, informers: Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }

    /// The node Leases: from the cluster-wide Lease cache when there is one (caches serve only
    /// cluster-wide collections), else listed in `kube-node-lease`.
    async fn node_leases(&self) -> Result<Vec<Arc<Value>>, ApiError> {
        if self.informers.serves(ALL_LEASES) {
            let all = self.informers.list(ALL_LEASES).await?;
            Ok(all
                .into_iter()
                .filter(|l| l["metadata"]["namespace"] == NODE_LEASE_NAMESPACE)
                .collect())
        } else {
            Ok(self.informers.list(LEASES).await?.into_iter().collect())
        }
    }

    /// Eviction rates, zone thresholds and the slash delay.
    pub fn with_eviction(mut self, cfg: EvictionConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// The monotonic clock silence is measured on (tests inject a [`ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// What a node's health calls for: the taints of this controller it must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Heard within the grace period and Ready (or not saying otherwise): none.
    Healthy,
    /// Heard, but reporting Ready=False (e.g. shutting down): `not-ready`.
    NotReady,
    /// Silent for longer than the grace period: `unreachable`.
    Unreachable,
}

impl Health {
    /// The key of its taints, and of the other state's (which it replaces).
    fn keys(self) -> Option<(&'static str, &'static str)> {
        match self {
            Health::Healthy => None,
            Health::NotReady => Some((NOT_READY_TAINT, UNREACHABLE_TAINT)),
            Health::Unreachable => Some((UNREACHABLE_TAINT, NOT_READY_TAINT)),
        }
    }
}

fn has(node: &Value, key: &str, effect: &str) -> bool {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| ts.iter().any(|t| t["key"] == key && t["effect"] == effect))
        .unwrap_or(false)
}

/// The unreachable taint with `effect`.
fn has_taint(node: &Value, effect: &str) -> bool {
    has(node, UNREACHABLE_TAINT, effect)
}

/// Whether the node carries any taint of this controller.
fn has_lifecycle_taint(node: &Value) -> bool {
    [UNREACHABLE_TAINT, NOT_READY_TAINT]
        .iter()
        .any(|k| has(node, k, "NoSchedule") || has(node, k, "NoExecute"))
}

/// The node's taints without this controller's taints of `effects` (both keys).
fn taints_without(node: &Value, effects: &[&str]) -> Vec<Value> {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter(|t| {
                    !((t["key"] == UNREACHABLE_TAINT || t["key"] == NOT_READY_TAINT)
                        && effects.iter().any(|e| t["effect"] == *e))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn taints_without_lifecycle(node: &Value) -> Vec<Value> {
    taints_without(node, &["NoSchedule", "NoExecute"])
}

/// The node's taints with `key`'s taint of `effect`, replacing this controller's other taint of
/// that effect (upstream swaps not-ready and unreachable in one update).
fn taints_with(node: &Value, key: &str, effect: &str) -> Vec<Value> {
    let mut taints = taints_without(node, &[effect]);
    taints.push(json!({"key": key, "effect": effect, "timeAdded": util::now_rfc3339()}));
    taints
}

fn ready_status(node: &Value) -> &str {
    util::condition(node, "Ready")
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

/// One node as seen in this pass.
struct Seen {
    node: Arc<Value>,
    zone: String,
    silent: Duration,
}

impl Seen {
    fn health(&self, grace: Duration) -> Health {
        if self.silent > grace {
            Health::Unreachable
        } else if ready_status(&self.node) == "False" {
            Health::NotReady
        } else {
            Health::Healthy
        }
    }
}

#[async_trait]
impl Controller for NodeLifecycleController {
    fn name(&self) -> &'static str {
        "node-lifecycle"
    }

    /// None: a pass runs every second (upstream's `--node-monitor-period`, 5 s), not on every
    /// Lease renewal (100 a second at 1,000 nodes).
    fn watches(&self) -> Vec<String> {
        Vec::new()
    }

    fn informers(&self) -> Option<&Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let now = self.clock.now();
        if let Some(gap) = self.lag.pass(now) {
            tracing::warn!(
                gap_s = gap.as_secs_f64(),
                "node lifecycle controller stalled (master overloaded or stopped): every node gets a fresh grace period and slashing waits"
            );
            self.health.reset_all(now);
        }
        let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
        let leases = self.node_leases().await?;
        let wall = Utc::now();
        let renewals: HashMap<&str, Option<chrono::DateTime<Utc>>> = leases
            .iter()
            .map(|l| (util::name(l), util::parse_time(&l["spec"]["renewTime"])))
            .collect();
        let names: std::collections::HashSet<String> =
            nodes.iter().map(|n| util::name(n).to_string()).collect();
        self.health.retain(|n| names.contains(n));

        // Observe every node and take each zone's census.
        let mut seen = Vec::with_capacity(nodes.len());
        let mut census: HashMap<String, Census> = HashMap::new();
        for node in nodes {
            let name = util::name(&node).to_string();
            if name.is_empty() {
                continue;
            }
            let renew = renewals.get(name.as_str()).copied().flatten();
            let heartbeat = util::condition(&node, "Ready")
                .and_then(|c| c["lastHeartbeatTime"].as_str())
                .map(str::to_string);
            let silent = self
                .health
                .observe(&name, renew, heartbeat.as_deref(), wall, now);
            let zone = health::zone_of(&node);
            let c = census.entry(zone.clone()).or_default();
            if silent <= self.grace && ready_status(&node) == "True" {
                c.ready += 1;
            } else {
                c.not_ready += 1;
            }
            seen.push(Seen { node, zone, silent });
        }

        // Zone states and their eviction rates (upstream handleDisruption).
        match self.zones.update(&census, &self.cfg, now) {
            Disruption::Entered => {
                tracing::warn!(
                    nodes = seen.len(),
                    "no node is Ready in any zone: assuming the master is cut off, stopping all evictions and slashing"
                );
                for s in &mut seen {
                    if has_taint(&s.node, "NoExecute") || has(&s.node, NOT_READY_TAINT, "NoExecute")
                    {
                        let path = format!("{CORE}/nodes/{}", util::name(&s.node));
                        let taints = taints_without(&s.node, &["NoExecute"]);
                        s.node = Arc::new(
                            self.client
                                .merge_patch(&path, &json!({"spec": {"taints": taints}}))
                                .await?,
                        );
                    }
                }
            }
            Disruption::Exited => {
                tracing::info!("some node is Ready again: leaving master disruption mode, every node gets a fresh grace period");
                self.health.reset_all(now);
                for s in &mut seen {
                    s.silent = Duration::ZERO;
                }
            }
            Disruption::None => {}
        }

        // Taint by health: NoSchedule at once (upstream doNoScheduleTaintingPass); NoExecute
        // through the zone's rate limiter, or at once when it replaces the other lifecycle
        // taint's NoExecute (an eviction already admitted for this outage).
        let grace = self.grace;
        for s in &mut seen {
            let name = util::name(&s.node).to_string();
            let path = format!("{CORE}/nodes/{name}");
            let health = s.health(grace);
            if health == Health::Unreachable && ready_status(&s.node) != "Unknown" {
                tracing::warn!(node = %name, silent_s = s.silent.as_secs(), "node stopped renewing its lease");
                let msg = "Kubelet stopped posting node status.";
                let cond = json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": msg,
                    "lastHeartbeatTime": node_last_heartbeat(&s.node), "lastTransitionTime": util::now_rfc3339()});
                let mut conds: Vec<Value> = s.node["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                conds.retain(|c| c["type"] != "Ready");
                conds.push(cond);
                self.client
                    .merge_patch(
                        &format!("{path}/status"),
                        &json!({"status": {"conditions": conds}}),
                    )
                    .await?;
                let _ = util::record_event(
                    &self.client,
                    &s.node,
                    "Normal",
                    "NodeNotReady",
                    &format!("Node {name} status is now: NodeNotReady"),
                    COMPONENT,
                )
                .await;
            }
            let reported = !s.node["metadata"]["annotations"][FAILED_ANNOTATION].is_null();
            let Some((key, other)) = health.keys() else {
                if has_lifecycle_taint(&s.node) || reported {
                    // Back: heard within the grace period and not reporting Ready=False.
                    self.zones.remove(&name);
                    let taints = taints_without_lifecycle(&s.node);
                    s.node = Arc::new(self
                        .client
                        .merge_patch(&path, &json!({"metadata": {"annotations": {FAILED_ANNOTATION: null}}, "spec": {"taints": taints}}))
                        .await?);
                    let _ = util::record_event(
                        &self.client,
                        &s.node,
                        "Normal",
                        "NodeReady",
                        &format!("Node {name} status is now: NodeReady"),
                        COMPONENT,
                    )
                    .await;
                }
                continue;
            };
            if health == Health::NotReady && reported {
                // Heard again after its failure was reported: a new outage gets a new report.
                s.node = Arc::new(
                    self.client
                        .merge_patch(
                            &path,
                            &json!({"metadata": {"annotations": {FAILED_ANNOTATION: null}}}),
                        )
                        .await?,
                );
            }
            if !has(&s.node, key, "NoSchedule") || has(&s.node, other, "NoSchedule") {
                let taints = taints_with(&s.node, key, "NoSchedule");
                s.node = Arc::new(
                    self.client
                        .merge_patch(&path, &json!({"spec": {"taints": taints}}))
                        .await?,
                );
            }
            if has(&s.node, other, "NoExecute") {
                tracing::info!(node = %name, from = other, to = key, "swapping the node's NoExecute taint");
                let taints = taints_with(&s.node, key, "NoExecute");
                s.node = Arc::new(
                    self.client
                        .merge_patch(&path, &json!({"spec": {"taints": taints}}))
                        .await?,
                );
            } else if !has(&s.node, key, "NoExecute") {
                self.zones.enqueue(&s.zone, &name);
            }
        }

        // NoExecute taints as the zones' rate limiters admit them (upstream
        // doNoExecuteTaintingPass); the taint eviction controller then evicts the pods that do
        // not tolerate it (or whose tolerationSeconds ran out).
        let waiting: HashMap<String, &'static str> = seen
            .iter()
            .filter_map(|s| {
                let (key, _) = s.health(grace).keys()?;
                (!has(&s.node, key, "NoExecute")).then(|| (util::name(&s.node).to_string(), key))
            })
            .collect();
        for name in self.zones.admit(now, |n| waiting.contains_key(n)) {
            let (Some(s), Some(key)) = (
                seen.iter_mut().find(|s| util::name(&s.node) == name),
                waiting.get(&name).copied(),
            ) else {
                continue;
            };
            tracing::warn!(node = %name, zone = %s.zone, taint = key, silent_s = s.silent.as_secs(), "eviction admitted: tainting the node NoExecute");
            let taints = taints_with(&s.node, key, "NoExecute");
            s.node = Arc::new(
                self.client
                    .merge_patch(
                        &format!("{CORE}/nodes/{name}"),
                        &json!({"spec": {"taints": taints}}),
                    )
                    .await?,
            );
        }

        self.report_failures(&seen, now).await?;
        // Check again when the quietest healthy node would cross the grace period.
        Ok(Some(Duration::from_secs(1)))
    }
}

impl NodeLifecycleController {
    /// The slashing guard: report a node only when its eviction was admitted, its zone is not
    /// fully disrupted, it has been silent for grace + slash delay, and the master is not
    /// lagging. Deferred reports are retried on the next pass.
    async fn report_failures(
        &mut self,
        seen: &[Seen],
        now: std::time::Instant,
    ) -> Result<(), ApiError> {
        let slash_after = self.grace + self.cfg.slash_delay(self.grace);
        let lag = self.lag.lag(&self.health, now);
        if lag.is_none() {
            self.logged_lag = false;
        }
        for s in seen {
            if s.silent <= self.grace
                || !has_taint(&s.node, "NoExecute")
                || !s.node["metadata"]["annotations"][FAILED_ANNOTATION].is_null()
                || s.silent < slash_after
            {
                continue;
            }
            let name = util::name(&s.node);
            if self.zones.all_disrupted()
                || self.zones.state(&s.zone) == Some(ZoneState::FullDisruption)
            {
                tracing::debug!(node = %name, zone = %s.zone, "zone fully disrupted: not reporting the node failure");
                continue;
            }
            if let Some(l) = lag {
                if !self.logged_lag {
                    tracing::warn!(node = %name, lag = %l, "master lagging: node failure reports (slashing) deferred");
                    self.logged_lag = true;
                }
                continue;
            }
            let reason = format!(
                "no heartbeat observed for {}s (grace {}s)",
                s.silent.as_secs(),
                self.grace.as_secs()
            );
            let reported = match &self.handler {
                Some(h) => match h.node_failed(&s.node, &reason).await {
                    Ok(()) => true,
                    Err(e) if e.retry() => {
                        tracing::warn!(node = %name, error = %e, "reporting the node failure failed; will retry");
                        false
                    }
                    Err(e) => {
                        tracing::info!(node = %name, error = %e, "node failure not reportable");
                        true
                    }
                },
                None => true,
            };
            if reported {
                self.client
                    .merge_patch(
                        &format!("{CORE}/nodes/{name}"),
                        &json!({"metadata": {"annotations": {FAILED_ANNOTATION: util::now_rfc3339()}}}),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

fn node_last_heartbeat(node: &Value) -> Value {
    util::condition(node, "Ready")
        .map(|c| c["lastHeartbeatTime"].clone())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taint_helpers() {
        let tainted = json!({"spec": {"taints": [
            {"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
            {"key": UNREACHABLE_TAINT, "effect": "NoExecute"},
            {"key": "x", "effect": "NoSchedule"}]}});
        assert!(has_lifecycle_taint(&tainted));
        assert!(has_taint(&tainted, "NoExecute"));
        assert_eq!(taints_without_lifecycle(&tainted).len(), 1);
        assert_eq!(taints_without(&tainted, &["NoExecute"]).len(), 2);
        let only_ns = json!({"spec": {"taints": taints_without(&tainted, &["NoExecute"])}});
        assert!(!has_taint(&only_ns, "NoExecute"));
        let again = taints_with(&only_ns, UNREACHABLE_TAINT, "NoSchedule");
        assert_eq!(
            again
                .iter()
                .filter(|t| t["key"] == UNREACHABLE_TAINT)
                .count(),
            1
        );
        // Swapping: not-ready replaces unreachable of the same effect, other taints stay.
        let swapped =
            json!({"spec": {"taints": taints_with(&tainted, NOT_READY_TAINT, "NoExecute")}});
        assert!(has(&swapped, NOT_READY_TAINT, "NoExecute"));
        assert!(!has(&swapped, UNREACHABLE_TAINT, "NoExecute"));
        assert!(has(&swapped, UNREACHABLE_TAINT, "NoSchedule"));
        assert!(has(&swapped, "x", "NoSchedule"));
        assert!(!has_lifecycle_taint(
            &json!({"spec": {"taints": [{"key": "x", "effect": "NoExecute"}]}})
        ));
    }

    #[test]
    fn health_follows_silence_then_the_ready_condition() {
        let grace = Duration::from_secs(40);
        let seen = |ready: &str, silent: u64| Seen {
            node: Arc::new(json!({"status": {"conditions": [{"type": "Ready", "status": ready}]}})),
            zone: String::new(),
            silent: Duration::from_secs(silent),
        };
        assert_eq!(seen("True", 10).health(grace), Health::Healthy);
        assert_eq!(seen("False", 10).health(grace), Health::NotReady);
        // Our own Unknown, while the node is heard again before it posts its status: healthy.
        assert_eq!(seen("Unknown", 10).health(grace), Health::Healthy);
        assert_eq!(seen("False", 41).health(grace), Health::Unreachable);
        assert_eq!(seen("True", 41).health(grace), Health::Unreachable);
        assert_eq!(
            Health::NotReady.keys(),
            Some((NOT_READY_TAINT, UNREACHABLE_TAINT))
        );
        assert_eq!(Health::Healthy.keys(), None);
    }
}
