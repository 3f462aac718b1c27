//! The platform-generic path (what `daas attest` / `daas join` use): evidence of each platform
//! from the real fixtures, verified by `Verifiers::production` against `--expect-measurement`
//! values parsed from their command-line form.

use std::collections::BTreeMap;

use daas_tee::platform::{Evidence, EvidenceError, Platform, Verifiers};
use daas_tee::sevsnp::SnpError;
use daas_tee::tdx::{TdxCollateral, TdxError};
use daas_tee::{parse_expect_measurements, ExpectedMeasurement};

const SNP_NOW_MS: u64 = 1_700_000_000_000;
const TDX_NOW_MS: u64 = 1_751_000_000_000;
const SNP_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const RTMR0: &str = "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0";

fn file(p: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn snp() -> Evidence {
    Evidence::SevSnp {
        report: file("sev-snp/report_milan.bin"),
        vcek: file("sev-snp/vcek_milan.der"),
    }
}

fn tdx() -> Evidence {
    Evidence::Tdx {
        quote: file("tdx/tdx_quote.bin"),
        collateral: Box::new(
            TdxCollateral::from_json(&file("tdx/tdx_quote_collateral.json")).unwrap(),
        ),
    }
}

fn flags(f: &[String]) -> BTreeMap<Platform, ExpectedMeasurement> {
    parse_expect_measurements(f).unwrap()
}

#[test]
fn sev_snp_evidence_verifies_with_its_flag() {
    let v = Verifiers::production(vec![]);
    let exp = flags(&[format!("sev-snp:measurement={SNP_MEASUREMENT}")]);
    let out = v.verify(&snp(), &exp, None, SNP_NOW_MS).unwrap();
    assert_eq!(out.platform, Platform::SevSnp);
    assert_eq!(hex::encode(out.measurement[0]), SNP_MEASUREMENT);
    // The report's own report_data is the binding the client asks for.
    let rd = out.binding_data.clone();
    v.verify(&snp(), &exp, Some(&rd), SNP_NOW_MS).unwrap();
    let mut wrong = rd;
    wrong[40] ^= 1;
    assert!(matches!(
        v.verify(&snp(), &exp, Some(&wrong), SNP_NOW_MS),
        Err(EvidenceError::SevSnp(SnpError::ReportDataMismatch { .. }))
    ));
}

#[test]
fn tdx_evidence_verifies_with_its_flag() {
    let v = Verifiers::production(vec![]);
    let exp = flags(&[format!("tdx:mrtd={MRTD},rtmr0={RTMR0}")]);
    let out = v.verify(&tdx(), &exp, None, TDX_NOW_MS).unwrap();
    assert_eq!(out.platform, Platform::Tdx);
    assert_eq!(hex::encode(out.measurement[0]), MRTD);
    assert_eq!(hex::encode(out.measurement[1]), RTMR0);
}

#[test]
fn another_platforms_flag_does_not_pin_this_one() {
    // Only a Nitro pin is given: the SNP report is verified with nothing pinned for SNP, and
    // `daas attest` then refuses an unpinned measurement (checked by its caller).
    let v = Verifiers::production(vec![]);
    let exp = flags(&[format!("nitro:pcr0={SNP_MEASUREMENT}")]);
    v.verify(&snp(), &exp, None, SNP_NOW_MS).unwrap();
    assert!(!exp.contains_key(&Platform::SevSnp));
}

#[test]
fn wrong_measurement_flag_is_refused_per_platform() {
    let v = Verifiers::production(vec![]);
    let bad = "00".repeat(48);
    assert!(matches!(
        v.verify(
            &snp(),
            &flags(&[format!("sev-snp:measurement={bad}")]),
            None,
            SNP_NOW_MS
        ),
        Err(EvidenceError::SevSnp(SnpError::MeasurementMismatch { .. }))
    ));
    assert!(matches!(
        v.verify(
            &tdx(),
            &flags(&[format!("tdx:rtmr1={bad}")]),
            None,
            TDX_NOW_MS
        ),
        Err(EvidenceError::Tdx(TdxError::MeasurementMismatch {
            register: "RTMR1",
            ..
        }))
    ));
}

#[test]
fn expectation_of_another_platform_is_a_platform_mismatch() {
    let v = daas_tee::platform::SevSnpVerifier {
        trust: daas_tee::sevsnp::SnpTrust::milan(),
        policy: Default::default(),
    };
    let exp: ExpectedMeasurement = format!("tdx:mrtd={MRTD}").parse().unwrap();
    assert_eq!(
        daas_tee::EvidenceVerifier::verify(&v, &snp(), &exp, None, SNP_NOW_MS),
        Err(EvidenceError::PlatformMismatch {
            evidence: Platform::SevSnp,
            expected: Platform::Tdx
        })
    );
}

#[test]
fn a_platform_without_verifier_is_refused() {
    let v = Verifiers(vec![]);
    assert_eq!(
        v.verify(&tdx(), &BTreeMap::new(), None, TDX_NOW_MS),
        Err(EvidenceError::NoVerifier(Platform::Tdx))
    );
}

#[test]
fn times_are_per_platform() {
    // The TDX collateral is stale at the SNP fixture's time, the SNP VCEK fine at TDX's.
    let v = Verifiers::production(vec![]);
    assert!(matches!(
        v.verify(&tdx(), &BTreeMap::new(), None, SNP_NOW_MS),
        Err(EvidenceError::Tdx(TdxError::CollateralNotYetValid { .. }))
    ));
    v.verify(&snp(), &BTreeMap::new(), None, TDX_NOW_MS)
        .unwrap();
}

#[test]
fn evidence_encoding_round_trips_and_refuses_garbage() {
    use daas_tee::EvidenceDecodeError;
    let v = Verifiers::production(vec![]);
    for (ev, now) in [(snp(), SNP_NOW_MS), (tdx(), TDX_NOW_MS)] {
        let bytes = ev.encode();
        let back = Evidence::decode(ev.platform(), &bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        v.verify(&back, &BTreeMap::new(), None, now).unwrap();
    }
    assert_eq!(
        Evidence::decode(Platform::SevSnp, &[0; 100]).unwrap_err(),
        EvidenceDecodeError::SnpTooShort(100)
    );
    assert_eq!(
        Evidence::decode(Platform::Tdx, &[0xff, 0xff, 0, 0, 1]).unwrap_err(),
        EvidenceDecodeError::TdxLength
    );
    assert!(matches!(
        Evidence::decode(Platform::Tdx, &[1, 0, 0, 0, 9, b'{']),
        Err(EvidenceDecodeError::TdxCollateral(_))
    ));
}
