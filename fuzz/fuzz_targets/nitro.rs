//! The AWS Nitro attestation document parser and verifier: COSE_Sign1 (CBOR), the attestation
//! document map, the certificate chain (DER X.509) to the pinned AWS root and the P-384
//! signature, at the fixed time the real seed documents were valid.
#![no_main]

use daas_tee::{verify_attestation, AttestationFields, ExpectedPcrs, RootCert};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The time the seed `nautilus-weather` document was valid (its fixture README).
const NOW_MS: u64 = 1_744_684_007_462;

fn roots() -> &'static [RootCert] {
    static ROOTS: OnceLock<Vec<RootCert>> = OnceLock::new();
    ROOTS.get_or_init(|| vec![RootCert::aws_nitro()])
}

fuzz_target!(|data: &[u8]| {
    let _ = verify_attestation(data, roots(), NOW_MS, &ExpectedPcrs::default());
    // The payload parser on its own (reached above only through a well-formed COSE envelope).
    let _ = AttestationFields::parse(data);
});
