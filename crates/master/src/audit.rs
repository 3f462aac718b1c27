//! The master's audit log: the API server's [`daas_apiserver::audit`] with checkpoints signed by
//! this master's enclave key.

use std::sync::Arc;

use daas_apiserver::audit::chain::CheckpointSigner;
use daas_apiserver::audit::writer::{AuditLog, AuditLogConfig};
pub use daas_apiserver::audit::{Auditor, Policy};
use daas_tee::Enclave;

pub use daas_apiserver::audit::{chain, writer};

/// `--audit-log-path`, `--audit-policy-file`, ... as the caller resolved them.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub log: AuditLogConfig,
    pub policy: Policy,
}

/// Checkpoints signed by the enclave's key (`Enclave::sign` of the intent message).
pub struct EnclaveSigner(pub Arc<dyn Enclave>);

impl CheckpointSigner for EnclaveSigner {
    fn public_key(&self) -> [u8; 32] {
        self.0.public_key()
    }
    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg)
    }
}

/// Open the log (writing its start checkpoint) and build the API server's auditor.
pub fn start(
    cfg: &AuditConfig,
    enclave: Arc<dyn Enclave>,
) -> Result<(Arc<Auditor>, Arc<AuditLog>), crate::MasterError> {
    let log = Arc::new(
        AuditLog::open(cfg.log.clone(), Arc::new(EnclaveSigner(enclave)))
            .map_err(|e| crate::MasterError::Config(e.to_string()))?,
    );
    let auditor = Arc::new(Auditor::new(cfg.policy.clone(), log.clone()));
    Ok((auditor, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_message_is_the_tee_intent_message() {
        let chain = [9u8; 32];
        let msg = daas_apiserver::audit::chain::checkpoint_message(&chain, 5, 1234);
        let mut data = vec![24u8];
        data.extend_from_slice(b"daas-audit-checkpoint-v1");
        data.push(32);
        data.extend_from_slice(&chain);
        data.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(
            msg,
            daas_tee::intent_message_bcs(
                daas_apiserver::audit::chain::CHECKPOINT_INTENT,
                1234,
                &data
            )
        );
    }

    #[tokio::test]
    async fn enclave_signed_log_verifies_with_the_enclave_key() {
        let dir = tempfile::tempdir().unwrap();
        let enclave =
            crate::enclave::open_simulated(&dir.path().join("tee"), &crate::Measurement::Release)
                .unwrap();
        let path = dir.path().join("audit.log");
        let cfg = AuditConfig {
            log: AuditLogConfig::new(&path),
            policy: Policy::default_policy(),
        };
        let (_auditor, log) = start(&cfg, enclave.enclave.clone()).unwrap();
        log.close().await;
        let data = std::fs::read(&path).unwrap();
        let r = daas_apiserver::audit::chain::verify_files(
            &[("audit.log".into(), data)],
            &[enclave.enclave.public_key()],
        )
        .unwrap();
        assert_eq!((r.events, r.checkpoints), (0, 2));
    }
}
