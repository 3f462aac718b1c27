//! The in-process cluster the controller tests run against: the real router over a temporary
//! embedded store (bootstrapped), a client as a `system:masters` controller identity, and the
//! controller tasks, aborted when the cluster is dropped.

#![allow(dead_code)]

use std::sync::Arc;

use daas_apiserver::{router, LocalClient, ServerOptions, StaticTokens, User};
use daas_controllers::ControllerOptions;
use daas_store::{EmbeddedStore, SealingKey, Store};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub c: LocalClient,
    pub app: axum::Router,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The API server alone: no controller runs until the test starts some.
pub async fn api() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let auth = Arc::new(StaticTokens::new(vec![(
        "tok".into(),
        User {
            name: "system:kube-controller-manager".into(),
            groups: vec!["system:masters".into()],
        },
    )]));
    let app = router(store, auth, ServerOptions::default());
    let c = LocalClient::new(app.clone(), "tok");
    Env {
        dir,
        c,
        app,
        tasks: Vec::new(),
    }
}

/// The API server with every built-in controller running under `opts`.
pub async fn with_controllers(opts: ControllerOptions) -> Env {
    let mut e = api().await;
    e.tasks = daas_controllers::spawn(e.c.clone(), opts);
    e
}
