//! What the console reads from the ledger: a node's stake (and its operator's earnings once the
//! economy module is there), the ledger's recent movements, and whether this master's enclave
//! is the one registered on the ledger under the current configuration. Every read is
//! best-effort: a ledger error becomes an `error` field, never a failed page.

use daas_ledger::contract::{self, ContractObject, StakeRecord};
use daas_ledger::Ledger;
use serde_json::{json, Map, Value};

use crate::registration::Registration;

fn role_name(role: u8) -> &'static str {
    match role {
        contract::ROLE_USER => "user",
        contract::ROLE_NODE => "node",
        contract::ROLE_ADMIN => "admin",
        _ => "unknown",
    }
}

fn status_name(status: u8) -> &'static str {
    match status {
        contract::STATUS_ACTIVE => "Active",
        contract::STATUS_UNBONDING => "Unbonding",
        contract::STATUS_SLASHED => "Slashed",
        _ => "None",
    }
}

fn record_json(owner: &str, r: &StakeRecord) -> Value {
    json!({
        "operator": owner,
        "node_id": r.node_id,
        "role": role_name(r.role),
        "amount": r.amount,
        "status": status_name(r.status),
        "generation": r.generation,
        "staked_epoch": r.staked_epoch,
        "slashed_total": r.slashed_total,
        "slashed_epoch": r.slashed_epoch,
        "slash_count": r.slash_count,
    })
}

/// The stake holding `node` and its operator (`null` when no live stake holds it).
pub async fn node_stake(ledger: &dyn Ledger, node: &str) -> Value {
    match ledger.node_stake(node).await {
        Ok(Some((owner, r))) => record_json(&owner.to_string(), &r),
        Ok(None) => Value::Null,
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// The stake pool as the ledger holds it now.
async fn pool(ledger: &dyn Ledger) -> Result<Option<contract::StakingPool>, String> {
    let d = ledger.deployment().await.map_err(|e| e.to_string())?;
    let obj = ledger
        .get_object(d.pool.id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(obj.and_then(|o| match o.as_contract() {
        Some(ContractObject::StakingPool(p)) => Some(p.clone()),
        _ => None,
    }))
}

/// The ledger's movements, newest first: for every stake record its stake (role, amount,
/// status) and, when it was slashed, the slash (epoch, total, count), ordered by epoch.
pub async fn events(ledger: &dyn Ledger, limit: usize) -> Value {
    let pool = match pool(ledger).await {
        Ok(Some(p)) => p,
        Ok(None) => return json!({"items": [], "source": "stake-records"}),
        Err(e) => return json!({"items": [], "source": "stake-records", "error": e}),
    };
    let mut items: Vec<(u64, Value)> = Vec::new();
    for (addr, r) in &pool.stakes {
        let who = addr.to_string();
        items.push((
            r.staked_epoch,
            json!({"kind": "Staked", "epoch": r.staked_epoch, "address": who,
                "role": role_name(r.role), "node_id": r.node_id, "amount": r.amount,
                "status": status_name(r.status)}),
        ));
        if r.slash_count > 0 {
            items.push((
                r.slashed_epoch,
                json!({"kind": "Slashed", "epoch": r.slashed_epoch, "address": who,
                    "role": role_name(r.role), "node_id": r.node_id, "amount": r.slashed_total,
                    "count": r.slash_count, "status": status_name(r.status)}),
            ));
        }
    }
    // Newest first; slashes after the stake of the same epoch.
    items.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| b.1["kind"].as_str().cmp(&a.1["kind"].as_str()))
    });
    items.truncate(limit);
    json!({
        "items": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        "source": "stake-records",
        "treasury": pool.slashed,
        "total_staked": pool.total_staked,
    })
}

/// What the ledger says about this master's enclave: the Enclave object it registered, the key
/// it holds, the EnclaveConfig it was registered under and whether it is still current.
pub async fn verify_registration(
    ledger: &dyn Ledger,
    reg: &Registration,
    public_key: &str,
    pcrs: &Map<String, Value>,
) -> Value {
    let enclave = match ledger.get_object(reg.enclave.id).await {
        Ok(Some(o)) => match o.as_contract() {
            Some(ContractObject::Enclave(e)) => e.clone(),
            _ => {
                return json!({"registered": false, "reason": "the registered object is not an Enclave"})
            }
        },
        Ok(None) => {
            return json!({"registered": false, "reason": "the Enclave object is not on the ledger"})
        }
        Err(e) => return json!({"registered": false, "reason": e.to_string()}),
    };
    let config = match ledger.enclave_config(enclave.config_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return json!({"registered": true, "enclave_object_id": enclave.id.to_string(), "reason": "its EnclaveConfig is missing"})
        }
        Err(e) => {
            return json!({"registered": true, "enclave_object_id": enclave.id.to_string(), "reason": e.to_string()})
        }
    };
    let pcr = |i: &str| {
        pcrs.get(i)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let pcrs_match = hex::encode(&config.pcr0) == pcr("0")
        && hex::encode(&config.pcr1) == pcr("1")
        && hex::encode(&config.pcr2) == pcr("2");
    json!({
        "registered": true,
        "enclave_object_id": enclave.id.to_string(),
        "enclave_config_id": config.id.to_string(),
        "config_name": config.name,
        "config_version": config.version,
        "enclave_config_version": enclave.config_version,
        "current": contract::is_current(&enclave, &config),
        "public_key_matches": hex::encode(&enclave.pk) == public_key,
        "pcrs_match": pcrs_match,
        "anchored_revision": config.anchored_revision,
    })
}
