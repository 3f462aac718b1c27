//! ConfigMaps (pkg/registry/core/configmap/strategy.go, ValidateConfigMap{,Update}).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{
    decode_as, name_and_age, validate_config_keys, validate_immutable, Cause, Column, Strategy,
    AGE, NAME,
};
use crate::resources::ResourceDef;
use crate::table::count_map;

#[derive(Debug)]
pub struct ConfigMapStrategy;

/// The REST shape of ConfigMaps, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    list_kind: "ConfigMapList",
    plural: "configmaps",
    singular: "configmap",
    namespaced: true,
    short_names: &["cm"],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &ConfigMapStrategy,
};

impl Strategy for ConfigMapStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::ConfigMap>(obj)
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_config_keys(obj, &["data", "binaryData"], causes);
        if let (Some(data), Some(bin)) = (obj["data"].as_object(), obj["binaryData"].as_object()) {
            for k in bin.keys().filter(|k| data.contains_key(*k)) {
                causes.push((
                    format!("binaryData[{k}]"),
                    format!("Invalid value: {k:?}: duplicate of key present in data"),
                ));
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        validate_immutable(old, new, &["data", "binaryData"], causes);
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Data", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![
            name,
            json!(count_map(&o["data"]) + count_map(&o["binaryData"])),
            created,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_config_keys_and_unique_across_maps() {
        let cm = json!({"data":{"a":"1","bad/key":"2"},"binaryData":{"a":"eA=="}});
        let mut causes = Vec::new();
        ConfigMapStrategy.validate(&cm, &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, vec!["data[bad/key]", "binaryData[a]"]);
    }
}
