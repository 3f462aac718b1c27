//! End-to-end (issue 12, "Containers"): `daas up` plus one real `daas agent` with containerd; real
//! kubectl. Init containers run in order and share an emptyDir with the app; a failing init
//! container fails a Never pod (`Init:Error`); a readiness probe holds Ready=false and a
//! Deployment rollout waits for it; an httpGet liveness probe against busybox httpd passes while a
//! failing exec liveness probe restarts its container; postStart and preStop hooks run inside the
//! container. Needs root (see agent.rs).

use crate::common;

use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stderr, stdout, Cluster, Streaming};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

fn jsonpath(c: &Cluster, what: &str, path: &str) -> String {
    stdout(&c.kubectl(&["get", what, "-o", &format!("jsonpath={path}")]))
}

#[test]
fn init_containers_probes_and_hooks() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-c", 12);
    wait_node_ready(&c, &a, "worker-c");

    // Two init containers append to an emptyDir in order; the first takes a while, so kubectl
    // shows Init:0/2 meanwhile. postStart writes a file the app waits for; preStop writes to the
    // app's stdout.
    let initpod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: initpod}}
spec:
  terminationGracePeriodSeconds: 5
  volumes: [{{name: work, emptyDir: {{}}}}]
  initContainers:
  - {{name: first, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sh, -c, 'sleep 4; echo one >> /work/log'], volumeMounts: [{{name: work, mountPath: /work}}]}}
  - {{name: second, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sh, -c, 'test -f /work/log && echo two >> /work/log'], volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - name: app
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo "log=$(cat /work/log | tr "\n" " ")"; while [ ! -f /tmp/poststart ]; do sleep 0.2; done; echo "poststart=$(cat /tmp/poststart)"; sleep 3600']
    volumeMounts: [{{name: work, mountPath: /work}}]
    lifecycle:
      postStart: {{exec: {{command: [sh, -c, 'echo hooked > /tmp/poststart']}}}}
      preStop: {{exec: {{command: [sh, -c, 'echo prestop-ran > /proc/1/fd/1; sleep 1']}}}}
"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &initpod);
    wait_for(
        &c,
        "Init:0/2",
        Duration::from_secs(60),
        || c.ok(&["get", "pod", "initpod"]).contains("Init:0/2"),
        &a,
    );
    assert_eq!(
        jsonpath(
            &c,
            "pod/initpod",
            "{.status.phase} {.status.conditions[?(@.type==\"Initialized\")].status}"
        ),
        "Pending False"
    );
    wait_for(
        &c,
        "initpod Running",
        Duration::from_secs(60),
        || jsonpath(&c, "pod/initpod", "{.status.phase}") == "Running",
        &a,
    );
    wait_for(
        &c,
        "app sees both init containers' output and the postStart file",
        Duration::from_secs(30),
        || {
            let l = stdout(&c.kubectl(&["logs", "initpod", "-c", "app"]));
            l.contains("log=one two ") && l.contains("poststart=hooked")
        },
        &a,
    );
    let inits = jsonpath(
        &c,
        "pod/initpod",
        "{range .status.initContainerStatuses[*]}{.name}={.state.terminated.reason}/{.ready} {end}",
    );
    assert_eq!(
        inits, "first=Completed/true second=Completed/true ",
        "{inits}"
    );
    assert_eq!(
        jsonpath(
            &c,
            "pod/initpod",
            "{.status.conditions[?(@.type==\"Initialized\")].status}"
        ),
        "True"
    );

    // A failing init container under restartPolicy Never fails the pod; the app never starts.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: initfail}}\nspec:\n  restartPolicy: Never\n  initContainers:\n  - {{name: bad, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sh, -c, 'exit 3']}}\n  containers:\n  - {{name: app, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, '3600']}}\n"),
    );
    wait_for(
        &c,
        "initfail Failed with Init:Error",
        Duration::from_secs(60),
        || {
            jsonpath(&c, "pod/initfail", "{.status.phase}") == "Failed"
                && c.ok(&["get", "pod", "initfail"]).contains("Init:Error")
        },
        &a,
    );
    assert_eq!(
        jsonpath(
            &c,
            "pod/initfail",
            "{.status.initContainerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.waiting.reason}"
        ),
        "3 PodInitializing"
    );

    // A Deployment whose pod turns ready only once /tmp/ready exists (the container creates it
    // after 6s); busybox httpd answers the httpGet liveness probe meanwhile.
    let deploy = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'mkdir -p /www && echo ok > /www/index.html && httpd -p 8080 -h /www && sleep 6 && touch /tmp/ready && sleep 3600']
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{exec: {{command: [test, -f, /tmp/ready]}}, periodSeconds: 1}}
        livenessProbe: {{httpGet: {{port: http, path: /index.html, httpHeaders: [{{name: X-Probe, value: daas}}]}}, initialDelaySeconds: 2, periodSeconds: 1, failureThreshold: 2}}
"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &deploy);
    wait_for(
        &c,
        "web pod Running but not Ready",
        Duration::from_secs(60),
        || {
            jsonpath(
                &c,
                "pods",
                "{range .items[?(@.metadata.labels.app==\"web\")]}{.status.phase} {.status.conditions[?(@.type==\"Ready\")].status} {.status.containerStatuses[0].ready}{end}",
            ) == "Running False false"
        },
        &a,
    );
    let available = jsonpath(&c, "deployment/web", "{.status.availableReplicas}");
    assert!(
        available.is_empty() || available == "0",
        "available before ready: {available}"
    );
    let o = c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(
        o.status.success(),
        "{}{}\nagent:\n{}",
        stdout(&o),
        stderr(&o),
        a.log()
    );
    let web = jsonpath(
        &c,
        "pods",
        "{range .items[?(@.metadata.labels.app==\"web\")]}{.status.conditions[?(@.type==\"Ready\")].status} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt} {.status.conditions[?(@.type==\"Ready\")].lastTransitionTime}{end}",
    );
    let parts: Vec<&str> = web.split(' ').collect();
    assert_eq!(&parts[..2], &["True", "0"], "{web}");
    let t = |s: &str| {
        s.parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
            .as_second()
    };
    let waited = t(parts[3]) - t(parts[2]);
    assert!(waited >= 5, "Ready only {waited}s after start: {web}");
    assert_eq!(
        jsonpath(&c, "deployment/web", "{.status.availableReplicas}"),
        "1"
    );

    // A liveness probe that always fails: the container is killed and restarted.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: sick}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: IfNotPresent\n    command: [sleep, '3600']\n    livenessProbe: {{exec: {{command: [test, -f, /tmp/healthy]}}, periodSeconds: 1, failureThreshold: 1, terminationGracePeriodSeconds: 1}}\n"),
    );
    wait_for(
        &c,
        "sick restarted",
        Duration::from_secs(60),
        || {
            jsonpath(
                &c,
                "pod/sick",
                "{.status.containerStatuses[0].restartCount}",
            )
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
        },
        &a,
    );
    let ev = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=sick",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(ev.contains("Unhealthy: Liveness probe failed"), "{ev}");
    assert!(
        ev.contains("Killing: Container c failed liveness probe, will be restarted"),
        "{ev}"
    );

    // preStop runs on delete, inside the container, before it is stopped.
    let f = Streaming::start(&c, &["logs", "-f", "initpod", "-c", "app"]);
    let o = c.kubectl(&["delete", "pod", "initpod", "--wait=false"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = f.wait_for(Duration::from_secs(20), |l| l.contains("prestop-ran"));
    assert!(lines.iter().any(|l| l.contains("prestop-ran")), "{lines:?}");
    drop(f);
    wait_for(
        &c,
        "initpod gone",
        Duration::from_secs(30),
        || stderr(&c.kubectl(&["get", "pod", "initpod"])).contains("NotFound"),
        &a,
    );
}
