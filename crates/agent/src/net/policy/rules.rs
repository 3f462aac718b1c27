//! The pure half of NetworkPolicy enforcement: from the cluster's pods, namespaces and policies,
//! the `inet daas-policy` table for the pods of one node.
//!
//! Layout of the table:
//! - chain `forward` (hook forward, policy accept): established/related traffic is accepted;
//!   then, per local pod isolated for egress, `ip saddr <pod> jump egr-N`; then, per local pod
//!   isolated for ingress, `ip daddr <pod> jump ing-N`;
//! - chain `egr-N`: the union of the egress rules of every policy selecting the pod, each line
//!   ending in `return` (allowed: go on to the destination's ingress check), then `drop`;
//! - chain `ing-N`: the union of the ingress rules selecting the pod, each line `accept`, then
//!   `drop`;
//! - sets `peers-N`: the addresses of a pod/namespace-selector peer of more than one pod,
//!   declared once and shared by the chains of every pod the peer appears for.
//!
//! Only pods with an IP, not on the host network and not finished are selected or matched as
//! peers (host-network pods share their node's address, which policies never restrict).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::rc::Rc;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::net::nft::{Family, Table};

/// The table this part owns.
pub const TABLE: &str = "daas-policy";
pub const FAMILY: Family = Family::Inet;

/// The label upstream keeps equal to a namespace's name (also assumed when a namespace is not
/// known yet or was stored before the label existed).
const NS_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// What the table is computed from.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// This node's name (`spec.nodeName` of the pods it enforces for).
    pub node: String,
    pub pods: Vec<Pod>,
    pub namespaces: Vec<Namespace>,
    pub policies: Vec<NetworkPolicy>,
}

/// A pod as the rules see it.
#[derive(Debug)]
struct PodView<'a> {
    ns: &'a str,
    name: &'a str,
    ip: IpAddr,
    labels: BTreeMap<String, String>,
    pod: &'a Pod,
}

impl PodView<'_> {
    /// The container port numbers named `name` for `proto` (upstream resolves named ports
    /// against the pod's containers, sidecars included).
    fn named_ports(&self, name: &str, proto: &str) -> BTreeSet<i32> {
        let Some(spec) = &self.pod.spec else {
            return BTreeSet::new();
        };
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| {
                p.name.as_deref() == Some(name)
                    && p.protocol
                        .as_deref()
                        .unwrap_or("TCP")
                        .eq_ignore_ascii_case(proto)
            })
            .map(|p| p.container_port)
            .collect()
    }
}

fn view(p: &Pod) -> Option<PodView<'_>> {
    let spec = p.spec.as_ref()?;
    if spec.host_network == Some(true) {
        return None;
    }
    let status = p.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
    Some(PodView {
        ns: p.metadata.namespace.as_deref()?,
        name: p.metadata.name.as_deref()?,
        ip,
        labels: p.metadata.labels.clone().unwrap_or_default(),
        pod: p,
    })
}

/// `metav1.LabelSelector` semantics; a selector with an unknown operator selects nothing.
fn selects(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(m) = &sel.match_labels {
        if m.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let have = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        let ok = match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The policy types of a policy, defaulted as upstream when absent.
fn policy_types(p: &NetworkPolicy) -> (bool, bool) {
    let Some(spec) = &p.spec else {
        return (false, false);
    };
    match spec.policy_types.as_deref() {
        Some(t) if !t.is_empty() => (
            t.iter().any(|t| t == "Ingress"),
            t.iter().any(|t| t == "Egress"),
        ),
        _ => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Ingress,
    Egress,
}

impl Dir {
    /// The address a rule of this direction matches the peer on.
    fn peer_addr(self) -> &'static str {
        match self {
            Dir::Ingress => "saddr",
            Dir::Egress => "daddr",
        }
    }

    fn verdict(self) -> &'static str {
        match self {
            Dir::Ingress => "accept",
            Dir::Egress => "return",
        }
    }
}

/// One peer of a rule, resolved.
enum Peer<'a> {
    /// No `from`/`to`: everything.
    All,
    /// The pods a selector peer selects, with the peer's cache key.
    Pods(usize, Vec<&'a PodView<'a>>),
    Block {
        cidr: (IpAddr, u8),
        except: Vec<(IpAddr, u8)>,
    },
}

/// One port of a rule, parsed.
enum PortMatch {
    /// No `ports`: every port and protocol.
    All,
    Proto(String),
    Range(String, i32, i32),
    Named(String, String),
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    (len <= bits).then(|| (masked(ip, len), len))
}

fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn in_cidr(net: (IpAddr, u8), ip: IpAddr) -> bool {
    net.0.is_ipv4() == ip.is_ipv4() && masked(ip, net.1) == net.0
}

fn fam(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// `{ a, b }` or a single element.
fn set<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if v.len() == 1 {
        v[0].clone()
    } else {
        format!("{{ {} }}", v.join(", "))
    }
}

struct Cx<'a> {
    pods: Vec<PodView<'a>>,
    ns_labels: BTreeMap<&'a str, BTreeMap<String, String>>,
    /// The pods (indices into `pods`) each pod/namespace-selector peer selects, by the peer's
    /// address: a peer does not depend on the pod it guards, so it is resolved once.
    selected: RefCell<HashMap<usize, Rc<Vec<usize>>>>,
    /// The address matches of each selector peer (same key), shared by every pod it guards.
    exprs: RefCell<HashMap<usize, Rc<Vec<String>>>>,
    /// Named sets declared for peers of more than one pod.
    sets: RefCell<String>,
}

impl<'a> Cx<'a> {
    fn ns_labels(&self, ns: &str) -> BTreeMap<String, String> {
        let mut l = self.ns_labels.get(ns).cloned().unwrap_or_default();
        l.insert(NS_NAME_LABEL.into(), ns.into());
        l
    }

    fn select(&self, policy_ns: &str, p: &NetworkPolicyPeer) -> Vec<usize> {
        let mut ns_ok: HashMap<&str, bool> = HashMap::new();
        self.pods
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                let in_ns = match &p.namespace_selector {
                    Some(sel) => *ns_ok
                        .entry(v.ns)
                        .or_insert_with(|| selects(sel, &self.ns_labels(v.ns))),
                    None => v.ns == policy_ns,
                };
                in_ns
                    && p.pod_selector
                        .as_ref()
                        .is_none_or(|sel| selects(sel, &v.labels))
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn peer(&'a self, policy_ns: &str, p: &NetworkPolicyPeer) -> Option<Peer<'a>> {
        if let Some(IPBlock { cidr, except }) = &p.ip_block {
            let cidr = parse_cidr(cidr)?;
            let except = except
                .iter()
                .flatten()
                .filter_map(|e| parse_cidr(e))
                .collect();
            return Some(Peer::Block { cidr, except });
        }
        if p.pod_selector.is_none() && p.namespace_selector.is_none() {
            return None;
        }
        let key = p as *const NetworkPolicyPeer as usize;
        let cached = self.selected.borrow().get(&key).cloned();
        let idx = match cached {
            Some(v) => v,
            None => {
                let v = Rc::new(self.select(policy_ns, p));
                self.selected.borrow_mut().insert(key, v.clone());
                v
            }
        };
        Some(Peer::Pods(
            key,
            idx.iter().map(|&i| &self.pods[i]).collect(),
        ))
    }
}

fn port(p: &NetworkPolicyPort) -> PortMatch {
    let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
    match &p.port {
        None => PortMatch::Proto(proto),
        Some(IntOrString::Int(n)) => PortMatch::Range(proto, *n, p.end_port.unwrap_or(*n)),
        Some(IntOrString::String(s)) => match s.parse::<i32>() {
            Ok(n) => PortMatch::Range(proto, n, n),
            Err(_) => PortMatch::Named(proto, s.clone()),
        },
    }
}

fn port_expr(proto: &str, ports: &BTreeSet<(i32, i32)>) -> String {
    let items = ports.iter().map(|(lo, hi)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    });
    format!("{proto} dport {}", set(items))
}

/// The nft lines (without verdict) of one rule of a policy selecting `target`.
fn rule_lines(
    cx: &Cx<'_>,
    dir: Dir,
    target: &PodView<'_>,
    policy_ns: &str,
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
) -> Vec<String> {
    let addr = dir.peer_addr();
    let peers: Vec<Peer<'_>> = match peers {
        Some(ps) if !ps.is_empty() => ps.iter().filter_map(|p| cx.peer(policy_ns, p)).collect(),
        _ => vec![Peer::All],
    };
    let ports: Vec<PortMatch> = match ports {
        Some(ps) if !ps.is_empty() => ps.iter().map(port).collect(),
        _ => vec![PortMatch::All],
    };
    // The peer part of a line: one per address family (empty: any address).
    let peer_exprs = |peer: &Peer<'_>| -> Vec<String> {
        match peer {
            Peer::All => vec![String::new()],
            Peer::Pods(key, ps) => {
                if let Some(e) = cx.exprs.borrow().get(key) {
                    return e.as_ref().clone();
                }
                let mut by_fam: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
                for v in ps {
                    by_fam.entry(fam(&v.ip)).or_default().insert(v.ip);
                }
                let mut out = Vec::new();
                for (f, ips) in by_fam {
                    if ips.len() == 1 {
                        out.push(format!("{f} {addr} {} ", set(ips)));
                        continue;
                    }
                    let mut sets = cx.sets.borrow_mut();
                    let name = format!("peers-{}", sets.matches("\tset ").count());
                    let ty = if f == "ip" { "ipv4_addr" } else { "ipv6_addr" };
                    let _ = writeln!(
                        sets,
                        "\tset {name} {{\n\t\ttype {ty}\n\t\telements = {}\n\t}}",
                        set(ips)
                    );
                    out.push(format!("{f} {addr} @{name} "));
                }
                cx.exprs.borrow_mut().insert(*key, Rc::new(out.clone()));
                out
            }
            Peer::Block { cidr, except } => {
                let f = fam(&cidr.0);
                let mut e = format!("{f} {addr} {}/{} ", cidr.0, cidr.1);
                let ex: Vec<String> = except
                    .iter()
                    .filter(|x| x.0.is_ipv4() == cidr.0.is_ipv4())
                    .map(|x| format!("{}/{}", x.0, x.1))
                    .collect();
                if !ex.is_empty() {
                    let _ = write!(e, "{f} {addr} != {} ", set(ex));
                }
                vec![e]
            }
        }
    };
    let mut out = Vec::new();
    for peer in &peers {
        for pm in &ports {
            match pm {
                PortMatch::All => out.extend(peer_exprs(peer)),
                PortMatch::Proto(proto) => out.extend(
                    peer_exprs(peer)
                        .into_iter()
                        .map(|e| format!("{e}meta l4proto {proto} ")),
                ),
                PortMatch::Range(proto, lo, hi) => {
                    let r = port_expr(proto, &BTreeSet::from([(*lo, *hi)]));
                    out.extend(peer_exprs(peer).into_iter().map(|e| format!("{e}{r} ")));
                }
                // Ingress: the name is looked up in the target pod.
                PortMatch::Named(proto, name) if dir == Dir::Ingress => {
                    let nums = target.named_ports(name, proto);
                    if nums.is_empty() {
                        continue;
                    }
                    let r = port_expr(proto, &nums.iter().map(|n| (*n, *n)).collect());
                    out.extend(peer_exprs(peer).into_iter().map(|e| format!("{e}{r} ")));
                }
                // Egress: in each destination pod the peer covers.
                PortMatch::Named(proto, name) => {
                    let dests: Vec<&PodView<'_>> = match peer {
                        Peer::All => cx.pods.iter().collect(),
                        Peer::Pods(_, ps) => ps.clone(),
                        Peer::Block { cidr, except } => cx
                            .pods
                            .iter()
                            .filter(|v| {
                                in_cidr(*cidr, v.ip) && !except.iter().any(|x| in_cidr(*x, v.ip))
                            })
                            .collect(),
                    };
                    let mut by_port: BTreeMap<i32, BTreeSet<IpAddr>> = BTreeMap::new();
                    for d in dests {
                        for n in d.named_ports(name, proto) {
                            by_port.entry(n).or_default().insert(d.ip);
                        }
                    }
                    for (n, ips) in by_port {
                        let mut by_fam: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
                        for ip in ips {
                            by_fam.entry(fam(&ip)).or_default().insert(ip);
                        }
                        for (f, ips) in by_fam {
                            out.push(format!("{f} {addr} {} {proto} dport {n} ", set(ips)));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The `inet daas-policy` table for the pods of `snap.node`.
pub fn table(snap: &Snapshot) -> Table {
    let cx = Cx {
        pods: {
            let mut v: Vec<PodView<'_>> = snap.pods.iter().filter_map(view).collect();
            v.sort_by(|a, b| (a.ns, a.name).cmp(&(b.ns, b.name)));
            v
        },
        ns_labels: snap
            .namespaces
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.as_deref()?,
                    n.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect(),
        selected: RefCell::new(HashMap::new()),
        exprs: RefCell::new(HashMap::new()),
        sets: RefCell::new(String::new()),
    };
    let mut policies: Vec<&NetworkPolicy> = snap.policies.iter().collect();
    policies.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });

    let mut forward_egress = String::new();
    let mut forward_ingress = String::new();
    let mut chains = String::new();
    let mut n = 0usize;
    for target in cx.pods.iter().filter(|v| {
        v.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(snap.node.as_str())
    }) {
        for dir in [Dir::Egress, Dir::Ingress] {
            let mut lines: Vec<String> = Vec::new();
            let mut isolated = false;
            for p in &policies {
                let (Some(spec), Some(pns)) = (&p.spec, p.metadata.namespace.as_deref()) else {
                    continue;
                };
                let (ing, egr) = policy_types(p);
                let applies = match dir {
                    Dir::Ingress => ing,
                    Dir::Egress => egr,
                };
                let selected = spec
                    .pod_selector
                    .as_ref()
                    .is_none_or(|sel| selects(sel, &target.labels));
                if pns != target.ns || !applies || !selected {
                    continue;
                }
                isolated = true;
                match dir {
                    Dir::Ingress => {
                        for r in spec.ingress.iter().flatten() {
                            lines.extend(rule_lines(
                                &cx,
                                dir,
                                target,
                                pns,
                                r.from.as_deref(),
                                r.ports.as_deref(),
                            ));
                        }
                    }
                    Dir::Egress => {
                        for r in spec.egress.iter().flatten() {
                            lines.extend(rule_lines(
                                &cx,
                                dir,
                                target,
                                pns,
                                r.to.as_deref(),
                                r.ports.as_deref(),
                            ));
                        }
                    }
                }
            }
            if !isolated {
                continue;
            }
            let (chain, hook_line, addr) = match dir {
                Dir::Egress => (format!("egr-{n}"), &mut forward_egress, "saddr"),
                Dir::Ingress => (format!("ing-{n}"), &mut forward_ingress, "daddr"),
            };
            let _ = writeln!(
                hook_line,
                "\t\t{} {addr} {} jump {chain} comment \"{}/{}\"",
                fam(&target.ip),
                target.ip,
                target.ns,
                target.name
            );
            let _ = writeln!(chains, "\tchain {chain} {{");
            let mut seen = BTreeSet::new();
            for l in lines {
                if seen.insert(l.clone()) {
                    let _ = writeln!(chains, "\t\t{l}{}", dir.verdict());
                }
            }
            let _ = writeln!(chains, "\t\tdrop\n\t}}");
        }
        n += 1;
    }
    let sets = cx.sets.take();
    let body = format!(
        "{sets}\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n{forward_egress}{forward_ingress}\t}}\n{chains}"
    );
    Table::new(FAMILY, TABLE, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 5353, "protocol": "UDP"}
            ]}]},
            "status": {"phase": "Running", "podIP": ip}
        }))
        .unwrap()
    }

    fn ns(name: &str, labels: serde_json::Value) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    fn np(ns: &str, name: &str, spec: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name}, "spec": spec}))
            .unwrap()
    }

    fn snap(policies: Vec<NetworkPolicy>) -> Snapshot {
        Snapshot {
            node: "n1".into(),
            pods: vec![
                pod("a", "web", "n1", "10.42.1.2", json!({"app": "web"})),
                pod("a", "db", "n1", "10.42.1.3", json!({"app": "db"})),
                pod("a", "remote", "n2", "10.42.2.2", json!({"app": "client"})),
                pod("b", "client", "n2", "10.42.2.3", json!({"app": "client"})),
                // Not matched: host network, finished, no IP yet.
                serde_json::from_value(json!({"metadata": {"namespace": "a", "name": "h", "labels": {"app": "client"}},
                    "spec": {"nodeName": "n1", "hostNetwork": true, "containers": []},
                    "status": {"phase": "Running", "podIP": "172.30.0.11"}})).unwrap(),
                serde_json::from_value(json!({"metadata": {"namespace": "a", "name": "done", "labels": {"app": "client"}},
                    "spec": {"nodeName": "n1", "containers": []},
                    "status": {"phase": "Succeeded", "podIP": "10.42.1.9"}})).unwrap(),
                serde_json::from_value(json!({"metadata": {"namespace": "a", "name": "new", "labels": {"app": "client"}},
                    "spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Pending"}})).unwrap(),
            ],
            namespaces: vec![ns("a", json!({"team": "x"})), ns("b", json!({"team": "y"}))],
            policies,
        }
    }

    fn body(policies: Vec<NetworkPolicy>) -> String {
        table(&snap(policies)).body
    }

    #[test]
    fn without_policies_nothing_is_isolated() {
        let t = table(&snap(vec![]));
        assert_eq!((t.family, t.name.as_str()), (Family::Inet, "daas-policy"));
        assert_eq!(
            t.body,
            "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t}\n"
        );
    }

    #[test]
    fn default_deny_ingress_isolates_every_local_pod_of_the_namespace() {
        let b = body(vec![np("a", "deny", json!({"podSelector": {}}))]);
        assert!(
            b.contains("ip daddr 10.42.1.3 jump ing-0 comment \"a/db\""),
            "{b}"
        );
        assert!(
            b.contains("ip daddr 10.42.1.2 jump ing-1 comment \"a/web\""),
            "{b}"
        );
        assert!(b.contains("\tchain ing-0 {\n\t\tdrop\n\t}"), "{b}");
        // Remote pods are their node's business; egress is not isolated.
        assert!(!b.contains("10.42.2.2"), "{b}");
        assert!(!b.contains("egr-"), "{b}");
    }

    #[test]
    fn pod_selector_and_ports_allow_the_union_of_policies() {
        let b = body(vec![
            np(
                "a",
                "db-from-clients",
                json!({"podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                             "ports": [{"port": 5432, "protocol": "TCP"}, {"port": 6000, "endPort": 6010, "protocol": "UDP"}]}]}),
            ),
            np(
                "a",
                "db-http",
                json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]},
                "ingress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}, {"port": "nope"}, {"protocol": "SCTP"}]}]}),
            ),
        ]);
        let ing = b.split("chain ing-0 {").nth(1).unwrap();
        assert!(
            b.contains("ip daddr 10.42.1.3 jump ing-0 comment \"a/db\""),
            "{b}"
        );
        assert!(!b.contains("10.42.1.2 jump"), "web is not selected: {b}");
        // Only same-namespace pods match a bare podSelector (a/remote, not b/client).
        assert!(
            ing.contains("\t\tip saddr 10.42.2.2 tcp dport 5432 accept\n"),
            "{b}"
        );
        assert!(
            ing.contains("\t\tip saddr 10.42.2.2 udp dport 6000-6010 accept\n"),
            "{b}"
        );
        // Named ports from the target's containers; an unknown name allows nothing.
        assert!(ing.contains("\t\ttcp dport 8080 accept\n"), "{b}");
        assert!(ing.contains("\t\tudp dport 5353 accept\n"), "{b}");
        assert!(ing.contains("\t\tmeta l4proto sctp accept\n"), "{b}");
        assert!(ing.ends_with("accept\n\t\tdrop\n\t}\n"), "{b}");
        assert_eq!(ing.matches("accept").count(), 5, "{ing}");
    }

    #[test]
    fn namespace_selectors_alone_and_combined() {
        let b = body(vec![np(
            "a",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"from": [
                {"namespaceSelector": {"matchLabels": {"team": "y"}}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "a"}},
                 "podSelector": {"matchLabels": {"app": "db"}}},
                {"namespaceSelector": {"matchLabels": {"team": "nobody"}}}
            ]}]}),
        )]);
        assert!(b.contains("\t\tip saddr 10.42.2.3 accept\n"), "{b}");
        assert!(b.contains("\t\tip saddr 10.42.1.3 accept\n"), "{b}");
        // A peer matching no pod allows nothing (no empty set, no "any").
        assert_eq!(b.matches(" accept\n").count(), 3, "{b}");
    }

    #[test]
    fn ip_blocks_with_except_and_egress_named_ports() {
        let b = body(vec![np(
            "a",
            "egress",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "10.42.0.0/16", "except": ["10.42.2.0/24"]}}]},
                {"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}], "ports": [{"port": 443}]},
                {"ports": [{"port": "dns", "protocol": "UDP"}]}
            ]}),
        )]);
        assert!(
            b.contains("ip saddr 10.42.1.2 jump egr-1 comment \"a/web\""),
            "{b}"
        );
        assert!(!b.contains("ing-"), "egress only: {b}");
        let egr = b.split("chain egr-1 {").nth(1).unwrap();
        assert!(
            egr.contains("\t\tip daddr 10.42.0.0/16 ip daddr != 10.42.2.0/24 return\n"),
            "{b}"
        );
        assert!(
            egr.contains("\t\tip6 daddr 2001:db8::/32 tcp dport 443 return\n"),
            "{b}"
        );
        // The named port in every destination pod having it.
        assert!(
            egr.contains("\t\tip daddr { 10.42.1.2, 10.42.1.3, 10.42.2.2, 10.42.2.3 } udp dport 5353 return\n"),
            "{b}"
        );
        assert!(egr.contains("return\n\t\tdrop\n\t}"), "{b}");
    }

    #[test]
    fn policy_types_decide_isolation() {
        // Egress-only policy with no rules: egress denied, ingress untouched.
        let b = body(vec![np(
            "a",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Egress"]}),
        )]);
        assert!(b.contains("ip saddr 10.42.1.3 jump egr-0"), "{b}");
        assert!(!b.contains("ing-"), "{b}");
        // Defaulted: egress rules make it Ingress+Egress.
        let b = body(vec![np(
            "a",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "db"}}, "egress": [{}]}),
        )]);
        assert!(b.contains("jump egr-0") && b.contains("jump ing-0"), "{b}");
        assert!(
            b.contains("\tchain egr-0 {\n\t\treturn\n\t\tdrop\n\t}"),
            "{b}"
        );
        // A policy of another namespace never selects.
        let b = body(vec![np("b", "p", json!({"podSelector": {}}))]);
        assert!(!b.contains("jump"), "{b}");
    }

    #[test]
    fn output_is_stable_whatever_the_input_order() {
        let pols = vec![
            np(
                "a",
                "x",
                json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}),
            ),
            np(
                "a",
                "y",
                json!({"podSelector": {}, "policyTypes": ["Egress"]}),
            ),
        ];
        let mut s = snap(pols.clone());
        let one = table(&s).body;
        // A peer of several pods is a named set, declared once and shared by every pod it
        // guards.
        assert!(
            one.starts_with("\tset peers-0 {\n\t\ttype ipv4_addr\n\t\telements = { 10.42.1.2, 10.42.1.3, 10.42.2.2 }\n\t}\n"),
            "{one}"
        );
        assert_eq!(one.matches("ip saddr @peers-0 accept").count(), 2, "{one}");
        assert_eq!(one.matches("\tset ").count(), 1, "{one}");
        s.pods.reverse();
        s.policies.reverse();
        s.namespaces.reverse();
        assert_eq!(one, table(&s).body);
    }
}
