//! SPDY/3.1 framing, as `kubectl port-forward` speaks it (moby/spdystream on the client side),
//! either on a connection upgraded with `Upgrade: SPDY/3.1` or tunneled in the binary messages of
//! a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io`.
//!
//! A frame has an 8-byte header. Control frames: bit 0 set, 15 bits version (3), 16 bits type,
//! 8 bits flags, 24 bits length. Data frames: bit 0 clear, 31 bits stream id, 8 bits flags,
//! 24 bits length. Name/value header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams
//! primed with the SPDY/3 dictionary, one compression context per direction for the whole
//! connection, each block ended by a sync flush.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The SPDY/3 header dictionary (from the SPDY/3 draft, 1423 bytes).
pub const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

pub const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

/// Largest payload of one frame (24-bit length).
pub const MAX_LENGTH: usize = (1 << 24) - 1;
/// Largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// RST_STREAM status codes.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("invalid {kind} frame: {reason}")]
    Invalid { kind: &'static str, reason: String },
    #[error("header block compression: {0}")]
    Compression(String),
}

fn invalid(kind: &'static str, reason: impl Into<String>) -> SpdyError {
    SpdyError::Invalid {
        kind,
        reason: reason.into(),
    }
}

/// Header names and values in order (names lowercase on the wire).
pub type Headers = Vec<(String, String)>;

/// The value of header `name` (case-insensitive), if present.
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value)
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Vec<u8>,
    },
    /// A control frame of a type this implementation does not know (ignored, as spdystream).
    Unknown {
        frame_type: u16,
    },
}

/// Compresses header blocks of one direction of a connection.
pub struct HeaderEncoder {
    z: Compress,
}

impl HeaderEncoder {
    pub fn new() -> Result<Self, SpdyError> {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(DICTIONARY)
            .map_err(|e| SpdyError::Compression(e.to_string()))?;
        Ok(HeaderEncoder { z })
    }

    pub fn encode(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (n, v) in headers {
            let n = n.to_ascii_lowercase();
            raw.extend_from_slice(&(n.len() as u32).to_be_bytes());
            raw.extend_from_slice(n.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = &raw[..];
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            let used = (self.z.total_in() - before) as usize;
            input = &input[used..];
            // A sync flush is complete once all input is taken and output space remains.
            if input.is_empty() && out.capacity() > out.len() {
                return Ok(out);
            }
        }
    }
}

/// Decompresses header blocks of one direction of a connection.
pub struct HeaderDecoder {
    z: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        HeaderDecoder {
            z: Decompress::new(true),
        }
    }
}

impl HeaderDecoder {
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let zerr = |e: &dyn std::fmt::Display| SpdyError::Compression(e.to_string());
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(SpdyError::Compression("header block too large".into()));
            }
            let before = self.z.total_in();
            let res = self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.z.total_in() - before) as usize;
            input = &input[used..];
            match res {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    if input.is_empty() && out.capacity() > out.len() {
                        break;
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(_) => {
                        self.z.set_dictionary(DICTIONARY).map_err(|e| zerr(&e))?;
                    }
                    None => return Err(zerr(&e)),
                },
            }
        }
        parse_header_block(&out)
    }
}

fn parse_header_block(mut b: &[u8]) -> Result<Headers, SpdyError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], SpdyError> {
        if b.len() < n {
            return Err(invalid("header block", "truncated"));
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    fn u32_of(b: &mut &[u8]) -> Result<u32, SpdyError> {
        let s = take(b, 4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    let count = u32_of(&mut b)? as usize;
    let mut out = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = u32_of(&mut b)? as usize;
        let name = take(&mut b, n)?;
        let v = u32_of(&mut b)? as usize;
        let value = take(&mut b, v)?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| invalid("header block", "header name is not UTF-8"))?;
        if name.is_empty() || name.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("header block", "header was not lowercased"));
        }
        let value = String::from_utf8_lossy(value).into_owned();
        out.push((name, value));
    }
    Ok(out)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Read one frame; `Ok(None)` at a clean end of the connection (between frames).
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    dec: &mut HeaderDecoder,
) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    // A clean close arrives before the first byte of a frame.
    let n = r.read(&mut head[..1]).await?;
    if n == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[1..]).await?;
    let flags = head[4];
    let len = (be32(&head, 4) & 0x00ff_ffff) as usize;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    if head[0] & 0x80 == 0 {
        return Ok(Some(Frame::Data {
            stream_id: be32(&head, 0) & 0x7fff_ffff,
            flags,
            data: body,
        }));
    }
    let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let frame_type = u16::from_be_bytes([head[2], head[3]]);
    let need = |kind: &'static str, n: usize| {
        if body.len() < n {
            Err(invalid(kind, format!("{} bytes, need {n}", body.len())))
        } else {
            Ok(())
        }
    };
    let stream_id = |at: usize| be32(&body, at) & 0x7fff_ffff;
    let f = match frame_type {
        TYPE_SYN_STREAM => {
            need("SYN_STREAM", 10)?;
            let id = stream_id(0);
            if id == 0 {
                return Err(invalid("SYN_STREAM", "stream id zero is disallowed"));
            }
            Frame::SynStream {
                stream_id: id,
                associated_to: stream_id(4),
                priority: body[8] >> 5,
                flags,
                headers: dec.decode(&body[10..])?,
            }
        }
        TYPE_SYN_REPLY => {
            need("SYN_REPLY", 4)?;
            Frame::SynReply {
                stream_id: stream_id(0),
                flags,
                headers: dec.decode(&body[4..])?,
            }
        }
        TYPE_RST_STREAM => {
            need("RST_STREAM", 8)?;
            Frame::RstStream {
                stream_id: stream_id(0),
                status: be32(&body, 4),
            }
        }
        TYPE_SETTINGS => {
            need("SETTINGS", 4)?;
            let n = be32(&body, 0) as usize;
            if body.len() != 4 + n.saturating_mul(8) {
                return Err(invalid("SETTINGS", "length does not match the entries"));
            }
            let entries = (0..n)
                .map(|i| {
                    let at = 4 + i * 8;
                    (body[at], be32(&body, at) & 0x00ff_ffff, be32(&body, at + 4))
                })
                .collect();
            Frame::Settings { flags, entries }
        }
        TYPE_PING => {
            need("PING", 4)?;
            Frame::Ping { id: be32(&body, 0) }
        }
        TYPE_GOAWAY => {
            need("GOAWAY", 8)?;
            Frame::GoAway {
                last_good_stream_id: stream_id(0),
                status: be32(&body, 4),
            }
        }
        TYPE_HEADERS => {
            need("HEADERS", 4)?;
            Frame::Headers {
                stream_id: stream_id(0),
                flags,
                headers: dec.decode(&body[4..])?,
            }
        }
        TYPE_WINDOW_UPDATE => {
            need("WINDOW_UPDATE", 8)?;
            Frame::WindowUpdate {
                stream_id: stream_id(0),
                delta: be32(&body, 4) & 0x7fff_ffff,
            }
        }
        other => Frame::Unknown { frame_type: other },
    };
    Ok(Some(f))
}

fn control(out: &mut Vec<u8>, frame_type: u16, flags: u8, body: &[u8]) -> Result<(), SpdyError> {
    if body.len() > MAX_LENGTH {
        return Err(invalid("control", "frame too large"));
    }
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.extend_from_slice(&((u32::from(flags) << 24) | body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Serialize `f` (compressing its header block with `enc`) onto `out`.
pub fn write_frame(out: &mut Vec<u8>, f: &Frame, enc: &mut HeaderEncoder) -> Result<(), SpdyError> {
    let id = |x: u32| (x & 0x7fff_ffff).to_be_bytes();
    match f {
        Frame::SynStream {
            stream_id,
            associated_to,
            priority,
            flags,
            headers,
        } => {
            let mut b = Vec::new();
            b.extend_from_slice(&id(*stream_id));
            b.extend_from_slice(&id(*associated_to));
            b.push((priority & 0x7) << 5);
            b.push(0);
            b.extend_from_slice(&enc.encode(headers)?);
            control(out, TYPE_SYN_STREAM, *flags, &b)
        }
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            let mut b = id(*stream_id).to_vec();
            b.extend_from_slice(&enc.encode(headers)?);
            control(out, TYPE_SYN_REPLY, *flags, &b)
        }
        Frame::RstStream { stream_id, status } => {
            let mut b = id(*stream_id).to_vec();
            b.extend_from_slice(&status.to_be_bytes());
            control(out, TYPE_RST_STREAM, 0, &b)
        }
        Frame::Settings { flags, entries } => {
            let mut b = (entries.len() as u32).to_be_bytes().to_vec();
            for (fl, i, v) in entries {
                b.extend_from_slice(&((u32::from(*fl) << 24) | (i & 0x00ff_ffff)).to_be_bytes());
                b.extend_from_slice(&v.to_be_bytes());
            }
            control(out, TYPE_SETTINGS, *flags, &b)
        }
        Frame::Ping { id } => control(out, TYPE_PING, 0, &id.to_be_bytes()),
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            let mut b = id(*last_good_stream_id).to_vec();
            b.extend_from_slice(&status.to_be_bytes());
            control(out, TYPE_GOAWAY, 0, &b)
        }
        Frame::Headers {
            stream_id,
            flags,
            headers,
        } => {
            let mut b = id(*stream_id).to_vec();
            b.extend_from_slice(&enc.encode(headers)?);
            control(out, TYPE_HEADERS, *flags, &b)
        }
        Frame::WindowUpdate { stream_id, delta } => {
            let mut b = id(*stream_id).to_vec();
            b.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
            control(out, TYPE_WINDOW_UPDATE, 0, &b)
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            if data.len() > MAX_LENGTH {
                return Err(invalid("DATA", "frame too large"));
            }
            out.extend_from_slice(&id(*stream_id));
            out.extend_from_slice(&((u32::from(*flags) << 24) | data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
            Ok(())
        }
        Frame::Unknown { frame_type } => Err(invalid(
            "control",
            format!("cannot write unknown frame type {frame_type}"),
        )),
    }
}

#[cfg(test)]
mod tests;
