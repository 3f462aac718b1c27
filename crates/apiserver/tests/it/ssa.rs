//! Server-side apply and managedFields through the router: apply create and update, conflicts
//! with the exact upstream message, force, and Update entries from PUT, PATCH and scale.

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{app, call, JSON, MERGE, TOKEN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const APPLY: &str = "application/apply-patch+yaml";

/// A raw request with a User-Agent; the answer's code and JSON body.
async fn raw(app: &axum::Router, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", ct)
        .header("accept", JSON)
        .header("user-agent", "kubectl/v1.28.7 (linux/amd64) kubernetes/abc")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

const DEPLOY_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: REPLICAS
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: c
        image: IMAGE
";

fn deploy_yaml(replicas: i64, image: &str) -> String {
    DEPLOY_YAML
        .replace("REPLICAS", &replicas.to_string())
        .replace("IMAGE", image)
}

fn entry<'a>(o: &'a Value, manager: &str, op: &str) -> Option<&'a Value> {
    o["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == op)
}

#[tokio::test]
async fn apply_creates_then_updates_with_managed_fields() {
    let (_d, app) = app().await;
    let url = format!("{DEPLOYS}/web?fieldManager=mgr");
    let (code, o) = raw(&app, "PATCH", &url, APPLY, &deploy_yaml(2, "nginx")).await;
    assert_eq!(code, 201, "{o}");
    assert_eq!(o["spec"]["replicas"], 2);
    let e = entry(&o, "mgr", "Apply").expect("apply entry");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].is_string());
    assert_eq!(e["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert_eq!(
        e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]
            ["f:image"],
        json!({})
    );
    // The same manager changes the image: 200, new value, managedFields served on GET.
    let (code, o) = raw(&app, "PATCH", &url, APPLY, &deploy_yaml(2, "nginx:2")).await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(
        o["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    let (_, got) = call(&app, "GET", &format!("{DEPLOYS}/web"), JSON, Value::Null).await;
    assert!(entry(&got, "mgr", "Apply").is_some(), "{got}");
    // JSON bodies are YAML too.
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2}});
    let (code, o) = raw(
        &app,
        "PATCH",
        &format!("{DEPLOYS}/web?fieldManager=other"),
        APPLY,
        &body.to_string(),
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert!(entry(&o, "other", "Apply").is_some());
}

#[tokio::test]
async fn apply_requires_field_manager_and_force_needs_apply() {
    let (_d, app) = app().await;
    let (code, st) = raw(
        &app,
        "PATCH",
        &format!("{DEPLOYS}/web"),
        APPLY,
        &deploy_yaml(1, "x"),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let (code, st) = raw(
        &app,
        "PATCH",
        &format!("{DEPLOYS}/web?force=true"),
        MERGE,
        "{}",
    )
    .await;
    assert_eq!(code, 422, "{st}");
    let (code, st) = raw(
        &app,
        "PATCH",
        &format!("{DEPLOYS}/web?fieldManager=m"),
        APPLY,
        "- a\n",
    )
    .await;
    assert_eq!(code, 400, "{st}");
}

#[tokio::test]
async fn conflict_after_update_by_another_manager_and_force() {
    let (_d, app) = app().await;
    let url = format!("{DEPLOYS}/web?fieldManager=mgr");
    let (code, o) = raw(&app, "PATCH", &url, APPLY, &deploy_yaml(2, "nginx")).await;
    assert_eq!(code, 201, "{o}");
    // Another manager scales through a merge patch (operation Update, from the User-Agent).
    let (code, o) = raw(
        &app,
        "PATCH",
        &format!("{DEPLOYS}/web"),
        MERGE,
        r#"{"spec":{"replicas":5}}"#,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    let upd = entry(&o, "kubectl", "Update").expect("update entry");
    assert_eq!(upd["apiVersion"], "apps/v1");
    assert_eq!(upd["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let mine = entry(&o, "mgr", "Apply").unwrap();
    assert!(
        mine["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "{mine}"
    );
    // Re-applying replicas 2 conflicts.
    let (code, st) = raw(&app, "PATCH", &url, APPLY, &deploy_yaml(2, "nginx")).await;
    assert_eq!(code, 409, "{st}");
    assert_eq!(st["reason"], "Conflict");
    assert_eq!(
        st["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );
    assert_eq!(
        st["details"]["causes"],
        json!([{"reason": "FieldManagerConflict",
            "message": "conflict with \"kubectl\" using apps/v1", "field": ".spec.replicas"}])
    );
    // Applying the same value the other manager set is no conflict (shared ownership).
    let (code, o) = raw(&app, "PATCH", &url, APPLY, &deploy_yaml(5, "nginx")).await;
    assert_eq!(code, 200, "{o}");
    assert!(entry(&o, "kubectl", "Update").is_some());
    // force takes the field.
    let (code, o) = raw(
        &app,
        "PATCH",
        &format!("{url}&force=true"),
        APPLY,
        &deploy_yaml(3, "nginx"),
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["spec"]["replicas"], 3);
    assert!(entry(&o, "kubectl", "Update").is_none(), "{o}");
}

#[tokio::test]
async fn put_records_update_entry_and_scale_subresource_conflicts() {
    let (_d, app) = app().await;
    let url = format!("{DEPLOYS}/web?fieldManager=mgr");
    raw(&app, "PATCH", &url, APPLY, &deploy_yaml(2, "nginx")).await;
    let (_, mut o) = call(&app, "GET", &format!("{DEPLOYS}/web"), JSON, Value::Null).await;
    o["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:9");
    let (code, o) = call(
        &app,
        "PUT",
        &format!("{DEPLOYS}/web?fieldManager=editor"),
        JSON,
        o,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    let e = entry(&o, "editor", "Update").expect("editor entry");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {"f:image": {}}}}}}})
    );
    // Changing replicas through the scale subresource: an Update with subresource scale.
    let (code, sc) = raw(
        &app,
        "PATCH",
        &format!("{DEPLOYS}/web/scale?fieldManager=scaler"),
        MERGE,
        r#"{"spec":{"replicas":7}}"#,
    )
    .await;
    assert_eq!(code, 200, "{sc}");
    let (code, st) = raw(&app, "PATCH", &url, APPLY, &deploy_yaml(2, "nginx")).await;
    assert_eq!(code, 409, "{st}");
    let msg = st["message"].as_str().unwrap();
    assert!(msg.starts_with("Apply failed with 2 conflicts: "), "{msg}");
    assert!(
        msg.contains(
            "conflicts with \"scaler\" with subresource \"scale\" using apps/v1:\n- .spec.replicas"
        ),
        "{msg}"
    );
    assert!(msg.contains("conflicts with \"editor\" using apps/v1:\n- .spec.template.spec.containers[name=\"c\"].image"), "{msg}");
}

#[tokio::test]
async fn create_records_update_and_clients_cannot_corrupt_managed_fields() {
    let (_d, app) = app().await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let (code, o) = raw(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON,
        &cm.to_string(),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    let e = entry(&o, "kubectl", "Update").expect("create entry");
    assert_eq!(e["fieldsV1"], json!({"f:data": {".": {}, "f:a": {}}}));
    // An invalid managedFields in an update is ignored: the live entries stay.
    let mut bad = o.clone();
    bad["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Bogus"}]);
    bad["data"]["b"] = json!("2");
    let (code, o2) = call(
        &app,
        "PUT",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=kubectl",
        JSON,
        bad,
    )
    .await;
    assert_eq!(code, 200, "{o2}");
    let e = entry(&o2, "kubectl", "Update").unwrap();
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}})
    );
    // [{}] resets them: only the writer's own change remains.
    let mut reset = o2.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    reset["data"]["c"] = json!("3");
    let (code, o3) = call(
        &app,
        "PUT",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=resetter",
        JSON,
        reset,
    )
    .await;
    assert_eq!(code, 200, "{o3}");
    let mf = o3["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1, "{o3}");
    assert_eq!(mf[0]["manager"], "resetter");
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn second_applier_of_same_config_shares_fields_and_status_apply_needs_subresource() {
    let (_d, app) = app().await;
    let body = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "test-pod"},
        "spec": {"containers": [{"name": "test-container", "image": "test-image"}]}}"#;
    let want = r#"{"f:spec":{"f:containers":{"k:{\"name\":\"test-container\"}":{".":{},"f:image":{},"f:name":{}}}}}"#;
    for m in ["apply_test", "apply_test_2"] {
        let (code, o) = raw(
            &app,
            "PATCH",
            &format!("{PODS}/test-pod?fieldManager={m}"),
            APPLY,
            body,
        )
        .await;
        assert!(code == 200 || code == 201, "{o}");
        let e = entry(&o, m, "Apply").expect("entry");
        assert_eq!(serde_json::to_string(&e["fieldsV1"]).unwrap(), want);
        if m == "apply_test_2" {
            let first = entry(&o, "apply_test", "Apply").expect("first applier kept");
            assert_eq!(serde_json::to_string(&first["fieldsV1"]).unwrap(), want);
        }
    }
    let status = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "test-pod"},
        "status": {"conditions": [{"type": "MyStatus", "status": "True"}]}}"#;
    let (code, o) = raw(
        &app,
        "PATCH",
        &format!("{PODS}/test-pod?fieldManager=apply_test2"),
        APPLY,
        status,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    let has = |o: &Value| {
        o["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "MyStatus"))
    };
    assert!(!has(&o), "{o}");
    let (code, o) = raw(
        &app,
        "PATCH",
        &format!("{PODS}/test-pod/status?fieldManager=apply_test2"),
        APPLY,
        status,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert!(has(&o), "{o}");
    let st = o["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "apply_test2" && e["subresource"] == "status")
        .expect("status entry");
    assert_eq!(st["operation"], "Apply");
    assert!(
        st["fieldsV1"]["f:status"]["f:conditions"]["k:{\"type\":\"MyStatus\"}"].is_object(),
        "{st}"
    );
}

#[tokio::test]
async fn dropped_port_is_removed_and_field_taken_by_update_is_kept() {
    let (_d, app) = app().await;
    let url = format!("{DEPLOYS}/web?fieldManager=apply_test");
    let with_port = deploy_yaml(3, "nginx")
        + "        ports:\n        - containerPort: 80\n          protocol: TCP\n";
    let (code, o) = raw(&app, "PATCH", &url, APPLY, &with_port).await;
    assert_eq!(code, 201, "{o}");
    let (code, o) = raw(&app, "PATCH", &url, APPLY, &deploy_yaml(3, "nginx")).await;
    assert_eq!(code, 200, "{o}");
    assert!(
        o["spec"]["template"]["spec"]["containers"][0]
            .get("ports")
            .is_none(),
        "{o}"
    );
    // An update takes replicas; the applier then omits it: the value stays.
    let mut d = o.clone();
    d["spec"]["replicas"] = json!(4);
    let (code, _) = raw(&app, "PUT", &format!("{DEPLOYS}/web"), JSON, &d.to_string()).await;
    assert_eq!(code, 200);
    let without = deploy_yaml(3, "nginx").replace("  replicas: 3\n", "");
    let (code, o) = raw(&app, "PATCH", &url, APPLY, &without).await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["spec"]["replicas"], 4);
}

#[tokio::test]
async fn duplicate_list_keys_in_apply_are_400() {
    let (_d, app) = app().await;
    let body = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]}}"#;
    let (code, st) = raw(
        &app,
        "PATCH",
        &format!("{PODS}/p?fieldManager=m"),
        APPLY,
        body,
    )
    .await;
    assert_eq!(code, 400, "{st}");
    assert_eq!(
        st["message"],
        "failed to create typed patch object (v1, Kind=Pod): .spec.containers: duplicate entries for key [name=\"c\"]"
    );
}

#[tokio::test]
async fn service_ports_are_owned_by_port_and_protocol() {
    let (_d, app) = app().await;
    let body = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "test-svc"},
        "spec": {"ports": [{"port": 8080, "protocol": "UDP"}]}}"#;
    let want = r#"{"f:spec":{"f:ports":{"k:{\"port\":8080,\"protocol\":\"UDP\"}":{".":{},"f:port":{},"f:protocol":{}}}}}"#;
    let svcs = "/api/v1/namespaces/default/services/test-svc";
    for m in ["apply_test", "apply_test_2"] {
        let (code, o) = raw(
            &app,
            "PATCH",
            &format!("{svcs}?fieldManager={m}"),
            APPLY,
            body,
        )
        .await;
        assert!(code == 200 || code == 201, "{o}");
        for e in o["metadata"]["managedFields"].as_array().unwrap() {
            assert_eq!(serde_json::to_string(&e["fieldsV1"]).unwrap(), want, "{o}");
        }
    }
}
