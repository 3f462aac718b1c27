//! Abuse limits next to priority and fairness ([`crate::flowcontrol`] bounds concurrency):
//!
//! - **watches**: concurrently open watches per identity (`--max-watches-per-user`) and in all
//!   (`--max-watches`). The admin (`system:masters`) is not counted, and nodes (`system:nodes`)
//!   draw from their own budget (per node: [`NODE_WATCH_FACTOR`] times the per-user limit), so
//!   users exhausting the server-wide budget cannot keep a node from watching its pods. Over a
//!   limit the watch is refused with 429 `TooManyRequests`, `Retry-After` and
//!   `details.retryAfterSeconds`; a closed watch frees its slot when its response body is
//!   dropped. The count is per request, so HTTP/1.1 connections and HTTP/2 streams count alike.
//! - **authentication failures**: a token bucket per client address. Each failed authentication
//!   takes a token; an address whose bucket is empty is answered 429 before its credentials are
//!   checked (so a flood of forged tokens costs the server little and leaves the other clients'
//!   requests served), until the bucket refills. Successful requests take nothing.
//! - **request bodies** are bounded where they are read ([`crate::server`], [`body_limit`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::error::ApiError;
use crate::server::User;

/// A node may hold this many times the per-user watch limit (a kubelet watches its pods, their
/// secrets and config maps, its Node, services, ...).
pub const NODE_WATCH_FACTOR: usize = 4;

/// Limits of [`Limits`] (`daas up --max-watches-per-user`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Watches one identity (not an admin, not a node) may hold open at once.
    pub max_watches_per_user: usize,
    /// Watches all such identities may hold open at once (nodes and admins are not counted).
    pub max_watches: usize,
    /// Failed authentications one client address may make in a burst.
    pub auth_failure_burst: u32,
    /// Failed authentications per second a client address regains.
    pub auth_failures_per_second: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_watches_per_user: 100,
            max_watches: 4096,
            auth_failure_burst: 50,
            auth_failures_per_second: 10.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("limits: {0}")]
    Config(&'static str),
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.max_watches_per_user == 0 || self.max_watches == 0 {
            return Err(LimitsError::Config(
                "--max-watches-per-user and --max-watches must be positive",
            ));
        }
        if self.auth_failure_burst == 0
            || !self.auth_failures_per_second.is_finite()
            || self.auth_failures_per_second <= 0.0
        {
            return Err(LimitsError::Config(
                "the authentication failure burst and rate must be positive",
            ));
        }
        Ok(())
    }
}

/// A 429 with `Retry-After: secs` (and `details.retryAfterSeconds`), as upstream.
pub fn too_many_requests(message: impl Into<String>, secs: u64) -> ApiError {
    ApiError::new(429, "TooManyRequests", message)
        .with_details(serde_json::json!({"retryAfterSeconds": secs.max(1)}))
}

/// Which watch budget an identity draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Budget {
    /// system:masters: not counted.
    Exempt,
    Node(String),
    User(String),
}

fn budget(user: Option<&User>) -> Budget {
    match user {
        Some(u) if crate::authz::is_master(u) => Budget::Exempt,
        Some(u) if u.groups.iter().any(|g| g == "system:nodes") => Budget::Node(u.name.clone()),
        Some(u) => Budget::User(u.name.clone()),
        None => Budget::User("system:anonymous".into()),
    }
}

#[derive(Default)]
struct WatchCounts {
    per_identity: HashMap<Budget, usize>,
    users_total: usize,
    nodes_total: usize,
}

/// Open watches, per identity and in all.
pub struct WatchLimiter {
    per_user: usize,
    total: usize,
    counts: Mutex<WatchCounts>,
}

/// One open watch; its slot is freed when this is dropped (with the watch's response body).
pub struct WatchSlot {
    limiter: Option<Arc<WatchLimiter>>,
    budget: Budget,
}

impl WatchLimiter {
    pub fn new(per_user: usize, total: usize) -> Arc<Self> {
        Arc::new(WatchLimiter {
            per_user,
            total,
            counts: Mutex::new(WatchCounts::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchCounts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a new watch of `user`, or refuse it with 429.
    pub fn admit(self: &Arc<Self>, user: Option<&User>) -> Result<WatchSlot, ApiError> {
        let b = budget(user);
        if b == Budget::Exempt {
            return Ok(WatchSlot {
                limiter: None,
                budget: b,
            });
        }
        let mut c = self.lock();
        let mine = c.per_identity.get(&b).copied().unwrap_or(0);
        let (own_limit, total, total_limit) = match &b {
            Budget::Node(_) => (
                self.per_user.saturating_mul(NODE_WATCH_FACTOR),
                c.nodes_total,
                self.total,
            ),
            _ => (self.per_user, c.users_total, self.total),
        };
        if mine >= own_limit {
            return Err(too_many_requests(
                format!("Too many requests: {} has {mine} watches open (limit {own_limit}), please try again later.", name(&b)),
                crate::flowcontrol::RETRY_AFTER_SECONDS,
            ));
        }
        if total >= total_limit {
            return Err(too_many_requests(
                format!(
                    "Too many requests: the server has {total} watches open (limit {total_limit}), please try again later."
                ),
                crate::flowcontrol::RETRY_AFTER_SECONDS,
            ));
        }
        *c.per_identity.entry(b.clone()).or_insert(0) += 1;
        match &b {
            Budget::Node(_) => c.nodes_total += 1,
            _ => c.users_total += 1,
        }
        Ok(WatchSlot {
            limiter: Some(self.clone()),
            budget: b,
        })
    }

    /// Watches `user` holds open now.
    pub fn open(&self, user: Option<&User>) -> usize {
        self.lock()
            .per_identity
            .get(&budget(user))
            .copied()
            .unwrap_or(0)
    }
}

fn name(b: &Budget) -> &str {
    match b {
        Budget::Exempt => "system:masters",
        Budget::Node(n) | Budget::User(n) => n,
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let Some(l) = &self.limiter else { return };
        let mut c = l.lock();
        if let Some(n) = c.per_identity.get_mut(&self.budget) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_identity.remove(&self.budget);
            }
        }
        match &self.budget {
            Budget::Node(_) => c.nodes_total = c.nodes_total.saturating_sub(1),
            _ => c.users_total = c.users_total.saturating_sub(1),
        }
    }
}

impl WatchSlot {
    /// Keep the slot until `resp`'s body is finished or dropped (the watch closed).
    pub fn hold_until_done(self, resp: Response) -> Response {
        resp.map(|b| {
            Body::new(b.map_frame(move |f| {
                let _ = &self;
                f
            }))
        })
    }
}

/// A client's remaining failed-authentication allowance.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Failed authentications per client address (token buckets).
pub struct AuthFailureLimiter {
    burst: f64,
    rate: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// Addresses tracked at most; beyond it full buckets are forgotten first.
const MAX_TRACKED: usize = 16384;

impl AuthFailureLimiter {
    pub fn new(burst: u32, per_second: f64) -> Self {
        AuthFailureLimiter {
            burst: f64::from(burst.max(1)),
            rate: if per_second > 0.0 { per_second } else { 1.0 },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.rate).min(self.burst);
        b.at = now;
    }

    /// 429 when `ip` has no failed authentications left (the seconds until it has one again).
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        let mut m = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = m.get_mut(&ip) else {
            return Ok(());
        };
        self.refill(b, now);
        if b.tokens >= 1.0 {
            return Ok(());
        }
        let secs = ((1.0 - b.tokens) / self.rate).ceil() as u64;
        Err(too_many_requests(
            "Too many failed authentication attempts from this address, please try again later.",
            secs,
        ))
    }

    /// Take a token from `ip`'s bucket for a failed authentication.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut m = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_TRACKED && !m.contains_key(&ip) {
            let (burst, rate) = (self.burst, self.rate);
            m.retain(|_, b| {
                let dt = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + dt * rate < burst
            });
            if m.len() >= MAX_TRACKED {
                return;
            }
        }
        let b = m.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        self.refill(b, now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

/// The abuse limits of one API server.
pub struct Limits {
    pub watches: Arc<WatchLimiter>,
    pub auth_failures: AuthFailureLimiter,
}

impl Limits {
    pub fn new(cfg: &LimitsConfig) -> Arc<Self> {
        Arc::new(Limits {
            watches: WatchLimiter::new(cfg.max_watches_per_user, cfg.max_watches),
            auth_failures: AuthFailureLimiter::new(
                cfg.auth_failure_burst,
                cfg.auth_failures_per_second,
            ),
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        let cfg = LimitsConfig::default();
        Limits {
            watches: WatchLimiter::new(cfg.max_watches_per_user, cfg.max_watches),
            auth_failures: AuthFailureLimiter::new(
                cfg.auth_failure_burst,
                cfg.auth_failures_per_second,
            ),
        }
    }
}

/// Bytes past the limit a body is still read (and discarded) so the client, still sending,
/// reads the 413 rather than a reset connection; a longer body is cut there.
pub const DRAIN_BYTES: usize = 1024 * 1024;

/// The largest WebSocket message (and frame) an exec/attach/port-forward client may send: a
/// stream's messages are bounded like a request body (the WebSocket library's default is 64 MiB).
pub const MAX_STREAM_MESSAGE: usize = crate::handlers::DEFAULT_MAX_BODY;

/// Upstream's 413 Status for a body over `limit` bytes.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(limit)
}

/// The declared `Content-Length`, if any.
pub fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Read a body of at most `limit` bytes: an oversized one (chunked ones too) is kept only up to
/// the limit, read on and discarded for at most [`DRAIN_BYTES`] more (so the client reads the
/// 413 rather than a reset connection or stream), and cut there.
pub async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let drain = limit.saturating_add(DRAIN_BYTES);
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= limit {
                buf.extend_from_slice(&data);
            } else {
                buf = Vec::new();
                if total > drain {
                    break;
                }
            }
        }
    }
    if total > limit {
        return Err(too_large(limit));
    }
    Ok(buf)
}

/// Middleware for endpoints outside the Kubernetes API (key shares, snapshots, seal-token
/// validation, staking, heartbeats, console): the body is read here, bounded as the API's
/// ([`read_limited`]; one declared over the limit plus [`DRAIN_BYTES`] is refused unread), and
/// handed on buffered; every 413 is a Kubernetes `Status` naming the limit.
pub async fn body_limit(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if content_length(req.headers()).is_some_and(|n| n > limit.saturating_add(DRAIN_BYTES) as u64) {
        return too_large(limit).into_response();
    }
    let (parts, body) = req.into_parts();
    let body = match read_limited(body, limit).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let resp = next.run(Request::from_parts(parts, Body::from(body))).await;
    let is_status = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && !is_status {
        return too_large(limit).into_response();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn user(name: &str, groups: &[&str]) -> User {
        User::new(name, groups.iter().map(|g| g.to_string()).collect())
    }

    #[test]
    fn a_user_over_the_watch_limit_is_refused_and_a_closed_watch_frees_its_slot() {
        let l = WatchLimiter::new(2, 100);
        let alice = user("alice", &["system:authenticated"]);
        let a1 = l.admit(Some(&alice)).unwrap();
        let _a2 = l.admit(Some(&alice)).unwrap();
        let e = l.admit(Some(&alice)).err().unwrap();
        assert_eq!(e.code, 429);
        assert_eq!(e.reason, "TooManyRequests");
        assert_eq!(e.to_status()["details"]["retryAfterSeconds"], 1);
        // Another user has their own budget.
        let bob = user("bob", &["system:authenticated"]);
        let _b = l.admit(Some(&bob)).unwrap();
        drop(a1);
        assert_eq!(l.open(Some(&alice)), 1);
        let _a3 = l.admit(Some(&alice)).unwrap();
    }

    #[test]
    fn the_server_wide_limit_leaves_admins_and_nodes_their_own_budget() {
        let l = WatchLimiter::new(10, 3);
        let users: Vec<User> = (0..4)
            .map(|i| user(&format!("u{i}"), &["system:authenticated"]))
            .collect();
        let _held: Vec<WatchSlot> = users[..3]
            .iter()
            .map(|u| l.admit(Some(u)).unwrap())
            .collect();
        assert_eq!(l.admit(Some(&users[3])).err().unwrap().code, 429);
        let admin = user("admin", &["system:masters"]);
        let _adm: Vec<WatchSlot> = (0..50).map(|_| l.admit(Some(&admin)).unwrap()).collect();
        let node = user("system:node:n1", &["system:nodes"]);
        let _n = l.admit(Some(&node)).unwrap();
        // A node's own limit is NODE_WATCH_FACTOR times the user's... but the node pool is
        // bounded by the server-wide limit too.
        let _n2 = l.admit(Some(&node)).unwrap();
        let _n3 = l.admit(Some(&node)).unwrap();
        assert_eq!(l.admit(Some(&node)).err().unwrap().code, 429);
    }

    #[test]
    fn a_node_gets_a_larger_own_limit() {
        let l = WatchLimiter::new(2, 1000);
        let node = user("system:node:n1", &["system:nodes"]);
        let held: Vec<WatchSlot> = (0..2 * NODE_WATCH_FACTOR)
            .map(|_| l.admit(Some(&node)).unwrap())
            .collect();
        assert_eq!(l.admit(Some(&node)).err().unwrap().code, 429);
        drop(held);
        assert_eq!(l.open(Some(&node)), 0);
    }

    #[test]
    fn failed_authentications_drain_the_address_bucket_and_it_refills() {
        let l = AuthFailureLimiter::new(3, 2.0);
        let t0 = Instant::now();
        let bad: IpAddr = "127.0.0.2".parse().unwrap();
        let good: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            l.check(bad, t0).unwrap();
            l.failed(bad, t0);
        }
        let e = l.check(bad, t0).err().unwrap();
        assert_eq!(e.code, 429);
        assert_eq!(e.to_status()["details"]["retryAfterSeconds"], 1);
        // Another address is not affected.
        l.check(good, t0).unwrap();
        // Half a second later one failure is allowed again (2 per second).
        l.check(bad, t0 + Duration::from_millis(500)).unwrap();
    }

    #[test]
    fn config_validation() {
        assert!(LimitsConfig::default().validate().is_ok());
        let c = LimitsConfig {
            max_watches_per_user: 0,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = LimitsConfig {
            auth_failures_per_second: f64::NAN,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[tokio::test]
    async fn bodies_are_cut_at_the_limit_and_drained_a_little() {
        let small = read_limited(Body::from(vec![1u8; 10]), 10).await.unwrap();
        assert_eq!(small.len(), 10);
        let e = read_limited(Body::from(vec![1u8; 11]), 10)
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, 413);
        // A stream far over the limit stops being read once past the drain window.
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = read.clone();
        let chunks = futures::stream::iter((0..1000).map(move |_| {
            counted.fetch_add(64 * 1024, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 64 * 1024]))
        }));
        let e = read_limited(Body::from_stream(chunks), 1024)
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, 413);
        let n = read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(n <= 1024 + DRAIN_BYTES + 64 * 1024, "read {n} bytes");
    }

    #[test]
    fn too_large_is_upstreams_status() {
        let e = too_large(3145728);
        assert_eq!(e.code, 413);
        assert_eq!(e.reason, "RequestEntityTooLarge");
        assert_eq!(e.message, "Request entity too large: limit is 3145728");
    }
}
