//! API errors rendered as Kubernetes `Status` objects.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::resources::ResourceDef;

/// An error that reaches the client as a `meta/v1 Status` with the matching HTTP code and reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// `metadata.continue` of the Status (an expired list's inconsistent continue token).
    pub continue_token: Option<String>,
}

/// The `StatusCause` reason of a field error, from the message `field.Error` renders
/// ("Required value", "Forbidden: ...", ...).
fn cause_reason(message: &str) -> &'static str {
    const REASONS: [(&str, &str); 6] = [
        ("Required value", "FieldValueRequired"),
        ("Forbidden", "FieldValueForbidden"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Too long", "FieldValueTooLong"),
        ("Too many", "FieldValueTooMany"),
    ];
    REASONS
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map(|(_, reason)| *reason)
        .unwrap_or("FieldValueInvalid")
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            continue_token: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_continue(mut self, token: String) -> Self {
        self.continue_token = Some(token);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", def.qualified(), name),
        )
        .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", def.qualified(), name),
        )
        .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
    }

    pub fn conflict(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                def.qualified(),
                name
            ),
        )
        .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
    }

    pub fn invalid(def: &ResourceDef, name: &str, causes: Vec<(String, String)>) -> Self {
        // Upstream's aggregate: one error alone, several in brackets.
        let parts: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let msg = if parts.len() == 1 {
            parts.join("")
        } else {
            format!("[{}]", parts.join(", "))
        };
        // The qualified kind (`Deployment.apps`), as upstream's GroupKind prints it.
        let kind = if def.group.is_empty() {
            def.kind.to_string()
        } else {
            format!("{}.{}", def.kind, def.group)
        };
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|(f, m)| json!({"reason": cause_reason(m), "message": m, "field": f}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {msg}"),
        )
        .with_details(json!({
            "name": name, "group": def.group, "kind": def.kind, "causes": causes_json
        }))
    }

    pub fn method_not_allowed(msg: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", msg)
    }

    pub fn unsupported_media(msg: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", msg)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", msg)
    }

    pub fn gone(msg: impl Into<String>) -> Self {
        Self::new(410, "Expired", msg)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(500, "InternalError", msg)
    }

    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        if let Some(c) = &self.continue_token {
            v["metadata"]["continue"] = json!(c);
        }
        v
    }
}

impl From<daas_store::StoreError> for ApiError {
    fn from(e: daas_store::StoreError) -> Self {
        use daas_store::StoreError as E;
        match e {
            E::Compacted {
                requested,
                compacted,
            } => ApiError::gone(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            E::FutureRevision { requested, current } => ApiError::new(
                504,
                "Timeout",
                format!(
                    "Too large resource version: {requested}, current resource version: {current}"
                ),
            ),
            other => ApiError::internal(format!("storage error: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let mut resp = (
            code,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        // Upstream answers 429 with `Retry-After` (details.retryAfterSeconds, else 1 s).
        if self.code == 429 {
            let secs = self
                .details
                .as_ref()
                .and_then(|d| d["retryAfterSeconds"].as_u64())
                .unwrap_or(1);
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
