//! PriorityClasses (pkg/registry/scheduling/priorityclass, pkg/apis/scheduling/validation, and the
//! `Priority` admission plugin's rule of a single default class).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::scheduling::v1 as scheduling;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, decode_kv, Ctx};
use crate::request::ResourceTarget;
use crate::resources::ResourceDef;
use crate::table::s;
use crate::typed::default_key;
use daas_store::KeyValue;

#[derive(Debug)]
pub struct PriorityClassStrategy;

/// The REST shape of PriorityClasses, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "scheduling.k8s.io",
    version: "v1",
    kind: "PriorityClass",
    list_kind: "PriorityClassList",
    plural: "priorityclasses",
    singular: "priorityclass",
    namespaced: false,
    short_names: &["pc"],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &PriorityClassStrategy,
};

/// Names starting with this prefix are reserved for the system classes.
pub const SYSTEM_PREFIX: &str = "system-";
/// The highest value a user-defined class may have.
pub const HIGHEST_USER_DEFINABLE: i64 = 1_000_000_000;

/// The system classes every cluster has: (name, value, description).
pub const SYSTEM_CLASSES: [(&str, i64, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

const PREEMPTION_POLICIES: [&str; 2] = ["PreemptLowerPriority", "Never"];

/// Upstream `IsKnownSystemPriorityClass`: `Err` says why a `system-` class is not one of them.
fn known_system_class(name: &str, value: i64, global_default: bool) -> Result<(), String> {
    match SYSTEM_CLASSES.iter().find(|(n, _, _)| *n == name) {
        None => Err(format!("{name} is not a known system priority class")),
        Some((n, v, _)) if *v != value => Err(format!("value of {n} PriorityClass must be {v}")),
        Some((n, _, _)) if global_default => {
            Err(format!("globalDefault of {n} PriorityClass must be false"))
        }
        Some(_) => Ok(()),
    }
}

fn forbidden(resource: &str, name: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!("{resource} \"{name}\" is forbidden: {why}")).with_details(
        json!({"name": name, "group": RESOURCE.group, "kind": resource_kind(resource)}),
    )
}

fn resource_kind(resource: &str) -> &str {
    resource.split('.').next().unwrap_or(resource)
}

#[async_trait]
impl Strategy for PriorityClassStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<scheduling::PriorityClass>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default_key(m, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let value = obj["value"].as_i64().unwrap_or(0);
        let global_default = obj["globalDefault"].as_bool().unwrap_or(false);
        if name.starts_with(SYSTEM_PREFIX) {
            if let Err(e) = known_system_class(name, value, global_default) {
                causes.push((
                    "metadata.name".into(),
                    format!("Forbidden: priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {e}"),
                ));
            }
        } else if value > HIGHEST_USER_DEFINABLE {
            causes.push((
                "value".into(),
                format!("Forbidden: maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"),
            ));
        }
        match obj["preemptionPolicy"].as_str() {
            None => {}
            Some("") => causes.push(("preemptionPolicy".into(), "Required value".into())),
            Some(p) if PREEMPTION_POLICIES.contains(&p) => {}
            Some(p) => causes.push((
                "preemptionPolicy".into(),
                format!(
                    "Unsupported value: {p:?}: supported values: \"PreemptLowerPriority\", \"Never\""
                ),
            )),
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["value"] != new["value"] {
            causes.push((
                "value".into(),
                "Forbidden: may not be changed in an update.".into(),
            ));
        }
        if old["preemptionPolicy"] != new["preemptionPolicy"] {
            causes.push((
                "preemptionPolicy".into(),
                format!(
                    "Invalid value: {:?}: field is immutable",
                    s(&new["preemptionPolicy"])
                ),
            ));
        }
    }

    /// Upstream's `Priority` admission plugin: only one class may be the global default.
    async fn admit(&self, ctx: &Ctx, old: Option<&Value>, new: &Value) -> ApiResult<()> {
        if new["globalDefault"].as_bool() != Some(true) {
            return Ok(());
        }
        let name = new["metadata"]["name"].as_str().unwrap_or("");
        let res = ctx.store.list(&RESOURCE.prefix(None)).await?;
        for kv in &res.items {
            let pc = decode_kv(kv)?;
            let other = pc["metadata"]["name"].as_str().unwrap_or("");
            if pc["globalDefault"].as_bool() == Some(true) && (old.is_none() || other != name) {
                return Err(forbidden(
                    &RESOURCE.qualified(),
                    name,
                    &format!(
                        "PriorityClass {other} is already marked as default. Only one default can exist"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The system classes cannot be deleted (upstream's REST `Delete`; its message names the
    /// class as if it were the resource).
    async fn before_delete(&self, _ctx: &Ctx, obj: &Value, kv: KeyValue) -> ApiResult<KeyValue> {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        if SYSTEM_CLASSES.iter().any(|(n, _, _)| *n == name) {
            return Err(forbidden(
                &format!("{name}.{}", RESOURCE.group),
                name,
                "this is a system priority class and cannot be deleted",
            ));
        }
        Ok(kv)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Value", "", 0),
            ("Global-Default", "", 0),
            AGE,
            ("PreemptionPolicy", "", 0),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![
            name,
            json!(o["value"].as_i64().unwrap_or(0)),
            json!(o["globalDefault"].as_bool().unwrap_or(false)),
            created,
            json!(s(&o["preemptionPolicy"])),
        ]
    }
}

/// Create the system classes that are missing (upstream's bootstrap post-start hook).
pub async fn ensure_system_classes(ctx: &Ctx) -> ApiResult<()> {
    let t = ResourceTarget {
        def: &RESOURCE,
        namespace: None,
        name: None,
        sub: None,
    };
    for (name, value, description) in SYSTEM_CLASSES {
        if ctx.store.get(&RESOURCE.key(None, name)).await?.is_some() {
            continue;
        }
        let mut pc = json!({"apiVersion": RESOURCE.api_version(), "kind": RESOURCE.kind,
            "metadata": {"name": name}, "value": value, "description": description});
        let (pc, _) = handlers::prepare_create(ctx, &t, &mut pc, &HashMap::new()).await?;
        match handlers::store_create(ctx, &RESOURCE, &pc).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes_of(obj: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        PriorityClassStrategy.validate(obj, &mut c);
        c
    }

    #[test]
    fn system_prefix_is_reserved() {
        let c = causes_of(&json!({"metadata":{"name":"system-mine"},"value":5}));
        assert_eq!(c.len(), 1);
        assert!(
            c[0].1
                .ends_with("system-mine is not a known system priority class"),
            "{c:?}"
        );
        let c = causes_of(&json!({"metadata":{"name":"system-node-critical"},"value":5}));
        assert!(c[0]
            .1
            .ends_with("value of system-node-critical PriorityClass must be 2000001000"));
        assert!(
            causes_of(&json!({"metadata":{"name":"system-node-critical"},"value":2000001000}))
                .is_empty()
        );
    }

    #[test]
    fn user_values_are_bounded_and_policies_known() {
        let c = causes_of(
            &json!({"metadata":{"name":"high"},"value":1_000_000_001i64,"preemptionPolicy":"Sometimes"}),
        );
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, vec!["value", "preemptionPolicy"]);
        let mut pc = json!({"metadata":{"name":"ok"},"value":1000});
        PriorityClassStrategy.defaults(&mut pc);
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    }

    #[test]
    fn value_and_policy_are_immutable() {
        let old = json!({"value":1,"preemptionPolicy":"Never"});
        let new = json!({"value":2,"preemptionPolicy":"PreemptLowerPriority"});
        let mut c = Vec::new();
        PriorityClassStrategy.validate_update(&old, &new, &mut c);
        assert_eq!(
            c[0],
            (
                "value".to_string(),
                "Forbidden: may not be changed in an update.".to_string()
            )
        );
        assert_eq!(
            c[1].1,
            "Invalid value: \"PreemptLowerPriority\": field is immutable"
        );
    }
}
