//! `daas up`: a whole local cluster — embedded ledger, master, and (when the host can run pods) a
//! local staked worker running pods through its own containerd, like `k3s server`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use daas_agent::runtime::{
    ContainerdRuntime, ManagedContainerd, ManagedContainerdConfig, Runtime, BUSYBOX_IMAGE,
};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::Ledger;
use daas_master::Master;
use tracing::Instrument;

use crate::{
    default_data_dir, load_or_create_key, master_config, open_embedded_ledger, serve_chain,
    shutdown_signal, MasterArgs,
};

/// The busybox image the local agent also tags with a fixed tag, so that
/// `kubectl create deployment --image=<it>` uses it without pulling (`:latest` means pull Always).
pub const LOCAL_IMAGE: &str = "localhost/k3s-daas/busybox:local";

/// The Debian packages the local agent needs.
pub const INSTALL_HINT: &str =
    "apt-get install containerd runc containernetworking-plugins busybox-static";

/// CNI plugins the agent's network configuration uses (bridge + host-local IPAM, portmap;
/// containerd brings up `lo` with loopback).
const CNI_PLUGINS: [&str; 4] = ["bridge", "host-local", "loopback", "portmap"];

/// MIST the local node stakes (the ledger's default minimum node stake).
const LOCAL_NODE_STAKE: u64 = 1000;
/// MIST minted to the local node key for its stake and gas.
const LOCAL_NODE_FUNDS: u64 = 5_000_000_000;
/// Grace period of the local worker's containers when `daas up` stops (SIGTERM, then SIGKILL).
const POD_STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Args, Clone)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) master: MasterArgs,
    /// Length of a ledger epoch (lockups and token expiry count epochs).
    #[arg(long, default_value_t = 3600)]
    pub epoch_seconds: u64,
    /// Where the embedded ledger's HTTP API listens (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub chain_listen: SocketAddr,
    #[command(flatten)]
    pub agent: LocalAgentArgs,
}

/// The local worker `daas up` starts when the host can run pods.
#[derive(Args, Clone)]
pub struct LocalAgentArgs {
    /// Serve the control plane only: no local staked worker.
    #[arg(long)]
    pub no_agent: bool,
    /// Node name of the local worker (default: this host's name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// containerd binary the local worker starts (default: `containerd` on PATH).
    #[arg(long, env = "DAAS_CONTAINERD")]
    pub containerd: Option<PathBuf>,
    /// Directory of the CNI plugins (Debian's containernetworking-plugins).
    #[arg(long, default_value = "/usr/lib/cni")]
    pub cni_bin_dir: PathBuf,
    /// Static busybox used to build the pod sandbox image (Debian's busybox-static).
    #[arg(long, default_value = daas_agent::runtime::image::DEFAULT_BUSYBOX)]
    pub busybox: PathBuf,
    /// Pod CIDR of the local worker.
    #[arg(long, default_value = "10.42.0.0/24")]
    pub pod_cidr: String,
    /// Linux bridge the local worker's pods attach to (at most 15 characters).
    #[arg(long, default_value = "daas0")]
    pub bridge_name: String,
    /// Port of the local worker's kubelet endpoint (logs, exec); 0 picks one.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Directory of air-gap image archives (`*.tar`) imported at start.
    #[arg(long)]
    pub images_dir: Option<PathBuf>,
}

/// What the host offers for running a local worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCheck {
    pub root: bool,
    pub containerd: Option<PathBuf>,
    pub ctr: Option<PathBuf>,
    pub runc: Option<PathBuf>,
    pub missing_cni: Vec<String>,
    pub cni_bin_dir: PathBuf,
    pub busybox: Option<PathBuf>,
    pub busybox_path: PathBuf,
}

impl HostCheck {
    pub fn probe(a: &LocalAgentArgs) -> HostCheck {
        let containerd = match &a.containerd {
            Some(p) => is_executable(p).then(|| p.clone()),
            None => which("containerd"),
        };
        // ctr ships with containerd; look beside the chosen binary first.
        let ctr = containerd
            .as_ref()
            .and_then(|c| c.parent())
            .map(|d| d.join("ctr"))
            .filter(|p| is_executable(p))
            .or_else(|| which("ctr"));
        HostCheck {
            root: is_root(),
            containerd,
            ctr,
            runc: which("runc"),
            missing_cni: CNI_PLUGINS
                .iter()
                .filter(|p| !is_executable(&a.cni_bin_dir.join(p)))
                .map(|p| p.to_string())
                .collect(),
            cni_bin_dir: a.cni_bin_dir.clone(),
            busybox: is_executable(&a.busybox).then(|| a.busybox.clone()),
            busybox_path: a.busybox.clone(),
        }
    }

    /// Everything missing, one item each; empty when a local worker can start.
    pub fn missing(&self) -> Vec<String> {
        let mut m = Vec::new();
        if !self.root {
            m.push("root privileges (containers need them: run `sudo daas up`)".to_string());
        }
        if self.containerd.is_none() {
            m.push("containerd (package containerd)".to_string());
        } else if self.ctr.is_none() {
            m.push("ctr next to containerd (package containerd)".to_string());
        }
        if self.runc.is_none() {
            m.push("runc (package runc)".to_string());
        }
        if !self.missing_cni.is_empty() {
            m.push(format!(
                "CNI plugins {} in {} (package containernetworking-plugins)",
                self.missing_cni.join(", "),
                self.cni_bin_dir.display()
            ));
        }
        if self.busybox.is_none() {
            m.push(format!(
                "a static busybox at {} for the pod sandbox image (package busybox-static)",
                self.busybox_path.display()
            ));
        }
        m
    }

    /// The message printed when the local worker cannot start.
    pub fn report(&self) -> String {
        let mut s = String::from("No local worker: this host cannot run pods yet. Missing:\n");
        for m in self.missing() {
            s.push_str(&format!("  - {m}\n"));
        }
        s.push_str(&format!(
            "Install them with `sudo {INSTALL_HINT}` and run `daas up` as root again.\n\
             Serving the control plane alone: pods stay Pending until a staker joins a node \
             (`daas agent`). Pass --no-agent to skip this check."
        ));
        s
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `name` on PATH, or in the sbin directories a non-root PATH often lacks.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A node name (RFC 1123 label) from the host name: lowercase, other characters as `-`.
pub fn node_name_from_hostname(host: &str) -> String {
    let s: String = host
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s: Vec<&str> = s
        .split('.')
        .map(|l| l.trim_matches('-'))
        .filter(|l| !l.is_empty())
        .collect();
    let s = s.join(".");
    if s.is_empty() {
        "local".to_string()
    } else {
        s.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches(['-', '.'])
            .to_string()
    }
}

fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    node_name_from_hostname(&host)
}

/// The local worker while it runs.
struct LocalAgent {
    dir: PathBuf,
    bridge: String,
    managed: ManagedContainerd,
    runtime: Arc<ContainerdRuntime>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Writes the local worker's staker-config.json (so `daas leave --config` works on it too).
fn write_staker_config(
    a: &LocalAgentArgs,
    agent_dir: &Path,
    key_path: &Path,
    address: &str,
    chain_url: &str,
    master_url: &str,
    trust_root: &Path,
) -> Result<PathBuf> {
    let mut cfg = serde_json::json!({
        "node_id": a.node_name.clone().unwrap_or_else(default_node_name),
        "sui_wallet_address": address,
        "sui_key_file": key_path,
        "sui_rpc_endpoint": chain_url,
        "stake_amount": LOCAL_NODE_STAKE,
        "nautilus_endpoint": master_url,
        "container_runtime": "containerd",
        "data_dir": agent_dir.join("data"),
        "trust_root": trust_root,
        "kubelet_port": a.kubelet_port,
        "pod_cidr": a.pod_cidr,
        "bridge_name": a.bridge_name,
    });
    if let Some(d) = &a.images_dir {
        cfg["images_dir"] = serde_json::json!(d);
    }
    let path = agent_dir.join("staker-config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

impl LocalAgent {
    async fn start(
        a: &LocalAgentArgs,
        host: &HostCheck,
        data_dir: &Path,
        ledger: Arc<dyn Ledger>,
        chain_url: &str,
        master_url: &str,
    ) -> Result<LocalAgent> {
        let agent_dir = data_dir.join("agent");
        daas_agent::config::ensure_private_dir(&agent_dir)?;
        let key_path = agent_dir.join("node.key");
        let key: SuiKeypair = load_or_create_key(&key_path)?;
        // Gas and stake for the local node, minted on the embedded ledger.
        ledger
            .faucet(key.address(), LOCAL_NODE_FUNDS)
            .await
            .map_err(|e| anyhow::anyhow!("funding the local node key: {e}"))?;
        let config_path = write_staker_config(
            a,
            &agent_dir,
            &key_path,
            &key.address().to_string(),
            chain_url,
            master_url,
            &data_dir.join("tee").join("trusted-root.pem"),
        )?;
        let cfg = daas_agent::config::AgentConfig::load(&config_path, &|_| None)?;
        let mut mc = ManagedContainerdConfig::new(cfg.data_dir.join("runtime"));
        if let Some(c) = &host.containerd {
            mc.containerd_bin = c.clone();
        }
        if let Some(c) = &host.ctr {
            mc.ctr_bin = c.clone();
        }
        mc.cni_bin_dir = a.cni_bin_dir.clone();
        mc.busybox = a.busybox.clone();
        mc.pod_cidr = cfg.pod_cidr.clone();
        mc.bridge_name = cfg.bridge_name.clone();
        mc.images_dir = cfg.images_dir.clone();
        mc.insecure_registries = cfg.insecure_registries.clone();
        mc.host_ports = cfg.allow_host_ports;
        let managed = ManagedContainerd::start(mc.clone())
            .await
            .context("starting containerd")?;
        tag_local_image(&managed).await?;
        let runtime = Arc::new(managed.runtime().await?);
        let node = cfg.node_id.clone();
        let joined = daas_agent::agent::join(
            cfg,
            ledger,
            runtime.clone() as Arc<dyn Runtime>,
            Some(crate::cni_setup(mc)),
        )
        .await
        .context("joining the local worker")?;
        println!(
            "Local worker {node} staked and joined (kubelet {}); try:\n  kubectl create deployment web --image={LOCAL_IMAGE} -- sleep 3600",
            joined.kubelet_addr
        );
        Ok(LocalAgent {
            dir: agent_dir,
            bridge: a.bridge_name.clone(),
            managed,
            runtime,
            tasks: joined.tasks.into_iter().chain([joined.pod_sync]).collect(),
        })
    }

    /// Stops everything the local worker started: its tasks, every pod (containers, sandboxes,
    /// network), containerd, leftover shims, mounts and the bridge.
    async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        match self.runtime.list_pods().await {
            Ok(pods) => {
                // All pods at once: each gets the same short grace period.
                let mut stops = tokio::task::JoinSet::new();
                for p in pods {
                    let rt = self.runtime.clone();
                    stops.spawn(async move {
                        if let Err(e) = rt.stop_pod(&p.uid, POD_STOP_GRACE).await {
                            tracing::warn!(pod = %p.name, error = %e, "stopping pod");
                        }
                        if let Err(e) = rt.remove_pod(&p.uid).await {
                            tracing::warn!(pod = %p.name, error = %e, "removing pod");
                        }
                    });
                }
                while stops.join_next().await.is_some() {}
            }
            Err(e) => tracing::warn!(error = %e, "listing pods for shutdown"),
        }
        self.managed.shutdown().await;
        kill_processes_under(&self.dir);
        let unmounted = daas_agent::runtime::unmount_all_under(&self.dir);
        if !unmounted.is_empty() {
            tracing::info!(count = unmounted.len(), "unmounted leftovers");
        }
        // Its pods are gone: so is the reason for their NetworkPolicy table.
        daas_agent::net::policy::disable(&daas_agent::net::nft::NftCli::default()).await;
        let _ = tokio::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output()
            .await;
        if let Err(e) = daas_agent::net::podnet::teardown(
            &self.bridge,
            &daas_agent::net::nft::NftCli::default(),
            &daas_agent::net::podnet::links::IpCli::default(),
        )
        .await
        {
            tracing::warn!(error = %e, "removing the pod network's rules");
        }
        // With the pods gone, their Service rules go too.
        {
            use daas_agent::net::nft::Firewall as _;
            use daas_agent::net::proxy::rules;
            if let Err(e) = daas_agent::net::nft::NftCli::default()
                .remove(rules::FAMILY, rules::TABLE)
                .await
            {
                tracing::debug!(error = %e, "removing the service rules");
            }
        }
        tracing::info!("local worker stopped");
    }
}

/// Tags the busybox image with [`LOCAL_IMAGE`] (a fixed tag is pulled only if absent).
async fn tag_local_image(m: &ManagedContainerd) -> Result<()> {
    let out = tokio::process::Command::new(&m.config().ctr_bin)
        .arg("-a")
        .arg(m.socket_path())
        .args([
            "-n",
            "k8s.io",
            "images",
            "tag",
            "--force",
            BUSYBOX_IMAGE,
            LOCAL_IMAGE,
        ])
        .output()
        .await
        .context("running ctr images tag")?;
    if !out.status.success() {
        anyhow::bail!(
            "tagging {LOCAL_IMAGE}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// SIGKILLs the processes whose command line names `dir` (container shims of the local
/// containerd, all started by this process), by pid.
fn kill_processes_under(dir: &Path) {
    let me = std::process::id();
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 == me || pid <= 1 {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            tracing::warn!(pid, cmd = %cmd.trim(), "killing leftover process");
            // SAFETY: kill(2) on a pid read from /proc.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

pub(crate) async fn run_up(a: UpArgs) -> Result<()> {
    // `up` starts a new cluster with its own ledger; joining a running one is `daas master --server`.
    anyhow::ensure!(
        a.master.server.is_none(),
        "--server joins a running cluster: use `daas master --server URL`"
    );
    let dir = default_data_dir(a.master.data_dir.clone());
    if a.master.backends.names_a_ledger() {
        anyhow::bail!("daas up runs its own embedded ledger: --ledger, --sui-rpc and --sui-deployment are for daas master");
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (embedded, admin) = open_embedded_ledger(
        &dir,
        a.epoch_seconds,
        &format!("https://{}", a.master.listen),
    )?;
    let ledger: Arc<dyn Ledger> = Arc::new(embedded.clone());
    let master_key = load_or_create_key(&dir.join("ledger").join("master.key"))?;
    if a.master.tee.tee != "nitro" {
        anyhow::bail!("daas up registers its simulated enclave as Nitro on its own ledger; run an SEV-SNP / TDX master with `daas master --tee ... --enclave-object <id>`");
    }
    let mut cfg = master_config(&a.master, dir.clone()).await?;
    cfg.ledger = Some(ledger.clone());
    cfg.sui_key = Some(master_key.clone());
    let master = Master::start(cfg).await?;
    let chain_url = serve_chain(ledger.clone(), a.chain_listen).await?;
    std::fs::write(dir.join("chain-url"), &chain_url)?;
    // The local ledger trusts the AWS Nitro root and, because this is the operator's own machine,
    // the simulated enclave's dev root; then the master registers its enclave key on chain.
    embedded.set_attestation_verifier(Arc::new(daas_master::registration::TeeVerifier {
        roots: vec![daas_tee::RootCert::aws_nitro(), master.enclave.root.clone()],
    }));
    let reg = daas_master::registration::register(
        ledger.clone(),
        &admin,
        &master_key,
        &master.enclave,
        &dir.join("ledger").join("enclave.json"),
    )
    .await
    .context("registering the enclave on the ledger")?;
    master.set_registration(reg.clone());
    let d = ledger
        .deployment()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "K3s-DaaS API server listening on {} (enclave: {})",
        master.url, master.enclave.kind
    );
    println!(
        "Embedded ledger: package {}, staking pool {}, admin {}",
        d.package,
        d.pool.id,
        admin.address()
    );
    println!(
        "Enclave {} registered on the ledger (config {})",
        reg.enclave.id, reg.config.id
    );
    println!(
        "Cluster id {} (credential audience {})",
        master.cluster_id,
        daas_ledger::credential::audience(&master.cluster_id)
    );
    println!("Ledger API: {chain_url} (SUI_RPC_ENDPOINT)");
    println!(
        "Use it with:\n  export KUBECONFIG={}\n  kubectl get nodes",
        master.kubeconfig_path.display()
    );

    let master_url = master.url.clone();
    let anchorer = master.anchorer.clone();
    let control_plane = master.control_plane.clone();
    let audit_log = master.audit_log.clone();
    let mut server = tokio::spawn(master.serve());
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut stopping = false;
    let mut agent = None;
    if !a.agent.no_agent {
        let host = HostCheck::probe(&a.agent);
        if host.missing().is_empty() {
            let span = tracing::info_span!("local_agent");
            let start = LocalAgent::start(
                &a.agent,
                &host,
                &dir,
                ledger.clone(),
                &chain_url,
                &master_url,
            )
            .instrument(span);
            tokio::select! {
                r = start => match r {
                    Ok(la) => agent = Some(la),
                    Err(e) => {
                        eprintln!("The local worker did not start: {e:#}\nServing the control plane alone (--no-agent skips the local worker).");
                        unmount_and_reap(&dir.join("agent"));
                    }
                },
                _ = &mut stop => {
                    // The start future is dropped: its containerd stops with it.
                    stopping = true;
                    unmount_and_reap(&dir.join("agent"));
                }
            }
        } else {
            eprintln!("{}", host.report());
        }
    }
    let mut result = Ok(());
    if !stopping {
        tokio::select! {
            r = &mut server => {
                result = match r {
                    Ok(r) => r.context("serving"),
                    Err(e) => Err(anyhow::anyhow!("API server task: {e}")),
                };
            }
            _ = &mut stop => tracing::info!("shutting down"),
        }
    }
    if let Some(la) = agent {
        la.shutdown().await;
    }
    // Release the leader Leases so another master takes over at once.
    control_plane.shutdown().await;
    server.abort();
    crate::close_audit_log(audit_log).await;
    crate::anchor_on_shutdown(anchorer).await;
    result
}

fn unmount_and_reap(dir: &Path) {
    kill_processes_under(dir);
    daas_agent::runtime::unmount_all_under(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> LocalAgentArgs {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: LocalAgentArgs,
        }
        let mut v = vec!["p"];
        v.extend_from_slice(extra);
        <P as clap::Parser>::parse_from(v).a
    }

    #[test]
    fn node_names_from_host_names() {
        assert_eq!(node_name_from_hostname("Web_Server-1\n"), "web-server-1");
        assert_eq!(
            node_name_from_hostname("host.example.COM"),
            "host.example.com"
        );
        assert_eq!(node_name_from_hostname("-a-..b-"), "a.b");
        assert_eq!(node_name_from_hostname("___"), "local");
        assert_eq!(node_name_from_hostname(""), "local");
        assert!(node_name_from_hostname(&"x".repeat(300)).len() <= 63);
    }

    #[test]
    fn missing_parts_are_named_with_their_package() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(&[
            "--containerd",
            "/nonexistent/containerd",
            "--cni-bin-dir",
            dir.path().to_str().unwrap(),
            "--busybox",
            "/nonexistent/busybox",
        ]);
        let h = HostCheck::probe(&a);
        let m = h.missing().join("\n");
        assert!(m.contains("containerd (package containerd)"), "{m}");
        assert!(
            m.contains("CNI plugins bridge, host-local, loopback, portmap"),
            "{m}"
        );
        assert!(m.contains("busybox-static"), "{m}");
        let r = h.report();
        assert!(r.contains(INSTALL_HINT), "{r}");
        assert!(r.contains("control plane alone"), "{r}");

        // A complete host has nothing missing.
        let ok = HostCheck {
            root: true,
            containerd: Some("/usr/bin/containerd".into()),
            ctr: Some("/usr/bin/ctr".into()),
            runc: Some("/usr/sbin/runc".into()),
            missing_cni: vec![],
            cni_bin_dir: "/usr/lib/cni".into(),
            busybox: Some("/bin/busybox".into()),
            busybox_path: "/bin/busybox".into(),
        };
        assert!(ok.missing().is_empty());
        let not_root = HostCheck { root: false, ..ok };
        assert_eq!(not_root.missing().len(), 1);
        assert!(not_root.missing()[0].contains("sudo daas up"));
    }

    #[test]
    fn the_written_staker_config_is_one_daas_agent_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let key = SuiKeypair::generate();
        let key_path = dir.path().join("node.key");
        key.save(&key_path).unwrap();
        let a = args(&[
            "--node-name",
            "box-1",
            "--pod-cidr",
            "10.42.7.0/24",
            "--bridge-name",
            "daasx",
            "--kubelet-port",
            "0",
        ]);
        let p = write_staker_config(
            &a,
            dir.path(),
            &key_path,
            &key.address().to_string(),
            "http://127.0.0.1:9100",
            "https://127.0.0.1:6443",
            &dir.path().join("trusted-root.pem"),
        )
        .unwrap();
        let cfg = daas_agent::config::AgentConfig::load(&p, &|_| None).unwrap();
        assert_eq!(cfg.node_id, "box-1");
        assert_eq!(cfg.key.address(), key.address());
        assert_eq!(cfg.stake_amount, LOCAL_NODE_STAKE);
        assert_eq!(cfg.containerd_socket, None);
        assert_eq!(
            (
                cfg.pod_cidr.as_deref().unwrap_or_default(),
                cfg.bridge_name.as_str(),
                cfg.kubelet_listen.port()
            ),
            ("10.42.7.0/24", "daasx", 0)
        );
        assert_eq!(cfg.data_dir, dir.path().join("data"));
        assert_eq!(cfg.master_urls, ["https://127.0.0.1:6443"]);
    }

    #[test]
    fn cni_plugins_found_in_the_given_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for p in CNI_PLUGINS {
            let f = dir.path().join(p);
            std::fs::write(&f, b"#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Not executable: still missing.
        std::fs::set_permissions(
            dir.path().join("portmap"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let h = HostCheck::probe(&args(&["--cni-bin-dir", dir.path().to_str().unwrap()]));
        assert_eq!(h.missing_cni, vec!["portmap".to_string()]);
    }
}
