//! API Priority and Fairness (upstream's `k8s.io/apiserver/pkg/util/flowcontrol` with the
//! bootstrap configuration of `apis/flowcontrol/bootstrap`), reduced to what one master needs:
//!
//! - every authenticated request is **classified** by a [`Classifier`] into a flow schema, a
//!   [`PriorityLevel`] and a flow (the distinguisher: the user name, as upstream's `ByUser`).
//!   [`BootstrapClassifier`] follows upstream's mandatory and suggested flow schemas:
//!   `system:masters` and probes are `exempt`; the control plane's own Lease traffic is
//!   `leader-election`; a node's own Node object and its Lease in `kube-node-lease` are
//!   `node-high`; other node traffic is `system`; the controller manager, the scheduler and
//!   kube-system service accounts are `workload-high`; other service accounts `workload-low`;
//!   every other authenticated user `global-default`.
//! - each non-exempt level owns a share of the server's concurrency limit
//!   (`--max-requests-inflight` + `--max-mutating-requests-inflight`, as upstream when APF is on),
//!   proportional to upstream's nominal concurrency shares (system 30, node-high 40,
//!   leader-election 10, workload-high 40, workload-low 100, global-default 20, catch-all 5), at
//!   least one seat each. A level always gets its own seats; beyond them it borrows seats other
//!   levels lend (upstream's `lendablePercent`: system 33 %, node-high 25 %, workload-high 50 %,
//!   workload-low 90 %, global-default 50 %) while fewer than the server's limit run in all, so
//!   an idle server does not queue a busy level, and a flood in one level cannot take another
//!   level's own seats (borrowing does not preempt: a lender's request may run above the
//!   server limit until borrowed seats come back).
//! - a request that finds its level busy waits in its flow's queue; the level dispatches freed
//!   seats round-robin over the flows with queued requests (fair queuing with equal-cost
//!   requests), so one user's flood leaves another user's requests a fair turn.
//! - a request whose flow queue (or level) is full, or that waited longer than the request wait
//!   limit, is refused with 429 `TooManyRequests`, a `Retry-After` header and a `Status`.
//! - `exempt` requests are never queued; long-running requests (watches, exec/attach,
//!   port-forward, proxy, logs) are classified but hold no seat (upstream releases their seat
//!   once the watch is initialized).
//!
//! The classification ([`RequestDigest`], [`Classifier`]) is separate from the queues
//! ([`FlowControl`]) so per-identity limits can reuse it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use daas_protocol::metrics::Metrics;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::server::User;

/// Upstream's priority levels of the bootstrap configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriorityLevel {
    Exempt,
    System,
    NodeHigh,
    LeaderElection,
    WorkloadHigh,
    WorkloadLow,
    GlobalDefault,
    CatchAll,
}

impl PriorityLevel {
    /// The limited levels, in the order their seats are computed.
    pub const LIMITED: [PriorityLevel; 7] = [
        PriorityLevel::System,
        PriorityLevel::NodeHigh,
        PriorityLevel::LeaderElection,
        PriorityLevel::WorkloadHigh,
        PriorityLevel::WorkloadLow,
        PriorityLevel::GlobalDefault,
        PriorityLevel::CatchAll,
    ];

    /// The PriorityLevelConfiguration's name.
    pub fn name(self) -> &'static str {
        match self {
            PriorityLevel::Exempt => "exempt",
            PriorityLevel::System => "system",
            PriorityLevel::NodeHigh => "node-high",
            PriorityLevel::LeaderElection => "leader-election",
            PriorityLevel::WorkloadHigh => "workload-high",
            PriorityLevel::WorkloadLow => "workload-low",
            PriorityLevel::GlobalDefault => "global-default",
            PriorityLevel::CatchAll => "catch-all",
        }
    }

    /// Upstream's `nominalConcurrencyShares` (exempt: not limited).
    pub fn nominal_shares(self) -> u32 {
        match self {
            PriorityLevel::Exempt => 0,
            PriorityLevel::System => 30,
            PriorityLevel::NodeHigh => 40,
            PriorityLevel::LeaderElection => 10,
            PriorityLevel::WorkloadHigh => 40,
            PriorityLevel::WorkloadLow => 100,
            PriorityLevel::GlobalDefault => 20,
            PriorityLevel::CatchAll => 5,
        }
    }

    /// Upstream's `lendablePercent`: the share of this level's seats other levels may borrow
    /// while they are idle.
    pub fn lendable_percent(self) -> u32 {
        match self {
            PriorityLevel::Exempt | PriorityLevel::LeaderElection | PriorityLevel::CatchAll => 0,
            PriorityLevel::System => 33,
            PriorityLevel::NodeHigh => 25,
            PriorityLevel::WorkloadHigh | PriorityLevel::GlobalDefault => 50,
            PriorityLevel::WorkloadLow => 90,
        }
    }

    fn index(self) -> Option<usize> {
        Self::LIMITED.iter().position(|l| *l == self)
    }
}

/// What the classifier looks at: who asks for what (upstream's `RequestDigest`: user info and
/// request info).
#[derive(Debug, Clone)]
pub struct RequestDigest<'a> {
    /// None: an unauthenticated request of a public path.
    pub user: Option<&'a User>,
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`) of a resource request; the lower-case HTTP method otherwise.
    pub verb: &'static str,
    /// Resource request: `/api/...` or `/apis/...` naming a resource.
    pub resource_request: bool,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub path: &'a str,
    /// A watch or a streaming subresource: classified, but holds no seat.
    pub long_running: bool,
}

const LONG_RUNNING_SUBRESOURCES: [&str; 5] = ["exec", "attach", "portforward", "proxy", "log"];

impl<'a> RequestDigest<'a> {
    /// Digest of an HTTP request (`path` without the query).
    pub fn new(
        user: Option<&'a User>,
        method: &Method,
        path: &'a str,
        query: Option<&str>,
    ) -> Self {
        let segs: Vec<&'a str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (api_group, rest): (&'a str, &[&'a str]) = match segs.as_slice() {
            ["api", _v, rest @ ..] => ("", rest),
            ["apis", g, _v, rest @ ..] => (g, rest),
            _ => ("", &[]),
        };
        let (namespace, rest): (&'a str, &[&'a str]) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (ns, rest),
            _ => ("", rest),
        };
        let (resource, name, subresource) = match rest {
            [] => ("", "", ""),
            [r] => (*r, "", ""),
            [r, n] => (*r, *n, ""),
            [r, n, s, ..] => (*r, *n, *s),
        };
        let watch = query.is_some_and(|q| {
            q.split('&')
                .any(|kv| kv == "watch=true" || kv == "watch=1" || kv == "watch")
        });
        let resource_request = !resource.is_empty();
        let verb = if !resource_request {
            match *method {
                Method::GET => "get",
                Method::POST => "post",
                Method::PUT => "put",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                Method::HEAD => "head",
                _ => "options",
            }
        } else {
            match *method {
                Method::GET | Method::HEAD if watch => "watch",
                Method::GET | Method::HEAD if name.is_empty() => "list",
                Method::GET | Method::HEAD => "get",
                Method::POST => "create",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE if name.is_empty() => "deletecollection",
                Method::DELETE => "delete",
                _ => "unknown",
            }
        };
        let long_running = verb == "watch" || LONG_RUNNING_SUBRESOURCES.contains(&subresource);
        RequestDigest {
            user,
            verb,
            resource_request,
            api_group,
            resource,
            subresource,
            namespace,
            name,
            path,
            long_running,
        }
    }

    fn in_group(&self, group: &str) -> bool {
        self.user
            .is_some_and(|u| u.groups.iter().any(|g| g == group))
    }

    fn user_name(&self) -> &str {
        self.user
            .map(|u| u.name.as_str())
            .unwrap_or("system:anonymous")
    }
}

/// The outcome of classification: the matching flow schema, its priority level and the flow
/// (distinguisher) the request queues in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub flow_schema: &'static str,
    pub level: PriorityLevel,
    pub flow: String,
}

/// Maps a request to its flow schema, priority level and flow.
pub trait Classifier: Send + Sync + 'static {
    fn classify(&self, r: &RequestDigest<'_>) -> Classification;
}

/// Upstream's bootstrap flow schemas, in matching precedence order.
#[derive(Debug, Default, Clone, Copy)]
pub struct BootstrapClassifier;

/// The namespace node Leases live in.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
const PROBES: [&str; 3] = ["/healthz", "/readyz", "/livez"];
const CONTROL_PLANE_USERS: [&str; 2] = ["system:kube-controller-manager", "system:kube-scheduler"];
const KUBE_SYSTEM_SA_PREFIX: &str = "system:serviceaccount:kube-system:";

impl Classifier for BootstrapClassifier {
    fn classify(&self, r: &RequestDigest<'_>) -> Classification {
        let flow = r.user_name().to_string();
        let class = |flow_schema, level| Classification {
            flow_schema,
            level,
            flow: flow.clone(),
        };
        // exempt (precedence 1) and probes (2).
        if r.in_group(crate::authz::GROUP_MASTERS) {
            return class("exempt", PriorityLevel::Exempt);
        }
        if !r.resource_request && PROBES.iter().any(|p| r.path.trim_end_matches('/') == *p) {
            return class("probes", PriorityLevel::Exempt);
        }
        let name = r.user_name();
        let lease =
            r.resource_request && r.api_group == "coordination.k8s.io" && r.resource == "leases";
        // system-leader-election (100), workload-leader-election (200): the control plane's
        // Leases (and those of kube-system service accounts).
        if lease
            && r.namespace == "kube-system"
            && matches!(r.verb, "get" | "create" | "update")
            && (CONTROL_PLANE_USERS.contains(&name) || name.starts_with(KUBE_SYSTEM_SA_PREFIX))
        {
            let schema = if CONTROL_PLANE_USERS.contains(&name) {
                "system-leader-election"
            } else {
                "workload-leader-election"
            };
            return class(schema, PriorityLevel::LeaderElection);
        }
        // system-node-high (400): a node's Node object (and status) and its Lease.
        if r.in_group("system:nodes") {
            let node_object = r.resource_request
                && r.api_group.is_empty()
                && r.resource == "nodes"
                && r.namespace.is_empty();
            if node_object || (lease && r.namespace == NODE_LEASE_NAMESPACE) {
                return class("system-node-high", PriorityLevel::NodeHigh);
            }
            // system-nodes (500).
            return class("system-nodes", PriorityLevel::System);
        }
        // kube-controller-manager, kube-scheduler (800), kube-system-service-accounts (900).
        if CONTROL_PLANE_USERS.contains(&name) {
            let schema = if name.ends_with("scheduler") {
                "kube-scheduler"
            } else {
                "kube-controller-manager"
            };
            return class(schema, PriorityLevel::WorkloadHigh);
        }
        if name.starts_with(KUBE_SYSTEM_SA_PREFIX) {
            return class("kube-system-service-accounts", PriorityLevel::WorkloadHigh);
        }
        // service-accounts (9000).
        if r.in_group("system:serviceaccounts") {
            return class("service-accounts", PriorityLevel::WorkloadLow);
        }
        // global-default (9900): every user, authenticated or not.
        if r.user.is_none()
            || r.in_group(crate::rbac::GROUP_AUTHENTICATED)
            || r.in_group("system:unauthenticated")
        {
            return class("global-default", PriorityLevel::GlobalDefault);
        }
        class("catch-all", PriorityLevel::CatchAll)
    }
}

/// Is the request in a priority level of users and workloads (`global-default`,
/// `workload-low`, `catch-all`)? Those run at a lower CPU priority when the server has a
/// low-priority runtime ([`crate::server::ServerOptions::low_priority`]).
pub fn is_low_priority(r: &RequestDigest<'_>) -> bool {
    matches!(
        BootstrapClassifier.classify(r).level,
        PriorityLevel::GlobalDefault | PriorityLevel::WorkloadLow | PriorityLevel::CatchAll
    )
}

/// Limits of the flow controller (`daas up --max-requests-inflight`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowControlConfig {
    /// Upstream's `--max-requests-inflight` (400).
    pub max_requests_inflight: usize,
    /// Upstream's `--max-mutating-requests-inflight` (200). With priority and fairness the
    /// server's concurrency limit is the sum of both.
    pub max_mutating_requests_inflight: usize,
    /// Requests one flow may have waiting in its level (upstream's `queueLengthLimit`, 50).
    pub queue_length_limit: usize,
    /// Requests a level may have waiting in all (upstream: queues x queueLengthLimit, 64 x 50).
    pub level_queue_limit: usize,
    /// How long a request may wait for a seat before it is refused (upstream's 15 s).
    pub request_wait_limit: Duration,
}

impl Default for FlowControlConfig {
    fn default() -> Self {
        FlowControlConfig {
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            queue_length_limit: 50,
            level_queue_limit: 64 * 50,
            request_wait_limit: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlowControlError {
    #[error("flow control: {0}")]
    Config(&'static str),
}

impl FlowControlConfig {
    pub fn validate(&self) -> Result<(), FlowControlError> {
        if self.server_concurrency_limit() == 0 {
            return Err(FlowControlError::Config(
                "--max-requests-inflight plus --max-mutating-requests-inflight must be positive",
            ));
        }
        if self.request_wait_limit.is_zero() {
            return Err(FlowControlError::Config(
                "the request wait limit must be positive",
            ));
        }
        Ok(())
    }

    /// The seats all levels share.
    pub fn server_concurrency_limit(&self) -> usize {
        self.max_requests_inflight
            .saturating_add(self.max_mutating_requests_inflight)
    }

    /// A level's seats: `ceil(limit * shares / sum of shares)`, as upstream's nominal
    /// concurrency limit (so every level has at least one).
    pub fn level_limit(&self, level: PriorityLevel) -> usize {
        let total: u64 = PriorityLevel::LIMITED
            .iter()
            .map(|l| u64::from(l.nominal_shares()))
            .sum();
        let scl = self.server_concurrency_limit() as u64;
        let n = (scl * u64::from(level.nominal_shares())).div_ceil(total.max(1));
        usize::try_from(n).unwrap_or(usize::MAX).max(1)
    }
}

impl FlowControlConfig {
    /// Seats the levels lend in all: `round(seats * lendablePercent / 100)` summed.
    pub fn lendable_seats(&self) -> usize {
        PriorityLevel::LIMITED
            .iter()
            .map(|l| (self.level_limit(*l) * l.lendable_percent() as usize + 50) / 100)
            .sum()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Its flow's queue or its level's queues were full.
    QueueFull,
    /// It waited longer than the request wait limit.
    TimedOut,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Rejection::QueueFull => "queue-full",
            Rejection::TimedOut => "time-out",
        }
    }
}

/// Seconds a refused client is told to wait (`Retry-After`, `details.retryAfterSeconds`).
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// The 429 a refused request gets: a `Status` with reason `TooManyRequests` and
/// `details.retryAfterSeconds` (the error's response carries the `Retry-After` header).
pub fn too_many_requests() -> ApiError {
    ApiError::new(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
    )
    .with_details(serde_json::json!({"retryAfterSeconds": RETRY_AFTER_SECONDS}))
}

struct Waiter {
    id: u64,
    grant: oneshot::Sender<()>,
}

#[derive(Default)]
struct LevelState {
    executing: usize,
    /// Of the executing requests, how many run on seats borrowed from idle levels.
    borrowed: usize,
    queued: usize,
    flows: HashMap<String, VecDeque<Waiter>>,
    /// Flows with waiting requests, in the order they get their next turn.
    turns: VecDeque<String>,
    next_id: u64,
}

impl LevelState {
    /// The next waiting request, one flow at a time (round-robin over the flows).
    fn next_waiter(&mut self) -> Option<Waiter> {
        loop {
            let flow = self.turns.pop_front()?;
            let Some(queue) = self.flows.get_mut(&flow) else {
                continue;
            };
            let Some(w) = queue.pop_front() else {
                self.flows.remove(&flow);
                continue;
            };
            self.queued -= 1;
            if queue.is_empty() {
                self.flows.remove(&flow);
            } else {
                self.turns.push_back(flow);
            }
            return Some(w);
        }
    }

    /// Remove waiter `id` of `flow`; false when it is gone (it was granted a seat).
    fn withdraw(&mut self, flow: &str, id: u64) -> bool {
        let Some(queue) = self.flows.get_mut(flow) else {
            return false;
        };
        let Some(pos) = queue.iter().position(|w| w.id == id) else {
            return false;
        };
        queue.remove(pos);
        self.queued -= 1;
        if queue.is_empty() {
            self.flows.remove(flow);
            self.turns.retain(|f| f != flow);
        }
        true
    }
}

/// The seats every level shares: how many run in all, how many of them are borrowed.
struct Pool {
    server_limit: usize,
    lendable: usize,
    state: Mutex<(usize, usize)>,
}

impl Pool {
    /// Count a seat; a borrowed one only while the server has room and lenders have seats.
    fn take(&self, borrow: bool) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (total, borrowed) = &mut *st;
        if borrow && (*total >= self.server_limit || *borrowed >= self.lendable) {
            return false;
        }
        *total += 1;
        if borrow {
            *borrowed += 1;
        }
        true
    }

    fn put(&self, borrowed_seat: bool) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 = st.0.saturating_sub(1);
        if borrowed_seat {
            st.1 = st.1.saturating_sub(1);
        }
    }
}

struct Level {
    limit: usize,
    pool: Arc<Pool>,
    state: Mutex<LevelState>,
}

impl Level {
    fn lock(&self) -> std::sync::MutexGuard<'_, LevelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take one of the level's own seats, else borrow one.
    fn try_take(&self, st: &mut LevelState) -> bool {
        if st.executing < self.limit {
            self.pool.take(false);
        } else if self.pool.take(true) {
            st.borrowed += 1;
        } else {
            return false;
        }
        st.executing += 1;
        true
    }

    fn give_back(&self, st: &mut LevelState) {
        st.executing = st.executing.saturating_sub(1);
        let borrowed = st.borrowed > 0;
        if borrowed {
            st.borrowed -= 1;
        }
        self.pool.put(borrowed);
    }

    /// Hand free seats to waiting requests.
    fn dispatch(&self, st: &mut LevelState) {
        while st.queued > 0 && self.try_take(st) {
            let granted = loop {
                match st.next_waiter() {
                    // A waiter that gave up (its request was dropped) frees its turn.
                    Some(w) => {
                        if w.grant.send(()).is_ok() {
                            break true;
                        }
                    }
                    None => break false,
                }
            };
            if !granted {
                self.give_back(st);
                return;
            }
        }
    }

    fn release(&self) {
        let mut st = self.lock();
        self.give_back(&mut st);
        self.dispatch(&mut st);
    }
}

/// A seat in a level, released (and handed to the next waiting flow) when dropped.
pub struct Seat {
    level: Option<Arc<Level>>,
    pub classification: Classification,
}

impl Seat {
    /// Does this request hold one of its level's seats (false: exempt or long-running)?
    pub fn holds_seat(&self) -> bool {
        self.level.is_some()
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(l) = self.level.take() {
            l.release();
        }
    }
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat")
            .field("classification", &self.classification)
            .field("holds_seat", &self.level.is_some())
            .finish()
    }
}

/// The flow controller of one API server.
pub struct FlowControl {
    classifier: Arc<dyn Classifier>,
    levels: Vec<Arc<Level>>,
    cfg: FlowControlConfig,
    metrics: Option<Arc<Metrics>>,
}

impl FlowControl {
    pub fn new(
        cfg: FlowControlConfig,
        classifier: Arc<dyn Classifier>,
    ) -> Result<Self, FlowControlError> {
        cfg.validate()?;
        let pool = Arc::new(Pool {
            server_limit: cfg.server_concurrency_limit(),
            lendable: cfg.lendable_seats(),
            state: Mutex::default(),
        });
        let levels = PriorityLevel::LIMITED
            .iter()
            .map(|l| {
                Arc::new(Level {
                    limit: cfg.level_limit(*l),
                    pool: pool.clone(),
                    state: Mutex::default(),
                })
            })
            .collect();
        Ok(FlowControl {
            classifier,
            levels,
            cfg,
            metrics: None,
        })
    }

    /// Count dispatched and rejected requests and queue waits into `metrics`
    /// (`apiserver_flowcontrol_*`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn config(&self) -> &FlowControlConfig {
        &self.cfg
    }

    pub fn classify(&self, r: &RequestDigest<'_>) -> Classification {
        self.classifier.classify(r)
    }

    /// Requests executing in `level` (tests, metrics).
    pub fn executing(&self, level: PriorityLevel) -> usize {
        self.level(level).map(|l| l.lock().executing).unwrap_or(0)
    }

    /// Requests waiting in `level`.
    pub fn queued(&self, level: PriorityLevel) -> usize {
        self.level(level).map(|l| l.lock().queued).unwrap_or(0)
    }

    fn level(&self, level: PriorityLevel) -> Option<&Arc<Level>> {
        level.index().and_then(|i| self.levels.get(i))
    }

    /// Classify and admit a request: at once when exempt, long-running or its level has a free
    /// seat; after waiting its flow's turn otherwise. Refused with 429 when the queue is full
    /// or the wait limit passes.
    pub async fn admit(&self, r: &RequestDigest<'_>) -> Result<Seat, ApiError> {
        let classification = self.classify(r);
        let limited = if r.long_running {
            None
        } else {
            self.level(classification.level).cloned()
        };
        let Some(level) = limited else {
            return Ok(Seat {
                level: None,
                classification,
            });
        };
        let started = Instant::now();
        let (id, granted): (u64, oneshot::Receiver<()>) = {
            let mut st = level.lock();
            if st.queued == 0 && level.try_take(&mut st) {
                drop(st);
                self.dispatched(&classification, started, true);
                return Ok(Seat {
                    level: Some(level),
                    classification,
                });
            }
            let flow_len = st.flows.get(&classification.flow).map_or(0, VecDeque::len);
            if flow_len >= self.cfg.queue_length_limit || st.queued >= self.cfg.level_queue_limit {
                drop(st);
                return Err(self.reject(&classification, Rejection::QueueFull));
            }
            let id = st.next_id;
            st.next_id += 1;
            let (tx, rx) = oneshot::channel();
            let queue = st.flows.entry(classification.flow.clone()).or_default();
            queue.push_back(Waiter { id, grant: tx });
            if queue.len() == 1 {
                st.turns.push_back(classification.flow.clone());
            }
            st.queued += 1;
            (id, rx)
        };
        // Withdraws the waiter when this future is dropped while queued; it owns the receiver,
        // so a grant cannot get lost between the two.
        let mut guard = QueuedGuard {
            level: &level,
            flow: &classification.flow,
            id,
            granted,
            armed: true,
        };
        let outcome = tokio::time::timeout(self.cfg.request_wait_limit, &mut guard.granted).await;
        guard.armed = false;
        if !matches!(outcome, Ok(Ok(()))) {
            // Still queued: refused. Gone: granted just as the wait ended, the seat is ours.
            if level.lock().withdraw(&classification.flow, id) {
                return Err(self.reject(&classification, Rejection::TimedOut));
            }
        }
        drop(guard);
        self.dispatched(&classification, started, false);
        Ok(Seat {
            level: Some(level),
            classification,
        })
    }

    fn dispatched(&self, c: &Classification, started: Instant, at_once: bool) {
        if let Some(m) = &self.metrics {
            let labels = [
                ("priority_level", c.level.name()),
                ("flow_schema", c.flow_schema),
            ];
            m.inc(
                "apiserver_flowcontrol_dispatched_requests_total",
                "Requests dispatched to execution by priority level and flow schema.",
                &labels,
                1.0,
            );
            if !at_once {
                m.observe(
                    "apiserver_flowcontrol_request_wait_duration_seconds",
                    "Time queued requests waited for a seat.",
                    &labels,
                    started.elapsed(),
                );
            }
        }
    }

    fn reject(&self, c: &Classification, why: Rejection) -> ApiError {
        tracing::debug!(
            flow_schema = c.flow_schema,
            priority_level = c.level.name(),
            flow = %c.flow,
            reason = why.label(),
            "request refused by priority and fairness"
        );
        if let Some(m) = &self.metrics {
            m.inc(
                "apiserver_flowcontrol_rejected_requests_total",
                "Requests refused with 429 by priority level, flow schema and reason.",
                &[
                    ("priority_level", c.level.name()),
                    ("flow_schema", c.flow_schema),
                    ("reason", why.label()),
                ],
                1.0,
            );
        }
        too_many_requests()
    }
}

struct QueuedGuard<'a> {
    level: &'a Level,
    flow: &'a str,
    id: u64,
    granted: oneshot::Receiver<()>,
    armed: bool,
}

impl Drop for QueuedGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self.level.lock();
            // The receiver is alive until this returns, so a waiter that is gone was granted.
            if !st.withdraw(self.flow, self.id) {
                // It was granted a seat nobody will use: hand it on.
                self.level.give_back(&mut st);
                self.level.dispatch(&mut st);
            }
        }
    }
}

#[cfg(test)]
#[path = "flowcontrol/tests.rs"]
mod tests;
