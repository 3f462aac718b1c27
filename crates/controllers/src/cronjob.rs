//! The CronJob controller (upstream pkg/controller/cronjob, the v2 controller): at each time the
//! schedule names (in `spec.timeZone`), creates the Job `<cronjob>-<minutes since the epoch>`
//! from `spec.jobTemplate`, honouring `suspend`, `startingDeadlineSeconds` and the
//! `concurrencyPolicy` (Allow, Forbid: skip while one runs, Replace: delete the running ones);
//! keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`; and deletes finished Jobs
//! beyond the successful/failed history limits.
//!
//! Time comes from a [`Clock`], so tests move it instead of waiting for minutes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use daas_apiserver::registry::cronjob::Schedule;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::job::BATCH;
use crate::util::{self, best_effort, controlled_by, name, namespace, uid};
use crate::Controller;

const COMPONENT: &str = "cronjob-controller";
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream gives up listing missed start times past this many and starts the latest.
const MAX_MISSED: usize = 100;

/// Where the controller reads the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until set (for tests and simulations).
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(t))
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct CronJobController {
    client: LocalClient,
    clock: Arc<dyn Clock>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The Job a CronJob makes for scheduled time `t`.
pub fn job_name(cj: &Value, t: DateTime<Utc>) -> String {
    format!("{}-{}", name(cj), t.timestamp().div_euclid(60))
}

fn finished(job: &Value) -> Option<&'static str> {
    let conds = job["status"]["conditions"].as_array()?;
    for ty in ["Complete", "Failed"] {
        if conds
            .iter()
            .any(|c| c["type"] == ty && c["status"] == "True")
        {
            return Some(if ty == "Complete" {
                "Complete"
            } else {
                "Failed"
            });
        }
    }
    None
}

/// The scheduled times in (`earliest`, `now`]: the most recent and whether more than
/// [`MAX_MISSED`] were missed.
fn most_recent(
    s: &Schedule,
    earliest: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, bool) {
    let mut t = earliest;
    let mut last = None;
    let mut n = 0;
    while let Some(next) = s.next_after(t) {
        if next > now {
            break;
        }
        last = Some(next);
        n += 1;
        t = next;
        if n > MAX_MISSED {
            // Jump: the most recent time is the last one at or before now.
            let mut probe = now - chrono::Duration::days(366);
            if probe < t {
                probe = t;
            }
            while let Some(x) = s.next_after(probe) {
                if x > now {
                    break;
                }
                last = Some(x);
                probe = x;
            }
            return (last, true);
        }
    }
    (last, false)
}

impl CronJobController {
    pub fn new(client: LocalClient) -> Self {
        Self::with_clock(client, Arc::new(SystemClock))
    }

    pub fn with_clock(client: LocalClient, clock: Arc<dyn Clock>) -> Self {
        CronJobController { client, clock }
    }

    async fn event(&self, cj: &Value, ty: &str, reason: &str, msg: &str) {
        best_effort(
            "event",
            util::record_event(&self.client, cj, ty, reason, msg, COMPONENT).await,
        )
        .await;
    }

    async fn delete_job(&self, cj: &Value, job: &Value) -> Result<(), ApiError> {
        let path = util::path(BATCH, namespace(job), "jobs", Some(name(job)));
        match self
            .client
            .call_delete_with(&path, &json!({"propagationPolicy": "Background"}))
            .await
        {
            Ok(_) => {
                self.event(
                    cj,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted job {}", name(job)),
                )
                .await;
                Ok(())
            }
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn sync(&self, cj: &Value, all_jobs: &[Value]) -> Result<Option<Duration>, ApiError> {
        let now = self.clock.now();
        let cj_uid = uid(cj);
        let jobs: Vec<&Value> = all_jobs
            .iter()
            .filter(|j| controlled_by(j, cj_uid))
            .collect();
        let mut status = cj["status"].clone();
        if !status.is_object() {
            status = json!({});
        }
        // 1. status.active: only owned Jobs still running.
        let mut active: Vec<Value> = status["active"].as_array().cloned().unwrap_or_default();
        active.retain(|r| {
            jobs.iter()
                .any(|j| uid(j) == r["uid"].as_str().unwrap_or("") && finished(j).is_none())
        });
        let mut last_success = util::parse_time(&status["lastSuccessfulTime"]);
        for j in &jobs {
            let in_active = cj["status"]["active"]
                .as_array()
                .map(|a| a.iter().any(|r| r["uid"].as_str() == Some(uid(j))))
                .unwrap_or(false);
            match finished(j) {
                Some(state) if in_active => {
                    self.event(
                        cj,
                        "Normal",
                        "SawCompletedJob",
                        &format!("Saw completed job: {}, status: {state}", name(j)),
                    )
                    .await;
                    if state == "Complete" {
                        if let Some(t) = util::parse_time(&j["status"]["completionTime"]) {
                            if last_success.map(|l| t > l).unwrap_or(true) {
                                last_success = Some(t);
                            }
                        }
                    }
                }
                Some(_) => {}
                None if !active.iter().any(|r| r["uid"].as_str() == Some(uid(j))) => {
                    if j["metadata"]["annotations"][SCHEDULED_TIMESTAMP].is_string() {
                        active.push(job_ref(j));
                    } else if !util::is_deleting(j) {
                        self.event(
                            cj,
                            "Warning",
                            "UnexpectedJob",
                            &format!(
                                "Saw a job that the controller did not create or forgot: {}",
                                name(j)
                            ),
                        )
                        .await;
                    }
                }
                None => {}
            }
        }
        let mut requeue: Option<Duration> = None;
        let mut result: Result<(), ApiError> = Ok(());
        if !util::is_deleting(cj) && cj["spec"]["suspend"].as_bool() != Some(true) {
            match Schedule::parse(
                cj["spec"]["schedule"].as_str().unwrap_or(""),
                cj["spec"]["timeZone"].as_str(),
            ) {
                Err(e) => {
                    let reason = match e {
                        daas_apiserver::registry::cronjob::ScheduleError::TimeZone(_) => {
                            "UnknownTimeZone"
                        }
                        _ => "UnparseableSchedule",
                    };
                    self.event(cj, "Warning", reason, &e.to_string()).await;
                }
                Ok(sched) => {
                    match self
                        .schedule(cj, &sched, now, &mut active, &mut status)
                        .await
                    {
                        Ok(d) => requeue = d,
                        Err(e) => result = Err(e),
                    }
                }
            }
        }
        // History limits over the finished Jobs.
        for (state, limit_field) in [
            ("Complete", "successfulJobsHistoryLimit"),
            ("Failed", "failedJobsHistoryLimit"),
        ] {
            let Some(limit) = cj["spec"][limit_field].as_i64() else {
                continue;
            };
            let mut done: Vec<&&Value> = jobs
                .iter()
                .filter(|j| finished(j) == Some(state) && !util::is_deleting(j))
                .collect();
            if done.len() as i64 <= limit {
                continue;
            }
            let key = |j: &Value| {
                j["status"]["startTime"]
                    .as_str()
                    .or(j["metadata"]["creationTimestamp"].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            done.sort_by_key(|j| key(j));
            let surplus = done.len() - limit.max(0) as usize;
            for j in done.into_iter().take(surplus) {
                self.delete_job(cj, j).await?;
            }
        }
        status["active"] = if active.is_empty() {
            Value::Null
        } else {
            json!(active)
        };
        if let Some(t) = last_success {
            status["lastSuccessfulTime"] = json!(rfc3339(t));
        }
        if without_nulls(&status) != without_nulls(&cj["status"]) {
            let p = format!(
                "{}/status",
                util::path(BATCH, namespace(cj), "cronjobs", Some(name(cj)))
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

    /// Start the Job due now, if any; returns when to look again.
    async fn schedule(
        &self,
        cj: &Value,
        sched: &Schedule,
        now: DateTime<Utc>,
        active: &mut Vec<Value>,
        status: &mut Value,
    ) -> Result<Option<Duration>, ApiError> {
        let next_wait = |from: DateTime<Utc>| {
            sched
                .next_after(from)
                .map(|n| (n - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(100))
        };
        let created = util::parse_time(&cj["metadata"]["creationTimestamp"]).unwrap_or(now);
        let mut earliest = util::parse_time(&status["lastScheduleTime"]).unwrap_or(created);
        let deadline = cj["spec"]["startingDeadlineSeconds"].as_i64();
        if let Some(d) = deadline {
            let limit = now - chrono::Duration::seconds(d);
            if limit > earliest {
                earliest = limit;
            }
        }
        let (t, too_many) = most_recent(sched, earliest, now);
        let Some(t) = t else {
            return Ok(next_wait(now));
        };
        if too_many {
            self.event(cj, "Warning", "TooManyMissedTimes", &format!(
                "too many missed start times: {MAX_MISSED}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
            ))
            .await;
        }
        if let Some(d) = deadline {
            if t + chrono::Duration::seconds(d) < now {
                self.event(
                    cj,
                    "Warning",
                    "MissSchedule",
                    &format!("Missed scheduled time to start a job: {}", rfc3339(t)),
                )
                .await;
                return Ok(next_wait(now));
            }
        }
        let jname = job_name(cj, t);
        if active.iter().any(|r| r["name"] == jname.as_str())
            || util::parse_time(&status["lastScheduleTime"]) == Some(t)
        {
            return Ok(next_wait(now));
        }
        match cj["spec"]["concurrencyPolicy"].as_str() {
            Some("Forbid") if !active.is_empty() => {
                self.event(cj, "Normal", "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
                    .await;
                return Ok(next_wait(now));
            }
            Some("Replace") => {
                for r in active.drain(..) {
                    let j = json!({"metadata": {"name": r["name"], "namespace": namespace(cj)}});
                    self.delete_job(cj, &j).await?;
                }
            }
            _ => {}
        }
        let tpl = &cj["spec"]["jobTemplate"];
        let mut annotations = tpl["metadata"]["annotations"].clone();
        if !annotations.is_object() {
            annotations = json!({});
        }
        let tz: chrono_tz::Tz = cj["spec"]["timeZone"]
            .as_str()
            .and_then(|z| z.parse().ok())
            .unwrap_or(chrono_tz::Tz::UTC);
        annotations[SCHEDULED_TIMESTAMP] = json!(t
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, true));
        let mut md = json!({"name": jname, "namespace": namespace(cj), "annotations": annotations,
            "ownerReferences": [util::owner_ref(cj, "batch/v1", "CronJob")]});
        if !tpl["metadata"]["labels"].is_null() {
            md["labels"] = tpl["metadata"]["labels"].clone();
        }
        let job =
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": tpl["spec"]});
        let made = match self
            .client
            .create(&util::path(BATCH, namespace(cj), "jobs", None), &job)
            .await
        {
            Ok(j) => {
                self.event(
                    cj,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created job {}", name(&j)),
                )
                .await;
                j
            }
            Err(e) if e.code == 409 => {
                // Made by an earlier pass whose status write was lost.
                let existing = self
                    .client
                    .get(&util::path(BATCH, namespace(cj), "jobs", Some(&jname)))
                    .await?;
                if !controlled_by(&existing, uid(cj)) {
                    return Err(e);
                }
                existing
            }
            Err(e) => {
                self.event(
                    cj,
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating job: {}", e.message),
                )
                .await;
                return Err(e);
            }
        };
        if finished(&made).is_none() {
            active.push(job_ref(&made));
        }
        status["lastScheduleTime"] = json!(rfc3339(t));
        Ok(next_wait(now))
    }
}

/// A status object with its null members dropped (an absent and a null `active` are equal).
fn without_nulls(v: &Value) -> Value {
    match v.as_object() {
        Some(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => json!({}),
    }
}

fn job_ref(j: &Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "name": name(j), "namespace": namespace(j),
        "uid": uid(j), "resourceVersion": j["metadata"]["resourceVersion"]})
}

#[async_trait]
impl Controller for CronJobController {
    fn name(&self) -> &'static str {
        "cronjob"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{BATCH}/cronjobs"), format!("{BATCH}/jobs")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let cjs = self.client.list(&format!("{BATCH}/cronjobs")).await?;
        let jobs = self.client.list(&format!("{BATCH}/jobs")).await?;
        let mut by_ns: HashMap<&str, Vec<Value>> = HashMap::new();
        for j in &jobs {
            by_ns.entry(namespace(j)).or_default().push(j.clone());
        }
        let empty = Vec::new();
        let mut requeue: Option<Duration> = None;
        let mut err: Option<ApiError> = None;
        for cj in &cjs {
            match self
                .sync(cj, by_ns.get(namespace(cj)).unwrap_or(&empty))
                .await
            {
                Ok(Some(d)) => requeue = Some(requeue.map(|r| r.min(d)).unwrap_or(d)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(cronjob = name(cj), namespace = namespace(cj), error = %e.message, "cronjob sync failed");
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

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn most_recent_time_and_missed_count() {
        let s = Schedule::parse("*/5 * * * *", None).unwrap();
        let (last, many) = most_recent(&s, t("2024-01-01T00:00:00Z"), t("2024-01-01T00:17:00Z"));
        assert_eq!(last, Some(t("2024-01-01T00:15:00Z")));
        assert!(!many);
        let (last, many) = most_recent(&s, t("2024-01-01T00:00:00Z"), t("2024-01-03T00:17:00Z"));
        assert_eq!(last, Some(t("2024-01-03T00:15:00Z")));
        assert!(many);
        let (none, _) = most_recent(&s, t("2024-01-01T00:00:00Z"), t("2024-01-01T00:04:59Z"));
        assert!(none.is_none());
    }

    #[test]
    fn job_names_count_minutes() {
        let cj = json!({"metadata": {"name": "hello"}});
        assert_eq!(job_name(&cj, t("2024-01-01T00:01:00Z")), "hello-28401121");
    }
}
