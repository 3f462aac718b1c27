//! ControllerRevisions (pkg/registry/apps/controllerrevision/strategy.go): immutable snapshots of
//! a workload's template (raw JSON `data`) with a revision number, the history StatefulSets and
//! DaemonSets roll back to.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1 as apps;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::resources::ResourceDef;
use crate::table::int;

#[derive(Debug)]
pub struct ControllerRevisionStrategy;

/// The REST shape of ControllerRevisions, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    kind: "ControllerRevision",
    list_kind: "ControllerRevisionList",
    plural: "controllerrevisions",
    singular: "controllerrevision",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &ControllerRevisionStrategy,
};

impl Strategy for ControllerRevisionStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<apps::ControllerRevision>(obj)
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        if obj["data"].is_null() {
            causes.push(("data".into(), "Required value: data is mandatory".into()));
        }
        match obj["revision"].as_i64() {
            Some(r) if r < 0 => causes.push((
                "revision".into(),
                format!("Invalid value: {r}: must be greater than or equal to 0"),
            )),
            _ => {}
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["data"] != new["data"] {
            causes.push((
                "data".into(),
                format!("Invalid value: {}: field is immutable", new["data"]),
            ));
        }
    }

    fn generation_changed(&self, old: &Value, new: &Value) -> bool {
        old.get("data") != new.get("data") || old.get("revision") != new.get("revision")
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Controller", "", 0), ("Revision", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let controller = o["metadata"]["ownerReferences"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["controller"] == true))
            .map(|r| {
                let api = r["apiVersion"].as_str().unwrap_or("");
                let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                let kind = r["kind"].as_str().unwrap_or("").to_lowercase();
                let kind = if group.is_empty() {
                    kind
                } else {
                    format!("{kind}.{group}")
                };
                format!("{kind}/{}", r["name"].as_str().unwrap_or(""))
            })
            .unwrap_or_else(|| "<none>".into());
        vec![name, json!(controller), json!(int(&o["revision"])), created]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_required_and_immutable() {
        let mut c = Vec::new();
        ControllerRevisionStrategy.validate(&json!({"revision": -1}), &mut c);
        assert_eq!(
            c,
            vec![
                (
                    "data".to_string(),
                    "Required value: data is mandatory".to_string()
                ),
                (
                    "revision".to_string(),
                    "Invalid value: -1: must be greater than or equal to 0".to_string()
                )
            ]
        );
        let old = json!({"data": {"spec": {"a": 1}}, "revision": 1});
        let mut renumbered = old.clone();
        renumbered["revision"] = json!(3);
        let mut c = Vec::new();
        ControllerRevisionStrategy.validate_update(&old, &renumbered, &mut c);
        assert!(c.is_empty(), "the revision may change (history reuse)");
        let mut changed = old.clone();
        changed["data"] = json!({"spec": {"a": 2}});
        ControllerRevisionStrategy.validate_update(&old, &changed, &mut c);
        assert_eq!(c[0].0, "data");
    }

    #[test]
    fn controller_column() {
        let o = json!({"metadata": {"name": "web-6d4b", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}, "revision": 2});
        let c = ControllerRevisionStrategy.cells(&o, Utc::now());
        assert_eq!(c[1], "statefulset.apps/web");
        assert_eq!(c[2], 2);
    }
}
