//! The K3s-DaaS master ("Nautilus TEE"): runs the Kubernetes API server and controllers inside an
//! enclave. The state store is sealed under the enclave's sealing key, the TLS certificate is bound
//! into the enclave's attestation document, and the seed endpoints sit next to the Kubernetes API.

pub mod access;
pub mod anchor;
pub mod auth;
pub mod backends;
pub mod billing;
pub mod blobstore;
pub mod clusterkey;
pub mod clusterstate;
pub mod console;
pub mod controlplane;
pub mod enclave;
pub mod httpcall;
pub mod keyshare;
pub mod limits;
pub mod monitoring;
pub mod nodeproxy;
pub mod platform_registration;
pub mod registration;
pub mod satokens;
pub mod seed;
pub mod slashing;
pub mod snapshot;
pub mod stakes;
pub mod tee_evidence;

#[cfg(test)]
mod attested_tests;

pub use daas_apiserver::flowcontrol;
pub mod audit;
pub use daas_protocol::{attested, metrics, now_ms, tlsverify};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use daas_apiserver::defaulttolerations::DefaultTolerations;
pub use daas_apiserver::defaulttolerations::DEFAULT_SECONDS as DEFAULT_TOLERATION_SECONDS;
pub use daas_apiserver::registry::ipalloc::{DEFAULT_CLUSTER_IP_RANGE, DEFAULT_NODE_PORT_RANGE};
use daas_apiserver::{LocalClient, ServerOptions, StaticTokens, TlsMaterial, User};
pub use daas_controllers::nodeipam::{DEFAULT_CLUSTER_CIDR, DEFAULT_NODE_CIDR_MASK_SIZE};
pub use daas_controllers::nodelifecycle::EvictionConfig as NodeEvictionConfig;
use daas_store::Store;

pub use enclave::{EnclaveHandle, Measurement};

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("enclave: {0}")]
    Tee(#[source] daas_tee::TeeError),
    #[error("state store: {0}")]
    Store(#[from] daas_store::StoreError),
    #[error("tls: {0}")]
    Tls(#[from] daas_apiserver::tls::TlsError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("bootstrap: {0}")]
    Api(#[from] daas_apiserver::ApiError),
    #[error("{0}")]
    Config(String),
    #[error(
        "state store rolled back: the store is at revision {store}, but revision {anchored} is anchored on the ledger; refusing to start on an older copy of state.redb"
    )]
    RolledBack { store: i64, anchored: u64 },
    #[error("state anchor: {0}")]
    Anchor(#[from] anchor::AnchorError),
    #[error(transparent)]
    Backend(#[from] backends::BackendError),
    #[error("cluster key: {0}")]
    ClusterKey(#[from] clusterkey::ClusterKeyError),
}

/// The API server's priority and fairness, counting into `metrics`.
fn flowcontrol(
    cfg: &MasterConfig,
    metrics: &Arc<metrics::Metrics>,
) -> Result<Option<Arc<daas_apiserver::flowcontrol::FlowControl>>, MasterError> {
    use daas_apiserver::flowcontrol::{BootstrapClassifier, FlowControl};
    cfg.flow_control
        .clone()
        .map(|c| {
            FlowControl::new(c, Arc::new(BootstrapClassifier))
                .map(|f| Arc::new(f.with_metrics(metrics.clone())))
                .map_err(|e| MasterError::Config(e.to_string()))
        })
        .transpose()
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> MasterError {
    let context = context.into();
    move |source| MasterError::Io { context, source }
}

/// Everything a master runs with. The backends are opened by the caller (see [`backends`] and
/// [`MasterConfig::embedded`]); [`Master::start`] picks none of them.
#[derive(Clone)]
pub struct MasterConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The sealed state store (embedded redb or etcd), sealed under the cluster key.
    pub store: Arc<dyn Store>,
    /// The enclave this master runs in (simulated or Nitro).
    pub enclave: EnclaveHandle,
    pub tls_sans: Vec<String>,
    pub bookmark_interval: Duration,
    pub retain_revisions: i64,
    pub compact_interval: Duration,
    pub controller_resync: Duration,
    /// How often each HorizontalPodAutoscaler is synced (15 s, as upstream).
    pub hpa_sync_period: Duration,
    /// How long metrics.k8s.io reuses a node's stats summary (15 s, as metrics-server).
    pub metric_resolution: Duration,
    /// tolerationSeconds of the not-ready/unreachable tolerations new pods get (upstream's
    /// DefaultTolerationSeconds admission, 300 s each).
    pub default_tolerations: daas_apiserver::defaulttolerations::DefaultTolerations,
    /// The ledger holding stakes and seal tokens (embedded or remote). Without one, only the admin
    /// token authenticates.
    pub ledger: Option<Arc<dyn daas_ledger::Ledger>>,
    /// How long a validated seal-token credential is trusted before the ledger is asked again.
    pub token_cache_ttl: Duration,
    /// The master's own Sui key (pays for slashing reports). Needs a ledger.
    pub sui_key: Option<daas_ledger::keys::SuiKeypair>,
    /// A node that has not renewed its Lease for this long is declared dead.
    pub node_grace: Duration,
    /// Node eviction rates, zone disruption thresholds and the slash delay (upstream's
    /// `--node-eviction-rate`, ...).
    pub node_eviction: daas_controllers::nodelifecycle::EvictionConfig,
    /// How often the store revision is anchored on the ledger (when it changed).
    pub anchor_interval: Duration,
    /// `iss` of service-account tokens and the OIDC discovery issuer (`--service-account-issuer`).
    pub service_account_issuer: String,
    /// Audiences the API server accepts service-account tokens for (`--api-audiences`); empty
    /// means the issuer.
    pub api_audiences: Vec<String>,
    /// Service cluster-IP range, an IPv4 CIDR (`--service-cluster-ip-range`).
    pub service_cluster_ip_range: String,
    /// Service node-port range, `FIRST-LAST` (`--service-node-port-range`).
    pub service_node_port_range: String,
    /// Pod network of the cluster, an IPv4 CIDR nodes get their pod CIDRs from (`--cluster-cidr`).
    pub cluster_cidr: String,
    /// Prefix length of each node's pod CIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
    /// Leader election of the controllers and scheduler, identity Lease and endpoint TTL.
    pub leader_election: controlplane::LeaderElection,
    /// Scheduled sealed snapshots (None: only on request, `POST /api/v1/snapshots`).
    pub snapshots: Option<snapshot::Schedule>,
    /// API priority and fairness (`--max-requests-inflight`, ...); None: no limits.
    pub flow_control: Option<daas_apiserver::flowcontrol::FlowControlConfig>,
    /// Abuse limits: watches, failed authentications, body size, HTTP/2 streams (see
    /// [`limits::MasterLimits`]).
    pub limits: limits::MasterLimits,
    /// Metering, settlement and dry-escrow enforcement (needs a ledger and a Sui key); None: off.
    pub billing: Option<billing::BillingConfig>,
    /// The audit log (`--audit-log-path`, ...); None: no audit events.
    pub audit: Option<audit::AuditConfig>,
}

impl MasterConfig {
    pub fn new(
        data_dir: PathBuf,
        listen: SocketAddr,
        store: Arc<dyn Store>,
        enclave: EnclaveHandle,
    ) -> Self {
        MasterConfig {
            data_dir,
            listen,
            store,
            enclave,
            tls_sans: Vec::new(),
            bookmark_interval: Duration::from_secs(30),
            retain_revisions: 10_000,
            compact_interval: Duration::from_secs(300),
            controller_resync: Duration::from_secs(10),
            hpa_sync_period: daas_controllers::hpa::DEFAULT_SYNC_PERIOD,
            metric_resolution: daas_apiserver::registry::metrics::RESOLUTION,
            default_tolerations: Default::default(),
            ledger: None,
            token_cache_ttl: Duration::from_secs(10),
            sui_key: None,
            node_grace: Duration::from_secs(40),
            node_eviction: Default::default(),
            anchor_interval: Duration::from_secs(30),
            service_account_issuer: daas_apiserver::satoken::DEFAULT_ISSUER.to_string(),
            api_audiences: Vec::new(),
            service_cluster_ip_range: daas_apiserver::registry::ipalloc::DEFAULT_CLUSTER_IP_RANGE
                .to_string(),
            service_node_port_range: daas_apiserver::registry::ipalloc::DEFAULT_NODE_PORT_RANGE
                .to_string(),
            cluster_cidr: daas_controllers::nodeipam::DEFAULT_CLUSTER_CIDR.to_string(),
            node_cidr_mask_size: daas_controllers::nodeipam::DEFAULT_NODE_CIDR_MASK_SIZE,
            leader_election: controlplane::LeaderElection::default(),
            flow_control: Some(Default::default()),
            limits: Default::default(),
            snapshots: None,
            billing: Some(Default::default()),
            audit: None,
        }
    }
}

/// The address the `kubernetes` Endpoints advertise, as kube-apiserver's default advertise
/// address: the listen address when it is neither unspecified nor loopback (endpoints may not be
/// loopback), else the first IP among the certificate's SANs that is neither, else the address of
/// the interface holding the default route (no packet is sent), else the listen address.
pub fn advertise_address(listen: std::net::IpAddr, sans: &[String]) -> std::net::IpAddr {
    if !listen.is_unspecified() && !listen.is_loopback() {
        return listen;
    }
    if let Some(ip) = sans
        .iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .find(|ip| !ip.is_loopback() && !ip.is_unspecified())
    {
        return ip;
    }
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
        .unwrap_or(listen)
}

/// Read a secret file, or create it with `make` (mode 0600).
pub fn secret_file(path: &Path, make: impl FnOnce() -> String) -> Result<String, MasterError> {
    if path.exists() {
        restrict(path, 0o600)?;
        return Ok(std::fs::read_to_string(path)
            .map_err(io(format!("reading {}", path.display())))?
            .trim()
            .to_string());
    }
    let v = make();
    write_private(path, v.as_bytes())?;
    Ok(v)
}

/// Set the permission bits of `path` (Unix; a no-op elsewhere).
fn restrict(path: &Path, mode: u32) -> Result<(), MasterError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io(format!("chmod {}", path.display())))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Create `dir` (and its parents) and make it accessible to its owner only (0700), tightening an
/// existing directory too: it holds the admin token, TLS keys and the sealed state.
pub fn private_dir(dir: &Path) -> Result<(), MasterError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    restrict(dir, 0o700)
}

/// Atomically replace `path` with `data`, readable by the owner only (0600 from creation on).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), MasterError> {
    daas_apiserver::files::write_private(path, data)
        .map_err(io(format!("writing {}", path.display())))
}

pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k3s-daas\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: k3s-daas-admin\n  user:\n    token: {token}\ncontexts:\n- name: k3s-daas\n  context:\n    cluster: k3s-daas\n    user: k3s-daas-admin\n    namespace: default\ncurrent-context: k3s-daas\n"
    )
}

/// A master that has bound its port and is ready to serve.
pub struct Master {
    pub url: String,
    pub kubeconfig_path: PathBuf,
    pub enclave: EnclaveHandle,
    /// Present when the master has a ledger and a Sui key: reports dead nodes for slashing.
    pub slasher: Option<Arc<slashing::Slasher>>,
    /// Present when the master has a ledger and a Sui key: anchors the store revision.
    pub anchorer: Option<Arc<anchor::Anchorer>>,
    /// The cluster id (kept in the sealed store); credentials carry `k3s-daas:<cluster id>`.
    pub cluster_id: String,
    /// Leader elections and per-master tasks; `shutdown()` releases the Leases.
    pub control_plane: Arc<controlplane::ControlPlane>,
    /// The audit log; `close()` writes its shutdown checkpoint.
    pub audit_log: Option<Arc<daas_apiserver::audit::writer::AuditLog>>,
    registration: Arc<std::sync::RwLock<Option<registration::Registration>>>,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    serve: daas_apiserver::ServeOptions,
    _background: Vec<tokio::task::JoinHandle<()>>,
}

impl Master {
    /// Bootstrap the cluster in the configured store, bind the port and write the admin
    /// kubeconfig.
    pub async fn start(cfg: MasterConfig) -> Result<Master, MasterError> {
        let dir = cfg.data_dir.clone();
        let service_ranges = daas_apiserver::registry::ipalloc::ServiceRanges::parse(
            &cfg.service_cluster_ip_range,
            &cfg.service_node_port_range,
        )
        .map_err(|e| MasterError::Config(e.to_string()))?;
        private_dir(&dir)?;
        let enclave = cfg.enclave.clone();
        let store = cfg.store.clone();
        // The key the store is sealed with, which this master shares with masters that join.
        let cluster_key = clusterkey::resolve(&dir.join("tee"), enclave.enclave.as_ref())?;
        // Rollback detection, before anything writes to the store.
        let anchored = match &cfg.ledger {
            Some(l) => {
                let anchored = anchor::anchored_revision(l.as_ref(), &enclave).await?;
                anchor::check_revision(store.current_revision().await?, anchored)?;
                anchored
            }
            None => 0,
        };
        daas_apiserver::bootstrap_with(&store, &service_ranges).await?;
        let cluster_id = seed::cluster_id(&store).await?;
        let mut background: Vec<tokio::task::JoinHandle<()>> = Vec::new();

        // Shared by every master of the cluster (sealed store); this master's copy for its
        // operator, as before.
        let admin_token = clusterstate::admin_token(&store, &dir.join("admin.token")).await?;
        write_private(&dir.join("admin.token"), admin_token.as_bytes())?;
        let internal_token = random_hex(32);
        let metrics = Arc::new(metrics::Metrics::new());
        let static_tokens = Arc::new(StaticTokens::new(vec![
            (
                admin_token.clone(),
                User {
                    name: "k3s-daas-admin".into(),
                    groups: vec!["system:masters".into()],
                    ..Default::default()
                },
            ),
            (
                internal_token.clone(),
                User {
                    name: "system:kube-controller-manager".into(),
                    groups: vec!["system:masters".into()],
                    ..Default::default()
                },
            ),
        ]));
        let seal_tokens = cfg.ledger.clone().map(|l| {
            Arc::new(auth::SealTokenAuthenticator::new(
                l,
                daas_ledger::credential::audience(&cluster_id),
                cfg.token_cache_ttl,
                metrics.clone(),
            ))
        });
        let sa_tokens = satokens::issuer(
            &store,
            &cfg.service_account_issuer,
            cfg.api_audiences.clone(),
        )
        .await?;
        let mut chain: Vec<Arc<dyn daas_apiserver::Authenticator>> = vec![static_tokens];
        if let Some(st) = &seal_tokens {
            chain.push(st.clone());
        }
        chain.push(Arc::new(
            daas_apiserver::satoken::ServiceAccountAuthenticator::new(
                store.clone(),
                sa_tokens.clone(),
            ),
        ));
        let auth: Arc<dyn daas_apiserver::Authenticator> = Arc::new(auth::Chain(chain));
        // In-cluster clients reach the API server at the `kubernetes` Service's IP.
        let mut sans = cfg.tls_sans.clone();
        sans.push(service_ranges.first_ip().to_string());
        let cluster_ca = clusterstate::cluster_ca(&store, &dir.join("tls")).await?;
        let tls = TlsMaterial::load_or_issue(&dir.join("tls"), &cluster_ca, &sans)?;
        let (auditor, audit_log) = match &cfg.audit {
            Some(a) => {
                let (auditor, log) = audit::start(a, enclave.enclave.clone())?;
                (Some(auditor), Some(log))
            }
            None => (None, None),
        };
        // One low-priority runtime: the API server's handlers and the HTTPS server's connections.
        let low_priority = cfg.limits.low_priority_runtime()?;
        let api = daas_apiserver::router(
            store.clone(),
            auth.clone(),
            ServerOptions {
                bookmark_interval: cfg.bookmark_interval,
                node_proxy: Some(Arc::new(nodeproxy::AgentProxy {
                    enclave: enclave.enclave.clone(),
                })),
                service_accounts: Some(sa_tokens),
                client_certs: Some(tls.client_cert_authenticator()?),
                service_ranges: service_ranges.clone(),
                metrics_resolution: cfg.metric_resolution,
                default_tolerations: cfg.default_tolerations,
                flow_control: flowcontrol(&cfg, &metrics)?,
                audit: auditor,
                limits: cfg.limits.api()?,
                low_priority: low_priority.clone(),
                max_body: cfg.limits.max_body,
                ..Default::default()
            },
        );
        let client = LocalClient::new(api.clone(), internal_token);
        let copts = daas_controllers::ControllerOptions {
            resync: cfg.controller_resync,
            hpa_sync_period: cfg.hpa_sync_period,
            ..Default::default()
        };
        // User-tier stakers' namespaces, on demand of the seal-token authenticator.
        if let Some(st) = &seal_tokens {
            background.push(daas_controllers::spawn_controller(
                client.clone(),
                st.user_namespaces().controller(client.clone()),
                &copts,
            ));
        }
        let slasher = match (&seal_tokens, &cfg.ledger, &cfg.sui_key) {
            (Some(st), Some(l), Some(k)) => Some(Arc::new(slashing::Slasher::new(
                daas_ledger::wallet::Wallet::new(l.clone(), k.clone()),
                enclave.clone(),
                st.clone(),
                metrics.clone(),
            ))),
            _ => None,
        };
        let anchorer = match (&cfg.ledger, &cfg.sui_key) {
            (Some(l), Some(k)) => Some(Arc::new(anchor::Anchorer::new(
                daas_ledger::wallet::Wallet::new(l.clone(), k.clone()),
                enclave.clone(),
                store.clone(),
                metrics.clone(),
                anchored,
            ))),
            _ => None,
        };
        let registration = Arc::new(std::sync::RwLock::new(None));
        let billing = billing::build(
            &cfg,
            &seal_tokens,
            &client,
            &enclave,
            &registration,
            &metrics,
        );
        let snapshotter = Arc::new(snapshot::Snapshotter {
            store: store.clone(),
            enclave: enclave.clone(),
            cluster_key: cluster_key.clone(),
            cluster_id: cluster_id.clone(),
            ledger: cfg.ledger.clone(),
            registration: registration.clone(),
        });
        // The controllers, compactor, anchorer and snapshot schedule run on the master leading
        // the `kube-controller-manager` Lease (started once the port is bound).
        let controllers = controlplane::ControllerSet {
            client: client.clone(),
            opts: copts.clone(),
            store: store.clone(),
            compact_interval: cfg.compact_interval,
            retain_revisions: cfg.retain_revisions,
            service_ranges: service_ranges.clone(),
            node_grace: cfg.node_grace,
            node_eviction: cfg.node_eviction.clone(),
            node_failures: slasher.clone().map(|s| s as _),
            stakes: cfg
                .ledger
                .clone()
                .map(|l| Arc::new(stakes::LedgerStakes(l)) as _),
            anchorer: anchorer.clone().map(|a| (a, cfg.anchor_interval)),
            cluster_cidr: cfg.cluster_cidr.clone(),
            node_cidr_mask_size: cfg.node_cidr_mask_size,
            ca_cert_pem: tls.ca_cert_pem.clone(),
            ca_key_pem: cluster_ca.key_pem.clone(),
            snapshots: cfg.snapshots.clone().map(|s| (snapshotter.clone(), s)),
            billing,
        };
        controllers.validate()?;
        let seed_state_auth = auth.clone();
        let seed_state = seed::SeedState {
            enclave: enclave.clone(),
            tls_cert_sha256: seed::tls_binding(&tls.server_cert_der()?),
            store: store.clone(),
            metrics: metrics.clone(),
            client: client.clone(),
            ledger: cfg.ledger.clone(),
            tokens: seal_tokens,
            auth: auth.clone(),
            cluster_id: cluster_id.clone(),
            registration: registration.clone(),
        };
        let keyshare = Arc::new(keyshare::KeyShareServer::new(&enclave, cluster_key.clone()));
        let app = seed::router(seed_state.clone())
            .merge(console::router(seed_state.clone()))
            .merge(monitoring::router(seed_state))
            .merge(keyshare::router(keyshare))
            .merge(snapshot::router(snapshotter, seed_state_auth));
        let app = limits::bound_bodies(app, cfg.limits.max_body)
            .merge(api)
            .layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                seed::record_requests,
            ));

        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(io(format!("binding {}", cfg.listen)))?;
        let addr = listener.local_addr().map_err(io("local address"))?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let url = format!("https://{host}:{}", addr.port());
        // Leader-elected groups; the `kubernetes` Service lists every live master.
        let control_plane = Arc::new(controlplane::ControlPlane::start(
            controllers,
            &cfg.leader_election,
            &controlplane::master_id(&dir),
            controlplane::Advertise {
                cluster_ip: service_ranges.first_ip(),
                address: advertise_address(addr.ip(), &cfg.tls_sans),
                port: addr.port(),
            },
            std::mem::take(&mut background),
            Some(metrics),
        )?);
        let kubeconfig_path = dir.join("kubeconfig.yaml");
        write_private(
            &kubeconfig_path,
            kubeconfig(&url, &tls.ca_cert_pem, &admin_token).as_bytes(),
        )?;
        let root_path = dir.join("tee").join("trusted-root.pem");
        std::fs::write(&root_path, &enclave.root_pem).map_err(io("writing enclave root"))?;
        tracing::info!(%url, data_dir = %dir.display(), enclave = enclave.kind, %cluster_id, "master ready");
        Ok(Master {
            url,
            cluster_id,
            registration,
            kubeconfig_path,
            enclave,
            slasher,
            anchorer,
            control_plane,
            audit_log,
            listener,
            tls: tls.server_config()?,
            app,
            serve: cfg.limits.serve_options(low_priority),
            _background: background,
        })
    }

    /// Where the enclave is registered on the ledger: used to sign slashing reports, and named in
    /// the attestation answer so clients find the expected measurement on the ledger.
    pub fn set_registration(&self, reg: registration::Registration) {
        if let Some(s) = &self.slasher {
            s.set_registration(reg.clone());
        }
        if let Some(a) = &self.anchorer {
            a.set_registration(reg.clone());
        }
        if let Ok(mut g) = self.registration.write() {
            *g = Some(reg);
        }
    }

    /// Serve until the process is told to stop.
    pub async fn serve(self) -> Result<(), MasterError> {
        daas_apiserver::serve_tls_with(self.listener, self.tls, self.app, self.serve)
            .await
            .map_err(io("serving"))
    }
}

#[cfg(test)]
mod advertise_tests {
    use super::advertise_address;

    #[test]
    fn advertise_address_is_never_loopback_when_another_is_known() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(advertise_address(ip("10.1.2.3"), &[]), ip("10.1.2.3"));
        let sans = vec![
            "localhost".to_string(),
            "127.0.0.1".into(),
            "203.0.113.7".into(),
        ];
        assert_eq!(advertise_address(ip("127.0.0.1"), &sans), ip("203.0.113.7"));
        assert_eq!(advertise_address(ip("0.0.0.0"), &sans), ip("203.0.113.7"));
    }
}
