//! Staked nodes: the master, not the node, decides which Nodes may run workloads. For every Node it
//! asks the ledger (through a [`StakeDirectory`]) whether an active node-tier stake holds that
//! node name, and sets the label `k3s-daas.io/staked=true` plus the annotation
//! `k3s-daas.io/sui-address=<owner>` (a Sui address is longer than a label value may be) — or
//! removes the label when the stake is no longer active. NodeRestriction refuses `k3s-daas.io/`
//! labels from nodes themselves, so a node cannot claim a stake it does not have.
//!
//! Nodes the ledger knows nothing about and that this controller never marked (no `sui-address`
//! annotation: e.g. created by an admin) are left alone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Map, Value};

use crate::informer::Informers;
use crate::scheduler::STAKED_LABEL;
use crate::util::{self, CORE};
use crate::workqueue::{Resync, WorkQueue};
use crate::Controller;

/// Annotation naming the Sui address whose stake backs the node.
pub const ADDRESS_ANNOTATION: &str = "k3s-daas.io/sui-address";

/// What the ledger says about a node name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStake {
    /// An active node-tier stake owned by `owner` holds this node name.
    Active { owner: String },
    /// A stake of `owner` holds the name but is unbonding, slashed or below the minimum.
    Inactive { owner: String },
    /// No stake holds this node name.
    Unknown,
}

/// Why a stake lookup failed (the pass is retried).
#[derive(Debug, thiserror::Error)]
#[error("stake lookup for node {node}: {message}")]
pub struct StakeLookupError {
    pub node: String,
    pub message: String,
}

/// Where node stakes are looked up: the ledger in the master, a table in tests.
#[async_trait]
pub trait StakeDirectory: Send + Sync + 'static {
    async fn node_stake(&self, node: &str) -> Result<NodeStake, StakeLookupError>;
}

pub struct StakedNodeController {
    client: LocalClient,
    directory: Arc<dyn StakeDirectory>,
    informers: Informers,
    /// With shared caches: the Nodes that changed since the last pass (only those are looked up
    /// in the ledger; every Node is, once per [`LEDGER_RESYNC`]).
    queue: Option<Arc<WorkQueue>>,
    resync: Resync,
}

/// How often every Node's stake is looked up again (stakes change on the ledger, which sends no
/// events), when only changed Nodes are looked up in between.
pub const LEDGER_RESYNC: Duration = Duration::from_secs(30);

impl StakedNodeController {
    pub fn new(client: LocalClient, directory: Arc<dyn StakeDirectory>) -> Self {
        StakedNodeController {
            informers: Informers::direct(client.clone()),
            client,
            directory,
            queue: None,
            resync: Resync::new(LEDGER_RESYNC),
        }
    }

    /// Read Nodes from the shared caches and look up only the Nodes that changed (plus all of
    /// them every [`LEDGER_RESYNC`]): at 1,000 nodes each Node status update otherwise cost a
    /// list of every Node and a ledger lookup for each.
    pub fn with_informers(mut self, informers: Informers) -> Self {
        let q = Arc::new(WorkQueue::default());
        if informers.queue_keys(&format!("{CORE}/nodes"), &q) {
            self.queue = Some(q);
        }
        self.client = informers.client();
        self.informers = informers;
        self
    }

    /// Bring one Node's marks in line with its stake.
    async fn sync(&self, node: &Value) -> Result<(), ApiError> {
        let name = util::name(node).to_string();
        let stake = self.directory.node_stake(&name).await.map_err(|e| {
            tracing::warn!(node = %name, error = %e, "stake lookup failed");
            ApiError::new(503, "ServiceUnavailable", e.to_string())
        })?;
        if let Some(patch) = label_patch(node, &stake) {
            tracing::info!(node = %name, ?stake, "updating staked-node labels from the ledger");
            match self
                .client
                .merge_patch(&format!("{CORE}/nodes/{name}"), &patch)
                .await
            {
                Err(e) if e.code != 404 => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The metadata changes (a merge patch) that make `node` agree with `stake`, if any.
pub fn label_patch(node: &Value, stake: &NodeStake) -> Option<Value> {
    let staked = node["metadata"]["labels"][STAKED_LABEL].as_str();
    let address = node["metadata"]["annotations"][ADDRESS_ANNOTATION].as_str();
    let (mut labels, mut annotations) = (Map::new(), Map::new());
    let (want_staked, want_address) = match stake {
        NodeStake::Active { owner } => (true, Some(owner.as_str())),
        NodeStake::Inactive { owner } => (false, Some(owner.as_str())),
        // Only a node this controller marked loses its marks when its stake disappears.
        NodeStake::Unknown if address.is_some() => (false, None),
        NodeStake::Unknown => return None,
    };
    if want_staked && staked != Some("true") {
        labels.insert(STAKED_LABEL.into(), json!("true"));
    } else if !want_staked && staked.is_some() {
        labels.insert(STAKED_LABEL.into(), Value::Null);
    }
    if address != want_address {
        annotations.insert(
            ADDRESS_ANNOTATION.into(),
            want_address.map_or(Value::Null, |a| json!(a)),
        );
    }
    let mut meta = Map::new();
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    (!meta.is_empty()).then(|| json!({ "metadata": meta }))
}

#[async_trait]
impl Controller for StakedNodeController {
    fn name(&self) -> &'static str {
        "staked-nodes"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/nodes")]
    }

    fn informers(&self) -> Option<&Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let nodes = self.informers.list(&format!("{CORE}/nodes")).await?;
        let Some(q) = self.queue.clone() else {
            // No caches: every Node, every pass.
            let mut first_err = None;
            for node in nodes.iter() {
                if let Err(e) = self.sync(node).await {
                    first_err.get_or_insert(e);
                }
            }
            return first_err.map_or(Ok(None), Err);
        };
        let mut keys = q.take_ready();
        if self.resync.due() {
            keys = nodes
                .iter()
                .map(|n| format!("/{}", util::name(n)))
                .collect();
        }
        for key in keys {
            let Some(node) = nodes.get(&key) else {
                q.forget(&key);
                continue;
            };
            match self.sync(node).await {
                Ok(()) => q.forget(&key),
                Err(e) => {
                    let d = q.requeue_failed(key);
                    tracing::warn!(node = util::name(node), code = e.code, error = %e.message, retry_in = ?d, "staked-node sync failed");
                }
            }
        }
        let mut next = self.resync.remaining();
        if let Some(due) = q.next_due() {
            next = next.min(due.saturating_duration_since(tokio::time::Instant::now()));
        }
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: Value, annotations: Value) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels, "annotations": annotations}})
    }

    #[test]
    fn active_stake_marks_the_node() {
        let p = label_patch(
            &node(json!({}), json!({})),
            &NodeStake::Active {
                owner: "0xab".into(),
            },
        )
        .unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"labels": {STAKED_LABEL: "true"}, "annotations": {ADDRESS_ANNOTATION: "0xab"}}})
        );
        let done = node(
            json!({STAKED_LABEL: "true"}),
            json!({ADDRESS_ANNOTATION: "0xab"}),
        );
        assert_eq!(
            label_patch(
                &done,
                &NodeStake::Active {
                    owner: "0xab".into()
                }
            ),
            None
        );
        // A new owner of the name (or an address the node wrote itself) is replaced.
        let p = label_patch(
            &done,
            &NodeStake::Active {
                owner: "0xcd".into(),
            },
        )
        .unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"annotations": {ADDRESS_ANNOTATION: "0xcd"}}})
        );
    }

    #[test]
    fn inactive_or_vanished_stake_unmarks_only_nodes_it_marked() {
        let marked = node(
            json!({STAKED_LABEL: "true"}),
            json!({ADDRESS_ANNOTATION: "0xab"}),
        );
        let p = label_patch(
            &marked,
            &NodeStake::Inactive {
                owner: "0xab".into(),
            },
        )
        .unwrap();
        assert_eq!(p, json!({"metadata": {"labels": {STAKED_LABEL: null}}}));
        let p = label_patch(&marked, &NodeStake::Unknown).unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"labels": {STAKED_LABEL: null}, "annotations": {ADDRESS_ANNOTATION: null}}})
        );
        // An admin-managed node (never marked from the ledger) is left as it is.
        let admin = node(json!({STAKED_LABEL: "true"}), json!({}));
        assert_eq!(label_patch(&admin, &NodeStake::Unknown), None);
    }
}
