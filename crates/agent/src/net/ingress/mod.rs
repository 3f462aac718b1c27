//! The built-in ingress proxy (K3s ships Traefik; K3s-DaaS serves Ingresses of the class `daas`
//! from every node agent): HTTP on `node_ip:ingress_http_port` (default 80) and HTTPS on
//! `node_ip:ingress_https_port` (default 443); a port of 0 turns that listener off.
//!
//! Requests are routed by host and path as upstream specifies ([`routes`]) to a ready endpoint
//! of the backend Service (round robin over its EndpointSlices' ready pod IPs at the target
//! port), with `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`; the Host header is
//! passed through. A request with `Connection: upgrade` (WebSocket and other HTTP/1.1 upgrades)
//! is forwarded with its `Upgrade` header and, on `101 Switching Protocols`, the two upgraded
//! connections are spliced byte for byte. No rule: 404; no ready endpoint: 503; an endpoint that refuses: 502. HTTPS
//! picks the certificate by SNI from the TLS Secrets the Ingresses name ([`tls`]); the node may
//! read those Secrets and no others (the API server's Node authorizer).
//!
//! The cluster view comes from watches (Ingresses, Services, EndpointSlices: reflector stores)
//! behind the [`ClusterView`] trait; unit tests use a fixed [`routes::Snapshot`].

pub mod routes;
pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::header::{HeaderName, HeaderValue, HOST};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::Instrument;

use routes::{RoundRobin, Route, Snapshot};
use tls::{Served, SniResolver};

/// How often the TLS Secrets named by Ingresses are looked at again.
const TLS_REFRESH: Duration = Duration::from_secs(2);
/// How long a fetched Secret (or a failure to fetch it) is kept before it is fetched again.
const SECRET_TTL: Duration = Duration::from_secs(30);
/// A listener that cannot bind (port taken) tries again after this long.
const BIND_RETRY: Duration = Duration::from_secs(10);

type Body = BoxBody<Bytes, hyper::Error>;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS Secret {secret}: {reason}")]
    BadCertificate { secret: String, reason: String },
    #[error("reading TLS Secret {secret}: {source}")]
    Secret {
        secret: String,
        #[source]
        source: kube::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where the proxy listens (the agent config's `node_ip`, `ingress_http_port`,
/// `ingress_https_port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressConfig {
    pub node_ip: IpAddr,
    pub http_port: u16,
    pub https_port: u16,
}

/// The cluster as the proxy sees it now.
pub trait ClusterView: Send + Sync + 'static {
    fn snapshot(&self) -> Snapshot;
}

impl ClusterView for Snapshot {
    fn snapshot(&self) -> Snapshot {
        self.clone()
    }
}

/// The real view: reflector stores fed by watches of the whole cluster.
#[derive(Clone)]
pub struct Reflected {
    ingresses: Store<Ingress>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
}

impl ClusterView for Reflected {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            ingresses: self.ingresses.state(),
            services: self.services.state(),
            slices: self.slices.state(),
        }
    }
}

fn reflect<K>(api: Api<K>, what: &'static str) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    let task = tokio::spawn(async move {
        stream
            .for_each(|e| async move {
                if let Err(e) = e {
                    tracing::debug!(what, error = %e, "ingress proxy watch interrupted");
                }
            })
            .await;
    });
    (reader, task)
}

impl Reflected {
    /// Start the watches; the returned tasks keep the stores current.
    pub fn start(client: &kube::Client) -> (Reflected, Vec<JoinHandle<()>>) {
        let (ingresses, a) = reflect(Api::<Ingress>::all(client.clone()), "ingresses");
        let (services, b) = reflect(Api::<Service>::all(client.clone()), "services");
        let (slices, c) = reflect(Api::<EndpointSlice>::all(client.clone()), "endpointslices");
        (
            Reflected {
                ingresses,
                services,
                slices,
            },
            vec![a, b, c],
        )
    }
}

/// The proxy: routes requests of one listener (`proto` is `http` or `https`).
pub struct Proxy<V: ClusterView> {
    view: V,
    rr: RoundRobin,
    client: Client<HttpConnector, Incoming>,
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{msg}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The request's host, lowercased and without port.
fn request_host<B>(req: &Request<B>) -> String {
    let raw = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let host = match raw.strip_prefix('[') {
        // [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or("").to_string(),
        None => raw.split(':').next().unwrap_or("").to_string(),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Headers that belong to one connection, not to the request (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl<V: ClusterView> Proxy<V> {
    pub fn new(view: V) -> Arc<Self> {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(Duration::from_secs(5)));
        conn.set_nodelay(true);
        Arc::new(Proxy {
            view,
            rr: RoundRobin::default(),
            client: Client::builder(TokioExecutor::new()).build(conn),
        })
    }

    /// Route and forward one request.
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        proto: &'static str,
    ) -> Response<Body> {
        let host = request_host(&req);
        let snap = self.view.snapshot();
        let backend = match snap.route(&host, req.uri().path()) {
            Route::NotFound => return text(StatusCode::NOT_FOUND, "404 page not found"),
            Route::Unservable => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "503 the backend is not a Service",
                )
            }
            Route::To(b) => b,
        };
        let eps = snap.endpoints(&backend);
        let Some(ep) = self.rr.pick(&backend, &eps) else {
            tracing::debug!(service = %backend.service, namespace = %backend.namespace, "no ready endpoints");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 no ready endpoints for the Service",
            );
        };
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let uri: Uri = match format!("http://{ep}{pq}").parse() {
            Ok(u) => u,
            Err(_) => return text(StatusCode::BAD_REQUEST, "400 bad request path"),
        };
        let original_host = req.headers().get(HOST).cloned();
        let upgrade = upgrade_protocol(req.headers());
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        for name in HOP_BY_HOP {
            h.remove(name);
        }
        if let Some(protocol) = &upgrade {
            // The one hop-by-hop exchange that is forwarded: the client asks to switch protocols.
            h.insert(
                http::header::CONNECTION,
                HeaderValue::from_static("upgrade"),
            );
            h.insert(http::header::UPGRADE, protocol.clone());
        }
        let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            h.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        h.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(proto),
        );
        if let Some(orig) = original_host {
            h.insert(HeaderName::from_static("x-forwarded-host"), orig.clone());
            h.insert(HOST, orig);
        }
        if let Some(protocol) = upgrade {
            return self.upgrade(req, ep, protocol).await;
        }
        match self.client.request(req).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                for name in HOP_BY_HOP {
                    if name != "transfer-encoding" {
                        parts.headers.remove(name);
                    }
                }
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep, error = %e, "ingress backend unreachable");
                text(StatusCode::BAD_GATEWAY, "502 bad gateway")
            }
        }
    }
}

/// The protocol a request asks to switch to (`Connection: upgrade` with an `Upgrade` header,
/// e.g. WebSocket), if any.
fn upgrade_protocol(h: &http::HeaderMap) -> Option<HeaderValue> {
    let asks = h
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| h.get(http::header::UPGRADE).cloned())
        .flatten()
}

impl<V: ClusterView> Proxy<V> {
    /// Forward an upgrade request over a connection of its own to the backend; on `101
    /// Switching Protocols`, answer the client with it and splice the two upgraded connections
    /// until either side closes. Any other answer is passed back as a plain response.
    async fn upgrade(
        &self,
        mut req: Request<Incoming>,
        ep: SocketAddr,
        protocol: HeaderValue,
    ) -> Response<Body> {
        let client_side = hyper::upgrade::on(&mut req);
        let bad_gateway = |e: &dyn std::fmt::Display| {
            tracing::warn!(endpoint = %ep, error = %e, "ingress upgrade backend unreachable");
            text(StatusCode::BAD_GATEWAY, "502 bad gateway")
        };
        let stream =
            match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(ep))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return bad_gateway(&e),
                Err(e) => return bad_gateway(&e),
            };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = match hyper::client::conn::http1::handshake::<_, Incoming>(
            TokioIo::new(stream),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return bad_gateway(&e),
        };
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "ingress upgrade backend connection ended");
            }
        });
        let mut resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => return bad_gateway(&e),
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (mut parts, body) = resp.into_parts();
            for name in HOP_BY_HOP {
                if name != "transfer-encoding" {
                    parts.headers.remove(name);
                }
            }
            return Response::from_parts(parts, body.boxed());
        }
        let backend_side = hyper::upgrade::on(&mut resp);
        let span = tracing::debug_span!("ingress_upgrade", endpoint = %ep, protocol = ?protocol);
        tokio::spawn(
            async move {
                match tokio::try_join!(client_side, backend_side) {
                    Ok((c, b)) => {
                        let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                        match tokio::io::copy_bidirectional(&mut c, &mut b).await {
                            Ok((up, down)) => {
                                tracing::debug!(up, down, "upgraded connection closed")
                            }
                            Err(e) => tracing::debug!(error = %e, "upgraded connection ended"),
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade not completed"),
                }
            }
            .instrument(span),
        );
        let (mut parts, body) = resp.into_parts();
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        parts.headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        parts.headers.insert(http::header::UPGRADE, protocol);
        Response::from_parts(parts, body.boxed())
    }
}

/// Serve one accepted connection (plain or TLS) with the proxy.
async fn serve_conn<V, IO>(proxy: Arc<Proxy<V>>, io: IO, peer: SocketAddr, proto: &'static str)
where
    V: ClusterView,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let proxy = proxy.clone();
        let span = tracing::debug_span!("ingress", %peer, proto, method = %req.method(), path = %req.uri().path());
        async move { Ok::<_, Infallible>(proxy.handle(req, peer, proto).await) }.instrument(span)
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades()
        .await
    {
        tracing::debug!(%peer, error = %e, "ingress connection ended");
    }
}

/// Accept connections on `listener` forever; with `tls`, each is a TLS handshake first.
pub async fn serve<V: ClusterView>(
    listener: TcpListener,
    proxy: Arc<Proxy<V>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let proto = if tls.is_some() { "https" } else { "http" };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "ingress accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let proxy = proxy.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_conn(proxy, stream, peer, proto).await,
                Some(acc) => match acc.accept(stream).await {
                    Ok(s) => serve_conn(proxy, s, peer, proto).await,
                    Err(e) => tracing::debug!(%peer, error = %e, "ingress TLS handshake failed"),
                },
            }
        });
    }
}

/// The TLS acceptor of the HTTPS listener: certificates chosen by `resolver`.
pub fn acceptor(resolver: Arc<SniResolver>) -> Result<tokio_rustls::TlsAcceptor, IngressError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Bind `addr`, retrying while it is taken, then serve.
async fn listen<V: ClusterView>(
    addr: SocketAddr,
    proxy: Arc<Proxy<V>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(%addr, tls = tls.is_some(), "ingress proxy listening");
                return serve(l, proxy, tls).await;
            }
            Err(source) => {
                let e = IngressError::Bind { addr, source };
                tracing::warn!(error = %e, "ingress proxy cannot listen; retrying");
                tokio::time::sleep(BIND_RETRY).await;
            }
        }
    }
}

/// Keep `resolver` serving the certificates of the TLS Secrets the Ingresses name.
async fn refresh_certificates<V: ClusterView>(
    client: kube::Client,
    view: V,
    resolver: Arc<SniResolver>,
) {
    type Cached = (Instant, Option<Arc<rustls::sign::CertifiedKey>>);
    let mut cache: HashMap<(String, String), Cached> = HashMap::new();
    loop {
        let entries = view.snapshot().tls_entries();
        let mut served = Vec::new();
        for (ns, name, hosts) in entries {
            let key = (ns.clone(), name.clone());
            let fresh = cache
                .get(&key)
                .is_some_and(|(at, _)| at.elapsed() < SECRET_TTL);
            if !fresh {
                let got = load_secret(&client, &ns, &name).await;
                let ck = match got {
                    Ok(ck) => Some(Arc::new(ck)),
                    Err(e) => {
                        tracing::warn!(error = %e, "ingress TLS certificate unavailable");
                        None
                    }
                };
                cache.insert(key.clone(), (Instant::now(), ck));
            }
            if let Some((_, Some(ck))) = cache.get(&key) {
                served.push(Served {
                    hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                    key: ck.clone(),
                });
            }
        }
        resolver.set(served);
        tokio::time::sleep(TLS_REFRESH).await;
    }
}

async fn load_secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<rustls::sign::CertifiedKey, IngressError> {
    let secret_id = format!("{ns}/{name}");
    let s: Secret = Api::namespaced(client.clone(), ns)
        .get(name)
        .await
        .map_err(|source| IngressError::Secret {
            secret: secret_id.clone(),
            source,
        })?;
    let data = s.data.unwrap_or_default();
    let field = |k: &str| {
        data.get(k)
            .map(|b| b.0.clone())
            .ok_or_else(|| IngressError::BadCertificate {
                secret: secret_id.clone(),
                reason: format!("no {k}"),
            })
    };
    tls::certified_key(&secret_id, &field("tls.crt")?, &field("tls.key")?)
}

/// Start the proxy on this node: watches, certificate refresh and the listeners. Returns the
/// tasks (none when both ports are 0).
pub fn start(client: &kube::Client, cfg: IngressConfig) -> Vec<JoinHandle<()>> {
    if cfg.http_port == 0 && cfg.https_port == 0 {
        return Vec::new();
    }
    let (view, mut tasks) = Reflected::start(client);
    let proxy = Proxy::new(view.clone());
    if cfg.http_port != 0 {
        let addr = SocketAddr::new(cfg.node_ip, cfg.http_port);
        tasks.push(tokio::spawn(listen(addr, proxy.clone(), None)));
    }
    if cfg.https_port != 0 {
        let resolver = Arc::new(SniResolver::default());
        match acceptor(resolver.clone()) {
            Ok(acc) => {
                let addr = SocketAddr::new(cfg.node_ip, cfg.https_port);
                tasks.push(tokio::spawn(refresh_certificates(
                    client.clone(),
                    view,
                    resolver,
                )));
                tasks.push(tokio::spawn(listen(addr, proxy, Some(acc))));
            }
            Err(e) => tracing::warn!(error = %e, "ingress HTTPS listener disabled"),
        }
    }
    tasks
}

#[cfg(test)]
mod tests;
