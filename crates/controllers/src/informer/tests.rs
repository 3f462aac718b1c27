//! The informer against the real API router over an embedded store (list, watch, compaction),
//! and its bookkeeping fed by hand where the order of events must be controlled.

use std::sync::Arc;
use std::time::Duration;

use daas_apiserver::LocalClient;
use serde_json::{json, Value};

use super::*;

const PODS: &str = "/api/v1/pods";

type Env = crate::testapi::TestApi;

async fn env() -> Env {
    let api = Env::new("system:kube-controller-manager").await;
    api.default_service_account("default").await;
    api
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn ev_obj(name: &str, uid: &str, rv: i64) -> Value {
    json!({"metadata": {"name": name, "namespace": "default", "uid": uid,
        "resourceVersion": rv.to_string()}})
}

fn names(s: &Snapshot) -> Vec<String> {
    s.iter().map(|o| util::name(o).to_string()).collect()
}

/// Poll `f` until it holds (at most 10 s).
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn paths_map_to_collections() {
    let p = |u: &str| parse_path(u).map(|a| (a.collection, a.namespace, a.name));
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        p("/api/v1/namespaces/ns/pods/web-1/status"),
        Some(("/api/v1/pods".into(), s("ns"), s("web-1")))
    );
    assert_eq!(
        p("/api/v1/namespaces/ns/pods"),
        Some(("/api/v1/pods".into(), s("ns"), None))
    );
    assert_eq!(
        p("/apis/apps/v1/namespaces/ns/replicasets/r?x=1"),
        Some(("/apis/apps/v1/replicasets".into(), s("ns"), s("r")))
    );
    assert_eq!(
        p("/api/v1/nodes/n1"),
        Some(("/api/v1/nodes".into(), None, s("n1")))
    );
    assert_eq!(
        p("/api/v1/namespaces/ns/status"),
        Some(("/api/v1/namespaces".into(), None, s("ns")))
    );
    assert_eq!(p("/healthz"), None);
    let inf = Informers::direct(LocalClient::new(axum::Router::new(), "t"));
    assert!(!inf.serves(PODS), "direct mode serves nothing");
}

#[tokio::test]
async fn serves_only_cluster_wide_collections() {
    let e = env().await;
    let inf = Informers::new(e.client());
    assert!(inf.serves(PODS));
    assert!(inf.serves("/apis/apps/v1/replicasets"));
    assert!(!inf.serves("/api/v1/namespaces/default/pods"));
    assert!(!inf.serves("/api/v1/pods?labelSelector=a%3Db"));
    assert!(!inf.serves("/api/v1/nodes/n1"));
}

#[test]
fn applies_added_modified_deleted_in_order() {
    let inf = Informer::new(PODS.into());
    inf.replace(vec![ev_obj("a", "ua", 5)], 5);
    inf.apply("ADDED", ev_obj("b", "ub", 6));
    let mut b2 = ev_obj("b", "ub", 7);
    b2["spec"] = json!({"nodeName": "n1"});
    inf.apply("MODIFIED", b2);
    inf.apply("DELETED", ev_obj("a", "ua", 8));
    inf.apply("BOOKMARK", json!({"metadata": {"resourceVersion": "9"}}));
    let s = inf.peek();
    assert_eq!(names(&s), ["b"]);
    assert_eq!(s.revision(), 9);
    assert_eq!(s[0]["spec"]["nodeName"], "n1", "the modification applied");
    assert_eq!(s.on_node("n1").count(), 1);
    assert_eq!(s.in_namespace("default").count(), 1);
    // An unknown event type changes nothing.
    inf.apply("SOMETHING", ev_obj("c", "uc", 10));
    assert_eq!(names(&inf.peek()), ["b"]);
    assert_eq!(inf.peek().revision(), 9);
}

#[test]
fn changed_keys_feed_work_queues_and_snapshots_find_by_key() {
    let inf = Informer::new(PODS.into());
    inf.replace(vec![ev_obj("a", "ua", 5), ev_obj("b", "ub", 5)], 5);
    let q = Arc::new(WorkQueue::default());
    inf.queue_keys(&q);
    // A new consumer starts with every key.
    assert_eq!(q.take_ready(), ["default/a", "default/b"]);
    inf.apply("MODIFIED", ev_obj("b", "ub", 6));
    inf.apply("MODIFIED", ev_obj("b", "ub", 7));
    inf.apply("ADDED", ev_obj("c", "uc", 8));
    inf.apply("BOOKMARK", json!({"metadata": {"resourceVersion": "9"}}));
    assert_eq!(
        q.take_ready(),
        ["default/b", "default/c"],
        "deduplicated, in order"
    );
    inf.apply("DELETED", ev_obj("a", "ua", 10));
    assert_eq!(q.take_ready(), ["default/a"], "a deletion is a change");
    // A re-list queues what vanished and what is there.
    inf.replace(vec![ev_obj("b", "ub", 11), ev_obj("d", "ud", 11)], 11);
    assert_eq!(
        q.take_ready(),
        ["default/c", "default/b", "default/d"],
        "c vanished in the re-list"
    );
    let s = inf.peek();
    assert_eq!(s.get("default/d").map(|o| util::uid(o)), Some("ud"));
    assert!(s.get("default/c").is_none());
    // A dropped queue is no longer fed.
    drop(q);
    inf.apply("ADDED", ev_obj("e", "ue", 12));
    assert_eq!(inf.lock().queues.len(), 0);
}

#[test]
fn snapshots_are_shared_until_a_change() {
    let inf = Informer::new(PODS.into());
    let mut owned = ev_obj("p", "up", 3);
    owned["metadata"]["ownerReferences"] = json!([{"uid": "rs1", "controller": true}]);
    inf.replace(vec![owned, ev_obj("q", "uq", 4)], 4);
    let a = inf.peek();
    let b = inf.peek();
    assert!(Arc::ptr_eq(&a.0, &b.0), "readers share one snapshot");
    assert!(Arc::ptr_eq(&a[0], &b[0]), "objects are not copied");
    assert_eq!(
        a.controlled_by("rs1")
            .map(|o| util::name(o))
            .collect::<Vec<_>>(),
        ["p"]
    );
    inf.apply("ADDED", ev_obj("r", "ur", 5));
    let c = inf.peek();
    assert!(!Arc::ptr_eq(&a.0, &c.0));
    assert_eq!(names(&a), ["p", "q"], "an old snapshot does not change");
    assert_eq!(names(&c), ["p", "q", "r"]);
    assert!(
        Arc::ptr_eq(&a[0], &c[0]),
        "unchanged objects are shared across snapshots"
    );
}

#[tokio::test]
async fn follows_the_server_and_wakes_subscribers_after_applying() {
    let e = env().await;
    let plain = e.client();
    plain
        .create("/api/v1/namespaces/default/pods", &pod("before"))
        .await
        .unwrap();
    let inf = Informers::new(e.client());
    let cache = inf.informer(PODS).unwrap();
    let first = inf.list(PODS).await.unwrap();
    assert_eq!(names(&first), ["before"], "the initial list");
    let woken = Arc::new(Notify::new());
    assert!(inf.subscribe(PODS, &woken));
    for i in 0..5 {
        let name = format!("p{i}");
        let created = plain
            .create("/api/v1/namespaces/default/pods", &pod(&name))
            .await
            .unwrap();
        let rv = rv_of(&created);
        tokio::time::timeout(Duration::from_secs(10), woken.notified())
            .await
            .expect("woken by the cache");
        // Woken only after the event was applied: the cache already holds the pod.
        let s = cache.peek();
        assert!(s.revision() >= rv, "{} < {rv}", s.revision());
        assert!(names(&s).contains(&name), "{:?}", names(&s));
    }
    plain
        .delete("/api/v1/namespaces/default/pods/before")
        .await
        .unwrap();
    eventually("the delete applied", || {
        !names(&cache.peek()).contains(&"before".to_string())
    })
    .await;
    let direct: Vec<String> = plain
        .list(PODS)
        .await
        .unwrap()
        .iter()
        .map(|o| util::name(o).to_string())
        .collect();
    assert_eq!(names(&cache.peek()), direct);
}

#[tokio::test]
async fn relists_when_its_revision_was_compacted() {
    let e = env().await;
    let plain = e.client();
    for n in ["a", "b"] {
        plain
            .create("/api/v1/namespaces/default/pods", &pod(n))
            .await
            .unwrap();
    }
    // A cache that lost its watch long ago: it still holds "gone" (deleted since) at
    // revision 1, and the store has compacted everything before now.
    let inf = Informer::new(PODS.into());
    inf.replace(vec![ev_obj("gone", "ug", 1)], 1);
    let now = e.store.current_revision().await.unwrap();
    e.store.compact(now).await.unwrap();
    let task = tokio::spawn(inf.clone().run(plain.clone(), true));
    // Watching from revision 1 fails with 410 Gone; only a fresh list drops "gone".
    eventually("a relist", || names(&inf.peek()) == ["a", "b"]).await;
    assert!(inf.peek().revision() >= now);
    // And it watches from the list on: a new pod arrives.
    plain
        .create("/api/v1/namespaces/default/pods", &pod("c"))
        .await
        .unwrap();
    eventually("the watch after the relist", || {
        names(&inf.peek()) == ["a", "b", "c"]
    })
    .await;
    task.abort();
}

/// Informers whose pod cache is fed by hand (no list/watch task), so a test decides when the
/// cache catches up with a write.
fn manual(client: LocalClient) -> (Informers, Arc<Informer>) {
    let inf = Informers::new(client);
    let cache = Informer::new(PODS.into());
    let shared = inf.shared.clone().unwrap();
    shared
        .caches
        .lock()
        .unwrap()
        .insert(PODS.into(), (cache.clone(), tokio::spawn(async {})));
    (inf, cache)
}

#[tokio::test]
async fn reads_wait_for_this_clients_writes() {
    let e = env().await;
    let (inf, cache) = manual(e.client());
    let rv0 = e.store.current_revision().await.unwrap();
    cache.replace(vec![], rv0);
    // Nothing written yet: a read returns at once.
    assert!(inf.list(PODS).await.unwrap().is_empty());

    // A create through the informers' client: reads wait until the cache has it.
    let created = inf
        .client()
        .create("/api/v1/namespaces/default/pods", &pod("mine"))
        .await
        .unwrap();
    let reader = {
        let inf = inf.clone();
        tokio::spawn(async move { inf.list(PODS).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reader.is_finished(), "a read must wait for our create");
    cache.apply("ADDED", created.clone());
    let s = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(names(&s), ["mine"]);

    // Writes by another client (not ours) do not hold reads back.
    e.client()
        .create("/api/v1/namespaces/default/pods", &pod("theirs"))
        .await
        .unwrap();
    assert_eq!(names(&inf.list(PODS).await.unwrap()), ["mine"]);

    // A delete: reads wait until the pod is gone from the cache.
    inf.client()
        .delete("/api/v1/namespaces/default/pods/mine")
        .await
        .unwrap();
    let reader = {
        let inf = inf.clone();
        tokio::spawn(async move { inf.list(PODS).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reader.is_finished(), "a read must wait for our delete");
    let mut deleted = created.clone();
    deleted["metadata"]["resourceVersion"] = json!((rv_of(&created) + 2).to_string());
    cache.apply("DELETED", deleted);
    let s = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(names(&s).is_empty(), "{:?}", names(&s));
}

#[tokio::test]
async fn a_cache_that_never_catches_up_falls_back_to_a_direct_list() {
    let e = env().await;
    let (inf, cache) = manual(e.client());
    cache.replace(vec![], e.store.current_revision().await.unwrap());
    inf.client()
        .create("/api/v1/namespaces/default/pods", &pod("lost"))
        .await
        .unwrap();
    // The event never reaches the cache: after READ_WAIT the read lists directly (and sees
    // the pod), and the cache is asked to re-list.
    let started = Instant::now();
    let s = inf.list(PODS).await.unwrap();
    assert!(started.elapsed() >= READ_WAIT);
    assert_eq!(names(&s), ["lost"]);
    assert_eq!(s.revision(), 0, "a direct list");
    // The stale expectation was dropped: the next read does not wait again.
    let started = Instant::now();
    let s = inf.list(PODS).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(s.is_empty(), "from the (stale) cache");
}

#[tokio::test]
async fn an_unsynced_cache_blocks_reads_until_listed() {
    let e = env().await;
    let (inf, cache) = manual(e.client());
    let reader = {
        let inf = inf.clone();
        tokio::spawn(async move { inf.list(PODS).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!reader.is_finished());
    cache.replace(vec![ev_obj("x", "ux", 3)], 3);
    let s = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(names(&s), ["x"]);
}

fn owned(name: &str, owner_uid: Option<&str>, rv: i64) -> Value {
    let mut o = ev_obj(name, &format!("u-{name}"), rv);
    if let Some(u) = owner_uid {
        o["metadata"]["ownerReferences"] =
            json!([{"kind": "ReplicaSet", "name": "rs", "uid": u, "controller": true}]);
    }
    o
}

#[tokio::test]
async fn the_owner_index_follows_adds_moves_deletes_and_relists() {
    let inf = Informer::new(PODS.into());
    inf.replace(
        vec![
            owned("a", Some("r1"), 5),
            owned("b", Some("r1"), 5),
            owned("o", None, 5),
        ],
        5,
    );
    let sel = |uid: &'static str, ns: Option<&'static str>| {
        let inf = inf.clone();
        async move {
            let mut v: Vec<String> = inf
                .select(Duration::from_millis(10), uid, ns)
                .await
                .unwrap()
                .iter()
                .map(|o| util::name(o).to_string())
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(sel("r1", None).await, ["a", "b"]);
    assert_eq!(
        sel("r1", Some("default")).await,
        ["a", "b", "o"],
        "with the orphans"
    );
    assert_eq!(sel("r1", Some("other")).await, ["a", "b"]);
    // b moves to r2 (released and adopted), the orphan is adopted by r1, a goes away.
    inf.apply("MODIFIED", owned("b", Some("r2"), 6));
    inf.apply("MODIFIED", owned("o", Some("r1"), 7));
    inf.apply("DELETED", owned("a", Some("r1"), 8));
    assert_eq!(sel("r1", Some("default")).await, ["o"]);
    assert_eq!(sel("r2", None).await, ["b"]);
    assert_eq!(inf.stats().index_keys, 2);
    assert_eq!(inf.stats().objects, 2);
    // A re-list rebuilds it.
    inf.replace(vec![owned("x", None, 9)], 9);
    assert!(sel("r1", None).await.is_empty());
    assert_eq!(sel("none", Some("default")).await, ["x"]);
    assert_eq!(
        inf.get(Duration::from_millis(10), "default/x")
            .await
            .unwrap()
            .map(|o| util::uid(&o).to_string()),
        Some("u-x".into())
    );
}

#[test]
fn change_handlers_see_before_and_after_and_are_dropped_when_their_consumer_is() {
    use std::sync::Mutex as M;
    let inf = Informer::new(PODS.into());
    inf.replace(vec![owned("a", Some("r1"), 5)], 5);
    type Seen = Vec<(Option<String>, Option<String>)>;
    let seen: Arc<M<Seen>> = Arc::default();
    let alive = Arc::new(());
    let (s, w) = (seen.clone(), Arc::downgrade(&alive));
    let rv = |o: Option<&Value>| {
        o.map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
    };
    inf.on_change(Arc::new(move |old, new| {
        if w.upgrade().is_none() {
            return false;
        }
        s.lock().unwrap().push((rv(old), rv(new)));
        true
    }));
    inf.apply("MODIFIED", owned("a", Some("r1"), 6));
    inf.apply("ADDED", owned("b", None, 7));
    inf.apply("DELETED", owned("a", Some("r1"), 8));
    inf.apply("BOOKMARK", json!({"metadata": {"resourceVersion": "9"}}));
    let s = |n: i32| Some(n.to_string());
    assert_eq!(
        *seen.lock().unwrap(),
        [(None, s(5)), (s(5), s(6)), (None, s(7)), (s(6), None),],
        "existing objects first, then each change with the object before it; no bookmark"
    );
    // A re-list reports what vanished and what is there.
    seen.lock().unwrap().clear();
    inf.replace(vec![owned("c", None, 10)], 10);
    assert_eq!(*seen.lock().unwrap(), [(s(7), None), (None, s(10))]);
    drop(alive);
    inf.apply("ADDED", owned("d", None, 11));
    assert_eq!(inf.stats().handlers, 0, "dropped once its consumer is gone");
}
