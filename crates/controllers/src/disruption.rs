//! The disruption controller (pkg/controller/disruption): keeps every PodDisruptionBudget's
//! status — expected and healthy pod counts, how many disruptions are allowed now, the evicted
//! pods not yet gone (`disruptedPods`) and the `DisruptionAllowed` condition — in line with the
//! pods its selector matches and the scale of their controllers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_apimachinery::selector::LabelSelector;
use daas_apiserver::registry::poddisruptionbudget::set_disruption_condition;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{
    controller_ref, is_deleting, name, namespace, now_rfc3339, parse_time, path, pod_ready, APPS,
    CORE,
};
use crate::Controller;

const POLICY: &str = "/apis/policy/v1";

/// How long an eviction recorded in `disruptedPods` keeps its pod out of the healthy count
/// (upstream `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

pub struct DisruptionController {
    client: LocalClient,
    informers: crate::informer::Informers,
}

impl DisruptionController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

impl DisruptionController {
    pub fn new(client: LocalClient) -> Self {
        DisruptionController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
        }
    }
}

/// An int-or-percent of `total`, percentages rounded up (upstream
/// `GetScaledValueFromIntOrPercent(.., true)`). `None` when malformed.
pub fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let p: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some((p * total + 99) / 100)
        }
        _ => None,
    }
}

/// What a budget's status is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub expected: i64,
    pub desired: i64,
    pub healthy: i64,
}

/// Pods healthy for the budget: ready, not being deleted and not evicted recently.
pub fn count_healthy(pods: &[&Value], disrupted: &BTreeMap<String, String>) -> i64 {
    pods.iter()
        .filter(|p| !is_deleting(p) && !disrupted.contains_key(name(p)) && pod_ready(p))
        .count() as i64
}

/// The `disruptedPods` entries still standing: the pod exists, is not being deleted, and the
/// eviction is younger than [`DELETION_TIMEOUT`]. Returns them and the earliest expiry.
pub fn live_disruptions(
    status: &Value,
    pods: &[&Value],
    now: DateTime<Utc>,
) -> (BTreeMap<String, String>, Option<Duration>) {
    let mut out = BTreeMap::new();
    let mut next: Option<Duration> = None;
    for (pod, t) in status["disruptedPods"].as_object().into_iter().flatten() {
        let Some(at) = parse_time(t) else { continue };
        let Some(p) = pods.iter().find(|p| name(p) == pod) else {
            continue;
        };
        if is_deleting(p) {
            continue;
        }
        let expires = at + chrono::Duration::from_std(DELETION_TIMEOUT).unwrap_or_default();
        if expires <= now {
            continue;
        }
        let left = (expires - now).to_std().unwrap_or_default();
        next = Some(next.map_or(left, |n| n.min(left)));
        out.insert(pod.clone(), t.as_str().unwrap_or("").to_string());
    }
    (out, next)
}

impl DisruptionController {
    /// The summed scale of the pods' controllers (upstream `getExpectedScale`): a ReplicaSet
    /// owned by a Deployment counts as the Deployment.
    async fn expected_scale(&self, ns: &str, pods: &[&Value]) -> Result<i64, String> {
        let mut seen: HashMap<String, i64> = HashMap::new();
        for p in pods {
            let Some(r) = controller_ref(p) else {
                return Err(format!("found no controller ref for pod {:?}", name(p)));
            };
            let uid = r["uid"].as_str().unwrap_or("").to_string();
            if seen.contains_key(&uid) {
                continue;
            }
            let rname = r["name"].as_str().unwrap_or("");
            let (prefix, plural) = match r["kind"].as_str().unwrap_or("") {
                "ReplicaSet" => (APPS, "replicasets"),
                "Deployment" => (APPS, "deployments"),
                "StatefulSet" => (APPS, "statefulsets"),
                "ReplicationController" => (CORE, "replicationcontrollers"),
                k => {
                    return Err(format!(
                        "found no controllers for pod {:?} (owner kind {k})",
                        name(p)
                    ))
                }
            };
            let obj = self
                .client
                .get_opt(&path(prefix, ns, plural, Some(rname)))
                .await
                .map_err(|e| e.message)?
                .ok_or_else(|| {
                    format!("controller {plural}/{rname} of pod {:?} not found", name(p))
                })?;
            let mut scale = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            if plural == "replicasets" {
                if let Some(d) = controller_ref(&obj).filter(|d| d["kind"] == "Deployment") {
                    let dn = d["name"].as_str().unwrap_or("");
                    if let Some(dep) = self
                        .client
                        .get_opt(&path(APPS, ns, "deployments", Some(dn)))
                        .await
                        .map_err(|e| e.message)?
                    {
                        let duid = d["uid"].as_str().unwrap_or("").to_string();
                        if seen.contains_key(&duid) {
                            seen.insert(uid, 0);
                            continue;
                        }
                        scale = dep["spec"]["replicas"].as_i64().unwrap_or(1);
                        seen.insert(duid, scale);
                        seen.insert(uid, 0);
                        continue;
                    }
                }
            }
            seen.insert(uid, scale);
        }
        Ok(seen.values().sum())
    }

    /// Expected and desired healthy pods (upstream `getExpectedPodCount`).
    async fn counts(&self, pdb: &Value, ns: &str, pods: &[&Value]) -> Result<(i64, i64), String> {
        let spec = &pdb["spec"];
        if !spec["maxUnavailable"].is_null() {
            let expected = self.expected_scale(ns, pods).await?;
            let max = scaled(&spec["maxUnavailable"], expected)
                .ok_or_else(|| "invalid maxUnavailable".to_string())?;
            return Ok((expected, (expected - max).max(0)));
        }
        match &spec["minAvailable"] {
            Value::Number(n) => Ok((pods.len() as i64, n.as_i64().unwrap_or(0))),
            v @ Value::String(_) => {
                let expected = self.expected_scale(ns, pods).await?;
                let min = scaled(v, expected).ok_or_else(|| "invalid minAvailable".to_string())?;
                Ok((expected, min))
            }
            _ => Ok((0, 0)),
        }
    }

    /// Bring one budget's status up to date; returns when it must be looked at again.
    async fn sync(
        &self,
        pdb: &Value,
        all_pods: &[std::sync::Arc<Value>],
    ) -> Result<Option<Duration>, ApiError> {
        let ns = namespace(pdb);
        let sel = &pdb["spec"]["selector"];
        let selector = if sel.is_null() {
            None
        } else {
            LabelSelector::from_json(sel).ok()
        };
        let pods: Vec<&Value> = all_pods
            .iter()
            .map(|p| &**p)
            .filter(|p| namespace(p) == ns)
            .filter(|p| selector.as_ref().is_some_and(|s| s.matches_object(p)))
            .collect();
        let now = Utc::now();
        let now_s = now_rfc3339();
        let mut status = pdb["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        status["observedGeneration"] = pdb["metadata"]["generation"].clone();
        let mut next = None;
        match self.counts(pdb, ns, &pods).await {
            Ok((expected, desired)) => {
                let (disrupted, expiry) = live_disruptions(&status, &pods, now);
                next = expiry;
                let healthy = count_healthy(&pods, &disrupted);
                let mut allowed = healthy - desired;
                if expected <= 0 || allowed <= 0 {
                    allowed = 0;
                }
                status["expectedPods"] = json!(expected);
                status["desiredHealthy"] = json!(desired);
                status["currentHealthy"] = json!(healthy);
                status["disruptionsAllowed"] = json!(allowed);
                if disrupted.is_empty() {
                    if let Some(m) = status.as_object_mut() {
                        m.remove("disruptedPods");
                    }
                } else {
                    status["disruptedPods"] = json!(disrupted);
                }
                set_disruption_condition(&mut status, allowed > 0, &now_s);
            }
            Err(why) => {
                // Fail safe: no disruptions while the budget cannot be evaluated.
                status["disruptionsAllowed"] = json!(0);
                set_disruption_condition(&mut status, false, &now_s);
                if let Some(c) = status["conditions"]
                    .as_array_mut()
                    .and_then(|cs| cs.iter_mut().find(|c| c["type"] == "DisruptionAllowed"))
                {
                    c["reason"] = json!("SyncFailed");
                    c["message"] = json!(why);
                }
            }
        }
        if status != pdb["status"] {
            let mut n = pdb.clone();
            n["status"] = status;
            let p = path(POLICY, ns, "poddisruptionbudgets", Some(name(pdb))) + "/status";
            match self.client.update(&p, &n).await {
                Ok(_) => {}
                Err(e) if e.code == 409 || e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(next)
    }
}

#[async_trait]
impl Controller for DisruptionController {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(
            format!("{CORE}/pods"),
            crate::wakefilter::in_namespaces_with(
                &self.informers,
                &format!("{POLICY}/poddisruptionbudgets"),
            ),
        )]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "disruption"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{POLICY}/poddisruptionbudgets"),
            format!("{CORE}/pods"),
            format!("{APPS}/replicasets"),
            format!("{APPS}/deployments"),
            format!("{CORE}/replicationcontrollers"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let pdbs = self
            .client
            .list(&format!("{POLICY}/poddisruptionbudgets"))
            .await?;
        if pdbs.is_empty() {
            return Ok(None);
        }
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let mut next: Option<Duration> = None;
        for pdb in &pdbs {
            if let Some(d) = self.sync(pdb, &pods).await? {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&json!("50%"), 3), Some(2));
        assert_eq!(scaled(&json!("100%"), 3), Some(3));
        assert_eq!(scaled(&json!(2), 10), Some(2));
        assert_eq!(scaled(&json!("x"), 3), None);
    }

    #[test]
    fn disruptions_expire_and_follow_pods() {
        let now = Utc::now();
        let recent = (now - chrono::Duration::seconds(10)).to_rfc3339();
        let old = (now - chrono::Duration::seconds(500)).to_rfc3339();
        let status = json!({"disruptedPods": {"a": recent, "b": old, "gone": recent, "c": recent}});
        let a = json!({"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let b = json!({"metadata": {"name": "b"}});
        let c = json!({"metadata": {"name": "c", "deletionTimestamp": recent}});
        let pods = vec![&a, &b, &c];
        let (live, next) = live_disruptions(&status, &pods, now);
        assert_eq!(live.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(next.is_some_and(|d| d <= Duration::from_secs(110)));
        // `a` is ready but evicted: not healthy.
        assert_eq!(count_healthy(&pods, &live), 0);
        assert_eq!(count_healthy(&pods, &BTreeMap::new()), 1);
    }
}
