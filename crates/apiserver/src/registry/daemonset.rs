//! DaemonSets (pkg/registry/apps/daemonset/strategy.go, validation in
//! pkg/apis/apps/validation ValidateDaemonSet*).

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1 as apps;
use serde_json::{json, Value};

use super::statefulset::{validate_selector_and_template, validate_template_rules};
use super::{
    decode_as, name_and_age, validate_pod_spec, workload_wide_cells, Cause, Column, PodSpecAt,
    Strategy, AGE, NAME,
};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{int, or_none};
use crate::typed::{default_key, default_pod_spec, obj_mut};

#[derive(Debug)]
pub struct DaemonSetStrategy;

/// The REST shape of DaemonSets, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    kind: "DaemonSet",
    list_kind: "DaemonSetList",
    plural: "daemonsets",
    singular: "daemonset",
    namespaced: true,
    short_names: &["ds"],
    categories: &["all"],
    subresources: &[Status],
    has_spec: true,
    strategy: &DaemonSetStrategy,
};

/// An int-or-percent value of a rolling update: (value, is percent), or None (with a cause) when
/// malformed or negative.
fn int_or_percent(path: &str, v: &Value, causes: &mut Vec<Cause>) -> Option<(i64, bool)> {
    match v {
        Value::Null => Some((0, false)),
        Value::Number(n) => match n.as_i64().filter(|n| *n >= 0) {
            Some(n) => Some((n, false)),
            None => {
                causes.push((
                    path.into(),
                    format!("Invalid value: {n}: must be greater than or equal to 0"),
                ));
                None
            }
        },
        Value::String(s) => {
            let n = s
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<i64>().ok());
            match n {
                Some(n) if n > 100 => {
                    causes.push((
                        path.into(),
                        format!("Invalid value: {s:?}: must not be greater than 100%"),
                    ));
                    None
                }
                Some(n) => Some((n, true)),
                None => {
                    causes.push((
                        path.into(),
                        format!("Invalid value: {s:?}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
                    ));
                    None
                }
            }
        }
        other => {
            causes.push((
                path.into(),
                format!("Invalid value: {other}: must be an integer or percentage"),
            ));
            None
        }
    }
}

/// Upstream ValidateDaemonSetUpdateStrategy / ValidateRollingUpdateDaemonSet.
fn validate_update_strategy(us: &Value, causes: &mut Vec<Cause>) {
    match us["type"].as_str().unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = &us["rollingUpdate"];
            if ru.is_null() {
                causes.push((
                    "spec.updateStrategy.rollingUpdate".into(),
                    "Required value".into(),
                ));
                return;
            }
            let base = "spec.updateStrategy.rollingUpdate";
            let unavailable = int_or_percent(
                &format!("{base}.maxUnavailable"),
                &ru["maxUnavailable"],
                causes,
            );
            let surge = int_or_percent(&format!("{base}.maxSurge"), &ru["maxSurge"], causes);
            if let (Some((u, _)), Some((s, _))) = (unavailable, surge) {
                if u != 0 && s != 0 {
                    causes.push((
                        format!("{base}.maxSurge"),
                        format!(
                            "Invalid value: {}: may not be set when maxUnavailable is non-zero",
                            ru["maxSurge"]
                        ),
                    ));
                } else if u == 0 && s == 0 {
                    causes.push((
                        format!("{base}.maxUnavailable"),
                        "Required value: cannot be 0 when maxSurge is 0".into(),
                    ));
                }
            }
        }
        other => causes.push((
            "spec.updateStrategy".into(),
            format!(
                "Unsupported value: {other:?}: supported values: \"OnDelete\", \"RollingUpdate\""
            ),
        )),
    }
}

impl Strategy for DaemonSetStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"]["template"]["spec"])?;
        decode_as::<apps::DaemonSet>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "revisionHistoryLimit", json!(10));
        default_key(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
        if let Some(Value::Object(us)) = spec.get_mut("updateStrategy") {
            default_key(us, "type", json!("RollingUpdate"));
            if us.get("type") == Some(&json!("RollingUpdate")) {
                default_key(us, "rollingUpdate", json!({}));
                if let Some(Value::Object(ru)) = us.get_mut("rollingUpdate") {
                    default_key(ru, "maxUnavailable", json!(1));
                    default_key(ru, "maxSurge", json!(0));
                }
            }
        }
        if let Some(Value::Object(tpl)) = spec.get_mut("template") {
            if let Some(Value::Object(ps)) = tpl.get_mut("spec") {
                default_pod_spec(ps);
            }
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_selector_and_template(obj, "daemonset", causes);
        validate_pod_spec(
            &obj["spec"]["template"]["spec"],
            "spec.template.spec",
            causes,
        );
        validate_template_rules(obj, "DaemonSet", causes);
        validate_update_strategy(&obj["spec"]["updateStrategy"], causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        super::validate_selector_immutable(old, new, causes);
    }

    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        Some(PodSpecAt::Template)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Desired", "", 0),
            ("Current", "", 0),
            ("Ready", "", 0),
            ("Up-to-date", "", 0),
            ("Available", "", 0),
            ("Node Selector", "", 0),
            AGE,
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let st = &o["status"];
        let [c, i, sel] = workload_wide_cells(o);
        let mut ns: Vec<String> = o["spec"]["template"]["spec"]["nodeSelector"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        ns.sort();
        vec![
            name,
            json!(int(&st["desiredNumberScheduled"])),
            json!(int(&st["currentNumberScheduled"])),
            json!(int(&st["numberReady"])),
            json!(int(&st["updatedNumberScheduled"])),
            json!(int(&st["numberAvailable"])),
            json!(or_none(ns.join(","))),
            created,
            c,
            i,
            sel,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds() -> Value {
        json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"nodeSelector": {"role": "edge"},
                "containers": [{"name": "c", "image": "i"}]}}}})
    }

    fn causes_of(o: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        DaemonSetStrategy.validate(o, &mut c);
        c
    }

    #[test]
    fn defaults_and_validation() {
        let mut o = ds();
        DaemonSetStrategy.defaults(&mut o);
        assert_eq!(o["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(
            o["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert!(causes_of(&o).is_empty(), "{:?}", causes_of(&o));
        let mut both = o.clone();
        both["spec"]["updateStrategy"]["rollingUpdate"] =
            json!({"maxUnavailable": 1, "maxSurge": "10%"});
        assert_eq!(
            causes_of(&both),
            vec![(
                "spec.updateStrategy.rollingUpdate.maxSurge".to_string(),
                "Invalid value: \"10%\": may not be set when maxUnavailable is non-zero"
                    .to_string()
            )]
        );
        let mut none = o.clone();
        none["spec"]["updateStrategy"]["rollingUpdate"] =
            json!({"maxUnavailable": 0, "maxSurge": 0});
        assert_eq!(
            causes_of(&none)[0].1,
            "Required value: cannot be 0 when maxSurge is 0"
        );
        let mut ty = o.clone();
        ty["spec"]["updateStrategy"] = json!({"type": "Blue"});
        assert_eq!(
            causes_of(&ty)[0].1,
            "Unsupported value: \"Blue\": supported values: \"OnDelete\", \"RollingUpdate\""
        );
        let mut mismatch = o.clone();
        mismatch["spec"]["template"]["metadata"]["labels"] = json!({"app": "x"});
        mismatch["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(3);
        let c = causes_of(&mismatch);
        assert_eq!(c[0].0, "spec.template.metadata.labels");
        assert_eq!(
            c[1].1,
            "Forbidden: activeDeadlineSeconds in DaemonSet is not Supported"
        );
    }

    #[test]
    fn selector_is_immutable() {
        let mut old = ds();
        DaemonSetStrategy.defaults(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        let mut c = Vec::new();
        DaemonSetStrategy.validate_update(&old, &new, &mut c);
        assert_eq!(c[0].0, "spec.selector");
        assert!(c[0].1.ends_with("field is immutable"));
    }

    #[test]
    fn columns_as_kubectl_shows() {
        let o = json!({"metadata": {"name": "agent"}, "spec": {"template": {"spec": {"nodeSelector": {"role": "edge"}, "containers": [{"name": "c", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}});
        let c = DaemonSetStrategy.cells(&o, Utc::now());
        let names: Vec<&str> = DaemonSetStrategy.columns().iter().map(|c| c.0).collect();
        assert_eq!(
            names[..8],
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age"
            ]
        );
        assert_eq!(
            c[1..7],
            [
                json!(2),
                json!(2),
                json!(1),
                json!(2),
                json!(1),
                json!("role=edge")
            ]
        );
    }
}
