//! The Endpoints controller (upstream pkg/controller/endpoint): for every Service with a selector,
//! an Endpoints object of the same name listing the selected pods' addresses — ready ones under
//! `addresses`, the others under `notReadyAddresses` (all under `addresses` when the Service
//! publishes not-ready addresses) — grouped into subsets by the ports each pod resolves the
//! Service's ports to (numeric `targetPort`s as they are, named ones looked up in the pod's
//! containers by name and protocol). Services without a selector are the user's: their
//! Endpoints are left alone. Endpoints of a Service this controller saw (or wrote) are deleted
//! when the Service goes.
//!
//! The pod helpers here (selection, port resolution, hostnames) are shared with the
//! EndpointSlice controller (staging/src/k8s.io/endpointslice).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Map, Value};

use crate::util::{self, Pass, CORE};
use crate::Controller;

/// The annotation with the time of the last change (pod or Service) the object reflects.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The label marking the objects of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// The annotation set when an Endpoints object was cut to [`MAX_ADDRESSES`].
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// At most this many addresses (ready and not) in one Endpoints object (upstream `maxCapacity`).
pub const MAX_ADDRESSES: usize = 1000;

/// The Service's selector, if it has a non-empty one (selectorless Services are the user's).
pub fn selector(svc: &Value) -> Option<&Map<String, Value>> {
    svc["spec"]["selector"]
        .as_object()
        .filter(|m| !m.is_empty())
}

/// Services whose endpoints the controllers compute: with a selector, and not ExternalName.
pub fn wants_endpoints(svc: &Value) -> bool {
    selector(svc).is_some() && svc["spec"]["type"] != "ExternalName"
}

pub fn is_headless(svc: &Value) -> bool {
    svc["spec"]["clusterIP"] == "None"
}

/// Does `pod` carry every label of `sel`?
pub fn selects(sel: &Map<String, Value>, pod: &Value) -> bool {
    sel.iter()
        .all(|(k, v)| pod["metadata"]["labels"][k].as_str() == v.as_str())
}

/// Upstream `ShouldPodBeInEndpoints`: not terminal, has an IP, and (unless terminating pods are
/// wanted) not being deleted.
pub fn pod_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    if util::pod_terminated(pod) {
        return false;
    }
    let has_ip = pod["status"]["podIP"]
        .as_str()
        .is_some_and(|s| !s.is_empty())
        || pod["status"]["podIPs"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
    has_ip && (include_terminating || !util::is_deleting(pod))
}

/// The pod's IP of the given family (`IPv4`/`IPv6`), from `status.podIPs` or `status.podIP`.
pub fn pod_ip(pod: &Value, family: &str) -> Option<String> {
    let from_list = pod["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["ip"].as_str());
    from_list
        .chain(pod["status"]["podIP"].as_str())
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .find(|ip| ip_family(ip) == family)
        .map(|ip| ip.to_string())
}

pub fn ip_family(ip: &IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// The Service's address families (`spec.ipFamilies`, IPv4 when unset).
pub fn service_families(svc: &Value) -> Vec<String> {
    let fams: Vec<String> = svc["spec"]["ipFamilies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .filter(|f| matches!(*f, "IPv4" | "IPv6"))
        .map(String::from)
        .collect();
    if fams.is_empty() {
        vec!["IPv4".into()]
    } else {
        fams
    }
}

/// Upstream `podutil.FindPort`: a numeric target port as it is; a named one is the container
/// port of that name and the Service port's protocol, if the pod has one.
pub fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let protocol = svc_port["protocol"].as_str().unwrap_or("TCP");
    match &svc_port["targetPort"] {
        Value::String(name) => {
            if let Ok(n) = name.parse::<i64>() {
                return Some(n);
            }
            ["containers", "initContainers"]
                .iter()
                .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| {
                    p["name"].as_str() == Some(name.as_str())
                        && p["protocol"].as_str().unwrap_or("TCP") == protocol
                })
                .and_then(|p| p["containerPort"].as_i64())
        }
        Value::Number(n) => n.as_i64().filter(|n| *n > 0),
        // Defaulted to `port` by the API server; fall back to it for old objects.
        _ => svc_port["port"].as_i64(),
    }
}

/// The endpoint ports `pod` serves the Service's ports on (ports it cannot resolve are left
/// out), each named as the Service port.
pub fn endpoint_ports(svc: &Value, pod: &Value, always_name: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for sp in svc["spec"]["ports"].as_array().into_iter().flatten() {
        let Some(port) = find_port(pod, sp) else {
            tracing::debug!(
                pod = util::name(pod),
                service = util::name(svc),
                "pod does not serve a port of the service"
            );
            continue;
        };
        let mut p = Map::new();
        let name = sp["name"].as_str().unwrap_or("");
        if always_name || !name.is_empty() {
            p.insert("name".into(), json!(name));
        }
        p.insert("port".into(), json!(port));
        p.insert(
            "protocol".into(),
            json!(sp["protocol"].as_str().unwrap_or("TCP")),
        );
        if let Some(ap) = sp["appProtocol"].as_str() {
            p.insert("appProtocol".into(), json!(ap));
        }
        out.push(Value::Object(p));
    }
    out.sort_by_key(util::canonical_json);
    out
}

/// Upstream `ShouldSetHostname`: the pod names this Service as its subdomain.
pub fn hostname<'a>(pod: &'a Value, svc: &Value) -> Option<&'a str> {
    let h = pod["spec"]["hostname"].as_str().filter(|h| !h.is_empty())?;
    (pod["spec"]["subdomain"].as_str() == Some(util::name(svc))
        && util::namespace(pod) == util::namespace(svc))
    .then_some(h)
}

pub fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": util::namespace(pod), "name": util::name(pod),
        "uid": util::uid(pod)})
}

/// The latest change among the Service and its pods (creation, readiness, deletion), stamped
/// as the trigger time of the objects written from them.
pub fn trigger_time<'a>(svc: &Value, pods: impl Iterator<Item = &'a Value>) -> Option<String> {
    let mut latest: Option<DateTime<Utc>> = util::parse_time(&svc["metadata"]["creationTimestamp"]);
    for p in pods {
        let times = [
            util::parse_time(&p["metadata"]["creationTimestamp"]),
            util::parse_time(&p["metadata"]["deletionTimestamp"]),
            util::condition(p, "Ready").and_then(|c| util::parse_time(&c["lastTransitionTime"])),
        ];
        for t in times.into_iter().flatten() {
            latest = Some(latest.map_or(t, |l| l.max(t)));
        }
    }
    latest.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The labels of the objects made for a Service: its own, plus the headless mark.
pub fn service_labels(svc: &Value) -> Map<String, Value> {
    let mut labels = svc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), json!(""));
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

/// The subsets of a Service's Endpoints from the pods of its namespace, and whether addresses
/// were cut to fit [`MAX_ADDRESSES`].
pub fn desired_subsets<P: std::borrow::Borrow<Value>>(
    svc: &Value,
    pods: &[P],
) -> (Vec<Value>, bool) {
    let Some(sel) = selector(svc) else {
        return (Vec::new(), false);
    };
    let publish = svc["spec"]["publishNotReadyAddresses"].as_bool() == Some(true);
    let family = service_families(svc).remove(0);
    let no_ports = svc["spec"]["ports"].as_array().is_none_or(|p| p.is_empty());
    // Port set (canonical) -> (ports, ready addresses, not-ready addresses), by sort key.
    type Subset = (Vec<Value>, BTreeMap<String, Value>, BTreeMap<String, Value>);
    let mut subsets: BTreeMap<String, Subset> = BTreeMap::new();
    for pod in pods.iter().map(|p| p.borrow()) {
        if util::namespace(pod) != util::namespace(svc)
            || !selects(sel, pod)
            || !pod_in_endpoints(pod, publish)
        {
            continue;
        }
        let Some(ip) = pod_ip(pod, &family) else {
            continue;
        };
        let ports = endpoint_ports(svc, pod, false);
        if ports.is_empty() && !(no_ports && is_headless(svc)) {
            continue;
        }
        let mut addr = Map::new();
        addr.insert("ip".into(), json!(ip));
        if let Some(h) = hostname(pod, svc) {
            addr.insert("hostname".into(), json!(h));
        }
        if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            addr.insert("nodeName".into(), json!(n));
        }
        addr.insert("targetRef".into(), target_ref(pod));
        let key = Value::Array(ports.clone()).to_string();
        let entry = subsets
            .entry(key)
            .or_insert_with(|| (ports, BTreeMap::new(), BTreeMap::new()));
        let sort_key = format!("{ip}/{}", util::uid(pod));
        if publish || util::pod_ready(pod) {
            entry.1.insert(sort_key, Value::Object(addr));
        } else {
            entry.2.insert(sort_key, Value::Object(addr));
        }
    }
    let mut left = MAX_ADDRESSES;
    let mut truncated = false;
    let mut out = Vec::new();
    for (_, (ports, ready, not_ready)) in subsets {
        let mut s = Map::new();
        let mut take = |m: BTreeMap<String, Value>| -> Vec<Value> {
            let n = m.len().min(left);
            truncated |= n < m.len();
            left -= n;
            m.into_values().take(n).collect()
        };
        let ready = take(ready);
        let not_ready = take(not_ready);
        if !ready.is_empty() {
            s.insert("addresses".into(), Value::Array(ready));
        }
        if !not_ready.is_empty() {
            s.insert("notReadyAddresses".into(), Value::Array(not_ready));
        }
        if s.is_empty() {
            continue;
        }
        if !ports.is_empty() {
            s.insert("ports".into(), Value::Array(ports));
        }
        out.push(Value::Object(s));
    }
    (out, truncated)
}

pub struct EndpointsController {
    client: LocalClient,
    informers: crate::informer::Informers,
    /// Services (namespace/name) seen with a selector: their Endpoints go when they go.
    known: HashSet<(String, String)>,
}

impl EndpointsController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

impl EndpointsController {
    pub fn new(client: LocalClient) -> Self {
        EndpointsController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            known: HashSet::new(),
        }
    }

    async fn sync(
        &self,
        svc: &Value,
        pods: &[&Value],
        current: Option<&Value>,
    ) -> Result<Option<Duration>, ApiError> {
        let ns = util::namespace(svc);
        let name = util::name(svc);
        let (subsets, truncated) = desired_subsets(svc, pods);
        let labels = service_labels(svc);
        let capacity = truncated.then_some("truncated");
        if let Some(cur) = current {
            let same = cur["subsets"].as_array().map_or(&[][..], |a| a.as_slice()) == subsets
                && cur["metadata"]["labels"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    == labels
                && cur["metadata"]["annotations"][OVER_CAPACITY].as_str() == capacity;
            if same {
                return Ok(None);
            }
        }
        let selected: Vec<&Value> = match selector(svc) {
            Some(sel) => pods
                .iter()
                .filter(|p| util::namespace(p) == ns && selects(sel, p))
                .copied()
                .collect(),
            None => Vec::new(),
        };
        let mut annotations = current
            .and_then(|c| c["metadata"]["annotations"].as_object().cloned())
            .unwrap_or_default();
        if let Some(t) = trigger_time(svc, selected.into_iter()) {
            annotations.insert(TRIGGER_TIME.into(), json!(t));
        }
        match capacity {
            Some(c) => annotations.insert(OVER_CAPACITY.into(), json!(c)),
            None => annotations.remove(OVER_CAPACITY),
        };
        let mut ep = match current {
            Some(c) => c.clone(),
            None => json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns}}),
        };
        ep["metadata"]["labels"] = Value::Object(labels);
        ep["metadata"]["annotations"] = Value::Object(annotations);
        ep["subsets"] = Value::Array(subsets);
        let collection = util::path(CORE, ns, "endpoints", None);
        let r = match current {
            Some(_) => {
                self.client
                    .update(&util::path(CORE, ns, "endpoints", Some(name)), &ep)
                    .await
            }
            None => self.client.create(&collection, &ep).await,
        };
        match r {
            Ok(_) => Ok(None),
            // Raced with another writer: the next pass (woken by its event) sees the new state.
            Err(e) if e.code == 409 => Ok(Some(Duration::from_millis(100))),
            // The namespace is going away.
            Err(e) if e.code == 403 && current.is_none() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Controller for EndpointsController {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(
            format!("{CORE}/pods"),
            crate::wakefilter::in_namespaces_with(&self.informers, &format!("{CORE}/services")),
        )]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "endpoints"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{CORE}/services"),
            format!("{CORE}/pods"),
            format!("{CORE}/endpoints"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let services = self.informers.list(&format!("{CORE}/services")).await?;
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let endpoints = self.informers.list(&format!("{CORE}/endpoints")).await?;
        let pods_by_ns = util::by_namespace(&pods);
        let eps: BTreeMap<(String, String), &Value> = endpoints
            .iter()
            .map(|e| ((util::namespace(e).into(), util::name(e).into()), &**e))
            .collect();
        let mut pass = Pass::default();
        let mut present = HashSet::new();
        for svc in &services {
            let key = (
                util::namespace(svc).to_string(),
                util::name(svc).to_string(),
            );
            present.insert(key.clone());
            if !wants_endpoints(svc) {
                // A Service that lost its selector keeps whatever Endpoints it has: the user's.
                self.known.remove(&key);
                continue;
            }
            self.known.insert(key.clone());
            let none = Vec::new();
            let pods = pods_by_ns.get(key.0.as_str()).unwrap_or(&none);
            let r = self.sync(svc, pods, eps.get(&key).copied()).await;
            pass.record("Service", svc, r);
        }
        // Endpoints left behind by a Service that is gone: those of a Service seen with a
        // selector, or stamped by this controller.
        for (key, ep) in &eps {
            if present.contains(key) {
                continue;
            }
            let ours =
                self.known.contains(key) || !ep["metadata"]["annotations"][TRIGGER_TIME].is_null();
            if ours {
                let r = self
                    .client
                    .delete_ignore_missing(&util::path(CORE, &key.0, "endpoints", Some(&key.1)))
                    .await
                    .map(|_| None);
                pass.record("Endpoints", ep, r);
            }
        }
        self.known.retain(|k| present.contains(k));
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn named_ports_resolve_per_pod_and_group_into_subsets() {
        let svc = json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}});
        let pods = vec![
            pod(
                "a",
                "10.0.0.1",
                true,
                json!([{"name": "http", "containerPort": 8080}]),
            ),
            pod(
                "b",
                "10.0.0.2",
                false,
                json!([{"name": "http", "containerPort": 9090}]),
            ),
            // The named port exists only for UDP: not served.
            pod(
                "c",
                "10.0.0.3",
                true,
                json!([{"name": "http", "containerPort": 1, "protocol": "UDP"}]),
            ),
        ];
        let (subsets, truncated) = desired_subsets(&svc, &pods);
        assert!(!truncated);
        assert_eq!(subsets.len(), 2);
        assert_eq!(
            subsets[0]["ports"],
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        );
        assert_eq!(subsets[0]["addresses"][0]["ip"], "10.0.0.1");
        assert_eq!(subsets[0]["addresses"][0]["nodeName"], "n1");
        assert_eq!(subsets[0]["addresses"][0]["targetRef"]["uid"], "uid-a");
        assert_eq!(subsets[1]["ports"][0]["port"], 9090);
        assert_eq!(subsets[1]["notReadyAddresses"][0]["ip"], "10.0.0.2");
        assert!(subsets[1]["addresses"].is_null());
    }

    #[test]
    fn terminating_and_terminal_pods_are_dropped() {
        let mut gone = pod("a", "10.0.0.1", true, json!([]));
        gone["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let mut done = pod("b", "10.0.0.2", false, json!([]));
        done["status"]["phase"] = json!("Succeeded");
        assert!(!pod_in_endpoints(&gone, false));
        assert!(pod_in_endpoints(&gone, true));
        assert!(!pod_in_endpoints(&done, true));
    }

    #[test]
    fn too_many_addresses_are_cut() {
        let svc = json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
        let pods: Vec<Value> = (0..1005)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.1.{}.{}", i / 250, i % 250 + 1),
                    true,
                    json!([]),
                )
            })
            .collect();
        let (subsets, truncated) = desired_subsets(&svc, &pods);
        assert!(truncated);
        assert_eq!(subsets[0]["addresses"].as_array().unwrap().len(), 1000);
    }
}
