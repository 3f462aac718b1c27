//! Shared informer caches (client-go's `SharedInformerFactory`, kube-rs' reflector): one cache per
//! cluster-wide collection path (`/api/v1/pods`, `/apis/apps/v1/replicasets`, ...), created on
//! first use and fed by ONE list + watch through the [`LocalClient`], instead of every controller
//! listing every object through the router on every change.
//!
//! - Objects are held as `Arc<Value>`; readers get an immutable [`Snapshot`] built at most once per
//!   cache change and shared by every reader, with lazily built indexes (controller owner uid,
//!   `spec.nodeName`, namespace), also shared.
//! - The watch resumes at the last applied resourceVersion; an `ERROR` event (410 Gone after a
//!   compaction, ...) or a failing watch makes it list again, replacing the whole cache.
//! - Subscribers (controllers) are woken AFTER an event is applied, so a woken reader never sees
//!   a cache older than the event that woke it.
//! - Read-your-writes: the [`LocalClient`] handed to the controllers ([`Informers::client`])
//!   reports every successful write; each write leaves an expectation on the cache of its
//!   collection (the resourceVersion it returned, or for a delete the object being gone or
//!   marked for deletion). A read waits until the cache has met every expectation of writes made
//!   before it (bounded by [`READ_WAIT`]; after that it lists directly and the cache re-lists).
//!   So a ReplicaSet controller that created or deleted pods never counts from a cache that
//!   predates its own writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use daas_apiserver::{ApiError, LocalClient, WriteObserver};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::util;
use crate::workqueue::WorkQueue;

/// The longest a read waits for the cache to catch up with this client's own writes before it
/// lists directly.
pub const READ_WAIT: Duration = Duration::from_secs(3);
/// Pause before re-watching or re-listing after a failure.
const RETRY: Duration = Duration::from_millis(500);

/// An immutable view of one cache: the objects in key (namespace/name) order, the
/// resourceVersion applied, and indexes built on first use and shared by every reader of this
/// view. Cloning it is cheap (one shared allocation).
#[derive(Debug, Default, Clone)]
pub struct Snapshot(Arc<Frozen>);

#[derive(Debug, Default)]
struct Frozen {
    items: Vec<Arc<Value>>,
    revision: i64,
    by_owner: OnceLock<HashMap<String, Vec<usize>>>,
    by_node: OnceLock<HashMap<String, Vec<usize>>>,
    by_namespace: OnceLock<HashMap<String, Vec<usize>>>,
}

impl std::ops::Deref for Snapshot {
    type Target = [Arc<Value>];
    fn deref(&self) -> &[Arc<Value>] {
        &self.0.items
    }
}

impl<'a> IntoIterator for &'a Snapshot {
    type Item = &'a Arc<Value>;
    type IntoIter = std::slice::Iter<'a, Arc<Value>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.items.iter()
    }
}

impl IntoIterator for Snapshot {
    type Item = Arc<Value>;
    type IntoIter = std::vec::IntoIter<Arc<Value>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.items.clone().into_iter()
    }
}

fn index_by(
    items: &[Arc<Value>],
    key: impl Fn(&Value) -> Option<&str>,
) -> HashMap<String, Vec<usize>> {
    let mut m: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, o) in items.iter().enumerate() {
        if let Some(k) = key(o) {
            m.entry(k.to_string()).or_default().push(i);
        }
    }
    m
}

impl Snapshot {
    pub fn new(items: Vec<Arc<Value>>, revision: i64) -> Self {
        Snapshot(Arc::new(Frozen {
            items,
            revision,
            ..Default::default()
        }))
    }

    /// Whether both are the same view of one cache (nothing applied in between).
    pub fn same(&self, other: &Snapshot) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The resourceVersion this view has applied (0 for a direct list without one).
    pub fn revision(&self) -> i64 {
        self.0.revision
    }

    /// The objects as plain references.
    pub fn values(&self) -> Vec<&Value> {
        self.0.items.iter().map(|o| &**o).collect()
    }

    fn pick<'a>(&'a self, idx: Option<&'a Vec<usize>>) -> impl Iterator<Item = &'a Arc<Value>> {
        idx.into_iter().flatten().map(move |i| &self.0.items[*i])
    }

    /// Objects whose controller ownerReference has this uid.
    pub fn controlled_by<'a>(&'a self, owner_uid: &str) -> impl Iterator<Item = &'a Arc<Value>> {
        let idx = self.0.by_owner.get_or_init(|| {
            index_by(&self.0.items, |o| {
                util::controller_ref(o).and_then(|r| r["uid"].as_str())
            })
        });
        self.pick(idx.get(owner_uid))
    }

    /// Objects (pods) with this `spec.nodeName`.
    pub fn on_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Arc<Value>> {
        let idx = self.0.by_node.get_or_init(|| {
            index_by(&self.0.items, |o| {
                o["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
            })
        });
        self.pick(idx.get(node))
    }

    /// The object with this key (`namespace/name`, `/name` for a cluster-scoped one).
    pub fn get(&self, key: &str) -> Option<&Arc<Value>> {
        let items = &self.0.items;
        items
            .binary_search_by(|o| key_of(o).as_str().cmp(key))
            .ok()
            .map(|i| &items[i])
    }

    /// Objects in this namespace.
    pub fn in_namespace<'a>(&'a self, ns: &str) -> impl Iterator<Item = &'a Arc<Value>> {
        let idx = self
            .0
            .by_namespace
            .get_or_init(|| index_by(&self.0.items, |o| o["metadata"]["namespace"].as_str()));
        self.pick(idx.get(ns))
    }
}

/// The resource a request path addresses: group-version prefix + plural, namespace, name.
#[derive(Debug, PartialEq)]
struct Addr {
    collection: String,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_path(uri: &str) -> Option<Addr> {
    let path = uri.split('?').next()?;
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let gv = match *segs.first()? {
        "api" => 2,
        "apis" => 3,
        _ => return None,
    };
    if segs.len() <= gv || segs[..gv].iter().any(|s| s.is_empty()) {
        return None;
    }
    let prefix = segs[..gv].join("/");
    let mut rest = &segs[gv..];
    let mut namespace = None;
    let namespace_sub = rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    if rest[0] == "namespaces" && rest.len() >= 3 && !namespace_sub {
        namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    if rest[0].is_empty() {
        return None;
    }
    Some(Addr {
        collection: format!("/{prefix}/{}", rest[0]),
        namespace,
        name: rest.get(1).filter(|n| !n.is_empty()).map(|s| s.to_string()),
    })
}

fn rv_of(o: &Value) -> i64 {
    o["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn key_of(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// What a read must wait for after one of this client's writes.
#[derive(Debug, Clone)]
enum Expect {
    /// The cache has applied at least this resourceVersion.
    AtLeast(i64),
    /// The object is gone from the cache, replaced (another uid) or marked for deletion at or
    /// after `rv`.
    Gone {
        key: String,
        uid: Option<String>,
        rv: i64,
    },
}

#[derive(Debug)]
struct Pending {
    expect: Expect,
    at: Instant,
}

/// Called after each applied change with the object before and after it (`None`: it did not
/// exist / is gone); returns false once its consumer is gone (it is then dropped).
pub type ChangeHandler = Arc<dyn Fn(Option<&Value>, Option<&Value>) -> bool + Send + Sync>;

/// One applied change: the object before and after it.
type Change = (Option<Arc<Value>>, Option<Arc<Value>>);

/// Keys kept up to date as events apply, so a per-object sync reads its few objects without a
/// snapshot (and its indexes) over the whole collection.
#[derive(Default)]
struct Index {
    /// Keys of objects with a controller ownerReference, by the owner's uid.
    by_owner: HashMap<String, BTreeSet<String>>,
    /// Keys of objects without a controller ownerReference, by namespace.
    orphans: HashMap<String, BTreeSet<String>>,
}

impl Index {
    fn slot(&mut self, o: &Value) -> (&mut HashMap<String, BTreeSet<String>>, String) {
        match util::controller_ref(o).and_then(|r| r["uid"].as_str()) {
            Some(u) => (&mut self.by_owner, u.to_string()),
            None => (
                &mut self.orphans,
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ),
        }
    }

    fn add(&mut self, key: &str, o: &Value) {
        let (m, k) = self.slot(o);
        m.entry(k).or_default().insert(key.to_string());
    }

    fn remove(&mut self, key: &str, o: &Value) {
        let (m, k) = self.slot(o);
        if let Some(set) = m.get_mut(&k) {
            set.remove(key);
            if set.is_empty() {
                m.remove(&k);
            }
        }
    }

    fn rebuild(objects: &BTreeMap<String, Arc<Value>>) -> Index {
        let mut ix = Index::default();
        for (k, o) in objects {
            ix.add(k, o);
        }
        ix
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Arc<Value>>,
    index: Index,
    /// Per-event consumers (work queues keyed by something else than the object's own key).
    handlers: Vec<ChangeHandler>,
    revision: i64,
    synced: bool,
    snapshot: Option<Snapshot>,
    pending: Vec<Pending>,
    subscribers: Vec<Weak<Notify>>,
    /// Work queues fed with the key of every changed object.
    queues: Vec<Weak<WorkQueue>>,
}

impl State {
    fn met(&self, e: &Expect) -> bool {
        match e {
            Expect::AtLeast(rv) => self.synced && self.revision >= *rv,
            Expect::Gone { key, uid, rv } => {
                self.synced
                    && match self.objects.get(key) {
                        None => true,
                        Some(o) => {
                            uid.as_deref().map(|u| util::uid(o) != u).unwrap_or(false)
                                || (util::is_deleting(o) && rv_of(o) >= *rv)
                        }
                    }
            }
        }
    }

    fn snapshot(&mut self) -> Snapshot {
        if let Some(s) = &self.snapshot {
            return s.clone();
        }
        let s = Snapshot::new(self.objects.values().cloned().collect(), self.revision);
        self.snapshot = Some(s.clone());
        s
    }

    /// Drop the expectations the cache now meets.
    fn settle(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.retain(|p| !self.met(&p.expect));
        self.pending = pending;
    }

    /// Queue these keys on every live work queue.
    fn queue_keys(&mut self, keys: impl FnOnce() -> Vec<String>) {
        if self.queues.is_empty() {
            return;
        }
        let mut live = Vec::new();
        self.queues.retain(|w| match w.upgrade() {
            Some(q) => {
                live.push(q);
                true
            }
            None => false,
        });
        if live.is_empty() {
            return;
        }
        let keys = keys();
        for q in live {
            q.add_all(keys.iter().cloned());
        }
    }

    fn put(&mut self, key: String, o: Arc<Value>) -> Option<Arc<Value>> {
        let old = self.objects.insert(key.clone(), o.clone());
        if let Some(old) = &old {
            self.index.remove(&key, old);
        }
        self.index.add(&key, &o);
        old
    }

    fn take(&mut self, key: &str) -> Option<Arc<Value>> {
        let old = self.objects.remove(key);
        if let Some(o) = &old {
            self.index.remove(key, o);
        }
        old
    }

    /// The objects whose keys are in `keys`.
    fn pick<'a>(
        &'a self,
        keys: Option<&'a BTreeSet<String>>,
    ) -> impl Iterator<Item = Arc<Value>> + 'a {
        keys.into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k).cloned())
    }

    fn changed(&mut self) {
        self.snapshot = None;
        self.settle();
        self.subscribers.retain(|w| match w.upgrade() {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        });
    }
}

/// One cache: a collection path and its objects.
pub struct Informer {
    path: String,
    state: Mutex<State>,
    /// Bumped after every applied change; readers waiting for their writes watch it.
    applied: watch::Sender<u64>,
    /// Asks the feeding task to list again.
    relist: Notify,
}

impl Informer {
    fn new(path: String) -> Arc<Self> {
        Arc::new(Informer {
            path,
            state: Mutex::new(State::default()),
            applied: watch::channel(0).0,
            relist: Notify::new(),
        })
    }

    /// A cache nobody feeds (tests apply events by hand).
    #[cfg(test)]
    pub(crate) fn for_test(path: &str) -> Arc<Self> {
        Self::new(path.to_string())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.applied.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The collection path this cache holds.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Wake `n` after every change applied to the cache.
    pub fn subscribe(&self, n: &Arc<Notify>) {
        self.lock().subscribers.push(Arc::downgrade(n));
    }

    /// Queue the key of every object changed from now on on `q` (and every key now: a new
    /// consumer has seen nothing yet). The queue is held weakly.
    pub fn queue_keys(&self, q: &Arc<WorkQueue>) {
        let mut st = self.lock();
        st.queues.push(Arc::downgrade(q));
        if st.synced {
            q.add_all(st.objects.keys().cloned());
        }
    }

    /// Replace the whole cache with a fresh list.
    pub fn replace(&self, items: Vec<Value>, revision: i64) {
        let handlers: Vec<ChangeHandler>;
        {
            let mut st = self.lock();
            let objects: BTreeMap<String, Arc<Value>> = items
                .into_iter()
                .map(|o| (key_of(&o), Arc::new(o)))
                .collect();
            let mut keys: Vec<String> = Vec::new();
            if !st.queues.is_empty() {
                // Every key before and after the list: what vanished must be seen gone.
                keys.extend(
                    st.objects
                        .keys()
                        .filter(|k| !objects.contains_key(*k))
                        .cloned(),
                );
                keys.extend(objects.keys().cloned());
            }
            let changes: Vec<Change> = if st.handlers.is_empty() {
                Vec::new()
            } else {
                let mut ch: Vec<_> = st
                    .objects
                    .iter()
                    .filter(|(k, _)| !objects.contains_key(*k))
                    .map(|(_, o)| (Some(o.clone()), None))
                    .collect();
                ch.extend(
                    objects
                        .iter()
                        .map(|(k, o)| (st.objects.get(k).cloned(), Some(o.clone()))),
                );
                ch
            };
            st.index = Index::rebuild(&objects);
            st.objects = objects;
            st.queue_keys(|| std::mem::take(&mut keys));
            st.revision = revision;
            st.synced = true;
            st.changed();
            handlers = st.handlers.clone();
            drop(st);
            self.dispatch(&handlers, &changes);
        }
        self.bump();
    }

    /// Apply one watch event (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`), in order.
    pub fn apply(&self, kind: &str, object: Value) {
        let rv = rv_of(&object);
        let change: Change;
        let handlers: Vec<ChangeHandler>;
        {
            let mut st = self.lock();
            match kind {
                "ADDED" | "MODIFIED" => {
                    let key = key_of(&object);
                    st.queue_keys(|| vec![key.clone()]);
                    let new = Arc::new(object);
                    let old = st.put(key, new.clone());
                    change = (old, Some(new));
                }
                "DELETED" => {
                    let key = key_of(&object);
                    let old = st.take(&key);
                    st.queue_keys(|| vec![key]);
                    change = (old.or_else(|| Some(Arc::new(object))), None);
                }
                "BOOKMARK" => {
                    // Progress only: waiters may be satisfied, nothing changed for subscribers.
                    st.revision = st.revision.max(rv);
                    st.snapshot = None;
                    st.settle();
                    drop(st);
                    self.bump();
                    return;
                }
                _ => return,
            }
            st.revision = st.revision.max(rv);
            st.changed();
            handlers = st.handlers.clone();
        }
        self.dispatch(&handlers, std::slice::from_ref(&change));
        self.bump();
    }

    /// Hand each change to every handler (outside the lock: a handler may read other caches);
    /// drop the handlers whose consumer is gone.
    fn dispatch(&self, handlers: &[ChangeHandler], changes: &[Change]) {
        if handlers.is_empty() || changes.is_empty() {
            return;
        }
        let mut dead: Vec<&ChangeHandler> = Vec::new();
        for h in handlers {
            let alive = changes
                .iter()
                .all(|(old, new)| h(old.as_deref(), new.as_deref()));
            if !alive {
                dead.push(h);
            }
        }
        if !dead.is_empty() {
            self.lock()
                .handlers
                .retain(|h| !dead.iter().any(|d| Arc::ptr_eq(d, h)));
        }
    }

    /// Call `h` with (before, after) for every change applied from now on (and `(None, obj)`
    /// for every object now: a new consumer has seen nothing yet). `h` returns false once its
    /// consumer is gone. This is how a controller maps a pod change to its owner's key.
    pub fn on_change(&self, h: ChangeHandler) {
        let now: Vec<Change> = {
            let mut st = self.lock();
            st.handlers.push(h.clone());
            if st.synced {
                st.objects
                    .values()
                    .map(|o| (None, Some(o.clone())))
                    .collect()
            } else {
                Vec::new()
            }
        };
        self.dispatch(&[h], &now);
    }

    /// The objects controlled by `owner_uid` and, with `orphans_in`, the objects of that
    /// namespace without a controller, once the cache has caught up with this client's writes
    /// (`None` after `wait`, as [`Informer::read`]).
    pub async fn select(
        &self,
        wait: Duration,
        owner_uid: &str,
        orphans_in: Option<&str>,
    ) -> Option<Vec<Arc<Value>>> {
        self.read_with(wait, |st| {
            let mut out: Vec<Arc<Value>> = st.pick(st.index.by_owner.get(owner_uid)).collect();
            if let Some(ns) = orphans_in {
                out.extend(st.pick(st.index.orphans.get(ns)));
            }
            out
        })
        .await
    }

    /// The object with `key`, once the cache has caught up with this client's writes.
    pub async fn get(&self, wait: Duration, key: &str) -> Option<Option<Arc<Value>>> {
        self.read_with(wait, |st| st.objects.get(key).cloned())
            .await
    }

    /// Entries held now: objects, index entries (owner and orphan keys), live handlers and
    /// pending expectations (for /metrics and tests).
    pub fn stats(&self) -> CacheStats {
        let st = self.lock();
        CacheStats {
            objects: st.objects.len(),
            index_keys: st.index.by_owner.values().map(BTreeSet::len).sum::<usize>()
                + st.index.orphans.values().map(BTreeSet::len).sum::<usize>(),
            handlers: st.handlers.len(),
            pending: st.pending.len(),
            snapshot_held: st
                .snapshot
                .as_ref()
                .map(|s| Arc::strong_count(&s.0) - 1)
                .unwrap_or(0),
        }
    }

    fn expect(&self, e: Expect) {
        let mut st = self.lock();
        if !st.met(&e) {
            st.pending.push(Pending {
                expect: e,
                at: Instant::now(),
            });
        }
    }

    /// The cache once it has met every expectation of writes made before this call, or `None`
    /// after `wait` (the stale expectations are dropped and the cache re-lists).
    pub async fn read(&self, wait: Duration) -> Option<Snapshot> {
        self.read_with(wait, State::snapshot).await
    }

    /// `f` over the cache once it has met every expectation of writes made before this call.
    async fn read_with<T>(&self, wait: Duration, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        let deadline = Instant::now() + wait;
        let mut rx = self.applied.subscribe();
        let started = Instant::now();
        loop {
            {
                let mut st = self.lock();
                let blocking = st.pending.iter().any(|p| p.at <= started) || !st.synced;
                if !blocking {
                    return Some(f(&mut st));
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let mut st = self.lock();
                st.pending.retain(|p| p.at > started);
                drop(st);
                tracing::debug!(path = %self.path, "informer did not catch up with our writes; listing directly");
                self.relist.notify_one();
                return None;
            }
        }
    }

    /// The cache as it is now, without waiting for anything.
    pub fn peek(&self) -> Snapshot {
        self.lock().snapshot()
    }

    /// Keep the cache fed: list, then watch from the list's revision; re-list on an error
    /// event, a failing watch or a request to. `listed`: the cache already holds a list (start
    /// by watching from its revision).
    async fn run(self: Arc<Self>, client: LocalClient, mut listed: bool) {
        loop {
            if !listed {
                match client.list_with_revision(&self.path).await {
                    Ok((items, rv)) => self.replace(items, rv.parse().unwrap_or(0)),
                    Err(e) => {
                        tracing::warn!(path = %self.path, error = %e.message, "informer list failed; retrying");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                }
            }
            listed = self.watch(&client).await;
        }
    }

    /// Follow one watch from the applied revision until it ends; whether the cache may go on
    /// from there (false: list again).
    async fn watch(&self, client: &LocalClient) -> bool {
        let from = self.lock().revision;
        let uri = format!(
            "{}?resourceVersion={from}&allowWatchBookmarks=true",
            self.path
        );
        let stream = match client.watch(&uri).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(path = %self.path, code = e.code, error = %e.message, "informer watch failed; re-listing");
                tokio::time::sleep(RETRY).await;
                return false;
            }
        };
        let mut stream = Box::pin(stream);
        let opened = Instant::now();
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    Some(ev) if ev.kind == "ERROR" => {
                        tracing::debug!(path = %self.path, status = %ev.object, "informer watch error; re-listing");
                        return false;
                    }
                    Some(ev) => self.apply(&ev.kind, ev.object),
                    // The watch timed out: resume where it stopped (not in a tight loop).
                    None => {
                        if opened.elapsed() < RETRY {
                            tokio::time::sleep(RETRY).await;
                        }
                        return true;
                    }
                },
                _ = self.relist.notified() => return false,
            }
        }
    }
}

/// What one cache holds (see [`Informer::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub objects: usize,
    pub index_keys: usize,
    pub handlers: usize,
    pub pending: usize,
    /// Readers holding the current snapshot (besides the cache).
    pub snapshot_held: usize,
}

/// A running cache and the task feeding it.
type Running = (Arc<Informer>, JoinHandle<()>);

struct Shared {
    client: LocalClient,
    caches: Mutex<HashMap<String, Running>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let caches = self.caches.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, (_, h)) in caches.drain() {
            h.abort();
        }
    }
}

impl Shared {
    fn existing(&self, collection: &str) -> Option<Arc<Informer>> {
        self.caches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(collection)
            .map(|(i, _)| i.clone())
    }
}

/// Records this client's writes as expectations on the cache of their collection.
struct Observer(Weak<Shared>);

impl WriteObserver for Observer {
    fn written(&self, method: &str, uri: &str, response: &Value) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let Some(addr) = parse_path(uri) else {
            return;
        };
        let Some(inf) = shared.existing(&addr.collection) else {
            return;
        };
        let is_status = response["kind"] == "Status";
        let rv = if is_status { 0 } else { rv_of(response) };
        let key = if is_status {
            match (&addr.namespace, &addr.name) {
                (ns, Some(n)) => format!("{}/{n}", ns.as_deref().unwrap_or("")),
                _ => return,
            }
        } else {
            key_of(response)
        };
        let uid = if is_status {
            response["details"]["uid"].as_str()
        } else {
            response["metadata"]["uid"].as_str()
        }
        .map(str::to_string);
        // A delete (or a pod eviction) leaves the object gone or marked; any other write
        // leaves its new resourceVersion. A Status from a subresource (a binding) says
        // nothing the cache could wait for.
        let uri_path = uri.split('?').next().unwrap_or("");
        let deletes = method == "DELETE" || (method == "POST" && uri_path.ends_with("/eviction"));
        if deletes {
            inf.expect(Expect::Gone { key, uid, rv });
        } else if rv > 0 {
            inf.expect(Expect::AtLeast(rv));
        }
    }
}

/// The shared caches of one group of controllers (or, [`Informers::direct`], none: every read
/// lists through the client, for controllers run on their own).
#[derive(Clone)]
pub struct Informers {
    shared: Option<Arc<Shared>>,
    client: LocalClient,
}

impl Informers {
    /// Caches fed through `client`. Controllers must write through [`Informers::client`] for
    /// their reads to see their writes.
    pub fn new(client: LocalClient) -> Self {
        let shared = Arc::new(Shared {
            client: client.clone(),
            caches: Mutex::new(HashMap::new()),
        });
        let observed = client.with_write_observer(Arc::new(Observer(Arc::downgrade(&shared))));
        Informers {
            shared: Some(shared),
            client: observed,
        }
    }

    /// No caches: every read is a list through `client`.
    pub fn direct(client: LocalClient) -> Self {
        Informers {
            shared: None,
            client,
        }
    }

    /// The client whose writes the caches wait for on reads.
    pub fn client(&self) -> LocalClient {
        self.client.clone()
    }

    /// Whether these are real caches.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether a cache serves `path`: a cluster-wide collection without a query.
    pub fn serves(&self, path: &str) -> bool {
        self.shared.is_some()
            && !path.contains('?')
            && matches!(parse_path(path), Some(Addr { ref collection, namespace: None, name: None }) if collection == path)
    }

    /// The cache of `path` (started on first use), if one serves it.
    pub fn informer(&self, path: &str) -> Option<Arc<Informer>> {
        if !self.serves(path) {
            return None;
        }
        let shared = self.shared.as_ref()?;
        let mut caches = shared.caches.lock().unwrap_or_else(|p| p.into_inner());
        let (inf, _) = caches.entry(path.to_string()).or_insert_with(|| {
            let inf = Informer::new(path.to_string());
            let h = tokio::spawn(inf.clone().run(shared.client.clone(), false));
            (inf, h)
        });
        Some(inf.clone())
    }

    /// Wake `n` after each change applied to the cache of `path`; false if no cache serves it.
    pub fn subscribe(&self, path: &str, n: &Arc<Notify>) -> bool {
        match self.informer(path) {
            Some(inf) => {
                inf.subscribe(n);
                true
            }
            None => false,
        }
    }

    /// Feed `q` with the key of every object of `path` that changes (and every key now); false
    /// if no cache serves it.
    pub fn queue_keys(&self, path: &str, q: &Arc<WorkQueue>) -> bool {
        match self.informer(path) {
            Some(inf) => {
                inf.queue_keys(q);
                true
            }
            None => false,
        }
    }

    /// Call `h` for every change of an object of `path` (see [`Informer::on_change`]); false
    /// if no cache serves it.
    pub fn on_change(&self, path: &str, h: ChangeHandler) -> bool {
        match self.informer(path) {
            Some(inf) => {
                inf.on_change(h);
                true
            }
            None => false,
        }
    }

    /// The objects of `path` controlled by `owner_uid`, plus (with `orphans_in`) those of that
    /// namespace without a controller: from the cache's kept index once it has caught up with
    /// this client's writes, else from a direct list.
    pub async fn select(
        &self,
        path: &str,
        owner_uid: &str,
        orphans_in: Option<&str>,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        if let Some(inf) = self.informer(path) {
            if let Some(v) = inf.select(READ_WAIT, owner_uid, orphans_in).await {
                return Ok(v);
            }
        }
        let items = self.client.list(path).await?;
        Ok(items
            .into_iter()
            .filter(|o| match util::controller_ref(o) {
                Some(r) => r["uid"].as_str() == Some(owner_uid),
                None => orphans_in
                    .is_some_and(|ns| o["metadata"]["namespace"].as_str().unwrap_or("") == ns),
            })
            .map(Arc::new)
            .collect())
    }

    /// The object of `path` with `key` (`namespace/name`), from the cache once it has caught
    /// up with this client's writes, else read directly.
    pub async fn get(&self, path: &str, key: &str) -> Result<Option<Arc<Value>>, ApiError> {
        if let Some(inf) = self.informer(path) {
            if let Some(v) = inf.get(READ_WAIT, key).await {
                return Ok(v);
            }
        }
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let (prefix, plural) = path.rsplit_once('/').unwrap_or(("", path));
        let uri = if ns.is_empty() {
            format!("{prefix}/{plural}/{name}")
        } else {
            format!("{prefix}/namespaces/{ns}/{plural}/{name}")
        };
        match self.client.get(&uri).await {
            Ok(v) => Ok(Some(Arc::new(v))),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What every running cache holds, by collection path.
    pub fn stats(&self) -> Vec<(String, CacheStats)> {
        let Some(shared) = &self.shared else {
            return Vec::new();
        };
        let caches = shared.caches.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, CacheStats)> = caches
            .iter()
            .map(|(p, (i, _))| (p.clone(), i.stats()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The objects of `path`: from its cache once that has caught up with this client's
    /// writes, else (no cache, or it did not catch up in time) listed directly.
    pub async fn list(&self, path: &str) -> Result<Snapshot, ApiError> {
        if let Some(inf) = self.informer(path) {
            if let Some(s) = inf.read(READ_WAIT).await {
                return Ok(s);
            }
        }
        let items = self.client.list(path).await?;
        Ok(Snapshot::new(items.into_iter().map(Arc::new).collect(), 0))
    }
}

#[cfg(test)]
mod tests;
