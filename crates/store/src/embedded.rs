//! Embedded single-node backend on redb.
//!
//! Layout (one redb file):
//! - `kv`: key -> [`KeyRecord`] (create/mod revision, version, sealed value) for live keys.
//! - `history`: revision -> [`HistoryRecord`] (kind, key, sealed value, previous state). Every write
//!   adds exactly one entry, so history is contiguous above the compacted revision.
//! - `meta`: `revision`, `compacted`.
//! - `meta_bytes`: a sealed canary used to reject a wrong sealing key at open.
//!
//! Writers serialise on one mutex that also guards the watcher list. A write commits (default
//! redb durability: fsync before `commit` returns), bumps the revision and fans the event out to
//! live watchers, all under that mutex. `watch` registers its live channel and takes a redb read
//! snapshot under the same mutex, then replays history from the snapshot before forwarding live
//! events, so replay and live meet exactly at the snapshot revision (no gap, no duplicate).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::codec::{HistoryRecord, KeyRecord};
use crate::seal::SealingKey;
use crate::{
    Event, EventKind, KeyValue, ListResult, RangeResult, Result, Revision, Store, StoreError,
    WatchReceiver,
};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const META_BYTES: TableDefinition<&str, &[u8]> = TableDefinition::new("meta_bytes");

const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";
const KEY_CHECK: &str = "sealing_key_check";
const KEY_CHECK_AAD: &[u8] = b"\0daas-store/sealing-key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"daas-store sealing key check v1";

/// Capacity of each watcher's channel. A watcher whose live queue fills up is dropped (its
/// receiver ends) instead of blocking writers.
pub const WATCH_CHANNEL_CAPACITY: usize = 4096;
/// History entries scanned per blocking step while replaying a watch.
const REPLAY_CHUNK: usize = 1024;
/// File name used when `open` is given a directory.
pub const DEFAULT_FILE_NAME: &str = "store.redb";

fn be<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

struct Watcher {
    id: u64,
    prefix: String,
    tx: mpsc::Sender<Event>,
}

struct WriterState {
    revision: Revision,
    compacted: Revision,
    watchers: Vec<Watcher>,
    next_watcher_id: u64,
}

struct Shared {
    db: Database,
    key: SealingKey,
    state: Mutex<WriterState>,
    /// Mirrors of `state.revision`/`state.compacted` readable without the writer lock.
    revision: AtomicI64,
    compacted: AtomicI64,
    path: PathBuf,
}

/// Single-node MVCC store in one redb file. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.shared.path)
            .field("revision", &self.shared.revision.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

enum WriteOp {
    Create,
    Update { expected: Revision },
    Delete { expected: Option<Revision> },
}

impl EmbeddedStore {
    /// Open (or create) the store. `path` is the database file, or a directory in which
    /// `store.redb` is used. Blocking: call it at startup or inside `spawn_blocking`.
    ///
    /// Fails with `StoreError::Unseal` if the store was created under another sealing key.
    pub fn open(path: &Path, key: SealingKey) -> Result<EmbeddedStore> {
        let file = if path.is_dir() {
            path.join(DEFAULT_FILE_NAME)
        } else {
            path.to_path_buf()
        };
        if let Some(parent) = file.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Backend(format!("create {}: {e}", parent.display()))
                })?;
            }
        }
        let db = Database::create(&file)
            .map_err(|e| StoreError::Backend(format!("open {}: {e}", file.display())))?;

        let txn = db.begin_write().map_err(be)?;
        let (revision, compacted) = {
            txn.open_table(KV).map_err(be)?;
            txn.open_table(HISTORY).map_err(be)?;
            let meta = txn.open_table(META).map_err(be)?;
            let revision = meta
                .get(META_REVISION)
                .map_err(be)?
                .map(|g| g.value())
                .unwrap_or(0);
            let compacted = meta
                .get(META_COMPACTED)
                .map_err(be)?
                .map(|g| g.value())
                .unwrap_or(0);
            let mut mb = txn.open_table(META_BYTES).map_err(be)?;
            let check = mb.get(KEY_CHECK).map_err(be)?.map(|g| g.value().to_vec());
            match check {
                Some(sealed) => {
                    if key.unseal(KEY_CHECK_AAD, &sealed).ok().as_deref()
                        != Some(KEY_CHECK_PLAINTEXT)
                    {
                        let found = SealingKey::sealed_key_id(&sealed)
                            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>())
                            .unwrap_or_else(|| "?".into());
                        error!(path = %file.display(), expected_key_id = %found,
                            given_key_id = %key.key_id_hex(), "store sealed under a different key");
                        return Err(StoreError::Unseal(format!(
                            "<sealing key check: store {} was sealed with key id {found}, given {}>",
                            file.display(),
                            key.key_id_hex()
                        )));
                    }
                }
                None => {
                    let sealed = key.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)?;
                    mb.insert(KEY_CHECK, sealed.as_slice()).map_err(be)?;
                }
            }
            (revision, compacted)
        };
        txn.commit().map_err(be)?;
        info!(path = %file.display(), revision, compacted, key_id = %key.key_id_hex(), "embedded store opened");

        Ok(EmbeddedStore {
            shared: Arc::new(Shared {
                db,
                key,
                state: Mutex::new(WriterState {
                    revision,
                    compacted,
                    watchers: Vec::new(),
                    next_watcher_id: 1,
                }),
                revision: AtomicI64::new(revision),
                compacted: AtomicI64::new(compacted),
                path: file,
            }),
        })
    }

    /// Path of the redb file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Number of registered live watchers (closed ones are pruned lazily on the next write).
    pub fn watcher_count(&self) -> usize {
        let mut st = self.shared.lock();
        st.watchers.retain(|w| !w.tx.is_closed());
        st.watchers.len()
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    async fn write(&self, key: &str, value: Option<&[u8]>, op: WriteOp) -> Result<KeyValue> {
        // Seal outside the writer lock.
        let sealed = match value {
            Some(v) => Some(self.shared.key.seal(key.as_bytes(), v)?),
            None => None,
        };
        let plaintext = value.map(|v| v.to_vec());
        let key = key.to_string();
        self.blocking(move |s| s.write(key, sealed, plaintext, op))
            .await
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // A panic while holding the lock cannot leave redb half-written (the transaction aborts
        // on drop) and the cached revision is only bumped after commit, so the state is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kv_from(&self, key: &str, rec: &KeyRecord) -> Result<KeyValue> {
        Ok(KeyValue {
            key: key.to_string(),
            value: self.key.unseal(key.as_bytes(), &rec.sealed)?,
            create_revision: rec.create_revision,
            mod_revision: rec.mod_revision,
            version: rec.version,
        })
    }

    fn write(
        &self,
        key: String,
        sealed: Option<Vec<u8>>,
        plaintext: Option<Vec<u8>>,
        op: WriteOp,
    ) -> Result<KeyValue> {
        let mut st = self.lock();
        let rev = st.revision + 1;
        let txn = self.db.begin_write().map_err(be)?;
        let (kind, new, prev) = {
            let mut kv = txn.open_table(KV).map_err(be)?;
            let existing = match kv.get(key.as_str()).map_err(be)? {
                Some(g) => Some(KeyRecord::decode(g.value())?),
                None => None,
            };
            let (kind, new, prev) = match op {
                WriteOp::Create => {
                    if existing.is_some() {
                        return Err(StoreError::AlreadyExists(key));
                    }
                    let sealed =
                        sealed.ok_or_else(|| StoreError::Backend("create without value".into()))?;
                    (
                        EventKind::Put,
                        KeyRecord {
                            create_revision: rev,
                            mod_revision: rev,
                            version: 1,
                            sealed,
                        },
                        None,
                    )
                }
                WriteOp::Update { expected } => {
                    let cur = existing.ok_or_else(|| StoreError::NotFound(key.clone()))?;
                    if cur.mod_revision != expected {
                        return Err(StoreError::Conflict {
                            key,
                            expected,
                            actual: cur.mod_revision,
                        });
                    }
                    let sealed =
                        sealed.ok_or_else(|| StoreError::Backend("update without value".into()))?;
                    let new = KeyRecord {
                        create_revision: cur.create_revision,
                        mod_revision: rev,
                        version: cur.version + 1,
                        sealed,
                    };
                    (EventKind::Put, new, Some(cur))
                }
                WriteOp::Delete { expected } => {
                    let cur = existing.ok_or_else(|| StoreError::NotFound(key.clone()))?;
                    if let Some(expected) = expected {
                        if cur.mod_revision != expected {
                            return Err(StoreError::Conflict {
                                key,
                                expected,
                                actual: cur.mod_revision,
                            });
                        }
                    }
                    // The history keeps the last value only once (in `prev`).
                    let new = KeyRecord {
                        create_revision: cur.create_revision,
                        mod_revision: rev,
                        version: cur.version,
                        sealed: Vec::new(),
                    };
                    (EventKind::Delete, new, Some(cur))
                }
            };
            match kind {
                EventKind::Put => {
                    kv.insert(key.as_str(), new.encode().as_slice())
                        .map_err(be)?;
                }
                EventKind::Delete => {
                    kv.remove(key.as_str()).map_err(be)?;
                }
            }
            let hist = HistoryRecord {
                kind,
                key: key.clone(),
                kv: new,
                prev,
            };
            let mut history = txn.open_table(HISTORY).map_err(be)?;
            history
                .insert(rev as u64, hist.encode().as_slice())
                .map_err(be)?;
            let mut meta = txn.open_table(META).map_err(be)?;
            meta.insert(META_REVISION, rev).map_err(be)?;
            (hist.kind, hist.kv, hist.prev)
        };
        txn.commit().map_err(be)?;
        st.revision = rev;
        self.revision.store(rev, Ordering::Release);

        // Build the acknowledged KeyValue (and the event) from plaintext we already hold; the
        // previous value is only unsealed if a delete must return it or a watcher wants it.
        let wants_event = st.watchers.iter().any(|w| key.starts_with(&w.prefix));
        let prev_kv = match (&prev, kind == EventKind::Delete || wants_event) {
            (Some(p), true) => match self.kv_from(&key, p) {
                Ok(kv) => Some(kv),
                Err(e) => {
                    error!(key = %key, error = %e, "cannot unseal previous value after write");
                    None
                }
            },
            _ => None,
        };
        let value = match kind {
            EventKind::Put => plaintext.unwrap_or_default(),
            EventKind::Delete => prev_kv
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or_default(),
        };
        let kv = KeyValue {
            key,
            value,
            create_revision: new.create_revision,
            mod_revision: new.mod_revision,
            version: new.version,
        };
        if wants_event {
            if prev.is_some() && prev_kv.is_none() {
                // Do not hand watchers an event with a made-up previous state: end them.
                st.watchers.retain(|w| !kv.key.starts_with(&w.prefix));
            } else {
                let ev = Event {
                    kind,
                    kv: kv.clone(),
                    prev: prev_kv,
                };
                fan_out(&mut st, &ev);
            }
        } else if st.watchers.iter().any(|w| w.tx.is_closed()) {
            st.watchers.retain(|w| !w.tx.is_closed());
        }
        debug!(key = %kv.key, revision = rev, ?kind, "write committed");
        Ok(kv)
    }

    fn read_history_chunk(
        &self,
        snap: &ReadTransaction,
        prefix: &str,
        cursor: Revision,
        upto: Revision,
    ) -> Result<(Vec<Event>, Revision)> {
        let history = snap.open_table(HISTORY).map_err(be)?;
        let start = (cursor + 1) as u64;
        let end = upto as u64;
        let mut events = Vec::new();
        let mut last = cursor;
        let mut scanned = 0usize;
        for item in history.range(start..=end).map_err(be)? {
            let (rev, raw) = item.map_err(be)?;
            last = rev.value() as Revision;
            scanned += 1;
            let h = HistoryRecord::decode(raw.value())?;
            if h.key.starts_with(prefix) {
                events.push(self.event_from_history(h)?);
            }
            if scanned >= REPLAY_CHUNK {
                return Ok((events, last));
            }
        }
        // Range exhausted: everything up to `upto` has been seen.
        Ok((events, upto.max(last)))
    }

    fn event_from_history(&self, h: HistoryRecord) -> Result<Event> {
        let prev = match &h.prev {
            Some(p) => Some(self.kv_from(&h.key, p)?),
            None => None,
        };
        let value = match h.kind {
            EventKind::Put => self.key.unseal(h.key.as_bytes(), &h.kv.sealed)?,
            EventKind::Delete => prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
        };
        Ok(Event {
            kind: h.kind,
            kv: KeyValue {
                key: h.key,
                value,
                create_revision: h.kv.create_revision,
                mod_revision: h.kv.mod_revision,
                version: h.kv.version,
            },
            prev,
        })
    }
}

fn fan_out(st: &mut WriterState, ev: &Event) {
    st.watchers.retain(|w| {
        if !ev.kv.key.starts_with(&w.prefix) {
            return !w.tx.is_closed();
        }
        match w.tx.try_send(ev.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(watcher = w.id, prefix = %w.prefix, revision = ev.kv.mod_revision,
                    "watcher fell behind; dropping it");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!(watcher = w.id, "watcher closed");
                false
            }
        }
    });
}

/// Per-watch task: replay history from the snapshot, then forward live events.
async fn forward(
    shared: Arc<Shared>,
    prefix: String,
    after: Revision,
    upto: Revision,
    snapshot: Option<ReadTransaction>,
    mut live: mpsc::Receiver<Event>,
    out: mpsc::Sender<Event>,
) {
    if let Some(snap) = snapshot {
        let snap = Arc::new(snap);
        let mut cursor = after;
        while cursor < upto {
            let (s, sn, p) = (shared.clone(), snap.clone(), prefix.clone());
            let res =
                tokio::task::spawn_blocking(move || s.read_history_chunk(&sn, &p, cursor, upto))
                    .await;
            let (events, next) = match res {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    error!(prefix = %prefix, error = %e, "watch replay failed; ending watch");
                    return;
                }
                Err(e) => {
                    error!(prefix = %prefix, error = %e, "watch replay task failed; ending watch");
                    return;
                }
            };
            if next <= cursor {
                error!(prefix = %prefix, cursor, "watch replay made no progress; ending watch");
                return;
            }
            cursor = next;
            for ev in events {
                if out.send(ev).await.is_err() {
                    return;
                }
            }
        }
    }
    // Only a weak interest in the store from here on: live events come through the channel.
    drop(shared);
    loop {
        tokio::select! {
            ev = live.recv() => match ev {
                Some(ev) => {
                    if out.send(ev).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = out.closed() => return,
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.blocking(move |s| {
            let txn = s.db.begin_read().map_err(be)?;
            let kv = txn.open_table(KV).map_err(be)?;
            let rec = match kv.get(key.as_str()).map_err(be)? {
                Some(g) => KeyRecord::decode(g.value())?,
                None => return Ok(None),
            };
            Ok(Some(s.kv_from(&key, &rec)?))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<ListResult> {
        let prefix = prefix.to_string();
        self.blocking(move |s| {
            let txn = s.db.begin_read().map_err(be)?;
            let meta = txn.open_table(META).map_err(be)?;
            let revision = meta
                .get(META_REVISION)
                .map_err(be)?
                .map(|g| g.value())
                .unwrap_or(0);
            let kv = txn.open_table(KV).map_err(be)?;
            let mut items = Vec::new();
            for item in kv.range(prefix.as_str()..).map_err(be)? {
                let (k, v) = item.map_err(be)?;
                let k = k.value();
                if !k.starts_with(prefix.as_str()) {
                    break;
                }
                let rec = KeyRecord::decode(v.value())?;
                items.push(s.kv_from(k, &rec)?);
            }
            Ok(ListResult { items, revision })
        })
        .await
    }

    async fn list_at(&self, prefix: &str, revision: Revision) -> Result<ListResult> {
        let page = self
            .list_range(prefix, "", usize::MAX, Some(revision))
            .await?;
        Ok(ListResult {
            items: page.items,
            revision: page.revision,
        })
    }

    async fn list_range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        let prefix = prefix.to_string();
        let from = if start > prefix.as_str() {
            start.to_string()
        } else {
            prefix.clone()
        };
        let limit = limit.max(1);
        self.blocking(move |s| {
            let txn = s.db.begin_read().map_err(be)?;
            let meta = txn.open_table(META).map_err(be)?;
            let read = |name: &str| -> Result<Revision> {
                Ok(meta.get(name).map_err(be)?.map(|g| g.value()).unwrap_or(0))
            };
            let (current, compacted) = (read(META_REVISION)?, read(META_COMPACTED)?);
            let revision = revision.unwrap_or(current);
            if revision < compacted {
                return Err(StoreError::Compacted {
                    requested: revision,
                    compacted,
                });
            }
            if revision > current {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current,
                });
            }
            let kv = txn.open_table(KV).map_err(be)?;
            let in_range = |k: &str| k.starts_with(prefix.as_str());
            if revision == current {
                // The live table is the snapshot: unseal the page, only count the rest.
                let mut items = Vec::with_capacity(limit.min(1024));
                let mut remaining = 0;
                for item in kv.range(from.as_str()..).map_err(be)? {
                    let (k, v) = item.map_err(be)?;
                    let k = k.value();
                    if !in_range(k) {
                        break;
                    }
                    if items.len() < limit {
                        items.push(s.kv_from(k, &KeyRecord::decode(v.value())?)?);
                    } else {
                        remaining += 1;
                    }
                }
                return Ok(RangeResult {
                    items,
                    revision,
                    remaining,
                });
            }
            // A past revision: the live records from `from` on, every later write undone.
            let mut records = std::collections::BTreeMap::new();
            for item in kv.range(from.as_str()..).map_err(be)? {
                let (k, v) = item.map_err(be)?;
                let k = k.value();
                if !in_range(k) {
                    break;
                }
                records.insert(k.to_string(), KeyRecord::decode(v.value())?);
            }
            let history = txn.open_table(HISTORY).map_err(be)?;
            for item in history
                .range((revision + 1) as u64..=current as u64)
                .map_err(be)?
                .rev()
            {
                let (_, raw) = item.map_err(be)?;
                let h = HistoryRecord::decode(raw.value())?;
                if !in_range(&h.key) || h.key.as_str() < from.as_str() {
                    continue;
                }
                match h.prev {
                    Some(prev) => records.insert(h.key, prev),
                    None => records.remove(&h.key),
                };
            }
            let remaining = records.len().saturating_sub(limit);
            let items = records
                .iter()
                .take(limit)
                .map(|(k, rec)| s.kv_from(k, rec))
                .collect::<Result<Vec<_>>>()?;
            Ok(RangeResult {
                items,
                revision,
                remaining,
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: &[u8]) -> Result<KeyValue> {
        self.write(key, Some(value), WriteOp::Create).await
    }

    async fn update(
        &self,
        key: &str,
        value: &[u8],
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        self.write(
            key,
            Some(value),
            WriteOp::Update {
                expected: expected_mod_revision,
            },
        )
        .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        self.write(
            key,
            None,
            WriteOp::Delete {
                expected: expected_mod_revision,
            },
        )
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchReceiver> {
        let after = after.max(0);
        let p = prefix.to_string();
        let (snapshot, upto, live_rx) = self
            .blocking(move |s| {
                let mut st = s.lock();
                if after < st.compacted {
                    return Err(StoreError::Compacted {
                        requested: after,
                        compacted: st.compacted,
                    });
                }
                if after > st.revision {
                    return Err(StoreError::FutureRevision {
                        requested: after,
                        current: st.revision,
                    });
                }
                // Taken under the writer lock: the snapshot holds exactly revisions <= st.revision
                // and every later write will reach the live channel registered below.
                let snapshot = if after < st.revision {
                    Some(s.db.begin_read().map_err(be)?)
                } else {
                    None
                };
                let (tx, rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
                let id = st.next_watcher_id;
                st.next_watcher_id += 1;
                debug!(watcher = id, prefix = %p, after, upto = st.revision, "watch registered");
                st.watchers.push(Watcher { id, prefix: p, tx });
                Ok((snapshot, st.revision, rx))
            })
            .await?;
        let (out_tx, out_rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
        tokio::spawn(forward(
            self.shared.clone(),
            prefix.to_string(),
            after,
            upto,
            snapshot,
            live_rx,
            out_tx,
        ));
        Ok(out_rx)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.blocking(move |s| {
            let mut st = s.lock();
            if revision > st.revision {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current: st.revision,
                });
            }
            if revision <= st.compacted {
                return Ok(());
            }
            let txn = s.db.begin_write().map_err(be)?;
            {
                let mut history = txn.open_table(HISTORY).map_err(be)?;
                history
                    .retain_in(..=(revision as u64), |_, _| false)
                    .map_err(be)?;
                let mut meta = txn.open_table(META).map_err(be)?;
                meta.insert(META_COMPACTED, revision).map_err(be)?;
            }
            txn.commit().map_err(be)?;
            st.compacted = revision;
            s.compacted.store(revision, Ordering::Release);
            info!(revision, "history compacted");
            Ok(())
        })
        .await
    }

    async fn restore(
        &self,
        items: Vec<KeyValue>,
        revision: Revision,
        floor: Revision,
    ) -> Result<()> {
        let (items, target) = crate::restore_plan(items, revision, floor)?;
        // Seal outside the writer lock.
        let mut records = Vec::with_capacity(items.len());
        for kv in &items {
            records.push((
                kv.key.clone(),
                KeyRecord {
                    create_revision: kv.create_revision,
                    mod_revision: kv.mod_revision,
                    version: kv.version,
                    sealed: self.shared.key.seal(kv.key.as_bytes(), &kv.value)?,
                },
            ));
        }
        self.blocking(move |s| {
            let mut st = s.lock();
            let txn = s.db.begin_write().map_err(be)?;
            let rev = {
                let mut kv = txn.open_table(KV).map_err(be)?;
                if let Some(first) = kv.first().map_err(be)? {
                    return Err(StoreError::RestoreNotEmpty(format!(
                        "key {} exists",
                        first.0.value()
                    )));
                }
                if let Some((key, _)) = records.first() {
                    let wanted = records[0].1.mod_revision;
                    if st.revision >= wanted {
                        return Err(StoreError::RestoreRevision {
                            key: key.clone(),
                            wanted,
                            current: st.revision,
                        });
                    }
                }
                for (key, rec) in &records {
                    kv.insert(key.as_str(), rec.encode().as_slice())
                        .map_err(be)?;
                }
                // No history before the snapshot: everything up to it reads as compacted.
                let mut history = txn.open_table(HISTORY).map_err(be)?;
                history.retain(|_, _| false).map_err(be)?;
                let rev = target.max(st.revision);
                let mut meta = txn.open_table(META).map_err(be)?;
                meta.insert(META_REVISION, rev).map_err(be)?;
                meta.insert(META_COMPACTED, rev).map_err(be)?;
                rev
            };
            txn.commit().map_err(be)?;
            st.revision = rev;
            st.compacted = rev;
            s.revision.store(rev, Ordering::Release);
            s.compacted.store(rev, Ordering::Release);
            // Watchers saw none of this: end them so they re-list.
            st.watchers.clear();
            info!(keys = records.len(), revision = rev, "snapshot restored");
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    fn open_tmp() -> (tempfile::TempDir, EmbeddedStore, SealingKey) {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SealingKey::generate();
        let store = EmbeddedStore::open(dir.path(), key.clone()).expect("open");
        (dir, store, key)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_suite() {
        let (_dir, store, _) = open_tmp();
        conformance::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restore_conformance() {
        let (_d1, src, _) = open_tmp();
        let (_d2, dst, _) = open_tmp();
        conformance::restore_snapshot(&src, &dst, true).await;
        // History before the restored revision reads as compacted.
        let rev = dst.compacted_revision().await.expect("compacted");
        assert!(rev > 0);
        assert!(matches!(
            dst.list_at("", rev - 1).await,
            Err(StoreError::Compacted { .. })
        ));
    }

    #[tokio::test]
    async fn fresh_store_starts_at_zero() {
        let (_dir, store, _) = open_tmp();
        assert_eq!(store.current_revision().await.expect("rev"), 0);
        assert_eq!(store.compacted_revision().await.expect("comp"), 0);
        let kv = store.create("/a", b"1").await.expect("create");
        assert_eq!(kv.mod_revision, 1);
        assert_eq!(kv.create_revision, 1);
        // A watch from 0 on a fresh store replays everything.
        let mut w = store.watch("", 0).await.expect("watch");
        let ev = w.recv().await.expect("event");
        assert_eq!(ev.kv.mod_revision, 1);
    }

    #[tokio::test]
    async fn reopen_keeps_data_and_revision() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SealingKey::generate();
        {
            let store = EmbeddedStore::open(dir.path(), key.clone()).expect("open");
            store.create("/r/a", b"alpha").await.expect("create");
            let b = store.create("/r/b", b"beta").await.expect("create");
            store
                .update("/r/b", b"beta2", b.mod_revision)
                .await
                .expect("update");
            store.delete("/r/a", None).await.expect("delete");
            store.compact(2).await.expect("compact");
        }
        let store = EmbeddedStore::open(dir.path(), key).expect("reopen");
        assert_eq!(store.current_revision().await.expect("rev"), 4);
        assert_eq!(store.compacted_revision().await.expect("comp"), 2);
        assert_eq!(store.get("/r/a").await.expect("get"), None);
        let b = store.get("/r/b").await.expect("get").expect("present");
        assert_eq!(b.value, b"beta2");
        assert_eq!((b.create_revision, b.mod_revision, b.version), (2, 3, 2));
        let c = store.create("/r/c", b"c").await.expect("create");
        assert_eq!(c.mod_revision, 5);
        // History after the compaction point survived the reopen.
        let mut w = store.watch("/r/", 2).await.expect("watch");
        let revs: Vec<_> = [w.recv().await, w.recv().await, w.recv().await]
            .into_iter()
            .map(|e| e.expect("event").kv.mod_revision)
            .collect();
        assert_eq!(revs, vec![3, 4, 5]);
        assert!(matches!(
            store.watch("/r/", 1).await,
            Err(StoreError::Compacted {
                requested: 1,
                compacted: 2
            })
        ));
    }

    #[tokio::test]
    async fn values_on_disk_are_sealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SealingKey::generate();
        let marker = "PLAINTEXT-MARKER-7f3a9c-do-not-leak";
        {
            let store = EmbeddedStore::open(dir.path(), key.clone()).expect("open");
            let kv = store
                .create("/secret/one", marker.as_bytes())
                .await
                .expect("create");
            // Update and delete so the marker also sits in history `prev` slots.
            let kv = store
                .update(
                    "/secret/one",
                    format!("{marker}-v2").as_bytes(),
                    kv.mod_revision,
                )
                .await
                .expect("update");
            store
                .delete("/secret/one", Some(kv.mod_revision))
                .await
                .expect("delete");
            store
                .create("/secret/two", marker.as_bytes())
                .await
                .expect("create");
        }
        let bytes = std::fs::read(dir.path().join(DEFAULT_FILE_NAME)).expect("read db file");
        assert!(!bytes.is_empty());
        let needle = marker.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "plaintext marker found in the redb file"
        );
        // Keys are not secret and are stored in the clear; make sure the test would notice text.
        let key_needle = b"/secret/two";
        assert!(bytes.windows(key_needle.len()).any(|w| w == key_needle));
    }

    #[tokio::test]
    async fn wrong_key_on_reopen_is_unseal_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = EmbeddedStore::open(dir.path(), SealingKey::generate()).expect("open");
            store.create("/k", b"v").await.expect("create");
        }
        match EmbeddedStore::open(dir.path(), SealingKey::generate()) {
            Err(StoreError::Unseal(msg)) => assert!(msg.contains("sealing key check"), "{msg}"),
            other => panic!("expected Unseal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn value_moved_to_other_key_fails_to_open() {
        let (_dir, store, _) = open_tmp();
        store.create("/a", b"va").await.expect("create");
        store.create("/b", b"vb").await.expect("create");
        // Tamper with the file through redb: copy /a's record under /b.
        {
            let txn = store.shared.db.begin_write().expect("txn");
            {
                let mut kv = txn.open_table(KV).expect("table");
                let a = kv
                    .get("/a")
                    .expect("get")
                    .expect("present")
                    .value()
                    .to_vec();
                kv.insert("/b", a.as_slice()).expect("insert");
            }
            txn.commit().expect("commit");
        }
        assert!(matches!(store.get("/b").await, Err(StoreError::Unseal(k)) if k == "/b"));
        assert!(matches!(store.list("/").await, Err(StoreError::Unseal(_))));
        assert_eq!(
            store.get("/a").await.expect("get").expect("present").value,
            b"va"
        );
    }

    #[tokio::test]
    async fn slow_watcher_is_dropped_without_blocking_writers() {
        let (_dir, store, _) = open_tmp();
        let mut slow = store.watch("/s/", 0).await.expect("watch");
        // Nobody reads `slow`: live queue (4096) + forwarder output (4096) + one in flight.
        let total = 2 * WATCH_CHANNEL_CAPACITY + 50;
        let w = tokio::time::timeout(std::time::Duration::from_secs(120), async {
            for i in 0..total {
                store
                    .create(&format!("/s/{i:06}"), b"x")
                    .await
                    .expect("create");
            }
        })
        .await;
        assert!(w.is_ok(), "writers blocked by a slow watcher");
        let mut n = 0;
        while let Some(ev) = slow.recv().await {
            n += 1;
            assert_eq!(
                ev.kv.mod_revision, n as i64,
                "events must be contiguous before the drop"
            );
        }
        assert!(
            n < total,
            "slow watcher should have been dropped, got all {n}"
        );
        assert!(n >= WATCH_CHANNEL_CAPACITY);
        assert_eq!(store.watcher_count(), 0);
    }

    #[tokio::test]
    async fn dropped_receivers_are_cleaned_up() {
        let (_dir, store, _) = open_tmp();
        let w1 = store.watch("/a", 0).await.expect("watch");
        let w2 = store.watch("/b", 0).await.expect("watch");
        assert_eq!(store.watcher_count(), 2);
        drop(w1);
        drop(w2);
        // The forwarding tasks notice the closed receivers and drop their live queues.
        for _ in 0..100 {
            if store.watcher_count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(store.watcher_count(), 0);
        store.create("/a1", b"x").await.expect("create");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_and_watch_no_gap_no_duplicate() {
        let (_dir, store, _) = open_tmp();
        for i in 0..50 {
            store
                .create(&format!("/c/pre{i}"), b"p")
                .await
                .expect("create");
        }
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let s = store.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        s.create(&format!("/c/w{w}-{i}"), b"v")
                            .await
                            .expect("create");
                    }
                })
            })
            .collect();
        // Start watches at various points while writes are in flight.
        let mut watches = Vec::new();
        for after in [0, 10, 25, 49] {
            watches.push((after, store.watch("/c/", after).await.expect("watch")));
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.expect("writer");
        }
        let end = store.current_revision().await.expect("rev");
        assert_eq!(end, 250);
        for (after, mut rx) in watches {
            let mut expect = after + 1;
            while expect <= end {
                let ev = rx.recv().await.expect("event");
                assert_eq!(ev.kv.mod_revision, expect, "watch after {after}");
                expect += 1;
            }
        }
    }
}
