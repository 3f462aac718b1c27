//! One interface over the three TEE platforms: [`Platform`] (its ledger code), the
//! `--expect-measurement` syntax ([`ExpectedMeasurement`]), the evidence a master returns
//! ([`Evidence`]) and [`EvidenceVerifier`], implemented for Nitro, SEV-SNP and TDX.
//!
//! `--expect-measurement` values, one platform per flag:
//! * `nitro:pcr0=<96 hex>,pcr1=<hex>,pcr2=<hex>` (any PCR index; the same as `--expect-pcr`)
//! * `sev-snp:measurement=<96 hex>`
//! * `tdx:mrtd=<96 hex>,rtmr0=<hex>,rtmr1=..,rtmr2=..,rtmr3=..` (any subset)
//!
//! Key binding: the TLS certificate hash travels in Nitro's `user_data`; on SEV-SNP and TDX the
//! 64-byte report_data / REPORTDATA of attested TLS is
//! [`report_data_binding`]`(cert_sha256, nonce, enclave_pk)`
//! = SHA-256(certificate DER) || SHA-256(nonce || enclave Ed25519 key): the first half binds the
//! TLS connection, the second the verifier's fresh nonce and the enclave key the ledger registers.

use std::collections::BTreeMap;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::pcrs::{ExpectedPcrs, PCR_LEN};
use crate::sevsnp::{verify_snp_report, SnpError, SnpPolicy, SnpTrust};
use crate::tdx::{verify_tdx_quote, TdxCollateral, TdxError, TdxPolicy};
use crate::verify::{verify_attestation, AttestationError, RootCert};

/// A TEE platform; `code()` is the `platform: u8` of the ledger's Enclave object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Nitro,
    SevSnp,
    Tdx,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Nitro, Platform::SevSnp, Platform::Tdx];

    pub fn code(self) -> u8 {
        match self {
            Platform::Nitro => 0,
            Platform::SevSnp => 1,
            Platform::Tdx => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// The name used on the command line and in the master's attestation answer.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Nitro => "nitro",
            Platform::SevSnp => "sev-snp",
            Platform::Tdx => "tdx",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Platform {
    type Err = MeasurementParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| MeasurementParseError::UnknownPlatform(s.to_string()))
    }
}

/// Errors of parsing `--expect-measurement`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasurementParseError {
    #[error("expected PLATFORM:name=hex[,name=hex...], got {0:?}")]
    Syntax(String),
    #[error("unknown platform {0:?} (nitro, sev-snp, tdx)")]
    UnknownPlatform(String),
    #[error("{platform} has no register {name:?}")]
    UnknownRegister { platform: Platform, name: String },
    #[error("{name}: expected {expected} hex digits")]
    Value { name: String, expected: usize },
    #[error("{name} given twice")]
    Duplicate { name: String },
    #[error("{platform} measurement given twice")]
    DuplicatePlatform { platform: Platform },
}

/// Expected measurement values for one platform (only the registers given are compared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedMeasurement {
    Nitro(ExpectedPcrs),
    SevSnp {
        measurement: Option<[u8; 48]>,
    },
    Tdx {
        mrtd: Option<[u8; 48]>,
        rtmr: [Option<[u8; 48]>; 4],
    },
}

fn h48(name: &str, v: &str) -> Result<[u8; 48], MeasurementParseError> {
    let mut out = [0u8; 48];
    hex::decode_to_slice(v.trim(), &mut out).map_err(|_| MeasurementParseError::Value {
        name: name.to_string(),
        expected: 96,
    })?;
    Ok(out)
}

impl ExpectedMeasurement {
    pub fn platform(&self) -> Platform {
        match self {
            ExpectedMeasurement::Nitro(_) => Platform::Nitro,
            ExpectedMeasurement::SevSnp { .. } => Platform::SevSnp,
            ExpectedMeasurement::Tdx { .. } => Platform::Tdx,
        }
    }

    /// Nothing expected on `platform` (signature chain and binding are still verified).
    pub fn none(platform: Platform) -> Self {
        match platform {
            Platform::Nitro => ExpectedMeasurement::Nitro(ExpectedPcrs::none()),
            Platform::SevSnp => ExpectedMeasurement::SevSnp { measurement: None },
            Platform::Tdx => ExpectedMeasurement::Tdx {
                mrtd: None,
                rtmr: [None; 4],
            },
        }
    }

    /// True when no register is pinned.
    pub fn is_empty(&self) -> bool {
        match self {
            ExpectedMeasurement::Nitro(p) => p.0.is_empty(),
            ExpectedMeasurement::SevSnp { measurement } => measurement.is_none(),
            ExpectedMeasurement::Tdx { mrtd, rtmr } => {
                mrtd.is_none() && rtmr.iter().all(Option::is_none)
            }
        }
    }
}

impl FromStr for ExpectedMeasurement {
    type Err = MeasurementParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (platform, rest) = s
            .split_once(':')
            .ok_or_else(|| MeasurementParseError::Syntax(s.to_string()))?;
        let platform: Platform = platform.trim().parse()?;
        let mut seen = BTreeMap::new();
        for item in rest.split(',') {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| MeasurementParseError::Syntax(s.to_string()))?;
            let name = name.trim().to_ascii_lowercase();
            if seen
                .insert(name.clone(), value.trim().to_string())
                .is_some()
            {
                return Err(MeasurementParseError::Duplicate { name });
            }
        }
        let unknown = |name: &str| MeasurementParseError::UnknownRegister {
            platform,
            name: name.to_string(),
        };
        match platform {
            Platform::Nitro => {
                let mut pcrs = ExpectedPcrs::none();
                for (name, v) in &seen {
                    let index: u16 = name
                        .strip_prefix("pcr")
                        .and_then(|i| i.parse().ok())
                        .filter(|i| *i < 32)
                        .ok_or_else(|| unknown(name))?;
                    let mut val = [0u8; PCR_LEN];
                    hex::decode_to_slice(v, &mut val).map_err(|_| {
                        MeasurementParseError::Value {
                            name: name.clone(),
                            expected: 2 * PCR_LEN,
                        }
                    })?;
                    pcrs = pcrs.with(index, val);
                }
                Ok(ExpectedMeasurement::Nitro(pcrs))
            }
            Platform::SevSnp => {
                let mut measurement = None;
                for (name, v) in &seen {
                    match name.as_str() {
                        "measurement" => measurement = Some(h48(name, v)?),
                        _ => return Err(unknown(name)),
                    }
                }
                Ok(ExpectedMeasurement::SevSnp { measurement })
            }
            Platform::Tdx => {
                let (mut mrtd, mut rtmr) = (None, [None; 4]);
                for (name, v) in &seen {
                    match name.as_str() {
                        "mrtd" => mrtd = Some(h48(name, v)?),
                        "rtmr0" => rtmr[0] = Some(h48(name, v)?),
                        "rtmr1" => rtmr[1] = Some(h48(name, v)?),
                        "rtmr2" => rtmr[2] = Some(h48(name, v)?),
                        "rtmr3" => rtmr[3] = Some(h48(name, v)?),
                        _ => return Err(unknown(name)),
                    }
                }
                Ok(ExpectedMeasurement::Tdx { mrtd, rtmr })
            }
        }
    }
}

/// Parse every `--expect-measurement` flag: at most one per platform.
pub fn parse_expect_measurements(
    flags: &[String],
) -> Result<BTreeMap<Platform, ExpectedMeasurement>, MeasurementParseError> {
    let mut out = BTreeMap::new();
    for f in flags {
        let m: ExpectedMeasurement = f.parse()?;
        let platform = m.platform();
        if out.insert(platform, m).is_some() {
            return Err(MeasurementParseError::DuplicatePlatform { platform });
        }
    }
    Ok(out)
}

/// The report_data (SEV-SNP) / REPORTDATA (TDX) of attested TLS: SHA-256(certificate DER) ||
/// [`freshness_digest`]`(nonce, enclave_pk)`.
pub fn report_data_binding(
    cert_sha256: &[u8; 32],
    nonce: Option<&[u8]>,
    enclave_pk: &[u8; 32],
) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(cert_sha256);
    out[32..].copy_from_slice(&freshness_digest(nonce, enclave_pk));
    out
}

/// The second half of [`report_data_binding`]: SHA-256(nonce || enclave Ed25519 key) (the
/// nonce is 0..=64 bytes and the key a fixed 32, so the encoding is unambiguous).
pub fn freshness_digest(nonce: Option<&[u8]>, enclave_pk: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(nonce.unwrap_or_default());
    h.update(enclave_pk);
    h.finalize().into()
}

/// Attestation evidence as a master returns it.
#[derive(Clone, Debug)]
pub enum Evidence {
    /// A Nitro attestation document (COSE_Sign1).
    Nitro { document: Vec<u8> },
    /// An SEV-SNP report with the VCEK that signed it (DER).
    SevSnp { report: Vec<u8>, vcek: Vec<u8> },
    /// A TDX quote with its DCAP collateral.
    Tdx {
        quote: Vec<u8>,
        collateral: Box<TdxCollateral>,
    },
}

/// Errors of [`Evidence::decode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceDecodeError {
    #[error("SEV-SNP evidence shorter than a report ({0} bytes)")]
    SnpTooShort(usize),
    #[error("TDX evidence: bad quote length prefix")]
    TdxLength,
    #[error("TDX evidence: {0}")]
    TdxCollateral(TdxError),
}

impl Evidence {
    /// One byte string per evidence (the ledger's `register_enclave_platform_raw` argument):
    /// Nitro: the document; SEV-SNP: report (0x4A0 bytes) || VCEK DER; TDX: u32 LE quote length ||
    /// quote || collateral JSON.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Evidence::Nitro { document } => document.clone(),
            Evidence::SevSnp { report, vcek } => [report.as_slice(), vcek].concat(),
            Evidence::Tdx { quote, collateral } => {
                let len = u32::try_from(quote.len()).unwrap_or(u32::MAX);
                let mut out = len.to_le_bytes().to_vec();
                out.extend_from_slice(quote);
                out.extend_from_slice(&collateral.to_json());
                out
            }
        }
    }

    /// Inverse of [`Evidence::encode`] for `platform`.
    pub fn decode(platform: Platform, bytes: &[u8]) -> Result<Self, EvidenceDecodeError> {
        match platform {
            Platform::Nitro => Ok(Evidence::Nitro {
                document: bytes.to_vec(),
            }),
            Platform::SevSnp => {
                if bytes.len() < crate::sevsnp::SNP_REPORT_LEN {
                    return Err(EvidenceDecodeError::SnpTooShort(bytes.len()));
                }
                let (report, vcek) = bytes.split_at(crate::sevsnp::SNP_REPORT_LEN);
                Ok(Evidence::SevSnp {
                    report: report.to_vec(),
                    vcek: vcek.to_vec(),
                })
            }
            Platform::Tdx => {
                let (len, rest) = bytes
                    .split_first_chunk::<4>()
                    .ok_or(EvidenceDecodeError::TdxLength)?;
                let len = usize::try_from(u32::from_le_bytes(*len))
                    .map_err(|_| EvidenceDecodeError::TdxLength)?;
                if len > rest.len() {
                    return Err(EvidenceDecodeError::TdxLength);
                }
                let (quote, json) = rest.split_at(len);
                let collateral =
                    TdxCollateral::from_json(json).map_err(EvidenceDecodeError::TdxCollateral)?;
                Ok(Evidence::Tdx {
                    quote: quote.to_vec(),
                    collateral: Box::new(collateral),
                })
            }
        }
    }

    pub fn platform(&self) -> Platform {
        match self {
            Evidence::Nitro { .. } => Platform::Nitro,
            Evidence::SevSnp { .. } => Platform::SevSnp,
            Evidence::Tdx { .. } => Platform::Tdx,
        }
    }
}

/// What a verified piece of evidence establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvidence {
    pub platform: Platform,
    /// PCRs (Nitro) / measurement (SEV-SNP) / MRTD then RTMR0..3 (TDX).
    pub measurement: Vec<[u8; 48]>,
    /// Nitro: user_data; SEV-SNP / TDX: the 64-byte report data.
    pub binding_data: Vec<u8>,
    /// Nitro: the enclave's Ed25519 key from the document.
    pub public_key: Option<Vec<u8>>,
}

impl VerifiedEvidence {
    /// The registers compared with a ledger `EnclaveConfig`'s pcr0, pcr1, pcr2: Nitro PCR0..2
    /// (the first three PCRs present), SEV-SNP MEASUREMENT and two empty values, TDX MRTD,
    /// RTMR0, RTMR1.
    pub fn config_registers(&self) -> [Vec<u8>; 3] {
        let m = |i: usize| {
            self.measurement
                .get(i)
                .map(|v| v.to_vec())
                .unwrap_or_default()
        };
        match self.platform {
            Platform::Nitro | Platform::Tdx => [m(0), m(1), m(2)],
            Platform::SevSnp => [m(0), Vec::new(), Vec::new()],
        }
    }

    /// The enclave's Ed25519 key: Nitro's public_key; on SEV-SNP / TDX the first 32 bytes of
    /// the report data of the registration evidence.
    pub fn enclave_key(&self) -> Vec<u8> {
        match self.platform {
            Platform::Nitro => self.public_key.clone().unwrap_or_default(),
            Platform::SevSnp | Platform::Tdx => {
                self.binding_data.get(..32).unwrap_or_default().to_vec()
            }
        }
    }
}

/// Errors of [`EvidenceVerifier::verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence is for {evidence}, the expected measurement for {expected}")]
    PlatformMismatch {
        evidence: Platform,
        expected: Platform,
    },
    #[error("no {0} verifier configured")]
    NoVerifier(Platform),
    #[error(transparent)]
    Nitro(#[from] AttestationError),
    #[error(transparent)]
    SevSnp(#[from] SnpError),
    #[error(transparent)]
    Tdx(#[from] TdxError),
    #[error("attestation does not bind the expected TLS certificate / nonce")]
    Binding,
}

/// A verifier of one platform's evidence with injected time (`now_ms`, ms since the epoch).
/// `binding`: the 64-byte report data required on SEV-SNP/TDX, or the exact user_data on Nitro.
pub trait EvidenceVerifier: Send + Sync {
    fn platform(&self) -> Platform;
    fn verify(
        &self,
        evidence: &Evidence,
        expected: &ExpectedMeasurement,
        binding: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<VerifiedEvidence, EvidenceError>;
}

fn check_platform(
    me: Platform,
    evidence: &Evidence,
    expected: &ExpectedMeasurement,
) -> Result<(), EvidenceError> {
    for p in [evidence.platform(), expected.platform()] {
        if p != me {
            return Err(EvidenceError::PlatformMismatch {
                evidence: evidence.platform(),
                expected: expected.platform(),
            });
        }
    }
    Ok(())
}

/// Nitro documents against pinned roots.
pub struct NitroVerifier {
    pub roots: Vec<RootCert>,
}

impl EvidenceVerifier for NitroVerifier {
    fn platform(&self) -> Platform {
        Platform::Nitro
    }
    fn verify(
        &self,
        evidence: &Evidence,
        expected: &ExpectedMeasurement,
        binding: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<VerifiedEvidence, EvidenceError> {
        check_platform(Platform::Nitro, evidence, expected)?;
        let (Evidence::Nitro { document }, ExpectedMeasurement::Nitro(pcrs)) = (evidence, expected)
        else {
            return Err(EvidenceError::NoVerifier(Platform::Nitro));
        };
        let v = verify_attestation(document, &self.roots, now_ms, pcrs)?;
        if let Some(b) = binding {
            if v.user_data.as_deref() != Some(b) {
                return Err(EvidenceError::Binding);
            }
        }
        Ok(VerifiedEvidence {
            platform: Platform::Nitro,
            measurement: v.pcrs.iter().map(|(_, p)| *p).collect(),
            binding_data: v.user_data.unwrap_or_default(),
            public_key: v.public_key,
        })
    }
}

/// SEV-SNP reports against pinned AMD roots with a base policy (TCB minimum, guest policy);
/// the measurement and binding come per call.
pub struct SevSnpVerifier {
    pub trust: SnpTrust,
    pub policy: SnpPolicy,
}

impl EvidenceVerifier for SevSnpVerifier {
    fn platform(&self) -> Platform {
        Platform::SevSnp
    }
    fn verify(
        &self,
        evidence: &Evidence,
        expected: &ExpectedMeasurement,
        binding: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<VerifiedEvidence, EvidenceError> {
        check_platform(Platform::SevSnp, evidence, expected)?;
        let (Evidence::SevSnp { report, vcek }, ExpectedMeasurement::SevSnp { measurement }) =
            (evidence, expected)
        else {
            return Err(EvidenceError::NoVerifier(Platform::SevSnp));
        };
        let policy = SnpPolicy {
            expected_measurement: *measurement,
            report_data_prefix: binding.map(<[u8]>::to_vec),
            ..self.policy.clone()
        };
        let now_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let r = verify_snp_report(report, vcek, &self.trust, now_s, &policy)?;
        Ok(VerifiedEvidence {
            platform: Platform::SevSnp,
            measurement: vec![r.measurement],
            binding_data: r.report_data.to_vec(),
            public_key: None,
        })
    }
}

/// TDX quotes against the pinned Intel root with a base policy (accepted TCB statuses).
pub struct TdxVerifier {
    pub root_der: Vec<u8>,
    pub policy: TdxPolicy,
}

impl EvidenceVerifier for TdxVerifier {
    fn platform(&self) -> Platform {
        Platform::Tdx
    }
    fn verify(
        &self,
        evidence: &Evidence,
        expected: &ExpectedMeasurement,
        binding: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<VerifiedEvidence, EvidenceError> {
        check_platform(Platform::Tdx, evidence, expected)?;
        let (Evidence::Tdx { quote, collateral }, ExpectedMeasurement::Tdx { mrtd, rtmr }) =
            (evidence, expected)
        else {
            return Err(EvidenceError::NoVerifier(Platform::Tdx));
        };
        let mut policy = self.policy.clone();
        policy.expected.mrtd = *mrtd;
        policy.expected.rtmr = *rtmr;
        policy.report_data_prefix = binding.map(<[u8]>::to_vec);
        let now_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let v = verify_tdx_quote(quote, collateral, &self.root_der, now_s, &policy)?;
        let mut measurement = vec![v.mrtd];
        measurement.extend(v.rtmr);
        Ok(VerifiedEvidence {
            platform: Platform::Tdx,
            measurement,
            binding_data: v.report_data.to_vec(),
            public_key: None,
        })
    }
}

/// Verifiers for every platform a client trusts; dispatches on the evidence's platform.
pub struct Verifiers(pub Vec<Box<dyn EvidenceVerifier>>);

impl Verifiers {
    /// The production set: the AWS Nitro root (plus `extra_nitro_roots`), the AMD Milan roots
    /// with the default SNP policy, the Intel SGX Root CA with UpToDate-only TDX.
    pub fn production(extra_nitro_roots: Vec<RootCert>) -> Self {
        let mut roots = vec![RootCert::aws_nitro()];
        roots.extend(extra_nitro_roots);
        Verifiers(vec![
            Box::new(NitroVerifier { roots }),
            Box::new(SevSnpVerifier {
                trust: SnpTrust::milan(),
                policy: SnpPolicy::default(),
            }),
            Box::new(TdxVerifier {
                root_der: crate::tdx::INTEL_SGX_ROOT_CA_DER.to_vec(),
                policy: TdxPolicy::default(),
            }),
        ])
    }

    /// Verify `evidence` against the expectation for its platform (`expected` may hold one per
    /// platform; a platform without an entry is verified with nothing pinned).
    pub fn verify(
        &self,
        evidence: &Evidence,
        expected: &BTreeMap<Platform, ExpectedMeasurement>,
        binding: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<VerifiedEvidence, EvidenceError> {
        let platform = evidence.platform();
        let v = self
            .0
            .iter()
            .find(|v| v.platform() == platform)
            .ok_or(EvidenceError::NoVerifier(platform))?;
        let none = ExpectedMeasurement::none(platform);
        v.verify(
            evidence,
            expected.get(&platform).unwrap_or(&none),
            binding,
            now_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";

    #[test]
    fn platform_codes_round_trip() {
        for p in Platform::ALL {
            assert_eq!(Platform::from_code(p.code()), Some(p));
            assert_eq!(p.name().parse::<Platform>(), Ok(p));
        }
        assert_eq!(Platform::from_code(3), None);
        assert_eq!(
            [
                Platform::Nitro.code(),
                Platform::SevSnp.code(),
                Platform::Tdx.code()
            ],
            [0, 1, 2]
        );
    }

    #[test]
    fn parses_each_platform() {
        let n: ExpectedMeasurement = format!("nitro:pcr0={H},PCR2={H}").parse().unwrap();
        let ExpectedMeasurement::Nitro(p) = &n else {
            panic!("{n:?}")
        };
        assert_eq!(p.0.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        let s: ExpectedMeasurement = format!("sev-snp:measurement={H}").parse().unwrap();
        assert_eq!(
            s,
            ExpectedMeasurement::SevSnp {
                measurement: Some(h48("m", H).unwrap())
            }
        );
        let t: ExpectedMeasurement = format!("tdx:mrtd={H}, rtmr3={H}").parse().unwrap();
        let ExpectedMeasurement::Tdx { mrtd, rtmr } = t else {
            panic!()
        };
        assert!(mrtd.is_some() && rtmr[3].is_some() && rtmr[0].is_none());
    }

    #[test]
    fn refuses_bad_flags() {
        use MeasurementParseError as E;
        assert!(matches!(
            "nitro".parse::<ExpectedMeasurement>(),
            Err(E::Syntax(_))
        ));
        assert!(matches!(
            format!("sgx:mrenclave={H}").parse::<ExpectedMeasurement>(),
            Err(E::UnknownPlatform(_))
        ));
        assert!(matches!(
            format!("sev-snp:mrtd={H}").parse::<ExpectedMeasurement>(),
            Err(E::UnknownRegister { .. })
        ));
        assert!(matches!(
            format!("tdx:rtmr4={H}").parse::<ExpectedMeasurement>(),
            Err(E::UnknownRegister { .. })
        ));
        assert!(matches!(
            format!("nitro:pcr32={H}").parse::<ExpectedMeasurement>(),
            Err(E::UnknownRegister { .. })
        ));
        assert!(matches!(
            "tdx:mrtd=abcd".parse::<ExpectedMeasurement>(),
            Err(E::Value { expected: 96, .. })
        ));
        assert!(matches!(
            format!("tdx:mrtd={H},MRTD={H}").parse::<ExpectedMeasurement>(),
            Err(E::Duplicate { .. })
        ));
        assert!(matches!(
            "tdx:mrtd".parse::<ExpectedMeasurement>(),
            Err(E::Syntax(_))
        ));
        assert!(matches!(
            parse_expect_measurements(&[format!("tdx:mrtd={H}"), format!("tdx:rtmr0={H}")]),
            Err(E::DuplicatePlatform {
                platform: Platform::Tdx
            })
        ));
        let all = parse_expect_measurements(&[
            format!("tdx:mrtd={H}"),
            format!("sev-snp:measurement={H}"),
            format!("nitro:pcr0={H}"),
        ])
        .unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn binding_carries_cert_hash_then_nonce_and_key_hash() {
        let b = report_data_binding(&[9u8; 32], Some(b"nonce"), &[3u8; 32]);
        assert_eq!(&b[..32], &[9u8; 32]);
        let mut h = Sha256::new();
        h.update(b"nonce");
        h.update([3u8; 32]);
        assert_eq!(&b[32..], h.finalize().as_slice());
        // Another nonce or another enclave key changes the second half only.
        let other = report_data_binding(&[9u8; 32], Some(b"nonce2"), &[3u8; 32]);
        assert_eq!(other[..32], b[..32]);
        assert_ne!(other[32..], b[32..]);
        let other_key = report_data_binding(&[9u8; 32], Some(b"nonce"), &[4u8; 32]);
        assert_ne!(other_key[32..], b[32..]);
        assert_eq!(
            report_data_binding(&[9u8; 32], None, &[3u8; 32])[32..],
            Sha256::digest([3u8; 32])[..]
        );
    }
}
