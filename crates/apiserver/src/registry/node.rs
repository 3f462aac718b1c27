//! Nodes (pkg/registry/core/node/strategy.go).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
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

    /// `spec.podCIDR` and `spec.podCIDRs` describe one thing (upstream's conversion keeps them
    /// in step): either one alone fills in the other.
    fn normalize(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let single = spec
            .get("podCIDR")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let first = spec
            .get("podCIDRs")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string);
        match (single, first) {
            (Some(c), None) => {
                spec.insert("podCIDRs".into(), json!([c]));
            }
            (None, Some(c)) => {
                spec.insert("podCIDR".into(), json!(c));
            }
            _ => {}
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let cidrs = pod_cidrs(obj);
        if cidrs.len() > 2 {
            causes.push((
                "spec.podCIDRs".into(),
                "Too many: may contain at most one CIDR per IP family".into(),
            ));
        }
        for (i, c) in cidrs.iter().enumerate() {
            if !valid_cidr(c) {
                causes.push((
                    format!("spec.podCIDRs[{i}]"),
                    format!("Invalid value: \"{c}\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"),
                ));
            }
        }
        if let (Some(single), Some(first)) = (obj["spec"]["podCIDR"].as_str(), cidrs.first()) {
            if !single.is_empty() && single != first {
                causes.push((
                    "spec.podCIDR".into(),
                    format!(
                        "Invalid value: \"{single}\": must be the first entry of spec.podCIDRs"
                    ),
                ));
            }
        }
    }

    /// The pod CIDR may be set once (by the node at registration or by the master's nodeipam
    /// controller) and never changed: routes on every node point at it.
    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        let before = pod_cidrs(old);
        if !before.is_empty()
            && (before != pod_cidrs(new) || old["spec"]["podCIDR"] != new["spec"]["podCIDR"])
        {
            causes.push((
                "spec.podCIDRs".into(),
                "Forbidden: node updates may not change podCIDR except from \"\" to valid".into(),
            ));
        }
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

/// `spec.podCIDRs` as strings.
pub fn pod_cidrs(node: &Value) -> Vec<String> {
    node["spec"]["podCIDRs"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default()
}

/// An IPv4 or IPv6 network with no host bits set.
fn valid_cidr(c: &str) -> bool {
    let Some((addr, len)) = c.split_once('/') else {
        return false;
    };
    let Ok(len) = len.parse::<u32>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) if len <= 32 => u32::from(a).checked_shl(len).unwrap_or(0) == 0,
        Ok(std::net::IpAddr::V6(a)) if len <= 128 => {
            u128::from(a).checked_shl(len).unwrap_or(0) == 0
        }
        _ => false,
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

    #[test]
    fn pod_cidr_is_set_once() {
        let mut n = json!({"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.42.1.0/24"}});
        NodeStrategy.normalize(&mut n);
        assert_eq!(n["spec"]["podCIDRs"], json!(["10.42.1.0/24"]));
        let mut causes = Vec::new();
        NodeStrategy.validate(&n, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        let mut m = json!({"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.42.2.0/24"]}});
        NodeStrategy.normalize(&mut m);
        assert_eq!(m["spec"]["podCIDR"], "10.42.2.0/24");
        // From "" to valid is allowed; any later change is not.
        let empty = json!({"metadata": {"name": "n1"}, "spec": {}});
        NodeStrategy.validate_update(&empty, &n, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        NodeStrategy.validate_update(&n, &m, &mut causes);
        NodeStrategy.validate_update(&n, &empty, &mut causes);
        assert_eq!(causes.len(), 2);
        assert_eq!(
            causes[0],
            (
                "spec.podCIDRs".to_string(),
                "Forbidden: node updates may not change podCIDR except from \"\" to valid"
                    .to_string()
            )
        );
        // Bad values and a podCIDR that is not podCIDRs[0].
        let mut causes = Vec::new();
        NodeStrategy.validate(
            &json!({"spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.1/24"]}}),
            &mut causes,
        );
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert_eq!(causes[0].0, "spec.podCIDRs[0]");
        assert_eq!(causes[1].0, "spec.podCIDR");
        assert!(valid_cidr("fd00::/64") && valid_cidr("0.0.0.0/0") && !valid_cidr("10.0.0.0"));
    }
}
