//! The API server's service-account signing key: a P-256 key created inside the enclave the first
//! time a master opens its sealed store and kept there (sealed under the enclave key like every
//! value of the store, outside `/registry/` so no API request reaches it).

use std::sync::Arc;

use daas_apiserver::satoken::{self, ServiceAccountTokens};
use daas_store::Store;

use crate::MasterError;

pub use daas_apiserver::satoken::DEFAULT_ISSUER;

/// Store key of the service-account signing key (PKCS#8 DER).
pub const SIGNING_KEY: &str = "/daas/service-account-signing-key";

/// The signing key: read back, or created (and sealed in the store) on first start.
pub async fn signing_key(store: &Arc<dyn Store>) -> Result<Vec<u8>, MasterError> {
    if let Some(kv) = store.get(SIGNING_KEY).await? {
        return Ok(kv.value.to_vec());
    }
    let key = satoken::generate_key().map_err(|e| MasterError::Config(e.to_string()))?;
    match store.create(SIGNING_KEY, &key).await {
        Ok(_) => Ok(key),
        // Another master of the same store created it first: use that one.
        Err(e) => match store.get(SIGNING_KEY).await? {
            Some(kv) => Ok(kv.value.to_vec()),
            None => Err(e.into()),
        },
    }
}

/// The issuer of this master: its sealed key, the configured issuer URL, and the API audiences
/// (the issuer itself when none are configured, as upstream).
pub async fn issuer(
    store: &Arc<dyn Store>,
    issuer_url: &str,
    audiences: Vec<String>,
) -> Result<Arc<ServiceAccountTokens>, MasterError> {
    let key = signing_key(store).await?;
    ServiceAccountTokens::new(&key, issuer_url, audiences)
        .map(Arc::new)
        .map_err(|e| MasterError::Config(format!("service-account signing key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_store::{EmbeddedStore, SealingKey};

    #[tokio::test]
    async fn key_is_created_once_and_sealed_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let sealing = SealingKey::generate();
        let path = dir.path().join("s.redb");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path, sealing.clone()).unwrap());
        let a = issuer(&store, satoken::DEFAULT_ISSUER, vec![])
            .await
            .unwrap();
        let b = issuer(&store, satoken::DEFAULT_ISSUER, vec![])
            .await
            .unwrap();
        assert_eq!(a.kid(), b.kid());
        drop(store);
        // The raw database never holds the key in the clear.
        let raw = std::fs::read(&path).unwrap();
        let key = {
            let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path, sealing).unwrap());
            signing_key(&store).await.unwrap()
        };
        assert!(!raw.windows(key.len()).any(|w| w == key.as_slice()));
    }
}
