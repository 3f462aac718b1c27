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
    /// The store under the API server, for state only the master sees (allocator reservations).
    pub store: Arc<dyn Store>,
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
    api_with_users(Vec::new()).await
}

/// [`api`] also authenticating `users` (token, identity), for clients made with
/// `LocalClient::new(env.app.clone(), token)`.
pub async fn api_with_users(users: Vec<(String, User)>) -> Env {
    api_with_options(users, ServerOptions::default()).await
}

/// [`api_with_users`] with the API server built from `server` (e.g. a node proxy behind
/// metrics.k8s.io).
pub async fn api_with_options(users: Vec<(String, User)>, server: ServerOptions) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let mut tokens = vec![(
        "tok".into(),
        User {
            name: "system:kube-controller-manager".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        },
    )];
    tokens.extend(users);
    let auth = Arc::new(StaticTokens::new(tokens));
    let app = router(store.clone(), auth, server);
    let c = LocalClient::new(app.clone(), "tok");
    // The `default` ServiceAccount the serviceaccount controller makes, which pods need.
    c.create(
        "/api/v1/namespaces/default/serviceaccounts",
        &serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default"}}),
    )
    .await
    .unwrap();
    Env {
        dir,
        c,
        app,
        store,
        tasks: Vec::new(),
    }
}

/// The API server with every built-in controller running under `opts`.
pub async fn with_controllers(opts: ControllerOptions) -> Env {
    with_controllers_on(opts, ServerOptions::default()).await
}

/// [`with_controllers`] over an API server built from `server`.
pub async fn with_controllers_on(opts: ControllerOptions, server: ServerOptions) -> Env {
    let mut e = api_with_options(Vec::new(), server).await;
    e.tasks = daas_controllers::spawn(e.c.clone(), opts.clone());
    // Every namespace's `default` ServiceAccount, which pods need (the master runs it beside these).
    e.tasks.push(daas_controllers::spawn_controller(
        e.c.clone(),
        daas_controllers::serviceaccounts::ServiceAccountsController::new(e.c.clone()),
        &opts,
    ));
    e
}
