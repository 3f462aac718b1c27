//! Registering the master's enclave on the ledger, so that statements it signs with its enclave
//! key (slashing reports) are accepted on chain. The ledger verifies the attestation document
//! itself (`register_enclave_raw`), with the roots it is configured to trust.

use std::path::Path;
use std::sync::Arc;

use daas_ledger::contract::{AttestationVerifier, AttestedEnclave};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::tx::{self, SharedRef};
use daas_ledger::wallet::{created_shared, Wallet};
use daas_ledger::Ledger;
use daas_tee::{verify_attestation, ExpectedPcrs, RootCert};
use serde::{Deserialize, Serialize};

use crate::enclave::EnclaveHandle;

/// The embedded ledger's attestation check: Nitro verification against pinned roots.
pub struct TeeVerifier {
    pub roots: Vec<RootCert>,
}

impl AttestationVerifier for TeeVerifier {
    fn verify(&self, document: &[u8], now_ms: u64) -> Result<AttestedEnclave, String> {
        let v = verify_attestation(document, &self.roots, now_ms, &ExpectedPcrs::none())
            .map_err(|e| e.to_string())?;
        let pcr = |i: u16| {
            v.pcrs
                .get(i)
                .map(|p| p.to_vec())
                .ok_or_else(|| format!("PCR{i} missing"))
        };
        Ok(AttestedEnclave {
            pcr0: pcr(0)?,
            pcr1: pcr(1)?,
            pcr2: pcr(2)?,
            public_key: v.public_key.clone().unwrap_or_default(),
            platform: daas_ledger::contract::PLATFORM_NITRO,
        })
    }

    /// SEV-SNP / TDX evidence ([`daas_tee::Evidence::encode`]) against the pinned AMD / Intel
    /// roots, registers mapped onto pcr0..2 as SPEC.md says.
    fn verify_platform(
        &self,
        platform: u8,
        evidence: &[u8],
        now_ms: u64,
    ) -> Result<AttestedEnclave, String> {
        crate::platform_registration::verify_platform(self, platform, evidence, now_ms)
    }
}

/// Where the enclave is registered (persisted next to the ledger key of the master).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub config: SharedRef,
    pub config_pcrs: [String; 3],
    pub enclave: SharedRef,
    pub enclave_public_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("ledger: {0}")]
    Wallet(#[from] daas_ledger::wallet::WalletError),
    #[error("ledger: {0}")]
    Ledger(#[from] daas_ledger::LedgerError),
    #[error("enclave: {0}")]
    Tee(#[from] daas_tee::TeeError),
    #[error("{0}")]
    Other(String),
}

fn pcr_hex(e: &EnclaveHandle) -> [String; 3] {
    let m = e.enclave.measurement();
    [0u16, 1, 2].map(|i| m.get(i).map(hex::encode).unwrap_or_default())
}

/// Make sure an EnclaveConfig with this enclave's PCRs exists (created by `admin`, the AdminCap
/// holder) and register this enclave's current key under it, signed by `master_key`.
pub async fn register(
    ledger: Arc<dyn Ledger>,
    admin: &SuiKeypair,
    master_key: &SuiKeypair,
    enclave: &EnclaveHandle,
    state_file: &Path,
) -> Result<Registration, RegistrationError> {
    let pcrs = pcr_hex(enclave);
    let previous: Option<Registration> = std::fs::read(state_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let admin_w = Wallet::new(ledger.clone(), admin.clone());
    let master_w = Wallet::new(ledger.clone(), master_key.clone());
    if ledger.gas_coins(master_key.address()).await?.is_empty() {
        let addr = master_key.address();
        match ledger.faucet(addr, 10_000_000_000).await {
            Ok(_) => {}
            Err(daas_ledger::LedgerError::Unsupported(_)) => {
                admin_w
                    .execute(|ctx, _| tx::transfer_sui(ctx, &addr, 10_000_000_000))
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The cluster's config: the ledger's (the one state anchors are checked against, see
    // `anchor::cluster_config`) when it pins this enclave's PCRs, else the one registered before.
    let on_ledger = match crate::anchor::cluster_config(ledger.as_ref(), enclave).await {
        Ok(c) => c,
        Err(crate::anchor::AnchorError::Ledger(e)) => return Err(e.into()),
        Err(e) => return Err(RegistrationError::Other(e.to_string())),
    };
    let deployed = match on_ledger {
        Some(c) => ledger
            .deployment()
            .await?
            .enclave_config
            .filter(|r| r.id == c.id),
        None => None,
    };
    let config = match deployed.or_else(|| {
        previous
            .as_ref()
            .filter(|p| p.config_pcrs == pcrs)
            .map(|p| p.config)
    }) {
        Some(c) => c,
        None => {
            let bytes: Vec<Vec<u8>> = pcrs
                .iter()
                .map(|h| hex::decode(h).unwrap_or_default())
                .collect();
            let eff = admin_w
                .execute(|ctx, d| {
                    tx::create_enclave_config(
                        ctx,
                        d,
                        "k3s-daas-master",
                        &bytes[0],
                        &bytes[1],
                        &bytes[2],
                    )
                })
                .await?;
            created_shared(&eff)
                .ok_or_else(|| RegistrationError::Other("no EnclaveConfig was created".into()))?
        }
    };
    let enclave_arc = enclave.enclave.clone();
    let doc = tokio::task::spawn_blocking(move || enclave_arc.attestation(None, None))
        .await
        .map_err(|e| RegistrationError::Other(e.to_string()))??;
    let eff = master_w
        .execute(|ctx, d| {
            let mut d = d.clone();
            d.enclave_config = Some(config);
            tx::register_enclave_raw(ctx, &d, &doc)
        })
        .await?;
    let enclave_ref = created_shared(&eff)
        .ok_or_else(|| RegistrationError::Other("no Enclave object was created".into()))?;
    let reg = Registration {
        config,
        config_pcrs: pcrs,
        enclave: enclave_ref,
        enclave_public_key: hex::encode(enclave.enclave.public_key()),
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&reg) {
        let _ = std::fs::write(state_file, bytes);
    }
    tracing::info!(enclave = %reg.enclave.id, config = %reg.config.id, "enclave registered on the ledger");
    Ok(reg)
}
