//! Custom resources: the resources established CustomResourceDefinitions add at run time
//! (apiextensions-apiserver's customresource handler), one generic [`CustomResourceStrategy`]
//! driven by the version's structural schema, and the registry of served definitions that
//! `resources::find` and discovery consult.
//!
//! Served definitions are `&'static ResourceDef`s, like the built-in kinds. They are interned:
//! one strategy per (group, version, plural) whose schema, subresources and columns are replaced
//! in place when the CRD changes, and one `ResourceDef` per distinct set of names, so memory
//! grows with the distinct names ever served, not with updates.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_store::Store;
use serde_json::{json, Value};

use super::{crd, crschema, Cause, Column, Strategy};
use crate::error::ApiResult;
use crate::handlers::Ctx;
use crate::resources::{ResourceDef, Subresource};
use crate::table;

/// The scale subresource's paths (`.spec.replicas` style JSONPaths).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One additional printer column.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: &'static str,
    pub ty: String,
    pub format: &'static str,
    pub priority: u8,
    pub json_path: String,
}

/// What a served version of a CRD says about its objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    pub schema: Value,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    pub columns: Vec<PrinterColumn>,
    /// The CRD's conversion webhook (strategy `Webhook`).
    pub conversion: Option<super::crd_conversion::Webhook>,
    /// The warning of a `deprecated: true` version.
    pub deprecation: Option<String>,
}

#[derive(Debug)]
pub struct CustomResourceStrategy {
    group: &'static str,
    version: &'static str,
    state: RwLock<Arc<Served>>,
}

impl CustomResourceStrategy {
    fn served(&self) -> Arc<Served> {
        match self.state.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// Follow a simple JSONPath (`.spec.replicas`, `.metadata.creationTimestamp`, `.a.b[0]`).
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    let mut cur = obj;
    for seg in p.split('.').filter(|s| !s.is_empty()) {
        let (name, idx) = match seg.split_once('[') {
            Some((n, rest)) => (
                n,
                rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()),
            ),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn set_json_path(obj: &mut Value, path: &str, v: Value) {
    let segs: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    let mut cur = obj;
    for (i, seg) in segs.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i + 1 == segs.len() {
            cur[*seg] = v;
            return;
        }
        cur = &mut cur[*seg];
    }
}

/// The object's metadata through the typed ObjectMeta (pruning unknown metadata fields).
fn decode_metadata(md: &Value) -> Result<Value, String> {
    super::decode_as::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(md)
}

fn cell(v: Option<&Value>, ty: &str, now: DateTime<Utc>) -> Value {
    let Some(v) = v else { return Value::Null };
    match ty {
        "date" => json!(table::age(v, now)),
        "integer" | "number" | "boolean" => v.clone(),
        _ => match v {
            Value::String(s) => json!(s),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
    }
}

#[async_trait]
impl Strategy for CustomResourceStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        let served = self.served();
        let mut out = obj.clone();
        crschema::prune(&mut out, &served.schema, true);
        if let Some(md) = obj.get("metadata") {
            out["metadata"] = decode_metadata(md)?;
        }
        Ok(out)
    }

    fn apply_schema(&self) -> Option<Value> {
        Some(self.served().schema.clone())
    }

    fn defaults(&self, obj: &mut Value) {
        crschema::apply_defaults(obj, &self.served().schema);
    }

    fn prepare_create(&self, obj: &mut Value) {
        if self.served().status {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        crschema::validate(obj, &self.served().schema, causes);
    }

    /// Objects read from storage get the requested version and the schema's current defaults
    /// (upstream defaults when decoding from etcd, so defaults added later apply to old objects).
    fn present(&self, obj: &mut Value) {
        obj["apiVersion"] = json!(format!("{}/{}", self.group, self.version));
        crschema::apply_defaults(obj, &self.served().schema);
    }

    fn read_scale(&self, obj: &Value) -> (i64, i64, String) {
        let served = self.served();
        let Some(s) = &served.scale else {
            return (0, 0, String::new());
        };
        let int = |p: &str| json_path(obj, p).and_then(|v| v.as_i64()).unwrap_or(0);
        let selector = s
            .label_selector
            .as_deref()
            .and_then(|p| json_path(obj, p))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        (int(&s.spec_replicas), int(&s.status_replicas), selector)
    }

    fn write_scale(&self, obj: &mut Value, replicas: i64) {
        if let Some(s) = &self.served().scale {
            set_json_path(obj, &s.spec_replicas, json!(replicas));
        }
    }

    fn strategic_merge(&self) -> bool {
        false
    }

    /// Upstream's custom resource strategy: any change outside metadata (and outside status
    /// when the status subresource is enabled) bumps the generation.
    fn generation_changed(&self, old: &Value, new: &Value) -> bool {
        let status = self.served().status;
        let strip = |v: &Value| -> Value {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("metadata");
                m.remove("apiVersion");
                m.remove("kind");
                if status {
                    m.remove("status");
                }
            }
            v
        };
        strip(old) != strip(new)
    }

    fn columns(&self) -> Vec<Column> {
        let served = self.served();
        let mut out: Vec<Column> = vec![("Name", "name", 0)];
        out.extend(
            served
                .columns
                .iter()
                .map(|c| (c.name, c.format, c.priority)),
        );
        out
    }

    fn column_type(&self, name: &str) -> Option<String> {
        self.served()
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ty.clone())
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let served = self.served();
        let mut out = vec![json!(table::s(&o["metadata"]["name"]))];
        for c in &served.columns {
            out.push(cell(json_path(o, &c.json_path), &c.ty, now));
        }
        out
    }
}

// ---------------------------------------------------------------- the registry of served CRs

#[derive(Default)]
struct Registry {
    strings: HashSet<&'static str>,
    strategies: HashMap<(String, String, String), &'static CustomResourceStrategy>,
    defs: HashMap<String, &'static ResourceDef>,
    served: Vec<&'static ResourceDef>,
    schemas: Vec<CrdSchema>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = match REGISTRY.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    f(g.get_or_insert_with(Registry::default))
}

impl Registry {
    fn intern(&mut self, s: &str) -> &'static str {
        if let Some(x) = self.strings.get(s) {
            return x;
        }
        let x: &'static str = Box::leak(s.to_string().into_boxed_str());
        self.strings.insert(x);
        x
    }

    fn strategy(
        &mut self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> &'static CustomResourceStrategy {
        let key = (group.to_string(), version.to_string(), plural.to_string());
        if let Some(s) = self.strategies.get(&key) {
            return s;
        }
        let s: &'static CustomResourceStrategy = Box::leak(Box::new(CustomResourceStrategy {
            group: self.intern(group),
            version: self.intern(version),
            state: RwLock::new(Arc::new(Served::default())),
        }));
        self.strategies.insert(key, s);
        s
    }
}

/// A served custom resource version's schema, for the OpenAPI documents.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdSchema {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub schema: Value,
}

/// The custom resources served now.
pub fn served() -> Vec<&'static ResourceDef> {
    with_registry(|r| r.served.clone())
}

/// (group, version, kind, schema) of every served custom resource version, for OpenAPI.
pub fn schemas() -> Vec<CrdSchema> {
    with_registry(|r| r.schemas.clone())
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn served_version(v: &Value, r: &mut Registry) -> Served {
    let subs = &v["subresources"];
    let scale = subs["scale"].as_object().map(|s| ScalePaths {
        spec_replicas: s
            .get("specReplicasPath")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string(),
        status_replicas: s
            .get("statusReplicasPath")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string(),
        label_selector: s
            .get("labelSelectorPath")
            .and_then(|x| x.as_str())
            .map(String::from),
    });
    let mut columns: Vec<PrinterColumn> = v["additionalPrinterColumns"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| PrinterColumn {
                    name: r.intern(c["name"].as_str().unwrap_or("")),
                    ty: c["type"].as_str().unwrap_or("string").to_string(),
                    format: r.intern(c["format"].as_str().unwrap_or("")),
                    priority: c["priority"]
                        .as_u64()
                        .map(|p| p.min(255) as u8)
                        .unwrap_or(0),
                    json_path: c["jsonPath"].as_str().unwrap_or("").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    if columns.is_empty() {
        columns.push(PrinterColumn {
            name: "Age",
            ty: "date".into(),
            format: "",
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        });
    }
    Served {
        schema: v["schema"]["openAPIV3Schema"].clone(),
        status: subs["status"].is_object(),
        scale,
        columns,
        conversion: None,
        deprecation: None,
    }
}

/// The warning requests to version `v` get when it is deprecated: its `deprecationWarning`, or
/// upstream's default `<group>/<version> <Kind> is deprecated`.
fn deprecation(v: &Value, group: &str, kind: &str) -> Option<String> {
    if v["deprecated"] != true {
        return None;
    }
    Some(match v["deprecationWarning"].as_str() {
        Some(w) => w.to_string(),
        None => format!(
            "{group}/{} {kind} is deprecated",
            v["name"].as_str().unwrap_or("")
        ),
    })
}

/// The served strategy of the custom resource `def` (None for built-in kinds).
fn strategy_of(def: &ResourceDef) -> Option<&'static CustomResourceStrategy> {
    let key = (
        def.group.to_string(),
        def.version.to_string(),
        def.plural.to_string(),
    );
    let s = with_registry(|r| r.strategies.get(&key).copied())?;
    std::ptr::addr_eq(
        s as *const CustomResourceStrategy,
        def.strategy as *const dyn Strategy,
    )
    .then_some(s)
}

/// Add the deprecation warning of a deprecated custom resource version to the response of a
/// request to it (any verb and outcome, as upstream's CRD handler).
pub fn with_deprecation_warning(
    path: &str,
    mut resp: axum::response::Response,
) -> axum::response::Response {
    let Ok(crate::request::Target::Resource(t)) = crate::request::parse_path(path) else {
        return resp;
    };
    let Some(w) = strategy_of(t.def).and_then(|s| s.served().deprecation.clone()) else {
        return resp;
    };
    let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
    if let Ok(h) = axum::http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
        resp.headers_mut().append("warning", h);
    }
    resp
}

/// Is `def` a custom resource (served from a CRD)?
pub fn is_custom(def: &ResourceDef) -> bool {
    with_registry(|r| {
        r.strategies.values().any(|s| {
            std::ptr::addr_eq(
                *s as *const CustomResourceStrategy,
                def.strategy as *const dyn Strategy,
            )
        })
    })
}

/// The conversion webhook of the custom resource `def` (None: not a custom resource, or its
/// CRD converts with strategy `None`).
pub fn conversion_webhook(def: &ResourceDef) -> Option<super::crd_conversion::Webhook> {
    let key = (
        def.group.to_string(),
        def.version.to_string(),
        def.plural.to_string(),
    );
    let s = with_registry(|r| r.strategies.get(&key).copied())?;
    if !std::ptr::addr_eq(
        s as *const CustomResourceStrategy,
        def.strategy as *const dyn Strategy,
    ) {
        return None;
    }
    s.served().conversion.clone()
}

/// Rebuild the served custom resources from the given CRDs (the established ones are served).
/// Returns the (group, plural) of resources served before whose CRD is gone: their stored
/// objects are to be removed.
pub fn install(crds: &[Value]) -> Vec<(String, String)> {
    crate::openapi::set_custom(
        crds.iter()
            .flat_map(crate::openapi::CustomKind::from_crd)
            .collect(),
    );
    // Built ahead of the first client (a no-op when the set did not change).
    crate::openapi::prewarm();
    with_registry(|r| {
        let mut served = Vec::new();
        let mut schemas = Vec::new();
        for c in crds {
            if !crd::is_established(c) {
                continue;
            }
            let spec = &c["spec"];
            let names = &c["status"]["acceptedNames"];
            let group = spec["group"].as_str().unwrap_or("");
            let plural = names["plural"].as_str().unwrap_or("");
            let kind = names["kind"].as_str().unwrap_or("");
            if group.is_empty() || plural.is_empty() || kind.is_empty() {
                continue;
            }
            let namespaced = spec["scope"] == "Namespaced";
            for v in spec["versions"].as_array().into_iter().flatten() {
                if v["served"].as_bool() != Some(true) {
                    continue;
                }
                let version = v["name"].as_str().unwrap_or("");
                let mut state = served_version(v, r);
                state.conversion = super::crd_conversion::Webhook::from_crd(c);
                state.deprecation = deprecation(v, group, kind);
                let strategy = r.strategy(group, version, plural);
                let mut subs = Vec::new();
                if state.status {
                    subs.push(Subresource::Status);
                }
                if state.scale.is_some() {
                    subs.push(Subresource::Scale);
                }
                schemas.push(CrdSchema {
                    group: group.into(),
                    version: version.into(),
                    kind: kind.into(),
                    plural: plural.into(),
                    namespaced,
                    schema: state.schema.clone(),
                });
                match strategy.state.write() {
                    Ok(mut g) => *g = Arc::new(state),
                    Err(p) => *p.into_inner() = Arc::new(state),
                }
                let singular = names["singular"].as_str().unwrap_or("");
                let list_kind = names["listKind"].as_str().unwrap_or("");
                let short = str_list(&names["shortNames"]);
                let cats = str_list(&names["categories"]);
                let key = json!([
                    group,
                    version,
                    plural,
                    singular,
                    kind,
                    list_kind,
                    namespaced,
                    short,
                    cats,
                    subs.contains(&Subresource::Status),
                    subs.contains(&Subresource::Scale)
                ])
                .to_string();
                let def = match r.defs.get(&key) {
                    Some(d) => *d,
                    None => {
                        let short: Vec<&'static str> = short.iter().map(|s| r.intern(s)).collect();
                        let cats: Vec<&'static str> = cats.iter().map(|s| r.intern(s)).collect();
                        let d: &'static ResourceDef = Box::leak(Box::new(ResourceDef {
                            group: r.intern(group),
                            version: r.intern(version),
                            kind: r.intern(kind),
                            list_kind: r.intern(list_kind),
                            plural: r.intern(plural),
                            singular: r.intern(singular),
                            namespaced,
                            short_names: Box::leak(short.into_boxed_slice()),
                            categories: Box::leak(cats.into_boxed_slice()),
                            subresources: Box::leak(subs.into_boxed_slice()),
                            has_spec: true,
                            strategy,
                        }));
                        r.defs.insert(key, d);
                        d
                    }
                };
                served.push(def);
            }
        }
        let mut gone: Vec<(String, String)> = Vec::new();
        for d in &r.served {
            let exists = crds
                .iter()
                .any(|c| c["spec"]["group"] == d.group && c["spec"]["names"]["plural"] == d.plural);
            let pair = (d.group.to_string(), d.plural.to_string());
            if !exists && !gone.contains(&pair) {
                gone.push(pair);
            }
        }
        r.served = served;
        r.schemas = schemas;
        gone
    })
}

static LOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Load the served custom resources from the store once (CRDs stored before a restart); later
/// changes are installed by the CRD writes themselves.
pub async fn ensure_loaded(store: &Arc<dyn Store>) -> ApiResult<()> {
    use std::sync::atomic::Ordering;
    if LOADED.load(Ordering::Acquire) {
        return Ok(());
    }
    sync(store).await?;
    LOADED.store(true, Ordering::Release);
    Ok(())
}

/// Serializes [`sync`]: a read of the CRDs and its install happen together, so a pass that read
/// an older set can never install it over a newer one (which would stop serving a just-created
/// CRD, or report a live CRD's resources as gone).
static SYNC: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Rebuild the served custom resources from the CRDs in the store; returns the (group, plural)
/// of resources whose CRD is gone (see [`install`]).
pub async fn sync(store: &Arc<dyn Store>) -> ApiResult<Vec<(String, String)>> {
    let _one_at_a_time = SYNC.lock().await;
    let res = store.list(&crd::RESOURCE.prefix(None)).await?;
    let mut crds = Vec::with_capacity(res.items.len());
    for kv in &res.items {
        crds.push(crate::handlers::decode_kv(kv)?);
    }
    Ok(install(&crds))
}

/// Remove every stored custom resource of a CRD (all versions share one storage prefix).
pub async fn delete_all(ctx: &Ctx, group: &str, plural: &str) -> ApiResult<()> {
    let prefix = format!("/registry/{group}/{plural}/");
    let res = ctx.store.list(&prefix).await?;
    for kv in res.items {
        match ctx.store.delete(&kv.key, None).await {
            Ok(_) | Err(daas_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn established(mut c: Value) -> Value {
        super::super::Strategy::defaults(&crd::CrdStrategy, &mut c);
        c
    }

    #[test]
    fn install_serves_established_crds_and_interns_defs() {
        let c = established(json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object"}},
                     "subresources": {"status": {}}},
                    {"name": "v2", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        }));
        assert!(install(std::slice::from_ref(&c)).is_empty());
        let first = served();
        assert_eq!(first.len(), 1);
        let d = first[0];
        assert_eq!(
            (
                d.group,
                d.version,
                d.kind,
                d.list_kind,
                d.plural,
                d.singular
            ),
            (
                "example.com",
                "v1",
                "Widget",
                "WidgetList",
                "widgets",
                "widget"
            )
        );
        assert!(!d.namespaced);
        assert!(d.has_sub(Subresource::Status) && !d.has_sub(Subresource::Scale));
        // The same names are served by the same leaked definition: updates do not grow memory.
        install(std::slice::from_ref(&c));
        assert!(std::ptr::eq(served()[0], d));
        // A CRD that is not established is not served; a CRD that is gone is reported.
        let mut refused = c.clone();
        refused["status"]["conditions"] = json!([{"type": "Established", "status": "False"}]);
        assert!(install(&[refused]).is_empty());
        assert!(served().is_empty());
        install(std::slice::from_ref(&c));
        assert_eq!(
            install(&[]),
            vec![("example.com".to_string(), "widgets".to_string())]
        );
    }

    #[test]
    fn json_paths() {
        let o = json!({"spec": {"replicas": 3, "list": [{"a": 1}]}, "metadata": {"name": "x"}});
        assert_eq!(json_path(&o, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(json_path(&o, "{.spec.list[0].a}"), Some(&json!(1)));
        assert_eq!(json_path(&o, ".status.replicas"), None);
        let mut o = json!({});
        set_json_path(&mut o, ".spec.replicas", json!(4));
        assert_eq!(o["spec"]["replicas"], 4);
    }
}
