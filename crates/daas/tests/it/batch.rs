//! End-to-end: Jobs and CronJobs in a real `daas up` process through the real kubectl; the test
//! plays the kubelet by marking the Job's pod Succeeded through the status subresource.

use crate::common;

use std::time::{Duration, Instant};

use common::Cluster;

const SUCCEEDED: &str = r#"{"status":{"phase":"Succeeded","containerStatuses":[{"name":"pi","image":"busybox:1.36","imageID":"","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":0,"reason":"Completed"}}}]}}"#;

fn wait_pod(c: &Cluster, selector: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.ok(&["get", "pods", "-l", selector, "-o", "name"]);
        if let Some(p) = out.lines().next() {
            return p.to_string();
        }
        assert!(Instant::now() < deadline, "no pod for {selector}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kubectl_runs_a_job_to_completion_and_manages_cronjobs() {
    let c = Cluster::start();
    let out = c.ok(&[
        "create",
        "job",
        "pi",
        "--image=busybox:1.36",
        "--",
        "echo",
        "3.14",
    ]);
    assert!(out.contains("job.batch/pi created"), "{out}");
    let pod = wait_pod(&c, "batch.kubernetes.io/job-name=pi");
    let owner = c.ok(&[
        "get",
        &pod,
        "-o",
        "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.finalizers}",
    ]);
    assert_eq!(owner, "Job/pi [\"batch.kubernetes.io/job-tracking\"]");
    c.ok(&[
        "patch",
        &pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        SUCCEEDED,
    ]);
    let out = c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=30s",
    ]);
    assert!(out.contains("job.batch/pi condition met"), "{out}");
    let out = c.ok(&["get", "jobs"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], &["pi", "Complete", "1/1"], "{out}");

    let out = c.ok(&[
        "create",
        "cronjob",
        "hello",
        "--image=busybox:1.36",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]);
    assert!(out.contains("cronjob.batch/hello created"), "{out}");
    let out = c.ok(&["get", "cj"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NAME")
            && header.contains("SCHEDULE")
            && header.contains("SUSPEND")
            && header.contains("ACTIVE")
            && header.contains("LAST SCHEDULE")
            && header.trim_end().ends_with("AGE"),
        "{out}"
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("hello"), "{out}");
    assert!(row.contains("*/5 * * * *"), "{out}");
    assert!(row.contains("False"), "{out}");
    assert!(row.contains("<none>"), "{out}");

    // A Job from the CronJob's template, by hand.
    let out = c.ok(&["create", "job", "manual", "--from=cronjob/hello"]);
    assert!(out.contains("job.batch/manual created"), "{out}");
    let got = c.ok(&[
        "get",
        "job",
        "manual",
        "-o",
        r#"jsonpath={.metadata.annotations.cronjob\.kubernetes\.io/instantiate} {.metadata.ownerReferences[0].kind} {.spec.template.spec.containers[0].image}"#,
    ]);
    assert_eq!(got, "manual CronJob busybox:1.36");
    wait_pod(&c, "batch.kubernetes.io/job-name=manual");

    // Bad input: the upstream Status messages through kubectl.
    let err = c.fails(&[
        "create",
        "cronjob",
        "bad",
        "--image=busybox",
        "--schedule=every now and then",
    ]);
    assert!(
        err.contains("spec.schedule: Invalid value: \"every now and then\""),
        "{err}"
    );
    let err = c.fails(&["create", "job", "pi", "--image=busybox"]);
    assert!(err.contains("jobs.batch \"pi\" already exists"), "{err}");
    // Discovery: the batch kinds with their short name; `get all` lists them.
    let ar = c.ok(&["api-resources", "--api-group=batch"]);
    assert!(
        ar.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w == ["cronjobs", "cj", "batch/v1", "true", "CronJob"]
        }),
        "{ar}"
    );
    assert!(
        ar.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["jobs", "batch/v1", "true", "Job"]
        ),
        "{ar}"
    );
    let all = c.ok(&["get", "all"]);
    assert!(
        all.contains("job.batch/pi") && all.contains("cronjob.batch/hello"),
        "{all}"
    );
    // A caller with a token nobody issued gets nothing.
    let out = c.kubectl(&["get", "jobs", "-A", "--token=nope"]);
    let err = common::stderr(&out);
    assert!(
        !out.status.success() && err.contains("Unauthorized"),
        "{err}"
    );
}
