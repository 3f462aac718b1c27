//! RuntimeClasses (pkg/registry/node/runtimeclass; pkg/apis/node/validation).

use chrono::{DateTime, Utc};
use daas_apimachinery::selector::{validate_label_key, validate_label_value, SelectorError};
use k8s_openapi::api::node::v1 as node;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, name_errors, Cause, Column, NameRule, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{get_object, Ctx};
use crate::resources::ResourceDef;
use crate::table::s;

#[derive(Debug)]
pub struct RuntimeClassStrategy;

/// The REST shape of RuntimeClasses, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "node.k8s.io",
    version: "v1",
    kind: "RuntimeClass",
    list_kind: "RuntimeClassList",
    plural: "runtimeclasses",
    singular: "runtimeclass",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &RuntimeClassStrategy,
};

/// The reason of a label key/value error without the selector's "invalid label key ..." prefix.
pub(crate) fn label_reason(e: &SelectorError) -> &str {
    let m = e.message();
    m.split_once("\": ").map(|(_, why)| why).unwrap_or(m)
}

/// Upstream `ValidateLabels` of a map at `path` (keys as qualified names, values as label values).
pub(crate) fn validate_label_map(map: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(m) = map.as_object() else { return };
    for (k, v) in m {
        if let Err(e) = validate_label_key(k) {
            causes.push((
                path.into(),
                format!("Invalid value: {k:?}: {}", label_reason(&e)),
            ));
        }
        let v = s(v);
        if let Err(e) = validate_label_value(&v) {
            causes.push((
                path.into(),
                format!("Invalid value: {v:?}: {}", label_reason(&e)),
            ));
        }
    }
}

/// Upstream `ValidateTolerations` (operators, effects, and the rules tying key, operator, value).
pub(crate) fn validate_tolerations(tols: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(list) = tols.as_array() else { return };
    for (i, t) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = t["key"].as_str().unwrap_or("");
        let op = t["operator"].as_str().unwrap_or("");
        let value = t["value"].as_str().unwrap_or("");
        if !key.is_empty() {
            if let Err(e) = validate_label_key(key) {
                causes.push((
                    format!("{p}.key"),
                    format!("Invalid value: {key:?}: {}", label_reason(&e)),
                ));
            }
        } else if op != "Exists" {
            causes.push((
                format!("{p}.operator"),
                format!("Invalid value: {op:?}: operator must be Exists when `key` is empty, which means \"match all values and all keys\""),
            ));
        }
        if !t["tolerationSeconds"].is_null() && t["effect"].as_str() != Some("NoExecute") {
            causes.push((
                format!("{p}.effect"),
                format!("Invalid value: {:?}: effect must be 'NoExecute' when `tolerationSeconds` is set", s(&t["effect"])),
            ));
        }
        match op {
            "" | "Equal" => {
                if let Err(e) = validate_label_value(value) {
                    causes.push((
                        format!("{p}.operator"),
                        format!("Invalid value: {value:?}: {}", label_reason(&e)),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    causes.push((
                        format!("{p}.operator"),
                        format!("Invalid value: {value:?}: value must be empty when `operator` is 'Exists'"),
                    ));
                }
            }
            other => causes.push((
                format!("{p}.operator"),
                format!("Unsupported value: {other:?}: supported values: \"Equal\", \"Exists\""),
            )),
        }
        if let Some(effect) = t["effect"].as_str().filter(|e| !e.is_empty()) {
            if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
                causes.push((
                    format!("{p}.effect"),
                    format!("Unsupported value: {effect:?}: supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""),
                ));
            }
        }
    }
}

impl Strategy for RuntimeClassStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<node::RuntimeClass>(obj)
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let handler = obj["handler"].as_str().unwrap_or("");
        for msg in name_errors(NameRule::Label, handler) {
            causes.push((
                "handler".into(),
                format!("Invalid value: {handler:?}: {msg}"),
            ));
        }
        // Overhead is checked as the limits of a container's resource requirements (upstream
        // reuses that validation, paths included).
        if let Some(fixed) = obj["overhead"]["podFixed"].as_object() {
            for (k, q) in fixed {
                let q = s(q);
                if q.trim_start().starts_with('-') {
                    causes.push((
                        format!("overhead.limits[{k}]"),
                        format!("Invalid value: {q:?}: must be greater than or equal to 0"),
                    ));
                }
            }
        }
        let sched = &obj["scheduling"];
        validate_label_map(&sched["nodeSelector"], "scheduling.nodeSelector", causes);
        validate_tolerations(&sched["tolerations"], "scheduling.tolerations", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["handler"] != new["handler"] {
            causes.push((
                "handler".into(),
                format!(
                    "Invalid value: {:?}: field is immutable",
                    s(&new["handler"])
                ),
            ));
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Handler", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![name, json!(s(&o["handler"])), created]
    }
}

/// A pod create refused by the RuntimeClass admission plugin.
fn pod_forbidden(pod: &Value, why: &str) -> ApiError {
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    ApiError::forbidden(format!("pods \"{name}\" is forbidden: {why}"))
        .with_details(json!({"name": name, "group": "", "kind": "pods"}))
}

/// Upstream's `RuntimeClass` admission plugin, run on pod creates: the named RuntimeClass must
/// exist; its overhead becomes the pod's (a different overhead set by the client is refused, as is
/// an overhead without a RuntimeClass defining one); its node selector is merged into the pod's
/// (conflicting values are refused) and its tolerations are added.
pub async fn admit_pod(ctx: &Ctx, pod: &mut Value) -> ApiResult<()> {
    let rc_name = pod["spec"]["runtimeClassName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let rc = match rc_name {
        None => None,
        Some(n) => match get_object(ctx, &RESOURCE, None, &n).await {
            Ok((rc, _)) => Some(rc),
            Err(e) if e.code == 404 => {
                return Err(pod_forbidden(
                    pod,
                    &format!("pod rejected: RuntimeClass {n:?} not found"),
                ))
            }
            Err(e) => return Err(e),
        },
    };
    let fixed = rc
        .as_ref()
        .map(|rc| rc["overhead"]["podFixed"].clone())
        .filter(|f| !f.is_null());
    match fixed {
        Some(fixed) => {
            let pod_overhead = &pod["spec"]["overhead"];
            let same = |a: &Value, b: &Value| {
                let strings = |v: &Value| -> std::collections::BTreeMap<String, String> {
                    v.as_object()
                        .map(|m| m.iter().map(|(k, q)| (k.clone(), s(q))).collect())
                        .unwrap_or_default()
                };
                strings(a) == strings(b)
            };
            if !pod_overhead.is_null() && !same(pod_overhead, &fixed) {
                return Err(pod_forbidden(
                    pod,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
                ));
            }
            pod["spec"]["overhead"] = fixed;
        }
        None if !pod["spec"]["overhead"].is_null() => return Err(pod_forbidden(
            pod,
            "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
        )),
        None => {}
    }
    let Some(sched) = rc.as_ref().map(|rc| &rc["scheduling"]) else {
        return Ok(());
    };
    if let Some(sel) = sched["nodeSelector"].as_object() {
        for (k, v) in sel {
            let want = s(v);
            match pod["spec"]["nodeSelector"].get(k).map(s) {
                Some(have) if have != want => {
                    return Err(pod_forbidden(
                        pod,
                        &format!("conflict: runtimeClass.scheduling.nodeSelector[{k}] = {want}; pod.spec.nodeSelector[{k}] = {have}"),
                    ))
                }
                Some(_) => {}
                None => {
                    if !pod["spec"]["nodeSelector"].is_object() {
                        pod["spec"]["nodeSelector"] = json!({});
                    }
                    pod["spec"]["nodeSelector"][k] = json!(want);
                }
            }
        }
    }
    if let Some(tols) = sched["tolerations"].as_array() {
        let mut merged = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for t in tols {
            if !merged.contains(t) {
                merged.push(t.clone());
            }
        }
        if !merged.is_empty() {
            pod["spec"]["tolerations"] = Value::Array(merged);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes_of(obj: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        RuntimeClassStrategy.validate(obj, &mut c);
        c
    }

    #[test]
    fn handler_is_a_dns_label() {
        assert!(causes_of(&json!({"handler":"runc"})).is_empty());
        let c = causes_of(&json!({"handler":"Run.C"}));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "handler");
        assert!(c[0]
            .1
            .starts_with("Invalid value: \"Run.C\": a lowercase RFC 1123 label"));
        assert_eq!(causes_of(&json!({}))[0].0, "handler");
    }

    #[test]
    fn overhead_and_scheduling_are_checked() {
        let c = causes_of(
            &json!({"handler":"runc","overhead":{"podFixed":{"cpu":"-1"}},
            "scheduling":{"nodeSelector":{"bad key!":"v"},
                          "tolerations":[{"key":"k","operator":"Exists","value":"x"},{"operator":"Equal"}]}}),
        );
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "overhead.limits[cpu]",
                "scheduling.nodeSelector",
                "scheduling.tolerations[0].operator",
                "scheduling.tolerations[1].operator"
            ]
        );
    }

    #[test]
    fn handler_is_immutable() {
        let mut c = Vec::new();
        RuntimeClassStrategy.validate_update(
            &json!({"handler":"a"}),
            &json!({"handler":"b"}),
            &mut c,
        );
        assert_eq!(
            c,
            vec![(
                "handler".to_string(),
                "Invalid value: \"b\": field is immutable".to_string()
            )]
        );
    }
}
