//! Tamper evidence of an audit log: a SHA-256 hash chain over every line and checkpoints signed
//! by the master's enclave key.
//!
//! * An event line carries the annotation [`CHAIN_ANNOTATION`] =
//!   hex SHA-256(`"daas-audit-chain-v1\0"` || previous chain value || canonical JSON of the
//!   line without that annotation). Canonical JSON: keys sorted, no whitespace.
//! * A checkpoint line (`apiVersion: audit.daas.io/v1`, `kind: Checkpoint`) is chained the same
//!   way (over the line without `chain` and `signature`) and carries `signature`: the enclave's
//!   Ed25519 signature of the intent message ([`CHECKPOINT_INTENT`], `timestampMs`, BCS of
//!   `{domain, chain, events}`), so that recomputing the chain after an edit breaks it.
//! * Every file starts with a checkpoint carrying `prev`: for a master's first file the genesis
//!   value SHA-256(`"daas-audit-genesis-v1\0"` || enclave public key || its timestamp); after a
//!   rotation or a restart the previous line's chain value, so files and sessions link up.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The annotation holding an event line's chain value.
pub const CHAIN_ANNOTATION: &str = "audit.daas.io/chain";
/// `apiVersion` of checkpoint lines.
pub const CHECKPOINT_API_VERSION: &str = "audit.daas.io/v1";
pub const CHECKPOINT_KIND: &str = "Checkpoint";
/// Intent byte of checkpoint signatures (1 slash reports, 2 state anchors, 3 usage reports).
pub const CHECKPOINT_INTENT: u8 = 4;
const CHECKPOINT_DOMAIN: &[u8] = b"daas-audit-checkpoint-v1";

/// Signs checkpoints: the master's enclave key (`Enclave::sign`).
pub trait CheckpointSigner: Send + Sync + 'static {
    /// The Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// Ed25519 signature of `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; 64];
}

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointReason {
    /// First line of a master's log session (a new file, or appended after a restart).
    Start,
    /// First line of the file that follows a rotation.
    Continue,
    /// Every N events or T seconds.
    Interval,
    /// Last line of a file before rotation.
    Rotate,
    /// Last line at clean shutdown.
    Shutdown,
}

impl CheckpointReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointReason::Start => "start",
            CheckpointReason::Continue => "continue",
            CheckpointReason::Interval => "interval",
            CheckpointReason::Rotate => "rotate",
            CheckpointReason::Shutdown => "shutdown",
        }
    }
}

/// Canonical JSON bytes: object keys sorted, no insignificant whitespace.
pub fn canonical(v: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out.into_bytes()
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write_canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

pub fn genesis(key: &[u8; 32], timestamp: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"daas-audit-genesis-v1\0");
    h.update(key);
    h.update(timestamp.as_bytes());
    h.finalize().into()
}

pub fn link(prev: &[u8; 32], canonical_line: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"daas-audit-chain-v1\0");
    h.update(prev);
    h.update(canonical_line);
    h.finalize().into()
}

/// The bytes a checkpoint signature covers: `intent || timestamp_ms (LE) || BCS(data)` as
/// `daas_tee::intent_message_bcs`, data = `{domain: vector<u8>, chain: vector<u8>, events: u64}`.
pub fn checkpoint_message(chain: &[u8; 32], events: u64, timestamp_ms: u64) -> Vec<u8> {
    let mut out = vec![CHECKPOINT_INTENT];
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.push(CHECKPOINT_DOMAIN.len() as u8);
    out.extend_from_slice(CHECKPOINT_DOMAIN);
    out.push(32);
    out.extend_from_slice(chain);
    out.extend_from_slice(&events.to_le_bytes());
    out
}

fn verify_signature(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(msg, sig)
        .is_ok()
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// The writer's side of the chain.
pub struct Chainer {
    prev: [u8; 32],
    /// Events since the session's start checkpoint.
    events: u64,
    /// Events since the last checkpoint.
    pub since_checkpoint: u64,
}

impl Chainer {
    /// A chain continuing from `prev` (None: the genesis of the start checkpoint).
    pub fn new(prev: Option<[u8; 32]>) -> Self {
        Chainer {
            prev: prev.unwrap_or([0; 32]),
            events: 0,
            since_checkpoint: 0,
        }
    }

    pub fn last(&self) -> [u8; 32] {
        self.prev
    }

    /// An event as one chained line (with its newline).
    pub fn event_line(&mut self, mut ev: Value) -> Vec<u8> {
        if let Some(m) = ev.as_object_mut() {
            if m.get("annotations")
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                m.remove("annotations");
            }
        }
        let c = link(&self.prev, &canonical(&ev));
        if let Some(m) = ev.as_object_mut() {
            let ann = m
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(a) = ann.as_object_mut() {
                a.insert(CHAIN_ANNOTATION.into(), Value::String(hex::encode(c)));
            }
        }
        self.prev = c;
        self.events += 1;
        self.since_checkpoint += 1;
        let mut line = serde_json::to_vec(&ev).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// A signed checkpoint line. `Start` chains from `prev` if the chain continues (an
    /// appended session), else from the genesis of the signer's key.
    pub fn checkpoint_line(
        &mut self,
        signer: &dyn CheckpointSigner,
        reason: CheckpointReason,
        now: chrono::DateTime<chrono::Utc>,
        continues: bool,
    ) -> Vec<u8> {
        let key = signer.public_key();
        let timestamp = super::micro_time(now);
        let ts_ms = now.timestamp_millis().max(0) as u64;
        let mut obj = json!({
            "apiVersion": CHECKPOINT_API_VERSION,
            "kind": CHECKPOINT_KIND,
            "reason": reason.as_str(),
            "timestamp": timestamp,
            "timestampMs": ts_ms,
            "enclaveKey": hex::encode(key),
        });
        match reason {
            CheckpointReason::Start => {
                self.events = 0;
                if !continues {
                    self.prev = genesis(&key, &timestamp);
                }
                obj["prev"] = json!(hex::encode(self.prev));
            }
            CheckpointReason::Continue => obj["prev"] = json!(hex::encode(self.prev)),
            _ => {}
        }
        obj["events"] = json!(self.events);
        let c = link(&self.prev, &canonical(&obj));
        let sig = signer.sign(&checkpoint_message(&c, self.events, ts_ms));
        obj["chain"] = json!(hex::encode(c));
        obj["signature"] = json!(hex::encode(sig));
        self.prev = c;
        self.since_checkpoint = 0;
        let mut line = serde_json::to_vec(&obj).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// The chain value of a log line (an event's annotation or a checkpoint's `chain`).
pub fn line_chain(line: &[u8]) -> Option<[u8; 32]> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let s = v
        .get("chain")
        .or_else(|| v.get("annotations").and_then(|a| a.get(CHAIN_ANNOTATION)))?
        .as_str()?;
    hex32(s)
}

/// Why a log does not verify; `file` and `line` (1-based) name the first bad line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("{file}:{line}: not an audit line: {reason}")]
    BadJson {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("{file}:{line}: hash chain broken (the line or one before it was edited, inserted, deleted or reordered)")]
    ChainBroken { file: String, line: usize },
    #[error("{file}:{line}: checkpoint signature does not verify (the chain was recomputed or the checkpoint forged)")]
    BadCheckpointSignature { file: String, line: usize },
    #[error("{file}:{line}: checkpoint signed by enclave key {key}, which is not a trusted key")]
    WrongKey {
        file: String,
        line: usize,
        key: String,
    },
    #[error("{file}:{line}: checkpoint counts {signed} events but {counted} were chained")]
    EventCount {
        file: String,
        line: usize,
        signed: u64,
        counted: u64,
    },
    #[error("{count} unsigned trailing events after the last checkpoint{}", last.as_ref().map(|l| format!(" ({l})")).unwrap_or_default())]
    UnsignedTail { count: u64, last: Option<String> },
    #[error("no audit lines in the given files")]
    Empty,
}

/// Where the verified chain starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The genesis of the first checkpoint's enclave key: the log is complete from its start.
    Genesis,
    /// Continues from an earlier file that was not given (rotated away): its last chain value.
    Continues(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub file: String,
    pub line: usize,
    pub reason: String,
    pub timestamp: String,
    pub events: u64,
    pub chain: String,
    pub key: String,
}

impl std::fmt::Display for CheckpointInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "last checkpoint {}:{} ({}, {}, {} events, chain {})",
            self.file, self.line, self.reason, self.timestamp, self.events, self.chain
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub checkpoints: u64,
    pub origin: Origin,
    pub last_checkpoint: CheckpointInfo,
}

/// Verify log files, oldest first, against the trusted enclave keys.
pub fn verify_files(
    files: &[(String, Vec<u8>)],
    keys: &[[u8; 32]],
) -> Result<VerifyReport, VerifyError> {
    let mut running: Option<[u8; 32]> = None;
    let mut origin = None;
    let mut events = 0u64;
    let mut session_events = 0u64;
    let mut since = 0u64;
    let mut checkpoints = 0u64;
    let mut last: Option<CheckpointInfo> = None;
    for (name, data) in files {
        let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for (i, raw) in lines.iter().enumerate() {
            let line = i + 1;
            let bad = |reason: String| VerifyError::BadJson {
                file: name.clone(),
                line,
                reason,
            };
            let broken = || VerifyError::ChainBroken {
                file: name.clone(),
                line,
            };
            let v: Value = serde_json::from_slice(raw).map_err(|e| bad(e.to_string()))?;
            let Some(obj) = v.as_object() else {
                return Err(bad("not a JSON object".into()));
            };
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
            let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            if kind == CHECKPOINT_KIND && api == CHECKPOINT_API_VERSION {
                let field = |k: &str| obj.get(k).and_then(Value::as_str);
                let chain = field("chain")
                    .and_then(hex32)
                    .ok_or_else(|| bad("checkpoint without a chain value".into()))?;
                let sig = field("signature")
                    .and_then(|s| hex::decode(s).ok())
                    .ok_or_else(|| bad("checkpoint without a signature".into()))?;
                let key_hex = field("enclaveKey").unwrap_or("").to_string();
                let key = hex32(&key_hex)
                    .ok_or_else(|| bad("checkpoint without an enclave key".into()))?;
                let timestamp = field("timestamp").unwrap_or("").to_string();
                let reason = field("reason").unwrap_or("").to_string();
                let ts_ms = obj.get("timestampMs").and_then(Value::as_u64).unwrap_or(0);
                let signed = obj.get("events").and_then(Value::as_u64).unwrap_or(0);
                let prev = match field("prev") {
                    Some(p) => {
                        let p = hex32(p).ok_or_else(broken)?;
                        match running {
                            None => {
                                origin = Some(if p == genesis(&key, &timestamp) {
                                    Origin::Genesis
                                } else {
                                    Origin::Continues(hex::encode(p))
                                });
                            }
                            Some(r) if r != p => return Err(broken()),
                            Some(_) => {}
                        }
                        p
                    }
                    None if line == 1 => return Err(broken()),
                    None => running.ok_or_else(broken)?,
                };
                let mut body = obj.clone();
                body.remove("chain");
                body.remove("signature");
                if link(&prev, &canonical(&Value::Object(body))) != chain {
                    return Err(broken());
                }
                if !keys.contains(&key) {
                    return Err(VerifyError::WrongKey {
                        file: name.clone(),
                        line,
                        key: key_hex,
                    });
                }
                if !verify_signature(&key, &checkpoint_message(&chain, signed, ts_ms), &sig) {
                    return Err(VerifyError::BadCheckpointSignature {
                        file: name.clone(),
                        line,
                    });
                }
                match reason.as_str() {
                    "start" => session_events = 0,
                    "continue" if checkpoints == 0 => session_events = signed,
                    _ => {}
                }
                if signed != session_events {
                    return Err(VerifyError::EventCount {
                        file: name.clone(),
                        line,
                        signed,
                        counted: session_events,
                    });
                }
                running = Some(chain);
                since = 0;
                checkpoints += 1;
                last = Some(CheckpointInfo {
                    file: name.clone(),
                    line,
                    reason,
                    timestamp,
                    events: signed,
                    chain: hex::encode(chain),
                    key: key_hex,
                });
                continue;
            }
            if kind != "Event" || api != "audit.k8s.io/v1" {
                return Err(bad(format!(
                    "neither an audit.k8s.io/v1 Event nor a checkpoint (kind {kind:?})"
                )));
            }
            // A file starts with its checkpoint.
            let prev = match running {
                Some(r) if line > 1 => r,
                _ => return Err(broken()),
            };
            let mut ev = v.clone();
            let claimed = ev
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
                .and_then(|a| a.remove(CHAIN_ANNOTATION))
                .and_then(|c| c.as_str().and_then(hex32))
                .ok_or_else(broken)?;
            if let Some(m) = ev.as_object_mut() {
                if m.get("annotations")
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    m.remove("annotations");
                }
            }
            if link(&prev, &canonical(&ev)) != claimed {
                return Err(broken());
            }
            running = Some(claimed);
            events += 1;
            session_events += 1;
            since += 1;
        }
    }
    let Some(last) = last else {
        return Err(VerifyError::Empty);
    };
    if since > 0 {
        return Err(VerifyError::UnsignedTail {
            count: since,
            last: Some(last.to_string()),
        });
    }
    Ok(VerifyReport {
        events,
        checkpoints,
        origin: origin.unwrap_or(Origin::Genesis),
        last_checkpoint: last,
    })
}

/// A checkpoint signer from an Ed25519 PKCS#8 key (tests, tools).
pub struct Ed25519Signer(pub ring::signature::Ed25519KeyPair);

impl Ed25519Signer {
    pub fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519 keygen");
        Ed25519Signer(
            ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("ed25519 pkcs8"),
        )
    }
}

impl CheckpointSigner for Ed25519Signer {
    fn public_key(&self) -> [u8; 32] {
        use ring::signature::KeyPair;
        let mut k = [0u8; 32];
        k.copy_from_slice(self.0.public_key().as_ref());
        k
    }
    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut s = [0u8; 64];
        s.copy_from_slice(self.0.sign(msg).as_ref());
        s
    }
}
