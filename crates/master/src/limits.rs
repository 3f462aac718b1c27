//! The master's abuse limits (`daas up --max-watches-per-user`, `--max-watches`,
//! `--max-request-body-bytes`, `--http2-max-streams-per-connection`, `--low-priority-cpu`): the API server's
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
    /// How the threads serving the user and workload priority levels are scheduled
    /// (`--low-priority-cpu`).
    pub low_priority_cpu: LowPriorityCpu,
}

impl Default for MasterLimits {
    fn default() -> Self {
        MasterLimits {
            api: LimitsConfig::default(),
            max_body: daas_apiserver::handlers::DEFAULT_MAX_BODY,
            http2_max_streams_per_connection: daas_apiserver::server::DEFAULT_HTTP2_MAX_STREAMS,
            low_priority_cpu: LowPriorityCpu::DEFAULT,
        }
    }
}

/// The CPU share of the requests (and connections) of users and workloads: the priority levels
/// `global-default`, `workload-low` and `catch-all` run on a runtime of their own whose threads
/// are scheduled so that their flood leaves the admin, the nodes and the control plane served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowPriorityCpu {
    /// A nice value 1..=19 (`nice:N`; `nice:10` is the default): CFS weights, so nice 10 gets
    /// about a tenth of the CPU time of nice 0 when both want it (110 against 1024), whoever
    /// else runs on the machine.
    Nice(u8),
    /// Linux `SCHED_IDLE` (`idle`): they run only when no other thread of the machine wants the
    /// CPU, and a waking one preempts them at once. For a master with CPUs of its own (an
    /// enclave): on a shared machine any busy process starves the users' requests (measured:
    /// a user's GET at p50 0.6 s behind 8 CPU-bound processes on 2 cores, against 43 ms at
    /// nice 10).
    Idle,
    /// One runtime for every request (`off`).
    Off,
}

impl std::fmt::Display for LowPriorityCpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LowPriorityCpu::Idle => f.write_str("idle"),
            LowPriorityCpu::Nice(n) => write!(f, "nice:{n}"),
            LowPriorityCpu::Off => f.write_str("off"),
        }
    }
}

/// A `--low-priority-cpu` value that is not `idle`, `off` or `nice:1`..`nice:19`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("low-priority CPU scheduling must be idle, off or nice:N with N in 1..=19, not {0:?}")]
pub struct BadLowPriorityCpu(pub String);

impl std::str::FromStr for LowPriorityCpu {
    type Err = BadLowPriorityCpu;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadLowPriorityCpu(s.to_string());
        match s {
            "idle" => Ok(LowPriorityCpu::Idle),
            "off" => Ok(LowPriorityCpu::Off),
            _ => {
                let n: u8 = s
                    .strip_prefix("nice:")
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|_| bad())?;
                if (1..=19).contains(&n) {
                    Ok(LowPriorityCpu::Nice(n))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl LowPriorityCpu {
    /// `nice:10`.
    pub const DEFAULT: LowPriorityCpu = LowPriorityCpu::Nice(10);

    /// Schedule the calling thread as this says (Linux schedules each thread on its own). Its
    /// slice is the short one of the master's other threads: the nice value (or SCHED_IDLE)
    /// sets its share of the CPU, the short slice bounds how long a thread waits for the CPU
    /// once picked: a user's thread holding a lock that the admin's request waits for runs
    /// again within a slice of each other user thread, not within the default 1-3 ms.
    fn apply_to_this_thread(self) -> Result<(), daas_sched::SchedError> {
        use daas_sched::{Policy, Slice, SHORT_SLICE};
        match self {
            LowPriorityCpu::Off => Ok(()),
            LowPriorityCpu::Nice(n) => daas_sched::set_this_thread(
                Policy::Normal,
                i32::from(n),
                Slice::Custom(SHORT_SLICE),
                true,
            ),
            // The kernel gives SCHED_IDLE threads no custom slice: any waking thread of
            // another policy preempts them at once anyway.
            LowPriorityCpu::Idle => {
                let nice = daas_sched::this_thread()?.nice;
                daas_sched::set_this_thread(Policy::Idle, nice, Slice::Default, true)
            }
        }
    }
}

impl MasterLimits {
    /// The runtime of the low priority levels' requests and connections: one thread per CPU,
    /// each scheduled as [`MasterLimits::low_priority_cpu`] says (its blocking threads too). It
    /// lives as long as the process. None when that is [`LowPriorityCpu::Off`].
    pub fn low_priority_runtime(&self) -> Result<Option<tokio::runtime::Handle>, MasterError> {
        let cpu = self.low_priority_cpu;
        if cpu == LowPriorityCpu::Off {
            return Ok(None);
        }
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("daas-low-priority")
            .on_thread_start(move || {
                if let Err(e) = cpu.apply_to_this_thread() {
                    tracing::warn!(scheduling = %cpu, error = %e, "could not lower the priority of a request thread");
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

    /// The HTTPS server's connection options; connections whose requests are all of the low
    /// priority levels are served on `low_priority` (the API server's
    /// [`MasterLimits::low_priority_runtime`]).
    pub fn serve_options(
        &self,
        low_priority: Option<tokio::runtime::Handle>,
    ) -> daas_apiserver::ServeOptions {
        daas_apiserver::ServeOptions {
            http2_max_streams_per_connection: self.http2_max_streams_per_connection,
            low_priority,
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

    /// How a worker thread of `h`'s runtime is scheduled.
    fn scheduling_on(h: &tokio::runtime::Handle) -> daas_sched::ThreadScheduling {
        h.block_on(async {
            tokio::spawn(async { daas_sched::this_thread().unwrap() })
                .await
                .unwrap()
        })
    }

    /// Whether `t` has the short slice (where the kernel has custom slices) and passes the
    /// default on to the threads and processes it creates.
    fn short_slice(t: &daas_sched::ThreadScheduling) -> bool {
        t.reset_on_fork
            && (!daas_sched::kernel_has_custom_slices() || t.slice == Some(daas_sched::SHORT_SLICE))
    }

    #[test]
    fn the_low_priority_runtime_runs_at_nice_10_by_default_or_idle() {
        use daas_sched::Policy;
        let default = MasterLimits::default()
            .low_priority_runtime()
            .unwrap()
            .unwrap();
        let idle = MasterLimits {
            low_priority_cpu: LowPriorityCpu::Idle,
            ..Default::default()
        }
        .low_priority_runtime()
        .unwrap()
        .unwrap();
        let t = scheduling_on(&default);
        assert_eq!((t.policy, t.nice), (Policy::Normal, 10));
        assert!(short_slice(&t), "{t:?}");
        let t = scheduling_on(&idle);
        assert_eq!((t.policy, t.reset_on_fork), (Policy::Idle, true));
        // Its blocking threads (store reads) too.
        let blocking = idle.block_on(async {
            tokio::task::spawn_blocking(|| daas_sched::this_thread().unwrap())
                .await
                .unwrap()
        });
        assert_eq!(
            (blocking.policy, blocking.reset_on_fork),
            (Policy::Idle, true)
        );
        let nice = MasterLimits {
            low_priority_cpu: LowPriorityCpu::Nice(19),
            ..Default::default()
        };
        let h = nice.low_priority_runtime().unwrap().unwrap();
        let t = scheduling_on(&h);
        assert_eq!((t.policy, t.nice), (Policy::Normal, 19));
        assert!(short_slice(&t), "{t:?}");
        let off = MasterLimits {
            low_priority_cpu: LowPriorityCpu::Off,
            ..Default::default()
        };
        assert!(off.low_priority_runtime().unwrap().is_none());
    }

    #[test]
    fn low_priority_cpu_parses_and_prints_its_three_forms() {
        for (s, want) in [
            ("idle", LowPriorityCpu::Idle),
            ("off", LowPriorityCpu::Off),
            ("nice:1", LowPriorityCpu::Nice(1)),
            ("nice:19", LowPriorityCpu::Nice(19)),
        ] {
            let got: LowPriorityCpu = s.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string(), s);
        }
        for bad in [
            "", "nice", "nice:0", "nice:20", "nice:-1", "nice:x", "IDLE", "10",
        ] {
            let e = bad.parse::<LowPriorityCpu>().unwrap_err();
            assert_eq!(e, BadLowPriorityCpu(bad.to_string()));
        }
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
