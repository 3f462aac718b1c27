//! The scheduler and the controller manager on ONE set of shared caches: each cluster-wide
//! collection (pods, nodes) is listed and watched once for both, every request counted at the
//! router, while both still do their work (the ReplicaSet controller creates pods, the scheduler
//! binds them, the staked-node controller marks the nodes from its directory).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use daas_apiserver::LocalClient;
use daas_controllers::informer::Informers;
use daas_controllers::stakednodes::{
    NodeStake, StakeDirectory, StakeLookupError, StakedNodeController, ADDRESS_ANNOTATION,
};
use daas_controllers::{ControllerOptions, STAKED};
use serde_json::json;

use crate::common;

/// Requests per (kind, path): "list" or "watch" of a collection path.
#[derive(Default, Clone)]
struct Counts(Arc<Mutex<HashMap<(&'static str, String), usize>>>);

impl Counts {
    fn get(&self, kind: &'static str, path: &str) -> usize {
        let m = self.0.lock().unwrap();
        m.get(&(kind, path.to_string())).copied().unwrap_or(0)
    }
}

fn counted(app: axum::Router, counts: Counts) -> axum::Router {
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let counts = counts.clone();
            async move {
                if req.method() == axum::http::Method::GET {
                    let q = req.uri().query().unwrap_or("");
                    let kind = if q.contains("watch=true") || q.contains("watch=1") {
                        "watch"
                    } else {
                        "list"
                    };
                    let path = req.uri().path().to_string();
                    *counts.0.lock().unwrap().entry((kind, path)).or_default() += 1;
                }
                next.run(req).await
            }
        },
    ))
}

/// A directory that says every node is staked by `0xab`, counting lookups per node.
#[derive(Default)]
struct Directory(Mutex<HashMap<String, usize>>);

#[async_trait]
impl StakeDirectory for Directory {
    async fn node_stake(&self, node: &str) -> Result<NodeStake, StakeLookupError> {
        *self.0.lock().unwrap().entry(node.to_string()).or_default() += 1;
        Ok(NodeStake::Active {
            owner: "0xab".into(),
        })
    }
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn scheduler_and_controller_manager_share_one_list_and_watch_per_collection() {
    let mut env = common::api().await;
    let counts = Counts::default();
    let c = LocalClient::new(counted(env.app.clone(), counts.clone()), "tok");
    let opts = ControllerOptions {
        debounce: Duration::from_millis(5),
        ..Default::default()
    };
    let inf = Informers::new(c.clone());
    env.tasks
        .push(daas_controllers::spawn_scheduler_with(&inf, &opts));
    env.tasks
        .extend(daas_controllers::spawn_controller_manager_with(
            &inf,
            c.clone(),
            opts.clone(),
        ));
    let dir = Arc::new(Directory::default());
    env.tasks.push(daas_controllers::spawn_controller(
        c.clone(),
        StakedNodeController::new(c.clone(), dir.clone()).with_informers(inf.clone()),
        &opts,
    ));
    // A node the staked-node controller must mark before the scheduler may use it.
    c.create(
        "/api/v1/nodes",
        &json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}),
    )
    .await
    .unwrap();
    c.merge_patch("/api/v1/nodes/n1/status", &json!({"status": {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}}))
        .await
        .unwrap();
    c.create(
        "/apis/apps/v1/namespaces/default/replicasets",
        &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
    )
    .await
    .unwrap();
    eventually("3 pods created and bound to the staked node", || async {
        let pods = env.c.list("/api/v1/namespaces/default/pods").await.unwrap();
        pods.len() == 3 && pods.iter().all(|p| p["spec"]["nodeName"] == "n1")
    })
    .await;
    let node = env.c.get("/api/v1/nodes/n1").await.unwrap();
    assert_eq!(node["metadata"]["labels"][STAKED], "true");
    assert_eq!(node["metadata"]["annotations"][ADDRESS_ANNOTATION], "0xab");
    // Both groups (scheduler, ReplicaSet, GC, PV, endpoints, ... and staked-nodes) read pods
    // and nodes from the one cache: one list and one watch each.
    for p in ["/api/v1/pods", "/api/v1/nodes"] {
        assert_eq!(counts.get("list", p), 1, "lists of {p}");
        assert_eq!(counts.get("watch", p), 1, "watches of {p}");
    }

    // The node changes (status updates, as a kubelet's): the staked-node controller is woken
    // through its work queue for that node only, not looking every node up again.
    c.create(
        "/api/v1/nodes",
        &json!({"metadata": {"name": "n2", "labels": {"kubernetes.io/hostname": "n2"}}}),
    )
    .await
    .unwrap();
    eventually("n2 marked", || async {
        let n = env.c.get("/api/v1/nodes/n2").await.unwrap();
        n["metadata"]["labels"][STAKED] == "true"
    })
    .await;
    let n1_before = dir.0.lock().unwrap().get("n1").copied().unwrap_or(0);
    let n2_before = dir.0.lock().unwrap().get("n2").copied().unwrap_or(0);
    for i in 0..5 {
        c.merge_patch(
            "/api/v1/nodes/n2/status",
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True",
                "lastHeartbeatTime": now(), "lastTransitionTime": now(), "message": format!("beat {i}")}]}}),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("n2's changes looked up", || async {
        dir.0.lock().unwrap().get("n2").copied().unwrap_or(0) > n2_before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n1_after = dir.0.lock().unwrap().get("n1").copied().unwrap_or(0);
    assert_eq!(
        n1_after, n1_before,
        "n1 did not change: no ledger lookup for it before the resync"
    );
}
