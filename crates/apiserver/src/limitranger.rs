//! The LimitRanger admission (upstream plugin/pkg/admission/limitranger), on Pod create: the
//! Container items of the namespace's LimitRanges fill in missing requests and limits (recorded in
//! the `kubernetes.io/limit-ranger` annotation), then the min, max and maxLimitRequestRatio of
//! Container and Pod items are enforced; a violation is 403 Forbidden.

use std::collections::BTreeMap;

use daas_apimachinery::quantity::{format_milli, format_of, value_milli, Format};
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, Ctx, Filter};
use crate::registry::limitrange::{resource_map, CONTAINER, POD};
use crate::resources;
use crate::table::s;

/// The annotation naming what the plugin set.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Apply the namespace's LimitRanges to a new pod: defaults, then limits.
pub async fn admit_pod(ctx: &Ctx, ns: &str, pod: &mut Value) -> ApiResult<()> {
    let filter = Filter {
        labels: None,
        fields: None,
    };
    let (ranges, _) =
        handlers::list_objects(ctx, &resources::LIMIT_RANGES, Some(ns), &filter).await?;
    if ranges.is_empty() {
        return Ok(());
    }
    for lr in &ranges {
        apply_defaults(lr, pod);
    }
    for lr in &ranges {
        let errs = violations(lr, pod);
        if !errs.is_empty() {
            let name = s(&pod["metadata"]["name"]);
            let why = if errs.len() == 1 {
                errs[0].clone()
            } else {
                format!("[{}]", errs.join(", "))
            };
            return Err(
                ApiError::forbidden(format!("pods \"{name}\" is forbidden: {why}"))
                    .with_details(serde_json::json!({"name": name, "group": "", "kind": "pods"})),
            );
        }
    }
    Ok(())
}

/// Upstream `defaultContainerResourceRequirements`: (requests, limits) from Container items.
fn container_defaults(lr: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let mut req = Map::new();
    let mut lim = Map::new();
    for item in lr["spec"]["limits"].as_array().into_iter().flatten() {
        if item["type"].as_str() == Some(CONTAINER) {
            if let Some(m) = resource_map(item, "defaultRequest") {
                req.extend(m.clone());
            }
            if let Some(m) = resource_map(item, "default") {
                lim.extend(m.clone());
            }
        }
    }
    (req, lim)
}

/// Fill the missing requests and limits of every container from one LimitRange's defaults.
pub fn apply_defaults(lr: &Value, pod: &mut Value) {
    let (req, lim) = container_defaults(lr);
    if req.is_empty() && lim.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (field, prefix) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(cs) = pod["spec"][field].as_array_mut() else {
            continue;
        };
        for c in cs {
            let name = s(&c["name"]);
            let Some(cm) = c.as_object_mut() else {
                continue;
            };
            let res = cm
                .entry("resources")
                .or_insert_with(|| Value::Object(Map::new()));
            if !res.is_object() {
                *res = Value::Object(Map::new());
            }
            let set_lim = fill(res, "limits", &lim);
            let set_req = fill(res, "requests", &req);
            if !set_req.is_empty() {
                notes.push(format!(
                    "{} request for {prefix} {name}",
                    set_req.join(", ")
                ));
            }
            if !set_lim.is_empty() {
                notes.push(format!("{} limit for {prefix} {name}", set_lim.join(", ")));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    let md = &mut pod["metadata"];
    if !md["annotations"].is_object() {
        md["annotations"] = Value::Object(Map::new());
    }
    md["annotations"][ANNOTATION] =
        Value::String(format!("LimitRanger plugin set: {}", notes.join("; ")));
}

/// Set the entries of `defaults` missing from `res[field]`; the names set, sorted.
fn fill(res: &mut Value, field: &str, defaults: &Map<String, Value>) -> Vec<String> {
    let mut set = Vec::new();
    if defaults.is_empty() {
        return set;
    }
    if !res[field].is_object() {
        res[field] = Value::Object(Map::new());
    }
    if let Some(m) = res[field].as_object_mut() {
        for (k, v) in defaults {
            if !m.contains_key(k) {
                m.insert(k.clone(), v.clone());
                set.push(k.clone());
            }
        }
    }
    set.sort();
    set
}

/// A resource list: name → (milli-value, canonical text as upstream's `Quantity.String()`).
type Observed = BTreeMap<String, (i128, String)>;

/// The format of a JSON quantity (a JSON number is decimal).
fn format_of_value(v: &Value) -> Format {
    v.as_str().and_then(format_of).unwrap_or(Format::DecimalSi)
}

fn observed(list: &Value) -> Observed {
    list.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            value_milli(v).map(|m| (k.clone(), (m, format_milli(m, format_of_value(v)))))
        })
        .collect()
}

fn min_constraint(
    kind: &str,
    res: &str,
    enforced: &(i128, String),
    req: &Observed,
    lim: &Observed,
) -> Option<String> {
    let e = &enforced.1;
    let Some(r) = req.get(res) else {
        return Some(format!(
            "minimum {res} usage per {kind} is {e}.  No request is specified"
        ));
    };
    if r.0 < enforced.0 {
        return Some(format!(
            "minimum {res} usage per {kind} is {e}, but request is {}",
            r.1
        ));
    }
    match lim.get(res) {
        Some(l) if l.0 < enforced.0 => Some(format!(
            "minimum {res} usage per {kind} is {e}, but limit is {}",
            l.1
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    res: &str,
    enforced: &(i128, String),
    req: &Observed,
    lim: &Observed,
) -> Option<String> {
    let e = &enforced.1;
    let Some(l) = lim.get(res) else {
        return Some(format!(
            "maximum {res} usage per {kind} is {e}.  No limit is specified"
        ));
    };
    if l.0 > enforced.0 {
        return Some(format!(
            "maximum {res} usage per {kind} is {e}, but limit is {}",
            l.1
        ));
    }
    match req.get(res) {
        Some(r) if r.0 > enforced.0 => Some(format!(
            "maximum {res} usage per {kind} is {e}, but request is {}",
            r.1
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    res: &str,
    enforced: &(i128, String),
    req: &Observed,
    lim: &Observed,
) -> Option<String> {
    let e = &enforced.1;
    let Some(r) = req.get(res).filter(|r| r.0 != 0) else {
        return Some(format!("{res} max limit to request ratio per {kind} is {e}, but no request is specified or request is 0"));
    };
    let Some(l) = lim.get(res).filter(|l| l.0 != 0) else {
        return Some(format!("{res} max limit to request ratio per {kind} is {e}, but no limit is specified or limit is 0"));
    };
    let ratio = l.0 as f64 / r.0 as f64;
    // Compared in milli-units, as upstream does for ratios that fit.
    (ratio * 1000.0 > enforced.0 as f64).then(|| {
        format!(
            "{res} max limit to request ratio per {kind} is {e}, but provided ratio is {ratio:.6}"
        )
    })
}

/// Check one item's min, max and maxLimitRequestRatio against (requests, limits).
fn check_item(item: &Value, kind: &str, req: &Observed, lim: &Observed, errs: &mut Vec<String>) {
    type Check = fn(&str, &str, &(i128, String), &Observed, &Observed) -> Option<String>;
    let checks: [(&str, Check); 3] = [
        ("min", min_constraint),
        ("max", max_constraint),
        ("maxLimitRequestRatio", ratio_constraint),
    ];
    for (field, check) in checks {
        for (res, enforced) in observed(&item[field]) {
            errs.extend(check(kind, &res, &enforced, req, lim));
        }
    }
}

/// Upstream `podRequests`/`podLimits`: the sum over containers, at least each init container's
/// (a sum keeps the format of its first term).
fn pod_total(spec: &Value, field: &str) -> Observed {
    let mut total: BTreeMap<String, (i128, Format)> = BTreeMap::new();
    let terms = |f: &str| -> Vec<(String, i128, Format)> {
        spec[f]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["resources"][field].as_object().into_iter().flatten())
            .filter_map(|(k, v)| value_milli(v).map(|m| (k.clone(), m, format_of_value(v))))
            .collect()
    };
    for (k, m, f) in terms("containers") {
        total.entry(k).or_insert((0, f)).0 += m;
    }
    for (k, m, f) in terms("initContainers") {
        let e = total.entry(k).or_insert((0, f));
        e.0 = e.0.max(m);
    }
    total
        .into_iter()
        .map(|(k, (m, f))| (k, (m, format_milli(m, f))))
        .collect()
}

/// Every violation of one LimitRange's Container and Pod items by `pod`, in upstream's words.
pub fn violations(lr: &Value, pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let spec = &pod["spec"];
    for item in lr["spec"]["limits"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some(CONTAINER) => {
                for field in ["containers", "initContainers"] {
                    for c in spec[field].as_array().into_iter().flatten() {
                        let req = observed(&c["resources"]["requests"]);
                        let lim = observed(&c["resources"]["limits"]);
                        check_item(item, CONTAINER, &req, &lim, &mut errs);
                    }
                }
            }
            Some(POD) => {
                let req = pod_total(spec, "requests");
                let lim = pod_total(spec, "limits");
                check_item(item, POD, &req, &lim, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range() -> Value {
        json!({"spec": {"limits": [{
            "type": "Container",
            "min": {"cpu": "100m", "memory": "10Mi"},
            "max": {"cpu": "500m", "memory": "500Mi"},
            "defaultRequest": {"cpu": "200m", "memory": "100Mi"},
            "default": {"cpu": "300m", "memory": "200Mi"}
        }]}})
    }

    #[test]
    fn defaults_fill_what_is_missing_and_are_annotated() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"requests": {"cpu": "150m"}, "limits": {"cpu": "400m", "memory": "300Mi"}}}
        ], "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "300m", "memory": "200Mi"}, "requests": {"cpu": "200m", "memory": "100Mi"}}}]}});
        apply_defaults(&range(), &mut pod);
        let a = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(a["requests"], json!({"cpu": "200m", "memory": "100Mi"}));
        assert_eq!(a["limits"], json!({"cpu": "300m", "memory": "200Mi"}));
        let b = &pod["spec"]["containers"][1]["resources"];
        assert_eq!(b["requests"], json!({"cpu": "150m", "memory": "100Mi"}));
        assert_eq!(b["limits"], json!({"cpu": "400m", "memory": "300Mi"}));
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; memory request for container b"
        );
        assert!(violations(&range(), &pod).is_empty());
    }

    #[test]
    fn min_max_and_ratio_are_enforced() {
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "50m", "memory": "100Mi"},
            "limits": {"cpu": "600m", "memory": "100Mi"}}}]}});
        assert_eq!(
            violations(&range(), &pod),
            vec![
                "minimum cpu usage per Container is 100m, but request is 50m",
                "maximum cpu usage per Container is 500m, but limit is 600m",
            ]
        );
        let lr = json!({"spec": {"limits": [{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]}});
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {
            "requests": {"cpu": "100m"}, "limits": {"cpu": "300m"}}}]}});
        assert_eq!(
            violations(&lr, &pod),
            vec![
                "cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000"
            ]
        );
        let nothing = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(
            violations(&range(), &nothing)[0],
            "minimum cpu usage per Container is 100m.  No request is specified"
        );
    }

    #[test]
    fn pod_items_sum_containers() {
        let lr = json!({"spec": {"limits": [{"type": "Pod", "max": {"memory": "1Gi"}}]}});
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "768Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "512Mi"}}}
        ]}});
        assert_eq!(
            violations(&lr, &pod),
            vec!["maximum memory usage per Pod is 1Gi, but limit is 1280Mi"]
        );
        let lr = json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "0.1"}}]}});
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "0.05"}}}]}});
        assert_eq!(
            violations(&lr, &pod),
            vec!["minimum cpu usage per Container is 100m, but request is 50m"],
            "quantities are shown in canonical form"
        );
    }
}
