//! Small binary encodings for records kept by the embedded backend.
//!
//! All integers are little-endian; byte strings are `u32` length-prefixed. Values inside records
//! are already sealed (see [`crate::seal`]); nothing here ever holds plaintext.

use crate::{EventKind, Revision, StoreError};

/// Live key record: revisions, version and the sealed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub sealed: Vec<u8>,
}

/// One history entry (the key of the history table is the revision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HistoryRecord {
    pub kind: EventKind,
    pub key: String,
    /// For Put: the new record. For Delete: the deleted record with `mod_revision` = deletion
    /// revision (value = last value).
    pub kv: KeyRecord,
    pub prev: Option<KeyRecord>,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupted {what} record"))
}

struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(corrupt(self.what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64, StoreError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        let n = u32::from_le_bytes(a) as usize;
        self.take(n)
    }
    fn finish(&self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(corrupt(self.what))
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_record(out: &mut Vec<u8>, r: &KeyRecord) {
    out.extend_from_slice(&r.create_revision.to_le_bytes());
    out.extend_from_slice(&r.mod_revision.to_le_bytes());
    out.extend_from_slice(&r.version.to_le_bytes());
    put_bytes(out, &r.sealed);
}

fn read_record(r: &mut Reader<'_>) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        create_revision: r.i64()?,
        mod_revision: r.i64()?,
        version: r.i64()?,
        sealed: r.bytes()?.to_vec(),
    })
}

impl KeyRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.sealed.len());
        put_record(&mut out, self);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader { buf, what: "key" };
        let rec = read_record(&mut r)?;
        r.finish()?;
        Ok(rec)
    }
}

impl HistoryRecord {
    pub fn encode(&self) -> Vec<u8> {
        let prev_len = self.prev.as_ref().map(|p| 28 + p.sealed.len()).unwrap_or(0);
        let mut out =
            Vec::with_capacity(2 + 4 + self.key.len() + 28 + self.kv.sealed.len() + prev_len);
        out.push(match self.kind {
            EventKind::Put => 1,
            EventKind::Delete => 2,
        });
        put_bytes(&mut out, self.key.as_bytes());
        put_record(&mut out, &self.kv);
        match &self.prev {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                put_record(&mut out, p);
            }
        }
        out
    }

    /// The encoding of this entry with no previous state (the write-ahead log's record: replay
    /// reads the previous state from the live table).
    pub fn encode_without_prev(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 4 + self.key.len() + 28 + self.kv.sealed.len());
        out.push(match self.kind {
            EventKind::Put => 1,
            EventKind::Delete => 2,
        });
        put_bytes(&mut out, self.key.as_bytes());
        put_record(&mut out, &self.kv);
        out.push(0);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader {
            buf,
            what: "history",
        };
        let kind = match r.u8()? {
            1 => EventKind::Put,
            2 => EventKind::Delete,
            _ => return Err(corrupt("history")),
        };
        let key = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| corrupt("history"))?;
        let kv = read_record(&mut r)?;
        let prev = match r.u8()? {
            0 => None,
            1 => Some(read_record(&mut r)?),
            _ => return Err(corrupt("history")),
        };
        r.finish()?;
        Ok(HistoryRecord {
            kind,
            key,
            kv,
            prev,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: i64) -> KeyRecord {
        KeyRecord {
            create_revision: n,
            mod_revision: n + 1,
            version: n + 2,
            sealed: vec![n as u8; 5],
        }
    }

    #[test]
    fn key_record_roundtrip() {
        let r = rec(3);
        assert_eq!(KeyRecord::decode(&r.encode()).expect("decode"), r);
        let mut enc = r.encode();
        enc.push(0);
        assert!(KeyRecord::decode(&enc).is_err());
        assert!(KeyRecord::decode(&enc[..10]).is_err());
    }

    #[test]
    fn history_roundtrip() {
        for h in [
            HistoryRecord {
                kind: EventKind::Put,
                key: "/a/b".into(),
                kv: rec(1),
                prev: None,
            },
            HistoryRecord {
                kind: EventKind::Delete,
                key: "".into(),
                kv: rec(9),
                prev: Some(rec(4)),
            },
        ] {
            let enc = h.encode();
            assert_eq!(HistoryRecord::decode(&enc).expect("decode"), h);
            for n in 0..enc.len() {
                assert!(HistoryRecord::decode(&enc[..n]).is_err());
            }
        }
    }
}
