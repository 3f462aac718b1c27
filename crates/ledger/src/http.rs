//! The ledger as JSON over HTTP (served by `daas chain`, consumed by [`crate::remote::RemoteLedger`]).
//!
//! Routes (all JSON; addresses and object ids are `0x`-hex strings, digests Base58 as Sui prints them):
//! - `GET  /v1/deployment` → [`Deployment`]
//! - `GET  /v1/epoch` → [`EpochInfo`] (`{epoch, reference_gas_price}`)
//! - `GET  /v1/objects/{id}` → [`LedgerObject`]
//! - `GET  /v1/coins/{address}` → `[CoinEntry]` (largest first)
//! - `GET  /v1/stakes/{address}` → [`StakeRecord`]
//! - `GET  /v1/node-stakes/{node_id}` (percent-encoded) → [`NodeStake`] (`{owner, record}`: the
//!   holder of the node id in the pool's index and its record)
//! - `GET  /v1/tokens/{id}` → [`SealToken`]
//! - `GET  /v1/tokens?owner=0x…` → `[SealToken]`
//! - `GET  /v1/tokens/{id}/valid` → [`Validity`] (`{valid}`)
//! - `POST /v1/transactions` `{tx_bytes, signatures}` (Base64, Sui wire format) → [`TransactionEffects`]
//! - `GET  /v1/transactions/{digest}` → [`TransactionEffects`]
//! - `POST /v1/faucet` `{address, amount}` → `ObjectReference` (embedded ledger only)
//! - `GET  /v1/market` → [`Market`] (`economy::Market`: prices, last period, escrow, payouts,
//!   accounts, earnings)
//! - `GET  /v1/accounts/{address}` → [`Account`] (the address's escrow account)
//! - `GET  /v1/earnings/{address}` → [`Earnings`] (the node operator's earnings)
//! - `GET  /v1/events?limit=N` → `[EventRecord]` (newest first; default 50, at most 1000)
//!
//! Errors are `{error, kind, ...}` ([`ErrorBody`]): a missing object or record is 404 with kind
//! `not_found`; malformed requests are 400 (`bad_request`, or `invalid_transaction` with a
//! `tx_kind`); refused transactions are 409/422; `unsupported` is 501; only backend/storage
//! failures are 5xx. The variant's fields travel in `detail` so that the client can rebuild the
//! [`LedgerError`].

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sui_sdk_types::{Address, Digest, ObjectReference};

use crate::contract::{Account, Earnings, Market, ObjectId, SealToken, StakeRecord};
use crate::tx::{self, Deployment, SignedTransaction, TxError};
use crate::types::{EventRecord, LedgerObject, TransactionEffects};
use crate::{Ledger, LedgerError};

/// `GET /v1/epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInfo {
    pub epoch: u64,
    pub reference_gas_price: u64,
}

/// One SUI coin in `GET /v1/coins/{address}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinEntry {
    pub object: ObjectReference,
    pub value: u64,
}

/// `GET /v1/node-stakes/{node_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStake {
    pub owner: Address,
    pub record: StakeRecord,
}

/// `GET /v1/tokens/{id}/valid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    pub valid: bool,
}

/// `POST /v1/transactions` body: the Sui JSON-RPC / TypeScript SDK representation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteRequest {
    /// Base64 of BCS `TransactionData`.
    pub tx_bytes: String,
    /// Base64 serialized `UserSignature`s.
    pub signatures: Vec<String>,
}

impl From<&SignedTransaction> for ExecuteRequest {
    fn from(tx: &SignedTransaction) -> Self {
        ExecuteRequest {
            tx_bytes: tx.tx_bytes_base64(),
            signatures: tx.signatures_base64(),
        }
    }
}

/// `POST /v1/faucet` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaucetRequest {
    pub address: Address,
    pub amount: u64,
}

/// Error body of every non-2xx response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub error: String,
    /// Machine-readable kind: `not_found`, `bad_request`, or the snake_case name of the
    /// [`LedgerError`] variant (`invalid_transaction`, `already_executed`, `stale_object`, ...).
    pub kind: String,
    /// For `invalid_transaction`: the snake_case name of the [`TxError`] variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_kind: Option<String>,
    /// The variant's fields (e.g. `{id, requested, current}` for `stale_object`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl ErrorBody {
    fn new(kind: &str, error: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            kind: kind.to_string(),
            tx_kind: None,
            detail: None,
        }
    }

    fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    fn not_found(what: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            body: ErrorBody::new("not_found", what),
        }
    }

    fn bad_request(msg: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody::new("bad_request", msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        let (status, body) = error_to_body(&e);
        ApiError { status, body }
    }
}

/// snake_case kind of a [`TxError`] variant.
fn tx_error_kind(e: &TxError) -> &'static str {
    match e {
        TxError::Malformed(_) => "malformed",
        TxError::MalformedSignature(_) => "malformed_signature",
        TxError::Unsupported(_) => "unsupported",
        TxError::SignatureCount(_) => "signature_count",
        TxError::WrongSigner { .. } => "wrong_signer",
        TxError::BadSignature(_) => "bad_signature",
        TxError::Build(_) => "build",
        TxError::MissingObject(_) => "missing_object",
        TxError::Base64(_) => "base64",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

fn tx_error_detail(e: &TxError) -> serde_json::Value {
    use serde_json::json;
    match e {
        TxError::Malformed(s)
        | TxError::MalformedSignature(s)
        | TxError::Unsupported(s)
        | TxError::BadSignature(s)
        | TxError::Build(s)
        | TxError::Base64(s) => json!({ "message": s }),
        TxError::SignatureCount(n) => json!({ "count": n }),
        TxError::WrongSigner { expected, actual } => {
            json!({ "expected": expected, "actual": actual })
        }
        TxError::MissingObject(what) => json!({ "message": what }),
        #[allow(unreachable_patterns)]
        _ => json!({ "message": e.to_string() }),
    }
}

/// HTTP status and body for a ledger error. Refusals caused by the request are 4xx; only
/// `storage`, `genesis` and `backend` are 5xx.
pub fn error_to_body(e: &LedgerError) -> (StatusCode, ErrorBody) {
    use serde_json::json;
    let msg = e.to_string();
    let (status, kind, detail) = match e {
        LedgerError::InvalidTransaction(t) => {
            let mut body = ErrorBody::new("invalid_transaction", msg);
            body.tx_kind = Some(tx_error_kind(t).to_string());
            body.detail = Some(tx_error_detail(t));
            return (StatusCode::BAD_REQUEST, body);
        }
        LedgerError::AlreadyExecuted(d) => (
            StatusCode::CONFLICT,
            "already_executed",
            json!({ "digest": d }),
        ),
        LedgerError::ObjectNotFound(id) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "object_not_found",
            json!({ "id": id }),
        ),
        LedgerError::StaleObject {
            id,
            requested,
            current,
        } => (
            StatusCode::CONFLICT,
            "stale_object",
            json!({ "id": id, "requested": requested, "current": current }),
        ),
        LedgerError::ObjectDigestMismatch { id } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "object_digest_mismatch",
            json!({ "id": id }),
        ),
        LedgerError::NotOwned { id, sender } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_owned",
            json!({ "id": id, "sender": sender }),
        ),
        LedgerError::NotShared(id) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_shared",
            json!({ "id": id }),
        ),
        LedgerError::SharedVersionMismatch {
            id,
            requested,
            actual,
        } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "shared_version_mismatch",
            json!({ "id": id, "requested": requested, "actual": actual }),
        ),
        LedgerError::DuplicateObject(id) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate_object",
            json!({ "id": id }),
        ),
        LedgerError::InvalidGas(s) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_gas",
            json!({ "message": s }),
        ),
        LedgerError::GasPriceTooLow { price, reference } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "gas_price_too_low",
            json!({ "price": price, "reference": reference }),
        ),
        LedgerError::GasBudgetTooLow { budget, fee } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "gas_budget_too_low",
            json!({ "budget": budget, "fee": fee }),
        ),
        LedgerError::InsufficientGas { balance, budget } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_gas",
            json!({ "balance": balance, "budget": budget }),
        ),
        LedgerError::TransactionExpired { expiration, epoch } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "transaction_expired",
            json!({ "expiration": expiration, "epoch": epoch }),
        ),
        LedgerError::PackageNotFound(p) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "package_not_found",
            json!({ "id": p }),
        ),
        // The embedded ledger refuses unsupported transaction inputs with this (bad input, so
        // 4xx); the faucet of a non-embedded backend also lands here.
        LedgerError::Unsupported(s) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported",
            json!({ "message": s }),
        ),
        LedgerError::Storage(s) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage",
            json!({ "message": s }),
        ),
        LedgerError::Genesis(s) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "genesis",
            json!({ "message": s }),
        ),
        LedgerError::Backend(s) => (StatusCode::BAD_GATEWAY, "backend", json!({ "message": s })),
        #[allow(unreachable_patterns)]
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "other",
            json!({ "message": msg }),
        ),
    };
    (status, ErrorBody::new(kind, msg).with_detail(detail))
}

fn parse_address(s: &str, what: &str) -> Result<Address, ApiError> {
    Address::from_str(s.trim())
        .map_err(|e| ApiError::bad_request(format!("invalid {what} {s:?}: {e}")))
}

fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::from_str(s.trim())
        .map_err(|e| ApiError::bad_request(format!("invalid digest {s:?}: {e}")))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

type Shared = Arc<dyn Ledger>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The ledger API router (see the module documentation).
pub fn router(ledger: Arc<dyn Ledger>) -> Router {
    Router::new()
        .route("/v1/deployment", get(deployment))
        .route("/v1/epoch", get(epoch))
        .route("/v1/objects/{id}", get(object))
        .route("/v1/coins/{address}", get(coins))
        .route("/v1/stakes/{address}", get(stake))
        .route("/v1/node-stakes/{node_id}", get(node_stake))
        .route("/v1/tokens", get(tokens_of))
        .route("/v1/tokens/{id}", get(token))
        .route("/v1/tokens/{id}/valid", get(token_valid))
        .route("/v1/transactions", post(execute))
        .route("/v1/transactions/{digest}", get(transaction))
        .route("/v1/faucet", post(faucet))
        .route("/v1/market", get(market))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/earnings/{address}", get(earnings))
        .route("/v1/events", get(events))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                body: ErrorBody::new("no_route", "no such route"),
            }
        })
        .with_state(ledger)
}

async fn deployment(State(l): State<Shared>) -> ApiResult<Deployment> {
    Ok(Json(l.deployment().await?))
}

async fn epoch(State(l): State<Shared>) -> ApiResult<EpochInfo> {
    let epoch = l.epoch().await?;
    let reference_gas_price = l.reference_gas_price().await?;
    Ok(Json(EpochInfo {
        epoch,
        reference_gas_price,
    }))
}

async fn object(State(l): State<Shared>, Path(id): Path<String>) -> ApiResult<LedgerObject> {
    let id: ObjectId = parse_address(&id, "object id")?;
    match l.get_object(id).await? {
        Some(o) => Ok(Json(o)),
        None => Err(ApiError::not_found(format!("object {id} not found"))),
    }
}

async fn coins(State(l): State<Shared>, Path(address): Path<String>) -> ApiResult<Vec<CoinEntry>> {
    let address = parse_address(&address, "address")?;
    let coins = l.gas_coins(address).await?;
    Ok(Json(
        coins
            .into_iter()
            .map(|(object, value)| CoinEntry { object, value })
            .collect(),
    ))
}

async fn stake(State(l): State<Shared>, Path(address): Path<String>) -> ApiResult<StakeRecord> {
    let address = parse_address(&address, "address")?;
    match l.stake(address).await? {
        Some(r) => Ok(Json(r)),
        None => Err(ApiError::not_found(format!(
            "{address} has no stake record"
        ))),
    }
}

async fn node_stake(State(l): State<Shared>, Path(node_id): Path<String>) -> ApiResult<NodeStake> {
    match l.node_stake(&node_id).await? {
        Some((owner, record)) => Ok(Json(NodeStake { owner, record })),
        None => Err(ApiError::not_found(format!(
            "no stake holds node id {node_id:?}"
        ))),
    }
}

async fn token(State(l): State<Shared>, Path(id): Path<String>) -> ApiResult<SealToken> {
    let id = parse_address(&id, "token id")?;
    match l.seal_token(id).await? {
        Some(t) => Ok(Json(t)),
        None => Err(ApiError::not_found(format!("seal token {id} not found"))),
    }
}

async fn tokens_of(
    State(l): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Vec<SealToken>> {
    let owner = q
        .get("owner")
        .ok_or_else(|| ApiError::bad_request("query parameter owner is required"))?;
    let owner = parse_address(owner, "owner")?;
    Ok(Json(l.seal_tokens_of(owner).await?))
}

async fn token_valid(State(l): State<Shared>, Path(id): Path<String>) -> ApiResult<Validity> {
    let id = parse_address(&id, "token id")?;
    Ok(Json(Validity {
        valid: l.seal_token_valid(id).await?,
    }))
}

async fn execute(State(l): State<Shared>, body: Bytes) -> ApiResult<TransactionEffects> {
    let req: ExecuteRequest = parse_json(&body)?;
    let signed = SignedTransaction::from_base64(&req.tx_bytes, &req.signatures)
        .map_err(LedgerError::from)?;
    if signed.tx_bytes.len() > tx::MAX_TX_BYTES {
        return Err(LedgerError::InvalidTransaction(TxError::Malformed(format!(
            "transaction is {} bytes, the limit is {}",
            signed.tx_bytes.len(),
            tx::MAX_TX_BYTES
        )))
        .into());
    }
    Ok(Json(l.execute(signed).await?))
}

async fn transaction(
    State(l): State<Shared>,
    Path(digest): Path<String>,
) -> ApiResult<TransactionEffects> {
    let digest = parse_digest(&digest)?;
    match l.transaction(digest).await? {
        Some(e) => Ok(Json(e)),
        None => Err(ApiError::not_found(format!(
            "transaction {digest} not found"
        ))),
    }
}

async fn faucet(State(l): State<Shared>, body: Bytes) -> ApiResult<ObjectReference> {
    let req: FaucetRequest = parse_json(&body)?;
    if req.amount == 0 {
        return Err(ApiError::bad_request("amount must be positive"));
    }
    Ok(Json(l.faucet(req.address, req.amount).await?))
}

/// Default and largest `limit` of `GET /v1/events`.
pub const DEFAULT_EVENTS_LIMIT: usize = 50;
pub const MAX_EVENTS_LIMIT: usize = 1000;

async fn market(State(l): State<Shared>) -> ApiResult<Market> {
    match l.market().await? {
        Some(m) => Ok(Json(m)),
        None => Err(ApiError::not_found("the deployment has no market")),
    }
}

async fn account(State(l): State<Shared>, Path(address): Path<String>) -> ApiResult<Account> {
    let address = parse_address(&address, "address")?;
    match l.account(address).await? {
        Some(a) => Ok(Json(a)),
        None => Err(ApiError::not_found(format!(
            "{address} has no escrow account"
        ))),
    }
}

async fn earnings(State(l): State<Shared>, Path(address): Path<String>) -> ApiResult<Earnings> {
    let address = parse_address(&address, "address")?;
    match l.earnings(address).await? {
        Some(e) => Ok(Json(e)),
        None => Err(ApiError::not_found(format!("{address} has no earnings"))),
    }
}

async fn events(
    State(l): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Vec<EventRecord>> {
    let limit = match q.get("limit") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("limit {v:?} is not a number")))?,
        None => DEFAULT_EVENTS_LIMIT,
    };
    Ok(Json(l.recent_events(limit.min(MAX_EVENTS_LIMIT)).await?))
}
