//! The platform evidence dispatch as the embedded ledger's `register_enclave_platform_raw` runs
//! it (crates/master/src/platform_registration.rs) and `daas verify-evidence` does: a platform
//! code, `Evidence::decode` of the evidence bytes (Nitro document; SEV-SNP report || VCEK; TDX
//! u32 LE quote length || quote || collateral JSON, so the collateral is fuzzed here too), then
//! `Verifiers::production` with nothing pinned, at the fixed time of that platform's fixture.
//!
//! Input: a platform code byte (0 Nitro, 1 SEV-SNP, 2 TDX, anything else refused), then the
//! evidence bytes.
#![no_main]

use daas_tee::platform::{Evidence, Platform, Verifiers};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn verifiers() -> &'static Verifiers {
    static V: OnceLock<Verifiers> = OnceLock::new();
    V.get_or_init(|| Verifiers::production(Vec::new()))
}

/// The fixed verification time of each platform's seed evidence (their fixture READMEs).
fn now_ms(p: Platform) -> u64 {
    match p {
        Platform::Nitro => 1_744_684_007_462,
        Platform::SevSnp => 1_700_000_000_000,
        Platform::Tdx => 1_751_000_000_000,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&code, bytes)) = data.split_first() else {
        return;
    };
    let Some(platform) = Platform::from_code(code) else {
        return;
    };
    let Ok(evidence) = Evidence::decode(platform, bytes) else {
        return;
    };
    assert_eq!(evidence.platform(), platform);
    // Decoding is the inverse of encoding (for what decodes).
    if platform != Platform::Tdx {
        assert_eq!(evidence.encode(), bytes);
    }
    if let Ok(v) = verifiers().verify(&evidence, &BTreeMap::new(), None, now_ms(platform)) {
        assert_eq!(v.platform, platform);
        // What the ledger registers: three registers and a key, never a panic.
        let _ = v.config_registers();
        let _ = v.enclave_key();
    }
});
