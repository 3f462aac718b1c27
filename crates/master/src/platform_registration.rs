//! The embedded ledger's native check of SEV-SNP and TDX registration evidence
//! (`enclave::register_enclave_platform_raw`, see contracts/SPEC.md): the evidence is verified
//! against the pinned AMD Milan ARK/ASK or Intel SGX Root CA at the ledger's clock, with nothing
//! pinned by the verifier itself; the ledger then compares the registers with the config.

use std::collections::BTreeMap;

use daas_ledger::contract::{AttestationVerifier, AttestedEnclave};
use daas_tee::{Evidence, Platform, Verifiers};

/// `platform` code -> verify `evidence` -> the registers and key the ledger checks.
pub fn verify_platform(
    nitro: &dyn AttestationVerifier,
    code: u8,
    evidence: &[u8],
    now_ms: u64,
) -> Result<AttestedEnclave, String> {
    let platform = Platform::from_code(code).ok_or_else(|| format!("unknown platform {code}"))?;
    if platform == Platform::Nitro {
        return nitro.verify(evidence, now_ms);
    }
    let evidence = Evidence::decode(platform, evidence).map_err(|e| e.to_string())?;
    let v = Verifiers::production(Vec::new())
        .verify(&evidence, &BTreeMap::new(), None, now_ms)
        .map_err(|e| e.to_string())?;
    let [pcr0, pcr1, pcr2] = v.config_registers();
    Ok(AttestedEnclave {
        pcr0,
        pcr1,
        pcr2,
        public_key: v.enclave_key(),
        platform: v.platform.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::TeeVerifier;

    fn fixture(p: &str) -> Vec<u8> {
        let path = format!("{}/../tee/tests/fixtures/{p}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    fn snp_evidence() -> Vec<u8> {
        Evidence::SevSnp {
            report: fixture("sev-snp/report_milan.bin"),
            vcek: fixture("sev-snp/vcek_milan.der"),
        }
        .encode()
    }

    #[test]
    fn snp_fixture_registers_its_measurement_and_report_data_key() {
        let v = TeeVerifier { roots: vec![] };
        let a = v
            .verify_platform(1, &snp_evidence(), 1_700_000_000_000)
            .unwrap();
        assert_eq!(a.platform, 1);
        assert_eq!(
            hex::encode(&a.pcr0),
            "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
        );
        assert!(a.pcr1.is_empty() && a.pcr2.is_empty());
        assert_eq!(
            hex::encode(&a.public_key),
            "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581"
        );
    }

    #[test]
    fn tdx_fixture_registers_mrtd_and_rtmrs() {
        let ev = Evidence::decode(Platform::Tdx, &{
            let q = fixture("tdx/tdx_quote.bin");
            let mut b = u32::try_from(q.len()).unwrap().to_le_bytes().to_vec();
            b.extend(q);
            b.extend(fixture("tdx/tdx_quote_collateral.json"));
            b
        })
        .unwrap();
        let v = TeeVerifier { roots: vec![] };
        let a = v
            .verify_platform(2, &ev.encode(), 1_751_000_000_000)
            .unwrap();
        assert_eq!(a.platform, 2);
        assert!(hex::encode(&a.pcr0).starts_with("91eb2b44"));
        assert!(hex::encode(&a.pcr1).starts_with("44c0197b"));
        assert!(hex::encode(&a.pcr2).starts_with("0084452c"));
        assert_eq!(a.public_key.len(), 32);
    }

    #[test]
    fn refusals_are_errors() {
        let v = TeeVerifier { roots: vec![] };
        assert!(v.verify_platform(3, b"x", 0).is_err());
        // Tampered report, expired VCEK, SNP bytes claimed as TDX.
        let mut ev = snp_evidence();
        ev[0x90] ^= 1;
        assert!(v.verify_platform(1, &ev, 1_700_000_000_000).is_err());
        assert!(v
            .verify_platform(1, &snp_evidence(), 2_000_000_000_000)
            .is_err());
        assert!(v
            .verify_platform(2, &snp_evidence(), 1_700_000_000_000)
            .is_err());
    }
}
