//! `staker-config.json`: the seed's StakerHost configuration, with environment overrides.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use daas_ledger::keys::SuiKeypair;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid staker config JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The file as written by operators (seed field names; extras are optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakerConfigFile {
    pub node_id: String,
    #[serde(default)]
    pub sui_wallet_address: Option<String>,
    /// The Sui private key (`suiprivkey1...`, hex or base64 seed).
    #[serde(default)]
    pub sui_private_key: Option<String>,
    /// Alternatively, a key file (as written by `daas keygen`).
    #[serde(default)]
    pub sui_key_file: Option<PathBuf>,
    /// Ledger endpoint: the `daas chain` API of the embedded ledger.
    pub sui_rpc_endpoint: String,
    pub stake_amount: u64,
    /// Package id of the k3s_daas Move package (checked against the ledger).
    #[serde(default)]
    pub contract_address: Option<String>,
    /// The master (Nautilus TEE) URL, or a list of the URLs of the cluster's masters (HA: the
    /// agent attests each and fails over between them).
    pub nautilus_endpoint: Endpoints,
    /// `containerd` (the agent starts and configures its own) or a path to a containerd socket.
    #[serde(default = "default_runtime")]
    pub container_runtime: String,
    #[serde(default)]
    pub min_stake_amount: Option<u64>,
    // ---- extras (not in the seed) ----
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Extra attestation root to trust (the simulated enclave's dev root). Development only.
    #[serde(default)]
    pub trust_root: Option<PathBuf>,
    /// PCR index -> expected hex value, required in addition to the PCRs of the enclave
    /// configuration registered on the ledger (and instead of them when none is registered).
    #[serde(default)]
    pub expected_pcrs: BTreeMap<u16, String>,
    /// Address other hosts reach this node at (default 127.0.0.1).
    #[serde(default)]
    pub node_ip: Option<IpAddr>,
    /// Port of the agent's HTTPS endpoint (logs); 0 picks one.
    #[serde(default)]
    pub kubelet_port: Option<u16>,
    /// Air-gap image tarballs imported at start (like K3s' agent/images).
    #[serde(default)]
    pub images_dir: Option<PathBuf>,
    /// Registries (`host:port`) the node's containerd reaches over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Let pods publish `hostPort`s on this host's addresses (refused by default).
    #[serde(default)]
    pub allow_host_ports: bool,
    /// Do not enforce NetworkPolicies on this node (the `inet daas-policy` table is removed);
    /// default false (enforced).
    #[serde(default)]
    pub disable_network_policy: bool,
    /// Pod CIDR of this node, e.g. 10.42.1.0/24; absent or null: the master assigns one.
    #[serde(default)]
    pub pod_cidr: Option<String>,
    /// The pod network between nodes: `vxlan` (default), `wireguard` (encrypted) or `none`.
    #[serde(default)]
    pub flannel_backend: Option<crate::net::podnet::Backend>,
    /// UDP port of the `wireguard` backend (default 51820).
    #[serde(default)]
    pub wireguard_port: Option<u16>,
    /// Seconds between Lease renewals (the seed's heartbeat; default 10).
    #[serde(default)]
    pub heartbeat_seconds: Option<u64>,
    /// Name of the CNI bridge of the managed containerd (default daas0; unique per agent on a host).
    #[serde(default)]
    pub bridge_name: Option<String>,
    /// CPU in millicores kept for the host (the kubelet's `--system-reserved cpu`); default 0.
    #[serde(default)]
    pub system_reserved_cpu_millis: Option<u64>,
    /// Memory in MiB kept for the host (the kubelet's `--system-reserved memory`); default 0.
    #[serde(default)]
    pub system_reserved_memory_mib: Option<u64>,
    /// Graceful node shutdown (the kubelet's `shutdownGracePeriod`): on SIGTERM the node is
    /// marked not ready and its pods are stopped within this many seconds before the agent
    /// exits; 0 (the default, as the kubelet's) stops the agent at once.
    #[serde(default)]
    pub shutdown_grace_period_seconds: Option<u64>,
    /// The part of it kept for critical pods (`shutdownGracePeriodCriticalPods`), stopped after
    /// the others; default 0.
    #[serde(default)]
    pub shutdown_grace_period_critical_pods_seconds: Option<u64>,
    /// The cluster DNS domain (default `cluster.local`).
    #[serde(default)]
    pub cluster_domain: Option<String>,
    /// The cluster DNS Service IP written into pods' resolv.conf (default 10.43.0.10).
    #[serde(default)]
    pub cluster_dns: Option<IpAddr>,
    /// The node's resolver configuration: the `Default` dnsPolicy and the default forwarders
    /// (default /etc/resolv.conf).
    #[serde(default)]
    pub resolv_conf: Option<PathBuf>,
    /// Upstream servers (`ip` or `ip:port`) of the node's DNS server for names outside the
    /// cluster domain (default: the nameservers of `resolv_conf`).
    #[serde(default)]
    pub dns_forwarders: Option<Vec<String>>,
    /// Run the node's cluster DNS server on the node gateway address (default true).
    #[serde(default)]
    pub cluster_dns_server: Option<bool>,
    /// Port of the built-in ingress proxy's HTTP listener on `node_ip` (default 80; 0 disables).
    #[serde(default)]
    pub ingress_http_port: Option<u16>,
    /// Port of its HTTPS listener (default 443; 0 disables).
    #[serde(default)]
    pub ingress_https_port: Option<u16>,
    /// Program Services on this node (table `ip daas-proxy`); default true.
    #[serde(default)]
    pub service_proxy: Option<bool>,
    /// Seconds between checks that the Service rules in the kernel are still the expected ones
    /// (repairing them when not); default 10.
    #[serde(default)]
    pub proxy_sync_seconds: Option<u64>,
}

/// The graceful node shutdown windows (upstream `shutdownGracePeriod` and
/// `shutdownGracePeriodCriticalPods`): regular pods get `total - critical`, critical pods then
/// get `critical`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownGrace {
    pub total: std::time::Duration,
    pub critical: std::time::Duration,
}

impl ShutdownGrace {
    /// Whether a shutdown drains the node at all.
    pub fn enabled(&self) -> bool {
        !self.total.is_zero()
    }

    /// The window of the regular pods.
    pub fn regular(&self) -> std::time::Duration {
        self.total.saturating_sub(self.critical)
    }
}

/// `nautilus_endpoint`: one URL (the seed's form) or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Endpoints {
    One(String),
    Many(Vec<String>),
}

impl Endpoints {
    fn into_vec(self) -> Vec<String> {
        match self {
            Endpoints::One(s) => vec![s],
            Endpoints::Many(v) => v,
        }
    }
}

/// The master URLs: from `NAUTILUS_ENDPOINT` (comma-separated) when set, else the file's; each
/// must be https, at least one, none twice.
pub fn master_urls(file: Endpoints, env: Option<String>) -> Result<Vec<String>, ConfigError> {
    let urls: Vec<String> = match env {
        Some(e) => e.split(',').map(str::to_string).collect(),
        None => file.into_vec(),
    }
    .into_iter()
    .map(|u| u.trim().trim_end_matches('/').to_string())
    .filter(|u| !u.is_empty())
    .collect();
    if urls.is_empty() {
        return Err(ConfigError::Invalid(
            "nautilus_endpoint names no master URL".into(),
        ));
    }
    for (i, u) in urls.iter().enumerate() {
        if !u.starts_with("https://") || u.len() == "https://".len() {
            return Err(ConfigError::Invalid(format!(
                "nautilus_endpoint {u:?} must be an https:// URL"
            )));
        }
        if urls[..i].contains(u) {
            return Err(ConfigError::Invalid(format!(
                "nautilus_endpoint lists {u:?} twice"
            )));
        }
    }
    Ok(urls)
}

fn default_runtime() -> String {
    "containerd".into()
}

/// Resolved configuration.
#[derive(Clone)]
pub struct AgentConfig {
    pub node_id: String,
    pub key: SuiKeypair,
    pub ledger_url: String,
    pub stake_amount: u64,
    pub min_stake_amount: u64,
    pub contract_address: Option<String>,
    /// The cluster's masters (`nautilus_endpoint`), in order of preference; at least one.
    pub master_urls: Vec<String>,
    /// Timeouts of the failover between masters (defaults; not in the file).
    pub failover: crate::agent::masters::FailoverConfig,
    /// None: manage a private containerd; Some(socket): use that one.
    pub containerd_socket: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub trust_root: Option<PathBuf>,
    pub expected_pcrs: BTreeMap<u16, String>,
    pub node_ip: IpAddr,
    pub kubelet_listen: SocketAddr,
    pub images_dir: Option<PathBuf>,
    pub insecure_registries: Vec<String>,
    /// Pods may publish `hostPort`s (the staker's opt-in; node admission refuses them otherwise).
    pub allow_host_ports: bool,
    /// This node's pod CIDR; `None`: wait for the master's assignment before setting up CNI.
    pub pod_cidr: Option<String>,
    /// The overlay between nodes (`flannel_backend`).
    pub flannel_backend: crate::net::podnet::Backend,
    /// UDP port of the `wireguard` backend (`wireguard_port`).
    pub wireguard_port: u16,
    /// NetworkPolicies are not enforced on this node (`disable_network_policy`).
    pub disable_network_policy: bool,
    pub heartbeat: std::time::Duration,
    pub bridge_name: String,
    /// Resources kept for the host: allocatable = capacity - reserved - hard eviction threshold.
    pub system_reserved_cpu_millis: u64,
    pub system_reserved_memory_bytes: u64,
    /// Graceful node shutdown on SIGTERM (disabled when zero).
    pub shutdown: ShutdownGrace,
    /// Whether the node programs Services (`service_proxy`).
    pub service_proxy: bool,
    /// Period of the Service rules' drift check (`proxy_sync_seconds`).
    pub proxy_sync: std::time::Duration,
    /// The key file (`sui_key_file`), kept 0600 and out of reach of pods.
    pub key_file: Option<PathBuf>,
    /// The config file this was loaded from (it may hold the private key), kept out of reach of pods.
    pub config_file: Option<PathBuf>,
    /// Cluster DNS: domain, Service IP, the node's resolv.conf, forwarders and whether the node
    /// runs its DNS server.
    pub dns: DnsSettings,
    /// The ingress proxy's HTTP and HTTPS ports on `node_ip` (0: that listener is off).
    pub ingress_http_port: u16,
    pub ingress_https_port: u16,
}

/// The node's cluster DNS settings (the kubelet's `clusterDomain`, `clusterDNS` and
/// `resolvConf`, plus the node DNS server's forwarders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    pub cluster_domain: String,
    pub cluster_dns: IpAddr,
    pub resolv_conf: PathBuf,
    /// Explicit upstream servers; empty: the nameservers of `resolv_conf`.
    pub forwarders: Vec<SocketAddr>,
    pub server: bool,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            cluster_domain: "cluster.local".into(),
            cluster_dns: IpAddr::from([10, 43, 0, 10]),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            forwarders: Vec::new(),
            server: true,
        }
    }
}

/// An upstream DNS server given as `ip` (port 53) or `ip:port` (`[v6]:port`).
pub fn parse_dns_server(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

fn resolve_dns(f: &StakerConfigFile, base: &Path) -> Result<DnsSettings, ConfigError> {
    let d = DnsSettings::default();
    let cluster_domain = match &f.cluster_domain {
        Some(dom) => {
            let dom = dom.trim_end_matches('.').to_ascii_lowercase();
            if !valid_node_name(&dom) {
                return Err(ConfigError::Invalid(format!(
                    "cluster_domain {dom:?} must be a lowercase DNS name"
                )));
            }
            dom
        }
        None => d.cluster_domain,
    };
    let forwarders = f
        .dns_forwarders
        .iter()
        .flatten()
        .map(|s| {
            parse_dns_server(s).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "dns_forwarders: {s:?} is not an IP address or IP:port"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DnsSettings {
        cluster_domain,
        cluster_dns: f.cluster_dns.unwrap_or(d.cluster_dns),
        resolv_conf: match &f.resolv_conf {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => base.join(p),
            None => d.resolv_conf,
        },
        forwarders,
        server: f.cluster_dns_server.unwrap_or(true),
    })
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("node_id", &self.node_id)
            .field("address", &self.key.address())
            .field("ledger_url", &self.ledger_url)
            .field("master_urls", &self.master_urls)
            .field("stake_amount", &self.stake_amount)
            .finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and its parents) and makes it 0700, also when it already existed.
pub fn ensure_private_dir(dir: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Takes group and other permissions away from an existing file (a key, a token): at most 0600.
pub fn restrict_to_owner(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "file readable by others; restricting it to 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700 & 0o600))
            .map_err(io_err(path))?;
    }
    Ok(())
}

/// Writes a secret (credential, private key) atomically with mode 0600: a temporary file created
/// 0600 next to it, then renamed over it. No moment where others can read it.
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), ConfigError> {
    daas_protocol::files::write_private(path, data).map_err(io_err(path))
}

/// Node names follow Kubernetes object naming (RFC 1123 subdomain).
fn valid_node_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl AgentConfig {
    pub fn load(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AgentConfig, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.into(),
            source,
        })?;
        let file: StakerConfigFile =
            serde_json::from_slice(&bytes).map_err(|source| ConfigError::Json {
                path: path.into(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut cfg = Self::resolve(file, base, env)?;
        cfg.config_file = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Makes the agent's files private before anything is written: the data directory 0700, the
    /// key file 0600, the config file 0600 when it holds the private key inline.
    pub fn secure_files(&self) -> Result<(), ConfigError> {
        ensure_private_dir(&self.data_dir)?;
        if let Some(k) = &self.key_file {
            restrict_to_owner(k)?;
        }
        if let Some(c) = &self.config_file {
            let inline_key = std::fs::read(c)
                .map_err(|source| ConfigError::Io {
                    path: c.clone(),
                    source,
                })?
                .windows(b"sui_private_key".len())
                .any(|w| w == b"sui_private_key");
            if inline_key {
                restrict_to_owner(c)?;
            }
        }
        Ok(())
    }

    pub fn resolve(
        f: StakerConfigFile,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AgentConfig, ConfigError> {
        if !valid_node_name(&f.node_id) {
            return Err(ConfigError::Invalid(format!(
                "node_id {:?} must be a lowercase RFC 1123 name (it becomes the Kubernetes Node name)",
                f.node_id
            )));
        }
        let rel = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        let key = match (&f.sui_private_key, &f.sui_key_file) {
            (Some(k), None) => SuiKeypair::parse(k)
                .map_err(|e| ConfigError::Invalid(format!("sui_private_key: {e}")))?,
            (None, Some(p)) => SuiKeypair::load(rel(p)).map_err(|e| {
                ConfigError::Invalid(format!("sui_key_file {}: {e}", rel(p).display()))
            })?,
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "give either sui_private_key or sui_key_file, not both".into(),
                ))
            }
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "sui_private_key or sui_key_file is required".into(),
                ))
            }
        };
        if let Some(addr) = &f.sui_wallet_address {
            if addr.to_lowercase() != key.address().to_string().to_lowercase() {
                return Err(ConfigError::Invalid(format!(
                    "sui_wallet_address {addr} does not match the key's address {}",
                    key.address()
                )));
            }
        }
        let dns = resolve_dns(&f, base)?;
        let ledger_url = env("SUI_RPC_ENDPOINT").unwrap_or(f.sui_rpc_endpoint);
        let master_urls = master_urls(f.nautilus_endpoint, env("NAUTILUS_ENDPOINT"))?;
        let min_stake_amount = match env("MIN_STAKE_AMOUNT") {
            Some(v) => v.parse().map_err(|_| {
                ConfigError::Invalid(format!("MIN_STAKE_AMOUNT={v:?} is not a number"))
            })?,
            None => f.min_stake_amount.unwrap_or(1000),
        };
        if f.stake_amount < min_stake_amount {
            return Err(ConfigError::Invalid(format!(
                "stake_amount {} is below the minimum stake of {min_stake_amount} MIST for a node",
                f.stake_amount
            )));
        }
        let containerd_socket = match f.container_runtime.as_str() {
            "containerd" | "" => None,
            p if p.starts_with('/') => Some(PathBuf::from(p)),
            other => {
                return Err(ConfigError::Invalid(format!(
                    "container_runtime {other:?}: use \"containerd\" or the path of a containerd socket"
                )))
            }
        };
        let node_ip = f.node_ip.unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(AgentConfig {
            node_id: f.node_id.clone(),
            key,
            ledger_url,
            stake_amount: f.stake_amount,
            min_stake_amount,
            contract_address: f.contract_address,
            master_urls,
            failover: Default::default(),
            containerd_socket,
            data_dir: f
                .data_dir
                .map(|p| rel(&p))
                .unwrap_or_else(|| base.join(format!("daas-agent-{}", f.node_id))),
            trust_root: f.trust_root.map(|p| rel(&p)),
            expected_pcrs: f.expected_pcrs,
            node_ip,
            kubelet_listen: SocketAddr::new(node_ip, f.kubelet_port.unwrap_or(10250)),
            images_dir: f.images_dir.map(|p| rel(&p)),
            insecure_registries: f.insecure_registries,
            allow_host_ports: f.allow_host_ports,
            pod_cidr: match f.pod_cidr {
                Some(c) if crate::net::podnet::parse_cidr(&c).is_none() => {
                    return Err(ConfigError::Invalid(format!(
                        "pod_cidr {c:?} must be an IPv4 CIDR such as 10.42.1.0/24"
                    )))
                }
                c => c,
            },
            flannel_backend: f.flannel_backend.unwrap_or_default(),
            wireguard_port: f
                .wireguard_port
                .filter(|p| *p != 0)
                .unwrap_or(crate::net::podnet::wg::DEFAULT_PORT),
            disable_network_policy: f.disable_network_policy,
            heartbeat: std::time::Duration::from_secs(f.heartbeat_seconds.unwrap_or(10).max(1)),
            system_reserved_cpu_millis: f.system_reserved_cpu_millis.unwrap_or(0),
            system_reserved_memory_bytes: f
                .system_reserved_memory_mib
                .unwrap_or(0)
                .saturating_mul(1024 * 1024),
            shutdown: {
                let total = f.shutdown_grace_period_seconds.unwrap_or(0);
                let critical = f.shutdown_grace_period_critical_pods_seconds.unwrap_or(0);
                if critical > total {
                    return Err(ConfigError::Invalid(format!(
                        "shutdown_grace_period_critical_pods_seconds ({critical}) must not exceed shutdown_grace_period_seconds ({total})"
                    )));
                }
                ShutdownGrace {
                    total: std::time::Duration::from_secs(total),
                    critical: std::time::Duration::from_secs(critical),
                }
            },
            bridge_name: f.bridge_name.unwrap_or_else(|| "daas0".into()),
            service_proxy: f.service_proxy.unwrap_or(true),
            proxy_sync: std::time::Duration::from_secs(f.proxy_sync_seconds.unwrap_or(10).max(1)),
            key_file: f.sui_key_file.as_ref().map(rel),
            config_file: None,
            dns,
            ingress_http_port: f.ingress_http_port.unwrap_or(80),
            ingress_https_port: f.ingress_https_port.unwrap_or(443),
        })
    }
}

#[cfg(test)]
#[path = "config_fuzz_tests.rs"]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn file(extra: serde_json::Value) -> StakerConfigFile {
        let mut v = serde_json::json!({
            "node_id": "worker-1",
            "sui_private_key": SuiKeypair::from_seed([7; 32]).to_suiprivkey(),
            "sui_rpc_endpoint": "http://127.0.0.1:9100",
            "stake_amount": 1000,
            "nautilus_endpoint": "https://127.0.0.1:6443",
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ingress_ports_default_to_80_and_443_and_0_disables() {
        let no_env = |_: &str| None;
        let c =
            AgentConfig::resolve(file(serde_json::json!({})), Path::new("/etc"), &no_env).unwrap();
        assert_eq!((c.ingress_http_port, c.ingress_https_port), (80, 443));
        let c = AgentConfig::resolve(
            file(serde_json::json!({"ingress_http_port": 8080, "ingress_https_port": 0})),
            Path::new("/etc"),
            &no_env,
        )
        .unwrap();
        assert_eq!((c.ingress_http_port, c.ingress_https_port), (8080, 0));
    }

    #[test]
    fn pod_cidr_and_flannel_backend() {
        let no_env = |_: &str| None;
        let c =
            AgentConfig::resolve(file(serde_json::json!({})), Path::new("/etc"), &no_env).unwrap();
        assert_eq!(c.pod_cidr, None);
        assert_eq!(c.flannel_backend, crate::net::podnet::Backend::Vxlan);
        let c = AgentConfig::resolve(
            file(serde_json::json!({"pod_cidr": null, "flannel_backend": "none"})),
            Path::new("/etc"),
            &no_env,
        )
        .unwrap();
        assert_eq!(c.pod_cidr, None);
        assert_eq!(c.flannel_backend, crate::net::podnet::Backend::None);
        let c = AgentConfig::resolve(
            file(serde_json::json!({"pod_cidr": "10.42.7.0/24"})),
            Path::new("/etc"),
            &no_env,
        )
        .unwrap();
        assert_eq!(c.pod_cidr.as_deref(), Some("10.42.7.0/24"));
        let e = AgentConfig::resolve(
            file(serde_json::json!({"pod_cidr": "10.42.7.1/24"})),
            Path::new("/etc"),
            &no_env,
        )
        .unwrap_err();
        assert!(e.to_string().contains("must be an IPv4 CIDR"), "{e}");
        assert_eq!(c.wireguard_port, 51820);
        let c = AgentConfig::resolve(
            file(serde_json::json!({"flannel_backend": "wireguard", "wireguard_port": 51999})),
            Path::new("/etc"),
            &no_env,
        )
        .unwrap();
        assert_eq!(c.flannel_backend, crate::net::podnet::Backend::Wireguard);
        assert_eq!(c.wireguard_port, 51999);
        let bad: Result<StakerConfigFile, _> = serde_json::from_value(serde_json::json!({
            "node_id": "w", "sui_rpc_endpoint": "x", "stake_amount": 1,
            "nautilus_endpoint": "https://x", "flannel_backend": "host-gw"}));
        assert!(bad.is_err());
    }

    #[test]
    fn seed_fields_and_env_overrides() {
        let no_env = |_: &str| None;
        let c =
            AgentConfig::resolve(file(serde_json::json!({})), Path::new("/etc"), &no_env).unwrap();
        assert_eq!(c.node_id, "worker-1");
        assert_eq!(c.min_stake_amount, 1000);
        assert_eq!(c.data_dir, PathBuf::from("/etc/daas-agent-worker-1"));
        assert!(c.service_proxy);
        assert_eq!(c.proxy_sync, std::time::Duration::from_secs(10));
        let env = |k: &str| match k {
            "SUI_RPC_ENDPOINT" => Some("http://ledger:1".to_string()),
            "NAUTILUS_ENDPOINT" => Some("https://master:2".to_string()),
            "MIN_STAKE_AMOUNT" => Some("500".to_string()),
            _ => None,
        };
        let c = AgentConfig::resolve(
            file(serde_json::json!({"stake_amount": 600})),
            Path::new("/"),
            &env,
        )
        .unwrap();
        assert_eq!(
            (
                c.ledger_url.as_str(),
                c.master_urls.join(","),
                c.min_stake_amount
            ),
            ("http://ledger:1", "https://master:2".to_string(), 500)
        );
    }

    #[test]
    fn several_masters_as_a_list_or_a_comma_separated_env() {
        let no_env = |_: &str| None;
        // The seed's single string still works.
        let c =
            AgentConfig::resolve(file(serde_json::json!({})), Path::new("/etc"), &no_env).unwrap();
        assert_eq!(c.master_urls, vec!["https://127.0.0.1:6443".to_string()]);
        // A list, in order of preference (a trailing slash is dropped).
        let c = AgentConfig::resolve(
            file(serde_json::json!({"nautilus_endpoint": ["https://m1:6443/", "https://m2:6443"]})),
            Path::new("/etc"),
            &no_env,
        )
        .unwrap();
        assert_eq!(c.master_urls, vec!["https://m1:6443", "https://m2:6443"]);
        assert_eq!(c.failover, crate::agent::masters::FailoverConfig::default());
        // NAUTILUS_ENDPOINT, comma-separated, replaces the file's list.
        let env = |k: &str| {
            (k == "NAUTILUS_ENDPOINT").then(|| "https://a:1, https://b:2,https://c:3".to_string())
        };
        let c = AgentConfig::resolve(file(serde_json::json!({})), Path::new("/"), &env).unwrap();
        assert_eq!(
            c.master_urls,
            vec!["https://a:1", "https://b:2", "https://c:3"]
        );
        // Every URL must be https, there must be one, and none twice.
        let err = |v: serde_json::Value| {
            AgentConfig::resolve(
                file(serde_json::json!({"nautilus_endpoint": v})),
                Path::new("/"),
                &no_env,
            )
            .unwrap_err()
            .to_string()
        };
        assert!(err(serde_json::json!(["https://a:1", "http://b:2"]))
            .contains("\"http://b:2\" must be an https:// URL"));
        assert!(err(serde_json::json!([])).contains("names no master"));
        assert!(err(serde_json::json!(["https://a:1", "https://a:1/"])).contains("twice"));
        assert!(err(serde_json::json!("https://")).contains("https:// URL"));
        let bad_env =
            |k: &str| (k == "NAUTILUS_ENDPOINT").then(|| "https://a:1,http://b".to_string());
        assert!(
            AgentConfig::resolve(file(serde_json::json!({})), Path::new("/"), &bad_env)
                .unwrap_err()
                .to_string()
                .contains("\"http://b\"")
        );
        let bad: Result<StakerConfigFile, _> = serde_json::from_value(serde_json::json!({
            "node_id": "w", "sui_rpc_endpoint": "x", "stake_amount": 1,
            "nautilus_endpoint": 7}));
        assert!(bad.is_err());
    }

    #[test]
    fn refusals_are_clear() {
        let no_env = |_: &str| None;
        let err = |extra| {
            AgentConfig::resolve(file(extra), Path::new("/"), &no_env)
                .unwrap_err()
                .to_string()
        };
        assert!(err(serde_json::json!({"stake_amount": 999}))
            .contains("below the minimum stake of 1000"));
        assert!(err(serde_json::json!({"node_id": "Bad_Name"})).contains("RFC 1123"));
        assert!(err(serde_json::json!({"sui_wallet_address": "0x01"})).contains("does not match"));
        assert!(err(serde_json::json!({"nautilus_endpoint": "http://x"})).contains("https"));
        assert!(
            err(serde_json::json!({"container_runtime": "docker"})).contains("container_runtime")
        );
        let bad: Result<StakerConfigFile, _> =
            serde_json::from_value(serde_json::json!({"node_id": "a", "typo_field": 1}));
        assert!(bad.is_err());
        assert!(err(serde_json::json!({"dns_forwarders": ["nope"]})).contains("dns_forwarders"));
        assert!(err(serde_json::json!({"cluster_domain": "Bad_Domain"})).contains("cluster_domain"));
    }

    #[test]
    fn dns_settings_default_and_explicit() {
        let no_env = |_: &str| None;
        let c =
            AgentConfig::resolve(file(serde_json::json!({})), Path::new("/etc"), &no_env).unwrap();
        assert_eq!(c.dns, DnsSettings::default());
        let c = AgentConfig::resolve(
            file(
                serde_json::json!({"cluster_domain": "corp.example.", "cluster_dns": "10.43.0.53",
                "resolv_conf": "resolv.conf", "dns_forwarders": ["192.0.2.1", "192.0.2.2:5353"],
                "cluster_dns_server": false}),
            ),
            Path::new("/etc/daas"),
            &no_env,
        )
        .unwrap();
        assert_eq!(
            c.dns,
            DnsSettings {
                cluster_domain: "corp.example".into(),
                cluster_dns: "10.43.0.53".parse().unwrap(),
                resolv_conf: PathBuf::from("/etc/daas/resolv.conf"),
                forwarders: vec![
                    "192.0.2.1:53".parse().unwrap(),
                    "192.0.2.2:5353".parse().unwrap()
                ],
                server: false,
            }
        );
    }

    #[test]
    fn private_files() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/data");
        ensure_private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);

        let tok = data.join("credential.token");
        write_private_file(&tok, b"secret").unwrap();
        assert_eq!(
            (mode(&tok), std::fs::read(&tok).unwrap()),
            (0o600, b"secret".to_vec())
        );
        std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private_file(&tok, b"again").unwrap();
        assert_eq!(
            (mode(&tok), std::fs::read(&tok).unwrap()),
            (0o600, b"again".to_vec())
        );
        assert!(!tok.with_extension("tmp").exists());

        // A key file and a config file holding the key inline, readable by others, are restricted.
        let key = dir.path().join("node.key");
        SuiKeypair::from_seed([7; 32]).save(&key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg_path = dir.path().join("staker-config.json");
        let mut v = serde_json::json!({
            "node_id": "worker-1",
            "sui_key_file": "node.key",
            "sui_rpc_endpoint": "http://127.0.0.1:9100",
            "stake_amount": 1000,
            "nautilus_endpoint": "https://127.0.0.1:6443",
            "data_dir": "a/data",
        });
        std::fs::write(&cfg_path, v.to_string()).unwrap();
        std::fs::set_permissions(&cfg_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = AgentConfig::load(&cfg_path, &|_| None).unwrap();
        assert_eq!(c.key_file.as_deref(), Some(key.as_path()));
        assert_eq!(c.config_file.as_deref(), Some(cfg_path.as_path()));
        c.secure_files().unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&data), 0o700);
        // Without an inline key the config file is left alone.
        assert_eq!(mode(&cfg_path), 0o644);
        v["sui_private_key"] = serde_json::json!(SuiKeypair::from_seed([7; 32]).to_suiprivkey());
        v.as_object_mut().unwrap().remove("sui_key_file");
        std::fs::write(&cfg_path, v.to_string()).unwrap();
        AgentConfig::load(&cfg_path, &|_| None)
            .unwrap()
            .secure_files()
            .unwrap();
        assert_eq!(mode(&cfg_path), 0o600);
    }
}
