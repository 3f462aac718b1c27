//! Dry escrow: a user whose ledger account is missing or empty while they run workloads is
//! "dry" from the first settlement that saw it so; after the grace period their workloads are
//! scaled to zero (Deployments, StatefulSets, unowned ReplicaSets, ReplicationControllers:
//! `spec.replicas: 0` with the previous count in `daas.io/suspended-replicas`) or suspended
//! (Jobs, CronJobs: `spec.suspend: true` with `daas.io/suspended: "true"`), each with a Warning
//! Event `EscrowExhausted`. Nothing is deleted; bare pods (no controller) are left running and
//! are still metered. When the account is funded again every object carrying the annotation is
//! restored (replicas from the annotation, unsuspended) with a Normal Event `EscrowFunded`.
//!
//! The rule a user cannot escape: while suspended, every pass re-applies the suspension to every
//! workload of the namespace; a workload the user scaled up again (with or without the
//! annotation) is scaled to zero again, its annotation now holding the count the user asked for.

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use daas_controllers::util;
use serde_json::{json, Value};

pub const SUSPENDED_REPLICAS: &str = "daas.io/suspended-replicas";
pub const SUSPENDED: &str = "daas.io/suspended";
const COMPONENT: &str = "daas-billing";

/// A namespace's funding state, as the enforcer tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Funding {
    /// Funded, or dry with nothing running: nothing to enforce.
    Ok,
    /// Dry since `since_ms` (the first settlement that saw it so) while running workloads.
    Dry { since_ms: u64 },
    /// Grace expired: the workloads are held at zero.
    Suspended,
}

/// What a pass does to the namespace's workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Suspend,
    Restore,
}

/// The next state and action: `funded` is the account's state now, `running` whether the
/// namespace runs workloads.
pub fn step(
    state: Funding,
    funded: bool,
    running: bool,
    now_ms: u64,
    grace_ms: u64,
) -> (Funding, Action) {
    match (state, funded) {
        (Funding::Suspended, true) => (Funding::Ok, Action::Restore),
        (_, true) => (Funding::Ok, Action::None),
        (Funding::Ok, false) if running => {
            if grace_ms == 0 {
                (Funding::Suspended, Action::Suspend)
            } else {
                (Funding::Dry { since_ms: now_ms }, Action::None)
            }
        }
        (Funding::Ok, false) => (Funding::Ok, Action::None),
        // Once dry, only funding clears it: scaling down and up again does not restart the grace.
        (Funding::Dry { since_ms }, false) if now_ms.saturating_sub(since_ms) >= grace_ms => {
            (Funding::Suspended, Action::Suspend)
        }
        (s @ Funding::Dry { .. }, false) => (s, Action::None),
        (Funding::Suspended, false) => (Funding::Suspended, Action::Suspend),
    }
}

/// The workload kinds the enforcer handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    StatefulSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::ReplicaSet,
        Kind::ReplicationController,
        Kind::Job,
        Kind::CronJob,
    ];

    fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet => "apps/v1",
            Kind::ReplicationController => "v1",
            Kind::Job | Kind::CronJob => "batch/v1",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::StatefulSet => "statefulsets",
            Kind::ReplicaSet => "replicasets",
            Kind::ReplicationController => "replicationcontrollers",
            Kind::Job => "jobs",
            Kind::CronJob => "cronjobs",
        }
    }

    fn collection(self, ns: &str) -> String {
        let prefix = match self.api_version() {
            "v1" => "/api/v1".to_string(),
            g => format!("/apis/{g}"),
        };
        format!("{prefix}/namespaces/{ns}/{}", self.plural())
    }

    fn scales(self) -> bool {
        !matches!(self, Kind::Job | Kind::CronJob)
    }

    /// Does the enforcer manage this object itself (not through its owner)? ReplicaSets owned
    /// by a Deployment follow the Deployment; Jobs of a CronJob are suspended too (they would
    /// keep running).
    fn managed(self, obj: &Value) -> bool {
        !(self == Kind::ReplicaSet && util::controller_ref(obj).is_some())
    }
}

/// The merge patch that suspends `obj`, if it is not suspended.
pub fn suspend_patch(kind: Kind, obj: &Value) -> Option<Value> {
    if kind.scales() {
        let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        (replicas > 0).then(|| {
            json!({"metadata": {"annotations": {SUSPENDED_REPLICAS: replicas.to_string()}},
                "spec": {"replicas": 0}})
        })
    } else {
        (obj["spec"]["suspend"].as_bool() != Some(true)).then(
            || json!({"metadata": {"annotations": {SUSPENDED: "true"}}, "spec": {"suspend": true}}),
        )
    }
}

/// The merge patch that restores `obj`, if the enforcer suspended it.
pub fn restore_patch(kind: Kind, obj: &Value) -> Option<Value> {
    let ann = &obj["metadata"]["annotations"];
    if kind.scales() {
        let n: i64 = ann[SUSPENDED_REPLICAS].as_str()?.parse().ok()?;
        Some(
            json!({"metadata": {"annotations": {SUSPENDED_REPLICAS: null}},
            "spec": {"replicas": n.max(0)}}),
        )
    } else {
        ann[SUSPENDED].as_str()?;
        Some(json!({"metadata": {"annotations": {SUSPENDED: null}}, "spec": {"suspend": false}}))
    }
}

/// Is `obj` held by the enforcer (carries its annotation)?
pub fn is_suspended(obj: &Value) -> bool {
    let ann = &obj["metadata"]["annotations"];
    ann[SUSPENDED_REPLICAS].is_string() || ann[SUSPENDED].is_string()
}

/// Where the enforcer reads and writes workloads (the API server; tests use an embedded one).
#[async_trait]
pub trait Workloads: Send + Sync {
    async fn list(&self, kind: Kind, ns: &str) -> Result<Vec<Value>, ApiError>;
    async fn patch(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError>;
    async fn event(&self, obj: &Value, warning: bool, reason: &str, message: &str);
}

#[async_trait]
impl Workloads for LocalClient {
    async fn list(&self, kind: Kind, ns: &str) -> Result<Vec<Value>, ApiError> {
        LocalClient::list(self, &kind.collection(ns)).await
    }

    async fn patch(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, ApiError> {
        self.merge_patch(&format!("{}/{name}", kind.collection(ns)), patch)
            .await
    }

    async fn event(&self, obj: &Value, warning: bool, reason: &str, message: &str) {
        let ty = if warning { "Warning" } else { "Normal" };
        if let Err(e) = util::record_event(self, obj, ty, reason, message, COMPONENT).await {
            tracing::warn!(error = %e, reason, "billing event not recorded");
        }
    }
}

/// Does the namespace run (or want to run) workloads the enforcer manages, and does any carry
/// its annotation?
pub async fn survey(w: &dyn Workloads, ns: &str) -> Result<(bool, bool), ApiError> {
    let (mut running, mut suspended) = (false, false);
    for kind in Kind::ALL {
        for o in w.list(kind, ns).await? {
            if !kind.managed(&o) {
                continue;
            }
            suspended |= is_suspended(&o);
            running |= suspend_patch(kind, &o).is_some();
        }
    }
    Ok((running, suspended))
}

/// Apply `action` to every managed workload of `ns`; returns how many objects changed.
pub async fn apply(
    w: &dyn Workloads,
    ns: &str,
    action: Action,
    why: &str,
) -> Result<usize, ApiError> {
    let mut changed = 0;
    if action == Action::None {
        return Ok(0);
    }
    for kind in Kind::ALL {
        for mut o in w.list(kind, ns).await? {
            if !kind.managed(&o) {
                continue;
            }
            let patch = match action {
                Action::Suspend => suspend_patch(kind, &o),
                Action::Restore => restore_patch(kind, &o),
                Action::None => None,
            };
            let Some(patch) = patch else { continue };
            let name = util::name(&o).to_string();
            match w.patch(kind, ns, &name, &patch).await {
                Ok(_) => changed += 1,
                Err(e) if e.code == 404 || e.code == 409 => continue,
                Err(e) => return Err(e),
            }
            o["apiVersion"] = json!(kind.api_version());
            o["kind"] = json!(kind.name());
            let (warning, reason, msg) = match action {
                Action::Suspend => (
                    true,
                    "EscrowExhausted",
                    format!("{} {name} scaled to zero: {why}", kind.name()),
                ),
                _ => (
                    false,
                    "EscrowFunded",
                    format!(
                        "{} {name} restored: the escrow account is funded",
                        kind.name()
                    ),
                ),
            };
            w.event(&o, warning, reason, &msg).await;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: u64 = 10_000;

    #[test]
    fn dry_then_grace_then_suspended_then_restored() {
        let (s, a) = step(Funding::Ok, false, true, 1000, GRACE);
        assert_eq!((s, a), (Funding::Dry { since_ms: 1000 }, Action::None));
        let (s, a) = step(s, false, true, 5000, GRACE);
        assert_eq!((s, a), (Funding::Dry { since_ms: 1000 }, Action::None));
        // Scaling to zero and back does not restart the grace.
        let (s, _) = step(s, false, false, 6000, GRACE);
        assert_eq!(s, Funding::Dry { since_ms: 1000 });
        let (s, a) = step(s, false, true, 11_000, GRACE);
        assert_eq!((s, a), (Funding::Suspended, Action::Suspend));
        // Re-applied on every pass while dry.
        assert_eq!(
            step(s, false, false, 12_000, GRACE),
            (Funding::Suspended, Action::Suspend)
        );
        assert_eq!(
            step(s, true, false, 13_000, GRACE),
            (Funding::Ok, Action::Restore)
        );
        // Funded before the grace ran out: nothing was touched.
        assert_eq!(
            step(Funding::Dry { since_ms: 0 }, true, true, 1, GRACE),
            (Funding::Ok, Action::None)
        );
        // Dry with nothing running: nothing to enforce.
        assert_eq!(
            step(Funding::Ok, false, false, 1, GRACE),
            (Funding::Ok, Action::None)
        );
    }

    #[test]
    fn patches_keep_the_count_and_restore_it() {
        let d = json!({"spec": {"replicas": 3}});
        let p = suspend_patch(Kind::Deployment, &d).unwrap();
        assert_eq!(p["spec"]["replicas"], 0);
        assert_eq!(p["metadata"]["annotations"][SUSPENDED_REPLICAS], "3");
        let held = json!({"metadata": {"annotations": {SUSPENDED_REPLICAS: "3"}}, "spec": {"replicas": 0}});
        assert!(suspend_patch(Kind::Deployment, &held).is_none());
        let r = restore_patch(Kind::Deployment, &held).unwrap();
        assert_eq!(r["spec"]["replicas"], 3);
        assert!(r["metadata"]["annotations"][SUSPENDED_REPLICAS].is_null());
        // Replicas default to 1.
        assert_eq!(
            suspend_patch(Kind::StatefulSet, &json!({"spec": {}})).unwrap()["metadata"]
                ["annotations"][SUSPENDED_REPLICAS],
            "1"
        );
        let j = json!({"spec": {"suspend": false}});
        let p = suspend_patch(Kind::Job, &j).unwrap();
        assert_eq!(p["spec"]["suspend"], true);
        let held =
            json!({"metadata": {"annotations": {SUSPENDED: "true"}}, "spec": {"suspend": true}});
        assert_eq!(
            restore_patch(Kind::CronJob, &held).unwrap()["spec"]["suspend"],
            false
        );
        // A CronJob the user suspended themselves is not "restored".
        assert!(restore_patch(Kind::CronJob, &json!({"spec": {"suspend": true}})).is_none());
    }

    #[test]
    fn a_user_clearing_the_annotation_is_suspended_again() {
        // The user removed the annotation and scaled back to 2: the next pass holds it again,
        // remembering 2.
        let escaped = json!({"metadata": {"annotations": {}}, "spec": {"replicas": 2}});
        let p = suspend_patch(Kind::Deployment, &escaped).unwrap();
        assert_eq!(p["spec"]["replicas"], 0);
        assert_eq!(p["metadata"]["annotations"][SUSPENDED_REPLICAS], "2");
        // Scaled up while keeping the annotation: held again, the annotation updated.
        let up = json!({"metadata": {"annotations": {SUSPENDED_REPLICAS: "5"}}, "spec": {"replicas": 4}});
        assert_eq!(
            suspend_patch(Kind::Deployment, &up).unwrap()["metadata"]["annotations"]
                [SUSPENDED_REPLICAS],
            "4"
        );
    }

    #[test]
    fn owned_replicasets_follow_their_deployment() {
        let owned = json!({"metadata": {"ownerReferences": [{"controller": true, "uid": "x", "kind": "Deployment", "name": "d", "apiVersion": "apps/v1"}]},
            "spec": {"replicas": 2}});
        assert!(!Kind::ReplicaSet.managed(&owned));
        assert!(Kind::ReplicaSet.managed(&json!({"spec": {"replicas": 2}})));
        assert!(Kind::Job.managed(&owned));
    }
}
