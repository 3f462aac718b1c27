//! MVCC key-value store used by the K3s-DaaS API server.
//!
//! Semantics follow etcd v3: one global revision counter incremented by every write, per key
//! `create_revision`/`mod_revision`/`version`, watch from a revision, compaction of history.
//! Every stored value is sealed with AES-256-GCM under a key handed in by the caller (the TEE
//! layer supplies it), so nothing readable ever reaches the disk.
//!
//! Backends: [`EmbeddedStore`] (redb, single node, always built) and `EtcdStore` (feature `etcd`).
//! Sealing lives in [`seal`] ([`SealingKey`]).

use async_trait::async_trait;

mod codec;
pub mod embedded;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod fanout;
pub mod route;
pub mod seal;
pub mod wal;

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(feature = "etcd")]
pub mod etcd_server;

pub use embedded::{EmbeddedOptions, EmbeddedStore, WATCH_CHANNEL_CAPACITY};
#[cfg(feature = "etcd")]
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls};
pub use fanout::FanoutStore;
pub use route::WatchRoute;
pub use seal::SealingKey;

pub type Revision = i64;

/// One key at one revision (value is plaintext: sealing is internal to the backend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change delivered to watchers. For `Delete`, `kv.value` is the last value the key held and
/// `kv.mod_revision` is the revision of the deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The previous state of the key for updates and deletes (None for creates).
    pub prev: Option<KeyValue>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// Store revision the list was read at.
    pub revision: Revision,
}

/// One page of a bounded read ([`Store::list_range`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResult {
    /// At most `limit` keys, sorted, the first at or after `start`.
    pub items: Vec<KeyValue>,
    /// Store revision the page was read at.
    pub revision: Revision,
    /// Keys under the prefix after the last returned one (0: the page ends the range).
    pub remaining: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    #[error("conflict on key {key}: expected mod revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    #[error("revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is in the future (current revision {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("value for key {0} failed authentication: wrong sealing key or corrupted data")]
    Unseal(String),
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A restore needs an empty target (`what` names the first thing found).
    #[error("restore target is not empty: {0}")]
    RestoreNotEmpty(String),
    /// A restore cannot give `key` its mod revision: the target is already at `current`.
    #[error(
        "cannot restore {key} at revision {wanted}: the store is already at revision {current}"
    )]
    RestoreRevision {
        key: String,
        wanted: Revision,
        current: Revision,
    },
    /// The embedded store's write-ahead log is damaged in a way that would lose acknowledged
    /// writes if ignored (a torn last frame is not this: it is discarded at open).
    #[error("write-ahead log {path} is corrupt at offset {offset}: {reason}")]
    WalCorrupt {
        path: std::path::PathBuf,
        offset: u64,
        reason: &'static str,
    },
    /// The items handed to a restore are not a snapshot (duplicate key, revision 0, or a mod
    /// revision above the snapshot's).
    #[error("invalid restore input: {0}")]
    RestoreInput(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Receiving end of a watch. Events arrive in revision order. The stream ends (recv returns None)
/// when the store shuts down or when the watcher fell too far behind; the consumer then re-lists.
/// One event is shared by every watcher it is delivered to (one allocation however many
/// watchers queue it).
pub type WatchReceiver = tokio::sync::mpsc::Receiver<std::sync::Arc<Event>>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Current global revision (0 for an empty, never-written store).
    async fn current_revision(&self) -> Result<Revision>;
    /// Highest revision that has been compacted away (0 if never compacted).
    async fn compacted_revision(&self) -> Result<Revision>;
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// All live keys starting with `prefix`, sorted by key, at the current revision.
    async fn list(&self, prefix: &str) -> Result<ListResult>;
    /// All keys starting with `prefix` that were live at `revision`, as they were then, sorted
    /// by key; `ListResult::revision` is `revision`. Compacted if `revision` is older than the
    /// compacted revision, FutureRevision if it is beyond the current one.
    async fn list_at(&self, prefix: &str, revision: Revision) -> Result<ListResult>;
    /// A page of a list: the keys under `prefix` that are `>= start`, at most `limit` of them
    /// (`limit` 0 is read as 1), as they were at `revision` (`None`: the current revision), with
    /// the number of keys left after the page. Errors as [`Store::list_at`]. Only the returned
    /// keys are unsealed, so walking a large prefix page by page costs one pass over it.
    async fn list_range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult>;
    /// Create `key`; fails with AlreadyExists if it is live.
    async fn create(&self, key: &str, value: &[u8]) -> Result<KeyValue>;
    /// Replace `key` only if its mod revision equals `expected_mod_revision`.
    /// NotFound if the key is absent, Conflict on mismatch.
    async fn update(
        &self,
        key: &str,
        value: &[u8],
        expected_mod_revision: Revision,
    ) -> Result<KeyValue>;
    /// Delete `key` (only if its mod revision matches when `expected_mod_revision` is Some).
    /// Returns the deleted key with `mod_revision` set to the deletion revision.
    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue>;
    /// Stream every event on keys starting with `prefix` whose revision is greater than `after`.
    /// Compacted if `after` is older than the compacted revision; FutureRevision if beyond current.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchReceiver>;
    /// [`Store::watch`] with a routing hint (see [`route`]): a store may offer the watcher only
    /// the events whose value or previous value holds the route's JSON member, found through
    /// an index instead of by offering every event to every watcher. The consumer still
    /// filters: a store may ignore the route (this default does).
    async fn watch_routed(
        &self,
        prefix: &str,
        after: Revision,
        route: Option<WatchRoute>,
    ) -> Result<WatchReceiver> {
        let _ = route;
        self.watch(prefix, after).await
    }
    /// Discard history at and below `revision` (live keys are kept).
    async fn compact(&self, revision: Revision) -> Result<()>;
    /// Load a snapshot (`items` as read by `list_at("", revision)`) into an EMPTY store, each
    /// key keeping its `mod_revision` (the Kubernetes resourceVersion); afterwards the store's
    /// revision is at least `max(revision, floor)` and history before it is compacted away.
    /// RestoreNotEmpty if a key exists; RestoreRevision if the store's revision is already at
    /// or beyond an item's mod revision; RestoreInput for a malformed snapshot.
    /// (The etcd backend cannot choose `create_revision`/`version`: there they equal the mod
    /// revision and 1.)
    async fn restore(
        &self,
        items: Vec<KeyValue>,
        revision: Revision,
        floor: Revision,
    ) -> Result<()>;
}

/// Checks shared by the backends: keys unique, every mod revision in `1..=revision`. Returns the
/// items sorted by mod revision and the target revision `max(revision, floor)`.
pub(crate) fn restore_plan(
    mut items: Vec<KeyValue>,
    revision: Revision,
    floor: Revision,
) -> Result<(Vec<KeyValue>, Revision)> {
    let mut seen = std::collections::HashSet::new();
    for kv in &items {
        if !seen.insert(kv.key.as_str()) {
            return Err(StoreError::RestoreInput(format!(
                "duplicate key {}",
                kv.key
            )));
        }
        if kv.create_revision < 1 || kv.create_revision > kv.mod_revision || kv.version < 1 {
            return Err(StoreError::RestoreInput(format!(
                "key {} has create revision {} / version {} inconsistent with mod revision {}",
                kv.key, kv.create_revision, kv.version, kv.mod_revision
            )));
        }
        if kv.mod_revision < 1 || kv.mod_revision > revision {
            return Err(StoreError::RestoreInput(format!(
                "key {} has mod revision {} outside 1..={revision}",
                kv.key, kv.mod_revision
            )));
        }
    }
    items.sort_by_key(|kv| kv.mod_revision);
    Ok((items, revision.max(floor)))
}
