//! `daas master` / `daas up` flags of the abuse limits (also config file keys:
//! `max-watches-per-user`, `max-watches`, `max-request-body-bytes`,
//! `http2-max-streams-per-connection`, `max-auth-failures-burst`, `max-auth-failures-per-second`, `low-priority-cpu`).

use clap::Args;
use daas_master::limits::MasterLimits;

#[derive(Args, Clone, Debug)]
pub struct LimitsArgs {
    /// Watches one identity may hold open at once (nodes may hold 4 times as many; the admin,
    /// `system:masters`, is not counted); over it a watch is refused with 429 and Retry-After.
    #[arg(long, default_value_t = 100)]
    pub max_watches_per_user: usize,
    /// Watches all users together may hold open at once (nodes have their own budget of the
    /// same size; the admin is not counted).
    #[arg(long, default_value_t = 4096)]
    pub max_watches: usize,
    /// The largest request body any endpoint accepts (upstream's 3 MiB); larger ones get 413.
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_request_body_bytes: usize,
    /// Concurrent HTTP/2 streams per client connection (0: Go's default, 250, as upstream).
    #[arg(long, default_value_t = 0)]
    pub http2_max_streams_per_connection: u32,
    /// Failed authentications one client address may make in a burst; then its requests get 429
    /// until the allowance refills at `--max-auth-failures-per-second`.
    #[arg(long, default_value_t = 50)]
    pub max_auth_failures_burst: u32,
    /// See `--max-auth-failures-burst`.
    #[arg(long, default_value_t = 10.0)]
    pub max_auth_failures_per_second: f64,
    /// How the threads serving users and workloads (priority levels global-default,
    /// workload-low, catch-all: their requests and, once a connection carried only those, its
    /// TLS and HTTP) are scheduled, so their flood leaves the admin, the nodes and the control
    /// plane the CPU: `nice:N` (1..=19), `idle` (Linux SCHED_IDLE: only when nothing else on the
    /// machine wants the CPU; for a master with CPUs of its own), or `off` (with the others).
    #[arg(long, default_value_t = daas_master::limits::LowPriorityCpu::DEFAULT)]
    pub low_priority_cpu: daas_master::limits::LowPriorityCpu,
}

impl LimitsArgs {
    pub fn config(&self) -> anyhow::Result<MasterLimits> {
        let l = MasterLimits {
            api: daas_master::limits::LimitsConfig {
                max_watches_per_user: self.max_watches_per_user,
                max_watches: self.max_watches,
                auth_failure_burst: self.max_auth_failures_burst,
                auth_failures_per_second: self.max_auth_failures_per_second,
            },
            max_body: self.max_request_body_bytes,
            http2_max_streams_per_connection: self.http2_max_streams_per_connection,
            low_priority_cpu: self.low_priority_cpu,
        };
        l.api().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        l: LimitsArgs,
    }

    #[test]
    fn defaults_are_the_masters_and_flags_parse() {
        let want = MasterLimits {
            http2_max_streams_per_connection: 0,
            ..Default::default()
        };
        assert_eq!(T::parse_from(["t"]).l.config().unwrap(), want);
        let t = T::parse_from([
            "t",
            "--max-watches-per-user=3",
            "--max-watches",
            "10",
            "--max-request-body-bytes=1024",
            "--http2-max-streams-per-connection=100",
            "--low-priority-cpu=nice:5",
        ]);
        let c = t.l.config().unwrap();
        assert_eq!(c.api.max_watches_per_user, 3);
        assert_eq!(c.api.max_watches, 10);
        assert_eq!(c.max_body, 1024);
        assert_eq!(c.http2_max_streams_per_connection, 100);
        assert_eq!(
            c.low_priority_cpu,
            daas_master::limits::LowPriorityCpu::Nice(5)
        );
        assert!(T::try_parse_from(["t", "--low-priority-cpu=nice:0"]).is_err());
        assert!(T::parse_from(["t", "--max-watches-per-user=0"])
            .l
            .config()
            .is_err());
    }
}
