//! The master endpoints reconciler (upstream pkg/controlplane/controller/kubernetesservice and
//! reconcilers): the `kubernetes` Service in `default` (first IP of the service range, port 443
//! named `https` to the API server's port), its Endpoints and its EndpointSlice, all pointing at
//! the master's address. A deleted or edited object is recreated or reset.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::Controller;

pub const NAME: &str = "kubernetes";
pub const NAMESPACE: &str = "default";
const SERVICES: &str = "/api/v1/namespaces/default/services";
const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

pub struct KubernetesServiceController {
    client: LocalClient,
    cluster_ip: Ipv4Addr,
    address: IpAddr,
    port: u16,
}

impl KubernetesServiceController {
    /// `cluster_ip`: the Service's IP (first of the range); `address`/`port`: where the API
    /// server is reached.
    pub fn new(client: LocalClient, cluster_ip: Ipv4Addr, address: IpAddr, port: u16) -> Self {
        KubernetesServiceController {
            client,
            cluster_ip,
            address,
            port,
        }
    }

    fn service_ports(&self) -> Value {
        json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.port}])
    }

    fn endpoint_ports(&self) -> Value {
        json!([{"name": "https", "port": self.port, "protocol": "TCP"}])
    }

    pub fn desired_service(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": self.cluster_ip.to_string(),
                "sessionAffinity": "None", "ports": self.service_ports()},
        })
    }

    pub fn desired_endpoints(&self) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": self.address.to_string()}],
                "ports": self.endpoint_ports()}],
        })
    }

    pub fn desired_slice(&self) -> Value {
        let family = if self.address.is_ipv4() {
            "IPv4"
        } else {
            "IPv6"
        };
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                "labels": {"kubernetes.io/service-name": NAME,
                    "endpointslice.kubernetes.io/managed-by": "daas-master"}},
            "addressType": family,
            "endpoints": [{"addresses": [self.address.to_string()],
                "conditions": {"ready": true}}],
            "ports": self.endpoint_ports(),
        })
    }

    /// Create `desired` at `collection/NAME`, or bring the listed fields back to it.
    async fn ensure(
        &self,
        collection: &str,
        desired: Value,
        fields: &[&str],
    ) -> Result<(), ApiError> {
        let path = format!("{collection}/{NAME}");
        match self.client.get_opt(&path).await? {
            None => match self.client.create(collection, &desired).await {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            },
            Some(cur) => {
                let mut patch = serde_json::Map::new();
                for f in fields {
                    if cur[*f] != desired[*f] {
                        patch.insert((*f).to_string(), desired[*f].clone());
                    }
                }
                let labels = &desired["metadata"]["labels"];
                let label_drift = labels
                    .as_object()
                    .is_some_and(|m| m.iter().any(|(k, v)| &cur["metadata"]["labels"][k] != v));
                if label_drift {
                    patch.insert("metadata".into(), json!({"labels": labels}));
                }
                if patch.is_empty() {
                    return Ok(());
                }
                tracing::info!(path, "resetting the kubernetes service object");
                self.client
                    .merge_patch(&path, &Value::Object(patch))
                    .await
                    .map(|_| ())
            }
        }
    }
}

#[async_trait]
impl Controller for KubernetesServiceController {
    fn name(&self) -> &'static str {
        "kubernetes-service"
    }

    fn watches(&self) -> Vec<String> {
        vec![SERVICES.into(), ENDPOINTS.into(), SLICES.into()]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        // The Service's ports (its cluster IP is immutable; one with another IP is left for the
        // repair loop to report).
        let path = format!("{SERVICES}/{NAME}");
        match self.client.get_opt(&path).await? {
            None => match self.client.create(SERVICES, &self.desired_service()).await {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            },
            Some(cur) => {
                let ports_ok = cur["spec"]["ports"].as_array().is_some_and(|p| {
                    p.len() == 1
                        && p[0]["name"] == "https"
                        && p[0]["port"] == 443
                        && p[0]["targetPort"] == self.port
                });
                if !ports_ok || cur["spec"]["type"] != "ClusterIP" {
                    self.client
                        .merge_patch(
                            &path,
                            &json!({"spec": {"type": "ClusterIP", "ports": self.service_ports()}}),
                        )
                        .await?;
                }
            }
        }
        self.ensure(ENDPOINTS, self.desired_endpoints(), &["subsets"])
            .await?;
        self.ensure(
            SLICES,
            self.desired_slice(),
            &["addressType", "endpoints", "ports"],
        )
        .await?;
        Ok(None)
    }
}
