//! The elector against the real API router over an embedded store, with an injected clock. A
//! fault switch in front of the router makes one candidate's API calls fail (an unreachable
//! store) while another candidate's still succeed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use daas_apiserver::{router, LocalClient, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use serde_json::Value;

use super::*;

const PATH: &str =
    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager";

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
    clock: Arc<FixedClock>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let auth = Arc::new(StaticTokens::new(vec![(
        "tok".into(),
        User {
            name: "system:kube-controller-manager".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        },
    )]));
    Env {
        _dir: dir,
        app: router(store, auth, ServerOptions::default()),
        clock: Arc::new(FixedClock::new(t0())),
    }
}

impl Env {
    fn client(&self) -> LocalClient {
        LocalClient::new(self.app.clone(), "tok")
    }

    /// A client whose requests fail with 503 while `down` is set.
    fn faulty_client(&self, down: Arc<AtomicBool>) -> LocalClient {
        let app = self.app.clone().layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let down = down.clone();
                async move {
                    if down.load(Ordering::SeqCst) {
                        return axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            "store unreachable",
                        ));
                    }
                    next.run(req).await
                }
            },
        ));
        LocalClient::new(app, "tok")
    }

    fn cfg(&self, identity: &str, timings: Timings) -> ElectionConfig {
        ElectionConfig::new(CONTROLLER_MANAGER_LEASE, identity)
            .with_timings(timings)
            .with_clock(self.clock.clone())
    }

    fn elector(&self, identity: &str) -> LeaderElector {
        LeaderElector::new(self.client(), self.cfg(identity, Timings::default()))
    }

    fn at(&self, secs: i64) {
        self.clock.set(t0() + chrono::Duration::seconds(secs));
    }

    async fn lease(&self) -> Value {
        self.client().get(PATH).await.unwrap()
    }
}

fn at(secs: i64) -> String {
    micro_time(t0() + chrono::Duration::seconds(secs))
}

/// Fast loops for the driver; the injected clock decides expiry and deadlines.
fn fast() -> Timings {
    Timings {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_millis(40),
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn timings_are_checked_as_upstream() {
    Timings::default().validate().unwrap();
    fast().validate().unwrap();
    let bad = |lease: u64, renew: u64, retry: u64| Timings {
        lease_duration: Duration::from_millis(lease),
        renew_deadline: Duration::from_millis(renew),
        retry_period: Duration::from_millis(retry),
    };
    assert!(bad(10_000, 10_000, 2_000).validate().is_err());
    assert!(bad(15_000, 2_000, 2_000).validate().is_err());
    assert!(bad(15_000, 10_000, 0).validate().is_err());
    assert!(bad(500, 300, 100).validate().is_err());
}

#[tokio::test]
async fn first_candidate_creates_the_lease_others_wait() {
    let e = env().await;
    let mut a = e.elector("a_1");
    let mut b = e.elector("b_2");
    assert!(a.try_acquire_or_renew().await.unwrap());
    let l = e.lease().await;
    assert_eq!(l["spec"]["holderIdentity"], "a_1");
    assert_eq!(l["spec"]["leaseDurationSeconds"], 15);
    assert_eq!(l["spec"]["acquireTime"], at(0));
    assert_eq!(l["spec"]["renewTime"], at(0));
    assert_eq!(l["spec"]["leaseTransitions"], 0);
    e.at(14);
    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert_eq!(e.lease().await["spec"]["holderIdentity"], "a_1");
}

#[tokio::test]
async fn the_holder_renews_and_keeps_acquire_time() {
    let e = env().await;
    let mut a = e.elector("a_1");
    let mut b = e.elector("b_2");
    assert!(a.try_acquire_or_renew().await.unwrap());
    e.at(5);
    assert!(a.try_acquire_or_renew().await.unwrap());
    let l = e.lease().await;
    assert_eq!(l["spec"]["acquireTime"], at(0));
    assert_eq!(l["spec"]["renewTime"], at(5));
    assert_eq!(l["spec"]["leaseTransitions"], 0);
    // 15 s after the first acquire, but only 11 s after the renewal: still held.
    e.at(16);
    assert!(!b.try_acquire_or_renew().await.unwrap());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_counts_a_transition() {
    let e = env().await;
    let mut a = e.elector("a_1");
    let mut b = e.elector("b_2");
    assert!(a.try_acquire_or_renew().await.unwrap());
    e.at(15);
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "renewTime + duration == now is not yet expired"
    );
    e.at(16);
    assert!(b.try_acquire_or_renew().await.unwrap());
    let l = e.lease().await;
    assert_eq!(l["spec"]["holderIdentity"], "b_2");
    assert_eq!(l["spec"]["acquireTime"], at(16));
    assert_eq!(l["spec"]["leaseTransitions"], 1);
    // The old holder comes back: it must not renew over the new holder.
    assert!(!a.try_acquire_or_renew().await.unwrap());
    assert_eq!(e.lease().await["spec"]["holderIdentity"], "b_2");
}

#[tokio::test]
async fn released_lease_is_taken_at_once() {
    let e = env().await;
    let mut a = e.elector("a_1");
    let mut b = e.elector("b_2");
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.release().await.unwrap(), "b does not hold the lease");
    e.at(3);
    assert!(a.release().await.unwrap());
    let l = e.lease().await;
    assert_eq!(l["spec"]["holderIdentity"], "");
    assert_eq!(l["spec"]["leaseDurationSeconds"], 1);
    assert!(b.try_acquire_or_renew().await.unwrap());
    let l = e.lease().await;
    assert_eq!(l["spec"]["holderIdentity"], "b_2");
    assert_eq!(l["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn of_concurrent_writers_exactly_one_wins() {
    let e = env().await;
    let mut a = e.elector("a_1");
    assert!(a.try_acquire_or_renew().await.unwrap());
    e.at(100);
    let mut electors: Vec<LeaderElector> = (0..6).map(|i| e.elector(&format!("c_{i}"))).collect();
    let wins = futures::future::join_all(electors.iter_mut().map(|el| el.try_acquire_or_renew()))
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .filter(|w| *w)
        .count();
    assert_eq!(wins, 1);
    let l = e.lease().await;
    assert!(l["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .starts_with("c_"));
    assert_eq!(l["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn a_stale_resource_version_is_refused() {
    let e = env().await;
    let mut a = e.elector("a_1");
    assert!(a.try_acquire_or_renew().await.unwrap());
    let stale = e.lease().await;
    e.at(2);
    assert!(a.try_acquire_or_renew().await.unwrap());
    // A writer holding the older read cannot overwrite the renewal.
    let mut steal = stale.clone();
    steal["spec"]["holderIdentity"] = "thief".into();
    let err = e.client().update(PATH, &steal).await.unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(e.lease().await["spec"]["holderIdentity"], "a_1");
}

/// The group's tasks: how many run now, how many ever started.
#[derive(Default)]
struct Probe {
    running: AtomicUsize,
    started: AtomicUsize,
}

struct Running(Arc<Probe>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn group(probe: &Arc<Probe>) -> impl Fn() -> Vec<JoinHandle<()>> + Send + Sync + 'static {
    let probe = probe.clone();
    move || {
        probe.started.fetch_add(1, Ordering::SeqCst);
        probe.running.fetch_add(1, Ordering::SeqCst);
        let guard = Running(probe.clone());
        vec![tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })]
    }
}

#[tokio::test]
async fn renew_deadline_stops_the_group_before_the_lease_expires() {
    let e = env().await;
    let down = Arc::new(AtomicBool::new(false));
    let pa = Arc::new(Probe::default());
    let a = run_elected(
        e.faulty_client(down.clone()),
        e.cfg("a_1", fast()),
        group(&pa),
    );
    until("a leads", || a.is_leader()).await;
    assert_eq!(pa.running.load(Ordering::SeqCst), 1);
    // A loses its store; its last renewal was at 0.
    down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.at(9);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        a.is_leader(),
        "within the renew deadline the leader keeps leading"
    );
    assert_eq!(pa.running.load(Ordering::SeqCst), 1);
    e.at(10);
    until("a stops leading", || !a.is_leader()).await;
    assert_eq!(pa.running.load(Ordering::SeqCst), 0, "the group is stopped");
    // The group stopped at 10 s; nobody may take the lease before 15 s.
    let mut b = e.elector("b_2");
    e.at(14);
    assert!(!b.try_acquire_or_renew().await.unwrap());
    e.at(16);
    assert!(b.try_acquire_or_renew().await.unwrap());
    // A's store comes back: it campaigns again, but b holds the lease.
    down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.is_leader());
    assert_eq!(pa.started.load(Ordering::SeqCst), 1);
    // b stops renewing; once its lease expires, a leads again with a fresh group.
    e.at(40);
    until("a leads again", || a.is_leader()).await;
    assert_eq!(pa.started.load(Ordering::SeqCst), 2);
    assert_eq!(pa.running.load(Ordering::SeqCst), 1);
    assert_eq!(e.lease().await["spec"]["leaseTransitions"], 2);
}

#[tokio::test]
async fn graceful_shutdown_releases_and_the_other_takes_over_at_once() {
    let e = env().await;
    let (pa, pb) = (Arc::new(Probe::default()), Arc::new(Probe::default()));
    let a = run_elected(e.client(), e.cfg("a_1", fast()), group(&pa));
    until("a leads", || a.is_leader()).await;
    let b = run_elected(e.client(), e.cfg("b_2", fast()), group(&pb));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b.is_leader());
    assert_eq!(pb.started.load(Ordering::SeqCst), 0);
    // The clock stands still: b can only lead because a released the lease.
    a.shutdown().await;
    assert_eq!(pa.running.load(Ordering::SeqCst), 0);
    until("b leads", || b.is_leader()).await;
    assert_eq!(pb.running.load(Ordering::SeqCst), 1);
    let l = e.lease().await;
    assert_eq!(l["spec"]["holderIdentity"], "b_2");
    assert_eq!(l["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn dropping_the_election_stops_the_group_without_releasing() {
    let e = env().await;
    let pa = Arc::new(Probe::default());
    let a = run_elected(e.client(), e.cfg("a_1", fast()), group(&pa));
    until("a leads", || a.is_leader()).await;
    drop(a);
    until("a's group stops", || pa.running.load(Ordering::SeqCst) == 0).await;
    assert_eq!(e.lease().await["spec"]["holderIdentity"], "a_1");
}

#[test]
fn live_holder_reads_the_lease() {
    let now = t0();
    let lease = |holder: &str, renew: &str, secs: i64| {
        serde_json::json!({"spec": {"holderIdentity": holder, "renewTime": renew,
            "leaseDurationSeconds": secs}})
    };
    assert_eq!(live_holder(&lease("a", &at(-5), 10), now), Some("a"));
    assert_eq!(live_holder(&lease("a", &at(-11), 10), now), None);
    assert_eq!(live_holder(&lease("", &at(0), 10), now), None);
    assert_eq!(
        live_holder(&serde_json::json!({"spec": {"holderIdentity": "a"}}), now),
        None
    );
}

#[test]
fn durations_parse_as_upstream_flags() {
    assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("10x").is_err());
    assert!(parse_duration("s").is_err());
}

#[tokio::test]
async fn a_restarted_candidate_reclaims_its_predecessors_lease_at_once() {
    let e = env().await;
    let mut old = e.elector("m1_aaaa");
    assert!(old.try_acquire_or_renew().await.unwrap());
    e.at(1);
    // Another master does not match the prefix and must wait for expiry.
    let mut other = LeaderElector::new(
        e.client(),
        e.cfg("m2_cccc", Timings::default())
            .with_reclaim_prefix("m2_"),
    );
    assert!(!other.try_acquire_or_renew().await.unwrap());
    let mut new = LeaderElector::new(
        e.client(),
        e.cfg("m1_bbbb", Timings::default())
            .with_reclaim_prefix("m1_"),
    );
    assert!(new.try_acquire_or_renew().await.unwrap());
    let l = e.lease().await;
    assert_eq!(l["spec"]["holderIdentity"], "m1_bbbb");
    assert_eq!(l["spec"]["leaseTransitions"], 1);
}

/// A client whose lease writes are applied at once but answered `delay` later while `slow` is
/// set (a renewal that runs late although its write landed).
fn slow_writes(e: &Env, slow: Arc<AtomicBool>, delay: Duration) -> LocalClient {
    let app = e.app.clone().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let slow = slow.clone();
            async move {
                let put = req.method() == axum::http::Method::PUT;
                let resp = next.run(req).await;
                if put && slow.swap(false, Ordering::SeqCst) {
                    tokio::time::sleep(delay).await;
                }
                resp
            }
        },
    ));
    LocalClient::new(app, "tok")
}

fn renew_time(lease: &Value) -> DateTime<Utc> {
    parse_time(&lease["spec"]["renewTime"]).unwrap()
}

#[tokio::test]
async fn a_renewal_that_lands_late_keeps_the_leader() {
    let e = env().await;
    let slow = Arc::new(AtomicBool::new(false));
    let timings = Timings {
        lease_duration: Duration::from_secs(6),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    };
    let cfg = ElectionConfig::new(CONTROLLER_MANAGER_LEASE, "a_1").with_timings(timings);
    let metrics = Arc::new(Metrics::new());
    let pa = Arc::new(Probe::default());
    let a = run_elected(
        slow_writes(&e, slow.clone(), Duration::from_millis(2500)),
        cfg.with_metrics(metrics.clone()),
        group(&pa),
    );
    until("a leads", || a.is_leader()).await;
    let before = renew_time(&e.lease().await);
    // The next renewal's write lands, but its answer comes after the renew deadline.
    slow.store(true, Ordering::SeqCst);
    let mut leadership = a.leadership();
    assert!(*leadership.borrow_and_update());
    let watched = tokio::time::timeout(Duration::from_secs(5), leadership.changed()).await;
    assert!(watched.is_err(), "leadership changed during a late renewal");
    assert!(!slow.load(Ordering::SeqCst), "the slow write happened");
    assert!(a.is_leader());
    assert_eq!(
        pa.started.load(Ordering::SeqCst),
        1,
        "the group never restarted"
    );
    assert_eq!(pa.running.load(Ordering::SeqCst), 1);
    assert!(renew_time(&e.lease().await) > before + chrono::Duration::seconds(3));
    let m = metrics.render(&[]);
    assert!(
        m.contains("leader_election_renewals_total{lease=\"kube-system/kube-controller-manager\",result=\"renewed\"}"),
        "{m}"
    );
}

#[tokio::test]
async fn a_stalled_caller_runtime_does_not_stall_renewals_on_the_election_runtime() {
    let e = env().await;
    let timings = Timings {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(200),
    };
    let rt = ElectionRuntime::start("test-elections").unwrap();
    let main = tokio::runtime::Handle::current().id();
    let ran_on = Arc::new(std::sync::Mutex::new(None));
    let seen = ran_on.clone();
    let a = run_elected_on(
        &rt,
        e.client(),
        ElectionConfig::new(CONTROLLER_MANAGER_LEASE, "a_1").with_timings(timings),
        move || {
            let seen = seen.clone();
            vec![tokio::spawn(async move {
                *seen.lock().unwrap() = Some(tokio::runtime::Handle::current().id());
                std::future::pending::<()>().await
            })]
        },
    );
    until("a leads", || a.is_leader()).await;
    until("the group runs", || ran_on.lock().unwrap().is_some()).await;
    assert_eq!(
        *ran_on.lock().unwrap(),
        Some(main),
        "the group runs on the caller's runtime"
    );
    // Block the caller's (current-thread) runtime for longer than the renew deadline: on the
    // shared runtime no renewal could run, on its own runtime the leader keeps renewing.
    let blocked_at = Utc::now();
    std::thread::sleep(Duration::from_secs(3));
    let renewed = renew_time(&e.lease().await);
    assert!(
        renewed > blocked_at + chrono::Duration::seconds(2),
        "last renewal {renewed}, blocked at {blocked_at}"
    );
    assert!(a.is_leader());
    a.shutdown().await;
    assert_eq!(e.lease().await["spec"]["holderIdentity"], "");
}
