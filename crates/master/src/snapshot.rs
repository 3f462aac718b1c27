//! Sealed snapshots of the state store (the design's cold tier).
//!
//! A snapshot is every key of the store at one revision, sealed, in one file:
//!
//! ```text
//! "DAASSNP1" | u32 BE header length | header (JSON) | u32 BE tag length | header tag | sealed body
//! ```
//!
//! - The header ([`Header`]) is readable without keys: format version, store revision, creation
//!   time, cluster id, key id of the cluster key, measurement digest, the ledger reference (the
//!   anchored revision and where the enclave is registered) and the cluster key sealed under the
//!   enclave's measurement key ([`daas_tee::Enclave::measurement_key`]), which only an enclave
//!   with the same measurement on the same platform derives: a NEW master set can restore.
//! - The header tag is AES-256-GCM over the exact header bytes (empty plaintext) under the cluster
//!   key: a changed revision, cluster id or ledger reference is refused ([`SnapshotError::HeaderTampered`]).
//! - The body (every key with its value, create/mod revision and version) is sealed under the
//!   cluster key with the header bytes as additional data ([`SnapshotError::BodyTampered`]).
//!
//! Restore ([`restore`]) runs offline, before the new master's first start: it unseals the
//! cluster key with the new enclave, keeps it with [`crate::clusterkey::save`] and loads the keys
//! into the EMPTY store with their mod revisions (the resourceVersions). The store revision
//! afterwards is at least `max(snapshot revision, floor)`; with a ledger the floor is the revision
//! anchored there, so the rollback check at start ([`crate::anchor::check_revision`]) passes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use daas_store::{KeyValue, SealingKey, Store};
use daas_tee::Enclave;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::blobstore::BlobStore;
use crate::clusterkey::ClusterKey;
use crate::enclave::EnclaveHandle;
use crate::registration::Registration;

pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"DAASSNP1";
/// File name suffix of snapshot files.
pub const FILE_SUFFIX: &str = ".daas-snapshot";
/// Index of blob ids beside the snapshot files.
pub const INDEX_FILE: &str = "index.json";
/// Endpoint of the running master (admin only).
pub const SNAPSHOT_PATH: &str = "/api/v1/snapshots";
/// Media type of a sealed snapshot.
pub const CONTENT_TYPE: &str = "application/vnd.k3s-daas.snapshot";

const AAD_HEADER: &[u8] = b"daas/snapshot/header/v1";
const AAD_BODY: &[u8] = b"daas/snapshot/body/v1";
const AAD_CLUSTER_KEY: &[u8] = b"daas/snapshot/cluster-key/v1";
const MAX_HEADER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a K3s-DaaS snapshot (or truncated): {0}")]
    Format(String),
    #[error("snapshot format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    Version(u32),
    #[error(
        "snapshot was taken by an enclave with measurement {snapshot}, this enclave has {enclave}"
    )]
    OtherMeasurement { snapshot: String, enclave: String },
    #[error("cannot unseal the snapshot's cluster key: it was sealed on another platform (different dev root / KMS key), or the file is corrupt")]
    ClusterKeyUnseal,
    #[error("the enclave cannot derive a measurement-bound key: {0}")]
    MeasurementKey(#[source] daas_tee::TeeError),
    #[error("snapshot is sealed under cluster key {snapshot}, but this data directory already holds cluster key {given}")]
    WrongClusterKey { snapshot: String, given: String },
    #[error("snapshot header was modified (revision, cluster id, ledger reference or key do not match their tag)")]
    HeaderTampered,
    #[error("snapshot body failed authentication: modified or truncated")]
    BodyTampered,
    #[error("state store: {0}")]
    Store(#[from] daas_store::StoreError),
    #[error("cluster key: {0}")]
    ClusterKey(#[from] crate::clusterkey::ClusterKeyError),
    #[error("ledger: {0}")]
    Anchor(#[from] crate::anchor::AnchorError),
    #[error("blob store: {0}")]
    Blob(#[from] crate::blobstore::BlobError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the snapshot's cluster stands on the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerRef {
    /// Store revision anchored on the ledger when the snapshot was taken.
    pub anchored_revision: u64,
    /// Where the enclave that took it was registered (config and enclave objects), if it was.
    pub registration: Option<Registration>,
}

impl PartialEq for Registration {
    fn eq(&self, o: &Self) -> bool {
        self.config == o.config
            && self.config_pcrs == o.config_pcrs
            && self.enclave == o.enclave
            && self.enclave_public_key == o.enclave_public_key
    }
}

/// The readable, authenticated part of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// Store revision the keys were read at.
    pub revision: i64,
    pub created_ms: u64,
    pub cluster_id: String,
    /// Key id (hex) of the cluster key the body is sealed under.
    pub key_id: String,
    /// SHA-256 (hex) of PCR0..2 of the enclave that took it.
    pub measurement: String,
    pub enclave_kind: String,
    /// Number of keys in the body.
    pub keys: u64,
    pub ledger: Option<LedgerRef>,
    /// The cluster key sealed under the measurement key (base64).
    pub sealed_cluster_key: String,
}

/// Digest of an enclave's PCR0..2, as recorded in [`Header::measurement`].
pub fn measurement_digest(enclave: &dyn Enclave) -> String {
    let m = enclave.measurement();
    let mut h = Sha256::new();
    for i in 0..3u16 {
        h.update(m.get(i).map(|v| &v[..]).unwrap_or(&[]));
    }
    hex::encode(h.finalize())
}

/// The store contents of a snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct Contents {
    pub header: Header,
    pub cluster_key: ClusterKey,
    pub items: Vec<KeyValue>,
}

fn encode_body(items: &[KeyValue]) -> Vec<u8> {
    let size: usize = items
        .iter()
        .map(|kv| 32 + kv.key.len() + kv.value.len())
        .sum();
    let mut b = Vec::with_capacity(8 + size);
    b.extend_from_slice(&(items.len() as u64).to_be_bytes());
    for kv in items {
        b.extend_from_slice(&(kv.key.len() as u32).to_be_bytes());
        b.extend_from_slice(kv.key.as_bytes());
        b.extend_from_slice(&(kv.value.len() as u32).to_be_bytes());
        b.extend_from_slice(&kv.value);
        b.extend_from_slice(&kv.create_revision.to_be_bytes());
        b.extend_from_slice(&kv.mod_revision.to_be_bytes());
        b.extend_from_slice(&kv.version.to_be_bytes());
    }
    b
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if self.0.len() < n {
            return Err(SnapshotError::Format("unexpected end".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
}

fn decode_body(b: &[u8]) -> Result<Vec<KeyValue>, SnapshotError> {
    let mut r = Reader(b);
    let n = r.u64()?;
    let mut items = Vec::with_capacity((n as usize).min(1 << 20));
    for _ in 0..n {
        let kl = r.u32()? as usize;
        let key = String::from_utf8(r.take(kl)?.to_vec())
            .map_err(|_| SnapshotError::Format("key is not UTF-8".into()))?;
        let vl = r.u32()? as usize;
        let value = r.take(vl)?.to_vec();
        items.push(KeyValue {
            key,
            value,
            create_revision: r.u64()? as i64,
            mod_revision: r.u64()? as i64,
            version: r.u64()? as i64,
        });
    }
    if !r.0.is_empty() {
        return Err(SnapshotError::Format("trailing bytes in the body".into()));
    }
    Ok(items)
}

fn aad(prefix: &[u8], header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(prefix.len() + header.len());
    a.extend_from_slice(prefix);
    a.extend_from_slice(header);
    a
}

/// Seal `items` (read at `revision`) into a snapshot file.
#[allow(clippy::too_many_arguments)]
pub fn seal(
    enclave: &dyn Enclave,
    enclave_kind: &str,
    cluster_key: &ClusterKey,
    cluster_id: &str,
    revision: i64,
    created_ms: u64,
    ledger: Option<LedgerRef>,
    items: &[KeyValue],
) -> Result<Vec<u8>, SnapshotError> {
    let mkey = SealingKey::from_bytes(
        enclave
            .measurement_key()
            .map_err(SnapshotError::MeasurementKey)?,
    );
    let ck = cluster_key.sealing_key();
    let header = Header {
        format: FORMAT_VERSION,
        revision,
        created_ms,
        cluster_id: cluster_id.to_string(),
        key_id: ck.key_id_hex(),
        measurement: measurement_digest(enclave),
        enclave_kind: enclave_kind.to_string(),
        keys: items.len() as u64,
        ledger,
        sealed_cluster_key: base64::engine::general_purpose::STANDARD
            .encode(mkey.seal(AAD_CLUSTER_KEY, cluster_key.bytes())?),
    };
    let hb = serde_json::to_vec(&header)
        .map_err(|e| SnapshotError::Format(format!("encoding the header: {e}")))?;
    let tag = ck.seal(&aad(AAD_HEADER, &hb), b"")?;
    let body = ck.seal(&aad(AAD_BODY, &hb), &encode_body(items))?;
    let mut out = Vec::with_capacity(16 + hb.len() + tag.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(hb.len() as u32).to_be_bytes());
    out.extend_from_slice(&hb);
    out.extend_from_slice(&(tag.len() as u32).to_be_bytes());
    out.extend_from_slice(&tag);
    out.extend_from_slice(&body);
    Ok(out)
}

struct Parts<'a> {
    header: Header,
    header_bytes: &'a [u8],
    tag: &'a [u8],
    body: &'a [u8],
}

fn split(file: &[u8]) -> Result<Parts<'_>, SnapshotError> {
    let mut r = Reader(file);
    if r.take(MAGIC.len())? != MAGIC {
        return Err(SnapshotError::Format("bad magic".into()));
    }
    let hl = r.u32()? as usize;
    if hl > MAX_HEADER {
        return Err(SnapshotError::Format("header too large".into()));
    }
    let header_bytes = r.take(hl)?;
    let header: Header = serde_json::from_slice(header_bytes)
        .map_err(|e| SnapshotError::Format(format!("header: {e}")))?;
    let tl = r.u32()? as usize;
    let tag = r.take(tl)?;
    Ok(Parts {
        header,
        header_bytes,
        tag,
        body: r.0,
    })
}

/// The header of a snapshot file, unauthenticated (for listing; [`open`] authenticates it).
pub fn peek(file: &[u8]) -> Result<Header, SnapshotError> {
    let p = split(file)?;
    if p.header.format != FORMAT_VERSION {
        return Err(SnapshotError::Version(p.header.format));
    }
    Ok(p.header)
}

/// Open a snapshot in `enclave`: checks the measurement, unseals the cluster key with the
/// measurement key, and (if this data directory already has a cluster key, `existing`) that it is
/// the same key; then authenticates the header and unseals the body.
pub fn open(
    file: &[u8],
    enclave: &dyn Enclave,
    existing: Option<&ClusterKey>,
) -> Result<Contents, SnapshotError> {
    let p = split(file)?;
    let h = &p.header;
    if h.format != FORMAT_VERSION {
        return Err(SnapshotError::Version(h.format));
    }
    let mine = measurement_digest(enclave);
    if h.measurement != mine {
        return Err(SnapshotError::OtherMeasurement {
            snapshot: h.measurement.clone(),
            enclave: mine,
        });
    }
    let mkey = SealingKey::from_bytes(
        enclave
            .measurement_key()
            .map_err(SnapshotError::MeasurementKey)?,
    );
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&h.sealed_cluster_key)
        .map_err(|_| SnapshotError::ClusterKeyUnseal)?;
    let raw = mkey
        .unseal(AAD_CLUSTER_KEY, &sealed)
        .map_err(|_| SnapshotError::ClusterKeyUnseal)?;
    let bytes: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| SnapshotError::ClusterKeyUnseal)?;
    let cluster_key = ClusterKey::from_bytes(bytes);
    let ck = cluster_key.sealing_key();
    if let Some(e) = existing {
        if e != &cluster_key {
            return Err(SnapshotError::WrongClusterKey {
                snapshot: ck.key_id_hex(),
                given: e.sealing_key().key_id_hex(),
            });
        }
    }
    ck.unseal(&aad(AAD_HEADER, p.header_bytes), p.tag)
        .map_err(|_| SnapshotError::HeaderTampered)?;
    if h.key_id != ck.key_id_hex() {
        return Err(SnapshotError::HeaderTampered);
    }
    let body = ck
        .unseal(&aad(AAD_BODY, p.header_bytes), p.body)
        .map_err(|_| SnapshotError::BodyTampered)?;
    let items = decode_body(&body)?;
    if items.len() as u64 != h.keys {
        return Err(SnapshotError::Format(format!(
            "header announces {} keys, body holds {}",
            h.keys,
            items.len()
        )));
    }
    Ok(Contents {
        header: p.header.clone(),
        cluster_key,
        items,
    })
}

/// Takes snapshots of a running master's store.
pub struct Snapshotter {
    pub store: Arc<dyn Store>,
    pub enclave: EnclaveHandle,
    pub cluster_key: ClusterKey,
    pub cluster_id: String,
    pub ledger: Option<Arc<dyn daas_ledger::Ledger>>,
    pub registration: Arc<std::sync::RwLock<Option<Registration>>>,
}

impl Snapshotter {
    /// Read every key at the current revision and seal them.
    #[tracing::instrument(skip(self), fields(cluster_id = %self.cluster_id))]
    pub async fn take(&self) -> Result<(Header, Vec<u8>), SnapshotError> {
        let revision = self.store.current_revision().await?;
        let list = self.store.list_at("", revision).await?;
        let ledger = match &self.ledger {
            Some(l) => Some(LedgerRef {
                anchored_revision: crate::anchor::anchored_revision(l.as_ref(), &self.enclave)
                    .await?,
                registration: self.registration.read().ok().and_then(|g| g.clone()),
            }),
            None => None,
        };
        let file = seal(
            self.enclave.enclave.as_ref(),
            self.enclave.kind,
            &self.cluster_key,
            &self.cluster_id,
            list.revision,
            crate::now_ms(),
            ledger,
            &list.items,
        )?;
        let header = peek(&file)?;
        tracing::info!(
            revision = header.revision,
            keys = header.keys,
            bytes = file.len(),
            "snapshot taken"
        );
        Ok((header, file))
    }
}

/// `POST /api/v1/snapshots`: a sealed snapshot of the store (admin only: `system:masters`).
pub fn router(
    snapshotter: Arc<Snapshotter>,
    auth: Arc<dyn daas_apiserver::Authenticator>,
) -> Router {
    Router::new()
        .route(SNAPSHOT_PATH, axum::routing::post(take_snapshot))
        .with_state((snapshotter, auth))
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

async fn take_snapshot(
    State((s, auth)): State<(Arc<Snapshotter>, Arc<dyn daas_apiserver::Authenticator>)>,
    headers: HeaderMap,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let user = match bearer {
        Some(b) => auth.authenticate(b).await,
        None => None,
    };
    let Some(user) = user else {
        return status(401, "Unauthorized", "Unauthorized".into());
    };
    if !user
        .groups
        .iter()
        .any(|g| g == daas_apiserver::authz::GROUP_MASTERS)
    {
        tracing::warn!(user = %user.name, "snapshot refused: not an admin");
        return status(
            403,
            "Forbidden",
            format!(
                "forbidden: User \"{}\" cannot post path \"{SNAPSHOT_PATH}\": snapshots are for cluster admins (system:masters)",
                user.name
            ),
        );
    }
    match s.take().await {
        Ok((h, file)) => (
            [
                (header::CONTENT_TYPE, CONTENT_TYPE.to_string()),
                (
                    header::HeaderName::from_static("x-daas-snapshot-revision"),
                    h.revision.to_string(),
                ),
            ],
            file,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "snapshot failed");
            status(500, "InternalError", format!("snapshot failed: {e}"))
        }
    }
}

/// File name of a snapshot: sorts by time.
pub fn file_name(h: &Header) -> String {
    format!("snapshot-{:013}-r{}{FILE_SUFFIX}", h.created_ms, h.revision)
}

/// One entry of a snapshot directory's index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub file: String,
    pub revision: i64,
    pub created_ms: u64,
    pub cluster_id: String,
    pub bytes: u64,
    /// Blob id in the cold tier, once pushed.
    pub blob_id: Option<String>,
}

/// Index of a snapshot directory (`index.json`), newest last.
pub fn read_index(dir: &Path) -> Result<Vec<IndexEntry>, SnapshotError> {
    let path = dir.join(INDEX_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| SnapshotError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io(&path)(e)),
    }
}

fn write_index(dir: &Path, entries: &[IndexEntry]) -> Result<(), SnapshotError> {
    let path = dir.join(INDEX_FILE);
    let b = serde_json::to_vec_pretty(entries).map_err(|e| SnapshotError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    daas_apiserver::files::write_private(&path, &b).map_err(io(&path))
}

/// Keep `file` in `dir` (pushed to `blobs` first if given), then delete all but the newest
/// `retention` snapshots (0 keeps all). Returns the new index entry.
pub async fn keep(
    dir: &Path,
    header: &Header,
    file: Vec<u8>,
    blobs: Option<&dyn BlobStore>,
    retention: usize,
) -> Result<IndexEntry, SnapshotError> {
    // Push first: from here on nothing awaits, so a shutdown cannot leave a file without its
    // index entry or beyond the retention.
    let blob_id = match blobs {
        Some(b) => Some(b.put(Bytes::from(file.clone())).await?),
        None => None,
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = file_name(header);
    let path = dir.join(&name);
    daas_apiserver::files::write_private(&path, &file).map_err(io(&path))?;
    let bytes = file.len() as u64;
    let entry = IndexEntry {
        file: name,
        revision: header.revision,
        created_ms: header.created_ms,
        cluster_id: header.cluster_id.clone(),
        bytes,
        blob_id,
    };
    let mut index = read_index(dir)?;
    index.retain(|e| e.file != entry.file);
    index.push(entry.clone());
    index.sort_by(|a, b| a.file.cmp(&b.file));
    // Retention over the files on disk (also those the index does not know).
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("snapshot-") && n.ends_with(FILE_SUFFIX))
        .collect();
    files.sort();
    if retention > 0 && files.len() > retention {
        for old in &files[..files.len() - retention] {
            let p = dir.join(old);
            std::fs::remove_file(&p).map_err(io(&p))?;
            tracing::info!(file = %old, "old snapshot removed (retention)");
        }
        let kept: std::collections::HashSet<&String> =
            files[files.len() - retention..].iter().collect();
        index.retain(|e| kept.contains(&e.file));
    }
    write_index(dir, &index)?;
    Ok(entry)
}

/// Scheduled snapshots (`--snapshot-interval-seconds`, `--snapshot-retention`, `--snapshot-dir`,
/// `--snapshot-publisher`).
#[derive(Clone)]
pub struct Schedule {
    /// Time between snapshots (zero: off).
    pub interval: Duration,
    /// Snapshots kept in `dir` (0: all).
    pub retention: usize,
    pub dir: PathBuf,
    /// The cold tier every snapshot is pushed to.
    pub publisher: Option<Arc<dyn BlobStore>>,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("interval", &self.interval)
            .field("retention", &self.retention)
            .field("dir", &self.dir)
            .field("publisher", &self.publisher.is_some())
            .finish()
    }
}

/// Take a snapshot every `interval` (the first after one interval) and keep it.
pub fn spawn(
    snapshotter: Arc<Snapshotter>,
    schedule: Schedule,
) -> Option<tokio::task::JoinHandle<()>> {
    if schedule.interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(schedule.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let r = async {
                let (h, file) = snapshotter.take().await?;
                keep(
                    &schedule.dir,
                    &h,
                    file,
                    schedule.publisher.as_deref(),
                    schedule.retention,
                )
                .await
            }
            .await;
            match r {
                Ok(e) => {
                    tracing::info!(file = %e.file, revision = e.revision, blob_id = ?e.blob_id, "scheduled snapshot kept")
                }
                Err(e) => tracing::error!(error = %e, "scheduled snapshot failed"),
            }
        }
    }))
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    pub header: Header,
    /// Store revision after the restore.
    pub revision: i64,
    pub floor: i64,
    /// Offset added to every revision ([`RestoreOptions::shift_revisions`]); 0 normally.
    pub shifted_by: i64,
}

/// Open `file` in `enclave` (the new master's, in `tee_dir`) and return its contents and the
/// cluster key, checking it against a cluster key already kept in `tee_dir`.
pub fn open_for(
    file: &[u8],
    tee_dir: &Path,
    enclave: &dyn Enclave,
) -> Result<Contents, SnapshotError> {
    let existing = crate::clusterkey::load(tee_dir, enclave)?;
    open(file, enclave, existing.as_ref())
}

/// How [`restore`] loads a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// The revision anchored on the ledger the new master will use (see
    /// [`crate::anchor::anchored_revision`]); 0 without a ledger.
    pub ledger_floor: u64,
    /// If the target store is already past the snapshot's first revision (an etcd cluster
    /// starts at revision 1 and the key canary takes one more, while an embedded store's first
    /// write is revision 1), move every revision up by the same offset instead of refusing.
    /// Order is kept but resourceVersions change: clients re-list, as after any etcd restore.
    pub shift_revisions: bool,
}

/// Restore `contents` into the EMPTY `store` (opened with `contents.cluster_key`) and keep the
/// cluster key in `tee_dir`. The floor is `max(ledger floor, the snapshot's anchored revision)`,
/// so the new master's rollback check passes.
pub async fn restore(
    mut contents: Contents,
    tee_dir: &Path,
    enclave: &dyn Enclave,
    store: &dyn Store,
    opts: RestoreOptions,
) -> Result<Restored, SnapshotError> {
    let anchored = contents
        .header
        .ledger
        .as_ref()
        .map_or(0, |l| l.anchored_revision);
    let floor = i64::try_from(opts.ledger_floor.max(anchored)).unwrap_or(i64::MAX);
    let mut shifted_by = 0;
    if opts.shift_revisions {
        let current = store.current_revision().await?;
        if let Some(first) = contents.items.iter().map(|kv| kv.mod_revision).min() {
            shifted_by = (current + 1 - first).max(0);
        }
        for kv in &mut contents.items {
            kv.mod_revision += shifted_by;
            kv.create_revision += shifted_by;
        }
    }
    store
        .restore(contents.items, contents.header.revision + shifted_by, floor)
        .await?;
    crate::clusterkey::save(tee_dir, enclave, &contents.cluster_key)?;
    let revision = store.current_revision().await?;
    tracing::info!(revision, floor, shifted_by, cluster_id = %contents.header.cluster_id, "snapshot restored");
    Ok(Restored {
        header: contents.header,
        revision,
        floor,
        shifted_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_tee::{SimulatedEnclave, DEV_ROOT_CERT_FILE, DEV_ROOT_KEY_FILE, PCR_LEN};

    fn enclave(dir: &Path, m: u8) -> SimulatedEnclave {
        SimulatedEnclave::open_with_measurement(dir, [m; PCR_LEN]).unwrap()
    }

    fn same_platform(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for f in [DEV_ROOT_CERT_FILE, DEV_ROOT_KEY_FILE] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }

    fn items() -> Vec<KeyValue> {
        vec![
            KeyValue {
                key: "/registry/configmaps/default/a".into(),
                value: b"CANARY-VALUE".to_vec(),
                create_revision: 3,
                mod_revision: 5,
                version: 2,
            },
            KeyValue {
                key: "/daas/cluster-id".into(),
                value: b"c1".to_vec(),
                create_revision: 1,
                mod_revision: 1,
                version: 1,
            },
        ]
    }

    fn snap(e: &SimulatedEnclave, key: &ClusterKey) -> Vec<u8> {
        let ledger = Some(LedgerRef {
            anchored_revision: 4,
            registration: None,
        });
        seal(e, "simulated", key, "c1", 6, 1000, ledger, &items()).unwrap()
    }

    /// Offset and length of the header JSON in a file.
    fn header_span(file: &[u8]) -> (usize, usize) {
        let hl = u32::from_be_bytes(file[8..12].try_into().unwrap()) as usize;
        (12, hl)
    }

    #[test]
    fn round_trip_on_a_new_enclave_of_the_same_platform_and_measurement() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ea = enclave(a.path(), 1);
        let key = ClusterKey::from_bytes([9; 32]);
        let file = snap(&ea, &key);
        assert!(
            !file.windows(12).any(|w| w == b"CANARY-VALUE"),
            "plaintext in the file"
        );
        assert!(
            !file.windows(32).any(|w| w == [9u8; 32]),
            "cluster key in the clear"
        );
        same_platform(a.path(), b.path());
        let eb = enclave(b.path(), 1);
        let c = open(&file, &eb, None).unwrap();
        assert_eq!(c.cluster_key, key);
        assert_eq!(c.items, items());
        assert_eq!(c.header.revision, 6);
        assert_eq!(c.header.cluster_id, "c1");
        assert_eq!(c.header.ledger.as_ref().unwrap().anchored_revision, 4);
        assert_eq!(peek(&file).unwrap(), c.header);
        // The same key already kept there is fine.
        assert!(open(&file, &eb, Some(&key)).is_ok());
    }

    #[test]
    fn another_measurement_or_platform_is_refused() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let ea = enclave(a.path(), 1);
        let file = snap(&ea, &ClusterKey::from_bytes([9; 32]));
        same_platform(a.path(), b.path());
        assert!(matches!(
            open(&file, &enclave(b.path(), 2), None),
            Err(SnapshotError::OtherMeasurement { .. })
        ));
        // Same measurement, another dev root (another platform).
        assert!(matches!(
            open(&file, &enclave(c.path(), 1), None),
            Err(SnapshotError::ClusterKeyUnseal)
        ));
    }

    #[test]
    fn another_cluster_key_in_the_data_dir_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let ea = enclave(a.path(), 1);
        let file = snap(&ea, &ClusterKey::from_bytes([9; 32]));
        match open(&file, &ea, Some(&ClusterKey::from_bytes([8; 32]))) {
            Err(SnapshotError::WrongClusterKey { snapshot, given }) => assert_ne!(snapshot, given),
            other => panic!("expected WrongClusterKey, got {other:?}"),
        }
    }

    #[test]
    fn a_changed_header_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let ea = enclave(a.path(), 1);
        let file = snap(&ea, &ClusterKey::from_bytes([9; 32]));
        let (off, len) = header_span(&file);
        for (from, to) in [
            ("\"revision\":6", "\"revision\":9"),
            ("\"cluster_id\":\"c1\"", "\"cluster_id\":\"c2\""),
            ("\"anchored_revision\":4", "\"anchored_revision\":2"),
        ] {
            let h = std::str::from_utf8(&file[off..off + len]).unwrap();
            assert!(h.contains(from), "{h}");
            let nh = h.replace(from, to);
            assert_eq!(nh.len(), h.len());
            let mut f = file.clone();
            f[off..off + len].copy_from_slice(nh.as_bytes());
            assert!(
                matches!(open(&f, &ea, None), Err(SnapshotError::HeaderTampered)),
                "{from} -> {to}"
            );
        }
        // A header that is no longer JSON, a bad magic, a truncated file.
        let mut f = file.clone();
        f[off] = b'[';
        assert!(matches!(open(&f, &ea, None), Err(SnapshotError::Format(_))));
        let mut f = file.clone();
        f[0] = b'X';
        assert!(matches!(open(&f, &ea, None), Err(SnapshotError::Format(_))));
        assert!(matches!(
            open(&file[..off + len - 3], &ea, None),
            Err(SnapshotError::Format(_))
        ));
    }

    #[test]
    fn a_changed_or_truncated_body_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let ea = enclave(a.path(), 1);
        let file = snap(&ea, &ClusterKey::from_bytes([9; 32]));
        let mut f = file.clone();
        let last = f.len() - 20;
        f[last] ^= 1;
        assert!(matches!(
            open(&f, &ea, None),
            Err(SnapshotError::BodyTampered)
        ));
        assert!(matches!(
            open(&file[..file.len() - 1], &ea, None),
            Err(SnapshotError::BodyTampered)
        ));
        // A body sealed for another header (swapped between two snapshots) is refused too.
        let other = {
            let ledger = Some(LedgerRef {
                anchored_revision: 4,
                registration: None,
            });
            seal(
                &ea,
                "simulated",
                &ClusterKey::from_bytes([9; 32]),
                "c1",
                7,
                1000,
                ledger,
                &items(),
            )
            .unwrap()
        };
        let (off, len) = header_span(&file);
        let (ooff, olen) = header_span(&other);
        let tl = u32::from_be_bytes(file[off + len..off + len + 4].try_into().unwrap()) as usize;
        let otl =
            u32::from_be_bytes(other[ooff + olen..ooff + olen + 4].try_into().unwrap()) as usize;
        let mut swapped = file[..off + len + 4 + tl].to_vec();
        swapped.extend_from_slice(&other[ooff + olen + 4 + otl..]);
        assert!(matches!(
            open(&swapped, &ea, None),
            Err(SnapshotError::BodyTampered)
        ));
    }

    #[tokio::test]
    async fn restore_keeps_the_key_and_revisions_and_honours_the_ledger_floor() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ea = enclave(a.path(), 1);
        let key = ClusterKey::from_bytes([9; 32]);
        let file = snap(&ea, &key);
        let tee = b.path().join("tee");
        same_platform(a.path(), &tee);
        let eb = enclave(&tee, 1);
        let contents = open_for(&file, &tee, &eb).unwrap();
        let store =
            daas_store::EmbeddedStore::open(&b.path().join("state.redb"), key.sealing_key())
                .unwrap();
        let opts = RestoreOptions {
            ledger_floor: 20,
            shift_revisions: false,
        };
        let r = restore(contents, &tee, &eb, &store, opts).await.unwrap();
        assert_eq!((r.floor, r.revision, r.shifted_by), (20, 20, 0));
        let kv = store
            .get("/registry/configmaps/default/a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (kv.mod_revision, kv.value.as_slice()),
            (5, &b"CANARY-VALUE"[..])
        );
        // The key is kept sealed for this enclave; a second restore is refused (not empty).
        assert_eq!(
            crate::clusterkey::load(&tee, &eb).unwrap(),
            Some(key.clone())
        );
        let again = open_for(&file, &tee, &eb).unwrap();
        assert!(matches!(
            restore(again, &tee, &eb, &store, RestoreOptions::default()).await,
            Err(SnapshotError::Store(
                daas_store::StoreError::RestoreNotEmpty(_)
            ))
        ));
    }

    #[tokio::test]
    async fn a_store_past_the_first_revision_refuses_unless_shifting() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ea = enclave(a.path(), 1);
        let key = ClusterKey::from_bytes([9; 32]);
        let file = snap(&ea, &key);
        let store =
            daas_store::EmbeddedStore::open(&b.path().join("state.redb"), key.sealing_key())
                .unwrap();
        // Revision 3 and empty, like an etcd that saw other writes.
        for _ in 0..3 {
            store.create("/x", b"x").await.unwrap();
            store.delete("/x", None).await.ok();
        }
        let current = store.current_revision().await.unwrap();
        let contents = open(&file, &ea, None).unwrap();
        assert!(matches!(
            restore(
                contents.clone(),
                b.path(),
                &ea,
                &store,
                RestoreOptions::default()
            )
            .await,
            Err(SnapshotError::Store(
                daas_store::StoreError::RestoreRevision { .. }
            ))
        ));
        let opts = RestoreOptions {
            ledger_floor: 0,
            shift_revisions: true,
        };
        let r = restore(contents, b.path(), &ea, &store, opts)
            .await
            .unwrap();
        // The first item (mod revision 1) lands right after the store's revision.
        assert_eq!(r.shifted_by, current);
        let kv = store
            .get("/registry/configmaps/default/a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kv.mod_revision, 5 + current);
        assert_eq!(r.revision, 6 + current);
    }

    #[tokio::test]
    async fn keep_applies_retention_and_indexes_blob_ids() {
        let (d, blobs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let e = enclave(d.path(), 1);
        let bs = crate::blobstore::DirBlobStore::new(blobs.path());
        let key = ClusterKey::from_bytes([9; 32]);
        let dir = d.path().join("snapshots");
        let mut ids = Vec::new();
        for t in 0..4u64 {
            let f = seal(&e, "simulated", &key, "c1", 6, 1000 + t, None, &items()).unwrap();
            let h = peek(&f).unwrap();
            let entry = keep(&dir, &h, f.clone(), Some(&bs), 2).await.unwrap();
            let id = entry.blob_id.clone().unwrap();
            assert_eq!(bs.get(&id).await.unwrap(), f);
            ids.push(id);
        }
        let index = read_index(&dir).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index[0].created_ms, 1002);
        assert_eq!(index[1].blob_id.as_ref(), ids.last());
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n.ends_with(FILE_SUFFIX))
            .collect();
        assert_eq!(files.len(), 2);
    }
}
