//! Bound service-account tokens (pkg/serviceaccount, pkg/registry/core/serviceaccount/storage/token.go,
//! pkg/registry/authentication/tokenreview):
//! - [`ServiceAccountTokens`]: the issuer — an ES256 (P-256) key held by the master, the issuer URL
//!   and the API server's audiences. It signs JWTs with upstream's claims and verifies them.
//! - `POST .../serviceaccounts/{name}/token` ([`token_request`]): authentication.k8s.io/v1 TokenRequest.
//! - [`ServiceAccountAuthenticator`]: accepts such JWTs while the ServiceAccount (and the bound Pod
//!   or Secret) still exist with the uid the token names.
//! - `POST /apis/authentication.k8s.io/v1/tokenreviews` ([`token_review`]): nothing is stored.
//! - `/.well-known/openid-configuration` and `/openid/v1/jwks` ([`openid_configuration`], [`jwks`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;
use crate::resources::{self, ResourceDef};
use crate::server::{Authenticator, User};

/// The issuer URL when none is configured (upstream's kubeadm/k3s default).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Path of the JWKS document the discovery document points to.
pub const JWKS_PATH: &str = "/openid/v1/jwks";
pub const OIDC_PATH: &str = "/.well-known/openid-configuration";
/// The signing algorithm of every token this issuer signs.
pub const ALG: &str = "ES256";
/// `spec.expirationSeconds` when the request gives none.
pub const DEFAULT_EXPIRATION: i64 = 3600;
/// Shortest lifetime a TokenRequest may ask for (ten minutes).
pub const MIN_EXPIRATION: i64 = 600;
/// Longest lifetime a TokenRequest may ask for (2^32 seconds).
pub const MAX_EXPIRATION: i64 = 1 << 32;
/// A bound object deleted less than this long ago still validates (upstream's grace).
const DELETION_GRACE_SECS: i64 = 60;
/// Clock skew tolerated on `nbf`/`iat`.
const NBF_LEEWAY_SECS: i64 = 60;

pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
pub const SA_USER_PREFIX: &str = "system:serviceaccount:";
pub const SA_GROUP: &str = "system:serviceaccounts";

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Never stored; the shape (and its strategy) names TokenReviews in authorization answers.
#[derive(Debug)]
pub struct TokenReviewStrategy;

impl crate::registry::Strategy for TokenReviewStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        crate::registry::decode_as::<k8s_openapi::api::authentication::v1::TokenReview>(obj)
    }

    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }
}

/// `tokenreviews.authentication.k8s.io`: create-only, served by [`token_review`].
pub const TOKEN_REVIEWS: ResourceDef = ResourceDef {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenReview",
    list_kind: "TokenReviewList",
    plural: "tokenreviews",
    singular: "tokenreview",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: true,
    strategy: &TokenReviewStrategy,
};

/// Why a service-account token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("invalid signing key: {0}")]
    Key(String),
    #[error("could not sign the token")]
    Sign,
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token uses algorithm {0}, expected ES256")]
    Algorithm(String),
    #[error("token signature is invalid")]
    Signature,
    #[error("token issuer {0:?} is not this cluster's issuer")]
    Issuer(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token audiences {token:?} is invalid for the target audiences {target:?}")]
    Audience {
        token: Vec<String>,
        target: Vec<String>,
    },
    #[error("token subject {0:?} is not a service account")]
    Subject(String),
    #[error("{kind} {namespace}/{name} has been deleted")]
    Deleted {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("{kind} UID ({actual}) does not match claim ({claimed})")]
    UidMismatch {
        kind: &'static str,
        actual: String,
        claimed: String,
    },
    #[error("looking up the token's objects: {0}")]
    Lookup(String),
}

/// `kubernetes.io.{serviceaccount,pod,secret}`: a name and a uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaim {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
}

/// The claims of a bound service-account token, as upstream's `privateClaims` + registered claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
    pub nbf: i64,
    pub sub: String,
}

impl Claims {
    /// Claims for a token issued at `now` for `expiration` seconds.
    pub fn new(
        issuer: &str,
        audiences: Vec<String>,
        now: i64,
        expiration: i64,
        kubernetes: KubernetesClaim,
    ) -> Self {
        Claims {
            sub: format!(
                "{SA_USER_PREFIX}{}:{}",
                kubernetes.namespace, kubernetes.serviceaccount.name
            ),
            aud: audiences,
            exp: now + expiration,
            iat: now,
            nbf: now,
            iss: issuer.to_string(),
            kubernetes,
        }
    }

    /// The Kubernetes identity the token stands for.
    pub fn user(&self) -> User {
        let ns = &self.kubernetes.namespace;
        User {
            name: format!(
                "{SA_USER_PREFIX}{ns}:{}",
                self.kubernetes.serviceaccount.name
            ),
            groups: vec![
                SA_GROUP.to_string(),
                format!("{SA_GROUP}:{ns}"),
                "system:authenticated".to_string(),
            ],
            uid: self.kubernetes.serviceaccount.uid.clone(),
            extra: self.extra(),
        }
    }

    /// `user.extra` of the identity (the bound pod).
    pub fn extra(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(p) = &self.kubernetes.pod {
            out.insert(EXTRA_POD_NAME.to_string(), vec![p.name.clone()]);
            out.insert(EXTRA_POD_UID.to_string(), vec![p.uid.clone()]);
        }
        out
    }
}

/// The service-account token issuer of this API server.
pub struct ServiceAccountTokens {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    issuer: String,
    jwks_uri: String,
    audiences: Vec<String>,
}

impl std::fmt::Debug for ServiceAccountTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountTokens")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

/// A new P-256 private key (PKCS#8 DER), for the master to seal and keep.
pub fn generate_key() -> Result<Vec<u8>, TokenError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| TokenError::Key("key generation failed".into()))
}

fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

impl ServiceAccountTokens {
    /// `pkcs8`: the P-256 signing key; `issuer`: the `iss` of issued tokens (also the discovery
    /// issuer); `audiences`: the API server's audiences (empty means `[issuer]`, as upstream).
    pub fn new(pkcs8: &[u8], issuer: &str, audiences: Vec<String>) -> Result<Self, TokenError> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let mut spki = P256_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        let kid = b64(ring::digest::digest(&ring::digest::SHA256, &spki).as_ref());
        let issuer = issuer.trim_end_matches('/').to_string();
        let audiences = if audiences.is_empty() {
            vec![issuer.clone()]
        } else {
            audiences
        };
        Ok(ServiceAccountTokens {
            key,
            rng,
            kid,
            jwks_uri: format!("{issuer}{JWKS_PATH}"),
            issuer,
            audiences,
        })
    }

    /// Where the discovery document says the JWKS is (default `<issuer>/openid/v1/jwks`).
    pub fn with_jwks_uri(mut self, uri: &str) -> Self {
        self.jwks_uri = uri.to_string();
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Sign `claims` into a compact JWS.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let header = json!({"alg": ALG, "kid": self.kid});
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Sign)?;
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(&payload));
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| TokenError::Sign)?;
        Ok(format!("{signing_input}.{}", b64(sig.as_ref())))
    }

    /// Check signature, issuer, validity window (at `now`, seconds) and that the token names one
    /// of `audiences`; the claims and the audiences both sides share.
    pub fn verify(
        &self,
        token: &str,
        now: i64,
        audiences: &[String],
    ) -> Result<(Claims, Vec<String>), TokenError> {
        let claims = self.verify_signature(token)?;
        if claims.iss != self.issuer {
            return Err(TokenError::Issuer(claims.iss));
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now + NBF_LEEWAY_SECS || claims.iat > now + NBF_LEEWAY_SECS {
            return Err(TokenError::NotYetValid);
        }
        let shared: Vec<String> = audiences
            .iter()
            .filter(|a| claims.aud.contains(a))
            .cloned()
            .collect();
        if shared.is_empty() {
            return Err(TokenError::Audience {
                token: claims.aud,
                target: audiences.to_vec(),
            });
        }
        if !claims.sub.starts_with(SA_USER_PREFIX)
            || claims.sub
                != format!(
                    "{SA_USER_PREFIX}{}:{}",
                    claims.kubernetes.namespace, claims.kubernetes.serviceaccount.name
                )
        {
            return Err(TokenError::Subject(claims.sub));
        }
        Ok((claims, shared))
    }

    /// Is this a token of ours at all (a JWS whose header names our key)? Cheap, no crypto.
    pub fn is_ours(&self, token: &str) -> bool {
        token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .is_some_and(|h| h["kid"].as_str() == Some(&self.kid))
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not a compact JWS"));
        };
        let header: Value = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed("bad header"))?;
        let alg = header["alg"].as_str().unwrap_or_default();
        if alg != ALG {
            return Err(TokenError::Algorithm(alg.to_string()));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenError::Malformed("bad signature encoding"))?;
        let signing_input = &token[..h.len() + 1 + p.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| TokenError::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| TokenError::Malformed("bad payload encoding"))?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed("bad claims"))
    }

    /// The JWK Set with this issuer's public key.
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": ALG,
            "x": b64(&point[1..33]),
            "y": b64(&point[33..65]),
        }]})
    }

    /// The OpenID Provider configuration document.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALG],
        })
    }
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An object's uid and whether it is gone (absent, or deleted longer than the grace ago).
async fn lookup(
    ctx: &Ctx,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    now: i64,
) -> Result<Option<String>, TokenError> {
    let kv = ctx
        .store
        .get(&def.key(Some(ns), name))
        .await
        .map_err(|e| TokenError::Lookup(e.to_string()))?;
    let Some(kv) = kv else { return Ok(None) };
    let obj: Value =
        serde_json::from_slice(&kv.value).map_err(|e| TokenError::Lookup(e.to_string()))?;
    if let Some(ts) = obj["metadata"]["deletionTimestamp"].as_str() {
        let deleted = DateTime::parse_from_rfc3339(ts)
            .map(|t| t.timestamp())
            .unwrap_or(now);
        if deleted < now - DELETION_GRACE_SECS {
            return Ok(None);
        }
    }
    Ok(Some(
        obj["metadata"]["uid"].as_str().unwrap_or_default().into(),
    ))
}

async fn check_bound(
    ctx: &Ctx,
    def: &ResourceDef,
    kind: &'static str,
    ns: &str,
    r: &Ref,
    now: i64,
) -> Result<(), TokenError> {
    match lookup(ctx, def, ns, &r.name, now).await? {
        None => Err(TokenError::Deleted {
            kind,
            namespace: ns.to_string(),
            name: r.name.clone(),
        }),
        Some(uid) if uid != r.uid => Err(TokenError::UidMismatch {
            kind,
            actual: uid,
            claimed: r.uid.clone(),
        }),
        Some(_) => Ok(()),
    }
}

/// Accepts this API server's service-account tokens for its own audiences.
pub struct ServiceAccountAuthenticator {
    ctx: Ctx,
    tokens: Arc<ServiceAccountTokens>,
}

impl ServiceAccountAuthenticator {
    pub fn new(store: Arc<dyn daas_store::Store>, tokens: Arc<ServiceAccountTokens>) -> Self {
        ServiceAccountAuthenticator {
            ctx: Ctx {
                store,
                bookmark_interval: std::time::Duration::from_secs(30),
                admission: Default::default(),
                service_ranges: Default::default(),
                node_proxy: None,
                objects: None,
                default_tolerations: Default::default(),
            },
            tokens,
        }
    }

    /// Full validation for `audiences`: the claims and the audiences the token is good for.
    pub async fn review(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<(Claims, Vec<String>), TokenError> {
        review(&self.ctx, &self.tokens, token, audiences).await
    }
}

/// Validate a token for `audiences` against the issuer and the objects it is bound to.
pub async fn review(
    ctx: &Ctx,
    tokens: &ServiceAccountTokens,
    token: &str,
    audiences: &[String],
) -> Result<(Claims, Vec<String>), TokenError> {
    let now = now_secs();
    let (claims, shared) = tokens.verify(token, now, audiences)?;
    let k = &claims.kubernetes;
    check_bound(
        ctx,
        &resources::SERVICE_ACCOUNTS,
        "service account",
        &k.namespace,
        &k.serviceaccount,
        now,
    )
    .await?;
    if let Some(p) = &k.pod {
        check_bound(ctx, &resources::PODS, "pod", &k.namespace, p, now).await?;
    }
    if let Some(s) = &k.secret {
        check_bound(ctx, &resources::SECRETS, "secret", &k.namespace, s, now).await?;
    }
    Ok((claims, shared))
}

#[async_trait]
impl Authenticator for ServiceAccountAuthenticator {
    async fn authenticate(&self, bearer: &str) -> Option<User> {
        if !self.tokens.is_ours(bearer) {
            return None;
        }
        match self.review(bearer, self.tokens.audiences()).await {
            Ok((claims, _)) => Some(claims.user()),
            Err(e) => {
                tracing::info!(error = %e, "service-account token refused");
                None
            }
        }
    }
}

fn token_request_invalid(field: &str, value: Value, msg: &str) -> ApiError {
    let shown = match &value {
        Value::String(s) => format!("\"{s}\""),
        v => v.to_string(),
    };
    let m = format!("Invalid value: {shown}: {msg}");
    ApiError::new(
        422,
        "Invalid",
        format!("TokenRequest.authentication.k8s.io \"\" is invalid: {field}: {m}"),
    )
    .with_details(
        json!({"group": "authentication.k8s.io", "kind": "TokenRequest",
        "causes": [{"reason": "FieldValueInvalid", "message": m, "field": field}]}),
    )
}

/// The request's `dryRun` query value: absent or empty is a real request, `All` a dry run;
/// anything else is upstream's CreateOptions validation error (422).
pub fn dry_run(q: &HashMap<String, String>) -> ApiResult<bool> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => {
            let m = format!("Unsupported value: []string{{{other:?}}}: supported values: \"All\"");
            Err(ApiError::new(
                422,
                "Invalid",
                format!("CreateOptions.meta.k8s.io \"\" is invalid: dryRun: {m}"),
            )
            .with_details(json!({"group": "meta.k8s.io", "kind": "CreateOptions",
                "causes": [{"reason": "FieldValueNotSupported", "message": m, "field": "dryRun"}]})))
        }
    }
}

/// `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: a TokenRequest (decoded body)
/// answered with a signed token (201), nothing stored.
pub async fn token_request(
    ctx: &Ctx,
    tokens: &ServiceAccountTokens,
    ns: &str,
    name: &str,
    req: &Value,
) -> ApiResult<Value> {
    token_request_with(ctx, tokens, ns, name, req, false).await
}

/// [`token_request`], or its dry run (`dry_run`): every check of a real request runs (validation,
/// the service account and bound object lookups, UID preconditions) and the answer has the same
/// shape and expiration, but no token is signed: `status.token` is empty. (Upstream signs one
/// even on a dry run; a dry run here never hands out a usable credential.)
pub async fn token_request_with(
    ctx: &Ctx,
    tokens: &ServiceAccountTokens,
    ns: &str,
    name: &str,
    req: &Value,
    dry_run: bool,
) -> ApiResult<Value> {
    if !req.is_object() {
        return Err(ApiError::bad_request(
            "a TokenRequest must be a JSON object",
        ));
    }
    if let Some(k) = req["kind"].as_str().filter(|k| *k != "TokenRequest") {
        return Err(ApiError::bad_request(format!(
            "expected a TokenRequest, got kind {k}"
        )));
    }
    if let Some(n) = req["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
        if n != name {
            return Err(ApiError::bad_request(format!(
                "setting name in the TokenRequest ({n}) does not match the service account name ({name})"
            )));
        }
    }
    if let Some(n) = req["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
    {
        if n != ns {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({n}) does not match the namespace sent on the request ({ns})"
            )));
        }
    }
    let spec = &req["spec"];
    let expiration = match &spec["expirationSeconds"] {
        Value::Null => DEFAULT_EXPIRATION,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request("spec.expirationSeconds must be an integer".to_string())
        })?,
    };
    if expiration < MIN_EXPIRATION {
        return Err(token_request_invalid(
            "spec.expirationSeconds",
            json!(expiration),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION {
        // Upstream's field.TooLong (v1.28): the value is not shown.
        let m = format!("Too long: may not be longer than {MAX_EXPIRATION}");
        return Err(ApiError::new(
            422,
            "Invalid",
            format!("TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: {m}"),
        )
        .with_details(json!({"group": "authentication.k8s.io", "kind": "TokenRequest",
            "causes": [{"reason": "FieldValueTooLong", "message": m, "field": "spec.expirationSeconds"}]})));
    }
    let audiences: Vec<String> = match &spec["audiences"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| ApiError::bad_request("spec.audiences must be strings"))
            })
            .collect::<ApiResult<_>>()?,
        _ => return Err(ApiError::bad_request("spec.audiences must be a list")),
    };
    let audiences = if audiences.is_empty() {
        tokens.audiences().to_vec()
    } else {
        audiences
    };

    let (sa, _) =
        crate::handlers::get_object(ctx, &resources::SERVICE_ACCOUNTS, Some(ns), name).await?;
    let sa_uid = sa["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut claim = KubernetesClaim {
        namespace: ns.to_string(),
        serviceaccount: Ref {
            name: name.to_string(),
            uid: sa_uid,
        },
        pod: None,
        secret: None,
    };
    let bound = &spec["boundObjectRef"];
    if !bound.is_null() {
        let kind = bound["kind"].as_str().unwrap_or_default();
        let api_version = bound["apiVersion"].as_str().unwrap_or("v1");
        let group = api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default();
        let bname = bound["name"].as_str().unwrap_or_default();
        let (def, gr) = match (group, kind) {
            ("", "Pod") => (&resources::PODS, "Pod"),
            ("", "Secret") => (&resources::SECRETS, "Secret"),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token against a resource of kind {kind} in group {group}"
                )))
            }
        };
        if bname.is_empty() {
            return Err(token_request_invalid(
                "spec.boundObjectRef.name",
                json!(""),
                "name is required",
            ));
        }
        let (obj, _) = crate::handlers::get_object(ctx, def, Some(ns), bname).await?;
        if kind == "Pod" {
            let sa_name = obj["spec"]["serviceAccountName"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            if sa_name != name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount \"{name}\" to pod running with different serviceaccount name."
                )));
            }
        }
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(want) = bound["uid"].as_str().filter(|u| !u.is_empty()) {
            if want != uid {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {gr} \"{bname}\": the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                )
                .with_details(json!({"name": bname, "kind": gr})));
            }
        }
        let r = Ref {
            name: bname.to_string(),
            uid,
        };
        if kind == "Pod" {
            claim.pod = Some(r);
        } else {
            claim.secret = Some(r);
        }
    }
    let now = now_secs();
    let claims = Claims::new(tokens.issuer(), audiences, now, expiration, claim);
    let token = if dry_run {
        String::new()
    } else {
        tokens
            .sign(&claims)
            .map_err(|e| ApiError::internal(e.to_string()))?
    };
    let mut spec_out = json!({"audiences": claims.aud, "expirationSeconds": expiration});
    if !bound.is_null() {
        spec_out["boundObjectRef"] = bound.clone();
    }
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": spec_out,
        "status": {"token": token, "expirationTimestamp": rfc3339(claims.exp)},
    }))
}

/// `POST tokenreviews` (decoded body): service-account tokens are reviewed for the requested
/// audiences; other credentials through the API server's whole authenticator `auth`.
pub async fn token_review(
    ctx: &Ctx,
    tokens: Option<&ServiceAccountTokens>,
    auth: &dyn Authenticator,
    req: Value,
) -> ApiResult<Value> {
    if let Some(k) = req["kind"].as_str().filter(|k| *k != "TokenReview") {
        return Err(ApiError::bad_request(format!(
            "expected a TokenReview, got kind {k}"
        )));
    }
    let token = req["spec"]["token"].as_str().unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let requested: Vec<String> = req["spec"]["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let api_audiences: Vec<String> = tokens.map(|t| t.audiences().to_vec()).unwrap_or_default();
    let target = if requested.is_empty() {
        api_audiences.clone()
    } else {
        requested.clone()
    };
    let mut status = json!({"authenticated": false, "user": {}});
    match tokens.filter(|t| t.is_ours(token)) {
        Some(t) => match review(ctx, t, token, &target).await {
            Ok((claims, shared)) => {
                let u = claims.user();
                status = json!({
                    "authenticated": true,
                    "user": u.user_info(),
                    "audiences": shared,
                });
            }
            Err(e) => status["error"] = json!(e.to_string()),
        },
        None => {
            // Other credentials (seal tokens, static tokens) are for this API server only.
            let shared: Vec<String> = if requested.is_empty() {
                api_audiences.clone()
            } else {
                requested
                    .iter()
                    .filter(|a| api_audiences.contains(a))
                    .cloned()
                    .collect()
            };
            if !requested.is_empty() && shared.is_empty() {
                status["error"] = json!(TokenError::Audience {
                    token: api_audiences,
                    target: requested,
                }
                .to_string());
            } else if let Some(u) = auth.authenticate(token).await {
                status = json!({
                    "authenticated": true,
                    "user": u.user_info(),
                    "audiences": shared,
                });
            }
        }
    }
    let mut out = req.clone();
    out["apiVersion"] = json!("authentication.k8s.io/v1");
    out["kind"] = json!("TokenReview");
    if !out["metadata"].is_object() {
        out["metadata"] = json!({});
    }
    out["metadata"]["creationTimestamp"] = Value::Null;
    out["status"] = status;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> ServiceAccountTokens {
        ServiceAccountTokens::new(&generate_key().unwrap(), DEFAULT_ISSUER, vec![]).unwrap()
    }

    fn claim() -> KubernetesClaim {
        KubernetesClaim {
            namespace: "ns1".into(),
            serviceaccount: Ref {
                name: "sa1".into(),
                uid: "u-sa".into(),
            },
            pod: Some(Ref {
                name: "p1".into(),
                uid: "u-pod".into(),
            }),
            secret: None,
        }
    }

    fn decode_part(token: &str, i: usize) -> Value {
        let p = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    #[test]
    fn claims_follow_upstream() {
        let t = issuer();
        let c = Claims::new(t.issuer(), t.audiences().to_vec(), 1000, 3600, claim());
        let tok = t.sign(&c).unwrap();
        let header = decode_part(&tok, 0);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], t.kid());
        let body = decode_part(&tok, 1);
        assert_eq!(body["iss"], DEFAULT_ISSUER);
        assert_eq!(body["sub"], "system:serviceaccount:ns1:sa1");
        assert_eq!(body["aud"], json!([DEFAULT_ISSUER]));
        assert_eq!(body["exp"], 4600);
        assert_eq!(body["iat"], 1000);
        assert_eq!(body["nbf"], 1000);
        assert_eq!(body["kubernetes.io"]["namespace"], "ns1");
        assert_eq!(body["kubernetes.io"]["serviceaccount"]["uid"], "u-sa");
        assert_eq!(body["kubernetes.io"]["pod"]["name"], "p1");
        assert!(body["kubernetes.io"].get("secret").is_none());
        let (back, shared) = t.verify(&tok, 1001, t.audiences()).unwrap();
        assert_eq!(back, c);
        assert_eq!(shared, vec![DEFAULT_ISSUER.to_string()]);
        let u = back.user();
        assert_eq!(u.name, "system:serviceaccount:ns1:sa1");
        assert_eq!(
            u.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:ns1",
                "system:authenticated"
            ]
        );
        assert_eq!(back.extra()[EXTRA_POD_UID], vec!["u-pod".to_string()]);
    }

    #[test]
    fn expiry_and_not_before() {
        let t = issuer();
        let c = Claims::new(t.issuer(), t.audiences().to_vec(), 1000, 600, claim());
        let tok = t.sign(&c).unwrap();
        assert!(t.verify(&tok, 1599, t.audiences()).is_ok());
        assert_eq!(
            t.verify(&tok, 1600, t.audiences()).unwrap_err(),
            TokenError::Expired
        );
        assert_eq!(
            t.verify(&tok, 1000 - NBF_LEEWAY_SECS - 1, t.audiences())
                .unwrap_err(),
            TokenError::NotYetValid
        );
    }

    #[test]
    fn audience_must_match() {
        let t = issuer();
        let c = Claims::new(t.issuer(), vec!["vault".into()], 1000, 600, claim());
        let tok = t.sign(&c).unwrap();
        assert!(matches!(
            t.verify(&tok, 1001, t.audiences()),
            Err(TokenError::Audience { .. })
        ));
        let (_, shared) = t.verify(&tok, 1001, &["x".into(), "vault".into()]).unwrap();
        assert_eq!(shared, vec!["vault".to_string()]);
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let t = issuer();
        let c = Claims::new(t.issuer(), t.audiences().to_vec(), 1000, 600, claim());
        let tok = t.sign(&c).unwrap();
        let parts: Vec<&str> = tok.split('.').collect();
        // Swap in a payload naming another service account, keep the signature.
        let mut forged = c.clone();
        forged.kubernetes.serviceaccount.name = "admin".into();
        forged.sub = "system:serviceaccount:ns1:admin".into();
        let p = b64(&serde_json::to_vec(&forged).unwrap());
        let bad = format!("{}.{}.{}", parts[0], p, parts[2]);
        assert_eq!(
            t.verify(&bad, 1001, t.audiences()).unwrap_err(),
            TokenError::Signature
        );
        // alg none.
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(
            t.verify(&none, 1001, t.audiences()).unwrap_err(),
            TokenError::Algorithm("none".into())
        );
        // Another issuer's key (same issuer URL) does not verify here.
        let other = issuer();
        let tok2 = other.sign(&c).unwrap();
        assert_eq!(
            t.verify(&tok2, 1001, t.audiences()).unwrap_err(),
            TokenError::Signature
        );
        assert!(!t.is_ours(&tok2));
        assert!(t.is_ours(&tok));
        assert!(!t.is_ours("daas1.whatever"));
        assert!(matches!(
            t.verify("a.b", 1001, t.audiences()),
            Err(TokenError::Malformed(_))
        ));
        // A different issuer URL with the same key.
        let key = generate_key().unwrap();
        let a = ServiceAccountTokens::new(&key, "https://a", vec!["x".into()]).unwrap();
        let b = ServiceAccountTokens::new(&key, "https://b", vec!["x".into()]).unwrap();
        let c2 = Claims::new(a.issuer(), vec!["x".into()], 1000, 600, claim());
        assert_eq!(
            b.verify(&a.sign(&c2).unwrap(), 1001, b.audiences())
                .unwrap_err(),
            TokenError::Issuer("https://a".into())
        );
    }

    #[test]
    fn discovery_documents() {
        let t = issuer();
        let d = t.openid_configuration();
        assert_eq!(d["issuer"], DEFAULT_ISSUER);
        assert_eq!(d["jwks_uri"], format!("{DEFAULT_ISSUER}{JWKS_PATH}"));
        assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
        let k = &t.jwks()["keys"][0];
        assert_eq!(k["kid"], t.kid());
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(k["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(k["y"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(ServiceAccountTokens::new(b"junk", DEFAULT_ISSUER, vec![]).is_err());
    }
}
