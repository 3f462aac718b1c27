//! Protobuf responses through the whole router, read back by an independent
//! protobuf implementation (prost messages written from upstream's
//! `generated.proto`), the way client-go's default content type talks to the
//! API server: objects, lists, errors, watch streams; plus Accept negotiation
//! (q-values, Table, YAML, 406).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use daas_apiserver::resources::{Subresource, RESOURCES};
use daas_apiserver::{router, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use prost::Message;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";
/// The master's controller identity: the only writer of daas.io/v1 Usage.
const CONTROLLER_TOKEN: &str = "c0ntroller";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

// --- prost messages (proto2: every field optional), tags from upstream generated.proto.

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    content_type: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Time {
    #[prost(int64, optional, tag = "1")]
    seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    nanos: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "5")]
    uid: Option<String>,
    #[prost(string, optional, tag = "6")]
    resource_version: Option<String>,
    #[prost(message, optional, tag = "8")]
    creation_timestamp: Option<Time>,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ListMeta {
    #[prost(string, optional, tag = "1")]
    self_link: Option<String>,
    #[prost(string, optional, tag = "2")]
    resource_version: Option<String>,
    #[prost(string, optional, tag = "3")]
    r#continue: Option<String>,
    #[prost(int64, optional, tag = "4")]
    remaining_item_count: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMapList {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    items: Vec<ConfigMap>,
}

#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
    #[prost(string, optional, tag = "2")]
    status: Option<String>,
    #[prost(string, optional, tag = "3")]
    message: Option<String>,
    #[prost(string, optional, tag = "4")]
    reason: Option<String>,
    #[prost(message, optional, tag = "5")]
    details: Option<StatusDetails>,
    #[prost(int32, optional, tag = "6")]
    code: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct StatusDetails {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    group: Option<String>,
    #[prost(string, optional, tag = "3")]
    kind: Option<String>,
    #[prost(int32, optional, tag = "5")]
    retry_after_seconds: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct WatchEvent {
    #[prost(string, optional, tag = "1")]
    r#type: Option<String>,
    #[prost(message, optional, tag = "2")]
    object: Option<RawExtension>,
}

#[derive(Clone, PartialEq, Message)]
struct RawExtension {
    #[prost(bytes = "vec", optional, tag = "1")]
    raw: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct Deployment {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<DeploymentSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct DeploymentSpec {
    #[prost(int32, optional, tag = "1")]
    replicas: Option<i32>,
}

/// Strip `k8s\0`, decode the envelope, return (apiVersion, kind, raw).
fn unwrap(body: &[u8]) -> (String, String, Vec<u8>) {
    let rest = body
        .strip_prefix(b"k8s\0".as_slice())
        .unwrap_or_else(|| panic!("no magic prefix: {body:02x?}"));
    let u = Unknown::decode(rest).expect("runtime.Unknown");
    // The real server writes both empty strings.
    assert_eq!(u.content_encoding.as_deref(), Some(""));
    assert_eq!(u.content_type.as_deref(), Some(""));
    let tm = u.type_meta.expect("typeMeta");
    (
        tm.api_version.unwrap_or_default(),
        tm.kind.unwrap_or_default(),
        u.raw.expect("raw"),
    )
}

// --- router harness.

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

struct Resp {
    code: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let auth = Arc::new(StaticTokens::new(vec![
        (
            TOKEN.into(),
            User {
                name: "admin".into(),
                groups: vec!["system:masters".into()],
                ..Default::default()
            },
        ),
        (
            CONTROLLER_TOKEN.into(),
            User {
                name: daas_apiserver::registry::usage::WRITER.into(),
                groups: vec!["system:masters".into()],
                ..Default::default()
            },
        ),
    ]));
    let key = daas_apiserver::satoken::generate_key().unwrap();
    let tokens = Arc::new(
        daas_apiserver::satoken::ServiceAccountTokens::new(
            &key,
            daas_apiserver::satoken::DEFAULT_ISSUER,
            vec![],
        )
        .unwrap(),
    );
    let opts = ServerOptions {
        service_accounts: Some(tokens),
        ..Default::default()
    };
    let env = Env {
        _dir: dir,
        app: router(store, auth, opts),
    };
    // The serviceaccount controller's `default` account, which pods need (no controllers here).
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
    let r = env
        .call(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            "application/json",
            "application/json",
            serde_json::to_vec(&sa).unwrap(),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED);
    env
}

impl Env {
    async fn call(&self, method: &str, path: &str, accept: &str, ct: &str, body: Vec<u8>) -> Resp {
        self.call_as(TOKEN, method, path, accept, ct, body).await
    }

    async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        accept: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if !accept.is_empty() {
            req = req.header("accept", accept);
        }
        if !ct.is_empty() {
            req = req.header("content-type", ct);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let code = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            code,
            content_type,
            body,
        }
    }

    async fn create_cm_json(&self, name: &str) -> Value {
        let r = self
            .call(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "",
                "application/json",
                serde_json::to_vec(&json!({"metadata": {"name": name, "labels": {"app": "pb"}},
                    "data": {"k": "v", "a": "b"}}))
                .unwrap(),
            )
            .await;
        assert_eq!(r.code, StatusCode::CREATED);
        r.json()
    }
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn get_list_and_create_in_protobuf() {
    let env = env().await;
    let created = env.create_cm_json("one").await;

    // client-go's protobuf default.
    let r = env
        .call(
            "GET",
            &format!("{CMS}/one"),
            &format!("{PROTOBUF}, */*"),
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.content_type, PROTOBUF);
    let (av, kind, raw) = unwrap(&r.body);
    assert_eq!((av.as_str(), kind.as_str()), ("v1", "ConfigMap"));
    let cm = ConfigMap::decode(raw.as_slice()).expect("ConfigMap");
    let md = cm.metadata.clone().expect("metadata");
    assert_eq!(md.name.as_deref(), Some("one"));
    assert_eq!(md.namespace.as_deref(), Some("default"));
    assert_eq!(
        md.resource_version.as_deref(),
        created["metadata"]["resourceVersion"].as_str()
    );
    assert_eq!(md.uid.as_deref(), created["metadata"]["uid"].as_str());
    assert!(md.creation_timestamp.and_then(|t| t.seconds).unwrap_or(0) > 1_600_000_000);
    assert_eq!(md.labels.get("app").map(String::as_str), Some("pb"));
    assert_eq!(cm.data.get("k").map(String::as_str), Some("v"));
    assert_eq!(cm.data.len(), 2);
    assert_eq!(cm.immutable, None);

    // The same bytes decode to the JSON the server serves.
    let back = daas_apimachinery::protobuf::decode_object(&r.body).expect("decode");
    let json_get = env
        .call("GET", &format!("{CMS}/one"), "", "", vec![])
        .await
        .json();
    assert_eq!(back["metadata"]["name"], json_get["metadata"]["name"]);
    assert_eq!(back["data"], json_get["data"]);

    // List.
    env.create_cm_json("two").await;
    let r = env
        .call("GET", &format!("{CMS}?limit=1"), PROTOBUF, "", vec![])
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.content_type, PROTOBUF);
    let (av, kind, raw) = unwrap(&r.body);
    assert_eq!((av.as_str(), kind.as_str()), ("v1", "ConfigMapList"));
    let list = ConfigMapList::decode(raw.as_slice()).expect("ConfigMapList");
    assert_eq!(list.items.len(), 1);
    let lm = list.metadata.expect("list metadata");
    assert!(!lm.resource_version.unwrap_or_default().is_empty());
    assert!(!lm.r#continue.unwrap_or_default().is_empty());
    assert_eq!(lm.remaining_item_count, Some(1));

    // Create with a protobuf body, answer in protobuf.
    let body = daas_apimachinery::protobuf::encode_object(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .expect("encode");
    let r = env
        .call(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            PROTOBUF,
            PROTOBUF,
            body,
        )
        .await;
    assert_eq!(
        r.code,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.content_type, PROTOBUF);
    let (av, kind, raw) = unwrap(&r.body);
    assert_eq!((av.as_str(), kind.as_str()), ("apps/v1", "Deployment"));
    let d = Deployment::decode(raw.as_slice()).expect("Deployment");
    // A pointer set to zero is on the wire.
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(0));
}

#[tokio::test]
async fn errors_are_protobuf_status() {
    let env = env().await;
    let r = env
        .call(
            "GET",
            &format!("{CMS}/missing"),
            &format!("{PROTOBUF}, application/json"),
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::NOT_FOUND);
    assert_eq!(r.content_type, PROTOBUF);
    let (av, kind, raw) = unwrap(&r.body);
    assert_eq!((av.as_str(), kind.as_str()), ("v1", "Status"));
    let st = Status::decode(raw.as_slice()).expect("Status");
    assert_eq!(st.status.as_deref(), Some("Failure"));
    assert_eq!(st.reason.as_deref(), Some("NotFound"));
    assert_eq!(st.code, Some(404));
    assert_eq!(
        st.message.as_deref(),
        Some("configmaps \"missing\" not found")
    );
    let details = st.details.expect("details");
    assert_eq!(details.name.as_deref(), Some("missing"));
    assert_eq!(details.kind.as_deref(), Some("configmaps"));
}

#[tokio::test]
async fn watch_streams_length_prefixed_watch_events() {
    let env = env().await;
    env.create_cm_json("w1").await;
    env.create_cm_json("w2").await;
    for accept in [format!("{PROTOBUF};stream=watch"), PROTOBUF.to_string()] {
        let r = env
            .call(
                "GET",
                &format!("{CMS}?watch=true&timeoutSeconds=1"),
                &accept,
                "",
                vec![],
            )
            .await;
        assert_eq!(r.code, StatusCode::OK);
        assert_eq!(r.content_type, format!("{PROTOBUF};stream=watch"));
        let mut rest = r.body.as_slice();
        let mut names = Vec::new();
        while !rest.is_empty() {
            assert!(rest.len() >= 4, "truncated frame header");
            let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let frame = &rest[4..4 + n];
            rest = &rest[4 + n..];
            // The event itself has no envelope (raw stream serializer).
            let ev = WatchEvent::decode(frame).expect("WatchEvent");
            assert_eq!(ev.r#type.as_deref(), Some("ADDED"));
            let obj = ev.object.and_then(|o| o.raw).expect("object");
            let (av, kind, raw) = unwrap(&obj);
            assert_eq!((av.as_str(), kind.as_str()), ("v1", "ConfigMap"));
            let cm = ConfigMap::decode(raw.as_slice()).expect("ConfigMap");
            names.push(cm.metadata.and_then(|m| m.name).unwrap_or_default());
        }
        names.sort();
        assert!(
            names.starts_with(&["w1".to_string(), "w2".to_string()]),
            "{names:?}"
        );
    }

    // Metadata informers: PartialObjectMetadata events in protobuf.
    let r = env
        .call(
            "GET",
            &format!("{CMS}?watch=1&timeoutSeconds=1"),
            &format!("{PROTOBUF};as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"),
            "",
            vec![],
        )
        .await;
    assert_eq!(r.content_type, format!("{PROTOBUF};stream=watch"));
    let n = u32::from_be_bytes([r.body[0], r.body[1], r.body[2], r.body[3]]) as usize;
    let ev = WatchEvent::decode(&r.body[4..4 + n]).expect("WatchEvent");
    let obj = ev.object.and_then(|o| o.raw).expect("object");
    let (av, kind, _) = unwrap(&obj);
    assert_eq!(
        (av.as_str(), kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );

    // A JSON watch stays JSON lines.
    let r = env
        .call(
            "GET",
            &format!("{CMS}?watch=true&timeoutSeconds=1"),
            "application/json;stream=watch",
            "",
            vec![],
        )
        .await;
    assert_eq!(r.content_type, "application/json");
    let first = r.body.split(|b| *b == b'\n').next().unwrap_or_default();
    let ev: Value = serde_json::from_slice(first).expect("JSON event");
    assert_eq!(ev["type"], "ADDED");
}

#[tokio::test]
async fn negotiation_table_yaml_and_406() {
    let env = env().await;
    env.create_cm_json("t").await;

    // kubectl get: Table JSON even when protobuf is listed first but not for Table.
    let r = env
        .call(
            "GET",
            CMS,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.json()["kind"], "Table");

    // Protobuf Table is not served; JSON alternative taken.
    let r = env
        .call(
            "GET",
            CMS,
            &format!("{PROTOBUF};as=Table;v=v1;g=meta.k8s.io, application/json;q=0.5"),
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.json()["kind"], "ConfigMapList");

    // Nothing acceptable: 406 with upstream's message, before anything runs.
    for accept in [
        "text/html",
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
    ] {
        let r = env
            .call(
                "POST",
                CMS,
                accept,
                "application/json",
                serde_json::to_vec(&json!({"metadata": {"name": "never"}})).unwrap(),
            )
            .await;
        assert_eq!(r.code, StatusCode::NOT_ACCEPTABLE, "{accept}");
        let st = r.json();
        assert_eq!(st["reason"], "NotAcceptable");
        assert_eq!(st["code"], 406);
        assert_eq!(
            st["message"],
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
    }
    let r = env
        .call("GET", &format!("{CMS}/never"), "", "", vec![])
        .await;
    assert_eq!(r.code, StatusCode::NOT_FOUND, "a refused create ran");

    // q-values: YAML preferred over JSON.
    let r = env
        .call(
            "GET",
            &format!("{CMS}/t"),
            "application/json;q=0.8, application/yaml",
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.content_type, "application/yaml");
    let y: Value = serde_yaml::from_slice(&r.body).expect("YAML");
    assert_eq!(y["metadata"]["name"], "t");

    // Metadata-only lists in protobuf (garbage collector, metadata informers).
    let r = env
        .call(
            "GET",
            CMS,
            &format!("{PROTOBUF};as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"),
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.content_type, PROTOBUF);
    let obj = daas_apimachinery::protobuf::decode_object(&r.body).expect("decode");
    assert_eq!(obj["kind"], "PartialObjectMetadataList");
    assert!(obj["items"]
        .as_array()
        .is_some_and(|a| a.iter().any(|i| i["metadata"]["name"] == "t")));

    // Discovery falls back to JSON (no protobuf schema for discovery documents).
    let r = env
        .call(
            "GET",
            "/api",
            &format!("{PROTOBUF}, application/json"),
            "",
            vec![],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.content_type, "application/json");
}

/// Every served kind, as the server stores and defaults it, is written in
/// protobuf (no JSON fallback) to a client that accepts only protobuf, and
/// reads back to the JSON the server serves.
#[tokio::test]
async fn every_served_kind_lists_in_protobuf() {
    let env = env().await;
    let ns = "/api/v1/namespaces/default";
    let pod_spec = json!({"containers": [{"name": "c", "image": "busybox",
        "command": ["sleep", "1"], "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}]});
    let template = json!({"metadata": {"labels": {"app": "w"}}, "spec": pod_spec});
    let objects: Vec<(String, Value)> = vec![
        (
            "/api/v1/namespaces".into(),
            json!({"metadata": {"name": "pb"}}),
        ),
        (
            format!("{ns}/pods"),
            json!({"metadata": {"name": "p"}, "spec": pod_spec}),
        ),
        (
            "/api/v1/nodes".into(),
            json!({"metadata": {"name": "n1"},
            "spec": {"podCIDR": "10.1.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "2", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True",
                    "lastHeartbeatTime": "2024-01-02T03:04:05Z"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}),
        ),
        (
            format!("{ns}/services"),
            json!({"metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"app": "w"}}}),
        ),
        (
            format!("{ns}/configmaps"),
            json!({"metadata": {"name": "c"}, "data": {"a": "b"},
            "binaryData": {"bin": "AAE="}}),
        ),
        (
            format!("{ns}/secrets"),
            json!({"metadata": {"name": "s"}, "data": {"k": "dg=="},
            "type": "Opaque"}),
        ),
        (
            format!("{ns}/events"),
            json!({"metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "R", "message": "m", "type": "Normal", "count": 1,
            "firstTimestamp": "2024-01-02T03:04:05Z"}),
        ),
        (
            format!("{ns}/serviceaccounts"),
            json!({"metadata": {"name": "sa"}}),
        ),
        (
            format!("{ns}/endpoints"),
            json!({"metadata": {"name": "ep"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        ),
        (
            "/apis/coordination.k8s.io/v1/namespaces/default/leases".into(),
            json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "x",
                "leaseDurationSeconds": 15, "renewTime": "2024-01-02T03:04:05.123456Z"}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments".into(),
            json!({"metadata": {"name": "d"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "w"}},
                "template": template}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/replicasets".into(),
            json!({"metadata": {"name": "rs"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "w"}},
                "template": template}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/statefulsets".into(),
            json!({"metadata": {"name": "sts"},
            "spec": {"replicas": 2, "serviceName": "w", "selector": {"matchLabels": {"app": "w"}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
                "template": template}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/daemonsets".into(),
            json!({"metadata": {"name": "ds"},
            "spec": {"selector": {"matchLabels": {"app": "w"}}, "minReadySeconds": 3,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
                "template": template}}),
        ),
        (
            "/apis/apps/v1/namespaces/default/controllerrevisions".into(),
            json!({"metadata": {"name": "sts-abc"}, "revision": 3,
            "data": {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "w"}}}}}}),
        ),
        (
            format!("{ns}/replicationcontrollers"),
            json!({"metadata": {"name": "rc"},
            "spec": {"replicas": 1, "selector": {"app": "w"}, "template": template}}),
        ),
        (
            format!("{ns}/podtemplates"),
            json!({"metadata": {"name": "pt"}, "template": template}),
        ),
        (
            "/apis/scheduling.k8s.io/v1/priorityclasses".into(),
            json!({"metadata": {"name": "high"}, "value": 1000, "description": "d"}),
        ),
        (
            "/apis/node.k8s.io/v1/runtimeclasses".into(),
            json!({"metadata": {"name": "rc"}, "handler": "runc",
                "overhead": {"podFixed": {"cpu": "10m"}}}),
        ),
        (
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices".into(),
            json!({"metadata": {"name": "es"}, "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        (
            format!("{ns}/limitranges"),
            json!({"metadata": {"name": "lr"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "100m"}}]}}),
        ),
        (
            format!("{ADMISSION}/validatingwebhookconfigurations"),
            json!({"metadata": {"name": "vwc"}, "webhooks": [{"name": "v.example.com",
                "clientConfig": {"service": {"namespace": "default", "name": "hook",
                    "path": "/v", "port": 8443}, "caBundle": "Y2E="},
                "rules": [{"operations": ["CREATE"], "apiGroups": ["example.com"],
                    "apiVersions": ["v1"], "resources": ["gadgets"], "scope": "*"}],
                "failurePolicy": "Ignore", "sideEffects": "None", "timeoutSeconds": 3,
                "admissionReviewVersions": ["v1"],
                "namespaceSelector": {"matchExpressions": [{"key": "x",
                    "operator": "NotIn", "values": ["y"]}]},
                "matchConditions": [{"name": "m", "expression": "true"}]}]}),
        ),
        (
            format!("{ADMISSION}/mutatingwebhookconfigurations"),
            json!({"metadata": {"name": "mwc"}, "webhooks": [{"name": "m.example.com",
                "clientConfig": {"url": "https://hook.example.com/m"},
                "rules": [{"operations": ["CREATE"], "apiGroups": ["example.com"],
                    "apiVersions": ["v1"], "resources": ["gadgets"]}],
                "failurePolicy": "Ignore", "sideEffects": "NoneOnDryRun",
                "admissionReviewVersions": ["v1"], "reinvocationPolicy": "IfNeeded"}]}),
        ),
        (
            format!("{ADMISSION}/validatingadmissionpolicies"),
            json!({"metadata": {"name": "vap"}, "spec": {"failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{"apiGroups": ["example.com"],
                    "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["gadgets"]}]},
                "validations": [{"expression": "object.metadata.name != 'bad'",
                    "message": "bad name", "reason": "Invalid"}],
                "auditAnnotations": [{"key": "k", "valueExpression": "'v'"}],
                "variables": [{"name": "n", "expression": "object.metadata.name"}]}}),
        ),
        (
            format!("{ADMISSION}/validatingadmissionpolicybindings"),
            json!({"metadata": {"name": "vapb"}, "spec": {"policyName": "vap",
                "validationActions": ["Deny", "Audit"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"a": "b"}}}}}),
        ),
        (
            format!("{RBAC}/namespaces/default/roles"),
            json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""],
                "resources": ["pods"], "verbs": ["get"], "resourceNames": ["p"]}]}),
        ),
        (
            format!("{RBAC}/namespaces/default/rolebindings"),
            json!({"metadata": {"name": "rb"}, "roleRef": {"apiGroup":
                "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "User", "name": "alice",
                    "apiGroup": "rbac.authorization.k8s.io"},
                    {"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]}),
        ),
        (
            format!("{RBAC}/clusterroles"),
            json!({"metadata": {"name": "pb-reader"}, "rules": [{"nonResourceURLs": ["/healthz"],
                "verbs": ["get"]}]}),
        ),
        (
            format!("{RBAC}/clusterrolebindings"),
            json!({"metadata": {"name": "pb-reader"}, "roleRef": {"apiGroup":
                "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pb-reader"},
                "subjects": [{"kind": "Group", "name": "g",
                    "apiGroup": "rbac.authorization.k8s.io"}]}),
        ),
        (
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets".into(),
            json!({"metadata": {"name": "pdb"}, "spec": {"minAvailable": "50%",
                "selector": {"matchLabels": {"app": "w"}},
                "unhealthyPodEvictionPolicy": "AlwaysAllow"}}),
        ),
        (
            "/apis/events.k8s.io/v1/namespaces/default/events".into(),
            json!({"metadata": {"name": "ev"}, "eventTime": "2024-01-02T03:04:05.123456Z",
                "reportingController": "c", "reportingInstance": "i", "action": "A",
                "reason": "R", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
                "note": "n", "type": "Normal"}),
        ),
        (
            "/apis/certificates.k8s.io/v1/certificatesigningrequests".into(),
            json!({"metadata": {"name": "csr"}, "spec": {"request": csr_request(),
                "signerName": "example.com/signer", "expirationSeconds": 3600,
                "usages": ["digital signature", "client auth"]}}),
        ),
        (
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions".into(),
            json!({"metadata": {"name": "gadgets.example.com"}, "spec": {"group": "example.com",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                    "listKind": "GadgetList"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
                    "subresources": {"status": {}}}]}}),
        ),
        (
            "/apis/batch/v1/namespaces/default/jobs".into(),
            json!({"metadata": {"name": "j"}, "spec": {"completions": 2, "parallelism": 1,
                "completionMode": "Indexed", "ttlSecondsAfterFinished": 60,
                "podFailurePolicy": {"rules": [{"action": "FailJob",
                    "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}),
        ),
        (
            "/apis/batch/v1/namespaces/default/cronjobs".into(),
            json!({"metadata": {"name": "cj"}, "spec": {"schedule": "@hourly", "timeZone": "Europe/Berlin",
                "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 30,
                "jobTemplate": {"metadata": {"labels": {"app": "cj"}}, "spec": {"backoffLimit": 2,
                    "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        ),
        (
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers".into(),
            json!({"metadata": {"name": "hpa2"}, "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 7,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {"matchLabels": {"a": "b"}}},
                        "target": {"type": "AverageValue", "averageValue": "10"}}},
                    {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}}}}),
        ),
        (
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers".into(),
            json!({"metadata": {"name": "hpa1"}, "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 3, "targetCPUUtilizationPercentage": 40}}),
        ),
        (
            "/api/v1/persistentvolumes".into(),
            json!({"metadata": {"name": "pv", "labels": {"tier": "a"}}, "spec": {
                "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local-path",
                "mountOptions": ["noatime"],
                "local": {"path": "/var/lib/k3s-daas/storage/pv"},
                "claimRef": {"namespace": "default", "name": "data"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}}),
        ),
        (
            format!("{ns}/persistentvolumeclaims"),
            json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "selector": {"matchLabels": {"tier": "a"}}}}),
        ),
        (
            "/apis/storage.k8s.io/v1/storageclasses".into(),
            json!({"metadata": {"name": "fast"}, "provisioner": "example.com/fast",
                "parameters": {"type": "ssd"}, "allowVolumeExpansion": true,
                "mountOptions": ["noatime"],
                "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone",
                    "values": ["a", "b"]}]}]}),
        ),
        (
            "/apis/networking.k8s.io/v1/ingressclasses".into(),
            json!({"metadata": {"name": "pb-class", "annotations":
                {"ingressclass.kubernetes.io/is-default-class": "true"}},
                "spec": {"controller": "example.com/ingress", "parameters": {"apiGroup":
                    "example.com", "kind": "Params", "name": "p", "scope": "Namespace",
                    "namespace": "default"}}}),
        ),
        (
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses".into(),
            json!({"metadata": {"name": "ing"}, "spec": {"ingressClassName": "pb-class",
                "defaultBackend": {"resource": {"apiGroup": "example.com", "kind": "Bucket",
                    "name": "b"}},
                "tls": [{"hosts": ["a.example.com", "*.b.example.com"], "secretName": "t"}],
                "rules": [{"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web",
                        "port": {"name": "http"}}}},
                    {"path": "/x", "pathType": "Exact", "backend": {"service": {"name": "web",
                        "port": {"number": 8080}}}}]}}, {"host": "*.b.example.com"}]}}),
        ),
        (
            "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies".into(),
            json!({"metadata": {"name": "np"}, "spec": {
                "podSelector": {"matchLabels": {"app": "w"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"t": "a"}},
                    "podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                    "ports": [{"protocol": "TCP", "port": 80, "endPort": 90}, {"port": "http"}]}],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}]}]}}),
        ),
        // Written only by the master's billing loop (405 for anyone else, the admin included).
        (
            "/apis/daas.io/v1/namespaces/default/usages".into(),
            json!({"metadata": {"name": "current"}, "status": {"user": "0xab",
                "account": {"balance": 5, "deposited": 9, "spent": 4}, "period": 7,
                "current": [{"node": "n1", "cpuMs": 12, "memMibSeconds": 30, "podSeconds": 10,
                    "estimatedCost": 22}],
                "estimatedCost": 22,
                "lastSettlement": {"period": 6, "charged": 4, "time": "2024-01-02T03:04:05Z"},
                "conditions": [{"type": "Funded", "status": "True", "reason": "Funded",
                    "message": "ok", "lastTransitionTime": "2024-01-02T03:04:05Z"}]}}),
        ),
        // Last: a quota counts what is created after it.
        (
            format!("{ns}/resourcequotas"),
            json!({"metadata": {"name": "rq"}, "spec": {"hard": {"pods": "100",
                "requests.cpu": "10"}}}),
        ),
    ];
    // Every listable built-in resource has an object here, so a kind added to
    // RESOURCES without a protobuf schema (or an incomplete one) fails below.
    let covered: Vec<(String, String)> = objects.iter().map(|(p, _)| group_plural(p)).collect();
    for r in RESOURCES {
        // Metrics are not stored but computed from the agents' statistics: metrics.rs lists
        // them in protobuf.
        if r.strategy.verbs().contains(&"list") && r.group != "metrics.k8s.io" {
            assert!(
                covered.contains(&(r.group.to_string(), r.plural.to_string())),
                "no object of {} in this test",
                r.qualified()
            );
        }
    }
    for (path, obj) in &objects {
        let token = if path.ends_with("/usages") {
            CONTROLLER_TOKEN
        } else {
            TOKEN
        };
        let r = env
            .call_as(
                token,
                "POST",
                path,
                "",
                "application/json",
                serde_json::to_vec(obj).unwrap(),
            )
            .await;
        assert_eq!(
            r.code,
            StatusCode::CREATED,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    for (path, _) in &objects {
        let r = env.call("GET", path, PROTOBUF, "", vec![]).await;
        assert_eq!(
            r.code,
            StatusCode::OK,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.content_type,
            PROTOBUF,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let pb = daas_apimachinery::protobuf::decode_object(&r.body)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let json_list = env.call("GET", path, "", "", vec![]).await.json();
        assert_eq!(pb["kind"], json_list["kind"], "{path}");
        let names = |v: &Value| -> Vec<Value> {
            v["items"]
                .as_array()
                .map(|a| a.iter().map(|i| i["metadata"]["name"].clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(names(&pb), names(&json_list), "{path}");
        assert!(!names(&pb).is_empty(), "{path}");
        // Nothing the server serves in JSON is lost in protobuf.
        let pb_items = pb["items"].as_array().cloned().unwrap_or_default();
        let json_items = json_list["items"].as_array().cloned().unwrap_or_default();
        for (p, j) in pb_items.iter().zip(&json_items) {
            let mut want = j.clone();
            normalize(&mut want);
            if let Some(m) = want.as_object_mut() {
                // In protobuf, type information is in the list's envelope only.
                m.remove("apiVersion");
                m.remove("kind");
            }
            // Upstream's PersistentVolumeClaim message has no TypeMeta either: the claim
            // templates embedded in a StatefulSet lose it in protobuf, as with upstream.
            if let Some(claims) = want
                .pointer_mut("/spec/volumeClaimTemplates")
                .and_then(Value::as_array_mut)
            {
                for c in claims.iter_mut().filter_map(Value::as_object_mut) {
                    c.remove("apiVersion");
                    c.remove("kind");
                }
            }
            let mut got = p.clone();
            normalize(&mut got);
            assert_eq!(got, want, "{path}");
        }
    }
}

const ADMISSION: &str = "/apis/admissionregistration.k8s.io/v1";
const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

/// (group, plural) of a collection path.
fn group_plural(path: &str) -> (String, String) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let group = if parts[0] == "api" { "" } else { parts[1] };
    (
        group.to_string(),
        parts.last().copied().unwrap_or_default().to_string(),
    )
}

/// A base64 PEM certificate request, as `spec.request` of a CSR.
fn csr_request() -> String {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "pb.example.com");
    base64::engine::general_purpose::STANDARD
        .encode(p.serialize_request(&key).unwrap().pem().unwrap())
}

/// Every kind the server serves, its list and the kinds of its subresources
/// have a protobuf schema: built from `RESOURCES`, so a new kind cannot be
/// forgotten. (Upstream has a protobuf message for each of them, the
/// create-only reviews and TokenRequest included.)
#[test]
fn every_served_kind_has_a_protobuf_schema() {
    use daas_apimachinery::protobuf::{can_encode, is_supported_kind};
    let mut missing = Vec::new();
    let mut check = |api_version: String, kind: String| {
        if !(can_encode(&api_version, &kind) && is_supported_kind(&api_version, &kind)) {
            missing.push(format!("{api_version} {kind}"));
        }
    };
    for r in RESOURCES {
        check(r.api_version(), r.kind.to_string());
        if r.strategy.verbs().contains(&"list") {
            check(r.api_version(), r.list_kind.to_string());
        }
        for sub in r.subresources {
            let (av, kind) = match sub {
                Subresource::Scale => ("autoscaling/v1".to_string(), "Scale"),
                Subresource::Binding => ("v1".to_string(), "Binding"),
                Subresource::Token => ("authentication.k8s.io/v1".to_string(), "TokenRequest"),
                Subresource::Eviction => ("policy/v1".to_string(), "Eviction"),
                Subresource::Status
                | Subresource::Approval
                | Subresource::Finalize
                | Subresource::EphemeralContainers => (r.api_version(), r.kind),
                Subresource::Log
                | Subresource::Exec
                | Subresource::Attach
                | Subresource::PortForward
                | Subresource::Proxy => continue,
            };
            check(av, kind.to_string());
        }
    }
    assert!(missing.is_empty(), "no protobuf schema for: {missing:?}");
}

/// Drop nulls, empty arrays/objects and zero scalars: the JSON forms Go's
/// omitempty and protobuf's zero values make interchangeable.
fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.values_mut().for_each(normalize);
            m.retain(|_, x| !is_empty(x));
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

impl Env {
    /// POST/PUT `obj` as a protobuf body (what client-go sends by default),
    /// accepting protobuf back; the decoded answer.
    async fn send_pb(&self, method: &str, path: &str, obj: &Value) -> (StatusCode, Value) {
        let body = daas_apimachinery::protobuf::encode_object(obj)
            .unwrap_or_else(|e| panic!("{path}: encode: {e}"));
        let r = self.call(method, path, PROTOBUF, PROTOBUF, body).await;
        assert_eq!(
            r.content_type,
            PROTOBUF,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = daas_apimachinery::protobuf::decode_object(&r.body)
            .unwrap_or_else(|e| panic!("{path}: decode: {e}"));
        (r.code, v)
    }
}

/// The create-only kinds (reviews, TokenRequest) take a protobuf body and
/// answer in protobuf, as client-go and kubectl talk to them.
#[tokio::test]
async fn create_only_kinds_in_protobuf() {
    let env = env().await;
    let (code, sa) = env
        .send_pb(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts",
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{sa}");

    // `kubectl create token builder --duration 1h`: TokenRequest with no
    // audiences (client-go writes the empty list as nothing).
    let (code, tr) = env
        .send_pb(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/builder/token",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "metadata": {}, "spec": {"audiences": null, "expirationSeconds": 3600}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{tr}");
    assert_eq!(tr["kind"], "TokenRequest");
    let token = tr["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "{tr}");
    assert!(tr["status"]["expirationTimestamp"].is_string(), "{tr}");

    // The token reviews as the service account, in protobuf both ways.
    let (code, rev) = env
        .send_pb(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "metadata": {}, "spec": {"token": token}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{rev}");
    assert_eq!(rev["status"]["authenticated"], true, "{rev}");
    assert_eq!(
        rev["status"]["user"]["username"],
        "system:serviceaccount:default:builder"
    );

    let (code, ssar) = env
        .send_pb(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "metadata": {}, "spec": {"resourceAttributes": {"namespace": "default",
                    "verb": "create", "group": "admissionregistration.k8s.io",
                    "resource": "validatingwebhookconfigurations"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ssar}");
    assert_eq!(ssar["status"]["allowed"], true, "{ssar}");

    let (code, ssr) = env
        .send_pb(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                "metadata": {}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{ssr}");
    assert_eq!(ssr["status"]["userInfo"]["username"], "admin", "{ssr}");

    // SubjectReview conformance: SubjectAccessReview and LocalSubjectAccessReview.
    let (code, sar) = env
        .send_pb(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "metadata": {}, "spec": {"user": "admin", "groups": ["system:masters"],
                    "resourceAttributes": {"verb": "list", "resource": "configmaps",
                        "namespace": "default"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{sar}");
    assert_eq!(sar["status"]["allowed"], true, "{sar}");
    let (code, lsar) = env
        .send_pb(
            "POST",
            "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                "metadata": {"namespace": "default"}, "spec": {"user": "nobody",
                    "resourceAttributes": {"verb": "list", "resource": "configmaps",
                        "namespace": "default"}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{lsar}");
    assert_eq!(lsar["status"]["allowed"], false, "{lsar}");

    // A scheduler binds a pod with a protobuf Binding.
    let (code, node) = env
        .send_pb(
            "POST",
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{node}");
    let (code, pod) = env
        .send_pb(
            "POST",
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bindme"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{pod}");
    let (code, st) = env
        .send_pb(
            "POST",
            "/api/v1/namespaces/default/pods/bindme/binding",
            &json!({"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": "bindme", "namespace": "default"},
                "target": {"kind": "Node", "name": "n1"}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{st}");
    let r = env
        .call(
            "GET",
            "/api/v1/namespaces/default/pods/bindme",
            "",
            "",
            vec![],
        )
        .await;
    assert_eq!(r.json()["spec"]["nodeName"], "n1");

    // `kubectl drain`: a policy/v1 Eviction in protobuf, answered by a Status.
    let (code, pod) = env
        .send_pb(
            "POST",
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "evictme"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{pod}");
    let (code, st) = env
        .send_pb(
            "POST",
            "/api/v1/namespaces/default/pods/evictme/eviction",
            &json!({"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": "evictme", "namespace": "default"},
                "deleteOptions": {"gracePeriodSeconds": 0}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{st}");
    assert_eq!(
        (st["kind"].as_str(), st["status"].as_str()),
        (Some("Status"), Some("Success"))
    );
    let r = env
        .call(
            "GET",
            "/api/v1/namespaces/default/pods/evictme",
            "",
            "",
            vec![],
        )
        .await;
    assert_eq!(
        r.code,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

/// `kubectl certificate approve` reads the CSR and PUTs it, with an Approved
/// condition appended, to `/approval` as a protobuf body.
#[tokio::test]
async fn csr_approval_with_a_protobuf_body() {
    let env = env().await;
    let base = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let (code, created) = env
        .send_pb(
            "POST",
            base,
            &json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": "pb-csr"}, "spec": {"request": csr_request(),
                "signerName": "example.com/signer", "usages": ["client auth"]}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let r = env
        .call("GET", &format!("{base}/pb-csr"), PROTOBUF, "", vec![])
        .await;
    assert_eq!(r.code, StatusCode::OK);
    let mut csr = daas_apimachinery::protobuf::decode_object(&r.body).unwrap();
    csr["status"]["conditions"] = json!([{"type": "Approved", "status": "True",
        "reason": "KubectlApprove", "message": "This CSR was approved by kubectl certificate approve.",
        "lastUpdateTime": "2024-01-02T03:04:05Z"}]);
    let (code, approved) = env
        .send_pb("PUT", &format!("{base}/pb-csr/approval"), &csr)
        .await;
    assert_eq!(code, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(
        approved["status"]["conditions"][0]["reason"],
        "KubectlApprove"
    );
    // Stored: the JSON view agrees.
    let r = env
        .call("GET", &format!("{base}/pb-csr"), "", "", vec![])
        .await;
    assert_eq!(r.json()["status"]["conditions"][0]["type"], "Approved");
}

/// A body in a media type no decoder takes: upstream's 415 listing the accepted types.
#[tokio::test]
async fn unknown_body_media_types_get_upstreams_415() {
    let env = env().await;
    let r = env
        .call("POST", CMS, "", "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(r.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let st = r.json();
    assert_eq!(st["reason"], "UnsupportedMediaType");
    assert_eq!(
        st["message"],
        "the body of the request was in an unknown format - accepted media types include: \
         application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
}

/// Conformance "Servers with support for Table transformation should return a
/// 406 for a backend which does not implement metadata": client-go POSTs a
/// SelfSubjectAccessReview (a protobuf body) asking for a Table back.
#[tokio::test]
async fn review_in_protobuf_asking_for_a_table_is_406() {
    let env = env().await;
    let body = daas_apimachinery::protobuf::encode_object(&json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "metadata": {}, "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}}))
    .unwrap();
    let r = env
        .call(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            PROTOBUF,
            body,
        )
        .await;
    assert_eq!(
        r.code,
        StatusCode::NOT_ACCEPTABLE,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let st = r.json();
    assert_eq!(
        (st["kind"].as_str(), st["code"].as_i64()),
        (Some("Status"), Some(406))
    );
}

/// `GetScale`/`UpdateScale` of client-go (e2e "should have a working scale
/// subresource", `kubectl scale`): autoscaling/v1 Scale in protobuf.
#[tokio::test]
async fn scale_subresource_in_protobuf() {
    let env = env().await;
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    let (code, d) = env
        .send_pb(
            "POST",
            deps,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{d}");
    let r = env
        .call("GET", &format!("{deps}/web/scale"), PROTOBUF, "", vec![])
        .await;
    assert_eq!(
        (r.code, r.content_type.as_str()),
        (StatusCode::OK, PROTOBUF)
    );
    let mut scale = daas_apimachinery::protobuf::decode_object(&r.body).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    scale["spec"]["replicas"] = json!(3);
    let (code, updated) = env
        .send_pb("PUT", &format!("{deps}/web/scale"), &scale)
        .await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["spec"]["replicas"], 3);
    let r = env
        .call("GET", &format!("{deps}/web"), "", "", vec![])
        .await;
    assert_eq!(r.json()["spec"]["replicas"], 3);
}
