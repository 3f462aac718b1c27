//! Server-side printing: `meta.k8s.io/v1 Table` for `kubectl get`, with the columns kubectl users
//! know from Kubernetes (priority 1 columns appear with `-o wide`).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::resources::ResourceDef;

/// Column type as the Table schema declares it.
fn col_type(name: &str) -> &'static str {
    match name {
        "Restarts" | "Data" | "Secrets" | "Desired" | "Current" | "Up-to-date" | "Available"
        | "Count" => "integer",
        _ => "string",
    }
}

pub fn column_definitions(def: &ResourceDef) -> Value {
    Value::Array(
        def.strategy
            .columns()
            .into_iter()
            .map(|(n, fmt, prio)| {
                let ty = def
                    .strategy
                    .column_type(n)
                    .unwrap_or_else(|| col_type(n).to_string());
                json!({"name": n, "type": ty, "format": fmt, "description": n, "priority": prio})
            })
            .collect(),
    )
}

/// Kubernetes' HumanDuration (apimachinery/pkg/util/duration).
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "0s".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let dd = d % 365;
        if dd == 0 {
            format!("{}y", d / 365)
        } else {
            format!("{}y{dd}d", d / 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

pub(crate) fn age(ts: &Value, now: DateTime<Utc>) -> String {
    match ts
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        Some(t) => human_duration((now - t.with_timezone(&Utc)).num_seconds()),
        None => "<unknown>".into(),
    }
}

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn or_none(x: String) -> String {
    if x.is_empty() {
        "<none>".into()
    } else {
        x
    }
}

pub fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    // A plain label map (a ReplicationController's or a Service's selector).
    if let Some(m) = sel.as_object() {
        if !m.contains_key("matchLabels")
            && !m.contains_key("matchExpressions")
            && m.values().all(Value::is_string)
        {
            let mut parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect();
            parts.sort();
            return or_none(parts.join(","));
        }
    }
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            parts.push(format!("{k}={}", s(v)));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let vals: Vec<String> = e["values"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            let key = s(&e["key"]);
            parts.push(match e["operator"].as_str().unwrap_or("") {
                "In" => format!("{key} in ({})", vals.join(",")),
                "NotIn" => format!("{key} notin ({})", vals.join(",")),
                "Exists" => key,
                "DoesNotExist" => format!("!{key}"),
                op => format!("{key} {op} ({})", vals.join(",")),
            });
        }
    }
    or_none(parts.join(","))
}

pub(crate) fn containers_and_images(pod_spec: &Value) -> (String, String) {
    let cs = pod_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = cs.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = cs.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

pub(crate) fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

pub(crate) fn count_map(v: &Value) -> i64 {
    v.as_object().map(|m| m.len() as i64).unwrap_or(0)
}

/// What `includeObject` asked for on each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

pub fn partial_metadata(o: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o["metadata"].clone(),
    })
}

pub fn row(def: &ResourceDef, o: &Value, include: IncludeObject, now: DateTime<Utc>) -> Value {
    let mut r = json!({"cells": def.strategy.cells(o, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => r["object"] = partial_metadata(o),
        IncludeObject::Object => r["object"] = o.clone(),
    }
    r
}

pub fn table(
    def: &ResourceDef,
    objs: &[Value],
    rv: &str,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = Utc::now();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "rows": objs.iter().map(|o| row(def, o, include, now)).collect::<Vec<_>>(),
    });
    if with_columns {
        t["columnDefinitions"] = column_definitions(def);
    } else {
        t["columnDefinitions"] = json!(null);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubernetes() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(10 * 3600), "10h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
        assert_eq!(human_duration(3 * 365 * 86400), "3y");
    }

    #[test]
    fn every_kind_has_matching_cell_count() {
        for def in crate::resources::RESOURCES {
            let o = json!({"metadata":{"name":"x"}});
            assert_eq!(
                def.strategy.cells(&o, Utc::now()).len(),
                def.strategy.columns().len(),
                "{}",
                def.kind
            );
        }
    }
}
