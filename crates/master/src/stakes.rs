//! The ledger as the master's [`StakeDirectory`]: which node names are held by an active node-tier
//! stake (the staked-node controller labels Nodes from it).

use std::sync::Arc;

use async_trait::async_trait;
use daas_controllers::stakednodes::{NodeStake, StakeDirectory, StakeLookupError};
use daas_ledger::contract::ROLE_NODE;
use daas_ledger::Ledger;

pub struct LedgerStakes(pub Arc<dyn Ledger>);

#[async_trait]
impl StakeDirectory for LedgerStakes {
    async fn node_stake(&self, node: &str) -> Result<NodeStake, StakeLookupError> {
        let found = self
            .0
            .node_stake(node)
            .await
            .map_err(|e| StakeLookupError {
                node: node.to_string(),
                message: e.to_string(),
            })?;
        Ok(match found {
            None => NodeStake::Unknown,
            Some((owner, rec)) if rec.role == ROLE_NODE && rec.is_active() => NodeStake::Active {
                owner: owner.to_string(),
            },
            Some((owner, _)) => NodeStake::Inactive {
                owner: owner.to_string(),
            },
        })
    }
}
