//! The pod network across nodes (what flannel does in K3s).
//!
//! - **Overlay** (`flannel_backend: "vxlan"`, the default): a VXLAN device [`VXLAN_DEVICE`] (VNI 1,
//!   UDP 8472, outer source = the node IP, no learning) holding this node's VTEP address (the
//!   network address of its pod CIDR, /32). The node publishes the device's MAC as the Node
//!   annotation [`VTEP_MAC_ANNOTATION`]. For every other Node with a pod CIDR, an InternalIP and
//!   a VTEP MAC, the agent keeps a route to that pod CIDR via the remote VTEP address (onlink),
//!   a permanent neighbour entry (VTEP address -> MAC) and a forwarding entry (MAC -> node IP);
//!   entries of Nodes that are gone are removed. Every pass compares the kernel's state with the
//!   wanted one, so an entry deleted or changed by hand is put back at the next pass.
//!   A node whose IP is loopback (a single-node cluster on 127.0.0.1) gets no overlay.
//! - **Masquerade**: the nftables table [`TABLE`] (`ip daas-podnet`) rewrites the source of pod
//!   traffic leaving the cluster CIDR to the node's address; pod-to-pod traffic keeps its pod
//!   IPs. It is the only masquerade of pod traffic (the CNI bridge's `ipMasq` is off).

pub mod links;
pub mod wg;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde::Deserialize;
use serde_json::json;

use self::links::{Fdb, LinkError, Links, Neighbour, Route, Vxlan};
use super::nft::{Family, Firewall, NftError, Table};

/// Node annotation with the MAC of the node's VXLAN device.
pub const VTEP_MAC_ANNOTATION: &str = "networking.k3s-daas.io/vtep-mac";
/// Node annotation with the cluster CIDR (set by the master's nodeipam controller).
pub const CLUSTER_CIDR_ANNOTATION: &str = "networking.k3s-daas.io/cluster-cidr";
/// The VXLAN device (flannel's `flannel.1`).
pub const VXLAN_DEVICE: &str = "daas.1";
pub const VXLAN_VNI: u32 = 1;
/// UDP port of the VXLAN traffic between nodes (flannel's and the Linux default 8472).
pub const VXLAN_PORT: u16 = 8472;
/// Bytes the VXLAN encapsulation adds (outer IPv4, UDP, VXLAN and inner Ethernet headers).
pub const VXLAN_OVERHEAD: u32 = 50;
/// The pod network's nftables table (family `ip`).
pub const TABLE: &str = "daas-podnet";
/// How often the overlay and the masquerade table are reconciled.
pub const RESYNC: Duration = Duration::from_secs(5);

/// `flannel_backend` of the agent config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A VXLAN overlay between the nodes.
    #[default]
    Vxlan,
    /// An encrypted userspace WireGuard tunnel between the nodes (see [`wg`]).
    Wireguard,
    /// No overlay: pods reach only pods of their own node (unless the operator routes the pod
    /// CIDRs some other way).
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum PodNetError {
    #[error("overlay: {0}")]
    Link(#[from] LinkError),
    #[error("masquerade rules: {0}")]
    Nft(#[from] NftError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("wireguard: {0}")]
    Wg(#[from] wg::WgError),
    #[error("pod CIDR {0:?} is not an IPv4 CIDR")]
    Cidr(String),
}

/// An IPv4 CIDR's network address and prefix length (host bits must be zero).
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: Ipv4Addr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    (u32::from(addr) & !mask == 0).then_some((addr, prefix))
}

/// The settings of one node's pod network.
#[derive(Debug, Clone)]
pub struct PodNetConfig {
    pub node_name: String,
    pub node_ip: IpAddr,
    pub pod_cidr: String,
    pub backend: Backend,
    /// The masquerade table's name: [`TABLE`], or a per-bridge name when several agents share
    /// one network namespace (see [`table_name`]).
    pub table: String,
    /// The UDP port of the WireGuard backend (`wireguard_port`).
    pub wireguard_port: u16,
}

/// [`TABLE`] for the default bridge `daas0`; `daas-podnet-<bridge>` for any other, so two
/// agents on one host (each with its own bridge and pod CIDR) do not replace each other's rules.
pub fn table_name(bridge: &str) -> String {
    if bridge == "daas0" {
        TABLE.to_string()
    } else {
        format!("{TABLE}-{bridge}")
    }
}

impl PodNetConfig {
    /// Whether this node takes part in the overlay.
    pub fn overlay(&self) -> bool {
        self.backend != Backend::None
            && matches!(self.node_ip, IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified())
    }
}

/// What the overlay should hold for one other node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub node: String,
    pub pod_cidr: String,
    pub vtep: Ipv4Addr,
    pub mac: String,
    pub node_ip: Ipv4Addr,
}

/// A Node's InternalIP (IPv4).
pub(crate) fn internal_ip(n: &Node) -> Option<Ipv4Addr> {
    n.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

/// A Node that may be a peer of `me` (whatever the backend): another, live Node with an IPv4
/// pod CIDR and a non-loopback InternalIP other than `my_ip`.
pub struct PeerNode<'a> {
    pub name: &'a str,
    /// The pod CIDR as the Node gives it, and its network address and prefix.
    pub pod_cidr: &'a String,
    pub net: Ipv4Addr,
    pub prefix: u8,
    pub node_ip: Ipv4Addr,
    pub annotations: Option<&'a std::collections::BTreeMap<String, String>>,
}

/// [`PeerNode`] of `n`, if it is one.
pub fn peer_node<'a>(me: &str, my_ip: IpAddr, n: &'a Node) -> Option<PeerNode<'a>> {
    let name = n.metadata.name.as_deref()?;
    if name == me || n.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let spec = n.spec.as_ref()?;
    let pod_cidr = spec
        .pod_cidrs
        .iter()
        .flatten()
        .chain(spec.pod_cidr.iter())
        .find(|c| parse_cidr(c).is_some())?;
    let (net, prefix) = parse_cidr(pod_cidr)?;
    let node_ip = internal_ip(n)?;
    if node_ip.is_loopback() || IpAddr::V4(node_ip) == my_ip {
        return None;
    }
    Some(PeerNode {
        name,
        pod_cidr,
        net,
        prefix,
        node_ip,
        annotations: n.metadata.annotations.as_ref(),
    })
}

/// The VXLAN peers of `me` among `nodes`: every [`PeerNode`] with a VTEP MAC.
pub fn peers(me: &str, my_ip: IpAddr, nodes: &[Node]) -> Vec<Peer> {
    let mut out: Vec<Peer> = nodes
        .iter()
        .filter_map(|n| {
            let p = peer_node(me, my_ip, n)?;
            let mac = p.annotations?.get(VTEP_MAC_ANNOTATION)?.to_lowercase();
            valid_mac(&mac).then(|| Peer {
                node: p.name.to_string(),
                pod_cidr: p.pod_cidr.clone(),
                vtep: p.net,
                mac,
                node_ip: p.node_ip,
            })
        })
        .collect();
    out.sort();
    out
}

fn valid_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The masquerade table: pod traffic to anything but the cluster CIDR (and the node's own pod
/// CIDR, and multicast) leaves with the node's address.
pub fn masquerade_table(name: &str, pod_cidr: &str, cluster_cidr: &str) -> Table {
    Table::new(
        Family::Ip,
        name,
        format!(
            "chain postrouting {{\n\
             \ttype nat hook postrouting priority srcnat; policy accept;\n\
             \tip saddr {pod_cidr} ip daddr {cluster_cidr} return\n\
             \tip saddr {pod_cidr} ip daddr {pod_cidr} return\n\
             \tip saddr {pod_cidr} ip daddr 224.0.0.0/4 return\n\
             \tip saddr {pod_cidr} masquerade\n\
             }}"
        ),
    )
}

/// The node's pod network, reconciled by [`PodNetwork::sync`].
pub struct PodNetwork {
    cfg: PodNetConfig,
    links: Arc<dyn Links>,
    firewall: Arc<dyn Firewall>,
    applied: Option<Table>,
    mtu: Option<u32>,
    tunnel: Option<Arc<dyn wg::Tunnel>>,
}

/// What a pass wants changed on the node's own Node object.
pub type AnnotationPatch = Option<serde_json::Value>;

impl PodNetwork {
    pub fn new(cfg: PodNetConfig, links: Arc<dyn Links>, firewall: Arc<dyn Firewall>) -> Self {
        PodNetwork {
            cfg,
            links,
            firewall,
            applied: None,
            mtu: None,
            tunnel: None,
        }
    }

    /// The WireGuard backend's packet loop (required by `flannel_backend: "wireguard"`; without
    /// it that backend makes no tunnel).
    pub fn with_tunnel(mut self, tunnel: Arc<dyn wg::Tunnel>) -> Self {
        self.tunnel = Some(tunnel);
        self
    }

    pub fn config(&self) -> &PodNetConfig {
        &self.cfg
    }

    /// The MTU pods should use: the node interface's less the VXLAN overhead when the overlay
    /// is on (1450 on a 1500-byte network); `None` leaves the CNI default.
    pub async fn pod_mtu(&mut self) -> Result<Option<u32>, PodNetError> {
        let IpAddr::V4(ip) = self.cfg.node_ip else {
            return Ok(None);
        };
        if !self.cfg.overlay() {
            return Ok(None);
        }
        if self.mtu.is_none() {
            let base = self.links.mtu_of(ip).await?.unwrap_or(1500);
            let overhead = if self.cfg.backend == Backend::Wireguard {
                wg::OVERHEAD
            } else {
                VXLAN_OVERHEAD
            };
            self.mtu = Some(base.saturating_sub(overhead).max(576));
        }
        Ok(self.mtu)
    }

    /// One pass against the current Nodes: the device, the peers' entries, the masquerade
    /// table. Returns the annotation change of this node's Node, if one is needed.
    pub async fn sync(&mut self, nodes: &[Node]) -> Result<AnnotationPatch, PodNetError> {
        let (net, _) = parse_cidr(&self.cfg.pod_cidr)
            .ok_or_else(|| PodNetError::Cidr(self.cfg.pod_cidr.clone()))?;
        let me = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(self.cfg.node_name.as_str()));
        let my_annotations = me.and_then(|n| n.metadata.annotations.clone());
        let cluster = my_annotations
            .as_ref()
            .and_then(|a| a.get(CLUSTER_CIDR_ANNOTATION))
            .filter(|c| parse_cidr(c).is_some())
            .cloned()
            .unwrap_or_else(|| self.cfg.pod_cidr.clone());
        self.masquerade(&cluster).await?;

        let published = my_annotations
            .as_ref()
            .and_then(|a| a.get(VTEP_MAC_ANNOTATION))
            .cloned();
        let IpAddr::V4(local) = self.cfg.node_ip else {
            return Ok(None);
        };
        if !self.cfg.overlay() {
            self.links.remove_link(VXLAN_DEVICE).await?;
            return Ok(published
                .map(|_| json!({"metadata": {"annotations": {VTEP_MAC_ANNOTATION: null}}})));
        }
        if self.cfg.backend == Backend::Wireguard {
            self.links.remove_link(VXLAN_DEVICE).await?;
            let mut patch = serde_json::Map::new();
            if published.is_some() {
                patch.insert(VTEP_MAC_ANNOTATION.into(), serde_json::Value::Null);
            }
            let Some(tunnel) = self.tunnel.clone() else {
                return Ok(None);
            };
            let mtu = self.pod_mtu().await?.unwrap_or(1420);
            self.links.ensure_tun(wg::TUN_DEVICE, net, mtu).await?;
            let peers = wg::peers(&self.cfg.node_name, self.cfg.node_ip, nodes);
            tunnel.set_peers(&peers);
            // The whole cluster CIDR goes into the tunnel too, so pod traffic to a node that is
            // not (yet) a peer is dropped by the packet loop instead of leaving in plaintext by
            // the default route; each peer's pod CIDR is routed via its VTEP address.
            let routes: BTreeSet<Route> = peers
                .iter()
                .map(|p| Route {
                    dst: p.pod_cidr.clone(),
                    via: p.net,
                })
                .chain((cluster != self.cfg.pod_cidr).then(|| Route {
                    dst: cluster.clone(),
                    via: wg::CATCH_ALL_NEXT_HOP,
                }))
                .collect();
            self.program_routes(wg::TUN_DEVICE, &routes).await?;
            let key = tunnel.public_key();
            let endpoint = format!("{local}:{}", self.cfg.wireguard_port);
            for (k, v) in [
                (wg::PUBLIC_KEY_ANNOTATION, key),
                (wg::ENDPOINT_ANNOTATION, endpoint),
            ] {
                if my_annotations.as_ref().and_then(|a| a.get(k)) != Some(&v) {
                    patch.insert(k.into(), v.into());
                }
            }
            return Ok((!patch.is_empty()).then(|| json!({"metadata": {"annotations": patch}})));
        }
        let mtu = self.pod_mtu().await?.unwrap_or(1450);
        let mac = self
            .links
            .ensure_vxlan(&Vxlan {
                name: VXLAN_DEVICE.into(),
                vni: VXLAN_VNI,
                port: VXLAN_PORT,
                local,
                address: net,
                mtu,
            })
            .await?;
        self.program(&peers(&self.cfg.node_name, self.cfg.node_ip, nodes))
            .await?;
        Ok((published.as_deref() != Some(mac.as_str()))
            .then(|| json!({"metadata": {"annotations": {VTEP_MAC_ANNOTATION: mac}}})))
    }

    /// Apply the masquerade table when it changed or is no longer what the kernel holds.
    async fn masquerade(&mut self, cluster: &str) -> Result<(), PodNetError> {
        let want = masquerade_table(&self.cfg.table, &self.cfg.pod_cidr, cluster);
        let intact = match self.firewall.list(want.family, &want.name).await? {
            Some(listed) => {
                self.applied.as_ref() == Some(&want)
                    && listed.matches("masquerade").count() == 1
                    && listed.matches(" return").count() == 3
                    && listed.contains(&self.cfg.pod_cidr)
            }
            None => false,
        };
        if !intact {
            tracing::info!(table = %want.name, pod_cidr = %self.cfg.pod_cidr, cluster_cidr = cluster, "applying the pod masquerade table");
            self.firewall.apply(&want).await?;
            self.applied = Some(want);
        }
        Ok(())
    }

    /// Make the device's routes, neighbours and forwarding entries exactly those of `peers`.
    async fn program(&self, peers: &[Peer]) -> Result<(), PodNetError> {
        let dev = VXLAN_DEVICE;
        let l = &self.links;
        let want_routes: BTreeSet<Route> = peers
            .iter()
            .map(|p| Route {
                dst: p.pod_cidr.clone(),
                via: p.vtep,
            })
            .collect();
        let want_neigh: BTreeSet<Neighbour> = peers
            .iter()
            .map(|p| Neighbour {
                ip: p.vtep,
                mac: p.mac.clone(),
            })
            .collect();
        let want_fdb: BTreeSet<Fdb> = peers
            .iter()
            .map(|p| Fdb {
                mac: p.mac.clone(),
                dst: p.node_ip,
            })
            .collect();
        // Neighbour and forwarding entries first, so a new route never sends into the void.
        let have: BTreeSet<Fdb> = l.fdb(dev).await?.into_iter().collect();
        for f in have.difference(&want_fdb) {
            tracing::info!(mac = %f.mac, dst = %f.dst, "removing overlay forwarding entry");
            l.delete_fdb(dev, f).await?;
        }
        for f in want_fdb.difference(&have) {
            l.replace_fdb(dev, f).await?;
        }
        let have: BTreeSet<Neighbour> = l.neighbours(dev).await?.into_iter().collect();
        for n in have.difference(&want_neigh) {
            if !want_neigh.iter().any(|w| w.ip == n.ip) {
                l.delete_neighbour(dev, n).await?;
            }
        }
        for n in want_neigh.difference(&have) {
            l.replace_neighbour(dev, n).await?;
        }
        self.program_routes(dev, &want_routes).await
    }

    /// Make the routes on `dev` exactly `want_routes`.
    async fn program_routes(
        &self,
        dev: &str,
        want_routes: &BTreeSet<Route>,
    ) -> Result<(), PodNetError> {
        let l = &self.links;
        let have: BTreeSet<Route> = l.routes(dev).await?.into_iter().collect();
        for r in have.difference(want_routes) {
            if !want_routes.iter().any(|w| w.dst == r.dst) {
                tracing::info!(dst = %r.dst, dev, "removing overlay route");
                l.delete_route(dev, r).await?;
            }
        }
        for r in want_routes.difference(&have) {
            tracing::info!(dst = %r.dst, via = %r.via, dev, "programming overlay route");
            l.replace_route(dev, r).await?;
        }
        Ok(())
    }
}

/// Remove what [`PodNetwork`] made on this host for the bridge `bridge` (its masquerade table
/// and the VXLAN device): for a node whose pods are all stopped (`daas up`'s local worker on
/// shutdown). `daas agent` leaves them, as its containers outlive it.
pub async fn teardown(
    bridge: &str,
    firewall: &dyn Firewall,
    links: &dyn Links,
) -> Result<(), PodNetError> {
    firewall.remove(Family::Ip, &table_name(bridge)).await?;
    links.remove_link(VXLAN_DEVICE).await?;
    Ok(())
}

/// Wait until the master's nodeipam controller has given this Node a pod CIDR.
pub async fn assigned_pod_cidr(api: &Api<Node>, node: &str) -> Result<String, kube::Error> {
    let mut n: u64 = 0;
    loop {
        if let Some(c) = api
            .get_opt(node)
            .await?
            .and_then(|n| n.spec)
            .and_then(|s| s.pod_cidr)
            .filter(|c| !c.is_empty())
        {
            return Ok(c);
        }
        if n.is_multiple_of(20) {
            tracing::info!(node, "waiting for the master to assign a pod CIDR");
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reconcile the pod network every [`RESYNC`] until aborted.
pub fn spawn(client: kube::Client, mut net: PodNetwork) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let nodes: Api<Node> = Api::all(client);
        let name = net.config().node_name.clone();
        loop {
            let pass = async {
                let list = nodes.list(&ListParams::default()).await?.items;
                if let Some(patch) = net.sync(&list).await? {
                    nodes
                        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                }
                Ok::<(), PodNetError>(())
            };
            if let Err(e) = pass.await {
                tracing::warn!(error = %e, "pod network sync failed; retrying");
            }
            tokio::time::sleep(RESYNC).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::links::{RecordingLinks, RECORDED_MAC};
    use super::*;
    use crate::net::nft::RecordingFirewall;

    fn node(name: &str, cidr: Option<&str>, ip: &str, mac: Option<&str>) -> Node {
        let mut ann = serde_json::Map::new();
        if let Some(m) = mac {
            ann.insert(VTEP_MAC_ANNOTATION.into(), json!(m));
        }
        ann.insert(CLUSTER_CIDR_ANNOTATION.into(), json!("10.42.0.0/16"));
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": ann},
            "spec": {"podCIDR": cidr, "podCIDRs": cidr.map(|c| vec![c])},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]},
        }))
        .unwrap()
    }

    fn net(
        ip: &str,
        backend: Backend,
    ) -> (PodNetwork, Arc<RecordingLinks>, Arc<RecordingFirewall>) {
        let links = Arc::new(RecordingLinks::default());
        let fw = Arc::new(RecordingFirewall::default());
        let p = PodNetwork::new(
            PodNetConfig {
                node_name: "a".into(),
                node_ip: ip.parse().unwrap(),
                pod_cidr: "10.42.1.0/24".into(),
                backend,
                table: TABLE.into(),
                wireguard_port: wg::DEFAULT_PORT,
            },
            links.clone(),
            fw.clone(),
        );
        (p, links, fw)
    }

    #[test]
    fn cidrs_and_table_names() {
        assert_eq!(
            parse_cidr("10.42.3.0/24"),
            Some((Ipv4Addr::new(10, 42, 3, 0), 24))
        );
        assert_eq!(parse_cidr("10.42.3.1/24"), None);
        assert_eq!(parse_cidr("10.42.3.0/33"), None);
        assert_eq!(parse_cidr("fd00::/64"), None);
        assert_eq!(table_name("daas0"), "daas-podnet");
        assert_eq!(table_name("daase7"), "daas-podnet-daase7");
    }

    #[tokio::test]
    async fn peers_get_a_route_neighbour_and_fdb_entry_and_lose_them_when_gone() {
        let (mut p, links, fw) = net("172.30.0.11", Backend::Vxlan);
        let mut nodes = vec![
            node("a", Some("10.42.1.0/24"), "172.30.0.11", None),
            node(
                "b",
                Some("10.42.2.0/24"),
                "172.30.0.12",
                Some("02:AA:00:00:00:02"),
            ),
            node(
                "c",
                Some("10.42.3.0/24"),
                "172.30.0.13",
                Some("02:aa:00:00:00:03"),
            ),
            // Not (yet) a peer: no VTEP MAC, no pod CIDR, a loopback address.
            node("d", Some("10.42.4.0/24"), "172.30.0.14", None),
            node("e", None, "172.30.0.15", Some("02:aa:00:00:00:05")),
            node(
                "f",
                Some("10.42.6.0/24"),
                "127.0.0.1",
                Some("02:aa:00:00:00:06"),
            ),
        ];
        let patch = p.sync(&nodes).await.unwrap();
        // The node publishes its device's MAC.
        assert_eq!(
            patch,
            Some(json!({"metadata": {"annotations": {VTEP_MAC_ANNOTATION: RECORDED_MAC}}}))
        );
        let s = links.snapshot();
        let dev = s.device.clone().unwrap();
        assert_eq!(
            (dev.name.as_str(), dev.vni, dev.port),
            (VXLAN_DEVICE, 1, 8472)
        );
        assert_eq!(dev.local, Ipv4Addr::new(172, 30, 0, 11));
        assert_eq!(dev.address, Ipv4Addr::new(10, 42, 1, 0));
        assert_eq!(dev.mtu, 1450);
        let routes: Vec<_> = s
            .routes
            .iter()
            .map(|r| (r.dst.as_str(), r.via.to_string()))
            .collect();
        assert_eq!(
            routes,
            [
                ("10.42.2.0/24", "10.42.2.0".to_string()),
                ("10.42.3.0/24", "10.42.3.0".to_string())
            ]
        );
        let neigh: Vec<_> = s
            .neighbours
            .iter()
            .map(|n| (n.ip.to_string(), n.mac.as_str()))
            .collect();
        assert_eq!(
            neigh,
            [
                ("10.42.2.0".to_string(), "02:aa:00:00:00:02"),
                ("10.42.3.0".to_string(), "02:aa:00:00:00:03")
            ]
        );
        let fdb: Vec<_> = s
            .fdb
            .iter()
            .map(|f| (f.mac.as_str(), f.dst.to_string()))
            .collect();
        assert_eq!(
            fdb,
            [
                ("02:aa:00:00:00:02", "172.30.0.12".to_string()),
                ("02:aa:00:00:00:03", "172.30.0.13".to_string())
            ]
        );
        // Masquerade: pod traffic leaving the cluster CIDR only.
        let t = fw.table(Family::Ip, TABLE).unwrap();
        assert!(
            t.body
                .contains("ip saddr 10.42.1.0/24 ip daddr 10.42.0.0/16 return"),
            "{}",
            t.body
        );
        assert!(
            t.body.contains("ip saddr 10.42.1.0/24 masquerade"),
            "{}",
            t.body
        );

        // A second pass with nothing changed changes nothing.
        nodes[0] = node("a", Some("10.42.1.0/24"), "172.30.0.11", Some(RECORDED_MAC));
        let calls = links.snapshot().calls.len();
        assert_eq!(p.sync(&nodes).await.unwrap(), None);
        assert_eq!(links.snapshot().calls.len(), calls);

        // Tampering: a route deleted and a neighbour changed by hand are put back.
        {
            let mut st = links.state.lock().unwrap();
            st.routes.retain(|r| r.dst != "10.42.2.0/24");
            st.neighbours
                .retain(|n| n.ip != Ipv4Addr::new(10, 42, 3, 0));
            st.neighbours.insert(Neighbour {
                ip: Ipv4Addr::new(10, 42, 3, 0),
                mac: "02:bb:00:00:00:00".into(),
            });
        }
        p.sync(&nodes).await.unwrap();
        let s2 = links.snapshot();
        assert_eq!(s2.routes, s.routes);
        assert_eq!(s2.neighbours, s.neighbours);

        // Node c leaves, node b moves to another address: c's entries go, b's follow.
        nodes.retain(|n| n.metadata.name.as_deref() != Some("c"));
        nodes[1] = node(
            "b",
            Some("10.42.2.0/24"),
            "172.30.0.22",
            Some("02:aa:00:00:00:02"),
        );
        p.sync(&nodes).await.unwrap();
        let s = links.snapshot();
        assert_eq!(s.routes.len(), 1);
        assert_eq!(s.neighbours.len(), 1);
        let fdb: Vec<_> = s
            .fdb
            .iter()
            .map(|f| (f.mac.as_str(), f.dst.to_string()))
            .collect();
        assert_eq!(fdb, [("02:aa:00:00:00:02", "172.30.0.22".to_string())]);
    }

    #[tokio::test]
    async fn no_overlay_on_loopback_or_with_backend_none() {
        for (ip, backend) in [
            ("127.0.0.1", Backend::Vxlan),
            ("172.30.0.11", Backend::None),
        ] {
            let (mut p, links, fw) = net(ip, backend);
            let mut me = node("a", Some("10.42.1.0/24"), ip, Some("02:aa:00:00:00:01"));
            me.metadata
                .annotations
                .as_mut()
                .unwrap()
                .remove(CLUSTER_CIDR_ANNOTATION);
            let nodes = vec![
                me,
                node(
                    "b",
                    Some("10.42.2.0/24"),
                    "172.30.0.12",
                    Some("02:aa:00:00:00:02"),
                ),
            ];
            // A stale VTEP MAC annotation is withdrawn.
            assert_eq!(
                p.sync(&nodes).await.unwrap(),
                Some(json!({"metadata": {"annotations": {VTEP_MAC_ANNOTATION: null}}}))
            );
            let s = links.snapshot();
            assert!(s.device.is_none() && s.routes.is_empty() && s.fdb.is_empty());
            // Masquerade still applies; without the annotation the pod CIDR stands in for the
            // cluster CIDR.
            let t = fw.table(Family::Ip, TABLE).unwrap();
            assert!(t
                .body
                .contains("ip saddr 10.42.1.0/24 ip daddr 10.42.1.0/24 return"));
        }
    }

    fn wg_node(
        name: &str,
        cidr: &str,
        ip: &str,
        key: Option<&str>,
        endpoint: Option<&str>,
    ) -> Node {
        let mut n = node(name, Some(cidr), ip, None);
        let a = n.metadata.annotations.as_mut().unwrap();
        if let Some(k) = key {
            a.insert(wg::PUBLIC_KEY_ANNOTATION.into(), k.into());
        }
        if let Some(e) = endpoint {
            a.insert(wg::ENDPOINT_ANNOTATION.into(), e.into());
        }
        n
    }

    #[tokio::test]
    async fn wireguard_peers_need_a_published_key_and_endpoint_and_get_routes_on_the_tun() {
        let (p, links, fw) = net("172.30.0.11", Backend::Wireguard);
        let tunnel = Arc::new(wg::RecordingTunnel::default());
        let mut p = p.with_tunnel(tunnel.clone());
        let key_b = wg::encode_key(&boringtun::x25519::PublicKey::from([2u8; 32]));
        let key_c = wg::encode_key(&boringtun::x25519::PublicKey::from([3u8; 32]));
        let mut nodes = vec![
            node(
                "a",
                Some("10.42.1.0/24"),
                "172.30.0.11",
                Some("02:aa:00:00:00:01"),
            ),
            wg_node(
                "b",
                "10.42.2.0/24",
                "172.30.0.12",
                Some(&key_b),
                Some("172.30.0.12:51820"),
            ),
            wg_node(
                "c",
                "10.42.3.0/24",
                "172.30.0.13",
                Some(&key_c),
                Some("172.30.0.13:51999"),
            ),
            // Never peers: no key, a key that is not 32 bytes, an endpoint that is not the
            // node's InternalIP, no endpoint.
            wg_node(
                "d",
                "10.42.4.0/24",
                "172.30.0.14",
                None,
                Some("172.30.0.14:51820"),
            ),
            wg_node(
                "e",
                "10.42.5.0/24",
                "172.30.0.15",
                Some("AAAA"),
                Some("172.30.0.15:51820"),
            ),
            wg_node(
                "f",
                "10.42.6.0/24",
                "172.30.0.16",
                Some(&key_b),
                Some("192.0.2.1:51820"),
            ),
            wg_node("g", "10.42.7.0/24", "172.30.0.17", Some(&key_c), None),
        ];
        let patch = p.sync(&nodes).await.unwrap();
        // The node publishes its key and endpoint and withdraws its stale VTEP MAC.
        assert_eq!(
            patch,
            Some(json!({"metadata": {"annotations": {
                VTEP_MAC_ANNOTATION: null,
                wg::PUBLIC_KEY_ANNOTATION: wg::RECORDED_KEY,
                wg::ENDPOINT_ANNOTATION: "172.30.0.11:51820",
            }}}))
        );
        let s = links.snapshot();
        assert!(
            s.device.is_none(),
            "no VXLAN device with the wireguard backend"
        );
        assert_eq!(
            s.tun,
            Some((
                wg::TUN_DEVICE.to_string(),
                Ipv4Addr::new(10, 42, 1, 0),
                1420
            ))
        );
        let peers: Vec<_> = tunnel
            .peers
            .lock()
            .unwrap()
            .iter()
            .map(|p| (p.node.clone(), p.endpoint.to_string(), p.public_key))
            .collect();
        let pk = |b: u8| *boringtun::x25519::PublicKey::from([b; 32]).as_bytes();
        assert_eq!(
            peers,
            [
                ("b".to_string(), "172.30.0.12:51820".to_string(), pk(2)),
                ("c".to_string(), "172.30.0.13:51999".to_string(), pk(3))
            ]
        );
        let routes: Vec<_> = s
            .routes
            .iter()
            .map(|r| (r.dst.as_str(), r.via.to_string()))
            .collect();
        assert_eq!(
            routes,
            [
                ("10.42.0.0/16", "169.254.42.1".to_string()),
                ("10.42.2.0/24", "10.42.2.0".to_string()),
                ("10.42.3.0/24", "10.42.3.0".to_string())
            ]
        );
        assert!(fw.table(Family::Ip, TABLE).is_some());

        // Published: the next pass asks for no change and touches nothing.
        let a = nodes[0].metadata.annotations.as_mut().unwrap();
        a.remove(VTEP_MAC_ANNOTATION);
        a.insert(wg::PUBLIC_KEY_ANNOTATION.into(), wg::RECORDED_KEY.into());
        a.insert(wg::ENDPOINT_ANNOTATION.into(), "172.30.0.11:51820".into());
        let calls = links.snapshot().calls.len();
        assert_eq!(p.sync(&nodes).await.unwrap(), None);
        assert_eq!(links.snapshot().calls.len(), calls);

        // A deleted route is put back; a node that withdraws its key loses its peer and route.
        links
            .state
            .lock()
            .unwrap()
            .routes
            .retain(|r| r.dst != "10.42.2.0/24");
        nodes[2]
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(wg::PUBLIC_KEY_ANNOTATION);
        p.sync(&nodes).await.unwrap();
        let routes: Vec<_> = links
            .snapshot()
            .routes
            .iter()
            .map(|r| r.dst.clone())
            .collect();
        assert_eq!(routes, ["10.42.0.0/16", "10.42.2.0/24"]);
        let peers: Vec<_> = tunnel
            .peers
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.node.clone())
            .collect();
        assert_eq!(peers, ["b"]);
    }

    #[tokio::test]
    async fn wireguard_without_a_tunnel_programs_nothing() {
        let (mut p, links, _fw) = net("172.30.0.11", Backend::Wireguard);
        let key = wg::encode_key(&boringtun::x25519::PublicKey::from([2u8; 32]));
        let nodes = vec![
            node("a", Some("10.42.1.0/24"), "172.30.0.11", None),
            wg_node(
                "b",
                "10.42.2.0/24",
                "172.30.0.12",
                Some(&key),
                Some("172.30.0.12:51820"),
            ),
        ];
        assert_eq!(p.sync(&nodes).await.unwrap(), None);
        let s = links.snapshot();
        assert!(s.tun.is_none() && s.routes.is_empty());
    }

    #[tokio::test]
    async fn teardown_removes_the_table_and_the_device() {
        let (mut p, links, fw) = net("172.30.0.11", Backend::Vxlan);
        p.sync(&[node("a", Some("10.42.1.0/24"), "172.30.0.11", None)])
            .await
            .unwrap();
        assert!(links.snapshot().device.is_some());
        teardown("daas0", fw.as_ref(), links.as_ref())
            .await
            .unwrap();
        assert!(links.snapshot().device.is_none());
        assert!(fw.table(Family::Ip, TABLE).is_none());
    }

    #[tokio::test]
    async fn a_removed_masquerade_table_is_applied_again() {
        let (mut p, _links, fw) = net("127.0.0.1", Backend::Vxlan);
        let nodes = vec![node("a", Some("10.42.1.0/24"), "127.0.0.1", None)];
        p.sync(&nodes).await.unwrap();
        fw.remove(Family::Ip, TABLE).await.unwrap();
        assert!(fw.table(Family::Ip, TABLE).is_none());
        p.sync(&nodes).await.unwrap();
        assert!(fw.table(Family::Ip, TABLE).is_some());
    }
}
