//! K3s-DaaS ledger: the k3s_daas Move package's semantics (contracts/SPEC.md) behind a `Ledger`
//! trait, with an embedded ledger that executes real signed Sui programmable transactions and a
//! backend for a real Sui fullnode.
pub mod keys;
pub mod tx;

pub mod contract;
pub mod credential;
pub mod economy;
pub mod embedded;
pub mod http;
pub mod remote;
#[cfg(feature = "sui")]
pub mod sui;
pub mod types;
pub mod wallet;

pub use contract::{Account, Earnings, Market, UsageLine, UsageReport};
pub use contract::{AttestationVerifier, AttestedEnclave, ObjectId, SealToken, StakeRecord};
pub use embedded::{EmbeddedLedger, GenesisConfig};
pub use remote::RemoteLedger;
#[cfg(feature = "sui")]
pub use sui::{SuiConfig, SuiLedger};
pub use types::{
    EventRecord, ExecutionFailure, ExecutionStatus, LedgerObject, ObjectKind, Owner,
    TransactionEffects,
};

use sui_sdk_types::{Address, Digest, ObjectReference};

/// Errors of a ledger backend. A transaction refused with one of these changed nothing (no gas
/// was charged, its digest is not recorded); an executed transaction whose commands failed is
/// an `Ok(TransactionEffects)` with a `Failure` status instead.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("invalid transaction: {0}")]
    InvalidTransaction(#[from] tx::TxError),
    #[error("transaction {0} was already executed")]
    AlreadyExecuted(Digest),
    #[error("object {0} not found")]
    ObjectNotFound(ObjectId),
    #[error("object {id} is at version {current}, the transaction uses version {requested}")]
    StaleObject {
        id: ObjectId,
        requested: u64,
        current: u64,
    },
    #[error("object {id}: digest in the transaction does not match the object")]
    ObjectDigestMismatch { id: ObjectId },
    #[error("object {id} is not owned by the sender {sender}")]
    NotOwned { id: ObjectId, sender: Address },
    #[error("object {0} is not shared")]
    NotShared(ObjectId),
    #[error(
        "shared object {id}: initial shared version is {actual}, the transaction says {requested}"
    )]
    SharedVersionMismatch {
        id: ObjectId,
        requested: u64,
        actual: u64,
    },
    #[error("object {0} is used twice in the transaction")]
    DuplicateObject(ObjectId),
    #[error("invalid gas payment: {0}")]
    InvalidGas(String),
    #[error("gas price {price} is below the reference gas price {reference}")]
    GasPriceTooLow { price: u64, reference: u64 },
    #[error("gas budget {budget} is below the fee {fee}")]
    GasBudgetTooLow { budget: u64, fee: u64 },
    #[error("gas coins hold {balance} MIST, below the gas budget {budget}")]
    InsufficientGas { balance: u64, budget: u64 },
    #[error("transaction expired at epoch {expiration}, current epoch is {epoch}")]
    TransactionExpired { expiration: u64, epoch: u64 },
    #[error("package {0} not found")]
    PackageNotFound(Address),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("genesis: {0}")]
    Genesis(String),
    #[error("backend: {0}")]
    Backend(String),
}

/// What the master, the worker agent and the CLI need from a ledger (embedded or Sui).
#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// Package id and the singleton objects (current refs).
    async fn deployment(&self) -> Result<tx::Deployment, LedgerError>;
    async fn epoch(&self) -> Result<u64, LedgerError>;
    async fn reference_gas_price(&self) -> Result<u64, LedgerError>;
    async fn get_object(&self, id: ObjectId) -> Result<Option<LedgerObject>, LedgerError>;
    /// SUI coins owned by `owner` with their values, largest first.
    async fn gas_coins(&self, owner: Address) -> Result<Vec<(ObjectReference, u64)>, LedgerError>;
    /// The stake record of `address` in the pool.
    async fn stake(&self, address: Address) -> Result<Option<StakeRecord>, LedgerError>;
    /// The address holding `node_id` in the pool's node-id index (`staking::node_owner`) and its
    /// stake record; `None` when no live record holds the node id.
    async fn node_stake(
        &self,
        node_id: &str,
    ) -> Result<Option<(Address, StakeRecord)>, LedgerError>;
    /// An `enclave::EnclaveConfig` (PCRs, version, anchored store revision); `None` if there is no
    /// object with that id, `Backend` if the object is something else.
    async fn enclave_config(
        &self,
        id: ObjectId,
    ) -> Result<Option<contract::EnclaveConfig>, LedgerError> {
        match self.get_object(id).await? {
            None => Ok(None),
            Some(o) => match o.as_contract() {
                Some(contract::ContractObject::EnclaveConfig(c)) => Ok(Some(c.clone())),
                _ => Err(LedgerError::Backend(format!(
                    "object {id} is not an EnclaveConfig"
                ))),
            },
        }
    }
    async fn seal_token(&self, id: ObjectId) -> Result<Option<SealToken>, LedgerError>;
    /// Seal tokens currently owned by `owner` (as objects, whatever their `owner` field says).
    async fn seal_tokens_of(&self, owner: Address) -> Result<Vec<SealToken>, LedgerError>;
    /// `k8s_gateway::is_valid` of a token at the current epoch (false if it does not exist).
    async fn seal_token_valid(&self, id: ObjectId) -> Result<bool, LedgerError>;
    /// Verifies and executes a signed transaction.
    async fn execute(&self, tx: tx::SignedTransaction) -> Result<TransactionEffects, LedgerError>;
    /// Effects of an executed transaction.
    async fn transaction(&self, digest: Digest) -> Result<Option<TransactionEffects>, LedgerError>;
    /// Mints a SUI coin for local use (embedded ledger only; others return `Unsupported`).
    async fn faucet(&self, address: Address, amount: u64) -> Result<ObjectReference, LedgerError>;
    /// The `economy::Market` (prices, last settled period, escrow and payout totals, and, where
    /// the backend can list them, the accounts and earnings); `None` if the deployment has none.
    async fn market(&self) -> Result<Option<contract::Market>, LedgerError> {
        Err(LedgerError::Unsupported(
            "this ledger backend cannot read the market".into(),
        ))
    }
    /// The escrow account of `user` in the market.
    async fn account(&self, _user: Address) -> Result<Option<contract::Account>, LedgerError> {
        Err(LedgerError::Unsupported(
            "this ledger backend cannot read escrow accounts".into(),
        ))
    }
    /// The earnings of node operator `operator` in the market.
    async fn earnings(
        &self,
        _operator: Address,
    ) -> Result<Option<contract::Earnings>, LedgerError> {
        Err(LedgerError::Unsupported(
            "this ledger backend cannot read earnings".into(),
        ))
    }
    /// The last `limit` events of the package (stakes, slashes, deposits, settlements, ...),
    /// newest first.
    async fn recent_events(&self, _limit: usize) -> Result<Vec<EventRecord>, LedgerError> {
        Err(LedgerError::Unsupported(
            "this ledger backend cannot list recent events".into(),
        ))
    }
}
