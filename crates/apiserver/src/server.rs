//! HTTP routing, authentication, TLS serving and cluster bootstrap objects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Router;
use daas_store::{Store, StoreError};
use serde_json::json;

pub use daas_protocol::serve::{
    serve_tls, serve_tls_with, ClientAddr, ConnectionClass, ConnectionPriority, ServeOptions,
    DEFAULT_HTTP2_MAX_STREAMS,
};

use crate::admission::Attrs;
use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, json_response, Ctx};
use crate::request::{self, Target};
use crate::resources;

/// An authenticated caller (upstream's `user.Info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub name: String,
    /// The identity's unique id, when its authenticator knows one (service accounts); else empty.
    pub uid: String,
    pub groups: Vec<String>,
    /// Additional attributes (`authentication.kubernetes.io/pod-name`, impersonated extras, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// A user with a name and groups, no uid or extras.
    pub fn new(name: impl Into<String>, groups: Vec<String>) -> Self {
        User {
            name: name.into(),
            groups,
            ..Default::default()
        }
    }

    /// `userInfo` as authentication.k8s.io/v1 `UserInfo` (AdmissionReview, SelfSubjectReview,
    /// TokenReview): `uid` and `extra` only when set.
    pub fn user_info(&self) -> serde_json::Value {
        let mut info = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            info["extra"] = json!(self.extra);
        }
        info
    }
}

/// Turns a bearer token into a user (seal tokens plug in here).
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, bearer: &str) -> Option<User>;
}

/// Fixed tokens, e.g. the cluster admin token written by `daas up`.
pub struct StaticTokens {
    tokens: Vec<(String, User)>,
}

impl StaticTokens {
    pub fn new(tokens: Vec<(String, User)>) -> Self {
        StaticTokens { tokens }
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl Authenticator for StaticTokens {
    async fn authenticate(&self, bearer: &str) -> Option<User> {
        self.tokens
            .iter()
            .find(|(t, _)| ct_eq(t.as_bytes(), bearer.as_bytes()))
            .map(|(_, u)| u.clone())
    }
}

/// Reaches the agent ("kubelet") on a node, for `pods/log` and `pods/exec`.
#[async_trait]
pub trait NodeProxy: Send + Sync + 'static {
    /// Stream the log of `container` of pod `namespace/pod` from `node` (the Node object);
    /// `query` carries kubectl's options (follow, tailLines, timestamps, previous, sinceSeconds).
    async fn container_logs(
        &self,
        node: &serde_json::Value,
        namespace: &str,
        pod: &str,
        container: &str,
        query: &str,
    ) -> ApiResult<Response>;

    /// Open an exec or attach stream to `container` of pod `namespace/pod` on `node`; `query`
    /// carries the validated options ([`crate::streaming::StreamOptions::node_query`]).
    async fn container_stream(
        &self,
        _node: &serde_json::Value,
        kind: crate::streaming::StreamKind,
        _namespace: &str,
        _pod: &str,
        _query: &str,
    ) -> ApiResult<crate::streaming::NodeStream> {
        Err(ApiError::new(
            503,
            "ServiceUnavailable",
            format!("this node proxy cannot open pods/{} streams", kind.path()),
        ))
    }
    /// The body of a signed `GET path` to the agent of `node` (e.g. `/stats/summary`); a
    /// non-success answer is an error.
    async fn node_get(&self, node: &serde_json::Value, path: &str) -> ApiResult<Vec<u8>>;

    /// Open a TCP connection to `port` of pod `namespace/pod` on `node`: bytes both ways as
    /// messages; an empty message to the node half-closes the connection (the client's end of
    /// input), and the stream from the node ends when the pod's side closes.
    async fn port_forward(
        &self,
        _node: &serde_json::Value,
        _namespace: &str,
        _pod: &str,
        _port: u16,
    ) -> ApiResult<crate::streaming::NodeStream> {
        Err(ApiError::new(
            503,
            "ServiceUnavailable",
            "this node proxy cannot open pods/portforward streams",
        ))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub ctx: Arc<Ctx>,
    pub auth: Arc<dyn Authenticator>,
    pub max_body: usize,
    pub node_proxy: Option<Arc<dyn NodeProxy>>,
    /// Node summaries behind `metrics.k8s.io` (one resolution window).
    pub metrics_cache: Arc<crate::registry::metrics::Cache>,
    pub service_accounts: Option<Arc<crate::satoken::ServiceAccountTokens>>,
    /// The RBAC policy, cached until an RBAC object changes.
    pub rbac: Arc<crate::rbac::Authorizer>,
    /// Authenticates TLS client certificates; without it they are ignored.
    pub client_certs: Option<Arc<crate::x509::ClientCertAuthenticator>>,
    /// API priority and fairness; None: no limits.
    pub flow_control: Option<Arc<crate::flowcontrol::FlowControl>>,
    /// Watch counts and failed authentications (see [`crate::limits`]).
    pub limits: Arc<crate::limits::Limits>,
    /// Where requests of the low priority levels run (see [`ServerOptions::low_priority`]).
    pub low_priority: Option<tokio::runtime::Handle>,
}

pub struct ServerOptions {
    pub max_body: usize,
    pub bookmark_interval: Duration,
    pub node_proxy: Option<Arc<dyn NodeProxy>>,
    /// The service-account token issuer: TokenRequest, TokenReview and OIDC discovery need it.
    pub service_accounts: Option<Arc<crate::satoken::ServiceAccountTokens>>,
    /// Client certificates signed by this CA authenticate (`TlsMaterial::client_cert_authenticator`).
    pub client_certs: Option<Arc<crate::x509::ClientCertAuthenticator>>,
    /// Service cluster-IP and node-port ranges the allocators use.
    pub service_ranges: crate::registry::ipalloc::ServiceRanges,
    /// How long metrics.k8s.io reuses a node's summary (metrics-server's `--metric-resolution`).
    pub metrics_resolution: Duration,
    /// The bound of the encoded-object cache GETs are served from (0: none; see
    /// [`crate::objectcache`]).
    pub object_cache_bytes: usize,
    /// tolerationSeconds of the not-ready/unreachable tolerations new pods get
    /// (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`).
    pub default_tolerations: crate::defaulttolerations::DefaultTolerations,
    /// API priority and fairness (see [`crate::flowcontrol`]); None: no concurrency limits.
    pub flow_control: Option<Arc<crate::flowcontrol::FlowControl>>,
    /// Audit logging (see [`crate::audit`]); None: no audit events.
    pub audit: Option<Arc<crate::audit::Auditor>>,
    /// Watch counts and failed authentications (see [`crate::limits`]).
    pub limits: Arc<crate::limits::Limits>,
    /// A runtime whose threads run at a lower CPU priority: the handlers of requests in the
    /// priority levels of users and workloads (`global-default`, `workload-low`, `catch-all`)
    /// run there, so a flood of them cannot take the CPU the admin's, the nodes' and the control
    /// plane's requests need (priority and fairness bounds their concurrency, this their CPU
    /// share). None: every request runs on the serving runtime.
    pub low_priority: Option<tokio::runtime::Handle>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body: handlers::DEFAULT_MAX_BODY,
            bookmark_interval: Duration::from_secs(30),
            node_proxy: None,
            service_accounts: None,
            client_certs: None,
            service_ranges: Default::default(),
            metrics_resolution: crate::registry::metrics::RESOLUTION,
            object_cache_bytes: crate::objectcache::DEFAULT_MAX_BYTES,
            default_tolerations: Default::default(),
            flow_control: None,
            audit: None,
            limits: Default::default(),
            low_priority: None,
        }
    }
}

pub fn router(store: Arc<dyn Store>, auth: Arc<dyn Authenticator>, opts: ServerOptions) -> Router {
    let state = AppState {
        rbac: Arc::new(crate::rbac::Authorizer::new(store.clone())),
        ctx: Arc::new(Ctx {
            bookmark_interval: opts.bookmark_interval,
            admission: Default::default(),
            service_ranges: opts.service_ranges,
            default_tolerations: opts.default_tolerations,
            node_proxy: opts.node_proxy.clone(),
            // (A runtime runs its watch; a router built outside one has no cache.)
            objects: (opts.object_cache_bytes > 0 && tokio::runtime::Handle::try_current().is_ok())
                .then(|| {
                    crate::objectcache::ObjectCache::spawn(store.clone(), opts.object_cache_bytes)
                }),
            store,
        }),
        auth,
        max_body: opts.max_body,
        node_proxy: opts.node_proxy,
        metrics_cache: Arc::new(crate::registry::metrics::Cache::new(
            opts.metrics_resolution,
        )),
        service_accounts: opts.service_accounts,
        client_certs: opts.client_certs,
        flow_control: opts.flow_control,
        limits: opts.limits,
        low_priority: opts.low_priority,
    };
    let router = Router::new().fallback(dispatch).with_state(state).layer(
        tower_http::catch_panic::CatchPanicLayer::custom(panic_status),
    );
    match opts.audit {
        Some(a) => router.layer(axum::middleware::from_fn_with_state(
            a,
            crate::audit::middleware,
        )),
        None => router,
    }
}

/// A handler bug must not take the connection down silently: answer 500 with a Status.
fn panic_status(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    axum::response::IntoResponse::into_response(ApiError::internal(
        "internal error while handling the request",
    ))
}

async fn dispatch(State(st): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let neg = crate::negotiation::Negotiated::new(&method, &path, req.uri().query(), req.headers());
    let resp = match handle(&st, req, &neg).await {
        Ok(r) => r,
        Err(e) => {
            crate::audit::note_error(&e);
            e.into_response_logged()
        }
    };
    crate::audit::note_completed();
    let resp = crate::negotiation::finish(&neg, resp).await;
    let resp = crate::registry::customresource::with_deprecation_warning(&path, resp);
    // A write of an RBAC object is seen by the next request at once (the watch follows later).
    if method != Method::GET && path.contains("/rbac.authorization.k8s.io/") {
        st.rbac.invalidate().await;
    }
    // So is a write of a webhook configuration or an admission policy.
    if method != Method::GET && path.contains("/admissionregistration.k8s.io/") {
        st.ctx.admission.invalidate().await;
    }
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    resp
}

impl ApiError {
    fn into_response_logged(self) -> Response {
        if self.code >= 500 {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        axum::response::IntoResponse::into_response(self)
    }
}

/// Read a request body of at most `limit` bytes (upstream's `limitedReadBody`; a body declared
/// longer than the limit plus [`crate::limits::DRAIN_BYTES`] was refused in [`handle`]). An
/// oversized body (chunked ones too) is kept only up to the limit, read on and discarded
/// for at most `DRAIN_BYTES` more (so the client reads the 413 rather than a reset connection),
/// and cut there.
async fn read_body(body: Body, limit: usize) -> ApiResult<Vec<u8>> {
    let buf = crate::limits::read_limited(body, limit).await?;
    crate::audit::note_body(&buf);
    Ok(buf)
}

fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/version" | "/version/" | "/healthz" | "/livez" | "/readyz"
    ) || matches!(path, crate::satoken::OIDC_PATH | crate::satoken::JWKS_PATH)
}

async fn handle(
    st: &AppState,
    req: Request,
    neg: &crate::negotiation::Negotiated,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let client_ip = parts.extensions.get::<ClientAddr>().map(|a| a.0.ip());
    let user = if !is_public(&path) {
        // An address that failed to authenticate too often is refused before its credentials
        // are checked again.
        if let Some(ip) = client_ip {
            st.limits.auth_failures.check(ip, Instant::now())?;
        }
        let user = authenticate(st, &parts).await;
        if user.is_none() {
            if let Some(ip) = client_ip {
                st.limits.auth_failures.failed(ip, Instant::now());
            }
        }
        match user {
            // Every authenticated identity is in system:authenticated (upstream's group adder).
            Some(mut u) => {
                crate::audit::note_user(&u);
                if !u
                    .groups
                    .iter()
                    .any(|g| g == crate::rbac::GROUP_AUTHENTICATED)
                {
                    u.groups.push(crate::rbac::GROUP_AUTHENTICATED.to_string());
                }
                Some(u)
            }
            None => return Err(ApiError::unauthorized()),
        }
    } else {
        None
    };
    let user = match user {
        Some(u) => {
            let acting = impersonate(st, &parts.headers, u.clone())
                .await
                .inspect_err(crate::audit::note_refusal)?;
            if acting != u {
                crate::audit::note_impersonated(&acting);
            }
            if crate::authz::is_master(&acting) {
                crate::audit::note_decision(true, "");
            }
            Some(acting)
        }
        None => None,
    };
    // Requests of the low priority levels are handled on the low-priority runtime, and so is
    // the rest of their connection (its TLS, HTTP and response bodies) once it carried only such
    // requests.
    let low = st.low_priority.as_ref().map(|rt| {
        let is_low = crate::flowcontrol::is_low_priority(&crate::flowcontrol::RequestDigest::new(
            user.as_ref(),
            &parts.method,
            &path,
            parts.uri.query(),
        ));
        (rt, is_low)
    });
    if let (Some((_, is_low)), Some(p)) = (
        low,
        parts
            .extensions
            .get::<ConnectionPriority>()
            .filter(|_| user.is_some()),
    ) {
        p.mark(is_low);
    }
    if let Some((rt, true)) = low {
        let (st, neg) = (st.clone(), neg.clone());
        // The audit record is task-local: carry it into the spawned task.
        let record = crate::audit::current_record();
        return rt
            .spawn(async move {
                crate::audit::with_current(record, handle_rest(&st, parts, body, path, user, &neg))
                    .await
            })
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(format!("request task failed: {e}"))));
    }
    handle_rest(st, parts, body, path, user, neg).await
}

/// [`handle`] once the caller is known: priority and fairness, authorization, the handlers.
async fn handle_rest(
    st: &AppState,
    mut parts: axum::http::request::Parts,
    body: Body,
    path: String,
    user: Option<User>,
    neg: &crate::negotiation::Negotiated,
) -> ApiResult<Response> {
    // Priority and fairness: held until the response is built.
    let _seat = match &st.flow_control {
        Some(fc) => Some(
            fc.admit(&crate::flowcontrol::RequestDigest::new(
                user.as_ref(),
                &parts.method,
                &path,
                parts.uri.query(),
            ))
            .await?,
        ),
        None => None,
    };
    let q = request::query_map(parts.uri.query());
    // A body declared over the limit is refused before anything else reads it.
    let declared = crate::limits::content_length(&parts.headers);
    if declared.is_some_and(|n| n > st.max_body.saturating_add(crate::limits::DRAIN_BYTES) as u64) {
        return Err(ApiError::too_large(st.max_body));
    }
    // Non-resource requests (discovery, OpenAPI) are authorized by path.
    let resource_request = request::parse_path(&path)
        .map(|t| matches!(t, Target::Resource(_)))
        .unwrap_or(false);
    if let Some(u) = user.as_ref().filter(|u| !crate::authz::is_master(u)) {
        if !resource_request && !is_public(&path) {
            let policy = st.rbac.policy().await?;
            let verb = crate::rbac::non_resource_verb(&parts.method);
            crate::audit::authorized(crate::authz::authorize_path(&policy, u, &verb, &path))?;
        }
    }
    match path.as_str() {
        "/version" | "/version/" => {
            return Ok(json_response(StatusCode::OK, &discovery::version()))
        }
        "/healthz" | "/livez" | "/readyz" => {
            st.ctx.store.current_revision().await?;
            return Ok((StatusCode::OK, "ok").into_response_ok());
        }
        "/api" | "/api/" => {
            if let Some(r) = discovery::serve_aggregated(true, &parts.headers) {
                return Ok(r);
            }
            return Ok(json_response(StatusCode::OK, &discovery::core_versions()));
        }
        "/apis" | "/apis/" => {
            crate::registry::customresource::ensure_loaded(&st.ctx.store).await?;
            if let Some(r) = discovery::serve_aggregated(false, &parts.headers) {
                return Ok(r);
            }
            return Ok(json_response(StatusCode::OK, &discovery::group_list()));
        }
        p if p.starts_with("/openapi/") => {
            crate::registry::customresource::ensure_loaded(&st.ctx.store).await?;
            return crate::openapi::serve(p, parts.uri.query(), &parts.headers).await;
        }
        crate::satoken::OIDC_PATH | crate::satoken::JWKS_PATH => {
            return service_account_discovery(st, &parts.method, &path)
        }
        "/apis/authentication.k8s.io/v1/tokenreviews" => {
            return token_review(st, user.as_ref(), &parts, body).await
        }
        _ => {}
    }
    if !(path.starts_with("/api/") || path.starts_with("/apis/")) {
        return Err(ApiError::not_found_path());
    }
    crate::registry::customresource::ensure_loaded(&st.ctx.store).await?;
    let target = match request::parse_path(&path)? {
        Target::Group { group } => {
            return discovery::group(&group)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(ApiError::not_found_path)
        }
        Target::GroupVersion { group, version } => {
            return Ok(json_response(
                StatusCode::OK,
                &discovery::resource_list(&group, &version),
            ))
        }
        Target::Resource(t) => t,
    };
    // 406 before anything runs; the view (object, Table, metadata) follows the chosen range.
    let accept = neg.choice()?.view;
    let ctx = &st.ctx;
    let is_watch = q
        .get("watch")
        .map(|w| w == "true" || w == "1")
        .unwrap_or(false);
    let sub = target.sub.clone();
    // Usage is read-only but for the master's billing loop (405 as upstream's read-only kinds).
    if crate::registry::usage::is_usage(target.def)
        && !matches!(parts.method, Method::GET)
        && !crate::registry::usage::may_write(user.as_ref())
    {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            parts.method
        )));
    }
    if let Some(u) = &user {
        let verb = crate::authz::verb(&parts.method, &target, is_watch);
        if !crate::authz::is_master(u) {
            let policy = st.rbac.policy().await?;
            crate::audit::authorized(crate::authz::authorize(&policy, u, verb, &target))?;
        }
        crate::audit::authorized(crate::nodeauthz::authorize(ctx, u, verb, &target, &q).await)?;
    }
    if crate::registry::reviews::is_review(target.def) {
        return match (&parts.method, &target.name, &user) {
            (&Method::POST, None, Some(u)) => {
                let body = read_body(body, st.max_body).await?;
                let policy = st.rbac.policy().await?;
                crate::registry::reviews::create(ctx, &policy, u, &target, &parts.headers, &body)
                    .await
            }
            (m, _, _) => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m})"
            ))),
        };
    }
    if crate::registry::metrics::is_metrics(target.def) {
        return match (&parts.method, is_watch) {
            (&Method::GET, false) => {
                crate::registry::metrics::serve(
                    ctx,
                    st.node_proxy.as_deref(),
                    &st.metrics_cache,
                    &target,
                    &q,
                    accept,
                )
                .await
            }
            (m, _) => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m})"
            ))),
        };
    }
    let attrs = Attrs {
        user: user.as_ref(),
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
    };
    match (&parts.method, target.name.clone(), sub.as_deref()) {
        (&Method::GET, _, _) if is_watch => {
            let slot = st.limits.watches.admit(user.as_ref())?;
            let resp = crate::watch::watch(ctx.clone(), &target, &q, accept).await?;
            Ok(slot.hold_until_done(resp))
        }
        (&Method::GET, None, _) => handlers::list(ctx, &target, &q, accept).await,
        (
            &Method::GET,
            Some(n),
            None | Some("status") | Some("approval") | Some("ephemeralcontainers"),
        ) => {
            let needed = match sub.as_deref() {
                Some("approval") => Some(resources::Subresource::Approval),
                Some("ephemeralcontainers") => Some(resources::Subresource::EphemeralContainers),
                Some(_) => Some(resources::Subresource::Status),
                None => None,
            };
            if needed.is_some_and(|s| !target.def.has_sub(s)) {
                return Err(ApiError::not_found_path());
            }
            handlers::get(ctx, &target, &n, accept).await
        }
        (&Method::GET, Some(n), Some("scale"))
            if target.def.has_sub(resources::Subresource::Scale) =>
        {
            handlers::get_scale(ctx, &target, &n).await
        }
        (&Method::GET, Some(n), Some("log")) if target.def.has_sub(resources::Subresource::Log) => {
            pod_logs(st, &target, &n, &q, parts.uri.query().unwrap_or("")).await
        }
        (&Method::GET | &Method::POST, Some(n), Some(sub @ ("exec" | "attach")))
            if serves_sub(target.def, sub) =>
        {
            let kind = if sub == "exec" {
                crate::streaming::StreamKind::Exec
            } else {
                crate::streaming::StreamKind::Attach
            };
            pod_stream(st, &mut parts, &target, &n, kind).await
        }
        (&Method::GET | &Method::POST, Some(n), Some("portforward"))
            if serves_sub(target.def, "portforward") =>
        {
            pod_portforward(st, &mut parts, &target, &n).await
        }
        (_, Some(n), Some("proxy")) if serves_sub(target.def, "proxy") => {
            crate::proxy::serve(
                ctx,
                st.node_proxy.as_ref(),
                &parts,
                body,
                st.max_body,
                &target,
                &n,
            )
            .await
        }
        (&Method::POST, None, None) => {
            let body = read_body(body, st.max_body).await?;
            handlers::create(ctx, attrs, &target, &parts.headers, &body, &q).await
        }
        (&Method::POST, Some(n), Some("binding"))
            if target.def.has_sub(resources::Subresource::Binding) =>
        {
            let body = read_body(body, st.max_body).await?;
            crate::registry::pod::bind(ctx, &target, &n, &parts.headers, &body).await
        }
        (&Method::POST, Some(n), Some("eviction"))
            if target.def.has_sub(resources::Subresource::Eviction) =>
        {
            let body = read_body(body, st.max_body).await?;
            crate::registry::poddisruptionbudget::evict(
                ctx,
                attrs,
                &target,
                &n,
                &parts.headers,
                &body,
                &q,
            )
            .await
        }
        (&Method::PUT, Some(n), Some("finalize"))
            if target.def.has_sub(resources::Subresource::Finalize) =>
        {
            let body = read_body(body, st.max_body).await?;
            crate::registry::namespace::finalize(ctx, &target, &n, &parts.headers, &body).await
        }
        (&Method::PUT, Some(n), _) => {
            let body = read_body(body, st.max_body).await?;
            handlers::update(ctx, attrs, &target, &n, &parts.headers, &body, &q).await
        }
        (&Method::PATCH, Some(n), _) => {
            let body = read_body(body, st.max_body).await?;
            handlers::patch(ctx, attrs, &target, &n, &parts.headers, &body, &q).await
        }
        (&Method::DELETE, Some(n), None) => {
            let body = read_body(body, st.max_body).await?;
            let opts = request::delete_options(&parts.headers, &body)?;
            handlers::delete(ctx, attrs, &target, &n, &opts, &q).await
        }
        (&Method::DELETE, None, None) => {
            let body = read_body(body, st.max_body).await?;
            let opts = request::delete_options(&parts.headers, &body)?;
            handlers::delete_collection(ctx, attrs, &target, &q, &opts).await
        }
        (&Method::POST, Some(n), Some("token"))
            if target.def.has_sub(resources::Subresource::Token) =>
        {
            let dry_run = crate::satoken::dry_run(&q)?;
            let body = read_body(body, st.max_body).await?;
            let tokens = st
                .service_accounts
                .as_ref()
                .ok_or_else(ApiError::not_found_path)?;
            let ns = target.namespace.clone().unwrap_or_default();
            let req = if body.iter().all(|b| b.is_ascii_whitespace()) {
                json!({})
            } else {
                request::decode_body(&parts.headers, &body)?
            };
            if let Some(node) = user.as_ref().and_then(crate::authz::node_name) {
                crate::nodeauthz::admit_token_request(ctx, node, &target, &n, &req).await?;
            }
            let out =
                crate::satoken::token_request_with(ctx, tokens, &ns, &n, &req, dry_run).await?;
            Ok(json_response(StatusCode::CREATED, &out))
        }
        (_, _, Some(s)) if !serves_sub(target.def, s) => Err(ApiError::not_found_path()),
        (m, _, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

/// Upstream's authenticator union, x509 first: a client certificate that verifies against the
/// client CA, else the bearer token. A certificate that does not verify (expired, another CA)
/// authenticates no one; the token may still.
#[tracing::instrument(level = "debug", skip_all)]
async fn authenticate(st: &AppState, parts: &axum::http::request::Parts) -> Option<User> {
    if let (Some(certs), Some(x509)) = (
        parts.extensions.get::<crate::x509::PeerCertificates>(),
        st.client_certs.as_ref(),
    ) {
        match x509.authenticate(&certs.0) {
            Ok(u) => return Some(u),
            Err(e) => tracing::info!(error = %e, "client certificate refused"),
        }
    }
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())?;
    st.auth.authenticate(token).await
}

/// `GET /.well-known/openid-configuration` and `GET /openid/v1/jwks`, open to every caller as
/// upstream's `system:service-account-issuer-discovery` binding allows.
fn service_account_discovery(st: &AppState, method: &Method, path: &str) -> ApiResult<Response> {
    let tokens = st
        .service_accounts
        .as_ref()
        .ok_or_else(ApiError::not_found_path)?;
    if method != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        )));
    }
    let (doc, ct) = if path == crate::satoken::OIDC_PATH {
        (tokens.openid_configuration(), "application/json")
    } else {
        (tokens.jwks(), "application/jwk-set+json")
    };
    Ok(axum::response::IntoResponse::into_response((
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, ct),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        serde_json::to_vec(&doc).unwrap_or_default(),
    )))
}

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`: create-only, nothing stored.
async fn token_review(
    st: &AppState,
    user: Option<&User>,
    parts: &axum::http::request::Parts,
    body: Body,
) -> ApiResult<Response> {
    let method = &parts.method;
    let def = &crate::satoken::TOKEN_REVIEWS;
    let t = request::ResourceTarget {
        def,
        namespace: None,
        name: None,
        sub: None,
    };
    if let Some(u) = user.filter(|u| !crate::authz::is_master(u)) {
        let policy = st.rbac.policy().await?;
        crate::audit::authorized(crate::authz::authorize(&policy, u, "create", &t))?;
    }
    if method != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        )));
    }
    let body = read_body(body, st.max_body).await?;
    let req = request::decode_body(&parts.headers, &body)?;
    let out = crate::satoken::token_review(
        &st.ctx,
        st.service_accounts.as_deref(),
        st.auth.as_ref(),
        req,
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, &out))
}

/// Upstream's impersonation filter: `Impersonate-User` / `Impersonate-Group` / `Impersonate-Uid`
/// / `Impersonate-Extra-<key>` headers make the request act as that identity, when the caller may
/// `impersonate` each of them (users, groups, uids; service accounts by their namespace and
/// name; each extra value as `userextras/<key>` named by the value). The extras are read again
/// from the headers where they are reported ([`request::impersonated_extra`]).
async fn impersonate(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    caller: User,
) -> ApiResult<User> {
    let values = |h: &str| -> Vec<String> {
        headers
            .get_all(h)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .collect()
    };
    let extra = request::impersonated_extra(headers);
    let Some(name) = values("impersonate-user").into_iter().next() else {
        if !values("impersonate-group").is_empty()
            || !values("impersonate-uid").is_empty()
            || !extra.is_empty()
        {
            return Err(ApiError::internal(
                "requested impersonation of groups, extra or uid without impersonating a user",
            ));
        }
        return Ok(caller);
    };
    let groups = values("impersonate-group");
    let mut asks: Vec<crate::rbac::Attributes> = Vec::new();
    let ask = |group: &str, resource: &str, namespace: &str, name: &str| crate::rbac::Attributes {
        verb: "impersonate".into(),
        resource_request: true,
        namespace: namespace.into(),
        group: group.into(),
        resource: resource.into(),
        name: name.into(),
        ..Default::default()
    };
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => asks.push(ask("", "serviceaccounts", ns, sa)),
        None => asks.push(ask("", "users", "", &name)),
    }
    for g in &groups {
        asks.push(ask("", "groups", "", g));
    }
    // Each extra value is checked on its own: `userextras/<key>` named by the value.
    for (key, vals) in &extra {
        for v in vals {
            let mut a = ask("authentication.k8s.io", "userextras", "", v);
            a.subresource = key.clone();
            asks.push(a);
        }
    }
    for uid in values("impersonate-uid") {
        asks.push(ask("authentication.k8s.io", "uids", "", &uid));
    }
    if !crate::authz::is_master(&caller) {
        let policy = st.rbac.policy().await?;
        for a in &asks {
            if !policy.allows(&caller, a) {
                let scope = if a.namespace.is_empty() {
                    "at the cluster scope".to_string()
                } else {
                    format!("in the namespace \"{}\"", a.namespace)
                };
                let qualified = if a.group.is_empty() {
                    a.resource.clone()
                } else {
                    format!("{}.{}", a.resource, a.group)
                };
                let resource = if a.subresource.is_empty() {
                    a.resource.clone()
                } else {
                    format!("{}/{}", a.resource, a.subresource)
                };
                return Err(ApiError::forbidden(format!(
                    "{qualified} \"{}\" is forbidden: User \"{}\" cannot impersonate resource \"{resource}\" in API group \"{}\" {scope}",
                    a.name, caller.name, a.group
                )));
            }
        }
    }
    let mut groups = groups;
    if let Some((ns, _)) = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        if groups.is_empty() {
            groups = vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
    }
    if !groups.iter().any(|g| g == crate::rbac::GROUP_AUTHENTICATED) {
        groups.push(crate::rbac::GROUP_AUTHENTICATED.to_string());
    }
    let uid = values("impersonate-uid")
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(User {
        name,
        uid,
        groups,
        extra,
    })
}

/// Does the resource have the subresource `name`? (Others are 404, as upstream.)
fn serves_sub(def: &resources::ResourceDef, name: &str) -> bool {
    use resources::Subresource as S;
    match name {
        "status" => def.has_sub(S::Status),
        "scale" => def.has_sub(S::Scale),
        "log" => def.has_sub(S::Log),
        "binding" => def.has_sub(S::Binding),
        "approval" => def.has_sub(S::Approval),
        "token" => def.has_sub(S::Token),
        "eviction" => def.has_sub(S::Eviction),
        "finalize" => def.has_sub(S::Finalize),
        "exec" => def.has_sub(S::Exec),
        "attach" => def.has_sub(S::Attach),
        "ephemeralcontainers" => def.has_sub(S::EphemeralContainers),
        "portforward" => def.has_sub(S::PortForward),
        "proxy" => def.has_sub(S::Proxy),
        _ => false,
    }
}

/// `pods/{name}/exec|attach`: validate the options, find the pod's node and container, open
/// the stream to that node's agent, then answer the client's upgrade (WebSocket, or SPDY/3.1 as
/// client-go's SPDY executor asks) and join the two.
async fn pod_stream(
    st: &AppState,
    parts: &mut axum::http::request::Parts,
    t: &request::ResourceTarget,
    name: &str,
    kind: crate::streaming::StreamKind,
) -> ApiResult<Response> {
    let opts = crate::streaming::StreamOptions::parse(kind, parts.uri.query().unwrap_or(""))?;
    let ns = t.namespace.clone().unwrap_or_default();
    let (pod, _) = handlers::get_object(&st.ctx, t.def, Some(&ns), name).await?;
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    ) {
        return Err(ApiError::bad_request(format!(
            "cannot {} into a container in a completed pod; current phase is {}",
            kind.path(),
            pod["status"]["phase"].as_str().unwrap_or_default()
        )));
    }
    let (node, container) = pod_node_container(st, &pod, name, opts.container.as_ref()).await?;
    // The client's upgrade is checked (and its SPDY protocol version negotiated) before the
    // node is reached.
    enum Client {
        WebSocket(axum::extract::ws::WebSocketUpgrade),
        Spdy(crate::spdyexec::Version, hyper::upgrade::OnUpgrade),
    }
    let client = if crate::spdyexec::is_spdy_upgrade(parts) {
        match crate::spdyexec::handshake(parts)? {
            crate::spdyexec::Handshake::Accepted(v, on_upgrade) => Client::Spdy(v, on_upgrade),
            crate::spdyexec::Handshake::Refused(resp) => return Ok(resp),
        }
    } else {
        Client::WebSocket(crate::streaming::upgrade(parts)?)
    };
    let proxy = node_proxy(st)?;
    let stream = proxy
        .container_stream(&node, kind, &ns, name, &opts.node_query(&container))
        .await?;
    Ok(match client {
        Client::WebSocket(ws) => crate::streaming::join(ws, stream),
        Client::Spdy(v, on_upgrade) => crate::spdyexec::respond(v, on_upgrade, opts, stream),
    })
}

/// `pods/{name}/portforward`: validate the ports, find the pod's node, then answer kubectl's
/// upgrade and open one node stream per forwarded connection.
async fn pod_portforward(
    st: &AppState,
    parts: &mut axum::http::request::Parts,
    t: &request::ResourceTarget,
    name: &str,
) -> ApiResult<Response> {
    crate::portforward::parse_ports(parts.uri.query().unwrap_or(""))?;
    let ns = t.namespace.clone().unwrap_or_default();
    let (pod, _) = handlers::get_object(&st.ctx, t.def, Some(&ns), name).await?;
    let node_name = pod["spec"]["nodeName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let (node, _) = handlers::get_object(&st.ctx, &resources::NODES, None, node_name).await?;
    let proxy = node_proxy(st)?.clone();
    let (pod_ns, pod_name) = (ns.clone(), name.to_string());
    let opener: crate::portforward::Opener = Arc::new(move |port: u16| {
        let (proxy, node, ns, pod) = (
            proxy.clone(),
            node.clone(),
            pod_ns.clone(),
            pod_name.clone(),
        );
        Box::pin(async move { proxy.port_forward(&node, &ns, &pod, port).await })
    });
    crate::portforward::respond(parts, opener, format!("{ns}/{name}"))
}

fn node_proxy(st: &AppState) -> ApiResult<&Arc<dyn NodeProxy>> {
    st.node_proxy.as_ref().ok_or_else(|| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            "this API server cannot reach nodes (no node proxy configured)",
        )
    })
}

/// The Node object `pod` runs on and the container a request names (the only one if unnamed).
async fn pod_node_container(
    st: &AppState,
    pod: &serde_json::Value,
    name: &str,
    container: Option<&String>,
) -> ApiResult<(serde_json::Value, String)> {
    let node_name = pod["spec"]["nodeName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let names: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // Any container may be named: app, init or ephemeral (upstream podHasContainerWithName).
    let named = |c: &str| {
        ["containers", "initContainers", "ephemeralContainers"]
            .iter()
            .filter_map(|f| pod["spec"][*f].as_array())
            .flatten()
            .any(|x| x["name"].as_str() == Some(c))
    };
    let container = match container.filter(|c| !c.is_empty()) {
        Some(c) if named(c) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )))
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )))
        }
    };
    let (node, _) = handlers::get_object(&st.ctx, &resources::NODES, None, node_name).await?;
    Ok((node, container))
}

/// `GET pods/{name}/log`: find the pod's node and container, then ask that node's agent.
async fn pod_logs(
    st: &AppState,
    t: &request::ResourceTarget,
    name: &str,
    q: &HashMap<String, String>,
    raw_query: &str,
) -> ApiResult<Response> {
    let ns = t.namespace.clone().unwrap_or_default();
    let (pod, _) = handlers::get_object(&st.ctx, t.def, Some(&ns), name).await?;
    let (node, container) = pod_node_container(st, &pod, name, q.get("container")).await?;
    let proxy = node_proxy(st)?;
    proxy
        .container_logs(&node, &ns, name, &container, raw_query)
        .await
}

trait OkResponse {
    fn into_response_ok(self) -> Response;
}
impl OkResponse for (StatusCode, &'static str) {
    fn into_response_ok(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

/// Objects every cluster has: system namespaces, their default service accounts, the
/// `kubernetes` service, and the system PriorityClasses.
pub async fn bootstrap(store: &Arc<dyn Store>) -> ApiResult<()> {
    bootstrap_with(store, &Default::default()).await
}

/// [`bootstrap`] for a cluster with the given Service ranges (the `kubernetes` Service gets the
/// first address of the cluster-IP range).
pub async fn bootstrap_with(
    store: &Arc<dyn Store>,
    ranges: &crate::registry::ipalloc::ServiceRanges,
) -> ApiResult<()> {
    let ctx = Ctx {
        store: store.clone(),
        bookmark_interval: Duration::from_secs(30),
        admission: Default::default(),
        service_ranges: ranges.clone(),
        node_proxy: None,
        objects: None,
        default_tolerations: Default::default(),
    };
    let ns_def = &resources::NAMESPACES;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let mut obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let t = request::ResourceTarget {
            def: ns_def,
            namespace: None,
            name: None,
            sub: None,
        };
        let (obj, _) = handlers::prepare_create(&ctx, &t, &mut obj, &HashMap::new()).await?;
        match handlers::store_create(&ctx, ns_def, &obj).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let svc_def = &resources::SERVICES;
    if store
        .get(&svc_def.key(Some("default"), "kubernetes"))
        .await?
        .is_none()
    {
        let mut svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": ranges.first_ip().to_string(), "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
        let t = request::ResourceTarget {
            def: svc_def,
            namespace: Some("default".into()),
            name: None,
            sub: None,
        };
        let (svc, _) = handlers::prepare_create(&ctx, &t, &mut svc, &HashMap::new()).await?;
        match handlers::store_create(&ctx, svc_def, &svc).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    crate::registry::priorityclass::ensure_system_classes(&ctx).await?;
    crate::registry::storageclass::ensure_local_path_class(&ctx).await?;
    crate::rbac::ensure_bootstrap_policy(&ctx).await?;
    Ok(())
}

/// Periodic compaction: keep `retain` revisions of history for watchers.
pub fn spawn_compactor(
    store: Arc<dyn Store>,
    every: Duration,
    retain: i64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Ok(cur) = store.current_revision().await else {
                continue;
            };
            let target = cur - retain;
            if target > store.compacted_revision().await.unwrap_or(0) {
                match store.compact(target).await {
                    Ok(()) => tracing::debug!(revision = target, "compacted"),
                    Err(StoreError::Compacted { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, "compaction failed"),
                }
            }
        }
    })
}
