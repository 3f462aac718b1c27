//! batch/v1 through the real router: defaults, generated selectors, status handling, validation
//! Status answers and the Table columns kubectl prints.

use crate::common;

use common::{call, call_accept, JSON, MERGE};
use serde_json::{json, Value};

const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const CJS: &str = "/apis/batch/v1/namespaces/default/cronjobs";

fn job(name: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox:1.36"}]}}}})
}

#[tokio::test]
async fn job_create_defaults_selector_and_status() {
    let (_d, app) = common::app().await;
    let mut j = job("pi");
    j["status"] = json!({"succeeded": 5});
    let (code, out) = call(&app, "POST", JOBS, JSON, j).await;
    assert_eq!(code, 201, "{out}");
    let uid = out["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        out["status"],
        json!({}),
        "a client's status is dropped on create"
    );
    assert_eq!(
        out["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    );
    let l = &out["spec"]["template"]["metadata"]["labels"];
    assert_eq!(
        (l["job-name"].as_str(), l["controller-uid"].as_str()),
        (Some("pi"), Some(uid))
    );
    // The Job takes its template's labels.
    assert_eq!(
        out["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "pi"
    );
    for (k, v) in [
        ("completions", json!(1)),
        ("parallelism", json!(1)),
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("suspend", json!(false)),
    ] {
        assert_eq!(out["spec"][k], v, "{k}");
    }
    // The main resource does not write status; the subresource does.
    let (code, out) = call(
        &app,
        "PATCH",
        &format!("{JOBS}/pi"),
        MERGE,
        json!({"status": {"active": 3}}),
    )
    .await;
    assert_eq!(code, 200, "{out}");
    assert!(out["status"]["active"].is_null(), "{out}");
    let (code, out) = call(
        &app,
        "PATCH",
        &format!("{JOBS}/pi/status"),
        MERGE,
        json!({"status": {"active": 3}}),
    )
    .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"]["active"], 3);
    // Selector and completions are immutable.
    let (code, out) = call(
        &app,
        "PATCH",
        &format!("{JOBS}/pi"),
        MERGE,
        json!({"spec": {"completions": 4}}),
    )
    .await;
    assert_eq!(code, 422, "{out}");
    assert_eq!(
        out["message"],
        "Job.batch \"pi\" is invalid: spec.completions: Invalid value: 4: field is immutable"
    );
    let (code, out) = call(
        &app,
        "PATCH",
        &format!("{JOBS}/pi"),
        MERGE,
        json!({"spec": {"selector": {"matchLabels": {"a": "b"}}}}),
    )
    .await;
    assert_eq!(code, 422, "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .contains("spec.selector: Invalid value: "),
        "{out}"
    );
}

#[tokio::test]
async fn job_selectors_manual_and_generated() {
    let (_d, app) = common::app().await;
    let mut j = job("manual");
    j["spec"]["manualSelector"] = json!(true);
    j["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
    j["spec"]["template"]["metadata"] = json!({"labels": {"app": "y"}});
    let (code, out) = call(&app, "POST", JOBS, JSON, j.clone()).await;
    assert_eq!(code, 422, "{out}");
    assert_eq!(out["reason"], "Invalid");
    assert_eq!(
        out["details"]["causes"][0]["field"],
        "spec.template.metadata.labels"
    );
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .ends_with("`selector` does not match template `labels`"),
        "{out}"
    );
    j["spec"]["template"]["metadata"] = json!({"labels": {"app": "x"}});
    let (code, out) = call(&app, "POST", JOBS, JSON, j).await;
    assert_eq!(code, 201, "{out}");
    // A manual selector gets no generated labels.
    assert!(
        out["spec"]["template"]["metadata"]["labels"]["controller-uid"].is_null(),
        "{out}"
    );
    let mut j = job("forged");
    j["spec"]["selector"] =
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "someone-else"}});
    let (code, out) = call(&app, "POST", JOBS, JSON, j).await;
    assert_eq!(code, 422, "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap()
            .ends_with("`selector` not auto-generated"),
        "{out}"
    );
    let mut j = job("never");
    j["spec"]["template"]["spec"]["restartPolicy"] = Value::Null;
    let (code, out) = call(&app, "POST", JOBS, JSON, j).await;
    assert_eq!(code, 422, "{out}");
    assert_eq!(out["message"], "Job.batch \"never\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"");
}

#[tokio::test]
async fn cronjob_defaults_validation_and_table() {
    let (_d, app) = common::app().await;
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello"},
        "spec": {"schedule": "@hourly", "timeZone": "Europe/Berlin", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}}});
    let (code, out) = call(&app, "POST", CJS, JSON, cj.clone()).await;
    assert_eq!(code, 201, "{out}");
    assert_eq!(out["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(out["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(out["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(out["spec"]["suspend"], false);
    let mut bad = cj.clone();
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["timeZone"] = json!("Atlantis/Capital");
    bad["spec"]["concurrencyPolicy"] = json!("Never");
    let (code, out) = call(&app, "POST", CJS, JSON, bad).await;
    assert_eq!(code, 422, "{out}");
    assert_eq!(out["message"], "CronJob.batch \"bad\" is invalid: [spec.timeZone: Invalid value: \"Atlantis/Capital\": unknown time zone Atlantis/Capital, spec.concurrencyPolicy: Unsupported value: \"Never\": supported values: \"Allow\", \"Forbid\", \"Replace\"]");
    // A schedule edit is validated too.
    let (code, out) = call(
        &app,
        "PATCH",
        &format!("{CJS}/hello"),
        MERGE,
        json!({"spec": {"schedule": "61 * * * *"}}),
    )
    .await;
    assert_eq!(code, 422, "{out}");
    assert!(
        out["message"].as_str().unwrap().starts_with(
            "CronJob.batch \"hello\" is invalid: spec.schedule: Invalid value: \"61 * * * *\""
        ),
        "{out}"
    );
    let (code, t) = call_accept(
        &app,
        "GET",
        CJS,
        JSON,
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        None,
    )
    .await;
    assert_eq!(code, 200, "{t}");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec![
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age"
        ]
    );
    let cells = &t["rows"][0]["cells"];
    assert_eq!(cells[1], "@hourly");
    assert_eq!(cells[2], "Europe/Berlin");
    assert_eq!(cells[5], "<none>");
}
