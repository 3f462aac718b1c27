//! Node lifecycle against a real `daas up` and real staked hollow nodes: an overloaded master
//! (SIGSTOPped for three grace periods) slashes no honest staker and its nodes stay or come back
//! Ready; a staker whose node really stopped is Unknown within the grace period, its pod is
//! evicted and its stake is cut on the ledger, while the heartbeating node's stake is untouched.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::hollow::Hollow;
use crate::common::Cluster;

const GRACE: u64 = 8;

/// Sends SIGCONT to a stopped server when dropped (also when the test fails).
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of this test's own `daas up` child.
        unsafe {
            libc::kill(self.0 as i32, libc::SIGCONT);
        }
    }
}

fn wait_until(c: &Cluster, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn ready(c: &Cluster, node: &str) -> String {
    crate::common::node_ready(c, node)
}

fn taints(c: &Cluster, node: &str) -> String {
    c.ok(&["get", "node", node, "-o", "jsonpath={.spec.taints[*].key}"])
}

/// The Sui address whose stake backs `node` (set by the master from the ledger).
fn owner(c: &Cluster, node: &str) -> String {
    let mut addr = String::new();
    wait_until(
        c,
        &format!("{node}'s stake owner"),
        Duration::from_secs(60),
        || {
            addr = c.ok(&[
                "get",
                "node",
                node,
                "-o",
                "jsonpath={.metadata.annotations.k3s-daas\\.io/sui-address}",
            ]);
            !addr.is_empty()
        },
    );
    addr
}

/// The stake's `slashed_total` on the ledger.
fn slashed_total(c: &Cluster, addr: &str) -> u64 {
    crate::common::account(c, addr)["stake"]["slashed_total"]
        .as_u64()
        .unwrap_or(0)
}

fn start_cluster() -> Cluster {
    Cluster::start_with(&[
        "--token-cache-seconds",
        "0",
        "--node-grace-seconds",
        &GRACE.to_string(),
        "--node-slash-delay-seconds",
        "2",
        // Pods leave a silent node at once (upstream's default tolerates it for 300 s).
        "--default-unreachable-toleration-seconds",
        "0",
    ])
}

#[test]
fn overloaded_master_slashes_no_honest_staker() {
    let c = start_cluster();
    let _h = Hollow::start(&c, "ov", 2, "127.5.0.1", 2);
    let nodes = ["ov-0", "ov-1"];
    wait_until(&c, "2 Ready hollow nodes", Duration::from_secs(120), || {
        nodes.iter().all(|n| ready(&c, n) == "True")
    });
    let owners: Vec<String> = nodes.iter().map(|n| owner(&c, n)).collect();
    for o in &owners {
        assert_eq!(slashed_total(&c, o), 0);
    }

    // The master stops (SIGSTOP: what CPU starvation or a swap storm looks like from inside) for
    // three grace periods while its nodes keep trying to renew their Leases.
    let pid = c.pid().expect("server running");
    // SAFETY: kill(2) on the pid of this test's own `daas up` child; Resume sends SIGCONT.
    unsafe {
        libc::kill(pid as i32, libc::SIGSTOP);
    }
    let resume = Resume(pid);
    std::thread::sleep(Duration::from_secs(3 * GRACE));
    drop(resume);

    // For grace + slash delay + margin after it resumes, nobody is slashed, and every node is
    // Ready and untainted at the end.
    let watch_until = Instant::now() + Duration::from_secs(2 * GRACE + 6);
    let mut seen_unknown = Vec::new();
    while Instant::now() < watch_until {
        for n in nodes {
            if ready(&c, n) == "Unknown" && !seen_unknown.contains(&n) {
                seen_unknown.push(n);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("nodes seen Unknown after the stop: {seen_unknown:?}");
    for (n, o) in nodes.iter().zip(&owners) {
        assert_eq!(
            slashed_total(&c, o),
            0,
            "honest {n} slashed for the master's stop\n{}",
            c.log()
        );
    }
    let log = c.log();
    assert!(!log.contains("node slashed"), "{log}");
    // Not even marked Unknown: after the stop the controller either noticed its own stall and
    // gave every node a fresh grace period, or lost and won back its leader Lease and started
    // afresh (also a fresh grace period for every node). Code that compared the nodes' renewTime
    // with the master's clock declared both dead here.
    assert!(
        seen_unknown.is_empty(),
        "honest nodes declared dead after the master's stop: {seen_unknown:?}\n{log}"
    );
    eprintln!(
        "stall noticed by the controller: {}",
        log.contains("node lifecycle controller stalled")
    );
    wait_until(
        &c,
        "both nodes Ready again",
        Duration::from_secs(30),
        || {
            nodes
                .iter()
                .all(|n| ready(&c, n) == "True" && !taints(&c, n).contains("unreachable"))
        },
    );
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(
        !metrics.contains("daas_slashing_events_total{"),
        "{metrics}"
    );
}

#[test]
fn stopped_staker_is_unknown_evicted_and_slashed_the_live_one_is_not() {
    let c = start_cluster();
    let mut dead = Hollow::start(&c, "sa", 1, "127.6.0.1", 2);
    let _live = Hollow::start(&c, "sb", 1, "127.7.0.1", 2);
    wait_until(&c, "sa-0 and sb-0 Ready", Duration::from_secs(120), || {
        ready(&c, "sa-0") == "True" && ready(&c, "sb-0") == "True"
    });
    let (dead_owner, live_owner) = (owner(&c, "sa-0"), owner(&c, "sb-0"));
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: victim, namespace: default}\nspec:\n  nodeName: sa-0\n  containers: [{name: c, image: registry.local/web:1}]\n",
    );
    wait_until(
        &c,
        "victim Running on sa-0",
        Duration::from_secs(60),
        || c.ok(&["get", "pod", "victim", "-o", "jsonpath={.status.phase}"]) == "Running",
    );

    // The staker's node stops for good.
    dead.kill();
    let killed = Instant::now();
    wait_until(
        &c,
        "sa-0 Unknown",
        Duration::from_secs(3 * GRACE + 10),
        || ready(&c, "sa-0") == "Unknown",
    );
    let after = killed.elapsed();
    eprintln!("sa-0 Unknown {:.1}s after the kill", after.as_secs_f64());
    assert!(
        after >= Duration::from_secs(GRACE - 2),
        "declared dead before the grace period: {after:?}"
    );
    wait_until(&c, "victim evicted", Duration::from_secs(30), || {
        let o = c.kubectl(&["get", "pod", "victim", "-o", "name"]);
        !o.status.success()
    });
    assert!(taints(&c, "sa-0").contains("node.kubernetes.io/unreachable"));
    // Slashed on the ledger once silent for grace + slash delay.
    wait_until(&c, "sa-0's stake slashed", Duration::from_secs(60), || {
        slashed_total(&c, &dead_owner) > 0
    });
    assert!(c.log().contains("node slashed"));
    // The heartbeating node is Ready, untainted and its stake untouched.
    assert_eq!(ready(&c, "sb-0"), "True");
    assert!(!taints(&c, "sb-0").contains("unreachable"));
    assert_eq!(slashed_total(&c, &live_owner), 0);
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains("daas_slashing_events_total{node=\"sa-0\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("daas_slashing_events_total{node=\"sb-0\"}"));
}

/// Keeps a test-made node alive: renews its Lease (as the admin) every second until dropped.
pub struct KeepAlive {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl KeepAlive {
    pub fn start(c: &Cluster, node: &str) -> KeepAlive {
        let stop = Arc::new(AtomicBool::new(false));
        let kubeconfig = c.kubeconfig();
        let home = c.dir.path().join("home");
        let node = node.to_string();
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let now = rfc3339_now();
                let lease = format!(
                    "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {node}, namespace: kube-node-lease}}\nspec: {{holderIdentity: {node}, renewTime: \"{now}\"}}\n"
                );
                if let Ok(mut child) = Command::new("kubectl")
                    .args(["apply", "-f", "-"])
                    .env("KUBECONFIG", &kubeconfig)
                    .env("HOME", &home)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    if let Some(mut stdin) = child.stdin.take() {
                        use std::io::Write;
                        let _ = stdin.write_all(lease.as_bytes());
                    }
                    let _ = child.wait();
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        KeepAlive {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Now as RFC 3339 with microseconds (UTC), like a kubelet's Lease renewTime.
fn rfc3339_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[test]
fn rfc3339_now_is_well_formed() {
    let s = rfc3339_now();
    assert_eq!(s.len(), 27, "{s}");
    assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
}
