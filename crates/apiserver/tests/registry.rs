//! Per-kind strategy validation through the router: object names, config keys, immutable
//! ConfigMaps/Secrets, and the Namespace status subresource.

mod common;

use common::{app, call, JSON, MERGE};
use serde_json::{json, Value};

fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap_or("").to_string(),
                        c["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn names_follow_the_kinds_dns_rule() {
    let (_d, app) = app().await;
    // ConfigMaps allow subdomains (dots, up to 253 characters).
    let dotted = format!("{}.{}", "a".repeat(70), "b".repeat(100));
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON,
        json!({"metadata": {"name": dotted}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON,
        json!({"metadata": {"name": "a".repeat(254)}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    assert!(
        causes(&st)[0]
            .1
            .ends_with("must be no more than 253 characters"),
        "{st}"
    );
    // Services and Namespaces need labels: no dots.
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/services",
        JSON,
        json!({"metadata": {"name": "web.v1"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(causes(&st)[0].1.contains("RFC 1123 label"), "{st}");
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "team.a"}}),
    )
    .await;
    assert_eq!(code, 422);
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/secrets",
        JSON,
        json!({"metadata": {"name": "tls.web"}}),
    )
    .await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn data_keys_must_be_config_keys() {
    let (_d, app) = app().await;
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON,
        json!({"metadata": {"name": "c"}, "data": {"ok.key": "1", "bad key": "2"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    let c = causes(&st);
    assert_eq!(c.len(), 1, "{st}");
    assert_eq!(c[0].0, "data[bad key]");
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert!(c[0]
        .1
        .contains("a valid config key must consist of alphanumeric characters"));
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/secrets",
        JSON,
        json!({"metadata": {"name": "s"}, "stringData": {"..": "x"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(causes(&st)[0].0, "data[..]");
}

#[tokio::test]
async fn immutable_config_maps_and_secrets_refuse_data_changes() {
    let (_d, app) = app().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, _) = call(
        &app,
        "POST",
        cms,
        JSON,
        json!({"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": true}),
    )
    .await;
    assert_eq!(code, 201);
    for patch in [
        json!({"data": {"a": "2"}}),
        json!({"binaryData": {"b": "eA=="}}),
        json!({"immutable": false}),
    ] {
        let (code, st) = call(
            &app,
            "PATCH",
            &format!("{cms}/frozen"),
            MERGE,
            patch.clone(),
        )
        .await;
        assert_eq!(code, 422, "{patch}: {st}");
        assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueForbidden");
        assert!(
            st["message"]
                .as_str()
                .unwrap()
                .contains("field is immutable when `immutable` is set"),
            "{st}"
        );
    }
    // Metadata may still change.
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{cms}/frozen"),
        MERGE,
        json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");

    let secrets = "/api/v1/namespaces/default/secrets";
    let (code, _) = call(
        &app,
        "POST",
        secrets,
        JSON,
        json!({"metadata": {"name": "frozen"}, "stringData": {"a": "1"}, "immutable": true}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{secrets}/frozen"),
        MERGE,
        json!({"stringData": {"a": "2"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(causes(&st)[0].0, "data");
    // A mutable secret may change its data, not its type.
    let (code, _) = call(
        &app,
        "POST",
        secrets,
        JSON,
        json!({"metadata": {"name": "open"}, "stringData": {"a": "1"}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = call(
        &app,
        "PATCH",
        &format!("{secrets}/open"),
        MERGE,
        json!({"stringData": {"a": "2"}}),
    )
    .await;
    assert_eq!(code, 200);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{secrets}/open"),
        MERGE,
        json!({"type": "kubernetes.io/tls"}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(causes(&st)[0].0, "type");
}

/// Upstream e2e "Namespaces should apply changes to a namespace status".
#[tokio::test]
async fn namespace_status_patch_keeps_metadata_changes() {
    let (_d, app) = app().await;
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "ns-status"}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, ns) = call(
        &app,
        "PATCH",
        "/api/v1/namespaces/ns-status/status",
        "application/strategic-merge-patch+json",
        json!({"metadata": {"annotations": {"e2e-patched-ns-status": "ns-status"}},
               "spec": {"finalizers": []},
               "status": {"conditions": [{"type": "StatusPatch", "status": "True", "reason": "E2E", "message": "patched"}]}}),
    )
    .await;
    assert_eq!(code, 200, "{ns}");
    assert_eq!(
        ns["metadata"]["annotations"]["e2e-patched-ns-status"],
        "ns-status"
    );
    assert_eq!(ns["status"]["conditions"][0]["type"], "StatusPatch");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let (_, got) = call(
        &app,
        "GET",
        "/api/v1/namespaces/ns-status",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        got["metadata"]["annotations"]["e2e-patched-ns-status"],
        "ns-status"
    );
    // A status write still leaves the main resource's spec alone and the main resource still
    // ignores status.
    let mut upd = got.clone();
    upd["status"]["conditions"][0]["message"] = json!("updated");
    let (code, out) = call(
        &app,
        "PUT",
        "/api/v1/namespaces/ns-status/status",
        JSON,
        upd,
    )
    .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"]["conditions"][0]["message"], "updated");
    let (code, out) = call(
        &app,
        "PATCH",
        "/api/v1/namespaces/ns-status",
        MERGE,
        json!({"status": {"phase": "Terminating"}}),
    )
    .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"]["phase"], "Active");
}
