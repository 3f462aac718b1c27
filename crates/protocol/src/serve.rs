//! The HTTPS accept loop the master's API server and the agent's kubelet API share: per-IP
//! connection limits, a TLS handshake deadline, HTTP/1 header and idle timeouts, HTTP/2
//! keep-alives, and the client's certificate chain (if it sent one) as a request extension.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use http_body_util::BodyExt;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// The certificate chain a client presented in the TLS handshake (leaf first), attached to each
/// request on that connection.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// The client's address (the TCP peer), attached to each request.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// Limits on the connections [`serve_tls_with`] accepts.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A client must finish the TLS handshake within this time.
    pub handshake_timeout: Duration,
    /// An HTTP/1 client must send a request's headers within this time once it starts one.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight (no response being streamed, e.g. a watch) for
    /// this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 PING interval, and how long to wait for the answer before closing.
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// Open connections per client IP; further ones are closed at once.
    pub max_connections_per_ip: usize,
    /// Concurrent HTTP/2 streams a client may open on one connection (upstream's
    /// `--http2-max-streams-per-connection`; 0 is Go's default of 250, as upstream).
    pub http2_max_streams_per_connection: u32,
    /// Bytes of HTTP/1 request line and headers (hyper's read buffer; Go's `MaxHeaderBytes`
    /// is 1 MiB, hyper's default about 400 KiB), and headers at most.
    pub http1_max_header_bytes: usize,
    pub http1_max_headers: usize,
    /// Bytes of an HTTP/2 header list (SETTINGS_MAX_HEADER_LIST_SIZE).
    pub http2_max_header_list_bytes: u32,
    /// Where the connections the router marks low priority are served (TLS records, HTTP
    /// framing, HTTP/2 stream tasks and streamed response bodies such as watches): see
    /// [`ConnectionPriority`]. None: every connection stays on the runtime that accepted it.
    pub low_priority: Option<tokio::runtime::Handle>,
}

/// Go's (and so kube-apiserver's) default HTTP/2 concurrent stream limit.
pub const DEFAULT_HTTP2_MAX_STREAMS: u32 = 250;

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(20),
            max_connections_per_ip: 128,
            http2_max_streams_per_connection: DEFAULT_HTTP2_MAX_STREAMS,
            http1_max_header_bytes: 408 * 1024,
            http1_max_headers: 100,
            http2_max_header_list_bytes: 64 * 1024,
            low_priority: None,
        }
    }
}

/// Open connections per client IP.
#[derive(Default)]
struct PerIp(std::sync::Mutex<HashMap<std::net::IpAddr, usize>>);

/// One admitted connection; gives its slot back when dropped.
struct Slot {
    table: Arc<PerIp>,
    ip: std::net::IpAddr,
}

impl PerIp {
    fn admit(table: &Arc<PerIp>, ip: std::net::IpAddr, max: usize) -> Option<Slot> {
        let mut m = table.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Requests in flight on one connection (until their response body is done or dropped) and
/// when that count last changed.
struct Activity {
    state: std::sync::Mutex<(usize, Instant)>,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: std::sync::Mutex::new((0, Instant::now())),
        })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *s = (s.0 + 1, Instant::now());
        InFlight(self.clone())
    }

    /// How long the connection has had nothing in flight (`None` while a request is open).
    fn idle_for(&self) -> Option<Duration> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (s.0 == 0).then(|| s.1.elapsed())
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        *s = (s.0.saturating_sub(1), Instant::now());
    }
}

/// Serve `router` over TLS on `listener` with the default [`ServeOptions`].
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
) -> std::io::Result<()> {
    serve_tls_with(listener, tls, router, ServeOptions::default()).await
}

/// Serve `router` over TLS on `listener` until the task is dropped.
pub async fn serve_tls_with(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    opts: ServeOptions,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let per_ip = Arc::new(PerIp::default());
    let opts = Arc::new(opts);
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = PerIp::admit(&per_ip, peer.ip(), opts.max_connections_per_ip) else {
            tracing::debug!(%peer, limit = opts.max_connections_per_ip, "too many connections from this address; closing");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let stream =
                match tokio::time::timeout(opts.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "tls handshake timed out");
                        return;
                    }
                };
            let certs = stream
                .get_ref()
                .1
                .peer_certificates()
                .filter(|c| !c.is_empty())
                .map(|c| {
                    PeerCertificates(Arc::new(c.iter().map(|c| c.clone().into_owned()).collect()))
                });
            serve_connection(stream, peer, router, certs, opts).await;
        });
    }
}

/// Which runtime serves a connection, as the router has classified its requests (attached to
/// each request as an extension when [`ServeOptions::low_priority`] is set).
///
/// A connection whose requests are all of low priority levels (users' and workloads') is moved
/// to the low-priority runtime, so that decrypting its TLS records, parsing its requests and
/// writing its responses (watch events included) get the CPU share of that runtime's threads,
/// not the share of the admin's and nodes' connections. One request of any other level pins the
/// connection back for good: a connection shared by several identities is served as the most
/// important of them.
#[derive(Clone, Debug)]
pub struct ConnectionPriority(Arc<tokio::sync::watch::Sender<ConnectionClass>>);

/// What the requests of one connection were so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionClass {
    /// No request classified yet (a TLS handshake, public paths, failed authentication).
    Unclassified,
    /// Every classified request was of a low priority level.
    Low,
    /// At least one request was of another level.
    High,
}

impl Default for ConnectionPriority {
    fn default() -> Self {
        ConnectionPriority::new()
    }
}

impl ConnectionPriority {
    /// An unclassified connection's.
    pub fn new() -> ConnectionPriority {
        ConnectionPriority(Arc::new(
            tokio::sync::watch::channel(ConnectionClass::Unclassified).0,
        ))
    }

    /// Follows the class as it changes.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<ConnectionClass> {
        self.0.subscribe()
    }

    /// Record that the connection carried a request of a low (`true`) or another (`false`)
    /// priority level.
    pub fn mark(&self, low: bool) {
        self.0.send_if_modified(|c| {
            let next = match (*c, low) {
                (ConnectionClass::High, _) | (_, false) => ConnectionClass::High,
                (_, true) => ConnectionClass::Low,
            };
            std::mem::replace(c, next) != next
        });
    }

    /// The connection's class so far.
    pub fn class(&self) -> ConnectionClass {
        *self.0.borrow()
    }
}

/// Which of the two runtimes a connection is driven on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    Accepting,
    Low,
}

impl Placement {
    fn of(class: ConnectionClass) -> Placement {
        match class {
            ConnectionClass::Low => Placement::Low,
            ConnectionClass::Unclassified | ConnectionClass::High => Placement::Accepting,
        }
    }
}

/// A served connection and the state its driver carries from one runtime to the other.
struct Driven<C> {
    conn: std::pin::Pin<Box<C>>,
    shutdown: fn(std::pin::Pin<&mut C>),
    activity: Arc<Activity>,
    class: Option<tokio::sync::watch::Receiver<ConnectionClass>>,
    closing: Option<Instant>,
    peer: SocketAddr,
    opts: Arc<ServeOptions>,
}

/// Drive `d` on the current runtime until the connection ends (None) or its class asks for the
/// other runtime (the state back, to be driven there).
async fn drive_here<C, E>(mut d: Driven<C>, here: Placement) -> Option<Driven<C>>
where
    C: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let tick = (d.opts.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
    loop {
        if let Some(rx) = d.class.as_mut() {
            if Placement::of(*rx.borrow_and_update()) != here {
                return Some(d);
            }
        }
        let class = &mut d.class;
        let class_changed = async {
            match class.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = d.conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(peer = %d.peer, error = %e, "connection ended with error");
                }
                return None;
            }
            _ = class_changed => {}
            _ = tokio::time::sleep(tick) => {
                match d.closing {
                    // A client that ignores the shutdown is cut off.
                    Some(since) if since.elapsed() > d.opts.handshake_timeout => return None,
                    Some(_) => {}
                    None => {
                        if d.activity.idle_for().map(|t| t >= d.opts.idle_timeout).unwrap_or(false) {
                            tracing::debug!(peer = %d.peer, "closing idle connection");
                            (d.shutdown)(d.conn.as_mut());
                            d.closing = Some(Instant::now());
                        }
                    }
                }
            }
        }
    }
}

/// Drive `d` to its end, moving it between the accepting runtime (this task) and the
/// low-priority one as its [`ConnectionPriority`] changes.
async fn drive<C, E>(mut d: Driven<C>)
where
    C: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + 'static,
{
    let low = d.opts.low_priority.clone();
    loop {
        d = match drive_here(d, Placement::Accepting).await {
            None => return,
            Some(d) => d,
        };
        let Some(rt) = low.as_ref() else { return };
        tracing::trace!(peer = %d.peer, "connection moves to the low-priority runtime");
        d = match rt.spawn(drive_here(d, Placement::Low)).await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "connection task failed on the low-priority runtime");
                return;
            }
        };
        tracing::trace!(peer = %d.peer, "connection moves back to the accepting runtime");
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    certs: Option<PeerCertificates>,
    opts: Arc<ServeOptions>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let activity = Activity::new();
    let tracked = activity.clone();
    let (priority, class) = match opts.low_priority {
        Some(_) => {
            let p = ConnectionPriority::new();
            let rx = p.subscribe();
            (Some(p), Some(rx))
        }
        None => (None, None),
    };
    let svc = tower::service_fn(move |mut req: Request| {
        if let Some(c) = &certs {
            req.extensions_mut().insert(c.clone());
        }
        if let Some(p) = &priority {
            req.extensions_mut().insert(p.clone());
        }
        // The client's address (audit events' sourceIPs).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req.extensions_mut().insert(ClientAddr(peer));
        let guard = tracked.begin();
        let router = router.clone();
        async move {
            let resp = tower::ServiceExt::oneshot(router, req).await?;
            // The request stays in flight until its body is finished (a watch streams for long).
            Ok::<_, std::convert::Infallible>(resp.map(|b| {
                Body::new(b.map_frame(move |f| {
                    let _ = &guard;
                    f
                }))
            }))
        }
    });
    let svc = hyper_util::service::TowerToHyperService::new(
        svc.map_request(|r: hyper::Request<hyper::body::Incoming>| r.map(Body::new)),
    );
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_buf_size(opts.http1_max_header_bytes.max(8192))
        .max_headers(opts.http1_max_headers.max(1));
    let streams = match opts.http2_max_streams_per_connection {
        0 => DEFAULT_HTTP2_MAX_STREAMS,
        n => n,
    };
    builder
        .http2()
        .max_concurrent_streams(streams)
        .max_header_list_size(opts.http2_max_header_list_bytes.max(1024))
        .timer(TokioTimer::new())
        .keep_alive_interval(opts.http2_keepalive_interval)
        .keep_alive_timeout(opts.http2_keepalive_timeout);
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
        .into_owned();
    drive(Driven {
        conn: Box::pin(conn),
        shutdown: |c| c.graceful_shutdown(),
        activity,
        class,
        closing: None,
        peer,
        opts,
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use http_body_util::{BodyExt, Empty};

    /// A self-signed server config for `localhost`, and a client config trusting it.
    fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = c.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::try_from(c.key_pair.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        (Arc::new(server), Arc::new(client))
    }

    /// Marks its connection as the `class` header says (`low`, `high`; anything else: not at
    /// all) and answers with the name of the thread the connection is driven on (HTTP/1
    /// handlers run in the connection's task).
    fn router() -> Router {
        Router::new().route(
            "/thread",
            get(|req: Request| async move {
                let class = req.headers().get("class").and_then(|v| v.to_str().ok());
                match (req.extensions().get::<ConnectionPriority>(), class) {
                    (None, _) => return "no-priority".to_string(),
                    (Some(p), Some("low")) => p.mark(true),
                    (Some(p), Some("high")) => p.mark(false),
                    _ => {}
                }
                std::thread::current().name().unwrap_or("?").to_string()
            }),
        )
    }

    /// One HTTP/1.1 connection over TLS to `addr`.
    async fn connect(addr: SocketAddr, client: &Arc<rustls::ClientConfig>, alpn_h2: bool) -> Conn {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut cfg = (**client).clone();
        if alpn_h2 {
            cfg.alpn_protocols = vec![b"h2".to_vec()];
        }
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let io = hyper_util::rt::TokioIo::new(tls);
        if alpn_h2 {
            let (send, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            Conn::H2(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Conn::H1(send)
        }
    }

    enum Conn {
        H1(hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>),
        H2(hyper::client::conn::http2::SendRequest<Empty<bytes::Bytes>>),
    }

    impl Conn {
        /// The thread that served `GET /thread` with this class header.
        async fn thread(&mut self, class: &str) -> String {
            let req = hyper::Request::get("https://localhost/thread")
                .header("class", class)
                .body(Empty::new())
                .unwrap();
            let resp = match self {
                Conn::H1(s) => {
                    s.ready().await.unwrap();
                    s.send_request(req).await.unwrap()
                }
                Conn::H2(s) => {
                    s.ready().await.unwrap();
                    s.send_request(req).await.unwrap()
                }
            };
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(body.to_vec()).unwrap()
        }

        /// Requests with class `class` until one is served on a thread named `want` (the move
        /// happens between requests, at the driver's next turn); how many it took.
        async fn until_on(&mut self, class: &str, want: &str) -> usize {
            for n in 1..=50 {
                if self.thread(class).await.starts_with(want) {
                    return n;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the connection never moved to {want}");
        }
    }

    /// The accepting runtime (threads `accept`) and a low-priority one (threads `low`).
    fn runtimes() -> (tokio::runtime::Runtime, tokio::runtime::Runtime) {
        let build = |name: &str| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(name)
                .enable_all()
                .build()
                .unwrap()
        };
        (build("accept"), build("low"))
    }

    async fn start(opts: ServeOptions) -> (SocketAddr, Arc<rustls::ClientConfig>) {
        let (server, client) = tls_pair();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_tls_with(listener, server, router(), opts));
        (addr, client)
    }

    #[test]
    fn a_connection_of_low_priority_requests_moves_to_the_low_runtime_and_back_for_good() {
        let (accept, low) = runtimes();
        let opts = ServeOptions {
            low_priority: Some(low.handle().clone()),
            ..Default::default()
        };
        let (client_rt, _) = runtimes();
        let (addr, client) = accept.block_on(start(opts));
        client_rt.block_on(async {
            for h2 in [false, true] {
                let mut c = connect(addr, &client, h2).await;
                // Unclassified: served where it was accepted.
                for _ in 0..3 {
                    assert_eq!(c.thread("none").await, "accept", "h2={h2}");
                }
                // The first low-priority request is handled where the connection is; the
                // connection then moves, and stays while its requests are low (or unmarked).
                assert_eq!(c.thread("low").await, "accept");
                c.until_on("none", "low").await;
                for class in ["low", "none", "low"] {
                    assert_eq!(c.thread(class).await, "low", "h2={h2}");
                }
                // One request of another level brings it back, for good.
                c.thread("high").await;
                c.until_on("none", "accept").await;
                for class in ["low", "none", "low", "low"] {
                    assert_eq!(c.thread(class).await, "accept", "h2={h2}");
                }
                // A connection that was high first never moves.
                let mut d = connect(addr, &client, h2).await;
                assert_eq!(d.thread("high").await, "accept");
                for _ in 0..5 {
                    assert_eq!(d.thread("low").await, "accept", "h2={h2}");
                }
            }
        });
        drop(client_rt);
        drop(accept);
        drop(low);
    }

    #[test]
    fn without_a_low_runtime_requests_carry_no_priority_and_stay() {
        let (accept, _low) = runtimes();
        let (client_rt, _) = runtimes();
        let (addr, client) = accept.block_on(start(ServeOptions::default()));
        client_rt.block_on(async {
            let mut c = connect(addr, &client, false).await;
            for _ in 0..3 {
                assert_eq!(c.thread("low").await, "no-priority");
            }
        });
    }

    #[test]
    fn a_moved_connection_is_still_closed_when_idle() {
        let (accept, low) = runtimes();
        let opts = ServeOptions {
            low_priority: Some(low.handle().clone()),
            idle_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let (client_rt, _) = runtimes();
        let (addr, client) = accept.block_on(start(opts));
        client_rt.block_on(async {
            let mut c = connect(addr, &client, false).await;
            c.thread("low").await;
            c.until_on("none", "low").await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let Conn::H1(s) = &mut c else { unreachable!() };
            assert!(
                s.is_closed(),
                "the idle connection on the low runtime was not closed"
            );
        });
    }

    #[test]
    fn marks_follow_the_most_important_request() {
        let p = ConnectionPriority::new();
        let rx = p.subscribe();
        assert_eq!(p.class(), ConnectionClass::Unclassified);
        p.mark(true);
        assert_eq!(*rx.borrow(), ConnectionClass::Low);
        p.mark(false);
        assert_eq!(p.class(), ConnectionClass::High);
        p.mark(true);
        assert_eq!(p.class(), ConnectionClass::High);
    }
}
