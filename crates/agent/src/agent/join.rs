//! Joining the cluster: attest the masters before any credential leaves the host, write the
//! credential, build the Kubernetes client (failing over between the masters, see
//! [`super::masters`]), register and start the node's tasks; and leaving it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daas_ledger::wallet::Wallet;
use daas_ledger::{credential, tx, Ledger};
use daas_protocol::attested::{AttestationPolicy, AttestedMaster};
use daas_protocol::now_ms;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::masters::{Bearer, MasterSet};
use super::node::{node_status, register_node, renew_lease, ConditionTimes, HostFacts};
use super::stake::{ensure_seal_token, ensure_stake};
use super::{pods, AgentError};
use crate::config::AgentConfig;
use crate::runtime::Runtime;
use crate::server::{self, KubeletState};

/// Credential lifetime; it is rewritten well before it expires.
const CREDENTIAL_TTL_MS: u64 = 10 * 60 * 1000;
const CREDENTIAL_REFRESH: Duration = Duration::from_secs(4 * 60);
/// Lease renewal attempts per heartbeat, and the pause between two.
const LEASE_RETRIES: u32 = 5;
const LEASE_RETRY_DELAY: Duration = Duration::from_millis(200);

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

/// Write a fresh credential for the cluster (its audience `k3s-daas:<cluster id>`, the same for
/// every master) to the token file the client reads for each request.
fn write_credential(
    cfg: &AgentConfig,
    audience: &str,
    token: sui_sdk_types::Address,
    path: &std::path::Path,
) -> Result<(), AgentError> {
    let c = credential::issue(&cfg.key, token, audience, now_ms(), CREDENTIAL_TTL_MS)?;
    // Mode 0600 from the start: the credential is a bearer token.
    Ok(crate::config::write_private_file(path, c.as_bytes())?)
}

/// Attest the configured masters (at least one must verify, all verified ones must be of one
/// cluster), write the credential and build the failover client with its prober.
async fn connect(
    cfg: &AgentConfig,
    ledger: &Arc<dyn Ledger>,
    token: sui_sdk_types::Address,
) -> Result<(MasterSet, AttestedMaster, kube::Client), AgentError> {
    // Attested TLS before any credential leaves this host.
    let token_file = cfg.data_dir.join("credential.token");
    let masters = MasterSet::attest(
        &cfg.master_urls,
        policy(cfg, ledger)?,
        Bearer::File(token_file.clone()),
        cfg.failover,
    )
    .await?;
    let master = masters
        .attested()
        .into_iter()
        .next()
        .ok_or_else(|| AgentError::Other("no master attested".into()))?;
    for m in masters.attested() {
        tracing::info!(master = %m.url, cluster = %m.cluster_id, source = ?m.measurement_source, "master attestation verified");
    }
    write_credential(cfg, &masters.audience(), token, &token_file)?;
    let client = masters.kube_client();
    Ok((masters, master, client))
}

/// Sets up the container runtime's pod network once the node's pod CIDR is known: called with
/// the pod CIDR and the MTU pods should use (`None`: the CNI default), before any pod starts.
pub type CniSetup = Box<dyn FnOnce(&str, Option<u32>) -> Result<(), AgentError> + Send>;

/// Everything the agent runs, once joined.
pub struct Joined {
    pub client: kube::Client,
    /// The first master attested at join.
    pub master: AttestedMaster,
    /// Every master of the cluster (attested, or to attest when it answers) and the failover.
    pub masters: MasterSet,
    pub kubelet_addr: std::net::SocketAddr,
    /// Heartbeats, node status and the kubelet endpoint.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Pod sync; on [`Joined::shutdown`] it drains the node first.
    pub pod_sync: tokio::task::JoinHandle<()>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    grace: crate::config::ShutdownGrace,
}

impl Joined {
    /// Leave: with a shutdown grace period configured (the kubelet's graceful node shutdown),
    /// the heartbeats stop, the node is reported not ready and its pods are stopped (regular
    /// ones, then critical ones, each within its window) and reported Failed; then every task
    /// ends.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        let mut pod_sync = self.pod_sync;
        if self.grace.enabled() && self.shutdown_tx.send(true).is_ok() {
            // The windows, plus time for the status writes.
            let limit = self.grace.total + std::time::Duration::from_secs(5);
            if tokio::time::timeout(limit, &mut pod_sync).await.is_err() {
                tracing::warn!("the node drain did not finish within the shutdown grace period");
            }
        }
        pod_sync.abort();
    }
}

/// Stake, get a seal token, verify the master, register the Node, wait for its pod CIDR (when
/// the config names none), set up the pod network (`cni`, then the overlay and masquerade of
/// [`crate::net::podnet`]) and start heartbeats and pod sync.
pub async fn join(
    cfg: AgentConfig,
    ledger: Arc<dyn Ledger>,
    runtime: Arc<dyn Runtime>,
    cni: Option<CniSetup>,
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

    let (masters, master, client) = connect(&cfg, &ledger, token).await?;
    let token_file = cfg.data_dir.join("credential.token");

    let pods = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let (cert_pem, key_pem, cert_sha) =
        server::serving_identity(&cfg.data_dir.join("pki"), cfg.node_ip)
            .map_err(|e| AgentError::Other(format!("kubelet certificate: {e}")))?;
    let metrics = Arc::new(daas_protocol::metrics::Metrics::new());
    let stats = Arc::new(crate::stats::Collector::host());
    let st = KubeletState {
        runtime: runtime.clone(),
        master_keys: masters.keys(),
        pods: pods.clone(),
        metrics: metrics.clone(),
        stats: stats.clone(),
        node_name: cfg.node_id.clone(),
    };
    let (kubelet_addr, server_task) = server::serve(cfg.kubelet_listen, &cert_pem, &key_pem, st)
        .await
        .map_err(|e| AgentError::Other(format!("kubelet endpoint {}: {e}", cfg.kubelet_listen)))?;

    let nodes: Api<Node> = Api::all(client.clone());
    let mut times = ConditionTimes::default();
    let host = HostFacts::gather(&cfg, runtime.as_ref()).await;
    register_node(
        &nodes,
        &cfg,
        kubelet_addr.port(),
        &cert_sha,
        &host,
        &mut times,
    )
    .await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    renew_lease(&leases, &cfg.node_id, cfg.heartbeat).await?;
    tracing::info!(node = %cfg.node_id, kubelet = %kubelet_addr, "node registered");

    let mut tasks = vec![server_task, masters.spawn_prober()];
    // The pod network: the pod CIDR (configured, or assigned by the master), CNI, then the
    // overlay and masquerade, before any pod is started.
    let pod_cidr = match &cfg.pod_cidr {
        Some(c) => c.clone(),
        None => {
            // Stay alive meanwhile: a node that never renews its Lease is declared dead.
            let keepalive = {
                let (leases, node, period) = (leases.clone(), cfg.node_id.clone(), cfg.heartbeat);
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(period).await;
                        if let Err(e) = renew_lease(&leases, &node, period).await {
                            tracing::warn!(error = %e, "lease renewal failed");
                        }
                    }
                })
            };
            let c = crate::net::podnet::assigned_pod_cidr(&nodes, &cfg.node_id).await;
            keepalive.abort();
            let c = c?;
            tracing::info!(node = %cfg.node_id, pod_cidr = %c, "pod CIDR assigned by the master");
            c
        }
    };
    let mut podnet = crate::net::podnet::PodNetwork::new(
        crate::net::podnet::PodNetConfig {
            node_name: cfg.node_id.clone(),
            node_ip: cfg.node_ip,
            pod_cidr: pod_cidr.clone(),
            backend: cfg.flannel_backend,
            table: crate::net::podnet::table_name(&cfg.bridge_name),
            wireguard_port: cfg.wireguard_port,
        },
        Arc::new(crate::net::podnet::links::IpCli::default()),
        Arc::new(crate::net::nft::NftCli::default()),
    );
    if let (crate::net::podnet::Backend::Wireguard, std::net::IpAddr::V4(local)) =
        (cfg.flannel_backend, cfg.node_ip)
    {
        if podnet.config().overlay() {
            use crate::net::podnet::wg;
            let tunnel = wg::load_or_create_key(&cfg.data_dir)
                .and_then(|key| wg::WgTunnel::open(key, local, cfg.wireguard_port))
                .map_err(|e| AgentError::Other(format!("pod network: {e}")))?;
            tunnel
                .start()
                .map_err(|e| AgentError::Other(format!("pod network: wireguard threads: {e}")))?;
            tracing::info!(port = cfg.wireguard_port, public_key = %wg::Tunnel::public_key(tunnel.as_ref()), "wireguard tunnel up");
            podnet = podnet.with_tunnel(tunnel);
        }
    }
    if let Some(setup) = cni {
        let mtu = podnet
            .pod_mtu()
            .await
            .map_err(|e| AgentError::Other(format!("pod network: {e}")))?;
        setup(&pod_cidr, mtu)?;
    }
    tasks.push(crate::net::podnet::spawn(client.clone(), podnet));
    // Cluster DNS on the node gateway address.
    tasks.extend(crate::net::dns::spawn(client.clone(), &cfg, &pod_cidr));
    // The built-in ingress proxy on the node's address.
    tasks.extend(crate::net::ingress::start(
        &client,
        crate::net::ingress::IngressConfig {
            node_ip: cfg.node_ip,
            http_port: cfg.ingress_http_port,
            https_port: cfg.ingress_https_port,
        },
    ));
    // Usage sampler: the base of the CPU rates the stats endpoints report.
    {
        let stats = stats.clone();
        let runtime = runtime.clone();
        let node = cfg.node_id.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                stats.collect(&node, runtime.as_ref(), true).await;
                tokio::time::sleep(crate::stats::SAMPLE_INTERVAL).await;
            }
        }));
    }
    // Credential refresh: signed here, for the cluster's audience, whichever master serves.
    {
        let cfg = cfg.clone();
        let audience = masters.audience();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(CREDENTIAL_REFRESH).await;
                if let Err(e) = write_credential(&cfg, &audience, token, &token_file) {
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
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            let mut n: u64 = 0;
            loop {
                tokio::time::sleep(cfg.heartbeat).await;
                n += 1;
                // A renewal that fails (its master died mid-request) is retried at once on the
                // next master, like the kubelet's lease controller retries an update.
                let mut ok = false;
                for attempt in 0..LEASE_RETRIES {
                    match renew_lease(&leases, &cfg.node_id, cfg.heartbeat).await {
                        Ok(()) => {
                            ok = true;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "lease renewal failed");
                            tokio::time::sleep(LEASE_RETRY_DELAY).await;
                        }
                    }
                }
                metrics.inc(
                    "daas_agent_lease_renewals_total",
                    "Lease renewals (the heartbeat) by result.",
                    &[("result", if ok { "ok" } else { "error" })],
                    1.0,
                );
                if n.is_multiple_of(3) {
                    let host = HostFacts::gather(&cfg, runtime.as_ref()).await;
                    let status =
                        json!({"status": node_status(&cfg, port, true, &host, &mut times)});
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
    // NetworkPolicy enforcement for this node's pods (the `inet daas-policy` table).
    {
        let fw: Arc<dyn crate::net::nft::Firewall> = Arc::new(crate::net::nft::NftCli::default());
        if cfg.disable_network_policy {
            crate::net::policy::disable(fw.as_ref()).await;
        } else {
            tasks.push(tokio::spawn(crate::net::policy::run(
                client.clone(),
                cfg.node_id.clone(),
                fw,
            )));
        }
    }
    // Services on this node (kube-proxy's job).
    if cfg.service_proxy {
        match crate::net::proxy::wellknown::node_gateway(&pod_cidr) {
            Some(node_gateway) => tasks.push(tokio::spawn(crate::net::proxy::run(
                client.clone(),
                Arc::new(crate::net::nft::NftCli::default()),
                Arc::new(crate::net::proxy::conntrack::ConntrackCli::default()),
                crate::net::proxy::ProxyConfig {
                    node_name: cfg.node_id.clone(),
                    node_gateway,
                    sync_period: cfg.proxy_sync,
                },
            ))),
            None => {
                tracing::warn!(pod_cidr = %pod_cidr, "no IPv4 node gateway in the pod CIDR; Services are not programmed on this node")
            }
        }
    }
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let grace = cfg.shutdown;
    let pod_sync = tokio::spawn(pods::pod_sync(
        client.clone(),
        cfg.clone(),
        runtime,
        pods,
        metrics,
        shutdown_rx,
    ));
    Ok(Joined {
        client,
        master,
        masters,
        kubelet_addr,
        tasks,
        pod_sync,
        shutdown_tx,
        grace,
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
    let (_masters, _master, client) = connect(&cfg, &ledger, token).await?;
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
