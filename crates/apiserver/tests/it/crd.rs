//! CustomResourceDefinitions through the router: a CRD is established at once and its custom
//! resources are served (CRUD, schema validation, defaulting, pruning, status and scale
//! subresources, printer columns, several versions, watch), and deleting it removes them.

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{app, call, call_accept, JSON, MERGE, TOKEN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

fn widget_crd() -> Value {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                    "replicas": {"type": "integer"},
                    "selector": {"type": "string"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                }
            },
            "status": {
                "type": "object",
                "properties": {"replicas": {"type": "integer"}, "phase": {"type": "string"}}
            }
        }
    });
    let columns = json!([
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema},
                 "additionalPrinterColumns": columns,
                 "subresources": {"status": {}, "scale": {
                     "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                     "labelSelectorPath": ".spec.selector"}}},
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": schema}},
            ]
        }
    })
}

async fn create_crd(app: &axum::Router) -> Value {
    let (code, body) = call(app, "POST", CRDS, JSON, widget_crd()).await;
    assert_eq!(code, 201, "{body}");
    body
}

#[tokio::test]
async fn crd_is_established_and_discovered() {
    let (_d, app) = app().await;
    let crd = create_crd(&app).await;
    let conds = crd["status"]["conditions"].as_array().unwrap();
    let est = conds.iter().find(|c| c["type"] == "Established").unwrap();
    assert_eq!(est["status"], "True");
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "WidgetList");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert_eq!(crd["metadata"]["generation"], 1);

    let (code, groups) = call(&app, "GET", "/apis", JSON, Value::Null).await;
    assert_eq!(code, 200);
    let g = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "example.com")
        .expect("group listed")
        .clone();
    assert_eq!(g["preferredVersion"]["version"], "v1");
    assert_eq!(g["versions"].as_array().unwrap().len(), 2);
    let (code, list) = call(&app, "GET", "/apis/example.com/v1", JSON, Value::Null).await;
    assert_eq!(code, 200, "{list}");
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["widgets", "widgets/status", "widgets/scale"]);
    assert_eq!(list["resources"][0]["shortNames"], json!(["wd"]));
    let (code, _) = call(&app, "GET", "/apis/example.com/v1beta1", JSON, Value::Null).await;
    assert_eq!(code, 200);

    // A CRD whose names are invalid is refused with upstream's field paths.
    let mut bad = widget_crd();
    bad["metadata"]["name"] = json!("gadgets.example.com");
    bad["spec"]["versions"][1]["storage"] = json!(true);
    let (code, st) = call(&app, "POST", CRDS, JSON, bad).await;
    assert_eq!(code, 422, "{st}");
    let fields: Vec<&str> = st["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["metadata.name", "spec.versions"]);
    // The scope may not change.
    let mut upd = crd.clone();
    upd["spec"]["scope"] = json!("Cluster");
    let (code, st) = call(
        &app,
        "PUT",
        &format!("{CRDS}/widgets.example.com"),
        JSON,
        upd,
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["details"]["causes"][0]["field"], "spec.scope");
}

#[tokio::test]
async fn custom_resource_crud_validation_defaults_pruning() {
    let (_d, app) = app().await;
    create_crd(&app).await;
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3, "bogus": 1, "extra": {"anything": [1, 2]}},
        "status": {"phase": "ignored on create"}});
    let (code, created) = call(&app, "POST", WIDGETS, JSON, w).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["color"], "red", "default applied");
    assert!(
        created["spec"].get("bogus").is_none(),
        "unknown field pruned"
    );
    assert_eq!(created["spec"]["extra"]["anything"], json!([1, 2]));
    assert!(created.get("status").is_none(), "status reset on create");
    assert_eq!(created["metadata"]["generation"], 1);

    // Schema violations: 422 with the field path and message upstream gives.
    let bad = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"},
        "spec": {"size": "big", "color": "green"}});
    let (code, st) = call(&app, "POST", WIDGETS, JSON, bad).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    let causes = st["details"]["causes"].as_array().unwrap();
    assert_eq!(causes[1]["field"], "spec.size");
    assert_eq!(
        causes[1]["message"],
        "Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
    );
    assert_eq!(causes[0]["field"], "spec.color");
    assert_eq!(causes[0]["reason"], "FieldValueNotSupported");
    let missing = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {}});
    let (code, st) = call(&app, "POST", WIDGETS, JSON, missing).await;
    assert_eq!(code, 422);
    assert_eq!(st["details"]["causes"][0]["field"], "spec.size");
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueRequired");
    // Strict field validation refuses the unknown field.
    let strict = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w3"}, "spec": {"size": 1, "bogus": 1}});
    let (code, st) = call(
        &app,
        "POST",
        &format!("{WIDGETS}?fieldValidation=Strict"),
        JSON,
        strict,
    )
    .await;
    assert_eq!(code, 400, "{st}");
    assert_eq!(
        st["message"],
        "strict decoding error: unknown field \"spec.bogus\""
    );
    let strict = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w3", "unknownMeta": 1}, "spec": {"size": 1}});
    let (code, st) = call(
        &app,
        "POST",
        &format!("{WIDGETS}?fieldValidation=Strict"),
        JSON,
        strict,
    )
    .await;
    assert_eq!(code, 400, "{st}");
    assert_eq!(
        st["message"],
        "strict decoding error: unknown field \"metadata.unknownMeta\""
    );

    // Get, list, merge and JSON patches; strategic merge patch is not for custom resources.
    let (code, got) = call(&app, "GET", &format!("{WIDGETS}/w1"), JSON, Value::Null).await;
    assert_eq!((code, got["spec"]["size"].clone()), (200, json!(3)));
    let (code, list) = call(
        &app,
        "GET",
        "/apis/example.com/v1/widgets",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "WidgetList");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (code, p) = call(
        &app,
        "PATCH",
        &format!("{WIDGETS}/w1"),
        MERGE,
        json!({"spec": {"size": 4}}),
    )
    .await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["metadata"]["generation"], 2);
    let (code, p) = call(
        &app,
        "PATCH",
        &format!("{WIDGETS}/w1"),
        "application/json-patch+json",
        json!([{"op": "replace", "path": "/spec/size", "value": 5}]),
    )
    .await;
    assert_eq!((code, p["spec"]["size"].clone()), (200, json!(5)));
    let (code, p) = call(
        &app,
        "PATCH",
        &format!("{WIDGETS}/w1"),
        MERGE,
        json!({"spec": {"size": 50}}),
    )
    .await;
    assert_eq!(code, 422, "{p}");
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{WIDGETS}/w1"),
        "application/strategic-merge-patch+json",
        json!({"spec": {"size": 4}}),
    )
    .await;
    assert_eq!(code, 415, "{st}");

    // Status subresource: the main resource ignores status, status writes keep the spec and
    // the generation.
    let (code, s) = call(
        &app,
        "PATCH",
        &format!("{WIDGETS}/w1/status"),
        MERGE,
        json!({"spec": {"size": 9}, "status": {"phase": "Ready", "replicas": 2}}),
    )
    .await;
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["status"]["phase"], "Ready");
    assert_eq!(s["spec"]["size"], 5);
    assert_eq!(s["metadata"]["generation"], 3);
    let (code, m) = call(
        &app,
        "PATCH",
        &format!("{WIDGETS}/w1"),
        MERGE,
        json!({"status": {"phase": "Lost"}}),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(m["status"]["phase"], "Ready");

    // Scale subresource through the CRD's paths.
    let (code, sc) = call(
        &app,
        "GET",
        &format!("{WIDGETS}/w1/scale"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["kind"], "Scale");
    assert_eq!(sc["apiVersion"], "autoscaling/v1");
    assert_eq!(sc["spec"]["replicas"], 0);
    assert_eq!(sc["status"]["replicas"], 2);
    let (code, sc) = call(
        &app,
        "PATCH",
        &format!("{WIDGETS}/w1/scale"),
        MERGE,
        json!({"spec": {"replicas": 7}}),
    )
    .await;
    assert_eq!(code, 200, "{sc}");
    assert_eq!(sc["spec"]["replicas"], 7);
    let (_, got) = call(&app, "GET", &format!("{WIDGETS}/w1"), JSON, Value::Null).await;
    assert_eq!(got["spec"]["replicas"], 7);

    // Printer columns.
    let (code, t) = call_accept(&app, "GET", WIDGETS, JSON, TABLE, None).await;
    assert_eq!(code, 200, "{t}");
    let cols: Vec<(&str, &str)> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("Name", "string"),
            ("Size", "integer"),
            ("Color", "string"),
            ("Age", "date")
        ]
    );
    assert_eq!(t["rows"][0]["cells"][0], "w1");
    assert_eq!(t["rows"][0]["cells"][1], 5);
    assert_eq!(t["rows"][0]["cells"][2], "red");

    // The other served version reads the same object with its apiVersion.
    let (code, b) = call(
        &app,
        "GET",
        "/apis/example.com/v1beta1/namespaces/default/widgets/w1",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{b}");
    assert_eq!(b["apiVersion"], "example.com/v1beta1");
    assert_eq!(b["spec"]["size"], 5);
    let (code, _) = call(
        &app,
        "GET",
        "/apis/example.com/v1beta1/namespaces/default/widgets/w1/scale",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 404, "v1beta1 has no scale subresource");

    // Delete one.
    let (code, _) = call(&app, "DELETE", &format!("{WIDGETS}/w1"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    let (code, _) = call(&app, "GET", &format!("{WIDGETS}/w1"), JSON, Value::Null).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn watch_sees_custom_resources() {
    let (_d, app) = app().await;
    create_crd(&app).await;
    let (_, list) = call(&app, "GET", WIDGETS, JSON, Value::Null).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let req = Request::builder()
        .uri(format!("{WIDGETS}?watch=true&resourceVersion={rv}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}});
    let (code, _) = call(&app, "POST", WIDGETS, JSON, w).await;
    assert_eq!(code, 201);
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .expect("an event in time")
        .unwrap()
        .unwrap();
    let bytes = frame.into_data().unwrap();
    let ev: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["kind"], "Widget");
    assert_eq!(ev["object"]["spec"]["color"], "red");
}

#[tokio::test]
async fn deleting_the_crd_removes_its_resources_and_discovery() {
    let (_d, app) = app().await;
    create_crd(&app).await;
    for n in ["a", "b"] {
        let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": n}, "spec": {"size": 1}});
        assert_eq!(call(&app, "POST", WIDGETS, JSON, w).await.0, 201);
    }
    let (code, st) = call(
        &app,
        "DELETE",
        &format!("{CRDS}/widgets.example.com"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let (code, _) = call(&app, "GET", WIDGETS, JSON, Value::Null).await;
    assert_eq!(code, 404);
    let (code, _) = call(&app, "GET", "/apis/example.com/v1", JSON, Value::Null).await;
    assert_eq!(code, 404);
    let (_, groups) = call(&app, "GET", "/apis", JSON, Value::Null).await;
    assert!(!groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "example.com"));
    // Created again, the CRD starts empty.
    create_crd(&app).await;
    let (code, list) = call(&app, "GET", WIDGETS, JSON, Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn cluster_scoped_custom_resources() {
    let (_d, app) = app().await;
    let mut crd = widget_crd();
    crd["metadata"]["name"] = json!("gadgets.example.com");
    crd["spec"]["scope"] = json!("Cluster");
    crd["spec"]["names"] = json!({"plural": "gadgets", "kind": "Gadget"});
    let (code, body) = call(&app, "POST", CRDS, JSON, crd).await;
    assert_eq!(code, 201, "{body}");
    let g = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 2}});
    let (code, created) = call(&app, "POST", "/apis/example.com/v1/gadgets", JSON, g).await;
    assert_eq!(code, 201, "{created}");
    assert!(created["metadata"].get("namespace").is_none());
    let (code, _) = call(
        &app,
        "GET",
        "/apis/example.com/v1/gadgets/g1",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = call(
        &app,
        "GET",
        "/apis/example.com/v1/namespaces/default/gadgets",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 404);
}

/// Without the namespace controller (daas-controllers, which deletes the contents), DELETE only
/// marks the namespace; custom resources are refused in it like any content.
#[tokio::test]
async fn namespace_deletion_marks_terminating_and_refuses_custom_resources() {
    let (_d, app) = app().await;
    create_crd(&app).await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(
        call(&app, "POST", "/api/v1/namespaces", JSON, ns).await.0,
        201
    );
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    let path = "/apis/example.com/v1/namespaces/team/widgets";
    assert_eq!(call(&app, "POST", path, JSON, w.clone()).await.0, 201);
    let (code, ns) = call(&app, "DELETE", "/api/v1/namespaces/team", JSON, Value::Null).await;
    assert_eq!(code, 200, "{ns}");
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let mut w2 = w;
    w2["metadata"]["name"] = json!("w2");
    let (code, body) = call(&app, "POST", path, JSON, w2).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "unable to create new content in namespace team because it is being terminated"
    );
    let (code, _) = call(&app, "GET", &format!("{path}/w"), JSON, Value::Null).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn defaults_added_later_apply_to_stored_objects() {
    let (_d, app) = app().await;
    let crd = create_crd(&app).await;
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    assert_eq!(call(&app, "POST", WIDGETS, JSON, w).await.0, 201);
    let mut upd = crd.clone();
    upd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["shape"] = json!({"type": "string", "default": "round"});
    let (code, body) = call(
        &app,
        "PUT",
        &format!("{CRDS}/widgets.example.com"),
        JSON,
        upd,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["metadata"]["generation"], 2);
    let (_, got) = call(&app, "GET", &format!("{WIDGETS}/w"), JSON, Value::Null).await;
    assert_eq!(got["spec"]["shape"], "round", "{got}");
    let (_, list) = call(&app, "GET", WIDGETS, JSON, Value::Null).await;
    assert_eq!(list["items"][0]["spec"]["shape"], "round");
}

#[tokio::test]
async fn crd_collection_delete_by_label_removes_resources() {
    let (_d, app) = app().await;
    let mut crd = widget_crd();
    crd["metadata"]["labels"] = json!({"e2e": "yes"});
    assert_eq!(call(&app, "POST", CRDS, JSON, crd).await.0, 201);
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    assert_eq!(call(&app, "POST", WIDGETS, JSON, w).await.0, 201);
    let (code, list) = call(
        &app,
        "GET",
        &format!("{CRDS}?labelSelector=e2e%3Dyes"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (code, body) = call(
        &app,
        "DELETE",
        &format!("{CRDS}?labelSelector=e2e%3Dyes"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(call(&app, "GET", WIDGETS, JSON, Value::Null).await.0, 404);
    // A new CRD of the same names does not see the old objects.
    create_crd(&app).await;
    let (_, list) = call(&app, "GET", WIDGETS, JSON, Value::Null).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn crd_status_subresource_keeps_client_conditions() {
    let (_d, app) = app().await;
    create_crd(&app).await;
    let path = format!("{CRDS}/widgets.example.com/status");
    let (code, mut st) = call(&app, "GET", &path, JSON, Value::Null).await;
    assert_eq!(code, 200);
    st["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "", "status": "", "message": "updated"}));
    let (code, upd) = call(&app, "PUT", &path, JSON, st).await;
    assert_eq!(code, 200, "{upd}");
    assert!(upd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["message"] == "updated"));
    let (code, p) = call(
        &app,
        "PATCH",
        &path,
        "application/json-patch+json",
        json!([{"op": "add", "path": "/status/conditions", "value": [{"message": "patched"}]}]),
    )
    .await;
    assert_eq!(code, 200, "{p}");
    let conds = p["status"]["conditions"].as_array().unwrap();
    assert!(conds.iter().any(|c| c["message"] == "patched"), "{p}");
    // Still established and served.
    assert!(conds
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True"));
    assert_eq!(call(&app, "GET", WIDGETS, JSON, Value::Null).await.0, 200);
}

#[tokio::test]
async fn conflicting_names_are_not_accepted_nor_served() {
    let (_d, app) = app().await;
    create_crd(&app).await;
    // Another plural of the group claiming the kind Widget.
    let mut dup = widget_crd();
    dup["metadata"]["name"] = json!("gizmos.example.com");
    dup["spec"]["names"] = json!({"plural": "gizmos", "kind": "Widget", "listKind": "GizmoList"});
    let (code, body) = call(&app, "POST", CRDS, JSON, dup).await;
    assert_eq!(code, 201, "{body}");
    let conds = body["status"]["conditions"].as_array().unwrap();
    let names = conds.iter().find(|c| c["type"] == "NamesAccepted").unwrap();
    assert_eq!(
        (names["status"].as_str(), names["reason"].as_str()),
        (Some("False"), Some("KindConflict"))
    );
    let est = conds.iter().find(|c| c["type"] == "Established").unwrap();
    assert_eq!(est["status"], "False");
    assert_eq!(
        call(
            &app,
            "GET",
            "/apis/example.com/v1/namespaces/default/gizmos",
            JSON,
            Value::Null
        )
        .await
        .0,
        404
    );
    // The OpenAPI view of served custom resources lists only the accepted CRD's versions.
    let schemas = daas_apiserver::registry::customresource::schemas();
    let gvk: Vec<(String, String, String)> = schemas
        .iter()
        .map(|s| (s.group.clone(), s.version.clone(), s.kind.clone()))
        .collect();
    assert_eq!(
        gvk,
        vec![
            ("example.com".into(), "v1".into(), "Widget".into()),
            ("example.com".into(), "v1beta1".into(), "Widget".into())
        ]
    );
    assert_eq!(
        schemas[0].schema["properties"]["spec"]["required"],
        json!(["size"])
    );
    // Renamed to names nobody holds: accepted, established and served.
    let path = format!("{CRDS}/gizmos.example.com");
    let (code, mut g) = call(&app, "GET", &path, JSON, Value::Null).await;
    assert_eq!(code, 200);
    g["spec"]["names"]["kind"] = json!("Gizmo");
    let (code, body) = call(&app, "PUT", &path, JSON, g).await;
    assert_eq!(code, 200, "{body}");
    // The defaulted singular (widget) still conflicts: the condition says so.
    let (_, mut g) = call(&app, "GET", &path, JSON, Value::Null).await;
    let c = g["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "NamesAccepted")
        .cloned()
        .unwrap();
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("SingularConflict")),
        "{g}"
    );
    g["spec"]["names"]["singular"] = json!("gizmo");
    let (code, body) = call(&app, "PUT", &path, JSON, g).await;
    assert_eq!(code, 200, "{body}");
    let (_, g) = call(&app, "GET", &path, JSON, Value::Null).await;
    let conds = g["status"]["conditions"].as_array().unwrap();
    for ty in ["NamesAccepted", "Established"] {
        let c = conds.iter().find(|c| c["type"] == ty).unwrap();
        assert_eq!(c["status"], "True", "{g}");
    }
    assert_eq!(g["status"]["acceptedNames"]["kind"], "Gizmo");
    let (code, body) = call(
        &app,
        "GET",
        "/apis/example.com/v1/namespaces/default/gizmos",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["kind"], "GizmoList");
}

#[tokio::test]
async fn generation_counts_changes_outside_metadata_and_status() {
    let (_d, app) = app().await;
    let mut crd = widget_crd();
    // Without a status subresource, any change but metadata counts, status included.
    crd["spec"]["versions"][0]["subresources"] = json!(null);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["extra"] =
        json!({"type": "string"});
    let (code, body) = call(&app, "POST", CRDS, JSON, crd).await;
    assert_eq!(code, 201, "{body}");
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    assert_eq!(call(&app, "POST", WIDGETS, JSON, w).await.0, 201);
    let path = format!("{WIDGETS}/w");
    let (_, o) = call(
        &app,
        "PATCH",
        &path,
        MERGE,
        json!({"metadata": {"labels": {"a": "b"}}}),
    )
    .await;
    assert_eq!(o["metadata"]["generation"], 1);
    let (_, o) = call(&app, "PATCH", &path, MERGE, json!({"extra": "x"})).await;
    assert_eq!(o["metadata"]["generation"], 2, "{o}");
    let (_, o) = call(
        &app,
        "PATCH",
        &path,
        MERGE,
        json!({"status": {"phase": "Up"}}),
    )
    .await;
    assert_eq!(o["metadata"]["generation"], 3, "{o}");
}

/// Server-side apply of custom resources follows the CRD schema's list and map types (as
/// upstream's apply.go "should work for CRDs"): a `map` list merges by its keys, a `set`
/// merges by value, an atomic map is owned (and conflicts) as a whole.
#[tokio::test]
async fn server_side_apply_uses_the_crd_schema_list_types() {
    const APPLY: &str = "application/apply-patch+yaml";
    let (_d, app) = app().await;
    let mut crd = widget_crd();
    let spec = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"];
    spec["ports"] = json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
        "items": {"type": "object", "required": ["containerPort", "protocol"], "properties": {
            "containerPort": {"type": "integer"}, "protocol": {"type": "string"},
            "name": {"type": "string"}}}});
    spec["tags"] = json!({"type": "array", "x-kubernetes-list-type": "set",
        "items": {"type": "string"}});
    spec["labels"] = json!({"type": "object", "x-kubernetes-map-type": "atomic",
        "additionalProperties": {"type": "string"}});
    let (code, body) = call(&app, "POST", CRDS, JSON, crd).await;
    assert_eq!(code, 201, "{body}");
    let path = format!("{WIDGETS}/w?fieldManager=m1");
    let w = |spec: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
               "spec": spec})
    };
    let (code, o) = call(
        &app,
        "PATCH",
        &path,
        APPLY,
        w(
            json!({"size": 1, "ports": [{"containerPort": 80, "protocol": "TCP", "name": "a"}],
                 "tags": ["x"], "labels": {"k": "v"}}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    let m2 = format!("{WIDGETS}/w?fieldManager=m2");
    let (code, o) = call(
        &app,
        "PATCH",
        &m2,
        APPLY,
        w(
            json!({"ports": [{"containerPort": 80, "protocol": "UDP", "name": "b"}],
                 "tags": ["y"]}),
        ),
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(
        o["spec"]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "a"},
               {"containerPort": 80, "protocol": "UDP", "name": "b"}])
    );
    assert_eq!(o["spec"]["tags"], json!(["x", "y"]));
    let m2_fields = o["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == "m2"))
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or_default();
    assert!(
        m2_fields["f:spec"]["f:ports"]
            .get(r#"k:{"containerPort":80,"protocol":"UDP"}"#)
            .is_some(),
        "{m2_fields}"
    );
    // The atomic map conflicts as a whole.
    let (code, o) = call(&app, "PATCH", &m2, APPLY, w(json!({"labels": {"k2": "v"}}))).await;
    assert_eq!(code, 409, "{o}");
    assert_eq!(
        o["message"],
        "Apply failed with 1 conflict: conflict with \"m1\": .spec.labels"
    );
    // Duplicate keys in a map list are refused.
    let (code, o) = call(
        &app,
        "PATCH",
        &m2,
        APPLY,
        w(json!({"ports": [{"containerPort": 81, "protocol": "TCP"},
                           {"containerPort": 81, "protocol": "TCP"}]})),
    )
    .await;
    assert_eq!(code, 400, "{o}");
    assert!(
        o["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("failed to create typed patch object (example.com/v1, Kind=Widget)"),
        "{o}"
    );
}

/// Requests to a `deprecated: true` version carry a Warning header: its `deprecationWarning`,
/// else upstream's default text; other versions none.
#[tokio::test]
async fn deprecated_versions_warn() {
    let (_d, app) = app().await;
    let mut crd = widget_crd();
    crd["spec"]["versions"][1]["deprecated"] = json!(true);
    let (code, body) = call(&app, "POST", CRDS, JSON, crd).await;
    assert_eq!(code, 201, "{body}");
    let warnings = |path: &'static str| {
        let app = app.clone();
        async move {
            let req = Request::builder()
                .method("GET")
                .uri(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let w: Vec<String> = resp
                .headers()
                .get_all("warning")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            let _ = resp.into_body().collect().await.unwrap();
            (status, w)
        }
    };
    let (code, w) = warnings("/apis/example.com/v1beta1/namespaces/default/widgets").await;
    assert_eq!(code, 200);
    assert_eq!(
        w,
        vec!["299 - \"example.com/v1beta1 Widget is deprecated\""]
    );
    // Errors too (upstream warns before serving).
    let (code, w) = warnings("/apis/example.com/v1beta1/namespaces/default/widgets/nope").await;
    assert_eq!(code, 404);
    assert_eq!(w.len(), 1);
    let (_, w) = warnings("/apis/example.com/v1/namespaces/default/widgets").await;
    assert!(w.is_empty(), "{w:?}");

    let path = format!("{CRDS}/widgets.example.com");
    let (_, mut c) = call(&app, "GET", &path, JSON, Value::Null).await;
    c["spec"]["versions"][1]["deprecationWarning"] = json!("use example.com/v1 \"Widget\"");
    let (code, body) = call(&app, "PUT", &path, JSON, c).await;
    assert_eq!(code, 200, "{body}");
    let (_, w) = warnings("/apis/example.com/v1beta1/namespaces/default/widgets").await;
    assert_eq!(w, vec![r#"299 - "use example.com/v1 \"Widget\"""#]);
}

/// Field validation of applied custom resources (upstream's field_validation.go CR cases):
/// fields the schema does not declare (root, metadata) are refused with upstream's typed patch
/// message; fields it preserves apply.
#[tokio::test]
async fn apply_field_validation_of_custom_resources() {
    let (_d, app) = app().await;
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"foo": {"type": "string"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "items": {"type": "object", "required": ["containerPort", "protocol"],
                    "properties": {"containerPort": {"type": "integer"},
                        "protocol": {"type": "string"}, "name": {"type": "string"}}}}}}}});
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "noxus.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "noxus", "kind": "Noxu"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema}}]}
    });
    let (code, body) = call(&app, "POST", CRDS, JSON, crd).await;
    assert_eq!(code, 201, "{body}");
    let apply = |yaml: String| {
        let app = app.clone();
        async move {
            let req = Request::builder()
                .method("PATCH")
                .uri("/apis/example.com/v1/noxus/mytest?fieldManager=m&fieldValidation=Strict")
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/apply-patch+yaml")
                .body(Body::from(yaml))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let code = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (code, String::from_utf8_lossy(&body).to_string())
        }
    };
    let doc = |extra_root: &str, extra_meta: &str, extra_spec: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Noxu\nmetadata:\n  name: mytest\n{extra_meta}  finalizers:\n  - test-finalizer\n{extra_root}spec:\n{extra_spec}  foo: foo1\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP\n"
        )
    };
    let (code, body) = apply(doc("unknownField: unknown\n", "", "")).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains(".unknownField: field not declared in schema"),
        "{body}"
    );
    let (code, body) = apply(doc("", "  unknownMeta: unknown\n", "")).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains(".metadata.unknownMeta: field not declared in schema"),
        "{body}"
    );
    let (code, body) = apply(doc("", "", "  unknown: uk1\n")).await;
    assert_eq!(code, 201, "{body}");
    // A repeated key under preserved unknown fields (the conformance test's body in
    // substance, the repetition on line 11): refused with go-yaml's words, nothing applied.
    let (code, body) = apply(format!(
        "\n{}",
        doc("", "", "  unknown: uk2\n  foo: foo0\n")
    ))
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains(r#"error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 11: key \"foo\" already set in map"#),
        "{body}"
    );
    let (_, o) = call(
        &app,
        "GET",
        "/apis/example.com/v1/noxus/mytest",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(o["spec"]["unknown"], "uk1");
}
