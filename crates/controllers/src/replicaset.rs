//! The ReplicaSet controller, which also runs ReplicationControllers: keeps `spec.replicas` active
//! pods matching the selector, owning them through a controller ownerReference (adopting matching
//! orphans, releasing pods that no longer match), and reports status with the `ReplicaFailure`
//! condition while pods cannot be created or deleted. The two kinds differ only in where they are
//! served and in the selector: a `LabelSelector` for ReplicaSets, a plain label map for
//! ReplicationControllers (see [`ReplicaKind`]).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apimachinery::selector::{LabelSelector, SelectorError};
use daas_apiserver::{ApiError, LocalClient};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::informer::{ChangeHandler, Informers};
use crate::util::{
    self, best_effort, controlled_by, controller_ref, name, namespace, uid, APPS, CORE,
};
use crate::workqueue::{Resync, WorkQueue};
use crate::Controller;

/// What differs between the kinds this controller runs.
#[derive(Debug)]
pub struct ReplicaKind {
    /// The controller's name (in logs).
    pub name: &'static str,
    /// Event source component.
    pub component: &'static str,
    pub api_version: &'static str,
    pub kind: &'static str,
    /// API path prefix of the kind's group version (`/apis/apps/v1`, `/api/v1`).
    pub prefix: &'static str,
    pub plural: &'static str,
    /// `spec.selector` is a plain label map rather than a `LabelSelector`.
    pub map_selector: bool,
}

pub const REPLICA_SET: ReplicaKind = ReplicaKind {
    name: "replicaset",
    component: "replicaset-controller",
    api_version: "apps/v1",
    kind: "ReplicaSet",
    prefix: APPS,
    plural: "replicasets",
    map_selector: false,
};

pub const REPLICATION_CONTROLLER: ReplicaKind = ReplicaKind {
    name: "replicationcontroller",
    component: "replication-controller",
    api_version: "v1",
    kind: "ReplicationController",
    prefix: CORE,
    plural: "replicationcontrollers",
    map_selector: true,
};

impl ReplicaKind {
    /// The object's selector (a plain map is read as `matchLabels`).
    pub fn selector(&self, obj: &Value) -> Result<LabelSelector, SelectorError> {
        let sel = &obj["spec"]["selector"];
        if self.map_selector {
            LabelSelector::from_json(&json!({ "matchLabels": sel }))
        } else {
            LabelSelector::from_json(sel)
        }
    }
}

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// At most this many pods are created or deleted in one sync (upstream `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// ReplicaSets synced at once in a pass (upstream `--concurrent-replicaset-syncs`, 5).
pub const CONCURRENT_SYNCS: usize = 5;
/// The first slow-start batch (upstream `SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// Run `f` `count` times in batches of `initial`, `2 * initial`, `4 * initial`, ... calls in
/// flight together, stopping after the first batch with a failure (upstream `slowStartBatch`).
/// Returns the successes and the first error; no call is started after a failed batch.
pub async fn slow_start_batch<T, E, F, Fut>(
    count: usize,
    initial: usize,
    mut f: F,
) -> (Vec<T>, Option<E>)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut done = Vec::with_capacity(count);
    let mut started = 0;
    let mut batch = initial.max(1);
    while started < count {
        let n = batch.min(count - started);
        let outcomes = futures::future::join_all((started..started + n).map(&mut f)).await;
        started += n;
        let mut first_err = None;
        for o in outcomes {
            match o {
                Ok(v) => done.push(v),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        batch = batch.saturating_mul(2);
    }
    (done, None)
}

pub struct ReplicaSetController {
    client: LocalClient,
    kind: &'static ReplicaKind,
    informers: Informers,
    /// With shared caches: the keys of the ReplicaSets to sync (their own changes and those of
    /// their pods), fed by the caches once the first pass runs.
    queue: Option<Arc<WorkQueue>>,
    /// Poked when a key is queued (the controller loop's wake-up).
    wake: Arc<Notify>,
    /// Every ReplicaSet is synced this often anyway (upstream's resync period).
    resync: Resync,
}

/// How often a queue-driven ReplicaSet controller syncs every ReplicaSet anyway.
pub const RESYNC: Duration = Duration::from_secs(30);

/// The keys (`namespace/name`) of the owners of kind `k` a change of `pod` concerns: its
/// controller (before and after the change: an owner that lost or gained the pod). An orphan
/// (no controller) concerns every owner of its namespace that might adopt it: `orphan_owners`
/// lists them.
pub fn owner_keys_of_change(
    k: &ReplicaKind,
    old: Option<&Value>,
    new: Option<&Value>,
    orphan_owners: impl Fn(&str) -> Vec<String>,
) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut orphan_ns: Option<&str> = None;
    for p in [old, new].into_iter().flatten() {
        match controller_ref(p) {
            Some(r) => {
                let group = |av: &str| {
                    av.rsplit_once('/')
                        .map(|(g, _)| g.to_string())
                        .unwrap_or_default()
                };
                if r["kind"] == k.kind
                    && group(r["apiVersion"].as_str().unwrap_or("")) == group(k.api_version)
                {
                    if let Some(n) = r["name"].as_str() {
                        let key = format!("{}/{n}", namespace(p));
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                }
            }
            None => orphan_ns = Some(namespace(p)),
        }
    }
    // An orphan that is still around (or just went away) may be adopted by any owner there.
    if let Some(ns) = orphan_ns {
        for key in orphan_owners(ns) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// Order in which surplus pods are deleted: unscheduled first, then pending, then not ready,
/// then the newest.
pub fn deletion_order(a: &Value, b: &Value) -> Ordering {
    let assigned = |p: &Value| !p["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
    let phase = |p: &Value| match p["status"]["phase"].as_str() {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    };
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase(a).cmp(&phase(b)))
        .then_with(|| util::pod_ready(a).cmp(&util::pod_ready(b)))
        .then_with(|| {
            b["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&a["metadata"]["creationTimestamp"].as_str())
        })
        .then_with(|| name(b).cmp(name(a)))
}

/// A new pod for `rs` (of kind `k`) from its template.
pub fn pod_from_template(k: &ReplicaKind, rs: &Value) -> Value {
    let tpl = &rs["spec"]["template"];
    let mut md = json!({
        "generateName": format!("{}-", name(rs)),
        "namespace": namespace(rs),
        "ownerReferences": [util::owner_ref(rs, k.api_version, k.kind)],
    });
    for k in ["labels", "annotations", "finalizers"] {
        if !tpl["metadata"][k].is_null() {
            md[k] = tpl["metadata"][k].clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": tpl["spec"].clone()})
}

/// Status counters of a ReplicaSet over its active pods.
pub fn compute_status(
    rs: &Value,
    pods: &[&Value],
    now: chrono::DateTime<Utc>,
) -> (Value, Option<Duration>) {
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let tpl_labels = util::str_map(&rs["spec"]["template"]["metadata"]["labels"]);
    let mut fully = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut requeue: Option<Duration> = None;
    for p in pods {
        if tpl_labels
            .iter()
            .all(|(k, v)| p["metadata"]["labels"][k].as_str() == Some(v.as_str()))
        {
            fully += 1;
        }
        if util::pod_ready(p) {
            ready += 1;
        }
        let (avail, wait) = util::pod_available(p, min_ready, now);
        if avail {
            available += 1;
        }
        if let Some(w) = wait {
            requeue = Some(requeue.map(|r| r.min(w)).unwrap_or(w));
        }
    }
    (
        json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"]["generation"].as_i64().unwrap_or(0),
        }),
        requeue,
    )
}

fn status_differs(cur: &Value, new: &Value) -> bool {
    new.as_object()
        .map(|m| {
            m.iter()
                .any(|(k, v)| cur[k].as_i64().unwrap_or(0) != v.as_i64().unwrap_or(0))
        })
        .unwrap_or(false)
}

/// The status conditions after a sync (upstream `calculateStatus`): a `ReplicaFailure` condition
/// is added when creating or deleting pods failed (`failure`: reason and message) and removed once
/// a sync succeeds. `None` when the conditions stay as they are.
pub fn failure_conditions(
    cur: &Value,
    failure: Option<(&str, &str)>,
    now: chrono::DateTime<Utc>,
) -> Option<Vec<Value>> {
    let conds: Vec<Value> = cur["conditions"].as_array().cloned().unwrap_or_default();
    let has = conds.iter().any(|c| c["type"] == REPLICA_FAILURE);
    match failure {
        Some((reason, message)) if !has => {
            let mut out = conds;
            out.push(json!({
                "type": REPLICA_FAILURE,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastTransitionTime": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }));
            Some(out)
        }
        None if has => Some(
            conds
                .into_iter()
                .filter(|c| c["type"] != REPLICA_FAILURE)
                .collect(),
        ),
        _ => None,
    }
}

impl ReplicaSetController {
    /// The ReplicaSet controller.
    pub fn new(client: LocalClient) -> Self {
        Self::for_kind(client, &REPLICA_SET)
    }

    /// The same controller for another kind with replicas (ReplicationControllers).
    pub fn for_kind(client: LocalClient, kind: &'static ReplicaKind) -> Self {
        ReplicaSetController {
            informers: Informers::direct(client.clone()),
            client,
            kind,
            queue: None,
            wake: Arc::new(Notify::new()),
            resync: Resync::new(RESYNC),
        }
    }

    /// Read ReplicaSets and pods from shared caches (and write through their client, so a
    /// pass never counts pods from a cache older than the previous pass's creates and deletes).
    pub fn with_informers(mut self, informers: Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }

    /// Sync one ReplicaSet; `pods` are the pods it controls and the orphans of its namespace
    /// (pods controlled by anything else can neither be owned nor adopted).
    async fn sync(&self, rs: &Value, pods: &[&Value]) -> Result<Option<Duration>, ApiError> {
        // The pods are borrowed from the cache; only pods this sync creates or adopts are owned.
        if util::is_deleting(rs) {
            return Ok(None);
        }
        let k = self.kind;
        let selector = match k.selector(rs) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(kind = k.kind, name = name(rs), error = %e.message(), "invalid selector");
                return Ok(None);
            }
        };
        let ns = namespace(rs);
        let rs_uid = uid(rs);
        let mut owned: Vec<Cow<'_, Value>> = Vec::new();
        for p in pods {
            let matches = !selector.is_everything() && selector.matches_object(p);
            if controlled_by(p, rs_uid) {
                if matches || util::is_deleting(p) {
                    owned.push(Cow::Borrowed(*p));
                } else {
                    self.release(p, rs_uid).await;
                }
            } else if controller_ref(p).is_none() && matches && util::pod_active(p) {
                if let Some(adopted) = self.adopt(rs, p).await {
                    owned.push(Cow::Owned(adopted));
                }
            }
        }
        let mut active: Vec<Cow<'_, Value>> =
            owned.into_iter().filter(|p| util::pod_active(p)).collect();
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mut result: Result<(), ApiError> = Ok(());
        let mut failure: Option<(&str, String)> = None;
        if active.len() < want {
            // Upstream's slow start: batches of 1, 2, 4, ... creates in flight at once, at most
            // BURST_REPLICAS per sync; a failing batch stops the rest (quota, admission), so a
            // broken template costs one failed create, not `replicas` of them. Every create has
            // finished (or failed) before the next sync relists, so nothing is created twice.
            let template = pod_from_template(k, rs);
            let path = util::path(CORE, ns, "pods", None);
            let count = (want - active.len()).min(BURST_REPLICAS);
            let (created, err) = slow_start_batch(count, SLOW_START_INITIAL_BATCH, |_| {
                let (template, path) = (&template, &path);
                async move {
                    let p = self.client.create(path, template).await?;
                    let msg = format!("Created pod: {}", name(&p));
                    self.event(rs, "Normal", "SuccessfulCreate", &msg).await;
                    Ok::<Value, ApiError>(p)
                }
            })
            .await;
            active.extend(created.into_iter().map(Cow::Owned));
            if let Some(e) = err {
                let msg = format!("Error creating: {}", e.message);
                failure = Some(("FailedCreate", e.message.clone()));
                self.event(rs, "Warning", "FailedCreate", &msg).await;
                result = Err(e);
            }
        } else if active.len() > want {
            active.sort_by(|a, b| deletion_order(a, b));
            let surplus = (active.len() - want).min(BURST_REPLICAS);
            let victims: Vec<Cow<'_, Value>> = active.drain(..surplus).collect();
            // Deletes all go at once (upstream deletes the whole diff in parallel).
            let outcomes = futures::future::join_all(victims.into_iter().map(|p| async move {
                let r = self
                    .client
                    .delete_ignore_missing(&util::path(CORE, ns, "pods", Some(name(&p))))
                    .await;
                if r.is_ok() {
                    let msg = format!("Deleted pod: {}", name(&p));
                    self.event(rs, "Normal", "SuccessfulDelete", &msg).await;
                }
                (p, r)
            }))
            .await;
            for (p, r) in outcomes {
                if let Err(e) = r {
                    active.push(p);
                    failure = Some(("FailedDelete", e.message.clone()));
                    result = Err(e);
                }
            }
        }
        let refs: Vec<&Value> = active.iter().map(|p| &**p).collect();
        let now = Utc::now();
        let (mut status, requeue) = compute_status(rs, &refs, now);
        let conditions = failure_conditions(
            &rs["status"],
            failure.as_ref().map(|(r, m)| (*r, m.as_str())),
            now,
        );
        if status_differs(&rs["status"], &status) || conditions.is_some() {
            if let Some(c) = conditions {
                status["conditions"] = if c.is_empty() { Value::Null } else { json!(c) };
            }
            let p = format!(
                "{}/status",
                util::path(k.prefix, ns, k.plural, Some(name(rs)))
            );
            match self
                .client
                .merge_patch(&p, &json!({"status": status}))
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        result.map(|_| requeue)
    }

    /// Whether `rs` may still adopt: read afresh, it exists with the same uid and is not being
    /// deleted (upstream's RecheckDeletionTimestamp). The list this pass works from can be older
    /// than an orphaning delete; adopting then would hand the pod a dangling owner, and the
    /// garbage collector would delete it.
    /// Record an event on `rs` as this kind's controller (best effort: a failed write is logged).
    async fn event(&self, rs: &Value, type_: &str, reason: &str, msg: &str) {
        let r = util::record_event(&self.client, rs, type_, reason, msg, self.kind.component).await;
        best_effort("event", r).await;
    }

    async fn can_adopt(&self, rs: &Value) -> bool {
        let p = util::path(
            self.kind.prefix,
            namespace(rs),
            self.kind.plural,
            Some(name(rs)),
        );
        match self.client.get(&p).await {
            Ok(fresh) => uid(&fresh) == uid(rs) && !util::is_deleting(&fresh),
            Err(_) => false,
        }
    }

    /// Take ownership of a matching orphan (optimistic on its resourceVersion).
    async fn adopt(&self, rs: &Value, pod: &Value) -> Option<Value> {
        if !self.can_adopt(rs).await {
            return None;
        }
        let mut refs: Vec<Value> = pod["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        refs.push(util::owner_ref(rs, self.kind.api_version, self.kind.kind));
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}});
        let p = util::path(CORE, namespace(pod), "pods", Some(name(pod)));
        match self.client.merge_patch(&p, &patch).await {
            Ok(v) => {
                tracing::info!(
                    kind = self.kind.kind,
                    name = name(rs),
                    pod = name(pod),
                    "adopted orphan pod"
                );
                Some(v)
            }
            Err(e) => {
                tracing::debug!(pod = name(pod), error = %e.message, "adoption failed");
                None
            }
        }
    }

    /// Drop our controller reference from a pod that no longer matches the selector.
    async fn release(&self, pod: &Value, owner_uid: &str) {
        let refs: Vec<Value> = pod["metadata"]["ownerReferences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["uid"].as_str() != Some(owner_uid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}});
        let p = util::path(CORE, namespace(pod), "pods", Some(name(pod)));
        if let Err(e) = self.client.merge_patch(&p, &patch).await {
            tracing::debug!(pod = name(pod), error = %e.message, "release failed");
        }
    }
}

#[async_trait]
impl Controller for ReplicaSetController {
    fn name(&self) -> &'static str {
        self.kind.name
    }

    fn watches(&self) -> Vec<String> {
        if self.informers.is_shared() {
            // Woken by its work queue (fed by the caches), not by every change.
            return Vec::new();
        }
        vec![
            format!("{}/{}", self.kind.prefix, self.kind.plural),
            format!("{CORE}/pods"),
        ]
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        self.informers.is_shared().then(|| self.wake.clone())
    }

    fn informers(&self) -> Option<&Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        if self.informers.is_shared() {
            return self.reconcile_queued().await;
        }
        self.reconcile_all().await
    }
}

impl ReplicaSetController {
    fn owners_path(&self) -> String {
        format!("{}/{}", self.kind.prefix, self.kind.plural)
    }

    /// The work queue, fed from the caches on first use: a change of an owner queues its key,
    /// a change of a pod queues its controller's key (or, for an orphan, the keys of the owners
    /// of its namespace that might adopt it).
    fn queue(&mut self) -> Arc<WorkQueue> {
        if let Some(q) = &self.queue {
            return q.clone();
        }
        let q = Arc::new(WorkQueue::default());
        q.subscribe(&self.wake);
        let owners = self.owners_path();
        self.informers.queue_keys(&owners, &q);
        let owners_cache = self.informers.informer(&owners);
        let weak: Weak<WorkQueue> = Arc::downgrade(&q);
        let kind = self.kind;
        let h: ChangeHandler = Arc::new(move |old, new| {
            let Some(q) = weak.upgrade() else {
                return false;
            };
            let keys = owner_keys_of_change(kind, old, new, |ns| {
                owners_cache
                    .as_ref()
                    .map(|c| {
                        c.peek()
                            .in_namespace(ns)
                            .map(|o| format!("{ns}/{}", name(o)))
                            .collect()
                    })
                    .unwrap_or_default()
            });
            if !keys.is_empty() {
                q.add_all(keys);
            }
            true
        });
        self.informers.on_change(&format!("{CORE}/pods"), h);
        self.queue = Some(q.clone());
        q
    }

    /// Sync the ReplicaSets whose keys are queued (every one when the resync is due), up to
    /// CONCURRENT_SYNCS at once; a failed sync comes back after its backoff.
    async fn reconcile_queued(&mut self) -> Result<Option<Duration>, ApiError> {
        let q = self.queue();
        let owners = self.owners_path();
        let mut keys = q.take_ready();
        if self.resync.due() {
            let all = self.informers.list(&owners).await?;
            let have: std::collections::HashSet<String> = keys.iter().cloned().collect();
            keys.extend(
                all.iter()
                    .map(|o| format!("{}/{}", namespace(o), name(o)))
                    .filter(|k| !have.contains(k)),
            );
        }
        let this = &*self;
        let pods_path = format!("{CORE}/pods");
        let outcomes: Vec<(String, Result<Option<Duration>, ApiError>)> =
            futures::stream::iter(keys.into_iter().map(|key| {
                let (owners, pods_path) = (&owners, &pods_path);
                async move {
                    let r = this.sync_key(owners, pods_path, &key).await;
                    (key, r)
                }
            }))
            .buffer_unordered(CONCURRENT_SYNCS)
            .collect()
            .await;
        for (key, outcome) in outcomes {
            match outcome {
                Ok(again) => {
                    q.forget(&key);
                    if let Some(d) = again {
                        q.add_after(key, d);
                    }
                }
                Err(e) => {
                    let delay = q.requeue_failed(key.clone());
                    tracing::warn!(kind = self.kind.kind, key = %key, error = %e.message, retry_in = ?delay, "sync failed");
                }
            }
        }
        let mut next = self.resync.remaining();
        if let Some(due) = q.next_due() {
            next = next.min(due.saturating_duration_since(tokio::time::Instant::now()));
        }
        Ok(Some(next))
    }

    /// Sync the ReplicaSet with `key` from the caches: its own pods and the orphans of its
    /// namespace, read once the caches have caught up with this controller's writes.
    async fn sync_key(
        &self,
        owners: &str,
        pods_path: &str,
        key: &str,
    ) -> Result<Option<Duration>, ApiError> {
        let Some(rs) = self.informers.get(owners, key).await? else {
            return Ok(None);
        };
        let pods = self
            .informers
            .select(pods_path, uid(&rs), Some(namespace(&rs)))
            .await?;
        let refs: Vec<&Value> = pods.iter().map(|p| &**p).collect();
        self.sync(&rs, &refs).await
    }

    /// One pass over every ReplicaSet (without shared caches).
    async fn reconcile_all(&mut self) -> Result<Option<Duration>, ApiError> {
        let rss = self
            .informers
            .list(&format!("{}/{}", self.kind.prefix, self.kind.plural))
            .await?;
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        // Pods by controller uid come from the snapshot's shared index; orphans are grouped by
        // namespace once per pass. Each ReplicaSet then looks only at its own pods and the
        // orphans it might adopt, not at every pod.
        let mut orphans: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in pods.iter() {
            if controller_ref(p).is_none() {
                orphans.entry(namespace(p)).or_default().push(p);
            }
        }
        let mut requeue: Option<Duration> = None;
        let mut err: Option<ApiError> = None;
        // Up to CONCURRENT_SYNCS ReplicaSets at once (upstream --concurrent-replicaset-syncs):
        // one ReplicaSet's slow-start batches wait for their commits, 100 of them one after
        // the other made pod creation crawl at scale.
        let this = &*self;
        let orphans = &orphans;
        let pods = &pods;
        let mut futs = Vec::with_capacity(rss.len());
        for rs in rss.iter() {
            let rs: &Value = rs;
            let mut candidates: Vec<&Value> = pods.controlled_by(uid(rs)).map(|p| &**p).collect();
            candidates.extend(orphans.get(namespace(rs)).into_iter().flatten().copied());
            futs.push(async move { (rs, this.sync(rs, &candidates).await) });
        }
        let outcomes: Vec<(&Value, Result<Option<Duration>, ApiError>)> =
            futures::stream::iter(futs)
                .buffered(CONCURRENT_SYNCS)
                .collect()
                .await;
        for (rs, outcome) in outcomes {
            match outcome {
                Ok(Some(d)) => requeue = Some(requeue.map(|r| r.min(d)).unwrap_or(d)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(kind = self.kind.kind, name = name(rs), namespace = namespace(rs), error = %e.message, "sync failed");
                    err.get_or_insert(e);
                }
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(requeue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_after_a_failing_one() {
        use std::sync::atomic::{AtomicUsize, Ordering as AO};
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(50, 1, |_| {
            calls.fetch_add(1, AO::SeqCst);
            async { Ok::<u8, ()>(1) }
        })
        .await;
        assert_eq!((ok.len(), err, calls.load(AO::SeqCst)), (50, None, 50));
        // Calls 0..=6 succeed; the batch holding call 7 (calls 7..=14 of batches 1,2,4,8)
        // fails, and nothing starts after it.
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(50, 1, |i| {
            calls.fetch_add(1, AO::SeqCst);
            async move {
                if i >= 7 {
                    Err(i)
                } else {
                    Ok(i)
                }
            }
        })
        .await;
        assert_eq!(ok, (0..7).collect::<Vec<_>>());
        assert_eq!(err, Some(7));
        assert_eq!(calls.load(AO::SeqCst), 15, "1 + 2 + 4 + 8 calls started");
    }

    #[test]
    fn surplus_deletion_prefers_unscheduled_then_unready_then_newest() {
        let p = |n: &str, node: &str, phase: &str, ready: bool, ts: &str| {
            json!({"metadata": {"name": n, "creationTimestamp": ts}, "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
        };
        let mut pods = [
            p("old-ready", "n1", "Running", true, "2024-01-01T00:00:00Z"),
            p("new-ready", "n1", "Running", true, "2024-01-02T00:00:00Z"),
            p("unready", "n1", "Running", false, "2024-01-01T00:00:00Z"),
            p("unscheduled", "", "Pending", false, "2023-01-01T00:00:00Z"),
            p("pending", "n2", "Pending", false, "2023-01-01T00:00:00Z"),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<&str> = pods.iter().map(name).collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "unready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn a_pod_change_queues_its_owner_or_the_owners_that_might_adopt_it() {
        let pod = |owner: Option<(&str, &str, &str)>| {
            let mut p = json!({"metadata": {"name": "p", "namespace": "ns"}});
            if let Some((av, kind, name)) = owner {
                p["metadata"]["ownerReferences"] = json!([
                    {"apiVersion": "v1", "kind": "Service", "name": "x", "uid": "x"},
                    {"apiVersion": av, "kind": kind, "name": name, "uid": "u", "controller": true}
                ]);
            }
            p
        };
        let none = |_: &str| -> Vec<String> { panic!("not an orphan") };
        let rs_a = pod(Some(("apps/v1", "ReplicaSet", "a")));
        let rs_b = pod(Some(("apps/v1", "ReplicaSet", "b")));
        assert_eq!(
            owner_keys_of_change(&REPLICA_SET, None, Some(&rs_a), none),
            ["ns/a"]
        );
        assert_eq!(
            owner_keys_of_change(&REPLICA_SET, Some(&rs_a), Some(&rs_a), none),
            ["ns/a"],
            "deduplicated"
        );
        assert_eq!(
            owner_keys_of_change(&REPLICA_SET, Some(&rs_a), Some(&rs_b), none),
            ["ns/a", "ns/b"],
            "the old and the new owner"
        );
        assert_eq!(
            owner_keys_of_change(&REPLICA_SET, Some(&rs_a), None, none),
            ["ns/a"],
            "deleted"
        );
        // Another kind's pod (or another group's ReplicaSet) concerns no ReplicaSet.
        let rc = pod(Some(("v1", "ReplicationController", "a")));
        let other = pod(Some(("example.com/v1", "ReplicaSet", "a")));
        assert!(owner_keys_of_change(&REPLICA_SET, None, Some(&rc), none).is_empty());
        assert!(owner_keys_of_change(&REPLICA_SET, None, Some(&other), none).is_empty());
        assert_eq!(
            owner_keys_of_change(&REPLICATION_CONTROLLER, None, Some(&rc), none),
            ["ns/a"]
        );
        // An orphan: every owner of its namespace; released by a: a too (once).
        let orphan = pod(None);
        let all = |ns: &str| vec![format!("{ns}/a"), format!("{ns}/c")];
        assert_eq!(
            owner_keys_of_change(&REPLICA_SET, None, Some(&orphan), all),
            ["ns/a", "ns/c"]
        );
        assert_eq!(
            owner_keys_of_change(&REPLICA_SET, Some(&rs_a), Some(&orphan), all),
            ["ns/a", "ns/c"]
        );
    }

    #[test]
    fn template_to_pod() {
        let rs = json!({"metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let pod = pod_from_template(&REPLICA_SET, &rs);
        assert_eq!(pod["metadata"]["generateName"], "web-abc-");
        assert_eq!(pod["metadata"]["labels"]["app"], "web");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Utc::now();
        let ready_at = (now - chrono::Duration::seconds(5)).to_rfc3339();
        let pod = json!({"metadata": {"labels": {"app": "x"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]}});
        let rs = |mrs: i64| json!({"metadata": {"generation": 3}, "spec": {"minReadySeconds": mrs, "template": {"metadata": {"labels": {"app": "x"}}}}});
        let (s, wait) = compute_status(&rs(0), &[&pod], now);
        assert_eq!(
            (
                s["readyReplicas"].as_i64(),
                s["availableReplicas"].as_i64(),
                wait
            ),
            (Some(1), Some(1), None)
        );
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(s["fullyLabeledReplicas"], 1);
        let (s, wait) = compute_status(&rs(10), &[&pod], now);
        assert_eq!(
            (s["readyReplicas"].as_i64(), s["availableReplicas"].as_i64()),
            (Some(1), Some(0))
        );
        let w = wait.unwrap();
        assert!(
            w > Duration::from_secs(4) && w < Duration::from_secs(6),
            "{w:?}"
        );
    }

    #[test]
    fn map_selectors_and_owner_refs_follow_the_kind() {
        let rc = json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u2"},
            "spec": {"selector": {"app": "web"}, "template": {"metadata": {"labels": {"app": "web", "x": "y"}}}}});
        let sel = REPLICATION_CONTROLLER.selector(&rc).unwrap();
        assert!(sel.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
        assert!(!sel.matches_object(&json!({"metadata": {"labels": {"app": "db"}}})));
        // A plain map is not a LabelSelector: read as one, it selects nothing useful.
        assert!(REPLICA_SET.selector(&rc).unwrap().is_everything());
        let pod = pod_from_template(&REPLICATION_CONTROLLER, &rc);
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["kind"],
            "ReplicationController"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["apiVersion"], "v1");
    }

    #[test]
    fn replica_failure_condition_comes_and_goes() {
        let now = Utc::now();
        let added = failure_conditions(&json!({}), Some(("FailedCreate", "quota")), now).unwrap();
        assert_eq!(added.len(), 1);
        assert_eq!(
            (
                &added[0]["type"],
                &added[0]["status"],
                &added[0]["reason"],
                &added[0]["message"]
            ),
            (
                &json!("ReplicaFailure"),
                &json!("True"),
                &json!("FailedCreate"),
                &json!("quota")
            )
        );
        let st = json!({"conditions": added});
        // Still failing: unchanged (the transition time stays).
        assert!(failure_conditions(&st, Some(("FailedCreate", "quota")), now).is_none());
        // Recovered: removed.
        assert_eq!(failure_conditions(&st, None, now), Some(vec![]));
        assert!(failure_conditions(&json!({}), None, now).is_none());
    }
}
