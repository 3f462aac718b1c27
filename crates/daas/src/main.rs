//! `daas`: the K3s-DaaS command line (local cluster, master, kubeconfig).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use daas_apiserver::{ServerOptions, StaticTokens, TlsMaterial, User};
use daas_store::{EmbeddedStore, SealingKey, Store};

#[derive(Parser)]
#[command(name = "daas", version, about = "K3s-DaaS: decentralized Kubernetes on Sui stake")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local all-in-one cluster with embedded defaults and write a kubeconfig.
    Up(MasterArgs),
    /// Run the control plane (API server on the sealed store).
    #[command(alias = "server")]
    Master(MasterArgs),
    /// Print the admin kubeconfig of a data directory.
    Kubeconfig {
        #[arg(long, env = "DAAS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
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
}

fn default_data_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".k3s-daas")
    })
}

/// Read a secret file, or create it with `make` (mode 0600).
fn secret_file(path: &Path, make: impl FnOnce() -> String) -> Result<String> {
    if path.exists() {
        return Ok(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_string());
    }
    let v = make();
    std::fs::write(path, &v).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(v)
}

fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k3s-daas\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: k3s-daas-admin\n  user:\n    token: {token}\ncontexts:\n- name: k3s-daas\n  context:\n    cluster: k3s-daas\n    user: k3s-daas-admin\n    namespace: default\ncurrent-context: k3s-daas\n"
    )
}

async fn run_master(args: MasterArgs, announce: bool) -> Result<()> {
    let dir = default_data_dir(args.data_dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The simulated enclave's sealing key lives in a 0600 file; a Nitro enclave derives it instead.
    let key_hex = secret_file(&dir.join("sealing.key"), || random_hex(32))?;
    let key = SealingKey::from_hex(&key_hex).context("sealing.key is not 64 hex characters")?;
    let token = secret_file(&dir.join("admin.token"), || random_hex(32))?;
    let tls = TlsMaterial::load_or_generate(&dir.join("tls"), &args.tls_san)?;
    let db = dir.join("state.redb");
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&db, key).with_context(|| format!("opening store {}", db.display()))?);
    daas_apiserver::bootstrap(&store).await.map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;
    daas_apiserver::spawn_compactor(store.clone(), Duration::from_secs(args.compact_seconds), args.retain_revisions);

    let auth = Arc::new(StaticTokens::new(vec![(
        token.clone(),
        User { name: "k3s-daas-admin".into(), groups: vec!["system:masters".into()] },
    )]));
    let router = daas_apiserver::router(
        store,
        auth,
        ServerOptions { bookmark_interval: Duration::from_secs(args.bookmark_seconds.max(1)), ..Default::default() },
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let server_url = format!("https://{host}:{}", addr.port());
    let kc_path = dir.join("kubeconfig.yaml");
    let tmp = dir.join("kubeconfig.yaml.tmp");
    std::fs::write(&tmp, kubeconfig(&server_url, &tls.ca_cert_pem, &token))?;
    std::fs::rename(&tmp, &kc_path)?;
    tracing::info!(%server_url, data_dir = %dir.display(), "API server listening");
    if announce {
        println!("K3s-DaaS API server listening on {server_url}");
        println!("Use it with:\n  export KUBECONFIG={}\n  kubectl get namespaces", kc_path.display());
    }
    let tls_cfg = tls.server_config()?;
    tokio::select! {
        r = daas_apiserver::serve_tls(listener, tls_cfg, router) => r.context("serving")?,
        _ = shutdown_signal() => tracing::info!("shutting down"),
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
        Cmd::Up(a) => run_master(a, true).await,
        Cmd::Master(a) => run_master(a, false).await,
        Cmd::Kubeconfig { data_dir } => {
            let p = default_data_dir(data_dir).join("kubeconfig.yaml");
            let s = std::fs::read_to_string(&p)
                .with_context(|| format!("reading {} (has `daas up` run with this data dir?)", p.display()))?;
            print!("{s}");
            Ok(())
        }
    }
}
