//! HorizontalPodAutoscalers (pkg/registry/autoscaling/horizontalpodautoscaler;
//! pkg/apis/autoscaling/validation; defaults of pkg/apis/autoscaling/v2 and v1). Stored in the
//! autoscaling/v2 form; autoscaling/v1 is served from the same store, converted as
//! pkg/apis/autoscaling/v1/conversion.go does: `targetCPUUtilizationPercentage` is the cpu
//! Utilization metric, and what v1 cannot say (other metrics, current metrics, conditions,
//! behavior) rides in the `autoscaling.alpha.kubernetes.io/*` annotations of the v1 form.
//! Status is written by the HPA controller (daas-controllers `hpa`).

use chrono::{DateTime, Utc};
use daas_apimachinery::quantity;
use k8s_openapi::api::autoscaling::{v1 as asv1, v2 as asv2};
use serde_json::{json, Map, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::s;

/// v1 annotation with the v2 metrics other than the cpu utilization one (v1 MetricSpec JSON).
pub const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// v1 annotation with the current metrics (v1 MetricStatus JSON).
pub const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// v1 annotation with the status conditions.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// v1 annotation with the scaling behavior (upstream marshals its internal Go type: field names).
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
const ROUND_TRIP: [&str; 4] = [
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
];
/// The cpu utilization target of an HPA that names no metric (upstream `DefaultCPUUtilization`).
pub const DEFAULT_CPU_UTILIZATION: i64 = 80;
/// Upstream `MaxStabilizationWindowSeconds` and `MaxPeriodSeconds`.
const MAX_STABILIZATION_WINDOW: i64 = 3600;
const MAX_PERIOD: i64 = 1800;

#[derive(Debug)]
pub struct HpaStrategy;

#[derive(Debug)]
pub struct HpaV1Strategy;

/// autoscaling/v2, the storage version.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "autoscaling",
    version: "v2",
    kind: "HorizontalPodAutoscaler",
    list_kind: "HorizontalPodAutoscalerList",
    plural: "horizontalpodautoscalers",
    singular: "horizontalpodautoscaler",
    namespaced: true,
    short_names: &["hpa"],
    categories: &["all"],
    subresources: &[Status],
    has_spec: true,
    strategy: &HpaStrategy,
};

/// autoscaling/v1, served from the v2 store.
pub const RESOURCE_V1: ResourceDef = ResourceDef {
    version: "v1",
    strategy: &HpaV1Strategy,
    ..RESOURCE
};

// ---------------------------------------------------------------- defaults

/// Upstream `GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules`: the given rules with their
/// unset fields taken from the defaults.
fn default_rules(rules: &Value, up: bool) -> Value {
    let mut out = if up {
        json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    } else {
        json!({"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    };
    if let Some(m) = rules.as_object() {
        for (k, v) in m {
            if !v.is_null() {
                out[k] = v.clone();
            }
        }
    }
    out
}

/// The behavior with defaults filled in (upstream `SetDefaults_HorizontalPodAutoscalerBehavior`);
/// `None` for none given, which keeps the controller's plain normalization.
pub fn defaulted_behavior(behavior: &Value) -> Option<Value> {
    if !behavior.is_object() {
        return None;
    }
    Some(json!({
        "scaleUp": default_rules(&behavior["scaleUp"], true),
        "scaleDown": default_rules(&behavior["scaleDown"], false),
    }))
}

fn cpu_utilization_metric(target: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": target}}})
}

/// Upstream `SetDefaults_HorizontalPodAutoscaler` (v2).
fn defaults_v2(obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    if spec["minReplicas"].is_null() {
        spec["minReplicas"] = json!(1);
    }
    if spec["metrics"].as_array().is_none_or(|m| m.is_empty()) {
        spec["metrics"] = json!([cpu_utilization_metric(DEFAULT_CPU_UTILIZATION)]);
    }
    if let Some(b) = defaulted_behavior(&spec["behavior"]) {
        spec["behavior"] = b;
    }
}

// ---------------------------------------------------------------- validation

fn field_invalid(path: &str, v: &Value, msg: &str, causes: &mut Vec<Cause>) {
    causes.push((path.into(), format!("Invalid value: {v}: {msg}")));
}

fn required(path: &str, msg: &str, causes: &mut Vec<Cause>) {
    let m = if msg.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {msg}")
    };
    causes.push((path.into(), m));
}

fn not_supported(path: &str, v: &Value, supported: &[&str], causes: &mut Vec<Cause>) {
    let list: Vec<String> = supported.iter().map(|x| format!("{x:?}")).collect();
    causes.push((
        path.into(),
        format!(
            "Unsupported value: {v}: supported values: {}",
            list.join(", ")
        ),
    ));
}

/// Upstream `ValidateCrossVersionObjectReference`.
fn validate_reference(r: &Value, path: &str, causes: &mut Vec<Cause>) {
    for f in ["kind", "name"] {
        let v = s(&r[f]);
        if v.is_empty() {
            required(&format!("{path}.{f}"), "", causes);
        } else {
            for msg in super::rbac::path_segment_errors(&v) {
                field_invalid(&format!("{path}.{f}"), &json!(v), &msg, causes);
            }
        }
    }
}

fn positive_quantity(v: &Value, path: &str, causes: &mut Vec<Cause>) {
    if v.is_null() {
        return;
    }
    match quantity::value_milli(v) {
        Some(m) if m > 0 => {}
        Some(_) => field_invalid(path, v, "must be positive", causes),
        None => field_invalid(path, v, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'", causes),
    }
}

/// Upstream `validateMetricTarget`.
fn validate_target(t: &Value, path: &str, causes: &mut Vec<Cause>) {
    let ty = s(&t["type"]);
    if ty.is_empty() {
        required(
            &format!("{path}.type"),
            "must specify a metric target type",
            causes,
        );
    }
    if !["Utilization", "Value", "AverageValue"].contains(&ty.as_str()) {
        field_invalid(
            &format!("{path}.type"),
            &json!(ty),
            "must be either Utilization, Value, or AverageValue",
            causes,
        );
    }
    positive_quantity(&t["value"], &format!("{path}.value"), causes);
    positive_quantity(&t["averageValue"], &format!("{path}.averageValue"), causes);
    if t["averageUtilization"].as_i64().is_some_and(|u| u < 1) {
        field_invalid(
            &format!("{path}.averageUtilization"),
            &t["averageUtilization"],
            "must be greater than 0",
            causes,
        );
    }
}

fn validate_identifier(m: &Value, path: &str, causes: &mut Vec<Cause>) {
    let name = s(&m["name"]);
    if name.is_empty() {
        required(
            &format!("{path}.name"),
            "must specify a metric name",
            causes,
        );
    } else {
        for msg in super::rbac::path_segment_errors(&name) {
            field_invalid(&format!("{path}.name"), &json!(name), &msg, causes);
        }
    }
    if !m["selector"].is_null() {
        if let Err(e) = daas_apimachinery::selector::LabelSelector::from_json(&m["selector"]) {
            causes.push((format!("{path}.selector"), format!("Invalid value: {e}")));
        }
    }
}

fn validate_resource_name(src: &Value, path: &str, causes: &mut Vec<Cause>) {
    let name = s(&src["name"]);
    if name.is_empty() {
        required(
            &format!("{path}.name"),
            "must specify a resource name",
            causes,
        );
    } else if !super::podspec::is_standard_container_resource(&name) && !name.contains('/') {
        field_invalid(
            &format!("{path}.name"),
            &json!(name),
            "must be a standard resource type or fully qualified",
            causes,
        );
    }
}

fn validate_source(kind: &str, src: &Value, path: &str, causes: &mut Vec<Cause>) {
    let t = &src["target"];
    let tp = format!("{path}.target");
    match kind {
        "resource" | "containerResource" => {
            validate_resource_name(src, path, causes);
            if kind == "containerResource" {
                let c = s(&src["container"]);
                if c.is_empty() {
                    required(
                        &format!("{path}.container"),
                        "must specify a container",
                        causes,
                    );
                } else if !super::is_dns_label(&c) {
                    field_invalid(
                        &format!("{path}.container"),
                        &json!(c),
                        super::LABEL_MSG,
                        causes,
                    );
                }
            }
            validate_target(t, &tp, causes);
            if t["averageUtilization"].is_null() && t["averageValue"].is_null() {
                required(
                    &format!("{tp}.averageUtilization"),
                    "must set either a target raw value or a target utilization",
                    causes,
                );
            }
            if !t["averageUtilization"].is_null() && !t["averageValue"].is_null() {
                causes.push((
                    format!("{tp}.averageValue"),
                    "Forbidden: may not set both a target raw value and a target utilization"
                        .into(),
                ));
            }
        }
        "pods" => {
            validate_identifier(&src["metric"], &format!("{path}.metric"), causes);
            validate_target(t, &tp, causes);
            if t["averageValue"].is_null() {
                required(
                    &format!("{tp}.averageValue"),
                    "must specify a positive target averageValue",
                    causes,
                );
            }
        }
        "object" => {
            validate_reference(
                &src["describedObject"],
                &format!("{path}.describedObject"),
                causes,
            );
            validate_identifier(&src["metric"], &format!("{path}.metric"), causes);
            validate_target(t, &tp, causes);
            if t["value"].is_null() && t["averageValue"].is_null() {
                required(
                    &format!("{tp}.averageValue"),
                    "must set either a target value or averageValue",
                    causes,
                );
            }
        }
        _ => {
            validate_identifier(&src["metric"], &format!("{path}.metric"), causes);
            validate_target(t, &tp, causes);
            if t["value"].is_null() && t["averageValue"].is_null() {
                required(
                    &format!("{tp}.averageValue"),
                    "must set either a target value for metric or a per-pod target",
                    causes,
                );
            }
            if !t["value"].is_null() && !t["averageValue"].is_null() {
                causes.push((
                    format!("{tp}.value"),
                    "Forbidden: may not set both a target value for metric and a per-pod target"
                        .into(),
                ));
            }
        }
    }
}

const METRIC_TYPES: [&str; 5] = [
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

/// Upstream `validateMetricSpec`.
fn validate_metric(m: &Value, path: &str, causes: &mut Vec<Cause>) {
    let ty = s(&m["type"]);
    if ty.is_empty() {
        required(
            &format!("{path}.type"),
            "must specify a metric source type",
            causes,
        );
    }
    let expected = match ty.as_str() {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => {
            not_supported(&format!("{path}.type"), &json!(ty), &METRIC_TYPES, causes);
            ""
        }
    };
    let present: Vec<&str> = [
        "object",
        "external",
        "pods",
        "resource",
        "containerResource",
    ]
    .into_iter()
    .filter(|k| m[*k].is_object())
    .collect();
    if let Some(first) = present.first() {
        validate_source(first, &m[*first], &format!("{path}.{first}"), causes);
    }
    if !expected.is_empty() && !m[expected].is_object() {
        required(
            &format!("{path}.{expected}"),
            "must populate information for the given metric source",
            causes,
        );
    }
    if present.len() != 1 {
        for k in present.iter().filter(|k| **k != expected) {
            causes.push((
                format!("{path}.{k}"),
                "Forbidden: must populate the given metric source only".into(),
            ));
        }
    }
}

/// Upstream `validateScalingRules`.
fn validate_rules(r: &Value, path: &str, causes: &mut Vec<Cause>) {
    if r.is_null() {
        return;
    }
    let w = &r["stabilizationWindowSeconds"];
    if w.as_i64().is_some_and(|w| w < 0) {
        field_invalid(
            &format!("{path}.stabilizationWindowSeconds"),
            w,
            "must be greater than or equal to zero",
            causes,
        );
    }
    if w.as_i64().is_some_and(|w| w > MAX_STABILIZATION_WINDOW) {
        field_invalid(
            &format!("{path}.stabilizationWindowSeconds"),
            w,
            &format!("must be less than or equal to {MAX_STABILIZATION_WINDOW}"),
            causes,
        );
    }
    if let Some(p) = r["selectPolicy"].as_str() {
        if !["Disabled", "Max", "Min"].contains(&p) {
            not_supported(
                &format!("{path}.selectPolicy"),
                &json!(p),
                &["Disabled", "Max", "Min"],
                causes,
            );
        }
    }
    let policies = r["policies"].as_array().cloned().unwrap_or_default();
    if policies.is_empty() {
        required(
            &format!("{path}.policies"),
            "must specify at least one Policy",
            causes,
        );
    }
    for (i, p) in policies.iter().enumerate() {
        let pp = format!("{path}.policies[{i}]");
        let ty = s(&p["type"]);
        if ty != "Pods" && ty != "Percent" {
            not_supported(
                &format!("{pp}.type"),
                &json!(ty),
                &["Percent", "Pods"],
                causes,
            );
        }
        let value = p["value"].as_i64().unwrap_or(0);
        if value <= 0 {
            field_invalid(
                &format!("{pp}.value"),
                &json!(value),
                "must be greater than zero",
                causes,
            );
        }
        let period = p["periodSeconds"].as_i64().unwrap_or(0);
        if period <= 0 {
            field_invalid(
                &format!("{pp}.periodSeconds"),
                &json!(period),
                "must be greater than zero",
                causes,
            );
        }
        if period > MAX_PERIOD {
            field_invalid(
                &format!("{pp}.periodSeconds"),
                &json!(period),
                &format!("must be less than or equal to {MAX_PERIOD}"),
                causes,
            );
        }
    }
}

/// Upstream `ValidateHorizontalPodAutoscalerSpec` (scale to zero is behind the alpha
/// `HPAScaleToZero` gate, which this server does not enable: minReplicas must be at least 1).
fn validate_spec(spec: &Value, causes: &mut Vec<Cause>) {
    let min = spec["minReplicas"].as_i64();
    if let Some(m) = min.filter(|m| *m < 1) {
        field_invalid(
            "spec.minReplicas",
            &json!(m),
            "must be greater than or equal to 1",
            causes,
        );
    }
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    if max < 1 {
        field_invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than 0",
            causes,
        );
    }
    if min.is_some_and(|m| max < m) {
        field_invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than or equal to `minReplicas`",
            causes,
        );
    }
    let before = causes.len();
    validate_reference(&spec["scaleTargetRef"], "spec.scaleTargetRef", causes);
    if causes.len() > before {
        return;
    }
    for (i, m) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
        validate_metric(m, &format!("spec.metrics[{i}]"), causes);
    }
    if causes.len() > before {
        return;
    }
    validate_rules(
        &spec["behavior"]["scaleUp"],
        "spec.behavior.scaleUp",
        causes,
    );
    validate_rules(
        &spec["behavior"]["scaleDown"],
        "spec.behavior.scaleDown",
        causes,
    );
}

/// Upstream `validateHorizontalPodAutoscalerStatus`.
fn validate_status(st: &Value, causes: &mut Vec<Cause>) {
    for f in ["currentReplicas", "desiredReplicas"] {
        if st[f].as_i64().is_some_and(|v| v < 0) {
            field_invalid(
                &format!("status.{f}"),
                &st[f],
                "must be greater than or equal to 0",
                causes,
            );
        }
    }
}

// ---------------------------------------------------------------- table

fn qty(v: &Value) -> String {
    match v {
        Value::String(x) => quantity::canonical(x).unwrap_or_else(|| x.clone()),
        Value::Number(n) => n.to_string(),
        _ => "<unknown>".into(),
    }
}

/// Upstream `formatHPAMetrics`: at most two targets, then "+ N more...".
pub fn format_metrics(specs: &Value, statuses: &Value) -> String {
    let Some(specs) = specs.as_array().filter(|a| !a.is_empty()) else {
        return "<none>".into();
    };
    let status = |i: usize, k: &str| -> Option<&Value> {
        statuses
            .as_array()
            .and_then(|a| a.get(i))
            .map(|st| &st[k])
            .filter(|v| v.is_object())
    };
    let mut list = Vec::new();
    for (i, m) in specs.iter().enumerate() {
        let entry = match s(&m["type"]).as_str() {
            "External" | "Object" => {
                let k = if m["type"] == "External" {
                    "external"
                } else {
                    "object"
                };
                let t = &m[k]["target"];
                if !t["averageValue"].is_null() {
                    let cur = status(i, k)
                        .map(|st| &st["current"]["averageValue"])
                        .filter(|v| !v.is_null())
                        .map(qty)
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{cur}/{} (avg)", qty(&t["averageValue"]))
                } else {
                    let cur = status(i, k)
                        .map(|st| qty(&st["current"]["value"]))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{cur}/{}", qty(&t["value"]))
                }
            }
            "Pods" => {
                let cur = status(i, "pods")
                    .map(|st| qty(&st["current"]["averageValue"]))
                    .unwrap_or_else(|| "<unknown>".into());
                format!("{cur}/{}", qty(&m["pods"]["target"]["averageValue"]))
            }
            ty @ ("Resource" | "ContainerResource") => {
                let k = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let src = &m[k];
                let name = s(&src["name"]);
                if !src["target"]["averageValue"].is_null() {
                    let cur = status(i, k)
                        .map(|st| qty(&st["current"]["averageValue"]))
                        .unwrap_or_else(|| "<unknown>".into());
                    format!("{name}: {cur}/{}", qty(&src["target"]["averageValue"]))
                } else {
                    let cur = status(i, k)
                        .and_then(|st| st["current"]["averageUtilization"].as_i64())
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<unknown>".into());
                    let target = src["target"]["averageUtilization"]
                        .as_i64()
                        .map(|u| format!("{u}%"))
                        .unwrap_or_else(|| "<auto>".into());
                    format!("{name}: {cur}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(entry);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        return format!("{} + {} more...", list.join(", "), count - 2);
    }
    list.join(", ")
}

fn hpa_columns() -> Vec<Column> {
    vec![
        NAME,
        ("Reference", "", 0),
        ("Targets", "", 0),
        ("MinPods", "", 0),
        ("MaxPods", "integer", 0),
        ("Replicas", "integer", 0),
        AGE,
    ]
}

fn hpa_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (name, age) = name_and_age(o, now);
    let r = &o["spec"]["scaleTargetRef"];
    let min = o["spec"]["minReplicas"]
        .as_i64()
        .map(|m| m.to_string())
        .unwrap_or_else(|| "<unset>".into());
    vec![
        name,
        json!(format!("{}/{}", s(&r["kind"]), s(&r["name"]))),
        json!(format_metrics(
            &o["spec"]["metrics"],
            &o["status"]["currentMetrics"]
        )),
        json!(min),
        json!(o["spec"]["maxReplicas"].as_i64().unwrap_or(0)),
        json!(o["status"]["currentReplicas"].as_i64().unwrap_or(0)),
        age,
    ]
}

impl Strategy for HpaStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<asv2::HorizontalPodAutoscaler>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        defaults_v2(obj);
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_spec(&obj["spec"], causes);
        validate_status(&obj["status"], causes);
    }

    fn columns(&self) -> Vec<Column> {
        hpa_columns()
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        hpa_cells(o, now)
    }
}

// ---------------------------------------------------------------- v1 <-> v2

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && !m["resource"]["target"]["averageUtilization"].is_null()
}

fn put(o: &mut Map<String, Value>, k: &str, v: &Value) {
    if !v.is_null() {
        o.insert(k.into(), v.clone());
    }
}

/// A v2 MetricSpec in v1's (v2beta1) shape.
fn metric_spec_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), m["type"].clone());
    if let Some(r) = m["resource"].as_object().map(|_| &m["resource"]) {
        let mut o = Map::new();
        put(&mut o, "name", &r["name"]);
        put(
            &mut o,
            "targetAverageUtilization",
            &r["target"]["averageUtilization"],
        );
        put(&mut o, "targetAverageValue", &r["target"]["averageValue"]);
        out.insert("resource".into(), Value::Object(o));
    }
    if let Some(r) = m["containerResource"]
        .as_object()
        .map(|_| &m["containerResource"])
    {
        let mut o = Map::new();
        put(&mut o, "name", &r["name"]);
        put(
            &mut o,
            "targetAverageUtilization",
            &r["target"]["averageUtilization"],
        );
        put(&mut o, "targetAverageValue", &r["target"]["averageValue"]);
        put(&mut o, "container", &r["container"]);
        out.insert("containerResource".into(), Value::Object(o));
    }
    if let Some(p) = m["pods"].as_object().map(|_| &m["pods"]) {
        let mut o = Map::new();
        put(&mut o, "metricName", &p["metric"]["name"]);
        o.insert(
            "targetAverageValue".into(),
            if p["target"]["averageValue"].is_null() {
                json!("0")
            } else {
                p["target"]["averageValue"].clone()
            },
        );
        put(&mut o, "selector", &p["metric"]["selector"]);
        out.insert("pods".into(), Value::Object(o));
    }
    if let Some(p) = m["object"].as_object().map(|_| &m["object"]) {
        let mut o = Map::new();
        put(&mut o, "target", &p["describedObject"]);
        put(&mut o, "metricName", &p["metric"]["name"]);
        o.insert(
            "targetValue".into(),
            if p["target"]["value"].is_null() {
                json!("0")
            } else {
                p["target"]["value"].clone()
            },
        );
        put(&mut o, "selector", &p["metric"]["selector"]);
        put(&mut o, "averageValue", &p["target"]["averageValue"]);
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(p) = m["external"].as_object().map(|_| &m["external"]) {
        let mut o = Map::new();
        put(&mut o, "metricName", &p["metric"]["name"]);
        put(&mut o, "metricSelector", &p["metric"]["selector"]);
        put(&mut o, "targetValue", &p["target"]["value"]);
        put(&mut o, "targetAverageValue", &p["target"]["averageValue"]);
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

fn identifier(name: &Value, selector: &Value) -> Value {
    let mut o = Map::new();
    put(&mut o, "name", name);
    put(&mut o, "selector", selector);
    Value::Object(o)
}

fn target(ty: &str, value: &Value, avg: &Value, util: &Value) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(ty));
    put(&mut o, "value", value);
    put(&mut o, "averageValue", avg);
    put(&mut o, "averageUtilization", util);
    Value::Object(o)
}

/// A v1 (v2beta1-shaped) MetricSpec in v2's shape.
fn metric_spec_from_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), m["type"].clone());
    for k in ["resource", "containerResource"] {
        if let Some(r) = m[k].as_object().map(|_| &m[k]) {
            let ty = if r["targetAverageUtilization"].is_null() {
                "AverageValue"
            } else {
                "Utilization"
            };
            let mut o = Map::new();
            put(&mut o, "name", &r["name"]);
            o.insert(
                "target".into(),
                target(
                    ty,
                    &Value::Null,
                    &r["targetAverageValue"],
                    &r["targetAverageUtilization"],
                ),
            );
            put(&mut o, "container", &r["container"]);
            out.insert(k.into(), Value::Object(o));
        }
    }
    if let Some(p) = m["pods"].as_object().map(|_| &m["pods"]) {
        out.insert(
            "pods".into(),
            json!({"metric": identifier(&p["metricName"], &p["selector"]),
                "target": target("AverageValue", &Value::Null, &p["targetAverageValue"], &Value::Null)}),
        );
    }
    if let Some(p) = m["object"].as_object().map(|_| &m["object"]) {
        let ty = if p["averageValue"].is_null() {
            "Value"
        } else {
            "AverageValue"
        };
        out.insert(
            "object".into(),
            json!({"describedObject": p["target"],
                "metric": identifier(&p["metricName"], &p["selector"]),
                "target": target(ty, &p["targetValue"], &p["averageValue"], &Value::Null)}),
        );
    }
    if let Some(p) = m["external"].as_object().map(|_| &m["external"]) {
        let ty = if p["targetValue"].is_null() {
            "AverageValue"
        } else {
            "Value"
        };
        out.insert(
            "external".into(),
            json!({"metric": identifier(&p["metricName"], &p["metricSelector"]),
                "target": target(ty, &p["targetValue"], &p["targetAverageValue"], &Value::Null)}),
        );
    }
    Value::Object(out)
}

/// A v2 MetricStatus in v1's shape.
fn metric_status_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), m["type"].clone());
    for k in ["resource", "containerResource"] {
        if let Some(r) = m[k].as_object().map(|_| &m[k]) {
            let mut o = Map::new();
            put(&mut o, "name", &r["name"]);
            put(
                &mut o,
                "currentAverageUtilization",
                &r["current"]["averageUtilization"],
            );
            o.insert(
                "currentAverageValue".into(),
                if r["current"]["averageValue"].is_null() {
                    json!("0")
                } else {
                    r["current"]["averageValue"].clone()
                },
            );
            put(&mut o, "container", &r["container"]);
            out.insert(k.into(), Value::Object(o));
        }
    }
    if let Some(p) = m["pods"].as_object().map(|_| &m["pods"]) {
        let mut o = Map::new();
        put(&mut o, "metricName", &p["metric"]["name"]);
        put(&mut o, "currentAverageValue", &p["current"]["averageValue"]);
        put(&mut o, "selector", &p["metric"]["selector"]);
        out.insert("pods".into(), Value::Object(o));
    }
    if let Some(p) = m["object"].as_object().map(|_| &m["object"]) {
        let mut o = Map::new();
        put(&mut o, "target", &p["describedObject"]);
        put(&mut o, "metricName", &p["metric"]["name"]);
        put(&mut o, "currentValue", &p["current"]["value"]);
        put(&mut o, "selector", &p["metric"]["selector"]);
        put(&mut o, "averageValue", &p["current"]["averageValue"]);
        out.insert("object".into(), Value::Object(o));
    }
    if let Some(p) = m["external"].as_object().map(|_| &m["external"]) {
        let mut o = Map::new();
        put(&mut o, "metricName", &p["metric"]["name"]);
        put(&mut o, "metricSelector", &p["metric"]["selector"]);
        put(&mut o, "currentValue", &p["current"]["value"]);
        put(&mut o, "currentAverageValue", &p["current"]["averageValue"]);
        out.insert("external".into(), Value::Object(o));
    }
    Value::Object(out)
}

fn current(value: &Value, avg: &Value, util: &Value) -> Value {
    let mut o = Map::new();
    put(&mut o, "value", value);
    put(&mut o, "averageValue", avg);
    put(&mut o, "averageUtilization", util);
    Value::Object(o)
}

/// A v1 MetricStatus in v2's shape.
fn metric_status_from_v1(m: &Value) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), m["type"].clone());
    for k in ["resource", "containerResource"] {
        if let Some(r) = m[k].as_object().map(|_| &m[k]) {
            let mut o = Map::new();
            put(&mut o, "name", &r["name"]);
            o.insert(
                "current".into(),
                current(
                    &Value::Null,
                    &r["currentAverageValue"],
                    &r["currentAverageUtilization"],
                ),
            );
            put(&mut o, "container", &r["container"]);
            out.insert(k.into(), Value::Object(o));
        }
    }
    if let Some(p) = m["pods"].as_object().map(|_| &m["pods"]) {
        out.insert(
            "pods".into(),
            json!({"metric": identifier(&p["metricName"], &p["selector"]),
                "current": current(&Value::Null, &p["currentAverageValue"], &Value::Null)}),
        );
    }
    if let Some(p) = m["object"].as_object().map(|_| &m["object"]) {
        out.insert(
            "object".into(),
            json!({"describedObject": p["target"],
                "metric": identifier(&p["metricName"], &p["selector"]),
                "current": current(&p["currentValue"], &p["averageValue"], &Value::Null)}),
        );
    }
    if let Some(p) = m["external"].as_object().map(|_| &m["external"]) {
        out.insert(
            "external".into(),
            json!({"metric": identifier(&p["metricName"], &p["metricSelector"]),
                "current": current(&p["currentValue"], &p["currentAverageValue"], &Value::Null)}),
        );
    }
    Value::Object(out)
}

/// Scaling rules as upstream's annotation holds them (its internal Go type, field names).
fn rules_to_go(r: &Value) -> Value {
    if r.is_null() {
        return Value::Null;
    }
    let policies: Vec<Value> = r["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| json!({"Type": p["type"], "Value": p["value"], "PeriodSeconds": p["periodSeconds"]}))
        .collect();
    let mut o = json!({
        "StabilizationWindowSeconds": r["stabilizationWindowSeconds"],
        "SelectPolicy": r["selectPolicy"],
        "Policies": if r["policies"].is_array() { json!(policies) } else { Value::Null },
    });
    if !r["tolerance"].is_null() {
        o["Tolerance"] = r["tolerance"].clone();
    }
    o
}

fn rules_from_go(r: &Value) -> Value {
    if !r.is_object() {
        return Value::Null;
    }
    let mut o = Map::new();
    put(
        &mut o,
        "stabilizationWindowSeconds",
        &r["StabilizationWindowSeconds"],
    );
    put(&mut o, "selectPolicy", &r["SelectPolicy"]);
    if let Some(ps) = r["Policies"].as_array() {
        o.insert(
            "policies".into(),
            json!(ps
                .iter()
                .map(|p| json!({"type": p["Type"], "value": p["Value"], "periodSeconds": p["PeriodSeconds"]}))
                .collect::<Vec<_>>()),
        );
    }
    put(&mut o, "tolerance", &r["Tolerance"]);
    Value::Object(o)
}

/// Set one annotation, making `metadata.annotations` an object first if it is not one.
fn set_annotation(obj: &mut Value, key: &str, value: Value) {
    let ann = &mut obj["metadata"]["annotations"];
    if !ann.is_object() {
        *ann = json!({});
    }
    ann[key] = value;
}

fn drop_round_trip(obj: &mut Value) {
    if let Some(a) = obj["metadata"]["annotations"].as_object_mut() {
        for k in ROUND_TRIP {
            a.remove(k);
        }
        if a.is_empty() {
            if let Some(md) = obj["metadata"].as_object_mut() {
                md.remove("annotations");
            }
        }
    }
}

/// Upstream `Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler`.
pub fn v2_to_v1(v2: &Value) -> Value {
    let mut out = json!({
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": v2["metadata"],
    });
    drop_round_trip(&mut out);
    let spec = &v2["spec"];
    let mut s1 = Map::new();
    put(&mut s1, "scaleTargetRef", &spec["scaleTargetRef"]);
    put(&mut s1, "minReplicas", &spec["minReplicas"]);
    s1.insert(
        "maxReplicas".into(),
        json!(spec["maxReplicas"].as_i64().unwrap_or(0)),
    );
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    if let Some(cpu) = metrics
        .iter()
        .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
    {
        put(
            &mut s1,
            "targetCPUUtilizationPercentage",
            &cpu["resource"]["target"]["averageUtilization"],
        );
    }
    out["spec"] = Value::Object(s1);
    let st = &v2["status"];
    let mut st1 = Map::new();
    put(&mut st1, "observedGeneration", &st["observedGeneration"]);
    put(&mut st1, "lastScaleTime", &st["lastScaleTime"]);
    st1.insert(
        "currentReplicas".into(),
        json!(st["currentReplicas"].as_i64().unwrap_or(0)),
    );
    st1.insert(
        "desiredReplicas".into(),
        json!(st["desiredReplicas"].as_i64().unwrap_or(0)),
    );
    let current = st["currentMetrics"].as_array().cloned().unwrap_or_default();
    for m in &current {
        if m["type"] == "Resource" && m["resource"]["name"] == "cpu" {
            put(
                &mut st1,
                "currentCPUUtilizationPercentage",
                &m["resource"]["current"]["averageUtilization"],
            );
        }
    }
    if st.is_object() {
        out["status"] = Value::Object(st1);
    }
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(metric_spec_to_v1)
        .collect();
    let enc = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    if !others.is_empty() {
        let v = enc(&json!(others));
        set_annotation(&mut out, METRIC_SPECS_ANNOTATION, json!(v));
    }
    if !current.is_empty() {
        let cm: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
        let v = enc(&json!(cm));
        set_annotation(&mut out, METRIC_STATUSES_ANNOTATION, json!(v));
    }
    if spec["behavior"].is_object() {
        let b = json!({
            "ScaleUp": rules_to_go(&spec["behavior"]["scaleUp"]),
            "ScaleDown": rules_to_go(&spec["behavior"]["scaleDown"]),
        });
        let v = enc(&b);
        set_annotation(&mut out, BEHAVIOR_ANNOTATION, json!(v));
    }
    if let Some(conds) = st["conditions"].as_array().filter(|c| !c.is_empty()) {
        let v = enc(&json!(conds));
        set_annotation(&mut out, CONDITIONS_ANNOTATION, json!(v));
    }
    out
}

/// Upstream `Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler`; then
/// the v2 defaults, as a read of the v2 storage applies them.
pub fn v1_to_v2(v1: &Value) -> Value {
    let ann = |k: &str| -> Option<Value> {
        v1["metadata"]["annotations"][k]
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
    };
    let spec = &v1["spec"];
    let mut s2 = Map::new();
    put(&mut s2, "scaleTargetRef", &spec["scaleTargetRef"]);
    put(&mut s2, "minReplicas", &spec["minReplicas"]);
    s2.insert(
        "maxReplicas".into(),
        json!(spec["maxReplicas"].as_i64().unwrap_or(0)),
    );
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(others) = ann(METRIC_SPECS_ANNOTATION).and_then(|v| v.as_array().cloned()) {
        metrics.extend(others.iter().map(metric_spec_from_v1));
    }
    if let Some(t) = spec["targetCPUUtilizationPercentage"].as_i64() {
        metrics.push(cpu_utilization_metric(t));
    }
    if metrics.is_empty() {
        metrics.push(cpu_utilization_metric(DEFAULT_CPU_UTILIZATION));
    }
    s2.insert("metrics".into(), json!(metrics));
    if let Some(b) = ann(BEHAVIOR_ANNOTATION).filter(|b| b.is_object()) {
        let behavior = json!({
            "scaleUp": rules_from_go(&b["ScaleUp"]),
            "scaleDown": rules_from_go(&b["ScaleDown"]),
        });
        if behavior["scaleUp"].is_object() || behavior["scaleDown"].is_object() {
            let mut clean = Map::new();
            put(&mut clean, "scaleUp", &behavior["scaleUp"]);
            put(&mut clean, "scaleDown", &behavior["scaleDown"]);
            s2.insert("behavior".into(), Value::Object(clean));
        }
    }
    let mut out = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": v1["metadata"],
        "spec": Value::Object(s2),
    });
    let st = &v1["status"];
    if st.is_object() {
        let mut st2 = Map::new();
        put(&mut st2, "observedGeneration", &st["observedGeneration"]);
        put(&mut st2, "lastScaleTime", &st["lastScaleTime"]);
        put(&mut st2, "currentReplicas", &st["currentReplicas"]);
        st2.insert(
            "desiredReplicas".into(),
            json!(st["desiredReplicas"].as_i64().unwrap_or(0)),
        );
        if let Some(cm) = ann(METRIC_STATUSES_ANNOTATION).and_then(|v| v.as_array().cloned()) {
            st2.insert(
                "currentMetrics".into(),
                json!(cm.iter().map(metric_status_from_v1).collect::<Vec<_>>()),
            );
        }
        if let Some(c) = ann(CONDITIONS_ANNOTATION).filter(|c| c.is_array()) {
            st2.insert("conditions".into(), c);
        }
        out["status"] = Value::Object(st2);
    }
    drop_round_trip(&mut out);
    defaults_v2(&mut out);
    out
}

impl Strategy for HpaV1Strategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<asv1::HorizontalPodAutoscaler>(obj)
    }

    /// Upstream v1 `SetDefaults_HorizontalPodAutoscaler`.
    fn defaults(&self, obj: &mut Value) {
        if obj["spec"].is_object() && obj["spec"]["minReplicas"].is_null() {
            obj["spec"]["minReplicas"] = json!(1);
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
        // Status rides in annotations too in this version; none is taken on create.
        if let Some(a) = obj["metadata"]["annotations"].as_object_mut() {
            a.remove(METRIC_STATUSES_ANNOTATION);
            a.remove(CONDITIONS_ANNOTATION);
        }
    }

    /// Validation of the object as it will be stored (upstream validates the internal form, so
    /// field paths are v2's: `spec.metrics[0].resource.target.averageUtilization`).
    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let v2 = v1_to_v2(obj);
        validate_spec(&v2["spec"], causes);
        validate_status(&v2["status"], causes);
    }

    fn prepare_status_update(&self, old: &Value, new: Value) -> Value {
        let mut n = old.clone();
        n["status"] = new["status"].clone();
        // The v1 form's status also lives in annotations: take those from the request.
        for k in [METRIC_STATUSES_ANNOTATION, CONDITIONS_ANNOTATION] {
            match new["metadata"]["annotations"].get(k) {
                Some(v) => set_annotation(&mut n, k, v.clone()),
                None => {
                    if let Some(a) = n["metadata"]["annotations"].as_object_mut() {
                        a.remove(k);
                    }
                }
            }
        }
        n
    }

    fn storage_resource(&self) -> Option<&'static ResourceDef> {
        Some(&RESOURCE)
    }

    fn to_storage(&self, obj: Value) -> Value {
        if obj["apiVersion"] == "autoscaling/v2" {
            return obj;
        }
        v1_to_v2(&obj)
    }

    fn present(&self, obj: &mut Value) {
        if obj["apiVersion"] != "autoscaling/v1" {
            *obj = v2_to_v1(obj);
        }
    }

    fn columns(&self) -> Vec<Column> {
        hpa_columns()
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        hpa_cells(&v1_to_v2(o), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: Value) -> Vec<String> {
        let mut obj = json!({"spec": spec});
        defaults_v2(&mut obj);
        let mut causes = Vec::new();
        HpaStrategy.validate(&obj, &mut causes);
        causes.iter().map(|c| format!("{}: {}", c.0, c.1)).collect()
    }

    fn target_ref() -> Value {
        json!({"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"})
    }

    #[test]
    fn defaults_fill_min_metrics_and_behavior() {
        let mut o = json!({"spec": {"scaleTargetRef": target_ref(), "maxReplicas": 3,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}}});
        defaults_v2(&mut o);
        assert_eq!(o["spec"]["minReplicas"], 1);
        assert_eq!(o["spec"]["metrics"][0], cpu_utilization_metric(80));
        let b = &o["spec"]["behavior"];
        assert_eq!(b["scaleDown"]["stabilizationWindowSeconds"], 5);
        assert_eq!(b["scaleDown"]["selectPolicy"], "Max");
        assert_eq!(
            b["scaleDown"]["policies"],
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}])
        );
        assert_eq!(b["scaleUp"]["stabilizationWindowSeconds"], 0);
        assert_eq!(b["scaleUp"]["policies"][0]["type"], "Pods");
        // No behavior given: none is set (the controller then uses its plain normalization).
        let mut o = json!({"spec": {"scaleTargetRef": target_ref(), "maxReplicas": 3}});
        defaults_v2(&mut o);
        assert!(o["spec"]["behavior"].is_null());
    }

    #[test]
    fn validation_messages_follow_upstream() {
        assert!(check(json!({"scaleTargetRef": target_ref(), "maxReplicas": 3})).is_empty());
        assert_eq!(
            check(json!({"scaleTargetRef": target_ref(), "minReplicas": 0, "maxReplicas": 3})),
            vec!["spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"]
        );
        assert_eq!(
            check(json!({"scaleTargetRef": target_ref(), "minReplicas": 4, "maxReplicas": 3})),
            vec!["spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"]
        );
        assert_eq!(
            check(json!({"scaleTargetRef": {"kind": "", "name": ""}, "maxReplicas": 0})),
            vec![
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
                "spec.scaleTargetRef.kind: Required value",
                "spec.scaleTargetRef.name: Required value",
            ]
        );
        assert_eq!(
            check(json!({"scaleTargetRef": target_ref(), "maxReplicas": 3, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]})),
            vec!["spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"]
        );
        assert_eq!(
            check(json!({"scaleTargetRef": target_ref(), "maxReplicas": 3, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]})),
            vec!["spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization"]
        );
        assert_eq!(
            check(json!({"scaleTargetRef": target_ref(), "maxReplicas": 3, "metrics": [
                {"type": "Bogus"}]})),
            vec!["spec.metrics[0].type: Unsupported value: \"Bogus\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""]
        );
        assert_eq!(
            check(json!({"scaleTargetRef": target_ref(), "maxReplicas": 3, "metrics": [
                {"type": "Pods", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}}}]})),
            vec!["spec.metrics[0].pods: Required value: must populate information for the given metric source"]
        );
        assert_eq!(
            check(
                json!({"scaleTargetRef": target_ref(), "maxReplicas": 3, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}},
                 "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}}}]})
            ),
            vec!["spec.metrics[0].pods: Forbidden: must populate the given metric source only"]
        );
        assert_eq!(
            check(json!({"scaleTargetRef": target_ref(), "maxReplicas": 3, "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Most",
                    "policies": [{"type": "Pods", "value": 0, "periodSeconds": 2000}]}}})),
            vec![
                "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600",
                "spec.behavior.scaleDown.selectPolicy: Unsupported value: \"Most\": supported values: \"Disabled\", \"Max\", \"Min\"",
                "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero",
                "spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 2000: must be less than or equal to 1800",
            ]
        );
    }

    #[test]
    fn v1_round_trip_keeps_v2_only_fields() {
        let mut v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "d"},
            "spec": {"scaleTargetRef": target_ref(), "minReplicas": 2, "maxReplicas": 5,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70, "averageValue": "70m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        });
        defaults_v2(&mut v2);
        let v1 = v2_to_v1(&v2);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 70);
        let ann = &v1["metadata"]["annotations"];
        assert_eq!(
            serde_json::from_str::<Value>(ann[METRIC_SPECS_ANNOTATION].as_str().unwrap()).unwrap(),
            json!([{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}])
        );
        let b: Value = serde_json::from_str(ann[BEHAVIOR_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(b["ScaleDown"]["StabilizationWindowSeconds"], 10);
        assert_eq!(b["ScaleUp"]["Policies"][0]["Type"], "Pods");
        // Back to v2: everything returns; the round-trip annotations are gone.
        let back = v1_to_v2(&v1);
        assert_eq!(back["spec"], v2["spec"]);
        assert_eq!(back["status"], v2["status"]);
        assert!(back["metadata"]["annotations"].is_null());
        // A plain v1 object: its cpu target becomes the only metric.
        let plain = json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "p"},
            "spec": {"scaleTargetRef": target_ref(), "maxReplicas": 4, "targetCPUUtilizationPercentage": 30}});
        let v2p = v1_to_v2(&plain);
        assert_eq!(v2p["spec"]["metrics"], json!([cpu_utilization_metric(30)]));
        assert_eq!(v2p["spec"]["minReplicas"], 1);
        let again = v2_to_v1(&v2p);
        assert!(again["metadata"]["annotations"].is_null(), "{again}");
    }

    #[test]
    fn targets_column() {
        let specs = json!([
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        ]);
        assert_eq!(format_metrics(&json!([]), &Value::Null), "<none>");
        assert_eq!(
            format_metrics(&specs, &Value::Null),
            "cpu: <unknown>/50%, memory: <unknown>/1Gi + 1 more..."
        );
        let statuses = json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "12m"}}}]);
        assert_eq!(
            format_metrics(&json!([specs[0]]), &statuses),
            "cpu: 12%/50%"
        );
    }
}
