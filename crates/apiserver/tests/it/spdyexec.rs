//! `pods/exec` and `pods/attach` over SPDY/3.1 (client-go's `NewSPDYExecutor`) through the real
//! router served on 127.0.0.1, with a SPDY client written here and a node proxy that plays the
//! node's end (`cat` echoes stdin until it is closed; `fail` writes to stderr and exits 3).
//! Protocol negotiation, the streams both ways, the exit Status on the error stream, and who
//! may not open such a session.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use daas_apiserver::error::{ApiError, ApiResult};
use daas_apiserver::spdy::{self, Frame, FLAG_FIN};
use daas_apiserver::streaming::{NodeStream, StreamKind};
use daas_apiserver::{router, NodeProxy, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tower::ServiceExt;

const ADMIN: &str = "admin-token";
const ALICE: &str = "alice-token";
const NODE: &str = "node-token";
const OFFERS: &str = "v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io";

/// The node's end of exec/attach streams; records the queries it was asked for.
#[derive(Default)]
struct FakeNode {
    queries: Mutex<Vec<(StreamKind, String)>>,
}

fn status_success() -> Vec<u8> {
    let mut m = vec![3u8];
    m.extend_from_slice(br#"{"metadata":{},"status":"Success"}"#);
    m
}

#[async_trait]
impl NodeProxy for FakeNode {
    async fn container_logs(
        &self,
        _node: &Value,
        _ns: &str,
        _pod: &str,
        _container: &str,
        _query: &str,
    ) -> ApiResult<Response> {
        Err(ApiError::new(503, "ServiceUnavailable", "no logs here"))
    }

    async fn node_get(&self, _node: &Value, _path: &str) -> ApiResult<Vec<u8>> {
        Err(ApiError::new(503, "ServiceUnavailable", "no node here"))
    }

    async fn container_stream(
        &self,
        _node: &Value,
        kind: StreamKind,
        _ns: &str,
        _pod: &str,
        query: &str,
    ) -> ApiResult<NodeStream> {
        if let Ok(mut q) = self.queries.lock() {
            q.push((kind, query.to_string()));
        }
        let (to_node, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let (tx, from_node) = mpsc::channel::<Vec<u8>>(16);
        let fail = query.contains("command=fail");
        tokio::spawn(async move {
            if fail {
                let _ = tx.send(b"\x02oops\n".to_vec()).await;
                let mut m = vec![3u8];
                m.extend_from_slice(
                    json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                        "message": "command terminated with non-zero exit code: error executing command [fail], exit code 3",
                        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}})
                    .to_string()
                    .as_bytes(),
                );
                let _ = tx.send(m).await;
                return;
            }
            // `cat` (or an attached process): stdin back on stdout until stdin is closed.
            while let Some(m) = rx.recv().await {
                match m.split_first() {
                    Some((0, d)) => {
                        let _ = tx.send([&[1u8][..], d].concat()).await;
                    }
                    Some((4, d)) => {
                        // Report the terminal size the process saw.
                        let _ = tx.send([&b"\x01size "[..], d].concat()).await;
                    }
                    Some((255, [0])) => break,
                    _ => {}
                }
            }
            let _ = tx.send(status_success()).await;
        });
        Ok(NodeStream { to_node, from_node })
    }
}

struct Env {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    node: Arc<FakeNode>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn admin(app: &axum::Router, method: &str, path: &str, body: Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert!(
        resp.status().is_success(),
        "{method} {path}: {}",
        resp.status()
    );
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
                &[
                    "daas:users",
                    "daas:namespace:u-alice",
                    "system:authenticated",
                ],
            ),
        ),
        (
            NODE.into(),
            user("system:node:n1", &["system:nodes", "system:authenticated"]),
        ),
    ]));
    let node = Arc::new(FakeNode::default());
    let app = router(
        store,
        auth,
        ServerOptions {
            node_proxy: Some(node.clone()),
            ..Default::default()
        },
    );
    admin(
        &app,
        "POST",
        "/api/v1/nodes",
        json!({"metadata": {"name": "n1"}}),
    )
    .await;
    for ns in ["u-alice", "u-bob"] {
        admin(
            &app,
            "POST",
            "/api/v1/namespaces",
            json!({"metadata": {"name": ns, "labels": {"k3s-daas.io/tier": "user"}}}),
        )
        .await;
        admin(
            &app,
            "POST",
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            daas_apiserver::rbac::user_namespace_binding(ns),
        )
        .await;
        admin(
            &app,
            "POST",
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            json!({"metadata": {"name": "default"}}),
        )
        .await;
        let restricted = json!({"allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}});
        admin(
            &app,
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            json!({"metadata": {"name": "web"}, "spec": {"nodeName": "n1",
                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000,
                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                    "securityContext": restricted}]}}),
        )
        .await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Env {
        _dir: dir,
        addr,
        node,
        task,
    }
}

/// The answer to an upgrade request: status, headers (lowercased names), body if not upgraded,
/// and the connection.
struct Answer {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
    conn: Option<TcpStream>,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

async fn upgrade(env: &Env, token: &str, path: &str, offers: Option<&str>) -> Answer {
    let mut conn = TcpStream::connect(env.addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n",
        env.addr
    );
    if !token.is_empty() {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(o) = offers {
        req.push_str(&format!("X-Stream-Protocol-Version: {o}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    // Read the head byte by byte so no SPDY frame is consumed with it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = conn.read(&mut b).await.unwrap();
        assert!(n == 1, "connection closed in the response head");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let mut lines = head.split("\r\n");
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if code == 101 {
        return Answer {
            code,
            headers,
            body: String::new(),
            conn: Some(conn),
        };
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.unwrap();
    Answer {
        code,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        conn: None,
    }
}

/// A SPDY client of the upgraded connection.
struct Spdy {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    enc: spdy::HeaderEncoder,
    dec: spdy::HeaderDecoder,
    next_id: u32,
}

impl Spdy {
    fn new(conn: TcpStream) -> Spdy {
        let (r, w) = conn.into_split();
        Spdy {
            r: BufReader::new(r),
            w,
            enc: spdy::HeaderEncoder::new().unwrap(),
            dec: spdy::HeaderDecoder::default(),
            next_id: 1,
        }
    }

    async fn send(&mut self, f: Frame) {
        let mut b = Vec::new();
        spdy::write_frame(&mut b, &f, &mut self.enc).unwrap();
        self.w.write_all(&b).await.unwrap();
    }

    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(
            Duration::from_secs(10),
            spdy::read_frame(&mut self.r, &mut self.dec),
        )
        .await
        .expect("timely frame")
        .expect("valid frame")
    }

    /// Open a stream of `ty` and wait for its reply, as spdystream's CreateStream does.
    async fn open(&mut self, ty: &str) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        self.send(Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: vec![("streamtype".into(), ty.into())],
        })
        .await;
        match self.next().await {
            Some(Frame::SynReply { stream_id, .. }) if stream_id == id => id,
            other => panic!("no reply to the {ty} stream: {other:?}"),
        }
    }

    async fn data(&mut self, stream_id: u32, fin: bool, data: &[u8]) {
        self.send(Frame::Data {
            stream_id,
            flags: if fin { FLAG_FIN } else { 0 },
            data: data.to_vec(),
        })
        .await;
    }

    /// Everything until the server ends the connection: data per stream, and which streams
    /// it finished.
    async fn drain(&mut self) -> (std::collections::HashMap<u32, Vec<u8>>, Vec<u32>) {
        let mut data = std::collections::HashMap::<u32, Vec<u8>>::new();
        let mut fins = Vec::new();
        while let Some(f) = self.next().await {
            if let Frame::Data {
                stream_id,
                flags,
                data: d,
            } = f
            {
                data.entry(stream_id).or_default().extend_from_slice(&d);
                if flags & FLAG_FIN != 0 {
                    fins.push(stream_id);
                }
            }
        }
        (data, fins)
    }
}

const EXEC: &str = "/api/v1/namespaces/u-alice/pods/web/exec";

#[tokio::test]
async fn spdy_exec_negotiates_v4_and_relays_stdin_stdout_and_status() {
    let e = env().await;
    let path = format!("{EXEC}?command=cat&stdin=true&stdout=true&stderr=true");
    let a = upgrade(&e, ALICE, &path, Some(OFFERS)).await;
    assert_eq!(a.code, 101, "{}", a.body);
    assert_eq!(a.header("upgrade"), vec!["SPDY/3.1"]);
    assert_eq!(
        a.header("x-stream-protocol-version"),
        vec!["v4.channel.k8s.io"]
    );
    let mut c = Spdy::new(a.conn.unwrap());
    let err = c.open("error").await;
    let stdin = c.open("stdin").await;
    let stdout = c.open("stdout").await;
    let stderr = c.open("stderr").await;
    c.data(stdin, false, b"hello ").await;
    c.data(stdin, true, b"world\n").await;
    let (data, fins) = c.drain().await;
    assert_eq!(
        data.get(&stdout).map(Vec::as_slice),
        Some(&b"hello world\n"[..])
    );
    assert!(data.get(&stderr).is_none_or(Vec::is_empty));
    let status: Value = serde_json::from_slice(&data[&err]).unwrap();
    assert_eq!(status["status"], "Success");
    for id in [err, stdout, stderr] {
        assert!(fins.contains(&id), "stream {id} not finished: {fins:?}");
    }
    // The node got the validated options with the container resolved.
    let q = e.node.queries.lock().unwrap().clone();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0, StreamKind::Exec);
    assert!(q[0]
        .1
        .starts_with("container=c&stdin=true&stdout=true&stderr=true&tty=false"));
}

#[tokio::test]
async fn spdy_exec_non_zero_exit_is_a_status_on_the_error_stream() {
    let e = env().await;
    let path = format!("{EXEC}?command=fail&stdout=true&stderr=true");
    let a = upgrade(&e, ALICE, &path, Some(OFFERS)).await;
    assert_eq!(a.code, 101, "{}", a.body);
    let mut c = Spdy::new(a.conn.unwrap());
    let err = c.open("error").await;
    let _stdout = c.open("stdout").await;
    let stderr = c.open("stderr").await;
    let (data, _) = c.drain().await;
    assert_eq!(data[&stderr], b"oops\n");
    let status: Value = serde_json::from_slice(&data[&err]).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");

    // An older client (v3 at best) gets the failure's message as text.
    let a = upgrade(
        &e,
        ALICE,
        &path,
        Some("v3.channel.k8s.io, v2.channel.k8s.io"),
    )
    .await;
    assert_eq!(
        a.header("x-stream-protocol-version"),
        vec!["v3.channel.k8s.io"]
    );
    let mut c = Spdy::new(a.conn.unwrap());
    let err = c.open("error").await;
    c.open("stdout").await;
    c.open("stderr").await;
    let (data, _) = c.drain().await;
    assert_eq!(
        String::from_utf8_lossy(&data[&err]),
        "command terminated with non-zero exit code: error executing command [fail], exit code 3"
    );
}

#[tokio::test]
async fn spdy_attach_with_a_terminal_relays_resize() {
    let e = env().await;
    let path = "/api/v1/namespaces/u-alice/pods/web/attach?stdin=true&stdout=true&tty=true";
    let a = upgrade(&e, ALICE, path, Some(OFFERS)).await;
    assert_eq!(a.code, 101, "{}", a.body);
    let mut c = Spdy::new(a.conn.unwrap());
    let err = c.open("error").await;
    let stdin = c.open("stdin").await;
    let stdout = c.open("stdout").await;
    let resize = c.open("resize").await;
    c.data(resize, false, b"{\"Width\":120,\"Height\":40}\n")
        .await;
    // Wait for the size to be seen before stdin ends the session.
    let first = c.next().await;
    assert_eq!(
        first,
        Some(Frame::Data {
            stream_id: stdout,
            flags: 0,
            data: br#"size {"Height":40,"Width":120}"#.to_vec()
        })
    );
    c.data(stdin, true, b"x").await;
    let (data, _) = c.drain().await;
    assert_eq!(data[&stdout], b"x");
    assert_eq!(
        serde_json::from_slice::<Value>(&data[&err]).unwrap()["status"],
        "Success"
    );
    let q = e.node.queries.lock().unwrap().clone();
    assert_eq!(q[0].0, StreamKind::Attach);
}

#[tokio::test]
async fn spdy_negotiation_refusals_as_upstream() {
    let e = env().await;
    let path = format!("{EXEC}?command=cat&stdout=true");
    // Only versions the server does not know: 403 listing the accepted ones.
    let a = upgrade(
        &e,
        ALICE,
        &path,
        Some("v5.channel.k8s.io, v9.channel.k8s.io"),
    )
    .await;
    assert_eq!(a.code, 403, "{}", a.body);
    assert_eq!(
        a.header("x-accepted-stream-protocol-versions"),
        vec![
            "v4.channel.k8s.io",
            "v3.channel.k8s.io",
            "v2.channel.k8s.io",
            "channel.k8s.io"
        ]
    );
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("unable to upgrade: unable to negotiate protocol: client supports [v5.channel.k8s.io v9.channel.k8s.io]"),
        "{body}"
    );
    // No offer: 400.
    let a = upgrade(&e, ALICE, &path, None).await;
    assert_eq!(a.code, 400, "{}", a.body);
    assert!(a.body.contains("X-Stream-Protocol-Version is required"));
    // The node was never reached.
    assert!(e.node.queries.lock().unwrap().is_empty());
}

#[tokio::test]
async fn spdy_exec_refused_to_identities_without_create_on_pods_exec() {
    let e = env().await;
    let bob = "/api/v1/namespaces/u-bob/pods/web/exec?command=cat&stdout=true";
    let a = upgrade(&e, "", bob, Some(OFFERS)).await;
    assert_eq!(a.code, 401, "{}", a.body);
    let a = upgrade(&e, ALICE, bob, Some(OFFERS)).await;
    assert_eq!(a.code, 403, "{}", a.body);
    let body: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(
        body["message"],
        "pods \"web\" is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"u-bob\""
    );
    let attach = "/api/v1/namespaces/u-alice/pods/web/attach?stdout=true";
    let a = upgrade(&e, NODE, attach, Some(OFFERS)).await;
    assert_eq!(a.code, 403, "{}", a.body);
    let a = upgrade(
        &e,
        NODE,
        &format!("{EXEC}?command=cat&stdout=true"),
        Some(OFFERS),
    )
    .await;
    assert_eq!(a.code, 403, "{}", a.body);
    assert!(e.node.queries.lock().unwrap().is_empty());
    // The admin may.
    let a = upgrade(&e, ADMIN, bob, Some(OFFERS)).await;
    assert_eq!(a.code, 101, "{}", a.body);
}
