//! The real [`BillingLedger`]: reads through `daas_ledger::Ledger`, and settles by signing the
//! report with the enclave key (Nautilus IntentMessage, intent 3) and submitting
//! `economy::settle` with the registered enclave and its config, paid by the master's wallet
//! (as slashing does).

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use daas_ledger::wallet::{Wallet, WalletError};
use daas_ledger::{contract, tx, LedgerError};
use sui_sdk_types::Address;

use super::ledger::{
    AccountView, BillingLedger, BillingLedgerError, MarketView, Prices, Report, Settled,
};
use crate::enclave::EnclaveHandle;
use crate::registration::Registration;

pub struct LedgerBilling {
    pub wallet: Wallet,
    pub enclave: EnclaveHandle,
    /// Where the enclave is registered (filled by `Master::set_registration`).
    pub registration: Arc<RwLock<Option<Registration>>>,
}

impl From<LedgerError> for BillingLedgerError {
    fn from(e: LedgerError) -> Self {
        BillingLedgerError::Backend(e.to_string())
    }
}

impl From<WalletError> for BillingLedgerError {
    fn from(e: WalletError) -> Self {
        match e.abort() {
            Some((_, code)) => BillingLedgerError::Aborted { code },
            None => BillingLedgerError::Backend(e.to_string()),
        }
    }
}

/// The contract's report for `r` on market `market_id`.
pub fn usage_report(market_id: contract::ObjectId, r: &Report) -> contract::UsageReport {
    let mut out =
        contract::UsageReport::new(market_id, r.period, r.period_start_ms, r.period_end_ms);
    for l in &r.lines {
        out.push(contract::UsageLine {
            user: l.user,
            node_id: l.node_id.clone(),
            generation: l.generation,
            cpu_ms: l.cpu_ms,
            mem_mib_s: l.mem_mib_s,
            pod_s: l.pod_s,
            uptime_ms: l.uptime_ms,
        });
    }
    out
}

/// What the `Charged` events of a settlement charged, per user.
pub fn charged(events: &[contract::Event]) -> Settled {
    let mut s = Settled::default();
    for e in events {
        if let contract::Event::Charged { user, charged, .. } = e {
            *s.charged.entry(*user).or_default() += charged;
            s.total = s.total.saturating_add(*charged);
        }
    }
    s
}

#[async_trait]
impl BillingLedger for LedgerBilling {
    async fn market(&self) -> Result<Option<MarketView>, BillingLedgerError> {
        Ok(self.wallet.ledger.market().await?.map(|m| MarketView {
            prices: Prices {
                cpu: m.price_cpu,
                mem: m.price_mem,
                pod: m.price_pod,
            },
            last_period: m.last_period,
        }))
    }

    async fn account(&self, user: Address) -> Result<Option<AccountView>, BillingLedgerError> {
        Ok(self
            .wallet
            .ledger
            .account(user)
            .await?
            .map(|a| AccountView {
                balance: a.balance,
                deposited: a.deposited,
                spent: a.spent,
            }))
    }

    async fn node_generation(&self, node_id: &str) -> Result<Option<u64>, BillingLedgerError> {
        Ok(self
            .wallet
            .ledger
            .node_stake(node_id)
            .await?
            .map(|(_, r)| r.generation))
    }

    async fn settle(&self, report: &Report) -> Result<Settled, BillingLedgerError> {
        let reg = self
            .registration
            .read()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(BillingLedgerError::NotRegistered)?;
        let d = self.wallet.ledger.deployment().await?;
        let market = d.market.as_ref().ok_or(BillingLedgerError::NoMarket)?;
        let r = usage_report(market.id, report);
        let ts = crate::now_ms();
        let sig = self.enclave.enclave.sign(&r.signing_bytes(ts));
        let eff = self
            .wallet
            .execute(|ctx, d| tx::settle(ctx, d, &reg.config, &reg.enclave, &r, ts, &sig))
            .await?;
        let mut s = charged(&eff.events);
        s.digest = eff.digest.to_string();
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::ledger::ReportLine;

    #[test]
    fn report_lines_map_in_order_and_charges_sum_per_user() {
        let a = Address::new([1; 32]);
        let b = Address::new([2; 32]);
        let r = Report {
            period: 7,
            period_start_ms: 1,
            period_end_ms: 2,
            lines: vec![
                ReportLine {
                    user: a,
                    node_id: "n1".into(),
                    generation: 3,
                    cpu_ms: 4,
                    mem_mib_s: 5,
                    pod_s: 6,
                    uptime_ms: 7,
                },
                ReportLine {
                    user: b,
                    node_id: "n2".into(),
                    generation: 1,
                    cpu_ms: 0,
                    mem_mib_s: 0,
                    pod_s: 1,
                    uptime_ms: 0,
                },
            ],
        };
        let u = usage_report(Address::new([9; 32]), &r);
        assert_eq!(u.lines(), Some(2));
        assert_eq!(u.users, vec![a, b]);
        assert_eq!(u.generations, vec![3, 1]);
        assert_eq!(u.uptime_ms, vec![7, 0]);
        assert_eq!(u.period, 7);
        let ev = |user, charged| contract::Event::Charged {
            period: 7,
            user,
            node_id: "n".into(),
            operator: b,
            cost: charged,
            charged,
        };
        let s = charged(&[ev(a, 3), ev(a, 4), ev(b, 1)]);
        assert_eq!(s.total, 8);
        assert_eq!(s.charged.get(&a), Some(&7));
    }
}
