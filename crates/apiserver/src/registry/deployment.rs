//! Deployments (pkg/registry/apps/deployment/strategy.go).

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
pub struct DeploymentStrategy;

/// The REST shape of Deployments, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    list_kind: "DeploymentList",
    plural: "deployments",
    singular: "deployment",
    namespaced: true,
    short_names: &["deploy"],
    categories: &["all"],
    subresources: &[Status, Scale],
    has_spec: true,
    strategy: &DeploymentStrategy,
};

impl Strategy for DeploymentStrategy {
    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        super::validate_selector_immutable(old, new, causes);
    }

    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"]["template"]["spec"])?;
        decode_as::<apps::Deployment>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "replicas", json!(1));
        default_key(spec, "revisionHistoryLimit", json!(10));
        default_key(spec, "progressDeadlineSeconds", json!(600));
        default_key(
            spec,
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        );
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

    fn default_replicas(&self) -> i64 {
        1
    }

    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        Some(PodSpecAt::Template)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Ready", "", 0),
            ("Up-to-date", "", 0),
            ("Available", "", 0),
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
            json!(format!(
                "{}/{}",
                int(&st["readyReplicas"]),
                int(&o["spec"]["replicas"])
            )),
            json!(int(&st["updatedReplicas"])),
            json!(int(&st["availableReplicas"])),
            created,
            c,
            i,
            sel,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_wide_columns() {
        let d = json!({"metadata":{"name":"web"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},
            "template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}},
            "status":{"readyReplicas":2,"updatedReplicas":3,"availableReplicas":2}});
        let c = DeploymentStrategy.cells(&d, Utc::now());
        assert_eq!(c[1], "2/3");
        assert_eq!(c[5], "nginx");
        assert_eq!(c[6], "nginx:1.27");
        assert_eq!(c[7], "app=web");
        assert_eq!(DeploymentStrategy.columns().len(), c.len());
    }

    #[test]
    fn deployment_selector_must_match_template() {
        let d = json!({"metadata":{"name":"web"},"spec":{"selector":{"matchLabels":{"app":"web"}},
            "template":{"metadata":{"labels":{"app":"other"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}});
        let mut causes = Vec::new();
        DeploymentStrategy.validate(&d, &mut causes);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].0, "spec.template.metadata.labels");
    }
}
