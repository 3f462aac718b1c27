//! `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics (what metrics-server serves): read-only
//! virtual resources built from the agents' `/stats/summary`, fetched through the
//! [`NodeProxy`](crate::server::NodeProxy) and kept for a short resolution window. Requests are
//! authorized like any resource (RBAC `get`/`list` on `nodes`/`pods` in group `metrics.k8s.io`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::Strategy;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{json_response, list_objects, Ctx, Filter};
use crate::request::As;
use crate::request::ResourceTarget;
use crate::resources::{self, ResourceDef};
use crate::server::NodeProxy;

pub const GROUP: &str = "metrics.k8s.io";
/// How long a node's summary is reused (metrics-server's default `--metric-resolution`).
pub const RESOLUTION: Duration = Duration::from_secs(15);
/// The window the agents' CPU rates are computed over (their sampling interval).
const WINDOW: &str = "10s";
/// A node that does not answer within this is left out (as metrics-server does).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct MetricsStrategy;

impl Strategy for MetricsStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        Ok(obj.clone())
    }

    fn verbs(&self) -> &'static [&'static str] {
        &["get", "list"]
    }
}

pub const NODE_METRICS: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1beta1",
    kind: "NodeMetrics",
    list_kind: "NodeMetricsList",
    plural: "nodes",
    singular: "",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &MetricsStrategy,
};

pub const POD_METRICS: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1beta1",
    kind: "PodMetrics",
    list_kind: "PodMetricsList",
    plural: "pods",
    singular: "",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &MetricsStrategy,
};

/// Is this one of the metrics resources (served only by [`serve`])?
pub fn is_metrics(def: &ResourceDef) -> bool {
    def.group == GROUP
}

/// The summaries fetched from each node, reused for one resolution window ([`RESOLUTION`] by
/// default); a node that did not answer is not asked again within the window either (a slow node
/// would otherwise delay every request).
pub struct Cache {
    nodes: Mutex<HashMap<String, (Instant, Option<Value>)>>,
    resolution: Duration,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(RESOLUTION)
    }
}

impl Cache {
    /// A cache reusing summaries for `resolution` (metrics-server's `--metric-resolution`).
    pub fn new(resolution: Duration) -> Self {
        Cache {
            nodes: Mutex::new(HashMap::new()),
            resolution,
        }
    }

    async fn summary(&self, proxy: &dyn NodeProxy, node: &Value) -> Option<Value> {
        let name = node["metadata"]["name"].as_str()?.to_string();
        if let Some((at, v)) = self
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
        {
            if at.elapsed() < self.resolution {
                return v.clone();
            }
        }
        let got = match tokio::time::timeout(SCRAPE_TIMEOUT, proxy.node_get(node, "/stats/summary"))
            .await
        {
            Ok(Ok(b)) => serde_json::from_slice::<Value>(&b).ok(),
            Ok(Err(e)) => {
                tracing::debug!(node = %name, error = %e.message, "stats summary not available");
                None
            }
            Err(_) => {
                tracing::debug!(node = %name, "stats summary timed out");
                None
            }
        };
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, (Instant::now(), got.clone()));
        got
    }
}

/// (cpu, memory) usage quantities of a summary's `cpu`/`memory` entry; None without a CPU rate.
fn usage(stats: &Value) -> Option<Value> {
    let cpu = stats["cpu"]["usageNanoCores"].as_u64()?;
    let mem = stats["memory"]["workingSetBytes"].as_u64()?;
    Some(json!({"cpu": format!("{cpu}n"), "memory": format!("{}Ki", mem / 1024)}))
}

fn labels(obj: &Value) -> Value {
    match &obj["metadata"]["labels"] {
        Value::Object(m) if !m.is_empty() => Value::Object(m.clone()),
        _ => json!({}),
    }
}

/// NodeMetrics of a Node from its summary.
pub fn node_metrics(node: &Value, summary: &Value) -> Option<Value> {
    let u = usage(&summary["node"])?;
    let time = summary["node"]["cpu"]["time"].clone();
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": node["metadata"]["name"],
            "creationTimestamp": crate::handlers::now_rfc3339(),
            "labels": labels(node),
        },
        "timestamp": time,
        "window": WINDOW,
        "usage": u,
    }))
}

/// PodMetrics of a Pod from its node's summary (None when the node does not report it, or
/// a container has no CPU rate yet).
pub fn pod_metrics(pod: &Value, summary: &Value) -> Option<Value> {
    let ns = pod["metadata"]["namespace"].as_str()?;
    let name = pod["metadata"]["name"].as_str()?;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let entry = summary["pods"].as_array()?.iter().find(|p| {
        p["podRef"]["namespace"] == ns
            && p["podRef"]["name"] == name
            && p["podRef"]["uid"]
                .as_str()
                .is_none_or(|u| uid.is_empty() || u == uid)
    })?;
    let containers = entry["containers"]
        .as_array()?
        .iter()
        .map(|c| Some(json!({"name": c["name"], "usage": usage(c)?})))
        .collect::<Option<Vec<Value>>>()?;
    if containers.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "creationTimestamp": crate::handlers::now_rfc3339(),
            "labels": labels(pod),
        },
        "timestamp": entry["cpu"]["time"],
        "window": WINDOW,
        "containers": containers,
    }))
}

fn render(def: &ResourceDef, items: Vec<Value>, single: bool, accept: As) -> Response {
    match (accept, single) {
        (As::Table, _) => json_response(
            StatusCode::OK,
            &crate::table::table(def, &items, "", crate::table::IncludeObject::Metadata, true),
        ),
        (_, true) => json_response(StatusCode::OK, items.first().unwrap_or(&Value::Null)),
        (_, false) => json_response(
            StatusCode::OK,
            &json!({
                "kind": def.list_kind,
                "apiVersion": def.api_version(),
                "metadata": {},
                "items": items,
            }),
        ),
    }
}

/// `GET` of NodeMetrics or PodMetrics (one, or a list with label and field selectors).
pub async fn serve(
    ctx: &Ctx,
    proxy: Option<&dyn NodeProxy>,
    cache: &Cache,
    t: &ResourceTarget,
    q: &HashMap<String, String>,
    accept: As,
) -> ApiResult<Response> {
    let proxy = proxy.ok_or_else(|| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            "this API server cannot reach nodes (no node proxy configured)",
        )
    })?;
    let nodes_def = &resources::NODES;
    if t.def.kind == "NodeMetrics" {
        let nodes = match &t.name {
            Some(n) => vec![
                crate::handlers::get_object(ctx, nodes_def, None, n)
                    .await
                    .map_err(|_| ApiError::not_found(t.def, n))?
                    .0,
            ],
            None => {
                let filter = Filter::from_query(nodes_def, q)?;
                list_objects(ctx, nodes_def, None, &filter).await?.0
            }
        };
        let mut items = Vec::new();
        for node in &nodes {
            if let Some(s) = cache.summary(proxy, node).await {
                items.extend(node_metrics(node, &s));
            }
        }
        if let (Some(n), true) = (&t.name, items.is_empty()) {
            return Err(ApiError::not_found(t.def, n));
        }
        return Ok(render(t.def, items, t.name.is_some(), accept));
    }
    let pods_def = &resources::PODS;
    let ns = t.namespace.as_deref();
    let pods = match &t.name {
        Some(n) => vec![
            crate::handlers::get_object(ctx, pods_def, ns, n)
                .await
                .map_err(|_| ApiError::not_found(t.def, n))?
                .0,
        ],
        None => {
            let filter = Filter::from_query(pods_def, q)?;
            list_objects(ctx, pods_def, ns, &filter).await?.0
        }
    };
    let mut by_node: HashMap<String, Vec<&Value>> = HashMap::new();
    for p in &pods {
        if let Some(n) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            by_node.entry(n.to_string()).or_default().push(p);
        }
    }
    let mut items = Vec::new();
    let mut names: Vec<&String> = by_node.keys().collect();
    names.sort();
    for n in names {
        let Ok((node, _)) = crate::handlers::get_object(ctx, nodes_def, None, n).await else {
            continue;
        };
        let Some(s) = cache.summary(proxy, &node).await else {
            continue;
        };
        items.extend(by_node[n].iter().filter_map(|p| pod_metrics(p, &s)));
    }
    items.sort_by(|a, b| {
        let k = |v: &Value| {
            (
                v["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                v["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        };
        k(a).cmp(&k(b))
    });
    if let (Some(n), true) = (&t.name, items.is_empty()) {
        return Err(ApiError::not_found(t.def, n));
    }
    Ok(render(t.def, items, t.name.is_some(), accept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Value {
        json!({
            "node": {"nodeName": "n1", "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 250_000_000u64},
                     "memory": {"workingSetBytes": 2048u64 * 1024}},
            "pods": [{
                "podRef": {"namespace": "t1", "name": "busy", "uid": "u1"},
                "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 900_000_000u64},
                "containers": [{"name": "main", "cpu": {"usageNanoCores": 900_000_000u64}, "memory": {"workingSetBytes": 4096u64}}],
            }, {
                "podRef": {"namespace": "t1", "name": "fresh", "uid": "u2"},
                "containers": [{"name": "main", "cpu": {"usageCoreNanoSeconds": 5u64}, "memory": {"workingSetBytes": 4096u64}}],
            }],
        })
    }

    #[test]
    fn metrics_from_summary() {
        let node = json!({"metadata": {"name": "n1", "labels": {"a": "b"}}});
        let m = node_metrics(&node, &summary()).expect("node metrics");
        assert_eq!(m["usage"], json!({"cpu": "250000000n", "memory": "2048Ki"}));
        assert_eq!(m["metadata"]["labels"]["a"], "b");
        let pod = json!({"metadata": {"namespace": "t1", "name": "busy", "uid": "u1"}});
        let p = pod_metrics(&pod, &summary()).expect("pod metrics");
        assert_eq!(
            p["containers"][0],
            json!({"name": "main", "usage": {"cpu": "900000000n", "memory": "4Ki"}})
        );
        // A recreated pod (other uid), a pod without a CPU rate yet and an unknown pod have none.
        let other = json!({"metadata": {"namespace": "t1", "name": "busy", "uid": "u9"}});
        assert!(pod_metrics(&other, &summary()).is_none());
        let fresh = json!({"metadata": {"namespace": "t1", "name": "fresh", "uid": "u2"}});
        assert!(pod_metrics(&fresh, &summary()).is_none());
        let gone = json!({"metadata": {"namespace": "t2", "name": "busy"}});
        assert!(pod_metrics(&gone, &summary()).is_none());
    }
}
