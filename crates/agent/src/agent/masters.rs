//! The masters of the cluster as a staker host sees them, and a Kubernetes client that fails over
//! between them.
//!
//! [`MasterSet`] holds every configured master URL in order. A master is used only once it has
//! been attested (`daas_protocol::attested`, the agent's policy, a fresh nonce) and has announced
//! the cluster id of the others; the ones unreachable at join are attested by the prober (or by a
//! request that finds no other master) when they first answer. Each attested master yields:
//! - a TLS client that accepts exactly the serving certificate its attestation bound (a master
//!   presenting another certificate is marked for re-attestation, and nothing is sent to it);
//! - its enclave key in [`MasterKeys`], which the kubelet endpoint accepts signatures from.
//!
//! [`MasterSet`] is a `tower::Service` for `kube::Client::new`: each request goes to the current
//! master; on a connection-level failure (refused, TLS handshake failure, connect timeout
//! [`FailoverConfig::connect_timeout`]) the master is marked down and the request goes to the
//! next attested master (nothing reached the failed one). A failure after the request may have
//! been sent (reset or closed before a response, no response headers within
//! [`FailoverConfig::response_timeout`]) marks the master down too, but is retried elsewhere
//! only for GET and HEAD, as client-go does; other methods get the error and their callers retry.
//! The prober ([`MasterSet::spawn_prober`]) checks downed masters every
//! [`FailoverConfig::probe_interval`] (`/api/v1/health` over the pinned TLS) and moves back to
//! the first healthy master in configuration order. Watches (kube-runtime watchers and the
//! agent's loops) end with an error when their master goes away and are re-established through
//! the same client, hence on a live master.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use daas_protocol::attested::{AttestationPolicy, AttestedMaster};
use daas_protocol::cluster::{self, AttestedCluster, ClusterError};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use http::{Method, Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use tracing::Instrument;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Timeouts of the failover client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverConfig {
    /// TCP connect plus TLS handshake to one master; past it the master counts as down.
    pub connect_timeout: Duration,
    /// Response headers of one request (a watch's headers come at once; its body may stay open).
    pub response_timeout: Duration,
    /// How often downed and not yet attested masters are checked.
    pub probe_interval: Duration,
    /// Source address of the connections (`None`: the system's choice). Hollow nodes each use
    /// their own loopback address, as nodes of a cluster each have their own IP.
    pub local_address: Option<std::net::IpAddr>,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(30),
            probe_interval: Duration::from_secs(2),
            local_address: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MastersError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("master {url}: the attestation carries no Ed25519 enclave key")]
    NoEnclaveKey { url: String },
    #[error("master {url}: TLS client: {source}")]
    Tls {
        url: String,
        #[source]
        source: rustls::Error,
    },
    #[error("master {url}: {source}")]
    Request {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("master {url}: no response within {secs}s")]
    Timeout { url: String, secs: u64 },
    #[error("no attested master could be reached ({0})")]
    AllDown(String),
    #[error("request URI {0:?} has no path")]
    Uri(String),
}

/// The enclave keys of the attested masters (by URL): a kubelet request signed by any of them is
/// accepted; a master's key is replaced when it is attested again.
#[derive(Clone, Default)]
pub struct MasterKeys(Arc<RwLock<BTreeMap<String, VerifyingKey>>>);

impl MasterKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys not tied to a URL (tests, a single known master).
    pub fn from_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let k = Self::new();
        for (i, key) in keys.into_iter().enumerate() {
            k.insert(&format!("key-{i}"), key);
        }
        k
    }

    pub fn insert(&self, url: &str, key: VerifyingKey) {
        if let Ok(mut m) = self.0.write() {
            m.insert(url.to_string(), key);
        }
    }

    /// Whether `sig` over `msg` is by one of the attested masters' enclave keys.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        self.0
            .read()
            .map(|m| m.values().any(|k| k.verify(msg, sig).is_ok()))
            .unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.0.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The enclave key an attested master signs kubelet requests with.
pub fn enclave_key(m: &AttestedMaster) -> Result<VerifyingKey, MastersError> {
    m.attestation
        .public_key
        .as_ref()
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| MastersError::NoEnclaveKey { url: m.url.clone() })
}

/// Where the bearer credential of each request comes from.
#[derive(Debug, Clone)]
pub enum Bearer {
    None,
    /// A file holding the token, read for every request (the credential refresh rewrites it).
    File(PathBuf),
}

impl Bearer {
    fn token(&self) -> Option<String> {
        match self {
            Bearer::None => None,
            Bearer::File(p) => std::fs::read_to_string(p)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        }
    }
}

type Connector = BoundedConnector;
type HttpClient = hyper_util::client::legacy::Client<Connector, kube::client::Body>;

/// An attested master and the HTTP client pinned to its certificate.
struct Conn {
    master: AttestedMaster,
    client: HttpClient,
    /// Set when the master presented another certificate than the attested one.
    stale: Arc<AtomicBool>,
}

#[derive(Default)]
struct SlotState {
    conn: Option<Arc<Conn>>,
    down: bool,
}

struct Slot {
    url: String,
    state: Mutex<SlotState>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Inner {
    slots: Vec<Slot>,
    current: AtomicUsize,
    policy: AttestationPolicy,
    /// (URL of the master that first announced it, cluster id).
    cluster: (String, String),
    keys: MasterKeys,
    bearer: Bearer,
    cfg: FailoverConfig,
    /// One attestation of a given master at a time.
    attesting: tokio::sync::Mutex<()>,
}

/// The cluster's masters; clone freely (shared state).
#[derive(Clone)]
pub struct MasterSet(Arc<Inner>);

impl std::fmt::Debug for MasterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterSet")
            .field(
                "masters",
                &self.0.slots.iter().map(|s| &s.url).collect::<Vec<_>>(),
            )
            .field("cluster_id", &self.0.cluster.1)
            .finish()
    }
}

impl MasterSet {
    /// Attest every master of `urls` (see [`cluster::attest_all`]: at least one must verify,
    /// all verified ones must announce one cluster id, unreachable ones are attested later).
    pub async fn attest(
        urls: &[String],
        policy: AttestationPolicy,
        bearer: Bearer,
        cfg: FailoverConfig,
    ) -> Result<MasterSet, MastersError> {
        let attested = cluster::attest_all(urls, &policy, false).await?;
        for (url, e) in &attested.unreachable {
            tracing::warn!(master = %url, error = %e, "master unreachable at join; it is attested when it answers, before it is used");
        }
        Self::from_attested(urls, attested, policy, bearer, cfg)
    }

    /// A set of `urls` of which `attested` were already verified.
    pub fn from_attested(
        urls: &[String],
        attested: AttestedCluster,
        policy: AttestationPolicy,
        bearer: Bearer,
        cfg: FailoverConfig,
    ) -> Result<MasterSet, MastersError> {
        let first = attested
            .attested
            .first()
            .ok_or_else(|| ClusterError::NoneReachable("no master attested".into()))?;
        let cluster = (first.url.clone(), attested.cluster_id.clone());
        let keys = MasterKeys::new();
        let slots = urls
            .iter()
            .map(|u| Slot {
                url: u.clone(),
                state: Mutex::new(SlotState::default()),
            })
            .collect::<Vec<_>>();
        let set = MasterSet(Arc::new(Inner {
            slots,
            current: AtomicUsize::new(0),
            policy,
            cluster,
            keys,
            bearer,
            cfg,
            attesting: tokio::sync::Mutex::new(()),
        }));
        let mut current = None;
        for m in attested.attested {
            let Some(i) = set.0.slots.iter().position(|s| s.url == m.url) else {
                continue;
            };
            set.install(i, m)?;
            current.get_or_insert(i);
        }
        set.0.current.store(current.unwrap_or(0), Ordering::SeqCst);
        Ok(set)
    }

    /// The cluster id every attested master announced.
    pub fn cluster_id(&self) -> &str {
        &self.0.cluster.1
    }

    /// The credential audience of this cluster (the same for every master).
    pub fn audience(&self) -> String {
        daas_ledger::credential::audience(self.cluster_id())
    }

    /// The enclave keys kubelet requests may be signed with.
    pub fn keys(&self) -> MasterKeys {
        self.0.keys.clone()
    }

    /// Every configured master URL, in order.
    pub fn urls(&self) -> Vec<String> {
        self.0.slots.iter().map(|s| s.url.clone()).collect()
    }

    /// The master requests currently go to.
    pub fn current_url(&self) -> String {
        self.0.slots[self.current()].url.clone()
    }

    /// The masters attested so far, in configuration order.
    pub fn attested(&self) -> Vec<AttestedMaster> {
        self.0
            .slots
            .iter()
            .filter_map(|s| s.lock().conn.as_ref().map(|c| c.master.clone()))
            .collect()
    }

    /// Whether the master at `url` is currently marked down.
    pub fn is_down(&self, url: &str) -> bool {
        self.0
            .slots
            .iter()
            .find(|s| s.url == url)
            .is_some_and(|s| s.lock().down)
    }

    /// A Kubernetes client over this set (default namespace `default`).
    pub fn kube_client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    /// Check downed and unattested masters every `probe_interval` until the set is dropped.
    pub fn spawn_prober(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.0);
        let period = self.0.cfg.probe_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { return };
                MasterSet(inner).probe_once().await;
            }
        })
    }

    /// One probe round: attest masters not attested yet, check downed ones, and make the first
    /// healthy master (configuration order) the current one.
    pub async fn probe_once(&self) {
        for i in 0..self.0.slots.len() {
            let (conn, down) = {
                let s = self.0.slots[i].lock();
                (s.conn.clone(), s.down)
            };
            match conn {
                None => {
                    let _ = self.attest_slot(i).await;
                }
                Some(c) if down => {
                    if self.health(i, &c).await {
                        tracing::info!(master = %self.0.slots[i].url, "master is back");
                        self.0.slots[i].lock().down = false;
                    }
                }
                Some(_) => {}
            }
        }
        if let Some(first) = (0..self.0.slots.len()).find(|i| {
            let s = self.0.slots[*i].lock();
            s.conn.is_some() && !s.down
        }) {
            let prev = self.0.current.swap(first, Ordering::SeqCst);
            if prev != first {
                tracing::info!(from = %self.0.slots[prev].url, to = %self.0.slots[first].url, "switching back to the preferred master");
            }
        }
    }

    fn current(&self) -> usize {
        self.0
            .current
            .load(Ordering::SeqCst)
            .min(self.0.slots.len().saturating_sub(1))
    }

    /// Install an attested master: its pinned client and its enclave key.
    fn install(&self, i: usize, m: AttestedMaster) -> Result<Arc<Conn>, MastersError> {
        let key = enclave_key(&m)?;
        let stale = Arc::new(AtomicBool::new(false));
        let client = pinned_client(&m, &self.0.cfg, stale.clone())?;
        self.0.keys.insert(&m.url, key);
        let conn = Arc::new(Conn {
            master: m,
            client,
            stale,
        });
        let mut s = self.0.slots[i].lock();
        s.conn = Some(conn.clone());
        s.down = false;
        Ok(conn)
    }

    /// Attest master `i` now (same policy, same cluster id required).
    async fn attest_slot(&self, i: usize) -> Option<Arc<Conn>> {
        let _one = self.0.attesting.lock().await;
        if let Some(c) = self.0.slots[i].lock().conn.clone() {
            return Some(c);
        }
        let url = &self.0.slots[i].url;
        let m = match cluster::attest_bounded(url, &self.0.policy).await {
            Ok(m) => m,
            Err(e) if cluster::is_unreachable(&e) => {
                tracing::debug!(master = %url, error = %e, "master not reachable for attestation");
                return None;
            }
            Err(e) => {
                tracing::error!(master = %url, error = %e, "master failed attestation; not using it");
                return None;
            }
        };
        if let Err(e) = cluster::same_cluster(&self.0.cluster.0, &self.0.cluster.1, &m) {
            tracing::error!(master = %url, error = %e, "not using this master");
            return None;
        }
        match self.install(i, m) {
            Ok(c) => {
                tracing::info!(master = %url, cluster = %self.0.cluster.1, "master attested");
                Some(c)
            }
            Err(e) => {
                tracing::error!(master = %url, error = %e, "not using this master");
                None
            }
        }
    }

    async fn health(&self, i: usize, c: &Conn) -> bool {
        let Ok(uri) = format!(
            "{}/api/v1/health",
            self.0.slots[i].url.trim_end_matches('/')
        )
        .parse::<Uri>() else {
            return false;
        };
        let Ok(req) = Request::get(uri).body(kube::client::Body::empty()) else {
            return false;
        };
        let ok = matches!(
            tokio::time::timeout(self.0.cfg.connect_timeout * 3, c.client.request(req)).await,
            Ok(Ok(r)) if r.status().is_success()
        );
        if !ok {
            self.after_failure(i, c);
        }
        ok
    }

    /// The order to try masters in: the current one, the other healthy ones, the downed ones,
    /// then the ones not attested yet (configuration order within each group).
    fn order(&self) -> Vec<usize> {
        let cur = self.current();
        let n = self.0.slots.len();
        let state = |i: usize| {
            let s = self.0.slots[i].lock();
            (s.conn.is_some(), s.down)
        };
        let states: Vec<(bool, bool)> = (0..n).map(state).collect();
        let mut out = Vec::with_capacity(n);
        if states[cur] == (true, false) {
            out.push(cur);
        }
        for want in [(true, false), (true, true), (false, false), (false, true)] {
            for (i, st) in states.iter().enumerate() {
                if *st == want && !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }

    fn mark_down(&self, i: usize, c: &Conn, why: &str) {
        let was_up = {
            let mut s = self.0.slots[i].lock();
            std::mem::replace(&mut s.down, true)
        };
        if !was_up {
            tracing::warn!(master = %self.0.slots[i].url, error = why, "master down; failing over");
        }
        self.after_failure(i, c);
    }

    /// A master that showed another certificate must be attested again before it is used.
    fn after_failure(&self, i: usize, c: &Conn) {
        if c.stale.load(Ordering::SeqCst) {
            let mut s = self.0.slots[i].lock();
            if s.conn
                .as_ref()
                .is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), c))
            {
                tracing::warn!(master = %self.0.slots[i].url, "master presented another certificate than the attested one; attesting it again before use");
                s.conn = None;
            }
        }
    }

    /// Master `i` answered: it is up, and becomes current when the current one is not usable
    /// (a late answer from another master does not undo the prober's switch back).
    fn mark_up(&self, i: usize) {
        self.0.slots[i].lock().down = false;
        let cur = self.current();
        if cur == i {
            return;
        }
        let usable = {
            let s = self.0.slots[cur].lock();
            s.conn.is_some() && !s.down
        };
        if !usable
            && self
                .0
                .current
                .compare_exchange(cur, i, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            tracing::info!(from = %self.0.slots[cur].url, to = %self.0.slots[i].url, "now using master");
        }
    }

    /// Send `req`; a 429 answer is retried after its `Retry-After` (as client-go: at most
    /// [`MAX_429_RETRIES`] times, each wait capped at [`MAX_RETRY_AFTER`]) while the body can be
    /// sent again (kube buffers its bodies; a streamed one is not retried).
    async fn send(
        self,
        req: Request<kube::client::Body>,
    ) -> Result<Response<hyper::body::Incoming>, MastersError> {
        let (parts, body) = req.into_parts();
        let mut body = body;
        let mut attempt = 0;
        loop {
            let again = body.try_clone();
            let resp = self.send_once(&parts, body).await?;
            let wait = retry_after(&resp);
            match (wait, again) {
                (Some(wait), Some(b)) if attempt < MAX_429_RETRIES => {
                    attempt += 1;
                    tracing::debug!(path = %parts.uri.path(), attempt, wait_ms = wait.as_millis() as u64, "429 from the master; retrying after Retry-After");
                    tokio::time::sleep(wait).await;
                    body = b;
                }
                _ => return Ok(resp),
            }
        }
    }

    async fn send_once(
        &self,
        parts: &http::request::Parts,
        body: kube::client::Body,
    ) -> Result<Response<hyper::body::Incoming>, MastersError> {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .ok_or_else(|| MastersError::Uri(parts.uri.to_string()))?;
        let retry_after_send = matches!(parts.method, Method::GET | Method::HEAD);
        let token = self.0.bearer.token();
        let mut body = Some(body);
        let mut failures = Vec::new();
        for i in self.order() {
            let url = self.0.slots[i].url.clone();
            let existing = self.0.slots[i].lock().conn.clone();
            let Some(conn) = (match existing {
                Some(c) => Some(c),
                None => self.attest_slot(i).await,
            }) else {
                failures.push(format!("{url}: not attested"));
                continue;
            };
            // kube's request bodies are buffered, so a copy can go to the next master.
            let b = match body.as_ref().and_then(|b| b.try_clone()) {
                Some(b) => b,
                None => match body.take() {
                    Some(b) => b,
                    None => break,
                },
            };
            let uri: Uri = format!("{}{path}", url.trim_end_matches('/'))
                .parse()
                .map_err(|_| MastersError::Uri(path.clone()))?;
            let mut r = Request::builder()
                .method(parts.method.clone())
                .uri(uri)
                .version(http::Version::HTTP_11);
            for (k, v) in &parts.headers {
                if k != http::header::HOST {
                    r = r.header(k, v);
                }
            }
            if let Some(t) = &token {
                if !parts.headers.contains_key(http::header::AUTHORIZATION) {
                    r = r.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
                }
            }
            let r = r.body(b).map_err(|_| MastersError::Uri(path.clone()))?;
            match tokio::time::timeout(self.0.cfg.response_timeout, conn.client.request(r)).await {
                Ok(Ok(resp)) => {
                    self.mark_up(i);
                    return Ok(resp);
                }
                Ok(Err(e)) => {
                    let connect = e.is_connect();
                    self.mark_down(i, &conn, &e.to_string());
                    if connect || retry_after_send {
                        failures.push(format!("{url}: {e}"));
                        continue;
                    }
                    return Err(MastersError::Request { url, source: e });
                }
                Err(_) => {
                    let secs = self.0.cfg.response_timeout.as_secs();
                    self.mark_down(i, &conn, "no response in time");
                    if retry_after_send {
                        failures.push(format!("{url}: no response within {secs}s"));
                        continue;
                    }
                    return Err(MastersError::Timeout { url, secs });
                }
            }
        }
        Err(MastersError::AllDown(failures.join("; ")))
    }
}

/// 429s retried by [`MasterSet`] (client-go's `maxRetries`).
pub const MAX_429_RETRIES: usize = 10;
/// The longest `Retry-After` wait honoured per retry.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How long a 429 answer asks the client to wait (`Retry-After` in seconds, 1 s without one);
/// None for other answers.
pub fn retry_after<B>(resp: &Response<B>) -> Option<Duration> {
    if resp.status() != http::StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let secs = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

impl tower::Service<Request<kube::client::Body>> for MasterSet {
    type Response = Response<hyper::body::Incoming>;
    type Error = MastersError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, MastersError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), MastersError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let span = tracing::debug_span!("master_request", method = %req.method(), path = %req.uri().path());
        Box::pin(self.clone().send(req).instrument(span))
    }
}

/// The HTTPS connector to one master: TCP connect and TLS handshake bounded together.
#[derive(Clone)]
struct BoundedConnector {
    inner: hyper_rustls::HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl tower::Service<Uri> for BoundedConnector {
    type Response = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let fut = self.inner.call(uri);
        let t = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(format!("connect and TLS handshake timed out after {t:?}").into()),
            }
        })
    }
}

/// An HTTP/1.1 client that talks to `m` only over a TLS session presenting the very certificate
/// its attestation bound.
fn pinned_client(
    m: &AttestedMaster,
    cfg: &FailoverConfig,
    stale: Arc<AtomicBool>,
) -> Result<HttpClient, MastersError> {
    let connect_timeout = cfg.connect_timeout;
    let pinned = m.server_cert_der.clone();
    let tls = daas_protocol::tlsverify::CertCheck::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        move |leaf, _| {
            if leaf.as_ref() == pinned.as_slice() {
                Ok(())
            } else {
                stale.store(true, Ordering::SeqCst);
                Err(rustls::Error::General(
                    "the master's certificate is not the one its attestation bound".into(),
                ))
            }
        },
    )
    .client_config()
    .map_err(|source| MastersError::Tls {
        url: m.url.clone(),
        source,
    })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_local_address(cfg.local_address);
    http.set_keepalive(Some(Duration::from_secs(15)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(BoundedConnector {
                inner: https,
                timeout: connect_timeout,
            }),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_is_read_from_429_answers_only() {
        let r = |code: u16, h: Option<&str>| {
            let mut b = Response::builder().status(code);
            if let Some(h) = h {
                b = b.header(http::header::RETRY_AFTER, h);
            }
            b.body(()).unwrap()
        };
        assert_eq!(retry_after(&r(200, Some("3"))), None);
        assert_eq!(retry_after(&r(503, Some("3"))), None);
        assert_eq!(
            retry_after(&r(429, Some("3"))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after(&r(429, None)), Some(Duration::from_secs(1)));
        assert_eq!(
            retry_after(&r(429, Some("soon"))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(retry_after(&r(429, Some("86400"))), Some(MAX_RETRY_AFTER));
    }

    use super::*;
    use daas_protocol::testmaster::{TestCa, TestMaster, TEST_MEASUREMENT};
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    use kube::runtime::WatchStreamExt;

    fn fast() -> FailoverConfig {
        FailoverConfig {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(5),
            // Tests call probe_once themselves unless they spawn the prober.
            probe_interval: Duration::from_millis(100),
            local_address: None,
        }
    }

    struct Fixture {
        dir: tempfile::TempDir,
        ca: TestCa,
        token: PathBuf,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let token = dir.path().join("credential.token");
            std::fs::write(&token, "tok-1").expect("token");
            Fixture {
                dir,
                ca: TestCa::new(),
                token,
            }
        }

        async fn master(&self, cluster: &str, name: &str) -> TestMaster {
            TestMaster::start(&self.ca, self.dir.path(), cluster, name).await
        }

        async fn set(&self, urls: &[&TestMaster]) -> Result<MasterSet, MastersError> {
            let policy = urls[0].policy();
            let urls: Vec<String> = urls.iter().map(|m| m.url.clone()).collect();
            MasterSet::attest(&urls, policy, Bearer::File(self.token.clone()), fast()).await
        }
    }

    async fn served_by(client: &kube::Client) -> Result<(String, String), kube::Error> {
        let cm = Api::<ConfigMap>::namespaced(client.clone(), "default")
            .get("probe")
            .await?;
        let d = cm.data.unwrap_or_default();
        Ok((
            d.get("served-by").cloned().unwrap_or_default(),
            d.get("authorization").cloned().unwrap_or_default(),
        ))
    }

    /// Requests go to the first master; when it dies they go to the second at once (reads and
    /// writes, nothing lost to the caller), the credential is re-read for each request, and once
    /// the first master is back the client returns to it.
    #[tokio::test]
    async fn fails_over_to_the_next_master_and_goes_back() {
        let f = Fixture::new();
        let mut a = f.master("c1", "a").await;
        let b = f.master("c1", "b").await;
        let set = f.set(&[&a, &b]).await.expect("attest");
        assert_eq!(set.cluster_id(), "c1");
        assert_eq!(set.audience(), "k3s-daas:c1");
        assert_eq!(set.keys().len(), 2);
        assert_eq!(set.attested().len(), 2);
        let client = set.kube_client();
        assert_eq!(
            served_by(&client).await.expect("get"),
            ("a".to_string(), "Bearer tok-1".to_string())
        );

        a.stop().await;
        std::fs::write(&f.token, "tok-2").expect("token");
        let t = std::time::Instant::now();
        assert_eq!(
            served_by(&client).await.expect("get after failover"),
            ("b".to_string(), "Bearer tok-2".to_string())
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(set.is_down(&a.url));
        assert_eq!(set.current_url(), b.url);
        // A write goes to the live master too.
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "w"}}))
        .expect("cm");
        let created = Api::<ConfigMap>::namespaced(client.clone(), "default")
            .create(&PostParams::default(), &cm)
            .await
            .expect("create");
        assert_eq!(
            created
                .data
                .unwrap_or_default()
                .get("method")
                .map(String::as_str),
            Some("POST")
        );
        let a_before = a.requests.load(Ordering::SeqCst);

        // The probe finds the first master back and the client returns to it.
        a.restart().await;
        set.probe_once().await;
        assert!(!set.is_down(&a.url));
        assert_eq!(set.current_url(), a.url);
        assert_eq!(served_by(&client).await.expect("get").0, "a");
        assert_eq!(a.requests.load(Ordering::SeqCst), a_before + 1);
    }

    /// Both masters down: the request fails (no hang), and works again once one is back.
    #[tokio::test]
    async fn all_masters_down_is_an_error_not_a_hang() {
        let f = Fixture::new();
        let mut a = f.master("c1", "a").await;
        let mut b = f.master("c1", "b").await;
        let set = f.set(&[&a, &b]).await.expect("attest");
        let client = set.kube_client();
        a.stop().await;
        b.stop().await;
        let t = std::time::Instant::now();
        let e = served_by(&client).await.expect_err("all down");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(e.to_string().contains("no attested master"), "{e}");
        b.restart().await;
        assert_eq!(served_by(&client).await.expect("get").0, "b");
    }

    /// A kube-runtime watch on the master that dies ends with an error and is re-established
    /// (list + watch) on the other master.
    #[tokio::test]
    async fn watches_reestablish_on_the_other_master() {
        let f = Fixture::new();
        let mut a = f.master("c1", "a").await;
        let b = f.master("c1", "b").await;
        let set = f.set(&[&a, &b]).await.expect("attest");
        let api = Api::<ConfigMap>::namespaced(set.kube_client(), "default");
        let mut events = kube::runtime::watcher(api, Default::default())
            .applied_objects()
            .boxed();
        async fn next(
            events: &mut futures::stream::BoxStream<
                'static,
                Result<ConfigMap, kube::runtime::watcher::Error>,
            >,
        ) -> Option<String> {
            match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
                Ok(Some(Ok(cm))) => Some(
                    cm.data
                        .unwrap_or_default()
                        .get("served-by")
                        .cloned()
                        .unwrap_or_default(),
                ),
                Ok(Some(Err(_))) => None,
                other => panic!("watch ended: {other:?}"),
            }
        }
        let mut seen = Vec::new();
        while seen.len() < 2 {
            if let Some(s) = next(&mut events).await {
                seen.push(s);
            }
        }
        // The initial list and the watch's first event both come from the first master.
        assert_eq!(seen, vec!["a", "a"]);
        a.stop().await;
        let mut after = None;
        for _ in 0..10 {
            if let Some(s) = next(&mut events).await {
                after = Some(s);
                break;
            }
        }
        assert_eq!(after.as_deref(), Some("b"));
    }

    /// A master unreachable at join is not used (its key not trusted) until it answers and
    /// verifies; the prober attests it and, as the first in order, it becomes current.
    #[tokio::test]
    async fn a_master_down_at_join_is_attested_before_it_is_used() {
        let f = Fixture::new();
        let mut b = f.master("c1", "b").await;
        let a = f.master("c1", "a").await;
        b.stop().await;
        let set = f.set(&[&b, &a]).await.expect("one reachable is enough");
        assert_eq!(set.keys().len(), 1);
        assert_eq!(set.attested().len(), 1);
        assert_eq!(set.current_url(), a.url);
        let client = set.kube_client();
        assert_eq!(served_by(&client).await.expect("get").0, "a");
        let msg = b"k3s-daas-node-request\nGET\n/stats/summary\n1";
        let sig = Signature::from_bytes(&b.sign(msg));
        assert!(!set.keys().verify(msg, &sig), "unattested key trusted");

        b.restart().await;
        let prober = set.spawn_prober();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while set.current_url() != b.url && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        prober.abort();
        assert_eq!(set.current_url(), b.url);
        assert_eq!(set.keys().len(), 2);
        assert!(set.keys().verify(msg, &sig));
        assert_eq!(served_by(&client).await.expect("get").0, "b");
    }

    /// Nothing is ever sent to a master of another cluster, nor to an impostor at a master's
    /// address presenting another certificate and measurement; a genuine replacement at that
    /// address is attested again before use.
    #[tokio::test]
    async fn impostors_and_other_clusters_get_nothing() {
        let f = Fixture::new();
        let mut a = f.master("c1", "a").await;
        let mut x = f.master("other-cluster", "x").await;
        x.stop().await;
        let set = f.set(&[&a, &x]).await.expect("attest");
        let client = set.kube_client();
        x.restart().await;
        set.probe_once().await;
        assert_eq!(
            set.attested().len(),
            1,
            "a master of another cluster was attested"
        );
        assert_eq!(served_by(&client).await.expect("get").0, "a");

        // An impostor takes a's address: another certificate, another measurement.
        a.stop().await;
        let imp = TestMaster::start_at(
            &TestCa::new(),
            f.dir.path(),
            "c1",
            "impostor",
            [5; 48],
            Some(a.addr),
        )
        .await;
        let e = served_by(&client).await.expect_err("impostor");
        assert!(e.to_string().contains("no attested master"), "{e}");
        assert_eq!(imp.requests.load(Ordering::SeqCst), 0);
        assert_eq!(x.requests.load(Ordering::SeqCst), 0);
        assert_eq!(set.keys().len(), 1);
        drop(imp);

        // A genuine master of the cluster (new certificate, new enclave key) at that address is
        // attested again, and its new key replaces the old one.
        let old_key = a.sign(b"m");
        let a2 = TestMaster::start_at(
            &f.ca,
            f.dir.path(),
            "c1",
            "a2",
            TEST_MEASUREMENT,
            Some(a.addr),
        )
        .await;
        assert_eq!(served_by(&client).await.expect("get").0, "a2");
        assert_eq!(set.keys().len(), 1);
        assert!(set
            .keys()
            .verify(b"m", &Signature::from_bytes(&a2.sign(b"m"))));
        assert!(!set.keys().verify(b"m", &Signature::from_bytes(&old_key)));
    }
}
