//! Encoding of Kubernetes JSON objects into the protobuf bytes the real API
//! server writes (`k8s\0` + `runtime.Unknown`), driven by the same schema
//! table as the decoder.
//!
//! The byte layout follows Go's gogo-protobuf marshaller for the proto2
//! `generated.proto` types:
//!
//! * fields are written in ascending tag order;
//! * a non-pointer scalar (`string`, `int32`, `int64`, `bool`) is always
//!   written, even when zero (`0a 00` for an empty name);
//! * a non-pointer struct is always written (possibly as an empty message);
//! * a pointer field or a `[]byte` is written iff it is set (present and not
//!   `null` in JSON);
//! * repeated scalars are not packed (proto2 default);
//! * map entries are written in ascending key order, each as `{1: key, 2: value}`
//!   with both fields present (a `nil` `[]byte` value is left out);
//! * `meta/v1.Time` is `{1: seconds, 2: nanos = 0}`, `MicroTime` keeps the
//!   microseconds, the zero time is an empty message;
//! * `IntOrString` is `{1: type, 2: intVal, 3: strVal}`, `Quantity` is `{1: string}`
//!   (the zero Quantity is `"0"`), `FieldsV1`/`RawExtension` are `{1: raw JSON}`.
//!
//! JSON members the Go type does not have (for example `apiVersion`/`kind`
//! inside an object, which live in the envelope) are not encoded, exactly as
//! Go's decoder drops them before the object is ever marshalled.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{find_shape, Card, Field, Msg, ProtobufError, Result, Shape, Ty, MAGIC, MAX_DEPTH};
use super::{WT_I64, WT_LEN, WT_VARINT};

/// Encode a Kubernetes object (JSON with `apiVersion` and `kind`) as
/// `k8s\0` + `runtime.Unknown{typeMeta, raw, contentEncoding: "", contentType: ""}`.
pub fn encode_object(obj: &Value) -> Result<Vec<u8>> {
    let map = obj.as_object().ok_or(ProtobufError::NotAnObject)?;
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(ProtobufError::MissingKind)?;
    let shape = find_shape(api_version, kind).ok_or_else(|| ProtobufError::NoSchema {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let mut raw = Vec::new();
    match shape {
        Shape::Object(msg) => encode_message(msg, map, &mut raw, 0)?,
        Shape::List(item) => encode_list(item, map, &mut raw)?,
    }
    let mut type_meta = Vec::new();
    put_str(&mut type_meta, 1, api_version);
    put_str(&mut type_meta, 2, kind);
    let mut out = MAGIC.to_vec();
    put_len(&mut out, 1, &type_meta);
    put_len(&mut out, 2, &raw);
    put_str(&mut out, 3, "");
    put_str(&mut out, 4, "");
    Ok(out)
}

/// Whether [`encode_object`] can encode `apiVersion`/`kind` (objects and their lists).
pub fn can_encode(api_version: &str, kind: &str) -> bool {
    find_shape(api_version, kind).is_some()
}

/// One frame of a protobuf watch stream: a 4-byte big-endian length, then
/// `meta/v1.WatchEvent{1: type, 2: RawExtension{1: object}}` without any
/// envelope (the stream serializer is the raw one); `object` is the embedded
/// object's full encoding (see [`encode_object`]).
pub fn watch_frame(event_type: &str, object: &[u8]) -> Result<Vec<u8>> {
    let mut ext = Vec::new();
    put_len(&mut ext, 1, object);
    let mut event = Vec::new();
    put_str(&mut event, 1, event_type);
    put_len(&mut event, 2, &ext);
    let len = u32::try_from(event.len()).map_err(|_| ProtobufError::TooLarge)?;
    let mut out = Vec::with_capacity(event.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&event);
    Ok(out)
}

fn encode_list(item: &'static Msg, map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<()> {
    let meta = match map.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(type_error(
                &super::schema::META_V1_LIST_META,
                "metadata",
                "an object",
            ))
        }
    };
    let mut buf = Vec::new();
    encode_message(&super::schema::META_V1_LIST_META, &meta, &mut buf, 1)?;
    put_len(out, 1, &buf);
    match map.get("items") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for it in items {
                let m = it
                    .as_object()
                    .ok_or_else(|| type_error(item, "items", "an array of objects"))?;
                let mut buf = Vec::new();
                encode_message(item, m, &mut buf, 1)?;
                put_len(out, 2, &buf);
            }
        }
        Some(_) => return Err(type_error(item, "items", "an array")),
    }
    Ok(())
}

fn type_error(msg: &'static Msg, field: &'static str, expected: &'static str) -> ProtobufError {
    ProtobufError::EncodeType {
        message: msg.name,
        field,
        expected,
    }
}

fn encode_message(
    msg: &'static Msg,
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    for field in msg.fields {
        let f = FieldCtx { msg, field };
        if field.card == Card::Inline {
            let Ty::Msg(inner) = field.ty else {
                return Err(f.err("an inline message"));
            };
            let mut buf = Vec::new();
            encode_message(inner, map, &mut buf, depth + 1)?;
            put_len(out, field.tag, &buf);
            continue;
        }
        let value = map.get(field.json).filter(|v| !v.is_null());
        match field.card {
            Card::Inline => {}
            Card::Value => match (field.ty, value) {
                // A nil []byte is not written.
                (Ty::Bytes, None) => {}
                (ty, Some(v)) => f.put(out, ty, v, depth)?,
                (ty, None) => f.put_zero(out, ty, depth)?,
            },
            Card::Ptr => {
                if let Some(v) = value {
                    f.put(out, field.ty, v, depth)?;
                }
            }
            Card::Repeated => match value {
                None => {}
                Some(Value::Array(items)) => {
                    for it in items {
                        // A null element of a slice of structs is its zero value.
                        if it.is_null() {
                            f.put_zero(out, field.ty, depth)?;
                        } else {
                            f.put(out, field.ty, it, depth)?;
                        }
                    }
                }
                Some(_) => return Err(f.err("an array")),
            },
            Card::Map => match value {
                None => {}
                Some(Value::Object(entries)) => {
                    let mut keys: Vec<&String> = entries.keys().collect();
                    keys.sort();
                    for k in keys {
                        let v = entries.get(k).unwrap_or(&Value::Null);
                        let mut entry = Vec::new();
                        put_str(&mut entry, 1, k);
                        match (field.ty, v) {
                            (Ty::Bytes, Value::Null) => {}
                            (ty, Value::Null) => f.put_zero_at(&mut entry, 2, ty, depth)?,
                            (ty, v) => f.put_at(&mut entry, 2, ty, v, depth)?,
                        }
                        put_len(out, field.tag, &entry);
                    }
                }
                Some(_) => return Err(f.err("an object")),
            },
        }
    }
    Ok(())
}

struct FieldCtx {
    msg: &'static Msg,
    field: &'static Field,
}

impl FieldCtx {
    fn err(&self, expected: &'static str) -> ProtobufError {
        type_error(self.msg, self.field.json, expected)
    }

    fn invalid(&self, detail: String) -> ProtobufError {
        ProtobufError::EncodeValue {
            message: self.msg.name,
            field: self.field.json,
            detail,
        }
    }

    fn put(&self, out: &mut Vec<u8>, ty: Ty, v: &Value, depth: usize) -> Result<()> {
        self.put_at(out, self.field.tag, ty, v, depth)
    }

    fn put_zero(&self, out: &mut Vec<u8>, ty: Ty, depth: usize) -> Result<()> {
        self.put_zero_at(out, self.field.tag, ty, depth)
    }

    /// The zero value of a non-pointer Go field of type `ty`.
    fn put_zero_at(&self, out: &mut Vec<u8>, tag: u32, ty: Ty, depth: usize) -> Result<()> {
        match ty {
            Ty::Str | Ty::Bytes => put_str(out, tag, ""),
            Ty::Bool | Ty::I32 | Ty::I64 => put_varint_field(out, tag, 0),
            Ty::F64 => put_f64(out, tag, 0.0),
            Ty::SchemaOrBool(_) => {
                let mut b = Vec::new();
                put_varint_field(&mut b, 1, 0);
                put_len(out, tag, &b);
            }
            Ty::SchemaOrArray(_) | Ty::SchemaOrStrings(_) => put_len(out, tag, &[]),
            Ty::Time | Ty::MicroTime | Ty::RawJson | Ty::StringList | Ty::Duration => {
                put_len(out, tag, &[])
            }
            Ty::IntOrString => {
                let mut b = Vec::new();
                put_varint_field(&mut b, 1, 0);
                put_varint_field(&mut b, 2, 0);
                put_str(&mut b, 3, "");
                put_len(out, tag, &b);
            }
            Ty::Quantity => {
                let mut b = Vec::new();
                put_str(&mut b, 1, "0");
                put_len(out, tag, &b);
            }
            Ty::Msg(m) => {
                let mut b = Vec::new();
                encode_message(m, &Map::new(), &mut b, depth + 1)?;
                put_len(out, tag, &b);
            }
        }
        Ok(())
    }

    fn put_at(&self, out: &mut Vec<u8>, tag: u32, ty: Ty, v: &Value, depth: usize) -> Result<()> {
        match ty {
            Ty::Str => put_str(out, tag, v.as_str().ok_or_else(|| self.err("a string"))?),
            Ty::Bytes => {
                let s = v.as_str().ok_or_else(|| self.err("a base64 string"))?;
                let b = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| self.invalid(format!("illegal base64 data: {e}")))?;
                put_len(out, tag, &b);
            }
            Ty::Bool => {
                let b = v.as_bool().ok_or_else(|| self.err("a boolean"))?;
                put_varint_field(out, tag, u64::from(b));
            }
            Ty::I32 => {
                let n = v
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .ok_or_else(|| self.err("a 32-bit integer"))?;
                // Go sign-extends negative int32 to a 10-byte varint.
                put_varint_field(out, tag, i64::from(n) as u64);
            }
            Ty::I64 => {
                let n = v.as_i64().ok_or_else(|| self.err("a 64-bit integer"))?;
                put_varint_field(out, tag, n as u64);
            }
            Ty::Time | Ty::MicroTime => {
                let s = v
                    .as_str()
                    .ok_or_else(|| self.err("an RFC 3339 time string"))?;
                let (secs, nanos) = parse_rfc3339(s)
                    .ok_or_else(|| self.invalid(format!("invalid RFC 3339 time {s:?}")))?;
                let mut b = Vec::new();
                // Go's zero time.Time is an empty message.
                if !(secs == -62_135_596_800 && nanos == 0) {
                    put_varint_field(&mut b, 1, secs as u64);
                    let nanos = if matches!(ty, Ty::MicroTime) {
                        nanos - nanos % 1000
                    } else {
                        0
                    };
                    put_varint_field(&mut b, 2, u64::from(nanos));
                }
                put_len(out, tag, &b);
            }
            Ty::IntOrString => {
                let mut b = Vec::new();
                match v {
                    Value::String(s) => {
                        put_varint_field(&mut b, 1, 1);
                        put_varint_field(&mut b, 2, 0);
                        put_str(&mut b, 3, s);
                    }
                    Value::Number(_) => {
                        let n = v
                            .as_i64()
                            .and_then(|n| i32::try_from(n).ok())
                            .ok_or_else(|| self.err("a 32-bit integer or a string"))?;
                        put_varint_field(&mut b, 1, 0);
                        put_varint_field(&mut b, 2, i64::from(n) as u64);
                        put_str(&mut b, 3, "");
                    }
                    _ => return Err(self.err("an integer or a string")),
                }
                put_len(out, tag, &b);
            }
            Ty::Quantity => {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(self.err("a quantity string")),
                };
                let mut b = Vec::new();
                put_str(&mut b, 1, &s);
                put_len(out, tag, &b);
            }
            Ty::Duration => {
                let s = v.as_str().ok_or_else(|| self.err("a duration string"))?;
                let nanos = super::parse_go_duration(s)
                    .ok_or_else(|| self.invalid(format!("invalid duration {s:?}")))?;
                let mut b = Vec::new();
                if nanos != 0 {
                    put_varint_field(&mut b, 1, nanos as u64);
                }
                put_len(out, tag, &b);
            }
            Ty::RawJson => {
                let raw = serde_json::to_vec(v).map_err(|e| self.invalid(e.to_string()))?;
                let mut b = Vec::new();
                put_len(&mut b, 1, &raw);
                put_len(out, tag, &b);
            }
            Ty::F64 => {
                let f = v.as_f64().ok_or_else(|| self.err("a number"))?;
                put_f64(out, tag, f);
            }
            Ty::SchemaOrBool(schema) => {
                let mut b = Vec::new();
                match v {
                    Value::Bool(allows) => put_varint_field(&mut b, 1, u64::from(*allows)),
                    Value::Object(m) => {
                        put_varint_field(&mut b, 1, 1);
                        let mut s = Vec::new();
                        encode_message(schema, m, &mut s, depth + 1)?;
                        put_len(&mut b, 2, &s);
                    }
                    _ => return Err(self.err("a boolean or a schema object")),
                }
                put_len(out, tag, &b);
            }
            Ty::SchemaOrArray(schema) | Ty::SchemaOrStrings(schema) => {
                let strings = matches!(ty, Ty::SchemaOrStrings(_));
                let mut b = Vec::new();
                match v {
                    Value::Object(m) => {
                        let mut s = Vec::new();
                        encode_message(schema, m, &mut s, depth + 1)?;
                        put_len(&mut b, 1, &s);
                    }
                    Value::Array(items) => {
                        for it in items {
                            match (strings, it) {
                                (true, Value::String(s)) => put_str(&mut b, 2, s),
                                (false, Value::Object(m)) => {
                                    let mut s = Vec::new();
                                    encode_message(schema, m, &mut s, depth + 1)?;
                                    put_len(&mut b, 2, &s);
                                }
                                (true, _) => return Err(self.err("an array of strings")),
                                (false, _) => return Err(self.err("an array of schema objects")),
                            }
                        }
                    }
                    _ => return Err(self.err("a schema object or an array")),
                }
                put_len(out, tag, &b);
            }
            Ty::StringList => {
                let items = v
                    .as_array()
                    .ok_or_else(|| self.err("an array of strings"))?;
                let mut b = Vec::new();
                for it in items {
                    put_str(
                        &mut b,
                        1,
                        it.as_str().ok_or_else(|| self.err("an array of strings"))?,
                    );
                }
                put_len(out, tag, &b);
            }
            Ty::Msg(m) => {
                let map = v.as_object().ok_or_else(|| self.err("an object"))?;
                let mut b = Vec::new();
                encode_message(m, map, &mut b, depth + 1)?;
                put_len(out, tag, &b);
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Wire primitives.

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn put_key(out: &mut Vec<u8>, tag: u32, wt: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wt));
}

fn put_varint_field(out: &mut Vec<u8>, tag: u32, v: u64) {
    put_key(out, tag, WT_VARINT);
    put_varint(out, v);
}

fn put_len(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(out, tag, WT_LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_f64(out: &mut Vec<u8>, tag: u32, f: f64) {
    put_key(out, tag, WT_I64);
    out.extend_from_slice(&f.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, tag: u32, s: &str) {
    put_len(out, tag, s.as_bytes());
}

// ---------------------------------------------------------------------------
// RFC 3339.

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` -> (Unix seconds, nanoseconds).
pub(super) fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = b.get(start..i)?;
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let mut n: u32 = 0;
        for c in digits.iter().chain(std::iter::repeat(&b'0')).take(9) {
            n = n * 10 + u32::from(c - b'0');
        }
        nanos = n;
    }
    let offset: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset, nanos))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) -> days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
