//! The ReplicaSet controller: keeps `spec.replicas` active pods matching the selector, owning
//! them through a controller ownerReference, and reports status.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apimachinery::selector::LabelSelector;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{
    self, best_effort, controlled_by, controller_ref, name, namespace, uid, APPS, CORE,
};
use crate::Controller;

const COMPONENT: &str = "replicaset-controller";

pub struct ReplicaSetController {
    client: LocalClient,
}

/// Order in which surplus pods are deleted: unscheduled first, then pending, then not ready,
/// then the newest.
pub fn deletion_order(a: &Value, b: &Value) -> Ordering {
    let assigned = |p: &Value| !p["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
    let phase = |p: &Value| match p["status"]["phase"].as_str() {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    };
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase(a).cmp(&phase(b)))
        .then_with(|| util::pod_ready(a).cmp(&util::pod_ready(b)))
        .then_with(|| {
            b["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&a["metadata"]["creationTimestamp"].as_str())
        })
        .then_with(|| name(b).cmp(name(a)))
}

/// A new pod for `rs` from its template.
pub fn pod_from_template(rs: &Value) -> Value {
    let tpl = &rs["spec"]["template"];
    let mut md = json!({
        "generateName": format!("{}-", name(rs)),
        "namespace": namespace(rs),
        "ownerReferences": [util::owner_ref(rs, "apps/v1", "ReplicaSet")],
    });
    for k in ["labels", "annotations", "finalizers"] {
        if !tpl["metadata"][k].is_null() {
            md[k] = tpl["metadata"][k].clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": tpl["spec"].clone()})
}

/// Status counters of a ReplicaSet over its active pods.
pub fn compute_status(
    rs: &Value,
    pods: &[&Value],
    now: chrono::DateTime<Utc>,
) -> (Value, Option<Duration>) {
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let tpl_labels = util::str_map(&rs["spec"]["template"]["metadata"]["labels"]);
    let mut fully = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut requeue: Option<Duration> = None;
    for p in pods {
        if tpl_labels
            .iter()
            .all(|(k, v)| p["metadata"]["labels"][k].as_str() == Some(v.as_str()))
        {
            fully += 1;
        }
        if util::pod_ready(p) {
            ready += 1;
        }
        let (avail, wait) = util::pod_available(p, min_ready, now);
        if avail {
            available += 1;
        }
        if let Some(w) = wait {
            requeue = Some(requeue.map(|r| r.min(w)).unwrap_or(w));
        }
    }
    (
        json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"]["generation"].as_i64().unwrap_or(0),
        }),
        requeue,
    )
}

fn status_differs(cur: &Value, new: &Value) -> bool {
    new.as_object()
        .map(|m| {
            m.iter()
                .any(|(k, v)| cur[k].as_i64().unwrap_or(0) != v.as_i64().unwrap_or(0))
        })
        .unwrap_or(false)
}

impl ReplicaSetController {
    pub fn new(client: LocalClient) -> Self {
        ReplicaSetController { client }
    }

    async fn sync(&self, rs: &Value, pods: &[Value]) -> Result<Option<Duration>, ApiError> {
        if util::is_deleting(rs) {
            return Ok(None);
        }
        let selector = match LabelSelector::from_json(&rs["spec"]["selector"]) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(replicaset = name(rs), error = %e.message(), "invalid selector");
                return Ok(None);
            }
        };
        let ns = namespace(rs);
        let rs_uid = uid(rs);
        let mut owned: Vec<Value> = Vec::new();
        for p in pods {
            let matches = !selector.is_everything() && selector.matches_object(p);
            if controlled_by(p, rs_uid) {
                if matches || util::is_deleting(p) {
                    owned.push(p.clone());
                } else {
                    self.release(p, rs_uid).await;
                }
            } else if controller_ref(p).is_none() && matches && util::pod_active(p) {
                if let Some(adopted) = self.adopt(rs, p).await {
                    owned.push(adopted);
                }
            }
        }
        let mut active: Vec<Value> = owned.into_iter().filter(util::pod_active).collect();
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mut result: Result<(), ApiError> = Ok(());
        if active.len() < want {
            let template = pod_from_template(rs);
            for _ in active.len()..want {
                match self
                    .client
                    .create(&util::path(CORE, ns, "pods", None), &template)
                    .await
                {
                    Ok(p) => {
                        let msg = format!("Created pod: {}", name(&p));
                        best_effort(
                            "event",
                            util::record_event(
                                &self.client,
                                rs,
                                "Normal",
                                "SuccessfulCreate",
                                &msg,
                                COMPONENT,
                            )
                            .await,
                        )
                        .await;
                        active.push(p);
                    }
                    Err(e) => {
                        let msg = format!("Error creating: {}", e.message);
                        best_effort(
                            "event",
                            util::record_event(
                                &self.client,
                                rs,
                                "Warning",
                                "FailedCreate",
                                &msg,
                                COMPONENT,
                            )
                            .await,
                        )
                        .await;
                        result = Err(e);
                        break;
                    }
                }
            }
        } else if active.len() > want {
            active.sort_by(deletion_order);
            let surplus = active.len() - want;
            let victims: Vec<Value> = active.drain(..surplus).collect();
            for p in victims {
                match self
                    .client
                    .delete_ignore_missing(&util::path(CORE, ns, "pods", Some(name(&p))))
                    .await
                {
                    Ok(()) => {
                        let msg = format!("Deleted pod: {}", name(&p));
                        best_effort(
                            "event",
                            util::record_event(
                                &self.client,
                                rs,
                                "Normal",
                                "SuccessfulDelete",
                                &msg,
                                COMPONENT,
                            )
                            .await,
                        )
                        .await;
                    }
                    Err(e) => {
                        active.push(p);
                        result = Err(e);
                    }
                }
            }
        }
        let refs: Vec<&Value> = active.iter().collect();
        let (status, requeue) = compute_status(rs, &refs, Utc::now());
        if status_differs(&rs["status"], &status) {
            let p = format!(
                "{}/status",
                util::path(APPS, ns, "replicasets", Some(name(rs)))
            );
            match self
                .client
                .merge_patch(&p, &json!({"status": status}))
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        result.map(|_| requeue)
    }

    /// Take ownership of a matching orphan (optimistic on its resourceVersion).
    async fn adopt(&self, rs: &Value, pod: &Value) -> Option<Value> {
        let mut refs: Vec<Value> = pod["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        refs.push(util::owner_ref(rs, "apps/v1", "ReplicaSet"));
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}});
        let p = util::path(CORE, namespace(pod), "pods", Some(name(pod)));
        match self.client.merge_patch(&p, &patch).await {
            Ok(v) => {
                tracing::info!(replicaset = name(rs), pod = name(pod), "adopted orphan pod");
                Some(v)
            }
            Err(e) => {
                tracing::debug!(pod = name(pod), error = %e.message, "adoption failed");
                None
            }
        }
    }

    /// Drop our controller reference from a pod that no longer matches the selector.
    async fn release(&self, pod: &Value, owner_uid: &str) {
        let refs: Vec<Value> = pod["metadata"]["ownerReferences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["uid"].as_str() != Some(owner_uid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}});
        let p = util::path(CORE, namespace(pod), "pods", Some(name(pod)));
        if let Err(e) = self.client.merge_patch(&p, &patch).await {
            tracing::debug!(pod = name(pod), error = %e.message, "release failed");
        }
    }
}

#[async_trait]
impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        "replicaset"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{APPS}/replicasets"), format!("{CORE}/pods")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let rss = self.client.list(&format!("{APPS}/replicasets")).await?;
        let pods = self.client.list(&format!("{CORE}/pods")).await?;
        let mut by_ns: HashMap<&str, Vec<Value>> = HashMap::new();
        for p in &pods {
            by_ns.entry(namespace(p)).or_default().push(p.clone());
        }
        let empty = Vec::new();
        let mut requeue: Option<Duration> = None;
        let mut err: Option<ApiError> = None;
        for rs in &rss {
            match self
                .sync(rs, by_ns.get(namespace(rs)).unwrap_or(&empty))
                .await
            {
                Ok(Some(d)) => requeue = Some(requeue.map(|r| r.min(d)).unwrap_or(d)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(replicaset = name(rs), namespace = namespace(rs), error = %e.message, "sync failed");
                    err.get_or_insert(e);
                }
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(requeue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surplus_deletion_prefers_unscheduled_then_unready_then_newest() {
        let p = |n: &str, node: &str, phase: &str, ready: bool, ts: &str| {
            json!({"metadata": {"name": n, "creationTimestamp": ts}, "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
        };
        let mut pods = [
            p("old-ready", "n1", "Running", true, "2024-01-01T00:00:00Z"),
            p("new-ready", "n1", "Running", true, "2024-01-02T00:00:00Z"),
            p("unready", "n1", "Running", false, "2024-01-01T00:00:00Z"),
            p("unscheduled", "", "Pending", false, "2023-01-01T00:00:00Z"),
            p("pending", "n2", "Pending", false, "2023-01-01T00:00:00Z"),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<&str> = pods.iter().map(name).collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "unready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn template_to_pod() {
        let rs = json!({"metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let pod = pod_from_template(&rs);
        assert_eq!(pod["metadata"]["generateName"], "web-abc-");
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Utc::now();
        let ready_at = (now - chrono::Duration::seconds(5)).to_rfc3339();
        let pod = json!({"metadata": {"labels": {"app": "x"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]}});
        let rs = |mrs: i64| json!({"metadata": {"generation": 3}, "spec": {"minReadySeconds": mrs, "template": {"metadata": {"labels": {"app": "x"}}}}});
        let (s, wait) = compute_status(&rs(0), &[&pod], now);
        assert_eq!(
            (
                s["readyReplicas"].as_i64(),
                s["availableReplicas"].as_i64(),
                wait
            ),
            (Some(1), Some(1), None)
        );
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(s["fullyLabeledReplicas"], 1);
        let (s, wait) = compute_status(&rs(10), &[&pod], now);
        assert_eq!(
            (s["readyReplicas"].as_i64(), s["availableReplicas"].as_i64()),
            (Some(1), Some(0))
        );
        let w = wait.unwrap();
        assert!(
            w > Duration::from_secs(4) && w < Duration::from_secs(6),
            "{w:?}"
        );
    }
}
