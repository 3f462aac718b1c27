//! Correctness at scale (not timing): the ReplicaSet controller's batched creates never make more
//! pods than asked, even while creates fail; scale-down deletes exactly the surplus; the
//! scheduler, binding many pods at once over sampled nodes, never binds a pod twice nor puts more
//! pods on a node than it has room for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daas_apiserver::LocalClient;
use daas_controllers::{ControllerOptions, STAKED};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::common;

async fn add_node(c: &LocalClient, name: &str, pods: u32) {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name,
        "labels": {"kubernetes.io/hostname": name, STAKED: "true"}}});
    c.create("/api/v1/nodes", &node).await.unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    c.merge_patch(
        &format!("/api/v1/nodes/{name}/status"),
        &json!({"status": {
        "capacity": {"cpu": "64", "memory": "256Gi", "pods": pods.to_string()},
        "allocatable": {"cpu": "64", "memory": "256Gi", "pods": pods.to_string()},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "lastHeartbeatTime": now, "lastTransitionTime": now}]}}),
    )
    .await
    .unwrap();
}

/// Every pod ever created in `ns` (by name) and every node each pod was seen bound to.
#[derive(Default)]
struct Seen {
    created: BTreeSet<String>,
    nodes: BTreeMap<String, BTreeSet<String>>,
}

fn record(c: &LocalClient, ns: &str) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (c, s, path) = (
        c.clone(),
        seen.clone(),
        format!("/api/v1/namespaces/{ns}/pods?resourceVersion=0"),
    );
    let task = tokio::spawn(async move {
        let mut w = Box::pin(c.watch(&path).await.unwrap());
        while let Some(ev) = w.next().await {
            let name = ev.object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let mut s = s.lock().unwrap();
            if ev.kind == "ADDED" {
                s.created.insert(name.clone());
            }
            if let Some(n) = ev.object["spec"]["nodeName"].as_str() {
                s.nodes.entry(name).or_default().insert(n.to_string());
            }
        }
    });
    (seen, task)
}

async fn active_pods(c: &LocalClient, ns: &str) -> Vec<Value> {
    c.list(&format!("/api/v1/namespaces/{ns}/pods"))
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

async fn until<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn replicaset(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "registry.local/pause:1"}]}}}})
}

async fn namespace(c: &LocalClient, ns: &str) {
    c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await
    .unwrap();
    // Pods need the namespace's default ServiceAccount (made by its controller).
    until("default ServiceAccount", 30, || async {
        c.get_opt(&format!("/api/v1/namespaces/{ns}/serviceaccounts/default"))
            .await
            .unwrap()
            .map(|_| ())
            .ok_or_else(|| "missing".to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_of_50_makes_exactly_50_and_scale_down_deletes_exactly_the_surplus() {
    let env = common::with_controllers(ControllerOptions::default()).await;
    let c = &env.c;
    namespace(c, "rs50").await;
    let (seen, watch) = record(c, "rs50");
    c.create(
        "/apis/apps/v1/namespaces/rs50/replicasets",
        &replicaset("web", 50),
    )
    .await
    .unwrap();
    until("50 pods", 60, || async {
        let n = active_pods(c, "rs50").await.len();
        (n == 50).then_some(()).ok_or(format!("{n} pods"))
    })
    .await;
    // Let any further sync run: the count must stay at 50, and 50 pods were ever created.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(active_pods(c, "rs50").await.len(), 50);
    assert_eq!(seen.lock().unwrap().created.len(), 50, "pods ever created");
    let before: BTreeSet<String> = active_pods(c, "rs50")
        .await
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();

    c.merge_patch(
        "/apis/apps/v1/namespaces/rs50/replicasets/web",
        &json!({"spec": {"replicas": 7}}),
    )
    .await
    .unwrap();
    until("7 pods", 60, || async {
        let n = active_pods(c, "rs50").await.len();
        (n == 7).then_some(()).ok_or(format!("{n} pods"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: BTreeSet<String> = active_pods(c, "rs50")
        .await
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after.len(), 7);
    assert!(
        after.is_subset(&before),
        "scale-down replaced pods: {after:?}"
    );
    assert_eq!(
        seen.lock().unwrap().created.len(),
        50,
        "scale-down created pods"
    );
    let rs = c
        .get("/apis/apps/v1/namespaces/rs50/replicasets/web")
        .await
        .unwrap();
    assert_eq!(rs["status"]["replicas"], 7);
    watch.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_creates_stop_the_batch_and_never_overshoot() {
    let env = common::with_controllers(ControllerOptions::default()).await;
    let c = &env.c;
    namespace(c, "quota").await;
    c.create(
        "/api/v1/namespaces/quota/resourcequotas",
        &json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "pods"},
            "spec": {"hard": {"pods": "20"}}}),
    )
    .await
    .unwrap();
    let (seen, watch) = record(c, "quota");
    c.create(
        "/apis/apps/v1/namespaces/quota/replicasets",
        &replicaset("web", 50),
    )
    .await
    .unwrap();
    // Creates past the quota are refused: exactly 20 pods and a ReplicaFailure condition.
    until("20 pods and ReplicaFailure", 60, || async {
        let n = active_pods(c, "quota").await.len();
        let rs = c
            .get("/apis/apps/v1/namespaces/quota/replicasets/web")
            .await
            .unwrap();
        let failed = rs["status"]["conditions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["type"] == "ReplicaFailure" && x["reason"] == "FailedCreate")
        });
        (n == 20 && failed)
            .then_some(())
            .ok_or(format!("{n} pods, failure condition {failed}"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(active_pods(c, "quota").await.len(), 20);
    // Raise the quota: the ReplicaSet completes to exactly 50 and the condition goes.
    c.merge_patch(
        "/api/v1/namespaces/quota/resourcequotas/pods",
        &json!({"spec": {"hard": {"pods": "100"}}}),
    )
    .await
    .unwrap();
    until("50 pods without ReplicaFailure", 90, || async {
        let n = active_pods(c, "quota").await.len();
        let rs = c
            .get("/apis/apps/v1/namespaces/quota/replicasets/web")
            .await
            .unwrap();
        let failed = rs["status"]["conditions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["type"] == "ReplicaFailure"));
        (n == 50 && !failed)
            .then_some(())
            .ok_or(format!("{n} pods, failure condition {failed}"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(active_pods(c, "quota").await.len(), 50);
    assert_eq!(seen.lock().unwrap().created.len(), 50, "pods ever created");
    watch.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_binds_each_pod_once_and_never_over_a_nodes_capacity() {
    let env = common::with_controllers(ControllerOptions::default()).await;
    let c = &env.c;
    namespace(c, "sched").await;
    // 120 nodes (more than the 100 the scheduler samples) with room for 3 pods each, 400 pods.
    for i in 0..120 {
        add_node(c, &format!("n{i:03}"), 3).await;
    }
    let (seen, watch) = record(c, "sched");
    let pods: Vec<Value> = (0..400)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i:03}")},
                "spec": {"containers": [{"name": "c", "image": "registry.local/pause:1"}]}})
        })
        .collect();
    futures::future::join_all(
        pods.iter()
            .map(|p| c.create("/api/v1/namespaces/sched/pods", p)),
    )
    .await
    .into_iter()
    .for_each(|r| {
        r.unwrap();
    });
    until("360 pods bound", 300, || async {
        let bound = active_pods(c, "sched")
            .await
            .iter()
            .filter(|p| p["spec"]["nodeName"].is_string())
            .count();
        (bound == 360).then_some(()).ok_or(format!("{bound} bound"))
    })
    .await;
    // The other 40 stay Pending, Unschedulable for lack of pod slots.
    until("40 pods unschedulable", 120, || async {
        let unsched = active_pods(c, "sched")
            .await
            .iter()
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|a| {
                    a.iter().any(|x| {
                        x["type"] == "PodScheduled"
                            && x["reason"] == "Unschedulable"
                            && x["message"]
                                .as_str()
                                .is_some_and(|m| m.contains("Too many pods"))
                    })
                })
            })
            .count();
        (unsched == 40)
            .then_some(())
            .ok_or(format!("{unsched} unschedulable"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in active_pods(c, "sched").await {
        if let Some(n) = p["spec"]["nodeName"].as_str() {
            *per_node.entry(n.to_string()).or_default() += 1;
        }
    }
    assert_eq!(per_node.len(), 120, "every node used");
    assert!(per_node.values().all(|n| *n == 3), "{per_node:?}");
    let seen = seen.lock().unwrap();
    let twice: Vec<_> = seen.nodes.iter().filter(|(_, n)| n.len() > 1).collect();
    assert!(twice.is_empty(), "pods seen on two nodes: {twice:?}");
    watch.abort();
}
