//! ResourceQuotas (pkg/registry/core/resourcequota; pkg/apis/core/validation
//! `ValidateResourceQuota`). Their usage is computed by the quota controller (daas-controllers
//! `quota`) and enforced by the quota admission ([`crate::quota::admit`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_apimachinery::quantity::value_milli;
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::quota::SCOPES;
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::s;

#[derive(Debug)]
pub struct ResourceQuotaStrategy;

/// The REST shape of ResourceQuotas, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "ResourceQuota",
    list_kind: "ResourceQuotaList",
    plural: "resourcequotas",
    singular: "resourcequota",
    namespaced: true,
    short_names: &["quota"],
    categories: &[],
    subresources: &[Status],
    has_spec: true,
    strategy: &ResourceQuotaStrategy,
};

/// Upstream `IsStandardQuotaResourceName` (names without a '/').
fn is_standard_quota_resource(name: &str) -> bool {
    [
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    ]
    .contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// Upstream `isResourceQuotaScopeValidForResource`: which resources a scope can constrain.
fn scope_valid_for(scope: &str, resource: &str) -> bool {
    let pod_count = ["pods", "count/pods"].contains(&resource);
    let pod_compute = [
        "cpu",
        "memory",
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ]
    .contains(&resource);
    match scope {
        "BestEffort" => pod_count,
        "Terminating" | "NotTerminating" | "NotBestEffort" | "PriorityClass" => {
            pod_count || pod_compute
        }
        "CrossNamespacePodAffinity" => pod_count,
        _ => false,
    }
}

fn validate_hard(map: &Value, path: &str, causes: &mut Vec<Cause>) {
    for (k, q) in map.as_object().into_iter().flatten() {
        let p = format!("{path}[{k}]");
        if !k.contains('/') && !is_standard_quota_resource(k) {
            causes.push((
                p.clone(),
                format!("Invalid value: {k:?}: must be a standard resource for quota"),
            ));
        }
        match value_milli(q) {
            None => causes.push((
                p,
                format!(
                    "Invalid value: {:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    s(q)
                ),
            )),
            Some(v) if v < 0 => causes.push((
                p,
                format!("Invalid value: {:?}: must be greater than or equal to 0", s(q)),
            )),
            Some(_) => {}
        }
    }
}

/// The scopes of `spec.scopes` and `spec.scopeSelector`, with their field paths.
fn scopes_of(obj: &Value, causes: &mut Vec<Cause>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let supported = SCOPES
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    for (i, sc) in obj["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let sc = s(sc);
        let p = format!("spec.scopes[{i}]");
        if !SCOPES.contains(&sc.as_str()) {
            causes.push((
                p,
                format!("Unsupported value: {sc:?}: supported values: {supported}"),
            ));
        } else {
            out.push((sc, p));
        }
    }
    for (i, e) in obj["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("spec.scopeSelector.matchExpressions[{i}]");
        let sc = s(&e["scopeName"]);
        let op = s(&e["operator"]);
        if !SCOPES.contains(&sc.as_str()) {
            causes.push((
                format!("{p}.scopeName"),
                format!("Unsupported value: {sc:?}: supported values: {supported}"),
            ));
            continue;
        }
        let values = e["values"].as_array().map(Vec::len).unwrap_or(0);
        match op.as_str() {
            "In" | "NotIn" if sc != "PriorityClass" => causes.push((
                format!("{p}.operator"),
                format!("Invalid value: {op:?}: must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"),
            )),
            "In" | "NotIn" if values == 0 => causes.push((
                format!("{p}.values"),
                "Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector".into(),
            )),
            "Exists" | "DoesNotExist" if values != 0 => causes.push((
                format!("{p}.values"),
                "Invalid value: must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector".into(),
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => out.push((sc, p)),
            _ => causes.push((
                format!("{p}.operator"),
                format!("Unsupported value: {op:?}: supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\""),
            )),
        }
    }
    out
}

#[async_trait]
impl Strategy for ResourceQuotaStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::ResourceQuota>(obj)
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_hard(&obj["spec"]["hard"], "spec.hard", causes);
        validate_hard(&obj["status"]["hard"], "status.hard", causes);
        validate_hard(&obj["status"]["used"], "status.used", causes);
        let scopes = scopes_of(obj, causes);
        let names: Vec<&str> = scopes.iter().map(|(s, _)| s.as_str()).collect();
        for (a, b) in [
            ("Terminating", "NotTerminating"),
            ("BestEffort", "NotBestEffort"),
        ] {
            if names.contains(&a) && names.contains(&b) {
                causes.push((
                    "spec.scopes".into(),
                    format!(
                        "Invalid value: {}: conflicting scopes",
                        json!(obj["spec"]["scopes"])
                    ),
                ));
            }
        }
        for (scope, _) in &scopes {
            for k in obj["spec"]["hard"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if !scope_valid_for(scope, k) {
                    causes.push((
                        "spec.scopes".into(),
                        format!(
                            "Invalid value: {}: unsupported scope applied to resource",
                            json!(obj["spec"]["scopes"])
                        ),
                    ));
                    return;
                }
            }
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, AGE, ("Request", "", 0), ("Limit", "", 0)]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, age) = name_and_age(o, now);
        let (mut req, mut lim) = (Vec::new(), Vec::new());
        for (k, h) in o["status"]["hard"].as_object().into_iter().flatten() {
            let used = o["status"]["used"][k].as_str().unwrap_or("0");
            let cell = format!("{k}: {used}/{}", s(h));
            if k.starts_with("limits.") {
                lim.push(cell);
            } else {
                req.push(cell);
            }
        }
        vec![name, age, json!(req.join(", ")), json!(lim.join(", "))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(obj: Value) -> Vec<String> {
        let mut causes = Vec::new();
        ResourceQuotaStrategy.validate(&obj, &mut causes);
        causes.iter().map(|c| format!("{}: {}", c.0, c.1)).collect()
    }

    #[test]
    fn hard_names_and_values() {
        assert!(
            check(json!({"spec": {"hard": {"pods": "10", "requests.cpu": "1",
            "count/replicasets.apps": "5", "services.nodeports": "0"}}}))
            .is_empty()
        );
        let errs = check(json!({"spec": {"hard": {"bogus": "1", "pods": "-1", "cpu": "x"}}}));
        assert_eq!(
            errs,
            vec![
                "spec.hard[bogus]: Invalid value: \"bogus\": must be a standard resource for quota",
                "spec.hard[cpu]: Invalid value: \"x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn scopes_must_fit_resources() {
        assert!(
            check(json!({"spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort"]}})).is_empty()
        );
        let errs = check(json!({"spec": {"hard": {"cpu": "1"}, "scopes": ["BestEffort"]}}));
        assert_eq!(
            errs,
            vec!["spec.scopes: Invalid value: [\"BestEffort\"]: unsupported scope applied to resource"]
        );
        let errs = check(
            json!({"spec": {"hard": {"pods": "1"}, "scopes": ["Terminating", "NotTerminating"]}}),
        );
        assert!(errs[0].ends_with("conflicting scopes"), "{errs:?}");
        let errs = check(json!({"spec": {"hard": {"pods": "1"}, "scopes": ["Forever"]}}));
        assert!(errs[0].starts_with("spec.scopes[0]: Unsupported value: \"Forever\""));
    }

    #[test]
    fn table_splits_requests_and_limits() {
        let o = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"pods": "2", "limits.cpu": "1"}, "used": {"pods": "1"}}});
        let cells = ResourceQuotaStrategy.cells(&o, Utc::now());
        assert_eq!(cells[2], json!("pods: 1/2"));
        assert_eq!(cells[3], json!("limits.cpu: 0/1"));
    }
}
