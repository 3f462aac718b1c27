//! The user-namespace controller: every user-tier staker gets a namespace of its own
//! (`u-<address prefix>`, labelled `k3s-daas.io/tier=user`, so Pod Security "restricted" applies)
//! and, when the namespace is new, the RoleBinding of `daas:namespace-owner` for its owner group.
//!
//! The ledger cannot list who holds a user-tier seal token, so the demand comes from the
//! authenticator: [`UserNamespaces::ensure`] records a namespace and wakes the controller; the
//! first request of a new user waits (bounded) until its namespace exists. An admin's later change
//! or removal of the binding is kept (it is only made together with the namespace); a deleted
//! namespace is made again on its owner's next fresh authentication.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::rbac::user_namespace_binding;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::Controller;

/// The label that marks a namespace as a user tier's (Pod Security "restricted").
pub const TIER_LABEL: &str = "k3s-daas.io/tier";

const NAMESPACES: &str = "/api/v1/namespaces";

#[derive(Default)]
struct Demand {
    /// Namespaces to check (new users, or a fresh authentication of a known one).
    pending: BTreeSet<String>,
    /// Namespaces known to exist.
    ready: HashSet<String>,
}

/// The handle the authenticator holds; cheap to clone.
#[derive(Clone)]
pub struct UserNamespaces {
    demand: Arc<Mutex<Demand>>,
    wake: Arc<Notify>,
    done: watch::Sender<u64>,
}

impl Default for UserNamespaces {
    fn default() -> Self {
        UserNamespaces {
            demand: Arc::default(),
            wake: Arc::new(Notify::new()),
            done: watch::channel(0).0,
        }
    }
}

impl UserNamespaces {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask for `ns`. A namespace already known to exist returns at once (and is re-checked in the
    /// background); a new one is waited for, up to `wait`. Returns whether it is known to exist.
    pub async fn ensure(&self, ns: &str, wait: Duration) -> bool {
        let known = {
            let Ok(mut d) = self.demand.lock() else {
                return false;
            };
            d.pending.insert(ns.to_string());
            d.ready.contains(ns)
        };
        self.wake.notify_one();
        if known {
            return true;
        }
        let mut rx = self.done.subscribe();
        let ready =
            |d: &Arc<Mutex<Demand>>| d.lock().map(|d| d.ready.contains(ns)).unwrap_or(false);
        let wait_ready = async {
            loop {
                if ready(&self.demand) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return ready(&self.demand);
                }
            }
        };
        tokio::time::timeout(wait, wait_ready)
            .await
            .unwrap_or(false)
    }

    /// The controller that provisions what [`UserNamespaces::ensure`] asks for.
    pub fn controller(&self, client: LocalClient) -> UserNamespaceController {
        UserNamespaceController {
            client,
            shared: self.clone(),
        }
    }
}

/// The Namespace made for a user tier.
pub fn desired(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": {TIER_LABEL: "user"}}})
}

pub struct UserNamespaceController {
    client: LocalClient,
    shared: UserNamespaces,
}

impl UserNamespaceController {
    /// Make `ns` exist; `Ok(true)` when it does.
    async fn provision(&self, ns: &str) -> Result<bool, ApiError> {
        if self
            .client
            .get_opt(&format!("{NAMESPACES}/{ns}"))
            .await?
            .is_some()
        {
            return Ok(true);
        }
        match self.client.create(NAMESPACES, &desired(ns)).await {
            Ok(_) => {}
            // Made meanwhile (by an admin, or a concurrent pass): it exists, and its binding is
            // whoever made it's business.
            Err(e) if e.code == 409 => return Ok(true),
            Err(e) => return Err(e),
        }
        let bindings = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings");
        match self
            .client
            .create(&bindings, &user_namespace_binding(ns))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code == 409 => Ok(true),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Controller for UserNamespaceController {
    fn name(&self) -> &'static str {
        "user-namespace-controller"
    }

    fn watches(&self) -> Vec<String> {
        Vec::new()
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.shared.wake.clone())
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let pending: Vec<String> = match self.shared.demand.lock() {
            Ok(mut d) => std::mem::take(&mut d.pending).into_iter().collect(),
            Err(_) => return Ok(None),
        };
        let mut failed = None;
        for ns in pending {
            let outcome = self.provision(&ns).await;
            if let Ok(mut d) = self.shared.demand.lock() {
                match &outcome {
                    Ok(true) => {
                        d.ready.insert(ns.clone());
                    }
                    _ => {
                        d.ready.remove(&ns);
                        d.pending.insert(ns.clone());
                    }
                }
            }
            if let Err(e) = outcome {
                tracing::warn!(namespace = %ns, error = %e, "could not provision user namespace");
                failed = Some(e);
            }
        }
        self.shared.done.send_modify(|n| *n = n.wrapping_add(1));
        match failed {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_namespace_is_a_user_tier() {
        let ns = desired("u-0123");
        assert_eq!(ns["metadata"]["name"], "u-0123");
        assert_eq!(ns["metadata"]["labels"][TIER_LABEL], "user");
    }

    #[tokio::test]
    async fn ensure_times_out_without_a_controller() {
        let h = UserNamespaces::new();
        assert!(!h.ensure("u-1", Duration::from_millis(50)).await);
        // The demand stays recorded for when the controller runs.
        assert!(h.demand.lock().unwrap().pending.contains("u-1"));
    }
}
