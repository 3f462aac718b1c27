//! Attested TLS with a master on AMD SEV-SNP or Intel TDX (the answer's `platform` is `sev-snp`
//! or `tdx`; Nitro answers go through [`crate::attested`] unchanged).
//!
//! The answer carries [`Evidence::encode`] (SNP: report + VCEK; TDX: quote + DCAP collateral),
//! the enclave's Ed25519 key and, optionally, the ledger Enclave object it is registered as.
//! The client, in this order:
//! 1. reads the pins from the LEDGER: a named Enclave object must be of the answered platform
//!    ([`AttestError::PlatformMismatch`]) and current for the deployment's configuration; the
//!    configuration's registers are the expected measurement (SNP: MEASUREMENT = pcr0; TDX:
//!    MRTD = pcr0, RTMR0 = pcr1, RTMR1 = pcr2; empty slots pin nothing), plus the explicit
//!    `--expect-measurement` pins, which must agree ([`AttestError::MeasurementPinConflict`]);
//!    nothing pinned is [`AttestError::Unpinned`];
//! 2. verifies the evidence with the platform's [`daas_tee::EvidenceVerifier`] (chain to the
//!    pinned AMD / Intel root, signature, TCB, collateral freshness, debug policy) at the
//!    injected time ([`AttestError::Evidence`]);
//! 3. compares the measurement ([`AttestError::Measurement`]);
//! 4. checks report_data = SHA-256(TLS leaf DER) ([`AttestError::TlsBinding`]) ||
//!    SHA-256(nonce || enclave key) ([`AttestError::Nonce`]: a stale or replayed report);
//! 5. requires the enclave key to be the one registered on the ledger
//!    ([`AttestError::EnclaveKey`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use daas_tee::{
    freshness_digest, Evidence, ExpectedMeasurement, Pcrs, Platform, VerifiedAttestation,
    VerifiedEvidence, Verifiers,
};
use sha2::{Digest, Sha256};

use crate::attested::{ledger_pins, AttestError, LedgerPins, MeasurementSource};

/// What a client trusts of SEV-SNP / TDX masters.
#[derive(Clone)]
pub struct PlatformPolicy {
    /// Explicit `--expect-measurement` pins for sev-snp / tdx (Nitro pins live in
    /// `AttestationPolicy::expected_pcrs`).
    pub pins: BTreeMap<Platform, ExpectedMeasurement>,
    /// Verifiers with the pinned AMD / Intel roots and the TCB / guest policy.
    pub verifiers: Arc<Verifiers>,
    /// Verification time (ms since the epoch) instead of the clock, e.g. to check recorded
    /// evidence whose collateral has expired since.
    pub at_ms: Option<u64>,
}

impl Default for PlatformPolicy {
    fn default() -> Self {
        PlatformPolicy {
            pins: BTreeMap::new(),
            verifiers: Arc::new(Verifiers::production(Vec::new())),
            at_ms: None,
        }
    }
}

fn register_names(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::Nitro => &["pcr0", "pcr1", "pcr2"],
        Platform::SevSnp => &["measurement"],
        Platform::Tdx => &["mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"],
    }
}

/// `(name, value)` of every pinned register, in the order of [`VerifiedEvidence::measurement`].
fn pinned(m: &ExpectedMeasurement) -> Vec<(usize, [u8; 48])> {
    match m {
        ExpectedMeasurement::Nitro(_) => Vec::new(),
        ExpectedMeasurement::SevSnp { measurement } => {
            measurement.map(|v| (0, v)).into_iter().collect()
        }
        ExpectedMeasurement::Tdx { mrtd, rtmr } => std::iter::once(*mrtd)
            .chain(rtmr.iter().copied())
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .collect(),
    }
}

fn set(m: &mut ExpectedMeasurement, index: usize, value: [u8; 48]) {
    match m {
        ExpectedMeasurement::SevSnp { measurement } => *measurement = Some(value),
        ExpectedMeasurement::Tdx { mrtd, rtmr } => match index {
            0 => *mrtd = Some(value),
            i => {
                if let Some(slot) = rtmr.get_mut(i - 1) {
                    *slot = Some(value);
                }
            }
        },
        ExpectedMeasurement::Nitro(_) => {}
    }
}

/// The expected measurement of a `platform` master: the ledger's registration (see the module
/// docs) plus the explicit pins.
pub fn platform_pins(
    platform: Platform,
    explicit: &BTreeMap<Platform, ExpectedMeasurement>,
    pins: Option<&LedgerPins>,
) -> Result<ExpectedMeasurement, AttestError> {
    let names = register_names(platform);
    let mut out = explicit
        .get(&platform)
        .cloned()
        .unwrap_or_else(|| ExpectedMeasurement::none(platform));
    if let Some(p) = pins {
        if let Some(e) = &p.enclave {
            if e.platform != platform.code() {
                return Err(AttestError::PlatformMismatch {
                    enclave: e.id.to_string(),
                    ledger: Platform::from_code(e.platform)
                        .map(|p| p.name().to_string())
                        .unwrap_or_else(|| format!("code {}", e.platform)),
                    answered: platform.name().to_string(),
                });
            }
        }
        let slots = [&p.config.pcr0, &p.config.pcr1, &p.config.pcr2];
        for (index, slot) in slots.into_iter().enumerate().take(names.len()) {
            if slot.is_empty() {
                continue;
            }
            let value: [u8; 48] = slot.as_slice().try_into().map_err(|_| {
                AttestError::Response(format!(
                    "the ledger's configuration {} holds a malformed {}",
                    p.config.id, names[index]
                ))
            })?;
            if let Some((_, e)) = pinned(&out).into_iter().find(|(i, _)| *i == index) {
                if e != value {
                    return Err(AttestError::MeasurementPinConflict {
                        register: names[index].to_string(),
                        explicit: hex::encode(e),
                        ledger: hex::encode(value),
                    });
                }
            }
            set(&mut out, index, value);
        }
    }
    if out.is_empty() {
        return Err(AttestError::Unpinned);
    }
    Ok(out)
}

/// Steps 2 to 4 of the module docs for `evidence`: `cert_sha256` is the SHA-256 of the TLS leaf
/// the handshake presented, `freshness` = [`freshness_digest`]`(nonce, enclave key)`.
pub fn check_evidence(
    verifiers: &Verifiers,
    evidence: &Evidence,
    expected: &ExpectedMeasurement,
    cert_sha256: &[u8; 32],
    freshness: &[u8; 32],
    now_ms: u64,
) -> Result<VerifiedEvidence, AttestError> {
    let platform = evidence.platform();
    if expected.platform() != platform {
        return Err(AttestError::Response(format!(
            "{platform} evidence checked against a {} measurement",
            expected.platform()
        )));
    }
    let none = BTreeMap::from([(platform, ExpectedMeasurement::none(platform))]);
    let v = verifiers
        .verify(evidence, &none, None, now_ms)
        .map_err(AttestError::Evidence)?;
    let names = register_names(platform);
    for (index, want) in pinned(expected) {
        let got = v.measurement.get(index).copied().unwrap_or([0u8; 48]);
        if got != want {
            return Err(AttestError::Measurement {
                platform: platform.name().to_string(),
                register: names.get(index).copied().unwrap_or("?").to_string(),
                expected: hex::encode(want),
                actual: hex::encode(got),
            });
        }
    }
    if v.binding_data.get(..32) != Some(&cert_sha256[..]) {
        return Err(AttestError::TlsBinding);
    }
    if v.binding_data.get(32..64) != Some(&freshness[..]) {
        return Err(AttestError::Nonce);
    }
    Ok(v)
}

/// Verify a `platform` (SEV-SNP / TDX) answer `v` received over the TLS connection that
/// presented `leaf`, for our `nonce`.
pub async fn verify_answer(
    v: &serde_json::Value,
    platform: Platform,
    policy: &crate::attested::AttestationPolicy,
    leaf: &[u8],
    nonce: &[u8],
    now_ms: u64,
) -> Result<(VerifiedAttestation, MeasurementSource), AttestError> {
    let bytes = v["evidence"]
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .ok_or_else(|| AttestError::Response("missing or invalid evidence".into()))?;
    let evidence = Evidence::decode(platform, &bytes)
        .map_err(|e| AttestError::Response(format!("{platform} evidence: {e}")))?;
    let pk: [u8; 32] = v["public_key"]
        .as_str()
        .and_then(|k| hex::decode(k).ok())
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| AttestError::Response("missing or invalid public_key".into()))?;
    let pins = match &policy.ledger {
        Some(l) => ledger_pins(l.as_ref(), v["enclave_object_id"].as_str()).await?,
        None => None,
    };
    let expected = platform_pins(platform, &policy.platforms.pins, pins.as_ref())?;
    let cert_sha256: [u8; 32] = Sha256::digest(leaf).into();
    let verified = check_evidence(
        &policy.platforms.verifiers,
        &evidence,
        &expected,
        &cert_sha256,
        &freshness_digest(Some(nonce), &pk),
        now_ms,
    )?;
    if let Some(e) = pins.as_ref().and_then(|p| p.enclave.as_ref()) {
        if e.pk.as_slice() != pk {
            return Err(AttestError::EnclaveKey(e.id.to_string()));
        }
    }
    let mut pcrs = Pcrs::default();
    for (i, m) in verified.measurement.iter().enumerate() {
        pcrs.insert(u16::try_from(i).unwrap_or(u16::MAX), *m);
    }
    let source = match &pins {
        Some(p) => MeasurementSource::Ledger {
            config: p.config.id.to_string(),
            enclave: p.enclave.as_ref().map(|e| e.id.to_string()),
        },
        None => MeasurementSource::Explicit,
    };
    Ok((
        VerifiedAttestation {
            pcrs,
            public_key: Some(pk.to_vec()),
            user_data: Some(verified.binding_data.clone()),
            nonce: Some(nonce.to_vec()),
            module_id: platform.name().to_string(),
            timestamp: now_ms,
        },
        source,
    ))
}

#[cfg(test)]
mod tests {
    //! The fixtures are real SEV-SNP / TDX evidence whose report data we cannot choose: each
    //! test takes the expected binding from the fixture's own report data (so every check but
    //! the TLS binding passes), and the binding itself is tested with synthetic values.
    use super::*;
    use daas_ledger::contract::{Enclave, EnclaveConfig};
    use daas_ledger::ObjectId;
    use daas_tee::tdx::TdxCollateral;

    const REPORT: &[u8] = include_bytes!("../../tee/tests/fixtures/sev-snp/report_milan.bin");
    const VCEK: &[u8] = include_bytes!("../../tee/tests/fixtures/sev-snp/vcek_milan.der");
    const QUOTE: &[u8] = include_bytes!("../../tee/tests/fixtures/tdx/tdx_quote.bin");
    const COLLATERAL: &[u8] =
        include_bytes!("../../tee/tests/fixtures/tdx/tdx_quote_collateral.json");
    const SNP_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
    const SNP_REPORT_DATA: &str = "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd";
    const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
    const TDX_REPORT_DATA: &str = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20";
    const SNP_NOW_MS: u64 = 1_700_000_000_000;
    const TDX_NOW_MS: u64 = 1_751_000_000_000;

    fn h48(s: &str) -> [u8; 48] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn halves(s: &str) -> ([u8; 32], [u8; 32]) {
        let b = hex::decode(s).unwrap();
        (b[..32].try_into().unwrap(), b[32..].try_into().unwrap())
    }

    fn snp() -> Evidence {
        Evidence::SevSnp {
            report: REPORT.to_vec(),
            vcek: VCEK.to_vec(),
        }
    }

    fn tdx() -> Evidence {
        Evidence::Tdx {
            quote: QUOTE.to_vec(),
            collateral: Box::new(TdxCollateral::from_json(COLLATERAL).unwrap()),
        }
    }

    fn verifiers() -> Verifiers {
        Verifiers::production(Vec::new())
    }

    fn snp_pin(m: &str) -> ExpectedMeasurement {
        ExpectedMeasurement::SevSnp {
            measurement: Some(h48(m)),
        }
    }

    fn tdx_pin(mrtd: &str) -> ExpectedMeasurement {
        ExpectedMeasurement::Tdx {
            mrtd: Some(h48(mrtd)),
            rtmr: [None; 4],
        }
    }

    fn id(b: u8) -> ObjectId {
        ObjectId::new([b; 32])
    }

    fn ledger(platform: Platform, pcr0: &str, pcr1: &str) -> LedgerPins {
        let config = EnclaveConfig {
            id: id(1),
            name: "cluster".into(),
            pcr0: hex::decode(pcr0).unwrap(),
            pcr1: hex::decode(pcr1).unwrap(),
            pcr2: Vec::new(),
            version: 0,
            anchored_revision: 0,
            anchored_at_ms: 0,
        };
        LedgerPins {
            config,
            enclave: Some(Enclave {
                id: id(2),
                pk: vec![5u8; 32],
                config_version: 0,
                owner: id(3),
                config_id: id(1),
                platform: platform.code(),
            }),
        }
    }

    #[test]
    fn snp_fixture_passes_every_check_with_its_own_binding() {
        let (cert, fresh) = halves(SNP_REPORT_DATA);
        let v = check_evidence(
            &verifiers(),
            &snp(),
            &snp_pin(SNP_MEASUREMENT),
            &cert,
            &fresh,
            SNP_NOW_MS,
        )
        .unwrap();
        assert_eq!(v.platform, Platform::SevSnp);
        assert_eq!(hex::encode(v.measurement[0]), SNP_MEASUREMENT);
    }

    #[test]
    fn tdx_fixture_passes_every_check_with_its_own_binding() {
        let (cert, fresh) = halves(TDX_REPORT_DATA);
        let v = check_evidence(
            &verifiers(),
            &tdx(),
            &tdx_pin(MRTD),
            &cert,
            &fresh,
            TDX_NOW_MS,
        )
        .unwrap();
        assert_eq!(hex::encode(v.measurement[0]), MRTD);
    }

    #[test]
    fn another_masters_report_is_refused_by_the_tls_binding() {
        // The fixture is a report some other TEE produced: replayed by a master whose TLS
        // certificate hashes to anything else, the first half does not match.
        let (_, fresh) = halves(SNP_REPORT_DATA);
        let our_cert: [u8; 32] = Sha256::digest(b"our leaf certificate").into();
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &snp(),
                &snp_pin(SNP_MEASUREMENT),
                &our_cert,
                &fresh,
                SNP_NOW_MS
            ),
            Err(AttestError::TlsBinding)
        ));
        let (_, fresh) = halves(TDX_REPORT_DATA);
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &tdx(),
                &tdx_pin(MRTD),
                &our_cert,
                &fresh,
                TDX_NOW_MS
            ),
            Err(AttestError::TlsBinding)
        ));
    }

    #[test]
    fn a_stale_nonce_is_refused() {
        let (cert, _) = halves(SNP_REPORT_DATA);
        let ours = freshness_digest(Some(&[1u8; 32]), &[5u8; 32]);
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &snp(),
                &snp_pin(SNP_MEASUREMENT),
                &cert,
                &ours,
                SNP_NOW_MS
            ),
            Err(AttestError::Nonce)
        ));
    }

    #[test]
    fn the_binding_a_master_produces_is_what_the_client_checks() {
        // Synthetic: the master's report data for (leaf, nonce, key) splits into the halves
        // check_evidence compares.
        let leaf = b"leaf DER";
        let cert: [u8; 32] = Sha256::digest(leaf).into();
        let rd = daas_tee::report_data_binding(&cert, Some(b"n0nce"), &[9u8; 32]);
        assert_eq!(rd[..32], cert);
        assert_eq!(rd[32..], freshness_digest(Some(b"n0nce"), &[9u8; 32]));
        assert_ne!(rd[32..], freshness_digest(Some(b"other"), &[9u8; 32]));
        assert_ne!(rd[32..], freshness_digest(Some(b"n0nce"), &[8u8; 32]));
    }

    #[test]
    fn wrong_measurement_is_refused_with_its_register() {
        let (cert, fresh) = halves(SNP_REPORT_DATA);
        let other = "00".repeat(48);
        assert!(matches!(
            check_evidence(&verifiers(), &snp(), &snp_pin(&other), &cert, &fresh, SNP_NOW_MS),
            Err(AttestError::Measurement { register, .. }) if register == "measurement"
        ));
        let (cert, fresh) = halves(TDX_REPORT_DATA);
        let rtmr3 = ExpectedMeasurement::Tdx {
            mrtd: Some(h48(MRTD)),
            rtmr: [None, None, None, Some([1u8; 48])],
        };
        assert!(matches!(
            check_evidence(&verifiers(), &tdx(), &rtmr3, &cert, &fresh, TDX_NOW_MS),
            Err(AttestError::Measurement { register, .. }) if register == "rtmr3"
        ));
    }

    #[test]
    fn host_swapped_vcek_or_collateral_and_expired_collateral_are_refused() {
        let (cert, fresh) = halves(SNP_REPORT_DATA);
        // The host's certificate table hands out another certificate as the VCEK (here the AMD
        // ARK's DER): the chain or the report signature fails.
        let ark_pem = daas_tee::sevsnp::AMD_MILAN_ARK_PEM;
        let b64: String = ark_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let ark_der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let swapped = Evidence::SevSnp {
            report: REPORT.to_vec(),
            vcek: ark_der,
        };
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &swapped,
                &snp_pin(SNP_MEASUREMENT),
                &cert,
                &fresh,
                SNP_NOW_MS
            ),
            Err(AttestError::Evidence(daas_tee::EvidenceError::SevSnp(_)))
        ));
        let mut vcek = VCEK.to_vec();
        vcek[40] ^= 1;
        let tampered = Evidence::SevSnp {
            report: REPORT.to_vec(),
            vcek,
        };
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &tampered,
                &snp_pin(SNP_MEASUREMENT),
                &cert,
                &fresh,
                SNP_NOW_MS
            ),
            Err(AttestError::Evidence(_))
        ));
        // A report whose guest policy was flipped to allow debugging: the VCEK signature no
        // longer verifies (a genuinely signed debug report is refused by the policy check,
        // `sevsnp::tests::debug_policy_is_refused_unless_allowed`).
        let mut report = REPORT.to_vec();
        report[0x0A] |= 1 << 3; // policy (u64 LE at 0x08) bit 19: DEBUG
        let debug = Evidence::SevSnp {
            report,
            vcek: VCEK.to_vec(),
        };
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &debug,
                &snp_pin(SNP_MEASUREMENT),
                &cert,
                &fresh,
                SNP_NOW_MS
            ),
            Err(AttestError::Evidence(daas_tee::EvidenceError::SevSnp(_)))
        ));
        // TDX: the host edits the TCB info of the collateral (its Intel signature fails), or
        // serves collateral past its nextUpdate.
        let (cert, fresh) = halves(TDX_REPORT_DATA);
        let mut c = TdxCollateral::from_json(COLLATERAL).unwrap();
        c.tcb_info = c.tcb_info.replacen("UpToDate", "OutOfDate", 1);
        let swapped = Evidence::Tdx {
            quote: QUOTE.to_vec(),
            collateral: Box::new(c),
        };
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &swapped,
                &tdx_pin(MRTD),
                &cert,
                &fresh,
                TDX_NOW_MS
            ),
            Err(AttestError::Evidence(daas_tee::EvidenceError::Tdx(_)))
        ));
        assert!(matches!(
            check_evidence(
                &verifiers(),
                &tdx(),
                &tdx_pin(MRTD),
                &cert,
                &fresh,
                1_760_000_000_000
            ),
            Err(AttestError::Evidence(daas_tee::EvidenceError::Tdx(_)))
        ));
    }

    #[test]
    fn ledger_registration_pins_platform_and_measurement() {
        let none = BTreeMap::new();
        // The ledger's SNP enclave under a config whose pcr0 is the fixture's measurement.
        let l = ledger(Platform::SevSnp, SNP_MEASUREMENT, "");
        let m = platform_pins(Platform::SevSnp, &none, Some(&l)).unwrap();
        assert_eq!(m, snp_pin(SNP_MEASUREMENT));
        // A master answering TDX under an enclave registered as SEV-SNP, or as Nitro.
        assert!(matches!(
            platform_pins(Platform::Tdx, &none, Some(&l)),
            Err(AttestError::PlatformMismatch { ledger, answered, .. }) if ledger == "sev-snp" && answered == "tdx"
        ));
        let nitro = ledger(Platform::Nitro, SNP_MEASUREMENT, "");
        assert!(matches!(
            platform_pins(Platform::SevSnp, &none, Some(&nitro)),
            Err(AttestError::PlatformMismatch { .. })
        ));
        // TDX: MRTD = pcr0, RTMR0 = pcr1.
        let rtmr0 = "11".repeat(48);
        let l = ledger(Platform::Tdx, MRTD, &rtmr0);
        let ExpectedMeasurement::Tdx { mrtd, rtmr } =
            platform_pins(Platform::Tdx, &none, Some(&l)).unwrap()
        else {
            panic!()
        };
        assert_eq!(mrtd, Some(h48(MRTD)));
        assert_eq!(rtmr, [Some(h48(&rtmr0)), None, None, None]);
        // The registered measurement then refuses the fixture's other measurement.
        let wrong = ledger(Platform::SevSnp, &"00".repeat(48), "");
        let expected = platform_pins(Platform::SevSnp, &none, Some(&wrong)).unwrap();
        let (cert, fresh) = halves(SNP_REPORT_DATA);
        assert!(matches!(
            check_evidence(&verifiers(), &snp(), &expected, &cert, &fresh, SNP_NOW_MS),
            Err(AttestError::Measurement { .. })
        ));
    }

    #[test]
    fn explicit_pins_add_to_the_ledger_and_must_agree() {
        let l = ledger(Platform::Tdx, MRTD, "");
        let rtmr3 = ExpectedMeasurement::Tdx {
            mrtd: None,
            rtmr: [None, None, None, Some([3u8; 48])],
        };
        let explicit = BTreeMap::from([(Platform::Tdx, rtmr3)]);
        let ExpectedMeasurement::Tdx { mrtd, rtmr } =
            platform_pins(Platform::Tdx, &explicit, Some(&l)).unwrap()
        else {
            panic!()
        };
        assert_eq!((mrtd, rtmr[3]), (Some(h48(MRTD)), Some([3u8; 48])));
        let conflict = BTreeMap::from([(Platform::Tdx, tdx_pin(&"22".repeat(48)))]);
        assert!(matches!(
            platform_pins(Platform::Tdx, &conflict, Some(&l)),
            Err(AttestError::MeasurementPinConflict { register, .. }) if register == "mrtd"
        ));
        // Explicit pins alone, or nothing: unpinned is refused.
        let explicit = BTreeMap::from([(Platform::SevSnp, snp_pin(SNP_MEASUREMENT))]);
        assert!(platform_pins(Platform::SevSnp, &explicit, None).is_ok());
        assert!(matches!(
            platform_pins(Platform::Tdx, &explicit, None),
            Err(AttestError::Unpinned)
        ));
        assert!(matches!(
            platform_pins(Platform::SevSnp, &BTreeMap::new(), None),
            Err(AttestError::Unpinned)
        ));
    }
}
