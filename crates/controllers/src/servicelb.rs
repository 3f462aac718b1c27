//! ServiceLB, the master part (like K3s' servicelb): every Service of `type: LoadBalancer`
//! without a `loadBalancerClass` is published on the staked nodes. Its
//! `status.loadBalancer.ingress` lists the InternalIPs of the Ready nodes labelled staked (sorted,
//! one entry per address), and follows them as nodes join, fail or lose their stake; the node
//! proxy forwards those addresses and ports to the Service. A Service that stops being a
//! class-less LoadBalancer has the ingress this controller set cleared, as upstream's service
//! controller does; Services of another class are left to their controller.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{self, Pass, CORE};
use crate::Controller;

pub struct ServiceLbController {
    client: LocalClient,
    staked_label: String,
    informers: crate::informer::Informers,
}

impl ServiceLbController {
    pub fn new(client: LocalClient, staked_label: impl Into<String>) -> Self {
        ServiceLbController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            staked_label: staked_label.into(),
        }
    }

    /// Read nodes from the shared caches (woken by the cache, not by a watch of its own).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

/// Does this controller publish the Service?
pub fn wants_lb(svc: &Value) -> bool {
    svc["spec"]["type"] == "LoadBalancer"
        && svc["spec"]["loadBalancerClass"]
            .as_str()
            .is_none_or(|c| c.is_empty())
}

/// The ingress entries for these nodes: InternalIPs of the Ready staked ones, in address order.
pub fn ingress<N: std::borrow::Borrow<Value>>(nodes: &[N], staked_label: &str) -> Value {
    let ips: BTreeSet<IpAddr> = nodes
        .iter()
        .map(|n| n.borrow())
        .filter(|n| {
            n["metadata"]["labels"][staked_label].as_str() == Some("true")
                && util::condition_true(n, "Ready")
                && !util::is_deleting(n)
        })
        .flat_map(|n| n["status"]["addresses"].as_array().into_iter().flatten())
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str()?.parse().ok())
        .collect();
    Value::Array(ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect())
}

#[async_trait]
impl Controller for ServiceLbController {
    fn name(&self) -> &'static str {
        "servicelb"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/services"), format!("{CORE}/nodes")]
    }

    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(format!("{CORE}/nodes"), crate::wakefilter::node_changed())]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let services = self.client.list(&format!("{CORE}/services")).await?;
        // The nodes' addresses only when a Service is published (at 1,000 nodes, working
        // them out on every Node status update cost more than everything else here).
        let want = if services.iter().any(wants_lb) {
            let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
            ingress(&nodes, &self.staked_label)
        } else {
            json!([])
        };
        let mut pass = Pass::default();
        for svc in services {
            let classless = svc["spec"]["loadBalancerClass"]
                .as_str()
                .is_none_or(|c| c.is_empty());
            let cur = &svc["status"]["loadBalancer"]["ingress"];
            let target = if wants_lb(&svc) {
                want.clone()
            } else if classless && cur.as_array().is_some_and(|a| !a.is_empty()) {
                json!([])
            } else {
                continue;
            };
            let same = cur.as_array().map_or(&[][..], |a| a.as_slice())
                == target.as_array().map_or(&[][..], |a| a.as_slice());
            if same {
                continue;
            }
            let path = format!(
                "{}/status",
                util::path(
                    CORE,
                    util::namespace(&svc),
                    "services",
                    Some(util::name(&svc))
                )
            );
            // (A merge patch removes a key with null.)
            let lb = if target.as_array().is_some_and(|a| a.is_empty()) {
                json!({ "ingress": null })
            } else {
                json!({ "ingress": target })
            };
            tracing::info!(service = util::name(&svc), namespace = util::namespace(&svc), ingress = %target, "updating load balancer ingress");
            let r = self
                .client
                .merge_patch(&path, &json!({"status": {"loadBalancer": lb}}))
                .await;
            let r = match r {
                Ok(_) => Ok(None),
                Err(e) if e.code == 404 => Ok(None),
                Err(e) => Err(e),
            };
            pass.record("Service", &svc, r);
        }
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ip: &str, staked: bool, ready: bool) -> Value {
        json!({"metadata": {"name": name, "labels": {"s": if staked { "true" } else { "false" }}},
            "status": {"addresses": [{"type": "InternalIP", "address": ip},
                    {"type": "Hostname", "address": name}],
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "Unknown" }}]}})
    }

    #[test]
    fn ingress_is_sorted_ready_staked_node_ips() {
        let nodes = [
            node("c", "10.0.0.30", true, true),
            node("a", "10.0.0.4", true, true),
            node("b", "10.0.0.2", false, true),
            node("d", "10.0.0.1", true, false),
        ];
        assert_eq!(
            ingress(&nodes, "s"),
            json!([{"ip": "10.0.0.4"}, {"ip": "10.0.0.30"}])
        );
    }

    #[test]
    fn only_classless_load_balancers_are_ours() {
        assert!(wants_lb(&json!({"spec": {"type": "LoadBalancer"}})));
        assert!(!wants_lb(
            &json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "x.io/lb"}})
        ));
        assert!(!wants_lb(&json!({"spec": {"type": "NodePort"}})));
    }
}
