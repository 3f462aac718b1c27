//! The Service allocation repair loops (upstream ipallocator/controller/repair.go and
//! portallocator/controller/repair.go): reconcile the cluster-IP and node-port reservations in the
//! store with the Services that exist.
//!
//! - A Service whose IP (or node port) has no reservation gets one, with a Warning event
//!   `ClusterIPNotAllocated` (`PortNotAllocated`): "... is not allocated; repairing".
//! - A Service whose IP (port) is reserved for another live Service gets a Warning
//!   `ClusterIPAlreadyAllocated` (`PortAlreadyAllocated`).
//! - A Service whose IP (port) is outside the configured range gets a Warning
//!   `ClusterIPOutOfRange` (`PortOutOfRange`).
//! - A reservation no live Service holds (a leak: a crash between reserving and storing, a
//!   release that failed) is freed once it is older than the grace period, so that creates in
//!   flight keep what they just reserved.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apiserver::registry::ipalloc::{AllocError, Allocators, Owner, Reservation};
use daas_apiserver::registry::service::service_holdings;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{self, name, namespace, uid, CORE};
use crate::Controller;

const COMPONENT: &str = "ipallocator-repair-controller";

pub struct ServiceRepair {
    client: LocalClient,
    alloc: Allocators,
    /// A reservation without a Service is freed only when older than this.
    leak_grace: Duration,
}

impl ServiceRepair {
    pub fn new(client: LocalClient, alloc: Allocators, leak_grace: Duration) -> Self {
        ServiceRepair {
            client,
            alloc,
            leak_grace,
        }
    }

    async fn warn(&self, svc: &Value, reason: &str, message: String) {
        tracing::warn!(service = %format!("{}/{}", namespace(svc), name(svc)), reason, %message);
        let mut involved = svc.clone();
        involved["apiVersion"] = json!("v1");
        involved["kind"] = json!("Service");
        util::best_effort(
            "service repair event",
            util::record_event(
                &self.client,
                &involved,
                "Warning",
                reason,
                &message,
                COMPONENT,
            )
            .await,
        )
        .await;
    }

    fn leaked(&self, owner: &Owner) -> bool {
        let age = owner
            .created_at
            .map(|t| (Utc::now() - t).to_std().unwrap_or_default())
            .unwrap_or(Duration::MAX);
        age >= self.leak_grace
    }
}

fn owner_of(svc: &Value) -> Owner {
    Owner::new(namespace(svc), name(svc), uid(svc))
}

fn api(e: AllocError) -> ApiError {
    ApiError::internal(format!("service allocation repair: {e}"))
}

#[async_trait]
impl Controller for ServiceRepair {
    fn name(&self) -> &'static str {
        "service-allocation-repair"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/services")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        // Reservations first: one made after this listing belongs to a create in flight, which
        // the Service listing below may not show yet; it is not touched this pass.
        let ips = self.alloc.list_ips().await.map_err(api)?;
        let ports = self.alloc.list_ports().await.map_err(api)?;
        let services = self.client.list(&format!("{CORE}/services")).await?;
        let by_ip: HashMap<Ipv4Addr, &Reservation<Ipv4Addr>> =
            ips.iter().map(|r| (r.value, r)).collect();
        let by_port: HashMap<u16, &Reservation<u16>> = ports.iter().map(|r| (r.value, r)).collect();
        let live: HashMap<&str, &Value> = services.iter().map(|s| (uid(s), s)).collect();
        // uid -> what each live Service holds.
        let holds: HashMap<&str, (Option<Ipv4Addr>, Vec<u16>)> = services
            .iter()
            .map(|s| (uid(s), service_holdings(s)))
            .collect();
        let ranges = self.alloc.ranges.clone();

        for svc in &services {
            let owner = owner_of(svc);
            let (ip, nps) = &holds[uid(svc)];
            if let Some(ip) = ip {
                if !ranges.contains_ip(*ip) {
                    let msg = format!(
                        "Cluster IP [IPv4]:{ip} is not within the configured Service CIDR {}; please recreate service",
                        ranges.cidr()
                    );
                    self.warn(svc, "ClusterIPOutOfRange", msg).await;
                } else {
                    match by_ip.get(ip) {
                        Some(r) if r.owner.uid == owner.uid => {}
                        Some(r)
                            if holds
                                .get(r.owner.uid.as_str())
                                .is_some_and(|h| h.0 == Some(*ip)) =>
                        {
                            let msg = format!("Cluster IP [IPv4]:{ip} was assigned to multiple services; please recreate service");
                            self.warn(svc, "ClusterIPAlreadyAllocated", msg).await;
                        }
                        stale => {
                            if let Some(r) = stale {
                                self.alloc.free_leaked_ip(r).await.map_err(api)?;
                            }
                            if self.alloc.repair_ip(*ip, &owner).await.map_err(api)? {
                                let msg =
                                    format!("Cluster IP [IPv4]:{ip} is not allocated; repairing");
                                self.warn(svc, "ClusterIPNotAllocated", msg).await;
                            }
                        }
                    }
                }
            }
            for np in nps {
                if !ranges.contains_port(i64::from(*np)) {
                    let msg = format!(
                        "Port {np} is not within the port range {}; please recreate service",
                        ranges.ports()
                    );
                    self.warn(svc, "PortOutOfRange", msg).await;
                    continue;
                }
                match by_port.get(np) {
                    Some(r) if r.owner.uid == owner.uid => {}
                    Some(r)
                        if holds
                            .get(r.owner.uid.as_str())
                            .is_some_and(|h| h.1.contains(np)) =>
                    {
                        let msg = format!(
                            "Port {np} was assigned to multiple services; please recreate service"
                        );
                        self.warn(svc, "PortAlreadyAllocated", msg).await;
                    }
                    stale => {
                        if let Some(r) = stale {
                            self.alloc.free_leaked_port(r).await.map_err(api)?;
                        }
                        if self.alloc.repair_port(*np, &owner).await.map_err(api)? {
                            let msg = format!("Port {np} is not allocated; repairing");
                            self.warn(svc, "PortNotAllocated", msg).await;
                        }
                    }
                }
            }
        }

        // Leaks: reservations no live Service holds.
        for r in &ips {
            let held = live.contains_key(r.owner.uid.as_str())
                && holds[r.owner.uid.as_str()].0 == Some(r.value);
            if !held && self.leaked(&r.owner) {
                tracing::info!(ip = %r.value, owner = %format!("{}/{}", r.owner.namespace, r.owner.name), "freeing leaked cluster IP");
                self.alloc.free_leaked_ip(r).await.map_err(api)?;
            }
        }
        for r in &ports {
            let held = live.contains_key(r.owner.uid.as_str())
                && holds[r.owner.uid.as_str()].1.contains(&r.value);
            if !held && self.leaked(&r.owner) {
                tracing::info!(port = r.value, owner = %format!("{}/{}", r.owner.namespace, r.owner.name), "freeing leaked node port");
                self.alloc.free_leaked_port(r).await.map_err(api)?;
            }
        }
        Ok(None)
    }
}
