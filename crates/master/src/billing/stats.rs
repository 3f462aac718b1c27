//! The real stats source: the cluster's Nodes (verified = Ready True and staked) and each
//! node's `/stats/summary`, fetched from its agent through the attested node proxy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{LocalClient, NodeProxy};
use serde_json::Value;

use super::meter::{NodeState, StatsError, StatsSource};

/// A node that does not answer within this accrues nothing for the interval.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ClusterStats {
    pub client: LocalClient,
    pub proxy: Arc<dyn NodeProxy>,
    nodes: Mutex<HashMap<String, Value>>,
}

impl ClusterStats {
    pub fn new(client: LocalClient, proxy: Arc<dyn NodeProxy>) -> Self {
        ClusterStats {
            client,
            proxy,
            nodes: Mutex::new(HashMap::new()),
        }
    }
}

/// A node's heartbeat counts as verified when the lifecycle controller has it Ready (its Lease,
/// renewed with the node's own seal token, is fresh) and the staked-node controller found an
/// active stake holding its name.
pub fn verified(node: &Value) -> bool {
    daas_controllers::util::condition_true(node, "Ready")
        && node["metadata"]["labels"][daas_controllers::scheduler::STAKED_LABEL] == "true"
}

#[async_trait]
impl StatsSource for ClusterStats {
    async fn nodes(&self) -> Result<Vec<NodeState>, StatsError> {
        let nodes = self.client.list("/api/v1/nodes").await?;
        let states = nodes
            .iter()
            .map(|n| NodeState {
                name: daas_controllers::util::name(n).to_string(),
                verified: verified(n),
            })
            .collect();
        if let Ok(mut m) = self.nodes.lock() {
            *m = nodes
                .into_iter()
                .map(|n| (daas_controllers::util::name(&n).to_string(), n))
                .collect();
        }
        Ok(states)
    }

    async fn summary(&self, node: &str) -> Option<Value> {
        let obj = self.nodes.lock().ok()?.get(node).cloned()?;
        match tokio::time::timeout(SCRAPE_TIMEOUT, self.proxy.node_get(&obj, "/stats/summary"))
            .await
        {
            Ok(Ok(b)) => serde_json::from_slice(&b).ok(),
            Ok(Err(e)) => {
                tracing::debug!(node, error = %e.message, "stats summary not available for billing");
                None
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_ready_staked_nodes_are_verified() {
        let n = |ready: &str, staked: Option<&str>| {
            let mut labels = json!({});
            if let Some(s) = staked {
                labels[daas_controllers::scheduler::STAKED_LABEL] = json!(s);
            }
            json!({"metadata": {"name": "n", "labels": labels},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}})
        };
        assert!(verified(&n("True", Some("true"))));
        assert!(!verified(&n("Unknown", Some("true"))));
        assert!(!verified(&n("True", None)));
        assert!(!verified(&n("False", Some("true"))));
    }
}
