//! Patch application: RFC 7386 JSON merge patch, RFC 6902 JSON patch and
//! Kubernetes strategic merge patch (as sent by kubectl 1.32).
//!
//! All functions are pure: they take the current object and the patch
//! document and return a new object (or a [`PatchError`]). None of them panic
//! on any input.

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use thiserror::Error;

/// Error applying a patch. The message is meant to end up in a Kubernetes
/// `Status` object; [`PatchError::http_status`] tells which code fits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// The patch document itself is malformed (wrong JSON shape, bad
    /// pointer syntax, unknown op, bad directive, ...).
    #[error("invalid patch: {0}")]
    BadPatch(String),
    /// A JSON patch operation could not be applied to the document
    /// (missing path, index out of range, ...).
    #[error("{0}")]
    OperationFailed(String),
    /// A JSON patch `test` operation did not match.
    #[error("testing value {path} failed: test operation does not apply")]
    TestFailed {
        /// JSON pointer of the failed test.
        path: String,
    },
    /// A strategic merge patch list element lacks the declared merge key.
    #[error("map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The declared merge key.
        key: String,
        /// The offending element, serialised.
        element: String,
    },
}

impl PatchError {
    /// The HTTP status Kubernetes would answer with: 400 for a malformed
    /// patch document, 422 when a well-formed patch cannot be applied.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::BadPatch(_) => 400,
            PatchError::OperationFailed(_)
            | PatchError::TestFailed { .. }
            | PatchError::MissingMergeKey { .. } => 422,
        }
    }
}

fn bad(msg: impl Into<String>) -> PatchError {
    PatchError::BadPatch(msg.into())
}

/// JSON equality where numbers compare by numeric value (so `1` equals
/// `1.0`), as Go's decoding into float64 would make them.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                i == j
            } else if let (Some(i), Some(j)) = (x.as_u64(), y.as_u64()) {
                i == j
            } else {
                match (x.as_f64(), y.as_f64()) {
                    (Some(i), Some(j)) => i == j,
                    _ => false,
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(i, j)| json_eq(i, j))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).map(|w| json_eq(v, w)).unwrap_or(false))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------
// RFC 7386 JSON merge patch
// ---------------------------------------------------------------------------

/// Applies an RFC 7386 JSON merge patch.
///
/// A non-object patch replaces the target; object patches merge recursively,
/// `null` deletes a key, arrays are replaced as a whole.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut result = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, pv) in p {
                if pv.is_null() {
                    result.remove(k);
                } else {
                    let merged = merge_patch(result.get(k).unwrap_or(&Value::Null), pv);
                    result.insert(k.clone(), merged);
                }
            }
            Value::Object(result)
        }
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// RFC 6902 JSON patch
// ---------------------------------------------------------------------------

/// Parses an RFC 6901 JSON pointer into its unescaped reference tokens.
pub fn parse_json_pointer(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| {
        bad(format!(
            "JSON pointer {pointer:?} must be empty or start with '/'"
        ))
    })?;
    rest.split('/')
        .map(|tok| {
            let mut out = String::with_capacity(tok.len());
            let mut chars = tok.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => {
                            return Err(bad(format!(
                                "JSON pointer {pointer:?} has an invalid escape ('~' must be followed by '0' or '1')"
                            )))
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

fn parse_index(tok: &str, len: usize, allow_end: bool, path: &str) -> Result<usize, PatchError> {
    if allow_end && tok == "-" {
        return Ok(len);
    }
    let valid = !tok.is_empty()
        && tok.bytes().all(|b| b.is_ascii_digit())
        && (tok == "0" || !tok.starts_with('0'));
    if !valid {
        return Err(PatchError::OperationFailed(format!(
            "invalid array index {tok:?} in path {path:?}"
        )));
    }
    let idx: usize = tok.parse().map_err(|_| {
        PatchError::OperationFailed(format!("array index {tok:?} out of range in path {path:?}"))
    })?;
    let limit = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if idx > limit || (!allow_end && len == 0) {
        return Err(PatchError::OperationFailed(format!(
            "array index {idx} out of range in path {path:?}"
        )));
    }
    Ok(idx)
}

fn pointer_get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for tok in tokens {
        cur = match cur {
            Value::Object(m) => m.get(tok)?,
            Value::Array(a) => {
                let ok = !tok.is_empty()
                    && tok.bytes().all(|b| b.is_ascii_digit())
                    && (tok == "0" || !tok.starts_with('0'));
                if !ok {
                    return None;
                }
                a.get(tok.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn pointer_get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for tok in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(tok)?,
            Value::Array(a) => {
                let ok = !tok.is_empty()
                    && tok.bytes().all(|b| b.is_ascii_digit())
                    && (tok == "0" || !tok.starts_with('0'));
                if !ok {
                    return None;
                }
                a.get_mut(tok.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn missing(op: &str, path: &str) -> PatchError {
    PatchError::OperationFailed(format!(
        "{op} operation does not apply: doc is missing path: {path:?}"
    ))
}

fn op_add(doc: &mut Value, tokens: &[String], value: Value, path: &str) -> Result<(), PatchError> {
    let Some((last, parent_toks)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let parent = pointer_get_mut(doc, parent_toks).ok_or_else(|| missing("add", path))?;
    match parent {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = parse_index(last, a.len(), true, path)?;
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(missing("add", path)),
    }
}

fn op_remove(doc: &mut Value, tokens: &[String], path: &str) -> Result<Value, PatchError> {
    let Some((last, parent_toks)) = tokens.split_last() else {
        return Err(PatchError::OperationFailed(
            "remove operation does not apply: cannot remove the whole document".into(),
        ));
    };
    let parent = pointer_get_mut(doc, parent_toks).ok_or_else(|| missing("remove", path))?;
    match parent {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing("remove", path)),
        Value::Array(a) => {
            let idx = parse_index(last, a.len(), false, path)?;
            Ok(a.remove(idx))
        }
        _ => Err(missing("remove", path)),
    }
}

fn op_replace(
    doc: &mut Value,
    tokens: &[String],
    value: Value,
    path: &str,
) -> Result<(), PatchError> {
    let slot = pointer_get_mut(doc, tokens).ok_or_else(|| missing("replace", path))?;
    *slot = value;
    Ok(())
}

fn op_field<'a>(
    op: &'a Map<String, Value>,
    name: &str,
    index: usize,
) -> Result<&'a Value, PatchError> {
    op.get(name).ok_or_else(|| {
        bad(format!(
            "operation {index} is missing required field {name:?}"
        ))
    })
}

fn op_str<'a>(op: &'a Map<String, Value>, name: &str, index: usize) -> Result<&'a str, PatchError> {
    op_field(op, name, index)?.as_str().ok_or_else(|| {
        bad(format!(
            "operation {index}: field {name:?} must be a string"
        ))
    })
}

/// Applies an RFC 6902 JSON patch (`ops` must be a JSON array of operation
/// objects). Operations are applied in order to a copy of `target`; the first
/// failing operation aborts the whole patch.
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| bad("a JSON patch must be a JSON array of operations"))?;
    let mut doc = target.clone();
    for (index, op) in ops.iter().enumerate() {
        let op = op
            .as_object()
            .ok_or_else(|| bad(format!("operation {index} must be a JSON object")))?;
        let name = op_str(op, "op", index)?;
        let path = op_str(op, "path", index)?;
        let tokens = parse_json_pointer(path)?;
        match name {
            "add" => {
                let value = op_field(op, "value", index)?.clone();
                op_add(&mut doc, &tokens, value, path)?;
            }
            "remove" => {
                op_remove(&mut doc, &tokens, path)?;
            }
            "replace" => {
                let value = op_field(op, "value", index)?.clone();
                op_replace(&mut doc, &tokens, value, path)?;
            }
            "move" => {
                let from = op_str(op, "from", index)?;
                let from_tokens = parse_json_pointer(from)?;
                if from_tokens == tokens {
                    // Moving onto itself only has to check existence.
                    if pointer_get(&doc, &tokens).is_none() {
                        return Err(missing("move", from));
                    }
                    continue;
                }
                if tokens.len() > from_tokens.len()
                    && tokens[..from_tokens.len()] == from_tokens[..]
                {
                    return Err(PatchError::OperationFailed(format!(
                        "move operation does not apply: {path:?} is a child of {from:?}"
                    )));
                }
                let value = op_remove(&mut doc, &from_tokens, from).map_err(|e| match e {
                    PatchError::OperationFailed(_) => missing("move", from),
                    other => other,
                })?;
                op_add(&mut doc, &tokens, value, path)?;
            }
            "copy" => {
                let from = op_str(op, "from", index)?;
                let from_tokens = parse_json_pointer(from)?;
                let value = pointer_get(&doc, &from_tokens)
                    .ok_or_else(|| missing("copy", from))?
                    .clone();
                op_add(&mut doc, &tokens, value, path)?;
            }
            "test" => {
                let value = op_field(op, "value", index)?;
                match pointer_get(&doc, &tokens) {
                    Some(actual) if json_eq(actual, value) => {}
                    _ => {
                        return Err(PatchError::TestFailed {
                            path: path.to_string(),
                        })
                    }
                }
            }
            other => {
                return Err(bad(format!(
                    "operation {index}: unknown operation {other:?}"
                )));
            }
        }
    }
    Ok(doc)
}

// ---------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------

const DIRECTIVE_MARKER: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList/";

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// Replaced as a whole (no `patchStrategy` tag).
    Atomic,
    /// `patchStrategy:"merge"` on a list of primitives: union.
    MergePrimitive,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"` on a list of objects.
    MergeByKey(&'static str),
}

/// The (small) set of Kubernetes types the strategic merge patch needs to
/// know about. Anything else is `Unknown`: maps merge, lists are atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Unknown,
    /// A root object of a kind without list merge strategies of its own
    /// (ConfigMap, Secret, Event, Lease, Endpoints, unknown kinds...).
    MetaOnly,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
    Container,
    PodTemplateSpec,
    PodTemplate,
    /// Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
    /// ReplicationController: `spec.template` + `status.conditions`.
    Workload,
    WorkloadSpec,
    /// A status whose `conditions` merge by `type`.
    ConditionsStatus,
    CronJob,
    CronJobSpec,
    JobTemplateSpec,
    Service,
    ServiceSpec,
    Node,
    NodeSpec,
    NodeStatus,
    Namespace,
    ServiceAccount,
    PersistentVolumeClaim,
}

#[derive(Debug, Clone, Copy)]
struct FieldMeta {
    list: ListStrategy,
    /// Type of the field (for maps) or of its elements (for lists).
    ty: Ty,
}

const fn field(list: ListStrategy, ty: Ty) -> FieldMeta {
    FieldMeta { list, ty }
}

fn root_type(kind: &str) -> Ty {
    match kind {
        "Pod" => Ty::Pod,
        "PodTemplate" => Ty::PodTemplate,
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => Ty::Workload,
        "CronJob" => Ty::CronJob,
        "Service" => Ty::Service,
        "Node" => Ty::Node,
        "Namespace" => Ty::Namespace,
        "ServiceAccount" => Ty::ServiceAccount,
        "PersistentVolumeClaim" => Ty::PersistentVolumeClaim,
        _ => Ty::MetaOnly,
    }
}

/// How server-side apply treats a list field (the `x-kubernetes-list-type` of the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of primitives (`v:<value>` elements).
    Set,
    /// An associative list keyed by one field (`k:{"<key>":...}` elements).
    Map(&'static str),
}

/// A position in the (partial) schema of a Kubernetes kind that the strategic merge patch
/// knows: which lists merge, and by which key. Server-side apply walks objects with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaNode(Ty);

impl SchemaNode {
    /// The root of an object of `kind`.
    pub fn root(kind: &str) -> Self {
        SchemaNode(root_type(kind))
    }

    /// The list type of field `name` (meaningful when it holds a list) and its schema node
    /// (of the field itself for maps, of its elements for lists).
    pub fn field(self, name: &str) -> (ListType, SchemaNode) {
        let meta = field_meta(self.0, name);
        let lt = match meta.list {
            ListStrategy::Atomic => ListType::Atomic,
            ListStrategy::MergePrimitive => ListType::Set,
            ListStrategy::MergeByKey(k) => ListType::Map(k),
        };
        (lt, SchemaNode(meta.ty))
    }
}

/// Patch metadata of field `name` inside a value of type `ty`, following the
/// struct tags of k8s.io/api (core/v1, apps/v1, batch/v1) and
/// k8s.io/apimachinery meta/v1.
fn field_meta(ty: Ty, name: &str) -> FieldMeta {
    use ListStrategy::*;
    let atomic = field(Atomic, Ty::Unknown);
    let is_root = matches!(
        ty,
        Ty::MetaOnly
            | Ty::Pod
            | Ty::PodTemplate
            | Ty::Workload
            | Ty::CronJob
            | Ty::Service
            | Ty::Node
            | Ty::Namespace
            | Ty::ServiceAccount
            | Ty::PersistentVolumeClaim
    );
    if is_root && name == "metadata" {
        return field(Atomic, Ty::ObjectMeta);
    }
    match (ty, name) {
        // metav1.ObjectMeta
        (Ty::ObjectMeta, "finalizers") => field(MergePrimitive, Ty::Unknown),
        (Ty::ObjectMeta, "ownerReferences") => field(MergeByKey("uid"), Ty::Unknown),

        // core/v1 Pod
        (Ty::Pod, "spec") => field(Atomic, Ty::PodSpec),
        (Ty::Pod, "status") => field(Atomic, Ty::PodStatus),
        (Ty::PodSpec, "volumes") => field(MergeByKey("name"), Ty::Unknown),
        (Ty::PodSpec, "initContainers" | "containers" | "ephemeralContainers") => {
            field(MergeByKey("name"), Ty::Container)
        }
        (Ty::PodSpec, "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
            field(MergeByKey("name"), Ty::Unknown)
        }
        (Ty::PodSpec, "hostAliases") => field(MergeByKey("ip"), Ty::Unknown),
        (Ty::PodSpec, "topologySpreadConstraints") => field(MergeByKey("topologyKey"), Ty::Unknown),
        (Ty::Container, "ports") => field(MergeByKey("containerPort"), Ty::Unknown),
        (Ty::Container, "env") => field(MergeByKey("name"), Ty::Unknown),
        (Ty::Container, "volumeMounts") => field(MergeByKey("mountPath"), Ty::Unknown),
        (Ty::Container, "volumeDevices") => field(MergeByKey("devicePath"), Ty::Unknown),
        (Ty::PodStatus, "conditions") => field(MergeByKey("type"), Ty::Unknown),
        (Ty::PodStatus, "hostIPs" | "podIPs") => field(MergeByKey("ip"), Ty::Unknown),
        (Ty::PodStatus, "resourceClaimStatuses") => field(MergeByKey("name"), Ty::Unknown),

        // PodTemplateSpec / PodTemplate
        (Ty::PodTemplateSpec, "metadata") => field(Atomic, Ty::ObjectMeta),
        (Ty::PodTemplateSpec, "spec") => field(Atomic, Ty::PodSpec),
        (Ty::PodTemplate, "template") => field(Atomic, Ty::PodTemplateSpec),

        // apps/v1 + batch/v1 Job + core/v1 ReplicationController
        (Ty::Workload, "spec") => field(Atomic, Ty::WorkloadSpec),
        (Ty::Workload, "status") => field(Atomic, Ty::ConditionsStatus),
        (Ty::WorkloadSpec, "template") => field(Atomic, Ty::PodTemplateSpec),
        (Ty::ConditionsStatus, "conditions") => field(MergeByKey("type"), Ty::Unknown),

        // batch/v1 CronJob
        (Ty::CronJob, "spec") => field(Atomic, Ty::CronJobSpec),
        (Ty::CronJobSpec, "jobTemplate") => field(Atomic, Ty::JobTemplateSpec),
        (Ty::JobTemplateSpec, "metadata") => field(Atomic, Ty::ObjectMeta),
        (Ty::JobTemplateSpec, "spec") => field(Atomic, Ty::WorkloadSpec),

        // core/v1 Service
        (Ty::Service, "spec") => field(Atomic, Ty::ServiceSpec),
        (Ty::Service, "status") => field(Atomic, Ty::ConditionsStatus),
        (Ty::ServiceSpec, "ports") => field(MergeByKey("port"), Ty::Unknown),

        // core/v1 Node (spec.taints has no patchStrategy: atomic)
        (Ty::Node, "spec") => field(Atomic, Ty::NodeSpec),
        (Ty::Node, "status") => field(Atomic, Ty::NodeStatus),
        (Ty::NodeSpec, "podCIDRs") => field(MergePrimitive, Ty::Unknown),
        (Ty::NodeStatus, "conditions" | "addresses") => field(MergeByKey("type"), Ty::Unknown),

        // core/v1 Namespace (spec.finalizers is atomic)
        (Ty::Namespace, "status") => field(Atomic, Ty::ConditionsStatus),

        // core/v1 ServiceAccount (imagePullSecrets is atomic here)
        (Ty::ServiceAccount, "secrets") => field(MergeByKey("name"), Ty::Unknown),

        // core/v1 PersistentVolumeClaim
        (Ty::PersistentVolumeClaim, "status") => field(Atomic, Ty::ConditionsStatus),

        _ => atomic,
    }
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE_MARKER
        || k == RETAIN_KEYS
        || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || k.starts_with(DELETE_FROM_PRIMITIVE_PREFIX)
}

/// Removes strategic-merge directives from a value that is taken verbatim
/// (for instance the elements of an atomic list). Elements of lists that
/// carry `$patch: delete` are dropped, as are bare `{"$patch": ...}` markers.
fn strip_directives(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !is_directive_key(k))
                .map(|(k, v)| (k, strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .filter(|e| match e {
                    Value::Object(m) => match m.get(DIRECTIVE_MARKER) {
                        None => true,
                        Some(d) => d.as_str() != Some("delete") && m.len() > 1,
                    },
                    _ => true,
                })
                .map(strip_directives)
                .collect(),
        ),
        other => other,
    }
}

/// Applies a Kubernetes strategic merge patch to `original`, an object of
/// the given root `kind` (e.g. `"Deployment"`).
///
/// Semantics follow k8s.io/apimachinery `strategicpatch` as used by the API
/// server (`MergeParallelList` + `IgnoreUnmatchedNulls`):
///
/// * maps merge recursively, `null` deletes a key;
/// * lists declared `patchStrategy:"merge"` merge by their `patchMergeKey`
///   (or as a union for primitive lists); all other lists are replaced;
/// * directives `$patch: replace|delete|merge` (on maps and list elements),
///   `$retainKeys`, `$setElementOrder/<field>` and
///   `$deleteFromPrimitiveList/<field>` are honoured and never left in the
///   result.
///
/// The schema knowledge is a small built-in table for core workload kinds;
/// unknown kinds still get `metadata` (ObjectMeta: `finalizers` and
/// `ownerReferences` merge) but every other list is atomic.
///
/// Deliberate deviations from Kubernetes, all in the direction of never
/// leaking directives: a patch sub-tree that has no counterpart in the
/// original is still processed (so its directives and nulls are dropped),
/// `$patch: merge` on a map is accepted as a no-op, and
/// `$deleteFromPrimitiveList` on an atomic list deletes instead of replacing.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    kind: &str,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(p) => p.clone(),
        _ => return Err(bad("a strategic merge patch must be a JSON object")),
    };
    let original = match original {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        _ => return Err(bad("the object to patch must be a JSON object")),
    };
    merge_map(original, patch, root_type(kind)).map(Value::Object)
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Ty,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.remove(DIRECTIVE_MARKER) {
        match directive.as_str() {
            Some("replace") => return merge_map(Map::new(), patch, ty),
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => {
                return Err(bad(format!(
                    "unknown patch type: {directive} in map: {}",
                    Value::Object(patch)
                )))
            }
        }
    }

    if let Some(retain) = patch.remove(RETAIN_KEYS) {
        let list = retain
            .as_array()
            .ok_or_else(|| bad("$retainKeys must be a list of field names"))?;
        let mut keep = BTreeSet::new();
        for k in list {
            let k = k
                .as_str()
                .ok_or_else(|| bad("$retainKeys must be a list of field names"))?;
            keep.insert(k.to_string());
        }
        // Fields set by the patch itself must be retained, as Kubernetes
        // validates (ErrPatchContentNotMatchRetainKeys).
        for (k, v) in &patch {
            if !is_directive_key(k) && !v.is_null() && !keep.contains(k) {
                return Err(PatchError::OperationFailed(format!(
                    "patch content doesn't match retainKeys list: field {k:?} is not in $retainKeys"
                )));
            }
        }
        original.retain(|k, _| keep.contains(k));
    }

    // $setElementOrder/<field>: merge that list now and enforce the order.
    let order_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in order_keys {
        let order_value = patch.remove(&key).unwrap_or(Value::Null);
        let name = &key[SET_ELEMENT_ORDER_PREFIX.len()..];
        if name.is_empty() {
            return Err(bad(format!("{key:?} does not name a field")));
        }
        let order = match order_value {
            Value::Array(a) => a,
            _ => return Err(bad(format!("{key} must be a list"))),
        };
        apply_set_element_order(&mut original, &mut patch, name, &order, ty)?;
    }

    for (k, pv) in patch {
        if let Some(name) = k.strip_prefix(DELETE_FROM_PRIMITIVE_PREFIX) {
            let Value::Array(to_delete) = pv else {
                return Err(bad(format!("{k} must be a list")));
            };
            if let Some(Value::Array(list)) = original.get_mut(name) {
                list.retain(|item| !to_delete.iter().any(|d| json_eq(d, item)));
            }
            continue;
        }
        if pv.is_null() {
            original.remove(&k);
            continue;
        }
        let meta = field_meta(ty, &k);
        let merged = match (original.remove(&k), pv) {
            (Some(Value::Object(o)), Value::Object(p)) => Value::Object(merge_map(o, p, meta.ty)?),
            (_, Value::Object(p)) => Value::Object(merge_map(Map::new(), p, meta.ty)?),
            (Some(Value::Array(o)), Value::Array(p)) => {
                Value::Array(merge_list_ordered(o, p, meta)?)
            }
            (_, Value::Array(p)) => Value::Array(merge_list_ordered(Vec::new(), p, meta)?),
            (_, scalar) => scalar,
        };
        original.insert(k, merged);
    }
    Ok(original)
}

/// Merges the list `name` (if the patch has it) and then orders the result
/// following `$setElementOrder/<name>`: elements named in the order list come
/// in that order, server-only elements keep their relative place from the
/// live list.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    name: &str,
    order: &[Value],
    ty: Ty,
) -> Result<(), PatchError> {
    let meta = field_meta(ty, name);
    let merge_key = match meta.list {
        ListStrategy::MergeByKey(k) => Some(k),
        _ => None,
    };
    if let Some(mk) = merge_key {
        for item in order {
            if item.get(mk).is_none() {
                return Err(PatchError::MissingMergeKey {
                    key: mk.to_string(),
                    element: item.to_string(),
                });
            }
        }
    }
    let original_list = match original.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => {
            return Err(bad(format!(
                "$setElementOrder/{name} refers to a field that is not a list"
            )))
        }
    };
    let patch_list = match patch.remove(name) {
        None => None,
        Some(Value::Null) => {
            // The whole list is deleted; nothing left to order.
            original.remove(name);
            return Ok(());
        }
        Some(Value::Array(a)) => Some(a),
        Some(other) => {
            // Not a list: let the regular merge handle it.
            patch.insert(name.to_string(), other);
            return Ok(());
        }
    };
    if let Some(p) = &patch_list {
        validate_patch_with_order(p, order, merge_key)?;
    }
    let merged = match (original_list.clone(), patch_list) {
        (Some(o), None) => o,
        (None, Some(p)) => merge_list(Vec::new(), p, meta)?,
        (Some(o), Some(p)) => merge_list(o, p, meta)?,
        (None, None) => return Ok(()),
    };
    if meta.list == ListStrategy::Atomic {
        original.insert(name.to_string(), Value::Array(merged));
        return Ok(());
    }
    let (patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| index_in(order, item, merge_key).is_some());
    let server_order = original_list.unwrap_or_default();
    let patch_items = normalize_slice_order(patch_items, order, merge_key);
    let server_only = normalize_slice_order(server_only, &server_order, merge_key);
    let result = merge_sorted(server_only, patch_items, &server_order, merge_key);
    original.insert(name.to_string(), Value::Array(result));
    Ok(())
}

/// The identity of a list element: its merge key value (lists of maps) or
/// the element itself (lists of primitives).
fn element_key<'a>(v: &'a Value, merge_key: Option<&str>) -> Option<&'a Value> {
    match merge_key {
        Some(mk) => v.as_object().and_then(|m| m.get(mk)),
        None => Some(v),
    }
}

fn index_in(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    let key = element_key(item, merge_key)?;
    list.iter().position(|o| {
        element_key(o, merge_key)
            .map(|k| json_eq(k, key))
            .unwrap_or(false)
    })
}

/// Sorts the items found in `order` by their position there; items not in
/// `order` follow, in their current relative order.
fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let mut known: Vec<(usize, Value)> = Vec::new();
    let mut unknown: Vec<Value> = Vec::new();
    for v in items {
        match index_in(order, &v, merge_key) {
            Some(i) => known.push((i, v)),
            None => unknown.push(v),
        }
    }
    known.sort_by_key(|(i, _)| *i);
    known.into_iter().map(|(_, v)| v).chain(unknown).collect()
}

/// Merges server-only items (`left`) with patch items (`right`): a server
/// item goes first only when both are in the live list and it precedes.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_in(server_order, l, merge_key),
                    index_in(server_order, r, merge_key),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        match next {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

/// Checks that the (non-directive) patch list items appear in the
/// `$setElementOrder` list in the same relative order.
fn validate_patch_with_order(
    patch: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    let items: Vec<&Value> = patch
        .iter()
        .filter(|v| {
            !v.as_object()
                .map(|m| m.contains_key(DIRECTIVE_MARKER))
                .unwrap_or(false)
        })
        .collect();
    if items.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut pi = 0;
    let mut oi = 0;
    while pi < items.len() && oi < order.len() {
        let same = match (
            element_key(items[pi], merge_key),
            element_key(&order[oi], merge_key),
        ) {
            (Some(a), Some(b)) => json_eq(a, b),
            _ => false,
        };
        if same {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(bad(format!(
            "the order in patch list {} doesn't match $setElementOrder list {}",
            Value::Array(patch.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

/// Merges a list the way Kubernetes' `mergeSlice` does when the patch carries
/// no `$setElementOrder` for it, including its final ordering: the elements
/// the patch names (merged or new) come in the patch's order, server-only
/// elements keep their live order, and the two are interleaved so that a
/// server-only element stays before a patched element it preceded in the
/// live list. An element new to the list therefore goes before every
/// server-only element that is not followed by a patched one: a new container
/// patched into `[a]` gives `[new, a]`, as the API server answers.
fn merge_list_ordered(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
) -> Result<Vec<Value>, PatchError> {
    let merge_key = match meta.list {
        ListStrategy::Atomic => return merge_list(original, patch, meta),
        ListStrategy::MergeByKey(k) => Some(k),
        ListStrategy::MergePrimitive => None,
    };
    let patch_order: Vec<Value> = patch
        .iter()
        .filter(|v| {
            !v.as_object()
                .map(|m| m.contains_key(DIRECTIVE_MARKER))
                .unwrap_or(false)
        })
        .cloned()
        .collect();
    let server_order = original.clone();
    let merged = merge_list(original, patch, meta)?;
    let (patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| index_in(&patch_order, item, merge_key).is_some());
    let patch_items = normalize_slice_order(patch_items, &patch_order, merge_key);
    let server_only = normalize_slice_order(server_only, &server_order, merge_key);
    Ok(merge_sorted(
        server_only,
        patch_items,
        &server_order,
        merge_key,
    ))
}

fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
) -> Result<Vec<Value>, PatchError> {
    match meta.list {
        ListStrategy::Atomic => Ok(patch
            .into_iter()
            .filter(|e| match e {
                Value::Object(m) => match m.get(DIRECTIVE_MARKER) {
                    None => true,
                    Some(d) => d.as_str() != Some("delete") && m.len() > 1,
                },
                _ => true,
            })
            .map(strip_directives)
            .collect()),
        ListStrategy::MergePrimitive => {
            let mut replace = false;
            let mut items = Vec::with_capacity(patch.len());
            for e in patch {
                if let Value::Object(m) = &e {
                    if let Some(d) = m.get(DIRECTIVE_MARKER) {
                        match d.as_str() {
                            Some("replace") => {
                                replace = true;
                                continue;
                            }
                            Some("merge") => {
                                return Err(bad(
                                    "merging lists cannot yet be specified in the patch",
                                ))
                            }
                            _ => {
                                return Err(bad(format!(
                                    "unknown patch type: {d} in list of primitives"
                                )))
                            }
                        }
                    }
                }
                items.push(strip_directives(e));
            }
            let base = if replace { Vec::new() } else { original };
            let mut out: Vec<Value> = Vec::with_capacity(base.len() + items.len());
            for v in base.into_iter().chain(items) {
                if !out.iter().any(|o| json_eq(o, &v)) {
                    out.push(v);
                }
            }
            Ok(out)
        }
        ListStrategy::MergeByKey(mk) => {
            let mut original = original;
            let mut replace = false;
            let mut items: Vec<Map<String, Value>> = Vec::with_capacity(patch.len());
            for e in patch {
                let Value::Object(m) = e else {
                    return Err(bad(format!(
                        "list elements merged by key {mk:?} must be objects, got {e}"
                    )));
                };
                match m.get(DIRECTIVE_MARKER) {
                    None => items.push(m),
                    Some(d) => match d.as_str() {
                        Some("delete") => {
                            let Some(key) = m.get(mk) else {
                                return Err(PatchError::MissingMergeKey {
                                    key: mk.to_string(),
                                    element: Value::Object(m).to_string(),
                                });
                            };
                            original.retain(|o| {
                                !o.as_object()
                                    .and_then(|om| om.get(mk))
                                    .map(|ok| json_eq(ok, key))
                                    .unwrap_or(false)
                            });
                        }
                        Some("replace") => replace = true,
                        Some("merge") => {
                            return Err(bad("merging lists cannot yet be specified in the patch"))
                        }
                        _ => {
                            return Err(bad(format!(
                                "unknown patch type: {d} in map: {}",
                                Value::Object(m.clone())
                            )))
                        }
                    },
                }
            }
            if replace {
                return items
                    .into_iter()
                    .map(|m| merge_map(Map::new(), m, meta.ty).map(Value::Object))
                    .collect();
            }
            for item in items {
                let Some(key) = item.get(mk).cloned() else {
                    return Err(PatchError::MissingMergeKey {
                        key: mk.to_string(),
                        element: Value::Object(item).to_string(),
                    });
                };
                let pos = original.iter().position(|o| {
                    o.as_object()
                        .and_then(|om| om.get(mk))
                        .map(|ok| json_eq(ok, &key))
                        .unwrap_or(false)
                });
                match pos {
                    Some(i) => {
                        let base = match std::mem::take(&mut original[i]) {
                            Value::Object(om) => om,
                            _ => Map::new(),
                        };
                        original[i] = Value::Object(merge_map(base, item, meta.ty)?);
                    }
                    None => original.push(Value::Object(merge_map(Map::new(), item, meta.ty)?)),
                }
            }
            Ok(original)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assert_no_directives(v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    assert!(!is_directive_key(k), "directive {k} leaked into {m:?}");
                    assert_no_directives(v);
                }
            }
            Value::Array(a) => a.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    fn smp(original: Value, patch: Value, kind: &str) -> Value {
        let out = strategic_merge_patch(&original, &patch, kind).expect("patch applies");
        assert_no_directives(&out);
        out
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"},
                "finalizers": ["a.example.com/x"]
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:1.25",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "env": [{"name": "A", "value": "1"}],
                                "resources": {},
                                "imagePullPolicy": "IfNotPresent"
                            },
                            {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]}
                        ],
                        "restartPolicy": "Always",
                        "tolerations": [{"key": "t1", "operator": "Exists"}]
                    }
                }
            },
            "status": {
                "replicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True"},
                    {"type": "Progressing", "status": "True"}
                ]
            }
        })
    }

    // ---------------- merge patch ----------------

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            assert_eq!(
                merge_patch(&target, &patch),
                want,
                "target {target} patch {patch}"
            );
        }
    }

    #[test]
    fn merge_patch_label_removal_like_kubectl_label() {
        let obj = json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
        let out = merge_patch(
            &obj,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
        );
        assert_eq!(
            out,
            json!({"metadata": {"name": "p", "labels": {"b": "2", "c": "3"}}})
        );
    }

    // ---------------- JSON patch ----------------

    #[test]
    fn json_patch_add_remove_replace() {
        let doc = json!({"foo": "bar", "list": [1, 2, 3]});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/baz", "value": "qux"},
                {"op": "add", "path": "/list/1", "value": 9},
                {"op": "add", "path": "/list/-", "value": 4},
                {"op": "remove", "path": "/foo"},
                {"op": "replace", "path": "/list/0", "value": 0}
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"baz": "qux", "list": [0, 9, 2, 3, 4]}));
    }

    #[test]
    fn json_patch_move_copy_test() {
        let doc = json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "move", "from": "/foo/waldo", "path": "/qux/thud"},
                {"op": "copy", "from": "/foo/bar", "path": "/copied"},
                {"op": "test", "path": "/qux/thud", "value": "fred"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}, "copied": "baz"})
        );
        // move within an array
        let out = json_patch(
            &json!([1, 2, 3, 4]),
            &json!([{"op": "move", "from": "/1", "path": "/3"}]),
        )
        .unwrap();
        assert_eq!(out, json!([1, 3, 4, 2]));
    }

    #[test]
    fn json_patch_pointer_escaping() {
        let doc = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x", "a~b": "y"}}});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "x"},
                {"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"},
                {"op": "replace", "path": "/metadata/labels/a~0b", "value": "z"}
            ]),
        )
        .unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"a~b": "z"}}}));
        assert!(matches!(
            json_patch(
                &doc,
                &json!([{"op": "remove", "path": "/metadata/labels/a~2b"}])
            ),
            Err(PatchError::BadPatch(_))
        ));
        assert_eq!(
            parse_json_pointer("/a~1b/~0~1/").unwrap(),
            vec!["a/b", "~/", ""]
        );
        assert!(parse_json_pointer("a").is_err());
    }

    #[test]
    fn json_patch_test_failure_is_error() {
        let doc = json!({"spec": {"replicas": 3}});
        let err = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/spec/replicas", "value": 2},
                {"op": "replace", "path": "/spec/replicas", "value": 5}
            ]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            PatchError::TestFailed {
                path: "/spec/replicas".into()
            }
        );
        assert_eq!(err.http_status(), 422);
        assert!(err.to_string().contains("/spec/replicas"));
        // test against a missing path also fails
        assert!(matches!(
            json_patch(
                &doc,
                &json!([{"op": "test", "path": "/nope", "value": null}])
            ),
            Err(PatchError::TestFailed { .. })
        ));
        // numbers compare by value
        assert!(json_patch(
            &doc,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 3.0}])
        )
        .is_ok());
        // whole-document test
        assert!(json_patch(
            &doc,
            &json!([{"op": "test", "path": "", "value": {"spec": {"replicas": 3}}}])
        )
        .is_ok());
    }

    #[test]
    fn json_patch_errors() {
        let doc = json!({"a": {"b": [1, 2]}, "s": "x"});
        let bad_patches = [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"path": "/a"}]),
            json!([{"op": "add", "path": "/a/c"}]),
            json!(["not an object"]),
            json!([{"op": "add", "path": 5, "value": 1}]),
            json!([{"op": "move", "path": "/a"}]),
        ];
        for p in bad_patches {
            let err = json_patch(&doc, &p).unwrap_err();
            assert_eq!(err.http_status(), 400, "{p}: {err}");
        }
        let failing = [
            json!([{"op": "add", "path": "/missing/child", "value": 1}]),
            json!([{"op": "add", "path": "/a/b/3", "value": 1}]),
            json!([{"op": "add", "path": "/a/b/01", "value": 1}]),
            json!([{"op": "add", "path": "/a/b/x", "value": 1}]),
            json!([{"op": "add", "path": "/s/x", "value": 1}]),
            json!([{"op": "remove", "path": "/nope"}]),
            json!([{"op": "remove", "path": "/a/b/2"}]),
            json!([{"op": "remove", "path": "/a/b/-"}]),
            json!([{"op": "remove", "path": ""}]),
            json!([{"op": "replace", "path": "/nope", "value": 1}]),
            json!([{"op": "replace", "path": "/a/b/18446744073709551616", "value": 1}]),
            json!([{"op": "move", "from": "/a", "path": "/a/child"}]),
            json!([{"op": "move", "from": "/nope", "path": "/x"}]),
            json!([{"op": "copy", "from": "/nope", "path": "/x"}]),
        ];
        for p in failing {
            let err = json_patch(&doc, &p).unwrap_err();
            assert_eq!(err.http_status(), 422, "{p}: {err}");
        }
    }

    #[test]
    fn json_patch_root_and_null_values() {
        let doc = json!({"a": 1});
        assert_eq!(
            json_patch(&doc, &json!([{"op": "replace", "path": "", "value": [1]}])).unwrap(),
            json!([1])
        );
        assert_eq!(
            json_patch(&doc, &json!([{"op": "add", "path": "", "value": {"b": 2}}])).unwrap(),
            json!({"b": 2})
        );
        assert_eq!(
            json_patch(&doc, &json!([{"op": "add", "path": "/n", "value": null}])).unwrap(),
            json!({"a": 1, "n": null})
        );
        assert_eq!(json_patch(&doc, &json!([])).unwrap(), doc);
    }

    // ---------------- strategic merge patch ----------------

    #[test]
    fn smp_kubectl_apply_image_change_and_env_add() {
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "new"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                    "env": [{"name": "B", "value": "2"}],
                    "image": "nginx:1.26",
                    "name": "nginx"
                }]
            }}}
        });
        let out = smp(deployment(), patch, "Deployment");
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().unwrap().len(), 2);
        assert_eq!(containers[0]["name"], "nginx");
        assert_eq!(containers[0]["image"], "nginx:1.26");
        assert_eq!(containers[0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            containers[0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(
            containers[1],
            deployment()["spec"]["template"]["spec"]["containers"][1]
        );
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "new"
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(out["status"], deployment()["status"]);
    }

    #[test]
    fn smp_kubectl_apply_removes_container_with_patch_delete() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"$patch": "delete", "name": "sidecar"}]
        }}}});
        let out = smp(deployment(), patch, "Deployment");
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "nginx");
        assert_eq!(containers[0]["image"], "nginx:1.25");
    }

    #[test]
    fn smp_set_element_order_reorders_and_keeps_server_only_items_in_place() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]
        }}}});
        let out = smp(deployment(), patch, "Deployment");
        let names: Vec<_> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("sidecar"), json!("nginx")]);

        let pod = json!({"spec": {"containers": [{"name": "c", "env": [
            {"name": "A", "value": "1"}, {"name": "S", "value": "server"}, {"name": "B", "value": "2"}
        ]}]}});
        let patch = json!({"spec": {"containers": [{
            "name": "c",
            "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
            "env": [{"name": "C", "value": "3"}]
        }]}});
        let out = smp(pod, patch, "Pod");
        let names: Vec<_> = out["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["A", "S", "B", "C"]);
    }

    #[test]
    fn smp_set_element_order_mismatch_is_bad_request() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"name": "other", "image": "x"}]
        }}}});
        let err = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap_err();
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn smp_label_add_and_remove() {
        let patch = json!({"metadata": {"labels": {"app": null, "tier": "frontend"}}});
        let out = smp(deployment(), patch, "Deployment");
        assert_eq!(out["metadata"]["labels"], json!({"tier": "frontend"}));
        // removing a label that does not exist, on an object without labels
        let out = smp(
            json!({"metadata": {"name": "x"}}),
            json!({"metadata": {"labels": {"a": null}}}),
            "ConfigMap",
        );
        assert_eq!(out, json!({"metadata": {"name": "x", "labels": {}}}));
    }

    #[test]
    fn smp_env_value_to_value_from() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{
            "name": "nginx",
            "env": [{"name": "A", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
        }]}}}});
        let out = smp(deployment(), patch, "Deployment");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
        );
    }

    #[test]
    fn smp_atomic_lists_are_replaced() {
        let patch = json!({"spec": {"template": {"spec": {
            "tolerations": [{"key": "t2", "operator": "Exists"}],
            "containers": [{"name": "sidecar", "command": ["sh"]}]
        }}}});
        let out = smp(deployment(), patch, "Deployment");
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(
            spec["tolerations"],
            json!([{"key": "t2", "operator": "Exists"}])
        );
        assert_eq!(spec["containers"][1]["command"], json!(["sh"]));
        assert_eq!(spec["containers"][1]["image"], "busybox");
    }

    #[test]
    fn smp_retain_keys_on_deployment_strategy() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
        let out = smp(deployment(), patch, "Deployment");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let bad = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
        let err = strategic_merge_patch(&deployment(), &bad, "Deployment").unwrap_err();
        assert_eq!(err.http_status(), 422);
    }

    #[test]
    fn smp_volumes_merge_by_name_with_retain_keys() {
        let pod = json!({"spec": {"volumes": [
            {"name": "a", "emptyDir": {}},
            {"name": "b", "secret": {"secretName": "s"}}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/volumes": [{"name": "a"}, {"name": "b"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "a"}]
        }});
        let out = smp(pod, patch, "Pod");
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "a", "configMap": {"name": "cm"}}, {"name": "b", "secret": {"secretName": "s"}}])
        );
    }

    #[test]
    fn smp_patch_replace_and_delete_directives() {
        // $patch: replace on a map
        let patch = json!({"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "x": "1"}}}}});
        let out = smp(deployment(), patch, "Deployment");
        assert_eq!(
            out["spec"]["template"]["metadata"]["labels"],
            json!({"x": "1"})
        );
        // $patch: replace on a list
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "only", "image": "i"}, {"$patch": "replace"}
        ]}}}});
        let out = smp(deployment(), patch, "Deployment");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "i"}])
        );
        // $patch: delete on a map
        let patch = json!({"metadata": {"annotations": {"$patch": "delete"}}});
        let out = smp(deployment(), patch, "Deployment");
        assert_eq!(out["metadata"]["annotations"], json!({}));
        // $patch: merge is a no-op marker
        let patch = json!({"metadata": {"labels": {"$patch": "merge", "x": "y"}}});
        let out = smp(deployment(), patch, "Deployment");
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "x": "y"}));
        // unknown directive value
        let patch = json!({"metadata": {"labels": {"$patch": "explode"}}});
        let err = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap_err();
        assert_eq!(err.http_status(), 400);
        // delete of a list element without merge key
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}});
        assert!(matches!(
            strategic_merge_patch(&deployment(), &patch, "Deployment"),
            Err(PatchError::MissingMergeKey { .. })
        ));
    }

    #[test]
    fn smp_missing_merge_key_is_error() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let err = strategic_merge_patch(&deployment(), &patch, "Deployment").unwrap_err();
        assert_eq!(
            err,
            PatchError::MissingMergeKey {
                key: "name".into(),
                element: json!({"image": "x"}).to_string()
            }
        );
        assert!(err
            .to_string()
            .contains("does not contain declared merge key: name"));
    }

    #[test]
    fn smp_new_merge_key_item_goes_first_like_upstream() {
        // The conformance test "ReplicaSet Replace and Patch": a container named in the
        // patch but not on the server ends up at index 0.
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "test-rs"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "agnhost", "image": "agnhost:2.43"}]}}}});
        let out = smp(
            rs,
            json!({"metadata": {"labels": {"test-rs": "patched"}}, "spec": {"replicas": 3,
                "template": {"spec": {"terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "test-rs", "image": "pause:3.9"}]}}}}),
            "ReplicaSet",
        );
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["test-rs", "agnhost"]);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "pause:3.9"
        );
    }

    #[test]
    fn smp_merged_list_order_interleaves_like_upstream_merge_slice() {
        let pod = |names: &[&str]| {
            json!({"kind": "Pod", "spec": {"containers": names.iter()
                .map(|n| json!({"name": n, "image": "old"})).collect::<Vec<_>>()}})
        };
        let names = |v: &Value| -> Vec<String> {
            v["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        // Server [a, b, c], patch [b, d]: a precedes the patched b and stays first; the new
        // d follows b (patch order) and comes before the server-only c.
        let out = smp(
            pod(&["a", "b", "c"]),
            json!({"spec": {"containers": [{"name": "b", "image": "new"}, {"name": "d", "image": "new"}]}}),
            "Pod",
        );
        assert_eq!(names(&out), ["a", "b", "d", "c"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "new");
        // The patch reorders the items it names: server [a, b], patch [b, a] gives [b, a].
        let out = smp(
            pod(&["a", "b"]),
            json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}]}}),
            "Pod",
        );
        assert_eq!(names(&out), ["b", "a"]);
        // Deletions keep the rest in place.
        let out = smp(
            pod(&["a", "b", "c"]),
            json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}, {"name": "e"}]}}),
            "Pod",
        );
        assert_eq!(names(&out), ["e", "a", "c"]);
    }

    #[test]
    fn smp_finalizers_primitive_merge_and_delete_list() {
        let obj = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
        let out = smp(
            obj.clone(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
            "ConfigMap",
        );
        // Upstream's mergeSlice order: patch items in patch order ("c" is new, so it leads;
        // "b", server-only, stays after "a", which preceded it on the server).
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let patch = json!({"metadata": {
            "$setElementOrder/finalizers": ["b", "c"],
            "$deleteFromPrimitiveList/finalizers": ["a"],
            "finalizers": ["c"]
        }});
        let out = smp(obj.clone(), patch, "Widget");
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c"]));
        let out = smp(obj, json!({"metadata": {"finalizers": null}}), "Pod");
        assert_eq!(out["metadata"], json!({"name": "x"}));
    }

    #[test]
    fn smp_owner_references_merge_by_uid() {
        let obj = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "kind": "ReplicaSet"}]}});
        let out = smp(
            obj,
            json!({"metadata": {"ownerReferences": [{"uid": "1", "controller": true}, {"uid": "2", "name": "b"}]}}),
            "Pod",
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "1", "name": "a", "kind": "ReplicaSet", "controller": true}, {"uid": "2", "name": "b"}])
        );
    }

    #[test]
    fn smp_pod_status_conditions_by_type() {
        let pod = json!({"kind": "Pod", "spec": {"nodeName": "n1"}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False"}
        ]}});
        let patch = json!({"status": {
            "$setElementOrder/conditions": [{"type": "PodScheduled"}, {"type": "Initialized"}, {"type": "Ready"}],
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.5"}]
        }});
        let out = smp(pod, patch, "Pod");
        assert_eq!(
            out["status"]["conditions"],
            json!([
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True"}
            ])
        );
        assert_eq!(out["status"]["phase"], "Running");
        assert_eq!(out["status"]["podIPs"], json!([{"ip": "10.0.0.5"}]));
    }

    #[test]
    fn smp_node_conditions_addresses_and_atomic_taints() {
        let node = json!({"spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "1.2.3.4"}]}});
        let patch = json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}], "podCIDRs": ["10.0.0.0/24", "fd00::/64"]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "n1"}]}});
        let out = smp(node, patch, "Node");
        assert_eq!(
            out["spec"]["taints"],
            json!([{"key": "b", "effect": "NoExecute"}])
        );
        assert_eq!(out["spec"]["podCIDRs"], json!(["10.0.0.0/24", "fd00::/64"]));
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
        );
        assert_eq!(
            out["status"]["addresses"],
            // merged by type, the new address first (upstream's mergeSlice order)
            json!([{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "1.2.3.4"}])
        );
    }

    #[test]
    fn smp_service_ports_merge_by_port() {
        let svc = json!({"spec": {"selector": {"app": "a"}, "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
        ]}});
        let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443, "name": "https"}], "selector": {"app": "b"}}});
        let out = smp(svc, patch, "Service");
        assert_eq!(
            out["spec"]["ports"],
            json!([{"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"}, {"port": 443, "name": "https"}])
        );
        assert_eq!(out["spec"]["selector"], json!({"app": "b"}));
    }

    #[test]
    fn smp_templates_of_other_workloads_and_cronjob() {
        for kind in [
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "ReplicationController",
        ] {
            let obj = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}}});
            let out = smp(
                obj,
                json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}}}),
                kind,
            );
            assert_eq!(
                out["spec"]["template"]["spec"]["containers"],
                json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]),
                "{kind}"
            );
        }
        let cj = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}}}}});
        let out = smp(
            cj,
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["x"]}]}}}}}}),
            "CronJob",
        );
        assert_eq!(
            out["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "1", "args": ["x"]}])
        );
    }

    #[test]
    fn smp_unknown_kind_lists_are_atomic_maps_merge() {
        let obj = json!({"metadata": {"name": "w"}, "spec": {"containers": [{"name": "a"}], "m": {"x": 1, "y": 2}}});
        let patch = json!({"spec": {"containers": [{"name": "b"}], "m": {"y": null, "z": 3}}});
        let out = smp(obj, patch, "Widget");
        assert_eq!(
            out["spec"],
            json!({"containers": [{"name": "b"}], "m": {"x": 1, "z": 3}})
        );
        // Pod containers without Pod kind knowledge are atomic too.
        let out = smp(
            json!({"spec": {"containers": [{"name": "a"}]}}),
            json!({"spec": {"containers": [{"name": "b"}]}}),
            "ConfigMap",
        );
        assert_eq!(out["spec"]["containers"], json!([{"name": "b"}]));
        // `$`-keys that are not directives (e.g. JSON schema `$ref`) are ordinary keys.
        let out = smp(
            json!({}),
            json!({"spec": {"$ref": "#/x"}}),
            "CustomResourceDefinition",
        );
        assert_eq!(out, json!({"spec": {"$ref": "#/x"}}));
    }

    #[test]
    fn smp_new_subtrees_never_leak_directives_or_nulls() {
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/initContainers": [{"name": "i"}],
            "initContainers": [{"name": "i", "image": "x", "env": [{"name": "E", "value": null}],
                                "$setElementOrder/env": [{"name": "E"}]}],
            "affinity": {"nodeAffinity": {"$patch": "replace", "x": null}},
            "tolerations": [{"$patch": "replace"}, {"key": "k", "$retainKeys": ["key"]}]
        }});
        let out = smp(pod, patch, "Pod");
        assert_eq!(
            out["spec"]["initContainers"],
            json!([{"name": "i", "image": "x", "env": [{"name": "E"}]}])
        );
        assert_eq!(out["spec"]["affinity"], json!({"nodeAffinity": {}}));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "k"}]));
    }

    #[test]
    fn smp_container_ports_match_numerically() {
        let pod = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]}});
        let patch = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80.0, "hostPort": 8080}]}]}});
        let out = smp(pod, patch, "Pod");
        // One merged element (the patch's value of the key wins, like in Go).
        assert!(json_eq(
            &out["spec"]["containers"][0]["ports"],
            &json!([{"containerPort": 80, "name": "http", "hostPort": 8080}])
        ));
    }

    #[test]
    fn smp_rejects_non_object_patch() {
        assert!(strategic_merge_patch(&json!({}), &json!([1]), "Pod").is_err());
        assert!(strategic_merge_patch(&json!([]), &json!({}), "Pod").is_err());
        assert_eq!(
            strategic_merge_patch(&Value::Null, &json!({"a": 1}), "Pod").unwrap(),
            json!({"a": 1})
        );
        // list merged by key with a non-object element
        let err = strategic_merge_patch(&json!({}), &json!({"spec": {"containers": ["x"]}}), "Pod")
            .unwrap_err();
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn smp_type_mismatch_replaces() {
        let out = smp(json!({"a": {"b": 1}}), json!({"a": [1]}), "Widget");
        assert_eq!(out, json!({"a": [1]}));
        let out = smp(
            json!({"a": "s"}),
            json!({"a": {"b": null, "c": 1}}),
            "Widget",
        );
        assert_eq!(out, json!({"a": {"c": 1}}));
    }

    #[test]
    fn smp_delete_from_primitive_list_on_atomic_list_deletes() {
        let ns = json!({"spec": {"finalizers": ["kubernetes", "x"]}});
        let out = smp(
            ns,
            json!({"spec": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
            "Namespace",
        );
        assert_eq!(out["spec"]["finalizers"], json!(["kubernetes"]));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn key(directives: bool) -> BoxedStrategy<String> {
            let mut keys = vec![
                "metadata",
                "spec",
                "status",
                "template",
                "containers",
                "initContainers",
                "name",
                "env",
                "ports",
                "containerPort",
                "finalizers",
                "labels",
                "conditions",
                "type",
                "volumes",
                "x",
                "y",
            ];
            if directives {
                keys.extend([
                    "$patch",
                    "$retainKeys",
                    "$setElementOrder/containers",
                    "$setElementOrder/env",
                    "$setElementOrder/finalizers",
                    "$setElementOrder/x",
                    "$deleteFromPrimitiveList/finalizers",
                    "$deleteFromPrimitiveList/x",
                ]);
            }
            proptest::sample::select(keys)
                .prop_map(str::to_string)
                .boxed()
        }

        fn value(directives: bool) -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (0i64..100).prop_map(|n| json!(n)),
                proptest::sample::select(vec!["replace", "delete", "merge", "a", "b", "name", "x"])
                    .prop_map(|s| Value::String(s.to_string())),
            ];
            leaf.prop_recursive(5, 64, 6, move |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    proptest::collection::btree_map(key(directives), inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn pointer() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                proptest::sample::select(vec![
                    "spec",
                    "0",
                    "1",
                    "-",
                    "x",
                    "a~1b",
                    "~0",
                    "01",
                    "containers",
                    "~2",
                    "",
                ]),
                0..4,
            )
            .prop_map(|parts| parts.iter().map(|p| format!("/{p}")).collect())
        }

        fn op() -> impl Strategy<Value = Value> {
            (
                proptest::sample::select(vec!["add", "remove", "replace", "move", "copy", "test", "bogus"]),
                pointer(),
                pointer(),
                value(false),
            )
                .prop_map(|(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(400))]

            #[test]
            fn strategic_merge_patch_never_panics_or_leaks(
                original in value(false),
                patch in value(true),
                kind in proptest::sample::select(vec!["Pod", "Deployment", "Node", "Widget"]),
            ) {
                if let Ok(out) = strategic_merge_patch(&original, &patch, kind) {
                    assert_no_directives(&out);
                }
            }

            #[test]
            fn json_patch_never_panics(doc in value(false), ops in proptest::collection::vec(op(), 0..6)) {
                let _ = json_patch(&doc, &Value::Array(ops));
            }

            #[test]
            fn merge_patch_is_idempotent(doc in value(false), patch in value(false)) {
                let once = merge_patch(&doc, &patch);
                prop_assert_eq!(merge_patch(&once, &patch), once);
            }
        }
    }
}
