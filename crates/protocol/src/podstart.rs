//! Pod start-up timing marks: one `info` event at target `daas::podstart` per stage a pod passes
//! on its way from `kubectl apply` to Running (API create, scheduler bind, agent sees it,
//! env and volumes ready, sandbox ready, containers started, Running status accepted), with the wall-clock time `t` in
//! seconds since the Unix epoch so marks from the master's and the agent's logs line up.
//! `scripts/bench-pods.sh` parses them; `RUST_LOG=info,daas::podstart=off` silences them.

/// The stages, in the order a pod passes them.
pub const STAGES: [&str; 7] = [
    "created", "bound", "seen", "volumes", "sandbox", "started", "running",
];

/// Seconds since the Unix epoch, microsecond precision (0 if the clock is before it).
pub fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Record that pod `namespace/name` reached `stage` now.
pub fn mark(namespace: &str, name: &str, stage: &'static str) {
    tracing::info!(
        target: "daas::podstart",
        pod = %format_args!("{namespace}/{name}"),
        stage,
        t = %format_args!("{:.6}", epoch_seconds()),
        "podstart"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_is_after_2020_and_monotone_enough() {
        let a = epoch_seconds();
        let b = epoch_seconds();
        assert!(a > 1_577_836_800.0, "{a}");
        assert!(b >= a);
    }
}
