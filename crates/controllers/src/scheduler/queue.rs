//! The scheduler's bookkeeping, kept between passes (upstream's `SchedulingQueue` and scheduler
//! cache), free of I/O so it can be tested on its own:
//!
//! - [`SchedQueue`]: pending pods waiting for a decision. `active` (upstream activeQ) holds pods
//!   to try now in (priority desc, creation, key) order, each key once; `backoff` (backoffQ)
//!   holds pods whose binding failed until their backoff ends; `unschedulable`
//!   (unschedulablePods) holds pods that fit nowhere: they go back to `active` after the cluster
//!   changed (a Node changed, or a pod released its resources) once their backoff (1 s doubling
//!   to 10 s) has passed, and at the latest after `max_unschedulable`.
//! - [`SchedCache`]: what each node has committed: the requests of every bound, unfinished pod,
//!   plus the pods this scheduler decided but the pod cache does not show bound yet (assumed,
//!   upstream `AssumePod`), so decisions taken while earlier bindings are still in flight never
//!   double-book a node. It is kept up to date per changed pod (no pass over every pod).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::Resources;

/// First retry delay of an unschedulable pod or a failed binding (upstream
/// `podInitialBackoffDuration`).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay (upstream `podMaxBackoffDuration`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where a pod sorts in the active queue: higher priority first, then older, then by key.
type Order = (Reverse<i64>, String, String);

fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(10);
    INITIAL_BACKOFF
        .checked_mul(1u32 << exp)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

#[derive(Debug)]
struct Parked {
    order: Order,
    since: Instant,
    attempts: u32,
}

/// Pending pods by key (`namespace/name`).
#[derive(Debug)]
pub struct SchedQueue {
    active: BTreeSet<Order>,
    /// key -> its place in `active`.
    active_keys: HashMap<String, Order>,
    /// Binding failed: key -> (due, order, attempts).
    backoff: HashMap<String, (Instant, Order, u32)>,
    unschedulable: HashMap<String, Parked>,
    /// Failed attempts per key, kept while the pod is pending (reset when it leaves).
    attempts: HashMap<String, u32>,
    /// When the cluster last changed in a way that may make an unschedulable pod fit.
    changed_at: Option<Instant>,
    /// Unschedulable pods are retried at least this often.
    max_unschedulable: Duration,
}

impl SchedQueue {
    pub fn new(max_unschedulable: Duration) -> Self {
        SchedQueue {
            active: BTreeSet::new(),
            active_keys: HashMap::new(),
            backoff: HashMap::new(),
            unschedulable: HashMap::new(),
            attempts: HashMap::new(),
            changed_at: None,
            max_unschedulable,
        }
    }

    /// A pending pod was seen (added or changed). New pods go to `active`; a pod already waiting
    /// (in any queue) stays where it is, so its own status updates do not make it spin.
    pub fn add(&mut self, key: &str, priority: i64, created: &str) {
        if self.contains(key) {
            return;
        }
        let order = (Reverse(priority), created.to_string(), key.to_string());
        self.active.insert(order.clone());
        self.active_keys.insert(key.to_string(), order);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.active_keys.contains_key(key)
            || self.backoff.contains_key(key)
            || self.unschedulable.contains_key(key)
    }

    /// The pod is gone, bound or not ours any more.
    pub fn delete(&mut self, key: &str) {
        if let Some(o) = self.active_keys.remove(key) {
            self.active.remove(&o);
        }
        self.backoff.remove(key);
        self.unschedulable.remove(key);
        self.attempts.remove(key);
    }

    /// Take every active pod, in order.
    pub fn pop_all(&mut self) -> Vec<String> {
        self.active_keys.clear();
        std::mem::take(&mut self.active)
            .into_iter()
            .map(|(_, _, k)| k)
            .collect()
    }

    fn bump(&mut self, key: &str) -> u32 {
        let a = self.attempts.entry(key.to_string()).or_default();
        *a = a.saturating_add(1);
        *a
    }

    /// The pod fits no node: park it until the cluster changes.
    pub fn unschedulable(&mut self, key: &str, priority: i64, created: &str, now: Instant) {
        self.delete_waiting(key);
        let attempts = self.bump(key);
        self.unschedulable.insert(
            key.to_string(),
            Parked {
                order: (Reverse(priority), created.to_string(), key.to_string()),
                since: now,
                attempts,
            },
        );
    }

    /// Its binding failed (or it waits for something outside the cluster state): try again
    /// after `delay`, or after its backoff when `None`.
    pub fn backoff(
        &mut self,
        key: &str,
        priority: i64,
        created: &str,
        now: Instant,
        delay: Option<Duration>,
    ) {
        self.delete_waiting(key);
        let attempts = self.bump(key);
        let due = now + delay.unwrap_or_else(|| backoff(attempts));
        self.backoff.insert(
            key.to_string(),
            (
                due,
                (Reverse(priority), created.to_string(), key.to_string()),
                attempts,
            ),
        );
    }

    fn delete_waiting(&mut self, key: &str) {
        if let Some(o) = self.active_keys.remove(key) {
            self.active.remove(&o);
        }
        self.backoff.remove(key);
        self.unschedulable.remove(key);
    }

    /// Something changed that may let unschedulable pods fit (upstream
    /// `MoveAllToActiveOrBackoffQueue`).
    pub fn cluster_changed(&mut self, now: Instant) {
        self.changed_at = Some(now);
    }

    /// Move what is due to `active`: backed-off pods whose delay passed, unschedulable pods
    /// whose backoff passed if the cluster changed since they were parked, and those parked
    /// longer than `max_unschedulable`.
    pub fn flush(&mut self, now: Instant) {
        let due: Vec<String> = self
            .backoff
            .iter()
            .filter(|(_, (at, _, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some((_, order, _)) = self.backoff.remove(&k) {
                self.active.insert(order.clone());
                self.active_keys.insert(k, order);
            }
        }
        let changed = self.changed_at;
        let max = self.max_unschedulable;
        let due: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|(_, p)| {
                let waited = now.saturating_duration_since(p.since);
                waited >= max
                    || (changed.is_some_and(|c| c > p.since) && waited >= backoff(p.attempts))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(p) = self.unschedulable.remove(&k) {
                self.active.insert(p.order.clone());
                self.active_keys.insert(k, p.order);
            }
        }
    }

    /// When `flush` may next move something (None: nothing waits on time).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        let b = self.backoff.values().map(|(at, _, _)| *at).min();
        let u = self
            .unschedulable
            .values()
            .map(|p| {
                let by_change = match self.changed_at {
                    Some(c) if c > p.since => p.since + backoff(p.attempts),
                    _ => p.since + self.max_unschedulable,
                };
                by_change.min(p.since + self.max_unschedulable)
            })
            .min();
        match (b, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|t| t.max(now))
    }

    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    pub fn unschedulable_len(&self) -> usize {
        self.unschedulable.len()
    }

    pub fn backoff_len(&self) -> usize {
        self.backoff.len()
    }

    /// Every key waiting in any queue.
    pub fn keys(&self) -> Vec<String> {
        self.active_keys
            .keys()
            .chain(self.backoff.keys())
            .chain(self.unschedulable.keys())
            .cloned()
            .collect()
    }
}

/// One pod's share of a node.
#[derive(Debug, Clone)]
struct Counted {
    uid: String,
    node: String,
    requests: Resources,
    /// Decided and bound (or being bound) by this scheduler, not yet seen bound in the pod
    /// cache: since when.
    assumed: Option<Instant>,
}

/// Requests committed per node: bound pods plus assumed ones.
#[derive(Debug, Default)]
pub struct SchedCache {
    pods: HashMap<String, Counted>,
    used: HashMap<String, Resources>,
    assumed: HashSet<String>,
}

impl SchedCache {
    /// The committed requests per node.
    pub fn used(&self) -> &HashMap<String, Resources> {
        &self.used
    }

    /// The pod cache shows `key` bound to `node` and not finished: count it there (replacing
    /// whatever it counted as before, an assumption included).
    pub fn bound(&mut self, key: &str, uid: &str, node: &str, requests: Resources) {
        if let Some(c) = self.pods.get(key) {
            if c.assumed.is_none() && c.uid == uid && c.node == node {
                return; // Requests of a bound pod do not change.
            }
        }
        self.remove(key);
        self.add(
            key,
            Counted {
                uid: uid.to_string(),
                node: node.to_string(),
                requests,
                assumed: None,
            },
        );
    }

    /// This scheduler decided `node` for the pod (its binding is about to be written).
    pub fn assume(&mut self, key: &str, uid: &str, node: &str, requests: Resources, now: Instant) {
        self.remove(key);
        self.assumed.insert(key.to_string());
        self.add(
            key,
            Counted {
                uid: uid.to_string(),
                node: node.to_string(),
                requests,
                assumed: Some(now),
            },
        );
    }

    /// Whether the pod with this uid is assumed (decided, not yet seen bound).
    pub fn is_assumed(&self, key: &str, uid: &str) -> bool {
        self.pods
            .get(key)
            .is_some_and(|c| c.assumed.is_some() && c.uid == uid)
    }

    /// Where the pod counts, if anywhere.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.pods.get(key).map(|c| c.node.as_str())
    }

    /// The pod no longer counts (gone, finished, or its binding failed); whether it did.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(c) = self.pods.remove(key) else {
            return false;
        };
        self.assumed.remove(key);
        if let Some(u) = self.used.get_mut(&c.node) {
            u.sub(&c.requests);
            if u.pods <= 0 && u.cpu <= 0 && u.memory <= 0 && u.host_ports.is_empty() {
                self.used.remove(&c.node);
            }
        }
        true
    }

    /// Assumptions older than `ttl` (the pod cache never showed them bound): dropped, and
    /// their keys returned so the pods are looked at again.
    pub fn expire(&mut self, now: Instant, ttl: Duration) -> Vec<String> {
        let old: Vec<String> = self
            .assumed
            .iter()
            .filter(|k| {
                self.pods
                    .get(*k)
                    .and_then(|c| c.assumed)
                    .is_some_and(|at| now.saturating_duration_since(at) >= ttl)
            })
            .cloned()
            .collect();
        for k in &old {
            self.remove(k);
        }
        old
    }

    /// Every pod key counted.
    pub fn keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    pub fn assumed_len(&self) -> usize {
        self.assumed.len()
    }

    fn add(&mut self, key: &str, c: Counted) {
        self.used
            .entry(c.node.clone())
            .or_default()
            .add(&c.requests);
        self.pods.insert(key.to_string(), c);
    }
}

#[cfg(test)]
mod tests {
    use super::super::HostPort;
    use super::*;

    fn res(cpu: i128) -> Resources {
        Resources {
            cpu,
            memory: 0,
            pods: 1,
            host_ports: Vec::new(),
        }
    }

    #[test]
    fn active_queue_dedups_and_orders_by_priority_then_age() {
        let mut q = SchedQueue::new(Duration::from_secs(60));
        q.add("ns/b", 0, "2026-01-01T00:00:02Z");
        q.add("ns/a", 0, "2026-01-01T00:00:03Z");
        q.add("ns/c", 10, "2026-01-01T00:00:09Z");
        q.add("ns/b", 0, "2026-01-01T00:00:02Z");
        q.add("ns/b", 5, "2026-01-01T00:00:02Z");
        assert_eq!(q.active_len(), 3, "a key is queued once");
        assert_eq!(q.pop_all(), vec!["ns/c", "ns/b", "ns/a"]);
        assert!(q.pop_all().is_empty());
        assert!(!q.contains("ns/b"));
    }

    #[test]
    fn unschedulable_pods_wait_for_a_cluster_change_and_their_backoff() {
        let t0 = Instant::now();
        let mut q = SchedQueue::new(Duration::from_secs(60));
        q.add("ns/p", 0, "t");
        assert_eq!(q.pop_all(), vec!["ns/p"]);
        q.unschedulable("ns/p", 0, "t", t0);
        // Its own status update (PodScheduled=False) does not requeue it.
        q.add("ns/p", 0, "t");
        assert_eq!(q.active_len(), 0);
        // Nothing changed: it stays parked however long we look (below the maximum).
        q.flush(t0 + Duration::from_secs(30));
        assert_eq!(q.active_len(), 0);
        assert_eq!(q.next_due(t0), Some(t0 + Duration::from_secs(60)));
        // The cluster changed: it moves once its 1 s backoff passed.
        q.cluster_changed(t0 + Duration::from_millis(100));
        q.flush(t0 + Duration::from_millis(500));
        assert_eq!(q.active_len(), 0, "still backing off");
        assert_eq!(q.next_due(t0), Some(t0 + INITIAL_BACKOFF));
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.pop_all(), vec!["ns/p"]);
        // A second failure doubles the backoff.
        let t1 = t0 + Duration::from_secs(2);
        q.unschedulable("ns/p", 0, "t", t1);
        q.cluster_changed(t1 + Duration::from_millis(1));
        q.flush(t1 + Duration::from_millis(1500));
        assert_eq!(q.active_len(), 0);
        q.flush(t1 + Duration::from_secs(2));
        assert_eq!(q.active_len(), 1);
        // Without any change it is retried after the maximum.
        let t2 = t1 + Duration::from_secs(3);
        q.pop_all();
        q.unschedulable("ns/p", 0, "t", t2);
        q.flush(t2 + Duration::from_secs(59));
        assert_eq!(q.active_len(), 0);
        q.flush(t2 + Duration::from_secs(60));
        assert_eq!(q.active_len(), 1);
        // Deleting forgets it everywhere, attempts included.
        q.delete("ns/p");
        assert!(!q.contains("ns/p"));
        assert_eq!(q.unschedulable_len() + q.backoff_len() + q.active_len(), 0);
    }

    #[test]
    fn failed_bindings_come_back_after_a_growing_backoff() {
        let t0 = Instant::now();
        let mut q = SchedQueue::new(Duration::from_secs(60));
        q.backoff("ns/p", 0, "t", t0, None);
        q.flush(t0 + Duration::from_millis(999));
        assert_eq!(q.active_len(), 0);
        assert_eq!(q.next_due(t0), Some(t0 + Duration::from_secs(1)));
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.pop_all(), vec!["ns/p"]);
        q.backoff("ns/p", 0, "t", t0, None);
        q.flush(t0 + Duration::from_millis(1999));
        assert_eq!(q.active_len(), 0);
        q.flush(t0 + Duration::from_secs(2));
        assert_eq!(q.active_len(), 1);
        // An explicit delay (waiting for volume binding) wins over the backoff.
        q.pop_all();
        q.backoff("ns/p", 0, "t", t0, Some(Duration::from_millis(200)));
        q.flush(t0 + Duration::from_millis(200));
        assert_eq!(q.active_len(), 1);
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn cache_counts_bound_and_assumed_pods_once() {
        let now = Instant::now();
        let mut c = SchedCache::default();
        c.assume("ns/a", "u1", "n1", res(100), now);
        c.assume("ns/b", "u2", "n1", res(100), now);
        assert_eq!(c.used()["n1"].cpu, 200);
        assert!(c.is_assumed("ns/a", "u1"));
        assert!(!c.is_assumed("ns/a", "other-uid"));
        // The cache shows it bound where we assumed it: still counted once.
        c.bound("ns/a", "u1", "n1", res(100));
        assert_eq!(c.used()["n1"].cpu, 200);
        assert!(!c.is_assumed("ns/a", "u1"));
        assert_eq!(c.assumed_len(), 1);
        // Bound elsewhere (another scheduler won): moves.
        c.bound("ns/b", "u2", "n2", res(100));
        assert_eq!((c.used()["n1"].cpu, c.used()["n2"].cpu), (100, 100));
        // Gone: released; an empty node leaves the map.
        assert!(c.remove("ns/b"));
        assert!(!c.remove("ns/b"));
        assert!(!c.used().contains_key("n2"));
        assert_eq!(c.node_of("ns/a"), Some("n1"));
    }

    #[test]
    fn stale_assumptions_expire() {
        let t0 = Instant::now();
        let mut c = SchedCache::default();
        c.assume("ns/a", "u1", "n1", res(100), t0);
        c.assume("ns/b", "u2", "n1", res(100), t0 + Duration::from_secs(20));
        c.bound("ns/c", "u3", "n1", res(100));
        assert_eq!(
            c.expire(t0 + Duration::from_secs(29), ASSUME),
            Vec::<String>::new()
        );
        assert_eq!(c.expire(t0 + Duration::from_secs(30), ASSUME), vec!["ns/a"]);
        assert_eq!(c.used()["n1"].cpu, 200);
        assert_eq!(c.assumed_len(), 1);
    }
    const ASSUME: Duration = Duration::from_secs(30);

    #[test]
    fn host_ports_are_released_one_binding_at_a_time() {
        let now = Instant::now();
        let mut c = SchedCache::default();
        let hp = HostPort {
            ip: "0.0.0.0".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let mut with_port = res(0);
        with_port.host_ports.push(hp.clone());
        c.assume("ns/a", "u1", "n1", with_port.clone(), now);
        c.assume("ns/b", "u2", "n1", res(0), now);
        assert_eq!(c.used()["n1"].host_ports, vec![hp]);
        c.remove("ns/b");
        assert_eq!(c.used()["n1"].host_ports.len(), 1);
        c.remove("ns/a");
        assert!(!c.used().contains_key("n1"));
    }
}
