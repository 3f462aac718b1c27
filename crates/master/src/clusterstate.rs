//! What every master of one cluster shares, kept in the sealed store (outside `/registry/`, so no
//! API request reaches it): the cluster CA (certificate and key) and the admin token. The first
//! master to start creates them (or adopts the ones an existing single-master data directory has
//! on disk); later masters read them. Creation is a store `create`, so two masters starting at
//! once on one etcd agree on a single value.

use std::path::Path;
use std::sync::Arc;

use daas_apiserver::ClusterCa;
use daas_store::{Store, StoreError};

use crate::MasterError;

/// Store key of the cluster CA (JSON `{"cert": PEM, "key": PEM}`).
pub const CLUSTER_CA_KEY: &str = "/daas/cluster-ca";
/// Store key of the admin token.
pub const ADMIN_TOKEN_KEY: &str = "/daas/admin-token";

/// Create `key` with `make()` unless it exists; if another master created it in the meantime,
/// its value wins.
async fn get_or_create(
    store: &Arc<dyn Store>,
    key: &str,
    make: impl FnOnce() -> Result<Vec<u8>, MasterError>,
) -> Result<Vec<u8>, MasterError> {
    if let Some(kv) = store.get(key).await? {
        return Ok(kv.value);
    }
    let v = make()?;
    match store.create(key, &v).await {
        Ok(_) => Ok(v),
        Err(StoreError::AlreadyExists(_)) => match store.get(key).await? {
            Some(kv) => Ok(kv.value),
            None => Err(StoreError::NotFound(key.to_string()).into()),
        },
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCa {
    cert: String,
    key: String,
}

/// The cluster CA: from the store; else the one in `tls_dir` (`ca.crt` + `ca.key` of a
/// single-master data directory), else a new one; stored for every other master.
pub async fn cluster_ca(store: &Arc<dyn Store>, tls_dir: &Path) -> Result<ClusterCa, MasterError> {
    let raw = get_or_create(store, CLUSTER_CA_KEY, || {
        let ca = match ClusterCa::load_legacy(tls_dir)? {
            Some(ca) => {
                tracing::info!(dir = %tls_dir.display(), "adopting the cluster CA of this data directory into the sealed store");
                ca
            }
            None => ClusterCa::generate()?,
        };
        serde_json::to_vec(&StoredCa {
            cert: ca.cert_pem,
            key: ca.key_pem,
        })
        .map_err(|e| MasterError::Config(format!("cluster CA: {e}")))
    })
    .await?;
    let s: StoredCa = serde_json::from_slice(&raw)
        .map_err(|e| MasterError::Config(format!("cluster CA in the store: {e}")))?;
    Ok(ClusterCa {
        cert_pem: s.cert,
        key_pem: s.key,
    })
}

/// The admin token: from the store; else `token_file` of a single-master data directory, else a
/// new random one; stored for every other master. The caller writes it into this master's
/// `admin.token` and `kubeconfig.yaml`.
pub async fn admin_token(store: &Arc<dyn Store>, token_file: &Path) -> Result<String, MasterError> {
    let raw = get_or_create(store, ADMIN_TOKEN_KEY, || {
        let legacy = std::fs::read_to_string(token_file)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        Ok(legacy.unwrap_or_else(|| crate::random_hex(32)).into_bytes())
    })
    .await?;
    String::from_utf8(raw)
        .map(|t| t.trim().to_string())
        .map_err(|_| MasterError::Config("admin token in the store is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_store::{EmbeddedStore, SealingKey};

    fn store(dir: &Path) -> Arc<dyn Store> {
        Arc::new(EmbeddedStore::open(&dir.join("s.redb"), SealingKey::generate()).unwrap())
    }

    #[tokio::test]
    async fn first_master_creates_later_ones_read() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        let ca_a = cluster_ca(&s, &a.join("tls")).await.unwrap();
        let ca_b = cluster_ca(&s, &b.join("tls")).await.unwrap();
        assert_eq!(ca_a, ca_b);
        let t_a = admin_token(&s, &a.join("admin.token")).await.unwrap();
        let t_b = admin_token(&s, &b.join("admin.token")).await.unwrap();
        assert_eq!(t_a, t_b);
        assert_eq!(t_a.len(), 64);
    }

    /// A data directory from before: its CA and admin token are adopted, so kubeconfigs and
    /// certificates issued by the single master keep working.
    #[tokio::test]
    async fn an_existing_single_master_directory_is_adopted() {
        let d = tempfile::tempdir().unwrap();
        let tls = d.path().join("tls");
        let old = daas_apiserver::TlsMaterial::load_or_generate(&tls, &[]).unwrap();
        std::fs::write(d.path().join("admin.token"), "old-token\n").unwrap();
        let s = store(d.path());
        assert_eq!(
            cluster_ca(&s, &tls).await.unwrap().cert_pem,
            old.ca_cert_pem
        );
        assert_eq!(
            admin_token(&s, &d.path().join("admin.token"))
                .await
                .unwrap(),
            "old-token"
        );
        // The store now decides, whatever another master's disk holds.
        let other = tempfile::tempdir().unwrap();
        daas_apiserver::TlsMaterial::load_or_generate(other.path(), &[]).unwrap();
        std::fs::write(other.path().join("admin.token"), "another").unwrap();
        assert_eq!(
            cluster_ca(&s, other.path()).await.unwrap().cert_pem,
            old.ca_cert_pem
        );
        assert_eq!(
            admin_token(&s, &other.path().join("admin.token"))
                .await
                .unwrap(),
            "old-token"
        );
    }

    /// Two masters racing on one store agree on one value.
    #[tokio::test]
    async fn concurrent_first_starts_agree() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let (px, py) = (d.path().join("x"), d.path().join("y"));
        let (x, y) = tokio::join!(cluster_ca(&s, &px), cluster_ca(&s, &py));
        assert_eq!(x.unwrap(), y.unwrap());
    }
}
