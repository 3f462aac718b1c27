//! Pods' `/etc/resolv.conf` (the kubelet's `pkg/kubelet/network/dns`): the nameservers, search
//! domains and options of a pod from its `dnsPolicy` and `dnsConfig`, handed to the runtime as
//! the CRI sandbox's DNS config.
//!
//! - `ClusterFirst` (the default): the cluster DNS Service, searches `<ns>.svc.<domain>
//!   svc.<domain> <domain>` and the node's searches, `options ndots:5`; for a `hostNetwork` pod
//!   it means `Default`;
//! - `ClusterFirstWithHostNet`: the same, also for `hostNetwork` pods;
//! - `Default`: the node's resolv.conf (`resolv_conf`);
//! - `None`: `dnsConfig` alone.
//!
//! `dnsConfig` is then merged in: nameservers and searches appended (duplicates dropped),
//! options by name (the pod's value wins); finally upstream's limits: at most 3 nameservers, 32
//! search paths and 2048 characters of search list.

use std::net::IpAddr;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use crate::config::DnsSettings;

/// Upstream `MaxDNSNameservers`.
pub const MAX_NAMESERVERS: usize = 3;
/// Upstream `MaxDNSSearchPaths`.
pub const MAX_SEARCH_PATHS: usize = 32;
/// Upstream `MaxDNSSearchListChars`.
pub const MAX_SEARCH_CHARS: usize = 2048;

/// What a resolv.conf says (the last `search`/`domain` line wins, as in glibc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl HostResolvConf {
    pub fn parse(text: &str) -> HostResolvConf {
        let mut r = HostResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut f = line.split_whitespace();
            match f.next() {
                Some("nameserver") => {
                    // A scoped IPv6 address (`fe80::1%eth0`) keeps only its address.
                    if let Some(ip) = f
                        .next()
                        .and_then(|s| s.split('%').next())
                        .and_then(|s| s.parse().ok())
                    {
                        r.nameservers.push(ip);
                    }
                }
                Some("search") | Some("domain") => {
                    r.searches = f.map(|s| s.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => r.options.extend(f.map(str::to_string)),
                _ => {}
            }
        }
        r
    }

    /// The file's content; an unreadable file is an empty configuration (as the kubelet's, with
    /// a warning).
    pub fn read(path: &Path) -> HostResolvConf {
        match std::fs::read_to_string(path) {
            Ok(t) => HostResolvConf::parse(&t),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the node's resolv.conf");
                HostResolvConf::default()
            }
        }
    }
}

/// A pod's resolver configuration (the CRI `DNSConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodDns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// Options merged by name (`ndots:5` and `ndots:2` are the same option), later ones winning,
/// in the order of first appearance.
fn merge_options(base: &[String], extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in base.iter().chain(extra) {
        let name = o.split(':').next().unwrap_or_default();
        match out
            .iter_mut()
            .find(|e| e.split(':').next().unwrap_or_default() == name)
        {
            Some(e) => *e = o.clone(),
            None => out.push(o.clone()),
        }
    }
    out
}

/// Upstream's `formDNSSearchFitsLimits`: at most 32 paths and 2048 characters (with spaces).
fn fit_searches(searches: &mut Vec<String>) {
    searches.truncate(MAX_SEARCH_PATHS);
    while !searches.is_empty() && searches.join(" ").len() > MAX_SEARCH_CHARS {
        searches.pop();
    }
}

/// The effective dnsPolicy of a pod (upstream `getPodDNSType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsType {
    Cluster,
    Host,
    None,
}

pub fn dns_type(pod: &Pod) -> DnsType {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    match spec.and_then(|s| s.dns_policy.as_deref()) {
        Some("None") => DnsType::None,
        Some("ClusterFirstWithHostNet") => DnsType::Cluster,
        Some("Default") => DnsType::Host,
        // ClusterFirst (and unset): a hostNetwork pod uses the node's.
        _ if host_network => DnsType::Host,
        _ => DnsType::Cluster,
    }
}

/// The pod's resolver configuration on a node with these settings and resolv.conf.
pub fn pod_dns(pod: &Pod, settings: &DnsSettings, host: &HostResolvConf) -> PodDns {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let domain = &settings.cluster_domain;
    let mut dns = match dns_type(pod) {
        DnsType::None => PodDns::default(),
        DnsType::Host => PodDns {
            servers: host.nameservers.iter().map(IpAddr::to_string).collect(),
            searches: host.searches.clone(),
            options: host.options.clone(),
        },
        DnsType::Cluster => {
            let mut searches = vec![
                format!("{ns}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ];
            for s in &host.searches {
                push_unique(&mut searches, s.clone());
            }
            PodDns {
                servers: vec![settings.cluster_dns.to_string()],
                searches,
                options: vec!["ndots:5".into()],
            }
        }
    };
    if let Some(c) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        for s in c.nameservers.iter().flatten() {
            push_unique(&mut dns.servers, s.clone());
        }
        for s in c.searches.iter().flatten() {
            push_unique(&mut dns.searches, s.trim_end_matches('.').to_string());
        }
        let extra: Vec<String> = c
            .options
            .iter()
            .flatten()
            .filter_map(|o| {
                let name = o.name.as_deref().filter(|n| !n.is_empty())?;
                Some(match &o.value {
                    Some(v) => format!("{name}:{v}"),
                    None => name.to_string(),
                })
            })
            .collect();
        dns.options = merge_options(&dns.options, &extra);
    }
    dns.servers.truncate(MAX_NAMESERVERS);
    fit_searches(&mut dns.searches);
    dns
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOST: &str = "# generated\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch corp.example. lab.example\noptions edns0 ndots:1\n";

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "i"}]);
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "team"}, "spec": spec}),
        )
        .unwrap()
    }

    fn dns(spec: serde_json::Value) -> PodDns {
        pod_dns(
            &pod(spec),
            &DnsSettings::default(),
            &HostResolvConf::parse(HOST),
        )
    }

    #[test]
    fn parses_a_resolv_conf() {
        let h = HostResolvConf::parse(HOST);
        assert_eq!(
            h.nameservers,
            [
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert_eq!(h.searches, ["corp.example", "lab.example"]);
        assert_eq!(h.options, ["edns0", "ndots:1"]);
        assert_eq!(
            HostResolvConf::read(Path::new("/nonexistent/resolv.conf")),
            HostResolvConf::default()
        );
    }

    #[test]
    fn cluster_first_uses_the_cluster_dns() {
        let d = dns(json!({}));
        assert_eq!(d.servers, ["10.43.0.10"]);
        assert_eq!(
            d.searches,
            [
                "team.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example"
            ]
        );
        assert_eq!(d.options, ["ndots:5"]);
        assert_eq!(dns(json!({"dnsPolicy": "ClusterFirst"})), d);
        assert_eq!(
            dns(json!({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": true})),
            d
        );
    }

    #[test]
    fn default_and_host_network_use_the_node() {
        let host = PodDns {
            servers: vec!["192.0.2.53".into(), "fe80::1".into()],
            searches: vec!["corp.example".into(), "lab.example".into()],
            options: vec!["edns0".into(), "ndots:1".into()],
        };
        assert_eq!(dns(json!({"dnsPolicy": "Default"})), host);
        assert_eq!(dns(json!({"hostNetwork": true})), host);
        assert_eq!(
            dns(json!({"dnsPolicy": "ClusterFirst", "hostNetwork": true})),
            host
        );
    }

    #[test]
    fn none_takes_dns_config_alone_and_dns_config_merges() {
        let d = dns(json!({"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["192.0.2.1"], "searches": ["a.example."],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        assert_eq!(
            d,
            PodDns {
                servers: vec!["192.0.2.1".into()],
                searches: vec!["a.example".into()],
                options: vec!["ndots:2".into(), "edns0".into()],
            }
        );
        let d = dns(json!({"dnsConfig": {
            "nameservers": ["10.43.0.10", "192.0.2.1", "192.0.2.2", "192.0.2.3"],
            "searches": ["cluster.local", "x.example"],
            "options": [{"name": "ndots", "value": "1"}, {"name": "timeout", "value": "3"}]}}));
        // Duplicates dropped, at most 3 nameservers, options overridden by name.
        assert_eq!(d.servers, ["10.43.0.10", "192.0.2.1", "192.0.2.2"]);
        assert_eq!(d.searches.last().map(String::as_str), Some("x.example"));
        assert_eq!(
            d.searches.iter().filter(|s| *s == "cluster.local").count(),
            1
        );
        assert_eq!(d.options, ["ndots:1", "timeout:3"]);
    }

    #[test]
    fn search_limits() {
        let many: Vec<String> = (0..40).map(|i| format!("s{i}.example")).collect();
        let d = dns(
            json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": many}}),
        );
        assert_eq!(d.searches.len(), MAX_SEARCH_PATHS);
        let long: Vec<String> = (0..20).map(|i| format!("{i}{}", "x".repeat(200))).collect();
        let d = dns(
            json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": long}}),
        );
        assert!(d.searches.join(" ").len() <= MAX_SEARCH_CHARS);
        assert_eq!(d.searches.len(), 10);
    }
}
