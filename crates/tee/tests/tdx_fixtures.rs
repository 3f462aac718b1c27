//! The real Intel TDX quote v4 + collateral (fixtures/tdx/README.md: Phala dcap-qvl test data),
//! verified against the embedded Intel SGX Root CA. Collateral window 1750329147 (QE identity
//! issueDate) .. 1752919235 (PCK CRL nextUpdate,
//! exclusive).

use daas_tee::tdx::{
    verify_tdx_quote, TdxCollateral, TdxError, TdxPolicy, VerifiedTdx, INTEL_SGX_ROOT_CA_DER,
    INTEL_SGX_ROOT_CA_SHA256,
};
use sha2::Digest;

const WINDOW_START: i64 = 1_750_329_147;
const WINDOW_END: i64 = 1_752_919_235;
const NOW_S: i64 = 1_751_000_000;
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const REPORT_DATA: &str = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20";
const RTMR: [&str; 4] = [
    "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
    "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
    "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
];
/// Offsets in the quote: the TD report body starts at 48, the quote signature follows the
/// 4-byte auth data length at 48 + 584.
const MRTD_OFF: usize = 48 + 136;
const SIG_OFF: usize = 48 + 584 + 4;

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/tdx/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn quote() -> Vec<u8> {
    file("tdx_quote.bin")
}

fn collateral() -> TdxCollateral {
    TdxCollateral::from_json(&file("tdx_quote_collateral.json")).unwrap()
}

fn h48(s: &str) -> [u8; 48] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn strict() -> TdxPolicy {
    let mut p = TdxPolicy {
        report_data_prefix: Some(hex::decode(&REPORT_DATA[..64]).unwrap()),
        ..TdxPolicy::default()
    };
    p.expected.mrtd = Some(h48(MRTD));
    for (i, r) in RTMR.iter().enumerate() {
        p.expected.rtmr[i] = Some(h48(r));
    }
    p
}

fn verify(q: &[u8], c: &TdxCollateral, now: i64, p: &TdxPolicy) -> Result<VerifiedTdx, TdxError> {
    verify_tdx_quote(q, c, INTEL_SGX_ROOT_CA_DER, now, p)
}

#[test]
fn embedded_intel_root_has_the_published_fingerprint() {
    assert_eq!(
        hex::encode(sha2::Sha256::digest(INTEL_SGX_ROOT_CA_DER)),
        INTEL_SGX_ROOT_CA_SHA256
    );
}

#[test]
fn tdx_fixture_verifies_inside_its_window() {
    for now in [WINDOW_START, NOW_S, WINDOW_END - 1] {
        let v = verify(&quote(), &collateral(), now, &strict()).unwrap();
        assert_eq!(v.tcb_status, "UpToDate");
        assert!(v.advisory_ids.is_empty());
        assert_eq!(hex::encode(v.mrtd), MRTD);
        assert_eq!(hex::encode(v.report_data), REPORT_DATA);
        for (i, r) in RTMR.iter().enumerate() {
            assert_eq!(hex::encode(v.rtmr[i]), *r);
        }
    }
}

#[test]
fn flipped_quote_body_byte_is_refused() {
    for off in [MRTD_OFF, 48 + 520, 10] {
        let mut q = quote();
        q[off] ^= 1;
        let err = verify(&q, &collateral(), NOW_S, &strict()).unwrap_err();
        assert!(
            matches!(
                err,
                TdxError::QuoteSignatureInvalid | TdxError::QuoteMalformed(_)
            ),
            "offset {off}: {err:?}"
        );
    }
    let mut q = quote();
    q[MRTD_OFF] ^= 1;
    assert_eq!(
        verify(&q, &collateral(), NOW_S, &strict()),
        Err(TdxError::QuoteSignatureInvalid)
    );
}

#[test]
fn flipped_quote_signature_is_refused() {
    let mut q = quote();
    q[SIG_OFF + 5] ^= 1;
    assert_eq!(
        verify(&q, &collateral(), NOW_S, &strict()),
        Err(TdxError::QuoteSignatureInvalid)
    );
}

#[test]
fn flipped_attestation_key_breaks_the_qe_report_binding() {
    // The attestation key (64 bytes after the signature) is hashed into the QE report data.
    let mut q = quote();
    q[SIG_OFF + 64 + 3] ^= 1;
    assert!(matches!(
        verify(&q, &collateral(), NOW_S, &strict()),
        Err(TdxError::QeReportInvalid(_)) | Err(TdxError::QuoteSignatureInvalid)
    ));
}

#[test]
fn truncated_quote_is_refused() {
    let q = quote();
    assert!(matches!(
        verify(&q[..600], &collateral(), NOW_S, &strict()),
        Err(TdxError::QuoteMalformed(_))
    ));
}

#[test]
fn wrong_root_is_refused() {
    let other = rcgen::generate_simple_self_signed(vec!["Intel SGX Root CA".into()]).unwrap();
    let err =
        verify_tdx_quote(&quote(), &collateral(), other.cert.der(), NOW_S, &strict()).unwrap_err();
    assert!(matches!(err, TdxError::UntrustedChain(_)), "{err:?}");
}

#[test]
fn expired_collateral_is_refused() {
    assert_eq!(
        verify(&quote(), &collateral(), WINDOW_END, &strict()),
        Err(TdxError::CollateralExpired {
            what: "pck_crl",
            next_update_s: WINDOW_END,
            now_s: WINDOW_END
        })
    );
    // Far later: the TCB info is the first checked to have expired.
    assert!(matches!(
        verify(&quote(), &collateral(), 1_800_000_000, &strict()),
        Err(TdxError::CollateralExpired {
            what: "tcb_info",
            ..
        })
    ));
}

#[test]
fn time_before_collateral_is_refused() {
    assert_eq!(
        verify(&quote(), &collateral(), WINDOW_START - 1, &strict()),
        Err(TdxError::CollateralNotYetValid {
            what: "qe_identity",
            issue_s: WINDOW_START,
            now_s: WINDOW_START - 1
        })
    );
}

#[test]
fn tampered_collateral_signature_is_refused() {
    let mut c = collateral();
    c.tcb_info_signature = flip_hex(&c.tcb_info_signature, 4);
    assert!(matches!(
        verify(&quote(), &c, NOW_S, &strict()),
        Err(TdxError::CollateralSignatureInvalid(_))
    ));
    let mut c = collateral();
    c.qe_identity_signature = flip_hex(&c.qe_identity_signature, 70);
    assert!(matches!(
        verify(&quote(), &c, NOW_S, &strict()),
        Err(TdxError::CollateralSignatureInvalid(_))
    ));
}

#[test]
fn tampered_tcb_info_content_is_refused() {
    // Raise the evaluation data number: same dates, so only the signature can catch it.
    let mut c = collateral();
    c.tcb_info = c.tcb_info.replace(
        "\"tcbEvaluationDataNumber\":17",
        "\"tcbEvaluationDataNumber\":18",
    );
    assert_ne!(c.tcb_info, collateral().tcb_info);
    assert!(matches!(
        verify(&quote(), &c, NOW_S, &strict()),
        Err(TdxError::CollateralSignatureInvalid(_))
    ));
}

#[test]
fn tampered_crl_is_refused() {
    let mut c = collateral();
    c.pck_crl = flip_hex(&c.pck_crl, c.pck_crl.len() - 6);
    let err = verify(&quote(), &c, NOW_S, &strict()).unwrap_err();
    assert!(matches!(err, TdxError::UntrustedChain(_)), "{err:?}");
}

fn flip_hex(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] = if b[i] == b'0' { b'1' } else { b'0' };
    String::from_utf8(b).unwrap()
}

#[test]
fn wrong_mrtd_is_refused() {
    let mut p = strict();
    let mut m = h48(MRTD);
    m[47] ^= 1;
    p.expected.mrtd = Some(m);
    assert!(matches!(
        verify(&quote(), &collateral(), NOW_S, &p),
        Err(TdxError::MeasurementMismatch {
            register: "MRTD",
            ..
        })
    ));
}

#[test]
fn wrong_rtmr_is_refused() {
    for (i, name) in ["RTMR0", "RTMR1", "RTMR2", "RTMR3"].into_iter().enumerate() {
        let mut p = strict();
        let mut m = h48(RTMR[i]);
        m[0] ^= 0x10;
        p.expected.rtmr[i] = Some(m);
        assert!(matches!(
            verify(&quote(), &collateral(), NOW_S, &p),
            Err(TdxError::MeasurementMismatch { register, .. }) if register == name
        ));
    }
}

#[test]
fn wrong_report_data_binding_is_refused() {
    let p = TdxPolicy {
        report_data_prefix: Some(
            daas_tee::platform::report_data_binding(&[1u8; 32], None, &[0u8; 32]).to_vec(),
        ),
        ..strict()
    };
    assert!(matches!(
        verify(&quote(), &collateral(), NOW_S, &p),
        Err(TdxError::ReportDataMismatch { .. })
    ));
}

#[test]
fn tcb_status_below_policy_is_refused() {
    // The SGX sample (same collateral format) has status ConfigurationAndSWHardeningNeeded:
    // refused by the default policy (UpToDate only), and once accepted still not a TD.
    let q = file("sgx_quote.bin");
    let c = TdxCollateral::from_json(&file("sgx_quote_collateral.json")).unwrap();
    let now = 1_752_919_277;
    assert_eq!(
        verify(&q, &c, now, &TdxPolicy::default()),
        Err(TdxError::TcbStatusNotAccepted {
            status: "ConfigurationAndSWHardeningNeeded".into(),
            advisory_ids: vec!["INTEL-SA-00289".into(), "INTEL-SA-00615".into()],
        })
    );
    let p = TdxPolicy {
        also_accept: vec!["ConfigurationAndSWHardeningNeeded".into()],
        ..TdxPolicy::default()
    };
    assert_eq!(verify(&q, &c, now, &p), Err(TdxError::NotTdx));
}
