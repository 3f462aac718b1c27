//! Shared by the in-process router tests: an API server over a temporary sealed store with an admin
//! token, and JSON request helpers.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use daas_apiserver::{router, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const TOKEN: &str = "t0ken";
pub const JSON: &str = "application/json";
pub const MERGE: &str = "application/merge-patch+json";

/// A bootstrapped API server whose only caller is a cluster admin holding [`TOKEN`].
pub async fn app() -> (tempfile::TempDir, axum::Router) {
    let (dir, _, app) = app_with_store().await;
    (dir, app)
}

/// [`app`] with its store, for writes straight to the store (as another master's) and for
/// more servers over it ([`admin_router`]).
pub async fn app_with_store() -> (tempfile::TempDir, Arc<dyn Store>, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let app = admin_router(&store);
    default_service_account(&app, "default").await;
    (dir, store, app)
}

/// One more API server over `store` (its own caches), for the admin holding [`TOKEN`].
pub fn admin_router(store: &Arc<dyn Store>) -> axum::Router {
    let admin = User {
        name: "admin".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    };
    let auth = Arc::new(StaticTokens::new(vec![(TOKEN.into(), admin)]));
    router(store.clone(), auth, ServerOptions::default())
}

/// The `default` ServiceAccount of `ns`, as the serviceaccount controller makes it (pods need it;
/// no controllers run in these tests).
pub async fn default_service_account(app: &axum::Router, ns: &str) {
    let sa = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "default"}});
    let (code, out) = call(
        app,
        "POST",
        &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
        JSON,
        sa,
    )
    .await;
    assert_eq!(code, 201, "{out}");
}

/// One request as the admin; the answer's code and JSON body (null when it is not JSON).
pub async fn call_accept(
    app: &axum::Router,
    method: &str,
    path: &str,
    ct: &str,
    accept: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", ct)
        .header("accept", accept)
        .body(match body {
            Some(b) => Body::from(serde_json::to_vec(&b).unwrap()),
            None => Body::empty(),
        })
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let code = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        code.as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// [`call_accept`] accepting JSON; a null `body` sends no body.
pub async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    ct: &str,
    body: Value,
) -> (u16, Value) {
    let body = (!body.is_null()).then_some(body);
    call_accept(app, method, path, ct, JSON, body).await
}

/// One GET as the admin with extra request headers; the answer's code, headers and raw body.
pub async fn get_with_headers(
    app: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder()
        .method("GET")
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, headers, bytes.to_vec())
}

/// Open a watch (`path` with `watch=true`, best with a `timeoutSeconds`) as the admin; the
/// events are read with [`watch_events`] once the stream ends.
pub async fn watch_open(app: &axum::Router, path: &str) -> axum::response::Response {
    let req = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(req).await.unwrap()
}

/// The events of a watch response, read until its stream ends.
pub async fn watch_events(resp: axum::response::Response) -> Vec<Value> {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// Tokens of the identities of [`tenancy_app`].
pub const ADMIN: &str = "admin-token";
pub const ALICE: &str = "alice-token";
pub const NODE: &str = "node-token";

/// An authenticated user with `groups`.
pub fn user(name: &str, groups: &[&str]) -> User {
    User {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

/// One request holding `token` (empty: anonymous) with content type `ct`; the answer's code and
/// JSON body (null when it is not JSON). A null `body` sends none.
pub async fn call_as(
    app: &axum::Router,
    token: &str,
    method: &str,
    path: &str,
    ct: &str,
    body: Value,
) -> (u16, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ct);
    if !token.is_empty() {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(serde_json::to_vec(&body).unwrap())
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A bootstrapped API server over a fresh store for an admin ([`ADMIN`]), the user-tier tenant
/// alice ([`ALICE`], namespace `u-alice`) and node `n1` ([`NODE`]), with the user namespaces
/// `u-alice` and `u-bob` labelled and bound as the master makes them.
pub async fn tenancy_app() -> (tempfile::TempDir, axum::Router) {
    tenancy_app_with(ServerOptions::default()).await
}

/// [`tenancy_app`] with these server options (e.g. a node proxy).
pub async fn tenancy_app_with(opts: ServerOptions) -> (tempfile::TempDir, axum::Router) {
    let (dir, _store, app) = tenancy_env_with(opts).await;
    (dir, app)
}

/// [`tenancy_app_with`], also returning the store under the server (to write as another master
/// would, or to read what the host sees).
pub async fn tenancy_env_with(
    opts: ServerOptions,
) -> (tempfile::TempDir, Arc<dyn Store>, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let auth = Arc::new(StaticTokens::new(vec![
        (ADMIN.into(), user("admin", &["system:masters"])),
        (
            ALICE.into(),
            user(
                "daas:user:0xa11ce",
                &[
                    "daas:users",
                    "daas:namespace:u-alice",
                    "system:authenticated",
                ],
            ),
        ),
        (
            NODE.into(),
            user("system:node:n1", &["system:nodes", "system:authenticated"]),
        ),
    ]));
    let app = router(store.clone(), auth, opts);
    for ns in ["u-alice", "u-bob"] {
        let ns_obj = serde_json::json!({"metadata": {"name": ns,
            "labels": {"k3s-daas.io/tier": "user"}}});
        let (code, body) = call_as(&app, ADMIN, "POST", "/api/v1/namespaces", JSON, ns_obj).await;
        assert_eq!(code, 201, "{body}");
        let binding = daas_apiserver::rbac::user_namespace_binding(ns);
        let path = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings");
        let (code, body) = call_as(&app, ADMIN, "POST", &path, JSON, binding).await;
        assert_eq!(code, 201, "{body}");
    }
    (dir, store, app)
}
