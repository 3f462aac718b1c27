//! AMD SEV-SNP evidence as the ledger's enclave registry and `daas verify-evidence` receive it:
//! the attestation report (0x4A0 bytes) followed by the VCEK (DER), `Evidence::encode`'s layout.
//! Both halves are fuzzed: the report parser (`SnpReport::parse`) and the whole verify path
//! (`verify_snp_report`: VCEK X.509 parse, chain to the pinned AMD Milan ARK/ASK with RSA-PSS,
//! validity at the fixture's time, P-384 report signature, VCEK TCB/hwID extensions, TCB, guest
//! policy, VMPL, measurement and report_data checks).
#![no_main]

use daas_tee::platform::{Evidence, Platform};
use daas_tee::sevsnp::{
    verify_snp_report, SnpPolicy, SnpReport, SnpTrust, POLICY_DEBUG, SNP_REPORT_LEN,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Inside the fixture VCEK's validity (2023-04-03..2030-04-03), as crates/tee's fixture tests.
const NOW_S: i64 = 1_700_000_000;
/// The fixture report's MEASUREMENT and the first 32 bytes of its report_data: the policy pins
/// them, so a fuzzed report that verifies must carry exactly these.
const MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const BINDING: &str = "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c64581";

fn trust() -> &'static SnpTrust {
    static TRUST: OnceLock<SnpTrust> = OnceLock::new();
    TRUST.get_or_init(SnpTrust::milan)
}

fn policy() -> &'static SnpPolicy {
    static POLICY: OnceLock<SnpPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut measurement = [0u8; 48];
        hex::decode_to_slice(MEASUREMENT, &mut measurement).expect("constant hex");
        SnpPolicy {
            expected_measurement: Some(measurement),
            report_data_prefix: Some(hex::decode(BINDING).expect("constant hex")),
            ..SnpPolicy::default()
        }
    })
}

fuzz_target!(|data: &[u8]| {
    // The layout parser on its own, on the report part (or the whole input when shorter).
    let parsed = SnpReport::parse(data.get(..SNP_REPORT_LEN).unwrap_or(data));
    let Ok(Evidence::SevSnp { report, vcek }) = Evidence::decode(Platform::SevSnp, data) else {
        return;
    };
    if let Ok(v) = verify_snp_report(&report, &vcek, trust(), NOW_S, policy()) {
        // What verifies is what the parser reads, and satisfies the policy.
        assert_eq!(parsed.as_ref().ok(), Some(&v));
        assert_eq!(hex::encode(v.measurement), MEASUREMENT);
        assert!(hex::encode(v.report_data).starts_with(BINDING));
        assert_eq!(v.policy & POLICY_DEBUG, 0);
        assert_eq!(v.vmpl, 0);
    }
});
