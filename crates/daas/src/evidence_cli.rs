//! `daas verify-evidence`: offline verification of TEE evidence files at a given time, against
//! the pinned roots (AWS Nitro, AMD Milan ARK/ASK, Intel SGX Root CA) and `--expect-measurement`
//! values. What an admin runs before registering an SEV-SNP / TDX enclave on Sui with
//! `staking::register_attested_enclave` (contracts/SPEC.md), and what `--expect-measurement`
//! means for each platform (`daas_tee::platform`).
//!
//! `daas attest` / `daas join` take the same `--expect-measurement` values for masters on any
//! platform (`daas_protocol::attested_platform`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use daas_tee::{parse_expect_measurements, Evidence, Platform, RootCert, Verifiers};

#[derive(Args, Clone, Debug)]
pub struct EvidenceArgs {
    /// nitro, sev-snp or tdx.
    #[arg(long)]
    pub platform: String,
    /// Nitro: the attestation document (binary COSE_Sign1).
    #[arg(long)]
    pub document: Option<PathBuf>,
    /// SEV-SNP: the attestation report (binary, 1184 bytes).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// SEV-SNP: the VCEK that signed it (DER).
    #[arg(long)]
    pub vcek: Option<PathBuf>,
    /// TDX: the DCAP quote (binary).
    #[arg(long)]
    pub quote: Option<PathBuf>,
    /// TDX: the collateral (dcap-qvl QuoteCollateralV3 JSON).
    #[arg(long)]
    pub collateral: Option<PathBuf>,
    /// Nitro: extra PEM root (the simulated enclave's dev root).
    #[arg(long)]
    pub trust_root: Option<PathBuf>,
    /// Expected measurement, e.g. `sev-snp:measurement=<hex>`, `tdx:mrtd=<hex>,rtmr0=<hex>`,
    /// `nitro:pcr0=<hex>,pcr1=<hex>,pcr2=<hex>`. Required unless --allow-unpinned.
    #[arg(long = "expect-measurement")]
    pub expect_measurement: Vec<String>,
    /// Required prefix of the report data (hex; Nitro: the exact user_data).
    #[arg(long)]
    pub report_data: Option<String>,
    /// Verification time, Unix seconds (default: now).
    #[arg(long)]
    pub at: Option<u64>,
    /// Accept evidence without a pinned measurement (chain, signature and policy only).
    #[arg(long)]
    pub allow_unpinned: bool,
}

fn read(p: &Option<PathBuf>, flag: &str) -> Result<Vec<u8>> {
    let p: &Path = p
        .as_deref()
        .with_context(|| format!("--{flag} is required for this platform"))?;
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// Verify as `a` says; returns the JSON report printed by the command.
pub fn verify(a: &EvidenceArgs) -> Result<serde_json::Value> {
    let platform: Platform = a.platform.parse()?;
    let expected = parse_expect_measurements(&a.expect_measurement)?;
    let pinned = expected.get(&platform).is_some_and(|m| !m.is_empty());
    if !pinned && !a.allow_unpinned {
        bail!("no --expect-measurement for {platform}: refusing to trust an unpinned measurement (--allow-unpinned to only check the evidence)");
    }
    let evidence = match platform {
        Platform::Nitro => Evidence::Nitro {
            document: read(&a.document, "document")?,
        },
        Platform::SevSnp => Evidence::SevSnp {
            report: read(&a.report, "report")?,
            vcek: read(&a.vcek, "vcek")?,
        },
        Platform::Tdx => Evidence::Tdx {
            quote: read(&a.quote, "quote")?,
            collateral: Box::new(daas_tee::tdx::TdxCollateral::from_json(&read(
                &a.collateral,
                "collateral",
            )?)?),
        },
    };
    let mut extra = Vec::new();
    if let Some(p) = &a.trust_root {
        let pem = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        extra.push(RootCert::from_pem(&pem)?);
    }
    let binding = a
        .report_data
        .as_deref()
        .map(hex::decode)
        .transpose()
        .context("--report-data takes hex")?;
    let now_ms = match a.at {
        Some(s) => s.saturating_mul(1000),
        None => daas_protocol::now_ms(),
    };
    let v = Verifiers::production(extra).verify(
        &evidence,
        &expected
            .into_iter()
            .filter(|(p, _)| *p == platform)
            .collect::<BTreeMap<_, _>>(),
        binding.as_deref(),
        now_ms,
    )?;
    Ok(serde_json::json!({
        "platform": v.platform.name(),
        "platform_code": v.platform.code(),
        "measurement": v.measurement.iter().map(hex::encode).collect::<Vec<_>>(),
        "config_registers": v.config_registers().iter().map(hex::encode).collect::<Vec<_>>(),
        "report_data": hex::encode(&v.binding_data),
        "enclave_key": hex::encode(v.enclave_key()),
        "pinned": pinned,
    }))
}

pub fn run(a: EvidenceArgs) -> Result<()> {
    let out = verify(&a)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNP_M: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
    const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

    fn fx(p: &str) -> Option<PathBuf> {
        Some(PathBuf::from(format!(
            "{}/../tee/tests/fixtures/{p}",
            env!("CARGO_MANIFEST_DIR")
        )))
    }

    fn snp(flags: &[&str], at: u64) -> EvidenceArgs {
        EvidenceArgs {
            platform: "sev-snp".into(),
            document: None,
            report: fx("sev-snp/report_milan.bin"),
            vcek: fx("sev-snp/vcek_milan.der"),
            quote: None,
            collateral: None,
            trust_root: None,
            expect_measurement: flags.iter().map(|s| s.to_string()).collect(),
            report_data: None,
            at: Some(at),
            allow_unpinned: false,
        }
    }

    fn tdx(flags: &[&str], at: u64) -> EvidenceArgs {
        EvidenceArgs {
            platform: "tdx".into(),
            report: None,
            vcek: None,
            quote: fx("tdx/tdx_quote.bin"),
            collateral: fx("tdx/tdx_quote_collateral.json"),
            ..snp(flags, at)
        }
    }

    #[test]
    fn sev_snp_fixture_with_its_measurement() {
        let flag = format!("sev-snp:measurement={SNP_M}");
        let out = verify(&snp(&[&flag], 1_700_000_000)).unwrap();
        assert_eq!(out["platform_code"], 1);
        assert_eq!(out["measurement"][0], SNP_M);
        assert_eq!(out["enclave_key"].as_str().unwrap().len(), 64);
        // Wrong measurement, expired VCEK, unpinned.
        let bad = format!("sev-snp:measurement={}", "00".repeat(48));
        let err = verify(&snp(&[&bad], 1_700_000_000)).unwrap_err();
        assert!(err.to_string().contains("measurement mismatch"), "{err:#}");
        let err = verify(&snp(&[&flag], 2_000_000_000)).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err:#}");
        let err = verify(&snp(&[], 1_700_000_000)).unwrap_err();
        assert!(err.to_string().contains("unpinned"), "{err:#}");
        // A pin for another platform does not pin this one.
        let other = format!("tdx:mrtd={MRTD}");
        assert!(verify(&snp(&[&other], 1_700_000_000)).is_err());
        let mut a = snp(&[], 1_700_000_000);
        a.allow_unpinned = true;
        assert_eq!(verify(&a).unwrap()["pinned"], false);
    }

    #[test]
    fn tdx_fixture_with_mrtd_and_report_data() {
        let flag = format!("tdx:mrtd={MRTD}");
        let mut a = tdx(&[&flag], 1_751_000_000);
        a.report_data = Some("9a9d48e7f6799642".into());
        let out = verify(&a).unwrap();
        assert_eq!(out["platform"], "tdx");
        assert_eq!(out["config_registers"][0], MRTD);
        a.report_data = Some("9a9d48e7f6799643".into());
        assert!(verify(&a).unwrap_err().to_string().contains("REPORTDATA"));
        let err = verify(&tdx(&[&flag], 1_760_000_000)).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err:#}");
    }

    #[test]
    fn flag_errors() {
        assert!(verify(&snp(&["sev-snp:mrtd=00"], 1)).is_err());
        let mut a = snp(&[], 1);
        a.platform = "sgx".into();
        assert!(verify(&a).is_err());
        let mut a = tdx(&[&format!("tdx:mrtd={MRTD}")], 1_751_000_000);
        a.quote = None;
        assert!(verify(&a).unwrap_err().to_string().contains("--quote"));
    }
}
