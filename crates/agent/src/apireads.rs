//! Shared API reads of pod start (a singleflight): pods started together read the same objects
//! (the namespace's `kube-root-ca.crt` ConfigMap, its Service list for the docker-link env), and
//! each such read in flight is shared by every pod sync that asks for the same object while it
//! runs, instead of one request per pod.
//!
//! Freshness: a caller passes `fresh_after`, the instant its pod's change was seen on the watch,
//! and joins only a read that *started* at or after it. Any write acknowledged before the pod was
//! created (a ConfigMap edited, then a pod applied) is then visible to the shared read, exactly
//! as to a read of the pod's own; a caller that finds an older read in flight waits for it and
//! shares the next one. Nothing is kept once the last caller of a key leaves (no TTL cache,
//! nothing to invalidate). Keys carry the namespace and name, so a pod only ever receives what a
//! read of its own namespace's object returned; TokenRequests are bound to one pod and never
//! shared. The coalescing itself is [`daas_apimachinery::singleflight`], shared with the API
//! server's in-process client.
//!
//! [`scope`] makes a [`SharedReads`] and the caller's `fresh_after` current for a future (a
//! task-local), and the read helpers (`volumes::config_map`, `volumes::secret`,
//! `podenv::service_env`) go through [`shared`]; outside a scope they read directly.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use daas_apimachinery::singleflight::Singleflight;
use k8s_openapi::api::core::v1::Service;

/// What a read is of: (kind, namespace, name); the name is empty for a list.
pub type ReadKey = (&'static str, String, String);

/// The reads in flight of one kind of value (a [`Singleflight`] keyed by [`ReadKey`]).
pub struct Flights<V> {
    inner: Singleflight<ReadKey, Result<V, String>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            inner: Singleflight::default(),
        }
    }
}

impl<V: Clone> Flights<V> {
    /// The result of `read` for `key`, or of a read of `key` another pod sync started at or
    /// after `fresh_after`.
    pub async fn run<F>(&self, key: ReadKey, fresh_after: Instant, read: F) -> Result<V, String>
    where
        F: Future<Output = Result<V, String>>,
    {
        self.inner.run(key, fresh_after, || read).await
    }

    /// (reads started, reads joined) so far.
    pub fn counts(&self) -> (u64, u64) {
        self.inner.counts()
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
    use std::sync::atomic::{AtomicUsize, Ordering};
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
        assert_eq!(f.inner.active_keys(), 0, "nothing kept");
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
