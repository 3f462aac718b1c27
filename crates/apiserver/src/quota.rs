//! Resource quota evaluation, shared by the quota admission ([`admit`]) and the resource quota
//! controller (daas-controllers `quota`): what an object uses of which quota resource
//! (upstream pkg/quota/v1/evaluator/core: pods, services and the generic object counter), which
//! quotas an object falls under (scopes and scope selectors), and the admission check of
//! plugin/pkg/admission/resourcequota, which also charges the admitted usage to the quota's
//! `status.used` so that concurrent creates cannot both pass.

use std::collections::{BTreeMap, BTreeSet};

use daas_apimachinery::quantity::{format_milli, format_of, value_milli, Format};
use daas_store::StoreError;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{decode_kv, encode, Ctx};
use crate::resources::{self, ResourceDef};

/// Usage per quota resource name, in milli-units.
pub type Usage = BTreeMap<String, i128>;

/// Quota scopes (upstream `ResourceQuotaScope`) that this server evaluates.
pub const SCOPES: [&str; 6] = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// Resources a pod may be charged for besides its count (upstream `podResources`).
const POD_COMPUTE: [&str; 9] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// Resources for which every container must state a request or limit once a quota tracks them
/// (upstream's backward-compatible `validationSet`).
const MUST_SPECIFY: [&str; 6] = [
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Legacy object-count names of core kinds (`pods` and `services` are handled by their own
/// evaluators).
const LEGACY_COUNTS: [&str; 5] = [
    "configmaps",
    "secrets",
    "replicationcontrollers",
    "resourcequotas",
    "persistentvolumeclaims",
];

/// `count/<plural>` for core kinds, `count/<plural>.<group>` otherwise.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// The kind (group, plural) whose objects a quota resource name counts.
pub fn kind_of(resource: &str) -> Option<(String, String)> {
    // Storage is claimed by PersistentVolumeClaims (also per storage class:
    // `<class>.storageclass.storage.k8s.io/requests.storage`).
    if resource == "requests.storage" || resource.contains(".storageclass.storage.k8s.io/") {
        return Some((String::new(), "persistentvolumeclaims".into()));
    }
    if resource == "pods" || POD_COMPUTE.contains(&resource) || resource.starts_with("hugepages-") {
        return Some((String::new(), "pods".into()));
    }
    if resource.starts_with("requests.") || resource.starts_with("limits.") {
        return Some((String::new(), "pods".into()));
    }
    if ["services", "services.loadbalancers", "services.nodeports"].contains(&resource) {
        return Some((String::new(), "services".into()));
    }
    if LEGACY_COUNTS.contains(&resource) {
        return Some((String::new(), resource.into()));
    }
    let rest = resource.strip_prefix("count/")?;
    Some(match rest.split_once('.') {
        Some((plural, group)) => (group.into(), plural.into()),
        None => (String::new(), rest.into()),
    })
}

fn is_pod(group: &str, plural: &str) -> bool {
    group.is_empty() && plural == "pods"
}

/// A pod that no longer counts: it has terminated.
fn pod_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    )
}

fn add(u: &mut Usage, k: &str, v: i128) {
    *u.entry(k.to_string()).or_insert(0) += v;
}

/// What one container asks for, as quota names: requests of cpu/memory/ephemeral-storage count
/// both as `X` and `requests.X`, limits as `limits.X`.
fn container_usage(c: &Value) -> Usage {
    let mut u = Usage::new();
    for (field, prefix) in [("requests", "requests."), ("limits", "limits.")] {
        if let Some(m) = c["resources"][field].as_object() {
            for (k, q) in m {
                let Some(v) = value_milli(q) else { continue };
                if k.starts_with("hugepages-") {
                    if field == "requests" {
                        add(&mut u, &format!("requests.{k}"), v);
                    }
                    continue;
                }
                if !["cpu", "memory", "ephemeral-storage"].contains(&k.as_str()) && !k.contains('/')
                {
                    continue;
                }
                if k.contains('/') {
                    // Extended resources are quota'd by request only.
                    if field == "requests" {
                        add(&mut u, &format!("requests.{k}"), v);
                    }
                    continue;
                }
                add(&mut u, &format!("{prefix}{k}"), v);
                if field == "requests" {
                    add(&mut u, k, v);
                }
            }
        }
    }
    u
}

/// A pod's compute usage: the sum over its containers, raised to any single init container's
/// (upstream `PodUsageFunc`).
fn pod_compute(pod: &Value) -> Usage {
    let mut sum = Usage::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for (k, v) in container_usage(c) {
            add(&mut sum, &k, v);
        }
    }
    for c in pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for (k, v) in container_usage(c) {
            let e = sum.entry(k).or_insert(0);
            *e = (*e).max(v);
        }
    }
    sum
}

/// What `obj` of kind (group, plural) uses, per quota resource name.
pub fn object_usage(group: &str, plural: &str, obj: &Value) -> Usage {
    let mut u = Usage::new();
    if is_pod(group, plural) {
        if pod_terminal(obj) {
            return u;
        }
        u = pod_compute(obj);
        add(&mut u, "pods", 1000);
    } else if group.is_empty() && plural == "services" {
        add(&mut u, "services", 1000);
        let ty = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
        if ty == "LoadBalancer" {
            add(&mut u, "services.loadbalancers", 1000);
        }
        if ty == "LoadBalancer" || ty == "NodePort" {
            let ports = obj["spec"]["ports"].as_array().map(Vec::len).unwrap_or(0);
            add(&mut u, "services.nodeports", 1000 * ports as i128);
        }
    } else if group.is_empty() && LEGACY_COUNTS.contains(&plural) {
        add(&mut u, plural, 1000);
    }
    add(&mut u, &count_name(group, plural), 1000);
    u
}

/// Does the pod fall under a quota scope (upstream `podMatchesScopeFunc`)?
fn pod_matches_scope(scope: &str, op: &str, values: &[String], pod: &Value) -> bool {
    let spec = &pod["spec"];
    let matched = match scope {
        "Terminating" => spec["activeDeadlineSeconds"]
            .as_i64()
            .is_some_and(|s| s >= 0),
        "NotTerminating" => spec["activeDeadlineSeconds"].as_i64().is_none_or(|s| s < 0),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let pc = spec["priorityClassName"].as_str().unwrap_or("");
            return match op {
                "In" => values.iter().any(|v| v == pc),
                "NotIn" => !values.iter().any(|v| v == pc),
                "DoesNotExist" => pc.is_empty(),
                _ => !pc.is_empty(),
            };
        }
        "CrossNamespacePodAffinity" => {
            let a = &spec["affinity"];
            ["podAffinity", "podAntiAffinity"].iter().any(|k| {
                ["requiredDuringSchedulingIgnoredDuringExecution"]
                    .iter()
                    .flat_map(|f| a[*k][*f].as_array().into_iter().flatten())
                    .any(|t| !t["namespaceSelector"].is_null() || t["namespaces"].is_array())
            })
        }
        _ => false,
    };
    if op == "DoesNotExist" {
        !matched
    } else {
        matched
    }
}

/// A pod is BestEffort when no container states any request or limit.
fn is_best_effort(pod: &Value) -> bool {
    let spec = &pod["spec"];
    ["containers", "initContainers"].iter().all(|f| {
        spec[*f].as_array().into_iter().flatten().all(|c| {
            ["requests", "limits"].iter().all(|r| {
                c["resources"][*r]
                    .as_object()
                    .map(|m| m.is_empty())
                    .unwrap_or(true)
            })
        })
    })
}

/// The (scope, operator, values) a quota selects by: `spec.scopes` (Exists) and
/// `spec.scopeSelector.matchExpressions`.
fn quota_scopes(quota: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .map(|s| (s.to_string(), "Exists".to_string(), Vec::new()))
        .collect();
    for e in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let values = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        out.push((
            e["scopeName"].as_str().unwrap_or("").to_string(),
            e["operator"].as_str().unwrap_or("").to_string(),
            values,
        ));
    }
    out
}

/// Does `obj` of kind (group, plural) fall under `quota`? Scoped quotas only cover pods.
pub fn matches(quota: &Value, group: &str, plural: &str, obj: &Value) -> bool {
    let scopes = quota_scopes(quota);
    if scopes.is_empty() {
        return true;
    }
    is_pod(group, plural)
        && scopes
            .iter()
            .all(|(s, op, vals)| pod_matches_scope(s, op, vals, obj))
}

/// Which of `hard`'s resource names a quota with scopes can constrain: BestEffort pods have no
/// compute to charge, so a BestEffort quota tracks their count only.
fn scope_allows(quota: &Value, resource: &str) -> bool {
    let scopes = quota_scopes(quota);
    if scopes.is_empty() {
        return true;
    }
    let count = resource == "pods" || resource == "count/pods";
    let best_effort = scopes
        .iter()
        .any(|(s, op, _)| s == "BestEffort" && op != "DoesNotExist");
    count
        || (!best_effort
            && (POD_COMPUTE.contains(&resource)
                || resource.starts_with("requests.")
                || resource.starts_with("limits.")))
}

/// The resource names of `hard` (a quota's `spec.hard` or `status.hard`) that objects of kind
/// (group, plural) are charged for under `quota`.
pub fn matching_resources(quota: &Value, hard: &Value, group: &str, plural: &str) -> Vec<String> {
    hard.as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| scope_allows(quota, k))
        .filter(|k| {
            kind_of(k).is_some_and(|(g, p)| g == group && p == plural)
                || (is_pod(group, plural) && k.starts_with("requests.") && k.contains('/'))
        })
        .collect()
}

/// The written form of a usage for resource `k`, in the format its hard limit uses.
pub fn format_usage(hard: &Value, k: &str, milli: i128) -> String {
    let format = hard[k]
        .as_str()
        .and_then(format_of)
        .unwrap_or(Format::DecimalSi);
    format_milli(milli, format)
}

/// Total usage of `quota` over `objects` of one kind (those of other kinds are ignored by the
/// caller listing only what the quota tracks): one entry for every resource of `spec.hard`.
pub fn usage_of<'o>(
    quota: &Value,
    objects: impl IntoIterator<Item = (&'o str, &'o str, &'o Value)>,
) -> Usage {
    let hard = &quota["spec"]["hard"];
    let mut used: Usage = hard
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| (k.clone(), 0))
        .collect();
    for (g, p, o) in objects {
        if !matches(quota, g, p, o) {
            continue;
        }
        let names = matching_resources(quota, hard, g, p);
        let u = object_usage(g, p, o);
        for k in names {
            if let Some(v) = u.get(&k) {
                add(&mut used, &k, *v);
            }
        }
    }
    used
}

/// `status.used` for `usage`, formatted like `spec.hard`.
pub fn used_json(quota: &Value, usage: &Usage) -> Value {
    let hard = &quota["spec"]["hard"];
    Value::Object(
        usage
            .iter()
            .map(|(k, v)| (k.clone(), json!(format_usage(hard, k, *v))))
            .collect::<Map<String, Value>>(),
    )
}

/// Upstream `prettyPrint`: `k=v` pairs sorted by name, comma-separated.
fn pretty(pairs: &BTreeMap<String, String>) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn forbidden(def: &ResourceDef, name: &str, why: String) -> ApiError {
    ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {why}",
        def.qualified()
    ))
    .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
}

/// Upstream pod evaluator `Constraints`: when a quota tracks cpu or memory, each container must
/// state the matching request or limit. Returns the `must specify ...` text.
fn missing_compute(pod: &Value, required: &[String]) -> Option<String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| MUST_SPECIFY.contains(r))
        .collect();
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for f in ["containers", "initContainers"] {
        for c in pod["spec"][f].as_array().into_iter().flatten() {
            let have = container_usage(c);
            for r in &required {
                if !have.contains_key(*r) {
                    missing
                        .entry(r)
                        .or_default()
                        .insert(c["name"].as_str().unwrap_or("").to_string());
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, names)| {
            format!(
                "{r} for: {}",
                names.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// Quota admission of a create (`old == None`) or update of `new` in namespace `ns`: every quota
/// of the namespace the object falls under must have room for the usage it adds; the added
/// usage is then charged to the quotas' `status.used` (the quota controller later recomputes it
/// from the objects themselves). Updates are charged for services only (a type change), as
/// upstream: other kinds' usage does not change on update. `charge: false` (a dry run) checks
/// without charging.
pub async fn admit(
    ctx: &Ctx,
    def: &ResourceDef,
    ns: &str,
    old: Option<&Value>,
    new: &Value,
    charge: bool,
) -> ApiResult<()> {
    if def.plural == "resourcequotas" && def.group.is_empty() && old.is_some() {
        return Ok(());
    }
    if old.is_some() && !(def.group.is_empty() && def.plural == "services") {
        return Ok(());
    }
    let qdef = &resources::RESOURCE_QUOTAS;
    let prefix = qdef.prefix(Some(ns));
    // Retry the charge when a quota changed between reading and writing it.
    for _ in 0..8 {
        let res = ctx.store.list(&prefix).await?;
        if res.items.is_empty() {
            return Ok(());
        }
        let name = new["metadata"]["name"].as_str().unwrap_or("");
        let mut delta = object_usage(def.group, def.plural, new);
        if let Some(o) = old {
            for (k, v) in object_usage(def.group, def.plural, o) {
                add(&mut delta, &k, -v);
            }
        }
        let mut writes = Vec::new();
        for kv in res.items {
            let quota = decode_kv(&kv)?;
            let qname = quota["metadata"]["name"].as_str().unwrap_or("").to_string();
            let hard = &quota["status"]["hard"];
            if !matches(&quota, def.group, def.plural, new) {
                continue;
            }
            let restricted = matching_resources(&quota, hard, def.group, def.plural);
            if restricted.is_empty() {
                continue;
            }
            if def.group.is_empty() && def.plural == "pods" && old.is_none() {
                if let Some(msg) = missing_compute(new, &restricted) {
                    return Err(forbidden(
                        def,
                        name,
                        format!("failed quota: {qname}: {msg}"),
                    ));
                }
            }
            let used = &quota["status"]["used"];
            let unknown: Vec<&str> = restricted
                .iter()
                .filter(|r| used[r.as_str()].is_null())
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(forbidden(
                    def,
                    name,
                    format!(
                        "status unknown for quota: {qname}, resources: {}",
                        unknown.join(",")
                    ),
                ));
            }
            let mut new_used = Map::new();
            let (mut req, mut was, mut lim) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
            let mut changed = false;
            for r in &restricted {
                let d = delta.get(r).copied().unwrap_or(0);
                let u = value_milli(&used[r.as_str()]).unwrap_or(0);
                let h = value_milli(&hard[r.as_str()]).unwrap_or(0);
                if d > 0 && u + d > h {
                    req.insert(r.clone(), format_usage(hard, r, d));
                    was.insert(r.clone(), format_usage(hard, r, u));
                    lim.insert(r.clone(), format_usage(hard, r, h));
                }
                if d != 0 {
                    changed = true;
                    new_used.insert(r.clone(), json!(format_usage(hard, r, (u + d).max(0))));
                }
            }
            if !req.is_empty() {
                return Err(forbidden(
                    def,
                    name,
                    format!(
                        "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                        pretty(&req),
                        pretty(&was),
                        pretty(&lim)
                    ),
                ));
            }
            if changed && charge {
                let mut q = quota.clone();
                for (k, v) in new_used {
                    q["status"]["used"][k] = v;
                }
                writes.push((kv.key.clone(), kv.mod_revision, q, qname));
            }
        }
        let mut conflict = false;
        for (key, rev, q, _) in writes {
            match ctx.store.update(&key, &encode(&q)?, rev).await {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound(_)) => {
                    conflict = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !conflict {
            return Ok(());
        }
    }
    Err(ApiError::new(
        409,
        "Conflict",
        "Operation cannot be fulfilled on resourcequotas: too many conflicts charging quota usage",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(requests: Value, limits: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": requests, "limits": limits}}]}})
    }

    #[test]
    fn pod_usage_counts_requests_and_limits() {
        let p = pod(json!({"cpu": "500m", "memory": "1Gi"}), json!({"cpu": "1"}));
        let u = object_usage("", "pods", &p);
        assert_eq!(u["pods"], 1000);
        assert_eq!(u["count/pods"], 1000);
        assert_eq!(u["cpu"], 500);
        assert_eq!(u["requests.cpu"], 500);
        assert_eq!(u["limits.cpu"], 1000);
        assert_eq!(u["requests.memory"], 1024 * 1024 * 1024 * 1000);
        assert!(!u.contains_key("limits.memory"));
        let mut done = p.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert!(object_usage("", "pods", &done).is_empty());
    }

    #[test]
    fn names_map_to_kinds() {
        assert_eq!(kind_of("requests.cpu"), Some(("".into(), "pods".into())));
        assert_eq!(
            kind_of("count/replicasets.apps"),
            Some(("apps".into(), "replicasets".into()))
        );
        assert_eq!(
            kind_of("configmaps"),
            Some(("".into(), "configmaps".into()))
        );
        assert_eq!(kind_of("bogus"), None);
        assert_eq!(
            kind_of("requests.storage"),
            Some(("".into(), "persistentvolumeclaims".into()))
        );
        assert_eq!(
            kind_of("gold.storageclass.storage.k8s.io/requests.storage"),
            Some(("".into(), "persistentvolumeclaims".into()))
        );
        let u = object_usage("apps", "replicasets", &json!({}));
        assert_eq!(u["count/replicasets.apps"], 1000);
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}});
        let u = object_usage("", "services", &svc);
        assert_eq!(u["services.nodeports"], 2000);
        assert!(!u.contains_key("services.loadbalancers"));
    }

    #[test]
    fn scopes_select_pods() {
        let be = pod(json!({}), json!({}));
        let burst = pod(json!({"cpu": "1"}), json!({}));
        let q = |scopes: Value| json!({"spec": {"scopes": scopes, "hard": {"pods": "5", "requests.cpu": "1"}}});
        assert!(matches(&q(json!(["BestEffort"])), "", "pods", &be));
        assert!(!matches(&q(json!(["BestEffort"])), "", "pods", &burst));
        assert!(matches(&q(json!(["NotBestEffort"])), "", "pods", &burst));
        assert!(!matches(&q(json!(["BestEffort"])), "", "configmaps", &be));
        let mut term = be.clone();
        term["spec"]["activeDeadlineSeconds"] = json!(3600);
        assert!(matches(&q(json!(["Terminating"])), "", "pods", &term));
        assert!(!matches(&q(json!(["NotTerminating"])), "", "pods", &term));
        let bq = q(json!(["BestEffort"]));
        assert_eq!(
            matching_resources(&bq, &bq["spec"]["hard"], "", "pods"),
            vec!["pods"]
        );
        let sel = json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}});
        let mut hi = be.clone();
        hi["spec"]["priorityClassName"] = json!("high");
        assert!(matches(&sel, "", "pods", &hi));
        assert!(!matches(&sel, "", "pods", &be));
    }

    #[test]
    fn usage_sums_matching_objects_in_hard_format() {
        let q =
            json!({"spec": {"hard": {"pods": "10", "requests.memory": "1Gi", "configmaps": "3"}}});
        let p1 = pod(json!({"memory": "256Mi"}), json!({}));
        let p2 = pod(json!({"memory": "256Mi"}), json!({}));
        let cm = json!({"metadata": {"name": "c"}});
        let u = usage_of(
            &q,
            [
                ("", "pods", &p1),
                ("", "pods", &p2),
                ("", "configmaps", &cm),
            ],
        );
        let used = used_json(&q, &u);
        assert_eq!(
            used,
            json!({"pods": "2", "requests.memory": "512Mi", "configmaps": "1"})
        );
    }

    #[test]
    fn must_specify_lists_resources_and_containers() {
        let p = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b"}]}});
        let msg = missing_compute(
            &p,
            &["requests.cpu".into(), "limits.memory".into(), "pods".into()],
        );
        assert_eq!(
            msg.as_deref(),
            Some("must specify limits.memory for: a,b; requests.cpu for: b")
        );
        assert_eq!(missing_compute(&p, &["pods".into()]), None);
    }
}
