//! /openapi/v2 and /openapi/v3 through the router: documents, content negotiation, ETags and
//! hashed v3 URLs as kubectl and client-go use them.

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{app, get_with_headers};
use serde_json::Value;
use tower::ServiceExt;

struct Answer {
    code: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn get(app: &axum::Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    let (code, headers, body) = get_with_headers(app, path, headers).await;
    Answer {
        code,
        headers,
        body,
    }
}

#[tokio::test]
async fn openapi_v3_index_documents_and_etags() {
    let (_d, app) = app().await;
    let index = get(&app, "/openapi/v3", &[]).await;
    assert_eq!(index.code, 200);
    let url = index.json()["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("core url")
        .to_string();
    let hash = url.split("hash=").nth(1).expect("hash").to_string();

    let doc = get(&app, &url, &[]).await;
    assert_eq!(doc.code, 200);
    assert_eq!(doc.header("etag"), format!("\"{hash}\""));
    assert_eq!(doc.header("cache-control"), "public, immutable");
    let v = doc.json();
    assert_eq!(v["openapi"], "3.0.0");
    let containers =
        &v["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert!(containers["description"]
        .as_str()
        .unwrap()
        .contains("containers"));
    assert_eq!(
        v["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]["x-kubernetes-action"],
        "patch"
    );

    // The same document without the hash is not cacheable forever but has the same ETag.
    let plain = get(&app, "/openapi/v3/api/v1", &[]).await;
    assert_eq!(plain.code, 200);
    assert_eq!(plain.header("etag"), format!("\"{hash}\""));
    assert_eq!(plain.header("cache-control"), "no-cache, private");
    assert_eq!(plain.body, doc.body);

    // If-None-Match with the current ETag: 304 without a body.
    let again = get(&app, &url, &[("if-none-match", &format!("\"{hash}\""))]).await;
    assert_eq!(again.code, 304);
    assert!(again.body.is_empty());
    let other = get(&app, &url, &[("if-none-match", "\"0000\"")]).await;
    assert_eq!(other.code, 200);

    // A stale hash is redirected to the current document.
    let stale = get(&app, "/openapi/v3/api/v1?hash=0123", &[]).await;
    assert_eq!(stale.code, 301);
    assert_eq!(stale.header("location"), url);

    // Every group/version in the index answers; unknown ones are 404.
    for (p, entry) in index.json()["paths"].as_object().unwrap() {
        let u = entry["serverRelativeURL"].as_str().unwrap();
        assert_eq!(get(&app, u, &[]).await.code, 200, "{p}");
    }
    assert_eq!(get(&app, "/openapi/v3/apis/nope/v1", &[]).await.code, 404);
    assert_eq!(get(&app, "/openapi/v4", &[]).await.code, 404);
}

#[tokio::test]
async fn openapi_v2_json_and_protobuf() {
    let (_d, app) = app().await;
    let json = get(&app, "/openapi/v2", &[("accept", "application/json")]).await;
    assert_eq!(json.code, 200);
    assert_eq!(json.header("content-type"), "application/json");
    let v = json.json();
    assert_eq!(v["swagger"], "2.0");
    let deploy = &v["definitions"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deploy["x-kubernetes-group-version-kind"][0],
        serde_json::json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert!(deploy.get("required").is_none());
    let op = &v["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
    assert_eq!(op["x-kubernetes-action"], "post");
    assert_eq!(op["operationId"], "createAppsV1NamespacedDeployment");
    assert!(op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["in"] == "body"
            && p["schema"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.Deployment"));

    let etag = json.header("etag").to_string();
    let cached = get(&app, "/openapi/v2", &[("if-none-match", &etag)]).await;
    assert_eq!(cached.code, 304);

    // client-go's discovery asks for gnostic protobuf and decodes it without a JSON fallback.
    let pb = get(
        &app,
        "/openapi/v2",
        &[(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )],
    )
    .await;
    assert_eq!(pb.code, 200);
    assert_eq!(
        pb.header("content-type"),
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    // Field 1 (swagger) is the string "2.0".
    assert_eq!(&pb.body[..5], &[0x0a, 3, b'2', b'.', b'0']);
    assert!(pb
        .body
        .windows(b"io.k8s.api.core.v1.Pod".len())
        .any(|w| w == b"io.k8s.api.core.v1.Pod"));
    assert_ne!(pb.header("etag"), etag);
}

#[tokio::test]
async fn openapi_needs_authentication() {
    let (_d, app) = app().await;
    let req = Request::builder()
        .uri("/openapi/v2")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
