//! The cluster zone: what the node's DNS server answers from (the Kubernetes DNS specification,
//! as CoreDNS's `kubernetes` plugin with `pods insecure`), built from the Services and
//! EndpointSlices the node watches, and [`Zone::resolve`], a pure function from a question to
//! an answer.
//!
//! - `<svc>.<ns>.svc.<domain>`: A/AAAA of the cluster IPs; for a headless Service the ready
//!   endpoints' addresses; an ExternalName Service is a CNAME to its external name;
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV of a named port (a headless Service: one
//!   per ready endpoint, targeting the endpoint's name);
//! - `<hostname>.<svc>.<ns>.svc.<domain>`: a headless Service's endpoint, by its `hostname` (set
//!   from the pod's `hostname` and `subdomain`) or its dashed address;
//! - `<a-b-c-d>.<ns>.pod.<domain>`: the address in the name;
//! - PTR of Service IPs and named endpoints;
//! - a name in the domain that does not exist: NXDOMAIN; a name without data of the asked type:
//!   NOERROR and no answer; both with the zone's SOA in the authority section.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// TTL of the answers (CoreDNS's default).
pub const TTL: u32 = 5;

/// A port of a Service or of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortRec {
    name: String,
    /// Lowercase (`tcp`, `udp`, `sctp`).
    protocol: String,
    port: u16,
}

/// A ready endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EpRec {
    ips: Vec<IpAddr>,
    hostname: Option<String>,
    ports: Vec<PortRec>,
}

impl EpRec {
    /// The endpoint's label under its Service: its hostname, or its dashed address.
    fn label(&self) -> Option<String> {
        self.hostname
            .clone()
            .or_else(|| self.ips.first().map(dashed))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SvcKind {
    ClusterIp(Vec<IpAddr>),
    Headless,
    External(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Svc {
    kind: SvcKind,
    ports: Vec<PortRec>,
    endpoints: Vec<EpRec>,
}

/// What the server does with a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NOERROR, authoritative: the answers (none: the name exists without data of this type, and
    /// the SOA goes into the authority section) and additional records.
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name does not exist in the cluster domain (with the SOA in the authority section).
    NxDomain,
    /// Not the cluster's: ask the upstream servers.
    Forward,
}

impl Answer {
    fn records(answers: Vec<Record>) -> Answer {
        Answer::Records {
            answers,
            additionals: Vec::new(),
        }
    }
    fn nodata() -> Answer {
        Answer::records(Vec::new())
    }
}

/// A snapshot of the cluster's DNS data.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Lowercase, without the trailing dot (`cluster.local`).
    domain: String,
    services: HashMap<(String, String), Svc>,
    namespaces: HashSet<String>,
    reverse: HashMap<IpAddr, Vec<String>>,
}

/// `10.42.1.5` → `10-42-1-5`; IPv6 with dashes for colons.
fn dashed(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

fn undashed(label: &str) -> Option<IpAddr> {
    if label.contains('.') || label.contains(':') {
        return None;
    }
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

fn fqdn(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).ok()
}

fn addr_record(name: &Name, ip: IpAddr) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name.clone(), TTL, data)
}

fn wants(qtype: RecordType, ip: &IpAddr) -> bool {
    match qtype {
        RecordType::A => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        RecordType::ANY => true,
        _ => false,
    }
}

fn ports_of(
    ports: impl Iterator<Item = (Option<String>, Option<String>, Option<i32>)>,
) -> Vec<PortRec> {
    ports
        .filter_map(|(name, proto, port)| {
            Some(PortRec {
                name: name.unwrap_or_default(),
                protocol: proto.unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
                port: u16::try_from(port?).ok()?,
            })
        })
        .collect()
}

impl Zone {
    /// The zone of `domain` from the cluster's Services and EndpointSlices.
    pub fn build(domain: &str, services: &[Service], slices: &[EndpointSlice]) -> Zone {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut zone = Zone {
            domain,
            services: HashMap::new(),
            namespaces: HashSet::new(),
            reverse: HashMap::new(),
        };
        for s in services {
            let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name) else {
                continue;
            };
            let Some(spec) = &s.spec else { continue };
            zone.namespaces.insert(ns.clone());
            let kind = if spec.type_.as_deref() == Some("ExternalName") {
                match spec.external_name.as_deref().filter(|e| !e.is_empty()) {
                    Some(e) => SvcKind::External(e.trim_end_matches('.').to_string()),
                    None => continue,
                }
            } else {
                let ips: Vec<IpAddr> = spec
                    .cluster_ips
                    .iter()
                    .flatten()
                    .chain(spec.cluster_ip.iter())
                    .filter_map(|ip| ip.parse().ok())
                    .fold(Vec::new(), |mut v, ip| {
                        if !v.contains(&ip) {
                            v.push(ip);
                        }
                        v
                    });
                if ips.is_empty() {
                    SvcKind::Headless
                } else {
                    SvcKind::ClusterIp(ips)
                }
            };
            let ports = ports_of(
                spec.ports
                    .iter()
                    .flatten()
                    .map(|p| (p.name.clone(), p.protocol.clone(), Some(p.port))),
            );
            zone.services.insert(
                (ns.clone(), name.clone()),
                Svc {
                    kind,
                    ports,
                    endpoints: Vec::new(),
                },
            );
        }
        for sl in slices {
            let Some(ns) = &sl.metadata.namespace else {
                continue;
            };
            let Some(svc_name) = sl
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            else {
                continue;
            };
            let Some(svc) = zone.services.get_mut(&(ns.clone(), svc_name.clone())) else {
                continue;
            };
            let ports = ports_of(
                sl.ports
                    .iter()
                    .flatten()
                    .map(|p| (p.name.clone(), p.protocol.clone(), p.port)),
            );
            for ep in &sl.endpoints {
                // Upstream: an endpoint without the ready condition counts as ready.
                if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                let ips: Vec<IpAddr> = ep.addresses.iter().filter_map(|a| a.parse().ok()).collect();
                if ips.is_empty() {
                    continue;
                }
                svc.endpoints.push(EpRec {
                    ips,
                    hostname: ep.hostname.clone().filter(|h| !h.is_empty()),
                    ports: ports.clone(),
                });
            }
        }
        for ((ns, name), svc) in &zone.services {
            let base = format!("{name}.{ns}.svc.{}", zone.domain);
            match &svc.kind {
                SvcKind::ClusterIp(ips) => {
                    for ip in ips {
                        zone.reverse.entry(*ip).or_default().push(base.clone());
                    }
                }
                SvcKind::Headless => {
                    for ep in &svc.endpoints {
                        let Some(h) = &ep.hostname else { continue };
                        for ip in &ep.ips {
                            zone.reverse
                                .entry(*ip)
                                .or_default()
                                .push(format!("{h}.{base}"));
                        }
                    }
                }
                SvcKind::External(_) => {}
            }
        }
        for names in zone.reverse.values_mut() {
            names.sort();
            names.dedup();
        }
        zone
    }

    /// The cluster domain (lowercase, no trailing dot).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The zone's SOA record (for the authority section of NXDOMAIN and empty answers).
    pub fn soa(&self) -> Option<Record> {
        let apex = fqdn(&self.domain)?;
        let soa = SOA::new(
            fqdn(&format!("ns.dns.{}", self.domain))?,
            fqdn(&format!("hostmaster.{}", self.domain))?,
            1,
            7200,
            1800,
            86400,
            TTL,
        );
        Some(Record::from_rdata(apex, TTL, RData::SOA(soa)))
    }

    /// The answer to `qname`/`qtype`.
    pub fn resolve(&self, qname: &Name, qtype: RecordType) -> Answer {
        let lower = qname.to_lowercase().to_ascii();
        let n = lower.trim_end_matches('.');
        if n.ends_with(".in-addr.arpa") || n.ends_with(".ip6.arpa") {
            return self.reverse_lookup(qname, qtype);
        }
        let rest = if n == self.domain {
            ""
        } else if let Some(r) = n.strip_suffix(&format!(".{}", self.domain)) {
            r
        } else {
            return Answer::Forward;
        };
        let labels: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').collect()
        };
        match labels.as_slice() {
            [] => match (qtype, self.soa()) {
                (RecordType::SOA | RecordType::ANY, Some(soa)) => Answer::records(vec![soa]),
                _ => Answer::nodata(),
            },
            ["svc"] | ["pod"] => Answer::nodata(),
            [ns, "svc"] | [ns, "pod"] => {
                if self.namespaces.contains(*ns) {
                    Answer::nodata()
                } else {
                    Answer::NxDomain
                }
            }
            [svc, ns, "svc"] => self.service(qname, ns, svc, qtype),
            [ep, svc, ns, "svc"] => self.endpoint(qname, ns, svc, ep, qtype),
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                self.srv(qname, ns, svc, &port[1..], &proto[1..], qtype)
            }
            [ip, _ns, "pod"] => match undashed(ip) {
                Some(ip) if wants(qtype, &ip) => Answer::records(vec![addr_record(qname, ip)]),
                Some(_) => Answer::nodata(),
                None => Answer::NxDomain,
            },
            _ => Answer::NxDomain,
        }
    }

    fn service(&self, qname: &Name, ns: &str, name: &str, qtype: RecordType) -> Answer {
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        match &svc.kind {
            SvcKind::External(target) => match fqdn(target) {
                Some(t) => Answer::records(vec![Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::CNAME(CNAME(t)),
                )]),
                None => Answer::nodata(),
            },
            SvcKind::ClusterIp(ips) => {
                if qtype == RecordType::SRV {
                    let mut additionals = Vec::new();
                    let answers = svc
                        .ports
                        .iter()
                        .map(|p| srv_record(qname, p.port, qname.clone()))
                        .collect::<Vec<_>>();
                    if !answers.is_empty() {
                        additionals.extend(ips.iter().map(|ip| addr_record(qname, *ip)));
                    }
                    return Answer::Records {
                        answers,
                        additionals,
                    };
                }
                Answer::records(
                    ips.iter()
                        .filter(|ip| wants(qtype, ip))
                        .map(|ip| addr_record(qname, *ip))
                        .collect(),
                )
            }
            SvcKind::Headless => {
                if qtype == RecordType::SRV {
                    let mut answers = Vec::new();
                    let mut additionals = Vec::new();
                    for ep in &svc.endpoints {
                        let Some(target) = ep.label().and_then(|l| qname.prepend_label(l).ok())
                        else {
                            continue;
                        };
                        for p in &ep.ports {
                            answers.push(srv_record(qname, p.port, target.clone()));
                        }
                        additionals.extend(ep.ips.iter().map(|ip| addr_record(&target, *ip)));
                    }
                    return Answer::Records {
                        answers,
                        additionals,
                    };
                }
                Answer::records(
                    svc.endpoints
                        .iter()
                        .flat_map(|ep| ep.ips.iter())
                        .filter(|ip| wants(qtype, ip))
                        .map(|ip| addr_record(qname, *ip))
                        .collect(),
                )
            }
        }
    }

    fn endpoint(
        &self,
        qname: &Name,
        ns: &str,
        svc: &str,
        label: &str,
        qtype: RecordType,
    ) -> Answer {
        let Some(s) = self.services.get(&(ns.to_string(), svc.to_string())) else {
            return Answer::NxDomain;
        };
        if s.kind != SvcKind::Headless {
            return Answer::NxDomain;
        }
        let ips: Vec<IpAddr> = s
            .endpoints
            .iter()
            .filter(|ep| ep.label().as_deref() == Some(label))
            .flat_map(|ep| ep.ips.iter().copied())
            .collect();
        if ips.is_empty() {
            return Answer::NxDomain;
        }
        Answer::records(
            ips.into_iter()
                .filter(|ip| wants(qtype, ip))
                .map(|ip| addr_record(qname, ip))
                .collect(),
        )
    }

    fn srv(
        &self,
        qname: &Name,
        ns: &str,
        svc: &str,
        port: &str,
        proto: &str,
        qtype: RecordType,
    ) -> Answer {
        let Some(s) = self.services.get(&(ns.to_string(), svc.to_string())) else {
            return Answer::NxDomain;
        };
        let matches = |p: &PortRec| !p.name.is_empty() && p.name == port && p.protocol == proto;
        // `_port._proto.` off the question: the Service's name.
        let svc_name = qname.trim_to(usize::from(qname.num_labels()).saturating_sub(2));
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        match &s.kind {
            SvcKind::External(_) => return Answer::NxDomain,
            SvcKind::ClusterIp(ips) => {
                for p in s.ports.iter().filter(|p| matches(p)) {
                    answers.push(srv_record(qname, p.port, svc_name.clone()));
                }
                if !answers.is_empty() {
                    additionals.extend(ips.iter().map(|ip| addr_record(&svc_name, *ip)));
                }
            }
            SvcKind::Headless => {
                for ep in &s.endpoints {
                    let Some(target) = ep.label().and_then(|l| svc_name.prepend_label(l).ok())
                    else {
                        continue;
                    };
                    let mut any = false;
                    for p in ep.ports.iter().filter(|p| matches(p)) {
                        answers.push(srv_record(qname, p.port, target.clone()));
                        any = true;
                    }
                    if any {
                        additionals.extend(ep.ips.iter().map(|ip| addr_record(&target, *ip)));
                    }
                }
            }
        }
        if answers.is_empty() {
            return Answer::NxDomain;
        }
        if qtype != RecordType::SRV && qtype != RecordType::ANY {
            return Answer::nodata();
        }
        Answer::Records {
            answers,
            additionals,
        }
    }

    fn reverse_lookup(&self, qname: &Name, qtype: RecordType) -> Answer {
        let Ok(net) = qname.parse_arpa_name() else {
            return Answer::Forward;
        };
        let full = match net.addr() {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if net.prefix_len() != full {
            return Answer::Forward;
        }
        let Some(names) = self.reverse.get(&net.addr()) else {
            return Answer::Forward;
        };
        if qtype != RecordType::PTR && qtype != RecordType::ANY {
            return Answer::nodata();
        }
        Answer::records(
            names
                .iter()
                .filter_map(|n| fqdn(n))
                .map(|n| Record::from_rdata(qname.clone(), TTL, RData::PTR(PTR(n))))
                .collect(),
        )
    }
}

fn srv_record(qname: &Name, port: u16, target: Name) -> Record {
    Record::from_rdata(
        qname.clone(),
        TTL,
        RData::SRV(SRV::new(0, 100, port, target)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn zone() -> Zone {
        let services = vec![
            svc(json!({"metadata": {"name": "web", "namespace": "default"},
                "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                              {"name": "dns", "port": 53, "protocol": "UDP"},
                              {"port": 81}]}})),
            svc(json!({"metadata": {"name": "db", "namespace": "data"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
            svc(json!({"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.org."}})),
        ];
        let slices: Vec<EndpointSlice> = vec![serde_json::from_value(json!({
        "metadata": {"name": "db-x", "namespace": "data",
            "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.42.1.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.2.6"], "conditions": {}},
            {"addresses": ["10.42.2.7"], "hostname": "db-2", "conditions": {"ready": false}}
        ]}))
        .unwrap()];
        Zone::build("cluster.local.", &services, &slices)
    }

    fn q(z: &Zone, name: &str, t: RecordType) -> Answer {
        z.resolve(&Name::from_ascii(name).unwrap(), t)
    }

    fn data(a: &Answer) -> Vec<String> {
        match a {
            Answer::Records { answers, .. } => {
                answers.iter().map(|r| r.data().to_string()).collect()
            }
            other => panic!("not records: {other:?}"),
        }
    }

    #[test]
    fn cluster_ip_service_a_and_aaaa() {
        let z = zone();
        let a = q(&z, "web.default.svc.cluster.local.", RecordType::A);
        assert_eq!(data(&a), ["10.43.0.20"]);
        // Case-insensitive.
        assert_eq!(
            data(&q(&z, "WEB.Default.svc.Cluster.Local.", RecordType::A)),
            ["10.43.0.20"]
        );
        // IPv4-only: AAAA is NOERROR without answers.
        assert!(data(&q(&z, "web.default.svc.cluster.local.", RecordType::AAAA)).is_empty());
        assert_eq!(
            q(&z, "nope.default.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            q(&z, "web.other.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
    }

    #[test]
    fn headless_service_endpoints_and_hostnames() {
        let z = zone();
        let mut ips = data(&q(&z, "db.data.svc.cluster.local.", RecordType::A));
        ips.sort();
        // The not-ready endpoint is left out.
        assert_eq!(ips, ["10.42.1.5", "10.42.2.6"]);
        assert_eq!(
            data(&q(&z, "db-0.db.data.svc.cluster.local.", RecordType::A)),
            ["10.42.1.5"]
        );
        assert_eq!(
            data(&q(
                &z,
                "10-42-2-6.db.data.svc.cluster.local.",
                RecordType::A
            )),
            ["10.42.2.6"]
        );
        assert_eq!(
            q(&z, "db-2.db.data.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        // A ClusterIP Service has no endpoint names.
        assert_eq!(
            q(&z, "x.web.default.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
    }

    #[test]
    fn srv_of_named_ports() {
        let z = zone();
        let a = q(
            &z,
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
        );
        assert_eq!(data(&a), ["0 100 80 web.default.svc.cluster.local."]);
        let Answer::Records { additionals, .. } = &a else {
            unreachable!()
        };
        assert_eq!(additionals[0].data().to_string(), "10.43.0.20");
        assert_eq!(
            data(&q(
                &z,
                "_dns._udp.web.default.svc.cluster.local.",
                RecordType::SRV
            )),
            ["0 100 53 web.default.svc.cluster.local."]
        );
        // Wrong protocol, unknown port.
        assert_eq!(
            q(
                &z,
                "_dns._tcp.web.default.svc.cluster.local.",
                RecordType::SRV
            ),
            Answer::NxDomain
        );
        let mut h = data(&q(
            &z,
            "_pg._tcp.db.data.svc.cluster.local.",
            RecordType::SRV,
        ));
        h.sort();
        assert_eq!(
            h,
            [
                "0 100 5432 10-42-2-6.db.data.svc.cluster.local.",
                "0 100 5432 db-0.db.data.svc.cluster.local."
            ]
        );
    }

    #[test]
    fn external_name_pods_and_the_zone_itself() {
        let z = zone();
        assert_eq!(
            data(&q(&z, "ext.default.svc.cluster.local.", RecordType::A)),
            ["example.org."]
        );
        assert_eq!(
            data(&q(
                &z,
                "10-42-3-9.default.pod.cluster.local.",
                RecordType::A
            )),
            ["10.42.3.9"]
        );
        assert!(data(&q(
            &z,
            "10-42-3-9.default.pod.cluster.local.",
            RecordType::AAAA
        ))
        .is_empty());
        assert_eq!(
            q(&z, "bad.default.pod.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(data(&q(&z, "cluster.local.", RecordType::SOA)).len(), 1);
        assert!(data(&q(&z, "default.svc.cluster.local.", RecordType::A)).is_empty());
        assert_eq!(
            q(&z, "nons.svc.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            q(&z, "a.b.c.d.e.f.cluster.local.", RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(q(&z, "example.org.", RecordType::A), Answer::Forward);
        // A name that only ends like the domain is not in it.
        assert_eq!(q(&z, "xcluster.local.", RecordType::A), Answer::Forward);
    }

    #[test]
    fn ptr_of_service_ips_and_named_endpoints() {
        let z = zone();
        assert_eq!(
            data(&q(&z, "20.0.43.10.in-addr.arpa.", RecordType::PTR)),
            ["web.default.svc.cluster.local."]
        );
        assert_eq!(
            data(&q(&z, "5.1.42.10.in-addr.arpa.", RecordType::PTR)),
            ["db-0.db.data.svc.cluster.local."]
        );
        assert_eq!(
            q(&z, "9.9.9.9.in-addr.arpa.", RecordType::PTR),
            Answer::Forward
        );
    }

    /// 1,000 Services with a slice each: the zone rebuild after a change and lookups stay well
    /// under what a watch burst and a pod's queries need (printed; the bounds are loose for
    /// debug builds on a busy machine).
    #[test]
    fn a_thousand_services() {
        let services: Vec<Service> = (0..1000)
            .map(|i| {
                svc(
                    json!({"metadata": {"name": format!("s{i}"), "namespace": "load"},
                    "spec": {"clusterIP": format!("10.43.{}.{}", 10 + i / 250, i % 250 + 1),
                        "ports": [{"name": "http", "port": 80}]}}),
                )
            })
            .collect();
        let slices: Vec<EndpointSlice> = (0..1000)
            .map(|i| {
                serde_json::from_value(json!({
                    "metadata": {"name": format!("s{i}-x"), "namespace": "load",
                        "labels": {"kubernetes.io/service-name": format!("s{i}")}},
                    "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                    "endpoints": [{"addresses": [format!("10.42.{}.{}", i / 250, i % 250 + 2)]}]}))
                .unwrap()
            })
            .collect();
        let t = std::time::Instant::now();
        let z = Zone::build("cluster.local", &services, &slices);
        let build = t.elapsed();
        let t = std::time::Instant::now();
        for i in 0..10_000 {
            let a = q(
                &z,
                &format!("s{}.load.svc.cluster.local.", i % 1000),
                RecordType::A,
            );
            assert_eq!(data(&a).len(), 1);
        }
        let lookups = t.elapsed();
        println!("zone of 1000 services: built in {build:?}; 10000 lookups in {lookups:?}");
        assert!(build < std::time::Duration::from_secs(2), "{build:?}");
        assert!(lookups < std::time::Duration::from_secs(5), "{lookups:?}");
    }
}
