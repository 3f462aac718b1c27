//! `daas snapshot save|ls|restore` and the snapshot flags of `daas master`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand};
use daas_master::blobstore::{BlobStore, WalrusHttp};
use daas_master::httpcall::{self, Trust};
use daas_master::snapshot;
use daas_master::Measurement;

/// Scheduled snapshots of `daas master` (config file keys: the same names).
#[derive(Args, Clone, Debug)]
pub struct ScheduleArgs {
    /// Seconds between sealed snapshots of the store (0: none; `POST /api/v1/snapshots` and
    /// `daas snapshot save` still work).
    #[arg(long, default_value_t = 0)]
    pub snapshot_interval_seconds: u64,
    /// Scheduled snapshots kept in --snapshot-dir (the newest N; 0 keeps all).
    #[arg(long, default_value_t = 5)]
    pub snapshot_retention: usize,
    /// Where scheduled snapshots and their index.json go (default: <data-dir>/snapshots).
    #[arg(long)]
    pub snapshot_dir: Option<PathBuf>,
    /// Walrus publisher URL every scheduled snapshot is pushed to (blob ids in index.json).
    #[arg(long)]
    pub snapshot_publisher: Option<String>,
    /// Storage epochs asked of the publisher.
    #[arg(long, default_value_t = 5)]
    pub snapshot_epochs: u32,
}

impl ScheduleArgs {
    pub fn schedule(&self, data_dir: &Path) -> Option<snapshot::Schedule> {
        if self.snapshot_interval_seconds == 0 {
            return None;
        }
        Some(snapshot::Schedule {
            interval: Duration::from_secs(self.snapshot_interval_seconds),
            retention: self.snapshot_retention,
            dir: self
                .snapshot_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("snapshots")),
            publisher: self.snapshot_publisher.as_ref().map(|p| {
                let mut w = WalrusHttp::new(Some(p.clone()), None);
                w.epochs = self.snapshot_epochs;
                Arc::new(w) as Arc<dyn BlobStore>
            }),
        })
    }
}

#[derive(Subcommand)]
pub enum SnapshotCmd {
    /// Take a sealed snapshot on a running master (admin kubeconfig) and write it to a file.
    Save {
        /// Admin kubeconfig (every cluster's server in it is tried in turn).
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
        /// Output file (default: the snapshot's own name in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also push it to this Walrus publisher and print the blob id.
        #[arg(long)]
        publisher: Option<String>,
        #[arg(long, default_value_t = 5)]
        epochs: u32,
    },
    /// List the snapshots of a directory (with their blob ids from index.json).
    Ls {
        /// Snapshot directory (default: <data-dir>/snapshots).
        #[arg(long)]
        snapshot_dir: Option<PathBuf>,
        #[arg(long, env = "DAAS_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Restore a snapshot into a NEW data directory (before its master's first start).
    Restore(Box<RestoreArgs>),
}

#[derive(Args)]
pub struct RestoreArgs {
    /// Snapshot file.
    #[arg(long, conflicts_with = "blob_id", required_unless_present = "blob_id")]
    pub from: Option<PathBuf>,
    /// Blob id of the snapshot in the cold tier (with --aggregator). Walrus ids are unpadded
    /// base64url and may start with `-`.
    #[arg(long, requires = "aggregator", allow_hyphen_values = true)]
    pub blob_id: Option<String>,
    /// Walrus aggregator URL.
    #[arg(long)]
    pub aggregator: Option<String>,
    /// The new master's data directory (its enclave opens the snapshot; its store must be empty).
    #[arg(long, env = "DAAS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Simulated enclave measurement of the new master (must equal the one that took it).
    #[arg(long, default_value = "release")]
    pub enclave_measurement: Measurement,
    /// Where the simulated enclave's dev root (the platform's) lives, as `daas master
    /// --enclave-dev-root`: the new master set must share the platform that took the snapshot.
    #[arg(long)]
    pub enclave_dev_root: Option<PathBuf>,
    /// The new master's datastore (as `daas master`: `--datastore-endpoint`, its TLS files and
    /// prefix; absent: the data directory's embedded store).
    #[command(flatten)]
    pub datastore: crate::backends::DatastoreArgs,
    /// Ledger endpoint of the new master: the restored revision is raised to the revision
    /// anchored there, so the master's rollback check passes.
    #[arg(long, env = "SUI_RPC_ENDPOINT")]
    pub chain: Option<String>,
    /// If the target store is already past the snapshot's first revision (e.g. an embedded-store
    /// snapshot restored into etcd), move every revision up by one offset instead of refusing
    /// (resourceVersions then change; clients re-list).
    #[arg(long)]
    pub shift_revisions: bool,
}

pub async fn run(cmd: SnapshotCmd, data_dir: impl Fn(Option<PathBuf>) -> PathBuf) -> Result<()> {
    match cmd {
        SnapshotCmd::Save {
            kubeconfig,
            out,
            publisher,
            epochs,
        } => save(&kubeconfig, out, publisher, epochs).await,
        SnapshotCmd::Ls {
            snapshot_dir,
            data_dir: d,
        } => ls(&snapshot_dir.unwrap_or_else(|| data_dir(d).join("snapshots"))),
        SnapshotCmd::Restore(a) => restore(*a).await,
    }
}

/// (server, CA PEM, bearer token) of every cluster of an admin kubeconfig, current one first.
fn kubeconfig_targets(path: &Path) -> Result<Vec<(String, String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let kc: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let current = kc["current-context"].as_str().unwrap_or_default();
    let contexts = kc["contexts"].as_sequence().cloned().unwrap_or_default();
    let ctx = contexts
        .iter()
        .find(|c| c["name"].as_str() == Some(current))
        .or_else(|| contexts.first())
        .context("kubeconfig has no context")?;
    let user_name = ctx["context"]["user"].as_str().unwrap_or_default();
    let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or_default();
    let users = kc["users"].as_sequence().cloned().unwrap_or_default();
    let token = users
        .iter()
        .find(|u| u["name"].as_str() == Some(user_name))
        .and_then(|u| u["user"]["token"].as_str())
        .context("the kubeconfig's user has no bearer token (an admin kubeconfig is needed)")?
        .to_string();
    let mut clusters = kc["clusters"].as_sequence().cloned().unwrap_or_default();
    clusters.sort_by_key(|c| c["name"].as_str() != Some(cluster_name));
    let mut out = Vec::new();
    for c in clusters {
        let Some(server) = c["cluster"]["server"].as_str() else {
            continue;
        };
        let ca = match c["cluster"]["certificate-authority-data"].as_str() {
            Some(b64) => String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .context("certificate-authority-data is not base64")?,
            )
            .context("certificate-authority-data is not PEM")?,
            None => bail!("cluster {server} has no certificate-authority-data"),
        };
        out.push((server.trim_end_matches('/').to_string(), ca, token.clone()));
    }
    if out.is_empty() {
        bail!("kubeconfig {} names no server", path.display());
    }
    Ok(out)
}

async fn save(
    kubeconfig: &Path,
    out: Option<PathBuf>,
    publisher: Option<String>,
    epochs: u32,
) -> Result<()> {
    let mut last = None;
    let mut file = None;
    for (server, ca, token) in kubeconfig_targets(kubeconfig)? {
        let url = format!("{server}{}", snapshot::SNAPSHOT_PATH);
        match httpcall::call(
            hyper::Method::POST,
            &url,
            &Trust::CaPem(ca),
            Some(&token),
            None,
            Bytes::new(),
            daas_master::blobstore::MAX_BLOB,
            Duration::from_secs(600),
        )
        .await
        {
            Ok(r) if r.status.is_success() => {
                file = Some(r.body.to_vec());
                break;
            }
            Ok(r) => {
                let msg = serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(&r.body).into_owned());
                // An answer (401/403/500) is final: another master would say the same.
                bail!("{url}: {} {msg}", r.status.as_u16());
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "master unreachable, trying the next one");
                last = Some(e);
            }
        }
    }
    let Some(file) = file else {
        return Err(last
            .map(anyhow::Error::from)
            .unwrap_or_else(|| anyhow::anyhow!("no master answered")))
        .context("taking a snapshot");
    };
    let header = snapshot::peek(&file).context("the master's answer is not a snapshot")?;
    let path = out.unwrap_or_else(|| PathBuf::from(snapshot::file_name(&header)));
    daas_master::write_private(&path, &file)?;
    let blob_id = match publisher {
        Some(p) => {
            let mut w = WalrusHttp::new(Some(p), None);
            w.epochs = epochs;
            Some(w.put(Bytes::from(file.clone())).await?)
        }
        None => None,
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "file": path,
            "revision": header.revision,
            "cluster_id": header.cluster_id,
            "keys": header.keys,
            "bytes": file.len(),
            "key_id": header.key_id,
            "ledger": header.ledger,
            "blob_id": blob_id,
        }))?
    );
    Ok(())
}

fn ls(dir: &Path) -> Result<()> {
    let index = snapshot::read_index(dir)?;
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(snapshot::FILE_SUFFIX))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    names.sort();
    println!(
        "{:<48} {:>10} {:<24} {:<32} {:>10} BLOB",
        "FILE", "REVISION", "CREATED", "CLUSTER", "BYTES"
    );
    for n in names {
        let path = dir.join(&n);
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let blob = index
            .iter()
            .find(|e| e.file == n)
            .and_then(|e| e.blob_id.clone())
            .unwrap_or_else(|| "-".into());
        match snapshot::peek(&data) {
            Ok(h) => println!(
                "{:<48} {:>10} {:<24} {:<32} {:>10} {}",
                n,
                h.revision,
                daas_master::seed::rfc3339_from_ms(h.created_ms),
                h.cluster_id,
                data.len(),
                blob
            ),
            Err(e) => println!("{n:<48} (unreadable: {e})"),
        }
    }
    Ok(())
}

async fn restore(a: RestoreArgs) -> Result<()> {
    let file = match (&a.from, &a.blob_id, &a.aggregator) {
        (Some(f), _, _) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        (None, Some(id), Some(agg)) => WalrusHttp::new(None, Some(agg.clone()))
            .get(id)
            .await
            .with_context(|| format!("fetching blob {id}"))?,
        _ => bail!("give --from FILE, or --blob-id ID with --aggregator URL"),
    };
    daas_master::private_dir(&a.data_dir)?;
    let tee_dir = a.data_dir.join("tee");
    let enclave = daas_master::enclave::open_simulated_with_root(
        &tee_dir,
        &a.enclave_measurement,
        a.enclave_dev_root.as_deref(),
    )?;
    let contents = snapshot::open_for(&file, &tee_dir, enclave.enclave.as_ref())?;
    let ledger_floor = match &a.chain {
        Some(c) => {
            let ledger = daas_ledger::remote::RemoteLedger::new(c)
                .map_err(|e| anyhow::anyhow!("ledger {c}: {e}"))?;
            daas_master::anchor::anchored_revision(&ledger, &enclave).await?
        }
        None => 0,
    };
    let key = contents.cluster_key.sealing_key();
    let store = daas_master::backends::open_store(&a.datastore.config()?, &a.data_dir, key)
        .await
        .context("opening the datastore")?;
    let r = snapshot::restore(
        contents,
        &tee_dir,
        enclave.enclave.as_ref(),
        store.as_ref(),
        snapshot::RestoreOptions {
            ledger_floor,
            shift_revisions: a.shift_revisions,
        },
    )
    .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "data_dir": a.data_dir,
            "cluster_id": r.header.cluster_id,
            "snapshot_revision": r.header.revision,
            "floor": r.floor,
            "revision": r.revision,
            "shifted_by": r.shifted_by,
            "keys": r.header.keys,
        }))?
    );
    Ok(())
}
