//! K3s-DaaS trusted execution environment ("Nautilus TEE").
//!
//! * [`Enclave`]: what the control plane needs from its enclave: a sealing key for the state store,
//!   an ephemeral Ed25519 identity key, signatures with it, and an AWS Nitro format attestation
//!   document binding that key (and caller data) to the enclave measurement (PCRs).
//! * [`verify_attestation`]: verification of Nitro attestation documents against pinned roots with an
//!   injected clock (the AWS Nitro root is embedded, see [`RootCert::aws_nitro`]).
//! * [`SimulatedEnclave`]: a real (non-mock) local implementation with its own development root CA.
//!   Its documents verify only against that dev root, never against the AWS root.
//! * [`sevsnp`] and [`tdx`]: AMD SEV-SNP report and Intel TDX DCAP quote verification against
//!   pinned AMD / Intel roots, and [`platform`]: one [`EvidenceVerifier`] interface over the three
//!   platforms with the `--expect-measurement` syntax.
//! * `NitroEnclave` (cargo feature `nitro`): the production backend on top of `/dev/nsm`.

mod cose;
mod doc;
mod intent;
#[cfg(feature = "nitro")]
mod nitro;
mod pcrs;
pub mod platform;
pub mod sevsnp;
mod simulated;
pub mod tdx;
pub mod tsm;
mod verify;

pub use doc::AttestationFields;
pub use intent::intent_message_bcs;
#[cfg(feature = "nitro")]
pub use nitro::NitroEnclave;
pub use pcrs::{ExpectedPcrs, Pcrs, PCR_LEN};
pub use platform::{
    freshness_digest, parse_expect_measurements, report_data_binding, Evidence,
    EvidenceDecodeError, EvidenceError, EvidenceVerifier, ExpectedMeasurement,
    MeasurementParseError, Platform, VerifiedEvidence, Verifiers,
};
pub use simulated::{SimulatedEnclave, DEV_ROOT_CERT_FILE, DEV_ROOT_KEY_FILE, SEALED_KEY_FILE};
pub use tsm::{ConfigfsTsm, EvidenceProvider, TsmError};
pub use verify::{
    verify_attestation, AttestationError, RootCert, VerifiedAttestation, AWS_NITRO_ROOT_PEM,
    AWS_NITRO_ROOT_SHA256,
};

/// Errors raised by an [`Enclave`] backend.
#[derive(Debug, thiserror::Error)]
pub enum TeeError {
    #[error("tee i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The sealed master secret exists but cannot be decrypted with the key derived from the
    /// current measurement (different image, or the file was tampered with).
    #[error("cannot unseal {path}: measurement differs from the one that sealed it, or the file is corrupt")]
    Unseal { path: String },
    #[error("invalid sealed key file {path}: {reason}")]
    SealedFileFormat { path: String, reason: String },
    #[error("certificate/key error: {0}")]
    Certificate(String),
    #[error("invalid attestation request: {0}")]
    InvalidRequest(String),
    #[error("cbor encoding error: {0}")]
    Encoding(String),
    #[error("nitro secure module error: {0}")]
    Nsm(String),
    /// The backend cannot provide this operation (e.g. a measurement-bound key on Nitro, which
    /// needs AWS KMS with an attestation-conditioned key policy).
    #[error("unsupported by the {backend} enclave: {what}")]
    Unsupported {
        backend: &'static str,
        what: &'static str,
    },
}

/// An enclave runtime (simulated or AWS Nitro).
pub trait Enclave: Send + Sync {
    /// 32-byte key for the state store, bound to the enclave measurement.
    fn sealing_key(&self) -> [u8; 32];
    /// Ephemeral Ed25519 public key generated when the enclave started.
    fn public_key(&self) -> [u8; 32];
    /// Ed25519 signature of `msg` by the ephemeral key.
    fn sign(&self, msg: &[u8]) -> [u8; 64];
    /// AWS Nitro format attestation document (tagged CBOR COSE_Sign1, ES384) whose `public_key`
    /// field is [`Enclave::public_key`].
    fn attestation(
        &self,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, TeeError>;
    /// Current measurement registers.
    fn measurement(&self) -> Pcrs;
    /// 32-byte key that every enclave with the SAME measurement on the same platform derives,
    /// and no other: what a snapshot seals the cluster key under, so a new master set (fresh
    /// data directories, same image and platform) can open it. Simulated: derived from the dev
    /// root (platform) key and PCR0..2. Nitro: [`TeeError::Unsupported`] (needs KMS).
    fn measurement_key(&self) -> Result<[u8; 32], TeeError>;
}

impl<E: Enclave + ?Sized> Enclave for std::sync::Arc<E> {
    fn sealing_key(&self) -> [u8; 32] {
        (**self).sealing_key()
    }
    fn public_key(&self) -> [u8; 32] {
        (**self).public_key()
    }
    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        (**self).sign(msg)
    }
    fn attestation(
        &self,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, TeeError> {
        (**self).attestation(user_data, nonce)
    }
    fn measurement(&self) -> Pcrs {
        (**self).measurement()
    }
    fn measurement_key(&self) -> Result<[u8; 32], TeeError> {
        (**self).measurement_key()
    }
}

/// Verify an Ed25519 signature made by an enclave key (e.g. the `public_key` of a verified
/// attestation). Returns false on malformed keys or signatures.
pub fn verify_enclave_signature(public_key: &[u8], msg: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}
