//! The embedded ledger: a Sui-like object store that executes real signed Sui programmable
//! transactions, dispatching each MoveCall to the Rust port of the k3s_daas package
//! ([`crate::contract`]), persisted in redb (one atomic write transaction per executed
//! transaction).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sui_sdk_types::{
    Address, Argument, Command, Digest, Input, MoveCall, ObjectReference, TransactionExpiration,
};

use crate::contract::{
    self, ContractObject, EnclaveConfig, NewObject, ObjectId, SealToken, StakeRecord,
};
use crate::tx::{self, Deployment, SharedRef, SignedTransaction, VerifiedTransaction};
use crate::types::{
    EventRecord, ExecutionFailure, ExecutionStatus, LedgerObject, ObjectData, ObjectKind, Owner,
    TransactionEffects,
};
use crate::{Ledger, LedgerError};

/// Reference gas price of the embedded ledger (MIST per unit).
pub const REFERENCE_GAS_PRICE: u64 = tx::REFERENCE_GAS_PRICE;
/// Fixed computation cost charged per transaction, in gas units (fee = units × gas price).
pub const COMPUTATION_UNITS: u64 = 1000;

const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
const EFFECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("effects");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_KEY: &str = "meta";
/// Id of the `economy::Market` (a separate key: ledgers created before the economy get their
/// market when they are next opened).
const MARKET_KEY: &str = "market";
/// Event log: sequence number -> BCS [`EventRecord`] (for `recent_events`).
const EVENT_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("event_log");

/// Source of wall-clock time (ms since the Unix epoch).
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// An enclave config created at genesis (as if by `create_enclave_config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisEnclaveConfig {
    pub name: String,
    pub pcr0: Vec<u8>,
    pub pcr1: Vec<u8>,
    pub pcr2: Vec<u8>,
}

/// Initial state of a new embedded ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisConfig {
    /// Publisher: receives the AdminCap.
    pub admin: Address,
    /// Initial `Gateway.master_endpoint`.
    pub master_endpoint: String,
    /// Initial SUI coins.
    pub coins: Vec<(Address, u64)>,
    /// Epochs advance every this long (None: only by `advance_epoch`).
    pub epoch_duration: Option<Duration>,
    pub enclave_config: Option<GenesisEnclaveConfig>,
}

impl GenesisConfig {
    pub fn new(admin: Address) -> Self {
        GenesisConfig {
            admin,
            master_endpoint: String::new(),
            coins: Vec::new(),
            epoch_duration: None,
            enclave_config: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    package: Address,
    pool: ObjectId,
    gateway: ObjectId,
    admin_cap: ObjectId,
    enclave_config: Option<ObjectId>,
    epoch: u64,
    epoch_start_ms: u64,
    epoch_duration_ms: Option<u64>,
    mint_nonce: u64,
    genesis_digest: Digest,
}

struct State {
    objects: BTreeMap<ObjectId, LedgerObject>,
    meta: Meta,
    market: ObjectId,
    /// Next key of the event log.
    next_event: u64,
}

struct Shared {
    db: Database,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    verifier: Mutex<Option<Arc<dyn contract::AttestationVerifier>>>,
}

/// The embedded ledger. Cheap to clone (shared state).
#[derive(Clone)]
pub struct EmbeddedLedger {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLedger").finish_non_exhaustive()
    }
}

fn storage<E: Into<redb::Error>>(e: E) -> LedgerError {
    LedgerError::Storage(e.into().to_string())
}

fn codec(e: bcs::Error) -> LedgerError {
    LedgerError::Storage(format!("bcs: {e}"))
}

impl EmbeddedLedger {
    /// Opens the ledger at `path`, creating it with `genesis` if it does not exist yet (an
    /// existing ledger keeps its own genesis and ignores `genesis`).
    pub fn open(path: impl AsRef<Path>, genesis: &GenesisConfig) -> Result<Self, LedgerError> {
        let db = Database::create(path.as_ref()).map_err(storage)?;
        Self::with_db(db, genesis, Arc::new(SystemClock))
    }

    /// Like [`open`](Self::open) with an injected clock.
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        genesis: &GenesisConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LedgerError> {
        let db = Database::create(path.as_ref()).map_err(storage)?;
        Self::with_db(db, genesis, clock)
    }

    /// A ledger kept in memory only.
    pub fn in_memory(genesis: &GenesisConfig) -> Result<Self, LedgerError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(storage)?;
        Self::with_db(db, genesis, Arc::new(SystemClock))
    }

    fn with_db(
        db: Database,
        genesis: &GenesisConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LedgerError> {
        let existing = {
            let r = db.begin_read().map_err(storage)?;
            match r.open_table(META) {
                Ok(t) => t
                    .get(META_KEY)
                    .map_err(storage)?
                    .map(|v| v.value().to_vec()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(storage(e)),
            }
        };
        let state = match existing {
            Some(bytes) => {
                let meta: Meta = bcs::from_bytes(&bytes).map_err(codec)?;
                let r = db.begin_read().map_err(storage)?;
                let t = r.open_table(OBJECTS).map_err(storage)?;
                let mut objects = BTreeMap::new();
                for entry in t.iter().map_err(storage)? {
                    let (_, v) = entry.map_err(storage)?;
                    let o: LedgerObject = bcs::from_bytes(v.value()).map_err(codec)?;
                    objects.insert(o.id, o);
                }
                let m = r.open_table(META).map_err(storage)?;
                let market = match m.get(MARKET_KEY).map_err(storage)? {
                    Some(v) => Some(bcs::from_bytes::<ObjectId>(v.value()).map_err(codec)?),
                    None => None,
                };
                let next_event = match r.open_table(EVENT_LOG) {
                    Ok(t) => t
                        .last()
                        .map_err(storage)?
                        .map_or(0, |(k, _)| k.value().saturating_add(1)),
                    Err(redb::TableError::TableDoesNotExist(_)) => 0,
                    Err(e) => return Err(storage(e)),
                };
                drop(m);
                drop(t);
                drop(r);
                let market = match market {
                    Some(id) => id,
                    None => {
                        // A ledger created before the economy: create its market now.
                        let o = genesis_market(&meta);
                        let w = db.begin_write().map_err(storage)?;
                        {
                            let mut t = w.open_table(OBJECTS).map_err(storage)?;
                            let bytes = bcs::to_bytes(&o).map_err(codec)?;
                            t.insert(o.id.as_bytes(), bytes.as_slice())
                                .map_err(storage)?;
                            let mut m = w.open_table(META).map_err(storage)?;
                            let bytes = bcs::to_bytes(&o.id).map_err(codec)?;
                            m.insert(MARKET_KEY, bytes.as_slice()).map_err(storage)?;
                        }
                        w.commit().map_err(storage)?;
                        let id = o.id;
                        objects.insert(id, o);
                        id
                    }
                };
                State {
                    objects,
                    meta,
                    market,
                    next_event,
                }
            }
            None => {
                let state = build_genesis(genesis, clock.now_ms())?;
                let w = db.begin_write().map_err(storage)?;
                {
                    let mut t = w.open_table(OBJECTS).map_err(storage)?;
                    for o in state.objects.values() {
                        let bytes = bcs::to_bytes(o).map_err(codec)?;
                        t.insert(o.id.as_bytes(), bytes.as_slice())
                            .map_err(storage)?;
                    }
                    w.open_table(EFFECTS).map_err(storage)?;
                    w.open_table(EVENT_LOG).map_err(storage)?;
                    let mut m = w.open_table(META).map_err(storage)?;
                    let bytes = bcs::to_bytes(&state.meta).map_err(codec)?;
                    m.insert(META_KEY, bytes.as_slice()).map_err(storage)?;
                    let bytes = bcs::to_bytes(&state.market).map_err(codec)?;
                    m.insert(MARKET_KEY, bytes.as_slice()).map_err(storage)?;
                }
                w.commit().map_err(storage)?;
                state
            }
        };
        Ok(EmbeddedLedger {
            shared: Arc::new(Shared {
                db,
                state: Mutex::new(state),
                clock,
                verifier: Mutex::new(None),
            }),
        })
    }

    /// Installs the native Nitro attestation verifier used by `enclave::register_enclave_raw`.
    pub fn set_attestation_verifier(&self, verifier: Arc<dyn contract::AttestationVerifier>) {
        if let Ok(mut v) = self.shared.verifier.lock() {
            *v = Some(verifier);
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, LedgerError> {
        self.shared
            .state
            .lock()
            .map_err(|_| LedgerError::Storage("ledger state lock poisoned".into()))
    }

    /// Brings the epoch up to date with the clock; returns the current epoch.
    fn tick(&self, state: &mut State) -> Result<u64, LedgerError> {
        let now = self.shared.clock.now_ms();
        let m = &mut state.meta;
        if let Some(d) = m.epoch_duration_ms.filter(|d| *d > 0) {
            if now >= m.epoch_start_ms.saturating_add(d) {
                let k = (now - m.epoch_start_ms) / d;
                m.epoch = m.epoch.saturating_add(k);
                m.epoch_start_ms = m.epoch_start_ms.saturating_add(k.saturating_mul(d));
                self.persist_meta(&state.meta)?;
            }
        }
        Ok(state.meta.epoch)
    }

    fn persist_meta(&self, meta: &Meta) -> Result<(), LedgerError> {
        let w = self.shared.db.begin_write().map_err(storage)?;
        {
            let mut m = w.open_table(META).map_err(storage)?;
            let bytes = bcs::to_bytes(meta).map_err(codec)?;
            m.insert(META_KEY, bytes.as_slice()).map_err(storage)?;
        }
        w.commit().map_err(storage)
    }

    /// Current epoch.
    pub fn current_epoch(&self) -> Result<u64, LedgerError> {
        let mut s = self.lock()?;
        self.tick(&mut s)
    }

    /// Ends the current epoch now; returns the new epoch.
    pub fn advance_epoch(&self) -> Result<u64, LedgerError> {
        let mut s = self.lock()?;
        self.tick(&mut s)?;
        let mut meta = s.meta.clone();
        meta.epoch = meta
            .epoch
            .checked_add(1)
            .ok_or_else(|| LedgerError::Storage("epoch overflow".into()))?;
        meta.epoch_start_ms = self.shared.clock.now_ms();
        self.persist_meta(&meta)?;
        s.meta = meta;
        Ok(s.meta.epoch)
    }

    pub fn reference_gas_price_now(&self) -> u64 {
        REFERENCE_GAS_PRICE
    }

    /// Package id and current refs of the singleton objects.
    pub fn deployment_now(&self) -> Result<Deployment, LedgerError> {
        let s = self.lock()?;
        deployment_of(&s)
    }

    pub fn object(&self, id: &ObjectId) -> Result<Option<LedgerObject>, LedgerError> {
        Ok(self.lock()?.objects.get(id).cloned())
    }

    /// Objects owned by `owner`, optionally of one kind.
    pub fn owned_objects(
        &self,
        owner: &Address,
        kind: Option<ObjectKind>,
    ) -> Result<Vec<LedgerObject>, LedgerError> {
        let s = self.lock()?;
        Ok(s.objects
            .values()
            .filter(|o| o.owner == Owner::Address(*owner) && kind.is_none_or(|k| o.kind() == k))
            .cloned()
            .collect())
    }

    pub fn pool(&self) -> Result<contract::StakingPool, LedgerError> {
        let s = self.lock()?;
        pool_of(&s).cloned()
    }

    pub fn stake_record(&self, address: &Address) -> Result<Option<StakeRecord>, LedgerError> {
        let s = self.lock()?;
        Ok(pool_of(&s)?.stakes.get(address).cloned())
    }

    /// The holder of `node_id` (`staking::node_owner`) and its record.
    pub fn node_stake_record(
        &self,
        node_id: &str,
    ) -> Result<Option<(Address, StakeRecord)>, LedgerError> {
        let s = self.lock()?;
        Ok(contract::node_stake(pool_of(&s)?, node_id))
    }

    pub fn seal_tokens_owned(&self, owner: &Address) -> Result<Vec<SealToken>, LedgerError> {
        Ok(self
            .owned_objects(owner, Some(ObjectKind::SealToken))?
            .into_iter()
            .filter_map(|o| match o.data {
                ObjectData::Move(ContractObject::SealToken(t)) => Some(t),
                _ => None,
            })
            .collect())
    }

    pub fn seal_token_by_id(&self, id: &ObjectId) -> Result<Option<SealToken>, LedgerError> {
        let s = self.lock()?;
        Ok(match s.objects.get(id).map(|o| &o.data) {
            Some(ObjectData::Move(ContractObject::SealToken(t))) => Some(t.clone()),
            _ => None,
        })
    }

    /// `k8s_gateway::is_valid` at the current epoch.
    pub fn is_seal_token_valid(&self, id: &ObjectId) -> Result<bool, LedgerError> {
        let mut s = self.lock()?;
        let epoch = self.tick(&mut s)?;
        let Some(ObjectData::Move(ContractObject::SealToken(t))) =
            s.objects.get(id).map(|o| &o.data)
        else {
            return Ok(false);
        };
        Ok(contract::is_valid(t, pool_of(&s)?, epoch))
    }

    /// SUI coins of `owner`, largest first.
    pub fn coins_of(&self, owner: &Address) -> Result<Vec<(ObjectReference, u64)>, LedgerError> {
        let mut coins: Vec<_> = self
            .owned_objects(owner, Some(ObjectKind::Coin))?
            .into_iter()
            .filter_map(|o| o.coin_value().map(|v| (o.object_ref(), v)))
            .collect();
        coins.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.object_id().cmp(b.0.object_id())));
        Ok(coins)
    }

    /// The `economy::Market`.
    pub fn market_now(&self) -> Result<contract::Market, LedgerError> {
        let s = self.lock()?;
        market_of(&s).cloned()
    }

    /// The escrow account of `user`.
    pub fn account_of(&self, user: &Address) -> Result<Option<contract::Account>, LedgerError> {
        let s = self.lock()?;
        Ok(market_of(&s)?.accounts.get(user).cloned())
    }

    /// The earnings of node operator `operator`.
    pub fn earnings_of(
        &self,
        operator: &Address,
    ) -> Result<Option<contract::Earnings>, LedgerError> {
        let s = self.lock()?;
        Ok(market_of(&s)?.earnings.get(operator).cloned())
    }

    /// The last `limit` events of executed transactions, newest first.
    pub fn recent_events_now(&self, limit: usize) -> Result<Vec<EventRecord>, LedgerError> {
        let r = self.shared.db.begin_read().map_err(storage)?;
        let t = match r.open_table(EVENT_LOG) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut out = Vec::new();
        for entry in t.iter().map_err(storage)?.rev().take(limit) {
            let (_, v) = entry.map_err(storage)?;
            out.push(bcs::from_bytes(v.value()).map_err(codec)?);
        }
        Ok(out)
    }

    /// Effects of an executed transaction.
    pub fn effects(&self, digest: &Digest) -> Result<Option<TransactionEffects>, LedgerError> {
        let r = self.shared.db.begin_read().map_err(storage)?;
        let t = r.open_table(EFFECTS).map_err(storage)?;
        match t.get(digest.inner().as_slice()).map_err(storage)? {
            Some(v) => Ok(Some(bcs::from_bytes(v.value()).map_err(codec)?)),
            None => Ok(None),
        }
    }

    /// Faucet: mints a new SUI coin for `address` (genesis-authorized, not a transaction).
    pub fn mint(&self, address: Address, amount: u64) -> Result<ObjectReference, LedgerError> {
        let mut s = self.lock()?;
        let mut meta = s.meta.clone();
        let nonce = meta.mint_nonce;
        meta.mint_nonce += 1;
        let mut h = sui_sdk_types::hash::Hasher::new();
        h.update(b"k3s-daas faucet");
        h.update(meta.genesis_digest.inner());
        h.update(nonce.to_le_bytes());
        let mint_digest = h.finalize();
        let mut ctx = contract::TxContext::new(address, meta.epoch, 0, mint_digest);
        let id = ctx.fresh_id();
        let coin = LedgerObject::new(
            id,
            1,
            Owner::Address(address),
            mint_digest,
            ObjectData::Move(ContractObject::Coin(contract::Coin { id, value: amount })),
        );
        let w = self.shared.db.begin_write().map_err(storage)?;
        {
            let mut t = w.open_table(OBJECTS).map_err(storage)?;
            let bytes = bcs::to_bytes(&coin).map_err(codec)?;
            t.insert(id.as_bytes(), bytes.as_slice()).map_err(storage)?;
            let mut m = w.open_table(META).map_err(storage)?;
            let bytes = bcs::to_bytes(&meta).map_err(codec)?;
            m.insert(META_KEY, bytes.as_slice()).map_err(storage)?;
        }
        w.commit().map_err(storage)?;
        let r = coin.object_ref();
        s.objects.insert(id, coin);
        s.meta = meta;
        Ok(r)
    }

    /// Verifies and executes a signed transaction. Returns `Err` (nothing changed) when the
    /// transaction is refused, `Ok(effects)` when it was executed (successfully or not).
    pub fn execute_signed(
        &self,
        signed: &SignedTransaction,
    ) -> Result<TransactionEffects, LedgerError> {
        let verified = tx::verify(&signed.tx_bytes, &signed.signatures)?;
        let verifier = self.shared.verifier.lock().ok().and_then(|v| v.clone());
        let mut s = self.lock()?;
        let epoch = self.tick(&mut s)?;
        if self.effects(&verified.digest)?.is_some() {
            return Err(LedgerError::AlreadyExecuted(verified.digest));
        }
        let now_ms = self.shared.clock.now_ms();
        let outcome = execute(&s, &verified, epoch, now_ms, verifier.as_deref())?;
        // Commit atomically: objects, effects, deployment meta.
        let mut meta = s.meta.clone();
        if let Some(id) = outcome.new_enclave_config {
            meta.enclave_config = Some(id);
        }
        let w = self.shared.db.begin_write().map_err(storage)?;
        {
            let mut t = w.open_table(OBJECTS).map_err(storage)?;
            for o in &outcome.written {
                let bytes = bcs::to_bytes(o).map_err(codec)?;
                t.insert(o.id.as_bytes(), bytes.as_slice())
                    .map_err(storage)?;
            }
            for id in &outcome.removed {
                t.remove(id.as_bytes()).map_err(storage)?;
            }
            let mut e = w.open_table(EFFECTS).map_err(storage)?;
            let bytes = bcs::to_bytes(&outcome.effects).map_err(codec)?;
            e.insert(verified.digest.inner().as_slice(), bytes.as_slice())
                .map_err(storage)?;
            let mut m = w.open_table(META).map_err(storage)?;
            let bytes = bcs::to_bytes(&meta).map_err(codec)?;
            m.insert(META_KEY, bytes.as_slice()).map_err(storage)?;
            let mut log = w.open_table(EVENT_LOG).map_err(storage)?;
            for (i, event) in outcome.effects.events.iter().enumerate() {
                let record = EventRecord {
                    digest: verified.digest,
                    timestamp_ms: now_ms,
                    sender: verified.sender,
                    event: event.clone(),
                };
                let bytes = bcs::to_bytes(&record).map_err(codec)?;
                log.insert(s.next_event + i as u64, bytes.as_slice())
                    .map_err(storage)?;
            }
        }
        w.commit().map_err(storage)?;
        s.next_event += outcome.effects.events.len() as u64;
        for o in outcome.written {
            s.objects.insert(o.id, o);
        }
        for id in &outcome.removed {
            s.objects.remove(id);
        }
        s.meta = meta;
        Ok(outcome.effects)
    }

    /// Test-only genesis path: registers an enclave with `pk` against the current enclave config
    /// without an attestation (there is no verifier in this crate).
    #[cfg(test)]
    pub(crate) fn insert_enclave_for_tests(&self, pk: [u8; 32]) -> Result<SharedRef, LedgerError> {
        let mut s = self.lock()?;
        let config_id = s
            .meta
            .enclave_config
            .ok_or_else(|| LedgerError::Genesis("no enclave config".into()))?;
        let Some(ObjectData::Move(ContractObject::EnclaveConfig(config))) =
            s.objects.get(&config_id).map(|o| o.data.clone())
        else {
            return Err(LedgerError::Genesis("enclave config missing".into()));
        };
        let mut h = sui_sdk_types::hash::Hasher::new();
        h.update(b"test enclave");
        h.update(pk);
        let digest = h.finalize();
        let mut ctx = contract::TxContext::new(Address::ZERO, s.meta.epoch, 1, digest);
        let doc = contract::AttestedEnclave {
            pcr0: config.pcr0.clone(),
            pcr1: config.pcr1.clone(),
            pcr2: config.pcr2.clone(),
            public_key: pk.to_vec(),
            platform: contract::PLATFORM_NITRO,
        };
        let id = contract::register_enclave(&config, &doc, &mut ctx)
            .map_err(|e| LedgerError::Genesis(e.to_string()))?;
        let Some(NewObject::Shared(obj)) = ctx.new_objects.pop() else {
            return Err(LedgerError::Genesis("enclave not shared".into()));
        };
        let o = LedgerObject::new(
            id,
            1,
            Owner::Shared {
                initial_shared_version: 1,
            },
            digest,
            ObjectData::Move(obj),
        );
        let w = self.shared.db.begin_write().map_err(storage)?;
        {
            let mut t = w.open_table(OBJECTS).map_err(storage)?;
            let bytes = bcs::to_bytes(&o).map_err(codec)?;
            t.insert(id.as_bytes(), bytes.as_slice()).map_err(storage)?;
        }
        w.commit().map_err(storage)?;
        s.objects.insert(id, o);
        Ok(SharedRef {
            id,
            initial_shared_version: 1,
        })
    }
}

fn pool_of(s: &State) -> Result<&contract::StakingPool, LedgerError> {
    match s.objects.get(&s.meta.pool).map(|o| &o.data) {
        Some(ObjectData::Move(ContractObject::StakingPool(p))) => Ok(p),
        _ => Err(LedgerError::Storage("staking pool missing".into())),
    }
}

fn market_of(s: &State) -> Result<&contract::Market, LedgerError> {
    match s.objects.get(&s.market).map(|o| &o.data) {
        Some(ObjectData::Move(ContractObject::Market(m))) => Ok(m),
        _ => Err(LedgerError::Storage("market missing".into())),
    }
}

/// The `economy::Market` of a ledger (as if shared by `economy::init` at genesis), with an id
/// derived from the genesis digest.
fn genesis_market(meta: &Meta) -> LedgerObject {
    let mut h = sui_sdk_types::hash::Hasher::new();
    h.update(b"k3s-daas economy");
    h.update(meta.genesis_digest.inner());
    let digest = h.finalize();
    let mut ctx = contract::TxContext::new(Address::ZERO, 0, 0, digest);
    let market = contract::market_init(&mut ctx);
    LedgerObject::new(
        market.id,
        1,
        Owner::Shared {
            initial_shared_version: 1,
        },
        digest,
        ObjectData::Move(ContractObject::Market(market)),
    )
}

fn shared_ref(s: &State, id: &ObjectId) -> Result<SharedRef, LedgerError> {
    match s.objects.get(id).map(|o| o.owner) {
        Some(Owner::Shared {
            initial_shared_version,
        }) => Ok(SharedRef {
            id: *id,
            initial_shared_version,
        }),
        _ => Err(LedgerError::Storage(format!("shared object {id} missing"))),
    }
}

fn deployment_of(s: &State) -> Result<Deployment, LedgerError> {
    Ok(Deployment {
        package: s.meta.package,
        pool: shared_ref(s, &s.meta.pool)?,
        gateway: shared_ref(s, &s.meta.gateway)?,
        admin_cap: s.objects.get(&s.meta.admin_cap).map(|o| o.object_ref()),
        enclave_config: match &s.meta.enclave_config {
            Some(id) => Some(shared_ref(s, id)?),
            None => None,
        },
        market: Some(shared_ref(s, &s.market)?),
    })
}

fn build_genesis(g: &GenesisConfig, now_ms: u64) -> Result<State, LedgerError> {
    let mut h = sui_sdk_types::hash::Hasher::new();
    h.update(b"k3s-daas genesis");
    h.update(bcs::to_bytes(&(&g.admin, &g.master_endpoint, &g.coins)).map_err(codec)?);
    let digest = h.finalize();
    let mut ctx = contract::TxContext::new(g.admin, 0, now_ms, digest);
    let package = ctx.fresh_id();
    let (cap, pool) = contract::staking_init(&mut ctx);
    let gateway = contract::gateway_init(g.master_endpoint.clone(), &mut ctx);
    let shared = Owner::Shared {
        initial_shared_version: 1,
    };
    let mut objects = BTreeMap::new();
    let mut put = |id: ObjectId, owner: Owner, data: ObjectData| {
        objects.insert(id, LedgerObject::new(id, 1, owner, digest, data));
    };
    put(
        package,
        Owner::Immutable,
        ObjectData::Package {
            modules: vec![
                "economy".into(),
                "enclave".into(),
                "k8s_gateway".into(),
                "staking".into(),
            ],
        },
    );
    let meta_ids = (pool.id, gateway.id, cap.id);
    put(
        cap.id,
        Owner::Address(g.admin),
        ObjectData::Move(ContractObject::AdminCap(cap.clone())),
    );
    put(
        pool.id,
        shared,
        ObjectData::Move(ContractObject::StakingPool(pool)),
    );
    put(
        gateway.id,
        shared,
        ObjectData::Move(ContractObject::Gateway(gateway)),
    );
    let mut enclave_config = None;
    if let Some(e) = &g.enclave_config {
        let id = contract::create_enclave_config(
            &cap,
            e.name.clone(),
            e.pcr0.clone(),
            e.pcr1.clone(),
            e.pcr2.clone(),
            &mut ctx,
        );
        if let Some(NewObject::Shared(obj)) = ctx.new_objects.pop() {
            put(id, shared, ObjectData::Move(obj));
            enclave_config = Some(id);
        }
    }
    for (owner, value) in &g.coins {
        let id = ctx.fresh_id();
        put(
            id,
            Owner::Address(*owner),
            ObjectData::Move(ContractObject::Coin(contract::Coin { id, value: *value })),
        );
    }
    let meta = Meta {
        package,
        pool: meta_ids.0,
        gateway: meta_ids.1,
        admin_cap: meta_ids.2,
        enclave_config,
        epoch: 0,
        epoch_start_ms: now_ms,
        epoch_duration_ms: g.epoch_duration.map(|d| d.as_millis() as u64),
        mint_nonce: 0,
        genesis_digest: digest,
    };
    let market = genesis_market(&meta);
    let market_id = market.id;
    objects.insert(market_id, market);
    Ok(State {
        objects,
        meta,
        market: market_id,
        next_event: 0,
    })
}

// ---------------------------------------------------------------------------------------------
// Executor

struct Outcome {
    effects: TransactionEffects,
    written: Vec<LedgerObject>,
    removed: Vec<ObjectId>,
    new_enclave_config: Option<ObjectId>,
}

/// How a transaction may use an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Address-owned input (by ref or by value).
    Owned,
    /// Immutable input.
    Immutable,
    SharedMut,
    SharedImm,
    /// The (smashed) gas coin.
    Gas,
    /// Created in this transaction.
    New,
}

impl Access {
    fn mutable(self) -> bool {
        matches!(
            self,
            Access::Owned | Access::SharedMut | Access::Gas | Access::New
        )
    }
}

#[derive(Debug, Clone)]
struct Working {
    owner: Owner,
    data: ContractObject,
    access: Access,
    deleted: bool,
}

#[derive(Debug, Clone)]
enum Value {
    Pure(Vec<u8>),
    Object(ObjectId),
}

type Fail = (Option<u16>, ExecutionFailure);

struct Machine<'a> {
    ctx: contract::TxContext,
    objects: BTreeMap<ObjectId, Working>,
    inputs: Vec<Option<Value>>,
    results: Vec<Vec<Option<Value>>>,
    gas_id: ObjectId,
    verifier: Option<&'a dyn contract::AttestationVerifier>,
    new_enclave_config: Option<ObjectId>,
    command: u16,
}

fn arg_err(arg: u16, reason: impl Into<String>) -> ExecutionFailure {
    ExecutionFailure::CommandArgumentError {
        arg,
        reason: reason.into(),
    }
}

/// Validates the transaction against the current objects and runs it. `Err` = refused.
fn execute(
    state: &State,
    v: &VerifiedTransaction,
    epoch: u64,
    now_ms: u64,
    verifier: Option<&dyn contract::AttestationVerifier>,
) -> Result<Outcome, LedgerError> {
    let sender = v.sender;
    match &v.data.expiration {
        TransactionExpiration::None => {}
        TransactionExpiration::Epoch(e) => {
            if epoch > *e {
                return Err(LedgerError::TransactionExpired {
                    expiration: *e,
                    epoch,
                });
            }
        }
        _ => {
            return Err(LedgerError::Unsupported(
                "ValidDuring/Validity expirations".into(),
            ))
        }
    }
    // Gas.
    let gas = v.gas_payment();
    if gas.price < REFERENCE_GAS_PRICE {
        return Err(LedgerError::GasPriceTooLow {
            price: gas.price,
            reference: REFERENCE_GAS_PRICE,
        });
    }
    let fee = COMPUTATION_UNITS
        .checked_mul(gas.price)
        .ok_or_else(|| LedgerError::InvalidGas("gas price too large".into()))?;
    if gas.budget < fee {
        return Err(LedgerError::GasBudgetTooLow {
            budget: gas.budget,
            fee,
        });
    }
    let Some(first_gas) = gas.objects.first() else {
        return Err(LedgerError::InvalidGas("no gas coins".into()));
    };
    let gas_id = *first_gas.object_id();
    let mut seen = BTreeSet::new();
    let mut max_version = 0u64;
    let mut balance: u64 = 0;
    for r in &gas.objects {
        if !seen.insert(*r.object_id()) {
            return Err(LedgerError::DuplicateObject(*r.object_id()));
        }
        let o = check_owned(state, r, &sender)?;
        if o.owner == Owner::Immutable {
            return Err(LedgerError::NotOwned { id: o.id, sender });
        }
        let value = o
            .coin_value()
            .ok_or_else(|| LedgerError::InvalidGas(format!("{} is not a SUI coin", o.id)))?;
        balance = balance
            .checked_add(value)
            .ok_or_else(|| LedgerError::InvalidGas("gas balance overflow".into()))?;
        max_version = max_version.max(o.version);
    }
    if balance < gas.budget {
        return Err(LedgerError::InsufficientGas {
            balance,
            budget: gas.budget,
        });
    }
    // Inputs.
    let ptb = &v.programmable;
    let mut objects: BTreeMap<ObjectId, Working> = BTreeMap::new();
    let mut inputs = Vec::with_capacity(ptb.inputs.len());
    for input in &ptb.inputs {
        let value = match input {
            Input::Pure(bytes) => Value::Pure(bytes.clone()),
            Input::ImmutableOrOwned(r) => {
                if !seen.insert(*r.object_id()) {
                    return Err(LedgerError::DuplicateObject(*r.object_id()));
                }
                let o = check_owned(state, r, &sender)?;
                let access = if o.owner == Owner::Immutable {
                    Access::Immutable
                } else {
                    Access::Owned
                };
                max_version = max_version.max(o.version);
                let data = movable(o)?;
                objects.insert(
                    o.id,
                    Working {
                        owner: o.owner,
                        data,
                        access,
                        deleted: false,
                    },
                );
                Value::Object(o.id)
            }
            Input::Shared(sh) => {
                let id = sh.object_id();
                if !seen.insert(id) {
                    return Err(LedgerError::DuplicateObject(id));
                }
                let o = state
                    .objects
                    .get(&id)
                    .ok_or(LedgerError::ObjectNotFound(id))?;
                let Owner::Shared {
                    initial_shared_version,
                } = o.owner
                else {
                    return Err(LedgerError::NotShared(id));
                };
                if initial_shared_version != sh.version() {
                    return Err(LedgerError::SharedVersionMismatch {
                        id,
                        requested: sh.version(),
                        actual: initial_shared_version,
                    });
                }
                let access = if sh.mutability().is_mutable() {
                    Access::SharedMut
                } else {
                    Access::SharedImm
                };
                max_version = max_version.max(o.version);
                let data = movable(o)?;
                objects.insert(
                    id,
                    Working {
                        owner: o.owner,
                        data,
                        access,
                        deleted: false,
                    },
                );
                Value::Object(id)
            }
            Input::Receiving(_) => return Err(LedgerError::Unsupported("receiving inputs".into())),
            Input::FundsWithdrawal(_) => {
                return Err(LedgerError::Unsupported("funds withdrawal inputs".into()))
            }
            _ => return Err(LedgerError::Unsupported("unknown input kind".into())),
        };
        inputs.push(Some(value));
    }
    for c in &ptb.commands {
        match c {
            Command::MoveCall(call) => {
                if call.package != state.meta.package {
                    return Err(LedgerError::PackageNotFound(call.package));
                }
            }
            Command::SplitCoins(_) | Command::MergeCoins(_) | Command::TransferObjects(_) => {}
            Command::Publish(_) | Command::Upgrade(_) => {
                return Err(LedgerError::Unsupported("publishing packages".into()));
            }
            _ => return Err(LedgerError::Unsupported("command kind".into())),
        }
    }
    let lamport = max_version
        .checked_add(1)
        .ok_or_else(|| LedgerError::Storage("version overflow".into()))?;

    // Snapshot of the pre-transaction objects involved (for failures).
    let input_objects = objects.clone();
    // Smash the gas coins into the first; reserve the budget during execution.
    let mut smashed = Vec::new();
    for r in gas.objects.iter().skip(1) {
        smashed.push(*r.object_id());
    }
    let gas_owner = Owner::Address(sender);
    let exec_gas_value = balance - gas.budget;
    let mut machine = Machine {
        ctx: contract::TxContext::new(sender, epoch, now_ms, v.digest),
        objects,
        inputs,
        results: Vec::new(),
        gas_id,
        verifier,
        new_enclave_config: None,
        command: 0,
    };
    // The gas coin during execution (budget held back); the same on the failure path.
    let gas_working = || Working {
        owner: gas_owner,
        data: ContractObject::Coin(contract::Coin {
            id: gas_id,
            value: exec_gas_value,
        }),
        access: Access::Gas,
        deleted: false,
    };
    machine.objects.insert(gas_id, gas_working());
    let run = machine.run(&ptb.commands);
    let (status, mut final_objects, events, new_enclave_config) = match run {
        Ok(()) => {
            let m = machine;
            (
                ExecutionStatus::Success,
                m.objects,
                m.ctx.events,
                m.new_enclave_config,
            )
        }
        Err((command, error)) => {
            let mut objects = input_objects;
            objects.insert(gas_id, gas_working());
            (
                ExecutionStatus::Failure { command, error },
                objects,
                Vec::new(),
                None,
            )
        }
    };
    // Refund the unused budget (the fee stays charged).
    if let Some(Working {
        data: ContractObject::Coin(c),
        ..
    }) = final_objects.get_mut(&gas_id)
    {
        c.value = c
            .value
            .checked_add(gas.budget - fee)
            .ok_or_else(|| LedgerError::InvalidGas("gas coin overflow".into()))?;
    }

    // Effects.
    let mut written = Vec::new();
    let mut removed = Vec::new();
    let mut created = Vec::new();
    let mut mutated = Vec::new();
    let mut deleted = Vec::new();
    for id in smashed {
        removed.push(id);
        deleted.push(ObjectReference::new(id, lamport, Digest::ZERO));
    }
    for (id, w) in final_objects {
        let existed = state.objects.contains_key(&id);
        if w.deleted {
            if existed {
                removed.push(id);
                deleted.push(ObjectReference::new(id, lamport, Digest::ZERO));
            }
            continue;
        }
        if existed && !w.access.mutable() {
            continue;
        }
        let owner = match w.owner {
            Owner::Shared { .. } if !existed => Owner::Shared {
                initial_shared_version: lamport,
            },
            o => o,
        };
        let o = LedgerObject::new(id, lamport, owner, v.digest, ObjectData::Move(w.data));
        if existed {
            mutated.push((o.object_ref(), owner));
        } else {
            created.push((o.object_ref(), owner));
        }
        written.push(o);
    }
    let gas_object = written
        .iter()
        .find(|o| o.id == gas_id)
        .map(|o| o.object_ref())
        .ok_or_else(|| LedgerError::Storage("gas coin lost".into()))?;
    let effects = TransactionEffects {
        digest: v.digest,
        sender,
        status,
        epoch,
        lamport_version: lamport,
        gas_used: fee,
        gas_object,
        created,
        mutated,
        deleted,
        events,
    };
    Ok(Outcome {
        effects,
        written,
        removed,
        new_enclave_config,
    })
}

fn check_owned<'s>(
    state: &'s State,
    r: &ObjectReference,
    sender: &Address,
) -> Result<&'s LedgerObject, LedgerError> {
    let id = *r.object_id();
    let o = state
        .objects
        .get(&id)
        .ok_or(LedgerError::ObjectNotFound(id))?;
    match o.owner {
        Owner::Address(a) if a == *sender => {}
        Owner::Immutable => {}
        Owner::Shared { .. } => {
            return Err(LedgerError::NotOwned {
                id,
                sender: *sender,
            })
        }
        Owner::Address(_) => {
            return Err(LedgerError::NotOwned {
                id,
                sender: *sender,
            })
        }
    }
    if o.version != r.version() {
        return Err(LedgerError::StaleObject {
            id,
            requested: r.version(),
            current: o.version,
        });
    }
    if o.digest != *r.digest() {
        return Err(LedgerError::ObjectDigestMismatch { id });
    }
    Ok(o)
}

fn movable(o: &LedgerObject) -> Result<ContractObject, LedgerError> {
    match &o.data {
        ObjectData::Move(c) => Ok(c.clone()),
        ObjectData::Package { .. } => Err(LedgerError::Unsupported("packages as inputs".into())),
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    arg: u16,
    ty: &str,
) -> Result<T, ExecutionFailure> {
    bcs::from_bytes(bytes).map_err(|e| arg_err(arg, format!("invalid BCS for {ty}: {e}")))
}

impl Machine<'_> {
    fn fail(&self, e: ExecutionFailure) -> Fail {
        (Some(self.command), e)
    }

    fn run(&mut self, commands: &[Command]) -> Result<(), Fail> {
        for (i, c) in commands.iter().enumerate() {
            self.command = i as u16;
            let out = match c {
                Command::SplitCoins(s) => self.split(&s.coin, &s.amounts),
                Command::MergeCoins(m) => {
                    self.merge(&m.coin, &m.coins_to_merge).map(|_| Vec::new())
                }
                Command::TransferObjects(t) => {
                    self.transfer(&t.objects, &t.address).map(|_| Vec::new())
                }
                Command::MoveCall(call) => self.call(call).map(|_| Vec::new()),
                _ => Err(ExecutionFailure::Unsupported("command kind".into())),
            };
            let out = out.map_err(|e| self.fail(e))?;
            self.results.push(out.into_iter().map(Some).collect());
        }
        // Values without `drop` must have been consumed.
        for (r, values) in self.results.iter().enumerate() {
            for (s, v) in values.iter().enumerate() {
                if let Some(Value::Object(id)) = v {
                    if self.objects.get(id).is_some_and(|w| !w.deleted) {
                        return Err((
                            None,
                            ExecutionFailure::UnusedValueWithoutDrop {
                                result: r as u16,
                                subresult: s as u16,
                            },
                        ));
                    }
                }
            }
        }
        // Side effects of the Move functions.
        for id in std::mem::take(&mut self.ctx.deleted) {
            if let Some(w) = self.objects.get_mut(&id) {
                w.deleted = true;
            }
        }
        for n in std::mem::take(&mut self.ctx.new_objects) {
            let (object, owner) = match n {
                NewObject::Transferred { object, recipient } => (object, Owner::Address(recipient)),
                NewObject::Shared(object) => (
                    object,
                    Owner::Shared {
                        initial_shared_version: 0,
                    },
                ),
            };
            if let ContractObject::EnclaveConfig(c) = &object {
                self.new_enclave_config = Some(c.id);
            }
            self.objects.insert(
                object.id(),
                Working {
                    owner,
                    data: object,
                    access: Access::New,
                    deleted: false,
                },
            );
        }
        Ok(())
    }

    /// Where an argument lives; `Gas` has no slot.
    fn slot(
        &mut self,
        arg: &Argument,
        idx: u16,
    ) -> Result<Option<&mut Option<Value>>, ExecutionFailure> {
        match *arg {
            Argument::Gas => Ok(None),
            Argument::Input(i) => self
                .inputs
                .get_mut(i as usize)
                .map(Some)
                .ok_or_else(|| arg_err(idx, format!("input {i} out of bounds"))),
            Argument::Result(r) => {
                let values = self
                    .results
                    .get_mut(r as usize)
                    .ok_or_else(|| arg_err(idx, format!("result {r} out of bounds")))?;
                if values.len() != 1 {
                    return Err(arg_err(
                        idx,
                        format!("result {r} has {} values", values.len()),
                    ));
                }
                Ok(values.get_mut(0))
            }
            Argument::NestedResult(r, s) => self
                .results
                .get_mut(r as usize)
                .and_then(|v| v.get_mut(s as usize))
                .map(Some)
                .ok_or_else(|| arg_err(idx, format!("result {r}.{s} out of bounds"))),
        }
    }

    fn pure(&mut self, arg: &Argument, idx: u16) -> Result<Vec<u8>, ExecutionFailure> {
        match self.slot(arg, idx)? {
            Some(Some(Value::Pure(b))) => Ok(b.clone()),
            Some(None) => Err(arg_err(idx, "value already moved")),
            _ => Err(arg_err(idx, "expected a pure value")),
        }
    }

    /// An object argument used by reference (`mutable` = `&mut`).
    fn borrow(
        &mut self,
        arg: &Argument,
        idx: u16,
        mutable: bool,
    ) -> Result<ObjectId, ExecutionFailure> {
        let id = match self.slot(arg, idx)? {
            None => self.gas_id,
            Some(Some(Value::Object(id))) => *id,
            Some(None) => return Err(arg_err(idx, "value already moved")),
            Some(Some(Value::Pure(_))) => return Err(arg_err(idx, "expected an object")),
        };
        let w = self
            .objects
            .get(&id)
            .ok_or_else(|| arg_err(idx, "object unavailable"))?;
        if w.deleted {
            return Err(arg_err(idx, "object was consumed"));
        }
        if mutable && !w.access.mutable() {
            return Err(arg_err(idx, "object is immutable here but passed as &mut"));
        }
        Ok(id)
    }

    /// An object argument used by value (moved out of its slot).
    fn take(
        &mut self,
        arg: &Argument,
        idx: u16,
        allow_gas: bool,
    ) -> Result<ObjectId, ExecutionFailure> {
        if matches!(arg, Argument::Gas) {
            if allow_gas {
                return Ok(self.gas_id);
            }
            return Err(arg_err(
                idx,
                "the gas coin can only be used by value in TransferObjects",
            ));
        }
        let id = self.borrow(arg, idx, false)?;
        let access = self.objects.get(&id).map(|w| w.access);
        if !matches!(access, Some(Access::Owned | Access::New)) {
            return Err(arg_err(idx, "only owned objects can be used by value"));
        }
        if let Some(slot) = self.slot(arg, idx)? {
            *slot = None;
        }
        Ok(id)
    }

    fn coin_mut(
        &mut self,
        id: &ObjectId,
        idx: u16,
    ) -> Result<&mut contract::Coin, ExecutionFailure> {
        match self.objects.get_mut(id).map(|w| &mut w.data) {
            Some(ContractObject::Coin(c)) => Ok(c),
            _ => Err(arg_err(idx, "expected Coin<SUI>")),
        }
    }

    fn split(
        &mut self,
        coin: &Argument,
        amounts: &[Argument],
    ) -> Result<Vec<Value>, ExecutionFailure> {
        let id = self.borrow(coin, 0, true)?;
        self.coin_mut(&id, 0)?;
        let mut values = Vec::with_capacity(amounts.len());
        for (i, a) in amounts.iter().enumerate() {
            let idx = i as u16 + 1;
            values.push(decode::<u64>(&self.pure(a, idx)?, idx, "u64")?);
        }
        let mut out = Vec::with_capacity(values.len());
        for amount in values {
            let c = self.coin_mut(&id, 0)?;
            c.value = c
                .value
                .checked_sub(amount)
                .ok_or(ExecutionFailure::InsufficientCoinBalance)?;
            let new_id = self.ctx.fresh_id();
            self.objects.insert(
                new_id,
                Working {
                    owner: Owner::Address(self.ctx.sender),
                    data: ContractObject::Coin(contract::Coin {
                        id: new_id,
                        value: amount,
                    }),
                    access: Access::New,
                    deleted: false,
                },
            );
            out.push(Value::Object(new_id));
        }
        Ok(out)
    }

    fn merge(&mut self, coin: &Argument, coins: &[Argument]) -> Result<(), ExecutionFailure> {
        let target = self.borrow(coin, 0, true)?;
        self.coin_mut(&target, 0)?;
        for (i, a) in coins.iter().enumerate() {
            let idx = i as u16 + 1;
            let src = self.take(a, idx, false)?;
            if src == target {
                return Err(arg_err(idx, "cannot merge a coin into itself"));
            }
            let value = self.coin_mut(&src, idx)?.value;
            let t = self.coin_mut(&target, 0)?;
            t.value = t
                .value
                .checked_add(value)
                .ok_or(ExecutionFailure::CoinBalanceOverflow)?;
            if let Some(w) = self.objects.get_mut(&src) {
                w.deleted = true;
            }
        }
        Ok(())
    }

    fn transfer(
        &mut self,
        objects: &[Argument],
        address: &Argument,
    ) -> Result<(), ExecutionFailure> {
        let idx = objects.len() as u16;
        let recipient: Address = decode(&self.pure(address, idx)?, idx, "address")?;
        for (i, a) in objects.iter().enumerate() {
            let id = self.take(a, i as u16, true)?;
            let w = self
                .objects
                .get_mut(&id)
                .ok_or_else(|| arg_err(i as u16, "object unavailable"))?;
            // Only types with `store` can be transferred by the PTB.
            if !matches!(
                w.data,
                ContractObject::Coin(_)
                    | ContractObject::SealToken(_)
                    | ContractObject::AdminCap(_)
            ) {
                return Err(arg_err(i as u16, "object type has no `store` ability"));
            }
            w.owner = Owner::Address(recipient);
        }
        Ok(())
    }

    fn typed<T>(
        &self,
        id: &ObjectId,
        idx: u16,
        name: &str,
        f: impl Fn(&ContractObject) -> Option<&T>,
    ) -> Result<T, ExecutionFailure>
    where
        T: Clone,
    {
        self.objects
            .get(id)
            .and_then(|w| f(&w.data))
            .cloned()
            .ok_or_else(|| arg_err(idx, format!("expected {name}")))
    }

    fn pool(
        &mut self,
        arg: &Argument,
        idx: u16,
        mutable: bool,
    ) -> Result<(ObjectId, contract::StakingPool), ExecutionFailure> {
        let id = self.borrow(arg, idx, mutable)?;
        let p = self.typed(&id, idx, "StakingPool", |o| match o {
            ContractObject::StakingPool(p) => Some(p),
            _ => None,
        })?;
        Ok((id, p))
    }

    fn cap(&mut self, arg: &Argument, idx: u16) -> Result<contract::AdminCap, ExecutionFailure> {
        let id = self.borrow(arg, idx, false)?;
        self.typed(&id, idx, "AdminCap", |o| match o {
            ContractObject::AdminCap(c) => Some(c),
            _ => None,
        })
    }

    fn gateway(
        &mut self,
        arg: &Argument,
        idx: u16,
    ) -> Result<(ObjectId, contract::Gateway), ExecutionFailure> {
        let id = self.borrow(arg, idx, true)?;
        let g = self.typed(&id, idx, "Gateway", |o| match o {
            ContractObject::Gateway(g) => Some(g),
            _ => None,
        })?;
        Ok((id, g))
    }

    fn config(
        &mut self,
        arg: &Argument,
        idx: u16,
        mutable: bool,
    ) -> Result<(ObjectId, EnclaveConfig), ExecutionFailure> {
        let id = self.borrow(arg, idx, mutable)?;
        let c = self.typed(&id, idx, "EnclaveConfig", |o| match o {
            ContractObject::EnclaveConfig(c) => Some(c),
            _ => None,
        })?;
        Ok((id, c))
    }

    fn market(
        &mut self,
        arg: &Argument,
        idx: u16,
        mutable: bool,
    ) -> Result<(ObjectId, contract::Market), ExecutionFailure> {
        let id = self.borrow(arg, idx, mutable)?;
        let m = self.typed(&id, idx, "Market", |o| match o {
            ContractObject::Market(m) => Some(m),
            _ => None,
        })?;
        Ok((id, m))
    }

    fn put(&mut self, id: ObjectId, data: ContractObject) {
        if let Some(w) = self.objects.get_mut(&id) {
            w.data = data;
        }
    }

    fn call(&mut self, call: &MoveCall) -> Result<(), ExecutionFailure> {
        let module = call.module.as_str();
        let function = call.function.as_str();
        let arity = match (module, function) {
            ("staking", "stake") => 4,
            ("staking", "request_unstake") | ("staking", "withdraw") => 1,
            ("staking", "set_config") => 7,
            ("staking", "slash") => 10,
            ("enclave", "anchor_state") => 5,
            ("k8s_gateway", "issue_seal_token") => 2,
            ("k8s_gateway", "revoke_seal_token") => 1,
            ("k8s_gateway", "set_gateway") => 4,
            // In `staking` (not `enclave`): Move forbids the staking <-> enclave module cycle.
            ("staking", "create_enclave_config") => 5,
            ("staking", "update_pcrs") => 5,
            ("enclave", "register_enclave_raw") => 2,
            ("enclave", "register_enclave_platform_raw") => 3,
            ("staking", "register_attested_enclave") => 4,
            ("staking", "withdraw_treasury") => 3,
            ("economy", "deposit") => 2,
            ("economy", "withdraw_escrow") | ("economy", "withdraw_earnings") => 2,
            ("economy", "set_prices") => 5,
            ("economy", "settle") => 16,
            _ => {
                return Err(ExecutionFailure::FunctionNotFound {
                    module: module.to_string(),
                    function: function.to_string(),
                })
            }
        };
        if !call.type_arguments.is_empty() {
            return Err(arg_err(0, "function takes no type arguments"));
        }
        if call.arguments.len() != arity {
            return Err(arg_err(
                0,
                format!(
                    "{module}::{function} takes {arity} arguments, got {}",
                    call.arguments.len()
                ),
            ));
        }
        let a = &call.arguments;
        let abort = |e: contract::ContractError| ExecutionFailure::from_contract(e, function);
        match (module, function) {
            ("staking", "stake") => {
                let (pool_id, mut pool) = self.pool(&a[0], 0, true)?;
                let coin_id = self.take(&a[1], 1, false)?;
                let coin = self.typed(&coin_id, 1, "Coin<SUI>", |o| match o {
                    ContractObject::Coin(c) => Some(c),
                    _ => None,
                })?;
                let role: u8 = decode(&self.pure(&a[2], 2)?, 2, "u8")?;
                let node_id: String = decode(&self.pure(&a[3], 3)?, 3, "String")?;
                contract::stake(&mut pool, coin, role, node_id, &mut self.ctx).map_err(abort)?;
                self.put(pool_id, ContractObject::StakingPool(pool));
            }
            ("staking", "request_unstake") => {
                let (pool_id, mut pool) = self.pool(&a[0], 0, true)?;
                contract::request_unstake(&mut pool, &mut self.ctx).map_err(abort)?;
                self.put(pool_id, ContractObject::StakingPool(pool));
            }
            ("staking", "withdraw") => {
                let (pool_id, mut pool) = self.pool(&a[0], 0, true)?;
                contract::withdraw(&mut pool, &mut self.ctx).map_err(abort)?;
                self.put(pool_id, ContractObject::StakingPool(pool));
            }
            ("staking", "set_config") => {
                let cap = self.cap(&a[0], 0)?;
                let (pool_id, mut pool) = self.pool(&a[1], 1, true)?;
                let mut v = [0u64; 5];
                for (i, slot) in v.iter_mut().enumerate() {
                    let idx = i as u16 + 2;
                    *slot = decode(&self.pure(&a[i + 2], idx)?, idx, "u64")?;
                }
                contract::set_config(&cap, &mut pool, v[0], v[1], v[2], v[3], v[4])
                    .map_err(abort)?;
                self.put(pool_id, ContractObject::StakingPool(pool));
            }
            ("staking", "slash") => {
                let (pool_id, mut pool) = self.pool(&a[0], 0, true)?;
                // `&EnclaveConfig` and `&Enclave`: PTB arguments (shared, used immutably).
                let (_, config) = self.config(&a[1], 1, false)?;
                let enclave_id = self.borrow(&a[2], 2, false)?;
                let enclave = self.typed(&enclave_id, 2, "Enclave", |o| match o {
                    ContractObject::Enclave(e) => Some(e),
                    _ => None,
                })?;
                let node: Address = decode(&self.pure(&a[3], 3)?, 3, "address")?;
                let node_id: String = decode(&self.pure(&a[4], 4)?, 4, "String")?;
                let generation: u64 = decode(&self.pure(&a[5], 5)?, 5, "u64")?;
                let nonce: u64 = decode(&self.pure(&a[6], 6)?, 6, "u64")?;
                let reason: String = decode(&self.pure(&a[7], 7)?, 7, "String")?;
                let ts: u64 = decode(&self.pure(&a[8], 8)?, 8, "u64")?;
                let sig: Vec<u8> = decode(&self.pure(&a[9], 9)?, 9, "vector<u8>")?;
                contract::slash(
                    &mut pool,
                    &config,
                    &enclave,
                    node,
                    node_id,
                    generation,
                    nonce,
                    reason,
                    ts,
                    &sig,
                    &mut self.ctx,
                )
                .map_err(abort)?;
                self.put(pool_id, ContractObject::StakingPool(pool));
            }
            ("enclave", "anchor_state") => {
                let (cfg_id, mut cfg) = self.config(&a[0], 0, true)?;
                let enclave_id = self.borrow(&a[1], 1, false)?;
                let enclave = self.typed(&enclave_id, 1, "Enclave", |o| match o {
                    ContractObject::Enclave(e) => Some(e),
                    _ => None,
                })?;
                let revision: u64 = decode(&self.pure(&a[2], 2)?, 2, "u64")?;
                let ts: u64 = decode(&self.pure(&a[3], 3)?, 3, "u64")?;
                let sig: Vec<u8> = decode(&self.pure(&a[4], 4)?, 4, "vector<u8>")?;
                contract::anchor_state(&mut cfg, &enclave, revision, ts, &sig, &mut self.ctx)
                    .map_err(abort)?;
                self.put(cfg_id, ContractObject::EnclaveConfig(cfg));
            }
            ("k8s_gateway", "issue_seal_token") => {
                let (gw_id, mut gw) = self.gateway(&a[0], 0)?;
                let (_, pool) = self.pool(&a[1], 1, false)?;
                contract::issue_seal_token(&mut gw, &pool, &mut self.ctx).map_err(abort)?;
                self.put(gw_id, ContractObject::Gateway(gw));
            }
            ("k8s_gateway", "revoke_seal_token") => {
                let id = self.take(&a[0], 0, false)?;
                let token = self.typed(&id, 0, "SealToken", |o| match o {
                    ContractObject::SealToken(t) => Some(t),
                    _ => None,
                })?;
                contract::revoke_seal_token(token, &mut self.ctx).map_err(abort)?;
            }
            ("k8s_gateway", "set_gateway") => {
                let cap = self.cap(&a[0], 0)?;
                let (gw_id, mut gw) = self.gateway(&a[1], 1)?;
                let endpoint: String = decode(&self.pure(&a[2], 2)?, 2, "String")?;
                let ttl: u64 = decode(&self.pure(&a[3], 3)?, 3, "u64")?;
                contract::set_gateway(&cap, &mut gw, endpoint, ttl).map_err(abort)?;
                self.put(gw_id, ContractObject::Gateway(gw));
            }
            ("staking", "create_enclave_config") => {
                let cap = self.cap(&a[0], 0)?;
                let name: String = decode(&self.pure(&a[1], 1)?, 1, "String")?;
                let mut pcrs: [Vec<u8>; 3] = Default::default();
                for (i, p) in pcrs.iter_mut().enumerate() {
                    let idx = i as u16 + 2;
                    *p = decode(&self.pure(&a[i + 2], idx)?, idx, "vector<u8>")?;
                }
                let [p0, p1, p2] = pcrs;
                contract::create_enclave_config(&cap, name, p0, p1, p2, &mut self.ctx);
            }
            ("staking", "update_pcrs") => {
                let cap = self.cap(&a[0], 0)?;
                let (cfg_id, mut cfg) = self.config(&a[1], 1, true)?;
                let mut pcrs: [Vec<u8>; 3] = Default::default();
                for (i, p) in pcrs.iter_mut().enumerate() {
                    let idx = i as u16 + 2;
                    *p = decode(&self.pure(&a[i + 2], idx)?, idx, "vector<u8>")?;
                }
                let [p0, p1, p2] = pcrs;
                contract::update_pcrs(&cap, &mut cfg, p0, p1, p2).map_err(abort)?;
                self.put(cfg_id, ContractObject::EnclaveConfig(cfg));
            }
            ("enclave", "register_enclave_raw") => {
                let (_, cfg) = self.config(&a[0], 0, false)?;
                let document: Vec<u8> = decode(&self.pure(&a[1], 1)?, 1, "vector<u8>")?;
                contract::register_enclave_raw(&cfg, &document, self.verifier, &mut self.ctx)
                    .map_err(abort)?;
            }
            ("enclave", "register_enclave_platform_raw") => {
                let (_, cfg) = self.config(&a[0], 0, false)?;
                let platform: u8 = decode(&self.pure(&a[1], 1)?, 1, "u8")?;
                let evidence: Vec<u8> = decode(&self.pure(&a[2], 2)?, 2, "vector<u8>")?;
                contract::register_enclave_platform_raw(
                    &cfg,
                    platform,
                    &evidence,
                    self.verifier,
                    &mut self.ctx,
                )
                .map_err(abort)?;
            }
            ("staking", "register_attested_enclave") => {
                let cap = self.cap(&a[0], 0)?;
                let (_, cfg) = self.config(&a[1], 1, false)?;
                let platform: u8 = decode(&self.pure(&a[2], 2)?, 2, "u8")?;
                let pk: Vec<u8> = decode(&self.pure(&a[3], 3)?, 3, "vector<u8>")?;
                contract::register_attested_enclave(&cap, &cfg, platform, pk, &mut self.ctx)
                    .map_err(abort)?;
            }
            ("staking", "withdraw_treasury") => {
                let cap = self.cap(&a[0], 0)?;
                let (pool_id, mut pool) = self.pool(&a[1], 1, true)?;
                let amount: u64 = decode(&self.pure(&a[2], 2)?, 2, "u64")?;
                contract::withdraw_treasury(&cap, &mut pool, amount, &mut self.ctx)
                    .map_err(abort)?;
                self.put(pool_id, ContractObject::StakingPool(pool));
            }
            ("economy", "deposit") => {
                let (market_id, mut market) = self.market(&a[0], 0, true)?;
                let coin_id = self.take(&a[1], 1, false)?;
                let coin = self.typed(&coin_id, 1, "Coin<SUI>", |o| match o {
                    ContractObject::Coin(c) => Some(c),
                    _ => None,
                })?;
                contract::deposit(&mut market, coin, &mut self.ctx).map_err(abort)?;
                self.put(market_id, ContractObject::Market(market));
            }
            ("economy", "withdraw_escrow") | ("economy", "withdraw_earnings") => {
                let (market_id, mut market) = self.market(&a[0], 0, true)?;
                let amount: u64 = decode(&self.pure(&a[1], 1)?, 1, "u64")?;
                if function == "withdraw_escrow" {
                    contract::withdraw_escrow(&mut market, amount, &mut self.ctx)
                } else {
                    contract::withdraw_earnings(&mut market, amount, &mut self.ctx)
                }
                .map_err(abort)?;
                self.put(market_id, ContractObject::Market(market));
            }
            ("economy", "set_prices") => {
                let cap = self.cap(&a[0], 0)?;
                let (market_id, mut market) = self.market(&a[1], 1, true)?;
                let mut v = [0u64; 3];
                for (i, slot) in v.iter_mut().enumerate() {
                    let idx = i as u16 + 2;
                    *slot = decode(&self.pure(&a[i + 2], idx)?, idx, "u64")?;
                }
                contract::set_prices(&cap, &mut market, v[0], v[1], v[2], &mut self.ctx)
                    .map_err(abort)?;
                self.put(market_id, ContractObject::Market(market));
            }
            ("economy", "settle") => {
                let (market_id, mut market) = self.market(&a[0], 0, true)?;
                let (_, pool) = self.pool(&a[1], 1, false)?;
                let (_, config) = self.config(&a[2], 2, false)?;
                let enclave_id = self.borrow(&a[3], 3, false)?;
                let enclave = self.typed(&enclave_id, 3, "Enclave", |o| match o {
                    ContractObject::Enclave(e) => Some(e),
                    _ => None,
                })?;
                let u64_at = |m: &mut Self, i: usize| -> Result<u64, ExecutionFailure> {
                    decode(&m.pure(&a[i], i as u16)?, i as u16, "u64")
                };
                let u64s_at = |m: &mut Self, i: usize| -> Result<Vec<u64>, ExecutionFailure> {
                    decode(&m.pure(&a[i], i as u16)?, i as u16, "vector<u64>")
                };
                let report = contract::UsageReport {
                    market_id: market.id,
                    period: u64_at(self, 4)?,
                    period_start_ms: u64_at(self, 5)?,
                    period_end_ms: u64_at(self, 6)?,
                    users: decode(&self.pure(&a[7], 7)?, 7, "vector<address>")?,
                    node_ids: decode(&self.pure(&a[8], 8)?, 8, "vector<String>")?,
                    generations: u64s_at(self, 9)?,
                    cpu_ms: u64s_at(self, 10)?,
                    mem_mib_s: u64s_at(self, 11)?,
                    pod_s: u64s_at(self, 12)?,
                    uptime_ms: u64s_at(self, 13)?,
                };
                let ts = u64_at(self, 14)?;
                let sig: Vec<u8> = decode(&self.pure(&a[15], 15)?, 15, "vector<u8>")?;
                contract::settle(
                    &mut market,
                    &pool,
                    &config,
                    &enclave,
                    &report,
                    ts,
                    &sig,
                    &mut self.ctx,
                )
                .map_err(abort)?;
                self.put(market_id, ContractObject::Market(market));
            }
            _ => {
                return Err(ExecutionFailure::FunctionNotFound {
                    module: module.to_string(),
                    function: function.to_string(),
                })
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Ledger trait

#[async_trait::async_trait]
impl Ledger for EmbeddedLedger {
    async fn deployment(&self) -> Result<Deployment, LedgerError> {
        self.deployment_now()
    }

    async fn epoch(&self) -> Result<u64, LedgerError> {
        self.current_epoch()
    }

    async fn reference_gas_price(&self) -> Result<u64, LedgerError> {
        Ok(REFERENCE_GAS_PRICE)
    }

    async fn get_object(&self, id: ObjectId) -> Result<Option<LedgerObject>, LedgerError> {
        self.object(&id)
    }

    async fn gas_coins(&self, owner: Address) -> Result<Vec<(ObjectReference, u64)>, LedgerError> {
        self.coins_of(&owner)
    }

    async fn stake(&self, address: Address) -> Result<Option<StakeRecord>, LedgerError> {
        self.stake_record(&address)
    }

    async fn node_stake(
        &self,
        node_id: &str,
    ) -> Result<Option<(Address, StakeRecord)>, LedgerError> {
        self.node_stake_record(node_id)
    }

    async fn seal_token(&self, id: ObjectId) -> Result<Option<SealToken>, LedgerError> {
        self.seal_token_by_id(&id)
    }

    async fn seal_tokens_of(&self, owner: Address) -> Result<Vec<SealToken>, LedgerError> {
        self.seal_tokens_owned(&owner)
    }

    async fn seal_token_valid(&self, id: ObjectId) -> Result<bool, LedgerError> {
        self.is_seal_token_valid(&id)
    }

    async fn execute(&self, tx: SignedTransaction) -> Result<TransactionEffects, LedgerError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.execute_signed(&tx))
            .await
            .map_err(|e| LedgerError::Backend(format!("executor task: {e}")))?
    }

    async fn transaction(&self, digest: Digest) -> Result<Option<TransactionEffects>, LedgerError> {
        self.effects(&digest)
    }

    async fn market(&self) -> Result<Option<contract::Market>, LedgerError> {
        self.market_now().map(Some)
    }

    async fn account(&self, user: Address) -> Result<Option<contract::Account>, LedgerError> {
        self.account_of(&user)
    }

    async fn earnings(&self, operator: Address) -> Result<Option<contract::Earnings>, LedgerError> {
        self.earnings_of(&operator)
    }

    async fn recent_events(&self, limit: usize) -> Result<Vec<EventRecord>, LedgerError> {
        self.recent_events_now(limit)
    }

    async fn faucet(&self, address: Address, amount: u64) -> Result<ObjectReference, LedgerError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.mint(address, amount))
            .await
            .map_err(|e| LedgerError::Backend(format!("faucet task: {e}")))?
    }
}

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
