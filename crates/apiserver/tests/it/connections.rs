//! `serve_tls_with` limits, on 127.0.0.1: stalled handshakes and idle keep-alive connections are
//! closed, a long watch is not, and one address cannot hold more than its share of connections.
//! Client certificates from approved CSRs authenticate; foreign or expired ones do not.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daas_apiserver::{
    router, serve_tls_with, ServeOptions, ServerOptions, StaticTokens, TlsMaterial, User,
};
use daas_store::{EmbeddedStore, SealingKey, Store};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "t0ken";

struct Server {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    ca_pem: String,
    store: Arc<dyn Store>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn server(opts: ServeOptions) -> Server {
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
    let tls = TlsMaterial::load_or_generate(&dir.path().join("tls"), &[]).unwrap();
    let app = router(
        store.clone(),
        auth,
        ServerOptions {
            client_certs: Some(tls.client_cert_authenticator().unwrap()),
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve_tls_with(
        listener,
        tls.server_config().unwrap(),
        app,
        opts,
    ));
    Server {
        _dir: dir,
        addr,
        ca_pem: tls.ca_cert_pem.clone(),
        store,
        task,
    }
}

async fn tls_connect(s: &Server) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(s.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// Has the server closed `stream` (EOF or reset) within `within`?
async fn closed_within<S: AsyncReadExt + Unpin>(stream: &mut S, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
}

#[tokio::test]
async fn stalled_handshakes_are_closed() {
    let s = server(ServeOptions {
        handshake_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..16 {
        conns.push(TcpStream::connect(s.addr).await.unwrap());
    }
    for c in &mut conns {
        assert!(
            closed_within(c, Duration::from_secs(5)).await,
            "a silent client kept its connection"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed only after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let s = server(ServeOptions {
        max_connections_per_ip: 4,
        ..Default::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // Let the server account for them, then the fifth is closed at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let mut extra = TcpStream::connect(s.addr).await.unwrap();
        assert!(
            closed_within(&mut extra, Duration::from_secs(2)).await,
            "connection over the cap was kept"
        );
    }
    for c in &mut held {
        assert!(
            !closed_within(c, Duration::from_millis(50)).await,
            "an admitted connection was closed"
        );
    }
    // A slot comes back when a connection ends.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(s.addr).await.unwrap();
    assert!(
        !closed_within(&mut again, Duration::from_millis(300)).await,
        "freed slot not reusable"
    );
}

#[tokio::test]
async fn idle_keepalive_is_closed_but_a_watch_is_not() {
    let s = server(ServeOptions {
        idle_timeout: Duration::from_millis(400),
        ..Default::default()
    })
    .await;

    // A keep-alive connection that answered one request and then sits idle is closed.
    let mut idle = tls_connect(&s).await;
    idle.write_all(request("/version").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 8192];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let t = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "idle keep-alive connection kept open"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "closed too early: {:?}",
        t.elapsed()
    );

    // A TLS connection that never sends a request is closed as well.
    let mut silent = tls_connect(&s).await;
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "silent TLS connection kept open"
    );

    // A watch streams for much longer than the idle timeout and still delivers events.
    let mut watch = tls_connect(&s).await;
    watch
        .write_all(request("/api/v1/namespaces/default/configmaps?watch=true").as_bytes())
        .await
        .unwrap();
    let n = watch.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": "default"}});
    s.store
        .create(
            "/registry/core/configmaps/default/late",
            cm.to_string().as_bytes(),
        )
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains("\"late\"") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, watch.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            other => panic!("watch ended or stalled ({other:?}); saw {seen}"),
        }
    }
    assert!(seen.contains("ADDED"), "{seen}");
}

/// The real kubectl with `--validate=strict` on YAML: kubectl itself converts the YAML to JSON
/// (keeping the last of repeated keys, kubernetes/kubernetes#125885), so a repeated key never
/// reaches the server, as with upstream's; strict validation of what it does send holds (an
/// unknown field is refused). The repeated key sent as YAML is covered by `wire.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_strict_apply_of_yaml() {
    use base64::Engine;
    let s = server(ServeOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {TOKEN}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
            s.addr,
            base64::engine::general_purpose::STANDARD.encode(&s.ca_pem)
        ),
    )
    .unwrap();
    let kubectl = |args: &[&str], yaml: &str| {
        let file = dir.path().join("obj.yaml");
        std::fs::write(&file, yaml).unwrap();
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.args(args)
            .arg("-f")
            .arg(&file)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path().join("home"));
        async move {
            let out = cmd.output().await.expect("run kubectl");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };
    let cm = |name: &str, extra: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n{extra}data:\n  k: one\n  k: two\n")
    };
    for (args, name) in [
        (&["apply", "--validate=strict"][..], "client"),
        (
            &["apply", "--server-side", "--validate=strict"][..],
            "server",
        ),
    ] {
        let (ok, out, err) = kubectl(args, &cm(name, "")).await;
        assert!(ok, "{args:?}: {out} {err}");
        let (ok, out, err) = kubectl(&["get", "-o", "jsonpath={.data.k}"], &cm(name, "")).await;
        assert!(ok, "{err}");
        assert_eq!(out, "two", "the last value, as kubectl sent it");
    }
    let (ok, _, err) = kubectl(
        &["apply", "--validate=strict"],
        &cm("unknown", "extra: 1\n"),
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains(r#"strict decoding error: unknown field "extra""#),
        "{err}"
    );
    let (ok, out, err) = kubectl(
        &["apply", "--validate=ignore"],
        &cm("unknown", "extra: 1\n"),
    )
    .await;
    assert!(ok, "{out} {err}");
}

type Identity = (
    Vec<CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// One HTTPS request, with a client certificate when `id` is given and the admin token when
/// `token`; the status and JSON body (null when not JSON).
async fn https(
    s: &Server,
    id: Option<&Identity>,
    token: bool,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(s.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut cfg = match id {
        Some((certs, key)) => b
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json");
    if token {
        req = req.header("authorization", format!("Bearer {TOKEN}"));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let resp = send
        .send_request(
            req.body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap(),
        )
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn csr_request(cn: &str, orgs: &[&str]) -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, *o);
    }
    let pem = p.serialize_request(&key).unwrap().pem().unwrap();
    (key, pem)
}

fn identity(cert_pem: &str, key: &rcgen::KeyPair) -> Identity {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    (certs, key)
}

/// A client certificate for `cn` in group team-a signed directly with the CA key in `dir`, valid
/// between `from` and `to` days from now.
fn direct_cert(s: &Server, cn: &str, from: i64, to: i64) -> Identity {
    let ca_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(s._dir.path().join("tls/ca.key")).unwrap(),
    )
    .unwrap();
    // The issuer as rcgen needs it: the CA's name and key.
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "k3s-daas-ca");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "team-a");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(from);
    p.not_after = now + time::Duration::days(to);
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    identity(&cert.pem(), &key)
}

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

#[tokio::test]
async fn client_certificates_from_approved_csrs_authenticate() {
    use base64::Engine;
    use common::{call, JSON};
    use serde_json::json;
    let b64 = base64::engine::general_purpose::STANDARD;
    let s = server(ServeOptions::default()).await;
    let admin = common::admin_router(&s.store);

    // A CSR for carol in team-a, approved and signed through the API as the signing controller
    // does it (sign with the cluster CA, write status.certificate).
    let (key, pem) = csr_request("carol", &["team-a"]);
    let (code, csr) = call(
        &admin,
        "POST",
        CSRS,
        JSON,
        json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "carol"},
        "spec": {"request": b64.encode(&pem), "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["digital signature", "client auth"]}}),
    )
    .await;
    assert_eq!(code, 201, "{csr}");
    let mut approved = csr.clone();
    approved["status"] = json!({"conditions": [{"type": "Approved", "status": "True",
        "reason": "Test", "message": "ok"}]});
    let (code, approved) = call(
        &admin,
        "PUT",
        &format!("{CSRS}/carol/approval"),
        JSON,
        approved,
    )
    .await;
    assert_eq!(code, 200, "{approved}");
    let ca = daas_apiserver::registry::csr::SigningCa::from_pem(
        &s.ca_pem,
        &std::fs::read_to_string(s._dir.path().join("tls/ca.key")).unwrap(),
    )
    .unwrap();
    let mut signed = approved.clone();
    signed["status"]["certificate"] = json!(b64.encode(ca.sign(&approved).unwrap()));
    let (code, signed) = call(&admin, "PUT", &format!("{CSRS}/carol/status"), JSON, signed).await;
    assert_eq!(code, 200, "{signed}");
    let cert_pem = String::from_utf8(
        b64.decode(signed["status"]["certificate"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let carol = identity(&cert_pem, &key);

    // Who am I: the CN and the O groups, plus system:authenticated.
    let (code, who) = https(
        &s,
        Some(&carol),
        false,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
    )
    .await;
    assert_eq!(code, 201, "{who}");
    assert_eq!(who["status"]["userInfo"]["username"], "carol");
    assert_eq!(
        who["status"]["userInfo"]["groups"],
        json!(["team-a", "system:authenticated"])
    );

    // RBAC decides: nothing granted yet → 403 naming carol.
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, st) = https(&s, Some(&carol), false, "GET", cms, None).await;
    assert_eq!(code, 403, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("User \"carol\" cannot list"),
        "{st}"
    );
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default";
    let (code, role) = https(
        &s,
        None,
        true,
        "POST",
        &format!("{rbac}/roles"),
        Some(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})),
    )
    .await;
    assert_eq!(code, 201, "{role}");
    let (code, rb) = https(&s, None, true, "POST", &format!("{rbac}/rolebindings"), Some(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "team-a-read"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "team-a"}]}))).await;
    assert_eq!(code, 201, "{rb}");
    let (code, list) = https(&s, Some(&carol), false, "GET", cms, None).await;
    assert_eq!(code, 200, "read through the team-a binding: {list}");
    // The role does not allow writes.
    let (code, _) = https(
        &s,
        Some(&carol),
        false,
        "POST",
        cms,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
    )
    .await;
    assert_eq!(code, 403);

    // A certificate from another CA, an expired one and one not valid yet: 401.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut op = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    op.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    op.distinguished_name
        .push(rcgen::DnType::CommonName, "k3s-daas-ca");
    let other_ca = op.self_signed(&other_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut lp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    lp.distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    lp.distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let foreign = identity(
        &lp.signed_by(&leaf_key, &other_ca, &other_key)
            .unwrap()
            .pem(),
        &leaf_key,
    );
    // The API server's own serving certificate (same CA, server auth only) is no client credential.
    let tls_dir = s._dir.path().join("tls");
    let serving = (
        CertificateDer::pem_slice_iter(
            std::fs::read_to_string(tls_dir.join("server.crt"))
                .unwrap()
                .as_bytes(),
        )
        .collect::<Result<Vec<_>, _>>()
        .unwrap(),
        rustls::pki_types::PrivateKeyDer::from_pem_slice(
            std::fs::read_to_string(tls_dir.join("server.key"))
                .unwrap()
                .as_bytes(),
        )
        .unwrap(),
    );
    for (what, id) in [
        ("serving certificate", serving),
        ("foreign CA", (foreign.0.clone(), foreign.1.clone_key())),
        ("expired", direct_cert(&s, "carol", -3, -1)),
        ("not yet valid", direct_cert(&s, "carol", 1, 3)),
    ] {
        let (code, st) = https(&s, Some(&id), false, "GET", cms, None).await;
        assert_eq!(code, 401, "{what}: {st}");
        assert_eq!(st["reason"], "Unauthorized", "{what}");
    }
    // The control: a valid direct certificate authenticates.
    let fresh = direct_cert(&s, "carol", -1, 1);
    assert_eq!(
        https(&s, Some(&fresh), false, "GET", cms, None).await.0,
        200
    );
    // A refused certificate does not stop a valid token; no certificate, token only, works.
    assert_eq!(
        https(&s, Some(&foreign), true, "GET", cms, None).await.0,
        200
    );
    assert_eq!(https(&s, None, true, "GET", cms, None).await.0, 200);
    assert_eq!(https(&s, None, false, "GET", cms, None).await.0, 401);
}

/// One GET of `path` holding `token` (empty: none) on a connection that carried nothing before:
/// the answer's code and the class the API server gave the connection.
async fn class_after(
    app: &axum::Router,
    token: &str,
    path: &str,
) -> (u16, daas_apiserver::server::ConnectionClass) {
    use tower::ServiceExt as _;
    let priority = daas_apiserver::server::ConnectionPriority::new();
    let mut req = axum::http::Request::get(path);
    if !token.is_empty() {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let mut req = req.body(axum::body::Body::empty()).unwrap();
    req.extensions_mut().insert(priority.clone());
    let resp = app.clone().oneshot(req).await.unwrap();
    (resp.status().as_u16(), priority.class())
}

/// The API server tells the connection what its requests were (so that `serve_tls_with` moves a
/// connection of users' requests to the low-priority runtime): a user's request marks it low,
/// allowed or not; the admin's and a node's mark it high; a failed authentication and a public
/// path leave it unclassified, so a forged token cannot move anyone's connection.
#[tokio::test]
async fn requests_mark_their_connection_by_priority_level() {
    use common::{ADMIN, ALICE, NODE};
    use daas_apiserver::server::ConnectionClass::{High, Low, Unclassified};
    let (_dir, app) = common::tenancy_app_with(ServerOptions {
        low_priority: Some(tokio::runtime::Handle::current()),
        ..Default::default()
    })
    .await;
    let own = "/api/v1/namespaces/u-alice/configmaps";
    assert_eq!(class_after(&app, ALICE, own).await, (200, Low));
    assert_eq!(
        class_after(&app, ALICE, "/api/v1/namespaces/u-bob/configmaps").await,
        (403, Low)
    );
    assert_eq!(class_after(&app, ADMIN, own).await, (200, High));
    assert_eq!(
        class_after(&app, NODE, "/api/v1/nodes/n1").await.1,
        High,
        "a node's request"
    );
    assert_eq!(class_after(&app, "forged", own).await, (401, Unclassified));
    assert_eq!(class_after(&app, "", own).await, (401, Unclassified));
    assert_eq!(class_after(&app, "", "/healthz").await, (200, Unclassified));
    // Without a low-priority runtime nothing is marked.
    let (_dir2, plain) = common::tenancy_app().await;
    assert_eq!(class_after(&plain, ALICE, own).await, (200, Unclassified));
}
