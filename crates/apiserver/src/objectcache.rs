//! The encoded JSON of recently read objects, so a GET of an unchanged object does no store read,
//! unseal, JSON parse, conversion or JSON encode (upstream serves such reads from its watch
//! cache).
//!
//! Consistency: one store watch over every key (from the revision the cache started at) drops an
//! entry when its key changes and advances the cache's *watermark* (every event up to it is
//! applied). A read first asks the store for its current revision `C` (an atomic load on the
//! embedded store): the cached entry is served only if the watermark has reached `C`, so every
//! write acknowledged before the request arrived has been applied (the read stays linearizable,
//! through any master). Otherwise the object is read from the store as before. An entry filled
//! by a read that started at `C0` is kept only if the watermark is still `<= C0`: every later
//! write is then still to be applied and drops it; a write the read raced with is never cached.
//!
//! Authorization runs before the cache is consulted (the caller's job), so a cached object is
//! served only to someone who may read it. The cache lives in the master's (enclave) memory only;
//! nothing is written to disk. Memory is bounded by `max_bytes` (oldest entries go first). Custom
//! resources are not cached (their served form follows their CRD, see `handlers::get`); a CRD
//! change empties it (a custom resource's served form follows its CRD). A failed watch empties it
//! and it serves nothing until a new watch runs.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use daas_store::{Revision, Store};

/// The default bound of [`ObjectCache`] (`ServerOptions::object_cache_bytes`).
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Bookkeeping counted per entry besides its key and bodies.
const ENTRY_OVERHEAD: usize = 96;

/// See the module documentation.
pub struct ObjectCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Dropping the cache ends its watch task.
    _cancel: tokio::sync::oneshot::Sender<()>,
}

#[derive(Default)]
struct Inner {
    /// A watch is running and every event up to `watermark` is applied.
    live: bool,
    watermark: Revision,
    entries: HashMap<String, Entry>,
    /// Insertion order for eviction: (key, the entry's seq when it was pushed).
    order: VecDeque<(String, u64)>,
    bytes: usize,
    seq: u64,
}

struct Entry {
    mod_revision: Revision,
    seq: u64,
    /// One body per served (group, version) of the key (events.k8s.io and core Events share keys).
    views: Vec<((&'static str, &'static str), Bytes)>,
    bytes: usize,
}

/// Counters for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub bytes: usize,
    pub watermark: Revision,
}

impl ObjectCache {
    /// A cache of at most `max_bytes`, with its watch task on `store` (needs a tokio runtime).
    pub fn spawn(store: Arc<dyn Store>, max_bytes: usize) -> Arc<Self> {
        let (cancel, cancelled) = tokio::sync::oneshot::channel();
        let cache = Arc::new(ObjectCache {
            inner: Mutex::new(Inner::default()),
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            _cancel: cancel,
        });
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            tokio::select! {
                _ = follow(weak, store) => {}
                _ = cancelled => {}
            }
        });
        cache
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every step is one assignment).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached body of `key` as `gv` serves it, if it is current as of store revision
    /// `current` (read by the caller after its request arrived).
    pub fn lookup(
        &self,
        key: &str,
        gv: (&'static str, &'static str),
        current: Revision,
    ) -> Option<Bytes> {
        let found = {
            let inner = self.lock();
            if inner.live && inner.watermark >= current {
                inner.entries.get(key).and_then(|e| {
                    e.views
                        .iter()
                        .find(|(g, _)| *g == gv)
                        .map(|(_, b)| b.clone())
                })
            } else {
                None
            }
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remember `body` (the object of `key` at `mod_revision`, as `gv` serves it) read by a
    /// request that saw store revision `read_from` before it read. Kept only while no event after
    /// `read_from` has been applied yet (see the module documentation).
    pub fn insert(
        &self,
        key: &str,
        mod_revision: Revision,
        gv: (&'static str, &'static str),
        body: Bytes,
        read_from: Revision,
    ) {
        let size = body.len();
        if size + key.len() + ENTRY_OVERHEAD > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        if !inner.live || inner.watermark > read_from {
            return;
        }
        let inner = &mut *inner;
        inner.seq += 1;
        let seq = inner.seq;
        match inner.entries.get_mut(key) {
            Some(e) if e.mod_revision == mod_revision => {
                if e.views.iter().any(|(g, _)| *g == gv) {
                    return;
                }
                e.views.push((gv, body));
                e.bytes += size;
                inner.bytes += size;
            }
            Some(e) if e.mod_revision > mod_revision => return,
            _ => {
                if let Some(old) = inner.entries.remove(key) {
                    inner.bytes -= old.bytes;
                }
                let bytes = size + key.len() + ENTRY_OVERHEAD;
                inner.entries.insert(
                    key.to_string(),
                    Entry {
                        mod_revision,
                        seq,
                        views: vec![(gv, body)],
                        bytes,
                    },
                );
                inner.order.push_back((key.to_string(), seq));
                inner.bytes += bytes;
            }
        }
        inner.evict(self.max_bytes);
    }

    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: inner.entries.len(),
            bytes: inner.bytes,
            watermark: inner.watermark,
        }
    }

    /// A watch from `from` is running: start empty at that revision.
    fn started(&self, from: Revision) {
        let mut inner = self.lock();
        inner.clear();
        inner.live = true;
        inner.watermark = from;
    }

    /// The watch ended: serve nothing until the next one runs.
    fn stopped(&self) {
        let mut inner = self.lock();
        inner.clear();
        inner.live = false;
    }

    /// Apply one store event.
    fn apply(&self, key: &str, revision: Revision, crd_prefix: &str) {
        let mut inner = self.lock();
        if key.starts_with(crd_prefix) {
            inner.clear();
        } else if inner
            .entries
            .get(key)
            .is_some_and(|e| e.mod_revision < revision)
        {
            if let Some(e) = inner.entries.remove(key) {
                inner.bytes -= e.bytes;
            }
        }
        inner.watermark = inner.watermark.max(revision);
    }
}

impl Inner {
    fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }

    fn evict(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some((key, seq)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
                if let Some(e) = self.entries.remove(&key) {
                    self.bytes -= e.bytes;
                }
            }
        }
        // Entries dropped by events leave their order slots behind: compact now and then.
        if self.order.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.order
                .retain(|(k, s)| entries.get(k).is_some_and(|e| e.seq == *s));
        }
    }
}

/// The watch task: one store watch over every key at a time, restarted when it ends.
async fn follow(cache: Weak<ObjectCache>, store: Arc<dyn Store>) {
    let crd_prefix = crate::registry::crd::RESOURCE.prefix(None);
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = match store.current_revision().await {
            Ok(rev) => store.watch("", rev).await.map(|rx| (rev, rx)),
            Err(e) => Err(e),
        };
        match started {
            Ok((rev, mut rx)) => {
                match cache.upgrade() {
                    Some(c) => c.started(rev),
                    None => return,
                }
                backoff = Duration::from_millis(100);
                while let Some(ev) = rx.recv().await {
                    match cache.upgrade() {
                        Some(c) => c.apply(&ev.kv.key, ev.kv.mod_revision, &crd_prefix),
                        None => return,
                    }
                }
                match cache.upgrade() {
                    Some(c) => c.stopped(),
                    None => return,
                }
                tracing::info!("object cache: store watch ended; restarting it");
            }
            Err(e) => {
                tracing::warn!(error = %e, "object cache: cannot watch the store; reads go to the store");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_store::{EmbeddedStore, SealingKey};

    const GV: (&str, &str) = ("", "v1");

    async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap();
        (dir, Arc::new(s))
    }

    async fn caught_up(c: &ObjectCache, store: &Arc<dyn Store>) -> Revision {
        let rev = store.current_revision().await.unwrap();
        for _ in 0..500 {
            let live = c.lock().live;
            if live && c.stats().watermark >= rev {
                return rev;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the cache did not catch up with revision {rev}");
    }

    #[tokio::test]
    async fn serves_only_current_entries() {
        let (_d, store) = store().await;
        let c = ObjectCache::spawn(store.clone(), 1 << 20);
        let kv = store.create("/registry/a", b"1").await.unwrap();
        let rev = caught_up(&c, &store).await;
        c.insert("/registry/a", kv.mod_revision, GV, Bytes::from("one"), rev);
        assert_eq!(c.lookup("/registry/a", GV, rev), Some(Bytes::from("one")));
        // Another version of the same key is another body.
        assert_eq!(c.lookup("/registry/a", ("events.k8s.io", "v1"), rev), None);
        // A write the watch has not applied yet: not served (the caller reads the store).
        let kv2 = store
            .update("/registry/a", b"2", kv.mod_revision)
            .await
            .unwrap();
        assert_eq!(c.lookup("/registry/a", GV, kv2.mod_revision), None);
        // Once applied, the old body is gone.
        let rev = caught_up(&c, &store).await;
        assert_eq!(c.lookup("/registry/a", GV, rev), None);
        // A write to another key keeps the entry.
        c.insert("/registry/a", kv2.mod_revision, GV, Bytes::from("two"), rev);
        store.create("/registry/b", b"x").await.unwrap();
        let rev = caught_up(&c, &store).await;
        assert_eq!(c.lookup("/registry/a", GV, rev), Some(Bytes::from("two")));
        // A delete drops it.
        store.delete("/registry/a", None).await.unwrap();
        let rev = caught_up(&c, &store).await;
        assert_eq!(c.lookup("/registry/a", GV, rev), None);
        let s = c.stats();
        assert_eq!(s.hits, 2);
        assert_eq!(s.entries, 0);
    }

    #[tokio::test]
    async fn a_read_that_raced_a_write_is_not_kept() {
        let (_d, store) = store().await;
        let c = ObjectCache::spawn(store.clone(), 1 << 20);
        let kv = store.create("/registry/a", b"1").await.unwrap();
        let read_from = caught_up(&c, &store).await;
        // The read saw the old value; a write lands and is applied before the insert.
        store
            .update("/registry/a", b"2", kv.mod_revision)
            .await
            .unwrap();
        let rev = caught_up(&c, &store).await;
        c.insert(
            "/registry/a",
            kv.mod_revision,
            GV,
            Bytes::from("old"),
            read_from,
        );
        assert_eq!(c.lookup("/registry/a", GV, rev), None);
        assert_eq!(c.stats().entries, 0);
    }

    #[tokio::test]
    async fn a_crd_change_empties_the_cache() {
        let (_d, store) = store().await;
        let c = ObjectCache::spawn(store.clone(), 1 << 20);
        let kv = store.create("/registry/a", b"1").await.unwrap();
        let rev = caught_up(&c, &store).await;
        c.insert("/registry/a", kv.mod_revision, GV, Bytes::from("one"), rev);
        let crd = format!(
            "{}widgets.example.com",
            crate::registry::crd::RESOURCE.prefix(None)
        );
        store.create(&crd, b"{}").await.unwrap();
        let rev = caught_up(&c, &store).await;
        assert_eq!(c.lookup("/registry/a", GV, rev), None);
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let (_d, store) = store().await;
        let max = 10 * (1000 + ENTRY_OVERHEAD + 16);
        let c = ObjectCache::spawn(store.clone(), max);
        let rev = caught_up(&c, &store).await;
        let body = Bytes::from(vec![b'x'; 1000]);
        for i in 0..100 {
            c.insert(&format!("/registry/k{i:03}"), 1, GV, body.clone(), rev);
            assert!(c.stats().bytes <= max);
        }
        let s = c.stats();
        assert!(s.entries >= 5 && s.entries <= 10, "{s:?}");
        // The newest stay, the oldest went.
        assert!(c.lookup("/registry/k099", GV, rev).is_some());
        assert!(c.lookup("/registry/k000", GV, rev).is_none());
        // A body larger than the whole cache is not kept.
        c.insert("/registry/big", 1, GV, Bytes::from(vec![0; max]), rev);
        assert!(c.lookup("/registry/big", GV, rev).is_none());
        // Many replaced entries do not grow the eviction queue without bound.
        for i in 0..5000 {
            c.insert("/registry/same", i + 2, GV, body.clone(), rev);
        }
        let entries = c.stats().entries;
        let queued = c.lock().order.len();
        assert!(queued <= 2 * entries + 1024 + 1, "{queued} queued");
    }
}
