//! Cluster-key handoff: a new master gets the cluster key (see [`crate::clusterkey`]) only from a
//! running master that has verified its attestation, and the key is never in the clear on disk or
//! on the network.
//!
//! 1. The joiner verifies the running master over attested TLS
//!    ([`daas_protocol::attested::attest`]) with a policy pinning the joiner's OWN PCR0..2 and its
//!    own trusted roots: it talks only to a genuine enclave running its own code. Every later
//!    request goes over TLS pinned to the serving certificate that attestation bound.
//! 2. `POST /api/v1/tee/keyshare/nonce`: the running master issues a nonce (32 random bytes, single
//!    use, expires after [`NONCE_TTL`], kept in memory only).
//! 3. The joiner makes an attestation document with that nonce and
//!    `user_data = "daas/keyshare/v1/x25519:" || X25519 public key` (a fresh ephemeral key).
//! 4. `POST /api/v1/tee/keyshare` `{"document", "x25519_public_key"}`: the running master verifies
//!    the document against its trusted roots at the current time, requires PCR0..2 equal to its OWN
//!    measurement, consumes the nonce (issued by it, unused, unexpired) and checks that user_data
//!    binds the offered key. It answers `{"key_id", "server_public_key", "ciphertext"}`: the cluster
//!    key encrypted to the joiner's key (ephemeral-static X25519, HKDF-SHA256 over the transcript
//!    `label || joiner key || server key || nonce`, AES-256-GCM with the transcript and key id as
//!    additional data).
//! 5. The joiner decrypts, checks the key id and keeps the key sealed under its own enclave's key
//!    ([`crate::clusterkey::save`]).
//!
//! Refusals are Kubernetes `Status` objects: 400 for malformed requests, 403 when the attestation,
//! the measurement, the nonce or the key binding is refused, 429 when too many nonces are
//! outstanding. Logs name the refusal and the key id, never key material.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use daas_protocol::attested::{attest, AttestError, AttestationPolicy};
use daas_tee::{verify_attestation, AttestationError, Enclave, ExpectedPcrs, RootCert};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clusterkey::{self, ClusterKey, ClusterKeyError};
use crate::enclave::EnclaveHandle;

pub const NONCE_PATH: &str = "/api/v1/tee/keyshare/nonce";
pub const SHARE_PATH: &str = "/api/v1/tee/keyshare";
/// Prefix of the attestation user_data: the document was made for a key share (domain separation).
pub const USER_DATA_LABEL: &[u8] = b"daas/keyshare/v1/x25519:";
/// HKDF salt and transcript label.
const KDF_LABEL: &[u8] = b"daas/keyshare/v1/kdf";
pub const NONCE_LEN: usize = 32;
/// How long an issued nonce may be used.
pub const NONCE_TTL: Duration = Duration::from_secs(60);
/// Outstanding nonces kept at most (the endpoint is unauthenticated).
const MAX_NONCES: usize = 1024;
/// PCRs a joiner must share with the running master (image, kernel, application).
const PINNED_PCRS: [u16; 3] = [0, 1, 2];

#[derive(Debug, thiserror::Error)]
pub enum KeyShareError {
    // Refusals by the running master.
    #[error("malformed key-share request: {0}")]
    Malformed(String),
    #[error("attestation document refused: {0}")]
    Attestation(#[source] AttestationError),
    #[error("PCR{index} of the joining enclave differs from this master's measurement")]
    Measurement { index: u16 },
    #[error("the attestation document carries no nonce")]
    NonceMissing,
    #[error("the nonce was not issued by this master")]
    NonceUnknown,
    #[error("the nonce was already used")]
    NonceReplayed,
    #[error("the nonce expired")]
    NonceExpired,
    #[error("the attestation user_data does not bind the offered X25519 key")]
    Binding,
    #[error("too many outstanding key-share nonces, retry later")]
    TooManyNonces,
    #[error("key-share encryption failed: {0}")]
    Crypto(&'static str),
    // Failures on the joiner's side.
    #[error("the running master {url} failed attestation: {source}")]
    Attest {
        url: String,
        #[source]
        source: AttestError,
    },
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url} refused the key share ({code} {reason}): {message}")]
    Refused {
        url: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("malformed key-share response: {0}")]
    Response(String),
    #[error("the shared cluster key does not decrypt (tampered with, or not meant for this key)")]
    Decrypt,
    #[error("the shared key has id {got}, but {expected} was announced")]
    KeyId { expected: String, got: String },
    #[error("enclave: {0}")]
    Tee(#[source] daas_tee::TeeError),
    #[error("keeping the cluster key: {0}")]
    Save(#[source] ClusterKeyError),
}

impl KeyShareError {
    /// HTTP status code and Kubernetes `Status` reason of a refusal by the running master.
    pub fn status(&self) -> (u16, &'static str) {
        use KeyShareError::*;
        match self {
            Malformed(_) => (400, "BadRequest"),
            Attestation(_)
            | Measurement { .. }
            | NonceMissing
            | NonceUnknown
            | NonceReplayed
            | NonceExpired
            | Binding => (403, "Forbidden"),
            TooManyNonces => (429, "TooManyRequests"),
            _ => (500, "InternalError"),
        }
    }
}

impl IntoResponse for KeyShareError {
    fn into_response(self) -> Response {
        let (code, reason) = self.status();
        let mut resp =
            daas_apiserver::ApiError::new(code, reason, self.to_string()).into_response();
        if code == 429 {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

/// `POST` [`NONCE_PATH`] answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NonceResponse {
    /// Hex.
    pub nonce: String,
    pub expires_in_seconds: u64,
}

/// `POST` [`SHARE_PATH`] body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareRequest {
    /// The joiner's attestation document (base64).
    pub document: String,
    /// The joiner's ephemeral X25519 public key (base64, 32 bytes).
    pub x25519_public_key: String,
}

/// `POST` [`SHARE_PATH`] answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareResponse {
    /// Key id of the cluster key (as the store names it).
    pub key_id: String,
    /// The running master's ephemeral X25519 public key (base64).
    pub server_public_key: String,
    /// AES-256-GCM of the 32-byte cluster key (base64).
    pub ciphertext: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The user_data a joiner's document must carry for `public_key`.
pub fn user_data(public_key: &[u8; 32]) -> Vec<u8> {
    [USER_DATA_LABEL, public_key.as_slice()].concat()
}

fn transcript(joiner: &[u8; 32], server: &[u8; 32], nonce: &[u8]) -> Vec<u8> {
    [KDF_LABEL, joiner, server, nonce].concat()
}

/// AES-256-GCM key and IV for one exchange (both unique to it: the server key is fresh).
fn derive(shared: &[u8; 32], transcript: &[u8]) -> ([u8; 32], [u8; 12]) {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(KDF_LABEL), shared);
    let mut okm = [0u8; 44];
    // 44 bytes is far below HKDF-SHA256's limit (255 * 32).
    let _ = hk.expand(transcript, &mut okm);
    let mut key = [0u8; 32];
    let mut iv = [0u8; 12];
    key.copy_from_slice(&okm[..32]);
    iv.copy_from_slice(&okm[32..]);
    (key, iv)
}

fn aad(transcript: &[u8], key_id: &str) -> Vec<u8> {
    [transcript, key_id.as_bytes()].concat()
}

fn decode32(what: &str, s: &str) -> Result<[u8; 32], String> {
    b64()
        .decode(s)
        .map_err(|e| format!("{what} is not base64: {e}"))?
        .try_into()
        .map_err(|_| format!("{what} must be 32 bytes"))
}

struct NonceEntry {
    expires: Instant,
    used: bool,
}

/// Issued nonces, in memory. An entry is kept one more TTL after it expires, so that a late
/// replay is told apart from a nonce never issued.
struct Nonces {
    ttl: Duration,
    entries: HashMap<[u8; NONCE_LEN], NonceEntry>,
}

impl Nonces {
    fn issue(&mut self, now: Instant) -> Result<[u8; NONCE_LEN], KeyShareError> {
        let ttl = self.ttl;
        self.entries.retain(|_, e| now < e.expires + ttl);
        if self.entries.len() >= MAX_NONCES {
            return Err(KeyShareError::TooManyNonces);
        }
        let n: [u8; NONCE_LEN] = rand::random();
        self.entries.insert(
            n,
            NonceEntry {
                expires: now + ttl,
                used: false,
            },
        );
        Ok(n)
    }

    fn consume(&mut self, nonce: &[u8], now: Instant) -> Result<(), KeyShareError> {
        let key: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyShareError::NonceUnknown)?;
        match self.entries.get_mut(&key) {
            None => Err(KeyShareError::NonceUnknown),
            Some(e) if e.used => Err(KeyShareError::NonceReplayed),
            Some(e) if now >= e.expires => Err(KeyShareError::NonceExpired),
            Some(e) => {
                e.used = true;
                Ok(())
            }
        }
    }
}

/// The running master's side: issues nonces and shares the cluster key with attested enclaves
/// of its own measurement.
pub struct KeyShareServer {
    enclave: Arc<dyn Enclave>,
    roots: Vec<RootCert>,
    key: ClusterKey,
    nonces: Mutex<Nonces>,
}

impl KeyShareServer {
    /// Shares `key`; joiners' documents must chain to this enclave's root (the dev root of a
    /// simulated enclave, the vendor root otherwise) and carry this enclave's PCR0..2.
    pub fn new(enclave: &EnclaveHandle, key: ClusterKey) -> Self {
        Self::with_roots(enclave.enclave.clone(), vec![enclave.root.clone()], key)
    }

    pub fn with_roots(enclave: Arc<dyn Enclave>, roots: Vec<RootCert>, key: ClusterKey) -> Self {
        KeyShareServer {
            enclave,
            roots,
            key,
            nonces: Mutex::new(Nonces {
                ttl: NONCE_TTL,
                entries: HashMap::new(),
            }),
        }
    }

    /// Another nonce lifetime (tests).
    pub fn with_nonce_ttl(self, ttl: Duration) -> Self {
        if let Ok(mut n) = self.nonces.lock() {
            n.ttl = ttl;
        }
        self
    }

    fn nonces(&self) -> std::sync::MutexGuard<'_, Nonces> {
        // A panic while holding the lock leaves the map consistent (single inserts/updates).
        self.nonces.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn issue_nonce(&self) -> Result<[u8; NONCE_LEN], KeyShareError> {
        self.nonces().issue(Instant::now())
    }

    fn nonce_ttl(&self) -> Duration {
        self.nonces().ttl
    }

    /// Verify the joiner (see the module docs) at `now_ms` and encrypt the cluster key to it.
    pub fn share(&self, req: &ShareRequest, now_ms: u64) -> Result<ShareResponse, KeyShareError> {
        let document = b64()
            .decode(&req.document)
            .map_err(|e| KeyShareError::Malformed(format!("document is not base64: {e}")))?;
        let joiner_pk = decode32("x25519_public_key", &req.x25519_public_key)
            .map_err(KeyShareError::Malformed)?;
        let verified = verify_attestation(&document, &self.roots, now_ms, &ExpectedPcrs::none())
            .map_err(KeyShareError::Attestation)?;
        let own = self.enclave.measurement();
        for index in PINNED_PCRS {
            match (own.get(index), verified.pcrs.get(index)) {
                (Some(a), Some(b)) if a == b => {}
                _ => return Err(KeyShareError::Measurement { index }),
            }
        }
        let nonce = verified
            .nonce
            .as_deref()
            .ok_or(KeyShareError::NonceMissing)?;
        self.nonces().consume(nonce, Instant::now())?;
        if verified.user_data.as_deref() != Some(user_data(&joiner_pk).as_slice()) {
            return Err(KeyShareError::Binding);
        }
        let joiner = x25519_dalek::PublicKey::from(joiner_pk);
        let secret = x25519_dalek::EphemeralSecret::random_from_rng(rand::rngs::OsRng);
        let server_pk = x25519_dalek::PublicKey::from(&secret);
        let shared = secret.diffie_hellman(&joiner);
        if !shared.was_contributory() {
            return Err(KeyShareError::Malformed(
                "x25519_public_key is a low-order point".into(),
            ));
        }
        let t = transcript(&joiner_pk, server_pk.as_bytes(), nonce);
        let (k, iv) = derive(shared.as_bytes(), &t);
        let key_id = self.key.sealing_key().key_id_hex();
        let ciphertext = Aes256Gcm::new_from_slice(&k)
            .map_err(|_| KeyShareError::Crypto("AES-256-GCM key"))?
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: self.key.bytes(),
                    aad: &aad(&t, &key_id),
                },
            )
            .map_err(|_| KeyShareError::Crypto("AES-256-GCM"))?;
        tracing::info!(%key_id, module_id = %verified.module_id, "cluster key shared with an attested enclave of this measurement");
        Ok(ShareResponse {
            key_id,
            server_public_key: b64().encode(server_pk.as_bytes()),
            ciphertext: b64().encode(ciphertext),
        })
    }
}

/// The joiner's side of one exchange: its ephemeral X25519 key and the nonce it used.
pub struct Joiner {
    secret: x25519_dalek::EphemeralSecret,
    public: [u8; 32],
    nonce: Vec<u8>,
}

impl Joiner {
    /// A fresh X25519 key and a document of `enclave` binding it, with `nonce`.
    pub fn new(
        enclave: &dyn Enclave,
        nonce: &[u8],
    ) -> Result<(Joiner, ShareRequest), KeyShareError> {
        let secret = x25519_dalek::EphemeralSecret::random_from_rng(rand::rngs::OsRng);
        let public = *x25519_dalek::PublicKey::from(&secret).as_bytes();
        let document = enclave
            .attestation(Some(&user_data(&public)), Some(nonce))
            .map_err(KeyShareError::Tee)?;
        let req = ShareRequest {
            document: b64().encode(document),
            x25519_public_key: b64().encode(public),
        };
        Ok((
            Joiner {
                secret,
                public,
                nonce: nonce.to_vec(),
            },
            req,
        ))
    }

    /// Decrypt the cluster key of `resp` and check its key id.
    pub fn finish(self, resp: &ShareResponse) -> Result<ClusterKey, KeyShareError> {
        let server_pk = decode32("server_public_key", &resp.server_public_key)
            .map_err(KeyShareError::Response)?;
        let ciphertext = b64()
            .decode(&resp.ciphertext)
            .map_err(|e| KeyShareError::Response(format!("ciphertext is not base64: {e}")))?;
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(server_pk));
        if !shared.was_contributory() {
            return Err(KeyShareError::Decrypt);
        }
        let t = transcript(&self.public, &server_pk, &self.nonce);
        let (k, iv) = derive(shared.as_bytes(), &t);
        let plain = Aes256Gcm::new_from_slice(&k)
            .map_err(|_| KeyShareError::Decrypt)?
            .decrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: &ciphertext,
                    aad: &aad(&t, &resp.key_id),
                },
            )
            .map_err(|_| KeyShareError::Decrypt)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| KeyShareError::Decrypt)?;
        let key = ClusterKey::from_bytes(bytes);
        let got = key.sealing_key().key_id_hex();
        if got != resp.key_id {
            return Err(KeyShareError::KeyId {
                expected: resp.key_id.clone(),
                got,
            });
        }
        Ok(key)
    }
}

/// Routes of the running master (merged into its seed router).
pub fn router(server: Arc<KeyShareServer>) -> Router {
    Router::new()
        .route(NONCE_PATH, post(nonce))
        .route(SHARE_PATH, post(share))
        .with_state(server)
}

#[tracing::instrument(skip_all, name = "keyshare_nonce")]
async fn nonce(State(srv): State<Arc<KeyShareServer>>) -> Response {
    match srv.issue_nonce() {
        Ok(n) => Json(NonceResponse {
            nonce: hex::encode(n),
            expires_in_seconds: srv.nonce_ttl().as_secs(),
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "key-share nonce refused");
            e.into_response()
        }
    }
}

#[tracing::instrument(skip_all, name = "keyshare")]
async fn share(State(srv): State<Arc<KeyShareServer>>, body: axum::body::Bytes) -> Response {
    let req: ShareRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let e = KeyShareError::Malformed(format!(
                "body must be JSON {{\"document\", \"x25519_public_key\"}}: {e}"
            ));
            tracing::warn!(error = %e, "key share refused");
            return e.into_response();
        }
    };
    // Certificate chain and document signature checks are CPU work.
    let res = tokio::task::spawn_blocking(move || srv.share(&req, crate::now_ms())).await;
    match res {
        Ok(Ok(resp)) => Json(resp).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "key share refused");
            e.into_response()
        }
        Err(e) => daas_apiserver::ApiError::internal(e.to_string()).into_response(),
    }
}

/// The attestation policy of a joiner: its own trusted root and its own PCR0..2.
pub fn joiner_policy(enclave: &EnclaveHandle) -> AttestationPolicy {
    let own = enclave.enclave.measurement();
    let mut expected = ExpectedPcrs::none();
    for i in PINNED_PCRS {
        if let Some(v) = own.get(i) {
            expected = expected.with(i, *v);
        }
    }
    AttestationPolicy {
        roots: vec![enclave.root.clone()],
        expected_pcrs: expected,
        ledger: None,
        platforms: Default::default(),
    }
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

/// An HTTP/1 connection to `url` whose TLS server certificate must be exactly `cert_der` (the one
/// the attestation bound).
async fn pinned_connection(
    url: &str,
    cert_der: Vec<u8>,
) -> Result<(Sender, String), KeyShareError> {
    let connect = |reason: String| KeyShareError::Connect {
        url: url.to_string(),
        reason,
    };
    let uri: hyper::Uri = url.parse().map_err(|e| connect(format!("{e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| connect("no host".into()))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let cfg = daas_protocol::tlsverify::CertCheck::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        move |leaf, _| {
            if leaf.as_ref() == cert_der.as_slice() {
                Ok(())
            } else {
                Err(rustls::Error::General(
                    "not the attested serving certificate".into(),
                ))
            }
        },
    )
    .client_config()
    .map_err(|e| connect(e.to_string()))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| connect(e.to_string()))?;
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| connect(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| connect(format!("tls: {e}")))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, format!("{host}:{port}")))
}

async fn post_json<T: serde::de::DeserializeOwned>(
    sender: &mut Sender,
    url: &str,
    authority: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<T, KeyShareError> {
    let connect = |reason: String| KeyShareError::Connect {
        url: url.to_string(),
        reason,
    };
    let req = hyper::Request::post(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| connect(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| connect(e.to_string()))?;
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| connect(e.to_string()))?
        .to_bytes();
    if code != 200 {
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        return Err(KeyShareError::Refused {
            url: url.to_string(),
            code,
            reason: status["reason"].as_str().unwrap_or_default().to_string(),
            message: status["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
        });
    }
    serde_json::from_slice(&body).map_err(|e| KeyShareError::Response(format!("{path}: {e}")))
}

/// Get the cluster key from the running master at `url` (see the module docs) and keep it
/// sealed under `enclave`'s own key in `tee_dir` ([`clusterkey::save`]).
#[tracing::instrument(skip(enclave, tee_dir))]
pub async fn obtain(
    url: &str,
    enclave: &EnclaveHandle,
    tee_dir: &Path,
) -> Result<ClusterKey, KeyShareError> {
    let attested = attest(url, &joiner_policy(enclave))
        .await
        .map_err(|source| KeyShareError::Attest {
            url: url.to_string(),
            source,
        })?;
    let (mut sender, authority) = pinned_connection(url, attested.server_cert_der.clone()).await?;
    let n: NonceResponse =
        post_json(&mut sender, url, &authority, NONCE_PATH, b"{}".to_vec()).await?;
    let nonce = hex::decode(&n.nonce)
        .map_err(|e| KeyShareError::Response(format!("nonce is not hex: {e}")))?;
    let (joiner, req) = Joiner::new(enclave.enclave.as_ref(), &nonce)?;
    let body = serde_json::to_vec(&req).map_err(|e| KeyShareError::Response(e.to_string()))?;
    let resp: ShareResponse = post_json(&mut sender, url, &authority, SHARE_PATH, body).await?;
    let key = joiner.finish(&resp)?;
    clusterkey::save(tee_dir, enclave.enclave.as_ref(), &key).map_err(KeyShareError::Save)?;
    tracing::info!(key_id = %resp.key_id, module_id = %attested.attestation.module_id, "cluster key received from an attested master and kept sealed");
    Ok(key)
}

/// `--server`: when `tee_dir` keeps no cluster key yet, get it from the master at `server`
/// (before the store is opened). Returns whether a key was fetched.
pub async fn obtain_if_absent(
    server: &str,
    enclave: &EnclaveHandle,
    tee_dir: &Path,
) -> Result<bool, KeyShareError> {
    if tee_dir.join(clusterkey::CLUSTER_KEY_FILE).exists() {
        tracing::info!(%server, "a cluster key is already kept; not asking the server");
        return Ok(false);
    }
    obtain(server, enclave, tee_dir).await?;
    Ok(true)
}

#[cfg(test)]
#[path = "keyshare_tests.rs"]
mod tests;
