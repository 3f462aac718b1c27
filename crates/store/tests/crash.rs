//! Kill -9 a writer process mid-stream and check every acknowledged write survived.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use daas_store::{EmbeddedStore, SealingKey, Store};

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
        .arg(dir.path())
        .arg(KEY_HEX)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();

    let mut acked: Vec<(String, String, i64)> = Vec::new();
    while acked.len() < 200 {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            other => panic!("writer stopped early after {} acks: {other:?}", acked.len()),
        };
        let mut parts = line.split(' ');
        assert_eq!(parts.next(), Some("ACK"), "bad line {line}");
        let key = parts.next().expect("key").to_string();
        let value = parts.next().expect("value").to_string();
        let rev: i64 = parts.next().expect("rev").parse().expect("rev number");
        acked.push((key, value, rev));
    }
    // SIGKILL while the writer is still going.
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "writer should have been killed");
    // Lines already in the pipe were acknowledged too.
    for line in lines.map_while(Result::ok) {
        let mut parts = line.split(' ');
        if parts.next() != Some("ACK") {
            continue;
        }
        if let (Some(k), Some(v), Some(Ok(r))) =
            (parts.next(), parts.next(), parts.next().map(str::parse))
        {
            acked.push((k.to_string(), v.to_string(), r));
        }
    }

    let store = EmbeddedStore::open(dir.path(), SealingKey::from_hex(KEY_HEX).expect("key"))
        .expect("reopen");
    let current = store.current_revision().await.expect("rev");
    let last_acked = acked.last().map(|a| a.2).expect("acks");
    assert!(
        current >= last_acked,
        "revision went back: {current} < {last_acked}"
    );
    for (key, value, rev) in &acked {
        let kv = store
            .get(key)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged key {key} lost"));
        assert_eq!(kv.value, value.as_bytes(), "value of {key}");
        assert_eq!(kv.mod_revision, *rev, "revision of {key}");
    }
    let listed = store.list("/crash/").await.expect("list");
    assert!(listed.items.len() >= acked.len());
    assert_eq!(listed.revision, current);
    // The history is intact too: replay every acknowledged event.
    let mut w = store.watch("/crash/", 0).await.expect("watch");
    for (key, _, rev) in &acked {
        let ev = w.recv().await.expect("event");
        assert_eq!(&ev.kv.key, key);
        assert_eq!(ev.kv.mod_revision, *rev);
    }
    // And the store keeps working after the crash.
    let next = store
        .create("/crash/after", b"ok")
        .await
        .expect("write after crash");
    assert_eq!(next.mod_revision, current + 1);
}
