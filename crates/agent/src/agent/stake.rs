//! The node's stake and seal token on the ledger.

use daas_ledger::tx;
use daas_ledger::wallet::Wallet;

use super::AgentError;
use crate::config::AgentConfig;

/// The ledger's role number of a worker node stake.
pub const ROLE_NODE: u8 = 1;

/// Stake (or top up / re-stake) so the node has an Active node stake of at least `amount`.
pub async fn ensure_stake(w: &Wallet, cfg: &AgentConfig) -> Result<(), AgentError> {
    let rec = w.ledger.stake(w.address()).await?;
    match rec {
        Some(r)
            if r.is_active()
                && r.role == ROLE_NODE
                && r.node_id == cfg.node_id
                && r.amount >= cfg.stake_amount =>
        {
            tracing::info!(amount = r.amount, "stake already active");
            return Ok(());
        }
        Some(r) if r.is_active() && (r.role != ROLE_NODE || r.node_id != cfg.node_id) => {
            return Err(AgentError::Other(format!(
                "{} already stakes as role {} for node {:?}; unstake it first",
                w.address(),
                r.role,
                r.node_id
            )))
        }
        _ => {}
    }
    let add = match &rec {
        Some(r) if r.is_active() => cfg.stake_amount - r.amount,
        _ => cfg.stake_amount,
    };
    let budget = tx::DEFAULT_GAS_BUDGET;
    w.execute_with_budget(budget, |ctx, d| {
        tx::stake(ctx, d, add, ROLE_NODE, &cfg.node_id)
    })
    .await
    .map_err(|e| match e.abort() {
        Some((m, 1)) if m == "staking" => AgentError::Other(format!(
            "the ledger refused the stake of {} MIST: below the minimum node stake",
            cfg.stake_amount
        )),
        _ => AgentError::Wallet(e),
    })?;
    tracing::info!(amount = cfg.stake_amount, node = %cfg.node_id, "staked");
    Ok(())
}

/// A valid node seal token of ours, issuing one if needed.
pub async fn ensure_seal_token(w: &Wallet) -> Result<sui_sdk_types::Address, AgentError> {
    for t in w.ledger.seal_tokens_of(w.address()).await? {
        if t.owner == w.address() && t.role == ROLE_NODE && w.ledger.seal_token_valid(t.id).await? {
            return Ok(t.id);
        }
    }
    let eff = w.execute(tx::issue_seal_token).await?;
    for (r, _) in &eff.created {
        let id = *r.object_id();
        if let Some(t) = w.ledger.seal_token(id).await? {
            if t.owner == w.address() {
                tracing::info!(token = %id, expiry_epoch = t.expiry_epoch, "seal token issued");
                return Ok(id);
            }
        }
    }
    Err(AgentError::Other(
        "issue_seal_token created no seal token".into(),
    ))
}
