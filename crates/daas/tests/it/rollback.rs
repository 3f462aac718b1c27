//! Rollback detection end to end: the host puts back an older (validly sealed) `state.redb`; the
//! master finds its revision below the one anchored on the ledger and refuses to start. The
//! embedded ledger (`<data>/ledger/`) is left alone: the threat is a host that can copy files but
//! cannot roll back the Sui chain.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Cluster;

fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// `daas up --no-agent` on the cluster's data dir with `args`, not yet run.
fn up(c: &Cluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_daas"));
    cmd.arg("up")
        .arg("--no-agent")
        .arg("--data-dir")
        .arg(c.data_dir())
        .args(["--listen", "127.0.0.1:0", "--chain-listen", "127.0.0.1:0"])
        .args(args);
    cmd
}

#[test]
fn rolled_back_store_is_refused_and_the_newest_one_starts() {
    let args = ["--anchor-interval-seconds", "1"];
    let mut c = Cluster::start_with(&args);
    c.ok(&["create", "configmap", "before-copy", "--from-literal=k=v"]);
    c.kill();
    // The store is two files: `state.redb` and its write-ahead log `state.redb.wal`.
    let state = c.data_dir().join("state.redb");
    let log = c.data_dir().join("state.redb.wal");
    let old = c.dir.path().join("old-state.redb");
    let old_log = c.dir.path().join("old-state.redb.wal");
    std::fs::copy(&state, &old).expect("copy the store aside");
    std::fs::copy(&log, &old_log).expect("copy its log aside");

    // Second run on the same store: more objects, anchored past the copy's revision.
    c.spawn();
    for i in 0..5 {
        c.ok(&[
            "create",
            "configmap",
            &format!("after-copy-{i}"),
            "--from-literal=k=v",
        ]);
    }
    let rv: u64 = c
        .ok(&[
            "get",
            "configmap",
            "after-copy-4",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .trim()
        .parse()
        .expect("resourceVersion");
    let deadline = Instant::now() + Duration::from_secs(60);
    let anchored = loop {
        let m = c.ok(&["get", "--raw", "/metrics"]);
        let anchored = gauge(&m, "daas_state_anchored_revision").unwrap_or(0.0) as u64;
        if anchored >= rv {
            assert!(
                gauge(&m, "daas_state_anchors_total").unwrap_or(0.0) >= 1.0,
                "{m}"
            );
            break anchored;
        }
        assert!(
            Instant::now() < deadline,
            "revision {rv} was not anchored (anchored {anchored}):\n{m}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    c.kill();

    // The host rolls the store file back but keeps the newer log: the store refuses to open
    // (the log starts after the revision the store file holds).
    let newest = c.dir.path().join("newest-state.redb");
    let newest_log = c.dir.path().join("newest-state.redb.wal");
    std::fs::copy(&state, &newest).expect("keep the newest store");
    std::fs::copy(&log, &newest_log).expect("keep the newest log");
    std::fs::copy(&old, &state).expect("roll the store back");
    let out = up(&c, &args).output().expect("run daas up");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("write-ahead log"),
        "daas up must refuse a store file older than its log; stderr:\n{err}"
    );
    // The refusal changed nothing: put the newest log back to be sure, then roll both back.
    std::fs::copy(&newest_log, &log).expect("newest log back");

    // The host rolls the store back (store and log: not the ledger).
    std::fs::copy(&old, &state).expect("roll the store back");
    std::fs::copy(&old_log, &log).expect("roll the log back");
    let kubeconfig = c.kubeconfig();
    let _ = std::fs::remove_file(&kubeconfig);
    let mut child = up(&c, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daas up");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("daas up kept running on a rolled-back store");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert!(
        !status.success(),
        "daas up must fail on a rolled-back store; stderr:\n{err}"
    );
    assert!(err.contains("state store rolled back"), "{err}");
    // "... the store is at revision S, but revision A is anchored on the ledger ..."
    let num_after = |marker: &str| -> u64 {
        let at = err
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} not in {err}"))
            + marker.len();
        err[at..]
            .chars()
            .take_while(|ch| ch.is_ascii_digit())
            .collect::<String>()
            .parse()
            .expect("revision")
    };
    let (store_rev, anchored_rev) = (
        num_after("the store is at revision "),
        num_after("but revision "),
    );
    assert!(
        store_rev < rv && anchored_rev >= anchored,
        "store {store_rev}, anchored {anchored_rev}: {err}"
    );
    // It served nothing: no kubeconfig was written for this run.
    assert!(
        !kubeconfig.exists(),
        "a kubeconfig was written by the refused start"
    );

    // The newest store starts again, with everything in it.
    std::fs::copy(&newest, &state).expect("put the newest store back");
    std::fs::copy(&newest_log, &log).expect("put the newest log back");
    c.spawn();
    c.ok(&["get", "configmap", "before-copy"]);
    c.ok(&["get", "configmap", "after-copy-4"]);
    c.kill();
}
