//! The cluster's well-known addresses (shared networking facts of K3s-DaaS, as in K3s'
//! defaults): the pod and Service ranges, the `kubernetes` and cluster DNS Service addresses.

use std::net::Ipv4Addr;

/// The cluster (pod) CIDR, 10.42.0.0/16: every node's pod range is a /24 inside it.
pub const CLUSTER_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 42, 0, 0), 16);
/// The Service CIDR, 10.43.0.0/16.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 43, 0, 0), 16);
/// The `default/kubernetes` Service: the API server for in-cluster clients.
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 1);
pub const KUBERNETES_SERVICE_PORT: u16 = 443;
/// The cluster DNS Service `kube-system/kube-dns`: answered by the DNS server every node runs
/// on its node gateway, so the node proxy sends it to the local one.
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);
pub const DNS_PORT: u16 = 53;
pub const DNS_SERVICE_NAMESPACE: &str = "kube-system";
pub const DNS_SERVICE_NAME: &str = "kube-dns";
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// `a.b.c.d/len` as text.
pub fn cidr_text((net, len): (Ipv4Addr, u8)) -> String {
    format!("{net}/{len}")
}

/// The node gateway of a pod CIDR (`10.42.3.0/24` -> `10.42.3.1`): the first address, held by
/// the node's CNI bridge. `None` when `cidr` is not an IPv4 CIDR with room for it.
pub fn node_gateway(cidr: &str) -> Option<Ipv4Addr> {
    let (net, len) = cidr.split_once('/')?;
    let net: Ipv4Addr = net.trim().parse().ok()?;
    let len: u8 = len.trim().parse().ok()?;
    if len > 30 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some(Ipv4Addr::from((u32::from(net) & mask) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_gateway_is_the_first_address() {
        assert_eq!(
            node_gateway("10.42.3.0/24"),
            Some(Ipv4Addr::new(10, 42, 3, 1))
        );
        assert_eq!(
            node_gateway("10.42.3.7/24"),
            Some(Ipv4Addr::new(10, 42, 3, 1))
        );
        assert_eq!(node_gateway("10.42.3.0/31"), None);
        assert_eq!(node_gateway("fd00::/64"), None);
        assert_eq!(node_gateway("junk"), None);
        assert_eq!(cidr_text(CLUSTER_CIDR), "10.42.0.0/16");
    }
}
