//! Seal-token authentication: a `daas1.` bearer credential is checked for its signature and
//! validity window, then the seal token it names is checked on the ledger (owner matches the
//! signer, `k8s_gateway::is_valid` at the current epoch). The role recorded on chain becomes the
//! Kubernetes identity.
//!
//! A credential the ledger confirmed is cached for the token cache TTL (`--token-cache-seconds`),
//! keyed by the SHA-256 of the whole credential string: a warm request costs one hash and a read
//! lock, no signature check and no ledger call. Only fully verified credentials are cached, so a
//! forged, tampered, expired or foreign-audience credential (a different string, so a different
//! key) never hits. Revocation (stake withdrawn or slashed, token revoked) is seen when the entry
//! is older than the TTL and the ledger is asked again; the credential's own `exp` is checked on
//! every hit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use daas_apiserver::authz::{
    GROUP_MASTERS, GROUP_NODES, GROUP_USERS, NAMESPACE_GROUP_PREFIX, NODE_USER_PREFIX,
};
use daas_apiserver::{Authenticator, User};
use daas_controllers::usernamespaces::UserNamespaces;
use daas_ledger::contract::SealToken;
use daas_ledger::{credential, Ledger};
use sha2::{Digest, Sha256};

use crate::metrics::Metrics;

/// How long a new user's first request waits for the user-namespace controller.
const NAMESPACE_WAIT: Duration = Duration::from_secs(5);

/// Lock shards of the validation cache (picked by the first byte of the key).
const SHARDS: usize = 16;
/// Most credentials the cache holds; a full shard first drops its stale entries, then all.
const CACHE_CAPACITY: usize = 65_536;

/// Namespace of a user-tier identity: `u-` + the first 16 hex digits of its address.
pub fn user_namespace(owner: &sui_sdk_types::Address) -> String {
    let hex = owner.to_string();
    let hex = hex.trim_start_matches("0x");
    format!("u-{}", &hex[..16.min(hex.len())])
}

/// The Kubernetes identity a valid seal token grants.
pub fn identity(token: &SealToken) -> Option<User> {
    let auth = "system:authenticated".to_string();
    match token.role {
        0 => Some(User {
            name: format!("daas:user:{}", token.owner),
            groups: vec![
                GROUP_USERS.into(),
                format!("{NAMESPACE_GROUP_PREFIX}{}", user_namespace(&token.owner)),
                auth,
            ],
            ..Default::default()
        }),
        1 if !token.node_id.is_empty() => Some(User {
            name: format!("{NODE_USER_PREFIX}{}", token.node_id),
            groups: vec![GROUP_NODES.into(), auth],
            ..Default::default()
        }),
        2 => Some(User {
            name: format!("daas:admin:{}", token.owner),
            groups: vec![GROUP_MASTERS.into(), auth],
            ..Default::default()
        }),
        _ => None,
    }
}

/// Outcome of validating a credential, also served by `POST /api/v1/seal-token/validate`.
#[derive(Debug, Clone)]
pub struct Validated {
    pub user: User,
    pub token: SealToken,
    pub expires_ms: u64,
}

/// A credential the ledger confirmed, as the cache holds it.
#[derive(Debug)]
pub struct Checked {
    pub validated: Validated,
    /// Wall-clock time (ms since the Unix epoch) the ledger confirmed the seal token.
    pub checked_ms: u64,
    checked_at: Instant,
    /// The validate endpoint's answer for this confirmation (signed once, see [`Checked::memo`]).
    memo: OnceLock<bytes::Bytes>,
}

impl Checked {
    /// A value derived from this confirmation alone (e.g. the enclave-signed answer of the
    /// validate endpoint, whose timestamp is [`checked_ms`](Self::checked_ms)), computed by the
    /// first caller and shared until the ledger is asked again.
    pub fn memo(&self, f: impl FnOnce(&Checked) -> bytes::Bytes) -> bytes::Bytes {
        self.memo.get_or_init(|| f(self)).clone()
    }

    fn fresh(&self, ttl: Duration, now_ms: u64) -> bool {
        self.checked_at.elapsed() < ttl && now_ms < self.validated.expires_ms
    }
}

/// Why a credential does not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Credential(#[from] credential::CredentialError),
    #[error("ledger: {0}")]
    Ledger(#[from] daas_ledger::LedgerError),
    #[error("seal token {0} does not exist")]
    UnknownToken(sui_sdk_types::Address),
    #[error("seal token {token} is not owned by {claimed}")]
    NotOwner {
        token: sui_sdk_types::Address,
        claimed: sui_sdk_types::Address,
    },
    #[error("seal token {0} is no longer valid (expired, or its stake was withdrawn, slashed or renewed)")]
    Revoked(sui_sdk_types::Address),
    #[error("seal token {0} carries no usable role")]
    NoRole(sui_sdk_types::Address),
}

/// Cache key: SHA-256 of the whole credential (claims and signature).
type Key = [u8; 32];

fn key(cred: &str) -> Key {
    Sha256::digest(cred.as_bytes()).into()
}

/// Confirmed credentials by [`key`], in read-mostly shards.
struct ValidationCache {
    ttl: Duration,
    shards: Vec<RwLock<HashMap<Key, Arc<Checked>>>>,
}

impl ValidationCache {
    fn new(ttl: Duration) -> Self {
        ValidationCache {
            ttl,
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, k: &Key) -> &RwLock<HashMap<Key, Arc<Checked>>> {
        &self.shards[k[0] as usize % SHARDS]
    }

    /// The entry for `k` if the ledger confirmed it less than the TTL ago and the credential has
    /// not expired.
    fn get(&self, k: &Key, now_ms: u64) -> Option<Arc<Checked>> {
        let shard = self.shard(k).read().ok()?;
        shard.get(k).filter(|c| c.fresh(self.ttl, now_ms)).cloned()
    }

    fn insert(&self, k: Key, c: Arc<Checked>, now_ms: u64) {
        let Ok(mut shard) = self.shard(&k).write() else {
            return;
        };
        if shard.len() >= CACHE_CAPACITY / SHARDS && !shard.contains_key(&k) {
            shard.retain(|_, c| c.fresh(self.ttl, now_ms));
            if shard.len() >= CACHE_CAPACITY / SHARDS {
                shard.clear();
            }
        }
        shard.insert(k, c);
    }

    fn clear(&self) {
        for s in &self.shards {
            if let Ok(mut s) = s.write() {
                s.clear();
            }
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map(|s| s.len()).unwrap_or(0))
            .sum()
    }
}

/// Counters kept off the metrics registry's locks on the hot path; published at scrape time.
#[derive(Default)]
struct Counters {
    cache_hit: AtomicU64,
    /// Hits already added to the registry.
    cache_hit_published: AtomicU64,
    ledger_calls: AtomicU64,
}

pub struct SealTokenAuthenticator {
    ledger: Arc<dyn Ledger>,
    audience: String,
    cache: ValidationCache,
    counters: Counters,
    metrics: Arc<Metrics>,
    namespaces: UserNamespaces,
    owners: crate::billing::Owners,
}

impl SealTokenAuthenticator {
    /// `audience`: this cluster's credential audience (`credential::audience(cluster_id)`); a
    /// credential for any other (or no) audience is refused. `cache_ttl`: how long a confirmed
    /// credential is trusted before the ledger is asked again (the longest a revocation takes).
    pub fn new(
        ledger: Arc<dyn Ledger>,
        audience: String,
        cache_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        SealTokenAuthenticator {
            ledger,
            audience,
            cache: ValidationCache::new(cache_ttl),
            counters: Counters::default(),
            metrics,
            namespaces: UserNamespaces::new(),
            owners: Default::default(),
        }
    }

    /// The audience credentials must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The demand for user namespaces this authenticator records; the master runs its
    /// controller ([`UserNamespaces::controller`]).
    pub fn user_namespaces(&self) -> UserNamespaces {
        self.namespaces.clone()
    }

    /// The user addresses behind the user namespaces, as validated (for billing).
    pub fn owners(&self) -> crate::billing::Owners {
        self.owners.clone()
    }

    /// Forget cached validations (after the master itself revoked something, e.g. a slash).
    pub fn invalidate_all(&self) {
        self.cache.clear();
    }

    /// Ledger reads made for validations so far (`daas_token_ledger_calls_total`).
    pub fn ledger_calls(&self) -> u64 {
        self.counters.ledger_calls.load(Ordering::Relaxed)
    }

    /// Credentials in the cache (fresh or stale).
    pub fn cached_credentials(&self) -> usize {
        self.cache.len()
    }

    /// Validations answered from the cache so far.
    pub fn cache_hits(&self) -> u64 {
        self.counters.cache_hit.load(Ordering::Relaxed)
    }

    /// Add the hot-path counters to the metrics registry (before it is rendered).
    pub fn publish_metrics(&self) {
        let hits = self.counters.cache_hit.load(Ordering::Relaxed);
        let done = self
            .counters
            .cache_hit_published
            .swap(hits, Ordering::Relaxed);
        if hits > done {
            self.count("cache_hit", (hits - done) as f64);
        }
    }

    fn count(&self, result: &str, by: f64) {
        self.metrics.inc(
            "daas_token_validations_total",
            "Seal-token credential validations by result (cache_hit, valid, invalid).",
            &[("result", result)],
            by,
        );
    }

    fn count_ledger_call(&self) {
        self.counters.ledger_calls.fetch_add(1, Ordering::Relaxed);
        self.metrics.inc(
            "daas_token_ledger_calls_total",
            "Ledger reads made to validate seal-token credentials (none on a warm cache).",
            &[],
            1.0,
        );
    }

    /// Full validation of a credential string. No side effects on the cluster (the validation
    /// cache and metrics aside): it only answers whether the credential is valid and as whom.
    pub async fn validate(&self, cred: &str) -> Result<Validated, AuthError> {
        self.check(cred).await.map(|(c, _)| c.validated.clone())
    }

    /// Like [`validate`](Self::validate), returning the shared cache entry; the flag says whether
    /// the ledger was asked (not a cache hit).
    #[tracing::instrument(level = "debug", skip_all, fields(hit = tracing::field::Empty))]
    pub async fn check(&self, cred: &str) -> Result<(Arc<Checked>, bool), AuthError> {
        let now = crate::now_ms();
        let k = key(cred);
        if let Some(c) = self.cache.get(&k, now) {
            self.counters.cache_hit.fetch_add(1, Ordering::Relaxed);
            tracing::Span::current().record("hit", true);
            return Ok((c, false));
        }
        match self.validate_uncached(cred, now).await {
            Ok(v) => {
                self.count("valid", 1.0);
                let c = Arc::new(Checked {
                    validated: v,
                    checked_ms: crate::now_ms(),
                    checked_at: Instant::now(),
                    memo: OnceLock::new(),
                });
                self.cache.insert(k, c.clone(), now);
                Ok((c, true))
            }
            Err(e) => {
                self.count("invalid", 1.0);
                tracing::info!(error = %e, "seal-token credential refused");
                Err(e)
            }
        }
    }

    async fn validate_uncached(&self, cred: &str, now: u64) -> Result<Validated, AuthError> {
        let claims = credential::verify(cred, now, &self.audience)?;
        self.count_ledger_call();
        let token = self
            .ledger
            .seal_token(claims.token)
            .await?
            .ok_or(AuthError::UnknownToken(claims.token))?;
        if token.owner != claims.owner {
            return Err(AuthError::NotOwner {
                token: claims.token,
                claimed: claims.owner,
            });
        }
        self.count_ledger_call();
        if !self.ledger.seal_token_valid(claims.token).await? {
            return Err(AuthError::Revoked(claims.token));
        }
        let user = identity(&token).ok_or(AuthError::NoRole(claims.token))?;
        Ok(Validated {
            user,
            token,
            expires_ms: claims.exp,
        })
    }

    /// A user-tier identity gets its namespace when it makes its first real API request (not when
    /// someone merely asks whether its credential is valid), together with the RoleBinding that
    /// gives its namespace group the user-tier ClusterRole there. The binding is created with the
    /// namespace only, so an admin may change or delete it for good.
    async fn ensure_namespace(&self, ns: &str) {
        if !self.namespaces.ensure(ns, NAMESPACE_WAIT).await {
            tracing::warn!(
                namespace = ns,
                "user namespace not provisioned yet; requests into it fail until it is"
            );
        }
    }
}

#[async_trait]
impl Authenticator for SealTokenAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Option<User> {
        if !bearer.starts_with(credential::PREFIX) {
            return None;
        }
        let (c, fresh) = self.check(bearer).await.ok()?;
        let v = &c.validated;
        if fresh && v.token.role == 0 {
            self.owners.record(v.token.owner);
            self.ensure_namespace(&user_namespace(&v.token.owner)).await;
        }
        Some(v.user.clone())
    }
}

/// Tries each authenticator in order.
pub struct Chain(pub Vec<Arc<dyn Authenticator>>);

#[async_trait]
impl Authenticator for Chain {
    async fn authenticate(&self, bearer: &str) -> Option<User> {
        for a in &self.0 {
            if let Some(u) = a.authenticate(bearer).await {
                return Some(u);
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
