//! The Job controller (upstream pkg/controller/job, with the ttl-after-finished controller's
//! work folded in): runs pods from a Job's template until `completions` succeed (NonIndexed) or
//! every index in `0..completions` succeeded once (Indexed), at most `parallelism` at a time;
//! fails the Job past `backoffLimit` failed pods, past `activeDeadlineSeconds`, or when a
//! `podFailurePolicy` rule says FailJob; deletes running pods while `suspend` is set; and
//! deletes finished Jobs `ttlSecondsAfterFinished` after they finished.
//!
//! Pods carry the `batch.kubernetes.io/job-tracking` finalizer as upstream: a terminated pod is
//! first recorded in `status.uncountedTerminatedPods`, then its finalizer is removed, then it is
//! moved into the `succeeded`/`failed` counters, so every pod is counted exactly once even when
//! pods are removed (or the controller stops) between the steps. A pod deleted before it
//! succeeded counts as failed; pods this controller deletes itself (suspend, a lowered
//! parallelism, a finished Job) lose their finalizer first and are not counted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{self, best_effort, controlled_by, name, namespace, uid, CORE};
use crate::Controller;

pub const BATCH: &str = "/apis/batch/v1";
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const COMPONENT: &str = "job-controller";

/// Why a Job failed: (condition and event reason, message).
type Failure = (String, String);

/// Upstream's pod failure back-off: the first replacement after a failure waits this long,
/// doubling with each further failure since the last success, up to [`MAX_POD_BACKOFF`].
pub const DEFAULT_POD_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_POD_BACKOFF: Duration = Duration::from_secs(360);

/// Failures of a Job's pods since its last success, and when the last one was counted.
#[derive(Debug, Clone, Copy)]
struct BackoffRecord {
    failures: u32,
    last: DateTime<Utc>,
}

pub struct JobController {
    client: LocalClient,
    informers: crate::informer::Informers,
    backoff_base: Duration,
    backoff_max: Duration,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
}

impl JobController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

impl JobController {
    pub fn new(client: LocalClient) -> Self {
        Self::with_pod_backoff(client, DEFAULT_POD_BACKOFF, MAX_POD_BACKOFF)
    }

    /// The controller with another pod failure back-off (tests use short ones).
    pub fn with_pod_backoff(client: LocalClient, base: Duration, max: Duration) -> Self {
        JobController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            backoff_base: base,
            backoff_max: max,
            backoff: Mutex::new(HashMap::new()),
        }
    }

    /// Record counted pods; returns how long new pods must still wait.
    fn backoff_wait(
        &self,
        job_uid: &str,
        succeeded: usize,
        failed: usize,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let mut m = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
        if succeeded > 0 {
            m.remove(job_uid);
        }
        if failed > 0 {
            let r = m.entry(job_uid.to_string()).or_insert(BackoffRecord {
                failures: 0,
                last: now,
            });
            r.failures = r.failures.saturating_add(failed as u32);
            r.last = now;
        }
        let r = m.get(job_uid)?;
        let delay = self
            .backoff_base
            .saturating_mul(1u32 << (r.failures.saturating_sub(1)).min(16))
            .min(self.backoff_max);
        let until = r.last + chrono::Duration::from_std(delay).unwrap_or_default();
        (until > now).then(|| (until - now).to_std().unwrap_or_default())
    }

    fn forget(&self, job_uid: &str) {
        self.backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(job_uid);
    }

    async fn event(&self, job: &Value, ty: &str, reason: &str, msg: &str) {
        best_effort(
            "event",
            util::record_event(&self.client, job, ty, reason, msg, COMPONENT).await,
        )
        .await;
    }

    /// Drop the tracking finalizer from a pod (gone already counts as done).
    async fn remove_finalizer(&self, p: &Value) -> Result<(), ApiError> {
        let fins: Vec<Value> = p["metadata"]["finalizers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|f| f.as_str() != Some(TRACKING_FINALIZER))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let patch = json!({"metadata": {"finalizers": if fins.is_empty() { Value::Null } else { json!(fins) }}});
        match self
            .client
            .merge_patch(
                &util::path(CORE, namespace(p), "pods", Some(name(p))),
                &patch,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Delete a pod this controller no longer wants, without counting it.
    async fn delete_pod(&self, job: &Value, p: &Value) -> Result<(), ApiError> {
        if has_finalizer(p) {
            self.remove_finalizer(p).await?;
        }
        if util::is_deleting(p) {
            return Ok(());
        }
        self.client
            .delete_ignore_missing(&util::path(CORE, namespace(p), "pods", Some(name(p))))
            .await?;
        self.event(
            job,
            "Normal",
            "SuccessfulDelete",
            &format!("Deleted pod: {}", name(p)),
        )
        .await;
        Ok(())
    }

    async fn patch_status(&self, job: &Value, status: Value) -> Result<(), ApiError> {
        let p = format!(
            "{}/status",
            util::path(BATCH, namespace(job), "jobs", Some(name(job)))
        );
        match self
            .client
            .merge_patch(&p, &json!({ "status": status }))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A finished Job: release its pods and delete it once its TTL ran out.
    async fn finished(&self, job: &Value, pods: &[&Value]) -> Result<Option<Duration>, ApiError> {
        self.forget(uid(job));
        for p in pods.iter().filter(|p| has_finalizer(p)) {
            self.remove_finalizer(p).await?;
        }
        let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64() else {
            return Ok(None);
        };
        let expires = finished_at(job).unwrap_or_else(Utc::now) + chrono::Duration::seconds(ttl);
        let now = Utc::now();
        if expires > now {
            return Ok(Some(
                (expires - now).to_std().unwrap_or(Duration::from_secs(1))
                    + Duration::from_millis(50),
            ));
        }
        let path = util::path(BATCH, namespace(job), "jobs", Some(name(job)));
        let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
            "preconditions": {"uid": uid(job)}});
        match self.client.call_delete_with(&path, &opts).await {
            Ok(_) => {
                tracing::info!(
                    job = name(job),
                    namespace = namespace(job),
                    "deleted finished job after its TTL"
                );
                Ok(None)
            }
            Err(e) if e.code == 404 || e.code == 409 => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn sync(&self, job: &Value, all_pods: &[&Value]) -> Result<Option<Duration>, ApiError> {
        let job_uid = uid(job);
        let pods: Vec<&Value> = all_pods
            .iter()
            .filter(|p| controlled_by(p, job_uid))
            .copied()
            .collect();
        if util::is_deleting(job) {
            for p in pods.iter().filter(|p| has_finalizer(p)) {
                self.remove_finalizer(p).await?;
            }
            return Ok(None);
        }
        if finish_condition(job).is_some() {
            return self.finished(job, &pods).await;
        }
        let spec = &job["spec"];
        let now = Utc::now();
        let now_s = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let indexed = spec["completionMode"] == "Indexed";
        let mut status = job["status"].clone();
        if !status.is_object() {
            status = json!({});
        }

        // 1. Record newly terminated pods as uncounted, then release them.
        let mut uncounted_s: BTreeSet<String> =
            str_set(&status["uncountedTerminatedPods"]["succeeded"]);
        let mut uncounted_f: BTreeSet<String> =
            str_set(&status["uncountedTerminatedPods"]["failed"]);
        let mut completed: BTreeSet<i64> =
            parse_indexes(status["completedIndexes"].as_str().unwrap_or(""));
        let mut failure: Option<Failure> = None;
        let mut newly: Vec<&Value> = Vec::new();
        let mut ignored: Vec<&Value> = Vec::new();
        for p in &pods {
            if !has_finalizer(p) || !(util::pod_terminated(p) || util::is_deleting(p)) {
                continue;
            }
            let puid = uid(p).to_string();
            if uncounted_s.contains(&puid) || uncounted_f.contains(&puid) {
                newly.push(p);
                continue;
            }
            if p["status"]["phase"] == "Succeeded" {
                uncounted_s.insert(puid);
                if let Some(i) = pod_index(p) {
                    completed.insert(i);
                }
            } else {
                match failure_policy_action(job, p) {
                    Some((PolicyAction::Ignore, _)) => {
                        ignored.push(p);
                        continue;
                    }
                    Some((PolicyAction::FailJob, msg)) => {
                        failure.get_or_insert(("PodFailurePolicy".into(), msg));
                        uncounted_f.insert(puid);
                    }
                    _ => {
                        uncounted_f.insert(puid);
                    }
                }
            }
            newly.push(p);
        }
        if !newly.is_empty() {
            self.patch_status(
                job,
                json!({"uncountedTerminatedPods": {"succeeded": uncounted_s, "failed": uncounted_f},
                    "completedIndexes": format_indexes(&completed)}),
            )
            .await?;
        }
        for p in newly.iter().chain(ignored.iter()) {
            self.remove_finalizer(p).await?;
        }
        // 2. Every uncounted pod whose finalizer is gone (or which is gone) is counted now.
        let still_held: HashSet<&str> = pods
            .iter()
            .filter(|p| has_finalizer(p) && !newly.iter().any(|n| uid(n) == uid(p)))
            .map(|p| uid(p))
            .collect();
        let mut succeeded = status["succeeded"].as_i64().unwrap_or(0);
        let mut failed = status["failed"].as_i64().unwrap_or(0);
        let moved_s: Vec<String> = uncounted_s
            .iter()
            .filter(|u| !still_held.contains(u.as_str()))
            .cloned()
            .collect();
        let moved_f: Vec<String> = uncounted_f
            .iter()
            .filter(|u| !still_held.contains(u.as_str()))
            .cloned()
            .collect();
        succeeded += moved_s.len() as i64;
        failed += moved_f.len() as i64;
        let backoff = self.backoff_wait(job_uid, moved_s.len(), moved_f.len(), now);
        for u in &moved_s {
            uncounted_s.remove(u);
        }
        for u in &moved_f {
            uncounted_f.remove(u);
        }

        let mut active: Vec<&Value> = pods
            .iter()
            .copied()
            .filter(|p| util::pod_active(p))
            .collect();
        let mut conditions: Vec<Value> =
            status["conditions"].as_array().cloned().unwrap_or_default();
        let mut start_time = status["startTime"].clone();
        let mut completion_time = Value::Null;
        let mut requeue: Option<Duration> = None;
        let suspended = spec["suspend"].as_bool() == Some(true);

        // 3. Failure: the policy, the backoff limit, the deadline.
        let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
        let restarts: i64 = if spec["template"]["spec"]["restartPolicy"] == "OnFailure" {
            active.iter().map(|p| restart_count(p)).sum()
        } else {
            0
        };
        if failure.is_none() && failed + restarts > backoff_limit {
            failure = Some((
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into(),
            ));
        }
        if failure.is_none() && !suspended {
            if let (Some(ads), Some(st)) = (
                spec["activeDeadlineSeconds"].as_i64(),
                util::parse_time(&start_time),
            ) {
                let deadline = st + chrono::Duration::seconds(ads);
                if now >= deadline {
                    failure = Some((
                        "DeadlineExceeded".into(),
                        "Job was active longer than specified deadline".into(),
                    ));
                } else {
                    requeue = Some(
                        (deadline - now).to_std().unwrap_or(Duration::from_secs(1))
                            + Duration::from_millis(50),
                    );
                }
            }
        }

        let completions = spec["completions"].as_i64();
        let done = match (indexed, completions) {
            (true, Some(c)) => completed.iter().filter(|i| **i < c).count() as i64 >= c,
            (false, Some(c)) => succeeded >= c,
            // A work queue: done once a pod succeeded and none runs.
            (_, None) => succeeded > 0 && active.is_empty(),
        };
        let mut created: Result<(), ApiError> = Ok(());
        if let Some((reason, msg)) = &failure {
            for p in active.drain(..) {
                self.delete_pod(job, p).await?;
            }
            set_condition(&mut conditions, "Failed", "True", reason, msg, &now_s);
            self.event(job, "Warning", reason, msg).await;
        } else if done {
            for p in active.drain(..) {
                self.delete_pod(job, p).await?;
            }
            set_condition(&mut conditions, "Complete", "True", "", "", &now_s);
            completion_time = json!(now_s);
            self.event(job, "Normal", "Completed", "Job completed")
                .await;
        } else if suspended {
            for p in active.drain(..) {
                self.delete_pod(job, p).await?;
            }
            if set_condition(
                &mut conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                &now_s,
            ) {
                self.event(job, "Normal", "Suspended", "Job suspended")
                    .await;
            }
        } else {
            if conditions
                .iter()
                .any(|c| c["type"] == "Suspended" && c["status"] == "True")
            {
                set_condition(
                    &mut conditions,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    &now_s,
                );
                self.event(job, "Normal", "Resumed", "Job resumed").await;
                // The deadline counts from the resume.
                start_time = json!(now_s);
            }
            if start_time.is_null() {
                start_time = json!(now_s);
                if let Some(ads) = spec["activeDeadlineSeconds"].as_i64() {
                    requeue =
                        Some(Duration::from_secs(ads.max(0) as u64) + Duration::from_millis(50));
                }
            }
            let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0) as usize;
            let want: Vec<Option<i64>> = if indexed {
                let c = completions.unwrap_or(0);
                let running: HashSet<i64> = active.iter().filter_map(|p| pod_index(p)).collect();
                (0..c)
                    .filter(|i| !completed.contains(i) && !running.contains(i))
                    .take(parallelism.saturating_sub(active.len()))
                    .map(Some)
                    .collect()
            } else {
                let remaining = match completions {
                    Some(c) => (c - succeeded).max(0) as usize,
                    None if succeeded > 0 => 0,
                    None => parallelism,
                };
                let n = remaining.min(parallelism).saturating_sub(active.len());
                vec![None; n]
            };
            if active.len() > parallelism {
                active.sort_by(|a, b| crate::replicaset::deletion_order(a, b));
                let surplus = active.len() - parallelism;
                for p in active.drain(..surplus) {
                    self.delete_pod(job, p).await?;
                }
            }
            let mut made = 0;
            let want = match backoff {
                // Replacements wait out the failure back-off.
                Some(wait) if !want.is_empty() => {
                    requeue = Some(
                        requeue.map(|r| r.min(wait)).unwrap_or(wait) + Duration::from_millis(20),
                    );
                    Vec::new()
                }
                _ => want,
            };
            for idx in want {
                let pod = pod_from_template(job, idx);
                match self
                    .client
                    .create(&util::path(CORE, namespace(job), "pods", None), &pod)
                    .await
                {
                    Ok(p) => {
                        made += 1;
                        self.event(
                            job,
                            "Normal",
                            "SuccessfulCreate",
                            &format!("Created pod: {}", name(&p)),
                        )
                        .await;
                    }
                    Err(e) => {
                        self.event(
                            job,
                            "Warning",
                            "FailedCreate",
                            &format!("Error creating: {}", e.message),
                        )
                        .await;
                        created = Err(e);
                        break;
                    }
                }
            }
            let n_active = active.len() + made;
            status["active"] = json!(n_active);
        }
        if failure.is_some() || done || suspended {
            status["active"] = json!(0);
        }
        status["succeeded"] = json!(succeeded);
        status["failed"] = json!(failed);
        status["uncountedTerminatedPods"] =
            json!({"succeeded": uncounted_s, "failed": uncounted_f});
        if indexed {
            status["completedIndexes"] = json!(format_indexes(&completed));
        }
        status["conditions"] = if conditions.is_empty() {
            Value::Null
        } else {
            json!(conditions)
        };
        if !start_time.is_null() {
            status["startTime"] = start_time;
        }
        if !completion_time.is_null() {
            status["completionTime"] = completion_time;
        }
        status["ready"] = json!(pods
            .iter()
            .filter(|p| util::pod_active(p) && util::pod_ready(p))
            .count());
        let terminating = pods
            .iter()
            .filter(|p| util::is_deleting(p) && !util::pod_terminated(p))
            .count();
        status["terminating"] = json!(terminating);
        if status != job["status"] {
            self.patch_status(job, status).await?;
        }
        created.map(|_| requeue)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum PolicyAction {
    FailJob,
    Ignore,
    Count,
}

/// The first `podFailurePolicy` rule matching a failed pod, with the message a FailJob gives.
fn failure_policy_action(job: &Value, p: &Value) -> Option<(PolicyAction, String)> {
    let rules = job["spec"]["podFailurePolicy"]["rules"].as_array()?;
    for (i, r) in rules.iter().enumerate() {
        let action = match r["action"].as_str() {
            Some("FailJob") => PolicyAction::FailJob,
            Some("Ignore") => PolicyAction::Ignore,
            Some("Count") => PolicyAction::Count,
            _ => continue,
        };
        let rule_name = r["action"].as_str().unwrap_or("");
        if let Some(codes) = r.get("onExitCodes").filter(|c| !c.is_null()) {
            let only = codes["containerName"].as_str();
            let values: Vec<i64> = codes["values"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
                .unwrap_or_default();
            let statuses = p["status"]["initContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(
                    p["status"]["containerStatuses"]
                        .as_array()
                        .into_iter()
                        .flatten(),
                );
            for cs in statuses {
                let cname = cs["name"].as_str().unwrap_or("");
                if only.is_some_and(|o| o != cname) {
                    continue;
                }
                let Some(code) = cs["state"]["terminated"]["exitCode"].as_i64() else {
                    continue;
                };
                if code == 0 {
                    continue;
                }
                let hit = match codes["operator"].as_str() {
                    Some("In") => values.contains(&code),
                    Some("NotIn") => !values.contains(&code),
                    _ => false,
                };
                if hit {
                    return Some((action, format!(
                        "Container {cname} for pod {}/{} failed with exit code {code} matching {rule_name} rule at index {i}",
                        namespace(p), name(p)
                    )));
                }
            }
        }
        if let Some(conds) = r["onPodConditions"].as_array() {
            for pat in conds {
                let ty = pat["type"].as_str().unwrap_or("");
                let want = pat["status"].as_str().unwrap_or("True");
                if util::condition(p, ty).is_some_and(|c| c["status"] == want) {
                    return Some((
                        action,
                        format!(
                            "Pod {}/{} has condition {ty} matching {rule_name} rule at index {i}",
                            namespace(p),
                            name(p)
                        ),
                    ));
                }
            }
        }
    }
    None
}

fn restart_count(p: &Value) -> i64 {
    p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            p["status"]["initContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum()
}

fn has_finalizer(p: &Value) -> bool {
    p["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().any(|f| f.as_str() == Some(TRACKING_FINALIZER)))
        .unwrap_or(false)
}

fn str_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The Complete or Failed condition, when the Job finished.
fn finish_condition(job: &Value) -> Option<&Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

/// Set a condition; true when it changed.
fn set_condition(
    conds: &mut Vec<Value>,
    ty: &str,
    st: &str,
    reason: &str,
    msg: &str,
    now: &str,
) -> bool {
    let mut c = json!({"type": ty, "status": st, "lastProbeTime": now, "lastTransitionTime": now});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !msg.is_empty() {
        c["message"] = json!(msg);
    }
    match conds.iter_mut().find(|c| c["type"] == ty) {
        Some(old) if old["status"] == st => false,
        Some(old) => {
            *old = c;
            true
        }
        None => {
            conds.push(c);
            true
        }
    }
}

fn pod_index(p: &Value) -> Option<i64> {
    p["metadata"]["annotations"][COMPLETION_INDEX]
        .as_str()
        .and_then(|s| s.parse().ok())
}

/// `completedIndexes` text ("1,3-5,7") to a set.
pub fn parse_indexes(s: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    out.insert(a);
                }
            }
        }
    }
    out
}

/// A set of indexes as `completedIndexes` writes it (ranges of consecutive indexes).
pub fn format_indexes(set: &BTreeSet<i64>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// A new pod for `job` (for completion index `idx` of an Indexed Job).
pub fn pod_from_template(job: &Value, idx: Option<i64>) -> Value {
    let tpl = &job["spec"]["template"];
    let prefix = match idx {
        Some(i) => format!("{}-{i}-", name(job)),
        None => format!("{}-", name(job)),
    };
    let mut md = json!({
        "generateName": prefix,
        "namespace": namespace(job),
        "ownerReferences": [util::owner_ref(job, "batch/v1", "Job")],
        "finalizers": [TRACKING_FINALIZER],
    });
    for k in ["labels", "annotations"] {
        if !tpl["metadata"][k].is_null() {
            md[k] = tpl["metadata"][k].clone();
        }
    }
    if let Some(f) = tpl["metadata"]["finalizers"].as_array() {
        let mut all = f.clone();
        all.push(json!(TRACKING_FINALIZER));
        md["finalizers"] = json!(all);
    }
    let mut spec = tpl["spec"].clone();
    if let Some(i) = idx {
        md["annotations"][COMPLETION_INDEX] = json!(i.to_string());
        md["labels"][COMPLETION_INDEX] = json!(i.to_string());
        if spec["hostname"].is_null() {
            spec["hostname"] = json!(format!("{}-{i}", name(job)));
        }
        let env = json!({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['{COMPLETION_INDEX}']")}}});
        for list in ["containers", "initContainers"] {
            if let Some(cs) = spec[list].as_array_mut() {
                for c in cs {
                    match c["env"].as_array_mut() {
                        Some(e) if e.iter().any(|v| v["name"] == "JOB_COMPLETION_INDEX") => {}
                        Some(e) => e.push(env.clone()),
                        None => c["env"] = json!([env.clone()]),
                    }
                }
            }
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec})
}

#[async_trait]
impl Controller for JobController {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(
            format!("{CORE}/pods"),
            crate::wakefilter::controlled_by_kinds(&["Job"]),
        )]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "job"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{BATCH}/jobs"), format!("{CORE}/pods")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let jobs = self.informers.list(&format!("{BATCH}/jobs")).await?;
        let pods = self.informers.list(&format!("{CORE}/pods")).await?;
        let by_ns = util::by_namespace(&pods);
        // Pods whose Job is gone keep no tracking finalizer (upstream's orphan cleanup).
        let live: HashSet<&str> = jobs.iter().map(|j| uid(j)).collect();
        self.backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|u, _| live.contains(u.as_str()));
        for p in pods.iter().filter(|p| has_finalizer(p)) {
            let owner = util::controller_ref(p);
            let orphan = match owner {
                Some(r) if r["kind"] == "Job" => !live.contains(r["uid"].as_str().unwrap_or("")),
                _ => true,
            };
            if orphan {
                if let Err(e) = self.remove_finalizer(p).await {
                    tracing::debug!(pod = name(p), error = %e.message, "finalizer removal failed");
                }
            }
        }
        let empty = Vec::new();
        let mut requeue: Option<Duration> = None;
        let mut err: Option<ApiError> = None;
        for j in &jobs {
            match self
                .sync(j, by_ns.get(namespace(j)).unwrap_or(&empty))
                .await
            {
                Ok(Some(d)) => requeue = Some(requeue.map(|r| r.min(d)).unwrap_or(d)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = name(j), namespace = namespace(j), error = %e.message, "job sync failed");
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

/// When a finished Job finished: its completion time, else its Failed condition's transition.
pub fn finished_at(job: &Value) -> Option<DateTime<Utc>> {
    util::parse_time(&job["status"]["completionTime"])
        .or_else(|| finish_condition(job).and_then(|c| util::parse_time(&c["lastTransitionTime"])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_round_trip() {
        let s = parse_indexes("0-2,5,7-8");
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 5, 7, 8]
        );
        assert_eq!(format_indexes(&s), "0-2,5,7-8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn indexed_pod_gets_index_hostname_and_env() {
        let job = json!({"metadata": {"name": "idx", "namespace": "ns", "uid": "u"},
            "spec": {"template": {"metadata": {"labels": {"job-name": "idx"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let p = pod_from_template(&job, Some(2));
        assert_eq!(p["metadata"]["generateName"], "idx-2-");
        assert_eq!(p["metadata"]["annotations"][COMPLETION_INDEX], "2");
        assert_eq!(p["metadata"]["labels"][COMPLETION_INDEX], "2");
        assert_eq!(p["spec"]["hostname"], "idx-2");
        assert_eq!(
            p["spec"]["containers"][0]["env"][0]["name"],
            "JOB_COMPLETION_INDEX"
        );
        assert_eq!(p["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
    }

    #[test]
    fn failure_policy_matches_exit_codes_and_conditions() {
        let job = json!({"spec": {"podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        ]}}});
        let pod = |code: i64, cond: bool| {
            json!({"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Failed",
            "conditions": if cond { json!([{"type": "DisruptionTarget", "status": "True"}]) } else { json!([]) },
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}})
        };
        let (a, msg) = failure_policy_action(&job, &pod(42, false)).unwrap();
        assert_eq!(a, PolicyAction::FailJob);
        assert_eq!(
            msg,
            "Container main for pod n/p failed with exit code 42 matching FailJob rule at index 1"
        );
        assert_eq!(
            failure_policy_action(&job, &pod(1, true)).unwrap().0,
            PolicyAction::Ignore
        );
        assert!(failure_policy_action(&job, &pod(1, false)).is_none());
    }
}
