//! The embedded ledger's transaction intake: the JSON body of `POST .../execute` (Base64 BCS
//! `TransactionData` + Base64 serialized `UserSignature`s), decoded as the HTTP handler does and
//! verified as `EmbeddedLedger::execute_signed` does (BCS decode, canonical re-encoding, kind,
//! gas owner, signature parse and check). Also the personal-message signature parse the
//! credential check uses.
//!
//! Input: a mode byte, then
//! - 0: the HTTP body (`{"tx_bytes": "...", "signatures": ["..."]}`);
//! - 1: a big-endian u16 signature length, the signature, then the raw BCS transaction;
//! - 2: a big-endian u16 signature length, the signature, then a personal message.
#![no_main]

use daas_ledger::tx::{self, SignedTransaction};
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
struct ExecuteRequest {
    tx_bytes: String,
    signatures: Vec<String>,
}

fn check(tx_bytes: &[u8], signatures: &[Vec<u8>]) {
    if let Ok(v) = tx::verify(tx_bytes, signatures) {
        // Only canonical encodings verify: re-encoding gives the submitted bytes back.
        assert_eq!(tx::tx_bytes(&v.data).ok().as_deref(), Some(tx_bytes));
    }
}

fn split(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (len <= rest.len()).then(|| rest.split_at(len))
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            let Ok(req) = serde_json::from_slice::<ExecuteRequest>(rest) else {
                return;
            };
            if let Ok(signed) = SignedTransaction::from_base64(&req.tx_bytes, &req.signatures) {
                check(&signed.tx_bytes, &signed.signatures);
            }
        }
        1 => {
            if let Some((sig, tx_bytes)) = split(rest) {
                check(tx_bytes, &[sig.to_vec()]);
                check(tx_bytes, &[]);
            }
        }
        2 => {
            if let Some((sig, message)) = split(rest) {
                let _ = tx::verify_personal_message(message, sig);
            }
        }
        _ => {}
    }
});
