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
            serve_connection(stream, peer, router, certs, &opts).await;
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    certs: Option<PeerCertificates>,
    opts: &ServeOptions,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let activity = Activity::new();
    let tracked = activity.clone();
    let svc = tower::service_fn(move |mut req: Request| {
        if let Some(c) = &certs {
            req.extensions_mut().insert(c.clone());
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
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let tick = (opts.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
                return;
            }
            _ = tokio::time::sleep(tick) => {
                match closing {
                    // A client that ignores the shutdown is cut off.
                    Some(since) if since.elapsed() > opts.handshake_timeout => return,
                    Some(_) => {}
                    None => {
                        if activity.idle_for().map(|d| d >= opts.idle_timeout).unwrap_or(false) {
                            tracing::debug!(%peer, "closing idle connection");
                            conn.as_mut().graceful_shutdown();
                            closing = Some(Instant::now());
                        }
                    }
                }
            }
        }
    }
}
