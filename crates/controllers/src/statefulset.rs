//! The StatefulSet controller (pkg/controller/statefulset): pods with stable names
//! `<sts>-<ordinal>`, hostname and subdomain, created in ordinal order and each only once the lower
//! ones are Running and Ready (`OrderedReady`) or all at once (`Parallel`), removed from the
//! highest ordinal down; per-pod claims `<claim>-<sts>-<ordinal>` from `volumeClaimTemplates`;
//! rolling updates from the highest ordinal down to the partition, one pod at a time, waiting
//! for readiness (or none, `OnDelete`); template history as ControllerRevisions; status.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apimachinery::selector::LabelSelector;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::history::{self, POD_REVISION_LABEL};
use crate::util::{
    self, best_effort, controlled_by, controller_ref, name, namespace, uid, APPS, CORE,
};
use crate::Controller;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
const COMPONENT: &str = "statefulset-controller";

/// The ordinal of a pod named `<sts>-<n>` belonging to `sts`, if it is one.
pub fn ordinal_of(sts_name: &str, pod_name: &str) -> Option<i64> {
    let rest = pod_name.strip_prefix(sts_name)?.strip_prefix('-')?;
    if rest.is_empty()
        || !rest.bytes().all(|b| b.is_ascii_digit())
        || (rest.len() > 1 && rest.starts_with('0'))
    {
        return None;
    }
    rest.parse().ok()
}

/// The name of the claim `claim` of the pod with `ordinal`.
pub fn claim_name(claim: &str, sts_name: &str, ordinal: i64) -> String {
    format!("{claim}-{sts_name}-{ordinal}")
}

/// Is the pod Running and Ready (upstream isHealthy, without deletion)?
fn healthy(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && util::pod_ready(p) && !util::is_deleting(p)
}

/// The pod for `ordinal` of `sts` from `template` (a revision's template) labelled with
/// `revision` (the revision's name).
pub fn new_pod(sts: &Value, template: &Value, revision: &str, ordinal: i64) -> Value {
    let sts_name = name(sts);
    let pod_name = format!("{sts_name}-{ordinal}");
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[POD_NAME_LABEL] = json!(pod_name);
    labels[POD_INDEX_LABEL] = json!(ordinal.to_string());
    labels[POD_REVISION_LABEL] = json!(revision);
    let mut md = json!({
        "name": pod_name,
        "namespace": namespace(sts),
        "labels": labels,
        "ownerReferences": [util::owner_ref(sts, "apps/v1", "StatefulSet")],
    });
    for k in ["annotations", "finalizers"] {
        if !template["metadata"][k].is_null() {
            md[k] = template["metadata"][k].clone();
        }
    }
    let mut spec = template["spec"].clone();
    spec["hostname"] = json!(pod_name);
    if let Some(svc) = sts["spec"]["serviceName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        spec["subdomain"] = json!(svc);
    }
    let mut volumes: Vec<Value> = spec["volumes"].as_array().cloned().unwrap_or_default();
    for c in sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(cn) = c["metadata"]["name"].as_str() else {
            continue;
        };
        let v = json!({"name": cn, "persistentVolumeClaim": {"claimName": claim_name(cn, sts_name, ordinal)}});
        match volumes.iter_mut().find(|x| x["name"] == cn) {
            Some(existing) => *existing = v,
            None => volumes.push(v),
        }
    }
    if !volumes.is_empty() {
        spec["volumes"] = json!(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec})
}

pub struct StatefulSetController {
    client: LocalClient,
    informers: crate::informer::Informers,
    /// StatefulSets (uid) already told that claims cannot be made (PVCs are not served).
    claims_reported: HashSet<String>,
}

impl StatefulSetController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

impl StatefulSetController {
    pub fn new(client: LocalClient) -> Self {
        StatefulSetController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            claims_reported: HashSet::new(),
        }
    }

    async fn event(&self, sts: &Value, ty: &str, reason: &str, msg: &str) {
        best_effort(
            "event",
            util::record_event(&self.client, sts, ty, reason, msg, COMPONENT).await,
        )
        .await;
    }

    /// Create the claims of pod `ordinal` that do not exist yet, when PersistentVolumeClaims are
    /// served; otherwise say so once per StatefulSet.
    async fn ensure_claims(&mut self, sts: &Value, ordinal: i64) -> Result<(), ApiError> {
        let claims = sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if claims.is_empty() {
            return Ok(());
        }
        if daas_apiserver::resources::find("", "v1", "persistentvolumeclaims").is_none() {
            if self.claims_reported.insert(uid(sts).to_string()) {
                self.event(
                    sts,
                    "Warning",
                    "FailedCreate",
                    "volumeClaimTemplates: PersistentVolumeClaims are not served by this cluster; pods are created without their claims being made",
                )
                .await;
                tracing::warn!(
                    statefulset = name(sts),
                    "PersistentVolumeClaims are not served; claims not created"
                );
            }
            return Ok(());
        }
        let ns = namespace(sts);
        for c in claims {
            let Some(cn) = c["metadata"]["name"].as_str() else {
                continue;
            };
            let pvc_name = claim_name(cn, name(sts), ordinal);
            let p = util::path(CORE, ns, "persistentvolumeclaims", Some(&pvc_name));
            if self.client.get_opt(&p).await?.is_some() {
                continue;
            }
            let mut labels = sts["spec"]["selector"]["matchLabels"].clone();
            if let Some(l) = c["metadata"]["labels"].as_object() {
                if !labels.is_object() {
                    labels = json!({});
                }
                for (k, v) in l {
                    labels[k] = v.clone();
                }
            }
            let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": pvc_name, "namespace": ns, "labels": labels, "annotations": c["metadata"]["annotations"]},
                "spec": c["spec"]});
            match self
                .client
                .create(&util::path(CORE, ns, "persistentvolumeclaims", None), &pvc)
                .await
            {
                Ok(_) => {
                    let msg = format!(
                        "create Claim {pvc_name} Pod {}-{ordinal} in StatefulSet {} success",
                        name(sts),
                        name(sts)
                    );
                    self.event(sts, "Normal", "SuccessfulCreate", &msg).await;
                }
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn create_pod(&mut self, sts: &Value, pod: &Value, ordinal: i64) -> Result<(), ApiError> {
        self.ensure_claims(sts, ordinal).await?;
        let ns = namespace(sts);
        match self
            .client
            .create(&util::path(CORE, ns, "pods", None), pod)
            .await
        {
            Ok(_) => {
                let msg = format!(
                    "create Pod {} in StatefulSet {} successful",
                    name(pod),
                    name(sts)
                );
                self.event(sts, "Normal", "SuccessfulCreate", &msg).await;
                Ok(())
            }
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => {
                let msg = format!(
                    "create Pod {} in StatefulSet {} failed error: {}",
                    name(pod),
                    name(sts),
                    e.message
                );
                self.event(sts, "Warning", "FailedCreate", &msg).await;
                Err(e)
            }
        }
    }

    async fn delete_pod(&self, sts: &Value, pod: &Value) -> Result<(), ApiError> {
        let p = util::path(CORE, namespace(pod), "pods", Some(name(pod)));
        self.client.delete_ignore_missing(&p).await?;
        let msg = format!(
            "delete Pod {} in StatefulSet {} successful",
            name(pod),
            name(sts)
        );
        self.event(sts, "Normal", "SuccessfulDelete", &msg).await;
        Ok(())
    }

    async fn adopt(&self, sts: &Value, pod: &Value) -> Option<Value> {
        let fresh = self
            .client
            .get(&util::path(
                APPS,
                namespace(sts),
                "statefulsets",
                Some(name(sts)),
            ))
            .await
            .ok()?;
        if uid(&fresh) != uid(sts) || util::is_deleting(&fresh) {
            return None;
        }
        let mut refs: Vec<Value> = pod["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        refs.push(util::owner_ref(sts, "apps/v1", "StatefulSet"));
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}});
        self.client
            .merge_patch(
                &util::path(CORE, namespace(pod), "pods", Some(name(pod))),
                &patch,
            )
            .await
            .ok()
    }

    async fn sync(
        &mut self,
        sts: &Value,
        pods: &[&Value],
        revisions: &[Value],
    ) -> Result<Option<Duration>, ApiError> {
        if util::is_deleting(sts) {
            return Ok(None);
        }
        let Ok(selector) = LabelSelector::from_json(&sts["spec"]["selector"]) else {
            return Ok(None);
        };
        if selector.is_everything() {
            return Ok(None);
        }
        let ns = namespace(sts);
        let sts_name = name(sts);
        // Revisions: the one of the current template (update) and the one pods were last all at.
        let owned_revs = history::owned(sts, revisions);
        let update = history::ensure_update_revision(
            &self.client,
            sts,
            "apps/v1",
            "StatefulSet",
            &owned_revs,
        )
        .await?;
        let update_name = name(&update.revision).to_string();
        let current = sts["status"]["currentRevision"]
            .as_str()
            .and_then(|c| {
                owned_revs
                    .iter()
                    .find(|r| name(r) == c)
                    .map(|r| (*r).clone())
            })
            .unwrap_or_else(|| update.revision.clone());
        let current_name = name(&current).to_string();

        // Pods: ours (adopting matching orphans), by ordinal.
        let mut by_ordinal: BTreeMap<i64, Value> = BTreeMap::new();
        for p in pods {
            let ours = if controlled_by(p, uid(sts)) {
                Some((*p).clone())
            } else if controller_ref(p).is_none()
                && selector.matches_object(p)
                && util::pod_active(p)
            {
                self.adopt(sts, p).await
            } else {
                None
            };
            if let Some(p) = ours {
                if let Some(o) = ordinal_of(sts_name, name(&p)) {
                    by_ordinal.insert(o, p);
                }
            }
        }
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
        let start = sts["spec"]["ordinals"]["start"]
            .as_i64()
            .unwrap_or(0)
            .max(0);
        let end = start + replicas;
        let monotonic = sts["spec"]["podManagementPolicy"].as_str() != Some("Parallel");
        let rolling = sts["spec"]["updateStrategy"]["type"]
            .as_str()
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let partition = sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
            .as_i64()
            .unwrap_or(0);
        let revision_of = |p: &Value| {
            p["metadata"]["labels"][POD_REVISION_LABEL]
                .as_str()
                .unwrap_or("")
                .to_string()
        };

        let result = self
            .converge(
                sts,
                &by_ordinal,
                start,
                end,
                monotonic,
                rolling,
                partition,
                &current,
                &update.revision,
            )
            .await;

        // Status over the pods as they were at the start of this pass (the next pass sees the
        // changes made in this one).
        let now = Utc::now();
        let min_ready = sts["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let mut st = json!({"replicas": 0, "readyReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0, "availableReplicas": 0});
        let mut requeue: Option<Duration> = None;
        let count = |k: &str, st: &mut Value| st[k] = json!(st[k].as_i64().unwrap_or(0) + 1);
        for p in by_ordinal.values().filter(|p| util::pod_active(p)) {
            count("replicas", &mut st);
            if healthy(p) {
                count("readyReplicas", &mut st);
            }
            let (avail, wait) = util::pod_available(p, min_ready, now);
            if avail && healthy(p) {
                count("availableReplicas", &mut st);
            }
            if let Some(w) = wait {
                requeue = Some(requeue.map(|r| r.min(w)).unwrap_or(w));
            }
            let r = revision_of(p);
            if r == current_name {
                count("currentReplicas", &mut st);
            }
            if r == update_name {
                count("updatedReplicas", &mut st);
            }
        }
        let mut cur_name = current_name.clone();
        // A finished rolling update makes the update revision current (upstream completeRollingUpdate).
        if rolling
            && st["updatedReplicas"] == st["replicas"]
            && st["readyReplicas"] == st["replicas"]
            && st["replicas"] == replicas
        {
            cur_name = update_name.clone();
            st["currentReplicas"] = st["updatedReplicas"].clone();
        }
        st["currentRevision"] = json!(cur_name);
        st["updateRevision"] = json!(update_name);
        st["collisionCount"] = json!(update.collision_count);
        st["observedGeneration"] = json!(sts["metadata"]["generation"].as_i64().unwrap_or(0));
        let changed = st
            .as_object()
            .map(|m| m.iter().any(|(k, v)| &sts["status"][k] != v))
            .unwrap_or(false);
        if changed {
            let p = format!(
                "{}/status",
                util::path(APPS, ns, "statefulsets", Some(sts_name))
            );
            match self.client.merge_patch(&p, &json!({"status": st})).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        // History: keep what pods and status still point at.
        let mut live: Vec<String> = by_ordinal.values().map(revision_of).collect();
        live.push(cur_name);
        live.push(update_name);
        let live: Vec<&str> = live.iter().map(String::as_str).collect();
        let fresh = self
            .client
            .list(&util::path(APPS, ns, "controllerrevisions", None))
            .await?;
        history::truncate(&self.client, sts, &history::owned(sts, &fresh), &live).await?;
        result.map(|_| requeue)
    }

    /// One step toward the spec (upstream updateStatefulSet): create missing pods, replace failed
    /// ones, remove condemned ones, then roll pods to the update revision.
    #[allow(clippy::too_many_arguments)]
    async fn converge(
        &mut self,
        sts: &Value,
        pods: &BTreeMap<i64, Value>,
        start: i64,
        end: i64,
        monotonic: bool,
        rolling: bool,
        partition: i64,
        current: &Value,
        update: &Value,
    ) -> Result<(), ApiError> {
        let (cur_tpl, upd_tpl) = (
            history::revision_template(current),
            history::revision_template(update),
        );
        let (cur_name, upd_name) = (name(current), name(update));
        for ord in start..end {
            match pods.get(&ord) {
                None => {
                    // Upstream newVersionedStatefulSetPod: below the partition of a rolling
                    // update pods are made at the current revision; otherwise (and with
                    // OnDelete, where a deleted pod comes back updated) at the update revision.
                    let (tpl, rev) = if cur_name != upd_name && rolling && ord < start + partition {
                        (&cur_tpl, cur_name)
                    } else {
                        (&upd_tpl, upd_name)
                    };
                    let pod = new_pod(sts, tpl, rev, ord);
                    self.create_pod(sts, &pod, ord).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(p) if util::pod_terminated(p) && !util::is_deleting(p) => {
                    // A failed (or finished) pod is deleted and made again.
                    self.delete_pod(sts, p).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(p) => {
                    if monotonic && !healthy(p) {
                        return Ok(());
                    }
                }
            }
        }
        // Condemned: ordinals outside the range, highest first.
        let condemned: Vec<&Value> = pods
            .iter()
            .rev()
            .filter(|(o, _)| **o < start || **o >= end)
            .map(|(_, p)| p)
            .collect();
        for p in &condemned {
            if util::is_deleting(p) {
                if monotonic {
                    return Ok(());
                }
                continue;
            }
            if monotonic
                && pods
                    .values()
                    .any(|q| !std::ptr::eq(q, *p) && !healthy(q) && !util::is_deleting(q))
            {
                // Upstream waits for every other pod to be healthy before scaling down.
                return Ok(());
            }
            self.delete_pod(sts, p).await?;
            if monotonic {
                return Ok(());
            }
        }
        if !condemned.is_empty() || !rolling {
            return Ok(());
        }
        let min = start.max(start + partition.min(end - start));
        for ord in (min..end).rev() {
            let Some(p) = pods.get(&ord) else {
                return Ok(());
            };
            let rev = p["metadata"]["labels"][POD_REVISION_LABEL]
                .as_str()
                .unwrap_or("");
            if rev != upd_name && !util::is_deleting(p) {
                let msg = format!(
                    "Pod {} of StatefulSet {} is being updated to revision {upd_name}",
                    name(p),
                    name(sts)
                );
                tracing::info!("{msg}");
                return self.delete_pod(sts, p).await;
            }
            if !healthy(p) {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Controller for StatefulSetController {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(
            format!("{CORE}/pods"),
            crate::wakefilter::controlled_by_kinds(&["StatefulSet"]),
        )]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "statefulset"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{APPS}/statefulsets"),
            format!("{APPS}/controllerrevisions"),
            format!("{CORE}/pods"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let all = self.informers.list(&format!("{APPS}/statefulsets")).await?;
        if all.is_empty() {
            return Ok(None);
        }
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let revisions = self
            .client
            .list(&format!("{APPS}/controllerrevisions"))
            .await?;
        let pods_by_ns = util::by_namespace(&pods);
        let empty = Vec::new();
        let mut pass = util::Pass::default();
        for sts in &all {
            let pods = pods_by_ns.get(namespace(sts)).unwrap_or(&empty);
            pass.record("statefulset", sts, self.sync(sts, pods, &revisions).await);
        }
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_parse_only_own_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
    }

    #[test]
    fn pods_get_identity_and_claims() {
        let sts = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"serviceName": "nginx", "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let p = new_pod(&sts, &sts["spec"]["template"], "web-abc", 2);
        let md = &p["metadata"];
        assert_eq!(md["name"], "web-2");
        assert_eq!(md["labels"][POD_NAME_LABEL], "web-2");
        assert_eq!(md["labels"][POD_INDEX_LABEL], "2");
        assert_eq!(md["labels"][POD_REVISION_LABEL], "web-abc");
        assert_eq!(md["labels"]["app"], "web");
        assert_eq!(md["ownerReferences"][0]["kind"], "StatefulSet");
        assert_eq!(p["spec"]["hostname"], "web-2");
        assert_eq!(p["spec"]["subdomain"], "nginx");
        assert_eq!(
            p["spec"]["volumes"][0],
            json!({"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}})
        );
    }
}
