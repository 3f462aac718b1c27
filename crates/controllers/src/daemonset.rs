//! The DaemonSet controller (pkg/controller/daemon): one pod per eligible node — staked (like the
//! scheduler's check), matching the template's node selector and required node affinity, with
//! every NoSchedule/NoExecute taint tolerated (the template's tolerations plus the ones upstream
//! adds to every daemon pod). Pods are pinned to their node with required node affinity on
//! `metadata.name` (matchFields), as upstream does, and the scheduler binds them. Rolling updates
//! replace old pods within `maxUnavailable` (or surge new ones within `maxSurge`); template
//! history is kept as ControllerRevisions; status as upstream.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apimachinery::selector::LabelSelector;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::deployment::int_or_percent;
use crate::history::{self, POD_REVISION_LABEL};
use crate::scheduler::{node_selector_matches, tolerates};
use crate::util::{
    self, best_effort, controlled_by, controller_ref, name, namespace, uid, APPS, CORE,
};
use crate::{Controller, ControllerOptions};

const COMPONENT: &str = "daemonset-controller";

/// The tolerations upstream adds to every daemon pod (AddOrUpdateDaemonPodTolerations).
pub fn daemon_tolerations(host_network: bool) -> Vec<Value> {
    let mut out = vec![
        json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}),
        json!({"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"}),
        json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}),
    ];
    if host_network {
        out.push(json!({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}));
    }
    out
}

/// The template's pod spec with the daemon tolerations added (those it lacks).
fn spec_with_tolerations(template_spec: &Value) -> Value {
    let mut spec = template_spec.clone();
    let mut tols: Vec<Value> = spec["tolerations"].as_array().cloned().unwrap_or_default();
    for t in daemon_tolerations(spec["hostNetwork"].as_bool() == Some(true)) {
        if !tols
            .iter()
            .any(|x| x["key"] == t["key"] && x["effect"] == t["effect"])
        {
            tols.push(t);
        }
    }
    spec["tolerations"] = json!(tols);
    spec
}

/// Upstream ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity becomes one term
/// selecting the node by `metadata.name`; preferred terms stay.
pub fn pin_to_node(spec: &mut Value, node: &str) {
    let term = json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]});
    if !spec["affinity"].is_object() {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]["nodeAffinity"].is_object() {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = term;
}

/// The node a daemon pod is for: its `nodeName`, or the node its affinity pins it to.
pub fn pod_node(p: &Value) -> Option<String> {
    if let Some(n) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = p["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        .as_array()?;
    terms.iter().find_map(|t| {
        t["matchFields"].as_array()?.iter().find_map(|f| {
            (f["key"] == "metadata.name" && f["operator"] == "In")
                .then(|| f["values"][0].as_str().map(String::from))
                .flatten()
        })
    })
}

/// Untolerated taints of the node with the given effects.
fn untolerated(spec: &Value, node: &Value, effects: &[&str]) -> bool {
    let tols = spec["tolerations"].as_array().cloned().unwrap_or_default();
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|taint| {
            effects.contains(&taint["effect"].as_str().unwrap_or(""))
                && !tols.iter().any(|t| tolerates(t, taint))
        })
}

/// (should a new daemon pod run on the node, may an existing one continue) — upstream
/// NodeShouldRunDaemonPod, with the staked-node rule of this cluster.
pub fn placement(ds: &Value, node: &Value, staked_label: &str) -> (bool, bool) {
    if node["metadata"]["labels"][staked_label].as_str() != Some("true") {
        return (false, false);
    }
    let spec = spec_with_tolerations(&ds["spec"]["template"]["spec"]);
    let probe = json!({"spec": spec});
    if !node_selector_matches(&probe, node) {
        return (false, false);
    }
    if untolerated(&spec, node, &["NoExecute"]) {
        return (false, false);
    }
    (!untolerated(&spec, node, &["NoSchedule"]), true)
}

/// A new daemon pod of `ds` for `node`, labelled with the revision `hash`.
pub fn new_pod(ds: &Value, hash: &str, node: &str) -> Value {
    let tpl = &ds["spec"]["template"];
    let mut labels = tpl["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[POD_REVISION_LABEL] = json!(hash);
    let mut md = json!({
        "generateName": format!("{}-", name(ds)),
        "namespace": namespace(ds),
        "labels": labels,
        "ownerReferences": [util::owner_ref(ds, "apps/v1", "DaemonSet")],
    });
    for k in ["annotations", "finalizers"] {
        if !tpl["metadata"][k].is_null() {
            md[k] = tpl["metadata"][k].clone();
        }
    }
    let mut spec = spec_with_tolerations(&tpl["spec"]);
    pin_to_node(&mut spec, node);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec})
}

pub struct DaemonSetController {
    client: LocalClient,
    informers: crate::informer::Informers,
    staked_label: String,
}

impl DaemonSetController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

impl DaemonSetController {
    pub fn new(client: LocalClient, opts: &ControllerOptions) -> Self {
        DaemonSetController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            staked_label: opts.staked_label.clone(),
        }
    }

    async fn event(&self, ds: &Value, ty: &str, reason: &str, msg: &str) {
        best_effort(
            "event",
            util::record_event(&self.client, ds, ty, reason, msg, COMPONENT).await,
        )
        .await;
    }

    async fn create(&self, ds: &Value, hash: &str, node: &str) -> Result<(), ApiError> {
        let pod = new_pod(ds, hash, node);
        match self
            .client
            .create(&util::path(CORE, namespace(ds), "pods", None), &pod)
            .await
        {
            Ok(p) => {
                self.event(
                    ds,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name(&p)),
                )
                .await;
                Ok(())
            }
            Err(e) => {
                self.event(
                    ds,
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating: {}", e.message),
                )
                .await;
                Err(e)
            }
        }
    }

    async fn delete(&self, ds: &Value, p: &Value) -> Result<(), ApiError> {
        self.client
            .delete_ignore_missing(&util::path(CORE, namespace(p), "pods", Some(name(p))))
            .await?;
        self.event(
            ds,
            "Normal",
            "SuccessfulDelete",
            &format!("Deleted pod: {}", name(p)),
        )
        .await;
        Ok(())
    }

    async fn adopt(&self, ds: &Value, pod: &Value) -> Option<Value> {
        let fresh = self
            .client
            .get(&util::path(
                APPS,
                namespace(ds),
                "daemonsets",
                Some(name(ds)),
            ))
            .await
            .ok()?;
        if uid(&fresh) != uid(ds) || util::is_deleting(&fresh) {
            return None;
        }
        let mut refs: Vec<Value> = pod["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        refs.push(util::owner_ref(ds, "apps/v1", "DaemonSet"));
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
        &self,
        ds: &Value,
        nodes: &[std::sync::Arc<Value>],
        pods: &[&Value],
        revisions: &[Value],
    ) -> Result<Option<Duration>, ApiError> {
        if util::is_deleting(ds) {
            return Ok(None);
        }
        let Ok(selector) = LabelSelector::from_json(&ds["spec"]["selector"]) else {
            return Ok(None);
        };
        if selector.is_everything() {
            return Ok(None);
        }
        let ns = namespace(ds);
        let owned_revs = history::owned(ds, revisions);
        let update =
            history::ensure_update_revision(&self.client, ds, "apps/v1", "DaemonSet", &owned_revs)
                .await?;
        let hash = update.hash.clone();

        // Our pods by node.
        let mut by_node: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for p in pods {
            let ours = if controlled_by(p, uid(ds)) {
                Some((*p).clone())
            } else if controller_ref(p).is_none()
                && selector.matches_object(p)
                && util::pod_active(p)
            {
                self.adopt(ds, p).await
            } else {
                None
            };
            if let Some(p) = ours {
                if let Some(n) = pod_node(&p) {
                    by_node.entry(n).or_default().push(p);
                }
            }
        }
        let now = Utc::now();
        let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        let available =
            |p: &Value| util::pod_available(p, min_ready, now).0 && !util::is_deleting(p);
        let is_new =
            |p: &Value| p["metadata"]["labels"][POD_REVISION_LABEL].as_str() == Some(hash.as_str());
        let mut requeue: Option<Duration> = None;
        let mut wait = |p: &Value| {
            if let (_, Some(w)) = util::pod_available(p, min_ready, now) {
                requeue = Some(requeue.map(|r: Duration| r.min(w)).unwrap_or(w));
            }
        };

        let rolling = ds["spec"]["updateStrategy"]["type"]
            .as_str()
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let mut desired_nodes: Vec<&str> = Vec::new();
        let mut st = json!({"desiredNumberScheduled": 0, "currentNumberScheduled": 0, "numberMisscheduled": 0,
            "numberReady": 0, "numberAvailable": 0, "updatedNumberScheduled": 0});
        let inc = |st: &mut Value, k: &str| st[k] = json!(st[k].as_i64().unwrap_or(0) + 1);
        let mut to_create: Vec<String> = Vec::new();
        let mut to_delete: Vec<Value> = Vec::new();
        // Per node: (node name, its active pods) of the nodes that keep their daemon pod.
        let mut kept: Vec<(String, Vec<Value>)> = Vec::new();
        for node in nodes {
            let nn = name(node).to_string();
            let (should_run, may_continue) = placement(ds, node, &self.staked_label);
            let node_pods = by_node.remove(&nn).unwrap_or_default();
            let mut active: Vec<Value> = Vec::new();
            for p in node_pods {
                if util::is_deleting(&p) {
                    continue;
                }
                if p["status"]["phase"] == "Failed" {
                    // A failed daemon pod is deleted and made again.
                    to_delete.push(p);
                } else if !util::pod_terminated(&p) {
                    active.push(p);
                }
            }
            if should_run || (may_continue && !active.is_empty()) {
                desired_nodes.push(name(node));
                inc(&mut st, "desiredNumberScheduled");
                if active.is_empty() {
                    to_create.push(nn.clone());
                    continue;
                }
                inc(&mut st, "currentNumberScheduled");
                active.sort_by(|a, b| {
                    a["metadata"]["creationTimestamp"]
                        .as_str()
                        .cmp(&b["metadata"]["creationTimestamp"].as_str())
                });
                if active.iter().any(&is_new) {
                    inc(&mut st, "updatedNumberScheduled");
                }
                if active.iter().any(util::pod_ready) {
                    inc(&mut st, "numberReady");
                }
                if active.iter().any(&available) {
                    inc(&mut st, "numberAvailable");
                }
                active.iter().for_each(&mut wait);
                // Without surge only one pod belongs on a node: the oldest stays.
                let keep =
                    if rolling && active.len() == 2 && is_new(&active[1]) && !is_new(&active[0]) {
                        2
                    } else {
                        1
                    };
                to_delete.extend(active.drain(keep..));
                kept.push((nn, active));
            } else if !active.is_empty() {
                inc(&mut st, "numberMisscheduled");
                to_delete.extend(active);
            }
        }
        // Pods for nodes that no longer exist.
        for (_, ps) in by_node {
            to_delete.extend(ps.into_iter().filter(|p| !util::is_deleting(p)));
        }
        let desired = st["desiredNumberScheduled"].as_i64().unwrap_or(0);
        st["numberUnavailable"] = json!(desired - st["numberAvailable"].as_i64().unwrap_or(0));

        // Rolling update (upstream rollingUpdate): replace old pods within the budgets.
        if rolling {
            let ru = &ds["spec"]["updateStrategy"]["rollingUpdate"];
            let max_surge = int_or_percent(&ru["maxSurge"], desired, true)
                .unwrap_or(0)
                .max(0);
            let mut max_unavailable = int_or_percent(&ru["maxUnavailable"], desired, true)
                .unwrap_or(1)
                .max(0);
            if max_surge == 0 && max_unavailable == 0 {
                max_unavailable = 1;
            }
            let mut unavailable = kept
                .iter()
                .filter(|(_, ps)| !ps.iter().any(&available))
                .count() as i64
                + to_create.len() as i64;
            let mut surging = kept.iter().filter(|(_, ps)| ps.len() > 1).count() as i64;
            for (node, ps) in &kept {
                let old: Vec<&Value> = ps.iter().filter(|p| !is_new(p)).collect();
                if old.is_empty() {
                    continue;
                }
                let new = ps.iter().find(|p| is_new(p));
                if max_surge == 0 {
                    let o = old[0];
                    if !available(o) {
                        to_delete.push(o.clone());
                    } else if unavailable < max_unavailable {
                        unavailable += 1;
                        to_delete.push(o.clone());
                    }
                    continue;
                }
                match new {
                    Some(n) if available(n) => to_delete.extend(old.into_iter().cloned()),
                    Some(_) => {}
                    None if !available(old[0]) => to_delete.push(old[0].clone()),
                    None if surging < max_surge => {
                        surging += 1;
                        to_create.push(node.clone());
                    }
                    None => {}
                }
            }
        }

        let mut result = Ok(());
        for p in &to_delete {
            if let Err(e) = self.delete(ds, p).await {
                result = Err(e);
            }
        }
        for node in &to_create {
            if let Err(e) = self.create(ds, &hash, node).await {
                result = Err(e);
                break;
            }
        }

        st["observedGeneration"] = json!(ds["metadata"]["generation"].as_i64().unwrap_or(0));
        st["collisionCount"] = json!(update.collision_count);
        let changed = st
            .as_object()
            .map(|m| m.iter().any(|(k, v)| &ds["status"][k] != v))
            .unwrap_or(false);
        if changed {
            let p = format!(
                "{}/status",
                util::path(APPS, ns, "daemonsets", Some(name(ds)))
            );
            match self.client.merge_patch(&p, &json!({"status": st})).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        // History: keep the revisions running pods were made from.
        let mut live_hashes: Vec<String> = kept
            .iter()
            .flat_map(|(_, ps)| ps.iter())
            .filter_map(|p| {
                p["metadata"]["labels"][POD_REVISION_LABEL]
                    .as_str()
                    .map(String::from)
            })
            .collect();
        live_hashes.push(hash);
        let fresh = self
            .client
            .list(&util::path(APPS, ns, "controllerrevisions", None))
            .await?;
        let owned = history::owned(ds, &fresh);
        let live: Vec<&str> = owned
            .iter()
            .filter(|r| {
                r["metadata"]["labels"][history::REVISION_HASH_LABEL]
                    .as_str()
                    .is_some_and(|h| live_hashes.iter().any(|l| l == h))
            })
            .map(|r| name(r))
            .collect();
        history::truncate(&self.client, ds, &owned, &live).await?;
        result.map(|_| requeue)
    }
}

#[async_trait]
impl Controller for DaemonSetController {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![
            (
                format!("{CORE}/pods"),
                crate::wakefilter::controlled_by_kinds(&["DaemonSet"]),
            ),
            (format!("{CORE}/nodes"), crate::wakefilter::node_changed()),
        ]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "daemonset"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{APPS}/daemonsets"),
            format!("{APPS}/controllerrevisions"),
            format!("{CORE}/pods"),
            format!("{CORE}/nodes"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let all = self.informers.list(&format!("{APPS}/daemonsets")).await?;
        if all.is_empty() {
            return Ok(None);
        }
        let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let revisions = self
            .client
            .list(&format!("{APPS}/controllerrevisions"))
            .await?;
        let pods_by_ns = util::by_namespace(&pods);
        let empty = Vec::new();
        let mut pass = util::Pass::default();
        for ds in &all {
            let pods = pods_by_ns.get(namespace(ds)).unwrap_or(&empty);
            pass.record(
                "daemonset",
                ds,
                self.sync(ds, &nodes, pods, &revisions).await,
            );
        }
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::STAKED;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    fn ds(spec_extra: Value) -> Value {
        let mut d = json!({"metadata": {"name": "agent", "namespace": "ns", "uid": "u"},
            "spec": {"template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        for (k, v) in spec_extra.as_object().into_iter().flatten() {
            d["spec"]["template"]["spec"][k] = v.clone();
        }
        d
    }

    #[test]
    fn placement_follows_staking_selector_affinity_and_taints() {
        let staked = json!({STAKED: "true", "role": "edge"});
        let d = ds(json!({"nodeSelector": {"role": "edge"}}));
        assert_eq!(
            placement(&d, &node("a", staked.clone(), json!(null)), STAKED),
            (true, true)
        );
        assert_eq!(
            placement(&d, &node("b", json!({"role": "edge"}), json!(null)), STAKED),
            (false, false)
        );
        assert_eq!(
            placement(&d, &node("c", json!({STAKED: "true"}), json!(null)), STAKED),
            (false, false)
        );
        // NoSchedule: no new pod, but a running one stays; NoExecute: neither.
        let ns = json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
        assert_eq!(
            placement(&d, &node("d", staked.clone(), ns), STAKED),
            (false, true)
        );
        let ne = json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]);
        assert_eq!(
            placement(&d, &node("e", staked.clone(), ne.clone()), STAKED),
            (false, false)
        );
        let tolerant = ds(json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}));
        assert_eq!(
            placement(&tolerant, &node("e", staked.clone(), ne), STAKED),
            (true, true)
        );
        // The automatic tolerations: cordoned and not-ready nodes still run daemons.
        let auto = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]);
        assert_eq!(
            placement(&ds(json!({})), &node("f", staked.clone(), auto), STAKED),
            (true, true)
        );
        let aff = ds(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "role", "operator": "In", "values": ["core"]}]}]}}}}),
        );
        assert_eq!(
            placement(&aff, &node("g", staked, json!(null)), STAKED),
            (false, false)
        );
    }

    #[test]
    fn pods_are_pinned_by_match_fields() {
        let d = ds(
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]}}}),
        );
        let p = new_pod(&d, "h1", "n1");
        assert_eq!(p["metadata"]["generateName"], "agent-");
        assert_eq!(p["metadata"]["labels"][POD_REVISION_LABEL], "h1");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
        let na = &p["spec"]["affinity"]["nodeAffinity"];
        assert_eq!(
            na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
                ["matchFields"][0],
            json!({"key": "metadata.name", "operator": "In", "values": ["n1"]})
        );
        assert!(na["preferredDuringSchedulingIgnoredDuringExecution"].is_array());
        assert_eq!(pod_node(&p).as_deref(), Some("n1"));
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 6);
    }
}
