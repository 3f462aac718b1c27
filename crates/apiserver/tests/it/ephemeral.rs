//! `pods/ephemeralcontainers` through the real router: get/update/patch add ephemeral
//! containers (validated as upstream validateEphemeralContainers), never remove or change them;
//! the main resource cannot touch them; each identity tries what it must not do.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::{self, ADMIN, ALICE, NODE};
const SMP: &str = "application/strategic-merge-patch+json";

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

async fn env() -> Env {
    let (dir, app) = common::tenancy_app().await;
    let e = Env { _dir: dir, app };
    for ns in ["u-alice", "u-bob"] {
        let (code, body) = e
            .call(
                ADMIN,
                "POST",
                &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                json!({"metadata": {"name": "default"}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        // Restricted, as the user tier's Pod Security requires.
        let pod = json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n1",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                "securityContext": restricted()}]}});
        let (code, body) = e
            .call(ADMIN, "POST", &format!("/api/v1/namespaces/{ns}/pods"), pod)
            .await;
        assert_eq!(code, 201, "{body}");
    }
    e
}

impl Env {
    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call_ct(token, method, path, "application/json", body)
            .await
    }

    async fn call_ct(
        &self,
        token: &str,
        method: &str,
        path: &str,
        ct: &str,
        body: Value,
    ) -> (u16, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", ct);
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(bytes)).unwrap())
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }
}

const SUB: &str = "/api/v1/namespaces/u-alice/pods/web/ephemeralcontainers";

fn restricted() -> Value {
    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
}

fn debugger(name: &str) -> Value {
    json!({"name": name, "image": "busybox", "command": ["sh"], "stdin": true, "tty": true,
        "targetContainerName": "c", "securityContext": restricted()})
}

fn add_patch(c: Value) -> Value {
    json!({"spec": {"ephemeralContainers": [c]}})
}

#[track_caller]
fn invalid(code: u16, body: &Value, field: &str, message: &str) {
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    let causes = body["details"]["causes"].as_array().expect("causes");
    assert!(
        causes
            .iter()
            .any(|c| c["field"] == field && c["message"].as_str().unwrap_or("").contains(message)),
        "no cause {field}: {message} in {body}"
    );
}

#[tokio::test]
async fn ephemeral_containers_are_added_never_removed_or_changed() {
    let e = env().await;
    // Discovery lists the subresource (and attach).
    let (code, body) = e.call(ADMIN, "GET", "/api/v1", Value::Null).await;
    assert_eq!(code, 200);
    let names: Vec<&str> = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"pods/ephemeralcontainers") && names.contains(&"pods/attach"));
    // GET gives the pod.
    let (code, body) = e.call(ALICE, "GET", SUB, Value::Null).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["kind"], "Pod");
    // A strategic merge patch (as kubectl debug sends) adds one, defaulted.
    let (code, body) = e
        .call_ct(ALICE, "PATCH", SUB, SMP, add_patch(debugger("debugger")))
        .await;
    assert_eq!(code, 200, "{body}");
    let eph = &body["spec"]["ephemeralContainers"];
    assert_eq!(eph.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(eph[0]["targetContainerName"], "c");
    assert_eq!(eph[0]["imagePullPolicy"], "Always");
    assert_eq!(eph[0]["terminationMessagePolicy"], "File");
    // A second patch merges by name: both are there.
    let (code, body) = e
        .call_ct(ALICE, "PATCH", SUB, SMP, add_patch(debugger("second")))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["spec"]["ephemeralContainers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Nothing else of the pod changes through the subresource.
    let mut pod = body.clone();
    pod["spec"]["containers"][0]["image"] = json!("nginx");
    pod["metadata"]["labels"] = json!({"sneaky": "yes"});
    let (code, out) = e.call(ALICE, "PUT", SUB, pod).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["spec"]["containers"][0]["image"], "busybox");
    assert!(out["metadata"]["labels"]["sneaky"].is_null(), "{out}");
    // Removing one: 422.
    let mut removed = out.clone();
    removed["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["name"] != "debugger");
    let (code, body) = e.call(ALICE, "PUT", SUB, removed).await;
    invalid(
        code,
        &body,
        "spec.ephemeralContainers",
        "existing ephemeral containers \"debugger\" may not be removed",
    );
    // Changing one: 422.
    let mut changed = out.clone();
    for c in changed["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|c| c["name"] == "second")
    {
        c["image"] = json!("alpine");
    }
    let (code, body) = e.call(ALICE, "PUT", SUB, changed).await;
    invalid(
        code,
        &body,
        "spec.ephemeralContainers",
        "existing ephemeral containers \"second\" may not be changed",
    );
    // The main resource cannot add, change or remove them.
    let mut main = out.clone();
    main["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(debugger("third"));
    let (code, body) = e
        .call(ALICE, "PUT", "/api/v1/namespaces/u-alice/pods/web", main)
        .await;
    invalid(
        code,
        &body,
        "spec",
        "Forbidden: pod updates may not change fields",
    );
    // Nor can a pod be created with one.
    let pod = json!({"metadata": {"name": "born"}, "spec": {
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "busybox", "securityContext": restricted()}],
        "ephemeralContainers": [debugger("d")]}});
    let (code, body) = e
        .call(ALICE, "POST", "/api/v1/namespaces/u-alice/pods", pod)
        .await;
    invalid(
        code,
        &body,
        "spec.ephemeralContainers",
        "cannot create pods with ephemeral containers",
    );
}

#[tokio::test]
async fn ephemeral_container_validation_as_upstream() {
    let e = env().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            {
                let mut c = debugger("p");
                c["ports"] = json!([{"containerPort": 80}]);
                c
            },
            "spec.ephemeralContainers[0].ports",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            {
                let mut c = debugger("r");
                c["resources"] = json!({"limits": {"cpu": "1"}});
                c
            },
            "spec.ephemeralContainers[0].resources",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            {
                let mut c = debugger("l");
                c["livenessProbe"] = json!({"exec": {"command": ["true"]}});
                c
            },
            "spec.ephemeralContainers[0].livenessProbe",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            {
                let mut c = debugger("h");
                c["lifecycle"] = json!({"postStart": {"exec": {"command": ["true"]}}});
                c
            },
            "spec.ephemeralContainers[0].lifecycle",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            debugger("c"),
            "spec.ephemeralContainers[0].name",
            "Duplicate value: \"c\"",
        ),
        (
            {
                let mut c = debugger("t");
                c["targetContainerName"] = json!("nope");
                c
            },
            "spec.ephemeralContainers[0].targetContainerName",
            "Not found: \"nope\"",
        ),
        (
            {
                let mut c = debugger("m");
                c["volumeMounts"] = json!([{"name": "data", "mountPath": "/d", "subPath": "x"}]);
                c
            },
            "spec.ephemeralContainers[0].volumeMounts[0].subPath",
            "Forbidden: cannot be set for an Ephemeral Container",
        ),
        (
            json!({"name": "Bad_Name", "image": "busybox"}),
            "spec.ephemeralContainers[0].name",
            "Invalid value",
        ),
        (
            json!({"name": "noimage"}),
            "spec.ephemeralContainers[0].image",
            "Required value",
        ),
    ];
    for (c, field, message) in cases {
        let (code, body) = e.call_ct(ALICE, "PATCH", SUB, SMP, add_patch(c)).await;
        invalid(code, &body, field, message);
    }
    // A mount of the pod's volume (without subPath) is fine.
    let mut c = debugger("ok");
    c["volumeMounts"] = json!([{"name": "data", "mountPath": "/d"}]);
    let (code, body) = e.call_ct(ALICE, "PATCH", SUB, SMP, add_patch(c)).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn only_authorized_identities_add_ephemeral_containers() {
    let e = env().await;
    let patch = add_patch(debugger("x"));
    // Unauthenticated: 401.
    let (code, body) = e.call_ct("", "PATCH", SUB, SMP, patch.clone()).await;
    assert_eq!(code, 401, "{body}");
    // A node (even the pod's own) may not: 403.
    let (code, body) = e.call_ct(NODE, "PATCH", SUB, SMP, patch.clone()).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"web\" is forbidden: User \"system:node:n1\" cannot patch resource \"pods/ephemeralcontainers\" in API group \"\" in the namespace \"u-alice\""
    );
    let (code, _) = e.call(NODE, "GET", SUB, Value::Null).await;
    assert_eq!(code, 403);
    // A tenant outside its namespace: 403.
    let bob = "/api/v1/namespaces/u-bob/pods/web/ephemeralcontainers";
    let (code, body) = e.call_ct(ALICE, "PATCH", bob, SMP, patch.clone()).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"web\" is forbidden: User \"daas:user:0xa11ce\" cannot patch resource \"pods/ephemeralcontainers\" in API group \"\" in the namespace \"u-bob\""
    );
    // Pod Security (restricted for the user tier) applies to ephemeral containers: a
    // privileged one is refused.
    let mut root = debugger("root");
    root["securityContext"] = json!({"privileged": true});
    let (code, body) = e.call_ct(ALICE, "PATCH", SUB, SMP, add_patch(root)).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("violates PodSecurity"),
        "{body}"
    );
    // The admin may.
    let (code, body) = e.call_ct(ADMIN, "PATCH", SUB, SMP, patch).await;
    assert_eq!(code, 200, "{body}");
    // The subresource of a kind without it: 404.
    let (code, _) = e
        .call(
            ADMIN,
            "GET",
            "/api/v1/namespaces/u-alice/configmaps/x/ephemeralcontainers",
            Value::Null,
        )
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn only_authorized_identities_attach() {
    let e = env().await;
    let path = "/api/v1/namespaces/u-bob/pods/web/attach?stdin=true&stdout=true";
    let (code, _) = e.call("", "GET", path, Value::Null).await;
    assert_eq!(code, 401);
    let (code, body) = e.call(ALICE, "GET", path, Value::Null).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"web\" is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"pods/attach\" in API group \"\" in the namespace \"u-bob\""
    );
    let (code, body) = e.call(NODE, "POST", path, Value::Null).await;
    assert_eq!(code, 403, "{body}");
    // In its own namespace the tenant is authorized; the options are then validated (400).
    let (code, body) = e
        .call(
            ALICE,
            "GET",
            "/api/v1/namespaces/u-alice/pods/web/attach?container=c",
            Value::Null,
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["message"],
        "you must specify at least 1 of stdin, stdout, stderr"
    );
    // A container the pod does not have: 400, as upstream.
    let (code, body) = e
        .call(
            ALICE,
            "GET",
            "/api/v1/namespaces/u-alice/pods/web/attach?container=nope&stdout=true",
            Value::Null,
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["message"], "container nope is not valid for pod web");
}
