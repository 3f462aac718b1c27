//! The scheduler: binds pending pods to Ready, staked, schedulable nodes that fit them, picking
//! the least-loaded feasible node; pods that fit nowhere get `PodScheduled=False/Unschedulable`
//! and a deduplicated `FailedScheduling` event.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::informer::{Informers, Snapshot};
use crate::persistentvolume::{pod_claims, select_node, ClaimState, VolumeView};
use crate::quantity::value_milli;
use crate::util::{self, best_effort, condition, name, namespace, now_rfc3339, uid, CORE};
use crate::workqueue::{Resync, WorkQueue};
use crate::{Controller, ControllerOptions};

/// Nodes must carry `k3s-daas.io/staked=true` to run workloads.
pub const STAKED_LABEL: &str = "k3s-daas.io/staked";

/// Requested or allocatable resources: cpu and memory in milli-units, pods as a count, and the
/// host ports taken.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resources {
    pub cpu: i128,
    pub memory: i128,
    pub pods: i128,
    pub host_ports: Vec<HostPort>,
}

impl Resources {
    fn add(&mut self, o: &Resources) {
        self.cpu += o.cpu;
        self.memory += o.memory;
        self.pods += o.pods;
        self.host_ports.extend(o.host_ports.iter().cloned());
    }

    /// Take back what [`Resources::add`] added (each host port binding once).
    fn sub(&mut self, o: &Resources) {
        self.cpu -= o.cpu;
        self.memory -= o.memory;
        self.pods -= o.pods;
        for hp in &o.host_ports {
            if let Some(i) = self.host_ports.iter().position(|h| h == hp) {
                self.host_ports.swap_remove(i);
            }
        }
    }
}

/// A container port bound on the node (`hostPort`), as kube-scheduler's NodePorts plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// `hostIP`, `0.0.0.0` when unset (every address).
    pub ip: String,
    pub protocol: String,
    pub port: i64,
}

impl HostPort {
    /// Two bindings collide on the same protocol and port when either is on every address or
    /// both are on the same one.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        let any = |ip: &str| ip == "0.0.0.0" || ip == "::";
        self.protocol == o.protocol
            && self.port == o.port
            && (any(&self.ip) || any(&o.ip) || self.ip == o.ip)
    }
}

/// The host ports a pod's containers ask for.
pub fn pod_host_ports(pod: &Value) -> Vec<HostPort> {
    let spec = &pod["spec"];
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| {
            let port = p["hostPort"].as_i64().filter(|p| *p > 0)?;
            Some(HostPort {
                ip: p["hostIP"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("0.0.0.0")
                    .to_string(),
                protocol: p["protocol"].as_str().unwrap_or("TCP").to_string(),
                port,
            })
        })
        .collect()
}

fn container_request(c: &Value, res: &str) -> i128 {
    let r = &c["resources"];
    value_milli(&r["requests"][res])
        .or_else(|| value_milli(&r["limits"][res]))
        .unwrap_or(0)
        .max(0)
}

/// What a pod asks for: the sum over its containers (requests, else limits, as the API defaults
/// them), at least the largest init container, plus pod overhead; and one pod slot.
pub fn pod_requests(pod: &Value) -> Resources {
    let spec = &pod["spec"];
    let mut cpu = 0i128;
    let mut mem = 0i128;
    for c in spec["containers"].as_array().into_iter().flatten() {
        cpu += container_request(c, "cpu");
        mem += container_request(c, "memory");
    }
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        cpu = cpu.max(container_request(c, "cpu"));
        mem = mem.max(container_request(c, "memory"));
    }
    cpu += value_milli(&spec["overhead"]["cpu"]).unwrap_or(0).max(0);
    mem += value_milli(&spec["overhead"]["memory"]).unwrap_or(0).max(0);
    Resources {
        cpu,
        memory: mem,
        pods: 1,
        host_ports: pod_host_ports(pod),
    }
}

/// What a node offers: `status.allocatable`, falling back to `status.capacity` (absent = 0).
pub fn node_allocatable(node: &Value) -> Resources {
    let get = |k: &str| {
        value_milli(&node["status"]["allocatable"][k])
            .or_else(|| value_milli(&node["status"]["capacity"][k]))
            .unwrap_or(0)
    };
    Resources {
        cpu: get("cpu"),
        memory: get("memory"),
        pods: get("pods") / 1000,
        host_ports: Vec::new(),
    }
}

/// Does one toleration tolerate one taint?
pub fn tolerates(t: &Value, taint: &Value) -> bool {
    let t_effect = t["effect"].as_str().unwrap_or("");
    let taint_effect = taint["effect"].as_str().unwrap_or("");
    if !t_effect.is_empty() && t_effect != taint_effect {
        return false;
    }
    let t_key = t["key"].as_str().unwrap_or("");
    let op = t["operator"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("Equal");
    if t_key.is_empty() {
        // An empty key with Exists tolerates everything.
        return op == "Exists";
    }
    if t_key != taint["key"].as_str().unwrap_or("") {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" => t["value"].as_str().unwrap_or("") == taint["value"].as_str().unwrap_or(""),
        _ => false,
    }
}

/// The first NoSchedule/NoExecute taint of the node the pod does not tolerate.
pub fn untolerated_taint<'a>(pod: &Value, node: &'a Value) -> Option<&'a Value> {
    let tols: Vec<&Value> = pod["spec"]["tolerations"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    node["spec"]["taints"].as_array()?.iter().find(|taint| {
        matches!(
            taint["effect"].as_str(),
            Some("NoSchedule") | Some("NoExecute")
        ) && !tols.iter().any(|t| tolerates(t, taint))
    })
}

fn tolerates_all(pod: &Value, taint: &Value) -> bool {
    pod["spec"]["tolerations"]
        .as_array()
        .map(|a| a.iter().any(|t| tolerates(t, taint)))
        .unwrap_or(false)
}

/// One node selector requirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against a value lookup.
fn requirement_matches(expr: &Value, value: Option<&str>) -> bool {
    let values: Vec<&str> = expr["values"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    match expr["operator"].as_str().unwrap_or("") {
        "In" => value.map(|v| values.contains(&v)).unwrap_or(false),
        "NotIn" => value.map(|v| !values.contains(&v)).unwrap_or(true),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values.as_slice())
            else {
                return false;
            };
            let Ok(b) = bound.parse::<i64>() else {
                return false;
            };
            if op == "Gt" {
                v > b
            } else {
                v < b
            }
        }
        _ => false,
    }
}

fn term_matches(term: &Value, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
    let exprs = term["matchExpressions"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[]);
    let fields = term["matchFields"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false; // An empty term matches no objects.
    }
    exprs.iter().all(|e| {
        requirement_matches(
            e,
            e["key"]
                .as_str()
                .and_then(|k| labels.get(k))
                .map(|s| s.as_str()),
        )
    }) && fields.iter().all(|e| {
        let v = if e["key"] == "metadata.name" {
            Some(node_name)
        } else {
            None
        };
        requirement_matches(e, v)
    })
}

/// `spec.nodeSelector` and required node affinity.
pub fn node_selector_matches(pod: &Value, node: &Value) -> bool {
    let req =
        &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    if pod["spec"]["nodeSelector"].is_null() && !req.is_object() {
        return true; // Nothing to match (most pods): skip reading the node's labels.
    }
    let labels = daas_apimachinery::selector::labels_from_value(&node["metadata"]["labels"]);
    if let Some(sel) = pod["spec"]["nodeSelector"].as_object() {
        if !sel.iter().all(|(k, v)| {
            labels
                .get(k)
                .map(|l| Some(l.as_str()) == v.as_str())
                .unwrap_or(false)
        }) {
            return false;
        }
    }
    if req.is_object() {
        let terms = req["nodeSelectorTerms"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or(&[]);
        if !terms.iter().any(|t| term_matches(t, &labels, name(node))) {
            return false;
        }
    }
    true
}

pub fn node_ready(node: &Value) -> bool {
    util::condition_true(node, "Ready")
}

/// Why the pod cannot go to this node (kube-scheduler's wording); empty when it fits.
pub fn unfit_reasons(
    pod: &Value,
    node: &Value,
    used: &Resources,
    staked_label: &str,
) -> Vec<String> {
    unfit_reasons_for(
        pod,
        node,
        used,
        staked_label,
        &pod_requests(pod),
        &node_allocatable(node),
    )
}

/// [`unfit_reasons`] with the pod's requests and the node's allocatable already computed.
pub fn unfit_reasons_for(
    pod: &Value,
    node: &Value,
    used: &Resources,
    staked_label: &str,
    want: &Resources,
    have: &Resources,
) -> Vec<String> {
    if node["metadata"]["labels"][staked_label].as_str() != Some("true") {
        return vec![format!(
            "node(s) didn't have the {staked_label}=true label (not staked)"
        )];
    }
    if !node_ready(node) {
        return vec!["node(s) were not ready".into()];
    }
    if node["spec"]["unschedulable"].as_bool() == Some(true)
        && !tolerates_all(
            pod,
            &json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}),
        )
    {
        return vec!["node(s) were unschedulable".into()];
    }
    if let Some(t) = untolerated_taint(pod, node) {
        return vec![format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t["key"].as_str().unwrap_or(""),
            t["value"].as_str().unwrap_or("")
        )];
    }
    if !node_selector_matches(pod, node) {
        return vec!["node(s) didn't match Pod's node affinity/selector".into()];
    }
    let mut out = Vec::new();
    if want
        .host_ports
        .iter()
        .any(|w| used.host_ports.iter().any(|u| u.conflicts(w)))
    {
        out.push("node(s) didn't have free ports for the requested pod ports".to_string());
    }
    if used.pods + want.pods > have.pods {
        out.push("Too many pods".to_string());
    }
    if want.cpu > 0 && used.cpu + want.cpu > have.cpu {
        out.push("Insufficient cpu".to_string());
    }
    if want.memory > 0 && used.memory + want.memory > have.memory {
        out.push("Insufficient memory".to_string());
    }
    out
}

/// `0/N nodes are available: 1 Insufficient cpu, 2 node(s) ...` as kube-scheduler words it.
pub fn failure_message(total_nodes: usize, per_node: &[Vec<String>]) -> String {
    if total_nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for reasons in per_node {
        for r in reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    format!("0/{total_nodes} nodes are available: {}.", parts.join(", "))
}

/// Lower is less loaded: requested fractions of cpu, memory and pod slots after adding the pod.
pub fn load_score(used: &Resources, want: &Resources, have: &Resources) -> f64 {
    let frac = |u: i128, w: i128, h: i128| {
        if h <= 0 {
            0.0
        } else {
            (u + w) as f64 / h as f64
        }
    };
    frac(used.cpu, want.cpu, have.cpu)
        + frac(used.memory, want.memory, have.memory)
        + frac(used.pods, want.pods, have.pods)
}

/// Pick the least-loaded feasible node (ties broken by name), or the per-node reasons.
pub fn pick_node<'a>(
    pod: &Value,
    nodes: &'a [Value],
    used: &HashMap<String, Resources>,
    staked_label: &str,
) -> Result<&'a Value, Vec<Vec<String>>> {
    pick_node_with(pod, nodes, used, staked_label, |_| Vec::new())
}

/// [`pick_node`] with a further per-node filter (`extra` gives its reasons; empty = fits).
pub fn pick_node_with<'a>(
    pod: &Value,
    nodes: &'a [Value],
    used: &HashMap<String, Resources>,
    staked_label: &str,
    extra: impl Fn(&Value) -> Vec<String>,
) -> Result<&'a Value, Vec<Vec<String>>> {
    let alloc: Vec<Resources> = nodes.iter().map(node_allocatable).collect();
    let sample = NodeSample {
        start: 0,
        feasible: nodes.len(),
    };
    pick_node_sampled(pod, nodes, &alloc, used, staked_label, extra, sample).map(|(n, _)| n)
}

/// How many feasible nodes the scheduler looks for before it scores (upstream
/// `numFeasibleNodesToFind` with the adaptive `percentageOfNodesToScore`: every node below 100,
/// else 50% less 1% per 125 nodes, at least 5% and at least 100 nodes).
pub fn feasible_nodes_to_find(total: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if total < MIN_FEASIBLE {
        return total;
    }
    let percent = 50usize.saturating_sub(total / 125).max(5);
    (total * percent / 100).max(MIN_FEASIBLE)
}

/// Which nodes one scheduling attempt filters: from `start` (rotating between pods so every node
/// gets its turn, as upstream's `nextStartNodeIndex`), until `feasible` nodes fit.
#[derive(Debug, Clone, Copy)]
pub struct NodeSample {
    pub start: usize,
    pub feasible: usize,
}

/// Pick the least-loaded node among the first `sample.feasible` feasible nodes found from
/// `sample.start` (ties broken by name); returns it and where the next search starts, or, when
/// no node fits, every node's reasons. `alloc[i]` is `node_allocatable(&nodes[i])`.
pub fn pick_node_sampled<'a, N: std::borrow::Borrow<Value>>(
    pod: &Value,
    nodes: &'a [N],
    alloc: &[Resources],
    used: &HashMap<String, Resources>,
    staked_label: &str,
    extra: impl Fn(&Value) -> Vec<String>,
    sample: NodeSample,
) -> Result<(&'a Value, usize), Vec<Vec<String>>> {
    let want = pod_requests(pod);
    let mut best: Option<(f64, &Value)> = None;
    let mut reasons = Vec::new();
    let zero = Resources::default();
    let none = Resources::default();
    let total = nodes.len();
    let mut found = 0usize;
    let mut processed = 0usize;
    for i in 0..total {
        processed += 1;
        let idx = (sample.start + i) % total;
        let n: &Value = nodes[idx].borrow();
        let have = alloc.get(idx).unwrap_or(&none);
        let u = used.get(name(n)).unwrap_or(&zero);
        let mut r = unfit_reasons_for(pod, n, u, staked_label, &want, have);
        if r.is_empty() {
            r = extra(n);
        }
        if !r.is_empty() {
            reasons.push(r);
            continue;
        }
        found += 1;
        let score = load_score(u, &want, have);
        let better = match best {
            None => true,
            Some((s, b)) => score < s - 1e-12 || ((score - s).abs() <= 1e-12 && name(n) < name(b)),
        };
        if better {
            best = Some((score, n));
        }
        if found >= sample.feasible.max(1) {
            break;
        }
    }
    let next = if total == 0 {
        0
    } else {
        (sample.start + processed) % total
    };
    best.map(|(_, n)| (n, next)).ok_or(reasons)
}

/// Bindings in flight at once (each is a store write and an event).
const BIND_CONCURRENCY: usize = 64;

#[cfg(test)]
mod itests;
mod queue;
pub use queue::{SchedCache, SchedQueue};

/// How a binding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindOutcome {
    Bound,
    /// 404/409: the pod is gone or already bound; the pod cache will tell.
    Refused,
    /// Any other error: retry after a backoff.
    Failed,
}

/// The result of one binding task.
#[derive(Debug)]
struct BindResult {
    key: String,
    uid: String,
    priority: i64,
    created: String,
    outcome: BindOutcome,
}

/// What each pass did, for `RUST_LOG=daas_controllers::scheduler=debug` and the tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassStats {
    /// Changed pods looked at.
    pub observed: usize,
    /// Pods a decision was tried for.
    pub attempted: usize,
    /// Bindings started.
    pub binds: usize,
    pub unschedulable: usize,
    /// Whether every pod was looked at (start, periodic resync, or no shared cache).
    pub full: bool,
}

pub struct Scheduler {
    client: LocalClient,
    opts: ControllerOptions,
    /// Last FailedScheduling report per pod uid: message and when.
    reported: HashMap<String, (String, Instant)>,
    /// Where the next pod's node search starts (upstream `nextStartNodeIndex`).
    next_start: usize,
    /// Where pods and nodes are read from.
    informers: Informers,
    /// Keys of the pods whose cache entry changed (fed by the shared pod cache); `None` without
    /// a shared cache: every pass looks at every pod.
    changed: Option<Arc<WorkQueue>>,
    /// Pending pods waiting for a decision.
    queue: SchedQueue,
    /// Requests committed per node, bound and assumed pods (upstream's scheduler cache).
    cache: SchedCache,
    /// Keys whose binding is being written.
    in_flight: HashSet<String>,
    /// The binding tasks (aborted with the scheduler, e.g. when it loses its Lease).
    binds: JoinSet<BindResult>,
    bind_slots: Arc<Semaphore>,
    /// Keys to look at again next pass (a refused binding, an expired assumption).
    recheck: Vec<String>,
    /// The Nodes last scheduled against and their allocatable.
    nodes_seen: Option<(Snapshot, Arc<Vec<Resources>>)>,
    resync: Resync,
    /// What the last pass did.
    pub last: PassStats,
}

/// How long a bound pod counts as assumed while the cache still shows it unbound.
const ASSUME_TTL: Duration = Duration::from_secs(30);

/// A pod's place in the active queue: priority and creation time.
fn order_of(pod: &Value) -> (i64, &str) {
    (
        pod["spec"]["priority"].as_i64().unwrap_or(0),
        pod["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
    )
}

fn node_name_of(pod: &Value) -> Option<&str> {
    pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

fn key_of(pod: &Value) -> String {
    format!("{}/{}", namespace(pod), name(pod))
}

impl Scheduler {
    pub fn new(client: LocalClient, opts: ControllerOptions) -> Self {
        let max_unschedulable = opts.event_interval.max(Duration::from_secs(1));
        let resync = Resync::new(opts.resync.max(Duration::from_secs(1)));
        Scheduler {
            informers: Informers::direct(client.clone()),
            client,
            opts,
            reported: HashMap::new(),
            next_start: 0,
            changed: None,
            queue: SchedQueue::new(max_unschedulable),
            cache: SchedCache::default(),
            in_flight: HashSet::new(),
            binds: JoinSet::new(),
            bind_slots: Arc::new(Semaphore::new(BIND_CONCURRENCY)),
            recheck: Vec::new(),
            nodes_seen: None,
            resync,
            last: PassStats::default(),
        }
    }

    /// Read pods and nodes from shared caches (and write through their client); the pod cache
    /// feeds this scheduler the keys of the pods that change.
    pub fn with_informers(mut self, informers: Informers) -> Self {
        self.client = informers.client();
        let q = Arc::new(WorkQueue::new(Default::default()));
        self.changed = informers
            .queue_keys(&format!("{CORE}/pods"), &q)
            .then_some(q);
        self.informers = informers;
        self
    }

    fn is_ours(&self, pod: &Value) -> bool {
        match pod["spec"]["schedulerName"].as_str() {
            None | Some("") => true,
            Some(s) => s == self.opts.scheduler_name,
        }
    }

    /// Bring the cache and the queue up to date with one pod as the pod cache shows it.
    fn observe(&mut self, key: &str, pod: Option<&Value>, now: Instant) {
        let Some(p) = pod else {
            if self.cache.remove(key) {
                self.queue.cluster_changed(now);
            }
            self.queue.delete(key);
            return;
        };
        if let Some(node) = node_name_of(p) {
            self.queue.delete(key);
            self.reported.remove(uid(p));
            if util::pod_terminated(p) {
                if self.cache.remove(key) {
                    self.queue.cluster_changed(now);
                }
            } else {
                self.cache.bound(key, uid(p), node, pod_requests(p));
            }
            return;
        }
        if !util::pod_active(p) {
            if self.cache.remove(key) {
                self.queue.cluster_changed(now);
            }
            self.queue.delete(key);
            self.reported.remove(uid(p));
            return;
        }
        if self.cache.is_assumed(key, uid(p)) || self.in_flight.contains(key) {
            return; // Decided; the cache has not shown the binding yet.
        }
        if self.cache.remove(key) {
            // Counted for an older pod of that name.
            self.queue.cluster_changed(now);
        }
        if !self.is_ours(p) {
            self.queue.delete(key);
            return;
        }
        let (prio, created) = order_of(p);
        self.queue.add(key, prio, created);
    }

    /// Take the finished bindings into account.
    fn reap(&mut self, now: Instant) {
        while let Some(done) = self.binds.try_join_next() {
            let Ok(r) = done else {
                continue; // Aborted or panicked: its key comes back by expiry.
            };
            self.in_flight.remove(&r.key);
            if r.outcome == BindOutcome::Bound {
                self.reported.remove(&r.uid);
                continue;
            }
            if self.cache.is_assumed(&r.key, &r.uid) {
                self.cache.remove(&r.key);
                self.queue.cluster_changed(now);
            }
            if r.outcome == BindOutcome::Failed {
                // Retry after its backoff, unless the cache shows it bound or gone by then.
                self.queue
                    .backoff(&r.key, r.priority, &r.created, now, None);
            }
            self.recheck.push(r.key);
        }
    }

    async fn mark_unschedulable(&mut self, pod: &Value, message: &str) {
        let cur = condition(pod, "PodScheduled");
        let same = cur
            .map(|c| {
                c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == message
            })
            .unwrap_or(false);
        if !same {
            let transition = match cur {
                Some(c) if c["status"] == "False" => c["lastTransitionTime"].clone(),
                _ => json!(now_rfc3339()),
            };
            let mut conds: Vec<Value> = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            conds.retain(|c| c["type"] != "PodScheduled");
            conds.push(
                json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message, "lastProbeTime": null, "lastTransitionTime": transition}),
            );
            let p = format!(
                "{CORE}/namespaces/{}/pods/{}/status",
                namespace(pod),
                name(pod)
            );
            if let Err(e) = self
                .client
                .merge_patch(&p, &json!({"status": {"conditions": conds}}))
                .await
            {
                if e.code != 404 {
                    tracing::warn!(pod = name(pod), error = %e.message, "could not set PodScheduled=False");
                }
            }
        }
        let due = match self.reported.get(uid(pod)) {
            Some((m, at)) => m != message || at.elapsed() >= self.opts.event_interval,
            None => true,
        };
        if due {
            self.reported
                .insert(uid(pod).to_string(), (message.to_string(), Instant::now()));
            let r = util::record_event(
                &self.client,
                pod,
                "Warning",
                "FailedScheduling",
                message,
                &self.opts.scheduler_name,
            )
            .await;
            best_effort("FailedScheduling event", r).await;
        }
    }

    /// Start writing the binding of `pod` to `node` (at most [`BIND_CONCURRENCY`] at once).
    fn spawn_bind(&mut self, key: String, pod: Arc<Value>, node: String) {
        self.in_flight.insert(key.clone());
        let client = self.client.clone();
        let scheduler_name = self.opts.scheduler_name.clone();
        let slots = self.bind_slots.clone();
        self.binds.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let outcome = bind(&client, &pod, &node, &scheduler_name).await;
            let (priority, created) = order_of(&pod);
            BindResult {
                key,
                uid: uid(&pod).to_string(),
                priority,
                created: created.to_string(),
                outcome,
            }
        });
    }
}

#[async_trait]
impl Controller for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/pods"), format!("{CORE}/nodes")]
    }

    fn informers(&self) -> Option<&Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let now = Instant::now();
        let mut stats = PassStats::default();
        self.reap(now);
        // Nodes changed: anything unschedulable may fit now.
        let alloc = match &self.nodes_seen {
            Some((seen, alloc)) if seen.same(&nodes) => alloc.clone(),
            _ => {
                let alloc: Arc<Vec<Resources>> =
                    Arc::new(nodes.iter().map(|n| node_allocatable(n)).collect());
                self.nodes_seen = Some((nodes.clone(), alloc.clone()));
                self.queue.cluster_changed(now);
                alloc
            }
        };
        // The pods that changed since the last pass, or every pod.
        let full = self.changed.is_none() || self.resync.due();
        stats.full = full;
        if full {
            if let Some(q) = &self.changed {
                q.take_ready();
            }
            let mut known: HashSet<String> = self.cache.keys().into_iter().collect();
            known.extend(self.queue.keys());
            for p in pods.iter() {
                let key = key_of(p);
                known.remove(&key);
                self.observe(&key, Some(p), now);
                stats.observed += 1;
            }
            for key in known {
                self.observe(&key, None, now);
            }
            self.recheck.clear();
        } else {
            let mut keys = self
                .changed
                .as_ref()
                .map(|q| q.take_ready())
                .unwrap_or_default();
            keys.append(&mut self.recheck);
            for key in keys {
                let p = pods.get(&key).cloned();
                self.observe(&key, p.as_deref(), now);
                stats.observed += 1;
            }
        }
        // Assumptions the cache never confirmed: look at those pods again.
        for key in self.cache.expire(now, ASSUME_TTL) {
            self.queue.cluster_changed(now);
            let p = pods.get(&key).cloned();
            self.observe(&key, p.as_deref(), now);
        }
        self.queue.flush(now);
        let keys = self.queue.pop_all();
        let staked = self.opts.staked_label.clone();
        let feasible = feasible_nodes_to_find(nodes.len());
        let candidates: Vec<(String, Arc<Value>)> = keys
            .into_iter()
            .filter_map(|k| pods.get(&k).cloned().map(|p| (k, p)))
            .collect();
        let volumes = if candidates.iter().any(|(_, p)| !pod_claims(p).is_empty()) {
            Some(VolumeView::load(&self.client).await?)
        } else {
            None
        };
        // Decisions are made one pod at a time against the committed requests (bound and
        // assumed pods); the bindings are written in the background.
        for (key, pod) in candidates {
            // Still pending and ours (it may have changed since it was queued)?
            if node_name_of(&pod).is_some()
                || !util::pod_active(&pod)
                || !self.is_ours(&pod)
                || self.in_flight.contains(&key)
                || self.cache.is_assumed(&key, uid(&pod))
            {
                continue;
            }
            stats.attempted += 1;
            let (prio, created) = order_of(&pod);
            // The VolumeBinding plugin: claims must exist; a pod goes only where its bound
            // volumes are; WaitForFirstConsumer claims get the chosen node and the pod is bound
            // only once the binder or provisioner has bound them.
            let claims = match &volumes {
                Some(v) => v.state(&pod),
                None => ClaimState::Bound,
            };
            if let ClaimState::Unschedulable(msg) = &claims {
                stats.unschedulable += 1;
                self.queue.unschedulable(&key, prio, created, now);
                let msg = format!("0/{} nodes are available: {msg}.", nodes.len());
                self.mark_unschedulable(&pod, &msg).await;
                continue;
            }
            let sample = NodeSample {
                start: self.next_start,
                feasible,
            };
            let picked = pick_node_sampled(
                &pod,
                &nodes,
                &alloc,
                self.cache.used(),
                &staked,
                |n| {
                    volumes
                        .as_ref()
                        .map(|v| v.node_reasons(&pod, n))
                        .unwrap_or_default()
                },
                sample,
            )
            .map(|(node, next)| {
                self.next_start = next;
                name(node).to_string()
            });
            match picked {
                Ok(node) if claims != ClaimState::Bound => {
                    if let ClaimState::Delayed(to_select) = &claims {
                        if let Err(e) = select_node(&self.client, &pod, to_select, &node).await {
                            tracing::warn!(pod = name(&pod), error = %e.message, "could not select a node for the pod's claims");
                        }
                    }
                    // Claims being bound for a pod: look again soon (claims are not watched).
                    self.queue
                        .backoff(&key, prio, created, now, Some(Duration::from_millis(200)));
                }
                Ok(node) => {
                    self.cache
                        .assume(&key, uid(&pod), &node, pod_requests(&pod), now);
                    stats.binds += 1;
                    self.spawn_bind(key, pod, node);
                }
                Err(reasons) => {
                    stats.unschedulable += 1;
                    self.queue.unschedulable(&key, prio, created, now);
                    let msg = failure_message(nodes.len(), &reasons);
                    self.mark_unschedulable(&pod, &msg).await;
                }
            }
        }
        self.last = stats;
        if stats.attempted > 0 || stats.full {
            tracing::debug!(
                observed = stats.observed,
                attempted = stats.attempted,
                binds = stats.binds,
                unschedulable = stats.unschedulable,
                full = stats.full,
                in_flight = self.in_flight.len(),
                assumed = self.cache.assumed_len(),
                parked = self.queue.unschedulable_len(),
                "scheduling pass"
            );
        }
        // Come back when a parked pod is due, a binding may have failed, or a resync is due.
        let mut next = self.resync.remaining();
        if let Some(at) = self.queue.next_due(now) {
            next = next.min(at.saturating_duration_since(now));
        }
        if !self.in_flight.is_empty() || !self.recheck.is_empty() {
            next = next.min(Duration::from_millis(100));
        }
        if self.cache.assumed_len() > 0 {
            next = next.min(ASSUME_TTL);
        }
        Ok(Some(next.max(Duration::from_millis(10))))
    }
}

/// The bind's pod start-up timing mark (see `daas_protocol::podstart`, which this crate does
/// not link: same target and fields).
fn podstart_bound(namespace: &str, name: &str) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    tracing::info!(target: "daas::podstart", pod = %format_args!("{namespace}/{name}"),
        stage = "bound", t = %format_args!("{t:.6}"), "podstart");
}

/// Bind `pod` to `node_name` (the Binding subresource, which refuses a pod already bound) and
/// record the Scheduled event; whether the binding was written.
async fn bind(
    client: &LocalClient,
    pod: &Value,
    node_name: &str,
    scheduler_name: &str,
) -> BindOutcome {
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name(pod), "namespace": namespace(pod)},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}});
    let p = format!(
        "{CORE}/namespaces/{}/pods/{}/binding",
        namespace(pod),
        name(pod)
    );
    match client.create(&p, &binding).await {
        Ok(_) => {
            tracing::debug!(pod = name(pod), namespace = namespace(pod), node = %node_name, "bound");
            podstart_bound(namespace(pod), name(pod));
            let msg = format!(
                "Successfully assigned {}/{} to {node_name}",
                namespace(pod),
                name(pod)
            );
            let r =
                util::record_event(client, pod, "Normal", "Scheduled", &msg, scheduler_name).await;
            best_effort("Scheduled event", r).await;
            BindOutcome::Bound
        }
        Err(e) if e.code == 404 || e.code == 409 => BindOutcome::Refused,
        Err(e) => {
            tracing::warn!(pod = name(pod), node = %node_name, error = %e.message, "binding failed");
            BindOutcome::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantity::parse_milli;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn host_ports_conflict_only_on_the_same_protocol_port_and_address() {
        let n = node("b", json!({STAKED_LABEL: "true"}), json!(null));
        let with = |ports: Value| json!({"spec": {"containers": [{"name": "c", "ports": ports}]}});
        let taken = pod_requests(&with(json!([
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "10.0.0.1"},
        ])));
        assert_eq!(taken.host_ports.len(), 2);
        assert_eq!(taken.host_ports[0].ip, "0.0.0.0");
        let busy = "node(s) didn't have free ports for the requested pod ports";
        for (ports, fits) in [
            // Same port and protocol on every address: taken.
            (json!([{"containerPort": 1, "hostPort": 8080}]), false),
            // A specific address inside "every address": taken.
            (
                json!([{"containerPort": 1, "hostPort": 8080, "hostIP": "10.0.0.2"}]),
                false,
            ),
            // Another protocol, another port, or no host port: free.
            (
                json!([{"containerPort": 1, "hostPort": 8080, "protocol": "UDP"}]),
                true,
            ),
            (json!([{"containerPort": 1, "hostPort": 8081}]), true),
            (json!([{"containerPort": 8080}]), true),
            // UDP 5353 on 10.0.0.1 taken; on 10.0.0.2 free; on every address taken.
            (
                json!([{"containerPort": 1, "hostPort": 5353, "protocol": "UDP", "hostIP": "10.0.0.1"}]),
                false,
            ),
            (
                json!([{"containerPort": 1, "hostPort": 5353, "protocol": "UDP", "hostIP": "10.0.0.2"}]),
                true,
            ),
            (
                json!([{"containerPort": 1, "hostPort": 5353, "protocol": "UDP"}]),
                false,
            ),
        ] {
            let reasons = unfit_reasons(&with(ports.clone()), &n, &taken, STAKED_LABEL);
            assert_eq!(reasons.is_empty(), fits, "{ports}: {reasons:?}");
            if !fits {
                assert_eq!(reasons, vec![busy]);
            }
        }
    }

    #[test]
    fn tolerations() {
        let taint = json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"});
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}),
            &taint
        ));
        assert!(
            tolerates(&json!({"key": "dedicated", "value": "gpu"}), &taint),
            "operator defaults to Equal, effect empty matches all"
        );
        assert!(!tolerates(
            &json!({"key": "dedicated", "value": "cpu"}),
            &taint
        ));
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Exists"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
            &taint
        ));
        assert!(
            tolerates(&json!({"operator": "Exists"}), &taint),
            "empty key + Exists tolerates everything"
        );
        assert!(!tolerates(
            &json!({"operator": "Equal", "value": "gpu"}),
            &taint
        ));
        assert!(!tolerates(
            &json!({"key": "other", "operator": "Exists"}),
            &taint
        ));
    }

    #[test]
    fn taints_filter_nodes() {
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        let soft = node(
            "a",
            json!({STAKED_LABEL: "true"}),
            json!([{"key": "k", "effect": "PreferNoSchedule"}]),
        );
        assert!(unfit_reasons(&pod, &soft, &Resources::default(), STAKED_LABEL).is_empty());
        let hard = node(
            "b",
            json!({STAKED_LABEL: "true"}),
            json!([{"key": "k", "value": "v", "effect": "NoExecute"}]),
        );
        assert_eq!(
            unfit_reasons(&pod, &hard, &Resources::default(), STAKED_LABEL),
            vec!["node(s) had untolerated taint {k: v}"]
        );
        let tolerant = json!({"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}});
        assert!(unfit_reasons(&tolerant, &hard, &Resources::default(), STAKED_LABEL).is_empty());
    }

    #[test]
    fn staked_ready_and_resources() {
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}}}]}});
        let unstaked = node("a", json!({}), json!(null));
        assert!(
            unfit_reasons(&pod, &unstaked, &Resources::default(), STAKED_LABEL)[0]
                .contains("staked")
        );
        let n = node("b", json!({STAKED_LABEL: "true"}), json!(null));
        assert!(unfit_reasons(&pod, &n, &Resources::default(), STAKED_LABEL).is_empty());
        let used = Resources {
            cpu: 1000,
            memory: 0,
            pods: 1,
            ..Default::default()
        };
        assert_eq!(
            unfit_reasons(&pod, &n, &used, STAKED_LABEL),
            vec!["Insufficient cpu"]
        );
        let full = Resources {
            cpu: 0,
            memory: 3584 * 1024 * 1024 * 1000,
            pods: 110,
            ..Default::default()
        };
        assert_eq!(
            unfit_reasons(&pod, &n, &full, STAKED_LABEL),
            vec!["Too many pods", "Insufficient memory"]
        );
        let mut notready = n.clone();
        notready["status"]["conditions"][0]["status"] = json!("False");
        assert_eq!(
            unfit_reasons(&pod, &notready, &Resources::default(), STAKED_LABEL),
            vec!["node(s) were not ready"]
        );
        let mut cordoned = n.clone();
        cordoned["spec"]["unschedulable"] = json!(true);
        assert_eq!(
            unfit_reasons(&pod, &cordoned, &Resources::default(), STAKED_LABEL),
            vec!["node(s) were unschedulable"]
        );
    }

    #[test]
    fn requests_sum_and_init_max() {
        let pod = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}}}, {"resources": {"limits": {"cpu": "200m", "memory": "64Mi"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        let r = pod_requests(&pod);
        assert_eq!(r.cpu, 1000);
        assert_eq!(r.memory, 64 * 1024 * 1024 * 1000);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn affinity_and_selector() {
        let n = node(
            "n1",
            json!({STAKED_LABEL: "true", "zone": "a", "gen": "5"}),
            json!(null),
        );
        let sel = |s: Value| json!({"spec": s});
        assert!(node_selector_matches(
            &sel(json!({"nodeSelector": {"zone": "a"}})),
            &n
        ));
        assert!(!node_selector_matches(
            &sel(json!({"nodeSelector": {"zone": "b"}})),
            &n
        ));
        let aff = |exprs: Value| {
            sel(
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": exprs}]}}}}),
            )
        };
        assert!(node_selector_matches(
            &aff(json!([{"key": "zone", "operator": "In", "values": ["a", "b"]}])),
            &n
        ));
        assert!(!node_selector_matches(
            &aff(json!([{"key": "zone", "operator": "NotIn", "values": ["a"]}])),
            &n
        ));
        assert!(node_selector_matches(
            &aff(json!([{"key": "gpu", "operator": "DoesNotExist"}])),
            &n
        ));
        assert!(!node_selector_matches(
            &aff(json!([{"key": "gpu", "operator": "Exists"}])),
            &n
        ));
        assert!(node_selector_matches(
            &aff(json!([{"key": "gen", "operator": "Gt", "values": ["4"]}])),
            &n
        ));
        assert!(!node_selector_matches(
            &aff(json!([{"key": "gen", "operator": "Lt", "values": ["4"]}])),
            &n
        ));
        // Terms are ORed.
        let two = sel(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
                                   {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}),
        );
        assert!(node_selector_matches(&two, &n));
    }

    #[test]
    fn picks_least_loaded_and_explains_failures() {
        let a = node("a", json!({STAKED_LABEL: "true"}), json!(null));
        let b = node("b", json!({STAKED_LABEL: "true"}), json!(null));
        let c = node("c", json!({}), json!(null));
        let nodes = vec![a, b, c];
        let pod = json!({"spec": {"containers": [{"name": "x"}]}});
        let mut used = HashMap::new();
        assert_eq!(
            name(pick_node(&pod, &nodes, &used, STAKED_LABEL).unwrap()),
            "a"
        );
        used.insert(
            "a".to_string(),
            Resources {
                cpu: 0,
                memory: 0,
                pods: 1,
                ..Default::default()
            },
        );
        assert_eq!(
            name(pick_node(&pod, &nodes, &used, STAKED_LABEL).unwrap()),
            "b"
        );
        let picky = json!({"spec": {"nodeSelector": {"disk": "ssd"}}});
        let reasons = pick_node(&picky, &nodes, &used, STAKED_LABEL).unwrap_err();
        assert_eq!(
            failure_message(3, &reasons),
            format!("0/3 nodes are available: 1 node(s) didn't have the {STAKED_LABEL}=true label (not staked), 2 node(s) didn't match Pod's node affinity/selector.")
        );
        assert_eq!(
            failure_message(0, &[]),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn samples_nodes_at_scale_and_rotates_the_start() {
        assert_eq!(feasible_nodes_to_find(50), 50);
        assert_eq!(feasible_nodes_to_find(100), 100);
        // 1,000 nodes: 50 - 8 = 42%.
        assert_eq!(feasible_nodes_to_find(1000), 420);
        // 5,000 nodes: 50 - 40 = 10%; 10,000: at least 5%.
        assert_eq!(feasible_nodes_to_find(5000), 500);
        assert_eq!(feasible_nodes_to_find(10000), 500);
        let ready = json!([{"type": "Ready", "status": "True"}]);
        let nodes: Vec<Value> = (0..10)
            .map(|i| json!({"metadata": {"name": format!("n{i}"), "labels": {STAKED_LABEL: "true"}},
                "status": {"conditions": ready, "allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"}}}))
            .collect();
        let alloc: Vec<Resources> = nodes.iter().map(node_allocatable).collect();
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        let used = HashMap::new();
        let pick = |start| {
            let s = NodeSample { start, feasible: 3 };
            pick_node_sampled(&pod, &nodes, &alloc, &used, STAKED_LABEL, |_| vec![], s)
                .map(|(n, next)| (name(n).to_string(), next))
                .unwrap()
        };
        // Equal load: the first name among the 3 nodes filtered from the start wins.
        assert_eq!(pick(0), ("n0".to_string(), 3));
        assert_eq!(pick(3), ("n3".to_string(), 6));
        assert_eq!(pick(8), ("n0".to_string(), 1));
        // No node fits: every node was looked at and each gives its reasons.
        let big = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}});
        let s = NodeSample {
            start: 4,
            feasible: 3,
        };
        let reasons = pick_node_sampled(&big, &nodes, &alloc, &used, STAKED_LABEL, |_| vec![], s)
            .unwrap_err();
        assert_eq!(reasons.len(), 10);
    }

    #[test]
    fn allocatable_parsing() {
        let n = json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}, "allocatable": {"cpu": "3500m"}}});
        let r = node_allocatable(&n);
        assert_eq!((r.cpu, r.pods), (3500, 110));
        assert_eq!(r.memory, parse_milli("8Gi").unwrap());
    }
}
