//! A pod's life on this node as an explicit state machine (krustlet-style: one state per stage,
//! transitions as functions). Every transition takes the current state plus what was observed
//! (node admission's verdict, volume preparation, the runtime's answer, the runtime's pod status)
//! and returns the next state and the [`Action`]s to carry out, so the policy (start back-off,
//! restart back-off, phases, status) is testable without containerd or an API server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    ContainerState as K8sContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::probe::ProbeState;
use crate::runtime::{
    ContainerSpecLite, ContainerState, PodRuntimeStatus, PodSpecLite, RestartPolicy, RuntimeError,
};

/// First wait after a missing ConfigMap/Secret/volume source, doubled up to [`VOLUME_RETRY_MAX`].
pub const VOLUME_RETRY_FIRST: Duration = Duration::from_secs(2);
pub const VOLUME_RETRY_MAX: Duration = Duration::from_secs(60);
/// First wait after a failed sandbox/container creation, doubled up to [`START_RETRY_MAX`].
pub const START_RETRY_FIRST: Duration = Duration::from_secs(5);
pub const START_RETRY_MAX: Duration = Duration::from_secs(300);
/// Container restart back-off: the first restart is immediate, then 10s, 20s, ... up to 5 minutes
/// (the kubelet's CrashLoopBackOff).
pub const RESTART_BACKOFF_FIRST: Duration = Duration::from_secs(10);
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Not before `until`; `delay` is the wait that led there (the next one doubles it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub until: Instant,
    pub delay: Duration,
    /// The `BackOff` event of this wait was recorded.
    pub announced: bool,
}

impl Backoff {
    /// The back-off after one more failure: `first` the first time, then doubled up to `max`.
    fn after(prev: Option<Backoff>, now: Instant, first: Duration, max: Duration) -> Backoff {
        let delay = prev.map(|b| (b.delay * 2).min(max)).unwrap_or(first);
        Backoff {
            until: now + delay,
            delay,
            announced: false,
        }
    }
}

/// Pod phase as Kubernetes reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }

    /// The phase the API reports, if it is a final one.
    pub fn terminal_from_api(phase: Option<&str>) -> Option<Phase> {
        match phase {
            Some("Succeeded") => Some(Phase::Succeeded),
            Some("Failed") => Some(Phase::Failed),
            _ => None,
        }
    }
}

/// Where a pod bound to this node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// Seen, nothing created yet: node admission, volumes and the sandbox come next.
    New,
    /// An env source or volume (ConfigMap, Secret, ...) is not there yet; retried after `retry`.
    WaitingForVolumes { retry: Backoff, why: String },
    /// Creating the sandbox or a container failed (image pull, config); retried after `retry`.
    StartBackOff {
        retry: Backoff,
        reason: &'static str,
        message: String,
    },
    /// Refused by node admission (reported Failed; the Warning event was recorded on entry).
    Rejected { message: String },
    /// Sandbox and containers created. Containers that exit are restarted per restartPolicy;
    /// `restarts` holds each container's back-off (not before, current delay).
    Running { restarts: BTreeMap<String, Backoff> },
    /// Deleted in the API: being stopped (with its grace period) and removed.
    Terminating,
    /// Finished (all containers exited and none is to be restarted, or the API says so).
    Terminated(Phase),
}

impl PodState {
    /// Whether the pod has (or had) a sandbox in the runtime to observe.
    pub fn started(&self) -> bool {
        matches!(self, PodState::Running { .. } | PodState::Terminated(_))
    }

    /// A not-yet-started pod waiting out a back-off at `now`.
    pub fn backing_off(&self, now: Instant) -> bool {
        match self {
            PodState::WaitingForVolumes { retry, .. } | PodState::StartBackOff { retry, .. } => {
                now < retry.until
            }
            _ => false,
        }
    }

    fn start_backoff(&self) -> Option<Backoff> {
        match self {
            PodState::WaitingForVolumes { retry, .. } | PodState::StartBackOff { retry, .. } => {
                Some(*retry)
            }
            _ => None,
        }
    }
}

/// What the pod worker must do after a transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record the node-admission Warning event (once per rejection).
    RecordRejection,
    /// Restart the exited container (a new attempt) with the resolved spec.
    RestartContainer(String),
    /// Create and start the (init or app) container for the first time.
    StartContainer(String),
    /// Stop the running container (failed liveness/startup probe or postStart hook, or a sidecar
    /// of a finished pod); `message`: the `Killing` event's, if one is recorded.
    StopContainer {
        name: String,
        grace: Option<Duration>,
        message: Option<String>,
    },
    /// Stop the pod's containers (SIGKILL after the grace period) and its sandbox.
    StopPod(Duration),
    /// Remove the pod's sandbox, containers and volumes.
    RemovePod,
    /// Delete the pod object with grace 0 (the kubelet's final delete).
    FinalDelete,
    /// Write this status (the worker skips it when it equals the last one written).
    WriteStatus(Box<PodStatus>),
    /// Record an event on the pod (a Warning or Normal one), as the kubelet does.
    RecordEvent {
        warning: bool,
        reason: &'static str,
        message: String,
    },
}

/// The kubelet's way of naming a pod in messages: `name_namespace(uid)`.
pub fn pod_ref(spec: &PodSpecLite) -> String {
    format!("{}_{}({})", spec.name, spec.namespace, spec.uid)
}

/// A duration as Go prints one (`10s`, `1m20s`, `5m0s`), as in the kubelet's messages.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60),
    }
}

/// The containers of a running pod held by the restart back-off at `now`, with the current
/// delay: they are reported Waiting with reason `CrashLoopBackOff`.
pub fn crash_loops(state: &PodState, now: Instant) -> BTreeMap<String, Duration> {
    match state {
        PodState::Running { restarts } => restarts
            .iter()
            .filter(|(_, b)| now < b.until)
            .map(|(n, b)| (n.clone(), b.delay))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Node admission's verdict on a pod that is not started.
pub fn on_admission_refused(state: PodState, status_message: String) -> (PodState, Vec<Action>) {
    let mut actions = Vec::new();
    if !matches!(state, PodState::Rejected { .. }) {
        actions.push(Action::RecordRejection);
    }
    actions.push(Action::WriteStatus(Box::new(failed_status(
        crate::security::REJECT_REASON,
        &status_message,
    ))));
    (
        PodState::Rejected {
            message: status_message,
        },
        actions,
    )
}

/// Volumes or env sources could not be prepared: wait with back-off, report
/// CreateContainerConfigError on every container.
pub fn on_volumes_missing(
    state: PodState,
    spec: &PodSpecLite,
    why: String,
    host_ip: &str,
    now: Instant,
) -> (PodState, Vec<Action>) {
    let retry = Backoff::after(
        state.start_backoff(),
        now,
        VOLUME_RETRY_FIRST,
        VOLUME_RETRY_MAX,
    );
    let status = pending_status(spec, "CreateContainerConfigError", &why, host_ip);
    (
        PodState::WaitingForVolumes {
            retry,
            why: why.clone(),
        },
        vec![
            Action::RecordEvent {
                warning: true,
                reason: "Failed",
                message: format!("Error: {why}"),
            },
            Action::WriteStatus(Box::new(status)),
        ],
    )
}

/// The runtime's answer to creating the pod.
pub fn on_start(
    state: PodState,
    spec: &PodSpecLite,
    result: Result<(), &RuntimeError>,
    host_ip: &str,
    now: Instant,
) -> (PodState, Vec<Action>) {
    let e = match result {
        Ok(()) => {
            return (
                PodState::Running {
                    restarts: BTreeMap::new(),
                },
                vec![],
            )
        }
        Err(e) => e,
    };
    let message = e.to_string();
    let pull = matches!(
        e,
        RuntimeError::ImageNotPresent(_)
            | RuntimeError::Cri {
                call: "PullImage",
                ..
            }
    ) || message.contains("pull")
        || message.contains("not present");
    let pulled_before = matches!(
        &state,
        PodState::StartBackOff {
            reason: "ErrImagePull" | "ImagePullBackOff",
            ..
        }
    );
    let reason = match e {
        RuntimeError::NonRootPolicy(_) => "CreateContainerConfigError",
        RuntimeError::InvalidImageName(_) => "InvalidImageName",
        _ if pull && pulled_before => "ImagePullBackOff",
        _ if pull => "ErrImagePull",
        _ => "CreateContainerError",
    };
    let retry = Backoff::after(
        state.start_backoff(),
        now,
        START_RETRY_FIRST,
        START_RETRY_MAX,
    );
    let status = pending_status(spec, reason, &message, host_ip);
    let mut actions = start_failure_events(spec, e, reason, &message);
    actions.push(Action::WriteStatus(Box::new(status)));
    (
        PodState::StartBackOff {
            retry,
            reason,
            message,
        },
        actions,
    )
}

/// The kubelet's events for a pod whose containers could not be started.
fn start_failure_events(
    spec: &PodSpecLite,
    e: &RuntimeError,
    reason: &'static str,
    message: &str,
) -> Vec<Action> {
    let warn = |reason: &'static str, message: String| Action::RecordEvent {
        warning: true,
        reason,
        message,
    };
    // The image concerned: named by the error, else the first container's whose image the
    // message mentions, else the first container's.
    let image = match e {
        RuntimeError::ImageNotPresent(i) | RuntimeError::InvalidImageName(i) => i.clone(),
        _ => spec
            .init_containers
            .iter()
            .chain(&spec.containers)
            .map(|c| c.image.clone())
            .find(|i| message.contains(i.as_str()))
            .or_else(|| {
                spec.init_containers
                    .iter()
                    .chain(&spec.containers)
                    .next()
                    .map(|c| c.image.clone())
            })
            .unwrap_or_default(),
    };
    match reason {
        "ErrImagePull" => vec![
            warn(
                "Failed",
                format!("Failed to pull image {image:?}: {message}"),
            ),
            warn("Failed", "Error: ErrImagePull".into()),
        ],
        "ImagePullBackOff" => vec![
            Action::RecordEvent {
                warning: false,
                reason: "BackOff",
                message: format!("Back-off pulling image {image:?}"),
            },
            warn("Failed", "Error: ImagePullBackOff".into()),
        ],
        "InvalidImageName" => vec![
            warn("InspectFailed", message.to_string()),
            warn("Failed", "Error: InvalidImageName".into()),
        ],
        _ => vec![warn("Failed", format!("Error: {message}"))],
    }
}

/// How far the init containers got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitProgress {
    /// All init containers completed (sidecars: running and started), or the app containers
    /// already exist.
    Done,
    /// Waiting for the init container with this index.
    At(usize),
    /// A regular init container failed and the restartPolicy is Never: the pod failed.
    Failed(String),
}

fn status_of<'a>(rs: &'a PodRuntimeStatus, name: &str) -> Option<&'a ContainerState> {
    rs.containers
        .iter()
        .find(|c| c.name == name)
        .map(|c| &c.state)
}

/// The init containers' progress from the runtime's view.
pub fn init_progress(
    spec: &PodSpecLite,
    rs: &PodRuntimeStatus,
    probes: &BTreeMap<String, ProbeState>,
) -> InitProgress {
    let app_started = spec
        .containers
        .iter()
        .any(|c| status_of(rs, &c.name).is_some());
    for (i, ic) in spec.init_containers.iter().enumerate() {
        match status_of(rs, &ic.name) {
            Some(ContainerState::Exited { code: 0, .. }) if !ic.sidecar => continue,
            Some(ContainerState::Exited { .. })
                if !ic.sidecar && spec.restart_policy == RestartPolicy::Never =>
            {
                return InitProgress::Failed(ic.name.clone());
            }
            Some(ContainerState::Running { .. })
                if ic.sidecar && probes.get(&ic.name).is_some_and(|p| p.started) =>
            {
                continue
            }
            // A sidecar that stopped later is restarted, it does not hold the pod back.
            _ if app_started => continue,
            _ => return InitProgress::At(i),
        }
    }
    InitProgress::Done
}

/// Adds a restart of `name` to `actions` if its back-off is over, and advances the back-off.
fn restart_due(
    restarts: &mut BTreeMap<String, Backoff>,
    spec: &PodSpecLite,
    name: &str,
    now: Instant,
    actions: &mut Vec<Action>,
) {
    if let Some(b) = restarts.get_mut(name).filter(|b| now < b.until) {
        // Held by the back-off (CrashLoopBackOff): said once per wait, as the kubelet's event.
        if !b.announced {
            b.announced = true;
            actions.push(Action::RecordEvent {
                warning: true,
                reason: "BackOff",
                message: format!(
                    "Back-off restarting failed container {name} in pod {}",
                    pod_ref(spec)
                ),
            });
        }
        return;
    }
    actions.push(Action::RestartContainer(name.to_string()));
    let delay = match restarts.get(name) {
        None => RESTART_BACKOFF_FIRST,
        Some(b) => (b.delay * 2).min(RESTART_BACKOFF_MAX),
    };
    restarts.insert(
        name.to_string(),
        Backoff {
            until: now + delay,
            delay,
            announced: false,
        },
    );
}

/// The runtime's status of a started pod: run the init containers in order, then the app
/// containers; restart exited containers per restartPolicy (with back-off); stop containers
/// whose liveness/startup probe or postStart hook failed; finish the pod when nothing is to run
/// any more. `probes`: the probe verdicts of the running containers (by name). `api_final`: the
/// phase the API already reports, if final (then nothing restarts).
pub fn on_observed(
    state: PodState,
    spec: &PodSpecLite,
    rs: &PodRuntimeStatus,
    probes: &BTreeMap<String, ProbeState>,
    api_final: Option<Phase>,
    now: Instant,
) -> (PodState, Vec<Action>) {
    let mut restarts = match state {
        PodState::Terminated(p) => return (PodState::Terminated(p), vec![]),
        PodState::Running { restarts } => restarts,
        _ => BTreeMap::new(),
    };
    if let Some(p) = api_final {
        return (PodState::Terminated(p), vec![]);
    }
    let mut actions = Vec::new();
    // Failed probes and hooks: stop the container; the restart policy takes it from there.
    for (name, p) in probes {
        if let Some(k) = &p.kill {
            actions.push(Action::StopContainer {
                name: name.clone(),
                grace: k.grace,
                message: Some(k.message.clone()),
            });
        }
    }
    let progress = init_progress(spec, rs, probes);
    // Sidecars are restarted whatever the pod's restartPolicy.
    for ic in spec.init_containers.iter().filter(|c| c.sidecar) {
        if let Some(ContainerState::Exited { .. }) = status_of(rs, &ic.name) {
            restart_due(&mut restarts, spec, &ic.name, now, &mut actions);
        }
    }
    match &progress {
        InitProgress::At(i) => {
            let ic = &spec.init_containers[*i];
            match status_of(rs, &ic.name) {
                None => actions.push(Action::StartContainer(ic.name.clone())),
                // Failed (exit 0 would be done, Never would be Failed): again, with back-off.
                Some(ContainerState::Exited { .. }) if !ic.sidecar => {
                    restart_due(&mut restarts, spec, &ic.name, now, &mut actions)
                }
                _ => {}
            }
        }
        InitProgress::Failed(_) => {}
        InitProgress::Done => {
            // Ephemeral containers are started once, in order, and never restarted.
            for e in &spec.ephemeral_containers {
                if status_of(rs, &e.name).is_none() {
                    actions.push(Action::StartContainer(e.name.clone()));
                }
            }
            for c in &spec.containers {
                match status_of(rs, &c.name) {
                    None => actions.push(Action::StartContainer(c.name.clone())),
                    Some(ContainerState::Exited { code, .. })
                        if spec.restart_policy.should_restart(*code) =>
                    {
                        restart_due(&mut restarts, spec, &c.name, now, &mut actions)
                    }
                    _ => {}
                }
            }
        }
    }
    match phase_of(spec, rs, &progress) {
        p @ (Phase::Succeeded | Phase::Failed) => {
            // The pod is done: its sidecars go too.
            for ic in spec.init_containers.iter().rev() {
                if matches!(
                    status_of(rs, &ic.name),
                    Some(ContainerState::Running { .. })
                ) {
                    actions.push(Action::StopContainer {
                        name: ic.name.clone(),
                        grace: None,
                        message: None,
                    });
                }
            }
            actions
                .retain(|a| !matches!(a, Action::RestartContainer(_) | Action::StartContainer(_)));
            (PodState::Terminated(p), actions)
        }
        _ => (PodState::Running { restarts }, actions),
    }
}

/// The pod was deleted in the API: stop it with its grace period (at most 30s), remove it, and
/// delete the object for good.
pub fn on_deleted(grace: Duration) -> (PodState, Vec<Action>) {
    (
        PodState::Terminating,
        vec![
            Action::StopPod(grace.min(Duration::from_secs(30))),
            Action::RemovePod,
            Action::FinalDelete,
        ],
    )
}

/// The spec cannot be run at all.
pub fn on_invalid_spec(message: &str) -> (PodState, Vec<Action>) {
    (
        PodState::Terminated(Phase::Failed),
        vec![Action::WriteStatus(Box::new(failed_status(
            "InvalidSpec",
            message,
        )))],
    )
}

// ------------------------------------------------------------------------------------- status

/// Kubernetes time (second precision, as the kubelet reports it).
pub fn k8s_time(t: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).unwrap_or_default())
}

fn failed_status(reason: &str, message: &str) -> PodStatus {
    PodStatus {
        phase: Some(Phase::Failed.as_str().into()),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Default::default()
    }
}

/// Nothing is running yet: every container waits with `reason`.
pub fn pending_status(spec: &PodSpecLite, reason: &str, message: &str, host_ip: &str) -> PodStatus {
    let statuses = spec
        .containers
        .iter()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            state: Some(K8sContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    PodStatus {
        phase: Some(Phase::Pending.as_str().into()),
        host_ip: Some(host_ip.into()),
        container_statuses: Some(statuses),
        ..Default::default()
    }
}

/// The phase the runtime's container states give under the pod's restartPolicy (sidecars do
/// not count).
pub fn phase_of(spec: &PodSpecLite, rs: &PodRuntimeStatus, init: &InitProgress) -> Phase {
    match init {
        InitProgress::Failed(_) => return Phase::Failed,
        InitProgress::At(_) => return Phase::Pending,
        InitProgress::Done => {}
    }
    let (mut running, mut ok, mut failed) = (0, 0, 0);
    for c in &spec.containers {
        match status_of(rs, &c.name) {
            Some(ContainerState::Running { .. }) => running += 1,
            Some(ContainerState::Exited { code: 0, .. }) => ok += 1,
            Some(ContainerState::Exited { .. }) => failed += 1,
            _ => {}
        }
    }
    let n = spec.containers.len();
    if running == n {
        Phase::Running
    } else if ok + failed == n && n > 0 {
        match spec.restart_policy {
            RestartPolicy::Never if failed > 0 => Phase::Failed,
            RestartPolicy::Never | RestartPolicy::OnFailure if failed == 0 => Phase::Succeeded,
            _ => Phase::Running,
        }
    } else if running > 0 || ok + failed > 0 {
        Phase::Running
    } else {
        Phase::Pending
    }
}

/// The Kubernetes status of one container from the runtime's view; `waiting_reason` when it
/// was not created yet; `backoff`: the restart back-off (CrashLoopBackOff) holding it, if any.
fn container_status(
    c: &ContainerSpecLite,
    rs: &PodRuntimeStatus,
    probe: Option<&ProbeState>,
    init: bool,
    waiting_reason: &str,
    backoff: Option<(Duration, &str)>,
) -> ContainerStatus {
    let r = rs.containers.iter().find(|x| x.name == c.name);
    let (state, ready, started) = match r.map(|r| &r.state) {
        Some(ContainerState::Running { started_at }) => {
            let p = probe.cloned().unwrap_or_default();
            (
                K8sContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(k8s_time(*started_at)),
                    }),
                    ..Default::default()
                },
                p.ready && (!init || c.sidecar),
                p.started,
            )
        }
        Some(exited @ ContainerState::Exited { code, .. }) => {
            let mut t = terminated(exited);
            if let Some(t) = t.terminated.as_mut() {
                t.container_id = r.map(|r| r.container_id.clone());
            }
            // A completed init container counts as ready.
            (t, init && !c.sidecar && *code == 0, false)
        }
        Some(ContainerState::Waiting { reason }) => (waiting(reason), false, false),
        None => (waiting(waiting_reason), false, false),
    };
    let mut last_state = r
        .and_then(|r| r.last_state.as_ref())
        .map(terminated)
        .filter(|s| s.terminated.is_some());
    let mut state = state;
    if let (Some((delay, pod)), true) = (backoff, state.terminated.is_some()) {
        // Exited and held by the restart back-off: the kubelet reports it waiting, the exited
        // instance as its last state.
        last_state = Some(state);
        state = K8sContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("CrashLoopBackOff".into()),
                message: Some(format!(
                    "back-off {} restarting failed container={} pod={pod}",
                    go_duration(delay),
                    c.name
                )),
            }),
            ..Default::default()
        };
    }
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: r.map(|r| r.image_id.clone()).unwrap_or_default(),
        container_id: r.map(|r| r.container_id.clone()),
        restart_count: r.map(|r| r.restart_count as i32).unwrap_or(0),
        ready,
        started: Some(started),
        state: Some(state),
        last_state,
        ..Default::default()
    }
}

/// The status of a started pod from the runtime's view. `start_time`: none if the API already
/// has one (it is set once). `crash_loops`: the containers held by the restart back-off
/// ([`crash_loops`]).
pub fn running_status(
    spec: &PodSpecLite,
    rs: &PodRuntimeStatus,
    probes: &BTreeMap<String, ProbeState>,
    crash_loops: &BTreeMap<String, Duration>,
    host_ip: &str,
    start_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> PodStatus {
    let progress = init_progress(spec, rs, probes);
    let pod = pod_ref(spec);
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .map(|c| {
            let b = crash_loops.get(&c.name).map(|d| (*d, pod.as_str()));
            container_status(c, rs, probes.get(&c.name), true, "PodInitializing", b)
        })
        .collect();
    let app_waiting = if spec.init_containers.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            let b = crash_loops.get(&c.name).map(|d| (*d, pod.as_str()));
            container_status(c, rs, probes.get(&c.name), false, app_waiting, b)
        })
        .collect();
    // Ephemeral containers are never ready and never restarted.
    let ephemeral_statuses: Vec<ContainerStatus> = spec
        .ephemeral_containers
        .iter()
        .map(|c| {
            let mut s = container_status(c, rs, None, false, "ContainerCreating", None);
            s.ready = false;
            s
        })
        .collect();
    let initialized = progress == InitProgress::Done;
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let incomplete: Vec<&str> = init_statuses
        .iter()
        .filter(|s| !(s.ready || s.started == Some(true)))
        .map(|s| s.name.as_str())
        .collect();
    let cond = |t: &str, ok: bool, reason: &str, message: String| PodCondition {
        type_: t.into(),
        status: if ok { "True" } else { "False" }.into(),
        last_transition_time: Some(k8s_time(now)),
        reason: (!ok).then(|| reason.to_string()),
        message: (!ok).then_some(message),
        ..Default::default()
    };
    let list = |v: &[&str]| format!("[{}]", v.join(" "));
    let all_ready = unready.is_empty() && !statuses.is_empty();
    PodStatus {
        phase: Some(phase_of(spec, rs, &progress).as_str().into()),
        host_ip: Some(host_ip.into()),
        host_ips: Some(vec![HostIP { ip: host_ip.into() }]),
        conditions: Some(vec![
            cond("PodScheduled", true, "", String::new()),
            cond(
                "Initialized",
                initialized,
                "ContainersNotInitialized",
                format!("containers with incomplete status: {}", list(&incomplete)),
            ),
            cond(
                "ContainersReady",
                all_ready,
                "ContainersNotReady",
                format!("containers with unready status: {}", list(&unready)),
            ),
            cond(
                "Ready",
                all_ready && initialized,
                "ContainersNotReady",
                format!("containers with unready status: {}", list(&unready)),
            ),
        ]),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ephemeral_container_statuses: (!ephemeral_statuses.is_empty())
            .then_some(ephemeral_statuses),
        start_time: start_time.map(k8s_time),
        pod_ip: rs.ip.clone(),
        pod_ips: rs.ip.clone().map(|ip| vec![PodIP { ip }]),
        ..Default::default()
    }
}

/// The `terminated` state of an exited container instance (empty for other states).
fn terminated(state: &ContainerState) -> K8sContainerState {
    let ContainerState::Exited {
        code,
        reason,
        finished_at,
        message,
    } = state
    else {
        return K8sContainerState::default();
    };
    let reason = match (reason.is_empty(), *code) {
        (false, _) => reason.clone(),
        (true, 0) => "Completed".into(),
        (true, _) => "Error".into(),
    };
    K8sContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: *code,
            reason: Some(reason),
            message: message.clone(),
            finished_at: Some(k8s_time(*finished_at)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str) -> K8sContainerState {
    K8sContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: None,
        }),
        ..Default::default()
    }
}

/// A status compared for "changed?": transition times do not count.
pub fn comparable(status: &PodStatus) -> PodStatus {
    let mut s = status.clone();
    for c in s.conditions.iter_mut().flatten() {
        c.last_transition_time = None;
    }
    s
}
