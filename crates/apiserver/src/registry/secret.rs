//! Secrets (pkg/registry/core/secret/strategy.go, ValidateSecret{,Update}).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{
    decode_as, name_and_age, validate_config_keys, validate_immutable, Cause, Column, Strategy,
    AGE, NAME,
};
use crate::resources::ResourceDef;
use crate::table::{count_map, s};
use crate::typed::{default_key, obj_mut};

#[derive(Debug)]
pub struct SecretStrategy;

/// The REST shape of Secrets, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "Secret",
    list_kind: "SecretList",
    plural: "secrets",
    singular: "secret",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &SecretStrategy,
};

impl Strategy for SecretStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::Secret>(obj)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["type"]
    }

    /// `stringData` is folded into `data`, as Kubernetes' conversion does on every write.
    fn normalize(&self, obj: &mut Value) {
        if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
            use base64::Engine;
            let data = obj_mut(obj, "data");
            for (k, v) in sd {
                let raw = v.as_str().unwrap_or_default().to_string();
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())),
                );
            }
        }
    }

    fn defaults(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default_key(m, "type", json!("Opaque"));
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_config_keys(obj, &["data"], causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["type"] != new["type"] {
            causes.push((
                "type".into(),
                format!("Invalid value: {:?}: field is immutable", s(&new["type"])),
            ));
        }
        validate_immutable(old, new, &["data"], causes);
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Type", "", 0), ("Data", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![
            name,
            json!(s(&o["type"])),
            json!(count_map(&o["data"])),
            created,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_string_data_folds_into_data() {
        let mut s = json!({"data":{"a":"eA=="},"stringData":{"b":"hunter2"}});
        SecretStrategy.normalize(&mut s);
        assert_eq!(s, json!({"data":{"a":"eA==","b":"aHVudGVyMg=="}}));
    }

    #[test]
    fn type_is_immutable() {
        let old = json!({"type":"Opaque","data":{}});
        let new = json!({"type":"kubernetes.io/tls","data":{}});
        let mut causes = Vec::new();
        SecretStrategy.validate_update(&old, &new, &mut causes);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].0, "type");
    }
}
