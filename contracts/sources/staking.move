/// Staking for K3s-DaaS: users, worker nodes and cluster admins lock SUI in the shared
/// `StakingPool` to obtain the right to join the cluster (see `k8s_gateway` for the seal tokens
/// they then mint). Stakes can be topped up, unbonded after a lockup, and slashed on a report
/// signed by the attested master enclave (`enclave::verify_signature`).
///
/// Abort codes, events, objects and argument order follow contracts/SPEC.md exactly; the
/// K3s-DaaS embedded ledger implements the same functions in Rust.
///
/// Also defined here (rather than in `enclave`, to avoid a cyclic module dependency; SPEC.md
/// places them here too): `create_enclave_config` and `update_pcrs`, the AdminCap-gated
/// management of `enclave::EnclaveConfig`.
module k3s_daas::staking;

use k3s_daas::enclave::{Self, Enclave, EnclaveConfig};
use std::string::String;
use sui::balance::{Self, Balance};
use sui::coin::{Self, Coin};
use sui::event;
use sui::sui::SUI;
use sui::table::{Self, Table};

// === Errors ===

const EInsufficientStake: u64 = 1;
const EInvalidRole: u64 = 2;
const EMissingNodeId: u64 = 3;
const ERoleMismatch: u64 = 4;
const ENoStake: u64 = 5;
const ENotActive: u64 = 6;
const EStillActive: u64 = 7;
const ELocked: u64 = 8;
const EInvalidConfig: u64 = 9;
const EBadReport: u64 = 10;
const EAlreadySlashed: u64 = 11;
/// Another address holds a live (Active, Unbonding or Slashed) node stake for this node id.
const ENodeIdTaken: u64 = 12;
/// The slash report's node id, generation or nonce differs from the record's node id,
/// generation or slash count (a report about an earlier stake, or one already used).
const EStaleReport: u64 = 13;
/// `withdraw_treasury` of more than the slashed balance (the treasury).
const EInsufficientTreasury: u64 = 14;

// === Constants ===

const ROLE_USER: u8 = 0;
const ROLE_NODE: u8 = 1;
const ROLE_ADMIN: u8 = 2;

const STATUS_ACTIVE: u8 = 0;
const STATUS_UNBONDING: u8 = 1;
const STATUS_SLASHED: u8 = 2;
/// Returned by `stake_status` / `stake_role` when the address has no record.
const NONE: u8 = 255;

/// Intent scope of slashing reports signed by the enclave.
const SLASH_INTENT: u8 = 1;
const BPS_DENOMINATOR: u64 = 10_000;

const DEFAULT_MIN_USER_STAKE: u64 = 100;
const DEFAULT_MIN_NODE_STAKE: u64 = 1_000;
const DEFAULT_MIN_ADMIN_STAKE: u64 = 10_000;
const DEFAULT_LOCKUP_EPOCHS: u64 = 2;
const DEFAULT_SLASH_BPS: u64 = 1_000;

// === Objects ===

/// Admin capability, created in `init` and sent to the publisher.
public struct AdminCap has key, store {
    id: UID,
}

/// The shared staking pool.
public struct StakingPool has key {
    id: UID,
    min_user_stake: u64,
    min_node_stake: u64,
    min_admin_stake: u64,
    lockup_epochs: u64,
    slash_bps: u64,
    /// Sum of `amount` over all records.
    total_staked: u64,
    /// Holds exactly `total_staked` MIST.
    staked: Balance<SUI>,
    /// Penalties taken by `slash`.
    slashed: Balance<SUI>,
    stakes: Table<address, StakeRecord>,
    /// Node id -> the address whose node record holds it (unique among live records).
    node_owners: Table<String, address>,
}

public struct StakeRecord has store {
    staker: address,
    role: u8,
    node_id: String,
    amount: u64,
    staked_epoch: u64,
    /// 0 = Active, 1 = Unbonding, 2 = Slashed.
    status: u8,
    unlock_epoch: u64,
    /// 1 at creation, +1 each time the record becomes Active again (re-stake).
    generation: u64,
    /// Sum of all penalties taken from this record (kept across re-stakes).
    slashed_total: u64,
    /// Epoch of the last slash, 0 if never slashed (kept across re-stakes).
    slashed_epoch: u64,
    /// Number of slashes taken (kept across re-stakes): the nonce of the next slash report.
    slash_count: u64,
}

/// Payload of a slashing report, signed by the enclave inside an `enclave::IntentMessage`
/// with intent `SLASH_INTENT` (1). It names the stake (address, node id, generation) and is
/// single-use (nonce = the record's slash_count). BCS: 32-byte address, ULEB128 length + UTF-8,
/// u64 LE, u64 LE, ULEB128 length + UTF-8, u64 LE.
public struct SlashReport has copy, drop {
    node: address,
    node_id: String,
    generation: u64,
    nonce: u64,
    reason: String,
    epoch: u64,
}

// === Events ===

public struct Staked has copy, drop {
    staker: address,
    role: u8,
    node_id: String,
    /// Amount added by this call.
    amount: u64,
    /// Record amount after this call.
    total: u64,
    generation: u64,
}

public struct UnstakeRequested has copy, drop {
    staker: address,
    unlock_epoch: u64,
}

public struct Withdrawn has copy, drop {
    staker: address,
    amount: u64,
}

public struct Slashed has copy, drop {
    staker: address,
    penalty: u64,
    remaining: u64,
    reason: String,
    epoch: u64,
}

public struct TreasuryWithdrawn has copy, drop {
    recipient: address,
    amount: u64,
    /// Slashed balance left in the treasury.
    remaining: u64,
}

// === Init ===

fun init(ctx: &mut TxContext) {
    transfer::transfer(AdminCap { id: object::new(ctx) }, ctx.sender());
    transfer::share_object(StakingPool {
        id: object::new(ctx),
        min_user_stake: DEFAULT_MIN_USER_STAKE,
        min_node_stake: DEFAULT_MIN_NODE_STAKE,
        min_admin_stake: DEFAULT_MIN_ADMIN_STAKE,
        lockup_epochs: DEFAULT_LOCKUP_EPOCHS,
        slash_bps: DEFAULT_SLASH_BPS,
        total_staked: 0,
        staked: balance::zero(),
        slashed: balance::zero(),
        stakes: table::new(ctx),
        node_owners: table::new(ctx),
    });
}

// === Entry functions ===

/// Stakes `payment` for the sender with `role` (0 user, 1 node, 2 admin). Creates a record, tops
/// up an Active one, or re-activates an Unbonding/Slashed one (generation + 1).
public fun stake(
    pool: &mut StakingPool,
    payment: Coin<SUI>,
    role: u8,
    node_id: String,
    ctx: &mut TxContext,
) {
    assert!(role <= ROLE_ADMIN, EInvalidRole);
    assert!(role != ROLE_NODE || !node_id.is_empty(), EMissingNodeId);

    let staker = ctx.sender();
    assert!(
        role != ROLE_NODE
            || !pool.node_owners.contains(node_id)
            || *pool.node_owners.borrow(node_id) == staker,
        ENodeIdTaken,
    );
    let value = payment.value();
    let min = pool.min_stake(role);
    // Computed before the record checks, as in the Rust port (only matters for which error an
    // overflowing call reports).
    let total_staked = pool.total_staked + value;
    // Node id a re-staked node record gives up (removed from the index below).
    let mut released: Option<String> = option::none();

    if (pool.stakes.contains(staker)) {
        let record = pool.stakes.borrow_mut(staker);
        if (record.status == STATUS_ACTIVE) {
            // Top-up: same role (and, for nodes, same node id); the new total must reach the
            // current minimum (set_config may have raised it since).
            assert!(record.role == role, ERoleMismatch);
            assert!(role != ROLE_NODE || record.node_id == node_id, ERoleMismatch);
            assert!(record.amount + value >= min, EInsufficientStake);
            record.amount = record.amount + value;
        } else {
            // Re-stake after Unbonding or Slashed (slashed_total, slashed_epoch and
            // slash_count are kept). A node record moving to another node id or role releases
            // its old node id.
            assert!(record.amount + value >= min, EInsufficientStake);
            if (record.role == ROLE_NODE && (role != ROLE_NODE || record.node_id != node_id)) {
                released = option::some(record.node_id);
            };
            record.amount = record.amount + value;
            record.role = role;
            record.node_id = node_id;
            record.staked_epoch = ctx.epoch();
            record.status = STATUS_ACTIVE;
            record.unlock_epoch = 0;
            record.generation = record.generation + 1;
        }
    } else {
        assert!(value >= min, EInsufficientStake);
        let record = StakeRecord {
            staker,
            role,
            node_id,
            amount: value,
            staked_epoch: ctx.epoch(),
            status: STATUS_ACTIVE,
            unlock_epoch: 0,
            generation: 1,
            slashed_total: 0,
            slashed_epoch: 0,
            slash_count: 0,
        };
        pool.stakes.add(staker, record);
    };
    if (released.is_some()) {
        pool.node_owners.remove(released.destroy_some());
    };
    if (role == ROLE_NODE && !pool.node_owners.contains(node_id)) {
        pool.node_owners.add(node_id, staker);
    };

    pool.staked.join(payment.into_balance());
    pool.total_staked = total_staked;

    let record = pool.stakes.borrow(staker);
    event::emit(Staked {
        staker,
        role,
        node_id: record.node_id,
        amount: value,
        total: record.amount,
        generation: record.generation,
    });
}

/// Starts unbonding the sender's Active stake; seal tokens stop validating at once.
public fun request_unstake(pool: &mut StakingPool, ctx: &mut TxContext) {
    let staker = ctx.sender();
    assert!(pool.stakes.contains(staker), ENoStake);
    let lockup_epochs = pool.lockup_epochs;
    let record = pool.stakes.borrow_mut(staker);
    assert!(record.status == STATUS_ACTIVE, ENotActive);
    let unlock_epoch = ctx.epoch() + lockup_epochs;
    record.status = STATUS_UNBONDING;
    record.unlock_epoch = unlock_epoch;
    event::emit(UnstakeRequested { staker, unlock_epoch });
}

/// Pays out an Unbonding or Slashed record once `unlock_epoch` is reached, and removes it.
#[allow(lint(self_transfer))]
public fun withdraw(pool: &mut StakingPool, ctx: &mut TxContext) {
    let staker = ctx.sender();
    assert!(pool.stakes.contains(staker), ENoStake);
    let record = pool.stakes.borrow(staker);
    assert!(record.status != STATUS_ACTIVE, EStillActive);
    assert!(ctx.epoch() >= record.unlock_epoch, ELocked);

    let StakeRecord {
        staker: _,
        role,
        node_id,
        amount,
        staked_epoch: _,
        status: _,
        unlock_epoch: _,
        generation: _,
        slashed_total: _,
        slashed_epoch: _,
        slash_count: _,
    } = pool.stakes.remove(staker);
    if (role == ROLE_NODE) {
        pool.node_owners.remove(node_id);
    };
    pool.total_staked = pool.total_staked - amount;
    let payout = coin::from_balance(pool.staked.split(amount), ctx);
    transfer::public_transfer(payout, staker);
    event::emit(Withdrawn { staker, amount });
}

/// Admin: minimum stakes per role, lockup and slash rate.
/// Requires min_user <= min_node <= min_admin and slash_bps <= 10000.
public fun set_config(
    _cap: &AdminCap,
    pool: &mut StakingPool,
    min_user: u64,
    min_node: u64,
    min_admin: u64,
    lockup_epochs: u64,
    slash_bps: u64,
) {
    assert!(
        min_user <= min_node && min_node <= min_admin && slash_bps <= BPS_DENOMINATOR,
        EInvalidConfig,
    );
    pool.min_user_stake = min_user;
    pool.min_node_stake = min_node;
    pool.min_admin_stake = min_admin;
    pool.lockup_epochs = lockup_epochs;
    pool.slash_bps = slash_bps;
}

/// Slashes `node` on a report signed by a current registered enclave: `enclave` must have been
/// registered against `config` under its current version (else `EBadReport`), and `signature`
/// must be its Ed25519 signature over BCS(IntentMessage { 1, timestamp_ms,
/// SlashReport { node, node_id, generation, nonce, reason, epoch } }) where epoch is the current
/// epoch (else `EBadReport`). These checks come before the record checks: `ENoStake`;
/// `EStaleReport` unless node_id, generation and nonce equal the record's node id, generation and
/// slash count (so a report is about one stake and can be used once); `EAlreadySlashed`. Active
/// and Unbonding records can be slashed, a Slashed one again in a later epoch. Takes `slash_bps`
/// of the stake into `pool.slashed`.
public fun slash(
    pool: &mut StakingPool,
    config: &EnclaveConfig,
    enclave: &Enclave,
    node: address,
    node_id: String,
    generation: u64,
    nonce: u64,
    reason: String,
    timestamp_ms: u64,
    signature: vector<u8>,
    ctx: &mut TxContext,
) {
    let epoch = ctx.epoch();
    assert!(enclave.is_current(config), EBadReport);
    let report = SlashReport { node, node_id, generation, nonce, reason, epoch };
    assert!(enclave.verify_signature(SLASH_INTENT, timestamp_ms, report, &signature), EBadReport);
    assert!(pool.stakes.contains(node), ENoStake);

    let lockup_epochs = pool.lockup_epochs;
    let slash_bps = pool.slash_bps;
    let record = pool.stakes.borrow_mut(node);
    assert!(
        record.node_id == node_id && record.generation == generation && record.slash_count == nonce,
        EStaleReport,
    );
    assert!(!(record.status == STATUS_SLASHED && record.slashed_epoch == epoch), EAlreadySlashed);

    // Rounded down; computed in u128 so that amount * slash_bps cannot overflow.
    let penalty =
        ((((record.amount as u128) * (slash_bps as u128)) / (BPS_DENOMINATOR as u128)) as u64);
    record.amount = record.amount - penalty;
    record.slashed_total = record.slashed_total + penalty;
    record.status = STATUS_SLASHED;
    record.unlock_epoch = epoch + lockup_epochs;
    record.slashed_epoch = epoch;
    record.slash_count = record.slash_count + 1;
    let remaining = record.amount;

    pool.total_staked = pool.total_staked - penalty;
    let penalty_balance = pool.staked.split(penalty);
    pool.slashed.join(penalty_balance);

    event::emit(Slashed { staker: node, penalty, remaining, reason, epoch });
}

/// Admin: pays `amount` of the slashed stake (the treasury, `pool.slashed`) to the sender.
/// `EInsufficientTreasury` if `amount` exceeds it.
#[allow(lint(self_transfer))]
public fun withdraw_treasury(
    _cap: &AdminCap,
    pool: &mut StakingPool,
    amount: u64,
    ctx: &mut TxContext,
) {
    assert!(amount <= pool.slashed.value(), EInsufficientTreasury);
    let recipient = ctx.sender();
    let payout = coin::from_balance(pool.slashed.split(amount), ctx);
    transfer::public_transfer(payout, recipient);
    event::emit(TreasuryWithdrawn { recipient, amount, remaining: pool.slashed.value() });
}

/// Admin: creates and shares an `enclave::EnclaveConfig` (version 0) pinning PCR0..2.
/// (Lives here instead of `enclave` to keep the module graph acyclic.)
public fun create_enclave_config(
    _cap: &AdminCap,
    name: String,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
    ctx: &mut TxContext,
) {
    enclave::new_config(name, pcr0, pcr1, pcr2, ctx);
}

/// Admin: replaces the PCRs of an `enclave::EnclaveConfig`, version += 1.
/// (Lives here instead of `enclave` to keep the module graph acyclic.)
public fun update_pcrs(
    _cap: &AdminCap,
    config: &mut EnclaveConfig,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
) {
    enclave::set_pcrs(config, pcr0, pcr1, pcr2);
}

/// Admin: registers an SEV-SNP (platform 1) or TDX (platform 2) enclave whose report / quote the
/// admin verified off chain against the pinned AMD / Intel roots and this config's measurement
/// (Sui has no native verifier for them). Aborts `enclave::EInvalidPlatform` (206) for an unknown
/// platform, `enclave::EInvalidPK` (202) unless `pk` is 32 bytes.
/// (Lives here instead of `enclave` to keep the module graph acyclic.)
public fun register_attested_enclave(
    _cap: &AdminCap,
    config: &EnclaveConfig,
    platform: u8,
    pk: vector<u8>,
    ctx: &mut TxContext,
): ID {
    enclave::register_attested(config, platform, pk, ctx)
}

// === Reads ===

/// Staked amount of `addr`, 0 if it has no record.
public fun stake_amount(pool: &StakingPool, addr: address): u64 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).amount else 0
}

/// Status of `addr` (0 Active, 1 Unbonding, 2 Slashed), 255 if it has no record.
public fun stake_status(pool: &StakingPool, addr: address): u8 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).status else NONE
}

/// Generation of `addr`'s record, 0 if it has no record (generations start at 1).
public fun stake_generation(pool: &StakingPool, addr: address): u64 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).generation else 0
}

/// Role of `addr`, 255 if it has no record.
public fun stake_role(pool: &StakingPool, addr: address): u8 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).role else NONE
}

/// True iff `addr` has a record with status Active.
public fun is_active(pool: &StakingPool, addr: address): bool {
    pool.stakes.contains(addr) && pool.stakes.borrow(addr).status == STATUS_ACTIVE
}

/// Minimum stake for `role`; aborts with `EInvalidRole` if role > 2.
public fun min_stake(pool: &StakingPool, role: u8): u64 {
    if (role == ROLE_USER) pool.min_user_stake
    else if (role == ROLE_NODE) pool.min_node_stake
    else if (role == ROLE_ADMIN) pool.min_admin_stake
    else abort EInvalidRole
}

public fun total_staked(pool: &StakingPool): u64 { pool.total_staked }

/// The address whose live node record holds `node_id`, if any.
public fun node_owner(pool: &StakingPool, node_id: String): Option<address> {
    if (pool.node_owners.contains(node_id)) option::some(*pool.node_owners.borrow(node_id))
    else option::none()
}

// Additional reads (not in SPEC.md; used by `k8s_gateway` and the tests).

/// Node id of `addr`'s record, empty if it has no record.
public fun stake_node_id(pool: &StakingPool, addr: address): String {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).node_id else b"".to_string()
}

/// Unlock epoch of `addr`'s record (0 while Active), 0 if it has no record.
public fun stake_unlock_epoch(pool: &StakingPool, addr: address): u64 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).unlock_epoch else 0
}

/// Total penalties taken from `addr`'s record, 0 if it has no record.
public fun stake_slashed_total(pool: &StakingPool, addr: address): u64 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).slashed_total else 0
}

/// Epoch of the last slash of `addr`'s record, 0 if never slashed or no record.
public fun stake_slashed_epoch(pool: &StakingPool, addr: address): u64 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).slashed_epoch else 0
}

/// Number of slashes `addr`'s record took (the nonce of its next slash report), 0 if no record.
public fun stake_slash_count(pool: &StakingPool, addr: address): u64 {
    if (pool.stakes.contains(addr)) pool.stakes.borrow(addr).slash_count else 0
}

/// Sum of all penalties held by the pool.
public fun slashed_balance(pool: &StakingPool): u64 { pool.slashed.value() }

public fun lockup_epochs(pool: &StakingPool): u64 { pool.lockup_epochs }

public fun slash_bps(pool: &StakingPool): u64 { pool.slash_bps }

// === Test helpers ===

#[test_only]
public fun init_for_testing(ctx: &mut TxContext) {
    init(ctx);
}

#[test_only]
public fun new_slash_report_for_testing(
    node: address,
    node_id: String,
    generation: u64,
    nonce: u64,
    reason: String,
    epoch: u64,
): SlashReport {
    SlashReport { node, node_id, generation, nonce, reason, epoch }
}
