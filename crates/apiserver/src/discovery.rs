//! Discovery documents: /version, /api, /apis and per-group-version resource lists (the OpenAPI
//! documents are in `openapi`).

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::negotiation::Format;
use crate::resources;

pub const KUBE_MINOR: &str = "33";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0+daas.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_doc(g: &str) -> Value {
    let versions: Vec<Value> = resources::group_versions(g)
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(json!(null));
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": versions, "preferredVersion": preferred})
}

pub fn group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": resources::groups().iter().map(|g| group_doc(g)).collect::<Vec<_>>(),
    })
}

pub fn group(g: &str) -> Option<Value> {
    if resources::groups().contains(&g) {
        Some(group_doc(g))
    } else {
        None
    }
}

pub fn resource_list(group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = resources::in_group_version(group, version)
        .flat_map(|r| r.discovery_entries())
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

/// The aggregated discovery versions served (`apidiscovery.k8s.io/<v>`), preferred first.
pub const AGGREGATED_VERSIONS: [&str; 2] = ["v2", "v2beta1"];

/// Content-Type of an aggregated discovery document of `apidiscovery.k8s.io/<version>` in
/// `format` (JSON or protobuf).
pub fn aggregated_content_type(format: Format, version: &str) -> String {
    let media = if format == Format::Protobuf {
        crate::negotiation::PROTOBUF
    } else {
        crate::negotiation::JSON
    };
    format!("{media};g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// One legacy discovery entry (`APIResource`) as an aggregated `APIResourceDiscovery`; its
/// subresources (the entries named `<plural>/<sub>`) are folded into it.
fn resource_discovery(group: &str, version: &str, entries: &[Value]) -> Option<Value> {
    let main = entries.first()?;
    let kind_of = |e: &Value| -> Value {
        json!({
            "group": e.get("group").and_then(Value::as_str).unwrap_or(group),
            "version": e.get("version").and_then(Value::as_str).unwrap_or(version),
            "kind": e["kind"],
        })
    };
    let scope = if main["namespaced"].as_bool().unwrap_or(false) {
        "Namespaced"
    } else {
        "Cluster"
    };
    let mut r = json!({
        "resource": main["name"],
        "responseKind": kind_of(main),
        "scope": scope,
        "singularResource": main["singularName"],
        "verbs": main["verbs"],
    });
    for field in ["shortNames", "categories"] {
        if main[field].as_array().is_some_and(|a| !a.is_empty()) {
            r[field] = main[field].clone();
        }
    }
    let subs: Vec<Value> = entries[1..]
        .iter()
        .filter_map(|e| {
            let (_, sub) = e["name"].as_str()?.split_once('/')?;
            Some(json!({"subresource": sub, "responseKind": kind_of(e), "verbs": e["verbs"]}))
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = Value::Array(subs);
    }
    Some(r)
}

/// One group's `APIGroupDiscovery`: its served versions by priority, each with its resources
/// sorted by name. Every version is `Current` (all are served by this process, CRD-backed ones
/// included, read from the live resource set).
fn group_discovery(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut resources: Vec<Value> = resources::in_group_version(group, v)
                .filter_map(|r| resource_discovery(group, v, &r.discovery_entries()))
                .collect();
            resources.sort_by(|a, b| {
                a["resource"]
                    .as_str()
                    .unwrap_or("")
                    .cmp(b["resource"].as_str().unwrap_or(""))
            });
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({"metadata": metadata, "versions": versions})
}

/// The aggregated discovery document (`APIGroupDiscoveryList` of `apidiscovery.k8s.io/<version>`)
/// for `/api` (`core` true: the legacy group alone) or `/apis` (every named group, in the order
/// of the legacy group list).
pub fn aggregated(core: bool, version: &str) -> Value {
    let items: Vec<Value> = if core {
        vec![group_discovery("", &["v1"])]
    } else {
        resources::groups()
            .iter()
            .map(|g| group_discovery(g, &resources::group_versions(g)))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// The ETag of a discovery document: a hex SHA-512 of its JSON (as upstream computes it).
pub fn etag(body: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA512, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `/api` (`core`) or `/apis` as an aggregated discovery document, when the `Accept` header asks
/// for one (else `None`: the caller serves the legacy document), as JSON or protobuf
/// (`k8s\0` + `runtime.Unknown`, as client-go asks first). Headers as upstream: the
/// negotiated Content-Type with its `g`/`v`/`as` parameters, `Vary: Accept`, a quoted `ETag`,
/// `Cache-Control: public`; an `If-None-Match` equal to the ETag is `304 Not Modified`.
pub fn serve_aggregated(core: bool, headers: &HeaderMap) -> Option<Response> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (format, version) = crate::negotiation::aggregated_discovery(accept)?;
    let _span = tracing::debug_span!("aggregated_discovery", core, version, ?format).entered();
    let doc = aggregated(core, version);
    let json = serde_json::to_vec(&doc).unwrap_or_default();
    // One tag per document whatever its encoding (upstream hashes the JSON form).
    let quoted = format!("\"{}\"", etag(&json));
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == quoted);
    let common = [
        (header::ETAG, quoted),
        (header::VARY, "Accept".to_string()),
        (header::CACHE_CONTROL, "public".to_string()),
    ];
    if cached {
        return Some((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let body = match format {
        Format::Protobuf => match daas_apimachinery::protobuf::encode_object(&doc) {
            Ok(b) => b,
            Err(e) => {
                return Some(
                    crate::error::ApiError::internal(format!(
                        "encoding the discovery document: {e}"
                    ))
                    .into_response(),
                )
            }
        },
        _ => json,
    };
    Some(
        (
            StatusCode::OK,
            common,
            [(
                header::CONTENT_TYPE,
                aggregated_content_type(format, version),
            )],
            body,
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_shapes() {
        assert_eq!(
            group_list()["groups"][1]["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        assert_eq!(resource_list("", "v1")["groupVersion"], "v1");
        assert!(group("apps").is_some());
        assert!(group("batch").is_some());
        assert_eq!(
            group("autoscaling").expect("autoscaling")["preferredVersion"]["groupVersion"],
            "autoscaling/v2"
        );
    }
}
