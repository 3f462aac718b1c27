//! Verification of AWS Nitro attestation documents against pinned roots with an injected clock.
//!
//! Checks (in this order, each failing with its own [`AttestationError`] variant):
//! 1. COSE_Sign1 structure (array of 4, optional tag 18, byte strings, payload 1..16384 bytes,
//!    96-byte signature) and protected header exactly `{1: -35}` (ES384).
//! 2. Payload field types and sizes (module_id, digest, timestamp, pcrs with indices 0,1,2,3,4,8,
//!    certificate, cabundle, optional public_key / user_data / nonce), digest == "SHA384".
//! 3. Certificate path: `cabundle[0]` must be issued by (or be) one of the pinned roots, then each
//!    `cabundle[i]` issues `cabundle[i+1]` and the last one issues the leaf `certificate`; every
//!    certificate (root included) must be valid at `now_ms`; names chain; ECDSA P-384/SHA-384
//!    signatures verify; CA certificates carry basicConstraints CA=true with path length
//!    respected and keyCertSign when key usage is present; the leaf is not a CA and has
//!    digitalSignature when key usage is present; no unknown critical extension.
//! 4. ES384 signature of the COSE Sig_structure by the leaf key.
//! 5. PCRs equal to the expected values, for the indices given only.

use p384::ecdsa::signature::Verifier;
use p384::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA384;
use x509_parser::prelude::FromDer;

use crate::cose::CoseSign1;
use crate::doc::AttestationFields;
use crate::pcrs::{ExpectedPcrs, Pcrs, PCR_LEN};

/// The AWS Nitro Enclaves root certificate (CN=aws.nitro-enclaves, G1, valid until 2049).
pub const AWS_NITRO_ROOT_PEM: &str = include_str!("../testdata/aws-nitro-root.pem");

/// SHA-256 fingerprint (of the DER) of [`AWS_NITRO_ROOT_PEM`], as published by AWS.
pub const AWS_NITRO_ROOT_SHA256: &str =
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

/// Errors of [`verify_attestation`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    #[error("malformed CBOR: {0}")]
    Cbor(String),
    #[error("invalid COSE_Sign1: {0}")]
    CoseStructure(String),
    #[error("unsupported COSE algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("invalid attestation field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("unsupported PCR digest {0:?} (expected SHA384)")]
    UnsupportedDigest(String),
    #[error("invalid pinned root certificate: {0}")]
    InvalidRoot(String),
    #[error("certificate {cert}: cannot parse: {reason}")]
    CertificateParse { cert: String, reason: String },
    #[error("certificate {cert}: unsupported algorithm: {reason}")]
    UnsupportedCertificateAlgorithm { cert: String, reason: String },
    #[error("certificate {cert} expired at {not_after_s} (now {now_s})")]
    CertificateExpired {
        cert: String,
        not_after_s: i64,
        now_s: i64,
    },
    #[error("certificate {cert} not valid before {not_before_s} (now {now_s})")]
    CertificateNotYetValid {
        cert: String,
        not_before_s: i64,
        now_s: i64,
    },
    #[error("certificate {cert}: issuer does not match the subject of its issuer certificate")]
    IssuerMismatch { cert: String },
    #[error("certificate {cert}: signature does not verify with the issuer key")]
    CertificateSignatureInvalid { cert: String },
    #[error("certificate {cert}: basic constraints violated: {reason}")]
    BasicConstraints { cert: String, reason: String },
    #[error("certificate {cert}: key usage violated: {reason}")]
    KeyUsage { cert: String, reason: String },
    #[error("certificate {cert}: unsupported critical extension {oid}")]
    UnknownCriticalExtension { cert: String, oid: String },
    #[error("certificate chain does not lead to a pinned root")]
    UntrustedRoot,
    #[error("malformed document signature")]
    DocumentSignatureMalformed,
    #[error("document signature does not verify with the leaf certificate key")]
    DocumentSignatureInvalid,
    #[error("PCR{index} missing from the document")]
    PcrMissing { index: u16 },
    #[error("PCR{index} mismatch: expected {expected}, got {actual}")]
    PcrMismatch {
        index: u16,
        expected: String,
        actual: String,
    },
}

/// A pinned trust anchor (DER certificate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootCert {
    der: Vec<u8>,
}

impl RootCert {
    pub fn from_der(der: &[u8]) -> Result<Self, AttestationError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| AttestationError::InvalidRoot(e.to_string()))?;
        if !rest.is_empty() {
            return Err(AttestationError::InvalidRoot("trailing bytes".into()));
        }
        p384_key(&cert).map_err(|_| AttestationError::InvalidRoot("not a P-384 key".into()))?;
        Ok(Self { der: der.to_vec() })
    }

    /// Parse the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self, AttestationError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| AttestationError::InvalidRoot(e.to_string()))?;
        if pem.label != "CERTIFICATE" {
            return Err(AttestationError::InvalidRoot(format!(
                "PEM label {} is not CERTIFICATE",
                pem.label
            )));
        }
        Self::from_der(&pem.contents)
    }

    /// The embedded AWS Nitro Enclaves root.
    pub fn aws_nitro() -> Self {
        match Self::from_pem(AWS_NITRO_ROOT_PEM) {
            Ok(r) => r,
            // The embedded constant is checked by the test suite (fingerprint test).
            Err(e) => panic!("embedded AWS Nitro root is invalid: {e}"),
        }
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }
}

/// The result of a successful [`verify_attestation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAttestation {
    pub pcrs: Pcrs,
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
    pub module_id: String,
    /// Document timestamp, ms since the Unix epoch.
    pub timestamp: u64,
}

/// Verify a Nitro attestation document (see the module docs for the checks) at time `now_ms`
/// (ms since the Unix epoch) against the pinned `roots`, requiring the `expected` PCRs.
pub fn verify_attestation(
    document: &[u8],
    roots: &[RootCert],
    now_ms: u64,
    expected: &ExpectedPcrs,
) -> Result<VerifiedAttestation, AttestationError> {
    let cose = CoseSign1::parse(document)?;
    let fields = AttestationFields::parse(&cose.payload)?;
    if fields.digest != "SHA384" {
        return Err(AttestationError::UnsupportedDigest(fields.digest));
    }
    let mut pcrs = Pcrs::default();
    for (idx, v) in &fields.pcrs {
        let v: [u8; PCR_LEN] =
            v.as_slice()
                .try_into()
                .map_err(|_| AttestationError::InvalidField {
                    field: "pcrs",
                    reason: format!("PCR{idx} is {} bytes, SHA384 needs {PCR_LEN}", v.len()),
                })?;
        pcrs.insert(*idx, v);
    }

    let leaf_key = verify_chain(&fields.certificate, &fields.cabundle, roots, now_ms)?;

    let sig = p384::ecdsa::Signature::from_slice(&cose.signature)
        .map_err(|_| AttestationError::DocumentSignatureMalformed)?;
    let signed =
        CoseSign1::sig_structure(&cose.protected, &cose.payload).map_err(AttestationError::Cbor)?;
    leaf_key
        .verify(&signed, &sig)
        .map_err(|_| AttestationError::DocumentSignatureInvalid)?;

    for (index, want) in &expected.0 {
        let Some(got) = pcrs.get(*index) else {
            return Err(AttestationError::PcrMissing { index: *index });
        };
        if got != want {
            return Err(AttestationError::PcrMismatch {
                index: *index,
                expected: hex::encode(want),
                actual: hex::encode(got),
            });
        }
    }

    Ok(VerifiedAttestation {
        pcrs,
        public_key: fields.public_key,
        user_data: fields.user_data,
        nonce: fields.nonce,
        module_id: fields.module_id,
        timestamp: fields.timestamp,
    })
}

fn p384_key(cert: &X509Certificate<'_>) -> Result<p384::ecdsa::VerifyingKey, String> {
    let spki = cert.public_key().raw;
    let pk = p384::PublicKey::from_public_key_der(spki).map_err(|e| e.to_string())?;
    Ok(p384::ecdsa::VerifyingKey::from(pk))
}

fn parse_cert<'a>(name: &str, der: &'a [u8]) -> Result<X509Certificate<'a>, AttestationError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| AttestationError::CertificateParse {
            cert: name.to_string(),
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(AttestationError::CertificateParse {
            cert: name.to_string(),
            reason: "trailing bytes".into(),
        });
    }
    Ok(cert)
}

/// Check `cert`'s signature (ecdsa-with-SHA384) with `issuer_key`.
fn check_signature(
    name: &str,
    cert: &X509Certificate<'_>,
    issuer_key: &p384::ecdsa::VerifyingKey,
) -> Result<(), AttestationError> {
    if cert.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA384
        || cert.tbs_certificate.signature.algorithm != OID_SIG_ECDSA_WITH_SHA384
    {
        return Err(AttestationError::UnsupportedCertificateAlgorithm {
            cert: name.to_string(),
            reason: format!(
                "signature algorithm {} (only ecdsa-with-SHA384)",
                cert.signature_algorithm.algorithm
            ),
        });
    }
    let sig = p384::ecdsa::Signature::from_der(&cert.signature_value.data).map_err(|_| {
        AttestationError::CertificateSignatureInvalid {
            cert: name.to_string(),
        }
    })?;
    issuer_key
        .verify(cert.tbs_certificate.as_ref(), &sig)
        .map_err(|_| AttestationError::CertificateSignatureInvalid {
            cert: name.to_string(),
        })
}

fn check_validity(
    name: &str,
    cert: &X509Certificate<'_>,
    now_s: i64,
) -> Result<(), AttestationError> {
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    if now_s < nb {
        return Err(AttestationError::CertificateNotYetValid {
            cert: name.to_string(),
            not_before_s: nb,
            now_s,
        });
    }
    if now_s > na {
        return Err(AttestationError::CertificateExpired {
            cert: name.to_string(),
            not_after_s: na,
            now_s,
        });
    }
    Ok(())
}

fn check_critical_extensions(
    name: &str,
    cert: &X509Certificate<'_>,
) -> Result<(), AttestationError> {
    for ext in cert.extensions() {
        if ext.critical
            && matches!(
                ext.parsed_extension(),
                ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. }
            )
        {
            return Err(AttestationError::UnknownCriticalExtension {
                cert: name.to_string(),
                oid: ext.oid.to_id_string(),
            });
        }
    }
    Ok(())
}

/// CA checks; `cas_below` = number of CA certificates that follow this one in the path (the
/// leaf excluded), compared with pathLenConstraint.
fn check_ca(
    name: &str,
    cert: &X509Certificate<'_>,
    cas_below: usize,
) -> Result<(), AttestationError> {
    let bc_err = |reason: String| AttestationError::BasicConstraints {
        cert: name.to_string(),
        reason,
    };
    match cert.basic_constraints() {
        Ok(Some(bc)) => {
            if !bc.value.ca {
                return Err(bc_err("CA flag not set on an issuing certificate".into()));
            }
            if let Some(max) = bc.value.path_len_constraint {
                if cas_below > max as usize {
                    return Err(bc_err(format!(
                        "path length {cas_below} exceeds pathLenConstraint {max}"
                    )));
                }
            }
        }
        Ok(None) => {
            return Err(bc_err(
                "basicConstraints missing on an issuing certificate".into(),
            ))
        }
        Err(e) => return Err(bc_err(e.to_string())),
    }
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => Err(AttestationError::KeyUsage {
            cert: name.to_string(),
            reason: "keyCertSign not set on an issuing certificate".into(),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(AttestationError::KeyUsage {
            cert: name.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn check_leaf(name: &str, cert: &X509Certificate<'_>) -> Result<(), AttestationError> {
    match cert.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {
            return Err(AttestationError::BasicConstraints {
                cert: name.to_string(),
                reason: "leaf certificate is a CA".into(),
            })
        }
        Ok(_) => {}
        Err(e) => {
            return Err(AttestationError::BasicConstraints {
                cert: name.to_string(),
                reason: e.to_string(),
            })
        }
    }
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.digital_signature() => Err(AttestationError::KeyUsage {
            cert: name.to_string(),
            reason: "digitalSignature not set on the signing certificate".into(),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(AttestationError::KeyUsage {
            cert: name.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Validate root -> cabundle[0] -> ... -> cabundle[n-1] -> leaf; returns the leaf key.
fn verify_chain(
    leaf_der: &[u8],
    cabundle: &[Vec<u8>],
    roots: &[RootCert],
    now_ms: u64,
) -> Result<p384::ecdsa::VerifyingKey, AttestationError> {
    let now_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let names: Vec<String> = (0..cabundle.len())
        .map(|i| format!("cabundle[{i}]"))
        .collect();
    let cas = cabundle
        .iter()
        .zip(&names)
        .map(|(der, name)| parse_cert(name, der))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = parse_cert("certificate", leaf_der)?;
    let Some(first) = cas.first() else {
        return Err(AttestationError::InvalidField {
            field: "cabundle",
            reason: "empty".into(),
        });
    };

    // Anchor: a pinned root whose subject is cabundle[0]'s issuer and whose key signed it.
    let mut anchored = None;
    for root in roots {
        let Ok((_, rc)) = X509Certificate::from_der(&root.der) else {
            continue;
        };
        if rc.subject().as_raw() != first.issuer().as_raw() {
            continue;
        }
        let Ok(rkey) = p384_key(&rc) else { continue };
        if check_signature("cabundle[0]", first, &rkey).is_ok() {
            anchored = Some((root, rc, rkey));
            break;
        }
    }
    let Some((root, root_cert, root_key)) = anchored else {
        return Err(AttestationError::UntrustedRoot);
    };
    check_validity("root", &root_cert, now_s)?;
    // If cabundle[0] is the root itself it does not count towards the root's path length.
    let root_in_bundle = usize::from(cabundle[0] == root.der);
    check_ca("root", &root_cert, cas.len() - root_in_bundle)?;

    let n = cas.len();
    let mut issuer_key = root_key;
    for (i, cert) in cas.iter().enumerate() {
        let name = &names[i];
        check_validity(name, cert, now_s)?;
        if i > 0 {
            if cert.issuer().as_raw() != cas[i - 1].subject().as_raw() {
                return Err(AttestationError::IssuerMismatch { cert: name.clone() });
            }
            check_signature(name, cert, &issuer_key)?;
        }
        check_critical_extensions(name, cert)?;
        check_ca(name, cert, n - 1 - i)?;
        issuer_key =
            p384_key(cert).map_err(|reason| AttestationError::UnsupportedCertificateAlgorithm {
                cert: name.clone(),
                reason,
            })?;
    }

    let name = "certificate";
    check_validity(name, &leaf, now_s)?;
    if leaf.issuer().as_raw() != cas[n - 1].subject().as_raw() {
        return Err(AttestationError::IssuerMismatch { cert: name.into() });
    }
    check_signature(name, &leaf, &issuer_key)?;
    check_critical_extensions(name, &leaf)?;
    check_leaf(name, &leaf)?;
    p384_key(&leaf).map_err(|reason| AttestationError::UnsupportedCertificateAlgorithm {
        cert: name.into(),
        reason,
    })
}
