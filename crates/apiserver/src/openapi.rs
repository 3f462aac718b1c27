//! OpenAPI v2 (`/openapi/v2`, JSON and gnostic protobuf) and v3 (`/openapi/v3` index and one
//! document per group/version) with the full schemas of every served kind.
//!
//! The schemas come from k8s-openapi's `schemars` implementations (descriptions, formats and
//! definition names as upstream), rewritten into OpenAPI form: `$ref`s into `#/definitions/`
//! (v2) or `#/components/schemas/` (v3), `x-kubernetes-group-version-kind` on top-level kinds,
//! the strategic-merge-patch extensions of the list fields the server merges by key, and
//! int-or-string / quantity in upstream's spelling. Custom kinds (CRDs) are added at run time
//! with [`set_custom`]; the documents are rebuilt on the next request after a change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use schemars::{generate::SchemaSettings, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::discovery::KUBE_MINOR;
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, Subresource};

/// The media type client-go asks for when it downloads the v2 document.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The content type upstream answers the protobuf v2 document with.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

const V2_PREFIX: &str = "#/definitions/";
const V3_PREFIX: &str = "#/components/schemas/";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// A kind served outside the built-in table (a CustomResourceDefinition version), with its
/// OpenAPI v3 structural schema (`spec.versions[].schema.openAPIV3Schema`).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomKind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// `subresources.status` / `subresources.scale` of the version.
    pub status: bool,
    pub scale: bool,
    pub schema: Value,
}

impl CustomKind {
    /// Definition name as upstream names CRD schemas: reversed group, version, kind
    /// (`com.example.stable.v1.CronTab`).
    pub fn definition_name(&self, kind: &str) -> String {
        let mut parts: Vec<&str> = self.group.split('.').collect();
        parts.reverse();
        format!("{}.{}.{}", parts.join("."), self.version, kind)
    }
}

impl CustomKind {
    /// The versions a CustomResourceDefinition object (apiextensions.k8s.io/v1, JSON) publishes:
    /// every served version once the CRD is Established, each with its
    /// `schema.openAPIV3Schema`. Feed them, for all CRDs, to [`set_custom`].
    pub fn from_crd(crd: &Value) -> Vec<CustomKind> {
        let established = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        let spec = &crd["spec"];
        let (Some(group), Some(kind), Some(plural)) = (
            spec["group"].as_str(),
            spec["names"]["kind"].as_str(),
            spec["names"]["plural"].as_str(),
        ) else {
            return Vec::new();
        };
        if !established {
            return Vec::new();
        }
        let list_kind = spec["names"]["listKind"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{kind}List"));
        spec["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["served"].as_bool().unwrap_or(false))
            .filter_map(|v| {
                Some(CustomKind {
                    group: group.to_string(),
                    version: v["name"].as_str()?.to_string(),
                    kind: kind.to_string(),
                    list_kind: list_kind.clone(),
                    plural: plural.to_string(),
                    namespaced: spec["scope"] == "Namespaced",
                    status: v["subresources"]["status"].is_object(),
                    scale: v["subresources"]["scale"].is_object(),
                    schema: v["schema"]["openAPIV3Schema"].clone(),
                })
            })
            .collect()
    }
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn gen<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

macro_rules! builtin {
    ($($t:ty),* $(,)?) => {
        &[$((
            <$t as k8s_openapi::Resource>::GROUP,
            <$t as k8s_openapi::Resource>::VERSION,
            <$t as k8s_openapi::Resource>::KIND,
            gen::<$t> as SchemaFn,
        )),*]
    };
}

/// Every kind whose schema k8s-openapi provides and that this server serves now or may serve
/// (a kind only appears in the documents when `resources::RESOURCES` serves its group/version).
static BUILTIN: &[(&str, &str, &str, SchemaFn)] = {
    use k8s_openapi::api::*;
    builtin![
        core::v1::Namespace,
        core::v1::Pod,
        core::v1::Node,
        core::v1::Service,
        core::v1::ConfigMap,
        core::v1::Secret,
        core::v1::Event,
        core::v1::ServiceAccount,
        core::v1::Endpoints,
        core::v1::LimitRange,
        core::v1::ReplicationController,
        core::v1::PodTemplate,
        core::v1::ResourceQuota,
        core::v1::PersistentVolume,
        core::v1::PersistentVolumeClaim,
        core::v1::Binding,
        coordination::v1::Lease,
        apps::v1::Deployment,
        apps::v1::ReplicaSet,
        apps::v1::StatefulSet,
        apps::v1::DaemonSet,
        apps::v1::ControllerRevision,
        batch::v1::Job,
        batch::v1::CronJob,
        scheduling::v1::PriorityClass,
        node::v1::RuntimeClass,
        discovery::v1::EndpointSlice,
        events::v1::Event,
        policy::v1::PodDisruptionBudget,
        policy::v1::Eviction,
        autoscaling::v1::Scale,
        autoscaling::v1::HorizontalPodAutoscaler,
        autoscaling::v2::HorizontalPodAutoscaler,
        rbac::v1::Role,
        rbac::v1::ClusterRole,
        rbac::v1::RoleBinding,
        rbac::v1::ClusterRoleBinding,
        authorization::v1::SubjectAccessReview,
        authorization::v1::SelfSubjectAccessReview,
        authorization::v1::LocalSubjectAccessReview,
        authorization::v1::SelfSubjectRulesReview,
        authentication::v1::TokenReview,
        authentication::v1::TokenRequest,
        authentication::v1::SelfSubjectReview,
        certificates::v1::CertificateSigningRequest,
        networking::v1::Ingress,
        networking::v1::IngressClass,
        networking::v1::NetworkPolicy,
        storage::v1::StorageClass,
        storage::v1::CSIDriver,
        storage::v1::CSINode,
        storage::v1::VolumeAttachment,
        admissionregistration::v1::ValidatingWebhookConfiguration,
        admissionregistration::v1::MutatingWebhookConfiguration,
        admissionregistration::v1::ValidatingAdmissionPolicy,
        admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        flowcontrol::v1::FlowSchema,
        flowcontrol::v1::PriorityLevelConfiguration,
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        crate::registry::usage::Usage,
    ]
};

/// Meta kinds every document carries (request and response bodies of the generic operations).
static META_KINDS: &[(&str, SchemaFn)] = {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    &[
        ("Status", gen::<meta::Status> as SchemaFn),
        ("DeleteOptions", gen::<meta::DeleteOptions> as SchemaFn),
        ("WatchEvent", gen::<meta::WatchEvent<()>> as SchemaFn),
        ("Patch", gen::<meta::Patch> as SchemaFn),
        ("ListMeta", gen::<meta::ListMeta> as SchemaFn),
    ]
};

/// `patchStrategy`/`patchMergeKey` struct tags of k8s.io/api and apimachinery for the list
/// fields the server's strategic merge patch merges (see daas_apimachinery::patch), published as
/// `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` as upstream does.
static PATCH_META: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        None,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        Some("uid"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    ("io.k8s.api.core.v1.Container", "env", "merge", Some("name")),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "hostIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        "merge",
        Some("port"),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        "retainKeys",
        None,
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
];

/// The built-in definitions as generated (JSON-Schema form, `#/definitions/` refs), with the
/// names of the top-level kinds. Computed once: it is large.
struct Builtin {
    defs: BTreeMap<String, Value>,
    /// (group, version, kind) -> definition name.
    kinds: BTreeMap<(String, String, String), String>,
}

static BUILTIN_DEFS: LazyLock<Builtin> = LazyLock::new(|| {
    let mut settings = SchemaSettings::draft07();
    settings.meta_schema = None;
    settings.transforms = Vec::new();
    let mut g = SchemaGenerator::new(settings);
    let mut kinds = BTreeMap::new();
    let mut refs: Vec<(String, String, String, Schema)> = Vec::new();
    for (group, version, kind, f) in BUILTIN {
        refs.push((
            group.to_string(),
            version.to_string(),
            kind.to_string(),
            f(&mut g),
        ));
    }
    for (kind, f) in META_KINDS {
        refs.push((String::new(), "v1".into(), kind.to_string(), f(&mut g)));
    }
    let mut defs: BTreeMap<String, Value> = g.take_definitions(false).into_iter().collect();
    for (group, version, kind, schema) in refs {
        let Some(name) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(V2_PREFIX))
        else {
            continue;
        };
        let name = name.to_string();
        if group.is_empty() && version == "v1" && name.starts_with(META) {
            // Meta kinds are shared by every group; upstream lists their GVK per group.
            continue;
        }
        kinds.insert((group, version, kind), name);
    }
    for (def, prop, strategy, key) in PATCH_META {
        if let Some(p) = defs
            .get_mut(*def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*prop))
            .and_then(Value::as_object_mut)
        {
            if let Some(k) = key {
                p.insert("x-kubernetes-patch-merge-key".into(), json!(k));
            }
            p.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        }
    }
    for name in kinds.values() {
        if let Some(d) = defs.get_mut(name).and_then(Value::as_object_mut) {
            d.insert("x-kubernetes-group-version-kind".into(), json!([]));
            // k8s-openapi requires `metadata` (its structs carry it unconditionally); upstream
            // does not, and kubectl's validation would demand it of every nested object.
            if let Some(Value::Array(req)) = d.get_mut("required") {
                req.retain(|r| r != "metadata");
                if req.is_empty() {
                    d.remove("required");
                }
            }
        }
    }
    for ((group, version, kind), name) in &kinds {
        if let Some(gvks) = defs
            .get_mut(name)
            .and_then(|d| d.get_mut("x-kubernetes-group-version-kind"))
            .and_then(Value::as_array_mut)
        {
            gvks.push(json!({"group": group, "kind": kind, "version": version}));
        }
    }
    // The list kinds: k8s-openapi has no schema for `List<T>`, so they are written as upstream
    // shapes them (apiVersion, items, kind, metadata).
    let list_kinds: Vec<((String, String, String), String)> =
        kinds.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for ((group, version, kind), name) in list_kinds {
        let list_name = format!("{name}List");
        let list_kind = format!("{kind}List");
        defs.insert(
            list_name.clone(),
            list_schema(&group, &version, &list_kind, &kind, &name),
        );
        kinds.insert((group, version, list_kind), list_name);
    }
    let meta_gvks: Vec<Value> = std::iter::once(("", "v1"))
        .chain(
            resources::RESOURCES
                .iter()
                .filter(|r| !r.group.is_empty())
                .map(|r| (r.group, r.version)),
        )
        .collect::<BTreeSet<_>>()
        .into_iter()
        .flat_map(|(g, v)| {
            ["DeleteOptions", "WatchEvent"].map(|k| json!({"group": g, "kind": k, "version": v}))
        })
        .collect();
    if let Some(d) = defs
        .get_mut(&format!("{META}Status"))
        .and_then(Value::as_object_mut)
    {
        d.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": "", "kind": "Status", "version": "v1"}]),
        );
    }
    for k in ["DeleteOptions", "WatchEvent"] {
        if let Some(d) = defs
            .get_mut(&format!("{META}{k}"))
            .and_then(Value::as_object_mut)
        {
            let mine: Vec<Value> = meta_gvks
                .iter()
                .filter(|g| g["kind"] == k)
                .cloned()
                .collect();
            d.insert("x-kubernetes-group-version-kind".into(), Value::Array(mine));
        }
    }
    Builtin { defs, kinds }
});

fn list_schema(group: &str, version: &str, list_kind: &str, kind: &str, item: &str) -> Value {
    json!({
        "description": format!("{list_kind} is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("Items is the list of {kind} objects."),
                "type": "array",
                "items": {"$ref": format!("{V2_PREFIX}{item}")},
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "$ref": format!("{V2_PREFIX}{META}ListMeta"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "x-kubernetes-group-version-kind": [{"group": group, "kind": list_kind, "version": version}],
    })
}

/// Definition name of a served built-in kind, e.g. `io.k8s.api.core.v1.Pod`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    BUILTIN_DEFS
        .kinds
        .get(&(group.to_string(), version.to_string(), kind.to_string()))
        .map(String::as_str)
}

/// The generated built-in definition `name` in v2 form (`None` when unknown).
pub fn builtin_definition(name: &str) -> Option<Value> {
    BUILTIN_DEFS.defs.get(name).map(|d| v2_def(name, d))
}

// ---------------------------------------------------------------------------------------------
// Schema rewriting

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// A generated definition in OpenAPI v2 form: int-or-string and quantity are strings, the
/// former with upstream's `int-or-string` format.
fn v2_def(name: &str, d: &Value) -> Value {
    let mut d = d.clone();
    if let Some(m) = d.as_object_mut() {
        if m.remove("x-kubernetes-int-or-string").is_some() {
            m.insert("type".into(), json!("string"));
            if name == INT_OR_STRING {
                m.insert("format".into(), json!("int-or-string"));
            }
        }
    }
    d
}

/// A generated definition in OpenAPI v3 form: refs into components, ref siblings wrapped in
/// `allOf` as upstream, int-or-string and quantity as `oneOf`.
fn v3_def(name: &str, d: &Value) -> Value {
    let mut d = to_v3(d.clone());
    if let Some(m) = d.as_object_mut() {
        if m.remove("x-kubernetes-int-or-string").is_some() {
            m.remove("type");
            if name == QUANTITY {
                m.insert(
                    "oneOf".into(),
                    json!([{"type": "string"}, {"type": "number"}]),
                );
            } else {
                m.insert("format".into(), json!("int-or-string"));
                m.insert(
                    "oneOf".into(),
                    json!([{"type": "integer"}, {"type": "string"}]),
                );
            }
        }
    }
    d
}

fn to_v3(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            let mut reference = None;
            for (k, v) in m {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        reference = Some(r.replace(V2_PREFIX, V3_PREFIX));
                        continue;
                    }
                }
                let v = if k == "properties" || k == "x-kubernetes-group-version-kind" {
                    match v {
                        Value::Object(props) => {
                            Value::Object(props.into_iter().map(|(k, v)| (k, to_v3(v))).collect())
                        }
                        other => other,
                    }
                } else if k == "enum" || k == "required" || k == "example" || k == "default" {
                    v
                } else {
                    to_v3(v)
                };
                out.insert(k, v);
            }
            if let Some(r) = reference {
                if out.is_empty() {
                    out.insert("$ref".into(), json!(r));
                } else {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(to_v3).collect()),
        other => other,
    }
}

/// Collect the definitions reachable from `roots` (following `$ref`s).
fn closure(
    defs: &BTreeMap<String, Value>,
    roots: impl IntoIterator<Item = String>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&n) {
            refs_in(d, &mut |r| {
                if !seen.contains(r) {
                    todo.push(r.to_string());
                }
            });
        }
    }
    seen
}

fn refs_in(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    if let Some(r) = v.as_str().and_then(|r| {
                        r.strip_prefix(V2_PREFIX)
                            .or_else(|| r.strip_prefix(V3_PREFIX))
                    }) {
                        f(r);
                    }
                } else {
                    refs_in(v, f);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs_in(v, f)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

/// One served resource as the documents describe it.
#[derive(Debug, Clone)]
struct Served {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
    status: bool,
    scale: bool,
    /// Does PATCH take strategic merge patches? (Not for custom resources, as upstream.)
    strategic: bool,
    /// Definition name of the kind (and of its list kind).
    def: String,
    list_def: String,
}

/// The patch media types an operation consumes (kubectl picks strategic merge patch for
/// `kubectl apply` only when the server lists it).
fn patch_types(strategic: bool) -> Vec<&'static str> {
    let mut t = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if strategic {
        t.push("application/strategic-merge-patch+json");
    }
    t
}

fn camel(s: &str) -> String {
    s.split(['.', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn op_prefix(group: &str, version: &str) -> String {
    let g = if group.is_empty() {
        "Core".to_string()
    } else {
        camel(group.trim_end_matches(".k8s.io"))
    };
    format!("{g}{}", camel(version))
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn reference(self, name: &str) -> Value {
        match self {
            Flavor::V2 => json!({"$ref": format!("{V2_PREFIX}{name}")}),
            Flavor::V3 => json!({"$ref": format!("{V3_PREFIX}{name}")}),
        }
    }

    fn param(self, name: &str, location: &str, ty: &str, description: &str) -> Value {
        let mut p = json!({"name": name, "in": location, "description": description});
        if location == "path" {
            p["required"] = json!(true);
        }
        match self {
            Flavor::V2 => {
                p["type"] = json!(ty);
                p["uniqueItems"] = json!(true);
            }
            Flavor::V3 => {
                p["schema"] = json!({"type": ty, "uniqueItems": true});
            }
        }
        p
    }

    fn query(self, names: &[&str]) -> Vec<Value> {
        names
            .iter()
            .map(|n| {
                let (ty, d) = query_param(n);
                self.param(n, "query", ty, d)
            })
            .collect()
    }

    /// The request body; `patch` is `Some(strategic)` for PATCH operations.
    fn body(self, schema: Value, params: &mut Vec<Value>, op: &mut Value, patch: Option<bool>) {
        match self {
            Flavor::V2 => params
                .push(json!({"name": "body", "in": "body", "required": true, "schema": schema})),
            Flavor::V3 => {
                let types = match patch {
                    Some(strategic) => patch_types(strategic),
                    None => vec!["*/*"],
                };
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| (t.to_string(), json!({"schema": schema})))
                    .collect();
                op["requestBody"] = json!({"content": content, "required": true});
            }
        }
    }

    fn responses(self, codes: &[u16], schema: Value) -> Value {
        let mut out = Map::new();
        for c in codes {
            let desc = match c {
                200 => "OK",
                201 => "Created",
                202 => "Accepted",
                _ => "",
            };
            let r = match self {
                Flavor::V2 => json!({"description": desc, "schema": schema}),
                Flavor::V3 => json!({"description": desc, "content": {
                    "application/json": {"schema": schema},
                    "application/yaml": {"schema": schema},
                    "application/vnd.kubernetes.protobuf": {"schema": schema},
                }}),
            };
            out.insert(c.to_string(), r);
        }
        out.insert("401".into(), json!({"description": "Unauthorized"}));
        Value::Object(out)
    }
}

fn query_param(name: &str) -> (&'static str, &'static str) {
    match name {
        "pretty" => ("string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
        "dryRun" => ("string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"),
        "fieldManager" => ("string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."),
        "fieldValidation" => ("string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
        "force" => ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."),
        "labelSelector" => ("string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        "fieldSelector" => ("string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        "watch" => ("boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
        "allowWatchBookmarks" => ("boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        "resourceVersion" => ("string", "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details."),
        "resourceVersionMatch" => ("string", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        "limit" => ("integer", "limit is a maximum number of responses to return for a list call."),
        "continue" => ("string", "The continue option should be set when retrieving more results from the server."),
        "timeoutSeconds" => ("integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
        "gracePeriodSeconds" => ("integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer."),
        "propagationPolicy" => ("string", "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
        "orphanDependents" => ("boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7."),
        _ => ("string", ""),
    }
}

const LIST_Q: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "timeoutSeconds",
    "watch",
];
const WRITE_Q: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_Q: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_Q: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "orphanDependents",
    "propagationPolicy",
];

fn operation(
    fl: Flavor,
    r: &Served,
    (action, id): (&str, String),
    query: &[&str],
    body: Option<(Value, bool)>,
    (codes, response): (&[u16], Value),
    gvk_kind: (&str, &str, &str),
) -> Value {
    let mut op = json!({
        "operationId": id,
        "tags": [format!("{}{}", if r.group.is_empty() { "core" } else { &r.group }, r.version)],
        "consumes": ["*/*"],
        "produces": ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"],
        "schemes": ["https"],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": gvk_kind.0, "version": gvk_kind.1, "kind": gvk_kind.2},
    });
    if fl == Flavor::V3 {
        if let Some(m) = op.as_object_mut() {
            m.remove("consumes");
            m.remove("produces");
            m.remove("schemes");
        }
    }
    let mut params = fl.query(query);
    if let Some((schema, patch)) = body {
        if patch && fl == Flavor::V2 {
            op["consumes"] = json!(patch_types(r.strategic));
        }
        fl.body(schema, &mut params, &mut op, patch.then_some(r.strategic));
    }
    op["parameters"] = Value::Array(params);
    op["responses"] = fl.responses(codes, response);
    op
}

fn resource_paths(fl: Flavor, r: &Served, paths: &mut Map<String, Value>) {
    let base = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let pre = op_prefix(&r.group, &r.version);
    let kind = r.kind.as_str();
    let gvk = (r.group.as_str(), r.version.as_str(), kind);
    let obj = fl.reference(&r.def);
    let list = fl.reference(&r.list_def);
    let status = fl.reference(&format!("{META}Status"));
    let delete_opts = fl.reference(&format!("{META}DeleteOptions"));
    let patch_body = fl.reference(&format!("{META}Patch"));
    let pretty = fl.query(&["pretty"]);
    let ns_param = fl.param(
        "namespace",
        "path",
        "string",
        "object name and auth scope, such as for teams and projects",
    );
    let coll = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };
    let mut coll_params = Vec::new();
    if r.namespaced {
        coll_params.push(ns_param.clone());
    }
    coll_params.extend(pretty.clone());
    paths.insert(
        coll.clone(),
        json!({
            "get": operation(fl, r, ("list", format!("list{pre}{ns}{kind}")), LIST_Q, None, (&[200], list.clone()), gvk),
            "post": operation(fl, r, ("post", format!("create{pre}{ns}{kind}")), WRITE_Q, Some((obj.clone(), false)), (&[200, 201, 202], obj.clone()), gvk),
            "delete": operation(fl, r, ("deletecollection", format!("deletecollection{pre}{ns}{kind}")), &[LIST_Q, DELETE_Q].concat(), Some((delete_opts.clone(), false)), (&[200], status.clone()), gvk),
            "parameters": coll_params,
        }),
    );
    let name_param = fl.param("name", "path", "string", &format!("name of the {kind}"));
    let mut item_params = vec![name_param];
    if r.namespaced {
        item_params.push(ns_param);
    }
    item_params.extend(pretty);
    paths.insert(
        format!("{coll}/{{name}}"),
        json!({
            "get": operation(fl, r, ("get", format!("read{pre}{ns}{kind}")), &[], None, (&[200], obj.clone()), gvk),
            "put": operation(fl, r, ("put", format!("replace{pre}{ns}{kind}")), WRITE_Q, Some((obj.clone(), false)), (&[200, 201], obj.clone()), gvk),
            "patch": operation(fl, r, ("patch", format!("patch{pre}{ns}{kind}")), PATCH_Q, Some((patch_body.clone(), true)), (&[200, 201], obj.clone()), gvk),
            "delete": operation(fl, r, ("delete", format!("delete{pre}{ns}{kind}")), DELETE_Q, Some((delete_opts, false)), (&[200, 202], status), gvk),
            "parameters": item_params.clone(),
        }),
    );
    if r.status {
        paths.insert(
            format!("{coll}/{{name}}/status"),
            json!({
                "get": operation(fl, r, ("get", format!("read{pre}{ns}{kind}Status")), &[], None, (&[200], obj.clone()), gvk),
                "put": operation(fl, r, ("put", format!("replace{pre}{ns}{kind}Status")), WRITE_Q, Some((obj.clone(), false)), (&[200, 201], obj.clone()), gvk),
                "patch": operation(fl, r, ("patch", format!("patch{pre}{ns}{kind}Status")), PATCH_Q, Some((patch_body.clone(), true)), (&[200, 201], obj.clone()), gvk),
                "parameters": item_params.clone(),
            }),
        );
    }
    if r.scale {
        let scale = fl.reference("io.k8s.api.autoscaling.v1.Scale");
        let sgvk = ("autoscaling", "v1", "Scale");
        paths.insert(
            format!("{coll}/{{name}}/scale"),
            json!({
                "get": operation(fl, r, ("get", format!("read{pre}{ns}{kind}Scale")), &[], None, (&[200], scale.clone()), sgvk),
                "put": operation(fl, r, ("put", format!("replace{pre}{ns}{kind}Scale")), WRITE_Q, Some((scale.clone(), false)), (&[200, 201], scale.clone()), sgvk),
                "patch": operation(fl, r, ("patch", format!("patch{pre}{ns}{kind}Scale")), PATCH_Q, Some((patch_body, true)), (&[200, 201], scale), sgvk),
                "parameters": item_params,
            }),
        );
    }
    if r.namespaced {
        paths.insert(
            format!("{base}/{}", r.plural),
            json!({
                "get": operation(fl, r, ("list", format!("list{pre}{kind}ForAllNamespaces")), LIST_Q, None, (&[200], list), gvk),
                "parameters": fl.query(&["pretty"]),
            }),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Documents

/// Every document the server publishes, built for one set of custom kinds.
#[derive(Debug)]
pub struct Documents {
    pub v2: Value,
    pub v2_json: Bytes,
    pub v2_proto: Bytes,
    pub v2_etag: String,
    /// `api/v1`, `apis/apps/v1` ... -> (document bytes, hash).
    pub v3: BTreeMap<String, (Bytes, String)>,
    pub v3_index: Bytes,
}

impl Documents {
    /// The v3 document for a request path `/openapi/v3/<gv path>`.
    pub fn v3_for_path(&self, path: &str) -> Option<&(Bytes, String)> {
        let p = path
            .trim_start_matches("/openapi/v3/")
            .trim_end_matches('/');
        self.v3.get(p)
    }
}

fn hash_hex(bytes: &[u8]) -> String {
    // A 128-bit content hash (two 64-bit FNV-style lanes) for ETags and cache-busting URLs.
    let a = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let b = bytes.iter().fold(0x8422_2325_cbf2_9ce4u64, |h, b| {
        (h ^ u64::from(*b))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(5)
    });
    format!("{a:016X}{b:016X}")
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Build all documents: the served built-in kinds plus `custom`.
pub fn build(custom: &[CustomKind]) -> Documents {
    let b = &*BUILTIN_DEFS;
    let mut defs: BTreeMap<String, Value> = b.defs.clone();
    let mut served: Vec<Served> = Vec::new();
    for r in resources::RESOURCES {
        let key = (
            r.group.to_string(),
            r.version.to_string(),
            r.kind.to_string(),
        );
        let (def, list_def) = match b.kinds.get(&key) {
            Some(d) => (d.clone(), format!("{d}List")),
            None => continue,
        };
        served.push(Served {
            group: r.group.into(),
            version: r.version.into(),
            kind: r.kind.into(),
            plural: r.plural.into(),
            namespaced: r.namespaced,
            status: r.has_sub(Subresource::Status),
            scale: r.has_sub(Subresource::Scale),
            strategic: true,
            def,
            list_def,
        });
    }
    let mut custom_v2: BTreeMap<String, Value> = BTreeMap::new();
    for c in custom {
        let def = c.definition_name(&c.kind);
        let list_def = c.definition_name(&c.list_kind);
        let schema = custom_schema(c);
        custom_v2.insert(def.clone(), structural_v2(schema.clone()));
        defs.insert(def.clone(), schema);
        defs.insert(
            list_def.clone(),
            list_schema(&c.group, &c.version, &c.list_kind, &c.kind, &def),
        );
        served.push(Served {
            group: c.group.clone(),
            version: c.version.clone(),
            kind: c.kind.clone(),
            plural: c.plural.clone(),
            namespaced: c.namespaced,
            status: c.status,
            scale: c.scale,
            strategic: false,
            def,
            list_def,
        });
    }
    let common = [
        format!("{META}Status"),
        format!("{META}DeleteOptions"),
        format!("{META}Patch"),
        format!("{META}WatchEvent"),
    ];

    // v2: one document for everything.
    let mut v2_paths = Map::new();
    for r in &served {
        resource_paths(Flavor::V2, r, &mut v2_paths);
    }
    let names = closure(
        &defs,
        served
            .iter()
            .flat_map(|r| [r.def.clone(), r.list_def.clone()])
            .chain(common.iter().cloned())
            .chain(
                served
                    .iter()
                    .filter(|r| r.scale)
                    .map(|_| "io.k8s.api.autoscaling.v1.Scale".to_string()),
            ),
    );
    let v2_defs: Map<String, Value> = names
        .iter()
        .filter_map(|n| {
            let d = custom_v2
                .get(n)
                .cloned()
                .or_else(|| defs.get(n).map(|d| v2_def(n, d)))?;
            Some((n.clone(), d))
        })
        .collect();
    let info = json!({"title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0")});
    let v2 = json!({
        "swagger": "2.0",
        "info": info,
        "paths": v2_paths,
        "definitions": v2_defs,
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    });
    let v2_json = Bytes::from(serde_json::to_vec(&v2).unwrap_or_default());
    let v2_proto = Bytes::from(crate::openapi_proto::encode_document(&v2));
    let v2_etag = hash_hex(&v2_json);

    // v3: one document per group/version.
    let mut gvs: Vec<(String, String)> = Vec::new();
    for r in &served {
        let gv = (r.group.clone(), r.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    let mut v3 = BTreeMap::new();
    let mut index = Map::new();
    for (g, v) in gvs {
        let mut paths = Map::new();
        let mine: Vec<&Served> = served
            .iter()
            .filter(|r| r.group == g && r.version == v)
            .collect();
        for r in &mine {
            resource_paths(Flavor::V3, r, &mut paths);
        }
        let names = closure(
            &defs,
            mine.iter()
                .flat_map(|r| [r.def.clone(), r.list_def.clone()])
                .chain(common.iter().cloned())
                .chain(
                    mine.iter()
                        .filter(|r| r.scale)
                        .map(|_| "io.k8s.api.autoscaling.v1.Scale".to_string()),
                ),
        );
        let schemas: Map<String, Value> = names
            .iter()
            .filter_map(|n| defs.get(n).map(|d| (n.clone(), v3_def(n, d))))
            .collect();
        let doc = json!({
            "openapi": "3.0.0",
            "info": info,
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
            },
        });
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let hash = hash_hex(&bytes);
        let p = gv_path(&g, &v);
        index.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
        v3.insert(p, (bytes, hash));
    }
    let v3_index = Bytes::from(serde_json::to_vec(&json!({"paths": index})).unwrap_or_default());
    Documents {
        v2,
        v2_json,
        v2_proto,
        v2_etag,
        v3,
        v3_index,
    }
}

/// A CRD's structural schema as a definition: its `x-kubernetes-*` extensions kept, the
/// standard `apiVersion`/`kind`/`metadata` fields filled in as upstream publishes them.
fn custom_schema(c: &CustomKind) -> Value {
    let mut s = match &c.schema {
        Value::Object(m) if !m.is_empty() => Value::Object(m.clone()),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    if let Some(m) = s.as_object_mut() {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Some(p) = props.as_object_mut() {
            p.insert("apiVersion".into(), json!({"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"}));
            p.insert("kind".into(), json!({"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"}));
            p.insert("metadata".into(), json!({"$ref": format!("{V2_PREFIX}{META}ObjectMeta"), "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
        }
        if !m.contains_key("type") {
            m.insert("type".into(), json!("object"));
        }
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": c.group, "kind": c.kind, "version": c.version}]),
        );
    }
    s
}

/// A CRD schema as OpenAPI v2 can carry it (upstream's structural-to-v2 conversion): no
/// `nullable` or logical junctors, and where unknown fields are preserved no `properties`, so
/// that v2 clients (kubectl's client-side validation) do not reject the fields kept.
fn structural_v2(v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            for k in ["allOf", "anyOf", "oneOf", "not", "nullable"] {
                m.remove(k);
            }
            if m.remove("x-kubernetes-preserve-unknown-fields")
                .and_then(|p| p.as_bool())
                .unwrap_or(false)
            {
                // The root keeps the standard fields the server adds to every CRD schema.
                let root = m.contains_key("x-kubernetes-group-version-kind");
                match m.get_mut("properties").and_then(Value::as_object_mut) {
                    Some(props) if root => props
                        .retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata")),
                    _ => {
                        m.remove("properties");
                    }
                }
                m.remove("required");
            }
            Value::Object(
                m.into_iter()
                    .map(|(k, v)| {
                        let v = match k.as_str() {
                            "properties" => match v {
                                Value::Object(p) => Value::Object(
                                    p.into_iter().map(|(k, v)| (k, structural_v2(v))).collect(),
                                ),
                                other => other,
                            },
                            "items" | "additionalProperties" => structural_v2(v),
                            _ => v,
                        };
                        (k, v)
                    })
                    .collect(),
            )
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// The live set

static CUSTOM: RwLock<(u64, Vec<CustomKind>)> = RwLock::new((0, Vec::new()));
static CACHE: Mutex<Option<(u64, Arc<Documents>)>> = Mutex::new(None);

/// Replace the custom kinds published in the documents (call whenever the set of served CRD
/// versions changes). Returns whether anything changed.
pub fn set_custom(mut kinds: Vec<CustomKind>) -> bool {
    kinds.sort_by(|a, b| (&a.group, &a.version, &a.kind).cmp(&(&b.group, &b.version, &b.kind)));
    let mut guard = match CUSTOM.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if guard.1 == kinds {
        return false;
    }
    guard.0 += 1;
    guard.1 = kinds;
    true
}

/// Build the documents for the current set of custom kinds now, on a thread of its own, so
/// the first client after a start or a CRD change (kubectl's apply validation fetches
/// `/openapi/v3`) does not wait for the build. A request meanwhile waits for this build
/// instead of starting its own.
pub fn prewarm() {
    let spawned = std::thread::Builder::new()
        .name("openapi-build".into())
        .spawn(|| drop(current()));
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "building the OpenAPI documents ahead failed to start");
    }
}

/// The documents for the current set of custom kinds (built at most once per change).
pub fn current() -> Arc<Documents> {
    let (gen, kinds) = {
        let guard = match CUSTOM.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        (guard.0, guard.1.clone())
    };
    let mut cache = match CACHE.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if let Some((g, docs)) = cache.as_ref() {
        if *g == gen {
            return docs.clone();
        }
    }
    let docs = Arc::new(build(&kinds));
    *cache = Some((gen, docs.clone()));
    docs
}

// ---------------------------------------------------------------------------------------------
// Serving

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == etag || t == "*")
}

fn document(
    headers: &HeaderMap,
    body: Bytes,
    content_type: &str,
    etag: &str,
    immutable: bool,
) -> Response {
    let cache = if immutable {
        "public, immutable"
    } else {
        "no-cache, private"
    };
    let quoted = format!("\"{etag}\"");
    if etag_matches(headers, etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, quoted),
                (header::CACHE_CONTROL, cache.to_string()),
            ],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::ETAG, quoted),
            (header::CACHE_CONTROL, cache.to_string()),
            (header::VARY, "Accept".to_string()),
        ],
        body,
    )
        .into_response()
}

/// Answer `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<gv>`; 404 for any other path or an
/// unknown group/version. The documents are (re)built off the async workers.
pub async fn serve(path: &str, query: Option<&str>, headers: &HeaderMap) -> ApiResult<Response> {
    let docs = tokio::task::spawn_blocking(current)
        .await
        .map_err(|e| ApiError::internal(format!("building the OpenAPI documents: {e}")))?;
    answer(&docs, path, query, headers).ok_or_else(ApiError::not_found_path)
}

fn answer(
    docs: &Documents,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response> {
    match path.trim_end_matches('/') {
        "/openapi/v2" => {
            let accept = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
            let proto = accept
                .split(',')
                .map(|t| t.split(';').next().unwrap_or("").trim())
                .any(|t| t == V2_PROTOBUF || t == V2_PROTOBUF_CONTENT_TYPE);
            Some(if proto {
                let etag = hash_hex(&docs.v2_proto);
                document(
                    headers,
                    docs.v2_proto.clone(),
                    V2_PROTOBUF_CONTENT_TYPE,
                    &etag,
                    false,
                )
            } else {
                document(
                    headers,
                    docs.v2_json.clone(),
                    "application/json",
                    &docs.v2_etag,
                    false,
                )
            })
        }
        "/openapi/v3" => {
            let etag = hash_hex(&docs.v3_index);
            Some(document(
                headers,
                docs.v3_index.clone(),
                "application/json",
                &etag,
                false,
            ))
        }
        p => {
            let (bytes, hash) = docs.v3_for_path(p)?;
            let wanted = query
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("hash="));
            match wanted {
                Some(h) if h != hash => {
                    // A stale hash: send the client to the current document, as upstream does.
                    let location = format!("{}?hash={hash}", p);
                    Some(
                        (
                            StatusCode::MOVED_PERMANENTLY,
                            [(header::LOCATION, location)],
                        )
                            .into_response(),
                    )
                }
                Some(_) => Some(document(
                    headers,
                    bytes.clone(),
                    "application/json",
                    hash,
                    true,
                )),
                None => Some(document(
                    headers,
                    bytes.clone(),
                    "application/json",
                    hash,
                    false,
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve<'a>(doc: &'a Value, schema: &'a Value, prefix: &str, root: &str) -> &'a Value {
        let r = schema
            .get("$ref")
            .or_else(|| schema.pointer("/allOf/0/$ref"))
            .and_then(Value::as_str);
        match r {
            Some(r) => {
                let name = r.strip_prefix(prefix).expect("ref prefix");
                doc.pointer(root)
                    .and_then(|d| d.get(name))
                    .unwrap_or_else(|| panic!("dangling ref {r}"))
            }
            None => schema,
        }
    }

    #[test]
    fn pod_schema_has_containers_with_description() {
        let docs = build(&[]);
        let (bytes, _) = docs.v3_for_path("/openapi/v3/api/v1").expect("core doc");
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        let schemas = &doc["components"]["schemas"];
        let pod = &schemas["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        let spec = resolve(
            &doc,
            &pod["properties"]["spec"],
            V3_PREFIX,
            "/components/schemas",
        );
        let containers = &spec["properties"]["containers"];
        assert!(containers["description"]
            .as_str()
            .unwrap()
            .starts_with("List of containers"));
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        let c = resolve(&doc, &containers["items"], V3_PREFIX, "/components/schemas");
        assert!(c["properties"]["image"]["description"].is_string());
        // Siblings of a ref are wrapped in allOf in v3 as upstream does.
        assert!(pod["properties"]["metadata"]["allOf"][0]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("meta.v1.ObjectMeta"));
        assert_eq!(
            schemas[INT_OR_STRING]["oneOf"],
            json!([{"type": "integer"}, {"type": "string"}])
        );
        assert_eq!(schemas[INT_OR_STRING]["format"], "int-or-string");
        assert_eq!(
            schemas[QUANTITY]["oneOf"],
            json!([{"type": "string"}, {"type": "number"}])
        );
        let container = builtin_definition("io.k8s.api.core.v1.Container").unwrap();
        assert_eq!(container["required"], json!(["name"]));
        assert_eq!(
            builtin_definition(INT_OR_STRING).unwrap()["format"],
            "int-or-string"
        );
        assert!(builtin_definition("io.k8s.api.core.v1.Nope").is_none());
        let v2 = &docs.v2["definitions"];
        assert_eq!(v2[INT_OR_STRING]["type"], "string");
        assert_eq!(v2[INT_OR_STRING]["format"], "int-or-string");
        assert_eq!(v2[QUANTITY]["type"], "string");
        assert!(v2[QUANTITY].get("x-kubernetes-int-or-string").is_none());
    }

    #[test]
    fn every_patch_tag_lands_on_a_property() {
        for (def, prop, strategy, key) in PATCH_META {
            let p = &BUILTIN_DEFS.defs[*def]["properties"][*prop];
            assert_eq!(p["x-kubernetes-patch-strategy"], *strategy, "{def}.{prop}");
            assert_eq!(
                p.get("x-kubernetes-patch-merge-key")
                    .and_then(Value::as_str),
                *key,
                "{def}.{prop}"
            );
        }
    }

    #[test]
    fn every_ref_resolves() {
        let docs = build(&[]);
        let mut missing = Vec::new();
        refs_in(&docs.v2, &mut |r| {
            if docs.v2["definitions"].get(r).is_none() {
                missing.push(r.to_string());
            }
        });
        for (p, (bytes, _)) in &docs.v3 {
            let doc: Value = serde_json::from_slice(bytes).unwrap();
            refs_in(&doc, &mut |r| {
                if doc["components"]["schemas"].get(r).is_none() {
                    missing.push(format!("{p}: {r}"));
                }
            });
        }
        assert!(missing.is_empty(), "dangling refs: {missing:?}");
        // No JSON-Schema leftovers that OpenAPI v2 cannot express.
        let text = docs.v2_json.len();
        assert!(text > 100_000);
    }

    #[test]
    fn every_served_kind_present() {
        let docs = build(&[]);
        // metrics.k8s.io is metrics-server's aggregated API: its kinds have no built-in schema.
        for r in resources::RESOURCES
            .iter()
            .filter(|r| !crate::registry::metrics::is_metrics(r))
        {
            let name = definition_name(r.group, r.version, r.kind)
                .unwrap_or_else(|| panic!("no schema for {}", r.kind));
            let gvk = &docs.v2["definitions"][name]["x-kubernetes-group-version-kind"];
            assert!(
                gvk.as_array().unwrap().iter().any(|g| g["kind"] == r.kind
                    && g["group"] == r.group
                    && g["version"] == r.version),
                "{name}: {gvk}"
            );
            let list = definition_name(r.group, r.version, r.list_kind)
                .unwrap_or_else(|| panic!("no list schema for {}", r.list_kind));
            assert!(docs.v2["definitions"].get(list).is_some());
            let (bytes, _) = docs
                .v3
                .get(&gv_path(r.group, r.version))
                .expect("gv document");
            let doc: Value = serde_json::from_slice(bytes).unwrap();
            assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
            let coll = if r.namespaced {
                format!(
                    "/{}/namespaces/{{namespace}}/{}/{{name}}",
                    gv_path(r.group, r.version),
                    r.plural
                )
            } else {
                format!("/{}/{}/{{name}}", gv_path(r.group, r.version), r.plural)
            };
            let patch = &doc["paths"][&coll]["patch"];
            assert_eq!(
                patch["x-kubernetes-group-version-kind"]["kind"], r.kind,
                "{coll}"
            );
            assert!(patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation"));
        }
    }

    #[test]
    fn custom_kinds_are_published() {
        let crd = CustomKind {
            group: "stable.example.com".into(),
            version: "v1".into(),
            kind: "CronTab".into(),
            list_kind: "CronTabList".into(),
            plural: "crontabs".into(),
            namespaced: true,
            status: true,
            scale: false,
            schema: json!({"type": "object", "properties": {"spec": {"type": "object", "description": "the spec", "properties": {"cronSpec": {"type": "string"}}}}}),
        };
        let docs = build(&[crd]);
        let def = &docs.v2["definitions"]["com.example.stable.v1.CronTab"];
        assert_eq!(def["properties"]["spec"]["description"], "the spec");
        assert_eq!(def["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        let (bytes, hash) = docs.v3.get("apis/stable.example.com/v1").expect("crd gv");
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        assert!(
            doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
                .is_object()
        );
        assert!(
            doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
                ["patch"]
                .is_object()
        );
        assert!(doc["paths"]
            ["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status"]["patch"]
            .is_object());
        // PATCH of a custom resource takes no strategic merge patch (kubectl apply then sends a
        // merge patch); built-in kinds do.
        let cr_patch = &doc["paths"]
            ["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
            ["requestBody"]["content"];
        assert!(cr_patch["application/merge-patch+json"].is_object());
        assert!(cr_patch
            .get("application/strategic-merge-patch+json")
            .is_none());
        let (core, _) = docs.v3.get("api/v1").expect("core");
        let core: Value = serde_json::from_slice(core).unwrap();
        assert!(
            core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]["requestBody"]
                ["content"]["application/strategic-merge-patch+json"]
                .is_object()
        );
        let index: Value = serde_json::from_slice(&docs.v3_index).unwrap();
        assert_eq!(
            index["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"],
            format!("/openapi/v3/apis/stable.example.com/v1?hash={hash}")
        );
        // v2 drops what it cannot carry; v3 keeps the structural schema as given.
        let crd = CustomKind {
            group: "stable.example.com".into(),
            version: "v2".into(),
            kind: "Open".into(),
            list_kind: "OpenList".into(),
            plural: "opens".into(),
            namespaced: false,
            status: false,
            scale: true,
            schema: json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "spec": {"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}}}}),
        };
        let docs2 = build(&[crd]);
        let v2 = &docs2.v2["definitions"]["com.example.stable.v2.Open"];
        let mut props: Vec<&String> = v2["properties"].as_object().unwrap().keys().collect();
        props.sort();
        assert_eq!(props, ["apiVersion", "kind", "metadata"]);
        assert!(v2.get("x-kubernetes-preserve-unknown-fields").is_none());
        let (bytes, _) = docs2.v3.get("apis/stable.example.com/v2").unwrap();
        let doc: Value = serde_json::from_slice(bytes).unwrap();
        let v3 = &doc["components"]["schemas"]["com.example.stable.v2.Open"];
        assert_eq!(v3["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(v3["properties"]["spec"]["nullable"], true);
        assert!(doc["paths"]["/apis/stable.example.com/v2/opens/{name}"]["get"].is_object());
        let scale = &doc["paths"]["/apis/stable.example.com/v2/opens/{name}/scale"]["put"];
        assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
        assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
        assert!(doc["paths"]
            .get("/apis/stable.example.com/v2/opens/{name}/status")
            .is_none());
        // The built-in set is unchanged by a CRD.
        assert!(!build(&[]).v3.contains_key("apis/stable.example.com/v1"));
    }

    #[test]
    fn crd_objects_publish_their_served_versions() {
        let mut crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab", "listKind": "CronTabList"},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}, "subresources": {"status": {}}},
                    {"name": "v2", "served": false, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                ],
            },
        });
        // Not yet established: nothing is published.
        assert!(CustomKind::from_crd(&crd).is_empty());
        crd["status"] = json!({"conditions": [{"type": "Established", "status": "True"}]});
        let kinds = CustomKind::from_crd(&crd);
        assert_eq!(kinds.len(), 1);
        assert_eq!(kinds[0].version, "v1");
        assert!(kinds[0].namespaced);
        assert!(kinds[0].status && !kinds[0].scale);
        assert_eq!(
            kinds[0].definition_name("CronTab"),
            "com.example.stable.v1.CronTab"
        );
        assert!(CustomKind::from_crd(&json!({"spec": {}})).is_empty());
    }

    #[test]
    fn set_custom_rebuilds_only_on_change() {
        // The only test touching the process-wide set.
        let crd = CustomKind {
            group: "live.example.com".into(),
            version: "v1".into(),
            kind: "Live".into(),
            list_kind: "LiveList".into(),
            plural: "lives".into(),
            namespaced: false,
            status: false,
            scale: false,
            schema: json!({"type": "object"}),
        };
        assert!(!current().v3.contains_key("apis/live.example.com/v1"));
        assert!(set_custom(vec![crd.clone()]));
        let with = current();
        assert!(with.v3.contains_key("apis/live.example.com/v1"));
        assert!(with.v2["definitions"]["com.example.live.v1.Live"].is_object());
        // The same set again: no rebuild, the cached documents are served.
        assert!(!set_custom(vec![crd]));
        assert!(Arc::ptr_eq(&with, &current()));
        assert!(set_custom(Vec::new()));
        let without = current();
        assert!(!without.v3.contains_key("apis/live.example.com/v1"));
        assert!(without.v2["definitions"]
            .get("com.example.live.v1.Live")
            .is_none());
    }
}
