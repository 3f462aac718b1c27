//! Embedded single-node backend on redb.
//!
//! Layout (one redb file, plus its write-ahead log `<file>.wal`, see [`crate::wal`]):
//! - `kv`: key -> [`KeyRecord`] (create/mod revision, version, sealed value) for live keys.
//! - `history`: revision -> [`HistoryRecord`] (kind, key, sealed value, previous state). Every write
//!   adds exactly one entry, so history is contiguous above the compacted revision.
//! - `meta`: `revision`, `compacted`.
//! - `meta_bytes`: a sealed canary used to reject a wrong sealing key at open, and the random id
//!   binding the write-ahead log to this file.
//!
//! Group commit: a writer seals its value, queues the operation (create/update/delete with its
//! precondition) to the store's one committer thread and awaits the answer. The committer takes
//! the first queued operation, then the writer mutex (which also guards the watcher list), then
//! everything else queued by then (at most [`MAX_BATCH_OPS`] operations / about
//! [`MAX_BATCH_BYTES`] bytes), and applies them in queue order in ONE redb write transaction: each
//! operation is checked against the state left by the ones before it and takes the next revision,
//! a failed precondition fails that operation alone (same error as a lone write) and takes no
//! revision. One durable commit covers the batch: the batch's history entries go to the
//! write-ahead log as ONE sealed frame and one `fdatasync`, then the redb transaction commits
//! without a sync (`Durability::None`: visible to readers, made durable by the next checkpoint).
//! A batch that does not fit in the log's free space commits into redb durably instead (a
//! checkpoint, as do compaction, restore and a clean close) and the log starts over. Opening
//! replays the log's frames above redb's durable revision. Only after the durable step are the
//! writers answered and the events fanned out to live watchers, in revision order, still under
//! the mutex. Writes arriving while a commit is in flight form the
//! next batch; a lone writer waits for no timer (the committer commits as soon as the queue is
//! drained). `watch` registers its live channel and takes a redb read snapshot under the same
//! mutex, then replays history from the snapshot before forwarding live events, so replay and
//! live meet exactly at the snapshot revision (no gap, no duplicate).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, debug_span, error, info, warn};

use crate::codec::{HistoryRecord, KeyRecord};
use crate::route::{Subscribers, WatchRoute};
use crate::seal::SealingKey;
use crate::wal::{self, CrashPoint, Wal};
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
/// Random id binding the write-ahead log to this redb file (see [`crate::wal`]).
const LOG_ID: &str = "wal_id";
const KEY_CHECK_AAD: &[u8] = b"\0daas-store/sealing-key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"daas-store sealing key check v1";

/// Capacity of each watcher's channel. A watcher whose live queue fills up is dropped (its
/// receiver ends) instead of blocking writers.
pub const WATCH_CHANNEL_CAPACITY: usize = 4096;
/// Every this many revisions, watchers whose receiver is gone are pruned (see `acknowledge`).
const PRUNE_EVERY: Revision = 64;
/// History entries scanned per blocking step while replaying a watch.
const REPLAY_CHUNK: usize = 1024;
/// File name used when `open` is given a directory.
pub const DEFAULT_FILE_NAME: &str = "store.redb";
/// Most write operations one durable commit takes from the queue.
pub const MAX_BATCH_OPS: usize = 256;
/// The committer stops taking operations into a batch once their sealed values reach this size
/// (a single larger write still commits, alone).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

fn be<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

struct Watcher {
    id: u64,
    prefix: String,
    tx: mpsc::Sender<Arc<Event>>,
}

struct WriterState {
    revision: Revision,
    compacted: Revision,
    watchers: Subscribers<Watcher>,
    next_watcher_id: u64,
    wal: Wal,
}

/// Tuning of [`EmbeddedStore::open_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Size of the write-ahead log file (`<redb file>.wal`), zero-filled at creation. Each
    /// batch of writes is one appended frame made durable by one `fdatasync`; when the log is
    /// full, the batch that does not fit is committed durably into redb (a checkpoint) and the
    /// log starts over. Larger: fewer checkpoints, a longer replay after a crash.
    pub wal_bytes: u64,
    /// Memory redb may use to cache database pages (its own default is 1 GiB, which a busy
    /// store's pages, history included, fill: the master's RSS grew towards it with the cluster).
    /// Pages beyond it are read from the file (the kernel's page cache, reclaimable).
    pub cache_bytes: usize,
}

/// Default [`EmbeddedOptions::cache_bytes`]: room for the live objects of a 1,000-node,
/// 10,000-pod cluster, not for its whole history.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            wal_bytes: wal::DEFAULT_WAL_BYTES,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

struct Shared {
    db: Database,
    key: SealingKey,
    state: Mutex<WriterState>,
    /// Mirrors of `state.revision`/`state.compacted` readable without the writer lock.
    revision: AtomicI64,
    compacted: AtomicI64,
    /// Durable write commits so far (each holds one batch of writes).
    commits: AtomicU64,
    /// Checkpoints so far (durable redb commits that let the write-ahead log start over).
    checkpoints: AtomicU64,
    path: PathBuf,
}

/// Single-node MVCC store in one redb file. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    committer: Arc<Committer>,
}

/// The write queue and the committer thread draining it. Dropping the last handle closes the
/// queue and joins the thread, so the redb file is closed when the store is dropped.
struct Committer {
    queue: Option<std::sync::mpsc::Sender<Pending>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("store committer thread panicked");
            }
        }
    }
}

/// One queued write: the operation, its sealed value (and the plaintext to answer with), and
/// where its outcome goes once the batch holding it is durable.
struct Pending {
    key: String,
    sealed: Option<Vec<u8>>,
    plaintext: Option<Vec<u8>>,
    op: WriteOp,
    reply: oneshot::Sender<Result<KeyValue>>,
}

impl Pending {
    fn size(&self) -> usize {
        self.key.len() + self.sealed.as_ref().map_or(0, Vec::len)
    }
}

/// An accepted write inside a batch: the key's new record and its previous one.
struct Applied {
    kind: EventKind,
    new: KeyRecord,
    prev: Option<KeyRecord>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.shared.path)
            .field("revision", &self.shared.revision.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
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
        Self::open_with(path, key, EmbeddedOptions::default())
    }

    /// [`EmbeddedStore::open`] with explicit options. Replays the write-ahead log: writes that
    /// were acknowledged before a crash but not yet checkpointed into redb are applied again.
    /// Fails with `StoreError::WalCorrupt` if the log is damaged before its end (a torn last
    /// frame, never acknowledged, is discarded instead).
    pub fn open_with(
        path: &Path,
        key: SealingKey,
        options: EmbeddedOptions,
    ) -> Result<EmbeddedStore> {
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
        let db = redb::Builder::new()
            .set_cache_size(options.cache_bytes)
            .create(&file)
            .map_err(|e| StoreError::Backend(format!("open {}: {e}", file.display())))?;

        let txn = db.begin_write().map_err(be)?;
        let (revision, compacted, log_id) = {
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
            let stored_id = mb.get(LOG_ID).map_err(be)?.map(|g| g.value().to_vec());
            let log_id = match stored_id {
                Some(id) => <[u8; wal::LOG_ID_LEN]>::try_from(id.as_slice())
                    .map_err(|_| StoreError::Backend("malformed write-ahead log id".into()))?,
                None => {
                    let mut id = [0u8; wal::LOG_ID_LEN];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
                    mb.insert(LOG_ID, id.as_slice()).map_err(be)?;
                    id
                }
            };
            (revision, compacted, log_id)
        };
        txn.commit().map_err(be)?;
        // The sealing key is verified: now the log can be read (and a torn tail discarded).
        let (mut wal, recovered) = Wal::open(
            &wal::wal_path(&file),
            key.clone(),
            log_id,
            options.wal_bytes,
            revision,
        )?;
        let durable = revision;
        let revision = replay(&db, &file, recovered.frames, revision)?;
        // Everything in the log is in redb durably now: a new cycle starts at offset 0.
        wal.restart();
        info!(path = %file.display(), revision, replayed = revision - durable, compacted,
            torn_tail = recovered.torn.is_some(), key_id = %key.key_id_hex(), "embedded store opened");

        let shared = Arc::new(Shared {
            db,
            key,
            state: Mutex::new(WriterState {
                revision,
                compacted,
                watchers: Subscribers::default(),
                next_watcher_id: 1,
                wal,
            }),
            revision: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
            commits: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            path: file,
        });
        let (queue, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("daas-store-commit".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    // Every write waits for this thread: it preempts the threads of a flood.
                    daas_sched::latency_critical("store committer");
                    run_committer(&shared, &rx)
                }
            })
            .map_err(|e| StoreError::Backend(format!("start the store committer: {e}")))?;
        Ok(EmbeddedStore {
            shared,
            committer: Arc::new(Committer {
                queue: Some(queue),
                thread: Some(thread),
            }),
        })
    }

    /// Durable write commits since the store was opened. Concurrent writers share commits, so
    /// this grows slower than the revision under load.
    pub fn commit_count(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// Checkpoints since the store was opened (durable redb commits after which the
    /// write-ahead log started over).
    pub fn checkpoint_count(&self) -> u64 {
        self.shared.checkpoints.load(Ordering::Relaxed)
    }

    /// Path of the redb file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Path of the write-ahead log next to the redb file.
    pub fn wal_path(&self) -> PathBuf {
        wal::wal_path(&self.shared.path)
    }

    /// Number of registered live watchers (closed ones are pruned lazily on the next write).
    pub fn watcher_count(&self) -> usize {
        let mut st = self.shared.lock();
        st.watchers.retain_all(|w| !w.tx.is_closed());
        st.watchers.len()
    }

    /// Live watchers registered with a [`WatchRoute`] (tests, metrics).
    pub fn routed_watcher_count(&self) -> usize {
        let mut st = self.shared.lock();
        st.watchers.retain_all(|w| !w.tx.is_closed());
        st.watchers.routed_len()
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
        // Seal outside the writer lock and the committer.
        let sealed = match value {
            Some(v) => Some(self.shared.key.seal(key.as_bytes(), v)?),
            None => None,
        };
        let answer = self.enqueue(key.to_string(), sealed, value.map(<[u8]>::to_vec), op)?;
        answer.await.map_err(|_| {
            StoreError::Backend("the store committer stopped before answering".into())
        })?
    }

    /// Queue one write for the committer; the receiver yields its outcome once durable.
    fn enqueue(
        &self,
        key: String,
        sealed: Option<Vec<u8>>,
        plaintext: Option<Vec<u8>>,
        op: WriteOp,
    ) -> Result<oneshot::Receiver<Result<KeyValue>>> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key,
            sealed,
            plaintext,
            op,
            reply,
        };
        self.committer
            .queue
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?
            .send(pending)
            .map_err(|_| StoreError::Backend("the store committer has stopped".into()))?;
        Ok(answer)
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

    /// Apply `batch` in queue order in one redb write transaction and make it durable once
    /// (nothing is written when every operation was refused). Each accepted operation takes
    /// the next revision; a refused one (failed precondition) takes none and leaves the others
    /// alone. Durable means one frame appended to the write-ahead log and `fdatasync`ed, after
    /// which the transaction is committed to redb without a sync (visible to readers, persisted
    /// by the next checkpoint). A batch that does not fit in the log's free space is committed
    /// into redb durably instead: that is the checkpoint, and the log starts over. Returns each
    /// operation's outcome and the last revision used. An `Err` means the batch is not
    /// acknowledged (the transaction was dropped, so redb rolled it back).
    fn apply_batch(
        &self,
        wal: &mut Wal,
        base: Revision,
        batch: &mut [Pending],
    ) -> Result<(Vec<Result<Applied>>, Revision)> {
        let mut txn = self.db.begin_write().map_err(be)?;
        let mut rev = base;
        let mut payload = Vec::new();
        let outcomes = {
            let mut kv = txn.open_table(KV).map_err(be)?;
            let mut history = txn.open_table(HISTORY).map_err(be)?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for p in batch.iter_mut() {
                // The table already holds the earlier operations of this batch, so each
                // precondition sees exactly the state a sequential writer would have seen.
                let existing = match kv.get(p.key.as_str()).map_err(be)? {
                    Some(g) => KeyRecord::decode(g.value()).map(Some),
                    None => Ok(None),
                };
                let applied = match existing
                    .and_then(|e| decide(&p.key, e, p.sealed.take(), p.op, rev + 1))
                {
                    Ok(a) => a,
                    Err(refused) => {
                        outcomes.push(Err(refused));
                        continue;
                    }
                };
                rev += 1;
                match applied.kind {
                    EventKind::Put => {
                        kv.insert(p.key.as_str(), applied.new.encode().as_slice())
                            .map_err(be)?;
                    }
                    EventKind::Delete => {
                        kv.remove(p.key.as_str()).map_err(be)?;
                    }
                }
                let hist = HistoryRecord {
                    kind: applied.kind,
                    key: p.key.clone(),
                    kv: applied.new,
                    prev: applied.prev,
                };
                history
                    .insert(rev as u64, hist.encode().as_slice())
                    .map_err(be)?;
                wal::push_record(&mut payload, &hist);
                outcomes.push(Ok(Applied {
                    kind: hist.kind,
                    new: hist.kv,
                    prev: hist.prev,
                }));
            }
            if rev > base {
                let mut meta = txn.open_table(META).map_err(be)?;
                meta.insert(META_REVISION, rev).map_err(be)?;
            }
            outcomes
        };
        if rev == base {
            txn.abort().map_err(be)?;
            return Ok((outcomes, rev));
        }
        let count = u32::try_from(rev - base)
            .map_err(|_| StoreError::Backend("write batch too large".into()))?;
        let frame = wal.frame(base + 1, count, &payload)?;
        if wal.fits(frame.len()) {
            wal.append(&frame)?;
            txn.set_durability(Durability::None).map_err(be)?;
            if let Err(e) = txn.commit() {
                // The frame is durable but redb did not take the batch: the revisions it used
                // cannot be handed out again, so the log takes no more writes.
                wal.fail(format!("redb commit after log append: {e}"));
                return Err(be(e));
            }
        } else {
            // Default redb durability: fsync before `commit` returns. Everything committed
            // before without a sync is durable with it, so the log can start over.
            txn.commit().map_err(be)?;
            wal::crash_point(CrashPoint::AfterCheckpoint, || {});
            wal.restart();
            self.checkpoints.fetch_add(1, Ordering::Relaxed);
            debug!(revision = rev, "checkpoint: write-ahead log restarts");
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok((outcomes, rev))
    }

    /// A durable redb commit of the current state, after which the log starts over.
    fn checkpoint(&self, st: &mut WriterState) -> Result<()> {
        let txn = self.db.begin_write().map_err(be)?;
        {
            let mut meta = txn.open_table(META).map_err(be)?;
            meta.insert(META_REVISION, st.revision).map_err(be)?;
        }
        txn.commit().map_err(be)?;
        st.wal.restart();
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Commit one batch under the writer lock, then answer its writers and fan the events out,
    /// both in revision order. No writer is answered before the commit holding its write returned.
    fn commit_batch(&self, st: &mut WriterState, mut batch: Vec<Pending>) {
        let base = st.revision;
        let (outcomes, last) = match self.apply_batch(&mut st.wal, base, &mut batch) {
            Ok(r) => r,
            Err(e) => {
                // Nothing of the batch is durable, and a refusal may have been judged against a
                // write that was rolled back: every writer of the batch gets the backend error.
                let msg = match e {
                    StoreError::Backend(m) => m,
                    other => other.to_string(),
                };
                error!(ops = batch.len(), error = %msg, "store commit failed");
                for p in batch {
                    let _ = p.reply.send(Err(StoreError::Backend(msg.clone())));
                }
                return;
            }
        };
        st.revision = last;
        self.revision.store(last, Ordering::Release);
        debug!(
            ops = batch.len(),
            revisions = last - base,
            revision = last,
            "batch committed"
        );
        for (p, outcome) in batch.into_iter().zip(outcomes) {
            let Pending {
                key,
                plaintext,
                reply,
                ..
            } = p;
            let answer = outcome.map(|applied| self.acknowledge(st, key, plaintext, applied));
            // A writer that went away (its future dropped) still had its write committed.
            let _ = reply.send(answer);
        }
    }

    /// After the commit: the acknowledged KeyValue of one write, its event fanned out to watchers.
    fn acknowledge(
        &self,
        st: &mut WriterState,
        key: String,
        plaintext: Option<Vec<u8>>,
        applied: Applied,
    ) -> KeyValue {
        let Applied { kind, new, prev } = applied;
        // Build the acknowledged KeyValue (and the event) from plaintext we already hold; the
        // previous value is only unsealed if a delete must return it or a watcher wants it.
        let wants_event = st.watchers.any(|w| key.starts_with(&w.prefix));
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
                st.watchers.retain_all(|w| !kv.key.starts_with(&w.prefix));
            } else {
                let ev = Arc::new(Event {
                    kind,
                    kv: kv.clone(),
                    prev: prev_kv,
                });
                fan_out(st, &ev);
            }
        } else if kv.mod_revision % PRUNE_EVERY == 0 {
            // Watchers that went away are dropped when an event is offered to them; a routed
            // one may see no event for long, so every so often all of them are checked.
            st.watchers.retain_all(|w| !w.tx.is_closed());
        }
        debug!(key = %kv.key, revision = kv.mod_revision, ?kind, "write committed");
        kv
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

/// Apply the log's frames above `durable` (redb's revision) to redb in one durable commit, each
/// record as the writer applied it: the previous state comes from the live table. Returns the
/// store's revision afterwards.
fn replay(
    db: &Database,
    file: &Path,
    frames: Vec<wal::Frame>,
    durable: Revision,
) -> Result<Revision> {
    let corrupt = |offset: u64, reason: &'static str| StoreError::WalCorrupt {
        path: wal::wal_path(file),
        offset,
        reason,
    };
    if !frames
        .iter()
        .any(|f| f.first + f.records.len() as Revision > durable + 1)
    {
        return Ok(durable);
    }
    let txn = db.begin_write().map_err(be)?;
    let mut rev = durable;
    {
        let mut kv = txn.open_table(KV).map_err(be)?;
        let mut history = txn.open_table(HISTORY).map_err(be)?;
        for frame in frames {
            for rec in frame.records {
                let r = rec.kv.mod_revision;
                if r <= durable {
                    continue;
                }
                if r != rev + 1 {
                    return Err(corrupt(frame.offset, "gap in logged revisions"));
                }
                let prev = match kv.get(rec.key.as_str()).map_err(be)? {
                    Some(g) => Some(KeyRecord::decode(g.value())?),
                    None => None,
                };
                match rec.kind {
                    EventKind::Put => {
                        kv.insert(rec.key.as_str(), rec.kv.encode().as_slice())
                            .map_err(be)?;
                    }
                    EventKind::Delete => {
                        if prev.is_none() {
                            return Err(corrupt(frame.offset, "logged delete of a missing key"));
                        }
                        kv.remove(rec.key.as_str()).map_err(be)?;
                    }
                }
                let hist = HistoryRecord {
                    kind: rec.kind,
                    key: rec.key,
                    kv: rec.kv,
                    prev,
                };
                history
                    .insert(r as u64, hist.encode().as_slice())
                    .map_err(be)?;
                rev = r;
            }
        }
        let mut meta = txn.open_table(META).map_err(be)?;
        meta.insert(META_REVISION, rev).map_err(be)?;
    }
    txn.commit().map_err(be)?;
    info!(path = %file.display(), from = durable + 1, to = rev, "write-ahead log replayed");
    Ok(rev)
}

/// The committer thread: one batch per durable commit, until every handle is dropped.
fn run_committer(shared: &Shared, queue: &std::sync::mpsc::Receiver<Pending>) {
    while let Ok(first) = queue.recv() {
        let mut st = shared.lock();
        // Everything queued while the previous commit ran (or while waiting for the lock) joins
        // this batch; an empty queue ends it at once.
        let mut bytes = first.size();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES {
            match queue.try_recv() {
                Ok(p) => {
                    bytes += p.size();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let ops = batch.len();
        let _span = debug_span!("store_commit", ops).entered();
        // A panic fails this batch's writers (their reply senders drop) but not the store: the
        // revision only moves after a successful commit.
        let commit = std::panic::AssertUnwindSafe(|| shared.commit_batch(&mut st, batch));
        if std::panic::catch_unwind(commit).is_err() {
            error!(ops, "store commit panicked; its writers get an error");
        }
    }
    // Clean close: one durable redb commit, so the redb file alone holds every write and the
    // next open has nothing to replay.
    let mut st = shared.lock();
    if !st.wal.is_failed() {
        if let Err(e) = shared.checkpoint(&mut st) {
            warn!(path = %shared.path.display(), error = %e, "checkpoint at close failed; the next open replays the log");
        }
    }
    debug!(path = %shared.path.display(), "store committer stopped");
}

/// The precondition of one write against the key's current record: the key's new record at
/// `rev`, or the refusal a lone write gets (AlreadyExists, NotFound, Conflict).
fn decide(
    key: &str,
    existing: Option<KeyRecord>,
    sealed: Option<Vec<u8>>,
    op: WriteOp,
    rev: Revision,
) -> Result<Applied> {
    match op {
        WriteOp::Create => {
            if existing.is_some() {
                return Err(StoreError::AlreadyExists(key.to_string()));
            }
            let sealed =
                sealed.ok_or_else(|| StoreError::Backend("create without value".into()))?;
            Ok(Applied {
                kind: EventKind::Put,
                new: KeyRecord {
                    create_revision: rev,
                    mod_revision: rev,
                    version: 1,
                    sealed,
                },
                prev: None,
            })
        }
        WriteOp::Update { expected } => {
            let cur = existing.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            if cur.mod_revision != expected {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    expected,
                    actual: cur.mod_revision,
                });
            }
            let sealed =
                sealed.ok_or_else(|| StoreError::Backend("update without value".into()))?;
            Ok(Applied {
                kind: EventKind::Put,
                new: KeyRecord {
                    create_revision: cur.create_revision,
                    mod_revision: rev,
                    version: cur.version + 1,
                    sealed,
                },
                prev: Some(cur),
            })
        }
        WriteOp::Delete { expected } => {
            let cur = existing.ok_or_else(|| StoreError::NotFound(key.to_string()))?;
            if let Some(expected) = expected {
                if cur.mod_revision != expected {
                    return Err(StoreError::Conflict {
                        key: key.to_string(),
                        expected,
                        actual: cur.mod_revision,
                    });
                }
            }
            // The history keeps the last value only once (in `prev`).
            Ok(Applied {
                kind: EventKind::Delete,
                new: KeyRecord {
                    create_revision: cur.create_revision,
                    mod_revision: rev,
                    version: cur.version,
                    sealed: Vec::new(),
                },
                prev: Some(cur),
            })
        }
    }
}

fn fan_out(st: &mut WriterState, ev: &Arc<Event>) {
    let prev = ev.prev.as_ref().map(|p| p.value.as_slice());
    st.watchers.deliver(&ev.kv.value, prev, |w| {
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
    mut live: mpsc::Receiver<Arc<Event>>,
    out: mpsc::Sender<Arc<Event>>,
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
                if out.send(Arc::new(ev)).await.is_err() {
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
        self.watch_routed(prefix, after, None).await
    }

    async fn watch_routed(
        &self,
        prefix: &str,
        after: Revision,
        route: Option<WatchRoute>,
    ) -> Result<WatchReceiver> {
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
                st.watchers.push(route, Watcher { id, prefix: p, tx });
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
            // A durable redb commit holds everything logged so far.
            st.wal.restart();
            s.checkpoints.fetch_add(1, Ordering::Relaxed);
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
            // Durable, and above every logged revision: the log starts over.
            st.wal.restart();
            s.checkpoints.fetch_add(1, Ordering::Relaxed);
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
        // The write-ahead log holds every one of those writes, and neither values nor keys.
        let wal = std::fs::read(wal::wal_path(&dir.path().join(DEFAULT_FILE_NAME))).expect("log");
        assert!(wal.windows(4).filter(|w| w == b"DWAL").count() >= 4);
        for needle in [needle, b"/secret/", b"PLAINTEXT"] {
            assert!(
                !wal.windows(needle.len()).any(|w| w == needle),
                "{} readable in the write-ahead log",
                String::from_utf8_lossy(needle)
            );
        }
    }

    /// A log a few batches long: writes, updates, deletes, compaction and a restore all cross
    /// checkpoints, and a reopen sees exactly what was acknowledged, history included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_log_checkpoints_and_reopens_with_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SealingKey::generate();
        let small = EmbeddedOptions {
            wal_bytes: 4096,
            ..Default::default()
        };
        let (revision, listed) = {
            let store = EmbeddedStore::open_with(dir.path(), key.clone(), small).expect("open");
            let mut tasks = Vec::new();
            for w in 0..8 {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..40 {
                        let k = format!("/w/{w}/{i}");
                        let kv = s.create(&k, &[b'v'; 100]).await.expect("create");
                        if i % 3 == 0 {
                            s.update(&k, b"updated", kv.mod_revision)
                                .await
                                .expect("update");
                        } else if i % 3 == 1 {
                            s.delete(&k, None).await.expect("delete");
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.expect("writer");
            }
            assert!(
                store.checkpoint_count() >= 3,
                "checkpoints: {}",
                store.checkpoint_count()
            );
            store.compact(100).await.expect("compact");
            store.create("/after/compact", b"x").await.expect("create");
            let rev = store.current_revision().await.expect("rev");
            (rev, store.list("").await.expect("list"))
        };
        let store = EmbeddedStore::open_with(dir.path(), key.clone(), small).expect("reopen");
        assert_eq!(store.current_revision().await.expect("rev"), revision);
        assert_eq!(store.compacted_revision().await.expect("compacted"), 100);
        assert_eq!(store.list("").await.expect("list"), listed);
        let mut w = store.watch("", 100).await.expect("watch");
        for rev in 101..=revision {
            let ev = w.recv().await.expect("event");
            assert_eq!(ev.kv.mod_revision, rev, "history has a gap");
        }
        // Restore into a fresh store with a small log, write on, reopen.
        let dir2 = tempfile::tempdir().expect("tempdir");
        {
            let dst = EmbeddedStore::open_with(dir2.path(), key.clone(), small).expect("open");
            dst.restore(listed.items.clone(), revision, 0)
                .await
                .expect("restore");
            for i in 0..30 {
                dst.create(&format!("/post/{i}"), &[b'p'; 200])
                    .await
                    .expect("create");
            }
        }
        let dst = EmbeddedStore::open_with(dir2.path(), key, small).expect("reopen restored");
        assert_eq!(dst.current_revision().await.expect("rev"), revision + 30);
        assert_eq!(
            dst.list("/w/").await.expect("list").items.len(),
            listed.items.len() - 1
        );
        assert_eq!(dst.list("/post/").await.expect("list").items.len(), 30);
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

    fn on_node(node: &str) -> Vec<u8> {
        format!(r#"{{"metadata":{{"name":"p"}},"spec":{{"nodeName":"{node}"}}}}"#).into_bytes()
    }

    async fn next(rx: &mut WatchReceiver) -> Arc<Event> {
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("event in time")
            .expect("watch open")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_routed_watch_is_offered_only_the_events_naming_its_node() {
        let (_dir, store, _) = open_tmp();
        let start = store.current_revision().await.expect("rev");
        let route = |n: &str| WatchRoute::new("nodeName", n);
        let mut n1 = store
            .watch_routed("/pods/", start, route("n1"))
            .await
            .expect("watch");
        // Many other nodes' watches, and one unrouted watch of every pod.
        let mut others = Vec::new();
        for i in 2..200 {
            others.push(
                store
                    .watch_routed("/pods/", start, route(&format!("n{i}")))
                    .await
                    .expect("watch"),
            );
        }
        let mut all = store.watch("/pods/", start).await.expect("watch");
        assert_eq!(store.routed_watcher_count(), 199);
        let a = store.create("/pods/a", &on_node("n2")).await.expect("a");
        store.create("/pods/b", &on_node("n1")).await.expect("b");
        // A pod with n1 only as a label value (no nodeName member) and on node n10: not
        // offered to n1.
        store
            .create(
                "/pods/c",
                br#"{"metadata":{"labels":{"x":"n1"}},"spec":{"nodeName":"n10"}}"#,
            )
            .await
            .expect("c");
        // a moves from n2 to n1 (its previous state names n2, its new one n1); b is deleted.
        store
            .update("/pods/a", &on_node("n1"), a.mod_revision)
            .await
            .expect("move");
        store.delete("/pods/b", None).await.expect("delete");
        let got: Vec<(String, EventKind)> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                let ev = next(&mut n1).await;
                v.push((ev.kv.key.clone(), ev.kind));
            }
            v
        };
        assert_eq!(
            got,
            vec![
                ("/pods/b".to_string(), EventKind::Put),
                ("/pods/a".to_string(), EventKind::Put),
                ("/pods/b".to_string(), EventKind::Delete),
            ]
        );
        assert!(n1.try_recv().is_err(), "n1 was offered another node's pod");
        for _ in 0..5 {
            next(&mut all).await;
        }
        // n2 saw a's creation and its move away; n10 saw c; the rest nothing.
        assert_eq!(next(&mut others[0]).await.kv.key, "/pods/a");
        assert_eq!(next(&mut others[0]).await.kind, EventKind::Put);
        assert!(others[0].try_recv().is_err());
        assert_eq!(next(&mut others[8]).await.kv.key, "/pods/c");
        for (i, rx) in others.iter_mut().enumerate() {
            if i != 0 && i != 8 {
                assert!(rx.try_recv().is_err(), "node n{} got an event", i + 2);
            }
        }
        // One event, one allocation: every watcher holds the same one.
        let x = store.create("/pods/d", &on_node("n1")).await.expect("d");
        let (e1, e2) = (next(&mut n1).await, next(&mut all).await);
        assert_eq!(e1.kv, x);
        assert!(Arc::ptr_eq(&e1, &e2), "the event was copied per watcher");
        // Gone watchers are pruned (once their forwarders noticed).
        drop(others);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.routed_watcher_count() != 1 {
            assert!(std::time::Instant::now() < deadline, "gone watchers kept");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_slow_routed_watcher_is_dropped_and_can_watch_again_from_where_it_was() {
        let (_dir, store, _) = open_tmp();
        let route = WatchRoute::new("nodeName", "n1");
        let mut slow = store
            .watch_routed("/s/", 0, route.clone())
            .await
            .expect("watch");
        let total = 2 * WATCH_CHANNEL_CAPACITY + 50;
        let v = on_node("n1");
        let w = tokio::time::timeout(std::time::Duration::from_secs(120), async {
            for i in 0..total {
                store
                    .create(&format!("/s/{i:06}"), &v)
                    .await
                    .expect("create");
            }
        })
        .await;
        assert!(w.is_ok(), "writers blocked by a slow routed watcher");
        let mut last = 0;
        while let Some(ev) = slow.recv().await {
            assert_eq!(ev.kv.mod_revision, last + 1, "contiguous before the drop");
            last = ev.kv.mod_revision;
        }
        assert!((last as usize) < total, "not dropped: got all {last}");
        assert_eq!(store.routed_watcher_count(), 0);
        // Watching again from the last revision it saw gives the rest, in order.
        let mut again = store
            .watch_routed("/s/", last, route)
            .await
            .expect("rewatch");
        for rev in last + 1..=total as i64 {
            assert_eq!(next(&mut again).await.kv.mod_revision, rev);
        }
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

    /// Queue one write directly (as `write` does) and hand back its answer.
    fn queue(
        store: &EmbeddedStore,
        key: &str,
        value: Option<&[u8]>,
        op: WriteOp,
    ) -> oneshot::Receiver<Result<KeyValue>> {
        let sealed = value.map(|v| store.shared.key.seal(key.as_bytes(), v).expect("seal"));
        store
            .enqueue(key.to_string(), sealed, value.map(<[u8]>::to_vec), op)
            .expect("enqueue")
    }

    /// A scripted mix of writes on two keys: accepted ones and every kind of refusal, some of
    /// them refused only because of an earlier write in the same script.
    fn script() -> Vec<(&'static str, Option<&'static [u8]>, WriteOp)> {
        use WriteOp::{Create, Delete, Update};
        vec![
            ("/g/a", Some(b"a1"), Create),                    // rev 1
            ("/g/a", Some(b"again"), Create),                 // AlreadyExists
            ("/g/a", Some(b"a2"), Update { expected: 1 }),    // rev 2
            ("/g/a", Some(b"stale"), Update { expected: 1 }), // Conflict (actual 2)
            ("/g/b", None, Delete { expected: None }),        // NotFound
            ("/g/b", Some(b"b?"), Update { expected: 0 }),    // NotFound
            ("/g/b", Some(b"b1"), Create),                    // rev 3
            ("/g/b", None, Delete { expected: Some(2) }),     // Conflict (actual 3)
            ("/g/a", None, Delete { expected: Some(2) }),     // rev 4
            ("/g/a", Some(b"a3"), Create),                    // rev 5, version 1 again
            ("/g/a", Some(b"a4"), Update { expected: 2 }),    // Conflict (actual 5)
            ("/g/b", None, Delete { expected: None }),        // rev 6
            ("/g/b", Some(b"b2"), Create),                    // rev 7
            ("/g/a", Some(b"a5"), Update { expected: 5 }),    // rev 8
            ("/g/b", Some(b"b3"), Update { expected: 7 }),    // rev 9
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_share_one_commit_and_behave_as_sequential() {
        // The same script, one write at a time on one store ...
        let (_d1, seq, _) = open_tmp();
        let mut expected = Vec::new();
        for (key, value, op) in script() {
            expected.push(format!(
                "{:?}",
                queue(&seq, key, value, op).await.expect("answer")
            ));
        }
        assert_eq!(
            seq.commit_count(),
            9,
            "one commit per accepted sequential write"
        );

        // ... and all queued together on another: the committer cannot start the batch while
        // the writer lock is held, so it takes the whole queue into one transaction.
        let (_d2, grouped, _) = open_tmp();
        let mut watch = grouped.watch("/g/", 0).await.expect("watch");
        let answers: Vec<_> = {
            let _writer_lock = grouped.shared.lock();
            script()
                .into_iter()
                .map(|(key, value, op)| queue(&grouped, key, value, op))
                .collect()
        };
        let mut got = Vec::new();
        let mut accepted = Vec::new();
        for answer in answers {
            let res = answer.await.expect("answer");
            got.push(format!("{res:?}"));
            if let Ok(kv) = res {
                accepted.push(kv);
            }
        }
        assert_eq!(
            got, expected,
            "grouped outcomes differ from sequential ones"
        );
        assert_eq!(
            grouped.commit_count(),
            1,
            "the queued writes share one commit"
        );
        assert_eq!(grouped.current_revision().await.expect("rev"), 9);
        // Every refusal kind is in the script, with the same error as a lone write.
        let refused: Vec<_> = got.iter().filter(|g| g.starts_with("Err")).collect();
        assert_eq!(refused.len(), 6, "{refused:?}");
        assert!(got[1].contains("AlreadyExists(\"/g/a\")"), "{}", got[1]);
        assert!(got[3].contains("expected: 1, actual: 2"), "{}", got[3]);
        assert!(got[4].contains("NotFound(\"/g/b\")"), "{}", got[4]);
        assert!(got[7].contains("expected: 2, actual: 3"), "{}", got[7]);
        assert!(got[10].contains("expected: 2, actual: 5"), "{}", got[10]);
        // Revisions unique and dense, events in revision order, each the acknowledged write.
        let revs: Vec<_> = accepted.iter().map(|kv| kv.mod_revision).collect();
        assert_eq!(revs, (1..=9).collect::<Vec<_>>());
        for kv in &accepted {
            let ev = watch.recv().await.expect("event");
            assert_eq!(&ev.kv, kv);
        }
        // Both stores hold the same state and history.
        assert_eq!(
            grouped.list_at("/g/", 5).await.expect("list"),
            seq.list_at("/g/", 5).await.expect("list")
        );
        assert_eq!(
            grouped.list("/g/").await.expect("list"),
            seq.list("/g/").await.expect("list")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batch_of_refusals_commits_nothing() {
        let (_dir, store, _) = open_tmp();
        store.create("/r/a", b"1").await.expect("create");
        assert_eq!(store.commit_count(), 1);
        let answers: Vec<_> = {
            let _writer_lock = store.shared.lock();
            vec![
                queue(&store, "/r/a", Some(b"x"), WriteOp::Create),
                queue(&store, "/r/a", Some(b"x"), WriteOp::Update { expected: 7 }),
                queue(&store, "/r/b", None, WriteOp::Delete { expected: None }),
            ]
        };
        for answer in answers {
            assert!(answer.await.expect("answer").is_err());
        }
        assert_eq!(store.commit_count(), 1, "refused writes must not commit");
        assert_eq!(store.current_revision().await.expect("rev"), 1);
        let kv = store.create("/r/b", b"2").await.expect("create");
        assert_eq!(kv.mod_revision, 2);
    }

    /// What one writer did and what it got back.
    struct Done {
        op: WriteOp,
        key: String,
        value: Vec<u8>,
        res: Result<KeyValue>,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_on_overlapping_keys() {
        const WRITERS: usize = 16;
        const OPS: usize = 40;
        const KEYS: u64 = 5;
        let (_dir, store, _) = open_tmp();
        let mut watch = store.watch("/o/", 0).await.expect("watch");

        // Each writer's first write is queued while another thread holds the writer lock, so
        // those 16 writes are certain to share a commit; the rest race freely.
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let locker = {
            let store = store.clone();
            std::thread::spawn(move || {
                let _writer_lock = store.shared.lock();
                locked_tx.send(()).expect("locked");
                let _ = release_rx.recv();
            })
        };
        locked_rx.recv().expect("lock taken");
        let first_queued = Arc::new(tokio::sync::Barrier::new(WRITERS + 1));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let s = store.clone();
                let first_queued = first_queued.clone();
                tokio::spawn(async move {
                    let mut done = Vec::new();
                    let value = format!("w{w}-first").into_bytes();
                    let key = format!("/o/own-{w:02}");
                    let answer = queue(&s, &key, Some(&value), WriteOp::Create);
                    first_queued.wait().await;
                    let res = answer.await.expect("answer");
                    done.push(Done {
                        op: WriteOp::Create,
                        key,
                        value,
                        res,
                    });
                    // A small LCG per writer: reproducible ops on a few shared keys.
                    let mut x = w as u64 * 7919 + 1;
                    for i in 0..OPS {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let key = format!("/o/k{}", (x >> 33) % KEYS);
                        let value = format!("w{w}-{i}").into_bytes();
                        let cur = s.get(&key).await.expect("get");
                        let op = match (cur, (x >> 40) % 4) {
                            (None, _) => WriteOp::Create,
                            (Some(c), 0) => WriteOp::Delete {
                                expected: Some(c.mod_revision),
                            },
                            (Some(_), 1) => WriteOp::Delete { expected: None },
                            // A stale expectation: must be a Conflict.
                            (Some(c), 2) => WriteOp::Update {
                                expected: c.mod_revision - 1,
                            },
                            (Some(c), _) => WriteOp::Update {
                                expected: c.mod_revision,
                            },
                        };
                        let res = match op {
                            WriteOp::Create => s.create(&key, &value).await,
                            WriteOp::Update { expected } => s.update(&key, &value, expected).await,
                            WriteOp::Delete { expected } => s.delete(&key, expected).await,
                        };
                        done.push(Done {
                            op,
                            key,
                            value,
                            res,
                        });
                    }
                    done
                })
            })
            .collect();
        first_queued.wait().await;
        release_tx.send(()).expect("release");
        locker.join().expect("locker");
        let mut all = Vec::new();
        for w in writers {
            all.extend(w.await.expect("writer"));
        }

        let end = store.current_revision().await.expect("rev");
        let mut by_rev = std::collections::BTreeMap::new();
        for d in &all {
            if let Ok(kv) = &d.res {
                assert_eq!(kv.key, d.key);
                assert!(
                    by_rev.insert(kv.mod_revision, d).is_none(),
                    "revision {} twice",
                    kv.mod_revision
                );
            }
        }
        // Unique and dense: every revision 1..=end belongs to exactly one acknowledged write.
        assert_eq!(
            by_rev.keys().copied().collect::<Vec<_>>(),
            (1..=end).collect::<Vec<_>>()
        );
        let commits = store.commit_count();
        assert!(
            commits <= end as u64 - (WRITERS as u64 - 1),
            "the first writes of the {WRITERS} writers share a commit: {commits} commits for {end} writes"
        );

        // Replay the events (in revision order) against a model: each accepted write's
        // precondition held against the state left by every write before it.
        let mut model: std::collections::BTreeMap<String, KeyValue> = Default::default();
        for rev in 1..=end {
            let ev = watch.recv().await.expect("event");
            assert_eq!(ev.kv.mod_revision, rev, "events in revision order");
            let d = by_rev[&rev];
            let before = model.get(&d.key).cloned();
            assert_eq!(ev.prev, before, "previous state of revision {rev}");
            match d.op {
                WriteOp::Create => {
                    assert!(before.is_none(), "create of a live key at {rev}");
                    assert_eq!(ev.kind, EventKind::Put);
                    assert_eq!((ev.kv.create_revision, ev.kv.version), (rev, 1));
                }
                WriteOp::Update { expected } => {
                    let b = before.expect("update of a live key");
                    assert_eq!(b.mod_revision, expected, "update precondition at {rev}");
                    assert_eq!(ev.kind, EventKind::Put);
                    assert_eq!(
                        (ev.kv.create_revision, ev.kv.version),
                        (b.create_revision, b.version + 1)
                    );
                }
                WriteOp::Delete { expected } => {
                    let b = before.expect("delete of a live key");
                    if let Some(e) = expected {
                        assert_eq!(b.mod_revision, e, "delete precondition at {rev}");
                    }
                    assert_eq!(ev.kind, EventKind::Delete);
                    assert_eq!(ev.kv.value, b.value);
                }
            }
            assert_eq!(
                Some(&ev.kv),
                d.res.as_ref().ok(),
                "event {rev} is the acknowledged write"
            );
            match ev.kind {
                EventKind::Put => {
                    assert_eq!(ev.kv.value, d.value);
                    model.insert(d.key.clone(), ev.kv.clone());
                }
                EventKind::Delete => {
                    model.remove(&d.key);
                }
            }
        }
        // Refusals are the ones a sequential store gives: a stale update conflicts with a real
        // revision of the key; nothing else fails.
        let mut refused = 0;
        for d in all.iter().filter(|d| d.res.is_err()) {
            refused += 1;
            match (&d.res, d.op) {
                (
                    Err(StoreError::Conflict {
                        key,
                        expected,
                        actual,
                    }),
                    _,
                ) => {
                    assert_eq!(key, &d.key);
                    assert_ne!(expected, actual);
                    let real = by_rev.get(actual).map(|w| w.key.as_str());
                    assert_eq!(
                        real,
                        Some(key.as_str()),
                        "conflict names revision {actual}, not one of {key}"
                    );
                }
                (Err(StoreError::AlreadyExists(k) | StoreError::NotFound(k)), _) => {
                    assert_eq!(k, &d.key)
                }
                (other, op) => panic!("unexpected outcome of {op:?}: {other:?}"),
            }
        }
        assert!(refused > 0, "the stale updates must have been refused");
        // The final state is the model's.
        let listed = store.list("/o/").await.expect("list");
        assert_eq!(listed.items, model.into_values().collect::<Vec<_>>());
    }

    /// Measurement, not a check (run by hand): the process's RSS after a cluster-sized write
    /// load, under the cache size in `STORE_CACHE_MB` (default: the store's default).
    /// `STORE_CACHE_MB=1024 cargo test -p daas-store --lib rss_after_a_cluster_sized_load -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn rss_after_a_cluster_sized_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = std::env::var("STORE_CACHE_MB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map(|mb| mb << 20)
            .unwrap_or(DEFAULT_CACHE_BYTES);
        let opts = EmbeddedOptions {
            cache_bytes: cache,
            ..Default::default()
        };
        let store = Arc::new(
            EmbeddedStore::open_with(dir.path(), SealingKey::generate(), opts).expect("open"),
        );
        let rss = || {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                })
                .unwrap_or(0)
                / 1024
        };
        let before = rss();
        let value = vec![b'x'; 3000];
        let mut tasks = Vec::new();
        for w in 0..16 {
            let (store, value) = (store.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..625 {
                    let k = format!("/registry/pods/ns/p-{w}-{i}");
                    let mut kv = store.create(&k, &value).await.expect("create");
                    for _ in 0..3 {
                        kv = store
                            .update(&k, &value, kv.mod_revision)
                            .await
                            .expect("update");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
        for _ in 0..3 {
            assert_eq!(
                store
                    .list("/registry/pods/")
                    .await
                    .expect("list")
                    .items
                    .len(),
                10_000
            );
        }
        let size = std::fs::metadata(dir.path().join(DEFAULT_FILE_NAME))
            .map(|m| m.len() >> 20)
            .unwrap_or(0);
        println!(
            "cache {} MiB: RSS {before} MB -> {} MB after 10,000 keys x 4 writes of 3 KB (file {size} MiB)",
            cache >> 20,
            rss()
        );
    }
}
