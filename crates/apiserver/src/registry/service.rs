//! Services (pkg/registry/core/service/strategy.go; the cluster IP allocator of its storage).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, NameRule, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;
use crate::resources;
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{int, or_none, s};
use crate::typed::{default_key, obj_mut};

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
    subresources: &[Status],
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

    async fn allocate(&self, ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
        allocate_cluster_ip(ctx, obj).await
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
        let ext = o["spec"]["externalIPs"]
            .as_array()
            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        vec![
            name,
            json!(s(&o["spec"]["type"])),
            json!(or_none(s(&o["spec"]["clusterIP"]))),
            json!(or_none(ext)),
            json!(service_ports(o)),
            created,
            json!(map_selector(&o["spec"]["selector"])),
        ]
    }
}

async fn allocate_cluster_ip(ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
    let def = &resources::SERVICES;
    let spec = &obj["spec"];
    if spec["type"] == "ExternalName" {
        return Ok(());
    }
    if let Some(ip) = spec["clusterIP"].as_str().filter(|s| !s.is_empty()) {
        if ip != "None" && ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(ApiError::invalid(
                def,
                obj["metadata"]["name"].as_str().unwrap_or(""),
                vec![(
                    "spec.clusterIP".into(),
                    format!("Invalid value: \"{ip}\": must be a valid IP address"),
                )],
            ));
        }
        return Ok(());
    }
    let existing = ctx.store.list(&def.prefix(None)).await?;
    let used: std::collections::HashSet<String> = existing
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter_map(|o| o["spec"]["clusterIP"].as_str().map(|s| s.to_string()))
        .collect();
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let ip = format!(
            "10.43.{}.{}",
            rng.gen_range(0..=255),
            rng.gen_range(2..=254)
        );
        if !used.contains(&ip) {
            obj["spec"]["clusterIP"] = json!(ip);
            obj["spec"]["clusterIPs"] = json!([ip]);
            return Ok(());
        }
    }
    Err(ApiError::internal(
        "failed to allocate a service IP: range is full",
    ))
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
    }
}
