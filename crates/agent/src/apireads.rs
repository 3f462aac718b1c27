//! Shared API reads of pod start (a singleflight): pods started together read the same objects
//! (the namespace's `kube-root-ca.crt` ConfigMap, its Service list for the docker-link env), and
//! each such read in flight is shared by every pod sync that asks for the same object while it
//! runs, instead of one request per pod.
//!
//! Freshness: a caller passes `fresh_after`, the instant its pod's change was seen on the watch,
//! and joins only a read that *started* at or after it. Any write acknowledged before the pod was
//! created (a ConfigMap edited, then a pod applied) is then visible to the shared read, exactly
//! as to a read of the pod's own; a read that started earlier is never reused. Nothing is kept
//! once a read ends (no TTL cache, nothing to invalidate). Keys carry the namespace and name, so
//! a pod only ever receives what a read of its own namespace's object returned; TokenRequests
//! are bound to one pod and never shared.
//!
//! [`scope`] makes a [`SharedReads`] and the caller's `fresh_after` current for a future (a
//! task-local), and the read helpers (`volumes::config_map`, `volumes::secret`,
//! `podenv::service_env`) go through [`shared`]; outside a scope they read directly.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt, Shared};
use k8s_openapi::api::core::v1::Service;

/// What a read is of: (kind, namespace, name); the name is empty for a list.
pub type ReadKey = (&'static str, String, String);

type Flight<V> = (Instant, Shared<BoxFuture<'static, Result<V, String>>>);

/// The reads in flight of one kind of value.
pub struct Flights<V: Clone> {
    inflight: Mutex<HashMap<ReadKey, Flight<V>>>,
    started: AtomicU64,
    joined: AtomicU64,
}

impl<V: Clone> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            inflight: Mutex::new(HashMap::new()),
            started: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Flights<V> {
    /// The result of `read` for `key`: the read already in flight for `key` when it started at
    /// or after `fresh_after`, else `read` itself (which others may then join).
    pub async fn run<F>(&self, key: ReadKey, fresh_after: Instant, read: F) -> Result<V, String>
    where
        F: Future<Output = Result<V, String>> + Send + 'static,
    {
        let flight = {
            let mut m = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match m.get(&key) {
                Some((at, f)) if *at >= fresh_after => {
                    self.joined.fetch_add(1, Ordering::Relaxed);
                    f.clone()
                }
                _ => {
                    self.started.fetch_add(1, Ordering::Relaxed);
                    let f = read.boxed().shared();
                    m.insert(key.clone(), (Instant::now(), f.clone()));
                    f
                }
            }
        };
        let out = flight.clone().await;
        let mut m = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&key).is_some_and(|(_, f)| f.ptr_eq(&flight)) {
            m.remove(&key);
        }
        out
    }

    /// (reads started, reads joined) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.started.load(Ordering::Relaxed),
            self.joined.load(Ordering::Relaxed),
        )
    }
}

/// ConfigMap / Secret data by key (`None`: not found).
pub type KeyData = Option<BTreeMap<String, Vec<u8>>>;

/// The shared reads of one agent (one API credential).
#[derive(Default)]
pub struct SharedReads {
    /// ConfigMap and Secret GETs.
    pub objects: Flights<KeyData>,
    /// Service lists by namespace.
    pub services: Flights<Vec<Service>>,
}

tokio::task_local! {
    static CURRENT: (Arc<SharedReads>, Instant);
}

/// Run `f` with `reads` current, joining reads started at or after `fresh_after`.
pub async fn scope<F: Future>(reads: Arc<SharedReads>, fresh_after: Instant, f: F) -> F::Output {
    CURRENT.scope((reads, fresh_after), f).await
}

/// The shared reads current in this task, with the caller's `fresh_after`.
pub fn shared() -> Option<(Arc<SharedReads>, Instant)> {
    CURRENT.try_with(|c| c.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn key(ns: &str, name: &str) -> ReadKey {
        ("configmap", ns.into(), name.into())
    }

    /// A read that counts its calls and returns `v` after a short wait.
    fn read(
        calls: &Arc<AtomicUsize>,
        v: u32,
    ) -> impl Future<Output = Result<u32, String>> + Send + 'static {
        let calls = calls.clone();
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(v)
        }
    }

    #[tokio::test]
    async fn concurrent_reads_of_one_object_share_one_request() {
        let f: Arc<Flights<u32>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let since = Instant::now();
        let all = (0..20).map(|i| {
            let f = f.clone();
            let r = read(&calls, i);
            async move { f.run(key("a", "kube-root-ca.crt"), since, r).await }
        });
        let out = futures::future::join_all(all).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Every caller got the one read's value.
        assert!(out.iter().all(|r| r.as_ref() == Ok(&0)), "{out:?}");
        assert_eq!(f.counts(), (1, 19));
        assert!(f.inflight.lock().unwrap().is_empty(), "nothing kept");
    }

    #[tokio::test]
    async fn another_namespace_never_gets_this_namespaces_read() {
        let f: Arc<Flights<u32>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let since = Instant::now();
        let a = f.run(key("a", "kube-root-ca.crt"), since, read(&calls, 1));
        let b = f.run(key("b", "kube-root-ca.crt"), since, read(&calls, 2));
        let c = f.run(key("a", "other"), since, read(&calls, 3));
        let (a, b, c) = tokio::join!(a, b, c);
        assert_eq!((a, b, c), (Ok(1), Ok(2), Ok(3)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_read_started_before_the_pod_was_seen_is_not_reused() {
        let f: Arc<Flights<u32>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let early = Instant::now();
        let first = f.run(key("a", "cm"), early, read(&calls, 1));
        let later = async {
            // The ConfigMap changes, then the pod is seen: its read must start afresh.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let seen = Instant::now();
            f.run(key("a", "cm"), seen, read(&calls, 2)).await
        };
        let (a, b) = tokio::join!(first, later);
        assert_eq!((a, b), (Ok(1), Ok(2)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Reads after the first ended start anew too (nothing cached).
        assert_eq!(f.run(key("a", "cm"), early, read(&calls, 3)).await, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn errors_are_shared_and_not_kept() {
        let f: Arc<Flights<u32>> = Arc::default();
        let since = Instant::now();
        let fail = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err::<u32, _>("boom".to_string())
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let (a, b) = tokio::join!(
            f.run(key("a", "cm"), since, fail),
            f.run(key("a", "cm"), since, read(&calls, 9))
        );
        assert_eq!(a, Err("boom".into()));
        assert_eq!(b, Err("boom".into()));
        assert_eq!(f.run(key("a", "cm"), since, read(&calls, 7)).await, Ok(7));
    }

    #[tokio::test]
    async fn scope_makes_the_reads_current() {
        assert!(shared().is_none());
        let reads = Arc::new(SharedReads::default());
        let at = Instant::now();
        let got = scope(reads.clone(), at, async { shared() }).await;
        let (r, t) = got.expect("current inside the scope");
        assert!(Arc::ptr_eq(&r, &reads));
        assert_eq!(t, at);
    }
}
