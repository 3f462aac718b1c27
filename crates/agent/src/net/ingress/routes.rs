//! Ingress routing, as upstream specifies it (networking.k8s.io/v1 Ingress): pure functions over
//! a [`Snapshot`] of the cluster's Ingresses, Services and EndpointSlices.
//!
//! - Hosts: a rule's host matches the request's host exactly, or as a wildcard `*.example.com`
//!   covering exactly one more leading label (`a.example.com`, not `b.a.example.com` nor
//!   `example.com`); a rule without host matches every host. Exact hosts take precedence over
//!   wildcards, which take precedence over host-less rules.
//! - Paths: `Exact` matches the path as is; `Prefix` element-wise on `/`-separated elements
//!   (`/foo` matches `/foo`, `/foo/` and `/foo/bar`, not `/foobar`; trailing slashes are
//!   ignored); `ImplementationSpecific` is treated as `Prefix`. Of all matches the longest path
//!   wins, `Exact` over `Prefix` on a tie.
//! - Without a match: the `defaultBackend` of an Ingress (the oldest one that has it), else 404.
//! - A Service backend (port by number or name) resolves to the ready endpoints of the Service's
//!   EndpointSlices (pod IP and target port); none ready is a 503.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

/// The IngressClass these nodes serve.
pub const CLASS: &str = "daas";
/// The deprecated annotation naming an Ingress's class.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What the proxy knows of the cluster at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub ingresses: Vec<Arc<Ingress>>,
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
}

/// The Service port a backend names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

/// A backend chosen for a request: a Service port in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port: PortRef,
}

/// The outcome of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Proxy to this backend.
    To(Backend),
    /// Matched a backend the proxy cannot serve (a resource backend): 503.
    Unservable,
    /// No rule and no default backend: 404.
    NotFound,
}

/// Is this Ingress served by the nodes' proxy (class `daas`, by field or annotation)?
pub fn is_ours(ing: &Ingress) -> bool {
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLASS_ANNOTATION))
                .map(String::as_str)
        });
    class == Some(CLASS)
}

/// Does a rule's `host` match the request's (lowercased, port-less) host?
pub fn host_matches(rule: &str, host: &str) -> bool {
    match rule.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => rule == host,
    }
}

fn elements(p: &str) -> Vec<&str> {
    p.split('/').filter(|e| !e.is_empty()).collect()
}

/// Does a rule path of `path_type` match the request path?
pub fn path_matches(path_type: &str, rule: &str, req: &str) -> bool {
    let rule = if rule.is_empty() { "/" } else { rule };
    match path_type {
        "Exact" => rule == req,
        // Prefix, and ImplementationSpecific treated as Prefix.
        _ => {
            let (r, q) = (elements(rule), elements(req));
            r.len() <= q.len() && r.iter().zip(&q).all(|(a, b)| a == b)
        }
    }
}

fn backend_of(ns: &str, b: &IngressBackend) -> Route {
    let Some(svc) = &b.service else {
        return Route::Unservable;
    };
    let port = match &svc.port {
        Some(p) => match (&p.name, p.number) {
            (Some(n), _) if !n.is_empty() => PortRef::Name(n.clone()),
            (_, Some(n)) => PortRef::Number(n),
            _ => return Route::Unservable,
        },
        None => return Route::Unservable,
    };
    Route::To(Backend {
        namespace: ns.to_string(),
        service: svc.name.clone(),
        port,
    })
}

/// The oldest first, then by namespace and name: a stable order among Ingresses.
fn ingress_order(a: &Ingress, b: &Ingress) -> Ordering {
    let key = |i: &Ingress| {
        (
            i.metadata.creation_timestamp.as_ref().map(|t| t.0),
            i.metadata.namespace.clone().unwrap_or_default(),
            i.metadata.name.clone().unwrap_or_default(),
        )
    };
    key(a).cmp(&key(b))
}

impl Snapshot {
    /// Route a request for `host` (lowercased, without port) and `path` (no query).
    pub fn route(&self, host: &str, path: &str) -> Route {
        let mut ours: Vec<&Ingress> = self
            .ingresses
            .iter()
            .map(|i| i.as_ref())
            .filter(|i| is_ours(i))
            .collect();
        ours.sort_by(|a, b| ingress_order(a, b));
        // Host specificity: 0 exact, 1 wildcard, 2 any host.
        for level in 0..3u8 {
            // (path length, exact?, backend) of the best match so far at this level.
            let mut best: Option<(usize, bool, Route)> = None;
            for ing in &ours {
                let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
                let Some(spec) = &ing.spec else { continue };
                for rule in spec.rules.iter().flatten() {
                    let rh = rule.host.as_deref().unwrap_or("");
                    let this_level = match rh {
                        "" => 2,
                        h if h.starts_with("*.") => 1,
                        _ => 0,
                    };
                    if this_level != level || (!rh.is_empty() && !host_matches(rh, host)) {
                        continue;
                    }
                    for p in rule.http.iter().flat_map(|h| &h.paths) {
                        let rp = p.path.as_deref().unwrap_or("/");
                        if !path_matches(&p.path_type, rp, path) {
                            continue;
                        }
                        let cand = (rp.len(), p.path_type == "Exact");
                        let better = match &best {
                            None => true,
                            Some((len, exact, _)) => cand > (*len, *exact),
                        };
                        if better {
                            best = Some((cand.0, cand.1, backend_of(ns, &p.backend)));
                        }
                    }
                }
            }
            if let Some((_, _, r)) = best {
                return r;
            }
        }
        for ing in ours {
            let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
            if let Some(b) = ing.spec.as_ref().and_then(|s| s.default_backend.as_ref()) {
                return backend_of(ns, b);
            }
        }
        Route::NotFound
    }

    /// The ready endpoints (pod IP, target port) of a backend, in a stable order.
    pub fn endpoints(&self, b: &Backend) -> Vec<SocketAddr> {
        let Some(svc) = self.services.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(&b.namespace)
                && s.metadata.name.as_deref() == Some(&b.service)
        }) else {
            return Vec::new();
        };
        let Some(port) = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .find(|p| match &b.port {
                PortRef::Number(n) => p.port == *n,
                PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
            })
        else {
            return Vec::new();
        };
        let port_name = port.name.clone().unwrap_or_default();
        let mut out = Vec::new();
        for slice in &self.slices {
            let labels = slice.metadata.labels.as_ref();
            if slice.metadata.namespace.as_deref() != Some(&b.namespace)
                || labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) != Some(&b.service)
            {
                continue;
            }
            let Some(target) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.clone().unwrap_or_default() == port_name)
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for ep in &slice.endpoints {
                // A missing `ready` condition means ready (upstream's reading).
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for a in &ep.addresses {
                    if let Ok(ip) = a.parse::<IpAddr>() {
                        out.push(SocketAddr::new(ip, target));
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The (namespace, Secret name, hosts) of every TLS entry of the Ingresses served here.
    pub fn tls_entries(&self) -> Vec<(String, String, Vec<String>)> {
        let mut ours: Vec<&Ingress> = self
            .ingresses
            .iter()
            .map(|i| i.as_ref())
            .filter(|i| is_ours(i))
            .collect();
        ours.sort_by(|a, b| ingress_order(a, b));
        let mut out = Vec::new();
        for ing in ours {
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            for t in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
                if let Some(secret) = t.secret_name.as_ref().filter(|s| !s.is_empty()) {
                    out.push((
                        ns.clone(),
                        secret.clone(),
                        t.hosts.clone().unwrap_or_default(),
                    ));
                }
            }
        }
        out
    }
}

/// Round-robin choice among a backend's endpoints.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: Mutex<HashMap<Backend, usize>>,
}

impl RoundRobin {
    /// The next of `eps` for `b` (None when there is none).
    pub fn pick(&self, b: &Backend, eps: &[SocketAddr]) -> Option<SocketAddr> {
        if eps.is_empty() {
            return None;
        }
        let mut m = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(b.clone()).or_insert(0);
        let ep = eps[*n % eps.len()];
        *n = n.wrapping_add(1);
        Some(ep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ing(v: serde_json::Value) -> Arc<Ingress> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn to(svc: &str, port: serde_json::Value) -> serde_json::Value {
        json!({"service": {"name": svc, "port": port}})
    }

    fn backend(svc: &str, port: PortRef) -> Route {
        Route::To(Backend {
            namespace: "default".into(),
            service: svc.into(),
            port,
        })
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            ingresses: vec![
                ing(json!({"metadata": {"name": "a", "namespace": "default",
                    "creationTimestamp": "2026-01-01T00:00:00Z"},
                  "spec": {"ingressClassName": "daas",
                    "defaultBackend": to("fallback", json!({"number": 80})),
                    "rules": [
                      {"host": "foo.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": to("root", json!({"number": 80}))},
                        {"path": "/api", "pathType": "Prefix", "backend": to("api", json!({"name": "http"}))},
                        {"path": "/api/v2", "pathType": "ImplementationSpecific", "backend": to("v2", json!({"number": 80}))},
                        {"path": "/exact", "pathType": "Exact", "backend": to("exact", json!({"number": 80}))},
                        {"path": "/exact", "pathType": "Prefix", "backend": to("prefix", json!({"number": 80}))}]}},
                      {"host": "*.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": to("wild", json!({"number": 80}))}]}},
                      {"http": {"paths": [
                        {"path": "/any", "pathType": "Prefix", "backend": to("any", json!({"number": 80}))}]}}]}})),
                // Another class: never routed, even for its own host.
                ing(json!({"metadata": {"name": "b", "namespace": "default"},
                  "spec": {"ingressClassName": "nginx",
                    "rules": [{"host": "other.test", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": to("nginx", json!({"number": 80}))}]}}]}})),
            ],
            services: vec![Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "api", "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                                       {"name": "admin", "port": 81}]}}))
                .unwrap(),
            )],
            slices: vec![Arc::new(
                serde_json::from_value(
                    json!({"metadata": {"name": "api-x", "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "api"}},
                    "addressType": "IPv4",
                    "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9000}],
                    "endpoints": [
                        {"addresses": ["10.42.1.5"], "conditions": {"ready": true}},
                        {"addresses": ["10.42.1.4"]},
                        {"addresses": ["10.42.1.6"], "conditions": {"ready": false}}]}),
                )
                .unwrap(),
            )],
        }
    }

    #[test]
    fn hosts_exact_and_one_label_wildcards() {
        assert!(host_matches("foo.example.com", "foo.example.com"));
        assert!(host_matches("*.example.com", "bar.example.com"));
        assert!(!host_matches("*.example.com", "baz.bar.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", ".example.com"));
    }

    #[test]
    fn prefix_is_element_wise() {
        for (rule, req, want) in [
            ("/", "/anything", true),
            ("/foo", "/foo", true),
            ("/foo", "/foo/", true),
            ("/foo", "/foo/bar", true),
            ("/foo/", "/foo", true),
            ("/foo", "/foobar", false),
            ("/aaa/bb", "/aaa/bbb", false),
            ("/aaa/bbb", "/aaa/bbb/ccc", true),
        ] {
            assert_eq!(path_matches("Prefix", rule, req), want, "{rule} {req}");
        }
        assert!(path_matches("Exact", "/foo", "/foo"));
        assert!(!path_matches("Exact", "/foo", "/foo/"));
    }

    #[test]
    fn longest_match_exact_host_wildcard_hostless_then_default() {
        let s = snapshot();
        let r = |h: &str, p: &str| s.route(h, p);
        assert_eq!(
            r("foo.example.com", "/"),
            backend("root", PortRef::Number(80))
        );
        assert_eq!(
            r("foo.example.com", "/api/v1"),
            backend("api", PortRef::Name("http".into()))
        );
        assert_eq!(
            r("foo.example.com", "/api/v2/x"),
            backend("v2", PortRef::Number(80))
        );
        assert_eq!(
            r("foo.example.com", "/apix"),
            backend("root", PortRef::Number(80))
        );
        // Exact wins a tie with Prefix of the same path; Prefix still serves below it.
        assert_eq!(
            r("foo.example.com", "/exact"),
            backend("exact", PortRef::Number(80))
        );
        assert_eq!(
            r("foo.example.com", "/exact/x"),
            backend("prefix", PortRef::Number(80))
        );
        assert_eq!(
            r("bar.example.com", "/x"),
            backend("wild", PortRef::Number(80))
        );
        assert_eq!(
            r("unknown.test", "/any/x"),
            backend("any", PortRef::Number(80))
        );
        assert_eq!(
            r("unknown.test", "/"),
            backend("fallback", PortRef::Number(80))
        );
        // Another class's host falls through to ours (the default backend).
        assert_eq!(
            r("other.test", "/"),
            backend("fallback", PortRef::Number(80))
        );
    }

    #[test]
    fn nothing_matches_is_not_found() {
        let mut s = snapshot();
        s.ingresses.truncate(1);
        let mut i = (*s.ingresses[0]).clone();
        i.spec.as_mut().unwrap().default_backend = None;
        s.ingresses[0] = Arc::new(i);
        assert_eq!(s.route("unknown.test", "/"), Route::NotFound);
    }

    #[test]
    fn endpoints_are_ready_addresses_at_the_target_port() {
        let s = snapshot();
        let b = |port| Backend {
            namespace: "default".into(),
            service: "api".into(),
            port,
        };
        let want: Vec<SocketAddr> = vec![
            "10.42.1.4:8080".parse().unwrap(),
            "10.42.1.5:8080".parse().unwrap(),
        ];
        assert_eq!(s.endpoints(&b(PortRef::Name("http".into()))), want);
        assert_eq!(s.endpoints(&b(PortRef::Number(80))), want);
        assert_eq!(
            s.endpoints(&b(PortRef::Number(81))),
            vec![
                "10.42.1.4:9000".parse::<SocketAddr>().unwrap(),
                "10.42.1.5:9000".parse().unwrap()
            ]
        );
        assert!(s.endpoints(&b(PortRef::Number(82))).is_empty());
        let missing = Backend {
            namespace: "default".into(),
            service: "nope".into(),
            port: PortRef::Number(80),
        };
        assert!(s.endpoints(&missing).is_empty());
        let rr = RoundRobin::default();
        let bb = b(PortRef::Number(80));
        let picks: Vec<SocketAddr> = (0..4).filter_map(|_| rr.pick(&bb, &want)).collect();
        assert_eq!(picks, vec![want[0], want[1], want[0], want[1]]);
        assert_eq!(rr.pick(&bb, &[]), None);
    }
}
