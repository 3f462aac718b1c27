//! Endpoints (pkg/registry/core/endpoint/strategy.go).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, Strategy, AGE, NAME};
use crate::resources::ResourceDef;
use crate::table::{int, or_none, s};

#[derive(Debug)]
pub struct EndpointsStrategy;

/// The REST shape of Endpointss, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "Endpoints",
    list_kind: "EndpointsList",
    plural: "endpoints",
    singular: "endpoints",
    namespaced: true,
    short_names: &["ep"],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &EndpointsStrategy,
};

impl Strategy for EndpointsStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::Endpoints>(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Endpoints", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![name, json!(endpoints_string(o)), created]
    }
}

fn endpoints_string(ep: &Value) -> String {
    let mut out = Vec::new();
    for sub in ep["subsets"].as_array().cloned().unwrap_or_default() {
        for a in sub["addresses"].as_array().cloned().unwrap_or_default() {
            let ports = sub["ports"].as_array().cloned().unwrap_or_default();
            if ports.is_empty() {
                out.push(s(&a["ip"]));
            }
            for p in ports {
                out.push(format!("{}:{}", s(&a["ip"]), int(&p["port"])));
            }
        }
    }
    or_none(out.join(","))
}
