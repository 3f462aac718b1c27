//! Services (pkg/registry/core/service/strategy.go; the cluster IP allocator of its storage).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::ipalloc::{AllocError, Allocators, Owner};
use super::{decode_as, name_and_age, Cause, Column, NameRule, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;
use crate::resources;
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{int, or_none, s};
use crate::typed::{default_key, obj_mut};
use daas_apimachinery::validation as v;

#[derive(Debug)]
pub struct ServiceStrategy;

/// The REST shape of Services, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "Service",
    list_kind: "ServiceList",
    plural: "services",
    singular: "service",
    namespaced: true,
    short_names: &["svc"],
    categories: &["all"],
    subresources: &[Status, Proxy],
    has_spec: true,
    strategy: &ServiceStrategy,
};

#[async_trait]
impl Strategy for ServiceStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::Service>(obj)
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "type", json!("ClusterIP"));
        default_key(spec, "sessionAffinity", json!("None"));
        if let Some(Value::Array(ports)) = spec.get_mut("ports") {
            for p in ports.iter_mut().filter_map(|p| p.as_object_mut()) {
                default_key(p, "protocol", json!("TCP"));
                if let Some(port) = p.get("port").cloned() {
                    default_key(p, "targetPort", port);
                }
            }
        }
    }

    async fn reserve(
        &self,
        ctx: &Ctx,
        old: Option<&Value>,
        new: &mut Value,
        check_only: bool,
    ) -> ApiResult<()> {
        reserve_service(ctx, old, new, check_only).await
    }

    async fn release(&self, ctx: &Ctx, obj: &Value, keep: Option<&Value>) {
        release_service(ctx, obj, keep).await;
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_service(obj, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        validate_service_update(old, new, causes);
    }

    /// Type-dependent values the new type does not use are dropped when the update left them as
    /// they were (upstream dropTypeDependentFields), and allocated values an update leaves out
    /// are kept (upstream patchAllocatedValues).
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        if !new["spec"].is_object() {
            return;
        }
        drop_type_dependent_fields(old, new);
        let external = |s: &Value| s["type"].as_str() == Some("ExternalName");
        if external(&old["spec"]) || external(&new["spec"]) {
            return;
        }
        let empty = |v: &Value| v.is_null() || v.as_str() == Some("");
        if empty(&new["spec"]["clusterIP"]) && !empty(&old["spec"]["clusterIP"]) {
            new["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
        }
        if new["spec"]["clusterIPs"].is_null() && !old["spec"]["clusterIPs"].is_null() {
            new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
        }
        if !needs_node_ports(&old["spec"]) || !needs_node_ports(&new["spec"]) {
            return;
        }
        // Node ports of ports that stay (same port and protocol) are kept too.
        let olds = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
        if let Some(ports) = new["spec"]["ports"].as_array_mut() {
            for p in ports.iter_mut() {
                if !p["nodePort"].is_null() {
                    continue;
                }
                let same = olds.iter().find(|o| {
                    o["port"] == p["port"]
                        && o["protocol"].as_str().unwrap_or("TCP")
                            == p["protocol"].as_str().unwrap_or("TCP")
                });
                if let Some(np) = same.map(|o| o["nodePort"].clone()).filter(|n| !n.is_null()) {
                    p["nodePort"] = np;
                }
            }
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Type", "", 0),
            ("Cluster-IP", "", 0),
            ("External-IP", "", 0),
            ("Port(s)", "", 0),
            AGE,
            ("Selector", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![
            name,
            json!(s(&o["spec"]["type"])),
            json!(or_none(s(&o["spec"]["clusterIP"]))),
            json!(external_ip_cell(o)),
            json!(service_ports(o)),
            created,
            json!(map_selector(&o["spec"]["selector"])),
        ]
    }
}

/// The External-IP column (upstream printers `getServiceExternalIP`, not wide): external IPs;
/// for a LoadBalancer also its ingress addresses (cut to 13 characters and `...` past 16), or
/// `<pending>` while it has none; for ExternalName the name.
fn external_ip_cell(o: &Value) -> String {
    let external: Vec<String> = o["spec"]["externalIPs"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    match o["spec"]["type"].as_str().unwrap_or("ClusterIP") {
        "ClusterIP" | "NodePort" => or_none(external.join(",")),
        "LoadBalancer" => {
            let mut lb: String = o["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .filter(|v| !v.is_empty())
                        .or_else(|| i["hostname"].as_str().filter(|v| !v.is_empty()))
                })
                .collect::<Vec<_>>()
                .join(",");
            if lb.len() > 16 {
                lb = format!("{}...", lb.chars().take(13).collect::<String>());
            }
            let all: Vec<String> = lb
                .split(',')
                .filter(|a| !a.is_empty())
                .map(String::from)
                .chain(external)
                .collect();
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => s(&o["spec"]["externalName"]),
        _ => "<unknown>".into(),
    }
}

/// Does a Service of this spec get node ports (NodePort, and LoadBalancer unless
/// `allocateLoadBalancerNodePorts` is false)?
fn needs_node_ports(spec: &Value) -> bool {
    match spec["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => spec["allocateLoadBalancerNodePorts"].as_bool() != Some(false),
        _ => false,
    }
}

/// Upstream dropTypeDependentFields: on a type change, a cluster IP (to ExternalName) or node
/// ports (to a type without them) the request left as stored are cleared, so that they are
/// released rather than refused by validation.
fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    let spec = &old["spec"];
    if new["spec"]["type"] == "ExternalName" && spec["type"] != "ExternalName" {
        if let Some(m) = new["spec"].as_object_mut() {
            if m.get("clusterIP") == spec.get("clusterIP") {
                m.remove("clusterIP");
            }
            if m.get("clusterIPs") == spec.get("clusterIPs") || !m.contains_key("clusterIP") {
                m.remove("clusterIPs");
            }
        }
    }
    if needs_node_ports(spec) && !needs_node_ports(&new["spec"]) {
        let olds: HashSet<i64> = held_ports(spec).into_iter().map(i64::from).collect();
        if let Some(ports) = new["spec"]["ports"].as_array_mut() {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort")
                    .and_then(Value::as_i64)
                    .is_some_and(|n| olds.contains(&n))
                {
                    p.remove("nodePort");
                }
            }
        }
    }
}

/// The cluster IP a stored Service holds a reservation for.
fn held_ip(spec: &Value) -> Option<Ipv4Addr> {
    if spec["type"] == "ExternalName" {
        return None;
    }
    spec["clusterIP"].as_str().and_then(|s| s.parse().ok())
}

/// The node ports a stored Service holds reservations for.
fn held_ports(spec: &Value) -> Vec<u16> {
    if !needs_node_ports(spec) {
        return Vec::new();
    }
    let mut out: Vec<u16> = spec["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| p["nodePort"].as_u64())
        .filter_map(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Public view of what a Service holds, for the repair controller.
pub fn service_holdings(svc: &Value) -> (Option<Ipv4Addr>, Vec<u16>) {
    (held_ip(&svc["spec"]), held_ports(&svc["spec"]))
}

fn allocators(ctx: &Ctx) -> Allocators {
    Allocators::new(ctx.store.clone(), ctx.service_ranges.clone())
}

fn owner_of(obj: &Value) -> Owner {
    let md = &obj["metadata"];
    Owner::new(
        md["namespace"].as_str().unwrap_or(""),
        md["name"].as_str().unwrap_or(""),
        md["uid"].as_str().unwrap_or(""),
    )
}

enum Taken {
    Ip(Ipv4Addr),
    Port(u16),
}

fn alloc_failure(what: &str, e: AllocError) -> ApiError {
    match e {
        AllocError::Store(e) => e.into(),
        e => ApiError::internal(format!("failed to allocate a {what}: {e}")),
    }
}

/// Reserve the cluster IP and node ports `new` needs and `old` does not hold yet, filling in
/// the ones to allocate; on failure nothing stays reserved.
async fn reserve_service(
    ctx: &Ctx,
    old: Option<&Value>,
    new: &mut Value,
    check_only: bool,
) -> ApiResult<()> {
    let span = tracing::debug_span!("service_allocation", check_only);
    let _guard = span.enter();
    let alloc = allocators(ctx);
    let owner = owner_of(new);
    let mut taken = Vec::new();
    let res = reserve_into(&alloc, &owner, old, new, check_only, &mut taken).await;
    if res.is_err() && !check_only {
        for t in taken {
            let r = match t {
                Taken::Ip(ip) => alloc.release_ip(ip, &owner.uid).await,
                Taken::Port(p) => alloc.release_port(p, &owner.uid).await,
            };
            if let Err(e) = r {
                tracing::warn!(error = %e, "releasing a reservation of a failed Service write");
            }
        }
    }
    res
}

async fn reserve_into(
    alloc: &Allocators,
    owner: &Owner,
    old: Option<&Value>,
    new: &mut Value,
    check_only: bool,
    taken: &mut Vec<Taken>,
) -> ApiResult<()> {
    let def = &resources::SERVICES;
    let name = owner.name.clone();
    if new["spec"]["type"] == "ExternalName" {
        return Ok(());
    }
    let old_ip = old.and_then(|o| held_ip(&o["spec"]));
    let old_ports = old.map(|o| held_ports(&o["spec"])).unwrap_or_default();
    match new["spec"]["clusterIP"].as_str().unwrap_or("") {
        "None" => {
            if new["spec"]["clusterIPs"].is_null() {
                new["spec"]["clusterIPs"] = json!(["None"]);
            }
        }
        "" => {
            let ip = alloc
                .allocate_ip(owner, check_only)
                .await
                .map_err(|e| alloc_failure("serviceIP", e))?;
            if !check_only {
                taken.push(Taken::Ip(ip));
            }
            new["spec"]["clusterIP"] = json!(ip.to_string());
            new["spec"]["clusterIPs"] = json!([ip.to_string()]);
        }
        requested => {
            let requested = requested.to_string();
            let invalid = |e: AllocError| {
                ApiError::invalid(
                    def,
                    &name,
                    vec![(
                        "spec.clusterIPs".into(),
                        format!(
                            "Invalid value: []string{{{requested:?}}}: failed to allocate IP {requested}: {e}"
                        ),
                    )],
                )
            };
            let ip: Ipv4Addr = requested.parse().map_err(|_| {
                invalid(AllocError::IpNotInRange {
                    ip: requested.clone(),
                    range: alloc.ranges.cidr(),
                })
            })?;
            if old_ip != Some(ip) {
                match alloc.reserve_ip(ip, owner, check_only).await {
                    Ok(()) => {
                        if !check_only {
                            taken.push(Taken::Ip(ip));
                        }
                    }
                    Err(AllocError::Store(e)) => return Err(e.into()),
                    Err(e) => return Err(invalid(e)),
                }
            }
            if new["spec"]["clusterIPs"].is_null() {
                new["spec"]["clusterIPs"] = json!([requested]);
            }
        }
    }
    if !needs_node_ports(&new["spec"]) {
        return Ok(());
    }
    let Some(ports) = new["spec"]["ports"].as_array_mut() else {
        return Ok(());
    };
    // Requested node ports first; one node port may serve one port number over several
    // protocols.
    let mut mine: HashSet<u16> = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let Some(np) = p["nodePort"].as_i64().filter(|n| *n != 0) else {
            continue;
        };
        let held = u16::try_from(np).ok();
        if held.is_some_and(|n| old_ports.contains(&n) || mine.contains(&n)) {
            continue;
        }
        match alloc.reserve_port(np, owner, check_only).await {
            Ok(()) => {
                if let Some(n) = held {
                    mine.insert(n);
                    if !check_only {
                        taken.push(Taken::Port(n));
                    }
                }
            }
            Err(AllocError::Store(e)) => return Err(e.into()),
            Err(e) => {
                return Err(ApiError::invalid(
                    def,
                    &name,
                    vec![(
                        format!("spec.ports[{i}].nodePort"),
                        format!("Invalid value: {np}: {e}"),
                    )],
                ))
            }
        }
    }
    let mut skip: HashSet<u16> = mine.clone();
    skip.extend(old_ports.iter().copied());
    for i in 0..ports.len() {
        if ports[i]["nodePort"].as_i64().is_some_and(|n| n != 0) {
            continue;
        }
        let port = ports[i]["port"].clone();
        let shared = ports
            .iter()
            .filter(|o| o["port"] == port)
            .find_map(|o| o["nodePort"].as_i64().filter(|n| *n != 0));
        let np = match shared {
            Some(n) => n,
            None => {
                let n = alloc
                    .allocate_port(owner, &skip, check_only)
                    .await
                    .map_err(|e| alloc_failure("nodePort", e))?;
                skip.insert(n);
                if !check_only {
                    taken.push(Taken::Port(n));
                }
                i64::from(n)
            }
        };
        ports[i]["nodePort"] = json!(np);
    }
    Ok(())
}

/// Give back what `obj` holds and `keep` does not.
async fn release_service(ctx: &Ctx, obj: &Value, keep: Option<&Value>) {
    let alloc = allocators(ctx);
    let uid = obj["metadata"]["uid"].as_str().unwrap_or("");
    let (ip, ports) = service_holdings(obj);
    let (kip, kports) = keep.map(service_holdings).unwrap_or_default();
    if let Some(ip) = ip.filter(|ip| Some(*ip) != kip) {
        if let Err(e) = alloc.release_ip(ip, uid).await {
            tracing::warn!(%ip, error = %e, "releasing a Service cluster IP (repair will retry)");
        }
    }
    for p in ports.into_iter().filter(|p| !kports.contains(p)) {
        if let Err(e) = alloc.release_port(p, uid).await {
            tracing::warn!(port = p, error = %e, "releasing a Service node port (repair will retry)");
        }
    }
}

const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Upstream ValidateService (the parts that do not need the allocators).
fn validate_service(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    if !TYPES.contains(&ty) {
        causes.push((
            "spec.type".into(),
            format!(
                "Unsupported value: {ty:?}: supported values: {}",
                TYPES.map(|t| format!("{t:?}")).join(", ")
            ),
        ));
    }
    let cluster_ip = spec["clusterIP"].as_str().unwrap_or("");
    let headless = cluster_ip == "None";
    let ports = spec["ports"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if ports.is_empty() && !headless && ty != "ExternalName" {
        causes.push(("spec.ports".into(), "Required value".into()));
    }
    if ty == "ExternalName" {
        let name = spec["externalName"].as_str().unwrap_or("");
        if name.is_empty() {
            causes.push(("spec.externalName".into(), "Required value".into()));
        } else {
            for m in v::dns1123_subdomain(name.strip_suffix('.').unwrap_or(name)) {
                causes.push((
                    "spec.externalName".into(),
                    format!("Invalid value: {name:?}: {m}"),
                ));
            }
        }
        if !cluster_ip.is_empty() {
            causes.push((
                "spec.clusterIP".into(),
                "Forbidden: may not be set for ExternalName services".into(),
            ));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = p["name"].as_str().unwrap_or("");
        if name.is_empty() {
            if ports.len() > 1 {
                causes.push((format!("{path}.name"), "Required value".into()));
            }
        } else {
            for m in v::dns1123_label(name) {
                causes.push((
                    format!("{path}.name"),
                    format!("Invalid value: {name:?}: {m}"),
                ));
            }
            if !names.insert(name.to_string()) {
                causes.push((format!("{path}.name"), format!("Duplicate value: {name:?}")));
            }
        }
        let port = p["port"].as_i64().unwrap_or(0);
        for m in v::port_num(port) {
            causes.push((
                format!("{path}.port"),
                format!("Invalid value: {port}: {m}"),
            ));
        }
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        if !["SCTP", "TCP", "UDP"].contains(&proto) {
            causes.push((
                format!("{path}.protocol"),
                format!(
                    "Unsupported value: {proto:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
                ),
            ));
        } else if !seen.insert((port, proto.to_string())) {
            causes.push((
                path.clone(),
                format!("Duplicate value: {{\"port\":{port},\"protocol\":{proto:?}}}"),
            ));
        }
        match &p["targetPort"] {
            Value::Number(n) => {
                for m in v::port_num(n.as_i64().unwrap_or(0)) {
                    causes.push((
                        format!("{path}.targetPort"),
                        format!("Invalid value: {n}: {m}"),
                    ));
                }
            }
            Value::String(s) => {
                for m in v::port_name(s) {
                    causes.push((
                        format!("{path}.targetPort"),
                        format!("Invalid value: {s:?}: {m}"),
                    ));
                }
            }
            _ => {}
        }
        if let Some(np) = p["nodePort"].as_i64().filter(|n| *n != 0) {
            if ty == "ClusterIP" || ty == "ExternalName" {
                causes.push((
                    format!("{path}.nodePort"),
                    format!("Forbidden: may not be used when `type` is '{ty}'"),
                ));
            } else {
                for m in v::port_num(np) {
                    causes.push((
                        format!("{path}.nodePort"),
                        format!("Invalid value: {np}: {m}"),
                    ));
                }
            }
        }
    }
    if !cluster_ip.is_empty() && !headless && cluster_ip.parse::<std::net::IpAddr>().is_err() {
        causes.push((
            "spec.clusterIPs[0]".into(),
            format!("Invalid value: {cluster_ip:?}: must be empty, 'None', or a valid IP address"),
        ));
    }
    match spec["sessionAffinity"].as_str() {
        None | Some("None") => {}
        Some("ClientIP") => {
            if let Some(t) = spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].as_i64() {
                if !(1..=86400).contains(&t) {
                    causes.push((
                        "spec.sessionAffinityConfig.clientIP.timeoutSeconds".into(),
                        format!("Invalid value: {t}: must be greater than 0 and less than 86400"),
                    ));
                }
            }
        }
        Some(other) => causes.push((
            "spec.sessionAffinity".into(),
            format!("Unsupported value: {other:?}: supported values: \"ClientIP\", \"None\""),
        )),
    }
    if let Some(sel) = spec["selector"].as_object() {
        for (k, val) in sel {
            for m in v::qualified_name(k) {
                causes.push(("spec.selector".into(), format!("Invalid value: {k:?}: {m}")));
            }
            for m in v::label_value(val.as_str().unwrap_or("")) {
                causes.push((
                    "spec.selector".into(),
                    format!("Invalid value: {}: {m}", shown(val)),
                ));
            }
        }
    }
    if let Some(p) = spec["externalTrafficPolicy"].as_str() {
        if ty != "NodePort" && ty != "LoadBalancer" {
            causes.push((
                "spec.externalTrafficPolicy".into(),
                format!("Invalid value: {p:?}: may only be set when `type` is 'NodePort' or 'LoadBalancer'"),
            ));
        } else if p != "Cluster" && p != "Local" {
            causes.push((
                "spec.externalTrafficPolicy".into(),
                format!("Unsupported value: {p:?}: supported values: \"Cluster\", \"Local\""),
            ));
        }
    }
}

/// Upstream ValidateServiceUpdate: an allocated cluster IP stays, except across ExternalName.
fn validate_service_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let (os, ns) = (&old["spec"], &new["spec"]);
    let external = |s: &Value| s["type"].as_str() == Some("ExternalName");
    if external(os) || external(ns) {
        return;
    }
    let old_ip = os["clusterIP"].as_str().unwrap_or("");
    let new_ip = ns["clusterIP"].as_str().unwrap_or("");
    if !old_ip.is_empty() && old_ip != new_ip {
        causes.push((
            "spec.clusterIPs[0]".into(),
            format!("Invalid value: [{new_ip:?}]: may not change once set"),
        ));
    } else if !os["clusterIPs"].is_null()
        && !ns["clusterIPs"].is_null()
        && os["clusterIPs"] != ns["clusterIPs"]
    {
        causes.push((
            "spec.clusterIPs".into(),
            format!(
                "Invalid value: {}: may not change once set",
                ns["clusterIPs"]
            ),
        ));
    }
}

fn map_selector(sel: &Value) -> String {
    match sel.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", s(v)))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let out: Vec<String> = ports
        .iter()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", int(&p["port"])),
                None => format!("{}/{proto}", int(&p["port"])),
            }
        })
        .collect();
    or_none(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults_and_cells() {
        let mut svc = json!({"metadata":{"name":"web"},"spec":{"ports":[{"port":80},{"port":30,"nodePort":31000,"protocol":"UDP"}],"selector":{"app":"web"}}});
        ServiceStrategy.defaults(&mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        let c = ServiceStrategy.cells(&svc, Utc::now());
        assert_eq!(c[4], "80/TCP,30:31000/UDP");
        assert_eq!(c[6], "app=web");
        assert_eq!(c[3], "<none>");
    }

    #[test]
    fn external_ip_column_shows_load_balancer_ingress() {
        let mut lb = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(external_ip_cell(&lb), "<pending>");
        lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
        assert_eq!(external_ip_cell(&lb), "192.0.2.1");
        lb["spec"]["externalIPs"] = json!(["198.51.100.1"]);
        assert_eq!(external_ip_cell(&lb), "192.0.2.1,198.51.100.1");
        lb["status"]["loadBalancer"]["ingress"] = json!([{"ip": "192.0.2.1"}, {"ip": "192.0.2.2"}]);
        lb["spec"]["externalIPs"] = Value::Null;
        assert_eq!(external_ip_cell(&lb), "192.0.2.1,192...");
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(external_ip_cell(&ext), "db.example.com");
    }
}
