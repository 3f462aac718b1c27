//! The pod worker against the recording fake runtime and a recording Kubernetes side.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use serde_json::json;

use super::state::{self, RESTART_BACKOFF_FIRST, START_RETRY_FIRST, VOLUME_RETRY_FIRST};
use super::*;
use crate::runtime::fake::{Call, FakeRuntime};
use crate::security::ProtectedPath;

/// What the worker told the API server.
#[derive(Default)]
struct RecordingApi {
    statuses: Mutex<Vec<(String, PodStatus)>>,
    rejections: Mutex<Vec<String>>,
    deleted: Mutex<Vec<String>>,
    /// (pod name, "<type> <reason>: <message>") of the events recorded.
    events: Mutex<Vec<(String, String)>>,
    /// Pod names whose volumes cannot be prepared yet.
    missing_volumes: Mutex<BTreeSet<String>>,
}

impl RecordingApi {
    fn statuses_of(&self, name: &str) -> Vec<PodStatus> {
        self.statuses
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .collect()
    }
    fn last(&self, name: &str) -> PodStatus {
        self.statuses_of(name).pop().expect("a status was written")
    }
}

#[async_trait]
impl PodApi for RecordingApi {
    async fn write_status(&self, pod: &Pod, status: &PodStatus) -> Result<(), AgentError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.statuses.lock().unwrap().push((name, status.clone()));
        Ok(())
    }
    async fn final_delete(&self, pod: &Pod) -> Result<(), AgentError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.deleted.lock().unwrap().push(name);
        Ok(())
    }
    async fn record_rejection(&self, pod: &Pod, rejection: &Rejection) -> Result<(), AgentError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.rejections
            .lock()
            .unwrap()
            .push(format!("{name}: {}", rejection.message()));
        Ok(())
    }
    async fn record_event(
        &self,
        pod: &Pod,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Result<(), AgentError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.events.lock().unwrap().push((
            name,
            format!(
                "{} {reason}: {message}",
                if warning { "Warning" } else { "Normal" }
            ),
        ));
        Ok(())
    }
    async fn prepare_volumes(
        &self,
        pod: &Pod,
        _spec: &mut PodSpecLite,
        _admission: &NodeAdmission,
        _fresh_after: std::time::Instant,
    ) -> Result<(), String> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if self.missing_volumes.lock().unwrap().contains(&name) {
            return Err(format!("configmap \"cfg-{name}\" not found"));
        }
        Ok(())
    }
    async fn refresh_volumes(&self, _pod: &Pod) -> Result<(), String> {
        Ok(())
    }
}

struct Harness {
    rt: Arc<FakeRuntime>,
    api: Arc<RecordingApi>,
    worker: PodWorker,
    desired: BTreeMap<String, Pod>,
    now: Instant,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let rt = Arc::new(FakeRuntime::new());
        let api = Arc::new(RecordingApi::default());
        let admission = NodeAdmission::new([ProtectedPath {
            path: dir.path().to_path_buf(),
            what: "the agent's data",
        }]);
        let worker = PodWorker::new(
            rt.clone(),
            api.clone(),
            admission,
            Arc::new(Metrics::new()),
            dir.path().to_path_buf(),
            "192.0.2.10".into(),
            Arc::new(Mutex::new(HashMap::new())),
        );
        Harness {
            rt,
            api,
            worker,
            desired: BTreeMap::new(),
            now: Instant::now(),
            _dir: dir,
        }
    }

    fn add(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap();
        self.desired.insert(uid, pod);
    }

    /// One reconcile pass `advance` after the previous one.
    async fn tick(&mut self, advance: Duration) {
        self.now += advance;
        self.worker.reconcile(&self.desired, self.now).await;
    }

    fn restarts(&self, uid: &str) -> usize {
        self.rt
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::RestartContainer { uid: u, .. } if u == uid))
            .count()
    }
}

fn pod(name: &str, restart_policy: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {"restartPolicy": restart_policy, "nodeName": "n1",
            "containers": [{"name": "main", "image": image}]},
    }))
    .unwrap()
}

fn container_state(s: &PodStatus) -> k8s_openapi::api::core::v1::ContainerState {
    s.container_statuses.as_ref().unwrap()[0]
        .state
        .clone()
        .unwrap()
}

#[tokio::test]
async fn a_pod_starts_and_reports_running() {
    let mut h = Harness::new();
    h.add(pod("web", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    assert!(h.rt.calls().contains(&Call::RunPod("uid-web".into())));
    assert!(matches!(
        h.worker.state("uid-web"),
        Some(PodState::Running { .. })
    ));
    let s = h.api.last("web");
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.host_ip.as_deref(), Some("192.0.2.10"));
    assert!(s.pod_ip.is_some());
    assert!(s.start_time.is_some());
    assert!(container_state(&s).running.is_some());
    let ready = s.conditions.as_ref().unwrap();
    assert!(ready.iter().all(|c| c.status == "True"), "{ready:?}");
    // Nothing changed: no second write, and the pod is not started twice.
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.api.statuses_of("web").len(), 1);
    let runs =
        h.rt.calls()
            .iter()
            .filter(|c| matches!(c, Call::RunPod(_)))
            .count();
    assert_eq!(runs, 1);
}

#[tokio::test]
async fn always_restarts_an_exited_container_with_back_off() {
    let mut h = Harness::new();
    h.add(pod("crash", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    // First exit: restarted at once.
    h.rt.exit("uid-crash", "main", 1);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.restarts("uid-crash"), 1);
    assert_eq!(h.rt.restarts("uid-crash", "main"), Some(1));
    // Second exit: not before the first back-off (10s) is over.
    h.rt.exit("uid-crash", "main", 1);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.restarts("uid-crash"), 1, "restarted inside the back-off");
    let s = h.api.last("crash");
    assert_eq!(s.phase.as_deref(), Some("Running"));
    // Held by the back-off: waiting in CrashLoopBackOff, the exited instance as lastState.
    let w = container_state(&s).waiting.expect("reported waiting");
    assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(
        w.message.as_deref(),
        Some("back-off 10s restarting failed container=main pod=crash_ns(uid-crash)")
    );
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    let t = cs
        .last_state
        .clone()
        .unwrap()
        .terminated
        .expect("last state");
    assert_eq!((t.exit_code, t.reason.as_deref()), (1, Some("Error")));
    assert!(!cs.ready);
    h.tick(Duration::from_secs(1)).await;
    // One BackOff event per wait, however many passes it holds.
    let backoffs = |h: &Harness| {
        events(h, "crash")
            .iter()
            .filter(|e| {
                *e == "Warning BackOff: Back-off restarting failed container main in pod crash_ns(uid-crash)"
            })
            .count()
    };
    assert_eq!(backoffs(&h), 1, "{:?}", events(&h, "crash"));
    h.tick(RESTART_BACKOFF_FIRST).await;
    assert_eq!(h.restarts("uid-crash"), 2);
    // The back-off doubles: 20s now.
    h.rt.exit("uid-crash", "main", 0);
    h.tick(Duration::from_secs(15)).await;
    assert_eq!(h.restarts("uid-crash"), 2);
    h.tick(Duration::from_secs(6)).await;
    assert_eq!(h.restarts("uid-crash"), 3);
    match h.worker.state("uid-crash") {
        Some(PodState::Running { restarts }) => {
            assert_eq!(restarts["main"].delay, Duration::from_secs(40))
        }
        other => panic!("{other:?}"),
    }
    // The status of a pass shows what the runtime reported before that pass's restarts.
    h.tick(Duration::from_secs(1)).await;
    let s = h.api.last("crash");
    assert_eq!(s.container_statuses.as_ref().unwrap()[0].restart_count, 3);
    assert!(container_state(&s).running.is_some());
}

#[tokio::test]
async fn on_failure_succeeds_on_zero_and_restarts_on_error() {
    let mut h = Harness::new();
    h.add(pod("ok", "OnFailure", "busybox:1.36"));
    h.add(pod("bad", "OnFailure", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    h.rt.exit("uid-ok", "main", 0);
    h.rt.exit("uid-bad", "main", 2);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.restarts("uid-ok"), 0);
    assert_eq!(h.restarts("uid-bad"), 1);
    assert_eq!(
        h.worker.state("uid-ok"),
        Some(&PodState::Terminated(Phase::Succeeded))
    );
    let s = h.api.last("ok");
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let t = container_state(&s).terminated.unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert_eq!(h.api.last("bad").phase.as_deref(), Some("Running"));
}

#[tokio::test]
async fn never_fails_on_error_and_succeeds_on_zero() {
    let mut h = Harness::new();
    h.add(pod("fail", "Never", "busybox:1.36"));
    h.add(pod("done", "Never", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    h.rt.exit("uid-fail", "main", 3);
    h.rt.exit("uid-done", "main", 0);
    h.tick(Duration::from_secs(1)).await;
    h.tick(RESTART_BACKOFF_FIRST * 10).await;
    assert_eq!(h.restarts("uid-fail") + h.restarts("uid-done"), 0);
    assert_eq!(h.api.last("fail").phase.as_deref(), Some("Failed"));
    assert_eq!(h.api.last("done").phase.as_deref(), Some("Succeeded"));
    assert_eq!(
        h.worker.state("uid-fail"),
        Some(&PodState::Terminated(Phase::Failed))
    );
}

#[tokio::test]
async fn an_image_pull_failure_backs_off_then_starts() {
    let mut h = Harness::new();
    h.rt.fail_pull("registry.invalid/nope:1");
    h.add(pod("pull", "Always", "registry.invalid/nope:1"));
    h.tick(Duration::ZERO).await;
    let s = h.api.last("pull");
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let w = container_state(&s).waiting.unwrap();
    assert_eq!(w.reason.as_deref(), Some("ErrImagePull"));
    assert!(w.message.unwrap().contains("registry.invalid/nope:1"));
    // Inside the back-off: no new attempt.
    h.tick(Duration::from_secs(1)).await;
    let runs = |h: &Harness| {
        h.rt.calls()
            .iter()
            .filter(|c| matches!(c, Call::RunPod(_)))
            .count()
    };
    assert_eq!(runs(&h), 1);
    h.tick(START_RETRY_FIRST).await;
    assert_eq!(runs(&h), 2);
    let w = container_state(&h.api.last("pull")).waiting.unwrap();
    assert_eq!(w.reason.as_deref(), Some("ImagePullBackOff"));
    match h.worker.state("uid-pull") {
        Some(PodState::StartBackOff { retry, reason, .. }) => {
            assert_eq!(
                (*reason, retry.delay),
                ("ImagePullBackOff", START_RETRY_FIRST * 2)
            )
        }
        other => panic!("{other:?}"),
    }
    // The kubelet's events: Failed (pull error, then ErrImagePull), then BackOff and
    // ImagePullBackOff.
    let ev = events(&h, "pull");
    assert!(
        ev[0].starts_with("Warning Failed: Failed to pull image \"registry.invalid/nope:1\": "),
        "{ev:?}"
    );
    assert_eq!(ev[1], "Warning Failed: Error: ErrImagePull");
    assert_eq!(
        ev[2],
        "Normal BackOff: Back-off pulling image \"registry.invalid/nope:1\""
    );
    assert_eq!(ev[3], "Warning Failed: Error: ImagePullBackOff");
    // The image appears: the next attempt after the back-off starts the pod.
    h.rt.allow_pull("registry.invalid/nope:1");
    h.tick(START_RETRY_FIRST * 2).await;
    assert_eq!(h.api.last("pull").phase.as_deref(), Some("Running"));
}

#[tokio::test]
async fn missing_volumes_wait_with_create_container_config_error() {
    let mut h = Harness::new();
    h.api.missing_volumes.lock().unwrap().insert("cfg".into());
    h.add(pod("cfg", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    assert!(!h.rt.has_pod("uid-cfg"));
    let w = container_state(&h.api.last("cfg")).waiting.unwrap();
    assert_eq!(w.reason.as_deref(), Some("CreateContainerConfigError"));
    let ev = events(&h, "cfg");
    assert_eq!(
        ev,
        vec![format!("Warning Failed: Error: {}", w.message.unwrap())]
    );
    assert!(matches!(
        h.worker.state("uid-cfg"),
        Some(PodState::WaitingForVolumes { retry, .. }) if retry.delay == VOLUME_RETRY_FIRST
    ));
    h.api.missing_volumes.lock().unwrap().clear();
    h.tick(VOLUME_RETRY_FIRST).await;
    assert!(h.rt.has_pod("uid-cfg"));
}

#[tokio::test]
async fn node_admission_rejects_once_and_creates_nothing() {
    let mut h = Harness::new();
    let mut p = pod("hostnet", "Always", "busybox:1.36");
    p.spec.as_mut().unwrap().host_network = Some(true);
    h.add(p);
    h.tick(Duration::ZERO).await;
    h.tick(Duration::from_secs(1)).await;
    assert!(!h.rt.calls().iter().any(|c| matches!(c, Call::RunPod(_))));
    assert_eq!(h.api.rejections.lock().unwrap().len(), 1, "one event");
    assert_eq!(h.api.statuses_of("hostnet").len(), 1, "one status write");
    let s = h.api.last("hostnet");
    assert_eq!(
        (s.phase.as_deref(), s.reason.as_deref()),
        (Some("Failed"), Some(crate::security::REJECT_REASON))
    );
}

#[tokio::test]
async fn deletion_stops_with_the_grace_period_and_removes() {
    let mut h = Harness::new();
    h.add(pod("del", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    let p = h.desired.get_mut("uid-del").unwrap();
    p.metadata.deletion_timestamp = Some(state::k8s_time(chrono::Utc::now()));
    p.metadata.deletion_grace_period_seconds = Some(7);
    h.tick(Duration::from_secs(1)).await;
    let calls = h.rt.calls();
    let stop = calls
        .iter()
        .position(|c| {
            *c == Call::StopPod {
                uid: "uid-del".into(),
                grace: Duration::from_secs(7),
            }
        })
        .expect("stopped with the pod's grace period");
    let remove = calls
        .iter()
        .position(|c| *c == Call::RemovePod("uid-del".into()))
        .expect("removed");
    assert!(stop < remove);
    assert!(!h.rt.has_pod("uid-del"));
    assert_eq!(*h.api.deleted.lock().unwrap(), vec!["del".to_string()]);
    assert_eq!(h.worker.state("uid-del"), Some(&PodState::Terminating));
    // A grace period above 30s is cut to 30s; the object going away untracks the pod.
    h.desired.clear();
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.worker.state("uid-del"), None);
    assert_eq!(
        state::on_deleted(Duration::from_secs(600)).1[0],
        Action::StopPod(Duration::from_secs(30))
    );
}

#[tokio::test]
async fn an_invalid_spec_fails_the_pod() {
    let mut h = Harness::new();
    let mut p = pod("nocontainers", "Always", "busybox:1.36");
    p.spec.as_mut().unwrap().containers.clear();
    h.add(p);
    h.tick(Duration::ZERO).await;
    let s = h.api.last("nocontainers");
    assert_eq!(
        (s.phase.as_deref(), s.reason.as_deref()),
        (Some("Failed"), Some("InvalidSpec"))
    );
    assert!(!h.rt.calls().iter().any(|c| matches!(c, Call::RunPod(_))));
}

#[tokio::test]
async fn adopted_pods_are_not_started_again() {
    let mut h = Harness::new();
    h.add(pod("old", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    // A new worker (agent restart) over the same runtime.
    let dir = tempfile::tempdir().unwrap();
    let mut w = PodWorker::new(
        h.rt.clone(),
        h.api.clone(),
        NodeAdmission::new([]),
        Arc::new(Metrics::new()),
        dir.path().to_path_buf(),
        "192.0.2.10".into(),
        Arc::new(Mutex::new(HashMap::new())),
    );
    w.adopt().await;
    w.reconcile(&h.desired, h.now).await;
    let runs =
        h.rt.calls()
            .iter()
            .filter(|c| matches!(c, Call::RunPod(_)))
            .count();
    assert_eq!(runs, 1);
    assert!(matches!(w.state("uid-old"), Some(PodState::Running { .. })));
}

#[test]
fn transitions_without_a_runtime() {
    let now = Instant::now();
    let spec = PodSpecLite {
        uid: "u".into(),
        containers: vec![crate::runtime::ContainerSpecLite {
            name: "c".into(),
            image: "i".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = crate::runtime::RuntimeError::NonRootPolicy("image runs as root".into());
    let (s, a) = state::on_start(PodState::New, &spec, Err(&e), "h", now);
    assert!(matches!(
        s,
        PodState::StartBackOff {
            reason: "CreateContainerConfigError",
            ..
        }
    ));
    assert_eq!(
        a[0],
        Action::RecordEvent {
            warning: true,
            reason: "Failed",
            message: "Error: image runs as root".into()
        }
    );
    assert!(matches!(a[1], Action::WriteStatus(_)));
    assert_eq!(a.len(), 2);
    let e = crate::runtime::RuntimeError::Timeout("sandbox".into());
    let (s, _) = state::on_start(s, &spec, Err(&e), "h", now);
    match s {
        PodState::StartBackOff { reason, retry, .. } => {
            assert_eq!(reason, "CreateContainerError");
            assert_eq!(retry.delay, START_RETRY_FIRST * 2);
            assert!(PodState::StartBackOff {
                reason,
                retry,
                message: String::new()
            }
            .backing_off(now));
        }
        other => panic!("{other:?}"),
    }
    let (s, a) = state::on_admission_refused(PodState::New, "no".into());
    assert_eq!(a[0], Action::RecordRejection);
    let (_, a) = state::on_admission_refused(s, "no".into());
    assert!(!a.contains(&Action::RecordRejection));
}

// ------------------------------------------------------------ init containers, probes, hooks

fn pod_json(name: &str, spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": spec,
    }))
    .unwrap()
}

fn starts(h: &Harness, uid: &str) -> Vec<String> {
    h.rt.calls()
        .iter()
        .filter_map(|c| match c {
            Call::StartContainer { uid: u, container } if u == uid => Some(container.clone()),
            _ => None,
        })
        .collect()
}

fn condition(s: &PodStatus, t: &str) -> String {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn events(h: &Harness, name: &str) -> Vec<String> {
    h.api
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, e)| e.clone())
        .collect()
}

impl Harness {
    /// Lets `d` of (paused) tokio time pass, so probe tasks run, then reconciles.
    async fn settle(&mut self, d: Duration) {
        tokio::time::sleep(d).await;
        self.tick(d).await;
        // Container stops run in their own tasks.
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
    }
}

fn two_inits(name: &str, policy: &str) -> Pod {
    pod_json(
        name,
        json!({"restartPolicy": policy, "nodeName": "n1",
            "initContainers": [{"name": "a", "image": "busybox:1.36"}, {"name": "b", "image": "busybox:1.36"}],
            "containers": [{"name": "main", "image": "busybox:1.36"}]}),
    )
}

#[tokio::test]
async fn init_containers_run_one_after_another_then_the_app() {
    let mut h = Harness::new();
    h.add(two_inits("init", "Always"));
    h.tick(Duration::ZERO).await;
    // The sandbox is created without containers; the first init container starts.
    assert!(h.rt.calls().contains(&Call::RunPod("uid-init".into())));
    assert_eq!(starts(&h, "uid-init"), vec!["a"]);
    h.tick(Duration::from_secs(1)).await;
    let s = h.api.last("init");
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(condition(&s, "Initialized"), "False");
    assert_eq!(condition(&s, "Ready"), "False");
    let inits = s.init_container_statuses.clone().unwrap();
    assert!(inits[0].state.as_ref().unwrap().running.is_some());
    let b_wait = inits[1].state.as_ref().unwrap().waiting.clone().unwrap();
    assert_eq!(b_wait.reason.as_deref(), Some("PodInitializing"));
    let main_wait = container_state(&s).waiting.unwrap();
    assert_eq!(main_wait.reason.as_deref(), Some("PodInitializing"));
    // b waits for a to finish.
    assert_eq!(starts(&h, "uid-init"), vec!["a"]);
    h.rt.exit("uid-init", "a", 0);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(starts(&h, "uid-init"), vec!["a", "b"]);
    h.rt.exit("uid-init", "b", 0);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(starts(&h, "uid-init"), vec!["a", "b", "main"]);
    h.tick(Duration::from_secs(1)).await;
    let s = h.api.last("init");
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Initialized"), "True");
    assert_eq!(condition(&s, "Ready"), "True");
    let inits = s.init_container_statuses.unwrap();
    for i in &inits {
        let t = i.state.as_ref().unwrap().terminated.clone().unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
        assert!(i.ready, "a completed init container is ready");
    }
    // Nothing runs twice.
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(starts(&h, "uid-init").len(), 3);
    assert_eq!(h.restarts("uid-init"), 0);
}

#[tokio::test]
async fn a_failed_init_container_fails_a_never_pod() {
    let mut h = Harness::new();
    h.add(two_inits("never", "Never"));
    h.tick(Duration::ZERO).await;
    h.rt.exit("uid-never", "a", 3);
    h.tick(Duration::from_secs(1)).await;
    let s = h.api.last("never");
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(
        h.worker.state("uid-never"),
        Some(&PodState::Terminated(Phase::Failed))
    );
    let t = s.init_container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
    h.tick(RESTART_BACKOFF_FIRST * 4).await;
    assert_eq!(starts(&h, "uid-never"), vec!["a"], "b and main never start");
    assert_eq!(h.restarts("uid-never"), 0);
}

#[tokio::test]
async fn a_failed_init_container_is_retried_with_back_off_under_on_failure() {
    let mut h = Harness::new();
    h.add(two_inits("retry", "OnFailure"));
    h.tick(Duration::ZERO).await;
    h.rt.exit("uid-retry", "a", 1);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.restarts("uid-retry"), 1);
    let s = h.api.last("retry");
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    h.rt.exit("uid-retry", "a", 1);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.restarts("uid-retry"), 1, "retried inside the back-off");
    h.tick(RESTART_BACKOFF_FIRST).await;
    assert_eq!(h.restarts("uid-retry"), 2);
    assert_eq!(h.rt.restarts("uid-retry", "a"), Some(2));
    // Then it succeeds: b follows.
    h.rt.exit("uid-retry", "a", 0);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(starts(&h, "uid-retry"), vec!["a", "b"]);
}

#[tokio::test]
async fn a_sidecar_keeps_running_and_is_restarted_and_stopped_with_the_pod() {
    let mut h = Harness::new();
    h.add(pod_json(
        "side",
        json!({"restartPolicy": "Never", "nodeName": "n1",
            "initContainers": [
                {"name": "proxy", "image": "busybox:1.36", "restartPolicy": "Always"},
                {"name": "setup", "image": "busybox:1.36"}],
            "containers": [{"name": "main", "image": "busybox:1.36"}]}),
    ));
    h.tick(Duration::ZERO).await;
    assert_eq!(starts(&h, "uid-side"), vec!["proxy"]);
    // Not waited on for completion: setup follows while proxy runs.
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(starts(&h, "uid-side"), vec!["proxy", "setup"]);
    h.rt.exit("uid-side", "setup", 0);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(starts(&h, "uid-side"), vec!["proxy", "setup", "main"]);
    h.tick(Duration::from_secs(1)).await;
    let s = h.api.last("side");
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Initialized"), "True");
    let proxy = &s.init_container_statuses.as_ref().unwrap()[0];
    assert!(proxy.ready && proxy.started == Some(true), "{proxy:?}");
    // The sidecar is restarted although the pod's policy is Never.
    h.rt.exit("uid-side", "proxy", 1);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.rt.restarts("uid-side", "proxy"), Some(1));
    assert!(h.rt.running("uid-side", "proxy"));
    // main finishes: the pod succeeds and its sidecar is stopped.
    h.rt.exit("uid-side", "main", 0);
    h.tick(Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    assert_eq!(h.api.last("side").phase.as_deref(), Some("Succeeded"));
    assert!(h
        .rt
        .calls()
        .iter()
        .any(|c| matches!(c, Call::StopContainer { container, .. } if container == "proxy")));
    assert!(!h.rt.running("uid-side", "proxy"));
}

fn probed(name: &str, container: serde_json::Value) -> Pod {
    let mut c = json!({"name": "main", "image": "busybox:1.36"});
    for (k, v) in container.as_object().unwrap() {
        c[k] = v.clone();
    }
    pod_json(
        name,
        json!({"restartPolicy": "Always", "nodeName": "n1", "containers": [c]}),
    )
}

#[tokio::test(start_paused = true)]
async fn readiness_probe_drives_ready() {
    let mut h = Harness::new();
    h.add(probed(
        "ready",
        json!({"readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
            "periodSeconds": 1, "failureThreshold": 1}}),
    ));
    h.rt.set_exec("uid-ready", "main", 1);
    h.tick(Duration::ZERO).await;
    h.settle(Duration::from_secs(2)).await;
    let s = h.api.last("ready");
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Ready"), "False");
    assert_eq!(condition(&s, "ContainersReady"), "False");
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert!(!c.ready && c.started == Some(true));
    let ready_cond = s
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned();
    assert_eq!(
        ready_cond.and_then(|c| c.message).as_deref(),
        Some("containers with unready status: [main]")
    );
    assert!(events(&h, "ready")
        .iter()
        .any(|e| e.starts_with("Warning Unhealthy: Readiness probe failed: ")));
    assert!(h.rt.calls().contains(&Call::ExecSync {
        uid: "uid-ready".into(),
        container: "main".into(),
        cmd: vec!["test".into(), "-f".into(), "/tmp/ready".into()],
    }));
    // The probe passes: Ready.
    h.rt.set_exec("uid-ready", "main", 0);
    h.settle(Duration::from_secs(2)).await;
    let s = h.api.last("ready");
    assert_eq!(condition(&s, "Ready"), "True");
    assert!(s.container_statuses.unwrap()[0].ready);
    // And fails again: not Ready, nothing restarted (readiness never kills).
    h.rt.set_exec("uid-ready", "main", 1);
    h.settle(Duration::from_secs(2)).await;
    assert_eq!(condition(&h.api.last("ready"), "Ready"), "False");
    assert_eq!(h.restarts("uid-ready"), 0);
}

#[tokio::test(start_paused = true)]
async fn liveness_failure_kills_and_restarts_the_container() {
    let mut h = Harness::new();
    h.add(probed(
        "live",
        json!({"livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
            "failureThreshold": 2, "terminationGracePeriodSeconds": 4}}),
    ));
    h.tick(Duration::ZERO).await;
    h.settle(Duration::from_secs(1)).await;
    // Passing: nothing happens.
    assert!(!h
        .rt
        .calls()
        .iter()
        .any(|c| matches!(c, Call::StopContainer { .. })));
    assert_eq!(condition(&h.api.last("live"), "Ready"), "True");
    h.rt.set_exec("uid-live", "main", 1);
    h.settle(Duration::from_secs(3)).await;
    assert!(h.rt.calls().contains(&Call::StopContainer {
        uid: "uid-live".into(),
        container: "main".into(),
        grace: Duration::from_secs(4),
    }));
    let ev = events(&h, "live");
    assert!(
        ev.iter()
            .any(|e| e.starts_with("Warning Unhealthy: Liveness probe failed: ")),
        "{ev:?}"
    );
    assert!(
        ev.contains(
            &"Normal Killing: Container main failed liveness probe, will be restarted".to_string()
        ),
        "{ev:?}"
    );
    // The killed container is restarted by the restart policy, with a fresh probe.
    h.settle(Duration::from_secs(1)).await;
    assert_eq!(h.rt.restarts("uid-live", "main"), Some(1));
    h.rt.set_exec("uid-live", "main", 0);
    h.settle(Duration::from_secs(3)).await;
    assert_eq!(h.rt.restarts("uid-live", "main"), Some(1));
    let s = h.api.last("live");
    assert_eq!(s.container_statuses.unwrap()[0].restart_count, 1);
}

#[tokio::test(start_paused = true)]
async fn startup_probe_gates_readiness_and_liveness() {
    let mut h = Harness::new();
    h.add(probed(
        "startup",
        json!({"startupProbe": {"exec": {"command": ["started"]}, "periodSeconds": 1, "failureThreshold": 30},
               "livenessProbe": {"exec": {"command": ["alive"]}, "periodSeconds": 1, "failureThreshold": 1}}),
    ));
    h.rt.set_exec("uid-startup", "main", 1);
    h.tick(Duration::ZERO).await;
    h.settle(Duration::from_secs(5)).await;
    let s = h.api.last("startup");
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert!(!c.ready && c.started == Some(false), "{c:?}");
    // The failing liveness command never ran: liveness waits for the startup probe.
    assert!(!h
        .rt
        .calls()
        .iter()
        .any(|c| matches!(c, Call::ExecSync { cmd, .. } if cmd[0] == "alive")));
    assert!(!h
        .rt
        .calls()
        .iter()
        .any(|c| matches!(c, Call::StopContainer { .. })));
    h.rt.set_exec("uid-startup", "main", 0);
    h.settle(Duration::from_secs(2)).await;
    let s = h.api.last("startup");
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert!(c.ready && c.started == Some(true), "{c:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_post_start_hook_kills_the_container() {
    let mut h = Harness::new();
    h.add(probed(
        "hook",
        json!({"lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 2"]}}}}),
    ));
    h.rt.set_exec("uid-hook", "main", 2);
    h.tick(Duration::ZERO).await;
    // Until the hook is done the container is not started.
    assert!(!h.api.last("hook").container_statuses.unwrap()[0]
        .started
        .unwrap());
    h.settle(Duration::from_secs(1)).await;
    let ev = events(&h, "hook");
    assert!(
        ev.iter()
            .any(|e| e.starts_with("Warning FailedPostStartHook: ")),
        "{ev:?}"
    );
    assert!(h
        .rt
        .calls()
        .iter()
        .any(|c| matches!(c, Call::StopContainer { container, .. } if container == "main")));
}

#[tokio::test(start_paused = true)]
async fn pre_stop_runs_before_the_pod_is_stopped() {
    let mut h = Harness::new();
    h.add(probed(
        "prestop",
        json!({"lifecycle": {"preStop": {"exec": {"command": ["touch", "/tmp/bye"]}}}}),
    ));
    h.tick(Duration::ZERO).await;
    let p = h.desired.get_mut("uid-prestop").unwrap();
    p.metadata.deletion_timestamp = Some(state::k8s_time(chrono::Utc::now()));
    p.metadata.deletion_grace_period_seconds = Some(10);
    h.tick(Duration::from_secs(1)).await;
    let calls = h.rt.calls();
    let hook = calls
        .iter()
        .position(|c| matches!(c, Call::ExecSync { cmd, .. } if cmd[0] == "touch"))
        .expect("preStop ran");
    let stop = calls
        .iter()
        .position(|c| matches!(c, Call::StopPod { .. }))
        .expect("stopped");
    assert!(hook < stop);
}

#[test]
fn an_invalid_image_name_waits_with_kubelets_reason_and_message() {
    let spec = PodSpecLite {
        uid: "u".into(),
        containers: vec![crate::runtime::ContainerSpecLite {
            name: "c".into(),
            image: "Bad Image!".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let e = crate::runtime::RuntimeError::InvalidImageName("Bad Image!".into());
    let (s, a) = state::on_start(PodState::New, &spec, Err(&e), "h", Instant::now());
    assert!(matches!(
        s,
        PodState::StartBackOff {
            reason: "InvalidImageName",
            ..
        }
    ));
    assert!(matches!(
        &a[0],
        Action::RecordEvent {
            reason: "InspectFailed",
            ..
        }
    ));
    assert_eq!(
        a[1],
        Action::RecordEvent {
            warning: true,
            reason: "Failed",
            message: "Error: InvalidImageName".into()
        }
    );
    let Action::WriteStatus(status) = &a[2] else {
        panic!("{a:?}")
    };
    let w = container_state(status).waiting.expect("waiting");
    assert_eq!(w.reason.as_deref(), Some("InvalidImageName"));
    assert_eq!(
        w.message.as_deref(),
        Some("Failed to apply default image tag \"Bad Image!\": couldn't parse image reference \"Bad Image!\": invalid reference format")
    );
    assert_eq!(status.phase.as_deref(), Some("Pending"));
}

#[test]
fn termination_message_and_last_state_are_reported() {
    use crate::runtime::{ContainerRuntimeStatus, ContainerState, PodRuntimeStatus, SandboxState};
    let spec = PodSpecLite {
        uid: "u".into(),
        containers: vec![crate::runtime::ContainerSpecLite {
            name: "c".into(),
            image: "i".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let at = chrono::Utc::now();
    let rs = PodRuntimeStatus {
        uid: "u".into(),
        sandbox_id: "s".into(),
        sandbox_state: SandboxState::Ready,
        ip: Some("10.42.0.3".into()),
        containers: vec![ContainerRuntimeStatus {
            name: "c".into(),
            state: ContainerState::Exited {
                code: 2,
                reason: String::new(),
                finished_at: at,
                message: Some("second".into()),
            },
            restart_count: 1,
            image: "i".into(),
            image_id: "sha256:i".into(),
            container_id: "containerd://x".into(),
            log_path: "/x".into(),
            last_state: Some(ContainerState::Exited {
                code: 1,
                reason: String::new(),
                finished_at: at,
                message: Some("first".into()),
            }),
        }],
    };
    let status = state::running_status(
        &spec,
        &rs,
        &Default::default(),
        &Default::default(),
        "h",
        None,
        at,
    );
    let cs = &status.container_statuses.as_ref().unwrap()[0];
    let now = cs
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .unwrap();
    assert_eq!(
        (now.exit_code, now.reason.as_deref(), now.message.as_deref()),
        (2, Some("Error"), Some("second"))
    );
    let last = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .unwrap();
    assert_eq!(
        (last.exit_code, last.message.as_deref()),
        (1, Some("first"))
    );
    // A running previous instance is not a lastState.
    let mut rs2 = rs.clone();
    rs2.containers[0].last_state = Some(ContainerState::Running { started_at: at });
    let status = state::running_status(
        &spec,
        &rs2,
        &Default::default(),
        &Default::default(),
        "h",
        None,
        at,
    );
    assert!(status.container_statuses.unwrap()[0].last_state.is_none());
}

#[test]
fn durations_print_as_go_does() {
    for (secs, s) in [
        (0, "0s"),
        (10, "10s"),
        (80, "1m20s"),
        (300, "5m0s"),
        (3725, "1h2m5s"),
    ] {
        assert_eq!(state::go_duration(Duration::from_secs(secs)), s);
    }
}

#[tokio::test]
async fn node_shutdown_stops_regular_then_critical_pods_and_reports_them() {
    let mut h = Harness::new();
    h.add(pod("app", "Always", "busybox:1.36"));
    h.add(pod_json(
        "dns",
        json!({"restartPolicy": "Always", "nodeName": "n1",
            "priorityClassName": "system-node-critical", "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": "busybox:1.36"}]}),
    ));
    h.add(pod("done", "Never", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    h.rt.exit("uid-done", "main", 0);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.api.last("done").phase.as_deref(), Some("Succeeded"));
    let grace = crate::config::ShutdownGrace {
        total: Duration::from_secs(10),
        critical: Duration::from_secs(4),
    };
    h.worker.shutdown_node(&h.desired, grace).await;
    let stops: Vec<(String, Duration)> =
        h.rt.calls()
            .iter()
            .filter_map(|c| match c {
                Call::StopPod { uid, grace } => Some((uid.clone(), *grace)),
                _ => None,
            })
            .collect();
    // Regular pods first, within min(their grace, total - critical); critical ones after,
    // within min(their grace, critical); a finished pod is left alone.
    assert_eq!(
        stops,
        vec![
            ("uid-app".to_string(), Duration::from_secs(6)),
            ("uid-dns".to_string(), Duration::from_secs(2)),
        ]
    );
    for name in ["app", "dns"] {
        let s = h.api.last(name);
        assert_eq!(s.phase.as_deref(), Some("Failed"), "{name}");
        assert_eq!(s.reason.as_deref(), Some("Terminated"));
        assert_eq!(s.message.as_deref(), Some(NODE_SHUTDOWN_MESSAGE));
        let conds = s.conditions.unwrap();
        let dt = conds
            .iter()
            .find(|c| c.type_ == "DisruptionTarget")
            .unwrap();
        assert_eq!(
            (dt.status.as_str(), dt.reason.as_deref()),
            ("True", Some("TerminationByKubelet"))
        );
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
    }
    assert_eq!(h.api.last("done").phase.as_deref(), Some("Succeeded"));
    // Nothing is restarted afterwards.
    assert!(matches!(
        h.worker.state("uid-app"),
        Some(PodState::Terminated(Phase::Failed))
    ));
}

fn with_ephemeral(mut p: Pod, name: &str, target: Option<&str>) -> Pod {
    let spec = p.spec.as_mut().unwrap();
    let mut e: k8s_openapi::api::core::v1::EphemeralContainer = serde_json::from_value(json!({
        "name": name, "image": "busybox:1.36", "stdin": true, "tty": true,
        "command": ["sh"]}))
    .unwrap();
    e.target_container_name = target.map(str::to_string);
    spec.ephemeral_containers
        .get_or_insert_with(Vec::new)
        .push(e);
    p
}

fn ephemeral_state(s: &PodStatus, name: &str) -> k8s_openapi::api::core::v1::ContainerStatus {
    s.ephemeral_container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no ephemeral status for {name}: {s:?}"))
}

#[tokio::test]
async fn an_added_ephemeral_container_starts_once_and_is_never_restarted() {
    let mut h = Harness::new();
    h.add(pod("dbg", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    assert!(h.api.last("dbg").ephemeral_container_statuses.is_none());
    // `kubectl debug` adds one to the running pod.
    let p = with_ephemeral(
        pod("dbg", "Always", "busybox:1.36"),
        "debugger",
        Some("main"),
    );
    h.add(p);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(starts(&h, "uid-dbg"), vec!["debugger"]);
    assert!(h.rt.running("uid-dbg", "debugger"));
    h.tick(Duration::from_secs(1)).await;
    let s = h.api.last("dbg");
    let e = ephemeral_state(&s, "debugger");
    assert!(e.state.as_ref().unwrap().running.is_some(), "{e:?}");
    assert!(!e.ready);
    // Not among the app containers, and the pod stays Running and Ready.
    assert_eq!(s.container_statuses.as_ref().unwrap().len(), 1);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(condition(&s, "Ready"), "True");
    // It exits (even with an error, under restartPolicy Always): never restarted.
    h.rt.exit("uid-dbg", "debugger", 3);
    for _ in 0..3 {
        h.tick(RESTART_BACKOFF_FIRST * 2).await;
    }
    assert_eq!(starts(&h, "uid-dbg"), vec!["debugger"]);
    assert_eq!(h.rt.restarts("uid-dbg", "debugger"), Some(0));
    assert_eq!(h.restarts("uid-dbg"), 0);
    let s = h.api.last("dbg");
    let t = ephemeral_state(&s, "debugger").state.unwrap().terminated;
    assert_eq!(t.map(|t| t.exit_code), Some(3));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert!(h.rt.running("uid-dbg", "main"));
}

#[tokio::test]
async fn ephemeral_containers_are_not_started_in_a_finished_pod() {
    let mut h = Harness::new();
    h.add(pod("done", "Never", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    h.rt.exit("uid-done", "main", 0);
    h.tick(Duration::from_secs(1)).await;
    assert_eq!(h.api.last("done").phase.as_deref(), Some("Succeeded"));
    h.add(with_ephemeral(
        pod("done", "Never", "busybox:1.36"),
        "late",
        None,
    ));
    h.tick(Duration::from_secs(1)).await;
    assert!(starts(&h, "uid-done").is_empty());
}

#[test]
fn ephemeral_container_spec_keeps_stdin_tty_and_target() {
    let p = with_ephemeral(pod("x", "Always", "busybox:1.36"), "d", Some("main"));
    let spec = PodSpecLite::from_pod(&p).unwrap();
    assert_eq!(spec.containers.len(), 1);
    let d = spec
        .container("d")
        .expect("ephemeral container found by name");
    assert!(d.stdin && d.tty && !d.stdin_once);
    assert_eq!(d.target_container.as_deref(), Some("main"));
    assert_eq!(d.command, vec!["sh"]);
    assert!(!spec.containers[0].stdin && spec.containers[0].target_container.is_none());
}

#[tokio::test]
async fn pods_bound_together_start_concurrently_each_in_its_own_sandbox() {
    let mut h = Harness::new();
    let gate = h.rt.gate_starts();
    for i in 0..10 {
        h.add(pod(&format!("p{i}"), "Always", "busybox:1.36"));
    }
    let dispatched = h.worker.dispatch(&h.desired, None, None, h.now);
    assert_eq!(dispatched.len(), 10);
    // All ten starts are in the runtime at once: a serial worker would never get past one.
    tokio::time::timeout(Duration::from_secs(10), gate.wait_entered(10))
        .await
        .expect("all starts in flight together");
    // A pod whose start is in flight is not synced a second time.
    assert!(h.worker.dispatch(&h.desired, None, None, h.now).is_empty());
    gate.release(10);
    h.worker.wait_all().await;
    let mut ips = BTreeSet::new();
    for i in 0..10 {
        let uid = format!("uid-p{i}");
        assert!(
            matches!(h.worker.state(&uid), Some(PodState::Running { .. })),
            "{uid}: {:?}",
            h.worker.state(&uid)
        );
        let s = h.api.last(&format!("p{i}"));
        assert_eq!(s.phase.as_deref(), Some("Running"));
        ips.insert(s.pod_ip.clone().expect("pod IP"));
    }
    assert_eq!(ips.len(), 10, "distinct pod IPs: {ips:?}");
    let runs =
        h.rt.calls()
            .iter()
            .filter(|c| matches!(c, Call::RunPod(_)))
            .count();
    assert_eq!(runs, 10, "one sandbox per pod, no duplicate start");
}

#[tokio::test]
async fn a_pod_deleted_while_its_sandbox_is_created_leaves_nothing_behind() {
    let mut h = Harness::new();
    let gate = h.rt.gate_starts();
    h.add(pod("late", "Always", "busybox:1.36"));
    h.add(pod("stay", "Always", "busybox:1.36"));
    h.worker.dispatch(&h.desired, None, None, h.now);
    tokio::time::timeout(Duration::from_secs(10), gate.wait_entered(2))
        .await
        .expect("both starts in flight");
    // The pod object goes away (force delete) while its start is in the runtime.
    h.desired.remove("uid-late");
    let again = h.worker.dispatch(&h.desired, None, None, h.now);
    assert!(
        again.is_empty(),
        "nothing to do until the start ends: {again:?}"
    );
    assert!(!h.rt.calls().contains(&Call::RemovePod("uid-late".into())));
    gate.release(2);
    h.worker.wait_all().await;
    assert!(h.rt.has_pod("uid-late"), "the start itself completed");
    // The next pass (the loop runs one as soon as the sync ends) removes it.
    h.tick(Duration::from_secs(1)).await;
    assert!(
        !h.rt.has_pod("uid-late"),
        "sandbox of the deleted pod removed"
    );
    assert!(h.rt.calls().contains(&Call::RemovePod("uid-late".into())));
    assert_eq!(h.worker.state("uid-late"), None);
    assert!(h.rt.has_pod("uid-stay"));
    assert!(matches!(
        h.worker.state("uid-stay"),
        Some(PodState::Running { .. })
    ));
}

/// One tick with these runtime fingerprints `advance` after the previous one; the pods synced.
async fn tick_with(h: &mut Harness, advance: Duration, fps: &[(&str, u64)]) -> Vec<String> {
    h.now += advance;
    let fps: HashMap<String, u64> = fps.iter().map(|(u, f)| (u.to_string(), *f)).collect();
    let synced = h.worker.dispatch(&h.desired, None, Some(&fps), h.now);
    h.worker.wait_all().await;
    synced
}

#[tokio::test]
async fn a_steady_pod_is_synced_again_only_on_a_runtime_change_or_the_resync() {
    let mut h = Harness::new();
    h.add(pod("quiet", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    assert_eq!(h.api.last("quiet").phase.as_deref(), Some("Running"));
    // The first tick with a fingerprint syncs it (nothing known yet), later ones leave it.
    assert_eq!(
        tick_with(&mut h, Duration::from_secs(1), &[("uid-quiet", 1)]).await,
        ["uid-quiet"]
    );
    assert!(
        tick_with(&mut h, Duration::from_secs(1), &[("uid-quiet", 1)])
            .await
            .is_empty()
    );
    assert!(
        tick_with(&mut h, Duration::from_secs(1), &[("uid-quiet", 1)])
            .await
            .is_empty()
    );
    // The container exits: the fingerprint changes, the pod is synced and restarted.
    h.rt.exit("uid-quiet", "main", 1);
    assert_eq!(
        tick_with(&mut h, Duration::from_secs(1), &[("uid-quiet", 2)]).await,
        ["uid-quiet"]
    );
    assert_eq!(h.restarts("uid-quiet"), 1, "restarted on the change");
    // Just restarted (not yet seen running): synced again on the next tick even with the same print.
    assert_eq!(
        tick_with(&mut h, Duration::from_secs(1), &[("uid-quiet", 2)]).await,
        ["uid-quiet"]
    );
    assert!(
        tick_with(&mut h, Duration::from_secs(1), &[("uid-quiet", 2)])
            .await
            .is_empty()
    );
    // Without a change it is still synced once per STEADY_RESYNC.
    assert_eq!(
        tick_with(&mut h, STEADY_RESYNC, &[("uid-quiet", 2)]).await,
        ["uid-quiet"]
    );
    // A pod the listing does not show (or a runtime without fingerprints) is always synced.
    assert_eq!(
        tick_with(&mut h, Duration::from_secs(1), &[]).await,
        ["uid-quiet"]
    );
    h.now += Duration::from_secs(1);
    assert_eq!(
        h.worker.dispatch(&h.desired, None, None, h.now),
        ["uid-quiet"]
    );
    h.worker.wait_all().await;
}

#[tokio::test]
async fn pods_with_probes_or_a_deletion_are_never_left_alone() {
    let mut h = Harness::new();
    let mut probed = pod("probed", "Always", "busybox:1.36");
    probed.spec.as_mut().unwrap().containers[0].readiness_probe =
        Some(serde_json::from_value(json!({"exec": {"command": ["true"]}})).unwrap());
    h.add(probed);
    h.add(pod("doomed", "Always", "busybox:1.36"));
    h.tick(Duration::ZERO).await;
    let fps = [("uid-probed", 7), ("uid-doomed", 8)];
    assert_eq!(
        tick_with(&mut h, Duration::from_secs(1), &fps).await.len(),
        2
    );
    // The probed pod is synced on every tick (its probe results reach the status), the
    // other is steady.
    assert_eq!(
        tick_with(&mut h, Duration::from_secs(1), &fps).await,
        ["uid-probed"]
    );
    // A deletion (a spec change through the watch) is dispatched as dirty, fingerprint or not.
    let doomed = h.desired.get_mut("uid-doomed").unwrap();
    doomed.metadata.deletion_timestamp = Some(state::k8s_time(chrono::Utc::now()));
    doomed.metadata.deletion_grace_period_seconds = Some(1);
    let only: HashSet<String> = ["uid-doomed".to_string()].into();
    h.now += Duration::from_secs(1);
    assert_eq!(
        h.worker.dispatch(&h.desired, Some(&only), None, h.now),
        ["uid-doomed"]
    );
    h.worker.wait_all().await;
    assert!(h
        .rt
        .calls()
        .iter()
        .any(|c| matches!(c, Call::StopPod { uid, .. } if uid == "uid-doomed")));
}
