//! CRD conversion webhooks through the router (as upstream's crd_conversion_webhook.go): a real
//! HTTPS conversion webhook started here on 127.0.0.1 (certificate from a test CA given as the
//! `caBundle`) converts between v1 (`spec.name`, the storage version) and v2 (`spec.fullName`).

use crate::common;
use crate::hookserver;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use common::{app, call, JSON, MERGE};
use serde_json::{json, Value};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const V1: &str = "/apis/example.com/v1/namespaces/default/widgets";
const V2: &str = "/apis/example.com/v2/namespaces/default/widgets";

struct Hook {
    addr: SocketAddr,
    ca: String,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

/// Convert one widget to `desired`: v1's `spec.name` is v2's `spec.fullName`.
fn convert(mut o: Value, desired: &str) -> Value {
    let from = o["apiVersion"].as_str().unwrap_or("").to_string();
    if from != desired {
        if let Some(spec) = o["spec"].as_object_mut() {
            let (old, new) = if desired.ends_with("/v2") {
                ("name", "fullName")
            } else {
                ("fullName", "name")
            };
            if let Some(v) = spec.remove(old) {
                spec.insert(new.into(), v);
            }
        }
        o["apiVersion"] = json!(desired);
        o["metadata"]["labels"]["converted-from"] = json!(from.replace('/', "."));
    }
    o
}

fn answer(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let desired = req["desiredAPIVersion"].as_str().unwrap_or("");
    let resp = if path == "/fail" {
        json!({"uid": req["uid"], "result": {"status": "Failure", "message": "cannot convert today"}})
    } else {
        let objs: Vec<Value> = req["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| convert(o.clone(), desired))
            .collect();
        json!({"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": objs})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": resp})
}

async fn start_hook() -> Hook {
    let server = hookserver::start(
        rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        |path: String, review: Value| async move { answer(&path, &review) },
    )
    .await;
    Hook {
        addr: server.addr,
        ca: server.ca,
        seen: server.seen,
    }
}

fn crd(hook: &Hook, path: &str) -> Value {
    let schema = |field: &str| {
        json!({"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {field: {"type": "string"}}}}}})
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema("name")},
                {"name": "v2", "served": true, "storage": false, "schema": schema("fullName")},
            ],
            "conversion": {"strategy": "Webhook", "webhook": {
                "clientConfig": {"url": format!("https://{}{path}", hook.addr), "caBundle": hook.ca},
                "conversionReviewVersions": ["v1", "v1beta1"]}}
        }
    })
}

fn widget(version: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("example.com/{version}"), "kind": "Widget",
           "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn conversion_webhook_converts_reads_and_writes_between_versions() {
    let hook = start_hook().await;
    let (_d, app) = app().await;
    let (code, body) = call(&app, "POST", CRDS, JSON, crd(&hook, "/convert")).await;
    assert_eq!(code, 201, "{body}");

    // A v1 object read as v2.
    let (code, o) = call(
        &app,
        "POST",
        V1,
        JSON,
        widget("v1", "a", json!({"name": "alpha"})),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    assert!(hook.seen.lock().unwrap().is_empty(), "no conversion needed");
    let (code, o) = call(&app, "GET", &format!("{V2}/a"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["apiVersion"], "example.com/v2");
    assert_eq!(o["spec"], json!({"fullName": "alpha"}));
    assert_eq!(o["metadata"]["labels"]["converted-from"], "example.com.v1");
    {
        let seen = hook.seen.lock().unwrap();
        let (_, review) = seen.last().unwrap();
        assert_eq!(review["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(review["kind"], "ConversionReview");
        assert_eq!(review["request"]["desiredAPIVersion"], "example.com/v2");
        assert_eq!(review["request"]["objects"][0]["spec"]["name"], "alpha");
    }

    // A v2 object is stored in v1 (the storage version) and read back in either.
    let (code, o) = call(
        &app,
        "POST",
        V2,
        JSON,
        widget("v2", "b", json!({"fullName": "beta"})),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    assert_eq!(o["spec"], json!({"fullName": "beta"}));
    assert_eq!(
        hook.seen.lock().unwrap().last().unwrap().1["request"]["desiredAPIVersion"],
        "example.com/v1"
    );
    let (_, o) = call(&app, "GET", &format!("{V1}/b"), JSON, Value::Null).await;
    assert_eq!(o["spec"], json!({"name": "beta"}), "{o}");
    assert_eq!(o["apiVersion"], "example.com/v1");

    // A list of objects written in different versions comes in the requested version.
    let (code, list) = call(&app, "GET", V2, JSON, Value::Null).await;
    assert_eq!(code, 200, "{list}");
    let specs: Vec<Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["apiVersion"], "example.com/v2");
            i["spec"].clone()
        })
        .collect();
    assert_eq!(
        specs,
        vec![json!({"fullName": "alpha"}), json!({"fullName": "beta"})]
    );

    // An update through v2 is converted to the storage version.
    let (code, o) = call(
        &app,
        "PATCH",
        &format!("{V2}/a"),
        MERGE,
        json!({"spec": {"fullName": "alpha2"}}),
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["spec"], json!({"fullName": "alpha2"}));
    let (_, o) = call(&app, "GET", &format!("{V1}/a"), JSON, Value::Null).await;
    assert_eq!(o["spec"], json!({"name": "alpha2"}), "{o}");

    // A failing webhook: reads needing conversion are a 500 with upstream's message; reads in
    // the storage version still work.
    let (code, mut c) = call(
        &app,
        "GET",
        &format!("{CRDS}/widgets.example.com"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    c["spec"]["conversion"]["webhook"]["clientConfig"]["url"] =
        json!(format!("https://{}/fail", hook.addr));
    let (code, body) = call(&app, "PUT", &format!("{CRDS}/widgets.example.com"), JSON, c).await;
    assert_eq!(code, 200, "{body}");
    let (code, o) = call(&app, "GET", &format!("{V2}/a"), JSON, Value::Null).await;
    assert_eq!(code, 500, "{o}");
    assert_eq!(o["reason"], "InternalError");
    assert_eq!(
        o["message"],
        "conversion webhook for example.com/v1, Kind=Widget failed: cannot convert today"
    );
    let (code, o) = call(
        &app,
        "POST",
        V2,
        JSON,
        widget("v2", "c", json!({"fullName": "c"})),
    )
    .await;
    assert_eq!(code, 500, "{o}");
    let (code, _) = call(&app, "GET", &format!("{V2}/c"), JSON, Value::Null).await;
    assert_eq!(code, 404, "a failed conversion stores nothing");
    let (code, o) = call(&app, "GET", &format!("{V1}/a"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{o}");
}

#[tokio::test]
async fn conversion_webhook_configuration_is_validated() {
    let hook = start_hook().await;
    let (_d, app) = app().await;
    let mut c = crd(&hook, "/convert");
    c["spec"]["conversion"] = json!({"strategy": "Webhook"});
    let (code, o) = call(&app, "POST", CRDS, JSON, c).await;
    assert_eq!(code, 422, "{o}");
    assert!(o["message"].as_str().unwrap().contains(
        "spec.conversion.webhook: Required value: required when strategy is set to Webhook"
    ));
    let mut c = crd(&hook, "/convert");
    c["spec"]["conversion"]["strategy"] = json!("None");
    let (code, o) = call(&app, "POST", CRDS, JSON, c).await;
    assert_eq!(code, 422, "{o}");
    assert!(o["message"]
        .as_str()
        .unwrap()
        .contains("spec.conversion.webhook: Forbidden"));
}

async fn labelled(app: &axum::Router, version: &str, name: &str, spec: Value, tier: &str) {
    let path = if version == "v1" { V1 } else { V2 };
    let mut w = widget(version, name, spec);
    w["metadata"]["labels"] = json!({"tier": tier});
    let (code, o) = call(app, "POST", path, JSON, w).await;
    assert_eq!(code, 201, "{o}");
}

#[tokio::test]
async fn watches_and_selectors_see_objects_as_converted() {
    let hook = start_hook().await;
    let (_d, app) = app().await;
    let (code, body) = call(&app, "POST", CRDS, JSON, crd(&hook, "/convert")).await;
    assert_eq!(code, 201, "{body}");
    labelled(&app, "v1", "a", json!({"name": "alpha"}), "front").await;
    labelled(&app, "v1", "b", json!({"name": "beta"}), "back").await;

    // The label `converted-from` exists only on the converted objects: a list selecting on it
    // sees them as served, in pages too.
    let sel = "labelSelector=converted-from%3Dexample.com.v1";
    let (code, list) = call(&app, "GET", &format!("{V2}?{sel}"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list["items"][0]["spec"], json!({"fullName": "alpha"}));
    let (_, list) = call(&app, "GET", &format!("{V1}?{sel}"), JSON, Value::Null).await;
    assert_eq!(
        list["items"],
        json!([]),
        "no conversion to the stored version"
    );
    let (_, page) = call(
        &app,
        "GET",
        &format!("{V2}?{sel},tier%3Dback&limit=1"),
        JSON,
        Value::Null,
    )
    .await;
    let mut names: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].clone())
        .collect();
    if let Some(c) = page["metadata"]["continue"].as_str() {
        let (_, rest) = call(
            &app,
            "GET",
            &format!("{V2}?{sel},tier%3Dback&limit=1&continue={c}"),
            JSON,
            Value::Null,
        )
        .await;
        names.extend(
            rest["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].clone()),
        );
    }
    assert_eq!(names, vec![json!("b")]);

    // A watch through v2: the initial events and the later ones come converted, batched for the
    // initial state; the selector sees the converted labels.
    let reviews_before = hook.seen.lock().unwrap().len();
    let resp = common::watch_open(&app, &format!("{V2}?watch=true&timeoutSeconds=2&{sel}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        hook.seen.lock().unwrap().len(),
        reviews_before + 1,
        "one review for the initial state"
    );
    let (code, o) = call(
        &app,
        "PATCH",
        &format!("{V1}/a"),
        MERGE,
        json!({"spec": {"name": "alpha2"}}),
    )
    .await;
    assert_eq!(code, 200, "{o}");
    labelled(&app, "v2", "c", json!({"fullName": "gamma"}), "front").await;
    let (code, _) = call(&app, "DELETE", &format!("{V1}/b"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    let events = common::watch_events(resp).await;
    let seen: Vec<(String, String, Value)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["object"]["apiVersion"], "example.com/v2", "{e}");
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["object"]["spec"].clone(),
            )
        })
        .collect();
    let ev = |t: &str, n: &str, s: Value| (t.to_string(), n.to_string(), s);
    assert_eq!(
        seen,
        vec![
            ev("ADDED", "a", json!({"fullName": "alpha"})),
            ev("ADDED", "b", json!({"fullName": "beta"})),
            ev("MODIFIED", "a", json!({"fullName": "alpha2"})),
            ev("ADDED", "c", json!({"fullName": "gamma"})),
            ev("DELETED", "b", json!({"fullName": "beta"})),
        ]
    );

    // A watch in the storage version needs no conversion; with the converted-only label it
    // selects nothing.
    let resp = common::watch_open(&app, &format!("{V1}?watch=true&timeoutSeconds=1&{sel}")).await;
    assert!(common::watch_events(resp).await.is_empty());

    // A failing webhook ends the watch with an ERROR event carrying a 500 Status: at once for
    // the initial state, and at the first event needing conversion for a watch from a revision.
    let rv = call(&app, "GET", V1, JSON, Value::Null).await.1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, mut c) = call(
        &app,
        "GET",
        &format!("{CRDS}/widgets.example.com"),
        JSON,
        Value::Null,
    )
    .await;
    c["spec"]["conversion"]["webhook"]["clientConfig"]["url"] =
        json!(format!("https://{}/fail", hook.addr));
    let (code, body) = call(&app, "PUT", &format!("{CRDS}/widgets.example.com"), JSON, c).await;
    assert_eq!(code, 200, "{body}");
    let resp = common::watch_open(&app, &format!("{V2}?watch=true&timeoutSeconds=5")).await;
    assert_eq!(resp.status(), 200);
    let events = common::watch_events(resp).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 500);
    assert_eq!(events[0]["object"]["reason"], "InternalError");
    assert_eq!(
        events[0]["object"]["message"],
        "conversion webhook for example.com/v1, Kind=Widget failed: cannot convert today"
    );
    let resp = common::watch_open(
        &app,
        &format!("{V2}?watch=true&timeoutSeconds=5&resourceVersion={rv}"),
    )
    .await;
    let (code, _) = call(
        &app,
        "PATCH",
        &format!("{V1}/c"),
        MERGE,
        json!({"spec": {"name": "g2"}}),
    )
    .await;
    assert_eq!(code, 200);
    let events = common::watch_events(resp).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 500);
}
