//! Ledger-pinned attestation policy against a real (simulated) enclave registration: lives in the
//! master because registering an enclave needs the master's enclave and registration modules.

use std::sync::Arc;

use daas_protocol::attested::{ledger_pins, merge_pins, AttestError};
use daas_tee::ExpectedPcrs;

use crate::enclave::{open_simulated, Measurement};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::{EmbeddedLedger, GenesisConfig};

fn ledger(dir: &std::path::Path) -> (Arc<EmbeddedLedger>, SuiKeypair) {
    let admin = SuiKeypair::generate();
    let mut g = GenesisConfig::new(admin.address());
    g.coins = vec![(admin.address(), 1_000_000_000_000)];
    (
        Arc::new(EmbeddedLedger::open(dir.join("ledger.redb"), &g).unwrap()),
        admin,
    )
}

async fn register(
    l: &Arc<EmbeddedLedger>,
    admin: &SuiKeypair,
    dir: &std::path::Path,
    m: Measurement,
) -> (crate::EnclaveHandle, crate::registration::Registration) {
    let e = open_simulated(dir, &m).unwrap();
    l.set_attestation_verifier(Arc::new(crate::registration::TeeVerifier {
        roots: vec![e.root.clone()],
    }));
    let reg = crate::registration::register(
        l.clone(),
        admin,
        &SuiKeypair::generate(),
        &e,
        &dir.join("enclave.json"),
    )
    .await
    .unwrap();
    (e, reg)
}

#[tokio::test]
async fn pins_come_from_the_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let (l, admin) = ledger(tmp.path());
    // Nothing registered: no pins, and without explicit ones the client refuses.
    assert!(ledger_pins(l.as_ref(), None).await.unwrap().is_none());
    assert!(matches!(
        merge_pins(&ExpectedPcrs::none(), None),
        Err(AttestError::Unpinned)
    ));
    let explicit = ExpectedPcrs::none().with(0, [7; 48]);
    assert_eq!(merge_pins(&explicit, None).unwrap(), explicit);

    let (e, reg) = register(&l, &admin, &tmp.path().join("a"), Measurement::Release).await;
    let pcr0 = e.enclave.measurement().get(0).unwrap().to_vec();
    // The master names its Enclave object: its config's PCRs and its key are required.
    let named = reg.enclave.id.to_string();
    let p = ledger_pins(l.as_ref(), Some(&named))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.config.pcr0, pcr0);
    assert_eq!(p.enclave.as_ref().unwrap().pk, e.enclave.public_key());
    let merged = merge_pins(&ExpectedPcrs::none(), Some(&p)).unwrap();
    assert_eq!(merged.0.len(), 3);
    assert_eq!(merged.0[&0].to_vec(), pcr0);
    // An explicit pin that contradicts the ledger is an error, not a silent override.
    let err = merge_pins(&explicit, Some(&p)).unwrap_err();
    assert!(
        matches!(err, AttestError::PinConflict { index: 0, .. }),
        "{err}"
    );
    // A master naming nothing is held to the deployment's current configuration.
    let p = ledger_pins(l.as_ref(), None).await.unwrap().unwrap();
    assert_eq!((p.config.id, p.enclave.is_none()), (reg.config.id, true));
    // Naming something that is not an Enclave (here: the config itself, or garbage) is refused.
    let err = ledger_pins(l.as_ref(), Some(&reg.config.id.to_string()))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AttestError::NoSuchEnclave(_)), "{err}");
    assert!(matches!(
        ledger_pins(l.as_ref(), Some("not-an-id")).await,
        Err(AttestError::NoSuchEnclave(_))
    ));

    // The admin registers a new measurement: the old enclave is no longer the current config's.
    let other = Measurement::Fixed([9; 48]);
    let (e2, reg2) = register(&l, &admin, &tmp.path().join("b"), other).await;
    assert_ne!(reg2.config.id, reg.config.id);
    let err = ledger_pins(l.as_ref(), Some(&named)).await.err().unwrap();
    assert!(matches!(err, AttestError::NotCurrentConfig { .. }), "{err}");
    let p = ledger_pins(l.as_ref(), None).await.unwrap().unwrap();
    assert_eq!(
        p.config.pcr0,
        e2.enclave.measurement().get(0).unwrap().to_vec()
    );
    assert_ne!(p.config.pcr0, pcr0);
}
