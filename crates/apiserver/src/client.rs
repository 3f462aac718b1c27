//! In-process API client for the master's own controllers. Requests go through the same router
//! (authentication, validation, defaulting, admission) as kubectl's, without a network hop.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use futures::{Stream, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::error::ApiError;

#[derive(Clone)]
pub struct LocalClient {
    router: Router,
    token: String,
    /// Concurrent lists of one path (every controller listing every pod) share one read.
    lists: std::sync::Arc<crate::listshare::ListShare>,
    /// Told about every successful write (an informer cache uses it for read-your-writes).
    observer: Option<std::sync::Arc<dyn WriteObserver>>,
}

/// Sees the result of each successful write (`POST`, `PUT`, `PATCH`, `DELETE`) made through a
/// [`LocalClient`] it is attached to: the method, the request path and the decoded response
/// (the written object, or a `Status`).
pub trait WriteObserver: Send + Sync + 'static {
    fn written(&self, method: &str, uri: &str, response: &Value);
}

/// A watch event as the API serves it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub kind: String,
    pub object: Value,
}

fn status_error(code: StatusCode, body: &[u8]) -> ApiError {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v["kind"] == "Status" => ApiError {
            code: code.as_u16(),
            reason: reason_static(v["reason"].as_str().unwrap_or("")),
            message: v["message"].as_str().unwrap_or("").to_string(),
            details: v.get("details").cloned(),
            continue_token: v["metadata"]["continue"].as_str().map(str::to_string),
        },
        _ => ApiError::new(
            code.as_u16(),
            "Unknown",
            String::from_utf8_lossy(body).into_owned(),
        ),
    }
}

fn reason_static(r: &str) -> &'static str {
    match r {
        "NotFound" => "NotFound",
        "AlreadyExists" => "AlreadyExists",
        "Conflict" => "Conflict",
        "Invalid" => "Invalid",
        "BadRequest" => "BadRequest",
        "Forbidden" => "Forbidden",
        "Unauthorized" => "Unauthorized",
        "Expired" => "Expired",
        "Gone" => "Gone",
        "MethodNotAllowed" => "MethodNotAllowed",
        "UnsupportedMediaType" => "UnsupportedMediaType",
        "RequestEntityTooLarge" => "RequestEntityTooLarge",
        "InternalError" => "InternalError",
        "TooManyRequests" => "TooManyRequests",
        _ => "Unknown",
    }
}

impl LocalClient {
    pub fn new(router: Router, token: impl Into<String>) -> Self {
        LocalClient {
            router,
            token: token.into(),
            lists: Default::default(),
            observer: None,
        }
    }

    /// The same client, reporting its successful writes to `observer`.
    pub fn with_write_observer(&self, observer: std::sync::Arc<dyn WriteObserver>) -> Self {
        LocalClient {
            observer: Some(observer),
            ..self.clone()
        }
    }

    /// A whole list (not shared with concurrent lists) with the list's `resourceVersion`: the
    /// store revision it was read at, where a watch can resume.
    pub async fn list_with_revision(&self, path: &str) -> Result<(Vec<Value>, String), ApiError> {
        let mut v = self.get(path).await?;
        let rv = v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let items = match v["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        Ok((items, rv))
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> Result<axum::response::Response, ApiError> {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", ct)
            .header("accept", "application/json")
            .body(Body::from(body))
            .map_err(|e| ApiError::bad_request(format!("building request {uri}: {e}")))?;
        self.router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| ApiError::internal(format!("{e}")))
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> Result<Value, ApiError> {
        let resp = self.send(method, uri, ct, body).await?;
        let code = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ApiError::internal(format!("reading response: {e}")))?
            .to_bytes();
        if !code.is_success() {
            return Err(status_error(code, &bytes));
        }
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("response is not JSON: {e}")))?;
        if method != "GET" {
            if let Some(o) = &self.observer {
                o.written(method, uri, &v);
            }
        }
        Ok(v)
    }

    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.call("GET", path, "application/json", Vec::new()).await
    }

    /// GET that maps 404 to None.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, ApiError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The items of a list; concurrent calls for the same path may share one read that began
    /// after each of them (see [`crate::listshare`]).
    pub async fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        self.lists
            .list(path, || async {
                let mut v = self.get(path).await?;
                Ok(match v["items"].take() {
                    Value::Array(items) => items,
                    _ => Vec::new(),
                })
            })
            .await
    }

    pub async fn create(&self, collection: &str, obj: &Value) -> Result<Value, ApiError> {
        self.call(
            "POST",
            collection,
            "application/json",
            serde_json::to_vec(obj).unwrap_or_default(),
        )
        .await
    }

    pub async fn update(&self, path: &str, obj: &Value) -> Result<Value, ApiError> {
        self.call(
            "PUT",
            path,
            "application/json",
            serde_json::to_vec(obj).unwrap_or_default(),
        )
        .await
    }

    pub async fn merge_patch(&self, path: &str, patch: &Value) -> Result<Value, ApiError> {
        self.call(
            "PATCH",
            path,
            "application/merge-patch+json",
            serde_json::to_vec(patch).unwrap_or_default(),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ApiError> {
        self.call(
            "DELETE",
            path,
            "application/json",
            b"{\"propagationPolicy\":\"Background\"}".to_vec(),
        )
        .await
    }

    /// Delete with explicit DeleteOptions (e.g. `{"gracePeriodSeconds": 0}`).
    pub async fn call_delete_with(&self, path: &str, options: &Value) -> Result<Value, ApiError> {
        self.call(
            "DELETE",
            path,
            "application/json",
            serde_json::to_vec(options).unwrap_or_default(),
        )
        .await
    }

    /// Delete, treating "already gone" as success.
    pub async fn delete_ignore_missing(&self, path: &str) -> Result<(), ApiError> {
        match self.delete(path).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Watch a collection path (query string may carry selectors and resourceVersion).
    pub async fn watch(
        &self,
        path_and_query: &str,
    ) -> Result<impl Stream<Item = WatchEvent> + Send + 'static, ApiError> {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let uri = format!("{path_and_query}{sep}watch=true");
        let resp = self
            .send("GET", &uri, "application/json", Vec::new())
            .await?;
        let code = resp.status();
        if !code.is_success() {
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            return Err(status_error(code, &bytes));
        }
        let body = resp.into_body().into_data_stream();
        let lines =
            futures::stream::unfold((body, Vec::<u8>::new()), |(mut body, mut buf)| async move {
                loop {
                    if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let ev = serde_json::from_slice::<Value>(&line)
                            .ok()
                            .map(|v| WatchEvent {
                                kind: v["type"].as_str().unwrap_or("").to_string(),
                                object: v["object"].clone(),
                            });
                        return Some((ev, (body, buf)));
                    }
                    match body.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        _ => return None,
                    }
                }
            });
        Ok(lines.filter_map(|e| async move { e }))
    }
}
