//! Decoding of Kubernetes protobuf request bodies
//! (`Content-Type: application/vnd.kubernetes.protobuf`) into the exact
//! Kubernetes JSON representation.
//!
//! A body is the 4 magic bytes `k8s\0` followed by a `runtime.Unknown`
//! message (1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
//! 4: contentType). `raw` is the proto2 encoding of the Go type named by
//! apiVersion/kind. One generic wire-format decoder is driven by the static
//! schema table in [`schema`] (message -> fields: tag, JSON name, type,
//! cardinality, `omitempty`).
//!
//! The output is what Go's `encoding/json` would print for the object the
//! real API server decodes from the same bytes:
//!
//! * a pointer field (`*int32`, `*Foo`) is emitted iff present on the wire,
//!   even when zero (`replicas: 0`);
//! * a non-pointer scalar is always written by Go's marshaller, so a zero
//!   value (`""`, `0`, `false`) is dropped when the field is `omitempty`
//!   and emitted (zero value) when it is not;
//! * a non-pointer struct is always emitted (`"status": {}`);
//! * an empty list or map is dropped when `omitempty`, `null` otherwise.
//!
//! Special types: `meta/v1.Time` -> RFC 3339 seconds (`null` when zero),
//! `MicroTime` -> RFC 3339 with 6 fractional digits, `IntOrString` -> number
//! or string, `Quantity` -> its string, `[]byte` -> base64,
//! `FieldsV1`/`RawExtension` -> embedded JSON.
//!
//! Any field number not in the table is an error naming the message and tag:
//! silently dropping user data is worse than refusing the request. Nothing
//! here panics on any input.

mod encode;
mod schema;

pub use encode::{can_encode, encode_object, watch_frame};

use base64::Engine as _;
use serde_json::{Map, Value};

/// The 4-byte prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Maximum message nesting accepted (the schema itself is far shallower).
const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("protobuf body does not start with the Kubernetes magic prefix \"k8s\\x00\"")]
    BadMagic,
    #[error("malformed protobuf in {message}: truncated or overlong varint")]
    BadVarint { message: &'static str },
    #[error("malformed protobuf in {message}: field {tag} is truncated")]
    Truncated { message: &'static str, tag: u64 },
    #[error("malformed protobuf in {message}: invalid field number {tag}")]
    InvalidTag { message: &'static str, tag: u64 },
    #[error("malformed protobuf in {message}: field {tag} has invalid wire type {wire_type}")]
    InvalidWireType {
        message: &'static str,
        tag: u64,
        wire_type: u8,
    },
    #[error(
        "unknown field number {tag} (wire type {wire_type}) in protobuf message {message}; \
         refusing to drop data (send the object as JSON instead)"
    )]
    UnknownField {
        message: &'static str,
        tag: u64,
        wire_type: u8,
    },
    #[error("malformed protobuf in {message}: field {tag} ({field}) has wire type {got}, expected {expected}")]
    WrongWireType {
        message: &'static str,
        tag: u64,
        field: &'static str,
        got: u8,
        expected: u8,
    },
    #[error("malformed protobuf in {message}: field {tag} ({field}): {detail}")]
    InvalidValue {
        message: &'static str,
        tag: u64,
        field: &'static str,
        detail: String,
    },
    #[error("protobuf envelope names no kind")]
    MissingKind,
    #[error("protobuf decoding of kind {kind} (apiVersion {api_version:?}) is not supported; send it as JSON or YAML instead")]
    UnsupportedKind { api_version: String, kind: String },
    #[error("protobuf envelope contentEncoding {0:?} is not supported")]
    UnsupportedEncoding(String),
    #[error("protobuf envelope contentType {0:?} is not supported")]
    UnsupportedContentType(String),
    #[error("protobuf message nesting is deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("kind {kind} (apiVersion {api_version:?}) has no protobuf encoding")]
    NoSchema { api_version: String, kind: String },
    #[error("only objects can be encoded as protobuf")]
    NotAnObject,
    #[error("cannot encode field {field:?} of {message} as protobuf: expected {expected}")]
    EncodeType {
        message: &'static str,
        field: &'static str,
        expected: &'static str,
    },
    #[error("cannot encode field {field:?} of {message} as protobuf: {detail}")]
    EncodeValue {
        message: &'static str,
        field: &'static str,
        detail: String,
    },
    #[error("protobuf message is larger than 4 GiB")]
    TooLarge,
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// Decode a Kubernetes protobuf body (`k8s\0` + `runtime.Unknown`) into the
/// object's JSON form, including `apiVersion` and `kind`.
pub fn decode_object(body: &[u8]) -> Result<Value> {
    let rest = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::BadMagic)?;
    let env = decode_envelope(rest)?;
    if env.kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(env.content_encoding));
    }
    if !env.content_type.is_empty() && env.content_type != CONTENT_TYPE {
        return Err(ProtobufError::UnsupportedContentType(env.content_type));
    }
    let shape =
        find_shape(&env.api_version, &env.kind).ok_or_else(|| ProtobufError::UnsupportedKind {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
        })?;
    let fields = match shape {
        Shape::Object(msg) => decode_message(msg, env.raw, 0)?,
        Shape::List(item) => decode_list(item, env.raw)?,
    };
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(env.api_version));
    obj.insert("kind".into(), Value::String(env.kind));
    obj.extend(fields);
    Ok(Value::Object(obj))
}

/// Whether [`decode_object`] knows the protobuf schema of `apiVersion`/`kind`.
pub fn is_supported_kind(api_version: &str, kind: &str) -> bool {
    find_shape(api_version, kind).is_some()
}

/// Whether some built-in kind of `apiVersion` has a protobuf schema.
pub fn is_builtin_api_version(api_version: &str) -> bool {
    schema::KINDS
        .iter()
        .chain(schema::LIST_KINDS)
        .any(|(av, _, _)| *av == api_version)
}

/// What an `apiVersion`/`kind` is on the wire.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    /// A single object of this message.
    Object(&'static Msg),
    /// `XList{1: ListMeta metadata, 2: repeated X items}`.
    List(&'static Msg),
}

fn find_shape(api_version: &str, kind: &str) -> Option<Shape> {
    if let Some(m) = find_kind(api_version, kind) {
        return Some(Shape::Object(m));
    }
    let item = kind.strip_suffix("List")?;
    schema::LIST_KINDS
        .iter()
        .find(|(av, k, _)| *k == item && *av == api_version)
        .map(|(_, _, m)| Shape::List(m))
}

/// Fields of a list message: `metadata` (ListMeta) and `items`.
fn decode_list(item: &'static Msg, buf: &[u8]) -> Result<Map<String, Value>> {
    let list_meta = &schema::META_V1_LIST_META;
    let mut meta: Vec<u8> = Vec::new();
    let mut items = Vec::new();
    let mut r = Reader::new(buf, item.name);
    while let Some((tag, wt, value)) = r.next_field()? {
        let name = match tag {
            1 => "metadata",
            2 => "items",
            _ => {
                return Err(ProtobufError::UnknownField {
                    message: item.name,
                    tag,
                    wire_type: wt,
                })
            }
        };
        let bytes = expect_len(item.name, tag, name, wt, value)?;
        if tag == 1 {
            meta.extend_from_slice(bytes);
        } else {
            items.push(Value::Object(decode_message(item, bytes, 1)?));
        }
    }
    let mut out = Map::new();
    out.insert(
        "metadata".into(),
        Value::Object(decode_message(list_meta, &meta, 1)?),
    );
    // The API server serves an empty list as `"items": []`.
    out.insert("items".into(), Value::Array(items));
    Ok(out)
}

fn find_kind(api_version: &str, kind: &str) -> Option<&'static Msg> {
    schema::KINDS
        .iter()
        .find(|(av, k, _)| *k == kind && (*av == "*" || *av == api_version))
        .map(|(_, _, m)| *m)
}

// ---------------------------------------------------------------------------
// Schema types (the table itself lives in `schema.rs`).

/// A protobuf message and its fields, sorted by tag.
pub(crate) struct Msg {
    name: &'static str,
    fields: &'static [Field],
}

/// One field of a message.
pub(crate) struct Field {
    tag: u32,
    /// JSON name; empty for [`Card::Inline`].
    json: &'static str,
    ty: Ty,
    card: Card,
    /// Go `json:",omitempty"`.
    omitempty: bool,
    /// Go `json:",omitzero"` (only `metadata.creationTimestamp`).
    omitzero: bool,
}

#[derive(Clone, Copy)]
pub(crate) enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    Time,
    MicroTime,
    IntOrString,
    Quantity,
    /// `meta/v1.Duration`: `{1: int64 nanoseconds}`, in JSON Go's duration string (`"15s"`).
    Duration,
    /// `meta/v1.FieldsV1` and `runtime.RawExtension`: `{1: raw bytes}` holding JSON.
    RawJson,
    /// A named `[]string` (`ExtraValue`): `{1: repeated string items}`, a JSON array.
    StringList,
    /// `float64` (wire type 1, little-endian IEEE 754).
    F64,
    /// apiextensions `JSONSchemaPropsOrBool{1: allows, 2: schema}`: a JSON bool or schema.
    SchemaOrBool(&'static Msg),
    /// apiextensions `JSONSchemaPropsOrArray{1: schema, 2: repeated jSONSchemas}`:
    /// a JSON schema or array of schemas.
    SchemaOrArray(&'static Msg),
    /// apiextensions `JSONSchemaPropsOrStringArray{1: schema, 2: repeated property}`:
    /// a JSON schema or array of strings.
    SchemaOrStrings(&'static Msg),
    Msg(&'static Msg),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    /// Non-pointer Go field.
    Value,
    /// Pointer Go field (`*T`).
    Ptr,
    /// Go slice: repeated field.
    Repeated,
    /// Go map with string keys: repeated `{1: key, 2: value}` entries.
    Map,
    /// Embedded Go struct whose fields are inlined in the JSON object.
    Inline,
}

impl Ty {
    fn wire_type(self) -> u8 {
        match self {
            Ty::Bool | Ty::I32 | Ty::I64 => WT_VARINT,
            Ty::F64 => WT_I64,
            _ => WT_LEN,
        }
    }
    fn is_scalar(self) -> bool {
        matches!(
            self,
            Ty::Str | Ty::Bytes | Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64
        )
    }
}

// ---------------------------------------------------------------------------
// Wire format.

const WT_VARINT: u8 = 0;
const WT_I64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_I32: u8 = 5;

enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    /// An 8-byte (wire type 1) or 4-byte (wire type 5) value, little-endian.
    Fixed(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    message: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], message: &'static str) -> Self {
        Reader { buf, message }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(ProtobufError::BadVarint {
                message: self.message,
            })?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(ProtobufError::BadVarint {
                    message: self.message,
                });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtobufError::BadVarint {
            message: self.message,
        })
    }

    fn take(&mut self, n: u64, tag: u64) -> Result<&'a [u8]> {
        let truncated = ProtobufError::Truncated {
            message: self.message,
            tag,
        };
        let n = usize::try_from(n).map_err(|_| truncated.clone())?;
        if n > self.buf.len() {
            return Err(truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// Next `(tag, wire type, value)`, or `None` at the end of the buffer.
    fn next_field(&mut self) -> Result<Option<(u64, u8, Wire<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = key >> 3;
        let wt = (key & 7) as u8;
        if tag == 0 || tag > 0x1fff_ffff {
            return Err(ProtobufError::InvalidTag {
                message: self.message,
                tag,
            });
        }
        let value = match wt {
            WT_VARINT => Wire::Varint(self.varint()?),
            WT_I64 => Wire::Fixed(self.take(8, tag)?),
            WT_LEN => {
                let n = self.varint()?;
                Wire::Len(self.take(n, tag)?)
            }
            WT_I32 => Wire::Fixed(self.take(4, tag)?),
            // Groups (3, 4) and 6, 7 never occur in Kubernetes messages.
            _ => {
                return Err(ProtobufError::InvalidWireType {
                    message: self.message,
                    tag,
                    wire_type: wt,
                })
            }
        };
        Ok(Some((tag, wt, value)))
    }
}

// ---------------------------------------------------------------------------
// Envelope.

struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

fn decode_envelope(buf: &[u8]) -> Result<Envelope<'_>> {
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut r = Reader::new(buf, UNKNOWN);
    while let Some((tag, wt, value)) = r.next_field()? {
        let name = match tag {
            1 => "typeMeta",
            2 => "raw",
            3 => "contentEncoding",
            4 => "contentType",
            _ => {
                return Err(ProtobufError::UnknownField {
                    message: UNKNOWN,
                    tag,
                    wire_type: wt,
                })
            }
        };
        let bytes = expect_len(UNKNOWN, tag, name, wt, value)?;
        match tag {
            1 => {
                let mut tr = Reader::new(bytes, TYPE_META);
                while let Some((ttag, twt, tvalue)) = tr.next_field()? {
                    let tname = match ttag {
                        1 => "apiVersion",
                        2 => "kind",
                        _ => {
                            return Err(ProtobufError::UnknownField {
                                message: TYPE_META,
                                tag: ttag,
                                wire_type: twt,
                            })
                        }
                    };
                    let s = utf8(
                        TYPE_META,
                        ttag,
                        tname,
                        expect_len(TYPE_META, ttag, tname, twt, tvalue)?,
                    )?;
                    if ttag == 1 {
                        env.api_version = s;
                    } else {
                        env.kind = s;
                    }
                }
            }
            2 => env.raw = bytes,
            3 => env.content_encoding = utf8(UNKNOWN, tag, name, bytes)?,
            _ => env.content_type = utf8(UNKNOWN, tag, name, bytes)?,
        }
    }
    Ok(env)
}

fn expect_len<'a>(
    message: &'static str,
    tag: u64,
    field: &'static str,
    wt: u8,
    value: Wire<'a>,
) -> Result<&'a [u8]> {
    match value {
        Wire::Len(b) => Ok(b),
        _ => Err(ProtobufError::WrongWireType {
            message,
            tag,
            field,
            got: wt,
            expected: WT_LEN,
        }),
    }
}

fn utf8(message: &'static str, tag: u64, field: &'static str, bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidValue {
        message,
        tag,
        field,
        detail: "string is not valid UTF-8".into(),
    })
}

// ---------------------------------------------------------------------------
// Generic message decoding.

/// What was seen on the wire for one field.
enum Slot {
    Absent,
    /// Last value of a singular scalar.
    Scalar(Value),
    /// Concatenated occurrences of a singular message (proto merge semantics).
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

fn decode_message(msg: &'static Msg, buf: &[u8], depth: usize) -> Result<Map<String, Value>> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::Absent).collect();
    let mut r = Reader::new(buf, msg.name);
    while let Some((tag, wt, value)) = r.next_field()? {
        let idx = msg
            .fields
            .binary_search_by_key(&tag, |f| u64::from(f.tag))
            .map_err(|_| ProtobufError::UnknownField {
                message: msg.name,
                tag,
                wire_type: wt,
            })?;
        let (Some(field), Some(slot)) = (msg.fields.get(idx), slots.get_mut(idx)) else {
            return Err(ProtobufError::UnknownField {
                message: msg.name,
                tag,
                wire_type: wt,
            });
        };
        let ctx = Ctx { msg, field, tag };
        match field.card {
            Card::Value | Card::Ptr | Card::Inline if field.ty.is_scalar() => {
                ctx.check_wire(wt, field.ty.wire_type())?;
                *slot = Slot::Scalar(ctx.scalar(field.ty, value)?);
            }
            Card::Value | Card::Ptr | Card::Inline => {
                let bytes = expect_len(msg.name, tag, field.json, wt, value)?;
                match slot {
                    Slot::Bytes(acc) => acc.extend_from_slice(bytes),
                    _ => *slot = Slot::Bytes(bytes.to_vec()),
                }
            }
            Card::Repeated => {
                if !matches!(slot, Slot::List(_)) {
                    *slot = Slot::List(Vec::new());
                }
                let Slot::List(list) = slot else {
                    return Err(ctx.invalid("internal: list slot"));
                };
                match (field.ty.wire_type(), value) {
                    // Packed repeated varints.
                    (WT_VARINT, Wire::Len(bytes)) => {
                        let mut pr = Reader::new(bytes, msg.name);
                        while !pr.buf.is_empty() {
                            let v = pr.varint()?;
                            list.push(ctx.scalar(field.ty, Wire::Varint(v))?);
                        }
                    }
                    (expected, value) => {
                        ctx.check_wire(wt, expected)?;
                        list.push(ctx.element(field.ty, value, depth)?);
                    }
                }
            }
            Card::Map => {
                let bytes = expect_len(msg.name, tag, field.json, wt, value)?;
                let (k, v) = ctx.map_entry(bytes, depth)?;
                match slot {
                    Slot::Map(m) => {
                        m.insert(k, v);
                    }
                    _ => {
                        let mut m = Map::new();
                        m.insert(k, v);
                        *slot = Slot::Map(m);
                    }
                }
            }
        }
    }

    let mut out = Map::new();
    for (field, slot) in msg.fields.iter().zip(slots) {
        let ctx = Ctx {
            msg,
            field,
            tag: u64::from(field.tag),
        };
        let value = match (field.card, slot) {
            (Card::Inline, slot) => {
                let bytes = match slot {
                    Slot::Bytes(b) => b,
                    _ => Vec::new(),
                };
                match field.ty {
                    Ty::Msg(inner) => out.extend(decode_message(inner, &bytes, depth + 1)?),
                    _ => return Err(ctx.invalid("internal: inline field is not a message")),
                }
                continue;
            }
            (Card::Repeated, Slot::List(list)) if !list.is_empty() => Value::Array(list),
            (Card::Map, Slot::Map(map)) if !map.is_empty() => Value::Object(map),
            (Card::Repeated | Card::Map, _) => {
                if field.omitempty {
                    continue;
                }
                Value::Null
            }
            (Card::Ptr, Slot::Scalar(v)) => v,
            (Card::Ptr, Slot::Bytes(b)) => ctx.element(field.ty, Wire::Len(&b), depth)?,
            (Card::Ptr, _) => {
                if field.omitempty {
                    continue;
                }
                Value::Null
            }
            (Card::Value, Slot::Scalar(v)) => {
                if field.omitempty && is_zero(&v) {
                    continue;
                }
                v
            }
            (Card::Value, Slot::Bytes(b)) => ctx.element(field.ty, Wire::Len(&b), depth)?,
            (Card::Value, _) => match field.ty {
                // Go `[]byte` is nil-able.
                Ty::Bytes if field.omitempty => continue,
                Ty::Bytes => Value::Null,
                ty if ty.is_scalar() => {
                    if field.omitempty {
                        continue;
                    }
                    zero_scalar(ty)
                }
                // A non-pointer struct is always marshalled by Go.
                ty => ctx.element(ty, Wire::Len(&[]), depth)?,
            },
        };
        if field.omitzero && value.is_null() {
            continue;
        }
        out.insert(field.json.to_string(), value);
    }
    Ok(out)
}

/// A float as Go's encoding/json prints it: integral values without a fraction.
fn float_value(f: f64) -> Option<Value> {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Some(Value::from(f as i64));
    }
    serde_json::Number::from_f64(f).map(Value::Number)
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Null => true,
        _ => false,
    }
}

fn zero_scalar(ty: Ty) -> Value {
    match ty {
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 | Ty::F64 => Value::from(0),
        _ => Value::String(String::new()),
    }
}

struct Ctx {
    msg: &'static Msg,
    field: &'static Field,
    tag: u64,
}

impl Ctx {
    fn name(&self) -> &'static str {
        if self.field.json.is_empty() {
            "(inline)"
        } else {
            self.field.json
        }
    }

    fn invalid(&self, detail: impl Into<String>) -> ProtobufError {
        ProtobufError::InvalidValue {
            message: self.msg.name,
            tag: self.tag,
            field: self.name(),
            detail: detail.into(),
        }
    }

    fn check_wire(&self, got: u8, expected: u8) -> Result<()> {
        if got == expected {
            Ok(())
        } else {
            Err(ProtobufError::WrongWireType {
                message: self.msg.name,
                tag: self.tag,
                field: self.name(),
                got,
                expected,
            })
        }
    }

    fn wrong_wire(&self, value: &Wire<'_>, expected: u8) -> ProtobufError {
        let got = match value {
            Wire::Varint(_) => WT_VARINT,
            Wire::Len(_) => WT_LEN,
            Wire::Fixed(b) if b.len() == 4 => WT_I32,
            Wire::Fixed(_) => WT_I64,
        };
        ProtobufError::WrongWireType {
            message: self.msg.name,
            tag: self.tag,
            field: self.name(),
            got,
            expected,
        }
    }

    fn scalar(&self, ty: Ty, value: Wire<'_>) -> Result<Value> {
        match (ty, value) {
            (Ty::Bool, Wire::Varint(v)) => Ok(Value::Bool(v != 0)),
            // Go decodes int32 by truncating the 64-bit varint.
            (Ty::I32, Wire::Varint(v)) => Ok(Value::from(v as i32)),
            (Ty::I64, Wire::Varint(v)) => Ok(Value::from(v as i64)),
            (Ty::Str, Wire::Len(b)) => Ok(Value::String(utf8(
                self.msg.name,
                self.tag,
                self.name(),
                b,
            )?)),
            (Ty::Bytes, Wire::Len(b)) => Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(b),
            )),
            (Ty::F64, Wire::Fixed(b)) => {
                let bytes: [u8; 8] = b
                    .try_into()
                    .map_err(|_| self.wrong_wire(&Wire::Fixed(b), WT_I64))?;
                float_value(f64::from_le_bytes(bytes))
                    .ok_or_else(|| self.invalid("float is NaN or infinite"))
            }
            (ty, value) => Err(self.wrong_wire(&value, ty.wire_type())),
        }
    }

    /// Decode one value of type `ty` (scalar or message-like).
    fn element(&self, ty: Ty, value: Wire<'_>, depth: usize) -> Result<Value> {
        if ty.is_scalar() {
            return self.scalar(ty, value);
        }
        let Wire::Len(bytes) = value else {
            return Err(self.wrong_wire(&value, WT_LEN));
        };
        match ty {
            Ty::Msg(m) => Ok(Value::Object(decode_message(m, bytes, depth + 1)?)),
            Ty::Time => self.time(bytes, false),
            Ty::MicroTime => self.time(bytes, true),
            Ty::IntOrString => self.int_or_string(bytes),
            Ty::Quantity => self.quantity(bytes),
            Ty::Duration => self.duration(bytes),
            Ty::RawJson => self.raw_json(bytes),
            Ty::StringList => self.string_list(bytes),
            Ty::SchemaOrBool(m) => self.schema_or_bool(m, bytes, depth),
            Ty::SchemaOrArray(m) => self.schema_or_list(m, bytes, depth, false),
            Ty::SchemaOrStrings(m) => self.schema_or_list(m, bytes, depth, true),
            _ => Err(self.invalid("internal: unexpected scalar type")),
        }
    }

    fn map_entry(&self, bytes: &[u8], depth: usize) -> Result<(String, Value)> {
        let mut key = String::new();
        let mut val: Option<Value> = None;
        let mut r = Reader::new(bytes, self.msg.name);
        while let Some((tag, wt, value)) = r.next_field()? {
            match tag {
                1 => {
                    self.check_wire(wt, WT_LEN)?;
                    key = match self.scalar(Ty::Str, value)? {
                        Value::String(s) => s,
                        _ => return Err(self.invalid("map key is not a string")),
                    };
                }
                2 => {
                    self.check_wire(wt, self.field.ty.wire_type())?;
                    val = Some(self.element(self.field.ty, value, depth)?);
                }
                _ => {
                    return Err(self.invalid(format!("unknown field number {tag} in map entry")));
                }
            }
        }
        let val = match val {
            Some(v) => v,
            None if self.field.ty.is_scalar() => zero_scalar(self.field.ty),
            None => self.element(self.field.ty, Wire::Len(&[]), depth)?,
        };
        Ok((key, val))
    }

    /// Decode a sub-message made only of varint/length fields with the given
    /// known tags; returns the values by tag.
    fn small_message<'b>(
        &self,
        what: &str,
        bytes: &'b [u8],
        known: &[u64],
    ) -> Result<Vec<(u64, Wire<'b>)>> {
        let mut out = Vec::new();
        let mut r = Reader::new(bytes, self.msg.name);
        while let Some((tag, _wt, value)) = r.next_field()? {
            if !known.contains(&tag) {
                return Err(self.invalid(format!("unknown field number {tag} in {what}")));
            }
            out.push((tag, value));
        }
        Ok(out)
    }

    fn time(&self, bytes: &[u8], micro: bool) -> Result<Value> {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        let mut seconds: i64 = 0;
        let mut nanos: i32 = 0;
        for (tag, value) in self.small_message("Timestamp", bytes, &[1, 2])? {
            match (tag, value) {
                (1, Wire::Varint(v)) => seconds = v as i64,
                (2, Wire::Varint(v)) => nanos = v as i32,
                (_, value) => return Err(self.wrong_wire(&value, WT_VARINT)),
            }
        }
        // metav1.Time keeps whole seconds only; MicroTime truncates to
        // microseconds (toward zero, like Go's Duration.Truncate).
        let nanos: i64 = if micro {
            i64::from(nanos) - i64::from(nanos) % 1000
        } else {
            0
        };
        let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        let secs = total.div_euclid(1_000_000_000);
        let sub = total.rem_euclid(1_000_000_000) as u32;
        // Go's zero time.Time (0001-01-01T00:00:00Z) marshals as null.
        if secs == -62_135_596_800 && sub == 0 {
            return Ok(Value::Null);
        }
        let secs = i64::try_from(secs).map_err(|_| self.invalid("timestamp out of range"))?;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return Err(self.invalid(format!("timestamp {seconds} is outside years 0000-9999")));
        }
        let (hh, mm, ss) = (sod / 3600, sod % 3600 / 60, sod % 60);
        let s = if micro {
            format!(
                "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:06}Z",
                sub / 1000
            )
        } else {
            format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
        };
        Ok(Value::String(s))
    }

    fn int_or_string(&self, bytes: &[u8]) -> Result<Value> {
        let (mut ty, mut int_val, mut str_val) = (0i64, 0i32, String::new());
        for (tag, value) in self.small_message("IntOrString", bytes, &[1, 2, 3])? {
            match (tag, value) {
                (1, Wire::Varint(v)) => ty = v as i64,
                (2, Wire::Varint(v)) => int_val = v as i32,
                (3, Wire::Len(b)) => str_val = utf8(self.msg.name, self.tag, self.name(), b)?,
                (3, value) => return Err(self.wrong_wire(&value, WT_LEN)),
                (_, value) => return Err(self.wrong_wire(&value, WT_VARINT)),
            }
        }
        match ty {
            0 => Ok(Value::from(int_val)),
            1 => Ok(Value::String(str_val)),
            other => Err(self.invalid(format!("IntOrString has invalid type {other}"))),
        }
    }

    fn quantity(&self, bytes: &[u8]) -> Result<Value> {
        let mut s: Option<String> = None;
        for (_, value) in self.small_message("Quantity", bytes, &[1])? {
            match value {
                Wire::Len(b) => s = Some(utf8(self.msg.name, self.tag, self.name(), b)?),
                value => return Err(self.wrong_wire(&value, WT_LEN)),
            }
        }
        match s {
            // The zero Quantity marshals as "0".
            None => Ok(Value::String("0".into())),
            Some(s) if s.is_empty() => Err(self.invalid("quantity is an empty string")),
            Some(s) => Ok(Value::String(s)),
        }
    }

    fn duration(&self, bytes: &[u8]) -> Result<Value> {
        let mut nanos = 0i64;
        for (_, value) in self.small_message("Duration", bytes, &[1])? {
            match value {
                Wire::Varint(v) => nanos = v as i64,
                value => return Err(self.wrong_wire(&value, WT_VARINT)),
            }
        }
        Ok(Value::String(go_duration_string(nanos)))
    }

    /// `{1: allows, 2: schema}`: the schema when set, else the bool.
    fn schema_or_bool(&self, schema: &'static Msg, bytes: &[u8], depth: usize) -> Result<Value> {
        let mut allows = false;
        let mut found: Option<Vec<u8>> = None;
        for (tag, value) in self.small_message("JSONSchemaPropsOrBool", bytes, &[1, 2])? {
            match (tag, value) {
                (1, Wire::Varint(v)) => allows = v != 0,
                (2, Wire::Len(b)) => found.get_or_insert_with(Vec::new).extend_from_slice(b),
                (1, value) => return Err(self.wrong_wire(&value, WT_VARINT)),
                (_, value) => return Err(self.wrong_wire(&value, WT_LEN)),
            }
        }
        match found {
            Some(b) => Ok(Value::Object(decode_message(schema, &b, depth + 1)?)),
            None => Ok(Value::Bool(allows)),
        }
    }

    /// `{1: schema, 2: repeated item}`: the list when non-empty, else the schema, else null.
    /// Items are schemas, or strings when `strings`.
    fn schema_or_list(
        &self,
        schema: &'static Msg,
        bytes: &[u8],
        depth: usize,
        strings: bool,
    ) -> Result<Value> {
        let mut one: Option<Vec<u8>> = None;
        let mut list = Vec::new();
        for (tag, value) in self.small_message("JSONSchemaPropsOr*", bytes, &[1, 2])? {
            let Wire::Len(b) = value else {
                return Err(self.wrong_wire(&value, WT_LEN));
            };
            match tag {
                1 => one.get_or_insert_with(Vec::new).extend_from_slice(b),
                _ if strings => list.push(Value::String(utf8(
                    self.msg.name,
                    self.tag,
                    self.name(),
                    b,
                )?)),
                _ => list.push(Value::Object(decode_message(schema, b, depth + 1)?)),
            }
        }
        if !list.is_empty() {
            return Ok(Value::Array(list));
        }
        match one {
            Some(b) => Ok(Value::Object(decode_message(schema, &b, depth + 1)?)),
            None => Ok(Value::Null),
        }
    }

    fn string_list(&self, bytes: &[u8]) -> Result<Value> {
        let mut items = Vec::new();
        for (_, value) in self.small_message("string list", bytes, &[1])? {
            match value {
                Wire::Len(b) => items.push(Value::String(utf8(
                    self.msg.name,
                    self.tag,
                    self.name(),
                    b,
                )?)),
                value => return Err(self.wrong_wire(&value, WT_LEN)),
            }
        }
        // Go decodes an empty list as a nil slice.
        if items.is_empty() {
            return Ok(Value::Null);
        }
        Ok(Value::Array(items))
    }

    fn raw_json(&self, bytes: &[u8]) -> Result<Value> {
        let mut raw: Option<&[u8]> = None;
        for (_, value) in self.small_message("raw JSON", bytes, &[1])? {
            match value {
                Wire::Len(b) => raw = Some(b),
                value => return Err(self.wrong_wire(&value, WT_LEN)),
            }
        }
        match raw {
            None | Some([]) => Ok(Value::Null),
            Some(b) => serde_json::from_slice(b)
                .map_err(|e| self.invalid(format!("embedded raw data is not JSON: {e}"))),
        }
    }
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `time.Duration.String()`: `"0s"`, `"1.5ms"`, `"15s"`, `"1m30s"`, `"1h0m0.5s"`.
pub fn go_duration_string(nanos: i64) -> String {
    let neg = nanos < 0;
    let n = nanos.unsigned_abs();
    let frac = |v: u64, unit: u64| -> String {
        let (whole, rest) = (v / unit, v % unit);
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.ilog10() as usize;
        let f = format!("{rest:0digits$}");
        format!("{whole}.{}", f.trim_end_matches('0'))
    };
    let body = if n == 0 {
        "0s".to_string()
    } else if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", frac(n, 1_000))
    } else if n < 1_000_000_000 {
        format!("{}ms", frac(n, 1_000_000))
    } else {
        let secs = n / 1_000_000_000;
        let sub = n % 1_000_000_000;
        let s = frac((secs % 60) * 1_000_000_000 + sub, 1_000_000_000);
        match (secs / 3600, (secs % 3600) / 60) {
            (0, 0) => format!("{s}s"),
            (0, m) => format!("{m}m{s}s"),
            (h, m) => format!("{h}h{m}m{s}s"),
        }
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `time.ParseDuration`: decimal numbers with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`
/// (`"1h2m3.5s"`, `"-1.5ms"`, `"0"`); nanoseconds, or none if malformed or out of range.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return None;
        }
        let v: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += v * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let n = total.round() as i64;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests;
