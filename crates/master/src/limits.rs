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
    /// The nice value of the threads handling requests of the user and workload priority levels
    /// (`--low-priority-nice`, 1..=19); 0: they run with the others.
    pub low_priority_nice: i32,
}

impl Default for MasterLimits {
    fn default() -> Self {
        MasterLimits {
            api: LimitsConfig::default(),
            max_body: daas_apiserver::handlers::DEFAULT_MAX_BODY,
            http2_max_streams_per_connection: daas_apiserver::server::DEFAULT_HTTP2_MAX_STREAMS,
            low_priority_nice: DEFAULT_LOW_PRIORITY_NICE,
        }
    }
}

/// Requests of users and workloads get about a tenth of the CPU time of the others when both
/// want it (CFS weights of nice 10 and 0: 110 and 1024).
pub const DEFAULT_LOW_PRIORITY_NICE: i32 = 10;

impl MasterLimits {
    /// The runtime of the low priority levels' requests: one thread per CPU, each lowered to
    /// `low_priority_nice` (Linux gives each thread its own nice value). It lives as long as the
    /// process. None when the nice value is 0.
    pub fn low_priority_runtime(&self) -> Result<Option<tokio::runtime::Handle>, MasterError> {
        let nice = self.low_priority_nice;
        if nice == 0 {
            return Ok(None);
        }
        if !(1..=19).contains(&nice) {
            return Err(MasterError::Config(
                "--low-priority-nice must be within 0..=19".into(),
            ));
        }
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("daas-low-priority")
            .on_thread_start(move || {
                // SAFETY: setpriority with PRIO_PROCESS and who = 0 changes only the calling
                // thread's nice value on Linux; it touches no memory of ours.
                let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
                if r != 0 {
                    tracing::warn!(nice, "could not lower the priority of a request thread");
                }
            })
            .enable_all()
            .build()
            .map_err(|e| MasterError::Config(format!("low-priority runtime: {e}")))?;
        let handle = rt.handle().clone();
        // Serves until the process exits (dropping a runtime inside another one panics).
        std::mem::forget(rt);
        Ok(Some(handle))
    }

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
    fn the_low_priority_runtime_runs_at_the_nice_value() {
        let l = MasterLimits::default();
        let h = l.low_priority_runtime().unwrap().unwrap();
        let nice = std::thread::scope(|_| {
            h.block_on(async {
                tokio::spawn(async {
                    // SAFETY: reads the calling thread's nice value.
                    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
                })
                .await
                .unwrap()
            })
        });
        assert_eq!(nice, DEFAULT_LOW_PRIORITY_NICE);
        let off = MasterLimits {
            low_priority_nice: 0,
            ..Default::default()
        };
        assert!(off.low_priority_runtime().unwrap().is_none());
        let bad = MasterLimits {
            low_priority_nice: 25,
            ..Default::default()
        };
        assert!(bad.low_priority_runtime().is_err());
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
