//! Node IPAM (kube-controller-manager's `nodeipam` range allocator): every Node gets a pod CIDR
//! of `--node-cidr-mask-size` bits from `--cluster-cidr`.
//!
//! Each pass rebuilds the set of used ranges from the Nodes (so a deleted Node's range is free
//! again at the next pass), keeps every range a Node already holds (also one it registered with
//! itself, when it lies inside the cluster CIDR), and gives each Node without `spec.podCIDR` the
//! next free range (`spec.podCIDR` and `spec.podCIDRs`). A range is never reassigned: the Node
//! strategy refuses changing it once set. When the cluster CIDR is exhausted the Node gets
//! upstream's `CIDRNotAvailable` event. Every Node also carries the cluster CIDR as the annotation
//! [`CLUSTER_CIDR_ANNOTATION`], so agents know which traffic stays on the pod network.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Map, Value};

use crate::util::{self, CORE};
use crate::workqueue::{Resync, WorkQueue};
use crate::Controller;

/// Node annotation holding the cluster (pod) CIDR.
pub const CLUSTER_CIDR_ANNOTATION: &str = "networking.k3s-daas.io/cluster-cidr";
/// Default `--cluster-cidr` (K3s' default).
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
/// Default `--node-cidr-mask-size` for IPv4.
pub const DEFAULT_NODE_CIDR_MASK_SIZE: u8 = 24;

/// An IPv4 network in CIDR notation (host bits must be zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    addr: u32,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IPv4 CIDR (a.b.c.d/n)")]
    Syntax(String),
    #[error("{0:?} has host bits set")]
    HostBits(String),
    #[error(
        "node CIDR mask size {mask} must be at least the cluster CIDR's /{cluster} and at most /30"
    )]
    MaskSize { mask: u8, cluster: u8 },
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Cidr> {
        let addr = u32::from(addr);
        (prefix <= 32 && addr & !Self::mask_of(prefix) == 0).then_some(Ipv4Cidr { addr, prefix })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains_net(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && other.addr & Self::mask_of(self.prefix) == self.addr
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask_of(self.prefix) == self.addr
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || CidrError::Syntax(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| syntax())?;
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix: u8 = p.parse().map_err(|_| syntax())?;
        if prefix > 32 {
            return Err(syntax());
        }
        Ipv4Cidr::new(addr, prefix).ok_or_else(|| CidrError::HostBits(s.to_string()))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

/// Why a Node's own range cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OccupyError {
    #[error("{cidr} is not a /{mask} inside the cluster CIDR {cluster}")]
    Outside {
        cidr: Ipv4Cidr,
        cluster: Ipv4Cidr,
        mask: u8,
    },
    #[error("{0} is already assigned to node {1}")]
    Taken(Ipv4Cidr, String),
}

/// The node ranges of one cluster CIDR (upstream's `cidrset`): which are used, and the next one
/// to hand out (allocation goes round the range, so a freed range is not reused at once).
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: Ipv4Cidr,
    mask: u8,
    used: BTreeMap<u32, String>,
    next: u32,
}

impl CidrSet {
    pub fn new(cluster: Ipv4Cidr, mask: u8) -> Result<CidrSet, CidrError> {
        if mask < cluster.prefix || mask > 30 {
            return Err(CidrError::MaskSize {
                mask,
                cluster: cluster.prefix,
            });
        }
        Ok(CidrSet {
            cluster,
            mask,
            used: BTreeMap::new(),
            next: 0,
        })
    }

    pub fn cluster(&self) -> Ipv4Cidr {
        self.cluster
    }

    /// How many node ranges the cluster CIDR holds.
    pub fn capacity(&self) -> u64 {
        1u64 << (self.mask - self.cluster.prefix)
    }

    fn nth(&self, i: u32) -> Ipv4Cidr {
        Ipv4Cidr {
            addr: self.cluster.addr + (i << (32 - u32::from(self.mask))),
            prefix: self.mask,
        }
    }

    fn index_of(&self, c: &Ipv4Cidr) -> u32 {
        (c.addr - self.cluster.addr) >> (32 - u32::from(self.mask))
    }

    /// Forget every use (the start of a pass).
    pub fn clear(&mut self) {
        self.used.clear();
    }

    /// Record that `node` holds `cidr`.
    pub fn occupy(&mut self, cidr: Ipv4Cidr, node: &str) -> Result<(), OccupyError> {
        if cidr.prefix != self.mask || !self.cluster.contains_net(&cidr) {
            return Err(OccupyError::Outside {
                cidr,
                cluster: self.cluster,
                mask: self.mask,
            });
        }
        let i = self.index_of(&cidr);
        match self.used.get(&i) {
            Some(other) if other != node => Err(OccupyError::Taken(cidr, other.clone())),
            _ => {
                self.used.insert(i, node.to_string());
                Ok(())
            }
        }
    }

    /// The next free range for `node`, or `None` when the cluster CIDR is exhausted.
    pub fn allocate(&mut self, node: &str) -> Option<Ipv4Cidr> {
        let n = self.capacity();
        for k in 0..n {
            let i = ((u64::from(self.next) + k) % n) as u32;
            if let std::collections::btree_map::Entry::Vacant(e) = self.used.entry(i) {
                e.insert(node.to_string());
                self.next = ((u64::from(i) + 1) % n) as u32;
                return Some(self.nth(i));
            }
        }
        None
    }
}

/// A Node's pod CIDRs as written (`spec.podCIDRs`, else `spec.podCIDR`).
pub fn node_pod_cidrs(node: &Value) -> Vec<String> {
    let list: Vec<String> = node["spec"]["podCIDRs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !list.is_empty() {
        return list;
    }
    match node["spec"]["podCIDR"].as_str() {
        Some(s) if !s.is_empty() => vec![s.to_string()],
        _ => Vec::new(),
    }
}

/// What one pass decided for one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeDecision {
    /// Merge patch to send (a new range and/or the cluster CIDR annotation).
    Patch(Value),
    /// No range left: post `CIDRNotAvailable` (and still fix the annotation, if any).
    Exhausted(Option<Value>),
    /// The Node's own range collides with an earlier Node's or lies outside the cluster CIDR.
    Conflict(String, Option<Value>),
}

/// One pass over `nodes`: the decisions, by node name. Pure, for unit tests.
pub fn plan<N: std::borrow::Borrow<Value>>(
    set: &mut CidrSet,
    nodes: &[N],
) -> BTreeMap<String, NodeDecision> {
    set.clear();
    // Oldest first: of two Nodes claiming one range, the one registered first keeps it.
    let mut order: Vec<&Value> = nodes.iter().map(|n| n.borrow()).collect();
    order.sort_by(|a, b| {
        let t = |n: &Value| {
            n["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        t(a).cmp(&t(b))
            .then_with(|| util::name(a).cmp(util::name(b)))
    });
    let cluster = set.cluster().to_string();
    let mut conflicts = BTreeMap::new();
    let mut need = Vec::new();
    for n in &order {
        let name = util::name(n);
        let cidrs = node_pod_cidrs(n);
        if cidrs.is_empty() {
            if !util::is_deleting(n) {
                need.push(*n);
            }
            continue;
        }
        // The IPv4 entry; an IPv6 one (dual stack) is not ours to allocate.
        let Some(v4) = cidrs.iter().find_map(|c| c.parse::<Ipv4Cidr>().ok()) else {
            continue;
        };
        if let Err(e) = set.occupy(v4, name) {
            conflicts.insert(name.to_string(), e.to_string());
        }
    }
    let mut out = BTreeMap::new();
    let annotation = |n: &Value| -> Option<Value> {
        (n["metadata"]["annotations"][CLUSTER_CIDR_ANNOTATION].as_str() != Some(cluster.as_str()))
            .then(|| json!({ CLUSTER_CIDR_ANNOTATION: cluster }))
    };
    let needs: BTreeSet<&str> = need.iter().map(|n| util::name(n)).collect();
    for n in &order {
        let name = util::name(n);
        let ann = annotation(n);
        let mut meta = Map::new();
        if let Some(a) = &ann {
            meta.insert("annotations".into(), a.clone());
        }
        if needs.contains(name) {
            match set.allocate(name) {
                Some(c) => {
                    // The resourceVersion makes the assignment conditional: a Node changed
                    // since the list is looked at again in the next pass.
                    meta.insert(
                        "resourceVersion".into(),
                        n["metadata"]["resourceVersion"].clone(),
                    );
                    let c = c.to_string();
                    out.insert(
                        name.to_string(),
                        NodeDecision::Patch(json!({
                            "metadata": meta,
                            "spec": {"podCIDR": c, "podCIDRs": [c]},
                        })),
                    );
                }
                None => {
                    let patch = ann.map(|a| json!({"metadata": {"annotations": a}}));
                    out.insert(name.to_string(), NodeDecision::Exhausted(patch));
                }
            }
            continue;
        }
        let patch = ann.map(|a| json!({"metadata": {"annotations": a}}));
        if let Some(why) = conflicts.remove(name) {
            out.insert(name.to_string(), NodeDecision::Conflict(why, patch));
        } else if let Some(p) = patch {
            out.insert(name.to_string(), NodeDecision::Patch(p));
        }
    }
    out
}

pub struct NodeIpamController {
    client: LocalClient,
    set: CidrSet,
    informers: crate::informer::Informers,
    /// With shared caches: the Nodes changed since the last pass. A pass runs only when one of
    /// them lacks its range or annotation, a retry is due, or every [`FULL_RESYNC`]; Node
    /// status updates (17 a second from 1,000 nodes) otherwise each planned every Node again.
    queue: Option<std::sync::Arc<WorkQueue>>,
    resync: Resync,
    retry_at: Option<tokio::time::Instant>,
}

/// How often a queue-fed allocator plans every Node even when none changed in a way it cares for.
pub const FULL_RESYNC: Duration = Duration::from_secs(30);

/// Whether the allocator has work for this Node: no range yet, or not annotated with `cluster`.
pub fn needs_allocation(node: &Value, cluster: &str) -> bool {
    (node_pod_cidrs(node).is_empty() && !util::is_deleting(node))
        || node["metadata"]["annotations"][CLUSTER_CIDR_ANNOTATION].as_str() != Some(cluster)
}

impl NodeIpamController {
    /// Allocates `/mask` ranges of `cluster_cidr` (`--cluster-cidr`, `--node-cidr-mask-size`).
    pub fn new(client: LocalClient, cluster_cidr: &str, mask: u8) -> Result<Self, CidrError> {
        let cluster: Ipv4Cidr = cluster_cidr.parse()?;
        Ok(NodeIpamController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            set: CidrSet::new(cluster, mask)?,
            queue: None,
            resync: Resync::new(FULL_RESYNC),
            retry_at: None,
        })
    }

    /// Read Nodes from the shared caches (woken by the cache, not by a watch of its own).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        let q = std::sync::Arc::new(WorkQueue::default());
        if informers.queue_keys(&format!("{CORE}/nodes"), &q) {
            self.queue = Some(q);
        }
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

const COMPONENT: &str = "cidrAllocator";

#[async_trait]
impl Controller for NodeIpamController {
    fn name(&self) -> &'static str {
        "nodeipam"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/nodes")]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    #[tracing::instrument(name = "nodeipam", skip_all)]
    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
        if let Some(q) = &self.queue {
            let changed = q.take_ready();
            let cluster = self.set.cluster().to_string();
            let retry_due = self
                .retry_at
                .is_some_and(|t| t <= tokio::time::Instant::now());
            let work = changed
                .iter()
                .any(|k| nodes.get(k).is_some_and(|n| needs_allocation(n, &cluster)));
            if !work && !retry_due && !self.resync.due() {
                let left = self.resync.remaining();
                return Ok(Some(match self.retry_at {
                    Some(t) => left.min(t.saturating_duration_since(tokio::time::Instant::now())),
                    None => left,
                }));
            }
        }
        let by_name: BTreeMap<&str, &Value> = nodes.iter().map(|n| (util::name(n), &**n)).collect();
        let mut retry = None;
        let mut first_err = None;
        for (name, decision) in plan(&mut self.set, &nodes[..]) {
            let path = format!("{CORE}/nodes/{name}");
            let Some(node) = by_name.get(name.as_str()) else {
                continue;
            };
            let patch = match decision {
                NodeDecision::Patch(mut p) => {
                    if p["spec"]["podCIDR"].is_string() {
                        // Only onto the Node this plan saw: a plan from a cache older than a
                        // previous assignment must not give the Node a second range (the
                        // first would leak); the conflict retries from a fresh read.
                        if let Some(rv) = node["metadata"]["resourceVersion"].as_str() {
                            p["metadata"]["resourceVersion"] = json!(rv);
                        }
                    }
                    Some(p)
                }
                NodeDecision::Exhausted(p) => {
                    tracing::warn!(node = %name, cluster = %self.set.cluster(), "no pod CIDR left");
                    let mut involved = (*node).clone();
                    involved["apiVersion"] = json!("v1");
                    involved["kind"] = json!("Node");
                    util::best_effort(
                        "CIDRNotAvailable event",
                        util::record_event(
                            &self.client,
                            &involved,
                            "Normal",
                            "CIDRNotAvailable",
                            &format!("Node {name} status is now: CIDRNotAvailable"),
                            COMPONENT,
                        )
                        .await,
                    )
                    .await;
                    // Ranges come free only when Nodes go, which wakes this controller.
                    retry = Some(Duration::from_secs(30));
                    p
                }
                NodeDecision::Conflict(why, p) => {
                    tracing::warn!(node = %name, reason = %why, "node's own pod CIDR cannot be recorded");
                    let mut involved = (*node).clone();
                    involved["apiVersion"] = json!("v1");
                    involved["kind"] = json!("Node");
                    util::best_effort(
                        "CIDRAssignmentFailed event",
                        util::record_event(
                            &self.client,
                            &involved,
                            "Warning",
                            "CIDRAssignmentFailed",
                            &format!("Node {name}'s pod CIDR: {why}"),
                            COMPONENT,
                        )
                        .await,
                    )
                    .await;
                    p
                }
            };
            if let Some(p) = patch {
                match self.client.merge_patch(&path, &p).await {
                    Ok(_) => {
                        if let Some(c) = p["spec"]["podCIDR"].as_str() {
                            tracing::info!(node = %name, cidr = c, "assigned pod CIDR");
                        }
                    }
                    Err(e) if e.code == 404 => {}
                    Err(e) if e.code == 409 => {
                        tracing::debug!(node = %name, "the Node changed since this plan; planning again");
                        retry = Some(Duration::from_millis(200))
                    }
                    Err(e) => {
                        tracing::warn!(node = %name, error = %e.message, "updating node");
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        // A failed write is retried by a full pass (the run loop's backoff wakes it).
        let now = tokio::time::Instant::now();
        self.retry_at = match &first_err {
            Some(_) => Some(now),
            None => retry.map(|d| now + d),
        };
        match first_err {
            Some(e) => Err(e),
            None => Ok(retry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nodes_without_a_range_or_annotation_need_the_allocator() {
        let cluster = "10.42.0.0/16";
        let mut n = json!({"metadata": {"name": "n1"}, "spec": {}});
        assert!(needs_allocation(&n, cluster), "no range yet");
        n["spec"]["podCIDR"] = json!("10.42.1.0/24");
        n["spec"]["podCIDRs"] = json!(["10.42.1.0/24"]);
        assert!(needs_allocation(&n, cluster), "not annotated");
        n["metadata"]["annotations"] = json!({CLUSTER_CIDR_ANNOTATION: cluster});
        assert!(
            !needs_allocation(&n, cluster),
            "a status update of a done Node"
        );
        assert!(needs_allocation(&n, "10.0.0.0/8"), "another cluster CIDR");
    }

    fn node(name: &str, created: &str, cidr: Option<&str>) -> Value {
        let mut n = json!({"metadata": {"name": name, "creationTimestamp": created,
            "resourceVersion": "7"}, "spec": {}});
        if let Some(c) = cidr {
            n["spec"] = json!({"podCIDR": c, "podCIDRs": [c]});
        }
        n
    }

    fn set(cidr: &str, mask: u8) -> CidrSet {
        CidrSet::new(cidr.parse().unwrap(), mask).unwrap()
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(
            "10.42.0.0/16".parse::<Ipv4Cidr>().unwrap().to_string(),
            "10.42.0.0/16"
        );
        for bad in [
            "10.42.0.0",
            "10.42.0.0/33",
            "10.42.0/16",
            "x/8",
            "10.42.0.0/+1",
            "",
        ] {
            assert!(
                matches!(bad.parse::<Ipv4Cidr>(), Err(CidrError::Syntax(_))),
                "{bad}"
            );
        }
        assert_eq!(
            "10.42.1.0/16".parse::<Ipv4Cidr>(),
            Err(CidrError::HostBits("10.42.1.0/16".into()))
        );
        let c: Ipv4Cidr = "10.42.0.0/16".parse().unwrap();
        assert!(c.contains_net(&"10.42.7.0/24".parse().unwrap()));
        assert!(!c.contains_net(&"10.43.0.0/24".parse().unwrap()));
        assert!(!c.contains_net(&"10.0.0.0/8".parse().unwrap()));
        assert!(c.contains("10.42.255.1".parse().unwrap()));
        assert!(matches!(
            CidrSet::new(c, 8),
            Err(CidrError::MaskSize {
                mask: 8,
                cluster: 16
            })
        ));
    }

    #[test]
    fn nodes_get_the_next_free_range_and_keep_their_own() {
        let mut s = set("10.42.0.0/16", 24);
        let nodes = vec![
            node("a", "2026-01-01T00:00:00Z", None),
            node("b", "2026-01-01T00:00:01Z", Some("10.42.0.0/24")),
            node("c", "2026-01-01T00:00:02Z", None),
        ];
        let p = plan(&mut s, &nodes);
        let cidr = |n: &str| match &p[n] {
            NodeDecision::Patch(v) => v["spec"]["podCIDR"].as_str().map(str::to_string),
            other => panic!("{other:?}"),
        };
        // b registered with its own range and keeps it; a and c get the next free ones.
        assert_eq!(cidr("a").as_deref(), Some("10.42.1.0/24"));
        assert_eq!(cidr("c").as_deref(), Some("10.42.2.0/24"));
        assert_eq!(cidr("b"), None);
        match &p["a"] {
            NodeDecision::Patch(v) => {
                assert_eq!(v["spec"]["podCIDRs"], json!(["10.42.1.0/24"]));
                assert_eq!(v["metadata"]["resourceVersion"], "7");
                assert_eq!(
                    v["metadata"]["annotations"][CLUSTER_CIDR_ANNOTATION],
                    "10.42.0.0/16"
                );
            }
            other => panic!("{other:?}"),
        }
        // Once everything is assigned and annotated, a pass changes nothing.
        let mut done: Vec<Value> = nodes.clone();
        for (n, c) in done
            .iter_mut()
            .zip(["10.42.1.0/24", "10.42.0.0/24", "10.42.2.0/24"])
        {
            n["spec"] = json!({"podCIDR": c, "podCIDRs": [c]});
            n["metadata"]["annotations"] = json!({CLUSTER_CIDR_ANNOTATION: "10.42.0.0/16"});
        }
        assert!(plan(&mut s, &done).is_empty());
        // A deleted node's range is free again, but the next one goes round first.
        done.remove(0);
        done.push(node("d", "2026-01-01T00:00:03Z", None));
        let p = plan(&mut s, &done);
        assert!(
            matches!(&p["d"], NodeDecision::Patch(v) if v["spec"]["podCIDR"] == "10.42.3.0/24")
        );
    }

    #[test]
    fn exhaustion_and_conflicts_are_reported() {
        let mut s = set("10.42.0.0/23", 24);
        assert_eq!(s.capacity(), 2);
        let nodes = vec![
            node("a", "2026-01-01T00:00:00Z", Some("10.42.0.0/24")),
            node("b", "2026-01-01T00:00:01Z", Some("10.42.0.0/24")),
            node("c", "2026-01-01T00:00:02Z", Some("10.99.0.0/24")),
            node("d", "2026-01-01T00:00:03Z", None),
            node("e", "2026-01-01T00:00:04Z", None),
        ];
        let p = plan(&mut s, &nodes);
        assert!(
            matches!(&p["b"], NodeDecision::Conflict(w, _) if w == "10.42.0.0/24 is already assigned to node a")
        );
        assert!(
            matches!(&p["c"], NodeDecision::Conflict(w, _) if w.contains("not a /24 inside the cluster CIDR 10.42.0.0/23"))
        );
        assert!(
            matches!(&p["d"], NodeDecision::Patch(v) if v["spec"]["podCIDR"] == "10.42.1.0/24")
        );
        assert!(matches!(&p["e"], NodeDecision::Exhausted(Some(_))));
        // The first claimant keeps its range.
        assert!(matches!(&p["a"], NodeDecision::Patch(v) if v["spec"].is_null()));
    }
}
