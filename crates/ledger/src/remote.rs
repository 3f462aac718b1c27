//! [`RemoteLedger`]: the [`Ledger`] trait over the HTTP API of [`crate::http`] (`daas chain`).
//!
//! Plain HTTP/1.1 only (hyper-util's legacy client). Error responses are mapped back to the
//! [`LedgerError`] variant named by their `kind` (with the fields from `detail`); anything that
//! cannot be rebuilt exactly becomes [`LedgerError::Backend`] with the server's message.

use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sui_sdk_types::{Address, Digest, ObjectReference};

use crate::contract::{Account, Earnings, Market, ObjectId, SealToken, StakeRecord};
use crate::http::{
    CoinEntry, EpochInfo, ErrorBody, ExecuteRequest, FaucetRequest, NodeStake, Validity,
};
use crate::tx::{Deployment, SignedTransaction, TxError};
use crate::types::{EventRecord, LedgerObject, TransactionEffects};
use crate::{Ledger, LedgerError};

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body accepted (bytes).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A ledger served by `daas chain` (or anything serving [`crate::http::router`]).
#[derive(Clone)]
pub struct RemoteLedger {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for RemoteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLedger")
            .field("base", &self.base)
            .finish()
    }
}

impl RemoteLedger {
    /// `base_url` like `http://127.0.0.1:9100` (a path prefix is kept; a trailing `/` is ignored).
    pub fn new(base_url: &str) -> Result<Self, LedgerError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        let uri = Uri::from_str(&base)
            .map_err(|e| LedgerError::Backend(format!("invalid ledger URL {base_url:?}: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(LedgerError::Backend(format!(
                    "ledger URL {base_url:?}: scheme {other} is not supported (plain http only)"
                )))
            }
            None => {
                return Err(LedgerError::Backend(format!(
                    "ledger URL {base_url:?} has no http:// scheme"
                )))
            }
        }
        if uri.host().is_none() {
            return Err(LedgerError::Backend(format!(
                "ledger URL {base_url:?} has no host"
            )));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(RemoteLedger {
            base,
            client,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request; returns the status and the body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), LedgerError> {
        let url = format!("{}{}", self.base, path);
        let mut builder = Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", "application/json");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| LedgerError::Backend(format!("request {url}: {e}")))?;
        let fut = async {
            let resp =
                self.client.request(req).await.map_err(|e| {
                    LedgerError::Backend(format!("request {url}: {}", with_causes(&e)))
                })?;
            let status = resp.status();
            let limited = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES);
            let bytes = limited
                .collect()
                .await
                .map_err(|e| LedgerError::Backend(format!("response of {url}: {e}")))?
                .to_bytes();
            Ok::<_, LedgerError>((status, bytes))
        };
        tokio::time::timeout(self.timeout, fut).await.map_err(|_| {
            LedgerError::Backend(format!("request {url} timed out after {:?}", self.timeout))
        })?
    }

    /// GET/POST returning `Ok(None)` on 404 `not_found`.
    async fn request_opt<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Option<T>, LedgerError> {
        let (status, bytes) = self.call(method, path, body).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| LedgerError::Backend(format!("invalid response of {path}: {e}")));
        }
        let err = parse_error(status, &bytes);
        match err {
            Err(body) if body.kind == "not_found" && status == StatusCode::NOT_FOUND => Ok(None),
            Err(body) => Err(body_to_error(body)),
            Ok(e) => Err(e),
        }
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, LedgerError> {
        self.request_opt(method, path, body)
            .await?
            .ok_or_else(|| LedgerError::Backend(format!("{path}: not found")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, LedgerError> {
        self.request(Method::GET, path, None).await
    }

    async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, LedgerError> {
        self.request_opt(Method::GET, path, None).await
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, LedgerError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| LedgerError::Backend(format!("encode request: {e}")))?;
        self.request(Method::POST, path, Some(body)).await
    }
}

/// `Err(body)` if the response is a JSON [`ErrorBody`], else `Ok(Backend error)`.
fn parse_error(status: StatusCode, bytes: &[u8]) -> Result<LedgerError, ErrorBody> {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => Err(body),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let text: String = text.chars().take(512).collect();
            Ok(LedgerError::Backend(format!("HTTP {status}: {text}")))
        }
    }
}

fn field<T: DeserializeOwned>(detail: &Option<Value>, name: &str) -> Option<T> {
    detail
        .as_ref()?
        .get(name)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn message(body: &ErrorBody) -> String {
    field::<String>(&body.detail, "message").unwrap_or_else(|| body.error.clone())
}

/// Rebuilds the [`LedgerError`] of an error body ([`LedgerError::Backend`] with the message if the
/// kind or its fields are unknown).
pub fn body_to_error(body: ErrorBody) -> LedgerError {
    let d = &body.detail;
    let backend = || LedgerError::Backend(format!("{} ({})", body.error, body.kind));
    let rebuilt = match body.kind.as_str() {
        "invalid_transaction" => Some(LedgerError::InvalidTransaction(tx_error_from_body(&body))),
        "already_executed" => field::<Digest>(d, "digest").map(LedgerError::AlreadyExecuted),
        "object_not_found" => field::<ObjectId>(d, "id").map(LedgerError::ObjectNotFound),
        "stale_object" => (|| {
            Some(LedgerError::StaleObject {
                id: field(d, "id")?,
                requested: field(d, "requested")?,
                current: field(d, "current")?,
            })
        })(),
        "object_digest_mismatch" => {
            field(d, "id").map(|id| LedgerError::ObjectDigestMismatch { id })
        }
        "not_owned" => (|| {
            Some(LedgerError::NotOwned {
                id: field(d, "id")?,
                sender: field(d, "sender")?,
            })
        })(),
        "not_shared" => field(d, "id").map(LedgerError::NotShared),
        "shared_version_mismatch" => (|| {
            Some(LedgerError::SharedVersionMismatch {
                id: field(d, "id")?,
                requested: field(d, "requested")?,
                actual: field(d, "actual")?,
            })
        })(),
        "duplicate_object" => field(d, "id").map(LedgerError::DuplicateObject),
        "invalid_gas" => Some(LedgerError::InvalidGas(message(&body))),
        "gas_price_too_low" => (|| {
            Some(LedgerError::GasPriceTooLow {
                price: field(d, "price")?,
                reference: field(d, "reference")?,
            })
        })(),
        "gas_budget_too_low" => (|| {
            Some(LedgerError::GasBudgetTooLow {
                budget: field(d, "budget")?,
                fee: field(d, "fee")?,
            })
        })(),
        "insufficient_gas" => (|| {
            Some(LedgerError::InsufficientGas {
                balance: field(d, "balance")?,
                budget: field(d, "budget")?,
            })
        })(),
        "transaction_expired" => (|| {
            Some(LedgerError::TransactionExpired {
                expiration: field(d, "expiration")?,
                epoch: field(d, "epoch")?,
            })
        })(),
        "package_not_found" => field::<Address>(d, "id").map(LedgerError::PackageNotFound),
        "unsupported" => Some(LedgerError::Unsupported(message(&body))),
        "storage" => Some(LedgerError::Storage(message(&body))),
        "genesis" => Some(LedgerError::Genesis(message(&body))),
        "backend" => Some(LedgerError::Backend(message(&body))),
        _ => None,
    };
    rebuilt.unwrap_or_else(backend)
}

fn tx_error_from_body(body: &ErrorBody) -> TxError {
    let d = &body.detail;
    let msg = message(body);
    match body.tx_kind.as_deref() {
        Some("malformed_signature") => TxError::MalformedSignature(msg),
        Some("unsupported") => TxError::Unsupported(msg),
        Some("signature_count") => match field::<usize>(d, "count") {
            Some(n) => TxError::SignatureCount(n),
            None => TxError::Malformed(body.error.clone()),
        },
        Some("wrong_signer") => match (field(d, "expected"), field(d, "actual")) {
            (Some(expected), Some(actual)) => TxError::WrongSigner { expected, actual },
            _ => TxError::Malformed(body.error.clone()),
        },
        Some("bad_signature") => TxError::BadSignature(msg),
        Some("build") => TxError::Build(msg),
        Some("base64") => TxError::Base64(msg),
        // `malformed`, and `missing_object` (whose `&'static str` cannot be rebuilt).
        _ => TxError::Malformed(msg),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for one path segment).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[async_trait::async_trait]
impl Ledger for RemoteLedger {
    async fn deployment(&self) -> Result<Deployment, LedgerError> {
        self.get("/v1/deployment").await
    }

    async fn epoch(&self) -> Result<u64, LedgerError> {
        Ok(self.get::<EpochInfo>("/v1/epoch").await?.epoch)
    }

    async fn reference_gas_price(&self) -> Result<u64, LedgerError> {
        Ok(self
            .get::<EpochInfo>("/v1/epoch")
            .await?
            .reference_gas_price)
    }

    async fn get_object(&self, id: ObjectId) -> Result<Option<LedgerObject>, LedgerError> {
        self.get_opt(&format!("/v1/objects/{id}")).await
    }

    async fn gas_coins(&self, owner: Address) -> Result<Vec<(ObjectReference, u64)>, LedgerError> {
        let coins: Vec<CoinEntry> = self.get(&format!("/v1/coins/{owner}")).await?;
        Ok(coins.into_iter().map(|c| (c.object, c.value)).collect())
    }

    async fn stake(&self, address: Address) -> Result<Option<StakeRecord>, LedgerError> {
        self.get_opt(&format!("/v1/stakes/{address}")).await
    }

    async fn node_stake(
        &self,
        node_id: &str,
    ) -> Result<Option<(Address, StakeRecord)>, LedgerError> {
        let found: Option<NodeStake> = self
            .get_opt(&format!("/v1/node-stakes/{}", percent_encode(node_id)))
            .await?;
        Ok(found.map(|n| (n.owner, n.record)))
    }

    async fn seal_token(&self, id: ObjectId) -> Result<Option<SealToken>, LedgerError> {
        self.get_opt(&format!("/v1/tokens/{id}")).await
    }

    async fn seal_tokens_of(&self, owner: Address) -> Result<Vec<SealToken>, LedgerError> {
        self.get(&format!("/v1/tokens?owner={owner}")).await
    }

    async fn seal_token_valid(&self, id: ObjectId) -> Result<bool, LedgerError> {
        Ok(self
            .get::<Validity>(&format!("/v1/tokens/{id}/valid"))
            .await?
            .valid)
    }

    async fn execute(&self, tx: SignedTransaction) -> Result<TransactionEffects, LedgerError> {
        self.post("/v1/transactions", &ExecuteRequest::from(&tx))
            .await
    }

    async fn transaction(&self, digest: Digest) -> Result<Option<TransactionEffects>, LedgerError> {
        self.get_opt(&format!("/v1/transactions/{digest}")).await
    }

    async fn faucet(&self, address: Address, amount: u64) -> Result<ObjectReference, LedgerError> {
        self.post("/v1/faucet", &FaucetRequest { address, amount })
            .await
    }

    async fn market(&self) -> Result<Option<Market>, LedgerError> {
        self.get_opt("/v1/market").await
    }

    async fn account(&self, user: Address) -> Result<Option<Account>, LedgerError> {
        self.get_opt(&format!("/v1/accounts/{user}")).await
    }

    async fn earnings(&self, operator: Address) -> Result<Option<Earnings>, LedgerError> {
        self.get_opt(&format!("/v1/earnings/{operator}")).await
    }

    async fn recent_events(&self, limit: usize) -> Result<Vec<EventRecord>, LedgerError> {
        self.get(&format!("/v1/events?limit={limit}")).await
    }
}

/// An error and its sources on one line (the HTTP client's own message hides the cause, e.g.
/// "client error (Connect)" without "Connection refused").
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !out.ends_with(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod cause_tests {
    use super::with_causes;

    #[test]
    fn sources_are_appended_once() {
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let outer = std::io::Error::other(root);
        // io::Error::other displays its inner error, so the repeat is dropped.
        assert_eq!(with_causes(&outer), "refused");
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Wrap(#[source] std::io::Error);
        let e = Wrap(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error",
        ));
        assert_eq!(with_causes(&e), "client error (Connect): tcp connect error");
    }
}
