//! The seed's HTTP endpoints on the master (next to the Kubernetes API on the same port):
//! `GET /api/v1/health`, `GET /api/v1/tee/attestation`, `GET /metrics`,
//! `POST /api/v1/seal-token/validate`, `POST /api/v1/stake`, `POST /api/v1/nodes/{id}/heartbeat`.
//!
//! The cluster id (see [`cluster_id`]) and, once the master is registered on the ledger, its
//! `Enclave` object id are served with the attestation: a client learns them over the TLS
//! connection the attestation document binds, and reads the expected measurement from the
//! ledger, not from the master.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use daas_apiserver::LocalClient;
use daas_store::Store;
use serde_json::{json, Value};

use crate::enclave::EnclaveHandle;
use crate::metrics::{Gauge, Metrics};

/// Store key of the cluster id: outside `/registry/`, so no API request can read or change it;
/// sealed like every value of the store.
pub const CLUSTER_ID_KEY: &str = "/daas/cluster-id";

/// The cluster id: created at random (128 bits, hex) the first time a master opens its sealed
/// store, then read back on every start. It lives as long as the sealed state does.
pub async fn cluster_id(store: &Arc<dyn Store>) -> Result<String, daas_store::StoreError> {
    if let Some(kv) = store.get(CLUSTER_ID_KEY).await? {
        return Ok(String::from_utf8_lossy(&kv.value).into_owned());
    }
    let id = crate::random_hex(16);
    match store.create(CLUSTER_ID_KEY, id.as_bytes()).await {
        Ok(_) => Ok(id),
        // Another master of the same store created it first: use that one.
        Err(e) => match store.get(CLUSTER_ID_KEY).await? {
            Some(kv) => Ok(String::from_utf8_lossy(&kv.value).into_owned()),
            None => Err(e),
        },
    }
}

#[derive(Clone)]
pub struct SeedState {
    pub enclave: EnclaveHandle,
    /// SHA-256 of the TLS serving certificate (DER): the attestation's user_data.
    pub tls_cert_sha256: [u8; 32],
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub client: LocalClient,
    pub ledger: Option<Arc<dyn daas_ledger::Ledger>>,
    pub tokens: Option<Arc<crate::auth::SealTokenAuthenticator>>,
    /// Authenticates callers of the seed endpoints that need an identity (static tokens and seal tokens).
    pub auth: Arc<dyn daas_apiserver::Authenticator>,
    /// This cluster's id (credential audience `k3s-daas:<id>`).
    pub cluster_id: String,
    /// Where this master's enclave is registered on the ledger, once it is.
    pub registration: Arc<std::sync::RwLock<Option<crate::registration::Registration>>>,
}

impl SeedState {
    fn registered(&self) -> Option<crate::registration::Registration> {
        self.registration.read().ok().and_then(|g| g.clone())
    }

    /// The Enclave object the attestation answer names: this master's own registration, else
    /// the operator's `--enclave-object`.
    pub(crate) fn enclave_object_id(&self) -> Option<String> {
        self.registered()
            .map(|r| r.enclave.id.to_string())
            .or_else(|| self.enclave.enclave_object.clone())
    }
}

pub use daas_protocol::tls_binding;

pub fn router(state: SeedState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/tee/attestation", get(attestation))
        .route("/metrics", get(metrics))
        .route(
            "/api/v1/seal-token/validate",
            axum::routing::post(validate_token),
        )
        .route("/api/v1/stake", axum::routing::post(stake))
        .route(
            "/api/v1/nodes/{id}/heartbeat",
            axum::routing::post(heartbeat),
        )
        .with_state(state)
}

async fn health(State(st): State<SeedState>) -> Response {
    let rev = st.store.current_revision().await;
    let pcrs: serde_json::Map<String, Value> = st
        .enclave
        .enclave
        .measurement()
        .iter()
        .map(|(i, v)| (i.to_string(), json!(hex::encode(v))))
        .collect();
    let body = json!({
        "status": if rev.is_ok() { "healthy" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "store_revision": rev.unwrap_or(-1),
        "enclave": {
            "kind": st.enclave.kind,
            "public_key": hex::encode(st.enclave.enclave.public_key()),
            "pcrs": pcrs,
        },
        "tls_certificate_sha256": hex::encode(st.tls_cert_sha256),
        "cluster_id": st.cluster_id,
        "audience": daas_ledger::credential::audience(&st.cluster_id),
        "enclave_object_id": st.registered().map(|r| r.enclave.id.to_string()),
    });
    let code = if body["status"] == "healthy" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

fn bad_request(msg: String) -> Response {
    let status = daas_apiserver::ApiError::bad_request(msg);
    axum::response::IntoResponse::into_response(status)
}

/// A fresh attestation document whose user_data is the TLS certificate hash and whose nonce is
/// the caller's (hex, up to 64 bytes), so a client can check it is talking to this enclave.
async fn attestation(
    State(st): State<SeedState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let nonce = match q.get("nonce").map(hex::decode) {
        None => None,
        Some(Ok(n)) if n.len() <= 64 => Some(n),
        Some(Ok(_)) => return bad_request("nonce is limited to 64 bytes".into()),
        Some(Err(e)) => return bad_request(format!("nonce must be hex: {e}")),
    };
    if let Some(provider) = st.enclave.evidence.clone() {
        return crate::tee_evidence::answer(&st, provider, nonce).await;
    }
    let enclave = st.enclave.enclave.clone();
    let binding = st.tls_cert_sha256;
    let doc =
        tokio::task::spawn_blocking(move || enclave.attestation(Some(&binding), nonce.as_deref()))
            .await;
    match doc {
        Ok(Ok(doc)) => Json(json!({
            "kind": st.enclave.kind,
            "platform": "nitro",
            "document": base64::engine::general_purpose::STANDARD.encode(&doc),
            "public_key": hex::encode(st.enclave.enclave.public_key()),
            "tls_certificate_sha256": hex::encode(st.tls_cert_sha256),
            "root_pem": if st.enclave.kind == "simulated" { json!(st.enclave.root_pem) } else { json!(null) },
            "cluster_id": st.cluster_id,
            "audience": daas_ledger::credential::audience(&st.cluster_id),
            // Only an index into the ledger: the client reads the Enclave object and its
            // EnclaveConfig (the expected PCRs) from the ledger itself.
            "enclave_object_id": st.enclave_object_id(),
        }))
        .into_response(),
        Ok(Err(e)) => axum::response::IntoResponse::into_response(daas_apiserver::ApiError::internal(format!(
            "attestation failed: {e}"
        ))),
        Err(e) => axum::response::IntoResponse::into_response(daas_apiserver::ApiError::internal(e.to_string())),
    }
}

fn api_error(code: u16, reason: &'static str, msg: String) -> Response {
    axum::response::IntoResponse::into_response(daas_apiserver::ApiError::new(code, reason, msg))
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Who is asking the validate endpoint.
enum Caller {
    /// `system:masters` (the admin token, the admin tier): may validate any credential.
    Admin,
    /// Any other authenticated identity: only credentials of its own Sui address (none for an
    /// identity without one).
    Owner {
        name: String,
        owner: Option<sui_sdk_types::Address>,
    },
}

async fn caller(
    st: &SeedState,
    tokens: &crate::auth::SealTokenAuthenticator,
    headers: &axum::http::HeaderMap,
) -> Option<Caller> {
    let bearer = bearer(headers)?;
    let is_admin = |groups: &[String]| {
        groups
            .iter()
            .any(|g| g == daas_apiserver::authz::GROUP_MASTERS)
    };
    if bearer.starts_with(daas_ledger::credential::PREFIX) {
        let (c, _) = tokens.check(bearer).await.ok()?;
        let v = &c.validated;
        if is_admin(&v.user.groups) {
            return Some(Caller::Admin);
        }
        return Some(Caller::Owner {
            name: v.user.name.clone(),
            owner: Some(v.token.owner),
        });
    }
    let user = st.auth.authenticate(bearer).await?;
    if is_admin(&user.groups) {
        Some(Caller::Admin)
    } else {
        Some(Caller::Owner {
            name: user.name,
            owner: None,
        })
    }
}

pub const VALIDATE_PATH: &str = "/api/v1/seal-token/validate";

/// `POST /api/v1/seal-token/validate` `{"token": "<daas1 credential>"}`: is it valid (signed by
/// its owner for this cluster, its seal token valid on the ledger), and as whom; a valid answer is
/// signed by the enclave key.
///
/// Who may ask (the answer names an identity, its role and node, and tells whether a credential
/// someone holds still works, so it is not public):
/// - unauthenticated callers: 401;
/// - `system:masters` (admin token, admin-tier seal tokens): any credential;
/// - any other authenticated identity: only a credential claiming its own Sui address (what it
///   could learn anyway by using it); someone else's credential is refused with 403 before it is
///   looked at, so the endpoint cannot be used to test stolen credentials.
///
/// Validation has no side effects (no namespace is created: that happens on the first real API
/// request of a user-tier identity).
async fn validate_token(
    State(st): State<SeedState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(tokens) = st.tokens.clone() else {
        return api_error(
            503,
            "ServiceUnavailable",
            "this master has no ledger configured".into(),
        );
    };
    let Some(caller) = caller(&st, &tokens, &headers).await else {
        return axum::response::IntoResponse::into_response(
            daas_apiserver::ApiError::unauthorized(),
        );
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("body must be JSON {{\"token\": ...}}: {e}")),
    };
    let Some(cred) = v["token"].as_str() else {
        return bad_request("missing \"token\"".into());
    };
    if let Caller::Owner { name, owner } = &caller {
        let claimed = daas_ledger::credential::claims_unverified(cred)
            .ok()
            .map(|c| c.owner);
        if owner.is_none() || claimed != *owner {
            return api_error(
                403,
                "Forbidden",
                format!("forbidden: User \"{name}\" cannot post path \"{VALIDATE_PATH}\": only a credential of the caller's own identity may be validated"),
            );
        }
    }
    match tokens.check(cred).await {
        // Signed once per ledger confirmation and shared while it is cached: `timestamp_ms` is
        // when the ledger confirmed the token, so the signature never claims a fresher check.
        Ok((c, _)) => (
            [(header::CONTENT_TYPE, "application/json")],
            c.memo(|c| signed_validation(&st, c)),
        )
            .into_response(),
        // The check itself succeeded: the answer is "not valid", with the reason.
        Err(e) => Json(json!({"valid": false, "error": e.to_string()})).into_response(),
    }
}

/// The answer to a valid credential, signed by the enclave key over [`validation_message`] at
/// the time the ledger confirmed the token.
fn signed_validation(st: &SeedState, c: &crate::auth::Checked) -> bytes::Bytes {
    let (ok, ts) = (&c.validated, c.checked_ms);
    let msg = validation_message(
        ts,
        &ok.token.id,
        &ok.token.owner,
        true,
        ok.token.role,
        ok.token.expiry_epoch,
    );
    let body = json!({
        "enclave_signature": hex::encode(st.enclave.enclave.sign(&msg)),
        "timestamp_ms": ts,
        "valid": true,
        "username": ok.user.name,
        "groups": ok.user.groups,
        "seal_token": ok.token.id.to_string(),
        "owner": ok.token.owner.to_string(),
        "role": ok.token.role,
        "node_id": ok.token.node_id,
        "permissions": ok.token.permissions,
        "expiry_epoch": ok.token.expiry_epoch,
        "credential_expires_ms": ok.expires_ms,
    });
    bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// Intent scope of enclave-signed token validation answers.
pub const INTENT_TOKEN_VALIDATION: u8 = 2;

/// BCS of `IntentMessage { intent: 2, timestamp_ms, data: TokenValidation { token: address,
/// owner: address, valid: bool, role: u8, expiry_epoch: u64 } }` (Nautilus layout): what the
/// enclave signs so a third party can check a validation answer came from this enclave.
pub fn validation_message(
    ts: u64,
    token: &sui_sdk_types::Address,
    owner: &sui_sdk_types::Address,
    valid: bool,
    role: u8,
    expiry_epoch: u64,
) -> Vec<u8> {
    let mut data = Vec::with_capacity(32 + 32 + 1 + 1 + 8);
    data.extend_from_slice(token.inner());
    data.extend_from_slice(owner.inner());
    data.push(valid as u8);
    data.push(role);
    data.extend_from_slice(&expiry_epoch.to_le_bytes());
    daas_tee::intent_message_bcs(INTENT_TOKEN_VALIDATION, ts, &data)
}

/// `POST /api/v1/stake` `{"tx_bytes": b64, "signatures": [b64]}`: submit a signed staking
/// transaction to the ledger (the seed's stake endpoint; the transaction itself is the proof).
async fn stake(State(st): State<SeedState>, body: axum::body::Bytes) -> Response {
    let Some(ledger) = &st.ledger else {
        return api_error(
            503,
            "ServiceUnavailable",
            "this master has no ledger configured".into(),
        );
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(format!(
                "body must be JSON {{\"tx_bytes\", \"signatures\"}}: {e}"
            ))
        }
    };
    let sigs: Vec<String> = v["signatures"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let signed = match daas_ledger::tx::SignedTransaction::from_base64(
        v["tx_bytes"].as_str().unwrap_or(""),
        &sigs,
    ) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("invalid transaction encoding: {e}")),
    };
    match ledger.execute(signed).await {
        Ok(effects) => Json(serde_json::to_value(&effects).unwrap_or(json!(null))).into_response(),
        Err(e) => bad_request(format!("transaction refused: {e}")),
    }
}

/// `POST /api/v1/nodes/{id}/heartbeat` (the seed's heartbeat): renews the node's Lease in
/// `kube-node-lease`. Only the node itself (its seal-token credential) may do this.
async fn heartbeat(
    State(st): State<SeedState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(tokens) = &st.tokens else {
        return api_error(
            503,
            "ServiceUnavailable",
            "this master has no ledger configured".into(),
        );
    };
    let user = match tokens.check(bearer(&headers).unwrap_or("")).await {
        Ok((c, _)) => c.validated.user.clone(),
        Err(e) => return api_error(401, "Unauthorized", e.to_string()),
    };
    if daas_apiserver::authz::node_name(&user) != Some(id.as_str()) {
        return api_error(
            403,
            "Forbidden",
            format!("{} cannot heartbeat for node {id}", user.name),
        );
    }
    match renew_lease(&st.client, &id, 40).await {
        Ok(lease) => {
            Json(json!({"status": "ok", "node": id, "renewTime": lease["spec"]["renewTime"]}))
                .into_response()
        }
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

/// RFC 3339 (seconds, UTC) of a Unix time in milliseconds.
pub fn rfc3339_from_ms(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// MicroTime as Kubernetes writes it.
pub fn micro_time_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Create or renew `kube-node-lease/<node>`.
pub async fn renew_lease(
    client: &LocalClient,
    node: &str,
    duration_s: i64,
) -> Result<Value, daas_apiserver::ApiError> {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}");
    let now = micro_time_now();
    match client.get_opt(&path).await? {
        Some(_) => client.merge_patch(&path, &json!({"spec": {"holderIdentity": node, "renewTime": now, "leaseDurationSeconds": duration_s}})).await,
        None => {
            client
                .create(
                    "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                    &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": node, "namespace": "kube-node-lease"},
                        "spec": {"holderIdentity": node, "leaseDurationSeconds": duration_s, "renewTime": now, "acquireTime": now}}),
                )
                .await
        }
    }
}

/// `GET /metrics`: authenticated and authorized like kube-apiserver's (`get` on the
/// non-resource URL `/metrics`, see [`crate::monitoring`]): anonymous 401, without the
/// permission 403.
async fn metrics(State(st): State<SeedState>, headers: axum::http::HeaderMap) -> Response {
    let ask = crate::access::Ask::Path {
        verb: "get",
        path: "/metrics",
    };
    if let Err(e) = crate::access::authorize(st.auth.as_ref(), &st.client, &headers, &ask).await {
        return e.into_response();
    }
    let mut gauges = Vec::new();
    if let Ok(pods) = st.client.list("/api/v1/pods").await {
        let mut by_phase: HashMap<String, f64> =
            ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
                .iter()
                .map(|p| (p.to_string(), 0.0))
                .collect();
        for p in &pods {
            *by_phase
                .entry(
                    p["status"]["phase"]
                        .as_str()
                        .unwrap_or("Unknown")
                        .to_string(),
                )
                .or_insert(0.0) += 1.0;
        }
        let mut g = Gauge::new("daas_pods", "Pods by phase.");
        let mut phases: Vec<_> = by_phase.into_iter().collect();
        phases.sort_by(|a, b| a.0.cmp(&b.0));
        for (phase, n) in phases {
            g = g.set(&[("phase", &phase)], n);
        }
        gauges.push(g);
    }
    if let Ok(nodes) = st.client.list("/api/v1/nodes").await {
        let mut counts: HashMap<&'static str, f64> =
            [("True", 0.0), ("False", 0.0), ("Unknown", 0.0)].into();
        for n in &nodes {
            let ready = n["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .and_then(|c| c["status"].as_str())
                .unwrap_or("Unknown");
            let k = match ready {
                "True" => "True",
                "False" => "False",
                _ => "Unknown",
            };
            *counts.entry(k).or_insert(0.0) += 1.0;
        }
        let mut g = Gauge::new("daas_nodes", "Nodes by Ready condition status.");
        for k in ["True", "False", "Unknown"] {
            g = g.set(&[("condition", "Ready"), ("status", k)], counts[k]);
        }
        gauges.push(g);
    }
    if let Some(ledger) = &st.ledger {
        if let Ok(d) = ledger.deployment().await {
            if let Ok(Some(obj)) = ledger.get_object(d.pool.id).await {
                if let Some(daas_ledger::contract::ContractObject::StakingPool(p)) =
                    obj.as_contract()
                {
                    gauges.push(
                        Gauge::new("daas_stake_total_mist", "SUI staked in the pool (MIST).")
                            .set(&[], p.total_staked as f64),
                    );
                    gauges.push(
                        Gauge::new(
                            "daas_stake_slashed_mist",
                            "SUI slashed into the pool treasury (MIST).",
                        )
                        .set(&[], p.slashed as f64),
                    );
                    let mut by_role = [0f64; 3];
                    for r in p.stakes.values().filter(|r| r.is_active()) {
                        if let Some(x) = by_role.get_mut(r.role as usize) {
                            *x += 1.0;
                        }
                    }
                    let mut g = Gauge::new("daas_stakers_active", "Active stakes by role.");
                    for (i, role) in ["user", "node", "admin"].iter().enumerate() {
                        g = g.set(&[("role", role)], by_role[i]);
                    }
                    gauges.push(g);
                }
            }
        }
    }
    if let Ok(rev) = st.store.current_revision().await {
        gauges.push(
            Gauge::new(
                "daas_store_revision",
                "Current revision of the sealed store.",
            )
            .set(&[], rev as f64),
        );
    }
    if let Some(t) = &st.tokens {
        t.publish_metrics();
    }
    let body = st.metrics.render(&gauges);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Middleware counting every API request by verb, resource and code, with latency.
pub async fn record_requests(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let verb = req.method().to_string();
    let resource = resource_label(req.uri().path());
    let resp = next.run(req).await;
    let code = resp.status().as_u16().to_string();
    m.inc(
        "apiserver_request_total",
        "Counter of API requests by verb, resource and HTTP code.",
        &[("verb", &verb), ("resource", &resource), ("code", &code)],
        1.0,
    );
    m.observe(
        "apiserver_request_duration_seconds",
        "API request latency (time to response headers) by verb and resource.",
        &[("verb", &verb), ("resource", &resource)],
        started.elapsed(),
    );
    resp
}

/// Low-cardinality resource label from a request path.
fn resource_label(path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", _g, _v, rest @ ..] => rest,
        [first, ..] => return first.to_string(),
        [] => return String::new(),
    };
    match rest {
        ["namespaces", _ns, res, ..] => res.to_string(),
        [res, ..] => res.to_string(),
        [] => "discovery".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cluster_id_is_created_once_and_sealed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.redb");
        let open = |k: [u8; 32]| {
            daas_store::EmbeddedStore::open(&path, daas_store::SealingKey::from_bytes(k))
        };
        let store: Arc<dyn Store> = Arc::new(open([1; 32]).unwrap());
        let id = cluster_id(&store).await.unwrap();
        assert!(
            daas_ledger::credential::valid_cluster_id(&id) && id.len() == 32,
            "{id}"
        );
        assert_eq!(cluster_id(&store).await.unwrap(), id);
        drop(store);
        // Reopened with the same sealing key: the same id.
        let store: Arc<dyn Store> = Arc::new(open([1; 32]).unwrap());
        assert_eq!(cluster_id(&store).await.unwrap(), id);
        drop(store);
        // Under another key (another enclave measurement) the sealed state, id included, does not open.
        assert!(open([2; 32]).is_err());
    }

    #[test]
    fn micro_time_format() {
        assert_eq!(micro_time_now().len(), "2026-11-25T19:00:00.000000Z".len());
        assert!(micro_time_now().ends_with('Z'));
    }

    #[test]
    fn resource_labels() {
        assert_eq!(resource_label("/api/v1/namespaces/default/pods/x"), "pods");
        assert_eq!(resource_label("/apis/apps/v1/deployments"), "deployments");
        assert_eq!(resource_label("/api/v1"), "discovery");
        assert_eq!(resource_label("/metrics"), "metrics");
        assert_eq!(
            resource_label("/api/v1/namespaces/kube-system"),
            "namespaces"
        );
    }
}
