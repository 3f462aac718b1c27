//! Graceful node shutdown: an agent configured with a shutdown grace period, sent SIGTERM,
//! reports its node not ready, stops its pods with SIGTERM within the window (a container that
//! traps it exits cleanly and leaves its termination message) and reports them Failed with the
//! kubelet's reason, message and DisruptionTarget condition. Needs root and
//! containerd/runc/containernetworking-plugins/busybox-static (scripts/test.sh installs them).

use crate::common;

use std::time::Duration;

use common::agent::{start_agent_with, wait_for, wait_node_ready};
use common::Cluster;

#[test]
fn sigterm_drains_the_node_within_its_grace_period() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let mut a = start_agent_with(
        &c,
        "worker-down",
        22,
        serde_json::json!({
            "shutdown_grace_period_seconds": 15,
            "shutdown_grace_period_critical_pods_seconds": 5,
        }),
    );
    wait_node_ready(&c, &a, "worker-down");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "trap 'echo stopped gracefully > /dev/termination-log; exit 0' TERM; echo up; while true; do sleep 1; done"]
"#,
    );
    wait_for(
        &c,
        "graceful Running",
        Duration::from_secs(90),
        || {
            c.ok(&["get", "pod", "graceful", "-o", "jsonpath={.status.phase}"]) == "Running"
                && common::stdout(&c.kubectl(&["logs", "graceful"])).contains("up")
        },
        &a,
    );

    a.stop();
    let get = |path: &str| c.ok(&["get", "pod", "graceful", "-o", &format!("jsonpath={path}")]);
    assert_eq!(
        get("{.status.phase} {.status.reason}"),
        "Failed Terminated",
        "agent log: {}",
        a.log()
    );
    assert_eq!(
        get("{.status.message}"),
        "Pod was terminated in response to imminent node shutdown."
    );
    assert_eq!(
        get("{.status.conditions[?(@.type==\"DisruptionTarget\")].status} {.status.conditions[?(@.type==\"DisruptionTarget\")].reason}"),
        "True TerminationByKubelet"
    );
    // SIGTERM, not SIGKILL: the container ran its trap.
    assert_eq!(
        get("{.status.containerStatuses[0].state.terminated.exitCode}"),
        "0"
    );
    assert_eq!(
        get("{.status.containerStatuses[0].state.terminated.message}").trim(),
        "stopped gracefully"
    );
    let ready = c.ok(&[
        "get",
        "node",
        "worker-down",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}: {.status.conditions[?(@.type==\"Ready\")].message}",
    ]);
    assert_eq!(ready, "False: node is shutting down");
}
