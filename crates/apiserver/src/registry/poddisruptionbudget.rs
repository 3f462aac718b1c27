//! PodDisruptionBudgets (pkg/registry/policy/poddisruptionbudget; pkg/apis/policy/validation)
//! and the `pods/eviction` subresource honouring them (pkg/registry/core/pod/storage/eviction.go).
//! Their status is maintained by the disruption controller (daas-controllers `disruption`).

use std::collections::HashMap;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use daas_apimachinery::selector::LabelSelector;
use daas_store::StoreError;
use k8s_openapi::api::policy::v1 as policy;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{decode_kv, encode, get_object, json_response, Ctx, UPDATE_RETRIES};
use crate::request::ResourceTarget;
use crate::resources::{self, ResourceDef, Subresource::*};
use crate::table::s;

#[derive(Debug)]
pub struct PodDisruptionBudgetStrategy;

/// The REST shape of PodDisruptionBudgets, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "policy",
    version: "v1",
    kind: "PodDisruptionBudget",
    list_kind: "PodDisruptionBudgetList",
    plural: "poddisruptionbudgets",
    singular: "poddisruptionbudget",
    namespaced: true,
    short_names: &["pdb"],
    categories: &[],
    subresources: &[Status],
    has_spec: true,
    strategy: &PodDisruptionBudgetStrategy,
};

/// The condition type the disruption controller and evictions maintain.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Upstream's cause type of a refused eviction.
pub const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";
/// Refused eviction message (upstream text).
pub const EVICTION_REFUSED: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// Upstream `ValidateNonnegativeIntOrPercent` plus `IsValidPercent` and the 100% cap.
fn validate_int_or_percent(v: &Value, path: &str, causes: &mut Vec<Cause>) {
    match v {
        Value::Null => {}
        Value::Number(n) => {
            if n.as_i64().is_none_or(|i| i < 0) {
                causes.push((
                    path.into(),
                    format!("Invalid value: {n}: must be greater than or equal to 0"),
                ));
            }
        }
        Value::String(p) => {
            let digits = p.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                causes.push((path.into(), format!("Invalid value: {p:?}: {PERCENT_MSG}")));
            } else if digits.parse::<u64>().map(|d| d > 100).unwrap_or(true) {
                causes.push((
                    path.into(),
                    format!("Invalid value: {p:?}: must not be greater than 100%"),
                ));
            }
        }
        other => causes.push((
            path.into(),
            format!("Invalid value: {other}: must be an integer or percentage"),
        )),
    }
}

#[async_trait]
impl Strategy for PodDisruptionBudgetStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<policy::PodDisruptionBudget>(obj)
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
            causes.push((
                "spec".into(),
                format!(
                    "Invalid value: {spec}: minAvailable and maxUnavailable cannot be both set"
                ),
            ));
        }
        validate_int_or_percent(&spec["minAvailable"], "spec.minAvailable", causes);
        validate_int_or_percent(&spec["maxUnavailable"], "spec.maxUnavailable", causes);
        if !spec["selector"].is_null() {
            if let Err(e) = LabelSelector::from_json(&spec["selector"]) {
                causes.push(("spec.selector".into(), format!("Invalid value: {e}")));
            }
        }
        if let Some(p) = spec["unhealthyPodEvictionPolicy"].as_str() {
            if !["IfHealthyBudget", "AlwaysAllow"].contains(&p) {
                causes.push((
                    "spec.unhealthyPodEvictionPolicy".into(),
                    format!("Unsupported value: {p:?}: supported values: \"AlwaysAllow\", \"IfHealthyBudget\""),
                ));
            }
        }
        let st = &obj["status"];
        for f in [
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ] {
            if st[f].as_i64().is_some_and(|v| v < 0) {
                causes.push((
                    format!("status.{f}"),
                    format!(
                        "Invalid value: {}: must be greater than or equal to 0",
                        st[f]
                    ),
                ));
            }
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Min Available", "", 0),
            ("Max Unavailable", "", 0),
            ("Allowed Disruptions", "integer", 0),
            AGE,
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, age) = name_and_age(o, now);
        let shown = |v: &Value| match v {
            Value::Null => "N/A".to_string(),
            Value::String(x) => x.clone(),
            other => other.to_string(),
        };
        vec![
            name,
            json!(shown(&o["spec"]["minAvailable"])),
            json!(shown(&o["spec"]["maxUnavailable"])),
            json!(o["status"]["disruptionsAllowed"].as_i64().unwrap_or(0)),
            age,
        ]
    }
}

/// The budgets of `ns` whose selector matches `pod` (a null selector matches nothing).
fn budgets_for(
    pod: &Value,
    pdbs: Vec<(Value, daas_store::KeyValue)>,
) -> Vec<(Value, daas_store::KeyValue)> {
    pdbs.into_iter()
        .filter(|(pdb, _)| {
            let sel = &pdb["spec"]["selector"];
            !sel.is_null() && LabelSelector::from_json(sel).is_ok_and(|s| s.matches_object(pod))
        })
        .collect()
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn too_many_requests(cause: String) -> ApiError {
    ApiError::new(429, "TooManyRequests", EVICTION_REFUSED).with_details(json!({
        "causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": cause}]
    }))
}

/// The `DisruptionAllowed` condition for `allowed` disruptions (upstream
/// `UpdateDisruptionAllowedCondition`), keeping the transition time when the status holds.
pub fn set_disruption_condition(status: &mut Value, allowed: bool, now: &str) {
    let (st, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    match conds.iter_mut().find(|c| c["type"] == DISRUPTION_ALLOWED) {
        Some(c) => {
            if c["status"] != st {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(st);
            c["reason"] = json!(reason);
            c["message"] = json!("");
            c["observedGeneration"] = status["observedGeneration"].clone();
        }
        None => conds.push(
            json!({"type": DISRUPTION_ALLOWED, "status": st, "reason": reason,
            "message": "", "lastTransitionTime": now,
            "observedGeneration": status["observedGeneration"]}),
        ),
    }
    status["conditions"] = json!(conds);
}

/// Is the request a dry run (`dryRun=All`, in the query or the Eviction's delete options)?
fn dry_run(q: &HashMap<String, String>, opts: &Value) -> bool {
    q.get("dryRun").is_some_and(|d| d == "All")
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"))
}

/// `POST pods/{name}/eviction`: delete the pod unless that would violate its disruption budget
/// (429), charging the eviction to the budget (`disruptionsAllowed` - 1, `disruptedPods`).
pub async fn evict(
    ctx: &Ctx,
    attrs: crate::admission::Attrs<'_>,
    t: &ResourceTarget,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let eviction = crate::request::decode_body(headers, body)?;
    if eviction["kind"].as_str().is_some_and(|k| k != "Eviction") {
        return Err(ApiError::bad_request(
            "the body of a pods/eviction request must be an Eviction",
        ));
    }
    if eviction["metadata"]["name"]
        .as_str()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let ns = t.namespace.clone().unwrap_or_default();
    let opts = eviction["deleteOptions"].clone();
    let opts = if opts.is_null() { json!({}) } else { opts };
    let dry = dry_run(q, &opts);
    let pod_target = ResourceTarget {
        def: t.def,
        namespace: t.namespace.clone(),
        name: Some(name.to_string()),
        sub: None,
    };
    for _ in 0..UPDATE_RETRIES {
        let (pod, _) = get_object(ctx, t.def, Some(&ns), name).await?;
        // Pods that are done, not yet running or already going need no budget.
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        let ignore = matches!(phase, "Succeeded" | "Failed" | "Pending" | "")
            || !pod["metadata"]["deletionTimestamp"].is_null();
        if !ignore {
            let def = &resources::POD_DISRUPTION_BUDGETS;
            let res = ctx.store.list(&def.prefix(Some(&ns))).await?;
            let mut all = Vec::new();
            for kv in res.items {
                all.push((decode_kv(&kv)?, kv));
            }
            let mut pdbs = budgets_for(&pod, all);
            if pdbs.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some((pdb, kv)) = pdbs.pop() {
                match charge(ctx, &pdb, kv, &pod, dry).await {
                    Ok(()) => {}
                    Err(e) if e.code == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        if !dry {
            match crate::handlers::delete(ctx, attrs, &pod_target, name, &opts, q).await {
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(json_response(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ));
    }
    Err(ApiError::conflict(t.def, name))
}

/// Upstream `checkAndDecrement`, written with compare-and-swap on the budget's revision.
async fn charge(
    ctx: &Ctx,
    pdb: &Value,
    kv: daas_store::KeyValue,
    pod: &Value,
    dry: bool,
) -> ApiResult<()> {
    let pdb_name = s(&pdb["metadata"]["name"]);
    let st = &pdb["status"];
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
    if st["observedGeneration"].as_i64().unwrap_or(0) < generation {
        return Err(too_many_requests(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        )));
    }
    let allowed = st["disruptionsAllowed"].as_i64().unwrap_or(0);
    let (current, desired) = (
        st["currentHealthy"].as_i64().unwrap_or(0),
        st["desiredHealthy"].as_i64().unwrap_or(0),
    );
    // An unready pod may go while the budget is met without it (IfHealthyBudget), or always
    // (AlwaysAllow); it uses up no disruption.
    if !pod_ready(pod) {
        let policy = pdb["spec"]["unhealthyPodEvictionPolicy"]
            .as_str()
            .unwrap_or("IfHealthyBudget");
        if policy == "AlwaysAllow" || current >= desired {
            return Ok(());
        }
    }
    if allowed < 0 {
        return Err(ApiError::forbidden("pdb disruptions allowed is negative"));
    }
    if allowed == 0 {
        return Err(too_many_requests(format!(
            "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
        )));
    }
    if dry {
        return Ok(());
    }
    let mut n = pdb.clone();
    n["status"]["disruptionsAllowed"] = json!(allowed - 1);
    let pod_name = s(&pod["metadata"]["name"]);
    let now = crate::handlers::now_rfc3339();
    if !n["status"]["disruptedPods"].is_object() {
        n["status"]["disruptedPods"] = json!({});
    }
    n["status"]["disruptedPods"][pod_name] = json!(now);
    if allowed - 1 == 0 {
        set_disruption_condition(&mut n["status"], false, &now);
    }
    match ctx
        .store
        .update(&kv.key, &encode(&n)?, kv.mod_revision)
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(&RESOURCE, &pdb_name)),
        Err(StoreError::NotFound(_)) => Err(ApiError::conflict(&RESOURCE, &pdb_name)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: Value) -> Vec<String> {
        let mut causes = Vec::new();
        PodDisruptionBudgetStrategy.validate(&json!({"spec": spec}), &mut causes);
        causes.iter().map(|c| format!("{}: {}", c.0, c.1)).collect()
    }

    #[test]
    fn min_available_xor_max_unavailable() {
        assert!(check(json!({"minAvailable": 1, "selector": {}})).is_empty());
        assert!(check(json!({"maxUnavailable": "25%"})).is_empty());
        let errs = check(json!({"minAvailable": 1, "maxUnavailable": 1}));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].ends_with("minAvailable and maxUnavailable cannot be both set"),
            "{errs:?}"
        );
        assert_eq!(
            check(json!({"minAvailable": -1})),
            vec!["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            check(json!({"maxUnavailable": "120%"})),
            vec!["spec.maxUnavailable: Invalid value: \"120%\": must not be greater than 100%"]
        );
        assert!(check(json!({"maxUnavailable": "x%"}))[0].contains("a valid percent string"));
    }

    #[test]
    fn condition_keeps_transition_time_while_unchanged() {
        let mut st = json!({"observedGeneration": 1});
        set_disruption_condition(&mut st, true, "t1");
        set_disruption_condition(&mut st, true, "t2");
        assert_eq!(st["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(st["conditions"][0]["reason"], "SufficientPods");
        set_disruption_condition(&mut st, false, "t3");
        assert_eq!(st["conditions"][0]["lastTransitionTime"], "t3");
        assert_eq!(st["conditions"][0]["status"], "False");
        assert_eq!(st["conditions"].as_array().unwrap().len(), 1);
    }
}
