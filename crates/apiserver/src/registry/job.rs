//! batch/v1 Jobs (pkg/registry/batch/job/strategy.go, pkg/apis/batch/validation).
//!
//! Unless `spec.manualSelector` is true, the selector is generated on create: the template gets
//! the `controller-uid`/`batch.kubernetes.io/controller-uid` and `job-name`/
//! `batch.kubernetes.io/job-name` labels and the selector matches the controller uid. Validation
//! runs before the uid exists here, so a new Job's generated selector is checked on a copy made
//! with a placeholder uid (the same rules upstream applies after generating it).

use chrono::{DateTime, Utc};
use daas_apimachinery::selector::LabelSelector;
use k8s_openapi::api::batch::v1 as batch;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, workload_wide_cells, Cause, Column, PodSpecAt, Strategy};
use super::{AGE, NAME};
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{self, int};
use crate::typed::{default_key, default_pod_spec, obj_mut};

pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_JOB_NAME: &str = "job-name";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";

#[derive(Debug)]
pub struct JobStrategy;

/// The REST shape of Jobs, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "batch",
    version: "v1",
    kind: "Job",
    list_kind: "JobList",
    plural: "jobs",
    singular: "job",
    namespaced: true,
    short_names: &[],
    categories: &["all"],
    subresources: &[Status],
    has_spec: true,
    strategy: &JobStrategy,
};

/// Upstream `SetDefaults_Job` on a JobSpec (also applied to a CronJob's job template by the
/// Job's own create, not here).
pub(crate) fn default_job_spec(spec: &mut serde_json::Map<String, Value>) {
    let has_c = spec
        .get("completions")
        .map(|v| !v.is_null())
        .unwrap_or(false);
    let has_p = spec
        .get("parallelism")
        .map(|v| !v.is_null())
        .unwrap_or(false);
    if !has_c && !has_p {
        spec.insert("completions".into(), json!(1));
    }
    default_key(spec, "parallelism", json!(1));
    if spec
        .get("backoffLimitPerIndex")
        .map(|v| v.is_null())
        .unwrap_or(true)
    {
        default_key(spec, "backoffLimit", json!(6));
    } else {
        default_key(spec, "backoffLimit", json!(i32::MAX));
    }
    default_key(spec, "completionMode", json!("NonIndexed"));
    default_key(spec, "suspend", json!(false));
    let has_pfp = spec
        .get("podFailurePolicy")
        .map(|v| !v.is_null())
        .unwrap_or(false);
    default_key(
        spec,
        "podReplacementPolicy",
        json!(if has_pfp {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    if let Some(Value::Object(tpl)) = spec.get_mut("template") {
        if let Some(Value::Object(ps)) = tpl.get_mut("spec") {
            default_pod_spec(ps);
        }
    }
}

/// Upstream `generateSelector`: the template labels and selector that tie pods to this Job.
/// Labels the user set are kept (a conflict is then caught by validation).
pub fn generate_selector(obj: &mut Value, uid: &str) {
    if obj["spec"]["manualSelector"].as_bool() == Some(true) {
        return;
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    // Decoded objects hold objects (or nothing) at these paths; indexing makes missing ones.
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Some(m) = labels.as_object_mut() {
        for k in [LEGACY_JOB_NAME, JOB_NAME] {
            m.entry(k).or_insert_with(|| json!(name));
        }
        for k in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
            m.entry(k).or_insert_with(|| json!(uid));
        }
    }
    let sel = &mut obj["spec"]["selector"]["matchLabels"];
    if !sel.is_object() {
        *sel = json!({});
    }
    if let Some(m) = sel.as_object_mut() {
        m.entry(CONTROLLER_UID).or_insert_with(|| json!(uid));
    }
}

fn str_labels(v: &Value) -> std::collections::BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream `validateGeneratedSelector`.
fn validate_generated_selector(obj: &Value, causes: &mut Vec<Cause>) {
    if obj["spec"]["manualSelector"].as_bool() == Some(true) {
        return;
    }
    let uid = obj["metadata"]["uid"].as_str().unwrap_or("");
    let labels = &obj["spec"]["template"]["metadata"]["labels"];
    if labels.is_null() {
        return;
    }
    for k in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
        match labels[k].as_str() {
            None => causes.push((
                format!("spec.template.metadata.labels[{k}]"),
                "Required value: must be '{uid}'".replace("{uid}", uid),
            )),
            Some(v) if v != uid => causes.push((
                format!("spec.template.metadata.labels[{k}]"),
                format!("Invalid value: {v:?}: must be '{uid}'"),
            )),
            _ => {}
        }
    }
    let sel = &obj["spec"]["selector"];
    if sel.is_null() {
        return;
    }
    let want: std::collections::BTreeMap<String, String> =
        [(CONTROLLER_UID.to_string(), uid.to_string())].into();
    match LabelSelector::from_json(sel) {
        Ok(s) if s.matches(&want) => {}
        _ => causes.push((
            "spec.selector".into(),
            format!("Invalid value: {sel}: `selector` not auto-generated"),
        )),
    }
}

fn nonneg(spec: &Value, path: &str, field: &str, causes: &mut Vec<Cause>) {
    if let Some(n) = spec[field].as_i64().filter(|n| *n < 0) {
        causes.push((
            format!("{path}.{field}"),
            format!("Invalid value: {n}: must be greater than or equal to 0"),
        ));
    }
}

/// Upstream `validateJobSpec` (shared with a CronJob's `spec.jobTemplate.spec`).
pub(crate) fn validate_job_spec(
    spec: &Value,
    path: &str,
    causes: &mut Vec<Cause>,
    template_only: bool,
) {
    for f in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        nonneg(spec, path, f, causes);
    }
    let mode = spec["completionMode"].as_str().unwrap_or("NonIndexed");
    match mode {
        "NonIndexed" => {
            for f in ["backoffLimitPerIndex", "maxFailedIndexes"] {
                if !spec[f].is_null() {
                    causes.push((
                        format!("{path}.{f}"),
                        "Forbidden: requires indexed completion mode".into(),
                    ));
                }
            }
        }
        "Indexed" => {
            if spec["completions"].is_null() {
                causes.push((
                    format!("{path}.completions"),
                    "Required value: when completion mode is Indexed".into(),
                ));
            }
            if let Some(c) = spec["completions"].as_i64().filter(|c| *c > 100_000) {
                causes.push((
                    format!("{path}.completions"),
                    format!("Invalid value: {c}: must be less than or equal to 100000 when completion mode is Indexed"),
                ));
            }
        }
        other => causes.push((
            format!("{path}.completionMode"),
            format!("Unsupported value: {other:?}: supported values: \"NonIndexed\", \"Indexed\""),
        )),
    }
    if !template_only {
        let sel = &spec["selector"];
        if sel.is_null() {
            causes.push((format!("{path}.selector"), "Required value".into()));
        } else {
            match LabelSelector::from_json(sel) {
                Ok(s) => {
                    let labels = &spec["template"]["metadata"]["labels"];
                    if !s.matches(&str_labels(labels)) {
                        causes.push((
                            format!("{path}.template.metadata.labels"),
                            format!(
                                "Invalid value: {labels}: `selector` does not match template `labels`"
                            ),
                        ));
                    }
                }
                Err(e) => causes.push((format!("{path}.selector"), format!("Invalid value: {e}"))),
            }
        }
    }
    if let Some(p) = spec["podReplacementPolicy"].as_str() {
        if p != "TerminatingOrFailed" && p != "Failed" {
            causes.push((
                format!("{path}.podReplacementPolicy"),
                format!("Unsupported value: {p:?}: supported values: \"Failed\", \"TerminatingOrFailed\""),
            ));
        } else if p == "TerminatingOrFailed" && !spec["podFailurePolicy"].is_null() {
            causes.push((
                format!("{path}.podReplacementPolicy"),
                "Not supported: \"TerminatingOrFailed\": supported values: \"Failed\"".into(),
            ));
        }
    }
    validate_pod_failure_policy(spec, path, causes);
    let tpath = format!("{path}.template.spec");
    let tpl = &spec["template"]["spec"];
    super::validate_pod_spec(tpl, &tpath, causes);
    match tpl["restartPolicy"].as_str() {
        Some("OnFailure") | Some("Never") => {
            if !spec["podFailurePolicy"].is_null() && tpl["restartPolicy"] != "Never" {
                causes.push((
                    format!("{tpath}.restartPolicy"),
                    "Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified".into(),
                ));
            }
        }
        None => causes.push((
            format!("{tpath}.restartPolicy"),
            "Required value: valid values: \"OnFailure\", \"Never\"".into(),
        )),
        Some(rp) => causes.push((
            format!("{tpath}.restartPolicy"),
            format!("Unsupported value: {rp:?}: supported values: \"OnFailure\", \"Never\""),
        )),
    }
}

/// Upstream `validatePodFailurePolicy` (the rules the controller relies on).
fn validate_pod_failure_policy(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(rules) = spec["podFailurePolicy"]["rules"].as_array() else {
        return;
    };
    let container_names: Vec<&str> = spec["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            spec["template"]["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(|c| c["name"].as_str())
        .collect();
    for (i, r) in rules.iter().enumerate() {
        let rp = format!("{path}.podFailurePolicy.rules[{i}]");
        match r["action"].as_str() {
            Some("FailJob") | Some("Ignore") | Some("Count") | Some("FailIndex") => {}
            None => causes.push((format!("{rp}.action"), "Required value".into())),
            Some(a) => causes.push((
                format!("{rp}.action"),
                format!("Unsupported value: {a:?}: supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\""),
            )),
        }
        if r["action"] == "FailIndex" && spec["backoffLimitPerIndex"].is_null() {
            causes.push((
                format!("{rp}.action"),
                "Forbidden: requires the backoffLimitPerIndex to be set".into(),
            ));
        }
        let codes = &r["onExitCodes"];
        let conds = &r["onPodConditions"];
        match (codes.is_null(), conds.is_null()) {
            (true, true) => causes.push((
                rp.clone(),
                "Invalid value: specifying one of OnExitCodes and OnPodConditions is required"
                    .into(),
            )),
            (false, false) => causes.push((
                rp.clone(),
                "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"
                    .into(),
            )),
            _ => {}
        }
        if !codes.is_null() {
            let cp = format!("{rp}.onExitCodes");
            if let Some(c) = codes["containerName"].as_str() {
                if !container_names.contains(&c) {
                    causes.push((
                        format!("{cp}.containerName"),
                        format!("Invalid value: {c:?}: must be one of the container or initContainer names in the pod template"),
                    ));
                }
            }
            match codes["operator"].as_str() {
                Some("In") | Some("NotIn") => {}
                None => causes.push((format!("{cp}.operator"), "Required value".into())),
                Some(o) => causes.push((
                    format!("{cp}.operator"),
                    format!("Unsupported value: {o:?}: supported values: \"In\", \"NotIn\""),
                )),
            }
            let values: Vec<i64> = codes["values"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_i64()).collect())
                .unwrap_or_default();
            if values.is_empty() {
                causes.push((
                    format!("{cp}.values"),
                    "Invalid value: []: at least one value is required".into(),
                ));
            }
            if values.windows(2).any(|w| w[0] >= w[1]) {
                causes.push((
                    format!("{cp}.values"),
                    "Invalid value: must be ordered".into(),
                ));
            }
            if codes["operator"] == "In" && values.contains(&0) {
                causes.push((
                    format!("{cp}.values"),
                    "Invalid value: 0: must not be 0 for the In operator".into(),
                ));
            }
        }
        for (j, c) in conds.as_array().into_iter().flatten().enumerate() {
            let cp = format!("{rp}.onPodConditions[{j}]");
            if c["type"].as_str().unwrap_or("").is_empty() {
                causes.push((format!("{cp}.type"), "Required value".into()));
            }
            match c["status"].as_str() {
                Some("True") | Some("False") | Some("Unknown") => {}
                None => causes.push((format!("{cp}.status"), "Required value".into())),
                Some(s) => causes.push((
                    format!("{cp}.status"),
                    format!("Unsupported value: {s:?}: supported values: \"False\", \"True\", \"Unknown\""),
                )),
            }
        }
    }
}

/// The fields of a Job spec that may not change after create (upstream `ValidateJobSpecUpdate`).
pub(crate) fn validate_job_spec_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let (o, n) = (&old["spec"], &new["spec"]);
    for f in [
        "selector",
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "manualSelector",
    ] {
        if o[f] != n[f] {
            causes.push((
                format!("spec.{f}"),
                format!("Invalid value: {}: field is immutable", n[f]),
            ));
        }
    }
    // Indexed Jobs are elastic: completions may change together with parallelism.
    let elastic = n["completionMode"] == "Indexed"
        && n["completions"] == n["parallelism"]
        && o["completions"] == o["parallelism"];
    if o["completions"] != n["completions"] && !elastic {
        causes.push((
            "spec.completions".into(),
            format!("Invalid value: {}: field is immutable", n["completions"]),
        ));
    }
    // The template may change only on a suspended Job that never started (upstream allows
    // the scheduling directives then; the whole template is checked here).
    let never_started = old["status"]["startTime"].is_null();
    let suspended = o["suspend"].as_bool() == Some(true);
    if o["template"] != n["template"] {
        let scheduling_only = {
            let strip = |t: &Value| {
                let mut t = t.clone();
                if let Some(s) = t["spec"].as_object_mut() {
                    for k in ["nodeSelector", "affinity", "tolerations", "schedulingGates"] {
                        s.remove(k);
                    }
                }
                if let Some(m) = t["metadata"].as_object_mut() {
                    m.remove("labels");
                    m.remove("annotations");
                }
                t
            };
            strip(&o["template"]) == strip(&n["template"])
        };
        if !(suspended && never_started && scheduling_only) {
            causes.push((
                "spec.template".into(),
                format!("Invalid value: {}: field is immutable", n["template"]),
            ));
        }
    }
}

impl Strategy for JobStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"]["template"]["spec"])?;
        decode_as::<batch::Job>(obj)
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.successful"]
    }

    fn defaults(&self, obj: &mut Value) {
        // Upstream: a Job without labels takes its template's.
        let tpl_labels = obj["spec"]["template"]["metadata"]["labels"].clone();
        if tpl_labels
            .as_object()
            .map(|m| !m.is_empty())
            .unwrap_or(false)
            && obj["metadata"]["labels"]
                .as_object()
                .map(|m| m.is_empty())
                .unwrap_or(true)
        {
            obj_mut(obj, "metadata").insert("labels".into(), tpl_labels);
        }
        default_job_spec(obj_mut(obj, "spec"));
    }

    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
        generate_selector(obj, &uid);
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        if obj["metadata"]["uid"].as_str().unwrap_or("").is_empty() {
            // A new Job: check it as it will be once its selector is generated.
            let mut gen = obj.clone();
            gen["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
            let placeholder_taken = [LEGACY_CONTROLLER_UID, CONTROLLER_UID].iter().any(|k| {
                !obj["spec"]["template"]["metadata"]["labels"][*k].is_null()
                    || !obj["spec"]["selector"]["matchLabels"][*k].is_null()
            });
            if placeholder_taken && obj["spec"]["manualSelector"].as_bool() != Some(true) {
                causes.push((
                    "spec.selector".into(),
                    format!(
                        "Invalid value: {}: `selector` not auto-generated",
                        obj["spec"]["selector"]
                    ),
                ));
                return;
            }
            generate_selector(&mut gen, "00000000-0000-0000-0000-000000000000");
            validate_generated_selector(&gen, causes);
            validate_job_spec(&gen["spec"], "spec", causes, false);
        } else {
            validate_generated_selector(obj, causes);
            validate_job_spec(&obj["spec"], "spec", causes, false);
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        validate_job_spec_update(old, new, causes);
    }

    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        Some(PodSpecAt::Template)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Status", "", 0),
            ("Completions", "", 0),
            ("Duration", "", 0),
            AGE,
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let st = &o["status"];
        let spec = &o["spec"];
        let completions = match spec["completions"].as_i64() {
            Some(c) => format!("{}/{c}", int(&st["succeeded"])),
            None => match spec["parallelism"].as_i64().unwrap_or(0) {
                p if p > 1 => format!("{}/1 of {p}", int(&st["succeeded"])),
                _ => format!("{}/1", int(&st["succeeded"])),
            },
        };
        let time = |v: &Value| {
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let duration = match (time(&st["startTime"]), time(&st["completionTime"])) {
            (None, _) => String::new(),
            (Some(s), None) => table::human_duration((now - s).num_seconds()),
            (Some(s), Some(c)) => table::human_duration((c - s).num_seconds()),
        };
        let [c, i, sel] = workload_wide_cells(o);
        vec![
            name,
            json!(job_status(o)),
            json!(completions),
            json!(duration),
            created,
            c,
            i,
            sel,
        ]
    }
}

/// The STATUS column kubectl 1.30 prints for a Job.
fn job_status(o: &Value) -> &'static str {
    let has = |ty: &str| {
        o["status"]["conditions"]
            .as_array()
            .map(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
            .unwrap_or(false)
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if !o["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec_extra: Value) -> Value {
        let mut j = json!({"metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}});
        for (k, v) in spec_extra.as_object().into_iter().flatten() {
            j["spec"][k] = v.clone();
        }
        j
    }

    fn causes_of(j: &Value) -> Vec<Cause> {
        let mut j = j.clone();
        JobStrategy.defaults(&mut j);
        let mut c = Vec::new();
        JobStrategy.validate(&j, &mut c);
        c
    }

    #[test]
    fn defaults_as_upstream() {
        let mut j = job(json!({}));
        JobStrategy.defaults(&mut j);
        let s = &j["spec"];
        assert_eq!(s["completions"], 1);
        assert_eq!(s["parallelism"], 1);
        assert_eq!(s["backoffLimit"], 6);
        assert_eq!(s["completionMode"], "NonIndexed");
        assert_eq!(s["suspend"], false);
        assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
        // Parallelism alone leaves completions unset (a work queue).
        let mut j = job(json!({"parallelism": 3}));
        JobStrategy.defaults(&mut j);
        assert!(j["spec"]["completions"].is_null());
    }

    #[test]
    fn generated_selector_and_labels() {
        let mut j = job(json!({}));
        JobStrategy.defaults(&mut j);
        j["metadata"]["uid"] = json!("u-1");
        JobStrategy.prepare_create(&mut j);
        let l = &j["spec"]["template"]["metadata"]["labels"];
        assert_eq!(l[CONTROLLER_UID], "u-1");
        assert_eq!(l[LEGACY_CONTROLLER_UID], "u-1");
        assert_eq!(l[JOB_NAME], "pi");
        assert_eq!(l[LEGACY_JOB_NAME], "pi");
        assert_eq!(
            j["spec"]["selector"]["matchLabels"],
            json!({CONTROLLER_UID: "u-1"})
        );
        let mut c = Vec::new();
        JobStrategy.validate(&j, &mut c);
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn restart_policy_must_be_on_failure_or_never() {
        let mut j = job(json!({}));
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        let c = causes_of(&j);
        assert_eq!(
            c,
            vec![(
                "spec.template.spec.restartPolicy".to_string(),
                "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
                    .to_string()
            )]
        );
    }

    #[test]
    fn manual_selector_must_match_template() {
        let j = job(json!({"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}}));
        let c = causes_of(&j);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "spec.template.metadata.labels");
        assert!(c[0]
            .1
            .ends_with("`selector` does not match template `labels`"));
        let mut ok = j.clone();
        ok["spec"]["template"]["metadata"] = json!({"labels": {"a": "b"}});
        assert!(causes_of(&ok).is_empty());
        // Without manualSelector a chosen controller-uid is refused.
        let bad = job(json!({"selector": {"matchLabels": {CONTROLLER_UID: "x"}}}));
        assert!(causes_of(&bad)[0]
            .1
            .ends_with("`selector` not auto-generated"));
    }

    #[test]
    fn indexed_needs_completions_and_numbers_are_non_negative() {
        let c = causes_of(&job(
            json!({"completionMode": "Indexed", "parallelism": 2, "completions": null}),
        ));
        assert!(
            c.iter().any(|c| c.0 == "spec.completions"
                && c.1 == "Required value: when completion mode is Indexed"),
            "{c:?}"
        );
        let c = causes_of(&job(json!({"backoffLimit": -1})));
        assert_eq!(c[0].0, "spec.backoffLimit");
        let c = causes_of(&job(json!({"completionMode": "Odd"})));
        assert!(c[0].1.starts_with("Unsupported value: \"Odd\""));
    }

    #[test]
    fn pod_failure_policy_rules() {
        let c = causes_of(&job(json!({"podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0, 3]}},
            {"action": "Explode", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        ]}})));
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.podFailurePolicy.rules[0].onExitCodes.values",
                "spec.podFailurePolicy.rules[1].action"
            ]
        );
    }

    #[test]
    fn immutable_fields() {
        let mut old = job(json!({}));
        JobStrategy.defaults(&mut old);
        old["metadata"]["uid"] = json!("u");
        JobStrategy.prepare_create(&mut old);
        old["status"]["startTime"] = json!("2024-01-01T00:00:00Z");
        let mut new = old.clone();
        new["spec"]["completions"] = json!(5);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
        let mut c = Vec::new();
        JobStrategy.validate_update(&old, &new, &mut c);
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, vec!["spec.completions", "spec.template"]);
        assert!(c[1].1.ends_with("field is immutable"));
        // Parallelism and suspend may change.
        let mut new = old.clone();
        new["spec"]["parallelism"] = json!(4);
        new["spec"]["suspend"] = json!(true);
        let mut c = Vec::new();
        JobStrategy.validate_update(&old, &new, &mut c);
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn table_cells() {
        let j = json!({"metadata": {"name": "pi", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"completions": 3, "parallelism": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"succeeded": 3, "startTime": "2024-01-01T00:00:00Z", "completionTime": "2024-01-01T00:00:42Z",
                "conditions": [{"type": "Complete", "status": "True"}]}});
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = JobStrategy.cells(&j, now);
        assert_eq!(c[1], "Complete");
        assert_eq!(c[2], "3/3");
        assert_eq!(c[3], "42s");
        assert_eq!(c[4], "5m");
        assert_eq!(JobStrategy.columns().len(), c.len());
    }
}
