//! events.k8s.io/v1 Events (pkg/registry/core/event; pkg/apis/core/validation `ValidateEventCreate`
//! for the events.k8s.io request version). Stored with core v1 Events, in their form, as upstream
//! serves both from one store: an Event written through either API is read through both,
//! converted field by field as pkg/apis/events/v1 conversion does.

use chrono::{DateTime, Utc};
use k8s_openapi::api::events::v1 as events;
use serde_json::{json, Value};

use super::{decode_as, Cause, Column, Strategy};
use crate::resources::ResourceDef;
use crate::table::{age, s};

#[derive(Debug)]
pub struct EventV1Strategy;

/// The REST shape of events.k8s.io/v1 Events, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "events.k8s.io",
    version: "v1",
    kind: "Event",
    list_kind: "EventList",
    plural: "events",
    singular: "event",
    namespaced: true,
    short_names: &["ev"],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &EventV1Strategy,
};

/// (events.k8s.io/v1 field, core/v1 field) pairs that carry the same value under another name.
const RENAMED: &[(&str, &str)] = &[
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Rename `obj`'s top-level fields from one form to the other and set its apiVersion; fields
/// both forms share (metadata, eventTime, series, related, action, reason, type,
/// reportingInstance) are kept as they are.
fn convert(obj: &mut Value, api_version: &str, to_core: bool) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    for (ev, core) in RENAMED {
        let (from, to) = if to_core { (ev, core) } else { (core, ev) };
        match m.remove(*from) {
            Some(v) if !v.is_null() => {
                m.insert((*to).to_string(), v);
            }
            _ => {}
        }
    }
    m.insert("apiVersion".into(), json!(api_version));
    m.insert("kind".into(), json!("Event"));
}

/// Upstream's limit on `note`.
const NOTE_MAX: usize = 1024;

impl Strategy for EventV1Strategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<events::Event>(obj)
    }

    fn storage_resource(&self) -> Option<&'static ResourceDef> {
        Some(&super::event::RESOURCE)
    }

    fn to_storage(&self, mut obj: Value) -> Value {
        if obj["apiVersion"] != "v1" {
            convert(&mut obj, "v1", true);
        }
        obj
    }

    fn present(&self, obj: &mut Value) {
        if obj["apiVersion"] != "events.k8s.io/v1" {
            convert(obj, "events.k8s.io/v1", false);
        }
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ]
    }

    /// The rules upstream applies to events created through events.k8s.io/v1 (an update keeps
    /// what the event had, which may have been written through core/v1 without these fields).
    fn validate_create(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let empty = |f: &str| obj[f].as_str().is_none_or(str::is_empty);
        if obj["eventTime"].is_null() {
            causes.push(("eventTime".into(), "Required value".into()));
        }
        let ty = s(&obj["type"]);
        if ty != "Normal" && ty != "Warning" {
            causes.push((
                "type".into(),
                format!("Invalid value: {ty:?}: has invalid value, must be Normal or Warning"),
            ));
        }
        for f in [
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
        ] {
            if empty(f) {
                causes.push((f.into(), "Required value".into()));
            }
        }
    }

    /// Limits on every write through events.k8s.io/v1.
    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        for f in [
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
        ] {
            if s(&obj[f]).len() > 128 {
                causes.push((f.into(), "Too long: may not be longer than 128".into()));
            }
        }
        if s(&obj["note"]).len() > NOTE_MAX {
            causes.push((
                "note".into(),
                format!("Too long: may not be longer than {NOTE_MAX}"),
            ));
        }
        let ns = s(&obj["metadata"]["namespace"]);
        let rns = s(&obj["regarding"]["namespace"]);
        if !rns.is_empty() && rns != ns {
            causes.push((
                "regarding.namespace".into(),
                format!("Invalid value: {rns:?}: does not match event.namespace"),
            ));
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("Last Seen", "", 0),
            ("Type", "", 0),
            ("Reason", "", 0),
            ("Object", "", 0),
            ("Message", "", 0),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let last = [
            &o["series"]["lastObservedTime"],
            &o["deprecatedLastTimestamp"],
            &o["eventTime"],
            &o["metadata"]["creationTimestamp"],
        ]
        .into_iter()
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or(Value::Null);
        let r = &o["regarding"];
        vec![
            json!(age(&last, now)),
            json!(s(&o["type"])),
            json!(s(&o["reason"])),
            json!(format!(
                "{}/{}",
                s(&r["kind"]).to_lowercase(),
                s(&r["name"])
            )),
            json!(s(&o["note"]).trim().to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(obj: Value) -> Vec<String> {
        let mut causes = Vec::new();
        EventV1Strategy.validate_create(&obj, &mut causes);
        EventV1Strategy.validate(&obj, &mut causes);
        causes.iter().map(|c| format!("{}: {}", c.0, c.1)).collect()
    }

    #[test]
    fn required_fields_and_type() {
        let ok = json!({"metadata": {"namespace": "a"}, "eventTime": "2026-01-01T00:00:00.000000Z",
            "type": "Normal", "reportingController": "c", "reportingInstance": "i",
            "action": "Do", "reason": "Because", "regarding": {"namespace": "a", "kind": "Pod"}});
        assert!(check(ok.clone()).is_empty());
        let mut bad = ok.clone();
        bad["type"] = json!("Odd");
        bad["regarding"]["namespace"] = json!("b");
        bad["note"] = json!("x".repeat(1025));
        bad.as_object_mut().unwrap().remove("action");
        assert_eq!(
            check(bad),
            vec![
                "type: Invalid value: \"Odd\": has invalid value, must be Normal or Warning",
                "action: Required value",
                "note: Too long: may not be longer than 1024",
                "regarding.namespace: Invalid value: \"b\": does not match event.namespace",
            ]
        );
    }

    #[test]
    fn converts_to_core_and_back() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "a"}, "eventTime": "2026-01-01T00:00:00.000000Z",
            "note": "hello", "regarding": {"kind": "Pod", "name": "p"},
            "related": {"kind": "Node", "name": "n"}, "reportingController": "c",
            "reportingInstance": "i", "deprecatedSource": {"component": "k"},
            "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
            "deprecatedLastTimestamp": "2026-01-02T00:00:00Z", "deprecatedCount": 3,
            "series": {"count": 2, "lastObservedTime": "2026-01-02T00:00:00.000000Z"},
            "action": "Do", "reason": "R", "type": "Normal"});
        let core = EventV1Strategy.to_storage(ev.clone());
        assert_eq!(
            core,
            json!({"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "e", "namespace": "a"},
                "eventTime": "2026-01-01T00:00:00.000000Z", "message": "hello",
                "involvedObject": {"kind": "Pod", "name": "p"},
                "related": {"kind": "Node", "name": "n"}, "reportingComponent": "c",
                "reportingInstance": "i", "source": {"component": "k"},
                "firstTimestamp": "2026-01-01T00:00:00Z",
                "lastTimestamp": "2026-01-02T00:00:00Z", "count": 3,
                "series": {"count": 2, "lastObservedTime": "2026-01-02T00:00:00.000000Z"},
                "action": "Do", "reason": "R", "type": "Normal"})
        );
        // Already in storage form: unchanged.
        assert_eq!(EventV1Strategy.to_storage(core.clone()), core);
        let mut back = core;
        EventV1Strategy.present(&mut back);
        assert_eq!(back, ev);
        let mut again = back.clone();
        EventV1Strategy.present(&mut again);
        assert_eq!(again, ev);
    }

    #[test]
    fn table_row() {
        let o = json!({"type": "Warning", "reason": "R", "note": " n ",
            "regarding": {"kind": "Pod", "name": "p"}, "eventTime": "2026-01-01T00:00:00Z"});
        let cells = EventV1Strategy.cells(&o, Utc::now());
        assert_eq!(cells[3], json!("pod/p"));
        assert_eq!(cells[4], json!("n"));
    }
}
