//! The namespace controller (pkg/controller/namespace/deletion): for every namespace being
//! deleted that still carries the `kubernetes` finalizer, discover every namespaced resource
//! that supports list and delete (built-in and custom, through the API's discovery documents),
//! delete its objects through the API (so pods get graceful deletion and objects' finalizers are
//! honoured), report progress in the namespace's deletion conditions as upstream does, and once
//! nothing is left remove the `kubernetes` finalizer through `namespaces/{name}/finalize` (the
//! registry removes the namespace when no finalizer is left).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::util::{is_deleting, name, now_rfc3339, parse_time, CORE};
use crate::Controller;

/// The finalizer this controller owns (upstream `FinalizerKubernetes`).
pub const FINALIZER: &str = "kubernetes";

/// The deletion conditions this controller maintains, in upstream's order.
pub const CONDITION_TYPES: [&str; 5] = [
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

/// Upstream's wait for content held by finalizers (`finalizerEstimateSeconds`).
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// Re-check a namespace whose content is still going at least this often (upstream waits for
/// the whole estimate; local passes are cheap, so a removed finalizer is noticed sooner).
const RECHECK: Duration = Duration::from_secs(2);

/// Why some content could not be deleted (the text goes into NamespaceDeletionContentFailure).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{0}")]
    Api(String),
    #[error("unexpected items still remain in namespace: {ns} for gvr: {gvr}")]
    Unexpected { ns: String, gvr: String },
}

/// Why discovery was incomplete.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Some group versions could not be read (upstream `ErrGroupDiscoveryFailed`).
    #[error("Discovery failed for some groups, {} failing: unable to retrieve the complete list of server APIs: {}", .0.len(), join_failures(.0))]
    Groups(Vec<(String, String)>),
    /// The root documents (`/api`, `/apis`) could not be read.
    #[error("{0}")]
    Root(String),
}

fn join_failures(f: &[(String, String)]) -> String {
    f.iter()
        .map(|(gv, e)| format!("{gv}: {e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A namespaced resource of one group version, as discovery lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub delete_collection: bool,
}

impl Gvr {
    fn collection(&self, ns: &str) -> String {
        let prefix = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        format!("{prefix}/namespaces/{ns}/{}", self.resource)
    }

    /// As upstream's `GroupVersionResource.String()`.
    fn display(&self) -> String {
        format!(
            "{}/{}, Resource={}",
            self.group, self.version, self.resource
        )
    }
}

/// What one discovery pass found.
#[derive(Debug, Default)]
pub struct Discovered {
    pub resources: Vec<Gvr>,
    pub failure: Option<DiscoveryError>,
    /// Group versions whose name does not parse (upstream `GroupVersionResources` errors).
    pub parse_errors: Vec<String>,
}

/// Parse a `groupVersion` as upstream's `schema.ParseGroupVersion`.
fn parse_group_version(gv: &str) -> Result<(String, String), String> {
    match gv.split('/').collect::<Vec<_>>().as_slice() {
        [v] if !v.is_empty() => Ok((String::new(), v.to_string())),
        [g, v] if !g.is_empty() && !v.is_empty() => Ok((g.to_string(), v.to_string())),
        _ => Err(format!("unexpected GroupVersion string: {gv}")),
    }
}

/// The namespaced resources of an `APIResourceList` that support list and delete.
fn deletable(list: &Value, group: &str, version: &str) -> Vec<Gvr> {
    list["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["namespaced"].as_bool() == Some(true))
        .filter(|r| r["name"].as_str().is_some_and(|n| !n.contains('/')))
        .filter(|r| {
            let verbs: Vec<&str> = r["verbs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            verbs.contains(&"list") && verbs.contains(&"delete")
        })
        .map(|r| Gvr {
            group: group.to_string(),
            version: version.to_string(),
            resource: r["name"].as_str().unwrap_or("").to_string(),
            delete_collection: r["verbs"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x == "deletecollection")),
        })
        .collect()
}

/// Every namespaced, deletable resource the API serves, at each group's preferred version.
pub async fn discover(client: &LocalClient) -> Discovered {
    let mut out = Discovered::default();
    let mut gvs: Vec<String> = Vec::new();
    match client.get("/api").await {
        Ok(v) => gvs.extend(
            v["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        ),
        Err(e) => {
            out.failure = Some(DiscoveryError::Root(e.message));
            return out;
        }
    }
    match client.get("/apis").await {
        Ok(v) => gvs.extend(
            v["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g["preferredVersion"]["groupVersion"].as_str())
                .map(str::to_string),
        ),
        Err(e) => {
            out.failure = Some(DiscoveryError::Root(e.message));
            return out;
        }
    }
    let mut failed = Vec::new();
    for gv in gvs {
        let (group, version) = match parse_group_version(&gv) {
            Ok(p) => p,
            Err(e) => {
                out.parse_errors.push(e);
                continue;
            }
        };
        let path = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        match client.get(&path).await {
            Ok(list) => out.resources.extend(deletable(&list, &group, &version)),
            Err(e) => failed.push((gv, e.message)),
        }
    }
    if !failed.is_empty() {
        out.failure = Some(DiscoveryError::Groups(failed));
    }
    out.resources.sort();
    out
}

/// Remaining content of one namespace after a deletion pass.
#[derive(Debug, Default)]
pub struct Totals {
    /// `resource.group` → objects left.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer → objects carrying it.
    pub finalizers: BTreeMap<String, usize>,
}

/// One namespace condition.
fn condition(ty: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": ty, "status": status, "lastTransitionTime": now_rfc3339(),
        "reason": reason, "message": message})
}

/// The "everything is fine" variant of a condition type (upstream `newSuccessfulCondition`).
fn ok_condition(ty: &str) -> Value {
    let (reason, message) = match ty {
        "NamespaceDeletionDiscoveryFailure" => (
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        "NamespaceDeletionGroupVersionParsingFailure" => (
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        "NamespaceDeletionContentFailure" => (
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        _ => ("ContentRemoved", "All content successfully removed"),
    };
    condition(ty, "False", reason, message)
}

/// The failing conditions of one pass (types not present here are fine).
pub fn failing_conditions(
    disc: &Discovered,
    content_errors: &[ContentError],
    totals: &Totals,
) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(e) = &disc.failure {
        out.push(condition(
            "NamespaceDeletionDiscoveryFailure",
            "True",
            "DiscoveryFailed",
            &e.to_string(),
        ));
    }
    if !disc.parse_errors.is_empty() {
        out.push(condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            "True",
            "GroupVersionParsingFailed",
            &disc.parse_errors.join(", "),
        ));
    }
    if !content_errors.is_empty() {
        let mut msgs: Vec<String> = content_errors.iter().map(|e| e.to_string()).collect();
        msgs.sort();
        out.push(condition(
            "NamespaceDeletionContentFailure",
            "True",
            "ContentDeletionFailed",
            &format!(
                "Failed to delete all resource types, {} remaining: {}",
                msgs.len(),
                msgs.join(", ")
            ),
        ));
    }
    let mut remaining: Vec<String> = totals
        .remaining
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(gr, n)| format!("{gr} has {n} resource instances"))
        .collect();
    if !remaining.is_empty() {
        remaining.sort();
        out.push(condition(
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            &format!("Some resources are remaining: {}", remaining.join(", ")),
        ));
    }
    let mut fins: Vec<String> = totals
        .finalizers
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    if !fins.is_empty() {
        fins.sort();
        out.push(condition(
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizerRemain",
            &format!("Some finalizers are remaining: {}", fins.join(", ")),
        ));
    }
    out
}

/// Merge `failing` into the namespace's conditions as upstream's `updateConditions`: every
/// maintained type is present, a transition time changes only with the status. Returns whether
/// anything changed.
pub fn update_conditions(status: &mut Value, failing: &[Value]) -> bool {
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let mut changed = false;
    for ty in CONDITION_TYPES {
        let new = failing
            .iter()
            .find(|c| c["type"] == ty)
            .cloned()
            .unwrap_or_else(|| ok_condition(ty));
        match conditions.iter_mut().find(|c| c["type"] == ty) {
            None => {
                conditions.push(new);
                changed = true;
            }
            Some(old) => {
                let same = ["status", "reason", "message"]
                    .iter()
                    .all(|k| old[*k] == new[*k]);
                if !same {
                    if old["status"] != new["status"] {
                        old["lastTransitionTime"] = new["lastTransitionTime"].clone();
                    }
                    for k in ["status", "reason", "message"] {
                        old[k] = new[k].clone();
                    }
                    changed = true;
                }
            }
        }
    }
    status["conditions"] = json!(conditions);
    changed
}

pub struct NamespaceController {
    client: LocalClient,
}

impl NamespaceController {
    pub fn new(client: LocalClient) -> Self {
        NamespaceController { client }
    }

    /// Seconds pods of `ns` may still take to terminate gracefully, counted from the
    /// namespace's deletion (upstream `estimateGracefulTerminationForPods`).
    async fn pod_estimate(&self, ns: &Value) -> Result<i64, ApiError> {
        let pods = self
            .client
            .list(&format!("{CORE}/namespaces/{}/pods", name(ns)))
            .await?;
        let estimate = pods
            .iter()
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .filter_map(|p| p["spec"]["terminationGracePeriodSeconds"].as_i64())
            .max()
            .unwrap_or(0);
        let elapsed = parse_time(&ns["metadata"]["deletionTimestamp"])
            .map(|t| (Utc::now() - t).num_seconds())
            .unwrap_or(0);
        Ok(if elapsed >= estimate { 0 } else { estimate })
    }

    /// Delete the objects of one resource in `ns`; returns the estimate (seconds) of how long
    /// what is left may take and adds what is left to `totals`.
    async fn delete_resource(
        &self,
        ns: &Value,
        gvr: &Gvr,
        totals: &mut Totals,
    ) -> Result<i64, ContentError> {
        let api = |e: ApiError| ContentError::Api(e.message);
        let n = name(ns);
        let collection = gvr.collection(n);
        let estimate = if gvr.group.is_empty() && gvr.resource == "pods" {
            self.pod_estimate(ns).await.map_err(api)?
        } else {
            0
        };
        let opts = json!({"propagationPolicy": "Background"});
        let mut each = !gvr.delete_collection;
        if gvr.delete_collection {
            match self.client.call_delete_with(&collection, &opts).await {
                Ok(_) => {}
                Err(e) if e.code == 404 || e.code == 405 => each = true,
                Err(e) => return Err(api(e)),
            }
        }
        if each {
            let items = match self.client.list(&collection).await {
                Ok(items) => items,
                Err(e) if e.code == 404 || e.code == 405 => return Ok(estimate),
                Err(e) => return Err(api(e)),
            };
            for item in items.iter().filter(|i| !is_deleting(i)) {
                let path = format!("{collection}/{}", name(item));
                match self.client.call_delete_with(&path, &opts).await {
                    Ok(_) => {}
                    Err(e) if e.code == 404 || e.code == 405 => {}
                    Err(e) => return Err(api(e)),
                }
            }
        }
        let left = match self.client.list(&collection).await {
            Ok(items) => items,
            Err(e) if e.code == 404 || e.code == 405 => return Ok(estimate),
            Err(e) => return Err(api(e)),
        };
        if left.is_empty() {
            return Ok(0);
        }
        *totals
            .remaining
            .entry(format!("{}.{}", gvr.resource, gvr.group))
            .or_default() += left.len();
        let mut with_finalizers = false;
        for f in left
            .iter()
            .flat_map(|i| i["metadata"]["finalizers"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
        {
            with_finalizers = true;
            *totals.finalizers.entry(f.to_string()).or_default() += 1;
        }
        if estimate > 0 {
            return Ok(estimate);
        }
        if with_finalizers {
            return Ok(FINALIZER_ESTIMATE_SECONDS);
        }
        Err(ContentError::Unexpected {
            ns: n.to_string(),
            gvr: gvr.display(),
        })
    }

    /// One deletion pass over namespace `ns`; `Some(d)` when it must be looked at again.
    async fn sync(&self, ns: &Value, disc: &Discovered) -> Result<Option<Duration>, ApiError> {
        let n = name(ns).to_string();
        let ours = ns["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f == FINALIZER));
        if !ours {
            return Ok(None);
        }
        let mut estimate = 0i64;
        let mut errors = Vec::new();
        let mut totals = Totals::default();
        if disc.failure.is_none() {
            for gvr in &disc.resources {
                match self.delete_resource(ns, gvr, &mut totals).await {
                    Ok(e) => estimate = estimate.max(e),
                    Err(e) => errors.push(e),
                }
            }
        }
        let failing = failing_conditions(disc, &errors, &totals);
        let mut current = ns.clone();
        let mut changed = update_conditions(&mut current["status"], &failing);
        if current["status"]["phase"] != "Terminating" {
            current["status"]["phase"] = json!("Terminating");
            changed = true;
        }
        if changed {
            match self
                .client
                .update(&format!("{CORE}/namespaces/{n}/status"), &current)
                .await
            {
                Ok(updated) => current = updated,
                // Gone or changed meanwhile: the namespace watch brings the next pass.
                Err(e) if e.code == 404 => return Ok(None),
                Err(e) if e.code == 409 => return Ok(Some(Duration::from_millis(200))),
                Err(e) => return Err(e),
            }
        }
        if disc.failure.is_some() || !disc.parse_errors.is_empty() || !errors.is_empty() {
            tracing::debug!(namespace = %n, "namespace content deletion incomplete; retrying");
            return Ok(Some(RECHECK));
        }
        if estimate > 0 {
            let wait = Duration::from_secs(estimate.unsigned_abs()).min(RECHECK);
            return Ok(Some(wait));
        }
        // Everything is gone: our finalizer is done.
        let mut others: Vec<String> = current["spec"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|f| *f != FINALIZER)
            .map(str::to_string)
            .collect();
        others.sort();
        others.dedup();
        current["spec"]["finalizers"] = json!(others);
        match self
            .client
            .update(&format!("{CORE}/namespaces/{n}/finalize"), &current)
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) if e.code == 409 => Ok(Some(Duration::from_millis(200))),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Controller for NamespaceController {
    fn name(&self) -> &'static str {
        "namespace"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/namespaces")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let deleting: Vec<Value> = self
            .client
            .list(&format!("{CORE}/namespaces"))
            .await?
            .into_iter()
            .filter(is_deleting)
            .collect();
        if deleting.is_empty() {
            return Ok(None);
        }
        let disc = discover(&self.client).await;
        let mut next: Option<Duration> = None;
        for ns in &deleting {
            let span = tracing::debug_span!("namespace_deletion", namespace = name(ns));
            let again = match self.sync(ns, &disc).instrument(span).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(namespace = name(ns), error = %e.message, "namespace deletion failed");
                    Some(RECHECK)
                }
            };
            next = match (next, again) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_versions_parse_as_upstream() {
        assert_eq!(parse_group_version("v1").unwrap(), ("".into(), "v1".into()));
        assert_eq!(
            parse_group_version("apps/v1").unwrap(),
            ("apps".into(), "v1".into())
        );
        assert_eq!(
            parse_group_version("a/b/c").unwrap_err(),
            "unexpected GroupVersion string: a/b/c"
        );
        assert!(parse_group_version("").is_err());
    }

    #[test]
    fn only_namespaced_listable_deletable_resources() {
        let list = json!({"resources": [
            {"name": "pods", "namespaced": true, "verbs": ["list", "delete", "deletecollection"]},
            {"name": "pods/status", "namespaced": true, "verbs": ["get", "patch"]},
            {"name": "nodes", "namespaced": false, "verbs": ["list", "delete"]},
            {"name": "bindings", "namespaced": true, "verbs": ["create"]},
            {"name": "things", "namespaced": true, "verbs": ["list", "delete"]},
        ]});
        let got = deletable(&list, "", "v1");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].resource, "pods");
        assert!(got[0].delete_collection);
        assert_eq!(got[1].resource, "things");
        assert!(!got[1].delete_collection);
        assert_eq!(got[0].collection("a"), "/api/v1/namespaces/a/pods");
        assert_eq!(got[0].display(), "/v1, Resource=pods");
    }

    #[test]
    fn conditions_as_upstream() {
        let mut totals = Totals::default();
        totals.remaining.insert("pods.".into(), 2);
        totals.finalizers.insert("x/y".into(), 1);
        let failing = failing_conditions(&Discovered::default(), &[], &totals);
        let mut status = json!({"phase": "Terminating"});
        assert!(update_conditions(&mut status, &failing));
        let conds = status["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 5);
        let get = |t: &str| conds.iter().find(|c| c["type"] == t).unwrap().clone();
        let c = get("NamespaceContentRemaining");
        assert_eq!(c["status"], "True");
        assert_eq!(c["reason"], "SomeResourcesRemain");
        assert_eq!(
            c["message"],
            "Some resources are remaining: pods. has 2 resource instances"
        );
        let f = get("NamespaceFinalizersRemaining");
        assert_eq!(f["reason"], "SomeFinalizerRemain");
        assert_eq!(
            f["message"],
            "Some finalizers are remaining: x/y in 1 resource instances"
        );
        let d = get("NamespaceDeletionDiscoveryFailure");
        assert_eq!(d["status"], "False");
        assert_eq!(d["reason"], "ResourcesDiscovered");
        // The same outcome again changes nothing; a fix flips the status.
        assert!(!update_conditions(&mut status, &failing));
        assert!(update_conditions(&mut status, &[]));
        assert_eq!(
            status["conditions"][3]["message"],
            "All content successfully removed"
        );

        let disc = Discovered {
            failure: Some(DiscoveryError::Groups(vec![(
                "x.io/v1".into(),
                "boom".into(),
            )])),
            ..Default::default()
        };
        let errs = [ContentError::Unexpected {
            ns: "a".into(),
            gvr: "/v1, Resource=pods".into(),
        }];
        let failing = failing_conditions(&disc, &errs, &Totals::default());
        assert_eq!(failing[0]["reason"], "DiscoveryFailed");
        assert_eq!(
            failing[0]["message"],
            "Discovery failed for some groups, 1 failing: unable to retrieve the complete list of server APIs: x.io/v1: boom"
        );
        assert_eq!(failing[1]["reason"], "ContentDeletionFailed");
        assert_eq!(
            failing[1]["message"],
            "Failed to delete all resource types, 1 remaining: unexpected items still remain in namespace: a for gvr: /v1, Resource=pods"
        );
    }
}
