//! PersistentVolumes and PersistentVolumeClaims (pkg/registry/core/persistentvolume and
//! persistentvolumeclaim, their validation in pkg/apis/core/validation), with the admission
//! plugins that touch them: `DefaultStorageClass` (a claim without a class gets the default),
//! `StorageObjectInUseProtection` (the protection finalizers) and `PersistentVolumeClaimResize`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_apimachinery::quantity::value_milli;
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, name_errors, Cause, Column, NameRule, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{get_object, Ctx};
use crate::resources::{ResourceDef, Subresource::Status};
use crate::table::s;
use crate::typed::{default_key, obj_mut};

/// The finalizer keeping a claim a pod uses (removed by the pvc-protection controller).
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// The finalizer keeping a volume bound to a claim (removed by the pv-protection controller).
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

pub use daas_protocol::localpath::{
    local_path_node, CLEANUP_FINALIZER, HOSTNAME_LABEL, LOCAL_PATH_PREFIX,
};

#[derive(Debug)]
pub struct PersistentVolumeStrategy;

#[derive(Debug)]
pub struct PersistentVolumeClaimStrategy;

/// The REST shape of PersistentVolumes, with their strategy.
pub const PERSISTENT_VOLUMES: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "PersistentVolume",
    list_kind: "PersistentVolumeList",
    plural: "persistentvolumes",
    singular: "persistentvolume",
    namespaced: false,
    short_names: &["pv"],
    categories: &[],
    subresources: &[Status],
    has_spec: false,
    strategy: &PersistentVolumeStrategy,
};

/// The REST shape of PersistentVolumeClaims, with their strategy.
pub const PERSISTENT_VOLUME_CLAIMS: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "PersistentVolumeClaim",
    list_kind: "PersistentVolumeClaimList",
    plural: "persistentvolumeclaims",
    singular: "persistentvolumeclaim",
    namespaced: true,
    short_names: &["pvc"],
    categories: &[],
    subresources: &[Status],
    has_spec: false,
    strategy: &PersistentVolumeClaimStrategy,
};

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: [&str; 2] = ["Block", "Filesystem"];
const PV_RECLAIM_POLICIES: [&str; 3] = ["Delete", "Recycle", "Retain"];

/// The volume sources a PersistentVolume may name (`PersistentVolumeSource`), in upstream's order.
pub const PV_SOURCES: [&str; 22] = [
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn supported(list: &[&str]) -> String {
    list.iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Upstream `ValidatePersistentVolumeSpec`'s / claim spec's access mode rules.
fn validate_access_modes(modes: &Value, path: &str, required_msg: &str, causes: &mut Vec<Cause>) {
    let list: Vec<String> = modes
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    if list.is_empty() {
        causes.push((path.into(), required_msg.into()));
    }
    for m in &list {
        if !ACCESS_MODES.contains(&m.as_str()) {
            causes.push((
                path.into(),
                format!(
                    "Unsupported value: {m:?}: supported values: {}",
                    supported(&ACCESS_MODES)
                ),
            ));
        }
    }
    if list.len() > 1 && list.iter().any(|m| m == "ReadWriteOncePod") {
        causes.push((
            path.into(),
            format!(
                "Forbidden: may not use ReadWriteOncePod with other access modes: {}",
                list.join(", ")
            ),
        ));
    }
}

fn validate_volume_mode(mode: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(m) = mode.as_str() {
        if !VOLUME_MODES.contains(&m) {
            causes.push((
                path.into(),
                format!(
                    "Unsupported value: {m:?}: supported values: {}",
                    supported(&VOLUME_MODES)
                ),
            ));
        }
    }
}

fn validate_class_name(name: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(n) = name.as_str().filter(|n| !n.is_empty()) {
        for msg in name_errors(NameRule::Subdomain, n) {
            causes.push((path.into(), format!("Invalid value: {n:?}: {msg}")));
        }
    }
}

/// A path must not step out with `..` (upstream `validatePathNoBacksteps`).
fn validate_no_backsteps(p: &str, path: &str, causes: &mut Vec<Cause>) {
    if p.split('/').any(|part| part == "..") {
        causes.push((
            path.into(),
            format!("Invalid value: {p:?}: must not contain '..'"),
        ));
    }
}

/// The storage request of a claim, in milli-units.
pub fn claim_request(pvc: &Value) -> Option<i128> {
    value_milli(&pvc["spec"]["resources"]["requests"]["storage"])
}

impl Strategy for PersistentVolumeStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::PersistentVolume>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        default_key(spec, "volumeMode", json!("Filesystem"));
        let status = obj_mut(obj, "status");
        default_key(status, "phase", json!("Pending"));
    }

    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
        add_finalizer(obj, PV_PROTECTION);
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        validate_access_modes(
            &spec["accessModes"],
            "spec.accessModes",
            "Required value",
            causes,
        );
        match spec["capacity"].as_object() {
            None => causes.push(("spec.capacity".into(), "Required value".into())),
            Some(c) if c.is_empty() => {
                causes.push(("spec.capacity".into(), "Required value".into()))
            }
            Some(c) => {
                for (k, q) in c {
                    if k != "storage" {
                        causes.push((
                            "spec.capacity".into(),
                            format!("Unsupported value: {k:?}: supported values: \"storage\""),
                        ));
                    } else if value_milli(q).is_some_and(|m| m < 0) {
                        causes.push((
                            format!("spec.capacity[{k}]"),
                            format!(
                                "Invalid value: {:?}: must be greater than or equal to 0",
                                s(q)
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(p) = spec["persistentVolumeReclaimPolicy"].as_str() {
            if !PV_RECLAIM_POLICIES.contains(&p) {
                causes.push((
                    "spec.persistentVolumeReclaimPolicy".into(),
                    format!(
                        "Unsupported value: {p:?}: supported values: {}",
                        supported(&PV_RECLAIM_POLICIES)
                    ),
                ));
            }
        }
        validate_class_name(&spec["storageClassName"], "spec.storageClassName", causes);
        validate_volume_mode(&spec["volumeMode"], "spec.volumeMode", causes);
        let sources: Vec<&str> = PV_SOURCES
            .iter()
            .copied()
            .filter(|k| spec[*k].is_object())
            .collect();
        match sources.as_slice() {
            [] => causes.push((
                "spec".into(),
                "Required value: must specify a volume type".into(),
            )),
            [_] => {}
            [_, rest @ ..] => {
                for k in rest {
                    causes.push((
                        format!("spec.{k}"),
                        "Forbidden: may not specify more than 1 volume type".into(),
                    ));
                }
            }
        }
        if spec["hostPath"].is_object() {
            let p = spec["hostPath"]["path"].as_str().unwrap_or("");
            if p.is_empty() {
                causes.push(("spec.hostPath.path".into(), "Required value".into()));
            }
            validate_no_backsteps(p, "spec.hostPath.path", causes);
            if p == "/" && spec["persistentVolumeReclaimPolicy"] == "Recycle" {
                causes.push((
                    "spec.persistentVolumeReclaimPolicy".into(),
                    "Forbidden: may not be 'recycle' for a hostPath mount of '/'".into(),
                ));
            }
        }
        if spec["local"].is_object() {
            let p = spec["local"]["path"].as_str().unwrap_or("");
            if p.is_empty() {
                causes.push(("spec.local.path".into(), "Required value".into()));
            }
            validate_no_backsteps(p, "spec.local.path", causes);
            if spec["nodeAffinity"].is_null() {
                causes.push((
                    "spec.nodeAffinity".into(),
                    "Required value: Local volume requires node affinity".into(),
                ));
            }
        }
        if spec["nodeAffinity"].is_object() {
            let terms = &spec["nodeAffinity"]["required"]["nodeSelectorTerms"];
            if spec["nodeAffinity"]["required"].is_null() {
                causes.push((
                    "spec.nodeAffinity.required".into(),
                    "Required value: must specify required node constraints".into(),
                ));
            } else if terms.as_array().is_none_or(|t| t.is_empty()) {
                causes.push((
                    "spec.nodeAffinity.required.nodeSelectorTerms".into(),
                    "Required value: must have at least one node selector term".into(),
                ));
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        // Upstream: the volume source may not change, nor node affinity once set, nor the mode.
        for k in PV_SOURCES {
            if old["spec"][k] != new["spec"][k] {
                causes.push((
                    "spec.persistentvolumesource".into(),
                    "Forbidden: spec.persistentvolumesource is immutable after creation".into(),
                ));
                break;
            }
        }
        if old["spec"]["volumeMode"] != new["spec"]["volumeMode"] {
            causes.push((
                "spec.volumeMode".into(),
                format!(
                    "Invalid value: {:?}: field is immutable",
                    s(&new["spec"]["volumeMode"])
                ),
            ));
        }
        if !old["spec"]["nodeAffinity"].is_null()
            && old["spec"]["nodeAffinity"] != new["spec"]["nodeAffinity"]
        {
            causes.push((
                "spec.nodeAffinity".into(),
                "Invalid value: \"\": field is immutable".into(),
            ));
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Capacity", "", 0),
            ("Access Modes", "", 0),
            ("Reclaim Policy", "", 0),
            ("Status", "", 0),
            ("Claim", "", 0),
            ("StorageClass", "", 0),
            ("Reason", "", 0),
            AGE,
            ("VolumeMode", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let spec = &o["spec"];
        let claim = match spec["claimRef"]["name"].as_str() {
            Some(n) => format!("{}/{n}", s(&spec["claimRef"]["namespace"])),
            None => String::new(),
        };
        vec![
            name,
            json!(s(&spec["capacity"]["storage"])),
            json!(access_modes_short(&spec["accessModes"])),
            json!(s(&spec["persistentVolumeReclaimPolicy"])),
            json!(s(&o["status"]["phase"])),
            json!(claim),
            json!(s(&spec["storageClassName"])),
            json!(s(&o["status"]["reason"])),
            created,
            json!(s(&spec["volumeMode"])),
        ]
    }
}

/// kubectl's short access modes (`RWO,ROX,RWX,RWOP`).
pub fn access_modes_short(modes: &Value) -> String {
    let mut out = Vec::new();
    for (long, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if modes
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m == long))
        {
            out.push(short);
        }
    }
    out.join(",")
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let md = obj_mut(obj, "metadata");
    let list = md.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(a) = list.as_array_mut() {
        if !a.iter().any(|x| x == f) {
            a.push(json!(f));
        }
    }
}

/// The claim spec as compared for immutability: what the binder and the default class
/// admission may fill in once (volumeName, storageClassName) and the requests left out.
fn comparable_claim_spec(old: &Value, new: &Value) -> (Value, Value) {
    let mut o = old["spec"].clone();
    let mut n = new["spec"].clone();
    for f in ["volumeName", "storageClassName"] {
        if o[f].as_str().is_none_or(|v| v.is_empty()) {
            if let Some(m) = o.as_object_mut() {
                match n.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
        }
    }
    for spec in [&mut o, &mut n] {
        if let Some(r) = spec["resources"].as_object_mut() {
            r.remove("requests");
        }
        if let Some(m) = spec.as_object_mut() {
            m.remove("volumeAttributesClassName");
        }
    }
    (o, n)
}

#[async_trait]
impl Strategy for PersistentVolumeClaimStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::PersistentVolumeClaim>(obj)
    }

    fn defaults(&self, obj: &mut Value) {
        let spec = obj_mut(obj, "spec");
        default_key(spec, "volumeMode", json!("Filesystem"));
        let status = obj_mut(obj, "status");
        default_key(status, "phase", json!("Pending"));
    }

    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
        add_finalizer(obj, PVC_PROTECTION);
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        validate_access_modes(
            &spec["accessModes"],
            "spec.accessModes",
            "Required value: at least 1 access mode is required",
            causes,
        );
        let storage = &spec["resources"]["requests"]["storage"];
        match value_milli(storage) {
            None if storage.is_null() => {
                causes.push(("spec.resources[storage]".into(), "Required value".into()))
            }
            Some(m) if m <= 0 => causes.push((
                "spec.resources[storage]".into(),
                format!("Invalid value: {:?}: must be greater than zero", s(storage)),
            )),
            _ => {}
        }
        validate_class_name(&spec["storageClassName"], "spec.storageClassName", causes);
        validate_volume_mode(&spec["volumeMode"], "spec.volumeMode", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        let (o, n) = comparable_claim_spec(old, new);
        if o != n {
            causes.push((
                "spec".into(),
                "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into(),
            ));
        }
        if let (Some(was), Some(now)) = (claim_request(old), claim_request(new)) {
            if now < was {
                causes.push((
                    "spec.resources.requests.storage".into(),
                    "Forbidden: field can not be less than previous value".into(),
                ));
            } else if now > was && old["status"]["phase"] != "Bound" {
                causes.push((
                    "spec".into(),
                    "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims".into(),
                ));
            }
        }
    }

    /// `DefaultStorageClass`: a claim created without `storageClassName` gets the default class.
    async fn allocate(&self, ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
        if obj["spec"]["storageClassName"].is_null() {
            if let Some(class) = super::storageclass::default_class(ctx).await? {
                obj["spec"]["storageClassName"] = json!(class);
            }
        }
        Ok(())
    }

    /// `PersistentVolumeClaimResize`: a bigger request needs a class allowing expansion.
    async fn admit(&self, ctx: &Ctx, old: Option<&Value>, new: &Value) -> ApiResult<()> {
        let Some(old) = old else { return Ok(()) };
        let (Some(was), Some(now)) = (claim_request(old), claim_request(new)) else {
            return Ok(());
        };
        if now <= was {
            return Ok(());
        }
        let name = s(&new["metadata"]["name"]);
        let class = s(&new["spec"]["storageClassName"]);
        let allows = if class.is_empty() {
            false
        } else {
            match get_object(ctx, &super::storageclass::RESOURCE, None, &class).await {
                Ok((sc, _)) => sc["allowVolumeExpansion"].as_bool() == Some(true),
                Err(e) if e.code == 404 => false,
                Err(e) => return Err(e),
            }
        };
        if !allows {
            return Err(ApiError::forbidden(format!(
                "persistentvolumeclaims \"{name}\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
            ))
            .with_details(json!({"name": name, "kind": "persistentvolumeclaims"})));
        }
        Ok(())
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Status", "", 0),
            ("Volume", "", 0),
            ("Capacity", "", 0),
            ("Access Modes", "", 0),
            ("StorageClass", "", 0),
            AGE,
            ("VolumeMode", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let spec = &o["spec"];
        let st = &o["status"];
        vec![
            name,
            json!(s(&st["phase"])),
            json!(s(&spec["volumeName"])),
            json!(s(&st["capacity"]["storage"])),
            json!(access_modes_short(&st["accessModes"])),
            json!(s(&spec["storageClassName"])),
            created,
            json!(s(&spec["volumeMode"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv_causes(obj: &Value) -> Vec<Cause> {
        let mut o = obj.clone();
        PersistentVolumeStrategy.defaults(&mut o);
        let mut c = Vec::new();
        PersistentVolumeStrategy.validate(&o, &mut c);
        c
    }

    fn pvc_causes(obj: &Value) -> Vec<Cause> {
        let mut o = obj.clone();
        PersistentVolumeClaimStrategy.defaults(&mut o);
        let mut c = Vec::new();
        PersistentVolumeClaimStrategy.validate(&o, &mut c);
        c
    }

    fn fields(c: &[Cause]) -> Vec<&str> {
        c.iter().map(|c| c.0.as_str()).collect()
    }

    #[test]
    fn pv_defaults() {
        let mut pv = json!({"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"hostPath":{"path":"/d"}}});
        PersistentVolumeStrategy.prepare_create(&mut pv);
        PersistentVolumeStrategy.defaults(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["status"]["phase"], "Pending");
        assert_eq!(pv["metadata"]["finalizers"], json!([PV_PROTECTION]));
        assert!(pv_causes(&pv).is_empty());
    }

    #[test]
    fn pv_needs_modes_capacity_and_exactly_one_source() {
        let c = pv_causes(&json!({"spec":{}}));
        assert_eq!(
            c,
            vec![
                ("spec.accessModes".to_string(), "Required value".to_string()),
                ("spec.capacity".to_string(), "Required value".to_string()),
                (
                    "spec".to_string(),
                    "Required value: must specify a volume type".to_string()
                ),
            ]
        );
        let c = pv_causes(
            &json!({"spec":{"capacity":{"storage":"1Gi","cpu":"1"},"accessModes":["ReadWriteOnce","Sometimes"],
            "hostPath":{"path":"/a/../etc"},"nfs":{"server":"s","path":"/"}}}),
        );
        assert_eq!(
            fields(&c),
            vec![
                "spec.accessModes",
                "spec.capacity",
                "spec.nfs",
                "spec.hostPath.path"
            ]
        );
        assert_eq!(
            c[3].1,
            "Invalid value: \"/a/../etc\": must not contain '..'"
        );
        let c = pv_causes(
            &json!({"spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"local":{"path":"/x"}}}),
        );
        assert_eq!(
            c,
            vec![(
                "spec.nodeAffinity".to_string(),
                "Required value: Local volume requires node affinity".to_string()
            )]
        );
    }

    #[test]
    fn pvc_validation_messages() {
        let c = pvc_causes(&json!({"spec":{}}));
        assert_eq!(
            c,
            vec![
                (
                    "spec.accessModes".to_string(),
                    "Required value: at least 1 access mode is required".to_string()
                ),
                (
                    "spec.resources[storage]".to_string(),
                    "Required value".to_string()
                ),
            ]
        );
        let c = pvc_causes(
            &json!({"spec":{"accessModes":["ReadWriteOncePod","ReadWriteOnce"],"resources":{"requests":{"storage":"0"}},"volumeMode":"Raw"}}),
        );
        assert_eq!(
            fields(&c),
            vec![
                "spec.accessModes",
                "spec.resources[storage]",
                "spec.volumeMode"
            ]
        );
        assert_eq!(c[1].1, "Invalid value: \"0\": must be greater than zero");
    }

    #[test]
    fn pvc_spec_is_immutable_but_may_be_bound_and_grown() {
        let old = json!({"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"volumeMode":"Filesystem"},
            "status":{"phase":"Bound"}});
        let check = |new: &Value| {
            let mut c = Vec::new();
            PersistentVolumeClaimStrategy.validate_update(&old, new, &mut c);
            c
        };
        let mut bound = old.clone();
        bound["spec"]["volumeName"] = json!("pv-1");
        bound["spec"]["storageClassName"] = json!("local-path");
        assert!(check(&bound).is_empty());
        let mut grown = old.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(check(&grown).is_empty());
        let mut shrunk = old.clone();
        shrunk["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
        assert_eq!(
            check(&shrunk),
            vec![(
                "spec.resources.requests.storage".to_string(),
                "Forbidden: field can not be less than previous value".to_string()
            )]
        );
        let mut modes = old.clone();
        modes["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let c = check(&modes);
        assert_eq!(c[0].0, "spec");
        assert!(c[0]
            .1
            .starts_with("Forbidden: spec is immutable after creation"));
        // A claim not yet bound may not grow.
        let mut pending = old.clone();
        pending["status"]["phase"] = json!("Pending");
        let mut c = Vec::new();
        PersistentVolumeClaimStrategy.validate_update(&pending, &grown, &mut c);
        assert_eq!(fields(&c), vec!["spec"]);
    }

    #[test]
    fn tables_as_kubectl() {
        let pv = json!({"metadata":{"name":"pv1"},"spec":{"capacity":{"storage":"1Gi"},
            "accessModes":["ReadWriteOnce","ReadOnlyMany"],"persistentVolumeReclaimPolicy":"Delete",
            "claimRef":{"namespace":"ns","name":"data"},"storageClassName":"local-path"},
            "status":{"phase":"Bound"}});
        let c = PersistentVolumeStrategy.cells(&pv, Utc::now());
        assert_eq!(
            &c[..8],
            &[
                json!("pv1"),
                json!("1Gi"),
                json!("RWO,ROX"),
                json!("Delete"),
                json!("Bound"),
                json!("ns/data"),
                json!("local-path"),
                json!("")
            ]
        );
        let pvc = json!({"metadata":{"name":"data"},"spec":{"volumeName":"pv1","storageClassName":"local-path"},
            "status":{"phase":"Bound","capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"]}});
        let c = PersistentVolumeClaimStrategy.cells(&pvc, Utc::now());
        assert_eq!(
            &c[..6],
            &[
                json!("data"),
                json!("Bound"),
                json!("pv1"),
                json!("1Gi"),
                json!("RWO"),
                json!("local-path")
            ]
        );
    }
}
