//! The HPA controller in the in-process cluster, with real PodMetrics: metrics.k8s.io is served
//! by the API server from node summaries fetched through its NodeProxy, here one answering as the
//! agents would (the pods the test's kubelet runs, at a CPU usage the test sets). A Deployment
//! scales up under load and back down when it stops; without requests or metrics nothing scales
//! and the HPA says why.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::response::Response;
use daas_apiserver::{ApiError, ApiResult, LocalClient, NodeProxy, ServerOptions};
use daas_controllers::{ControllerOptions, STAKED};
use serde_json::{json, Value};

use crate::common;

const NS: &str = "/api/v1/namespaces/default";
const APPS: &str = "/apis/apps/v1/namespaces/default";
const HPAS: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

/// The agents' stats summaries: the pods the kubelet runs, each using `cpu_nano` nanocores.
#[derive(Default)]
struct Agents {
    pods: Mutex<Vec<Value>>,
    cpu_nano: AtomicU64,
}

#[async_trait]
impl NodeProxy for Agents {
    async fn container_logs(
        &self,
        _: &Value,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> ApiResult<Response> {
        Err(ApiError::new(503, "ServiceUnavailable", "no logs here"))
    }

    async fn node_get(&self, node: &Value, path: &str) -> ApiResult<Vec<u8>> {
        assert_eq!(path, "/stats/summary");
        let now = now();
        let cpu = self.cpu_nano.load(Ordering::SeqCst);
        let pods: Vec<Value> = self
            .pods
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node["metadata"]["name"])
            .map(|p| {
                json!({"podRef": {"namespace": p["metadata"]["namespace"],
                    "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]},
                    "cpu": {"time": now, "usageNanoCores": cpu},
                    "containers": [{"name": "c", "cpu": {"time": now, "usageNanoCores": cpu},
                        "memory": {"workingSetBytes": 64u64 << 20}}]})
            })
            .collect();
        let summary = json!({"node": {"nodeName": node["metadata"]["name"],
            "cpu": {"time": now, "usageNanoCores": cpu * pods.len() as u64},
            "memory": {"workingSetBytes": 1u64 << 30}}, "pods": pods});
        Ok(serde_json::to_vec(&summary).unwrap())
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn env(agents: Arc<Agents>) -> common::Env {
    let e = common::with_controllers_on(
        ControllerOptions {
            resync: Duration::from_secs(1),
            hpa_sync_period: Duration::from_millis(200),
            ..Default::default()
        },
        ServerOptions {
            node_proxy: Some(agents),
            metrics_resolution: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .await;
    e.c.create(
        "/api/v1/nodes",
        &json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", STAKED: "true"}}}),
    )
    .await
    .unwrap();
    e.c.merge_patch("/api/v1/nodes/n1/status", &json!({"status": {
        "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
        "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now(), "lastTransitionTime": now()}]}}))
        .await
        .unwrap();
    e
}

/// Kubelet: bound pods run (started and ready ten minutes ago, past the cpu initialization
/// period) and are reported in the summaries; deleted pods go.
async fn kubelet(c: &LocalClient, agents: &Agents) {
    let started = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut running = Vec::new();
    for p in c.list(&format!("{NS}/pods")).await.unwrap() {
        let name = p["metadata"]["name"].as_str().unwrap().to_string();
        if !p["metadata"]["deletionTimestamp"].is_null() {
            let _ = c
                .call_delete_with(
                    &format!("{NS}/pods/{name}"),
                    &json!({"gracePeriodSeconds": 0}),
                )
                .await;
            continue;
        }
        if p["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
            continue;
        }
        if p["status"]["phase"] != "Running" {
            let conds = json!([{"type": "Ready", "status": "True", "lastTransitionTime": started}]);
            let _ = c
                .merge_patch(
                    &format!("{NS}/pods/{name}/status"),
                    &json!({"status": {"phase": "Running", "startTime": started, "conditions": conds}}),
                )
                .await;
        }
        running.push(p);
    }
    *agents.pods.lock().unwrap() = running;
}

async fn until<F, Fut>(c: &LocalClient, agents: &Agents, what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Value, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        kubelet(c, agents).await;
        match check().await {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn deployment(name: &str, requests: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {"replicas": 1,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
            {"name": "c", "image": "busybox", "resources": {"requests": requests}}]}}}})
}

fn hpa(name: &str, behavior: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": 1, "maxReplicas": 4,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}],
        "behavior": behavior}})
}

async fn events_for(c: &LocalClient, name: &str) -> Vec<(String, String)> {
    c.list(&format!("{NS}/events"))
        .await
        .unwrap()
        .iter()
        .filter(|e| {
            e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"
                && e["involvedObject"]["name"] == name
        })
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn cond<'a>(h: &'a Value, ty: &str) -> &'a Value {
    h["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_up_under_load_and_down_when_it_stops() {
    let agents = Arc::new(Agents::default());
    let e = env(agents.clone()).await;
    let c = &e.c;
    c.create(
        &format!("{APPS}/deployments"),
        &deployment("web", json!({"cpu": "100m"})),
    )
    .await
    .unwrap();
    // 150m of a 100m request: 150% against a 50% target -> 3 replicas.
    agents.cpu_nano.store(150_000_000, Ordering::SeqCst);
    c.create(
        HPAS,
        &hpa(
            "web",
            json!({"scaleDown": {"stabilizationWindowSeconds": 1}}),
        ),
    )
    .await
    .unwrap();
    let h = until(c, &agents, "scale up to 3", || async {
        let d = c.get(&format!("{APPS}/deployments/web")).await.unwrap();
        let h = c.get(&format!("{HPAS}/web")).await.unwrap();
        if d["spec"]["replicas"] == 3 && h["status"]["desiredReplicas"] == 3 {
            Ok(h)
        } else {
            Err(format!("{} {}", d["spec"]["replicas"], h["status"]))
        }
    })
    .await;
    assert!(h["status"]["lastScaleTime"].is_string(), "{h}");
    assert_eq!(cond(&h, "ScalingActive")["reason"], "ValidMetricFound");
    assert_eq!(
        cond(&h, "ScalingActive")["message"],
        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"
    );
    assert_eq!(cond(&h, "AbleToScale")["status"], "True");
    // (The event is posted after the scale update the check above saw.)
    until_event(
        c,
        &agents,
        "SuccessfulRescale",
        "New size: 3; reason: cpu resource utilization (percentage of request) above target",
    )
    .await;
    // The status reports the measured utilization once all three run.
    until(c, &agents, "utilization in status", || async {
        let h = c.get(&format!("{HPAS}/web")).await.unwrap();
        let cur = &h["status"]["currentMetrics"][0]["resource"]["current"];
        if cur["averageUtilization"] == 150 && h["status"]["currentReplicas"] == 3 {
            Ok(h)
        } else {
            Err(h["status"].to_string())
        }
    })
    .await;
    // The v1 view agrees.
    let v1 = c
        .get("/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web")
        .await
        .unwrap();
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 150);
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);

    // Load stops: 10% -> 1 replica after the 1 s stabilization window. (A sync before the load
    // drops may first take it to the maximum, 4: 150% on three pods.)
    agents.cpu_nano.store(10_000_000, Ordering::SeqCst);
    until(c, &agents, "scale down to 1", || async {
        let d = c.get(&format!("{APPS}/deployments/web")).await.unwrap();
        if d["spec"]["replicas"] == 1 {
            Ok(d)
        } else {
            Err(d["spec"]["replicas"].to_string())
        }
    })
    .await;
    until_event(
        c,
        &agents,
        "SuccessfulRescale",
        "New size: 1; reason: All metrics below target",
    )
    .await;
}

/// Waits for the HPA `web` to have recorded an event with this reason and message.
async fn until_event(c: &LocalClient, agents: &Agents, reason: &str, message: &str) {
    until(c, agents, &format!("event {reason}: {message}"), || async {
        let ev = events_for(c, "web").await;
        if ev.iter().any(|(r, m)| r == reason && m == message) {
            Ok(Value::Null)
        } else {
            Err(format!("{ev:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_scaling_without_requests_or_metrics() {
    let agents = Arc::new(Agents::default());
    let e = env(agents.clone()).await;
    let c = &e.c;
    agents.cpu_nano.store(900_000_000, Ordering::SeqCst);
    // No cpu request: utilization is undefined.
    c.create(
        &format!("{APPS}/deployments"),
        &deployment("noreq", json!({})),
    )
    .await
    .unwrap();
    c.create(HPAS, &hpa("noreq", Value::Null)).await.unwrap();
    // (Until the pod runs and is reported, the metrics are missing; then the request is.)
    let h = until(c, &agents, "ScalingActive False", || async {
        let h = c.get(&format!("{HPAS}/noreq")).await.unwrap();
        let sa = cond(&h, "ScalingActive");
        if sa["status"] == "False"
            && sa["message"]
                .as_str()
                .unwrap_or("")
                .contains("missing request")
        {
            Ok(h)
        } else {
            Err(h["status"].to_string())
        }
    })
    .await;
    let sa = cond(&h, "ScalingActive");
    assert_eq!(sa["reason"], "FailedGetResourceMetric");
    let msg = sa["message"].as_str().unwrap();
    assert!(
        msg.starts_with("the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container c of Pod noreq-"),
        "{msg}"
    );
    assert_eq!(h["status"]["currentMetrics"], json!([{"type": ""}]));
    assert_eq!(
        cond(&h, "AbleToScale")["reason"],
        "SucceededGetScale",
        "{h}"
    );
    let ev = events_for(c, "noreq").await;
    assert!(
        ev.iter()
            .any(|(r, m)| r == "FailedComputeMetricsReplicas"
                && m.starts_with("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: missing request")),
        "{ev:?}"
    );
    let d = c.get(&format!("{APPS}/deployments/noreq")).await.unwrap();
    assert_eq!(d["spec"]["replicas"], 1);

    // A target that does not exist: AbleToScale False.
    let mut missing = hpa("ghost", Value::Null);
    missing["spec"]["scaleTargetRef"]["name"] = json!("ghost");
    c.create(HPAS, &missing).await.unwrap();
    let h = until(c, &agents, "FailedGetScale", || async {
        let h = c.get(&format!("{HPAS}/ghost")).await.unwrap();
        if cond(&h, "AbleToScale")["reason"] == "FailedGetScale" {
            Ok(h)
        } else {
            Err(h["status"].to_string())
        }
    })
    .await;
    assert_eq!(cond(&h, "AbleToScale")["status"], "False");

    // Pods with requests but no metrics (agents that report no pods): no metrics, no scaling.
    let e2 = env(Arc::new(Agents::default())).await;
    let c2 = &e2.c;
    c2.create(
        &format!("{APPS}/deployments"),
        &deployment("quiet", json!({"cpu": "100m"})),
    )
    .await
    .unwrap();
    c2.create(HPAS, &hpa("quiet", Value::Null)).await.unwrap();
    // This kubelet's reports go nowhere: e2's agents stay silent.
    let elsewhere = Agents::default();
    let h = until(c2, &elsewhere, "no metrics", || async {
        let h = c2.get(&format!("{HPAS}/quiet")).await.unwrap();
        if cond(&h, "ScalingActive")["status"] == "False" {
            Ok(h)
        } else {
            Err(h["status"].to_string())
        }
    })
    .await;
    assert_eq!(
        cond(&h, "ScalingActive")["message"],
        "the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    );
}
