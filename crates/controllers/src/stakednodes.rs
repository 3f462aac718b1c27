//! Staked nodes: the master, not the node, decides which Nodes may run workloads. For every Node it
//! asks the ledger (through a [`StakeDirectory`]) whether an active node-tier stake holds that
//! node name, and sets `k3s-daas.io/staked=true` plus `k3s-daas.io/sui-address=<owner>` — or removes
//! `staked` when the stake is no longer active. NodeRestriction refuses these labels from nodes
//! themselves, so a node cannot claim a stake it does not have.
//!
//! Nodes the ledger knows nothing about and that this controller never labelled (no
//! `sui-address` label: e.g. created by an admin) are left alone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Map, Value};

use crate::scheduler::STAKED_LABEL;
use crate::util::{self, CORE};
use crate::Controller;

/// Label naming the Sui address whose stake backs the node.
pub const ADDRESS_LABEL: &str = "k3s-daas.io/sui-address";

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
}

impl StakedNodeController {
    pub fn new(client: LocalClient, directory: Arc<dyn StakeDirectory>) -> Self {
        StakedNodeController { client, directory }
    }
}

/// The label changes (a merge patch of `metadata.labels`) that make `node` agree with `stake`, if any.
pub fn label_patch(node: &Value, stake: &NodeStake) -> Option<Value> {
    let labels = &node["metadata"]["labels"];
    let staked = labels[STAKED_LABEL].as_str();
    let address = labels[ADDRESS_LABEL].as_str();
    let mut patch = Map::new();
    match stake {
        NodeStake::Active { owner } => {
            if staked != Some("true") {
                patch.insert(STAKED_LABEL.into(), json!("true"));
            }
            if address != Some(owner.as_str()) {
                patch.insert(ADDRESS_LABEL.into(), json!(owner));
            }
        }
        NodeStake::Inactive { owner } => {
            if staked.is_some() {
                patch.insert(STAKED_LABEL.into(), Value::Null);
            }
            if address != Some(owner.as_str()) {
                patch.insert(ADDRESS_LABEL.into(), json!(owner));
            }
        }
        // Only a node this controller labelled loses its labels when its stake disappears.
        NodeStake::Unknown if address.is_some() => {
            patch.insert(ADDRESS_LABEL.into(), Value::Null);
            if staked.is_some() {
                patch.insert(STAKED_LABEL.into(), Value::Null);
            }
        }
        NodeStake::Unknown => {}
    }
    (!patch.is_empty()).then(|| json!({"metadata": {"labels": patch}}))
}

#[async_trait]
impl Controller for StakedNodeController {
    fn name(&self) -> &'static str {
        "staked-nodes"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{CORE}/nodes")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let mut first_err = None;
        for node in self.client.list(&format!("{CORE}/nodes")).await? {
            let name = util::name(&node).to_string();
            let stake = match self.directory.node_stake(&name).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "stake lookup failed");
                    first_err.get_or_insert(ApiError::new(
                        503,
                        "ServiceUnavailable",
                        e.to_string(),
                    ));
                    continue;
                }
            };
            if let Some(patch) = label_patch(&node, &stake) {
                tracing::info!(node = %name, ?stake, "updating staked-node labels from the ledger");
                if let Err(e) = self
                    .client
                    .merge_patch(&format!("{CORE}/nodes/{name}"), &patch)
                    .await
                {
                    if e.code != 404 {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: Value) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels}})
    }

    #[test]
    fn active_stake_labels_the_node() {
        let p = label_patch(
            &node(json!({})),
            &NodeStake::Active {
                owner: "0xab".into(),
            },
        )
        .unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"labels": {STAKED_LABEL: "true", ADDRESS_LABEL: "0xab"}}})
        );
        let done = node(json!({STAKED_LABEL: "true", ADDRESS_LABEL: "0xab"}));
        assert_eq!(
            label_patch(
                &done,
                &NodeStake::Active {
                    owner: "0xab".into()
                }
            ),
            None
        );
        // A new owner of the name replaces the address.
        let p = label_patch(
            &done,
            &NodeStake::Active {
                owner: "0xcd".into(),
            },
        )
        .unwrap();
        assert_eq!(p, json!({"metadata": {"labels": {ADDRESS_LABEL: "0xcd"}}}));
    }

    #[test]
    fn inactive_or_vanished_stake_unlabels_only_nodes_it_labelled() {
        let labelled = node(json!({STAKED_LABEL: "true", ADDRESS_LABEL: "0xab"}));
        let p = label_patch(
            &labelled,
            &NodeStake::Inactive {
                owner: "0xab".into(),
            },
        )
        .unwrap();
        assert_eq!(p, json!({"metadata": {"labels": {STAKED_LABEL: null}}}));
        let p = label_patch(&labelled, &NodeStake::Unknown).unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"labels": {STAKED_LABEL: null, ADDRESS_LABEL: null}}})
        );
        // An admin-managed node (never labelled from the ledger) is left as it is.
        let admin = node(json!({STAKED_LABEL: "true"}));
        assert_eq!(label_patch(&admin, &NodeStake::Unknown), None);
    }
}
