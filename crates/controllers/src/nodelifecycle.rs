//! Node lifecycle: a node whose Lease in `kube-node-lease` has not been renewed for the grace
//! period becomes Ready=Unknown, is tainted unreachable (NoSchedule and NoExecute), the pods that
//! do not tolerate that are evicted at once through [`crate::tainteviction`] (the one owner of
//! taint-based eviction, which also evicts tolerating pods when their `tolerationSeconds` run out),
//! and the failure is reported once to a
//! [`NodeFailureHandler`] (the master slashes the node's stake). A node that renews its Lease again
//! gets the taints removed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::tainteviction;
use crate::util::{self, CORE};
use crate::Controller;

pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// Set when the failure was reported (so it is reported once per outage).
pub const FAILED_ANNOTATION: &str = "k3s-daas.io/failure-reported-at";
const COMPONENT: &str = "node-controller";

/// What happens when a node is declared dead (e.g. a slashing report).
#[async_trait]
pub trait NodeFailureHandler: Send + Sync + 'static {
    /// Called once per outage. An error is logged and the report retried on the next pass.
    async fn node_failed(&self, node: &Value, reason: &str) -> Result<(), String>;
}

pub struct NodeLifecycleController {
    client: LocalClient,
    grace: Duration,
    handler: Option<Arc<dyn NodeFailureHandler>>,
    /// When this controller started: a node is given the whole grace period from then, as
    /// upstream's node controller probes every node afresh when it starts (a cluster restarted
    /// after a longer stop must not declare its nodes dead, and slash them, before they could
    /// renew their Leases).
    started: chrono::DateTime<Utc>,
}

impl NodeLifecycleController {
    pub fn new(
        client: LocalClient,
        grace: Duration,
        handler: Option<Arc<dyn NodeFailureHandler>>,
    ) -> Self {
        NodeLifecycleController {
            client,
            grace,
            handler,
            started: Utc::now(),
        }
    }
}

/// Seconds since the node last proved liveness (Lease renewTime, else Node creation), counted
/// from no earlier than `since` (the controller's start).
fn silence(
    node: &Value,
    lease: Option<&Value>,
    since: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
) -> Option<i64> {
    let last = lease
        .and_then(|l| util::parse_time(&l["spec"]["renewTime"]))
        .or_else(|| util::parse_time(&node["metadata"]["creationTimestamp"]))?;
    Some((now - last.max(since)).num_seconds())
}

fn has_unreachable_taint(node: &Value) -> bool {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| ts.iter().any(|t| t["key"] == UNREACHABLE_TAINT))
        .unwrap_or(false)
}

fn taints_without_unreachable(node: &Value) -> Vec<Value> {
    node["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .filter(|t| t["key"] != UNREACHABLE_TAINT)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Controller for NodeLifecycleController {
    fn name(&self) -> &'static str {
        "node-lifecycle"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            format!("{CORE}/nodes"),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases".into(),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let now = Utc::now();
        let nodes = self.client.list(&format!("{CORE}/nodes")).await?;
        let leases = self
            .client
            .list("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
            .await?;
        let grace = self.grace.as_secs() as i64;
        for node in &nodes {
            let name = util::name(node).to_string();
            let lease = leases.iter().find(|l| util::name(l) == name);
            let Some(silent) = silence(node, lease, self.started, now) else {
                continue;
            };
            let path = format!("{CORE}/nodes/{name}");
            if silent > grace {
                if !util::condition(node, "Ready")
                    .map(|c| c["status"] == "Unknown")
                    .unwrap_or(false)
                {
                    tracing::warn!(node = %name, silent_s = silent, "node stopped renewing its lease");
                    let msg = "Kubelet stopped posting node status.";
                    let cond = json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": msg,
                        "lastHeartbeatTime": node_last_heartbeat(node), "lastTransitionTime": util::now_rfc3339()});
                    let mut conds: Vec<Value> = node["status"]["conditions"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    conds.retain(|c| c["type"] != "Ready");
                    conds.push(cond);
                    self.client
                        .merge_patch(
                            &format!("{path}/status"),
                            &json!({"status": {"conditions": conds}}),
                        )
                        .await?;
                    let _ = util::record_event(
                        &self.client,
                        node,
                        "Normal",
                        "NodeNotReady",
                        &format!("Node {name} status is now: NodeNotReady"),
                        COMPONENT,
                    )
                    .await;
                }
                let tainted = if has_unreachable_taint(node) {
                    node.clone()
                } else {
                    let mut taints = taints_without_unreachable(node);
                    for effect in ["NoSchedule", "NoExecute"] {
                        taints.push(json!({"key": UNREACHABLE_TAINT, "effect": effect, "timeAdded": util::now_rfc3339()}));
                    }
                    self.client
                        .merge_patch(&path, &json!({"spec": {"taints": taints}}))
                        .await?
                };
                let evicted = tainteviction::evict_untolerating(&self.client, &tainted).await?;
                if evicted > 0 {
                    tracing::info!(node = %name, evicted, "evicted pods from unreachable node");
                }
                if node["metadata"]["annotations"][FAILED_ANNOTATION].is_null() {
                    let reason = format!("no heartbeat for {silent}s (grace {grace}s)");
                    let reported = match &self.handler {
                        Some(h) => match h.node_failed(node, &reason).await {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!(node = %name, error = %e, "reporting the node failure failed; will retry");
                                false
                            }
                        },
                        None => true,
                    };
                    if reported {
                        self.client
                            .merge_patch(&path, &json!({"metadata": {"annotations": {FAILED_ANNOTATION: util::now_rfc3339()}}}))
                            .await?;
                    }
                }
            } else if has_unreachable_taint(node)
                || !node["metadata"]["annotations"][FAILED_ANNOTATION].is_null()
            {
                // Back: lease renewed within the grace period.
                let taints = taints_without_unreachable(node);
                self.client
                    .merge_patch(&path, &json!({"metadata": {"annotations": {FAILED_ANNOTATION: null}}, "spec": {"taints": taints}}))
                    .await?;
                let _ = util::record_event(
                    &self.client,
                    node,
                    "Normal",
                    "NodeReady",
                    &format!("Node {name} status is now: NodeReady"),
                    COMPONENT,
                )
                .await;
            }
        }
        // Check again when the quietest healthy node would cross the grace period.
        Ok(Some(Duration::from_secs(1)))
    }
}

fn node_last_heartbeat(node: &Value) -> Value {
    util::condition(node, "Ready")
        .map(|c| c["lastHeartbeatTime"].clone())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_from_lease_or_creation() {
        let now = Utc::now();
        let ts = |s: i64| {
            (now - chrono::Duration::seconds(s))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        let node = json!({"metadata": {"creationTimestamp": ts(100)}});
        let lease = json!({"spec": {"renewTime": ts(5)}});
        let long_ago = now - chrono::Duration::days(1);
        assert_eq!(silence(&node, Some(&lease), long_ago, now), Some(5));
        assert_eq!(silence(&node, None, long_ago, now), Some(100));
        // A controller that started 20 s ago counts a node silent for 100 s as silent for 20 s:
        // the node gets a whole grace period after a cluster restart.
        let started = now - chrono::Duration::seconds(20);
        assert_eq!(silence(&node, None, started, now), Some(20));
        assert_eq!(silence(&node, Some(&lease), started, now), Some(5));
        let tainted = json!({"spec": {"taints": [{"key": UNREACHABLE_TAINT, "effect": "NoSchedule"}, {"key": "x", "effect": "NoSchedule"}]}});
        assert!(has_unreachable_taint(&tainted));
        assert_eq!(taints_without_unreachable(&tainted).len(), 1);
    }
}
