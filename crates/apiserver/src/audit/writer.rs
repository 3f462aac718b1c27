//! The audit log file: a writer thread behind a bounded channel (a full buffer makes the
//! request wait, upstream's blocking mode), the hash chain and signed checkpoints of
//! [`super::chain`], and rotation by size (`--audit-log-maxsize`, `--audit-log-maxbackup`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::chain::{line_chain, Chainer, CheckpointReason, CheckpointSigner};
use super::{AuditSink, Event};

#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log writer thread: {0}")]
    Thread(std::io::Error),
}

/// Where and how the log is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogConfig {
    /// The file; `-` writes to standard output (no rotation).
    pub path: PathBuf,
    /// Rotate when the file would grow past this many MiB (0: never).
    pub max_size_mb: u64,
    /// Rotated files kept (0: all).
    pub max_backups: usize,
    /// A checkpoint after this many events...
    pub checkpoint_events: u64,
    /// ...or this long after the first unsigned event.
    pub checkpoint_interval: Duration,
    /// Events buffered between the request path and the writer.
    pub buffer: usize,
}

impl AuditLogConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLogConfig {
            path: path.into(),
            max_size_mb: 100,
            max_backups: 10,
            checkpoint_events: 100,
            checkpoint_interval: Duration::from_secs(10),
            buffer: 1000,
        }
    }

    fn stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

enum Msg {
    Event(Box<Event>),
    Close(oneshot::Sender<()>),
}

/// The file sink. [`AuditLog::close`] writes the shutdown checkpoint.
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditLogError + '_ {
    move |source| AuditLogError::Io {
        path: path.display().to_string(),
        source,
    }
}

enum Out {
    Stdout(std::io::Stdout),
    File {
        file: std::io::BufWriter<std::fs::File>,
        size: u64,
    },
}

struct Writer {
    cfg: AuditLogConfig,
    signer: Arc<dyn CheckpointSigner>,
    chain: Chainer,
    out: Out,
}

/// The last line's chain value of an existing log (read from its end).
fn last_chain(path: &Path) -> Option<[u8; 32]> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut want = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(want);
        f.seek(SeekFrom::Start(start)).ok()?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).ok()?;
        let trimmed = buf.strip_suffix(b"\n").unwrap_or(&buf);
        match trimmed.iter().rposition(|b| *b == b'\n') {
            Some(p) => return line_chain(&trimmed[p + 1..]),
            None if start == 0 => return line_chain(trimmed),
            None => want *= 4,
        }
    }
}

fn open_append(path: &Path) -> Result<(std::fs::File, u64), AuditLogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts.open(path).map_err(io_err(path))?;
    let size = f.metadata().map_err(io_err(path))?.len();
    Ok((f, size))
}

impl Writer {
    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        match &mut self.out {
            Out::Stdout(s) => {
                let mut l = s.lock();
                l.write_all(line)?;
                l.flush()
            }
            Out::File { file, size } => {
                file.write_all(line)?;
                *size += line.len() as u64;
                Ok(())
            }
        }
    }

    fn flush(&mut self, sync: bool) -> std::io::Result<()> {
        if let Out::File { file, .. } = &mut self.out {
            file.flush()?;
            if sync {
                file.get_ref().sync_data()?;
            }
        }
        Ok(())
    }

    fn checkpoint(&mut self, reason: CheckpointReason) -> std::io::Result<()> {
        let line =
            self.chain
                .checkpoint_line(self.signer.as_ref(), reason, chrono::Utc::now(), true);
        self.write(&line)
    }

    fn rotate_if_needed(&mut self, next: usize) -> std::io::Result<()> {
        let max = self.cfg.max_size_mb.saturating_mul(1024 * 1024);
        let Out::File { size, .. } = &self.out else {
            return Ok(());
        };
        if max == 0 || *size == 0 || *size + next as u64 <= max {
            return Ok(());
        }
        self.checkpoint(CheckpointReason::Rotate)?;
        self.flush(true)?;
        let backup = backup_name(&self.cfg.path, chrono::Utc::now());
        std::fs::rename(&self.cfg.path, &backup)?;
        let (f, size) = open_append(&self.cfg.path).map_err(std::io::Error::other)?;
        self.out = Out::File {
            file: std::io::BufWriter::new(f),
            size,
        };
        self.checkpoint(CheckpointReason::Continue)?;
        prune_backups(&self.cfg.path, self.cfg.max_backups);
        Ok(())
    }

    fn event(&mut self, ev: Event) -> std::io::Result<()> {
        let value = super::event_value(&ev);
        // The chain annotation adds about 110 bytes; rotate before chaining the line so that
        // the rotation checkpoints come before it.
        let estimate = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0) + 128;
        self.rotate_if_needed(estimate)?;
        let line = self.chain.event_line(value);
        self.write(&line)?;
        if self.chain.since_checkpoint >= self.cfg.checkpoint_events.max(1) {
            self.checkpoint(CheckpointReason::Interval)?;
        }
        Ok(())
    }
}

/// `audit.log` -> `audit-2026-01-02T03-04-05.678.log` (lumberjack's naming; sorts by time).
pub fn backup_name(path: &Path, at: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!(
        "{stem}-{}{ext}",
        at.format("%Y-%m-%dT%H-%M-%S%.3f")
    ))
}

/// Rotated files of `path`, oldest first.
pub fn backups(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}-", stem.to_string_lossy());
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(&ext))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn prune_backups(path: &Path, keep: usize) {
    if keep == 0 {
        return;
    }
    let all = backups(path);
    if all.len() > keep {
        for old in &all[..all.len() - keep] {
            if let Err(e) = std::fs::remove_file(old) {
                tracing::warn!(file = %old.display(), error = %e, "removing an old audit log");
            }
        }
    }
}

impl AuditLog {
    /// Open (append to) the log, write the session's start checkpoint and start the writer.
    pub fn open(
        cfg: AuditLogConfig,
        signer: Arc<dyn CheckpointSigner>,
    ) -> Result<AuditLog, AuditLogError> {
        let (out, prev) = if cfg.stdout() {
            (Out::Stdout(std::io::stdout()), None)
        } else {
            let prev = last_chain(&cfg.path);
            let (f, size) = open_append(&cfg.path)?;
            if size > 0 && prev.is_none() {
                tracing::warn!(path = %cfg.path.display(), "the audit log's last line has no chain value; starting a new chain (verification will report the break)");
            }
            (
                Out::File {
                    file: std::io::BufWriter::new(f),
                    size,
                },
                prev,
            )
        };
        let continues = prev.is_some();
        let mut w = Writer {
            signer,
            chain: Chainer::new(prev),
            out,
            cfg: cfg.clone(),
        };
        let start = w.chain.checkpoint_line(
            w.signer.as_ref(),
            CheckpointReason::Start,
            chrono::Utc::now(),
            continues,
        );
        w.write(&start).map_err(io_err(&cfg.path))?;
        w.flush(true).map_err(io_err(&cfg.path))?;
        let (tx, rx) = mpsc::channel(cfg.buffer.max(1));
        let thread = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                // Requests wait for it once its buffer is full.
                daas_sched::latency_critical("audit writer");
                run(w, rx)
            })
            .map_err(AuditLogError::Thread)?;
        Ok(AuditLog {
            tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Write the shutdown checkpoint and stop the writer (events after it are not logged).
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
        }
        let thread = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

#[async_trait]
impl AuditSink for AuditLog {
    async fn write(&self, event: Event) {
        if self.tx.send(Msg::Event(Box::new(event))).await.is_err() {
            tracing::warn!("audit log closed; event not written");
        }
    }
}

fn run(mut w: Writer, mut rx: mpsc::Receiver<Msg>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "audit log writer cannot start");
            return;
        }
    };
    rt.block_on(async move {
        let report = |r: std::io::Result<()>| {
            if let Err(e) = r {
                tracing::error!(error = %e, "writing the audit log");
            }
        };
        // When the oldest unsigned event must be signed by.
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if w.chain.since_checkpoint == 0 {
                deadline = None;
            } else if deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + w.cfg.checkpoint_interval);
            }
            let msg = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => {
                        report(w.checkpoint(CheckpointReason::Interval));
                        report(w.flush(false));
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            match msg {
                Some(Msg::Event(ev)) => {
                    let r = w.event(*ev);
                    report(r);
                    if rx.is_empty() {
                        report(w.flush(false));
                    }
                }
                Some(Msg::Close(ack)) => {
                    report(w.checkpoint(CheckpointReason::Shutdown));
                    report(w.flush(true));
                    let _ = ack.send(());
                    return;
                }
                None => {
                    report(w.checkpoint(CheckpointReason::Shutdown));
                    report(w.flush(true));
                    return;
                }
            }
        }
    });
}
