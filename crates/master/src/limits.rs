//! The master's abuse limits (`daas up --max-watches-per-user`, `--max-watches`,
//! `--max-request-body-bytes`, `--http2-max-streams-per-connection`): the API server's
//! [`daas_apiserver::limits`], the body bound of the master's endpoints outside the Kubernetes
//! API, and the connection options of its HTTPS server.

use std::sync::Arc;

use daas_apiserver::limits::Limits;
pub use daas_apiserver::limits::LimitsConfig;

use crate::MasterError;

#[derive(Debug, Clone, PartialEq)]
pub struct MasterLimits {
    /// Watches, failed authentications per client address.
    pub api: LimitsConfig,
    /// Request body bytes every endpoint accepts (upstream's 3 MiB).
    pub max_body: usize,
    /// Upstream's `--http2-max-streams-per-connection` (0: Go's default, 250).
    pub http2_max_streams_per_connection: u32,
}

impl Default for MasterLimits {
    fn default() -> Self {
        MasterLimits {
            api: LimitsConfig::default(),
            max_body: daas_apiserver::handlers::DEFAULT_MAX_BODY,
            http2_max_streams_per_connection: daas_apiserver::server::DEFAULT_HTTP2_MAX_STREAMS,
        }
    }
}

impl MasterLimits {
    /// The API server's limiters.
    pub fn api(&self) -> Result<Arc<Limits>, MasterError> {
        self.api
            .validate()
            .map_err(|e| MasterError::Config(e.to_string()))?;
        if self.max_body == 0 {
            return Err(MasterError::Config(
                "--max-request-body-bytes must be positive".into(),
            ));
        }
        Ok(Limits::new(&self.api))
    }

    /// The HTTPS server's connection options.
    pub fn serve_options(&self) -> daas_apiserver::ServeOptions {
        daas_apiserver::ServeOptions {
            http2_max_streams_per_connection: self.http2_max_streams_per_connection,
            ..Default::default()
        }
    }
}

/// Bound the request bodies of `router`'s endpoints (those outside the Kubernetes API): a body
/// over `max` bytes is refused with 413 and a `Status`, a chunked one is cut at the limit.
pub fn bound_bodies(router: axum::Router, max: usize) -> axum::Router {
    router
        .layer(axum::middleware::from_fn_with_state(
            max,
            daas_apiserver::limits::body_limit,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn echo(body: bytes::Bytes) -> String {
        body.len().to_string()
    }

    fn app() -> axum::Router {
        bound_bodies(axum::Router::new().route("/x", post(echo)), 1024)
    }

    async fn status(resp: axum::response::Response) -> (StatusCode, serde_json::Value) {
        let code = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn oversized_bodies_get_a_413_status_with_or_without_a_length() {
        let ok = app()
            .oneshot(
                Request::post("/x")
                    .body(Body::from(vec![1u8; 1024]))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        // Declared length over the limit.
        let r = app()
            .oneshot(
                Request::post("/x")
                    .body(Body::from(vec![1u8; 1025]))
                    .unwrap(),
            )
            .await
            .unwrap();
        let (code, st) = status(r).await;
        assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(st["reason"], "RequestEntityTooLarge");
        assert_eq!(st["message"], "Request entity too large: limit is 1024");
        // A streamed body without a length is cut at the limit.
        let chunks = futures::stream::iter(
            (0..100).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 100]))),
        );
        let r = app()
            .oneshot(Request::post("/x").body(Body::from_stream(chunks)).unwrap())
            .await
            .unwrap();
        let (code, st) = status(r).await;
        assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(st["code"], 413);
    }

    #[test]
    fn zero_limits_are_refused() {
        let l = MasterLimits {
            max_body: 0,
            ..Default::default()
        };
        assert!(l.api().is_err());
        assert!(MasterLimits::default().api().is_ok());
    }
}
