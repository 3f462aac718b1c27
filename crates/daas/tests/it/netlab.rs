//! The network lab itself (see `common::netlab`): a master in the LAN namespace and two agents in
//! their own node namespaces join, run a pod each, and the master reaches each kubelet at its node
//! address (`kubectl exec` and logs); a pod reaches the LAN through its node. Nothing of it is
//! visible in the host's network namespace. Needs root and containerd/runc/CNI plugins.

use crate::common;

use std::time::Duration;

use common::agent::{wait_for, wait_node_ready};
use common::netlab::{start_agent_in, Lab, LAN_GATEWAY};
use common::{stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

fn pod_on(name: &str, node: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo up on $(hostname); sleep 3600"]
"#
    )
}

#[test]
fn agents_in_their_own_namespaces_join_a_master_on_the_lan() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    assert!(c.server_url().contains(&LAN_GATEWAY.to_string()));
    let a1 = start_agent_in(&c, &mut lab, "lab-a", 1, serde_json::json!({}));
    let a2 = start_agent_in(&c, &mut lab, "lab-b", 2, serde_json::json!({}));
    wait_node_ready(&c, &a1, "lab-a");
    wait_node_ready(&c, &a2, "lab-b");
    let ip = stdout(&c.kubectl(&[
        "get",
        "node",
        "lab-b",
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
    ]));
    assert_eq!(ip, Lab::node_ip(2).to_string());

    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!("{}---\n{}", pod_on("pa", "lab-a"), pod_on("pb", "lab-b")),
    );
    for (pod, a) in [("pa", &a1), ("pb", &a2)] {
        wait_for(
            &c,
            &format!("{pod} running"),
            Duration::from_secs(60),
            || {
                stdout(&c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]))
                    == "Running"
            },
            a,
        );
    }
    // The master reaches each kubelet on the LAN.
    let out = c.ok(&["exec", "pb", "--", "cat", "/etc/hostname"]);
    assert_eq!(out.trim(), "pb");
    wait_for(
        &c,
        "pa's log",
        Duration::from_secs(20),
        || c.ok(&["logs", "pa"]).contains("up on pa"),
        &a1,
    );
    // A pod reaches the LAN through its node (masqueraded): the master's health endpoint.
    let port = c.server_url().rsplit(':').next().unwrap().to_string();
    let out = c.kubectl(&[
        "exec",
        "pa",
        "--",
        "sh",
        "-c",
        &format!("nc -w 3 {LAN_GATEWAY} {port} </dev/null && echo reached"),
    ]);
    assert_eq!(stdout(&out).trim(), "reached", "{}", common::stderr(&out));
    // None of it is in the host's namespace.
    let host = stdout(
        &std::process::Command::new("ip")
            .args(["-o", "addr"])
            .output()
            .unwrap(),
    );
    assert!(!host.contains("172.30.0."), "{host}");
}

/// `hostPort`: a pod's port published on its node's address (CNI portmap) is reached from the LAN;
/// a second pod asking for the same port and protocol stays Pending with kube-scheduler's reason,
/// while the same port over UDP is scheduled.
#[test]
fn host_ports_are_published_on_the_node_and_never_double_booked() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(
        &c,
        &mut lab,
        "hp-a",
        1,
        serde_json::json!({"allow_host_ports": true}),
    );
    wait_node_ready(&c, &a, "hp-a");
    let pod = |name: &str, proto: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo served-by-{name} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{containerPort: 8080, hostPort: 18080, protocol: {proto}}}]
"#
        )
    };
    c.ok_stdin(&["apply", "-f", "-"], &pod("first", "TCP"));
    wait_for(
        &c,
        "first running",
        Duration::from_secs(60),
        || {
            stdout(&c.kubectl(&["get", "pod", "first", "-o", "jsonpath={.status.phase}"]))
                == "Running"
        },
        &a,
    );
    let url = format!("http://{}:18080/", Lab::node_ip(1));
    wait_for(
        &c,
        "the host port from the LAN",
        Duration::from_secs(20),
        || {
            stdout(&Lab::run_in(&lab.lan, "curl", &["-s", "-m", "2", &url])).trim()
                == "served-by-first"
        },
        &a,
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!("{}---\n{}", pod("second", "TCP"), pod("third", "UDP")),
    );
    wait_for(
        &c,
        "second unschedulable, third running",
        Duration::from_secs(60),
        || {
            let cond = stdout(&c.kubectl(&[
                "get",
                "pod",
                "second",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].message}",
            ]));
            cond.contains("node(s) didn't have free ports for the requested pod ports")
                && stdout(&c.kubectl(&["get", "pod", "third", "-o", "jsonpath={.status.phase}"]))
                    == "Running"
        },
        &a,
    );
    assert_eq!(
        stdout(&c.kubectl(&["get", "pod", "second", "-o", "jsonpath={.spec.nodeName}"])),
        ""
    );
}
