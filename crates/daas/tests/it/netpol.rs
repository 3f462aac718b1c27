//! NetworkPolicy enforcement on a real node in the network lab (real containerd, real nft, real
//! kubectl): pods in two namespaces; a default-deny ingress policy blocks a client; a policy
//! allowing by pod label and (named) port lets it in while another pod and another port stay
//! blocked; a namespaceSelector lets the other namespace in; an ipBlock lets the LAN in (routed
//! traffic) with its `except` still out; an egress policy confines a pod to the pod network;
//! tampering with the table is repaired; deleting the policies restores access. Needs root and
//! containerd/runc/CNI plugins.

use crate::common;

use std::time::Duration;

use common::agent::{wait_for, wait_node_ready};
use common::netlab::{start_agent_in, Lab, LAN_GATEWAY};
use common::{stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

fn server(ns: &str, name: &str, app: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo served-by-{name} > /www/index.html && httpd -p 8081 -h /www && exec httpd -f -p 8080 -h /www"]
    ports: [{{containerPort: 8080, name: http}}, {{containerPort: 8081, name: alt}}]
"#
    )
}

fn client(ns: &str, name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{app: client}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
"#
    )
}

/// Does an HTTP request from pod `ns/pod` to `ip:port` get an answer?
fn reach(c: &Cluster, ns: &str, pod: &str, ip: &str, port: u16) -> bool {
    let o = c.kubectl(&[
        "exec",
        "-n",
        ns,
        pod,
        "--",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {ip} {port}"),
    ]);
    stdout(&o).contains("served-by-")
}

#[test]
fn network_policies_deny_allow_and_are_repaired_and_lifted() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(&c, &mut lab, "np-a", 1, serde_json::json!({}));
    wait_node_ready(&c, &a, "np-a");
    c.ok(&["create", "namespace", "np-srv"]);
    c.ok(&["create", "namespace", "np-cli"]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &[
            server("np-srv", "web", "web"),
            server("np-srv", "other", "other"),
            client("np-srv", "near"),
            client("np-cli", "far"),
        ]
        .join("---\n"),
    );
    let mut ips = std::collections::HashMap::new();
    for (ns, pod) in [
        ("np-srv", "web"),
        ("np-srv", "other"),
        ("np-srv", "near"),
        ("np-cli", "far"),
    ] {
        wait_for(
            &c,
            &format!("{ns}/{pod} running"),
            Duration::from_secs(90),
            || {
                stdout(&c.kubectl(&[
                    "get",
                    "pod",
                    "-n",
                    ns,
                    pod,
                    "-o",
                    "jsonpath={.status.phase}",
                ])) == "Running"
            },
            &a,
        );
        let ip = stdout(&c.kubectl(&[
            "get",
            "pod",
            "-n",
            ns,
            pod,
            "-o",
            "jsonpath={.status.podIP}",
        ]));
        ips.insert(pod, ip.trim().to_string());
    }
    let (web, other) = (ips["web"].clone(), ips["other"].clone());
    let wait =
        |what: &str, f: &dyn Fn() -> bool| wait_for(&c, what, Duration::from_secs(20), f, &a);

    // No policy: everyone reaches everyone.
    wait("near reaches web", &|| {
        reach(&c, "np-srv", "near", &web, 8080)
    });
    assert!(reach(&c, "np-cli", "far", &web, 8080));
    assert!(reach(&c, "np-srv", "near", &other, 8080));

    // Default deny ingress in np-srv: bridged same-node traffic is blocked.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: np-srv}
spec:
  podSelector: {}
"#,
    );
    let listed = c.ok(&["get", "netpol", "-n", "np-srv"]);
    assert!(
        listed.contains("default-deny") && listed.contains("<none>"),
        "{listed}"
    );
    let described = c.ok(&["describe", "networkpolicy", "-n", "np-srv", "default-deny"]);
    assert!(described.contains("PodSelector"), "{described}");
    wait("near blocked from web", &|| {
        !reach(&c, "np-srv", "near", &web, 8080)
    });
    assert!(!reach(&c, "np-cli", "far", &web, 8080));
    assert!(!reach(&c, "np-srv", "near", &other, 8080));

    // Tampering with the table is repaired within the resync period.
    let node_ns = lab.node_ns(1);
    let flushed = Lab::run_in(&node_ns, "nft", &["flush", "table", "inet", "daas-policy"]);
    assert!(flushed.status.success(), "{}", common::stderr(&flushed));
    wait("the flushed table to be restored", &|| {
        stdout(&Lab::run_in(
            &node_ns,
            "nft",
            &["list", "table", "inet", "daas-policy"],
        ))
        .contains("jump ing-")
    });
    assert!(!reach(&c, "np-srv", "near", &web, 8080));

    // Allow app=client of the same namespace to web's named port `http` only.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-clients, namespace: np-srv}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{port: http}]
"#,
    );
    wait("near reaches web:http", &|| {
        reach(&c, "np-srv", "near", &web, 8080)
    });
    assert!(
        !reach(&c, "np-srv", "near", &web, 8081),
        "another port stays blocked"
    );
    assert!(
        !reach(&c, "np-srv", "near", &other, 8080),
        "another pod stays blocked"
    );
    assert!(
        !reach(&c, "np-cli", "far", &web, 8080),
        "another namespace stays blocked"
    );

    // namespaceSelector (by upstream's name label) combined with a podSelector.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-cli, namespace: np-srv}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: np-cli}}
      podSelector: {matchLabels: {app: client}}
    ports: [{port: 8080, endPort: 8081}]
"#,
    );
    wait("far reaches web", &|| {
        reach(&c, "np-cli", "far", &web, 8080)
    });
    assert!(reach(&c, "np-cli", "far", &web, 8081));
    assert!(!reach(&c, "np-cli", "far", &other, 8080));

    // ipBlock: the LAN (routed through the node, not bridged) reaches web; its `except` does not.
    let lan = lab.lan.clone();
    let route = Lab::run_in(
        &lan,
        "ip",
        &[
            "route",
            "add",
            "10.42.1.0/24",
            "via",
            &Lab::node_ip(1).to_string(),
        ],
    );
    assert!(route.status.success(), "{}", common::stderr(&route));
    let curl = |ip: &str| {
        stdout(&Lab::run_in(
            &lan,
            "curl",
            &["-s", "-m", "1", &format!("http://{ip}:8080/")],
        ))
        .contains("served-by-")
    };
    assert!(!curl(&web), "the LAN is not allowed yet");
    let block = |except: &str| {
        format!(
            r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: web-from-lan, namespace: np-srv}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress:
  - from: [{{ipBlock: {{cidr: 172.30.0.0/24, except: [{except}]}}}}]
"#
        )
    };
    c.ok_stdin(&["apply", "-f", "-"], &block("172.30.0.128/25"));
    wait("the LAN reaches web", &|| curl(&web));
    assert!(!curl(&other));
    c.ok_stdin(&["apply", "-f", "-"], &block(&format!("{LAN_GATEWAY}/32")));
    wait("the excepted LAN address is blocked", &|| !curl(&web));

    // Egress: far may only talk to the pod network (port 8080); the LAN is out of reach.
    let master_port = c.server_url().rsplit(':').next().unwrap().to_string();
    let far_to_lan = || {
        let o = c.kubectl(&[
            "exec",
            "-n",
            "np-cli",
            "far",
            "--",
            "sh",
            "-c",
            &format!("nc -w 1 {LAN_GATEWAY} {master_port} </dev/null && echo reached"),
        ]);
        stdout(&o).contains("reached")
    };
    assert!(far_to_lan());
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: far-egress, namespace: np-cli}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.42.0.0/16}}]
    ports: [{port: 8080}]
"#,
    );
    wait("far cut off from the LAN", &|| !far_to_lan());
    assert!(
        reach(&c, "np-cli", "far", &web, 8080),
        "egress to pods allowed"
    );
    assert!(
        !reach(&c, "np-cli", "far", &web, 8081),
        "egress port not allowed"
    );

    // Deleting the policies restores access.
    c.ok(&["delete", "networkpolicy", "--all", "-n", "np-srv"]);
    wait("near reaches other again", &|| {
        reach(&c, "np-srv", "near", &other, 8080)
    });
    assert!(reach(&c, "np-srv", "near", &web, 8081));
    assert!(curl(&web));
    c.ok(&["delete", "networkpolicy", "far-egress", "-n", "np-cli"]);
    wait("far reaches the LAN again", &far_to_lan);
    let table = stdout(&Lab::run_in(
        &node_ns,
        "nft",
        &["list", "table", "inet", "daas-policy"],
    ));
    assert!(!table.contains("jump"), "{table}");
}
