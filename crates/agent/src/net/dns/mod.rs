//! Cluster DNS on the node (CoreDNS's job in K3s): a DNS server on the node gateway address
//! (the first address of the node's pod CIDR), port 53 over UDP and TCP, answering the cluster
//! domain from the Services and EndpointSlices the node watches ([`zone`]) and forwarding
//! everything else to the upstream servers ([`server`]). The `kube-dns` Service (10.43.0.10) is
//! DNATed by the Service proxy to the gateway of the pod's own node, so every pod's queries stay
//! on its node.

pub mod server;
pub mod zone;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use tokio::sync::watch;

use crate::config::AgentConfig;
use server::Resolver;
use zone::Zone;

/// The cluster (pod) CIDR: clients the DNS server answers, with the node's own addresses.
pub const CLUSTER_CIDR: Cidr = Cidr {
    addr: IpAddr::V4(Ipv4Addr::new(10, 42, 0, 0)),
    prefix: 16,
};
/// Time one upstream server gets to answer.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// Zone rebuilds are at most this frequent (bursts of changes are coalesced).
const REBUILD_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("binding the DNS server on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid pod CIDR {0:?}")]
    PodCidr(String),
    #[error("invalid CIDR {0:?}")]
    Cidr(String),
}

/// An address range (`10.42.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn host(ip: IpAddr) -> Cidr {
        Cidr {
            addr: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// The first address of the range (the node gateway of a pod CIDR).
    pub fn first_host(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(1))),
            IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6).wrapping_add(1))),
        }
    }
}

impl FromStr for Cidr {
    type Err = DnsError;
    fn from_str(s: &str) -> Result<Cidr, DnsError> {
        let bad = || DnsError::Cidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

/// The node gateway of a pod CIDR: where the node's DNS server listens.
pub fn gateway(pod_cidr: &str) -> Result<IpAddr, DnsError> {
    pod_cidr
        .parse::<Cidr>()
        .map(|c| c.first_host())
        .map_err(|_| DnsError::PodCidr(pod_cidr.to_string()))
}

/// The upstream servers: the configured forwarders, or the nameservers of the node's resolv.conf
/// (except the node gateway itself, which would loop).
pub fn upstreams(cfg: &AgentConfig, gateway: IpAddr) -> Vec<SocketAddr> {
    if !cfg.dns.forwarders.is_empty() {
        return cfg.dns.forwarders.clone();
    }
    crate::resolvconf::HostResolvConf::read(&cfg.dns.resolv_conf)
        .nameservers
        .iter()
        .filter(|ip| **ip != gateway)
        .map(|ip| SocketAddr::new(*ip, 53))
        .collect()
}

/// Start the node's DNS server on the gateway of `pod_cidr` (unless `cluster_dns_server` is off): the zone kept from watches
/// of Services and EndpointSlices, and the UDP and TCP listeners. A failure to bind is reported
/// and leaves the node without a DNS server rather than failing the join.
pub fn spawn(
    client: kube::Client,
    cfg: &AgentConfig,
    pod_cidr: &str,
) -> Vec<tokio::task::JoinHandle<()>> {
    if !cfg.dns.server {
        return Vec::new();
    }
    let gw = match gateway(pod_cidr) {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, "no cluster DNS server on this node");
            return Vec::new();
        }
    };
    let listen = SocketAddr::new(gw, 53);
    let (udp, tcp) = match server::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "no cluster DNS server on this node");
            return Vec::new();
        }
    };
    let mut allowed = vec![
        CLUSTER_CIDR,
        Cidr::host(cfg.node_ip),
        Cidr::host(gw),
        Cidr {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            prefix: 8,
        },
        Cidr::host(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
    ];
    if let Ok(c) = pod_cidr.parse::<Cidr>() {
        allowed.push(c);
    }
    let forwarders = upstreams(cfg, gw);
    let (tx, rx) = watch::channel(Arc::new(Zone::build(&cfg.dns.cluster_domain, &[], &[])));
    let resolver = Arc::new(Resolver {
        zone: rx,
        forwarders: forwarders.clone(),
        allowed,
        timeout: FORWARD_TIMEOUT,
    });
    tracing::info!(%listen, domain = %cfg.dns.cluster_domain, ?forwarders, "cluster DNS server started");
    vec![
        tokio::spawn(keep_zone(client, cfg.dns.cluster_domain.clone(), tx)),
        tokio::spawn(server::serve_udp(udp, resolver.clone())),
        tokio::spawn(server::serve_tcp(tcp, resolver)),
    ]
}

/// Watch Services and EndpointSlices and publish a new zone after changes.
async fn keep_zone(client: kube::Client, domain: String, tx: watch::Sender<Arc<Zone>>) {
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (slice_store, slice_writer) = reflector::store::<EndpointSlice>();
    let svcs = reflector(
        svc_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .boxed();
    let slices = reflector(
        slice_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .boxed();
    let mut events = futures::stream::select(svcs.map(|_| ()), slices.map(|_| ()));
    let mut tick = tokio::time::interval(REBUILD_EVERY);
    let mut dirty = false;
    loop {
        tokio::select! {
            ev = events.next() => {
                if ev.is_none() {
                    return;
                }
                dirty = true;
            }
            _ = tick.tick() => {
                if !dirty {
                    continue;
                }
                dirty = false;
                let services: Vec<Service> = svc_store.state().iter().map(|s| (**s).clone()).collect();
                let slices: Vec<EndpointSlice> = slice_store.state().iter().map(|s| (**s).clone()).collect();
                let zone = Zone::build(&domain, &services, &slices);
                tracing::debug!(services = services.len(), slices = slices.len(), "cluster DNS zone rebuilt");
                tx.send_replace(Arc::new(zone));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_the_gateway() {
        let c: Cidr = "10.42.0.0/16".parse().unwrap();
        assert!(c.contains("10.42.200.3".parse().unwrap()));
        assert!(!c.contains("10.43.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert!("10.42.0.0/33".parse::<Cidr>().is_err());
        assert!("10.42.0.0".parse::<Cidr>().is_err());
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(
            gateway("10.42.3.0/24").unwrap(),
            "10.42.3.1".parse::<IpAddr>().unwrap()
        );
        assert!(gateway("nope").is_err());
    }
}
