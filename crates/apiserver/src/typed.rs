//! Typed decoding of objects through the k8s-openapi structs: type checking, pruning of unknown
//! fields (reported for `fieldValidation=Strict|Warn`), and API defaults.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Map, Value};

use k8s_openapi::api::{apps::v1 as apps, coordination::v1 as coord, core::v1 as core};

fn rt<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let t: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&t).map_err(|e| e.to_string())
}

/// Decode `obj` as the given kind and encode it again. Returns the pruned object and the dotted
/// paths of fields the type does not know.
pub fn roundtrip(kind: &str, obj: &Value) -> Result<(Value, Vec<String>), String> {
    let out = match kind {
        "Namespace" => rt::<core::Namespace>(obj)?,
        "Pod" => rt::<core::Pod>(obj)?,
        "Node" => rt::<core::Node>(obj)?,
        "Service" => rt::<core::Service>(obj)?,
        "ConfigMap" => rt::<core::ConfigMap>(obj)?,
        "Secret" => rt::<core::Secret>(obj)?,
        "Event" => rt::<core::Event>(obj)?,
        "ServiceAccount" => rt::<core::ServiceAccount>(obj)?,
        "Endpoints" => rt::<core::Endpoints>(obj)?,
        "Lease" => rt::<coord::Lease>(obj)?,
        "Deployment" => rt::<apps::Deployment>(obj)?,
        "ReplicaSet" => rt::<apps::ReplicaSet>(obj)?,
        other => return Err(format!("no type registered for kind {other}")),
    };
    let mut unknown = Vec::new();
    unknown_fields(obj, &out, "", &mut unknown);
    Ok((out, unknown))
}

fn unknown_fields(input: &Value, output: &Value, path: &str, acc: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    Some(ov) => unknown_fields(v, ov, &p, acc),
                    None => acc.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (idx, (a, b)) in i.iter().zip(o.iter()).enumerate() {
                unknown_fields(a, b, &format!("{path}[{idx}]"), acc);
            }
        }
        _ => {}
    }
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).map(|x| x.is_object()).unwrap_or(false) {
        v[key] = json!({});
    }
    // The entry was just made an object above.
    match v.get_mut(key) {
        Some(Value::Object(m)) => m,
        _ => unreachable!("entry {key} was set to an object"),
    }
}

fn default_key(m: &mut Map<String, Value>, key: &str, val: Value) {
    if m.get(key).map(|v| v.is_null()).unwrap_or(true) {
        m.insert(key.to_string(), val);
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_key(spec, "restartPolicy", json!("Always"));
    default_key(spec, "dnsPolicy", json!("ClusterFirst"));
    default_key(spec, "schedulerName", json!("default-scheduler"));
    default_key(spec, "terminationGracePeriodSeconds", json!(30));
    default_key(spec, "securityContext", json!({}));
    if spec.get("serviceAccountName").is_none() {
        let sa = spec
            .get("serviceAccount")
            .cloned()
            .unwrap_or(json!("default"));
        spec.insert("serviceAccountName".into(), sa);
    }
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs.iter_mut() {
                let Value::Object(c) = c else { continue };
                let image = c
                    .get("image")
                    .and_then(|i| i.as_str())
                    .unwrap_or("")
                    .to_string();
                let pull = if image_tag(&image) == "latest" {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                default_key(c, "imagePullPolicy", json!(pull));
                default_key(c, "terminationMessagePath", json!("/dev/termination-log"));
                default_key(c, "terminationMessagePolicy", json!("File"));
                default_key(c, "resources", json!({}));
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(|p| p.as_object_mut()) {
                        default_key(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

/// Tag of an image reference ("latest" when none; digests count as pinned).
fn image_tag(image: &str) -> &str {
    if image.contains('@') {
        return "digest";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag,
        None => "latest",
    }
}

/// Conversions Kubernetes applies on every write: Secret `stringData` is folded into `data`.
pub fn normalize(kind: &str, obj: &mut Value) {
    if kind == "Secret" {
        if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
            use base64::Engine;
            let data = obj_mut(obj, "data");
            for (k, v) in sd {
                let raw = v.as_str().unwrap_or_default().to_string();
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())),
                );
            }
        }
    }
}

/// Apply the API defaults Kubernetes sets on create.
pub fn apply_defaults(kind: &str, obj: &mut Value) {
    match kind {
        "Pod" => {
            default_pod_spec(obj_mut(obj, "spec"));
            let status = obj_mut(obj, "status");
            default_key(status, "phase", json!("Pending"));
            let qos = qos_class(obj);
            obj_mut(obj, "status").insert("qosClass".into(), json!(qos));
        }
        "Deployment" | "ReplicaSet" => {
            let spec = obj_mut(obj, "spec");
            default_key(spec, "replicas", json!(1));
            default_key(spec, "revisionHistoryLimit", json!(10));
            if kind == "Deployment" {
                default_key(spec, "progressDeadlineSeconds", json!(600));
                default_key(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
                );
            }
            if let Some(Value::Object(tpl)) = spec.get_mut("template") {
                if let Some(Value::Object(ps)) = tpl.get_mut("spec") {
                    default_pod_spec(ps);
                }
            }
        }
        "Service" => {
            let spec = obj_mut(obj, "spec");
            default_key(spec, "type", json!("ClusterIP"));
            default_key(spec, "sessionAffinity", json!("None"));
            if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                for p in ports.iter_mut().filter_map(|p| p.as_object_mut()) {
                    default_key(p, "protocol", json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        default_key(p, "targetPort", port);
                    }
                }
            }
        }
        "Namespace" => {
            default_key(obj_mut(obj, "spec"), "finalizers", json!(["kubernetes"]));
            default_key(obj_mut(obj, "status"), "phase", json!("Active"));
        }
        "Secret" => {
            if let Some(m) = obj.as_object_mut() {
                default_key(m, "type", json!("Opaque"));
            }
        }
        _ => {}
    }
}

fn qos_class(pod: &Value) -> &'static str {
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let req = &c["resources"]["requests"];
        let lim = &c["resources"]["limits"];
        for r in ["cpu", "memory"] {
            if !req[r].is_null() || !lim[r].is_null() {
                any = true;
            }
            let l = &lim[r];
            if l.is_null() || (!req[r].is_null() && req[r] != *l) {
                guaranteed = false;
            }
        }
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_reports_unknown_fields_and_prunes_them() {
        let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","creationTimestamp":null},
            "spec":{"containers":[{"name":"c","image":"busybox","bogus":1}],"extra":true}});
        let (out, unknown) = roundtrip("Pod", &pod).unwrap();
        assert_eq!(
            unknown,
            vec![
                "spec.containers[0].bogus".to_string(),
                "spec.extra".to_string()
            ]
        );
        assert!(out["spec"].get("extra").is_none());
        assert_eq!(out["spec"]["containers"][0]["image"], "busybox");
    }

    #[test]
    fn roundtrip_rejects_wrong_types() {
        let bad = json!({"metadata":{"name":"d"},"spec":{"replicas":"three"}});
        let err = roundtrip("Deployment", &bad).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn pod_defaults() {
        let mut pod = json!({"spec":{"containers":[{"name":"c","image":"busybox:1.36"},{"name":"d","image":"nginx"}]}});
        apply_defaults("Pod", &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["spec"]["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
        assert_eq!(image_tag("registry:5000/busybox"), "latest");
        assert_eq!(image_tag("registry:5000/busybox:1"), "1");
    }

    #[test]
    fn secret_string_data_folds_into_data() {
        let mut s = json!({"data":{"a":"eA=="},"stringData":{"b":"hunter2"}});
        normalize("Secret", &mut s);
        assert_eq!(s, json!({"data":{"a":"eA==","b":"aHVudGVyMg=="}}));
    }

    #[test]
    fn qos_classes() {
        let g =
            json!({"spec":{"containers":[{"resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]}});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"spec":{"containers":[{"resources":{"requests":{"cpu":"1"}}}]}});
        assert_eq!(qos_class(&b), "Burstable");
    }
}
