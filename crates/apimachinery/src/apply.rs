//! Server-side apply and `metadata.managedFields`, with the semantics of
//! sigs.k8s.io/structured-merge-diff as the Kubernetes API server uses them.
//!
//! * [`FieldSet`]: a set of field paths in the `FieldsV1` encoding (`f:<name>`,
//!   `k:{<merge key fields as JSON>}`, `v:<value as JSON>`, `i:<index>`, `.` for the
//!   element itself);
//! * [`object_fields`]: the field set of an object of some kind;
//! * [`update`]: ownership after a non-apply write (create, update, patch);
//! * [`apply`]: the merge of an applied configuration with conflict detection.
//!
//! For built-in kinds the list types come from the strategic merge patch's knowledge of
//! Kubernetes types ([`SchemaNode`]): lists with a patch merge key are associative, lists of
//! primitives with a merge strategy are sets, every other list is atomic. Maps merge per key.
//! For custom resources ([`Schema::OpenApi`]) they come from the version's openAPIV3Schema:
//! `x-kubernetes-list-type` (`atomic`, the default, `set`, `map` with
//! `x-kubernetes-list-map-keys`) and `x-kubernetes-map-type` (`granular`, the default, or
//! `atomic`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::patch::{ListType, SchemaNode};

/// Errors of managed-fields decoding and of apply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    /// `metadata.managedFields` is not a valid list of entries.
    #[error("invalid managedFields: {0}")]
    InvalidManagedFields(String),
    /// A `fieldsV1` value is not a valid field set.
    #[error("invalid fieldsV1: {0}")]
    InvalidFieldsV1(String),
    /// An associative list of the applied configuration repeats a key.
    #[error("{path}: duplicate entries for key {key}")]
    DuplicateKey {
        /// The list (`.spec.containers`).
        path: String,
        /// The repeated key (`[name="c"]`).
        key: String,
    },
    /// The applied configuration sets fields other managers own with other values.
    #[error("{}", .0.message())]
    Conflicts(Conflicts),
}

/// A set of field paths. A node is a member itself (`own`) and/or has members below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    own: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no path is a member.
    pub fn is_empty(&self) -> bool {
        !self.own && self.children.values().all(|c| c.is_empty())
    }

    fn leaf() -> Self {
        FieldSet {
            own: true,
            children: BTreeMap::new(),
        }
    }

    /// Decode a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> Result<Self, ApplyError> {
        let m = v
            .as_object()
            .ok_or_else(|| ApplyError::InvalidFieldsV1(format!("expected an object, got {v}")))?;
        let mut s = FieldSet::new();
        for (k, c) in m {
            if k == "." {
                s.own = true;
                continue;
            }
            check_element(k)?;
            let mut child = FieldSet::from_fields_v1(c)?;
            if child.children.is_empty() {
                child.own = true;
            }
            s.children.insert(k.clone(), child);
        }
        Ok(s)
    }

    /// Encode as a `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        let live: Vec<(&String, &FieldSet)> = self
            .children
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if self.own && !live.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in live {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Insert one path (a list of encoded path elements) as a member.
    pub fn insert(&mut self, path: &[&str]) {
        match path.split_first() {
            None => self.own = true,
            Some((first, rest)) => self
                .children
                .entry((*first).to_string())
                .or_default()
                .insert(rest),
        }
    }

    /// True when `path` is a member.
    pub fn has(&self, path: &[&str]) -> bool {
        match path.split_first() {
            None => self.own,
            Some((first, rest)) => self.children.get(*first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Members of either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.own |= other.own;
        for (k, c) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// Members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            own: self.own && !other.own,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            own: self.own && other.own,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path, as encoded path elements, in order.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.own && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    fn child(&self, k: &str) -> Option<&FieldSet> {
        self.children.get(k)
    }

    fn remove_child(&mut self, k: &str) {
        self.children.remove(k);
    }
}

fn check_element(k: &str) -> Result<(), ApplyError> {
    let bad = || ApplyError::InvalidFieldsV1(format!("invalid path element {k:?}"));
    if let Some(rest) = k.strip_prefix("k:") {
        match serde_json::from_str::<Value>(rest) {
            Ok(Value::Object(_)) => Ok(()),
            _ => Err(bad()),
        }
    } else if let Some(rest) = k.strip_prefix("v:") {
        serde_json::from_str::<Value>(rest)
            .map(|_| ())
            .map_err(|_| bad())
    } else if let Some(rest) = k.strip_prefix("i:") {
        rest.parse::<usize>().map(|_| ()).map_err(|_| bad())
    } else if k.starts_with("f:") {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A path in the notation of structured-merge-diff messages: `.spec.replicas`,
/// `.spec.containers[name="app"].image`, `.metadata.finalizers[="x"]`, `[0]`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let fields: Vec<String> = match serde_json::from_str::<Map<String, Value>>(k) {
                Ok(m) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                Err(_) => vec![k.to_string()],
            };
            s.push('[');
            s.push_str(&fields.join(","));
            s.push(']');
        } else if let Some(v) = e.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = e.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        } else {
            s.push_str(e);
        }
    }
    s
}

// ---------------------------------------------------------------- field sets of objects

/// Which part of an object a write may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything (kinds without a status subresource).
    All,
    /// A main-resource write of a kind with a status subresource: `status` is not owned.
    MainWithoutStatus,
    /// A write to the status subresource: only `status` is owned.
    Status,
}

/// The schema server-side apply walks an object with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema<'a> {
    /// A built-in kind: the strategic-merge knowledge of its type.
    Builtin,
    /// A custom resource: its version's structural openAPIV3Schema (None: no schema, every
    /// map granular and every list atomic).
    OpenApi(Option<&'a Value>),
}

/// How a list is merged (the `x-kubernetes-list-type`), with the keys of associative lists.
#[derive(Debug, Clone, Copy)]
enum Lt<'a> {
    Atomic,
    Set,
    /// Keyed by a built-in strategic-merge key.
    Builtin(&'static str),
    /// Keyed by the `x-kubernetes-list-map-keys` of a schema.
    Keys(&'a [Value]),
}

impl From<ListType> for Lt<'_> {
    fn from(lt: ListType) -> Self {
        match lt {
            ListType::Atomic => Lt::Atomic,
            ListType::Set => Lt::Set,
            ListType::Map(k) => Lt::Builtin(k),
        }
    }
}

/// A position in an object's schema.
#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Builtin(SchemaNode),
    /// A custom resource's schema at this position; `root` when it is the object itself (its
    /// `metadata` follows the built-in ObjectMeta).
    Open {
        schema: Option<&'a Value>,
        root: bool,
    },
}

/// What the schema says of a field: its list type, its node (of the elements, for lists),
/// whether it is a granular map (a member itself) and whether it is atomic as a whole.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    lt: Lt<'a>,
    node: Node<'a>,
    granular_map: bool,
    atomic: bool,
}

impl<'a> Node<'a> {
    fn root(schema: Schema<'a>, kind: &str) -> Self {
        match schema {
            Schema::Builtin => Node::Builtin(SchemaNode::root(kind)),
            Schema::OpenApi(s) => Node::Open {
                schema: s.filter(|s| s.is_object()),
                root: true,
            },
        }
    }

    fn field(self, name: &str) -> Field<'a> {
        match self {
            Node::Builtin(n) => {
                let (lt, node) = n.field(name);
                Field {
                    lt: lt.into(),
                    node: Node::Builtin(node),
                    granular_map: is_map_field(name),
                    atomic: false,
                }
            }
            Node::Open { root: true, .. } if name == "metadata" => {
                Node::Builtin(SchemaNode::root("")).field(name)
            }
            Node::Open { schema, .. } => {
                let child = schema.and_then(|s| {
                    s["properties"]
                        .get(name)
                        .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
                });
                Self::open_field(child)
            }
        }
    }

    /// The field whose schema is `s`.
    fn open_field(s: Option<&'a Value>) -> Field<'a> {
        let Some(s) = s else {
            return Field {
                lt: Lt::Atomic,
                node: Node::Open {
                    schema: None,
                    root: false,
                },
                granular_map: false,
                atomic: false,
            };
        };
        let lt = match s["x-kubernetes-list-type"].as_str() {
            Some("set") => Lt::Set,
            Some("map") => match s["x-kubernetes-list-map-keys"].as_array() {
                Some(keys) if !keys.is_empty() => Lt::Keys(keys.as_slice()),
                _ => Lt::Atomic,
            },
            _ => Lt::Atomic,
        };
        let node_schema = if s["type"] == "array" || s.get("items").is_some() {
            s.get("items")
        } else {
            Some(s)
        };
        let granular_map = s.get("additionalProperties").is_some_and(|a| a.is_object())
            && s["properties"].as_object().is_none_or(|p| p.is_empty());
        Field {
            lt,
            node: Node::Open {
                schema: node_schema.filter(|s| s.is_object()),
                root: false,
            },
            granular_map,
            atomic: s["x-kubernetes-map-type"] == "atomic",
        }
    }
}

/// Fields no manager owns (upstream's stripped metadata).
const STRIPPED: &[&[&str]] = &[
    &["f:apiVersion"],
    &["f:kind"],
    &["f:metadata", "f:name"],
    &["f:metadata", "f:namespace"],
    &["f:metadata", "f:creationTimestamp"],
    &["f:metadata", "f:selfLink"],
    &["f:metadata", "f:uid"],
    &["f:metadata", "f:generation"],
    &["f:metadata", "f:managedFields"],
    &["f:metadata", "f:resourceVersion"],
    &["f:metadata", "f:deletionTimestamp"],
    &["f:metadata", "f:deletionGracePeriodSeconds"],
];

/// Fields holding string maps (granular maps that are members themselves, `.`), as opposed
/// to structs, whose fields are members but not the struct itself.
fn is_map_field(name: &str) -> bool {
    matches!(
        name,
        "labels"
            | "annotations"
            | "matchLabels"
            | "nodeSelector"
            | "data"
            | "binaryData"
            | "stringData"
            | "limits"
            | "requests"
            | "capacity"
            | "allocatable"
            | "hard"
            | "used"
            | "parameters"
    )
}

/// The field set of `obj` (an object of kind `obj.kind`) within `scope`.
pub fn object_fields(obj: &Value, scope: Scope) -> FieldSet {
    object_fields_in(obj, scope, Schema::Builtin)
}

/// The field set of `obj` within `scope`, walked with `schema`.
pub fn object_fields_in(obj: &Value, scope: Scope, schema: Schema<'_>) -> FieldSet {
    let kind = obj["kind"].as_str().unwrap_or("");
    let mut s = match obj {
        Value::Object(m) => map_fields(m, Node::root(schema, kind)),
        _ => FieldSet::new(),
    };
    for p in STRIPPED {
        remove_path(&mut s, p);
    }
    match scope {
        Scope::All => {}
        Scope::MainWithoutStatus => s.remove_child("f:status"),
        Scope::Status => {
            let status = s.child("f:status").cloned();
            s = FieldSet::new();
            if let Some(st) = status {
                s.children.insert("f:status".into(), st);
            }
        }
    }
    s
}

fn remove_path(s: &mut FieldSet, path: &[&str]) {
    match path {
        [] => {}
        [last] => s.remove_child(last),
        [first, rest @ ..] => {
            if let Some(c) = s.children.get_mut(*first) {
                remove_path(c, rest);
                if c.is_empty() {
                    s.remove_child(first);
                }
            }
        }
    }
}

fn map_fields(m: &Map<String, Value>, node: Node<'_>) -> FieldSet {
    let mut s = FieldSet::new();
    for (k, v) in m {
        if v.is_null() {
            continue;
        }
        s.children
            .insert(format!("f:{k}"), value_fields(v, node.field(k)));
    }
    s
}

fn value_fields(v: &Value, f: Field<'_>) -> FieldSet {
    let (lt, node) = (f.lt, f.node);
    match v {
        Value::Object(m) if !m.is_empty() && !f.atomic => {
            let mut s = map_fields(m, node);
            s.own = f.granular_map;
            s
        }
        Value::Array(a) if !a.is_empty() => match list_keys(a, lt) {
            Some(keys) => {
                let mut s = FieldSet::new();
                for (key, item) in keys.into_iter().zip(a) {
                    let mut e = match (lt, item) {
                        (Lt::Builtin(_) | Lt::Keys(_), Value::Object(m)) => map_fields(m, node),
                        _ => FieldSet::new(),
                    };
                    e.own = true;
                    let merged = match s.children.get(&key) {
                        Some(prev) => prev.union(&e),
                        None => e,
                    };
                    s.children.insert(key, merged);
                }
                s
            }
            None => FieldSet::leaf(),
        },
        _ => FieldSet::leaf(),
    }
}

/// The encoded path element of each list item, or None when the list is atomic (or an item
/// lacks its merge key, in which case the list is treated as atomic).
fn list_keys(a: &[Value], lt: Lt<'_>) -> Option<Vec<String>> {
    match lt {
        Lt::Atomic => None,
        Lt::Set => a
            .iter()
            .map(|v| match v {
                Value::Object(_) | Value::Array(_) => None,
                _ => Some(format!("v:{v}")),
            })
            .collect(),
        Lt::Builtin(k) => a.iter().map(|v| key_element(v, k)).collect(),
        Lt::Keys(keys) => a.iter().map(|v| schema_key_element(v, keys)).collect(),
    }
}

/// The `k:` element of an item of a list keyed by `x-kubernetes-list-map-keys` (None when the
/// item is not an object or lacks a key field).
fn schema_key_element(item: &Value, keys: &[Value]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        let f = k.as_str()?;
        let v = item.as_object()?.get(f).filter(|v| !v.is_null())?;
        m.insert(f.to_string(), v.clone());
    }
    Some(format!("k:{}", Value::Object(m)))
}

/// The key fields of an associative list whose strategic-merge key is `key`: ports lists are
/// keyed by port and protocol in the apply schema (`x-kubernetes-list-map-keys`).
fn map_keys(key: &'static str) -> Vec<&'static str> {
    match key {
        "containerPort" | "port" => vec![key, "protocol"],
        _ => vec![key],
    }
}

/// The value of key field `field` of a list item, with the schema default of `protocol`.
fn key_value(item: &Value, field: &str) -> Option<Value> {
    match item.get(field).filter(|v| !v.is_null()) {
        Some(v) => Some(v.clone()),
        None if field == "protocol" => Some(Value::String("TCP".into())),
        None => None,
    }
}

fn key_element(item: &Value, key: &'static str) -> Option<String> {
    let mut m = Map::new();
    for f in map_keys(key) {
        m.insert(f.to_string(), key_value(item, f)?);
    }
    Some(format!("k:{}", Value::Object(m)))
}

fn item_matches(item: &Value, element: &str) -> bool {
    if let Some(k) = element.strip_prefix("k:") {
        match serde_json::from_str::<Map<String, Value>>(k) {
            Ok(keys) => keys
                .iter()
                .all(|(f, v)| key_value(item, f).as_ref() == Some(v)),
            Err(_) => false,
        }
    } else if let Some(v) = element.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

fn child_value<'a>(v: &'a Value, element: &str) -> Option<&'a Value> {
    if let Some(f) = element.strip_prefix("f:") {
        return v.as_object()?.get(f);
    }
    if let Some(i) = element.strip_prefix("i:") {
        return v.as_array()?.get(i.parse::<usize>().ok()?);
    }
    v.as_array()?.iter().find(|it| item_matches(it, element))
}

/// Remove every member of `set` from `obj` (a member that has members below it goes as a
/// whole).
/// Lists and string maps emptied by the removal go too (as Go's `omitempty` drops them).
pub fn remove_fields(obj: &mut Value, set: &FieldSet) {
    for (k, c) in &set.children {
        let emptied = if c.own {
            remove_element(obj, k);
            false
        } else if let Some(sub) = child_value_mut(obj, k) {
            remove_fields(sub, c);
            let map_field = k.strip_prefix("f:").is_some_and(is_map_field);
            match sub {
                Value::Array(a) => a.is_empty(),
                Value::Object(m) => map_field && m.is_empty(),
                _ => false,
            }
        } else {
            false
        };
        if emptied && k.starts_with("f:") {
            remove_element(obj, k);
        }
    }
}

fn remove_element(obj: &mut Value, element: &str) {
    if let Some(f) = element.strip_prefix("f:") {
        if let Some(m) = obj.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(a) = obj.as_array_mut() {
        if let Some(i) = element.strip_prefix("i:") {
            if let Ok(i) = i.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        } else {
            a.retain(|it| !item_matches(it, element));
        }
    }
}

fn child_value_mut<'a>(v: &'a mut Value, element: &str) -> Option<&'a mut Value> {
    if let Some(f) = element.strip_prefix("f:") {
        return v.as_object_mut()?.get_mut(f);
    }
    if let Some(i) = element.strip_prefix("i:") {
        return v.as_array_mut()?.get_mut(i.parse::<usize>().ok()?);
    }
    v.as_array_mut()?
        .iter_mut()
        .find(|it| item_matches(it, element))
}

// ---------------------------------------------------------------- merge and compare

/// Refuse an applied configuration whose associative lists or sets repeat an element.
pub fn check_duplicates(config: &Value) -> Result<(), ApplyError> {
    check_duplicates_in(config, Schema::Builtin)
}

/// [`check_duplicates`] with the list types of `schema`.
pub fn check_duplicates_in(config: &Value, schema: Schema<'_>) -> Result<(), ApplyError> {
    let kind = config["kind"].as_str().unwrap_or("");
    let mut path = Vec::new();
    dup_walk(config, Lt::Atomic, Node::root(schema, kind), &mut path)
}

fn dup_walk(
    v: &Value,
    lt: Lt<'_>,
    node: Node<'_>,
    path: &mut Vec<String>,
) -> Result<(), ApplyError> {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let f = node.field(k);
                path.push(format!("f:{k}"));
                dup_walk(c, f.lt, f.node, path)?;
                path.pop();
            }
        }
        Value::Array(a) => {
            if let Some(keys) = list_keys(a, lt) {
                for (i, k) in keys.iter().enumerate() {
                    if keys[..i].contains(k) {
                        return Err(ApplyError::DuplicateKey {
                            path: path_string(path),
                            key: path_string(std::slice::from_ref(k)),
                        });
                    }
                }
                for (k, item) in keys.into_iter().zip(a) {
                    path.push(k);
                    dup_walk(item, Lt::Atomic, node, path)?;
                    path.pop();
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Merge an applied configuration over a live object: maps per key, associative lists per
/// merge key, sets by union, everything else replaced. A null in the configuration removes
/// the field.
pub fn merge(live: &Value, config: &Value) -> Value {
    merge_in(live, config, Schema::Builtin)
}

/// [`merge`] with the list and map types of `schema`.
pub fn merge_in(live: &Value, config: &Value, schema: Schema<'_>) -> Value {
    let kind = config["kind"]
        .as_str()
        .or(live["kind"].as_str())
        .unwrap_or("");
    merge_value(live, config, Lt::Atomic, Node::root(schema, kind), false)
}

fn merge_value(live: &Value, cfg: &Value, lt: Lt<'_>, node: Node<'_>, atomic: bool) -> Value {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) if !atomic => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let f = node.field(k);
                let merged = match l.get(k) {
                    Some(lv) => merge_value(lv, cv, f.lt, f.node, f.atomic),
                    None => strip_nulls(cv),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match (list_keys(l, lt), list_keys(c, lt)) {
            (Some(lk), Some(ck)) => {
                let mut out: Vec<Value> = Vec::with_capacity(l.len() + c.len());
                for (key, item) in lk.iter().zip(l) {
                    match ck.iter().position(|k| k == key) {
                        Some(i) => out.push(merge_value(item, &c[i], Lt::Atomic, node, false)),
                        None => out.push(item.clone()),
                    }
                }
                for (key, item) in ck.iter().zip(c) {
                    if !lk.contains(key) {
                        out.push(strip_nulls(item));
                    }
                }
                Value::Array(out)
            }
            _ => strip_nulls(cfg),
        },
        _ => strip_nulls(cfg),
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// What changed between two versions of an object, as field sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Members of both whose (leaf) value differs.
    pub modified: FieldSet,
    /// Members only of the new object.
    pub added: FieldSet,
    /// Members only of the old object.
    pub removed: FieldSet,
}

/// Compare two versions of an object within `scope`.
pub fn compare(old: &Value, new: &Value, scope: Scope) -> Comparison {
    compare_in(old, new, scope, Schema::Builtin)
}

/// [`compare`] with the list and map types of `schema`.
pub fn compare_in(old: &Value, new: &Value, scope: Scope, schema: Schema<'_>) -> Comparison {
    let os = object_fields_in(old, scope, schema);
    let ns = object_fields_in(new, scope, schema);
    let mut modified = FieldSet::new();
    modified_leaves(
        &os.intersection(&ns),
        &ns,
        Some(old),
        Some(new),
        &mut modified,
    );
    Comparison {
        modified,
        added: ns.difference(&os),
        removed: os.difference(&ns),
    }
}

fn modified_leaves(
    both: &FieldSet,
    new_set: &FieldSet,
    old: Option<&Value>,
    new: Option<&Value>,
    out: &mut FieldSet,
) {
    for (k, c) in &both.children {
        let ov = old.and_then(|o| child_value(o, k));
        let nv = new.and_then(|n| child_value(n, k));
        let ns = new_set.child(k);
        let leaf = ns.is_none_or(|n| n.children.is_empty());
        let mut sub = FieldSet::new();
        if c.own && leaf && ov != nv {
            sub.own = true;
        }
        if let Some(ns) = ns {
            modified_leaves(c, ns, ov, nv, &mut sub);
        }
        if !sub.is_empty() {
            out.children.insert(k.clone(), sub);
        }
    }
}

// ---------------------------------------------------------------- managers

/// `Apply` or `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or (non-apply) patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedEntry {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// API version the fields were written in.
    pub api_version: String,
    /// Last change of this entry (RFC 3339).
    pub time: Option<String>,
    /// `status`, `scale`, or empty for the main resource.
    pub subresource: String,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    /// Whether `self` and `other` are the same manager (upstream's manager identifier:
    /// name, operation, subresource, and for Update the API version).
    fn same_manager(&self, other: &ManagedEntry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// The manager as conflict messages print it.
    pub fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// Decode `metadata.managedFields` (absent or null: no entries). Entries without a manager
/// (`[{}]`, the way clients reset the list) are dropped.
pub fn decode_managed_fields(v: &Value) -> Result<Vec<ManagedEntry>, ApplyError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(ApplyError::InvalidManagedFields("expected a list".into())),
    };
    let mut out: Vec<ManagedEntry> = Vec::new();
    for item in items {
        let m = item
            .as_object()
            .ok_or_else(|| ApplyError::InvalidManagedFields("entry is not an object".into()))?;
        let s = |k: &str| -> Result<String, ApplyError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(ApplyError::InvalidManagedFields(format!(
                    "{k} must be a string"
                ))),
            }
        };
        let manager = s("manager")?;
        if manager.is_empty() && m.get("fieldsV1").is_none() {
            continue;
        }
        let operation = match s("operation")?.as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => {
                return Err(ApplyError::InvalidManagedFields(format!(
                    "unknown operation {other:?}"
                )))
            }
        };
        match s("fieldsType")?.as_str() {
            "FieldsV1" | "" => {}
            other => {
                return Err(ApplyError::InvalidManagedFields(format!(
                    "unsupported fieldsType {other:?}"
                )))
            }
        }
        let fields = match m.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(f) => FieldSet::from_fields_v1(f)?,
        };
        let time = s("time")?;
        let entry = ManagedEntry {
            manager,
            operation,
            api_version: s("apiVersion")?,
            time: (!time.is_empty()).then_some(time),
            subresource: s("subresource")?,
            fields,
        };
        if out.iter().any(|e| e.same_manager(&entry)) {
            return Err(ApplyError::InvalidManagedFields(format!(
                "duplicate entry for manager {:?}",
                entry.manager
            )));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Encode entries as `metadata.managedFields`, in upstream's order: Apply before Update, then
/// oldest first, then by manager, API version and subresource.
pub fn encode_managed_fields(entries: &[ManagedEntry]) -> Value {
    let mut sorted: Vec<&ManagedEntry> = entries.iter().collect();
    sorted.sort_by(|p, q| {
        (
            p.operation.as_str(),
            p.time.as_deref().unwrap_or(""),
            &p.manager,
            &p.api_version,
            &p.subresource,
        )
            .cmp(&(
                q.operation.as_str(),
                q.time.as_deref().unwrap_or(""),
                &q.manager,
                &q.api_version,
                &q.subresource,
            ))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), Value::String(e.manager.clone()));
                m.insert(
                    "operation".into(),
                    Value::String(e.operation.as_str().into()),
                );
                m.insert("apiVersion".into(), Value::String(e.api_version.clone()));
                if let Some(t) = &e.time {
                    m.insert("time".into(), Value::String(t.clone()));
                }
                m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
                m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), Value::String(e.subresource.clone()));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// Who writes: manager name, subresource, API version of the request, time of the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// `status`, `scale` or empty.
    pub subresource: &'a str,
    /// The API version of the written object.
    pub api_version: &'a str,
    /// RFC 3339 time of the write.
    pub now: &'a str,
    /// The schema of the written object's kind and version.
    pub schema: Schema<'a>,
}

/// At most this many Update entries are kept; older ones merge into `ancient-changes`.
pub const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Merge the oldest Update entries into one `ancient-changes` entry (per API version) while
/// there are more than [`MAX_UPDATE_MANAGERS`], as upstream caps them.
fn cap_update_managers(entries: &mut Vec<ManagedEntry>) {
    loop {
        let updates = entries
            .iter()
            .filter(|e| e.operation == Operation::Update)
            .count();
        if updates <= MAX_UPDATE_MANAGERS {
            return;
        }
        let oldest = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.operation == Operation::Update && e.manager != ANCIENT_CHANGES)
            .min_by(|(_, a), (_, b)| a.time.cmp(&b.time))
            .map(|(i, _)| i);
        let Some(i) = oldest else { return };
        let old = entries.remove(i);
        match entries.iter_mut().find(|e| {
            e.manager == ANCIENT_CHANGES
                && e.operation == Operation::Update
                && e.api_version == old.api_version
                && e.subresource == old.subresource
        }) {
            Some(a) => {
                a.fields = a.fields.union(&old.fields);
                if old.time > a.time {
                    a.time = old.time;
                }
            }
            None => entries.push(ManagedEntry {
                manager: ANCIENT_CHANGES.into(),
                ..old
            }),
        }
    }
}

fn upsert(entries: &mut Vec<ManagedEntry>, entry: ManagedEntry) {
    match entries.iter_mut().find(|e| e.same_manager(&entry)) {
        Some(e) => *e = entry,
        None => entries.push(entry),
    }
}

/// Ownership after a non-apply write from `old` (None: create) to `new`: the writer's Update
/// entry gains the fields it changed or added, other managers lose them, removed fields
/// leave every manager.
pub fn update(
    old: Option<&Value>,
    new: &Value,
    mut entries: Vec<ManagedEntry>,
    w: &Writer<'_>,
    scope: Scope,
) -> Vec<ManagedEntry> {
    let empty = Value::Object(Map::new());
    let cmp = compare_in(old.unwrap_or(&empty), new, scope, w.schema);
    let changed = cmp.modified.union(&cmp.added);
    let me = ManagedEntry {
        manager: w.manager.to_string(),
        operation: Operation::Update,
        api_version: w.api_version.to_string(),
        time: Some(w.now.to_string()),
        subresource: w.subresource.to_string(),
        fields: FieldSet::new(),
    };
    let previous = entries
        .iter()
        .find(|e| e.same_manager(&me))
        .map(|e| (e.fields.clone(), e.time.clone()));
    for e in entries.iter_mut() {
        if !e.same_manager(&me) {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
    }
    let (prev_fields, prev_time) = previous.unwrap_or_default();
    let fields = prev_fields.difference(&cmp.removed).union(&changed);
    let time = if fields == prev_fields && prev_time.is_some() {
        prev_time
    } else {
        me.time.clone()
    };
    upsert(&mut entries, ManagedEntry { fields, time, ..me });
    entries.retain(|e| !e.fields.is_empty());
    cap_update_managers(&mut entries);
    entries
}

/// One conflicting field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The owner, as printed (`"kubectl" using apps/v1`).
    pub manager: String,
    /// The field (`.spec.replicas`).
    pub path: String,
}

/// The conflicts of an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    /// Upstream's message: `Apply failed with 1 conflict: conflict with "m" using v1: .a`, or for
    /// several, grouped by manager.
    pub fn message(&self) -> String {
        if let [c] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                c.manager, c.path
            );
        }
        let mut managers: Vec<&str> = self.0.iter().map(|c| c.manager.as_str()).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in self.0.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", c.path));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

/// kubectl's field manager for `kubectl apply --server-side`.
const KUBECTL: &str = "kubectl";
/// The annotation of client-side `kubectl apply`.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The fields `kubectl apply --server-side` may take from other managers without conflict on an
/// object managed by client-side apply (as upstream's last-applied manager allows): those of the
/// last-applied configuration whose live value is still the applied one.
fn upgradable_from_client_side(live: &Value, scope: Scope, schema: Schema<'_>) -> Option<FieldSet> {
    let text = live["metadata"]["annotations"][LAST_APPLIED].as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if !last.is_object() {
        return None;
    }
    let cmp = compare_in(&last, live, scope, schema);
    Some(
        object_fields_in(&last, scope, schema)
            .difference(&cmp.modified)
            .difference(&cmp.removed),
    )
}

/// Keep the client-side apply annotation in step with a `kubectl apply --server-side` (only
/// when the object already has one), so that a later client-side apply sees the new config.
fn sync_last_applied(object: &mut Value, config: &Value) {
    if object["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .is_none()
    {
        return;
    }
    let mut cfg = config.clone();
    if let Some(a) = cfg["metadata"]["annotations"].as_object_mut() {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            if let Some(m) = cfg["metadata"].as_object_mut() {
                m.remove("annotations");
            }
        }
    }
    if let Ok(text) = serde_json::to_string(&cfg) {
        object["metadata"]["annotations"][LAST_APPLIED] = Value::String(text + "\n");
    }
}

/// The result of an apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new object.
    pub object: Value,
    /// The new managed fields.
    pub managed: Vec<ManagedEntry>,
}

/// Server-side apply of `config` by `w.manager` over `live` (None: the object does not exist
/// yet) whose managed fields are `entries`. Without `force`, fields the configuration sets
/// to other values than other managers' are conflicts; with `force` the applier takes them.
/// Fields this manager applied before and omits now are removed unless another manager owns
/// them.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    mut entries: Vec<ManagedEntry>,
    w: &Writer<'_>,
    force: bool,
    scope: Scope,
) -> Result<Applied, ApplyError> {
    let empty = Value::Object(Map::new());
    let live_obj = live.unwrap_or(&empty);
    if entries.is_empty() {
        if let Some(l) = live {
            let fields = object_fields_in(l, scope, w.schema);
            if !fields.is_empty() {
                entries.push(ManagedEntry {
                    manager: "before-first-apply".into(),
                    operation: Operation::Update,
                    api_version: l["apiVersion"].as_str().unwrap_or("").to_string(),
                    time: Some(w.now.to_string()),
                    subresource: String::new(),
                    fields,
                });
            }
        }
    }
    let mut config = config.clone();
    if let Some(m) = config.as_object_mut() {
        match scope {
            Scope::MainWithoutStatus => {
                m.remove("status");
            }
            Scope::Status => {
                m.remove("spec");
            }
            Scope::All => {}
        }
    }
    check_duplicates_in(&config, w.schema)?;
    let cfg_set = object_fields_in(&config, scope, w.schema);
    let me = ManagedEntry {
        manager: w.manager.to_string(),
        operation: Operation::Apply,
        api_version: config["apiVersion"]
            .as_str()
            .unwrap_or(w.api_version)
            .to_string(),
        time: Some(w.now.to_string()),
        subresource: w.subresource.to_string(),
        fields: cfg_set.clone(),
    };
    let (last, last_time) = entries
        .iter()
        .find(|e| e.same_manager(&me))
        .map(|e| (e.fields.clone(), e.time.clone()))
        .unwrap_or_default();
    let mut object = merge_in(live_obj, &config, w.schema);
    let others = entries
        .iter()
        .filter(|e| !e.same_manager(&me))
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    let dropped = last.difference(&cfg_set).difference(&others);
    remove_fields(&mut object, &dropped);

    let cmp = compare_in(live_obj, &object, scope, w.schema);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !e.same_manager(&me)) {
        let c = e.fields.intersection(&changed);
        for p in c.paths() {
            conflicts.push((e.display(), p));
        }
    }
    let force = force
        || (w.manager == KUBECTL
            && !conflicts.is_empty()
            && live.is_some_and(|l| {
                upgradable_from_client_side(l, scope, w.schema).is_some_and(|allowed| {
                    conflicts.iter().all(|(_, p)| {
                        let p: Vec<&str> = p.iter().map(|e| e.as_str()).collect();
                        allowed.has(&p)
                    })
                })
            }));
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(Conflicts(
            conflicts
                .into_iter()
                .map(|(manager, p)| Conflict {
                    manager,
                    path: path_string(&p),
                })
                .collect(),
        )));
    }
    for e in entries.iter_mut() {
        if !e.same_manager(&me) {
            e.fields = e.fields.difference(&changed);
        }
        e.fields = e.fields.difference(&cmp.removed);
    }
    if w.manager == KUBECTL {
        sync_last_applied(&mut object, &config);
    }
    let mut me = me;
    me.fields = me.fields.difference(&cmp.removed);
    // A no-op apply keeps its entry's time (and so leaves the object unchanged).
    if me.fields == last && cmp == Comparison::default() && last_time.is_some() {
        me.time = last_time;
    }
    upsert(&mut entries, me);
    entries.retain(|e| !e.fields.is_empty() || e.operation == Operation::Apply);
    cap_update_managers(&mut entries);
    Ok(Applied {
        object,
        managed: entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w<'a>(manager: &'a str) -> Writer<'a> {
        Writer {
            manager,
            subresource: "",
            api_version: "apps/v1",
            now: "2026-01-01T00:00:00Z",
            schema: Schema::Builtin,
        }
    }

    fn cr_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["name", "protocol"],
                          "items": {"type": "object", "properties": {
                              "name": {"type": "string"}, "protocol": {"type": "string"},
                              "port": {"type": "integer"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set",
                         "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "additionalProperties": {"type": "string"}},
                "params": {"type": "object", "additionalProperties": {"type": "string"}}}}}})
    }

    fn cr(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "labels": {"a": "1"}}, "spec": spec})
    }

    #[test]
    fn custom_resources_merge_with_their_schema_list_and_map_types() {
        let schema = cr_schema();
        let cw = |m: &'static str| Writer {
            api_version: "example.com/v1",
            schema: Schema::OpenApi(Some(&schema)),
            ..w(m)
        };
        let a = apply(
            None,
            &cr(
                json!({"ports": [{"name": "http", "protocol": "TCP", "port": 80}],
                       "tags": ["x"], "args": ["a"], "selector": {"k": "v"},
                       "params": {"p": "1"}}),
            ),
            Vec::new(),
            &cw("a"),
            false,
            Scope::All,
        )
        .unwrap();
        let fields = &a.managed[0].fields;
        assert!(fields.has(&[
            "f:spec",
            "f:ports",
            r#"k:{"name":"http","protocol":"TCP"}"#,
            "f:port"
        ]));
        assert!(fields.has(&["f:spec", "f:tags", r#"v:"x""#]));
        assert!(fields.has(&["f:spec", "f:selector"]));
        assert!(!fields.has(&["f:spec", "f:selector", "f:k"]));
        assert!(fields.has(&["f:spec", "f:params", "f:p"]));
        assert!(fields.has(&["f:metadata", "f:labels", "f:a"]));
        // A second manager adds a port, a tag, an arg and a param: the map list and the set
        // merge, the atomic list is replaced, the atomic map too.
        let b = apply(
            Some(&a.object),
            &cr(
                json!({"ports": [{"name": "https", "protocol": "TCP", "port": 443}],
                       "tags": ["y"], "params": {"q": "2"}}),
            ),
            a.managed.clone(),
            &cw("b"),
            false,
            Scope::All,
        )
        .unwrap();
        assert_eq!(
            b.object["spec"]["ports"],
            json!([{"name": "http", "protocol": "TCP", "port": 80},
                   {"name": "https", "protocol": "TCP", "port": 443}])
        );
        assert_eq!(b.object["spec"]["tags"], json!(["x", "y"]));
        assert_eq!(b.object["spec"]["params"], json!({"p": "1", "q": "2"}));
        // The atomic list and map conflict as wholes.
        let c = apply(
            Some(&b.object),
            &cr(json!({"args": ["b"], "selector": {"k2": "v"}})),
            b.managed.clone(),
            &cw("c"),
            false,
            Scope::All,
        )
        .unwrap_err();
        let ApplyError::Conflicts(c) = c else {
            panic!("{c:?}")
        };
        let paths: Vec<&str> = c.0.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec![".spec.args", ".spec.selector"]);
        let forced = apply(
            Some(&b.object),
            &cr(json!({"selector": {"k2": "v"}})),
            b.managed,
            &cw("c"),
            true,
            Scope::All,
        )
        .unwrap();
        assert_eq!(forced.object["spec"]["selector"], json!({"k2": "v"}));
        // Duplicate keys in a map list are refused.
        let dup = apply(
            None,
            &cr(
                json!({"ports": [{"name": "h", "protocol": "TCP"}, {"name": "h", "protocol": "TCP"}]}),
            ),
            Vec::new(),
            &cw("a"),
            false,
            Scope::All,
        );
        assert!(
            matches!(dup, Err(ApplyError::DuplicateKey { .. })),
            "{dup:?}"
        );
        // Without the schema the lists are atomic: the second apply replaced them.
        let builtin = merge(&a.object, &cr(json!({"tags": ["y"]})));
        assert_eq!(builtin["spec"]["tags"], json!(["y"]));
    }

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "a"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "c", "image": image}]}}}})
    }

    #[test]
    fn fields_v1_round_trip_and_object_fields() {
        let s = object_fields(&deploy(1, "nginx"), Scope::All);
        let v = s.to_fields_v1();
        assert_eq!(
            v,
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&v).unwrap(), s);
        assert!(FieldSet::from_fields_v1(&json!({"x": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
    }

    #[test]
    fn ports_are_keyed_by_port_and_protocol() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 8080, "protocol": "UDP"}]}});
        assert_eq!(
            serde_json::to_string(&object_fields(&svc, Scope::All).to_fields_v1()).unwrap(),
            r#"{"f:spec":{"f:ports":{"k:{\"port\":8080,\"protocol\":\"UDP\"}":{".":{},"f:port":{},"f:protocol":{}}}}}"#
        );
        // A port without protocol is the TCP one (the schema default of the key field).
        let pod = |ports: Value| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "ports": ports}]}})
        };
        let live = pod(json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}]));
        let merged = merge(&live, &pod(json!([{"containerPort": 80, "hostPort": 8}])));
        assert_eq!(
            merged["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http", "hostPort": 8}])
        );
    }

    #[test]
    fn duplicate_keys_in_applied_config_are_refused() {
        let mut cfg = deploy(1, "nginx");
        cfg["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "c", "image": "a"}, {"name": "c", "image": "b"}]);
        let err = apply(None, &cfg, vec![], &w("m"), false, Scope::All).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".spec.template.spec.containers: duplicate entries for key [name=\"c\"]"
        );
    }

    #[test]
    fn kubectl_server_side_apply_takes_over_client_side_apply_fields() {
        let cm = |a: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"a": a}})
        };
        let mut live = cm("1");
        live["metadata"]["annotations"] =
            json!({LAST_APPLIED: serde_json::to_string(&cm("1")).unwrap()});
        let csa = w("kubectl-client-side-apply");
        let managed = update(None, &live, vec![], &csa, Scope::All);
        // Another manager conflicts; kubectl does not while the live value is the applied one.
        assert!(apply(
            Some(&live),
            &cm("2"),
            managed.clone(),
            &w("other"),
            false,
            Scope::All
        )
        .is_err());
        let out = apply(
            Some(&live),
            &cm("2"),
            managed.clone(),
            &w("kubectl"),
            false,
            Scope::All,
        )
        .unwrap();
        assert_eq!(out.object["data"]["a"], "2");
        let la: Value = serde_json::from_str(
            out.object["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(la["data"]["a"], "2");
        // Once someone else changed the value, it is a conflict again.
        let mut changed = live.clone();
        changed["data"]["a"] = json!("9");
        let managed = update(Some(&live), &changed, managed, &w("editor"), Scope::All);
        assert!(apply(
            Some(&changed),
            &cm("2"),
            managed,
            &w("kubectl"),
            false,
            Scope::All
        )
        .is_err());
    }

    #[test]
    fn set_operations() {
        let mut a = FieldSet::new();
        a.insert(&["f:spec", "f:replicas"]);
        a.insert(&["f:spec", "f:paused"]);
        let mut b = FieldSet::new();
        b.insert(&["f:spec", "f:replicas"]);
        assert!(a.difference(&b).has(&["f:spec", "f:paused"]));
        assert!(!a.difference(&b).has(&["f:spec", "f:replicas"]));
        assert_eq!(a.intersection(&b), b);
        assert_eq!(a.union(&b), a);
        assert!(b.difference(&a).is_empty());
        assert_eq!(
            path_string(&[
                "f:spec".into(),
                "k:{\"name\":\"c\"}".into(),
                "f:image".into()
            ]),
            ".spec[name=\"c\"].image"
        );
    }

    #[test]
    fn apply_create_then_update_by_other_manager_conflicts() {
        let a = apply(
            None,
            &deploy(1, "nginx"),
            vec![],
            &w("m1"),
            false,
            Scope::All,
        )
        .unwrap();
        assert_eq!(a.managed.len(), 1);
        assert_eq!(a.managed[0].operation, Operation::Apply);
        // another applier sets replicas differently: conflict with m1
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "spec": {"replicas": 3}});
        let err = apply(
            Some(&a.object),
            &cfg,
            a.managed.clone(),
            &w("m2"),
            false,
            Scope::All,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"m1\": .spec.replicas"
        );
        // force takes ownership
        let f = apply(
            Some(&a.object),
            &cfg,
            a.managed.clone(),
            &w("m2"),
            true,
            Scope::All,
        )
        .unwrap();
        assert_eq!(f.object["spec"]["replicas"], 3);
        let m1 = f.managed.iter().find(|e| e.manager == "m1").unwrap();
        assert!(!m1.fields.has(&["f:spec", "f:replicas"]));
        let m2 = f.managed.iter().find(|e| e.manager == "m2").unwrap();
        assert!(m2.fields.has(&["f:spec", "f:replicas"]));
    }

    #[test]
    fn equal_values_are_shared() {
        let a = apply(
            None,
            &deploy(1, "nginx"),
            vec![],
            &w("m1"),
            false,
            Scope::All,
        )
        .unwrap();
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let b = apply(
            Some(&a.object),
            &cfg,
            a.managed,
            &w("m2"),
            false,
            Scope::All,
        )
        .unwrap();
        for m in ["m1", "m2"] {
            let e = b.managed.iter().find(|e| e.manager == m).unwrap();
            assert!(e.fields.has(&["f:spec", "f:replicas"]), "{m}");
        }
        // m1 drops replicas: still owned by m2, so it stays
        let mut cfg1 = deploy(1, "nginx");
        cfg1["spec"].as_object_mut().unwrap().remove("replicas");
        let c = apply(
            Some(&b.object),
            &cfg1,
            b.managed,
            &w("m1"),
            false,
            Scope::All,
        )
        .unwrap();
        assert_eq!(c.object["spec"]["replicas"], 1);
    }

    #[test]
    fn dropped_fields_are_removed_and_lists_merge_by_key() {
        let mut cfg = deploy(1, "nginx");
        cfg["spec"]["template"]["spec"]["containers"] =
            json!([{"name": "c", "image": "nginx"}, {"name": "side", "image": "busybox"}]);
        let a = apply(None, &cfg, vec![], &w("m1"), false, Scope::All).unwrap();
        // m2 adds its own container through the associative list
        let cfg2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "extra", "image": "x"}]}}}});
        let b = apply(
            Some(&a.object),
            &cfg2,
            a.managed,
            &w("m2"),
            false,
            Scope::All,
        )
        .unwrap();
        let names: Vec<&str> = b.object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c", "side", "extra"]);
        // m1 drops "side" and its label: both go, m2's container stays
        let mut cfg3 = deploy(1, "nginx");
        cfg3["metadata"].as_object_mut().unwrap().remove("labels");
        let c = apply(
            Some(&b.object),
            &cfg3,
            b.managed,
            &w("m1"),
            false,
            Scope::All,
        )
        .unwrap();
        let names: Vec<&str> = c.object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["c", "extra"]);
        assert!(c.object["metadata"].get("labels").is_none());
    }

    #[test]
    fn update_takes_changed_fields_from_appliers() {
        let a = apply(
            None,
            &deploy(1, "nginx"),
            vec![],
            &w("m1"),
            false,
            Scope::All,
        )
        .unwrap();
        let mut new = a.object.clone();
        new["spec"]["replicas"] = json!(5);
        let managed = update(Some(&a.object), &new, a.managed, &w("kubectl"), Scope::All);
        let up = managed
            .iter()
            .find(|e| e.operation == Operation::Update)
            .unwrap();
        assert_eq!(up.manager, "kubectl");
        assert_eq!(
            up.fields.paths(),
            vec![vec!["f:spec".to_string(), "f:replicas".into()]]
        );
        let m1 = managed.iter().find(|e| e.manager == "m1").unwrap();
        assert!(!m1.fields.has(&["f:spec", "f:replicas"]));
        // m1 re-applies replicas 1: conflict with the Update manager
        let err = apply(
            Some(&new),
            &deploy(1, "nginx"),
            managed,
            &w("m1"),
            false,
            Scope::All,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        );
    }

    #[test]
    fn update_managers_are_capped_into_ancient_changes() {
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let mut entries = Vec::new();
        for i in 0..12 {
            let mut next = obj.clone();
            next["data"][format!("k{i}")] = json!("v");
            let name = format!("m{i:02}");
            let now = format!("2026-01-01T00:00:{i:02}Z");
            let w = Writer {
                manager: &name,
                subresource: "",
                api_version: "v1",
                now: &now,
                schema: Schema::Builtin,
            };
            entries = update(Some(&obj), &next, entries, &w, Scope::All);
            obj = next;
        }
        assert_eq!(entries.len(), MAX_UPDATE_MANAGERS);
        let ancient = entries
            .iter()
            .find(|e| e.manager == ANCIENT_CHANGES)
            .unwrap();
        assert!(ancient.fields.has(&["f:data", "f:k0"]));
        assert!(ancient.fields.has(&["f:data", "f:k2"]));
        assert!(!entries.iter().any(|e| e.manager == "m00"));
        // Encoded oldest first.
        let enc = encode_managed_fields(&entries);
        assert_eq!(enc[0]["manager"], ANCIENT_CHANGES);
        assert_eq!(enc[9]["manager"], "m11");
    }

    #[test]
    fn managed_fields_decode_validates() {
        let v = json!([{"manager": "m", "operation": "Update", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]);
        let e = decode_managed_fields(&v).unwrap();
        assert_eq!(encode_managed_fields(&e), v);
        assert!(decode_managed_fields(&json!([{"manager": "m", "operation": "Nope"}])).is_err());
        assert!(decode_managed_fields(&json!("x")).is_err());
        assert!(decode_managed_fields(&json!([{}])).unwrap().is_empty());
    }

    #[test]
    fn multiple_conflicts_message_groups_by_manager() {
        let c = Conflicts(vec![
            Conflict {
                manager: "\"b\"".into(),
                path: ".x".into(),
            },
            Conflict {
                manager: "\"a\"".into(),
                path: ".y".into(),
            },
        ]);
        assert_eq!(
            c.message(),
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .y\nconflicts with \"b\":\n- .x"
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Objects shaped like Pods: containers (keyed by name) with ports (keyed by
        /// port+protocol), finalizers (a set), labels (a map), scalars.
        fn pod() -> impl Strategy<Value = Value> {
            let name = proptest::sample::select(vec!["a", "b", "c"]);
            let port = (
                proptest::option::of(prop_oneof![Just(80), Just(443)]),
                any::<bool>(),
            );
            let container = (name, proptest::collection::vec(port, 0..3), any::<bool>()).prop_map(
                |(n, ports, img)| {
                    let ports: Vec<Value> = ports
                        .into_iter()
                        .map(|(p, udp)| match p {
                            Some(p) if udp => json!({"containerPort": p, "protocol": "UDP"}),
                            Some(p) => json!({"containerPort": p}),
                            None => json!({"name": "noport"}),
                        })
                        .collect();
                    json!({"name": n, "image": if img { "x" } else { "y" }, "ports": ports})
                },
            );
            (
                proptest::collection::vec(container, 0..3),
                proptest::collection::vec(proptest::sample::select(vec!["f1", "f2"]), 0..3),
                proptest::option::of(0..3i64),
            )
                .prop_map(|(cs, fins, n)| {
                    json!({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "p", "finalizers": fins, "labels": {"n": n}},
                        "spec": {"containers": cs, "priority": n}})
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn apply_never_panics_and_owns_what_it_applied(
                live in pod(), a in pod(), b in pod(), force in any::<bool>(),
            ) {
                let w1 = w("m1");
                let w2 = w("m2");
                prop_assume!(check_duplicates(&a).is_ok());
                let first = apply(Some(&live), &a, vec![], &w1, true, Scope::All).unwrap();
                match apply(Some(&first.object), &b, first.managed.clone(), &w2, force, Scope::All) {
                    Ok(out) => {
                        let m2 = out.managed.iter().find(|e| e.manager == "m2").unwrap();
                        // Every field m2 owns is in the object, and the encoding round-trips.
                        for p in m2.fields.paths() {
                            let found = p
                                .iter()
                                .try_fold(&out.object, |v, e| child_value(v, e));
                            prop_assert!(found.is_some(), "{:?} not in {}", p, out.object);
                        }
                        let enc = encode_managed_fields(&out.managed);
                        prop_assert_eq!(decode_managed_fields(&enc).unwrap().len(), out.managed.len());
                    }
                    Err(ApplyError::Conflicts(c)) => prop_assert!(!force && !c.0.is_empty()),
                    Err(ApplyError::DuplicateKey { .. }) => prop_assert!(check_duplicates(&b).is_err()),
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                }
                let _ = update(Some(&live), &b, first.managed, &w2, Scope::All);
            }
        }
    }
}
