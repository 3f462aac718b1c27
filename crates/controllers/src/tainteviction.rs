//! NoExecute taint eviction (upstream's taint manager). A pod bound to a node with a `NoExecute`
//! taint it does not tolerate is deleted at once; a pod whose tolerations of those taints carry
//! `tolerationSeconds` is deleted when the shortest of them has run out, counted from when the
//! node was tainted (the taint's `timeAdded`, else when this controller first saw the taint) or
//! from when the pod was bound, whichever is later; a pod tolerating them without
//! `tolerationSeconds` stays. Removing the taint in time cancels the eviction.
//!
//! This module is the one owner of taint-based eviction: the node lifecycle controller only
//! taints an unreachable or not-ready node (woken by the Node's change, this controller evicts
//! what must go, so each pod is evicted once). Pods
//! on an unreachable node are deleted without a grace period (no kubelet is left to stop them);
//! elsewhere the pod's own grace period applies.
//!
//! Each eviction is announced with a `TaintManagerEviction` event ("Marking for deletion Pod
//! ns/name"), a cancelled one with "Cancelling deletion of Pod ns/name", and the pod gets the
//! `DisruptionTarget` condition (reason `DeletionByTaintManager`) before it is deleted.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::nodelifecycle::UNREACHABLE_TAINT;
use crate::scheduler::tolerates;
use crate::util::{self, best_effort, name, namespace, CORE};
use crate::Controller;

pub const COMPONENT: &str = "taint-eviction-controller";
pub const EVENT_REASON: &str = "TaintManagerEviction";
pub const DISRUPTION_REASON: &str = "DeletionByTaintManager";

/// What to do with one pod on a tainted node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not tainted, or every NoExecute taint tolerated forever.
    Stay,
    /// A NoExecute taint is not tolerated, or its toleration has run out.
    EvictNow,
    /// Tolerated for a while: evict at this time unless the taints go away first.
    EvictAt(DateTime<Utc>),
}

/// The node's NoExecute taints.
pub fn no_execute_taints(node: &Value) -> Vec<&Value> {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| ts.iter().filter(|t| t["effect"] == "NoExecute").collect())
        .unwrap_or_default()
}

/// Identity of a taint on a node (the first-seen clock for taints without `timeAdded`).
fn taint_key(node: &str, taint: &Value) -> String {
    format!(
        "{node}\u{0}{}\u{0}{}\u{0}{}",
        taint["key"].as_str().unwrap_or(""),
        taint["value"].as_str().unwrap_or(""),
        taint["effect"].as_str().unwrap_or("")
    )
}

/// When the pod was bound to its node: `PodScheduled=True` since, else its creation.
fn bound_at(pod: &Value) -> Option<DateTime<Utc>> {
    util::condition(pod, "PodScheduled")
        .filter(|c| c["status"] == "True")
        .and_then(|c| util::parse_time(&c["lastTransitionTime"]))
        .or_else(|| util::parse_time(&pod["metadata"]["creationTimestamp"]))
}

/// Decide a pod's fate under the node's NoExecute taints, each with the time it was added. Like
/// upstream, each taint is matched against the first toleration that tolerates it, and the pod
/// may stay for the shortest `tolerationSeconds` among those (zero or less: none at all).
pub fn verdict(pod: &Value, taints: &[(&Value, DateTime<Utc>)], now: DateTime<Utc>) -> Verdict {
    if taints.is_empty() {
        return Verdict::Stay;
    }
    let tolerations: Vec<&Value> = pod["spec"]["tolerations"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut min_seconds: Option<i64> = None;
    for (taint, _) in taints {
        let Some(t) = tolerations.iter().find(|t| tolerates(t, taint)) else {
            return Verdict::EvictNow;
        };
        match t["tolerationSeconds"].as_i64() {
            Some(s) if s <= 0 => return Verdict::EvictNow,
            Some(s) => min_seconds = Some(min_seconds.map_or(s, |m| m.min(s))),
            None => {}
        }
    }
    let Some(seconds) = min_seconds else {
        return Verdict::Stay;
    };
    let Some(tainted) = taints.iter().map(|(_, at)| *at).min() else {
        return Verdict::Stay;
    };
    let start = bound_at(pod).map_or(tainted, |b| b.max(tainted));
    let at = start + chrono::Duration::seconds(seconds);
    if at <= now {
        Verdict::EvictNow
    } else {
        Verdict::EvictAt(at)
    }
}

fn node_unreachable(node: &Value) -> bool {
    no_execute_taints(node)
        .iter()
        .any(|t| t["key"] == UNREACHABLE_TAINT)
}

fn pod_ref(pod: &Value) -> String {
    format!("{}/{}", namespace(pod), name(pod))
}

/// Evict one pod: event, `DisruptionTarget` condition, delete (without grace when `force`).
async fn evict(client: &LocalClient, pod: &Value, force: bool) -> Result<(), ApiError> {
    let path = util::path(CORE, namespace(pod), "pods", Some(name(pod)));
    if !util::is_deleting(pod) {
        tracing::info!(pod = %pod_ref(pod), node = pod["spec"]["nodeName"].as_str().unwrap_or(""), "evicting pod: NoExecute taint");
        best_effort(
            "event",
            util::record_event(
                client,
                pod,
                "Normal",
                EVENT_REASON,
                &format!("Marking for deletion Pod {}", pod_ref(pod)),
                COMPONENT,
            )
            .await,
        )
        .await;
        let mut conds: Vec<Value> = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conds.retain(|c| c["type"] != "DisruptionTarget");
        conds.push(json!({"type": "DisruptionTarget", "status": "True", "reason": DISRUPTION_REASON,
            "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": util::now_rfc3339()}));
        // Guarded by resourceVersion so a concurrent kubelet update is not overwritten; the
        // deletion goes ahead either way.
        let patch = json!({"metadata": {"resourceVersion": pod["metadata"]["resourceVersion"]},
            "status": {"conditions": conds}});
        match client.merge_patch(&format!("{path}/status"), &patch).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => {
                tracing::debug!(pod = %pod_ref(pod), error = %e.message, "could not set DisruptionTarget")
            }
        }
    }
    let r = if force {
        client
            .call_delete_with(&path, &json!({"gracePeriodSeconds": 0}))
            .await
    } else {
        client.delete(&path).await
    };
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// What this pass does with one pod; `None` when there is nothing to do now.
fn action(pod: &Value, v: Verdict, unreachable: bool) -> Option<bool> {
    if util::pod_terminated(pod) || v != Verdict::EvictNow {
        return None;
    }
    if util::is_deleting(pod) {
        // Already terminating: only hurry it on an unreachable node, where nothing stops it.
        let graceful = pod["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(1)
            > 0;
        return (unreachable && graceful).then_some(true);
    }
    Some(unreachable)
}

/// Watches nodes and pods; evicts pods per their tolerations of NoExecute taints.
pub struct TaintEvictionController {
    client: LocalClient,
    informers: crate::informer::Informers,
    /// First time a taint without `timeAdded` was seen, by node and taint.
    first_seen: HashMap<String, DateTime<Utc>>,
    /// Pods with a timed eviction pending (by uid), for the cancel event.
    pending: HashMap<String, Value>,
}

impl TaintEvictionController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

impl TaintEvictionController {
    pub fn new(client: LocalClient) -> Self {
        TaintEvictionController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            first_seen: HashMap::new(),
            pending: HashMap::new(),
        }
    }
}

#[async_trait]
impl Controller for TaintEvictionController {
    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "taint-eviction"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/nodes"), format!("{CORE}/pods")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let now = Utc::now();
        let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
        // Taint times per node; the first-seen clock only for taints still present.
        let mut seen_keys = HashSet::new();
        let mut tainted: HashMap<&str, (Vec<(&Value, DateTime<Utc>)>, bool)> = HashMap::new();
        for node in &nodes {
            let taints = no_execute_taints(node);
            if taints.is_empty() {
                continue;
            }
            let node_name = name(node);
            let mut timed = Vec::with_capacity(taints.len());
            for t in taints {
                let at = match util::parse_time(&t["timeAdded"]) {
                    Some(at) => at,
                    None => {
                        let k = taint_key(node_name, t);
                        let at = *self.first_seen.entry(k.clone()).or_insert(now);
                        seen_keys.insert(k);
                        at
                    }
                };
                timed.push((t, at));
            }
            tainted.insert(node_name, (timed, node_unreachable(node)));
        }
        self.first_seen.retain(|k, _| seen_keys.contains(k));
        if tainted.is_empty() && self.pending.is_empty() {
            return Ok(None);
        }

        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let mut next: Option<Duration> = None;
        let mut still_pending = HashMap::new();
        let mut err = None;
        for p in &pods {
            let Some(node) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
                continue;
            };
            let pod_uid = util::uid(p).to_string();
            let (v, unreachable) = match tainted.get(node) {
                Some((taints, unreachable)) => (verdict(p, taints, now), *unreachable),
                None => (Verdict::Stay, false),
            };
            match v {
                Verdict::EvictAt(at) if !util::is_deleting(p) && !util::pod_terminated(p) => {
                    if !self.pending.contains_key(&pod_uid) {
                        tracing::info!(pod = %pod_ref(p), %node, at = %at, "pod tolerates the NoExecute taint for a while; eviction scheduled");
                    }
                    still_pending.insert(pod_uid, (**p).clone());
                    let left = (at - now).to_std().unwrap_or_default();
                    // A little past the deadline, so the next pass finds it due.
                    let wake = left + Duration::from_millis(50);
                    next = Some(next.map_or(wake, |n| n.min(wake)));
                }
                Verdict::Stay => {
                    if self.pending.remove(&pod_uid).is_some() {
                        tracing::info!(pod = %pod_ref(p), %node, "NoExecute taint gone; eviction cancelled");
                        best_effort(
                            "event",
                            util::record_event(
                                &self.client,
                                p,
                                "Normal",
                                EVENT_REASON,
                                &format!("Cancelling deletion of Pod {}", pod_ref(p)),
                                COMPONENT,
                            )
                            .await,
                        )
                        .await;
                    }
                }
                _ => {
                    if let Some(force) = action(p, v, unreachable) {
                        if let Err(e) = evict(&self.client, p, force).await {
                            tracing::warn!(pod = %pod_ref(p), error = %e.message, "eviction failed; will retry");
                            err.get_or_insert(e);
                        }
                    }
                }
            }
        }
        // Pods gone or evicted drop out of the pending set without a cancel event.
        self.pending = still_pending;
        match err {
            Some(e) => Err(e),
            None => Ok(next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        util::parse_time(&json!(s)).unwrap()
    }

    fn pod(tolerations: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n", "tolerations": tolerations},
            "status": {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"}]}})
    }

    #[test]
    fn verdict_follows_tolerations() {
        let taint = json!({"key": "k", "value": "v", "effect": "NoExecute"});
        let added = at("2026-01-01T00:10:00Z");
        let now = at("2026-01-01T00:10:03Z");
        let taints = [(&taint, added)];
        // Not tolerated: at once.
        assert_eq!(verdict(&pod(json!([])), &taints, now), Verdict::EvictNow);
        let other = json!([{"key": "other", "operator": "Exists", "effect": "NoExecute"}]);
        assert_eq!(verdict(&pod(other), &taints, now), Verdict::EvictNow);
        // Tolerated forever: stays.
        let forever = json!([{"key": "k", "value": "v", "effect": "NoExecute"}]);
        assert_eq!(verdict(&pod(forever), &taints, now), Verdict::Stay);
        // Tolerated for 5 s from timeAdded: due at +5 s, then due now.
        let five = json!([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 5}]);
        assert_eq!(
            verdict(&pod(five.clone()), &taints, now),
            Verdict::EvictAt(at("2026-01-01T00:10:05Z"))
        );
        assert_eq!(
            verdict(&pod(five.clone()), &taints, at("2026-01-01T00:10:05Z")),
            Verdict::EvictNow
        );
        // A pod bound after the taint was added gets its full toleration from the binding.
        let mut late = pod(five);
        late["status"]["conditions"][0]["lastTransitionTime"] = json!("2026-01-01T00:20:00Z");
        assert_eq!(
            verdict(&late, &taints, at("2026-01-01T00:20:01Z")),
            Verdict::EvictAt(at("2026-01-01T00:20:05Z"))
        );
        // Zero (or negative) tolerationSeconds: at once.
        let zero = json!([{"operator": "Exists", "tolerationSeconds": 0}]);
        assert_eq!(verdict(&pod(zero), &taints, now), Verdict::EvictNow);
        // Several taints: all must be tolerated; the shortest time wins.
        let t2 = json!({"key": "k2", "effect": "NoExecute"});
        let two = [(&taint, added), (&t2, added)];
        let one_of_two = json!([{"key": "k", "operator": "Exists"}]);
        assert_eq!(verdict(&pod(one_of_two), &two, now), Verdict::EvictNow);
        let both = json!([{"key": "k", "operator": "Exists", "tolerationSeconds": 25},
            {"key": "k2", "operator": "Exists", "tolerationSeconds": 5}]);
        assert_eq!(
            verdict(&pod(both), &two, now),
            Verdict::EvictAt(at("2026-01-01T00:10:05Z"))
        );
        // No taints: stays.
        assert_eq!(verdict(&pod(json!([])), &[], now), Verdict::Stay);
    }

    #[test]
    fn only_no_execute_taints_count_and_unreachable_forces() {
        let node = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"},
            {"key": UNREACHABLE_TAINT, "effect": "NoExecute"}]}});
        let ts = no_execute_taints(&node);
        assert_eq!(ts.len(), 1);
        assert!(node_unreachable(&node));
        let p = pod(json!([]));
        assert_eq!(action(&p, Verdict::EvictNow, true), Some(true));
        assert_eq!(action(&p, Verdict::EvictNow, false), Some(false));
        assert_eq!(action(&p, Verdict::Stay, true), None);
        let mut done = p.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!(action(&done, Verdict::EvictNow, true), None);
        let mut terminating = p.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        terminating["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert_eq!(action(&terminating, Verdict::EvictNow, true), Some(true));
        assert_eq!(action(&terminating, Verdict::EvictNow, false), None);
    }
}
