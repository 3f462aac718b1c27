//! Typed decoding of objects through the k8s-openapi structs: type checking, pruning of unknown
//! fields (reported for `fieldValidation=Strict|Warn`), and the pod-spec defaults the kinds with
//! pods share. Each kind's own defaults are its strategy's (see `registry`).

use serde_json::{json, Map, Value};

use crate::resources::ResourceDef;

/// Decode `obj` through the kind's typed struct and encode it again. Returns the pruned object and
/// the dotted paths of fields the type does not know.
pub fn roundtrip(def: &ResourceDef, obj: &Value) -> Result<(Value, Vec<String>), String> {
    let out = def.strategy.decode(obj)?;
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

pub(crate) fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).map(|x| x.is_object()).unwrap_or(false) {
        v[key] = json!({});
    }
    // The entry was just made an object above.
    match v.get_mut(key) {
        Some(Value::Object(m)) => m,
        _ => unreachable!("entry {key} was set to an object"),
    }
}

pub(crate) fn default_key(m: &mut Map<String, Value>, key: &str, val: Value) {
    if m.get(key).map(|v| v.is_null()).unwrap_or(true) {
        m.insert(key.to_string(), val);
    }
}

pub(crate) fn default_pod_spec(spec: &mut Map<String, Value>) {
    default_key(spec, "restartPolicy", json!("Always"));
    default_key(spec, "dnsPolicy", json!("ClusterFirst"));
    default_key(spec, "schedulerName", json!("default-scheduler"));
    default_key(spec, "terminationGracePeriodSeconds", json!(30));
    default_key(spec, "securityContext", json!({}));
    // The deprecated alias; a pod's `default` comes from ServiceAccount admission
    // (crate::saadmission), as upstream (templates and mirror pods keep it unset).
    if spec.get("serviceAccountName").is_none() {
        if let Some(sa) = spec.get("serviceAccount").cloned() {
            spec.insert("serviceAccountName".into(), sa);
        }
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
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

pub(crate) fn qos_class(pod: &Value) -> &'static str {
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
        let (out, unknown) = roundtrip(&crate::resources::PODS, &pod).unwrap();
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
        let err = roundtrip(&crate::resources::DEPLOYMENTS, &bad).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("registry:5000/busybox"), "latest");
        assert_eq!(image_tag("registry:5000/busybox:1"), "1");
        assert_eq!(image_tag("busybox@sha256:abc"), "digest");
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
