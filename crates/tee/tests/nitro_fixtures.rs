//! Real AWS Nitro attestation documents (see testdata/README.md for their origin and times).

use std::mem::discriminant;

use daas_tee::{
    intent_message_bcs, verify_attestation, verify_enclave_signature, AttestationError,
    ExpectedPcrs, RootCert, SimulatedEnclave, AWS_NITRO_ROOT_SHA256,
};

/// Clock time at which the nautilus sample verifies (Sui Move test_weather_flow).
const NAUTILUS_NOW_MS: u64 = 1_744_684_007_462;
/// Time of the nitro_attest 0.2.0 fixture.
const CRATE_NOW_MS: u64 = 1_736_179_625_000;

const NAUTILUS_PCR0: &str = "cbe1afb6ed0ff89f10295af0b802247ec5670da8f886e71a4226373b032c322f4e42c9c98288e7211682b258684505a2";
const NAUTILUS_PCR1: &str = NAUTILUS_PCR0;
const NAUTILUS_PCR2: &str = "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a";
const NAUTILUS_PK: &str = "e8e62201dbe293b703c759f653107acbc2c911fa1d2e66f2c747bec95971a2af";
/// Enclave signature over the weather response (MystenLabs/nautilus weather.move test_weather_flow).
const NAUTILUS_WEATHER_SIG: &str = "77b6d8be225440d00f3d6eb52e91076a8927cebfb520e58c19daf31ecf06b3798ec3d3ce9630a9eceee46d24f057794a60dd781657cb06d952269cfc5ae19500";

const CRATE_PCR0: &str = "8bb159f202bb95d6d4d98e0e103918246cea734f1d57cd263e4fd56075ed53f6fa8c68854817a32749a241e11874c26b";
const CRATE_PCR1: &str = "3b4a7e1b5f13c5a1000b3ed32ef8995ee13e9876329f9bc72650b918329ef9cf4e2e4d1e1e37375dab0ba56ba0974d03";
const CRATE_PCR2: &str = "f4e86b12ad3df5f9fea962ff706c23ee190b463740a32f1a679a3cd1070a7731ddd83328fe3db5e8143ea94344b6fb95";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    hex::decode(text.trim()).expect("fixture is hex")
}

fn nautilus() -> Vec<u8> {
    fixture("nautilus-weather.att.hex")
}

fn aws() -> Vec<RootCert> {
    vec![RootCert::aws_nitro()]
}

fn nautilus_expected() -> ExpectedPcrs {
    ExpectedPcrs::none()
        .with_hex(0, NAUTILUS_PCR0)
        .and_then(|e| e.with_hex(1, NAUTILUS_PCR1))
        .and_then(|e| e.with_hex(2, NAUTILUS_PCR2))
        .expect("hex")
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

/// DER of the leaf certificate inside the nautilus document (CBOR key "certificate" + bstr header).
fn leaf_offset(doc: &[u8]) -> usize {
    let key = b"\x6bcertificate";
    let at = find(doc, key) + key.len();
    // 0x59 = bstr with 2-byte length
    assert_eq!(doc[at], 0x59);
    at + 3
}

fn bcs_string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = s.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
    out
}

#[test]
fn aws_root_fingerprint_is_pinned() {
    assert_eq!(
        AWS_NITRO_ROOT_SHA256,
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    );
    assert_eq!(
        hex::encode(RootCert::aws_nitro().sha256_fingerprint()),
        AWS_NITRO_ROOT_SHA256
    );
    let copied = std::fs::read_to_string(format!(
        "{}/testdata/aws-nitro-root.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("pem");
    assert_eq!(RootCert::from_pem(&copied), Ok(RootCert::aws_nitro()));
}

#[test]
fn nautilus_document_verifies() {
    let doc = nautilus();
    assert_eq!(doc.len(), 4492);
    let v =
        verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &nautilus_expected()).expect("verifies");
    assert_eq!(
        hex::encode(v.public_key.as_deref().expect("pk")),
        NAUTILUS_PK
    );
    assert_eq!(v.module_id, "i-06e4b98c6549ff803-enc0196373b195fb723");
    assert_eq!(v.timestamp, 1_744_683_923_696);
    assert_eq!(v.user_data, None);
    assert_eq!(v.nonce, None);
    assert_eq!(v.pcrs.len(), 16);
    assert_eq!(hex::encode(v.pcrs.get(0).expect("pcr0")), NAUTILUS_PCR0);
    assert_eq!(hex::encode(v.pcrs.get(2).expect("pcr2")), NAUTILUS_PCR2);
    assert_eq!(v.pcrs.get(8), Some(&[0u8; 48]));
    // Expecting the document's own PCRs (all 16) also passes.
    let all = v.pcrs.expect(&(0..16).collect::<Vec<_>>());
    verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &all).expect("all pcrs");
}

#[test]
fn nautilus_tagged_document_verifies() {
    // The same document wrapped in COSE_Sign1 tag 18 (0xd2).
    let mut doc = vec![0xd2];
    doc.extend(nautilus());
    verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &nautilus_expected()).expect("tagged");
}

#[test]
fn nautilus_enclave_signature_verifies() {
    let doc = nautilus();
    let v =
        verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &nautilus_expected()).expect("verifies");
    let pk = v.public_key.expect("pk");
    let mut data = bcs_string("San Francisco");
    data.extend_from_slice(&13u64.to_le_bytes());
    let msg = intent_message_bcs(0, 1_744_683_300_000, &data);
    let sig = hex::decode(NAUTILUS_WEATHER_SIG).expect("hex");
    assert!(verify_enclave_signature(&pk, &msg, &sig));
    // Any change to the message breaks it.
    let other = intent_message_bcs(0, 1_744_683_300_001, &data);
    assert!(!verify_enclave_signature(&pk, &other, &sig));
    let other = intent_message_bcs(1, 1_744_683_300_000, &data);
    assert!(!verify_enclave_signature(&pk, &other, &sig));
}

#[test]
fn nitro_attest_crate_document_verifies() {
    let doc = fixture("nitro-attest-crate.att.hex");
    assert_eq!(doc.len(), 4781);
    let expected = ExpectedPcrs::none()
        .with_hex(0, CRATE_PCR0)
        .and_then(|e| e.with_hex(1, CRATE_PCR1))
        .and_then(|e| e.with_hex(2, CRATE_PCR2))
        .expect("hex");
    let v = verify_attestation(&doc, &aws(), CRATE_NOW_MS, &expected).expect("verifies");
    assert_eq!(v.module_id, "i-0bee92034f3d60691-enc01943c5eaab3ad6a");
    assert_eq!(v.timestamp, 1_736_179_625_472);
    // This enclave put a DER RSA SubjectPublicKeyInfo in public_key.
    let pk = v.public_key.expect("pk");
    assert_eq!(pk.len(), 294);
    assert_eq!(&pk[..4], &[0x30, 0x82, 0x01, 0x22]);
    // At the (later) nautilus time its leaf has long expired.
    assert!(matches!(
        verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &expected),
        Err(AttestationError::CertificateExpired { .. })
    ));
}

fn flipped_signature() -> AttestationError {
    let mut doc = nautilus();
    let n = doc.len();
    doc[n - 10] ^= 0x01;
    verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &nautilus_expected()).expect_err("must fail")
}

fn flipped_payload() -> AttestationError {
    let mut doc = nautilus();
    // A byte of the public_key value inside the signed payload.
    let at = find(&doc, &hex::decode(NAUTILUS_PK).expect("hex"));
    doc[at + 5] ^= 0x01;
    verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &ExpectedPcrs::none()).expect_err("must fail")
}

fn flipped_certificate() -> AttestationError {
    let mut doc = nautilus();
    // Offset 20 of the leaf DER lies in its serial number.
    let at = leaf_offset(&doc) + 20;
    doc[at] ^= 0x01;
    verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &nautilus_expected()).expect_err("must fail")
}

fn wrong_pcr() -> AttestationError {
    let mut want = [0u8; 48];
    hex::decode_to_slice(NAUTILUS_PCR2, &mut want).expect("hex");
    want[47] ^= 0xff;
    let expected = nautilus_expected().with(2, want);
    verify_attestation(&nautilus(), &aws(), NAUTILUS_NOW_MS, &expected).expect_err("must fail")
}

fn after_leaf_expiry() -> AttestationError {
    let now = NAUTILUS_NOW_MS + 3 * 3600 * 1000;
    verify_attestation(&nautilus(), &aws(), now, &nautilus_expected()).expect_err("must fail")
}

fn before_validity() -> AttestationError {
    let now = NAUTILUS_NOW_MS - 20 * 60 * 1000;
    verify_attestation(&nautilus(), &aws(), now, &nautilus_expected()).expect_err("must fail")
}

fn wrong_root() -> AttestationError {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimulatedEnclave::open_with_measurement(dir.path(), [7u8; 48]).expect("sim");
    verify_attestation(
        &nautilus(),
        &[sim.dev_root()],
        NAUTILUS_NOW_MS,
        &nautilus_expected(),
    )
    .expect_err("must fail")
}

#[test]
fn flipped_signature_byte_fails() {
    assert_eq!(
        flipped_signature(),
        AttestationError::DocumentSignatureInvalid
    );
}

#[test]
fn flipped_payload_byte_fails() {
    assert_eq!(
        flipped_payload(),
        AttestationError::DocumentSignatureInvalid
    );
}

#[test]
fn flipped_certificate_byte_fails() {
    assert_eq!(
        flipped_certificate(),
        AttestationError::CertificateSignatureInvalid {
            cert: "certificate".into()
        }
    );
}

#[test]
fn flipped_intermediate_byte_fails() {
    let mut doc = nautilus();
    // cabundle[3] is the last intermediate, directly before "public_key"; its serial is at +15.
    let key = b"\x6apublic_key";
    let end = find(&doc, key);
    // Its DER (0x30 0x82 0x02 0xbe ...) is 0x02c2 bytes long and ends where that key starts.
    let start = end - 0x02c2;
    assert_eq!(&doc[start..start + 4], &[0x30, 0x82, 0x02, 0xbe]);
    doc[start + 20] ^= 0x01;
    assert_eq!(
        verify_attestation(&doc, &aws(), NAUTILUS_NOW_MS, &nautilus_expected()),
        Err(AttestationError::CertificateSignatureInvalid {
            cert: "cabundle[3]".into()
        })
    );
}

#[test]
fn wrong_expected_pcr_fails() {
    assert!(matches!(
        wrong_pcr(),
        AttestationError::PcrMismatch { index: 2, .. }
    ));
    let missing = nautilus_expected().with(20, [0u8; 48]);
    assert_eq!(
        verify_attestation(&nautilus(), &aws(), NAUTILUS_NOW_MS, &missing),
        Err(AttestationError::PcrMissing { index: 20 })
    );
}

#[test]
fn leaf_expired_fails() {
    match after_leaf_expiry() {
        AttestationError::CertificateExpired { cert, .. } => assert_eq!(cert, "certificate"),
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn before_validity_fails() {
    match before_validity() {
        AttestationError::CertificateNotYetValid { cert, .. } => assert_eq!(cert, "certificate"),
        e => panic!("unexpected {e:?}"),
    }
    // Far in the past the intermediates are not valid either.
    assert!(matches!(
        verify_attestation(
            &nautilus(),
            &aws(),
            1_600_000_000_000,
            &ExpectedPcrs::none()
        ),
        Err(AttestationError::CertificateNotYetValid { .. })
    ));
}

#[test]
fn wrong_root_fails() {
    assert_eq!(wrong_root(), AttestationError::UntrustedRoot);
    assert_eq!(
        verify_attestation(&nautilus(), &[], NAUTILUS_NOW_MS, &ExpectedPcrs::none()),
        Err(AttestationError::UntrustedRoot)
    );
}

#[test]
fn negative_cases_are_distinct() {
    // Signature and payload tampering are indistinguishable by design (both break the ES384
    // signature over the payload); every other case has its own error variant.
    let cases = [
        flipped_signature(),
        flipped_certificate(),
        wrong_pcr(),
        after_leaf_expiry(),
        before_validity(),
        wrong_root(),
    ];
    let mut kinds: Vec<_> = cases.iter().map(discriminant).collect();
    kinds.dedup();
    let n = kinds.len();
    for i in 0..n {
        for j in i + 1..n {
            assert_ne!(kinds[i], kinds[j], "{:?} vs {:?}", cases[i], cases[j]);
        }
    }
    assert_eq!(
        discriminant(&flipped_payload()),
        discriminant(&flipped_signature())
    );
}

#[test]
fn structural_errors() {
    let doc = nautilus();
    let none = ExpectedPcrs::none();
    // Not CBOR / truncated.
    assert!(matches!(
        verify_attestation(&[0xff, 0x00], &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::Cbor(_))
    ));
    assert!(matches!(
        verify_attestation(&doc[..doc.len() - 1], &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::Cbor(_))
    ));
    assert!(matches!(
        verify_attestation(&[], &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::CoseStructure(_))
    ));
    // Trailing garbage.
    let mut long = doc.clone();
    long.push(0);
    assert!(matches!(
        verify_attestation(&long, &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::Cbor(_))
    ));
    // Wrong tag.
    let mut tagged = vec![0xd1];
    tagged.extend_from_slice(&doc);
    assert!(matches!(
        verify_attestation(&tagged, &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::CoseStructure(_))
    ));
    // Protected header {1: -34} instead of {1: -35}.
    let mut alg = doc.clone();
    assert_eq!(&alg[1..6], &[0x44, 0xa1, 0x01, 0x38, 0x22]);
    alg[5] = 0x21;
    assert!(matches!(
        verify_attestation(&alg, &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::UnsupportedAlgorithm(_))
    ));
    // Digest other than SHA384.
    let mut dig = doc.clone();
    let at = find(&dig, b"SHA384");
    dig[at + 3..at + 6].copy_from_slice(b"256");
    assert_eq!(
        verify_attestation(&dig, &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::UnsupportedDigest("SHA256".into()))
    );
    // A field of the wrong type: module_id text -> bytes (major type 3 -> 2).
    let mut ty = doc.clone();
    let at = find(&ty, b"module_id") + 9;
    assert_eq!(ty[at], 0x78);
    ty[at] = 0x58;
    assert!(matches!(
        verify_attestation(&ty, &aws(), NAUTILUS_NOW_MS, &none),
        Err(AttestationError::InvalidField {
            field: "module_id",
            ..
        })
    ));
}
