/// The K3s-DaaS economy: users keep an escrow in the shared `Market`, the attested master enclave
/// signs periodic usage reports (what each user's pods used on each node), `settle` charges the
/// escrow at the governance price list and credits the node operators' earnings, and operators
/// withdraw what they earned.
///
/// Abort codes, events, objects and argument order follow contracts/SPEC.md ("economy") exactly;
/// the K3s-DaaS embedded ledger implements the same functions in Rust (crates/ledger/src/economy.rs).
///
/// Units of the price list (MIST): `price_cpu` per 1000 CPU-milliseconds (per CPU-second),
/// `price_mem` per 1000 MiB-seconds of working-set memory, `price_pod` per 1000 pod-seconds.
/// A line costs (cpu_ms * price_cpu + mem_mib_s * price_mem + pod_s * price_pod) / 1000, computed
/// in u128 and rounded down: the user keeps the remainder (< 1 MIST per line).
module k3s_daas::economy;

use k3s_daas::enclave::{Enclave, EnclaveConfig};
use k3s_daas::staking::{Self, AdminCap, StakingPool};
use std::string::String;
use sui::balance::{Self, Balance};
use sui::coin::{Self, Coin};
use sui::event;
use sui::sui::SUI;
use sui::table::{Self, Table};

// === Errors ===

/// Withdrawal above the account's (or the earnings') balance.
const EInsufficientBalance: u64 = 301;
/// The usage report is not signed by the enclave.
const EBadUsageReport: u64 = 302;
/// The report's period is not after the last settled period.
const EReplayedReport: u64 = 303;
/// The enclave is not current for the enclave config (PCRs updated since it registered).
const EStaleEnclave: u64 = 304;
/// A cost, a balance or a sum would not fit in a u64.
const EOverflow: u64 = 305;
/// Deposit of an empty coin, or withdrawal of 0.
const EZeroAmount: u64 = 306;
/// The sender has no escrow account.
const ENoAccount: u64 = 307;
/// The sender has no earnings record.
const ENoEarnings: u64 = 308;
/// The report's vectors differ in length.
const ELengthMismatch: u64 = 309;

// === Constants ===

/// Intent scope of usage reports signed by the enclave.
const USAGE_INTENT: u8 = 3;
/// Prices are per this many units.
const PRICE_UNIT: u64 = 1000;
const DEFAULT_PRICE_CPU: u64 = 1000;
const DEFAULT_PRICE_MEM: u64 = 1;
const DEFAULT_PRICE_POD: u64 = 1000;
const STATUS_ACTIVE: u8 = 0;
const MAX_U64: u64 = 18446744073709551615;
const MAX_U128: u128 = 340282366920938463463374607431768211455;

// === Objects ===

/// The shared market, created in `init`.
public struct Market has key {
    id: UID,
    /// MIST per 1000 CPU-milliseconds.
    price_cpu: u64,
    /// MIST per 1000 MiB-seconds of working-set memory.
    price_mem: u64,
    /// MIST per 1000 pod-seconds.
    price_pod: u64,
    /// Last settled period (0: none).
    last_period: u64,
    /// Holds the sum of the accounts' balances.
    escrow: Balance<SUI>,
    /// Holds the sum of the earnings' balances.
    payouts: Balance<SUI>,
    accounts: Table<address, Account>,
    earnings: Table<address, Earnings>,
}

/// A user's escrow.
public struct Account has store, drop {
    balance: u64,
    deposited: u64,
    spent: u64,
    last_period: u64,
    last_charge: u64,
}

/// A node operator's (the stake owner of a node id) earnings.
public struct Earnings has store, drop {
    balance: u64,
    earned: u64,
    withdrawn: u64,
    uptime_ms: u64,
    last_period: u64,
}

/// Payload of a usage report, signed by the enclave inside an `enclave::IntentMessage` with
/// intent `USAGE_INTENT` (3). Parallel vectors, one entry per (user, node) line.
public struct UsageReport has copy, drop {
    market_id: ID,
    period: u64,
    period_start_ms: u64,
    period_end_ms: u64,
    users: vector<address>,
    node_ids: vector<String>,
    generations: vector<u64>,
    cpu_ms: vector<u64>,
    mem_mib_s: vector<u64>,
    pod_s: vector<u64>,
    uptime_ms: vector<u64>,
}

// === Events ===

public struct Deposited has copy, drop {
    user: address,
    amount: u64,
    balance: u64,
}

public struct EscrowWithdrawn has copy, drop {
    user: address,
    amount: u64,
    balance: u64,
}

public struct EarningsWithdrawn has copy, drop {
    operator: address,
    amount: u64,
    balance: u64,
}

public struct PricesSet has copy, drop {
    price_cpu: u64,
    price_mem: u64,
    price_pod: u64,
}

public struct Charged has copy, drop {
    period: u64,
    user: address,
    node_id: String,
    operator: address,
    /// The line's cost at the market's prices.
    cost: u64,
    /// What was moved from the escrow to the operator: min(cost, balance).
    charged: u64,
}

public struct UsageSkipped has copy, drop {
    period: u64,
    user: address,
    node_id: String,
    /// "no_stake", "not_active", "generation" or "no_account".
    reason: String,
}

public struct Settled has copy, drop {
    period: u64,
    lines: u64,
    charged_total: u64,
    epoch: u64,
}

// === Init ===

fun init(ctx: &mut TxContext) {
    transfer::share_object(new_market(ctx));
}

fun new_market(ctx: &mut TxContext): Market {
    Market {
        id: object::new(ctx),
        price_cpu: DEFAULT_PRICE_CPU,
        price_mem: DEFAULT_PRICE_MEM,
        price_pod: DEFAULT_PRICE_POD,
        last_period: 0,
        escrow: balance::zero(),
        payouts: balance::zero(),
        accounts: table::new(ctx),
        earnings: table::new(ctx),
    }
}

// === Entry functions ===

/// Creates or tops up the sender's escrow account with `payment`.
public fun deposit(market: &mut Market, payment: Coin<SUI>, ctx: &mut TxContext) {
    let amount = payment.value();
    assert!(amount > 0, EZeroAmount);
    let user = ctx.sender();
    if (!market.accounts.contains(user)) {
        market.accounts.add(
            user,
            Account { balance: 0, deposited: 0, spent: 0, last_period: 0, last_charge: 0 },
        );
    };
    assert!(market.escrow.value() <= MAX_U64 - amount, EOverflow);
    let account = market.accounts.borrow_mut(user);
    assert!(account.balance <= MAX_U64 - amount, EOverflow);
    assert!(account.deposited <= MAX_U64 - amount, EOverflow);
    account.balance = account.balance + amount;
    account.deposited = account.deposited + amount;
    let balance = account.balance;
    market.escrow.join(payment.into_balance());
    event::emit(Deposited { user, amount, balance });
}

/// Pays `amount` of the sender's unspent escrow out to the sender.
/// Checks: `ENoAccount`, `EZeroAmount`, `EInsufficientBalance`.
#[allow(lint(self_transfer))]
public fun withdraw_escrow(market: &mut Market, amount: u64, ctx: &mut TxContext) {
    let user = ctx.sender();
    assert!(market.accounts.contains(user), ENoAccount);
    assert!(amount > 0, EZeroAmount);
    let account = market.accounts.borrow_mut(user);
    assert!(amount <= account.balance, EInsufficientBalance);
    account.balance = account.balance - amount;
    let balance = account.balance;
    let payout = coin::from_balance(market.escrow.split(amount), ctx);
    transfer::public_transfer(payout, user);
    event::emit(EscrowWithdrawn { user, amount, balance });
}

/// Pays `amount` of the sender's earnings out to the sender (a node operator).
/// Checks: `ENoEarnings`, `EZeroAmount`, `EInsufficientBalance`.
#[allow(lint(self_transfer))]
public fun withdraw_earnings(market: &mut Market, amount: u64, ctx: &mut TxContext) {
    let operator = ctx.sender();
    assert!(market.earnings.contains(operator), ENoEarnings);
    assert!(amount > 0, EZeroAmount);
    let earnings = market.earnings.borrow_mut(operator);
    assert!(amount <= earnings.balance, EInsufficientBalance);
    assert!(earnings.withdrawn <= MAX_U64 - amount, EOverflow);
    earnings.balance = earnings.balance - amount;
    earnings.withdrawn = earnings.withdrawn + amount;
    let balance = earnings.balance;
    let payout = coin::from_balance(market.payouts.split(amount), ctx);
    transfer::public_transfer(payout, operator);
    event::emit(EarningsWithdrawn { operator, amount, balance });
}

/// Governance: the price list (MIST per 1000 units; see the module documentation).
public fun set_prices(
    _cap: &AdminCap,
    market: &mut Market,
    price_cpu: u64,
    price_mem: u64,
    price_pod: u64,
) {
    market.price_cpu = price_cpu;
    market.price_mem = price_mem;
    market.price_pod = price_pod;
    event::emit(PricesSet { price_cpu, price_mem, price_pod });
}

/// Settles one period of usage signed by the master's enclave. Anyone may submit it.
///
/// Checks, in order: the enclave is current for `config` (`EStaleEnclave`); `signature` is its
/// Ed25519 signature over BCS(IntentMessage { 3, timestamp_ms, UsageReport { id(market), period,
/// period_start_ms, period_end_ms, users, node_ids, generations, cpu_ms, mem_mib_s, pod_s,
/// uptime_ms } }) (`EBadUsageReport`); `period > market.last_period` (`EReplayedReport`); all
/// vectors have the same length (`ELengthMismatch`). Then, per line: the cost (`EOverflow` above a
/// u64); a line is skipped (`UsageSkipped`, nothing charged) if the node id has no holder in the
/// pool, the holder's stake is not Active, the generation differs, or the user has no account;
/// otherwise min(cost, balance) moves from the escrow to the operator's earnings (`Charged`).
public fun settle(
    market: &mut Market,
    pool: &StakingPool,
    config: &EnclaveConfig,
    enclave: &Enclave,
    period: u64,
    period_start_ms: u64,
    period_end_ms: u64,
    users: vector<address>,
    node_ids: vector<String>,
    generations: vector<u64>,
    cpu_ms: vector<u64>,
    mem_mib_s: vector<u64>,
    pod_s: vector<u64>,
    uptime_ms: vector<u64>,
    timestamp_ms: u64,
    signature: vector<u8>,
    ctx: &mut TxContext,
) {
    assert!(enclave.is_current(config), EStaleEnclave);
    let report = UsageReport {
        market_id: object::id(market),
        period,
        period_start_ms,
        period_end_ms,
        users,
        node_ids,
        generations,
        cpu_ms,
        mem_mib_s,
        pod_s,
        uptime_ms,
    };
    assert!(enclave.verify_signature(USAGE_INTENT, timestamp_ms, report, &signature), EBadUsageReport);
    assert!(period > market.last_period, EReplayedReport);
    let lines = report.users.length();
    assert!(
        report.node_ids.length() == lines && report.generations.length() == lines
            && report.cpu_ms.length() == lines && report.mem_mib_s.length() == lines
            && report.pod_s.length() == lines && report.uptime_ms.length() == lines,
        ELengthMismatch,
    );
    let mut charged_total: u64 = 0;
    let mut i = 0;
    while (i < lines) {
        let user = report.users[i];
        let node_id = report.node_ids[i];
        let cost = usage_cost(market, report.cpu_ms[i], report.mem_mib_s[i], report.pod_s[i]);
        let owner = staking::node_owner(pool, node_id);
        if (owner.is_none()) {
            skip(period, user, node_id, b"no_stake");
        } else {
            let operator = owner.destroy_some();
            if (staking::stake_status(pool, operator) != STATUS_ACTIVE) {
                skip(period, user, node_id, b"not_active");
            } else if (staking::stake_generation(pool, operator) != report.generations[i]) {
                skip(period, user, node_id, b"generation");
            } else if (!market.accounts.contains(user)) {
                skip(period, user, node_id, b"no_account");
            } else {
                let charge = charge_line(market, user, operator, cost, report.uptime_ms[i], period);
                assert!(charged_total <= MAX_U64 - charge, EOverflow);
                charged_total = charged_total + charge;
                event::emit(Charged { period, user, node_id, operator, cost, charged: charge });
            };
        };
        i = i + 1;
    };
    market.last_period = period;
    event::emit(Settled { period, lines, charged_total, epoch: ctx.epoch() });
}

/// Moves min(cost, balance) of `user`'s escrow to `operator`'s earnings (created on first pay).
fun charge_line(
    market: &mut Market,
    user: address,
    operator: address,
    cost: u64,
    uptime_ms: u64,
    period: u64,
): u64 {
    let account = market.accounts.borrow_mut(user);
    let charge = if (cost < account.balance) { cost } else { account.balance };
    assert!(account.spent <= MAX_U64 - charge, EOverflow);
    account.balance = account.balance - charge;
    account.spent = account.spent + charge;
    account.last_period = period;
    account.last_charge = charge;
    assert!(market.payouts.value() <= MAX_U64 - charge, EOverflow);
    let paid = market.escrow.split(charge);
    market.payouts.join(paid);
    if (!market.earnings.contains(operator)) {
        market.earnings.add(
            operator,
            Earnings { balance: 0, earned: 0, withdrawn: 0, uptime_ms: 0, last_period: 0 },
        );
    };
    let earnings = market.earnings.borrow_mut(operator);
    assert!(earnings.balance <= MAX_U64 - charge, EOverflow);
    assert!(earnings.earned <= MAX_U64 - charge, EOverflow);
    assert!(earnings.uptime_ms <= MAX_U64 - uptime_ms, EOverflow);
    earnings.balance = earnings.balance + charge;
    earnings.earned = earnings.earned + charge;
    earnings.uptime_ms = earnings.uptime_ms + uptime_ms;
    earnings.last_period = period;
    charge
}

fun skip(period: u64, user: address, node_id: String, reason: vector<u8>) {
    event::emit(UsageSkipped { period, user, node_id, reason: reason.to_string() });
}

/// (cpu_ms * price_cpu + mem_mib_s * price_mem + pod_s * price_pod) / 1000 in u128, rounded down;
/// `EOverflow` if the sum does not fit a u128 or the cost a u64.
fun usage_cost(market: &Market, cpu_ms: u64, mem_mib_s: u64, pod_s: u64): u64 {
    let a = (cpu_ms as u128) * (market.price_cpu as u128);
    let b = (mem_mib_s as u128) * (market.price_mem as u128);
    let c = (pod_s as u128) * (market.price_pod as u128);
    assert!(a <= MAX_U128 - b, EOverflow);
    let ab = a + b;
    assert!(ab <= MAX_U128 - c, EOverflow);
    let cost = (ab + c) / (PRICE_UNIT as u128);
    assert!(cost <= (MAX_U64 as u128), EOverflow);
    (cost as u64)
}

// === Reads ===

public fun prices(market: &Market): (u64, u64, u64) {
    (market.price_cpu, market.price_mem, market.price_pod)
}

public fun last_period(market: &Market): u64 { market.last_period }

public fun escrow_value(market: &Market): u64 { market.escrow.value() }

public fun payouts_value(market: &Market): u64 { market.payouts.value() }

public fun has_account(market: &Market, user: address): bool { market.accounts.contains(user) }

/// Unspent escrow of `user`, 0 without an account.
public fun balance_of(market: &Market, user: address): u64 {
    if (market.accounts.contains(user)) { market.accounts[user].balance } else { 0 }
}

/// (balance, deposited, spent, last_period, last_charge) of `user`'s account (aborts without one).
public fun account_of(market: &Market, user: address): (u64, u64, u64, u64, u64) {
    let a = &market.accounts[user];
    (a.balance, a.deposited, a.spent, a.last_period, a.last_charge)
}

public fun has_earnings(market: &Market, operator: address): bool {
    market.earnings.contains(operator)
}

/// Withdrawable earnings of `operator`, 0 without a record.
public fun earnings_balance(market: &Market, operator: address): u64 {
    if (market.earnings.contains(operator)) { market.earnings[operator].balance } else { 0 }
}

/// (balance, earned, withdrawn, uptime_ms, last_period) of `operator`'s earnings (aborts without).
public fun earnings_of(market: &Market, operator: address): (u64, u64, u64, u64, u64) {
    let e = &market.earnings[operator];
    (e.balance, e.earned, e.withdrawn, e.uptime_ms, e.last_period)
}

// === Test helpers ===

#[test_only]
public fun init_for_testing(ctx: &mut TxContext) {
    init(ctx);
}

/// A market that is not shared (its id is the first object id of `ctx`'s transaction).
#[test_only]
public fun new_market_for_testing(ctx: &mut TxContext): Market {
    new_market(ctx)
}

#[test_only]
public fun destroy_market_for_testing(market: Market) {
    let Market {
        id,
        price_cpu: _,
        price_mem: _,
        price_pod: _,
        last_period: _,
        escrow,
        payouts,
        accounts,
        earnings,
    } = market;
    id.delete();
    balance::destroy_for_testing(escrow);
    balance::destroy_for_testing(payouts);
    accounts.drop();
    earnings.drop();
}

#[test_only]
public fun new_usage_report_for_testing(
    market_id: ID,
    period: u64,
    period_start_ms: u64,
    period_end_ms: u64,
    users: vector<address>,
    node_ids: vector<String>,
    generations: vector<u64>,
    cpu_ms: vector<u64>,
    mem_mib_s: vector<u64>,
    pod_s: vector<u64>,
    uptime_ms: vector<u64>,
): UsageReport {
    UsageReport {
        market_id,
        period,
        period_start_ms,
        period_end_ms,
        users,
        node_ids,
        generations,
        cpu_ms,
        mem_mib_s,
        pod_s,
        uptime_ms,
    }
}

#[test_only]
public fun usage_cost_for_testing(market: &Market, cpu_ms: u64, mem_mib_s: u64, pod_s: u64): u64 {
    usage_cost(market, cpu_ms, mem_mib_s, pod_s)
}
