//! events.k8s.io/v1 Events (pkg/registry/core/event; pkg/apis/core/validation `ValidateEventCreate`
//! for the events.k8s.io request version). Kept in their own collection: core v1 Events and
//! these are not yet converted into each other (upstream serves both from one store).

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

/// Upstream's limit on `note`.
const NOTE_MAX: usize = 1024;

impl Strategy for EventV1Strategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<events::Event>(obj)
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

    /// The rules upstream applies to events written through events.k8s.io/v1.
    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
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
    fn table_row() {
        let o = json!({"type": "Warning", "reason": "R", "note": " n ",
            "regarding": {"kind": "Pod", "name": "p"}, "eventTime": "2026-01-01T00:00:00Z"});
        let cells = EventV1Strategy.cells(&o, Utc::now());
        assert_eq!(cells[3], json!("pod/p"));
        assert_eq!(cells[4], json!("n"));
    }
}
