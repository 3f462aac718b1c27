//! Verification of Intel TDX DCAP quotes (v4/v5) with collateral, against the pinned Intel SGX
//! Root CA, at an injected time. The DCAP checks themselves are done by `dcap-qvl` (Phala):
//! PCK chain to the root with the root and PCK CRLs, TCB info and QE identity signatures by the
//! TCB signing chain, QE report signature and hash, the quote signature by the attestation key,
//! TCB level matching and TD attribute checks (debug refused). This module adds, each failing with
//! its own [`TdxError`] variant:
//! 1. the collateral time window (TCB info and QE identity issueDate/nextUpdate, both CRLs'
//!    thisUpdate/nextUpdate) at `now_s`, checked before anything else;
//! 2. the classification of dcap-qvl's failures into typed variants;
//! 3. the TCB status policy (UpToDate accepted; others only if listed; Revoked always refused);
//! 4. MRTD and RTMR0..3 against the expected values, and REPORTDATA starting with the TLS binding.

use serde::{Deserialize, Serialize};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// The Intel SGX Root CA (DER; also the TDX root), valid 2018-05-21..2049-12-31.
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("../roots/intel-sgx-root-ca.der");
/// SHA-256 fingerprint of [`INTEL_SGX_ROOT_CA_DER`].
pub const INTEL_SGX_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// Errors of [`verify_tdx_quote`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdxError {
    #[error("malformed collateral: {0}")]
    CollateralMalformed(String),
    #[error("collateral {what} expired at {next_update_s} (now {now_s})")]
    CollateralExpired {
        what: &'static str,
        next_update_s: i64,
        now_s: i64,
    },
    #[error("collateral {what} not valid before {issue_s} (now {now_s})")]
    CollateralNotYetValid {
        what: &'static str,
        issue_s: i64,
        now_s: i64,
    },
    #[error("malformed or unsupported quote: {0}")]
    QuoteMalformed(String),
    #[error("certificate chain or CRL does not verify to the pinned Intel root: {0}")]
    UntrustedChain(String),
    #[error("collateral signature invalid: {0}")]
    CollateralSignatureInvalid(String),
    #[error("QE report invalid: {0}")]
    QeReportInvalid(String),
    #[error("quote signature does not verify with the attestation key")]
    QuoteSignatureInvalid,
    #[error("TCB status Revoked")]
    TcbRevoked,
    #[error("TCB status {status} not accepted by the policy (advisories {advisory_ids:?})")]
    TcbStatusNotAccepted {
        status: String,
        advisory_ids: Vec<String>,
    },
    #[error("the TD is debuggable")]
    DebugEnabled,
    #[error("not a TDX quote (SGX enclave report)")]
    NotTdx,
    #[error("{register} mismatch: expected {expected}, got {actual}")]
    MeasurementMismatch {
        register: &'static str,
        expected: String,
        actual: String,
    },
    #[error("REPORTDATA does not bind the expected key: expected prefix {expected}, got {actual}")]
    ReportDataMismatch { expected: String, actual: String },
    #[error("quote verification failed: {0}")]
    Verification(String),
}

/// The collateral in dcap-qvl's `QuoteCollateralV3` JSON layout, binary fields as hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxCollateral {
    pub pck_crl_issuer_chain: String,
    pub root_ca_crl: String,
    pub pck_crl: String,
    pub tcb_info_issuer_chain: String,
    pub tcb_info: String,
    pub tcb_info_signature: String,
    pub qe_identity_issuer_chain: String,
    pub qe_identity: String,
    pub qe_identity_signature: String,
}

impl TdxCollateral {
    pub fn from_json(json: &[u8]) -> Result<Self, TdxError> {
        serde_json::from_slice(json).map_err(|e| TdxError::CollateralMalformed(e.to_string()))
    }

    /// The same JSON layout.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn to_qvl(&self) -> Result<dcap_qvl::QuoteCollateralV3, TdxError> {
        let h = |what: &str, s: &str| {
            hex::decode(s).map_err(|e| TdxError::CollateralMalformed(format!("{what}: {e}")))
        };
        Ok(dcap_qvl::QuoteCollateralV3 {
            pck_crl_issuer_chain: self.pck_crl_issuer_chain.clone(),
            root_ca_crl: h("root_ca_crl", &self.root_ca_crl)?,
            pck_crl: h("pck_crl", &self.pck_crl)?,
            tcb_info_issuer_chain: self.tcb_info_issuer_chain.clone(),
            tcb_info: self.tcb_info.clone(),
            tcb_info_signature: h("tcb_info_signature", &self.tcb_info_signature)?,
            qe_identity_issuer_chain: self.qe_identity_issuer_chain.clone(),
            qe_identity: self.qe_identity.clone(),
            qe_identity_signature: h("qe_identity_signature", &self.qe_identity_signature)?,
            pck_certificate_chain: None,
        })
    }
}

/// Expected TD measurements; `None` = not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TdxExpected {
    pub mrtd: Option<[u8; 48]>,
    pub rtmr: [Option<[u8; 48]>; 4],
}

/// Verification policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TdxPolicy {
    /// TCB statuses accepted besides "UpToDate" (e.g. "OutOfDate", "ConfigurationNeeded",
    /// "SWHardeningNeeded"). "Revoked" is refused whatever is listed.
    pub also_accept: Vec<String>,
    pub expected: TdxExpected,
    /// REPORTDATA must start with these bytes (see [`crate::platform::report_data_binding`]).
    pub report_data_prefix: Option<Vec<u8>>,
}

/// The verified TD report fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTdx {
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
    pub mrtd: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
    pub td_attributes: [u8; 8],
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dated {
    issue_date: String,
    next_update: String,
}

fn rfc3339(what: &'static str, s: &str) -> Result<i64, TdxError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| TdxError::CollateralMalformed(format!("{what} date {s:?}: {e}")))
}

fn window(what: &'static str, issue_s: i64, next_s: i64, now_s: i64) -> Result<(), TdxError> {
    if now_s < issue_s {
        return Err(TdxError::CollateralNotYetValid {
            what,
            issue_s,
            now_s,
        });
    }
    // nextUpdate is exclusive (as webpki treats CRLs): the collateral is stale from then on.
    if now_s >= next_s {
        return Err(TdxError::CollateralExpired {
            what,
            next_update_s: next_s,
            now_s,
        });
    }
    Ok(())
}

/// The collateral freshness check at `now_s`.
fn check_collateral_window(c: &TdxCollateral, now_s: i64) -> Result<(), TdxError> {
    for (what, json) in [("tcb_info", &c.tcb_info), ("qe_identity", &c.qe_identity)] {
        let d: Dated = serde_json::from_str(json)
            .map_err(|e| TdxError::CollateralMalformed(format!("{what}: {e}")))?;
        window(
            what,
            rfc3339(what, &d.issue_date)?,
            rfc3339(what, &d.next_update)?,
            now_s,
        )?;
    }
    for (what, hexder) in [("root_ca_crl", &c.root_ca_crl), ("pck_crl", &c.pck_crl)] {
        let der = hex::decode(hexder)
            .map_err(|e| TdxError::CollateralMalformed(format!("{what}: {e}")))?;
        let (_, crl) = CertificateRevocationList::from_der(&der)
            .map_err(|e| TdxError::CollateralMalformed(format!("{what}: {e}")))?;
        let next = crl
            .next_update()
            .ok_or_else(|| TdxError::CollateralMalformed(format!("{what}: no nextUpdate")))?;
        window(what, crl.last_update().timestamp(), next.timestamp(), now_s)?;
    }
    Ok(())
}

/// Map a dcap-qvl failure (an anyhow chain) to a typed error.
fn classify(msg: String) -> TdxError {
    let m = msg.to_ascii_lowercase();
    if m.contains("revoked") && m.contains("tcb status") {
        TdxError::TcbRevoked
    } else if m.contains("debug mode is enabled") {
        TdxError::DebugEnabled
    } else if m.contains("isv enclave report signature") {
        TdxError::QuoteSignatureInvalid
    } else if m.contains("signature is invalid for tcb_info")
        || m.contains("signature is invalid for qe_identity")
    {
        TdxError::CollateralSignatureInvalid(msg)
    } else if m.contains("qe_report") || m.contains("qe report") {
        TdxError::QeReportInvalid(msg)
    } else if m.contains("decode quote")
        || m.contains("unsupported dcap")
        || m.contains("tee type")
        || m.contains("qe vendor")
        || m.contains("must have version")
    {
        TdxError::QuoteMalformed(msg)
    } else if m.contains("certificate")
        || m.contains("crl")
        || m.contains("root ca")
        || m.contains("issuer")
        || m.contains("revocation")
    {
        TdxError::UntrustedChain(msg)
    } else {
        TdxError::Verification(msg)
    }
}

fn check_reg(
    register: &'static str,
    want: &Option<[u8; 48]>,
    got: &[u8; 48],
) -> Result<(), TdxError> {
    match want {
        Some(w) if w != got => Err(TdxError::MeasurementMismatch {
            register,
            expected: hex::encode(w),
            actual: hex::encode(got),
        }),
        _ => Ok(()),
    }
}

/// Verify a TDX `quote` with its `collateral` at `now_s` against the pinned `root_der` (normally
/// [`INTEL_SGX_ROOT_CA_DER`]) and `policy`.
pub fn verify_tdx_quote(
    quote: &[u8],
    collateral: &TdxCollateral,
    root_der: &[u8],
    now_s: i64,
    policy: &TdxPolicy,
) -> Result<VerifiedTdx, TdxError> {
    check_collateral_window(collateral, now_s)?;
    let now = u64::try_from(now_s).map_err(|_| TdxError::CollateralExpired {
        what: "time",
        next_update_s: 0,
        now_s,
    })?;
    let verifier = dcap_qvl::verify::QuoteVerifier::new(root_der.to_vec());
    let report = verifier
        .verify(quote, &collateral.to_qvl()?, now)
        .map_err(|e| classify(format!("{e:#}")))?;
    if report.status == "Revoked" {
        return Err(TdxError::TcbRevoked);
    }
    if report.status != "UpToDate" && !policy.also_accept.contains(&report.status) {
        return Err(TdxError::TcbStatusNotAccepted {
            status: report.status,
            advisory_ids: report.advisory_ids,
        });
    }
    let td = report.report.as_td10().ok_or(TdxError::NotTdx)?;
    let rtmr = [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3];
    check_reg("MRTD", &policy.expected.mrtd, &td.mr_td)?;
    for (i, (want, got)) in policy.expected.rtmr.iter().zip(&rtmr).enumerate() {
        const NAMES: [&str; 4] = ["RTMR0", "RTMR1", "RTMR2", "RTMR3"];
        check_reg(NAMES[i], want, got)?;
    }
    if let Some(prefix) = &policy.report_data_prefix {
        if prefix.len() > 64 || !td.report_data.starts_with(prefix) {
            return Err(TdxError::ReportDataMismatch {
                expected: hex::encode(prefix),
                actual: hex::encode(td.report_data),
            });
        }
    }
    Ok(VerifiedTdx {
        tcb_status: report.status,
        advisory_ids: report.advisory_ids,
        mrtd: td.mr_td,
        rtmr,
        report_data: td.report_data,
        td_attributes: td.td_attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failures that the real fixtures cannot produce with a valid signature map to their
    /// own variants (messages as dcap-qvl 0.7 words them).
    #[test]
    fn dcap_failures_are_classified() {
        assert_eq!(
            classify("TCB status is invalid: Revoked".into()),
            TdxError::TcbRevoked
        );
        assert_eq!(
            classify("Debug mode is enabled".into()),
            TdxError::DebugEnabled
        );
        assert_eq!(
            classify("ISV enclave report signature is invalid".into()),
            TdxError::QuoteSignatureInvalid
        );
        assert!(matches!(
            classify("Signature is invalid for tcb_info in quote_collateral".into()),
            TdxError::CollateralSignatureInvalid(_)
        ));
        assert!(matches!(
            classify("QE report hash mismatch".into()),
            TdxError::QeReportInvalid(_)
        ));
        assert!(matches!(
            classify("Failed to verify certificate chain: UnknownIssuer".into()),
            TdxError::UntrustedChain(_)
        ));
        assert!(matches!(
            classify("something else".into()),
            TdxError::Verification(_)
        ));
    }

    #[test]
    fn malformed_collateral_is_refused() {
        assert!(matches!(
            TdxCollateral::from_json(b"{}"),
            Err(TdxError::CollateralMalformed(_))
        ));
    }
}
