//! Kill -9 a writer process mid-stream and check every acknowledged write survived, with one
//! writer (a commit per write) and with 16 concurrent writers (writes sharing group commits);
//! with a small write-ahead log (a checkpoint every few batches); and with the writer aborting
//! itself halfway through a log append (torn last frame), right after an append, and right
//! after a checkpoint. A frame damaged in the middle of the log fails the open instead.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use daas_store::{EmbeddedStore, SealingKey, Store, StoreError};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// One `ACK <key> <value> <revision> <commits> <checkpoints>` line.
struct Ack {
    key: String,
    value: String,
    rev: i64,
    commits: u64,
    checkpoints: u64,
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
        checkpoints: parts.next()?.parse().ok()?,
    })
}

/// Run the writer with `writers` concurrent writers, SIGKILL it after `wanted` acks, and return
/// every ack it printed (including the lines still in the pipe).
fn write_then_kill(dir: &Path, writers: usize, wanted: usize) -> Vec<Ack> {
    write_then_kill_with(dir, writers, wanted, &[])
}

fn write_then_kill_with(
    dir: &Path,
    writers: usize,
    wanted: usize,
    env: &[(&str, &str)],
) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
        .envs(env.iter().copied())
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

/// Run the writer (`writers` concurrent writers, at most `max` writes) until it exits on its
/// own, e.g. by aborting at a crash point; its acks and its exit status.
fn write_until_exit(
    dir: &Path,
    writers: usize,
    max: u64,
    env: &[(&str, &str)],
) -> (Vec<Ack>, ExitStatus) {
    let out = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
        .envs(env.iter().copied())
        .arg(dir)
        .arg(KEY_HEX)
        .arg(max.to_string())
        .arg(writers.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("run writer");
    let acked = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse)
        .collect();
    (acked, out.status)
}

fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
    EmbeddedStore::open(dir, SealingKey::from_hex(KEY_HEX).expect("key"))
}

/// Offsets of the frames of the log's current cycle, found from the headers alone (magic,
/// payload length at 4..8, 28-byte header): the chain from offset 0 up to the first zeroed
/// header.
fn frame_offsets(wal: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 28 <= wal.len() && &wal[at..at + 4] == b"DWAL" {
        out.push(at);
        let len = u32::from_le_bytes(wal[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        at += 28 + len;
    }
    out
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

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_across_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A 16 KiB log holds a few dozen batches: the writer checkpoints over and over.
    let acked = write_then_kill_with(dir.path(), 16, 800, &[("STORE_WAL_BYTES", "16384")]);
    let checkpoints = acked.iter().map(|a| a.checkpoints).max().unwrap_or(0);
    assert!(checkpoints >= 2, "only {checkpoints} checkpoints");
    check_nothing_acknowledged_lost(dir.path(), &acked).await;
}

#[tokio::test]
async fn torn_last_frame_is_discarded_and_the_store_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One writer, so the torn frame holds exactly the write after the last ack.
    let (acked, status) = write_until_exit(
        dir.path(),
        1,
        1000,
        &[("STORE_CRASH_POINT", "mid-append:40")],
    );
    assert!(!status.success(), "the writer should have aborted");
    assert_eq!(acked.len(), 40, "acks before the torn append");
    check_nothing_acknowledged_lost(dir.path(), &acked).await;
    // The torn write was never acknowledged and is gone (it took no revision): the checker's
    // `/crash/after` came right after the 40 acknowledged writes.
    let store = open(dir.path()).expect("second reopen: torn tail no longer there");
    assert!(store.get("/crash/00000040").await.expect("get").is_none());
    let after = store
        .get("/crash/after")
        .await
        .expect("get")
        .expect("after");
    assert_eq!(after.mod_revision, 41);
}

#[tokio::test]
async fn crash_right_after_a_log_append_replays_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (acked, status) = write_until_exit(
        dir.path(),
        16,
        100_000,
        &[("STORE_CRASH_POINT", "after-append:30")],
    );
    assert!(!status.success(), "the writer should have aborted");
    check_nothing_acknowledged_lost(dir.path(), &acked).await;
    // The 31st frame was durable but never applied nor answered: replay brought it back.
    let store = open(dir.path()).expect("reopen");
    let last_acked = acked.iter().map(|a| a.rev).max().expect("acks");
    assert!(store.current_revision().await.expect("rev") > last_acked + 1);
}

#[tokio::test]
async fn crash_right_after_a_checkpoint_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (acked, status) = write_until_exit(
        dir.path(),
        16,
        100_000,
        &[
            ("STORE_WAL_BYTES", "16384"),
            ("STORE_CRASH_POINT", "after-checkpoint:3"),
        ],
    );
    assert!(!status.success(), "the writer should have aborted");
    assert!(
        acked.iter().any(|a| a.checkpoints == 3),
        "three checkpoints before the crash"
    );
    check_nothing_acknowledged_lost(dir.path(), &acked).await;
}

#[tokio::test]
async fn damaged_frame_in_the_middle_of_the_log_fails_the_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (acked, status) = write_until_exit(
        dir.path(),
        1,
        1000,
        &[("STORE_CRASH_POINT", "after-append:20")],
    );
    assert!(!status.success(), "the writer should have aborted");
    assert_eq!(acked.len(), 20);
    let wal_path = dir.path().join("store.redb.wal");
    let mut wal = std::fs::read(&wal_path).expect("read log");
    let frames = frame_offsets(&wal);
    assert_eq!(
        frames.len(),
        21,
        "one frame per write, the last one unanswered"
    );
    // The host flips one byte inside the 10th frame's sealed payload.
    let victim = frames[9];
    wal[victim + 40] ^= 0x01;
    std::fs::write(&wal_path, &wal).expect("write log");
    match open(dir.path()) {
        Err(StoreError::WalCorrupt { offset, .. }) => assert_eq!(offset, victim as u64),
        other => panic!("expected WalCorrupt, got {other:?}"),
    }
    // Refusing is not repairing: the log is untouched and still refused.
    assert_eq!(std::fs::read(&wal_path).expect("read log"), wal);
    assert!(matches!(
        open(dir.path()),
        Err(StoreError::WalCorrupt { .. })
    ));
}
