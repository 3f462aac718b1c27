//! End-to-end: the controllers inside a real `daas up` process, driven by the real kubectl; the
//! test plays kubelet with `kubectl patch --subresource=status`.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{stderr, stdout, Cluster};

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        resources:
          requests: {cpu: 100m, memory: 64Mi}
"#;

const POD_STATUS: &str = r#"{"status":{"phase":"Running","podIP":"10.42.0.7","conditions":[{"type":"PodScheduled","status":"True"},{"type":"Initialized","status":"True"},{"type":"ContainersReady","status":"True"},{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"nginx","image":"nginx:1.27","imageID":"","ready":true,"started":true,"restartCount":0,"state":{"running":{"startedAt":"2025-01-01T00:00:00Z"}}}]}}"#;

#[test]
fn deployment_rolls_out_onto_staked_nodes() {
    let c = Cluster::start();
    c.add_ready_staked_nodes();
    let out = c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    assert!(out.contains("deployment.apps/web created"), "{out}");

    // Kubelet: mark pods bound to our nodes Running/Ready.
    let stop = Arc::new(AtomicBool::new(false));
    let kubelet = common::play_kubelet(&c, stop.clone(), POD_STATUS);

    let out = c.kubectl(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(
        out.status.success(),
        "rollout status failed: {}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        c.log()
    );
    assert!(
        stdout(&out).contains("successfully rolled out"),
        "{}",
        stdout(&out)
    );

    let wide = c.ok(&["get", "pods", "-o", "wide"]);
    let rows: Vec<&str> = wide.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{wide}");
    let mut used = std::collections::BTreeSet::new();
    for r in &rows {
        let f: Vec<&str> = r.split_whitespace().collect();
        assert!(f[0].starts_with("web-"), "{wide}");
        assert_eq!((f[1], f[2]), ("1/1", "Running"), "{wide}");
        assert!(f[6] == "node-1" || f[6] == "node-2", "{wide}");
        used.insert(f[6].to_string());
    }
    assert_eq!(used.len(), 2, "pods are spread over both nodes: {wide}");
    let deploy = c.ok(&["get", "deploy", "web"]);
    assert!(
        deploy
            .lines()
            .nth(1)
            .map(|l| l.split_whitespace().nth(1) == Some("3/3"))
            .unwrap_or(false),
        "{deploy}"
    );
    let events = c.ok(&["get", "events", "--field-selector", "reason=Scheduled"]);
    assert!(
        events.contains("Successfully assigned default/web-"),
        "{events}"
    );

    // Deleting the Deployment cascades; bound pods terminate gracefully (the kubelet finishes them).
    c.ok(&["delete", "deploy", "web"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = c.ok(&["get", "pods,rs", "-o", "name"]);
        if pods.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pods/replicasets left after deleting the deployment: {pods}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = kubelet.join();
}
