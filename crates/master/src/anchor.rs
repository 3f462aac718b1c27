//! Rollback detection for the sealed store (the design's warm tier).
//!
//! Sealing keeps the host operator from reading or forging `state.redb`, not from putting back an
//! older copy of it. The master therefore anchors the store's revision on the ledger — which the
//! host cannot roll back — on the cluster's `EnclaveConfig` (`enclave::anchor_state`, signed with
//! the enclave key), and at start-up refuses a store whose revision is below the anchored one
//! ([`crate::MasterError::RolledBack`]), before it bootstraps, runs controllers or serves.
//!
//! The cluster's config is the ledger's `EnclaveConfig` whose PCRs are this enclave's
//! measurement: the deployment's config (see [`cluster_config`]); registration
//! ([`crate::registration::register`]) prefers the same one, so anchors and checks agree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daas_ledger::contract::EnclaveConfig;
use daas_ledger::wallet::Wallet;
use daas_ledger::{contract, tx, Ledger};
use daas_store::Store;
use tokio::sync::Notify;

use crate::enclave::EnclaveHandle;
use crate::metrics::Metrics;
use crate::registration::Registration;

pub const ANCHORS_TOTAL: &str = "daas_state_anchors_total";
pub const ANCHORED_REVISION: &str = "daas_state_anchored_revision";

#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("ledger: {0}")]
    Ledger(#[from] daas_ledger::LedgerError),
    #[error("ledger: {0}")]
    Wallet(#[from] daas_ledger::wallet::WalletError),
    #[error("state store: {0}")]
    Store(#[from] daas_store::StoreError),
    #[error("the enclave is not registered on the ledger yet")]
    NotRegistered,
    #[error("store revision {0} is negative")]
    NegativeRevision(i64),
}

/// The ledger's `EnclaveConfig` for this enclave: the deployment's config if its PCRs are this
/// enclave's measurement (`None` when there is no such config yet, e.g. on first start).
pub async fn cluster_config(
    ledger: &dyn Ledger,
    enclave: &EnclaveHandle,
) -> Result<Option<EnclaveConfig>, AnchorError> {
    let Some(config) = ledger.deployment().await?.enclave_config else {
        return Ok(None);
    };
    let Some(c) = ledger.enclave_config(config.id).await? else {
        return Ok(None);
    };
    Ok(pcrs_match(&c, enclave).then_some(c))
}

/// True iff the config pins this enclave's PCR0..2.
pub fn pcrs_match(c: &EnclaveConfig, enclave: &EnclaveHandle) -> bool {
    let m = enclave.enclave.measurement();
    [&c.pcr0, &c.pcr1, &c.pcr2]
        .iter()
        .enumerate()
        .all(|(i, p)| m.get(i as u16).is_some_and(|v| v == p.as_slice()))
}

/// The revision anchored for this enclave's cluster (0 if none).
pub async fn anchored_revision(
    ledger: &dyn Ledger,
    enclave: &EnclaveHandle,
) -> Result<u64, AnchorError> {
    Ok(cluster_config(ledger, enclave)
        .await?
        .map_or(0, |c| c.anchored_revision))
}

/// Refuses a store whose revision is below the anchored one.
pub fn check_revision(store: i64, anchored: u64) -> Result<(), crate::MasterError> {
    if store < 0 || (store as u64) < anchored {
        return Err(crate::MasterError::RolledBack { store, anchored });
    }
    Ok(())
}

/// Anchors the store revision on the ledger whenever it changed.
pub struct Anchorer {
    wallet: Wallet,
    enclave: EnclaveHandle,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    registration: Mutex<Option<Registration>>,
    registered: Notify,
    /// Last revision known to be anchored on the ledger.
    last: AtomicU64,
    /// Serializes anchoring (periodic and shutdown) so that no two submissions race on gas.
    submit: tokio::sync::Mutex<()>,
}

impl Anchorer {
    /// `anchored` is the revision read from the ledger at start-up.
    pub fn new(
        wallet: Wallet,
        enclave: EnclaveHandle,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        anchored: u64,
    ) -> Self {
        metrics.set_gauge(
            ANCHORED_REVISION,
            "Store revision last anchored on the ledger.",
            anchored as f64,
        );
        Anchorer {
            wallet,
            enclave,
            store,
            metrics,
            registration: Mutex::new(None),
            registered: Notify::new(),
            last: AtomicU64::new(anchored),
            submit: tokio::sync::Mutex::new(()),
        }
    }

    /// Where the enclave is registered; anchoring starts once this is known.
    pub fn set_registration(&self, r: Registration) {
        if let Ok(mut g) = self.registration.lock() {
            *g = Some(r);
        }
        self.registered.notify_one();
    }

    fn registration(&self) -> Option<Registration> {
        self.registration.lock().ok().and_then(|g| g.clone())
    }

    /// Last revision known to be anchored.
    pub fn last_anchored(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }

    /// Anchors the current store revision if it is above the last anchored one; returns the
    /// revision anchored by this call.
    pub async fn anchor_now(&self) -> Result<Option<u64>, AnchorError> {
        let _guard = self.submit.lock().await;
        let reg = self.registration().ok_or(AnchorError::NotRegistered)?;
        let current = self.store.current_revision().await?;
        let revision =
            u64::try_from(current).map_err(|_| AnchorError::NegativeRevision(current))?;
        if revision <= self.last_anchored() {
            return Ok(None);
        }
        let ts = crate::now_ms();
        let sig =
            self.enclave
                .enclave
                .sign(&contract::state_anchor_message(reg.config.id, revision, ts));
        let eff = self
            .wallet
            .execute(|ctx, d| {
                tx::anchor_state(ctx, d, &reg.config, &reg.enclave, revision, ts, &sig)
            })
            .await?;
        self.last.fetch_max(revision, Ordering::SeqCst);
        self.metrics.inc(
            ANCHORS_TOTAL,
            "Store revisions anchored on the ledger.",
            &[],
            1.0,
        );
        self.metrics.set_gauge(
            ANCHORED_REVISION,
            "Store revision last anchored on the ledger.",
            revision as f64,
        );
        tracing::debug!(revision, tx = %eff.digest, "store revision anchored on the ledger");
        Ok(Some(revision))
    }

    /// Waits for the registration, then anchors every `interval` whenever the revision changed.
    pub fn spawn(self: Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            while self.registration().is_none() {
                self.registered.notified().await;
            }
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.anchor_now().await {
                    tracing::warn!(error = %e, "anchoring the store revision failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_ledger::keys::SuiKeypair;
    use daas_ledger::{EmbeddedLedger, GenesisConfig};
    use daas_store::{EmbeddedStore, SealingKey};

    #[test]
    fn revision_check() {
        assert!(check_revision(10, 10).is_ok());
        assert!(check_revision(11, 10).is_ok());
        assert!(check_revision(0, 0).is_ok());
        let e = check_revision(9, 10).unwrap_err();
        assert!(matches!(
            e,
            crate::MasterError::RolledBack {
                store: 9,
                anchored: 10
            }
        ));
        let msg = e.to_string();
        assert!(
            msg.contains("revision 9") && msg.contains("revision 10"),
            "{msg}"
        );
        assert!(check_revision(-1, 0).is_err());
    }

    /// A real embedded ledger and store; the enclave registered through `registration::register`.
    #[tokio::test]
    async fn anchors_only_increasing_revisions_and_the_ledger_refuses_rollbacks() {
        let dir = tempfile::tempdir().unwrap();
        let admin = SuiKeypair::generate();
        let master_key = SuiKeypair::generate();
        let mut g = GenesisConfig::new(admin.address());
        g.coins = vec![(admin.address(), 1_000_000_000_000)];
        let ledger = EmbeddedLedger::in_memory(&g).unwrap();
        let enclave =
            crate::enclave::open_simulated(&dir.path().join("tee"), &crate::Measurement::Release)
                .unwrap();
        ledger.set_attestation_verifier(Arc::new(crate::registration::TeeVerifier {
            roots: vec![enclave.root.clone()],
        }));
        let l: Arc<dyn Ledger> = Arc::new(ledger.clone());
        assert_eq!(anchored_revision(l.as_ref(), &enclave).await.unwrap(), 0);
        let reg = crate::registration::register(
            l.clone(),
            &admin,
            &master_key,
            &enclave,
            &dir.path().join("enclave.json"),
        )
        .await
        .unwrap();
        let key = SealingKey::from_bytes(enclave.enclave.sealing_key());
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("state.redb"), key).unwrap());
        let metrics = Arc::new(Metrics::new());
        let a = Anchorer::new(
            Wallet::new(l.clone(), master_key.clone()),
            enclave.clone(),
            store.clone(),
            metrics.clone(),
            0,
        );
        assert!(matches!(
            a.anchor_now().await,
            Err(AnchorError::NotRegistered)
        ));
        a.set_registration(reg.clone());
        // an empty store (revision 0) has nothing to anchor
        assert_eq!(a.anchor_now().await.unwrap(), None);
        for i in 0..3 {
            store
                .create(&format!("/registry/configmaps/default/c{i}"), b"x")
                .await
                .unwrap();
        }
        let rev = store.current_revision().await.unwrap() as u64;
        assert_eq!(a.anchor_now().await.unwrap(), Some(rev));
        assert_eq!(
            a.anchor_now().await.unwrap(),
            None,
            "unchanged revision: no transaction"
        );
        assert_eq!(anchored_revision(l.as_ref(), &enclave).await.unwrap(), rev);
        let text = metrics.render(&[]);
        assert!(text.contains(&format!("{ANCHORS_TOTAL} 1")), "{text}");
        assert!(
            text.contains(&format!("{ANCHORED_REVISION} {rev}")),
            "{text}"
        );
        // a start-up on this store passes, one on an older store is refused
        assert!(check_revision(rev as i64, rev).is_ok());
        assert!(check_revision(rev as i64 - 1, rev).is_err());
        // the ledger itself refuses an anchor below the anchored revision, even enclave-signed
        let sig = enclave
            .enclave
            .sign(&contract::state_anchor_message(reg.config.id, rev - 1, 5));
        let w = Wallet::new(l.clone(), master_key.clone());
        let err = w
            .execute(|ctx, d| tx::anchor_state(ctx, d, &reg.config, &reg.enclave, rev - 1, 5, &sig))
            .await
            .unwrap_err();
        assert_eq!(err.abort(), Some(("enclave".to_string(), 205)));
        // and an anchor signed by another key
        let forged = [7u8; 64];
        let err = w
            .execute(|ctx, d| {
                tx::anchor_state(ctx, d, &reg.config, &reg.enclave, rev + 10, 5, &forged)
            })
            .await
            .unwrap_err();
        assert_eq!(err.abort(), Some(("enclave".to_string(), 204)));
        assert_eq!(anchored_revision(l.as_ref(), &enclave).await.unwrap(), rev);
    }
}
