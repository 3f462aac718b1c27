//! PodTemplates (pkg/registry/core/podtemplate/strategy.go; `ValidatePodTemplate`).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, validate_pod_spec, Cause, Column, Strategy, NAME};
use crate::resources::ResourceDef;
use crate::table::{containers_and_images, or_none, s};
use crate::typed::default_pod_spec;

#[derive(Debug)]
pub struct PodTemplateStrategy;

/// The REST shape of PodTemplates, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "PodTemplate",
    list_kind: "PodTemplateList",
    plural: "podtemplates",
    singular: "podtemplate",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &PodTemplateStrategy,
};

impl Strategy for PodTemplateStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["template"]["spec"])?;
        decode_as::<core::PodTemplate>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        if let Some(Value::Object(ps)) = obj.get_mut("template").and_then(|t| t.get_mut("spec")) {
            default_pod_spec(ps);
        }
    }

    /// As `ValidatePodTemplateSpec` at `template`: a pod spec, without ephemeral containers.
    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["template"]["spec"];
        validate_pod_spec(spec, "template.spec", causes);
        if spec["ephemeralContainers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            causes.push((
                "template.spec.ephemeralContainers".into(),
                "Forbidden: ephemeral containers not allowed in pod template".into(),
            ));
        }
    }

    /// Upstream prints the template's containers, images and pod labels (no age).
    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Containers", "", 0),
            ("Images", "", 0),
            ("Pod Labels", "", 0),
        ]
    }

    fn cells(&self, o: &Value, _now: DateTime<Utc>) -> Vec<Value> {
        let (c, i) = containers_and_images(&o["template"]["spec"]);
        let labels = o["template"]["metadata"]["labels"]
            .as_object()
            .map(|m| {
                let mut kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect();
                kv.sort();
                kv.join(",")
            })
            .unwrap_or_default();
        vec![
            json!(s(&o["metadata"]["name"])),
            json!(c),
            json!(i),
            json!(or_none(labels)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_spec_is_validated_and_printed() {
        let mut causes = Vec::new();
        PodTemplateStrategy.validate(&json!({"template":{"spec":{}}}), &mut causes);
        assert_eq!(causes[0].0, "template.spec.containers");
        let pt = json!({"metadata":{"name":"t"},"template":{"metadata":{"labels":{"b":"2","a":"1"}},
            "spec":{"containers":[{"name":"c","image":"nginx"}]}}});
        let cells = PodTemplateStrategy.cells(&pt, Utc::now());
        assert_eq!(cells[3], "a=1,b=2");
        assert_eq!(cells.len(), PodTemplateStrategy.columns().len());
    }
}
