//! The `daas.io/v1` Usage object `current` of each user namespace, as billing writes it.

use daas_apiserver::registry::usage::{
    LastSettlement, Usage, UsageAccount, UsageCondition, UsageLine, UsageStatus, NAME_CURRENT,
};
use daas_apiserver::{ApiError, LocalClient};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use sui_sdk_types::Address;

use super::ledger::{AccountView, Prices};
use super::meter::MeteredLine;
use super::LastCharge;

pub fn path(ns: &str) -> String {
    format!("/apis/daas.io/v1/namespaces/{ns}/usages/{NAME_CURRENT}")
}

fn collection(ns: &str) -> String {
    format!("/apis/daas.io/v1/namespaces/{ns}/usages")
}

/// What the Usage status is made of.
#[derive(Debug, Clone)]
pub struct Status {
    pub user: Option<Address>,
    pub account: Option<AccountView>,
    pub prices: Prices,
    pub period: u64,
    pub current: Vec<MeteredLine>,
    pub last: Option<LastCharge>,
    pub funded: bool,
}

fn time(ms: u64) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::from_millisecond(i64::try_from(ms).ok()?)
        .ok()
        .map(Time)
}

/// The `Funded` condition: True, or False with `NoAccount` / `EscrowExhausted`.
pub fn funded_condition(s: &Status) -> (String, Option<String>, Option<String>) {
    match (s.funded, &s.account) {
        (true, _) => ("True".into(), Some("EscrowFunded".into()), Some("the escrow account has a balance".into())),
        (false, None) => (
            "False".into(),
            Some("NoAccount".into()),
            Some("no escrow account on the ledger: deposit with `daas deposit`; running workloads are scaled to zero after the grace period".into()),
        ),
        (false, Some(_)) => (
            "False".into(),
            Some("EscrowExhausted".into()),
            Some("the escrow balance is 0: deposit with `daas deposit`; running workloads are scaled to zero after the grace period".into()),
        ),
    }
}

/// The status object; `old` keeps the condition's lastTransitionTime while its status holds.
pub fn build(s: &Status, old: Option<&UsageStatus>, now_ms: u64) -> UsageStatus {
    let current: Vec<UsageLine> = s
        .current
        .iter()
        .map(|l| UsageLine {
            node: l.node.clone(),
            cpu_ms: l.units.cpu_ms,
            mem_mib_seconds: l.units.mem_mib_s,
            pod_seconds: l.units.pod_s,
            estimated_cost: s.prices.cost(&l.units).unwrap_or(u64::MAX),
        })
        .collect();
    let estimated = current
        .iter()
        .fold(0u64, |a, l| a.saturating_add(l.estimated_cost));
    let (status, reason, message) = funded_condition(s);
    let prev = old.and_then(|o| o.conditions.iter().find(|c| c.type_ == "Funded"));
    let ltt = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => time(now_ms),
    };
    UsageStatus {
        user: s.user.map(|a| a.to_string()),
        account: s.account.map(|a| UsageAccount {
            balance: a.balance,
            deposited: a.deposited,
            spent: a.spent,
        }),
        period: Some(s.period),
        current,
        estimated_cost: Some(estimated),
        last_settlement: s.last.map(|l| LastSettlement {
            period: l.period,
            charged: l.charged,
            time: time(l.at_ms),
        }),
        conditions: vec![UsageCondition {
            type_: "Funded".into(),
            status,
            reason,
            message,
            last_transition_time: ltt,
        }],
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UsageWriteError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("encoding usage: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<UsageWriteError> for super::PublishError {
    fn from(e: UsageWriteError) -> Self {
        match e {
            UsageWriteError::Api(a) => super::PublishError::Api(a),
            UsageWriteError::Encode(e) => {
                super::PublishError::Api(ApiError::internal(e.to_string()))
            }
        }
    }
}

/// Create or update the namespace's Usage `current` (unchanged status: no write).
pub async fn write(
    client: &LocalClient,
    ns: &str,
    s: &Status,
    now_ms: u64,
) -> Result<(), UsageWriteError> {
    let existing = client.get_opt(&path(ns)).await?;
    let old: Option<Usage> = existing
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let status = build(s, old.as_ref().and_then(|o| o.status.as_ref()), now_ms);
    match old {
        Some(mut o) => {
            if o.status.as_ref() == Some(&status) {
                return Ok(());
            }
            o.status = Some(status);
            client.update(&path(ns), &serde_json::to_value(&o)?).await?;
        }
        None => {
            let o = Usage {
                api_version: Some("daas.io/v1".into()),
                kind: Some("Usage".into()),
                metadata: ObjectMeta {
                    name: Some(NAME_CURRENT.into()),
                    namespace: Some(ns.into()),
                    ..Default::default()
                },
                status: Some(status),
            };
            match client
                .create(&collection(ns), &serde_json::to_value(&o)?)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::meter::Units;

    fn status(funded: bool, account: Option<AccountView>) -> Status {
        Status {
            user: None,
            account,
            prices: Prices::default(),
            period: 4,
            current: vec![MeteredLine {
                namespace: "u-0000000000000001".into(),
                node: "n1".into(),
                units: Units {
                    cpu_ms: 1500,
                    mem_mib_s: 10,
                    pod_s: 20,
                },
            }],
            last: None,
            funded,
        }
    }

    #[test]
    fn conditions_and_estimates() {
        let s = build(&status(false, None), None, 1_000);
        assert_eq!(s.conditions[0].status, "False");
        assert_eq!(s.conditions[0].reason.as_deref(), Some("NoAccount"));
        // (1500*1000 + 10*1 + 20*1000) / 1000 = 1520.
        assert_eq!(s.current[0].estimated_cost, 1520);
        assert_eq!(s.estimated_cost, Some(1520));
        let dry = build(
            &status(false, Some(AccountView::default())),
            Some(&s),
            2_000,
        );
        assert_eq!(dry.conditions[0].reason.as_deref(), Some("EscrowExhausted"));
        // Still False: the transition time stays.
        assert_eq!(
            dry.conditions[0].last_transition_time,
            s.conditions[0].last_transition_time
        );
        let ok = build(
            &status(
                true,
                Some(AccountView {
                    balance: 5,
                    ..Default::default()
                }),
            ),
            Some(&dry),
            3_000,
        );
        assert_eq!(ok.conditions[0].status, "True");
        assert_ne!(
            ok.conditions[0].last_transition_time,
            dry.conditions[0].last_transition_time
        );
        assert_eq!(ok.account.as_ref().map(|a| a.balance), Some(5));
    }
}
