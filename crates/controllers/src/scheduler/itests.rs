//! The scheduler against the real API router over an embedded store: many pods decided while
//! earlier bindings are still in flight never overcommit a node, no pod is bound twice, and
//! unschedulable pods get the upstream condition and event and are retried when the cluster
//! changes (a node joins, a pod leaves).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::util::{condition, name};
use crate::ControllerOptions;

const NS: &str = "default";

type Env = crate::testapi::TestApi;

async fn env() -> Env {
    let api = Env::new("system:kube-scheduler").await;
    api.default_service_account(NS).await;
    api
}

impl Env {
    async fn node(&self, n: &str, pods: u32) {
        let c = self.client();
        c.create(
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": n, "labels": {super::STAKED_LABEL: "true"}}}),
        )
        .await
        .unwrap();
        c.merge_patch(
            &format!("/api/v1/nodes/{n}/status"),
            &json!({"status": {
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": pods.to_string()},
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": pods.to_string()},
                "conditions": [{"type": "Ready", "status": "True"}]}}),
        )
        .await
        .unwrap();
    }

    async fn pod(&self, n: &str) {
        self.client()
            .create(
                &format!("/api/v1/namespaces/{NS}/pods"),
                &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n},
                    "spec": {"containers": [{"name": "c", "image": "pause",
                        "resources": {"requests": {"cpu": "10m"}}}]}}),
            )
            .await
            .unwrap();
    }

    async fn pods(&self) -> Vec<Value> {
        self.client()
            .list(&format!("/api/v1/namespaces/{NS}/pods"))
            .await
            .unwrap()
    }

    /// Pods per node (unbound ones under "").
    async fn placement(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for p in self.pods().await {
            let n = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            *m.entry(n).or_default() += 1;
        }
        m
    }

    async fn events(&self, reason: &str) -> Vec<Value> {
        self.client()
            .list(&format!("/api/v1/namespaces/{NS}/events"))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e["reason"] == reason)
            .collect()
    }
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn opts() -> ControllerOptions {
    ControllerOptions {
        event_interval: Duration::from_secs(60),
        ..Default::default()
    }
}

fn count(m: &HashMap<String, usize>, k: &str) -> usize {
    m.get(k).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_never_overcommit_and_unschedulable_pods_retry_on_change() {
    let e = env().await;
    e.node("n1", 10).await;
    for i in 0..40 {
        e.pod(&format!("p{i:02}")).await;
    }
    let task = crate::spawn_scheduler(e.client(), &opts());

    // 40 pods, one node with 10 slots: exactly 10 bound, the rest Unschedulable.
    let msg1 = "0/1 nodes are available: 1 Too many pods.";
    eventually("10 bound, 30 unschedulable", || async {
        let pods = e.pods().await;
        let bound = pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == "n1")
            .count();
        let unsched = pods
            .iter()
            .filter(|p| {
                condition(p, "PodScheduled").is_some_and(|c| {
                    c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == msg1
                })
            })
            .count();
        assert!(bound <= 10, "node n1 overcommitted: {bound} pods");
        bound == 10 && unsched == 30
    })
    .await;
    // It stays that way (nothing is bound late past the capacity).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(&e.placement().await, "n1"), 10);
    let failed = e.events("FailedScheduling").await;
    assert!(
        failed.iter().any(|ev| ev["message"] == msg1),
        "no FailedScheduling event: {failed:?}"
    );

    // A node joins: 10 more fit there, the other 20 stay pending with the new message.
    e.node("n2", 10).await;
    let msg2 = "0/2 nodes are available: 2 Too many pods.";
    eventually("n2 filled", || async {
        let m = e.placement().await;
        assert!(
            count(&m, "n1") <= 10 && count(&m, "n2") <= 10,
            "overcommitted: {m:?}"
        );
        count(&m, "n2") == 10
            && e.pods()
                .await
                .iter()
                .any(|p| condition(p, "PodScheduled").is_some_and(|c| c["message"] == msg2))
    })
    .await;

    // Bound pods leave n1: as many pending pods take their places, no more.
    let on_n1: Vec<String> = e
        .pods()
        .await
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == "n1")
        .map(|p| name(&p).to_string())
        .take(4)
        .collect();
    for n in &on_n1 {
        e.client()
            .call_delete_with(
                &format!("/api/v1/namespaces/{NS}/pods/{n}"),
                &json!({"gracePeriodSeconds": 0}),
            )
            .await
            .unwrap();
    }
    eventually("n1 refilled", || async {
        let m = e.placement().await;
        assert!(
            count(&m, "n1") <= 10 && count(&m, "n2") <= 10,
            "overcommitted: {m:?}"
        );
        count(&m, "n1") == 10 && count(&m, "") == 16
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let m = e.placement().await;
    assert_eq!(
        (count(&m, "n1"), count(&m, "n2"), count(&m, "")),
        (10, 10, 16)
    );

    // Every pod was bound once: one Scheduled event per bound pod, none for the deleted ones
    // twice.
    let mut scheduled: HashMap<String, usize> = HashMap::new();
    for ev in e.events("Scheduled").await {
        let pod = ev["involvedObject"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        *scheduled.entry(pod).or_default() += 1;
    }
    assert_eq!(scheduled.len(), 24, "{scheduled:?}");
    assert!(scheduled.values().all(|n| *n == 1), "{scheduled:?}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_created_while_binding_spread_and_each_is_bound_once() {
    let e = env().await;
    for n in ["a", "b", "c"] {
        e.node(n, 30).await;
    }
    let task = crate::spawn_scheduler(e.client(), &opts());
    // Pods arrive while earlier ones are being bound.
    for i in 0..90 {
        e.pod(&format!("q{i:02}")).await;
    }
    eventually("all 90 bound", || async {
        let m = e.placement().await;
        for n in ["a", "b", "c"] {
            assert!(count(&m, n) <= 30, "overcommitted: {m:?}");
        }
        count(&m, "") == 0
    })
    .await;
    let m = e.placement().await;
    assert_eq!(
        (count(&m, "a"), count(&m, "b"), count(&m, "c")),
        (30, 30, 30)
    );
    let scheduled = e.events("Scheduled").await;
    assert_eq!(scheduled.len(), 90);
    task.abort();
}
