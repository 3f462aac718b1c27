//! Hollow nodes (kubemark's idea): N simulated staked nodes in one process, for scale tests.
//!
//! Each hollow node is a real staker and a real API client: its own Sui key (funded by the
//! faucet), a node-tier stake and seal token ([`super::stake`]), a credential for the cluster's
//! audience signed with its key, and a Kubernetes client pinned to the attested masters
//! ([`super::masters`]). It registers its Node ([`super::node::register_node`]), waits for the
//! pod CIDR the master assigns, renews its Lease every heartbeat ([`super::node::renew_lease`],
//! jittered per node), posts its Node status every few heartbeats, and drives the pods bound to it
//! without any runtime: a pod goes Pending -> Running at once (conditions, a podIP from the
//! node's pod CIDR, containers reported running) and a pod being deleted is confirmed gone
//! (deleted with grace 0, as the kubelet does once its containers stopped).
//!
//! The masters are attested once for the whole process (every node uses the same verified
//! attestation, as N agents on one host would each verify the same master); staking goes through
//! the ledger with bounded concurrency.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use daas_ledger::keys::SuiKeypair;
use daas_ledger::wallet::Wallet;
use daas_ledger::{credential, Ledger};
use daas_protocol::attested::{AttestationPolicy, AttestedMaster};
use daas_protocol::cluster::{self, AttestedCluster};
use daas_protocol::now_ms;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{json, Value};
use tracing::Instrument;

use super::masters::{Bearer, FailoverConfig, MasterSet};
use super::node::{node_status, register_node, renew_lease, ConditionTimes, HostFacts};
use super::stake::{ensure_seal_token, ensure_stake};
use super::AgentError;
use crate::config::{AgentConfig, StakerConfigFile};

/// Funds the faucet gives a hollow node's key (stake plus gas).
const FAUCET_AMOUNT: u64 = 5_000_000_000;
/// Credential lifetime and refresh, as the agent's.
const CREDENTIAL_TTL_MS: u64 = 10 * 60 * 1000;
const CREDENTIAL_REFRESH: Duration = Duration::from_secs(4 * 60);
/// Attempts to join one node before the whole run fails.
const JOIN_ATTEMPTS: u32 = 5;
/// Timeouts of each node's client: one process of many nodes on a loaded host waits longer for
/// a connection than an agent would before counting the master as down.
const HOLLOW_FAILOVER: FailoverConfig = FailoverConfig {
    connect_timeout: Duration::from_secs(10),
    response_timeout: Duration::from_secs(60),
    probe_interval: Duration::from_secs(2),
    local_address: None,
};
/// The kubelet port hollow Nodes announce (nothing listens: hollow nodes have no kubelet API).
const HOLLOW_KUBELET_PORT: u16 = 10250;

/// What `daas hollow` runs.
#[derive(Debug, Clone)]
pub struct HollowConfig {
    /// The ledger endpoint written into each node's staker config.
    pub chain_url: String,
    pub master_urls: Vec<String>,
    pub count: usize,
    /// Nodes are named `<prefix>-<i>`.
    pub name_prefix: String,
    /// Per-node keys and credentials live in `<data_dir>/<node>/`.
    pub data_dir: PathBuf,
    pub trust_root: Option<PathBuf>,
    pub expected_pcrs: BTreeMap<u16, String>,
    /// Lease renewal period (the kubelet's 10 s); each node's phase is jittered within it.
    pub heartbeat: Duration,
    /// Node status is posted every this many heartbeats.
    pub status_every: u64,
    /// Nodes staking / registering at the same time.
    pub join_concurrency: usize,
    pub stake_amount: u64,
    /// Node `i` uses `source_ip_base + i` as its InternalIP and as the source address of its
    /// connections (e.g. 127.1.0.1: distinct loopback addresses, so the master's per-client-IP
    /// connection limit applies per node as it would in a real cluster). `None`: 127.0.0.1 and
    /// the system's choice.
    pub source_ip_base: Option<Ipv4Addr>,
}

impl HollowConfig {
    pub fn new(chain_url: &str, master_urls: Vec<String>, data_dir: PathBuf) -> Self {
        HollowConfig {
            chain_url: chain_url.to_string(),
            master_urls,
            count: 1,
            name_prefix: "hollow".into(),
            data_dir,
            trust_root: None,
            expected_pcrs: BTreeMap::new(),
            heartbeat: Duration::from_secs(10),
            status_every: 6,
            join_concurrency: 16,
            stake_amount: 1000,
            source_ip_base: None,
        }
    }

    /// Node `i`'s address (see [`HollowConfig::source_ip_base`]).
    pub fn node_ip(&self, i: usize) -> Option<Ipv4Addr> {
        self.source_ip_base
            .map(|b| Ipv4Addr::from(u32::from(b).wrapping_add(i as u32)))
    }

    pub fn node_name(&self, i: usize) -> String {
        format!("{}-{i}", self.name_prefix)
    }
}

/// The running hollow nodes; dropping it stops nothing, [`HollowNodes::stop`] does.
pub struct HollowNodes {
    pub nodes: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl HollowNodes {
    /// Stop every node's tasks (they go silent: no renewals, no status).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The hollow host facts: a fixed 4-CPU, 16 GiB node with room for 110 pods.
fn hollow_facts() -> HostFacts {
    HostFacts {
        cpus: 4,
        mem_total: 16 << 30,
        mem_available: 12 << 30,
        fs_capacity: 100 << 30,
        fs_available: 80 << 30,
        pid_max: 4_194_304,
        pids_in_use: 100,
        images: Vec::new(),
        runtime_version: "hollow://0".into(),
    }
}

fn load_or_create_key(path: &Path) -> Result<SuiKeypair, AgentError> {
    if path.exists() {
        return SuiKeypair::load(path)
            .map_err(|e| AgentError::Other(format!("{}: {e}", path.display())));
    }
    let k = SuiKeypair::generate();
    k.save(path)
        .map_err(|e| AgentError::Other(format!("{}: {e}", path.display())))?;
    Ok(k)
}

/// The node's agent configuration, resolved from a staker config like an agent's.
fn node_config(cfg: &HollowConfig, index: usize, name: &str) -> Result<AgentConfig, AgentError> {
    let dir = cfg.data_dir.join(name);
    crate::config::ensure_private_dir(&dir)?;
    let key_file = dir.join("node.key");
    load_or_create_key(&key_file)?;
    let file: StakerConfigFile = serde_json::from_value(json!({
        "node_id": name,
        "sui_key_file": key_file,
        "sui_rpc_endpoint": cfg.chain_url,
        "stake_amount": cfg.stake_amount,
        "nautilus_endpoint": cfg.master_urls,
        "data_dir": dir.join("data"),
        "trust_root": cfg.trust_root,
        "expected_pcrs": cfg.expected_pcrs,
        "node_ip": cfg.node_ip(index).unwrap_or(Ipv4Addr::LOCALHOST).to_string(),
        "heartbeat_seconds": cfg.heartbeat.as_secs().max(1),
    }))
    .map_err(|e| AgentError::Other(format!("hollow staker config: {e}")))?;
    let mut c = AgentConfig::resolve(file, &dir, &|_| None)?;
    c.heartbeat = cfg.heartbeat;
    c.key_file = Some(key_file);
    c.secure_files()?;
    Ok(c)
}

fn write_credential(
    cfg: &AgentConfig,
    audience: &str,
    token: sui_sdk_types::Address,
    path: &Path,
) -> Result<(), AgentError> {
    let c = credential::issue(&cfg.key, token, audience, now_ms(), CREDENTIAL_TTL_MS)?;
    Ok(crate::config::write_private_file(path, c.as_bytes())?)
}

/// Attest the masters once, then stake and register `cfg.count` nodes (at most
/// `cfg.join_concurrency` at a time) and start their heartbeats and pod loops.
pub async fn run_hollow(
    cfg: HollowConfig,
    ledger: Arc<dyn Ledger>,
) -> Result<HollowNodes, AgentError> {
    crate::config::ensure_private_dir(&cfg.data_dir)?;
    let policy = AttestationPolicy::from_options(
        cfg.trust_root.as_deref(),
        cfg.expected_pcrs.iter().map(|(i, v)| (*i, v.as_str())),
        Some(ledger.clone()),
    )
    .map_err(|e| AgentError::Other(e.to_string()))?;
    let attested = cluster::attest_all(&cfg.master_urls, &policy, false)
        .await
        .map_err(super::masters::MastersError::from)?;
    tracing::info!(cluster = %attested.cluster_id, masters = attested.attested.len(), "masters attested for the hollow nodes");
    let cluster_id = attested.cluster_id.clone();
    let masters = Arc::new(attested.attested);
    let cfg = Arc::new(cfg);
    let results = futures::stream::iter(0..cfg.count)
        .map(|i| {
            let (cfg, ledger, policy) = (cfg.clone(), ledger.clone(), policy.clone());
            let (masters, cluster_id) = (masters.clone(), cluster_id.clone());
            let name = cfg.node_name(i);
            let span = tracing::info_span!("hollow_join", node = %name);
            async move {
                // A join that fails (the master or ledger overloaded by the other joins) is
                // retried; it resumes where it stopped (stake, token and Node are kept).
                let mut attempt = 0;
                loop {
                    match join_one(
                        &cfg,
                        i,
                        &name,
                        ledger.clone(),
                        policy.clone(),
                        &masters,
                        &cluster_id,
                    )
                    .await
                    {
                        Ok(r) => break Ok(r),
                        Err(e) if attempt + 1 < JOIN_ATTEMPTS => {
                            attempt += 1;
                            tracing::warn!(error = %e, attempt, "hollow join failed; retrying");
                            tokio::time::sleep(Duration::from_secs(attempt as u64)).await;
                        }
                        Err(e) => break Err(AgentError::Other(format!("hollow node {name}: {e}"))),
                    }
                }
            }
            .instrument(span)
        })
        .buffer_unordered(cfg.join_concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    for r in results {
        let (name, t) = r?;
        nodes.push(name);
        tasks.extend(t);
    }
    nodes.sort();
    Ok(HollowNodes { nodes, tasks })
}

async fn join_one(
    hcfg: &HollowConfig,
    index: usize,
    name: &str,
    ledger: Arc<dyn Ledger>,
    policy: AttestationPolicy,
    masters: &[AttestedMaster],
    cluster_id: &str,
) -> Result<(String, Vec<tokio::task::JoinHandle<()>>), AgentError> {
    let cfg = node_config(hcfg, index, name)?;
    let wallet = Wallet::new(ledger.clone(), cfg.key.clone());
    let staked = ledger
        .stake(wallet.address())
        .await?
        .is_some_and(|r| r.is_active());
    if !staked {
        ledger.faucet(wallet.address(), FAUCET_AMOUNT).await?;
    }
    ensure_stake(&wallet, &cfg).await?;
    let token = ensure_seal_token(&wallet).await?;

    let token_file = cfg.data_dir.join("credential.token");
    let set = MasterSet::from_attested(
        &cfg.master_urls,
        AttestedCluster {
            cluster_id: cluster_id.to_string(),
            attested: masters.to_vec(),
            unreachable: Vec::new(),
        },
        policy,
        Bearer::File(token_file.clone()),
        FailoverConfig {
            local_address: hcfg.node_ip(index).map(std::net::IpAddr::V4),
            ..HOLLOW_FAILOVER
        },
    )?;
    let audience = set.audience();
    write_credential(&cfg, &audience, token, &token_file)?;
    let client = set.kube_client();

    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let mut times = ConditionTimes::default();
    let host = hollow_facts();
    // No kubelet endpoint: the certificate annotation pins nothing anyone can present.
    let cert_sha: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(format!("hollow:{name}")).into()
    };
    register_node(
        &nodes,
        &cfg,
        HOLLOW_KUBELET_PORT,
        &cert_sha,
        &host,
        &mut times,
    )
    .await?;
    renew_lease(&leases, name, cfg.heartbeat).await?;
    let cidr = crate::net::podnet::assigned_pod_cidr(&nodes, name).await?;
    tracing::info!(node = %name, pod_cidr = %cidr, "hollow node registered");

    let mut tasks = vec![set.spawn_prober()];
    // Heartbeat: jittered phase per node, Lease every period, Node status every few.
    {
        let (cfg, nodes, leases) = (cfg.clone(), nodes.clone(), leases.clone());
        let status_every = hcfg.status_every.max(1);
        let phase = cfg.heartbeat.mul_f64(jitter(name, index));
        let span = tracing::info_span!("hollow_heartbeat", node = %name);
        tasks.push(tokio::spawn(
            async move {
                tokio::time::sleep(phase).await;
                let mut n: u64 = 0;
                let mut refreshed = tokio::time::Instant::now();
                loop {
                    n += 1;
                    if refreshed.elapsed() >= CREDENTIAL_REFRESH {
                        match write_credential(&cfg, &audience, token, &token_file) {
                            Ok(()) => refreshed = tokio::time::Instant::now(),
                            Err(e) => tracing::warn!(error = %e, "credential refresh failed"),
                        }
                    }
                    for attempt in 0..3 {
                        match renew_lease(&leases, &cfg.node_id, cfg.heartbeat).await {
                            Ok(()) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, attempt, "lease renewal failed");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                    }
                    if n.is_multiple_of(status_every) {
                        let status = json!({"status": node_status(&cfg, HOLLOW_KUBELET_PORT, true, &host, &mut times)});
                        if let Err(e) = nodes
                            .patch_status(&cfg.node_id, &PatchParams::default(), &Patch::Merge(status))
                            .await
                        {
                            tracing::warn!(error = %e, "node status update failed");
                        }
                    }
                    tokio::time::sleep(cfg.heartbeat).await;
                }
            }
            .instrument(span),
        ));
    }
    let span = tracing::info_span!("hollow_pods", node = %name);
    tasks.push(tokio::spawn(
        pod_loop(client, name.to_string(), cidr, cfg.node_ip.to_string()).instrument(span),
    ));
    Ok((name.to_string(), tasks))
}

/// A node's phase within the heartbeat period, in [0, 1): spread from its name and index so
/// renewals of many nodes do not arrive together.
fn jitter(name: &str, index: usize) -> f64 {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{name}/{index}"));
    f64::from(u16::from_le_bytes([h[0], h[1]])) / 65536.0
}

/// Pod IPs of a node: host addresses of its pod CIDR from .2 (.1 is the node's gateway).
#[derive(Debug)]
pub struct PodIps {
    base: u32,
    size: u32,
    used: BTreeMap<String, Ipv4Addr>,
    taken: BTreeSet<u32>,
}

impl PodIps {
    pub fn new(cidr: &str) -> Option<PodIps> {
        let (addr, bits) = cidr.split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let bits: u32 = bits.parse().ok()?;
        if !(1..=30).contains(&bits) {
            return None;
        }
        Some(PodIps {
            base: u32::from(addr),
            size: 1u32 << (32 - bits),
            used: BTreeMap::new(),
            taken: BTreeSet::new(),
        })
    }

    /// The address of pod `uid` (the same on every call until released); `None` when full.
    pub fn assign(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.used.get(uid) {
            return Some(*ip);
        }
        let off = (2..self.size - 1).find(|o| !self.taken.contains(o))?;
        self.taken.insert(off);
        let ip = Ipv4Addr::from(self.base + off);
        self.used.insert(uid.to_string(), ip);
        Some(ip)
    }

    pub fn release(&mut self, uid: &str) {
        if let Some(ip) = self.used.remove(uid) {
            self.taken.remove(&(u32::from(ip) - self.base));
        }
    }
}

/// The status a hollow node reports for a pod it "runs": Running and Ready, every container
/// running since now.
pub fn running_status(pod: &Pod, pod_ip: Ipv4Addr, host_ip: &str, now: &str) -> Value {
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": "",
                "containerID": format!("hollow://{}", c.name),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let cond = |ty: &str| json!({"type": ty, "status": "True", "lastTransitionTime": now});
    json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("ContainersReady"), cond("Ready"), cond("PodScheduled")],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip.to_string(),
        "podIPs": [{"ip": pod_ip.to_string()}],
        "startTime": now,
        "containerStatuses": containers,
        "qosClass": pod.status.as_ref().and_then(|s| s.qos_class.clone()),
    })
}

/// The node's pods: each bound pod is reported Running once; a pod being deleted is deleted
/// with grace 0 (its "containers" stopped at once).
async fn pod_loop(client: kube::Client, node: String, cidr: String, host_ip: String) {
    let Some(mut ips) = PodIps::new(&cidr) else {
        tracing::error!(pod_cidr = %cidr, "hollow node: unusable pod CIDR; pods stay Pending");
        return;
    };
    let api: Api<Pod> = Api::all(client.clone());
    let wc = kube::runtime::watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut stream = kube::runtime::watcher(api, wc).boxed();
    // Pods already reported Running (uid), so each is written once.
    let mut running: BTreeSet<String> = BTreeSet::new();
    while let Some(ev) = stream.next().await {
        use kube::runtime::watcher::Event;
        match ev {
            Ok(Event::Apply(p)) | Ok(Event::InitApply(p)) => {
                sync_pod(&client, &node, &host_ip, &p, &mut ips, &mut running).await;
            }
            Ok(Event::Delete(p)) => {
                if let Some(uid) = &p.metadata.uid {
                    ips.release(uid);
                    running.remove(uid);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "pod watch error (retried)");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn sync_pod(
    client: &kube::Client,
    node: &str,
    host_ip: &str,
    p: &Pod,
    ips: &mut PodIps,
    running: &mut BTreeSet<String>,
) {
    let (Some(uid), Some(ns), Some(name)) = (
        p.metadata.uid.clone(),
        p.metadata.namespace.clone(),
        p.metadata.name.clone(),
    ) else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if p.metadata.deletion_timestamp.is_some() {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "confirming a deletion failed")
            }
        }
        ips.release(&uid);
        running.remove(&uid);
        return;
    }
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    if running.contains(&uid) || matches!(phase, Some("Running" | "Succeeded" | "Failed")) {
        running.insert(uid);
        return;
    }
    let Some(ip) = ips.assign(&uid) else {
        tracing::warn!(node, "hollow node: pod CIDR exhausted");
        return;
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = running_status(p, ip, host_ip, &now);
    match api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
    {
        Ok(_) => {
            running.insert(uid);
        }
        Err(e) => {
            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "pod status write failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ips_come_from_the_cidr_and_are_reused() {
        let mut ips = PodIps::new("10.42.3.0/30").expect("cidr");
        // A /30 has .0 (network), .1 (gateway), .2, .3 (broadcast): one pod address.
        assert_eq!(ips.assign("a"), Some(Ipv4Addr::new(10, 42, 3, 2)));
        assert_eq!(ips.assign("a"), Some(Ipv4Addr::new(10, 42, 3, 2)));
        assert_eq!(ips.assign("b"), None);
        ips.release("a");
        assert_eq!(ips.assign("b"), Some(Ipv4Addr::new(10, 42, 3, 2)));
        let mut ips = PodIps::new("10.42.7.0/24").expect("cidr");
        assert_eq!(ips.assign("x"), Some(Ipv4Addr::new(10, 42, 7, 2)));
        assert_eq!(ips.assign("y"), Some(Ipv4Addr::new(10, 42, 7, 3)));
        assert!(PodIps::new("nonsense").is_none());
        assert!(PodIps::new("10.0.0.0/31").is_none());
    }

    #[test]
    fn running_status_reports_every_container_and_the_ip() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "nginx"}]},
        }))
        .expect("pod");
        let s = running_status(&pod, Ipv4Addr::new(10, 42, 0, 5), "127.0.0.1", "t");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.42.0.5");
        assert_eq!(s["containerStatuses"].as_array().map(|a| a.len()), Some(2));
        assert_eq!(s["containerStatuses"][1]["image"], "nginx");
        let ready = s["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready);
    }

    #[test]
    fn jitter_spreads_within_the_period() {
        let phases: Vec<f64> = (0..100).map(|i| jitter(&format!("h-{i}"), i)).collect();
        assert!(phases.iter().all(|p| (0.0..1.0).contains(p)));
        let early = phases.iter().filter(|p| **p < 0.5).count();
        assert!(
            (20..80).contains(&early),
            "{early} of 100 in the first half"
        );
    }
}
