//! `daas master --tee sev-snp|tdx`: the master's attested-TLS evidence from the platform's
//! configfs-tsm (`--tsm-dir`, default `/sys/kernel/config/tsm`) with what a client needs to
//! verify it offline (`--sev-vcek` when the host supplies no certificate table,
//! `--tdx-collateral` always on TDX), and `--enclave-object` (the ledger Enclave object an admin
//! registered for it). The binary builds the provider; the master receives it.
//!
//! Client side (`daas attest` / `daas join`): `--expect-measurement` pins for every platform.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use daas_master::EnclaveHandle;
use daas_tee::{parse_expect_measurements, ConfigfsTsm, ExpectedMeasurement, Platform};

#[derive(Args, Clone, Debug, Default)]
pub struct TeeArgs {
    /// TEE platform whose reports answer attested TLS: `nitro` (the enclave's own documents,
    /// default), `sev-snp` or `tdx` (through configfs-tsm).
    #[arg(long, default_value = "nitro")]
    pub tee: String,
    /// configfs-tsm directory (SEV-SNP / TDX).
    #[arg(long, default_value = "/sys/kernel/config/tsm")]
    pub tsm_dir: PathBuf,
    /// SEV-SNP: the VCEK (DER) served when the host's certificate table has none.
    #[arg(long)]
    pub sev_vcek: Option<PathBuf>,
    /// TDX: the DCAP collateral (dcap-qvl QuoteCollateralV3 JSON, e.g. from Intel PCS).
    #[arg(long)]
    pub tdx_collateral: Option<PathBuf>,
    /// The ledger Enclave object this master is registered as (e.g. by the admin with
    /// `staking::register_attested_enclave`), named in the attestation answer.
    #[arg(long)]
    pub enclave_object: Option<String>,
}

/// Attach the `--tee` evidence provider and `--enclave-object` to the opened enclave.
pub fn attach(mut handle: EnclaveHandle, a: &TeeArgs) -> Result<EnclaveHandle> {
    let platform: Platform = a.tee.parse()?;
    if let Some(id) = &a.enclave_object {
        id.parse::<daas_ledger::ObjectId>()
            .map_err(|_| anyhow::anyhow!("--enclave-object {id:?} is not an object id"))?;
        handle.enclave_object = Some(id.clone());
    }
    if platform == Platform::Nitro {
        if a.sev_vcek.is_some() || a.tdx_collateral.is_some() {
            bail!("--sev-vcek / --tdx-collateral need --tee sev-snp / tdx");
        }
        return Ok(handle);
    }
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let vcek = a.sev_vcek.as_ref().map(read).transpose()?;
    let collateral = a
        .tdx_collateral
        .as_ref()
        .map(|p| -> Result<_> { Ok(daas_tee::tdx::TdxCollateral::from_json(&read(p)?)?) })
        .transpose()?;
    if platform == Platform::Tdx && vcek.is_some() {
        bail!("--sev-vcek is for --tee sev-snp");
    }
    if platform == Platform::SevSnp && collateral.is_some() {
        bail!("--tdx-collateral is for --tee tdx");
    }
    let tsm = ConfigfsTsm::new(&a.tsm_dir, platform, vcek, collateral)?;
    handle.evidence = Some(Arc::new(tsm));
    Ok(handle)
}

/// The `--expect-measurement` values of `daas attest` / `daas join`: PCR pins for Nitro
/// masters and the SEV-SNP / TDX pins.
pub type Pins = (Vec<(u16, String)>, BTreeMap<Platform, ExpectedMeasurement>);

pub fn attest_pins(flags: &[String]) -> Result<Pins> {
    let mut nitro = Vec::new();
    let mut others = BTreeMap::new();
    for (platform, m) in parse_expect_measurements(flags)? {
        match m {
            ExpectedMeasurement::Nitro(p) => {
                nitro.extend(p.0.iter().map(|(i, v)| (*i, hex::encode(v))));
            }
            m => {
                others.insert(platform, m);
            }
        }
    }
    Ok((nitro, others))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &[&str]) -> TeeArgs {
        let mut argv = vec!["daas", "master"];
        argv.extend_from_slice(flags);
        match <crate::Cli as clap::Parser>::try_parse_from(argv)
            .expect("parses")
            .cmd
        {
            crate::Cmd::Master(m) => m.tee,
            _ => panic!("not master"),
        }
    }

    #[test]
    fn tee_flags_attach_a_provider_or_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let handle = daas_master::enclave::open_simulated(t.path(), &crate::Measurement::Release)
            .expect("simulated enclave");
        let dir = t.path().to_str().unwrap();
        let coll = format!(
            "{}/../tee/tests/fixtures/tdx/tdx_quote_collateral.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let vcek = format!(
            "{}/../tee/tests/fixtures/sev-snp/vcek_milan.der",
            env!("CARGO_MANIFEST_DIR")
        );
        // Default: Nitro, no provider.
        let h = attach(handle.clone(), &args(&[])).unwrap();
        assert!(h.evidence.is_none() && h.enclave_object.is_none());
        let h = attach(
            handle.clone(),
            &args(&["--tee", "sev-snp", "--tsm-dir", dir]),
        )
        .unwrap();
        assert_eq!(
            h.evidence.as_ref().map(|e| e.platform()),
            Some(Platform::SevSnp)
        );
        let h = attach(
            handle.clone(),
            &args(&["--tee", "tdx", "--tsm-dir", dir, "--tdx-collateral", &coll]),
        )
        .unwrap();
        assert_eq!(
            h.evidence.as_ref().map(|e| e.platform()),
            Some(Platform::Tdx)
        );
        let id = format!("0x{}", "ab".repeat(32));
        let h = attach(handle.clone(), &args(&["--enclave-object", &id])).unwrap();
        assert_eq!(h.enclave_object.as_deref(), Some(id.as_str()));
        for bad in [
            vec!["--tee", "tdx", "--tsm-dir", dir],
            vec!["--tee", "sgx"],
            vec!["--sev-vcek", &vcek],
            vec![
                "--tee",
                "tdx",
                "--tdx-collateral",
                &coll,
                "--sev-vcek",
                &vcek,
            ],
            vec!["--tee", "sev-snp", "--tdx-collateral", &coll],
            vec!["--enclave-object", "not-an-id"],
        ] {
            assert!(attach(handle.clone(), &args(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pins_split_by_platform() {
        let h = "ab".repeat(48);
        let (nitro, others) = attest_pins(&[
            format!("nitro:pcr0={h},pcr2={h}"),
            format!("sev-snp:measurement={h}"),
            format!("tdx:mrtd={h}"),
        ])
        .unwrap();
        assert_eq!(nitro, vec![(0, h.clone()), (2, h.clone())]);
        assert_eq!(
            others.keys().copied().collect::<Vec<_>>(),
            vec![Platform::SevSnp, Platform::Tdx]
        );
        assert!(attest_pins(&["nitro:pcr0=zz".into()]).is_err());
    }
}
