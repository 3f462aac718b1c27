//! The cluster DNS Service (K3s' CoreDNS manifest, without its Deployment): `kube-system/kube-dns`
//! at the cluster DNS IP (10.43.0.10), ports 53/UDP `dns` and 53/TCP `dns-tcp`, labelled
//! `k8s-app=kube-dns`. It has no selector and no endpoints: every node runs the DNS server on its
//! own pod network gateway, and the node's Service proxy sends the Service's traffic there. A
//! deleted Service is recreated; an edited one is reset (one with another cluster IP, which is
//! immutable, is deleted and recreated).

use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::Controller;

pub const NAME: &str = "kube-dns";
pub const NAMESPACE: &str = "kube-system";
const SERVICES: &str = "/api/v1/namespaces/kube-system/services";

/// The default cluster DNS IP (K3s' `--cluster-dns`): the tenth address of the service range,
/// from its first (the `kubernetes` Service's).
pub fn default_cluster_dns(first_ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(first_ip).wrapping_add(9))
}

pub struct KubeDnsController {
    client: LocalClient,
    cluster_ip: Ipv4Addr,
}

impl KubeDnsController {
    pub fn new(client: LocalClient, cluster_ip: Ipv4Addr) -> Self {
        KubeDnsController { client, cluster_ip }
    }

    fn labels() -> Value {
        json!({"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": "CoreDNS"})
    }

    fn ports() -> Value {
        json!([
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
        ])
    }

    pub fn desired(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": Self::labels()},
            "spec": {"type": "ClusterIP", "clusterIP": self.cluster_ip.to_string(),
                "clusterIPs": [self.cluster_ip.to_string()],
                "sessionAffinity": "None", "ports": Self::ports()},
        })
    }

    /// Whether the Service's ports are the two DNS ports (defaults filled in by the server).
    fn ports_ok(cur: &Value) -> bool {
        let Some(ports) = cur["spec"]["ports"].as_array() else {
            return false;
        };
        let want = [("dns", "UDP"), ("dns-tcp", "TCP")];
        ports.len() == want.len()
            && ports.iter().zip(want).all(|(p, (name, proto))| {
                p["name"] == name
                    && p["protocol"] == proto
                    && p["port"] == 53
                    && (p["targetPort"] == 53 || p["targetPort"].is_null())
                    && p["nodePort"].is_null()
            })
    }

    async fn create(&self) -> Result<(), ApiError> {
        match self.client.create(SERVICES, &self.desired()).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Controller for KubeDnsController {
    fn name(&self) -> &'static str {
        "kube-dns-service"
    }

    fn watches(&self) -> Vec<String> {
        vec![SERVICES.into()]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let path = format!("{SERVICES}/{NAME}");
        let Some(cur) = self.client.get_opt(&path).await? else {
            tracing::info!(ip = %self.cluster_ip, "creating the cluster DNS Service");
            self.create().await?;
            return Ok(None);
        };
        if cur["spec"]["clusterIP"] != self.cluster_ip.to_string() {
            // The cluster IP cannot be changed in place.
            tracing::warn!(found = %cur["spec"]["clusterIP"], want = %self.cluster_ip, "the cluster DNS Service has another cluster IP; recreating it");
            self.client.delete_ignore_missing(&path).await?;
            self.create().await?;
            return Ok(None);
        }
        let mut spec = serde_json::Map::new();
        if cur["spec"]["type"] != "ClusterIP" {
            spec.insert("type".into(), json!("ClusterIP"));
        }
        if !Self::ports_ok(&cur) {
            spec.insert("ports".into(), Self::ports());
        }
        if cur["spec"]["selector"]
            .as_object()
            .is_some_and(|s| !s.is_empty())
        {
            spec.insert("selector".into(), Value::Null);
        }
        let mut patch = serde_json::Map::new();
        if !spec.is_empty() {
            if spec.contains_key("type") {
                // NodePort/LoadBalancer fields do not survive the switch back to ClusterIP.
                spec.insert("externalTrafficPolicy".into(), Value::Null);
                spec.insert("ports".into(), Self::ports());
            }
            patch.insert("spec".into(), Value::Object(spec));
        }
        let labels = Self::labels();
        let label_drift = labels
            .as_object()
            .is_some_and(|m| m.iter().any(|(k, v)| &cur["metadata"]["labels"][k] != v));
        if label_drift {
            patch.insert("metadata".into(), json!({"labels": labels}));
        }
        if !patch.is_empty() {
            tracing::info!("resetting the cluster DNS Service");
            self.client
                .merge_patch(&path, &Value::Object(patch))
                .await?;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenth_address_of_the_service_range() {
        assert_eq!(
            default_cluster_dns(Ipv4Addr::new(10, 43, 0, 1)),
            Ipv4Addr::new(10, 43, 0, 10)
        );
    }

    #[test]
    fn ports_check() {
        let ok = json!({"spec": {"ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}});
        assert!(KubeDnsController::ports_ok(&ok));
        let swapped = json!({"spec": {"ports": [
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]}});
        assert!(!KubeDnsController::ports_ok(&swapped));
        let one = json!({"spec": {"ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]}});
        assert!(!KubeDnsController::ports_ok(&one));
    }
}
