//! Leader election of a real `daas` master: it takes the `kube-controller-manager` and
//! `kube-scheduler` Leases at once, keeps an identity Lease that the `kubernetes` Endpoints are
//! made from, releases its Leases on SIGTERM (a restarted master leads at once, long before the
//! lease duration; after SIGKILL it reclaims its own previous run's Leases), and nobody but the control plane writes these Leases: a user-tier staker and
//! a node get 403, an unauthenticated client 401.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, stderr, Cluster};

const FLAGS: &[&str] = &[
    "--chain-listen",
    "127.0.0.1:0",
    // Long enough that only a released Lease explains a quick takeover after a restart.
    "--leader-elect-lease-duration",
    "60s",
    "--leader-elect-renew-deadline",
    "40s",
    "--leader-elect-retry-period",
    "500ms",
    "--identity-lease-renew-interval",
    "1s",
    "--endpoint-ttl",
    "3s",
];

fn lease(c: &Cluster, name: &str) -> Value {
    serde_json::from_str(&c.ok(&["get", "lease", "-n", "kube-system", name, "-o", "json"]))
        .expect("lease json")
}

fn wait(c: &Cluster, what: &str, within: Duration, f: impl Fn() -> bool) {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}; log:\n{}", c.log());
}

fn holder(c: &Cluster, name: &str) -> String {
    let o = c.kubectl(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        name,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    if o.status.success() {
        common::stdout(&o)
    } else {
        String::new()
    }
}

fn identity_leases(c: &Cluster) -> Vec<Value> {
    let v: Value = serde_json::from_str(&c.ok(&[
        "get",
        "leases",
        "-n",
        "kube-system",
        "-l",
        "apiserver.kubernetes.io/identity=kube-apiserver",
        "-o",
        "json",
    ]))
    .expect("lease list");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn port_of(url: &str) -> String {
    url.rsplit(':').next().unwrap_or("").to_string()
}

#[test]
fn a_master_leads_at_once_lists_itself_and_hands_over_on_sigterm() {
    let mut c = Cluster::start_with(FLAGS);
    wait(&c, "the controller lease", Duration::from_secs(20), || {
        !holder(&c, "kube-controller-manager").is_empty()
    });
    wait(&c, "the scheduler lease", Duration::from_secs(20), || {
        !holder(&c, "kube-scheduler").is_empty()
    });
    let cm = lease(&c, "kube-controller-manager");
    let identity = cm["spec"]["holderIdentity"].as_str().unwrap().to_string();
    assert_eq!(holder(&c, "kube-scheduler"), identity);
    assert_eq!(cm["spec"]["leaseDurationSeconds"], 60);
    assert_eq!(cm["spec"]["leaseTransitions"], 0);
    let (id, random) = identity.split_once('_').expect("<master id>_<random>");
    assert!(!random.is_empty());

    // Its identity Lease names its address; the kubernetes Endpoints are made from it.
    wait(&c, "the identity lease", Duration::from_secs(20), || {
        identity_leases(&c).len() == 1
    });
    let ident = &identity_leases(&c)[0];
    assert_eq!(ident["metadata"]["name"], format!("kube-apiserver-{id}"));
    let port = port_of(&c.server_url());
    assert_eq!(
        ident["metadata"]["annotations"]["k3s-daas.io/advertise-port"],
        port.as_str()
    );
    let ip = ident["metadata"]["annotations"]["k3s-daas.io/advertise-address"]
        .as_str()
        .unwrap()
        .to_string();
    let ep = c.ok(&[
        "get",
        "endpoints",
        "kubernetes",
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}:{.subsets[*].ports[*].port}",
    ]);
    assert_eq!(ep, format!("{ip}:{port}"));

    // The controllers run: a ReplicaSet gets its pods.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    wait(&c, "the ReplicaSet's pods", Duration::from_secs(20), || {
        c.ok(&["get", "pods", "-l", "app=web", "-o", "name"])
            .lines()
            .count()
            == 2
    });

    // SIGTERM: the Leases are released, so the restarted master (a new identity) leads at
    // once instead of waiting out the 60 s lease.
    let status = c.signal(libc::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let log = c.log();
    assert_eq!(
        log.matches("lease released").count(),
        2,
        "both Leases are released on SIGTERM; log:\n{log}"
    );
    let restarted = Instant::now();
    c.spawn();
    wait(&c, "a new holder", Duration::from_secs(30), || {
        let h = holder(&c, "kube-controller-manager");
        !h.is_empty() && h != identity
    });
    assert!(
        restarted.elapsed() < Duration::from_secs(40),
        "took {:?}",
        restarted.elapsed()
    );
    let cm = lease(&c, "kube-controller-manager");
    assert_eq!(cm["spec"]["leaseTransitions"], 1);
    let new_identity = cm["spec"]["holderIdentity"].as_str().unwrap();
    // Same host and data dir: the same master id, another process.
    assert!(
        new_identity.starts_with(&format!("{id}_")),
        "{new_identity}"
    );
    wait(&c, "the scheduler lease", Duration::from_secs(20), || {
        holder(&c, "kube-scheduler") == new_identity
    });
    let new_identity = new_identity.to_string();

    // SIGKILL: nothing is released, but the restarted master (same host and data dir, so the
    // same master id) reclaims the Lease of its own previous run instead of waiting 60 s.
    c.kill();
    let restarted = Instant::now();
    c.spawn();
    wait(&c, "a third holder", Duration::from_secs(30), || {
        let h = holder(&c, "kube-controller-manager");
        !h.is_empty() && h != new_identity
    });
    assert!(
        restarted.elapsed() < Duration::from_secs(40),
        "took {:?}",
        restarted.elapsed()
    );
    assert_eq!(
        lease(&c, "kube-controller-manager")["spec"]["leaseTransitions"],
        2
    );
}

fn refused(c: &Cluster, kubeconfig: &Path, args: &[&str], needle: &str) {
    let o = c.kubectl_as(kubeconfig, args);
    assert!(!o.status.success(), "kubectl {args:?} succeeded");
    let e = stderr(&o);
    assert!(e.contains(needle), "kubectl {args:?}: {e}");
}

#[test]
fn only_the_control_plane_writes_its_leases() {
    let c = Cluster::start_with(FLAGS);
    let chain = c.chain_url();
    wait(&c, "the controller lease", Duration::from_secs(20), || {
        !holder(&c, "kube-controller-manager").is_empty()
    });
    wait(&c, "the identity lease", Duration::from_secs(20), || {
        identity_leases(&c).len() == 1
    });
    let identity = holder(&c, "kube-controller-manager");
    let ident = identity_leases(&c)[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let (alice_key, _) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let (alice, joined) = c.join(&chain, &alice_key);
    let alice_ns = crate::common::joined_namespace(&joined);
    let (bob_key, _) = c.staker(
        &chain,
        "bob",
        &[
            "--amount",
            "1000",
            "--role",
            "node",
            "--node-id",
            "bob-node",
        ],
    );
    let (bob, _) = c.join(&chain, &bob_key);
    let forged = c.dir.path().join("forged.yaml");
    std::fs::write(
        &forged,
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: kube-apiserver-evil\n  namespace: kube-system\n  labels: {apiserver.kubernetes.io/identity: kube-apiserver}\n  annotations: {k3s-daas.io/advertise-address: 203.0.113.66, k3s-daas.io/advertise-port: \"6443\"}\nspec: {holderIdentity: kube-apiserver-evil, leaseDurationSeconds: 3600}\n",
    )
    .unwrap();
    let forged = forged.to_str().unwrap();
    for kc in [&alice, &bob] {
        for name in ["kube-controller-manager", "kube-scheduler", ident.as_str()] {
            refused(
                &c,
                kc,
                &["delete", "lease", "-n", "kube-system", name],
                "(Forbidden)",
            );
            refused(
                &c,
                kc,
                &[
                    "patch",
                    "lease",
                    "-n",
                    "kube-system",
                    name,
                    "--type=merge",
                    "-p",
                    "{\"spec\":{\"holderIdentity\":\"intruder\"}}",
                ],
                "(Forbidden)",
            );
        }
        refused(&c, kc, &["create", "-f", forged], "(Forbidden)");
    }
    // In her own namespace alice may write Leases, but one that claims to be an API server
    // identity names no master: only kube-system's count.
    let own = c.dir.path().join("own.yaml");
    std::fs::write(
        &own,
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: kube-apiserver-evil\n  labels: {apiserver.kubernetes.io/identity: kube-apiserver}\n  annotations: {k3s-daas.io/advertise-address: 203.0.113.66, k3s-daas.io/advertise-port: \"6443\"}\nspec: {holderIdentity: kube-apiserver-evil, leaseDurationSeconds: 3600}\n",
    )
    .unwrap();
    let o = c.kubectl_as(
        &alice,
        &["create", "-n", &alice_ns, "-f", own.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Several identity renewals (1 s) wake the endpoint reconciler meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    // No credential at all.
    let anon = c.kubectl(&[
        "--token",
        "not-a-token",
        "delete",
        "lease",
        "-n",
        "kube-system",
        "kube-controller-manager",
    ]);
    assert!(!anon.status.success());
    assert!(stderr(&anon).contains("Unauthorized"), "{}", stderr(&anon));
    assert_eq!(holder(&c, "kube-controller-manager"), identity);
    assert_eq!(identity_leases(&c).len(), 1);
    let ep = c.ok(&[
        "get",
        "endpoints",
        "kubernetes",
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}",
    ]);
    assert!(!ep.contains("203.0.113.66"), "{ep}");
}
