//! The staker host: stake → seal token → attested join → Node + Lease heartbeat → pods.
//!
//! - [`stake`]: the node stake and the seal token on the ledger;
//! - [`join`]: attestation of the master, the credential, the Kubernetes client, joining and
//!   leaving (drain and unstake);
//! - [`masters`]: the attested masters of the cluster and the Kubernetes client that fails over
//!   between them;
//! - [`node`]: the Node object (status, registration) and the Lease heartbeat;
//! - [`pods`]: the pod sync loop, each pod driven through an explicit [`pods::PodState`].

pub mod hollow;
pub mod join;
pub mod masters;
pub mod node;
pub mod pods;
pub mod stake;

pub use join::{drain_and_unstake, join, CniSetup, Joined};
pub(crate) use node::mem_total_bytes;
pub use stake::{ensure_seal_token, ensure_stake, ROLE_NODE};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("ledger: {0}")]
    Wallet(#[from] daas_ledger::wallet::WalletError),
    #[error("ledger: {0}")]
    Ledger(#[from] daas_ledger::LedgerError),
    #[error("attestation of the master failed, refusing to send credentials: {0}")]
    Attestation(#[from] daas_protocol::attested::AttestError),
    #[error("masters: {0}")]
    Masters(#[from] masters::MastersError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("runtime: {0}")]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("agent files: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("credential: {0}")]
    Credential(#[from] daas_ledger::credential::CredentialError),
    #[error("{0}")]
    Other(String),
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
