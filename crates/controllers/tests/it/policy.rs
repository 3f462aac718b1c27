//! In-process: the real router over a temporary embedded store with the controllers running:
//! ResourceQuota usage accounting (controller) and quota admission, PodDisruptionBudget status
//! and pods/eviction, namespace finalizers — as the conformance tests exercise them.

use std::time::{Duration, Instant};

use daas_apiserver::LocalClient;
use daas_controllers::ControllerOptions;
use serde_json::{json, Value};

use crate::common;
use common::Env;

async fn env() -> Env {
    let e = common::with_controllers(ControllerOptions {
        // Long resync: status must follow from watches, not from periodic passes.
        resync: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    e.c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "q"}}),
    )
    .await
    .unwrap();
    e
}

const QUOTA: &str = "/api/v1/namespaces/q/resourcequotas/test-quota";

/// Wait until the quota's `status.used` has exactly the entries of `want` (others ignored).
async fn used_becomes(c: &LocalClient, want: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = c.get(QUOTA).await.unwrap();
        let used = &q["status"]["used"];
        let ok = want.as_object().unwrap().iter().all(|(k, v)| &used[k] == v);
        if ok && q["status"]["hard"] == q["spec"]["hard"] {
            return q;
        }
        assert!(
            Instant::now() < deadline,
            "quota status {} never reached used {want}",
            q["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(name: &str, requests: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": requests, "limits": requests}}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_tracks_usage_and_admission_enforces_it() {
    let e = env().await;
    let c = &e.c;
    c.create(
        "/api/v1/namespaces/q/resourcequotas",
        &json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "test-quota"},
        "spec": {"hard": {"pods": "2", "configmaps": "2", "services": "1", "requests.cpu": "1",
            "requests.memory": "500Mi", "limits.cpu": "1", "count/replicasets.apps": "1",
            "resourcequotas": "1"}}}),
    )
    .await
    .unwrap();
    used_becomes(
        c,
        json!({"pods": "0", "configmaps": "0", "services": "0", "requests.cpu": "0",
            "requests.memory": "0", "resourcequotas": "1", "count/replicasets.apps": "0"}),
    )
    .await;

    // A pod within quota is charged; one over it is refused with upstream's message.
    c.create(
        "/api/v1/namespaces/q/pods",
        &pod("p1", json!({"cpu": "500m", "memory": "250Mi"})),
    )
    .await
    .unwrap();
    used_becomes(
        c,
        json!({"pods": "1", "requests.cpu": "500m", "requests.memory": "250Mi", "limits.cpu": "500m"}),
    )
    .await;
    let err = c
        .create(
            "/api/v1/namespaces/q/pods",
            &pod("p2", json!({"cpu": "600m", "memory": "100Mi"})),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"p2\" is forbidden: exceeded quota: test-quota, requested: limits.cpu=600m,requests.cpu=600m, used: limits.cpu=500m,requests.cpu=500m, limited: limits.cpu=1,requests.cpu=1"
    );
    // A quota on compute needs every container to say what it uses.
    let err = c
        .create(
            "/api/v1/namespaces/q/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p3"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"p3\" is forbidden: failed quota: test-quota: must specify limits.cpu for: c; requests.cpu for: c; requests.memory for: c"
    );

    // A dry run is checked but not charged.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}});
    for _ in 0..3 {
        c.create("/api/v1/namespaces/q/configmaps?dryRun=All", &cm)
            .await
            .unwrap();
    }
    assert_eq!(
        c.get(QUOTA).await.unwrap()["status"]["used"]["configmaps"],
        "0"
    );

    // Object counts: configmaps, services, replicasets; a second quota is over `resourcequotas`.
    c.create(
        "/api/v1/namespaces/q/configmaps",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
    )
    .await
    .unwrap();
    c.create(
        "/api/v1/namespaces/q/services",
        &json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await
    .unwrap();
    used_becomes(c, json!({"configmaps": "1", "services": "1"})).await;
    let err = c
        .create(
            "/api/v1/namespaces/q/services",
            &json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "svc2"}, "spec": {"ports": [{"port": 80}]}}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "services \"svc2\" is forbidden: exceeded quota: test-quota, requested: services=1, used: services=1, limited: services=1"
    );
    let err = c
        .create(
            "/api/v1/namespaces/q/resourcequotas",
            &json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "second"},
                "spec": {"hard": {"pods": "1"}}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 403, "{}", err.message);

    // Deleting releases the usage, without waiting for a resync.
    c.call_delete_with(
        "/api/v1/namespaces/q/pods/p1",
        &json!({"gracePeriodSeconds": 0}),
    )
    .await
    .unwrap();
    c.delete("/api/v1/namespaces/q/configmaps/cm")
        .await
        .unwrap();
    used_becomes(
        c,
        json!({"pods": "0", "configmaps": "0", "requests.cpu": "0", "limits.cpu": "0"}),
    )
    .await;

    // A changed hard limit shows in status.hard.
    let mut q = c.get(QUOTA).await.unwrap();
    q["spec"]["hard"]["pods"] = json!("5");
    c.update(QUOTA, &q).await.unwrap();
    let q = used_becomes(c, json!({"pods": "0"})).await;
    assert_eq!(q["status"]["hard"]["pods"], "5");

    // A status written by someone else stands (the conformance test reads it back) until the
    // quota's spec or the counted objects change.
    let mut q = q;
    q["status"]["hard"]["pods"] = json!("7");
    c.update(&format!("{QUOTA}/status"), &q).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.get(QUOTA).await.unwrap()["status"]["hard"]["pods"], "7");
    c.create(
        "/api/v1/namespaces/q/configmaps",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm2"}}),
    )
    .await
    .unwrap();
    let q = used_becomes(c, json!({"configmaps": "1"})).await;
    assert_eq!(q["status"]["hard"]["pods"], "5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_quotas_count_only_their_pods() {
    let e = env().await;
    let c = &e.c;
    c.create(
        "/api/v1/namespaces/q/resourcequotas",
        &json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "test-quota"},
        "spec": {"hard": {"pods": "1"}, "scopes": ["BestEffort"]}}),
    )
    .await
    .unwrap();
    used_becomes(c, json!({"pods": "0"})).await;
    // Not BestEffort: not counted, not limited.
    for n in ["burst1", "burst2"] {
        c.create("/api/v1/namespaces/q/pods", &pod(n, json!({"cpu": "100m"})))
            .await
            .unwrap();
    }
    c.create("/api/v1/namespaces/q/pods", &pod("be1", json!({})))
        .await
        .unwrap();
    used_becomes(c, json!({"pods": "1"})).await;
    let err = c
        .create("/api/v1/namespaces/q/pods", &pod("be2", json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "pods \"be2\" is forbidden: exceeded quota: test-quota, requested: pods=1, used: pods=1, limited: pods=1"
    );
}

/// Play kubelet for a pod: Running and Ready.
async fn run_pod(c: &LocalClient, name: &str) {
    c.merge_patch(
        &format!("/api/v1/namespaces/q/pods/{name}/status"),
        &json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
    )
    .await
    .unwrap();
}

const PDB: &str = "/apis/policy/v1/namespaces/q/poddisruptionbudgets/budget";

async fn pdb_status_becomes(c: &LocalClient, want: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = c.get(PDB).await.unwrap();
        let st = &p["status"];
        if want.as_object().unwrap().iter().all(|(k, v)| &st[k] == v) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "pdb status {st} never reached {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn eviction(name: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "q"},
        "deleteOptions": {"gracePeriodSeconds": 0}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disruption_budget_status_and_evictions() {
    let e = env().await;
    let c = &e.c;
    for n in ["a", "b", "c"] {
        let mut p = pod(n, json!({}));
        p["metadata"]["labels"] = json!({"app": "web"});
        // Bound already, so that no scheduler status write races the test's kubelet.
        p["spec"]["nodeName"] = json!("n1");
        c.create("/api/v1/namespaces/q/pods", &p).await.unwrap();
        run_pod(c, n).await;
    }
    // Invalid: both bounds.
    let err = c
        .create(
            "/apis/policy/v1/namespaces/q/poddisruptionbudgets",
            &json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "bad"},
            "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {}}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 422);
    c.create(
        "/apis/policy/v1/namespaces/q/poddisruptionbudgets",
        &json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "budget"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await
    .unwrap();
    let p = pdb_status_becomes(
        c,
        json!({"observedGeneration": 1, "expectedPods": 3, "desiredHealthy": 2,
            "currentHealthy": 3, "disruptionsAllowed": 1}),
    )
    .await;
    assert_eq!(p["status"]["conditions"][0]["type"], "DisruptionAllowed");
    assert_eq!(p["status"]["conditions"][0]["status"], "True");
    assert_eq!(p["status"]["conditions"][0]["reason"], "SufficientPods");

    // One eviction is allowed; it is charged to the budget at once.
    let ok = c
        .create("/api/v1/namespaces/q/pods/a/eviction", &eviction("a"))
        .await
        .unwrap();
    assert_eq!(ok["status"], "Success");
    assert!(c
        .get_opt("/api/v1/namespaces/q/pods/a")
        .await
        .unwrap()
        .is_none());
    pdb_status_becomes(
        c,
        json!({"expectedPods": 2, "currentHealthy": 2, "disruptionsAllowed": 0}),
    )
    .await;
    let err = c
        .create("/api/v1/namespaces/q/pods/b/eviction", &eviction("b"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 429);
    assert_eq!(err.reason, "TooManyRequests");
    assert_eq!(
        err.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let cause = &err.details.as_ref().unwrap()["causes"][0];
    assert_eq!(cause["reason"], "DisruptionBudget");
    assert_eq!(
        cause["message"],
        "The disruption budget budget needs 2 healthy pods and has 2 currently"
    );
    assert!(c
        .get_opt("/api/v1/namespaces/q/pods/b")
        .await
        .unwrap()
        .is_some());

    // Relaxing the budget lets the eviction through once the controller has seen it.
    c.merge_patch(PDB, &json!({"spec": {"minAvailable": 1}}))
        .await
        .unwrap();
    pdb_status_becomes(
        c,
        json!({"observedGeneration": 2, "desiredHealthy": 1, "disruptionsAllowed": 1}),
    )
    .await;
    c.create("/api/v1/namespaces/q/pods/b/eviction", &eviction("b"))
        .await
        .unwrap();
    let p = pdb_status_becomes(c, json!({"currentHealthy": 1, "disruptionsAllowed": 0})).await;
    assert_eq!(p["status"]["conditions"][0]["reason"], "InsufficientPods");

    // Pods without a controller cannot be scaled against maxUnavailable: fail safe.
    c.merge_patch(
        PDB,
        &json!({"spec": {"minAvailable": null, "maxUnavailable": 1}}),
    )
    .await
    .unwrap();
    let p = pdb_status_becomes(c, json!({"observedGeneration": 3, "disruptionsAllowed": 0})).await;
    assert_eq!(p["status"]["conditions"][0]["reason"], "SyncFailed");

    // No budget: a pod is simply evicted.
    c.delete(PDB).await.unwrap();
    c.create("/api/v1/namespaces/q/pods/c/eviction", &eviction("c"))
        .await
        .unwrap();
    assert!(c
        .get_opt("/api/v1/namespaces/q/pods/c")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_finalize_subresource() {
    let e = env().await;
    let c = &e.c;
    let mut ns = c.get("/api/v1/namespaces/q").await.unwrap();
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    ns["spec"]["finalizers"] = json!(["kubernetes", "e2e.example.com/fakeFinalizer"]);
    let out = c
        .update("/api/v1/namespaces/q/finalize", &ns)
        .await
        .unwrap();
    assert_eq!(
        out["spec"]["finalizers"],
        json!(["kubernetes", "e2e.example.com/fakeFinalizer"])
    );
    assert_eq!(
        c.get("/api/v1/namespaces/q").await.unwrap()["spec"]["finalizers"],
        out["spec"]["finalizers"]
    );
    let mut bad = out.clone();
    bad["spec"]["finalizers"] = json!(["fake"]);
    let err = c
        .update("/api/v1/namespaces/q/finalize", &bad)
        .await
        .unwrap_err();
    assert_eq!(err.code, 422);
    let mut back = out.clone();
    back["spec"]["finalizers"] = json!(["kubernetes"]);
    let out = c
        .update("/api/v1/namespaces/q/finalize", &back)
        .await
        .unwrap();
    assert_eq!(out["spec"]["finalizers"], json!(["kubernetes"]));

    // Deleting: the contents go; another finalizer keeps the namespace Terminating,
    // closed to new content, until it is removed through finalize.
    let mut fin = out.clone();
    fin["spec"]["finalizers"] = json!(["kubernetes", "e2e.example.com/fakeFinalizer"]);
    c.update("/api/v1/namespaces/q/finalize", &fin)
        .await
        .unwrap();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
    c.create("/api/v1/namespaces/q/configmaps", &cm)
        .await
        .unwrap();
    let ns = c.delete("/api/v1/namespaces/q").await.unwrap();
    assert_eq!(ns["status"]["phase"], "Terminating");
    // The namespace controller empties it and removes its own finalizer only.
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.get("/api/v1/namespaces/q").await.unwrap()["spec"]["finalizers"]
        != json!(["e2e.example.com/fakeFinalizer"])
    {
        assert!(Instant::now() < deadline, "not finalized");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c
        .get_opt("/api/v1/namespaces/q/configmaps/cm")
        .await
        .unwrap()
        .is_none());
    let ns = c.get("/api/v1/namespaces/q").await.unwrap();
    assert!(!ns["metadata"]["deletionTimestamp"].is_null());
    let err = c
        .create("/api/v1/namespaces/q/configmaps", &cm)
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "unable to create new content in namespace q because it is being terminated"
    );
    let mut done = ns.clone();
    done["spec"]["finalizers"] = json!([]);
    c.update("/api/v1/namespaces/q/finalize", &done)
        .await
        .unwrap();
    assert!(c.get_opt("/api/v1/namespaces/q").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_surfaces_exceeded_quota() {
    let e = env().await;
    let c = &e.c;
    c.create(
        "/api/v1/namespaces/q/resourcequotas",
        &json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "test-quota"},
        "spec": {"hard": {"pods": "2"}}}),
    )
    .await
    .unwrap();
    used_becomes(c, json!({"pods": "0"})).await;
    let rcs = "/api/v1/namespaces/q/replicationcontrollers";
    c.create(
        rcs,
        &json!({"apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "condition-test"},
        "spec": {"replicas": 3, "selector": {"name": "condition-test"},
            "template": {"metadata": {"labels": {"name": "condition-test"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await
    .unwrap();
    let rc_path = format!("{rcs}/condition-test");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rc = c.get(&rc_path).await.unwrap();
        let cond = rc["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "ReplicaFailure"))
            .cloned();
        if let Some(cond) = cond {
            assert_eq!(cond["status"], "True");
            assert_eq!(cond["reason"], "FailedCreate");
            assert!(
                cond["message"].as_str().unwrap().contains(
                    "exceeded quota: test-quota, requested: pods=1, used: pods=2, limited: pods=2"
                ),
                "{cond}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ReplicaFailure: {}",
            rc["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    used_becomes(c, json!({"pods": "2"})).await;
    // Within quota again: the condition goes.
    c.merge_patch(&rc_path, &json!({"spec": {"replicas": 2}}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rc = c.get(&rc_path).await.unwrap();
        let failing = rc["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "ReplicaFailure"));
        if !failing && rc["status"]["replicas"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "condition stays: {}",
            rc["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
