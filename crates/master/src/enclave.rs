//! Which enclave the master runs in, and how its measurement is chosen.

use std::path::Path;
use std::sync::Arc;

use daas_tee::{Enclave, RootCert, SimulatedEnclave, PCR_LEN};
use sha2::{Digest, Sha384};

use crate::MasterError;

/// How the simulated enclave measures itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measurement {
    /// SHA-384 of the running executable, as a real enclave image measurement would be: state
    /// sealed by one build cannot be opened by another.
    Binary,
    /// A stable development identity per release (`k3s-daas-dev:<version>`), so local state survives rebuilds.
    Release,
    /// Explicit 48-byte measurement (hex).
    Fixed([u8; PCR_LEN]),
}

impl std::str::FromStr for Measurement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "binary" => Ok(Measurement::Binary),
            "release" => Ok(Measurement::Release),
            hexs => {
                let b = hex::decode(hexs).map_err(|e| {
                    format!("measurement must be binary, release or 96 hex chars: {e}")
                })?;
                let arr: [u8; PCR_LEN] = b
                    .try_into()
                    .map_err(|_| "measurement must be 48 bytes (96 hex characters)".to_string())?;
                Ok(Measurement::Fixed(arr))
            }
        }
    }
}

pub fn release_measurement() -> [u8; PCR_LEN] {
    let mut h = Sha384::new();
    h.update(b"k3s-daas-dev:");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.finalize().into()
}

/// The enclave the master runs in plus what clients need to verify it.
#[derive(Clone)]
pub struct EnclaveHandle {
    pub enclave: Arc<dyn Enclave>,
    pub kind: &'static str,
    /// Root a verifier must pin for this enclave's documents (the dev root for the simulator).
    pub root: RootCert,
    pub root_pem: String,
    /// SEV-SNP / TDX evidence for attested TLS (`--tee`): when set, the attestation endpoint
    /// answers with this platform's report instead of the enclave's Nitro-format document.
    /// The sealing key, the Ed25519 key and the simulated platform's registration stay the
    /// enclave's (see the design notes: no hardware key derivation on SNP/TDX yet).
    pub evidence: Option<Arc<dyn daas_tee::EvidenceProvider>>,
    /// The ledger Enclave object the answer names when the master does not register itself
    /// (`--enclave-object`, e.g. an SNP/TDX enclave registered by the admin with
    /// `register_attested_enclave`); a registration made by this master wins.
    pub enclave_object: Option<String>,
}

pub fn open_simulated(dir: &Path, m: &Measurement) -> Result<EnclaveHandle, MasterError> {
    open_simulated_with_root(dir, m, None)
}

/// The simulated enclave in `dir`; its dev root (the simulated platform vendor's root) is kept in
/// `dev_root` when given (`--enclave-dev-root`, shared by the masters of one "platform" so their
/// documents verify against one root), else in `dir`.
pub fn open_simulated_with_root(
    dir: &Path,
    m: &Measurement,
    dev_root: Option<&Path>,
) -> Result<EnclaveHandle, MasterError> {
    simulated(dir, m, dev_root).map_err(MasterError::Tee)
}

pub(crate) fn simulated(
    dir: &Path,
    m: &Measurement,
    dev_root: Option<&Path>,
) -> Result<EnclaveHandle, daas_tee::TeeError> {
    let measurement = match m {
        Measurement::Binary => SimulatedEnclave::current_exe_measurement()?,
        Measurement::Release => release_measurement(),
        Measurement::Fixed(x) => *x,
    };
    let sim =
        SimulatedEnclave::open_with_root(dir.to_path_buf(), measurement, dev_root.unwrap_or(dir))?;
    let root = sim.dev_root();
    let root_pem = sim.dev_root_pem().to_string();
    Ok(EnclaveHandle {
        enclave: Arc::new(sim),
        kind: "simulated",
        root,
        root_pem,
        evidence: None,
        enclave_object: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_parsing() {
        assert_eq!(
            "binary".parse::<Measurement>().unwrap(),
            Measurement::Binary
        );
        assert_eq!(
            "release".parse::<Measurement>().unwrap(),
            Measurement::Release
        );
        assert!(matches!(
            "ab".repeat(48).parse::<Measurement>().unwrap(),
            Measurement::Fixed(_)
        ));
        assert!("abcd".parse::<Measurement>().is_err());
        assert_ne!(release_measurement(), [0u8; PCR_LEN]);
    }
}
