//! The cold tier: sealed snapshots kept in a blob store over its HTTP API, Walrus style.
//!
//! - [`BlobStore`]: put bytes, get a blob id back; get bytes by blob id.
//! - [`WalrusHttp`]: the Walrus HTTP API. The publisher stores (`PUT /v1/blobs?epochs=N`, answer
//!   `{"newlyCreated":{"blobObject":{"blobId":...}}}` or `{"alreadyCertified":{"blobId":...}}`),
//!   the aggregator reads (`GET /v1/blobs/<blobId>`).
//! - [`DirBlobStore`]: content-addressed files in a directory (blob id = unpadded base64url of the
//!   SHA-256 of the bytes), and [`serve`], which offers it over the same two endpoints: a
//!   local publisher+aggregator for development and tests.
//!
//! Only sealed snapshots are ever put: the blob store learns their size, never their content.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::httpcall::{self, HttpError, Trust};

/// Largest blob fetched or accepted (snapshots of big clusters fit; anything larger is refused).
pub const MAX_BLOB: usize = 1 << 30;
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: {0}")]
    Http(#[from] HttpError),
    #[error("blob store {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("publisher {url} answered without a blob id: {body}")]
    NoBlobId { url: String, body: String },
    #[error("invalid blob id {0:?}")]
    InvalidId(String),
    #[error("no {0} configured")]
    NotConfigured(&'static str),
    #[error("blob {id} does not match its id (content-addressed store returned other bytes)")]
    Mismatch { id: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Store `data`; returns its blob id.
    async fn put(&self, data: Bytes) -> Result<String, BlobError>;
    /// The bytes of a blob.
    async fn get(&self, blob_id: &str) -> Result<Vec<u8>, BlobError>;
}

/// The blob id [`DirBlobStore`] gives `data`.
pub fn content_id(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(data))
}

fn check_id(id: &str) -> Result<(), BlobError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(BlobError::InvalidId(id.to_string()));
    }
    Ok(())
}

/// Walrus publisher and/or aggregator over HTTP(S).
#[derive(Clone, Debug)]
pub struct WalrusHttp {
    pub publisher: Option<String>,
    pub aggregator: Option<String>,
    /// Storage epochs asked for on each put.
    pub epochs: u32,
    pub trust: Trust,
}

impl WalrusHttp {
    pub fn new(publisher: Option<String>, aggregator: Option<String>) -> Self {
        WalrusHttp {
            publisher: publisher.map(|u| u.trim_end_matches('/').to_string()),
            aggregator: aggregator.map(|u| u.trim_end_matches('/').to_string()),
            epochs: 5,
            trust: Trust::WebPki,
        }
    }
}

/// The blob id of a publisher's answer (`newlyCreated.blobObject.blobId` or
/// `alreadyCertified.blobId`).
pub fn blob_id_of(answer: &Value) -> Option<String> {
    answer["newlyCreated"]["blobObject"]["blobId"]
        .as_str()
        .or_else(|| answer["alreadyCertified"]["blobId"].as_str())
        .map(str::to_string)
}

#[async_trait]
impl BlobStore for WalrusHttp {
    #[tracing::instrument(skip_all, fields(publisher = ?self.publisher, bytes = data.len()))]
    async fn put(&self, data: Bytes) -> Result<String, BlobError> {
        let base = self
            .publisher
            .as_deref()
            .ok_or(BlobError::NotConfigured("publisher"))?;
        let url = format!("{base}/v1/blobs?epochs={}", self.epochs);
        let r = httpcall::call(
            Method::PUT,
            &url,
            &self.trust,
            None,
            Some("application/octet-stream"),
            data,
            1 << 20,
            TIMEOUT,
        )
        .await?;
        let body = String::from_utf8_lossy(&r.body).into_owned();
        if !r.status.is_success() {
            return Err(BlobError::Status {
                url,
                status: r.status.as_u16(),
                body,
            });
        }
        let id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| blob_id_of(&v))
            .ok_or(BlobError::NoBlobId { url, body })?;
        check_id(&id)?;
        tracing::info!(blob_id = %id, "blob stored");
        Ok(id)
    }

    #[tracing::instrument(skip(self), fields(aggregator = ?self.aggregator))]
    async fn get(&self, blob_id: &str) -> Result<Vec<u8>, BlobError> {
        check_id(blob_id)?;
        let base = self
            .aggregator
            .as_deref()
            .ok_or(BlobError::NotConfigured("aggregator"))?;
        let url = format!("{base}/v1/blobs/{blob_id}");
        let r = httpcall::call(
            Method::GET,
            &url,
            &self.trust,
            None,
            None,
            Bytes::new(),
            MAX_BLOB,
            TIMEOUT,
        )
        .await?;
        if r.status == StatusCode::NOT_FOUND {
            return Err(BlobError::NotFound(blob_id.to_string()));
        }
        if !r.status.is_success() {
            return Err(BlobError::Status {
                url,
                status: r.status.as_u16(),
                body: String::from_utf8_lossy(&r.body).into_owned(),
            });
        }
        Ok(r.body.to_vec())
    }
}

/// Content-addressed blobs in a directory.
#[derive(Clone, Debug)]
pub struct DirBlobStore {
    dir: PathBuf,
}

impl DirBlobStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirBlobStore { dir: dir.into() }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
        move |source| BlobError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Store `data`; true if it was new.
    fn put_sync(&self, data: &[u8]) -> Result<(String, bool), BlobError> {
        let id = content_id(data);
        let path = self.dir.join(&id);
        if path.exists() {
            return Ok((id, false));
        }
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        daas_apiserver::files::write_private(&path, data).map_err(Self::io(&path))?;
        Ok((id, true))
    }

    fn get_sync(&self, id: &str) -> Result<Vec<u8>, BlobError> {
        check_id(id)?;
        let path = self.dir.join(id);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(id.to_string()))
            }
            Err(e) => return Err(Self::io(&path)(e)),
        };
        if content_id(&data) != id {
            return Err(BlobError::Mismatch { id: id.to_string() });
        }
        Ok(data)
    }
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, data: Bytes) -> Result<String, BlobError> {
        let s = self.clone();
        tokio::task::spawn_blocking(move || s.put_sync(&data).map(|(id, _)| id))
            .await
            .map_err(|e| BlobError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    async fn get(&self, blob_id: &str) -> Result<Vec<u8>, BlobError> {
        let (s, id) = (self.clone(), blob_id.to_string());
        tokio::task::spawn_blocking(move || s.get_sync(&id))
            .await
            .map_err(|e| BlobError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
    }
}

/// The Walrus publisher and aggregator endpoints over a [`DirBlobStore`].
pub fn router(store: DirBlobStore) -> Router {
    Router::new()
        .route("/v1/blobs", axum::routing::put(put_blob))
        .route("/v1/blobs/{id}", axum::routing::get(get_blob))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BLOB))
        .with_state(store)
}

/// Serve [`router`] on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, store: DirBlobStore) -> std::io::Result<()> {
    axum::serve(listener, router(store)).await
}

async fn put_blob(
    State(s): State<DirBlobStore>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let epochs: u64 = q.get("epochs").and_then(|e| e.parse().ok()).unwrap_or(1);
    let size = body.len();
    match tokio::task::spawn_blocking(move || s.put_sync(&body)).await {
        Ok(Ok((id, true))) => axum::Json(json!({
            "newlyCreated": {
                "blobObject": {"blobId": id, "size": size, "storage": {"endEpoch": epochs}},
                "resourceOperation": {"registerFromScratch": {"epochsAhead": epochs}},
                "cost": 0,
            }
        }))
        .into_response(),
        Ok(Ok((id, false))) => {
            axum::Json(json!({"alreadyCertified": {"blobId": id, "endEpoch": epochs}}))
                .into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn get_blob(State(s): State<DirBlobStore>, UrlPath(id): UrlPath<String>) -> Response {
    match tokio::task::spawn_blocking(move || s.get_sync(&id)).await {
        Ok(Ok(data)) => ([("content-type", "application/octet-stream")], data).into_response(),
        Ok(Err(BlobError::NotFound(_))) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(BlobError::InvalidId(_))) => StatusCode::BAD_REQUEST.into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dir_store_is_content_addressed_and_checks_ids() {
        let d = tempfile::tempdir().unwrap();
        let s = DirBlobStore::new(d.path().join("blobs"));
        let id = s.put(Bytes::from_static(b"sealed bytes")).await.unwrap();
        assert_eq!(id, content_id(b"sealed bytes"));
        assert_eq!(
            s.put(Bytes::from_static(b"sealed bytes")).await.unwrap(),
            id
        );
        assert_eq!(s.get(&id).await.unwrap(), b"sealed bytes");
        assert!(matches!(
            s.get(&content_id(b"other")).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(
            s.get("../etc/passwd").await,
            Err(BlobError::InvalidId(_))
        ));
        // A blob swapped on disk no longer matches its id.
        std::fs::write(d.path().join("blobs").join(&id), b"swapped").unwrap();
        assert!(matches!(s.get(&id).await, Err(BlobError::Mismatch { .. })));
    }

    #[tokio::test]
    async fn walrus_http_client_against_a_local_publisher_and_aggregator() {
        let d = tempfile::tempdir().unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let server = tokio::spawn(serve(l, DirBlobStore::new(d.path())));
        let w = WalrusHttp::new(Some(format!("{url}/")), Some(url.clone()));
        let data = Bytes::from(vec![7u8; 300_000]);
        let id = w.put(data.clone()).await.unwrap();
        assert_eq!(id, content_id(&data));
        // Storing it again: `alreadyCertified`, same id.
        assert_eq!(w.put(data.clone()).await.unwrap(), id);
        assert_eq!(w.get(&id).await.unwrap(), data.to_vec());
        assert!(matches!(
            w.get(&content_id(b"missing")).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(w.get("a/b").await, Err(BlobError::InvalidId(_))));
        // No publisher configured / nothing listening.
        let reader = WalrusHttp::new(None, Some(url));
        assert!(matches!(
            reader.put(data.clone()).await,
            Err(BlobError::NotConfigured("publisher"))
        ));
        server.abort();
        let _ = server.await;
        assert!(matches!(w.get(&id).await, Err(BlobError::Http(_))));
    }

    #[test]
    fn publisher_answers() {
        let created = json!({"newlyCreated": {"blobObject": {"id": "0x1", "blobId": "abc"}}});
        let certified = json!({"alreadyCertified": {"blobId": "def", "endEpoch": 3}});
        assert_eq!(blob_id_of(&created).as_deref(), Some("abc"));
        assert_eq!(blob_id_of(&certified).as_deref(), Some("def"));
        assert_eq!(blob_id_of(&json!({"error": "x"})), None);
    }
}
