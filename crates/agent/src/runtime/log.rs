//! CRI container log files: `<RFC3339Nano> stdout|stderr F|P <msg>` per line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};

use super::{Result, RuntimeError};

/// Output stream of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLogLine {
    pub timestamp: DateTime<Utc>,
    pub stream: LogStream,
    /// `P` tag: the message continues on the next line of the same stream.
    pub partial: bool,
    /// The message without the trailing newline.
    pub message: String,
}

/// Parses one line of a CRI log file (with or without the trailing newline). Returns `None` if the line is not in
/// the CRI format.
pub fn parse_cri_log_line(line: &str) -> Option<CriLogLine> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let mut parts = line.splitn(4, ' ');
    let ts = parts.next()?;
    let stream = match parts.next()? {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        _ => return None,
    };
    let tags = parts.next()?;
    // Tags are ':'-separated; the first one is F (full) or P (partial).
    let partial = match tags.split(':').next()? {
        "F" => false,
        "P" => true,
        _ => return None,
    };
    let message = parts.next().unwrap_or("").to_string();
    let timestamp = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
    Some(CriLogLine {
        timestamp,
        stream,
        partial,
        message,
    })
}

/// Reads a CRI log file line by line, optionally following it as it grows (like `tail -f`).
pub struct CriLogReader {
    path: PathBuf,
    reader: BufReader<tokio::fs::File>,
    follow: bool,
    poll: Duration,
    pending: String,
}

impl CriLogReader {
    /// Opens `path`. With `follow`, [`next_line`](Self::next_line) waits for more data at end of file instead of
    /// returning `None` (cancel the future / drop the reader to stop).
    pub async fn open(path: impl AsRef<Path>, follow: bool) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| RuntimeError::io(&path, e))?;
        Ok(CriLogReader {
            path,
            reader: BufReader::new(file),
            follow,
            poll: Duration::from_millis(200),
            pending: String::new(),
        })
    }

    /// Sets the polling interval used while following (default 200 ms).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Skips to the end of the file (to follow only new output).
    pub async fn seek_to_end(&mut self) -> Result<()> {
        self.pending.clear();
        self.reader
            .seek(std::io::SeekFrom::End(0))
            .await
            .map(|_| ())
            .map_err(|e| RuntimeError::io(&self.path, e))
    }

    /// Next parsed line. Lines not in CRI format are skipped. `None` at end of file when not following.
    pub async fn next_line(&mut self) -> Result<Option<CriLogLine>> {
        loop {
            let n = self
                .reader
                .read_line(&mut self.pending)
                .await
                .map_err(|e| RuntimeError::io(&self.path, e))?;
            if n > 0 && self.pending.ends_with('\n') {
                let line = std::mem::take(&mut self.pending);
                if let Some(parsed) = parse_cri_log_line(&line) {
                    return Ok(Some(parsed));
                }
                continue;
            }
            if n > 0 {
                // Incomplete last line: wait for the rest while following.
                if !self.follow {
                    let line = std::mem::take(&mut self.pending);
                    return Ok(parse_cri_log_line(&line));
                }
            } else if !self.follow {
                return Ok(None);
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Next complete message: partial (`P`) lines are joined with the following line of the same stream.
    pub async fn next_message(&mut self) -> Result<Option<CriLogLine>> {
        let mut acc: Option<CriLogLine> = None;
        loop {
            let Some(line) = self.next_line().await? else {
                return Ok(acc);
            };
            let merged = match acc.take() {
                Some(mut a) if a.stream == line.stream => {
                    a.message.push_str(&line.message);
                    a.partial = line.partial;
                    a.timestamp = line.timestamp;
                    a
                }
                // A partial line of another stream is emitted as is.
                Some(a) => return Ok(Some(a)),
                None => line,
            };
            if !merged.partial {
                return Ok(Some(merged));
            }
            acc = Some(merged);
        }
    }
}

/// Reads all complete messages of a CRI log file (no following).
pub async fn read_messages(path: impl AsRef<Path>) -> Result<Vec<CriLogLine>> {
    let mut r = CriLogReader::open(path, false).await?;
    let mut out = Vec::new();
    while let Some(m) = r.next_message().await? {
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parse() {
        let l = parse_cri_log_line("2016-10-06T00:17:09.669794202Z stdout F hello world\n")
            .expect("parse");
        assert_eq!(l.stream, LogStream::Stdout);
        assert!(!l.partial);
        assert_eq!(l.message, "hello world");
        assert_eq!(l.timestamp.timestamp_subsec_nanos(), 669794202);
        let l =
            parse_cri_log_line("2016-10-06T00:17:09.669794202+02:00 stderr P part").expect("parse");
        assert_eq!(l.stream, LogStream::Stderr);
        assert!(l.partial);
        assert_eq!(l.message, "part");
        let l = parse_cri_log_line("2016-10-06T00:17:09Z stdout F").expect("empty message");
        assert_eq!(l.message, "");
        let l = parse_cri_log_line("2016-10-06T00:17:09Z stdout F:x  two  spaces ").expect("tags");
        assert_eq!(l.message, " two  spaces ");
        assert!(parse_cri_log_line("garbage").is_none());
        assert!(parse_cri_log_line("2016-10-06T00:17:09Z stdin F x").is_none());
        assert!(parse_cri_log_line("notatime stdout F x").is_none());
        assert!(parse_cri_log_line("2016-10-06T00:17:09Z stdout X x").is_none());
    }

    #[tokio::test]
    async fn reader_follow_and_partial() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let mut f = std::fs::File::create(&path).expect("create");
        writeln!(f, "2024-01-01T00:00:00.1Z stdout P hel").expect("write");
        writeln!(f, "2024-01-01T00:00:00.2Z stdout F lo").expect("write");
        write!(f, "2024-01-01T00:00:00.3Z stderr F no newline").expect("write");
        f.flush().expect("flush");
        let msgs = read_messages(&path).await.expect("read");
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].message, "hello");
        assert_eq!(msgs[1].message, "no newline");

        let mut r = CriLogReader::open(&path, true)
            .await
            .expect("open")
            .with_poll_interval(Duration::from_millis(10));
        assert_eq!(
            r.next_message().await.expect("msg").expect("some").message,
            "hello"
        );
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writeln!(f, " more").expect("write");
            writeln!(f, "2024-01-01T00:00:00.4Z stdout F later").expect("write");
        });
        let m = tokio::time::timeout(Duration::from_secs(5), r.next_message())
            .await
            .expect("in time");
        assert_eq!(m.expect("ok").expect("some").message, "no newline more");
        let m = tokio::time::timeout(Duration::from_secs(5), r.next_message())
            .await
            .expect("in time");
        assert_eq!(m.expect("ok").expect("some").message, "later");
        writer.await.expect("writer");
        // Following: nothing more arrives, so it keeps waiting.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), r.next_line())
                .await
                .is_err()
        );
    }
}
