//! Sui Ed25519 account keys: generation, the `suiprivkey1…` Bech32 format used by the Sui CLI,
//! hex/Base64 of the 32-byte seed, address derivation and key files.
//!
//! A Sui address is `blake2b256(0x00 || ed25519 public key)` (flag 0x00 = Ed25519).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use sui_crypto::ed25519::Ed25519PrivateKey;
use sui_sdk_types::{Address, Ed25519PublicKey};

/// Signature scheme flag of Ed25519 in Sui.
pub const ED25519_FLAG: u8 = 0x00;
/// Human-readable part of the Sui private key Bech32 encoding.
pub const SUIPRIVKEY_HRP: &str = "suiprivkey";

/// Errors parsing, loading or saving keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key encoding: {0}")]
    Encoding(String),
    #[error("unsupported key scheme flag {0:#04x} (only Ed25519 = 0x00 is supported)")]
    UnsupportedScheme(u8),
    #[error("invalid key length {0} (expected a 32-byte Ed25519 seed)")]
    Length(usize),
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// An Ed25519 Sui account key pair (seed kept in memory; `Debug` never prints it).
#[derive(Clone)]
pub struct SuiKeypair {
    seed: [u8; 32],
    key: Ed25519PrivateKey,
}

impl fmt::Debug for SuiKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuiKeypair")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl PartialEq for SuiKeypair {
    fn eq(&self, other: &Self) -> bool {
        self.seed == other.seed
    }
}
impl Eq for SuiKeypair {}

impl SuiKeypair {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        use rand::RngCore as _;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// The key pair for a 32-byte Ed25519 seed (the Sui "private key").
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            seed,
            key: Ed25519PrivateKey::new(seed),
        }
    }

    /// The 32-byte seed. Secret.
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// The sui-crypto private key (implements `Signer<UserSignature>`).
    pub fn private_key(&self) -> &Ed25519PrivateKey {
        &self.key
    }

    pub fn public_key(&self) -> Ed25519PublicKey {
        self.key.public_key()
    }

    /// `blake2b256(0x00 || public key)`.
    pub fn address(&self) -> Address {
        self.public_key().derive_address()
    }

    /// Hex of the seed (64 characters, no prefix). Secret.
    pub fn to_hex(&self) -> String {
        hex::encode(self.seed)
    }

    /// Parses 64 hex characters (optionally `0x`-prefixed) of the seed.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        let s = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        let bytes = hex::decode(s).map_err(|e| KeyError::Encoding(format!("hex: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// Standard Base64 of the 32-byte seed. Secret.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.seed)
    }

    /// Standard Base64 of `flag || seed` (the legacy `sui.keystore` entry format). Secret.
    pub fn to_keystore_base64(&self) -> String {
        let mut bytes = Vec::with_capacity(33);
        bytes.push(ED25519_FLAG);
        bytes.extend_from_slice(&self.seed);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Parses Base64 of either the 32-byte seed or the 33-byte `flag || seed` keystore entry.
    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| KeyError::Encoding(format!("base64: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// 32 bytes = seed; 33 bytes = `flag || seed` with flag 0x00.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        match bytes.len() {
            32 => {
                let mut seed = [0u8; 32];
                seed.copy_from_slice(bytes);
                Ok(Self::from_seed(seed))
            }
            33 => {
                let (flag, rest) = bytes.split_at(1);
                if flag[0] != ED25519_FLAG {
                    return Err(KeyError::UnsupportedScheme(flag[0]));
                }
                Self::from_bytes(rest)
            }
            n => Err(KeyError::Length(n)),
        }
    }

    /// The Sui CLI Bech32 format: `suiprivkey1…` over `0x00 || seed`. Secret.
    pub fn to_suiprivkey(&self) -> String {
        let mut payload = Vec::with_capacity(33);
        payload.push(ED25519_FLAG);
        payload.extend_from_slice(&self.seed);
        bech32::encode(SUIPRIVKEY_HRP, &payload)
    }

    /// Parses a `suiprivkey1…` string (Bech32, BIP-173 checksum, Ed25519 flag).
    pub fn from_suiprivkey(s: &str) -> Result<Self, KeyError> {
        let (hrp, payload) = bech32::decode(s.trim()).map_err(KeyError::Encoding)?;
        if hrp != SUIPRIVKEY_HRP {
            return Err(KeyError::Encoding(format!(
                "expected human-readable part `{SUIPRIVKEY_HRP}`, got `{hrp}`"
            )));
        }
        if payload.len() != 33 {
            return Err(KeyError::Length(payload.len().saturating_sub(1)));
        }
        Self::from_bytes(&payload)
    }

    /// Accepts any of the supported encodings: `suiprivkey1…`, hex of the seed (64 chars,
    /// optional `0x`), Base64 of the seed or of `flag || seed`.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        if s.to_ascii_lowercase().starts_with("suiprivkey1") {
            return Self::from_suiprivkey(s);
        }
        let unprefixed = s.strip_prefix("0x").unwrap_or(s);
        if unprefixed.len() == 64 && unprefixed.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Self::from_hex(s);
        }
        Self::from_base64(s)
    }

    /// Loads a key file written by [`SuiKeypair::save`] (or containing any format
    /// [`SuiKeypair::parse`] accepts).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Writes the key as a `suiprivkey1…` line to `path`, creating parent directories, with
    /// mode 0600 on Unix (the file is created with that mode; an existing file is re-chmodded).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        use std::io::Write as _;
        let path = path.as_ref();
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        file.write_all(format!("{}\n", self.to_suiprivkey()).as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(())
    }
}

/// Minimal BIP-173 Bech32 (not Bech32m), as used by `suiprivkey`.
mod bech32 {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    const GEN: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];

    fn polymod(values: impl IntoIterator<Item = u8>) -> u32 {
        let mut chk: u32 = 1;
        for v in values {
            let top = chk >> 25;
            chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
            for (i, g) in GEN.iter().enumerate() {
                if (top >> i) & 1 == 1 {
                    chk ^= g;
                }
            }
        }
        chk
    }

    fn hrp_expand(hrp: &str) -> Vec<u8> {
        let b = hrp.as_bytes();
        let mut out: Vec<u8> = b.iter().map(|c| c >> 5).collect();
        out.push(0);
        out.extend(b.iter().map(|c| c & 31));
        out
    }

    fn to_5bit(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() * 8 / 5 + 1);
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in data {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(((acc >> bits) & 31) as u8);
            }
        }
        if bits > 0 {
            out.push(((acc << (5 - bits)) & 31) as u8);
        }
        out
    }

    fn from_5bit(data: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(data.len() * 5 / 8);
        let (mut acc, mut bits) = (0u32, 0u32);
        for &v in data {
            acc = ((acc << 5) | u32::from(v)) & 0xfff;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((acc >> bits) & 0xff) as u8);
            }
        }
        if bits >= 5 || (acc << (8 - bits)) & 0xff != 0 {
            return Err("bech32: invalid padding".into());
        }
        Ok(out)
    }

    pub fn encode(hrp: &str, payload: &[u8]) -> String {
        let data = to_5bit(payload);
        let mut values = hrp_expand(hrp);
        values.extend_from_slice(&data);
        values.extend_from_slice(&[0; 6]);
        let pm = polymod(values) ^ 1;
        let mut s = String::with_capacity(hrp.len() + 1 + data.len() + 6);
        s.push_str(hrp);
        s.push('1');
        for d in data {
            s.push(char::from(CHARSET[usize::from(d)]));
        }
        for i in 0..6 {
            s.push(char::from(CHARSET[((pm >> (5 * (5 - i))) & 31) as usize]));
        }
        s
    }

    pub fn decode(s: &str) -> Result<(String, Vec<u8>), String> {
        if s.len() > 1023 {
            return Err("bech32: string too long".into());
        }
        if !s.bytes().all(|b| (33..=126).contains(&b)) {
            return Err("bech32: invalid character".into());
        }
        let has_lower = s.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = s.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            return Err("bech32: mixed case".into());
        }
        let s = s.to_ascii_lowercase();
        let sep = s.rfind('1').ok_or("bech32: missing separator")?;
        let (hrp, rest) = s.split_at(sep);
        let data_part = &rest[1..];
        if hrp.is_empty() || data_part.len() < 6 {
            return Err("bech32: too short".into());
        }
        let mut data = Vec::with_capacity(data_part.len());
        for c in data_part.bytes() {
            let v = CHARSET
                .iter()
                .position(|&x| x == c)
                .ok_or("bech32: invalid data character")?;
            data.push(v as u8);
        }
        let mut values = hrp_expand(hrp);
        values.extend_from_slice(&data);
        if polymod(values) != 1 {
            return Err("bech32: invalid checksum".into());
        }
        let payload = from_5bit(&data[..data.len() - 6])?;
        Ok((hrp.to_string(), payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bech32_bip173_vectors() {
        // Valid BIP-173 test strings.
        for s in [
            "A12UEL5L",
            "a12uel5l",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
            "?1ezyfcl",
        ] {
            assert!(bech32::decode(s).is_ok(), "{s}");
        }
        for s in [
            "A1G7SGD8",
            "a12UEL5L",
            "x1b4n0q5v",
            "li1dgmt3",
            "1pzry9x0s0muk",
            "10a06t8",
        ] {
            assert!(bech32::decode(s).is_err(), "{s}");
        }
        let (hrp, data) =
            bech32::decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw").expect("valid");
        assert_eq!(hrp, "abcdef");
        // 32 five-bit groups 0..=31 = 20 bytes.
        assert_eq!(
            hex::encode(data),
            "00443214c74254b635cf84653a56d7c675be77df"
        );
    }

    #[test]
    fn formats_round_trip() {
        let k = SuiKeypair::generate();
        assert_eq!(
            SuiKeypair::from_suiprivkey(&k.to_suiprivkey()).expect("bech32"),
            k
        );
        assert_eq!(SuiKeypair::from_hex(&k.to_hex()).expect("hex"), k);
        assert_eq!(
            SuiKeypair::from_hex(&format!("0x{}", k.to_hex())).expect("0x hex"),
            k
        );
        assert_eq!(SuiKeypair::from_base64(&k.to_base64()).expect("b64"), k);
        assert_eq!(
            SuiKeypair::from_base64(&k.to_keystore_base64()).expect("keystore"),
            k
        );
        for s in [
            k.to_suiprivkey(),
            k.to_hex(),
            k.to_base64(),
            k.to_keystore_base64(),
        ] {
            assert_eq!(SuiKeypair::parse(&s).expect("parse"), k);
        }
        assert!(k.to_suiprivkey().starts_with("suiprivkey1"));
        // The sui-crypto legacy Base64 format agrees with ours.
        assert_eq!(k.private_key().to_base64(), k.to_keystore_base64());
    }

    #[test]
    fn address_is_blake2b_of_flag_and_pubkey() {
        let k = SuiKeypair::from_seed([7u8; 32]);
        let mut pre = vec![0u8];
        pre.extend_from_slice(k.public_key().inner());
        let digest = sui_sdk_types::hash::Hasher::digest(&pre);
        assert_eq!(k.address(), Address::new(digest.into_inner()));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let k = SuiKeypair::from_seed([1u8; 32]);
        let mut s = k.to_suiprivkey();
        let last = s.pop().expect("non-empty");
        s.push(if last == 'q' { 'p' } else { 'q' });
        assert!(SuiKeypair::from_suiprivkey(&s).is_err());
        assert!(SuiKeypair::parse("").is_err());
        assert!(SuiKeypair::parse("zz").is_err());
        assert!(SuiKeypair::from_hex("abcd").is_err());
        let mut secp = vec![1u8];
        secp.extend_from_slice(&[0u8; 32]);
        assert!(matches!(
            SuiKeypair::from_bytes(&secp),
            Err(KeyError::UnsupportedScheme(1))
        ));
        let other_hrp = bech32::encode("suipubkey", &[0u8; 33]);
        assert!(SuiKeypair::from_suiprivkey(&other_hrp).is_err());
    }

    #[test]
    fn save_and_load_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/key");
        let k = SuiKeypair::generate();
        k.save(&path).expect("save");
        assert_eq!(SuiKeypair::load(&path).expect("load"), k);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            SuiKeypair::load(dir.path().join("missing")),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn debug_does_not_leak_seed() {
        let k = SuiKeypair::from_seed([0xab; 32]);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("abab"), "{dbg}");
    }
}
