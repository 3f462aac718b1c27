//! Admission webhooks (admissionregistration.k8s.io/v1 Mutating/ValidatingWebhookConfiguration),
//! as upstream's generic webhook admission (staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook):
//! every write whose operation, group, version, resource/subresource and scope match a webhook's
//! `rules`, and whose namespace and object match its `namespaceSelector` / `objectSelector`, is
//! sent as an `admission.k8s.io/v1` AdmissionReview over HTTPS (verified against the webhook's
//! `caBundle`) to the webhook's `url`, or to its `service`'s endpoints (pod IP and target port,
//! verified as `<service>.<namespace>.svc`). Mutating webhooks run first, in order, applying their
//! JSONPatch (and those with `reinvocationPolicy: IfNeeded` run once more when a later webhook
//! changed the object); validating webhooks run concurrently. A call that fails or times out is
//! ignored or fails the request per `failurePolicy`; a denial fails it with the webhook's status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, Request, Uri};
use base64::Engine;
use daas_apimachinery::selector::LabelSelector;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, Ctx};
use crate::registry::admissionregistration::{self as ar, MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS};
use crate::resources::{self, ResourceDef};
use crate::server::User;

/// Largest AdmissionReview response read from a webhook.
const MAX_RESPONSE: usize = 3 * 1024 * 1024;

/// Why one webhook call failed (subject to the webhook's `failurePolicy`).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("failed to call webhook: Post \"{url}\": {msg}")]
    Transport { url: String, msg: String },
    #[error("failed to call webhook: Post \"{url}\": context deadline exceeded")]
    Timeout { url: String },
    #[error("failed to resolve the webhook's address: {0}")]
    Resolve(String),
    #[error("received invalid webhook response: {0}")]
    InvalidResponse(String),
    #[error("bad clientConfig: {0}")]
    Config(String),
}

/// The admission operation of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    fn options_kind(self) -> Option<&'static str> {
        match self {
            Operation::Create => Some("CreateOptions"),
            Operation::Update => Some("UpdateOptions"),
            Operation::Delete => Some("DeleteOptions"),
            Operation::Connect => None,
        }
    }
}

/// What one admission request is about.
#[derive(Clone)]
pub struct Attributes<'a> {
    pub def: &'static ResourceDef,
    pub subresource: Option<&'a str>,
    pub operation: Operation,
    pub name: &'a str,
    /// The namespace of a namespaced resource.
    pub namespace: Option<&'a str>,
    /// (group, version, kind) of the object when it is not the resource's kind (a `scale`
    /// subresource's autoscaling/v1 Scale).
    pub kind: Option<(&'static str, &'static str, &'static str)>,
    pub user: Option<&'a User>,
    /// The stored object (UPDATE, DELETE).
    pub old: Option<&'a Value>,
    pub dry_run: bool,
}

impl Attributes<'_> {
    /// Do webhooks see this request at all? Not for the admission configuration kinds.
    pub fn admissible(&self) -> bool {
        !ar::exempt(self.def)
    }
}

/// Does one rule (RuleWithOperations or a policy's NamedRuleWithOperations) match?
pub fn rule_matches(rule: &Value, a: &Attributes<'_>) -> bool {
    let has = |field: &str, want: &str| {
        rule[field]
            .as_array()
            .map(|xs| xs.iter().any(|x| x == "*" || x == want))
            .unwrap_or(false)
    };
    if !has("operations", a.operation.as_str())
        || !has("apiGroups", a.def.group)
        || !has("apiVersions", a.def.version)
    {
        return false;
    }
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !a.def.namespaced,
        "Namespaced" => a.def.namespaced,
        _ => true,
    };
    if !scope_ok {
        return false;
    }
    let plural = a.def.plural;
    rule["resources"]
        .as_array()
        .map(|rs| {
            rs.iter().filter_map(|r| r.as_str()).any(|r| {
                let (res, sub) = match r.split_once('/') {
                    Some((res, sub)) => (res, Some(sub)),
                    None => (r, None),
                };
                let res_ok = res == "*" || res == plural;
                match (sub, a.subresource) {
                    (None, None) => res_ok,
                    (Some(p), Some(s)) => res_ok && (p == "*" || p == s),
                    _ => false,
                }
            })
        })
        .unwrap_or(false)
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn selector(v: &Value) -> ApiResult<LabelSelector> {
    if v.is_null() {
        return Ok(LabelSelector::everything());
    }
    LabelSelector::from_json(v)
        .map_err(|e| ApiError::internal(format!("invalid label selector: {}", e.message())))
}

/// Upstream's namespaceSelector rule: namespaced objects are matched by their namespace's
/// labels, Namespace objects by their own, other cluster-scoped objects always match.
async fn namespace_matches(
    ctx: &Ctx,
    sel: &Value,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> ApiResult<bool> {
    let sel = selector(sel)?;
    if sel.is_everything() {
        return Ok(true);
    }
    if a.def.kind == "Namespace" && a.def.group.is_empty() {
        let o = obj.or(a.old).cloned().unwrap_or(Value::Null);
        return Ok(sel.matches(&labels_of(&o)));
    }
    let Some(ns) = a.namespace.filter(|_| a.def.namespaced) else {
        return Ok(true);
    };
    match handlers::get_object(ctx, &resources::NAMESPACES, None, ns).await {
        Ok((n, _)) => Ok(sel.matches(&labels_of(&n))),
        Err(e) if e.code == 404 => Ok(sel.matches(&BTreeMap::new())),
        Err(e) => Err(e),
    }
}

/// objectSelector: the new or the old object's labels match.
fn object_matches(sel: &Value, a: &Attributes<'_>, obj: Option<&Value>) -> ApiResult<bool> {
    let sel = selector(sel)?;
    if sel.is_everything() {
        return Ok(true);
    }
    Ok([obj, a.old]
        .into_iter()
        .flatten()
        .any(|o| sel.matches(&labels_of(o))))
}

async fn webhook_matches(
    ctx: &Ctx,
    w: &Value,
    programs: &Arc<crate::policy::Programs>,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> ApiResult<bool> {
    let rules = w["rules"].as_array().map(|r| r.as_slice()).unwrap_or(&[]);
    if !rules.iter().any(|r| rule_matches(r, a)) {
        return Ok(false);
    }
    if !selectors_match(ctx, &w["namespaceSelector"], &w["objectSelector"], a, obj).await? {
        return Ok(false);
    }
    match_conditions(w, programs, a, obj)
}

/// A webhook's `matchConditions` (CEL over `object`, `oldObject` and `request`): all must hold.
/// One that cannot be evaluated skips the webhook under `failurePolicy: Ignore` and fails the
/// request otherwise.
fn match_conditions(
    w: &Value,
    programs: &Arc<crate::policy::Programs>,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> ApiResult<bool> {
    let Some(mcs) = w["matchConditions"].as_array().filter(|m| !m.is_empty()) else {
        return Ok(true);
    };
    let vars = crate::policy::Vars::new(
        obj.cloned().unwrap_or(Value::Null),
        a.old.cloned().unwrap_or(Value::Null),
        crate::policy::request_var(a),
        Value::Null,
        Value::Null,
    )
    .with_programs(programs.clone());
    for mc in mcs {
        match vars.eval_bool(mc["expression"].as_str().unwrap_or("")) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(_) if !fails_closed(w) => return Ok(false),
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "Internal error occurred: failed calling webhook \"{}\": failed to evaluate match condition {:?}: {e}",
                    w["name"].as_str().unwrap_or(""),
                    mc["name"].as_str().unwrap_or("")
                )))
            }
        }
    }
    Ok(true)
}

/// Do a namespaceSelector and an objectSelector (of a webhook or a policy) match the request?
pub async fn selectors_match(
    ctx: &Ctx,
    namespace_selector: &Value,
    object_selector: &Value,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> ApiResult<bool> {
    if !object_matches(object_selector, a, obj)? {
        return Ok(false);
    }
    namespace_matches(ctx, namespace_selector, a, obj).await
}

/// The webhooks of one kind of configuration, ordered by configuration name (as upstream),
/// with their `matchConditions` compiled: cached (see [`crate::watchcache`]).
pub struct Hooks {
    pub hooks: Vec<Value>,
    programs: Arc<crate::policy::Programs>,
}

async fn load_hooks(ctx: &Ctx, def: &ResourceDef) -> ApiResult<(Hooks, i64)> {
    let filter = handlers::Filter {
        labels: None,
        fields: None,
    };
    let (mut configs, rev) = handlers::list_objects(ctx, def, None, &filter).await?;
    configs.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    let hooks: Vec<Value> = configs
        .iter()
        .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
        .collect();
    let mut programs = crate::policy::Programs::default();
    for w in &hooks {
        programs.add_all(&w["matchConditions"]);
    }
    Ok((
        Hooks {
            hooks,
            programs: Arc::new(programs),
        },
        rev,
    ))
}

/// All webhooks of one kind of configuration, from the cache.
async fn webhooks(ctx: &Ctx, def: &'static ResourceDef) -> ApiResult<Arc<Hooks>> {
    let cache = if std::ptr::eq(def, &MUTATING_WEBHOOKS) {
        &ctx.admission.mutating_webhooks
    } else {
        &ctx.admission.validating_webhooks
    };
    cache.get(&ctx.store, || load_hooks(ctx, def)).await
}

fn gvk(a: &Attributes<'_>) -> Value {
    let (group, version, kind) = a.kind.unwrap_or((a.def.group, a.def.version, a.def.kind));
    json!({"group": group, "version": version, "kind": kind})
}

/// The `admission.k8s.io/v1` AdmissionReview sent for `a` with the current `obj`.
pub fn review(a: &Attributes<'_>, uid: &str, obj: Option<&Value>) -> Value {
    let resource =
        json!({"group": a.def.group, "version": a.def.version, "resource": a.def.plural});
    let mut req = json!({
        "uid": uid,
        "kind": gvk(a),
        "resource": resource,
        "requestKind": gvk(a),
        "requestResource": resource,
        "name": a.name,
        "operation": a.operation.as_str(),
        "userInfo": a.user.map(User::user_info).unwrap_or(json!({})),
        "object": obj.cloned().unwrap_or(Value::Null),
        "oldObject": a.old.cloned().unwrap_or(Value::Null),
        "dryRun": a.dry_run,
    });
    if let Some(sub) = a.subresource {
        req["subResource"] = json!(sub);
        req["requestSubResource"] = json!(sub);
    }
    if let Some(ns) = a.namespace.filter(|_| a.def.namespaced) {
        req["namespace"] = json!(ns);
    }
    if let Some(kind) = a.operation.options_kind() {
        let mut o = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
        if a.dry_run {
            o["dryRun"] = json!(["All"]);
        }
        req["options"] = o;
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// Where one call goes: address to dial, TLS server name, request path and the URL for messages.
struct Endpoint {
    target: crate::egress::Target,
    server_name: String,
    path: String,
    url: String,
}

async fn resolve(ctx: &Ctx, cc: &Value) -> Result<Endpoint, CallError> {
    if let Some(url) = cc["url"].as_str() {
        let u: Uri = url
            .parse()
            .map_err(|e| CallError::Config(format!("invalid url {url:?}: {e}")))?;
        let host = u
            .host()
            .ok_or_else(|| CallError::Config(format!("url {url:?} has no host")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = u.port_u16().unwrap_or(443);
        return Ok(Endpoint {
            target: crate::egress::Target {
                ip: host.clone(),
                port,
                pod: None,
            },
            server_name: host,
            path: u
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .to_string(),
            url: url.to_string(),
        });
    }
    let s = &cc["service"];
    let (name, ns) = (
        s["name"].as_str().unwrap_or(""),
        s["namespace"].as_str().unwrap_or(""),
    );
    let port = s["port"].as_i64().unwrap_or(443);
    let path = s["path"].as_str().unwrap_or("/").to_string();
    let url = format!("https://{name}.{ns}.svc:{port}{path}");
    let svc = handlers::get_object(ctx, &resources::SERVICES, Some(ns), name)
        .await
        .map_err(|_| CallError::Resolve(format!("service \"{ns}/{name}\" not found")))?
        .0;
    let sp = svc["spec"]["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["port"].as_i64() == Some(port)))
        .cloned()
        .ok_or_else(|| CallError::Resolve(format!("service \"{ns}/{name}\" has no port {port}")))?;
    let eps = handlers::get_object(ctx, &resources::ENDPOINTS, Some(ns), name)
        .await
        .map(|(e, _)| e)
        .unwrap_or(Value::Null);
    let port_name = sp["name"].as_str().unwrap_or("");
    let target = eps["subsets"].as_array().and_then(|subsets| {
        subsets.iter().find_map(|ss| {
            let a = ss["addresses"].as_array()?.first()?;
            let ports = ss["ports"].as_array()?;
            let p = ports
                .iter()
                .find(|p| p["name"].as_str().unwrap_or("") == port_name)
                .or_else(|| (ports.len() == 1).then(|| &ports[0]))?;
            // A pod behind the address is reached through its node's agent.
            let node = a["nodeName"].as_str().unwrap_or("");
            let pod = (a["targetRef"]["kind"] == "Pod" && !node.is_empty()).then(|| {
                (
                    a["targetRef"]["namespace"]
                        .as_str()
                        .unwrap_or(ns)
                        .to_string(),
                    a["targetRef"]["name"].as_str().unwrap_or("").to_string(),
                    node.to_string(),
                )
            });
            Some(crate::egress::Target {
                ip: a["ip"].as_str()?.to_string(),
                port: u16::try_from(p["port"].as_i64()?).ok()?,
                pod,
            })
        })
    });
    let target = target.ok_or_else(|| {
        CallError::Resolve(format!("no endpoints available for service \"{name}\""))
    })?;
    Ok(Endpoint {
        target,
        server_name: format!("{name}.{ns}.svc"),
        path,
        url,
    })
}

fn tls_config(cc: &Value) -> Result<rustls::ClientConfig, CallError> {
    let mut roots = rustls::RootCertStore::empty();
    let ca_bundle = cc["caBundle"].as_str().filter(|s| !s.is_empty());
    if ca_bundle.is_none() {
        // No caBundle: the public web's roots, as upstream falls back to the system's.
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(ca) = ca_bundle {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .map_err(|e| CallError::Config(format!("caBundle is not base64: {e}")))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| CallError::Config(format!("caBundle: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| CallError::Config(format!("caBundle: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CallError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn post(
    ctx: &Ctx,
    ep: &Endpoint,
    tls: rustls::ClientConfig,
    body: Vec<u8>,
) -> Result<Value, CallError> {
    let transport = |msg: String| CallError::Transport {
        url: ep.url.clone(),
        msg,
    };
    let tcp = crate::egress::connect(ctx, ctx.node_proxy.as_ref(), &ep.target)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let name = ServerName::try_from(ep.server_name.clone())
        .map_err(|e| CallError::Config(format!("server name {:?}: {e}", ep.server_name)))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .map_err(|e| transport(format!("tls: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::builder()
        .method(Method::POST)
        .uri(&ep.path)
        .header("host", &ep.server_name)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| CallError::Config(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| transport(e.to_string()))?;
    let status = resp.status();
    let bytes = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| transport(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(transport(format!(
            "the server responded with status {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| CallError::InvalidResponse(e.to_string()))
}

/// One webhook's answer.
#[derive(Debug)]
pub struct Answer {
    pub allowed: bool,
    pub status: Value,
    pub patch: Option<Value>,
    pub warnings: Vec<String>,
}

/// Check and decode an AdmissionReview response for the request `uid`.
pub fn parse_answer(resp: &Value, uid: &str) -> Result<Answer, CallError> {
    let bad = |m: String| CallError::InvalidResponse(m);
    if resp["apiVersion"] != "admission.k8s.io/v1" || resp["kind"] != "AdmissionReview" {
        return Err(bad(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}, Kind={}",
            resp["apiVersion"].as_str().unwrap_or(""),
            resp["kind"].as_str().unwrap_or("")
        )));
    }
    let r = &resp["response"];
    if !r.is_object() {
        return Err(bad("webhook response was absent".into()));
    }
    let got = r["uid"].as_str().unwrap_or("");
    if got != uid {
        return Err(bad(format!("expected response.uid={uid:?}, got {got:?}")));
    }
    let allowed = r["allowed"].as_bool().unwrap_or(false);
    let patch = match r["patch"].as_str().filter(|s| !s.is_empty()) {
        None => None,
        Some(p) => {
            match r["patchType"].as_str() {
                Some("JSONPatch") => {}
                other => {
                    return Err(bad(format!(
                        "webhook returned response.patch but not response.patchType (got {other:?})"
                    )))
                }
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| bad(format!("response.patch is not base64: {e}")))?;
            Some(
                serde_json::from_slice(&raw)
                    .map_err(|e| bad(format!("response.patch is not JSON: {e}")))?,
            )
        }
    };
    let warnings = r["warnings"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .filter_map(|w| w.as_str())
                .map(|w| w.replace(['\n', '\r'], " "))
                .collect()
        })
        .unwrap_or_default();
    Ok(Answer {
        allowed,
        status: r["status"].clone(),
        patch,
        warnings,
    })
}

/// POST a review (admission or conversion) to the webhook of `client_config` (`url` or
/// `service`, with its `caBundle`) and return its JSON answer, within `timeout`.
pub async fn post_review(
    ctx: &Ctx,
    client_config: &Value,
    review: &Value,
    timeout: Duration,
) -> Result<Value, CallError> {
    let ep = resolve(ctx, client_config).await?;
    let tls = tls_config(client_config)?;
    let body = serde_json::to_vec(review).map_err(|e| CallError::Config(e.to_string()))?;
    tokio::time::timeout(timeout, post(ctx, &ep, tls, body))
        .await
        .map_err(|_| CallError::Timeout {
            url: ep.url.clone(),
        })?
}

/// Call one webhook with the review of `a` / `obj`, within its timeout.
async fn call(
    ctx: &Ctx,
    w: &Value,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<Answer, CallError> {
    let cc = &w["clientConfig"];
    let secs = w["timeoutSeconds"].as_u64().unwrap_or(10).clamp(1, 30);
    let mut ep = resolve(ctx, cc).await?;
    // The webhook is told its deadline, as upstream's client does.
    ep.path = format!("{}?timeout={secs}s", ep.path);
    ep.url = format!("{}?timeout={secs}s", ep.url);
    let tls = tls_config(cc)?;
    let uid = uuid::Uuid::new_v4().to_string();
    let body =
        serde_json::to_vec(&review(a, &uid, obj)).map_err(|e| CallError::Config(e.to_string()))?;
    let resp = tokio::time::timeout(Duration::from_secs(secs), post(ctx, &ep, tls, body))
        .await
        .map_err(|_| CallError::Timeout {
            url: ep.url.clone(),
        })??;
    parse_answer(&resp, &uid)
}

const REASONS: &[(&str, u16)] = &[
    ("BadRequest", 400),
    ("Unauthorized", 401),
    ("Forbidden", 403),
    ("NotFound", 404),
    ("MethodNotAllowed", 405),
    ("NotAcceptable", 406),
    ("AlreadyExists", 409),
    ("Conflict", 409),
    ("Gone", 410),
    ("RequestEntityTooLarge", 413),
    ("UnsupportedMediaType", 415),
    ("Invalid", 422),
    ("TooManyRequests", 429),
    ("InternalError", 500),
    ("ServiceUnavailable", 503),
    ("Timeout", 504),
];

/// A denial as upstream reports it: the webhook's status code (at least 400), its reason, and
/// `admission webhook "<name>" denied the request: <message>`.
pub fn denied(name: &str, status: &Value) -> ApiError {
    let denied_by = format!("admission webhook \"{name}\" denied the request");
    let code = status["code"]
        .as_u64()
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400) as u16;
    let msg = status["message"].as_str().unwrap_or("");
    let reason_in = status["reason"].as_str().unwrap_or("");
    let message = if !msg.is_empty() {
        format!("{denied_by}: {msg}")
    } else if !reason_in.is_empty() {
        format!("{denied_by}: {reason_in}")
    } else {
        format!("{denied_by} without explanation")
    };
    let reason = REASONS
        .iter()
        .find(|(r, _)| *r == reason_in)
        .map(|(r, _)| *r)
        .unwrap_or("");
    let mut e = ApiError::new(code, reason, message);
    if status["details"].is_object() {
        e = e.with_details(status["details"].clone());
    }
    e
}

/// A failed call under `failurePolicy: Fail`.
pub fn call_failed(name: &str, err: &CallError) -> ApiError {
    let cause = format!("failed calling webhook \"{name}\": {err}");
    ApiError::internal(format!("Internal error occurred: {cause}"))
        .with_details(json!({"causes": [{"message": cause}]}))
}

fn fails_closed(w: &Value) -> bool {
    w["failurePolicy"].as_str() != Some("Ignore")
}

/// Run the matching mutating webhooks on `obj` (`None` for DELETE and CONNECT), in order,
/// applying their patches. Returns the webhooks' warnings.
pub async fn mutate(
    ctx: &Ctx,
    a: &Attributes<'_>,
    mut obj: Option<&mut Value>,
) -> ApiResult<Vec<String>> {
    if !a.admissible() {
        return Ok(Vec::new());
    }
    let cached = webhooks(ctx, &MUTATING_WEBHOOKS).await?;
    let hooks = &cached.hooks;
    let mut warnings = Vec::new();
    // (webhook index, the object as it was sent) of the IfNeeded webhooks called.
    let mut reinvoke: Vec<(usize, Option<Value>)> = Vec::new();
    for (i, w) in hooks.iter().enumerate() {
        if !webhook_matches(ctx, w, &cached.programs, a, obj.as_deref()).await? {
            continue;
        }
        if w["reinvocationPolicy"] == "IfNeeded" {
            reinvoke.push((i, obj.as_deref().cloned()));
        }
        call_mutating(ctx, w, a, &mut obj, &mut warnings).await?;
    }
    let now = obj.as_deref().cloned();
    for (i, sent) in reinvoke {
        if sent != now {
            call_mutating(ctx, &hooks[i], a, &mut obj, &mut warnings).await?;
        }
    }
    Ok(warnings)
}

async fn call_mutating(
    ctx: &Ctx,
    w: &Value,
    a: &Attributes<'_>,
    obj: &mut Option<&mut Value>,
    warnings: &mut Vec<String>,
) -> ApiResult<()> {
    let name = w["name"].as_str().unwrap_or("");
    let answer = match call(ctx, w, a, obj.as_deref()).await {
        Ok(ans) => ans,
        Err(e) if fails_closed(w) => return Err(call_failed(name, &e)),
        Err(e) => {
            tracing::warn!(webhook = name, error = %e, "failed calling webhook, failing open");
            return Ok(());
        }
    };
    warnings.extend(answer.warnings);
    if !answer.allowed {
        return Err(denied(name, &answer.status));
    }
    if let (Some(patch), Some(o)) = (answer.patch, obj.as_deref_mut()) {
        let patched = daas_apimachinery::patch::json_patch(o, &patch).map_err(|e| {
            ApiError::internal(format!(
                "Internal error occurred: failed to apply the patch of webhook \"{name}\": {e}"
            ))
        })?;
        *o = patched;
    }
    Ok(())
}

/// Run the matching validating webhooks concurrently on `obj`. Returns their warnings, or the
/// first denial or failure in webhook order.
pub async fn validate(
    ctx: &Ctx,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> ApiResult<Vec<String>> {
    if !a.admissible() {
        return Ok(Vec::new());
    }
    let mut matching = Vec::new();
    let cached = webhooks(ctx, &VALIDATING_WEBHOOKS).await?;
    for w in &cached.hooks {
        if webhook_matches(ctx, w, &cached.programs, a, obj).await? {
            matching.push(w);
        }
    }
    let calls = matching.iter().map(|w| call(ctx, w, a, obj));
    let answers = futures::future::join_all(calls).await;
    let mut warnings = Vec::new();
    for (w, ans) in matching.iter().zip(answers) {
        let name = w["name"].as_str().unwrap_or("");
        match ans {
            Ok(ans) => {
                warnings.extend(ans.warnings);
                if !ans.allowed {
                    return Err(denied(name, &ans.status));
                }
            }
            Err(e) if fails_closed(w) => return Err(call_failed(name, &e)),
            Err(e) => {
                tracing::warn!(webhook = name, error = %e, "failed calling webhook, failing open")
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(
        def: &'static ResourceDef,
        op: Operation,
        sub: Option<&'static str>,
    ) -> Attributes<'static> {
        Attributes {
            def,
            subresource: sub,
            operation: op,
            name: "x",
            namespace: Some("ns"),
            kind: None,
            user: None,
            old: None,
            dry_run: false,
        }
    }

    #[test]
    fn rules_match_operations_resources_and_scope() {
        let pods = &resources::PODS;
        let r = json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"});
        assert!(rule_matches(&r, &attrs(pods, Operation::Create, None)));
        assert!(!rule_matches(&r, &attrs(pods, Operation::Update, None)));
        assert!(!rule_matches(
            &r,
            &attrs(pods, Operation::Create, Some("status"))
        ));
        assert!(!rule_matches(
            &r,
            &attrs(&resources::CONFIG_MAPS, Operation::Create, None)
        ));
        let status = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["pods/status"]});
        assert!(rule_matches(
            &status,
            &attrs(pods, Operation::Update, Some("status"))
        ));
        assert!(!rule_matches(
            &status,
            &attrs(pods, Operation::Update, None)
        ));
        let all = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        assert!(rule_matches(
            &all,
            &attrs(&resources::DEPLOYMENTS, Operation::Delete, None)
        ));
        assert!(!rule_matches(
            &all,
            &attrs(pods, Operation::Update, Some("status"))
        ));
        let subs = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]});
        assert!(rule_matches(
            &subs,
            &attrs(pods, Operation::Update, Some("status"))
        ));
        let cluster = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"});
        assert!(!rule_matches(
            &cluster,
            &attrs(pods, Operation::Create, None)
        ));
        assert!(rule_matches(
            &cluster,
            &attrs(&resources::NAMESPACES, Operation::Create, None)
        ));
    }

    #[test]
    fn review_carries_the_request() {
        let old = json!({"metadata": {"name": "x"}, "data": {"a": "1"}});
        let user = User {
            name: "alice".into(),
            groups: vec!["g".into()],
            ..Default::default()
        };
        let mut a = attrs(&resources::CONFIG_MAPS, Operation::Update, None);
        a.old = Some(&old);
        a.user = Some(&user);
        a.dry_run = true;
        let new = json!({"metadata": {"name": "x"}, "data": {"a": "2"}});
        let r = review(&a, "u1", Some(&new));
        assert_eq!(r["apiVersion"], "admission.k8s.io/v1");
        let q = &r["request"];
        assert_eq!(q["uid"], "u1");
        assert_eq!(q["operation"], "UPDATE");
        assert_eq!(
            q["kind"],
            json!({"group": "", "version": "v1", "kind": "ConfigMap"})
        );
        assert_eq!(q["resource"]["resource"], "configmaps");
        assert_eq!(q["namespace"], "ns");
        assert_eq!(q["userInfo"]["username"], "alice");
        assert_eq!(q["object"], new);
        assert_eq!(q["oldObject"], old);
        assert_eq!(q["dryRun"], true);
        assert_eq!(q["options"]["kind"], "UpdateOptions");
        assert!(q.get("subResource").is_none());
    }

    #[test]
    fn answers_are_checked_and_decoded() {
        let patch = base64::engine::general_purpose::STANDARD
            .encode(br#"[{"op":"add","path":"/data/b","value":"2"}]"#);
        let resp = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": true, "patchType": "JSONPatch", "patch": patch, "warnings": ["w1"]}});
        let a = parse_answer(&resp, "u").unwrap();
        assert!(a.allowed);
        assert_eq!(a.warnings, vec!["w1"]);
        let patched =
            daas_apimachinery::patch::json_patch(&json!({"data": {}}), &a.patch.unwrap()).unwrap();
        assert_eq!(patched, json!({"data": {"b": "2"}}));
        let e = parse_answer(&resp, "other").unwrap_err();
        assert_eq!(
            e.to_string(),
            "received invalid webhook response: expected response.uid=\"other\", got \"u\""
        );
        let e = denied(
            "deny.example.com",
            &json!({"code": 403, "reason": "Forbidden", "message": "no"}),
        );
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert_eq!(
            e.message,
            "admission webhook \"deny.example.com\" denied the request: no"
        );
        let e = denied("d.e.f", &Value::Null);
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "admission webhook \"d.e.f\" denied the request without explanation"
        );
    }
}
