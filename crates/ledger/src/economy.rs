//! `k3s_daas::economy` (contracts/SPEC.md, "economy"): user escrow accounts, the governance price
//! list, settlement of enclave-signed usage reports and node-operator earnings, as pure Rust
//! functions over the shared [`Market`]. Re-exported from [`crate::contract`].
//!
//! Like the rest of the contract port, a function that returns an error has changed nothing the
//! caller keeps: `settle` works on a copy of the market and writes it back only on success.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sui_sdk_types::Address;

use crate::contract::{
    is_current, verify_signature, AdminCap, Coin, ContractError, ContractObject, Enclave,
    EnclaveConfig, Event, IntentMessage, ObjectId, StakingPool, TxContext, DEFAULT_PRICE_CPU,
    DEFAULT_PRICE_MEM, DEFAULT_PRICE_POD, PRICE_UNIT, SKIP_GENERATION, SKIP_NOT_ACTIVE,
    SKIP_NO_ACCOUNT, SKIP_NO_STAKE, STATUS_ACTIVE, USAGE_INTENT,
};

/// `economy::Account` (per user address): the user's escrow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Unspent escrow (MIST) the user may withdraw or be charged from.
    pub balance: u64,
    /// Sum of all deposits.
    pub deposited: u64,
    /// Sum of all settlement charges.
    pub spent: u64,
    /// Period of the last settlement that charged this account (0: never).
    pub last_period: u64,
    /// Amount charged by the last line that charged this account.
    pub last_charge: u64,
}

/// `economy::Earnings` (per node operator address, the stake owner of the node id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earnings {
    /// Earned and not yet withdrawn (MIST).
    pub balance: u64,
    /// Sum of everything earned.
    pub earned: u64,
    /// Sum of everything withdrawn.
    pub withdrawn: u64,
    /// Verified uptime (ms) delivered in settled lines.
    pub uptime_ms: u64,
    /// Period of the last settlement that paid this operator.
    pub last_period: u64,
}

/// `economy::Market` (shared, created at genesis / in `init`). `escrow` and `payouts` are the
/// values of the market's `Balance<SUI>`s: `escrow` = sum of the accounts' balances, `payouts` =
/// sum of the earnings' balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Market {
    pub id: ObjectId,
    /// MIST per 1000 CPU-milliseconds (per CPU-second).
    pub price_cpu: u64,
    /// MIST per 1000 MiB-seconds of working-set memory.
    pub price_mem: u64,
    /// MIST per 1000 pod-seconds.
    pub price_pod: u64,
    /// Last settled period (0: none).
    pub last_period: u64,
    pub escrow: u64,
    pub payouts: u64,
    pub accounts: BTreeMap<Address, Account>,
    pub earnings: BTreeMap<Address, Earnings>,
}

impl Market {
    pub fn account(&self, user: &Address) -> Option<&Account> {
        self.accounts.get(user)
    }

    pub fn earnings_of(&self, operator: &Address) -> Option<&Earnings> {
        self.earnings.get(operator)
    }

    /// The cost of one usage line at the market's prices ([`usage_cost`]).
    pub fn cost(&self, cpu_ms: u64, mem_mib_s: u64, pod_s: u64) -> Result<u64, ContractError> {
        usage_cost(
            self.price_cpu,
            self.price_mem,
            self.price_pod,
            cpu_ms,
            mem_mib_s,
            pod_s,
        )
    }
}

/// `(cpu_ms * price_cpu + mem_mib_s * price_mem + pod_s * price_pod) / 1000` in u128, rounded down
/// (the user keeps the remainder, < 1 MIST per line); `EOverflow` above `u64::MAX`.
pub fn usage_cost(
    price_cpu: u64,
    price_mem: u64,
    price_pod: u64,
    cpu_ms: u64,
    mem_mib_s: u64,
    pod_s: u64,
) -> Result<u64, ContractError> {
    let a = cpu_ms as u128 * price_cpu as u128;
    let b = mem_mib_s as u128 * price_mem as u128;
    let c = pod_s as u128 * price_pod as u128;
    let sum = a
        .checked_add(b)
        .and_then(|s| s.checked_add(c))
        .ok_or(ContractError::Overflow)?;
    u64::try_from(sum / PRICE_UNIT as u128).map_err(|_| ContractError::Overflow)
}

/// One line of a usage report: what `user`'s pods used on node `node_id` (stake generation
/// `generation`) during the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageLine {
    pub user: Address,
    pub node_id: String,
    pub generation: u64,
    pub cpu_ms: u64,
    pub mem_mib_s: u64,
    pub pod_s: u64,
    pub uptime_ms: u64,
}

/// `economy::UsageReport` (the BCS payload the enclave signs, fields in this order): parallel
/// vectors, one entry per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    pub market_id: ObjectId,
    pub period: u64,
    pub period_start_ms: u64,
    pub period_end_ms: u64,
    pub users: Vec<Address>,
    pub node_ids: Vec<String>,
    pub generations: Vec<u64>,
    pub cpu_ms: Vec<u64>,
    pub mem_mib_s: Vec<u64>,
    pub pod_s: Vec<u64>,
    pub uptime_ms: Vec<u64>,
}

impl UsageReport {
    /// An empty report for `market_id`.
    pub fn new(market_id: ObjectId, period: u64, period_start_ms: u64, period_end_ms: u64) -> Self {
        UsageReport {
            market_id,
            period,
            period_start_ms,
            period_end_ms,
            users: Vec::new(),
            node_ids: Vec::new(),
            generations: Vec::new(),
            cpu_ms: Vec::new(),
            mem_mib_s: Vec::new(),
            pod_s: Vec::new(),
            uptime_ms: Vec::new(),
        }
    }

    /// Appends a line to every vector.
    pub fn push(&mut self, line: UsageLine) {
        self.users.push(line.user);
        self.node_ids.push(line.node_id);
        self.generations.push(line.generation);
        self.cpu_ms.push(line.cpu_ms);
        self.mem_mib_s.push(line.mem_mib_s);
        self.pod_s.push(line.pod_s);
        self.uptime_ms.push(line.uptime_ms);
    }

    /// Builder form of [`push`](Self::push).
    pub fn with_line(mut self, line: UsageLine) -> Self {
        self.push(line);
        self
    }

    /// Number of lines (`None` when the vectors differ in length).
    pub fn lines(&self) -> Option<usize> {
        let n = self.users.len();
        let all = [
            self.node_ids.len(),
            self.generations.len(),
            self.cpu_ms.len(),
            self.mem_mib_s.len(),
            self.pod_s.len(),
            self.uptime_ms.len(),
        ];
        all.iter().all(|l| *l == n).then_some(n)
    }

    /// The bytes the enclave signs: BCS of `IntentMessage { 3, timestamp_ms, self }`.
    pub fn signing_bytes(&self, timestamp_ms: u64) -> Vec<u8> {
        usage_report_message(self, timestamp_ms)
    }
}

/// The bytes an enclave signs for a usage report (`IntentMessage { USAGE_INTENT, timestamp_ms,
/// report }`).
pub fn usage_report_message(report: &UsageReport, timestamp_ms: u64) -> Vec<u8> {
    let msg = IntentMessage {
        intent: USAGE_INTENT,
        timestamp_ms,
        data: report,
    };
    // BCS of structs of primitives, strings and vectors cannot fail.
    bcs::to_bytes(&msg).unwrap_or_default()
}

/// `economy::init` (embedded ledger: genesis): the market with the default prices.
pub fn market_init(ctx: &mut TxContext) -> Market {
    Market {
        id: ctx.fresh_id(),
        price_cpu: DEFAULT_PRICE_CPU,
        price_mem: DEFAULT_PRICE_MEM,
        price_pod: DEFAULT_PRICE_POD,
        last_period: 0,
        escrow: 0,
        payouts: 0,
        accounts: BTreeMap::new(),
        earnings: BTreeMap::new(),
    }
}

/// `economy::deposit(market, payment)`: creates or tops up the sender's account. Consumes the
/// coin. `EZeroAmount` for an empty coin, `EOverflow` if a balance would overflow.
pub fn deposit(
    market: &mut Market,
    payment: Coin,
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    let amount = payment.value;
    if amount == 0 {
        return Err(ContractError::ZeroAmount);
    }
    let user = ctx.sender;
    let mut account = market.accounts.get(&user).cloned().unwrap_or_default();
    account.balance = account
        .balance
        .checked_add(amount)
        .ok_or(ContractError::Overflow)?;
    account.deposited = account
        .deposited
        .checked_add(amount)
        .ok_or(ContractError::Overflow)?;
    let escrow = market
        .escrow
        .checked_add(amount)
        .ok_or(ContractError::Overflow)?;
    let balance = account.balance;
    market.escrow = escrow;
    market.accounts.insert(user, account);
    ctx.deleted.push(payment.id);
    ctx.emit(Event::Deposited {
        user,
        amount,
        balance,
    });
    Ok(())
}

/// `economy::withdraw_escrow(market, amount)`: pays `amount` of the sender's unspent escrow out as
/// a new coin. Checks in order: `ENoAccount`, `EZeroAmount`, `EInsufficientBalance`.
pub fn withdraw_escrow(
    market: &mut Market,
    amount: u64,
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    let user = ctx.sender;
    let account = market
        .accounts
        .get_mut(&user)
        .ok_or(ContractError::NoAccount)?;
    if amount == 0 {
        return Err(ContractError::ZeroAmount);
    }
    if amount > account.balance {
        return Err(ContractError::InsufficientBalance);
    }
    account.balance -= amount;
    let balance = account.balance;
    market.escrow = market
        .escrow
        .checked_sub(amount)
        .ok_or(ContractError::InsufficientBalance)?;
    let coin = Coin {
        id: ctx.fresh_id(),
        value: amount,
    };
    ctx.transfer(ContractObject::Coin(coin), user);
    ctx.emit(Event::EscrowWithdrawn {
        user,
        amount,
        balance,
    });
    Ok(())
}

/// `economy::withdraw_earnings(market, amount)`: pays `amount` of the sender's (a node operator's)
/// earnings out as a new coin. Checks in order: `ENoEarnings`, `EZeroAmount`,
/// `EInsufficientBalance`.
pub fn withdraw_earnings(
    market: &mut Market,
    amount: u64,
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    let operator = ctx.sender;
    let earnings = market
        .earnings
        .get_mut(&operator)
        .ok_or(ContractError::NoEarnings)?;
    if amount == 0 {
        return Err(ContractError::ZeroAmount);
    }
    if amount > earnings.balance {
        return Err(ContractError::InsufficientBalance);
    }
    let withdrawn = earnings
        .withdrawn
        .checked_add(amount)
        .ok_or(ContractError::Overflow)?;
    earnings.balance -= amount;
    earnings.withdrawn = withdrawn;
    let balance = earnings.balance;
    market.payouts = market
        .payouts
        .checked_sub(amount)
        .ok_or(ContractError::InsufficientBalance)?;
    let coin = Coin {
        id: ctx.fresh_id(),
        value: amount,
    };
    ctx.transfer(ContractObject::Coin(coin), operator);
    ctx.emit(Event::EarningsWithdrawn {
        operator,
        amount,
        balance,
    });
    Ok(())
}

/// `economy::set_prices(admin_cap, market, price_cpu, price_mem, price_pod)` (governance).
pub fn set_prices(
    _cap: &AdminCap,
    market: &mut Market,
    price_cpu: u64,
    price_mem: u64,
    price_pod: u64,
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    market.price_cpu = price_cpu;
    market.price_mem = price_mem;
    market.price_pod = price_pod;
    ctx.emit(Event::PricesSet {
        price_cpu,
        price_mem,
        price_pod,
    });
    Ok(())
}

/// `economy::settle(market, pool, config, enclave, period, period_start_ms, period_end_ms, users,
/// node_ids, generations, cpu_ms, mem_mib_s, pod_s, uptime_ms, timestamp_ms, signature)` with the
/// vectors taken from `report` (`report.market_id` is not an argument: the signed message uses
/// the id of `market`, so a report signed for another market is `EBadUsageReport`).
///
/// Checks in order: `EStaleEnclave` (enclave not current for `config`), `EBadUsageReport`
/// (signature), `EReplayedReport` (period <= last_period), `ELengthMismatch`; then per line the
/// cost ([`usage_cost`], `EOverflow`), the skip rules (node id without holder, holder not Active,
/// generation differs, user without account: event `UsageSkipped`, nothing charged), and the
/// charge `min(cost, balance)` moved from escrow to the operator's earnings (`EOverflow` on any
/// overflow). Atomic: on error `market` is unchanged.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    market: &mut Market,
    pool: &StakingPool,
    config: &EnclaveConfig,
    enclave: &Enclave,
    report: &UsageReport,
    timestamp_ms: u64,
    signature: &[u8],
    ctx: &mut TxContext,
) -> Result<(), ContractError> {
    if !is_current(enclave, config) {
        return Err(ContractError::StaleUsageEnclave);
    }
    let signed = UsageReport {
        market_id: market.id,
        ..report.clone()
    };
    if !verify_signature(enclave, USAGE_INTENT, timestamp_ms, &signed, signature) {
        return Err(ContractError::BadUsageReport);
    }
    if signed.period <= market.last_period {
        return Err(ContractError::ReplayedReport);
    }
    let lines = signed.lines().ok_or(ContractError::LengthMismatch)?;
    let period = signed.period;
    let mut m = market.clone();
    let mut events = Vec::new();
    let mut charged_total: u64 = 0;
    for i in 0..lines {
        let user = signed.users[i];
        let node_id = &signed.node_ids[i];
        let cost = m.cost(signed.cpu_ms[i], signed.mem_mib_s[i], signed.pod_s[i])?;
        let skip = |reason: &str| Event::UsageSkipped {
            period,
            user,
            node_id: node_id.clone(),
            reason: reason.to_string(),
        };
        let Some(operator) = pool.node_owners.get(node_id).copied() else {
            events.push(skip(SKIP_NO_STAKE));
            continue;
        };
        let Some(record) = pool.stakes.get(&operator) else {
            events.push(skip(SKIP_NO_STAKE));
            continue;
        };
        if record.status != STATUS_ACTIVE {
            events.push(skip(SKIP_NOT_ACTIVE));
            continue;
        }
        if record.generation != signed.generations[i] {
            events.push(skip(SKIP_GENERATION));
            continue;
        }
        let Some(account) = m.accounts.get_mut(&user) else {
            events.push(skip(SKIP_NO_ACCOUNT));
            continue;
        };
        let charge = cost.min(account.balance);
        account.balance -= charge;
        account.spent = account
            .spent
            .checked_add(charge)
            .ok_or(ContractError::Overflow)?;
        account.last_period = period;
        account.last_charge = charge;
        m.escrow = m
            .escrow
            .checked_sub(charge)
            .ok_or(ContractError::InsufficientBalance)?;
        m.payouts = m
            .payouts
            .checked_add(charge)
            .ok_or(ContractError::Overflow)?;
        let earnings = m.earnings.entry(operator).or_default();
        earnings.balance = earnings
            .balance
            .checked_add(charge)
            .ok_or(ContractError::Overflow)?;
        earnings.earned = earnings
            .earned
            .checked_add(charge)
            .ok_or(ContractError::Overflow)?;
        earnings.uptime_ms = earnings
            .uptime_ms
            .checked_add(signed.uptime_ms[i])
            .ok_or(ContractError::Overflow)?;
        earnings.last_period = period;
        charged_total = charged_total
            .checked_add(charge)
            .ok_or(ContractError::Overflow)?;
        events.push(Event::Charged {
            period,
            user,
            node_id: node_id.clone(),
            operator,
            cost,
            charged: charge,
        });
    }
    m.last_period = period;
    *market = m;
    for e in events {
        ctx.emit(e);
    }
    ctx.emit(Event::Settled {
        period,
        lines: lines as u64,
        charged_total,
        epoch: ctx.epoch,
    });
    Ok(())
}

/// `economy::balance_of(market, user)`: the account's unspent escrow, 0 without an account.
pub fn balance_of(market: &Market, user: &Address) -> u64 {
    market.accounts.get(user).map_or(0, |a| a.balance)
}

/// `economy::earnings_balance(market, operator)`: withdrawable earnings, 0 without a record.
pub fn earnings_balance(market: &Market, operator: &Address) -> u64 {
    market.earnings.get(operator).map_or(0, |e| e.balance)
}
