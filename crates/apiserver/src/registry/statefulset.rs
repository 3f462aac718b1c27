//! StatefulSets (pkg/registry/apps/statefulset/strategy.go, validation in
//! pkg/apis/apps/validation ValidateStatefulSet*).

use chrono::{DateTime, Utc};
use daas_apimachinery::selector::LabelSelector;
use k8s_openapi::api::apps::v1 as apps;
use serde_json::{json, Value};

use super::{
    decode_as, name_and_age, validate_pod_spec, workload_wide_cells, Cause, Column, PodSpecAt,
    Strategy, AGE, NAME,
};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::int;
use crate::typed::{default_key, default_pod_spec, obj_mut};

#[derive(Debug)]
pub struct StatefulSetStrategy;

/// The REST shape of StatefulSets, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "apps",
    version: "v1",
    kind: "StatefulSet",
    list_kind: "StatefulSetList",
    plural: "statefulsets",
    singular: "statefulset",
    namespaced: true,
    short_names: &["sts"],
    categories: &["all"],
    subresources: &[Status, Scale],
    has_spec: true,
    strategy: &StatefulSetStrategy,
};

/// The spec fields an update may change (upstream ValidateStatefulSetUpdate, v1.28-1.30).
const MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

const UPDATE_FORBIDDEN: &str = "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

/// The selector rules of a workload: set, not empty, parseable and matching the template labels.
/// `kind` names the workload in upstream's messages (`statefulset`, `daemonset`).
pub(crate) fn validate_selector_and_template(obj: &Value, kind: &str, causes: &mut Vec<Cause>) {
    let sel = &obj["spec"]["selector"];
    if sel.is_null() {
        causes.push(("spec.selector".into(), "Required value".into()));
        return;
    }
    let empty = |k: &str| {
        sel[k].is_null()
            || sel[k].as_object().is_some_and(|m| m.is_empty())
            || sel[k].as_array().is_some_and(|a| a.is_empty())
    };
    if empty("matchLabels") && empty("matchExpressions") {
        let msg = if kind == "statefulset" {
            "empty selector is not valid for statefulset."
        } else {
            "empty selector is invalid for daemonset"
        };
        causes.push((
            "spec.selector".into(),
            format!("Invalid value: {sel}: {msg}"),
        ));
        return;
    }
    match LabelSelector::from_json(sel) {
        Ok(s) => {
            let labels = &obj["spec"]["template"]["metadata"]["labels"];
            let map = daas_apimachinery::selector::labels_from_value(labels);
            if !s.matches(&map) {
                let shown = if labels.is_null() {
                    json!({})
                } else {
                    labels.clone()
                };
                causes.push((
                    "spec.template.metadata.labels".into(),
                    format!("Invalid value: {shown}: `selector` does not match template `labels`"),
                ));
            }
        }
        Err(e) => causes.push(("spec.selector".into(), format!("Invalid value: {e}"))),
    }
}

/// Template rules shared by StatefulSets and DaemonSets: restartPolicy Always, no
/// activeDeadlineSeconds, non-negative counters.
pub(crate) fn validate_template_rules(obj: &Value, kind: &str, causes: &mut Vec<Cause>) {
    let tpl = &obj["spec"]["template"]["spec"];
    let rp = tpl["restartPolicy"].as_str().unwrap_or("");
    if rp != "Always" {
        causes.push((
            "spec.template.spec.restartPolicy".into(),
            format!("Unsupported value: {rp:?}: supported values: \"Always\""),
        ));
    }
    if !tpl["activeDeadlineSeconds"].is_null() {
        causes.push((
            "spec.template.spec.activeDeadlineSeconds".into(),
            format!("Forbidden: activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    for f in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        if let Some(n) = obj["spec"][f].as_i64().filter(|n| *n < 0) {
            causes.push((
                format!("spec.{f}"),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
    }
}

/// The pod spec a StatefulSet's pods get, with a volume per claim template (so mounts of claim
/// templates validate as they will on the pods).
pub fn template_spec_with_claims(sts: &Value) -> Value {
    let mut spec = sts["spec"]["template"]["spec"].clone();
    let claims: Vec<String> = sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["metadata"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if claims.is_empty() || !spec.is_object() {
        return spec;
    }
    let mut vols: Vec<Value> = spec["volumes"].as_array().cloned().unwrap_or_default();
    for c in claims {
        if !vols.iter().any(|v| v["name"] == c.as_str()) {
            vols.push(json!({"name": c, "persistentVolumeClaim": {"claimName": c}}));
        }
    }
    spec["volumes"] = json!(vols);
    spec
}

impl Strategy for StatefulSetStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"]["template"]["spec"])?;
        decode_as::<apps::StatefulSet>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "replicas", json!(1));
        default_key(spec, "podManagementPolicy", json!("OrderedReady"));
        default_key(spec, "revisionHistoryLimit", json!(10));
        default_key(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
        if let Some(Value::Object(us)) = spec.get_mut("updateStrategy") {
            default_key(us, "type", json!("RollingUpdate"));
            if us.get("type") == Some(&json!("RollingUpdate")) {
                default_key(us, "rollingUpdate", json!({"partition": 0}));
                if let Some(Value::Object(ru)) = us.get_mut("rollingUpdate") {
                    default_key(ru, "partition", json!(0));
                }
            }
        }
        default_key(
            spec,
            "persistentVolumeClaimRetentionPolicy",
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
        );
        if let Some(Value::Object(p)) = spec.get_mut("persistentVolumeClaimRetentionPolicy") {
            default_key(p, "whenDeleted", json!("Retain"));
            default_key(p, "whenScaled", json!("Retain"));
        }
        if let Some(Value::Array(claims)) = spec.get_mut("volumeClaimTemplates") {
            for c in claims.iter_mut() {
                let cs = obj_mut(c, "spec");
                default_key(cs, "volumeMode", json!("Filesystem"));
                let st = obj_mut(c, "status");
                default_key(st, "phase", json!("Pending"));
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
        let spec = &obj["spec"];
        match spec["podManagementPolicy"].as_str().unwrap_or("") {
            "" => causes.push(("spec.podManagementPolicy".into(), "Required value".into())),
            "OrderedReady" | "Parallel" => {}
            other => causes.push((
                "spec.podManagementPolicy".into(),
                format!("Invalid value: {other:?}: must be 'OrderedReady' or 'Parallel'"),
            )),
        }
        let us = &spec["updateStrategy"];
        match us["type"].as_str().unwrap_or("") {
            "" => causes.push(("spec.updateStrategy".into(), "Required value".into())),
            "OnDelete" => {
                if !us["rollingUpdate"].is_null() {
                    causes.push((
                        "spec.updateStrategy.rollingUpdate".into(),
                        format!(
                            "Invalid value: {}: only allowed for updateStrategy 'RollingUpdate'",
                            us["rollingUpdate"]
                        ),
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(p) = us["rollingUpdate"]["partition"].as_i64().filter(|p| *p < 0) {
                    causes.push((
                        "spec.updateStrategy.rollingUpdate.partition".into(),
                        format!("Invalid value: {p}: must be greater than or equal to 0"),
                    ));
                }
            }
            _ => causes.push((
                "spec.updateStrategy".into(),
                format!("Invalid value: {us}: must be 'RollingUpdate' or 'OnDelete'"),
            )),
        }
        if let Some(s) = spec["ordinals"]["start"].as_i64().filter(|s| *s < 0) {
            causes.push((
                "spec.ordinals.start".into(),
                format!("Invalid value: {s}: must be greater than or equal to 0"),
            ));
        }
        for (f, v) in [
            (
                "whenDeleted",
                &spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
            ),
            (
                "whenScaled",
                &spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
            ),
        ] {
            if let Some(p) = v.as_str().filter(|p| *p != "Retain" && *p != "Delete") {
                causes.push((
                    format!("spec.persistentVolumeClaimRetentionPolicy.{f}"),
                    format!("Unsupported value: {p:?}: supported values: \"Retain\", \"Delete\""),
                ));
            }
        }
        validate_selector_and_template(obj, "statefulset", causes);
        validate_pod_spec(
            &template_spec_with_claims(obj),
            "spec.template.spec",
            causes,
        );
        validate_template_rules(obj, "StatefulSet", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        let strip = |v: &Value| {
            let mut s = v["spec"].clone();
            if let Some(m) = s.as_object_mut() {
                for f in MUTABLE {
                    m.remove(*f);
                }
            }
            s
        };
        if strip(old) != strip(new) {
            causes.push(("spec".into(), UPDATE_FORBIDDEN.into()));
        }
    }

    fn default_replicas(&self) -> i64 {
        1
    }

    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        Some(PodSpecAt::Template)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Ready", "", 0),
            AGE,
            ("Containers", "", 1),
            ("Images", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let [c, i, _] = workload_wide_cells(o);
        vec![
            name,
            json!(format!(
                "{}/{}",
                int(&o["status"]["readyReplicas"]),
                int(&o["spec"]["replicas"])
            )),
            created,
            c,
            i,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}}})
    }

    fn causes_of(o: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        StatefulSetStrategy.validate(o, &mut c);
        c
    }

    #[test]
    fn defaults_follow_upstream() {
        let mut o = sts();
        StatefulSetStrategy.defaults(&mut o);
        let s = &o["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(s["podManagementPolicy"], "OrderedReady");
        assert_eq!(s["revisionHistoryLimit"], 10);
        assert_eq!(
            s["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            s["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            s["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(s["template"]["spec"]["restartPolicy"], "Always");
        // A claim template mount validates; so does the whole defaulted object.
        assert!(causes_of(&o).is_empty(), "{:?}", causes_of(&o));
        // OnDelete gets no rollingUpdate.
        let mut od = sts();
        od["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        StatefulSetStrategy.defaults(&mut od);
        assert_eq!(od["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
    }

    #[test]
    fn validation_messages() {
        let mut o = sts();
        StatefulSetStrategy.defaults(&mut o);
        let mut bad = o.clone();
        bad["spec"]["podManagementPolicy"] = json!("Random");
        bad["spec"]["updateStrategy"] =
            json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}});
        bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        bad["spec"]["replicas"] = json!(-1);
        let c = causes_of(&bad);
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.podManagementPolicy",
                "spec.updateStrategy.rollingUpdate",
                "spec.template.metadata.labels",
                "spec.template.spec.restartPolicy",
                "spec.replicas"
            ],
            "{c:?}"
        );
        assert_eq!(
            c[0].1,
            "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"
        );
        assert!(c[2]
            .1
            .ends_with("`selector` does not match template `labels`"));
        let mut nosel = o.clone();
        nosel["spec"]["selector"] = Value::Null;
        assert_eq!(
            causes_of(&nosel),
            vec![("spec.selector".to_string(), "Required value".to_string())]
        );
        nosel["spec"]["selector"] = json!({});
        assert!(causes_of(&nosel)[0]
            .1
            .ends_with("empty selector is not valid for statefulset."));
        let mut part = o.clone();
        part["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(-2);
        assert_eq!(
            causes_of(&part)[0].0,
            "spec.updateStrategy.rollingUpdate.partition"
        );
    }

    #[test]
    fn only_some_spec_fields_may_change() {
        let mut old = sts();
        StatefulSetStrategy.defaults(&mut old);
        let mut ok = old.clone();
        ok["spec"]["replicas"] = json!(5);
        ok["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        ok["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        ok["spec"]["minReadySeconds"] = json!(3);
        let mut c = Vec::new();
        StatefulSetStrategy.validate_update(&old, &ok, &mut c);
        assert!(c.is_empty(), "{c:?}");
        for (field, v) in [
            ("serviceName", json!("other")),
            ("selector", json!({"matchLabels": {"app": "web", "x": "y"}})),
            ("podManagementPolicy", json!("Parallel")),
            ("volumeClaimTemplates", json!([])),
        ] {
            let mut n = old.clone();
            n["spec"][field] = v;
            let mut c = Vec::new();
            StatefulSetStrategy.validate_update(&old, &n, &mut c);
            assert_eq!(
                c,
                vec![("spec".to_string(), UPDATE_FORBIDDEN.to_string())],
                "{field}"
            );
        }
    }

    #[test]
    fn ready_column() {
        let o = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"readyReplicas": 2}});
        let c = StatefulSetStrategy.cells(&o, Utc::now());
        assert_eq!(c[1], "2/3");
        assert_eq!(c.len(), StatefulSetStrategy.columns().len());
    }
}
