//! Envelope sealing of stored values with AES-256-GCM.
//!
//! Sealed format: `version (1 byte) | key id (4 bytes) | nonce (12 bytes) | ciphertext + tag (16 bytes)`.
//! The additional authenticated data is the storage key, so a sealed value copied under another
//! key fails to open. The key id is the first 4 bytes of `SHA-256("daas-store/key-id/v1" || key)`;
//! it lets a reader tell "sealed under another key" from "corrupted".

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// Current sealed format version.
pub const SEAL_VERSION: u8 = 1;
/// Length of the key id prefix.
pub const KEY_ID_LEN: usize = 4;
/// AES-GCM nonce length (96 bits).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Bytes added to a plaintext by sealing.
pub const SEAL_OVERHEAD: usize = 1 + KEY_ID_LEN + NONCE_LEN + TAG_LEN;

/// A 256-bit sealing key (supplied by the TEE layer) and its derived 4-byte key id.
#[derive(Clone)]
pub struct SealingKey {
    cipher: Aes256Gcm,
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.key_id_hex())
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Build a key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"daas-store/key-id/v1");
        h.update(bytes);
        let digest = h.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes));
        SealingKey { cipher, id }
    }

    /// Build a key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            StoreError::Backend(format!("sealing key must be 32 bytes, got {}", bytes.len()))
        })?;
        Ok(Self::from_bytes(arr))
    }

    /// Parse a key from 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return Err(StoreError::Backend(
                "sealing key hex must be 64 hex characters".into(),
            ));
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|e| StoreError::Backend(e.to_string()))?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| {
                StoreError::Backend("sealing key hex has a non-hex character".into())
            })?;
        }
        Ok(Self::from_bytes(out))
    }

    /// A fresh random key (tests, dev mode).
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self::from_bytes(b)
    }

    /// The 4-byte key id written in front of every sealed value.
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        self.id
    }

    pub fn key_id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Seal `plaintext` for storage under `storage_key` (used as AAD).
    pub fn seal(&self, storage_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: storage_key,
                },
            )
            .map_err(|_| StoreError::Backend("AES-GCM encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a value sealed by [`SealingKey::seal`] under the same `storage_key`.
    /// Any mismatch (format, key id, tag, AAD) yields `StoreError::Unseal(storage_key)`.
    pub fn unseal(&self, storage_key: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let fail = || StoreError::Unseal(String::from_utf8_lossy(storage_key).into_owned());
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != SEAL_VERSION {
            return Err(fail());
        }
        let id = &sealed[1..1 + KEY_ID_LEN];
        if id != self.id {
            tracing::debug!(
                key = %String::from_utf8_lossy(storage_key),
                "sealed value carries a different key id"
            );
            return Err(fail());
        }
        let nonce = &sealed[1 + KEY_ID_LEN..1 + KEY_ID_LEN + NONCE_LEN];
        let ct = &sealed[1 + KEY_ID_LEN + NONCE_LEN..];
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: storage_key,
                },
            )
            .map_err(|_| fail())
    }

    /// Key id of a sealed blob, if it is well-formed enough to carry one.
    pub fn sealed_key_id(sealed: &[u8]) -> Option<[u8; KEY_ID_LEN]> {
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != SEAL_VERSION {
            return None;
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let k = SealingKey::generate();
        let s = k.seal(b"/registry/pods/a", b"hello").expect("seal");
        assert_eq!(s.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(s[0], SEAL_VERSION);
        assert_eq!(&s[1..5], &k.key_id());
        assert_eq!(k.unseal(b"/registry/pods/a", &s).expect("unseal"), b"hello");
        assert_eq!(SealingKey::sealed_key_id(&s), Some(k.key_id()));
    }

    #[test]
    fn empty_value_roundtrip() {
        let k = SealingKey::generate();
        let s = k.seal(b"k", b"").expect("seal");
        assert_eq!(k.unseal(b"k", &s).expect("unseal"), b"");
    }

    #[test]
    fn nonce_is_random() {
        let k = SealingKey::generate();
        let a = k.seal(b"k", b"same").expect("seal");
        let b = k.seal(b"k", b"same").expect("seal");
        assert_ne!(a, b);
        assert_ne!(a[5..17], b[5..17]);
    }

    #[test]
    fn wrong_key_fails() {
        let k1 = SealingKey::generate();
        let k2 = SealingKey::generate();
        assert_ne!(k1.key_id(), k2.key_id());
        let s = k1.seal(b"k", b"v").expect("seal");
        match k2.unseal(b"k", &s) {
            Err(StoreError::Unseal(key)) => assert_eq!(key, "k"),
            other => panic!("expected Unseal, got {other:?}"),
        }
    }

    #[test]
    fn same_id_different_key_still_fails_on_tag() {
        // Forge the key id of k1 onto a value sealed by k2: the tag check must still fail.
        let k1 = SealingKey::generate();
        let k2 = SealingKey::generate();
        let mut s = k2.seal(b"k", b"v").expect("seal");
        s[1..5].copy_from_slice(&k1.key_id());
        assert!(matches!(k1.unseal(b"k", &s), Err(StoreError::Unseal(_))));
    }

    #[test]
    fn moved_to_other_key_fails() {
        let k = SealingKey::generate();
        let s = k.seal(b"/a", b"v").expect("seal");
        assert!(matches!(k.unseal(b"/b", &s), Err(StoreError::Unseal(ref key)) if key == "/b"));
    }

    #[test]
    fn every_flipped_byte_fails() {
        let k = SealingKey::generate();
        let s = k.seal(b"key", b"some secret payload").expect("seal");
        for i in 0..s.len() {
            let mut t = s.clone();
            t[i] ^= 0x01;
            assert!(
                matches!(k.unseal(b"key", &t), Err(StoreError::Unseal(_))),
                "byte {i}"
            );
        }
    }

    #[test]
    fn truncated_fails() {
        let k = SealingKey::generate();
        let s = k.seal(b"key", b"payload").expect("seal");
        for n in 0..s.len() {
            assert!(
                matches!(k.unseal(b"key", &s[..n]), Err(StoreError::Unseal(_))),
                "len {n}"
            );
        }
    }

    #[test]
    fn key_id_is_deterministic_and_hex_parses() {
        let bytes = [7u8; 32];
        let a = SealingKey::from_bytes(bytes);
        let b = SealingKey::from_slice(&bytes).expect("slice");
        let c = SealingKey::from_hex(&"07".repeat(32)).expect("hex");
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(a.key_id(), c.key_id());
        let s = a.seal(b"k", b"v").expect("seal");
        assert_eq!(c.unseal(b"k", &s).expect("unseal"), b"v");
        assert!(SealingKey::from_slice(&[0u8; 31]).is_err());
        assert!(SealingKey::from_hex("zz").is_err());
        assert!(SealingKey::from_hex(&"g0".repeat(32)).is_err());
        assert!(!format!("{a:?}").contains("07070707070707"));
    }
}
