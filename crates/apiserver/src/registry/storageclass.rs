//! StorageClasses (pkg/registry/storage/storageclass, pkg/apis/storage/validation), the built-in
//! `local-path` class, and the `DefaultStorageClass` admission plugin's choice of the default.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use daas_apimachinery::selector::validate_label_key;
use k8s_openapi::api::storage::v1 as storage;
use serde_json::{json, Value};

use super::runtimeclass::label_reason;
use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::error::ApiResult;
use crate::handlers::{self, Ctx};
use crate::request::ResourceTarget;
use crate::resources::ResourceDef;
use crate::table::s;
use crate::typed::default_key;

#[derive(Debug)]
pub struct StorageClassStrategy;

/// The REST shape of StorageClasses, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "storage.k8s.io",
    version: "v1",
    kind: "StorageClass",
    list_kind: "StorageClassList",
    plural: "storageclasses",
    singular: "storageclass",
    namespaced: false,
    short_names: &["sc"],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &StorageClassStrategy,
};

/// The annotation marking the default class (and its beta spelling, still honoured upstream).
pub const DEFAULT_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// The built-in class, served by the local-path provisioner of `daas-controllers`.
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// The provisioner name of the built-in class.
pub const LOCAL_PATH_PROVISIONER: &str = "k3s-daas.io/local-path";

const RECLAIM_POLICIES: [&str; 2] = ["Delete", "Retain"];
const BINDING_MODES: [&str; 2] = ["Immediate", "WaitForFirstConsumer"];
/// Upstream's limit on the total size of a class's parameters (keys and values).
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

fn supported(list: &[&str]) -> String {
    list.iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Is `sc` marked as the default class?
pub fn is_default(sc: &Value) -> bool {
    let a = &sc["metadata"]["annotations"];
    a[DEFAULT_ANNOTATION].as_str() == Some("true")
        || a[BETA_DEFAULT_ANNOTATION].as_str() == Some("true")
}

impl Strategy for StorageClassStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<storage::StorageClass>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            default_key(m, "reclaimPolicy", json!("Delete"));
            default_key(m, "volumeBindingMode", json!("Immediate"));
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let prov = obj["provisioner"].as_str().unwrap_or("");
        if prov.is_empty() {
            causes.push(("provisioner".into(), "Required value".into()));
        } else if let Err(e) = validate_label_key(&prov.to_lowercase()) {
            causes.push((
                "provisioner".into(),
                format!("Invalid value: {prov:?}: {}", label_reason(&e)),
            ));
        }
        if let Some(params) = obj["parameters"].as_object() {
            let mut size = 0;
            for (k, v) in params {
                if k.is_empty() {
                    causes.push(("parameters".into(), "Required value".into()));
                }
                size += k.len() + s(v).len();
            }
            if size > MAX_PARAMETERS_SIZE {
                causes.push((
                    "parameters".into(),
                    format!("Too long: may not be more than {MAX_PARAMETERS_SIZE} bytes"),
                ));
            }
        }
        let policy = s(&obj["reclaimPolicy"]);
        if !RECLAIM_POLICIES.contains(&policy.as_str()) {
            causes.push((
                "reclaimPolicy".into(),
                format!(
                    "Unsupported value: {policy:?}: supported values: {}",
                    supported(&RECLAIM_POLICIES)
                ),
            ));
        }
        match obj["volumeBindingMode"].as_str() {
            None => causes.push(("volumeBindingMode".into(), "Required value".into())),
            Some(m) if !BINDING_MODES.contains(&m) => causes.push((
                "volumeBindingMode".into(),
                format!(
                    "Unsupported value: {m:?}: supported values: {}",
                    supported(&BINDING_MODES)
                ),
            )),
            Some(_) => {}
        }
        if let Some(terms) = obj["allowedTopologies"].as_array() {
            for (i, t) in terms.iter().enumerate() {
                let exprs = t["matchLabelExpressions"].as_array();
                if exprs.is_none_or(|e| e.is_empty()) {
                    causes.push((
                        format!("allowedTopologies[{i}].matchLabelExpressions"),
                        "Required value: must have at least one label expression".into(),
                    ));
                }
                for (j, e) in exprs.into_iter().flatten().enumerate() {
                    let p = format!("allowedTopologies[{i}].matchLabelExpressions[{j}]");
                    if e["values"].as_array().is_none_or(|v| v.is_empty()) {
                        causes.push((
                            format!("{p}.values"),
                            "Required value: must specify as least one value".into(),
                        ));
                    }
                }
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        let params = |o: &Value| o["parameters"].as_object().cloned().unwrap_or_default();
        if params(old) != params(new) {
            causes.push((
                "parameters".into(),
                "Forbidden: updates to parameters are forbidden.".into(),
            ));
        }
        if old["provisioner"] != new["provisioner"] {
            causes.push((
                "provisioner".into(),
                "Forbidden: updates to provisioner are forbidden.".into(),
            ));
        }
        if old["reclaimPolicy"] != new["reclaimPolicy"] {
            causes.push((
                "reclaimPolicy".into(),
                "Forbidden: updates to reclaimPolicy are forbidden.".into(),
            ));
        }
        if old["volumeBindingMode"] != new["volumeBindingMode"] {
            causes.push((
                "volumeBindingMode".into(),
                format!(
                    "Invalid value: {:?}: field is immutable",
                    s(&new["volumeBindingMode"])
                ),
            ));
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Provisioner", "", 0),
            ("ReclaimPolicy", "", 0),
            ("VolumeBindingMode", "", 0),
            ("AllowVolumeExpansion", "", 0),
            AGE,
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        // kubectl shows the default class as "<name> (default)".
        let name = if is_default(o) {
            json!(format!("{} (default)", s(&o["metadata"]["name"])))
        } else {
            name
        };
        vec![
            name,
            json!(s(&o["provisioner"])),
            json!(s(&o["reclaimPolicy"])),
            json!(s(&o["volumeBindingMode"])),
            json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false)),
            created,
        ]
    }
}

/// The default class claims without a class get (upstream `GetDefaultClass`): of several
/// defaults, the newest (then the first by name).
pub async fn default_class(ctx: &Ctx) -> ApiResult<Option<String>> {
    let all = handlers::Filter {
        labels: None,
        fields: None,
    };
    let (items, _) = handlers::list_objects(ctx, &RESOURCE, None, &all).await?;
    let mut defaults: Vec<&Value> = items.iter().filter(|sc| is_default(sc)).collect();
    defaults.sort_by(|a, b| {
        s(&b["metadata"]["creationTimestamp"])
            .cmp(&s(&a["metadata"]["creationTimestamp"]))
            .then_with(|| s(&a["metadata"]["name"]).cmp(&s(&b["metadata"]["name"])))
    });
    Ok(defaults.first().map(|sc| s(&sc["metadata"]["name"])))
}

/// The built-in `local-path` class (default, WaitForFirstConsumer, reclaim Delete), as K3s ships
/// its local-path provisioner's.
pub fn local_path_class() -> Value {
    json!({"apiVersion": RESOURCE.api_version(), "kind": RESOURCE.kind,
        "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {DEFAULT_ANNOTATION: "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"})
}

/// Create the built-in class when it is missing (an admin may delete or replace it later only
/// by deleting it; it is not recreated over an existing object).
pub async fn ensure_local_path_class(ctx: &Ctx) -> ApiResult<()> {
    if ctx
        .store
        .get(&RESOURCE.key(None, LOCAL_PATH_CLASS))
        .await?
        .is_some()
    {
        return Ok(());
    }
    let t = ResourceTarget {
        def: &RESOURCE,
        namespace: None,
        name: None,
        sub: None,
    };
    let mut sc = local_path_class();
    let (sc, _) = handlers::prepare_create(ctx, &t, &mut sc, &HashMap::new()).await?;
    match handlers::store_create(ctx, &RESOURCE, &sc).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes_of(obj: &Value) -> Vec<Cause> {
        let mut o = obj.clone();
        StorageClassStrategy.defaults(&mut o);
        let mut c = Vec::new();
        StorageClassStrategy.validate(&o, &mut c);
        c
    }

    #[test]
    fn defaults_and_required_fields() {
        let mut sc = json!({"metadata":{"name":"fast"},"provisioner":"example.com/x"});
        StorageClassStrategy.defaults(&mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
        assert!(causes_of(&sc).is_empty());
        let c = causes_of(&json!({"reclaimPolicy":"Recycle","volumeBindingMode":"Later"}));
        assert_eq!(
            c,
            vec![
                ("provisioner".to_string(), "Required value".to_string()),
                (
                    "reclaimPolicy".to_string(),
                    "Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""
                        .to_string()
                ),
                (
                    "volumeBindingMode".to_string(),
                    "Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\""
                        .to_string()
                ),
            ]
        );
        let c = causes_of(&json!({"provisioner":"bad provisioner!"}));
        assert_eq!(c.len(), 1);
        assert!(c[0].1.starts_with("Invalid value: \"bad provisioner!\""));
    }

    #[test]
    fn parameters_provisioner_policy_and_mode_are_immutable() {
        let old = local_path_class();
        let mut new = old.clone();
        new["parameters"] = json!({"a":"b"});
        new["provisioner"] = json!("other.io/p");
        new["reclaimPolicy"] = json!("Retain");
        new["volumeBindingMode"] = json!("Immediate");
        new["allowVolumeExpansion"] = json!(true);
        let mut c = Vec::new();
        StorageClassStrategy.validate_update(&old, &new, &mut c);
        let msgs: Vec<&str> = c.iter().map(|c| c.1.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "Forbidden: updates to parameters are forbidden.",
                "Forbidden: updates to provisioner are forbidden.",
                "Forbidden: updates to reclaimPolicy are forbidden.",
                "Invalid value: \"Immediate\": field is immutable",
            ]
        );
    }

    #[test]
    fn table_marks_the_default() {
        let c = StorageClassStrategy.cells(&local_path_class(), Utc::now());
        assert_eq!(c[0], "local-path (default)");
        assert_eq!(c[1], LOCAL_PATH_PROVISIONER);
        assert_eq!(c[3], "WaitForFirstConsumer");
        assert_eq!(c[4], false);
    }
}
