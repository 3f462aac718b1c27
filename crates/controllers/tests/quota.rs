//! In-process: the real router over a temporary embedded store with the controllers running:
//! ResourceQuota usage accounting (controller) and quota admission, as the conformance tests
//! of test/e2e/apimachinery/resource_quota.go exercise them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use daas_apiserver::{router, LocalClient, ServerOptions, StaticTokens, User};
use daas_controllers::ControllerOptions;
use daas_store::{EmbeddedStore, SealingKey, Store};
use serde_json::{json, Value};

struct Env {
    _dir: tempfile::TempDir,
    c: LocalClient,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
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
        },
    )]));
    let app = router(store, auth, ServerOptions::default());
    let c = LocalClient::new(app, "tok");
    let opts = ControllerOptions {
        // Long resync: status must follow from watches, not from periodic passes.
        resync: Duration::from_secs(60),
        ..Default::default()
    };
    let tasks = daas_controllers::spawn(c.clone(), opts);
    c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "q"}}),
    )
    .await
    .unwrap();
    Env {
        _dir: dir,
        c,
        tasks,
    }
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
