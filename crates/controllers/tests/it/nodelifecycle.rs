//! The node lifecycle controller against the real API server, one pass at a time on a manual
//! clock: silence counted from observation, NoExecute taints through the zone rate limiter, no
//! evictions or reports when every node is down, and the slashing guard (grace + slash delay,
//! deferral after a stall of the controller), the not-ready taints of a node reporting
//! Ready=False, and the pods evicted once by the taint eviction controller.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::defaulttolerations::DefaultTolerations;
use daas_apiserver::{LocalClient, ServerOptions};
use daas_controllers::nodelifecycle::{
    EvictionConfig, ManualClock, NodeFailureError, NodeFailureHandler, NodeLifecycleController,
    FAILED_ANNOTATION, NOT_READY_TAINT, UNREACHABLE_TAINT,
};
use daas_controllers::tainteviction::TaintEvictionController;
use daas_controllers::Controller;
use serde_json::{json, Value};

use crate::common;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";

/// Records every node reported dead.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl NodeFailureHandler for Recorder {
    async fn node_failed(&self, node: &Value, _reason: &str) -> Result<(), NodeFailureError> {
        let name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.0.lock().unwrap().push(name);
        Ok(())
    }
}

impl Recorder {
    fn reported(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn ts(offset_s: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_s))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn add_node(c: &LocalClient, name: &str) {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    c.create("/api/v1/nodes", &node).await.unwrap();
    c.merge_patch(
        &format!("/api/v1/nodes/{name}/status"),
        &json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
    )
    .await
    .unwrap();
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": ts(0)}});
    c.create(LEASES, &lease).await.unwrap();
}

/// The node renews its Lease (a renewTime newer than any before: `tick` grows).
async fn renew(c: &LocalClient, name: &str, tick: i64) {
    c.merge_patch(
        &format!("{LEASES}/{name}"),
        &json!({"spec": {"renewTime": ts(tick)}}),
    )
    .await
    .unwrap();
}

async fn node(c: &LocalClient, name: &str) -> Value {
    c.get(&format!("/api/v1/nodes/{name}")).await.unwrap()
}

fn has_taint(node: &Value, effect: &str) -> bool {
    has(node, UNREACHABLE_TAINT, effect)
}

fn has(node: &Value, key: &str, effect: &str) -> bool {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| ts.iter().any(|t| t["key"] == key && t["effect"] == effect))
        .unwrap_or(false)
}

fn ready(node: &Value) -> String {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
        .to_string()
}

/// An API server whose new pods tolerate an unreachable node for 0 s (evicted at once) and a
/// not-ready one for the upstream 300 s (`--default-unreachable-toleration-seconds 0`).
async fn env() -> common::Env {
    let e = common::api_with_options(
        Vec::new(),
        ServerOptions {
            default_tolerations: DefaultTolerations {
                not_ready_seconds: 300,
                unreachable_seconds: 0,
            },
            ..Default::default()
        },
    )
    .await;
    let _ = e
        .c
        .create(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-node-lease"}}),
        )
        .await;
    e
}

fn controller(
    c: &LocalClient,
    clock: &Arc<ManualClock>,
    rec: &Arc<Recorder>,
    slash_delay_s: u64,
) -> NodeLifecycleController {
    NodeLifecycleController::new(c.clone(), Duration::from_secs(10), Some(rec.clone() as _))
        .with_eviction(EvictionConfig {
            slash_delay: Some(Duration::from_secs(slash_delay_s)),
            ..Default::default()
        })
        .with_clock(clock.clone() as _)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_is_evicted_then_reported_after_the_slash_delay_and_a_stall_defers() {
    let e = env().await;
    let c = &e.c;
    for n in ["alive", "dead"] {
        add_node(c, n).await;
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim", "namespace": "default"},
        "spec": {"nodeName": "dead", "containers": [{"name": "c", "image": "busybox"}]}});
    c.create("/api/v1/namespaces/default/pods", &pod)
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new());
    let rec = Arc::new(Recorder::default());
    let mut ctl = controller(c, &clock, &rec, 5);
    ctl.reconcile().await.unwrap();
    // 10 s of "alive" renewing and "dead" silent: nothing happens within the grace period, even
    // though dead's renewTime (written by its own clock) is left behind.
    for t in 1..=10 {
        clock.advance(Duration::from_secs(1));
        renew(c, "alive", t).await;
        ctl.reconcile().await.unwrap();
    }
    assert_eq!(ready(&node(c, "dead").await), "True");
    // Past the grace period: Unknown, both taints (the zone's first eviction token), pod gone.
    clock.advance(Duration::from_secs(1));
    renew(c, "alive", 11).await;
    ctl.reconcile().await.unwrap();
    // The taint eviction controller (woken by the taint) evicts the pod.
    TaintEvictionController::new(c.clone())
        .reconcile()
        .await
        .unwrap();
    let dead = node(c, "dead").await;
    assert_eq!(ready(&dead), "Unknown", "{dead}");
    assert!(
        has_taint(&dead, "NoSchedule") && has_taint(&dead, "NoExecute"),
        "{dead}"
    );
    assert!(c
        .get("/api/v1/namespaces/default/pods/victim")
        .await
        .is_err());
    assert!(rec.reported().is_empty(), "reported within grace + delay");
    let alive = node(c, "alive").await;
    assert_eq!(ready(&alive), "True");
    assert!(!has_taint(&alive, "NoSchedule"), "{alive}");
    // The controller stalls for 30 s (SIGSTOP, CPU starvation): on the next pass every node gets
    // a fresh grace period and reports wait, although dead is silent for grace + delay by now.
    clock.advance(Duration::from_secs(30));
    ctl.reconcile().await.unwrap();
    assert!(rec.reported().is_empty(), "reported right after a stall");
    let alive = node(c, "alive").await;
    assert_eq!(ready(&alive), "True", "alive declared dead after a stall");
    // dead stays silent: after another grace + delay of continuous silence it is reported, once.
    for t in 12..=40 {
        clock.advance(Duration::from_secs(1));
        renew(c, "alive", t).await;
        ctl.reconcile().await.unwrap();
    }
    assert_eq!(rec.reported(), vec!["dead".to_string()]);
    let dead = node(c, "dead").await;
    assert!(
        !dead["metadata"]["annotations"][FAILED_ANNOTATION].is_null(),
        "{dead}"
    );
    assert!(!has_taint(&node(c, "alive").await, "NoExecute"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_are_rate_limited_per_zone() {
    let e = env().await;
    let c = &e.c;
    let names: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    for n in &names {
        add_node(c, n).await;
    }
    let clock = Arc::new(ManualClock::new());
    let rec = Arc::new(Recorder::default());
    let mut ctl = controller(c, &clock, &rec, 1000);
    ctl.reconcile().await.unwrap();
    // n0..n3 go silent (4 of 10 not Ready: a normal zone, 0.1 nodes/s); the rest renew.
    for t in 1..=30 {
        clock.advance(Duration::from_secs(1));
        for n in &names[4..] {
            renew(c, n, t).await;
        }
        ctl.reconcile().await.unwrap();
    }
    let mut unknown = 0;
    let mut no_execute = 0;
    for n in &names[..4] {
        let node = node(c, n).await;
        unknown += usize::from(ready(&node) == "Unknown" && has_taint(&node, "NoSchedule"));
        no_execute += usize::from(has_taint(&node, "NoExecute"));
    }
    // All four are Unknown and unschedulable at once; in the 20 s since, 0.1/s with a burst of
    // one admitted 1 + 2 NoExecute taints.
    assert_eq!(unknown, 4);
    assert!(
        (2..=3).contains(&no_execute),
        "{no_execute} NoExecute taints"
    );
    for n in &names[4..] {
        assert!(!has_taint(&node(c, n).await, "NoSchedule"), "{n} tainted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_down_means_no_eviction_and_no_report() {
    let e = env().await;
    let c = &e.c;
    for n in ["a", "b", "c"] {
        add_node(c, n).await;
    }
    let clock = Arc::new(ManualClock::new());
    let rec = Arc::new(Recorder::default());
    let mut ctl = controller(c, &clock, &rec, 1);
    ctl.reconcile().await.unwrap();
    for _ in 0..60 {
        clock.advance(Duration::from_secs(1));
        ctl.reconcile().await.unwrap();
    }
    for n in ["a", "b", "c"] {
        let node = node(c, n).await;
        assert_eq!(ready(&node), "Unknown", "{node}");
        assert!(has_taint(&node, "NoSchedule"), "{node}");
        assert!(
            !has_taint(&node, "NoExecute"),
            "evicted while all down: {node}"
        );
    }
    assert!(rec.reported().is_empty(), "{:?}", rec.reported());
    // One node comes back: the master leaves disruption mode and gives everyone a fresh grace
    // period before anything is evicted.
    renew(c, "a", 100).await;
    c.merge_patch(
        "/api/v1/nodes/a/status",
        &json!({"status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": ts(100)}]}}),
    )
    .await
    .unwrap();
    clock.advance(Duration::from_secs(1));
    ctl.reconcile().await.unwrap();
    for n in ["b", "c"] {
        assert!(!has_taint(&node(c, n).await, "NoExecute"));
    }
    assert!(rec.reported().is_empty());
}

async fn set_ready(c: &LocalClient, name: &str, status: &str, tick: i64) {
    c.merge_patch(
        &format!("/api/v1/nodes/{name}/status"),
        &json!({"status": {"conditions": [{"type": "Ready", "status": status,
            "reason": if status == "True" { "KubeletReady" } else { "KubeletNotReady" },
            "lastHeartbeatTime": ts(tick)}]}}),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_node_is_tainted_not_ready_never_reported_and_swapped_when_silent() {
    let e = env().await;
    let c = &e.c;
    for n in ["a", "b", "sick"] {
        add_node(c, n).await;
    }
    // A pod on the sick node: admission gave it the default tolerations (not-ready: 300 s).
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tenant", "namespace": "default"},
        "spec": {"nodeName": "sick", "containers": [{"name": "c", "image": "busybox"}]}});
    let created = c
        .create("/api/v1/namespaces/default/pods", &pod)
        .await
        .unwrap();
    let tolerations = created["spec"]["tolerations"].to_string();
    assert!(
        tolerations.contains(NOT_READY_TAINT) && tolerations.contains("300"),
        "{tolerations}"
    );
    let clock = Arc::new(ManualClock::new());
    let rec = Arc::new(Recorder::default());
    let mut ctl = controller(c, &clock, &rec, 1);
    let mut evictor = TaintEvictionController::new(c.clone());
    ctl.reconcile().await.unwrap();
    // sick keeps renewing but reports Ready=False (e.g. shutting down).
    set_ready(c, "sick", "False", 1).await;
    for t in 1..=30 {
        clock.advance(Duration::from_secs(1));
        for n in ["a", "b", "sick"] {
            renew(c, n, t).await;
        }
        ctl.reconcile().await.unwrap();
        evictor.reconcile().await.unwrap();
    }
    let sick = node(c, "sick").await;
    assert!(
        has(&sick, NOT_READY_TAINT, "NoSchedule") && has(&sick, NOT_READY_TAINT, "NoExecute"),
        "{sick}"
    );
    assert!(!has_taint(&sick, "NoSchedule"), "{sick}");
    assert_eq!(ready(&sick), "False");
    // Heard: never reported (slashed), and its pod tolerates not-ready for 300 s.
    assert!(rec.reported().is_empty(), "{:?}", rec.reported());
    let p = c
        .get("/api/v1/namespaces/default/pods/tenant")
        .await
        .unwrap();
    assert!(p["metadata"]["deletionTimestamp"].is_null(), "{p}");
    // Ready again: the taints go.
    set_ready(c, "sick", "True", 31).await;
    clock.advance(Duration::from_secs(1));
    ctl.reconcile().await.unwrap();
    let sick = node(c, "sick").await;
    assert!(
        !has(&sick, NOT_READY_TAINT, "NoSchedule") && !has(&sick, NOT_READY_TAINT, "NoExecute"),
        "{sick}"
    );
    // Not ready again (its NoExecute taint admitted: a token is free after 30 s), then silent:
    // the not-ready taints are swapped for unreachable ones at once, the pod (unreachable: 0 s)
    // is evicted, and the node is reported after grace + delay.
    set_ready(c, "sick", "False", 32).await;
    for t in 32..=40 {
        clock.advance(Duration::from_secs(1));
        for n in ["a", "b", "sick"] {
            renew(c, n, t).await;
        }
        ctl.reconcile().await.unwrap();
    }
    assert!(has(&node(c, "sick").await, NOT_READY_TAINT, "NoExecute"));
    for t in 41..=52 {
        clock.advance(Duration::from_secs(1));
        for n in ["a", "b"] {
            renew(c, n, t).await;
        }
        ctl.reconcile().await.unwrap();
    }
    let sick = node(c, "sick").await;
    assert_eq!(ready(&sick), "Unknown", "{sick}");
    assert!(
        has_taint(&sick, "NoSchedule") && has_taint(&sick, "NoExecute"),
        "{sick}"
    );
    assert!(
        !has(&sick, NOT_READY_TAINT, "NoSchedule") && !has(&sick, NOT_READY_TAINT, "NoExecute"),
        "{sick}"
    );
    evictor.reconcile().await.unwrap();
    assert!(c
        .get("/api/v1/namespaces/default/pods/tenant")
        .await
        .is_err());
    for t in 53..=60 {
        clock.advance(Duration::from_secs(1));
        for n in ["a", "b"] {
            renew(c, n, t).await;
        }
        ctl.reconcile().await.unwrap();
    }
    assert_eq!(rec.reported(), vec!["sick".to_string()]);
}
