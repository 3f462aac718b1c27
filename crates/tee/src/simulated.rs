//! Simulated enclave: a real local implementation of [`Enclave`] for development and tests.
//!
//! * A development root CA (P-384) is created once in the caller's directory
//!   ([`DEV_ROOT_CERT_FILE`], [`DEV_ROOT_KEY_FILE`]) and reused afterwards. It is NOT the AWS
//!   root: verifiers must pin it explicitly ([`SimulatedEnclave::dev_root`]).
//! * At start an intermediate CA is issued by the dev root; every attestation gets a fresh leaf
//!   (valid 3 hours, like Nitro's) issued by the intermediate. `cabundle` = [dev root, intermediate].
//! * PCR0..2 are derived from the "image measurement" (default: SHA-384 of the running
//!   executable); PCR3..15 are zero.
//! * The sealing key is HKDF-SHA256 of a random 32-byte master secret kept in [`SEALED_KEY_FILE`],
//!   encrypted with AES-256-GCM under a key derived from PCR0..2: another measurement cannot
//!   unseal it ([`TeeError::Unseal`]).
//!
//! Limits: the "measurement" is not protected by hardware; anyone with the files and the binary
//! can derive the keys. This protects against accidental mix-ups, not against the host.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::Signer as _;
use hkdf::Hkdf;
use p384::pkcs8::DecodePrivateKey;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber, PKCS_ECDSA_P384_SHA384,
};
use sha2::{Digest, Sha256, Sha384};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use crate::cose::{es384_protected_header, CoseSign1};
use crate::doc::{AttestationFields, MAX_NONCE_LEN, MAX_USER_DATA_LEN};
use crate::pcrs::{Pcrs, PCR_LEN};
use crate::verify::RootCert;
use crate::{Enclave, TeeError};

pub const DEV_ROOT_CERT_FILE: &str = "dev-root.pem";
pub const DEV_ROOT_KEY_FILE: &str = "dev-root.key";
pub const SEALED_KEY_FILE: &str = "sealed.key";

const DEV_ROOT_CN: &str = "K3s-DaaS simulated enclave dev root (NOT AWS)";
const DEV_ORG: &str = "K3s-DaaS development";
const SEALED_MAGIC: &[u8; 8] = b"DAASSL01";
const SEALED_LEN: usize = 8 + 12 + 32 + 16;
const LEAF_LIFETIME: Duration = Duration::from_secs(3 * 3600);
const INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
const CLOCK_SKEW: Duration = Duration::from_secs(60);
const SIM_PCR_COUNT: u16 = 16;

/// Simulated Nitro-style enclave.
pub struct SimulatedEnclave {
    dir: PathBuf,
    root_dir: PathBuf,
    image_measurement: [u8; PCR_LEN],
    pcrs: Pcrs,
    module_id: String,
    sealing_key: [u8; 32],
    measurement_key: [u8; 32],
    identity: ed25519_dalek::SigningKey,
    root: RootCert,
    root_pem: String,
    intermediate: rcgen::Certificate,
    intermediate_key: KeyPair,
}

impl std::fmt::Debug for SimulatedEnclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedEnclave")
            .field("dir", &self.dir)
            .field("module_id", &self.module_id)
            .field("image_measurement", &hex::encode(self.image_measurement))
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TeeError + '_ {
    move |source| TeeError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn cert_err(e: impl std::fmt::Display) -> TeeError {
    TeeError::Certificate(e.to_string())
}

/// Write a file readable by the owner only, atomically (temp file + rename).
fn write_private(path: &Path, data: &[u8]) -> Result<(), TeeError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn odt(t: SystemTime) -> Result<OffsetDateTime, TeeError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TeeError::Certificate("clock before 1970".into()))?
        .as_secs();
    let secs = i64::try_from(secs).map_err(cert_err)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(cert_err)
}

fn random_serial() -> SerialNumber {
    let mut s = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s[0] &= 0x7f; // positive
    s[0] |= 0x01; // no leading zero byte
    SerialNumber::from(s.to_vec())
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, DEV_ORG);
    d.push(DnType::CommonName, cn);
    d
}

/// Parameters of the dev root (deterministic except validity/serial, which children do not use).
fn root_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(DEV_ROOT_CN);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2049, 12, 31);
    p.serial_number = Some(random_serial());
    p
}

fn load_or_create_root(
    dir: &Path,
) -> Result<(rcgen::Certificate, KeyPair, RootCert, String), TeeError> {
    let cert_path = dir.join(DEV_ROOT_CERT_FILE);
    let key_path = dir.join(DEV_ROOT_KEY_FILE);
    match (cert_path.exists(), key_path.exists()) {
        (false, false) => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(cert_err)?;
            let cert = root_params().self_signed(&key).map_err(cert_err)?;
            let pem = cert.pem();
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            write_private(&cert_path, pem.as_bytes())?;
            let root = RootCert::from_der(cert.der()).map_err(cert_err)?;
            Ok((cert, key, root, pem))
        }
        (true, true) => {
            let pem = fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
            let key_pem = fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
            let key = KeyPair::from_pem(&key_pem).map_err(cert_err)?;
            let root = RootCert::from_pem(&pem).map_err(cert_err)?;
            // The stored certificate must hold the stored key.
            let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(root.der())
                .map_err(cert_err)?;
            if parsed.public_key().raw != key.public_key_der().as_slice() {
                return Err(TeeError::Certificate(format!(
                    "{} does not match {}",
                    key_path.display(),
                    cert_path.display()
                )));
            }
            // Re-create an issuer object with the same name and key; children reference only
            // the subject name and key identifier, so they chain to the stored certificate.
            let issuer = root_params().self_signed(&key).map_err(cert_err)?;
            Ok((issuer, key, root, pem))
        }
        _ => Err(TeeError::Certificate(format!(
            "only one of {} and {} exists; remove both to create a new dev root",
            cert_path.display(),
            key_path.display()
        ))),
    }
}

fn wrap_key(pcrs: &Pcrs) -> [u8; 32] {
    let mut ikm = Vec::with_capacity(3 * PCR_LEN);
    for i in 0..3 {
        ikm.extend_from_slice(pcrs.get(i).map(|v| &v[..]).unwrap_or(&[0u8; PCR_LEN]));
    }
    let hk = Hkdf::<Sha256>::new(Some(b"k3s-daas/tee/sim/seal-wrap/v1"), &ikm);
    let mut okm = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(b"sealed.key wrapping key", &mut okm);
    okm
}

fn sealing_key_from_master(master: &[u8; 32]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(Some(b"k3s-daas/tee/sealing-key/v1"), master);
    let mut okm = [0u8; 32];
    let _ = hk.expand(b"state store", &mut okm);
    okm
}

/// The key every simulated enclave under the same dev root (the platform) with the same PCR0..2
/// derives: HKDF-SHA256 of the dev root's private key and the measurement.
fn measurement_key_for(root_key: &KeyPair, pcrs: &Pcrs) -> [u8; 32] {
    let mut ikm = root_key.serialize_der();
    for i in 0..3 {
        ikm.extend_from_slice(pcrs.get(i).map(|v| &v[..]).unwrap_or(&[0u8; PCR_LEN]));
    }
    let hk = Hkdf::<Sha256>::new(Some(b"k3s-daas/tee/sim/measurement-key/v1"), &ikm);
    let mut okm = [0u8; 32];
    let _ = hk.expand(b"measurement-bound key", &mut okm);
    okm
}

fn load_or_create_master(path: &Path, pcrs: &Pcrs) -> Result<[u8; 32], TeeError> {
    let cipher = Aes256Gcm::new(&wrap_key(pcrs).into());
    if path.exists() {
        let data = fs::read(path).map_err(io_err(path))?;
        if data.len() != SEALED_LEN || &data[..8] != SEALED_MAGIC {
            return Err(TeeError::SealedFileFormat {
                path: path.display().to_string(),
                reason: format!("expected {SEALED_LEN} bytes starting with the format magic"),
            });
        }
        let nonce = Nonce::from_slice(&data[8..20]);
        let plain = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &data[20..],
                    aad: SEALED_MAGIC,
                },
            )
            .map_err(|_| TeeError::Unseal {
                path: path.display().to_string(),
            })?;
        <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| TeeError::SealedFileFormat {
            path: path.display().to_string(),
            reason: "bad secret length".into(),
        })
    } else {
        let mut master = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut master);
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &master,
                    aad: SEALED_MAGIC,
                },
            )
            .map_err(|_| TeeError::Encoding("AES-GCM seal failed".into()))?;
        let mut out = Vec::with_capacity(SEALED_LEN);
        out.extend_from_slice(SEALED_MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        write_private(path, &out)?;
        Ok(master)
    }
}

impl SimulatedEnclave {
    /// Open (or initialise) the simulated enclave state in `dir` (e.g. `<data>/tee`), measuring the
    /// running executable.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, TeeError> {
        let m = Self::current_exe_measurement()?;
        Self::open_with_measurement(dir, m)
    }

    /// SHA-384 of `std::env::current_exe()`.
    pub fn current_exe_measurement() -> Result<[u8; PCR_LEN], TeeError> {
        let exe = std::env::current_exe().map_err(io_err(Path::new("current_exe")))?;
        let mut f = fs::File::open(&exe).map_err(io_err(&exe))?;
        let mut h = Sha384::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(io_err(&exe))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().into())
    }

    /// The PCRs a simulated enclave with this image measurement reports.
    pub fn pcrs_for_measurement(image_measurement: &[u8; PCR_LEN]) -> Pcrs {
        let mut pcrs = Pcrs::default();
        for i in 0..SIM_PCR_COUNT {
            let v = if i <= 2 {
                let mut h = Sha384::new();
                h.update(b"k3s-daas/tee/sim/pcr");
                h.update([i as u8]);
                h.update(image_measurement);
                h.finalize().into()
            } else {
                [0u8; PCR_LEN]
            };
            pcrs.insert(i, v);
        }
        pcrs
    }

    /// Open with an explicit image measurement (tests, reproducible dev setups).
    pub fn open_with_measurement(
        dir: impl Into<PathBuf>,
        image_measurement: [u8; PCR_LEN],
    ) -> Result<Self, TeeError> {
        let dir = dir.into();
        let root_dir = dir.clone();
        Self::open_with_root(dir, image_measurement, &root_dir)
    }

    /// Like [`SimulatedEnclave::open_with_measurement`], with the dev root (the simulated
    /// platform vendor's root) kept in `root_dir` ([`DEV_ROOT_CERT_FILE`], [`DEV_ROOT_KEY_FILE`],
    /// created there if absent) instead of `dir`: enclaves on one simulated "platform" share it,
    /// so each one's documents verify against the same root.
    pub fn open_with_root(
        dir: impl Into<PathBuf>,
        image_measurement: [u8; PCR_LEN],
        root_dir: &Path,
    ) -> Result<Self, TeeError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        fs::create_dir_all(root_dir).map_err(io_err(root_dir))?;
        let pcrs = Self::pcrs_for_measurement(&image_measurement);
        let master = load_or_create_master(&dir.join(SEALED_KEY_FILE), &pcrs)?;
        let sealing_key = sealing_key_from_master(&master);
        let (root_issuer, root_key, root, root_pem) = load_or_create_root(root_dir)?;
        let measurement_key = measurement_key_for(&root_key, &pcrs);

        let mut rnd = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut rnd);
        let pcr0 = pcrs.get(0).copied().unwrap_or([0u8; PCR_LEN]);
        let module_id = format!("i-sim{}-enc{}", hex::encode(&pcr0[..8]), hex::encode(rnd));

        let now = SystemTime::now();
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(&format!("{} intermediate", module_id));
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = odt(now - CLOCK_SKEW)?;
        p.not_after = odt(now + INTERMEDIATE_LIFETIME)?.min(root_issuer.params().not_after);
        p.serial_number = Some(random_serial());
        p.use_authority_key_identifier_extension = true;
        let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(cert_err)?;
        let intermediate = p
            .signed_by(&intermediate_key, &root_issuer, &root_key)
            .map_err(cert_err)?;

        let identity = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Ok(Self {
            dir,
            root_dir: root_dir.to_path_buf(),
            image_measurement,
            pcrs,
            module_id,
            sealing_key,
            measurement_key,
            identity,
            root,
            root_pem,
            intermediate,
            intermediate_key,
        })
    }

    /// The dev root to pin when verifying this enclave's documents.
    pub fn dev_root(&self) -> RootCert {
        self.root.clone()
    }

    /// PEM of the dev root (what users must explicitly trust).
    pub fn dev_root_pem(&self) -> &str {
        &self.root_pem
    }

    pub fn dev_root_path(&self) -> PathBuf {
        self.root_dir.join(DEV_ROOT_CERT_FILE)
    }

    pub fn image_measurement(&self) -> [u8; PCR_LEN] {
        self.image_measurement
    }

    pub fn module_id(&self) -> &str {
        &self.module_id
    }

    fn issue_leaf(&self, now: SystemTime) -> Result<(Vec<u8>, p384::ecdsa::SigningKey), TeeError> {
        let mut p = CertificateParams::default();
        p.distinguished_name = dn(&self.module_id);
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        p.not_before = odt(now - CLOCK_SKEW)?;
        p.not_after = odt(now + LEAF_LIFETIME)?.min(self.intermediate.params().not_after);
        p.serial_number = Some(random_serial());
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(cert_err)?;
        let cert = p
            .signed_by(&key, &self.intermediate, &self.intermediate_key)
            .map_err(cert_err)?;
        let sk = p384::SecretKey::from_pkcs8_der(&key.serialize_der()).map_err(cert_err)?;
        Ok((cert.der().to_vec(), p384::ecdsa::SigningKey::from(sk)))
    }
}

impl Enclave for SimulatedEnclave {
    fn sealing_key(&self) -> [u8; 32] {
        self.sealing_key
    }

    fn public_key(&self) -> [u8; 32] {
        self.identity.verifying_key().to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.identity.sign(msg).to_bytes()
    }

    fn attestation(
        &self,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, TeeError> {
        if user_data.is_some_and(|u| u.len() > MAX_USER_DATA_LEN) {
            return Err(TeeError::InvalidRequest(format!(
                "user_data longer than {MAX_USER_DATA_LEN} bytes"
            )));
        }
        if nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN) {
            return Err(TeeError::InvalidRequest(format!(
                "nonce longer than {MAX_NONCE_LEN} bytes"
            )));
        }
        let now = SystemTime::now();
        let (leaf_der, leaf_key) = self.issue_leaf(now)?;
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
            .max(1);
        let fields = AttestationFields {
            module_id: self.module_id.clone(),
            digest: "SHA384".into(),
            timestamp,
            pcrs: self.pcrs.iter().map(|(i, v)| (i, v.to_vec())).collect(),
            certificate: leaf_der,
            cabundle: vec![self.root.der().to_vec(), self.intermediate.der().to_vec()],
            public_key: Some(self.public_key().to_vec()),
            user_data: user_data.map(<[u8]>::to_vec),
            nonce: nonce.map(<[u8]>::to_vec),
        };
        let payload = fields.to_cbor().map_err(TeeError::Encoding)?;
        let protected = es384_protected_header();
        let tbs = CoseSign1::sig_structure(&protected, &payload).map_err(TeeError::Encoding)?;
        let sig: p384::ecdsa::Signature = leaf_key.sign(&tbs);
        CoseSign1 {
            protected,
            payload,
            signature: sig.to_bytes().to_vec(),
        }
        .to_bytes()
        .map_err(TeeError::Encoding)
    }

    fn measurement(&self) -> Pcrs {
        self.pcrs.clone()
    }

    fn measurement_key(&self) -> Result<[u8; 32], TeeError> {
        Ok(self.measurement_key)
    }
}

#[cfg(test)]
mod measurement_key_tests {
    use super::*;

    fn copy_root(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for f in [DEV_ROOT_CERT_FILE, DEV_ROOT_KEY_FILE] {
            fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }

    #[test]
    fn same_platform_and_measurement_share_it_nothing_else_does() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let ea = SimulatedEnclave::open_with_measurement(a.path(), [1; PCR_LEN]).unwrap();
        copy_root(a.path(), b.path());
        let eb = SimulatedEnclave::open_with_measurement(b.path(), [1; PCR_LEN]).unwrap();
        // Same platform root and measurement: the same key, though each has its own sealing key.
        assert_eq!(ea.measurement_key().unwrap(), eb.measurement_key().unwrap());
        assert_ne!(ea.sealing_key(), eb.sealing_key());
        assert_ne!(ea.measurement_key().unwrap(), ea.sealing_key());
        // Another measurement on the same platform.
        copy_root(a.path(), &c.path().join("m2"));
        let other_m =
            SimulatedEnclave::open_with_measurement(c.path().join("m2"), [2; PCR_LEN]).unwrap();
        assert_ne!(
            ea.measurement_key().unwrap(),
            other_m.measurement_key().unwrap()
        );
        // Same measurement on another platform (its own dev root).
        let other_p =
            SimulatedEnclave::open_with_measurement(c.path().join("p2"), [1; PCR_LEN]).unwrap();
        assert_ne!(
            ea.measurement_key().unwrap(),
            other_p.measurement_key().unwrap()
        );
    }
}
