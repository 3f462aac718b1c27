//! Slashing: when the node lifecycle controller declares a node dead, the master finds the stake
//! that holds the node's name on the ledger (`staking::node_owner`, not whoever last
//! authenticated as the node), signs a slash report for exactly that stake (node address, node
//! id, stake generation, and the record's slash count as a single-use nonce) with its enclave key
//! (Nautilus IntentMessage, intent 1) and submits `staking::slash`, which checks the signature
//! against the registered enclave and refuses stale or replayed reports. The node's stake is cut,
//! its seal token stops validating, and cached validations are dropped at once.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use daas_controllers::nodelifecycle::{NodeFailureError, NodeFailureHandler};
use daas_ledger::wallet::Wallet;
use daas_ledger::{contract, tx};
use serde_json::Value;

use crate::auth::SealTokenAuthenticator;
use crate::enclave::EnclaveHandle;
use crate::metrics::Metrics;
use crate::registration::Registration;

/// Why a dead node could not be slashed.
#[derive(Debug, thiserror::Error)]
pub enum SlashError {
    #[error("node object has no metadata.name")]
    NoName,
    #[error("no stake holds node id {0:?} on the ledger")]
    NoStake(String),
    #[error("the enclave is not registered on the ledger yet")]
    NotRegistered,
    #[error("ledger: {0}")]
    Ledger(#[from] daas_ledger::LedgerError),
    #[error("ledger: {0}")]
    Wallet(#[from] daas_ledger::wallet::WalletError),
}

pub struct Slasher {
    pub wallet: Wallet,
    pub enclave: EnclaveHandle,
    pub tokens: Arc<SealTokenAuthenticator>,
    pub metrics: Arc<Metrics>,
    registration: Mutex<Option<Registration>>,
}

impl Slasher {
    pub fn new(
        wallet: Wallet,
        enclave: EnclaveHandle,
        tokens: Arc<SealTokenAuthenticator>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Slasher {
            wallet,
            enclave,
            tokens,
            metrics,
            registration: Mutex::new(None),
        }
    }

    /// Where the enclave is registered on the ledger (known after registration).
    pub fn set_registration(&self, r: Registration) {
        if let Ok(mut g) = self.registration.lock() {
            *g = Some(r);
        }
    }

    /// Slash the stake holding node id `name` for `reason`; returns the stake's address.
    pub async fn slash_node(
        &self,
        name: &str,
        reason: &str,
    ) -> Result<sui_sdk_types::Address, SlashError> {
        if name.is_empty() {
            return Err(SlashError::NoName);
        }
        let reg = self
            .registration
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(SlashError::NotRegistered)?;
        let (owner, record) = self
            .wallet
            .ledger
            .node_stake(name)
            .await?
            .ok_or_else(|| SlashError::NoStake(name.to_string()))?;
        let epoch = self.wallet.ledger.epoch().await?;
        let ts = crate::now_ms();
        let report = contract::SlashReport::for_record(owner, &record, reason, epoch);
        let sig = self
            .enclave
            .enclave
            .sign(&contract::slash_report_message(&report, ts));
        let eff = self
            .wallet
            .execute(|ctx, d| tx::slash(ctx, d, &reg.config, &reg.enclave, &report, ts, &sig))
            .await?;
        self.tokens.invalidate_all();
        self.metrics.inc(
            "daas_slashing_events_total",
            "Slashing reports accepted by the ledger.",
            &[("node", name)],
            1.0,
        );
        tracing::warn!(node = name, %owner, generation = record.generation, tx = %eff.digest, reason, "node slashed");
        Ok(owner)
    }
}

impl From<SlashError> for NodeFailureError {
    fn from(e: SlashError) -> Self {
        match e {
            SlashError::NoName => NodeFailureError::NoName,
            SlashError::NoStake(node) => NodeFailureError::NotStaked { node },
            e => NodeFailureError::Backend(Box::new(e)),
        }
    }
}

#[async_trait]
impl NodeFailureHandler for Slasher {
    async fn node_failed(&self, node: &Value, reason: &str) -> Result<(), NodeFailureError> {
        let name = node["metadata"]["name"].as_str().unwrap_or("");
        self.slash_node(name, reason).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_errors_map_to_typed_failures() {
        assert!(matches!(
            NodeFailureError::from(SlashError::NoStake("n".into())),
            NodeFailureError::NotStaked { node } if node == "n"
        ));
        assert!(!NodeFailureError::from(SlashError::NoName).retry());
        // Not registered yet: retried on a later pass, not dropped.
        let e = NodeFailureError::from(SlashError::NotRegistered);
        assert!(e.retry());
        assert!(e.to_string().contains("not registered"), "{e}");
    }
}
