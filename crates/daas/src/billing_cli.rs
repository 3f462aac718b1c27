//! The billing flags of `daas master` / `daas up` (config file keys: the same names).

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{ArgAction, Args};
use daas_master::billing::BillingConfig;

#[derive(Args, Clone, Debug)]
pub struct BillingArgs {
    /// Meter pods, settle usage on the ledger and enforce dry escrow (needs a ledger and the
    /// master's Sui key; `--billing=false` turns it off).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub billing: bool,
    /// How often an enclave-signed usage report is settled on the ledger (e.g. 60s, 5s).
    #[arg(long, default_value = "60s", value_parser = daas_master::controlplane::parse_duration)]
    pub settlement_period: Duration,
    /// How often each node's stats summary is integrated into the period's usage.
    #[arg(long, default_value = "10s", value_parser = daas_master::controlplane::parse_duration)]
    pub metering_interval: Duration,
    /// How long a user with an empty or missing escrow account keeps running workloads before
    /// they are scaled to zero (never deleted).
    #[arg(long, default_value = "10m", value_parser = daas_master::controlplane::parse_duration)]
    pub escrow_grace: Duration,
}

impl BillingArgs {
    pub fn config(&self) -> Result<Option<BillingConfig>> {
        if !self.billing {
            return Ok(None);
        }
        if self.settlement_period < Duration::from_millis(100) {
            bail!("--settlement-period must be at least 100ms");
        }
        if self.metering_interval < Duration::from_millis(100) {
            bail!("--metering-interval must be at least 100ms");
        }
        Ok(Some(BillingConfig {
            settlement_period: self.settlement_period,
            metering_interval: self.metering_interval.min(self.settlement_period),
            escrow_grace: self.escrow_grace,
        }))
    }
}
