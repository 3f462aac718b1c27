//! Persistent volumes: the binder (upstream pkg/controller/volume/persistentvolume), the
//! `local-path` provisioner, reclaiming, and the pvc-/pv-protection controllers
//! (pkg/controller/volume/pvcprotection, pvprotection); plus what the scheduler asks of claims
//! (its VolumeBinding plugin: [`VolumeView`]).
//!
//! - A claim with `spec.volumeName` is bound to that volume; otherwise to the smallest Available
//!   volume of its class whose access modes, capacity, selector (and, once a node was selected,
//!   node affinity) fit. Claims of a `WaitForFirstConsumer` class wait for the scheduler to set
//!   `volume.kubernetes.io/selected-node`.
//! - A `local-path` claim with a selected node and no fitting volume gets a new volume: a `local`
//!   source at `LOCAL_PATH_PREFIX/<pv name>` with required node affinity to that node. The
//!   master does not know agents' data directories: the prefix is a virtual root that the agent
//!   maps onto `<its data dir>/storage` (and refuses anything outside it).
//! - A volume whose claim is gone is Released; with reclaim policy Delete it is deleted. A
//!   local-path volume carries [`CLEANUP_FINALIZER`], which the node that holds the data removes
//!   once it deleted the directory, so the object goes only after the data.
//! - Claims being deleted keep `kubernetes.io/pvc-protection` while a running pod uses them;
//!   volumes being deleted keep `kubernetes.io/pv-protection` while bound.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use daas_apimachinery::quantity::value_milli;
use daas_apimachinery::selector::{labels_from_value, LabelSelector};
pub use daas_apiserver::registry::persistentvolume::{
    local_path_node, CLEANUP_FINALIZER, HOSTNAME_LABEL, LOCAL_PATH_PREFIX,
};
use daas_apiserver::registry::persistentvolume::{PVC_PROTECTION, PV_PROTECTION};
use daas_apiserver::registry::storageclass::LOCAL_PATH_PROVISIONER;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{self, best_effort, is_deleting, name, namespace, uid, CORE};
use crate::Controller;

/// The annotation the scheduler sets on a `WaitForFirstConsumer` claim: the node chosen.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The annotation naming the provisioner of a dynamically provisioned volume.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Set on a claim once the binder bound it.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";

const COMPONENT: &str = "persistentvolume-controller";
const STORAGE_CLASSES: &str = "/apis/storage.k8s.io/v1/storageclasses";

fn class_of(o: &Value) -> String {
    o["spec"]["storageClassName"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn modes(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(|m| m.as_str()).collect())
        .unwrap_or_default()
}

/// Does a volume's required node affinity admit `node` (true without affinity)?
pub fn pv_fits_node(pv: &Value, node: &Value) -> bool {
    let req = &pv["spec"]["nodeAffinity"]["required"];
    if !req.is_object() {
        return true;
    }
    let pod_like = json!({"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": req}}}});
    crate::scheduler::node_selector_matches(&pod_like, node)
}

/// Does `pv` satisfy `pvc` (class, access modes, capacity, selector)?
pub fn pv_matches_claim(pv: &Value, pvc: &Value) -> bool {
    if class_of(pv) != class_of(pvc) {
        return false;
    }
    if pv["spec"]["volumeMode"].as_str().unwrap_or("Filesystem")
        != pvc["spec"]["volumeMode"].as_str().unwrap_or("Filesystem")
    {
        return false;
    }
    let have = modes(&pv["spec"]["accessModes"]);
    if !modes(&pvc["spec"]["accessModes"])
        .iter()
        .all(|m| have.contains(m))
    {
        return false;
    }
    let want = value_milli(&pvc["spec"]["resources"]["requests"]["storage"]).unwrap_or(0);
    let cap = value_milli(&pv["spec"]["capacity"]["storage"]).unwrap_or(0);
    if cap < want {
        return false;
    }
    let sel = &pvc["spec"]["selector"];
    if sel.is_object() {
        let Ok(s) = LabelSelector::from_json(sel) else {
            return false;
        };
        if !s.matches(&labels_from_value(&pv["metadata"]["labels"])) {
            return false;
        }
    }
    true
}

/// Is the volume free for `pvc`: no claim, or pre-bound to exactly this claim?
fn available_for(pv: &Value, pvc: &Value) -> bool {
    if is_deleting(pv) {
        return false;
    }
    let cr = &pv["spec"]["claimRef"];
    if cr.is_null() {
        return pv["status"]["phase"] != "Released";
    }
    cr["namespace"] == namespace(pvc)
        && cr["name"] == name(pvc)
        && cr["uid"]
            .as_str()
            .is_none_or(|u| u.is_empty() || u == uid(pvc))
}

/// The best volume for a claim: the smallest fitting one (then by name).
pub fn find_volume<'a>(pvs: &'a [Value], pvc: &Value, node: Option<&Value>) -> Option<&'a Value> {
    pvs.iter()
        .filter(|pv| available_for(pv, pvc) && pv_matches_claim(pv, pvc))
        .filter(|pv| node.is_none_or(|n| pv_fits_node(pv, n)))
        .min_by(|a, b| {
            let cap = |v: &Value| value_milli(&v["spec"]["capacity"]["storage"]).unwrap_or(0);
            cap(a).cmp(&cap(b)).then_with(|| name(a).cmp(name(b)))
        })
}

/// The claims of a pod's `persistentVolumeClaim` volumes.
pub fn pod_claims(pod: &Value) -> Vec<&str> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .collect()
}

/// What the scheduler needs to know about claims, volumes and classes in one pass.
pub struct VolumeView {
    pvcs: HashMap<(String, String), Value>,
    pvs: Vec<Value>,
    classes: HashMap<String, Value>,
}

/// Where a pod's claims stand for the scheduler.
#[derive(Debug, PartialEq, Eq)]
pub enum ClaimState {
    /// Every claim is bound: the pod may be bound to a node.
    Bound,
    /// Some claims wait for the node the pod goes to (`WaitForFirstConsumer`): the scheduler
    /// picks a node and names it on these claims (those without a selected node yet).
    Delayed(Vec<String>),
    /// The pod cannot be scheduled now (message as kube-scheduler's).
    Unschedulable(String),
}

impl VolumeView {
    pub async fn load(client: &LocalClient) -> Result<Self, ApiError> {
        let pvcs = client
            .list(&format!("{CORE}/persistentvolumeclaims"))
            .await?
            .into_iter()
            .map(|c| ((namespace(&c).to_string(), name(&c).to_string()), c))
            .collect();
        let pvs = client.list(&format!("{CORE}/persistentvolumes")).await?;
        let classes = client
            .list(STORAGE_CLASSES)
            .await?
            .into_iter()
            .map(|c| (name(&c).to_string(), c))
            .collect();
        Ok(VolumeView { pvcs, pvs, classes })
    }

    fn claim(&self, ns: &str, n: &str) -> Option<&Value> {
        self.pvcs.get(&(ns.to_string(), n.to_string()))
    }

    fn bound_pv(&self, pvc: &Value) -> Option<&Value> {
        let vn = pvc["spec"]["volumeName"]
            .as_str()
            .filter(|v| !v.is_empty())?;
        self.pvs.iter().find(|pv| name(pv) == vn)
    }

    fn wait_for_consumer(&self, pvc: &Value) -> bool {
        self.classes
            .get(&class_of(pvc))
            .is_some_and(|sc| sc["volumeBindingMode"] == "WaitForFirstConsumer")
    }

    /// Where the pod's claims stand (before any node is considered).
    pub fn state(&self, pod: &Value) -> ClaimState {
        let ns = namespace(pod);
        let mut delayed = Vec::new();
        for c in pod_claims(pod) {
            let Some(pvc) = self.claim(ns, c) else {
                return ClaimState::Unschedulable(format!(
                    "persistentvolumeclaim \"{c}\" not found"
                ));
            };
            if is_deleting(pvc) {
                return ClaimState::Unschedulable(format!(
                    "persistentvolumeclaim \"{c}\" is being deleted"
                ));
            }
            if pvc["status"]["phase"] == "Bound" && self.bound_pv(pvc).is_some() {
                continue;
            }
            if !self.wait_for_consumer(pvc) {
                return ClaimState::Unschedulable(
                    "pod has unbound immediate PersistentVolumeClaims".into(),
                );
            }
            if pvc["metadata"]["annotations"][SELECTED_NODE].is_null() {
                delayed.push(c.to_string());
            } else {
                // The node is chosen; the binder or provisioner has yet to bind the claim.
                delayed.push(String::new());
            }
        }
        if delayed.is_empty() {
            ClaimState::Bound
        } else {
            delayed.retain(|c| !c.is_empty());
            ClaimState::Delayed(delayed)
        }
    }

    /// Why `node` does not suit the pod's claims (kube-scheduler's wording); empty if it does.
    pub fn node_reasons(&self, pod: &Value, node: &Value) -> Vec<String> {
        let ns = namespace(pod);
        for c in pod_claims(pod) {
            let Some(pvc) = self.claim(ns, c) else {
                continue;
            };
            if let Some(pv) = self.bound_pv(pvc) {
                if !pv_fits_node(pv, node) {
                    return vec!["node(s) had volume node affinity conflict".into()];
                }
                continue;
            }
            if let Some(sel) = pvc["metadata"]["annotations"][SELECTED_NODE].as_str() {
                if sel != name(node) {
                    return vec!["node(s) didn't match the node selected for the claim".into()];
                }
                continue;
            }
            let provisioned = self
                .classes
                .get(&class_of(pvc))
                .is_some_and(|sc| sc["provisioner"] == LOCAL_PATH_PROVISIONER);
            if !provisioned && find_volume(&self.pvs, pvc, Some(node)).is_none() {
                return vec!["node(s) didn't find available persistent volumes to bind".into()];
            }
        }
        Vec::new()
    }
}

/// Set `volume.kubernetes.io/selected-node` on the pod's delayed claims.
pub async fn select_node(
    client: &LocalClient,
    pod: &Value,
    claims: &[String],
    node: &str,
) -> Result<(), ApiError> {
    for c in claims {
        let p = util::path(CORE, namespace(pod), "persistentvolumeclaims", Some(c));
        client
            .merge_patch(
                &p,
                &json!({"metadata": {"annotations": {SELECTED_NODE: node}}}),
            )
            .await?;
    }
    Ok(())
}

pub struct PersistentVolumeController {
    client: LocalClient,
    informers: crate::informer::Informers,
}

impl PersistentVolumeController {
    pub fn new(client: LocalClient) -> Self {
        PersistentVolumeController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
        }
    }

    /// Read pods and nodes from the shared caches (and write through their client): at 10,000
    /// pods a direct list of them on every pod change was the largest cost of the master.
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }

    fn pv_path(n: &str) -> String {
        format!("{CORE}/persistentvolumes/{n}")
    }

    fn pvc_path(pvc: &Value) -> String {
        util::path(
            CORE,
            namespace(pvc),
            "persistentvolumeclaims",
            Some(name(pvc)),
        )
    }

    async fn set_pv_phase(&self, pv: &Value, phase: &str) -> Result<(), ApiError> {
        if pv["status"]["phase"] == phase {
            return Ok(());
        }
        let p = format!("{}/status", Self::pv_path(name(pv)));
        let r = self
            .client
            .merge_patch(
                &p,
                &json!({"status": {"phase": phase, "lastPhaseTransitionTime": util::now_rfc3339()}}),
            )
            .await;
        ignore_gone(r)
    }

    async fn set_claim_status(&self, pvc: &Value, status: Value) -> Result<(), ApiError> {
        let p = format!("{}/status", Self::pvc_path(pvc));
        ignore_gone(
            self.client
                .merge_patch(&p, &json!({ "status": status }))
                .await,
        )
    }

    /// Bind `pvc` to `pv`: the volume's claimRef first (the claim's volumeName is the
    /// authoritative half), then the claim.
    async fn bind(&self, pvc: &Value, pv: &Value) -> Result<(), ApiError> {
        let claim_ref = json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1",
            "namespace": namespace(pvc), "name": name(pvc), "uid": uid(pvc),
            "resourceVersion": pvc["metadata"]["resourceVersion"]});
        if pv["spec"]["claimRef"]["uid"] != uid(pvc) {
            self.client
                .merge_patch(
                    &Self::pv_path(name(pv)),
                    &json!({"spec": {"claimRef": claim_ref}}),
                )
                .await?;
        }
        self.set_pv_phase(pv, "Bound").await?;
        if pvc["spec"]["volumeName"].as_str() != Some(name(pv))
            || pvc["metadata"]["annotations"][BIND_COMPLETED].is_null()
        {
            self.client
                .merge_patch(
                    &Self::pvc_path(pvc),
                    &json!({"metadata": {"annotations": {BIND_COMPLETED: "yes"}},
                            "spec": {"volumeName": name(pv)}}),
                )
                .await?;
        }
        if pvc["status"]["phase"] != "Bound" {
            self.set_claim_status(
                pvc,
                json!({"phase": "Bound", "accessModes": pv["spec"]["accessModes"],
                       "capacity": pv["spec"]["capacity"]}),
            )
            .await?;
            let msg = format!("Successfully bound to volume {}", name(pv));
            event(&self.client, pvc, "Normal", "Bound", &msg).await;
        }
        Ok(())
    }

    /// A new local-path volume for `pvc` on `node`.
    async fn provision(&self, pvc: &Value, sc: &Value, node: &str) -> Result<Value, ApiError> {
        let pv_name = format!("pvc-{}", uid(pvc));
        if let Some(pv) = self.client.get_opt(&Self::pv_path(&pv_name)).await? {
            return Ok(pv);
        }
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name,
                "annotations": {PROVISIONED_BY: LOCAL_PATH_PROVISIONER},
                "finalizers": [CLEANUP_FINALIZER]},
            "spec": {
                "capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
                "accessModes": pvc["spec"]["accessModes"],
                "persistentVolumeReclaimPolicy": sc["reclaimPolicy"].as_str().unwrap_or("Delete"),
                "storageClassName": name(sc),
                "volumeMode": pvc["spec"]["volumeMode"].as_str().unwrap_or("Filesystem"),
                "local": {"path": format!("{LOCAL_PATH_PREFIX}/{pv_name}")},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}},
                "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                    "namespace": namespace(pvc), "name": name(pvc), "uid": uid(pvc)}}});
        let created = match self
            .client
            .create(&format!("{CORE}/persistentvolumes"), &pv)
            .await
        {
            Ok(pv) => pv,
            Err(e) if e.code == 409 => self.client.get(&Self::pv_path(&pv_name)).await?,
            Err(e) => return Err(e),
        };
        let msg = format!("Successfully provisioned volume {pv_name} on node {node}");
        event(&self.client, pvc, "Normal", "ProvisioningSucceeded", &msg).await;
        Ok(created)
    }

    async fn sync_claim(
        &self,
        pvc: &Value,
        pvs: &[Value],
        classes: &HashMap<String, Value>,
        nodes: &HashMap<String, std::sync::Arc<Value>>,
    ) -> Result<(), ApiError> {
        if let Some(vn) = pvc["spec"]["volumeName"].as_str().filter(|v| !v.is_empty()) {
            match pvs.iter().find(|pv| name(pv) == vn) {
                None => {
                    if pvc["status"]["phase"] == "Bound" {
                        self.set_claim_status(pvc, json!({"phase": "Lost"})).await?;
                        let msg = "Bound claim has lost its PersistentVolume. Data on the volume is lost!";
                        event(&self.client, pvc, "Warning", "ClaimLost", msg).await;
                    }
                }
                Some(pv) => {
                    let cr = &pv["spec"]["claimRef"];
                    let ours = cr.is_null()
                        || (cr["namespace"] == namespace(pvc)
                            && cr["name"] == name(pvc)
                            && cr["uid"]
                                .as_str()
                                .is_none_or(|u| u.is_empty() || u == uid(pvc)));
                    if ours && !is_deleting(pv) {
                        self.bind(pvc, pv).await?;
                    } else if pvc["status"]["phase"] == "Bound" {
                        self.set_claim_status(pvc, json!({"phase": "Lost"})).await?;
                    }
                }
            }
            return Ok(());
        }
        let class = class_of(pvc);
        let sc = classes.get(&class);
        let wffc = sc.is_some_and(|sc| sc["volumeBindingMode"] == "WaitForFirstConsumer");
        let selected = pvc["metadata"]["annotations"][SELECTED_NODE].as_str();
        if wffc && selected.is_none() {
            return Ok(());
        }
        let node = selected.and_then(|n| nodes.get(n)).map(|n| &**n);
        if let Some(pv) = find_volume(pvs, pvc, node) {
            return self.bind(pvc, pv).await;
        }
        if let (Some(sc), Some(node)) = (sc, selected) {
            if sc["provisioner"] == LOCAL_PATH_PROVISIONER {
                let pv = self.provision(pvc, sc, node).await?;
                return self.bind(pvc, &pv).await;
            }
        }
        Ok(())
    }

    async fn sync_volume(
        &self,
        pv: &Value,
        pvcs: &HashMap<(String, String), Value>,
    ) -> Result<(), ApiError> {
        let cr = &pv["spec"]["claimRef"];
        if cr.is_null() {
            if pv["status"]["phase"] == "Pending" {
                self.set_pv_phase(pv, "Available").await?;
            }
            return Ok(());
        }
        let key = (
            cr["namespace"].as_str().unwrap_or("").to_string(),
            cr["name"].as_str().unwrap_or("").to_string(),
        );
        let claim = pvcs.get(&key).filter(|c| {
            cr["uid"]
                .as_str()
                .is_none_or(|u| u.is_empty() || u == uid(c))
        });
        match claim {
            Some(c) if c["spec"]["volumeName"].as_str() == Some(name(pv)) => {
                self.set_pv_phase(pv, "Bound").await
            }
            // Pre-bound, or bound by us and the claim not yet updated: the claim's sync binds.
            Some(_) => Ok(()),
            None if cr["uid"].as_str().is_none_or(|u| u.is_empty()) => {
                // Pre-bound to a claim that does not exist yet: still available to it.
                if pv["status"]["phase"] == "Pending" {
                    self.set_pv_phase(pv, "Available").await?;
                }
                Ok(())
            }
            None => {
                self.set_pv_phase(pv, "Released").await?;
                if pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" && !is_deleting(pv) {
                    ignore_gone(self.client.delete(&Self::pv_path(name(pv))).await)?;
                }
                Ok(())
            }
        }
    }

    /// Drop the protection finalizers of objects being deleted that nothing uses any more.
    async fn protect(
        &self,
        pvcs: &HashMap<(String, String), Value>,
        pvs: &[Value],
        pods: &[std::sync::Arc<Value>],
    ) -> Result<(), ApiError> {
        for pvc in pvcs.values().filter(|c| is_deleting(c)) {
            if !has_finalizer(pvc, PVC_PROTECTION) {
                continue;
            }
            let in_use = pods.iter().any(|p| {
                namespace(p) == namespace(pvc)
                    && !util::pod_terminated(p)
                    && pod_claims(p).contains(&name(pvc))
            });
            if !in_use {
                remove_finalizer(&self.client, &Self::pvc_path(pvc), pvc, PVC_PROTECTION).await?;
            }
        }
        for pv in pvs.iter().filter(|v| is_deleting(v)) {
            if has_finalizer(pv, PV_PROTECTION) && pv["status"]["phase"] != "Bound" {
                remove_finalizer(&self.client, &Self::pv_path(name(pv)), pv, PV_PROTECTION).await?;
            }
        }
        Ok(())
    }
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == f))
}

/// Remove finalizer `f` with an update guarded by the object's resourceVersion.
pub async fn remove_finalizer(
    client: &LocalClient,
    path: &str,
    obj: &Value,
    f: &str,
) -> Result<(), ApiError> {
    let mut o = obj.clone();
    if let Some(a) = o["metadata"]["finalizers"].as_array_mut() {
        a.retain(|x| x != f);
    }
    match client.update(path, &o).await {
        Ok(_) => Ok(()),
        // Changed meanwhile (the next pass retries) or already gone.
        Err(e) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn ignore_gone<T>(r: Result<T, ApiError>) -> Result<(), ApiError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn event(client: &LocalClient, pvc: &Value, ty: &str, reason: &str, msg: &str) {
    let mut involved = pvc.clone();
    involved["apiVersion"] = json!("v1");
    involved["kind"] = json!("PersistentVolumeClaim");
    let r = util::record_event(client, &involved, ty, reason, msg, COMPONENT).await;
    best_effort("persistent volume event", r).await;
}

#[async_trait]
impl Controller for PersistentVolumeController {
    fn name(&self) -> &'static str {
        "persistentvolume"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{CORE}/persistentvolumeclaims"),
            format!("{CORE}/persistentvolumes"),
            format!("{CORE}/pods"),
        ]
    }

    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(format!("{CORE}/pods"), crate::wakefilter::pod_uses_claims())]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let pvcs: HashMap<(String, String), Value> = self
            .client
            .list(&format!("{CORE}/persistentvolumeclaims"))
            .await?
            .into_iter()
            .map(|c| ((namespace(&c).to_string(), name(&c).to_string()), c))
            .collect();
        let pvs = self
            .client
            .list(&format!("{CORE}/persistentvolumes"))
            .await?;
        let classes: HashMap<String, Value> = self
            .client
            .list(STORAGE_CLASSES)
            .await?
            .into_iter()
            .map(|c| (name(&c).to_string(), c))
            .collect();
        // Nodes and pods only when a claim needs them (most passes at scale have no claims).
        let nodes: HashMap<String, std::sync::Arc<Value>> = if pvcs.is_empty() {
            HashMap::new()
        } else {
            self.informers
                .list(&format!("{CORE}/nodes"))
                .await?
                .into_iter()
                .map(|n| (name(&n).to_string(), n))
                .collect()
        };
        let protected = pvcs
            .values()
            .any(|c| is_deleting(c) && has_finalizer(c, PVC_PROTECTION));
        let pods = if protected {
            self.informers.list(&format!("{CORE}/pods")).await?
        } else {
            crate::informer::Snapshot::default()
        };
        let mut first_err = None;
        // Claims in creation order, so that the older claim gets a contested volume.
        let mut ordered: Vec<&Value> = pvcs.values().filter(|c| !is_deleting(c)).collect();
        ordered.sort_by(|a, b| {
            a["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&b["metadata"]["creationTimestamp"].as_str())
                .then_with(|| name(a).cmp(name(b)))
        });
        for pvc in ordered {
            if let Err(e) = self.sync_claim(pvc, &pvs, &classes, &nodes).await {
                tracing::warn!(claim = %format!("{}/{}", namespace(pvc), name(pvc)), error = %e.message, "claim sync failed");
                first_err.get_or_insert(e);
            }
        }
        for pv in &pvs {
            if let Err(e) = self.sync_volume(pv, &pvcs).await {
                first_err.get_or_insert(e);
            }
        }
        self.protect(&pvcs, &pvs, &pods).await?;
        if let Some(e) = first_err {
            return Err(e);
        }
        // What this pass wrote wakes the next one through the watches.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(n: &str, size: &str, class: &str, modes: Value) -> Value {
        json!({"metadata": {"name": n, "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": size}, "accessModes": modes, "storageClassName": class,
                     "hostPath": {"path": "/x"}},
            "status": {"phase": "Available"}})
    }

    fn pvc(size: &str, class: &str, modes: Value) -> Value {
        json!({"metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": {"accessModes": modes, "storageClassName": class,
                     "resources": {"requests": {"storage": size}}}})
    }

    #[test]
    fn smallest_fitting_volume_of_the_class_wins() {
        let pvs = vec![
            pv("big", "10Gi", "slow", json!(["ReadWriteOnce"])),
            pv("small", "1Gi", "slow", json!(["ReadWriteOnce"])),
            pv("tiny", "100Mi", "slow", json!(["ReadWriteOnce"])),
            pv("other", "1Gi", "fast", json!(["ReadWriteOnce"])),
            pv("rox", "1Gi", "slow", json!(["ReadOnlyMany"])),
        ];
        let c = pvc("500Mi", "slow", json!(["ReadWriteOnce"]));
        assert_eq!(find_volume(&pvs, &c, None).map(name), Some("small"));
        let mut sel = c.clone();
        sel["spec"]["selector"] = json!({"matchLabels": {"tier": "slow"}});
        assert_eq!(find_volume(&pvs, &sel, None), None);
        let c = pvc("50Gi", "slow", json!(["ReadWriteOnce"]));
        assert_eq!(find_volume(&pvs, &c, None), None);
    }

    #[test]
    fn claimed_volumes_are_only_for_their_claim() {
        let mut taken = pv("a", "1Gi", "", json!(["ReadWriteOnce"]));
        taken["spec"]["claimRef"] = json!({"namespace": "ns", "name": "other", "uid": "u9"});
        let mut prebound = pv("b", "1Gi", "", json!(["ReadWriteOnce"]));
        prebound["spec"]["claimRef"] = json!({"namespace": "ns", "name": "data"});
        let pvs = vec![taken, prebound];
        let c = pvc("1Gi", "", json!(["ReadWriteOnce"]));
        assert_eq!(find_volume(&pvs, &c, None).map(name), Some("b"));
    }

    #[test]
    fn node_affinity_of_volumes() {
        let mut v = pv("a", "1Gi", "", json!(["ReadWriteOnce"]));
        v["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": HOSTNAME_LABEL, "operator": "In", "values": ["n1"]}]}]}});
        let n1 = json!({"metadata": {"name": "n1", "labels": {HOSTNAME_LABEL: "n1"}}});
        let n2 = json!({"metadata": {"name": "n2", "labels": {HOSTNAME_LABEL: "n2"}}});
        assert!(pv_fits_node(&v, &n1));
        assert!(!pv_fits_node(&v, &n2));
        let pvs = vec![v];
        let c = pvc("1Gi", "", json!(["ReadWriteOnce"]));
        assert!(find_volume(&pvs, &c, Some(&n2)).is_none());
        assert!(find_volume(&pvs, &c, Some(&n1)).is_some());
    }
}
