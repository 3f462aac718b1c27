//! `daas hollow`: simulated staked nodes against a real `daas up --no-agent`: they stake, join,
//! become Ready, run a Deployment's pods (reported Running with pod IPs from their pod CIDRs); a
//! killed hollow process's node goes Unknown within the grace period and its pods move to the
//! live nodes; a hollow node cannot write another node's Lease or status (403).

use std::time::{Duration, Instant};

use crate::common::hollow::Hollow;
use crate::common::Cluster;

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// (node, Ready condition status) of every Node.
fn node_ready(c: &Cluster) -> Vec<(String, String)> {
    let out = c.ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|l| {
            let (n, s) = l.split_once(' ')?;
            Some((n.to_string(), s.to_string()))
        })
        .collect()
}

/// (pod, node, phase, podIP) of the Deployment's pods that are not being deleted.
fn pods(c: &Cluster) -> Vec<(String, String, String, String)> {
    let out = c.ok(&[
        "get",
        "pods",
        "-n",
        "default",
        "-l",
        "app=hollow-web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.status.podIP} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 5 || !f[4].is_empty() {
                return None;
            }
            Some((f[0].into(), f[1].into(), f[2].into(), f[3].into()))
        })
        .collect()
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: hollow-web, namespace: default}
spec:
  replicas: 20
  selector: {matchLabels: {app: hollow-web}}
  template:
    metadata: {labels: {app: hollow-web}}
    spec:
      containers: [{name: web, image: registry.local/web:1}]
"#;

/// kubectl with only a bearer token (a hollow node's credential), no kubeconfig.
fn kubectl_token(c: &Cluster, token: &str, args: &[&str]) -> std::process::Output {
    c.command("kubectl")
        .args(["--server", &c.server_url(), "--token", token])
        .arg("--insecure-skip-tls-verify=true")
        .args(args)
        .env("KUBECONFIG", c.dir.path().join("no-kubeconfig"))
        .env("HOME", c.dir.path().join("home"))
        .output()
        .expect("run kubectl")
}

#[test]
fn hollow_nodes_run_pods_fail_over_and_stay_confined() {
    let c = Cluster::start_with(&[
        "--node-grace-seconds",
        "8",
        "--default-unreachable-toleration-seconds",
        "0",
    ]);
    let mut a = Hollow::start(&c, "ha", 4, "127.3.0.1", 3);
    let mut b = Hollow::start(&c, "hb", 1, "127.4.0.1", 3);
    let names = ["ha-0", "ha-1", "ha-2", "ha-3", "hb-0"];
    wait_until("5 Ready hollow nodes", Duration::from_secs(120), || {
        let r = node_ready(&c);
        names
            .iter()
            .all(|n| r.iter().any(|(m, s)| m == n && s == "True"))
    });
    // Every node got its own pod CIDR and address and holds a Lease.
    let ip = c.ok(&[
        "get",
        "node",
        "ha-2",
        "-o",
        "jsonpath={.status.addresses[0].address}",
    ]);
    assert_eq!(ip, "127.3.0.3");
    for n in names {
        let cidr = c.ok(&["get", "node", n, "-o", "jsonpath={.spec.podCIDR}"]);
        assert!(cidr.contains('/'), "{n}: pod CIDR {cidr:?}");
        let holder = c.ok(&[
            "get",
            "lease",
            n,
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        assert_eq!(holder, n);
    }

    // Adversary: node ha-0's own credential may renew ha-0's Lease, never hb-0's Lease or status.
    let token = std::fs::read_to_string(
        c.dir
            .path()
            .join("hollow-ha")
            .join("ha-0")
            .join("data")
            .join("credential.token"),
    )
    .expect("ha-0 credential");
    let token = token.trim();
    let renew = r#"{"spec":{"renewTime":"2020-01-01T00:00:00.000000Z"}}"#;
    let own = kubectl_token(
        &c,
        token,
        &[
            "patch",
            "lease",
            "ha-0",
            "-n",
            "kube-node-lease",
            "--type=merge",
            "-p",
            r#"{"spec":{"holderIdentity":"ha-0"}}"#,
        ],
    );
    assert!(
        own.status.success(),
        "own lease: {}",
        crate::common::stderr(&own)
    );
    let other = kubectl_token(
        &c,
        token,
        &[
            "patch",
            "lease",
            "hb-0",
            "-n",
            "kube-node-lease",
            "--type=merge",
            "-p",
            renew,
        ],
    );
    assert!(!other.status.success());
    assert!(
        crate::common::stderr(&other).contains("Forbidden"),
        "another node's lease: {}",
        crate::common::stderr(&other)
    );
    let status = kubectl_token(
        &c,
        token,
        &[
            "patch",
            "node",
            "hb-0",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Forged"}]}}"#,
        ],
    );
    assert!(!status.status.success());
    assert!(
        crate::common::stderr(&status).contains("Forbidden"),
        "another node's status: {}",
        crate::common::stderr(&status)
    );
    // An unauthenticated client gets nothing either.
    let anon = kubectl_token(&c, "not-a-credential", &["get", "nodes"]);
    assert!(!anon.status.success());
    assert!(
        crate::common::stderr(&anon).contains("Unauthorized"),
        "{}",
        crate::common::stderr(&anon)
    );

    // ha-0's own pod watch, as its agent holds it (fieldSelector spec.nodeName=ha-0, routed by
    // the store to that node only), open before the pods exist: every event it carries must be
    // one of ha-0's pods, and it must carry all of them.
    let mut own_watch = c
        .command("kubectl")
        .args(["--server", &c.server_url(), "--token", token])
        .arg("--insecure-skip-tls-verify=true")
        .args([
            "get",
            "pods",
            "-n",
            "default",
            "--field-selector",
            "spec.nodeName=ha-0",
        ])
        .args(["-w", "--no-headers"])
        .args([
            "-o",
            "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName",
        ])
        .env("KUBECONFIG", c.dir.path().join("no-kubeconfig"))
        .env("HOME", c.dir.path().join("home"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl watch");
    // Adversary: the node may not watch Secrets (only get the ones its pods reference).
    let secrets = kubectl_token(
        &c,
        token,
        &["get", "secrets", "-A", "-w", "--request-timeout=5s"],
    );
    assert!(!secrets.status.success());
    assert!(
        crate::common::stderr(&secrets).contains("Forbidden"),
        "node watching secrets: {}",
        crate::common::stderr(&secrets)
    );
    std::thread::sleep(Duration::from_secs(2));

    // 20 pods, all Running on hollow nodes with an address from their node's pod CIDR.
    c.ok_stdin(&["apply", "-f", "-"], DEPLOYMENT);
    wait_until("20 Running pods", Duration::from_secs(120), || {
        let p = pods(&c);
        p.len() == 20
            && p.iter()
                .all(|(_, _, phase, ip)| phase == "Running" && !ip.is_empty())
    });
    let before = pods(&c);
    for (pod, node, _, ip) in &before {
        assert!(names.contains(&node.as_str()), "{pod} on {node}");
        let cidr = c.ok(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]);
        let prefix = cidr
            .rsplit_once('.')
            .map(|x| x.0)
            .unwrap_or_default()
            .to_string();
        assert!(
            ip.starts_with(&format!("{prefix}.")),
            "{pod}: {ip} not in {cidr}"
        );
    }
    // Give the watch a moment for the last status writes, then read what it carried.
    std::thread::sleep(Duration::from_secs(3));
    let _ = own_watch.kill();
    let out = own_watch.wait_with_output().expect("watch output");
    let carried = String::from_utf8_lossy(&out.stdout).to_string();
    let mut seen = std::collections::BTreeSet::new();
    for l in carried.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.get(1), Some(&"ha-0"), "ha-0's watch carried {l:?}");
        seen.insert(f.first().map(|s| s.to_string()).unwrap_or_default());
    }
    let on_a0: std::collections::BTreeSet<String> = before
        .iter()
        .filter(|p| p.1 == "ha-0")
        .map(|p| p.0.clone())
        .collect();
    assert!(
        on_a0.is_subset(&seen),
        "ha-0's watch missed its pods: saw {seen:?}, ha-0 runs {on_a0:?} ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_b: Vec<_> = before.iter().filter(|p| p.1 == "hb-0").collect();
    assert!(!on_b.is_empty(), "no pod was scheduled on hb-0: {before:?}");

    // The hb process dies: hb-0 goes Unknown within the grace period, its pods move.
    b.kill();
    let killed = Instant::now();
    wait_until("hb-0 Unknown", Duration::from_secs(40), || {
        node_ready(&c)
            .iter()
            .any(|(n, s)| n == "hb-0" && s == "Unknown")
    });
    eprintln!("hb-0 Unknown after {:.1}s", killed.elapsed().as_secs_f64());
    wait_until(
        "pods replaced on live nodes",
        Duration::from_secs(90),
        || {
            let p = pods(&c);
            p.len() == 20
                && p.iter().all(|(_, n, phase, _)| {
                    n != "hb-0" && n.starts_with("ha-") && phase == "Running"
                })
        },
    );
    eprintln!("pods moved after {:.1}s", killed.elapsed().as_secs_f64());
    // The live nodes stayed Ready throughout.
    let r = node_ready(&c);
    for n in ["ha-0", "ha-1", "ha-2", "ha-3"] {
        assert!(r.iter().any(|(m, s)| m == n && s == "True"), "{n}: {r:?}");
    }
    a.kill();
}
