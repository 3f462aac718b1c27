//! A value derived from the objects under one store prefix, kept until a store watch from the
//! revision it was read at reports a change under that prefix (a write through any master), or
//! until [`WatchCache::invalidate`] (a write through this server, so that its next request sees
//! it without waiting for the watch). Used for the RBAC policy ([`crate::rbac::Authorizer`]),
//! the admission webhook configurations and the validating admission policies with their
//! compiled CEL programs ([`AdmissionCaches`]): hot paths that would otherwise read (and
//! compile) them on every request.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use daas_store::Store;

use crate::error::ApiResult;

/// One cached value of a prefix (see the module documentation).
pub struct WatchCache<T> {
    prefix: String,
    current: tokio::sync::Mutex<Option<Generation<T>>>,
    /// How many times the value was loaded (a new generation each time).
    loads: AtomicU64,
}

/// One loaded value: stale once its watch reports a change. Dropping it (invalidated or
/// replaced) ends its watch task.
struct Generation<T> {
    value: Arc<T>,
    stale: Arc<AtomicBool>,
    _cancel: tokio::sync::oneshot::Sender<()>,
}

impl<T: Send + Sync + 'static> WatchCache<T> {
    pub fn new(prefix: impl Into<String>) -> Self {
        WatchCache {
            prefix: prefix.into(),
            current: tokio::sync::Mutex::new(None),
            loads: AtomicU64::new(0),
        }
    }

    /// The store prefix whose changes end a generation.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Drop the cached value: the next [`WatchCache::get`] loads it afresh.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    /// How many generations were loaded so far.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The cached value, or the one `load` gives (with the store revision it read at), cached
    /// while a watch on the prefix from that revision reports nothing. Concurrent callers wait
    /// for one load.
    pub async fn get<F, Fut>(&self, store: &Arc<dyn Store>, load: F) -> ApiResult<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<(T, i64)>>,
    {
        let mut cur = self.current.lock().await;
        if let Some(g) = cur.as_ref() {
            if !g.stale.load(Ordering::Acquire) {
                return Ok(g.value.clone());
            }
        }
        let (v, rev) = load().await?;
        self.loads.fetch_add(1, Ordering::Relaxed);
        let v = Arc::new(v);
        match store.watch(&self.prefix, rev).await {
            Ok(mut rx) => {
                let stale = Arc::new(AtomicBool::new(false));
                let flag = stale.clone();
                let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
                tokio::spawn(async move {
                    tokio::select! {
                        // An event, or the end of the watch: either way the value may be old.
                        _ = rx.recv() => flag.store(true, Ordering::Release),
                        // The generation was dropped: nobody reads the flag any more.
                        _ = cancelled => {}
                    }
                });
                *cur = Some(Generation {
                    value: v.clone(),
                    stale,
                    _cancel: cancel,
                });
            }
            Err(e) => {
                tracing::warn!(prefix = %self.prefix, error = %e, "not cached: watch failed");
                *cur = None;
            }
        }
        Ok(v)
    }
}

/// The admission hot path's caches, one set per server.
pub struct AdmissionCaches {
    pub validating_webhooks: WatchCache<crate::webhook::Hooks>,
    pub mutating_webhooks: WatchCache<crate::webhook::Hooks>,
    /// The policies and their bindings (both under the group's prefix).
    pub policies: WatchCache<crate::policy::PolicySet>,
}

/// Storage prefix of admissionregistration.k8s.io objects.
pub const ADMISSION_PREFIX: &str = "/registry/admissionregistration.k8s.io/";

impl Default for AdmissionCaches {
    fn default() -> Self {
        use crate::registry::admissionregistration::{MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS};
        AdmissionCaches {
            validating_webhooks: WatchCache::new(VALIDATING_WEBHOOKS.prefix(None)),
            mutating_webhooks: WatchCache::new(MUTATING_WEBHOOKS.prefix(None)),
            policies: WatchCache::new(ADMISSION_PREFIX),
        }
    }
}

impl AdmissionCaches {
    /// After a write of an admissionregistration.k8s.io object through this server.
    pub async fn invalidate(&self) {
        self.validating_webhooks.invalidate().await;
        self.mutating_webhooks.invalidate().await;
        self.policies.invalidate().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_store::{EmbeddedStore, SealingKey};
    use std::time::Duration;

    async fn count(store: &Arc<dyn Store>, prefix: &str) -> ApiResult<(usize, i64)> {
        let res = store.list(prefix).await?;
        Ok((res.items.len(), res.revision))
    }

    #[tokio::test]
    async fn cached_until_a_change_under_the_prefix_or_an_invalidation() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap(),
        );
        let cache: WatchCache<usize> = WatchCache::new("/p/");
        let get = || cache.get(&store, || count(&store, "/p/"));
        assert_eq!(*get().await.unwrap(), 0);
        assert_eq!(*get().await.unwrap(), 0);
        assert_eq!(cache.loads(), 1, "read once");
        // A write elsewhere keeps it.
        store.create("/q/a", b"{}").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*get().await.unwrap(), 0);
        assert_eq!(cache.loads(), 1);
        // A write under the prefix, straight to the store (as another master's): seen once the
        // watch reports it.
        store.create("/p/a", b"{}").await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while *get().await.unwrap() != 1 {
            assert!(std::time::Instant::now() < deadline, "change never seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(cache.loads(), 2);
        // An invalidation reloads at once.
        cache.invalidate().await;
        assert_eq!(*get().await.unwrap(), 1);
        assert_eq!(cache.loads(), 3);
    }
}
