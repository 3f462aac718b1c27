//! `metrics.k8s.io/v1beta1` through the real router: NodeMetrics and PodMetrics built from the
//! nodes' summaries (fetched through the NodeProxy, here one answering from fixed summaries per
//! node and counting scrapes), discovery, label selectors, the resolution cache, and who may
//! read what (admin, user tier in and out of its namespace, node identity, anonymous).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use daas_apiserver::{router, ApiError, ApiResult, NodeProxy, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-token";
const ALICE: &str = "alice-token";
const NODE: &str = "node-token";

/// The agents as the master reaches them: a summary per node name.
struct Summaries {
    by_node: HashMap<String, Value>,
    scrapes: AtomicUsize,
}

#[async_trait]
impl NodeProxy for Summaries {
    async fn container_logs(
        &self,
        _: &Value,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> ApiResult<Response> {
        Err(ApiError::new(503, "ServiceUnavailable", "no logs here"))
    }

    async fn node_get(&self, node: &Value, path: &str) -> ApiResult<Vec<u8>> {
        assert_eq!(path, "/stats/summary");
        self.scrapes.fetch_add(1, Ordering::SeqCst);
        let name = node["metadata"]["name"].as_str().unwrap_or("");
        self.by_node
            .get(name)
            .map(|s| serde_json::to_vec(s).unwrap())
            .ok_or_else(|| ApiError::new(503, "ServiceUnavailable", "node unreachable"))
    }
}

fn pod_stats(ns: &str, name: &str, cpu: u64, mem: u64) -> Value {
    json!({"podRef": {"namespace": ns, "name": name},
        "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": cpu},
        "containers": [{"name": "c", "cpu": {"usageNanoCores": cpu}, "memory": {"workingSetBytes": mem}}]})
}

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
    proxy: Arc<Summaries>,
}

impl Env {
    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(serde_json::to_vec(&body).unwrap())
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let (code, out) = self.call(Some(ADMIN), method, path, body).await;
        assert!(code < 300, "{method} {path}: {code} {out}");
        out
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let user = |name: &str, groups: &[&str]| User {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    };
    let auth = Arc::new(StaticTokens::new(vec![
        (ADMIN.into(), user("admin", &["system:masters"])),
        (
            ALICE.into(),
            user(
                "daas:user:0xa11ce",
                &["daas:users", "daas:namespace:u-alice"],
            ),
        ),
        (NODE.into(), user("system:node:n1", &["system:nodes"])),
    ]));
    let mut by_node = HashMap::new();
    by_node.insert(
        "n1".to_string(),
        json!({"node": {"nodeName": "n1", "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 1_500_000_000u64},
                        "memory": {"workingSetBytes": 512u64 * 1024 * 1024}},
               "pods": [pod_stats("u-alice", "busy", 980_000_000, 1 << 20),
                        pod_stats("u-alice", "idle", 1_000_000, 2 << 20),
                        pod_stats("u-bob", "secret-work", 5, 4096)]}),
    );
    // n2 does not answer: its pods and its NodeMetrics are left out.
    let proxy = Arc::new(Summaries {
        by_node,
        scrapes: AtomicUsize::new(0),
    });
    let opts = ServerOptions {
        node_proxy: Some(proxy.clone()),
        ..Default::default()
    };
    let e = Env {
        _dir: dir,
        app: router(store, auth, opts),
        proxy,
    };
    for ns in ["u-alice", "u-bob"] {
        e.admin(
            "POST",
            "/api/v1/namespaces",
            json!({"metadata": {"name": ns, "labels": {"k3s-daas.io/tier": "user"}}}),
        )
        .await;
        e.admin(
            "POST",
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            daas_apiserver::rbac::user_namespace_binding(ns),
        )
        .await;
        e.admin(
            "POST",
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            json!({"metadata": {"name": "default"}}),
        )
        .await;
    }
    for (name, role) in [("n1", "worker"), ("n2", "edge")] {
        e.admin(
            "POST",
            "/api/v1/nodes",
            json!({"metadata": {"name": name, "labels": {"role": role}}}),
        )
        .await;
    }
    for (ns, name, node, app) in [
        ("u-alice", "busy", "n1", "hot"),
        ("u-alice", "idle", "n1", "cold"),
        ("u-alice", "far", "n2", "hot"),
        ("u-bob", "secret-work", "n1", "bob"),
    ] {
        e.admin(
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": {
                "nodeName": node,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "c", "image": "busybox", "securityContext": {
                    "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}),
        )
        .await;
    }
    e
}

#[tokio::test]
async fn discovery_lists_metrics_group() {
    let e = env().await;
    let out = e
        .admin("GET", "/apis/metrics.k8s.io/v1beta1", Value::Null)
        .await;
    let res: Vec<(String, bool, Value)> = out["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["namespaced"].as_bool().unwrap(),
                r["verbs"].clone(),
            )
        })
        .collect();
    assert!(
        res.contains(&("nodes".into(), false, json!(["get", "list"]))),
        "{out}"
    );
    assert!(
        res.contains(&("pods".into(), true, json!(["get", "list"]))),
        "{out}"
    );
    let groups = e.admin("GET", "/apis", Value::Null).await;
    assert!(groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "metrics.k8s.io"));
}

#[tokio::test]
async fn node_and_pod_metrics_with_selectors_and_cache() {
    let e = env().await;
    let nodes = e
        .admin("GET", "/apis/metrics.k8s.io/v1beta1/nodes", Value::Null)
        .await;
    assert_eq!(nodes["kind"], "NodeMetricsList");
    let items = nodes["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "n2 does not answer: {nodes}");
    assert_eq!(items[0]["metadata"]["name"], "n1");
    assert_eq!(
        items[0]["usage"],
        json!({"cpu": "1500000000n", "memory": "524288Ki"})
    );
    let one = e
        .admin("GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1", Value::Null)
        .await;
    assert_eq!(one["kind"], "NodeMetrics");
    assert_eq!(one["metadata"]["labels"]["role"], "worker");
    let (code, out) = e
        .call(
            Some(ADMIN),
            "GET",
            "/apis/metrics.k8s.io/v1beta1/nodes/n2",
            Value::Null,
        )
        .await;
    assert_eq!(
        (code, out["reason"].as_str()),
        (404, Some("NotFound")),
        "{out}"
    );
    assert_eq!(out["message"], "nodes.metrics.k8s.io \"n2\" not found");
    let sel = e
        .admin(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=role%3Dedge",
            Value::Null,
        )
        .await;
    assert_eq!(sel["items"], json!([]));

    let pods = e
        .admin(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/u-alice/pods",
            Value::Null,
        )
        .await;
    assert_eq!(pods["kind"], "PodMetricsList");
    let names: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["busy", "idle"],
        "far is on n2, which does not answer"
    );
    assert_eq!(
        pods["items"][0]["containers"],
        json!([{"name": "c", "usage": {"cpu": "980000000n", "memory": "1024Ki"}}])
    );
    let hot = e
        .admin(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/u-alice/pods?labelSelector=app%3Dhot",
            Value::Null,
        )
        .await;
    let names: Vec<&str> = hot["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["busy"]);
    let all = e
        .admin("GET", "/apis/metrics.k8s.io/v1beta1/pods", Value::Null)
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let one = e
        .admin(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/u-alice/pods/idle",
            Value::Null,
        )
        .await;
    assert_eq!(one["kind"], "PodMetrics");
    assert_eq!(one["metadata"]["labels"]["app"], "cold");
    let (code, _) = e
        .call(
            Some(ADMIN),
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/u-alice/pods/far",
            Value::Null,
        )
        .await;
    assert_eq!(code, 404);
    // Each node was asked once; the answer (or its absence) is reused inside the resolution window.
    assert_eq!(e.proxy.scrapes.load(Ordering::SeqCst), 2, "scrapes");
    // Read-only.
    let (code, out) = e
        .call(
            Some(ADMIN),
            "DELETE",
            "/apis/metrics.k8s.io/v1beta1/nodes/n1",
            Value::Null,
        )
        .await;
    assert_eq!(
        (code, out["reason"].as_str()),
        (405, Some("MethodNotAllowed")),
        "{out}"
    );
}

#[tokio::test]
async fn who_may_read_metrics() {
    let e = env().await;
    // The user tier reads pod metrics of its own namespace.
    let (code, out) = e
        .call(
            Some(ALICE),
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/u-alice/pods",
            Value::Null,
        )
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["items"].as_array().unwrap().len(), 2);
    // Not another tenant's, not all namespaces', not node metrics.
    for (path, msg) in [
        ("/apis/metrics.k8s.io/v1beta1/namespaces/u-bob/pods",
         "pods.metrics.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"u-bob\""),
        ("/apis/metrics.k8s.io/v1beta1/namespaces/u-bob/pods/secret-work",
         "pods.metrics.k8s.io \"secret-work\" is forbidden: User \"daas:user:0xa11ce\" cannot get resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"u-bob\""),
        ("/apis/metrics.k8s.io/v1beta1/pods",
         "pods.metrics.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"pods\" in API group \"metrics.k8s.io\" at the cluster scope"),
        ("/apis/metrics.k8s.io/v1beta1/nodes",
         "nodes.metrics.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"nodes\" in API group \"metrics.k8s.io\" at the cluster scope"),
    ] {
        let (code, out) = e.call(Some(ALICE), "GET", path, Value::Null).await;
        assert_eq!((code, out["reason"].as_str()), (403, Some("Forbidden")), "{path}: {out}");
        assert_eq!(out["message"], msg);
    }
    // A node identity reads no metrics, not even its own node's.
    for path in [
        "/apis/metrics.k8s.io/v1beta1/nodes/n1",
        "/apis/metrics.k8s.io/v1beta1/namespaces/u-alice/pods",
    ] {
        let (code, out) = e.call(Some(NODE), "GET", path, Value::Null).await;
        assert_eq!(
            (code, out["reason"].as_str()),
            (403, Some("Forbidden")),
            "{path}: {out}"
        );
    }
    let (code, out) = e
        .call(
            None,
            "GET",
            "/apis/metrics.k8s.io/v1beta1/nodes",
            Value::Null,
        )
        .await;
    assert_eq!(
        (code, out["reason"].as_str()),
        (401, Some("Unauthorized")),
        "{out}"
    );
    // RBAC can grant node metrics (as metrics-server's aggregated reader role does).
    e.admin(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"metadata": {"name": "metrics-reader"}, "rules": [
            {"apiGroups": ["metrics.k8s.io"], "resources": ["nodes"], "verbs": ["get", "list"]}]}),
    )
    .await;
    e.admin(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        json!({"metadata": {"name": "alice-metrics"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "metrics-reader"},
            "subjects": [{"kind": "User", "name": "daas:user:0xa11ce", "apiGroup": "rbac.authorization.k8s.io"}]}),
    )
    .await;
    let (code, out) = e
        .call(
            Some(ALICE),
            "GET",
            "/apis/metrics.k8s.io/v1beta1/nodes",
            Value::Null,
        )
        .await;
    assert_eq!(code, 200, "{out}");
}

/// kubectl and client-go ask for protobuf first: metrics lists and objects come back in it and
/// decode to what JSON gives (the window as Go's duration string).
#[tokio::test]
async fn metrics_in_protobuf() {
    let e = env().await;
    for path in [
        "/apis/metrics.k8s.io/v1beta1/nodes",
        "/apis/metrics.k8s.io/v1beta1/nodes/n1",
        "/apis/metrics.k8s.io/v1beta1/pods",
    ] {
        let json = e.admin("GET", path, Value::Null).await;
        let req = Request::builder()
            .method("GET")
            .uri(path)
            .header("accept", "application/vnd.kubernetes.protobuf")
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap();
        let resp = e.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/vnd.kubernetes.protobuf",
            "{path}"
        );
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        let decoded = daas_apimachinery::protobuf::decode_object(&b).unwrap();
        assert_eq!(decoded["kind"], json["kind"], "{path}");
        let items = |v: &Value| v["items"].as_array().map(|a| a.len());
        assert_eq!(items(&decoded), items(&json), "{path}");
        let first = |v: &Value| {
            if v["items"].is_array() {
                v["items"][0].clone()
            } else {
                v.clone()
            }
        };
        let (d, j) = (first(&decoded), first(&json));
        assert_eq!(d["metadata"]["name"], j["metadata"]["name"], "{path}");
        assert_eq!(d["window"], j["window"], "{path}");
        assert_eq!(d["usage"], j["usage"], "{path}");
        assert_eq!(d["containers"], j["containers"], "{path}");
    }
}
