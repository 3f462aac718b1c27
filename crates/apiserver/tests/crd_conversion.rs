//! CRD conversion webhooks through the router (as upstream's crd_conversion_webhook.go): a real
//! HTTPS conversion webhook started here on 127.0.0.1 (certificate from a test CA given as the
//! `caBundle`) converts between v1 (`spec.name`, the storage version) and v2 (`spec.fullName`).

mod common;
mod hookserver;

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
