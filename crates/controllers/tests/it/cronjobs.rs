//! The CronJob controller against the in-process API server, on a clock the test moves; the
//! test plays the Job controller by writing Job conditions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use daas_apiserver::LocalClient;
use daas_controllers::cronjob::{CronJobController, FixedClock, SCHEDULED_TIMESTAMP};
use daas_controllers::ControllerOptions;
use serde_json::{json, Value};

use crate::common;
use common::Env;

const CJS: &str = "/apis/batch/v1/namespaces/default/cronjobs";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";

async fn env() -> (Env, Arc<FixedClock>) {
    let mut e = common::api().await;
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let opts = ControllerOptions {
        resync: Duration::from_millis(200),
        ..Default::default()
    };
    e.tasks.push(daas_controllers::spawn_controller(
        e.c.clone(),
        CronJobController::with_clock(e.c.clone(), clock.clone()),
        &opts,
    ));
    (e, clock)
}

fn cronjob(name: &str, schedule: &str, extra: Value) -> Value {
    let mut c = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
        "spec": {"schedule": schedule, "jobTemplate": {"metadata": {"labels": {"app": name}},
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}}});
    for (k, v) in extra.as_object().into_iter().flatten() {
        c["spec"][k] = v.clone();
    }
    c
}

async fn wait_for<F, Fut, T>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn jobs_of(c: &LocalClient, cj: &str) -> Vec<Value> {
    let mut js: Vec<Value> = c
        .list(&format!("{JOBS}?labelSelector=app={cj}"))
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j["metadata"]["deletionTimestamp"].is_null())
        .collect();
    js.sort_by_key(|j| j["metadata"]["name"].as_str().unwrap_or("").to_string());
    js
}

async fn wait_jobs(c: &LocalClient, cj: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} jobs of {cj}"), || async {
        let js = jobs_of(c, cj).await;
        (js.len() == n).then_some(js)
    })
    .await
}

/// The first whole minute after `t`, plus `secs`.
fn minute_after(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let m = t.with_second(0).unwrap().with_nanosecond(0).unwrap() + chrono::Duration::minutes(1);
    m + chrono::Duration::seconds(secs)
}

fn created_at(o: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(o["metadata"]["creationTimestamp"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Job controller stand-in: the Job finished as `ty` (Complete or Failed).
async fn finish_job(c: &LocalClient, j: &Value, ty: &str) {
    let name = j["metadata"]["name"].as_str().unwrap();
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut st = json!({"startTime": now, "conditions": [{"type": ty, "status": "True", "lastTransitionTime": now}]});
    if ty == "Complete" {
        st["completionTime"] = json!(now);
        st["succeeded"] = json!(1);
    } else {
        st["failed"] = json!(1);
    }
    c.merge_patch(&format!("{JOBS}/{name}/status"), &json!({"status": st}))
        .await
        .unwrap();
}

async fn events(c: &LocalClient, name: &str) -> Vec<String> {
    c.list("/api/v1/namespaces/default/events")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn creates_a_job_per_scheduled_time_and_tracks_it() {
    let (e, clock) = env().await;
    let c = &e.c;
    let cj = c
        .create(CJS, &cronjob("tick", "*/1 * * * *", json!({})))
        .await
        .unwrap();
    // Before the first scheduled minute: nothing.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(jobs_of(c, "tick").await.is_empty());
    let t1 = minute_after(created_at(&cj), 0);
    clock.set(t1 + chrono::Duration::seconds(5));
    let js = wait_jobs(c, "tick", 1).await;
    let j = &js[0];
    assert_eq!(
        j["metadata"]["name"],
        format!("tick-{}", t1.timestamp() / 60)
    );
    let r = &j["metadata"]["ownerReferences"][0];
    assert_eq!(
        (r["kind"].as_str(), r["controller"].as_bool()),
        (Some("CronJob"), Some(true))
    );
    assert_eq!(
        j["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
        t1.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    // The Job got the Job defaults and a generated selector.
    assert_eq!(j["spec"]["backoffLimit"], 6);
    assert!(j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"].is_string());
    let st = wait_for("active", || async {
        let s = c.get(&format!("{CJS}/tick")).await.unwrap()["status"].clone();
        (s["active"].as_array().map(|a| a.len()) == Some(1)).then_some(s)
    })
    .await;
    assert_eq!(st["active"][0]["name"], j["metadata"]["name"]);
    assert_eq!(
        st["lastScheduleTime"],
        t1.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    finish_job(c, j, "Complete").await;
    let st = wait_for("lastSuccessfulTime", || async {
        let s = c.get(&format!("{CJS}/tick")).await.unwrap()["status"].clone();
        (s["active"].is_null() && s["lastSuccessfulTime"].is_string()).then_some(s)
    })
    .await;
    assert!(st["lastSuccessfulTime"].is_string());
    // Allow: the next minute starts another one.
    clock.set(t1 + chrono::Duration::seconds(65));
    wait_jobs(c, "tick", 2).await;
    let ev = events(c, "tick").await;
    assert!(ev.contains(&"SuccessfulCreate".to_string()), "{ev:?}");
    assert!(ev.contains(&"SawCompletedJob".to_string()), "{ev:?}");
}

#[tokio::test]
async fn forbid_skips_while_a_job_runs_and_replace_replaces_it() {
    let (e, clock) = env().await;
    let c = &e.c;
    let f = c
        .create(
            CJS,
            &cronjob(
                "forbid",
                "*/1 * * * *",
                json!({"concurrencyPolicy": "Forbid"}),
            ),
        )
        .await
        .unwrap();
    c.create(
        CJS,
        &cronjob(
            "replace",
            "*/1 * * * *",
            json!({"concurrencyPolicy": "Replace"}),
        ),
    )
    .await
    .unwrap();
    let t1 = minute_after(created_at(&f), 1);
    clock.set(t1);
    let first_f = wait_jobs(c, "forbid", 1).await;
    let first_r = wait_jobs(c, "replace", 1).await;
    clock.set(t1 + chrono::Duration::seconds(60));
    let r = wait_for("replacement", || async {
        let js = jobs_of(c, "replace").await;
        (js.len() == 1 && js[0]["metadata"]["name"] != first_r[0]["metadata"]["name"]).then_some(js)
    })
    .await;
    assert_eq!(r.len(), 1);
    wait_for("JobAlreadyActive", || async {
        events(c, "forbid")
            .await
            .contains(&"JobAlreadyActive".to_string())
            .then_some(())
    })
    .await;
    let f_jobs = jobs_of(c, "forbid").await;
    assert_eq!(f_jobs.len(), 1);
    assert_eq!(
        f_jobs[0]["metadata"]["name"],
        first_f[0]["metadata"]["name"]
    );
    // Once it finished, the next schedule starts one.
    finish_job(c, &first_f[0], "Complete").await;
    clock.set(t1 + chrono::Duration::seconds(120));
    wait_jobs(c, "forbid", 2).await;
}

#[tokio::test]
async fn suspended_and_too_late_schedules_start_nothing() {
    let (e, clock) = env().await;
    let c = &e.c;
    let s = c
        .create(
            CJS,
            &cronjob("paused", "*/1 * * * *", json!({"suspend": true})),
        )
        .await
        .unwrap();
    c.create(
        CJS,
        &cronjob(
            "late",
            "*/1 * * * *",
            json!({"startingDeadlineSeconds": 10}),
        ),
    )
    .await
    .unwrap();
    let t1 = minute_after(created_at(&s), 0);
    // 30s after the scheduled minute: past the 10s starting deadline.
    clock.set(t1 + chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(jobs_of(c, "paused").await.is_empty());
    assert!(jobs_of(c, "late").await.is_empty());
    // Within the deadline of the next minute, it starts.
    clock.set(t1 + chrono::Duration::seconds(65));
    wait_jobs(c, "late", 1).await;
    assert!(jobs_of(c, "paused").await.is_empty());
    // Unsuspended, the paused one starts at the latest missed time.
    c.merge_patch(
        &format!("{CJS}/paused"),
        &json!({"spec": {"suspend": false}}),
    )
    .await
    .unwrap();
    let js = wait_jobs(c, "paused", 1).await;
    assert_eq!(
        js[0]["metadata"]["name"],
        format!("paused-{}", (t1.timestamp() + 60) / 60)
    );
}

#[tokio::test]
async fn history_limits_delete_old_finished_jobs() {
    let (e, clock) = env().await;
    let c = &e.c;
    let cj = c
        .create(
            CJS,
            &cronjob(
                "hist",
                "*/1 * * * *",
                json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1}),
            ),
        )
        .await
        .unwrap();
    let t1 = minute_after(created_at(&cj), 1);
    let mut names = Vec::new();
    for (i, outcome) in ["Complete", "Complete", "Failed", "Failed"]
        .iter()
        .enumerate()
    {
        clock.set(t1 + chrono::Duration::seconds(60 * i as i64));
        let j = wait_for("new job", || async {
            jobs_of(c, "hist")
                .await
                .into_iter()
                .find(|j| !names.contains(&j["metadata"]["name"].as_str().unwrap().to_string()))
        })
        .await;
        names.push(j["metadata"]["name"].as_str().unwrap().to_string());
        finish_job(c, &j, outcome).await;
    }
    let left = wait_for("history trimmed", || async {
        let js = jobs_of(c, "hist").await;
        (js.len() == 2).then_some(js)
    })
    .await;
    let left: Vec<&str> = left
        .iter()
        .map(|j| j["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec![names[1].as_str(), names[3].as_str()]);
}

#[tokio::test]
async fn schedules_run_in_the_time_zone() {
    let (e, clock) = env().await;
    let c = &e.c;
    let cj = c
        .create(
            CJS,
            &cronjob("tokyo", "0 9 * * *", json!({"timeZone": "Asia/Tokyo"})),
        )
        .await
        .unwrap();
    // 09:00 in Tokyo is 00:00 UTC: the next UTC midnight after creation.
    let created = created_at(&cj);
    let midnight =
        created.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc() + chrono::Duration::days(1);
    clock.set(midnight - chrono::Duration::seconds(5));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(jobs_of(c, "tokyo").await.is_empty());
    clock.set(midnight + chrono::Duration::seconds(5));
    let js = wait_jobs(c, "tokyo", 1).await;
    let ts = js[0]["metadata"]["annotations"][SCHEDULED_TIMESTAMP]
        .as_str()
        .unwrap();
    assert!(ts.ends_with("T09:00:00+09:00"), "{ts}");
}
