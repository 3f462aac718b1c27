//! Aggregated discovery (`apidiscovery.k8s.io/v2`, `v2beta1`) on `/api` and `/apis`: shape, live
//! CRD-backed resources, ETag/304 and the Accept fallbacks client-go and kubectl rely on.

use crate::common;

use common::{app, call, get_with_headers, JSON};
use serde_json::{json, Value};

const V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const V2BETA1: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
/// What kubectl sends first (aggregated v2, then v2beta1, then the legacy document).
const KUBECTL: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
/// client-go with protobuf enabled: the protobuf form first, then JSON.
const CLIENT_GO_PB: &str = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
const PB_V2: &str =
    "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

async fn aggregated(
    app: &axum::Router,
    path: &str,
    accept: &str,
) -> (axum::http::HeaderMap, Value) {
    let (code, headers, body) = get_with_headers(app, path, &[("accept", accept)]).await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    (headers, serde_json::from_slice(&body).unwrap())
}

fn group<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"].as_str().unwrap_or("") == name)
}

fn resource<'a>(version: &'a Value, name: &str) -> &'a Value {
    version["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == name)
        .unwrap_or_else(|| panic!("no {name} in {version}"))
}

#[tokio::test]
async fn core_group_is_served_aggregated_on_api() {
    let (_d, app) = app().await;
    let (headers, doc) = aggregated(&app, "/api", KUBECTL).await;
    assert_eq!(headers["content-type"], V2);
    assert_eq!(headers["vary"], "Accept");
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the legacy group on /api");
    assert!(items[0]["metadata"].get("name").is_none());
    let v1 = &items[0]["versions"][0];
    assert_eq!(v1["version"], "v1");
    assert_eq!(v1["freshness"], "Current");
    let pods = resource(v1, "pods");
    assert_eq!(pods["scope"], "Namespaced");
    assert_eq!(pods["singularResource"], "pod");
    assert_eq!(
        pods["responseKind"],
        json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["categories"], json!(["all"]));
    assert!(pods["verbs"].as_array().unwrap().contains(&json!("watch")));
    let subs = pods["subresources"].as_array().unwrap();
    let eviction = subs
        .iter()
        .find(|s| s["subresource"] == "eviction")
        .unwrap();
    assert_eq!(
        eviction["responseKind"],
        json!({"group": "policy", "version": "v1", "kind": "Eviction"})
    );
    assert_eq!(eviction["verbs"], json!(["create"]));
    let status = subs.iter().find(|s| s["subresource"] == "status").unwrap();
    assert_eq!(status["responseKind"]["kind"], "Pod");
    assert_eq!(resource(v1, "nodes")["scope"], "Cluster");
    let sa = resource(v1, "serviceaccounts");
    let token = sa["subresources"].as_array().unwrap();
    assert_eq!(token[0]["subresource"], "token");
    assert_eq!(token[0]["responseKind"]["group"], "authentication.k8s.io");
    // Resources come sorted by name; subresource-less kinds carry no subresources field.
    let names: Vec<&str> = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(resource(v1, "configmaps").get("subresources").is_none());
}

#[tokio::test]
async fn every_group_version_resource_of_the_legacy_documents_is_in_apis() {
    let (_d, app) = app().await;
    let (_, doc) = aggregated(&app, "/apis", V2).await;
    let (_, legacy) = call(&app, "GET", "/apis", JSON, Value::Null).await;
    let legacy_groups = legacy["groups"].as_array().unwrap();
    let items = doc["items"].as_array().unwrap();
    // Same groups, same order (core is on /api, not here).
    let names: Vec<&Value> = items.iter().map(|g| &g["metadata"]["name"]).collect();
    let legacy_names: Vec<&Value> = legacy_groups.iter().map(|g| &g["name"]).collect();
    assert_eq!(names, legacy_names);
    for g in legacy_groups {
        let name = g["name"].as_str().unwrap();
        let agg = group(&doc, name).unwrap();
        // Versions in the preferred order of the legacy APIGroup.
        let versions: Vec<&Value> = g["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["version"])
            .collect();
        let agg_versions: Vec<&Value> = agg["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["version"])
            .collect();
        assert_eq!(versions, agg_versions, "{name}");
        for v in agg["versions"].as_array().unwrap() {
            let gv = format!("/apis/{name}/{}", v["version"].as_str().unwrap());
            let (_, list) = call(&app, "GET", &gv, JSON, Value::Null).await;
            for r in list["resources"].as_array().unwrap() {
                let rname = r["name"].as_str().unwrap();
                match rname.split_once('/') {
                    None => {
                        let a = resource(v, rname);
                        assert_eq!(a["verbs"], r["verbs"], "{gv} {rname}");
                        assert_eq!(a["responseKind"]["kind"], r["kind"]);
                    }
                    Some((parent, sub)) => {
                        let subs = resource(v, parent)["subresources"].as_array().unwrap();
                        assert!(subs.iter().any(|s| s["subresource"] == sub), "{gv} {rname}");
                    }
                }
            }
        }
    }
    let apps = group(&doc, "apps").unwrap();
    let deploy = resource(&apps["versions"][0], "deployments");
    let scale = deploy["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subresource"] == "scale")
        .unwrap();
    assert_eq!(
        scale["responseKind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );
}

#[tokio::test]
async fn v2beta1_and_accept_fallbacks() {
    let (_d, app) = app().await;
    let (headers, doc) = aggregated(&app, "/apis", V2BETA1).await;
    assert_eq!(headers["content-type"], V2BETA1);
    assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    // client-go's protobuf-first header: the protobuf form, which decodes to the JSON document,
    // under the same ETag.
    let (json_headers, json_doc) = aggregated(&app, "/apis", V2).await;
    for path in ["/api", "/apis"] {
        let (code, headers, body) = get_with_headers(&app, path, &[("accept", CLIENT_GO_PB)]).await;
        assert_eq!(code, 200);
        assert_eq!(headers["content-type"], PB_V2);
        assert!(body.starts_with(b"k8s\0"), "{path}");
        let decoded = daas_apimachinery::protobuf::decode_object(&body).unwrap();
        let (_, mut want) = aggregated(&app, path, V2).await;
        // The JSON form's `creationTimestamp: null` has no protobuf counterpart.
        for g in want["items"].as_array_mut().unwrap() {
            g["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("creationTimestamp");
        }
        assert_eq!(decoded, want, "{path}");
    }
    let (_, headers, _) = get_with_headers(&app, "/apis", &[("accept", PB_V2)]).await;
    assert_eq!(headers["etag"], json_headers["etag"]);
    assert_eq!(json_doc["kind"], "APIGroupDiscoveryList");
    // Plain JSON, an unknown aggregated version, or JSON preferred by q: the legacy document.
    for accept in [
        "application/json",
        "",
        "application/json;g=apidiscovery.k8s.io;v=v9;as=APIGroupDiscoveryList",
        "application/json;q=0.9,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.5",
        "application/yaml;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    ] {
        let (code, headers, body) = get_with_headers(&app, "/apis", &[("accept", accept)]).await;
        assert_eq!(code, 200, "{accept}");
        assert_eq!(headers["content-type"], "application/json", "{accept}");
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["kind"], "APIGroupList", "{accept}");
    }
    let (code, headers, body) =
        get_with_headers(&app, "/api", &[("accept", "application/json")]).await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "application/json");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["kind"], "APIVersions");
}

#[tokio::test]
async fn etag_gives_304_until_the_document_changes() {
    let (_d, app) = app().await;
    let (headers, _) = aggregated(&app, "/apis", V2).await;
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 130,
        "{etag}"
    );
    assert_eq!(headers["cache-control"], "public");
    let (code, h, body) =
        get_with_headers(&app, "/apis", &[("accept", V2), ("if-none-match", &etag)]).await;
    assert_eq!(code, 304);
    assert!(body.is_empty());
    assert_eq!(h["etag"].to_str().unwrap(), etag);
    // A stale tag gets the document; the v2beta1 document has its own tag.
    let (code, _, _) = get_with_headers(
        &app,
        "/apis",
        &[("accept", V2), ("if-none-match", "\"0A\"")],
    )
    .await;
    assert_eq!(code, 200);
    let (h, _) = aggregated(&app, "/apis", V2BETA1).await;
    assert_ne!(h["etag"].to_str().unwrap(), etag);
    // A new CRD changes the document and its tag.
    create_crd(&app).await;
    let (code, h, _) =
        get_with_headers(&app, "/apis", &[("accept", V2), ("if-none-match", &etag)]).await;
    assert_eq!(code, 200);
    assert_ne!(h["etag"].to_str().unwrap(), etag);
}

fn crd() -> Value {
    let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.disco.example.com"},
        "spec": {
            "group": "disco.example.com", "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                      "shortNames": ["gd"], "categories": ["all", "toys"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": schema}},
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema},
                 "subresources": {"status": {}}},
                {"name": "v1alpha1", "served": false, "storage": false, "schema": {"openAPIV3Schema": schema}},
            ]
        }
    })
}

async fn create_crd(app: &axum::Router) {
    let (code, body) = call(app, "POST", CRDS, JSON, crd()).await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test]
async fn a_crd_appears_live_and_disappears() {
    let (_d, app) = app().await;
    let (_, doc) = aggregated(&app, "/apis", V2).await;
    assert!(group(&doc, "disco.example.com").is_none());
    create_crd(&app).await;
    let (_, doc) = aggregated(&app, "/apis", V2).await;
    let g = group(&doc, "disco.example.com").expect("the CRD's group is discovered at once");
    let versions: Vec<&str> = g["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1", "v1beta1"], "served versions by priority");
    let v1 = &g["versions"][0];
    assert_eq!(v1["freshness"], "Current");
    let gadgets = resource(v1, "gadgets");
    assert_eq!(gadgets["scope"], "Cluster");
    assert_eq!(gadgets["singularResource"], "gadget");
    assert_eq!(gadgets["shortNames"], json!(["gd"]));
    assert_eq!(gadgets["categories"], json!(["all", "toys"]));
    assert_eq!(
        gadgets["responseKind"],
        json!({"group": "disco.example.com", "version": "v1", "kind": "Gadget"})
    );
    assert_eq!(gadgets["subresources"][0]["subresource"], "status");
    assert!(resource(&g["versions"][1], "gadgets")
        .get("subresources")
        .is_none());

    let (code, _) = call(
        &app,
        "DELETE",
        &format!("{CRDS}/gadgets.disco.example.com"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (_, doc) = aggregated(&app, "/apis", V2).await;
    assert!(group(&doc, "disco.example.com").is_none());
}

#[tokio::test]
async fn unauthenticated_discovery_is_refused() {
    let (_d, app) = app().await;
    let req = axum::http::Request::builder()
        .uri("/apis")
        .header("accept", V2)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
