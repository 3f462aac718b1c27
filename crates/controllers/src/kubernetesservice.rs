//! The master endpoints reconciler (upstream pkg/controlplane/controller/kubernetesservice and
//! the `lease` endpoint reconciler): the `kubernetes` Service in `default` (first IP of the
//! service range, port 443 named `https` to the API server's port), its Endpoints and its
//! EndpointSlice, pointing at every master whose identity Lease (`kube-system/kube-apiserver-<id>`,
//! label `apiserver.kubernetes.io/identity=kube-apiserver`, address and port in annotations) was
//! renewed within the TTL, and always at this master. Every master runs it; they all compute the
//! same set, so in-cluster clients fail over when a master dies. A deleted or edited object is
//! recreated or reset.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::cronjob::{Clock, SystemClock};
use crate::Controller;

/// The label of API server identity Leases, as upstream's.
pub const IDENTITY_LABEL: &str = "apiserver.kubernetes.io/identity";
pub const IDENTITY_LABEL_VALUE: &str = "kube-apiserver";
/// Annotations of an identity Lease: where that API server is reached.
pub const ADDRESS_ANNOTATION: &str = "k3s-daas.io/advertise-address";
pub const PORT_ANNOTATION: &str = "k3s-daas.io/advertise-port";
const IDENTITY_LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";

/// An API server endpoint: address and port.
pub type Peer = (IpAddr, u16);

/// The masters advertised by fresh identity Leases (renewed within `ttl` of `now`).
pub fn fresh_peers(
    leases: &[Value],
    now: chrono::DateTime<chrono::Utc>,
    ttl: Duration,
) -> Vec<Peer> {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    leases
        .iter()
        .filter(|l| l["metadata"]["labels"][IDENTITY_LABEL] == IDENTITY_LABEL_VALUE)
        .filter(|l| {
            l["spec"]["renewTime"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t.with_timezone(&chrono::Utc) + ttl >= now)
        })
        .filter_map(|l| {
            let a = &l["metadata"]["annotations"];
            let ip = a[ADDRESS_ANNOTATION].as_str()?.parse::<IpAddr>().ok()?;
            let port = a[PORT_ANNOTATION].as_str()?.parse::<u16>().ok()?;
            Some((ip, port))
        })
        .collect()
}

/// The identity Leases to watch and list.
pub fn identity_leases_path() -> String {
    format!("{IDENTITY_LEASES}?labelSelector={IDENTITY_LABEL}%3D{IDENTITY_LABEL_VALUE}")
}

pub const NAME: &str = "kubernetes";
pub const NAMESPACE: &str = "default";
const SERVICES: &str = "/api/v1/namespaces/default/services";
const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const MANAGED_BY: &str = "daas-master";

pub struct KubernetesServiceController {
    client: LocalClient,
    cluster_ip: Ipv4Addr,
    address: IpAddr,
    port: u16,
    /// With peers: identity Leases renewed within this long are listed too.
    peers_ttl: Option<Duration>,
    clock: Arc<dyn Clock>,
    /// Every master listed at the last reconcile (this one first is not guaranteed: sorted).
    peers: Vec<Peer>,
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
            peers_ttl: None,
            clock: Arc::new(SystemClock),
            peers: vec![(address, port)],
        }
    }

    /// Also list the masters whose identity Lease was renewed within `ttl` (by `clock`).
    pub fn with_peers(mut self, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        self.peers_ttl = Some(ttl);
        self.clock = clock;
        self
    }

    fn service_ports(&self) -> Value {
        json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.port}])
    }

    /// The listed masters grouped by (address family, port), in a stable order.
    fn groups(&self) -> Vec<(bool, u16, Vec<String>)> {
        let mut groups: Vec<(bool, u16, Vec<String>)> = Vec::new();
        let set: BTreeSet<(bool, u16, String)> = self
            .peers
            .iter()
            .map(|(ip, port)| (ip.is_ipv6(), *port, ip.to_string()))
            .collect();
        for (v6, port, ip) in set {
            match groups.last_mut() {
                Some((g6, gp, ips)) if *g6 == v6 && *gp == port => ips.push(ip),
                _ => groups.push((v6, port, vec![ip])),
            }
        }
        groups
    }

    fn slice_name(i: usize, port: u16, v6: bool) -> String {
        match (i, v6) {
            (0, _) => NAME.to_string(),
            (_, false) => format!("{NAME}-{port}"),
            (_, true) => format!("{NAME}-ipv6-{port}"),
        }
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
        let subsets: Vec<Value> = self
            .groups()
            .into_iter()
            .map(|(_, port, ips)| {
                json!({"addresses": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": subsets,
        })
    }

    /// The EndpointSlices: `kubernetes`, plus `kubernetes-<port>` when masters listen on
    /// different ports (a slice has one port list).
    pub fn desired_slices(&self) -> Vec<Value> {
        self.groups()
            .into_iter()
            .enumerate()
            .map(|(i, (v6, port, ips))| {
                json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"name": Self::slice_name(i, port, v6), "namespace": NAMESPACE,
                        "labels": {"kubernetes.io/service-name": NAME,
                            "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
                    "addressType": if v6 { "IPv6" } else { "IPv4" },
                    "endpoints": ips.iter().map(|ip| json!({"addresses": [ip],
                        "conditions": {"ready": true}})).collect::<Vec<_>>(),
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                })
            })
            .collect()
    }

    /// The first of [`desired_slices`](Self::desired_slices).
    pub fn desired_slice(&self) -> Value {
        self.desired_slices()
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    /// Read the fresh identity Leases into `peers` (this master always included). Returns when
    /// the next of them goes stale.
    async fn refresh_peers(&mut self) -> Result<Option<Duration>, ApiError> {
        let mut peers = vec![(self.address, self.port)];
        let mut next = None;
        if let Some(ttl) = self.peers_ttl {
            let leases = self.client.list(&identity_leases_path()).await?;
            peers.extend(fresh_peers(&leases, self.clock.now(), ttl));
            // Look again a little after the oldest listed renewal would go stale.
            next = Some(ttl / 2);
        }
        peers.sort();
        peers.dedup();
        self.peers = peers;
        Ok(next)
    }

    /// Create `desired` at `collection/NAME`, or bring the listed fields back to it.
    async fn ensure(
        &self,
        collection: &str,
        desired: Value,
        fields: &[&str],
    ) -> Result<(), ApiError> {
        let name = desired["metadata"]["name"].as_str().unwrap_or(NAME);
        let path = format!("{collection}/{name}");
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
        let mut w = vec![SERVICES.into(), ENDPOINTS.into(), SLICES.into()];
        if self.peers_ttl.is_some() {
            w.push(identity_leases_path());
        }
        w
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let next = self.refresh_peers().await?;
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
                // Any listed master's port will do as targetPort (masters on one host differ).
                let ports_ok = cur["spec"]["ports"].as_array().is_some_and(|p| {
                    p.len() == 1
                        && p[0]["name"] == "https"
                        && p[0]["port"] == 443
                        && self
                            .peers
                            .iter()
                            .any(|(_, port)| p[0]["targetPort"] == *port)
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
        let slices = self.desired_slices();
        let names: BTreeSet<String> = slices
            .iter()
            .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        for slice in slices {
            self.ensure(SLICES, slice, &["addressType", "endpoints", "ports"])
                .await?;
        }
        // Slices of ports no master listens on any more.
        let ours = format!(
            "{SLICES}?labelSelector=kubernetes.io/service-name%3D{NAME},endpointslice.kubernetes.io/managed-by%3D{MANAGED_BY}"
        );
        for s in self.client.list(&ours).await? {
            if let Some(n) = s["metadata"]["name"]
                .as_str()
                .filter(|n| !names.contains(*n))
            {
                self.client
                    .delete_ignore_missing(&format!("{SLICES}/{n}"))
                    .await?;
            }
        }
        Ok(next)
    }
}
