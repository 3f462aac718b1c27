use super::*;

fn user(name: &str, groups: &[&str]) -> User {
    User::new(name, groups.iter().map(|g| g.to_string()).collect())
}

fn classify(u: Option<&User>, method: Method, path: &str, query: Option<&str>) -> Classification {
    BootstrapClassifier.classify(&RequestDigest::new(u, &method, path, query))
}

fn level_of(u: &User, method: Method, path: &str) -> PriorityLevel {
    classify(Some(u), method, path, None).level
}

const NODES: [&str; 2] = ["system:nodes", "system:authenticated"];

#[test]
fn digest_reads_verbs_and_targets_as_upstream() {
    let d = RequestDigest::new(
        None,
        &Method::PUT,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
        None,
    );
    assert_eq!(
        (d.verb, d.api_group, d.namespace, d.resource, d.name),
        (
            "update",
            "coordination.k8s.io",
            "kube-node-lease",
            "leases",
            "n1"
        )
    );
    let d = RequestDigest::new(None, &Method::GET, "/api/v1/pods", Some("watch=true&rv=1"));
    assert_eq!((d.verb, d.long_running), ("watch", true));
    let d = RequestDigest::new(None, &Method::GET, "/api/v1/namespaces/a/pods", None);
    assert_eq!((d.verb, d.namespace, d.resource), ("list", "a", "pods"));
    let d = RequestDigest::new(None, &Method::PATCH, "/api/v1/nodes/n1/status", None);
    assert_eq!(
        (d.verb, d.resource, d.subresource),
        ("patch", "nodes", "status")
    );
    let d = RequestDigest::new(
        None,
        &Method::POST,
        "/api/v1/namespaces/a/pods/p/exec",
        None,
    );
    assert!(d.long_running);
    let d = RequestDigest::new(None, &Method::DELETE, "/api/v1/namespaces/a/pods", None);
    assert_eq!(d.verb, "deletecollection");
    // A namespace object itself.
    let d = RequestDigest::new(None, &Method::GET, "/api/v1/namespaces/a", None);
    assert_eq!((d.resource, d.name, d.namespace), ("namespaces", "a", ""));
    let d = RequestDigest::new(None, &Method::GET, "/healthz", None);
    assert!(!d.resource_request);
}

#[test]
fn classifier_follows_the_bootstrap_flow_schemas() {
    let admin = user(
        "k3s-daas-admin",
        &["system:masters", "system:authenticated"],
    );
    assert_eq!(
        level_of(&admin, Method::DELETE, "/api/v1/nodes/x"),
        PriorityLevel::Exempt
    );
    assert_eq!(
        classify(None, Method::GET, "/readyz", None).level,
        PriorityLevel::Exempt
    );
    let node = user("system:node:n1", &NODES);
    let own_lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1";
    assert_eq!(
        level_of(&node, Method::PUT, own_lease),
        PriorityLevel::NodeHigh
    );
    assert_eq!(
        level_of(&node, Method::PATCH, "/api/v1/nodes/n1/status"),
        PriorityLevel::NodeHigh
    );
    assert_eq!(
        level_of(&node, Method::PATCH, "/api/v1/namespaces/a/pods/p/status"),
        PriorityLevel::System
    );
    // A node's Lease write elsewhere is ordinary node traffic.
    assert_eq!(
        level_of(
            &node,
            Method::PUT,
            "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler"
        ),
        PriorityLevel::System
    );
    let kcm = user("system:kube-controller-manager", &["system:authenticated"]);
    let cm_lease =
        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager";
    let c = classify(Some(&kcm), Method::PUT, cm_lease, None);
    assert_eq!(
        (c.flow_schema, c.level),
        ("system-leader-election", PriorityLevel::LeaderElection)
    );
    assert_eq!(
        level_of(&kcm, Method::DELETE, cm_lease),
        PriorityLevel::WorkloadHigh
    );
    assert_eq!(
        level_of(&kcm, Method::POST, "/api/v1/namespaces/a/pods"),
        PriorityLevel::WorkloadHigh
    );
    let ks_sa = user(
        "system:serviceaccount:kube-system:coredns",
        &["system:serviceaccounts", "system:authenticated"],
    );
    assert_eq!(
        level_of(&ks_sa, Method::GET, "/api/v1/services"),
        PriorityLevel::WorkloadHigh
    );
    let sa = user(
        "system:serviceaccount:a:default",
        &["system:serviceaccounts", "system:authenticated"],
    );
    assert_eq!(
        level_of(&sa, Method::GET, "/api/v1/namespaces/a/pods"),
        PriorityLevel::WorkloadLow
    );
    // A user-tier staker cannot lift itself by writing Leases.
    let alice = user("alice", &["system:authenticated"]);
    let c = classify(Some(&alice), Method::PUT, cm_lease, None);
    assert_eq!(
        (c.flow_schema, c.level, c.flow.as_str()),
        ("global-default", PriorityLevel::GlobalDefault, "alice")
    );
    assert_eq!(
        level_of(&alice, Method::PUT, own_lease),
        PriorityLevel::GlobalDefault
    );
    let odd = user("odd", &[]);
    assert_eq!(
        level_of(&odd, Method::GET, "/api/v1/pods"),
        PriorityLevel::CatchAll
    );
}

#[test]
fn level_limits_split_the_server_limit_by_shares() {
    let cfg = FlowControlConfig::default();
    assert_eq!(cfg.server_concurrency_limit(), 600);
    // ceil(600 * shares / 245)
    assert_eq!(cfg.level_limit(PriorityLevel::WorkloadLow), 245);
    assert_eq!(cfg.level_limit(PriorityLevel::GlobalDefault), 49);
    assert_eq!(cfg.level_limit(PriorityLevel::LeaderElection), 25);
    let tiny = FlowControlConfig {
        max_requests_inflight: 1,
        max_mutating_requests_inflight: 0,
        ..Default::default()
    };
    for l in PriorityLevel::LIMITED {
        assert_eq!(tiny.level_limit(l), 1, "{l:?} keeps one seat");
    }
    let none = FlowControlConfig {
        max_requests_inflight: 0,
        max_mutating_requests_inflight: 0,
        ..Default::default()
    };
    assert!(none.validate().is_err());
    assert!(FlowControl::new(none, Arc::new(BootstrapClassifier)).is_err());
}

/// One seat per level, `queue` waiting per flow.
fn tiny(queue: usize, wait: Duration) -> FlowControl {
    FlowControl::new(
        FlowControlConfig {
            max_requests_inflight: 1,
            max_mutating_requests_inflight: 0,
            queue_length_limit: queue,
            level_queue_limit: 100,
            request_wait_limit: wait,
        },
        Arc::new(BootstrapClassifier),
    )
    .unwrap()
}

fn get<'a>(u: &'a User) -> RequestDigest<'a> {
    RequestDigest::new(Some(u), &Method::GET, "/api/v1/namespaces/a/pods", None)
}

#[tokio::test]
async fn a_full_level_answers_429_with_retry_after() {
    let fc = tiny(1, Duration::from_secs(30));
    let alice = user("alice", &["system:authenticated"]);
    let held = fc.admit(&get(&alice)).await.unwrap();
    assert!(held.holds_seat());
    // The second waits in alice's queue; the third finds it full.
    let fc = Arc::new(fc);
    let waiting = {
        let fc = fc.clone();
        let alice = alice.clone();
        tokio::spawn(async move { fc.admit(&get(&alice)).await.map(|_| ()) })
    };
    for _ in 0..100 {
        if fc.queued(PriorityLevel::GlobalDefault) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(fc.queued(PriorityLevel::GlobalDefault), 1);
    let err = fc.admit(&get(&alice)).await.unwrap_err();
    assert_eq!((err.code, err.reason), (429, "TooManyRequests"));
    let resp = axum::response::IntoResponse::into_response(err);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["details"]["retryAfterSeconds"], 1);
    // Releasing the seat lets the waiting request in.
    drop(held);
    waiting.await.unwrap().unwrap();
    assert_eq!(fc.executing(PriorityLevel::GlobalDefault), 0);
}

#[tokio::test]
async fn a_request_waiting_past_the_limit_is_refused_and_leaves_the_queue() {
    let fc = tiny(10, Duration::from_millis(50));
    let alice = user("alice", &["system:authenticated"]);
    let held = fc.admit(&get(&alice)).await.unwrap();
    let err = fc.admit(&get(&alice)).await.unwrap_err();
    assert_eq!(err.code, 429);
    assert_eq!(fc.queued(PriorityLevel::GlobalDefault), 0);
    drop(held);
    assert_eq!(fc.executing(PriorityLevel::GlobalDefault), 0);
    // A dropped waiter gives its place up too.
    let held = fc.admit(&get(&alice)).await.unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(20), fc.admit(&get(&alice))).await;
    assert!(gave_up.is_err());
    assert_eq!(fc.queued(PriorityLevel::GlobalDefault), 0);
    drop(held);
    assert_eq!(fc.executing(PriorityLevel::GlobalDefault), 0);
    fc.admit(&get(&alice)).await.unwrap();
}

#[tokio::test]
async fn a_flood_of_one_flow_leaves_another_flow_served() {
    let fc = Arc::new(tiny(1000, Duration::from_secs(30)));
    let mallory = user("mallory", &["system:authenticated"]);
    let bob = user("bob", &["system:authenticated"]);
    let held = fc.admit(&get(&mallory)).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (fc, m, order) = (fc.clone(), mallory.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let seat = fc.admit(&get(&m)).await.unwrap();
            order.lock().unwrap().push(format!("mallory{i}"));
            tokio::task::yield_now().await;
            drop(seat);
        }));
    }
    while fc.queued(PriorityLevel::GlobalDefault) < 50 {
        tokio::task::yield_now().await;
    }
    // Bob arrives behind 50 of mallory's requests, yet gets the second turn.
    let b = {
        let (fc, bob, order) = (fc.clone(), bob.clone(), order.clone());
        tokio::spawn(async move {
            let _seat = fc.admit(&get(&bob)).await.unwrap();
            order.lock().unwrap().push("bob".to_string());
        })
    };
    while fc.queued(PriorityLevel::GlobalDefault) < 51 {
        tokio::task::yield_now().await;
    }
    drop(held);
    b.await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    let bob_at = order.iter().position(|o| o == "bob").unwrap();
    assert!(bob_at <= 1, "bob served at {bob_at}: {order:?}");
    assert_eq!(order.len(), 51);
}

#[tokio::test]
async fn a_full_level_leaves_other_levels_and_exempt_requests_alone() {
    let fc = tiny(1, Duration::from_millis(100));
    let alice = user("alice", &["system:authenticated"]);
    let _held = fc.admit(&get(&alice)).await.unwrap();
    let node = user("system:node:n1", &NODES);
    let lease = RequestDigest::new(
        Some(&node),
        &Method::PUT,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
        None,
    );
    let seat = fc.admit(&lease).await.unwrap();
    assert_eq!(seat.classification.level, PriorityLevel::NodeHigh);
    assert!(seat.holds_seat());
    // Exempt requests are never queued, however many run.
    let admin = user("admin", &["system:masters"]);
    let mut seats = Vec::new();
    for _ in 0..100 {
        let s = fc.admit(&get(&admin)).await.unwrap();
        assert!(!s.holds_seat());
        seats.push(s);
    }
    // Nor are watches.
    let watch = RequestDigest::new(Some(&alice), &Method::GET, "/api/v1/pods", Some("watch=1"));
    for _ in 0..10 {
        let s = fc.admit(&watch).await.unwrap();
        assert_eq!(s.classification.level, PriorityLevel::GlobalDefault);
        seats.push(s);
    }
    assert_eq!(fc.queued(PriorityLevel::GlobalDefault), 0);
}

#[tokio::test]
async fn a_busy_level_borrows_idle_seats_up_to_the_server_limit() {
    let cfg = FlowControlConfig {
        max_requests_inflight: 10,
        max_mutating_requests_inflight: 0,
        request_wait_limit: Duration::from_millis(50),
        ..Default::default()
    };
    assert_eq!(cfg.level_limit(PriorityLevel::GlobalDefault), 1);
    assert_eq!(cfg.lendable_seats(), 9);
    let fc = FlowControl::new(cfg, Arc::new(BootstrapClassifier)).unwrap();
    let alice = user("alice", &["system:authenticated"]);
    let mut seats = Vec::new();
    for i in 0..10 {
        let s = tokio::time::timeout(Duration::from_millis(10), fc.admit(&get(&alice)))
            .await
            .unwrap_or_else(|_| panic!("request {i} queued on an idle server"))
            .unwrap();
        seats.push(s);
    }
    assert_eq!(fc.executing(PriorityLevel::GlobalDefault), 10);
    // The server limit is reached: the next one waits, and times out.
    assert_eq!(fc.admit(&get(&alice)).await.unwrap_err().code, 429);
    // Another level's own seats were never lent away.
    let node = user("system:node:n1", &NODES);
    let lease = RequestDigest::new(
        Some(&node),
        &Method::PUT,
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
        None,
    );
    let n = tokio::time::timeout(Duration::from_millis(10), fc.admit(&lease))
        .await
        .expect("node-high's own seat")
        .unwrap();
    drop(n);
    // Borrowed seats come back.
    seats.truncate(1);
    assert_eq!(fc.executing(PriorityLevel::GlobalDefault), 1);
    drop(seats);
    assert_eq!(fc.executing(PriorityLevel::GlobalDefault), 0);
    for _ in 0..10 {
        seats_again(&fc, &alice).await;
    }
}

async fn seats_again(fc: &FlowControl, alice: &User) {
    let s = fc.admit(&get(alice)).await.unwrap();
    assert!(s.holds_seat());
}
