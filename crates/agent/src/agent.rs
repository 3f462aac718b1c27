//! The staker host: stake → seal token → attested join → Node + Lease heartbeat → pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daas_ledger::wallet::Wallet;
use daas_ledger::{credential, tx, Ledger};
use daas_master::attested::{attest, AttestationPolicy, AttestedMaster};
use daas_master::nodeproxy::KUBELET_CERT_ANNOTATION;
use daas_master::now_ms;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::config::AgentConfig;
use crate::runtime::{ContainerState, PodSpecLite, RestartPolicy, Runtime, RuntimeError};
use crate::security::{NodeAdmission, Rejection, REJECT_REASON};
use crate::server::{self, KubeletState};

pub const ROLE_NODE: u8 = 1;
/// Credential lifetime; it is rewritten well before it expires.
const CREDENTIAL_TTL_MS: u64 = 10 * 60 * 1000;
const CREDENTIAL_REFRESH: Duration = Duration::from_secs(4 * 60);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("ledger: {0}")]
    Wallet(#[from] daas_ledger::wallet::WalletError),
    #[error("ledger: {0}")]
    Ledger(#[from] daas_ledger::LedgerError),
    #[error("attestation of the master failed, refusing to send credentials: {0}")]
    Attestation(#[from] daas_master::attested::AttestError),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("runtime: {0}")]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("agent files: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("credential: {0}")]
    Credential(#[from] daas_ledger::credential::CredentialError),
    #[error("{0}")]
    Other(String),
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Stake (or top up / re-stake) so the node has an Active node stake of at least `amount`.
pub async fn ensure_stake(w: &Wallet, cfg: &AgentConfig) -> Result<(), AgentError> {
    let rec = w.ledger.stake(w.address()).await?;
    match rec {
        Some(r)
            if r.is_active()
                && r.role == ROLE_NODE
                && r.node_id == cfg.node_id
                && r.amount >= cfg.stake_amount =>
        {
            tracing::info!(amount = r.amount, "stake already active");
            return Ok(());
        }
        Some(r) if r.is_active() && (r.role != ROLE_NODE || r.node_id != cfg.node_id) => {
            return Err(AgentError::Other(format!(
                "{} already stakes as role {} for node {:?}; unstake it first",
                w.address(),
                r.role,
                r.node_id
            )))
        }
        _ => {}
    }
    let add = match &rec {
        Some(r) if r.is_active() => cfg.stake_amount - r.amount,
        _ => cfg.stake_amount,
    };
    let budget = tx::DEFAULT_GAS_BUDGET;
    w.execute_with_budget(budget, |ctx, d| {
        tx::stake(ctx, d, add, ROLE_NODE, &cfg.node_id)
    })
    .await
    .map_err(|e| match e.abort() {
        Some((m, 1)) if m == "staking" => AgentError::Other(format!(
            "the ledger refused the stake of {} MIST: below the minimum node stake",
            cfg.stake_amount
        )),
        _ => AgentError::Wallet(e),
    })?;
    tracing::info!(amount = cfg.stake_amount, node = %cfg.node_id, "staked");
    Ok(())
}

/// A valid node seal token of ours, issuing one if needed.
pub async fn ensure_seal_token(w: &Wallet) -> Result<sui_sdk_types::Address, AgentError> {
    for t in w.ledger.seal_tokens_of(w.address()).await? {
        if t.owner == w.address() && t.role == ROLE_NODE && w.ledger.seal_token_valid(t.id).await? {
            return Ok(t.id);
        }
    }
    let eff = w.execute(tx::issue_seal_token).await?;
    for (r, _) in &eff.created {
        let id = *r.object_id();
        if let Some(t) = w.ledger.seal_token(id).await? {
            if t.owner == w.address() {
                tracing::info!(token = %id, expiry_epoch = t.expiry_epoch, "seal token issued");
                return Ok(id);
            }
        }
    }
    Err(AgentError::Other(
        "issue_seal_token created no seal token".into(),
    ))
}

/// The master's measurement is pinned by the ledger's registered enclave configuration (plus any
/// `expected_pcrs` of the config file); without a registered configuration the agent refuses to
/// join unless `expected_pcrs` are given.
fn policy(cfg: &AgentConfig, ledger: &Arc<dyn Ledger>) -> Result<AttestationPolicy, AgentError> {
    AttestationPolicy::from_options(
        cfg.trust_root.as_deref(),
        cfg.expected_pcrs.iter().map(|(i, v)| (*i, v.as_str())),
        Some(ledger.clone()),
    )
    .map_err(|e| AgentError::Other(e.to_string()))
}

/// Write a fresh credential for the attested master's cluster (its audience) to the token file
/// kube re-reads.
fn write_credential(
    cfg: &AgentConfig,
    master: &AttestedMaster,
    token: sui_sdk_types::Address,
    path: &std::path::Path,
) -> Result<(), AgentError> {
    let c = credential::issue(
        &cfg.key,
        token,
        &master.audience(),
        now_ms(),
        CREDENTIAL_TTL_MS,
    )?;
    // Mode 0600 from the start: the credential is a bearer token.
    Ok(crate::config::write_private_file(path, c.as_bytes())?)
}

async fn kube_client(
    m: &AttestedMaster,
    token_file: &std::path::Path,
) -> Result<kube::Client, AgentError> {
    let url: http::Uri = m
        .url
        .parse()
        .map_err(|e| AgentError::Other(format!("master url: {e}")))?;
    let mut kc = kube::Config::new(url);
    let der = rustls::pki_types::pem::PemObject::pem_slice_iter(m.ca_pem.as_bytes())
        .filter_map(|c: Result<rustls::pki_types::CertificateDer<'static>, _>| c.ok())
        .map(|c| c.to_vec())
        .collect::<Vec<_>>();
    kc.root_cert = Some(der);
    kc.auth_info.token_file = Some(token_file.display().to_string());
    kc.default_namespace = "default".into();
    Ok(kube::Client::try_from(kc)?)
}

pub(crate) fn mem_total_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn node_status(cfg: &AgentConfig, kubelet_port: u16, ready: bool) -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_ki = mem_total_bytes() / 1024;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let capacity = json!({"cpu": cpus.to_string(), "memory": format!("{mem_ki}Ki"), "pods": "110"});
    let now = now_rfc3339();
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "message": if ready { "daas agent is posting ready status" } else { "container runtime is not ready" },
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }],
        "addresses": [
            {"type": "InternalIP", "address": cfg.node_ip.to_string()},
            {"type": "Hostname", "address": cfg.node_id},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": kernel,
            "osImage": "K3s-DaaS staker host",
            "containerRuntimeVersion": "containerd://1.6",
            "kubeletVersion": format!("v1.33.0-daas.{}", env!("CARGO_PKG_VERSION")),
            "kubeProxyVersion": "",
            "operatingSystem": std::env::consts::OS,
            "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        },
    })
}

async fn register_node(
    api: &Api<Node>,
    cfg: &AgentConfig,
    port: u16,
    cert_sha: &[u8; 32],
) -> Result<(), AgentError> {
    let meta = json!({
        "name": cfg.node_id,
        "labels": {
            "kubernetes.io/hostname": cfg.node_id,
            "kubernetes.io/os": std::env::consts::OS,
        },
        "annotations": {
            KUBELET_CERT_ANNOTATION: hex::encode(cert_sha),
        },
    });
    match api.get_opt(&cfg.node_id).await? {
        None => {
            let node: Node = serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": meta,
                "spec": {"podCIDR": cfg.pod_cidr, "podCIDRs": [cfg.pod_cidr]}}),
            )
            .map_err(|e| AgentError::Other(e.to_string()))?;
            api.create(&PostParams::default(), &node).await?;
        }
        Some(_) => {
            api.patch(
                &cfg.node_id,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": meta, "spec": {"unschedulable": null}})),
            )
            .await?;
        }
    }
    api.patch_status(
        &cfg.node_id,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": node_status(cfg, port, true)})),
    )
    .await?;
    Ok(())
}

async fn renew_lease(api: &Api<Lease>, node: &str, duration: Duration) -> Result<(), AgentError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let secs = (duration.as_secs() * 4).max(10);
    match api.get_opt(node).await? {
        Some(_) => {
            api.patch(node, &PatchParams::default(), &Patch::Merge(json!({"spec": {"holderIdentity": node, "renewTime": now, "leaseDurationSeconds": secs}})))
                .await?;
        }
        None => {
            let lease: Lease = serde_json::from_value(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": secs, "acquireTime": now, "renewTime": now}}))
            .map_err(|e| AgentError::Other(e.to_string()))?;
            api.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

/// Everything the agent runs, once joined.
pub struct Joined {
    pub client: kube::Client,
    pub master: AttestedMaster,
    pub kubelet_addr: std::net::SocketAddr,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Stake, get a seal token, verify the master, register the Node and start heartbeats and pod sync.
pub async fn join(
    cfg: AgentConfig,
    ledger: Arc<dyn Ledger>,
    runtime: Arc<dyn Runtime>,
) -> Result<Joined, AgentError> {
    cfg.secure_files()?;
    let wallet = Wallet::new(ledger.clone(), cfg.key.clone());
    if let Some(pkg) = &cfg.contract_address {
        let d = ledger.deployment().await?;
        if pkg.to_lowercase() != d.package.to_string().to_lowercase() {
            return Err(AgentError::Other(format!(
                "contract_address {pkg} is not the package this ledger runs ({})",
                d.package
            )));
        }
    }
    ensure_stake(&wallet, &cfg).await?;
    let token = ensure_seal_token(&wallet).await?;

    // Attested TLS before any credential leaves this host.
    let master = attest(&cfg.master_url, &policy(&cfg, &ledger)?).await?;
    let master_key = master
        .attestation
        .public_key
        .as_ref()
        .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| {
            AgentError::Other("the master's attestation carries no Ed25519 public key".into())
        })?;
    tracing::info!(master = %master.url, cluster = %master.cluster_id, source = ?master.measurement_source, "master attestation verified");

    let token_file = cfg.data_dir.join("credential.token");
    write_credential(&cfg, &master, token, &token_file)?;
    let client = kube_client(&master, &token_file).await?;

    let pods = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let (cert_pem, key_pem, cert_sha) =
        server::serving_identity(&cfg.data_dir.join("pki"), cfg.node_ip)
            .map_err(|e| AgentError::Other(format!("kubelet certificate: {e}")))?;
    let metrics = Arc::new(daas_master::metrics::Metrics::new());
    let st = KubeletState {
        runtime: runtime.clone(),
        master_key,
        pods: pods.clone(),
        metrics: metrics.clone(),
    };
    let (kubelet_addr, server_task) = server::serve(cfg.kubelet_listen, &cert_pem, &key_pem, st)
        .await
        .map_err(|e| AgentError::Other(format!("kubelet endpoint {}: {e}", cfg.kubelet_listen)))?;

    let nodes: Api<Node> = Api::all(client.clone());
    register_node(&nodes, &cfg, kubelet_addr.port(), &cert_sha).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    renew_lease(&leases, &cfg.node_id, cfg.heartbeat).await?;
    tracing::info!(node = %cfg.node_id, kubelet = %kubelet_addr, "node registered");

    let mut tasks = vec![server_task];
    // Credential refresh.
    {
        let cfg = cfg.clone();
        let master = master.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(CREDENTIAL_REFRESH).await;
                if let Err(e) = write_credential(&cfg, &master, token, &token_file) {
                    tracing::warn!(error = %e, "credential refresh failed");
                }
            }
        }));
    }
    // Heartbeat: Lease every period, Node status every third.
    {
        let cfg = cfg.clone();
        let port = kubelet_addr.port();
        let metrics = metrics.clone();
        tasks.push(tokio::spawn(async move {
            let mut n: u64 = 0;
            loop {
                tokio::time::sleep(cfg.heartbeat).await;
                n += 1;
                let ok = match renew_lease(&leases, &cfg.node_id, cfg.heartbeat).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "lease renewal failed");
                        false
                    }
                };
                metrics.inc(
                    "daas_agent_lease_renewals_total",
                    "Lease renewals (the heartbeat) by result.",
                    &[("result", if ok { "ok" } else { "error" })],
                    1.0,
                );
                if n.is_multiple_of(3) {
                    let status = json!({"status": node_status(&cfg, port, true)});
                    if let Err(e) = nodes
                        .patch_status(&cfg.node_id, &PatchParams::default(), &Patch::Merge(status))
                        .await
                    {
                        tracing::warn!(error = %e, "node status update failed");
                    }
                }
            }
        }));
    }
    tasks.push(tokio::spawn(pod_sync(
        client.clone(),
        cfg.clone(),
        runtime,
        pods,
        metrics,
    )));
    Ok(Joined {
        client,
        master,
        kubelet_addr,
        tasks,
    })
}

/// Leave the cluster: cordon the node, evict its pods (their controllers recreate them on other
/// nodes), then start the unstake lockup on the ledger. Withdraw with `daas withdraw` once the
/// lockup is over.
pub async fn drain_and_unstake(
    cfg: AgentConfig,
    ledger: Arc<dyn Ledger>,
) -> Result<u64, AgentError> {
    cfg.secure_files()?;
    let wallet = Wallet::new(ledger.clone(), cfg.key.clone());
    let token = ensure_seal_token(&wallet).await?;
    let master = attest(&cfg.master_url, &policy(&cfg, &ledger)?).await?;
    let token_file = cfg.data_dir.join("credential.token");
    write_credential(&cfg, &master, token, &token_file)?;
    let client = kube_client(&master, &token_file).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            &cfg.node_id,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await?;
    tracing::info!(node = %cfg.node_id, "cordoned");
    let pods: Api<Pod> = Api::all(client.clone());
    let lp = kube::api::ListParams::default().fields(&format!("spec.nodeName={}", cfg.node_id));
    for p in pods.list(&lp).await?.items {
        let (Some(ns), Some(name)) = (p.metadata.namespace.clone(), p.metadata.name.clone()) else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(pod = %format!("{ns}/{name}"), "evicted"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Wait (bounded) until the pods are gone, so workloads move before the stake stops validating.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if pods.list(&lp).await?.items.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    wallet.execute(tx::request_unstake).await?;
    let unlock = ledger
        .stake(wallet.address())
        .await?
        .map(|r| r.unlock_epoch)
        .unwrap_or_default();
    tracing::info!(unlock_epoch = unlock, "unstake requested");
    Ok(unlock)
}

// ------------------------------------------------------------------------------------------- pods

struct Tracked {
    pod: Pod,
    started: bool,
    last_status: Value,
    backoff: HashMap<String, (Instant, Duration)>,
    /// After a failed start: not before this instant, and the next delay.
    start_backoff: Option<(Instant, Duration)>,
    /// The spec as started (env resolved, volumes mounted), reused for container restarts.
    resolved: Option<PodSpecLite>,
    /// Refused by node admission (the Warning event is recorded once).
    rejected: bool,
    /// When the pod's configMap/secret/downwardAPI/projected volumes were last written.
    volumes_synced: Option<Instant>,
}

/// How often a running pod's atomic-writer volumes are synced (new content, token renewal).
const VOLUME_SYNC: Duration = Duration::from_secs(60);

/// Watch the pods bound to this node and keep the runtime in line with them.
async fn pod_sync(
    client: kube::Client,
    cfg: AgentConfig,
    runtime: Arc<dyn Runtime>,
    index: Arc<std::sync::Mutex<HashMap<(String, String), String>>>,
    metrics: Arc<daas_master::metrics::Metrics>,
) {
    let api: Api<Pod> = Api::all(client.clone());
    let wc =
        kube::runtime::watcher::Config::default().fields(&format!("spec.nodeName={}", cfg.node_id));
    let mut stream = kube::runtime::watcher(api.clone(), wc).boxed();
    let mut desired: BTreeMap<String, Pod> = BTreeMap::new();
    let mut init: Option<BTreeMap<String, Pod>> = None;
    let mut tracked: HashMap<String, Tracked> = HashMap::new();
    // Re-adopt what the runtime already runs (agent restart).
    match runtime.list_pods().await {
        Ok(list) => {
            for p in list {
                tracing::info!(pod = %format!("{}/{}", p.namespace, p.name), "found running pod from before restart");
                tracked.insert(
                    p.uid.clone(),
                    Tracked {
                        pod: Pod::default(),
                        started: true,
                        last_status: Value::Null,
                        backoff: HashMap::new(),
                        start_backoff: None,
                        resolved: None,
                        rejected: false,
                        volumes_synced: None,
                    },
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing runtime pods failed"),
    }
    let admission = NodeAdmission::for_agent(
        &cfg.data_dir,
        cfg.key_file.as_deref(),
        cfg.config_file.as_deref(),
        cfg.containerd_socket.as_deref(),
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = stream.next() => {
                match ev {
                    Some(Ok(kube::runtime::watcher::Event::Apply(p))) | Some(Ok(kube::runtime::watcher::Event::InitApply(p))) => {
                        if let Some(uid) = p.metadata.uid.clone() {
                            match &mut init { Some(m) => { m.insert(uid, p); } None => { desired.insert(uid, p); } }
                        }
                    }
                    Some(Ok(kube::runtime::watcher::Event::Delete(p))) => {
                        if let Some(uid) = &p.metadata.uid { desired.remove(uid); }
                    }
                    Some(Ok(kube::runtime::watcher::Event::Init)) => init = Some(BTreeMap::new()),
                    Some(Ok(kube::runtime::watcher::Event::InitDone)) => { if let Some(m) = init.take() { desired = m; } }
                    Some(Err(e)) => { tracing::debug!(error = %e, "pod watch error; retrying"); tokio::time::sleep(Duration::from_secs(1)).await; }
                    None => break,
                }
            }
            _ = tick.tick() => {
                if init.is_none() {
                    reconcile(&api, &runtime, &desired, &mut tracked, &index, &cfg, &metrics, &admission).await;
                }
                crate::volumes::reclaim(&client, &cfg.node_id, &cfg.data_dir).await;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)] // the sync loop's state, passed down as borrowed pieces
async fn reconcile(
    api: &Api<Pod>,
    runtime: &Arc<dyn Runtime>,
    desired: &BTreeMap<String, Pod>,
    tracked: &mut HashMap<String, Tracked>,
    index: &Arc<std::sync::Mutex<HashMap<(String, String), String>>>,
    cfg: &AgentConfig,
    metrics: &daas_master::metrics::Metrics,
    admission: &NodeAdmission,
) {
    // Pods gone from the API: stop and remove.
    let gone: Vec<String> = tracked
        .keys()
        .filter(|u| !desired.contains_key(*u))
        .cloned()
        .collect();
    for uid in gone {
        let _ = runtime.stop_pod(&uid, Duration::from_secs(5)).await;
        if let Err(e) = runtime.remove_pod(&uid).await {
            tracing::warn!(%uid, error = %e, "removing pod failed");
        }
        let _ = std::fs::remove_dir_all(crate::volumes::pod_volumes_dir(&cfg.data_dir, &uid));
        tracked.remove(&uid);
    }
    for (uid, pod) in desired {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Ok(mut ix) = index.lock() {
            ix.insert((ns.clone(), name.clone()), uid.clone());
        }
        let t = tracked.entry(uid.clone()).or_insert_with(|| Tracked {
            pod: pod.clone(),
            started: false,
            last_status: Value::Null,
            backoff: HashMap::new(),
            start_backoff: None,
            resolved: None,
            rejected: false,
            volumes_synced: None,
        });
        t.pod = pod.clone();
        let pods_ns: Api<Pod> = Api::namespaced(api.clone().into_client(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .max(0) as u64;
            let _ = runtime
                .stop_pod(uid, Duration::from_secs(grace.min(30)))
                .await;
            let _ = runtime.remove_pod(uid).await;
            let _ = std::fs::remove_dir_all(crate::volumes::pod_volumes_dir(&cfg.data_dir, uid));
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            if let Err(e) = pods_ns.delete(&name, &dp).await {
                tracing::debug!(pod = %name, error = %e, "final delete failed");
            }
            continue;
        }
        let terminal = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        let spec = match PodSpecLite::from_pod(pod) {
            Ok(s) => s,
            Err(e) => {
                set_status(
                    &pods_ns,
                    &name,
                    t,
                    json!({"phase": "Failed", "reason": "InvalidSpec", "message": e.to_string()}),
                )
                .await;
                continue;
            }
        };
        if !t.started && !terminal {
            if let Some((not_before, _)) = t.start_backoff {
                if Instant::now() < not_before {
                    continue;
                }
            }
            // Node admission first: a pod that could reach the host gets nothing created, not even
            // its hostPath directories.
            if let Err(rejection) = admission.check(pod) {
                if !t.rejected {
                    tracing::warn!(pod = %format!("{ns}/{name}"), reason = %rejection, "pod rejected by node admission");
                    metrics.inc(
                        "daas_agent_pod_rejections_total",
                        "Pods refused by node admission.",
                        &[],
                        1.0,
                    );
                    record_rejection_event(&api.clone().into_client(), pod, &rejection, cfg).await;
                    t.rejected = true;
                }
                let status = json!({"phase": "Failed", "reason": REJECT_REASON, "message": rejection.status_message()});
                set_status(&pods_ns, &name, t, status).await;
                continue;
            }
            // env sources and volumes; a missing ConfigMap/Secret is retried with back-off.
            let mut spec = spec.clone();
            if let Err(why) = crate::volumes::prepare(
                &api.clone().into_client(),
                pod,
                &mut spec,
                &cfg.data_dir,
                admission,
            )
            .await
            {
                tracing::info!(pod = %name, reason = %why, "pod cannot start yet");
                let delay = t
                    .start_backoff
                    .map(|(_, d)| (d * 2).min(Duration::from_secs(60)))
                    .unwrap_or(Duration::from_secs(2));
                t.start_backoff = Some((Instant::now() + delay, delay));
                let cs: Vec<Value> = spec
                    .containers
                    .iter()
                    .map(|c| {
                        json!({"name": c.name, "image": c.image, "imageID": "",
                    "ready": false, "restartCount": 0, "started": false,
                    "state": {"waiting": {"reason": "CreateContainerConfigError", "message": why}}})
                    })
                    .collect();
                set_status(&pods_ns, &name, t, json!({"phase": "Pending", "hostIP": cfg.node_ip.to_string(), "containerStatuses": cs})).await;
                continue;
            }
            match runtime.run_pod(&spec).await {
                Ok(_) => {
                    t.started = true;
                    t.start_backoff = None;
                    t.volumes_synced = Some(Instant::now());
                    t.resolved = Some(spec.clone());
                    metrics.inc(
                        "daas_agent_pod_starts_total",
                        "Pods started in the container runtime.",
                        &[],
                        1.0,
                    );
                }
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "starting pod failed");
                    metrics.inc(
                        "daas_agent_pod_start_failures_total",
                        "Failed pod starts.",
                        &[],
                        1.0,
                    );
                    let pull =
                        e.to_string().contains("pull") || e.to_string().contains("not present");
                    let reason = match (pull, t.start_backoff.is_some()) {
                        _ if matches!(e, RuntimeError::NonRootPolicy(_)) => {
                            "CreateContainerConfigError"
                        }
                        (true, false) => "ErrImagePull",
                        (true, true) => "ImagePullBackOff",
                        (false, _) => "CreateContainerError",
                    };
                    let delay = t
                        .start_backoff
                        .map(|(_, d)| (d * 2).min(Duration::from_secs(300)))
                        .unwrap_or(Duration::from_secs(5));
                    t.start_backoff = Some((Instant::now() + delay, delay));
                    let cs: Vec<Value> = spec.containers.iter().map(|c| json!({"name": c.name, "image": c.image, "imageID": "", "ready": false,
                        "restartCount": 0, "started": false, "state": {"waiting": {"reason": reason, "message": e.to_string()}}})).collect();
                    set_status(&pods_ns, &name, t, json!({"phase": "Pending", "hostIP": cfg.node_ip.to_string(), "containerStatuses": cs})).await;
                    continue;
                }
            }
        }
        let Ok(rs) = runtime.pod_status(uid).await else {
            continue;
        };
        if t.resolved.is_none() && t.started {
            // Adopted after an agent restart: resolve env and volumes again for future restarts.
            let mut resolved = spec.clone();
            if crate::volumes::prepare(
                &api.clone().into_client(),
                pod,
                &mut resolved,
                &cfg.data_dir,
                admission,
            )
            .await
            .is_ok()
            {
                t.resolved = Some(resolved);
            }
        }
        if t.started
            && !terminal
            && t.volumes_synced
                .is_none_or(|at| at.elapsed() >= VOLUME_SYNC)
        {
            t.volumes_synced = Some(Instant::now());
            if let Err(e) =
                crate::volumes::refresh(&api.clone().into_client(), pod, &cfg.data_dir).await
            {
                tracing::info!(pod = %name, error = %e, "volume sync failed; keeping the current content");
            }
        }
        // Restart policy.
        for c in &rs.containers {
            if let ContainerState::Exited { code, .. } = &c.state {
                if spec.restart_policy.should_restart(*code) && !terminal {
                    let (next, delay) = t
                        .backoff
                        .get(&c.name)
                        .cloned()
                        .unwrap_or((Instant::now(), Duration::from_secs(10)));
                    if Instant::now() >= next {
                        if let Err(e) = runtime
                            .restart_container(t.resolved.as_ref().unwrap_or(&spec), &c.name)
                            .await
                        {
                            tracing::warn!(pod = %name, container = %c.name, error = %e, "restart failed");
                        }
                        metrics.inc(
                            "daas_agent_container_restarts_total",
                            "Container restarts by the restart policy.",
                            &[],
                            1.0,
                        );
                        t.backoff.insert(
                            c.name.clone(),
                            (
                                Instant::now() + delay,
                                (delay * 2).min(Duration::from_secs(300)),
                            ),
                        );
                    }
                }
            }
        }
        let status = pod_status_json(&spec, &rs, pod, cfg);
        set_status(&pods_ns, &name, t, status).await;
    }
}

/// The Warning event of a pod refused by node admission, as the kubelet records one.
async fn record_rejection_event(
    client: &kube::Client,
    pod: &Pod,
    rejection: &Rejection,
    cfg: &AgentConfig,
) {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let now = chrono::Utc::now();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{:x}", now.timestamp_nanos_opt().unwrap_or_default()), "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name,
            "uid": pod.metadata.uid.clone().unwrap_or_default()},
        "type": "Warning",
        "reason": REJECT_REASON,
        "message": rejection.message(),
        "source": {"component": "kubelet", "host": cfg.node_id},
        "reportingComponent": "kubelet",
        "reportingInstance": cfg.node_id,
        "firstTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "lastTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "count": 1,
    });
    let ev: k8s_openapi::api::core::v1::Event = match serde_json::from_value(event) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(error = %e, "building the rejection event failed");
            return;
        }
    };
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::warn!(pod = %name, error = %e, "recording the rejection event failed");
    }
}

async fn set_status(api: &Api<Pod>, name: &str, t: &mut Tracked, status: Value) {
    let mut cmp = status.clone();
    strip_times(&mut cmp);
    if cmp == t.last_status {
        return;
    }
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(_) => t.last_status = cmp,
        Err(e) => tracing::debug!(pod = %name, error = %e, "status update failed"),
    }
}

fn strip_times(v: &mut Value) {
    if let Some(conds) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conds {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastTransitionTime");
            }
        }
    }
}

fn pod_status_json(
    spec: &PodSpecLite,
    rs: &crate::runtime::PodRuntimeStatus,
    pod: &Pod,
    cfg: &AgentConfig,
) -> Value {
    let mut statuses = Vec::new();
    let (mut running, mut exited_ok, mut exited_fail) = (0, 0, 0);
    for c in &spec.containers {
        let r = rs.containers.iter().find(|x| x.name == c.name);
        let (state, ready, started) = match r.map(|r| &r.state) {
            Some(ContainerState::Running { started_at }) => {
                running += 1;
                (
                    json!({"running": {"startedAt": started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}}),
                    true,
                    true,
                )
            }
            Some(ContainerState::Exited {
                code,
                reason,
                finished_at,
            }) => {
                if *code == 0 {
                    exited_ok += 1
                } else {
                    exited_fail += 1
                }
                let reason = if reason.is_empty() {
                    if *code == 0 {
                        "Completed".to_string()
                    } else {
                        "Error".to_string()
                    }
                } else {
                    reason.clone()
                };
                (
                    json!({"terminated": {"exitCode": code, "reason": reason,
                    "finishedAt": finished_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}}),
                    false,
                    false,
                )
            }
            Some(ContainerState::Waiting { reason }) => {
                (json!({"waiting": {"reason": reason}}), false, false)
            }
            None => (
                json!({"waiting": {"reason": "ContainerCreating"}}),
                false,
                false,
            ),
        };
        statuses.push(json!({
            "name": c.name,
            "image": c.image,
            "imageID": r.map(|r| r.image_id.clone()).unwrap_or_default(),
            "containerID": r.map(|r| r.container_id.clone()).unwrap_or_default(),
            "restartCount": r.map(|r| r.restart_count).unwrap_or(0),
            "ready": ready,
            "started": started,
            "state": state,
        }));
    }
    let n = spec.containers.len();
    let phase = if running == n {
        "Running"
    } else if exited_ok + exited_fail == n && n > 0 {
        match spec.restart_policy {
            RestartPolicy::Never if exited_fail > 0 => "Failed",
            RestartPolicy::Never | RestartPolicy::OnFailure if exited_fail == 0 => "Succeeded",
            _ => "Running",
        }
    } else if running > 0 || exited_ok + exited_fail > 0 {
        "Running"
    } else {
        "Pending"
    };
    let all_ready = running == n && n > 0;
    let now = now_rfc3339();
    let cond = |t: &str, ok: bool| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|_| Value::Null)
        .unwrap_or_else(|| json!(now));
    let mut status = json!({
        "phase": phase,
        "hostIP": cfg.node_ip.to_string(),
        "hostIPs": [{"ip": cfg.node_ip.to_string()}],
        "conditions": [cond("PodScheduled", true), cond("Initialized", true), cond("ContainersReady", all_ready), cond("Ready", all_ready)],
        "containerStatuses": statuses,
    });
    if !start_time.is_null() {
        status["startTime"] = start_time;
    }
    if let Some(ip) = &rs.ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}
