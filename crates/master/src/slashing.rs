//! Slashing: when the node lifecycle controller declares a node dead, the master signs a slash
//! report with its enclave key (Nautilus IntentMessage, intent 1) and submits `staking::slash` to
//! the ledger, which checks the signature against the registered enclave. The node's stake is cut,
//! its seal token stops validating, and cached validations are dropped at once.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use daas_controllers::nodelifecycle::NodeFailureHandler;
use daas_ledger::wallet::Wallet;
use daas_ledger::{contract, tx};
use serde_json::Value;

use crate::auth::SealTokenAuthenticator;
use crate::enclave::EnclaveHandle;
use crate::metrics::Metrics;
use crate::registration::Registration;

pub struct Slasher {
    pub wallet: Wallet,
    pub enclave: EnclaveHandle,
    pub tokens: Arc<SealTokenAuthenticator>,
    pub metrics: Arc<Metrics>,
    registration: Mutex<Option<Registration>>,
}

impl Slasher {
    pub fn new(wallet: Wallet, enclave: EnclaveHandle, tokens: Arc<SealTokenAuthenticator>, metrics: Arc<Metrics>) -> Self {
        Slasher { wallet, enclave, tokens, metrics, registration: Mutex::new(None) }
    }

    /// Where the enclave is registered on the ledger (known after registration).
    pub fn set_registration(&self, r: Registration) {
        if let Ok(mut g) = self.registration.lock() {
            *g = Some(r);
        }
    }
}

#[async_trait]
impl NodeFailureHandler for Slasher {
    async fn node_failed(&self, node: &Value, reason: &str) -> Result<(), String> {
        let name = node["metadata"]["name"].as_str().unwrap_or("");
        let owner = self
            .tokens
            .node_owner(name)
            .ok_or_else(|| format!("node {name} has not authenticated with a seal token since this master started"))?;
        let reg = self
            .registration
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .ok_or_else(|| "the enclave is not registered on the ledger yet".to_string())?;
        let epoch = self.wallet.ledger.epoch().await.map_err(|e| e.to_string())?;
        let ts = crate::now_ms();
        let msg = contract::slash_report_message(owner, reason, ts, epoch);
        let sig = self.enclave.enclave.sign(&msg);
        let eff = self
            .wallet
            .execute(|ctx, d| tx::slash(ctx, d, &reg.config, &reg.enclave, &owner, reason, ts, &sig))
            .await
            .map_err(|e| e.to_string())?;
        self.tokens.invalidate_all();
        self.metrics.inc("daas_slashing_events_total", "Slashing reports accepted by the ledger.", &[("node", name)], 1.0);
        tracing::warn!(node = name, %owner, tx = %eff.digest, reason, "node slashed");
        Ok(())
    }
}
