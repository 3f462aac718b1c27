//! The EndpointSlice mirroring controller (upstream pkg/controller/endpointslicemirroring): the
//! Endpoints a user writes for a Service without a selector are mirrored into EndpointSlices
//! (managed by `endpointslicemirroring-controller.k8s.io`, owned by the Endpoints), so consumers
//! of slices (the node proxy) see them too. Endpoints labelled
//! `endpointslice.kubernetes.io/skip-mirror=true`, leader-election Endpoints, and those of a
//! Service with a selector (whose slices the EndpointSlice controller makes) are not mirrored.
//! Invalid addresses are skipped; at most [`MAX_ADDRESSES_PER_SUBSET`] per subset.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Map, Value};

use crate::endpoints::{self, TRIGGER_TIME};
use crate::endpointslice::{
    delete_slices, endpoint_key, managed_slices, reconcile_slices, slice_outcome, Group, SliceMeta,
    DISCOVERY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL,
};
use crate::util::{self, Pass, CORE};
use crate::Controller;

pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Upstream `--mirroring-max-endpoints-per-subset` default.
pub const MAX_ADDRESSES_PER_SUBSET: usize = 1000;

/// Should these Endpoints (of `svc`) be mirrored?
pub fn should_mirror(ep: &Value, svc: Option<&Value>) -> bool {
    let Some(svc) = svc else {
        return false;
    };
    endpoints::selector(svc).is_none()
        && ep["metadata"]["labels"][SKIP_MIRROR_LABEL].as_str() != Some("true")
        && ep["metadata"]["annotations"][LEADER_ANNOTATION].is_null()
}

fn endpoint_port(p: &Value) -> Option<Value> {
    let port = p["port"].as_i64()?;
    let mut o = Map::new();
    o.insert("name".into(), json!(p["name"].as_str().unwrap_or("")));
    o.insert("port".into(), json!(port));
    o.insert(
        "protocol".into(),
        json!(p["protocol"].as_str().unwrap_or("TCP")),
    );
    if let Some(ap) = p["appProtocol"].as_str() {
        o.insert("appProtocol".into(), json!(ap));
    }
    Some(Value::Object(o))
}

/// The slice groups mirroring `ep`'s subsets.
pub fn mirror_groups(ep: &Value) -> Vec<Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for sub in ep["subsets"].as_array().into_iter().flatten() {
        let mut ports: Vec<Value> = sub["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(endpoint_port)
            .collect();
        ports.sort_by_key(util::canonical_json);
        let ports_key = Value::Array(ports.clone()).to_string();
        let addrs = [("addresses", true), ("notReadyAddresses", false)]
            .into_iter()
            .flat_map(|(k, ready)| {
                sub[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |a| (a, ready))
            })
            .take(MAX_ADDRESSES_PER_SUBSET);
        for (a, ready) in addrs {
            let Some(ip) = a["ip"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            let fam = endpoints::ip_family(&ip);
            let mut e = Map::new();
            e.insert("addresses".into(), json!([ip.to_string()]));
            e.insert("conditions".into(), json!({"ready": ready}));
            for k in ["hostname", "nodeName"] {
                if let Some(v) = a[k].as_str().filter(|v| !v.is_empty()) {
                    e.insert(k.into(), json!(v));
                }
            }
            if a["targetRef"].is_object() {
                e.insert("targetRef".into(), a["targetRef"].clone());
            }
            let e = Value::Object(e);
            let g = groups
                .entry(format!("{fam}|{ports_key}"))
                .or_insert_with(|| Group {
                    address_type: fam.into(),
                    ports: ports.clone(),
                    endpoints: BTreeMap::new(),
                });
            g.endpoints.entry(endpoint_key(&e)).or_insert(e);
        }
    }
    groups.into_values().collect()
}

/// The owner metadata of the slices mirroring `ep`.
pub fn mirror_meta(ep: &Value) -> SliceMeta {
    let mut labels = ep["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), json!(util::name(ep)));
    labels.insert(MANAGED_BY_LABEL.into(), json!(CONTROLLER_NAME));
    let mut annotations = ep["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    annotations.remove(LAST_APPLIED);
    let trigger_time = annotations
        .remove(TRIGGER_TIME)
        .and_then(|t| t.as_str().map(String::from))
        .or_else(|| {
            ep["metadata"]["creationTimestamp"]
                .as_str()
                .map(String::from)
        });
    SliceMeta {
        namespace: util::namespace(ep).into(),
        generate_name: format!("{}-", util::name(ep)),
        labels,
        annotations,
        owner: util::owner_ref(ep, "v1", "Endpoints"),
        trigger_time,
    }
}

pub struct EndpointSliceMirroringController {
    client: LocalClient,
}

impl EndpointSliceMirroringController {
    pub fn new(client: LocalClient) -> Self {
        EndpointSliceMirroringController { client }
    }
}

#[async_trait]
impl Controller for EndpointSliceMirroringController {
    fn name(&self) -> &'static str {
        "endpointslice-mirroring"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{CORE}/services"),
            format!("{CORE}/endpoints"),
            format!("{DISCOVERY}/endpointslices"),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let services = self.client.list(&format!("{CORE}/services")).await?;
        let svcs: HashMap<(&str, &str), &Value> = services
            .iter()
            .map(|s| ((util::namespace(s), util::name(s)), s))
            .collect();
        let eps = self.client.list(&format!("{CORE}/endpoints")).await?;
        let mut slices = managed_slices(&self.client, CONTROLLER_NAME).await?;
        let mut pass = Pass::default();
        for ep in &eps {
            let svc = svcs.get(&(util::namespace(ep), util::name(ep))).copied();
            if !should_mirror(ep, svc) || util::is_deleting(ep) {
                continue;
            }
            let key = (util::namespace(ep).to_string(), util::name(ep).to_string());
            let existing = slices.remove(&key).unwrap_or_default();
            let (mine, stale): (Vec<Value>, Vec<Value>) = existing
                .into_iter()
                .partition(|s| util::controlled_by(s, util::uid(ep)));
            slices.insert(key, stale);
            let r = reconcile_slices(&self.client, &mirror_meta(ep), mirror_groups(ep), &[], mine)
                .await;
            let r = slice_outcome(r);
            pass.record("Endpoints", ep, r);
        }
        // Mirrored slices of Endpoints that are gone or no longer mirrored.
        delete_slices(&self.client, slices.into_values().flatten(), &mut pass).await;
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_become_groups_by_family_and_ports() {
        let ep = json!({"metadata": {"name": "ext", "namespace": "ns", "uid": "u1",
            "labels": {"a": "b"}, "annotations": {LAST_APPLIED: "{}", "x": "y"}},
        "subsets": [
            {"addresses": [{"ip": "192.0.2.1", "nodeName": "n1"}, {"ip": "bogus"}],
             "notReadyAddresses": [{"ip": "2001:db8::1"}],
             "ports": [{"name": "http", "port": 80}]},
        ]});
        let groups = mirror_groups(&ep);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].address_type, "IPv4");
        assert_eq!(
            groups[0].ports,
            vec![json!({"name": "http", "port": 80, "protocol": "TCP"})]
        );
        let v4: Vec<&Value> = groups[0].endpoints.values().collect();
        assert_eq!(
            v4,
            vec![
                &json!({"addresses": ["192.0.2.1"], "conditions": {"ready": true}, "nodeName": "n1"})
            ]
        );
        assert_eq!(groups[1].address_type, "IPv6");
        let v6 = groups[1].endpoints.values().next().unwrap();
        assert_eq!(v6["conditions"]["ready"], false);
        let meta = mirror_meta(&ep);
        assert_eq!(meta.labels[MANAGED_BY_LABEL], CONTROLLER_NAME);
        assert_eq!(meta.labels[SERVICE_NAME_LABEL], "ext");
        assert_eq!(meta.labels["a"], "b");
        assert_eq!(
            meta.annotations,
            json!({"x": "y"}).as_object().unwrap().clone()
        );
        assert_eq!(meta.owner["kind"], "Endpoints");
    }

    #[test]
    fn only_selectorless_unmarked_endpoints_are_mirrored() {
        let ep = json!({"metadata": {"name": "ext"}});
        let plain = json!({"spec": {"ports": [{"port": 80}]}});
        let selected = json!({"spec": {"selector": {"app": "x"}}});
        assert!(should_mirror(&ep, Some(&plain)));
        assert!(!should_mirror(&ep, Some(&selected)));
        assert!(!should_mirror(&ep, None));
        let skip = json!({"metadata": {"labels": {SKIP_MIRROR_LABEL: "true"}}});
        assert!(!should_mirror(&skip, Some(&plain)));
    }
}
