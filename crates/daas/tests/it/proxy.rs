//! `pods/proxy` and `services/proxy` on a real cluster in the network lab: the master (in the LAN
//! namespace) has no route to the pod network, yet `kubectl get --raw .../proxy/...` reaches a
//! busybox httpd in a pod, because the master goes through the pod's node agent (which connects to
//! the pod's IP from its node). Needs root and containerd/runc/CNI plugins.

use crate::common;

use std::time::Duration;

use common::agent::{wait_for, wait_node_ready};
use common::netlab::{start_agent_in, Lab};
use common::{stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

#[test]
fn master_reaches_pods_through_their_agent() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(&c, &mut lab, "px-a", 1, serde_json::json!({}));
    wait_node_ready(&c, &a, "px-a");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www/sub && echo hello-from-web > /www/index.html && echo deep > /www/sub/x.txt && exec httpd -f -p 8080 -h /www"]
    ports: [{{containerPort: 8080, name: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
"#
        ),
    );
    wait_for(
        &c,
        "web running",
        Duration::from_secs(60),
        || {
            stdout(&c.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]))
                == "Running"
        },
        &a,
    );
    let ip = stdout(&c.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]));
    // The LAN (where the master runs) has no route to the pod.
    let o = Lab::run_in(&lab.lan, "ip", &["route", "get", &ip]);
    assert!(
        !o.status.success() || !stdout(&o).contains("dev"),
        "{}",
        stdout(&o)
    );
    let get = |path: &str| c.kubectl(&["get", "--raw", path]);
    wait_for(
        &c,
        "the pod through the proxy",
        Duration::from_secs(20),
        || {
            stdout(&get("/api/v1/namespaces/default/pods/web:8080/proxy/")).trim()
                == "hello-from-web"
        },
        &a,
    );
    // No port: the first declared container port; a sub path.
    assert_eq!(
        stdout(&get("/api/v1/namespaces/default/pods/web/proxy/sub/x.txt")).trim(),
        "deep"
    );
    // A Service's endpoint (by port name and number).
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Endpoints
metadata: {{name: web}}
subsets:
- addresses: [{{ip: "{ip}", nodeName: px-a, targetRef: {{kind: Pod, namespace: default, name: web}}}}]
  ports: [{{name: http, port: 8080}}]
"#
        ),
    );
    for id in ["web:http", "web:80"] {
        let o = get(&format!("/api/v1/namespaces/default/services/{id}/proxy/"));
        assert_eq!(
            stdout(&o).trim(),
            "hello-from-web",
            "{}",
            common::stderr(&o)
        );
    }
    // A port nothing listens on: 503 with the agent's dial error.
    let o = get("/api/v1/namespaces/default/pods/web:9/proxy/");
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("ServiceUnavailable")
            || common::stderr(&o).contains("error trying to reach service"),
        "{}",
        common::stderr(&o)
    );
}
