//! `daas hollow`: N simulated staked nodes in one process (see `daas_agent::agent::hollow`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use daas_agent::agent::hollow::{run_hollow, HollowConfig};
use daas_ledger::Ledger;

#[derive(Args, Clone)]
pub struct HollowArgs {
    /// Ledger endpoint (`daas up` / `daas chain` HTTP API); each node stakes there.
    #[arg(long, env = "SUI_RPC_ENDPOINT")]
    chain: String,
    /// Master URL (repeatable, or comma-separated) as for `daas agent`.
    #[arg(long, value_delimiter = ',', required = true)]
    server: Vec<String>,
    /// Number of hollow nodes.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Nodes are named `<prefix>-<i>`.
    #[arg(long, default_value = "hollow")]
    name_prefix: String,
    /// Per-node keys and credentials (reused on restart: the same keys, stakes and Nodes).
    #[arg(long)]
    data_dir: PathBuf,
    /// Extra PEM root for attestation documents (the simulated enclave's dev root).
    #[arg(long)]
    trust_root: Option<PathBuf>,
    /// Expected PCR value `index=hex` (repeatable).
    #[arg(long = "expect-pcr")]
    expect_pcr: Vec<String>,
    /// Lease renewal period in seconds (the kubelet's 10).
    #[arg(long, default_value_t = 10)]
    heartbeat_seconds: u64,
    /// Node status is posted every this many heartbeats.
    #[arg(long, default_value_t = 6)]
    status_every: u64,
    /// Nodes staking and registering at the same time (bounds the load on the ledger).
    #[arg(long, default_value_t = 16)]
    join_concurrency: usize,
    /// Node i uses this address plus i as its InternalIP and connection source (e.g. 127.1.0.1
    /// for many nodes on one host: each gets its own loopback address).
    #[arg(long)]
    source_ip_base: Option<std::net::Ipv4Addr>,
    /// Node stake in MIST.
    #[arg(long, default_value_t = 1000)]
    stake_amount: u64,
}

pub async fn run(a: HollowArgs, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let ledger: Arc<dyn Ledger> = Arc::new(
        daas_ledger::remote::RemoteLedger::new(&a.chain).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let urls: Vec<String> = a
        .server
        .iter()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let mut cfg = HollowConfig::new(&a.chain, urls, a.data_dir.clone());
    cfg.count = a.count;
    cfg.name_prefix = a.name_prefix.clone();
    cfg.trust_root = a.trust_root.clone();
    for e in &a.expect_pcr {
        let (i, v) = e.split_once('=').context("--expect-pcr takes index=hex")?;
        cfg.expected_pcrs
            .insert(i.parse::<u16>().context("PCR index")?, v.to_string());
    }
    cfg.heartbeat = Duration::from_secs(a.heartbeat_seconds.max(1));
    cfg.status_every = a.status_every;
    cfg.join_concurrency = a.join_concurrency;
    cfg.stake_amount = a.stake_amount;
    cfg.source_ip_base = a.source_ip_base;
    let started = std::time::Instant::now();
    let nodes = run_hollow(cfg, ledger).await?;
    println!(
        "hollow: {} nodes ready in {:.1}s (pid {})",
        nodes.nodes.len(),
        started.elapsed().as_secs_f64(),
        std::process::id()
    );
    stop.await;
    nodes.stop();
    Ok(())
}
