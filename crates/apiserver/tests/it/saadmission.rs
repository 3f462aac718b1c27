//! The ServiceAccount admission plugin through the router: defaulting, automount and its
//! opt-outs, a missing ServiceAccount, the token volume's shape, no duplicate mount, mirror pods
//! and Pod Security "restricted" accepting the token volume.

use crate::common;

use common::{app, call, JSON};
use serde_json::{json, Value};

const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

async fn make_sa(app: &axum::Router, ns: &str, sa: Value) {
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

async fn create_pod(app: &axum::Router, ns: &str, pod: Value) -> (u16, Value) {
    call(
        app,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        JSON,
        pod,
    )
    .await
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

fn token_volumes(p: &Value) -> Vec<Value> {
    p["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["projected"].is_object())
        .cloned()
        .collect()
}

fn mounts_at(c: &Value) -> Vec<Value> {
    c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["mountPath"] == MOUNT)
        .cloned()
        .collect()
}

#[tokio::test]
async fn default_service_account_and_token_volume() {
    let (_d, app) = app().await;
    make_sa(
        &app,
        "default",
        json!({"metadata": {"name": "puller"},
        "imagePullSecrets": [{"name": "regcred"}]}),
    )
    .await;
    let (code, p) = create_pod(
        &app,
        "default",
        pod(
            "p",
            json!({
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert!(p["spec"]["imagePullSecrets"].is_null(), "{p}");
    let vols = token_volumes(&p);
    assert_eq!(vols.len(), 1, "{p}");
    let name = vols[0]["name"].as_str().unwrap();
    let suffix = name.strip_prefix("kube-api-access-").unwrap();
    assert_eq!(suffix.len(), 5, "{name}");
    assert!(
        suffix
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{name}"
    );
    let sources = &vols[0]["projected"]["sources"];
    assert_eq!(vols[0]["projected"]["defaultMode"], 420);
    assert_eq!(
        sources[0]["serviceAccountToken"],
        json!({"path": "token", "expirationSeconds": 3607})
    );
    assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
    assert_eq!(
        sources[1]["configMap"]["items"],
        json!([{"key": "ca.crt", "path": "ca.crt"}])
    );
    assert_eq!(
        sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(sources[2]["downwardAPI"]["items"][0]["path"], "namespace");
    for c in p["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p["spec"]["containers"].as_array().unwrap())
    {
        assert_eq!(
            mounts_at(c),
            vec![json!({"name": name, "readOnly": true, "mountPath": MOUNT})],
            "{c}"
        );
    }
    // Every pod gets its own random name.
    let (code, q) = create_pod(
        &app,
        "default",
        pod(
            "q",
            json!({"containers": [{"name": "a", "image": "busybox"}]}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{q}");
    assert!(token_volumes(&q)[0]["name"]
        .as_str()
        .unwrap()
        .starts_with("kube-api-access-"));
}

#[tokio::test]
async fn opting_out_on_the_pod_and_on_the_service_account() {
    let (_d, app) = app().await;
    make_sa(
        &app,
        "default",
        json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false}),
    )
    .await;
    let c = json!([{"name": "a", "image": "busybox"}]);

    // The pod opts out.
    let (code, p) = create_pod(
        &app,
        "default",
        pod(
            "off",
            json!({"automountServiceAccountToken": false, "containers": c}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{p}");
    assert!(token_volumes(&p).is_empty(), "{p}");
    assert!(mounts_at(&p["spec"]["containers"][0]).is_empty(), "{p}");
    // The ServiceAccount opts out, the pod does not say.
    let (code, p) = create_pod(
        &app,
        "default",
        pod(
            "sa-off",
            json!({"serviceAccountName": "quiet", "containers": c}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{p}");
    assert!(token_volumes(&p).is_empty(), "{p}");
    // The pod overrides the ServiceAccount.
    let (code, p) = create_pod(
        &app,
        "default",
        pod(
            "override",
            json!({"serviceAccountName": "quiet",
        "automountServiceAccountToken": true, "containers": c}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(token_volumes(&p).len(), 1, "{p}");
    assert_eq!(mounts_at(&p["spec"]["containers"][0]).len(), 1, "{p}");
}

#[tokio::test]
async fn no_duplicate_mount() {
    let (_d, app) = app().await;
    let (code, p) = create_pod(&app, "default", pod("own", json!({
        "volumes": [{"name": "mine", "emptyDir": {}}],
        "containers": [
            {"name": "a", "image": "busybox", "volumeMounts": [{"name": "mine", "mountPath": MOUNT}]},
            {"name": "b", "image": "busybox"}]}))).await;
    assert_eq!(code, 201, "{p}");
    let a = mounts_at(&p["spec"]["containers"][0]);
    assert_eq!(a, vec![json!({"name": "mine", "mountPath": MOUNT})], "{p}");
    let b = mounts_at(&p["spec"]["containers"][1]);
    assert_eq!(b.len(), 1, "{p}");
    assert!(b[0]["name"]
        .as_str()
        .unwrap()
        .starts_with("kube-api-access-"));
    // Every container mounting the path itself: no token volume at all.
    let (code, p) = create_pod(&app, "default", pod("all-own", json!({
        "volumes": [{"name": "mine", "emptyDir": {}}],
        "containers": [{"name": "a", "image": "busybox", "volumeMounts": [{"name": "mine", "mountPath": MOUNT}]}]}))).await;
    assert_eq!(code, 201, "{p}");
    assert!(token_volumes(&p).is_empty(), "{p}");
}

#[tokio::test]
async fn missing_service_account_is_refused() {
    let (_d, app) = app().await;
    let (code, out) = create_pod(
        &app,
        "default",
        pod(
            "p",
            json!({"serviceAccountName": "ghost",
        "containers": [{"name": "a", "image": "busybox"}]}),
        ),
    )
    .await;
    assert_eq!(code, 403, "{out}");
    assert_eq!(out["reason"], "Forbidden");
    assert_eq!(out["message"], "pods \"p\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found");
    // No `default` account (yet) in the namespace: refused too, after a short wait for it.
    let (code, ns) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}),
    )
    .await;
    assert_eq!(code, 201, "{ns}");
    let (code, out) = create_pod(
        &app,
        "fresh",
        pod(
            "p",
            json!({"containers": [{"name": "a", "image": "busybox"}]}),
        ),
    )
    .await;
    assert_eq!(code, 403, "{out}");
    assert_eq!(out["message"], "pods \"p\" is forbidden: error looking up service account fresh/default: serviceaccount \"default\" not found");
    let (code, _) = call(
        &app,
        "GET",
        "/api/v1/namespaces/fresh/pods/p",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn mirror_pods_are_not_mutated_and_may_not_use_credentials() {
    let (_d, app) = app().await;
    let mirror = |name: &str, spec: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name,
            "annotations": {"kubernetes.io/config.mirror": "abc"}}, "spec": spec})
    };
    let c = json!([{"name": "a", "image": "busybox"}]);
    let (code, p) = create_pod(&app, "default", mirror("m", json!({"containers": c}))).await;
    assert_eq!(code, 201, "{p}");
    assert!(token_volumes(&p).is_empty(), "{p}");
    assert!(
        p["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{p}"
    );
    for (spec, msg) in [
        (
            json!({"serviceAccountName": "default", "containers": c}),
            "a mirror pod may not reference service accounts",
        ),
        (
            json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}], "containers": c}),
            "a mirror pod may not reference secrets",
        ),
        (
            json!({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}], "containers": c}),
            "a mirror pod may not use ServiceAccountToken volume projections",
        ),
    ] {
        let (code, out) = create_pod(&app, "default", mirror("m2", spec)).await;
        assert_eq!(code, 403, "{out}");
        assert_eq!(out["message"], format!("pods \"m2\" is forbidden: {msg}"));
    }
}

#[tokio::test]
async fn restricted_pod_security_accepts_the_token_volume() {
    let (_d, app) = app().await;
    let (code, ns) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "strict",
            "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    )
    .await;
    assert_eq!(code, 201, "{ns}");
    common::default_service_account(&app, "strict").await;
    let (code, p) = create_pod(
        &app,
        "strict",
        pod(
            "p",
            json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "a", "image": "busybox", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(token_volumes(&p).len(), 1, "{p}");
}
