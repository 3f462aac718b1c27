//! A per-object work queue (client-go's rate-limited `workqueue`, kube-rs' `Controller`
//! scheduler): the keys (`namespace/name`) of objects whose cache entry changed are queued once
//! (a key queued again before it is taken is not duplicated), a key whose sync failed comes back
//! after an exponential backoff, and a periodic resync queues every key, so a controller works on
//! the objects that changed instead of the whole collection on every wake.
//!
//! An [`Informer`](crate::informer::Informer) feeds a queue through
//! [`Informer::queue_keys`](crate::informer::Informer::queue_keys): every applied event queues its
//! object's key, and a re-list queues every key before and after it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The first retry after a failed sync; each further failure doubles it up to [`Backoff::max`].
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(200);
/// The longest retry delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How failed keys come back.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: DEFAULT_BACKOFF_BASE,
            max: DEFAULT_BACKOFF_MAX,
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        self.base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[derive(Default)]
struct State {
    /// Keys ready to be taken, in the order they were first queued.
    ready: VecDeque<String>,
    /// The keys in `ready` (dedup).
    queued: HashSet<String>,
    /// Keys due later (requeued after a failure or asked for later): due time -> keys.
    delayed: BTreeMap<Instant, Vec<String>>,
    /// Consecutive failures per key (reset by [`WorkQueue::forget`]).
    failures: HashMap<String, u32>,
}

impl State {
    fn push(&mut self, key: String) {
        if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
        }
    }

    /// Move the delayed keys that are due to `ready`.
    fn promote(&mut self, now: Instant) {
        let later = self.delayed.split_off(&(now + Duration::from_nanos(1)));
        let due = std::mem::replace(&mut self.delayed, later);
        for k in due.into_values().flatten() {
            self.push(k);
        }
    }
}

/// A deduplicating queue of object keys with retry backoff. Cheap to share (`Arc`).
pub struct WorkQueue {
    state: Mutex<State>,
    backoff: Backoff,
    /// Poked whenever a key becomes ready (a controller's wake-up).
    notify: Mutex<Vec<std::sync::Weak<Notify>>>,
}

impl Default for WorkQueue {
    fn default() -> Self {
        WorkQueue::new(Backoff::default())
    }
}

impl WorkQueue {
    pub fn new(backoff: Backoff) -> Self {
        WorkQueue {
            state: Mutex::new(State::default()),
            backoff,
            notify: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self) {
        let mut ns = self.notify.lock().unwrap_or_else(|p| p.into_inner());
        ns.retain(|w| match w.upgrade() {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        });
    }

    /// Poke `n` whenever a key is queued.
    pub fn subscribe(&self, n: &Arc<Notify>) {
        self.notify
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(n));
    }

    /// Queue `key` (no-op if it is already waiting to be taken).
    pub fn add(&self, key: impl Into<String>) {
        self.lock().push(key.into());
        self.wake();
    }

    /// Queue every key of `keys`.
    pub fn add_all<I: IntoIterator<Item = String>>(&self, keys: I) {
        {
            let mut st = self.lock();
            for k in keys {
                st.push(k);
            }
        }
        self.wake();
    }

    /// Queue `key` once `after` has passed.
    pub fn add_after(&self, key: impl Into<String>, after: Duration) {
        let key = key.into();
        if after.is_zero() {
            return self.add(key);
        }
        self.lock()
            .delayed
            .entry(Instant::now() + after)
            .or_default()
            .push(key);
    }

    /// The sync of `key` failed: queue it again after its backoff (which grows with each
    /// consecutive failure). Returns the delay.
    pub fn requeue_failed(&self, key: impl Into<String>) -> Duration {
        let key = key.into();
        let delay = {
            let mut st = self.lock();
            let n = st.failures.entry(key.clone()).or_default();
            *n = n.saturating_add(1);
            let d = self.backoff.delay(*n);
            st.delayed.entry(Instant::now() + d).or_default().push(key);
            d
        };
        delay
    }

    /// The sync of `key` succeeded: its backoff starts over.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// Consecutive failures recorded for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Take every key that is ready now (delayed keys that are due included), oldest first.
    /// A key taken may be queued again while it is being worked on; it is then taken again.
    pub fn take_ready(&self) -> Vec<String> {
        let mut st = self.lock();
        st.promote(Instant::now());
        st.queued.clear();
        st.ready.drain(..).collect()
    }

    /// When the next delayed key is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.lock().delayed.keys().next().copied()
    }

    /// Keys ready to be taken now (delayed ones not counted).
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// When a controller working from a queue must go over every key again (upstream's resync
/// period): due at start and then every `period`.
#[derive(Debug)]
pub struct Resync {
    period: Duration,
    last: Option<Instant>,
}

impl Resync {
    pub fn new(period: Duration) -> Self {
        Resync { period, last: None }
    }

    /// Whether a full pass is due now; if so, it counts as done from now.
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.period => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }

    /// Time left until the next full pass.
    pub fn remaining(&self) -> Duration {
        match self.last {
            Some(t) => self.period.saturating_sub(t.elapsed()),
            None => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_while_queued_and_taken_in_order() {
        let q = WorkQueue::default();
        q.add("ns/a");
        q.add("ns/b");
        q.add("ns/a");
        q.add_all(["ns/c".to_string(), "ns/b".to_string()]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.take_ready(), vec!["ns/a", "ns/b", "ns/c"]);
        assert!(q.is_empty());
        // Queued again after it was taken (it changed while being worked on): taken again.
        q.add("ns/a");
        assert_eq!(q.take_ready(), vec!["ns/a"]);
        assert!(q.take_ready().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_keys_come_back_after_a_growing_backoff_until_forgotten() {
        let q = WorkQueue::new(Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(350),
        });
        assert_eq!(q.requeue_failed("k"), Duration::from_millis(100));
        assert!(q.take_ready().is_empty(), "not before its backoff");
        assert!(q.next_due().is_some());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(q.take_ready(), vec!["k"]);
        assert_eq!(q.requeue_failed("k"), Duration::from_millis(200));
        assert_eq!(q.requeue_failed("k"), Duration::from_millis(350), "capped");
        assert_eq!(q.failures("k"), 3);
        tokio::time::advance(Duration::from_millis(199)).await;
        assert!(q.take_ready().is_empty());
        tokio::time::advance(Duration::from_millis(1)).await;
        // Two retries pending for one key: it is taken once.
        tokio::time::advance(Duration::from_millis(150)).await;
        assert_eq!(q.take_ready(), vec!["k"]);
        q.forget("k");
        assert_eq!(q.failures("k"), 0);
        assert_eq!(q.requeue_failed("k"), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_and_wakeups() {
        let q = WorkQueue::default();
        let n = Arc::new(Notify::new());
        q.subscribe(&n);
        q.add_after("later", Duration::from_secs(1));
        assert!(q.take_ready().is_empty());
        q.add("now");
        // The add poked the subscriber.
        tokio::time::timeout(Duration::from_millis(10), n.notified())
            .await
            .expect("woken by add");
        assert_eq!(q.take_ready(), vec!["now"]);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(q.take_ready(), vec!["later"]);
    }

    #[tokio::test(start_paused = true)]
    async fn resync_is_due_at_start_and_every_period() {
        let mut r = Resync::new(Duration::from_secs(30));
        assert_eq!(r.remaining(), Duration::ZERO);
        assert!(r.due());
        assert!(!r.due());
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(!r.due());
        assert_eq!(r.remaining(), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(r.due());
    }
}
