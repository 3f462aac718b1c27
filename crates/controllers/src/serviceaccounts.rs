//! The service-account controller: every active namespace has a ServiceAccount `default`,
//! recreated when deleted, as upstream's serviceaccounts-controller keeps it. Terminating
//! namespaces are skipped (they refuse new objects).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{is_deleting, name, namespace};
use crate::Controller;

/// The ServiceAccount every namespace gets.
pub const DEFAULT_NAME: &str = "default";

const CORE: &str = "/api/v1";

pub struct ServiceAccountsController {
    client: LocalClient,
}

impl ServiceAccountsController {
    pub fn new(client: LocalClient) -> Self {
        ServiceAccountsController { client }
    }
}

/// The ServiceAccount to create in namespace `ns`.
pub fn desired(ns: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT_NAME, "namespace": ns},
    })
}

fn is_active(ns: &Value) -> bool {
    !is_deleting(ns) && matches!(ns["status"]["phase"].as_str(), None | Some("Active"))
}

#[async_trait]
impl Controller for ServiceAccountsController {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{CORE}/namespaces"),
            format!("{CORE}/serviceaccounts?fieldSelector=metadata.name%3D{DEFAULT_NAME}"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let namespaces = self.client.list(&format!("{CORE}/namespaces")).await?;
        let present: HashSet<String> = self
            .client
            .list(&format!(
                "{CORE}/serviceaccounts?fieldSelector=metadata.name%3D{DEFAULT_NAME}"
            ))
            .await?
            .iter()
            .map(|sa| namespace(sa).to_string())
            .collect();
        let mut retry = false;
        for ns in namespaces.iter().filter(|n| is_active(n)) {
            let ns = name(ns);
            if present.contains(ns) {
                continue;
            }
            let path = format!("{CORE}/namespaces/{ns}/serviceaccounts");
            match self.client.create(&path, &desired(ns)).await {
                Ok(_) => {}
                // Created meanwhile, the namespace went away or is being deleted: the next
                // pass (woken by the watch) sees the new state.
                Err(e) if matches!(e.code, 403 | 404 | 409) => retry = true,
                Err(e) => return Err(e),
            }
        }
        Ok(retry.then(|| Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_account_and_active_namespaces() {
        let sa = desired("team-a");
        assert_eq!(sa["metadata"]["name"], DEFAULT_NAME);
        assert_eq!(sa["metadata"]["namespace"], "team-a");
        assert!(is_active(&json!({"metadata": {"name": "a"}})));
        assert!(!is_active(
            &json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})
        ));
        assert!(!is_active(
            &json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}})
        ));
    }
}
