//! In-process: the real router over a temporary embedded store, the controllers running against
//! it, and the test playing kubelet for Ready, staked nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use daas_apiserver::LocalClient;
use daas_controllers::stakednodes::{
    NodeStake, StakeDirectory, StakeLookupError, StakedNodeController, ADDRESS_ANNOTATION,
};
use daas_controllers::{ControllerOptions, STAKED};
use serde_json::{json, Value};

use crate::common;
use common::Env;

async fn env() -> Env {
    common::with_controllers(ControllerOptions {
        resync: Duration::from_secs(2),
        event_interval: Duration::from_millis(500),
        ..Default::default()
    })
    .await
}

async fn add_node(c: &LocalClient, name: &str, staked: bool, taints: Value, extra_labels: Value) {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if staked {
        labels[STAKED] = json!("true");
    }
    if let Some(m) = extra_labels.as_object() {
        for (k, v) in m {
            labels[k] = v.clone();
        }
    }
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}});
    c.create("/api/v1/nodes", &node).await.unwrap();
    c.merge_patch(&format!("/api/v1/nodes/{name}/status"), &json!({"status": {
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
            "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}}))
        .await
        .unwrap();
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Kubelet: every pod bound to a node becomes Running and Ready.
async fn kubelet(c: &LocalClient, ts: &str) {
    for p in c.list("/api/v1/pods").await.unwrap() {
        let node = p["spec"]["nodeName"].as_str().unwrap_or("");
        let (ns, name) = (
            p["metadata"]["namespace"].as_str().unwrap(),
            p["metadata"]["name"].as_str().unwrap(),
        );
        if !node.is_empty() && !p["metadata"]["deletionTimestamp"].is_null() {
            // Terminating: containers stopped, finish the graceful deletion.
            let _ = c
                .call_delete_with(
                    &format!("/api/v1/namespaces/{ns}/pods/{name}"),
                    &json!({"gracePeriodSeconds": 0}),
                )
                .await;
            continue;
        }
        if node.is_empty() || p["status"]["phase"] == "Running" {
            continue;
        }
        // An image tagged `:404` cannot be pulled: the pod stays Pending, never Ready.
        if p["spec"]["containers"][0]["image"]
            .as_str()
            .is_some_and(|i| i.ends_with(":404"))
        {
            continue;
        }
        let conds = json!([
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
            {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": ts},
            {"type": "Ready", "status": "True", "lastTransitionTime": ts},
        ]);
        let _ = c
            .merge_patch(&format!("/api/v1/namespaces/{ns}/pods/{name}/status"),
                &json!({"status": {"phase": "Running", "podIP": "10.42.0.9", "hostIP": "192.168.0.1", "conditions": conds}}))
            .await;
    }
}

fn deployment(name: &str, replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image, "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}})
}

async fn pods_of(c: &LocalClient, app: &str) -> Vec<Value> {
    c.list(&format!(
        "/api/v1/namespaces/default/pods?labelSelector=app%3D{app}"
    ))
    .await
    .unwrap()
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .map(|a| {
            a.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .unwrap_or(false)
}

/// Poll (playing kubelet each round) until `check` passes; `check` may also assert invariants.
async fn until<F, Fut>(c: &LocalClient, what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let ts = now();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        kubelet(c, &ts).await;
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn deploy_done(c: &LocalClient, name: &str, replicas: i64) -> Result<Value, String> {
    let d = c
        .get(&format!(
            "/apis/apps/v1/namespaces/default/deployments/{name}"
        ))
        .await
        .map_err(|e| e.message)?;
    let s = &d["status"];
    let ok = d["metadata"]["generation"] == s["observedGeneration"]
        && s["updatedReplicas"] == replicas
        && s["replicas"] == replicas
        && s["availableReplicas"] == replicas
        && s["readyReplicas"] == replicas;
    let progressing = s["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Progressing"))
        .cloned();
    let avail = s["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Available"))
        .cloned();
    if ok
        && progressing
            .map(|p| p["reason"] == "NewReplicaSetAvailable" && p["status"] == "True")
            .unwrap_or(false)
        && avail.map(|a| a["status"] == "True").unwrap_or(false)
    {
        Ok(d)
    } else {
        Err(format!("status {s}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rollout_scale_and_cascading_delete() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "node-a", true, json!(null), json!({})).await;
    add_node(c, "node-b", true, json!(null), json!({})).await;
    c.create(
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("web", 3, "nginx:1"),
    )
    .await
    .unwrap();

    until(c, "3 pods ready on 2 nodes", 30, || async {
        deploy_done(c, "web", 3).await?;
        let pods = pods_of(c, "web").await;
        let nodes: std::collections::BTreeSet<&str> = pods
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str())
            .collect();
        if pods.len() == 3 && pods.iter().all(ready) && nodes.len() == 2 {
            Ok(())
        } else {
            Err(format!("{} pods on {nodes:?}", pods.len()))
        }
    })
    .await;
    let d = c
        .get("/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .unwrap();
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    let rss = c
        .list("/apis/apps/v1/namespaces/default/replicasets")
        .await
        .unwrap();
    assert_eq!(rss.len(), 1);
    let rs1 = rss[0].clone();
    let hash = rs1["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rs1["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs1["metadata"]["ownerReferences"][0]["uid"],
        d["metadata"]["uid"]
    );
    assert_eq!(rs1["metadata"]["ownerReferences"][0]["controller"], true);
    for p in pods_of(c, "web").await {
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["uid"],
            rs1["metadata"]["uid"]
        );
        assert!(p["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("web-{hash}-")));
    }

    // Rolling update with maxUnavailable 0 / maxSurge 1: never fewer than 3 available, never more than 4 pods.
    c.merge_patch("/apis/apps/v1/namespaces/default/deployments/web",
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}))
        .await
        .unwrap();
    until(c, "rollout to nginx:2", 60, || async {
        let pods = pods_of(c, "web").await;
        let avail = pods.iter().filter(|p| ready(p)).count();
        assert!(avail >= 3, "availability dropped to {avail}");
        assert!(pods.len() <= 4, "surge exceeded: {} pods", pods.len());
        deploy_done(c, "web", 3).await?;
        let old = c
            .get(&format!(
                "/apis/apps/v1/namespaces/default/replicasets/{}",
                rs1["metadata"]["name"].as_str().unwrap()
            ))
            .await
            .map_err(|e| e.message)?;
        if old["spec"]["replicas"] != 0 || old["status"]["replicas"].as_i64().unwrap_or(0) != 0 {
            return Err(format!("old rs {}", old["status"]));
        }
        if pods.len() == 3
            && pods
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2")
        {
            Ok(())
        } else {
            Err("old pods remain".into())
        }
    })
    .await;
    let d = c
        .get("/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .unwrap();
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(
        c.list("/apis/apps/v1/namespaces/default/replicasets")
            .await
            .unwrap()
            .len(),
        2,
        "old RS kept as history"
    );

    // kubectl scale goes through /scale.
    c.merge_patch(
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        &json!({"spec": {"replicas": 5}}),
    )
    .await
    .unwrap();
    until(c, "scale to 5", 30, || async {
        deploy_done(c, "web", 5).await?;
        let n = pods_of(c, "web").await.len();
        if n == 5 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    })
    .await;
    c.merge_patch(
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        &json!({"spec": {"replicas": 1}}),
    )
    .await
    .unwrap();
    until(c, "scale to 1", 30, || async {
        deploy_done(c, "web", 1).await?;
        let n = pods_of(c, "web").await.len();
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    })
    .await;

    // Background cascading deletion.
    c.delete("/apis/apps/v1/namespaces/default/deployments/web")
        .await
        .unwrap();
    until(c, "cascading delete", 30, || async {
        let rs = c
            .list("/apis/apps/v1/namespaces/default/replicasets")
            .await
            .unwrap()
            .len();
        let pods = pods_of(c, "web").await.len();
        if rs == 0 && pods == 0 {
            Ok(())
        } else {
            Err(format!("{rs} rs, {pods} pods"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_stays_pending_with_one_event() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "node-a", true, json!(null), json!({})).await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "picky", "namespace": "default"},
        "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "busybox"}]}});
    c.create("/api/v1/namespaces/default/pods", &pod)
        .await
        .unwrap();
    let want = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.";
    until(c, "FailedScheduling", 20, || async {
        let p = c.get("/api/v1/namespaces/default/pods/picky").await.map_err(|e| e.message)?;
        let cond = p["status"]["conditions"].as_array().and_then(|a| a.iter().find(|c| c["type"] == "PodScheduled")).cloned().unwrap_or_default();
        if !(cond["status"] == "False" && cond["reason"] == "Unschedulable" && cond["message"] == want) {
            return Err(format!("condition {cond}"));
        }
        if p["status"]["phase"] != "Pending" || !p["spec"]["nodeName"].is_null() {
            return Err("not pending".into());
        }
        let evs = c.list("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dpicky,reason%3DFailedScheduling").await.unwrap();
        if evs.len() == 1 && evs[0]["message"] == want && evs[0]["type"] == "Warning" { Ok(()) } else { Err(format!("events {evs:?}")) }
    })
    .await;
    // Retries (node churn, resyncs) bump the one event instead of adding more.
    for i in 0..5 {
        c.merge_patch(
            "/api/v1/nodes/node-a",
            &json!({"metadata": {"annotations": {"churn": i.to_string()}}}),
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let evs = c.list("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dpicky,reason%3DFailedScheduling").await.unwrap();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(evs[0]["count"].as_i64().unwrap() >= 2, "{}", evs[0]);

    // A node that matches appears: the pod is retried and bound.
    add_node(c, "node-ssd", true, json!(null), json!({"disk": "ssd"})).await;
    until(c, "bound after node added", 20, || async {
        let p = c
            .get("/api/v1/namespaces/default/pods/picky")
            .await
            .map_err(|e| e.message)?;
        if p["spec"]["nodeName"] == "node-ssd" {
            Ok(())
        } else {
            Err(format!("{}", p["spec"]["nodeName"]))
        }
    })
    .await;
    // The Scheduled event is written after the binding (in batches): wait for it.
    until(c, "Scheduled event", 20, || async {
        let evs = c.list("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dpicky,reason%3DScheduled").await.map_err(|e| e.message)?;
        match evs.first() {
            Some(ev) if ev["message"] == "Successfully assigned default/picky to node-ssd" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_unstaked_and_resources_are_respected() {
    let e = env().await;
    let c = &e.c;
    add_node(
        c,
        "node-tainted",
        true,
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
        json!({}),
    )
    .await;
    add_node(c, "node-free", true, json!(null), json!({})).await;
    add_node(c, "node-unstaked", false, json!(null), json!({})).await;
    c.create(
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("plain", 4, "nginx:1"),
    )
    .await
    .unwrap();
    until(c, "4 pods on the untainted node", 30, || async {
        deploy_done(c, "plain", 4).await?;
        let pods = pods_of(c, "plain").await;
        if pods.len() == 4 && pods.iter().all(|p| p["spec"]["nodeName"] == "node-free") {
            Ok(())
        } else {
            Err(format!("{pods:?}"))
        }
    })
    .await;
    // A tolerating pod may use the tainted node (and, being least loaded, does).
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-job", "namespace": "default"},
        "spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            "containers": [{"name": "c", "image": "cuda"}]}});
    c.create("/api/v1/namespaces/default/pods", &pod)
        .await
        .unwrap();
    // Too big for any node.
    let huge = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "64"}}}]}});
    c.create("/api/v1/namespaces/default/pods", &huge)
        .await
        .unwrap();
    until(c, "tolerating pod on tainted node, huge pod unschedulable", 20, || async {
        let p = c.get("/api/v1/namespaces/default/pods/gpu-job").await.map_err(|e| e.message)?;
        if p["spec"]["nodeName"] != "node-tainted" {
            return Err(format!("gpu-job on {}", p["spec"]["nodeName"]));
        }
        let h = c.get("/api/v1/namespaces/default/pods/huge").await.map_err(|e| e.message)?;
        let msg = h["status"]["conditions"].as_array().and_then(|a| a.iter().find(|c| c["type"] == "PodScheduled")).map(|c| c["message"].clone()).unwrap_or_default();
        let want = "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't have the k3s-daas.io/staked=true label (not staked), 1 node(s) had untolerated taint {dedicated: gpu}.";
        if msg == want { Ok(()) } else { Err(format!("huge: {msg}")) }
    })
    .await;
}

async fn raw_delete(app: &axum::Router, path: &str, body: &str) -> u16 {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method("DELETE")
        .uri(path)
        .header("authorization", "Bearer tok")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_and_foreground_propagation() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "node-a", true, json!(null), json!({})).await;
    c.create(
        "/apis/apps/v1/namespaces/default/deployments",
        &deployment("keep", 2, "nginx:1"),
    )
    .await
    .unwrap();
    until(c, "ready", 30, || async {
        deploy_done(c, "keep", 2).await.map(|_| ())
    })
    .await;

    // Orphan: the Deployment goes, its ReplicaSet and pods stay, without an owner.
    assert_eq!(
        raw_delete(
            &e.app,
            "/apis/apps/v1/namespaces/default/deployments/keep",
            r#"{"propagationPolicy":"Orphan"}"#
        )
        .await,
        200
    );
    until(c, "orphaned", 20, || async {
        if c.get_opt("/apis/apps/v1/namespaces/default/deployments/keep")
            .await
            .unwrap()
            .is_some()
        {
            return Err("deployment still there".into());
        }
        let rss = c
            .list("/apis/apps/v1/namespaces/default/replicasets")
            .await
            .unwrap();
        if rss.len() == 1
            && rss[0]["metadata"]["ownerReferences"]
                .as_array()
                .map(|a| a.is_empty())
                .unwrap_or(true)
        {
            Ok(())
        } else {
            Err(format!("{rss:?}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        pods_of(c, "keep").await.len(),
        2,
        "orphaned pods must survive"
    );

    // Foreground: the ReplicaSet disappears only after its pods.
    let rs = c
        .list("/apis/apps/v1/namespaces/default/replicasets")
        .await
        .unwrap()[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        raw_delete(
            &e.app,
            &format!("/apis/apps/v1/namespaces/default/replicasets/{rs}"),
            r#"{"propagationPolicy":"Foreground"}"#
        )
        .await,
        200
    );
    until(c, "foreground delete", 20, || async {
        let rss = c
            .list("/apis/apps/v1/namespaces/default/replicasets")
            .await
            .unwrap()
            .len();
        let pods = pods_of(c, "keep").await.len();
        if rss == 0 && pods == 0 {
            Ok(())
        } else {
            Err(format!("{rss} rs {pods} pods"))
        }
    })
    .await;
}

/// The ledger as a table (the master's directory reads the real ledger; this one is set by the test).
struct Table(std::sync::Mutex<std::collections::HashMap<String, NodeStake>>);

#[async_trait::async_trait]
impl StakeDirectory for Table {
    async fn node_stake(&self, node: &str) -> Result<NodeStake, StakeLookupError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(node)
            .cloned()
            .unwrap_or(NodeStake::Unknown))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_nodes_staked_on_the_ledger_get_workloads() {
    let e = env().await;
    let table = Arc::new(Table(Default::default()));
    table.0.lock().unwrap().insert(
        "real".into(),
        NodeStake::Active {
            owner: "0xaa".into(),
        },
    );
    let opts = ControllerOptions {
        resync: Duration::from_millis(300),
        ..Default::default()
    };
    let _labeller = daas_controllers::spawn_controller(
        e.c.clone(),
        StakedNodeController::new(e.c.clone(), table.clone()),
        &opts,
    );
    add_node(&e.c, "real", false, json!([]), json!({})).await;
    add_node(&e.c, "ghost", false, json!([]), json!({})).await;
    e.c.create(
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await
    .unwrap();
    until(&e.c, "pod bound to the staked node", 20, || async {
        let p =
            e.c.get("/api/v1/namespaces/default/pods/p")
                .await
                .map_err(|e| e.message)?;
        match p["spec"]["nodeName"].as_str() {
            Some("real") => Ok(()),
            other => Err(format!("nodeName {other:?}")),
        }
    })
    .await;
    let real = e.c.get("/api/v1/nodes/real").await.unwrap();
    assert_eq!(real["metadata"]["labels"][STAKED], "true");
    assert_eq!(real["metadata"]["annotations"][ADDRESS_ANNOTATION], "0xaa");
    let ghost = e.c.get("/api/v1/nodes/ghost").await.unwrap();
    assert!(ghost["metadata"]["labels"][STAKED].is_null(), "{ghost}");
    // Unstaking on the ledger takes the label away again.
    table.0.lock().unwrap().insert(
        "real".into(),
        NodeStake::Inactive {
            owner: "0xaa".into(),
        },
    );
    until(&e.c, "staked label removed", 20, || async {
        let n = e.c.get("/api/v1/nodes/real").await.map_err(|e| e.message)?;
        if n["metadata"]["labels"][STAKED].is_null() {
            Ok(())
        } else {
            Err(n["metadata"]["labels"].to_string())
        }
    })
    .await;
}

async fn rs_specs(c: &LocalClient, app: &str) -> Vec<(String, i64, Value)> {
    let mut rss = c
        .list(&format!(
            "/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3D{app}"
        ))
        .await
        .unwrap();
    rss.sort_by(|a, b| {
        a["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .cmp(&b["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str())
    });
    rss.into_iter()
        .map(|r| {
            (
                r["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r["spec"]["replicas"].as_i64().unwrap_or(-1),
                r["metadata"]["annotations"].clone(),
            )
        })
        .collect()
}

/// Upstream "Deployment should support proportional scaling": a rollout stuck on an image that
/// cannot be pulled (10 replicas, maxSurge 3, maxUnavailable 2 → old 8, new 5), then the
/// Deployment is resized to 30: the 20 extra replicas are spread 12/8 (old 20, new 13), not all
/// given to the new ReplicaSet; the stuck rollout does not move afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_during_rollout_scales_replicasets_proportionally() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "node-a", true, json!(null), json!({})).await;
    add_node(c, "node-b", true, json!(null), json!({})).await;
    let mut d = deployment("prop", 10, "web:1");
    d["spec"]["strategy"]["rollingUpdate"] = json!({"maxSurge": 3, "maxUnavailable": 2});
    c.create("/apis/apps/v1/namespaces/default/deployments", &d)
        .await
        .unwrap();
    until(c, "10 replicas available", 60, || async {
        deploy_done(c, "prop", 10).await.map(|_| ())
    })
    .await;
    let dp = "/apis/apps/v1/namespaces/default/deployments/prop";
    c.merge_patch(dp, &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "web:404"}]}}}}))
        .await
        .unwrap();
    let stuck = |old: i64, new: i64| async move {
        let rss = rs_specs(c, "prop").await;
        let specs: Vec<(String, i64)> = rss.iter().map(|(i, n, _)| (i.clone(), *n)).collect();
        if specs == vec![("web:1".to_string(), old), ("web:404".to_string(), new)] {
            Ok(rss)
        } else {
            Err(format!("replica sets {specs:?}"))
        }
    };
    until(c, "rollout stuck at 8 old + 5 new", 60, || async {
        stuck(8, 5).await.map(|_| ())
    })
    .await;

    c.merge_patch(dp, &json!({"spec": {"replicas": 30}}))
        .await
        .unwrap();
    until(c, "old 20 + new 13 after the resize to 30", 60, || async {
        let rss = stuck(20, 13).await?;
        for (_, _, ann) in &rss {
            if ann["deployment.kubernetes.io/desired-replicas"] != "30"
                || ann["deployment.kubernetes.io/max-replicas"] != "33"
            {
                return Err(format!("annotations {ann}"));
            }
        }
        Ok(())
    })
    .await;
    // Settled: further passes leave the stuck rollout where it is.
    tokio::time::sleep(Duration::from_secs(3)).await;
    until(c, "still old 20 + new 13", 5, || async {
        stuck(20, 13).await.map(|_| ())
    })
    .await;
    let events = c.list("/api/v1/namespaces/default/events").await.unwrap();
    assert!(
        events.iter().any(|e| e["reason"] == "ScalingReplicaSet"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("from 8 to 20"))),
        "no scaling event for the old replica set"
    );
}

fn bound_pod(name: &str, node: &str, tolerations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"group": "taint"}},
        "spec": {"nodeName": node, "tolerations": tolerations,
            "containers": [{"name": "c", "image": "pause:1"}]}})
}

/// Live (not terminating) pods of the taint test, by name.
async fn live_pods(c: &LocalClient) -> std::collections::BTreeSet<String> {
    pods_of_group(c)
        .await
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn pods_of_group(c: &LocalClient) -> Vec<Value> {
    c.list("/api/v1/namespaces/default/pods?labelSelector=group%3Dtaint")
        .await
        .unwrap()
}

/// Upstream NoExecuteTaintManager: an untolerated NoExecute taint evicts at once, a toleration
/// without tolerationSeconds keeps the pod, tolerationSeconds delays the eviction from the
/// taint's timeAdded, and removing the taint in time cancels it (also for a taint without
/// timeAdded, timed from when it was first seen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_execute_taints_evict_by_toleration_seconds() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "node-a", true, json!(null), json!({})).await;
    add_node(c, "node-b", true, json!(null), json!({})).await;
    let tol = |secs: Option<i64>| {
        let mut t = json!({"key": "example.com/evict", "value": "yes", "effect": "NoExecute"});
        if let Some(s) = secs {
            t["tolerationSeconds"] = json!(s);
        }
        json!([t])
    };
    for p in [
        bound_pod("untolerated", "node-a", json!([])),
        bound_pod("forever", "node-a", tol(None)),
        bound_pod("four-seconds", "node-a", tol(Some(4))),
        bound_pod("reprieved", "node-b", tol(Some(4))),
    ] {
        c.create("/api/v1/namespaces/default/pods", &p)
            .await
            .unwrap();
    }
    until(c, "4 pods running", 30, || async {
        let pods = pods_of_group(c).await;
        if pods.len() == 4 && pods.iter().all(ready) {
            Ok(())
        } else {
            Err(format!("{} pods", pods.len()))
        }
    })
    .await;
    let all: std::collections::BTreeSet<String> =
        ["untolerated", "forever", "four-seconds", "reprieved"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(live_pods(c).await, all, "evicted before any taint");

    let taint = json!({"key": "example.com/evict", "value": "yes", "effect": "NoExecute"});
    let mut timed = taint.clone();
    timed["timeAdded"] = json!(now());
    // node-b first: the pass that evicts node-a's untolerating pod lists the nodes after both
    // taints, so it has already scheduled node-b's eviction when the test untaints node-b.
    c.merge_patch(
        "/api/v1/nodes/node-b",
        &json!({"spec": {"taints": [taint]}}),
    )
    .await
    .unwrap();
    c.merge_patch(
        "/api/v1/nodes/node-a",
        &json!({"spec": {"taints": [timed]}}),
    )
    .await
    .unwrap();
    let tainted_at = Instant::now();
    until(c, "the untolerating pod evicted", 10, || async {
        let live = live_pods(c).await;
        if live.contains("untolerated") {
            Err(format!("{live:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    assert!(
        tainted_at.elapsed() < Duration::from_secs(3),
        "the untolerating pod should go at once"
    );
    let live = live_pods(c).await;
    assert!(
        live.contains("four-seconds") && live.contains("reprieved") && live.contains("forever"),
        "tolerating pods went too early: {live:?}"
    );
    // Untaint node-b in time: its pod's eviction is cancelled.
    c.merge_patch("/api/v1/nodes/node-b", &json!({"spec": {"taints": null}}))
        .await
        .unwrap();
    until(c, "the 4-second pod evicted", 15, || async {
        let live = live_pods(c).await;
        if live.contains("four-seconds") {
            Err(format!("{live:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    assert!(
        tainted_at.elapsed() >= Duration::from_secs(2),
        "the 4-second toleration was not honoured ({:?})",
        tainted_at.elapsed()
    );
    // Past node-b's toleration too: the untainted pod and the forever-tolerating one remain.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let live = live_pods(c).await;
    let want: std::collections::BTreeSet<String> = ["forever", "reprieved"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(live, want);
    let events = c.list("/api/v1/namespaces/default/events").await.unwrap();
    let has = |msg: &str| {
        events
            .iter()
            .any(|e| e["reason"] == "TaintManagerEviction" && e["message"] == msg)
    };
    assert!(has("Marking for deletion Pod default/untolerated"));
    assert!(has("Marking for deletion Pod default/four-seconds"));
    assert!(has("Cancelling deletion of Pod default/reprieved"));
    assert!(!has("Marking for deletion Pod default/forever"));

    // A pod bound to the still-tainted node later is evicted gracefully (no kubelet plays here,
    // so it stays Terminating) and carries the DisruptionTarget condition.
    c.create(
        "/api/v1/namespaces/default/pods",
        &bound_pod("latecomer", "node-a", json!([])),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let p = loop {
        let p = c
            .get("/api/v1/namespaces/default/pods/latecomer")
            .await
            .unwrap();
        if !p["metadata"]["deletionTimestamp"].is_null() {
            break p;
        }
        assert!(Instant::now() < deadline, "latecomer not evicted: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        p["metadata"]["deletionGracePeriodSeconds"].as_i64() > Some(0),
        "graceful on a reachable node: {p}"
    );
    let cond = p["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "DisruptionTarget"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(cond["status"], "True", "{p}");
    assert_eq!(cond["reason"], "DeletionByTaintManager", "{p}");
}

/// The node lifecycle controller taints a silent node unreachable and leaves eviction to the
/// taint eviction controller: a pod whose toleration has run out (0 s) is deleted at once without
/// a grace period (no kubelet is left to stop it), one with the admission's default toleration
/// (`--default-unreachable-toleration-seconds`, here 6 s) after that time, and a pod tolerating
/// `unreachable` forever (like a DaemonSet's) stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_evicts_only_untolerating_pods() {
    let e = common::with_controllers_on(
        ControllerOptions {
            resync: Duration::from_secs(2),
            event_interval: Duration::from_millis(500),
            ..Default::default()
        },
        daas_apiserver::ServerOptions {
            default_tolerations: daas_apiserver::defaulttolerations::DefaultTolerations {
                not_ready_seconds: 300,
                unreachable_seconds: 6,
            },
            ..Default::default()
        },
    )
    .await;
    let c = &e.c;
    add_node(c, "silent", true, json!(null), json!({})).await;
    // A second node that keeps renewing its Lease: with every node silent the controller would
    // assume it is the one cut off and evict nothing (upstream's master disruption mode).
    add_node(c, "alive", true, json!(null), json!({})).await;
    let _ = c
        .create(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-node-lease"}}),
        )
        .await;
    let renewer = {
        let c = c.clone();
        tokio::spawn(async move {
            let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
            loop {
                let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": "alive", "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": "alive", "renewTime": t}});
                if c.merge_patch(&format!("{leases}/alive"), &lease)
                    .await
                    .is_err()
                {
                    let _ = c.create(leases, &lease).await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let tolerant = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]);
    let zero = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}]);
    for p in [
        bound_pod("victim", "silent", json!([])),
        bound_pod("zero", "silent", zero),
        bound_pod("tolerant", "silent", tolerant),
    ] {
        let created = c
            .create("/api/v1/namespaces/default/pods", &p)
            .await
            .unwrap();
        // Each unreachable toleration is kept as given; only the victim gets the default.
        let unreachable: Vec<&Value> = created["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["key"] == "node.kubernetes.io/unreachable")
            .collect();
        assert_eq!(unreachable.len(), 1, "{created}");
        if created["metadata"]["name"] == "victim" {
            assert_eq!(unreachable[0]["tolerationSeconds"], 6, "{created}");
        }
    }
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _renewer = Abort(renewer);
    let informers = daas_controllers::informer::Informers::new(c.clone());
    assert!(informers.serves("/apis/coordination.k8s.io/v1/leases"));
    let _lifecycle = Abort(daas_controllers::spawn_controller(
        c.clone(),
        // Nodes and Leases from the shared caches, as in the master.
        daas_controllers::nodelifecycle::NodeLifecycleController::new(
            c.clone(),
            Duration::from_secs(1),
            None,
        )
        .with_informers(informers),
        &ControllerOptions::default(),
    ));
    let names = || async {
        pods_of_group(c)
            .await
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect::<Vec<String>>()
    };
    // "zero" goes at once once the node is tainted NoExecute.
    let deadline = Instant::now() + Duration::from_secs(15);
    let tainted_at = loop {
        let now = names().await;
        if !now.contains(&"zero".to_string()) {
            let node = c.get("/api/v1/nodes/silent").await.unwrap();
            let added = node["spec"]["taints"]
                .as_array()
                .and_then(|ts| {
                    ts.iter().find(|t| {
                        t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"
                    })
                })
                .and_then(|t| t["timeAdded"].as_str())
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .unwrap_or_else(|| panic!("zero evicted without the NoExecute taint: {node}"));
            break added;
        }
        assert!(
            Instant::now() < deadline,
            "zero not deleted outright: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The victim stays for its 6 s default toleration (checked while surely within them)...
    let since = chrono::Utc::now().signed_duration_since(tainted_at);
    if since < chrono::Duration::seconds(4) {
        assert!(
            names().await.contains(&"victim".to_string()),
            "victim evicted before its toleration ran out"
        );
    }
    // ... then goes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = names().await;
        if now == vec!["tolerant".to_string()] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "victim not deleted after its toleration: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let evicted_after = chrono::Utc::now().signed_duration_since(tainted_at);
    assert!(
        evicted_after >= chrono::Duration::seconds(6),
        "victim evicted {evicted_after} after the taint"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = c
        .get("/api/v1/namespaces/default/pods/tolerant")
        .await
        .unwrap();
    assert!(p["metadata"]["deletionTimestamp"].is_null(), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_ca_configmap_in_every_namespace_recreated_and_reset() {
    use daas_controllers::rootca::{
        RootCaPublisher, CA_KEY, CONFIG_MAP_NAME, DESCRIPTION, DESCRIPTION_ANNOTATION,
    };
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBcluster\n-----END CERTIFICATE-----\n";
    let e = env().await;
    let opts = ControllerOptions {
        resync: Duration::from_secs(30),
        ..Default::default()
    };
    let _publisher = daas_controllers::spawn_controller(
        e.c.clone(),
        RootCaPublisher::new(e.c.clone(), PEM),
        &opts,
    );
    let path = |ns: &str| format!("/api/v1/namespaces/{ns}/configmaps/{CONFIG_MAP_NAME}");
    let published = |ns: &'static str| {
        let c = e.c.clone();
        let p = path(ns);
        move || {
            let c = c.clone();
            let p = p.clone();
            async move {
                let cm = c.get(&p).await.map_err(|e| e.message)?;
                if cm["data"] != json!({CA_KEY: PEM}) {
                    return Err(format!("data {}", cm["data"]));
                }
                if cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION] != DESCRIPTION {
                    return Err(format!("annotations {}", cm["metadata"]["annotations"]));
                }
                Ok(())
            }
        }
    };
    // Existing namespaces (the watch wakes the controller well before the 30 s resync).
    until(
        &e.c,
        "kube-root-ca.crt in default",
        10,
        published("default"),
    )
    .await;
    until(
        &e.c,
        "kube-root-ca.crt in kube-system",
        10,
        published("kube-system"),
    )
    .await;
    // A new namespace gets it at once.
    e.c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}),
    )
    .await
    .unwrap();
    until(&e.c, "kube-root-ca.crt in fresh", 10, published("fresh")).await;
    // Deleted: recreated.
    e.c.delete(&path("fresh")).await.unwrap();
    until(&e.c, "kube-root-ca.crt recreated", 10, published("fresh")).await;
    // Edited: reset, other metadata kept.
    e.c.merge_patch(
        &path("fresh"),
        &json!({"metadata": {"labels": {"mine": "yes"}, "annotations": {DESCRIPTION_ANNOTATION: null}},
            "data": {CA_KEY: "not a CA", "extra": "x"}}),
    )
    .await
    .unwrap();
    until(&e.c, "kube-root-ca.crt reset", 10, published("fresh")).await;
    let cm = e.c.get(&path("fresh")).await.unwrap();
    assert_eq!(cm["metadata"]["labels"]["mine"], "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_service_account_in_every_namespace_and_recreated() {
    use daas_controllers::serviceaccounts::{ServiceAccountsController, DEFAULT_NAME};
    let e = env().await;
    let sa = |ns: &str| format!("/api/v1/namespaces/{ns}/serviceaccounts/{DEFAULT_NAME}");
    // Creating a namespace no longer makes its account in the request: the controller does.
    e.c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "early"}}),
    )
    .await
    .unwrap();
    assert_eq!(e.c.get(&sa("early")).await.unwrap_err().code, 404);
    let opts = ControllerOptions {
        resync: Duration::from_secs(30),
        ..Default::default()
    };
    let _ctrl = daas_controllers::spawn_controller(
        e.c.clone(),
        ServiceAccountsController::new(e.c.clone()),
        &opts,
    );
    let exists = |ns: &'static str| {
        let c = e.c.clone();
        let p = sa(ns);
        move || {
            let c = c.clone();
            let p = p.clone();
            async move { c.get(&p).await.map(|_| ()).map_err(|e| e.message) }
        }
    };
    for ns in ["default", "kube-system", "early"] {
        until(&e.c, "default ServiceAccount", 10, exists(ns)).await;
    }
    e.c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}}),
    )
    .await
    .unwrap();
    until(
        &e.c,
        "default ServiceAccount in a new namespace",
        10,
        exists("later"),
    )
    .await;
    let first = e.c.get(&sa("later")).await.unwrap();
    e.c.delete(&sa("later")).await.unwrap();
    until(
        &e.c,
        "default ServiceAccount recreated",
        10,
        exists("later"),
    )
    .await;
    let again = e.c.get(&sa("later")).await.unwrap();
    assert_ne!(first["metadata"]["uid"], again["metadata"]["uid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_namespaces_are_provisioned_on_demand_with_their_owner_binding() {
    use daas_controllers::usernamespaces::{UserNamespaces, TIER_LABEL};
    let e = env().await;
    let demand = UserNamespaces::new();
    let opts = ControllerOptions {
        resync: Duration::from_secs(30),
        ..Default::default()
    };
    let _ctrl =
        daas_controllers::spawn_controller(e.c.clone(), demand.controller(e.c.clone()), &opts);
    const BINDING: &str =
        "/apis/rbac.authorization.k8s.io/v1/namespaces/u-00aa/rolebindings/daas:namespace-owner";
    // The first request of a new user waits until its namespace exists.
    assert!(demand.ensure("u-00aa", Duration::from_secs(10)).await);
    let ns = e.c.get("/api/v1/namespaces/u-00aa").await.unwrap();
    assert_eq!(ns["metadata"]["labels"][TIER_LABEL], "user");
    let b = e.c.get(BINDING).await.unwrap();
    assert_eq!(b["roleRef"]["name"], "daas:namespace-owner");
    assert_eq!(b["subjects"][0]["name"], "daas:namespace:u-00aa");
    // An admin's removal of the binding sticks: it is made only with the namespace.
    e.c.delete(BINDING).await.unwrap();
    assert!(demand.ensure("u-00aa", Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.c.get(BINDING).await.unwrap_err().code, 404);
    // A deleted namespace comes back on its owner's next authentication.
    e.c.delete("/api/v1/namespaces/u-00aa").await.unwrap();
    until(&e.c, "namespace gone", 10, || {
        let c = e.c.clone();
        async move {
            match c.get("/api/v1/namespaces/u-00aa").await {
                Err(err) if err.code == 404 => Ok(()),
                _ => Err("still there".to_string()),
            }
        }
    })
    .await;
    demand.ensure("u-00aa", Duration::from_secs(10)).await;
    until(&e.c, "namespace made again", 10, || {
        let c = e.c.clone();
        async move { c.get(BINDING).await.map(|_| ()).map_err(|e| e.message) }
    })
    .await;
}

fn rc(ns: &str, name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"name": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}})
}

async fn rc_pods(c: &LocalClient, ns: &str, name: &str) -> Vec<Value> {
    c.list(&format!(
        "/api/v1/namespaces/{ns}/pods?labelSelector=name%3D{name}"
    ))
    .await
    .unwrap()
    .into_iter()
    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    .collect()
}

fn owner_kind(p: &Value) -> Option<String> {
    p["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["controller"] == true))
        .and_then(|r| r["kind"].as_str())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_adopts_scales_releases_and_cascades() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "node-a", true, json!(null), json!({})).await;
    const RCS: &str = "/api/v1/namespaces/default/replicationcontrollers";
    // An orphan pod matching the selector exists first: the RC adopts it instead of creating one.
    c.create(
        "/api/v1/namespaces/default/pods",
        &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pod-adoption", "labels": {"name": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}),
    )
    .await
    .unwrap();
    // As upstream's test (CreateSync), the pod runs before the RC exists: the controller's pod
    // cache and RC cache follow separate watches, so a pod created just before the RC may not
    // be in the pod cache yet when the RC is first synced (upstream has the same window).
    until(c, "orphan running", 20, || async {
        let p = c
            .get("/api/v1/namespaces/default/pods/pod-adoption")
            .await
            .map_err(|e| e.message)?;
        match p["status"]["phase"].as_str() {
            Some("Running") => Ok(()),
            other => Err(format!("phase {other:?}")),
        }
    })
    .await;
    c.create(RCS, &rc("default", "web", 1)).await.unwrap();
    until(c, "adoption", 20, || async {
        let pods = rc_pods(c, "default", "web").await;
        let rc = c.get(&format!("{RCS}/web")).await.map_err(|e| e.message)?;
        match pods.as_slice() {
            [p] if owner_kind(p).as_deref() == Some("ReplicationController")
                && rc["status"]["readyReplicas"] == 1 =>
            {
                Ok(())
            }
            _ => Err(format!("{pods:?} {}", rc["status"])),
        }
    })
    .await;
    assert_eq!(
        rc_pods(c, "default", "web").await[0]["metadata"]["name"],
        "pod-adoption"
    );

    // Scale through the scale subresource.
    c.merge_patch(
        &format!("{RCS}/web/scale"),
        &json!({"spec": {"replicas": 3}}),
    )
    .await
    .unwrap();
    until(c, "scaled to 3", 20, || async {
        let rc = c.get(&format!("{RCS}/web")).await.map_err(|e| e.message)?;
        let s = &rc["status"];
        if s["replicas"] == 3
            && s["readyReplicas"] == 3
            && s["availableReplicas"] == 3
            && s["fullyLabeledReplicas"] == 3
            && s["observedGeneration"] == rc["metadata"]["generation"]
        {
            Ok(())
        } else {
            Err(format!("{s}"))
        }
    })
    .await;

    // Release: a pod relabelled out of the selector loses its owner and is replaced.
    c.merge_patch(
        "/api/v1/namespaces/default/pods/pod-adoption",
        &json!({"metadata": {"labels": {"name": "released"}}}),
    )
    .await
    .unwrap();
    until(c, "release", 20, || async {
        let p = c
            .get("/api/v1/namespaces/default/pods/pod-adoption")
            .await
            .map_err(|e| e.message)?;
        let n = rc_pods(c, "default", "web").await.len();
        if owner_kind(&p).is_none() && n == 3 {
            Ok(())
        } else {
            Err(format!("{n} pods, {}", p["metadata"]))
        }
    })
    .await;

    // Orphan: the RC goes, its pods stay without an owner.
    assert_eq!(
        raw_delete(
            &e.app,
            &format!("{RCS}/web"),
            r#"{"propagationPolicy":"Orphan"}"#
        )
        .await,
        200
    );
    until(c, "orphaned", 20, || async {
        let pods = rc_pods(c, "default", "web").await;
        let gone = c.get_opt(&format!("{RCS}/web")).await.unwrap().is_none();
        if gone && pods.len() == 3 && pods.iter().all(|p| owner_kind(p).is_none()) {
            Ok(())
        } else {
            Err(format!("gone {gone}, {pods:?}"))
        }
    })
    .await;

    // A new RC adopts them again; deleting it in the background deletes them.
    c.create(RCS, &rc("default", "web", 3)).await.unwrap();
    until(c, "re-adopted", 20, || async {
        let pods = rc_pods(c, "default", "web").await;
        if pods.len() == 3
            && pods
                .iter()
                .all(|p| owner_kind(p).as_deref() == Some("ReplicationController"))
        {
            Ok(())
        } else {
            Err(format!("{pods:?}"))
        }
    })
    .await;
    assert_eq!(raw_delete(&e.app, &format!("{RCS}/web"), "{}").await, 200);
    until(c, "cascade", 20, || async {
        let n = rc_pods(c, "default", "web").await.len();
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_reports_replica_failure() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "node-a", true, json!(null), json!({})).await;
    // Pods that break the namespace's enforced pod security level cannot be created; the RC itself
    // (a template) is admitted with a warning.
    c.create("/api/v1/namespaces", &json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "strict", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
        .await
        .unwrap();
    const RCS: &str = "/api/v1/namespaces/strict/replicationcontrollers";
    c.create(RCS, &rc("strict", "cond", 2)).await.unwrap();
    until(c, "ReplicaFailure", 20, || async {
        let rc = c.get(&format!("{RCS}/cond")).await.map_err(|e| e.message)?;
        let cond = rc["status"]["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == "ReplicaFailure"))
            .cloned();
        match cond {
            Some(cd)
                if cd["status"] == "True"
                    && cd["reason"] == "FailedCreate"
                    && cd["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("is forbidden")) =>
            {
                Ok(())
            }
            _ => Err(format!("{}", rc["status"])),
        }
    })
    .await;
    // Once pods can be created, the condition goes away.
    c.merge_patch(
        "/api/v1/namespaces/strict",
        &json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}),
    )
    .await
    .unwrap();
    until(c, "recovered", 30, || async {
        let rc = c.get(&format!("{RCS}/cond")).await.map_err(|e| e.message)?;
        let s = &rc["status"];
        if s["conditions"].is_null() && s["readyReplicas"] == 2 {
            Ok(())
        } else {
            Err(format!("{s}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_role_aggregation_fills_admin_edit_view_and_custom_roles() {
    let e = env().await;
    let roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    let has_rule = |role: &Value, resource: &str, verb: &str| {
        role["rules"].as_array().into_iter().flatten().any(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .contains(&json!(resource))
                && r["verbs"].as_array().unwrap().contains(&json!(verb))
        })
    };
    // The bootstrap aggregated roles: view ⊂ edit ⊂ admin.
    until(&e.c, "admin, edit and view aggregated", 20, || async {
        let view =
            e.c.get(&format!("{roles}/view"))
                .await
                .map_err(|e| e.message)?;
        let edit =
            e.c.get(&format!("{roles}/edit"))
                .await
                .map_err(|e| e.message)?;
        let admin =
            e.c.get(&format!("{roles}/admin"))
                .await
                .map_err(|e| e.message)?;
        let ok = has_rule(&view, "pods", "list")
            && !has_rule(&view, "pods", "create")
            && has_rule(&edit, "pods", "list")
            && has_rule(&edit, "pods", "create")
            && !has_rule(&edit, "rolebindings", "create")
            && has_rule(&admin, "pods", "create")
            && has_rule(&admin, "rolebindings", "create");
        ok.then_some(())
            .ok_or_else(|| format!("view {view}\nedit {edit}\nadmin {admin}"))
    })
    .await;
    // A custom aggregated role follows labelled roles as they come and go.
    e.c.create(
        roles,
        &json!({"metadata": {"name": "monitoring"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-monitoring": "true"}}]}}),
    )
    .await
    .unwrap();
    e.c.create(
        roles,
        &json!({"metadata": {"name": "monitoring-endpoints", "labels": {"example.com/aggregate-to-monitoring": "true", "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "widgets"], "verbs": ["get"]}]}),
    )
    .await
    .unwrap();
    until(&e.c, "monitoring aggregated", 20, || async {
        let m =
            e.c.get(&format!("{roles}/monitoring"))
                .await
                .map_err(|e| e.message)?;
        let v =
            e.c.get(&format!("{roles}/view"))
                .await
                .map_err(|e| e.message)?;
        (has_rule(&m, "widgets", "get") && has_rule(&v, "widgets", "get"))
            .then_some(())
            .ok_or_else(|| m.to_string())
    })
    .await;
    e.c.delete(&format!("{roles}/monitoring-endpoints"))
        .await
        .unwrap();
    until(&e.c, "monitoring emptied", 20, || async {
        let m =
            e.c.get(&format!("{roles}/monitoring"))
                .await
                .map_err(|e| e.message)?;
        (m["rules"].as_array().map(Vec::len).unwrap_or(0) == 0)
            .then_some(())
            .ok_or_else(|| m.to_string())
    })
    .await;
}

/// The garbage collector collects custom resources: CR dependents of a deleted owner (built-in
/// or custom) are deleted, and Orphan / Foreground deletion of a CR owner are carried out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_handles_custom_resource_owners_and_dependents() {
    let e = env().await;
    let c = &e.c;
    c.create(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}
        }),
    )
    .await
    .unwrap();
    const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";
    let widget = |name: &str, owner: Option<&Value>| {
        let mut w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                           "metadata": {"name": name}});
        if let Some(o) = owner {
            w["metadata"]["ownerReferences"] = json!([{
                "apiVersion": o["apiVersion"], "kind": o["kind"],
                "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}]);
        }
        w
    };
    let gone = |path: String| async move {
        match c.get_opt(&path).await.unwrap() {
            None => Ok(()),
            Some(o) => Err(format!("{path} still there: {o}")),
        }
    };

    // Background: a ConfigMap owner's CR dependent, and a CR owner's CR and ConfigMap dependents.
    let cm = c
        .create(
            "/api/v1/namespaces/default/configmaps",
            &json!({"metadata": {"name": "owner-cm"}}),
        )
        .await
        .unwrap();
    let mut cm = cm;
    cm["apiVersion"] = json!("v1");
    cm["kind"] = json!("ConfigMap");
    c.create(WIDGETS, &widget("of-cm", Some(&cm)))
        .await
        .unwrap();
    let parent = c.create(WIDGETS, &widget("parent", None)).await.unwrap();
    c.create(WIDGETS, &widget("child", Some(&parent)))
        .await
        .unwrap();
    let mut dep_cm = json!({"metadata": {"name": "dep-cm"}});
    dep_cm["metadata"]["ownerReferences"] =
        widget("x", Some(&parent))["metadata"]["ownerReferences"].clone();
    c.create("/api/v1/namespaces/default/configmaps", &dep_cm)
        .await
        .unwrap();
    c.delete("/api/v1/namespaces/default/configmaps/owner-cm")
        .await
        .unwrap();
    c.delete(&format!("{WIDGETS}/parent")).await.unwrap();
    until(c, "background collection", 20, || async {
        gone(format!("{WIDGETS}/of-cm")).await?;
        gone(format!("{WIDGETS}/child")).await?;
        gone("/api/v1/namespaces/default/configmaps/dep-cm".into()).await
    })
    .await;

    // Orphan: the CR owner goes, its CR dependent stays without the reference.
    let parent = c.create(WIDGETS, &widget("parent2", None)).await.unwrap();
    c.create(WIDGETS, &widget("kept", Some(&parent)))
        .await
        .unwrap();
    assert_eq!(
        raw_delete(
            &e.app,
            &format!("{WIDGETS}/parent2"),
            r#"{"propagationPolicy":"Orphan"}"#
        )
        .await,
        200
    );
    until(c, "orphaned", 20, || async {
        gone(format!("{WIDGETS}/parent2")).await?;
        let kept = c.get(&format!("{WIDGETS}/kept")).await.unwrap();
        if kept["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|a| a.is_empty())
        {
            Ok(())
        } else {
            Err(format!("{kept}"))
        }
    })
    .await;

    // Foreground: the CR owner waits (with its finalizer) for its CR dependent to go.
    let parent = c.create(WIDGETS, &widget("parent3", None)).await.unwrap();
    let mut child = widget("fg-child", Some(&parent));
    child["metadata"]["finalizers"] = json!(["example.com/hold"]);
    c.create(WIDGETS, &child).await.unwrap();
    assert_eq!(
        raw_delete(
            &e.app,
            &format!("{WIDGETS}/parent3"),
            r#"{"propagationPolicy":"Foreground"}"#
        )
        .await,
        200
    );
    until(c, "dependent deleting", 20, || async {
        let ch = c.get(&format!("{WIDGETS}/fg-child")).await.unwrap();
        if ch["metadata"]["deletionTimestamp"].is_null() {
            Err("child not being deleted yet".into())
        } else {
            Ok(())
        }
    })
    .await;
    let p = c.get(&format!("{WIDGETS}/parent3")).await.unwrap();
    assert_eq!(p["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    c.merge_patch(
        &format!("{WIDGETS}/fg-child"),
        &json!({"metadata": {"finalizers": null}}),
    )
    .await
    .unwrap();
    until(c, "foreground done", 20, || async {
        gone(format!("{WIDGETS}/fg-child")).await?;
        gone(format!("{WIDGETS}/parent3")).await
    })
    .await;
}

/// A CRD author's ClusterRole labelled `aggregate-to-admin` extends the user tier's
/// `daas:namespace-owner` through the aggregation controller: before the label a user may not
/// touch the custom resource, after it the user may in its own namespace, never in another
/// user's namespace nor cluster-wide; an identity without a namespace stays refused.
#[tokio::test]
async fn aggregate_to_admin_roles_extend_the_user_namespace_role() {
    use daas_apiserver::rbac::{user_namespace_binding, USER_NAMESPACE_ROLE};
    use daas_apiserver::User;
    use daas_controllers::clusterroleaggregation::ClusterRoleAggregationController;
    let user = |token: &str, name: &str, groups: &[&str]| {
        (
            token.to_string(),
            User {
                name: name.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..Default::default()
            },
        )
    };
    let e = common::api_with_users(vec![
        user(
            "alice",
            "daas:user:0xa11ce",
            &["daas:users", "daas:namespace:u-alice"],
        ),
        user(
            "bob",
            "daas:user:0xb0b",
            &["daas:users", "daas:namespace:u-bob"],
        ),
        user("carol", "carol", &[]),
    ])
    .await;
    let opts = ControllerOptions {
        resync: Duration::from_secs(30),
        ..Default::default()
    };
    let _agg = daas_controllers::spawn_controller(
        e.c.clone(),
        ClusterRoleAggregationController::new(e.c.clone()),
        &opts,
    );
    for ns in ["u-alice", "u-bob"] {
        e.c.create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": ns, "labels": {"k3s-daas.io/tier": "user"}}}),
        )
        .await
        .unwrap();
        e.c.create(
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            &user_namespace_binding(ns),
        )
        .await
        .unwrap();
    }
    e.c.create(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )
    .await
    .unwrap();
    let widgets = |ns: &str| format!("/apis/example.com/v1/namespaces/{ns}/widgets");
    let widget = |name: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": {"size": 1}})
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while e.c.list(&widgets("u-alice")).await.is_err() {
        assert!(Instant::now() < deadline, "the CRD is never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alice = LocalClient::new(e.app.clone(), "alice");
    let bob = LocalClient::new(e.app.clone(), "bob");
    let carol = LocalClient::new(e.app.clone(), "carol");

    // Before any role mentions widgets: refused.
    let err = alice
        .create(&widgets("u-alice"), &widget("w"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 403, "{err:?}");
    // An unlabelled role aggregates nothing.
    let role = |name: &str, labels: Value, resource: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": [{"apiGroups": ["example.com"], "resources": [resource],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]})
    };
    const ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    e.c.create(ROLES, &role("gadgets-unlabelled", json!({}), "gadgets"))
        .await
        .unwrap();

    // The author's role labelled aggregate-to-admin: the aggregation extends the user role.
    e.c.create(
        ROLES,
        &role(
            "widgets-admin",
            json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true"}),
            "widgets",
        ),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match alice.create(&widgets("u-alice"), &widget("w")).await {
            Ok(_) => break,
            Err(err) => {
                assert_eq!(err.code, 403, "{err:?}");
                assert!(Instant::now() < deadline, "never aggregated");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let owner =
        e.c.get(&format!("{ROLES}/{USER_NAMESPACE_ROLE}"))
            .await
            .unwrap();
    let rules = owner["rules"].as_array().unwrap();
    assert!(rules
        .iter()
        .any(|r| r["apiGroups"] == json!(["example.com"])));
    assert!(
        !rules.iter().any(|r| r["resources"] == json!(["gadgets"])),
        "the unlabelled role is not aggregated: {rules:?}"
    );
    assert!(
        !rules.iter().any(|r| r["resources"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("serviceaccounts")))
            && r["verbs"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("impersonate")))),
        "the bootstrap aggregate-to-* roles stay out: {rules:?}"
    );
    alice
        .get(&format!("{}/w", widgets("u-alice")))
        .await
        .unwrap();
    // Bob uses his own namespace; neither may touch the other's, nor list across namespaces.
    bob.create(&widgets("u-bob"), &widget("b")).await.unwrap();
    for (c, ns) in [(&alice, "u-bob"), (&bob, "u-alice")] {
        assert_eq!(
            c.create(&widgets(ns), &widget("x")).await.unwrap_err().code,
            403
        );
        assert_eq!(c.list(&widgets(ns)).await.unwrap_err().code, 403);
    }
    assert_eq!(
        alice
            .delete(&format!("{}/b", widgets("u-bob")))
            .await
            .unwrap_err()
            .code,
        403
    );
    assert_eq!(
        alice
            .list("/apis/example.com/v1/widgets")
            .await
            .unwrap_err()
            .code,
        403
    );
    // An identity owning no namespace stays refused everywhere.
    assert_eq!(carol.list(&widgets("u-alice")).await.unwrap_err().code, 403);
    assert_eq!(
        carol
            .create(&widgets("u-alice"), &widget("c"))
            .await
            .unwrap_err()
            .code,
        403
    );
}
