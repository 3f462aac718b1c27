//! Admission webhooks end to end in process: the API server calls a real HTTPS webhook server
//! started here on 127.0.0.1 with a certificate from a test CA given as the `caBundle`.

use crate::common;
use crate::hookserver;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use common::{app, call, JSON, TOKEN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A running HTTPS webhook server: its address, the CA bundle (base64 PEM) and the reviews it got.
struct Hook {
    addr: SocketAddr,
    ca: String,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Hook {
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
    fn seen(&self, path: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The answer of the test webhook at `path` to `review`.
async fn answer(path: &str, review: &Value) -> Value {
    let uid = review["request"]["uid"].clone();
    let mut resp = json!({"uid": uid, "allowed": true});
    match path {
        "/allow" => resp["warnings"] = json!(["looked at it"]),
        "/deny" => {
            resp["allowed"] = json!(false);
            resp["status"] =
                json!({"code": 403, "reason": "Forbidden", "message": "this webhook denies it"});
        }
        "/mutate" => {
            let patch = json!([{"op": "add", "path": "/data/mutated", "value": "yes"}]);
            resp["patchType"] = json!("JSONPatch");
            resp["patch"] = json!(base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(&patch).unwrap()));
        }
        "/slow" => tokio::time::sleep(Duration::from_secs(3)).await,
        "/baduid" => resp["uid"] = json!("not-the-uid"),
        "/rename" => {
            let patch = json!([{"op": "replace", "path": "/metadata/name", "value": "other"}]);
            resp["patchType"] = json!("JSONPatch");
            resp["patch"] = json!(base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(&patch).unwrap()));
        }
        _ => {}
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
}

async fn start_hook() -> Hook {
    start_hook_for(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))).await
}

/// A webhook server whose certificate names `san`.
async fn start_hook_for(san: rcgen::SanType) -> Hook {
    let server = hookserver::start(san, |path: String, review: Value| async move {
        answer(&path, &review).await
    })
    .await;
    Hook {
        addr: server.addr,
        ca: server.ca,
        seen: server.seen,
    }
}

fn webhook(hook: &Hook, name: &str, path: &str, extra: Value) -> Value {
    let mut w = json!({
        "name": name,
        "clientConfig": {"url": hook.url(path), "caBundle": hook.ca},
        "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "objectSelector": {"matchLabels": {"hook": path.trim_start_matches('/')}},
    });
    if let Some(m) = extra.as_object() {
        for (k, v) in m {
            w[k] = v.clone();
        }
    }
    w
}

async fn configure(app: &axum::Router, mutating: bool, name: &str, webhooks: Vec<Value>) {
    let (plural, kind) = if mutating {
        (
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
        )
    } else {
        (
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
        )
    };
    let (code, body) = call(
        app,
        "POST",
        &format!("/apis/admissionregistration.k8s.io/v1/{plural}"),
        JSON,
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name}, "webhooks": webhooks}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
}

fn cm(name: &str, hook: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"hook": hook}}, "data": {"a": "1"}})
}

/// A create of `body` in `default`: code, body and Warning headers.
async fn create(app: &axum::Router, query: &str, body: Value) -> (u16, Value, Vec<String>) {
    create_with(app, query, &[], body).await
}

/// [`create`] with extra request headers (impersonation).
async fn create_with(
    app: &axum::Router,
    query: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value, Vec<String>) {
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("/api/v1/namespaces/default/configmaps{query}"))
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

#[tokio::test]
async fn webhooks_allow_deny_mutate_and_fail_per_policy() {
    let hook = start_hook().await;
    let (_dir, app) = app().await;
    configure(
        &app,
        true,
        "mutators",
        vec![webhook(&hook, "mutate.test.example", "/mutate", json!({}))],
    )
    .await;
    configure(
        &app,
        false,
        "validators",
        vec![
            webhook(&hook, "allow.test.example", "/allow", json!({})),
            webhook(&hook, "deny.test.example", "/deny", json!({})),
            webhook(&hook, "slow-ignore.test.example", "/slow", json!({"timeoutSeconds": 1, "failurePolicy": "Ignore", "objectSelector": {"matchLabels": {"hook": "slow-ignore"}}})),
            webhook(&hook, "slow-fail.test.example", "/slow", json!({"timeoutSeconds": 1, "objectSelector": {"matchLabels": {"hook": "slow-fail"}}})),
            webhook(&hook, "baduid.test.example", "/baduid", json!({})),
            webhook(
                &hook,
                "cond.test.example",
                "/deny",
                json!({
                    "objectSelector": {"matchLabels": {"hook": "cond"}},
                    "matchConditions": [{"name": "not-spared", "expression": "object.metadata.name != 'spared' && request.operation == 'CREATE'"}],
                }),
            ),
        ],
    )
    .await;

    // No webhook matches: created as sent.
    let (code, body, _) = create(&app, "", cm("plain", "none")).await;
    assert_eq!(code, 201, "{body}");
    assert!(hook.seen.lock().unwrap().is_empty());

    // Allowed, with the webhook's warning; the review tells who asked, what and how.
    let (code, body, warnings) = create(&app, "?dryRun=All", cm("allowed", "allow")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(warnings, vec!["299 - \"looked at it\""]);
    let reviews = hook.seen("/allow");
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0]["request"];
    assert_eq!(r["operation"], "CREATE");
    assert_eq!(r["namespace"], "default");
    assert_eq!(r["name"], "allowed");
    assert_eq!(
        r["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(r["userInfo"]["username"], "admin");
    assert!(r["userInfo"].get("extra").is_none(), "{r}");
    assert_eq!(r["dryRun"], true);
    assert_eq!(r["object"]["data"]["a"], "1");
    // An impersonated identity's uid and extras reach the webhook's userInfo.
    let (code, body, _) = create_with(
        &app,
        "?dryRun=All",
        &[
            ("impersonate-user", "jane"),
            ("impersonate-group", "system:masters"),
            ("impersonate-uid", "u-1"),
            ("impersonate-extra-scopes", "view"),
            ("impersonate-extra-scopes", "edit"),
        ],
        cm("allowed-extra", "allow"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let reviews = hook.seen("/allow");
    assert_eq!(reviews.len(), 2);
    assert_eq!(
        reviews[1]["request"]["userInfo"],
        json!({"username": "jane", "uid": "u-1", "groups": ["system:masters", "system:authenticated"],
            "extra": {"scopes": ["view", "edit"]}})
    );

    // Denied with the webhook's status.
    let (code, body, _) = create(&app, "", cm("denied", "deny")).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "admission webhook \"deny.test.example\" denied the request: this webhook denies it"
    );

    // matchConditions (CEL) decide whether the webhook is called.
    let (code, body, _) = create(&app, "", cm("spared", "cond")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = create(&app, "", cm("caught", "cond")).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("\"cond.test.example\" denied"));

    // Mutated by a JSONPatch, and the stored object carries the change.
    let (code, body, _) = create(&app, "", cm("mutated", "mutate")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["data"], json!({"a": "1", "mutated": "yes"}));
    let (_, got) = call(
        &app,
        "GET",
        "/api/v1/namespaces/default/configmaps/mutated",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(got["data"]["mutated"], "yes");

    // Timeouts: ignored under failurePolicy Ignore, an internal error under Fail.
    let (code, body, _) = create(&app, "", cm("slow1", "slow-ignore")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body, _) = create(&app, "", cm("slow2", "slow-fail")).await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(body["reason"], "InternalError");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Internal error occurred: failed calling webhook \"slow-fail.test.example\": failed to call webhook: Post \"https://127.0.0.1:")
            && msg.ends_with("/slow?timeout=1s\": context deadline exceeded"),
        "{msg}"
    );

    // The webhook's certificate is verified: without the test CA it is not trusted.
    let mut untrusted = webhook(
        &hook,
        "untrusted.test.example",
        "/allow",
        json!({"objectSelector": {"matchLabels": {"hook": "untrusted"}}}),
    );
    untrusted["clientConfig"] = json!({"url": hook.url("/allow")});
    configure(&app, false, "untrusted", vec![untrusted]).await;
    let (code, body, _) = create(&app, "", cm("untrusted", "untrusted")).await;
    assert_eq!(code, 500, "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("\"untrusted.test.example\"") && msg.contains("invalid peer certificate"),
        "{msg}"
    );

    // A response for another request fails the call.
    let (code, body, _) = create(&app, "", cm("bad", "baduid")).await;
    assert_eq!(code, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("expected response.uid="),
        "{body}"
    );

    // Updates and deletes are admitted too (the deny webhook sees the old object).
    let (code, _, _) = create(&app, "", cm("later", "none")).await;
    assert_eq!(code, 201);
    let (code, body) = call(
        &app,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/later",
        common::MERGE,
        json!({"metadata": {"labels": {"hook": "deny"}}}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    let (code, _) = call(
        &app,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/plain",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, body, _) = create(&app, "", cm("undeletable", "allow")).await;
    assert_eq!(code, 201, "{body}");
    let before = hook.seen("/allow").len();
    let (code, _) = call(
        &app,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/undeletable",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let del = hook.seen("/allow");
    assert_eq!(del.len(), before + 1);
    assert_eq!(del[before]["request"]["operation"], "DELETE");
    assert_eq!(
        del[before]["request"]["oldObject"]["metadata"]["name"],
        "undeletable"
    );
    assert!(del[before]["request"]["object"].is_null());
}

#[tokio::test]
async fn namespace_selector_and_exempt_configurations() {
    let hook = start_hook().await;
    let (_dir, app) = app().await;
    // Deny everything in namespaces labelled guarded=yes, including webhook configurations.
    configure(
        &app,
        false,
        "guard",
        vec![webhook(
            &hook,
            "guard.test.example",
            "/deny",
            json!({
                "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
                "objectSelector": {},
                "namespaceSelector": {"matchLabels": {"guarded": "yes"}},
            }),
        )],
    )
    .await;
    let (code, body) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "open"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "guarded", "labels": {"guarded": "yes"}}}),
    )
    .await;
    // The Namespace itself matches by its own labels.
    assert_eq!(code, 403, "{body}");
    let (code, body) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "guarded"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(
        &app,
        "POST",
        "/api/v1/namespaces/guarded/configmaps",
        JSON,
        cm("c1", "x"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(
        &app,
        "PATCH",
        "/api/v1/namespaces/guarded",
        common::MERGE,
        json!({"metadata": {"labels": {"guarded": "yes"}}}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    // Webhook configurations are never subject to webhooks: the guard can be removed.
    let (code, body) = call(
        &app,
        "DELETE",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/guard",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn invalid_configurations_are_refused() {
    let (_dir, app) = app().await;
    let (code, body) = call(
        &app,
        "POST",
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        JSON,
        json!({"metadata": {"name": "bad"}, "webhooks": [{
            "name": "bad",
            "clientConfig": {"url": "http://127.0.0.1/x"},
            "sideEffects": "Some",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 0,
        }]}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    let fields: Vec<&str> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "webhooks[0].name",
            "webhooks[0].sideEffects",
            "webhooks[0].timeoutSeconds",
            "webhooks[0].clientConfig.url"
        ],
        "{body}"
    );
    // Defaults are filled in on a valid one.
    let (code, body) = call(
        &app,
        "POST",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        JSON,
        json!({"metadata": {"name": "ok"}, "webhooks": [{
            "name": "ok.test.example",
            "clientConfig": {"service": {"name": "svc", "namespace": "default"}},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }]}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let w = &body["webhooks"][0];
    assert_eq!(w["timeoutSeconds"], 10);
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["reinvocationPolicy"], "Never");
    assert_eq!(w["clientConfig"]["service"]["port"], 443);
}

#[tokio::test]
async fn service_webhooks_reach_the_endpoints_and_delete_collection_is_admitted() {
    let hook = start_hook_for(rcgen::SanType::DnsName(
        "hook.default.svc".try_into().unwrap(),
    ))
    .await;
    let (_dir, app) = app().await;
    let (code, body) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/services",
        JSON,
        json!({"metadata": {"name": "hook"}, "spec": {"ports": [{"name": "https", "port": 443, "targetPort": hook.addr.port()}]}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let mut w = webhook(&hook, "svc.test.example", "/deny", json!({}));
    w["clientConfig"] = json!({"service": {"name": "hook", "namespace": "default", "path": "/deny"}, "caBundle": hook.ca});
    w["rules"][0]["operations"] = json!(["CREATE"]);
    let mut all = webhook(&hook, "deletes.test.example", "/allow", json!({}));
    all["clientConfig"] = json!({"service": {"name": "hook", "namespace": "default", "path": "/allow"}, "caBundle": hook.ca});
    all["rules"][0]["operations"] = json!(["DELETE"]);
    all["objectSelector"] = json!({});
    configure(&app, false, "svc", vec![w, all]).await;

    // No endpoints yet: the call fails, and failurePolicy Fail refuses the request.
    let (code, body, _) = create(&app, "", cm("first", "deny")).await;
    assert_eq!(code, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("no endpoints available for service \"hook\""),
        "{body}"
    );
    let (code, body) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/endpoints",
        JSON,
        json!({"metadata": {"name": "hook"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": hook.addr.port()}]}]}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    // Reached at the endpoint, verified as hook.default.svc.
    let (code, body, _) = create(&app, "", cm("second", "deny")).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(hook.seen("/deny").len(), 1);

    for n in ["a", "b"] {
        let (code, _, _) = create(&app, "", cm(n, "none")).await;
        assert_eq!(code, 201);
    }
    let req = Request::builder()
        .method("DELETE")
        .uri("/api/v1/namespaces/default/configmaps?labelSelector=hook%3Dnone")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers().get_all("warning").iter().count(), 2);
    let names: Vec<Value> = hook
        .seen("/allow")
        .iter()
        .map(|r| r["request"]["oldObject"]["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("a"), json!("b")]);
}

#[tokio::test]
async fn scale_writes_are_admitted_and_identity_is_kept() {
    let hook = start_hook().await;
    let (_dir, app) = app().await;
    let mut scale = webhook(
        &hook,
        "scale.test.example",
        "/deny",
        json!({"objectSelector": {}}),
    );
    scale["rules"] = json!([{"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments/scale"]}]);
    configure(&app, false, "scale", vec![scale]).await;
    configure(
        &app,
        true,
        "rename",
        vec![webhook(&hook, "rename.test.example", "/rename", json!({}))],
    )
    .await;

    let deploy = json!({"metadata": {"name": "web"}, "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let (code, body) = call(
        &app,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        JSON,
        deploy,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    // The main resource is not matched by deployments/scale.
    let (code, body) = call(
        &app,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        common::MERGE,
        json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(
        &app,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        common::MERGE,
        json!({"spec": {"replicas": 3}}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    let reviews = hook.seen("/deny");
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0]["request"];
    assert_eq!(
        r["kind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );
    assert_eq!(r["subResource"], "scale");
    assert_eq!(r["object"]["spec"]["replicas"], 3);
    assert_eq!(r["oldObject"]["spec"]["replicas"], 1);

    // A webhook may not rename what is being written.
    let (code, body, _) = create(&app, "", cm("named", "rename")).await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(
        body["message"],
        "Internal error occurred: admission webhooks may not change metadata.name"
    );
}

#[tokio::test]
async fn if_needed_webhooks_are_reinvoked_after_later_mutations() {
    let hook = start_hook().await;
    let (_dir, app) = app().await;
    let sel = json!({"objectSelector": {"matchLabels": {"hook": "reinvoke"}}});
    let mut first = webhook(&hook, "first.test.example", "/allow", sel.clone());
    first["reinvocationPolicy"] = json!("IfNeeded");
    configure(&app, true, "a-first", vec![first]).await;
    configure(
        &app,
        true,
        "b-second",
        vec![webhook(&hook, "second.test.example", "/mutate", sel)],
    )
    .await;

    let (code, body, _) = create(&app, "", cm("again", "reinvoke")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["data"]["mutated"], "yes");
    let calls = hook.seen("/allow");
    assert_eq!(
        calls.len(),
        2,
        "called once, then again after the second webhook's change"
    );
    assert!(calls[0]["request"]["object"]["data"]["mutated"].is_null());
    assert_eq!(calls[1]["request"]["object"]["data"]["mutated"], "yes");
    assert_eq!(hook.seen("/mutate").len(), 1);

    // Nothing changed after it: called once.
    let (code, body) = call(
        &app,
        "DELETE",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/b-second",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _, _) = create(&app, "", cm("once", "reinvoke")).await;
    assert_eq!(code, 201);
    assert_eq!(hook.seen("/allow").len(), 3);
}

/// The configurations are cached per server: a write through this server right after creating
/// (or deleting) a configuration is already subject to it (no stale window), and another server
/// over the same store (another master), whose cache was warm, picks the change up from its
/// store watch; so does this one for a change made straight in the store.
#[tokio::test]
async fn cached_configurations_follow_writes_here_and_in_the_store() {
    let hook = start_hook().await;
    let (_dir, store, app) = common::app_with_store().await;
    let other = common::admin_router(&store);
    // Both caches warm: nothing configured yet.
    for (i, a) in [&app, &other].into_iter().enumerate() {
        let (code, body, _) = create(a, "", cm(&format!("warm{i}"), "deny")).await;
        assert_eq!(code, 201, "{body}");
    }
    configure(
        &app,
        false,
        "denier",
        vec![webhook(&hook, "deny.example.com", "/deny", json!({}))],
    )
    .await;
    let (code, body, _) = create(&app, "", cm("at-once", "deny")).await;
    assert_eq!(code, 403, "no stale window here: {body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (code, body, _) = create(&other, "", cm("elsewhere", "deny")).await;
        if code == 403 {
            break;
        }
        assert_eq!(code, 201, "{body}");
        let (code, _) = call(
            &other,
            "DELETE",
            "/api/v1/namespaces/default/configmaps/elsewhere",
            JSON,
            Value::Null,
        )
        .await;
        assert_eq!(code, 200);
        assert!(
            std::time::Instant::now() < deadline,
            "the other server never saw it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Deleted straight in the store (as another master would): this server follows.
    store
        .delete(
            "/registry/admissionregistration.k8s.io/validatingwebhookconfigurations/denier",
            None,
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while create(&app, "", cm("after", "deny")).await.0 != 201 {
        assert!(
            std::time::Instant::now() < deadline,
            "the store change was never seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A mutating configuration made on the other server applies there at once.
    configure(
        &other,
        true,
        "mutator",
        vec![webhook(&hook, "mutate.example.com", "/mutate", json!({}))],
    )
    .await;
    let (code, body, _) = create(&other, "", cm("mutated", "mutate")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["data"]["mutated"], "yes");
}
