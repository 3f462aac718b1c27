//! Discovery documents: /version, /api, /apis and per-group-version resource lists (the OpenAPI
//! documents are in `openapi`).

use serde_json::{json, Value};

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
        assert!(group("batch").is_none());
    }
}
