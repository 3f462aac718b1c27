//! The cluster network as one application sees it, across two nodes of the lab (real containerd,
//! nft, kubectl; pod CIDRs assigned by the master, the VXLAN overlay between the nodes): a web
//! pod on node a reaches its database pod on node b by the Service's DNS name (its resolv.conf
//! points at the cluster DNS Service, which the node's Service rules send to the node's DNS
//! server); the database is reached from the LAN through a NodePort and an Ingress on node a; a
//! NetworkPolicy on node b then admits the web pod and refuses another pod of node a. Needs root
//! and containerd/runc/CNI plugins.

use crate::common;

use std::time::Duration;

use common::agent::{wait_for, wait_node_ready, wait_pods_ready};
use common::netlab::{start_agent_in, Lab};
use common::{stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

/// One HTTP GET from `pod` to `host` port 80 with busybox nc (name resolution by the pod's own
/// resolv.conf); the last line of the reply, or "" on failure.
fn get_from(c: &Cluster, pod: &str, host: &str) -> String {
    get_port(c, pod, host, 80)
}

fn get_port(c: &Cluster, pod: &str, host: &str, port: u16) -> String {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} | tail -n 1");
    stdout(&c.kubectl(&["exec", pod, "--", "sh", "-c", &script]))
        .trim()
        .to_string()
}

#[test]
fn a_web_pod_reaches_its_database_on_another_node_by_service_name() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let extra = serde_json::json!({"pod_cidr": null, "proxy_sync_seconds": 2});
    let a = start_agent_in(&c, &mut lab, "net-a", 1, extra.clone());
    let b = start_agent_in(&c, &mut lab, "net-b", 2, extra);
    wait_node_ready(&c, &a, "net-a");
    wait_node_ready(&c, &b, "net-b");

    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: db, labels: {{app: db}}}}
spec:
  nodeName: net-b
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo served-by-db > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{containerPort: 8080, name: http}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec:
  selector: {{app: db}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db-np}}
spec:
  type: NodePort
  selector: {{app: db}}
  ports: [{{port: 80, targetPort: 8080, nodePort: 30081}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: db}}
spec:
  rules:
  - host: db.example.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: db, port: {{name: http}}}}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  nodeName: net-a
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: stranger, labels: {{app: stranger}}}}
spec:
  nodeName: net-a
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
"#
        ),
    );
    wait_pods_ready(&c, &b, &["db"]);
    wait_pods_ready(&c, &a, &["web", "stranger"]);
    let db_ip = stdout(&c.kubectl(&["get", "pod", "db", "-o", "jsonpath={.status.podIP}"]));
    let cluster_ip = stdout(&c.kubectl(&["get", "svc", "db", "-o", "jsonpath={.spec.clusterIP}"]));
    // The master gave the nodes different pod CIDRs; the database lives in node b's.
    let cidr_b = stdout(&c.kubectl(&["get", "node", "net-b", "-o", "jsonpath={.spec.podCIDR}"]));
    let prefix_b = cidr_b.trim_end_matches("0/24");
    assert!(
        !cidr_b.is_empty() && db_ip.starts_with(prefix_b),
        "{db_ip} in {cidr_b}"
    );

    // The web pod's resolver is the cluster DNS Service, answering for the full name...
    let resolv = c.ok(&["exec", "web", "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.43.0.10"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    wait_for(
        &c,
        "db.default.svc.cluster.local resolved in the web pod",
        Duration::from_secs(30),
        || {
            stdout(&c.kubectl(&[
                "exec",
                "web",
                "--",
                "nslookup",
                "db.default.svc.cluster.local",
            ]))
            .contains(&cluster_ip)
        },
        &a,
    );
    // ... and the short name (search path) leads through the ClusterIP, over the overlay, to the
    // pod on the other node.
    wait_for(
        &c,
        "web reaches db by name across nodes",
        Duration::from_secs(30),
        || get_from(&c, "web", "db") == "served-by-db",
        &a,
    );

    // From the LAN (the cluster's host network): the NodePort and the Ingress of node a, whose
    // node has no database pod, both lead to it.
    let node_a = Lab::node_ip(1).to_string();
    let curl = |args: &[&str]| {
        stdout(&Lab::run_in(&lab.lan, "curl", args))
            .trim()
            .to_string()
    };
    wait_for(
        &c,
        "the NodePort on node a",
        Duration::from_secs(30),
        || curl(&["-s", "-m", "3", &format!("http://{node_a}:30081/")]) == "served-by-db",
        &a,
    );
    wait_for(
        &c,
        "the Ingress on node a",
        Duration::from_secs(30),
        || {
            curl(&[
                "-s",
                "-m",
                "3",
                "--resolve",
                &format!("db.example.test:80:{node_a}"),
                "http://db.example.test/",
            ]) == "served-by-db"
        },
        &a,
    );

    // A NetworkPolicy on the database's node: only pods labelled app=web get in. The web pod's
    // own address reaches node b (pod-to-pod traffic is not masqueraded), so the stranger on
    // the same node a is refused while web still gets through.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: http}]
"#,
    );
    wait_for(
        &c,
        "the stranger refused by node b's policy",
        Duration::from_secs(30),
        || get_from(&c, "stranger", "db").is_empty(),
        &b,
    );
    assert_eq!(get_from(&c, "web", "db"), "served-by-db");
    // Straight to the pod's address too: the policy is on the pod, not on its Service.
    assert_eq!(get_port(&c, "web", &db_ip, 8080), "served-by-db");
    assert_eq!(get_port(&c, "stranger", &db_ip, 8080), "");
    c.ok(&["delete", "networkpolicy", "db-from-web"]);
    wait_for(
        &c,
        "the stranger admitted once the policy is gone",
        Duration::from_secs(30),
        || get_from(&c, "stranger", "db") == "served-by-db",
        &b,
    );
}
