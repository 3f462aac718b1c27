//! A watch cache in front of a backend, as kube-apiserver's cacher in front of etcd: one backend
//! watch over the whole keyspace feeds a window of recent events, and every watch is served from
//! it (replay from the window, then live), so N API watches cost one etcd watch, not N.
//!
//! - A watch from a revision older than the window goes to the backend (which answers with its
//!   history or `Compacted`).
//! - A watcher that does not keep up (its channel is full) is dropped: its stream ends and the
//!   consumer re-lists, as with the embedded store.
//! - When the backend watch ends it is re-opened from the last revision seen; if that history is
//!   gone, every watcher is dropped (they re-list) and the window starts again at the current
//!   revision.
//!
//! Reads and writes pass through to the backend.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::route::{Subscribers, WatchRoute};
use crate::{
    Event, KeyValue, ListResult, RangeResult, Result, Revision, Store, StoreError, WatchReceiver,
    WATCH_CHANNEL_CAPACITY,
};

/// Events kept for replay by default.
pub const DEFAULT_WINDOW: usize = 8192;
/// Every this many revisions, watchers whose receiver is gone are pruned.
const PRUNE_EVERY: Revision = 64;

struct Subscriber {
    prefix: String,
    /// Deliver only events after this revision (a watch from beyond the window's end).
    after: Revision,
    tx: mpsc::Sender<Arc<Event>>,
}

struct Window {
    /// Every event with a revision in `(floor, last]`, in order.
    events: VecDeque<Arc<Event>>,
    floor: Revision,
    last: Revision,
    subscribers: Subscribers<Subscriber>,
}

fn revision(ev: &Event) -> Revision {
    ev.kv.mod_revision
}

impl Window {
    fn push(&mut self, ev: Arc<Event>, capacity: usize) {
        let rev = revision(&ev);
        let prev = ev.prev.as_ref().map(|p| p.value.as_slice());
        self.subscribers.deliver(&ev.kv.value, prev, |s| {
            if rev <= s.after || !ev.kv.key.starts_with(&s.prefix) {
                return !s.tx.is_closed();
            }
            // Full: the watcher fell behind; dropping its sender ends its stream.
            s.tx.try_send(ev.clone()).is_ok()
        });
        if rev % PRUNE_EVERY == 0 {
            // A routed watcher may be offered no event for long: drop those that went away.
            self.subscribers.retain_all(|s| !s.tx.is_closed());
        }
        self.last = self.last.max(rev);
        self.events.push_back(ev);
        while self.events.len() > capacity {
            if let Some(old) = self.events.pop_front() {
                self.floor = self.floor.max(revision(&old));
            }
        }
    }

    /// The backend's history is gone: every watcher re-lists, the window restarts at `rev`.
    fn reset(&mut self, rev: Revision) {
        self.subscribers.clear();
        self.events.clear();
        self.floor = rev;
        self.last = rev;
    }
}

/// A [`Store`] whose watches are served from one shared backend watch (see the module docs).
pub struct FanoutStore {
    inner: Arc<dyn Store>,
    window: Arc<Mutex<Window>>,
    pump: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FanoutStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanoutStore").finish_non_exhaustive()
    }
}

impl Drop for FanoutStore {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend("watch cache lock poisoned".into())
}

impl FanoutStore {
    /// Open the backend watch at the current revision and keep the last `capacity` events.
    pub async fn start(inner: Arc<dyn Store>, capacity: usize) -> Result<FanoutStore> {
        let capacity = capacity.max(1);
        let rev = inner.current_revision().await?;
        let rx = inner.watch("", rev).await?;
        let window = Arc::new(Mutex::new(Window {
            events: VecDeque::new(),
            floor: rev,
            last: rev,
            subscribers: Subscribers::default(),
        }));
        let pump = tokio::spawn(pump(inner.clone(), window.clone(), rx, capacity));
        Ok(FanoutStore {
            inner,
            window,
            pump,
        })
    }

    /// Watchers currently served from the window (tests, metrics).
    pub fn subscriber_count(&self) -> usize {
        self.window
            .lock()
            .map(|mut w| {
                w.subscribers.retain_all(|s| !s.tx.is_closed());
                w.subscribers.len()
            })
            .unwrap_or(0)
    }

    /// Of those, the watchers registered with a [`WatchRoute`].
    pub fn routed_subscriber_count(&self) -> usize {
        self.window
            .lock()
            .map(|mut w| {
                w.subscribers.retain_all(|s| !s.tx.is_closed());
                w.subscribers.routed_len()
            })
            .unwrap_or(0)
    }
}

async fn pump(
    inner: Arc<dyn Store>,
    window: Arc<Mutex<Window>>,
    mut rx: WatchReceiver,
    capacity: usize,
) {
    loop {
        while let Some(ev) = rx.recv().await {
            match window.lock() {
                Ok(mut w) => w.push(ev, capacity),
                Err(_) => return,
            }
        }
        // The backend watch ended: re-open it where we are, or start over if that is gone.
        let mut backoff = Duration::from_millis(100);
        rx = loop {
            let Ok(last) = window.lock().map(|w| w.last) else {
                return;
            };
            match inner.watch("", last).await {
                Ok(rx) => break rx,
                Err(StoreError::Compacted { .. }) => match inner.current_revision().await {
                    Ok(now) => {
                        tracing::warn!(
                            from = last,
                            now,
                            "watch cache lost the backend's history; watchers re-list"
                        );
                        if let Ok(mut w) = window.lock() {
                            w.reset(now);
                        }
                        continue;
                    }
                    Err(e) => tracing::warn!(error = %e, "watch cache: backend unavailable"),
                },
                Err(e) => tracing::warn!(error = %e, "watch cache: re-opening the backend watch"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        };
    }
}

#[async_trait]
impl Store for FanoutStore {
    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }
    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<ListResult> {
        self.inner.list(prefix).await
    }
    async fn list_at(&self, prefix: &str, revision: Revision) -> Result<ListResult> {
        self.inner.list_at(prefix, revision).await
    }
    async fn list_range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        self.inner.list_range(prefix, start, limit, revision).await
    }
    async fn create(&self, key: &str, value: &[u8]) -> Result<KeyValue> {
        self.inner.create(key, value).await
    }
    async fn update(
        &self,
        key: &str,
        value: &[u8],
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        self.inner.update(key, value, expected_mod_revision).await
    }
    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        self.inner.delete(key, expected_mod_revision).await
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
        let (floor, last) = {
            let w = self.window.lock().map_err(|_| poisoned())?;
            (w.floor, w.last)
        };
        if after < floor {
            // Older than the window: the backend's own history (or its Compacted).
            return self.inner.watch_routed(prefix, after, route).await;
        }
        if after > last {
            // Possibly written through this store but not yet seen by the backend watch.
            let current = self.inner.current_revision().await?;
            if after > current {
                return Err(StoreError::FutureRevision {
                    requested: after,
                    current,
                });
            }
        }
        let registered = {
            let mut w = self.window.lock().map_err(|_| poisoned())?;
            if after < w.floor {
                // The window moved on while the lock was released.
                None
            } else {
                let replay: Vec<Arc<Event>> = w
                    .events
                    .iter()
                    .filter(|ev| revision(ev) > after && ev.kv.key.starts_with(prefix))
                    .cloned()
                    .collect();
                let (tx, rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY + replay.len());
                for ev in replay {
                    // Cannot fail: the channel has room for the whole replay.
                    let _ = tx.try_send(ev);
                }
                w.subscribers.push(
                    route.clone(),
                    Subscriber {
                        prefix: prefix.to_string(),
                        after,
                        tx,
                    },
                );
                Some(rx)
            }
        };
        match registered {
            Some(rx) => Ok(rx),
            None => self.inner.watch_routed(prefix, after, route).await,
        }
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await?;
        // Watches from before the compaction get the backend's Compacted, as without the cache.
        let mut w = self.window.lock().map_err(|_| poisoned())?;
        while w
            .events
            .front()
            .is_some_and(|ev| self::revision(ev) <= revision)
        {
            w.events.pop_front();
        }
        w.floor = w.floor.max(revision);
        Ok(())
    }

    async fn restore(
        &self,
        items: Vec<KeyValue>,
        revision: Revision,
        floor: Revision,
    ) -> Result<()> {
        self.inner.restore(items, revision, floor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{conformance, EmbeddedStore, SealingKey};

    fn embedded() -> (tempfile::TempDir, Arc<EmbeddedStore>) {
        let d = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(&d.path().join("s.redb"), SealingKey::generate()).unwrap();
        (d, Arc::new(s))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_conformance_suite_passes_through_the_cache() {
        let (_d, inner) = embedded();
        // Some history before the cache starts: watches from then go to the backend.
        inner.create("/conf/before", b"x").await.unwrap();
        let s = FanoutStore::start(inner, DEFAULT_WINDOW).await.unwrap();
        conformance::run_all(&s).await;
    }

    #[cfg(feature = "etcd")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_etcd_the_conformance_suite_passes_through_the_cache() {
        let etcd = crate::etcd_server::EtcdProcess::start().await.unwrap();
        let inner = crate::EtcdStore::connect([etcd.endpoint()], SealingKey::generate(), "/fan/")
            .await
            .unwrap();
        let s = FanoutStore::start(Arc::new(inner), DEFAULT_WINDOW)
            .await
            .unwrap();
        conformance::run_all(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_watches_share_one_backend_watch() {
        let (_d, inner) = embedded();
        let s = FanoutStore::start(inner.clone(), 64).await.unwrap();
        let mut rxs = Vec::new();
        for i in 0..20 {
            rxs.push(s.watch(&format!("/p{}/", i % 2), 0).await.unwrap());
        }
        assert_eq!(inner.watcher_count(), 1, "one backend watch feeds them all");
        assert_eq!(s.subscriber_count(), 20);
        let kv = s.create("/p1/a", b"v").await.unwrap();
        for (i, rx) in rxs.iter_mut().enumerate() {
            if i % 2 == 1 {
                let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(ev.kv, kv);
            } else {
                assert!(rx.try_recv().is_err(), "other prefix got an event");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watcher_that_falls_behind_is_dropped_and_others_go_on() {
        let (_d, inner) = embedded();
        let s = FanoutStore::start(inner, 100_000).await.unwrap();
        let start = s.current_revision().await.unwrap();
        let mut slow = s.watch("/k/", start).await.unwrap();
        let mut fast = s.watch("/k/", start).await.unwrap();
        let n = WATCH_CHANNEL_CAPACITY + 50;
        let reader = tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                match tokio::time::timeout(Duration::from_secs(10), fast.recv()).await {
                    Ok(Some(_)) => got += 1,
                    _ => break,
                }
            }
            got
        });
        for i in 0..n {
            s.create(&format!("/k/{i:05}"), b"v").await.unwrap();
        }
        assert_eq!(
            reader.await.unwrap(),
            n,
            "the reading watcher got every event"
        );
        // The slow one got a prefix of the events, then its stream ended.
        let mut got = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), slow.recv()).await {
            got += 1;
        }
        assert!(
            got < n,
            "a watcher that never read was not dropped ({got} events)"
        );
        // A new watch from the start still replays everything from the window.
        let mut again = s.watch("/k/", start).await.unwrap();
        for i in 0..n {
            let ev = tokio::time::timeout(Duration::from_secs(5), again.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ev.kv.key, format!("/k/{i:05}"));
        }
    }

    async fn recv(rx: &mut WatchReceiver) -> Arc<Event> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routed_watches_get_their_nodes_events_and_share_one_copy() {
        let (_d, inner) = embedded();
        let s = FanoutStore::start(inner.clone(), 64).await.unwrap();
        let pod = |n: &str| format!(r#"{{"spec":{{"nodeName":"{n}"}}}}"#).into_bytes();
        let start = s.current_revision().await.unwrap();
        let mut n1 = s
            .watch_routed("/pods/", start, WatchRoute::new("nodeName", "n1"))
            .await
            .unwrap();
        let mut n2 = s
            .watch_routed("/pods/", start, WatchRoute::new("nodeName", "n2"))
            .await
            .unwrap();
        let mut all = s.watch("/pods/", start).await.unwrap();
        assert_eq!(s.routed_subscriber_count(), 2);
        assert_eq!(inner.watcher_count(), 1, "one backend watch feeds them all");
        s.create("/pods/x", &pod("n2")).await.unwrap();
        let kv = s.create("/pods/y", &pod("n1")).await.unwrap();
        let e1 = recv(&mut n1).await;
        assert_eq!(e1.kv, kv);
        assert_eq!(recv(&mut n2).await.kv.key, "/pods/x");
        recv(&mut all).await;
        assert!(
            Arc::ptr_eq(&e1, &recv(&mut all).await),
            "copied per watcher"
        );
        assert!(n1.try_recv().is_err() && n2.try_recv().is_err());
        // A routed watch from inside the window replays (a superset) and then goes live.
        let mut late = s
            .watch_routed("/pods/", start, WatchRoute::new("nodeName", "n1"))
            .await
            .unwrap();
        assert_eq!(recv(&mut late).await.kv.key, "/pods/x");
        assert_eq!(recv(&mut late).await.kv.key, "/pods/y");
        s.create("/pods/z", &pod("n1")).await.unwrap();
        assert_eq!(recv(&mut late).await.kv.key, "/pods/z");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn older_than_the_window_goes_to_the_backend() {
        let (_d, inner) = embedded();
        let s = FanoutStore::start(inner.clone(), 4).await.unwrap();
        let first = s.create("/w/0", b"v").await.unwrap();
        for i in 1..10 {
            s.create(&format!("/w/{i}"), b"v").await.unwrap();
        }
        // Let the pump see them all (the window now holds only the last 4).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = inner.watcher_count();
        let mut rx = s.watch("/w/", first.mod_revision - 1).await.unwrap();
        assert_eq!(inner.watcher_count(), before + 1, "served by the backend");
        for i in 0..10 {
            let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ev.kv.key, format!("/w/{i}"));
        }
    }
}
