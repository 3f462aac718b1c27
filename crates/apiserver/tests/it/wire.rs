//! Wire formats of request bodies, through the whole router: protobuf DeleteOptions
//! (client-go's default), field selectors on defaulted fields, duplicate fields under strict
//! field validation.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use daas_apiserver::{router, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let auth = Arc::new(StaticTokens::new(vec![(
        TOKEN.into(),
        User {
            name: "admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        },
    )]));
    let app = router(store, auth, ServerOptions::default());
    Env { _dir: dir, app }
}

struct Resp {
    code: StatusCode,
    warnings: Vec<String>,
    body: Value,
}

impl Env {
    async fn call(&self, method: &str, path: &str, ct: &str, body: Vec<u8>) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let code = resp.status();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            code,
            warnings,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn create_cm(&self, name: &str) -> Value {
        let r = self
            .call(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                serde_json::to_vec(&json!({"metadata": {"name": name, "labels": {"app": "wire"}}, "data": {"k": "v"}}))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
        r.body
    }

    async fn cm_exists(&self, name: &str) -> bool {
        let r = self
            .call(
                "GET",
                &format!("/api/v1/namespaces/default/configmaps/{name}"),
                "",
                vec![],
            )
            .await;
        match r.code {
            StatusCode::OK => true,
            StatusCode::NOT_FOUND => false,
            other => panic!("GET {name}: {other} {}", r.body),
        }
    }
}

// --- protobuf as client-go's gogo-protobuf marshaller writes it.

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
fn field_bytes(tag: u64, b: &[u8], out: &mut Vec<u8>) {
    varint(tag << 3 | 2, out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}
fn field_varint(tag: u64, v: u64, out: &mut Vec<u8>) {
    varint(tag << 3, out);
    varint(v, out);
}

/// `k8s\0` + runtime.Unknown wrapping a v1 DeleteOptions.
fn delete_options_pb(
    grace: Option<i64>,
    uid: Option<&str>,
    policy: Option<&str>,
    dry_run: bool,
) -> Vec<u8> {
    let mut raw = Vec::new();
    if let Some(g) = grace {
        field_varint(1, g as u64, &mut raw);
    }
    if let Some(u) = uid {
        let mut pre = Vec::new();
        field_bytes(1, u.as_bytes(), &mut pre);
        field_bytes(2, &pre, &mut raw);
    }
    if let Some(p) = policy {
        field_bytes(4, p.as_bytes(), &mut raw);
    }
    if dry_run {
        field_bytes(5, b"All", &mut raw);
    }
    let mut tm = Vec::new();
    field_bytes(1, b"v1", &mut tm);
    field_bytes(2, b"DeleteOptions", &mut tm);
    let mut unk = Vec::new();
    field_bytes(1, &tm, &mut unk);
    field_bytes(2, &raw, &mut unk);
    field_bytes(3, b"", &mut unk);
    field_bytes(4, b"", &mut unk);
    let mut out = b"k8s\0".to_vec();
    out.extend_from_slice(&unk);
    out
}

#[tokio::test]
async fn delete_with_protobuf_delete_options() {
    let e = env().await;
    let cm = e.create_cm("pb").await;
    let path = "/api/v1/namespaces/default/configmaps/pb";

    // dryRun in the protobuf body: answered, nothing deleted.
    let r = e
        .call(
            "DELETE",
            path,
            PROTOBUF,
            delete_options_pb(None, None, None, true),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert!(e.cm_exists("pb").await);

    // A UID precondition that does not match: 409 Conflict.
    let r = e
        .call(
            "DELETE",
            path,
            PROTOBUF,
            delete_options_pb(Some(0), Some("not-the-uid"), None, false),
        )
        .await;
    assert_eq!(r.code, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .contains("Precondition failed: UID in precondition: not-the-uid"));
    assert!(e.cm_exists("pb").await);

    // An unsupported propagation policy in protobuf is validated like JSON's.
    let r = e
        .call(
            "DELETE",
            path,
            PROTOBUF,
            delete_options_pb(None, None, Some("Sideways"), false),
        )
        .await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    // The real thing, as the e2e framework's client sends it.
    let uid = cm["metadata"]["uid"].as_str().unwrap();
    let r = e
        .call(
            "DELETE",
            path,
            PROTOBUF,
            delete_options_pb(Some(0), Some(uid), Some("Background"), false),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "Success");
    assert!(!e.cm_exists("pb").await);
}

#[tokio::test]
async fn malformed_protobuf_delete_options_is_a_bad_request() {
    let e = env().await;
    e.create_cm("bad").await;
    let mut body = delete_options_pb(Some(0), None, None, false);
    body.truncate(body.len() - 1);
    let r = e
        .call(
            "DELETE",
            "/api/v1/namespaces/default/configmaps/bad",
            PROTOBUF,
            body,
        )
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["reason"], "BadRequest");
    assert!(e.cm_exists("bad").await);
}

#[tokio::test]
async fn delete_collection_with_protobuf_delete_options() {
    let e = env().await;
    e.create_cm("c1").await;
    e.create_cm("c2").await;
    let path = "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dwire";

    let r = e
        .call(
            "DELETE",
            path,
            PROTOBUF,
            delete_options_pb(None, None, None, true),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert!(e.cm_exists("c1").await && e.cm_exists("c2").await);

    let r = e
        .call(
            "DELETE",
            path,
            PROTOBUF,
            delete_options_pb(Some(0), None, Some("Background"), false),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert!(!e.cm_exists("c1").await && !e.cm_exists("c2").await);
}

#[tokio::test]
async fn unschedulable_false_selects_nodes_without_the_field() {
    let e = env().await;
    for (name, spec) in [
        ("plain", json!({})),
        ("cordoned", json!({"unschedulable": true})),
    ] {
        let r = e
            .call(
                "POST",
                "/api/v1/nodes",
                "application/json",
                serde_json::to_vec(&json!({"metadata": {"name": name}, "spec": spec})).unwrap(),
            )
            .await;
        assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = e
        .call(
            "GET",
            "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse",
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(names(&r.body), vec!["plain"]);
    let r = e
        .call(
            "GET",
            "/api/v1/nodes?fieldSelector=spec.unschedulable%21%3Dfalse",
            "",
            vec![],
        )
        .await;
    assert_eq!(names(&r.body), vec!["cordoned"]);
}

/// The body of the upstream conformance test "should detect unknown and duplicate fields of a
/// typed object", byte for byte in substance.
const DUP_DEPLOYMENT: &str = r#"{
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "my-dep", "labels": {"app": "nginx"}},
    "spec": {
        "unknownField": "foo",
        "replicas": 2,
        "replicas": 3,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}
        }
    }
}"#;

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn strict_field_validation_refuses_duplicate_fields() {
    let e = env().await;
    let r = e
        .call(
            "POST",
            &format!("{DEPLOYMENTS}?fieldManager=field_validation_mgr&fieldValidation=Strict"),
            "application/json",
            DUP_DEPLOYMENT.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["reason"], "BadRequest");
    let msg = r.body["message"].as_str().unwrap();
    assert!(
        msg.contains(r#"strict decoding error: unknown field "spec.unknownField", duplicate field "spec.replicas""#),
        "{msg}"
    );
    let r = e
        .call("GET", &format!("{DEPLOYMENTS}/my-dep"), "", vec![])
        .await;
    assert_eq!(r.code, StatusCode::NOT_FOUND, "nothing was created");
}

#[tokio::test]
async fn warn_field_validation_reports_duplicate_fields_as_warnings() {
    let e = env().await;
    for path in [
        DEPLOYMENTS.to_string(),
        format!("{DEPLOYMENTS}?fieldValidation=Warn"),
    ] {
        let r = e
            .call(
                "POST",
                &path,
                "application/json",
                DUP_DEPLOYMENT.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
        assert!(
            r.warnings
                .iter()
                .any(|w| w == r#"299 - "duplicate field \"spec.replicas\"""#),
            "{:?}",
            r.warnings
        );
        assert!(
            r.warnings.iter().any(|w| w.contains("unknown field")),
            "{:?}",
            r.warnings
        );
        // The last value wins, as in Go.
        assert_eq!(r.body["spec"]["replicas"], 3);
        let r = e
            .call("DELETE", &format!("{DEPLOYMENTS}/my-dep"), "", vec![])
            .await;
        assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    }
    // Ignore: no warnings at all.
    let r = e
        .call(
            "POST",
            &format!("{DEPLOYMENTS}?fieldValidation=Ignore"),
            "application/json",
            DUP_DEPLOYMENT.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[tokio::test]
async fn strict_update_with_duplicate_fields_changes_nothing() {
    let e = env().await;
    e.create_cm("dup").await;
    let path = "/api/v1/namespaces/default/configmaps/dup";
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"k":"new","k":"newer"}}"#;
    let r = e
        .call(
            "PUT",
            &format!("{path}?fieldValidation=Strict"),
            "application/json",
            body.to_vec(),
        )
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(
        r.body["message"],
        r#"strict decoding error: duplicate field "data.k""#
    );
    let r = e.call("GET", path, "", vec![]).await;
    assert_eq!(r.body["data"]["k"], "v");
    // Warn (default): written, with the warning.
    let r = e.call("PUT", path, "application/json", body.to_vec()).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["k"], "newer");
    assert_eq!(r.warnings, [r#"299 - "duplicate field \"data.k\"""#]);
}

#[tokio::test]
async fn yaml_bodies_with_duplicate_fields() {
    let e = env().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  labels: {a: '1', a: '2'}\ndata:\n  k: one\n  k: two\n";
    let r = e
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            "application/yaml",
            yaml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST, "{}", r.body);
    // As upstream's strict YAML-to-JSON conversion (go-yaml) words it, with the lines of the
    // repeated keys.
    assert_eq!(
        r.body["message"],
        "strict decoding error: error converting YAML to JSON: yaml: unmarshal errors:\n  \
         line 5: key \"a\" already set in map\n  line 8: key \"k\" already set in map"
    );
    let r = e
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/yaml",
            yaml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["k"], "two");
    assert_eq!(
        r.warnings,
        [
            r#"299 - "error converting YAML to JSON: yaml: unmarshal errors:   line 5: key \"a\" already set in map   line 8: key \"k\" already set in map""#
        ]
    );
}

#[tokio::test]
async fn merge_patches_with_duplicate_fields() {
    let e = env().await;
    e.create_cm("pd").await;
    let path = "/api/v1/namespaces/default/configmaps/pd";
    let patch = br#"{"data":{"k":"a","k":"b"}}"#;
    for ct in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let r = e
            .call(
                "PATCH",
                &format!("{path}?fieldValidation=Strict"),
                ct,
                patch.to_vec(),
            )
            .await;
        assert_eq!(r.code, StatusCode::BAD_REQUEST, "{ct}: {}", r.body);
        assert_eq!(
            r.body["message"],
            r#"strict decoding error: duplicate field "data.k""#
        );
    }
    let r = e.call("GET", path, "", vec![]).await;
    assert_eq!(r.body["data"]["k"], "v", "a refused patch changes nothing");
    let r = e
        .call(
            "PATCH",
            path,
            "application/merge-patch+json",
            patch.to_vec(),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"]["k"], "b");
    assert_eq!(r.warnings, [r#"299 - "duplicate field \"data.k\"""#]);
}
