//! The encoded-object cache GETs are served from (`daas_apiserver::objectcache`), through the real
//! router: a read right after a write returns the write (through this server and straight to the
//! store, as another master's), and a cached object is served only to identities that may read it.

use std::sync::Arc;

use daas_apiserver::ServerOptions;
use daas_store::Store;
use serde_json::{json, Value};

use crate::common::{call_as, tenancy_env_with, ADMIN, ALICE, JSON, MERGE, NODE};

async fn env() -> (tempfile::TempDir, Arc<dyn Store>, axum::Router) {
    tenancy_env_with(ServerOptions::default()).await
}

async fn get(app: &axum::Router, token: &str, path: &str) -> (u16, Value) {
    call_as(app, token, "GET", path, JSON, Value::Null).await
}

#[tokio::test]
async fn a_read_right_after_a_write_returns_the_write() {
    let (_d, _store, app) = env().await;
    let path = "/api/v1/namespaces/u-alice/configmaps/c";
    let (code, body) = call_as(
        &app,
        ALICE,
        "POST",
        "/api/v1/namespaces/u-alice/configmaps",
        JSON,
        json!({"metadata": {"name": "c"}, "data": {"n": "0"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    for i in 1..=40 {
        // Read twice (the second from the cache), then write and read at once.
        for _ in 0..2 {
            let (code, body) = get(&app, ALICE, path).await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(body["data"]["n"], (i - 1).to_string(), "{body}");
        }
        let (code, written) = call_as(
            &app,
            ALICE,
            "PATCH",
            path,
            MERGE,
            json!({"data": {"n": i.to_string()}}),
        )
        .await;
        assert_eq!(code, 200, "{written}");
        let (code, body) = get(&app, ALICE, path).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["data"]["n"], i.to_string(), "read {i} after its write");
        assert_eq!(
            body["metadata"]["resourceVersion"],
            written["metadata"]["resourceVersion"]
        );
    }
    // Deleted: gone at once.
    let (code, body) = call_as(&app, ALICE, "DELETE", path, JSON, Value::Null).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(&app, ALICE, path).await;
    assert_eq!(code, 404, "{body}");
}

#[tokio::test]
async fn a_write_through_another_master_is_seen_by_the_next_read() {
    let (_d, store, app) = env().await;
    let path = "/api/v1/namespaces/u-bob/configmaps/c";
    let (code, body) = call_as(
        &app,
        ADMIN,
        "POST",
        "/api/v1/namespaces/u-bob/configmaps",
        JSON,
        json!({"metadata": {"name": "c"}, "data": {"n": "0"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let key = "/registry/core/configmaps/u-bob/c";
    for i in 1..=40 {
        let (code, body) = get(&app, ADMIN, path).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["data"]["n"], (i - 1).to_string(), "{body}");
        // Straight to the store: this server's cache learns of it only through its watch.
        let kv = store.get(key).await.unwrap().expect("stored");
        let mut obj: Value = serde_json::from_slice(&kv.value).unwrap();
        obj["data"]["n"] = json!(i.to_string());
        let kv = store
            .update(key, &serde_json::to_vec(&obj).unwrap(), kv.mod_revision)
            .await
            .unwrap();
        let (code, body) = get(&app, ADMIN, path).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            body["data"]["n"],
            i.to_string(),
            "read {i} after the store write"
        );
        assert_eq!(
            body["metadata"]["resourceVersion"],
            kv.mod_revision.to_string()
        );
    }
    store.delete(key, None).await.unwrap();
    let (code, body) = get(&app, ADMIN, path).await;
    assert_eq!(code, 404, "{body}");
}

#[tokio::test]
async fn a_cached_object_is_served_only_to_who_may_read_it() {
    let (_d, _store, app) = env().await;
    for (ns, name) in [("u-bob", "bob-secret"), ("kube-system", "root-secret")] {
        let (code, body) = call_as(
            &app,
            ADMIN,
            "POST",
            &format!("/api/v1/namespaces/{ns}/secrets"),
            JSON,
            json!({"metadata": {"name": name}, "stringData": {"k": "v"}}),
        )
        .await;
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = call_as(
        &app,
        ADMIN,
        "POST",
        "/api/v1/nodes",
        JSON,
        json!({"metadata": {"name": "n2"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    for _ in 0..3 {
        // The admin's reads fill the cache ...
        for path in [
            "/api/v1/namespaces/u-bob/secrets/bob-secret",
            "/api/v1/namespaces/kube-system/secrets/root-secret",
            "/api/v1/nodes/n2",
        ] {
            let (code, body) = get(&app, ADMIN, path).await;
            assert_eq!(code, 200, "{body}");
        }
        // ... and are still refused to the user-tier staker of another namespace ...
        let (code, body) = get(&app, ALICE, "/api/v1/namespaces/u-bob/secrets/bob-secret").await;
        assert_eq!(code, 403, "{body}");
        assert_eq!(body["reason"], "Forbidden");
        assert!(body.get("data").is_none(), "{body}");
        // ... and to a node no pod of which uses the Secret.
        let (code, body) = get(
            &app,
            NODE,
            "/api/v1/namespaces/kube-system/secrets/root-secret",
        )
        .await;
        assert_eq!(code, 403, "{body}");
        assert_eq!(body["reason"], "Forbidden");
        assert!(body.get("data").is_none(), "{body}");
        // A node reads Nodes, but may not change another one.
        let (code, body) = call_as(
            &app,
            NODE,
            "PATCH",
            "/api/v1/nodes/n2",
            MERGE,
            json!({"metadata": {"labels": {"x": "y"}}}),
        )
        .await;
        assert_eq!(code, 403, "{body}");
        // Unauthenticated: 401.
        let (code, _) = get(&app, "", "/api/v1/namespaces/u-bob/secrets/bob-secret").await;
        assert_eq!(code, 401);
    }
}
