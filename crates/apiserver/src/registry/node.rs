//! Nodes (pkg/registry/core/node/strategy.go).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, Strategy, AGE, NAME};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{or_none, s};

#[derive(Debug)]
pub struct NodeStrategy;

/// The REST shape of Nodes, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "Node",
    list_kind: "NodeList",
    plural: "nodes",
    singular: "node",
    namespaced: false,
    short_names: &["no"],
    categories: &[],
    subresources: &[Status],
    has_spec: true,
    strategy: &NodeStrategy,
};

impl Strategy for NodeStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::Node>(obj)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Status", "", 0),
            ("Roles", "", 0),
            AGE,
            ("Version", "", 0),
            ("Internal-IP", "", 1),
            ("External-IP", "", 1),
            ("OS-Image", "", 1),
            ("Kernel-Version", "", 1),
            ("Container-Runtime", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let ni = &o["status"]["nodeInfo"];
        vec![
            name,
            json!(node_status(o)),
            json!(node_roles(o)),
            created,
            json!(s(&ni["kubeletVersion"])),
            json!(node_address(o, "InternalIP")),
            json!(node_address(o, "ExternalIP")),
            json!(or_none(s(&ni["osImage"]))),
            json!(or_none(s(&ni["kernelVersion"]))),
            json!(or_none(s(&ni["containerRuntimeVersion"]))),
        ]
    }
}

fn node_status(node: &Value) -> String {
    let mut parts = Vec::new();
    let conds = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match conds.iter().find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => parts.push("Ready".to_string()),
        Some(c) if c["status"] == "False" => parts.push("NotReady".to_string()),
        _ => parts.push("Unknown".to_string()),
    }
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        parts.push("SchedulingDisabled".into());
    }
    parts.join(",")
}

fn node_roles(node: &Value) -> String {
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = node["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                if !r.is_empty() {
                    roles.push(r.to_string());
                }
            } else if k == "kubernetes.io/role" {
                roles.push(s(v));
            }
        }
    }
    roles.sort();
    or_none(roles.join(","))
}

fn node_address(node: &Value, ty: &str) -> String {
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == ty))
        .map(|x| s(&x["address"]))
        .map(or_none)
        .unwrap_or_else(|| "<none>".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_and_roles() {
        let n = json!({"metadata":{"name":"n1","labels":{"node-role.kubernetes.io/worker":"","kubernetes.io/role":"edge"}},
            "spec":{"unschedulable":true},
            "status":{"conditions":[{"type":"Ready","status":"True"}],"addresses":[{"type":"InternalIP","address":"10.0.0.2"}]}});
        let c = NodeStrategy.cells(&n, Utc::now());
        assert_eq!(c[1], "Ready,SchedulingDisabled");
        assert_eq!(c[2], "edge,worker");
        assert_eq!(c[5], "10.0.0.2");
        assert_eq!(c[6], "<none>");
    }
}
