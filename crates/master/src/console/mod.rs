//! The web console: a static page (HTML, CSS and vanilla JS compiled into the binary, no
//! external resource) served at `/console/` on the API's TLS listener, and a small read-only
//! JSON API under `/api/v1/console/` for what the Kubernetes API does not hold (stakes,
//! earnings, ledger events, the enclave's attestation).
//!
//! The page carries no data: it asks for a bearer credential (the admin token, a `daas1.`
//! seal-token credential or a service-account token), keeps it in `sessionStorage`, and calls the
//! API with `Authorization: Bearer`, so a user sees what RBAC lets that identity see. Nodes and
//! pods come from the Kubernetes API itself (list, then `?watch=1` streamed with `fetch`).
//!
//! Authorization of the data API ([`crate::access`], the API server's own decision):
//! - `nodes`: `list` on `nodes` (admins and node identities; a user-tier staker gets 403, the
//!   page says the panel is forbidden);
//! - `ledger-events` and `attestation`: `get` on the path (non-resource URL). The bootstrap role
//!   `system:discovery` grants `/api/*` to every authenticated identity, so every identity may
//!   read them: both are public data (anyone can read the ledger, and the attestation document is
//!   served to anonymous clients at `/api/v1/tee/attestation`). An admin who wants them
//!   private removes `/api/*` from that role.
//! - anonymous or unknown credentials get 401 with a `Status`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::access::{self, Ask};
use crate::seed::SeedState;

pub mod ledgerview;

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// The console's Content-Security-Policy: only its own origin, no inline script or style, no
/// framing, no form posts elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub const NODES_PATH: &str = "/api/v1/console/nodes";
pub const EVENTS_PATH: &str = "/api/v1/console/ledger-events";
pub const ATTESTATION_PATH: &str = "/api/v1/console/attestation";

pub fn router(state: SeedState) -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/index.html",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(CONSOLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/favicon.svg",
            get(|| async { asset(FAVICON_SVG, "image/svg+xml") }),
        )
        .route(NODES_PATH, get(nodes))
        .route(EVENTS_PATH, get(ledger_events))
        .route(ATTESTATION_PATH, get(attestation))
        .with_state(state)
}

/// Security headers of every console response (page and data).
fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    harden((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn data(v: Value) -> Response {
    harden(Json(v).into_response())
}

async fn nodes(State(st): State<SeedState>, headers: HeaderMap) -> Response {
    let span = tracing::debug_span!("console_nodes");
    async move {
        let ask = Ask::Resource {
            verb: "list",
            group: "",
            resource: "nodes",
            subresource: None,
            name: None,
            namespace: None,
        };
        if let Err(e) = access::authorize(st.auth.as_ref(), &st.client, &headers, &ask).await {
            return harden(e.into_response());
        }
        let nodes = match st.client.list("/api/v1/nodes").await {
            Ok(n) => n,
            Err(e) => return harden(e.into_response()),
        };
        let leases = st
            .client
            .list("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
            .await
            .unwrap_or_default();
        let mut items = Vec::with_capacity(nodes.len());
        for n in &nodes {
            let name = n["metadata"]["name"].as_str().unwrap_or_default();
            let renew = leases
                .iter()
                .find(|l| l["metadata"]["name"] == name)
                .map(|l| l["spec"]["renewTime"].clone())
                .unwrap_or(Value::Null);
            let stake = match &st.ledger {
                Some(l) => ledgerview::node_stake(l.as_ref(), name).await,
                None => Value::Null,
            };
            items.push(json!({"name": name, "renewTime": renew, "stake": stake}));
        }
        data(json!({"items": items, "ledger": st.ledger.is_some()}))
    }
    .instrument(span)
    .await
}

async fn ledger_events(State(st): State<SeedState>, headers: HeaderMap) -> Response {
    let span = tracing::debug_span!("console_ledger_events");
    async move {
        let ask = Ask::Path {
            verb: "get",
            path: EVENTS_PATH,
        };
        if let Err(e) = access::authorize(st.auth.as_ref(), &st.client, &headers, &ask).await {
            return harden(e.into_response());
        }
        match &st.ledger {
            Some(l) => data(ledgerview::events(l.as_ref(), 50).await),
            None => data(json!({"items": [], "source": "none"})),
        }
    }
    .instrument(span)
    .await
}

async fn attestation(State(st): State<SeedState>, headers: HeaderMap) -> Response {
    let span = tracing::debug_span!("console_attestation");
    async move {
        let ask = Ask::Path {
            verb: "get",
            path: ATTESTATION_PATH,
        };
        if let Err(e) = access::authorize(st.auth.as_ref(), &st.client, &headers, &ask).await {
            return harden(e.into_response());
        }
        let pcrs: serde_json::Map<String, Value> = st
            .enclave
            .enclave
            .measurement()
            .iter()
            .map(|(i, v)| (i.to_string(), json!(hex::encode(v))))
            .collect();
        let public_key = hex::encode(st.enclave.enclave.public_key());
        let reg = st.registration.read().ok().and_then(|g| g.clone());
        let verified = match (&st.ledger, &reg) {
            (Some(l), Some(r)) => ledgerview::verify_registration(l.as_ref(), r, &public_key, &pcrs).await,
            (Some(_), None) => json!({"registered": false, "reason": "this master's enclave is not registered on the ledger yet"}),
            (None, _) => json!({"registered": false, "reason": "this master has no ledger"}),
        };
        data(json!({
            "kind": st.enclave.kind,
            "pcrs": pcrs,
            "public_key": public_key,
            "tls_certificate_sha256": hex::encode(st.tls_cert_sha256),
            "cluster_id": st.cluster_id,
            "audience": daas_ledger::credential::audience(&st.cluster_id),
            "verified": verified,
        }))
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_reference_nothing_outside_the_origin() {
        for (name, a) in [
            ("html", INDEX_HTML),
            ("css", CONSOLE_CSS),
            ("js", CONSOLE_JS),
        ] {
            assert!(
                !a.contains("http://") && !a.contains("https://"),
                "{name} names another origin"
            );
            assert!(!a.contains("@import"), "{name}");
        }
        // No inline script or style (the CSP forbids them): scripts come from files only.
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("style="));
        assert!(!INDEX_HTML.contains("<style"));
        // No inline event handlers (`onclick=` and the like).
        let lower = INDEX_HTML.to_ascii_lowercase();
        for (i, _) in lower.match_indices(" on") {
            let rest = &lower[i + 3..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            assert!(
                !rest[name.len()..].starts_with('='),
                "inline handler on{name}"
            );
        }
        assert!(INDEX_HTML.contains("<script src=\"console.js\""));
        // The token never goes into a URL.
        assert!(!CONSOLE_JS.contains("?token") && !CONSOLE_JS.contains("&token"));
    }

    #[test]
    fn csp_is_strict() {
        assert!(CSP.starts_with("default-src 'self'"));
        assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
        let r = asset("x", "text/plain");
        assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
    }
}
