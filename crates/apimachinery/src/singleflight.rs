//! Keyed read coalescing ("singleflight") that stays linearizable.
//!
//! Many callers read the same thing at the same time: the master's controllers list every pod on
//! every change, an agent starting 20 pods reads their namespace's `kube-root-ca.crt` 20 times.
//! [`Singleflight::run`] lets them share one read, but only a read that *started at or after* the
//! caller's `fresh_after` instant: every write acknowledged before that instant is then in the
//! result, exactly as in a read of the caller's own. A read that started earlier is never handed
//! out; its latecomers wait for it to end and share the next one.
//!
//! Per key, one read runs at a time; callers queue (FIFO). When the last caller of a key leaves,
//! the key's result is dropped: nothing is cached between bursts, so there is nothing to
//! invalidate and no large value kept alive. Keys separate what callers may see (e.g. a namespace
//! and a name), so a caller only ever receives the result of a read of its own key.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Slot<V> {
    /// Callers inside [`Singleflight::run`] for this key (guarded by the map's lock).
    callers: usize,
    /// One read at a time per key; callers queue here.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// The newest finished read: when it started, and its result.
    last: Arc<Mutex<Option<(Instant, V)>>>,
}

/// Coalesced reads by key (see the module docs). `V` is the whole result, errors included: a
/// failed read is shared with the callers that joined it, and not kept.
pub struct Singleflight<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
    started: AtomicU64,
    joined: AtomicU64,
}

impl<K, V> Default for Singleflight<K, V> {
    fn default() -> Self {
        Singleflight {
            slots: Mutex::new(HashMap::new()),
            started: AtomicU64::new(0),
            joined: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Singleflight<K, V> {
    /// The result of a read of `key` that started at or after `fresh_after`: one that another
    /// caller ran, or `fetch` run by this caller.
    pub async fn run<F, Fut>(&self, key: K, fresh_after: Instant, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let (turn, last) = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
                callers: 0,
                turn: Arc::default(),
                last: Arc::default(),
            });
            slot.callers += 1;
            (slot.turn.clone(), slot.last.clone())
        };
        // Leaves the key when this call ends, also when the caller's future is dropped midway.
        let _leave = Leave { flights: self, key };
        let _turn = turn.lock().await;
        let done = last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(at, _)| *at >= fresh_after)
            .map(|(_, v)| v.clone());
        if let Some(v) = done {
            self.joined.fetch_add(1, Ordering::Relaxed);
            return v;
        }
        self.started.fetch_add(1, Ordering::Relaxed);
        let at = Instant::now();
        let v = fetch().await;
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, v.clone()));
        v
    }

    /// (reads started, reads joined) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.started.load(Ordering::Relaxed),
            self.joined.load(Ordering::Relaxed),
        )
    }

    /// Keys with a caller inside [`Singleflight::run`] right now.
    pub fn active_keys(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

struct Leave<'a, K: Eq + Hash, V> {
    flights: &'a Singleflight<K, V>,
    key: K,
}

impl<K: Eq + Hash, V> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        let mut slots = self.flights.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(&self.key) {
            slot.callers -= 1;
            if slot.callers == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    type Key = (&'static str, String);

    fn key(ns: &str) -> Key {
        ("configmap", ns.to_string())
    }

    /// A read that counts its calls and returns `v` after a short wait.
    async fn read(calls: &AtomicUsize, v: u32) -> Result<u32, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(v)
    }

    #[tokio::test]
    async fn callers_that_asked_before_a_read_started_share_it() {
        let f: Singleflight<Key, Result<u32, String>> = Singleflight::default();
        let calls = AtomicUsize::new(0);
        let since = Instant::now();
        let calls = &calls;
        let all = (0..20).map(|i| f.run(key("a"), since, move || read(calls, i)));
        let out = futures::future::join_all(all).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(out.iter().all(|r| r == &Ok(0)), "{out:?}");
        assert_eq!(f.counts(), (1, 19));
        assert_eq!(f.active_keys(), 0, "nothing kept once the callers left");
    }

    #[tokio::test]
    async fn a_read_that_started_before_the_caller_asked_is_never_handed_out() {
        let f: Arc<Singleflight<Key, Result<u32, String>>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let first = {
            let (f, calls) = (f.clone(), calls.clone());
            tokio::spawn(async move { f.run(key("a"), Instant::now(), || read(&calls, 1)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Asked while the first read runs: waits for it, then reads again (and the two
        // latecomers share that second read).
        let (b, c) = tokio::join!(
            f.run(key("a"), Instant::now(), || read(&calls, 2)),
            f.run(key("a"), Instant::now(), || read(&calls, 3))
        );
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!((b, c), (Ok(2), Ok(2)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // After everyone left, a new call reads afresh even with an old `fresh_after`.
        let long_ago = Instant::now() - Duration::from_secs(60);
        assert_eq!(f.run(key("a"), long_ago, || read(&calls, 4)).await, Ok(4));
    }

    #[tokio::test]
    async fn another_key_never_gets_this_keys_result() {
        let f: Singleflight<Key, Result<u32, String>> = Singleflight::default();
        let calls = AtomicUsize::new(0);
        let since = Instant::now();
        let (a, b) = tokio::join!(
            f.run(key("a"), since, || read(&calls, 1)),
            f.run(key("b"), since, || read(&calls, 2))
        );
        assert_eq!((a, b), (Ok(1), Ok(2)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_error_is_shared_with_its_joiners_and_not_kept() {
        let f: Singleflight<Key, Result<u32, String>> = Singleflight::default();
        let calls = AtomicUsize::new(0);
        let since = Instant::now();
        let fail = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err("boom".to_string())
        };
        let (a, b) = tokio::join!(
            f.run(key("a"), since, fail),
            f.run(key("a"), since, || read(&calls, 9))
        );
        assert_eq!((a, b), (Err("boom".into()), Err("boom".into())));
        assert_eq!(f.run(key("a"), since, || read(&calls, 7)).await, Ok(7));
    }

    #[tokio::test]
    async fn a_caller_dropped_midway_does_not_block_the_others() {
        let f: Singleflight<Key, Result<u32, String>> = Singleflight::default();
        let calls = AtomicUsize::new(0);
        let since = Instant::now();
        let slow = f.run(key("a"), since, || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(0)
        });
        // A second caller queues behind the slow read; the first caller then gives up (its
        // future is dropped), which must hand the turn on.
        let waiter = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            f.run(key("a"), since, || read(&calls, 5)).await
        };
        let gave_up = tokio::time::timeout(Duration::from_millis(30), slow);
        let (out, gave_up) = tokio::join!(waiter, gave_up);
        assert!(gave_up.is_err());
        assert_eq!(out, Ok(5));
        assert_eq!(f.active_keys(), 0);
    }
}
