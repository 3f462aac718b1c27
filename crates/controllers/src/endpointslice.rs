//! The EndpointSlice controller (upstream pkg/controller/endpointslice and
//! staging/src/k8s.io/endpointslice): for every Service with a selector, `discovery.k8s.io/v1`
//! EndpointSlices (labelled `kubernetes.io/service-name` and managed by
//! `endpointslice-controller.k8s.io`, owned by the Service) holding one endpoint per selected pod
//! with an IP: conditions ready/serving/terminating, nodeName, the node's zone, hostname and
//! targetRef (topology hints are not computed). One set of slices per address family and port
//! set, at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints each; endpoints stay in the slice they are
//! in while they exist, new ones fill the free room first. A Service without endpoints gets one
//! empty placeholder slice per family, as upstream.
//!
//! [`reconcile_slices`] places endpoints into slices for this controller and the mirroring one.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Map, Value};

use crate::endpoints::{self, TRIGGER_TIME};
use crate::util::{self, Pass, CORE};
use crate::Controller;

pub const DISCOVERY: &str = "/apis/discovery.k8s.io/v1";
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Upstream `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Endpoints of one address family sharing one port set.
#[derive(Debug, Clone)]
pub struct Group {
    pub address_type: String,
    /// Sorted endpoint ports (canonical order).
    pub ports: Vec<Value>,
    /// Endpoint identity (target UID or address) -> endpoint.
    pub endpoints: BTreeMap<String, Value>,
}

/// What every slice of one owner carries.
#[derive(Debug, Clone)]
pub struct SliceMeta {
    pub namespace: String,
    pub generate_name: String,
    pub labels: Map<String, Value>,
    /// Annotations besides the trigger time (compared for drift).
    pub annotations: Map<String, Value>,
    pub owner: Value,
    pub trigger_time: Option<String>,
}

fn group_key(address_type: &str, ports: &[Value]) -> String {
    let mut ports: Vec<String> = ports.iter().map(util::canonical_json).collect();
    ports.sort();
    format!("{address_type}|{}", ports.join(","))
}

fn slice_ports(s: &Value) -> Vec<Value> {
    s["ports"].as_array().cloned().unwrap_or_default()
}

/// An endpoint's identity: the object it stands for, else its first address.
pub fn endpoint_key(ep: &Value) -> String {
    match ep["targetRef"]["uid"].as_str().filter(|u| !u.is_empty()) {
        Some(uid) => format!("uid:{uid}"),
        None => format!("addr:{}", ep["addresses"][0].as_str().unwrap_or("")),
    }
}

fn without(m: &Map<String, Value>, key: &str) -> Map<String, Value> {
    let mut m = m.clone();
    m.remove(key);
    m
}
/// A slice reconcile's outcome for the pass: a write conflict retries soon, a namespace being
/// terminated is left alone.
pub fn slice_outcome(r: Result<(), ApiError>) -> Result<Option<Duration>, ApiError> {
    match r {
        Err(e) if e.code == 409 => Ok(Some(Duration::from_millis(100))),
        Err(e) if e.code == 403 && e.message.contains("being terminated") => Ok(None),
        other => other.map(|_| None),
    }
}

/// Delete slices nothing wants any more, recording each outcome in `pass`.
pub async fn delete_slices(
    client: &LocalClient,
    slices: impl IntoIterator<Item = Value>,
    pass: &mut Pass,
) {
    for s in slices {
        let r = client
            .delete_ignore_missing(&util::path(
                DISCOVERY,
                util::namespace(&s),
                "endpointslices",
                Some(util::name(&s)),
            ))
            .await
            .map(|_| None);
        pass.record("EndpointSlice", &s, r);
    }
}

/// Bring the slices of one owner (`existing`, all carrying its managed-by and service-name
/// labels) to `groups`. `families` get an empty placeholder slice when they have no endpoints.
pub async fn reconcile_slices(
    client: &LocalClient,
    meta: &SliceMeta,
    groups: Vec<Group>,
    families: &[String],
    existing: Vec<Value>,
) -> Result<(), ApiError> {
    let collection = util::path(DISCOVERY, &meta.namespace, "endpointslices", None);
    let mut pool: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in existing {
        let key = group_key(s["addressType"].as_str().unwrap_or(""), &slice_ports(&s));
        pool.entry(key).or_default().push(s);
    }
    for v in pool.values_mut() {
        v.sort_by(|a, b| util::name(a).cmp(util::name(b)));
    }
    let mut groups = groups;
    // A family without endpoints keeps (or gets) one empty placeholder.
    for fam in families {
        let empty = groups
            .iter()
            .all(|g| &g.address_type != fam || g.endpoints.is_empty());
        if empty {
            groups.retain(|g| &g.address_type != fam);
            groups.push(Group {
                address_type: fam.clone(),
                ports: Vec::new(),
                endpoints: BTreeMap::new(),
            });
        }
    }
    let mut creates: Vec<Value> = Vec::new();
    let mut updates: Vec<Value> = Vec::new();
    let mut deletes: Vec<Value> = Vec::new();
    for g in groups {
        let key = group_key(&g.address_type, &g.ports);
        let ex = pool.remove(&key).unwrap_or_default();
        let mut desired = g.endpoints;
        let placeholder = desired.is_empty();
        // Endpoints stay where they are while they exist.
        let mut slots: Vec<(Value, Vec<Value>)> = ex
            .into_iter()
            .map(|s| {
                let kept: Vec<Value> = s["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| desired.remove(&endpoint_key(e)))
                    .collect();
                (s, kept)
            })
            .collect();
        // New ones fill the free room, then new slices.
        let mut rest = desired.into_values();
        for (_, eps) in slots.iter_mut() {
            while eps.len() < MAX_ENDPOINTS_PER_SLICE {
                match rest.next() {
                    Some(e) => eps.push(e),
                    None => break,
                }
            }
        }
        let rest: Vec<Value> = rest.collect();
        let mut kept_placeholder = false;
        for (s, eps) in slots {
            // The first empty slice of a Service without endpoints stays as its placeholder.
            let placeholder_slot = placeholder && !kept_placeholder;
            if eps.is_empty() && !placeholder_slot {
                deletes.push(s);
                continue;
            }
            kept_placeholder = true;
            if let Some(u) = updated(meta, &s, &g.address_type, &g.ports, eps) {
                updates.push(u);
            }
        }
        for chunk in rest.chunks(MAX_ENDPOINTS_PER_SLICE) {
            creates.push(new_slice(meta, &g.address_type, &g.ports, chunk.to_vec()));
        }
        if placeholder && !kept_placeholder {
            creates.push(new_slice(meta, &g.address_type, &[], Vec::new()));
        }
    }
    deletes.extend(pool.into_values().flatten());
    for s in deletes {
        client
            .delete_ignore_missing(&util::path(
                DISCOVERY,
                &meta.namespace,
                "endpointslices",
                Some(util::name(&s)),
            ))
            .await?;
    }
    for s in updates {
        let path = util::path(
            DISCOVERY,
            &meta.namespace,
            "endpointslices",
            Some(util::name(&s)),
        );
        client.update(&path, &s).await?;
    }
    for s in creates {
        client.create(&collection, &s).await?;
    }
    Ok(())
}

fn metadata(meta: &SliceMeta, base: Option<&Value>, stamp: bool) -> Value {
    let mut m = base.cloned().unwrap_or_else(
        || json!({"generateName": meta.generate_name, "namespace": meta.namespace}),
    );
    m["labels"] = Value::Object(meta.labels.clone());
    let mut ann = meta.annotations.clone();
    let old_stamp = base.and_then(|b| b["annotations"][TRIGGER_TIME].as_str());
    let stamp = if stamp {
        meta.trigger_time.as_deref().or(old_stamp)
    } else {
        old_stamp
    };
    if let Some(t) = stamp {
        ann.insert(TRIGGER_TIME.into(), json!(t));
    }
    if ann.is_empty() {
        m.as_object_mut().map(|o| o.remove("annotations"));
    } else {
        m["annotations"] = Value::Object(ann);
    }
    m["ownerReferences"] = json!([meta.owner]);
    m
}

fn new_slice(meta: &SliceMeta, address_type: &str, ports: &[Value], eps: Vec<Value>) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata(meta, None, true),
        "addressType": address_type,
        "endpoints": eps,
        "ports": ports,
    })
}

/// The slice `s` holding `eps`, if that changes it (endpoints, ports or owner metadata).
fn updated(
    meta: &SliceMeta,
    s: &Value,
    address_type: &str,
    ports: &[Value],
    eps: Vec<Value>,
) -> Option<Value> {
    let cur_eps = s["endpoints"].as_array().map_or(&[][..], |a| a.as_slice());
    let eps_changed = cur_eps != eps.as_slice() || slice_ports(s) != ports;
    let cur_ann = s["metadata"]["annotations"]
        .as_object()
        .map(|a| without(a, TRIGGER_TIME))
        .unwrap_or_default();
    let meta_changed = s["metadata"]["labels"].as_object() != Some(&meta.labels)
        || cur_ann != meta.annotations
        || s["metadata"]["ownerReferences"] != json!([meta.owner]);
    if !eps_changed && !meta_changed {
        return None;
    }
    let mut n = s.clone();
    n["metadata"] = metadata(meta, Some(&s["metadata"]), eps_changed);
    n["addressType"] = json!(address_type);
    n["endpoints"] = Value::Array(eps);
    n["ports"] = Value::Array(ports.to_vec());
    Some(n)
}

/// The slices' endpoint for `pod` in `family` (upstream `podToEndpoint`).
pub fn pod_endpoint(
    svc: &Value,
    pod: &Value,
    family: &str,
    zones: &HashMap<String, String>,
) -> Option<Value> {
    let ip = endpoints::pod_ip(pod, family)?;
    let serving = util::pod_ready(pod);
    let terminating = util::is_deleting(pod);
    let publish = svc["spec"]["publishNotReadyAddresses"].as_bool() == Some(true);
    let ready = publish || (serving && !terminating);
    let mut ep = Map::new();
    ep.insert("addresses".into(), json!([ip]));
    ep.insert(
        "conditions".into(),
        json!({"ready": ready, "serving": serving, "terminating": terminating}),
    );
    if let Some(h) = endpoints::hostname(pod, svc) {
        ep.insert("hostname".into(), json!(h));
    }
    if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        ep.insert("nodeName".into(), json!(node));
        if let Some(z) = zones.get(node) {
            ep.insert("zone".into(), json!(z));
        }
    }
    ep.insert("targetRef".into(), endpoints::target_ref(pod));
    Some(Value::Object(ep))
}

/// The desired groups of a Service from the pods of its namespace.
pub fn service_groups(
    svc: &Value,
    pods: &[&Value],
    zones: &HashMap<String, String>,
) -> (Vec<Group>, Vec<String>) {
    let families = endpoints::service_families(svc);
    let Some(sel) = endpoints::selector(svc) else {
        return (Vec::new(), families);
    };
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for pod in pods {
        if util::namespace(pod) != util::namespace(svc)
            || !endpoints::selects(sel, pod)
            || !endpoints::pod_in_endpoints(pod, true)
        {
            continue;
        }
        let ports = endpoints::endpoint_ports(svc, pod, true);
        for fam in &families {
            let Some(ep) = pod_endpoint(svc, pod, fam, zones) else {
                continue;
            };
            let g = groups
                .entry(group_key(fam, &ports))
                .or_insert_with(|| Group {
                    address_type: fam.clone(),
                    ports: ports.clone(),
                    endpoints: BTreeMap::new(),
                });
            g.endpoints.insert(endpoint_key(&ep), ep);
        }
    }
    (groups.into_values().collect(), families)
}

/// The owner metadata of the slices of Service `svc`.
pub fn service_meta(svc: &Value, pods: &[&Value]) -> SliceMeta {
    let mut labels = endpoints::service_labels(svc);
    labels.insert(SERVICE_NAME_LABEL.into(), json!(util::name(svc)));
    labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
    let selected = endpoints::selector(svc).map(|sel| {
        pods.iter()
            .filter(move |p| endpoints::selects(sel, p))
            .collect::<Vec<_>>()
    });
    SliceMeta {
        namespace: util::namespace(svc).into(),
        generate_name: format!("{}-", util::name(svc)),
        labels,
        annotations: Map::new(),
        owner: util::owner_ref(svc, "v1", "Service"),
        trigger_time: endpoints::trigger_time(
            svc,
            selected.unwrap_or_default().into_iter().copied(),
        ),
    }
}

/// Managed slices of this cluster, by (namespace, service name).
pub async fn managed_slices(
    client: &LocalClient,
    manager: &str,
) -> Result<BTreeMap<(String, String), Vec<Value>>, ApiError> {
    let all = client
        .list(&format!(
            "{DISCOVERY}/endpointslices?labelSelector={MANAGED_BY_LABEL}%3D{manager}"
        ))
        .await?;
    let mut out: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for s in all {
        let svc = s["metadata"]["labels"][SERVICE_NAME_LABEL]
            .as_str()
            .unwrap_or("")
            .to_string();
        out.entry((util::namespace(&s).into(), svc))
            .or_default()
            .push(s);
    }
    Ok(out)
}

pub struct EndpointSliceController {
    client: LocalClient,
    informers: crate::informer::Informers,
}

impl EndpointSliceController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

impl EndpointSliceController {
    pub fn new(client: LocalClient) -> Self {
        EndpointSliceController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
        }
    }
}

#[async_trait]
impl Controller for EndpointSliceController {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![
            (
                format!("{CORE}/pods"),
                crate::wakefilter::in_namespaces_with(&self.informers, &format!("{CORE}/services")),
            ),
            (format!("{CORE}/nodes"), crate::wakefilter::node_changed()),
        ]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "endpointslice"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{CORE}/services"),
            format!("{CORE}/pods"),
            format!("{CORE}/nodes"),
            format!("{DISCOVERY}/endpointslices"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let services = self.informers.list(&format!("{CORE}/services")).await?;
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let zones: HashMap<String, String> = self
            .informers
            .list(&format!("{CORE}/nodes"))
            .await?
            .iter()
            .filter_map(|n| {
                let z = n["metadata"]["labels"][ZONE_LABEL].as_str()?;
                Some((util::name(n).to_string(), z.to_string()))
            })
            .collect();
        let mut slices = managed_slices(&self.client, CONTROLLER_NAME).await?;
        let pods_by_ns = util::by_namespace(&pods);
        let mut pass = Pass::default();
        for svc in services
            .iter()
            .filter(|s| endpoints::wants_endpoints(s) && !util::is_deleting(s))
        {
            let key = (
                util::namespace(svc).to_string(),
                util::name(svc).to_string(),
            );
            let none = Vec::new();
            let pods = pods_by_ns.get(key.0.as_str()).unwrap_or(&none);
            let existing = slices.remove(&key).unwrap_or_default();
            // Slices of an earlier Service of this name go with it.
            let (mine, stale): (Vec<Value>, Vec<Value>) = existing
                .into_iter()
                .partition(|s| util::controlled_by(s, util::uid(svc)));
            slices.insert(key.clone(), stale);
            let (groups, families) = service_groups(svc, pods, &zones);
            let meta = service_meta(svc, pods);
            let r = reconcile_slices(&self.client, &meta, groups, &families, mine).await;
            let r = slice_outcome(r);
            pass.record("Service", svc, r);
        }
        // Managed slices without a Service that wants them.
        delete_slices(&self.client, slices.into_values().flatten(), &mut pass).await;
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "hostname": "h", "subdomain": "web",
                "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn endpoint_conditions_follow_readiness_and_termination() {
        let svc = json!({"metadata": {"name": "web", "namespace": "ns"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}});
        let zones = HashMap::from([("n1".to_string(), "z1".to_string())]);
        let mut gone = pod("b", "10.0.0.2", true);
        gone["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let (groups, fams) = service_groups(
            &svc,
            &[
                &pod("a", "10.0.0.1", true),
                &gone,
                &pod("c", "10.0.0.3", false),
            ],
            &zones,
        );
        assert_eq!(fams, vec!["IPv4"]);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            groups[0].ports,
            vec![json!({"name": "http", "port": 8080, "protocol": "TCP"})]
        );
        let e = &groups[0].endpoints;
        let a = &e["uid:uid-a"];
        assert_eq!(
            a["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
        assert_eq!(a["zone"], "z1");
        assert_eq!(a["hostname"], "h");
        assert_eq!(
            e["uid:uid-b"]["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        assert_eq!(
            e["uid:uid-c"]["conditions"],
            json!({"ready": false, "serving": false, "terminating": false})
        );
    }
}
