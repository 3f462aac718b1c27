//! `daas`: the K3s-DaaS command line (local cluster, master, ledger, keys, attestation).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::{EmbeddedLedger, GenesisConfig, Ledger};
use daas_master::{Master, MasterConfig, Measurement};

/// mimalloc instead of glibc malloc (feature `mimalloc`): glibc's arenas were ~20% of the
/// master's CPU at scale.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod account_cli;
mod audit_cli;
mod backends;
mod bench_flood;
mod bench_http;
mod billing_cli;
mod config_file;
mod evidence_cli;
mod flowcontrol_cli;
mod hollow_cli;
mod install;
mod joinconfig;
mod limits_cli;
mod report;
mod snapshot_cli;
mod tee_cli;
mod up;
use up::UpArgs;

#[derive(Parser)]
#[command(
    name = "daas",
    version,
    about = "K3s-DaaS: decentralized Kubernetes on Sui stake"
)]
struct Cli {
    /// On failure print the whole cause chain (and usage), not just one line.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local all-in-one cluster (embedded ledger + master) and write a kubeconfig.
    Up(Box<UpArgs>),
    /// Run the control plane (API server, controllers) in its enclave.
    #[command(alias = "server")]
    Master(Box<MasterArgs>),
    /// Print the admin kubeconfig of a data directory.
    Kubeconfig {
        #[arg(long, env = "DAAS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Generate a Sui Ed25519 key file and print its address.
    Keygen {
        /// Where to write the key (suiprivkey format, mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// The audit log: `daas audit verify <file>... --enclave-key <hex> | --master <url>`.
    Audit {
        #[command(subcommand)]
        cmd: audit_cli::AuditCmd,
    },
    /// Verify a master's attestation over attested TLS and print what was verified.
    Attest {
        #[command(flatten)]
        attest: AttestArgs,
        /// Ledger endpoint: the expected PCRs are read from the enclave configuration registered
        /// there. Without it (or without a registered configuration) --expect-pcr is required.
        #[arg(long, env = "SUI_RPC_ENDPOINT")]
        chain: Option<String>,
    },
    /// Run the embedded ledger alone and serve it over HTTP (`daas up` includes it).
    Chain(ChainArgs),
    /// Mint SUI on the embedded ledger (local development).
    Faucet {
        #[command(flatten)]
        chain: ChainRef,
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 100_000_000_000)]
        amount: u64,
    },
    /// Stake SUI as a user, node or admin (tiered minimums).
    Stake {
        #[command(flatten)]
        wallet: WalletArgs,
        /// Amount in MIST.
        #[arg(long)]
        amount: u64,
        #[arg(long, value_parser = ["user", "node", "admin"], default_value = "user")]
        role: String,
        /// Node name (required for role node).
        #[arg(long, default_value = "")]
        node_id: String,
    },
    /// Start the unstake lockup (seal tokens stop working at once).
    Unstake {
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Withdraw the stake after the lockup.
    Withdraw {
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Seal tokens: `issue` one, or print a short-lived credential (kubectl exec plugin with --exec).
    Token(TokenArgs),
    /// Write a kubeconfig for a staked identity after verifying the master's attestation.
    Join(JoinArgs),
    /// Run the staker host: stake, attested join, heartbeats, pods through containerd.
    Agent {
        /// staker-config.json (env SUI_RPC_ENDPOINT, NAUTILUS_ENDPOINT, MIN_STAKE_AMOUNT override it).
        #[arg(long, default_value = "staker-config.json")]
        config: PathBuf,
    },
    /// Run N simulated staked nodes in one process (scale tests; no containers).
    Hollow(Box<hollow_cli::HollowArgs>),
    /// Verify TEE evidence files (Nitro document, SEV-SNP report + VCEK, TDX quote + collateral)
    /// offline against the pinned roots and --expect-measurement.
    VerifyEvidence(Box<evidence_cli::EvidenceArgs>),
    /// HTTP load client of scripts/bench-token.sh.
    #[command(hide = true)]
    BenchHttp(Box<bench_http::BenchArgs>),
    /// Flood and probe clients of scripts/bench-flood.sh.
    #[command(hide = true)]
    BenchFlood(Box<bench_flood::FloodArgs>),
    /// Leave the cluster as a staker host: cordon, evict pods, then start the unstake lockup.
    Leave {
        #[arg(long, default_value = "staker-config.json")]
        config: PathBuf,
    },
    /// Write systemd units, a config file and an environment file for a master or a staker host.
    Install(install::InstallArgs),
    /// Remove what `daas install` wrote (it stops nothing; the data directories stay).
    Uninstall(install::UninstallArgs),
    /// Sealed snapshots: save from a running master, list, restore into a new data directory.
    Snapshot {
        #[command(subcommand)]
        cmd: snapshot_cli::SnapshotCmd,
    },
    /// Show an address's escrow, earnings, stake, slashes, seal tokens and last settlements.
    Account(account_cli::AccountArgs),
    /// Move SUI into your escrow on the ledger's market (pays for your pods).
    Deposit(account_cli::DepositArgs),
    /// Withdraw unspent escrow.
    WithdrawEscrow(account_cli::WithdrawArgs),
    /// Withdraw a node operator's earnings.
    WithdrawEarnings(account_cli::WithdrawArgs),
}

#[derive(Args, Clone)]
struct ChainRef {
    /// Ledger endpoint (`daas chain` / `daas up` HTTP API).
    #[arg(long, env = "SUI_RPC_ENDPOINT")]
    chain: String,
}

#[derive(Args, Clone)]
struct WalletArgs {
    #[command(flatten)]
    chain: ChainRef,
    /// Sui key file (`daas keygen`).
    #[arg(long)]
    key: PathBuf,
}

#[derive(Args, Clone)]
struct ChainArgs {
    #[arg(long, env = "DAAS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 3600)]
    epoch_seconds: u64,
}

#[derive(Args, Clone)]
struct TokenArgs {
    #[command(flatten)]
    wallet: WalletArgs,
    /// `issue`: create a new seal token on chain and print its id.
    #[arg(value_parser = ["issue", "credential"], default_value = "credential")]
    action: String,
    /// Seal token id (default: a valid token owned by the key).
    #[arg(long)]
    token: Option<String>,
    /// Print a client.authentication.k8s.io/v1 ExecCredential (for kubeconfig exec).
    #[arg(long)]
    exec: bool,
    /// Credential lifetime in seconds (at most 900).
    #[arg(long, default_value_t = 600)]
    ttl_seconds: u64,
    /// The cluster the credential is for: `k3s-daas:<cluster id>` (`daas attest` prints it;
    /// `daas join` writes it into the kubeconfig). Required to mint a credential.
    #[arg(long)]
    audience: Option<String>,
}

#[derive(Args, Clone)]
struct JoinArgs {
    #[command(flatten)]
    wallet: WalletArgs,
    #[command(flatten)]
    attest: AttestArgs,
    /// Where to write the kubeconfig.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Clone)]
struct MasterArgs {
    /// YAML or JSON file of settings: keys are the long flag names (`listen`, `data-dir`,
    /// `tls-san`, ...); flags on the command line win.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where state, keys and certificates live (default: ~/.k3s-daas).
    #[arg(long, env = "DAAS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address the API server listens on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Extra DNS names or IPs for the serving certificate.
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Seconds between idle watch bookmarks.
    #[arg(long, default_value_t = 30)]
    bookmark_seconds: u64,
    /// Revisions of history kept for watchers before compaction.
    #[arg(long, default_value_t = 10_000)]
    retain_revisions: i64,
    /// Seconds between compactions.
    #[arg(long, default_value_t = 300)]
    compact_seconds: u64,
    /// Simulated enclave measurement: `release` (stable per version), `binary` (hash of this
    /// executable) or 96 hex characters.
    #[arg(long, default_value = "release")]
    enclave_measurement: Measurement,
    /// Directory of the simulated enclave's dev root (the simulated platform vendor's root;
    /// created there if absent; default `<data>/tee`). Masters of one cluster on one simulated
    /// platform share it, so their attestation documents verify against one root.
    #[arg(long)]
    enclave_dev_root: Option<PathBuf>,
    /// A running master of the cluster to join (https://host:port, k3s' `--server`): when this
    /// data dir keeps no cluster key yet, it is fetched from that master (which verifies this
    /// enclave's attestation) before the store is opened.
    #[arg(long)]
    server: Option<String>,
    /// Seconds a validated seal-token credential is trusted before asking the ledger again.
    #[arg(long, default_value_t = 10)]
    token_cache_seconds: u64,
    /// Seconds without a Lease renewal before a node is declared dead (tainted, evicted, slashed).
    #[arg(long, default_value_t = 40)]
    node_grace_seconds: u64,
    /// Nodes per second whose pods are evicted (NoExecute taint) in a healthy zone.
    #[arg(long, default_value_t = 0.1)]
    node_eviction_rate: f64,
    /// Nodes per second evicted in a partially disrupted zone larger than
    /// `--large-cluster-size-threshold` (smaller ones: none).
    #[arg(long, default_value_t = 0.01)]
    secondary_node_eviction_rate: f64,
    /// Fraction of not-Ready nodes (at least 3) that makes a zone partially disrupted.
    #[arg(long, default_value_t = 0.55)]
    unhealthy_zone_threshold: f64,
    /// Nodes a zone needs for the secondary eviction rate (smaller zones stop evicting).
    #[arg(long, default_value_t = 50)]
    large_cluster_size_threshold: usize,
    /// Seconds a node must stay silent beyond `--node-grace-seconds` (and be evicted) before its
    /// stake is slashed (default: twice the grace period).
    #[arg(long)]
    node_slash_delay_seconds: Option<u64>,
    /// tolerationSeconds of the `node.kubernetes.io/not-ready:NoExecute` toleration every new pod
    /// without one gets (upstream's DefaultTolerationSeconds admission).
    #[arg(long, default_value_t = daas_master::DEFAULT_TOLERATION_SECONDS)]
    default_not_ready_toleration_seconds: u32,
    /// tolerationSeconds of the `node.kubernetes.io/unreachable:NoExecute` toleration every new
    /// pod without one gets: how long its pods stay bound to a silent node.
    #[arg(long, default_value_t = daas_master::DEFAULT_TOLERATION_SECONDS)]
    default_unreachable_toleration_seconds: u32,
    /// Seconds between two syncs of each HorizontalPodAutoscaler (upstream's
    /// `--horizontal-pod-autoscaler-sync-period`).
    #[arg(long, default_value_t = 15)]
    horizontal_pod_autoscaler_sync_period_seconds: u64,
    /// Seconds metrics.k8s.io reuses a node's stats summary (metrics-server's
    /// `--metric-resolution`).
    #[arg(long, default_value_t = 15)]
    metric_resolution_seconds: u64,
    /// Seconds between anchors of the sealed store's revision on the ledger (rollback detection).
    #[arg(long, default_value_t = 30)]
    anchor_interval_seconds: u64,
    /// Issuer (`iss`) of service-account tokens, served by OIDC discovery.
    #[arg(long, default_value = daas_master::satokens::DEFAULT_ISSUER)]
    service_account_issuer: String,
    /// Audiences service-account tokens must carry to authenticate to the API server
    /// (repeatable; default: the issuer).
    #[arg(long = "api-audiences", value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// IPv4 CIDR Services get their cluster IPs from (the first one is the `kubernetes` Service's).
    #[arg(long, default_value = daas_master::DEFAULT_CLUSTER_IP_RANGE)]
    service_cluster_ip_range: String,
    /// Port range NodePort and LoadBalancer Services get their node ports from (FIRST-LAST).
    #[arg(long, default_value = daas_master::DEFAULT_NODE_PORT_RANGE)]
    service_node_port_range: String,
    /// IPv4 CIDR of the pod network; every node gets its pod CIDR from it.
    #[arg(long, default_value = daas_master::DEFAULT_CLUSTER_CIDR)]
    cluster_cidr: String,
    /// Prefix length of each node's pod CIDR inside `--cluster-cidr`.
    #[arg(long, default_value_t = daas_master::DEFAULT_NODE_CIDR_MASK_SIZE)]
    node_cidr_mask_size: u8,
    /// How long a non-leader waits after the leader's last renewal of the controller and
    /// scheduler Leases before taking them (upstream's flag; `15s`, `500ms`, ...).
    #[arg(long, default_value = "15s", value_parser = daas_master::controlplane::parse_duration)]
    leader_elect_lease_duration: Duration,
    /// How long the leader retries renewing before it stops its controllers.
    #[arg(long, default_value = "10s", value_parser = daas_master::controlplane::parse_duration)]
    leader_elect_renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    #[arg(long, default_value = "2s", value_parser = daas_master::controlplane::parse_duration)]
    leader_elect_retry_period: Duration,
    /// How often this master renews its identity Lease `kube-system/kube-apiserver-<id>`.
    #[arg(long, default_value = "10s", value_parser = daas_master::controlplane::parse_duration)]
    identity_lease_renew_interval: Duration,
    /// Masters whose identity Lease was renewed within this long are the `kubernetes`
    /// Service's endpoints.
    #[arg(long, default_value = "15s", value_parser = daas_master::controlplane::parse_duration)]
    endpoint_ttl: Duration,
    #[command(flatten)]
    backends: backends::BackendArgs,
    #[command(flatten)]
    snapshot: snapshot_cli::ScheduleArgs,
    #[command(flatten)]
    flow_control: flowcontrol_cli::FlowControlArgs,
    #[command(flatten)]
    tee: tee_cli::TeeArgs,
    #[command(flatten)]
    audit: audit_cli::AuditArgs,
    #[command(flatten)]
    limits: limits_cli::LimitsArgs,
    #[command(flatten)]
    billing: billing_cli::BillingArgs,
}

#[derive(Args, Clone)]
struct AttestArgs {
    /// Master URL (https://host:port); repeat it (or comma-separate NAUTILUS_ENDPOINT) for
    /// every master of an HA cluster: each is attested and all must announce one cluster id.
    #[arg(
        long,
        env = "NAUTILUS_ENDPOINT",
        value_delimiter = ',',
        required = true
    )]
    server: Vec<String>,
    /// PEM root to trust for attestation documents in addition to the AWS Nitro root (the
    /// simulated enclave's dev root, `<data>/tee/trusted-root.pem`). Only for development.
    #[arg(long)]
    trust_root: Option<PathBuf>,
    /// Expected PCR value, `index=hex` (repeatable). Required in addition to the PCRs of the
    /// enclave configuration registered on the ledger, and instead of them when none is registered.
    #[arg(long = "expect-pcr")]
    expect_pcr: Vec<String>,
    /// Expected measurement per platform (repeatable): `nitro:pcr0=<hex>,pcr1=<hex>,..` (as
    /// --expect-pcr), `sev-snp:measurement=<hex>`, `tdx:mrtd=<hex>,rtmr0=<hex>,..,rtmr3=<hex>`.
    /// Required in addition to the ledger's registration of the master's platform.
    #[arg(long = "expect-measurement")]
    expect_measurement: Vec<String>,
    /// Verify the attestation evidence at this time (Unix seconds) instead of now, e.g.
    /// recorded evidence whose collateral has expired since.
    #[arg(long, hide = true)]
    verify_at: Option<u64>,
    /// Write the verified cluster CA here (PEM).
    #[arg(long)]
    ca_out: Option<PathBuf>,
}

fn default_data_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".k3s-daas")
    })
}

/// The master's configuration with its enclave and datastore opened (the ledger is the caller's).
async fn master_config(a: &MasterArgs, dir: PathBuf) -> Result<MasterConfig> {
    let (enclave, store) = a
        .backends
        .open_explained(
            &dir,
            &a.enclave_measurement,
            a.enclave_dev_root.as_deref(),
            a.server.as_deref(),
        )
        .await?;
    let enclave = tee_cli::attach(enclave, &a.tee)?;
    let mut cfg = MasterConfig::new(dir, a.listen, store, enclave);
    cfg.tls_sans = a.tls_san.clone();
    cfg.bookmark_interval = Duration::from_secs(a.bookmark_seconds.max(1));
    cfg.retain_revisions = a.retain_revisions;
    cfg.compact_interval = Duration::from_secs(a.compact_seconds.max(1));
    cfg.token_cache_ttl = Duration::from_secs(a.token_cache_seconds);
    cfg.node_grace = Duration::from_secs(a.node_grace_seconds.max(1));
    cfg.node_eviction = daas_master::NodeEvictionConfig {
        eviction_rate: a.node_eviction_rate,
        secondary_eviction_rate: a.secondary_node_eviction_rate,
        unhealthy_zone_threshold: a.unhealthy_zone_threshold,
        large_cluster_size_threshold: a.large_cluster_size_threshold,
        slash_delay: a.node_slash_delay_seconds.map(Duration::from_secs),
    };
    cfg.default_tolerations = daas_master::DefaultTolerations {
        not_ready_seconds: a.default_not_ready_toleration_seconds,
        unreachable_seconds: a.default_unreachable_toleration_seconds,
    };
    cfg.hpa_sync_period =
        Duration::from_secs(a.horizontal_pod_autoscaler_sync_period_seconds.max(1));
    cfg.anchor_interval = Duration::from_secs(a.anchor_interval_seconds.max(1));
    cfg.service_account_issuer = a.service_account_issuer.clone();
    cfg.api_audiences = a.api_audiences.clone();
    cfg.service_cluster_ip_range = a.service_cluster_ip_range.clone();
    cfg.service_node_port_range = a.service_node_port_range.clone();
    cfg.cluster_cidr = a.cluster_cidr.clone();
    cfg.node_cidr_mask_size = a.node_cidr_mask_size;
    cfg.leader_election = daas_master::controlplane::LeaderElection {
        timings: daas_master::controlplane::ElectionTimings {
            lease_duration: a.leader_elect_lease_duration,
            renew_deadline: a.leader_elect_renew_deadline,
            retry_period: a.leader_elect_retry_period,
        },
        identity_renew_interval: a.identity_lease_renew_interval,
        endpoint_ttl: a.endpoint_ttl,
    };
    cfg.snapshots = a.snapshot.schedule(&cfg.data_dir);
    cfg.flow_control = a.flow_control.config()?;
    cfg.audit = a.audit.config(&cfg.data_dir)?;
    cfg.limits = a.limits.config()?;
    cfg.billing = a.billing.config()?;
    Ok(cfg)
}

fn load_or_create_key(path: &Path) -> Result<SuiKeypair> {
    if path.exists() {
        return SuiKeypair::load(path).with_context(|| format!("reading key {}", path.display()));
    }
    let k = SuiKeypair::generate();
    k.save(path)
        .with_context(|| format!("writing key {}", path.display()))?;
    Ok(k)
}

/// The embedded ledger of a local cluster: genesis publishes the package with `admin.key` as
/// publisher (AdminCap holder) and funds it.
fn open_embedded_ledger(
    dir: &Path,
    epoch_seconds: u64,
    master_endpoint: &str,
) -> Result<(EmbeddedLedger, SuiKeypair)> {
    std::fs::create_dir_all(dir.join("ledger"))?;
    let admin = load_or_create_key(&dir.join("ledger").join("admin.key"))?;
    let mut genesis = GenesisConfig::new(admin.address());
    genesis.master_endpoint = master_endpoint.to_string();
    genesis.coins = vec![(admin.address(), 1_000_000_000_000)];
    genesis.epoch_duration = Some(Duration::from_secs(epoch_seconds.max(1)));
    let ledger = EmbeddedLedger::open(dir.join("ledger").join("ledger.redb"), &genesis)
        .map_err(|e| anyhow::anyhow!("opening the embedded ledger: {e}"))?;
    Ok((ledger, admin))
}

/// Serve the ledger's HTTP API; returns its URL.
async fn serve_chain(ledger: Arc<dyn Ledger>, listen: SocketAddr) -> Result<String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let app = daas_ledger::http::router(ledger);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "ledger API stopped");
        }
    });
    Ok(format!("http://{addr}"))
}

async fn run_chain(a: ChainArgs) -> Result<()> {
    let dir = default_data_dir(a.data_dir.clone());
    let (embedded, admin) = open_embedded_ledger(&dir, a.epoch_seconds, "")?;
    let ledger: Arc<dyn Ledger> = Arc::new(embedded);
    let url = serve_chain(ledger.clone(), a.listen).await?;
    let d = ledger
        .deployment()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "Embedded ledger API on {url}: package {}, staking pool {}, admin {}",
        d.package,
        d.pool.id,
        admin.address()
    );
    shutdown_signal().await;
    Ok(())
}

fn remote(chain: &ChainRef) -> Result<Arc<dyn Ledger>> {
    Ok(Arc::new(
        daas_ledger::remote::RemoteLedger::new(&chain.chain).map_err(|e| anyhow::anyhow!("{e}"))?,
    ))
}

fn wallet(w: &WalletArgs) -> Result<daas_ledger::wallet::Wallet> {
    let key =
        SuiKeypair::load(&w.key).with_context(|| format!("reading key {}", w.key.display()))?;
    Ok(daas_ledger::wallet::Wallet::new(remote(&w.chain)?, key))
}

fn role_code(r: &str) -> u8 {
    match r {
        "node" => 1,
        "admin" => 2,
        _ => 0,
    }
}

/// Readable message for a failed ledger transaction.
fn explain(e: daas_ledger::wallet::WalletError, what: &str) -> anyhow::Error {
    let msg = match e.abort() {
        Some((m, c)) => {
            let name = match (m.as_str(), c) {
                ("staking", 1) => "below the minimum stake for this role",
                ("staking", 2) => "invalid role",
                ("staking", 3) => "a node stake needs --node-id",
                ("staking", 4) => "the existing stake has another role or node id",
                ("staking", 5) => "no stake",
                ("staking", 6) => "the stake is not active",
                ("staking", 7) => "the stake is still active: unstake first",
                ("staking", 8) => "the stake is still locked (lockup epochs not over)",
                ("staking", 12) => "another address holds a live stake for this --node-id",
                ("k8s_gateway", 101) => "no active stake",
                ("k8s_gateway", 102) => "not the owner",
                _ => "aborted",
            };
            format!("{what} refused by the ledger: {name} ({m}::{c})")
        }
        None => format!("{what} failed: {e}"),
    };
    anyhow::anyhow!(msg)
}

async fn find_valid_token(w: &daas_ledger::wallet::Wallet) -> Result<sui_sdk_types::Address> {
    for t in w
        .ledger
        .seal_tokens_of(w.address())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        if t.owner == w.address()
            && w.ledger
                .seal_token_valid(t.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            return Ok(t.id);
        }
    }
    anyhow::bail!(
        "{} owns no valid seal token: stake, then `daas token issue`",
        w.address()
    )
}

async fn run_token(a: TokenArgs) -> Result<()> {
    let w = wallet(&a.wallet)?;
    if a.action == "issue" {
        let eff = w
            .execute(daas_ledger::tx::issue_seal_token)
            .await
            .map_err(|e| explain(e, "issue_seal_token"))?;
        let id = daas_ledger::wallet::created_owned(&eff, w.address())
            .map(|r| *r.object_id())
            .context("no seal token was created")?;
        println!("{id}");
        return Ok(());
    }
    let token = match &a.token {
        Some(t) => t.parse().map_err(|e| anyhow::anyhow!("--token: {e}"))?,
        None => find_valid_token(&w).await?,
    };
    let audience = a.audience.as_deref().map(str::trim).unwrap_or("");
    if audience.is_empty() {
        anyhow::bail!(
            "--audience is required: the cluster's credential audience, k3s-daas:<cluster id> (`daas attest` prints it)"
        );
    }
    let ttl = a.ttl_seconds.clamp(1, 900) * 1000;
    let now = daas_master::now_ms();
    let cred = daas_ledger::credential::issue(&w.key, token, audience, now, ttl)?;
    if a.exec {
        let exp = chrono_like_rfc3339(now + ttl);
        println!(
            "{}",
            serde_json::json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                "status": {"token": cred, "expirationTimestamp": exp}})
        );
    } else {
        println!("{cred}");
    }
    Ok(())
}

/// RFC 3339 UTC timestamp (seconds) for a time in ms.
fn chrono_like_rfc3339(ms: u64) -> String {
    daas_master::seed::rfc3339_from_ms(ms)
}

async fn run_join(a: JoinArgs) -> Result<()> {
    let w = wallet(&a.wallet)?;
    let token = find_valid_token(&w).await?;
    let t = w
        .ledger
        .seal_token(token)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .context("token vanished")?;
    let c = attest_servers(&a.attest, Some(w.ledger.clone())).await?;
    let ns = if t.role == 0 {
        daas_master::auth::user_namespace(&w.address())
    } else {
        "default".to_string()
    };
    let user = joinconfig::JoinUser {
        name: w.address().to_string(),
        exe: std::env::current_exe()?.display().to_string(),
        chain: a.wallet.chain.chain.clone(),
        key: std::fs::canonicalize(&a.wallet.key)?.display().to_string(),
        // The cluster id came over the attested connections, the same from every master.
        audience: daas_ledger::credential::audience(&c.cluster_id),
        namespace: ns.clone(),
    };
    let masters: Vec<(String, String)> = c
        .attested
        .iter()
        .map(|m| (m.url.clone(), m.ca_pem.clone()))
        .collect();
    let kc = joinconfig::render(&masters, &user)?;
    std::fs::write(&a.out, kc).with_context(|| format!("writing {}", a.out.display()))?;
    let urls: Vec<&str> = masters.iter().map(|(u, _)| u.as_str()).collect();
    println!(
        "attested {} (cluster {}) and wrote {} (namespace {ns})",
        urls.join(", "),
        c.cluster_id,
        a.out.display()
    );
    Ok(())
}

/// Attest every `--server` (all must verify and announce one cluster id).
async fn attest_servers(
    a: &AttestArgs,
    ledger: Option<Arc<dyn Ledger>>,
) -> Result<daas_protocol::cluster::AttestedCluster> {
    let policy = attest_policy(a, ledger)?;
    let urls: Vec<String> = a
        .server
        .iter()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    Ok(daas_protocol::cluster::attest_all(&urls, &policy, true).await?)
}

fn attest_policy(
    a: &AttestArgs,
    ledger: Option<Arc<dyn Ledger>>,
) -> Result<daas_master::attested::AttestationPolicy> {
    let mut expected = Vec::new();
    for e in &a.expect_pcr {
        let (i, v) = e.split_once('=').context("--expect-pcr takes index=hex")?;
        expected.push((i.parse::<u16>().context("PCR index")?, v.to_string()));
    }
    let (nitro, platform_pins) = tee_cli::attest_pins(&a.expect_measurement)?;
    expected.extend(nitro);
    let mut policy = daas_master::attested::AttestationPolicy::from_options(
        a.trust_root.as_deref(),
        expected.iter().map(|(i, v)| (*i, v.as_str())),
        ledger,
    )?;
    policy.platforms.pins = platform_pins;
    policy.platforms.at_ms = a.verify_at.map(|s| s.saturating_mul(1000));
    Ok(policy)
}

/// The staker host's configuration; a missing file says how to get one.
fn load_staker_config(path: &Path) -> Result<daas_agent::config::AgentConfig> {
    use daas_agent::config::{AgentConfig, ConfigError};
    AgentConfig::load(path, &|k| std::env::var(k).ok()).map_err(|e| {
        let missing = matches!(&e, ConfigError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound);
        if missing {
            report::with_hint(
                e.into(),
                "write a staker-config.json (README: staker quickstart) or pass --config FILE",
            )
        } else {
            e.into()
        }
    })
}

/// Writes the managed containerd's CNI conflist once the node's pod CIDR is known.
fn cni_setup(mut mc: daas_agent::runtime::ManagedContainerdConfig) -> daas_agent::agent::CniSetup {
    Box::new(move |cidr, mtu| {
        mc.pod_cidr = Some(cidr.to_string());
        mc.mtu = mtu;
        mc.write_cni_conflist()
            .map_err(daas_agent::agent::AgentError::from)
    })
}

async fn run_agent(path: &Path) -> Result<()> {
    use daas_agent::runtime::{
        ContainerdRuntime, ManagedContainerd, ManagedContainerdConfig, Runtime,
    };
    let cfg = load_staker_config(path)?;
    let ledger: Arc<dyn Ledger> = Arc::new(
        daas_ledger::remote::RemoteLedger::new(&cfg.ledger_url)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let mut managed = None;
    let mut cni = None;
    let runtime: Arc<dyn Runtime> = match &cfg.containerd_socket {
        Some(sock) => Arc::new(ContainerdRuntime::connect(sock, cfg.data_dir.join("pods")).await?),
        None => {
            let mut mc = ManagedContainerdConfig::new(cfg.data_dir.join("runtime"));
            mc.pod_cidr = cfg.pod_cidr.clone();
            mc.bridge_name = cfg.bridge_name.clone();
            mc.images_dir = cfg.images_dir.clone();
            mc.insecure_registries = cfg.insecure_registries.clone();
            mc.host_ports = cfg.allow_host_ports;
            let m = ManagedContainerd::start(mc.clone())
                .await
                .context("starting containerd")?;
            let rt = Arc::new(m.runtime().await?);
            managed = Some(m);
            cni = Some(cni_setup(mc));
            rt
        }
    };
    let node = cfg.node_id.clone();
    let joined = daas_agent::agent::join(cfg, ledger, runtime, cni).await?;
    println!(
        "node {node} joined {} (kubelet endpoint {})",
        joined.master.url, joined.kubelet_addr
    );
    // Supervise the managed containerd: if it dies, start it again on the same state (running
    // containers live on under their shims and are found again).
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                if let Some(m) = managed.as_mut() {
                    if m.exited() {
                        tracing::warn!("containerd exited; restarting it");
                        let mut cfg = m.config().clone();
                        // The conflist written once the pod CIDR was known stays as it is.
                        cfg.pod_cidr = None;
                        match ManagedContainerd::start(cfg).await {
                            Ok(n) => *m = n,
                            Err(e) => tracing::error!(error = %e, "restarting containerd failed"),
                        }
                    }
                }
            }
        }
    }
    // Graceful node shutdown when configured (pods stopped and reported), then the tasks end.
    joined.shutdown().await;
    if let Some(mut m) = managed {
        m.shutdown().await;
    }
    Ok(())
}

async fn run_master(a: MasterArgs) -> Result<()> {
    let dir = default_data_dir(a.data_dir.clone());
    let mut cfg = master_config(&a, dir).await?;
    cfg.ledger = a.backends.ledger()?;
    let master = Master::start(cfg).await?;
    serve(master).await
}

async fn serve(master: Master) -> Result<()> {
    let anchorer = master.anchorer.clone();
    let control_plane = master.control_plane.clone();
    let audit_log = master.audit_log.clone();
    tokio::select! {
        r = master.serve() => r.context("serving")?,
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    // Release the Leases so another master takes over at once.
    control_plane.shutdown().await;
    close_audit_log(audit_log).await;
    anchor_on_shutdown(anchorer).await;
    Ok(())
}

/// Writes the audit log's shutdown checkpoint.
async fn close_audit_log(log: Option<Arc<daas_master::audit::writer::AuditLog>>) {
    if let Some(l) = log {
        l.close().await;
    }
}

/// Anchors the final store revision so that the next start is checked against it.
async fn anchor_on_shutdown(anchorer: Option<Arc<daas_master::anchor::Anchorer>>) {
    if let Some(a) = anchorer {
        match a.anchor_now().await {
            Ok(Some(rev)) => tracing::info!(revision = rev, "store revision anchored on shutdown"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "anchoring the store revision on shutdown failed"),
        }
    }
}

async fn run_attest(a: AttestArgs, chain: Option<String>) -> Result<()> {
    let ledger = match chain {
        Some(c) => Some(remote(&ChainRef { chain: c })?),
        None => None,
    };
    let c = attest_servers(&a, ledger).await?;
    let mut out = Vec::new();
    for m in &c.attested {
        out.push(attest_report(m));
    }
    // One server: its report; several: the list of reports (one cluster id).
    let out = match <[_; 1]>::try_from(out) {
        Ok([one]) => one,
        Err(all) => serde_json::Value::Array(all),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(path) = &a.ca_out {
        // Masters of one cluster share its CA; distinct ones (if any) are all written.
        let mut cas: Vec<&str> = Vec::new();
        for m in &c.attested {
            if !cas.contains(&m.ca_pem.as_str()) {
                cas.push(&m.ca_pem);
            }
        }
        std::fs::write(path, cas.concat())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn attest_report(m: &daas_master::attested::AttestedMaster) -> serde_json::Value {
    let source = match &m.measurement_source {
        daas_master::attested::MeasurementSource::Ledger { config, enclave } => {
            serde_json::json!({"ledger": {"enclave_config": config, "enclave": enclave}})
        }
        daas_master::attested::MeasurementSource::Explicit => serde_json::json!("expect-pcr"),
    };
    let pcrs: serde_json::Map<String, serde_json::Value> = m
        .attestation
        .pcrs
        .iter()
        .map(|(i, v)| (i.to_string(), serde_json::json!(hex::encode(v))))
        .collect();
    serde_json::json!({
            "server": m.url,
            "verified": true,
            "platform": m.platform.name(),
            "module_id": m.attestation.module_id,
            "enclave_public_key": m.attestation.public_key.as_ref().map(hex::encode),
            "pcrs": pcrs,
            "tls_certificate_bound": true,
            "measurement_pinned_by": source,
            "cluster_id": m.cluster_id,
            "audience": m.audience(),
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Parses the command line; `daas master|up --config FILE` adds the file's settings as flags
/// before the typed ones.
fn parse_cli(args: Vec<std::ffi::OsString>) -> Result<Cli> {
    let cli = Cli::try_parse_from(&args)?;
    let (config, command) = match &cli.cmd {
        Cmd::Master(m) => (m.config.clone(), "master"),
        Cmd::Up(u) => (u.master.config.clone(), "up"),
        _ => (None, ""),
    };
    let Some(path) = config else {
        return Ok(cli);
    };
    let file_args = config_file::args_from_file(&path, command)?;
    let merged = config_file::merge(&args, file_args);
    Cli::try_parse_from(merged).with_context(|| format!("applying config file {}", path.display()))
}

fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let verbose = args.iter().skip(1).any(|a| a == "-v" || a == "--verbose");
    report::install_panic_hook(verbose);
    let cli = match parse_cli(args) {
        Ok(cli) => cli,
        Err(e) => {
            return match e.downcast_ref::<clap::Error>() {
                // --help and --version print as clap has them, on stdout.
                Some(c) if !c.use_stderr() => {
                    let _ = c.print();
                    ExitCode::SUCCESS
                }
                Some(c) if verbose => {
                    let _ = c.print();
                    ExitCode::from(2)
                }
                Some(c) => {
                    eprintln!("{}", report::usage_line(c));
                    ExitCode::from(2)
                }
                None if verbose => {
                    eprintln!("{}", report::verbose(&e));
                    ExitCode::from(2)
                }
                None => {
                    eprintln!("{}", report::one_line(&e));
                    ExitCode::from(2)
                }
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if matches!(cli.cmd, Cmd::Up(_) | Cmd::Master(_)) {
        // The master's latency-critical threads (the admin's, the nodes' and the control
        // plane's requests; users' run on the low-priority runtime, at nice 10) ask for a
        // short slice: waking, they preempt a busy thread instead of waiting out its slice.
        match daas_sched::latency_critical("main") {
            Some(daas_sched::SliceOutcome::Applied(s)) => {
                tracing::info!(slice = ?s, "the master's threads run with a short slice")
            }
            Some(daas_sched::SliceOutcome::Unsupported) => tracing::info!(
                "this kernel has no custom slices (Linux 6.12): the master's threads keep the default"
            ),
            None => {}
        }
        runtime.on_thread_start(|| {
            daas_sched::latency_critical("runtime");
        });
    }
    let result = runtime
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if verbose {
                eprintln!("{}", report::verbose(&e));
            } else {
                eprintln!("{}", report::one_line(&e));
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Up(a) => up::run_up(*a).await,
        Cmd::Master(a) => run_master(*a).await,
        Cmd::Kubeconfig { data_dir } => {
            let p = default_data_dir(data_dir).join("kubeconfig.yaml");
            let s = std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "reading {} (has `daas up` run with this data dir?)",
                    p.display()
                )
            })?;
            print!("{s}");
            Ok(())
        }
        Cmd::Keygen { out } => {
            if out.exists() {
                anyhow::bail!("{} exists; refusing to overwrite a key", out.display());
            }
            let k = SuiKeypair::generate();
            k.save(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{}", k.address());
            Ok(())
        }
        Cmd::Attest { attest, chain } => run_attest(attest, chain).await,
        Cmd::Audit { cmd } => audit_cli::run(cmd).await,
        Cmd::Chain(a) => run_chain(a).await,
        Cmd::Faucet {
            chain,
            address,
            amount,
        } => {
            let addr: sui_sdk_types::Address = address
                .parse()
                .map_err(|e| anyhow::anyhow!("--address: {e}"))?;
            let r = remote(&chain)?
                .faucet(addr, amount)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", r.object_id());
            Ok(())
        }
        Cmd::Stake {
            wallet: wa,
            amount,
            role,
            node_id,
        } => {
            let w = wallet(&wa)?;
            let r = role_code(&role);
            let eff = w
                .execute(|ctx, d| daas_ledger::tx::stake(ctx, d, amount, r, &node_id))
                .await
                .map_err(|e| explain(e, "stake"))?;
            println!(
                "staked {amount} MIST as {role} from {} (tx {})",
                w.address(),
                eff.digest
            );
            Ok(())
        }
        Cmd::Unstake { wallet: wa } => {
            let w = wallet(&wa)?;
            let eff = w
                .execute(daas_ledger::tx::request_unstake)
                .await
                .map_err(|e| explain(e, "unstake"))?;
            let rec = w
                .ledger
                .stake(w.address())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "unstake requested (tx {}); withdraw from epoch {}",
                eff.digest,
                rec.map(|r| r.unlock_epoch).unwrap_or_default()
            );
            Ok(())
        }
        Cmd::Withdraw { wallet: wa } => {
            let w = wallet(&wa)?;
            let eff = w
                .execute(daas_ledger::tx::withdraw)
                .await
                .map_err(|e| explain(e, "withdraw"))?;
            println!("withdrawn (tx {})", eff.digest);
            Ok(())
        }
        Cmd::Token(a) => run_token(a).await,
        Cmd::Agent { config } => run_agent(&config).await,
        Cmd::Hollow(a) => hollow_cli::run(*a, shutdown_signal()).await,
        Cmd::VerifyEvidence(a) => evidence_cli::run(*a),
        Cmd::BenchHttp(a) => bench_http::run(*a).await,
        // Its own runtime (the flood: one thread), off this one.
        Cmd::BenchFlood(a) => std::thread::spawn(move || bench_flood::run(*a))
            .join()
            .map_err(|_| anyhow::anyhow!("bench-flood panicked"))?,
        Cmd::Leave { config } => {
            let cfg = load_staker_config(&config)?;
            let ledger: Arc<dyn Ledger> = Arc::new(
                daas_ledger::remote::RemoteLedger::new(&cfg.ledger_url)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            let node = cfg.node_id.clone();
            let unlock = daas_agent::agent::drain_and_unstake(cfg, ledger).await?;
            println!("node {node} drained; stake unlocks at epoch {unlock} (then `daas withdraw`)");
            Ok(())
        }
        Cmd::Account(a) => account_cli::run_account(a).await,
        Cmd::Deposit(a) => account_cli::run_deposit(a).await,
        Cmd::WithdrawEscrow(a) => account_cli::run_withdraw_escrow(a).await,
        Cmd::WithdrawEarnings(a) => account_cli::run_withdraw_earnings(a).await,
        Cmd::Join(a) => run_join(a).await,
        Cmd::Snapshot { cmd } => snapshot_cli::run(cmd, default_data_dir).await,
        Cmd::Install(a) => {
            let exe = std::env::current_exe().context("finding this executable")?;
            let done = install::install(&a, &exe)?;
            for p in &done.written {
                println!("wrote {}", p.display());
            }
            for p in &done.kept {
                println!("kept {} (already there)", p.display());
            }
            println!(
                "start it with: systemctl daemon-reload && systemctl enable --now {}",
                done.unit
            );
            Ok(())
        }
        Cmd::Uninstall(a) => {
            let removed = install::uninstall(&a)?;
            if removed.is_empty() {
                println!("nothing to uninstall under {}", a.root.display());
            }
            for p in &removed {
                println!("removed {}", p.display());
            }
            Ok(())
        }
    }
}
