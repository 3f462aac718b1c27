//! The ingress controller, master part (K3s ships Traefik; K3s-DaaS ships a proxy in every node
//! agent): it keeps the built-in IngressClass `daas` (controller `k3s-daas.io/ingress`, the
//! default class) in place, recreating it when it is missing, and publishes every Ingress of
//! that class on the nodes: `status.loadBalancer.ingress` lists the InternalIPs of the Ready
//! staked nodes (sorted, as ServiceLB does for Services), following them as nodes come and go.
//! Ingresses of other classes are left to their controllers. New Ingresses that name no class
//! get the default one from the API server's `DefaultIngressClass` admission.

use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::registry::ingress::{class_of, daas_class, DAAS_CLASS};
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{self, Pass, CORE};
use crate::Controller;

/// The API group/version path of Ingresses and IngressClasses.
pub const NETWORKING: &str = "/apis/networking.k8s.io/v1";

pub struct IngressController {
    client: LocalClient,
    staked_label: String,
    informers: crate::informer::Informers,
}

impl IngressController {
    pub fn new(client: LocalClient, staked_label: impl Into<String>) -> Self {
        IngressController {
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

    /// Create the built-in class when it is missing (an admin's changes to it are kept).
    async fn ensure_class(&self) -> Result<(), ApiError> {
        let path = format!("{NETWORKING}/ingressclasses/{DAAS_CLASS}");
        if self.client.get_opt(&path).await?.is_some() {
            return Ok(());
        }
        tracing::info!(class = DAAS_CLASS, "creating the built-in IngressClass");
        match self
            .client
            .create(&format!("{NETWORKING}/ingressclasses"), &daas_class())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Is this Ingress published by the node agents' proxy?
pub fn ours(ing: &Value) -> bool {
    class_of(ing) == Some(DAAS_CLASS)
}

#[async_trait]
impl Controller for IngressController {
    fn name(&self) -> &'static str {
        "ingress"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{NETWORKING}/ingresses"),
            format!("{NETWORKING}/ingressclasses"),
            format!("{CORE}/nodes"),
        ]
    }

    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(format!("{CORE}/nodes"), crate::wakefilter::node_changed())]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let mut pass = Pass::default();
        let class = self.ensure_class().await;
        pass.record("IngressClass", &daas_class(), class.map(|_| None));
        let ingresses = self.client.list(&format!("{NETWORKING}/ingresses")).await?;
        // The nodes' addresses only when an Ingress of ours is there to publish them on.
        let want = if ingresses.iter().any(|i| ours(i) && !util::is_deleting(i)) {
            let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
            crate::servicelb::ingress(&nodes, &self.staked_label)
        } else {
            json!([])
        };
        for ing in ingresses {
            if !ours(&ing) || util::is_deleting(&ing) {
                continue;
            }
            let cur = &ing["status"]["loadBalancer"]["ingress"];
            let same = cur.as_array().map_or(&[][..], |a| a.as_slice())
                == want.as_array().map_or(&[][..], |a| a.as_slice());
            if same {
                continue;
            }
            let path = format!(
                "{}/status",
                util::path(
                    NETWORKING,
                    util::namespace(&ing),
                    "ingresses",
                    Some(util::name(&ing))
                )
            );
            let lb = if want.as_array().is_some_and(|a| a.is_empty()) {
                json!({ "ingress": null })
            } else {
                json!({ "ingress": want })
            };
            tracing::info!(ingress = util::name(&ing), namespace = util::namespace(&ing), addresses = %want, "updating ingress load balancer status");
            let r = match self
                .client
                .merge_patch(&path, &json!({"status": {"loadBalancer": lb}}))
                .await
            {
                Ok(_) => Ok(None),
                Err(e) if e.code == 404 => Ok(None),
                Err(e) => Err(e),
            };
            pass.record("Ingress", &ing, r);
        }
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ingresses_of_the_daas_class_are_ours() {
        assert!(ours(&json!({"spec": {"ingressClassName": "daas"}})));
        assert!(ours(
            &json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "daas"}}, "spec": {}})
        ));
        assert!(!ours(&json!({"spec": {"ingressClassName": "nginx"}})));
        assert!(!ours(&json!({"spec": {}})));
    }
}
