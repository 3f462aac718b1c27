//! Cluster DNS in the network lab: the node's DNS server on its pod network gateway (10.42.1.1)
//! answers pods (busybox `nslookup`) for a ClusterIP Service, a headless Service and its named
//! pod, a pod record, an ExternalName, SRV of a named port and NXDOMAIN; forwards other names
//! to an upstream server the test runs in the LAN namespace; refuses a client on the LAN; and the
//! pods' `/etc/resolv.conf` follows their `dnsPolicy`/`dnsConfig`, whose invalid forms the API
//! server refuses with 422. Needs root and containerd/runc/CNI plugins.

use crate::common;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::agent::{wait_for, wait_node_ready};
use common::netlab::{start_agent_in, Lab, LAN_GATEWAY};
use common::{stderr, stdout, Cluster};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";
const GATEWAY: &str = "10.42.1.1";

/// An upstream DNS server on the LAN (port 53 of [`LAN_GATEWAY`] in the lab's LAN namespace):
/// `*.external.test` A is 192.0.2.7, anything else NXDOMAIN. Stops when dropped.
struct Upstream {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    fn start(netns: &str) -> Upstream {
        let ns = std::fs::File::open(format!("/run/netns/{netns}")).expect("open the LAN netns");
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // This thread alone enters the LAN namespace; its socket stays there.
            // SAFETY: setns on a valid namespace fd affects only the calling thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let sock = UdpSocket::bind((LAN_GATEWAY, 53)).expect("bind the upstream");
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = q.queries().first().cloned() else {
                    continue;
                };
                let mut resp = Message::new();
                resp.set_id(q.id())
                    .set_message_type(MessageType::Response)
                    .set_recursion_desired(q.recursion_desired())
                    .set_recursion_available(true)
                    .add_query(query.clone());
                let name = query.name().to_lowercase().to_ascii();
                if name.ends_with("external.test.") {
                    if query.query_type() == RecordType::A {
                        resp.add_answer(Record::from_rdata(
                            query.name().clone(),
                            60,
                            RData::A("192.0.2.7".parse().unwrap()),
                        ));
                    }
                } else {
                    resp.set_response_code(ResponseCode::NXDomain);
                }
                let _ = sock.send_to(&resp.to_vec().unwrap(), from);
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("upstream started");
        Upstream {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn workloads() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: db-0, labels: {{app: db}}}}
spec:
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: host-dns}}
spec:
  dnsPolicy: Default
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: own-dns}}
spec:
  dnsPolicy: None
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [a.example]
    options: [{{name: ndots, value: "2"}}, {{name: edns0}}]
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: merged-dns}}
spec:
  dnsConfig:
    nameservers: [192.0.2.53]
    searches: [extra.example]
    options: [{{name: ndots, value: "3"}}]
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: c, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: pg, port: 5432, protocol: TCP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec:
  type: ExternalName
  externalName: api.external.test
"#
    )
}

#[test]
fn pods_resolve_cluster_names_at_their_node() {
    let mut lab = Lab::new();
    let upstream = Upstream::start(&lab.lan);
    let c = Cluster::start_in(&lab, &[]);
    // The node's resolv.conf: the upstream on the LAN, a search domain and an option.
    let resolv = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        resolv.path(),
        format!("nameserver {LAN_GATEWAY}\nsearch lab.example\noptions timeout:2\n"),
    )
    .unwrap();
    let a = start_agent_in(
        &c,
        &mut lab,
        "dns-a",
        1,
        serde_json::json!({"resolv_conf": resolv.path()}),
    );
    wait_node_ready(&c, &a, "dns-a");
    // The cluster DNS Service exists, selector-less, at 10.43.0.10.
    wait_for(
        &c,
        "kube-dns",
        Duration::from_secs(30),
        || {
            stdout(&c.kubectl(&[
                "get",
                "svc",
                "-n",
                "kube-system",
                "kube-dns",
                "-o",
                "jsonpath={.spec.clusterIP} {.spec.ports[*].name}",
            ])) == "10.43.0.10 dns dns-tcp"
        },
        &a,
    );
    c.ok_stdin(&["apply", "-f", "-"], &workloads());
    let pods = ["client", "web", "db-0", "host-dns", "own-dns", "merged-dns"];
    wait_for(
        &c,
        "pods running",
        Duration::from_secs(90),
        || {
            pods.iter().all(|p| {
                stdout(&c.kubectl(&["get", "pod", p, "-o", "jsonpath={.status.phase}"]))
                    == "Running"
            })
        },
        &a,
    );
    let ip_of = |p: &str| stdout(&c.kubectl(&["get", "pod", p, "-o", "jsonpath={.status.podIP}"]));
    let client_ip = ip_of("client");
    let db_ip = ip_of("db-0");
    let web_svc = stdout(&c.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]));
    assert!(web_svc.starts_with("10.43."), "{web_svc}");
    let lookup = |args: &[&str]| {
        let mut full = vec!["exec", "client", "--", "nslookup"];
        full.extend_from_slice(args);
        full.push(GATEWAY);
        let o = c.kubectl(&full);
        format!("{}{}", stdout(&o), stderr(&o))
    };
    // Answers appear once the node has seen the objects.
    let expect = |what: &str, args: &[&str], want: &str| {
        wait_for(
            &c,
            what,
            Duration::from_secs(30),
            || lookup(args).contains(want),
            &a,
        );
    };
    expect(
        "the ClusterIP Service",
        &["web.default.svc.cluster.local"],
        &format!("Address: {web_svc}"),
    );
    expect(
        "the headless Service's endpoints",
        &["db.default.svc.cluster.local"],
        &format!("Address: {db_ip}"),
    );
    expect(
        "the headless Service's named pod",
        &["db-0.db.default.svc.cluster.local"],
        &format!("Address: {db_ip}"),
    );
    let dashed = client_ip.replace('.', "-");
    expect(
        "the pod record",
        &[&format!("{dashed}.default.pod.cluster.local")],
        &format!("Address: {client_ip}"),
    );
    expect(
        "the ExternalName",
        &["-type=cname", "ext.default.svc.cluster.local"],
        "canonical name = api.external.test",
    );
    expect(
        "SRV of the named port",
        &["-type=srv", "_http._tcp.web.default.svc.cluster.local"],
        "80 web.default.svc.cluster.local",
    );
    expect(
        "SRV of the headless Service",
        &["-type=srv", "_pg._tcp.db.default.svc.cluster.local"],
        "5432 db-0.db.default.svc.cluster.local",
    );
    let out = lookup(&["nope.default.svc.cluster.local"]);
    assert!(out.contains("NXDOMAIN"), "{out}");
    // IPv4-only: AAAA has no answer but is no error.
    let out = lookup(&["-type=aaaa", "web.default.svc.cluster.local"]);
    assert!(
        !out.contains("NXDOMAIN") && !out.contains(&web_svc),
        "{out}"
    );
    // Other names go to the upstream on the LAN.
    let out = lookup(&["www.external.test"]);
    assert!(out.contains("Address: 192.0.2.7"), "{out}");
    let out = lookup(&["unknown.example"]);
    assert!(out.contains("NXDOMAIN"), "{out}");
    // A deleted Service's name goes away.
    c.ok(&["delete", "svc", "web"]);
    expect(
        "the deleted Service gone",
        &["web.default.svc.cluster.local"],
        "NXDOMAIN",
    );

    // A client outside the cluster (the LAN, routed to the node) is refused: no open resolver.
    let r = Lab::run_in(
        &lab.lan,
        "ip",
        &[
            "route",
            "replace",
            "10.42.1.0/24",
            "via",
            &Lab::node_ip(1).to_string(),
        ],
    );
    assert!(r.status.success(), "{}", stderr(&r));
    for name in ["db.default.svc.cluster.local", "www.external.test"] {
        let o = Lab::run_in(&lab.lan, "busybox", &["nslookup", name, GATEWAY]);
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(out.contains("REFUSED"), "{name}: {out}");
        assert!(
            !out.contains("192.0.2.7") && !out.contains(&web_svc),
            "{out}"
        );
    }

    // resolv.conf by dnsPolicy.
    let resolv_of = |p: &str| c.ok(&["exec", p, "--", "cat", "/etc/resolv.conf"]);
    let lines = |s: String| {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(resolv_of("client")),
        [
            "search default.svc.cluster.local svc.cluster.local cluster.local lab.example",
            "nameserver 10.43.0.10",
            "options ndots:5",
        ]
    );
    assert_eq!(
        lines(resolv_of("host-dns")),
        [
            "search lab.example",
            &format!("nameserver {LAN_GATEWAY}"),
            "options timeout:2"
        ]
    );
    assert_eq!(
        lines(resolv_of("own-dns")),
        [
            "search a.example",
            "nameserver 192.0.2.53",
            "options ndots:2 edns0"
        ]
    );
    assert_eq!(
        lines(resolv_of("merged-dns")),
        [
            "search default.svc.cluster.local svc.cluster.local cluster.local lab.example extra.example",
            "nameserver 10.43.0.10",
            "nameserver 192.0.2.53",
            "options ndots:3",
        ]
    );

    // Invalid DNS settings: 422 with upstream's messages.
    let bad = |name: &str, spec: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n{spec}  containers:\n  - {{name: c, image: {IMAGE}}}\n"
        )
    };
    for (name, spec, msg) in [
        (
            "no-ns",
            "  dnsPolicy: None\n  dnsConfig: {searches: [a.example]}\n",
            "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None",
        ),
        (
            "four-ns",
            "  dnsConfig: {nameservers: [192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4]}\n",
            "must not have more than 3 nameservers",
        ),
        (
            "bad-policy",
            "  dnsPolicy: Sometimes\n",
            "spec.dnsPolicy: Unsupported value: \"Sometimes\"",
        ),
    ] {
        let o = c.kubectl_stdin(&["create", "-v=6", "-f", "-"], &bad(name, spec));
        let err = stderr(&o);
        assert!(!o.status.success(), "{name} was accepted");
        assert!(err.contains("422 Unprocessable Entity"), "{name}: {err}");
        assert!(err.contains(msg), "{name}: {err}");
    }
    drop(upstream);
}
