//! `daas master` / `daas up` flags of API priority and fairness (upstream's names; also config
//! file keys: `enable-priority-and-fairness`, `max-requests-inflight`,
//! `max-mutating-requests-inflight`).

use clap::{ArgAction, Args};
use daas_master::flowcontrol::FlowControlConfig;

#[derive(Args, Clone, Debug)]
pub struct FlowControlArgs {
    /// Queue and limit API requests by priority level and fair per user (API Priority and
    /// Fairness); `false` serves every request at once.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub enable_priority_and_fairness: bool,
    /// With priority and fairness, this plus `--max-mutating-requests-inflight` is the number of
    /// requests executing at once, shared by the priority levels.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// See `--max-requests-inflight`.
    #[arg(long, default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
}

impl FlowControlArgs {
    /// The flow controller's limits; None when priority and fairness is off.
    pub fn config(&self) -> anyhow::Result<Option<FlowControlConfig>> {
        if !self.enable_priority_and_fairness {
            return Ok(None);
        }
        let cfg = FlowControlConfig {
            max_requests_inflight: self.max_requests_inflight,
            max_mutating_requests_inflight: self.max_mutating_requests_inflight,
            ..Default::default()
        };
        cfg.validate()?;
        Ok(Some(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        f: FlowControlArgs,
    }

    #[test]
    fn flags_parse_as_upstream() {
        let t = T::parse_from(["t"]);
        assert_eq!(t.f.config().unwrap(), Some(FlowControlConfig::default()));
        let t = T::parse_from([
            "t",
            "--max-requests-inflight",
            "4",
            "--max-mutating-requests-inflight=2",
        ]);
        let c = t.f.config().unwrap().unwrap();
        assert_eq!(c.server_concurrency_limit(), 6);
        let t = T::parse_from(["t", "--enable-priority-and-fairness=false"]);
        assert_eq!(t.f.config().unwrap(), None);
        let t = T::parse_from([
            "t",
            "--max-requests-inflight=0",
            "--max-mutating-requests-inflight=0",
        ]);
        assert!(t.f.config().is_err());
    }
}
