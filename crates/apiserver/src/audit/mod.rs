//! Kubernetes audit logging (audit.k8s.io/v1 `Event`s as JSON lines), as kube-apiserver's
//! `WithAudit` / `WithFailedAuthenticationAudit` filters do it:
//!
//! * [`middleware`] wraps the API router: it gives every request an audit ID (also the
//!   `Audit-Id` response header), lets the request path note what it learns (the authenticated
//!   and impersonated user, the authorization decision, the error, the body) in a task-local
//!   [`Record`], and once the response is known evaluates the [`policy::Policy`] and hands the
//!   event to an [`AuditSink`] (stage `ResponseComplete`, or `Panic` when the handler panicked).
//!   The sink waits for room (upstream's blocking mode): a request is never dropped silently.
//! * [`writer::AuditLog`] is the file sink: a writer thread, a hash chain over every line, and
//!   enclave-signed checkpoints ([`chain`]), with size-based rotation.
//! * [`chain::verify_files`] checks a log (`daas audit verify`).

pub mod chain;
pub mod policy;
pub mod writer;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::server::User;

pub use policy::{Policy, PolicyError};

/// The response header carrying the audit ID (upstream's `Audit-Id`).
pub const AUDIT_ID_HEADER: &str = "audit-id";
/// Annotation with the authorization decision (`allow` / `forbid`).
pub const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
/// Annotation with the authorizer's reason.
pub const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";
/// Annotation naming the credential kinds a failed authentication attempted (never the credential).
pub const AUTHN_ANNOTATION: &str = "audit.daas.io/authentication";
/// The user an authentication failure is logged (and matched against the policy) as.
pub const ANONYMOUS: &str = "system:anonymous";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    None,
    Metadata,
    Request,
    /// Accepted and logged as `Request`: response bodies are not recorded.
    RequestResponse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserInfo {
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        UserInfo {
            username: u.name.clone(),
            uid: u.uid.clone(),
            groups: u.groups.clone(),
            extra: u.extra.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, rename = "apiGroup", skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(
        default,
        rename = "apiVersion",
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// audit.k8s.io/v1 `Event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: String,
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub level: Level,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: Stage,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub verb: String,
    pub user: UserInfo,
    #[serde(
        rename = "impersonatedUser",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub impersonated_user: Option<UserInfo>,
    #[serde(rename = "sourceIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    #[serde(
        rename = "userAgent",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub user_agent: String,
    #[serde(rename = "objectRef", default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectReference>,
    #[serde(
        rename = "responseStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub response_status: Option<Value>,
    #[serde(
        rename = "requestObject",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_object: Option<Value>,
    #[serde(rename = "requestReceivedTimestamp")]
    pub request_received_timestamp: String,
    #[serde(rename = "stageTimestamp")]
    pub stage_timestamp: String,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// RFC 3339 with microseconds, as upstream's `metav1.MicroTime`.
pub fn micro_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Where events go. [`writer::AuditLog`] writes the chained file; [`MemorySink`] keeps them
/// (tests, embedding).
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Take one event; waits while the sink's buffer is full (blocking mode).
    async fn write(&self, event: Event);
}

/// Events kept in memory.
#[derive(Default)]
pub struct MemorySink(pub Mutex<Vec<Event>>);

#[async_trait]
impl AuditSink for MemorySink {
    async fn write(&self, event: Event) {
        if let Ok(mut g) = self.0.lock() {
            g.push(event);
        }
    }
}

impl MemorySink {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// The policy and the sink of one API server.
pub struct Auditor {
    policy: Policy,
    sink: Arc<dyn AuditSink>,
    wants_bodies: bool,
}

impl Auditor {
    pub fn new(policy: Policy, sink: Arc<dyn AuditSink>) -> Self {
        Auditor {
            wants_bodies: policy.wants_bodies(),
            policy,
            sink,
        }
    }
}

/// What the request path noted about one request.
#[derive(Default)]
struct RecordState {
    user: Option<User>,
    impersonated: Option<User>,
    decision: Option<(bool, String)>,
    error: Option<(u16, String, String)>,
    body: Option<Vec<u8>>,
    completed: bool,
}

/// One request's audit record, reachable from the request path through a task-local.
pub struct Record {
    wants_body: bool,
    state: Mutex<RecordState>,
}

tokio::task_local! {
    static CURRENT: Arc<Record>;
}

/// The record of the request this task serves, to carry into a task spawned for it.
pub fn current_record() -> Option<Arc<Record>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Run `fut` with `record` as its request's record (see [`current_record`]).
pub async fn with_current<F: std::future::Future>(
    record: Option<Arc<Record>>,
    fut: F,
) -> F::Output {
    match record {
        Some(r) => CURRENT.scope(r, fut).await,
        None => fut.await,
    }
}

fn with_record(f: impl FnOnce(&mut RecordState)) {
    let _ = CURRENT.try_with(|r| {
        if let Ok(mut g) = r.state.lock() {
            f(&mut g);
        }
    });
}

/// The authenticated user (before impersonation).
pub fn note_user(u: &User) {
    with_record(|s| s.user = Some(u.clone()));
}

/// The identity an impersonating request acts as.
pub fn note_impersonated(u: &User) {
    with_record(|s| s.impersonated = Some(u.clone()));
}

/// An authorization decision; passes the result through.
pub fn authorized<T>(r: Result<T, ApiError>) -> Result<T, ApiError> {
    with_record(|s| match &r {
        Ok(_) => {
            if s.decision.is_none() {
                s.decision = Some((true, String::new()));
            }
        }
        Err(e) if e.code == 403 => s.decision = Some((false, e.message.clone())),
        Err(_) => {}
    });
    r
}

/// A refusal that is an authorization decision when it is a 403 (impersonation).
pub fn note_refusal(e: &ApiError) {
    if e.code == 403 {
        with_record(|s| s.decision = Some((false, e.message.clone())));
    }
}

/// The error the request ends with (its Status goes into `responseStatus`).
pub fn note_error(e: &ApiError) {
    with_record(|s| s.error = Some((e.code, e.reason.to_string(), e.message.clone())));
}

/// The request body, kept only when the policy logs bodies.
pub fn note_body(body: &[u8]) {
    let _ = CURRENT.try_with(|r| {
        if r.wants_body {
            if let Ok(mut g) = r.state.lock() {
                g.body = Some(body.to_vec());
            }
        }
    });
}

/// An authorization decision made without the authorizer (e.g. `system:masters`).
pub fn note_decision(allow: bool, reason: &str) {
    with_record(|s| s.decision = Some((allow, reason.to_string())));
}

/// The handler returned (a missing mark on a 500 means it panicked).
pub fn note_completed() {
    with_record(|s| s.completed = true);
}

/// The audit layer of the API router (see the module docs).
pub async fn middleware(State(auditor): State<Arc<Auditor>>, req: Request, next: Next) -> Response {
    let received = chrono::Utc::now();
    let audit_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let user_agent = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut source_ips: Vec<String> = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    if let Some(axum::extract::ConnectInfo(peer)) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        let ip = peer.ip().to_string();
        if !source_ips.contains(&ip) {
            source_ips.push(ip);
        }
    }
    let attempted = attempted_credentials(&req);
    let content_type = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let record = Arc::new(Record {
        wants_body: auditor.wants_bodies,
        state: Mutex::new(RecordState::default()),
    });
    let mut resp = CURRENT.scope(record.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&audit_id) {
        resp.headers_mut().insert(AUDIT_ID_HEADER, v);
    }
    let state = match record.state.lock() {
        Ok(mut g) => std::mem::take(&mut *g),
        Err(_) => RecordState::default(),
    };
    let code = resp.status().as_u16();
    let meta = Meta {
        audit_id,
        received,
        method,
        uri,
        user_agent,
        source_ips,
        attempted,
        code,
        content_type,
    };
    if let Some(ev) = build_event(&auditor.policy, meta, state) {
        auditor.sink.write(ev).await;
    }
    resp
}

/// The credential kinds a request presented (names only).
fn attempted_credentials(req: &Request) -> String {
    let mut kinds = Vec::new();
    if req
        .extensions()
        .get::<crate::x509::PeerCertificates>()
        .is_some()
    {
        kinds.push("x509");
    }
    if req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .is_some()
    {
        kinds.push("bearer");
    }
    if kinds.is_empty() {
        "failed, no credentials".into()
    } else {
        format!("failed, attempted: {}", kinds.join(","))
    }
}

struct Meta {
    audit_id: String,
    received: chrono::DateTime<chrono::Utc>,
    method: Method,
    uri: String,
    user_agent: String,
    source_ips: Vec<String>,
    attempted: String,
    code: u16,
    content_type: String,
}

/// Resources whose request bodies are credentials: never logged above Metadata, whatever the
/// policy says.
fn credential_body(o: &ObjectReference) -> bool {
    (o.api_group.is_empty() && o.resource == "secrets")
        || (o.api_group == "authentication.k8s.io" && o.resource == "tokenreviews")
}

fn build_event(policy: &Policy, m: Meta, s: RecordState) -> Option<Event> {
    let path = m.uri.split('?').next().unwrap_or("").to_string();
    let query = m.uri.split_once('?').map(|(_, q)| q);
    let auth_failed = s.user.is_none() && m.code == 401;
    let anonymous = User::new(ANONYMOUS, vec![UNAUTHENTICATED.to_string()]);
    let user = s.user.clone().unwrap_or(anonymous);
    let (verb, object_ref) = classify(&m.method, &path, query);
    let resource = object_ref.as_ref().map(|o| policy::ResourceAttrs {
        group: &o.api_group,
        resource: &o.resource,
        subresource: &o.subresource,
        namespace: &o.namespace,
        name: &o.name,
    });
    // Authentication failures are matched as the anonymous user; public paths (no
    // credentials needed) as no user.
    let decision = policy.evaluate(&policy::Attributes {
        user: if auth_failed {
            Some(&user)
        } else {
            s.user.as_ref()
        },
        verb: &verb,
        resource,
        path: &path,
    });
    let mut level = decision.level;
    if object_ref.as_ref().is_some_and(credential_body) {
        level = level.min(Level::Metadata);
    }
    let panicked = !s.completed && m.code == 500 && s.error.is_none() && !auth_failed;
    let stage = if panicked {
        Stage::Panic
    } else {
        Stage::ResponseComplete
    };
    if level == Level::None || decision.omit_stages.contains(&stage) {
        return None;
    }
    let mut response_status = json!({"metadata": {}, "code": m.code});
    if m.code >= 400 {
        response_status["status"] = json!("Failure");
        if let Some((_, reason, message)) = &s.error {
            response_status["reason"] = json!(reason);
            response_status["message"] = json!(message);
        } else if panicked {
            response_status["message"] = json!("APIServer panic'd");
        }
    } else {
        response_status["status"] = json!("Success");
    }
    let mut annotations = std::collections::BTreeMap::new();
    if let Some((allow, reason)) = &s.decision {
        annotations.insert(
            DECISION_ANNOTATION.to_string(),
            if *allow { "allow" } else { "forbid" }.to_string(),
        );
        annotations.insert(REASON_ANNOTATION.to_string(), reason.clone());
    }
    if auth_failed {
        annotations.insert(AUTHN_ANNOTATION.to_string(), m.attempted.clone());
    }
    let request_object = if level >= Level::Request {
        s.body
            .as_deref()
            .and_then(|b| decode_object(b, &m.content_type))
    } else {
        None
    };
    Some(Event {
        kind: "Event".into(),
        api_version: "audit.k8s.io/v1".into(),
        level,
        audit_id: m.audit_id,
        stage,
        request_uri: m.uri,
        verb,
        user: UserInfo::from(&user),
        impersonated_user: s.impersonated.as_ref().map(UserInfo::from),
        source_ips: m.source_ips,
        user_agent: m.user_agent,
        object_ref,
        response_status: Some(response_status),
        request_object,
        request_received_timestamp: micro_time(m.received),
        stage_timestamp: micro_time(chrono::Utc::now()),
        annotations,
    })
}

/// A logged body as JSON: protobuf by its Content-Type, else JSON, else YAML.
fn decode_object(body: &[u8], content_type: &str) -> Option<Value> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return daas_apimachinery::protobuf::decode_object(body).ok();
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .or_else(|| serde_yaml::from_slice::<Value>(body).ok())
        .filter(|v| v.is_object() || v.is_array())
}

/// The Kubernetes verb and object of a request (upstream's RequestInfo).
pub fn classify(
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> (String, Option<ObjectReference>) {
    use crate::request::{parse_path, Target};
    if path == "/apis/authentication.k8s.io/v1/tokenreviews" {
        let verb = if method == Method::POST {
            "create".to_string()
        } else {
            crate::rbac::non_resource_verb(method)
        };
        return (
            verb,
            Some(ObjectReference {
                resource: "tokenreviews".into(),
                api_group: "authentication.k8s.io".into(),
                api_version: "v1".into(),
                ..Default::default()
            }),
        );
    }
    match parse_path(path) {
        Ok(Target::Resource(t)) => {
            let q = crate::request::query_map(query);
            let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
            let verb = crate::authz::verb(method, &t, watch).to_string();
            let mut o = ObjectReference {
                resource: t.def.plural.to_string(),
                namespace: t.namespace.clone().unwrap_or_default(),
                name: t.name.clone().unwrap_or_default(),
                api_group: t.def.group.to_string(),
                api_version: t.def.version.to_string(),
                subresource: t.sub.clone().unwrap_or_default(),
            };
            // A namespace object's own name is its namespace (upstream's RequestInfo).
            if t.def.plural == "namespaces" && t.def.group.is_empty() {
                o.namespace = o.name.clone();
            }
            (verb, Some(o))
        }
        _ => (crate::rbac::non_resource_verb(method), None),
    }
}

/// An event as a JSON object (what the chain hashes).
pub fn event_value(e: &Event) -> Value {
    serde_json::to_value(e).unwrap_or_else(|_| Value::Object(Map::new()))
}

#[cfg(test)]
mod tests;
