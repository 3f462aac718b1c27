use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use daas_tee::{
    verify_attestation, verify_enclave_signature, AttestationError, Enclave, ExpectedPcrs,
    RootCert, SimulatedEnclave, TeeError, DEV_ROOT_CERT_FILE, DEV_ROOT_KEY_FILE, SEALED_KEY_FILE,
};

const M1: [u8; 48] = [0x11; 48];
const M2: [u8; 48] = [0x22; 48];

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[test]
fn document_verifies_against_dev_root_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimulatedEnclave::open_with_measurement(dir.path(), M1).expect("open");
    let doc = sim
        .attestation(Some(b"tls-key-hash"), Some(b"nonce-123"))
        .expect("attestation");
    assert_eq!(doc[0], 0x84, "untagged COSE_Sign1 array like the NSM");

    let expected = sim.measurement().expect(&[0, 1, 2]);
    let v = verify_attestation(&doc, &[sim.dev_root()], now_ms(), &expected).expect("verifies");
    assert_eq!(v.public_key.as_deref(), Some(&sim.public_key()[..]));
    assert_eq!(v.user_data.as_deref(), Some(&b"tls-key-hash"[..]));
    assert_eq!(v.nonce.as_deref(), Some(&b"nonce-123"[..]));
    assert_eq!(v.module_id, sim.module_id());
    assert_eq!(v.pcrs, sim.measurement());
    assert_eq!(v.pcrs, SimulatedEnclave::pcrs_for_measurement(&M1));
    assert!(v.timestamp <= now_ms() && v.timestamp + 60_000 > now_ms());

    // Never trusted through the AWS root.
    assert_eq!(
        verify_attestation(&doc, &[RootCert::aws_nitro()], now_ms(), &expected),
        Err(AttestationError::UntrustedRoot)
    );
    // Both roots pinned: the dev one anchors it.
    verify_attestation(
        &doc,
        &[RootCert::aws_nitro(), sim.dev_root()],
        now_ms(),
        &expected,
    )
    .expect("verifies with both roots pinned");

    // Without user data / nonce.
    let doc = sim.attestation(None, None).expect("attestation");
    let v = verify_attestation(&doc, &[sim.dev_root()], now_ms(), &expected).expect("verifies");
    assert_eq!((v.user_data, v.nonce), (None, None));

    // Leaf lasts 3 hours.
    assert!(matches!(
        verify_attestation(&doc, &[sim.dev_root()], now_ms() + 4 * 3600 * 1000, &expected),
        Err(AttestationError::CertificateExpired { cert, .. }) if cert == "certificate"
    ));
    // Another measurement's PCRs do not match.
    let other = SimulatedEnclave::pcrs_for_measurement(&M2).expect(&[0]);
    assert!(matches!(
        verify_attestation(&doc, &[sim.dev_root()], now_ms(), &other),
        Err(AttestationError::PcrMismatch { index: 0, .. })
    ));
}

#[test]
fn tampered_simulated_document_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimulatedEnclave::open_with_measurement(dir.path(), M1).expect("open");
    let doc = sim.attestation(Some(b"abc"), None).expect("attestation");
    let at = doc.windows(3).position(|w| w == b"abc").expect("user data");
    let mut bad = doc.clone();
    bad[at] ^= 1;
    assert_eq!(
        verify_attestation(&bad, &[sim.dev_root()], now_ms(), &ExpectedPcrs::none()),
        Err(AttestationError::DocumentSignatureInvalid)
    );
}

#[test]
fn another_dev_root_is_not_trusted() {
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let a = SimulatedEnclave::open_with_measurement(d1.path(), M1).expect("open");
    let b = SimulatedEnclave::open_with_measurement(d2.path(), M1).expect("open");
    assert_ne!(a.dev_root(), b.dev_root());
    let doc = a.attestation(None, None).expect("attestation");
    assert_eq!(
        verify_attestation(&doc, &[b.dev_root()], now_ms(), &ExpectedPcrs::none()),
        Err(AttestationError::UntrustedRoot)
    );
}

#[test]
fn sealing_key_is_stable_for_same_measurement_and_refused_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = SimulatedEnclave::open_with_measurement(dir.path(), M1).expect("open");
    let key = first.sealing_key();
    let root = first.dev_root();
    let pk = first.public_key();
    drop(first);
    assert!(dir.path().join(SEALED_KEY_FILE).exists());
    assert!(dir.path().join(DEV_ROOT_CERT_FILE).exists());
    assert!(dir.path().join(DEV_ROOT_KEY_FILE).exists());

    let again = SimulatedEnclave::open_with_measurement(dir.path(), M1).expect("reopen");
    assert_eq!(again.sealing_key(), key);
    assert_eq!(again.dev_root(), root, "dev root persisted");
    assert_ne!(again.public_key(), pk, "identity key is ephemeral");
    // Documents of the restarted enclave still chain to the persisted root.
    let doc = again.attestation(None, None).expect("attestation");
    verify_attestation(
        &doc,
        std::slice::from_ref(&root),
        now_ms(),
        &again.measurement().expect(&[0, 1, 2]),
    )
    .expect("verifies after restart");
    drop(again);

    match SimulatedEnclave::open_with_measurement(dir.path(), M2) {
        Err(TeeError::Unseal { .. }) => {}
        other => panic!("expected Unseal, got {other:?}"),
    }
    // The refused attempt did not overwrite anything.
    let again = SimulatedEnclave::open_with_measurement(dir.path(), M1).expect("reopen");
    assert_eq!(again.sealing_key(), key);

    // A corrupted sealed file is refused too.
    let path = dir.path().join(SEALED_KEY_FILE);
    let mut data = std::fs::read(&path).expect("read");
    let n = data.len();
    data[n - 1] ^= 1;
    std::fs::write(&path, &data).expect("write");
    assert!(matches!(
        SimulatedEnclave::open_with_measurement(dir.path(), M1),
        Err(TeeError::Unseal { .. })
    ));
    std::fs::write(&path, b"short").expect("write");
    assert!(matches!(
        SimulatedEnclave::open_with_measurement(dir.path(), M1),
        Err(TeeError::SealedFileFormat { .. })
    ));
}

#[test]
fn different_dirs_have_different_sealing_keys() {
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let a = SimulatedEnclave::open_with_measurement(d1.path(), M1).expect("open");
    let b = SimulatedEnclave::open_with_measurement(d2.path(), M1).expect("open");
    assert_ne!(a.sealing_key(), b.sealing_key());
}

#[test]
fn half_missing_dev_root_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(SimulatedEnclave::open_with_measurement(dir.path(), M1).expect("open"));
    std::fs::remove_file(dir.path().join(DEV_ROOT_KEY_FILE)).expect("rm");
    assert!(matches!(
        SimulatedEnclave::open_with_measurement(dir.path(), M1),
        Err(TeeError::Certificate(_))
    ));
}

#[test]
fn signatures_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim: Arc<dyn Enclave> =
        Arc::new(SimulatedEnclave::open_with_measurement(dir.path(), M1).expect("open"));
    let sig = sim.sign(b"hello");
    assert!(verify_enclave_signature(&sim.public_key(), b"hello", &sig));
    assert!(!verify_enclave_signature(&sim.public_key(), b"hellO", &sig));
    assert!(matches!(
        sim.attestation(Some(&[0u8; 513]), None),
        Err(TeeError::InvalidRequest(_))
    ));
    assert!(matches!(
        sim.attestation(None, Some(&[0u8; 513])),
        Err(TeeError::InvalidRequest(_))
    ));
    sim.attestation(Some(&[0u8; 512]), Some(&[0u8; 512]))
        .expect("max sizes");
}

#[test]
fn default_measurement_is_the_running_executable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimulatedEnclave::open(dir.path()).expect("open");
    let m = SimulatedEnclave::current_exe_measurement().expect("measure");
    assert_eq!(sim.image_measurement(), m);
    assert_eq!(
        sim.measurement(),
        SimulatedEnclave::pcrs_for_measurement(&m)
    );
    assert_ne!(
        sim.measurement().get(0),
        SimulatedEnclave::pcrs_for_measurement(&M1).get(0)
    );
}

#[test]
fn enclaves_sharing_a_dev_root_dir_verify_against_one_root() {
    let platform = tempfile::tempdir().expect("tempdir");
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let a = SimulatedEnclave::open_with_root(a_dir.path(), M1, platform.path()).expect("open a");
    let b = SimulatedEnclave::open_with_root(b_dir.path(), M1, platform.path()).expect("open b");
    // The root lives in the platform directory only, and is the same for both.
    assert!(platform.path().join(DEV_ROOT_CERT_FILE).exists());
    assert!(platform.path().join(DEV_ROOT_KEY_FILE).exists());
    assert!(!a_dir.path().join(DEV_ROOT_KEY_FILE).exists());
    assert_eq!(a.dev_root(), b.dev_root());
    assert_eq!(a.dev_root_path(), platform.path().join(DEV_ROOT_CERT_FILE));
    let expected = a.measurement().expect(&[0, 1, 2]);
    let doc = b.attestation(None, Some(b"n")).expect("attestation");
    verify_attestation(&doc, &[a.dev_root()], now_ms(), &expected)
        .expect("b verifies under a's root");
    // Each enclave keeps its own sealing key.
    assert_ne!(a.sealing_key(), b.sealing_key());
    // An enclave with its own root (another "platform") does not verify under the shared one.
    let c_dir = tempfile::tempdir().expect("tempdir");
    let c = SimulatedEnclave::open_with_measurement(c_dir.path(), M1).expect("open c");
    let doc = c.attestation(None, None).expect("attestation");
    assert_eq!(
        verify_attestation(&doc, &[a.dev_root()], now_ms(), &expected),
        Err(AttestationError::UntrustedRoot)
    );
}
