//! [`SuiLedger`]: the [`Ledger`] trait against a real Sui fullnode over gRPC (`sui-rpc` 0.4:
//! `LedgerService`, `StateService`, `TransactionExecutionService`). Built in CI with
//! `--all-features`; it is not exercised against a network in this repository's tests (only the
//! BCS decoders below are unit-tested).
//!
//! What is read and how:
//! - objects: `LedgerService.GetObject` with the Move struct `contents` (BCS), decoded per the
//!   layouts in `contracts/sources/*.move` into the same Rust types the embedded ledger uses;
//! - stake records: the `Table<address, StakeRecord>` inside the pool is a set of dynamic fields;
//!   the record of an address is the object `Field<address, StakeRecord>` whose id is derived from
//!   the table id and the key (`derive_dynamic_child_id`), read with `GetObject`; the node-id
//!   index `Table<String, address>` (`node_owners`) the same way (key type `0x1::string::String`);
//! - coins and seal tokens of an owner: `StateService.ListOwnedObjects` filtered by type;
//! - epoch and reference gas price: `LedgerService.GetEpoch`;
//! - execution: `TransactionExecutionService.ExecuteTransaction` with the BCS transaction and
//!   signatures, effects and events decoded from their BCS.
//!
//! Approximations (honest list):
//! - [`Ledger::seal_token_valid`] evaluates `k8s_gateway::is_valid` in Rust (SPEC formula) from
//!   three separate reads (token, stake record, epoch), which may come from different checkpoints;
//!   it does not run the Move function.
//! - `get_object` of the `StakingPool` returns an empty `stakes` map (the records live in the
//!   table's dynamic fields; use [`Ledger::stake`]); a package object is returned with an empty
//!   module list; objects of types the ledger does not model (other than SUI coins and the
//!   k3s_daas structs) are refused with `Unsupported`.
//! - Owners `Object(id)` and `ConsensusAddress { owner, .. }` are reported as `Owner::Address`.
//! - In effects, `gas_used` is Sui's net gas (computation + storage − rebate, saturating at 0);
//!   unwrapped objects are listed as created, wrapped ones as deleted (with digest zero); events
//!   of other packages or unknown types are dropped; execution errors other than Move aborts and
//!   coin-balance errors become `ExecutionFailure::Unsupported` carrying Sui's error text; the
//!   abort `name` comes from the SPEC's abort-code table.
//! - Events and types are matched against `SuiConfig::package`; after a package upgrade, types
//!   keep the original package id, so configure the original id.
//! - gRPC errors other than "not found" on reads become `LedgerError::Backend` (the fullnode's
//!   refusal reasons are not mapped to the specific `LedgerError` variants).
//! - [`Ledger::faucet`] is `Unsupported` (use the network's faucet).
//! - Economy: [`Ledger::market`] returns the market with empty `accounts`/`earnings` maps (read
//!   them per address with [`Ledger::account`] / [`Ledger::earnings`], dynamic fields of the
//!   market's tables); [`Ledger::recent_events`] is `Unsupported` (the fullnode gRPC API has no
//!   event query; use an indexer).
//! - [`Ledger::execute`] verifies the transaction locally first ([`crate::tx::verify`]: a single
//!   Ed25519 signature by the sender), so sponsored or multisig transactions are refused.

use std::str::FromStr;

use prost_types::FieldMask;
use serde_json::{json, Value};
use sui_rpc::field::FieldMaskUtil;
use sui_rpc::proto::sui::rpc::v2 as proto;
use sui_sdk_types::{Address, Digest, ObjectReference, StructTag, TypeTag};

use crate::contract::{self, ContractObject, Event, ObjectId, SealToken, StakeRecord};
use crate::tx::{Deployment, SharedRef, SignedTransaction, TxError};
use crate::types::{
    ExecutionFailure, ExecutionStatus, LedgerObject, ObjectData, Owner, TransactionEffects,
};
use crate::{Ledger, LedgerError};

/// Where the k3s_daas package and its singletons are on the Sui network.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SuiConfig {
    /// gRPC endpoint of a fullnode, e.g. `https://fullnode.testnet.sui.io:443`.
    pub endpoint: String,
    /// The published package (original id).
    pub package: Address,
    pub pool: ObjectId,
    pub gateway: ObjectId,
    pub admin_cap: Option<ObjectId>,
    pub enclave_config: Option<ObjectId>,
    /// `economy::Market` (shared); absent for a package published before the economy.
    #[serde(default)]
    pub market: Option<ObjectId>,
}

/// A ledger on a Sui network (see the module documentation for what is approximated).
#[derive(Clone)]
pub struct SuiLedger {
    client: sui_rpc::Client,
    config: SuiConfig,
}

impl std::fmt::Debug for SuiLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuiLedger")
            .field("config", &self.config)
            .finish()
    }
}

const OBJECT_FIELDS: &[&str] = &[
    "object_id",
    "version",
    "digest",
    "owner",
    "object_type",
    "contents",
    "previous_transaction",
];
const PAGE_SIZE: u32 = 500;

fn backend(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Backend(format!("{what}: {e}"))
}

fn status_err(what: &str, s: tonic::Status) -> LedgerError {
    LedgerError::Backend(format!("{what}: {:?}: {}", s.code(), s.message()))
}

fn mask(paths: &[&str]) -> FieldMask {
    FieldMask::from_paths(paths.iter().copied())
}

impl SuiLedger {
    pub fn new(config: SuiConfig) -> Result<Self, LedgerError> {
        let client = sui_rpc::Client::new(config.endpoint.clone())
            .map_err(|e| backend(&format!("sui endpoint {}", config.endpoint), e.message()))?;
        Ok(SuiLedger { client, config })
    }

    pub fn config(&self) -> &SuiConfig {
        &self.config
    }

    fn type_tag(&self, module: &str, name: &str) -> String {
        format!("{}::{module}::{name}", self.config.package)
    }

    /// `GetObject` with contents; `None` if the fullnode says not found.
    async fn fetch(&self, id: &ObjectId) -> Result<Option<proto::Object>, LedgerError> {
        let mut client = self.client.clone();
        let req = proto::GetObjectRequest::new(id).with_read_mask(mask(OBJECT_FIELDS));
        match client.ledger_client().get_object(req).await {
            Ok(resp) => Ok(resp.into_inner().object),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(status_err(&format!("get object {id}"), s)),
        }
    }

    /// All objects of `owner` with type `object_type` (paginated).
    async fn list_owned(
        &self,
        owner: &Address,
        object_type: &str,
        fields: &[&str],
    ) -> Result<Vec<proto::Object>, LedgerError> {
        let mut client = self.client.clone();
        let mut out = Vec::new();
        let mut token: Option<bytes::Bytes> = None;
        loop {
            let mut req = proto::ListOwnedObjectsRequest::default()
                .with_owner(owner.to_string())
                .with_object_type(object_type.to_string())
                .with_page_size(PAGE_SIZE)
                .with_read_mask(mask(fields));
            if let Some(t) = token.take() {
                req.set_page_token(t);
            }
            let resp = client
                .state_client()
                .list_owned_objects(req)
                .await
                .map_err(|s| status_err(&format!("list objects of {owner}"), s))?
                .into_inner();
            out.extend(resp.objects);
            match resp.next_page_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn shared_ref(&self, id: &ObjectId, what: &str) -> Result<SharedRef, LedgerError> {
        let o = self
            .fetch(id)
            .await?
            .ok_or(LedgerError::ObjectNotFound(*id))?;
        match owner_of(&o)? {
            Owner::Shared {
                initial_shared_version,
            } => Ok(SharedRef {
                id: *id,
                initial_shared_version,
            }),
            _ => Err(LedgerError::Backend(format!(
                "{what} {id} is not a shared object"
            ))),
        }
    }

    /// The pool's `stakes` table id.
    async fn stakes_table(&self) -> Result<ObjectId, LedgerError> {
        let pool = self
            .fetch(&self.config.pool)
            .await?
            .ok_or(LedgerError::ObjectNotFound(self.config.pool))?;
        let bytes = contents(&pool)?;
        Ok(decode_staking_pool(bytes)?.table_id)
    }

    /// The pool's `stakes` and `node_owners` table ids.
    async fn pool_tables(&self) -> Result<(ObjectId, ObjectId), LedgerError> {
        let pool = self
            .fetch(&self.config.pool)
            .await?
            .ok_or(LedgerError::ObjectNotFound(self.config.pool))?;
        let d = decode_staking_pool(contents(&pool)?)?;
        let owners = d.node_owners_table_id.ok_or_else(|| {
            LedgerError::Unsupported(
                "the published package has no node-id index (node_owners)".into(),
            )
        })?;
        Ok((d.table_id, owners))
    }

    async fn stake_in(
        &self,
        table: &ObjectId,
        address: Address,
    ) -> Result<Option<StakeRecord>, LedgerError> {
        let key = bcs::to_bytes(&address).map_err(|e| backend("bcs address", e))?;
        let field_id = table.derive_dynamic_child_id(&TypeTag::Address, &key);
        match self.fetch(&field_id).await? {
            Some(o) => decode_stake_field(contents(&o)?).map(Some),
            None => Ok(None),
        }
    }

    async fn epoch_info(&self) -> Result<proto::Epoch, LedgerError> {
        let mut client = self.client.clone();
        let req = proto::GetEpochRequest::default()
            .with_read_mask(mask(&["epoch", "reference_gas_price"]));
        let resp = client
            .ledger_client()
            .get_epoch(req)
            .await
            .map_err(|s| status_err("get epoch", s))?;
        resp.into_inner()
            .epoch
            .ok_or_else(|| LedgerError::Backend("get epoch: empty response".into()))
    }

    fn convert_executed(
        &self,
        executed: &proto::ExecutedTransaction,
        sender: Option<Address>,
    ) -> Result<TransactionEffects, LedgerError> {
        let fx_bcs = executed
            .effects
            .as_ref()
            .and_then(|e| e.bcs.as_ref())
            .ok_or_else(|| LedgerError::Backend("transaction response has no effects".into()))?;
        let fx: sui_sdk_types::TransactionEffects = fx_bcs
            .deserialize()
            .map_err(|e| backend("effects bcs", e))?;
        let events: Vec<sui_sdk_types::Event> =
            match executed.events.as_ref().and_then(|e| e.bcs.as_ref()) {
                Some(b) => {
                    b.deserialize::<sui_sdk_types::TransactionEvents>()
                        .map_err(|e| backend("events bcs", e))?
                        .0
                }
                None => Vec::new(),
            };
        let sender = match sender {
            Some(s) => s,
            None => {
                let tx_bcs = executed
                    .transaction
                    .as_ref()
                    .and_then(|t| t.bcs.as_ref())
                    .ok_or_else(|| {
                        LedgerError::Backend("transaction response has no transaction".into())
                    })?;
                let tx: sui_sdk_types::Transaction = tx_bcs
                    .deserialize()
                    .map_err(|e| backend("transaction bcs", e))?;
                tx.sender
            }
        };
        convert_effects(&fx, &events, sender, &self.config.package)
    }
}

// ---------------------------------------------------------------------------------------------
// Proto object → ledger types

fn parse_addr(s: Option<&str>, what: &str) -> Result<Address, LedgerError> {
    let s = s.ok_or_else(|| LedgerError::Backend(format!("missing {what}")))?;
    Address::from_str(s).map_err(|e| backend(&format!("{what} {s:?}"), e))
}

fn parse_digest(s: Option<&str>, what: &str) -> Result<Digest, LedgerError> {
    let s = s.ok_or_else(|| LedgerError::Backend(format!("missing {what}")))?;
    Digest::from_str(s).map_err(|e| backend(&format!("{what} {s:?}"), e))
}

fn map_owner(o: &sui_sdk_types::Owner) -> Owner {
    match o {
        sui_sdk_types::Owner::Address(a) | sui_sdk_types::Owner::Object(a) => Owner::Address(*a),
        sui_sdk_types::Owner::Shared(v) => Owner::Shared {
            initial_shared_version: *v,
        },
        sui_sdk_types::Owner::Immutable => Owner::Immutable,
        sui_sdk_types::Owner::ConsensusAddress { owner, .. } => Owner::Address(*owner),
        #[allow(unreachable_patterns)]
        _ => Owner::Immutable,
    }
}

fn owner_of(o: &proto::Object) -> Result<Owner, LedgerError> {
    let owner = o
        .owner
        .as_ref()
        .ok_or_else(|| LedgerError::Backend("object without owner".into()))?;
    let owner = sui_sdk_types::Owner::try_from(owner).map_err(|e| backend("object owner", e))?;
    Ok(map_owner(&owner))
}

fn contents(o: &proto::Object) -> Result<&[u8], LedgerError> {
    o.contents
        .as_ref()
        .and_then(|b| b.value.as_deref())
        .ok_or_else(|| LedgerError::Backend("object without Move contents".into()))
}

fn object_ref(o: &proto::Object) -> Result<ObjectReference, LedgerError> {
    Ok(ObjectReference::new(
        parse_addr(o.object_id.as_deref(), "object id")?,
        o.version
            .ok_or_else(|| LedgerError::Backend("object without version".into()))?,
        parse_digest(o.digest.as_deref(), "object digest")?,
    ))
}

/// Which modelled Move type a struct tag is.
fn classify(tag: &StructTag, package: &Address) -> Option<&'static str> {
    if *tag == StructTag::gas_coin() {
        return Some("Coin");
    }
    if tag.address() != package || !tag.type_params().is_empty() {
        return None;
    }
    match (tag.module().as_str(), tag.name().as_str()) {
        ("staking", "AdminCap") => Some("AdminCap"),
        ("staking", "StakingPool") => Some("StakingPool"),
        ("k8s_gateway", "Gateway") => Some("Gateway"),
        ("k8s_gateway", "SealToken") => Some("SealToken"),
        ("enclave", "EnclaveConfig") => Some("EnclaveConfig"),
        ("enclave", "Enclave") => Some("Enclave"),
        ("economy", "Market") => Some("Market"),
        _ => None,
    }
}

fn to_ledger_object(o: &proto::Object, package: &Address) -> Result<LedgerObject, LedgerError> {
    let r = object_ref(o)?;
    let owner = owner_of(o)?;
    let previous_transaction = match o.previous_transaction.as_deref() {
        Some(s) => parse_digest(Some(s), "previous transaction")?,
        None => Digest::ZERO,
    };
    let ty = o.object_type.as_deref().unwrap_or_default();
    let data = if ty == "package" {
        ObjectData::Package {
            modules: Vec::new(),
        }
    } else {
        let tag =
            StructTag::from_str(ty).map_err(|e| backend(&format!("object type {ty:?}"), e))?;
        let kind = classify(&tag, package).ok_or_else(|| {
            LedgerError::Unsupported(format!(
                "object {} has type {ty}, which the ledger does not model",
                r.object_id()
            ))
        })?;
        ObjectData::Move(decode_contract_object(kind, contents(o)?)?)
    };
    Ok(LedgerObject {
        id: *r.object_id(),
        version: r.version(),
        digest: *r.digest(),
        owner,
        previous_transaction,
        data,
    })
}

// ---------------------------------------------------------------------------------------------
// BCS decoding of the k3s_daas Move structs (contracts/sources/*.move layouts)

/// A cursor over BCS bytes.
pub(crate) struct BcsReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BcsReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BcsReader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LedgerError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| {
                LedgerError::Backend(format!(
                    "bcs: need {n} bytes at offset {}, have {}",
                    self.pos,
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, LedgerError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, LedgerError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn address(&mut self) -> Result<Address, LedgerError> {
        let mut b = [0u8; 32];
        b.copy_from_slice(self.take(32)?);
        Ok(Address::new(b))
    }

    fn uleb128(&mut self) -> Result<usize, LedgerError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value).map_err(|e| backend("bcs length", e));
            }
        }
        Err(LedgerError::Backend("bcs: ULEB128 length too long".into()))
    }

    fn bytes_vec(&mut self) -> Result<Vec<u8>, LedgerError> {
        let n = self.uleb128()?;
        Ok(self.take(n)?.to_vec())
    }

    fn string(&mut self) -> Result<String, LedgerError> {
        let b = self.bytes_vec()?;
        String::from_utf8(b).map_err(|e| backend("bcs string", e))
    }

    fn strings(&mut self) -> Result<Vec<String>, LedgerError> {
        let n = self.uleb128()?;
        (0..n).map(|_| self.string()).collect()
    }

    fn end(&self, what: &str) -> Result<(), LedgerError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(LedgerError::Backend(format!(
                "bcs: {} trailing bytes after {what}",
                self.remaining()
            )))
        }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, LedgerError> {
    serde_json::from_value(v).map_err(|e| backend(&format!("decode {what}"), e))
}

/// `staking::StakeRecord`. `slashed_epoch` and `slash_count` are optional at the end (absent in
/// older packages).
fn stake_record_json(r: &mut BcsReader<'_>) -> Result<Value, LedgerError> {
    let staker = r.address()?;
    let role = r.u8()?;
    let node_id = r.string()?;
    let amount = r.u64()?;
    let staked_epoch = r.u64()?;
    let status = r.u8()?;
    let unlock_epoch = r.u64()?;
    let generation = r.u64()?;
    let slashed_total = r.u64()?;
    let slashed_epoch = if r.remaining() >= 8 { r.u64()? } else { 0 };
    let slash_count = if r.remaining() >= 8 { r.u64()? } else { 0 };
    Ok(json!({
        "staker": staker, "role": role, "node_id": node_id, "amount": amount,
        "staked_epoch": staked_epoch, "status": status, "unlock_epoch": unlock_epoch,
        "generation": generation, "slashed_total": slashed_total, "slashed_epoch": slashed_epoch,
        "slash_count": slash_count,
    }))
}

/// The contents of a `0x2::dynamic_field::Field<address, StakeRecord>`.
pub(crate) fn decode_stake_field(bytes: &[u8]) -> Result<StakeRecord, LedgerError> {
    let mut r = BcsReader::new(bytes);
    let _uid = r.address()?;
    let _key = r.address()?;
    let v = stake_record_json(&mut r)?;
    r.end("StakeRecord")?;
    from_json(v, "StakeRecord")
}

/// The contents of a `0x2::dynamic_field::Field<String, address>` (an entry of `node_owners`).
pub(crate) fn decode_node_owner_field(bytes: &[u8]) -> Result<(String, Address), LedgerError> {
    let mut r = BcsReader::new(bytes);
    let _uid = r.address()?;
    let key = r.string()?;
    let owner = r.address()?;
    r.end("node_owners entry")?;
    Ok((key, owner))
}

pub(crate) struct DecodedMarket {
    pub(crate) json: Value,
    pub(crate) accounts_table: ObjectId,
    pub(crate) earnings_table: ObjectId,
}

/// `economy::Market { id, price_cpu, price_mem, price_pod, last_period, escrow: Balance,
/// payouts: Balance, accounts: Table { id, size }, earnings: Table { id, size } }` (the tables'
/// entries are read one by one: `accounts` and `earnings` of the result are empty).
pub(crate) fn decode_market(bytes: &[u8]) -> Result<DecodedMarket, LedgerError> {
    let mut r = BcsReader::new(bytes);
    let id = r.address()?;
    let price_cpu = r.u64()?;
    let price_mem = r.u64()?;
    let price_pod = r.u64()?;
    let last_period = r.u64()?;
    let escrow = r.u64()?;
    let payouts = r.u64()?;
    let accounts_table = r.address()?;
    let _size = r.u64()?;
    let earnings_table = r.address()?;
    let _size = r.u64()?;
    r.end("Market")?;
    let json = json!({
        "id": id, "price_cpu": price_cpu, "price_mem": price_mem, "price_pod": price_pod,
        "last_period": last_period, "escrow": escrow, "payouts": payouts, "accounts": {},
        "earnings": {},
    });
    Ok(DecodedMarket {
        json,
        accounts_table,
        earnings_table,
    })
}

/// The contents of a `Field<address, Account>` or `Field<address, Earnings>` (five u64 each).
pub(crate) fn decode_five_u64_field(bytes: &[u8], what: &str) -> Result<[u64; 5], LedgerError> {
    let mut r = BcsReader::new(bytes);
    let _uid = r.address()?;
    let _key = r.address()?;
    let mut v = [0u64; 5];
    for slot in v.iter_mut() {
        *slot = r.u64()?;
    }
    r.end(what)?;
    Ok(v)
}

pub(crate) struct DecodedPool {
    pub(crate) json: Value,
    pub(crate) table_id: ObjectId,
    /// `None` for packages published before the node-id index.
    pub(crate) node_owners_table_id: Option<ObjectId>,
}

/// `staking::StakingPool { id, min_user_stake, min_node_stake, min_admin_stake, lockup_epochs,
/// slash_bps, total_staked, staked: Balance, slashed: Balance, stakes: Table { id, size },
/// node_owners: Table { id, size } }` (`node_owners` absent in older packages).
pub(crate) fn decode_staking_pool(bytes: &[u8]) -> Result<DecodedPool, LedgerError> {
    let mut r = BcsReader::new(bytes);
    let id = r.address()?;
    let min_user_stake = r.u64()?;
    let min_node_stake = r.u64()?;
    let min_admin_stake = r.u64()?;
    let lockup_epochs = r.u64()?;
    let slash_bps = r.u64()?;
    let total_staked = r.u64()?;
    let staked = r.u64()?;
    let slashed = r.u64()?;
    let table_id = r.address()?;
    let _size = r.u64()?;
    let node_owners_table_id = if r.remaining() > 0 {
        let id = r.address()?;
        let _size = r.u64()?;
        Some(id)
    } else {
        None
    };
    r.end("StakingPool")?;
    let json = json!({
        "id": id, "min_user_stake": min_user_stake, "min_node_stake": min_node_stake,
        "min_admin_stake": min_admin_stake, "lockup_epochs": lockup_epochs, "slash_bps": slash_bps,
        "total_staked": total_staked, "staked": staked, "slashed": slashed, "stakes": {},
        "node_owners": {},
    });
    Ok(DecodedPool {
        json,
        table_id,
        node_owners_table_id,
    })
}

/// Decodes the Move contents of a modelled object (`kind` from [`classify`]).
pub(crate) fn decode_contract_object(
    kind: &str,
    bytes: &[u8],
) -> Result<ContractObject, LedgerError> {
    let mut r = BcsReader::new(bytes);
    let inner = match kind {
        "Coin" => {
            let id = r.address()?;
            let value = r.u64()?;
            json!({ "id": id, "value": value })
        }
        "AdminCap" => json!({ "id": r.address()? }),
        "StakingPool" => {
            let pool = decode_staking_pool(bytes)?;
            r.pos = bytes.len();
            pool.json
        }
        "Gateway" => {
            let id = r.address()?;
            let master_endpoint = r.string()?;
            let token_ttl_epochs = r.u64()?;
            let tokens_issued = r.u64()?;
            json!({ "id": id, "master_endpoint": master_endpoint, "token_ttl_epochs": token_ttl_epochs,
                    "tokens_issued": tokens_issued })
        }
        "SealToken" => {
            let id = r.address()?;
            let owner = r.address()?;
            let role = r.u8()?;
            let node_id = r.string()?;
            let permissions = r.strings()?;
            let stake_generation = r.u64()?;
            let issued_epoch = r.u64()?;
            let expiry_epoch = r.u64()?;
            let master_endpoint = r.string()?;
            json!({ "id": id, "owner": owner, "role": role, "node_id": node_id, "permissions": permissions,
                    "stake_generation": stake_generation, "issued_epoch": issued_epoch,
                    "expiry_epoch": expiry_epoch, "master_endpoint": master_endpoint })
        }
        "EnclaveConfig" => {
            let id = r.address()?;
            let name = r.string()?;
            let pcr0 = r.bytes_vec()?;
            let pcr1 = r.bytes_vec()?;
            let pcr2 = r.bytes_vec()?;
            let version = r.u64()?;
            // Absent in packages published before state anchors.
            let (anchored_revision, anchored_at_ms) = if r.remaining() > 0 {
                (r.u64()?, r.u64()?)
            } else {
                (0, 0)
            };
            json!({ "id": id, "name": name, "pcr0": pcr0, "pcr1": pcr1, "pcr2": pcr2, "version": version,
                    "anchored_revision": anchored_revision, "anchored_at_ms": anchored_at_ms })
        }
        "Enclave" => {
            let id = r.address()?;
            let pk = r.bytes_vec()?;
            let config_version = r.u64()?;
            let owner = r.address()?;
            let config_id = r.address()?;
            // `platform` (u8) was appended to the Move struct; objects of an older package lack it.
            let platform = if r.remaining() > 0 { r.u8()? } else { 0 };
            json!({ "id": id, "pk": pk, "config_version": config_version, "owner": owner,
                    "config_id": config_id, "platform": platform })
        }
        "Market" => {
            let m = decode_market(bytes)?;
            r.pos = bytes.len();
            m.json
        }
        other => return Err(LedgerError::Unsupported(format!("Move type {other}"))),
    };
    r.end(kind)?;
    from_json(json!({ kind: inner }), kind)
}

/// Decodes a k3s_daas event (`None` for other events).
pub(crate) fn decode_event(
    module: &str,
    name: &str,
    bytes: &[u8],
) -> Result<Option<Event>, LedgerError> {
    let mut r = BcsReader::new(bytes);
    let inner = match (module, name) {
        ("staking", "Staked") => {
            let staker = r.address()?;
            let role = r.u8()?;
            let node_id = r.string()?;
            let amount = r.u64()?;
            let total = r.u64()?;
            let generation = r.u64()?;
            json!({ "staker": staker, "role": role, "node_id": node_id, "amount": amount, "total": total,
                    "generation": generation })
        }
        ("staking", "UnstakeRequested") => {
            let staker = r.address()?;
            json!({ "staker": staker, "unlock_epoch": r.u64()? })
        }
        ("staking", "Withdrawn") => {
            let staker = r.address()?;
            json!({ "staker": staker, "amount": r.u64()? })
        }
        ("staking", "Slashed") => {
            let staker = r.address()?;
            let penalty = r.u64()?;
            let remaining = r.u64()?;
            let reason = r.string()?;
            let epoch = r.u64()?;
            json!({ "staker": staker, "penalty": penalty, "remaining": remaining, "reason": reason, "epoch": epoch })
        }
        ("k8s_gateway", "SealTokenIssued") => {
            let token_id = r.address()?;
            let owner = r.address()?;
            let role = r.u8()?;
            let node_id = r.string()?;
            let expiry_epoch = r.u64()?;
            json!({ "token_id": token_id, "owner": owner, "role": role, "node_id": node_id,
                    "expiry_epoch": expiry_epoch })
        }
        ("k8s_gateway", "SealTokenRevoked") => {
            let token_id = r.address()?;
            json!({ "token_id": token_id, "owner": r.address()? })
        }
        ("enclave", "EnclaveRegistered") => {
            let enclave_id = r.address()?;
            let pk = r.bytes_vec()?;
            json!({ "enclave_id": enclave_id, "pk": pk, "config_version": r.u64()? })
        }
        ("enclave", "StateAnchored") => {
            let config_id = r.address()?;
            let revision = r.u64()?;
            json!({ "config_id": config_id, "revision": revision, "timestamp_ms": r.u64()? })
        }
        ("staking", "TreasuryWithdrawn") => {
            let recipient = r.address()?;
            let amount = r.u64()?;
            json!({ "recipient": recipient, "amount": amount, "remaining": r.u64()? })
        }
        ("economy", "Deposited") | ("economy", "EscrowWithdrawn") => {
            let user = r.address()?;
            let amount = r.u64()?;
            json!({ "user": user, "amount": amount, "balance": r.u64()? })
        }
        ("economy", "EarningsWithdrawn") => {
            let operator = r.address()?;
            let amount = r.u64()?;
            json!({ "operator": operator, "amount": amount, "balance": r.u64()? })
        }
        ("economy", "PricesSet") => {
            let price_cpu = r.u64()?;
            let price_mem = r.u64()?;
            json!({ "price_cpu": price_cpu, "price_mem": price_mem, "price_pod": r.u64()? })
        }
        ("economy", "Charged") => {
            let period = r.u64()?;
            let user = r.address()?;
            let node_id = r.string()?;
            let operator = r.address()?;
            let cost = r.u64()?;
            json!({ "period": period, "user": user, "node_id": node_id, "operator": operator,
                    "cost": cost, "charged": r.u64()? })
        }
        ("economy", "UsageSkipped") => {
            let period = r.u64()?;
            let user = r.address()?;
            let node_id = r.string()?;
            json!({ "period": period, "user": user, "node_id": node_id, "reason": r.string()? })
        }
        ("economy", "Settled") => {
            let period = r.u64()?;
            let lines = r.u64()?;
            let charged_total = r.u64()?;
            json!({ "period": period, "lines": lines, "charged_total": charged_total,
                    "epoch": r.u64()? })
        }
        _ => return Ok(None),
    };
    r.end(name)?;
    from_json(json!({ name: inner }), name).map(Some)
}

/// Abort-code names of contracts/SPEC.md.
fn abort_name(module: &str, code: u64) -> &'static str {
    match (module, code) {
        ("staking", 1) => "EInsufficientStake",
        ("staking", 2) => "EInvalidRole",
        ("staking", 3) => "EMissingNodeId",
        ("staking", 4) => "ERoleMismatch",
        ("staking", 5) => "ENoStake",
        ("staking", 6) => "ENotActive",
        ("staking", 7) => "EStillActive",
        ("staking", 8) => "ELocked",
        ("staking", 9) => "EInvalidConfig",
        ("staking", 10) => "EBadReport",
        ("staking", 11) => "EAlreadySlashed",
        ("staking", 12) => "ENodeIdTaken",
        ("staking", 13) => "EStaleReport",
        ("staking", 14) => "EInsufficientTreasury",
        ("economy", 301) => "EInsufficientBalance",
        ("economy", 302) => "EBadUsageReport",
        ("economy", 303) => "EReplayedReport",
        ("economy", 304) => "EStaleEnclave",
        ("economy", 305) => "EOverflow",
        ("economy", 306) => "EZeroAmount",
        ("economy", 307) => "ENoAccount",
        ("economy", 308) => "ENoEarnings",
        ("economy", 309) => "ELengthMismatch",
        ("k8s_gateway", 101) => "ENoActiveStake",
        ("k8s_gateway", 102) => "ENotOwner",
        ("k8s_gateway", 103) => "EInvalidTtl",
        ("enclave", 201) => "EInvalidPCRs",
        ("enclave", 202) => "EInvalidPK",
        ("enclave", 203) => "EStaleEnclave",
        ("enclave", 204) => "EBadAnchor",
        ("enclave", 205) => "ERevisionRollback",
        _ => "",
    }
}

fn map_execution_error(e: &sui_sdk_types::ExecutionError) -> ExecutionFailure {
    use sui_sdk_types::ExecutionError as E;
    match e {
        E::MoveAbort { location, code } => {
            let module = location.module.as_str().to_string();
            let function = location
                .function_name
                .as_ref()
                .map(|f| f.as_str().to_string())
                .unwrap_or_else(|| format!("#{}", location.function));
            let name = abort_name(&module, *code).to_string();
            ExecutionFailure::MoveAbort {
                message: format!("abort {code} in {}::{module}::{function}", location.package),
                module,
                function,
                code: *code,
                name,
            }
        }
        E::InsufficientCoinBalance => ExecutionFailure::InsufficientCoinBalance,
        E::CoinBalanceOverflow => ExecutionFailure::CoinBalanceOverflow,
        other => ExecutionFailure::Unsupported(format!("{other:?}")),
    }
}

/// Sui effects (+ events) → ledger effects (see the module documentation for approximations).
pub(crate) fn convert_effects(
    fx: &sui_sdk_types::TransactionEffects,
    events: &[sui_sdk_types::Event],
    sender: Address,
    package: &Address,
) -> Result<TransactionEffects, LedgerError> {
    use sui_sdk_types::ObjectChange as C;
    let status = match fx.status() {
        sui_sdk_types::ExecutionStatus::Success => ExecutionStatus::Success,
        sui_sdk_types::ExecutionStatus::Failure { error, command } => ExecutionStatus::Failure {
            command: command.and_then(|c| u16::try_from(c).ok()),
            error: map_execution_error(error),
        },
    };
    let (gas_id, lamport_version) = match fx {
        sui_sdk_types::TransactionEffects::V1(e) => (
            Some(*e.gas_object.reference.object_id()),
            e.gas_object.reference.version(),
        ),
        sui_sdk_types::TransactionEffects::V2(e) => {
            let gas = e
                .gas_object_index
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| e.changed_objects.get(i))
                .map(|c| c.object_id);
            (gas, e.lamport_version)
        }
    };
    let mut created = Vec::new();
    let mut mutated = Vec::new();
    let mut deleted = Vec::new();
    let mut gas_object = None;
    for change in fx.object_changes() {
        match change {
            C::Created {
                object_id,
                output_version,
                output_digest,
                output_owner,
            }
            | C::Unwrapped {
                object_id,
                output_version,
                output_digest,
                output_owner,
            } => {
                created.push((
                    ObjectReference::new(*object_id, output_version, *output_digest),
                    map_owner(output_owner),
                ));
            }
            C::Mutated {
                object_id,
                output_version,
                output_digest,
                output_owner,
                ..
            } => {
                let r = ObjectReference::new(*object_id, output_version, *output_digest);
                if Some(*object_id) == gas_id {
                    gas_object = Some(r.clone());
                }
                mutated.push((r, map_owner(output_owner)));
            }
            C::Deleted { object_id, .. }
            | C::Wrapped { object_id, .. }
            | C::UnwrappedThenDeleted { object_id } => {
                deleted.push(ObjectReference::new(
                    *object_id,
                    lamport_version,
                    Digest::ZERO,
                ));
            }
            _ => {}
        }
    }
    let gas_object =
        gas_object.unwrap_or_else(|| ObjectReference::new(Address::ZERO, 0, Digest::ZERO));
    let g = fx.gas_summary();
    let gas_used = g
        .computation_cost
        .saturating_add(g.storage_cost)
        .saturating_sub(g.storage_rebate);
    let mut out_events = Vec::new();
    for ev in events {
        if ev.type_.address() != package {
            continue;
        }
        if let Some(e) = decode_event(
            ev.type_.module().as_str(),
            ev.type_.name().as_str(),
            &ev.contents,
        )? {
            out_events.push(e);
        }
    }
    Ok(TransactionEffects {
        digest: *fx.transaction_digest(),
        sender,
        status,
        epoch: fx.epoch(),
        lamport_version,
        gas_used,
        gas_object,
        created,
        mutated,
        deleted,
        events: out_events,
    })
}

// ---------------------------------------------------------------------------------------------

#[async_trait::async_trait]
impl Ledger for SuiLedger {
    async fn deployment(&self) -> Result<Deployment, LedgerError> {
        let pool = self.shared_ref(&self.config.pool, "staking pool").await?;
        let gateway = self.shared_ref(&self.config.gateway, "gateway").await?;
        let admin_cap = match &self.config.admin_cap {
            Some(id) => Some(object_ref(
                &self
                    .fetch(id)
                    .await?
                    .ok_or(LedgerError::ObjectNotFound(*id))?,
            )?),
            None => None,
        };
        let enclave_config = match &self.config.enclave_config {
            Some(id) => Some(self.shared_ref(id, "enclave config").await?),
            None => None,
        };
        let market = match &self.config.market {
            Some(id) => Some(self.shared_ref(id, "market").await?),
            None => None,
        };
        Ok(Deployment {
            package: self.config.package,
            pool,
            gateway,
            admin_cap,
            enclave_config,
            market,
        })
    }

    async fn epoch(&self) -> Result<u64, LedgerError> {
        self.epoch_info()
            .await?
            .epoch
            .ok_or_else(|| LedgerError::Backend("get epoch: no epoch".into()))
    }

    async fn reference_gas_price(&self) -> Result<u64, LedgerError> {
        self.epoch_info()
            .await?
            .reference_gas_price
            .ok_or_else(|| LedgerError::Backend("get epoch: no reference gas price".into()))
    }

    async fn get_object(&self, id: ObjectId) -> Result<Option<LedgerObject>, LedgerError> {
        match self.fetch(&id).await? {
            Some(o) => to_ledger_object(&o, &self.config.package).map(Some),
            None => Ok(None),
        }
    }

    async fn gas_coins(&self, owner: Address) -> Result<Vec<(ObjectReference, u64)>, LedgerError> {
        let coin_type = StructTag::gas_coin().to_string();
        let objects = self
            .list_owned(
                &owner,
                &coin_type,
                &["object_id", "version", "digest", "balance"],
            )
            .await?;
        let mut coins = objects
            .iter()
            .map(|o| Ok((object_ref(o)?, o.balance.unwrap_or_default())))
            .collect::<Result<Vec<_>, LedgerError>>()?;
        coins.sort_by_key(|c| std::cmp::Reverse(c.1));
        Ok(coins)
    }

    async fn stake(&self, address: Address) -> Result<Option<StakeRecord>, LedgerError> {
        let table = self.stakes_table().await?;
        self.stake_in(&table, address).await
    }

    async fn node_stake(
        &self,
        node_id: &str,
    ) -> Result<Option<(Address, StakeRecord)>, LedgerError> {
        let (stakes, owners) = self.pool_tables().await?;
        let key = bcs::to_bytes(node_id).map_err(|e| backend("bcs string", e))?;
        let string_tag = StructTag::from_str("0x1::string::String")
            .map_err(|e| backend("String type tag", e))?;
        let field_id = owners.derive_dynamic_child_id(&TypeTag::Struct(Box::new(string_tag)), &key);
        let Some(o) = self.fetch(&field_id).await? else {
            return Ok(None);
        };
        let (key, owner) = decode_node_owner_field(contents(&o)?)?;
        if key != node_id {
            return Err(LedgerError::Backend(format!(
                "node_owners entry {field_id} holds key {key:?}, not {node_id:?}"
            )));
        }
        Ok(self.stake_in(&stakes, owner).await?.map(|r| (owner, r)))
    }

    async fn seal_token(&self, id: ObjectId) -> Result<Option<SealToken>, LedgerError> {
        let Some(o) = self.fetch(&id).await? else {
            return Ok(None);
        };
        let ty = o.object_type.as_deref().unwrap_or_default();
        match StructTag::from_str(ty)
            .ok()
            .and_then(|t| classify(&t, &self.config.package))
        {
            Some("SealToken") => match decode_contract_object("SealToken", contents(&o)?)? {
                ContractObject::SealToken(t) => Ok(Some(t)),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    async fn seal_tokens_of(&self, owner: Address) -> Result<Vec<SealToken>, LedgerError> {
        let ty = self.type_tag(contract::MODULE_GATEWAY, "SealToken");
        let objects = self
            .list_owned(&owner, &ty, &["object_id", "object_type", "contents"])
            .await?;
        let mut out = Vec::new();
        for o in &objects {
            if let ContractObject::SealToken(t) = decode_contract_object("SealToken", contents(o)?)?
            {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn seal_token_valid(&self, id: ObjectId) -> Result<bool, LedgerError> {
        let Some(token) = self.seal_token(id).await? else {
            return Ok(false);
        };
        let epoch = self.epoch().await?;
        if epoch > token.expiry_epoch {
            return Ok(false);
        }
        Ok(match self.stake(token.owner).await? {
            Some(r) => {
                r.status == contract::STATUS_ACTIVE && r.generation == token.stake_generation
            }
            None => false,
        })
    }

    async fn execute(&self, signed: SignedTransaction) -> Result<TransactionEffects, LedgerError> {
        let verified = signed.verify()?;
        let signatures = signed
            .signatures
            .iter()
            .map(|s| sui_sdk_types::UserSignature::from_bytes(s).map(proto::UserSignature::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                LedgerError::InvalidTransaction(TxError::MalformedSignature(e.to_string()))
            })?;
        let transaction = proto::Transaction::from(verified.data.clone());
        let req = proto::ExecuteTransactionRequest::default()
            .with_transaction(transaction)
            .with_signatures(signatures)
            .with_read_mask(mask(&["digest", "effects.bcs", "events.bcs"]));
        let mut client = self.client.clone();
        let resp = client
            .execution_client()
            .execute_transaction(req)
            .await
            .map_err(|s| status_err(&format!("execute {}", verified.digest), s))?
            .into_inner();
        let executed = resp
            .transaction
            .ok_or_else(|| LedgerError::Backend("execute: empty response".into()))?;
        self.convert_executed(&executed, Some(verified.sender))
    }

    async fn transaction(&self, digest: Digest) -> Result<Option<TransactionEffects>, LedgerError> {
        let mut client = self.client.clone();
        let req = proto::GetTransactionRequest::new(&digest).with_read_mask(mask(&[
            "digest",
            "transaction.bcs",
            "effects.bcs",
            "events.bcs",
        ]));
        match client.ledger_client().get_transaction(req).await {
            Ok(resp) => match resp.into_inner().transaction {
                Some(t) => self.convert_executed(&t, None).map(Some),
                None => Ok(None),
            },
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(status_err(&format!("get transaction {digest}"), s)),
        }
    }

    async fn faucet(
        &self,
        _address: Address,
        _amount: u64,
    ) -> Result<ObjectReference, LedgerError> {
        Err(LedgerError::Unsupported(
            "faucet on a Sui network (use the network's faucet)".into(),
        ))
    }

    async fn market(&self) -> Result<Option<crate::contract::Market>, LedgerError> {
        let Some(id) = self.config.market else {
            return Ok(None);
        };
        match self.fetch(&id).await? {
            Some(o) => {
                let m = decode_market(contents(&o)?)?;
                from_json(m.json, "Market").map(Some)
            }
            None => Ok(None),
        }
    }

    async fn account(
        &self,
        user: Address,
    ) -> Result<Option<crate::contract::Account>, LedgerError> {
        let Some(table) = self.market_tables().await?.map(|t| t.0) else {
            return Ok(None);
        };
        Ok(self
            .five_u64_entry(&table, user, "Account")
            .await?
            .map(|v| crate::contract::Account {
                balance: v[0],
                deposited: v[1],
                spent: v[2],
                last_period: v[3],
                last_charge: v[4],
            }))
    }

    async fn earnings(
        &self,
        operator: Address,
    ) -> Result<Option<crate::contract::Earnings>, LedgerError> {
        let Some(table) = self.market_tables().await?.map(|t| t.1) else {
            return Ok(None);
        };
        Ok(self
            .five_u64_entry(&table, operator, "Earnings")
            .await?
            .map(|v| crate::contract::Earnings {
                balance: v[0],
                earned: v[1],
                withdrawn: v[2],
                uptime_ms: v[3],
                last_period: v[4],
            }))
    }

    async fn recent_events(
        &self,
        _limit: usize,
    ) -> Result<Vec<crate::types::EventRecord>, LedgerError> {
        Err(LedgerError::Unsupported(
            "recent events on a Sui network: the fullnode gRPC API has no event query (use an indexer)"
                .into(),
        ))
    }
}

impl SuiLedger {
    /// The market's `accounts` and `earnings` table ids (`None` without a market).
    async fn market_tables(&self) -> Result<Option<(ObjectId, ObjectId)>, LedgerError> {
        let Some(id) = self.config.market else {
            return Ok(None);
        };
        let o = self
            .fetch(&id)
            .await?
            .ok_or(LedgerError::ObjectNotFound(id))?;
        let m = decode_market(contents(&o)?)?;
        Ok(Some((m.accounts_table, m.earnings_table)))
    }

    async fn five_u64_entry(
        &self,
        table: &ObjectId,
        key: Address,
        what: &str,
    ) -> Result<Option<[u64; 5]>, LedgerError> {
        let bytes = bcs::to_bytes(&key).map_err(|e| backend("bcs address", e))?;
        let field_id = table.derive_dynamic_child_id(&TypeTag::Address, &bytes);
        match self.fetch(&field_id).await? {
            Some(o) => decode_five_u64_field(contents(&o)?, what).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(b: u8) -> Address {
        Address::new([b; 32])
    }

    #[test]
    fn seal_token_layout() {
        let bytes = bcs::to_bytes(&(
            addr(1),
            addr(2),
            1u8,
            "node-1".to_string(),
            vec!["node:self".to_string()],
            3u64,
            4u64,
            34u64,
            "https://m:6443".to_string(),
        ))
        .unwrap();
        let ContractObject::SealToken(t) = decode_contract_object("SealToken", &bytes).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (t.id, t.owner, t.role, t.node_id.as_str()),
            (addr(1), addr(2), 1, "node-1")
        );
        assert_eq!(t.permissions, vec!["node:self".to_string()]);
        assert_eq!(
            (t.stake_generation, t.issued_epoch, t.expiry_epoch),
            (3, 4, 34)
        );
        assert_eq!(t.master_endpoint, "https://m:6443");
        // Truncated and trailing bytes are errors, not panics.
        assert!(decode_contract_object("SealToken", &bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_contract_object("SealToken", &longer).is_err());
        assert!(decode_contract_object("SealToken", &[]).is_err());
    }

    #[test]
    fn stake_field_layout_with_and_without_slashed_epoch() {
        let record = (
            addr(5),
            1u8,
            "n".to_string(),
            1000u64,
            2u64,
            0u8,
            0u64,
            1u64,
            7u64,
        );
        let with = bcs::to_bytes(&(addr(9), addr(5), record.clone(), 6u64)).unwrap();
        let r = decode_stake_field(&with).unwrap();
        assert_eq!(
            (r.staker, r.role, r.node_id.as_str(), r.amount),
            (addr(5), 1, "n", 1000)
        );
        assert_eq!(
            (r.staked_epoch, r.status, r.generation, r.slashed_total),
            (2, 0, 1, 7)
        );
        assert_eq!(r.slashed_epoch, 6);
        let without = bcs::to_bytes(&(addr(9), addr(5), record.clone())).unwrap();
        assert_eq!(decode_stake_field(&without).unwrap().slashed_epoch, 0);
        let counted = bcs::to_bytes(&(addr(9), addr(5), record, 6u64, 3u64)).unwrap();
        let r = decode_stake_field(&counted).unwrap();
        assert_eq!((r.slashed_epoch, r.slash_count), (6, 3));
    }

    #[test]
    fn pool_gateway_coin_enclave_layouts() {
        let pool = bcs::to_bytes(&(
            addr(1),
            100u64,
            1000u64,
            10000u64,
            2u64,
            1000u64,
            5u64,
            5u64,
            0u64,
            addr(7),
            1u64,
        ))
        .unwrap();
        let d = decode_staking_pool(&pool).unwrap();
        assert_eq!(d.table_id, addr(7));
        let ContractObject::StakingPool(p) = decode_contract_object("StakingPool", &pool).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (p.min_node_stake, p.slash_bps, p.total_staked),
            (1000, 1000, 5)
        );
        assert!(p.stakes.is_empty());
        assert_eq!(d.node_owners_table_id, None);
        let pool = bcs::to_bytes(&(
            (
                addr(1),
                100u64,
                1000u64,
                10000u64,
                2u64,
                1000u64,
                5u64,
                5u64,
                0u64,
            ),
            (addr(7), 1u64, addr(8), 1u64),
        ))
        .unwrap();
        let d = decode_staking_pool(&pool).unwrap();
        assert_eq!(
            (d.table_id, d.node_owners_table_id),
            (addr(7), Some(addr(8)))
        );
        let entry = bcs::to_bytes(&(addr(9), "node-1".to_string(), addr(5))).unwrap();
        assert_eq!(
            decode_node_owner_field(&entry).unwrap(),
            ("node-1".to_string(), addr(5))
        );
        assert!(decode_node_owner_field(&entry[..entry.len() - 1]).is_err());

        let gw = bcs::to_bytes(&(addr(2), "https://m".to_string(), 30u64, 9u64)).unwrap();
        let ContractObject::Gateway(g) = decode_contract_object("Gateway", &gw).unwrap() else {
            panic!()
        };
        assert_eq!(
            (
                g.master_endpoint.as_str(),
                g.token_ttl_epochs,
                g.tokens_issued
            ),
            ("https://m", 30, 9)
        );

        let coin = bcs::to_bytes(&(addr(3), 42u64)).unwrap();
        assert_eq!(decode_contract_object("Coin", &coin).unwrap().id(), addr(3));

        let enclave = bcs::to_bytes(&(addr(4), vec![7u8; 32], 2u64, addr(5), addr(6))).unwrap();
        let ContractObject::Enclave(e) = decode_contract_object("Enclave", &enclave).unwrap()
        else {
            panic!()
        };
        assert_eq!((e.pk.len(), e.config_version, e.owner), (32, 2, addr(5)));
        assert_eq!(e.platform, 0);
        let enclave =
            bcs::to_bytes(&(addr(4), vec![7u8; 32], 2u64, addr(5), addr(6), 2u8)).unwrap();
        let ContractObject::Enclave(e) = decode_contract_object("Enclave", &enclave).unwrap()
        else {
            panic!()
        };
        assert_eq!((e.platform, e.config_id), (2, addr(6)));

        let cfg = bcs::to_bytes(&(
            addr(8),
            "m".to_string(),
            vec![0u8; 48],
            vec![1u8; 48],
            vec![2u8; 48],
            3u64,
        ))
        .unwrap();
        let ContractObject::EnclaveConfig(c) =
            decode_contract_object("EnclaveConfig", &cfg).unwrap()
        else {
            panic!()
        };
        assert_eq!((c.pcr1[0], c.version, c.anchored_revision), (1, 3, 0));
        let cfg = bcs::to_bytes(&(
            addr(8),
            "m".to_string(),
            vec![0u8; 48],
            vec![1u8; 48],
            vec![2u8; 48],
            3u64,
            41u64,
            77u64,
        ))
        .unwrap();
        let ContractObject::EnclaveConfig(c) =
            decode_contract_object("EnclaveConfig", &cfg).unwrap()
        else {
            panic!()
        };
        assert_eq!((c.anchored_revision, c.anchored_at_ms), (41, 77));
        let anchored = bcs::to_bytes(&(addr(8), 41u64, 77u64)).unwrap();
        assert!(matches!(
            decode_event("enclave", "StateAnchored", &anchored).unwrap(),
            Some(Event::StateAnchored {
                revision: 41,
                timestamp_ms: 77,
                ..
            })
        ));
    }

    #[test]
    fn events() {
        let staked = bcs::to_bytes(&(addr(1), 1u8, "n".to_string(), 10u64, 20u64, 2u64)).unwrap();
        match decode_event("staking", "Staked", &staked).unwrap() {
            Some(Event::Staked {
                staker,
                total,
                generation,
                ..
            }) => assert_eq!((staker, total, generation), (addr(1), 20, 2)),
            other => panic!("{other:?}"),
        }
        let issued = bcs::to_bytes(&(addr(2), addr(3), 0u8, String::new(), 30u64)).unwrap();
        assert!(matches!(
            decode_event("k8s_gateway", "SealTokenIssued", &issued).unwrap(),
            Some(Event::SealTokenIssued {
                expiry_epoch: 30,
                ..
            })
        ));
        assert!(decode_event("staking", "Unknown", &[]).unwrap().is_none());
        assert!(decode_event("staking", "Withdrawn", &[1, 2]).is_err());
    }

    #[test]
    fn economy_layouts_and_events() {
        // economy::Market { id, 3 prices, last_period, escrow, payouts, accounts: Table, earnings: Table }
        let bytes = bcs::to_bytes(&(
            addr(7),
            (1000u64, 1u64, 1000u64, 4u64),
            (500u64, 25u64),
            (addr(8), 2u64),
            (addr(9), 1u64),
        ))
        .unwrap();
        let m = decode_market(&bytes).unwrap();
        assert_eq!((m.accounts_table, m.earnings_table), (addr(8), addr(9)));
        let ContractObject::Market(market) = decode_contract_object("Market", &bytes).unwrap()
        else {
            panic!("not a market")
        };
        assert_eq!(
            (
                market.id,
                market.price_cpu,
                market.last_period,
                market.escrow,
                market.payouts
            ),
            (addr(7), 1000, 4, 500, 25)
        );
        assert!(market.accounts.is_empty());
        assert!(decode_market(&bytes[..bytes.len() - 1]).is_err());
        // Field<address, Account>: uid, key, five u64
        let field = bcs::to_bytes(&(addr(1), addr(2), [5u64, 6, 7, 8, 9])).unwrap();
        assert_eq!(
            decode_five_u64_field(&field, "Account").unwrap(),
            [5, 6, 7, 8, 9]
        );
        assert!(decode_five_u64_field(&field[1..], "Account").is_err());
        let charged =
            bcs::to_bytes(&(3u64, addr(1), "w-1".to_string(), addr(2), 1562u64, 1000u64)).unwrap();
        assert_eq!(
            decode_event("economy", "Charged", &charged).unwrap(),
            Some(Event::Charged {
                period: 3,
                user: addr(1),
                node_id: "w-1".into(),
                operator: addr(2),
                cost: 1562,
                charged: 1000
            })
        );
        let settled = bcs::to_bytes(&(3u64, 2u64, 2562u64, 9u64)).unwrap();
        assert!(matches!(
            decode_event("economy", "Settled", &settled).unwrap(),
            Some(Event::Settled {
                charged_total: 2562,
                ..
            })
        ));
        let skipped =
            bcs::to_bytes(&(3u64, addr(1), "w".to_string(), "not_active".to_string())).unwrap();
        assert!(matches!(
            decode_event("economy", "UsageSkipped", &skipped).unwrap(),
            Some(Event::UsageSkipped { reason, .. }) if reason == "not_active"
        ));
        let dep = bcs::to_bytes(&(addr(1), 10u64, 20u64)).unwrap();
        assert!(matches!(
            decode_event("economy", "Deposited", &dep).unwrap(),
            Some(Event::Deposited { balance: 20, .. })
        ));
        assert_eq!(abort_name("economy", 309), "ELengthMismatch");
        assert_eq!(abort_name("staking", 14), "EInsufficientTreasury");
        let t = StructTag::from_str(&format!("{}::economy::Market", addr(0xaa))).unwrap();
        assert_eq!(classify(&t, &addr(0xaa)), Some("Market"));
    }

    #[test]
    fn classify_types() {
        let pkg = addr(0xaa);
        let t = StructTag::from_str(&format!("{pkg}::k8s_gateway::SealToken")).unwrap();
        assert_eq!(classify(&t, &pkg), Some("SealToken"));
        assert_eq!(classify(&t, &addr(0xbb)), None);
        let coin = StructTag::from_str("0x2::coin::Coin<0x2::sui::SUI>").unwrap();
        assert_eq!(classify(&coin, &pkg), Some("Coin"));
        assert_eq!(abort_name("staking", 5), "ENoStake");
    }
}
