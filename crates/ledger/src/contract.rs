//! The k3s_daas Move package (contracts/SPEC.md) as a pure Rust state machine.
//!
//! Every entry function takes the objects it operates on plus a [`TxContext`] (sender, epoch,
//! fresh object ids) and either succeeds, leaving its side effects (events, new objects,
//! transfers, deletions) in the context, or aborts with a [`ContractError`] carrying the Move
//! module and abort code. A caller that gets an error must discard every object it passed in
//! mutably (the embedded ledger works on copies), exactly like a Move abort reverts the
//! transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sui_crypto::ed25519::Ed25519VerifyingKey;
use sui_crypto::Verifier;
use sui_sdk_types::{Address, Digest, Ed25519PublicKey, Ed25519Signature};

/// Object ids share the 32-byte address space.
pub type ObjectId = Address;

pub const MODULE_STAKING: &str = "staking";
pub const MODULE_GATEWAY: &str = "k8s_gateway";
pub const MODULE_ENCLAVE: &str = "enclave";
pub const MODULE_ECONOMY: &str = "economy";
/// The Sui framework module whose native aborts when a Nitro attestation document is invalid.
pub const MODULE_NITRO: &str = "nitro_attestation";

pub const ROLE_USER: u8 = 0;
pub const ROLE_NODE: u8 = 1;
pub const ROLE_ADMIN: u8 = 2;

pub const STATUS_ACTIVE: u8 = 0;
pub const STATUS_UNBONDING: u8 = 1;
pub const STATUS_SLASHED: u8 = 2;
/// `stake_status` / `stake_role` of an address without a record.
pub const STATUS_NONE: u8 = 255;

pub const DEFAULT_MIN_USER_STAKE: u64 = 100;
pub const DEFAULT_MIN_NODE_STAKE: u64 = 1000;
pub const DEFAULT_MIN_ADMIN_STAKE: u64 = 10000;
pub const DEFAULT_LOCKUP_EPOCHS: u64 = 2;
pub const DEFAULT_SLASH_BPS: u64 = 1000;
pub const DEFAULT_TOKEN_TTL_EPOCHS: u64 = 30;
pub const BPS_DENOMINATOR: u64 = 10_000;

/// Intent scope of a slashing report signed by the master's enclave.
pub const SLASH_INTENT: u8 = 1;
/// Intent scope of a state anchor (store revision) signed by the master's enclave.
pub const STATE_ANCHOR_INTENT: u8 = 2;
/// Intent scope of a usage report (settlement) signed by the master's enclave.
pub const USAGE_INTENT: u8 = 3;

/// Default price per 1000 CPU-milliseconds (per CPU-second), MIST.
pub const DEFAULT_PRICE_CPU: u64 = 1000;
/// Default price per 1000 MiB-seconds of working-set memory, MIST.
pub const DEFAULT_PRICE_MEM: u64 = 1;
/// Default price per 1000 pod-seconds, MIST.
pub const DEFAULT_PRICE_POD: u64 = 1000;
/// Prices are per this many units of usage.
pub const PRICE_UNIT: u64 = 1000;

/// `UsageSkipped.reason`: the node id has no holder in `pool.node_owners`.
pub const SKIP_NO_STAKE: &str = "no_stake";
/// `UsageSkipped.reason`: the holder's record is not Active (slashed or unbonding).
pub const SKIP_NOT_ACTIVE: &str = "not_active";
/// `UsageSkipped.reason`: the line's stake generation differs from the record's.
pub const SKIP_GENERATION: &str = "generation";
/// `UsageSkipped.reason`: the user has no escrow account.
pub const SKIP_NO_ACCOUNT: &str = "no_account";

pub const PERMISSION_USER: &str = "namespace:own";
pub const PERMISSION_NODE: &str = "node:self";
pub const PERMISSION_ADMIN: &str = "cluster-admin";

/// A Move abort (or arithmetic error) of one of the package's functions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ContractError {
    // staking
    #[error("staking::EInsufficientStake (1): payment below the minimum stake for the role")]
    InsufficientStake,
    #[error("staking::EInvalidRole (2): role must be 0 (user), 1 (node) or 2 (admin)")]
    InvalidRole,
    #[error("staking::EMissingNodeId (3): a node stake needs a node id")]
    MissingNodeId,
    #[error("staking::ERoleMismatch (4): top-up with a different role or node id")]
    RoleMismatch,
    #[error("staking::ENoStake (5): no stake record for the address")]
    NoStake,
    #[error("staking::ENotActive (6): stake is not active")]
    NotActive,
    #[error("staking::EStillActive (7): request unstake before withdrawing")]
    StillActive,
    #[error("staking::ELocked (8): stake is still locked")]
    Locked,
    #[error("staking::EInvalidConfig (9): need min_user <= min_node <= min_admin and slash_bps <= 10000")]
    InvalidConfig,
    #[error(
        "staking::EBadReport (10): slashing report not signed by a current registered enclave"
    )]
    BadReport,
    #[error("staking::EAlreadySlashed (11): already slashed in this epoch")]
    AlreadySlashed,
    #[error("staking::ENodeIdTaken (12): another address holds a stake for this node id")]
    NodeIdTaken,
    #[error(
        "staking::EStaleReport (13): slashing report does not match the stake's node id, generation or slash count"
    )]
    StaleReport,
    #[error("staking::EInsufficientTreasury (14): amount above the slashed balance (treasury)")]
    InsufficientTreasury,
    // k8s_gateway
    #[error("k8s_gateway::ENoActiveStake (101): sender has no active stake")]
    NoActiveStake,
    #[error("k8s_gateway::ENotOwner (102): only the token owner may revoke it")]
    NotOwner,
    #[error("k8s_gateway::EInvalidTtl (103): token ttl must be positive")]
    InvalidTtl,
    // enclave
    #[error("enclave::EInvalidPCRs (201): attested PCRs differ from the enclave config")]
    InvalidPcrs,
    #[error("enclave::EInvalidPK (202): attestation carries no 32-byte Ed25519 public key")]
    InvalidPk,
    #[error("enclave::EStaleEnclave (203): enclave is not current for the enclave config")]
    StaleEnclave,
    #[error("enclave::EBadAnchor (204): state anchor not signed by the enclave")]
    BadAnchor,
    #[error("enclave::ERevisionRollback (205): revision is below the anchored revision")]
    RevisionRollback,
    #[error("enclave::EInvalidPlatform (206): unknown TEE platform, or the evidence is for another platform")]
    InvalidPlatform,
    // economy
    #[error("economy::EInsufficientBalance (301): amount above the balance")]
    InsufficientBalance,
    #[error("economy::EBadUsageReport (302): usage report not signed by the enclave")]
    BadUsageReport,
    #[error("economy::EReplayedReport (303): period is not after the last settled period")]
    ReplayedReport,
    #[error("economy::EStaleEnclave (304): enclave is not current for the enclave config")]
    StaleUsageEnclave,
    #[error("economy::EOverflow (305): amount overflows u64")]
    Overflow,
    #[error("economy::EZeroAmount (306): amount must be positive")]
    ZeroAmount,
    #[error("economy::ENoAccount (307): no escrow account for the address")]
    NoAccount,
    #[error("economy::ENoEarnings (308): no earnings record for the address")]
    NoEarnings,
    #[error("economy::ELengthMismatch (309): usage report vectors differ in length")]
    LengthMismatch,
    // sui::nitro_attestation natives
    #[error(
        "nitro_attestation::ENotSupported (0): no attestation verifier configured in this ledger"
    )]
    AttestationUnsupported,
    #[error("nitro_attestation::EVerifyError (2): {0}")]
    AttestationInvalid(String),
    /// Integer overflow/underflow (Move `ArithmeticError`, not an abort code).
    #[error("{module}: arithmetic error")]
    Arithmetic { module: String },
}

impl ContractError {
    /// The Move module that aborted.
    pub fn module(&self) -> &str {
        use ContractError::*;
        match self {
            InsufficientStake | InvalidRole | MissingNodeId | RoleMismatch | NoStake
            | NotActive | StillActive | Locked | InvalidConfig | BadReport | AlreadySlashed
            | NodeIdTaken | StaleReport | InsufficientTreasury => MODULE_STAKING,
            NoActiveStake | NotOwner | InvalidTtl => MODULE_GATEWAY,
            InvalidPcrs | InvalidPk | StaleEnclave | BadAnchor | RevisionRollback
            | InvalidPlatform => MODULE_ENCLAVE,
            InsufficientBalance | BadUsageReport | ReplayedReport | StaleUsageEnclave
            | Overflow | ZeroAmount | NoAccount | NoEarnings | LengthMismatch => MODULE_ECONOMY,
            AttestationUnsupported | AttestationInvalid(_) => MODULE_NITRO,
            Arithmetic { module } => module,
        }
    }

    /// The Move abort code; `None` for an arithmetic error.
    pub fn code(&self) -> Option<u64> {
        use ContractError::*;
        Some(match self {
            InsufficientStake => 1,
            InvalidRole => 2,
            MissingNodeId => 3,
            RoleMismatch => 4,
            NoStake => 5,
            NotActive => 6,
            StillActive => 7,
            Locked => 8,
            InvalidConfig => 9,
            BadReport => 10,
            AlreadySlashed => 11,
            NodeIdTaken => 12,
            StaleReport => 13,
            InsufficientTreasury => 14,
            InsufficientBalance => 301,
            BadUsageReport => 302,
            ReplayedReport => 303,
            StaleUsageEnclave => 304,
            Overflow => 305,
            ZeroAmount => 306,
            NoAccount => 307,
            NoEarnings => 308,
            LengthMismatch => 309,
            NoActiveStake => 101,
            NotOwner => 102,
            InvalidTtl => 103,
            InvalidPcrs => 201,
            InvalidPk => 202,
            StaleEnclave => 203,
            BadAnchor => 204,
            RevisionRollback => 205,
            InvalidPlatform => 206,
            AttestationUnsupported => 0,
            AttestationInvalid(_) => 2,
            Arithmetic { .. } => return None,
        })
    }

    /// The Move constant name of the abort code (`EInsufficientStake`, ...).
    pub fn name(&self) -> &'static str {
        use ContractError::*;
        match self {
            InsufficientStake => "EInsufficientStake",
            InvalidRole => "EInvalidRole",
            MissingNodeId => "EMissingNodeId",
            RoleMismatch => "ERoleMismatch",
            NoStake => "ENoStake",
            NotActive => "ENotActive",
            StillActive => "EStillActive",
            Locked => "ELocked",
            InvalidConfig => "EInvalidConfig",
            BadReport => "EBadReport",
            AlreadySlashed => "EAlreadySlashed",
            NodeIdTaken => "ENodeIdTaken",
            StaleReport => "EStaleReport",
            InsufficientTreasury => "EInsufficientTreasury",
            InsufficientBalance => "EInsufficientBalance",
            BadUsageReport => "EBadUsageReport",
            ReplayedReport => "EReplayedReport",
            StaleUsageEnclave => "EStaleEnclave",
            Overflow => "EOverflow",
            ZeroAmount => "EZeroAmount",
            NoAccount => "ENoAccount",
            NoEarnings => "ENoEarnings",
            LengthMismatch => "ELengthMismatch",
            NoActiveStake => "ENoActiveStake",
            NotOwner => "ENotOwner",
            InvalidTtl => "EInvalidTtl",
            InvalidPcrs => "EInvalidPCRs",
            InvalidPk => "EInvalidPK",
            StaleEnclave => "EStaleEnclave",
            BadAnchor => "EBadAnchor",
            RevisionRollback => "ERevisionRollback",
            InvalidPlatform => "EInvalidPlatform",
            AttestationUnsupported => "ENotSupported",
            AttestationInvalid(_) => "EVerifyError",
            Arithmetic { .. } => "ArithmeticError",
        }
    }
}

fn arith(module: &str) -> ContractError {
    ContractError::Arithmetic {
        module: module.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

/// `sui::coin::Coin<SUI>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coin {
    pub id: ObjectId,
    pub value: u64,
}

/// `staking::AdminCap`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminCap {
    pub id: ObjectId,
}

/// `staking::StakeRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakeRecord {
    pub staker: Address,
    pub role: u8,
    pub node_id: String,
    pub amount: u64,
    pub staked_epoch: u64,
    pub status: u8,
    pub unlock_epoch: u64,
    pub generation: u64,
    /// Sum of the penalties taken from this record (kept across re-stakes).
    pub slashed_total: u64,
    /// Epoch of the last slash, 0 if never slashed (kept across re-stakes).
    pub slashed_epoch: u64,
    /// Number of slashes taken (kept across re-stakes): the nonce the next slash report must carry.
    pub slash_count: u64,
}

impl StakeRecord {
    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }
}

/// `staking::StakingPool`. `staked` and `slashed` are the values of the pool's `Balance<SUI>`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakingPool {
    pub id: ObjectId,
    pub min_user_stake: u64,
    pub min_node_stake: u64,
    pub min_admin_stake: u64,
    pub lockup_epochs: u64,
    pub slash_bps: u64,
    pub total_staked: u64,
    pub staked: u64,
    pub slashed: u64,
    pub stakes: BTreeMap<Address, StakeRecord>,
    /// `node_owners: Table<String, address>`: node id -> the address whose record holds it.
    pub node_owners: BTreeMap<String, Address>,
}

/// `k8s_gateway::Gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gateway {
    pub id: ObjectId,
    pub master_endpoint: String,
    pub token_ttl_epochs: u64,
    pub tokens_issued: u64,
}

/// `k8s_gateway::SealToken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealToken {
    pub id: ObjectId,
    pub owner: Address,
    pub role: u8,
    pub node_id: String,
    pub permissions: Vec<String>,
    pub stake_generation: u64,
    pub issued_epoch: u64,
    pub expiry_epoch: u64,
    pub master_endpoint: String,
}

/// `enclave::EnclaveConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnclaveConfig {
    pub id: ObjectId,
    pub name: String,
    pub pcr0: Vec<u8>,
    pub pcr1: Vec<u8>,
    pub pcr2: Vec<u8>,
    pub version: u64,
    /// Highest store revision the cluster's enclave anchored (`anchor_state`), 0 if none.
    pub anchored_revision: u64,
    /// Enclave timestamp of the last anchor (ms since the Unix epoch), 0 if none.
    pub anchored_at_ms: u64,
}

/// `enclave::Enclave`. `config_id` is the `EnclaveConfig` it was registered against; `slash`
/// refuses it unless it is current for the config passed in (see [`is_current`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclave {
    pub id: ObjectId,
    pub pk: Vec<u8>,
    pub config_version: u64,
    pub owner: Address,
    pub config_id: ObjectId,
    /// TEE platform: [`PLATFORM_NITRO`], [`PLATFORM_SEV_SNP`] or [`PLATFORM_TDX`]. Objects
    /// written before the field existed are Nitro.
    #[serde(default)]
    pub platform: u8,
}

/// `enclave::PLATFORM_NITRO`: AWS Nitro Enclaves (PCR0..2 = the config's pcr0..2).
pub const PLATFORM_NITRO: u8 = 0;
/// `enclave::PLATFORM_SEV_SNP`: AMD SEV-SNP (MEASUREMENT = pcr0; pcr1, pcr2 empty).
pub const PLATFORM_SEV_SNP: u8 = 1;
/// `enclave::PLATFORM_TDX`: Intel TDX (MRTD = pcr0, RTMR0 = pcr1, RTMR1 = pcr2).
pub const PLATFORM_TDX: u8 = 2;

/// What an attestation verifier extracts from valid evidence (a Nitro attestation document, an
/// SEV-SNP report or a TDX quote), with the platform's registers mapped onto pcr0..2 as the
/// `PLATFORM_*` constants say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttestedEnclave {
    pub pcr0: Vec<u8>,
    pub pcr1: Vec<u8>,
    pub pcr2: Vec<u8>,
    /// The document's `public_key` field (empty when absent); on SEV-SNP / TDX the first 32
    /// bytes of the report data.
    pub public_key: Vec<u8>,
    /// The platform the evidence was verified as.
    pub platform: u8,
}

/// Native verification of attestation evidence (Nitro: COSE_Sign1/ES384, certificate chain to a
/// pinned root) at the ledger's clock. Injected into the embedded ledger.
pub trait AttestationVerifier: Send + Sync {
    fn verify(&self, document: &[u8], now_ms: u64) -> Result<AttestedEnclave, String>;

    /// Verify `evidence` of `platform` (a `PLATFORM_*` code). The default knows Nitro only.
    fn verify_platform(
        &self,
        platform: u8,
        evidence: &[u8],
        now_ms: u64,
    ) -> Result<AttestedEnclave, String> {
        if platform == PLATFORM_NITRO {
            self.verify(evidence, now_ms)
        } else {
            Err(format!(
                "platform {platform} not supported by this verifier"
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Staked {
        staker: Address,
        role: u8,
        node_id: String,
        amount: u64,
        total: u64,
        generation: u64,
    },
    UnstakeRequested {
        staker: Address,
        unlock_epoch: u64,
    },
    Withdrawn {
        staker: Address,
        amount: u64,
    },
    Slashed {
        staker: Address,
        penalty: u64,
        remaining: u64,
        reason: String,
        epoch: u64,
    },
    SealTokenIssued {
        token_id: ObjectId,
        owner: Address,
        role: u8,
        node_id: String,
        expiry_epoch: u64,
    },
    SealTokenRevoked {
        token_id: ObjectId,
        owner: Address,
    },
    EnclaveRegistered {
        enclave_id: ObjectId,
        pk: Vec<u8>,
        config_version: u64,
    },
    StateAnchored {
        config_id: ObjectId,
        revision: u64,
        timestamp_ms: u64,
    },
    // staking (treasury)
    TreasuryWithdrawn {
        recipient: Address,
        amount: u64,
        remaining: u64,
    },
    // economy
    Deposited {
        user: Address,
        amount: u64,
        balance: u64,
    },
    EscrowWithdrawn {
        user: Address,
        amount: u64,
        balance: u64,
    },
    EarningsWithdrawn {
        operator: Address,
        amount: u64,
        balance: u64,
    },
    PricesSet {
        price_cpu: u64,
        price_mem: u64,
        price_pod: u64,
    },
    Charged {
        period: u64,
        user: Address,
        node_id: String,
        operator: Address,
        cost: u64,
        charged: u64,
    },
    UsageSkipped {
        period: u64,
        user: Address,
        node_id: String,
        reason: String,
    },
    Settled {
        period: u64,
        lines: u64,
        charged_total: u64,
        epoch: u64,
    },
}

impl Event {
    /// Module that defines the event struct.
    pub fn module(&self) -> &'static str {
        match self {
            Event::Staked { .. }
            | Event::UnstakeRequested { .. }
            | Event::Withdrawn { .. }
            | Event::Slashed { .. }
            | Event::TreasuryWithdrawn { .. } => MODULE_STAKING,
            Event::SealTokenIssued { .. } | Event::SealTokenRevoked { .. } => MODULE_GATEWAY,
            Event::EnclaveRegistered { .. } | Event::StateAnchored { .. } => MODULE_ENCLAVE,
            Event::Deposited { .. }
            | Event::EscrowWithdrawn { .. }
            | Event::EarningsWithdrawn { .. }
            | Event::PricesSet { .. }
            | Event::Charged { .. }
            | Event::UsageSkipped { .. }
            | Event::Settled { .. } => MODULE_ECONOMY,
        }
    }

    /// Move struct name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Staked { .. } => "Staked",
            Event::UnstakeRequested { .. } => "UnstakeRequested",
            Event::Withdrawn { .. } => "Withdrawn",
            Event::Slashed { .. } => "Slashed",
            Event::SealTokenIssued { .. } => "SealTokenIssued",
            Event::SealTokenRevoked { .. } => "SealTokenRevoked",
            Event::EnclaveRegistered { .. } => "EnclaveRegistered",
            Event::StateAnchored { .. } => "StateAnchored",
            Event::TreasuryWithdrawn { .. } => "TreasuryWithdrawn",
            Event::Deposited { .. } => "Deposited",
            Event::EscrowWithdrawn { .. } => "EscrowWithdrawn",
            Event::EarningsWithdrawn { .. } => "EarningsWithdrawn",
            Event::PricesSet { .. } => "PricesSet",
            Event::Charged { .. } => "Charged",
            Event::UsageSkipped { .. } => "UsageSkipped",
            Event::Settled { .. } => "Settled",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transaction context

/// An object produced by a function, with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewObject {
    /// `transfer::transfer` / `public_transfer` to an address.
    Transferred {
        object: ContractObject,
        recipient: Address,
    },
    /// `transfer::share_object`.
    Shared(ContractObject),
}

/// Objects created by the package (plus the SUI coin it pays out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContractObject {
    Coin(Coin),
    AdminCap(AdminCap),
    StakingPool(StakingPool),
    Gateway(Gateway),
    SealToken(SealToken),
    EnclaveConfig(EnclaveConfig),
    Enclave(Enclave),
    Market(Market),
}

impl ContractObject {
    pub fn id(&self) -> ObjectId {
        match self {
            ContractObject::Coin(o) => o.id,
            ContractObject::AdminCap(o) => o.id,
            ContractObject::StakingPool(o) => o.id,
            ContractObject::Gateway(o) => o.id,
            ContractObject::SealToken(o) => o.id,
            ContractObject::EnclaveConfig(o) => o.id,
            ContractObject::Enclave(o) => o.id,
            ContractObject::Market(o) => o.id,
        }
    }
}

/// `sui::tx_context::TxContext` plus the side effects recorded by the functions.
#[derive(Debug, Clone)]
pub struct TxContext {
    pub sender: Address,
    pub epoch: u64,
    /// Wall-clock time of the ledger (for attestation validity), ms since the Unix epoch.
    pub now_ms: u64,
    pub digest: Digest,
    ids_created: u64,
    pub events: Vec<Event>,
    pub new_objects: Vec<NewObject>,
    /// Ids of objects the functions destroyed (`object::delete`, `coin::put`).
    pub deleted: Vec<ObjectId>,
}

impl TxContext {
    pub fn new(sender: Address, epoch: u64, now_ms: u64, digest: Digest) -> Self {
        TxContext {
            sender,
            epoch,
            now_ms,
            digest,
            ids_created: 0,
            events: Vec::new(),
            new_objects: Vec::new(),
            deleted: Vec::new(),
        }
    }

    /// `object::new`: ids derived from the transaction digest and a creation counter.
    pub fn fresh_id(&mut self) -> ObjectId {
        let mut h = sui_sdk_types::hash::Hasher::new();
        h.update([0xf1u8]);
        h.update(self.digest.inner());
        h.update(self.ids_created.to_le_bytes());
        self.ids_created += 1;
        Address::new(h.finalize().into_inner())
    }

    pub fn ids_created(&self) -> u64 {
        self.ids_created
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.events.push(event);
    }

    pub(crate) fn transfer(&mut self, object: ContractObject, recipient: Address) {
        self.new_objects
            .push(NewObject::Transferred { object, recipient });
    }

    pub(crate) fn share(&mut self, object: ContractObject) {
        self.new_objects.push(NewObject::Shared(object));
    }
}

// ---------------------------------------------------------------------------------------------
// staking

/// `staking::init`: the AdminCap (to the publisher) and the shared pool with default config.
pub fn staking_init(ctx: &mut TxContext) -> (AdminCap, StakingPool) {
    let cap = AdminCap { id: ctx.fresh_id() };
    let pool = StakingPool {
        id: ctx.fresh_id(),
        min_user_stake: DEFAULT_MIN_USER_STAKE,
        min_node_stake: DEFAULT_MIN_NODE_STAKE,
        min_admin_stake: DEFAULT_MIN_ADMIN_STAKE,
        lockup_epochs: DEFAULT_LOCKUP_EPOCHS,
        slash_bps: DEFAULT_SLASH_BPS,
        total_staked: 0,
        staked: 0,
        slashed: 0,
        stakes: BTreeMap::new(),
        node_owners: BTreeMap::new(),
    };
    (cap, pool)
}

/// `staking::min_stake` (aborts with `EInvalidRole` for an unknown role).
pub fn min_stake(pool: &StakingPool, role: u8) -> Result<u64, ContractError> {
    match role {
        ROLE_USER => Ok(pool.min_user_stake),
        ROLE_NODE => Ok(pool.min_node_stake),
        ROLE_ADMIN => Ok(pool.min_admin_stake),
        _ => Err(ContractError::InvalidRole),
    }
}

/// `staking::stake`. Consumes `payment` (its id is recorded as deleted).
pub fn stake(
    pool: &mut StakingPool,
    payment: Coin,
    role: u8,
    node_id: String,
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    let minimum = min_stake(pool, role)?;
    if role == ROLE_NODE && node_id.is_empty() {
        return Err(ContractError::MissingNodeId);
    }
    let staker = ctx.sender;
    if role == ROLE_NODE && pool.node_owners.get(&node_id).is_some_and(|a| *a != staker) {
        return Err(ContractError::NodeIdTaken);
    }
    let value = payment.value;
    let epoch = ctx.epoch;
    let new_total_staked = pool
        .total_staked
        .checked_add(value)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let new_staked = pool
        .staked
        .checked_add(value)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let record = match pool.stakes.get(&staker) {
        None => {
            if value < minimum {
                return Err(ContractError::InsufficientStake);
            }
            StakeRecord {
                staker,
                role,
                node_id,
                amount: value,
                staked_epoch: epoch,
                status: STATUS_ACTIVE,
                unlock_epoch: 0,
                generation: 1,
                slashed_total: 0,
                slashed_epoch: 0,
                slash_count: 0,
            }
        }
        Some(existing) if existing.status == STATUS_ACTIVE => {
            if existing.role != role || (role == ROLE_NODE && existing.node_id != node_id) {
                return Err(ContractError::RoleMismatch);
            }
            let amount = existing
                .amount
                .checked_add(value)
                .ok_or_else(|| arith(MODULE_STAKING))?;
            if amount < minimum {
                return Err(ContractError::InsufficientStake);
            }
            StakeRecord {
                amount,
                ..existing.clone()
            }
        }
        Some(existing) => {
            let amount = existing
                .amount
                .checked_add(value)
                .ok_or_else(|| arith(MODULE_STAKING))?;
            if amount < minimum {
                return Err(ContractError::InsufficientStake);
            }
            let generation = existing
                .generation
                .checked_add(1)
                .ok_or_else(|| arith(MODULE_STAKING))?;
            StakeRecord {
                staker,
                role,
                node_id,
                amount,
                staked_epoch: epoch,
                status: STATUS_ACTIVE,
                unlock_epoch: 0,
                generation,
                slashed_total: existing.slashed_total,
                slashed_epoch: existing.slashed_epoch,
                slash_count: existing.slash_count,
            }
        }
    };
    // Index: release the previous node id of a re-staked record, claim the record's node id.
    if let Some(previous) = pool.stakes.get(&staker) {
        if previous.role == ROLE_NODE
            && (record.role != ROLE_NODE || previous.node_id != record.node_id)
        {
            pool.node_owners.remove(&previous.node_id);
        }
    }
    if record.role == ROLE_NODE {
        pool.node_owners
            .entry(record.node_id.clone())
            .or_insert(staker);
    }
    pool.total_staked = new_total_staked;
    pool.staked = new_staked;
    ctx.deleted.push(payment.id);
    ctx.emit(Event::Staked {
        staker,
        role: record.role,
        node_id: record.node_id.clone(),
        amount: value,
        total: record.amount,
        generation: record.generation,
    });
    pool.stakes.insert(staker, record);
    Ok(())
}

/// `staking::request_unstake`.
pub fn request_unstake(pool: &mut StakingPool, ctx: &mut TxContext) -> Result<(), ContractError> {
    let lockup = pool.lockup_epochs;
    let record = pool
        .stakes
        .get_mut(&ctx.sender)
        .ok_or(ContractError::NoStake)?;
    if record.status != STATUS_ACTIVE {
        return Err(ContractError::NotActive);
    }
    let unlock_epoch = ctx
        .epoch
        .checked_add(lockup)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    record.status = STATUS_UNBONDING;
    record.unlock_epoch = unlock_epoch;
    let staker = ctx.sender;
    ctx.emit(Event::UnstakeRequested {
        staker,
        unlock_epoch,
    });
    Ok(())
}

/// `staking::withdraw`: removes the record and pays the remaining amount out as a new coin.
pub fn withdraw(pool: &mut StakingPool, ctx: &mut TxContext) -> Result<(), ContractError> {
    let staker = ctx.sender;
    let record = pool.stakes.get(&staker).ok_or(ContractError::NoStake)?;
    if record.status == STATUS_ACTIVE {
        return Err(ContractError::StillActive);
    }
    if ctx.epoch < record.unlock_epoch {
        return Err(ContractError::Locked);
    }
    let amount = record.amount;
    let total_staked = pool
        .total_staked
        .checked_sub(amount)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let staked = pool
        .staked
        .checked_sub(amount)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    if record.role == ROLE_NODE {
        let node_id = record.node_id.clone();
        pool.node_owners.remove(&node_id);
    }
    pool.stakes.remove(&staker);
    pool.total_staked = total_staked;
    pool.staked = staked;
    let coin = Coin {
        id: ctx.fresh_id(),
        value: amount,
    };
    ctx.transfer(ContractObject::Coin(coin), staker);
    ctx.emit(Event::Withdrawn { staker, amount });
    Ok(())
}

/// `staking::set_config`.
#[allow(clippy::too_many_arguments)]
pub fn set_config(
    _cap: &AdminCap,
    pool: &mut StakingPool,
    min_user: u64,
    min_node: u64,
    min_admin: u64,
    lockup_epochs: u64,
    slash_bps: u64,
) -> Result<(), ContractError> {
    if !(min_user <= min_node && min_node <= min_admin && slash_bps <= BPS_DENOMINATOR) {
        return Err(ContractError::InvalidConfig);
    }
    pool.min_user_stake = min_user;
    pool.min_node_stake = min_node;
    pool.min_admin_stake = min_admin;
    pool.lockup_epochs = lockup_epochs;
    pool.slash_bps = slash_bps;
    Ok(())
}

/// `SlashReport { node, node_id, generation, nonce, reason, epoch }` signed by the enclave: it
/// names the stake (address, node id, generation) and is single-use (`nonce` = the record's
/// `slash_count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlashReport {
    pub node: Address,
    pub node_id: String,
    pub generation: u64,
    pub nonce: u64,
    pub reason: String,
    pub epoch: u64,
}

impl SlashReport {
    /// The report that slashes `record` (held by `node`) once, in `epoch`.
    pub fn for_record(node: Address, record: &StakeRecord, reason: &str, epoch: u64) -> Self {
        SlashReport {
            node,
            node_id: record.node_id.clone(),
            generation: record.generation,
            nonce: record.slash_count,
            reason: reason.to_string(),
            epoch,
        }
    }
}

/// `enclave::StateAnchor { config_id, revision }` signed by the enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateAnchor {
    pub config_id: ObjectId,
    pub revision: u64,
}

/// Nautilus `IntentMessage<T> { intent: u8, timestamp_ms: u64, data: T }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentMessage<T> {
    pub intent: u8,
    pub timestamp_ms: u64,
    pub data: T,
}

/// The bytes an enclave signs for a slashing report.
pub fn slash_report_message(report: &SlashReport, timestamp_ms: u64) -> Vec<u8> {
    let msg = IntentMessage {
        intent: SLASH_INTENT,
        timestamp_ms,
        data: report,
    };
    // BCS of plain structs of primitives and strings cannot fail.
    bcs::to_bytes(&msg).unwrap_or_default()
}

/// The bytes an enclave signs to anchor store revision `revision` on the config `config_id`.
pub fn state_anchor_message(config_id: ObjectId, revision: u64, timestamp_ms: u64) -> Vec<u8> {
    let msg = IntentMessage {
        intent: STATE_ANCHOR_INTENT,
        timestamp_ms,
        data: StateAnchor {
            config_id,
            revision,
        },
    };
    bcs::to_bytes(&msg).unwrap_or_default()
}

/// `staking::slash(pool, config, enclave, node, node_id, generation, nonce, reason,
/// timestamp_ms, signature)`.
///
/// `EBadReport` unless the enclave is current for `config` ([`is_current`]) and `signature` is
/// its signature over the report for the current epoch; these checks come before `ENoStake`,
/// `EStaleReport` (the report's node id, generation or nonce differs from the record's node id,
/// generation or slash count) and `EAlreadySlashed` (a record still Slashed from this very
/// epoch). Active and Unbonding records can be slashed.
#[allow(clippy::too_many_arguments)]
pub fn slash(
    pool: &mut StakingPool,
    config: &EnclaveConfig,
    enclave: &Enclave,
    node: Address,
    node_id: String,
    generation: u64,
    nonce: u64,
    reason: String,
    timestamp_ms: u64,
    signature: &[u8],
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    if !is_current(enclave, config) {
        return Err(ContractError::BadReport);
    }
    let report = SlashReport {
        node,
        node_id,
        generation,
        nonce,
        reason: reason.clone(),
        epoch: ctx.epoch,
    };
    if !verify_signature(enclave, SLASH_INTENT, timestamp_ms, &report, signature) {
        return Err(ContractError::BadReport);
    }
    let lockup = pool.lockup_epochs;
    let slash_bps = pool.slash_bps;
    let record = pool.stakes.get(&node).ok_or(ContractError::NoStake)?;
    if record.node_id != report.node_id
        || record.generation != report.generation
        || record.slash_count != report.nonce
    {
        return Err(ContractError::StaleReport);
    }
    if record.status == STATUS_SLASHED && record.slashed_epoch == ctx.epoch {
        return Err(ContractError::AlreadySlashed);
    }
    let penalty = ((record.amount as u128 * slash_bps as u128) / BPS_DENOMINATOR as u128) as u64;
    let unlock_epoch = ctx
        .epoch
        .checked_add(lockup)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let remaining = record.amount - penalty;
    let slashed_total = record
        .slashed_total
        .checked_add(penalty)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let total_staked = pool
        .total_staked
        .checked_sub(penalty)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let staked = pool
        .staked
        .checked_sub(penalty)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let slash_count = record
        .slash_count
        .checked_add(1)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    let slashed = pool
        .slashed
        .checked_add(penalty)
        .ok_or_else(|| arith(MODULE_STAKING))?;
    pool.total_staked = total_staked;
    pool.staked = staked;
    pool.slashed = slashed;
    if let Some(record) = pool.stakes.get_mut(&node) {
        record.amount = remaining;
        record.slashed_total = slashed_total;
        record.status = STATUS_SLASHED;
        record.unlock_epoch = unlock_epoch;
        record.slashed_epoch = ctx.epoch;
        record.slash_count = slash_count;
    }
    ctx.emit(Event::Slashed {
        staker: node,
        penalty,
        remaining,
        reason,
        epoch: ctx.epoch,
    });
    Ok(())
}

/// `staking::withdraw_treasury(admin_cap, pool, amount)`: pays `amount` of the slashed stake (the
/// treasury) to the sender as a new coin. `EInsufficientTreasury` if `amount` exceeds it.
pub fn withdraw_treasury(
    _cap: &AdminCap,
    pool: &mut StakingPool,
    amount: u64,
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    if amount > pool.slashed {
        return Err(ContractError::InsufficientTreasury);
    }
    pool.slashed -= amount;
    let recipient = ctx.sender;
    let coin = Coin {
        id: ctx.fresh_id(),
        value: amount,
    };
    ctx.transfer(ContractObject::Coin(coin), recipient);
    ctx.emit(Event::TreasuryWithdrawn {
        recipient,
        amount,
        remaining: pool.slashed,
    });
    Ok(())
}

pub fn stake_amount(pool: &StakingPool, addr: &Address) -> u64 {
    pool.stakes.get(addr).map_or(0, |r| r.amount)
}

pub fn stake_status(pool: &StakingPool, addr: &Address) -> u8 {
    pool.stakes.get(addr).map_or(STATUS_NONE, |r| r.status)
}

/// 0 when there is no record.
pub fn stake_generation(pool: &StakingPool, addr: &Address) -> u64 {
    pool.stakes.get(addr).map_or(0, |r| r.generation)
}

/// 255 when there is no record.
pub fn stake_role(pool: &StakingPool, addr: &Address) -> u8 {
    pool.stakes.get(addr).map_or(STATUS_NONE, |r| r.role)
}

pub fn is_active(pool: &StakingPool, addr: &Address) -> bool {
    pool.stakes
        .get(addr)
        .is_some_and(|r| r.status == STATUS_ACTIVE)
}

pub fn total_staked(pool: &StakingPool) -> u64 {
    pool.total_staked
}

/// `staking::node_owner`: the address whose record holds `node_id`.
pub fn node_owner(pool: &StakingPool, node_id: &str) -> Option<Address> {
    pool.node_owners.get(node_id).copied()
}

/// `node_owner` plus that address's record.
pub fn node_stake(pool: &StakingPool, node_id: &str) -> Option<(Address, StakeRecord)> {
    let owner = node_owner(pool, node_id)?;
    pool.stakes.get(&owner).map(|r| (owner, r.clone()))
}

// ---------------------------------------------------------------------------------------------
// k8s_gateway

/// `k8s_gateway::init`: the shared gateway.
pub fn gateway_init(master_endpoint: String, ctx: &mut TxContext) -> Gateway {
    Gateway {
        id: ctx.fresh_id(),
        master_endpoint,
        token_ttl_epochs: DEFAULT_TOKEN_TTL_EPOCHS,
        tokens_issued: 0,
    }
}

/// Permissions a seal token grants per role.
pub fn permissions_for_role(role: u8) -> Vec<String> {
    match role {
        ROLE_USER => vec![PERMISSION_USER.to_string()],
        ROLE_NODE => vec![PERMISSION_NODE.to_string()],
        ROLE_ADMIN => vec![PERMISSION_ADMIN.to_string()],
        _ => Vec::new(),
    }
}

/// `k8s_gateway::issue_seal_token`: a new token owned by (transferred to) the sender.
pub fn issue_seal_token(
    gateway: &mut Gateway,
    pool: &StakingPool,
    ctx: &mut TxContext,
) -> Result<ObjectId, ContractError> {
    let owner = ctx.sender;
    let record = match pool.stakes.get(&owner) {
        Some(r) if r.status == STATUS_ACTIVE => r,
        _ => return Err(ContractError::NoActiveStake),
    };
    let expiry_epoch = ctx
        .epoch
        .checked_add(gateway.token_ttl_epochs)
        .ok_or_else(|| arith(MODULE_GATEWAY))?;
    let tokens_issued = gateway
        .tokens_issued
        .checked_add(1)
        .ok_or_else(|| arith(MODULE_GATEWAY))?;
    let token = SealToken {
        id: ctx.fresh_id(),
        owner,
        role: record.role,
        node_id: record.node_id.clone(),
        permissions: permissions_for_role(record.role),
        stake_generation: record.generation,
        issued_epoch: ctx.epoch,
        expiry_epoch,
        master_endpoint: gateway.master_endpoint.clone(),
    };
    gateway.tokens_issued = tokens_issued;
    let token_id = token.id;
    ctx.emit(Event::SealTokenIssued {
        token_id,
        owner,
        role: token.role,
        node_id: token.node_id.clone(),
        expiry_epoch,
    });
    ctx.transfer(ContractObject::SealToken(token), owner);
    Ok(token_id)
}

/// `k8s_gateway::revoke_seal_token`: deletes the token.
pub fn revoke_seal_token(token: SealToken, ctx: &mut TxContext) -> Result<(), ContractError> {
    if ctx.sender != token.owner {
        return Err(ContractError::NotOwner);
    }
    ctx.deleted.push(token.id);
    ctx.emit(Event::SealTokenRevoked {
        token_id: token.id,
        owner: token.owner,
    });
    Ok(())
}

/// `k8s_gateway::set_gateway`.
pub fn set_gateway(
    _cap: &AdminCap,
    gateway: &mut Gateway,
    master_endpoint: String,
    token_ttl_epochs: u64,
) -> Result<(), ContractError> {
    if token_ttl_epochs == 0 {
        return Err(ContractError::InvalidTtl);
    }
    gateway.master_endpoint = master_endpoint;
    gateway.token_ttl_epochs = token_ttl_epochs;
    Ok(())
}

/// `k8s_gateway::is_valid`.
pub fn is_valid(token: &SealToken, pool: &StakingPool, epoch: u64) -> bool {
    epoch <= token.expiry_epoch
        && pool
            .stakes
            .get(&token.owner)
            .is_some_and(|r| r.status == STATUS_ACTIVE && r.generation == token.stake_generation)
}

// ---------------------------------------------------------------------------------------------
// enclave

/// `staking::create_enclave_config` (in `staking` to keep the Move module graph acyclic): shares
/// a new `enclave::EnclaveConfig` (version 0).
pub fn create_enclave_config(
    _cap: &AdminCap,
    name: String,
    pcr0: Vec<u8>,
    pcr1: Vec<u8>,
    pcr2: Vec<u8>,
    ctx: &mut TxContext,
) -> ObjectId {
    let config = EnclaveConfig {
        id: ctx.fresh_id(),
        name,
        pcr0,
        pcr1,
        pcr2,
        version: 0,
        anchored_revision: 0,
        anchored_at_ms: 0,
    };
    let id = config.id;
    ctx.share(ContractObject::EnclaveConfig(config));
    id
}

/// `staking::update_pcrs` (in `staking` to keep the Move module graph acyclic; the version
/// increment happens in the package-internal `enclave::set_pcrs`, hence the arithmetic-error
/// module): version += 1, making enclaves registered earlier stale.
pub fn update_pcrs(
    _cap: &AdminCap,
    config: &mut EnclaveConfig,
    pcr0: Vec<u8>,
    pcr1: Vec<u8>,
    pcr2: Vec<u8>,
) -> Result<(), ContractError> {
    config.version = config
        .version
        .checked_add(1)
        .ok_or_else(|| arith(MODULE_ENCLAVE))?;
    config.pcr0 = pcr0;
    config.pcr1 = pcr1;
    config.pcr2 = pcr2;
    Ok(())
}

/// `enclave::register_enclave` given an already verified document.
pub fn register_enclave(
    config: &EnclaveConfig,
    document: &AttestedEnclave,
    ctx: &mut TxContext,
) -> Result<ObjectId, ContractError> {
    if document.pcr0 != config.pcr0 || document.pcr1 != config.pcr1 || document.pcr2 != config.pcr2
    {
        return Err(ContractError::InvalidPcrs);
    }
    if document.public_key.len() != Ed25519PublicKey::LENGTH {
        return Err(ContractError::InvalidPk);
    }
    let enclave = Enclave {
        id: ctx.fresh_id(),
        pk: document.public_key.clone(),
        config_version: config.version,
        owner: ctx.sender,
        config_id: config.id,
        platform: document.platform,
    };
    let id = enclave.id;
    ctx.emit(Event::EnclaveRegistered {
        enclave_id: id,
        pk: enclave.pk.clone(),
        config_version: enclave.config_version,
    });
    ctx.share(ContractObject::Enclave(enclave));
    Ok(id)
}

/// `enclave::register_enclave_raw`: native attestation verification at the ledger's clock, then
/// `register_enclave`.
pub fn register_enclave_raw(
    config: &EnclaveConfig,
    document: &[u8],
    verifier: Option<&dyn AttestationVerifier>,
    ctx: &mut TxContext,
) -> Result<ObjectId, ContractError> {
    let verifier = verifier.ok_or(ContractError::AttestationUnsupported)?;
    let attested = verifier
        .verify(document, ctx.now_ms)
        .map_err(ContractError::AttestationInvalid)?;
    if attested.platform != PLATFORM_NITRO {
        return Err(ContractError::InvalidPlatform);
    }
    register_enclave(config, &attested, ctx)
}

/// `enclave::register_enclave_platform_raw(config, platform, evidence)` (embedded ledger only):
/// native verification of `evidence` as `platform` at the ledger's clock, then
/// `register_enclave`. `EInvalidPlatform` for an unknown code or evidence verified as another
/// platform. On Sui, non-Nitro enclaves are registered by the admin after off-chain
/// verification (`staking::register_attested_enclave`, see SPEC.md).
pub fn register_enclave_platform_raw(
    config: &EnclaveConfig,
    platform: u8,
    evidence: &[u8],
    verifier: Option<&dyn AttestationVerifier>,
    ctx: &mut TxContext,
) -> Result<ObjectId, ContractError> {
    if platform > PLATFORM_TDX {
        return Err(ContractError::InvalidPlatform);
    }
    let verifier = verifier.ok_or(ContractError::AttestationUnsupported)?;
    let attested = verifier
        .verify_platform(platform, evidence, ctx.now_ms)
        .map_err(ContractError::AttestationInvalid)?;
    if attested.platform != platform {
        return Err(ContractError::InvalidPlatform);
    }
    register_enclave(config, &attested, ctx)
}

/// `staking::register_attested_enclave(cap, config, platform, pk)`: the admin registers an
/// enclave whose evidence it verified off chain (Sui has no SEV-SNP / TDX verifier). Checks the
/// platform code and the key length; the measurement check is the admin's.
pub fn register_attested_enclave(
    _cap: &AdminCap,
    config: &EnclaveConfig,
    platform: u8,
    pk: Vec<u8>,
    ctx: &mut TxContext,
) -> Result<ObjectId, ContractError> {
    if platform > PLATFORM_TDX {
        return Err(ContractError::InvalidPlatform);
    }
    let doc = AttestedEnclave {
        pcr0: config.pcr0.clone(),
        pcr1: config.pcr1.clone(),
        pcr2: config.pcr2.clone(),
        public_key: pk,
        platform,
    };
    register_enclave(config, &doc, ctx)
}

/// `enclave::anchor_state(config, enclave, revision, timestamp_ms, signature)`: records the
/// cluster's store revision on its config. `EStaleEnclave` unless the enclave is current for
/// `config`, `EBadAnchor` unless `signature` is the enclave's over
/// `IntentMessage { 2, timestamp_ms, StateAnchor { id(config), revision } }`,
/// `ERevisionRollback` if `revision` is below the anchored revision.
pub fn anchor_state(
    config: &mut EnclaveConfig,
    enclave: &Enclave,
    revision: u64,
    timestamp_ms: u64,
    signature: &[u8],
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    if !is_current(enclave, config) {
        return Err(ContractError::StaleEnclave);
    }
    let anchor = StateAnchor {
        config_id: config.id,
        revision,
    };
    if !verify_signature(
        enclave,
        STATE_ANCHOR_INTENT,
        timestamp_ms,
        &anchor,
        signature,
    ) {
        return Err(ContractError::BadAnchor);
    }
    if revision < config.anchored_revision {
        return Err(ContractError::RevisionRollback);
    }
    config.anchored_revision = revision;
    config.anchored_at_ms = timestamp_ms;
    ctx.emit(Event::StateAnchored {
        config_id: config.id,
        revision,
        timestamp_ms,
    });
    Ok(())
}

/// `enclave::is_current`: the enclave was registered against `config` (same id) under its current
/// version.
pub fn is_current(enclave: &Enclave, config: &EnclaveConfig) -> bool {
    enclave.config_id == config.id && enclave.config_version == config.version
}

/// `enclave::verify_signature`: Ed25519 over BCS(IntentMessage { intent, timestamp_ms, payload }).
pub fn verify_signature<P: Serialize>(
    enclave: &Enclave,
    intent_scope: u8,
    timestamp_ms: u64,
    payload: &P,
    signature: &[u8],
) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(enclave.pk.as_slice()) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = Ed25519VerifyingKey::new(&Ed25519PublicKey::new(pk)) else {
        return false;
    };
    let msg = IntentMessage {
        intent: intent_scope,
        timestamp_ms,
        data: payload,
    };
    let Ok(bytes) = bcs::to_bytes(&msg) else {
        return false;
    };
    key.verify(&bytes, &Ed25519Signature::new(sig)).is_ok()
}

pub use crate::economy::*;

#[cfg(test)]
#[path = "contract_tests.rs"]
mod tests;
