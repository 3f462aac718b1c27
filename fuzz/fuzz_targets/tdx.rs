//! Intel TDX DCAP quotes: fuzzed quote bytes through `verify_tdx_quote` (collateral window, then
//! dcap-qvl's quote parser, PCK chain to the pinned Intel SGX Root CA with both CRLs, TCB info
//! and QE identity signatures, QE report, quote signature, TCB level matching, TD attributes,
//! then the TCB status policy and the MRTD/RTMR/REPORTDATA checks) with the real fixture
//! collateral at a time inside its validity window.
#![no_main]

use daas_tee::tdx::{verify_tdx_quote, TdxCollateral, TdxPolicy, INTEL_SGX_ROOT_CA_DER};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Inside the fixture collateral's window (1750329147..1752919235), as crates/tee's fixture tests.
const NOW_S: i64 = 1_751_000_000;
/// The fixture quote's MRTD: the policy pins it, so a fuzzed quote that verifies carries it.
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

fn collateral() -> &'static TdxCollateral {
    static C: OnceLock<TdxCollateral> = OnceLock::new();
    C.get_or_init(|| {
        TdxCollateral::from_json(include_bytes!(
            "../../crates/tee/tests/fixtures/tdx/tdx_quote_collateral.json"
        ))
        .expect("fixture collateral")
    })
}

fn policy() -> &'static TdxPolicy {
    static P: OnceLock<TdxPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let mut mrtd = [0u8; 48];
        hex::decode_to_slice(MRTD, &mut mrtd).expect("constant hex");
        let mut p = TdxPolicy::default();
        p.expected.mrtd = Some(mrtd);
        p
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = verify_tdx_quote(data, collateral(), INTEL_SGX_ROOT_CA_DER, NOW_S, policy()) {
        assert_eq!(v.tcb_status, "UpToDate");
        assert_eq!(hex::encode(v.mrtd), MRTD);
    }
});
