//! The pod network across nodes: two agents in their own lab namespaces register without a pod
//! CIDR, the master assigns each one, and pods on the two nodes reach each other by pod IP over
//! the VXLAN overlay with their own addresses, while traffic to the LAN leaves masqueraded as the
//! node's IP. A route deleted by hand comes back. A node cannot change its own or another node's
//! pod CIDR. Needs root and containerd/runc/CNI plugins.

use crate::common;

use std::process::Child;
use std::time::Duration;

use common::agent::{wait_for, wait_node_ready, Agent};
use common::netlab::{start_agent_in, Lab, LAN_GATEWAY};
use common::{stderr, stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

/// A pod on `node` serving, over HTTP on 8080, the address its client connected from
/// (`/cgi-bin/ip`, busybox httpd's CGI `REMOTE_ADDR`).
fn echo_pod(name: &str, node: &str) -> String {
    format!(
        r##"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'mkdir -p /www/cgi-bin && printf "#!/bin/sh\necho Content-Type: text/plain\necho\necho {name} \$REMOTE_ADDR\n" > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www']
"##
    )
}

/// `GET /cgi-bin/ip` from pod `from` to `ip:port`: the body (`<server> <client address>`).
fn ask(c: &Cluster, from: &str, ip: &str, port: u16) -> String {
    let o = c.kubectl(&[
        "exec",
        from,
        "--",
        "sh",
        "-c",
        &format!("printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port} | tail -n 1"),
    ]);
    // busybox httpd listens on IPv6 too: an IPv4 client shows as `[::ffff:a.b.c.d]`.
    stdout(&o).trim().replace("[::ffff:", "").replace(']', "")
}

fn jsonpath(c: &Cluster, args: &[&str], path: &str) -> String {
    let mut a = args.to_vec();
    let p = format!("jsonpath={path}");
    a.extend_from_slice(&["-o", &p]);
    stdout(&c.kubectl(&a)).trim().to_string()
}

/// A busybox httpd in the LAN namespace telling each client its source address; killed on drop.
struct LanEcho {
    child: Child,
    _dir: tempfile::TempDir,
}

impl LanEcho {
    fn start(lab: &Lab, port: u16) -> LanEcho {
        let dir = tempfile::tempdir().unwrap();
        let cgi = dir.path().join("cgi-bin");
        std::fs::create_dir_all(&cgi).unwrap();
        let script = cgi.join("ip");
        std::fs::write(
            &script,
            "#!/bin/busybox sh\necho Content-Type: text/plain\necho\necho lan $REMOTE_ADDR\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Lab::cmd_in(&lab.lan, "/bin/busybox")
            .args(["httpd", "-f", "-p", &format!("{LAN_GATEWAY}:{port}"), "-h"])
            .arg(dir.path())
            .spawn()
            .unwrap();
        LanEcho { child, _dir: dir }
    }
}

impl Drop for LanEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn in_ns(ns: &str, program: &str, args: &[&str]) -> String {
    let o = Lab::run_in(ns, program, args);
    assert!(o.status.success(), "{program} {args:?}: {}", stderr(&o));
    stdout(&o)
}

fn wait_running(c: &Cluster, pod: &str, a: &Agent) {
    wait_for(
        c,
        &format!("{pod} running"),
        Duration::from_secs(90),
        || jsonpath(c, &["get", "pod", pod], "{.status.phase}") == "Running",
        a,
    );
}

/// The overlay's state in both node namespaces and what pod `pa` sees, for a failure message.
fn diagnostics(lab: &Lab, c: &Cluster, ip_b: &str) -> String {
    let mut diag = String::new();
    for i in [1, 2] {
        let ns = lab.node_ns(i);
        for (p, a) in [
            ("ip", &["-d", "link", "show", "daas.1"][..]),
            ("ip", &["route"][..]),
            ("ip", &["neigh"][..]),
            ("bridge", &["fdb", "show", "dev", "daas.1"][..]),
            ("nft", &["list", "ruleset"][..]),
        ] {
            let o = Lab::run_in(&ns, p, a);
            diag.push_str(&format!(
                "--- node {i}: {p} {a:?}\n{}{}\n",
                stdout(&o),
                stderr(&o)
            ));
        }
    }
    let o = c.kubectl(&[
        "exec",
        "pa",
        "--",
        "sh",
        "-c",
        &format!("ip addr; ip route; ping -c 1 -W 2 {ip_b}"),
    ]);
    diag.push_str(&format!("--- from pa\n{}{}\n", stdout(&o), stderr(&o)));
    diag
}

#[test]
fn pods_on_two_nodes_reach_each_other_over_the_overlay_with_master_assigned_cidrs() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    // No pod_cidr in the agents' configs: the master assigns them.
    let a1 = start_agent_in(
        &c,
        &mut lab,
        "pn-a",
        1,
        serde_json::json!({"pod_cidr": null}),
    );
    let a2 = start_agent_in(
        &c,
        &mut lab,
        "pn-b",
        2,
        serde_json::json!({"pod_cidr": null}),
    );
    wait_node_ready(&c, &a1, "pn-a");
    wait_node_ready(&c, &a2, "pn-b");

    // Two different /24s of the default cluster CIDR, podCIDR and podCIDRs alike, the cluster
    // CIDR and each node's VTEP MAC as annotations.
    let cidr_a = jsonpath(&c, &["get", "node", "pn-a"], "{.spec.podCIDR}");
    let cidr_b = jsonpath(&c, &["get", "node", "pn-b"], "{.spec.podCIDR}");
    for (n, cidr) in [("pn-a", &cidr_a), ("pn-b", &cidr_b)] {
        assert!(
            cidr.starts_with("10.42.") && cidr.ends_with(".0/24"),
            "{n}: {cidr:?}"
        );
        assert_eq!(
            &jsonpath(&c, &["get", "node", n], "{.spec.podCIDRs[0]}"),
            cidr
        );
        assert_eq!(
            jsonpath(
                &c,
                &["get", "node", n],
                "{.metadata.annotations.networking\\.k3s-daas\\.io/cluster-cidr}"
            ),
            "10.42.0.0/16"
        );
    }
    assert_ne!(cidr_a, cidr_b);
    wait_for(
        &c,
        "both VTEP MACs published",
        Duration::from_secs(30),
        || {
            ["pn-a", "pn-b"].iter().all(|n| {
                jsonpath(
                    &c,
                    &["get", "node", n],
                    "{.metadata.annotations.networking\\.k3s-daas\\.io/vtep-mac}",
                )
                .len()
                    == 17
            })
        },
        &a1,
    );

    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!("{}---\n{}", echo_pod("pa", "pn-a"), echo_pod("pb", "pn-b")),
    );
    wait_running(&c, "pa", &a1);
    wait_running(&c, "pb", &a2);
    let ip_a = jsonpath(&c, &["get", "pod", "pa"], "{.status.podIP}");
    let ip_b = jsonpath(&c, &["get", "pod", "pb"], "{.status.podIP}");
    // Each pod's address comes from its node's assigned range.
    assert!(
        ip_a.starts_with(cidr_a.trim_end_matches("0/24")),
        "{ip_a} {cidr_a}"
    );
    assert!(
        ip_b.starts_with(cidr_b.trim_end_matches("0/24")),
        "{ip_b} {cidr_b}"
    );

    // Pod to pod across the nodes, both ways, and the server sees the client's pod IP (no
    // masquerade inside the cluster CIDR).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ask(&c, "pa", &ip_b, 8080) != format!("pb {ip_a}") {
        if std::time::Instant::now() > deadline {
            let diag = diagnostics(&lab, &c, &ip_b);
            panic!("pa does not reach pb\n{diag}\nagent b log:\n{}", a2.log());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(ask(&c, "pb", &ip_a, 8080), format!("pa {ip_b}"));

    // To the LAN: masqueraded as the node's IP, by the agent's table (not the CNI plugin).
    let _echo = LanEcho::start(&lab, 18090);
    wait_for(
        &c,
        "pa reaches the LAN as its node",
        Duration::from_secs(20),
        || ask(&c, "pa", &LAN_GATEWAY.to_string(), 18090) == format!("lan {}", Lab::node_ip(1)),
        &a1,
    );
    let ns_a = lab.node_ns(1);
    let table = in_ns(&ns_a, "nft", &["list", "table", "ip", "daas-podnet"]);
    assert!(table.contains("masquerade"), "{table}");
    assert!(
        table.contains(&format!("ip saddr {cidr_a} ip daddr 10.42.0.0/16 return")),
        "{table}"
    );

    // The overlay as programmed on node a: device, route, neighbour, forwarding entry.
    let link = in_ns(&ns_a, "ip", &["-d", "link", "show", "daas.1"]);
    assert!(
        link.contains("vxlan id 1") && link.contains("dstport 8472"),
        "{link}"
    );
    assert!(
        link.contains(&format!("local {}", Lab::node_ip(1))),
        "{link}"
    );
    let mac_b = jsonpath(
        &c,
        &["get", "node", "pn-b"],
        "{.metadata.annotations.networking\\.k3s-daas\\.io/vtep-mac}",
    );
    let vtep_b = cidr_b.trim_end_matches("/24").to_string();
    let fdb = in_ns(&ns_a, "bridge", &["fdb", "show", "dev", "daas.1"]);
    assert!(
        fdb.contains(&format!("{mac_b} dst {}", Lab::node_ip(2))),
        "{fdb}"
    );
    let neigh = in_ns(&ns_a, "ip", &["neigh", "show", "dev", "daas.1"]);
    assert!(
        neigh.contains(&format!("{vtep_b} lladdr {mac_b} PERMANENT")),
        "{neigh}"
    );

    // Tampering: the route to b's pods deleted by hand is put back by the agent.
    let route = || in_ns(&ns_a, "ip", &["route", "show", &cidr_b]);
    assert!(
        route().contains(&format!("via {vtep_b} dev daas.1")),
        "{}",
        route()
    );
    in_ns(&ns_a, "ip", &["route", "del", &cidr_b, "dev", "daas.1"]);
    assert_eq!(route().trim(), "");
    wait_for(
        &c,
        "the deleted route repaired",
        Duration::from_secs(20),
        || route().contains(&format!("via {vtep_b} dev daas.1")),
        &a1,
    );
    assert_eq!(ask(&c, "pa", &ip_b, 8080), format!("pb {ip_a}"));

    // Adversaries: with node a's own credential, changing its pod CIDR or node b's is refused
    // (403, NodeRestriction); even an admin may not change a pod CIDR once set (422).
    let token = std::fs::read_to_string(a1.dir.join("data").join("credential.token")).unwrap();
    let as_node = |args: &[&str]| {
        let mut a = vec!["--token", token.trim()];
        a.extend_from_slice(args);
        c.kubectl(&a)
    };
    let patch = r#"{"spec":{"podCIDR":"10.42.200.0/24","podCIDRs":["10.42.200.0/24"]}}"#;
    // The credential is node a's: it can read its Node.
    let own = as_node(&["get", "node", "pn-a", "-o", "name"]);
    assert!(own.status.success(), "{}", stderr(&own));
    // Its own: the pod CIDR is immutable once set (422, before NodeRestriction's 403 for a
    // node that tries to set it after registration).
    // (`-v=6` logs each request with its response status.)
    let o = as_node(&[
        "-v=6", "patch", "node", "pn-a", "--type", "merge", "-p", patch,
    ]);
    assert!(
        stderr(&o).contains("status=\"422 Unprocessable Entity\"")
            && stderr(&o).contains("spec.podCIDRs: Forbidden: node updates may not change podCIDR"),
        "{}",
        stderr(&o)
    );
    // Another node's: the Node authorizer (403).
    let o = as_node(&[
        "-v=6", "patch", "node", "pn-b", "--type", "merge", "-p", patch,
    ]);
    assert!(
        stderr(&o).contains("status=\"403 Forbidden\"")
            && stderr(&o).contains("Error from server (Forbidden)")
            && stderr(&o).contains("User \"system:node:pn-a\" cannot patch resource \"nodes\""),
        "{}",
        stderr(&o)
    );
    // The admin: the same rule (422).
    let o = c.kubectl(&[
        "-v=6", "patch", "node", "pn-b", "--type", "merge", "-p", patch,
    ]);
    assert!(
        stderr(&o).contains("status=\"422 Unprocessable Entity\"")
            && stderr(&o).contains(
                "The Node \"pn-b\" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"
            ),
        "{}",
        stderr(&o)
    );
    // Unauthenticated: 401.
    let o = c.kubectl(&[
        "-v=6",
        "--token",
        "not-a-credential",
        "patch",
        "node",
        "pn-b",
        "--type",
        "merge",
        "-p",
        patch,
    ]);
    assert!(
        stderr(&o).contains("status=\"401 Unauthorized\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        jsonpath(&c, &["get", "node", "pn-b"], "{.spec.podCIDR}"),
        cidr_b
    );

    // A node deleted: its route, neighbour and forwarding entry leave the other node.
    c.ok(&["delete", "pod", "pb", "--wait=false"]);
    drop(a2);
    c.ok(&["delete", "node", "pn-b"]);
    wait_for(
        &c,
        "node b's overlay entries removed",
        Duration::from_secs(20),
        || {
            route().trim().is_empty()
                && !in_ns(&ns_a, "bridge", &["fdb", "show", "dev", "daas.1"]).contains(&mac_b)
        },
        &a1,
    );
}

/// Bytes and packets of the named counter of table `inet wgtest` in `ns`.
fn counter(ns: &str, name: &str) -> (u64, u64) {
    let out = in_ns(
        ns,
        "nft",
        &["-j", "list", "counter", "inet", "wgtest", name],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get("counter"))
        .unwrap_or_else(|| panic!("{out}"))
        .clone();
    (c["packets"].as_u64().unwrap(), c["bytes"].as_u64().unwrap())
}

#[test]
fn wireguard_backend_carries_pod_traffic_encrypted_over_udp_51820() {
    let mut lab = Lab::new();
    let c = Cluster::start_in(&lab, &[]);
    let cfg = serde_json::json!({"pod_cidr": null, "flannel_backend": "wireguard"});
    let a1 = start_agent_in(&c, &mut lab, "wg-a", 1, cfg.clone());
    let a2 = start_agent_in(&c, &mut lab, "wg-b", 2, cfg);
    wait_node_ready(&c, &a1, "wg-a");
    wait_node_ready(&c, &a2, "wg-b");
    let key_ann = "{.metadata.annotations.networking\\.k3s-daas\\.io/wireguard-public-key}";
    let ep_ann = "{.metadata.annotations.networking\\.k3s-daas\\.io/wireguard-endpoint}";
    wait_for(
        &c,
        "both nodes publish a WireGuard key and endpoint",
        Duration::from_secs(30),
        || {
            [("wg-a", 1), ("wg-b", 2)].iter().all(|(n, i)| {
                jsonpath(&c, &["get", "node", n], key_ann).len() == 44
                    && jsonpath(&c, &["get", "node", n], ep_ann)
                        == format!("{}:51820", Lab::node_ip(*i))
            })
        },
        &a1,
    );
    // No VXLAN: no VTEP MAC published, no VXLAN device; the key file is private.
    assert_eq!(
        jsonpath(
            &c,
            &["get", "node", "wg-a"],
            "{.metadata.annotations.networking\\.k3s-daas\\.io/vtep-mac}"
        ),
        ""
    );
    let ns_a = lab.node_ns(1);
    assert!(!Lab::run_in(&ns_a, "ip", &["link", "show", "daas.1"])
        .status
        .success());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(a1.dir.join("data").join("wireguard.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Counters on node a's LAN interface: WireGuard, VXLAN, and plaintext pod traffic.
    let rules = "table inet wgtest {\n\
        counter wg {}\n counter vx {}\n counter plain {}\n\
        set seen { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic; }\n\
        chain out { type filter hook postrouting priority 0; policy accept;\n\
        oifname \"eth0\" udp dport 51820 counter name wg\n\
        oifname \"eth0\" udp dport 8472 counter name vx\n\
        oifname \"eth0\" ip daddr 10.42.0.0/16 add @seen { ip saddr . ip daddr . meta l4proto . th dport } counter name plain\n\
        oifname \"eth0\" ip saddr 10.42.0.0/16 add @seen { ip saddr . ip daddr . meta l4proto . th dport } counter name plain\n }\n}\n";
    let mut child = Lab::cmd_in(&ns_a, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
    }
    assert!(child.wait().unwrap().success());

    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!("{}---\n{}", echo_pod("pa", "wg-a"), echo_pod("pb", "wg-b")),
    );
    wait_running(&c, "pa", &a1);
    wait_running(&c, "pb", &a2);
    let ip_a = jsonpath(&c, &["get", "pod", "pa"], "{.status.podIP}");
    let ip_b = jsonpath(&c, &["get", "pod", "pb"], "{.status.podIP}");
    let cidr_b = jsonpath(&c, &["get", "node", "wg-b"], "{.spec.podCIDR}");

    // Pod to pod across the nodes, both ways, with the pods' own addresses.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ask(&c, "pa", &ip_b, 8080) != format!("pb {ip_a}") {
        if std::time::Instant::now() > deadline {
            let mut diag = diagnostics(&lab, &c, &ip_b);
            for i in [1, 2] {
                let o = Lab::run_in(&lab.node_ns(i), "ip", &["-s", "link", "show", "daas-wg"]);
                diag.push_str(&format!(
                    "--- node {i} daas-wg\n{}{}\n",
                    stdout(&o),
                    stderr(&o)
                ));
            }
            panic!(
                "pa does not reach pb over wireguard\n{diag}\nagent a log:\n{}\nagent b log:\n{}",
                a1.log(),
                a2.log()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(ask(&c, "pb", &ip_a, 8080), format!("pa {ip_b}"));
    let route = in_ns(&ns_a, "ip", &["route", "show", &cidr_b]);
    assert!(route.contains("dev daas-wg"), "{route}");

    // A bulk transfer pod to pod: all of it crosses the LAN as WireGuard datagrams.
    let before = counter(&ns_a, "wg");
    // The receiver: `nc -l` in pb, counting what it got, in a kubectl exec of its own.
    let server = c
        .kubectl_cmd(&["exec", "pb", "--", "sh", "-c", // busybox nc exits when its stdin ends and the peer half-closes, cutting the
            // transfer: its stdin is a FIFO held open by a background sleep.
            "rm -f /tmp/f; mkfifo /tmp/f; (sleep 20 > /tmp/f 2>/dev/null &); nc -l -p 9000 < /tmp/f | wc -c"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    const MB: u64 = 8;
    let t0 = std::time::Instant::now();
    let o = c.kubectl(&[
        "exec",
        "pa",
        "--",
        "sh",
        "-c",
        &format!("dd if=/dev/zero bs=1048576 count={MB} 2>/dev/null | nc -w 2 {ip_b} 9000"),
    ]);
    let took = t0.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    let received = server.wait_with_output().unwrap();
    let got: u64 = stdout(&received).trim().parse().unwrap_or(0);
    assert_eq!(
        got,
        MB * 1048576,
        "bytes received by pb ({}); sender: {}\nagent a log:\n{}",
        stderr(&received),
        stderr(&o),
        a1.log()
    );
    let after = counter(&ns_a, "wg");
    eprintln!(
        "wireguard: {MB} MiB pod to pod in {:.2}s ({:.1} MiB/s, including kubectl exec)",
        took.as_secs_f64(),
        MB as f64 / took.as_secs_f64()
    );
    assert!(
        after.1 - before.1 >= MB * 1048576,
        "UDP 51820 bytes {before:?} -> {after:?}"
    );
    assert_eq!(counter(&ns_a, "vx").0, 0, "no VXLAN packets");
    assert_eq!(
        counter(&ns_a, "plain").0,
        0,
        "no plaintext pod packets on the LAN"
    );

    // A datagram from an endpoint that is no Node's is ignored; the tunnel keeps working.
    let o = Lab::run_in(
        &lab.lan,
        "sh",
        &[
            "-c",
            &format!(
                "printf 'not wireguard' | /bin/busybox nc -u -w 1 {} 51820",
                Lab::node_ip(1)
            ),
        ],
    );
    let _ = o;
    assert_eq!(ask(&c, "pa", &ip_b, 8080), format!("pb {ip_a}"));
}
