//! Seal-token credentials: the short-lived bearer string `daas token` prints.
//!
//! The seal token on chain holds no secret. Its holder proves possession by signing a small claim
//! (token id, owner address, audience, validity window) with the owner's Sui key as a Sui
//! personal message. The master checks the signature recovers the owner, the window is short and
//! current, and then validates the token object on the ledger (`k8s_gateway::is_valid`).
//!
//! Wire form: `daas1.<base64url(claims JSON)>.<base64url(serialized UserSignature)>`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sui_sdk_types::Address;

use crate::keys::SuiKeypair;
use crate::tx;

pub const PREFIX: &str = "daas1";
/// Longest validity a master accepts for one credential.
pub const MAX_TTL_MS: u64 = 15 * 60 * 1000;
/// Tolerated clock skew between the holder and the master.
pub const CLOCK_SKEW_MS: u64 = 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Version of the claim format.
    pub v: u8,
    /// Seal token object id.
    pub token: Address,
    /// Token owner (the signer).
    pub owner: Address,
    /// Cluster the credential is meant for (master URL or cluster name); empty = any.
    pub aud: String,
    /// Issued at (ms since the Unix epoch).
    pub iat: u64,
    /// Expires at (ms since the Unix epoch).
    pub exp: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("not a K3s-DaaS seal-token credential")]
    Format,
    #[error("credential claims are malformed: {0}")]
    Claims(String),
    #[error("credential signature is invalid: {0}")]
    Signature(String),
    #[error("credential is signed by {actual}, but claims owner {claimed}")]
    WrongSigner { claimed: Address, actual: Address },
    #[error("credential expired")]
    Expired,
    #[error("credential is not valid yet")]
    NotYetValid,
    #[error("credential validity window exceeds {0} ms")]
    TooLong(u64),
    #[error("credential is for audience {0:?}")]
    Audience(String),
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Sign a credential for `token` valid from `now_ms` for `ttl_ms`.
pub fn issue(key: &SuiKeypair, token: Address, audience: &str, now_ms: u64, ttl_ms: u64) -> String {
    let claims = Claims {
        v: 1,
        token,
        owner: key.address(),
        aud: audience.to_string(),
        iat: now_ms,
        exp: now_ms + ttl_ms,
    };
    let payload = serde_json::to_vec(&claims).unwrap_or_default();
    let sig = tx::sign_personal_message(&payload, key);
    format!("{PREFIX}.{}.{}", b64().encode(&payload), b64().encode(sig))
}

/// Check the signature and validity window of a credential (not the ledger state).
/// `audience`: if Some, the claim's audience must be empty or equal to it.
pub fn verify(
    credential: &str,
    now_ms: u64,
    audience: Option<&str>,
) -> Result<Claims, CredentialError> {
    let mut parts = credential.split('.');
    let (Some(PREFIX), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CredentialError::Format);
    };
    let payload = b64().decode(p).map_err(|_| CredentialError::Format)?;
    let sig = b64().decode(s).map_err(|_| CredentialError::Format)?;
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|e| CredentialError::Claims(e.to_string()))?;
    if claims.v != 1 {
        return Err(CredentialError::Claims(format!(
            "unsupported version {}",
            claims.v
        )));
    }
    let signer = tx::verify_personal_message(&payload, &sig)
        .map_err(|e| CredentialError::Signature(e.to_string()))?;
    if signer != claims.owner {
        return Err(CredentialError::WrongSigner {
            claimed: claims.owner,
            actual: signer,
        });
    }
    if claims.exp <= claims.iat || claims.exp - claims.iat > MAX_TTL_MS {
        return Err(CredentialError::TooLong(MAX_TTL_MS));
    }
    if claims.iat > now_ms + CLOCK_SKEW_MS {
        return Err(CredentialError::NotYetValid);
    }
    if now_ms >= claims.exp {
        return Err(CredentialError::Expired);
    }
    if let Some(aud) = audience {
        if !claims.aud.is_empty() && claims.aud != aud {
            return Err(CredentialError::Audience(claims.aud));
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn roundtrip_and_window() {
        let k = SuiKeypair::generate();
        let token = SuiKeypair::generate().address();
        let c = issue(&k, token, "https://m:6443", NOW, 600_000);
        let claims = verify(&c, NOW + 1000, Some("https://m:6443")).unwrap();
        assert_eq!((claims.token, claims.owner), (token, k.address()));
        assert_eq!(
            verify(&c, NOW + 600_000, None),
            Err(CredentialError::Expired)
        );
        assert_eq!(
            verify(&c, NOW - 2 * CLOCK_SKEW_MS, None),
            Err(CredentialError::NotYetValid)
        );
        assert!(matches!(
            verify(&c, NOW, Some("https://other")),
            Err(CredentialError::Audience(_))
        ));
        let long = issue(&k, token, "", NOW, MAX_TTL_MS + 1);
        assert_eq!(
            verify(&long, NOW, None),
            Err(CredentialError::TooLong(MAX_TTL_MS))
        );
    }

    #[test]
    fn tampering_is_detected() {
        let k = SuiKeypair::generate();
        let other = SuiKeypair::generate();
        let c = issue(&k, other.address(), "", NOW, 60_000);
        let parts: Vec<&str> = c.split('.').collect();
        // Claims rewritten to another owner: the signature no longer matches it.
        let mut claims: Claims = serde_json::from_slice(&b64().decode(parts[1]).unwrap()).unwrap();
        claims.owner = other.address();
        let forged = format!(
            "{PREFIX}.{}.{}",
            b64().encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert!(matches!(
            verify(&forged, NOW, None),
            Err(CredentialError::Signature(_)) | Err(CredentialError::WrongSigner { .. })
        ));
        // Signed by someone else, claiming k's address.
        let mut by_other = issue(&other, other.address(), "", NOW, 60_000);
        let p: Vec<&str> = by_other.split('.').collect();
        let mut cl: Claims = serde_json::from_slice(&b64().decode(p[1]).unwrap()).unwrap();
        cl.owner = k.address();
        let payload = serde_json::to_vec(&cl).unwrap();
        let sig = tx::sign_personal_message(&payload, &other);
        by_other = format!("{PREFIX}.{}.{}", b64().encode(payload), b64().encode(sig));
        assert!(matches!(
            verify(&by_other, NOW, None),
            Err(CredentialError::WrongSigner { .. })
        ));
        for bad in ["", "daas1", "daas1.x.y", "jwt.a.b", "daas1.a.b.c"] {
            assert!(verify(bad, NOW, None).is_err(), "{bad}");
        }
    }
}
