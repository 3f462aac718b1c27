//! Seal-token credentials: the short-lived bearer string `daas token` prints.
//!
//! The seal token on chain holds no secret. Its holder proves possession by signing a small claim
//! (token id, owner address, audience, validity window) with the owner's Sui key as a Sui
//! personal message. The master checks the signature recovers the owner, the window is short and
//! current, and then validates the token object on the ledger (`k8s_gateway::is_valid`).
//!
//! Wire form: `daas1.<base64url(claims JSON)>.<base64url(serialized UserSignature)>`.
//!
//! Every credential names the one cluster it is meant for: its audience is
//! `k3s-daas:<cluster id>` ([`audience`]), where the cluster id is created once by the master,
//! kept in its sealed store and learned by clients over attested TLS. A master refuses a
//! credential with an empty or another cluster's audience, so a credential shown to one master
//! cannot be replayed against another.

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
    /// Cluster the credential is meant for: `k3s-daas:<cluster id>` (never empty).
    pub aud: String,
    /// Issued at (ms since the Unix epoch).
    pub iat: u64,
    /// Expires at (ms since the Unix epoch).
    pub exp: u64,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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
    #[error("credential is for audience {actual:?}, but this cluster is {expected:?}")]
    Audience { expected: String, actual: String },
    #[error("credential carries no audience; mint it for this cluster's audience {expected:?}")]
    NoAudience { expected: String },
    #[error("a credential must be minted for a non-empty audience (k3s-daas:<cluster id>)")]
    EmptyAudience,
}

/// Prefix of every cluster audience.
pub const AUDIENCE_PREFIX: &str = "k3s-daas:";

/// The audience of credentials for the cluster `cluster_id`.
pub fn audience(cluster_id: &str) -> String {
    format!("{AUDIENCE_PREFIX}{cluster_id}")
}

/// A cluster id as masters create them and clients accept them from an attested master:
/// 1 to 64 characters of `[a-z0-9-]` (it ends up in kubeconfig exec args).
pub fn valid_cluster_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// Sign a credential for `token` and `audience` (see [`audience`]) valid from `now_ms` for `ttl_ms`.
pub fn issue(
    key: &SuiKeypair,
    token: Address,
    audience: &str,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<String, CredentialError> {
    if audience.is_empty() {
        return Err(CredentialError::EmptyAudience);
    }
    let claims = Claims {
        v: 1,
        token,
        owner: key.address(),
        aud: audience.to_string(),
        iat: now_ms,
        exp: now_ms + ttl_ms,
    };
    Ok(sign(key, &claims))
}

/// Sign arbitrary claims as they are (no checks): what [`issue`] does after checking its inputs.
/// Tests use it to build credentials a master must refuse.
pub fn sign(key: &SuiKeypair, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let sig = tx::sign_personal_message(&payload, key);
    format!("{PREFIX}.{}.{}", b64().encode(&payload), b64().encode(sig))
}

fn split(credential: &str) -> Result<(Vec<u8>, Vec<u8>, Claims), CredentialError> {
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
    Ok((payload, sig, claims))
}

/// The claims of a well-formed credential WITHOUT checking its signature, window or audience:
/// only to decide whose credential it claims to be (e.g. before deciding who may see its
/// validation), never to trust it.
pub fn claims_unverified(credential: &str) -> Result<Claims, CredentialError> {
    split(credential).map(|(_, _, c)| c)
}

/// Check the signature, validity window and audience of a credential (not the ledger state).
/// The claim's audience must equal `audience` (an empty claim is refused).
pub fn verify(credential: &str, now_ms: u64, audience: &str) -> Result<Claims, CredentialError> {
    let (payload, sig, claims) = split(credential)?;
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
    // Saturating: a clock near u64::MAX must not overflow (found by fuzz/ credential).
    if claims.iat > now_ms.saturating_add(CLOCK_SKEW_MS) {
        return Err(CredentialError::NotYetValid);
    }
    if now_ms >= claims.exp {
        return Err(CredentialError::Expired);
    }
    if claims.aud.is_empty() {
        return Err(CredentialError::NoAudience {
            expected: audience.to_string(),
        });
    }
    if claims.aud != audience {
        return Err(CredentialError::Audience {
            expected: audience.to_string(),
            actual: claims.aud,
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;
    const AUD: &str = "k3s-daas:0123abcd";

    /// Regression (fuzz/ credential): a clock at the end of time refused the credential by
    /// panicking on `now + skew` overflow instead of calling it expired.
    #[test]
    fn clock_at_u64_max_is_expired_not_overflow() {
        let k = SuiKeypair::generate();
        let c = issue(&k, SuiKeypair::generate().address(), AUD, NOW, 600_000).unwrap();
        assert_eq!(verify(&c, u64::MAX, AUD), Err(CredentialError::Expired));
    }

    #[test]
    fn roundtrip_and_window() {
        let k = SuiKeypair::generate();
        let token = SuiKeypair::generate().address();
        let c = issue(&k, token, AUD, NOW, 600_000).unwrap();
        let claims = verify(&c, NOW + 1000, AUD).unwrap();
        assert_eq!(
            (claims.token, claims.owner, claims.aud.as_str()),
            (token, k.address(), AUD)
        );
        assert_eq!(
            verify(&c, NOW + 600_000, AUD),
            Err(CredentialError::Expired)
        );
        assert_eq!(
            verify(&c, NOW - 2 * CLOCK_SKEW_MS, AUD),
            Err(CredentialError::NotYetValid)
        );
        let long = issue(&k, token, AUD, NOW, MAX_TTL_MS + 1).unwrap();
        assert_eq!(
            verify(&long, NOW, AUD),
            Err(CredentialError::TooLong(MAX_TTL_MS))
        );
    }

    #[test]
    fn audience_is_required_and_must_match() {
        let k = SuiKeypair::generate();
        let token = SuiKeypair::generate().address();
        assert_eq!(audience("0123abcd"), AUD);
        // Minting for no audience is refused outright.
        assert_eq!(
            issue(&k, token, "", NOW, 60_000),
            Err(CredentialError::EmptyAudience)
        );
        // Another cluster's credential is refused, and the error names both audiences.
        let other = issue(&k, token, "k3s-daas:ffff", NOW, 60_000).unwrap();
        let err = verify(&other, NOW, AUD).unwrap_err();
        assert_eq!(
            err,
            CredentialError::Audience {
                expected: AUD.into(),
                actual: "k3s-daas:ffff".into()
            }
        );
        assert!(
            err.to_string().contains("k3s-daas:ffff") && err.to_string().contains(AUD),
            "{err}"
        );
        // A hand-signed credential with an empty audience (an old client) is refused too.
        let claims = Claims {
            v: 1,
            token,
            owner: k.address(),
            aud: String::new(),
            iat: NOW,
            exp: NOW + 60_000,
        };
        let empty = sign(&k, &claims);
        let err = verify(&empty, NOW, AUD).unwrap_err();
        assert_eq!(
            err,
            CredentialError::NoAudience {
                expected: AUD.into()
            }
        );
        assert!(err.to_string().contains("no audience"), "{err}");
        // The unverified view only decodes.
        assert_eq!(claims_unverified(&empty).unwrap(), claims);
        assert_eq!(claims_unverified("jwt.a.b"), Err(CredentialError::Format));
    }

    #[test]
    fn cluster_ids() {
        assert!(valid_cluster_id("0123456789abcdef0123456789abcdef"));
        for bad in ["", "A", "a b", "a\nb", "x]", &"a".repeat(65)] {
            assert!(!valid_cluster_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn tampering_is_detected() {
        let k = SuiKeypair::generate();
        let other = SuiKeypair::generate();
        let c = issue(&k, other.address(), AUD, NOW, 60_000).unwrap();
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
            verify(&forged, NOW, AUD),
            Err(CredentialError::Signature(_)) | Err(CredentialError::WrongSigner { .. })
        ));
        // Audience rewritten to another cluster's: the signature no longer matches.
        let mut claims: Claims = serde_json::from_slice(&b64().decode(parts[1]).unwrap()).unwrap();
        claims.aud = "k3s-daas:other".into();
        let moved = format!(
            "{PREFIX}.{}.{}",
            b64().encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert!(verify(&moved, NOW, "k3s-daas:other").is_err());
        // Signed by someone else, claiming k's address.
        let mut cl = Claims {
            v: 1,
            token: other.address(),
            owner: k.address(),
            aud: AUD.into(),
            iat: NOW,
            exp: NOW + 60_000,
        };
        let by_other = sign(&other, &cl);
        assert!(matches!(
            verify(&by_other, NOW, AUD),
            Err(CredentialError::WrongSigner { .. })
        ));
        cl.v = 2;
        assert!(matches!(
            verify(&sign(&k, &cl), NOW, AUD),
            Err(CredentialError::Claims(_))
        ));
        for bad in ["", "daas1", "daas1.x.y", "jwt.a.b", "daas1.a.b.c"] {
            assert!(verify(bad, NOW, AUD).is_err(), "{bad}");
        }
    }
}
