//! ServiceAccounts (pkg/registry/core/serviceaccount/strategy.go).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, Strategy, AGE, NAME};
use crate::resources::ResourceDef;

#[derive(Debug)]
pub struct ServiceAccountStrategy;

/// The REST shape of ServiceAccounts, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    list_kind: "ServiceAccountList",
    plural: "serviceaccounts",
    singular: "serviceaccount",
    namespaced: true,
    short_names: &["sa"],
    categories: &[],
    subresources: &[crate::resources::Subresource::Token],
    has_spec: false,
    strategy: &ServiceAccountStrategy,
};

impl Strategy for ServiceAccountStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::ServiceAccount>(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Secrets", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![
            name,
            json!(o["secrets"].as_array().map(|a| a.len()).unwrap_or(0)),
            created,
        ]
    }
}
