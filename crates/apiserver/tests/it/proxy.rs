//! `pods/proxy` and `services/proxy` through the real router: the request reaches the pod's HTTP
//! server through the node proxy's port-forward stream (here a node that connects each pod port to
//! a local server, recording what it was asked for), as the master reaches pods through their
//! agents. Methods, paths, queries, bodies and headers go through; credentials stay behind;
//! Services pick a ready endpoint by port name or number; what cannot be reached is a 503 with
//! upstream's message; tenants reach only their own pods.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use daas_apiserver::error::{ApiError, ApiResult};
use daas_apiserver::streaming::NodeStream;
use daas_apiserver::{NodeProxy, ServerOptions};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tower::ServiceExt;

use crate::common::{call_as, tenancy_app_with, ADMIN, ALICE, JSON, NODE};

/// A node whose port-forward streams connect to local servers, one per (namespace, pod, port).
#[derive(Default)]
struct Node {
    servers: Mutex<HashMap<(String, String, u16), SocketAddr>>,
    forwards: Mutex<Vec<(String, String, String, u16)>>,
}

#[async_trait]
impl NodeProxy for Node {
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

    async fn node_get(&self, _: &Value, _: &str) -> ApiResult<Vec<u8>> {
        Err(ApiError::new(503, "ServiceUnavailable", "no node here"))
    }

    async fn port_forward(
        &self,
        node: &Value,
        ns: &str,
        pod: &str,
        port: u16,
    ) -> ApiResult<NodeStream> {
        let node = node["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.forwards
            .lock()
            .unwrap()
            .push((node, ns.into(), pod.into(), port));
        let addr = self
            .servers
            .lock()
            .unwrap()
            .get(&(ns.to_string(), pod.to_string(), port))
            .copied();
        let (to_node, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let (tx, from_node) = mpsc::channel::<Vec<u8>>(16);
        // As the agent: the pod's port refuses the connection when nothing listens there.
        let tcp = match addr {
            Some(a) => tokio::net::TcpStream::connect(a).await.ok(),
            None => None,
        };
        let Some(tcp) = tcp else {
            return Err(ApiError::new(
                500,
                "InternalError",
                format!("dial tcp4 127.0.0.1:{port}: connect: connection refused"),
            ));
        };
        let (mut r, mut w) = tcp.into_split();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if m.is_empty() {
                    let _ = w.shutdown().await;
                    break;
                }
                if w.write_all(&m).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        });
        Ok(NodeStream { to_node, from_node })
    }
}

/// An HTTP server answering `<name> <METHOD> <path?query> auth=<yes|no> custom=<x-custom> body=<body>`.
async fn echo_server(name: &'static str) -> SocketAddr {
    let app = axum::Router::new().fallback(move |req: Request<Body>| async move {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let custom = parts
            .headers
            .get("x-custom")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Response::builder()
            .header("x-served-by", name)
            .body(Body::from(format!(
                "{name} {} {} auth={} custom={custom} body={}",
                parts.method,
                parts.uri,
                if parts.headers.contains_key("authorization") {
                    "yes"
                } else {
                    "no"
                },
                String::from_utf8_lossy(&body)
            )))
            .unwrap()
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    addr
}

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
    node: Arc<Node>,
}

async fn env() -> Env {
    let node = Arc::new(Node::default());
    let (dir, app) = tenancy_app_with(ServerOptions {
        node_proxy: Some(node.clone()),
        ..Default::default()
    })
    .await;
    for ns in ["u-alice", "u-bob"] {
        let sa = json!({"metadata": {"name": "default"}});
        let path = format!("/api/v1/namespaces/{ns}/serviceaccounts");
        call_as(&app, ADMIN, "POST", &path, JSON, sa).await;
    }
    let (code, body) = call_as(
        &app,
        ADMIN,
        "POST",
        "/api/v1/nodes",
        JSON,
        json!({"metadata": {"name": "n1"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    Env {
        _dir: dir,
        app,
        node,
    }
}

/// A running pod `name` in `ns` on n1 at `ip`, declaring container port 8080, served by `server`.
async fn pod(e: &Env, ns: &str, name: &str, ip: &str, server: Option<SocketAddr>) {
    let p = json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {"nodeName": "n1",
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 8080, "name": "http"}],
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let (code, body) = call_as(&e.app, ADMIN, "POST", &path, JSON, p).await;
    assert_eq!(code, 201, "{body}");
    let st = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}});
    let (code, body) = call_as(
        &e.app,
        ADMIN,
        "PATCH",
        &format!("{path}/{name}/status"),
        "application/merge-patch+json",
        st,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    if let Some(s) = server {
        e.node
            .servers
            .lock()
            .unwrap()
            .insert((ns.into(), name.into(), 8080), s);
    }
}

/// A raw request: code, `x-served-by` and body text.
async fn raw(e: &Env, token: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("x-custom", "kept");
    if !token.is_empty() {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = e
        .app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let by = resp
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, by, String::from_utf8_lossy(&bytes).to_string())
}

#[tokio::test]
async fn pod_proxy_reaches_the_pod_through_its_node() {
    let e = env().await;
    let web = echo_server("web").await;
    pod(&e, "u-alice", "web", "10.42.1.5", Some(web)).await;
    let base = "/api/v1/namespaces/u-alice/pods";

    let (code, by, body) = raw(
        &e,
        ADMIN,
        "GET",
        &format!("{base}/web:8080/proxy/a/b?x=1&y=2"),
        "",
    )
    .await;
    assert_eq!((code, by.as_str()), (200, "web"), "{body}");
    assert_eq!(body, "web GET /a/b?x=1&y=2 auth=no custom=kept body=");
    // Through n1's agent, to the pod's port.
    assert_eq!(
        e.node.forwards.lock().unwrap().last().cloned(),
        Some(("n1".into(), "u-alice".into(), "web".into(), 8080))
    );
    // Every method, with its body; no port: the first declared container port.
    for m in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let (code, _, body) = raw(&e, ADMIN, m, &format!("{base}/web/proxy/m"), "payload").await;
        assert_eq!(code, 200, "{m}: {body}");
        assert_eq!(body, format!("web {m} /m auth=no custom=kept body=payload"));
    }
    let (code, by, body) = raw(
        &e,
        ADMIN,
        "HEAD",
        &format!("{base}/http:web:8080/proxy/"),
        "",
    )
    .await;
    assert_eq!((code, by.as_str(), body.as_str()), (200, "web", ""));
    // The bare subresource is the root path.
    let (_, _, body) = raw(&e, ADMIN, "GET", &format!("{base}/web/proxy"), "").await;
    assert_eq!(body, "web GET / auth=no custom=kept body=");

    // Bad input and unreachable ports get upstream's answers.
    let (code, _, body) = raw(&e, ADMIN, "GET", &format!("{base}/ftp:web:21/proxy/"), "").await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains(r#"invalid pod request \"ftp:web:21\""#),
        "{body}"
    );
    let (code, _, body) = raw(&e, ADMIN, "GET", &format!("{base}/web:9/proxy/"), "").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("error trying to reach service"), "{body}");
    assert!(body.contains("connection refused"), "{body}");
    let (code, _, body) = raw(&e, ADMIN, "GET", &format!("{base}/nope/proxy/"), "").await;
    assert_eq!(code, 404, "{body}");
    pod(&e, "u-alice", "noip", "", None).await;
    let (code, _, body) = raw(&e, ADMIN, "GET", &format!("{base}/noip/proxy/"), "").await;
    assert_eq!(code, 400, "{body}");
}

#[tokio::test]
async fn service_proxy_picks_a_ready_endpoint_by_port() {
    let e = env().await;
    let (a, b) = (echo_server("a").await, echo_server("b").await);
    pod(&e, "u-alice", "a", "10.42.1.6", Some(a)).await;
    pod(&e, "u-alice", "b", "10.42.1.7", Some(b)).await;
    let ns = "/api/v1/namespaces/u-alice";
    let svc = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
    let (code, body) = call_as(&e.app, ADMIN, "POST", &format!("{ns}/services"), JSON, svc).await;
    assert_eq!(code, 201, "{body}");
    // No Endpoints yet.
    let (code, _, body) = raw(
        &e,
        ADMIN,
        "GET",
        &format!("{ns}/services/web:http/proxy/"),
        "",
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains(r#"no endpoints available for service \"web\""#),
        "{body}"
    );
    let addr = |pod: &str, ip: &str| {
        json!({"ip": ip, "nodeName": "n1",
        "targetRef": {"kind": "Pod", "namespace": "u-alice", "name": pod}})
    };
    let eps = json!({"metadata": {"name": "web"}, "subsets": [{
        "addresses": [addr("a", "10.42.1.6"), addr("b", "10.42.1.7")],
        "notReadyAddresses": [addr("c", "10.42.1.8")],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]});
    let (code, body) = call_as(&e.app, ADMIN, "POST", &format!("{ns}/endpoints"), JSON, eps).await;
    assert_eq!(code, 201, "{body}");
    // By port name and by port number; both ready endpoints serve, the not-ready one never.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let id = if i % 2 == 0 { "web:http" } else { "web:80" };
        let (code, by, body) =
            raw(&e, ADMIN, "GET", &format!("{ns}/services/{id}/proxy/x"), "").await;
        assert_eq!(code, 200, "{body}");
        assert!(body.ends_with("GET /x auth=no custom=kept body="), "{body}");
        seen.insert(by);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
    // A port number the Service does not have.
    let (code, _, body) = raw(
        &e,
        ADMIN,
        "GET",
        &format!("{ns}/services/web:9999/proxy/"),
        "",
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains(r#"no service port 9999 found for service \"web\""#),
        "{body}"
    );
    let (code, _, body) = raw(&e, ADMIN, "GET", &format!("{ns}/services/none/proxy/"), "").await;
    assert_eq!(code, 404, "{body}");
}

#[tokio::test]
async fn only_who_may_proxy_reaches_a_pod() {
    let e = env().await;
    let (mine, theirs) = (echo_server("mine").await, echo_server("theirs").await);
    pod(&e, "u-alice", "web", "10.42.1.5", Some(mine)).await;
    pod(&e, "u-bob", "web", "10.42.1.9", Some(theirs)).await;
    // The tenant reaches its own pod.
    let (code, by, _) = raw(
        &e,
        ALICE,
        "GET",
        "/api/v1/namespaces/u-alice/pods/web/proxy/",
        "",
    )
    .await;
    assert_eq!((code, by.as_str()), (200, "mine"));
    let before = e.node.forwards.lock().unwrap().len();
    // Not another tenant's pod or Service, nor may a node or an anonymous client proxy.
    for (token, path, want) in [
        (ALICE, "/api/v1/namespaces/u-bob/pods/web/proxy/", 403),
        (ALICE, "/api/v1/namespaces/u-bob/services/web/proxy/", 403),
        (NODE, "/api/v1/namespaces/u-alice/pods/web/proxy/", 403),
        ("", "/api/v1/namespaces/u-alice/pods/web/proxy/", 401),
    ] {
        for m in ["GET", "POST", "DELETE"] {
            let (code, by, body) = raw(&e, token, m, path, "").await;
            assert_eq!(code, want, "{m} {path}: {body}");
            assert_eq!(by, "", "{m} {path} reached a pod");
        }
    }
    // None of them opened a connection to a node.
    assert_eq!(e.node.forwards.lock().unwrap().len(), before);
}
