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

/// The stake holding `node` and its operator, with the operator's earnings in the market
/// (`null` when no live stake holds it; no `earnings` when the backend cannot read them).
pub async fn node_stake(ledger: &dyn Ledger, node: &str) -> Value {
    match ledger.node_stake(node).await {
        Ok(Some((owner, r))) => {
            let mut v = record_json(&owner.to_string(), &r);
            match ledger.earnings(owner).await {
                Ok(Some(e)) => {
                    v["earnings"] = json!({"balance": e.balance, "earned": e.earned,
                        "withdrawn": e.withdrawn, "uptime_ms": e.uptime_ms,
                        "last_period": e.last_period})
                }
                // Never paid yet: nothing earned.
                Ok(None) => {
                    v["earnings"] = json!({"balance": 0, "earned": 0, "withdrawn": 0,
                        "uptime_ms": 0, "last_period": 0})
                }
                Err(_) => {}
            }
            v
        }
        Ok(None) => Value::Null,
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// An event as the console shows it: `kind` (the Move event struct) and its fields, roles by
/// name, plus the transaction digest, time and sender.
pub fn event_json(r: &daas_ledger::EventRecord) -> Value {
    let (kind, mut fields) = match serde_json::to_value(&r.event) {
        Ok(Value::Object(m)) if m.len() == 1 => {
            let (k, v) = m.into_iter().next().unwrap_or_default();
            (k, v)
        }
        Ok(Value::String(k)) => (k, json!({})),
        _ => ("Unknown".to_string(), json!({})),
    };
    if !fields.is_object() {
        fields = json!({});
    }
    if let Some(role) = fields["role"].as_u64() {
        fields["role"] = json!(role_name(role as u8));
    }
    // The penalty of a slash is its amount.
    if let Some(p) = fields.get("penalty").cloned() {
        fields["amount"] = p;
    }
    if let Some(pk) = fields.get_mut("pk") {
        *pk = json!(pk
            .as_array()
            .map(|b| b
                .iter()
                .filter_map(Value::as_u64)
                .map(|x| format!("{x:02x}"))
                .collect::<String>())
            .unwrap_or_default());
    }
    fields["kind"] = json!(kind);
    fields["digest"] = json!(r.digest.to_string());
    fields["timestamp_ms"] = json!(r.timestamp_ms);
    fields["sender"] = json!(r.sender.to_string());
    fields
}

/// Events the console leaves out: the periodic state anchors would push every movement of money
/// out of the list.
fn shown(e: &contract::Event) -> bool {
    !matches!(e, contract::Event::StateAnchored { .. })
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

/// The ledger's recent movements, newest first: its event log where the backend has one
/// (stakes, slashes, deposits, charges, settlements, withdrawals), else what the stake records
/// tell (each stake and its slashes, by epoch).
pub async fn events(ledger: &dyn Ledger, limit: usize) -> Value {
    let treasury = pool(ledger).await.ok().flatten().map(|p| p.slashed);
    match ledger.recent_events(limit.saturating_mul(4)).await {
        Ok(recs) => {
            let items: Vec<Value> = recs
                .iter()
                .filter(|r| shown(&r.event))
                .take(limit)
                .map(event_json)
                .collect();
            json!({"items": items, "source": "events", "treasury": treasury})
        }
        Err(_) => stake_history(ledger, limit).await,
    }
}

/// The stake records as events: for every record its stake (role, amount, status) and, when
/// it was slashed, the slash (epoch, total, count), newest epoch first.
async fn stake_history(ledger: &dyn Ledger, limit: usize) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_with_names() {
        let r = daas_ledger::EventRecord {
            digest: sui_sdk_types::Digest::new([1; 32]),
            timestamp_ms: 7,
            sender: sui_sdk_types::Address::ZERO,
            event: contract::Event::Staked {
                staker: sui_sdk_types::Address::ZERO,
                role: contract::ROLE_NODE,
                node_id: "n1".into(),
                amount: 1000,
                total: 1000,
                generation: 1,
            },
        };
        let v = event_json(&r);
        assert_eq!(v["kind"], "Staked");
        assert_eq!(v["role"], "node");
        assert_eq!(v["node_id"], "n1");
        assert_eq!(v["amount"], 1000);
        assert_eq!(v["timestamp_ms"], 7);
        let r = daas_ledger::EventRecord {
            event: contract::Event::Slashed {
                staker: sui_sdk_types::Address::ZERO,
                penalty: 100,
                remaining: 900,
                reason: "dead".into(),
                epoch: 3,
            },
            ..r
        };
        let v = event_json(&r);
        assert_eq!(
            (v["kind"].as_str(), v["amount"].as_u64()),
            (Some("Slashed"), Some(100))
        );
        assert!(!shown(&contract::Event::StateAnchored {
            config_id: sui_sdk_types::Address::ZERO,
            revision: 1,
            timestamp_ms: 1
        }));
    }
}
