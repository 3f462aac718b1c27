//! Validation of pod specs (upstream pkg/apis/core/validation: ValidatePodSpec and
//! ValidatePodUpdate), shared by Pods and every kind with a pod template. Messages and field
//! paths are upstream's, so clients see the same 422 causes a Kubernetes API server gives.

use std::collections::{BTreeMap, BTreeSet};

use daas_apimachinery::quantity;
use daas_apimachinery::validation as v;
use serde_json::{json, Value};

use super::Cause;

const MAX_INT32: i64 = 2_147_483_647;

const VOLUME_TYPES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
];

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

/// Field paths a downward API volume item may reference.
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// Field paths an environment variable may reference.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

const CONTAINER_RESOURCES: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn supported(values: &[&str]) -> String {
    values
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unsupported(path: String, got: &str, values: &[&str], causes: &mut Vec<Cause>) {
    causes.push((
        path,
        format!(
            "Unsupported value: {got:?}: supported values: {}",
            supported(values)
        ),
    ));
}

fn required(path: String, causes: &mut Vec<Cause>) {
    causes.push((path, "Required value".into()));
}

fn invalid(path: String, value: &Value, msg: &str, causes: &mut Vec<Cause>) {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "\"null\"".to_string(),
        other => other.to_string(),
    };
    causes.push((path, format!("Invalid value: {shown}: {msg}")));
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Fields of an object that are present (not null).
fn set_fields<'a>(v: &'a Value, among: &[&'a str]) -> Vec<&'a str> {
    among
        .iter()
        .copied()
        .filter(|k| v.get(*k).is_some_and(|x| !x.is_null()))
        .collect()
}

/// A relative path without `..` elements (volume items, subPaths).
fn validate_local_path(path: String, p: &str, causes: &mut Vec<Cause>) {
    if p.starts_with('/') {
        invalid(path, &json!(p), "must be a relative path", causes);
    } else if p.split('/').any(|e| e == "..") {
        invalid(path, &json!(p), "must not contain '..'", causes);
    }
}

/// A required, unique DNS-label name (volumes, containers).
fn unique_label_name(path: &str, name: &str, seen: &mut BTreeSet<String>, causes: &mut Vec<Cause>) {
    if name.is_empty() {
        required(path.to_string(), causes);
        return;
    }
    for m in v::dns1123_label(name) {
        invalid(path.to_string(), &json!(name), &m, causes);
    }
    if !seen.insert(name.to_string()) {
        causes.push((path.to_string(), format!("Duplicate value: {name:?}")));
    }
}

fn validate_mode(path: String, mode: &Value, causes: &mut Vec<Cause>) {
    if let Some(m) = mode.as_i64() {
        if !(0..=0o777).contains(&m) {
            invalid(
                path,
                mode,
                "must be a number between 0 and 0777 (octal), both inclusive",
                causes,
            );
        }
    }
}

fn validate_key_to_paths(path: &str, items: &Value, causes: &mut Vec<Cause>) {
    for (i, it) in arr(items).iter().enumerate() {
        let p = format!("{path}[{i}]");
        if str_of(&it["key"]).is_empty() {
            required(format!("{p}.key"), causes);
        }
        let ip = str_of(&it["path"]);
        if ip.is_empty() {
            required(format!("{p}.path"), causes);
        } else {
            validate_local_path(format!("{p}.path"), ip, causes);
        }
        validate_mode(format!("{p}.mode"), &it["mode"], causes);
    }
}

fn validate_downward_items(path: &str, items: &Value, causes: &mut Vec<Cause>) {
    for (i, it) in arr(items).iter().enumerate() {
        let p = format!("{path}[{i}]");
        let ip = str_of(&it["path"]);
        if ip.is_empty() {
            required(format!("{p}.path"), causes);
        } else {
            validate_local_path(format!("{p}.path"), ip, causes);
        }
        validate_mode(format!("{p}.mode"), &it["mode"], causes);
        match (it["fieldRef"].is_object(), it["resourceFieldRef"].is_object()) {
            (true, true) => causes.push((
                p.clone(),
                "Invalid value: \"resource\": fieldRef and resourceFieldRef can not be specified simultaneously".into(),
            )),
            (true, false) => validate_field_ref(
                format!("{p}.fieldRef"),
                &it["fieldRef"],
                VOLUME_FIELD_PATHS,
                causes,
            ),
            (false, true) => validate_resource_field_ref(
                format!("{p}.resourceFieldRef"),
                &it["resourceFieldRef"],
                true,
                causes,
            ),
            (false, false) => causes.push((
                p.clone(),
                "Required value: one of fieldRef and resourceFieldRef is required".into(),
            )),
        }
    }
}

/// `metadata.labels['k']` / `metadata.annotations['k']` subscripts, or one of `allowed`.
fn validate_field_ref(path: String, r: &Value, allowed: &[&str], causes: &mut Vec<Cause>) {
    let fp = str_of(&r["fieldPath"]);
    if fp.is_empty() {
        required(format!("{path}.fieldPath"), causes);
        return;
    }
    if let Some(av) = r["apiVersion"].as_str() {
        if !av.is_empty() && av != "v1" {
            unsupported(format!("{path}.apiVersion"), av, &["v1"], causes);
            return;
        }
    }
    for prefix in ["metadata.labels", "metadata.annotations"] {
        if let Some(rest) = fp.strip_prefix(prefix) {
            if let Some(key) = rest.strip_prefix("['").and_then(|k| k.strip_suffix("']")) {
                let errs = if prefix == "metadata.labels" {
                    v::qualified_name(key)
                } else {
                    v::qualified_name(&key.to_ascii_lowercase())
                };
                for m in errs {
                    invalid(format!("{path}.fieldPath"), &json!(key), &m, causes);
                }
                return;
            }
        }
    }
    if !allowed.contains(&fp) {
        unsupported(format!("{path}.fieldPath"), fp, allowed, causes);
    }
}

fn validate_resource_field_ref(path: String, r: &Value, in_volume: bool, causes: &mut Vec<Cause>) {
    if in_volume && str_of(&r["containerName"]).is_empty() {
        required(format!("{path}.containerName"), causes);
    }
    let res = str_of(&r["resource"]);
    if res.is_empty() {
        required(format!("{path}.resource"), causes);
        return;
    }
    let hugepages = res.starts_with("limits.hugepages-") || res.starts_with("requests.hugepages-");
    if !CONTAINER_RESOURCES.contains(&res) && !hugepages {
        unsupported(format!("{path}.resource"), res, CONTAINER_RESOURCES, causes);
        return;
    }
    if let Some(d) = r["divisor"].as_str() {
        let ok = if res.ends_with(".cpu") {
            ["1m", "1"].contains(&d)
        } else {
            [
                "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
            ]
            .contains(&d)
        };
        if !ok {
            let msg = if res.ends_with(".cpu") {
                "only divisor's values 1m and 1 are supported with the cpu resource"
            } else {
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"
            };
            invalid(format!("{path}.divisor"), &json!(d), msg, causes);
        }
    }
}

/// Returns the volume names (for the mounts' lookups).
fn validate_volumes(spec: &Value, path: &str, causes: &mut Vec<Cause>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, vol) in arr(&spec["volumes"]).iter().enumerate() {
        let p = format!("{path}.volumes[{i}]");
        unique_label_name(
            &format!("{p}.name"),
            str_of(&vol["name"]),
            &mut names,
            causes,
        );
        let types = set_fields(vol, VOLUME_TYPES);
        match types.as_slice() {
            [] => causes.push((
                p.clone(),
                "Required value: must specify a volume type".into(),
            )),
            [t] => validate_volume_source(&p, t, &vol[*t], causes),
            [first, rest @ ..] => {
                validate_volume_source(&p, first, &vol[*first], causes);
                for t in rest {
                    causes.push((
                        format!("{p}.{t}"),
                        "Forbidden: may not specify more than 1 volume type".into(),
                    ));
                }
            }
        }
    }
    names
}

fn validate_volume_source(p: &str, t: &str, src: &Value, causes: &mut Vec<Cause>) {
    let sp = format!("{p}.{t}");
    match t {
        "hostPath" => {
            if str_of(&src["path"]).is_empty() {
                required(format!("{sp}.path"), causes);
            } else if str_of(&src["path"]).split('/').any(|e| e == "..") {
                invalid(
                    format!("{sp}.path"),
                    &src["path"],
                    "must not contain '..'",
                    causes,
                );
            }
            if let Some(ty) = src["type"].as_str() {
                if !HOST_PATH_TYPES.contains(&ty) {
                    unsupported(format!("{sp}.type"), ty, HOST_PATH_TYPES, causes);
                }
            }
        }
        "emptyDir" => {
            if let Some(m) = src["medium"].as_str() {
                if !(m.is_empty() || m == "Memory" || m.starts_with("HugePages")) {
                    unsupported(
                        format!("{sp}.medium"),
                        m,
                        &["", "Memory", "HugePages"],
                        causes,
                    );
                }
            }
            if let Some(sl) = src["sizeLimit"].as_str() {
                if quantity::parse_milli(sl).is_some_and(|q| q < 0) {
                    invalid(
                        format!("{sp}.sizeLimit"),
                        &src["sizeLimit"],
                        "must be greater than or equal to 0",
                        causes,
                    );
                }
            }
        }
        "configMap" => {
            if str_of(&src["name"]).is_empty() {
                required(format!("{sp}.name"), causes);
            }
            validate_mode(format!("{sp}.defaultMode"), &src["defaultMode"], causes);
            validate_key_to_paths(&format!("{sp}.items"), &src["items"], causes);
        }
        "secret" => {
            if str_of(&src["secretName"]).is_empty() {
                required(format!("{sp}.secretName"), causes);
            }
            validate_mode(format!("{sp}.defaultMode"), &src["defaultMode"], causes);
            validate_key_to_paths(&format!("{sp}.items"), &src["items"], causes);
        }
        "downwardAPI" => {
            validate_mode(format!("{sp}.defaultMode"), &src["defaultMode"], causes);
            validate_downward_items(&format!("{sp}.items"), &src["items"], causes);
        }
        "persistentVolumeClaim" if str_of(&src["claimName"]).is_empty() => {
            required(format!("{sp}.claimName"), causes);
        }
        "projected" => validate_projected(&sp, src, causes),
        _ => {}
    }
}

fn validate_projected(sp: &str, src: &Value, causes: &mut Vec<Cause>) {
    validate_mode(format!("{sp}.defaultMode"), &src["defaultMode"], causes);
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    let mut claim_path = |p: &str, at: &str, causes: &mut Vec<Cause>| {
        if let Some(prev) = paths.insert(p.to_string(), at.to_string()) {
            let _ = prev;
            invalid(
                at.to_string(),
                &json!(p),
                "conflicting duplicate paths",
                causes,
            );
        }
    };
    let kinds = [
        "secret",
        "configMap",
        "downwardAPI",
        "serviceAccountToken",
        "clusterTrustBundle",
    ];
    for (i, s) in arr(&src["sources"]).iter().enumerate() {
        let p = format!("{sp}.sources[{i}]");
        let set = set_fields(s, &kinds);
        if set.is_empty() {
            causes.push((
                p.clone(),
                "Required value: must specify exactly 1 volume type".into(),
            ));
            continue;
        }
        if set.len() > 1 {
            causes.push((
                p.clone(),
                "Forbidden: may not specify more than 1 volume type per source".into(),
            ));
            continue;
        }
        let src = &s[set[0]];
        match set[0] {
            "secret" | "configMap" => {
                let ip = format!("{p}.{}.items", set[0]);
                validate_key_to_paths(&ip, &src["items"], causes);
                for (j, it) in arr(&src["items"]).iter().enumerate() {
                    claim_path(str_of(&it["path"]), &format!("{ip}[{j}].path"), causes);
                }
            }
            "downwardAPI" => {
                let ip = format!("{p}.downwardAPI.items");
                validate_downward_items(&ip, &src["items"], causes);
                for (j, it) in arr(&src["items"]).iter().enumerate() {
                    claim_path(str_of(&it["path"]), &format!("{ip}[{j}].path"), causes);
                }
            }
            "serviceAccountToken" => {
                let tp = format!("{p}.serviceAccountToken");
                if let Some(e) = src["expirationSeconds"].as_i64() {
                    if e < 600 {
                        invalid(
                            format!("{tp}.expirationSeconds"),
                            &json!(e),
                            "may not specify a duration less than 10 minutes",
                            causes,
                        );
                    } else if e > 1 << 32 {
                        invalid(
                            format!("{tp}.expirationSeconds"),
                            &json!(e),
                            "may not specify a duration larger than 2^32 seconds",
                            causes,
                        );
                    }
                }
                let path = str_of(&src["path"]);
                if path.is_empty() {
                    required(format!("{tp}.path"), causes);
                } else {
                    validate_local_path(format!("{tp}.path"), path, causes);
                    claim_path(path, &format!("{tp}.path"), causes);
                }
            }
            _ => {}
        }
    }
}

/// Which kind of container list is being validated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ContainerKind {
    Regular,
    Init,
}

fn validate_env(cp: &str, c: &Value, causes: &mut Vec<Cause>) {
    for (i, e) in arr(&c["env"]).iter().enumerate() {
        let p = format!("{cp}.env[{i}]");
        let name = str_of(&e["name"]);
        if name.is_empty() {
            required(format!("{p}.name"), causes);
        } else {
            for m in v::env_var_name(name) {
                invalid(format!("{p}.name"), &json!(name), &m, causes);
            }
        }
        let vf = &e["valueFrom"];
        if vf.is_null() {
            continue;
        }
        if !str_of(&e["value"]).is_empty() {
            invalid(
                format!("{p}.valueFrom"),
                &json!(""),
                "may not be specified when `value` is not empty",
                causes,
            );
            continue;
        }
        let set = set_fields(
            vf,
            &[
                "fieldRef",
                "resourceFieldRef",
                "configMapKeyRef",
                "secretKeyRef",
            ],
        );
        match set.as_slice() {
            [] => invalid(
                format!("{p}.valueFrom"),
                &json!(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                causes,
            ),
            ["fieldRef"] => validate_field_ref(
                format!("{p}.valueFrom.fieldRef"),
                &vf["fieldRef"],
                ENV_FIELD_PATHS,
                causes,
            ),
            ["resourceFieldRef"] => validate_resource_field_ref(
                format!("{p}.valueFrom.resourceFieldRef"),
                &vf["resourceFieldRef"],
                false,
                causes,
            ),
            [r @ ("configMapKeyRef" | "secretKeyRef")] => {
                let kp = format!("{p}.valueFrom.{r}");
                if str_of(&vf[*r]["key"]).is_empty() {
                    required(format!("{kp}.key"), causes);
                } else {
                    for m in super::config_key_errors(str_of(&vf[*r]["key"])) {
                        invalid(format!("{kp}.key"), &vf[*r]["key"], &m, causes);
                    }
                }
                if str_of(&vf[*r]["name"]).is_empty() {
                    required(format!("{kp}.name"), causes);
                }
            }
            _ => invalid(
                format!("{p}.valueFrom"),
                &json!(""),
                "may not have more than one field specified at a time",
                causes,
            ),
        }
    }
    for (i, ef) in arr(&c["envFrom"]).iter().enumerate() {
        let p = format!("{cp}.envFrom[{i}]");
        if let Some(prefix) = ef["prefix"].as_str().filter(|s| !s.is_empty()) {
            for m in v::env_var_name(prefix) {
                invalid(format!("{p}.prefix"), &json!(prefix), &m, causes);
            }
        }
        match set_fields(ef, &["configMapRef", "secretRef"]).as_slice() {
            [] => invalid(
                p,
                &json!(""),
                "must specify one of: `configMapRef` or `secretRef`",
                causes,
            ),
            [r] => {
                if str_of(&ef[*r]["name"]).is_empty() {
                    required(format!("{p}.{r}.name"), causes);
                }
            }
            _ => invalid(
                p,
                &json!(""),
                "may not have more than one field specified at a time",
                causes,
            ),
        }
    }
}

fn validate_ports(cp: &str, c: &Value, host_network: bool, causes: &mut Vec<Cause>) {
    let mut names = BTreeSet::new();
    for (i, port) in arr(&c["ports"]).iter().enumerate() {
        let p = format!("{cp}.ports[{i}]");
        if let Some(n) = port["name"].as_str().filter(|s| !s.is_empty()) {
            for m in v::port_name(n) {
                invalid(format!("{p}.name"), &json!(n), &m, causes);
            }
            if !names.insert(n.to_string()) {
                causes.push((format!("{p}.name"), format!("Duplicate value: {n:?}")));
            }
        }
        match port["containerPort"].as_i64() {
            None => required(format!("{p}.containerPort"), causes),
            Some(n) => {
                for m in v::port_num(n) {
                    invalid(format!("{p}.containerPort"), &json!(n), &m, causes);
                }
            }
        }
        if let Some(h) = port["hostPort"].as_i64().filter(|h| *h != 0) {
            for m in v::port_num(h) {
                invalid(format!("{p}.hostPort"), &json!(h), &m, causes);
            }
            if host_network && port["containerPort"].as_i64() != Some(h) {
                invalid(
                    format!("{p}.hostPort"),
                    &json!(h),
                    "must match `containerPort` when `hostNetwork` is true",
                    causes,
                );
            }
        }
        if let Some(proto) = port["protocol"].as_str() {
            if !["SCTP", "TCP", "UDP"].contains(&proto) {
                unsupported(
                    format!("{p}.protocol"),
                    proto,
                    &["SCTP", "TCP", "UDP"],
                    causes,
                );
            }
        }
    }
}

fn validate_mounts(cp: &str, c: &Value, volumes: &BTreeSet<String>, causes: &mut Vec<Cause>) {
    let mut paths = BTreeSet::new();
    for (i, m) in arr(&c["volumeMounts"]).iter().enumerate() {
        let p = format!("{cp}.volumeMounts[{i}]");
        let name = str_of(&m["name"]);
        if name.is_empty() {
            required(format!("{p}.name"), causes);
        } else if !volumes.contains(name) {
            causes.push((format!("{p}.name"), format!("Not found: {name:?}")));
        }
        let mp = str_of(&m["mountPath"]);
        if mp.is_empty() {
            required(format!("{p}.mountPath"), causes);
        } else if !paths.insert(mp.to_string()) {
            invalid(
                format!("{p}.mountPath"),
                &json!(mp),
                "must be unique",
                causes,
            );
        }
        let sub = str_of(&m["subPath"]);
        let sub_expr = str_of(&m["subPathExpr"]);
        if !sub.is_empty() && !sub_expr.is_empty() {
            invalid(
                format!("{p}.subPathExpr"),
                &json!(sub_expr),
                "subPathExpr and subPath are mutually exclusive",
                causes,
            );
        }
        if !sub.is_empty() {
            validate_local_path(format!("{p}.subPath"), sub, causes);
        }
        if !sub_expr.is_empty() {
            validate_local_path(format!("{p}.subPathExpr"), sub_expr, causes);
        }
        if let Some(mpp) = m["mountPropagation"].as_str() {
            let ok = ["None", "HostToContainer", "Bidirectional"];
            if !ok.contains(&mpp) {
                unsupported(format!("{p}.mountPropagation"), mpp, &ok, causes);
            }
        }
    }
}

pub(crate) fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn validate_resources(cp: &str, c: &Value, causes: &mut Vec<Cause>) {
    let rp = format!("{cp}.resources");
    let mut parsed: [BTreeMap<String, i128>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for (idx, section) in ["limits", "requests"].iter().enumerate() {
        let Some(m) = c["resources"][*section].as_object() else {
            continue;
        };
        for (name, q) in m {
            let p = format!("{rp}.{section}[{name}]");
            let qualified = name.contains('/');
            if !is_standard_container_resource(name) && !qualified {
                invalid(
                    p.clone(),
                    &json!(name),
                    "must be a standard resource type or fully qualified",
                    causes,
                );
                continue;
            }
            if qualified {
                for m in v::qualified_name(name) {
                    invalid(p.clone(), &json!(name), &m, causes);
                }
            }
            let Some(milli) = q.as_str().and_then(quantity::parse_milli) else {
                continue;
            };
            if milli < 0 {
                invalid(p, q, "must be greater than or equal to 0", causes);
                continue;
            }
            parsed[idx].insert(name.clone(), milli);
        }
    }
    let (limits, requests) = (&parsed[0], &parsed[1]);
    for (name, req) in requests {
        let Some(lim) = limits.get(name) else {
            continue;
        };
        if req > lim {
            let shown_req = c["resources"]["requests"][name].clone();
            let shown_lim = str_of(&c["resources"]["limits"][name]).to_string();
            invalid(
                format!("{rp}.requests"),
                &shown_req,
                &format!("must be less than or equal to {name} limit of {shown_lim}"),
                causes,
            );
        }
    }
}

fn validate_handler(path: &str, h: &Value, what: &str, causes: &mut Vec<Cause>) {
    let kinds = ["exec", "httpGet", "tcpSocket", "grpc", "sleep"];
    let set = set_fields(h, &kinds);
    match set.as_slice() {
        [] => causes.push((
            path.to_string(),
            format!("Required value: must specify a {what}"),
        )),
        [one] => {
            let hp = format!("{path}.{one}");
            match *one {
                "exec" if arr(&h["exec"]["command"]).is_empty() => {
                    required(format!("{hp}.command"), causes);
                }
                "httpGet" | "tcpSocket" => validate_port_ref(&hp, &h[*one]["port"], causes),
                "grpc" => {
                    if let Some(n) = h["grpc"]["port"].as_i64() {
                        for m in v::port_num(n) {
                            invalid(format!("{hp}.port"), &json!(n), &m, causes);
                        }
                    }
                }
                _ => {}
            }
            if *one == "httpGet" {
                if let Some(s) = h["httpGet"]["scheme"].as_str() {
                    if !["HTTP", "HTTPS"].contains(&s) {
                        unsupported(format!("{hp}.scheme"), s, &["HTTP", "HTTPS"], causes);
                    }
                }
            }
        }
        [_, rest @ ..] => {
            for t in rest {
                causes.push((
                    format!("{path}.{t}"),
                    format!("Forbidden: may not specify more than 1 {what}"),
                ));
            }
        }
    }
}

fn validate_port_ref(path: &str, port: &Value, causes: &mut Vec<Cause>) {
    match port {
        Value::Number(n) => {
            for m in v::port_num(n.as_i64().unwrap_or(0)) {
                invalid(format!("{path}.port"), port, &m, causes);
            }
        }
        Value::String(s) => {
            for m in v::port_name(s) {
                invalid(format!("{path}.port"), port, &m, causes);
            }
        }
        _ => required(format!("{path}.port"), causes),
    }
}

fn validate_probe(cp: &str, field: &str, probe: &Value, causes: &mut Vec<Cause>) {
    if probe.is_null() {
        return;
    }
    let p = format!("{cp}.{field}");
    validate_handler(&p, probe, "handler type", causes);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(n) = probe[f].as_i64() {
            if n < 0 {
                invalid(
                    format!("{p}.{f}"),
                    &json!(n),
                    "must be greater than or equal to 0",
                    causes,
                );
            }
        }
    }
    if field != "readinessProbe" {
        if let Some(n) = probe["successThreshold"].as_i64() {
            if n != 1 {
                invalid(
                    format!("{p}.successThreshold"),
                    &json!(n),
                    "must be 1",
                    causes,
                );
            }
        }
    }
    if let Some(n) = probe["terminationGracePeriodSeconds"].as_i64() {
        if field == "readinessProbe" {
            invalid(
                format!("{p}.terminationGracePeriodSeconds"),
                &json!(n),
                "must not be set for readinessProbes",
                causes,
            );
        } else if n <= 0 {
            invalid(
                format!("{p}.terminationGracePeriodSeconds"),
                &json!(n),
                "must be greater than 0",
                causes,
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn validate_containers(
    spec: &Value,
    path: &str,
    field: &str,
    kind: ContainerKind,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
    causes: &mut Vec<Cause>,
) {
    let host_network = spec["hostNetwork"].as_bool() == Some(true);
    for (i, c) in arr(&spec[field]).iter().enumerate() {
        let cp = format!("{path}.{field}[{i}]");
        unique_label_name(&format!("{cp}.name"), str_of(&c["name"]), names, causes);
        if str_of(&c["image"]).trim().is_empty() {
            required(format!("{cp}.image"), causes);
        }
        if let Some(pp) = c["imagePullPolicy"].as_str() {
            let ok = ["Always", "IfNotPresent", "Never"];
            if !ok.contains(&pp) {
                unsupported(format!("{cp}.imagePullPolicy"), pp, &ok, causes);
            }
        }
        if let Some(tmp) = c["terminationMessagePolicy"].as_str() {
            let ok = ["File", "FallbackToLogsOnError"];
            if !ok.contains(&tmp) {
                unsupported(format!("{cp}.terminationMessagePolicy"), tmp, &ok, causes);
            }
        }
        validate_ports(&cp, c, host_network, causes);
        validate_env(&cp, c, causes);
        validate_mounts(&cp, c, volumes, causes);
        validate_resources(&cp, c, causes);
        let sidecar = kind == ContainerKind::Init && c["restartPolicy"].as_str() == Some("Always");
        if let Some(rp) = c["restartPolicy"].as_str() {
            if kind == ContainerKind::Regular {
                causes.push((
                    format!("{cp}.restartPolicy"),
                    "Forbidden: may not be set for non-init containers".into(),
                ));
            } else if rp != "Always" {
                unsupported(format!("{cp}.restartPolicy"), rp, &["Always"], causes);
            }
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if kind == ContainerKind::Init && !sidecar && !c[probe].is_null() {
                causes.push((
                    format!("{cp}.{probe}"),
                    "Forbidden: may not be set for init containers without restartPolicy=Always"
                        .into(),
                ));
                continue;
            }
            validate_probe(&cp, probe, &c[probe], causes);
        }
        if kind == ContainerKind::Init && !sidecar && !c["lifecycle"].is_null() {
            causes.push((
                format!("{cp}.lifecycle"),
                "Forbidden: may not be set for init containers without restartPolicy=Always".into(),
            ));
        } else {
            for hook in ["postStart", "preStop"] {
                let h = &c["lifecycle"][hook];
                if !h.is_null() {
                    validate_handler(&format!("{cp}.lifecycle.{hook}"), h, "handler", causes);
                }
            }
        }
        for f in ["runAsUser", "runAsGroup"] {
            if let Some(n) = c["securityContext"][f].as_i64() {
                for m in v::inclusive_range(n, 0, MAX_INT32) {
                    invalid(format!("{cp}.securityContext.{f}"), &json!(n), &m, causes);
                }
            }
        }
    }
}

/// Fields of a Container an ephemeral container may not set (upstream's allow list of
/// `EphemeralContainerCommon`, the rest): they serve the workload, not a debugging session.
const EPHEMERAL_FORBIDDEN_FIELDS: [&str; 9] = [
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "restartPolicyRules",
];

/// Upstream validateEphemeralContainers: each is a valid container (env, mounts, pull policy,
/// security context) named uniquely among all the pod's containers, targeting an existing
/// init or app container, with no workload-only field set and no subPath mounts.
fn validate_ephemeral_containers(
    spec: &Value,
    path: &str,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
    causes: &mut Vec<Cause>,
) {
    let others: BTreeSet<String> = names.clone();
    for (i, c) in arr(&spec["ephemeralContainers"]).iter().enumerate() {
        let cp = format!("{path}.ephemeralContainers[{i}]");
        unique_label_name(&format!("{cp}.name"), str_of(&c["name"]), names, causes);
        if str_of(&c["image"]).trim().is_empty() {
            required(format!("{cp}.image"), causes);
        }
        if let Some(pp) = c["imagePullPolicy"].as_str() {
            let ok = ["Always", "IfNotPresent", "Never"];
            if !ok.contains(&pp) {
                unsupported(format!("{cp}.imagePullPolicy"), pp, &ok, causes);
            }
        }
        if let Some(tmp) = c["terminationMessagePolicy"].as_str() {
            let ok = ["File", "FallbackToLogsOnError"];
            if !ok.contains(&tmp) {
                unsupported(format!("{cp}.terminationMessagePolicy"), tmp, &ok, causes);
            }
        }
        validate_env(&cp, c, causes);
        validate_mounts(&cp, c, volumes, causes);
        if let Some(t) = c["targetContainerName"].as_str().filter(|t| !t.is_empty()) {
            if !others.contains(t) {
                causes.push((
                    format!("{cp}.targetContainerName"),
                    format!("Not found: {t:?}"),
                ));
            }
        }
        for f in EPHEMERAL_FORBIDDEN_FIELDS {
            let set = match &c[f] {
                Value::Null => false,
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if set {
                causes.push((
                    format!("{cp}.{f}"),
                    "Forbidden: cannot be set for an Ephemeral Container".into(),
                ));
            }
        }
        for (j, m) in arr(&c["volumeMounts"]).iter().enumerate() {
            for f in ["subPath", "subPathExpr"] {
                if !str_of(&m[f]).is_empty() {
                    causes.push((
                        format!("{cp}.volumeMounts[{j}].{f}"),
                        "Forbidden: cannot be set for an Ephemeral Container".into(),
                    ));
                }
            }
        }
        for f in ["runAsUser", "runAsGroup"] {
            if let Some(n) = c["securityContext"][f].as_i64() {
                for m in v::inclusive_range(n, 0, MAX_INT32) {
                    invalid(format!("{cp}.securityContext.{f}"), &json!(n), &m, causes);
                }
            }
        }
    }
}

/// Upstream ValidatePodEphemeralContainersUpdate: existing ephemeral containers may be neither
/// removed nor changed (only new ones added); static pods take none.
pub fn validate_ephemeral_containers_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    if old["metadata"]["annotations"]
        .get("kubernetes.io/config.mirror")
        .is_some()
    {
        causes.push((
            String::new(),
            "Forbidden: static pods do not support ephemeral containers".into(),
        ));
        return;
    }
    let news = arr(&new["spec"]["ephemeralContainers"]);
    for o in arr(&old["spec"]["ephemeralContainers"]) {
        let name = str_of(&o["name"]);
        match news.iter().find(|n| str_of(&n["name"]) == name) {
            None => causes.push((
                "spec.ephemeralContainers".into(),
                format!("Forbidden: existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(n) => {
                let mut diffs = Vec::new();
                diff_paths(
                    &format!("spec.ephemeralContainers[{name}]"),
                    o,
                    n,
                    &mut diffs,
                );
                if !diffs.is_empty() {
                    causes.push((
                        "spec.ephemeralContainers".into(),
                        format!(
                            "Forbidden: existing ephemeral containers {name:?} may not be changed\n{}",
                            diffs.join("\n")
                        ),
                    ));
                }
            }
        }
    }
}

fn validate_tolerations(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    for (i, t) in arr(&spec["tolerations"]).iter().enumerate() {
        let p = format!("{path}.tolerations[{i}]");
        let key = str_of(&t["key"]);
        let op = t["operator"].as_str().unwrap_or("Equal");
        if !key.is_empty() {
            for m in v::qualified_name(key) {
                invalid(format!("{p}.key"), &json!(key), &m, causes);
            }
        } else if op != "Exists" {
            invalid(
                format!("{p}.operator"),
                &json!(op),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                causes,
            );
        }
        match op {
            "Equal" | "" => {
                for m in v::label_value(str_of(&t["value"])) {
                    invalid(format!("{p}.operator"), &t["value"], &m, causes);
                }
            }
            "Exists" => {
                if !str_of(&t["value"]).is_empty() {
                    invalid(
                        format!("{p}.operator"),
                        &t["value"],
                        "value must be empty when `operator` is 'Exists'",
                        causes,
                    );
                }
            }
            other => unsupported(format!("{p}.operator"), other, &["Equal", "Exists"], causes),
        }
        let effect = str_of(&t["effect"]);
        if !t["tolerationSeconds"].is_null() && effect != "NoExecute" {
            invalid(
                format!("{p}.effect"),
                &json!(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
                causes,
            );
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            unsupported(
                format!("{p}.effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                causes,
            );
        }
    }
}

/// A string list as upstream prints it in messages (Go's `%#v`: `[]string{"a", "b"}`).
fn go_strings(v: &Value) -> String {
    let items: Vec<String> = arr(v).iter().map(|s| format!("{:?}", str_of(s))).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// Upstream `MaxDNSNameservers`, `MaxDNSSearchPaths` and `MaxDNSSearchListChars`.
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_CHARS: usize = 2048;

/// Upstream `validatePodDNSConfig`: `dnsPolicy: None` needs a `dnsConfig` with a nameserver;
/// at most 3 nameservers, each an IP address; at most 32 search paths and 2048 characters of
/// search list, each path a DNS subdomain (a trailing dot allowed); options named.
fn validate_dns_config(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let p = format!("{path}.dnsConfig");
    let cfg = &spec["dnsConfig"];
    if spec["dnsPolicy"] == "None" {
        if cfg.is_null() {
            causes.push((
                p,
                "Required value: must provide `dnsConfig` when `dnsPolicy` is None".into(),
            ));
            return;
        }
        if arr(&cfg["nameservers"]).is_empty() {
            causes.push((
                format!("{p}.nameservers"),
                "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"
                    .into(),
            ));
            return;
        }
    }
    if cfg.is_null() {
        return;
    }
    let servers = arr(&cfg["nameservers"]);
    if servers.len() > MAX_DNS_NAMESERVERS {
        causes.push((
            format!("{p}.nameservers"),
            format!(
                "Invalid value: {}: must not have more than {MAX_DNS_NAMESERVERS} nameservers",
                go_strings(&cfg["nameservers"])
            ),
        ));
    }
    for (i, ns) in servers.iter().enumerate() {
        if str_of(ns).parse::<std::net::IpAddr>().is_err() {
            invalid(
                format!("{p}.nameservers[{i}]"),
                ns,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                causes,
            );
        }
    }
    let searches = arr(&cfg["searches"]);
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        causes.push((
            format!("{p}.searches"),
            format!(
                "Invalid value: {}: must not have more than {MAX_DNS_SEARCH_PATHS} search paths",
                go_strings(&cfg["searches"])
            ),
        ));
    }
    let chars =
        searches.iter().map(|s| str_of(s).len()).sum::<usize>() + searches.len().saturating_sub(1);
    if chars > MAX_DNS_SEARCH_CHARS {
        causes.push((
            format!("{p}.searches"),
            format!(
                "Invalid value: {}: must not have more than {MAX_DNS_SEARCH_CHARS} characters (including spaces) in the search list",
                go_strings(&cfg["searches"])
            ),
        ));
    }
    for (i, s) in searches.iter().enumerate() {
        let name = str_of(s).strip_suffix('.').unwrap_or(str_of(s));
        for m in v::dns1123_subdomain(name) {
            invalid(format!("{p}.searches[{i}]"), &json!(name), &m, causes);
        }
    }
    for (i, o) in arr(&cfg["options"]).iter().enumerate() {
        if str_of(&o["name"]).is_empty() {
            causes.push((
                format!("{p}.options[{i}]"),
                "Required value: must not be empty".into(),
            ));
        }
    }
}

/// Upstream ValidatePodSpec (the parts this server's kinds exercise).
pub fn validate_pod_spec(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let volumes = validate_volumes(spec, path, causes);
    if arr(&spec["containers"]).is_empty() {
        required(format!("{path}.containers"), causes);
    }
    let mut names = BTreeSet::new();
    validate_containers(
        spec,
        path,
        "initContainers",
        ContainerKind::Init,
        &volumes,
        &mut names,
        causes,
    );
    validate_containers(
        spec,
        path,
        "containers",
        ContainerKind::Regular,
        &volumes,
        &mut names,
        causes,
    );
    validate_ephemeral_containers(spec, path, &volumes, &mut names, causes);
    if let Some(rp) = spec["restartPolicy"].as_str() {
        let ok = ["Always", "OnFailure", "Never"];
        if !ok.contains(&rp) {
            unsupported(format!("{path}.restartPolicy"), rp, &ok, causes);
        }
    }
    if let Some(dp) = spec["dnsPolicy"].as_str() {
        // Upstream lists them sorted.
        let ok = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
        if !ok.contains(&dp) {
            unsupported(format!("{path}.dnsPolicy"), dp, &ok, causes);
        }
    }
    validate_dns_config(spec, path, causes);
    if let Some(sel) = spec["nodeSelector"].as_object() {
        for (k, val) in sel {
            for m in v::qualified_name(k) {
                invalid(format!("{path}.nodeSelector"), &json!(k), &m, causes);
            }
            for m in v::label_value(str_of(val)) {
                invalid(format!("{path}.nodeSelector"), val, &m, causes);
            }
        }
    }
    if let Some(sa) = spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        for m in super::name_errors(super::NameRule::Subdomain, sa) {
            invalid(format!("{path}.serviceAccountName"), &json!(sa), &m, causes);
        }
    }
    if let Some(n) = spec["activeDeadlineSeconds"].as_i64() {
        for m in v::inclusive_range(n, 1, MAX_INT32) {
            invalid(
                format!("{path}.activeDeadlineSeconds"),
                &json!(n),
                &m,
                causes,
            );
        }
    }
    for f in ["hostname", "subdomain"] {
        if let Some(h) = spec[f].as_str().filter(|s| !s.is_empty()) {
            for m in v::dns1123_label(h) {
                invalid(format!("{path}.{f}"), &json!(h), &m, causes);
            }
        }
    }
    validate_tolerations(spec, path, causes);
    for f in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(n) = spec["securityContext"][f].as_i64() {
            for m in v::inclusive_range(n, 0, MAX_INT32) {
                invalid(format!("{path}.securityContext.{f}"), &json!(n), &m, causes);
            }
        }
    }
}

/// Quantities in a pod spec must parse (upstream refuses them while decoding, with a 400).
pub fn check_quantities(spec: &Value) -> Result<(), String> {
    const MSG: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    let bad = |q: &Value| match q {
        Value::String(s) => quantity::parse_milli(s).is_none(),
        Value::Number(_) | Value::Null => false,
        _ => true,
    };
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        for c in arr(&spec[field]) {
            for section in ["limits", "requests"] {
                if let Some(m) = c["resources"][section].as_object() {
                    if m.values().any(bad) {
                        return Err(MSG.into());
                    }
                }
            }
        }
    }
    if let Some(m) = spec["overhead"].as_object() {
        if m.values().any(bad) {
            return Err(MSG.into());
        }
    }
    for vol in arr(&spec["volumes"]) {
        if bad(&vol["emptyDir"]["sizeLimit"]) {
            return Err(MSG.into());
        }
    }
    Ok(())
}

const UPDATABLE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Same toleration, ignoring `tolerationSeconds` (which an update may change).
fn same_toleration(a: &Value, b: &Value) -> bool {
    let norm = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
            if m.get("operator").and_then(Value::as_str) == Some("") {
                m.remove("operator");
            }
            m.retain(|_, v| !v.is_null() && v.as_str() != Some(""));
        }
        t
    };
    norm(a) == norm(b)
}

/// The first differing paths between two JSON values (for the Forbidden message's diff).
fn diff_paths(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if out.len() >= 5 || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff_paths(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_paths(&format!("{path}[{i}]"), p, q, out);
            }
        }
        _ => out.push(format!("{path}: {a} -> {b}")),
    }
}

/// Upstream ValidatePodUpdate: only images, activeDeadlineSeconds, added tolerations, a
/// negative terminationGracePeriodSeconds set to 1, and removed scheduling gates may change.
pub fn validate_pod_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let (os, ns) = (&old["spec"], &new["spec"]);
    let mut munged = ns.clone();
    // activeDeadlineSeconds: may be set, or lowered; never removed.
    match (
        os["activeDeadlineSeconds"].as_i64(),
        ns["activeDeadlineSeconds"].as_i64(),
    ) {
        (Some(o), Some(n)) if n > o => {
            invalid(
                "spec.activeDeadlineSeconds".into(),
                &json!(n),
                "must be less than or equal to previous value",
                causes,
            );
            return;
        }
        (Some(_), None) => {
            invalid(
                "spec.activeDeadlineSeconds".into(),
                &Value::Null,
                "must not update from a positive integer to nil value",
                causes,
            );
            return;
        }
        _ => {}
    }
    // Tolerations: the old ones must all still be there (their tolerationSeconds may change).
    let new_tols = arr(&ns["tolerations"]);
    for old_t in arr(&os["tolerations"]) {
        if !new_tols.iter().any(|t| same_toleration(t, old_t)) {
            causes.push((
                "spec.tolerations".into(),
                "Forbidden: existing toleration can not be modified except its tolerationSeconds"
                    .into(),
            ));
            return;
        }
    }
    // Scheduling gates may only be removed.
    let old_gates: BTreeSet<&str> = arr(&os["schedulingGates"])
        .iter()
        .map(|g| str_of(&g["name"]))
        .collect();
    for g in arr(&ns["schedulingGates"]) {
        let n = str_of(&g["name"]);
        if !old_gates.contains(n) {
            causes.push((
                "spec.schedulingGates".into(),
                format!("Forbidden: only deletion is allowed, but found new scheduling gate '{n}'"),
            ));
            return;
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for f in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            match os.get(f) {
                Some(v) => m.insert(f.to_string(), v.clone()),
                None => m.remove(f),
            };
        }
        let old_grace = os["terminationGracePeriodSeconds"].as_i64();
        if old_grace.is_some_and(|g| g < 0)
            && ns["terminationGracePeriodSeconds"].as_i64() == Some(1)
        {
            m.insert("terminationGracePeriodSeconds".into(), json!(old_grace));
        }
    }
    for field in ["containers", "initContainers"] {
        let olds = arr(&os[field]);
        if let Some(cs) = munged.get_mut(field).and_then(Value::as_array_mut) {
            for (i, c) in cs.iter_mut().enumerate() {
                if let Some(o) = olds.get(i) {
                    c["image"] = o["image"].clone();
                }
            }
        }
    }
    // Compared with absent and null alike (both mean unset).
    let mut diffs = Vec::new();
    diff_paths("spec", os, &munged, &mut diffs);
    if !diffs.is_empty() {
        causes.push((
            "spec".into(),
            format!("Forbidden: {UPDATABLE}\n{}", diffs.join("\n")),
        ));
    }
    // An image may change, but not to nothing.
    for field in ["containers", "initContainers"] {
        for (i, c) in arr(&ns[field]).iter().enumerate() {
            if str_of(&c["image"]).trim().is_empty() {
                required(format!("spec.{field}[{i}].image"), causes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(spec: Value) -> Vec<Cause> {
        let mut c = Vec::new();
        validate_pod_spec(&spec, "spec", &mut c);
        c
    }

    fn one(spec: Value) -> (String, String) {
        let c = errs(spec);
        assert_eq!(c.len(), 1, "{c:?}");
        c.into_iter().next().unwrap()
    }

    #[test]
    fn a_good_spec_passes() {
        let c = errs(json!({
            "volumes": [
                {"name": "cfg", "configMap": {"name": "c", "items": [{"key": "a", "path": "x/a"}], "defaultMode": 0o644}},
                {"name": "tok", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}},
                {"name": "d", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}}]}},
                {"name": "e", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}
            ],
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{
                "name": "app", "image": "nginx",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CFG_"}],
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "tok", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi", "example.com/gpu": "1"}},
                "readinessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 5, "successThreshold": 2},
                "livenessProbe": {"tcpSocket": {"port": 80}}
            }],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}, {"operator": "Exists"}],
            "nodeSelector": {"kubernetes.io/os": "linux"}
        }));
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn volumes() {
        let (f, m) =
            one(json!({"volumes": [{"name": "a"}], "containers": [{"name": "c", "image": "i"}]}));
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.volumes[0]",
                "Required value: must specify a volume type"
            )
        );
        let (f, m) = one(
            json!({"volumes": [{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.volumes[0].emptyDir",
                "Forbidden: may not specify more than 1 volume type"
            )
        );
        let (f, m) = one(
            json!({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            ("spec.volumes[1].name", "Duplicate value: \"a\"")
        );
        let (f, m) = one(
            json!({"volumes": [{"name": "a", "secret": {"secretName": "s", "items": [{"key": "k", "path": "../x"}]}}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.volumes[0].secret.items[0].path",
                "Invalid value: \"../x\": must not contain '..'"
            )
        );
        let (f, m) = one(
            json!({"volumes": [{"name": "a", "configMap": {"name": "c", "defaultMode": 4096}}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.volumes[0].configMap.defaultMode",
                "Invalid value: 4096: must be a number between 0 and 0777 (octal), both inclusive"
            )
        );
        let (f, m) = one(
            json!({"volumes": [{"name": "a", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}}]}}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(f, "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath");
        assert!(
            m.starts_with(
                "Unsupported value: \"spec.nodeName\": supported values: \"metadata.annotations\""
            ),
            "{m}"
        );
        let (f, m) = one(
            json!({"volumes": [{"name": "a", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 60}}]}}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds",
                "Invalid value: 60: may not specify a duration less than 10 minutes"
            )
        );
        let c = errs(json!({"volumes": [{"name": "a", "projected": {"sources": [
            {"serviceAccountToken": {"path": "t"}}, {"secret": {"name": "s", "items": [{"key": "k", "path": "t"}]}}]}}],
            "containers": [{"name": "c", "image": "i"}]}));
        assert!(
            c.iter()
                .any(|(_, m)| m.ends_with("conflicting duplicate paths")),
            "{c:?}"
        );
    }

    #[test]
    fn containers() {
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].volumeMounts[0].name",
                "Not found: \"nope\""
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 0}]}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].ports[0].containerPort",
                "Invalid value: 0: must be between 1 and 65535, inclusive"
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].ports[0].protocol",
                "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "env": [{"name": "1A", "value": "x"}]}]}),
        );
        assert_eq!(f, "spec.containers[0].env[0].name");
        assert!(
            m.starts_with("Invalid value: \"1A\": a valid environment variable name"),
            "{m}"
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].env[0].valueFrom",
                "Invalid value: \"\": may not be specified when `value` is not empty"
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].resources.requests",
                "Invalid value: \"2\": must be less than or equal to cpu limit of 1"
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "resources": {"limits": {"gpu": "1"}}}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].resources.limits[gpu]",
                "Invalid value: \"gpu\": must be a standard resource type or fully qualified"
            )
        );
        let (f, m) = one(
            json!({"initContainers": [{"name": "c", "image": "i"}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            ("spec.containers[0].name", "Duplicate value: \"c\"")
        );
        let (f, m) = one(
            json!({"initContainers": [{"name": "i", "image": "i", "readinessProbe": {"exec": {"command": ["true"]}}}], "containers": [{"name": "c", "image": "i"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.initContainers[0].readinessProbe",
                "Forbidden: may not be set for init containers without restartPolicy=Always"
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "livenessProbe": {"periodSeconds": 3}}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].livenessProbe",
                "Required value: must specify a handler type"
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i", "livenessProbe": {"exec": {"command": ["x"]}, "successThreshold": 2}}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.containers[0].livenessProbe.successThreshold",
                "Invalid value: 2: must be 1"
            )
        );
        let (f, _) = one(
            json!({"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "v", "mountPath": "/a"}, {"name": "v", "mountPath": "/a"}]}], "volumes": [{"name": "v", "emptyDir": {}}]}),
        );
        assert_eq!(f, "spec.containers[0].volumeMounts[1].mountPath");
    }

    #[test]
    fn dns_policy_and_config() {
        let base = |extra: Value| {
            let mut s = json!({"containers": [{"name": "c", "image": "i"}]});
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            s
        };
        assert!(errs(base(
            json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"],
            "searches": ["a.example."], "options": [{"name": "ndots", "value": "2"}]}})
        ))
        .is_empty());
        let (f, m) = one(base(json!({"dnsPolicy": "Sometimes"})));
        assert_eq!(
            (f.as_str(), m.as_str()),
            ("spec.dnsPolicy", "Unsupported value: \"Sometimes\": supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"")
        );
        let (f, m) = one(base(
            json!({"dnsPolicy": "None", "dnsConfig": {"searches": ["a"]}}),
        ));
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.dnsConfig.nameservers",
                "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"
            )
        );
        let (f, m) = one(base(
            json!({"dnsConfig": {"nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]}}),
        ));
        assert_eq!(
            (f.as_str(), m.as_str()),
            ("spec.dnsConfig.nameservers", "Invalid value: []string{\"1.1.1.1\", \"1.1.1.2\", \"1.1.1.3\", \"1.1.1.4\"}: must not have more than 3 nameservers")
        );
        let (f, m) = one(base(json!({"dnsConfig": {"nameservers": ["dns.example"]}})));
        assert_eq!(
            (f.as_str(), m.as_str()),
            ("spec.dnsConfig.nameservers[0]", "Invalid value: \"dns.example\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        );
        let many: Vec<String> = (0..33).map(|i| format!("s{i}")).collect();
        let (f, m) = one(base(json!({"dnsConfig": {"searches": many}})));
        assert_eq!(f, "spec.dnsConfig.searches");
        assert!(
            m.ends_with("must not have more than 32 search paths"),
            "{m}"
        );
        let long: Vec<String> = (0..11)
            .map(|i| format!("{i}{}", "x".repeat(62)))
            .map(|l| format!("{l}.{l}.{l}.example"))
            .collect();
        let (f, m) = one(base(json!({"dnsConfig": {"searches": long}})));
        assert_eq!(f, "spec.dnsConfig.searches");
        assert!(
            m.ends_with(
                "must not have more than 2048 characters (including spaces) in the search list"
            ),
            "{m}"
        );
        let (f, _) = one(base(json!({"dnsConfig": {"searches": ["Bad_Search"]}})));
        assert_eq!(f, "spec.dnsConfig.searches[0]");
        let (f, m) = one(base(json!({"dnsConfig": {"options": [{"value": "1"}]}})));
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.dnsConfig.options[0]",
                "Required value: must not be empty"
            )
        );
    }

    #[test]
    fn pod_level_fields() {
        let (f, m) = one(json!({"containers": [{"name": "c", "image": "i"}], "dnsPolicy": "None"}));
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.dnsConfig",
                "Required value: must provide `dnsConfig` when `dnsPolicy` is None"
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}),
        );
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.tolerations[0].operator",
                "Invalid value: \"v\": value must be empty when `operator` is 'Exists'"
            )
        );
        let (f, m) = one(
            json!({"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "k", "value": "v", "effect": "NoSchedule", "tolerationSeconds": 5}]}),
        );
        assert_eq!((f.as_str(), m.as_str()), ("spec.tolerations[0].effect", "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"));
        let (f, m) =
            one(json!({"containers": [{"name": "c", "image": "i"}], "activeDeadlineSeconds": 0}));
        assert_eq!(
            (f.as_str(), m.as_str()),
            (
                "spec.activeDeadlineSeconds",
                "Invalid value: 0: must be between 1 and 2147483647, inclusive"
            )
        );
        let (f, _) = one(
            json!({"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"bad key!": "v"}}),
        );
        assert_eq!(f, "spec.nodeSelector");
    }

    #[test]
    fn quantities_must_parse() {
        assert!(check_quantities(
            &json!({"containers": [{"resources": {"limits": {"cpu": "1.5", "memory": "1Gi"}}}]})
        )
        .is_ok());
        let e =
            check_quantities(&json!({"containers": [{"resources": {"limits": {"cpu": "abc"}}}]}))
                .unwrap_err();
        assert!(
            e.starts_with("quantities must match the regular expression"),
            "{e}"
        );
        assert!(
            check_quantities(&json!({"volumes": [{"emptyDir": {"sizeLimit": "1x"}}]})).is_err()
        );
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    fn update(old: Value, new: Value) -> Vec<Cause> {
        let mut c = Vec::new();
        validate_pod_update(&pod(old), &pod(new), &mut c);
        c
    }

    #[test]
    fn pod_updates() {
        let base = json!({"containers": [{"name": "c", "image": "a", "env": [{"name": "A", "value": "1"}]}],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]});
        // Image changes, added tolerations, changed tolerationSeconds, a set deadline: allowed.
        let mut ok = base.clone();
        ok["containers"][0]["image"] = json!("b");
        ok["tolerations"] = json!([{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}, {"key": "x", "operator": "Exists"}]);
        ok["activeDeadlineSeconds"] = json!(30);
        let c = update(base.clone(), ok.clone());
        assert!(c.is_empty(), "{c:?}");
        // Anything else: Forbidden with upstream's message.
        let mut env = base.clone();
        env["containers"][0]["env"][0]["value"] = json!("2");
        let c = update(base.clone(), env);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "spec");
        assert!(c[0].1.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`"), "{}", c[0].1);
        assert!(
            c[0].1.contains("spec.containers[0].env[0].value"),
            "{}",
            c[0].1
        );
        let mut node = base.clone();
        node["nodeName"] = json!("n1");
        assert_eq!(update(base.clone(), node).len(), 1);
        // Removing a toleration.
        let mut fewer = base.clone();
        fewer["tolerations"] = json!([]);
        assert_eq!(
            update(base.clone(), fewer)[0].1,
            "Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );
        // The deadline may only go down, and never away.
        let up = update(ok.clone(), {
            let mut x = ok.clone();
            x["activeDeadlineSeconds"] = json!(60);
            x
        });
        assert_eq!(
            up[0],
            (
                "spec.activeDeadlineSeconds".to_string(),
                "Invalid value: 60: must be less than or equal to previous value".to_string()
            )
        );
        let gone = update(ok.clone(), {
            let mut x = ok.clone();
            x.as_object_mut().unwrap().remove("activeDeadlineSeconds");
            x
        });
        assert_eq!(
            gone[0].1,
            "Invalid value: \"null\": must not update from a positive integer to nil value"
        );
        // Scheduling gates: removal only.
        let gated = json!({"containers": [{"name": "c", "image": "a"}], "schedulingGates": [{"name": "g1"}]});
        let mut ungated = gated.clone();
        ungated["schedulingGates"] = json!([]);
        assert!(update(gated.clone(), ungated).is_empty());
        let mut more = gated.clone();
        more["schedulingGates"] = json!([{"name": "g1"}, {"name": "g2"}]);
        assert_eq!(
            update(gated, more)[0].1,
            "Forbidden: only deletion is allowed, but found new scheduling gate 'g2'"
        );
    }
}
