//! The `ip daas-proxy` table for a set of [`ServicePort`]s (pure), laid out like kube-proxy's
//! nftables mode:
//!
//! - `services` (from the nat prerouting and output hooks) looks the destination up in the
//!   verdict maps `service-ips` (cluster IP . protocol . port) and `service-nodeports` (protocol
//!   . port, for destinations local to the node) and jumps to the port's chain;
//! - `svc-<id>` spreads cluster traffic over the endpoints with `numgen random` (after the
//!   session affinity sets, when ClientIP affinity is on) and marks traffic not from the pod
//!   network for masquerading; `ext-<id>` does the same for NodePort, load balancer and external
//!   IP traffic: masqueraded with externalTrafficPolicy Cluster, source kept and only local
//!   endpoints with Local;
//! - `ep-<id>__<ip>/<port>` DNATs to one endpoint, marks hairpin traffic (a pod reaching itself)
//!   for masquerading and records the client in the endpoint's affinity set;
//! - a Service port without endpoints is refused at once in the filter hooks: a TCP reset for TCP,
//!   ICMP port unreachable otherwise (the `no-endpoints` sets);
//! - `masquerading` (nat postrouting) masquerades what was marked with [`MASQ_MARK`].

use std::fmt::Write;

use super::model::{Endpoint, ServicePort};
use super::wellknown;
use crate::net::nft::{Family, Table};

pub const TABLE: &str = "daas-proxy";
pub const FAMILY: Family = Family::Ip;
/// The packet mark bit asking for masquerading (kube-proxy's 0x4000).
pub const MASQ_MARK: u32 = 0x4000;

fn svc_chain(p: &ServicePort) -> String {
    format!("svc-{}", p.id())
}
fn ext_chain(p: &ServicePort) -> String {
    format!("ext-{}", p.id())
}
fn ep_id(p: &ServicePort, e: &Endpoint) -> String {
    format!("{}__{}/{}", p.id(), e.ip, e.port)
}
fn ep_chain(p: &ServicePort, e: &Endpoint) -> String {
    format!("ep-{}", ep_id(p, e))
}
fn aff_set(p: &ServicePort, e: &Endpoint) -> String {
    format!("aff-{}", ep_id(p, e))
}

/// Lines spreading traffic over `eps` (affinity first), or a drop when there are none.
fn spread(out: &mut String, p: &ServicePort, eps: &[&Endpoint]) {
    if eps.is_empty() {
        out.push_str("\t\tdrop\n");
        return;
    }
    if p.affinity_seconds.is_some() {
        for e in eps {
            let _ = writeln!(
                out,
                "\t\tip saddr @{} goto {}",
                aff_set(p, e),
                ep_chain(p, e)
            );
        }
    }
    let arms: Vec<String> = eps
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{i} : goto {}", ep_chain(p, e)))
        .collect();
    let _ = writeln!(
        out,
        "\t\tnumgen random mod {} vmap {{ {} }}",
        eps.len(),
        arms.join(", ")
    );
}

fn elements(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("\t\telements = {{ {} }}\n", items.join(", "))
    }
}

/// The table programming `ports`.
pub fn table(ports: &[ServicePort]) -> Table {
    let cluster = wellknown::cidr_text(wellknown::CLUSTER_CIDR);
    let mut service_ips = Vec::new();
    let mut node_ports = Vec::new();
    let mut no_endpoints = Vec::new();
    let mut no_endpoint_node_ports = Vec::new();
    let mut taken = std::collections::HashSet::new();
    let mut sets = String::new();
    let mut chains = String::new();
    for p in ports {
        let proto = p.proto.nft();
        let has_external = p.node_port.is_some() || !p.external_ips.is_empty();
        if p.endpoints.is_empty() {
            // Only keys no port with endpoints claims (those come first, see below).
            continue;
        }
        // A key claimed twice (two load balancers on one node address and port, an external IP
        // that is another Service's cluster IP) goes to the first port in id order: one map
        // element per key, or nft refuses the whole table.
        if taken.insert(format!("{} . {proto} . {}", p.cluster_ip, p.port)) {
            service_ips.push(format!(
                "{} . {proto} . {} : goto {}",
                p.cluster_ip,
                p.port,
                svc_chain(p)
            ));
        }
        for ip in &p.external_ips {
            if taken.insert(format!("{ip} . {proto} . {}", p.port)) {
                service_ips.push(format!(
                    "{ip} . {proto} . {} : goto {}",
                    p.port,
                    ext_chain(p)
                ));
            }
        }
        if let Some(n) = p.node_port {
            if taken.insert(format!("{proto} . {n}")) {
                node_ports.push(format!("{proto} . {n} : goto {}", ext_chain(p)));
            }
        }
        // Cluster traffic.
        let _ = writeln!(chains, "\tchain {} {{", svc_chain(p));
        let _ = writeln!(chains, "\t\tip saddr != {cluster} jump mark-for-masquerade");
        spread(&mut chains, p, &p.cluster_endpoints());
        chains.push_str("\t}\n");
        // External traffic.
        if has_external {
            let _ = writeln!(chains, "\tchain {} {{", ext_chain(p));
            if p.external_local {
                // Pods reaching an external address are cluster traffic.
                let _ = writeln!(chains, "\t\tip saddr {cluster} goto {}", svc_chain(p));
            } else {
                chains.push_str("\t\tjump mark-for-masquerade\n");
            }
            spread(&mut chains, p, &p.external_endpoints());
            chains.push_str("\t}\n");
        }
        for e in &p.endpoints {
            if let Some(t) = p.affinity_seconds {
                let _ = writeln!(
                    sets,
                    "\tset {} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {t}s\n\t}}",
                    aff_set(p, e)
                );
            }
            let _ = writeln!(chains, "\tchain {} {{", ep_chain(p, e));
            let _ = writeln!(chains, "\t\tip saddr {} jump mark-for-masquerade", e.ip);
            if p.affinity_seconds.is_some() {
                let _ = writeln!(chains, "\t\tupdate @{} {{ ip saddr }}", aff_set(p, e));
            }
            let _ = writeln!(
                chains,
                "\t\tmeta l4proto {proto} dnat to {}:{}",
                e.ip, e.port
            );
            chains.push_str("\t}\n");
        }
    }
    // Ports without endpoints: their keys are refused unless a port with endpoints has them.
    for p in ports.iter().filter(|p| p.endpoints.is_empty()) {
        let proto = p.proto.nft();
        let keys = std::iter::once(p.cluster_ip)
            .chain(p.external_ips.iter().copied())
            .map(|ip| format!("{ip} . {proto} . {}", p.port));
        for k in keys {
            if taken.insert(k.clone()) {
                no_endpoints.push(k);
            }
        }
        if let Some(n) = p.node_port {
            if taken.insert(format!("{proto} . {n}")) {
                no_endpoint_node_ports.push(format!("{proto} . {n}"));
            }
        }
    }
    let mut body = String::new();
    let _ = write!(
        body,
        "\tmap service-ips {{\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n{}\t}}\n",
        elements(&service_ips)
    );
    let _ = write!(
        body,
        "\tmap service-nodeports {{\n\t\ttype inet_proto . inet_service : verdict\n{}\t}}\n",
        elements(&node_ports)
    );
    let _ = write!(
        body,
        "\tset no-endpoints {{\n\t\ttype ipv4_addr . inet_proto . inet_service\n{}\t}}\n",
        elements(&no_endpoints)
    );
    let _ = write!(
        body,
        "\tset no-endpoint-nodeports {{\n\t\ttype inet_proto . inet_service\n{}\t}}\n",
        elements(&no_endpoint_node_ports)
    );
    body.push_str(&sets);
    let _ = write!(
        body,
        "\
\tchain prerouting {{
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}}
\tchain output {{
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}}
\tchain postrouting {{
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tjump masquerading
\t}}
\tchain services {{
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t\tfib daddr type local meta l4proto . th dport vmap @service-nodeports
\t}}
\tchain mark-for-masquerade {{
\t\tmeta mark set meta mark | {MASQ_MARK:#x}
\t}}
\tchain masquerading {{
\t\tmeta mark & {MASQ_MARK:#x} == 0 return
\t\tmeta mark set meta mark ^ {MASQ_MARK:#x}
\t\tmasquerade fully-random
\t}}
\tchain filter-input {{
\t\ttype filter hook input priority filter - 5; policy accept;
\t\tct state new jump reject-no-endpoints
\t\tct state new fib daddr type local meta l4proto . th dport @no-endpoint-nodeports jump reject-traffic
\t}}
\tchain filter-forward {{
\t\ttype filter hook forward priority filter - 5; policy accept;
\t\tct state new jump reject-no-endpoints
\t}}
\tchain filter-output {{
\t\ttype filter hook output priority filter - 5; policy accept;
\t\tct state new jump reject-no-endpoints
\t}}
\tchain reject-no-endpoints {{
\t\tip daddr . meta l4proto . th dport @no-endpoints jump reject-traffic
\t}}
\tchain reject-traffic {{
\t\tmeta l4proto tcp reject with tcp reset
\t\treject
\t}}
"
    );
    body.push_str(&chains);
    Table::new(FAMILY, TABLE, body)
}

/// A listing of the table reduced to what the agent decides: the elements the kernel adds to
/// the session affinity sets (clients seen, with their expiry) are left out, so they do not
/// count as drift.
pub fn normalize_listing(listing: &str) -> String {
    let mut out = String::new();
    let mut in_aff = false;
    for line in listing.lines() {
        let t = line.trim();
        if t.starts_with("set aff-") {
            in_aff = true;
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if in_aff {
            if t == "}" {
                in_aff = false;
            } else if t.starts_with("elements = ") || !t.starts_with(|c: char| c.is_alphabetic()) {
                // Set elements (possibly over several lines).
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::proxy::model::{dns_ports, Proto};
    use std::net::Ipv4Addr;

    fn ep(ip: &str, port: u16, local: bool) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port,
            local,
        }
    }

    fn web() -> ServicePort {
        ServicePort {
            namespace: "ns".into(),
            name: "web".into(),
            port_name: "http".into(),
            proto: Proto::Tcp,
            port: 80,
            cluster_ip: Ipv4Addr::new(10, 43, 0, 20),
            node_port: None,
            external_ips: vec![],
            affinity_seconds: None,
            external_local: false,
            internal_local: false,
            endpoints: vec![ep("10.42.1.5", 8080, true), ep("10.42.2.5", 8080, false)],
        }
    }

    #[test]
    fn cluster_ip_spreads_over_the_endpoints_and_masquerades_hairpin() {
        let t = table(&[web()]);
        assert_eq!((t.family, t.name.as_str()), (Family::Ip, "daas-proxy"));
        let b = &t.body;
        assert!(
            b.contains("elements = { 10.43.0.20 . tcp . 80 : goto svc-ns/web/tcp/80 }"),
            "{b}"
        );
        assert!(b.contains("numgen random mod 2 vmap { 0 : goto ep-ns/web/tcp/80__10.42.1.5/8080, 1 : goto ep-ns/web/tcp/80__10.42.2.5/8080 }"), "{b}");
        assert!(b.contains("chain ep-ns/web/tcp/80__10.42.2.5/8080 {\n\t\tip saddr 10.42.2.5 jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to 10.42.2.5:8080\n"), "{b}");
        assert!(b.contains("ip saddr != 10.42.0.0/16 jump mark-for-masquerade"));
        // No external chain without node ports or external addresses.
        assert!(!b.contains("chain ext-"));
        assert!(!b.contains("set aff-"));
    }

    #[test]
    fn node_port_and_load_balancer_go_through_the_external_chain() {
        let mut p = web();
        p.node_port = Some(30080);
        p.external_ips = vec![Ipv4Addr::new(172, 30, 0, 11)];
        let b = table(&[p.clone()]).body;
        assert!(b.contains("tcp . 30080 : goto ext-ns/web/tcp/80"), "{b}");
        assert!(
            b.contains("172.30.0.11 . tcp . 80 : goto ext-ns/web/tcp/80"),
            "{b}"
        );
        assert!(
            b.contains(
                "chain ext-ns/web/tcp/80 {\n\t\tjump mark-for-masquerade\n\t\tnumgen random mod 2"
            ),
            "{b}"
        );
        // externalTrafficPolicy Local: source kept, local endpoints only, pods go the cluster way.
        p.external_local = true;
        let b = table(&[p.clone()]).body;
        assert!(b.contains("chain ext-ns/web/tcp/80 {\n\t\tip saddr 10.42.0.0/16 goto svc-ns/web/tcp/80\n\t\tnumgen random mod 1 vmap { 0 : goto ep-ns/web/tcp/80__10.42.1.5/8080 }"), "{b}");
        // No local endpoint: external traffic is dropped.
        p.endpoints = vec![ep("10.42.2.5", 8080, false)];
        let b = table(&[p]).body;
        assert!(b.contains("goto svc-ns/web/tcp/80\n\t\tdrop\n"), "{b}");
    }

    #[test]
    fn session_affinity_uses_a_timed_set_per_endpoint() {
        let mut p = web();
        p.affinity_seconds = Some(60);
        let b = table(&[p]).body;
        assert!(b.contains("set aff-ns/web/tcp/80__10.42.1.5/8080 {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 60s\n"), "{b}");
        assert!(b.contains("ip saddr @aff-ns/web/tcp/80__10.42.1.5/8080 goto ep-ns/web/tcp/80__10.42.1.5/8080\n"), "{b}");
        assert!(
            b.contains(
                "update @aff-ns/web/tcp/80__10.42.2.5/8080 { ip saddr }\n\t\tmeta l4proto tcp dnat"
            ),
            "{b}"
        );
    }

    #[test]
    fn ports_without_endpoints_are_refused() {
        let mut p = web();
        p.endpoints.clear();
        p.node_port = Some(30080);
        let b = table(&[p]).body;
        assert!(b.contains("set no-endpoints {\n\t\ttype ipv4_addr . inet_proto . inet_service\n\t\telements = { 10.43.0.20 . tcp . 80 }"), "{b}");
        assert!(b.contains("elements = { tcp . 30080 }"), "{b}");
        assert!(!b.contains("svc-ns/web"), "{b}");
        assert!(b.contains("meta l4proto tcp reject with tcp reset\n\t\treject\n"));
    }

    #[test]
    fn a_key_claimed_twice_goes_to_the_first_port() {
        let mut a = web();
        a.external_ips = vec![Ipv4Addr::new(172, 30, 0, 11)];
        let mut b = a.clone();
        b.name = "zzz".into();
        b.cluster_ip = Ipv4Addr::new(10, 43, 0, 21);
        let mut c = b.clone();
        c.name = "zzzz".into();
        c.cluster_ip = Ipv4Addr::new(10, 43, 0, 22);
        c.endpoints.clear();
        let body = table(&[a, b, c]).body;
        assert_eq!(body.matches("172.30.0.11 . tcp . 80").count(), 1, "{body}");
        assert!(body.contains("172.30.0.11 . tcp . 80 : goto ext-ns/web/tcp/80"));
        assert!(
            body.contains("elements = { 10.43.0.22 . tcp . 80 }"),
            "{body}"
        );
    }

    #[test]
    fn dns_goes_to_the_node_gateway() {
        let b = table(&dns_ports(Ipv4Addr::new(10, 42, 3, 1))).body;
        assert!(
            b.contains("10.43.0.10 . tcp . 53 : goto svc-kube-system/kube-dns/tcp/53"),
            "{b}"
        );
        assert!(
            b.contains("10.43.0.10 . udp . 53 : goto svc-kube-system/kube-dns/udp/53"),
            "{b}"
        );
        assert!(b.contains("meta l4proto udp dnat to 10.42.3.1:53"), "{b}");
    }

    #[test]
    fn affinity_set_elements_are_not_drift() {
        let a = "table ip daas-proxy {\n\tset aff-x {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 1m\n\t}\n\tchain c {\n\t}\n}\n";
        let b = "table ip daas-proxy {\n\tset aff-x {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 1m\n\t\telements = { 10.42.1.5 timeout 1m expires 59s,\n\t\t\t     10.42.1.6 timeout 1m expires 3s }\n\t}\n\tchain c {\n\t}\n}\n";
        assert_eq!(normalize_listing(a), normalize_listing(b));
        assert_ne!(
            normalize_listing(a),
            normalize_listing(&a.replace("chain c", "chain d"))
        );
    }

    /// The generated table is accepted by the real `nft` (in a namespace made for the test), and
    /// its listing is stable: a second sync finds nothing to repair.
    #[tokio::test]
    async fn real_nft_accepts_the_table_and_its_listing_is_stable() {
        use crate::net::nft::{Firewall, ScratchNetns};
        use crate::net::proxy::sync::{Programmer, SyncOutcome};
        let Some(scratch) = ScratchNetns::new("pxr") else {
            return;
        };
        let nft = std::sync::Arc::new(scratch.nft());
        let mut ports = dns_ports(Ipv4Addr::new(10, 42, 3, 1));
        let mut a = web();
        a.affinity_seconds = Some(60);
        a.node_port = Some(30080);
        a.external_ips = vec![Ipv4Addr::new(172, 30, 0, 11)];
        let mut b = web();
        b.cluster_ip = Ipv4Addr::new(10, 43, 0, 21);
        b.external_ips = vec![Ipv4Addr::new(172, 30, 0, 11)];
        b.name = "local".into();
        b.external_local = true;
        b.node_port = Some(30081);
        let mut c = web();
        c.cluster_ip = Ipv4Addr::new(10, 43, 0, 22);
        c.name = "empty".into();
        c.proto = Proto::Udp;
        c.endpoints.clear();
        c.node_port = Some(30082);
        ports.extend([a, b, c]);
        let t = table(&ports);
        let mut p = Programmer::new(nft.clone());
        let r1 = p.sync(t.clone(), true).await;
        let r2 = p.sync(t.clone(), true).await;
        let listed = nft.list(FAMILY, TABLE).await;
        nft.remove(FAMILY, TABLE).await.unwrap();
        let r3 = p.sync(t.clone(), true).await;
        assert_eq!(r1.unwrap(), SyncOutcome::Applied, "{}", t.body);
        assert_eq!(r2.unwrap(), SyncOutcome::Unchanged);
        assert!(listed.unwrap().unwrap().contains("numgen random mod 2"));
        assert_eq!(r3.unwrap(), SyncOutcome::Repaired);
    }
}
