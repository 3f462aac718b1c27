//! core/v1 and events.k8s.io/v1 Events share one store, as upstream serves them
//! (test/e2e/instrumentation/events.go, core_events.go): an Event written through either API is
//! read, listed, selected, patched and watched through the other, converted field by field.

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{app, call, call_accept, JSON, MERGE, TOKEN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";
const CORE: &str = "/api/v1/namespaces/default/events";

fn new_event(name: &str) -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2026-01-01T00:00:00.000000Z", "note": "from events", "action": "Do",
        "type": "Normal", "reason": "Test", "reportingController": "test-controller",
        "reportingInstance": "test-node",
        "deprecatedCount": 2,
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}})
}

fn core_event(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name},
        "message": "from core", "reason": "Scheduled", "type": "Warning", "count": 4,
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z",
        "involvedObject": {"kind": "Pod", "name": "q", "namespace": "default"}})
}

#[tokio::test]
async fn written_through_one_api_read_through_the_other() {
    let (_d, app) = app().await;
    let (code, made) = call(&app, "POST", V1, JSON, new_event("e1")).await;
    assert_eq!(code, 201, "{made}");
    assert_eq!(made["apiVersion"], "events.k8s.io/v1");
    assert_eq!(made["note"], "from events");

    // Read through core: converted.
    let (code, c) = call(&app, "GET", &format!("{CORE}/e1"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{c}");
    assert_eq!(c["apiVersion"], "v1");
    assert_eq!(c["message"], "from events");
    assert_eq!(c["involvedObject"]["name"], "p");
    assert_eq!(c["reportingComponent"], "test-controller");
    assert_eq!(c["count"], 2);
    assert!(c.get("note").is_none() && c.get("regarding").is_none());
    assert_eq!(c["metadata"]["uid"], made["metadata"]["uid"]);

    // Written through core, read through events.k8s.io.
    let (code, made) = call(&app, "POST", CORE, JSON, core_event("e2")).await;
    assert_eq!(code, 201, "{made}");
    let (code, e) = call(&app, "GET", &format!("{V1}/e2"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{e}");
    assert_eq!(e["apiVersion"], "events.k8s.io/v1");
    assert_eq!(e["note"], "from core");
    assert_eq!(e["regarding"]["name"], "q");
    assert_eq!(e["deprecatedSource"]["host"], "n1");
    assert_eq!(e["deprecatedCount"], 4);
    assert_eq!(e["deprecatedLastTimestamp"], "2026-01-01T00:01:00Z");

    // Both lists hold both events, each in its own form.
    for (path, field) in [(CORE, "message"), (V1, "note")] {
        let (code, l) = call(&app, "GET", path, JSON, Value::Null).await;
        assert_eq!(code, 200, "{l}");
        let mut got: Vec<&str> = l["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[field].as_str().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, vec!["from core", "from events"], "{path}");
    }

    // Field selectors use the requested version's field names.
    let (code, l) = call(
        &app,
        "GET",
        &format!("{V1}?fieldSelector=regarding.name%3Dq"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{l}");
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
    assert_eq!(l["items"][0]["metadata"]["name"], "e2");
    let (code, l) = call(
        &app,
        "GET",
        &format!("{CORE}?fieldSelector=involvedObject.name%3Dp&limit=5"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{l}");
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
    assert_eq!(l["items"][0]["metadata"]["name"], "e1");

    // A patch applies to the requested version's form and is stored converted.
    let (code, p) = call(
        &app,
        "PATCH",
        &format!("{V1}/e2"),
        MERGE,
        json!({"note": "patched", "series": {"count": 5, "lastObservedTime": "2026-01-01T00:02:00.000000Z"}}),
    )
    .await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["note"], "patched");
    let (_, c) = call(&app, "GET", &format!("{CORE}/e2"), JSON, Value::Null).await;
    assert_eq!(c["message"], "patched");
    assert_eq!(c["series"]["count"], 5);
    assert!(c.get("note").is_none());

    // An update through core is seen through events.k8s.io.
    let mut c = c;
    c["message"] = json!("updated");
    let (code, u) = call(&app, "PUT", &format!("{CORE}/e2"), JSON, c).await;
    assert_eq!(code, 200, "{u}");
    let (_, e) = call(&app, "GET", &format!("{V1}/e2"), JSON, Value::Null).await;
    assert_eq!(e["note"], "updated");

    // The core table (kubectl get events) shows an event written through events.k8s.io.
    let (code, t) = call_accept(
        &app,
        "GET",
        &format!("{CORE}/e1"),
        JSON,
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        None,
    )
    .await;
    assert_eq!(code, 200, "{t}");
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[3], "pod/p");
    assert_eq!(cells[6], "from events");

    // Deleting through one API removes it from both.
    let (code, _) = call(&app, "DELETE", &format!("{CORE}/e1"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    let (code, _) = call(&app, "GET", &format!("{V1}/e1"), JSON, Value::Null).await;
    assert_eq!(code, 404);
}

/// Watch events carry the watched version's form, and its field selectors apply to it.
#[tokio::test]
async fn watch_through_events_api_sees_core_writes() {
    let (_d, app) = app().await;
    let (code, l) = call(&app, "GET", V1, JSON, Value::Null).await;
    assert_eq!(code, 200);
    let rv = l["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = call(&app, "POST", CORE, JSON, core_event("w1")).await;
    assert_eq!(code, 201);
    let mut other = core_event("w2");
    other["involvedObject"]["name"] = json!("elsewhere");
    let (code, _) = call(&app, "POST", CORE, JSON, other).await;
    assert_eq!(code, 201);

    let req = Request::builder()
        .uri(format!(
            "{V1}?watch=true&resourceVersion={rv}&timeoutSeconds=1&fieldSelector=regarding.name%3Dq"
        ))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let events: Vec<Value> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ADDED");
    let o = &events[0]["object"];
    assert_eq!(o["apiVersion"], "events.k8s.io/v1");
    assert_eq!(o["metadata"]["name"], "w1");
    assert_eq!(o["note"], "from core");
}
