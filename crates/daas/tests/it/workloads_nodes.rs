//! Workload controllers against real nodes: `daas up` plus two real `daas agent`s (each with its
//! own containerd), driven by real kubectl. A Job's pods run to completion in containers and the
//! Job completes (and a failing one hits its backoff limit); a DaemonSet runs one pod on each of
//! the two nodes; a StatefulSet's pod keeps its volume (from `volumeClaimTemplates`) across
//! deletion; a crashing container waits in CrashLoopBackOff and an image that cannot be pulled
//! in ImagePullBackOff, with the kubelet's events. Needs root and containerd/runc/containernetworking-plugins/busybox-static
//! (scripts/test.sh installs them).

use crate::common;

use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

#[test]
fn jobs_daemonsets_and_statefulsets_on_real_nodes() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a1 = start_agent(&c, "worker-a", 20);
    let a2 = start_agent(&c, "worker-b", 21);
    wait_node_ready(&c, &a1, "worker-a");
    wait_node_ready(&c, &a2, "worker-b");

    // A Job whose two completions really run (each pod writes its completion index to its log).
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: batch/v1
kind: Job
metadata: {{name: count}}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "echo index=$JOB_COMPLETION_INDEX"]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: fails}}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "exit 3"]
"#
        ),
    );
    let waited = c.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/count",
        "--timeout=120s",
    ]);
    assert!(
        waited.status.success(),
        "{}\nagent a log tail: {}\nserver log tail: {}",
        common::stderr(&waited),
        tail(&a1.log()),
        tail(&c.log())
    );
    let jobs = c.ok(&["get", "job", "count"]);
    assert!(jobs.contains("2/2"), "{jobs}");
    let pods = c.ok(&[
        "get",
        "pods",
        "-l",
        "job-name=count",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
    ]);
    let mut indexes: Vec<String> = pods
        .lines()
        .map(|p| stdout(&c.kubectl(&["logs", p])).trim().to_string())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["index=0", "index=1"], "pods: {pods}");

    let failed = c.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/fails",
        "--timeout=120s",
    ]);
    assert!(failed.status.success(), "{}", common::stderr(&failed));
    let reason = c.ok(&[
        "get",
        "job",
        "fails",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Failed\")].reason} {.status.failed}",
    ]);
    assert_eq!(reason, "BackoffLimitExceeded 2");
    let exit = c.ok(&[
        "get",
        "pods",
        "-l",
        "job-name=fails",
        "-o",
        "jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}",
    ]);
    assert_eq!(exit, "3");

    // Pods the node cannot run as asked: the kubelet's Waiting reasons and events.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  nodeName: worker-a
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "exit 1"]
---
apiVersion: v1
kind: Pod
metadata: {{name: nopull}}
spec:
  nodeName: worker-b
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: 127.0.0.1:1/k3s-daas/absent:1
"#
        ),
    );
    let waiting = |pod: &str| {
        c.ok(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
        ])
    };
    wait_for(
        &c,
        "crasher in CrashLoopBackOff",
        Duration::from_secs(90),
        || waiting("crasher") == "CrashLoopBackOff",
        &a1,
    );
    let last = c.ok(&[
        "get",
        "pod",
        "crasher",
        "-o",
        "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
    ]);
    assert_eq!(last, "1");
    assert!(c
        .ok(&["get", "pod", "crasher"])
        .contains("CrashLoopBackOff"));
    wait_for(
        &c,
        "nopull in ImagePullBackOff",
        Duration::from_secs(90),
        || waiting("nopull") == "ImagePullBackOff",
        &a2,
    );
    let events = |pod: &str| {
        c.ok(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}"),
            "-o",
            "jsonpath={range .items[*]}{.type} {.reason} {.source.component}: {.message}{\"\\n\"}{end}",
        ])
    };
    let ev = events("crasher");
    assert!(
        ev.contains("Warning BackOff kubelet: Back-off restarting failed container main in pod crasher_default("),
        "{ev}"
    );
    let ev = events("nopull");
    assert!(
        ev.contains(
            "Warning Failed kubelet: Failed to pull image \"127.0.0.1:1/k3s-daas/absent:1\""
        ),
        "{ev}"
    );
    assert!(
        ev.contains("Warning Failed kubelet: Error: ErrImagePull"),
        "{ev}"
    );
    assert!(
        ev.contains(
            "Normal BackOff kubelet: Back-off pulling image \"127.0.0.1:1/k3s-daas/absent:1\""
        ),
        "{ev}"
    );
    c.ok(&["delete", "pod", "crasher", "nopull", "--wait=true"]);

    // A DaemonSet: one Running pod on each staked node.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: everywhere}}
spec:
  selector: {{matchLabels: {{app: everywhere}}}}
  template:
    metadata: {{labels: {{app: everywhere}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "echo on $NODE; sleep 3600"]
        env:
        - name: NODE
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
"#
        ),
    );
    wait_for(
        &c,
        "a DaemonSet pod Running on each node",
        Duration::from_secs(120),
        || {
            let out = c.ok(&[
                "get",
                "pods",
                "-l",
                "app=everywhere",
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName}={.status.phase}{\"\\n\"}{end}",
            ]);
            let mut l: Vec<&str> = out.lines().collect();
            l.sort();
            l == ["worker-a=Running", "worker-b=Running"]
        },
        &a1,
    );
    let ds = c.ok(&[
        "get",
        "ds",
        "everywhere",
        "-o",
        "jsonpath={.status.desiredNumberScheduled} {.status.numberReady}",
    ]);
    assert_eq!(ds, "2 2");
    c.ok(&["delete", "ds", "everywhere", "--wait=true"]);

    // A StatefulSet pod keeps its claim's data when it is deleted and recreated.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: 1
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: {IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "[ -f /data/first ] && echo kept $(cat /data/first) || (echo $POD > /data/first; echo fresh); sleep 3600"]
        env:
        - name: POD
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 16Mi}}}}
"#
        ),
    );
    let c = &c;
    let logs_of = |want: &str| {
        let want = want.to_string();
        move || stdout(&c.kubectl(&["logs", "db-0"])).contains(&want)
    };
    wait_for(
        c,
        "db-0 started fresh",
        Duration::from_secs(120),
        logs_of("fresh"),
        &a1,
    );
    let claim = c.ok(&["get", "pvc", "data-db-0", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(claim, "Bound");
    c.ok(&["delete", "pod", "db-0", "--wait=true"]);
    wait_for(
        c,
        "db-0 recreated with its data",
        Duration::from_secs(120),
        logs_of("kept db-0"),
        &a1,
    );
    c.ok(&["delete", "sts", "db", "--wait=true"]);
    c.ok(&["delete", "pvc", "data-db-0", "--wait=true"]);
    drop(a2);
    drop(a1);
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
