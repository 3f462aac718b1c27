//! What billing needs from the ledger, as a trait: the market's prices and last settled period,
//! a user's escrow account, a node's current stake generation, and submitting a signed
//! settlement. The real implementation wraps `daas_ledger::Ledger` plus the master's wallet and
//! enclave key; [`MemoryLedger`] implements the contract's settlement rules in memory for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use sui_sdk_types::Address;

/// The economy abort codes (`k3s_daas::economy`).
pub mod abort {
    pub const INSUFFICIENT_BALANCE: u64 = 301;
    pub const BAD_USAGE_REPORT: u64 = 302;
    pub const REPLAYED_REPORT: u64 = 303;
    pub const STALE_ENCLAVE: u64 = 304;
    pub const OVERFLOW: u64 = 305;
    pub const LENGTH_MISMATCH: u64 = 309;
}

/// Market prices, MIST per 1000 units (CPU-ms, MiB-s, pod-s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prices {
    pub cpu: u64,
    pub mem: u64,
    pub pod: u64,
}

impl Default for Prices {
    /// The contract's defaults.
    fn default() -> Self {
        Prices {
            cpu: 1000,
            mem: 1,
            pod: 1000,
        }
    }
}

impl Prices {
    /// The contract's cost of a line: (cpu*pc + mem*pm + pod*pp) / 1000 in u128, rounded down;
    /// None when it does not fit in u64.
    pub fn cost(&self, u: &super::meter::Units) -> Option<u64> {
        let sum = u128::from(u.cpu_ms) * u128::from(self.cpu)
            + u128::from(u.mem_mib_s) * u128::from(self.mem)
            + u128::from(u.pod_s) * u128::from(self.pod);
        u64::try_from(sum / 1000).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarketView {
    pub prices: Prices,
    pub last_period: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountView {
    pub balance: u64,
    pub deposited: u64,
    pub spent: u64,
}

/// One line of a usage report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    pub user: Address,
    pub node_id: String,
    pub generation: u64,
    pub cpu_ms: u64,
    pub mem_mib_s: u64,
    pub pod_s: u64,
    pub uptime_ms: u64,
}

/// A usage report before signing (lines sorted by user, then node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub period: u64,
    pub period_start_ms: u64,
    pub period_end_ms: u64,
    pub lines: Vec<ReportLine>,
}

/// What a settlement charged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub digest: String,
    /// MIST charged per user.
    pub charged: BTreeMap<Address, u64>,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BillingLedgerError {
    /// The ledger refused the settlement (a Move abort of `economy::settle`).
    #[error("settlement refused: abort {code}")]
    Aborted { code: u64 },
    #[error("the enclave is not registered on the ledger yet")]
    NotRegistered,
    #[error("the ledger has no economy market")]
    NoMarket,
    #[error("ledger: {0}")]
    Backend(String),
}

#[async_trait]
pub trait BillingLedger: Send + Sync {
    async fn market(&self) -> Result<Option<MarketView>, BillingLedgerError>;
    async fn account(&self, user: Address) -> Result<Option<AccountView>, BillingLedgerError>;
    /// The generation of the stake holding `node_id` (None: no stake holds it).
    async fn node_generation(&self, node_id: &str) -> Result<Option<u64>, BillingLedgerError>;
    /// Sign `report` with the enclave key and submit `economy::settle`.
    async fn settle(&self, report: &Report) -> Result<Settled, BillingLedgerError>;
}

/// An in-memory ledger following the contract's settlement rules (tests).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    pub state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
pub struct MemoryState {
    pub market: MarketView,
    pub accounts: BTreeMap<Address, AccountView>,
    /// node id -> (operator, generation, active)
    pub nodes: BTreeMap<String, (Address, u64, bool)>,
    pub earnings: BTreeMap<Address, u64>,
    /// Refuse the next settlement with this abort code.
    pub refuse_next: Option<u64>,
    pub settlements: Vec<Report>,
}

impl MemoryLedger {
    pub fn deposit(&self, user: Address, amount: u64) {
        if let Ok(mut s) = self.state.lock() {
            let a = s.accounts.entry(user).or_default();
            a.balance += amount;
            a.deposited += amount;
        }
    }

    pub fn add_node(&self, node: &str, operator: Address, generation: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.nodes
                .insert(node.to_string(), (operator, generation, true));
        }
    }
}

#[async_trait]
impl BillingLedger for MemoryLedger {
    async fn market(&self) -> Result<Option<MarketView>, BillingLedgerError> {
        Ok(self.state.lock().ok().map(|s| s.market))
    }

    async fn account(&self, user: Address) -> Result<Option<AccountView>, BillingLedgerError> {
        Ok(self
            .state
            .lock()
            .ok()
            .and_then(|s| s.accounts.get(&user).copied()))
    }

    async fn node_generation(&self, node_id: &str) -> Result<Option<u64>, BillingLedgerError> {
        Ok(self
            .state
            .lock()
            .ok()
            .and_then(|s| s.nodes.get(node_id).map(|n| n.1)))
    }

    async fn settle(&self, report: &Report) -> Result<Settled, BillingLedgerError> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| BillingLedgerError::Backend("poisoned".into()))?;
        if let Some(code) = s.refuse_next.take() {
            return Err(BillingLedgerError::Aborted { code });
        }
        if report.period <= s.market.last_period {
            return Err(BillingLedgerError::Aborted {
                code: abort::REPLAYED_REPORT,
            });
        }
        let prices = s.market.prices;
        let mut out = Settled::default();
        for l in &report.lines {
            let cost = prices
                .cost(&super::meter::Units {
                    cpu_ms: l.cpu_ms,
                    mem_mib_s: l.mem_mib_s,
                    pod_s: l.pod_s,
                })
                .ok_or(BillingLedgerError::Aborted {
                    code: abort::OVERFLOW,
                })?;
            let Some(&(op, gen, active)) = s.nodes.get(&l.node_id) else {
                continue;
            };
            if !active || gen != l.generation {
                continue;
            }
            let Some(acct) = s.accounts.get_mut(&l.user) else {
                continue;
            };
            let charge = cost.min(acct.balance);
            acct.balance -= charge;
            acct.spent += charge;
            *s.earnings.entry(op).or_default() += charge;
            *out.charged.entry(l.user).or_default() += charge;
            out.total += charge;
        }
        s.market.last_period = report.period;
        s.settlements.push(report.clone());
        out.digest = format!("mem-{}", report.period);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::meter::Units;

    #[test]
    fn cost_rounds_down_and_refuses_overflow() {
        let p = Prices::default();
        let u = Units {
            cpu_ms: 1,
            mem_mib_s: 999,
            pod_s: 1,
        };
        // (1000 + 999 + 1000) / 1000 = 2 (2.999 rounded down).
        assert_eq!(p.cost(&u), Some(2));
        let big = Prices {
            cpu: u64::MAX,
            mem: 0,
            pod: 0,
        };
        assert_eq!(
            big.cost(&Units {
                cpu_ms: u64::MAX,
                ..Default::default()
            }),
            None
        );
    }
}
