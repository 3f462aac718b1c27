//! LimitRanges (pkg/registry/core/limitrange; pkg/apis/core/validation `ValidateLimitRange`;
//! defaults from pkg/apis/core/v1 `SetDefaults_LimitRangeItem`). They are enforced on pods by
//! the LimitRanger admission ([`crate::limitranger`]).

use std::collections::BTreeSet;

use daas_apimachinery::quantity::{format_milli, format_of, value_milli, Format};
use k8s_openapi::api::core::v1 as core;
use serde_json::{Map, Value};

use super::{decode_as, Cause, Strategy};
use crate::resources::ResourceDef;
use crate::table::s;

#[derive(Debug)]
pub struct LimitRangeStrategy;

/// The REST shape of LimitRanges, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "LimitRange",
    list_kind: "LimitRangeList",
    plural: "limitranges",
    singular: "limitrange",
    namespaced: true,
    short_names: &["limits"],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &LimitRangeStrategy,
};

pub const CONTAINER: &str = "Container";
pub const POD: &str = "Pod";
pub const PVC: &str = "PersistentVolumeClaim";

/// The map `field` of a limit item, if it is a non-empty object.
pub(crate) fn resource_map<'v>(item: &'v Value, field: &str) -> Option<&'v Map<String, Value>> {
    item[field].as_object().filter(|m| !m.is_empty())
}

/// Upstream `SetDefaults_LimitRangeItem`: for Container items, `default` falls back to `max`,
/// and `defaultRequest` to `default`, then to `min`.
fn default_item(item: &mut Value) {
    if item["type"].as_str() != Some(CONTAINER) {
        return;
    }
    let mut default = resource_map(item, "default").cloned().unwrap_or_default();
    if let Some(max) = resource_map(item, "max") {
        for (k, v) in max {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut request = resource_map(item, "defaultRequest")
        .cloned()
        .unwrap_or_default();
    for (k, v) in &default {
        request.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if let Some(min) = resource_map(item, "min") {
        for (k, v) in min {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(m) = item.as_object_mut() {
        if !default.is_empty() {
            m.insert("default".into(), Value::Object(default));
        }
        if !request.is_empty() {
            m.insert("defaultRequest".into(), Value::Object(request));
        }
    }
}

/// Is `name` a qualified name (optional DNS-subdomain prefix and a name part of at most 63
/// characters of alphanumerics, '-', '_' and '.', starting and ending alphanumeric)?
fn is_qualified_name(name: &str) -> bool {
    let (prefix, part) = match name.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, name),
    };
    if prefix.is_some_and(|p| !super::is_dns_subdomain(p)) {
        return false;
    }
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !part.is_empty()
        && part.len() <= 63
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && ends_ok(part.chars().next())
        && ends_ok(part.chars().last())
}

const QUALIFIED_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// Upstream `validateLimitRangeResourceName`: PersistentVolumeClaim items limit `storage` only;
/// Container and Pod items limit standard container resources or fully qualified extended ones.
fn validate_resource_name(limit_type: &str, name: &str, path: &str, causes: &mut Vec<Cause>) {
    if limit_type == PVC {
        if name != "storage" {
            causes.push((
                path.into(),
                format!("Unsupported value: {name:?}: supported values: \"storage\""),
            ));
        }
        return;
    }
    let standard =
        ["cpu", "memory", "ephemeral-storage"].contains(&name) || name.starts_with("hugepages-");
    if !is_qualified_name(name) {
        causes.push((
            path.into(),
            format!("Invalid value: {name:?}: {QUALIFIED_MSG}"),
        ));
    } else if !standard && !name.contains('/') {
        causes.push((
            path.into(),
            format!("Invalid value: {name:?}: must be a standard limit type or fully qualified"),
        ));
    }
}

/// Upstream `ValidateLimitRange` for one item at `path`.
fn validate_item(item: &Value, path: &str, causes: &mut Vec<Cause>) {
    let limit_type = item["type"].as_str().unwrap_or("");
    if limit_type.is_empty() {
        causes.push((format!("{path}.type"), "Required value".into()));
    } else if !is_qualified_name(limit_type) {
        causes.push((
            format!("{path}.type"),
            format!("Invalid value: {limit_type:?}: {QUALIFIED_MSG}"),
        ));
    }
    let mut fields = vec!["max", "min"];
    if limit_type == POD {
        for f in ["default", "defaultRequest"] {
            if resource_map(item, f).is_some() {
                causes.push((
                    format!("{path}.{f}"),
                    "Forbidden: may not be specified when `type` is 'Pod'".into(),
                ));
            }
        }
    } else {
        fields.extend(["default", "defaultRequest"]);
    }
    fields.push("maxLimitRequestRatio");
    let mut keys = BTreeSet::new();
    for f in &fields {
        for (k, q) in resource_map(item, f).into_iter().flatten() {
            let p = format!("{path}.{f}[{k}]");
            validate_resource_name(limit_type, k, &p, causes);
            match value_milli(q) {
                Some(_) => {
                    keys.insert(k.clone());
                }
                None => causes.push((
                    p,
                    format!(
                        "Invalid value: {:?}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                        s(q)
                    ),
                )),
            }
        }
    }
    if limit_type == PVC {
        let has = |f: &str| item[f]["storage"].is_string() || item[f]["storage"].is_number();
        if !has("min") && !has("max") {
            causes.push((
                format!("{path}.limits"),
                "Required value: either minimum or maximum storage value is required, but neither was provided".into(),
            ));
        }
    }
    let get = |f: &str, k: &str| -> Option<(i128, String)> {
        if limit_type == POD && (f == "default" || f == "defaultRequest") {
            return None;
        }
        let v = &item[f][k];
        let format = v.as_str().and_then(format_of).unwrap_or(Format::DecimalSi);
        value_milli(v).map(|m| (m, format_milli(m, format)))
    };
    for k in &keys {
        let min = get("min", k);
        let max = get("max", k);
        let def = get("default", k);
        let req = get("defaultRequest", k);
        let ratio = get("maxLimitRequestRatio", k);
        let mut bad = |f: &str, shown: &str, msg: String| {
            causes.push((
                format!("{path}.{f}[{k}]"),
                format!("Invalid value: {shown:?}: {msg}"),
            ))
        };
        if let (Some(mn), Some(mx)) = (&min, &max) {
            if mn.0 > mx.0 {
                bad(
                    "min",
                    &mn.1,
                    format!("min value {} is greater than max value {}", mn.1, mx.1),
                );
            }
        }
        if let Some(r) = &req {
            if let Some(mn) = min.as_ref().filter(|mn| mn.0 > r.0) {
                bad(
                    "defaultRequest",
                    &r.1,
                    format!(
                        "min value {} is greater than default request value {}",
                        mn.1, r.1
                    ),
                );
            }
            if let Some(mx) = max.as_ref().filter(|mx| r.0 > mx.0) {
                bad(
                    "defaultRequest",
                    &r.1,
                    format!(
                        "default request value {} is greater than max value {}",
                        r.1, mx.1
                    ),
                );
            }
            if let Some(d) = def.as_ref().filter(|d| r.0 > d.0) {
                bad(
                    "defaultRequest",
                    &r.1,
                    format!(
                        "default request value {} is greater than default limit value {}",
                        r.1, d.1
                    ),
                );
            }
        }
        if let Some(d) = &def {
            if let Some(mn) = min.as_ref().filter(|mn| mn.0 > d.0) {
                bad(
                    "default",
                    &mn.1,
                    format!("min value {} is greater than default value {}", mn.1, d.1),
                );
            }
            if let Some(mx) = max.as_ref().filter(|mx| d.0 > mx.0) {
                bad(
                    "default",
                    &mx.1,
                    format!("default value {} is greater than max value {}", d.1, mx.1),
                );
            }
        }
        if let Some(r) = &ratio {
            if r.0 < 1000 {
                bad(
                    "maxLimitRequestRatio",
                    &r.1,
                    format!("ratio {} is less than 1", r.1),
                );
            }
            if let (Some(mn), Some(mx)) = (&min, &max) {
                if mn.0 > 0 {
                    let limit = mx.0 as f64 / mn.0 as f64;
                    if r.0 as f64 / 1000.0 > limit {
                        bad(
                            "maxLimitRequestRatio",
                            &r.1,
                            format!("ratio {} is greater than max/min = {limit:.6}", r.1),
                        );
                    }
                }
            }
        }
    }
}

impl Strategy for LimitRangeStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::LimitRange>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        if let Some(items) = obj["spec"]["limits"].as_array_mut() {
            items.iter_mut().for_each(default_item);
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let mut seen = BTreeSet::new();
        for (i, item) in obj["spec"]["limits"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let path = format!("spec.limits[{i}]");
            validate_item(item, &path, causes);
            let t = s(&item["type"]);
            if !t.is_empty() && !seen.insert(t.clone()) {
                causes.push((format!("{path}.type"), format!("Duplicate value: {t:?}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(obj: Value) -> Vec<Cause> {
        let mut obj = obj;
        LimitRangeStrategy.defaults(&mut obj);
        let mut causes = Vec::new();
        LimitRangeStrategy.validate(&obj, &mut causes);
        causes
    }

    #[test]
    fn container_items_default_from_max_and_min() {
        let mut obj = json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "1Mi"}},
            {"type": "Pod", "max": {"cpu": "2"}}
        ]}});
        LimitRangeStrategy.defaults(&mut obj);
        let c = &obj["spec"]["limits"][0];
        assert_eq!(c["default"], json!({"cpu": "1"}));
        assert_eq!(c["defaultRequest"], json!({"cpu": "1", "memory": "1Mi"}));
        assert!(obj["spec"]["limits"][1]["default"].is_null());
    }

    #[test]
    fn ordering_rules() {
        let causes = check(json!({"spec": {"limits": [{"type": "Container",
            "min": {"cpu": "200m"}, "max": {"cpu": "100m"},
            "maxLimitRequestRatio": {"memory": "500m"}}]}}));
        let msgs: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.0, c.1)).collect();
        assert!(msgs.contains(&"spec.limits[0].min[cpu]: Invalid value: \"200m\": min value 200m is greater than max value 100m".to_string()), "{msgs:?}");
        assert!(msgs.contains(&"spec.limits[0].maxLimitRequestRatio[memory]: Invalid value: \"500m\": ratio 500m is less than 1".to_string()), "{msgs:?}");
        let ok = check(json!({"spec": {"limits": [{"type": "Container",
            "min": {"cpu": "100m"}, "max": {"cpu": "1"}, "defaultRequest": {"cpu": "200m"},
            "default": {"cpu": "500m"}, "maxLimitRequestRatio": {"cpu": "10"}}]}}));
        assert!(ok.is_empty(), "{ok:?}");
        let r = check(json!({"spec": {"limits": [{"type": "Container",
            "min": {"cpu": "100m"}, "max": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "20"}}]}}));
        assert_eq!(
            r[0].1,
            "Invalid value: \"20\": ratio 20 is greater than max/min = 10.000000"
        );
    }

    #[test]
    fn types_and_names() {
        let causes = check(json!({"spec": {"limits": [
            {"type": "Pod", "default": {"cpu": "1"}},
            {"type": "Pod", "max": {"bogus": "1"}},
            {"type": "PersistentVolumeClaim", "max": {"cpu": "1"}}
        ]}}));
        let fields: Vec<&str> = causes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.limits[0].default",
                "spec.limits[1].max[bogus]",
                "spec.limits[1].type",
                "spec.limits[2].max[cpu]",
                "spec.limits[2].limits",
            ]
        );
        assert_eq!(causes[2].1, "Duplicate value: \"Pod\"");
    }
}
