//! ReplicaSets (pkg/registry/apps/replicaset/strategy.go).

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1 as apps;
use serde_json::{json, Value};

use super::{
    decode_as, name_and_age, validate_workload, workload_wide_cells, Cause, Column, PodSpecAt,
    Strategy, AGE, NAME,
};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::int;
use crate::typed::{default_key, default_pod_spec, obj_mut};

#[derive(Debug)]
pub struct ReplicaSetStrategy;

/// The REST shape of ReplicaSets, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    list_kind: "ReplicaSetList",
    plural: "replicasets",
    singular: "replicaset",
    namespaced: true,
    short_names: &["rs"],
    categories: &["all"],
    subresources: &[Status, Scale],
    has_spec: true,
    strategy: &ReplicaSetStrategy,
};

impl Strategy for ReplicaSetStrategy {
    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        super::validate_selector_immutable(old, new, causes);
    }

    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"]["template"]["spec"])?;
        decode_as::<apps::ReplicaSet>(obj)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "replicas", json!(1));
        if let Some(Value::Object(tpl)) = spec.get_mut("template") {
            if let Some(Value::Object(ps)) = tpl.get_mut("spec") {
                default_pod_spec(ps);
            }
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_workload(obj, causes);
    }

    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        Some(PodSpecAt::Template)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Desired", "", 0),
            ("Current", "", 0),
            ("Ready", "", 0),
            AGE,
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let st = &o["status"];
        let [c, i, sel] = workload_wide_cells(o);
        vec![
            name,
            json!(int(&o["spec"]["replicas"])),
            json!(int(&st["replicas"])),
            json!(int(&st["readyReplicas"])),
            created,
            c,
            i,
            sel,
        ]
    }
}
