//! The root CA publisher: every namespace gets a ConfigMap `kube-root-ca.crt` whose `ca.crt`
//! is the cluster CA certificate (PEM), so that pods can verify the API server at
//! `kubernetes.default.svc`. A deleted ConfigMap is recreated and an edited one is reset
//! (its data and the `kubernetes.io/description` annotation; other metadata is left alone),
//! as upstream's root-ca-cert-publisher does. Terminating namespaces are skipped.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Map, Value};

use crate::util::{is_deleting, name, namespace};
use crate::Controller;

/// Name of the ConfigMap published in every namespace.
pub const CONFIG_MAP_NAME: &str = "kube-root-ca.crt";
/// The data key holding the CA bundle.
pub const CA_KEY: &str = "ca.crt";
/// The annotation describing what the ConfigMap is for.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Its value (the upstream text, which clients may display).
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver \
    when using internal endpoints such as the internal service IP or kubernetes.default.svc. \
    No other usage is guaranteed across distributions of Kubernetes clusters.";

const CORE: &str = "/api/v1";

pub struct RootCaPublisher {
    client: LocalClient,
    ca_pem: String,
}

impl RootCaPublisher {
    /// `ca_pem`: the cluster CA certificate(s), PEM, exactly as published.
    pub fn new(client: LocalClient, ca_pem: impl Into<String>) -> Self {
        RootCaPublisher {
            client,
            ca_pem: ca_pem.into(),
        }
    }
}

/// The ConfigMap to create in namespace `ns`.
pub fn desired(ns: &str, ca_pem: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIG_MAP_NAME,
            "namespace": ns,
            "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
        },
        "data": {CA_KEY: ca_pem},
    })
}

/// The existing ConfigMap brought back to what is published (data exactly `{ca.crt: pem}`,
/// description annotation present), or `None` when it already is. Labels, other annotations,
/// `binaryData` and the resourceVersion (for an optimistic-concurrency update) are kept.
pub fn reset(existing: &Value, ca_pem: &str) -> Option<Value> {
    let data_ok = existing["data"]
        .as_object()
        .map(|d| d.len() == 1 && d.get(CA_KEY).and_then(Value::as_str) == Some(ca_pem))
        .unwrap_or(false);
    let described = existing["metadata"]["annotations"][DESCRIPTION_ANNOTATION]
        .as_str()
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    if data_ok && described {
        return None;
    }
    let mut cm = existing.clone();
    cm["data"] = json!({CA_KEY: ca_pem});
    if !cm["metadata"]["annotations"].is_object() {
        cm["metadata"]["annotations"] = Value::Object(Map::new());
    }
    cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION] = json!(DESCRIPTION);
    Some(cm)
}

fn is_active(ns: &Value) -> bool {
    !is_deleting(ns) && matches!(ns["status"]["phase"].as_str(), None | Some("Active"))
}

#[async_trait]
impl Controller for RootCaPublisher {
    fn name(&self) -> &'static str {
        "root-ca-cert-publisher"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{CORE}/namespaces"),
            format!("{CORE}/configmaps?fieldSelector=metadata.name%3D{CONFIG_MAP_NAME}"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let namespaces = self.client.list(&format!("{CORE}/namespaces")).await?;
        let existing: HashMap<String, Value> = self
            .client
            .list(&format!(
                "{CORE}/configmaps?fieldSelector=metadata.name%3D{CONFIG_MAP_NAME}"
            ))
            .await?
            .into_iter()
            .map(|cm| (namespace(&cm).to_string(), cm))
            .collect();
        let mut retry = false;
        for ns in namespaces.iter().filter(|n| is_active(n)) {
            let ns = name(ns);
            match existing.get(ns) {
                None => {
                    let path = format!("{CORE}/namespaces/{ns}/configmaps");
                    match self.client.create(&path, &desired(ns, &self.ca_pem)).await {
                        Ok(_) => {}
                        // The namespace went away, or someone created it meanwhile: the next
                        // pass (woken by the watch) sees the new state.
                        Err(e) if e.code == 404 || e.code == 409 => retry = true,
                        // A namespace being deleted refuses new objects.
                        Err(e) if e.code == 403 => retry = true,
                        Err(e) => return Err(e),
                    }
                }
                Some(cm) => {
                    if let Some(fixed) = reset(cm, &self.ca_pem) {
                        let path = format!("{CORE}/namespaces/{ns}/configmaps/{CONFIG_MAP_NAME}");
                        match self.client.update(&path, &fixed).await {
                            Ok(_) => {}
                            Err(e) if e.code == 404 || e.code == 409 => retry = true,
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Ok(retry.then(|| Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn desired_configmap() {
        let cm = desired("team-a", PEM);
        assert_eq!(cm["metadata"]["name"], CONFIG_MAP_NAME);
        assert_eq!(cm["metadata"]["namespace"], "team-a");
        assert_eq!(cm["data"][CA_KEY], PEM);
        assert!(cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION]
            .as_str()
            .unwrap()
            .starts_with("Contains a CA bundle that can be used to verify the kube-apiserver"));
        assert_eq!(reset(&cm, PEM), None);
    }

    #[test]
    fn reset_restores_data_and_annotation_and_keeps_the_rest() {
        let edited = json!({"metadata": {"name": CONFIG_MAP_NAME, "namespace": "x", "resourceVersion": "7",
            "labels": {"l": "1"}, "annotations": {"other": "o"}},
            "data": {CA_KEY: "tampered", "extra": "y"}});
        let fixed = reset(&edited, PEM).expect("needs a reset");
        assert_eq!(fixed["data"], json!({CA_KEY: PEM}));
        assert_eq!(fixed["metadata"]["resourceVersion"], "7");
        assert_eq!(fixed["metadata"]["labels"]["l"], "1");
        assert_eq!(fixed["metadata"]["annotations"]["other"], "o");
        assert_eq!(
            fixed["metadata"]["annotations"][DESCRIPTION_ANNOTATION],
            DESCRIPTION
        );
        // Right data but no description: reset too.
        let bare = json!({"metadata": {"name": CONFIG_MAP_NAME}, "data": {CA_KEY: PEM}});
        assert!(reset(&bare, PEM).is_some());
        // No data at all.
        let empty = json!({"metadata": {"name": CONFIG_MAP_NAME, "annotations": {DESCRIPTION_ANNOTATION: "d"}}});
        assert_eq!(reset(&empty, PEM).unwrap()["data"][CA_KEY], PEM);
    }

    #[test]
    fn terminating_namespaces_are_skipped() {
        assert!(is_active(&json!({"metadata": {"name": "a"}})));
        assert!(is_active(
            &json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}})
        ));
        assert!(!is_active(
            &json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}})
        ));
        assert!(!is_active(
            &json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}})
        ));
    }
}
