//! Events (pkg/registry/core/event/strategy.go).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, Column, Strategy};
use crate::resources::ResourceDef;
use crate::table::{age, s};

#[derive(Debug)]
pub struct EventStrategy;

/// The REST shape of Events, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
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
    strategy: &EventStrategy,
};

impl Strategy for EventStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::Event>(obj)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            ("Last Seen", "", 0),
            ("Type", "", 0),
            ("Reason", "", 0),
            ("Object", "", 0),
            ("Subobject", "", 1),
            ("Source", "", 1),
            ("Message", "", 0),
            ("First Seen", "", 1),
            ("Count", "", 1),
            ("Name", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let md = &o["metadata"];
        let last = if !o["lastTimestamp"].is_null() {
            &o["lastTimestamp"]
        } else if !o["eventTime"].is_null() {
            &o["eventTime"]
        } else {
            &md["creationTimestamp"]
        };
        let first = if !o["firstTimestamp"].is_null() {
            &o["firstTimestamp"]
        } else {
            last
        };
        let io = &o["involvedObject"];
        let object = format!("{}/{}", s(&io["kind"]).to_lowercase(), s(&io["name"]));
        vec![
            json!(age(last, now)),
            json!(s(&o["type"])),
            json!(s(&o["reason"])),
            json!(object),
            json!(s(&io["fieldPath"])),
            json!(format!(
                "{}, {}",
                s(&o["source"]["component"]),
                s(&o["source"]["host"])
            )
            .trim_matches(|c| c == ',' || c == ' ')
            .to_string()),
            json!(s(&o["message"]).trim().to_string()),
            json!(age(first, now)),
            json!(o["count"].as_i64().unwrap_or(1)),
            json!(s(&md["name"])),
        ]
    }
}
