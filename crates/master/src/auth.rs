//! Seal-token authentication: a `daas1.` bearer credential is checked for its signature and
//! validity window, then the seal token it names is checked on the ledger (owner matches the
//! signer, `k8s_gateway::is_valid` at the current epoch). The role recorded on chain becomes the
//! Kubernetes identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use daas_apiserver::authz::{
    GROUP_MASTERS, GROUP_NODES, GROUP_USERS, NAMESPACE_GROUP_PREFIX, NODE_USER_PREFIX,
};
use daas_apiserver::{Authenticator, User};
use daas_controllers::usernamespaces::UserNamespaces;
use daas_ledger::contract::SealToken;
use daas_ledger::{credential, Ledger};

use crate::metrics::Metrics;

/// How long a new user's first request waits for the user-namespace controller.
const NAMESPACE_WAIT: Duration = Duration::from_secs(5);

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

pub struct SealTokenAuthenticator {
    ledger: Arc<dyn Ledger>,
    audience: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (Validated, Instant)>>,
    metrics: Arc<Metrics>,
    namespaces: UserNamespaces,
}

impl SealTokenAuthenticator {
    /// `audience`: this cluster's credential audience (`credential::audience(cluster_id)`); a
    /// credential for any other (or no) audience is refused.
    pub fn new(
        ledger: Arc<dyn Ledger>,
        audience: String,
        cache_ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        SealTokenAuthenticator {
            ledger,
            audience,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            metrics,
            namespaces: UserNamespaces::new(),
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

    /// Forget cached validations (after the master itself revoked something, e.g. a slash).
    pub fn invalidate_all(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    fn count(&self, result: &str) {
        self.metrics.inc(
            "daas_token_validations_total",
            "Seal-token credential validations by result (cache_hit, valid, invalid).",
            &[("result", result)],
            1.0,
        );
    }

    /// Full validation of a credential string. No side effects on the cluster (the validation
    /// cache and metrics aside): it only answers whether the credential is valid and as whom.
    pub async fn validate(&self, cred: &str) -> Result<Validated, AuthError> {
        self.validate_fresh(cred).await.map(|(v, _)| v)
    }

    /// Like [`validate`](Self::validate); the flag says whether the ledger was asked (not a cache hit).
    async fn validate_fresh(&self, cred: &str) -> Result<(Validated, bool), AuthError> {
        let now = crate::now_ms();
        if let Ok(mut c) = self.cache.lock() {
            if let Some((v, at)) = c.get(cred) {
                if at.elapsed() < self.cache_ttl && now < v.expires_ms {
                    self.count("cache_hit");
                    return Ok((v.clone(), false));
                }
                c.remove(cred);
            }
        }
        let res = self.validate_uncached(cred, now).await;
        match &res {
            Ok(v) => {
                self.count("valid");
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() > 10_000 {
                        c.clear();
                    }
                    c.insert(cred.to_string(), (v.clone(), Instant::now()));
                }
            }
            Err(e) => {
                self.count("invalid");
                tracing::info!(error = %e, "seal-token credential refused");
            }
        }
        res.map(|v| (v, true))
    }

    async fn validate_uncached(&self, cred: &str, now: u64) -> Result<Validated, AuthError> {
        let claims = credential::verify(cred, now, &self.audience)?;
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
        let (v, fresh) = self.validate_fresh(bearer).await.ok()?;
        if fresh && v.token.role == 0 {
            self.ensure_namespace(&user_namespace(&v.token.owner)).await;
        }
        Some(v.user)
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
