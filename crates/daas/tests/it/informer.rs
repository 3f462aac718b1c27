//! End-to-end: the controllers read from shared informer caches inside a real `daas up`; a
//! ReplicaSet scaled quickly up and down must never overshoot (its controller reads its own
//! creates and deletes) and must settle at exactly the last size.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{Cluster, Streaming};

const RS: &str = r#"apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: burst
spec:
  replicas: 0
  selector:
    matchLabels: {app: burst}
  template:
    metadata:
      labels: {app: burst}
    spec:
      containers:
      - name: c
        image: busybox
        resources:
          requests: {cpu: 10m, memory: 8Mi}
"#;

/// What the pod watch has shown so far: every pod name ever seen (each create has a new
/// generated name) and, per pod still present, whether it is being deleted.
#[derive(Default)]
struct Seen {
    created: BTreeSet<String>,
    present: BTreeMap<String, bool>,
    max_live: usize,
    lines: usize,
}

impl Seen {
    fn live(&self) -> usize {
        self.present.values().filter(|deleting| !**deleting).count()
    }

    /// One `--output-watch-events` line: EVENT NAME DELETION-TIMESTAMP.
    fn line(&mut self, l: &str) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [ev, name, del] = f[..] else { return };
        self.lines += 1;
        self.created.insert(name.to_string());
        match ev {
            "DELETED" => {
                self.present.remove(name);
            }
            _ => {
                self.present.insert(name.to_string(), del != "<none>");
            }
        }
        self.max_live = self.max_live.max(self.live());
    }

    fn drain(&mut self, w: &Streaming) {
        while let Ok(l) = w.lines.try_recv() {
            self.line(&l);
        }
    }
}

#[test]
fn replicaset_scaled_up_and_down_quickly_never_overshoots() {
    let c = Cluster::start();
    c.add_ready_staked_nodes();
    c.ok_stdin(&["apply", "-f", "-"], RS);
    let watch = Streaming::start(
        &c,
        &[
            "get",
            "pods",
            "-l",
            "app=burst",
            "-w",
            "--output-watch-events",
            "--no-headers",
            "-o",
            "custom-columns=EV:.type,NAME:.object.metadata.name,DEL:.object.metadata.deletionTimestamp",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    // 0 -> 50 -> 5 -> 30 as fast as kubectl goes: the controller may see any prefix of
    // these sizes, but never creates more pods than the increases add up to (50 + 25) and
    // never has more than 50 live pods.
    for n in ["50", "5", "30"] {
        c.ok(&["scale", "rs/burst", &format!("--replicas={n}")]);
    }
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut settled_since: Option<Instant> = None;
    loop {
        seen.drain(&watch);
        assert!(
            seen.max_live <= 50,
            "{} live pods at once (at most 50 were ever asked for)",
            seen.max_live
        );
        assert!(
            seen.created.len() <= 75,
            "{} pods created for increases of 50 + 25",
            seen.created.len()
        );
        if seen.live() == 30 {
            let since = *settled_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(5) {
                break;
            }
        } else {
            settled_since = None;
        }
        assert!(
            Instant::now() < deadline,
            "did not settle at 30 live pods: {} live, {} created, {} watch lines\n{}\n{}\n{}",
            seen.live(),
            seen.created.len(),
            seen.lines,
            c.ok(&["get", "pods", "-l", "app=burst", "-o", "wide"]),
            c.ok(&["get", "nodes", "-o", "wide"]),
            c.ok(&["get", "events"]),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The API agrees with the watch: exactly 30 pods not being deleted, and the status says 30.
    let listed = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=burst",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{"\n"}{end}"#,
    ]);
    let live: Vec<&str> = listed
        .lines()
        .filter(|l| l.split_whitespace().count() == 1)
        .collect();
    assert_eq!(live.len(), 30, "{listed}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replicas = c.ok(&["get", "rs", "burst", "-o", "jsonpath={.status.replicas}"]);
        if replicas.trim() == "30" {
            break;
        }
        assert!(Instant::now() < deadline, "status.replicas {replicas}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every live pod is bound to one of the nodes (the scheduler read its cache too).
    let bound = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=burst",
        "-o",
        r#"jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}"#,
    ]);
    assert!(
        bound.lines().all(|n| n == "node-1" || n == "node-2"),
        "{bound}"
    );
}
