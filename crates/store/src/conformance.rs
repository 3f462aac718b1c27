//! Backend-independent conformance suite: the same assertions run against every `Store`.
//!
//! Revisions are checked relative to the store's revision at the start of each case, so the
//! suite also runs on a shared etcd (whose empty-store revision is 1, not 0). Each case uses its
//! own key prefix; cases run sequentially on one store.

use std::time::Duration;

use crate::{Event, EventKind, Store, StoreError};

const RECV_TIMEOUT: Duration = Duration::from_secs(10);

async fn recv(rx: &mut crate::WatchReceiver) -> Event {
    match tokio::time::timeout(RECV_TIMEOUT, rx.recv()).await {
        Ok(Some(ev)) => Event::clone(&ev),
        Ok(None) => panic!("watch ended unexpectedly"),
        Err(_) => panic!("timed out waiting for a watch event"),
    }
}

async fn expect_quiet(rx: &mut crate::WatchReceiver) {
    if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("unexpected extra watch event: {ev:?}");
    }
}

pub(crate) async fn run_all(s: &dyn Store) {
    crud(s, "/conf/crud/").await;
    list_prefix(s, "/conf/list/").await;
    revisions_and_versions(s, "/conf/rev/").await;
    watch_replay_then_live(s, "/conf/watch/").await;
    watch_errors(s, "/conf/werr/").await;
    binary_and_empty_values(s, "/conf/bin/").await;
    compaction(s, "/conf/compact/").await;
    list_at_revision(s, "/conf/listat/").await;
    list_range_pages(s, "/conf/range/").await;
}

pub(crate) async fn crud(s: &dyn Store, p: &str) {
    let k = format!("{p}a");
    let start = s.current_revision().await.expect("rev");

    assert_eq!(s.get(&k).await.expect("get"), None);
    let c = s.create(&k, b"v1").await.expect("create");
    assert_eq!(c.key, k);
    assert_eq!(c.value, b"v1");
    assert_eq!(c.version, 1);
    assert_eq!(c.create_revision, c.mod_revision);
    assert!(c.mod_revision > start);
    assert_eq!(s.current_revision().await.expect("rev"), c.mod_revision);
    assert_eq!(s.get(&k).await.expect("get"), Some(c.clone()));

    match s.create(&k, b"again").await {
        Err(StoreError::AlreadyExists(key)) => assert_eq!(key, k),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    match s.update(&k, b"v2", c.mod_revision - 1).await {
        Err(StoreError::Conflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!(key, k);
            assert_eq!(expected, c.mod_revision - 1);
            assert_eq!(actual, c.mod_revision);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // A failed write does not move the revision.
    assert_eq!(s.current_revision().await.expect("rev"), c.mod_revision);

    let u = s.update(&k, b"v2", c.mod_revision).await.expect("update");
    assert_eq!(u.value, b"v2");
    assert_eq!(u.version, 2);
    assert_eq!(u.create_revision, c.create_revision);
    assert!(u.mod_revision > c.mod_revision);
    assert_eq!(s.get(&k).await.expect("get"), Some(u.clone()));

    // Stale CAS after a successful update.
    assert!(matches!(
        s.update(&k, b"v3", c.mod_revision).await,
        Err(StoreError::Conflict { .. })
    ));

    let missing = format!("{p}missing");
    assert!(
        matches!(s.update(&missing, b"x", 0).await, Err(StoreError::NotFound(key)) if key == missing)
    );
    assert!(matches!(
        s.update(&missing, b"x", 5).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.delete(&missing, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.delete(&missing, Some(0)).await,
        Err(StoreError::NotFound(_))
    ));

    match s.delete(&k, Some(c.mod_revision)).await {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!(expected, c.mod_revision);
            assert_eq!(actual, u.mod_revision);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let d = s.delete(&k, Some(u.mod_revision)).await.expect("delete");
    assert_eq!(d.key, k);
    assert_eq!(d.value, b"v2", "delete returns the last value");
    assert!(d.mod_revision > u.mod_revision);
    assert_eq!(d.create_revision, c.create_revision);
    assert_eq!(s.current_revision().await.expect("rev"), d.mod_revision);
    assert_eq!(s.get(&k).await.expect("get"), None);
    assert!(matches!(
        s.delete(&k, None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.update(&k, b"x", d.mod_revision).await,
        Err(StoreError::NotFound(_))
    ));

    // Re-create starts a new life: version 1, new create revision.
    let r = s.create(&k, b"v-new").await.expect("recreate");
    assert_eq!(r.version, 1);
    assert_eq!(r.create_revision, r.mod_revision);
    assert!(r.create_revision > d.mod_revision);
    let d2 = s.delete(&k, None).await.expect("unconditional delete");
    assert_eq!(d2.value, b"v-new");
}

pub(crate) async fn list_prefix(s: &dyn Store, p: &str) {
    for name in ["b", "a", "c/1", "ab", "c/0", "zz", "gone"] {
        s.create(&format!("{p}{name}"), name.as_bytes())
            .await
            .expect("create");
    }
    // Neighbours that share a textual prefix but are outside `p`.
    let outside = p.trim_end_matches('/').to_string();
    s.create(&format!("{outside}0"), b"x")
        .await
        .expect("create");
    s.create(&outside, b"x").await.expect("create");
    s.delete(&format!("{p}gone"), None).await.expect("delete");

    let l = s.list(p).await.expect("list");
    let keys: Vec<_> = l
        .items
        .iter()
        .map(|kv| kv.key.trim_start_matches(p).to_string())
        .collect();
    assert_eq!(keys, vec!["a", "ab", "b", "c/0", "c/1", "zz"]);
    for kv in &l.items {
        assert_eq!(kv.value, kv.key.trim_start_matches(p).as_bytes());
        assert!(kv.mod_revision <= l.revision);
    }
    assert_eq!(l.revision, s.current_revision().await.expect("rev"));

    let sub = s.list(&format!("{p}c/")).await.expect("list");
    assert_eq!(sub.items.len(), 2);
    assert_eq!(sub.items[0].key, format!("{p}c/0"));

    let none = s.list(&format!("{p}nothing/")).await.expect("list");
    assert!(none.items.is_empty());
    assert_eq!(none.revision, l.revision);

    // Keys with non-ASCII bytes sort bytewise.
    s.create(&format!("{p}é"), b"e").await.expect("create");
    let l2 = s.list(p).await.expect("list");
    assert_eq!(
        l2.items.last().map(|kv| kv.key.clone()),
        Some(format!("{p}é"))
    );
}

pub(crate) async fn revisions_and_versions(s: &dyn Store, p: &str) {
    let mut last = s.current_revision().await.expect("rev");
    let mut kvs = Vec::new();
    for i in 0..20 {
        let kv = s
            .create(&format!("{p}{i:02}"), format!("{i}").as_bytes())
            .await
            .expect("create");
        assert!(
            kv.mod_revision > last,
            "revisions must be strictly increasing"
        );
        assert_eq!(kv.mod_revision, last + 1, "one write, one revision");
        last = kv.mod_revision;
        assert_eq!(s.current_revision().await.expect("rev"), last);
        kvs.push(kv);
    }
    let k = format!("{p}05");
    let mut cur = kvs[5].clone();
    for n in 2..=6 {
        cur = s
            .update(&k, format!("gen{n}").as_bytes(), cur.mod_revision)
            .await
            .expect("update");
        assert_eq!(cur.version, n);
        assert_eq!(cur.create_revision, kvs[5].create_revision);
        assert_eq!(cur.mod_revision, last + 1);
        last = cur.mod_revision;
    }
    let got = s.get(&k).await.expect("get").expect("present");
    assert_eq!(got.version, 6);
    assert_eq!(got.value, b"gen6");
    // Other keys are untouched.
    assert_eq!(
        s.get(&format!("{p}06")).await.expect("get"),
        Some(kvs[6].clone())
    );
}

pub(crate) async fn watch_replay_then_live(s: &dyn Store, p: &str) {
    let start = s.current_revision().await.expect("rev");
    let a = format!("{p}a");
    let c1 = s.create(&a, b"a1").await.expect("create");
    let u1 = s.update(&a, b"a2", c1.mod_revision).await.expect("update");
    s.create("/conf/elsewhere/x", b"x")
        .await
        .expect("create outside prefix");
    let d1 = s.delete(&a, None).await.expect("delete");

    let mut w = s.watch(p, start).await.expect("watch");
    let mut late = s
        .watch(p, c1.mod_revision)
        .await
        .expect("watch from middle");

    let e1 = recv(&mut w).await;
    assert_eq!(e1.kind, EventKind::Put);
    assert_eq!(e1.kv, c1);
    assert_eq!(e1.prev, None);

    let e2 = recv(&mut w).await;
    assert_eq!(e2.kind, EventKind::Put);
    assert_eq!(e2.kv, u1);
    assert_eq!(e2.prev.as_ref(), Some(&c1));

    let e3 = recv(&mut w).await;
    assert_eq!(e3.kind, EventKind::Delete);
    assert_eq!(e3.kv.key, a);
    assert_eq!(e3.kv.value, b"a2");
    assert_eq!(e3.kv.mod_revision, d1.mod_revision);
    assert_eq!(e3.prev.as_ref(), Some(&u1));

    assert_eq!(recv(&mut late).await.kv.mod_revision, u1.mod_revision);
    assert_eq!(recv(&mut late).await.kv.mod_revision, d1.mod_revision);

    // Live.
    let b = s.create(&format!("{p}b"), b"b1").await.expect("create");
    s.create("/conf/elsewhere/y", b"y")
        .await
        .expect("create outside prefix");
    let b2 = s
        .update(&format!("{p}b"), b"b2", b.mod_revision)
        .await
        .expect("update");
    let l1 = recv(&mut w).await;
    assert_eq!((l1.kind, &l1.kv, &l1.prev), (EventKind::Put, &b, &None));
    let l2 = recv(&mut w).await;
    assert_eq!(
        (l2.kind, &l2.kv, l2.prev.as_ref()),
        (EventKind::Put, &b2, Some(&b))
    );
    assert_eq!(recv(&mut late).await.kv, b);
    assert_eq!(recv(&mut late).await.kv, b2);
    expect_quiet(&mut w).await;

    // A watch at the current revision only sees new events.
    let now = s.current_revision().await.expect("rev");
    let mut fresh = s.watch(p, now).await.expect("watch now");
    let db = s
        .delete(&format!("{p}b"), Some(b2.mod_revision))
        .await
        .expect("delete");
    let fd = recv(&mut fresh).await;
    assert_eq!(fd.kind, EventKind::Delete);
    assert_eq!(fd.kv.mod_revision, db.mod_revision);
    assert_eq!(fd.kv.value, b"b2");
    assert_eq!(fd.prev.as_ref(), Some(&b2));
    assert_eq!(recv(&mut w).await.kv.mod_revision, db.mod_revision);
    expect_quiet(&mut fresh).await;

    // Many events in a row keep their order.
    let before = s.current_revision().await.expect("rev");
    for i in 0..100 {
        s.create(&format!("{p}n{i:03}"), b"n")
            .await
            .expect("create");
    }
    let mut replay = s.watch(p, before).await.expect("watch");
    for i in 0..100 {
        let ev = recv(&mut w).await;
        assert_eq!(ev.kv.key, format!("{p}n{i:03}"));
        let rv = recv(&mut replay).await;
        assert_eq!(rv, ev);
    }
}

pub(crate) async fn watch_errors(s: &dyn Store, p: &str) {
    let cur = s.current_revision().await.expect("rev");
    match s.watch(p, cur + 10).await {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!(requested, cur + 10);
            assert!(current >= cur);
        }
        other => panic!("expected FutureRevision, got {:?}", other.map(|_| ())),
    }
    match s.compact(cur + 10).await {
        Err(StoreError::FutureRevision { .. }) => {}
        other => panic!("expected FutureRevision from compact, got {other:?}"),
    }
}

pub(crate) async fn binary_and_empty_values(s: &dyn Store, p: &str) {
    let bin: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let kv = s.create(&format!("{p}bin"), &bin).await.expect("create");
    assert_eq!(
        s.get(&format!("{p}bin"))
            .await
            .expect("get")
            .expect("present")
            .value,
        bin
    );
    let e = s.create(&format!("{p}empty"), b"").await.expect("create");
    assert_eq!(
        s.get(&format!("{p}empty"))
            .await
            .expect("get")
            .expect("present")
            .value,
        b""
    );
    let big = vec![0xabu8; 1 << 20];
    s.update(&format!("{p}bin"), &big, kv.mod_revision)
        .await
        .expect("update big");
    assert_eq!(
        s.get(&format!("{p}bin"))
            .await
            .expect("get")
            .expect("present")
            .value,
        big
    );
    s.delete(&format!("{p}empty"), Some(e.mod_revision))
        .await
        .expect("delete");
}

pub(crate) async fn compaction(s: &dyn Store, p: &str) {
    let k1 = s.create(&format!("{p}1"), b"one").await.expect("create");
    let k2 = s.create(&format!("{p}2"), b"two").await.expect("create");
    let k3 = s
        .update(&format!("{p}1"), b"one-b", k1.mod_revision)
        .await
        .expect("update");
    let cur = s.current_revision().await.expect("rev");
    assert_eq!(cur, k3.mod_revision);

    s.compact(k2.mod_revision).await.expect("compact");
    assert_eq!(
        s.compacted_revision().await.expect("compacted"),
        k2.mod_revision
    );
    // Compacting an older revision again is a no-op.
    s.compact(k1.mod_revision)
        .await
        .expect("compact older is a no-op");
    assert_eq!(
        s.compacted_revision().await.expect("compacted"),
        k2.mod_revision
    );

    match s.watch(p, k1.mod_revision).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, k1.mod_revision);
            assert_eq!(compacted, k2.mod_revision);
        }
        other => panic!("expected Compacted, got {:?}", other.map(|_| ())),
    }
    match s.watch(p, 0).await {
        Err(StoreError::Compacted { .. }) => {}
        other => panic!("expected Compacted for 0, got {:?}", other.map(|_| ())),
    }

    // Watching exactly from the compacted revision works and replays what is left.
    let mut w = s
        .watch(p, k2.mod_revision)
        .await
        .expect("watch at compacted");
    let ev = recv(&mut w).await;
    assert_eq!(ev.kv, k3);
    assert_eq!(ev.prev.as_ref(), Some(&k1));
    let k4 = s.create(&format!("{p}3"), b"three").await.expect("create");
    assert_eq!(recv(&mut w).await.kv, k4);

    // Live data is unaffected.
    let l = s.list(p).await.expect("list");
    let vals: Vec<_> = l.items.iter().map(|kv| kv.value.clone()).collect();
    assert_eq!(
        vals,
        vec![b"one-b".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert_eq!(s.get(&format!("{p}2")).await.expect("get"), Some(k2));

    // Compact everything up to now; a watch from now still works.
    let now = s.current_revision().await.expect("rev");
    s.compact(now).await.expect("compact to current");
    assert_eq!(s.compacted_revision().await.expect("compacted"), now);
    let mut w2 = s
        .watch(p, now)
        .await
        .expect("watch at current after full compaction");
    let k5 = s.create(&format!("{p}4"), b"four").await.expect("create");
    assert_eq!(recv(&mut w2).await.kv, k5);
    assert_eq!(recv(&mut w).await.kv, k5);
}

pub(crate) async fn list_at_revision(s: &dyn Store, p: &str) {
    let start = s.current_revision().await.expect("rev");
    let a1 = s.create(&format!("{p}a"), b"a1").await.expect("create");
    let b1 = s.create(&format!("{p}b"), b"b1").await.expect("create");
    // A key outside the prefix written in between is not part of the list.
    s.create(&format!("{}-other/x", p.trim_end_matches('/')), b"x")
        .await
        .expect("create");
    let snap = s.current_revision().await.expect("rev");
    let a2 = s
        .update(&format!("{p}a"), b"a2", a1.mod_revision)
        .await
        .expect("update");
    s.delete(&format!("{p}b"), None).await.expect("delete");
    let c1 = s.create(&format!("{p}c"), b"c1").await.expect("create");
    let prefix = p;

    let at = |rev| async move { s.list_at(prefix, rev).await.expect("list_at") };
    let then = at(snap).await;
    assert_eq!(then.revision, snap);
    assert_eq!(then.items, vec![a1.clone(), b1.clone()]);
    let first = at(a1.mod_revision).await;
    assert_eq!(first.items, vec![a1.clone()]);
    assert_eq!(at(start).await.items, vec![]);
    let now = s.current_revision().await.expect("rev");
    let latest = at(now).await;
    assert_eq!(latest.items, vec![a2, c1]);
    assert_eq!(latest.items, s.list(prefix).await.expect("list").items);

    match s.list_at(prefix, now + 10).await {
        Err(StoreError::FutureRevision { requested, current }) => {
            assert_eq!(requested, now + 10);
            assert_eq!(current, now);
        }
        other => panic!("expected FutureRevision, got {other:?}"),
    }
    s.compact(snap).await.expect("compact");
    // The compacted revision itself is still readable; anything older is gone.
    assert_eq!(at(snap).await.items, vec![a1.clone(), b1]);
    match s.list_at(prefix, a1.mod_revision).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, a1.mod_revision);
            assert_eq!(compacted, snap);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
}

pub(crate) async fn list_range_pages(s: &dyn Store, p: &str) {
    let mut v1 = Vec::new();
    for k in ["a", "b", "c", "d", "e"] {
        v1.push(
            s.create(&format!("{p}{k}"), k.as_bytes())
                .await
                .expect("create"),
        );
    }
    // Keys next to the prefix in key order are not part of the range.
    let other = format!("{}-other/x", p.trim_end_matches('/'));
    s.create(&other, b"x").await.expect("create");
    s.create(&format!("{}0", p.trim_end_matches('/')), b"y")
        .await
        .expect("create");
    let snap = s.current_revision().await.expect("rev");
    s.delete(&format!("{p}b"), None).await.expect("delete");
    let d2 = s
        .update(&format!("{p}d"), b"d2", v1[3].mod_revision)
        .await
        .expect("update");
    let f = s.create(&format!("{p}f"), b"f").await.expect("create");
    let now = s.current_revision().await.expect("rev");

    let page = |start: String, limit: usize, rev: Option<i64>| async move {
        s.list_range(p, &start, limit, rev)
            .await
            .expect("list_range")
    };
    // The current revision, two at a time: a, c | d2, e | f.
    let one = page(String::new(), 2, None).await;
    assert_eq!(one.revision, now);
    assert_eq!(one.items, vec![v1[0].clone(), v1[2].clone()]);
    assert_eq!(one.remaining, 3);
    let two = page(format!("{}\0", one.items[1].key), 2, None).await;
    assert_eq!(two.items, vec![d2.clone(), v1[4].clone()]);
    assert_eq!(two.remaining, 1);
    let three = page(format!("{}\0", two.items[1].key), 2, None).await;
    assert_eq!((three.items, three.remaining), (vec![f.clone()], 0));
    // The walk equals the full list.
    assert_eq!(
        s.list(p).await.expect("list").items,
        vec![v1[0].clone(), v1[2].clone(), d2, v1[4].clone(), f]
    );

    // A past revision, walked from the middle: as the keys were then.
    let then = page(format!("{p}b"), 2, Some(snap)).await;
    assert_eq!(then.revision, snap);
    assert_eq!(then.items, vec![v1[1].clone(), v1[2].clone()]);
    assert_eq!(then.remaining, 2);
    let rest = page(format!("{p}c\0"), 10, Some(snap)).await;
    assert_eq!(
        (rest.items, rest.remaining),
        (vec![v1[3].clone(), v1[4].clone()], 0)
    );
    // A start before the prefix reads from the prefix; limit 0 reads one key.
    let first = page("/".to_string(), 0, Some(snap)).await;
    assert_eq!((first.items, first.remaining), (vec![v1[0].clone()], 4));

    match s.list_range(p, "", 1, Some(now + 10)).await {
        Err(StoreError::FutureRevision { requested, .. }) => assert_eq!(requested, now + 10),
        other => panic!("expected FutureRevision, got {other:?}"),
    }
    s.compact(snap).await.expect("compact");
    match s.list_range(p, "", 1, Some(v1[0].mod_revision)).await {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, v1[0].mod_revision),
        other => panic!("expected Compacted, got {other:?}"),
    }
}

/// Snapshot `src` (all keys at one revision), restore into the EMPTY `dst`: every key comes back
/// with its value and mod revision (the resourceVersion), the revision reaches the floor, and the
/// store keeps working from there. `exact_meta`: the backend also keeps create revision and version.
pub(crate) async fn restore_snapshot(src: &dyn Store, dst: &dyn Store, exact_meta: bool) {
    let p = "/conf/restore/";
    for i in 0..5 {
        s_create(src, &format!("{p}k{i}"), format!("v{i}").as_bytes()).await;
    }
    let k1 = src.get(&format!("{p}k1")).await.expect("get").expect("k1");
    src.update(&k1.key, b"v1-updated", k1.mod_revision)
        .await
        .expect("update");
    src.delete(&format!("{p}k2"), None).await.expect("delete");
    src.create(&format!("{p}bin"), &[0u8, 255, 7])
        .await
        .expect("create bin");
    let rev = src.current_revision().await.expect("rev");
    let snap = src.list_at("", rev).await.expect("list_at");
    // Writes after the snapshot are not in it.
    s_create(src, &format!("{p}after"), b"x").await;
    let floor = rev + 5;

    dst.restore(snap.items.clone(), snap.revision, floor)
        .await
        .expect("restore");
    let after = dst.current_revision().await.expect("rev");
    assert!(after >= floor, "revision {after} below floor {floor}");
    let got = dst.list("").await.expect("list");
    assert_eq!(got.items.len(), snap.items.len(), "{:?}", got.items);
    for (want, have) in snap.items.iter().zip(&got.items) {
        assert_eq!(have.key, want.key);
        assert_eq!(have.value, want.value, "{}", want.key);
        assert_eq!(have.mod_revision, want.mod_revision, "{}", want.key);
        if exact_meta {
            assert_eq!(have.create_revision, want.create_revision, "{}", want.key);
            assert_eq!(have.version, want.version, "{}", want.key);
        }
    }
    assert!(dst
        .get(&format!("{p}k2"))
        .await
        .expect("get deleted")
        .is_none());
    // Compare-and-swap by the restored resourceVersion works, and new writes come after.
    let k1 = dst.get(&format!("{p}k1")).await.expect("get").expect("k1");
    assert_eq!(k1.value, b"v1-updated");
    let u = dst
        .update(&k1.key, b"v1-again", k1.mod_revision)
        .await
        .expect("cas on restored revision");
    assert!(u.mod_revision > after);
    let mut rx = dst.watch(p, u.mod_revision).await.expect("watch");
    let c = dst.create(&format!("{p}new"), b"n").await.expect("create");
    let ev = recv(&mut rx).await;
    assert_eq!(ev.kv.key, c.key);

    // A non-empty target is refused.
    match dst.restore(snap.items.clone(), snap.revision, 0).await {
        Err(StoreError::RestoreNotEmpty(_)) => {}
        other => panic!("expected RestoreNotEmpty, got {other:?}"),
    }
    // An empty target already past the snapshot's revisions is refused.
    for kv in src.list("").await.expect("list").items {
        src.delete(&kv.key, None).await.expect("wipe");
    }
    match src.restore(snap.items.clone(), snap.revision, 0).await {
        Err(StoreError::RestoreRevision {
            wanted, current, ..
        }) => {
            assert!(current >= wanted)
        }
        other => panic!("expected RestoreRevision, got {other:?}"),
    }
    assert!(src.list("").await.expect("list").items.is_empty());
    // Malformed input: a key twice, a revision beyond the snapshot's.
    let mut dup = snap.items.clone();
    dup.push(snap.items[0].clone());
    assert!(matches!(
        src.restore(dup, snap.revision, 0).await,
        Err(StoreError::RestoreInput(_))
    ));
    assert!(matches!(
        src.restore(snap.items.clone(), snap.revision - 1, 0).await,
        Err(StoreError::RestoreInput(_))
    ));
}

async fn s_create(s: &dyn Store, k: &str, v: &[u8]) {
    s.create(k, v).await.expect("create");
}
