//! Write-ahead log in front of the embedded store's redb file.
//!
//! One file (`<redb file>.wal`), zero-filled to its full size when created so that appending a
//! frame rewrites blocks that already exist: `fdatasync` then flushes data only, no file-size or
//! extent metadata. Each group-commit batch is ONE frame, so a batch is durable as a whole or not
//! at all:
//!
//! ```text
//! magic "DWAL" | payload length u32 | first revision i64 | record count u32 | check [8]
//! | payload: AES-256-GCM sealed (AAD = the first 20 header bytes) list of records
//! ```
//!
//! `check` is the first 8 bytes of SHA-256 over the store's log id and the 20 header bytes
//! before it, so a frame boundary can be recognised without the key. The log id is a random
//! value kept in the redb file: a log that belongs to another redb file (a store file copied in
//! without its log) has no frame this store recognises and is ignored, never replayed into the
//! wrong store. The sealed payload (AAD: the log id and the header) hides keys as well as
//! values from whoever reads the file, and authenticates the whole frame. A record is the history entry
//! of one write without its previous state (kind, key, new record with its revision); replay
//! recomputes the previous state from the live table, as the writer did.
//!
//! Frames are appended until the file is full; then the store makes one durable redb commit (a
//! checkpoint: everything in the log is now in redb) and the log starts again at offset 0,
//! overwriting frames that are no longer needed. Revisions grow across such cycles, so the
//! current cycle is the chain of frames from offset 0 whose revisions follow each other; what
//! lies after the chain is a torn last frame or an older cycle's leftovers. Opening scans the
//! chain, replays the frames above redb's durable revision, and looks past the chain's end for a
//! well-formed frame header with a revision above everything known: finding one means a frame
//! in the middle of the log was damaged and records after it would be lost, so the open fails
//! with [`StoreError::WalCorrupt`] instead. Otherwise the bytes where the chain ended are a torn
//! write (never acknowledged) and are zeroed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::codec::HistoryRecord;
use crate::seal::SealingKey;
use crate::{Revision, StoreError};

const MAGIC: &[u8; 4] = b"DWAL";
/// Bytes covered by the header check (magic, length, first revision, count).
const HEADER_BODY: usize = 20;
pub(crate) const HEADER_LEN: usize = HEADER_BODY + 8;
/// Default size of the log file (bytes zero-filled at creation; a checkpoint every time it fills).
pub const DEFAULT_WAL_BYTES: u64 = 8 << 20;
/// Zeros written per call while preallocating.
const FILL_CHUNK: usize = 1 << 20;

fn io_err(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

/// Length of the random id binding a log to its redb file.
pub(crate) const LOG_ID_LEN: usize = 16;

fn header_check(id: &[u8; LOG_ID_LEN], body: &[u8]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(id);
    h.update(body);
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(a)
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&buf[at..at + 8]);
    i64::from_le_bytes(a)
}

/// A well-formed header: payload length, first revision, record count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    len: usize,
    first: Revision,
    count: u32,
}

impl Header {
    fn parse(id: &[u8; LOG_ID_LEN], buf: &[u8], at: usize) -> Option<Header> {
        let h = buf.get(at..at.checked_add(HEADER_LEN)?)?;
        if &h[..4] != MAGIC || h[HEADER_BODY..] != header_check(id, &h[..HEADER_BODY]) {
            return None;
        }
        let first = i64_at(h, 8);
        let count = u32_at(h, 16);
        if first < 1 || count == 0 {
            return None;
        }
        Some(Header {
            len: u32_at(h, 4) as usize,
            first,
            count,
        })
    }

    fn last(&self) -> Revision {
        self.first + Revision::from(self.count) - 1
    }
}

/// One batch read back from the log.
#[derive(Debug)]
pub(crate) struct Frame {
    pub offset: u64,
    pub first: Revision,
    /// Records in revision order: record `i` has revision `first + i`.
    pub records: Vec<HistoryRecord>,
}

/// What [`Wal::open`] found.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The current cycle's frames, in order (the caller skips what redb already holds).
    pub frames: Vec<Frame>,
    /// Offset and length of a torn last write that was zeroed, if any.
    pub torn: Option<(u64, u64)>,
}

/// The open log: the file, where the next frame goes, and whether it can still be trusted.
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    key: SealingKey,
    id: [u8; LOG_ID_LEN],
    offset: u64,
    len: u64,
    /// Set after a failed append: the file's state is unknown, so no further write is taken.
    failed: Option<String>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// The log file name used next to a redb file.
pub(crate) fn wal_path(db_file: &Path) -> PathBuf {
    let mut name = db_file.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

impl Wal {
    /// Open (or create, zero-filled to `size` bytes) the log at `path` and read the current
    /// cycle. `durable` is the revision redb holds durably: frames above it must continue the
    /// chain without a gap. A torn last frame is zeroed; a damaged frame with later records
    /// behind it fails the open with `WalCorrupt`.
    pub(crate) fn open(
        path: &Path,
        key: SealingKey,
        id: [u8; LOG_ID_LEN],
        size: u64,
        durable: Revision,
    ) -> Result<(Wal, Recovered), StoreError> {
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_err(path, "open", e))?;
        let mut len = file.metadata().map_err(|e| io_err(path, "stat", e))?.len();
        if len < size {
            fill_zeros(&mut file, path, len, size)?;
            len = size;
            if created {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // The new directory entry must survive a crash too.
                    File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(|e| io_err(dir, "sync directory", e))?;
                }
            }
        }
        let buf = std::fs::read(path).map_err(|e| io_err(path, "read", e))?;
        let mut wal = Wal {
            file,
            path: path.to_path_buf(),
            key,
            id,
            offset: 0,
            len,
            failed: None,
        };
        let recovered = wal.recover(&buf, durable)?;
        Ok((wal, recovered))
    }

    fn corrupt(&self, offset: u64, reason: &'static str) -> StoreError {
        StoreError::WalCorrupt {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    fn recover(&mut self, buf: &[u8], durable: Revision) -> Result<Recovered, StoreError> {
        let mut frames: Vec<Frame> = Vec::new();
        let mut at = 0usize;
        // Where the chain ends and how far a bad frame there claims to reach.
        let bad_extent = loop {
            let Some(h) = Header::parse(&self.id, buf, at) else {
                break if buf
                    .get(at..)
                    .is_some_and(|rest| rest.iter().take(HEADER_LEN).any(|&b| b != 0))
                {
                    Some(HEADER_LEN)
                } else {
                    None
                };
            };
            if let Some(prev) = frames.last() {
                let expected = prev.first + prev.records.len() as Revision;
                if h.first != expected {
                    // An older cycle's frame: the chain ended cleanly before it.
                    break None;
                }
            }
            let end = at + HEADER_LEN + h.len;
            let Some(sealed) = buf.get(at + HEADER_LEN..end) else {
                break Some(buf.len() - at);
            };
            let records = match self
                .key
                .unseal(&self.aad(&buf[at..at + HEADER_BODY]), sealed)
                .ok()
                .and_then(|p| decode_records(&p, h))
            {
                Some(r) => r,
                None => break Some(HEADER_LEN + h.len),
            };
            frames.push(Frame {
                offset: at as u64,
                first: h.first,
                records,
            });
            at = end;
        };
        let chain_last = frames
            .last()
            .map(|f| f.first + f.records.len() as Revision - 1);
        let known = chain_last.unwrap_or(durable).max(durable);
        // A complete frame with newer revisions after the end means the chain was cut in the
        // middle: refuse rather than drop what follows.
        if let Some(later) = (at + 1..buf.len().saturating_sub(HEADER_LEN - 1))
            .filter(|&i| &buf[i..i + 4] == MAGIC)
            .find(|&i| Header::parse(&self.id, buf, i).is_some_and(|h| h.last() > known))
        {
            warn!(path = %self.path.display(), damaged = at, later, "write-ahead log damaged");
            return Err(self.corrupt(
                at as u64,
                "damaged frame followed by newer frames (records would be lost)",
            ));
        }
        if let Some(first) = frames.first() {
            if first.first > durable + 1 {
                return Err(self.corrupt(
                    first.offset,
                    "log starts after the store's durable revision (records missing)",
                ));
            }
        }
        let torn = match bad_extent {
            Some(extent) => {
                let n = (extent as u64).min(self.len.saturating_sub(at as u64));
                warn!(path = %self.path.display(), offset = at, bytes = n,
                    "torn write at the end of the write-ahead log; discarding it");
                self.file
                    .write_all_at(&vec![0u8; n as usize], at as u64)
                    .and_then(|_| self.file.sync_data())
                    .map_err(|e| io_err(&self.path, "truncate torn tail of", e))?;
                Some((at as u64, n))
            }
            None => None,
        };
        info!(path = %self.path.display(), frames = frames.len(), durable, ?chain_last,
            "write-ahead log read");
        Ok(Recovered { frames, torn })
    }

    /// Build the frame for `records` (revisions `first..`), sealed.
    pub(crate) fn frame(
        &self,
        first: Revision,
        count: u32,
        payload: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let sealed_len = payload.len() + crate::seal::SEAL_OVERHEAD;
        let len = u32::try_from(sealed_len)
            .map_err(|_| StoreError::Backend("write batch too large for one log frame".into()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed_len);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&first.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        let check = header_check(&self.id, &out[..HEADER_BODY]);
        out.extend_from_slice(&check);
        let sealed = self.key.seal(&self.aad(&out[..HEADER_BODY]), payload)?;
        debug_assert_eq!(sealed.len(), sealed_len);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn aad(&self, body: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(LOG_ID_LEN + body.len());
        aad.extend_from_slice(&self.id);
        aad.extend_from_slice(body);
        aad
    }

    /// Whether a frame of `n` bytes fits after the current end of the log.
    pub(crate) fn fits(&self, n: usize) -> bool {
        self.offset + n as u64 <= self.len
    }

    /// Append one frame and make it durable (`fdatasync`). After a failure the log refuses
    /// every later append: whether the frame reached the disk is unknown.
    pub(crate) fn append(&mut self, frame: &[u8]) -> Result<(), StoreError> {
        if let Some(why) = &self.failed {
            return Err(StoreError::Backend(format!(
                "write-ahead log {} failed earlier: {why}",
                self.path.display()
            )));
        }
        crash_point(CrashPoint::MidAppend, || {
            let _ = self
                .file
                .write_all_at(&frame[..frame.len() / 2], self.offset);
        });
        let res = self
            .file
            .write_all_at(frame, self.offset)
            .and_then(|_| self.file.sync_data());
        match res {
            Ok(()) => {
                self.offset += frame.len() as u64;
                self.len = self.len.max(self.offset);
                crash_point(CrashPoint::AfterAppend, || {});
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                self.failed = Some(msg.clone());
                Err(io_err(&self.path, "append to", e))
            }
        }
    }

    /// Whether an append failed (or the store gave up on the log).
    pub(crate) fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Refuse every later append (the store's state no longer matches the log).
    pub(crate) fn fail(&mut self, why: String) {
        self.failed = Some(why);
    }

    /// Start a new cycle at offset 0: redb has just made everything in the log durable.
    pub(crate) fn restart(&mut self) {
        self.offset = 0;
    }

    /// Offset of the next frame.
    #[cfg(test)]
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

fn fill_zeros(file: &mut File, path: &Path, from: u64, to: u64) -> Result<(), StoreError> {
    let zeros = vec![0u8; FILL_CHUNK];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(FILL_CHUNK);
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| io_err(path, "preallocate", e))?;
        at += n as u64;
    }
    file.flush().map_err(|e| io_err(path, "preallocate", e))?;
    file.sync_all().map_err(|e| io_err(path, "sync", e))
}

/// Append one record (a history entry without its previous state) to a frame payload.
pub(crate) fn push_record(payload: &mut Vec<u8>, rec: &HistoryRecord) {
    let enc = rec.encode_without_prev();
    payload.extend_from_slice(&(enc.len() as u32).to_le_bytes());
    payload.extend_from_slice(&enc);
}

fn decode_records(payload: &[u8], h: Header) -> Option<Vec<HistoryRecord>> {
    let mut out = Vec::with_capacity(h.count as usize);
    let mut at = 0usize;
    while at < payload.len() {
        let n = u32_at(payload.get(at..at + 4)?, 0) as usize;
        let rec = HistoryRecord::decode(payload.get(at + 4..at + 4 + n)?).ok()?;
        if rec.kv.mod_revision != h.first + out.len() as Revision || rec.prev.is_some() {
            return None;
        }
        out.push(rec);
        at += 4 + n;
    }
    (out.len() == h.count as usize).then_some(out)
}

/// Places where the crash-test writer can make the process abort (see [`set_crash_point`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CrashPoint {
    None = 0,
    /// Half of a frame written, then abort: a torn last frame.
    MidAppend = 1,
    /// A frame durable, then abort before the batch is applied or anyone answered.
    AfterAppend = 2,
    /// A checkpoint's redb commit durable, then abort before the log restarts.
    AfterCheckpoint = 3,
}

static CRASH_POINT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
static CRASH_AFTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Test hook for the crash tests: abort the process at `point` once it has been passed `after`
/// times. Never set by the product.
#[doc(hidden)]
pub fn set_crash_point(point: CrashPoint, after: u64) {
    CRASH_AFTER.store(after, std::sync::atomic::Ordering::SeqCst);
    CRASH_POINT.store(point as u8, std::sync::atomic::Ordering::SeqCst);
}

pub(crate) fn crash_point(point: CrashPoint, before: impl FnOnce()) {
    use std::sync::atomic::Ordering;
    if CRASH_POINT.load(Ordering::Relaxed) != point as u8 {
        return;
    }
    if CRASH_AFTER
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return;
    }
    before();
    eprintln!("store crash point {point:?} reached: aborting");
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::KeyRecord;
    use crate::EventKind;

    const ID: [u8; LOG_ID_LEN] = [7; LOG_ID_LEN];

    fn rec(key: &str, rev: Revision, value: &[u8]) -> HistoryRecord {
        HistoryRecord {
            kind: EventKind::Put,
            key: key.to_string(),
            kv: KeyRecord {
                create_revision: rev,
                mod_revision: rev,
                version: 1,
                sealed: value.to_vec(),
            },
            prev: None,
        }
    }

    /// Append one frame holding `n` records from revision `first`; its offset and length.
    fn append(wal: &mut Wal, first: Revision, n: u32, value: &[u8]) -> (u64, usize) {
        let mut payload = Vec::new();
        for i in 0..n {
            let r = first + Revision::from(i);
            push_record(&mut payload, &rec(&format!("/k/{r}"), r, value));
        }
        let frame = wal.frame(first, n, &payload).expect("frame");
        assert!(wal.fits(frame.len()));
        let at = wal.offset();
        wal.append(&frame).expect("append");
        (at, frame.len())
    }

    fn revs(r: &Recovered) -> Vec<Revision> {
        r.frames
            .iter()
            .flat_map(|f| f.records.iter().map(|r| r.kv.mod_revision))
            .collect()
    }

    fn setup() -> (tempfile::TempDir, PathBuf, SealingKey) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.redb.wal");
        (dir, path, SealingKey::generate())
    }

    #[test]
    fn frames_come_back_in_order_and_the_file_is_preallocated() {
        let (_d, path, key) = setup();
        let (mut wal, rec0) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("open");
        assert!(rec0.frames.is_empty() && rec0.torn.is_none());
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 64 << 10);
        append(&mut wal, 1, 3, b"a");
        append(&mut wal, 4, 1, b"b");
        drop(wal);
        let (_, got) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("reopen");
        assert_eq!(revs(&got), vec![1, 2, 3, 4]);
        assert_eq!(got.frames[1].records[0].kv.sealed, b"b");
        // The caller says redb already holds up to 4: the frames still read, nothing is missing.
        let (_, got) = Wal::open(&path, key, ID, 64 << 10, 4).expect("reopen");
        assert_eq!(revs(&got), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_new_cycle_ends_before_the_older_cycles_leftovers() {
        let (_d, path, key) = setup();
        let (mut wal, _) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("open");
        for r in 1..=10 {
            append(&mut wal, r, 1, &[0u8; 100]);
        }
        // Checkpoint at 10: the next cycle overwrites the start with smaller frames.
        wal.restart();
        append(&mut wal, 11, 1, b"x");
        append(&mut wal, 12, 1, b"y");
        drop(wal);
        let (_, got) = Wal::open(&path, key, ID, 64 << 10, 10).expect("reopen");
        assert_eq!(revs(&got), vec![11, 12]);
    }

    #[test]
    fn torn_last_frame_is_zeroed_and_the_next_open_is_clean() {
        let (_d, path, key) = setup();
        let (mut wal, _) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("open");
        append(&mut wal, 1, 2, b"a");
        let (at, len) = append(&mut wal, 3, 2, b"b");
        drop(wal);
        // Only the first half of the last frame reached the disk.
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.write_all_at(&vec![0u8; len / 2], at + (len / 2) as u64)
            .expect("tear");
        drop(f);
        let (_, got) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("reopen");
        assert_eq!(revs(&got), vec![1, 2]);
        assert_eq!(got.torn, Some((at, len as u64)));
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            bytes[at as usize..].iter().all(|&b| b == 0),
            "torn bytes left"
        );
        let (_, again) = Wal::open(&path, key, ID, 64 << 10, 0).expect("third open");
        assert_eq!(revs(&again), vec![1, 2]);
        assert!(again.torn.is_none());
    }

    #[test]
    fn a_damaged_frame_before_newer_ones_fails_with_a_typed_error() {
        let (_d, path, key) = setup();
        let (mut wal, _) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("open");
        append(&mut wal, 1, 1, b"a");
        let (at, _) = append(&mut wal, 2, 1, b"b");
        append(&mut wal, 3, 1, b"c");
        drop(wal);
        let before = std::fs::read(&path).expect("read");
        for flip in [4usize, 10, HEADER_LEN + 20] {
            let mut bytes = before.clone();
            bytes[at as usize + flip] ^= 0x80;
            std::fs::write(&path, &bytes).expect("write");
            match Wal::open(&path, key.clone(), ID, 64 << 10, 0) {
                Err(StoreError::WalCorrupt { offset, .. }) => assert_eq!(offset, at, "flip {flip}"),
                other => panic!("flip {flip}: expected WalCorrupt, got {other:?}"),
            }
            // Nothing was "repaired" away.
            assert_eq!(std::fs::read(&path).expect("read"), bytes);
        }
    }

    #[test]
    fn a_log_that_starts_past_the_durable_revision_is_refused() {
        let (_d, path, key) = setup();
        let (mut wal, _) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("open");
        append(&mut wal, 5, 1, b"a");
        drop(wal);
        assert!(matches!(
            Wal::open(&path, key, ID, 64 << 10, 2),
            Err(StoreError::WalCorrupt { .. })
        ));
    }

    #[test]
    fn the_host_reading_the_log_sees_no_keys_and_no_values() {
        let (_d, path, key) = setup();
        let (mut wal, _) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("open");
        let mut payload = Vec::new();
        push_record(
            &mut payload,
            &rec("/registry/secrets/topsecret", 1, b"hunter2-plaintext"),
        );
        let frame = wal.frame(1, 1, &payload).expect("frame");
        wal.append(&frame).expect("append");
        drop(wal);
        let bytes = std::fs::read(&path).expect("read");
        for needle in [&b"topsecret"[..], b"hunter2", b"/registry/"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} readable in the log",
                String::from_utf8_lossy(needle)
            );
        }
        // Another key cannot read it (the frame does not authenticate: it reads as torn).
        let (_, got) = Wal::open(&path, SealingKey::generate(), ID, 64 << 10, 0).expect("open");
        assert!(got.frames.is_empty());
    }

    #[test]
    fn another_stores_log_is_ignored_not_replayed() {
        let (_d, path, key) = setup();
        let (mut wal, _) = Wal::open(&path, key.clone(), ID, 64 << 10, 0).expect("open");
        append(&mut wal, 1, 2, b"a");
        append(&mut wal, 3, 2, b"b");
        drop(wal);
        // Same key, another redb file (another id): nothing of this log is its own.
        let (_, got) = Wal::open(&path, key.clone(), [9; LOG_ID_LEN], 64 << 10, 0).expect("open");
        assert!(got.frames.is_empty());
    }

    #[test]
    fn an_append_after_a_failure_is_refused() {
        let (_d, path, key) = setup();
        let (mut wal, _) = Wal::open(&path, key, ID, 64 << 10, 0).expect("open");
        wal.fail("disk on fire".into());
        let frame = wal.frame(1, 1, b"").expect("frame");
        assert!(matches!(wal.append(&frame), Err(StoreError::Backend(_))));
    }
}
