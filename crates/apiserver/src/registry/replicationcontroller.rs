//! ReplicationControllers (pkg/registry/core/replicationcontroller/strategy.go): the core/v1
//! predecessor of ReplicaSets, with a plain label-map selector that defaults, like the object's
//! labels, from the pod template's labels.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{
    decode_as, name_and_age, validate_pod_spec, Cause, Column, PodSpecAt, Strategy, AGE, NAME,
};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{self, int};
use crate::typed::{default_key, default_pod_spec, obj_mut};

#[derive(Debug)]
pub struct ReplicationControllerStrategy;

/// The REST shape of ReplicationControllers, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "ReplicationController",
    list_kind: "ReplicationControllerList",
    plural: "replicationcontrollers",
    singular: "replicationcontroller",
    namespaced: true,
    short_names: &["rc"],
    categories: &["all"],
    subresources: &[Status, Scale],
    has_spec: true,
    strategy: &ReplicationControllerStrategy,
};

/// A non-empty map of strings, or `None`.
fn non_empty_map(v: &Value) -> Option<&serde_json::Map<String, Value>> {
    v.as_object().filter(|m| !m.is_empty())
}

/// Go's `%#v` of a `map[string]string`, as upstream field errors render label maps.
fn go_string_map(v: &Value) -> String {
    let mut parts: Vec<String> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k:?}:{:?}", table::s(v)))
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    format!("map[string]string{{{}}}", parts.join(", "))
}

impl Strategy for ReplicationControllerStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"]["template"]["spec"])?;
        decode_as::<core::ReplicationController>(obj)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    /// Upstream `SetDefaults_ReplicationController`: selector and labels from the template's
    /// labels when empty, one replica.
    fn defaults(&self, obj: &mut Value) {
        let tpl_labels = non_empty_map(&obj["spec"]["template"]["metadata"]["labels"]).cloned();
        if let Some(labels) = tpl_labels {
            if non_empty_map(&obj["spec"]["selector"]).is_none() {
                obj_mut(obj, "spec").insert("selector".into(), Value::Object(labels.clone()));
            }
            if non_empty_map(&obj["metadata"]["labels"]).is_none() {
                obj_mut(obj, "metadata").insert("labels".into(), Value::Object(labels));
            }
        }
        let spec = obj_mut(obj, "spec");
        default_key(spec, "replicas", json!(1));
        if let Some(Value::Object(tpl)) = spec.get_mut("template") {
            if let Some(Value::Object(ps)) = tpl.get_mut("spec") {
                default_pod_spec(ps);
            }
        }
    }

    /// A new object's status is empty (`replicas` is not omitted on the wire upstream).
    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({"replicas": 0});
    }

    /// Upstream `ValidateReplicationControllerSpec` and `ValidatePodTemplateSpecForRC`.
    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        if let Some(r) = spec["minReadySeconds"].as_i64().filter(|r| *r < 0) {
            causes.push((
                "spec.minReadySeconds".into(),
                format!("Invalid value: {r}: must be greater than or equal to 0"),
            ));
        }
        if let Some(r) = spec["replicas"].as_i64().filter(|r| *r < 0) {
            causes.push((
                "spec.replicas".into(),
                format!("Invalid value: {r}: must be greater than or equal to 0"),
            ));
        }
        let selector = non_empty_map(&spec["selector"]);
        if selector.is_none() {
            causes.push(("spec.selector".into(), "Required value".into()));
        }
        let tpl = &spec["template"];
        if !tpl.is_object() {
            causes.push(("spec.template".into(), "Required value".into()));
            return;
        }
        let labels = &tpl["metadata"]["labels"];
        if let Some(sel) = selector {
            let matches = sel
                .iter()
                .all(|(k, v)| labels[k].as_str().is_some() && labels[k] == *v);
            if !matches {
                causes.push((
                    "spec.template.metadata.labels".into(),
                    format!(
                        "Invalid value: {}: `selector` does not match template `labels`",
                        go_string_map(labels)
                    ),
                ));
            }
        }
        validate_pod_spec(&tpl["spec"], "spec.template.spec", causes);
        if let Some(rp) = tpl["spec"]["restartPolicy"]
            .as_str()
            .filter(|rp| *rp != "Always")
        {
            causes.push((
                "spec.template.spec.restartPolicy".into(),
                format!("Unsupported value: \"{rp}\": supported values: \"Always\""),
            ));
        }
        if !tpl["spec"]["activeDeadlineSeconds"].is_null() {
            causes.push((
                "spec.template.spec.activeDeadlineSeconds".into(),
                "Forbidden: activeDeadlineSeconds in ReplicationController is not Supported".into(),
            ));
        }
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
        let (c, i) = table::containers_and_images(&o["spec"]["template"]["spec"]);
        vec![
            name,
            json!(int(&o["spec"]["replicas"])),
            json!(int(&st["replicas"])),
            json!(int(&st["readyReplicas"])),
            created,
            json!(c),
            json!(i),
            json!(table::selector_string(&o["spec"]["selector"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(selector: Value, tpl_labels: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"selector": selector,
            "template": {"metadata": {"labels": tpl_labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    }

    fn validated(mut o: Value) -> Vec<Cause> {
        let s = ReplicationControllerStrategy;
        s.defaults(&mut o);
        let mut causes = Vec::new();
        s.validate(&o, &mut causes);
        causes
    }

    #[test]
    fn selector_and_labels_default_from_the_template() {
        let mut o = rc(Value::Null, json!({"app": "web", "tier": "fe"}));
        ReplicationControllerStrategy.defaults(&mut o);
        assert_eq!(o["spec"]["selector"], json!({"app": "web", "tier": "fe"}));
        assert_eq!(o["metadata"]["labels"], json!({"app": "web", "tier": "fe"}));
        assert_eq!(o["spec"]["replicas"], 1);
        assert_eq!(o["spec"]["template"]["spec"]["restartPolicy"], "Always");
        // Given selector and labels are kept.
        let mut o = rc(json!({"app": "web"}), json!({"app": "web", "tier": "fe"}));
        o["metadata"]["labels"] = json!({"own": "x"});
        ReplicationControllerStrategy.defaults(&mut o);
        assert_eq!(o["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(o["metadata"]["labels"], json!({"own": "x"}));
        assert!(validated(o).is_empty());
    }

    #[test]
    fn selector_must_match_template_labels() {
        let causes = validated(rc(json!({"app": "other"}), json!({"app": "web"})));
        assert_eq!(
            causes,
            vec![(
                "spec.template.metadata.labels".to_string(),
                "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
                    .to_string()
            )]
        );
        let causes = validated(rc(Value::Null, Value::Null));
        assert_eq!(causes[0], ("spec.selector".into(), "Required value".into()));
    }

    #[test]
    fn replicas_restart_policy_and_template_are_checked() {
        let mut o = rc(json!({"a": "b"}), json!({"a": "b"}));
        o["spec"]["replicas"] = json!(-1);
        o["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        let fields: Vec<(String, String)> = validated(o);
        assert_eq!(
            fields,
            vec![
                (
                    "spec.replicas".to_string(),
                    "Invalid value: -1: must be greater than or equal to 0".to_string()
                ),
                (
                    "spec.template.spec.restartPolicy".to_string(),
                    "Unsupported value: \"OnFailure\": supported values: \"Always\"".to_string()
                ),
            ]
        );
        let causes =
            validated(json!({"metadata": {"name": "x"}, "spec": {"selector": {"a": "b"}}}));
        assert_eq!(
            causes,
            vec![("spec.template".to_string(), "Required value".to_string())]
        );
    }

    #[test]
    fn table_shows_the_map_selector() {
        let mut o = rc(json!({"b": "2", "a": "1"}), json!({"a": "1", "b": "2"}));
        o["spec"]["replicas"] = json!(3);
        o["status"] = json!({"replicas": 2, "readyReplicas": 1});
        let cells = ReplicationControllerStrategy.cells(&o, Utc::now());
        assert_eq!(cells[1], 3);
        assert_eq!(cells[2], 2);
        assert_eq!(cells[3], 1);
        assert_eq!(cells[5], "c");
        assert_eq!(cells[6], "i");
        assert_eq!(cells[7], "a=1,b=2");
    }
}
