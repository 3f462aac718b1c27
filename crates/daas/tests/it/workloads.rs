//! End-to-end: StatefulSets and DaemonSets in a real `daas up`, driven by the real kubectl
//! (apply from YAML, `get` columns, `rollout status|history|undo`); the test plays kubelet with
//! `kubectl patch --subresource=status`.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{stderr, stdout, Cluster};

const WORKLOADS: &str = r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 2
  serviceName: web
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {kubernetes.io/os: linux}
      containers:
      - name: agent
        image: agent:1
"#;

const POD_STATUS: &str = r#"{"status":{"phase":"Running","podIP":"10.42.0.7","conditions":[{"type":"PodScheduled","status":"True"},{"type":"Initialized","status":"True"},{"type":"ContainersReady","status":"True"},{"type":"Ready","status":"True"}]}}"#;

#[track_caller]
fn rollout_status(c: &Cluster, what: &str) -> String {
    let out = c.kubectl(&["rollout", "status", what, "--timeout=60s"]);
    assert!(
        out.status.success(),
        "rollout status {what} failed: {}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        c.log()
    );
    stdout(&out)
}

fn image(c: &Cluster, what: &str) -> String {
    c.ok(&[
        "get",
        what,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

#[test]
fn statefulset_and_daemonset_with_kubectl_rollout() {
    let c = Cluster::start();
    c.add_ready_staked_nodes();
    for n in ["node-1", "node-2"] {
        c.ok(&["label", "node", n, "kubernetes.io/os=linux"]);
    }
    let out = c.ok_stdin(&["apply", "-f", "-"], WORKLOADS);
    assert!(out.contains("statefulset.apps/web created"), "{out}");
    assert!(out.contains("daemonset.apps/agent created"), "{out}");
    let stop = Arc::new(AtomicBool::new(false));
    let k = common::play_kubelet(&c, stop.clone(), POD_STATUS);

    let out = rollout_status(&c, "sts/web");
    assert!(
        out.contains("partitioned roll out complete: 2 new pods have been updated"),
        "{out}"
    );
    let out = rollout_status(&c, "ds/agent");
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );

    let sts = c.ok(&["get", "sts"]);
    let mut lines = sts.lines();
    let head: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(head, ["NAME", "READY", "AGE"], "{sts}");
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(row[..2], ["web", "2/2"], "{sts}");
    let ds = c.ok(&["get", "ds"]);
    let mut lines = ds.lines();
    let head = lines.next().unwrap_or("");
    assert_eq!(
        head.split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE"
        ],
        "{ds}"
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        row[..7],
        ["agent", "2", "2", "2", "2", "2", "kubernetes.io/os=linux"],
        "{ds}"
    );
    let pods = c.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(pods.trim(), "pod/web-0\npod/web-1", "{pods}");

    // A new template, its history, and undo back to the first.
    for (what, container, new) in [
        ("sts/web", "nginx", "nginx:1.28"),
        ("ds/agent", "agent", "agent:2"),
    ] {
        let old = image(&c, what);
        c.ok(&["set", "image", what, &format!("{container}={new}")]);
        rollout_status(&c, what);
        let hist = c.ok(&["rollout", "history", what]);
        let revs: Vec<&str> = hist
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|f| f.chars().all(|ch| ch.is_ascii_digit()))
            .collect();
        assert_eq!(revs, ["1", "2"], "{hist}");
        let one = c.ok(&["rollout", "history", what, "--revision=1"]);
        assert!(one.contains(&old), "{one}");
        let out = c.ok(&["rollout", "undo", what]);
        assert!(out.contains("rolled back"), "{out}");
        assert_eq!(image(&c, what), old);
        rollout_status(&c, what);
        let hist = c.ok(&["rollout", "history", what]);
        let revs: Vec<&str> = hist
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|f| f.chars().all(|ch| ch.is_ascii_digit()))
            .collect();
        assert_eq!(revs, ["2", "3"], "{hist}");
    }
    let all = c.ok(&[
        "get",
        "pods",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert!(
        all.split_whitespace()
            .all(|i| i == "nginx:1.27" || i == "agent:1"),
        "{all}"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = k.join();
}
