//! Kill -9 a writer process mid-stream and check every acknowledged write survived, with one
//! writer (a commit per write) and with 16 concurrent writers (writes sharing group commits).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use daas_store::{EmbeddedStore, SealingKey, Store};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// One `ACK <key> <value> <revision> <commits>` line.
struct Ack {
    key: String,
    value: String,
    rev: i64,
    commits: u64,
}

fn parse(line: &str) -> Option<Ack> {
    let mut parts = line.split(' ');
    if parts.next() != Some("ACK") {
        return None;
    }
    Some(Ack {
        key: parts.next()?.to_string(),
        value: parts.next()?.to_string(),
        rev: parts.next()?.parse().ok()?,
        commits: parts.next()?.parse().ok()?,
    })
}

/// Run the writer with `writers` concurrent writers, SIGKILL it after `wanted` acks, and return
/// every ack it printed (including the lines still in the pipe).
fn write_then_kill(dir: &Path, writers: usize, wanted: usize) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
        .arg(dir)
        .arg(KEY_HEX)
        .arg(u64::MAX.to_string())
        .arg(writers.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    while acked.len() < wanted {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            other => panic!("writer stopped early after {} acks: {other:?}", acked.len()),
        };
        acked.push(parse(&line).unwrap_or_else(|| panic!("bad line {line}")));
    }
    // SIGKILL while the writer is still going.
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "writer should have been killed");
    // Lines already in the pipe were acknowledged too.
    acked.extend(lines.map_while(Result::ok).filter_map(|l| parse(&l)));
    acked
}

/// Reopen the killed writer's store: every acknowledged write is there with its value and
/// revision, the history is dense and replays every one of them, and the store keeps working.
async fn check_nothing_acknowledged_lost(dir: &Path, acked: &[Ack]) {
    let store =
        EmbeddedStore::open(dir, SealingKey::from_hex(KEY_HEX).expect("key")).expect("reopen");
    let current = store.current_revision().await.expect("rev");
    let mut by_rev = BTreeMap::new();
    for a in acked {
        assert!(
            by_rev.insert(a.rev, a.key.as_str()).is_none(),
            "revision {} acknowledged twice",
            a.rev
        );
    }
    let last_acked = *by_rev.keys().next_back().expect("acks");
    assert!(
        current >= last_acked,
        "revision went back: {current} < {last_acked}"
    );
    for a in acked {
        let kv = store
            .get(&a.key)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged key {} lost", a.key));
        assert_eq!(kv.value, a.value.as_bytes(), "value of {}", a.key);
        assert_eq!(kv.mod_revision, a.rev, "revision of {}", a.key);
    }
    let listed = store.list("/crash/").await.expect("list");
    assert!(listed.items.len() >= acked.len());
    assert_eq!(listed.revision, current);
    // The history is intact too: every revision replays, the acknowledged ones as acknowledged.
    let mut w = store.watch("/crash/", 0).await.expect("watch");
    for rev in 1..=current {
        let ev = w.recv().await.expect("event");
        assert_eq!(ev.kv.mod_revision, rev, "history has a gap");
        if let Some(key) = by_rev.get(&rev) {
            assert_eq!(&ev.kv.key, key, "event at revision {rev}");
        }
    }
    // And the store keeps working after the crash.
    let next = store
        .create("/crash/after", b"ok")
        .await
        .expect("write after crash");
    assert_eq!(next.mod_revision, current + 1);
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = write_then_kill(dir.path(), 1, 200);
    // One writer: acks come in revision order, 1, 2, 3, ...
    let revs: Vec<_> = acked.iter().map(|a| a.rev).collect();
    assert_eq!(revs, (1..=acked.len() as i64).collect::<Vec<_>>());
    check_nothing_acknowledged_lost(dir.path(), &acked).await;
}

#[tokio::test]
async fn acknowledged_group_commits_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = write_then_kill(dir.path(), 16, 800);
    let commits = acked.iter().map(|a| a.commits).max().unwrap_or(0);
    eprintln!(
        "{} acknowledged writes in at most {commits} commits",
        acked.len()
    );
    check_nothing_acknowledged_lost(dir.path(), &acked).await;
}
