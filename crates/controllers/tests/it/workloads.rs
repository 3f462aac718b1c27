//! StatefulSets and DaemonSets in the in-process cluster: the test creates staked nodes and plays
//! kubelet (pods it is told to run become Running and Ready; deleted pods finish terminating).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use daas_apiserver::LocalClient;
use daas_controllers::{ControllerOptions, STAKED};
use serde_json::{json, Value};

use crate::common;
use common::Env;

const NS: &str = "/api/v1/namespaces/default";
const APPS: &str = "/apis/apps/v1/namespaces/default";

async fn env() -> Env {
    common::with_controllers(ControllerOptions {
        resync: Duration::from_secs(2),
        ..Default::default()
    })
    .await
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn add_node(c: &LocalClient, name: &str, staked: bool, taints: Value) {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if staked {
        labels[STAKED] = json!("true");
    }
    c.create(
        "/api/v1/nodes",
        &json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}),
    )
    .await
    .unwrap();
    c.merge_patch(&format!("/api/v1/nodes/{name}/status"), &json!({"status": {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}}))
        .await
        .unwrap();
}

/// Kubelet: terminating pods finish; bound pods accepted by `run` become Running and Ready.
async fn kubelet(c: &LocalClient, run: &dyn Fn(&str) -> bool) {
    for p in c.list(&format!("{NS}/pods")).await.unwrap() {
        let name = p["metadata"]["name"].as_str().unwrap().to_string();
        let bound = !p["spec"]["nodeName"].as_str().unwrap_or("").is_empty();
        if !p["metadata"]["deletionTimestamp"].is_null() {
            let _ = c
                .call_delete_with(
                    &format!("{NS}/pods/{name}"),
                    &json!({"gracePeriodSeconds": 0}),
                )
                .await;
            continue;
        }
        if !bound || p["status"]["phase"] == "Running" || !run(&name) {
            continue;
        }
        let ts = now();
        let conds = json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": ts},
            {"type": "Ready", "status": "True", "lastTransitionTime": ts}]);
        let _ = c
            .merge_patch(
                &format!("{NS}/pods/{name}/status"),
                &json!({"status": {"phase": "Running", "podIP": "10.42.0.7", "conditions": conds}}),
            )
            .await;
    }
}

async fn until<F, Fut>(c: &LocalClient, what: &str, run: &dyn Fn(&str) -> bool, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        kubelet(c, run).await;
        match check().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn live_pods(c: &LocalClient, prefix: &str) -> BTreeSet<String> {
    c.list(&format!("{NS}/pods"))
        .await
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The pod, or null while it is being replaced.
async fn pod(c: &LocalClient, name: &str) -> Value {
    c.get(&format!("{NS}/pods/{name}"))
        .await
        .unwrap_or(Value::Null)
}

async fn sts_status(c: &LocalClient) -> Value {
    c.get(&format!("{APPS}/statefulsets/web")).await.unwrap()["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_ordered_start_scale_down_and_partitioned_update() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "n1", true, json!(null)).await;
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}});
    c.create(&format!("{APPS}/statefulsets"), &sts)
        .await
        .unwrap();

    // OrderedReady: web-N only once web-0..N-1 are Running and Ready.
    for n in 0..3 {
        let want: Vec<String> = (0..=n).map(|i| format!("web-{i}")).collect();
        let allowed: BTreeSet<String> = (0..n).map(|i| format!("web-{i}")).collect();
        let run = move |p: &str| allowed.contains(p);
        until(c, &format!("web-{n} created"), &run, || async {
            let live = live_pods(c, "web-").await;
            let want: BTreeSet<String> = want.iter().cloned().collect();
            if live == want {
                Ok(())
            } else {
                Err(format!("{live:?}"))
            }
        })
        .await;
        // While web-n is not ready, no higher ordinal appears.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(live_pods(c, "web-").await.len(), n + 1);
    }
    let all = |_: &str| true;
    until(c, "3 ready", &all, || async {
        let s = sts_status(c).await;
        (s["readyReplicas"] == 3 && s["availableReplicas"] == 3 && s["currentReplicas"] == 3)
            .then_some(())
            .ok_or(format!("{s}"))
    })
    .await;
    let s = sts_status(c).await;
    assert_eq!(s["currentRevision"], s["updateRevision"]);
    let rev1 = s["updateRevision"].as_str().unwrap().to_string();
    assert!(rev1.starts_with("web-"), "{rev1}");
    let p1 = pod(c, "web-1").await;
    assert_eq!(
        p1["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "web-1"
    );
    assert_eq!(
        p1["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "1"
    );
    assert_eq!(
        p1["metadata"]["labels"]["controller-revision-hash"],
        rev1.as_str()
    );
    assert_eq!(p1["spec"]["hostname"], "web-1");
    assert_eq!(p1["spec"]["subdomain"], "nginx");
    assert_eq!(p1["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");

    // Scale down to 1: web-2 goes before web-1.
    c.merge_patch(
        &format!("{APPS}/statefulsets/web"),
        &json!({"spec": {"replicas": 1}}),
    )
    .await
    .unwrap();
    let seen_2_without_1 = std::cell::Cell::new(false);
    until(c, "scaled to 1", &all, || {
        let seen = &seen_2_without_1;
        async move {
            let live = live_pods(c, "web-").await;
            if live.contains("web-2") && !live.contains("web-1") {
                seen.set(true);
            }
            (live == names(&["web-0"]))
                .then_some(())
                .ok_or(format!("{live:?}"))
        }
    })
    .await;
    assert!(!seen_2_without_1.get(), "web-1 was removed before web-2");

    // Back to 3, then a partitioned rolling update: only ordinals >= 2 move.
    c.merge_patch(
        &format!("{APPS}/statefulsets/web"),
        &json!({"spec": {"replicas": 3}}),
    )
    .await
    .unwrap();
    until(c, "3 ready again", &all, || async {
        let s = sts_status(c).await;
        (s["readyReplicas"] == 3)
            .then_some(())
            .ok_or(format!("{s}"))
    })
    .await;
    c.merge_patch(
        &format!("{APPS}/statefulsets/web"),
        &json!({"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        "template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}),
    )
    .await
    .unwrap();
    until(c, "web-2 updated", &all, || async {
        let s = sts_status(c).await;
        let p2 = pod(c, "web-2").await;
        (s["updatedReplicas"] == 1
            && s["readyReplicas"] == 3
            && p2["spec"]["containers"][0]["image"] == "nginx:2"
            && p2["status"]["phase"] == "Running")
            .then_some(())
            .ok_or(format!("{s}"))
    })
    .await;
    let s = sts_status(c).await;
    assert_eq!(s["currentRevision"], rev1.as_str());
    assert_ne!(s["updateRevision"], rev1.as_str());
    for n in ["web-0", "web-1"] {
        assert_eq!(
            pod(c, n).await["spec"]["containers"][0]["image"],
            "nginx:1",
            "{n}"
        );
    }
    // Partition 0: the rest follow, highest first, and the update revision becomes current.
    c.merge_patch(
        &format!("{APPS}/statefulsets/web"),
        &json!({"spec": {
        "updateStrategy": {"rollingUpdate": {"partition": 0}}}}),
    )
    .await
    .unwrap();
    let order: std::cell::RefCell<Vec<String>> = Default::default();
    until(c, "all updated", &all, || {
        let order = &order;
        async move {
            for n in ["web-1", "web-0"] {
                let img = c
                    .get(&format!("{NS}/pods/{n}"))
                    .await
                    .ok()
                    .map(|p| p["spec"]["containers"][0]["image"].clone());
                if img == Some(json!("nginx:2")) && !order.borrow().iter().any(|o| o == n) {
                    order.borrow_mut().push(n.to_string());
                }
            }
            let s = sts_status(c).await;
            (s["updatedReplicas"] == 3
                && s["readyReplicas"] == 3
                && s["currentRevision"] == s["updateRevision"])
                .then_some(())
                .ok_or(format!("{s}"))
        }
    })
    .await;
    assert_eq!(*order.borrow(), ["web-1", "web-0"]);
    let revs = c
        .list(&format!("{APPS}/controllerrevisions"))
        .await
        .unwrap();
    let mut nums: Vec<i64> = revs
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    nums.sort();
    assert_eq!(nums, [1, 2]);
    assert!(revs
        .iter()
        .all(|r| r["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_on_eligible_nodes_and_rolls() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "n1", true, json!(null)).await;
    add_node(c, "n2", true, json!(null)).await;
    add_node(
        c,
        "tainted",
        true,
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )
    .await;
    add_node(c, "unstaked", false, json!(null)).await;
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "agent:1"}]}}}});
    c.create(&format!("{APPS}/daemonsets"), &ds).await.unwrap();
    let all = |_: &str| true;
    let placed = || async {
        let mut out = BTreeSet::new();
        for p in c.list(&format!("{NS}/pods")).await.unwrap() {
            if p["metadata"]["deletionTimestamp"].is_null() {
                out.insert(p["spec"]["nodeName"].as_str().unwrap_or("").to_string());
            }
        }
        out
    };
    until(c, "pods on n1 and n2", &all, || async {
        let st = c.get(&format!("{APPS}/daemonsets/agent")).await.unwrap()["status"].clone();
        let nodes = placed().await;
        (nodes == names(&["n1", "n2"])
            && st["numberReady"] == 2
            && st["desiredNumberScheduled"] == 2)
            .then_some(())
            .ok_or(format!("{nodes:?} {st}"))
    })
    .await;
    let pods = c.list(&format!("{NS}/pods")).await.unwrap();
    let p = &pods[0];
    let term = &p["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0];
    assert_eq!(term["matchFields"][0]["key"], "metadata.name");
    assert_eq!(term["matchFields"][0]["values"][0], p["spec"]["nodeName"]);
    assert!(p["spec"]["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "node.kubernetes.io/unschedulable"));

    // A node added later gets its pod.
    add_node(c, "n3", true, json!(null)).await;
    until(c, "pod on n3", &all, || async {
        let st = c.get(&format!("{APPS}/daemonsets/agent")).await.unwrap()["status"].clone();
        let nodes = placed().await;
        (nodes == names(&["n1", "n2", "n3"]) && st["numberAvailable"] == 3)
            .then_some(())
            .ok_or(format!("{nodes:?} {st}"))
    })
    .await;

    // Rolling update, maxUnavailable 1: never more than one node without an available pod.
    c.merge_patch(&format!("{APPS}/daemonsets/agent"), &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}}))
        .await
        .unwrap();
    let worst = std::cell::Cell::new(0usize);
    until(c, "rolled to agent:2", &all, || {
        let worst = &worst;
        async move {
            let pods = c.list(&format!("{NS}/pods")).await.unwrap();
            let up: BTreeSet<String> = pods
                .iter()
                .filter(|p| {
                    p["metadata"]["deletionTimestamp"].is_null()
                        && p["status"]["phase"] == "Running"
                })
                .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
                .collect();
            worst.set(worst.get().max(3 - up.len().min(3)));
            let st = c.get(&format!("{APPS}/daemonsets/agent")).await.unwrap()["status"].clone();
            let all_new = pods
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .all(|p| p["spec"]["containers"][0]["image"] == "agent:2");
            (all_new
                && st["updatedNumberScheduled"] == 3
                && st["numberAvailable"] == 3
                && st["observedGeneration"] == 2)
                .then_some(())
                .ok_or(format!("{st}"))
        }
    })
    .await;
    let worst = worst.get();
    assert!(
        worst <= 1,
        "{worst} nodes were without a daemon pod at once"
    );
    let revs = c
        .list(&format!("{APPS}/controllerrevisions"))
        .await
        .unwrap();
    assert_eq!(revs.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_statefulset_on_delete_and_its_claims() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "n1", true, json!(null)).await;
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 3, "serviceName": "db", "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": {"app": "db"}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "db:1",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}}});
    c.create(&format!("{APPS}/statefulsets"), &sts)
        .await
        .unwrap();
    // Parallel: all three exist while none is ready.
    let none = |_: &str| false;
    until(c, "3 pods at once", &none, || async {
        let live = live_pods(c, "db-").await;
        (live == names(&["db-0", "db-1", "db-2"]))
            .then_some(())
            .ok_or(format!("{live:?}"))
    })
    .await;
    let p = pod(c, "db-1").await;
    assert_eq!(
        p["spec"]["volumes"][0],
        json!({"name": "data", "persistentVolumeClaim": {"claimName": "data-db-1"}})
    );
    // Each pod's claim is made from the template, named <claim>-<sts>-<ordinal>, with the
    // StatefulSet's selector labels, and the StatefulSet records it.
    until(c, "claims made", &none, || async {
        let claims = c
            .list(&format!("{NS}/persistentvolumeclaims"))
            .await
            .unwrap();
        let mut made: Vec<String> = claims
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "db")
            .filter(|p| p["spec"]["resources"]["requests"]["storage"] == "1Gi")
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect();
        made.sort();
        (made == ["data-db-0", "data-db-1", "data-db-2"])
            .then_some(())
            .ok_or(format!("{made:?}"))
    })
    .await;
    until(c, "claim event", &none, || async {
        let evs = c.list(&format!("{NS}/events")).await.unwrap();
        evs.iter()
            .any(|e| {
                e["involvedObject"]["name"] == "db"
                    && e["reason"] == "SuccessfulCreate"
                    && e["message"] == "create Claim data-db-1 Pod db-1 in StatefulSet db success"
            })
            .then_some(())
            .ok_or(format!("{evs:?}"))
    })
    .await;
    let all = |_: &str| true;
    until(c, "3 ready", &all, || async {
        let s = sts_status_of(c, "db").await;
        (s["readyReplicas"] == 3)
            .then_some(())
            .ok_or(format!("{s}"))
    })
    .await;
    // OnDelete: a new template replaces nothing until a pod is deleted.
    c.merge_patch(
        &format!("{APPS}/statefulsets/db"),
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "db:2",
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}}}),
    )
    .await
    .unwrap();
    until(c, "update revision observed", &all, || async {
        let s = sts_status_of(c, "db").await;
        (s["observedGeneration"] == 2
            && s["currentRevision"] != s["updateRevision"]
            && s["updatedReplicas"] == 0)
            .then_some(())
            .ok_or(format!("{s}"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in ["db-0", "db-1", "db-2"] {
        assert_eq!(
            pod(c, n).await["spec"]["containers"][0]["image"],
            "db:1",
            "{n}"
        );
    }
    c.delete(&format!("{NS}/pods/db-1")).await.unwrap();
    until(c, "db-1 recreated at the new revision", &all, || async {
        let p = pod(c, "db-1").await;
        let s = sts_status_of(c, "db").await;
        (p["spec"]["containers"][0]["image"] == "db:2"
            && s["updatedReplicas"] == 1
            && s["readyReplicas"] == 3)
            .then_some(())
            .ok_or(format!("{s}"))
    })
    .await;
    assert_eq!(
        pod(c, "db-0").await["spec"]["containers"][0]["image"],
        "db:1"
    );
}

async fn sts_status_of(c: &LocalClient, name: &str) -> Value {
    c.get(&format!("{APPS}/statefulsets/{name}")).await.unwrap()["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_surge_rollout_and_history_limit() {
    let e = env().await;
    let c = &e.c;
    add_node(c, "n1", true, json!(null)).await;
    add_node(c, "n2", true, json!(null)).await;
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"revisionHistoryLimit": 1, "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "agent:1"}]}}}});
    c.create(&format!("{APPS}/daemonsets"), &ds).await.unwrap();
    let all = |_: &str| true;
    let status =
        || async { c.get(&format!("{APPS}/daemonsets/agent")).await.unwrap()["status"].clone() };
    until(c, "2 available", &all, || async {
        let st = status().await;
        (st["numberAvailable"] == 2)
            .then_some(())
            .ok_or(format!("{st}"))
    })
    .await;
    for (gen, img) in [(2, "agent:2"), (3, "agent:3"), (4, "agent:4")] {
        c.merge_patch(
            &format!("{APPS}/daemonsets/agent"),
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": img}]}}}}),
        )
        .await
        .unwrap();
        // Surge: a node's old pod goes only once its new one is available, so every node keeps an
        // available pod throughout.
        let min_available = std::cell::Cell::new(2i64);
        until(c, img, &all, || {
            let min_available = &min_available;
            async move {
                let pods = c.list(&format!("{NS}/pods")).await.unwrap();
                let mut nodes_up = BTreeSet::new();
                for p in pods.iter().filter(|p| {
                    p["metadata"]["deletionTimestamp"].is_null()
                        && p["status"]["phase"] == "Running"
                }) {
                    nodes_up.insert(p["spec"]["nodeName"].as_str().unwrap_or("").to_string());
                }
                min_available.set(min_available.get().min(nodes_up.len() as i64));
                let st = status().await;
                let done = pods
                    .iter()
                    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                    .count()
                    == 2
                    && pods
                        .iter()
                        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                        .all(|p| p["spec"]["containers"][0]["image"] == img);
                (done
                    && st["updatedNumberScheduled"] == 2
                    && st["numberAvailable"] == 2
                    && st["observedGeneration"] == gen)
                    .then_some(())
                    .ok_or(format!("{st}"))
            }
        })
        .await;
        assert_eq!(
            min_available.get(),
            2,
            "a node was left without a running daemon pod during {img}"
        );
    }
    // History: the live revision plus revisionHistoryLimit (1) older ones.
    until(c, "history truncated", &all, || async {
        let revs = c
            .list(&format!("{APPS}/controllerrevisions"))
            .await
            .unwrap();
        let mut nums: Vec<i64> = revs
            .iter()
            .map(|r| r["revision"].as_i64().unwrap_or(0))
            .collect();
        nums.sort();
        (nums == [3, 4]).then_some(()).ok_or(format!("{nums:?}"))
    })
    .await;
}
