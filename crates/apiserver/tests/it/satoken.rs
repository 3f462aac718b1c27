//! Bound service-account tokens through the router: TokenRequest, authenticating with the token,
//! invalidation when the bound pod or the ServiceAccount goes, TokenReview and OIDC discovery.

use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use common::{call, JSON, TOKEN};
use daas_apiserver::satoken::{self, ServiceAccountAuthenticator, ServiceAccountTokens};
use daas_apiserver::{router, Authenticator, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Both(StaticTokens, ServiceAccountAuthenticator);

#[async_trait]
impl Authenticator for Both {
    async fn authenticate(&self, bearer: &str) -> Option<User> {
        match self.0.authenticate(bearer).await {
            Some(u) => Some(u),
            None => self.1.authenticate(bearer).await,
        }
    }
}

/// Bearer tokens of the kubelets of nodes `a` and `b`.
const NODE_A: &str = "node-a-token";
const NODE_B: &str = "node-b-token";

fn node_user(n: &str) -> User {
    User {
        name: format!("system:node:{n}"),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        ..Default::default()
    }
}

async fn app() -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let admin = User {
        name: "admin".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    };
    let key = satoken::generate_key().unwrap();
    let tokens =
        Arc::new(ServiceAccountTokens::new(&key, satoken::DEFAULT_ISSUER, vec![]).unwrap());
    let auth = Arc::new(Both(
        StaticTokens::new(vec![
            (TOKEN.into(), admin),
            (NODE_A.into(), node_user("a")),
            (NODE_B.into(), node_user("b")),
        ]),
        ServiceAccountAuthenticator::new(store.clone(), tokens.clone()),
    ));
    let opts = ServerOptions {
        service_accounts: Some(tokens),
        ..Default::default()
    };
    let app = router(store, auth, opts);
    // The serviceaccount controller's `default` account (no controllers run here).
    let (code, sa) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        JSON,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
    )
    .await;
    assert_eq!(code, 201, "{sa}");
    (dir, app)
}

/// A request with `bearer` (or none); code, content type and body.
async fn call_as(
    app: &axum::Router,
    bearer: Option<&str>,
    method: &str,
    path: &str,
) -> (u16, String, Value) {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        code,
        ct,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A JSON POST with `bearer`; code and body.
async fn post_as(app: &axum::Router, bearer: &str, path: &str, body: Value) -> (u16, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", JSON)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn request_token(app: &axum::Router, ns: &str, sa: &str, spec: Value) -> (u16, Value) {
    call(
        app,
        "POST",
        &format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"),
        JSON,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
    )
    .await
}

async fn make_pod(app: &axum::Router, name: &str, sa: &str) -> Value {
    let (code, pod) = call(
        app,
        "POST",
        "/api/v1/namespaces/default/pods",
        JSON,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    assert_eq!(code, 201, "{pod}");
    pod
}

#[tokio::test]
async fn bound_token_works_until_its_pod_is_deleted() {
    let (_d, app) = app().await;
    let pod = make_pod(&app, "p1", "default").await;
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let (code, tr) = request_token(
        &app,
        "default",
        "default",
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p1", "uid": uid}}),
    )
    .await;
    assert_eq!(code, 201, "{tr}");
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    assert_eq!(tr["spec"]["audiences"], json!([satoken::DEFAULT_ISSUER]));
    assert!(tr["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let token = tr["status"]["token"].as_str().unwrap().to_string();

    // Authenticated: discovery answers 200, resources are the authorizer's to refuse (403, not 401).
    let (code, _, _) = call_as(&app, Some(&token), "GET", "/api").await;
    assert_eq!(code, 200);
    let (code, _, body) = call_as(
        &app,
        Some(&token),
        "GET",
        "/api/v1/namespaces/default/secrets",
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("User \"system:serviceaccount:default:default\""));

    // TokenReview shows the identity with the bound pod.
    let (code, rev) = call(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}),
    )
    .await;
    assert_eq!(code, 201, "{rev}");
    assert_eq!(rev["status"]["authenticated"], true, "{rev}");
    assert_eq!(
        rev["status"]["user"]["username"],
        "system:serviceaccount:default:default"
    );
    assert_eq!(
        rev["status"]["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(
        rev["status"]["user"]["extra"][satoken::EXTRA_POD_NAME],
        json!(["p1"])
    );
    assert_eq!(
        rev["status"]["user"]["extra"][satoken::EXTRA_POD_UID],
        json!([uid])
    );
    assert_eq!(rev["status"]["audiences"], json!([satoken::DEFAULT_ISSUER]));

    // The authenticated identity itself carries the uid and the pod extras (whoami).
    let req = Request::builder()
        .method("POST")
        .uri("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", JSON)
        .body(Body::from(
            r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
        ))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let who: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let info = &who["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:default:default");
    assert_eq!(info["uid"], rev["status"]["user"]["uid"]);
    assert!(!info["uid"].as_str().unwrap().is_empty(), "{who}");
    assert_eq!(info["extra"][satoken::EXTRA_POD_NAME], json!(["p1"]));
    assert_eq!(info["extra"][satoken::EXTRA_POD_UID], json!([uid]));

    // Deleting the pod invalidates the token.
    let (code, _) = call(
        &app,
        "DELETE",
        "/api/v1/namespaces/default/pods/p1?gracePeriodSeconds=0",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _, _) = call_as(&app, Some(&token), "GET", "/api").await;
    assert_eq!(code, 401);
    let (_, rev) = call(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        json!({"kind": "TokenReview", "spec": {"token": token}}),
    )
    .await;
    assert_eq!(rev["status"]["authenticated"], false);
    assert!(
        rev["status"]["error"]
            .as_str()
            .unwrap()
            .contains("pod default/p1 has been deleted"),
        "{rev}"
    );
}

#[tokio::test]
async fn deleted_service_account_and_wrong_audience_do_not_authenticate() {
    let (_d, app) = app().await;
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        JSON,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
    )
    .await;
    assert_eq!(code, 201);
    let (_, tr) = request_token(&app, "default", "robot", json!({})).await;
    let token = tr["status"]["token"].as_str().unwrap().to_string();
    let (code, _, _) = call_as(&app, Some(&token), "GET", "/api").await;
    assert_eq!(code, 200);

    // A token for another audience is not for this API server.
    let (code, tr) = request_token(&app, "default", "robot", json!({"audiences": ["vault"]})).await;
    assert_eq!(code, 201);
    let vault = tr["status"]["token"].as_str().unwrap().to_string();
    let (code, _, _) = call_as(&app, Some(&vault), "GET", "/api").await;
    assert_eq!(code, 401);
    // ...but a TokenReview for that audience accepts it.
    let (_, rev) = call(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        json!({"kind": "TokenReview", "spec": {"token": vault, "audiences": ["vault", "other"]}}),
    )
    .await;
    assert_eq!(rev["status"]["authenticated"], true, "{rev}");
    assert_eq!(rev["status"]["audiences"], json!(["vault"]));

    // A tampered token is refused.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let (code, _, _) = call_as(&app, Some(&tampered), "GET", "/api").await;
    assert_eq!(code, 401);

    // Deleting and re-creating the ServiceAccount (new uid) invalidates its tokens.
    let (code, _) = call(
        &app,
        "DELETE",
        "/api/v1/namespaces/default/serviceaccounts/robot",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _, _) = call_as(&app, Some(&token), "GET", "/api").await;
    assert_eq!(code, 401);
    call(
        &app,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        JSON,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
    )
    .await;
    let (code, _, _) = call_as(&app, Some(&token), "GET", "/api").await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn token_request_validation() {
    let (_d, app) = app().await;
    let (code, st) = request_token(
        &app,
        "default",
        "default",
        json!({"expirationSeconds": 599}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .contains("spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"));
    let (code, _) = request_token(
        &app,
        "default",
        "default",
        json!({"expirationSeconds": 600}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, st) = request_token(&app, "default", "nobody", json!({})).await;
    assert_eq!(code, 404, "{st}");
    let (code, st) = request_token(
        &app,
        "default",
        "default",
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}}),
    )
    .await;
    assert_eq!(code, 400, "{st}");
    make_pod(&app, "p2", "default").await;
    let (code, st) = request_token(
        &app,
        "default",
        "default",
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p2", "uid": "not-the-uid"}}),
    )
    .await;
    assert_eq!(code, 409, "{st}");
    let (code, _) = request_token(
        &app,
        "default",
        "default",
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "missing"}}),
    )
    .await;
    assert_eq!(code, 404);
    // A pod running as another service account cannot get this one's token bound to it.
    call(
        &app,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        JSON,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}}),
    )
    .await;
    let (code, st) = request_token(
        &app,
        "default",
        "other",
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p2"}}),
    )
    .await;
    assert_eq!(code, 400, "{st}");
    // TokenReview needs a token; other verbs are not allowed.
    let (code, _) = call(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        json!({"kind": "TokenReview", "spec": {}}),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = call(
        &app,
        "GET",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 405);
    // The admin's own (static) token reviews as authenticated for the API audience.
    let (_, rev) = call(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        json!({"kind": "TokenReview", "spec": {"token": TOKEN}}),
    )
    .await;
    assert_eq!(rev["status"]["authenticated"], true);
    assert_eq!(rev["status"]["user"]["username"], "admin");
    let (_, rev) = call(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        json!({"kind": "TokenReview", "spec": {"token": "nope"}}),
    )
    .await;
    assert_eq!(rev["status"]["authenticated"], false);
}

#[tokio::test]
async fn oidc_discovery_is_public() {
    let (_d, app) = app().await;
    for bearer in [None, Some(TOKEN)] {
        let (code, ct, doc) =
            call_as(&app, bearer, "GET", "/.well-known/openid-configuration").await;
        assert_eq!(code, 200);
        assert_eq!(ct, "application/json");
        assert_eq!(doc["issuer"], satoken::DEFAULT_ISSUER);
        assert_eq!(
            doc["jwks_uri"],
            format!("{}/openid/v1/jwks", satoken::DEFAULT_ISSUER)
        );
        assert_eq!(doc["response_types_supported"], json!(["id_token"]));
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
        let (code, ct, jwks) = call_as(&app, bearer, "GET", "/openid/v1/jwks").await;
        assert_eq!(code, 200);
        assert_eq!(ct, "application/jwk-set+json");
        assert_eq!(jwks["keys"][0]["kty"], "EC");
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
    }
    // A token's kid names the published key.
    let (_, tr) = request_token(&app, "default", "default", json!({})).await;
    let token = tr["status"]["token"].as_str().unwrap();
    let (_, _, jwks) = call_as(&app, None, "GET", "/openid/v1/jwks").await;
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], jwks["keys"][0]["kid"]);
    let (code, _, _) = call_as(&app, None, "POST", "/openid/v1/jwks").await;
    assert_eq!(code, 405);
}

#[tokio::test]
async fn without_an_issuer_there_is_no_token_endpoint() {
    let (_d, app) = common::app().await;
    let (code, _) = request_token(&app, "default", "default", json!({})).await;
    assert_eq!(code, 404);
    let (code, _, _) = call_as(&app, None, "GET", "/.well-known/openid-configuration").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn discovery_lists_token_request_and_token_review() {
    let (_d, app) = app().await;
    let (code, _, res) = call_as(&app, Some(TOKEN), "GET", "/apis/authentication.k8s.io/v1").await;
    assert_eq!(code, 200);
    let tr = res["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "tokenreviews")
        .unwrap();
    assert_eq!(tr["verbs"], json!(["create"]));
    assert_eq!(tr["namespaced"], false);
    let (_, _, core) = call_as(&app, Some(TOKEN), "GET", "/api/v1").await;
    let token = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .unwrap();
    assert_eq!(token["kind"], "TokenRequest");
    assert_eq!(token["group"], "authentication.k8s.io");
    assert_eq!(token["verbs"], json!(["create"]));
}

/// A pod named `name` using ServiceAccount `sa`, bound to node `node`.
async fn make_bound_pod(app: &axum::Router, name: &str, sa: &str, node: &str) -> Value {
    let (code, pod) = call(
        app,
        "POST",
        "/api/v1/namespaces/default/pods",
        JSON,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"serviceAccountName": sa, "nodeName": node,
                "containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
    assert_eq!(code, 201, "{pod}");
    pod
}

#[tokio::test]
async fn nodes_get_tokens_only_for_their_own_pods() {
    let (_d, app) = app().await;
    let (code, sa) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        JSON,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}}),
    )
    .await;
    assert_eq!(code, 201, "{sa}");
    let pa = make_bound_pod(&app, "pa", "default", "a").await;
    make_bound_pod(&app, "pb", "other", "b").await;
    let uid = pa["metadata"]["uid"].as_str().unwrap().to_string();
    let tr = |sa: &str, spec: Value| {
        (
            format!("/api/v1/namespaces/default/serviceaccounts/{sa}/token"),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
        )
    };
    let pod_ref = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid});

    // Node a, for its own pod with the pod's uid: a token bound to that pod.
    let (path, body) = tr("default", json!({"boundObjectRef": pod_ref("pa", &uid)}));
    let (code, out) = post_as(&app, NODE_A, &path, body).await;
    assert_eq!(code, 201, "{out}");
    let token = out["status"]["token"].as_str().unwrap().to_string();
    let (code, review) = call(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        JSON,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}),
    )
    .await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(review["status"]["authenticated"], true, "{review}");
    assert_eq!(
        review["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["pa"])
    );

    let refused = |code: u16, out: &Value, msg: &str| {
        assert_eq!(code, 403, "{out}");
        assert_eq!(out["reason"], "Forbidden", "{out}");
        assert!(out["message"].as_str().unwrap().contains(msg), "{out}");
    };
    // Unbound.
    let (path, body) = tr("default", json!({}));
    let (code, out) = post_as(&app, NODE_A, &path, body).await;
    refused(
        code,
        &out,
        "serviceaccounts \"default\" is forbidden: node requested token not bound to a pod",
    );
    // Bound to a Secret.
    let (path, body) = tr(
        "default",
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "x"}}),
    );
    let (code, out) = post_as(&app, NODE_A, &path, body).await;
    refused(code, &out, "node requested token not bound to a pod");
    // Without the pod's uid.
    let (path, body) = tr(
        "default",
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "pa"}}),
    );
    let (code, out) = post_as(&app, NODE_A, &path, body).await;
    refused(
        code,
        &out,
        "node requested token with a pod binding without a uid",
    );
    // Another uid (a deleted and recreated pod).
    let (path, body) = tr("default", json!({"boundObjectRef": pod_ref("pa", "0000")}));
    let (code, out) = post_as(&app, NODE_A, &path, body).await;
    refused(
        code,
        &out,
        "the UID in the bound object reference (0000) does not match the UID in record",
    );
    // Node b, for node a's pod (its SA `default` is not used by any pod on b): the graph refuses.
    let (path, body) = tr("default", json!({"boundObjectRef": pod_ref("pa", &uid)}));
    let (code, out) = post_as(&app, NODE_B, &path, body).await;
    refused(
        code,
        &out,
        "no relationship found between node 'b' and this object",
    );
    // Node a, for the SA of node b's pod: no pod on a uses it.
    let (path, body) = tr("other", json!({"boundObjectRef": pod_ref("pa", &uid)}));
    let (code, out) = post_as(&app, NODE_A, &path, body).await;
    refused(
        code,
        &out,
        "no relationship found between node 'a' and this object",
    );
    // Node b uses `default` too now, but asks for a token bound to node a's pod.
    make_bound_pod(&app, "pb2", "default", "b").await;
    let (path, body) = tr("default", json!({"boundObjectRef": pod_ref("pa", &uid)}));
    let (code, out) = post_as(&app, NODE_B, &path, body).await;
    refused(
        code,
        &out,
        "node requested token bound to a pod scheduled on a different node",
    );
    // Unauthenticated.
    let (path, body) = tr("default", json!({"boundObjectRef": pod_ref("pa", &uid)}));
    let (code, out) = post_as(&app, "no-such-token", &path, body).await;
    assert_eq!(code, 401, "{out}");
}

#[tokio::test]
async fn token_request_dry_run_signs_nothing_and_limits_are_upstream_errors() {
    let (_d, app) = app().await;
    let path = "/api/v1/namespaces/default/serviceaccounts/default/token";
    let tr = |spec: Value| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
    // A dry run answers with the request's shape and expiration but no token.
    let before = chrono::Utc::now();
    let (code, out) = call(
        &app,
        "POST",
        &format!("{path}?dryRun=All"),
        JSON,
        tr(json!({"audiences": ["vault"], "expirationSeconds": 3600})),
    )
    .await;
    assert_eq!(code, 201, "{out}");
    assert_eq!(out["kind"], "TokenRequest");
    assert_eq!(out["status"]["token"], "");
    assert_eq!(out["spec"]["audiences"], json!(["vault"]));
    assert_eq!(out["spec"]["expirationSeconds"], 3600);
    let exp: chrono::DateTime<chrono::Utc> = out["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let secs = (exp - before).num_seconds();
    assert!((3598..=3601).contains(&secs), "{secs}");
    // A dry run checks what a real request checks.
    let (code, st) = call(
        &app,
        "POST",
        &format!("{path}?dryRun=All"),
        JSON,
        tr(json!({"expirationSeconds": 599})),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["message"], "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes");
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/nobody/token?dryRun=All",
        JSON,
        tr(json!({})),
    )
    .await;
    assert_eq!(code, 404);
    // Only `All` is a dry run.
    let (code, st) = call(
        &app,
        "POST",
        &format!("{path}?dryRun=Server"),
        JSON,
        tr(json!({})),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["message"], "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Server\"}: supported values: \"All\"");
    assert_eq!(
        st["details"]["causes"][0]["reason"],
        "FieldValueNotSupported"
    );
    // The upper bound: 2^32 seconds is allowed, one more is "too long" (value not shown).
    let (code, st) = call(
        &app,
        "POST",
        path,
        JSON,
        tr(json!({"expirationSeconds": 4294967297u64})),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["message"], "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Too long: may not be longer than 4294967296");
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueTooLong");
    assert_eq!(
        st["details"]["causes"][0]["field"],
        "spec.expirationSeconds"
    );
    let (code, st) = call(
        &app,
        "POST",
        path,
        JSON,
        tr(json!({"expirationSeconds": 4294967296u64})),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    // A real request's token authenticates; that service account may not ask for another's,
    // dry run or not, and without credentials nobody may.
    let (_, real) = request_token(&app, "default", "default", json!({})).await;
    let sa_token = real["status"]["token"].as_str().unwrap().to_string();
    assert!(!sa_token.is_empty());
    call(
        &app,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        JSON,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}}),
    )
    .await;
    let (code, _, st) = call_as(
        &app,
        Some(&sa_token),
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/other/token?dryRun=All",
    )
    .await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "serviceaccounts \"other\" is forbidden: User \"system:serviceaccount:default:default\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\"");
    let (code, _, _) = call_as(&app, None, "POST", &format!("{path}?dryRun=All")).await;
    assert_eq!(code, 401);
}
