//! Leader election over a `coordination.k8s.io/v1` Lease, with the semantics of client-go's
//! `leaderelection` package and its LeaseLock (what kube-controller-manager and kube-scheduler run):
//!
//! - the Lease `<namespace>/<name>` records `holderIdentity`, `leaseDurationSeconds`,
//!   `acquireTime`, `renewTime` and `leaseTransitions`;
//! - a candidate takes the Lease only when it is free: released (empty `holderIdentity`), or
//!   expired (`renewTime + leaseDurationSeconds < now`); taking it from another holder counts a
//!   transition;
//! - the leader renews every retry period; every write carries the `resourceVersion` it read, so
//!   of two concurrent writers exactly one wins (the other gets 409 and stays a candidate);
//! - a leader whose last successful renewal is older than the renew deadline stops its group
//!   (the tasks are aborted and awaited) before anybody may take the Lease: the renew deadline is
//!   shorter than the lease duration;
//! - a graceful shutdown stops the group, then releases the Lease (empty holder, duration 1 s) so
//!   another candidate takes over at once.
//!
//! Times come from an injectable [`Clock`], so tests move time explicitly.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use daas_apiserver::{ApiError, LocalClient};
use daas_protocol::metrics::Metrics;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::cronjob::{Clock, FixedClock, SystemClock};

/// The namespace the control plane's Leases live in.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The controllers' Lease (kube-controller-manager's `--leader-elect-resource-name`).
pub const CONTROLLER_MANAGER_LEASE: &str = "kube-controller-manager";
/// The scheduler's Lease.
pub const SCHEDULER_LEASE: &str = "kube-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum ElectionError {
    #[error("lease {lease}: {source}")]
    Api {
        lease: String,
        #[source]
        source: Box<ApiError>,
    },
    #[error("leader election timings: {0}")]
    Timings(&'static str),
    #[error("lease {lease}: the lease was not renewed within the renew deadline")]
    Deadline { lease: String },
}

/// Upstream's `--leader-elect-lease-duration`, `--leader-elect-renew-deadline` and
/// `--leader-elect-retry-period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long a non-leader waits after the last renewal before it may take the Lease.
    pub lease_duration: Duration,
    /// How long the leader keeps retrying to renew before it gives up leadership.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Timings {
    /// Upstream's checks (`NewLeaderElector`): leaseDuration > renewDeadline >
    /// 1.2 * retryPeriod > 0. The lease duration in the Lease is whole seconds, so it must be
    /// at least 1 s.
    pub fn validate(&self) -> Result<(), ElectionError> {
        if self.retry_period.is_zero() {
            return Err(ElectionError::Timings(
                "retry period must be greater than zero",
            ));
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(ElectionError::Timings("lease duration must be at least 1s"));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(ElectionError::Timings(
                "lease duration must be greater than the renew deadline",
            ));
        }
        if self.renew_deadline <= self.retry_period.mul_f64(1.2) {
            return Err(ElectionError::Timings(
                "renew deadline must be greater than 1.2 x the retry period",
            ));
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i64 {
        // Rounded up: a holder never advertises a shorter lease than it keeps.
        let ms = self.lease_duration.as_millis();
        i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX)
    }
}

/// One election: which Lease, who we are, how fast.
#[derive(Clone)]
pub struct ElectionConfig {
    pub namespace: String,
    pub name: String,
    /// `holderIdentity` written while leading; unique per process (`<host>_<random>`).
    pub identity: String,
    pub timings: Timings,
    pub clock: Arc<dyn Clock>,
    /// Holders whose identity starts with this are earlier runs of this candidate (e.g.
    /// `<master id>_`, the id derived from host and data directory): their Lease is taken at
    /// once instead of after expiry, so a restarted single master leads as soon as it is up.
    pub reclaim_prefix: Option<String>,
    /// Where renewal latencies and outcomes are recorded
    /// (`leader_election_renew_duration_seconds`, `leader_election_renewals_total`).
    pub metrics: Option<Arc<Metrics>>,
}

impl ElectionConfig {
    /// Lease `kube-system/<name>` with upstream's default timings and the system clock.
    pub fn new(name: impl Into<String>, identity: impl Into<String>) -> Self {
        ElectionConfig {
            namespace: LEASE_NAMESPACE.into(),
            name: name.into(),
            identity: identity.into(),
            timings: Timings::default(),
            clock: Arc::new(SystemClock),
            reclaim_prefix: None,
            metrics: None,
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn with_timings(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_reclaim_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.reclaim_prefix = Some(prefix.into());
        self
    }

    fn lease_id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn collection(&self) -> String {
        format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            self.namespace
        )
    }

    fn path(&self) -> String {
        format!("{}/{}", self.collection(), self.name)
    }
}

/// A duration flag as upstream writes them (Go's `time.ParseDuration` subset): `15s`, `500ms`,
/// `1m30s`, `2h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?}: missing unit"))?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().map_err(|_| format!("{s:?}: bad number"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("{s:?}: unknown unit {unit:?}")),
        };
        total += Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{s:?}: {e}"))?;
        rest = tail;
    }
    Ok(total)
}

/// A Lease's MicroTime (RFC 3339 with microseconds).
pub fn micro_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The holder of a Lease, if it is held: a non-empty `holderIdentity` whose
/// `renewTime + leaseDurationSeconds` (falling back to `acquireTime`) is not before `now`.
pub fn live_holder(lease: &Value, now: DateTime<Utc>) -> Option<&str> {
    let spec = &lease["spec"];
    let holder = spec["holderIdentity"].as_str().filter(|h| !h.is_empty())?;
    let renewed = parse_time(&spec["renewTime"]).or_else(|| parse_time(&spec["acquireTime"]))?;
    let secs = spec["leaseDurationSeconds"].as_i64().unwrap_or(0);
    let expires = renewed + chrono::Duration::seconds(secs);
    (expires >= now).then_some(holder)
}

/// The state machine of one candidate; [`run_elected`] drives it.
pub struct LeaderElector {
    client: LocalClient,
    cfg: ElectionConfig,
    /// The `renewTime` of our last successful acquire or renew.
    last_renew: Option<DateTime<Utc>>,
    /// `leaseTransitions` of the last Lease read (kept in the released Lease).
    transitions: i64,
    /// The `renewTime` of the last write we sent (it may land after its caller gave up).
    writing: Option<DateTime<Utc>>,
}

impl LeaderElector {
    pub fn new(client: LocalClient, cfg: ElectionConfig) -> Self {
        LeaderElector {
            client,
            cfg,
            last_renew: None,
            transitions: 0,
            writing: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }

    /// When our last acquire or renew succeeded (the `renewTime` it wrote).
    pub fn last_renew(&self) -> Option<DateTime<Utc>> {
        self.last_renew
    }

    fn api(&self, source: ApiError) -> ElectionError {
        ElectionError::Api {
            lease: self.cfg.lease_id(),
            source: Box::new(source),
        }
    }

    /// One attempt: create the Lease, renew it when we hold it, or take it when it is free.
    /// `Ok(true)`: we hold the Lease until `renewTime + leaseDurationSeconds`. `Ok(false)`:
    /// somebody else holds it, or won a concurrent write.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, ElectionError> {
        let seconds = self.cfg.timings.lease_seconds();
        let current = self
            .client
            .get_opt(&self.cfg.path())
            .await
            .map_err(|e| self.api(e))?;
        // Stamped after the read, just before the write: a slow read does not shorten the
        // lease we advertise (others count from `renewTime`, and the write lands after it).
        let now = self.cfg.clock.now();
        let stamp = micro_time(now);
        self.writing = DateTime::parse_from_rfc3339(&stamp)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        let Some(mut lease) = current else {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.cfg.name, "namespace": self.cfg.namespace},
                "spec": {
                    "holderIdentity": self.cfg.identity,
                    "leaseDurationSeconds": seconds,
                    "acquireTime": stamp,
                    "renewTime": stamp,
                    "leaseTransitions": 0,
                },
            });
            return match self.client.create(&self.cfg.collection(), &lease).await {
                Ok(_) => {
                    self.last_renew = Some(now);
                    self.transitions = 0;
                    Ok(true)
                }
                Err(e) if e.code == 409 => Ok(false),
                Err(e) => Err(self.api(e)),
            };
        };
        let spec = &lease["spec"];
        self.transitions = spec["leaseTransitions"].as_i64().unwrap_or(0);
        let ours = spec["holderIdentity"].as_str() == Some(self.cfg.identity.as_str());
        let predecessor = |h: &str| {
            self.cfg
                .reclaim_prefix
                .as_deref()
                .is_some_and(|p| !p.is_empty() && h.starts_with(p))
        };
        if !ours && live_holder(&lease, now).is_some_and(|h| !predecessor(h)) {
            self.last_renew = None;
            return Ok(false);
        }
        let mut new_spec = json!({
            "holderIdentity": self.cfg.identity,
            "leaseDurationSeconds": seconds,
            "renewTime": stamp,
        });
        if ours {
            new_spec["acquireTime"] = spec["acquireTime"].clone();
            new_spec["leaseTransitions"] = json!(self.transitions);
        } else {
            new_spec["acquireTime"] = json!(stamp);
            new_spec["leaseTransitions"] = json!(self.transitions + 1);
        }
        // The resourceVersion read stays in metadata: a concurrent writer makes this a 409.
        lease["spec"] = new_spec;
        match self.client.update(&self.cfg.path(), &lease).await {
            Ok(written) => {
                self.transitions = written["spec"]["leaseTransitions"]
                    .as_i64()
                    .unwrap_or(self.transitions);
                self.last_renew = Some(now);
                Ok(true)
            }
            Err(e) if e.code == 409 => {
                self.last_renew = None;
                Ok(false)
            }
            Err(e) => Err(self.api(e)),
        }
    }

    /// After a renewal gave up waiting: did its write land after all? True when the Lease
    /// still names us with the `renewTime` of that write, which then counts as our last renewal
    /// (nobody can have taken the Lease since: it was not expired, and the write checked the
    /// resourceVersion).
    pub async fn confirm_late_renewal(&mut self) -> Result<bool, ElectionError> {
        let Some(stamp) = self.writing else {
            return Ok(false);
        };
        let lease = self
            .client
            .get_opt(&self.cfg.path())
            .await
            .map_err(|e| self.api(e))?;
        let landed = lease.is_some_and(|l| {
            l["spec"]["holderIdentity"].as_str() == Some(self.cfg.identity.as_str())
                && parse_time(&l["spec"]["renewTime"]) == Some(stamp)
        });
        if landed {
            self.last_renew = Some(stamp);
        }
        Ok(landed)
    }

    /// Record a `LeaderElection` Event on the Lease (`<identity> became leader`, ...), as
    /// upstream's event recorder does; best effort.
    pub async fn event(&self, what: &str) {
        let lease = match self.client.get(&self.cfg.path()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "no leader election event: lease unreadable");
                return;
            }
        };
        let message = format!("{} {what}", self.cfg.identity);
        if let Err(e) = crate::util::record_event(
            &self.client,
            &lease,
            "Normal",
            "LeaderElection",
            &message,
            "daas-master",
        )
        .await
        {
            tracing::debug!(error = %e, "recording the leader election event failed");
        }
    }

    /// Give the Lease up (upstream's `release`): when we still hold it, write an empty holder
    /// with a 1 s duration so the next candidate takes it at once. `Ok(false)`: not ours.
    pub async fn release(&mut self) -> Result<bool, ElectionError> {
        let Some(mut lease) = self
            .client
            .get_opt(&self.cfg.path())
            .await
            .map_err(|e| self.api(e))?
        else {
            return Ok(false);
        };
        if lease["spec"]["holderIdentity"].as_str() != Some(self.cfg.identity.as_str()) {
            return Ok(false);
        }
        let stamp = micro_time(self.cfg.clock.now());
        let transitions = lease["spec"]["leaseTransitions"]
            .as_i64()
            .unwrap_or(self.transitions);
        lease["spec"] = json!({
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": transitions,
        });
        self.last_renew = None;
        match self.client.update(&self.cfg.path(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if e.code == 409 => Ok(false),
            Err(e) => Err(self.api(e)),
        }
    }
}

/// The tasks a leader runs; aborted (and awaited) when leadership ends, and when dropped.
struct Group(Vec<JoinHandle<()>>);

impl Group {
    async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.0);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Publishes leadership; reports "not leading" when the driver ends or is aborted.
struct Leading(watch::Sender<bool>);

impl Leading {
    fn set(&self, v: bool) {
        self.0.send_replace(v);
    }
}

impl Drop for Leading {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// A running election: the driver task, whether it currently leads, and a graceful stop.
/// Dropping it aborts the driver and the group without releasing the Lease (as a crash would).
pub struct Elected {
    lease: String,
    identity: String,
    task: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    leading: watch::Receiver<bool>,
    /// The runtime the driver runs on, kept as long as the election.
    _runtime: Option<Arc<ElectionRuntime>>,
}

impl Elected {
    /// `namespace/name` of the Lease.
    pub fn lease(&self) -> &str {
        &self.lease
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Is the group running (we hold the Lease)?
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// A receiver that changes whenever leadership is gained or lost.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stop the group, release the Lease when we hold it, and wait for the driver to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Elected {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// A small runtime of its own (one OS thread) for the election drivers: their renewals never
/// wait in the main runtime's run queue behind thousands of request, watch and controller
/// tasks. (Under load at 1,000 nodes a renewal queued there for longer than the renew
/// deadline and both groups restarted.) The groups' tasks still run on the main runtime.
pub struct ElectionRuntime {
    handle: tokio::runtime::Handle,
    /// Dropped with the last user: the runtime's thread ends.
    _stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl ElectionRuntime {
    /// Start the runtime's thread (named `name`).
    pub fn start(name: &str) -> std::io::Result<Arc<Self>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(name)
            // Its blocking threads too (the runtime's own thread asks below).
            .on_thread_start(|| {
                daas_sched::latency_critical("leader election");
            })
            .build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                daas_sched::latency_critical("leader election");
                rt.block_on(async {
                    let _ = rx.await;
                });
            })?;
        Ok(Arc::new(ElectionRuntime {
            handle,
            _stop: std::sync::Mutex::new(Some(tx)),
        }))
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

/// Campaign for `cfg`'s Lease forever: while leading, the tasks `start` spawns run; when
/// leadership is lost they are aborted (before the Lease can expire for others) and the driver
/// campaigns again, calling `start` anew on the next win. The driver runs on the current
/// runtime.
pub fn run_elected<F>(client: LocalClient, cfg: ElectionConfig, start: F) -> Elected
where
    F: Fn() -> Vec<JoinHandle<()>> + Send + Sync + 'static,
{
    spawn_elected(None, client, cfg, start)
}

/// [`run_elected`] with the driver (acquire, renew, release) on `rt`, and the group's tasks
/// spawned on the runtime this is called from.
pub fn run_elected_on<F>(
    rt: &Arc<ElectionRuntime>,
    client: LocalClient,
    cfg: ElectionConfig,
    start: F,
) -> Elected
where
    F: Fn() -> Vec<JoinHandle<()>> + Send + Sync + 'static,
{
    spawn_elected(Some(rt.clone()), client, cfg, start)
}

fn spawn_elected<F>(
    rt: Option<Arc<ElectionRuntime>>,
    client: LocalClient,
    cfg: ElectionConfig,
    start: F,
) -> Elected
where
    F: Fn() -> Vec<JoinHandle<()>> + Send + Sync + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let (lead_tx, lead_rx) = watch::channel(false);
    let lease = cfg.lease_id();
    let identity = cfg.identity.clone();
    let groups = tokio::runtime::Handle::current();
    let start = move || {
        let _in = groups.enter();
        start()
    };
    let driver = drive(client, cfg, start, stop_rx, Leading(lead_tx));
    let task = match &rt {
        Some(rt) => rt.handle().spawn(driver),
        None => tokio::spawn(driver),
    };
    Elected {
        lease,
        identity,
        task: Some(task),
        stop: stop_tx,
        leading: lead_rx,
        _runtime: rt,
    }
}

/// Resolves once a stop was asked for (or the [`Elected`] is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Up to 20 % more than `d` (upstream's JitterFactor 1.2 for candidates).
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 5000.0)
}

/// How long until `t` (zero once it passed).
fn until_time(clock: &dyn Clock, t: DateTime<Utc>) -> Duration {
    (t - clock.now()).to_std().unwrap_or(Duration::ZERO)
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// One renewal's latency and outcome (`renewed`, `error`, `timeout`, `lost`).
fn observe(metrics: &Option<Arc<Metrics>>, lease: &str, result: &str, took: Duration) {
    if let Some(m) = metrics {
        let labels = [("lease", lease), ("result", result)];
        m.observe(
            "leader_election_renew_duration_seconds",
            "Latency of the leader's Lease renewals by lease and result.",
            &labels,
            took,
        );
        m.inc(
            "leader_election_renewals_total",
            "Lease renewals of the leader by lease and result.",
            &labels,
            1.0,
        );
    }
}

async fn drive<F>(
    client: LocalClient,
    cfg: ElectionConfig,
    start: F,
    mut stop: watch::Receiver<bool>,
    leading: Leading,
) where
    F: Fn() -> Vec<JoinHandle<()>> + Send + Sync + 'static,
{
    let t = cfg.timings;
    let clock = cfg.clock.clone();
    let metrics = cfg.metrics.clone();
    let lease = cfg.lease_id();
    let identity = cfg.identity.clone();
    let span = tracing::info_span!("leaderelection", %lease, %identity);
    let mut el = LeaderElector::new(client, cfg);
    loop {
        // Candidate: try now, then every retry period (jittered).
        loop {
            if *stop.borrow() {
                return;
            }
            match tokio::time::timeout(t.renew_deadline, el.try_acquire_or_renew()).await {
                Ok(Ok(true)) => break,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(parent: &span, error = %e, "acquiring the lease failed")
                }
                Err(_) => tracing::warn!(parent: &span, "acquiring the lease timed out"),
            }
            tokio::select! {
                _ = stopped(&mut stop) => return,
                _ = tokio::time::sleep(jittered(t.retry_period)) => {}
            }
        }
        let Some(mut last_renew) = el.last_renew() else {
            continue;
        };
        tracing::info!(parent: &span, "became leader");
        let group = Group(start());
        leading.set(true);
        let _ = tokio::time::timeout(t.retry_period, el.event("became leader")).await;
        // Leader: every retry period one renewal round (upstream's `renew`), retried every
        // retry period within the round's deadline; the group stops when a round fails.
        let graceful = 'leading: loop {
            tokio::select! {
                _ = stopped(&mut stop) => break true,
                _ = tokio::time::sleep(t.retry_period) => {}
            }
            // The round's deadline: the renew deadline from its start, but never later than
            // one retry period before others may take the Lease.
            let deadline = (clock.now() + chrono_duration(t.renew_deadline))
                .min(last_renew + chrono_duration(t.lease_duration.saturating_sub(t.retry_period)));
            loop {
                let remaining = until_time(clock.as_ref(), deadline);
                if remaining.is_zero() {
                    tracing::warn!(parent: &span, error = %ElectionError::Deadline { lease: lease.clone() }, "stopping the leader's tasks");
                    break 'leading false;
                }
                let started = std::time::Instant::now();
                let outcome = tokio::time::timeout(remaining, el.try_acquire_or_renew()).await;
                let took = started.elapsed();
                let renewed = match outcome {
                    Ok(Ok(true)) => true,
                    Ok(Ok(false)) => {
                        observe(&metrics, &lease, "lost", took);
                        tracing::warn!(parent: &span, "the lease was taken by another candidate");
                        break 'leading false;
                    }
                    Ok(Err(e)) => {
                        observe(&metrics, &lease, "error", took);
                        tracing::warn!(parent: &span, error = %e, "renewing the lease failed");
                        false
                    }
                    Err(_) => {
                        // The write may still have landed: then the Lease is ours and the
                        // leader goes on.
                        let left = until_time(
                            clock.as_ref(),
                            last_renew
                                + chrono_duration(t.lease_duration.saturating_sub(t.retry_period)),
                        );
                        let landed = !left.is_zero()
                            && matches!(
                                tokio::time::timeout(left, el.confirm_late_renewal()).await,
                                Ok(Ok(true))
                            );
                        if landed {
                            tracing::warn!(parent: &span, took_ms = took.as_millis() as u64, "the renewal ran late but landed; still leading");
                        } else {
                            observe(&metrics, &lease, "timeout", started.elapsed());
                            tracing::warn!(parent: &span, "renewing the lease timed out");
                            break 'leading false;
                        }
                        true
                    }
                };
                if renewed {
                    observe(&metrics, &lease, "renewed", took);
                    if took >= t.retry_period {
                        tracing::warn!(parent: &span, took_ms = took.as_millis() as u64, "slow lease renewal");
                    }
                    if let Some(r) = el.last_renew() {
                        last_renew = r;
                    }
                    break;
                }
                tokio::select! {
                    _ = stopped(&mut stop) => break 'leading true,
                    _ = tokio::time::sleep(t.retry_period.min(until_time(clock.as_ref(), deadline))) => {}
                }
            }
        };
        group.stop().await;
        leading.set(false);
        let _ = tokio::time::timeout(t.retry_period, el.event("stopped leading")).await;
        if graceful {
            match tokio::time::timeout(t.renew_deadline, el.release()).await {
                Ok(Ok(true)) => tracing::info!(parent: &span, "lease released"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(parent: &span, error = %e, "releasing the lease failed")
                }
                Err(_) => tracing::warn!(parent: &span, "releasing the lease timed out"),
            }
            return;
        }
        tracing::warn!(parent: &span, "lost leadership; campaigning again");
    }
}

#[cfg(test)]
mod tests;
