//! The node lifecycle controller's bookkeeping, free of I/O so it can be tested with a manual
//! clock: when each node was last *heard* ([`HealthMap`], upstream's `nodeHealthMap` and its
//! `probeTimestamp`), how disrupted each zone is ([`compute_zone_state`]), the per-zone eviction
//! rate limiters ([`Zones`], upstream's `zoneNoExecuteTainter` with `SwapLimiter`), and whether
//! the master itself is lagging ([`LagMonitor`]), in which case nobody is slashed.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// The zone label (upstream `topology.kubernetes.io/zone`); nodes without it share one zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The region label; upstream's zone key is `region:\0:zone`.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// The controller's monotonic clock (injectable for tests).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Instant;
}

/// The process's monotonic clock.
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to (tests).
pub struct ManualClock(Mutex<Instant>);

impl ManualClock {
    pub fn new() -> Self {
        ManualClock(Mutex::new(Instant::now()))
    }

    pub fn advance(&self, d: Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += d;
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0
            .lock()
            .map(|g| *g)
            .unwrap_or_else(|e| *e.into_inner())
    }
}

/// Eviction and slashing settings (upstream kube-controller-manager flag names in brackets).
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionConfig {
    /// Nodes per second whose pods may be evicted in a healthy zone (`--node-eviction-rate`).
    pub eviction_rate: f64,
    /// Nodes per second in a partially disrupted large zone (`--secondary-node-eviction-rate`).
    pub secondary_eviction_rate: f64,
    /// Fraction of not-Ready nodes (at least 3) that makes a zone partially disrupted
    /// (`--unhealthy-zone-threshold`).
    pub unhealthy_zone_threshold: f64,
    /// A partially disrupted zone with more nodes than this evicts at the secondary rate, a
    /// smaller one not at all (`--large-cluster-size-threshold`).
    pub large_cluster_size_threshold: usize,
    /// How long a node must stay silent beyond the grace period (and after its eviction) before
    /// its stake is slashed; `None`: twice the grace period.
    pub slash_delay: Option<Duration>,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            unhealthy_zone_threshold: 0.55,
            large_cluster_size_threshold: 50,
            slash_delay: None,
        }
    }
}

impl EvictionConfig {
    pub fn slash_delay(&self, grace: Duration) -> Duration {
        self.slash_delay.unwrap_or(grace * 2)
    }
}

/// How disrupted a zone is (upstream `ZoneState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

impl fmt::Display for ZoneState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ZoneState::Normal => "Normal",
            ZoneState::PartialDisruption => "PartialDisruption",
            ZoneState::FullDisruption => "FullDisruption",
        })
    }
}

/// Upstream `ComputeZoneState`: no Ready node is a full disruption; more than two not-Ready
/// nodes making at least `threshold` of the zone is a partial one.
pub fn compute_zone_state(ready: usize, not_ready: usize, threshold: f64) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Eviction rate of a zone in `state` with `size` nodes (upstream `setLimiterInZone`: a fully
/// disrupted zone evicts at the normal rate while another zone is healthy; a partially
/// disrupted one at the secondary rate when large, else not at all).
pub fn zone_qps(state: ZoneState, size: usize, cfg: &EvictionConfig) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => cfg.eviction_rate,
        ZoneState::PartialDisruption if size > cfg.large_cluster_size_threshold => {
            cfg.secondary_eviction_rate
        }
        ZoneState::PartialDisruption => 0.0,
    }
}

/// Token bucket with burst 1 (upstream `EvictionRateLimiterBurst`), starting full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    qps: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(qps: f64, now: Instant) -> Self {
        TokenBucket {
            qps,
            tokens: 1.0,
            last: now,
        }
    }

    pub fn qps(&self) -> f64 {
        self.qps
    }

    pub fn try_accept(&mut self, now: Instant) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.qps).min(1.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether a token is available now (without taking it).
    fn has_token(&self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.qps > 0.0 && self.tokens + dt * self.qps >= 1.0
    }
}

/// One zone's eviction queue and limiter.
#[derive(Debug)]
struct Zone {
    state: Option<ZoneState>,
    limiter: TokenBucket,
    queue: VecDeque<String>,
}

/// What [`Zones::update`] decided about the cluster as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruption {
    /// Business as usual.
    None,
    /// Every zone just became fully disrupted: the master assumes it is the one cut off, stops
    /// all evictions and takes the NoExecute taints off every node.
    Entered,
    /// Some node is Ready again after a master disruption: every probe timestamp is reset.
    Exited,
}

/// Per-zone states, eviction queues and rate limiters.
#[derive(Debug, Default)]
pub struct Zones {
    zones: HashMap<String, Zone>,
}

/// A zone's census for one pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct Census {
    pub ready: usize,
    pub not_ready: usize,
}

impl Zones {
    /// Upstream `handleDisruption`: recompute each zone's state and swap its limiter.
    pub fn update(
        &mut self,
        census: &HashMap<String, Census>,
        cfg: &EvictionConfig,
        now: Instant,
    ) -> Disruption {
        let new: HashMap<&String, (ZoneState, usize)> = census
            .iter()
            .map(|(z, c)| {
                (
                    z,
                    (
                        compute_zone_state(c.ready, c.not_ready, cfg.unhealthy_zone_threshold),
                        c.ready + c.not_ready,
                    ),
                )
            })
            .collect();
        self.zones.retain(|z, _| census.contains_key(z));
        for z in census.keys() {
            self.zones.entry(z.clone()).or_insert_with(|| Zone {
                state: None,
                limiter: TokenBucket::new(cfg.eviction_rate, now),
                queue: VecDeque::new(),
            });
        }
        let all_are = new.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        let all_were = self
            .zones
            .values()
            .all(|z| z.state == Some(ZoneState::FullDisruption));
        if all_are && all_were {
            return Disruption::None;
        }
        if all_are {
            for z in self.zones.values_mut() {
                swap_limiter(&mut z.limiter, 0.0, now);
                z.queue.clear();
                z.state = Some(ZoneState::FullDisruption);
            }
            return Disruption::Entered;
        }
        for (name, z) in self.zones.iter_mut() {
            let Some(&(state, size)) = new.get(name) else {
                continue;
            };
            if all_were || z.state != Some(state) {
                swap_limiter(&mut z.limiter, zone_qps(state, size, cfg), now);
                z.state = Some(state);
            }
        }
        if all_were {
            Disruption::Exited
        } else {
            Disruption::None
        }
    }

    pub fn state(&self, zone: &str) -> Option<ZoneState> {
        self.zones.get(zone).and_then(|z| z.state)
    }

    /// Whether every zone is fully disrupted (the master stops evicting).
    pub fn all_disrupted(&self) -> bool {
        !self.zones.is_empty()
            && self
                .zones
                .values()
                .all(|z| z.state == Some(ZoneState::FullDisruption))
    }

    /// Queue `node` for its NoExecute taint (once).
    pub fn enqueue(&mut self, zone: &str, node: &str) {
        if let Some(z) = self.zones.get_mut(zone) {
            if !z.queue.iter().any(|n| n == node) {
                z.queue.push_back(node.to_string());
            }
        }
    }

    /// Take `node` out of every queue (it is back, or gone).
    pub fn remove(&mut self, node: &str) {
        for z in self.zones.values_mut() {
            z.queue.retain(|n| n != node);
        }
    }

    pub fn queued(&self, node: &str) -> bool {
        self.zones
            .values()
            .any(|z| z.queue.iter().any(|n| n == node))
    }

    /// Upstream `doNoExecuteTaintingPass`: the nodes admitted by their zone's limiter now, in
    /// queue order. `still_wanted` drops nodes that recovered meanwhile without using a token.
    pub fn admit(&mut self, now: Instant, still_wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        for z in self.zones.values_mut() {
            while let Some(front) = z.queue.front() {
                if !still_wanted(front) {
                    z.queue.pop_front();
                    continue;
                }
                if !z.limiter.try_accept(now) {
                    break;
                }
                if let Some(n) = z.queue.pop_front() {
                    out.push(n);
                }
            }
        }
        out
    }
}

/// Upstream `SwapLimiter`: a new bucket at `qps`, drained when the old one was empty.
fn swap_limiter(limiter: &mut TokenBucket, qps: f64, now: Instant) {
    if limiter.qps() == qps {
        return;
    }
    let had_token = limiter.has_token(now);
    let mut fresh = TokenBucket::new(qps, now);
    if !had_token {
        fresh.try_accept(now);
    }
    *limiter = fresh;
}

/// The zone key of a node: region and zone labels (empty when unlabelled).
pub fn zone_of(node: &serde_json::Value) -> String {
    let labels = &node["metadata"]["labels"];
    let region = labels[REGION_LABEL].as_str().unwrap_or("");
    let zone = labels[ZONE_LABEL].as_str().unwrap_or("");
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\u{0}:{zone}")
    }
}

/// What this controller last observed of one node.
#[derive(Debug, Clone)]
struct NodeHealth {
    /// When this controller last saw the node prove liveness (or first saw it).
    probe: Instant,
    renew: Option<DateTime<Utc>>,
    heartbeat: Option<String>,
    /// Wall-clock delay between the node's renewTime and when this controller saw it, for its
    /// latest observed renewal, and when that was.
    delivery: Option<(Duration, Instant)>,
}

/// Upstream `nodeHealthMap`: silence is measured on this controller's monotonic clock from when
/// it *observed* a newer Lease `renewTime` or a changed Ready `lastHeartbeatTime`, never by
/// comparing a node-written time with the master's clock. A node first seen counts from then.
#[derive(Debug, Default)]
pub struct HealthMap {
    nodes: HashMap<String, NodeHealth>,
    /// When any node was last heard (or the map was started / reset).
    heard: Option<Instant>,
}

impl HealthMap {
    /// Record what is seen of `node` now; returns how long it has been silent.
    pub fn observe(
        &mut self,
        node: &str,
        renew: Option<DateTime<Utc>>,
        heartbeat: Option<&str>,
        wall: DateTime<Utc>,
        now: Instant,
    ) -> Duration {
        let heard = self.heard.get_or_insert(now);
        let Some(h) = self.nodes.get_mut(node) else {
            self.nodes.insert(
                node.to_string(),
                NodeHealth {
                    probe: now,
                    renew,
                    heartbeat: heartbeat.map(str::to_string),
                    delivery: None,
                },
            );
            return Duration::ZERO;
        };
        if heartbeat.is_some() && heartbeat != h.heartbeat.as_deref() {
            h.heartbeat = heartbeat.map(str::to_string);
            h.probe = now;
            *heard = (*heard).max(now);
        }
        if let Some(r) = renew {
            if h.renew.is_none_or(|old| old < r) {
                h.renew = Some(r);
                h.probe = now;
                *heard = (*heard).max(now);
                let lag = (wall - r).to_std().unwrap_or(Duration::ZERO);
                h.delivery = Some((lag, now));
            }
        }
        now.saturating_duration_since(h.probe)
    }

    /// Forget nodes that no longer exist.
    pub fn retain(&mut self, exists: impl Fn(&str) -> bool) {
        self.nodes.retain(|n, _| exists(n));
    }

    /// Give every node a fresh grace period from `now` (after a stall of this controller, or
    /// when leaving a master disruption), as upstream does on a restart.
    pub fn reset_all(&mut self, now: Instant) {
        for h in self.nodes.values_mut() {
            h.probe = now;
            h.delivery = None;
        }
        self.heard = Some(now);
    }

    /// Median delay between a node writing its renewTime and this controller seeing it, over
    /// the renewals observed within `window`; `None` without any. One node (or a few) lying
    /// about its renewTime cannot move the median.
    pub fn median_delivery(&self, now: Instant, window: Duration) -> Option<Duration> {
        let mut v: Vec<Duration> = self
            .nodes
            .values()
            .filter_map(|h| h.delivery)
            .filter(|(_, at)| now.saturating_duration_since(*at) <= window)
            .map(|(d, _)| d)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort();
        Some(v[v.len() / 2])
    }

    /// How long since any node was heard.
    pub fn unheard_for(&self, now: Instant) -> Duration {
        self.heard
            .map(|h| now.saturating_duration_since(h))
            .unwrap_or(Duration::ZERO)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Why the master considers itself too far behind to slash anyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterLag {
    /// This controller's passes stopped for `gap` (SIGSTOP, CPU starvation, a stuck store);
    /// slashing waits until `quiet` after the stall.
    Stalled { gap: Duration },
    /// Lease renewals reach this controller late: the median renewal was seen `median` after
    /// the node wrote it (API requests or watch delivery queued up).
    SlowDelivery { median: Duration },
    /// No node at all was heard for this long although several exist: it is the master that
    /// does not hear.
    NotHearing { for_: Duration },
}

impl fmt::Display for MasterLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterLag::Stalled { gap } => {
                write!(f, "node controller stalled for {:.1}s", gap.as_secs_f64())
            }
            MasterLag::SlowDelivery { median } => write!(
                f,
                "lease renewals arrive {:.1}s late (median)",
                median.as_secs_f64()
            ),
            MasterLag::NotHearing { for_ } => {
                write!(f, "no node heard for {:.1}s", for_.as_secs_f64())
            }
        }
    }
}

/// Detects the master's own lag (see [`MasterLag`]).
#[derive(Debug)]
pub struct LagMonitor {
    grace: Duration,
    last_pass: Option<Instant>,
    /// The last stall: its gap and when it ended.
    stall: Option<(Duration, Instant)>,
}

impl LagMonitor {
    pub fn new(grace: Duration) -> Self {
        LagMonitor {
            grace,
            last_pass: None,
            stall: None,
        }
    }

    /// A pass starting later than this after the previous one means this controller stalled.
    pub fn stall_threshold(&self) -> Duration {
        (self.grace / 2).max(Duration::from_secs(5))
    }

    /// Renewals seen later than this after they were written (median) mean the master lags.
    pub fn delivery_threshold(&self) -> Duration {
        self.grace / 2
    }

    /// Note a pass starting at `now`; returns the gap when the controller had stalled.
    pub fn pass(&mut self, now: Instant) -> Option<Duration> {
        let prev = self.last_pass.replace(now);
        let gap = now.saturating_duration_since(prev?);
        if gap > self.stall_threshold() {
            self.stall = Some((gap, now));
            Some(gap)
        } else {
            None
        }
    }

    /// Whether the master lags now (slashing is deferred while it does).
    pub fn lag(&self, health: &HealthMap, now: Instant) -> Option<MasterLag> {
        if let Some((gap, at)) = self.stall {
            if now.saturating_duration_since(at) < self.grace {
                return Some(MasterLag::Stalled { gap });
            }
        }
        if let Some(median) = health.median_delivery(now, self.grace) {
            if median > self.delivery_threshold() {
                return Some(MasterLag::SlowDelivery { median });
            }
        }
        let unheard = health.unheard_for(now);
        if health.len() >= 2 && unheard > self.grace {
            return Some(MasterLag::NotHearing { for_: unheard });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn silence_counts_from_observation_not_node_clock() {
        let clock = ManualClock::new();
        let mut h = HealthMap::default();
        let wall = Utc::now();
        // A renewTime a day old, first seen now: silent for zero, not a day.
        let old = wall - chrono::Duration::days(1);
        assert_eq!(h.observe("n", Some(old), None, wall, clock.now()), secs(0));
        clock.advance(secs(30));
        assert_eq!(h.observe("n", Some(old), None, wall, clock.now()), secs(30));
        // A newer renewTime resets the silence, even when it is behind the master's clock.
        let newer = old + chrono::Duration::seconds(1);
        assert_eq!(
            h.observe("n", Some(newer), None, wall, clock.now()),
            secs(0)
        );
        clock.advance(secs(5));
        // An older renewTime (a replay) is not a renewal.
        assert_eq!(h.observe("n", Some(old), None, wall, clock.now()), secs(5));
        // A renewTime far in the future does not buy silence beyond the observation either.
        let future = wall + chrono::Duration::days(1);
        assert_eq!(
            h.observe("n", Some(future), None, wall, clock.now()),
            secs(0)
        );
        clock.advance(secs(41));
        assert_eq!(
            h.observe("n", Some(future), None, wall, clock.now()),
            secs(41)
        );
        // The Ready heartbeat counts too.
        assert_eq!(
            h.observe("n", Some(future), Some("t1"), wall, clock.now()),
            secs(0)
        );
        clock.advance(secs(3));
        assert_eq!(
            h.observe("n", Some(future), Some("t1"), wall, clock.now()),
            secs(3)
        );
        // A reset (controller stall) gives everyone a fresh grace period.
        h.reset_all(clock.now());
        assert_eq!(
            h.observe("n", Some(future), Some("t1"), wall, clock.now()),
            secs(0)
        );
    }

    #[test]
    fn rate_limiter_admits_at_most_rate_times_t_plus_burst() {
        let clock = ManualClock::new();
        let mut b = TokenBucket::new(0.1, clock.now());
        let mut admitted = 0;
        // 100 s in 100 ms steps: at 0.1/s with burst 1 at most 1 + 10 admissions.
        for _ in 0..1000 {
            if b.try_accept(clock.now()) {
                admitted += 1;
            }
            clock.advance(Duration::from_millis(100));
        }
        assert!((10..=11).contains(&admitted), "{admitted}");
        let mut zero = TokenBucket::new(0.0, clock.now());
        clock.advance(secs(1000));
        assert!(!zero.try_accept(clock.now()));
    }

    #[test]
    fn zone_queue_evicts_at_the_zone_rate() {
        let clock = ManualClock::new();
        let cfg = EvictionConfig::default();
        let mut z = Zones::default();
        let census = HashMap::from([(
            String::new(),
            Census {
                ready: 90,
                not_ready: 10,
            },
        )]);
        assert_eq!(z.update(&census, &cfg, clock.now()), Disruption::None);
        assert_eq!(z.state(""), Some(ZoneState::Normal));
        for i in 0..10 {
            z.enqueue("", &format!("n{i}"));
        }
        z.enqueue("", "n0");
        let mut admitted = Vec::new();
        // 30 s at 0.1/s: the first at once, then one per 10 s.
        for _ in 0..300 {
            admitted.extend(z.admit(clock.now(), |_| true));
            clock.advance(Duration::from_millis(100));
        }
        assert_eq!(admitted, vec!["n0", "n1", "n2"], "{admitted:?}");
        // A node that came back leaves the queue without using a token.
        clock.advance(secs(10));
        let got = z.admit(clock.now(), |n| n != "n3");
        assert_eq!(got, vec!["n4"]);
        assert!(!z.queued("n3"));
        z.remove("n5");
        assert!(!z.queued("n5"));
    }

    #[test]
    fn zone_states_follow_upstream_thresholds() {
        let t = 0.55;
        assert_eq!(compute_zone_state(0, 1, t), ZoneState::FullDisruption);
        assert_eq!(compute_zone_state(0, 0, t), ZoneState::Normal);
        // Two not-Ready nodes never make a partial disruption, whatever the fraction.
        assert_eq!(compute_zone_state(1, 2, t), ZoneState::Normal);
        assert_eq!(compute_zone_state(2, 3, t), ZoneState::PartialDisruption);
        assert_eq!(compute_zone_state(45, 55, t), ZoneState::PartialDisruption);
        assert_eq!(compute_zone_state(46, 54, t), ZoneState::Normal);
        let cfg = EvictionConfig::default();
        assert_eq!(zone_qps(ZoneState::Normal, 10, &cfg), 0.1);
        assert_eq!(zone_qps(ZoneState::PartialDisruption, 51, &cfg), 0.01);
        assert_eq!(zone_qps(ZoneState::PartialDisruption, 50, &cfg), 0.0);
        assert_eq!(zone_qps(ZoneState::FullDisruption, 10, &cfg), 0.1);
    }

    #[test]
    fn partial_disruption_slows_then_stops_small_zones() {
        let clock = ManualClock::new();
        let cfg = EvictionConfig::default();
        let mut z = Zones::default();
        let big = |nr: usize| {
            HashMap::from([
                (
                    "big".to_string(),
                    Census {
                        ready: 100 - nr,
                        not_ready: nr,
                    },
                ),
                (
                    "small".to_string(),
                    Census {
                        ready: 1,
                        not_ready: 9,
                    },
                ),
            ])
        };
        z.update(&big(60), &cfg, clock.now());
        assert_eq!(z.state("big"), Some(ZoneState::PartialDisruption));
        assert_eq!(z.state("small"), Some(ZoneState::PartialDisruption));
        for i in 0..20 {
            z.enqueue("big", &format!("b{i}"));
            z.enqueue("small", &format!("s{i}"));
        }
        let mut admitted = Vec::new();
        // 200 s: the large zone at 0.01/s admits at most 1 + 2; the small zone none at all.
        for _ in 0..2000 {
            admitted.extend(z.admit(clock.now(), |_| true));
            clock.advance(Duration::from_millis(100));
        }
        assert!(admitted.iter().all(|n| n.starts_with('b')), "{admitted:?}");
        assert!((2..=3).contains(&admitted.len()), "{admitted:?}");
        // Back to normal: the normal rate again.
        z.update(&big(10), &cfg, clock.now());
        assert_eq!(z.state("big"), Some(ZoneState::Normal));
        clock.advance(secs(100));
        let n = z.admit(clock.now(), |_| true).len();
        assert!(n >= 1, "{n}");
    }

    #[test]
    fn all_zones_fully_disrupted_stops_evictions_and_exit_resets() {
        let clock = ManualClock::new();
        let cfg = EvictionConfig::default();
        let mut z = Zones::default();
        let census = |a_ready: usize, b_ready: usize| {
            HashMap::from([
                (
                    "a".to_string(),
                    Census {
                        ready: a_ready,
                        not_ready: 3 - a_ready,
                    },
                ),
                (
                    "b".to_string(),
                    Census {
                        ready: b_ready,
                        not_ready: 3 - b_ready,
                    },
                ),
            ])
        };
        z.update(&census(3, 3), &cfg, clock.now());
        // Zone a fully down while b is healthy: upstream keeps evicting a at the normal rate.
        assert_eq!(z.update(&census(0, 3), &cfg, clock.now()), Disruption::None);
        assert_eq!(z.state("a"), Some(ZoneState::FullDisruption));
        assert!(!z.all_disrupted());
        z.enqueue("a", "a0");
        assert_eq!(z.admit(clock.now(), |_| true), vec!["a0"]);
        // Every zone down: the master assumes it is cut off and evicts nowhere.
        z.enqueue("a", "a1");
        assert_eq!(
            z.update(&census(0, 0), &cfg, clock.now()),
            Disruption::Entered
        );
        assert!(z.all_disrupted());
        assert!(!z.queued("a1"));
        z.enqueue("a", "a1");
        z.enqueue("b", "b0");
        clock.advance(secs(1000));
        assert!(z.admit(clock.now(), |_| true).is_empty());
        assert_eq!(z.update(&census(0, 0), &cfg, clock.now()), Disruption::None);
        // One node back: leaving the master disruption (the caller resets all probes).
        assert_eq!(
            z.update(&census(0, 1), &cfg, clock.now()),
            Disruption::Exited
        );
        assert!(!z.all_disrupted());
        // Upstream SwapLimiter drains the new bucket when the old one (rate 0) had no token:
        // the first eviction after the disruption waits one period of the normal rate.
        assert!(z.admit(clock.now(), |_| true).is_empty());
        clock.advance(secs(10));
        assert!(!z.admit(clock.now(), |_| true).is_empty());
    }

    #[test]
    fn lag_after_a_stall_defers_and_resets() {
        let grace = secs(40);
        let clock = ManualClock::new();
        let mut lag = LagMonitor::new(grace);
        let mut h = HealthMap::default();
        let wall = Utc::now();
        assert_eq!(lag.pass(clock.now()), None);
        h.observe("a", Some(wall), None, wall, clock.now());
        h.observe("b", Some(wall), None, wall, clock.now());
        for i in 1..=5 {
            clock.advance(secs(1));
            assert_eq!(lag.pass(clock.now()), None);
            let w = wall + chrono::Duration::seconds(i);
            h.observe("a", Some(w), None, w, clock.now());
            h.observe("b", Some(w), None, w, clock.now());
        }
        assert_eq!(lag.lag(&h, clock.now()), None);
        // SIGSTOP for 60 s: the next pass sees the gap.
        clock.advance(secs(60));
        assert_eq!(lag.pass(clock.now()), Some(secs(60)));
        assert_eq!(
            lag.lag(&h, clock.now()),
            Some(MasterLag::Stalled { gap: secs(60) })
        );
        // Without the reset both nodes would be 60 s silent; the controller resets them.
        assert_eq!(h.observe("a", None, None, wall, clock.now()), secs(60));
        h.reset_all(clock.now());
        assert_eq!(h.observe("a", None, None, wall, clock.now()), secs(0));
        // The deferral lasts one grace period after the stall.
        for _ in 0..39 {
            clock.advance(secs(1));
            assert_eq!(lag.pass(clock.now()), None);
        }
        assert!(matches!(
            lag.lag(&h, clock.now()),
            Some(MasterLag::Stalled { .. })
        ));
        let w = wall + chrono::Duration::seconds(100);
        h.observe("a", Some(w), None, w, clock.now());
        clock.advance(secs(2));
        lag.pass(clock.now());
        assert_eq!(lag.lag(&h, clock.now()), None);
    }

    #[test]
    fn lag_from_late_delivery_and_from_hearing_no_one() {
        let grace = secs(40);
        let clock = ManualClock::new();
        let lag = LagMonitor::new(grace);
        let mut h = HealthMap::default();
        let wall = Utc::now();
        for n in ["a", "b", "c"] {
            h.observe(n, Some(wall), None, wall, clock.now());
        }
        clock.advance(secs(1));
        // Renewals written 30 s before the master sees them (its API queue is 30 s deep).
        let seen = wall + chrono::Duration::seconds(31);
        for n in ["a", "b", "c"] {
            h.observe(
                n,
                Some(wall + chrono::Duration::seconds(1)),
                None,
                seen,
                clock.now(),
            );
        }
        assert_eq!(
            lag.lag(&h, clock.now()),
            Some(MasterLag::SlowDelivery { median: secs(30) })
        );
        // One liar (renewTime far in the past) cannot make the master look slow.
        let mut h = HealthMap::default();
        for n in ["a", "b", "c"] {
            h.observe(n, Some(wall), None, wall, clock.now());
        }
        clock.advance(secs(1));
        let w = wall + chrono::Duration::seconds(2);
        h.observe("a", Some(w), None, w, clock.now());
        h.observe("b", Some(w), None, w, clock.now());
        h.observe(
            "c",
            Some(wall + chrono::Duration::milliseconds(1)),
            None,
            w,
            clock.now(),
        );
        assert_eq!(lag.lag(&h, clock.now()), None);
        // Nobody heard for more than the grace period: the master is the deaf one.
        clock.advance(secs(41));
        assert!(matches!(
            lag.lag(&h, clock.now()),
            Some(MasterLag::NotHearing { .. })
        ));
        // Old delivery samples fall out of the window.
        assert_eq!(h.median_delivery(clock.now(), grace), None);
    }
}
