//! Leases (pkg/registry/coordination/lease/strategy.go).

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1 as coord;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, Strategy, AGE, NAME};
use crate::resources::ResourceDef;
use crate::table::{or_none, s};

#[derive(Debug)]
pub struct LeaseStrategy;

/// The REST shape of Leases, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    list_kind: "LeaseList",
    plural: "leases",
    singular: "lease",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: true,
    strategy: &LeaseStrategy,
};

impl Strategy for LeaseStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<coord::Lease>(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Holder", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![
            name,
            json!(or_none(s(&o["spec"]["holderIdentity"]))),
            created,
        ]
    }
}
