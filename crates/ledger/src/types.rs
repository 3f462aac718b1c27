//! Ledger objects and transaction effects shared by the backends.

use serde::{Deserialize, Serialize};
use sui_sdk_types::{Address, Digest, ObjectReference};

use crate::contract::{ContractError, ContractObject, Event, ObjectId};

/// Who may use an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    Address(Address),
    Shared { initial_shared_version: u64 },
    Immutable,
}

/// Contents of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectData {
    /// The published k3s_daas package.
    Package {
        modules: Vec<String>,
    },
    Move(ContractObject),
}

/// Type filter for [`LedgerObject`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    Package,
    Coin,
    AdminCap,
    StakingPool,
    Gateway,
    SealToken,
    EnclaveConfig,
    Enclave,
    Market,
}

/// An object with its Sui metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerObject {
    pub id: ObjectId,
    pub version: u64,
    pub digest: Digest,
    pub owner: Owner,
    pub previous_transaction: Digest,
    pub data: ObjectData,
}

impl LedgerObject {
    /// Builds an object and computes its digest.
    pub fn new(
        id: ObjectId,
        version: u64,
        owner: Owner,
        previous_transaction: Digest,
        data: ObjectData,
    ) -> Self {
        let mut o = LedgerObject {
            id,
            version,
            digest: Digest::ZERO,
            owner,
            previous_transaction,
            data,
        };
        o.digest = o.compute_digest();
        o
    }

    /// `blake2b256("Object::" || bcs(id, version, owner, previous_transaction, data))`.
    pub fn compute_digest(&self) -> Digest {
        let mut h = sui_sdk_types::hash::Hasher::new();
        h.update(b"Object::");
        let body = (
            &self.id,
            self.version,
            &self.owner,
            &self.previous_transaction,
            &self.data,
        );
        h.update(bcs::to_bytes(&body).unwrap_or_default());
        h.finalize()
    }

    pub fn object_ref(&self) -> ObjectReference {
        ObjectReference::new(self.id, self.version, self.digest)
    }

    pub fn kind(&self) -> ObjectKind {
        match &self.data {
            ObjectData::Package { .. } => ObjectKind::Package,
            ObjectData::Move(o) => match o {
                ContractObject::Coin(_) => ObjectKind::Coin,
                ContractObject::AdminCap(_) => ObjectKind::AdminCap,
                ContractObject::StakingPool(_) => ObjectKind::StakingPool,
                ContractObject::Gateway(_) => ObjectKind::Gateway,
                ContractObject::SealToken(_) => ObjectKind::SealToken,
                ContractObject::EnclaveConfig(_) => ObjectKind::EnclaveConfig,
                ContractObject::Enclave(_) => ObjectKind::Enclave,
                ContractObject::Market(_) => ObjectKind::Market,
            },
        }
    }

    /// The Move type, e.g. `0x2::coin::Coin<0x2::sui::SUI>` or `<package>::staking::StakingPool`.
    pub fn type_name(&self, package: &Address) -> String {
        let p = package.to_hex();
        match self.kind() {
            ObjectKind::Package => "package".to_string(),
            ObjectKind::Coin => "0x2::coin::Coin<0x2::sui::SUI>".to_string(),
            ObjectKind::AdminCap => format!("0x{p}::staking::AdminCap"),
            ObjectKind::StakingPool => format!("0x{p}::staking::StakingPool"),
            ObjectKind::Gateway => format!("0x{p}::k8s_gateway::Gateway"),
            ObjectKind::SealToken => format!("0x{p}::k8s_gateway::SealToken"),
            ObjectKind::EnclaveConfig => format!("0x{p}::enclave::EnclaveConfig"),
            ObjectKind::Enclave => format!("0x{p}::enclave::Enclave"),
            ObjectKind::Market => format!("0x{p}::economy::Market"),
        }
    }

    pub fn as_contract(&self) -> Option<&ContractObject> {
        match &self.data {
            ObjectData::Move(o) => Some(o),
            ObjectData::Package { .. } => None,
        }
    }

    /// The coin value, if this is a SUI coin.
    pub fn coin_value(&self) -> Option<u64> {
        match self.as_contract() {
            Some(ContractObject::Coin(c)) => Some(c.value),
            _ => None,
        }
    }
}

/// An event of an executed transaction, as kept in the ledger's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The transaction that emitted it.
    pub digest: Digest,
    /// When the transaction was executed (ms since the Unix epoch; the checkpoint time on Sui).
    pub timestamp_ms: u64,
    pub sender: Address,
    pub event: Event,
}

/// Why a transaction's commands failed (it still paid gas and its digest is recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ExecutionFailure {
    /// A Move abort of the package (or of the Sui natives it calls).
    #[error("MoveAbort in {module}::{function}, code {code} ({name}): {message}")]
    MoveAbort {
        module: String,
        function: String,
        code: u64,
        name: String,
        message: String,
    },
    #[error("arithmetic error in {module}::{function}")]
    ArithmeticError { module: String, function: String },
    #[error("insufficient coin balance")]
    InsufficientCoinBalance,
    #[error("coin balance overflow")]
    CoinBalanceOverflow,
    #[error("function {module}::{function} not found")]
    FunctionNotFound { module: String, function: String },
    #[error("invalid argument {arg}: {reason}")]
    CommandArgumentError { arg: u16, reason: String },
    #[error("unused value without drop: result {result}, sub-result {subresult}")]
    UnusedValueWithoutDrop { result: u16, subresult: u16 },
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl ExecutionFailure {
    pub(crate) fn from_contract(e: ContractError, function: &str) -> Self {
        match e.code() {
            Some(code) => ExecutionFailure::MoveAbort {
                module: e.module().to_string(),
                function: function.to_string(),
                code,
                name: e.name().to_string(),
                message: e.to_string(),
            },
            None => ExecutionFailure::ArithmeticError {
                module: e.module().to_string(),
                function: function.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    Success,
    /// `command` is the index of the failing command.
    Failure {
        command: Option<u16>,
        error: ExecutionFailure,
    },
}

impl ExecutionStatus {
    pub fn is_success(&self) -> bool {
        matches!(self, ExecutionStatus::Success)
    }

    /// `(module, code)` of a Move abort.
    pub fn abort(&self) -> Option<(&str, u64)> {
        match self {
            ExecutionStatus::Failure {
                error: ExecutionFailure::MoveAbort { module, code, .. },
                ..
            } => Some((module.as_str(), *code)),
            _ => None,
        }
    }
}

/// What an executed transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionEffects {
    pub digest: Digest,
    pub sender: Address,
    pub status: ExecutionStatus,
    pub epoch: u64,
    /// Version given to every mutated and created object.
    pub lamport_version: u64,
    /// Fee charged from the gas coin (MIST).
    pub gas_used: u64,
    pub gas_object: ObjectReference,
    pub created: Vec<(ObjectReference, Owner)>,
    pub mutated: Vec<(ObjectReference, Owner)>,
    /// Deleted (or wrapped) objects, at the lamport version.
    pub deleted: Vec<ObjectReference>,
    pub events: Vec<Event>,
}

impl TransactionEffects {
    /// Ids of created objects.
    pub fn created_ids(&self) -> Vec<ObjectId> {
        self.created.iter().map(|(r, _)| *r.object_id()).collect()
    }
}
