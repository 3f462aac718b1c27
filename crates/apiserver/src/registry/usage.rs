//! `daas.io/v1` Usage: what a user namespace spends on the ledger (escrow, the current period's
//! metered usage per node and its estimated cost, the last settlement, and the `Funded`
//! condition). One object named `current` per user namespace, written only by the master's
//! billing loop; read-only for everyone else: users read their own namespace's object through
//! their namespace role, and create/update/patch/delete by anyone but the controller manager's
//! identity is answered 405 MethodNotAllowed, as upstream does for read-only resources.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, Strategy, AGE, NAME};
use crate::resources::ResourceDef;
use crate::table::s;

pub const GROUP: &str = "daas.io";
/// The one object of each user namespace.
pub const NAME_CURRENT: &str = "current";
/// The identity allowed to write Usage objects (the master's internal client).
pub const WRITER: &str = "system:kube-controller-manager";

#[derive(Debug)]
pub struct UsageStrategy;

pub const RESOURCE: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "Usage",
    list_kind: "UsageList",
    plural: "usages",
    singular: "usage",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &UsageStrategy,
};

/// Is this the Usage resource (read-only but for [`WRITER`])?
pub fn is_usage(def: &ResourceDef) -> bool {
    def.group == GROUP && def.plural == RESOURCE.plural
}

/// May `user` write Usage objects? Only the master's own controller identity.
pub fn may_write(user: Option<&crate::User>) -> bool {
    user.is_some_and(|u| u.name == WRITER && crate::authz::is_master(u))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.daas.v1.Usage")]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "UsageStatus")]
    pub status: Option<UsageStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.daas.v1.UsageStatus")]
pub struct UsageStatus {
    /// The user's ledger address (0x...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "UsageAccount")]
    pub account: Option<UsageAccount>,
    /// The period being metered now (the next one to settle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub period: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current: Vec<UsageLine>,
    /// Estimated cost (MIST) of `current` at the ledger's prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub estimated_cost: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "LastSettlement")]
    pub last_settlement: Option<LastSettlement>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<UsageCondition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.daas.v1.UsageAccount")]
pub struct UsageAccount {
    /// Escrow balance in MIST.
    pub balance: u64,
    pub deposited: u64,
    pub spent: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.daas.v1.UsageLine")]
pub struct UsageLine {
    pub node: String,
    pub cpu_ms: u64,
    pub mem_mib_seconds: u64,
    pub pod_seconds: u64,
    /// Estimated cost (MIST) at the ledger's prices.
    pub estimated_cost: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.daas.v1.LastSettlement")]
pub struct LastSettlement {
    pub period: u64,
    /// MIST charged to this user in that settlement.
    pub charged: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Time")]
    pub time: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "io.daas.v1.UsageCondition")]
pub struct UsageCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Time")]
    pub last_transition_time: Option<Time>,
}

impl k8s_openapi::Resource for Usage {
    const API_VERSION: &'static str = "daas.io/v1";
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = "Usage";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "usages";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl Strategy for UsageStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<Usage>(obj)
    }

    fn verbs(&self) -> &'static [&'static str] {
        &["get", "list", "watch"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Balance", "", 0),
            ("Spent", "", 0),
            ("Estimated", "", 0),
            ("Funded", "", 0),
            ("Last-Period", "", 1),
            AGE,
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let st = &o["status"];
        let num = |v: &Value| v.as_u64().map(|n| json!(n)).unwrap_or(json!("<none>"));
        let funded = st["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Funded"))
            .map(|c| s(&c["status"]))
            .unwrap_or_else(|| "Unknown".into());
        vec![
            name,
            num(&st["account"]["balance"]),
            num(&st["account"]["spent"]),
            num(&st["estimatedCost"]),
            json!(funded),
            num(&st["lastSettlement"]["period"]),
            created,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_keeps_typed_status_and_prunes_unknown_fields() {
        let o = json!({"apiVersion": "daas.io/v1", "kind": "Usage",
            "metadata": {"name": "current", "namespace": "u-1"},
            "status": {"account": {"balance": 5, "deposited": 9, "spent": 4},
                "current": [{"node": "n1", "cpuMs": 1, "memMibSeconds": 2, "podSeconds": 3,
                    "estimatedCost": 7, "bogus": 1}],
                "conditions": [{"type": "Funded", "status": "True"}]},
            "spec": {"x": 1}});
        let d = UsageStrategy.decode(&o).unwrap();
        assert_eq!(d["status"]["account"]["balance"], 5);
        assert_eq!(d["status"]["current"][0]["estimatedCost"], 7);
        assert!(d["status"]["current"][0].get("bogus").is_none());
        assert!(d.get("spec").is_none());
        assert!(UsageStrategy
            .decode(&json!({"status": {"account": {"balance": "lots"}}}))
            .is_err());
    }

    #[test]
    fn only_the_controller_manager_writes() {
        let master = crate::User {
            name: WRITER.into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        };
        assert!(may_write(Some(&master)));
        let admin = crate::User {
            name: "k3s-daas-admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        };
        assert!(!may_write(Some(&admin)));
        let forged = crate::User {
            name: WRITER.into(),
            ..Default::default()
        };
        assert!(!may_write(Some(&forged)));
        assert!(!may_write(None));
    }

    #[test]
    fn openapi_schema_has_no_nullable_types() {
        // kubectl's OpenAPI v2 parser refuses definitions with several types (Option's
        // ["string", "null"]).
        fn walk(v: &Value, path: &str) {
            match v {
                Value::Object(m) => {
                    assert!(!m.get("type").is_some_and(Value::is_array), "{path}: {v}");
                    assert!(
                        !m.contains_key("anyOf") && !m.contains_key("oneOf"),
                        "{path}: {v}"
                    );
                    for (k, x) in m {
                        walk(x, &format!("{path}.{k}"));
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, path)),
                _ => {}
            }
        }
        for name in [
            "io.daas.v1.Usage",
            "io.daas.v1.UsageStatus",
            "io.daas.v1.UsageLine",
            "io.daas.v1.UsageCondition",
            "io.daas.v1.LastSettlement",
            "io.daas.v1.UsageAccount",
        ] {
            let d = crate::openapi::builtin_definition(name)
                .unwrap_or_else(|| panic!("no definition {name}"));
            walk(&d, name);
        }
    }

    #[test]
    fn namespace_owners_may_only_read_usage() {
        let rules = crate::rbac::user_namespace_rules();
        let naming: Vec<&Value> = rules
            .iter()
            .filter(|r| {
                r["resources"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|x| x == "usages"))
            })
            .collect();
        assert_eq!(naming.len(), 1, "{rules:?}");
        assert_eq!(naming[0]["apiGroups"], json!([GROUP]));
        assert_eq!(naming[0]["verbs"], json!(["get", "list", "watch"]));
    }

    #[test]
    fn table_cells_show_funding() {
        let o = json!({"metadata": {"name": "current", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"account": {"balance": 5, "spent": 4}, "estimatedCost": 3,
                "conditions": [{"type": "Funded", "status": "False"}]}});
        let c = UsageStrategy.cells(&o, Utc::now());
        assert_eq!(c[1], 5);
        assert_eq!(c[4], "False");
        assert_eq!(UsageStrategy.columns().len(), c.len());
    }
}
