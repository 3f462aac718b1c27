//! Two masters' controller sets on one store (two API routers over it), elected through the
//! `kube-controller-manager` Lease: only one set runs at a time, the other takes over when the
//! leader dies or steps down, and work created after the first leader died is still done. Also the
//! `kubernetes` Endpoints over the masters' identity Leases, and the refusal of Lease writes in
//! `kube-system` to nodes and user-tier stakers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use daas_apiserver::registry::ipalloc::ServiceRanges;
use daas_apiserver::{router, LocalClient, ServerOptions, StaticTokens, User};
use daas_controllers::cronjob::FixedClock;
use daas_controllers::kubernetesservice::{
    KubernetesServiceController, ADDRESS_ANNOTATION, IDENTITY_LABEL, PORT_ANNOTATION,
};
use daas_controllers::leaderelection::{
    micro_time, run_elected, Elected, ElectionConfig, Timings, CONTROLLER_MANAGER_LEASE,
};
use daas_controllers::{Controller, ControllerOptions};
use serde_json::{json, Value};

use crate::common;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
const APPS: &str = "/apis/apps/v1/namespaces/default";

fn timings() -> Timings {
    Timings {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
    }
}

/// A second master: its own API router over the same store.
fn second_master(env: &common::Env) -> LocalClient {
    let auth = Arc::new(StaticTokens::new(vec![(
        "tok2".into(),
        User {
            name: "system:kube-controller-manager".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        },
    )]));
    LocalClient::new(
        router(env.store.clone(), auth, ServerOptions::default()),
        "tok2",
    )
}

fn controllers(client: LocalClient, identity: &str) -> Elected {
    let opts = ControllerOptions {
        resync: Duration::from_secs(1),
        ..Default::default()
    };
    let c = client.clone();
    run_elected(
        client,
        ElectionConfig::new(CONTROLLER_MANAGER_LEASE, identity).with_timings(timings()),
        move || daas_controllers::spawn_controller_manager(c.clone(), opts.clone()),
    )
}

async fn replicaset(c: &LocalClient, name: &str) {
    c.create(
        &format!("{APPS}/replicasets"),
        &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await
    .unwrap();
}

async fn pods_of(c: &LocalClient, app: &str) -> usize {
    c.list(&format!(
        "/api/v1/namespaces/default/pods?labelSelector=app%3D{app}"
    ))
    .await
    .unwrap()
    .len()
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {within:?} waiting for {what}");
}

/// Samples both elections; fails the test when both lead at once.
fn watch_exclusive(a: &Elected, b: &Elected) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let both = Arc::new(AtomicBool::new(false));
    let (ra, rb) = (a.leadership(), b.leadership());
    let flag = both.clone();
    let task = tokio::spawn(async move {
        loop {
            if *ra.borrow() && *rb.borrow() {
                flag.store(true, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    (both, task)
}

async fn holder(c: &LocalClient) -> String {
    c.get(&format!("{LEASES}/{CONTROLLER_MANAGER_LEASE}"))
        .await
        .unwrap()["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn one_controller_set_runs_and_the_other_takes_over_when_it_dies() {
    let env = common::api().await;
    let c2 = second_master(&env);
    let a = controllers(env.c.clone(), "master-a_1");
    eventually("a leads", Duration::from_secs(5), || async {
        a.is_leader()
    })
    .await;
    let b = controllers(c2.clone(), "master-b_2");
    let (both, sampler) = watch_exclusive(&a, &b);
    replicaset(&env.c, "before").await;
    eventually(
        "a's controllers reconcile",
        Duration::from_secs(10),
        || async { pods_of(&env.c, "before").await == 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !b.is_leader(),
        "the second set waits while the leader renews"
    );
    assert_eq!(holder(&env.c).await, "master-a_1");

    // The leader dies without releasing (its tasks are gone, the Lease stays as it was).
    let died = Instant::now();
    drop(a);
    eventually("b takes over", Duration::from_secs(6), || async {
        b.is_leader()
    })
    .await;
    let took = died.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "b took over after {took:?}: before the dead leader's lease could expire"
    );
    assert_eq!(holder(&c2).await, "master-b_2");
    // Work created after the first leader died is done by the new one.
    replicaset(&c2, "after").await;
    eventually(
        "b's controllers reconcile",
        Duration::from_secs(10),
        || async { pods_of(&c2, "after").await == 2 },
    )
    .await;
    let lease = c2
        .get(&format!("{LEASES}/{CONTROLLER_MANAGER_LEASE}"))
        .await
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 2);
    // Each take-over is an Event on the Lease, as upstream records it.
    let events: Vec<String> = c2
        .list("/api/v1/namespaces/kube-system/events?fieldSelector=reason%3DLeaderElection")
        .await
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "Lease")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect();
    for m in ["master-a_1 became leader", "master-b_2 became leader"] {
        assert!(events.iter().any(|e| e == m), "{m}: {events:?}");
    }
    sampler.abort();
    assert!(!both.load(Ordering::SeqCst), "both sets ran at once");
}

#[tokio::test]
async fn a_leader_that_steps_down_hands_over_at_once() {
    let env = common::api().await;
    let c2 = second_master(&env);
    let a = controllers(env.c.clone(), "master-a_1");
    eventually("a leads", Duration::from_secs(5), || async {
        a.is_leader()
    })
    .await;
    let b = controllers(c2.clone(), "master-b_2");
    let (both, sampler) = watch_exclusive(&a, &b);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stepped = Instant::now();
    a.shutdown().await;
    eventually("b takes over", Duration::from_secs(3), || async {
        b.is_leader()
    })
    .await;
    let took = stepped.elapsed();
    assert!(
        took < Duration::from_millis(1000),
        "released lease taken after {took:?}"
    );
    replicaset(&c2, "handover").await;
    eventually(
        "b's controllers reconcile",
        Duration::from_secs(10),
        || async { pods_of(&c2, "handover").await == 2 },
    )
    .await;
    sampler.abort();
    assert!(!both.load(Ordering::SeqCst), "both sets ran at once");
}

fn identity_lease(
    name: &str,
    ip: &str,
    port: u16,
    renewed: chrono::DateTime<chrono::Utc>,
) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-system",
            "labels": {IDENTITY_LABEL: "kube-apiserver"},
            "annotations": {ADDRESS_ANNOTATION: ip, PORT_ANNOTATION: port.to_string()}},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 3600,
            "acquireTime": micro_time(renewed), "renewTime": micro_time(renewed)}})
}

#[tokio::test]
async fn kubernetes_endpoints_list_every_master_with_a_fresh_identity_lease() {
    let env = common::api().await;
    let t0 = chrono::Utc::now();
    let clock = Arc::new(FixedClock::new(t0));
    let c = &env.c;
    c.create(
        LEASES,
        &identity_lease("kube-apiserver-b", "192.0.2.11", 7443, t0),
    )
    .await
    .unwrap();
    c.create(
        LEASES,
        &identity_lease("kube-apiserver-c", "192.0.2.12", 8443, t0),
    )
    .await
    .unwrap();
    // Without the identity label a Lease names no master.
    let mut other = identity_lease("kube-apiserver-x", "192.0.2.99", 7443, t0);
    other["metadata"]["labels"] = json!({});
    c.create(LEASES, &other).await.unwrap();
    let mut k = KubernetesServiceController::new(
        c.clone(),
        ServiceRanges::default().first_ip(),
        "192.0.2.10".parse().unwrap(),
        7443,
    )
    .with_peers(Duration::from_secs(15), clock.clone());
    k.reconcile().await.unwrap();
    let ep = c
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .unwrap();
    assert_eq!(
        ep["subsets"],
        json!([
            {"addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.11"}],
                "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}]},
            {"addresses": [{"ip": "192.0.2.12"}],
                "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}]},
        ])
    );
    let slices = |c: LocalClient| async move {
        let mut s: Vec<(String, Value, Value)> = c
            .list("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes")
            .await
            .unwrap()
            .into_iter()
            .map(|s| {
                let addrs: Vec<Value> = s["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["addresses"][0].clone())
                    .collect();
                (
                    s["metadata"]["name"].as_str().unwrap().to_string(),
                    json!(addrs),
                    s["ports"][0]["port"].clone(),
                )
            })
            .collect();
        s.sort_by(|a, b| a.0.cmp(&b.0));
        s
    };
    assert_eq!(
        slices(c.clone()).await,
        vec![
            (
                "kubernetes".to_string(),
                json!(["192.0.2.10", "192.0.2.11"]),
                json!(7443)
            ),
            (
                "kubernetes-8443".to_string(),
                json!(["192.0.2.12"]),
                json!(8443)
            ),
        ]
    );
    // c's master dies: 16 s after its last renewal it is gone, with its slice; b renewed.
    let later = t0 + chrono::Duration::seconds(16);
    let mut b = c.get(&format!("{LEASES}/kube-apiserver-b")).await.unwrap();
    b["spec"]["renewTime"] = json!(micro_time(later));
    c.update(&format!("{LEASES}/kube-apiserver-b"), &b)
        .await
        .unwrap();
    clock.set(later);
    k.reconcile().await.unwrap();
    let ep = c
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .unwrap();
    assert_eq!(
        ep["subsets"],
        json!([{"addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.11"}],
            "ports": [{"name": "https", "port": 7443, "protocol": "TCP"}]}])
    );
    assert_eq!(
        slices(c.clone()).await,
        vec![(
            "kubernetes".to_string(),
            json!(["192.0.2.10", "192.0.2.11"]),
            json!(7443)
        )]
    );
    // This master is listed even before (or without) its own identity Lease.
    clock.set(t0 + chrono::Duration::seconds(60));
    k.reconcile().await.unwrap();
    let ep = c
        .get("/api/v1/namespaces/default/endpoints/kubernetes")
        .await
        .unwrap();
    assert_eq!(ep["subsets"][0]["addresses"], json!([{"ip": "192.0.2.10"}]));
}

#[tokio::test]
async fn nodes_and_user_tier_stakers_cannot_write_control_plane_leases() {
    let node = User {
        name: "system:node:n1".into(),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        ..Default::default()
    };
    let staker = User {
        name: "0xabc".into(),
        groups: vec![
            "daas:users".into(),
            "daas:namespace:u-abc".into(),
            "system:authenticated".into(),
        ],
        ..Default::default()
    };
    let env = common::api_with_users(vec![("node".into(), node), ("staker".into(), staker)]).await;
    // The leader's Lease and a master's identity Lease exist.
    let a = controllers(env.c.clone(), "master-a_1");
    eventually("a leads", Duration::from_secs(5), || async {
        a.is_leader()
    })
    .await;
    let now = chrono::Utc::now();
    env.c
        .create(
            LEASES,
            &identity_lease("kube-apiserver-a", "192.0.2.10", 6443, now),
        )
        .await
        .unwrap();
    for token in ["node", "staker"] {
        let c = LocalClient::new(env.app.clone(), token);
        for name in [
            CONTROLLER_MANAGER_LEASE,
            "kube-scheduler",
            "kube-apiserver-a",
        ] {
            let path = format!("{LEASES}/{name}");
            let mut lease = env
                .c
                .get_opt(&path)
                .await
                .unwrap()
                .unwrap_or_else(|| identity_lease(name, "192.0.2.66", 6443, now));
            lease["spec"]["holderIdentity"] = json!("intruder");
            lease["spec"]["renewTime"] = json!(micro_time(now));
            let forbidden = |r: Result<Value, daas_apiserver::ApiError>, what: &str| {
                let e = r.expect_err(what);
                assert_eq!(e.code, 403, "{token} {what} {name}: {}", e.message);
            };
            if env.c.get_opt(&path).await.unwrap().is_some() {
                forbidden(c.update(&path, &lease).await, "update");
                forbidden(
                    c.merge_patch(&path, &json!({"spec": {"holderIdentity": "intruder"}}))
                        .await,
                    "patch",
                );
                forbidden(c.delete(&path).await, "delete");
            } else {
                let mut fresh = lease.clone();
                fresh["metadata"] = json!({"name": name, "namespace": "kube-system"});
                forbidden(c.create(LEASES, &fresh).await, "create");
            }
        }
        // A forged identity Lease would put an attacker's address into the `kubernetes` Service.
        forbidden_create(
            &c,
            identity_lease("kube-apiserver-evil", "203.0.113.66", 6443, now),
        )
        .await;
        forbidden_delete_collection(&c).await;
    }
    assert_eq!(holder(&env.c).await, "master-a_1");
    assert!(env
        .c
        .get_opt(&format!("{LEASES}/kube-apiserver-evil"))
        .await
        .unwrap()
        .is_none());
}

async fn forbidden_create(c: &LocalClient, lease: Value) {
    let e = c.create(LEASES, &lease).await.unwrap_err();
    assert_eq!(e.code, 403, "{}", e.message);
}

async fn forbidden_delete_collection(c: &LocalClient) {
    let e = c.call_delete_with(LEASES, &json!({})).await.unwrap_err();
    assert_eq!(e.code, 403, "{}", e.message);
}
