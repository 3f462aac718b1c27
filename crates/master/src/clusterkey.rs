//! The cluster key: the 32-byte key every master of one cluster seals the state store with.
//!
//! - The first master of a cluster uses its own enclave's sealing key (nothing is written).
//! - A master that joins a running cluster gets the key from a master that verified its
//!   attestation, and a restored snapshot brings the key of the cluster it was taken from.
//!
//! Either way the key is kept on disk only sealed under this enclave's own sealing key
//! (`<data>/tee/cluster.key`): the host operator never sees it, and an enclave with another
//! measurement (or another machine's enclave) cannot open the file.

use std::path::{Path, PathBuf};

use daas_store::SealingKey;
use daas_tee::Enclave;

/// File name of the sealed cluster key in the enclave directory (`<data>/tee`).
pub const CLUSTER_KEY_FILE: &str = "cluster.key";
/// Additional data of the sealed file: the value cannot be moved into another sealed slot.
const AAD: &[u8] = b"daas/cluster-key/v1";

/// The raw cluster key. Its `Debug` shows only the key id.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClusterKey")
            .field(&self.sealing_key().key_id_hex())
            .finish()
    }
}

impl ClusterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ClusterKey(bytes)
    }

    /// The key of a cluster whose first master runs in `enclave`.
    pub fn of_enclave(enclave: &dyn Enclave) -> Self {
        ClusterKey(enclave.sealing_key())
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The store's sealing key.
    pub fn sealing_key(&self) -> SealingKey {
        SealingKey::from_bytes(self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterKeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot unseal the cluster key {path}: it was sealed by another enclave (different measurement or machine), or the file is corrupt")]
    Unseal { path: PathBuf },
    #[error("sealing the cluster key: {0}")]
    Seal(#[source] daas_store::StoreError),
}

fn own_key(enclave: &dyn Enclave) -> SealingKey {
    SealingKey::from_bytes(enclave.sealing_key())
}

/// The cluster key kept in `tee_dir`, if any.
pub fn load(tee_dir: &Path, enclave: &dyn Enclave) -> Result<Option<ClusterKey>, ClusterKeyError> {
    let path = tee_dir.join(CLUSTER_KEY_FILE);
    let sealed = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ClusterKeyError::Io { path, source }),
    };
    let plain = own_key(enclave)
        .unseal(AAD, &sealed)
        .map_err(|_| ClusterKeyError::Unseal { path: path.clone() })?;
    let bytes: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| ClusterKeyError::Unseal { path })?;
    Ok(Some(ClusterKey(bytes)))
}

/// Keep `key` in `tee_dir`, sealed under this enclave's own key (mode 0600, atomic replace).
pub fn save(
    tee_dir: &Path,
    enclave: &dyn Enclave,
    key: &ClusterKey,
) -> Result<(), ClusterKeyError> {
    let path = tee_dir.join(CLUSTER_KEY_FILE);
    let sealed = own_key(enclave)
        .seal(AAD, &key.0)
        .map_err(ClusterKeyError::Seal)?;
    std::fs::create_dir_all(tee_dir).map_err(|source| ClusterKeyError::Io {
        path: tee_dir.to_path_buf(),
        source,
    })?;
    daas_apiserver::files::write_private(&path, &sealed)
        .map_err(|source| ClusterKeyError::Io { path, source })
}

/// The key this master seals its store with: the one kept in `tee_dir`, else its own enclave's.
pub fn resolve(tee_dir: &Path, enclave: &dyn Enclave) -> Result<ClusterKey, ClusterKeyError> {
    Ok(load(tee_dir, enclave)?.unwrap_or_else(|| ClusterKey::of_enclave(enclave)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_tee::SimulatedEnclave;

    fn enclave(dir: &Path, m: u8) -> SimulatedEnclave {
        SimulatedEnclave::open_with_measurement(dir, [m; daas_tee::PCR_LEN]).unwrap()
    }

    #[test]
    fn without_a_file_the_first_master_uses_its_enclave_key() {
        let d = tempfile::tempdir().unwrap();
        let e = enclave(d.path(), 1);
        assert_eq!(load(d.path(), &e).unwrap(), None);
        assert_eq!(resolve(d.path(), &e).unwrap().bytes(), &e.sealing_key());
    }

    #[test]
    fn a_saved_key_is_sealed_and_comes_back() {
        let d = tempfile::tempdir().unwrap();
        let e = enclave(d.path(), 1);
        let k = ClusterKey::from_bytes([7; 32]);
        save(d.path(), &e, &k).unwrap();
        let raw = std::fs::read(d.path().join(CLUSTER_KEY_FILE)).unwrap();
        assert!(
            !raw.windows(32).any(|w| w == [7; 32]),
            "key on disk in the clear"
        );
        assert_eq!(resolve(d.path(), &e).unwrap(), k);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join(CLUSTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn another_enclave_or_a_tampered_file_cannot_open_it() {
        let d = tempfile::tempdir().unwrap();
        let e = enclave(d.path(), 1);
        save(d.path(), &e, &ClusterKey::from_bytes([7; 32])).unwrap();
        // Same directory (same master secret file) but another measurement: refused.
        let other_dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            d.path().join(CLUSTER_KEY_FILE),
            other_dir.path().join(CLUSTER_KEY_FILE),
        )
        .unwrap();
        let other = enclave(other_dir.path(), 2);
        assert!(matches!(
            load(other_dir.path(), &other),
            Err(ClusterKeyError::Unseal { .. })
        ));
        let p = d.path().join(CLUSTER_KEY_FILE);
        let mut raw = std::fs::read(&p).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(&p, raw).unwrap();
        assert!(matches!(
            load(d.path(), &e),
            Err(ClusterKeyError::Unseal { .. })
        ));
    }
}
