//! `serve_tls_with` limits, on 127.0.0.1: stalled handshakes and idle keep-alive connections are
//! closed, a long watch is not, and one address cannot hold more than its share of connections.

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
        },
    )]));
    let app = router(store.clone(), auth, ServerOptions::default());
    let tls = TlsMaterial::load_or_generate(&dir.path().join("tls"), &[]).unwrap();
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
