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

#[derive(Parser)]
#[command(name = "daas", version, about = "K3s-DaaS: decentralized Kubernetes on Sui stake")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local all-in-one cluster (embedded ledger + master) and write a kubeconfig.
    Up(UpArgs),
    /// Run the control plane (API server, controllers) in its enclave.
    #[command(alias = "server")]
    Master(MasterArgs),
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
    /// Verify a master's attestation over attested TLS and print what was verified.
    Attest(AttestArgs),
}

#[derive(Args, Clone)]
struct MasterArgs {
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
    /// Seconds a validated seal-token credential is trusted before asking the ledger again.
    #[arg(long, default_value_t = 10)]
    token_cache_seconds: u64,
}

#[derive(Args, Clone)]
struct UpArgs {
    #[command(flatten)]
    master: MasterArgs,
    /// Length of a ledger epoch (lockups and token expiry count epochs).
    #[arg(long, default_value_t = 3600)]
    epoch_seconds: u64,
}

#[derive(Args, Clone)]
struct AttestArgs {
    /// Master URL (https://host:port).
    #[arg(long, env = "NAUTILUS_ENDPOINT")]
    server: String,
    /// PEM root to trust for attestation documents in addition to the AWS Nitro root (the
    /// simulated enclave's dev root, `<data>/tee/trusted-root.pem`). Only for development.
    #[arg(long)]
    trust_root: Option<PathBuf>,
    /// Expected PCR value, `index=hex` (repeatable).
    #[arg(long = "expect-pcr")]
    expect_pcr: Vec<String>,
    /// Write the verified cluster CA here (PEM).
    #[arg(long)]
    ca_out: Option<PathBuf>,
}

fn default_data_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".k3s-daas")
    })
}

fn master_config(a: &MasterArgs, dir: PathBuf) -> MasterConfig {
    let mut cfg = MasterConfig::new(dir, a.listen);
    cfg.tls_sans = a.tls_san.clone();
    cfg.bookmark_interval = Duration::from_secs(a.bookmark_seconds.max(1));
    cfg.retain_revisions = a.retain_revisions;
    cfg.compact_interval = Duration::from_secs(a.compact_seconds.max(1));
    cfg.measurement = a.enclave_measurement.clone();
    cfg.token_cache_ttl = Duration::from_secs(a.token_cache_seconds);
    cfg
}

fn load_or_create_key(path: &Path) -> Result<SuiKeypair> {
    if path.exists() {
        return SuiKeypair::load(path).with_context(|| format!("reading key {}", path.display()));
    }
    let k = SuiKeypair::generate();
    k.save(path).with_context(|| format!("writing key {}", path.display()))?;
    Ok(k)
}

/// The embedded ledger of a local cluster: genesis publishes the package with `admin.key` as
/// publisher (AdminCap holder) and funds it.
fn open_embedded_ledger(dir: &Path, epoch_seconds: u64, master_endpoint: &str) -> Result<(EmbeddedLedger, SuiKeypair)> {
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

async fn run_up(a: UpArgs) -> Result<()> {
    let dir = default_data_dir(a.master.data_dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (embedded, admin) = open_embedded_ledger(&dir, a.epoch_seconds, &format!("https://{}", a.master.listen))?;
    let ledger: Arc<dyn Ledger> = Arc::new(embedded.clone());
    let mut cfg = master_config(&a.master, dir.clone());
    cfg.ledger = Some(ledger.clone());
    let master = Master::start(cfg).await?;
    // The local ledger trusts the AWS Nitro root and, because this is the operator's own machine,
    // the simulated enclave's dev root; then the master registers its enclave key on chain.
    embedded.set_attestation_verifier(Arc::new(daas_master::registration::TeeVerifier {
        roots: vec![daas_tee::RootCert::aws_nitro(), master.enclave.root.clone()],
    }));
    let master_key = load_or_create_key(&dir.join("ledger").join("master.key"))?;
    let reg = daas_master::registration::register(
        ledger.clone(),
        &admin,
        &master_key,
        &master.enclave,
        &dir.join("ledger").join("enclave.json"),
    )
    .await
    .context("registering the enclave on the ledger")?;
    let d = ledger.deployment().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("K3s-DaaS API server listening on {} (enclave: {})", master.url, master.enclave.kind);
    println!("Embedded ledger: package {}, staking pool {}, admin {}", d.package, d.pool.id, admin.address());
    println!("Enclave {} registered on the ledger (config {})", reg.enclave.id, reg.config.id);
    println!("Use it with:\n  export KUBECONFIG={}\n  kubectl get namespaces", master.kubeconfig_path.display());
    serve(master).await
}

async fn run_master(a: MasterArgs) -> Result<()> {
    let dir = default_data_dir(a.data_dir.clone());
    let master = Master::start(master_config(&a, dir)).await?;
    serve(master).await
}

async fn serve(master: Master) -> Result<()> {
    tokio::select! {
        r = master.serve() => r.context("serving")?,
        _ = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

async fn run_attest(a: AttestArgs) -> Result<()> {
    let mut roots = vec![daas_tee::RootCert::aws_nitro()];
    if let Some(p) = &a.trust_root {
        let pem = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        roots.push(daas_tee::RootCert::from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?);
    }
    let mut expected = daas_tee::ExpectedPcrs::none();
    for e in &a.expect_pcr {
        let (i, v) = e.split_once('=').context("--expect-pcr takes index=hex")?;
        expected = expected
            .with_hex(i.parse().context("PCR index")?, v)
            .map_err(|e| anyhow::anyhow!("--expect-pcr {i}: {e}"))?;
    }
    let policy = daas_master::attested::AttestationPolicy { roots, expected_pcrs: expected };
    let m = daas_master::attested::attest(&a.server, &policy).await?;
    let pcrs: serde_json::Map<String, serde_json::Value> =
        m.attestation.pcrs.iter().map(|(i, v)| (i.to_string(), serde_json::json!(hex::encode(v)))).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "server": m.url,
            "verified": true,
            "module_id": m.attestation.module_id,
            "enclave_public_key": m.attestation.public_key.as_ref().map(hex::encode),
            "pcrs": pcrs,
            "tls_certificate_bound": true,
        }))?
    );
    if let Some(out) = &a.ca_out {
        std::fs::write(out, &m.ca_pem).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Up(a) => run_up(a).await,
        Cmd::Master(a) => run_master(a).await,
        Cmd::Kubeconfig { data_dir } => {
            let p = default_data_dir(data_dir).join("kubeconfig.yaml");
            let s = std::fs::read_to_string(&p)
                .with_context(|| format!("reading {} (has `daas up` run with this data dir?)", p.display()))?;
            print!("{s}");
            Ok(())
        }
        Cmd::Keygen { out } => {
            if out.exists() {
                anyhow::bail!("{} exists; refusing to overwrite a key", out.display());
            }
            let k = SuiKeypair::generate();
            k.save(&out).with_context(|| format!("writing {}", out.display()))?;
            println!("{}", k.address());
            Ok(())
        }
        Cmd::Attest(a) => run_attest(a).await,
    }
}
