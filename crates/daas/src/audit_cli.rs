//! The audit log's flags of `daas master` / `daas up` (upstream's names; also config file keys)
//! and `daas audit verify`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use daas_master::audit::chain::{verify_files, Origin};
use daas_master::audit::writer::{backups, AuditLogConfig};
use daas_master::audit::{AuditConfig, Policy};

#[derive(Args, Clone, Debug)]
pub struct AuditArgs {
    /// Audit log file (audit.k8s.io/v1 events, one JSON line each, hash-chained with
    /// enclave-signed checkpoints); `-` writes to standard output. Default:
    /// `<data-dir>/audit/audit.log`.
    #[arg(long)]
    pub audit_log_path: Option<String>,
    /// Write no audit log.
    #[arg(long)]
    pub no_audit_log: bool,
    /// audit.k8s.io/v1 Policy (YAML). Default: the built-in policy (every mutating request and
    /// every authentication failure at Metadata, reads not logged).
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// Rotate the log when it would grow past this many MiB (0: never).
    #[arg(long, default_value_t = 100)]
    pub audit_log_maxsize: u64,
    /// Rotated log files kept (0: all).
    #[arg(long, default_value_t = 10)]
    pub audit_log_maxbackup: usize,
    /// Write a signed checkpoint after this many events...
    #[arg(long, default_value_t = 100)]
    pub audit_checkpoint_events: u64,
    /// ...or this long after the oldest unsigned event (`10s`, `500ms`, ...).
    #[arg(long, default_value = "10s", value_parser = daas_master::controlplane::parse_duration)]
    pub audit_checkpoint_interval: Duration,
    /// Events buffered for the writer; when full, requests wait (upstream's blocking mode).
    #[arg(long, default_value_t = 1000)]
    pub audit_log_buffer_size: usize,
}

impl AuditArgs {
    /// The master's audit configuration; a policy file that does not parse is an error here.
    pub fn config(&self, data_dir: &Path) -> Result<Option<AuditConfig>> {
        if self.no_audit_log {
            return Ok(None);
        }
        let policy = match &self.audit_policy_file {
            Some(p) => Policy::load(p)?,
            None => Policy::default_policy(),
        };
        let path = match &self.audit_log_path {
            Some(p) if p.is_empty() => bail!("--audit-log-path is empty (use --no-audit-log)"),
            Some(p) => PathBuf::from(p),
            None => data_dir.join("audit").join("audit.log"),
        };
        let mut log = AuditLogConfig::new(path);
        log.max_size_mb = self.audit_log_maxsize;
        log.max_backups = self.audit_log_maxbackup;
        log.checkpoint_events = self.audit_checkpoint_events.max(1);
        log.checkpoint_interval = self
            .audit_checkpoint_interval
            .max(Duration::from_millis(10));
        log.buffer = self.audit_log_buffer_size.max(1);
        Ok(Some(AuditConfig { log, policy }))
    }
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Verify audit log files (oldest first; a single current file also takes its rotated
    /// predecessors beside it): the hash chain and the enclave signatures of the checkpoints.
    /// Exits non-zero naming the first bad line.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Log files, oldest first.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Trusted enclave public key (hex Ed25519; repeat for the keys of earlier master runs).
    #[arg(long = "enclave-key")]
    pub enclave_key: Vec<String>,
    /// Trust the key of this master (https://host:port), verified by attested TLS.
    #[arg(long)]
    pub master: Vec<String>,
    /// PEM root for the master's attestation documents (the simulated enclave's dev root).
    #[arg(long)]
    pub trust_root: Option<PathBuf>,
    /// Expected PCR value for the master, `index=hex` (repeatable).
    #[arg(long = "expect-pcr")]
    pub expect_pcr: Vec<String>,
    /// Ledger endpoint: the master's expected PCRs are read from the enclave configuration
    /// registered there (else --expect-pcr is required with --master).
    #[arg(long, env = "SUI_RPC_ENDPOINT")]
    pub chain: Option<String>,
    /// Also take the rotated files of a single given log (`audit-<time>.log` beside it).
    #[arg(long)]
    pub with_backups: bool,
}

pub async fn run(cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Verify(a) => verify(a).await,
    }
}

async fn verify(a: VerifyArgs) -> Result<()> {
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for k in &a.enclave_key {
        let b = hex::decode(k.trim()).context("--enclave-key is not hex")?;
        keys.push(
            b.try_into()
                .map_err(|_| anyhow::anyhow!("--enclave-key must be 32 bytes (64 hex digits)"))?,
        );
    }
    if !a.master.is_empty() {
        let mut expected = Vec::new();
        for e in &a.expect_pcr {
            let (i, v) = e.split_once('=').context("--expect-pcr takes index=hex")?;
            expected.push((i.parse::<u16>().context("PCR index")?, v.to_string()));
        }
        let policy = daas_master::attested::AttestationPolicy::from_options(
            a.trust_root.as_deref(),
            expected.iter().map(|(i, v)| (*i, v.as_str())),
            match &a.chain {
                Some(c) => Some(crate::remote(&crate::ChainRef { chain: c.clone() })?),
                None => None,
            },
        )?;
        let urls: Vec<String> = a
            .master
            .iter()
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .collect();
        let c = daas_protocol::cluster::attest_all(&urls, &policy, false).await?;
        for m in &c.attested {
            let k = m
                .attestation
                .public_key
                .as_ref()
                .context("the master's attestation carries no public key")?;
            keys.push(
                k.as_slice()
                    .try_into()
                    .context("the master's attested key is not 32 bytes")?,
            );
        }
    }
    if keys.is_empty() {
        bail!("give the trusted key: --enclave-key <hex> or --master <url>");
    }
    let mut paths = Vec::new();
    if a.with_backups && a.files.len() == 1 {
        paths.extend(backups(&a.files[0]));
    }
    paths.extend(a.files.iter().cloned());
    let mut files = Vec::new();
    for p in &paths {
        let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        files.push((p.display().to_string(), data));
    }
    let r = verify_files(&files, &keys)?;
    println!(
        "verified {} events in {} checkpoints",
        r.events, r.checkpoints
    );
    match &r.origin {
        Origin::Genesis => {
            println!("chain starts at its genesis (complete from the first file's start)")
        }
        Origin::Continues(prev) => {
            println!("chain continues from {prev} (an earlier file that was not given)")
        }
    }
    println!("{}", r.last_checkpoint);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: AuditArgs,
    }

    #[test]
    fn flags() {
        let dir = tempfile::tempdir().unwrap();
        let t = T::parse_from(["t"]);
        let c = t.a.config(dir.path()).unwrap().unwrap();
        assert_eq!(c.log.path, dir.path().join("audit/audit.log"));
        assert_eq!((c.log.max_size_mb, c.log.max_backups), (100, 10));
        assert!(T::parse_from(["t", "--no-audit-log"])
            .a
            .config(dir.path())
            .unwrap()
            .is_none());
        let bad = dir.path().join("p.yaml");
        std::fs::write(
            &bad,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n",
        )
        .unwrap();
        let t = T::parse_from([
            "t",
            "--audit-policy-file",
            bad.to_str().unwrap(),
            "--audit-log-path",
            "-",
            "--audit-checkpoint-interval",
            "2s",
        ]);
        let e = t.a.config(dir.path()).unwrap_err().to_string();
        assert!(e.contains("p.yaml") && e.contains("Loud"), "{e}");
    }
}
