//! `daas up` as a whole cluster: its local staked worker runs a Deployment created through
//! kubectl, and Ctrl-C stops everything it started. Without the parts a worker needs it says what
//! is missing and serves the control plane alone.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{pids_with, stdout, Cluster};

fn wait(c: &Cluster, what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\nserver log tail:\n{}",
            c.log()
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Containers and tasks left in the `k8s.io` namespace of the (stopped) local containerd: start
/// it again on its own configuration and ask it.
fn leftover_containers(runtime: &Path) -> (String, String) {
    let config = runtime.join("containerd/config.toml");
    let sock = runtime.join("containerd/containerd.sock");
    let _ = std::fs::remove_file(&sock);
    let mut child = Command::new("containerd")
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start containerd");
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .arg("-a")
            .arg(&sock)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let containers = loop {
        let o = ctr(&["containers", "ls", "-q"]);
        if o.status.success() {
            break stdout(&o);
        }
        assert!(Instant::now() < deadline, "containerd did not come back");
        std::thread::sleep(Duration::from_millis(200));
    };
    let tasks = stdout(&ctr(&["tasks", "ls", "-q"]));
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    daas_agent::runtime::unmount_all_under(runtime);
    (containers, tasks)
}

#[test]
fn up_runs_a_deployment_on_its_local_worker_and_ctrl_c_stops_everything() {
    if !common::agent::unsafe_is_root() {
        eprintln!("skipped: needs root (containerd)");
        return;
    }
    let mut c = Cluster::start_with_local_agent(&[
        "--node-name",
        "upnode",
        "--bridge-name",
        "daasup0",
        "--pod-cidr",
        "10.245.0.0/24",
        "--kubelet-port",
        "0",
    ]);
    wait(&c, "local node Ready", Duration::from_secs(120), || {
        stdout(&c.kubectl(&[
            "get",
            "node",
            "upnode",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])) == "True"
    });
    // The local node staked on the embedded ledger like any staker host.
    let cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(c.data_dir().join("agent/staker-config.json")).expect("staker config"),
    )
    .expect("staker config JSON");
    let addr = cfg["sui_wallet_address"].as_str().expect("address");
    let account = common::account(&c, addr);
    assert_eq!(account["stake"]["node_id"], "upnode", "{account}");
    assert_eq!(account["stake"]["role"], 1, "{account}");

    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=localhost/k3s-daas/busybox:local",
        "--replicas=2",
        "--",
        "sleep",
        "3600",
    ]);
    wait(&c, "2 web pods Running", Duration::from_secs(120), || {
        stdout(&c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.spec.nodeName}/{.status.phase} {end}",
        ]))
        .trim()
            == "upnode/Running upnode/Running"
    });
    // The pods do not inherit the short slice of the master's threads, though their
    // containerd was started from one (SCHED_RESET_ON_FORK): every `sleep 3600` of a pod on
    // this machine has the kernel's default slice.
    if daas_sched::kernel_has_custom_slices() {
        let pods: Vec<daas_sched::ThreadScheduling> = common::pids_with("sleep\u{0}3600\u{0}")
            .into_iter()
            .filter_map(|pid| daas_sched::of_thread(pid).ok())
            .collect();
        assert!(pods.len() >= 2, "{pods:?}");
        for p in &pods {
            assert!(
                p.slice.is_some_and(|s| s > daas_sched::SHORT_SLICE) && !p.reset_on_fork,
                "{pods:?}"
            );
        }
    }
    let data = c.data_dir();
    let data_s = data.to_string_lossy().into_owned();
    // Something really runs and is mounted, so the checks below can fail.
    assert!(
        pids_with(&data_s).len() >= 3,
        "containerd and shims should be running"
    );
    assert!(!daas_agent::runtime::mounts_under(&data).is_empty());

    let ids = |c: &Cluster| {
        stdout(&c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.status.containerStatuses[0].containerID} {end}",
        ]))
    };
    let before = ids(&c);
    let status = c.interrupt(Duration::from_secs(90));
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", c.log());
    let left = pids_with(&data_s);
    assert!(left.is_empty(), "processes left running: {left:?}");
    let mounts = daas_agent::runtime::mounts_under(&data);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let bridge = Command::new("ip")
        .args(["link", "show", "daasup0"])
        .output()
        .expect("ip");
    assert!(!bridge.status.success(), "bridge daasup0 left behind");
    let (containers, tasks) = leftover_containers(&data.join("agent/data/runtime"));
    assert_eq!(
        (containers.trim(), tasks.trim()),
        ("", ""),
        "containers/tasks left in k8s.io"
    );

    // Started again on the same data dir, the same node (already staked) runs the Deployment
    // again: new containers, really running.
    c.spawn();
    let running_again = || {
        let now = ids(&c);
        let phases = stdout(&c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.spec.nodeName}/{.status.phase} {end}",
        ]));
        phases.trim() == "upnode/Running upnode/Running"
            && now.split_whitespace().count() == 2
            && now
                .split_whitespace()
                .all(|id| !before.split_whitespace().any(|b| b == id))
    };
    wait(
        &c,
        "web pods running again",
        Duration::from_secs(120),
        running_again,
    );
    assert!(pids_with(&data_s).len() >= 3, "containers should run again");
    let status = c.interrupt(Duration::from_secs(90));
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", c.log());
    assert!(pids_with(&data_s).is_empty());
    assert!(daas_agent::runtime::mounts_under(&data).is_empty());
}

#[test]
fn up_without_containerd_says_what_is_missing_and_serves_alone() {
    let mut c = Cluster::start_with_local_agent(&["--containerd", "/nonexistent/containerd"]);
    // The control plane serves (Cluster waited for /readyz); the message names the missing part
    // and the install command.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.log().contains("No local worker") {
        assert!(Instant::now() < deadline, "no message; log:\n{}", c.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = c.log();
    assert!(log.contains("containerd (package containerd)"), "{log}");
    assert!(
        log.contains("apt-get install containerd runc containernetworking-plugins busybox-static"),
        "{log}"
    );
    assert!(!c.data_dir().join("agent").exists());
    assert_eq!(c.ok(&["get", "nodes", "-o", "name"]).trim(), "");
    c.ok(&["create", "namespace", "still-serving"]);
    let status = c.interrupt(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", c.log());
}

#[test]
fn up_no_agent_skips_the_local_worker_silently() {
    let mut c = Cluster::start_with(&["--containerd", "/nonexistent/containerd"]);
    c.ok(&["get", "--raw", "/readyz"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!c.log().contains("No local worker"), "{}", c.log());
    assert!(!c.data_dir().join("agent").exists());
    // A write after the start-up anchor, so shutdown has a newer revision to anchor.
    c.ok(&["create", "namespace", "written-before-stop"]);
    // SIGTERM (systemd's stop) ends it as cleanly as Ctrl-C.
    let status = c.signal(libc::SIGTERM, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", c.log());
    assert!(
        c.log().contains("store revision anchored on shutdown"),
        "{}",
        c.log()
    );
}
