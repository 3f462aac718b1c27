//! Pod sync: watch the pods bound to this node and drive each through its [`PodState`] (see
//! [`state`] for the transitions). [`PodWorker`] carries out the transitions' actions against the
//! [`Runtime`] and a [`PodApi`] (the Kubernetes side: status writes, events, volumes).

pub mod probe;
pub mod state;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::AgentError;
use crate::config::AgentConfig;
use crate::runtime::{PodSpecLite, Runtime};
use crate::security::{NodeAdmission, Rejection, REJECT_REASON};
use daas_protocol::metrics::Metrics;

pub use state::{Action, Backoff, Phase, PodState};

/// How often a running pod's atomic-writer volumes are synced (new content, token renewal).
pub const VOLUME_SYNC: Duration = Duration::from_secs(60);
/// A steady pod (all containers running, no probes, its Running status written) whose
/// containers did not change is synced again after this long, not on every tick (upstream's
/// pod workers resync periodically; the PLEG relist wakes them on a container change).
pub const STEADY_RESYNC: Duration = Duration::from_secs(10);
/// Grace period for pods that vanished from the API without a graceful deletion.
const GONE_GRACE: Duration = Duration::from_secs(5);

/// (namespace, name) → uid of the pods on this node (the kubelet endpoint resolves logs with it).
pub type PodIndex = Arc<Mutex<HashMap<(String, String), String>>>;

/// The Kubernetes side of pod sync.
#[async_trait]
pub trait PodApi: Send + Sync {
    /// Write the pod's status.
    async fn write_status(&self, pod: &Pod, status: &PodStatus) -> Result<(), AgentError>;
    /// Delete the pod object for good (grace 0) once its containers are gone.
    async fn final_delete(&self, pod: &Pod) -> Result<(), AgentError>;
    /// Record the Warning event of a pod refused by node admission.
    async fn record_rejection(&self, pod: &Pod, rejection: &Rejection) -> Result<(), AgentError>;
    /// Record an event on the pod (probe failures, container kills, failed hooks).
    async fn record_event(
        &self,
        pod: &Pod,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Result<(), AgentError>;
    /// Resolve env sources and write volumes into `spec`; `Err(why)` while something is missing.
    /// `fresh_after`: when the pod's change was seen; API reads started since may be shared
    /// with other pods' (see [`crate::apireads`]).
    async fn prepare_volumes(
        &self,
        pod: &Pod,
        spec: &mut PodSpecLite,
        admission: &NodeAdmission,
        fresh_after: Instant,
    ) -> Result<(), String>;
    /// Rewrite the pod's configMap/secret/downwardAPI/projected volumes.
    async fn refresh_volumes(&self, pod: &Pod) -> Result<(), String>;
}

/// [`PodApi`] on the API server through the agent's credential.
pub struct KubePodApi {
    pub client: kube::Client,
    pub data_dir: PathBuf,
    pub node_id: String,
    /// The node's IP (`status.hostIP` in the downward API).
    pub host_ip: String,
    /// The cluster DNS domain of pods' FQDNs in their `/etc/hosts`.
    pub cluster_domain: String,
    /// Events already recorded, so a repeat raises the count of the same Event (client-go's
    /// event correlator) instead of creating another.
    pub recorded: Mutex<EventCache>,
    /// API reads shared by pods started together.
    pub reads: Arc<crate::apireads::SharedReads>,
}

/// Recorded events by (pod uid, type, reason, message): the Event's name and count.
#[derive(Default)]
pub struct EventCache {
    entries: HashMap<(String, bool, String, String), (String, i32)>,
}

impl EventCache {
    /// Most distinct events remembered; the cache starts over past it.
    const MAX: usize = 4096;

    /// The event to update for a repeat, with its new count; none for a first occurrence.
    fn repeat(&mut self, key: &(String, bool, String, String)) -> Option<(String, i32)> {
        let e = self.entries.get_mut(key)?;
        e.1 += 1;
        Some(e.clone())
    }

    fn remember(&mut self, key: (String, bool, String, String), name: String) {
        if self.entries.len() >= Self::MAX {
            self.entries.clear();
        }
        self.entries.insert(key, (name, 1));
    }
}

#[async_trait]
impl PodApi for KubePodApi {
    async fn write_status(&self, pod: &Pod, status: &PodStatus) -> Result<(), AgentError> {
        let (ns, name) = ns_name(pod);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
        Ok(())
    }

    async fn final_delete(&self, pod: &Pod) -> Result<(), AgentError> {
        let (ns, name) = ns_name(pod);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        api.delete(&name, &dp).await?;
        Ok(())
    }

    async fn record_rejection(&self, pod: &Pod, rejection: &Rejection) -> Result<(), AgentError> {
        self.record_event(pod, true, REJECT_REASON, &rejection.message())
            .await
    }

    async fn record_event(
        &self,
        pod: &Pod,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Result<(), AgentError> {
        let (ns, name) = ns_name(pod);
        let now = chrono::Utc::now();
        let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), &ns);
        let key = (
            pod.metadata.uid.clone().unwrap_or_default(),
            warning,
            reason.to_string(),
            message.to_string(),
        );
        let repeat = self
            .recorded
            .lock()
            .map_err(|_| AgentError::Other("event cache poisoned".into()))?
            .repeat(&key);
        if let Some((event, count)) = repeat {
            let patch = json!({"count": count, "lastTimestamp": at});
            match api
                .patch(&event, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone (expired or deleted): recorded anew below.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        let event_name = format!("{name}.{:x}", now.timestamp_nanos_opt().unwrap_or_default());
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name,
                "uid": pod.metadata.uid.clone().unwrap_or_default()},
            "type": if warning { "Warning" } else { "Normal" },
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": self.node_id},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node_id,
            "firstTimestamp": at,
            "lastTimestamp": at,
            "count": 1,
        });
        let ev: k8s_openapi::api::core::v1::Event = serde_json::from_value(event)
            .map_err(|e| AgentError::Other(format!("building the event: {e}")))?;
        api.create(&PostParams::default(), &ev).await?;
        if let Ok(mut c) = self.recorded.lock() {
            c.remember(key, event_name);
        }
        Ok(())
    }

    async fn prepare_volumes(
        &self,
        pod: &Pod,
        spec: &mut PodSpecLite,
        admission: &NodeAdmission,
        fresh_after: Instant,
    ) -> Result<(), String> {
        let prepare = crate::volumes::prepare(
            &self.client,
            pod,
            spec,
            &self.data_dir,
            admission,
            &self.host_ip,
            &self.cluster_domain,
        );
        crate::apireads::scope(self.reads.clone(), fresh_after, prepare).await
    }

    async fn refresh_volumes(&self, pod: &Pod) -> Result<(), String> {
        crate::volumes::refresh(&self.client, pod, &self.data_dir).await
    }
}

fn ns_name(pod: &Pod) -> (String, String) {
    (
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// One pod as the worker tracks it.
struct Tracked {
    state: PodState,
    /// The last status written (transition times left out), to write only on change.
    last_status: Option<PodStatus>,
    /// The spec as started (env resolved, volumes mounted), reused for container restarts.
    resolved: Option<PodSpecLite>,
    /// When the pod's atomic-writer volumes were last written.
    volumes_synced: Option<Instant>,
    /// The last sync left the pod steady: Running, every container running, no probes, and
    /// that status written. Such a pod is synced on a tick only when its runtime fingerprint
    /// changed or [`STEADY_RESYNC`] passed.
    steady: bool,
    /// The runtime fingerprint when the last tick sync was dispatched, and that time.
    dispatched: Option<(u64, Instant)>,
}

impl Tracked {
    fn new(state: PodState) -> Tracked {
        Tracked {
            state,
            last_status: None,
            resolved: None,
            volumes_synced: None,
            steady: false,
            dispatched: None,
        }
    }
}

/// Keeps the runtime in line with the pods bound to this node. Each pod is synced by its own
/// task (as the kubelet's pod workers): one pod's sandbox creation, image check or stop does
/// not hold up the others, and a pod is never synced by two tasks at once.
pub struct PodWorker {
    core: Arc<WorkerCore>,
    index: PodIndex,
    /// The pods not being synced right now.
    tracked: HashMap<String, Tracked>,
    /// The syncs in flight; each hands its pod's state back when it ends (none: removed).
    syncs: tokio::task::JoinSet<(String, Option<Tracked>)>,
    /// uid of each sync in flight, by task.
    busy: HashMap<tokio::task::Id, String>,
}

/// What the per-pod sync tasks share.
pub struct WorkerCore {
    runtime: Arc<dyn Runtime>,
    api: Arc<dyn PodApi>,
    admission: NodeAdmission,
    metrics: Arc<Metrics>,
    data_dir: PathBuf,
    host_ip: String,
    prober: Mutex<probe::Prober>,
    /// Cluster DNS settings for pods' resolv.conf (none: the runtime's default, the host's).
    dns: Option<crate::config::DnsSettings>,
}

impl std::ops::Deref for PodWorker {
    type Target = WorkerCore;
    fn deref(&self) -> &WorkerCore {
        &self.core
    }
}

/// Status message of the pods a graceful node shutdown stopped (upstream's).
pub const NODE_SHUTDOWN_MESSAGE: &str = "Pod was terminated in response to imminent node shutdown.";

/// A pod the graceful node shutdown stops last (upstream: priority at or above
/// system-cluster-critical's, or one of the two system priority classes).
fn is_critical(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.priority)
        .is_some_and(|p| p >= 2_000_000_000)
        || matches!(
            spec.and_then(|s| s.priority_class_name.as_deref()),
            Some("system-node-critical" | "system-cluster-critical")
        )
}

impl WorkerCore {
    /// Stop the pod: its preStop hooks first, within `grace`; SIGTERM gets what is left, at
    /// least `min_term` after hooks ran.
    async fn stop_with_hooks(&self, uid: &str, pod: &Pod, grace: Duration, min_term: Duration) {
        let started = Instant::now();
        let hooks = match self.runtime.pod_status(uid).await {
            Ok(rs) => probe::run_pre_stop(self.runtime.clone(), pod, &rs, grace).await,
            Err(_) => 0,
        };
        let left = if hooks == 0 {
            grace
        } else {
            grace.saturating_sub(started.elapsed()).max(min_term)
        };
        if let Err(e) = self.runtime.stop_pod(uid, left).await {
            tracing::warn!(%uid, error = %e, "stopping the pod failed");
        }
    }

    /// A pod gone from the API: stop it (within [`GONE_GRACE`]) and remove it.
    async fn remove_gone(&self, uid: &str) {
        self.prober().forget(uid);
        let _ = self.runtime.stop_pod(uid, GONE_GRACE).await;
        if let Err(e) = self.runtime.remove_pod(uid).await {
            tracing::warn!(%uid, error = %e, "removing pod failed");
        }
        crate::volumes::remove_pod_volumes(&self.data_dir, uid);
    }
}

impl PodWorker {
    /// Graceful node shutdown (the kubelet's): the running pods are stopped, regular ones first
    /// then critical ones, each within its window (and its own grace period), with their
    /// preStop hooks, and reported Failed with reason `Terminated` and a `DisruptionTarget`
    /// condition.
    pub async fn shutdown_node(
        &mut self,
        desired: &BTreeMap<String, Pod>,
        grace: crate::config::ShutdownGrace,
    ) {
        self.wait_all().await;
        let (critical, regular): (Vec<_>, Vec<_>) = desired
            .iter()
            .filter(|(uid, _)| {
                self.tracked
                    .get(*uid)
                    .is_some_and(|t| matches!(t.state, PodState::Running { .. }))
            })
            .partition(|(_, p)| is_critical(p));
        for (group, window) in [(regular, grace.regular()), (critical, grace.critical)] {
            let stops = group
                .into_iter()
                .map(|(uid, pod)| self.core.shutdown_pod(uid, pod, window));
            futures::future::join_all(stops).await;
        }
        for t in self.tracked.values_mut() {
            if matches!(t.state, PodState::Running { .. }) {
                t.state = PodState::Terminated(Phase::Failed);
            }
        }
    }
}

impl WorkerCore {
    async fn shutdown_pod(&self, uid: &str, pod: &Pod, window: Duration) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        self.prober().forget(uid);
        self.stop_with_hooks(uid, pod, pod_grace(pod).min(window), Duration::ZERO)
            .await;
        let now = chrono::Utc::now();
        let mut status = match (
            PodSpecLite::from_pod(pod),
            self.runtime.pod_status(uid).await,
        ) {
            (Ok(spec), Ok(rs)) => state::running_status(
                &spec,
                &rs,
                &BTreeMap::new(),
                &BTreeMap::new(),
                &self.host_ip,
                None,
                now,
            ),
            _ => PodStatus::default(),
        };
        status.phase = Some(Phase::Failed.as_str().into());
        status.reason = Some("Terminated".into());
        status.message = Some(NODE_SHUTDOWN_MESSAGE.into());
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        for c in conditions.iter_mut() {
            if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                c.status = "False".into();
                c.reason = Some("PodFailed".into());
            }
        }
        conditions.push(k8s_openapi::api::core::v1::PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("TerminationByKubelet".into()),
            message: Some(NODE_SHUTDOWN_MESSAGE.into()),
            last_transition_time: Some(state::k8s_time(now)),
            ..Default::default()
        });
        if let Err(e) = self.api.write_status(pod, &status).await {
            tracing::warn!(pod = %name, error = %e, "reporting the shut-down pod failed");
        }
    }
}

impl PodWorker {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        api: Arc<dyn PodApi>,
        admission: NodeAdmission,
        metrics: Arc<Metrics>,
        data_dir: PathBuf,
        host_ip: String,
        index: PodIndex,
    ) -> PodWorker {
        PodWorker {
            core: Arc::new(WorkerCore {
                prober: Mutex::new(probe::Prober::new(runtime.clone())),
                runtime,
                api,
                admission,
                metrics,
                data_dir,
                host_ip,
                dns: None,
            }),
            index,
            tracked: HashMap::new(),
            syncs: tokio::task::JoinSet::new(),
            busy: HashMap::new(),
        }
    }

    /// Give pods the resolv.conf of their `dnsPolicy` with these cluster DNS settings (before
    /// the first sync).
    pub fn with_dns(mut self, dns: crate::config::DnsSettings) -> PodWorker {
        match Arc::get_mut(&mut self.core) {
            Some(core) => core.dns = Some(dns),
            None => tracing::warn!("pod DNS settings given after syncs started; ignored"),
        }
        self
    }

    /// Re-adopt what the runtime already runs (agent restart): those pods are Running.
    pub async fn adopt(&mut self) {
        match self.runtime.list_pods().await {
            Ok(list) => {
                for p in list {
                    tracing::info!(pod = %format!("{}/{}", p.namespace, p.name), "found running pod from before restart");
                    self.tracked.insert(
                        p.uid.clone(),
                        Tracked::new(PodState::Running {
                            restarts: BTreeMap::new(),
                        }),
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing runtime pods failed"),
        }
    }

    /// The state of pod `uid`, if tracked and not being synced right now.
    pub fn state(&self, uid: &str) -> Option<&PodState> {
        self.tracked.get(uid).map(|t| &t.state)
    }

    /// One pass over the desired pods (uid → pod) at `now`: every pod synced, concurrently,
    /// and all those syncs finished.
    pub async fn reconcile(&mut self, desired: &BTreeMap<String, Pod>, now: Instant) {
        self.dispatch(desired, None, None, now);
        self.wait_all().await;
    }

    /// Start a sync task for each desired pod (only those in `only`, when given) and each pod
    /// gone from `desired`, skipping pods whose sync is still in flight, and steady pods whose
    /// runtime fingerprint (in `fingerprints`, when given) did not change since their last
    /// sync, within [`STEADY_RESYNC`]. Returns the uids dispatched.
    pub fn dispatch(
        &mut self,
        desired: &BTreeMap<String, Pod>,
        only: Option<&HashSet<String>>,
        fingerprints: Option<&HashMap<String, u64>>,
        now: Instant,
    ) -> Vec<String> {
        let mut dispatched = Vec::new();
        // Pods gone from the API: stop and remove.
        let gone: Vec<String> = self
            .tracked
            .keys()
            .filter(|u| !desired.contains_key(*u))
            .cloned()
            .collect();
        for uid in gone {
            self.tracked.remove(&uid);
            let core = self.core.clone();
            let u = uid.clone();
            let task = self.syncs.spawn(async move {
                core.remove_gone(&u).await;
                (u, None)
            });
            self.busy.insert(task.id(), uid.clone());
            dispatched.push(uid);
        }
        let in_flight: HashSet<&String> = self.busy.values().collect();
        let mut to_sync = Vec::new();
        for (uid, pod) in desired {
            if let Ok(mut ix) = self.index.lock() {
                let (ns, name) = ns_name(pod);
                ix.insert((ns, name), uid.clone());
            }
            if in_flight.contains(uid) || only.is_some_and(|o| !o.contains(uid)) {
                continue;
            }
            let fingerprint = fingerprints.and_then(|f| f.get(uid)).copied();
            if let (Some(fp), Some(t)) = (fingerprint, self.tracked.get(uid)) {
                if t.steady
                    && t.dispatched.is_some_and(|(was, at)| {
                        was == fp && now.saturating_duration_since(at) < STEADY_RESYNC
                    })
                {
                    continue;
                }
            }
            to_sync.push((uid.clone(), pod.clone(), fingerprint));
        }
        for (uid, pod, fingerprint) in to_sync {
            let mut t = self
                .tracked
                .remove(&uid)
                .unwrap_or_else(|| Tracked::new(PodState::New));
            // Only a tick's sync (which saw every pod's fingerprint) may start a steady period.
            t.dispatched = fingerprint.map(|fp| (fp, now));
            let core = self.core.clone();
            let u = uid.clone();
            let task = self.syncs.spawn(async move {
                core.sync_pod(&u, &pod, &mut t, now).await;
                (u, Some(t))
            });
            self.busy.insert(task.id(), uid.clone());
            dispatched.push(uid);
        }
        dispatched
    }

    /// Is a sync in flight?
    pub fn syncing(&self) -> bool {
        !self.syncs.is_empty()
    }

    /// Is pod `uid`'s sync in flight?
    pub fn is_busy(&self, uid: &str) -> bool {
        self.busy.values().any(|u| u == uid)
    }

    /// Wait for the next sync to end and take its pod's state back; its uid (none when no sync
    /// is in flight).
    pub async fn next_done(&mut self) -> Option<String> {
        match self.syncs.join_next_with_id().await? {
            Ok((id, (uid, t))) => {
                self.busy.remove(&id);
                if let Some(t) = t {
                    self.tracked.insert(uid.clone(), t);
                }
                Some(uid)
            }
            Err(e) => {
                // A sync that panicked: its state is lost, the pod is synced afresh next time.
                let uid = self.busy.remove(&e.id());
                tracing::error!(uid = ?uid, error = %e, "pod sync task failed");
                uid
            }
        }
    }

    /// Wait for every sync in flight.
    pub async fn wait_all(&mut self) {
        while self.next_done().await.is_some() {}
    }
}

impl WorkerCore {
    fn prober(&self) -> std::sync::MutexGuard<'_, probe::Prober> {
        self.prober.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sync_pod(&self, uid: &str, pod: &Pod, t: &mut Tracked, now: Instant) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        t.steady = false;
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .max(0) as u64;
            self.prober().forget(uid);
            let (next, actions) = state::on_deleted(Duration::from_secs(grace));
            t.state = next;
            self.apply(uid, pod, t, None, actions).await;
            return;
        }
        let api_final =
            Phase::terminal_from_api(pod.status.as_ref().and_then(|s| s.phase.as_deref()));
        let spec = match PodSpecLite::from_pod(pod) {
            Ok(s) => s,
            Err(e) => {
                let (next, actions) = state::on_invalid_spec(&e.to_string());
                t.state = next;
                self.apply(uid, pod, t, None, actions).await;
                return;
            }
        };
        if !t.state.started() {
            if let Some(p) = api_final {
                // Finished before this agent saw it run (e.g. removed while the agent was down).
                t.state = PodState::Terminated(p);
            } else if !t.state.backing_off(now) {
                self.start(uid, pod, &spec, t, now).await;
            }
        }
        if !t.state.started() {
            return;
        }
        let Ok(rs) = self.runtime.pod_status(uid).await else {
            return;
        };
        let ephemeral_names = |s: &PodSpecLite| -> Vec<String> {
            s.ephemeral_containers
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        if t.resolved
            .as_ref()
            .is_some_and(|r| ephemeral_names(r) != ephemeral_names(&spec))
        {
            // Ephemeral containers were added (`kubectl debug`): resolve their env and mounts.
            t.resolved = None;
        }
        if t.resolved.is_none() {
            // Adopted after an agent restart (or new ephemeral containers): resolve env and
            // volumes again for future starts.
            let mut resolved = spec.clone();
            if self
                .api
                .prepare_volumes(pod, &mut resolved, &self.admission, now)
                .await
                .is_ok()
            {
                t.resolved = Some(resolved);
            }
        }
        if matches!(t.state, PodState::Running { .. })
            && api_final.is_none()
            && t.volumes_synced
                .is_none_or(|at| now.saturating_duration_since(at) >= VOLUME_SYNC)
        {
            t.volumes_synced = Some(now);
            if let Err(e) = self.api.refresh_volumes(pod).await {
                tracing::info!(pod = %name, error = %e, "volume sync failed; keeping the current content");
            }
        }
        let probes = {
            let mut prober = self.prober();
            if api_final.is_none() {
                prober.sync(pod, &rs);
            }
            prober.view(&rs)
        };
        let events = self.prober().take_events(uid);
        for e in events {
            if let Err(err) = self
                .api
                .record_event(pod, e.warning, e.reason, &e.message)
                .await
            {
                tracing::debug!(pod = %name, error = %err, "recording a probe event failed");
            }
        }
        let (next, mut actions) = state::on_observed(
            std::mem::replace(&mut t.state, PodState::New),
            &spec,
            &rs,
            &probes,
            api_final,
            now,
        );
        t.state = next;
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_none()
            .then(chrono::Utc::now);
        let crash_loops = state::crash_loops(&t.state, now);
        let mut status = state::running_status(
            &spec,
            &rs,
            &probes,
            &crash_loops,
            &self.host_ip,
            start_time,
            chrono::Utc::now(),
        );
        // A condition keeps its transition time while its status stays (minReadySeconds counts
        // from it).
        let before = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        for c in status.conditions.iter_mut().flatten() {
            if let Some(b) = before
                .into_iter()
                .flatten()
                .find(|b| b.type_ == c.type_ && b.status == c.status)
            {
                if b.last_transition_time.is_some() {
                    c.last_transition_time = b.last_transition_time.clone();
                }
            }
        }
        let all_running = !rs.containers.is_empty()
            && rs
                .containers
                .iter()
                .all(|c| matches!(c.state, crate::runtime::ContainerState::Running { .. }));
        let written = state::comparable(&status);
        actions.push(Action::WriteStatus(Box::new(status)));
        let restart_spec = t.resolved.clone().unwrap_or(spec);
        self.apply(uid, pod, t, Some(&restart_spec), actions).await;
        t.steady = matches!(t.state, PodState::Running { .. })
            && api_final.is_none()
            && all_running
            && rs.sandbox_state == crate::runtime::SandboxState::Ready
            && !probe::has_probes(pod)
            && t.last_status.as_ref() == Some(&written);
    }

    /// Admission, volumes, then the sandbox and containers.
    async fn start(&self, uid: &str, pod: &Pod, spec: &PodSpecLite, t: &mut Tracked, now: Instant) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let current = std::mem::replace(&mut t.state, PodState::New);
        // Node admission first: a pod that could reach the host gets nothing created, not even
        // its hostPath directories.
        if let Err(rejection) = self.admission.check(pod) {
            tracing::warn!(pod = %name, reason = %rejection, "pod rejected by node admission");
            let (next, actions) = state::on_admission_refused(current, rejection.status_message());
            t.state = next;
            for a in &actions {
                if *a == Action::RecordRejection {
                    self.metrics.inc(
                        "daas_agent_pod_rejections_total",
                        "Pods refused by node admission.",
                        &[],
                        1.0,
                    );
                    if let Err(e) = self.api.record_rejection(pod, &rejection).await {
                        tracing::warn!(pod = %name, error = %e, "recording the rejection event failed");
                    }
                }
            }
            let rest = actions
                .into_iter()
                .filter(|a| *a != Action::RecordRejection)
                .collect();
            self.apply(uid, pod, t, None, rest).await;
            return;
        }
        let mut resolved = spec.clone();
        // DNS settings are local: known before the sandbox.
        let dns = self.dns.as_ref().map(|dns| {
            let host = crate::resolvconf::HostResolvConf::read(&dns.resolv_conf);
            crate::resolvconf::pod_dns(pod, dns, &host)
        });
        // The sandbox (netns, CNI) comes up while the volumes' API reads run (upstream mounts
        // volumes first; the sandbox needs none of them). `run_pod` then reuses it.
        let early = early_sandbox_spec(pod, spec, dns.clone(), self.dns.as_ref());
        let sandbox = async {
            if let Some(early) = &early {
                if let Err(e) = self.runtime.prepare_sandbox(early).await {
                    // run_pod tries again and reports it.
                    tracing::debug!(pod = %name, error = %e, "creating the sandbox early failed");
                }
            }
        };
        let volumes = async {
            let r = self
                .api
                .prepare_volumes(pod, &mut resolved, &self.admission, now)
                .await;
            if r.is_ok() {
                daas_protocol::podstart::mark(&spec.namespace, &spec.name, "volumes");
            }
            r
        };
        let (volumes, ()) = tokio::join!(volumes, sandbox);
        if let Err(why) = volumes {
            tracing::info!(pod = %name, reason = %why, "pod cannot start yet");
            let (next, actions) = state::on_volumes_missing(current, spec, why, &self.host_ip, now);
            t.state = next;
            self.apply(uid, pod, t, None, actions).await;
            return;
        }
        if dns.is_some() {
            resolved.dns = dns;
        }
        let result = self.runtime.run_pod(&resolved).await;
        match &result {
            Ok(_) => {
                daas_protocol::podstart::mark(&spec.namespace, &spec.name, "started");
                self.metrics.inc(
                    "daas_agent_pod_starts_total",
                    "Pods started in the container runtime.",
                    &[],
                    1.0,
                );
                t.volumes_synced = Some(now);
                t.resolved = Some(resolved.clone());
            }
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "starting pod failed");
                self.metrics.inc(
                    "daas_agent_pod_start_failures_total",
                    "Failed pod starts.",
                    &[],
                    1.0,
                );
            }
        }
        let (next, actions) = state::on_start(
            current,
            &resolved,
            result.as_ref().map(|_| ()),
            &self.host_ip,
            now,
        );
        t.state = next;
        self.apply(uid, pod, t, None, actions).await;
    }

    /// Carry out a transition's actions.
    async fn apply(
        &self,
        uid: &str,
        pod: &Pod,
        t: &mut Tracked,
        restart_spec: Option<&PodSpecLite>,
        actions: Vec<Action>,
    ) {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        for a in actions {
            match a {
                Action::RecordRejection => {}
                Action::RestartContainer(c) => {
                    let Some(spec) = restart_spec else { continue };
                    if let Err(e) = self.runtime.restart_container(spec, &c).await {
                        tracing::warn!(pod = %name, container = %c, error = %e, "restart failed");
                    }
                    self.metrics.inc(
                        "daas_agent_container_restarts_total",
                        "Container restarts by the restart policy.",
                        &[],
                        1.0,
                    );
                }
                Action::StartContainer(c) => {
                    let Some(spec) = restart_spec else { continue };
                    if let Err(e) = self.runtime.start_container(spec, &c).await {
                        tracing::warn!(pod = %name, container = %c, error = %e, "starting the container failed");
                    }
                }
                Action::StopContainer {
                    name: c,
                    grace,
                    message,
                } => {
                    if let Some(m) = &message {
                        if let Err(e) = self.api.record_event(pod, false, "Killing", m).await {
                            tracing::debug!(pod = %name, error = %e, "recording the Killing event failed");
                        }
                    }
                    let grace = grace.unwrap_or_else(|| pod_grace(pod));
                    // Stopping waits up to the grace period: not on the pod loop.
                    let rt = self.runtime.clone();
                    let uid = uid.to_string();
                    tokio::spawn(async move {
                        if let Err(e) = rt.stop_container(&uid, &c, grace).await {
                            tracing::warn!(%uid, container = %c, error = %e, "stopping the container failed");
                        }
                    });
                }
                Action::StopPod(grace) => {
                    // As the kubelet: at least 2s for SIGTERM after the hooks.
                    self.stop_with_hooks(uid, pod, grace, Duration::from_secs(2))
                        .await;
                }
                Action::RemovePod => {
                    let _ = self.runtime.remove_pod(uid).await;
                    crate::volumes::remove_pod_volumes(&self.data_dir, uid);
                }
                Action::FinalDelete => {
                    if let Err(e) = self.api.final_delete(pod).await {
                        tracing::debug!(pod = %name, error = %e, "final delete failed");
                    }
                }
                Action::RecordEvent {
                    warning,
                    reason,
                    message,
                } => {
                    if let Err(e) = self.api.record_event(pod, warning, reason, &message).await {
                        tracing::debug!(pod = %name, reason, error = %e, "recording an event failed");
                    }
                }
                Action::WriteStatus(status) => {
                    let cmp = state::comparable(&status);
                    if t.last_status.as_ref() == Some(&cmp) {
                        continue;
                    }
                    let was_running = t
                        .last_status
                        .as_ref()
                        .is_some_and(|s| s.phase.as_deref() == Some("Running"));
                    match self.api.write_status(pod, &status).await {
                        Ok(()) => {
                            if !was_running && status.phase.as_deref() == Some("Running") {
                                let (ns, n) = ns_name(pod);
                                daas_protocol::podstart::mark(&ns, &n, "running");
                            }
                            t.last_status = Some(cmp);
                        }
                        Err(e) => {
                            tracing::debug!(pod = %name, error = %e, "status update failed")
                        }
                    }
                }
            }
        }
    }
}

/// What the pod's sandbox is made of, before its volumes are prepared: `spec` with the DNS
/// settings and the hostname `volumes::prepare` gives it. None (the sandbox then waits for the
/// volumes, as upstream) when that fails or the pod has hostPath or claim volumes.
fn early_sandbox_spec(
    pod: &Pod,
    spec: &PodSpecLite,
    dns: Option<crate::resolvconf::PodDns>,
    settings: Option<&crate::config::DnsSettings>,
) -> Option<PodSpecLite> {
    // Claims and host paths are checked while the volumes are prepared: such pods get their
    // sandbox only once those passed.
    let risky = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .any(|v| v.host_path.is_some() || v.persistent_volume_claim.is_some());
    if risky {
        return None;
    }
    let mut early = spec.clone();
    if dns.is_some() {
        early.dns = dns;
    }
    if pod.spec.as_ref().and_then(|s| s.host_network) != Some(true) {
        let domain = settings.map_or("cluster.local", |d| d.cluster_domain.as_str());
        let (_, hostname) = crate::volumes::pod_hosts(pod, PathBuf::new(), domain).ok()?;
        early.hostname = Some(hostname);
    }
    Some(early)
}

/// The pod's `terminationGracePeriodSeconds` (default 30s).
fn pod_grace(pod: &Pod) -> Duration {
    let s = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(s.max(0) as u64)
}

/// How long a change to a pod waits for more changes (a batch of pods bound together) before
/// it is acted on.
const SYNC_DEBOUNCE: Duration = Duration::from_millis(5);

/// Does this watched version of a pod need a sync before the next tick: a new pod, a spec
/// change, or a deletion started? Status-only updates (mostly this agent's own writes) wait
/// for the tick.
fn needs_sync(before: Option<&Pod>, now: &Pod) -> bool {
    match before {
        None => true,
        Some(b) => {
            b.spec != now.spec
                || b.metadata.deletion_timestamp != now.metadata.deletion_timestamp
                || b.metadata.deletion_grace_period_seconds
                    != now.metadata.deletion_grace_period_seconds
        }
    }
}

/// Watch the pods bound to this node and keep the runtime in line with them: each pod is
/// synced by its own task as soon as it changes, and every pod at least once a second.
pub(super) async fn pod_sync(
    client: kube::Client,
    cfg: AgentConfig,
    runtime: Arc<dyn Runtime>,
    index: PodIndex,
    metrics: Arc<Metrics>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let api: Api<Pod> = Api::all(client.clone());
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let wc =
        kube::runtime::watcher::Config::default().fields(&format!("spec.nodeName={}", cfg.node_id));
    let mut stream = kube::runtime::watcher(api, wc).boxed();
    let mut desired: BTreeMap<String, Pod> = BTreeMap::new();
    let mut init: Option<BTreeMap<String, Pod>> = None;
    let admission = NodeAdmission::for_agent(
        &cfg.data_dir,
        cfg.key_file.as_deref(),
        cfg.config_file.as_deref(),
        cfg.containerd_socket.as_deref(),
    )
    .allowing_host_ports(cfg.allow_host_ports);
    let reclaim_client = client.clone();
    let pod_api = Arc::new(KubePodApi {
        client,
        data_dir: cfg.data_dir.clone(),
        node_id: cfg.node_id.clone(),
        host_ip: cfg.node_ip.to_string(),
        cluster_domain: cfg.dns.cluster_domain.clone(),
        recorded: Mutex::new(EventCache::default()),
        reads: Arc::default(),
    });
    let mut worker = PodWorker::new(
        runtime,
        pod_api,
        admission,
        metrics,
        cfg.data_dir.clone(),
        cfg.node_ip.to_string(),
        index,
    )
    .with_dns(cfg.dns.clone());
    worker.adopt().await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Local-path volumes released by their claims are cleaned up every few ticks.
    let mut ticks: u64 = 0;
    let mut shutdown_open = true;
    // Pods with a change to act on (new, spec changed, deleted), synced at `soon`; those whose
    // sync is in flight stay here until it ends.
    let mut dirty: HashSet<String> = HashSet::new();
    let mut soon: Option<tokio::time::Instant> = None;
    loop {
        let due = soon.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = stream.next() => {
                match ev {
                    Some(Ok(kube::runtime::watcher::Event::Apply(p))) | Some(Ok(kube::runtime::watcher::Event::InitApply(p))) => {
                        if let Some(uid) = p.metadata.uid.clone() {
                            match &mut init {
                                Some(m) => { m.insert(uid, p); }
                                None => {
                                    if needs_sync(desired.get(&uid), &p) {
                                        if !desired.contains_key(&uid) {
                                            let (ns, name) = ns_name(&p);
                                            daas_protocol::podstart::mark(&ns, &name, "seen");
                                        }
                                        dirty.insert(uid.clone());
                                        soon.get_or_insert_with(|| tokio::time::Instant::now() + SYNC_DEBOUNCE);
                                    }
                                    desired.insert(uid, p);
                                }
                            }
                        }
                    }
                    Some(Ok(kube::runtime::watcher::Event::Delete(p))) => {
                        if let Some(uid) = &p.metadata.uid {
                            desired.remove(uid);
                            dirty.insert(uid.clone());
                            soon.get_or_insert_with(|| tokio::time::Instant::now() + SYNC_DEBOUNCE);
                        }
                    }
                    Some(Ok(kube::runtime::watcher::Event::Init)) => init = Some(BTreeMap::new()),
                    Some(Ok(kube::runtime::watcher::Event::InitDone)) => {
                        if let Some(m) = init.take() {
                            desired = m;
                            // Everything may have changed while the watch was down.
                            dirty.extend(desired.keys().cloned());
                            soon.get_or_insert_with(tokio::time::Instant::now);
                        }
                    }
                    Some(Err(e)) => { tracing::debug!(error = %e, "pod watch error; retrying"); tokio::time::sleep(Duration::from_secs(1)).await; }
                    None => break,
                }
            }
            _ = tokio::time::sleep_until(due), if soon.is_some() => {
                soon = None;
                if init.is_none() {
                    for uid in worker.dispatch(&desired, Some(&dirty), None, Instant::now()) {
                        dirty.remove(&uid);
                    }
                    // Gone pods are dispatched whatever `dirty` holds; a dirty pod neither
                    // desired nor tracked has nothing left to do.
                    dirty.retain(|u| desired.contains_key(u) || worker.is_busy(u));
                }
            }
            done = worker.next_done(), if worker.syncing() => {
                // A pod that changed while its sync ran is synced again now.
                if let Some(uid) = done {
                    if dirty.contains(&uid) {
                        soon.get_or_insert_with(tokio::time::Instant::now);
                    }
                }
            }
            changed = shutdown.changed(), if shutdown_open => {
                if changed.is_err() {
                    // Nobody can ask for a drain any more (the caller stops the tasks itself).
                    shutdown_open = false;
                    continue;
                }
                if *shutdown.borrow() {
                    tracing::info!(grace = ?cfg.shutdown, "node shutting down: stopping its pods");
                    let not_ready = super::node::shutting_down_status();
                    if let Err(e) = nodes
                        .patch_status(&cfg.node_id, &PatchParams::default(), &Patch::Strategic(not_ready))
                        .await
                    {
                        tracing::warn!(error = %e, "reporting the node not ready failed");
                    }
                    worker.shutdown_node(&desired, cfg.shutdown).await;
                    break;
                }
            }
            _ = tick.tick() => {
                if init.is_none() {
                    // One listing of every sandbox and container: steady pods with no change
                    // are left alone (an error: every pod is synced).
                    let fingerprints = match worker.runtime.pod_fingerprints().await {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::debug!(error = %e, "listing the runtime's pods failed");
                            None
                        }
                    };
                    for uid in worker.dispatch(&desired, None, fingerprints.as_ref(), Instant::now()) {
                        dirty.remove(&uid);
                    }
                }
                ticks += 1;
                if ticks % 5 == 1 {
                    crate::volumes::reclaim(&reclaim_client, &cfg.node_id, &cfg.data_dir).await;
                }
            }
        }
    }
}
