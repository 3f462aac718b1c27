//! Keeping `ip daas-proxy` equal to what the Services and EndpointSlices ask for: watched
//! caches of both, a re-apply on every change (debounced), and a periodic comparison of the
//! kernel's table with the last applied one, so a table changed or deleted behind the agent's
//! back is repaired within `proxy_sync_seconds`. After an agent restart the first apply happens
//! once both caches are complete (the old table keeps serving until then). After each apply, the
//! UDP conntrack entries the change made stale are deleted ([`super::conntrack`]).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Api;
use tracing::Instrument;

use super::conntrack::{run_flushes, stale_flushes, Conntrack};
use super::model::{service_ports, ServicePort};
use super::rules::{self, normalize_listing};
use crate::net::nft::{Firewall, NftError, Table};

/// What the proxy needs to know about its node.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub node_name: String,
    /// The node gateway: the first address of the node's pod CIDR, where its DNS server listens.
    pub node_gateway: Ipv4Addr,
    /// How often the kernel's table is compared with the expected one.
    pub sync_period: Duration,
}

/// Applies tables and notices drift: the pure part of the loop, over any [`Firewall`].
pub struct Programmer {
    fw: Arc<dyn Firewall>,
    /// The last applied table and the kernel's (normalized) listing right after it.
    applied: Option<(Table, Option<String>)>,
}

/// What one [`Programmer::sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The kernel already had the expected table.
    Unchanged,
    /// The expected table changed and was applied.
    Applied,
    /// The kernel's table differed from the applied one (tampering, deletion): re-applied.
    Repaired,
}

impl Programmer {
    pub fn new(fw: Arc<dyn Firewall>) -> Self {
        Programmer { fw, applied: None }
    }

    async fn apply(&mut self, want: Table) -> Result<(), NftError> {
        self.fw.apply(&want).await?;
        let listing = self
            .fw
            .list(want.family, &want.name)
            .await?
            .map(|l| normalize_listing(&l));
        self.applied = Some((want, listing));
        Ok(())
    }

    /// Make the kernel hold `want`: apply it when it differs from the last applied table, or when
    /// `check_drift` and the kernel's listing differs from the one seen after the last apply.
    pub async fn sync(&mut self, want: Table, check_drift: bool) -> Result<SyncOutcome, NftError> {
        match &self.applied {
            Some((t, _)) if *t != want => {
                self.apply(want).await?;
                Ok(SyncOutcome::Applied)
            }
            None => {
                self.apply(want).await?;
                Ok(SyncOutcome::Applied)
            }
            Some((_, seen)) if check_drift => {
                let now = self
                    .fw
                    .list(want.family, &want.name)
                    .await?
                    .map(|l| normalize_listing(&l));
                if now == *seen && now.is_some() {
                    Ok(SyncOutcome::Unchanged)
                } else {
                    self.apply(want).await?;
                    Ok(SyncOutcome::Repaired)
                }
            }
            Some(_) => Ok(SyncOutcome::Unchanged),
        }
    }
}

/// Run the node proxy until the task is aborted.
pub async fn run(
    client: kube::Client,
    fw: Arc<dyn Firewall>,
    ct: Arc<dyn Conntrack>,
    cfg: ProxyConfig,
) {
    let span = tracing::info_span!("service_proxy", node = %cfg.node_name);
    async move {
        let (svc_reader, svc_writer) = reflector::store::<Service>();
        let (slice_reader, slice_writer) = reflector::store::<EndpointSlice>();
        let services = reflector(
            svc_writer,
            watcher(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .touched_objects()
        .map(|_| ());
        let slices = reflector(
            slice_writer,
            watcher(
                Api::<EndpointSlice>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .touched_objects()
        .map(|_| ());
        let mut changes = futures::stream::select(services, slices).boxed();
        // The first apply waits for complete caches (an empty cache would drop every rule).
        loop {
            tokio::select! {
                r = async {
                    svc_reader.wait_until_ready().await?;
                    slice_reader.wait_until_ready().await
                } => {
                    if r.is_err() {
                        return;
                    }
                    break;
                }
                c = changes.next() => if c.is_none() { return },
            }
        }
        let mut programmer = Programmer::new(fw);
        let mut tick = tokio::time::interval(cfg.sync_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = true;
        let mut failing = false;
        // The ports of the last successful apply (empty at start, as kube-proxy: a UDP Service
        // with endpoints counts as new after a restart).
        let mut programmed: Vec<ServicePort> = Vec::new();
        loop {
            if dirty {
                // Let a burst of changes settle.
                let settle = Instant::now() + Duration::from_millis(100);
                while let Ok(Some(())) =
                    tokio::time::timeout_at(settle.into(), changes.next()).await
                {}
            }
            let ports = service_ports(
                &svc_reader.state(),
                &slice_reader.state(),
                &cfg.node_name,
                cfg.node_gateway,
            );
            let want = rules::table(&ports);
            let started = Instant::now();
            let outcome = programmer.sync(want, !dirty || failing).await;
            match &outcome {
                Ok(SyncOutcome::Unchanged) => {}
                Ok(SyncOutcome::Applied) => {
                    tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "service rules applied"
                    )
                }
                Ok(SyncOutcome::Repaired) => tracing::warn!(
                    "the service rules were changed or removed outside the agent; re-applied"
                ),
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "programming the service rules failed; retrying")
                }
                Err(_) => {}
            }
            failing = outcome.is_err();
            if outcome.is_ok() && ports != programmed {
                let flushes = stale_flushes(&programmed, &ports);
                if !flushes.is_empty() {
                    let failed = run_flushes(ct.as_ref(), &flushes).await;
                    tracing::debug!(
                        flushes = flushes.len(),
                        failed,
                        "stale UDP conntrack entries deleted"
                    );
                }
                programmed = ports;
            }
            dirty = false;
            tokio::select! {
                c = changes.next() => match c {
                    Some(()) => dirty = true,
                    None => return,
                },
                _ = tick.tick() => {}
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::nft::{Family, RecordingFirewall};

    #[tokio::test]
    async fn applies_changes_and_repairs_a_deleted_table() {
        let fw = Arc::new(RecordingFirewall::default());
        let mut p = Programmer::new(fw.clone());
        let t1 = Table::new(Family::Ip, "daas-proxy", "chain a {\n}");
        assert_eq!(
            p.sync(t1.clone(), true).await.unwrap(),
            SyncOutcome::Applied
        );
        assert_eq!(
            p.sync(t1.clone(), true).await.unwrap(),
            SyncOutcome::Unchanged
        );
        // Deleted behind our back.
        fw.remove(Family::Ip, "daas-proxy").await.unwrap();
        // Without a drift check nothing is listed.
        assert_eq!(
            p.sync(t1.clone(), false).await.unwrap(),
            SyncOutcome::Unchanged
        );
        assert_eq!(
            p.sync(t1.clone(), true).await.unwrap(),
            SyncOutcome::Repaired
        );
        assert_eq!(fw.table(Family::Ip, "daas-proxy"), Some(t1.clone()));
        // Tampered with.
        fw.apply(&Table::new(Family::Ip, "daas-proxy", "chain evil {\n}"))
            .await
            .unwrap();
        assert_eq!(
            p.sync(t1.clone(), true).await.unwrap(),
            SyncOutcome::Repaired
        );
        assert_eq!(fw.table(Family::Ip, "daas-proxy"), Some(t1));
        // A new expectation is applied at once.
        let t2 = Table::new(Family::Ip, "daas-proxy", "chain b {\n}");
        assert_eq!(
            p.sync(t2.clone(), false).await.unwrap(),
            SyncOutcome::Applied
        );
        assert_eq!(fw.table(Family::Ip, "daas-proxy"), Some(t2));
    }
}
