//! Test support: the real API router over a fresh embedded store, authenticating one
//! `system:masters` identity by the token `tok` (the unit tests' in-process API server).

use std::sync::Arc;

use daas_apiserver::{router, LocalClient, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use serde_json::json;

pub(crate) struct TestApi {
    _dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub app: axum::Router,
}

impl TestApi {
    /// A bootstrapped store and router; `user` is the name the token `tok` authenticates as.
    pub async fn new(user: &str) -> TestApi {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap(),
        );
        daas_apiserver::bootstrap(&store).await.unwrap();
        let auth = Arc::new(StaticTokens::new(vec![(
            "tok".into(),
            User {
                name: user.into(),
                groups: vec!["system:masters".into()],
                ..Default::default()
            },
        )]));
        TestApi {
            app: router(store.clone(), auth, ServerOptions::default()),
            store,
            _dir: dir,
        }
    }

    pub fn client(&self) -> LocalClient {
        LocalClient::new(self.app.clone(), "tok")
    }

    /// The `default` ServiceAccount of `ns`, which pods need (no controller makes it here).
    pub async fn default_service_account(&self, ns: &str) {
        self.client()
            .create(
                &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
                &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
            )
            .await
            .unwrap();
    }
}
