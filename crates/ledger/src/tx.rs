//! Offline building, signing and verification of the Sui programmable transactions K3s-DaaS
//! submits (contracts/SPEC.md, "Transactions as built by K3s-DaaS"), plus Sui personal-message
//! signatures used for seal-token credentials.
//!
//! Wire formats are exactly Sui's:
//! - `tx_bytes` = BCS of `TransactionData` (`enum { V1(TransactionDataV1) }`);
//! - transaction digest = `blake2b256("TransactionData::" || tx_bytes)` (Base58 when printed);
//! - signing message = `blake2b256([0, 0, 0] || tx_bytes)` (intent TransactionData, V0, Sui);
//! - personal message signing = `blake2b256([3, 0, 0] || bcs(vector<u8> message))`;
//! - a signature is the serialized `UserSignature`: `0x00 || ed25519 sig (64) || pubkey (32)`.

use base64::Engine as _;
use sui_crypto::ed25519::Ed25519VerifyingKey;
use sui_crypto::{Signer as _, SuiSigner as _, SuiVerifier as _};
use sui_sdk_types::{
    Address, Digest, GasPayment, Identifier, ObjectReference, PersonalMessage,
    ProgrammableTransaction, SimpleSignature, Transaction, TransactionKind, UserSignature,
};
use sui_transaction_builder::{Function, ObjectInput, TransactionBuilder};

use crate::contract::{SlashReport, UsageReport};
use crate::keys::SuiKeypair;

/// Sui's reference gas price on the embedded ledger (MIST per gas unit).
pub const REFERENCE_GAS_PRICE: u64 = 1000;
/// Default gas budget used by [`TxContext::new`] (MIST); above the embedded ledger's fixed fee
/// of 1000 × gas price.
pub const DEFAULT_GAS_BUDGET: u64 = 10_000_000;
/// Largest transaction accepted by [`verify`] (Sui's `max_tx_size_bytes`).
pub const MAX_TX_BYTES: usize = 128 * 1024;

/// Move module names of the k3s_daas package.
pub const MODULE_STAKING: &str = "staking";
pub const MODULE_GATEWAY: &str = "k8s_gateway";
pub const MODULE_ENCLAVE: &str = "enclave";
pub const MODULE_ECONOMY: &str = "economy";

/// Errors building, signing or verifying transactions and personal messages.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("malformed transaction: {0}")]
    Malformed(String),
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("expected exactly one signature (from the sender), got {0}")]
    SignatureCount(usize),
    #[error("signature is from {actual}, but the transaction sender is {expected}")]
    WrongSigner { expected: Address, actual: Address },
    #[error("invalid signature: {0}")]
    BadSignature(String),
    #[error("cannot build transaction: {0}")]
    Build(String),
    #[error("deployment has no {0}")]
    MissingObject(&'static str),
    #[error("invalid base64: {0}")]
    Base64(String),
}

/// A shared object as used in a transaction input: its id and the version at which it became shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedRef {
    pub id: Address,
    pub initial_shared_version: u64,
}

/// Where the k3s_daas package and its singleton objects live.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deployment {
    pub package: Address,
    /// `staking::StakingPool` (shared).
    pub pool: SharedRef,
    /// `k8s_gateway::Gateway` (shared).
    pub gateway: SharedRef,
    /// `staking::AdminCap` (owned by the publisher); needed for the admin transactions only.
    pub admin_cap: Option<ObjectReference>,
    /// `enclave::EnclaveConfig` (shared), once created.
    pub enclave_config: Option<SharedRef>,
    /// `economy::Market` (shared); `None` for a package published before the economy.
    #[serde(default)]
    pub market: Option<SharedRef>,
}

/// Sender and gas of a transaction to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxContext {
    pub sender: Address,
    /// Gas coins owned by the sender (the first is the gas coin `GasCoin` refers to).
    pub gas: Vec<ObjectReference>,
    pub gas_budget: u64,
    pub gas_price: u64,
}

impl TxContext {
    /// Sender and gas coins with [`DEFAULT_GAS_BUDGET`] and [`REFERENCE_GAS_PRICE`].
    pub fn new(sender: Address, gas: Vec<ObjectReference>) -> Self {
        Self {
            sender,
            gas,
            gas_budget: DEFAULT_GAS_BUDGET,
            gas_price: REFERENCE_GAS_PRICE,
        }
    }

    pub fn with_budget(mut self, gas_budget: u64) -> Self {
        self.gas_budget = gas_budget;
        self
    }

    pub fn with_price(mut self, gas_price: u64) -> Self {
        self.gas_price = gas_price;
        self
    }

    fn builder(&self) -> TransactionBuilder {
        let mut b = TransactionBuilder::new();
        b.set_sender(self.sender);
        b.set_gas_budget(self.gas_budget);
        b.set_gas_price(self.gas_price);
        b.add_gas_objects(
            self.gas
                .iter()
                .map(|r| ObjectInput::owned(*r.object_id(), r.version(), *r.digest())),
        );
        b
    }
}

// ---------------------------------------------------------------------------------------------
// Pure argument encodings (BCS per Move type)

/// BCS of a Move `u8`.
pub fn pure_u8(v: u8) -> Vec<u8> {
    vec![v]
}

/// BCS of a Move `u64` (little endian).
pub fn pure_u64(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// BCS of a Move `address` (32 bytes, no length prefix).
pub fn pure_address(a: &Address) -> Vec<u8> {
    a.as_bytes().to_vec()
}

/// BCS of a Move `vector<u8>` (ULEB128 length || bytes).
pub fn pure_bytes(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 5);
    let mut n = v.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(v);
    out
}

/// BCS of a Move `std::string::String` (= its UTF-8 `vector<u8>`).
pub fn pure_string(s: &str) -> Vec<u8> {
    pure_bytes(s.as_bytes())
}

fn call(package: Address, module: &'static str, function: &'static str) -> Function {
    Function::new(
        package,
        Identifier::from_static(module),
        Identifier::from_static(function),
    )
}

fn shared(
    b: &mut TransactionBuilder,
    r: &SharedRef,
    mutable: bool,
) -> sui_transaction_builder::Argument {
    b.object(ObjectInput::shared(r.id, r.initial_shared_version, mutable))
}

fn owned(b: &mut TransactionBuilder, r: &ObjectReference) -> sui_transaction_builder::Argument {
    b.object(ObjectInput::owned(*r.object_id(), r.version(), *r.digest()))
}

fn finish(b: TransactionBuilder) -> Result<Transaction, TxError> {
    b.try_build().map_err(|e| TxError::Build(e.to_string()))
}

fn admin_cap(d: &Deployment) -> Result<&ObjectReference, TxError> {
    d.admin_cap
        .as_ref()
        .ok_or(TxError::MissingObject("admin_cap"))
}

fn market(d: &Deployment) -> Result<&SharedRef, TxError> {
    d.market.as_ref().ok_or(TxError::MissingObject("market"))
}

fn enclave_config(d: &Deployment) -> Result<&SharedRef, TxError> {
    d.enclave_config
        .as_ref()
        .ok_or(TxError::MissingObject("enclave_config"))
}

// ---------------------------------------------------------------------------------------------
// Builders

/// `SplitCoins(GasCoin, [amount])` → `staking::stake(pool mut, coin, role: u8, node_id: String)`.
pub fn stake(
    ctx: &TxContext,
    d: &Deployment,
    amount: u64,
    role: u8,
    node_id: &str,
) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let gas = b.gas();
    let amt = b.pure_bytes(pure_u64(amount));
    let coins = b.split_coins(gas, vec![amt]);
    let pool = shared(&mut b, &d.pool, true);
    let role = b.pure_bytes(pure_u8(role));
    let node_id = b.pure_bytes(pure_string(node_id));
    let mut args = vec![pool];
    args.extend(coins);
    args.extend([role, node_id]);
    b.move_call(call(d.package, MODULE_STAKING, "stake"), args);
    finish(b)
}

/// `staking::request_unstake(pool mut)`.
pub fn request_unstake(ctx: &TxContext, d: &Deployment) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let pool = shared(&mut b, &d.pool, true);
    b.move_call(
        call(d.package, MODULE_STAKING, "request_unstake"),
        vec![pool],
    );
    finish(b)
}

/// `staking::withdraw(pool mut)`.
pub fn withdraw(ctx: &TxContext, d: &Deployment) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let pool = shared(&mut b, &d.pool, true);
    b.move_call(call(d.package, MODULE_STAKING, "withdraw"), vec![pool]);
    finish(b)
}

/// `k8s_gateway::issue_seal_token(gateway mut, pool)`.
pub fn issue_seal_token(ctx: &TxContext, d: &Deployment) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let gateway = shared(&mut b, &d.gateway, true);
    let pool = shared(&mut b, &d.pool, false);
    b.move_call(
        call(d.package, MODULE_GATEWAY, "issue_seal_token"),
        vec![gateway, pool],
    );
    finish(b)
}

/// `k8s_gateway::revoke_seal_token(token)` with the owned token object.
pub fn revoke_seal_token(
    ctx: &TxContext,
    d: &Deployment,
    token: &ObjectReference,
) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let token = owned(&mut b, token);
    b.move_call(
        call(d.package, MODULE_GATEWAY, "revoke_seal_token"),
        vec![token],
    );
    finish(b)
}

/// `staking::slash(pool mut, config, enclave, node: address, node_id: String, generation: u64,
/// nonce: u64, reason: String, timestamp_ms: u64, signature: vector<u8>)` for `report` (its
/// `epoch` is not an argument: the ledger uses the current one). `config` is the `EnclaveConfig`
/// the enclave was registered against (both shared, immutable).
pub fn slash(
    ctx: &TxContext,
    d: &Deployment,
    config: &SharedRef,
    enclave: &SharedRef,
    report: &SlashReport,
    timestamp_ms: u64,
    signature: &[u8],
) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let pool = shared(&mut b, &d.pool, true);
    let config = shared(&mut b, config, false);
    let enclave = shared(&mut b, enclave, false);
    let node = b.pure_bytes(pure_address(&report.node));
    let node_id = b.pure_bytes(pure_string(&report.node_id));
    let generation = b.pure_bytes(pure_u64(report.generation));
    let nonce = b.pure_bytes(pure_u64(report.nonce));
    let reason = b.pure_bytes(pure_string(&report.reason));
    let ts = b.pure_bytes(pure_u64(timestamp_ms));
    let sig = b.pure_bytes(pure_bytes(signature));
    b.move_call(
        call(d.package, MODULE_STAKING, "slash"),
        vec![
            pool, config, enclave, node, node_id, generation, nonce, reason, ts, sig,
        ],
    );
    finish(b)
}

/// `enclave::anchor_state(config mut, enclave, revision: u64, timestamp_ms: u64,
/// signature: vector<u8>)` (config and enclave shared; the config mutable).
pub fn anchor_state(
    ctx: &TxContext,
    d: &Deployment,
    config: &SharedRef,
    enclave: &SharedRef,
    revision: u64,
    timestamp_ms: u64,
    signature: &[u8],
) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let config = shared(&mut b, config, true);
    let enclave = shared(&mut b, enclave, false);
    let revision = b.pure_bytes(pure_u64(revision));
    let ts = b.pure_bytes(pure_u64(timestamp_ms));
    let sig = b.pure_bytes(pure_bytes(signature));
    b.move_call(
        call(d.package, MODULE_ENCLAVE, "anchor_state"),
        vec![config, enclave, revision, ts, sig],
    );
    finish(b)
}

/// `staking::set_config(admin_cap, pool mut, min_user, min_node, min_admin, lockup_epochs, slash_bps)`.
#[allow(clippy::too_many_arguments)]
pub fn set_config(
    ctx: &TxContext,
    d: &Deployment,
    min_user: u64,
    min_node: u64,
    min_admin: u64,
    lockup_epochs: u64,
    slash_bps: u64,
) -> Result<Transaction, TxError> {
    let cap = admin_cap(d)?;
    let mut b = ctx.builder();
    let cap = owned(&mut b, cap);
    let pool = shared(&mut b, &d.pool, true);
    let mut args = vec![cap, pool];
    for v in [min_user, min_node, min_admin, lockup_epochs, slash_bps] {
        args.push(b.pure_bytes(pure_u64(v)));
    }
    b.move_call(call(d.package, MODULE_STAKING, "set_config"), args);
    finish(b)
}

/// `k8s_gateway::set_gateway(admin_cap, gateway mut, master_endpoint: String, token_ttl_epochs: u64)`.
pub fn set_gateway(
    ctx: &TxContext,
    d: &Deployment,
    master_endpoint: &str,
    token_ttl_epochs: u64,
) -> Result<Transaction, TxError> {
    let cap = admin_cap(d)?;
    let mut b = ctx.builder();
    let cap = owned(&mut b, cap);
    let gateway = shared(&mut b, &d.gateway, true);
    let endpoint = b.pure_bytes(pure_string(master_endpoint));
    let ttl = b.pure_bytes(pure_u64(token_ttl_epochs));
    b.move_call(
        call(d.package, MODULE_GATEWAY, "set_gateway"),
        vec![cap, gateway, endpoint, ttl],
    );
    finish(b)
}

/// `staking::create_enclave_config(admin_cap, name: String, pcr0, pcr1, pcr2: vector<u8>)` (in
/// `staking`, not `enclave`: Move forbids the module cycle).
pub fn create_enclave_config(
    ctx: &TxContext,
    d: &Deployment,
    name: &str,
    pcr0: &[u8],
    pcr1: &[u8],
    pcr2: &[u8],
) -> Result<Transaction, TxError> {
    let cap = admin_cap(d)?;
    let mut b = ctx.builder();
    let cap = owned(&mut b, cap);
    let name = b.pure_bytes(pure_string(name));
    let mut args = vec![cap, name];
    for pcr in [pcr0, pcr1, pcr2] {
        args.push(b.pure_bytes(pure_bytes(pcr)));
    }
    b.move_call(
        call(d.package, MODULE_STAKING, "create_enclave_config"),
        args,
    );
    finish(b)
}

/// `staking::update_pcrs(admin_cap, config mut, pcr0, pcr1, pcr2: vector<u8>)` (in `staking`, not
/// `enclave`: Move forbids the module cycle).
pub fn update_pcrs(
    ctx: &TxContext,
    d: &Deployment,
    pcr0: &[u8],
    pcr1: &[u8],
    pcr2: &[u8],
) -> Result<Transaction, TxError> {
    let cap = admin_cap(d)?;
    let config = enclave_config(d)?;
    let mut b = ctx.builder();
    let cap = owned(&mut b, cap);
    let config = shared(&mut b, config, true);
    let mut args = vec![cap, config];
    for pcr in [pcr0, pcr1, pcr2] {
        args.push(b.pure_bytes(pure_bytes(pcr)));
    }
    b.move_call(call(d.package, MODULE_STAKING, "update_pcrs"), args);
    finish(b)
}

/// `enclave::register_enclave_platform_raw(config, platform: u8, evidence: vector<u8>)`
/// (embedded ledger only): an SEV-SNP report / TDX quote verified natively by the ledger.
pub fn register_enclave_platform_raw(
    ctx: &TxContext,
    d: &Deployment,
    platform: u8,
    evidence: &[u8],
) -> Result<Transaction, TxError> {
    let config = enclave_config(d)?;
    let mut b = ctx.builder();
    let config = shared(&mut b, config, false);
    let platform = b.pure_bytes(pure_u8(platform));
    let evidence = b.pure_bytes(pure_bytes(evidence));
    b.move_call(
        call(d.package, MODULE_ENCLAVE, "register_enclave_platform_raw"),
        vec![config, platform, evidence],
    );
    finish(b)
}

/// `staking::register_attested_enclave(admin_cap, config, platform: u8, pk: vector<u8>)`: the
/// admin registers an enclave it verified off chain (the Sui path for SEV-SNP and TDX).
pub fn register_attested_enclave(
    ctx: &TxContext,
    d: &Deployment,
    platform: u8,
    pk: &[u8],
) -> Result<Transaction, TxError> {
    let cap = admin_cap(d)?;
    let config = enclave_config(d)?;
    let mut b = ctx.builder();
    let cap = owned(&mut b, cap);
    let config = shared(&mut b, config, false);
    let platform = b.pure_bytes(pure_u8(platform));
    let pk = b.pure_bytes(pure_bytes(pk));
    b.move_call(
        call(d.package, MODULE_STAKING, "register_attested_enclave"),
        vec![cap, config, platform, pk],
    );
    finish(b)
}

/// `enclave::register_enclave_raw(config, document: vector<u8>)` (embedded ledger form of
/// `register_enclave`).
pub fn register_enclave_raw(
    ctx: &TxContext,
    d: &Deployment,
    document: &[u8],
) -> Result<Transaction, TxError> {
    let config = enclave_config(d)?;
    let mut b = ctx.builder();
    let config = shared(&mut b, config, false);
    let doc = b.pure_bytes(pure_bytes(document));
    b.move_call(
        call(d.package, MODULE_ENCLAVE, "register_enclave_raw"),
        vec![config, doc],
    );
    finish(b)
}

// ---------------------------------------------------------------------------------------------
// economy (and the staking treasury)

/// BCS of a Move `vector<u64>`.
pub fn pure_u64s(v: &[u64]) -> Vec<u8> {
    bcs::to_bytes(v).unwrap_or_default()
}

/// BCS of a Move `vector<address>`.
pub fn pure_addresses(v: &[Address]) -> Vec<u8> {
    bcs::to_bytes(v).unwrap_or_default()
}

/// BCS of a Move `vector<String>`.
pub fn pure_strings(v: &[String]) -> Vec<u8> {
    bcs::to_bytes(v).unwrap_or_default()
}

/// `SplitCoins(GasCoin, [amount])` → `economy::deposit(market mut, coin)`.
pub fn deposit(ctx: &TxContext, d: &Deployment, amount: u64) -> Result<Transaction, TxError> {
    let market = market(d)?;
    let mut b = ctx.builder();
    let gas = b.gas();
    let amt = b.pure_bytes(pure_u64(amount));
    let coins = b.split_coins(gas, vec![amt]);
    let market = shared(&mut b, market, true);
    let mut args = vec![market];
    args.extend(coins);
    b.move_call(call(d.package, MODULE_ECONOMY, "deposit"), args);
    finish(b)
}

/// `economy::withdraw_escrow(market mut, amount: u64)`.
pub fn withdraw_escrow(
    ctx: &TxContext,
    d: &Deployment,
    amount: u64,
) -> Result<Transaction, TxError> {
    let market = market(d)?;
    let mut b = ctx.builder();
    let market = shared(&mut b, market, true);
    let amount = b.pure_bytes(pure_u64(amount));
    b.move_call(
        call(d.package, MODULE_ECONOMY, "withdraw_escrow"),
        vec![market, amount],
    );
    finish(b)
}

/// `economy::withdraw_earnings(market mut, amount: u64)`.
pub fn withdraw_earnings(
    ctx: &TxContext,
    d: &Deployment,
    amount: u64,
) -> Result<Transaction, TxError> {
    let market = market(d)?;
    let mut b = ctx.builder();
    let market = shared(&mut b, market, true);
    let amount = b.pure_bytes(pure_u64(amount));
    b.move_call(
        call(d.package, MODULE_ECONOMY, "withdraw_earnings"),
        vec![market, amount],
    );
    finish(b)
}

/// `economy::set_prices(admin_cap, market mut, price_cpu, price_mem, price_pod: u64)`.
pub fn set_prices(
    ctx: &TxContext,
    d: &Deployment,
    price_cpu: u64,
    price_mem: u64,
    price_pod: u64,
) -> Result<Transaction, TxError> {
    let cap = admin_cap(d)?;
    let market = market(d)?;
    let mut b = ctx.builder();
    let cap = owned(&mut b, cap);
    let market = shared(&mut b, market, true);
    let mut args = vec![cap, market];
    for v in [price_cpu, price_mem, price_pod] {
        args.push(b.pure_bytes(pure_u64(v)));
    }
    b.move_call(call(d.package, MODULE_ECONOMY, "set_prices"), args);
    finish(b)
}

/// `economy::settle(market mut, pool, config, enclave, period, period_start_ms, period_end_ms,
/// users: vector<address>, node_ids: vector<String>, generations, cpu_ms, mem_mib_s, pod_s,
/// uptime_ms: vector<u64>, timestamp_ms: u64, signature: vector<u8>)` for `report` (its
/// `market_id` is not an argument). Pool, config and enclave are shared, immutable.
pub fn settle(
    ctx: &TxContext,
    d: &Deployment,
    config: &SharedRef,
    enclave: &SharedRef,
    report: &UsageReport,
    timestamp_ms: u64,
    signature: &[u8],
) -> Result<Transaction, TxError> {
    let market = market(d)?;
    let mut b = ctx.builder();
    let mut args = vec![
        shared(&mut b, market, true),
        shared(&mut b, &d.pool, false),
        shared(&mut b, config, false),
        shared(&mut b, enclave, false),
    ];
    for v in [report.period, report.period_start_ms, report.period_end_ms] {
        args.push(b.pure_bytes(pure_u64(v)));
    }
    args.push(b.pure_bytes(pure_addresses(&report.users)));
    args.push(b.pure_bytes(pure_strings(&report.node_ids)));
    for v in [
        &report.generations,
        &report.cpu_ms,
        &report.mem_mib_s,
        &report.pod_s,
        &report.uptime_ms,
    ] {
        args.push(b.pure_bytes(pure_u64s(v)));
    }
    args.push(b.pure_bytes(pure_u64(timestamp_ms)));
    args.push(b.pure_bytes(pure_bytes(signature)));
    b.move_call(call(d.package, MODULE_ECONOMY, "settle"), args);
    finish(b)
}

/// `staking::withdraw_treasury(admin_cap, pool mut, amount: u64)`.
pub fn withdraw_treasury(
    ctx: &TxContext,
    d: &Deployment,
    amount: u64,
) -> Result<Transaction, TxError> {
    let cap = admin_cap(d)?;
    let mut b = ctx.builder();
    let cap = owned(&mut b, cap);
    let pool = shared(&mut b, &d.pool, true);
    let amount = b.pure_bytes(pure_u64(amount));
    b.move_call(
        call(d.package, MODULE_STAKING, "withdraw_treasury"),
        vec![cap, pool, amount],
    );
    finish(b)
}

/// `SplitCoins(GasCoin, [amount])` → `TransferObjects([coin], recipient)`.
pub fn transfer_sui(
    ctx: &TxContext,
    recipient: &Address,
    amount: u64,
) -> Result<Transaction, TxError> {
    let mut b = ctx.builder();
    let gas = b.gas();
    let amt = b.pure_bytes(pure_u64(amount));
    let coins = b.split_coins(gas, vec![amt]);
    let to = b.pure_bytes(pure_address(recipient));
    b.transfer_objects(coins, to);
    finish(b)
}

// ---------------------------------------------------------------------------------------------
// Signing

/// A signed transaction in Sui wire format (what `sui_executeTransactionBlock` takes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTransaction {
    /// BCS of `TransactionData`.
    pub tx_bytes: Vec<u8>,
    /// Serialized `UserSignature`s (`flag || sig || pk`).
    pub signatures: Vec<Vec<u8>>,
}

impl SignedTransaction {
    pub fn tx_bytes_base64(&self) -> String {
        b64_encode(&self.tx_bytes)
    }

    pub fn signatures_base64(&self) -> Vec<String> {
        self.signatures.iter().map(|s| b64_encode(s)).collect()
    }

    /// From the Base64 strings of the JSON-RPC / TypeScript SDK representation.
    pub fn from_base64(tx_bytes: &str, signatures: &[String]) -> Result<Self, TxError> {
        Ok(Self {
            tx_bytes: b64_decode(tx_bytes)?,
            signatures: signatures
                .iter()
                .map(|s| b64_decode(s))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Verifies the transaction (see [`verify`]).
    pub fn verify(&self) -> Result<VerifiedTransaction, TxError> {
        verify(&self.tx_bytes, &self.signatures)
    }
}

/// Standard Base64 (with padding), as used by Sui for `tx_bytes` and signatures.
pub fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn b64_decode(s: &str) -> Result<Vec<u8>, TxError> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| TxError::Base64(e.to_string()))
}

/// BCS of `TransactionData` (Sui wire format).
pub fn tx_bytes(tx: &Transaction) -> Result<Vec<u8>, TxError> {
    bcs::to_bytes(tx).map_err(|e| TxError::Build(format!("bcs: {e}")))
}

/// The Sui transaction digest (`blake2b256("TransactionData::" || bcs(tx))`).
pub fn digest(tx: &Transaction) -> Digest {
    tx.digest()
}

/// Signs `tx` with `key` (intent TransactionData/V0/Sui). The sender should be `key.address()`.
pub fn sign(tx: &Transaction, key: &SuiKeypair) -> Result<SignedTransaction, TxError> {
    let bytes = tx_bytes(tx)?;
    let sig = key
        .private_key()
        .sign_transaction(tx)
        .map_err(|e| TxError::BadSignature(format!("signing failed: {e}")))?;
    Ok(SignedTransaction {
        tx_bytes: bytes,
        signatures: vec![sig.to_bytes()],
    })
}

// ---------------------------------------------------------------------------------------------
// Verification

/// A transaction whose single sender signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTransaction {
    pub digest: Digest,
    pub sender: Address,
    pub data: Transaction,
    /// The programmable transaction of `data` ([`verify`] refuses other kinds).
    pub programmable: ProgrammableTransaction,
    /// The sender's verified signature (serialized `UserSignature`).
    pub signature: Vec<u8>,
}

impl VerifiedTransaction {
    pub fn gas_payment(&self) -> &GasPayment {
        &self.data.gas_payment
    }

    pub fn gas_objects(&self) -> &[ObjectReference] {
        &self.data.gas_payment.objects
    }

    pub fn gas_budget(&self) -> u64 {
        self.data.gas_payment.budget
    }

    pub fn gas_price(&self) -> u64 {
        self.data.gas_payment.price
    }
}

/// Decodes and verifies a user transaction as Sui does for a single Ed25519 sender signature.
///
/// Refuses: undecodable or non-canonical BCS, trailing bytes, oversize input (`Malformed`);
/// anything other than a programmable transaction, sponsored gas, multisig / zkLogin / passkey /
/// secp256k1 / secp256r1 signatures (`Unsupported`); a signature count other than one
/// (`SignatureCount`); a signature whose public key does not derive the sender (`WrongSigner`);
/// an invalid signature (`BadSignature`).
pub fn verify(tx_bytes: &[u8], signatures: &[Vec<u8>]) -> Result<VerifiedTransaction, TxError> {
    if tx_bytes.len() > MAX_TX_BYTES {
        return Err(TxError::Malformed(format!(
            "{} bytes exceeds the {MAX_TX_BYTES}-byte limit",
            tx_bytes.len()
        )));
    }
    let data: Transaction =
        bcs::from_bytes(tx_bytes).map_err(|e| TxError::Malformed(format!("bcs: {e}")))?;
    // The digest and the signed message are over the canonical encoding; make sure it is the
    // one that was submitted.
    let canonical = bcs::to_bytes(&data).map_err(|e| TxError::Malformed(format!("bcs: {e}")))?;
    if canonical != tx_bytes {
        return Err(TxError::Malformed("non-canonical BCS encoding".into()));
    }
    let TransactionKind::ProgrammableTransaction(programmable) = &data.kind else {
        return Err(TxError::Unsupported(
            "only programmable transactions are accepted".into(),
        ));
    };
    let programmable = programmable.clone();
    if data.gas_payment.owner != data.sender {
        return Err(TxError::Unsupported(
            "sponsored transactions (gas owner != sender)".into(),
        ));
    }
    let [signature] = signatures else {
        return Err(TxError::SignatureCount(signatures.len()));
    };
    let (user_sig, public_key) = decode_ed25519(signature)?;
    let actual = public_key.derive_address();
    if actual != data.sender {
        return Err(TxError::WrongSigner {
            expected: data.sender,
            actual,
        });
    }
    let vk =
        Ed25519VerifyingKey::new(&public_key).map_err(|e| TxError::BadSignature(e.to_string()))?;
    vk.verify_transaction(&data, &user_sig)
        .map_err(|e| TxError::BadSignature(e.to_string()))?;
    Ok(VerifiedTransaction {
        digest: data.digest(),
        sender: data.sender,
        data,
        programmable,
        signature: signature.clone(),
    })
}

fn decode_ed25519(
    signature: &[u8],
) -> Result<(UserSignature, sui_sdk_types::Ed25519PublicKey), TxError> {
    let user_sig = UserSignature::from_bytes(signature)
        .map_err(|e| TxError::MalformedSignature(e.to_string()))?;
    let public_key = match &user_sig {
        UserSignature::Simple(SimpleSignature::Ed25519 { public_key, .. }) => *public_key,
        UserSignature::Simple(other) => {
            return Err(TxError::Unsupported(format!(
                "{} signatures",
                other.scheme().name()
            )));
        }
        UserSignature::Multisig(_) => {
            return Err(TxError::Unsupported("multisig signatures".into()))
        }
        UserSignature::ZkLogin(_) => return Err(TxError::Unsupported("zkLogin signatures".into())),
        other => {
            return Err(TxError::Unsupported(format!(
                "{} signatures",
                other.scheme().name()
            )))
        }
    };
    Ok((user_sig, public_key))
}

// ---------------------------------------------------------------------------------------------
// Personal messages

/// Signs `message` as a Sui personal message (intent scope 3, BCS `vector<u8>` of the message);
/// returns the serialized `UserSignature` (verifiable with `verifyPersonalMessageSignature`).
pub fn sign_personal_message(message: &[u8], key: &SuiKeypair) -> Vec<u8> {
    let msg = PersonalMessage(std::borrow::Cow::Borrowed(message));
    let digest = msg.signing_digest();
    let sig: UserSignature = key.private_key().sign(&digest);
    sig.to_bytes()
}

/// Verifies a personal-message signature (Ed25519 only) and returns the signer's address.
pub fn verify_personal_message(message: &[u8], signature: &[u8]) -> Result<Address, TxError> {
    let (user_sig, public_key) = decode_ed25519(signature)?;
    let vk =
        Ed25519VerifyingKey::new(&public_key).map_err(|e| TxError::BadSignature(e.to_string()))?;
    let msg = PersonalMessage(std::borrow::Cow::Borrowed(message));
    vk.verify_personal_message(&msg, &user_sig)
        .map_err(|e| TxError::BadSignature(e.to_string()))?;
    Ok(public_key.derive_address())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sui_sdk_types::{Argument, Command, Input};

    fn addr(b: u8) -> Address {
        Address::new([b; 32])
    }

    fn oref(b: u8, version: u64) -> ObjectReference {
        ObjectReference::new(addr(b), version, Digest::new([b.wrapping_add(1); 32]))
    }

    fn deployment() -> Deployment {
        Deployment {
            package: addr(0xaa),
            pool: SharedRef {
                id: addr(0xb0),
                initial_shared_version: 3,
            },
            gateway: SharedRef {
                id: addr(0xb1),
                initial_shared_version: 3,
            },
            admin_cap: Some(oref(0xb2, 3)),
            enclave_config: Some(SharedRef {
                id: addr(0xb3),
                initial_shared_version: 5,
            }),
            market: Some(SharedRef {
                id: addr(0xb5),
                initial_shared_version: 4,
            }),
        }
    }

    fn all_kinds(key: &SuiKeypair) -> Vec<(&'static str, Transaction)> {
        let ctx = TxContext::new(key.address(), vec![oref(0x11, 7)]);
        let d = deployment();
        let config = d.enclave_config.expect("config");
        let enclave = SharedRef {
            id: addr(0xb4),
            initial_shared_version: 9,
        };
        let r = |t: Result<Transaction, TxError>| t.expect("build");
        vec![
            ("stake", r(stake(&ctx, &d, 1000, 1, "worker-1"))),
            ("request_unstake", r(request_unstake(&ctx, &d))),
            ("withdraw", r(withdraw(&ctx, &d))),
            ("issue_seal_token", r(issue_seal_token(&ctx, &d))),
            (
                "revoke_seal_token",
                r(revoke_seal_token(&ctx, &d, &oref(0x22, 12))),
            ),
            (
                "slash",
                r(slash(
                    &ctx,
                    &d,
                    &config,
                    &enclave,
                    &SlashReport {
                        node: addr(0x33),
                        node_id: "worker-1".into(),
                        generation: 2,
                        nonce: 1,
                        reason: "missed heartbeats".into(),
                        epoch: 5,
                    },
                    1_700_000_000_000,
                    &[9u8; 64],
                )),
            ),
            (
                "anchor_state",
                r(anchor_state(
                    &ctx,
                    &d,
                    &config,
                    &enclave,
                    1234,
                    1_700_000_000_000,
                    &[9u8; 64],
                )),
            ),
            (
                "set_config",
                r(set_config(&ctx, &d, 100, 1000, 10000, 2, 1000)),
            ),
            (
                "set_gateway",
                r(set_gateway(&ctx, &d, "https://master:6443", 30)),
            ),
            (
                "create_enclave_config",
                r(create_enclave_config(
                    &ctx, &d, "k3s-daas", &[1; 48], &[2; 48], &[3; 48],
                )),
            ),
            (
                "update_pcrs",
                r(update_pcrs(&ctx, &d, &[4; 48], &[5; 48], &[6; 48])),
            ),
            (
                "register_enclave_raw",
                r(register_enclave_raw(&ctx, &d, &[0xd2; 300])),
            ),
            (
                "register_enclave_platform_raw",
                r(register_enclave_platform_raw(&ctx, &d, 1, &[0xd3; 1184])),
            ),
            (
                "register_attested_enclave",
                r(register_attested_enclave(&ctx, &d, 2, &[0xd4; 32])),
            ),
            ("transfer_sui", r(transfer_sui(&ctx, &addr(0x44), 5_000))),
        ]
    }

    fn pt(tx: &Transaction) -> &ProgrammableTransaction {
        match &tx.kind {
            TransactionKind::ProgrammableTransaction(pt) => pt,
            _ => panic!("not programmable"),
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let key = SuiKeypair::generate();
        for (name, tx) in all_kinds(&key) {
            let signed = sign(&tx, &key).expect("sign");
            assert_eq!(signed.signatures.len(), 1);
            assert_eq!(signed.signatures[0].len(), 97, "{name}");
            assert_eq!(signed.signatures[0][0], 0x00);
            let v = verify(&signed.tx_bytes, &signed.signatures).expect(name);
            assert_eq!(v.sender, key.address());
            assert_eq!(v.digest, tx.digest());
            assert_eq!(v.data, tx);
            assert_eq!(&v.programmable, pt(&tx));
            assert_eq!(v.gas_budget(), DEFAULT_GAS_BUDGET);
            assert_eq!(v.gas_price(), REFERENCE_GAS_PRICE);
            assert_eq!(v.gas_objects(), &[oref(0x11, 7)]);
            // Base64 helpers round trip.
            let again = SignedTransaction::from_base64(
                &signed.tx_bytes_base64(),
                &signed.signatures_base64(),
            )
            .expect("b64");
            assert_eq!(again, signed);
        }
    }

    #[test]
    fn stake_layout_matches_spec() {
        let key = SuiKeypair::from_seed([5; 32]);
        let ctx = TxContext::new(key.address(), vec![oref(0x11, 7)]);
        let d = deployment();
        let tx = stake(&ctx, &d, 1234, 1, "node-a").expect("build");
        let pt = pt(&tx);
        assert_eq!(
            pt.inputs,
            vec![
                Input::Pure(1234u64.to_le_bytes().to_vec()),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb0), 3, true)),
                Input::Pure(vec![1]),
                Input::Pure([&[6u8][..], b"node-a"].concat()),
            ]
        );
        assert_eq!(pt.commands.len(), 2);
        match &pt.commands[0] {
            Command::SplitCoins(s) => {
                assert_eq!(s.coin, Argument::Gas);
                assert_eq!(s.amounts, vec![Argument::Input(0)]);
            }
            other => panic!("{other:?}"),
        }
        match &pt.commands[1] {
            Command::MoveCall(c) => {
                assert_eq!(c.package, d.package);
                assert_eq!(c.module.as_str(), "staking");
                assert_eq!(c.function.as_str(), "stake");
                assert_eq!(
                    c.arguments,
                    vec![
                        Argument::Input(1),
                        Argument::NestedResult(0, 0),
                        Argument::Input(2),
                        Argument::Input(3)
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(tx.gas_payment.owner, key.address());
        // TransactionData wire format starts with the V1 tag then the ProgrammableTransaction tag.
        let bytes = tx_bytes(&tx).expect("bcs");
        assert_eq!(&bytes[..2], &[0, 0]);
    }

    #[test]
    fn issue_seal_token_pool_is_immutable() {
        let key = SuiKeypair::from_seed([5; 32]);
        let ctx = TxContext::new(key.address(), vec![oref(0x11, 7)]);
        let tx = issue_seal_token(&ctx, &deployment()).expect("build");
        assert_eq!(
            pt(&tx).inputs,
            vec![
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb1), 3, true)),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb0), 3, false)),
            ]
        );
    }

    #[test]
    fn slash_layout_matches_spec() {
        let key = SuiKeypair::from_seed([5; 32]);
        let ctx = TxContext::new(key.address(), vec![oref(0x11, 7)]);
        let d = deployment();
        let config = SharedRef {
            id: addr(0xb3),
            initial_shared_version: 5,
        };
        let enclave = SharedRef {
            id: addr(0xb4),
            initial_shared_version: 9,
        };
        let report = SlashReport {
            node: addr(0x33),
            node_id: "n".into(),
            generation: 4,
            nonce: 2,
            reason: "r".into(),
            epoch: 99,
        };
        let tx = slash(&ctx, &d, &config, &enclave, &report, 77, &[9; 64]).expect("build");
        let pt = pt(&tx);
        assert_eq!(
            pt.inputs,
            vec![
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb0), 3, true)),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb3), 5, false)),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb4), 9, false)),
                Input::Pure(vec![0x33; 32]),
                Input::Pure(vec![1, b'n']),
                Input::Pure(4u64.to_le_bytes().to_vec()),
                Input::Pure(2u64.to_le_bytes().to_vec()),
                Input::Pure(vec![1, b'r']),
                Input::Pure(77u64.to_le_bytes().to_vec()),
                Input::Pure(pure_bytes(&[9; 64])),
            ]
        );
        match &pt.commands[..] {
            [Command::MoveCall(c)] => {
                assert_eq!(
                    (c.module.as_str(), c.function.as_str()),
                    ("staking", "slash")
                );
                assert_eq!(
                    c.arguments,
                    (0..10).map(Argument::Input).collect::<Vec<_>>()
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn anchor_state_layout_matches_spec() {
        let key = SuiKeypair::from_seed([5; 32]);
        let ctx = TxContext::new(key.address(), vec![oref(0x11, 7)]);
        let config = SharedRef {
            id: addr(0xb3),
            initial_shared_version: 5,
        };
        let enclave = SharedRef {
            id: addr(0xb4),
            initial_shared_version: 9,
        };
        let tx =
            anchor_state(&ctx, &deployment(), &config, &enclave, 41, 77, &[9; 64]).expect("build");
        let pt = pt(&tx);
        assert_eq!(
            pt.inputs,
            vec![
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb3), 5, true)),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb4), 9, false)),
                Input::Pure(41u64.to_le_bytes().to_vec()),
                Input::Pure(77u64.to_le_bytes().to_vec()),
                Input::Pure(pure_bytes(&[9; 64])),
            ]
        );
        match &pt.commands[..] {
            [Command::MoveCall(c)] => {
                assert_eq!(
                    (c.module.as_str(), c.function.as_str()),
                    ("enclave", "anchor_state")
                );
                assert_eq!(c.arguments, (0..5).map(Argument::Input).collect::<Vec<_>>());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn economy_layouts_match_spec() {
        let key = SuiKeypair::from_seed([5; 32]);
        let ctx = TxContext::new(key.address(), vec![oref(0x11, 7)]);
        let d = deployment();
        let market = |m: bool| Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb5), 4, m));
        // deposit: SplitCoins(GasCoin, [amount]) then economy::deposit(market mut, coin)
        let tx = deposit(&ctx, &d, 500).expect("build");
        let p = pt(&tx);
        assert_eq!(
            p.inputs,
            vec![Input::Pure(500u64.to_le_bytes().to_vec()), market(true)]
        );
        match &p.commands[..] {
            [Command::SplitCoins(_), Command::MoveCall(c)] => {
                assert_eq!(
                    (c.module.as_str(), c.function.as_str()),
                    ("economy", "deposit")
                );
                assert_eq!(
                    c.arguments,
                    vec![Argument::Input(1), Argument::NestedResult(0, 0)]
                );
            }
            other => panic!("{other:?}"),
        }
        for (tx, function) in [
            (
                withdraw_escrow(&ctx, &d, 9).expect("build"),
                "withdraw_escrow",
            ),
            (
                withdraw_earnings(&ctx, &d, 9).expect("build"),
                "withdraw_earnings",
            ),
        ] {
            let p = pt(&tx);
            assert_eq!(
                p.inputs,
                vec![market(true), Input::Pure(9u64.to_le_bytes().to_vec())]
            );
            match &p.commands[..] {
                [Command::MoveCall(c)] => {
                    assert_eq!(
                        (c.module.as_str(), c.function.as_str()),
                        ("economy", function)
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let tx = set_prices(&ctx, &d, 1, 2, 3).expect("build");
        let p = pt(&tx);
        assert_eq!(p.inputs[1], market(true));
        assert_eq!(p.inputs.len(), 5);
        let tx = withdraw_treasury(&ctx, &d, 7).expect("build");
        match &pt(&tx).commands[..] {
            [Command::MoveCall(c)] => {
                assert_eq!(
                    (c.module.as_str(), c.function.as_str()),
                    ("staking", "withdraw_treasury")
                );
                assert_eq!(c.arguments.len(), 3);
            }
            other => panic!("{other:?}"),
        }
        // settle: market mut, pool, config, enclave (immutable), then 12 pure arguments
        let config = SharedRef {
            id: addr(0xb3),
            initial_shared_version: 5,
        };
        let enclave = SharedRef {
            id: addr(0xb4),
            initial_shared_version: 9,
        };
        let report =
            UsageReport::new(addr(0xb5), 4, 10, 20).with_line(crate::contract::UsageLine {
                user: addr(0x77),
                node_id: "n".into(),
                generation: 1,
                cpu_ms: 2,
                mem_mib_s: 3,
                pod_s: 4,
                uptime_ms: 5,
            });
        let tx = settle(&ctx, &d, &config, &enclave, &report, 99, &[8; 64]).expect("build");
        let p = pt(&tx);
        let vec1 = |v: u64| {
            let mut b = vec![1u8];
            b.extend(v.to_le_bytes());
            Input::Pure(b)
        };
        let mut users = vec![1u8];
        users.extend([0x77; 32]);
        assert_eq!(
            p.inputs,
            vec![
                market(true),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb0), 3, false)),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb3), 5, false)),
                Input::Shared(sui_sdk_types::SharedInput::new(addr(0xb4), 9, false)),
                Input::Pure(4u64.to_le_bytes().to_vec()),
                Input::Pure(10u64.to_le_bytes().to_vec()),
                Input::Pure(20u64.to_le_bytes().to_vec()),
                Input::Pure(users),
                Input::Pure(vec![1, 1, b'n']),
                vec1(1),
                vec1(2),
                vec1(3),
                vec1(4),
                vec1(5),
                Input::Pure(99u64.to_le_bytes().to_vec()),
                Input::Pure(pure_bytes(&[8; 64])),
            ]
        );
        match &p.commands[..] {
            [Command::MoveCall(c)] => {
                assert_eq!(
                    (c.module.as_str(), c.function.as_str()),
                    ("economy", "settle")
                );
                assert_eq!(
                    c.arguments,
                    (0..16).map(Argument::Input).collect::<Vec<_>>()
                );
            }
            other => panic!("{other:?}"),
        }
        let mut none = d.clone();
        none.market = None;
        assert!(matches!(
            deposit(&ctx, &none, 1),
            Err(TxError::MissingObject("market"))
        ));
    }

    #[test]
    fn enclave_config_admin_calls_are_in_staking() {
        let key = SuiKeypair::from_seed([5; 32]);
        let ctx = TxContext::new(key.address(), vec![oref(0x11, 7)]);
        let d = deployment();
        for (tx, function) in [
            (
                create_enclave_config(&ctx, &d, "m", &[1], &[2], &[3]).expect("build"),
                "create_enclave_config",
            ),
            (
                update_pcrs(&ctx, &d, &[1], &[2], &[3]).expect("build"),
                "update_pcrs",
            ),
        ] {
            match &pt(&tx).commands[..] {
                [Command::MoveCall(c)] => {
                    assert_eq!(
                        (c.module.as_str(), c.function.as_str()),
                        ("staking", function)
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let tx = register_enclave_raw(&ctx, &d, b"doc").expect("build");
        match &pt(&tx).commands[..] {
            [Command::MoveCall(c)] => assert_eq!(c.module.as_str(), "enclave"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pure_encodings_match_bcs() {
        assert_eq!(pure_string("héllo"), bcs::to_bytes("héllo").expect("bcs"));
        let long = vec![7u8; 300];
        assert_eq!(pure_bytes(&long), bcs::to_bytes(&long).expect("bcs"));
        assert_eq!(pure_bytes(&[]), vec![0]);
        assert_eq!(pure_u64(u64::MAX), bcs::to_bytes(&u64::MAX).expect("bcs"));
        assert_eq!(
            pure_address(&addr(3)),
            bcs::to_bytes(&addr(3)).expect("bcs")
        );
    }

    #[test]
    fn missing_objects_and_gas_are_errors() {
        let key = SuiKeypair::generate();
        let mut d = deployment();
        d.admin_cap = None;
        d.enclave_config = None;
        let ctx = TxContext::new(key.address(), vec![oref(1, 1)]);
        assert!(matches!(
            set_config(&ctx, &d, 1, 2, 3, 4, 5),
            Err(TxError::MissingObject("admin_cap"))
        ));
        assert!(matches!(
            register_enclave_raw(&ctx, &d, &[]),
            Err(TxError::MissingObject("enclave_config"))
        ));
        let no_gas = TxContext::new(key.address(), vec![]);
        assert!(matches!(withdraw(&no_gas, &d), Err(TxError::Build(_))));
    }

    #[test]
    fn tampered_bytes_are_rejected() {
        let key = SuiKeypair::generate();
        let (_, tx) = all_kinds(&key).swap_remove(0);
        let signed = sign(&tx, &key).expect("sign");
        for i in 0..signed.tx_bytes.len() {
            let mut bytes = signed.tx_bytes.clone();
            bytes[i] ^= 0x01;
            assert!(
                verify(&bytes, &signed.signatures).is_err(),
                "flipping byte {i} must fail"
            );
        }
        // A tampered signature or public key.
        for i in [1usize, 40, 64, 65, 96] {
            let mut sig = signed.signatures[0].clone();
            sig[i] ^= 0x80;
            let err = verify(&signed.tx_bytes, &[sig]).expect_err("tampered signature");
            assert!(
                matches!(err, TxError::BadSignature(_) | TxError::WrongSigner { .. }),
                "{i}: {err}"
            );
        }
        let mut sig = signed.signatures[0].clone();
        sig[10] ^= 1;
        assert!(matches!(
            verify(&signed.tx_bytes, &[sig]),
            Err(TxError::BadSignature(_))
        ));
    }

    #[test]
    fn signature_from_another_key_is_wrong_signer() {
        let alice = SuiKeypair::generate();
        let mallory = SuiKeypair::generate();
        let (_, tx) = all_kinds(&alice).swap_remove(1);
        let signed = sign(&tx, &mallory).expect("sign");
        match verify(&signed.tx_bytes, &signed.signatures) {
            Err(TxError::WrongSigner { expected, actual }) => {
                assert_eq!(expected, alice.address());
                assert_eq!(actual, mallory.address());
            }
            other => panic!("expected WrongSigner, got {other:?}"),
        }
    }

    #[test]
    fn signature_count_and_scheme() {
        let key = SuiKeypair::generate();
        let (_, tx) = all_kinds(&key).swap_remove(2);
        let signed = sign(&tx, &key).expect("sign");
        assert!(matches!(
            verify(&signed.tx_bytes, &[]),
            Err(TxError::SignatureCount(0))
        ));
        let two = vec![signed.signatures[0].clone(), signed.signatures[0].clone()];
        assert!(matches!(
            verify(&signed.tx_bytes, &two),
            Err(TxError::SignatureCount(2))
        ));
        assert!(matches!(
            verify(&signed.tx_bytes, &[vec![]]),
            Err(TxError::MalformedSignature(_))
        ));
        assert!(matches!(
            verify(&signed.tx_bytes, &[vec![0; 10]]),
            Err(TxError::MalformedSignature(_))
        ));
        // A multisig flag (0x03) with garbage is either malformed or unsupported, never accepted.
        let mut ms = vec![0x03];
        ms.extend_from_slice(&[0u8; 40]);
        assert!(verify(&signed.tx_bytes, &[ms]).is_err());
    }

    #[test]
    fn malformed_bytes() {
        let key = SuiKeypair::generate();
        let (_, tx) = all_kinds(&key).swap_remove(0);
        let signed = sign(&tx, &key).expect("sign");
        assert!(matches!(
            verify(&[], &signed.signatures),
            Err(TxError::Malformed(_))
        ));
        assert!(matches!(
            verify(&[0xff; 64], &signed.signatures),
            Err(TxError::Malformed(_))
        ));
        let truncated = &signed.tx_bytes[..signed.tx_bytes.len() - 1];
        assert!(matches!(
            verify(truncated, &signed.signatures),
            Err(TxError::Malformed(_))
        ));
        let mut trailing = signed.tx_bytes.clone();
        trailing.push(0);
        assert!(matches!(
            verify(&trailing, &signed.signatures),
            Err(TxError::Malformed(_))
        ));
        assert!(matches!(
            verify(&vec![0u8; MAX_TX_BYTES + 1], &signed.signatures),
            Err(TxError::Malformed(_))
        ));
        assert!(matches!(
            SignedTransaction::from_base64("!!", &[]),
            Err(TxError::Base64(_))
        ));
    }

    #[test]
    fn sponsored_transactions_are_unsupported() {
        let key = SuiKeypair::generate();
        let (_, mut tx) = all_kinds(&key).swap_remove(1);
        tx.gas_payment.owner = addr(0x99);
        let signed = sign(&tx, &key).expect("sign");
        assert!(matches!(
            verify(&signed.tx_bytes, &signed.signatures),
            Err(TxError::Unsupported(_))
        ));
    }

    #[test]
    fn personal_message_round_trip_and_tamper() {
        let key = SuiKeypair::generate();
        let msg = b"k3s-daas credential: exp=1700000000".to_vec();
        let sig = sign_personal_message(&msg, &key);
        assert_eq!(sig.len(), 97);
        assert_eq!(
            verify_personal_message(&msg, &sig).expect("verify"),
            key.address()
        );
        let mut other = msg.clone();
        other[0] ^= 1;
        assert!(matches!(
            verify_personal_message(&other, &sig),
            Err(TxError::BadSignature(_))
        ));
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert!(matches!(
            verify_personal_message(&msg, &bad),
            Err(TxError::BadSignature(_))
        ));
        // The same bytes signed as a transaction intent do not verify as a personal message.
        assert!(verify_personal_message(&[], &sig).is_err());
        assert!(matches!(
            verify_personal_message(&msg, &[1, 2, 3]),
            Err(TxError::MalformedSignature(_))
        ));
        // Empty messages are fine.
        let sig = sign_personal_message(&[], &key);
        assert_eq!(
            verify_personal_message(&[], &sig).expect("empty"),
            key.address()
        );
    }

    #[test]
    fn personal_message_digest_is_sui_intent_3() {
        // blake2b256([3,0,0] || uleb128(len) || bytes)
        let key = SuiKeypair::from_seed([9; 32]);
        let msg = b"hello";
        let mut pre = vec![3u8, 0, 0, 5];
        pre.extend_from_slice(msg);
        let digest = sui_sdk_types::hash::Hasher::digest(&pre);
        let sig: UserSignature = key.private_key().sign(digest.inner());
        assert_eq!(sig.to_bytes(), sign_personal_message(msg, &key));
    }

    #[test]
    fn deep_type_nesting_does_not_overflow() {
        // A MoveCall with a deeply nested `vector<vector<...>>` type argument.
        let key = SuiKeypair::generate();
        let (_, tx) = all_kinds(&key).swap_remove(1);
        let bytes = tx_bytes(&tx).expect("bcs");
        // Replace the MoveCall's empty type-argument list (just before the argument count) with
        // one nested type: craft the bytes by hand at the end of the command.
        let mut crafted = bytes.clone();
        let needle = b"request_unstake";
        if let Some(pos) = crafted.windows(needle.len()).position(|w| w == needle) {
            let at = pos + needle.len();
            // type_arguments: uleb len 1, then 50_000 x TypeTag::Vector (tag 6), then Bool (tag 1).
            let mut nested = vec![1u8];
            nested.extend(std::iter::repeat_n(6u8, 50_000));
            nested.push(1);
            crafted.splice(at..at + 1, nested);
            let r = verify(&crafted, &[vec![0u8; 97]]);
            assert!(r.is_err());
        } else {
            panic!("function name not found in bytes");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
                                       sig in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = verify(&bytes, std::slice::from_ref(&sig));
            let _ = verify_personal_message(&bytes, &sig);
        }

        #[test]
        fn mutated_valid_transactions_never_panic(idx in 0usize..12, pos in proptest::prelude::any::<usize>(),
                                                  val in proptest::prelude::any::<u8>(), cut in proptest::prelude::any::<bool>()) {
            let key = SuiKeypair::from_seed([3; 32]);
            let (_, tx) = all_kinds(&key).swap_remove(idx);
            let signed = sign(&tx, &key).expect("sign");
            let mut bytes = signed.tx_bytes.clone();
            let p = pos % bytes.len();
            if cut { bytes.truncate(p); } else { bytes[p] = val; }
            let r = verify(&bytes, &signed.signatures);
            if bytes != signed.tx_bytes {
                proptest::prop_assert!(r.is_err());
            }
        }
    }
}
