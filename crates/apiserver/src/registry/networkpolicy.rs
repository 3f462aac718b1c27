//! NetworkPolicies (pkg/registry/networking/networkpolicy; validation from
//! pkg/apis/networking/validation, defaults from pkg/apis/networking/v1/defaults.go). The nodes
//! enforce them (daas-agent `net::policy`).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use daas_apimachinery::selector::LabelSelector;
use daas_apimachinery::validation::{port_name, port_num};
use k8s_openapi::api::networking::v1 as networking;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::resources::ResourceDef;
use crate::table::selector_string;

#[derive(Debug)]
pub struct NetworkPolicyStrategy;

/// The REST shape of NetworkPolicies, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "networking.k8s.io",
    version: "v1",
    kind: "NetworkPolicy",
    list_kind: "NetworkPolicyList",
    plural: "networkpolicies",
    singular: "networkpolicy",
    namespaced: true,
    short_names: &["netpol"],
    categories: &[],
    subresources: &[],
    has_spec: true,
    strategy: &NetworkPolicyStrategy,
};

const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// A CIDR as `net.ParseCIDR` reads it: the masked network address and the prefix length.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    if len > bits {
        return None;
    }
    Some((mask(ip, len), len))
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// Does the network `net`/`len` contain `ip`?
pub fn cidr_contains(net: (IpAddr, u8), ip: IpAddr) -> bool {
    net.0.is_ipv4() == ip.is_ipv4() && mask(ip, net.1) == net.0
}

/// Upstream `ValidateNetworkPolicyPort`.
fn validate_port(p: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(proto) = p["protocol"].as_str() {
        if !["TCP", "UDP", "SCTP"].contains(&proto) {
            causes.push((
                format!("{path}.protocol"),
                format!(
                    "Unsupported value: {proto:?}: supported values: \"TCP\", \"UDP\", \"SCTP\""
                ),
            ));
        }
    }
    let end = p["endPort"].as_i64();
    match &p["port"] {
        Value::Number(n) => {
            let port = n.as_i64().unwrap_or(0);
            for m in port_num(port) {
                causes.push((
                    format!("{path}.port"),
                    format!("Invalid value: {port}: {m}"),
                ));
            }
            if let Some(end) = end {
                if end < port {
                    causes.push((
                        format!("{path}.endPort"),
                        format!("Invalid value: {port}: must be greater than or equal to `port`"),
                    ));
                }
                for m in port_num(end) {
                    causes.push((
                        format!("{path}.endPort"),
                        format!("Invalid value: {end}: {m}"),
                    ));
                }
            }
        }
        Value::String(name) => {
            if let Some(end) = end {
                causes.push((
                    format!("{path}.endPort"),
                    format!(
                        "Invalid value: {end}: may not be specified when `port` is non-numeric"
                    ),
                ));
            }
            for m in port_name(name) {
                causes.push((
                    format!("{path}.port"),
                    format!("Invalid value: {name:?}: {m}"),
                ));
            }
        }
        _ => {
            if let Some(end) = end {
                causes.push((
                    format!("{path}.endPort"),
                    format!(
                        "Invalid value: {end}: may not be specified when `port` is not specified"
                    ),
                ));
            }
        }
    }
}

fn validate_selector(sel: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Err(e) = LabelSelector::from_json(sel) {
        causes.push((path.into(), format!("Invalid value: {e}")));
    }
}

/// Upstream `ValidateIPBlock`.
fn validate_ip_block(b: &Value, path: &str, causes: &mut Vec<Cause>) {
    let cidr = b["cidr"].as_str().unwrap_or("");
    if cidr.is_empty() {
        causes.push((format!("{path}.cidr"), "Required value".into()));
        return;
    }
    let Some(net) = parse_cidr(cidr) else {
        causes.push((
            format!("{path}.cidr"),
            format!("Invalid value: {cidr:?}: {CIDR_MSG}"),
        ));
        return;
    };
    for (i, e) in b["except"].as_array().into_iter().flatten().enumerate() {
        let es = e.as_str().unwrap_or("");
        let epath = format!("{path}.except[{i}]");
        match parse_cidr(es) {
            None => causes.push((epath, format!("Invalid value: {es:?}: {CIDR_MSG}"))),
            Some(ex) => {
                if !cidr_contains(net, ex.0) || net.1 >= ex.1 {
                    causes.push((
                        epath,
                        format!("Invalid value: {es:?}: must be a strict subset of `cidr`"),
                    ));
                }
            }
        }
    }
}

/// Upstream `ValidateNetworkPolicyPeer`.
fn validate_peer(peer: &Value, path: &str, causes: &mut Vec<Cause>) {
    let mut n = 0;
    if !peer["podSelector"].is_null() {
        n += 1;
        validate_selector(&peer["podSelector"], &format!("{path}.podSelector"), causes);
    }
    if !peer["namespaceSelector"].is_null() {
        n += 1;
        validate_selector(
            &peer["namespaceSelector"],
            &format!("{path}.namespaceSelector"),
            causes,
        );
    }
    let ip_block = !peer["ipBlock"].is_null();
    if ip_block {
        n += 1;
        validate_ip_block(&peer["ipBlock"], &format!("{path}.ipBlock"), causes);
    }
    if n == 0 {
        causes.push((path.into(), "Required value: must specify a peer".into()));
    } else if n > 1 && ip_block {
        causes.push((
            path.into(),
            "Forbidden: may not specify both ipBlock and another peer".into(),
        ));
    }
}

/// Upstream `ValidateNetworkPolicySpec`.
fn validate_spec(spec: &Value, causes: &mut Vec<Cause>) {
    validate_selector(&spec["podSelector"], "spec.podSelector", causes);
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in spec[dir].as_array().into_iter().flatten().enumerate() {
            let rpath = format!("spec.{dir}[{i}]");
            for (j, p) in rule["ports"].as_array().into_iter().flatten().enumerate() {
                validate_port(p, &format!("{rpath}.ports[{j}]"), causes);
            }
            for (j, p) in rule[peers].as_array().into_iter().flatten().enumerate() {
                validate_peer(p, &format!("{rpath}.{peers}[{j}]"), causes);
            }
        }
    }
    let types = spec["policyTypes"].as_array().cloned().unwrap_or_default();
    if types.len() > 2 {
        causes.push((
            "spec.policyTypes".into(),
            format!(
                "Invalid value: {}: may not specify more than two policyTypes",
                Value::Array(types)
            ),
        ));
        return;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if t != "Ingress" && t != "Egress" {
            causes.push((
                format!("spec.policyTypes[{i}]"),
                format!("Unsupported value: {t:?}: supported values: \"Ingress\", \"Egress\""),
            ));
        }
    }
}

impl Strategy for NetworkPolicyStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<networking::NetworkPolicy>(obj)
    }

    /// Upstream `SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`: no
    /// `policyTypes` means Ingress, plus Egress when egress rules are given; a port's protocol
    /// is TCP.
    fn defaults(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        for dir in ["ingress", "egress"] {
            if let Some(rules) = spec.get_mut(dir).and_then(Value::as_array_mut) {
                for r in rules {
                    if let Some(ports) = r.get_mut("ports").and_then(Value::as_array_mut) {
                        for p in ports {
                            if let Some(p) = p.as_object_mut() {
                                if p.get("protocol").is_none_or(Value::is_null) {
                                    p.insert("protocol".into(), json!("TCP"));
                                }
                            }
                        }
                    }
                }
            }
        }
        let types_empty = spec
            .get("policyTypes")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        if types_empty {
            let egress = spec
                .get("egress")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            let types = if egress {
                json!(["Ingress", "Egress"])
            } else {
                json!(["Ingress"])
            };
            spec.insert("policyTypes".into(), types);
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_spec(&obj["spec"], causes);
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Pod-Selector", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, age) = name_and_age(o, now);
        vec![name, json!(selector_string(&o["spec"]["podSelector"])), age]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: Value) -> Vec<String> {
        let mut causes = Vec::new();
        NetworkPolicyStrategy.validate(&json!({ "spec": spec }), &mut causes);
        causes.iter().map(|c| format!("{}: {}", c.0, c.1)).collect()
    }

    #[test]
    fn a_full_policy_is_valid() {
        let spec = json!({
            "podSelector": {"matchLabels": {"app": "db"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{
                "from": [
                    {"podSelector": {"matchLabels": {"role": "client"}}},
                    {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
                     "podSelector": {}},
                    {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}}
                ],
                "ports": [{"protocol": "TCP", "port": 5432}, {"port": "metrics"},
                          {"protocol": "UDP", "port": 1000, "endPort": 2000}]
            }],
            "egress": [{"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}]}, {}]
        });
        assert_eq!(check(spec), Vec::<String>::new());
        assert!(check(json!({"podSelector": {}})).is_empty());
    }

    #[test]
    fn ports_are_validated_as_upstream() {
        let errs = check(json!({"podSelector": {}, "ingress": [{"ports": [
            {"protocol": "ICMP", "port": 80},
            {"port": 0},
            {"port": 100, "endPort": 90},
            {"port": "http", "endPort": 90},
            {"endPort": 90},
            {"port": "Not_A_Name"}
        ]}]}));
        assert_eq!(
            errs,
            vec![
                "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                "spec.ingress[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ingress[0].ports[2].endPort: Invalid value: 100: must be greater than or equal to `port`",
                "spec.ingress[0].ports[3].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
                "spec.ingress[0].ports[4].endPort: Invalid value: 90: may not be specified when `port` is not specified",
                "spec.ingress[0].ports[5].port: Invalid value: \"Not_A_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ]
        );
    }

    #[test]
    fn peers_and_ip_blocks_are_validated_as_upstream() {
        let errs = check(json!({"podSelector": {}, "egress": [{"to": [
            {},
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
            {"ipBlock": {"cidr": "10.0.0.0/33"}},
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "10.0.0.0/16", "x"]}},
            {"ipBlock": {}},
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}
        ]}]}));
        assert_eq!(
            errs[0],
            "spec.egress[0].to[0]: Required value: must specify a peer"
        );
        assert_eq!(
            errs[1],
            "spec.egress[0].to[1]: Forbidden: may not specify both ipBlock and another peer"
        );
        assert_eq!(errs[2], "spec.egress[0].to[2].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
        assert_eq!(errs[3], "spec.egress[0].to[3].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`");
        assert_eq!(errs[4], "spec.egress[0].to[3].ipBlock.except[1]: Invalid value: \"10.0.0.0/16\": must be a strict subset of `cidr`");
        assert!(errs[5].starts_with("spec.egress[0].to[3].ipBlock.except[2]: Invalid value: \"x\""));
        assert_eq!(errs[6], "spec.egress[0].to[4].ipBlock.cidr: Required value");
        assert!(errs[7].starts_with("spec.egress[0].to[5].podSelector: Invalid value"));
        assert_eq!(errs.len(), 8, "{errs:?}");
    }

    #[test]
    fn policy_types_are_validated_and_defaulted() {
        assert_eq!(
            check(json!({"podSelector": {}, "policyTypes": ["Ingress", "Sideways"]})),
            vec!["spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\""]
        );
        assert_eq!(
            check(json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress", "Ingress"]})),
            vec!["spec.policyTypes: Invalid value: [\"Ingress\",\"Egress\",\"Ingress\"]: may not specify more than two policyTypes"]
        );
        let mut o = json!({"spec": {"podSelector": {}}});
        NetworkPolicyStrategy.defaults(&mut o);
        assert_eq!(o["spec"]["policyTypes"], json!(["Ingress"]));
        let mut o = json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
        NetworkPolicyStrategy.defaults(&mut o);
        assert_eq!(o["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(o["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let mut o = json!({"spec": {"podSelector": {}, "policyTypes": ["Egress"]}});
        NetworkPolicyStrategy.defaults(&mut o);
        assert_eq!(o["spec"]["policyTypes"], json!(["Egress"]));
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let n = parse_cidr("10.1.2.3/16").unwrap();
        assert_eq!(n, ("10.1.0.0".parse().unwrap(), 16));
        assert!(cidr_contains(n, "10.1.255.1".parse().unwrap()));
        assert!(!cidr_contains(n, "10.2.0.1".parse().unwrap()));
        assert!(!cidr_contains(n, "::1".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0").is_none());
        assert!(parse_cidr("::/129").is_none());
        assert!(parse_cidr("0.0.0.0/0").is_some());
    }
}
