//! The billing loop against the real API router (embedded store), an in-memory ledger following
//! the settlement rules, and a scripted stats source.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use daas_apiserver::{router, LocalClient, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use serde_json::{json, Value};
use sui_sdk_types::Address;

use super::enforcer::{SUSPENDED, SUSPENDED_REPLICAS};
use super::ledger::{abort, BillingLedger, MemoryLedger};
use super::meter::{NodeState, StatsError, StatsSource};
use super::*;

struct Api {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let masters = |name: &str| User {
        name: name.into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    };
    let auth = Arc::new(StaticTokens::new(vec![
        ("cm".into(), masters("system:kube-controller-manager")),
        ("admin".into(), masters("k3s-daas-admin")),
    ]));
    Api {
        app: router(store, auth, ServerOptions::default()),
        _dir: dir,
    }
}

#[derive(Default)]
struct Script {
    nodes: Vec<NodeState>,
    summaries: Mutex<HashMap<String, Value>>,
}

#[async_trait]
impl StatsSource for Script {
    async fn nodes(&self) -> Result<Vec<NodeState>, StatsError> {
        Ok(self.nodes.clone())
    }
    async fn summary(&self, node: &str) -> Option<Value> {
        self.summaries.lock().unwrap().get(node).cloned()
    }
}

impl Script {
    /// Every listed pod on `node` at cumulative CPU `cpu_ns`, 1 MiB working set.
    fn set(&self, node: &str, pods: &[(&str, &str)], cpu_ns: u64) {
        let pods: Vec<Value> = pods
            .iter()
            .map(|(ns, uid)| {
                json!({"podRef": {"name": uid, "namespace": ns, "uid": uid},
                    "startTime": "2020-01-01T00:00:00Z",
                    "cpu": {"usageCoreNanoSeconds": cpu_ns},
                    "memory": {"workingSetBytes": 1024 * 1024}})
            })
            .collect();
        self.summaries
            .lock()
            .unwrap()
            .insert(node.into(), json!({"pods": pods}));
    }
}

fn user(b: u8) -> (Address, String) {
    let a = Address::new([b; 32]);
    let ns = crate::auth::user_namespace(&a);
    (a, ns)
}

async fn user_namespace(c: &LocalClient, ns: &str) {
    c.create(
        "/api/v1/namespaces",
        &daas_controllers::usernamespaces::desired(ns),
    )
    .await
    .unwrap();
    c.create(
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await
    .unwrap();
    c.create(
        &format!("/apis/batch/v1/namespaces/{ns}/cronjobs"),
        &json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": ns},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
    )
    .await
    .unwrap();
}

fn config(grace_ms: u64) -> BillingConfig {
    BillingConfig {
        settlement_period: Duration::from_secs(5),
        metering_interval: Duration::from_secs(1),
        escrow_grace: Duration::from_millis(grace_ms),
    }
}

#[tokio::test]
async fn settles_metered_usage_and_enforces_dry_escrow() {
    let api = api().await;
    let cm = LocalClient::new(api.app.clone(), "cm");
    let admin = LocalClient::new(api.app.clone(), "admin");
    let (alice, ns_a) = user(0x11);
    let (bob, ns_b) = user(0x22);
    let (op1, op2) = (Address::new([0xa1; 32]), Address::new([0xa2; 32]));
    user_namespace(&cm, &ns_a).await;
    user_namespace(&cm, &ns_b).await;
    let ledger = Arc::new(MemoryLedger::default());
    ledger.add_node("n1", op1, 1);
    ledger.add_node("n2", op2, 1);
    ledger.deposit(alice, 1_000_000);
    let stats = Arc::new(Script {
        nodes: vec![
            NodeState {
                name: "n1".into(),
                verified: true,
            },
            NodeState {
                name: "n2".into(),
                verified: true,
            },
        ],
        ..Default::default()
    });
    let owners = Owners::default();
    owners.record(alice);
    owners.record(bob);
    let b = Billing::new(
        config(1_500),
        ledger.clone(),
        stats.clone(),
        cm.clone(),
        owners,
        Arc::new(Metrics::new()),
    );
    // Alice runs a pod on each node, Bob one on n1.
    stats.set("n1", &[(&ns_a, "a1"), (&ns_b, "b1")], 0);
    stats.set("n2", &[(&ns_a, "a2")], 0);
    b.meter(0).await;
    stats.set("n1", &[(&ns_a, "a1"), (&ns_b, "b1")], 2_000_000_000);
    stats.set("n2", &[(&ns_a, "a2")], 1_000_000_000);
    b.meter(10_000).await;
    b.settle(10_000).await;
    {
        let s = ledger.state.lock().unwrap();
        assert_eq!(s.market.last_period, 1);
        let r = &s.settlements[0];
        // Sorted by user then node; each node's uptime on its first line only.
        let keys: Vec<(Address, &str, u64)> = r
            .lines
            .iter()
            .map(|l| (l.user, l.node_id.as_str(), l.uptime_ms))
            .collect();
        assert_eq!(
            keys,
            vec![(alice, "n1", 10_000), (alice, "n2", 10_000), (bob, "n1", 0)]
        );
        // n1: 2000 CPU-ms, 10 MiB-s, 10 pod-s -> (2_000_000 + 10 + 10_000) / 1000 = 2010.
        assert_eq!(r.lines[0].cpu_ms, 2000);
        // Alice paid 2010 + 1010; Bob has no account: nothing charged.
        let acct = s.accounts[&alice];
        assert_eq!(acct.spent, 3020);
        assert_eq!(s.earnings[&op1], 2010);
        assert_eq!(s.earnings[&op2], 1010);
        assert!(!s.accounts.contains_key(&bob));
    }
    // Alice's Usage shows the spend and Funded=True.
    let u = admin
        .get(&format!(
            "/apis/daas.io/v1/namespaces/{ns_a}/usages/current"
        ))
        .await
        .unwrap();
    assert_eq!(u["status"]["account"]["spent"], 3020);
    assert_eq!(u["status"]["lastSettlement"]["period"], 1);
    assert_eq!(u["status"]["lastSettlement"]["charged"], 3020);
    assert_eq!(u["status"]["conditions"][0]["status"], "True");
    assert_eq!(u["status"]["user"], alice.to_string());
    // Bob: NoAccount, dry, but still in the grace period.
    let path_b = format!("/apis/daas.io/v1/namespaces/{ns_b}/usages/current");
    let ub = admin.get(&path_b).await.unwrap();
    assert_eq!(ub["status"]["conditions"][0]["status"], "False");
    assert_eq!(ub["status"]["conditions"][0]["reason"], "NoAccount");
    let dep_b = format!("/apis/apps/v1/namespaces/{ns_b}/deployments/web");
    assert_eq!(admin.get(&dep_b).await.unwrap()["spec"]["replicas"], 2);

    // The admin cannot write Usage: read-only (405) but for the master's controller identity.
    let e = admin
        .merge_patch(&path_b, &json!({"status": {"conditions": []}}))
        .await
        .unwrap_err();
    assert_eq!(e.code, 405, "{e:?}");
    let e = admin.delete(&path_b).await.unwrap_err();
    assert_eq!(e.code, 405);
    let e = admin
        .create(
            &format!("/apis/daas.io/v1/namespaces/{ns_b}/usages"),
            &json!({"apiVersion": "daas.io/v1", "kind": "Usage", "metadata": {"name": "x"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, 405);

    // A refused settlement: logged, and the period's usage carried into the next report.
    ledger.state.lock().unwrap().refuse_next = Some(abort::BAD_USAGE_REPORT);
    stats.set("n1", &[(&ns_a, "a1"), (&ns_b, "b1")], 3_000_000_000);
    stats.set("n2", &[(&ns_a, "a2")], 1_000_000_000);
    b.meter(12_000).await;
    b.settle(12_000).await;
    assert_eq!(ledger.state.lock().unwrap().market.last_period, 1);
    // Grace over for Bob: workloads held at zero, nothing deleted.
    let d = admin.get(&dep_b).await.unwrap();
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(d["metadata"]["annotations"][SUSPENDED_REPLICAS], "2");
    let cj = admin
        .get(&format!("/apis/batch/v1/namespaces/{ns_b}/cronjobs/tick"))
        .await
        .unwrap();
    assert_eq!(cj["spec"]["suspend"], true);
    assert_eq!(cj["metadata"]["annotations"][SUSPENDED], "true");
    let events = admin
        .list(&format!("/api/v1/namespaces/{ns_b}/events"))
        .await
        .unwrap();
    assert!(events.iter().any(|e| e["reason"] == "EscrowExhausted"
        && e["type"] == "Warning"
        && e["involvedObject"]["kind"] == "Deployment"));
    // Alice is untouched.
    assert_eq!(
        admin
            .get(&format!("/apis/apps/v1/namespaces/{ns_a}/deployments/web"))
            .await
            .unwrap()["spec"]["replicas"],
        2
    );

    // Bob clears the annotation and scales up again: the next pass holds it again.
    admin
        .merge_patch(
            &dep_b,
            &json!({"metadata": {"annotations": {SUSPENDED_REPLICAS: null}}, "spec": {"replicas": 3}}),
        )
        .await
        .unwrap();
    stats.set("n1", &[(&ns_a, "a1"), (&ns_b, "b1")], 4_000_000_000);
    b.meter(14_000).await;
    b.settle(14_000).await;
    {
        let s = ledger.state.lock().unwrap();
        assert_eq!(s.market.last_period, 2);
        // The refused period's usage is in this report: n1 for Alice covers 10 s -> 14 s.
        let a1 = s.settlements[1]
            .lines
            .iter()
            .find(|l| l.user == alice && l.node_id == "n1")
            .unwrap();
        assert_eq!(a1.cpu_ms, 2000);
        assert_eq!(a1.pod_s, 4);
    }
    let d = admin.get(&dep_b).await.unwrap();
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(d["metadata"]["annotations"][SUSPENDED_REPLICAS], "3");

    // Bob deposits: restored with a Normal event and Funded=True.
    ledger.deposit(bob, 10);
    b.publish(15_000).await;
    let d = admin.get(&dep_b).await.unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(d["metadata"]["annotations"][SUSPENDED_REPLICAS].is_null());
    let cj = admin
        .get(&format!("/apis/batch/v1/namespaces/{ns_b}/cronjobs/tick"))
        .await
        .unwrap();
    assert_eq!(cj["spec"]["suspend"], false);
    let events = admin
        .list(&format!("/api/v1/namespaces/{ns_b}/events"))
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e["reason"] == "EscrowFunded" && e["type"] == "Normal"));
    let ub = admin.get(&path_b).await.unwrap();
    assert_eq!(ub["status"]["conditions"][0]["status"], "True");
    assert!(ledger.market().await.unwrap().is_some());
}

#[tokio::test]
async fn unknown_owner_is_carried_and_read_back_from_usage() {
    let api = api().await;
    let cm = LocalClient::new(api.app.clone(), "cm");
    let (carol, ns_c) = user(0x33);
    user_namespace(&cm, &ns_c).await;
    let ledger = Arc::new(MemoryLedger::default());
    ledger.add_node("n1", Address::new([0xa1; 32]), 1);
    ledger.deposit(carol, 1_000_000);
    let stats = Arc::new(Script {
        nodes: vec![NodeState {
            name: "n1".into(),
            verified: true,
        }],
        ..Default::default()
    });
    let owners = Owners::default();
    let b = Billing::new(
        config(60_000),
        ledger.clone(),
        stats.clone(),
        cm.clone(),
        owners.clone(),
        Arc::new(Metrics::new()),
    );
    stats.set("n1", &[(&ns_c, "c1")], 0);
    b.meter(0).await;
    stats.set("n1", &[(&ns_c, "c1")], 1_000_000_000);
    b.meter(5_000).await;
    b.settle(5_000).await;
    // Owner unknown: nothing settled, the usage waits; the namespace is not judged (no Usage).
    assert!(ledger.state.lock().unwrap().settlements.is_empty());
    let usage_c = format!("/apis/daas.io/v1/namespaces/{ns_c}/usages/current");
    assert!(cm.get_opt(&usage_c).await.unwrap().is_none());
    owners.record(carol);
    b.settle(6_000).await;
    {
        let s = ledger.state.lock().unwrap();
        assert_eq!(s.settlements.len(), 1);
        assert_eq!(s.settlements[0].lines[0].cpu_ms, 1000);
    }
    // A new master (no authenticator history) finds the owner in the Usage object.
    let fresh = Billing::new(
        config(60_000),
        ledger.clone(),
        stats.clone(),
        cm.clone(),
        Owners::default(),
        Arc::new(Metrics::new()),
    );
    assert_eq!(fresh.owner(&ns_c).await, Some(carol));
    // A Usage naming an address of another namespace is not believed.
    assert_eq!(fresh.owner("u-4444444444444444").await, None);
}
