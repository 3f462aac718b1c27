//! EndpointSlices (pkg/registry/discovery/endpointslice; pkg/apis/discovery/validation).

use std::collections::HashSet;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use daas_apimachinery::selector::validate_label_key;
use k8s_openapi::api::discovery::v1 as discovery;
use serde_json::{json, Value};

use super::runtimeclass::label_reason;
use super::{
    decode_as, is_dns_subdomain, name_and_age, name_errors, Cause, Column, NameRule, Strategy, AGE,
    NAME,
};
use crate::resources::ResourceDef;
use crate::table::s;
use crate::typed::default_key;

#[derive(Debug)]
pub struct EndpointSliceStrategy;

/// The REST shape of EndpointSlices, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "discovery.k8s.io",
    version: "v1",
    kind: "EndpointSlice",
    list_kind: "EndpointSliceList",
    plural: "endpointslices",
    singular: "endpointslice",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &EndpointSliceStrategy,
};

const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;

/// Address types accepted on create; updates also keep the deprecated `IP`.
const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];

fn too_many(path: String, n: usize, max: usize) -> Cause {
    (
        path,
        format!("Too many: {n}: must have at most {max} items"),
    )
}

/// Upstream `ValidateNonSpecialIP`.
fn special_ip(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some(match ip {
            IpAddr::V4(_) => "may not be unspecified (0.0.0.0)",
            IpAddr::V6(_) => "may not be unspecified (::)",
        });
    }
    if ip.is_loopback() {
        return Some("may not be in the loopback range (127.0.0.0/8, ::1/128)");
    }
    let (link_local, ll_multicast) = match ip {
        IpAddr::V4(v4) => (v4.is_link_local(), v4.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            (seg[0] & 0xffc0 == 0xfe80, seg[0] == 0xff02)
        }
    };
    if link_local {
        return Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)");
    }
    if ll_multicast {
        return Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)");
    }
    None
}

fn validate_address(addr_type: &str, a: &str, path: String, causes: &mut Vec<Cause>) {
    match addr_type {
        "IPv4" | "IPv6" => {
            let ip = a.parse::<IpAddr>().ok().filter(|ip| {
                matches!(
                    (addr_type, ip),
                    ("IPv4", IpAddr::V4(_)) | ("IPv6", IpAddr::V6(_))
                )
            });
            match ip {
                None => causes.push((
                    path,
                    format!("Invalid value: {a:?}: must be a valid {addr_type} address"),
                )),
                Some(ip) => {
                    if let Some(msg) = special_ip(ip) {
                        causes.push((path, format!("Invalid value: {a:?}: {msg}")));
                    }
                }
            }
        }
        "IP" if a.parse::<IpAddr>().is_err() => {
            causes.push((
                path,
                format!("Invalid value: {a:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
            ));
        }
        "FQDN" => {
            if a.is_empty() {
                causes.push((path, "Required value".into()));
                return;
            }
            let name = a.strip_suffix('.').unwrap_or(a);
            if name.split('.').count() < 2 {
                causes.push((path.clone(), format!("Invalid value: {a:?}: should be a domain with at least two segments separated by dots")));
            }
            if !is_dns_subdomain(name) {
                for msg in name_errors(NameRule::Subdomain, name) {
                    causes.push((path.clone(), format!("Invalid value: {a:?}: {msg}")));
                }
            }
        }
        _ => {}
    }
}

fn validate_slice(obj: &Value, types: &[&str], causes: &mut Vec<Cause>) {
    let addr_type = obj["addressType"].as_str().unwrap_or("");
    if addr_type.is_empty() {
        causes.push(("addressType".into(), "Required value".into()));
    } else if !types.contains(&addr_type) {
        let list = types
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        causes.push((
            "addressType".into(),
            format!("Unsupported value: {addr_type:?}: supported values: {list}"),
        ));
    }
    let endpoints = obj["endpoints"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if endpoints.len() > MAX_ENDPOINTS {
        causes.push(too_many("endpoints".into(), endpoints.len(), MAX_ENDPOINTS));
    } else {
        for (i, ep) in endpoints.iter().enumerate() {
            let p = format!("endpoints[{i}]");
            let addrs = ep["addresses"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            if addrs.is_empty() {
                causes.push((
                    format!("{p}.addresses"),
                    "Required value: must contain at least 1 address".into(),
                ));
            } else if addrs.len() > MAX_ADDRESSES {
                causes.push(too_many(
                    format!("{p}.addresses"),
                    addrs.len(),
                    MAX_ADDRESSES,
                ));
            }
            for (j, a) in addrs.iter().enumerate() {
                validate_address(addr_type, &s(a), format!("{p}.addresses[{j}]"), causes);
            }
            if let Some(h) = ep["hostname"].as_str() {
                for msg in name_errors(NameRule::Label, h) {
                    causes.push((
                        format!("{p}.hostname"),
                        format!("Invalid value: {h:?}: {msg}"),
                    ));
                }
            }
        }
    }
    let ports = obj["ports"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if ports.len() > MAX_PORTS {
        causes.push(too_many("ports".into(), ports.len(), MAX_PORTS));
        return;
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = format!("ports[{i}]");
        let name = port["name"].as_str().unwrap_or("");
        if !name.is_empty() {
            for msg in name_errors(NameRule::Label, name) {
                causes.push((
                    format!("{p}.name"),
                    format!("Invalid value: {name:?}: {msg}"),
                ));
            }
        }
        if !names.insert(name.to_string()) {
            causes.push((format!("{p}.name"), format!("Duplicate value: {name:?}")));
        }
        match port["protocol"].as_str() {
            None => causes.push((format!("{p}.protocol"), "Required value".into())),
            Some("TCP" | "UDP" | "SCTP") => {}
            Some(other) => causes.push((
                format!("{p}.protocol"),
                format!(
                    "Unsupported value: {other:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
                ),
            )),
        }
        if let Some(ap) = port["appProtocol"].as_str() {
            if let Err(e) = validate_label_key(ap) {
                causes.push((
                    format!("{p}.appProtocol"),
                    format!("Invalid value: {ap:?}: {}", label_reason(&e)),
                ));
            }
        }
    }
}

/// Upstream `listWithMoreString`: at most three items, then how many more.
fn list_with_more(items: Vec<String>, count: usize) -> String {
    const MAX: usize = 3;
    let shown = items.into_iter().take(MAX).collect::<Vec<_>>().join(",");
    if count > MAX {
        format!("{shown} + {} more...", count - MAX)
    } else if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

impl Strategy for EndpointSliceStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<discovery::EndpointSlice>(obj)
    }

    /// The port defaults (name "", protocol TCP) are applied here, before validation on create
    /// too, because upstream defaults on decoding and validation requires the protocol.
    fn normalize(&self, obj: &mut Value) {
        if let Some(Value::Array(ports)) = obj.get_mut("ports") {
            for p in ports.iter_mut().filter_map(|p| p.as_object_mut()) {
                default_key(p, "name", json!(""));
                default_key(p, "protocol", json!("TCP"));
            }
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_slice(obj, &ADDRESS_TYPES, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        // The deprecated `IP` type stays valid on update; the generic path already validated the
        // object against the create rules, so only its address-type complaint is relaxed here.
        if new["addressType"] == "IP" {
            causes.retain(|(f, m)| !(f == "addressType" && m.starts_with("Unsupported value")));
            let mut again = Vec::new();
            validate_slice(new, &["FQDN", "IP", "IPv4", "IPv6"], &mut again);
            for c in again.into_iter().filter(|c| c.0 != "addressType") {
                if !causes.contains(&c) {
                    causes.push(c);
                }
            }
        }
        if old["addressType"] != new["addressType"] {
            causes.push((
                "addressType".into(),
                format!(
                    "Invalid value: {:?}: field is immutable",
                    s(&new["addressType"])
                ),
            ));
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("AddressType", "", 0),
            ("Ports", "", 0),
            ("Endpoints", "", 0),
            AGE,
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let ports = o["ports"].as_array().cloned().unwrap_or_default();
        let port_list = ports
            .iter()
            .map(|p| match (&p["port"], p["name"].as_str()) {
                (Value::Number(n), _) => n.to_string(),
                (_, Some(n)) if !n.is_empty() => n.to_string(),
                _ => "*".to_string(),
            })
            .collect();
        let addrs: Vec<String> = o["endpoints"]
            .as_array()
            .map(|eps| {
                eps.iter()
                    .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                    .map(|a| s(&a))
                    .collect()
            })
            .unwrap_or_default();
        let n_addrs = addrs.len();
        vec![
            name,
            json!(s(&o["addressType"])),
            json!(list_with_more(port_list, ports.len())),
            json!(list_with_more(addrs, n_addrs)),
            created,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes_of(obj: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        EndpointSliceStrategy.validate(obj, &mut c);
        c
    }

    #[test]
    fn address_type_is_required_and_known() {
        assert_eq!(
            causes_of(&json!({}))[0],
            ("addressType".to_string(), "Required value".to_string())
        );
        assert_eq!(
            causes_of(&json!({"addressType":"IP"}))[0].1,
            "Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
        );
    }

    #[test]
    fn endpoints_and_ports_are_checked() {
        let mut es = json!({"addressType":"IPv4",
            "endpoints":[{"addresses":["10.0.0.1"]},{"addresses":[]},{"addresses":["127.0.0.1","fe80::1"],"hostname":"A"}],
            "ports":[{"name":"http","port":80},{"name":"http","port":81,"protocol":"ICMP"}]});
        EndpointSliceStrategy.normalize(&mut es);
        let c = causes_of(&es);
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "endpoints[1].addresses",
                "endpoints[2].addresses[0]",
                "endpoints[2].addresses[1]",
                "endpoints[2].hostname",
                "ports[1].name",
                "ports[1].protocol"
            ],
            "{c:?}"
        );
        assert!(c[1].1.contains("loopback"));
        assert!(c[2].1.ends_with("must be a valid IPv4 address"));
    }

    #[test]
    fn address_type_is_immutable_and_table_lists_ports_and_addresses() {
        let mut c = Vec::new();
        EndpointSliceStrategy.validate_update(
            &json!({"addressType":"IPv4"}),
            &json!({"addressType":"IPv6"}),
            &mut c,
        );
        assert_eq!(c[0].1, "Invalid value: \"IPv6\": field is immutable");
        let es = json!({"metadata":{"name":"s"},"addressType":"IPv4",
            "endpoints":[{"addresses":["10.0.0.1","10.0.0.2"]},{"addresses":["10.0.0.3","10.0.0.4"]}],
            "ports":[{"port":80},{"name":"dns"}]});
        let cells = EndpointSliceStrategy.cells(&es, Utc::now());
        assert_eq!(cells[2], "80,dns");
        assert_eq!(cells[3], "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...");
        assert_eq!(cells.len(), EndpointSliceStrategy.columns().len());
    }
}
