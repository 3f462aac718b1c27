//! The seal-token credential as the master receives it: an `Authorization` header value, the
//! `Bearer ` prefix stripped as the apiserver and the seed endpoints do, then the credential
//! parser (`daas1.<claims>.<signature>`) and the signature, window and audience checks.
#![no_main]

use daas_ledger::credential;
use libfuzzer_sys::fuzz_target;

/// The fixed clock and audience the checks run at (the seeds are minted for them).
const NOW_MS: u64 = 1_800_000_000_000;
const AUDIENCE: &str = "k3s-daas:fuzz";

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    // What crates/apiserver/src/server.rs and crates/master/src/seed.rs do with the header.
    let Some(token) = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return;
    };
    // SealTokenAuthenticator::authenticate: only `daas1` credentials are its business.
    if !token.starts_with(credential::PREFIX) {
        return;
    }
    let unverified = credential::claims_unverified(token);
    let verified = credential::verify(token, NOW_MS, AUDIENCE);
    // A credential that verifies has well-formed claims, the same ones.
    if let Ok(c) = &verified {
        assert_eq!(unverified.as_ref().ok(), Some(c));
    }
    let _ = credential::verify(token, u64::MAX, AUDIENCE);
    let _ = credential::verify(token, 0, "");
});
