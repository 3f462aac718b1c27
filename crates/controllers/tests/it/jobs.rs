//! The Job controller against the in-process API server; the test plays the kubelet by writing
//! pod phases (and container exit codes) through the pods' status subresource.

use std::time::{Duration, Instant};

use daas_apiserver::LocalClient;
use daas_controllers::job::{JobController, COMPLETION_INDEX, TRACKING_FINALIZER};
use daas_controllers::ControllerOptions;
use serde_json::{json, Value};

use crate::common;
use common::Env;

const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";

async fn env() -> Env {
    let mut e = common::api().await;
    let opts = ControllerOptions {
        resync: Duration::from_millis(500),
        ..Default::default()
    };
    e.tasks.push(daas_controllers::spawn_controller(
        e.c.clone(),
        JobController::with_pod_backoff(
            e.c.clone(),
            Duration::from_millis(50),
            Duration::from_secs(1),
        ),
        &opts,
    ));
    e
}

fn job(name: &str, spec_extra: Value) -> Value {
    let mut j = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36"}]}}}});
    for (k, v) in spec_extra.as_object().into_iter().flatten() {
        j["spec"][k] = v.clone();
    }
    j
}

async fn wait_for<F, Fut, T>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The job's pods that are neither terminated nor being deleted.
async fn active_pods(c: &LocalClient, job: &str) -> Vec<Value> {
    c.list(&format!(
        "/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io/job-name={job}"
    ))
    .await
    .unwrap()
    .into_iter()
    .filter(|p| {
        p["metadata"]["deletionTimestamp"].is_null()
            && !matches!(
                p["status"]["phase"].as_str(),
                Some("Succeeded") | Some("Failed")
            )
    })
    .collect()
}

async fn wait_active(c: &LocalClient, job: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} active pods of {job}"), || async {
        let pods = active_pods(c, job).await;
        (pods.len() == n).then_some(pods)
    })
    .await
}

/// Kubelet: the pod ended in `phase`, its container with `code`.
async fn finish(c: &LocalClient, p: &Value, phase: &str, code: i64) {
    let name = p["metadata"]["name"].as_str().unwrap();
    c.merge_patch(
        &format!("/api/v1/namespaces/default/pods/{name}/status"),
        &json!({"status": {"phase": phase, "containerStatuses": [{"name": "main", "image": "busybox:1.36",
            "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}}}]}}),
    )
    .await
    .unwrap();
}

async fn get_job(c: &LocalClient, name: &str) -> Value {
    c.get(&format!("{JOBS}/{name}")).await.unwrap()
}

fn condition<'a>(j: &'a Value, ty: &str) -> Option<&'a Value> {
    j["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty && c["status"] == "True")
}

async fn wait_condition(c: &LocalClient, name: &str, ty: &str) -> Value {
    wait_for(&format!("{name} {ty}"), || async {
        let j = get_job(c, name).await;
        condition(&j, ty).is_some().then_some(j)
    })
    .await
}

async fn events(c: &LocalClient, name: &str) -> Vec<String> {
    c.list("/api/v1/namespaces/default/events")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["involvedObject"]["kind"] == "Job")
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn job_runs_pods_up_to_parallelism_until_completions_succeed() {
    let e = env().await;
    let c = &e.c;
    let created = c
        .create(
            JOBS,
            &job("pi", json!({"completions": 3, "parallelism": 2})),
        )
        .await
        .unwrap();
    let pods = wait_active(c, "pi", 2).await;
    for p in &pods {
        let r = &p["metadata"]["ownerReferences"][0];
        assert_eq!(
            (r["kind"].as_str(), r["controller"].as_bool()),
            (Some("Job"), Some(true))
        );
        assert_eq!(r["uid"], created["metadata"]["uid"]);
        assert_eq!(p["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(
            p["metadata"]["labels"]["controller-uid"],
            created["metadata"]["uid"]
        );
    }
    let j = wait_for("startTime", || async {
        let j = get_job(c, "pi").await;
        (j["status"]["active"] == 2).then_some(j)
    })
    .await;
    assert!(j["status"]["startTime"].is_string());
    finish(c, &pods[0], "Succeeded", 0).await;
    finish(c, &pods[1], "Succeeded", 0).await;
    // Only one more is needed.
    let third = wait_active(c, "pi", 1).await;
    finish(c, &third[0], "Succeeded", 0).await;
    let j = wait_condition(c, "pi", "Complete").await;
    assert_eq!(j["status"]["succeeded"], 3);
    assert_eq!(j["status"]["failed"], 0);
    assert_eq!(j["status"]["active"], 0);
    assert!(j["status"]["completionTime"].is_string());
    // Counted pods lost their tracking finalizer.
    let pods = c.list("/api/v1/namespaces/default/pods").await.unwrap();
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter().all(|p| p["metadata"]["finalizers"].is_null()),
        "{pods:?}"
    );
    let ev = events(c, "pi").await;
    assert!(ev.contains(&"SuccessfulCreate".to_string()), "{ev:?}");
    assert!(ev.contains(&"Completed".to_string()), "{ev:?}");
}

#[tokio::test]
async fn failed_pods_past_backoff_limit_fail_the_job() {
    let e = env().await;
    let c = &e.c;
    c.create(JOBS, &job("flaky", json!({"backoffLimit": 1})))
        .await
        .unwrap();
    let p = wait_active(c, "flaky", 1).await;
    finish(c, &p[0], "Failed", 1).await;
    // A replacement after the first failure (1 failure is within the limit).
    let p2 = wait_for("replacement pod", || async {
        let ps = active_pods(c, "flaky").await;
        ps.into_iter()
            .find(|x| x["metadata"]["name"] != p[0]["metadata"]["name"])
    })
    .await;
    finish(c, &p2, "Failed", 1).await;
    let j = wait_condition(c, "flaky", "Failed").await;
    let cond = condition(&j, "Failed").unwrap();
    assert_eq!(cond["reason"], "BackoffLimitExceeded");
    assert_eq!(
        cond["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(j["status"]["failed"], 2);
    assert!(active_pods(c, "flaky").await.is_empty());
    assert!(events(c, "flaky")
        .await
        .contains(&"BackoffLimitExceeded".to_string()));
}

#[tokio::test]
async fn active_deadline_fails_the_job_and_stops_its_pods() {
    let e = env().await;
    let c = &e.c;
    c.create(
        JOBS,
        &job(
            "slow",
            json!({"activeDeadlineSeconds": 1, "parallelism": 2, "completions": 4}),
        ),
    )
    .await
    .unwrap();
    wait_active(c, "slow", 2).await;
    let j = wait_condition(c, "slow", "Failed").await;
    assert_eq!(
        condition(&j, "Failed").unwrap()["reason"],
        "DeadlineExceeded"
    );
    wait_active(c, "slow", 0).await;
    // Pods the controller deleted are not failures.
    assert_eq!(get_job(c, "slow").await["status"]["failed"], 0);
}

#[tokio::test]
async fn indexed_job_runs_each_index_once() {
    let e = env().await;
    let c = &e.c;
    c.create(
        JOBS,
        &job(
            "idx",
            json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3}),
        ),
    )
    .await
    .unwrap();
    let pods = wait_active(c, "idx", 3).await;
    let mut idx: Vec<String> = pods
        .iter()
        .map(|p| {
            p["metadata"]["annotations"][COMPLETION_INDEX]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    idx.sort();
    assert_eq!(idx, vec!["0", "1", "2"]);
    let p1 = pods
        .iter()
        .find(|p| p["metadata"]["annotations"][COMPLETION_INDEX] == "1")
        .unwrap();
    assert_eq!(p1["spec"]["hostname"], "idx-1");
    assert_eq!(
        p1["spec"]["containers"][0]["env"][0]["name"],
        "JOB_COMPLETION_INDEX"
    );
    // Index 1 fails once and is run again; the others succeed.
    finish(c, p1, "Failed", 3).await;
    let retry = wait_for("index 1 again", || async {
        active_pods(c, "idx").await.into_iter().find(|p| {
            p["metadata"]["annotations"][COMPLETION_INDEX] == "1"
                && p["metadata"]["name"] != p1["metadata"]["name"]
        })
    })
    .await;
    for p in pods
        .iter()
        .filter(|p| p["metadata"]["annotations"][COMPLETION_INDEX] != "1")
    {
        finish(c, p, "Succeeded", 0).await;
    }
    let j = wait_for("completedIndexes 0,2", || async {
        let j = get_job(c, "idx").await;
        (j["status"]["completedIndexes"] == "0,2").then_some(j)
    })
    .await;
    assert!(condition(&j, "Complete").is_none());
    finish(c, &retry, "Succeeded", 0).await;
    let j = wait_condition(c, "idx", "Complete").await;
    assert_eq!(j["status"]["completedIndexes"], "0-2");
    assert_eq!(j["status"]["failed"], 1);
}

#[tokio::test]
async fn suspend_deletes_active_pods_and_resume_recreates_them() {
    let e = env().await;
    let c = &e.c;
    c.create(
        JOBS,
        &job(
            "sus",
            json!({"suspend": true, "parallelism": 2, "completions": 2}),
        ),
    )
    .await
    .unwrap();
    let j = wait_condition(c, "sus", "Suspended").await;
    assert_eq!(
        condition(&j, "Suspended").unwrap()["reason"],
        "JobSuspended"
    );
    assert!(j["status"]["startTime"].is_null());
    assert!(active_pods(c, "sus").await.is_empty());
    c.merge_patch(&format!("{JOBS}/sus"), &json!({"spec": {"suspend": false}}))
        .await
        .unwrap();
    wait_active(c, "sus", 2).await;
    // The pods and the condition are written in separate steps: wait for the condition too.
    let suspended = |j: &Value| {
        j["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Suspended").cloned())
    };
    let cond = wait_for("sus resumed", || async {
        let j = get_job(c, "sus").await;
        suspended(&j).filter(|c| c["status"] == "False")
    })
    .await;
    assert_eq!(
        (cond["status"].as_str(), cond["reason"].as_str()),
        (Some("False"), Some("JobResumed"))
    );
    c.merge_patch(&format!("{JOBS}/sus"), &json!({"spec": {"suspend": true}}))
        .await
        .unwrap();
    wait_active(c, "sus", 0).await;
    wait_condition(c, "sus", "Suspended").await;
    assert_eq!(get_job(c, "sus").await["status"]["failed"], 0);
}

#[tokio::test]
async fn pod_failure_policy_fails_on_exit_code_and_ignores_disruptions() {
    let e = env().await;
    let c = &e.c;
    let policy = json!({"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]});
    c.create(
        JOBS,
        &job(
            "pfp",
            json!({"podFailurePolicy": policy, "backoffLimit": 6}),
        ),
    )
    .await
    .unwrap();
    let p = wait_active(c, "pfp", 1).await;
    // A disrupted pod: ignored (not counted), replaced.
    let name = p[0]["metadata"]["name"].as_str().unwrap();
    c.merge_patch(
        &format!("/api/v1/namespaces/default/pods/{name}/status"),
        &json!({"status": {"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]}}),
    )
    .await
    .unwrap();
    let p2 = wait_for("replacement", || async {
        active_pods(c, "pfp")
            .await
            .into_iter()
            .find(|x| x["metadata"]["name"] != name)
    })
    .await;
    assert_eq!(get_job(c, "pfp").await["status"]["failed"], 0);
    finish(c, &p2, "Failed", 42).await;
    let j = wait_condition(c, "pfp", "Failed").await;
    let cond = condition(&j, "Failed").unwrap();
    assert_eq!(cond["reason"], "PodFailurePolicy");
    assert_eq!(
        cond["message"].as_str().unwrap(),
        format!("Container main for pod default/{} failed with exit code 42 matching FailJob rule at index 1", p2["metadata"]["name"].as_str().unwrap())
    );
}

#[tokio::test]
async fn finished_job_is_deleted_after_its_ttl() {
    let e = env().await;
    let c = &e.c;
    c.create(JOBS, &job("ttl", json!({"ttlSecondsAfterFinished": 1})))
        .await
        .unwrap();
    let p = wait_active(c, "ttl", 1).await;
    finish(c, &p[0], "Succeeded", 0).await;
    wait_condition(c, "ttl", "Complete").await;
    wait_for("ttl deletion", || async {
        c.get_opt(&format!("{JOBS}/ttl"))
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn work_queue_job_completes_when_one_pod_succeeded_and_none_runs() {
    let e = env().await;
    let c = &e.c;
    c.create(JOBS, &job("queue", json!({"parallelism": 2})))
        .await
        .unwrap();
    let pods = wait_active(c, "queue", 2).await;
    finish(c, &pods[0], "Succeeded", 0).await;
    // No new pod once one succeeded; the other still runs.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(active_pods(c, "queue").await.len(), 1);
    assert!(condition(&get_job(c, "queue").await, "Complete").is_none());
    finish(c, &pods[1], "Succeeded", 0).await;
    let j = wait_condition(c, "queue", "Complete").await;
    assert_eq!(j["status"]["succeeded"], 2);
}

#[tokio::test]
async fn replacements_wait_out_the_failure_backoff() {
    let mut e = common::api().await;
    let opts = ControllerOptions {
        resync: Duration::from_millis(200),
        ..Default::default()
    };
    e.tasks.push(daas_controllers::spawn_controller(
        e.c.clone(),
        JobController::with_pod_backoff(
            e.c.clone(),
            Duration::from_millis(1500),
            Duration::from_secs(10),
        ),
        &opts,
    ));
    let c = &e.c;
    c.create(JOBS, &job("slowretry", json!({"backoffLimit": 3})))
        .await
        .unwrap();
    let p = wait_active(c, "slowretry", 1).await;
    let failed_at = Instant::now();
    finish(c, &p[0], "Failed", 1).await;
    wait_for("failure counted", || async {
        (get_job(c, "slowretry").await["status"]["failed"] == 1).then_some(())
    })
    .await;
    // No replacement during the back-off...
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(active_pods(c, "slowretry").await.is_empty());
    // ...then one.
    wait_active(c, "slowretry", 1).await;
    assert!(
        failed_at.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        failed_at.elapsed()
    );
}

#[tokio::test]
async fn deleting_a_job_releases_and_removes_its_pods() {
    let mut e = env().await;
    let opts = ControllerOptions {
        resync: Duration::from_millis(300),
        ..Default::default()
    };
    e.tasks.push(daas_controllers::spawn_controller(
        e.c.clone(),
        daas_controllers::gc::GarbageCollector::new(e.c.clone()),
        &opts,
    ));
    let c = &e.c;
    c.create(
        JOBS,
        &job("gone", json!({"parallelism": 2, "completions": 2})),
    )
    .await
    .unwrap();
    wait_active(c, "gone", 2).await;
    c.call_delete_with(
        &format!("{JOBS}/gone"),
        &json!({"propagationPolicy": "Background"}),
    )
    .await
    .unwrap();
    // The collector deletes the pods; the tracking finalizer does not keep them.
    wait_for("pods removed", || async {
        c.list("/api/v1/namespaces/default/pods")
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_running_job_settles_without_rewrites() {
    let e = env().await;
    let c = &e.c;
    c.create(
        JOBS,
        &job(
            "steady",
            json!({"completionMode": "Indexed", "completions": 2, "parallelism": 2}),
        ),
    )
    .await
    .unwrap();
    wait_active(c, "steady", 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let rv = get_job(c, "steady").await["metadata"]["resourceVersion"].clone();
    // Several resyncs later the status is unchanged: no write loop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let j = get_job(c, "steady").await;
    assert_eq!(j["metadata"]["resourceVersion"], rv, "{}", j["status"]);
    assert_eq!(j["status"]["active"], 2);
}
