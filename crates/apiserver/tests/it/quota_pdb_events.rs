//! events.k8s.io/v1 Events, ResourceQuota and PodDisruptionBudget REST shapes through the router,
//! as the upstream conformance tests (test/e2e/instrumentation/events.go,
//! apimachinery/resource_quota.go, apps/disruption.go) use them. Controllers are not running
//! here (see daas-controllers tests/policy.rs for usage and budget status).

use crate::common;

use common::{app, call, JSON, MERGE};
use serde_json::{json, Value};

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn event(name: &str, note: &str) -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "labels": {"testevent-set": "true"}},
        "eventTime": "2026-01-01T00:00:00.000000Z", "note": note, "action": "Do",
        "type": "Normal", "reason": "Test", "reportingController": "test-controller",
        "reportingInstance": "test-node",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}})
}

#[tokio::test]
async fn events_k8s_io_lifecycle() {
    let (_d, app) = app().await;
    let (code, e) = call(&app, "POST", EVENTS, JSON, event("e1", "first")).await;
    assert_eq!(code, 201, "{e}");
    assert_eq!(e["note"], "first");
    assert_eq!(e["regarding"]["name"], "p");
    let (code, e) = call(&app, "POST", EVENTS, JSON, event("e2", "second")).await;
    assert_eq!(code, 201, "{e}");
    let mut bad = event("bad", "x");
    bad["type"] = json!("Odd");
    let (code, st) = call(&app, "POST", EVENTS, JSON, bad).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "Event.events.k8s.io \"bad\" is invalid: type: Invalid value: \"Odd\": has invalid value, must be Normal or Warning"
    );

    let (code, e) = call(
        &app,
        "PATCH",
        &format!("{EVENTS}/e1"),
        MERGE,
        json!({"note": "patched", "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}}),
    )
    .await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(e["note"], "patched");
    assert_eq!(e["series"]["count"], 2);

    let (code, l) = call(
        &app,
        "GET",
        "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3Dp,reason%3DTest",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{l}");
    assert_eq!(l["kind"], "EventList");
    assert_eq!(l["items"].as_array().unwrap().len(), 2);

    let (code, st) = call(
        &app,
        "DELETE",
        &format!("{EVENTS}?labelSelector=testevent-set%3Dtrue"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let (_, l) = call(&app, "GET", EVENTS, JSON, Value::Null).await;
    assert!(l["items"].as_array().unwrap().is_empty(), "{l}");

    let (code, d) = call(&app, "GET", "/apis/events.k8s.io/v1", JSON, Value::Null).await;
    assert_eq!(code, 200);
    assert!(d["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "events" && r["kind"] == "Event"));
}

#[tokio::test]
async fn quota_and_budget_rest_shapes() {
    let (_d, app) = app().await;
    let quotas = "/api/v1/namespaces/default/resourcequotas";
    let (code, st) = call(
        &app,
        "POST",
        quotas,
        JSON,
        json!({"apiVersion": "v1",
        "kind": "ResourceQuota", "metadata": {"name": "bad"},
        "spec": {"hard": {"widgets": "1"}}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "ResourceQuota \"bad\" is invalid: spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource for quota"
    );
    // Status given on create is dropped; the status subresource sets it.
    let (code, q) = call(
        &app,
        "POST",
        quotas,
        JSON,
        json!({"apiVersion": "v1",
        "kind": "ResourceQuota", "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "2"}}, "status": {"hard": {"pods": "9"}}}),
    )
    .await;
    assert_eq!(code, 201, "{q}");
    assert!(
        q["status"].is_null() || q["status"]["hard"].is_null(),
        "{q}"
    );
    let (code, q) = call(
        &app,
        "PATCH",
        &format!("{quotas}/q/status"),
        MERGE,
        json!({"status": {"hard": {"pods": "2"}, "used": {"pods": "0"}}}),
    )
    .await;
    assert_eq!(code, 200, "{q}");
    assert_eq!(q["status"]["used"]["pods"], "0");

    // Budgets: both bounds refused; the eviction of a missing pod is a 404.
    let pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    let (code, st) = call(
        &app,
        "POST",
        pdbs,
        JSON,
        json!({"apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget", "metadata": {"name": "b"},
        "spec": {"minAvailable": 1, "maxUnavailable": "10%"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .ends_with("minAvailable and maxUnavailable cannot be both set"));
    let (code, p) = call(
        &app,
        "POST",
        pdbs,
        JSON,
        json!({"apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget", "metadata": {"name": "b"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "x"}}}}),
    )
    .await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["metadata"]["generation"], 1);
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/pods/nope/eviction",
        JSON,
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "nope"}}),
    )
    .await;
    assert_eq!(code, 404, "{st}");
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/pods/nope/eviction",
        JSON,
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}}),
    )
    .await;
    assert_eq!(code, 400, "{st}");
}
