//! Discovery documents: /version, /api, /apis, per-group-version resource lists, and the OpenAPI v3
//! index kubectl consults (it checks PATCH operations for the `fieldValidation` parameter to
//! decide on server-side validation).

use serde_json::{json, Map, Value};

use crate::resources::{self, ResourceDef};

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

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn all_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in resources::all() {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

pub fn openapi_v3_index() -> Value {
    let mut paths = Map::new();
    for (g, v) in all_group_versions() {
        let p = gv_path(g, v);
        let hash = fnv_hash(&openapi_v3_gv(g, v).to_string());
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

fn fnv_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn op(def: &ResourceDef, action: &str, params: &[&str]) -> Value {
    json!({
        "operationId": format!("{action}{}", def.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": def.group, "version": def.version, "kind": def.kind},
        "parameters": params.iter().map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}})).collect::<Vec<_>>(),
        "responses": {"200": {"description": "OK"}},
    })
}

/// OpenAPI v3 document for one group/version: the REST paths with their operations.
pub fn openapi_v3_gv(group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let write_params = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
    for def in resources::in_group_version(group, version) {
        let base = format!("/{}", gv_path(group, version));
        let coll = if def.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", def.plural)
        } else {
            format!("{base}/{}", def.plural)
        };
        paths.insert(
            coll.clone(),
            json!({
                "get": op(def, "list", &["labelSelector", "fieldSelector", "watch", "resourceVersion", "limit", "continue", "timeoutSeconds"]),
                "post": op(def, "post", &write_params),
                "delete": op(def, "deletecollection", &["labelSelector", "fieldSelector"]),
            }),
        );
        paths.insert(
            format!("{coll}/{{name}}"),
            json!({
                "get": op(def, "get", &["pretty"]),
                "put": op(def, "put", &write_params),
                "patch": op(def, "patch", &["dryRun", "fieldManager", "fieldValidation", "force", "pretty"]),
                "delete": op(def, "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": {}},
    })
}

/// Resolve `/openapi/v3/<gv path>` to its document.
pub fn openapi_v3_for_path(path: &str) -> Option<Value> {
    let p = path
        .trim_start_matches("/openapi/v3/")
        .trim_end_matches('/');
    all_group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == p)
        .map(|(g, v)| openapi_v3_gv(g, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_index_points_to_documents() {
        let idx = openapi_v3_index();
        let url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let path = url.split('?').next().unwrap();
        let doc = openapi_v3_for_path(path).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        assert!(openapi_v3_for_path("/openapi/v3/apis/nope/v1").is_none());
    }

    #[test]
    fn discovery_shapes() {
        assert_eq!(
            group_list()["groups"][1]["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        assert_eq!(resource_list("", "v1")["groupVersion"], "v1");
        assert!(group("apps").is_some());
        assert!(group("batch").is_none());
    }
}
