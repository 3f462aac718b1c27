//! Services on the nodes (the agent's `ip daas-proxy` table) in the network lab, with real
//! containerd, nft and kubectl: ClusterIP round-robin over both backends, hairpin, NodePort and a
//! ServiceLB LoadBalancer reached from the LAN, ClientIP session affinity, a Service without
//! endpoints refused at once, the table repaired after it is deleted by hand; a UDP client flow
//! following a replaced backend (stale conntrack entries deleted); an in-cluster
//! kubectl listing pods through the `kubernetes` Service with its bound token (403 without RBAC);
//! and the refusals around Services for tenants and nodes. Needs root and containerd/runc/CNI.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::agent::{wait_for, wait_node_ready, wait_pods_ready};
use common::netlab::{start_agent_in, Lab};
use common::{stderr, stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

fn httpd(name: &str, app: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {app}}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo served-by-{name} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{containerPort: 8080, name: http}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
"#
    )
}

fn client(name: &str, sa: Option<&str>) -> String {
    let sa = sa
        .map(|s| format!("  serviceAccountName: {s}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
{sa}  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    volumeMounts: [{{name: kubectl, mountPath: /opt/kubectl}}]
  volumes:
  - name: kubectl
    hostPath: {{path: /usr/bin/kubectl, type: File}}
"#
    )
}

fn cluster_ip(c: &Cluster, svc: &str) -> String {
    stdout(&c.kubectl(&["get", "svc", svc, "-o", "jsonpath={.spec.clusterIP}"]))
}

/// `n` HTTP requests from `pod` to `addr` (ip:port) with busybox nc; the bodies, one a line.
fn fetch_from(c: &Cluster, pod: &str, addr: &str, n: u32) -> String {
    let (ip, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        "for i in $(seq {n}); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} {port} | tail -n 1; done"
    );
    stdout(&c.kubectl(&["exec", pod, "--", "sh", "-c", &script]))
}

fn curl_lan(lab: &Lab, url: &str) -> String {
    stdout(&Lab::run_in(&lab.lan, "curl", &["-s", "-m", "2", url]))
        .trim()
        .to_string()
}

fn nft_table(ns: &str) -> Option<String> {
    let o = Lab::run_in(ns, "nft", &["list", "table", "ip", "daas-proxy"]);
    o.status.success().then(|| stdout(&o))
}

#[test]
fn cluster_ip_node_port_load_balancer_affinity_and_repair() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(
        &c,
        &mut lab,
        "svc-a",
        1,
        serde_json::json!({"proxy_sync_seconds": 2}),
    );
    wait_node_ready(&c, &a, "svc-a");
    let node_ns = lab.node_ns(1);
    let node_ip = Lab::node_ip(1).to_string();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"{}---
{}---
{}---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}, {{name: alt, port: 81, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-np}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080, nodePort: 30080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-lb}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: 8081, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: sticky}}
spec:
  selector: {{app: web}}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {{clientIP: {{timeoutSeconds: 300}}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: unready, labels: {{app: unready}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo served-by-unready > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe: {{exec: {{command: ["false"]}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: unready-published}}
spec:
  selector: {{app: unready}}
  publishNotReadyAddresses: true
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: unready}}
spec:
  selector: {{app: unready}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: empty}}
spec:
  selector: {{app: nothing}}
  ports: [{{port: 80, targetPort: 8080}}]
"#,
            httpd("web-1", "web"),
            httpd("web-2", "web"),
            client("client", None)
        ),
    );
    wait_pods_ready(&c, &a, &["web-1", "web-2", "client"]);
    let web = format!("{}:80", cluster_ip(&c, "web"));

    // ClusterIP: both backends answer, on both (named and numbered) ports.
    wait_for(
        &c,
        "both backends through the ClusterIP",
        Duration::from_secs(30),
        || {
            let out = fetch_from(&c, "client", &web, 12);
            out.contains("served-by-web-1") && out.contains("served-by-web-2")
        },
        &a,
    );
    let alt = format!("{}:81", cluster_ip(&c, "web"));
    assert!(fetch_from(&c, "client", &alt, 3).contains("served-by-web-"));

    // Hairpin: a backend reaches itself through its Service.
    wait_for(
        &c,
        "web-1 reaching itself through the Service",
        Duration::from_secs(30),
        || fetch_from(&c, "web-1", &web, 10).contains("served-by-web-1"),
        &a,
    );

    // NodePort from the LAN (the "host"), masqueraded to the pods.
    wait_for(
        &c,
        "the NodePort from the LAN",
        Duration::from_secs(30),
        || curl_lan(&lab, &format!("http://{node_ip}:30080/")).starts_with("served-by-web-"),
        &a,
    );

    // LoadBalancer: ServiceLB publishes the node's address; the node forwards it.
    wait_for(
        &c,
        "the LoadBalancer ingress and its traffic",
        Duration::from_secs(60),
        || {
            stdout(&c.kubectl(&[
                "get",
                "svc",
                "web-lb",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[*].ip}",
            ])) == node_ip
                && curl_lan(&lab, &format!("http://{node_ip}:8081/")).starts_with("served-by-web-")
        },
        &a,
    );

    // Session affinity: every request of one client lands on one backend.
    let sticky = format!("{}:80", cluster_ip(&c, "sticky"));
    let out = fetch_from(&c, "client", &sticky, 12);
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 12, "{out}");
    assert!(lines.iter().all(|l| *l == lines[0]), "{out}");

    // A Service without endpoints is refused at once (TCP reset), not left to time out.
    let empty = cluster_ip(&c, "empty");
    let started = Instant::now();
    let o = c.kubectl(&[
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        &format!("nc -w 5 {empty} 80 </dev/null; echo rc=$?"),
    ]);
    let took = started.elapsed();
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("rc=1"), "{all}");
    assert!(all.contains("refused"), "{all}");
    assert!(took < Duration::from_secs(4), "took {took:?}: {all}");

    // publishNotReadyAddresses: a pod that is not ready is used by the Service publishing it,
    // and only by it.
    wait_for(
        &c,
        "unready running",
        Duration::from_secs(60),
        || {
            stdout(&c.kubectl(&["get", "pod", "unready", "-o", "jsonpath={.status.phase}"]))
                == "Running"
        },
        &a,
    );
    let published = format!("{}:80", cluster_ip(&c, "unready-published"));
    wait_for(
        &c,
        "the unready pod through publishNotReadyAddresses",
        Duration::from_secs(30),
        || fetch_from(&c, "client", &published, 1).contains("served-by-unready"),
        &a,
    );
    let o = c.kubectl(&[
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        &format!(
            "nc -w 3 {} 80 </dev/null; echo rc=$?",
            cluster_ip(&c, "unready")
        ),
    ]);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("rc=1") && all.contains("refused"), "{all}");

    // Tampering: the table deleted by hand is back within proxy_sync_seconds, and works.
    assert!(nft_table(&node_ns).is_some_and(|t| t.contains("numgen random")));
    let o = Lab::run_in(&node_ns, "nft", &["delete", "table", "ip", "daas-proxy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(nft_table(&node_ns).is_none());
    wait_for(
        &c,
        "the deleted table repaired",
        Duration::from_secs(20),
        || nft_table(&node_ns).is_some_and(|t| t.contains("numgen random")),
        &a,
    );
    assert!(fetch_from(&c, "client", &web, 3).contains("served-by-web-"));
    assert!(a.log().contains("re-applied"), "{}", a.log());

    // An agent restart (its table deleted while it was down) rebuilds the rules.
    let mut a = a;
    a.stop();
    let o = Lab::run_in(&node_ns, "nft", &["delete", "table", "ip", "daas-proxy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    a.spawn();
    wait_for(
        &c,
        "the rules rebuilt after a restart",
        Duration::from_secs(60),
        || {
            nft_table(&node_ns).is_some_and(|t| t.contains("numgen random"))
                && fetch_from(&c, "client", &web, 3).contains("served-by-web-")
        },
        &a,
    );

    // A backend gone: the Service only uses the other one.
    c.ok(&["delete", "pod", "web-2", "--wait=true"]);
    wait_for(
        &c,
        "only web-1 behind the Service",
        Duration::from_secs(30),
        || {
            let out = fetch_from(&c, "client", &web, 8);
            out.matches("served-by-web-1").count() == 8
        },
        &a,
    );
}

#[test]
fn in_cluster_kubectl_lists_pods_through_the_kubernetes_service() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(&c, &mut lab, "svc-k", 1, serde_json::json!({}));
    wait_node_ready(&c, &a, "svc-k");
    c.ok(&["create", "serviceaccount", "reader"]);
    c.ok(&["create", "serviceaccount", "nobody"]);
    c.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ]);
    c.ok(&[
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        "--serviceaccount=default:reader",
    ]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "{}---\n{}",
            client("reader", Some("reader")),
            client("nobody", Some("nobody"))
        ),
    );
    wait_pods_ready(&c, &a, &["reader", "nobody"]);
    // The pod sees the kubernetes Service in its environment.
    let env = c.ok(&["exec", "reader", "--", "env"]);
    assert!(env.contains("KUBERNETES_SERVICE_HOST=10.43.0.1"), "{env}");
    assert!(env.contains("KUBERNETES_SERVICE_PORT=443"), "{env}");
    // kubectl's in-cluster config: https://10.43.0.1:443, the bound token and the cluster CA
    // (so the serving certificate must be valid for 10.43.0.1).
    let kubectl = |pod: &str| {
        c.kubectl(&[
            "exec",
            pod,
            "--",
            "sh",
            "-c",
            "HOME=/tmp /opt/kubectl get pods -o name -v=6 2>&1",
        ])
    };
    let last = std::cell::RefCell::new(String::new());
    wait_for(
        &c,
        "in-cluster kubectl listing pods",
        Duration::from_secs(30),
        || {
            *last.borrow_mut() = stdout(&kubectl("reader"));
            let l = last.borrow();
            l.contains("pod/reader") && l.contains("pod/nobody")
        },
        &a,
    );
    let last = last.into_inner();
    assert!(
        last.contains("https://10.43.0.1:443/api/v1/namespaces/default/pods"),
        "{last}"
    );
    // The same, without RBAC: 403 from the API server, through the same Service.
    let out = stdout(&kubectl("nobody"));
    assert!(out.contains("403 Forbidden"), "{out}");
    assert!(
        out.contains("pods is forbidden: User \"system:serviceaccount:default:nobody\" cannot list resource \"pods\""),
        "{out}"
    );
}

/// kubectl as `kubeconfig` must fail; returns stderr.
#[track_caller]
fn refused(c: &Cluster, kubeconfig: &Path, args: &[&str]) -> String {
    let o = c.kubectl_as(kubeconfig, args);
    assert!(
        !o.status.success(),
        "kubectl {args:?} succeeded: {}",
        stdout(&o)
    );
    stderr(&o)
}

#[test]
fn tenants_and_nodes_cannot_write_others_services() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
    ]);
    let chain = c.chain_url();
    let join = |name: &str, stake: &[&str]| {
        let (key, _) = c.staker(&chain, name, stake);
        c.join(&chain, &key)
    };
    let (alice, out) = join("alice", &["--amount", "200", "--role", "user"]);
    let alice_ns = crate::common::joined_namespace(&out);
    let (mallory, _) = join("mallory", &["--amount", "200", "--role", "user"]);
    let (node, _) = join(
        "node",
        &[
            "--amount",
            "1000",
            "--role",
            "node",
            "--node-id",
            "svc-node",
        ],
    );
    let svc = |ns: &str| {
        let p = c.dir.path().join(format!("svc-{ns}.yaml"));
        std::fs::write(
            &p,
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  ports: [{{port: 80}}]\n"),
        )
        .unwrap();
        p.to_str().unwrap().to_string()
    };
    // Alice works in her namespace.
    let o = c.kubectl_as(&alice, &["create", "-f", &svc(&alice_ns)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Mallory cannot create a Service in Alice's namespace, nor in default.
    for ns in [alice_ns.as_str(), "default"] {
        let e = refused(&c, &mallory, &["create", "-f", &svc(ns)]);
        assert!(
            e.contains("Error from server (Forbidden)")
                && e.contains("cannot create resource \"services\""),
            "{e}"
        );
    }
    // Mallory cannot touch Alice's Service or its status (a fake load balancer address).
    let e = refused(&c, &mallory, &["delete", "svc", "web", "-n", &alice_ns]);
    assert!(e.contains("Forbidden"), "{e}");
    let status = r#"{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.66"}]}}}"#;
    let e = refused(
        &c,
        &mallory,
        &[
            "patch",
            "svc",
            "web",
            "-n",
            &alice_ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
    );
    assert!(
        e.contains("Forbidden") && e.contains("services/status"),
        "{e}"
    );
    // Alice herself may not write status either (only controllers do).
    let e = refused(
        &c,
        &alice,
        &[
            "patch",
            "svc",
            "web",
            "-n",
            &alice_ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
    );
    assert!(
        e.contains("Forbidden") && e.contains("services/status"),
        "{e}"
    );
    // A node reads Services but cannot write them.
    let o = c.kubectl_as(&node, &["get", "svc", "-A"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = refused(&c, &node, &["create", "-f", &svc("default")]);
    assert!(e.contains("Forbidden"), "{e}");
    let e = refused(&c, &node, &["delete", "svc", "kubernetes"]);
    assert!(e.contains("Forbidden"), "{e}");
    let e = refused(
        &c,
        &node,
        &[
            "patch",
            "svc",
            "web",
            "-n",
            &alice_ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
    );
    assert!(e.contains("Forbidden"), "{e}");
    // An unauthenticated client gets 401.
    let anon = c.dir.path().join("anon.kubeconfig");
    std::fs::write(
        &anon,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\nusers: [{{name: u, user: {{token: not-a-token}}}}]\n",
            c.server_url()
        ),
    )
    .unwrap();
    let e = refused(&c, &anon, &["get", "svc"]);
    assert!(
        e.contains("Unauthorized") || e.contains("must be logged in"),
        "{e}"
    );
    // Nothing changed.
    let lb = stdout(&c.kubectl(&[
        "get",
        "svc",
        "web",
        "-n",
        &alice_ns,
        "-o",
        "jsonpath={.status.loadBalancer}",
    ]));
    assert!(!lb.contains("203.0.113.66"), "{lb}");
}

/// A UDP echo-like backend: python from the host's `/usr` (hostPath, read-only), started through
/// the host's dynamic loader, answering every datagram on 5353 with `served-by-<name>`.
fn udp_backend(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: udp}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: udp
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    env: [{{name: PYTHONHOME, value: /usr}}]
    command:
    - /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
    - /usr/bin/python3
    - -c
    - |
      import socket
      s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
      s.bind(("0.0.0.0", 5353))
      while True:
          _, peer = s.recvfrom(512)
          s.sendto(b"served-by-{name}", peer)
    volumeMounts: [{{name: usr, mountPath: /usr, readOnly: true}}]
  volumes:
  - name: usr
    hostPath: {{path: /usr, type: Directory}}
"#
    )
}

/// kube-proxy's stale UDP conntrack cleanup: a client that keeps sending from one source port
/// to a UDP Service keeps its conntrack entry (and the backend chosen for its first datagram)
/// for as long as it sends; when that backend is replaced by a new pod, the agent deletes the
/// entries (reply source: the removed endpoint; original destination: the Service, when it gets
/// an endpoint again), so the client's next datagrams reach the new backend.
#[test]
fn udp_flows_follow_a_replaced_backend() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let a = start_agent_in(&c, &mut lab, "udp-a", 1, serde_json::json!({}));
    wait_node_ready(&c, &a, "udp-a");
    let node_ns = lab.node_ns(1);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"{}---
apiVersion: v1
kind: Service
metadata: {{name: udp}}
spec:
  selector: {{app: udp}}
  ports: [{{name: u, port: 53, targetPort: 5353, protocol: UDP}}]
"#,
            udp_backend("udp-1")
        ),
    );
    wait_pods_ready(&c, &a, &["udp-1"]);
    let ip = cluster_ip(&c, "udp");
    // The client: from the node's namespace, one socket bound to a fixed port, a datagram every
    // 200 ms, each answer (or "timeout") on its own line.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("client.log");
    let script = format!(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40053))
s.settimeout(0.2)
while True:
    try:
        s.sendto(b"ping", ("{ip}", 53))
        d, _ = s.recvfrom(512)
        print(d.decode(), flush=True)
    except OSError as e:
        print("error", e, flush=True)
        import time; time.sleep(0.2)
"#
    );
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _client = Kill(
        Lab::cmd_in(&node_ns, "python3")
            .args(["-c", &script])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3"),
    );
    let tail = || {
        let s = std::fs::read_to_string(&log).unwrap_or_default();
        s.lines()
            .rev()
            .take(5)
            .map(String::from)
            .collect::<Vec<_>>()
    };
    wait_for(
        &c,
        "the client answered by udp-1",
        Duration::from_secs(30),
        || tail().first().is_some_and(|l| l == "served-by-udp-1"),
        &a,
    );

    // Replace the backend: udp-1 gone, udp-2 (a new address) behind the same Service.
    c.ok(&["delete", "pod", "udp-1", "--wait=true"]);
    c.ok_stdin(&["apply", "-f", "-"], &udp_backend("udp-2"));
    wait_pods_ready(&c, &a, &["udp-2"]);
    wait_for(
        &c,
        "the same client flow answered by udp-2",
        Duration::from_secs(30),
        || tail().iter().all(|l| l == "served-by-udp-2"),
        &a,
    );
    // The flow the client uses now points at udp-2's address.
    let udp2 = stdout(&c.kubectl(&["get", "pod", "udp-2", "-o", "jsonpath={.status.podIP}"]));
    let o = Lab::run_in(
        &node_ns,
        "conntrack",
        &["-L", "-p", "udp", "--orig-port-src", "40053"],
    );
    let flows = stdout(&o);
    assert!(flows.contains(&format!("src={udp2} ")), "{flows}");
}
