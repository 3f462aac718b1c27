//! ReplicationControllers through the router: defaulting, validation, the status and scale
//! subresources, discovery and the table.

use crate::common;

use common::{app, call_accept, JSON, MERGE};
use serde_json::{json, Value};

const RCS: &str = "/api/v1/namespaces/default/replicationcontrollers";

/// [`common::call`], asking for a Table when the path says `as=Table`.
async fn call(app: &axum::Router, method: &str, path: &str, ct: &str, body: Value) -> (u16, Value) {
    let accept = if path.contains("as=Table") {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        JSON
    };
    call_accept(
        app,
        method,
        path,
        ct,
        accept,
        (!body.is_null()).then_some(body),
    )
    .await
}

fn rc(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
        "spec": {"template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

#[tokio::test]
async fn create_defaults_selector_labels_and_replicas() {
    let (_d, app) = app().await;
    let (code, o) = call(&app, "POST", RCS, JSON, rc("web", json!({"app": "web"}))).await;
    assert_eq!(code, 201, "{o}");
    assert_eq!(o["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(o["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(o["spec"]["replicas"], 1);
    assert_eq!(o["metadata"]["generation"], 1);
    assert_eq!(o["status"], json!({"replicas": 0}));
}

#[tokio::test]
async fn mismatched_selector_is_422() {
    let (_d, app) = app().await;
    let mut bad = rc("web", json!({"app": "web"}));
    bad["spec"]["selector"] = json!({"app": "other"});
    let (code, st) = call(&app, "POST", RCS, JSON, bad).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(st["details"]["kind"], "ReplicationController");
    assert_eq!(
        st["message"],
        "ReplicationController \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
    );
    let (code, st) = call(&app, "POST", RCS, JSON, rc("empty", Value::Null)).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "spec.selector");
}

#[tokio::test]
async fn scale_and_status_subresources() {
    let (_d, app) = app().await;
    call(&app, "POST", RCS, JSON, rc("web", json!({"app": "web"}))).await;
    let (code, sc) = call(&app, "GET", &format!("{RCS}/web/scale"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["apiVersion"], "autoscaling/v1");
    assert_eq!(sc["spec"]["replicas"], 1);
    assert_eq!(sc["status"]["selector"], "app=web");
    let mut up = sc.clone();
    up["spec"]["replicas"] = json!(3);
    let (code, sc) = call(&app, "PUT", &format!("{RCS}/web/scale"), JSON, up).await;
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["spec"]["replicas"], 3);
    let (_, o) = call(&app, "GET", &format!("{RCS}/web"), JSON, Value::Null).await;
    assert_eq!(o["spec"]["replicas"], 3);
    assert_eq!(o["metadata"]["generation"], 2);
    // The status subresource writes only the status.
    let patch = json!({"spec": {"replicas": 9}, "status": {"replicas": 2, "readyReplicas": 1}});
    let (code, o) = call(&app, "PATCH", &format!("{RCS}/web/status"), MERGE, patch).await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["status"]["readyReplicas"], 1);
    assert_eq!(o["spec"]["replicas"], 3);
    let (code, o) = call(&app, "GET", &format!("{RCS}/web/status"), JSON, Value::Null).await;
    assert_eq!((code, &o["status"]["replicas"]), (200, &json!(2)), "{o}");
    // The lifecycle conformance test patches the scale with a strategic merge patch.
    let patch = json!({"metadata": {"creationTimestamp": null}, "spec": {"replicas": 2}, "status": {"replicas": 0}});
    let (code, sc) = call(
        &app,
        "PATCH",
        &format!("{RCS}/web/scale"),
        "application/strategic-merge-patch+json",
        patch,
    )
    .await;
    assert_eq!((code, &sc["spec"]["replicas"]), (200, &json!(2)), "{sc}");
    // Field selector on status.replicas.
    let (code, l) = call(
        &app,
        "GET",
        &format!("{RCS}?fieldSelector=status.replicas=2"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{l}");
    assert_eq!(l["kind"], "ReplicationControllerList");
    assert_eq!(l["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn discovery_and_table() {
    let (_d, app) = app().await;
    let (_, d) = call(&app, "GET", "/api/v1", JSON, Value::Null).await;
    let res = d["resources"].as_array().unwrap();
    let rc_entry = res
        .iter()
        .find(|r| r["name"] == "replicationcontrollers")
        .unwrap();
    assert_eq!(rc_entry["shortNames"], json!(["rc"]));
    assert_eq!(rc_entry["kind"], "ReplicationController");
    let scale = res
        .iter()
        .find(|r| r["name"] == "replicationcontrollers/scale")
        .unwrap();
    assert_eq!(
        (scale["group"].as_str(), scale["kind"].as_str()),
        (Some("autoscaling"), Some("Scale"))
    );
    call(&app, "POST", RCS, JSON, rc("web", json!({"app": "web"}))).await;
    let (code, t) = call(&app, "GET", &format!("{RCS}?as=Table"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{t}");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(
        (cells[0].as_str(), cells[1].as_i64(), cells[7].as_str()),
        (Some("web"), Some(1), Some("app=web"))
    );
}

/// A DELETE racing status writes (a controller at work) is retried, not answered with 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_racing_status_writes_succeeds() {
    let (_d, app) = app().await;
    for round in 0..5 {
        let name = format!("race-{round}");
        call(
            &app,
            "POST",
            RCS,
            JSON,
            rc(&name, json!({"app": name.clone()})),
        )
        .await;
        let writer = {
            let app = app.clone();
            let path = format!("{RCS}/{name}/status");
            tokio::spawn(async move {
                for i in 0..200 {
                    let (code, _) = call(
                        &app,
                        "PATCH",
                        &path,
                        MERGE,
                        json!({"status": {"replicas": i % 7}}),
                    )
                    .await;
                    if code == 404 {
                        break;
                    }
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (code, st) = call(
            &app,
            "DELETE",
            &format!("{RCS}/{name}"),
            JSON,
            json!({"propagationPolicy": "Orphan"}),
        )
        .await;
        assert_eq!(code, 200, "{st}");
        writer.await.unwrap();
    }
}
