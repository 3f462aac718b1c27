//! What the node proxy programs, derived from Services and EndpointSlices (pure): one
//! [`ServicePort`] per port of every Service that gets rules, with the endpoints chosen the way
//! kube-proxy chooses them.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::wellknown;

/// Label linking an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_SECONDS: u32 = 10_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: Option<&str>) -> Option<Proto> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    /// nftables' name of the protocol.
    pub fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One backend of a Service port: its address, resolved target port, and whether it runs on
/// this node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub local: bool,
}

/// One port of a Service with everything its rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    pub proto: Proto,
    pub port: u16,
    pub cluster_ip: Ipv4Addr,
    /// `spec.ports[].nodePort` (NodePort and LoadBalancer Services).
    pub node_port: Option<u16>,
    /// `status.loadBalancer.ingress[].ip` and `spec.externalIPs`: addresses reached from outside.
    pub external_ips: Vec<Ipv4Addr>,
    /// sessionAffinity ClientIP: its timeout in seconds.
    pub affinity_seconds: Option<u32>,
    /// externalTrafficPolicy Local: external traffic keeps its source and only goes to local
    /// endpoints.
    pub external_local: bool,
    /// internalTrafficPolicy Local: cluster traffic only goes to local endpoints.
    pub internal_local: bool,
    /// The endpoints traffic is spread over (ready ones; or, when none is ready, the serving
    /// terminating ones, as kube-proxy does), sorted.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// A short stable id: `namespace/name/proto/port`.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.namespace,
            self.name,
            self.proto.nft(),
            self.port
        )
    }

    /// The endpoints cluster traffic goes to.
    pub fn cluster_endpoints(&self) -> Vec<&Endpoint> {
        self.endpoints
            .iter()
            .filter(|e| !self.internal_local || e.local)
            .collect()
    }

    /// The endpoints external traffic (NodePort, load balancer, external IPs) goes to.
    pub fn external_endpoints(&self) -> Vec<&Endpoint> {
        self.endpoints
            .iter()
            .filter(|e| !self.external_local || e.local)
            .collect()
    }
}

/// The cluster DNS Service's ports, always sent to the DNS server of this node (at the node
/// gateway), whatever EndpointSlices say.
pub fn dns_ports(node_gateway: Ipv4Addr) -> Vec<ServicePort> {
    [Proto::Udp, Proto::Tcp]
        .into_iter()
        .map(|proto| ServicePort {
            namespace: wellknown::DNS_SERVICE_NAMESPACE.into(),
            name: wellknown::DNS_SERVICE_NAME.into(),
            port_name: match proto {
                Proto::Udp => "dns".into(),
                _ => "dns-tcp".into(),
            },
            proto,
            port: wellknown::DNS_PORT,
            cluster_ip: wellknown::DNS_SERVICE_IP,
            node_port: None,
            external_ips: Vec::new(),
            affinity_seconds: None,
            external_local: false,
            internal_local: false,
            endpoints: vec![Endpoint {
                ip: node_gateway,
                port: wellknown::DNS_PORT,
                local: true,
            }],
        })
        .collect()
}

/// The ports to program for these Services and EndpointSlices, on node `node`, plus the
/// cluster DNS ports to `node_gateway`. Headless and ExternalName Services, Services without an
/// IPv4 cluster IP and ports with an unknown protocol get nothing.
pub fn service_ports(
    services: &[impl Borrow<Service>],
    slices: &[impl Borrow<EndpointSlice>],
    node: &str,
    node_gateway: Ipv4Addr,
) -> Vec<ServicePort> {
    // Slices by (namespace, service name).
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        let s: &EndpointSlice = s.borrow();
        if s.address_type != "IPv4" {
            continue;
        }
        let (Some(ns), Some(svc)) = (
            s.metadata.namespace.clone(),
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .cloned(),
        ) else {
            continue;
        };
        by_service.entry((ns, svc)).or_default().push(s);
    }
    let mut out = dns_ports(node_gateway);
    for svc in services {
        let svc: &Service = svc.borrow();
        let (Some(ns), Some(name), Some(spec)) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
            svc.spec.as_ref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            // Headless ("None") or not IPv4.
            continue;
        };
        if cluster_ip == wellknown::DNS_SERVICE_IP {
            // Always the local DNS server (see dns_ports).
            continue;
        }
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        let mut external_ips: Vec<Ipv4Addr> = spec
            .external_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        if spec.type_.as_deref() == Some("LoadBalancer") {
            external_ips.extend(
                svc.status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.ip.as_deref()?.parse::<Ipv4Addr>().ok()),
            );
        }
        external_ips.sort();
        external_ips.dedup();
        let with_node_ports = matches!(
            spec.type_.as_deref(),
            Some("NodePort") | Some("LoadBalancer")
        );
        let slices = by_service
            .get(&(ns.to_string(), name.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for p in spec.ports.iter().flatten() {
            let Some(proto) = Proto::parse(p.protocol.as_deref()) else {
                continue;
            };
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            let port_name = p.name.clone().unwrap_or_default();
            out.push(ServicePort {
                namespace: ns.to_string(),
                name: name.to_string(),
                proto,
                port,
                cluster_ip,
                node_port: if with_node_ports {
                    p.node_port.and_then(|n| u16::try_from(n).ok())
                } else {
                    None
                },
                external_ips: external_ips.clone(),
                affinity_seconds,
                external_local: spec.external_traffic_policy.as_deref() == Some("Local")
                    && (with_node_ports || !external_ips.is_empty()),
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                endpoints: endpoints_for(slices, &port_name, proto, node),
                port_name,
            });
        }
    }
    out.sort_by_key(|p| p.id());
    out
}

/// kube-proxy's choice: the ready endpoints of the slices' port with this name and protocol;
/// when none is ready, the serving and terminating ones. Duplicates (the same address in two
/// slices) count once.
fn endpoints_for(
    slices: &[&EndpointSlice],
    port_name: &str,
    proto: Proto,
    node: &str,
) -> Vec<Endpoint> {
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for s in slices {
        let Some(port) = s.ports.iter().flatten().find_map(|p| {
            (p.name.as_deref().unwrap_or("") == port_name
                && Proto::parse(p.protocol.as_deref()) == Some(proto))
            .then_some(p.port)
            .flatten()
            .and_then(|n| u16::try_from(n).ok())
        }) else {
            continue;
        };
        for e in &s.endpoints {
            let Some(ip) = e.addresses.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let c = e.conditions.as_ref();
            // Upstream: a nil ready means ready; nil serving means as ready; nil terminating
            // means not terminating.
            let is_ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving).unwrap_or(is_ready);
            let term = c.and_then(|c| c.terminating).unwrap_or(false);
            let ep = Endpoint {
                ip,
                port,
                local: e.node_name.as_deref() == Some(node),
            };
            if is_ready {
                ready.push(ep);
            } else if serving && term {
                terminating.push(ep);
            }
        }
    }
    let mut chosen = if ready.is_empty() { terminating } else { ready };
    chosen.sort();
    chosen.dedup_by(|a, b| a.ip == b.ip && a.port == b.port);
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }
    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }
    const GW: Ipv4Addr = Ipv4Addr::new(10, 42, 1, 1);

    fn web() -> Service {
        svc(json!({"metadata": {"namespace": "ns", "name": "web"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.20",
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
                          {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}}))
    }

    fn web_slice() -> EndpointSlice {
        slice(json!({"metadata": {"namespace": "ns", "name": "web-1",
                "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                      {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [
                {"addresses": ["10.42.2.5"], "conditions": {"ready": true}, "nodeName": "b"},
                {"addresses": ["10.42.1.5"], "conditions": {"ready": true}, "nodeName": "a"},
                {"addresses": ["10.42.1.6"], "conditions": {"ready": false, "serving": false}, "nodeName": "a"},
                {"addresses": ["10.42.1.7"], "conditions": {"ready": false, "serving": true, "terminating": true}, "nodeName": "a"}]}))
    }

    #[test]
    fn named_ports_resolve_to_the_slices_target_ports_over_ready_endpoints() {
        let ports = service_ports(&[web()], &[web_slice()], "a", GW);
        let web: Vec<_> = ports.iter().filter(|p| p.name == "web").collect();
        assert_eq!(web.len(), 2);
        let http = web.iter().find(|p| p.proto == Proto::Tcp).unwrap();
        assert_eq!((http.port, http.node_port), (80, Some(30080)));
        assert_eq!(
            http.endpoints,
            vec![
                Endpoint {
                    ip: "10.42.1.5".parse().unwrap(),
                    port: 8080,
                    local: true
                },
                Endpoint {
                    ip: "10.42.2.5".parse().unwrap(),
                    port: 8080,
                    local: false
                },
            ]
        );
        let dns = web.iter().find(|p| p.proto == Proto::Udp).unwrap();
        assert_eq!(dns.endpoints[0].port, 5353);
        assert_eq!(http.id(), "ns/web/tcp/80");
    }

    #[test]
    fn terminating_serving_endpoints_are_the_fallback() {
        let s = slice(json!({"metadata": {"namespace": "ns", "name": "web-1",
                "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.1.6"], "conditions": {"ready": false, "serving": false}},
                {"addresses": ["10.42.1.7"], "conditions": {"ready": false, "serving": true, "terminating": true}}]}));
        let ports = service_ports(&[web()], &[s], "a", GW);
        let http = ports.iter().find(|p| p.id() == "ns/web/tcp/80").unwrap();
        assert_eq!(http.endpoints.len(), 1);
        assert_eq!(http.endpoints[0].ip, Ipv4Addr::new(10, 42, 1, 7));
        // A port absent from the slice has no endpoints.
        let dns = ports.iter().find(|p| p.id() == "ns/web/udp/53").unwrap();
        assert!(dns.endpoints.is_empty());
    }

    #[test]
    fn headless_external_name_and_foreign_slices_get_nothing() {
        let services = [
            svc(json!({"metadata": {"namespace": "ns", "name": "h"},
                "spec": {"clusterIP": "None", "ports": [{"port": 80}]}})),
            svc(json!({"metadata": {"namespace": "ns", "name": "x"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}})),
        ];
        let ports = service_ports(&services, &[web_slice()], "a", GW);
        // Only the cluster DNS ports, to the local node gateway.
        assert_eq!(ports.len(), 2);
        assert!(ports
            .iter()
            .all(|p| p.cluster_ip == wellknown::DNS_SERVICE_IP
                && p.endpoints
                    == vec![Endpoint {
                        ip: GW,
                        port: 53,
                        local: true
                    }]));
    }

    #[test]
    fn a_dns_service_object_does_not_replace_the_local_dns_rule() {
        let dns = svc(
            json!({"metadata": {"namespace": "kube-system", "name": "kube-dns"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}),
        );
        let ports = service_ports(&[dns], &[] as &[EndpointSlice], "a", GW);
        assert_eq!(ports.len(), 2);
        assert!(ports.iter().all(|p| p.endpoints[0].ip == GW));
    }

    #[test]
    fn affinity_policies_and_load_balancer_ips() {
        let s = svc(json!({"metadata": {"namespace": "ns", "name": "web"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.20",
                "sessionAffinity": "ClientIP",
                "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                "externalIPs": ["192.0.2.9"],
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.12"}, {"ip": "172.30.0.11"}]}}}));
        let ports = service_ports(std::slice::from_ref(&s), &[web_slice()], "a", GW);
        let p = ports.iter().find(|p| p.name == "web").unwrap();
        assert_eq!(p.affinity_seconds, Some(DEFAULT_AFFINITY_SECONDS));
        assert_eq!(
            p.external_ips,
            ["172.30.0.11", "172.30.0.12", "192.0.2.9"].map(|s| s.parse::<Ipv4Addr>().unwrap())
        );
        assert!(p.external_local && p.internal_local);
        assert_eq!(p.external_endpoints().len(), 1);
        assert_eq!(p.cluster_endpoints().len(), 1);
        assert_eq!(p.endpoints.len(), 2);
        // A timeout from sessionAffinityConfig.
        let mut s2 = s;
        s2.spec.as_mut().unwrap().session_affinity_config =
            serde_json::from_value(json!({"clientIP": {"timeoutSeconds": 60}})).unwrap();
        let ports = service_ports(&[s2], &[web_slice()], "a", GW);
        assert_eq!(
            ports
                .iter()
                .find(|p| p.name == "web")
                .unwrap()
                .affinity_seconds,
            Some(60)
        );
    }
}
