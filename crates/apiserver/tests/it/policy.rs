//! ValidatingAdmissionPolicy with CEL, in process: policies, bindings with Deny / Warn, params
//! from a ConfigMap, matchConditions and compile errors.

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{app, call, JSON, TOKEN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const AR: &str = "/apis/admissionregistration.k8s.io/v1";

async fn post(app: &axum::Router, path: &str, body: Value) -> (u16, Value, Vec<String>) {
    post_with(app, path, &[], body).await
}

/// [`post`] with extra request headers (impersonation).
async fn post_with(
    app: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value, Vec<String>) {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", JSON);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        warnings,
    )
}

fn cm(name: &str, data: Value) -> Value {
    json!({"metadata": {"name": name}, "data": data})
}

#[tokio::test]
async fn policies_deny_warn_and_read_params() {
    let (_dir, app) = app().await;
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicies"),
        json!({"metadata": {"name": "max-keys"}, "spec": {
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]},
            "matchConditions": [{"name": "not-params", "expression": "object.metadata.name != 'exempt'"}],
            "validations": [
                {"expression": "size(object.data) <= int(params.data.max)",
                 "messageExpression": "'at most ' + params.data.max + ' keys'", "reason": "Forbidden"},
                {"expression": "!('secret' in object.data)", "message": "no secrets in config maps"},
            ]}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["failurePolicy"], "Fail");
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicybindings"),
        json!({"metadata": {"name": "max-keys-default"}, "spec": {
            "policyName": "max-keys",
            "paramRef": {"name": "limits", "namespace": "other", "parameterNotFoundAction": "Deny"},
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchExpressions": [{"key": "relaxed", "operator": "DoesNotExist"}]}},
        }}),
    )
    .await;
    assert_eq!(code, 201, "{body}");

    // No params yet: denied as the binding asks.
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, body, _) = post(&app, cms, cm("a", json!({"k": "v"}))).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no params found for policy binding"),
        "{body}"
    );

    // The params live in another namespace, outside the binding's matchResources.
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "other", "labels": {"relaxed": "yes"}}}),
    )
    .await;
    assert_eq!(code, 201);
    let other = "/api/v1/namespaces/other/configmaps";
    let (code, body, _) = post(&app, other, cm("limits", json!({"max": "2"}))).await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = post(&app, other, cm("c", json!({"secret": "x"}))).await;
    assert_eq!(code, 201, "{body}");

    let (code, body, _) = post(&app, cms, cm("a", json!({"k": "v"}))).await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = post(&app, cms, cm("b", json!({"k": "v", "l": "w", "m": "x"}))).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "configmaps \"b\" is forbidden: ValidatingAdmissionPolicy 'max-keys' with binding 'max-keys-default' denied request: at most 2 keys"
    );
    let (code, body, _) = post(&app, cms, cm("c", json!({"secret": "x"}))).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .ends_with("denied request: no secrets in config maps"));
    // matchConditions that do not hold: the policy does not apply.
    let (code, body, _) = post(&app, cms, cm("exempt", json!({"secret": "x"}))).await;
    assert_eq!(code, 201, "{body}");

    // A Warn binding: allowed, with a warning.
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicies"),
        json!({"metadata": {"name": "named"}, "spec": {
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]},
            "validations": [{"expression": "object.metadata.name.startsWith('cfg-')", "message": "names start with cfg-"}]}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicybindings"),
        json!({"metadata": {"name": "named-warn"}, "spec": {"policyName": "named", "validationActions": ["Warn", "Audit"]}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body, warnings) = post(
        &app,
        "/api/v1/namespaces/other/configmaps",
        cm("x", json!({})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        warnings,
        vec!["299 - \"Validation failed for ValidatingAdmissionPolicy 'named' with binding 'named-warn': names start with cfg-\""]
    );
}

#[tokio::test]
async fn policies_that_do_not_compile_are_refused() {
    let (_dir, app) = app().await;
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicies"),
        json!({"metadata": {"name": "broken"}, "spec": {
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]},
            "validations": [{"expression": "object.(("}]}}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.validations[0].expression"
    );
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicybindings"),
        json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "validationActions": ["Deny", "Warn"]}}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
}

/// Policies are cached with their CEL programs compiled once per generation: writes through
/// the server see a new binding at once and compile nothing; a policy changed straight in the
/// store (as another master would) is picked up from the store watch.
#[tokio::test]
async fn cached_policies_compile_once_and_follow_the_store() {
    let (_dir, store, app) = common::app_with_store().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let policy = |expr: &str| {
        json!({"metadata": {"name": "no-x"}, "spec": {
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]},
            "matchConditions": [{"name": "labelled", "expression": "has(object.metadata.labels) && 'checked' in object.metadata.labels"}],
            "validations": [{"expression": expr, "message": "no x"}]}})
    };
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicies"),
        policy("!('x' in object.data)"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let checked = |name: &str, key: &str| json!({"metadata": {"name": name, "labels": {"checked": "yes"}}, "data": {key: "1"}});
    // Warm: no binding yet, the policy does not apply.
    let (code, body, _) = post(&app, cms, checked("before", "x")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicybindings"),
        json!({"metadata": {"name": "no-x"}, "spec": {"policyName": "no-x", "validationActions": ["Deny"]}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = post(&app, cms, checked("at-once", "x")).await;
    assert_eq!(code, 422, "no stale window: {body}");
    // Further writes evaluate the cached programs: no compilation (the test runs on one thread).
    let before = daas_apiserver::policy::compilations();
    for i in 0..5 {
        let (code, body, _) = post(&app, cms, checked(&format!("ok{i}"), "y")).await;
        assert_eq!(code, 201, "{body}");
        let (code, _, _) = post(&app, cms, checked(&format!("no{i}"), "x")).await;
        assert_eq!(code, 422);
    }
    assert_eq!(
        daas_apiserver::policy::compilations(),
        before,
        "compiled per request"
    );
    // The policy rewritten in the store: now `y` is refused, `x` allowed.
    let key = "/registry/admissionregistration.k8s.io/validatingadmissionpolicies/no-x";
    let kv = store.get(key).await.unwrap().unwrap();
    let mut stored: Value = serde_json::from_slice(&kv.value).unwrap();
    stored["spec"]["validations"][0]["expression"] = json!("!('y' in object.data)");
    store
        .update(key, &serde_json::to_vec(&stored).unwrap(), kv.mod_revision)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut n = 0;
    loop {
        n += 1;
        let (code, _, _) = post(&app, cms, checked(&format!("x{n}"), "x")).await;
        if code == 201 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store change was never seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (code, _, _) = post(&app, cms, checked("y-now", "y")).await;
    assert_eq!(code, 422);
}

/// `request.userInfo.extra` in CEL: an empty map without extras, the impersonated extras with.
#[tokio::test]
async fn policies_see_user_extra() {
    let (_dir, app) = app().await;
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicies"),
        json!({"metadata": {"name": "no-readonly"}, "spec": {
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]},
            "validations": [
                {"expression": "!('scopes' in request.userInfo.extra) || !('readonly' in request.userInfo.extra['scopes'])",
                 "message": "read-only callers may not create config maps"},
            ]}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = post(
        &app,
        &format!("{AR}/validatingadmissionpolicybindings"),
        json!({"metadata": {"name": "no-readonly"}, "spec": {
            "policyName": "no-readonly", "validationActions": ["Deny"]}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let cms = "/api/v1/namespaces/default/configmaps";
    let masters = [
        ("impersonate-user", "jane"),
        ("impersonate-group", "system:masters"),
    ];
    let mut code = 0;
    let mut body = Value::Null;
    // The binding takes effect with the next policy load.
    for i in 0..50 {
        let mut h = masters.to_vec();
        h.push(("impersonate-extra-scopes", "readonly"));
        (code, body, _) = post_with(&app, cms, &h, cm(&format!("ro-{i}"), json!({}))).await;
        if code != 201 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("read-only callers may not create config maps"),
        "{body}"
    );
    let mut h = masters.to_vec();
    h.push(("impersonate-extra-scopes", "write"));
    let (code, body, _) = post_with(&app, cms, &h, cm("rw", json!({}))).await;
    assert_eq!(code, 201, "{body}");
    // No extras at all: the map is empty, the policy passes.
    let (code, body, _) = post(&app, cms, cm("plain", json!({}))).await;
    assert_eq!(code, 201, "{body}");
}
