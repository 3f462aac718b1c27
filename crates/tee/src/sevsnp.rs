//! Verification of AMD SEV-SNP attestation reports (report versions 2 and 3) with an injected clock.
//!
//! Checks, in this order, each failing with its own [`SnpError`] variant:
//! 1. Report layout: exactly 0x4A0 bytes, version 2 or 3, signature algorithm 1 (ECDSA P-384 /
//!    SHA-384).
//! 2. Certificate chain ARK -> ASK -> VCEK: the ARK must be one of the pinned roots (compared by
//!    DER; the AMD Milan ARK/ASK are embedded, see [`SnpTrust::milan`]) and self-signed; the ASK is
//!    signed by the ARK, the VCEK by the ASK (RSASSA-PSS / SHA-384, salt 48); issuer names chain;
//!    every certificate is valid at `now_s`.
//! 3. Report signature: ECDSA P-384 over bytes 0..0x2A0, r and s little-endian at 0x2A0 / 0x2E8,
//!    by the VCEK key.
//! 4. TCB: the report's reported_tcb must not exceed the VCEK's TCB extensions (bootloader, TEE,
//!    SNP, microcode SPLs) and must reach the policy's minimum; the chip id must equal the VCEK hwID.
//! 5. Guest policy: debug refused unless allowed; SMT and migration agent per policy; VMPL at most
//!    the policy's maximum.
//! 6. Measurement equal to the expected value (when one is given); report_data starting with the
//!    expected binding (see [`crate::platform::report_data_binding`]).

use p384::ecdsa::signature::Verifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use sha2::{Digest, Sha256, Sha384};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// AMD ARK for Milan (CN=ARK-Milan, self-signed, RSA-4096, valid 2020-10-22..2045-10-22).
pub const AMD_MILAN_ARK_PEM: &str = include_str!("../roots/amd-milan-ark.pem");
/// AMD ASK for Milan (CN=SEV-Milan, signed by the ARK).
pub const AMD_MILAN_ASK_PEM: &str = include_str!("../roots/amd-milan-ask.pem");
/// SHA-256 fingerprint of the Milan ARK (DER).
pub const AMD_MILAN_ARK_SHA256: &str =
    "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd";

/// Size of an attestation report (versions 2 and 3).
pub const SNP_REPORT_LEN: usize = 0x4A0;
const SIGNED_LEN: usize = 0x2A0;

const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// Guest policy bits (SNP ABI, table "Guest policy").
pub const POLICY_SMT: u64 = 1 << 16;
pub const POLICY_MIGRATE_MA: u64 = 1 << 18;
pub const POLICY_DEBUG: u64 = 1 << 19;

/// Errors of [`verify_snp_report`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnpError {
    #[error("attestation report is {0} bytes, expected {SNP_REPORT_LEN}")]
    ReportLength(usize),
    #[error("unsupported attestation report version {0} (2 or 3)")]
    UnsupportedVersion(u32),
    #[error("unsupported report signature algorithm {0} (1 = ECDSA P-384/SHA-384)")]
    UnsupportedSignatureAlgorithm(u32),
    #[error("invalid pinned AMD root: {0}")]
    InvalidRoot(String),
    #[error("certificate {cert}: cannot parse: {reason}")]
    CertificateParse { cert: &'static str, reason: String },
    #[error("certificate {cert} expired at {not_after_s} (now {now_s})")]
    CertificateExpired {
        cert: &'static str,
        not_after_s: i64,
        now_s: i64,
    },
    #[error("certificate {cert} not valid before {not_before_s} (now {now_s})")]
    CertificateNotYetValid {
        cert: &'static str,
        not_before_s: i64,
        now_s: i64,
    },
    #[error("the ARK is not one of the pinned AMD roots")]
    UntrustedRoot,
    #[error("certificate {cert}: issuer does not match the subject of its issuer")]
    IssuerMismatch { cert: &'static str },
    #[error("certificate {cert}: RSA-PSS signature does not verify with the issuer key")]
    CertificateSignatureInvalid { cert: &'static str },
    #[error("VCEK: {0}")]
    VcekKey(String),
    #[error("report signature is malformed")]
    ReportSignatureMalformed,
    #[error("report signature does not verify with the VCEK key")]
    ReportSignatureInvalid,
    #[error("VCEK TCB extension {0} missing or malformed")]
    VcekTcbExtension(&'static str),
    #[error("reported TCB {field} {reported} exceeds the VCEK's {vcek}")]
    TcbExceedsVcek {
        field: &'static str,
        reported: u8,
        vcek: u8,
    },
    #[error("reported TCB {field} {reported} below the policy minimum {minimum}")]
    TcbBelowMinimum {
        field: &'static str,
        reported: u8,
        minimum: u8,
    },
    #[error("report chip_id differs from the VCEK hwID")]
    ChipIdMismatch,
    #[error("guest policy allows debugging (policy {0:#x})")]
    DebugPolicy(u64),
    #[error("guest policy allows SMT (policy {0:#x}) and SMT is not allowed")]
    SmtPolicy(u64),
    #[error("guest policy allows a migration agent (policy {0:#x}) and that is not allowed")]
    MigrationAgentPolicy(u64),
    #[error("report VMPL {vmpl} above the maximum {max}")]
    Vmpl { vmpl: u32, max: u32 },
    #[error("measurement mismatch: expected {expected}, got {actual}")]
    MeasurementMismatch { expected: String, actual: String },
    #[error(
        "report_data does not bind the expected key: expected prefix {expected}, got {actual}"
    )]
    ReportDataMismatch { expected: String, actual: String },
}

/// A TCB version (Milan/Genoa layout: byte 0 bootloader, 1 TEE, 6 SNP, 7 microcode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnpTcb {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl SnpTcb {
    fn from_le(b: &[u8]) -> Self {
        Self {
            bootloader: b[0],
            tee: b[1],
            snp: b[6],
            microcode: b[7],
        }
    }

    fn fields(&self) -> [(&'static str, u8); 4] {
        [
            ("bootloader", self.bootloader),
            ("tee", self.tee),
            ("snp", self.snp),
            ("microcode", self.microcode),
        ]
    }
}

/// The fields of a parsed attestation report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpReport {
    pub version: u32,
    pub guest_svn: u32,
    pub policy: u64,
    pub vmpl: u32,
    pub signature_algo: u32,
    pub current_tcb: SnpTcb,
    pub reported_tcb: SnpTcb,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub chip_id: [u8; 64],
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

impl SnpReport {
    /// Parse the report layout (no signature check).
    pub fn parse(raw: &[u8]) -> Result<Self, SnpError> {
        if raw.len() != SNP_REPORT_LEN {
            return Err(SnpError::ReportLength(raw.len()));
        }
        let version = le_u32(raw, 0x00);
        if !(2..=3).contains(&version) {
            return Err(SnpError::UnsupportedVersion(version));
        }
        let signature_algo = le_u32(raw, 0x34);
        if signature_algo != 1 {
            return Err(SnpError::UnsupportedSignatureAlgorithm(signature_algo));
        }
        Ok(Self {
            version,
            guest_svn: le_u32(raw, 0x04),
            policy: le_u64(raw, 0x08),
            vmpl: le_u32(raw, 0x30),
            signature_algo,
            current_tcb: SnpTcb::from_le(&raw[0x38..0x40]),
            report_data: arr(raw, 0x50),
            measurement: arr(raw, 0x90),
            host_data: arr(raw, 0xC0),
            reported_tcb: SnpTcb::from_le(&raw[0x180..0x188]),
            chip_id: arr(raw, 0x1A0),
        })
    }
}

/// Pinned AMD roots: (ARK, ASK) pairs, DER.
#[derive(Clone, Debug)]
pub struct SnpTrust {
    chains: Vec<(Vec<u8>, Vec<u8>)>,
}

fn pem_der(pem: &str) -> Result<Vec<u8>, SnpError> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| SnpError::InvalidRoot(e.to_string()))?;
    if p.label != "CERTIFICATE" {
        return Err(SnpError::InvalidRoot(format!("PEM label {}", p.label)));
    }
    Ok(p.contents)
}

impl SnpTrust {
    /// A trust set from one ARK/ASK pair (PEM). The ARK must be self-signed.
    pub fn from_pems(ark_pem: &str, ask_pem: &str) -> Result<Self, SnpError> {
        let ark = pem_der(ark_pem)?;
        let ask = pem_der(ask_pem)?;
        let ark_cert = parse("ARK", &ark).map_err(|e| SnpError::InvalidRoot(e.to_string()))?;
        let ark_key =
            rsa_key("ARK", &ark_cert).map_err(|e| SnpError::InvalidRoot(e.to_string()))?;
        check_pss("ARK", &ark_cert, &ark_key)
            .map_err(|_| SnpError::InvalidRoot("ARK is not self-signed".into()))?;
        Ok(Self {
            chains: vec![(ark, ask)],
        })
    }

    /// The embedded AMD Milan ARK and ASK.
    pub fn milan() -> Self {
        match Self::from_pems(AMD_MILAN_ARK_PEM, AMD_MILAN_ASK_PEM) {
            Ok(t) => t,
            // Checked by the test suite (fingerprint and self-signature tests).
            Err(e) => panic!("embedded AMD Milan roots are invalid: {e}"),
        }
    }

    /// SHA-256 fingerprints of the pinned ARKs.
    pub fn ark_fingerprints(&self) -> Vec<[u8; 32]> {
        self.chains
            .iter()
            .map(|(ark, _)| Sha256::digest(ark).into())
            .collect()
    }
}

/// What a report must satisfy besides its signature chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpPolicy {
    /// Minimum reported TCB (each component).
    pub min_tcb: SnpTcb,
    pub allow_debug: bool,
    pub allow_smt: bool,
    pub allow_migration_agent: bool,
    /// Highest VMPL accepted (0 = only the most privileged level).
    pub max_vmpl: u32,
    pub expected_measurement: Option<[u8; 48]>,
    /// report_data must start with these bytes (see [`crate::platform::report_data_binding`]).
    pub report_data_prefix: Option<Vec<u8>>,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        Self {
            min_tcb: SnpTcb::default(),
            allow_debug: false,
            allow_smt: true,
            allow_migration_agent: false,
            max_vmpl: 0,
            expected_measurement: None,
            report_data_prefix: None,
        }
    }
}

fn parse<'a>(name: &'static str, der: &'a [u8]) -> Result<X509Certificate<'a>, SnpError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| SnpError::CertificateParse {
        cert: name,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(SnpError::CertificateParse {
            cert: name,
            reason: "trailing bytes".into(),
        });
    }
    Ok(cert)
}

fn rsa_key(name: &'static str, cert: &X509Certificate<'_>) -> Result<rsa::RsaPublicKey, SnpError> {
    rsa::RsaPublicKey::from_pkcs1_der(&cert.public_key().subject_public_key.data).map_err(|e| {
        SnpError::CertificateParse {
            cert: name,
            reason: format!("not an RSA key: {e}"),
        }
    })
}

/// RSASSA-PSS / SHA-384 / salt 48 (the AMD KDS parameters) over the TBS certificate.
fn check_pss(
    name: &'static str,
    cert: &X509Certificate<'_>,
    issuer: &rsa::RsaPublicKey,
) -> Result<(), SnpError> {
    let digest = Sha384::digest(cert.tbs_certificate.as_ref());
    issuer
        .verify(
            rsa::Pss::new_with_salt::<Sha384>(48),
            &digest,
            &cert.signature_value.data,
        )
        .map_err(|_| SnpError::CertificateSignatureInvalid { cert: name })
}

fn check_validity(
    name: &'static str,
    cert: &X509Certificate<'_>,
    now_s: i64,
) -> Result<(), SnpError> {
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    if now_s < nb {
        return Err(SnpError::CertificateNotYetValid {
            cert: name,
            not_before_s: nb,
            now_s,
        });
    }
    if now_s > na {
        return Err(SnpError::CertificateExpired {
            cert: name,
            not_after_s: na,
            now_s,
        });
    }
    Ok(())
}

/// Value of an extension: an INTEGER (SPL) as u8.
fn ext_int(cert: &X509Certificate<'_>, oid: &'static str) -> Result<u8, SnpError> {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oid)
        .ok_or(SnpError::VcekTcbExtension(oid))?;
    match ext.value {
        [0x02, len, body @ ..] if usize::from(*len) == body.len() && !body.is_empty() => {
            // Strip a sign byte; the value must fit u8.
            let body = if body.len() == 2 && body[0] == 0 {
                &body[1..]
            } else {
                body
            };
            match body {
                [v] => Ok(*v),
                _ => Err(SnpError::VcekTcbExtension(oid)),
            }
        }
        _ => Err(SnpError::VcekTcbExtension(oid)),
    }
}

fn ext_hwid(cert: &X509Certificate<'_>) -> Option<Vec<u8>> {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == OID_HWID)?;
    match ext.value {
        [0x04, 0x40, body @ ..] if body.len() == 64 => Some(body.to_vec()),
        v if v.len() == 64 => Some(v.to_vec()),
        _ => None,
    }
}

/// Verify `report` (raw 0x4A0 bytes) with its `vcek_der` at `now_s` against `trust` and `policy`.
pub fn verify_snp_report(
    report: &[u8],
    vcek_der: &[u8],
    trust: &SnpTrust,
    now_s: i64,
    policy: &SnpPolicy,
) -> Result<SnpReport, SnpError> {
    let parsed = SnpReport::parse(report)?;
    let vcek = parse("VCEK", vcek_der)?;

    // Chain: the VCEK's issuer must be one pinned ASK that verifies it.
    let mut anchored = None;
    for (ark_der, ask_der) in &trust.chains {
        let ask = parse("ASK", ask_der)?;
        if ask.subject().as_raw() == vcek.issuer().as_raw() {
            anchored = Some((ark_der, ask));
            break;
        }
    }
    let Some((ark_der, ask)) = anchored else {
        return Err(SnpError::UntrustedRoot);
    };
    let ark = parse("ARK", ark_der)?;
    let ark_key = rsa_key("ARK", &ark)?;
    if ark.issuer().as_raw() != ark.subject().as_raw() {
        return Err(SnpError::UntrustedRoot);
    }
    check_pss("ARK", &ark, &ark_key).map_err(|_| SnpError::UntrustedRoot)?;
    check_validity("ARK", &ark, now_s)?;
    if ask.issuer().as_raw() != ark.subject().as_raw() {
        return Err(SnpError::IssuerMismatch { cert: "ASK" });
    }
    check_pss("ASK", &ask, &ark_key)?;
    check_validity("ASK", &ask, now_s)?;
    let ask_key = rsa_key("ASK", &ask)?;
    check_pss("VCEK", &vcek, &ask_key)?;
    check_validity("VCEK", &vcek, now_s)?;

    // Report signature.
    let spki = vcek.public_key().raw;
    let pk = <p384::PublicKey as p384::pkcs8::DecodePublicKey>::from_public_key_der(spki)
        .map_err(|e| SnpError::VcekKey(e.to_string()))?;
    let key = p384::ecdsa::VerifyingKey::from(pk);
    let mut rs = [0u8; 96];
    let (r_le, s_le) = (&report[0x2A0..0x2A0 + 72], &report[0x2E8..0x2E8 + 72]);
    if r_le[48..].iter().chain(&s_le[48..]).any(|b| *b != 0) {
        return Err(SnpError::ReportSignatureMalformed);
    }
    for i in 0..48 {
        rs[i] = r_le[47 - i];
        rs[48 + i] = s_le[47 - i];
    }
    let sig =
        p384::ecdsa::Signature::from_slice(&rs).map_err(|_| SnpError::ReportSignatureMalformed)?;
    key.verify(&report[..SIGNED_LEN], &sig)
        .map_err(|_| SnpError::ReportSignatureInvalid)?;

    // TCB against the VCEK and the policy minimum.
    let vcek_tcb = SnpTcb {
        bootloader: ext_int(&vcek, OID_BL_SPL)?,
        tee: ext_int(&vcek, OID_TEE_SPL)?,
        snp: ext_int(&vcek, OID_SNP_SPL)?,
        microcode: ext_int(&vcek, OID_UCODE_SPL)?,
    };
    check_claims(&parsed, &vcek_tcb, ext_hwid(&vcek).as_deref(), policy)?;
    Ok(parsed)
}

/// The checks after the signature: TCB vs the VCEK and the minimum, chip id, guest policy, VMPL,
/// measurement, report_data binding.
fn check_claims(
    parsed: &SnpReport,
    vcek_tcb: &SnpTcb,
    hwid: Option<&[u8]>,
    policy: &SnpPolicy,
) -> Result<(), SnpError> {
    for ((field, reported), (_, v)) in parsed
        .reported_tcb
        .fields()
        .into_iter()
        .zip(vcek_tcb.fields())
    {
        if reported > v {
            return Err(SnpError::TcbExceedsVcek {
                field,
                reported,
                vcek: v,
            });
        }
    }
    for ((field, reported), (_, minimum)) in parsed
        .reported_tcb
        .fields()
        .into_iter()
        .zip(policy.min_tcb.fields())
    {
        if reported < minimum {
            return Err(SnpError::TcbBelowMinimum {
                field,
                reported,
                minimum,
            });
        }
    }
    if let Some(hwid) = hwid {
        if hwid != parsed.chip_id.as_slice() {
            return Err(SnpError::ChipIdMismatch);
        }
    }

    // Guest policy and VMPL.
    if parsed.policy & POLICY_DEBUG != 0 && !policy.allow_debug {
        return Err(SnpError::DebugPolicy(parsed.policy));
    }
    if parsed.policy & POLICY_SMT != 0 && !policy.allow_smt {
        return Err(SnpError::SmtPolicy(parsed.policy));
    }
    if parsed.policy & POLICY_MIGRATE_MA != 0 && !policy.allow_migration_agent {
        return Err(SnpError::MigrationAgentPolicy(parsed.policy));
    }
    if parsed.vmpl > policy.max_vmpl {
        return Err(SnpError::Vmpl {
            vmpl: parsed.vmpl,
            max: policy.max_vmpl,
        });
    }

    if let Some(want) = &policy.expected_measurement {
        if want != &parsed.measurement {
            return Err(SnpError::MeasurementMismatch {
                expected: hex::encode(want),
                actual: hex::encode(parsed.measurement),
            });
        }
    }
    if let Some(prefix) = &policy.report_data_prefix {
        if prefix.len() > 64 || !parsed.report_data.starts_with(prefix) {
            return Err(SnpError::ReportDataMismatch {
                expected: hex::encode(prefix),
                actual: hex::encode(parsed.report_data),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &[u8] = include_bytes!("../tests/fixtures/sev-snp/report_milan.bin");

    fn fixture() -> (SnpReport, SnpTcb) {
        let r = SnpReport::parse(REPORT).unwrap();
        (r.clone(), r.reported_tcb)
    }

    #[test]
    fn claims_of_the_fixture_pass_the_default_policy() {
        let (r, tcb) = fixture();
        check_claims(&r, &tcb, Some(&r.chip_id), &SnpPolicy::default()).unwrap();
    }

    #[test]
    fn reported_tcb_above_the_vcek_is_refused() {
        let (r, mut tcb) = fixture();
        tcb.snp -= 1;
        assert_eq!(
            check_claims(&r, &tcb, None, &SnpPolicy::default()),
            Err(SnpError::TcbExceedsVcek {
                field: "snp",
                reported: 8,
                vcek: 7
            })
        );
    }

    #[test]
    fn chip_id_other_than_the_vcek_hwid_is_refused() {
        let (r, tcb) = fixture();
        let other = [0u8; 64];
        assert_eq!(
            check_claims(&r, &tcb, Some(&other), &SnpPolicy::default()),
            Err(SnpError::ChipIdMismatch)
        );
    }

    #[test]
    fn debug_policy_is_refused_unless_allowed() {
        let (mut r, tcb) = fixture();
        r.policy |= POLICY_DEBUG;
        assert_eq!(
            check_claims(&r, &tcb, None, &SnpPolicy::default()),
            Err(SnpError::DebugPolicy(r.policy))
        );
        let allow = SnpPolicy {
            allow_debug: true,
            ..SnpPolicy::default()
        };
        check_claims(&r, &tcb, None, &allow).unwrap();
    }

    #[test]
    fn smt_and_migration_agent_follow_the_policy() {
        let (mut r, tcb) = fixture();
        let no_smt = SnpPolicy {
            allow_smt: false,
            ..SnpPolicy::default()
        };
        assert_eq!(
            check_claims(&r, &tcb, None, &no_smt),
            Err(SnpError::SmtPolicy(0x30000))
        );
        r.policy |= POLICY_MIGRATE_MA;
        assert_eq!(
            check_claims(&r, &tcb, None, &SnpPolicy::default()),
            Err(SnpError::MigrationAgentPolicy(r.policy))
        );
    }

    #[test]
    fn vmpl_above_the_maximum_is_refused() {
        let (mut r, tcb) = fixture();
        r.vmpl = 1;
        assert_eq!(
            check_claims(&r, &tcb, None, &SnpPolicy::default()),
            Err(SnpError::Vmpl { vmpl: 1, max: 0 })
        );
    }

    #[test]
    fn report_layout_is_checked() {
        assert_eq!(
            SnpReport::parse(&REPORT[..100]),
            Err(SnpError::ReportLength(100))
        );
        let mut v = REPORT.to_vec();
        v[0] = 9;
        assert_eq!(SnpReport::parse(&v), Err(SnpError::UnsupportedVersion(9)));
        let mut v = REPORT.to_vec();
        v[0x34] = 2;
        assert_eq!(
            SnpReport::parse(&v),
            Err(SnpError::UnsupportedSignatureAlgorithm(2))
        );
    }
}
