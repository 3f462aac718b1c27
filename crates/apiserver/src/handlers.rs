//! REST verbs on stored objects: get, list, create, update, patch, delete, subresources.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use daas_apimachinery::selector::{FieldSelector, LabelSelector};
use daas_apimachinery::{apply, patch};
use daas_store::{KeyValue, Store, StoreError};
use serde_json::{json, Value};

use crate::admission::{self, Attrs};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::registry;
use crate::request::{As, ResourceTarget};
use crate::resources::{self, ResourceDef};
use crate::table::{self, IncludeObject};
use crate::typed;

/// Largest accepted request body (Kubernetes uses 3 MiB).
pub const DEFAULT_MAX_BODY: usize = 3 * 1024 * 1024;
pub(crate) const UPDATE_RETRIES: usize = 16;

pub struct Ctx {
    pub store: Arc<dyn Store>,
    /// How often idle watches with allowWatchBookmarks get a BOOKMARK.
    pub bookmark_interval: std::time::Duration,
    /// Webhook configurations and admission policies, cached until they change.
    pub admission: Arc<crate::watchcache::AdmissionCaches>,
    /// The Service cluster-IP and node-port ranges (`--service-cluster-ip-range`,
    /// `--service-node-port-range`).
    pub service_ranges: crate::registry::ipalloc::ServiceRanges,
    /// Reaches pods through their nodes' agents (webhooks served by a Service; see
    /// [`crate::egress`]); without it, pods are dialled directly.
    pub node_proxy: Option<Arc<dyn crate::server::NodeProxy>>,
    /// Encoded objects served to GETs without a store read (see [`crate::objectcache`]); None:
    /// every GET reads the store.
    pub objects: Option<Arc<crate::objectcache::ObjectCache>>,
    /// The tolerations of the node lifecycle taints new pods get (DefaultTolerationSeconds).
    pub default_tolerations: crate::defaulttolerations::DefaultTolerations,
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stored object decoded, with `metadata.resourceVersion` set from the store revision.
pub fn decode_kv(kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    v["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
    Ok(v)
}

/// `v` encoded for the store as it is (server-owned metadata dropped).
pub(crate) fn encode(v: &Value) -> ApiResult<Vec<u8>> {
    let mut v = v.clone();
    if let Some(md) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        md.remove("resourceVersion");
        md.remove("selfLink");
    }
    serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))
}

/// Encode an object of `def`'s served form for the store: in the storage form of the resource it
/// shares a store with (events.k8s.io Events), converted to the storage version (custom
/// resources with a conversion webhook).
pub(crate) async fn encode_stored(ctx: &Ctx, def: &ResourceDef, v: &Value) -> ApiResult<Vec<u8>> {
    let mut v = def.strategy.to_storage(v.clone());
    crate::registry::crd_conversion::to_storage(ctx, def, &mut v).await?;
    encode(&v)
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        // A header holds no line breaks: Go's net/http turns them into spaces.
        let escaped = w
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(['\r', '\n'], " ");
        if let Ok(h) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("warning", h);
        }
    }
    resp
}

/// Selectors from `labelSelector` / `fieldSelector`.
pub struct Filter {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(def: &ResourceDef, q: &HashMap<String, String>) -> ApiResult<Self> {
        let labels =
            match q.get("labelSelector").filter(|s| !s.is_empty()) {
                Some(s) => Some(LabelSelector::parse(s).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                None => None,
            };
        let fields = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                let f = FieldSelector::parse(s)
                    .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
                for r in f.requirements() {
                    if !field_supported(def, &r.field) {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {}",
                            r.field
                        )));
                    }
                }
                Some(f)
            }
            None => None,
        };
        Ok(Filter { labels, fields })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches_object(obj) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            if !f.matches(obj) {
                return false;
            }
        }
        true
    }
}

fn field_supported(def: &ResourceDef, field: &str) -> bool {
    field == "metadata.name"
        || (def.namespaced && field == "metadata.namespace")
        || def.strategy.field_labels().contains(&field)
}

pub(crate) fn ns_of(t: &ResourceTarget) -> Option<&str> {
    if t.def.namespaced {
        t.namespace.as_deref()
    } else {
        None
    }
}

pub async fn get_object(
    ctx: &Ctx,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<(Value, KeyValue)> {
    match ctx.store.get(&def.key(ns, name)).await? {
        Some(kv) => {
            let mut obj = decode_kv(&kv)?;
            crate::registry::crd_conversion::to_served(ctx, def, &mut obj).await?;
            def.strategy.present(&mut obj);
            Ok((obj, kv))
        }
        None => Err(ApiError::not_found(def, name)),
    }
}

// ---------------------------------------------------------------- get / list

pub async fn get(ctx: &Ctx, t: &ResourceTarget, name: &str, accept: As) -> ApiResult<Response> {
    if let (As::Object, Some(cache)) = (accept, ctx.objects.as_ref()) {
        // A custom resource's served form follows its CRD (defaults, conversion webhook), which
        // may change after the object was read: read (and convert) it every time.
        if !crate::registry::customresource::is_custom(t.def) {
            return get_cached(ctx, cache, t, name).await;
        }
    }
    let (obj, _) = get_object(ctx, t.def, ns_of(t), name).await?;
    Ok(render_one(t.def, obj, accept))
}

/// [`get`] of the object's JSON through the object cache (see [`crate::objectcache`]).
async fn get_cached(
    ctx: &Ctx,
    cache: &crate::objectcache::ObjectCache,
    t: &ResourceTarget,
    name: &str,
) -> ApiResult<Response> {
    let body = cached_body(ctx, cache, t.def, ns_of(t), name).await?;
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// The JSON of an object as [`get_object`] reads it, from the object cache when it holds the
/// current one (a built-in resource: the caller checked).
#[tracing::instrument(level = "debug", skip_all, fields(hit))]
async fn cached_body(
    ctx: &Ctx,
    cache: &crate::objectcache::ObjectCache,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<bytes::Bytes> {
    let key = def.key(ns, name);
    let gv = (def.group, def.version);
    let current = ctx.store.current_revision().await?;
    if let Some(body) = cache.lookup(&key, gv, current) {
        tracing::Span::current().record("hit", true);
        return Ok(body);
    }
    let (obj, kv) = get_object(ctx, def, ns, name).await?;
    let body = bytes::Bytes::from(
        serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    cache.insert(&key, kv.mod_revision, gv, body.clone(), current);
    Ok(body)
}

/// [`get_object`]'s object (without its store record) for the server's own reads on request
/// paths (a create's namespace and service account), through the object cache when there is one.
pub async fn read_object(
    ctx: &Ctx,
    def: &ResourceDef,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    match ctx.objects.as_ref() {
        Some(cache) if !crate::registry::customresource::is_custom(def) => {
            let body = cached_body(ctx, cache, def, ns, name).await?;
            serde_json::from_slice(&body).map_err(|e| ApiError::internal(e.to_string()))
        }
        _ => Ok(get_object(ctx, def, ns, name).await?.0),
    }
}

fn render_one(def: &ResourceDef, obj: Value, accept: As) -> Response {
    match accept {
        As::Object => json_response(StatusCode::OK, &obj),
        As::PartialMetadata => json_response(StatusCode::OK, &table::partial_metadata(&obj)),
        As::Table => {
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            json_response(
                StatusCode::OK,
                &table::table(def, &[obj], &rv, IncludeObject::Metadata, true),
            )
        }
    }
}

pub async fn list_objects(
    ctx: &Ctx,
    def: &ResourceDef,
    ns: Option<&str>,
    filter: &Filter,
) -> ApiResult<(Vec<Value>, i64)> {
    let res = ctx.store.list(&def.prefix(ns)).await?;
    let mut items = res
        .items
        .iter()
        .map(decode_kv)
        .collect::<ApiResult<Vec<_>>>()?;
    crate::registry::crd_conversion::all_to_served(ctx, def, &mut items).await?;
    for o in items.iter_mut() {
        def.strategy.present(o);
    }
    items.retain(|o| filter.matches(o));
    Ok((items, res.revision))
}

/// A list, in pages when `limit` is set (see [`crate::paging`]).
pub async fn list(
    ctx: &Ctx,
    t: &ResourceTarget,
    q: &HashMap<String, String>,
    accept: As,
) -> ApiResult<Response> {
    let filter = Filter::from_query(t.def, q)?;
    let prefix = t.def.prefix(ns_of(t));
    let params = paging::ListParams::from_query(q, &prefix)?;
    // Objects are shown in the requested version before selectors see them (events.k8s.io over
    // the core Event store). A conversion webhook runs after the page is cut, in one review: the
    // field selectors (name and namespace, which conversion keeps) cut the page, the label
    // selector (labels a webhook may change) sees the converted objects, so a page may come
    // shorter than its limit.
    let webhook = crate::registry::customresource::conversion_webhook(t.def).is_some();
    let present = |o: &mut Value| {
        if !webhook {
            t.def.strategy.present(o)
        }
    };
    let page = if webhook {
        let Filter { labels, fields } = filter;
        let stored = Filter {
            labels: None,
            fields,
        };
        let mut page = paging::list_page(ctx, &prefix, &stored, &params, &present).await?;
        crate::registry::crd_conversion::all_to_served(ctx, t.def, &mut page.items).await?;
        for o in page.items.iter_mut() {
            t.def.strategy.present(o);
        }
        let served = Filter {
            labels,
            fields: None,
        };
        if served.labels.is_some() {
            page.items.retain(|o| served.matches(o));
            page.remaining_item_count = None;
        }
        page
    } else {
        paging::list_page(ctx, &prefix, &filter, &params, &present).await?
    };
    let rv = page.revision.to_string();
    let mut body = match accept {
        As::Table => table::table(
            t.def,
            &page.items,
            &rv,
            IncludeObject::parse(q.get("includeObject").map(|s| s.as_str())),
            true,
        ),
        As::PartialMetadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "items": page.items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        As::Object => json!({
            "kind": t.def.list_kind,
            "apiVersion": t.def.api_version(),
            "items": page.items,
        }),
    };
    body["metadata"] = page.list_meta();
    Ok(json_response(StatusCode::OK, &body))
}

// ---------------------------------------------------------------- validation

pub(crate) fn validate(def: &ResourceDef, obj: &Value) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    for msg in registry::name_errors(def.strategy.name_rule(), name) {
        causes.push((
            "metadata.name".to_string(),
            format!("Invalid value: \"{name}\": {msg}"),
        ));
    }
    validate_object_meta(&obj["metadata"], &mut causes);
    def.strategy.validate(obj, &mut causes);
    causes
}

/// Upstream ValidateObjectMeta's label, annotation and owner-reference rules.
fn validate_object_meta(meta: &Value, causes: &mut Vec<(String, String)>) {
    use daas_apimachinery::validation as v;
    let shown = |s: &str| format!("{s:?}");
    if let Some(labels) = meta["labels"].as_object() {
        for (k, val) in labels {
            for m in v::qualified_name(k) {
                causes.push((
                    "metadata.labels".into(),
                    format!("Invalid value: {}: {m}", shown(k)),
                ));
            }
            let val = val.as_str().unwrap_or("");
            for m in v::label_value(val) {
                causes.push((
                    "metadata.labels".into(),
                    format!("Invalid value: {}: {m}", shown(val)),
                ));
            }
        }
    }
    if let Some(annotations) = meta["annotations"].as_object() {
        let mut total = 0usize;
        for (k, val) in annotations {
            for m in v::qualified_name(&k.to_ascii_lowercase()) {
                causes.push((
                    "metadata.annotations".into(),
                    format!("Invalid value: {}: {m}", shown(k)),
                ));
            }
            total += k.len() + val.as_str().map(str::len).unwrap_or(0);
        }
        const MAX: usize = 256 * 1024;
        if total > MAX {
            causes.push((
                "metadata.annotations".into(),
                format!("Too long: must have at most {MAX} bytes"),
            ));
        }
    }
    let refs = meta["ownerReferences"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for r in refs {
        for f in ["apiVersion", "kind", "name", "uid"] {
            if r[f].as_str().unwrap_or("").is_empty() {
                let msg = match f {
                    "uid" => "Invalid value: \"\": uid must not be empty".to_string(),
                    "apiVersion" => "Invalid value: \"\": version must not be empty".to_string(),
                    "kind" => "Invalid value: \"\": kind must not be empty".to_string(),
                    _ => "Invalid value: \"\": name must not be empty".to_string(),
                };
                causes.push((format!("metadata.ownerReferences.{f}"), msg));
            }
        }
    }
    let controllers: Vec<&Value> = refs
        .iter()
        .filter(|r| r["controller"].as_bool() == Some(true))
        .collect();
    if controllers.len() > 1 {
        let names: Vec<String> = controllers
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["kind"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        causes.push((
            "metadata.ownerReferences".into(),
            format!(
                "Invalid value: {:?}: Only one reference can have Controller set to true. Found \"true\" in references for {}",
                names.join(","),
                names.join(" and ")
            ),
        ));
    }
}

// ---------------------------------------------------------------- create

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

fn field_validation(q: &HashMap<String, String>) -> ApiResult<FieldValidation> {
    match q.get("fieldValidation").map(|s| s.as_str()) {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}; valid values are Ignore, Warn, Strict"
        ))),
    }
}

fn is_dry_run(q: &HashMap<String, String>) -> ApiResult<bool> {
    match q.get("dryRun").map(|s| s.as_str()) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "unsupported dryRun value {other:?}: only All is supported"
        ))),
    }
}

/// Check apiVersion/kind of a request body against the endpoint (filling them in when absent).
fn check_gvk(def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    let expect_av = def.api_version();
    match obj.get("apiVersion") {
        None | Some(Value::Null) => obj["apiVersion"] = json!(expect_av),
        Some(Value::String(av)) if *av == expect_av => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({expect_av})",
                other.as_str().unwrap_or(&other.to_string())
            )))
        }
    }
    match obj.get("kind") {
        None | Some(Value::Null) => obj["kind"] = json!(def.kind),
        Some(Value::String(k)) if k == def.kind => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({}) does not match the expected kind ({})",
                other.as_str().unwrap_or(&other.to_string()),
                def.kind
            )))
        }
    }
    if !obj["metadata"].is_null() && !obj["metadata"].is_object() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Typed decode + unknown-field policy. Returns the pruned object and warnings.
fn typed_decode(
    def: &ResourceDef,
    obj: &Value,
    fv: FieldValidation,
) -> ApiResult<(Value, Vec<String>)> {
    let (out, unknown) = typed::roundtrip(def, obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })?;
    let msgs: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match fv {
        FieldValidation::Strict if !msgs.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            msgs.join(", ")
        ))),
        FieldValidation::Warn => Ok((out, msgs)),
        _ => Ok((out, Vec::new())),
    }
}

/// Duplicate keys in a JSON or YAML request body (the decoders, like Go's, keep the last one),
/// as strict decoding reports them: `Strict` refuses the body, listing its unknown fields and
/// then its duplicate ones; `Warn` returns them as warnings; `Ignore` drops them.
fn duplicate_fields(
    def: &ResourceDef,
    headers: &HeaderMap,
    body: &[u8],
    obj: &Value,
    q: &HashMap<String, String>,
) -> ApiResult<Vec<String>> {
    let media = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .unwrap_or("")
        .trim();
    let dups: Vec<String> = match media {
        "application/json" | "" | "*/*" => daas_apimachinery::json_duplicate_fields(body)
            .iter()
            .map(|p| daas_apimachinery::duplicates::duplicate_field_message(p))
            .collect(),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            yaml_duplicate_keys(body).into_iter().collect()
        }
        _ => Vec::new(),
    };
    if dups.is_empty() {
        return Ok(dups);
    }
    match field_validation(q)? {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(dups),
        FieldValidation::Strict => {
            let unknown = typed::roundtrip(def, obj)
                .map(|(_, u)| u)
                .unwrap_or_default();
            let unknown = unknown.iter().map(|f| format!("unknown field \"{f}\""));
            // Upstream converts YAML strictly before decoding: its error comes first.
            let msgs: Vec<String> = if media.ends_with("json") || media.is_empty() || media == "*/*"
            {
                unknown.chain(dups).collect()
            } else {
                dups.into_iter().chain(unknown).collect()
            };
            Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                msgs.join(", ")
            )))
        }
    }
}

/// Repeated keys of a YAML body as upstream's strict YAML-to-JSON conversion reports them
/// (sigs.k8s.io/yaml over go-yaml): `error converting YAML to JSON: yaml: unmarshal errors:`
/// then one `  line N: key "x" already set in map` line per repeated key (N: the line of the
/// repetition); None when no key repeats.
pub(crate) fn yaml_duplicate_keys(body: &[u8]) -> Option<String> {
    let found = daas_apimachinery::duplicates::located_duplicate_keys(|| {
        serde_yaml::Deserializer::from_slice(body)
    });
    if found.is_empty() {
        return None;
    }
    let lines: Vec<String> = found
        .iter()
        .map(|(key, e)| {
            let line = e.location().map_or(0, |l| l.line());
            format!("  line {line}: key {key} already set in map")
        })
        .collect();
    Some(format!(
        "error converting YAML to JSON: yaml: unmarshal errors:\n{}",
        lines.join("\n")
    ))
}

/// Repeated keys of a server-side apply body under the request's field validation: `Strict`
/// refuses it with upstream's `error strict decoding YAML: ...`, `Warn` returns the warning.
fn apply_duplicate_keys(body: &[u8], fv: FieldValidation) -> ApiResult<Vec<String>> {
    if fv == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let Some(msg) = yaml_duplicate_keys(body) else {
        return Ok(Vec::new());
    };
    if fv == FieldValidation::Strict {
        return Err(ApiError::bad_request(format!(
            "error strict decoding YAML: {msg}"
        )));
    }
    Ok(vec![msg])
}

/// Duplicate keys in a merge or strategic merge patch body, under the request's field
/// validation: `Strict` refuses the patch before it is applied, `Warn` returns warnings.
fn patch_duplicate_fields(
    kind: PatchKind,
    body: &[u8],
    fv: FieldValidation,
) -> ApiResult<Vec<String>> {
    if kind == PatchKind::Json || fv == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let dups: Vec<String> = daas_apimachinery::json_duplicate_fields(body)
        .iter()
        .map(|p| daas_apimachinery::duplicates::duplicate_field_message(p))
        .collect();
    if fv == FieldValidation::Strict && !dups.is_empty() {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            dups.join(", ")
        )));
    }
    Ok(dups)
}

/// A name from `generateName`: the prefix, cut to 58 characters as upstream's name generator does
/// (so that the name with its 5-character suffix still fits a DNS label), plus a random suffix.
fn generated_name(prefix: &str) -> String {
    const MAX_PREFIX: usize = 63 - 5;
    let cut = prefix
        .char_indices()
        .nth(MAX_PREFIX)
        .map_or(prefix.len(), |(i, _)| i);
    format!("{}{}", &prefix[..cut], random_suffix(5))
}

/// `n` random characters of upstream's name generator alphabet.
pub(crate) fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHA[rng.gen_range(0..ALPHA.len())] as char)
        .collect()
}

async fn ensure_namespace_usable(ctx: &Ctx, ns: &str) -> ApiResult<()> {
    let def = &resources::NAMESPACES;
    match read_object(ctx, def, None, ns).await {
        Err(e) => Err(e),
        Ok(o) => {
            if !o["metadata"]["deletionTimestamp"].is_null() {
                Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ))
                .with_details(json!({"causes":[{"reason":"NamespaceTerminating","field":"metadata.namespace"}]})))
            } else {
                Ok(())
            }
        }
    }
}

pub async fn create(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    headers: &HeaderMap,
    body: &[u8],
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let mut obj = crate::request::decode_body(headers, body)?;
    let manager = field_manager(headers, q)?;
    let requested_managed = obj["metadata"]["managedFields"].clone();
    let dups = duplicate_fields(t.def, headers, body, &obj, q)?;
    let generate_prefix = match (
        obj["metadata"]["name"].as_str().unwrap_or(""),
        obj["metadata"]["generateName"].as_str(),
    ) {
        ("", Some(prefix)) if !prefix.is_empty() => Some(prefix.to_string()),
        _ => None,
    };
    let (mut obj, mut warnings) = prepare_create(ctx, t, &mut obj, q).await?;
    track_create(t.def, &requested_managed, &mut obj, &manager);
    warnings.extend(dups);
    let attrs = Attrs {
        dry_run: is_dry_run(q)?,
        ..attrs
    };
    warnings.extend(admission::admit(ctx, attrs, t, None, &mut obj).await?);
    let created = if is_dry_run(q)? {
        t.def.strategy.reserve(ctx, None, &mut obj, true).await?;
        obj
    } else {
        let created = create_generated(ctx, t.def, obj, generate_prefix.as_deref()).await?;
        if t.def.group.is_empty() && t.def.plural == "pods" {
            daas_protocol::podstart::mark(
                created["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default(),
                created["metadata"]["name"].as_str().unwrap_or_default(),
                "created",
            );
        }
        created
    };
    Ok(with_warnings(
        json_response(StatusCode::CREATED, &created),
        &warnings,
    ))
}

/// How many names a create with `generateName` tries before it answers 409 (upstream's
/// RetryGenerateName: `maxNameGenerationCreateAttempts`).
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// [`store_create`]; when the name was generated from `prefix` and is taken, retry with a fresh
/// one (a collision of the 5 random characters is the server's business, not the client's).
async fn create_generated(
    ctx: &Ctx,
    def: &ResourceDef,
    mut obj: Value,
    prefix: Option<&str>,
) -> ApiResult<Value> {
    let mut attempt = 1;
    loop {
        match store_create(ctx, def, &obj).await {
            Err(e) if e.reason == "AlreadyExists" && attempt < GENERATE_NAME_ATTEMPTS => {
                let Some(prefix) = prefix else {
                    return Err(e);
                };
                attempt += 1;
                obj["metadata"]["name"] = json!(generated_name(prefix));
            }
            other => return other,
        }
    }
}

/// Validate, default and stamp a new object (shared by create and controllers).
pub async fn prepare_create(
    ctx: &Ctx,
    t: &ResourceTarget,
    obj: &mut Value,
    q: &HashMap<String, String>,
) -> ApiResult<(Value, Vec<String>)> {
    let def = t.def;
    check_gvk(def, obj)?;
    let fv = field_validation(q)?;
    if def.namespaced {
        let url_ns = t.namespace.clone().unwrap_or_default();
        match obj["metadata"]["namespace"].as_str() {
            Some(ns) if !ns.is_empty() && ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => obj["metadata"]["namespace"] = json!(url_ns),
        }
        ensure_namespace_usable(ctx, &url_ns).await?;
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    if obj["metadata"]["name"].as_str().unwrap_or("").is_empty() {
        match obj["metadata"]["generateName"].as_str() {
            Some(prefix) if !prefix.is_empty() => {
                obj["metadata"]["name"] = json!(generated_name(prefix));
            }
            _ => {
                return Err(ApiError::invalid(
                    def,
                    "",
                    vec![(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ))
            }
        }
    }
    let (mut obj, warnings) = typed_decode(def, obj, fv)?;
    def.strategy.normalize(&mut obj);
    // Defaults apply before validation, as Kubernetes' decoding does (a ReplicationController's
    // selector defaults from its template); they are applied again after prepare_create below.
    def.strategy.defaults(&mut obj);
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let mut causes = validate(def, &obj);
    def.strategy.validate_create(&obj, &mut causes);
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, &name, causes));
    }
    {
        let md = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        md.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        md.insert("creationTimestamp".into(), json!(now_rfc3339()));
        md.remove("resourceVersion");
        md.remove("deletionTimestamp");
        md.remove("deletionGracePeriodSeconds");
        md.remove("managedFields");
        if def.has_spec {
            md.insert("generation".into(), json!(1));
        } else {
            md.remove("generation");
        }
    }
    def.strategy.prepare_create(&mut obj);
    def.strategy.defaults(&mut obj);
    def.strategy.allocate(ctx, &mut obj).await?;
    Ok((obj, warnings))
}

pub async fn store_create(ctx: &Ctx, def: &ResourceDef, obj: &Value) -> ApiResult<Value> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let ns = obj["metadata"]["namespace"].as_str().map(|s| s.to_string());
    let key = def.key(ns.as_deref(), &name);
    let mut obj = obj.clone();
    def.strategy.reserve(ctx, None, &mut obj, false).await?;
    let written = match encode_stored(ctx, def, &obj).await {
        Ok(bytes) => ctx.store.create(&key, &bytes).await.map_err(|e| match e {
            StoreError::AlreadyExists(_) => ApiError::already_exists(def, &name),
            e => e.into(),
        }),
        Err(e) => Err(e),
    };
    let kv = match written {
        Ok(kv) => kv,
        Err(e) => {
            // A failed create gives back what it reserved.
            def.strategy.release(ctx, &obj, None).await;
            return Err(e);
        }
    };
    let mut out = obj;
    out["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
    def.strategy.after_create(ctx, &out).await;
    def.strategy.after_write(ctx).await;
    Ok(out)
}

// ---------------------------------------------------------------- update / patch

enum Write {
    Main,
    Status,
    Approval,
    /// `pods/ephemeralcontainers`: only `spec.ephemeralContainers` is taken from the request.
    EphemeralContainers,
}

impl Write {
    /// The subresource name managedFields entries record for this write.
    fn subresource(&self) -> &'static str {
        match self {
            Write::Main => "",
            Write::Status => "status",
            Write::Approval => "approval",
            Write::EphemeralContainers => "ephemeralcontainers",
        }
    }
}

fn write_kind(t: &ResourceTarget) -> ApiResult<Write> {
    match t.sub.as_deref() {
        None => Ok(Write::Main),
        Some("status") if t.def.has_sub(resources::Subresource::Status) => Ok(Write::Status),
        Some("approval") if t.def.has_sub(resources::Subresource::Approval) => Ok(Write::Approval),
        Some("ephemeralcontainers")
            if t.def.has_sub(resources::Subresource::EphemeralContainers) =>
        {
            Ok(Write::EphemeralContainers)
        }
        Some(_) => Err(ApiError::not_found_path()),
    }
}

/// Merge an incoming object over the stored one according to the REST strategy.
fn merge_for_update(def: &ResourceDef, old: &Value, new: Value, w: &Write) -> ApiResult<Value> {
    let mut out = match w {
        Write::Main => {
            let mut n = new;
            def.strategy.prepare_update(old, &mut n);
            if def.has_sub(resources::Subresource::Status) {
                n["status"] = old["status"].clone();
                if n["status"].is_null() {
                    if let Some(m) = n.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            n
        }
        Write::Status => def.strategy.prepare_status_update(old, new),
        Write::Approval => crate::registry::csr::prepare_approval_update(old, new),
        Write::EphemeralContainers => {
            // Upstream dropNonEphemeralContainerUpdates: the stored pod with the request's
            // ephemeral containers (and its resourceVersion precondition).
            let mut n = old.clone();
            n["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"].clone();
            match new["spec"].get("ephemeralContainers") {
                Some(e) if !e.is_null() => n["spec"]["ephemeralContainers"] = e.clone(),
                _ => {
                    if let Some(s) = n["spec"].as_object_mut() {
                        s.remove("ephemeralContainers");
                    }
                }
            }
            n
        }
    };
    // Server-owned metadata is never taken from the request.
    for f in [
        "uid",
        "creationTimestamp",
        "namespace",
        "name",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old["metadata"].get(f) {
            Some(v) => out["metadata"][f] = v.clone(),
            None => {
                if let Some(m) = out["metadata"].as_object_mut() {
                    m.remove(f);
                }
            }
        }
    }
    if def.has_spec && matches!(w, Write::Main) && def.strategy.generation_changed(old, &out) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        out["metadata"]["generation"] = json!(g);
    }
    match old["metadata"].get("managedFields") {
        Some(v) => out["metadata"]["managedFields"] = v.clone(),
        None => {
            if let Some(m) = out["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
        }
    }
    Ok(out)
}

/// Shared tail of update and patch: validate, write with compare-and-swap on `kv`.
/// Returns Ok(None) when the store reported a conflict (caller may retry).
/// `adm` is the admission context for writes of a main resource (`None`: no admission, e.g. the
/// scale subresource, which changes nothing admission looks at).
#[allow(clippy::too_many_arguments)]
async fn commit_update(
    ctx: &Ctx,
    t: &ResourceTarget,
    adm: Option<Attrs<'_>>,
    kv: &KeyValue,
    old: &Value,
    new: Value,
    w: &Write,
    fv: FieldValidation,
    dry_run: bool,
    tracking: &Tracking,
) -> ApiResult<Option<(Value, Vec<String>)>> {
    let def = t.def;
    let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
    let mut new = new;
    check_gvk(def, &mut new)?;
    let requested_managed = new["metadata"]["managedFields"].clone();
    let (mut typed_new, warnings) = typed_decode(def, &new, fv)?;
    def.strategy.normalize(&mut typed_new);
    let mut merged = merge_for_update(def, old, typed_new, w)?;
    // Defaults apply on every write, as Kubernetes' decoding does (an apply that drops a defaulted
    // field gets it back rather than leaving it unset).
    def.strategy.defaults(&mut merged);
    let mut causes = validate(def, &merged);
    match w {
        Write::EphemeralContainers => {
            crate::registry::podspec::validate_ephemeral_containers_update(
                old,
                &merged,
                &mut causes,
            )
        }
        _ => def.strategy.validate_update(old, &merged, &mut causes),
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, &name, causes));
    }
    track_update(def, old, &requested_managed, &mut merged, w, tracking);
    let mut warnings = warnings;
    if let (Some(attrs), Write::Approval | Write::Status) = (&adm, w) {
        if def.kind == crate::registry::csr::RESOURCE.kind {
            crate::registry::csr::admit_write(ctx, attrs.user, w.subresource(), old, &merged)
                .await?;
        }
    }
    match (adm, w) {
        // New ephemeral containers go through the whole chain (Pod Security checks them).
        (Some(attrs), Write::Main | Write::EphemeralContainers) => {
            warnings.extend(admission::admit(ctx, attrs, t, Some(old), &mut merged).await?);
        }
        (Some(attrs), Write::Status) => {
            let op = crate::webhook::Operation::Update;
            warnings
                .extend(admission::admit_other(ctx, attrs, t, op, old, Some(&mut merged)).await?);
        }
        _ => {}
    }
    if matches!(w, Write::Main) {
        def.strategy
            .reserve(ctx, Some(old), &mut merged, dry_run)
            .await?;
    }
    let mut cmp_old = old.clone();
    cmp_old["metadata"]["resourceVersion"] = json!(null);
    let mut cmp_new = merged.clone();
    cmp_new["metadata"]["resourceVersion"] = json!(null);
    if cmp_old == cmp_new || dry_run {
        let mut out = merged;
        out["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
        return Ok(Some((out, warnings)));
    }
    // Finalizers: an object being deleted goes away once its last finalizer is removed.
    let finalizers_empty = merged["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.is_empty())
        .unwrap_or(true);
    if !merged["metadata"]["deletionTimestamp"].is_null()
        && finalizers_empty
        && !def.strategy.pending_finalizers(&merged)
    {
        let res = ctx.store.delete(&kv.key, Some(kv.mod_revision)).await;
        def.strategy.release(ctx, &merged, Some(old)).await;
        return match res {
            Ok(del) => {
                def.strategy.release(ctx, old, None).await;
                let mut out = merged;
                out["metadata"]["resourceVersion"] = json!(del.mod_revision.to_string());
                def.strategy.after_write(ctx).await;
                Ok(Some((out, warnings)))
            }
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(StoreError::NotFound(_)) => Err(ApiError::not_found(def, &name)),
            Err(e) => Err(e.into()),
        };
    }
    let encoded = match encode_stored(ctx, def, &merged).await {
        Ok(b) => b,
        Err(e) => {
            def.strategy.release(ctx, &merged, Some(old)).await;
            return Err(e);
        }
    };
    let res = ctx.store.update(&kv.key, &encoded, kv.mod_revision).await;
    match &res {
        // Matching holdings move from the old object to the new one; the rest is given back.
        Ok(_) => def.strategy.release(ctx, old, Some(&merged)).await,
        Err(_) => def.strategy.release(ctx, &merged, Some(old)).await,
    }
    match res {
        Ok(nkv) => {
            let mut out = merged;
            out["metadata"]["resourceVersion"] = json!(nkv.mod_revision.to_string());
            def.strategy.after_write(ctx).await;
            Ok(Some((out, warnings)))
        }
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found(def, &name)),
        Err(e) => Err(e.into()),
    }
}

pub async fn update(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    if t.sub.as_deref() == Some("scale") {
        let patch_body = crate::request::decode_body(headers, body)?;
        let manager = field_manager(headers, q)?;
        return scale_write(ctx, attrs, t, name, ScaleOp::Replace(patch_body), manager).await;
    }
    let w = write_kind(t)?;
    let fv = field_validation(q)?;
    let dry = is_dry_run(q)?;
    let manager = field_manager(headers, q)?;
    let new = crate::request::decode_body(headers, body)?;
    let dups = duplicate_fields(t.def, headers, body, &new, q)?;
    if let Some(n) = new["metadata"]["name"].as_str() {
        if n != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    if t.def.namespaced {
        if let Some(n) = new["metadata"]["namespace"].as_str() {
            if !n.is_empty() && Some(n) != t.namespace.as_deref() {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    }
    let precondition: Option<i64> = match new["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
        None => None,
    };
    for _ in 0..UPDATE_RETRIES {
        let (old, kv) = get_object(ctx, t.def, ns_of(t), name).await?;
        if let Some(p) = precondition {
            if p != kv.mod_revision {
                return Err(ApiError::conflict(t.def, name));
            }
        }
        let mut candidate = new.clone();
        candidate["metadata"]["name"] = json!(name);
        if let Some(ns) = ns_of(t) {
            candidate["metadata"]["namespace"] = json!(ns);
        }
        match commit_update(
            ctx,
            t,
            Some(attrs),
            &kv,
            &old,
            candidate,
            &w,
            fv,
            dry,
            &Tracking::Update(manager.clone()),
        )
        .await?
        {
            Some((out, mut warnings)) => {
                warnings.extend(dups);
                return Ok(with_warnings(
                    json_response(StatusCode::OK, &out),
                    &warnings,
                ));
            }
            None if precondition.is_some() => return Err(ApiError::conflict(t.def, name)),
            None => continue,
        }
    }
    Err(ApiError::conflict(t.def, name))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
}

pub fn patch_kind(headers: &HeaderMap) -> ApiResult<PatchKind> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match ct.split(';').next().unwrap_or("").trim() {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" => Ok(PatchKind::Apply),
        other => Err(ApiError::unsupported_media(format!(
            "the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
        ))),
    }
}

pub fn apply_patch(
    kind: PatchKind,
    obj_kind: &str,
    current: &Value,
    body: &[u8],
) -> ApiResult<Value> {
    let p: Value = match kind {
        PatchKind::Apply => decode_apply_body(body)?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    let out = match kind {
        PatchKind::Json => {
            if !p.is_array() {
                return Err(ApiError::bad_request(
                    "json patch must be a JSON array of operations",
                ));
            }
            patch::json_patch(current, &p).map_err(patch_err)?
        }
        PatchKind::Merge => {
            if !p.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            patch::merge_patch(current, &p)
        }
        PatchKind::Strategic => {
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            patch::strategic_merge_patch(current, &p, obj_kind).map_err(patch_err)?
        }
        // Applying to a Scale: its fields are the whole configuration (no other managers).
        PatchKind::Apply => daas_apimachinery::apply::merge(current, &p),
    };
    let mut out = out;
    crate::request::check_shape(&mut out)?;
    Ok(out)
}

fn patch_err(e: patch::PatchError) -> ApiError {
    let code = e.http_status();
    if code == 422 {
        ApiError::new(422, "Invalid", e.to_string())
    } else {
        ApiError::new(
            code,
            if code == 409 {
                "Conflict"
            } else {
                "BadRequest"
            },
            e.to_string(),
        )
    }
}

pub async fn patch(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let kind = patch_kind(headers)?;
    if kind == PatchKind::Strategic && !t.def.strategy.strategic_merge() {
        return Err(ApiError::unsupported_media(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::bad_request("the patch body is empty"));
    }
    let manager = patch_options(kind, headers, q)?;
    if t.sub.as_deref() == Some("scale") {
        return scale_write(
            ctx,
            attrs,
            t,
            name,
            ScaleOp::Patch(kind, body.to_vec()),
            manager,
        )
        .await;
    }
    if kind == PatchKind::Apply {
        return server_side_apply(ctx, attrs, t, name, body, q, manager).await;
    }
    let w = write_kind(t)?;
    let fv = field_validation(q)?;
    let dry = is_dry_run(q)?;
    let dups = patch_duplicate_fields(kind, body, fv)?;
    for _ in 0..UPDATE_RETRIES {
        let (old, kv) = get_object(ctx, t.def, ns_of(t), name).await?;
        let patched = apply_patch(kind, t.def.kind, &old, body)?;
        if let Some(rv) = patched["metadata"]["resourceVersion"].as_str() {
            if rv != kv.mod_revision.to_string() {
                return Err(ApiError::conflict(t.def, name));
            }
        }
        if patched["metadata"]["name"].as_str() != Some(name) {
            return Err(ApiError::bad_request(
                "metadata.name cannot be changed by a patch",
            ));
        }
        if let Some((out, mut warnings)) = commit_update(
            ctx,
            t,
            Some(attrs),
            &kv,
            &old,
            patched,
            &w,
            fv,
            dry,
            &Tracking::Update(manager.clone()),
        )
        .await?
        {
            warnings.extend(dups);
            return Ok(with_warnings(
                json_response(StatusCode::OK, &out),
                &warnings,
            ));
        }
    }
    Err(ApiError::conflict(t.def, name))
}

// ---------------------------------------------------------------- server-side apply

/// How a write records `metadata.managedFields`.
pub(crate) enum Tracking {
    /// An Update by this manager (of the main resource or, for status writes, of `status`).
    Update(String),
    /// An Update by this manager through a subresource other than status (`scale`).
    Subresource(String, &'static str),
    /// Server-side apply computed the entries already.
    Applied(Vec<apply::ManagedEntry>),
}

/// The longest field manager name upstream accepts.
const MAX_FIELD_MANAGER: usize = 128;

/// The field manager of a write: `fieldManager`, else the User-Agent up to its first `/` (as
/// upstream derives it), cut to 128 characters.
fn field_manager(headers: &HeaderMap, q: &HashMap<String, String>) -> ApiResult<String> {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        if m.chars().count() > MAX_FIELD_MANAGER {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("fieldManager: Too long: must have at most {MAX_FIELD_MANAGER} bytes"),
            ));
        }
        if m.chars().any(|c| c.is_control()) {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("fieldManager: Invalid value: {m:?}: must be made of printable characters"),
            ));
        }
        return Ok(m.clone());
    }
    let ua = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let prefix = ua.split('/').next().unwrap_or("");
    Ok(prefix.chars().take(MAX_FIELD_MANAGER).collect())
}

/// PatchOptions validation: apply needs a `fieldManager`; `force` only goes with apply.
/// Returns the field manager.
fn patch_options(
    kind: PatchKind,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> ApiResult<String> {
    let invalid = |field: &str, reason: &str, msg: &str| {
        ApiError::new(
            422,
            "Invalid",
            format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {msg}"),
        )
        .with_details(json!({
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [{"reason": reason, "message": msg, "field": field}],
        }))
    };
    if kind == PatchKind::Apply {
        if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
            return Err(invalid(
                "fieldManager",
                "FieldValueRequired",
                "Required value: is required for apply patch",
            ));
        }
    } else if q.contains_key("force") {
        return Err(invalid(
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch",
        ));
    }
    field_manager(headers, q)
}

fn force_param(q: &HashMap<String, String>) -> ApiResult<bool> {
    match q.get("force").map(|s| s.as_str()) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid value for force: {other:?}"
        ))),
    }
}

/// An apply body: YAML (JSON is YAML) holding an object.
fn decode_apply_body(body: &[u8]) -> ApiResult<Value> {
    let v: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration must be an object",
        ));
    }
    Ok(v)
}

fn apply_scope(def: &ResourceDef, w: &Write) -> apply::Scope {
    match w {
        Write::Status | Write::Approval => apply::Scope::Status,
        Write::EphemeralContainers => apply::Scope::MainWithoutStatus,
        Write::Main if def.has_sub(resources::Subresource::Status) => {
            apply::Scope::MainWithoutStatus
        }
        Write::Main => apply::Scope::All,
    }
}

/// The apply schema of a kind, from its (owned) openAPIV3Schema when it has one.
fn apply_schema(schema: &Option<Value>) -> apply::Schema<'_> {
    match schema {
        Some(s) => apply::Schema::OpenApi(Some(s)),
        None => apply::Schema::Builtin,
    }
}

fn set_managed(obj: &mut Value, entries: &[apply::ManagedEntry]) {
    if entries.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = apply::encode_managed_fields(entries);
    }
}

/// The managed fields a write starts from: those the client sent if they are a valid,
/// non-empty list (clients may edit them; `[{}]` resets them), else the live ones (a client that
/// does not know managedFields must not drop them); invalid live ones are reset.
fn base_managed(requested: &Value, live: &Value, subresource: bool) -> Vec<apply::ManagedEntry> {
    let sent = requested.as_array().is_some_and(|a| !a.is_empty());
    if sent && !subresource {
        if let Ok(e) = apply::decode_managed_fields(requested) {
            return e;
        }
    }
    apply::decode_managed_fields(live).unwrap_or_default()
}

fn track_create(def: &ResourceDef, requested: &Value, obj: &mut Value, manager: &str) {
    let base = base_managed(requested, &Value::Null, false);
    let now = now_rfc3339();
    let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
    let schema = def.strategy.apply_schema();
    let writer = apply::Writer {
        manager,
        subresource: "",
        api_version: &api_version,
        now: &now,
        schema: apply_schema(&schema),
    };
    let entries = apply::update(None, obj, base, &writer, apply_scope(def, &Write::Main));
    set_managed(obj, &entries);
}

fn track_update(
    def: &ResourceDef,
    old: &Value,
    requested: &Value,
    merged: &mut Value,
    w: &Write,
    tracking: &Tracking,
) {
    let (manager, subresource) = match tracking {
        Tracking::Applied(entries) => return set_managed(merged, entries),
        Tracking::Update(m) => (m.as_str(), w.subresource()),
        Tracking::Subresource(m, sub) => (m.as_str(), *sub),
    };
    let base = base_managed(
        requested,
        &old["metadata"]["managedFields"],
        !subresource.is_empty(),
    );
    let now = now_rfc3339();
    let api_version = merged["apiVersion"].as_str().unwrap_or("").to_string();
    let schema = def.strategy.apply_schema();
    let writer = apply::Writer {
        manager,
        subresource,
        api_version: &api_version,
        now: &now,
        schema: apply_schema(&schema),
    };
    let entries = apply::update(Some(old), merged, base, &writer, apply_scope(def, w));
    set_managed(merged, &entries);
}

fn apply_err(def: &ResourceDef, e: apply::ApplyError) -> ApiError {
    match e {
        apply::ApplyError::Conflicts(c) => {
            let causes: Vec<Value> =
                c.0.iter()
                    .map(|x| {
                        json!({
                            "reason": "FieldManagerConflict",
                            "message": format!("conflict with {}", x.manager),
                            "field": x.path,
                        })
                    })
                    .collect();
            ApiError::new(409, "Conflict", c.message()).with_details(json!({ "causes": causes }))
        }
        e @ apply::ApplyError::DuplicateKey { .. } => ApiError::bad_request(format!(
            "failed to create typed patch object ({}, Kind={}): {e}",
            def.api_version(),
            def.kind
        )),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// An applied configuration of a kind defined by a schema (custom resources) may hold only
/// fields the schema declares (or preserves), whatever the field validation, as upstream's typed
/// patch conversion: `.path: field not declared in schema`.
fn undeclared_fields(def: &ResourceDef, cfg: &Value) -> ApiResult<()> {
    let (_, unknown) = typed::roundtrip(def, cfg).map_err(ApiError::bad_request)?;
    if unknown.is_empty() {
        return Ok(());
    }
    let errs: Vec<String> = unknown
        .iter()
        .map(|f| format!(".{f}: field not declared in schema"))
        .collect();
    Err(ApiError::bad_request(format!(
        "failed to create typed patch object ({}, Kind={}): {}",
        def.api_version(),
        def.kind,
        errs.join("\n")
    )))
}

/// PATCH with `application/apply-patch+yaml`: merge the applied configuration into the live
/// object (creating it when absent), with field ownership and conflicts.
async fn server_side_apply(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    name: &str,
    body: &[u8],
    q: &HashMap<String, String>,
    manager: String,
) -> ApiResult<Response> {
    let w = write_kind(t)?;
    let fv = field_validation(q)?;
    let dry = is_dry_run(q)?;
    let force = force_param(q)?;
    let mut cfg = decode_apply_body(body)?;
    let dups = apply_duplicate_keys(body, fv)?;
    if !cfg["metadata"]["managedFields"].is_null() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    check_gvk(t.def, &mut cfg)?;
    match cfg["metadata"]["name"].as_str() {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
        Some(_) => {}
        None => cfg["metadata"]["name"] = json!(name),
    }
    if t.def.namespaced {
        match cfg["metadata"]["namespace"].as_str() {
            Some(n) if !n.is_empty() && Some(n) != t.namespace.as_deref() => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => {
                if let Some(ns) = ns_of(t) {
                    cfg["metadata"]["namespace"] = json!(ns);
                }
            }
        }
    }
    let scope = apply_scope(t.def, &w);
    let api_version = t.def.api_version();
    let schema = t.def.strategy.apply_schema();
    if schema.is_some() {
        undeclared_fields(t.def, &cfg)?;
    }
    for _ in 0..UPDATE_RETRIES {
        let now = now_rfc3339();
        let writer = apply::Writer {
            manager: &manager,
            subresource: w.subresource(),
            api_version: &api_version,
            now: &now,
            schema: apply_schema(&schema),
        };
        let Some(kv) = ctx.store.get(&t.def.key(ns_of(t), name)).await? else {
            if !matches!(w, Write::Main) {
                return Err(ApiError::not_found(t.def, name));
            }
            let applied = apply::apply(None, &cfg, Vec::new(), &writer, force, scope)
                .map_err(|e| apply_err(t.def, e))?;
            let mut obj = applied.object;
            let (mut obj, mut warnings) = prepare_create(ctx, t, &mut obj, q).await?;
            warnings.splice(0..0, dups.iter().cloned());
            set_managed(&mut obj, &applied.managed);
            warnings.extend(admission::admit(ctx, attrs, t, None, &mut obj).await?);
            let created = if dry {
                t.def.strategy.reserve(ctx, None, &mut obj, true).await?;
                obj
            } else {
                match store_create(ctx, t.def, &obj).await {
                    Ok(c) => c,
                    // Created concurrently: apply to it.
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    Err(e) => return Err(e),
                }
            };
            return Ok(with_warnings(
                json_response(StatusCode::CREATED, &created),
                &warnings,
            ));
        };
        let mut old = decode_kv(&kv)?;
        crate::registry::crd_conversion::to_served(ctx, t.def, &mut old).await?;
        let entries =
            apply::decode_managed_fields(&old["metadata"]["managedFields"]).unwrap_or_default();
        let applied = apply::apply(Some(&old), &cfg, entries, &writer, force, scope)
            .map_err(|e| apply_err(t.def, e))?;
        if let Some((out, warnings)) = commit_update(
            ctx,
            t,
            Some(attrs),
            &kv,
            &old,
            applied.object,
            &w,
            fv,
            dry,
            &Tracking::Applied(applied.managed),
        )
        .await?
        {
            let warnings: Vec<String> = dups.iter().cloned().chain(warnings).collect();
            return Ok(with_warnings(
                json_response(StatusCode::OK, &out),
                &warnings,
            ));
        }
    }
    Err(ApiError::conflict(t.def, name))
}

// ---------------------------------------------------------------- scale

pub enum ScaleOp {
    Replace(Value),
    Patch(PatchKind, Vec<u8>),
}

fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let (spec_replicas, status_replicas, sel) = def.strategy.read_scale(obj);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": spec_replicas},
        "status": {"replicas": status_replicas, "selector": sel},
    })
}

pub async fn get_scale(ctx: &Ctx, t: &ResourceTarget, name: &str) -> ApiResult<Response> {
    let (obj, _) = get_object(ctx, t.def, ns_of(t), name).await?;
    Ok(json_response(StatusCode::OK, &scale_of(t.def, &obj)))
}

async fn scale_write(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    name: &str,
    op: ScaleOp,
    manager: String,
) -> ApiResult<Response> {
    if !t.def.has_sub(resources::Subresource::Scale) {
        return Err(ApiError::not_found_path());
    }
    let tracking = Tracking::Subresource(manager, "scale");
    for _ in 0..UPDATE_RETRIES {
        let (old, kv) = get_object(ctx, t.def, ns_of(t), name).await?;
        let cur = scale_of(t.def, &old);
        let mut new_scale = match &op {
            ScaleOp::Replace(v) => v.clone(),
            ScaleOp::Patch(k, body) => apply_patch(*k, "Scale", &cur, body)?,
        };
        let warnings = admission::admit_scale(ctx, attrs, t, &cur, &mut new_scale).await?;
        if let Some(rv) = new_scale["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            if rv != kv.mod_revision.to_string() {
                return Err(ApiError::conflict(t.def, name));
            }
        }
        let replicas = new_scale["spec"]["replicas"]
            .as_i64()
            .filter(|r| *r >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    t.def,
                    name,
                    vec![(
                        "spec.replicas".into(),
                        "Invalid value: must be a non-negative integer".into(),
                    )],
                )
            })?;
        let mut new = old.clone();
        t.def.strategy.write_scale(&mut new, replicas);
        if let Some((out, _)) = commit_update(
            ctx,
            t,
            None,
            &kv,
            &old,
            new,
            &Write::Main,
            FieldValidation::Ignore,
            false,
            &tracking,
        )
        .await?
        {
            return Ok(with_warnings(
                json_response(StatusCode::OK, &scale_of(t.def, &out)),
                &warnings,
            ));
        }
    }
    Err(ApiError::conflict(t.def, name))
}

// ---------------------------------------------------------------- delete

/// `?dryRun=All` or DeleteOptions `dryRun: ["All"]`.
fn is_delete_dry_run(q: &HashMap<String, String>, opts: &Value) -> ApiResult<bool> {
    Ok(is_dry_run(q)?
        || opts["dryRun"]
            .as_array()
            .map(|a| a.iter().any(|v| v == "All"))
            .unwrap_or(false))
}

fn success_status(def: &ResourceDef, obj: &Value) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": obj["metadata"]["name"], "group": def.group, "kind": def.plural, "uid": obj["metadata"]["uid"]},
    })
}

/// DELETE of one object. A write that raced ours (a controller updating the status while a
/// client deletes) is retried against the new revision, as upstream's store does; a failed
/// precondition stays a conflict (it fails again on retry).
pub async fn delete(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    name: &str,
    opts: &Value,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let mut last = None;
    for _ in 0..UPDATE_RETRIES {
        let mut warnings = Vec::new();
        match delete_once(ctx, attrs, t, name, opts, q, &mut warnings).await {
            Err(e) if e.code == 409 => last = Some(e),
            other => return other.map(|r| with_warnings(r, &warnings)),
        }
    }
    Err(last.unwrap_or_else(|| ApiError::conflict(t.def, name)))
}

/// One attempt of [`delete`]; the admission webhooks' warnings go to `warnings`.
#[allow(clippy::too_many_arguments)]
async fn delete_once(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    name: &str,
    opts: &Value,
    q: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> ApiResult<Response> {
    let dry = is_delete_dry_run(q, opts)?;
    let (obj, kv) = get_object(ctx, t.def, ns_of(t), name).await?;
    let pre = &opts["preconditions"];
    if let Some(uid) = pre["uid"].as_str() {
        if obj["metadata"]["uid"].as_str() != Some(uid) {
            return Err(ApiError::conflict(t.def, name).tap_msg(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                obj["metadata"]["uid"].as_str().unwrap_or("")
            )));
        }
    }
    if let Some(rv) = pre["resourceVersion"].as_str() {
        if rv != kv.mod_revision.to_string() {
            return Err(ApiError::conflict(t.def, name).tap_msg(format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                kv.mod_revision
            )));
        }
    }
    // Orphan / Foreground propagation: the garbage collector (daas-controllers) acts on these
    // finalizers, then removes them, which completes the deletion.
    let policy = opts["propagationPolicy"]
        .as_str()
        .map(|s| s.to_string())
        .or_else(|| q.get("propagationPolicy").cloned());
    let orphan_legacy = opts["orphanDependents"].as_bool() == Some(true)
        || q.get("orphanDependents")
            .map(|s| s == "true")
            .unwrap_or(false);
    let gc_finalizer = match policy.as_deref() {
        Some("Orphan") => Some("orphan"),
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Background") | Some("") => None,
        None if orphan_legacy => Some("orphan"),
        None => None,
        Some(other) => {
            return Err(ApiError::invalid(t.def, name, vec![(
                "propagationPolicy".into(),
                format!("Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
            )]))
        }
    };
    let op = crate::webhook::Operation::Delete;
    warnings.extend(admission::admit_other(ctx, attrs, t, op, &obj, None).await?);
    if dry {
        return Ok(json_response(StatusCode::OK, &obj));
    }
    let mut obj = obj;
    if let (Some(f), true) = (
        gc_finalizer,
        obj["metadata"]["deletionTimestamp"].is_null() && t.def.strategy.gc_finalizers(),
    ) {
        let mut fins: Vec<Value> = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !fins.iter().any(|x| x == f) {
            fins.push(json!(f));
        }
        obj["metadata"]["finalizers"] = json!(fins);
    }
    // Graceful deletion (a pod running on a node): the object gets a deletionTimestamp and its
    // grace period; whoever runs it finishes the deletion with grace period 0.
    let requested = match (
        opts["gracePeriodSeconds"].as_i64(),
        q.get("gracePeriodSeconds"),
    ) {
        (Some(g), _) => Some(g),
        (None, Some(g)) => Some(
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        ),
        (None, None) => None,
    };
    if let Some(grace) = t.def.strategy.grace_period(&obj, requested) {
        let current = obj["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if grace > 0 {
            if !obj["metadata"]["deletionTimestamp"].is_null()
                && current.map(|c| c <= grace).unwrap_or(true)
            {
                return Ok(json_response(StatusCode::OK, &obj));
            }
            let mut marked = obj.clone();
            let at = Utc::now() + chrono::Duration::seconds(grace);
            marked["metadata"]["deletionTimestamp"] =
                json!(at.to_rfc3339_opts(SecondsFormat::Secs, true));
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            return match ctx
                .store
                .update(
                    &kv.key,
                    &encode_stored(ctx, t.def, &marked).await?,
                    kv.mod_revision,
                )
                .await
            {
                Ok(nkv) => {
                    marked["metadata"]["resourceVersion"] = json!(nkv.mod_revision.to_string());
                    Ok(json_response(StatusCode::OK, &marked))
                }
                Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(t.def, name)),
                Err(e) => Err(e.into()),
            };
        }
    }
    let has_finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| !a.is_empty())
        .unwrap_or(false);
    if has_finalizers {
        if !obj["metadata"]["deletionTimestamp"].is_null() {
            return Ok(json_response(StatusCode::OK, &obj));
        }
        let mut marked = obj.clone();
        marked["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        return match ctx
            .store
            .update(
                &kv.key,
                &encode_stored(ctx, t.def, &marked).await?,
                kv.mod_revision,
            )
            .await
        {
            Ok(nkv) => {
                marked["metadata"]["resourceVersion"] = json!(nkv.mod_revision.to_string());
                Ok(json_response(StatusCode::OK, &marked))
            }
            Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(t.def, name)),
            Err(e) => Err(e.into()),
        };
    }
    let kv = t.def.strategy.before_delete(ctx, &obj, kv).await?;
    if let Some(kept) = t.def.strategy.retained_after_delete(&kv)? {
        return Ok(json_response(StatusCode::OK, &kept));
    }
    match ctx.store.delete(&kv.key, Some(kv.mod_revision)).await {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => return Err(ApiError::conflict(t.def, name)),
        Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(t.def, name)),
        Err(e) => return Err(e.into()),
    }
    t.def.strategy.release(ctx, &obj, None).await;
    t.def.strategy.after_write(ctx).await;
    if t.def.strategy.delete_returns_object() {
        Ok(json_response(StatusCode::OK, &obj))
    } else {
        Ok(json_response(StatusCode::OK, &success_status(t.def, &obj)))
    }
}

pub async fn delete_collection(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    q: &HashMap<String, String>,
    opts: &Value,
) -> ApiResult<Response> {
    is_delete_dry_run(q, opts)?;
    let filter = Filter::from_query(t.def, q)?;
    let (items, rev) = list_objects(ctx, t.def, ns_of(t), &filter).await?;
    let mut deleted = Vec::new();
    let mut warnings = Vec::new();
    for o in items {
        // Each object goes through the DELETE of one object (admission, dry run, graceful
        // deletion, finalizers, propagation), as upstream's DeleteCollection does.
        let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
        let item = ResourceTarget {
            def: t.def,
            namespace: o["metadata"]["namespace"].as_str().map(str::to_string),
            name: Some(name.clone()),
            sub: None,
        };
        let mut last = None;
        let mut outcome = None;
        for _ in 0..UPDATE_RETRIES {
            match delete_once(ctx, attrs, &item, &name, opts, q, &mut warnings).await {
                Err(e) if e.code == 409 => last = Some(e),
                other => {
                    outcome = Some(other);
                    break;
                }
            }
        }
        match outcome {
            Some(Ok(_)) => deleted.push(o),
            Some(Err(e)) if e.code == 404 => {}
            Some(Err(e)) => return Err(e),
            None => return Err(last.unwrap_or_else(|| ApiError::conflict(t.def, &name))),
        }
    }
    let list = json!({"kind": t.def.list_kind, "apiVersion": t.def.api_version(), "metadata": {"resourceVersion": rev.to_string()}, "items": deleted});
    Ok(with_warnings(
        json_response(StatusCode::OK, &list),
        &warnings,
    ))
}

pub(crate) trait TapMsg {
    fn tap_msg(self, m: String) -> Self;
}
impl TapMsg for ApiError {
    fn tap_msg(mut self, m: String) -> Self {
        self.message = m;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_generated_name_is_retried_and_a_taken_given_name_is_409() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            daas_store::EmbeddedStore::open(
                &dir.path().join("s.redb"),
                daas_store::SealingKey::generate(),
            )
            .unwrap(),
        );
        let ctx = Ctx {
            store: store.clone(),
            bookmark_interval: std::time::Duration::from_secs(30),
            admission: Default::default(),
            service_ranges: Default::default(),
            node_proxy: None,
            objects: None,
            default_tolerations: Default::default(),
        };
        let def = &crate::registry::configmap::RESOURCE;
        let cm = |name: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "namespace": "default", "generateName": "gen-"}})
        };
        store_create(&ctx, def, &cm("gen-taken")).await.unwrap();
        // The name drawn first is taken: the server draws another one.
        let out = create_generated(&ctx, def, cm("gen-taken"), Some("gen-"))
            .await
            .unwrap();
        let name = out["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("gen-") && name != "gen-taken", "{name}");
        assert_eq!(name.len(), "gen-".len() + 5, "{name}");
        // A name the client chose is never replaced.
        let e = create_generated(&ctx, def, cm("gen-taken"), None)
            .await
            .unwrap_err();
        assert_eq!((e.code, e.reason), (409, "AlreadyExists"));
        let kept = store
            .get(&def.key(Some("default"), "gen-taken"))
            .await
            .unwrap();
        assert!(kept.is_some());
    }

    #[test]
    fn repeated_yaml_keys_are_reported_with_their_lines_as_go_yaml_does() {
        let body = b"\napiVersion: v1\nkind: X\nspec:\n  foo: 1\n  bar: [1]\n  foo: 2\n  m: {true: 1, true: 2}\n  bar: {}\n";
        assert_eq!(
            yaml_duplicate_keys(body).unwrap(),
            "error converting YAML to JSON: yaml: unmarshal errors:\n  \
             line 7: key \"foo\" already set in map\n  \
             line 8: key true already set in map\n  \
             line 9: key \"bar\" already set in map"
        );
        assert_eq!(yaml_duplicate_keys(b"a: 1\nb: {a: 1}\n"), None);
        assert!(matches!(
            apply_duplicate_keys(b"a: 1\na: 2\n", FieldValidation::Strict),
            Err(e) if e.message == "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 2: key \"a\" already set in map"
        ));
        assert_eq!(
            apply_duplicate_keys(b"a: 1\na: 2\n", FieldValidation::Warn)
                .unwrap()
                .len(),
            1
        );
        assert!(
            apply_duplicate_keys(b"a: 1\na: 2\n", FieldValidation::Ignore)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn generated_names_fit_a_dns_label() {
        let long = format!("{}-", "a".repeat(70));
        let n = generated_name(&long);
        assert_eq!(n.len(), 63, "{n}");
        assert!(n.starts_with(&"a".repeat(58)));
        let short = generated_name("web-7d4b9c-");
        assert_eq!(short.len(), "web-7d4b9c-".len() + 5);
        assert!(short.starts_with("web-7d4b9c-"));
    }

    #[test]
    fn status_writes_touch_only_status() {
        let def = &resources::PODS;
        let old = json!({"metadata":{"name":"p","uid":"u1","generation":1},"spec":{"nodeName":"a"},"status":{"phase":"Pending"}});
        let new = json!({"metadata":{"name":"p","uid":"evil"},"spec":{"nodeName":"b"},"status":{"phase":"Running"}});
        let out = merge_for_update(def, &old, new.clone(), &Write::Status).unwrap();
        assert_eq!(out["spec"]["nodeName"], "a");
        assert_eq!(out["status"]["phase"], "Running");
        let out = merge_for_update(def, &old, new, &Write::Main).unwrap();
        assert_eq!(out["spec"]["nodeName"], "b");
        assert_eq!(out["status"]["phase"], "Pending");
        assert_eq!(out["metadata"]["uid"], "u1");
        assert_eq!(out["metadata"]["generation"], 2);
    }
}
