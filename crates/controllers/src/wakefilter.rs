//! Which changes of a shared cache wake a controller (upstream's event handlers: a controller's
//! `updatePod`/`updateNode` returns early when the change does not concern it). At 1,000 nodes
//! and 10,000 pods most changes are pod status writes of ReplicaSet pods and Node heartbeats;
//! a controller that does a full pass on every change of `/api/v1/pods` then spends the
//! master's CPU re-reading what did not change for it. A [`WakeFilter`] sees the object before
//! and after each change (`None`: absent) and says whether the controller must run.
//!
//! The filters never hide a change the controller's pass would act on; the periodic resync
//! still runs every pass.

use std::sync::Arc;

use serde_json::Value;

use crate::informer::{Informer, Informers};
use crate::util;

/// Whether a change (object before, after) must wake a controller.
pub type WakeFilter = Arc<dyn Fn(Option<&Value>, Option<&Value>) -> bool + Send + Sync>;

/// Every change (a plain watch).
pub fn any() -> WakeFilter {
    Arc::new(|_, _| true)
}

fn both<'a>(old: Option<&'a Value>, new: Option<&'a Value>) -> impl Iterator<Item = &'a Value> {
    old.into_iter().chain(new)
}

/// An object appeared or went away.
fn added_or_deleted(old: Option<&Value>, new: Option<&Value>) -> bool {
    old.is_none() || new.is_none()
}

/// Any of these fields (JSON pointers) differs between before and after.
fn differs(old: Option<&Value>, new: Option<&Value>, pointers: &[&str]) -> bool {
    match (old, new) {
        (Some(o), Some(n)) => pointers.iter().any(|p| o.pointer(p) != n.pointer(p)),
        _ => true,
    }
}

/// Pods controlled by one of `kinds` (ownerReference `kind` with `controller: true`), or orphans
/// (which such a controller might adopt): the pods a DaemonSet, StatefulSet or Job controller
/// works on. Pods of ReplicaSets do not wake them.
pub fn controlled_by_kinds(kinds: &'static [&'static str]) -> WakeFilter {
    Arc::new(move |old, new| {
        both(old, new).any(|p| match util::controller_ref(p) {
            Some(r) => kinds.iter().any(|k| r["kind"] == *k),
            None => true,
        })
    })
}

/// Objects in a namespace where the cache `of` (e.g. `/api/v1/services`) holds an object:
/// a pod change matters to the Endpoints controller only where there are Services. The cache
/// `of` wakes the controller itself when such an object comes (its own watch), so nothing is
/// missed: that pass sees every pod of the namespace.
pub fn in_namespaces_with(informers: &Informers, of: &str) -> WakeFilter {
    match informers.informer(of) {
        Some(cache) => in_namespaces_of(cache),
        None => any(),
    }
}

fn in_namespaces_of(cache: Arc<Informer>) -> WakeFilter {
    Arc::new(move |old, new| {
        let snap = cache.peek();
        both(old, new).any(|o| snap.in_namespace(util::namespace(o)).next().is_some())
    })
}

/// Ownership, finalizers or deletion changed, or the object came or went: what the garbage
/// collector acts on (a status write never does).
pub fn ownership_or_deletion() -> WakeFilter {
    Arc::new(|old, new| {
        added_or_deleted(old, new)
            || differs(
                old,
                new,
                &[
                    "/metadata/ownerReferences",
                    "/metadata/finalizers",
                    "/metadata/deletionTimestamp",
                    "/metadata/uid",
                ],
            )
    })
}

/// What node controllers act on: a Node that came or went, its labels, taints, spec
/// (unschedulable, pod CIDR), deletion, addresses, or its Ready condition's status. A
/// heartbeat (new `lastHeartbeatTime`, capacity unchanged) does not wake them.
pub fn node_changed() -> WakeFilter {
    Arc::new(|old, new| {
        added_or_deleted(old, new)
            || differs(
                old,
                new,
                &[
                    "/metadata/labels",
                    "/metadata/deletionTimestamp",
                    "/spec",
                    "/status/addresses",
                    "/status/allocatable",
                ],
            )
            || node_ready(old) != node_ready(new)
    })
}

fn node_ready(n: Option<&Value>) -> Option<String> {
    n?["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str())
        .map(str::to_string)
}

/// Pods that mount a PersistentVolumeClaim (the volume controller's consumers).
pub fn pod_uses_claims() -> WakeFilter {
    Arc::new(|old, new| {
        both(old, new).any(|p| {
            p["spec"]["volumes"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(|v| v.get("persistentVolumeClaim").is_some()))
        })
    })
}

/// Either filter.
pub fn or(a: WakeFilter, b: WakeFilter) -> WakeFilter {
    Arc::new(move |old, new| a(old, new) || b(old, new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(owner_kind: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}});
        if let Some(k) = owner_kind {
            p["metadata"]["ownerReferences"] =
                json!([{"kind": k, "name": "o", "uid": "o1", "controller": true}]);
        }
        p
    }

    #[test]
    fn workload_controllers_see_only_their_pods_and_orphans() {
        let f = controlled_by_kinds(&["DaemonSet"]);
        let rs = pod(Some("ReplicaSet"));
        let mut rs2 = rs.clone();
        rs2["status"]["phase"] = json!("Running");
        assert!(!f(Some(&rs), Some(&rs2)), "a ReplicaSet pod's status write");
        assert!(!f(None, Some(&rs)));
        assert!(f(None, Some(&pod(Some("DaemonSet")))));
        assert!(f(Some(&pod(Some("DaemonSet"))), None), "its pod deleted");
        assert!(f(None, Some(&pod(None))), "an orphan it might adopt");
        // Released by a DaemonSet: the change concerns it.
        assert!(f(Some(&pod(Some("DaemonSet"))), Some(&rs)));
    }

    #[test]
    fn the_collector_ignores_status_writes() {
        let f = ownership_or_deletion();
        let a = pod(Some("ReplicaSet"));
        let mut b = a.clone();
        b["status"]["phase"] = json!("Running");
        assert!(!f(Some(&a), Some(&b)));
        let mut c = b.clone();
        c["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(f(Some(&b), Some(&c)));
        let mut d = b.clone();
        d["metadata"]["ownerReferences"] = json!([]);
        assert!(f(Some(&b), Some(&d)), "orphaned");
        let mut e = b.clone();
        e["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        assert!(f(Some(&b), Some(&e)));
        assert!(f(None, Some(&a)) && f(Some(&a), None));
    }

    #[test]
    fn node_heartbeats_do_not_wake_node_controllers() {
        let f = node_changed();
        let n = json!({"metadata": {"name": "n1", "labels": {"a": "b"}}, "spec": {"podCIDR": "10.0.0.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t1"}]}});
        let mut beat = n.clone();
        beat["status"]["conditions"][0]["lastHeartbeatTime"] = json!("t2");
        assert!(!f(Some(&n), Some(&beat)));
        let mut unknown = beat.clone();
        unknown["status"]["conditions"][0]["status"] = json!("Unknown");
        assert!(f(Some(&beat), Some(&unknown)), "readiness changed");
        let mut relabel = n.clone();
        relabel["metadata"]["labels"]["zone"] = json!("z1");
        assert!(f(Some(&n), Some(&relabel)));
        let mut tainted = n.clone();
        tainted["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        assert!(f(Some(&n), Some(&tainted)));
        assert!(f(None, Some(&n)) && f(Some(&n), None));
    }

    #[test]
    fn claims_and_namespaces() {
        let f = pod_uses_claims();
        let mut p = pod(None);
        assert!(!f(None, Some(&p)));
        p["spec"]["volumes"] = json!([{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]);
        assert!(f(None, Some(&p)));

        let services = Informer::for_test("/api/v1/services");
        services.replace(
            vec![json!({"metadata": {"name": "s", "namespace": "web", "resourceVersion": "1"}})],
            1,
        );
        let f = in_namespaces_of(services.clone());
        let mut web = pod(None);
        web["metadata"]["namespace"] = json!("web");
        assert!(f(None, Some(&web)));
        assert!(!f(None, Some(&pod(None))), "no Service in ns");
        let either = or(f, any());
        assert!(either(None, Some(&pod(None))));
    }
}
