//! K3s-DaaS controllers: the scheduler, Deployment, ReplicaSet and ReplicationController
//! controllers, Endpoints/EndpointSlice (and mirroring) and ServiceLB, the garbage collector, NoExecute taint eviction and (spawned by the master with
//! the cluster CA) the root CA publisher. They talk to the API server only through [`LocalClient`] (the full router, like
//! kubectl), are level-triggered (a full reconcile on every resync tick) and are woken early by
//! watches, which are re-established whenever they end.

pub mod clusterroleaggregation;
pub mod cronjob;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod gc;
pub mod history;
pub mod hpa;
pub mod informer;
pub mod ingress;
pub mod job;
pub mod kubedns;
pub mod kubernetesservice;
pub mod leaderelection;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod quota;
pub use daas_apimachinery::quantity;
pub mod csrsigning;
pub mod daemonset;
pub mod replicaset;
pub mod rootca;
pub mod scheduler;
pub mod serviceaccounts;
pub mod servicelb;
pub mod servicerepair;
pub mod stakednodes;
pub mod statefulset;
pub mod tainteviction;
#[cfg(test)]
mod testapi;
pub mod usernamespaces;
pub mod util;
pub mod wakefilter;
pub mod workqueue;

pub use scheduler::STAKED_LABEL as STAKED;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use futures::{FutureExt, StreamExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Knobs shared by all controllers.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Full reconcile at least this often, even without watch events.
    pub resync: Duration,
    /// Pods whose `spec.schedulerName` is this (or empty) are scheduled by our scheduler.
    pub scheduler_name: String,
    /// A repeated FailedScheduling event for the same pod and message is bumped at most this often.
    pub event_interval: Duration,
    /// After a watch event, wait this long for more before reconciling (coalesces bursts).
    pub debounce: Duration,
    /// Only nodes with this label set to "true" run workloads.
    pub staked_label: String,
    /// How often the HPA controller syncs each HorizontalPodAutoscaler (upstream
    /// `--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub hpa_sync_period: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            resync: Duration::from_secs(30),
            scheduler_name: "default-scheduler".into(),
            event_interval: Duration::from_secs(10),
            debounce: Duration::from_millis(20),
            staked_label: scheduler::STAKED_LABEL.into(),
            hpa_sync_period: hpa::DEFAULT_SYNC_PERIOD,
        }
    }
}

/// A level-triggered controller: `reconcile` brings the whole cluster toward the desired state.
#[async_trait]
pub trait Controller: Send + 'static {
    fn name(&self) -> &'static str;
    /// Collection paths whose changes should wake this controller early.
    fn watches(&self) -> Vec<String>;
    /// A trigger outside the API (e.g. the authenticator's demand for a namespace) that also
    /// wakes the controller.
    fn wake(&self) -> Option<Arc<Notify>> {
        None
    }
    /// [`watches`](Self::watches) paths whose changes wake this controller only when the filter
    /// says the change concerns it (served from the shared caches; without them, or for a path
    /// no cache serves, every change wakes it).
    fn wake_filters(&self) -> Vec<(String, wakefilter::WakeFilter)> {
        Vec::new()
    }
    /// The shared caches this controller reads: the [`watches`](Self::watches) paths they serve
    /// wake it from the cache (after the change is applied) instead of from a watch of its own.
    fn informers(&self) -> Option<&informer::Informers> {
        None
    }
    /// One full pass. `Ok(Some(d))` asks to run again within `d` (e.g. minReadySeconds timers).
    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError>;
}

/// Start every controller, the scheduler included, on one set of shared caches. Each returned
/// task runs until aborted.
pub fn spawn(client: LocalClient, opts: ControllerOptions) -> Vec<JoinHandle<()>> {
    let inf = informer::Informers::new(client.clone());
    let mut tasks = vec![spawn_scheduler_with(&inf, &opts)];
    tasks.extend(spawn_controller_manager_with(&inf, client, opts));
    tasks
}

/// Start the scheduler (its own leader-elected group, as kube-scheduler) on caches of its own.
pub fn spawn_scheduler(client: LocalClient, opts: &ControllerOptions) -> JoinHandle<()> {
    spawn_scheduler_with(&informer::Informers::new(client), opts)
}

/// Start the scheduler reading from (and writing through the client of) `inf`: a master
/// running both groups hands both the same caches, so 10,000 pods are held and decoded once.
pub fn spawn_scheduler_with(inf: &informer::Informers, opts: &ControllerOptions) -> JoinHandle<()> {
    let client = inf.client();
    spawn_controller(
        client.clone(),
        scheduler::Scheduler::new(client, opts.clone()).with_informers(inf.clone()),
        opts,
    )
}

/// Start the generic controllers of kube-controller-manager (everything [`spawn`] starts but
/// the scheduler) on caches of their own. Each returned task runs until aborted.
pub fn spawn_controller_manager(
    client: LocalClient,
    opts: ControllerOptions,
) -> Vec<JoinHandle<()>> {
    spawn_controller_manager_with(&informer::Informers::new(client.clone()), client, opts)
}

/// Start the generic controllers of kube-controller-manager on the shared caches `inf` (a
/// controller holding them keeps them running); those without caches use `client`.
pub fn spawn_controller_manager_with(
    inf: &informer::Informers,
    client: LocalClient,
    opts: ControllerOptions,
) -> Vec<JoinHandle<()>> {
    vec![
        spawn_controller(
            client.clone(),
            replicaset::ReplicaSetController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            replicaset::ReplicaSetController::for_kind(
                client.clone(),
                &replicaset::REPLICATION_CONTROLLER,
            )
            .with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            deployment::DeploymentController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            gc::GarbageCollector::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            tainteviction::TaintEvictionController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            clusterroleaggregation::ClusterRoleAggregationController::new(client.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            quota::QuotaController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            disruption::DisruptionController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            namespace::NamespaceController::new(client.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            statefulset::StatefulSetController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            daemonset::DaemonSetController::new(client.clone(), &opts).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            job::JobController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            cronjob::CronJobController::new(client.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            persistentvolume::PersistentVolumeController::new(client.clone())
                .with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            hpa::HpaController::with(
                client.clone(),
                std::sync::Arc::new(cronjob::SystemClock),
                opts.hpa_sync_period,
            ),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            endpoints::EndpointsController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            endpointslice::EndpointSliceController::new(client.clone()).with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            endpointslicemirroring::EndpointSliceMirroringController::new(client.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            servicelb::ServiceLbController::new(client.clone(), opts.staked_label.clone())
                .with_informers(inf.clone()),
            &opts,
        ),
        spawn_controller(
            client.clone(),
            ingress::IngressController::new(client.clone(), opts.staked_label.clone())
                .with_informers(inf.clone()),
            &opts,
        ),
    ]
}

/// Run one controller on its own task.
pub fn spawn_controller<C: Controller>(
    client: LocalClient,
    c: C,
    opts: &ControllerOptions,
) -> JoinHandle<()> {
    let resync = opts.resync.max(Duration::from_millis(100));
    let debounce = opts.debounce;
    tokio::spawn(run(client, c, resync, debounce))
}

/// Aborts the watch tasks when the controller task ends (or is aborted).
struct Watchers(Vec<JoinHandle<()>>);

impl Drop for Watchers {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

async fn run<C: Controller>(client: LocalClient, mut c: C, resync: Duration, debounce: Duration) {
    let notify = Arc::new(Notify::new());
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut filtered: Vec<String> = Vec::new();
    if let Some(inf) = c.informers() {
        for (p, f) in c.wake_filters() {
            let w = Arc::downgrade(&notify);
            let h: informer::ChangeHandler = Arc::new(move |old, new| match w.upgrade() {
                Some(n) => {
                    if f(old, new) {
                        n.notify_one();
                    }
                    true
                }
                None => false,
            });
            if inf.on_change(&p, h) {
                filtered.push(p);
            }
        }
    }
    for p in c.watches() {
        if filtered.contains(&p) {
            continue;
        }
        let cached = c
            .informers()
            .map(|i| i.subscribe(&p, &notify))
            .unwrap_or(false);
        if !cached {
            tasks.push(tokio::spawn(watch_loop(
                client.clone(),
                p,
                notify.clone(),
                c.name(),
            )));
        }
    }
    if let Some(external) = c.wake() {
        let notify = notify.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                external.notified().await;
                notify.notify_one();
            }
        }));
    }
    let _watchers = Watchers(tasks);
    let mut failures: u32 = 0;
    let mut due = Instant::now();
    let mut last_pass = Duration::ZERO;
    loop {
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep_until(due) => {}
        }
        // Wait for more events to coalesce: at least `debounce`, and as long as the last pass
        // took (at most 2 s), so a controller whose passes are slow (a full list of 10,000
        // pods) spends at most about half the time reconciling instead of looping on every
        // event while the API server starves.
        let pause = debounce.max(last_pass.min(MAX_ADAPTIVE_PAUSE));
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let started = Instant::now();
        let outcome = std::panic::AssertUnwindSafe(c.reconcile())
            .catch_unwind()
            .await;
        let now = Instant::now();
        last_pass = now - started;
        due = match outcome {
            Ok(Ok(next)) => {
                failures = 0;
                now + next.map(|d| d.min(resync)).unwrap_or(resync)
            }
            Ok(Err(e)) => {
                failures = failures.saturating_add(1);
                tracing::warn!(controller = c.name(), code = e.code, error = %e.message, "reconcile failed; will retry");
                now + backoff(failures, resync)
            }
            Err(_) => {
                failures = failures.saturating_add(1);
                tracing::error!(controller = c.name(), "reconcile panicked; will retry");
                now + backoff(failures, resync)
            }
        };
    }
}

/// The longest pause [`run`] adds before a pass because the previous one was slow.
const MAX_ADAPTIVE_PAUSE: Duration = Duration::from_secs(2);

fn backoff(failures: u32, cap: Duration) -> Duration {
    let ms = 200u64.saturating_mul(1u64 << failures.min(10));
    Duration::from_millis(ms).min(cap)
}

/// Keep a watch on `path` open forever, poking `notify` on every change.
async fn watch_loop(
    client: LocalClient,
    path: String,
    notify: Arc<Notify>,
    controller: &'static str,
) {
    loop {
        match client.watch(&path).await {
            Ok(stream) => {
                let mut stream = Box::pin(stream);
                while let Some(ev) = stream.next().await {
                    match ev.kind.as_str() {
                        "BOOKMARK" => {}
                        "ERROR" => {
                            tracing::debug!(controller, path = %path, "watch ended with an error event");
                            break;
                        }
                        _ => notify.notify_one(),
                    }
                }
                // The watch ended (timeout, compaction, error): resync once, then watch again.
                notify.notify_one();
            }
            Err(e) => {
                tracing::warn!(controller, path = %path, error = %e.message, "watch failed; retrying")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
