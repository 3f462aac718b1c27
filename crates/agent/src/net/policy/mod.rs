//! NetworkPolicy enforcement on the node (what kube-router's policy controller does in K3s):
//! the table `inet daas-policy` filters the traffic of this node's pods, computed purely by
//! [`rules::table`] from the watched pods, namespaces and policies, and applied atomically
//! through [`Firewall`].
//!
//! Where the filtering happens: one `forward` hook of an `inet` table. Pod-to-pod traffic across
//! nodes is routed through this hook; traffic between two pods of this node is bridged on the
//! CNI bridge, which reaches the same hook (with conntrack) only with `br_netfilter`'s
//! `net.bridge.bridge-nf-call-iptables=1` in the agent's network namespace, which
//! [`enable_bridge_netfilter`] sets. That keeps one rule set for both paths and sees Service
//! traffic after its DNAT (the `ip daas-proxy` table), so policies apply to the backend pod as
//! upstream specifies; a `bridge` family table would only see the bridged half, before
//! conntrack, and need a second copy of the rules for the routed half.
//!
//! What is always allowed: replies (established/related), and traffic from or to the node
//! itself (it never crosses `forward`: the kubelet's probes, the node's DNS, host-network pods).
//!
//! Sync: every change of a watched object re-computes the table (debounced); every
//! [`RESYNC`] the table is read back from the kernel and re-applied if anyone changed or
//! deleted it.

pub mod rules;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use tokio::time::Instant;

use crate::net::nft::{Firewall, NftError, Table};

pub use rules::{Snapshot, FAMILY, TABLE};

/// How often the kernel's copy of the table is checked against the one applied.
pub const RESYNC: Duration = Duration::from_secs(5);
/// Changes arriving together are applied together.
const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("enabling br_netfilter ({path}): {source}")]
    BridgeNetfilter {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Make bridged IPv4/IPv6 traffic traverse the inet hooks (br_netfilter) in this network
/// namespace: load the module when its sysctls are missing, then set them. `proc_sys_net` is
/// `/proc/sys/net` (a directory of a test otherwise).
pub fn enable_bridge_netfilter(proc_sys_net: &Path) -> Result<(), PolicyError> {
    let dir = proc_sys_net.join("bridge");
    if !dir.exists() {
        // Built as a module on most distributions; absent modprobe is reported below.
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .status();
    }
    for f in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        let path = dir.join(f);
        std::fs::write(&path, b"1").map_err(|source| PolicyError::BridgeNetfilter {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Applies the computed table when it changed, and re-applies it when the kernel's copy no
/// longer is what was applied (tampering, a flushed ruleset).
pub struct Enforcer {
    fw: Arc<dyn Firewall>,
    applied: Option<Table>,
    /// `nft list table` right after the last apply: the kernel's normal form of `applied`.
    listed: Option<String>,
}

impl Enforcer {
    pub fn new(fw: Arc<dyn Firewall>) -> Self {
        Enforcer {
            fw,
            applied: None,
            listed: None,
        }
    }

    /// Bring the kernel in line with `snap`. Returns whether the table was (re-)applied.
    #[tracing::instrument(skip_all, fields(pods = snap.pods.len(), policies = snap.policies.len()))]
    pub async fn sync(&mut self, snap: &Snapshot) -> Result<bool, PolicyError> {
        let want = rules::table(snap);
        let changed = self.applied.as_ref() != Some(&want);
        let drifted = !changed && self.fw.list(FAMILY, TABLE).await? != self.listed;
        if !changed && !drifted {
            return Ok(false);
        }
        if drifted {
            tracing::warn!(
                table = TABLE,
                "policy table changed outside the agent; re-applying"
            );
        }
        self.fw.apply(&want).await?;
        self.listed = self.fw.list(FAMILY, TABLE).await?;
        self.applied = Some(want);
        Ok(true)
    }
}

/// Watch pods, namespaces and policies and keep the table in line until the task is dropped.
pub async fn run(client: kube::Client, node: String, fw: Arc<dyn Firewall>) {
    if let Err(e) = enable_bridge_netfilter(Path::new("/proc/sys/net")) {
        tracing::warn!(error = %e, "same-node pod traffic bypasses NetworkPolicies");
    }
    let (pods, pods_w) = reflector::store::<Pod>();
    let (nss, nss_w) = reflector::store::<Namespace>();
    let (pols, pols_w) = reflector::store::<NetworkPolicy>();
    let wc = watcher::Config::default;
    let streams = vec![
        reflector::reflector(
            pods_w,
            watcher(Api::<Pod>::all(client.clone()), wc()).default_backoff(),
        )
        .map(|r| r.map(|_| ()))
        .boxed(),
        reflector::reflector(
            nss_w,
            watcher(Api::<Namespace>::all(client.clone()), wc()).default_backoff(),
        )
        .map(|r| r.map(|_| ()))
        .boxed(),
        reflector::reflector(
            pols_w,
            watcher(Api::<NetworkPolicy>::all(client), wc()).default_backoff(),
        )
        .map(|r| r.map(|_| ()))
        .boxed(),
    ];
    let mut events = futures::stream::select_all(streams);
    let mut enforcer = Enforcer::new(fw);
    let mut next = Instant::now() + RESYNC;
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(())) => next = next.min(Instant::now() + DEBOUNCE),
                Some(Err(e)) => tracing::debug!(error = %e, "policy watch error; retrying"),
                None => return,
            },
            _ = tokio::time::sleep_until(next) => {
                next = Instant::now() + RESYNC;
                // Nothing is enforced from a partial view of the cluster.
                if !(ready(&pods) && ready(&nss) && ready(&pols)) {
                    continue;
                }
                let snap = Snapshot {
                    node: node.clone(),
                    pods: pods.state().iter().map(|p| (**p).clone()).collect(),
                    namespaces: nss.state().iter().map(|n| (**n).clone()).collect(),
                    policies: pols.state().iter().map(|p| (**p).clone()).collect(),
                };
                match enforcer.sync(&snap).await {
                    Ok(true) => tracing::info!(policies = snap.policies.len(), "network policy table applied"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "applying the network policy table failed");
                        // Retried at the next resync (or change).
                    }
                }
            }
        }
    }
}

fn ready<K: kube::Resource + Clone + 'static>(s: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    s.wait_until_ready().now_or_never().is_some()
}

/// With `disable_network_policy`: make sure no table of an earlier run is left filtering.
pub async fn disable(fw: &dyn Firewall) {
    if let Err(e) = fw.remove(FAMILY, TABLE).await {
        tracing::warn!(error = %e, "removing the network policy table failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::nft::RecordingFirewall;
    use serde_json::json;

    fn snap(policies: serde_json::Value) -> Snapshot {
        Snapshot {
            node: "n1".into(),
            pods: vec![serde_json::from_value(json!({
                "metadata": {"namespace": "a", "name": "p", "labels": {"app": "x"}},
                "spec": {"nodeName": "n1", "containers": []},
                "status": {"phase": "Running", "podIP": "10.42.1.2"}}))
            .unwrap()],
            namespaces: vec![],
            policies: serde_json::from_value(policies).unwrap(),
        }
    }

    #[tokio::test]
    async fn sync_applies_on_change_and_repairs_drift() {
        let fw = Arc::new(RecordingFirewall::default());
        let mut e = Enforcer::new(fw.clone());
        let deny =
            json!([{"metadata": {"namespace": "a", "name": "d"}, "spec": {"podSelector": {}}}]);
        assert!(e.sync(&snap(deny.clone())).await.unwrap());
        assert!(fw.table(FAMILY, TABLE).unwrap().body.contains("jump ing-0"));
        // Unchanged: nothing to do.
        assert!(!e.sync(&snap(deny.clone())).await.unwrap());
        // Someone removes the table: it is put back.
        fw.remove(FAMILY, TABLE).await.unwrap();
        assert!(e.sync(&snap(deny.clone())).await.unwrap());
        assert!(fw.table(FAMILY, TABLE).is_some());
        // Someone edits it: it is put back.
        fw.apply(&Table::new(FAMILY, TABLE, "chain forward {}"))
            .await
            .unwrap();
        assert!(e.sync(&snap(deny)).await.unwrap());
        assert!(fw.table(FAMILY, TABLE).unwrap().body.contains("jump ing-0"));
        // The policy goes: the pod is no longer isolated.
        assert!(e.sync(&snap(json!([]))).await.unwrap());
        assert!(!fw.table(FAMILY, TABLE).unwrap().body.contains("jump"));
        disable(fw.as_ref()).await;
        assert!(fw.table(FAMILY, TABLE).is_none());
    }

    #[test]
    fn bridge_netfilter_sysctls_are_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bridge")).unwrap();
        for f in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
            std::fs::write(dir.path().join("bridge").join(f), "0").unwrap();
        }
        enable_bridge_netfilter(dir.path()).unwrap();
        for f in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
            assert_eq!(
                std::fs::read_to_string(dir.path().join("bridge").join(f)).unwrap(),
                "1"
            );
        }
    }

    /// The generated table is accepted by the real nft (in a namespace made for the test).
    #[tokio::test]
    async fn real_nft_accepts_the_generated_table() {
        let Some(scratch) = crate::net::nft::ScratchNetns::new("np") else {
            return;
        };
        let fw = Arc::new(scratch.nft());
        let mut e = Enforcer::new(fw.clone());
        let pols = json!([
            {"metadata": {"namespace": "a", "name": "i"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
             "ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.0.0/16"]}}],
                          "ports": [{"port": 80, "protocol": "TCP"}, {"port": 1000, "endPort": 2000, "protocol": "UDP"}, {"protocol": "SCTP"}]}],
             "egress": [{"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}]}, {"ports": [{"port": 53, "protocol": "UDP"}]}]}}
        ]);
        let res = e.sync(&snap(pols)).await;
        let listed = fw.list(FAMILY, TABLE).await;
        assert!(res.unwrap());
        let listed = listed.unwrap().unwrap();
        assert!(listed.contains("jump ing-0"), "{listed}");
        assert!(listed.contains("udp dport 1000-2000"), "{listed}");
    }

    /// Scale: 250 local pods, 1,000 remote ones, 100 policies (each selecting a tenth of the
    /// pods with a pod-selector peer and a port) generated and applied by the real nft in a
    /// namespace made for the test; the times are printed (run with --nocapture).
    #[tokio::test]
    async fn a_large_cluster_is_generated_and_applied() {
        let Some(scratch) = crate::net::nft::ScratchNetns::new("npl") else {
            return;
        };
        let mut pods = Vec::new();
        for i in 0..1250u32 {
            let node = if i < 250 { "n1" } else { "n2" };
            pods.push(
                serde_json::from_value(json!({
                    "metadata": {"namespace": "a", "name": format!("p{i}"),
                        "labels": {"shard": (i % 10).to_string(), "role": (i % 7).to_string()}},
                    "spec": {"nodeName": node, "containers": []},
                    "status": {"phase": "Running",
                        "podIP": format!("10.42.{}.{}", 1 + i / 250, 2 + i % 250)}
                }))
                .unwrap(),
            );
        }
        let policies = (0..100u32)
            .map(|i| {
                serde_json::from_value(json!({"metadata": {"namespace": "a", "name": format!("np{i}")},
                    "spec": {"podSelector": {"matchLabels": {"shard": (i % 10).to_string()}},
                        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": (i % 7).to_string()}}}],
                            "ports": [{"port": 1000 + i, "protocol": "TCP"}]}]}}))
                .unwrap()
            })
            .collect();
        let snap = Snapshot {
            node: "n1".into(),
            pods,
            namespaces: vec![],
            policies,
        };
        let t0 = std::time::Instant::now();
        let table = rules::table(&snap);
        let generated = t0.elapsed();
        let fw = scratch.nft();
        let t1 = std::time::Instant::now();
        let res = fw.apply(&table).await;
        let applied = t1.elapsed();
        res.unwrap();
        let rules = table.body.lines().count();
        eprintln!(
            "policy table: {rules} lines, generated in {generated:?}, applied in {applied:?}"
        );
        assert_eq!(table.body.matches(" jump ing-").count(), 250);
        assert!(table.body.contains("ip saddr @peers-0 tcp dport"));
    }
}
