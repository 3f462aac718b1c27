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
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let admin = User {
        name: "admin".into(),
        groups: vec!["system:masters".into()],
    };
    let auth = Arc::new(StaticTokens::new(vec![(TOKEN.into(), admin)]));
    (dir, router(store, auth, ServerOptions::default()))
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
