//! Horizontal pod autoscaling end to end: a real agent with containerd runs a Deployment whose
//! pods busy-loop for a while; `kubectl autoscale` makes an HPA, which (from metrics.k8s.io, i.e.
//! the agent's cgroup stats through the master's node proxy) scales the Deployment up; when the
//! loops end it scales back down (a short scale-down stabilization window set in the HPA's
//! behavior). `kubectl get hpa` prints upstream's columns. Needs root and containerd.

use crate::common;

use std::time::{Duration, Instant};

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stderr, stdout, Cluster};

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: spin
        image: localhost/k3s-daas/busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'timeout 20 sh -c "while :; do :; done"; exec sleep 3600']
        resources: {requests: {cpu: 50m, memory: 16Mi}, limits: {cpu: 150m, memory: 64Mi}}
"#;

fn replicas(c: &Cluster) -> String {
    c.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ])
}

#[test]
fn kubectl_autoscale_scales_a_busy_deployment_up_and_down() {
    let started = Instant::now();
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
        "--horizontal-pod-autoscaler-sync-period-seconds",
        "2",
        "--metric-resolution-seconds",
        "2",
    ]);
    let a = start_agent(&c, "worker-h", 14);
    wait_node_ready(&c, &a, "worker-h");
    c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);

    let out = c.ok(&[
        "autoscale",
        "deployment",
        "web",
        "--min=1",
        "--max=3",
        "--cpu-percent=10",
    ]);
    assert!(
        out.contains("horizontalpodautoscaler.autoscaling/web"),
        "{out}"
    );
    // A short scale-down stabilization, so the test sees the scale down within seconds.
    c.ok(&[
        "patch",
        "hpa",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":3}}}}"#,
    ]);
    let hpa: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "hpa.v2.autoscaling", "web", "-o", "json"])).unwrap();
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        10
    );
    assert_eq!(
        hpa["spec"]["behavior"]["scaleDown"]["policies"][0]["type"],
        "Percent"
    );

    // Under load: 3 replicas (the maximum).
    wait_for(
        &c,
        "scale up to 3",
        Duration::from_secs(60),
        || replicas(&c) == "3",
        &a,
    );
    let table = c.ok(&["get", "hpa"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ],
        "{table}"
    );
    let row = table.lines().nth(1).unwrap_or("");
    assert!(
        row.starts_with("web") && row.contains("Deployment/web") && row.contains("/10%"),
        "{table}"
    );
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulRescale",
    ]);
    assert!(
        events.contains(
            "New size: 3; reason: cpu resource utilization (percentage of request) above target"
        ),
        "{events}"
    );

    // The loops end: back to 1.
    let deadline = Instant::now() + Duration::from_secs(75);
    loop {
        if replicas(&c) == "1" {
            break;
        }
        let o = c.kubectl(&["get", "hpa", "web"]);
        assert!(
            Instant::now() < deadline,
            "no scale down: {} {}\n{}",
            stdout(&o),
            stderr(&o),
            c.ok(&["get", "hpa", "web", "-o", "yaml"])
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let events = c.ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=SuccessfulRescale",
    ]);
    assert!(
        events.contains("New size: 1; reason: All metrics below target"),
        "{events}"
    );
    // The autoscaling/v1 view of the same object.
    let v1: serde_json::Value = serde_json::from_str(&c.ok(&[
        "get",
        "--raw",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
    ]))
    .unwrap();
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 10, "{v1}");
    assert_eq!(v1["status"]["desiredReplicas"], 1, "{v1}");
    eprintln!("hpa e2e took {:?}", started.elapsed());
}
