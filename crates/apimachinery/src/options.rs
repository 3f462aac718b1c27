//! Decoding of the `meta/v1.DeleteOptions` body of a `DELETE` request (one object or a
//! collection) in any of the media types Kubernetes clients send it as: JSON (kubectl) or
//! protobuf (client-go's default for typed clients: `k8s\0` + `runtime.Unknown` wrapping a
//! `DeleteOptions` of whatever group version the client talks to).

use serde_json::{Map, Value};

use crate::protobuf::{self, ProtobufError};

/// Why a `DeleteOptions` body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteOptionsError {
    /// The body is not valid JSON.
    #[error("error decoding DeleteOptions: {0}")]
    Json(String),
    /// The body is valid JSON but not an object.
    #[error("error decoding DeleteOptions: the body must be a JSON object")]
    NotAnObject,
    /// The body is malformed protobuf.
    #[error("error decoding DeleteOptions: {0}")]
    Protobuf(ProtobufError),
    /// The body names another kind than `DeleteOptions`.
    #[error("error decoding DeleteOptions: the body is a {0:?}, not a DeleteOptions")]
    WrongKind(String),
    /// The media type is not one DeleteOptions can be sent as (HTTP 415).
    #[error(
        "the body of the request was in an unknown format ({0}) - accepted media types include: \
         application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )]
    UnsupportedMediaType(String),
}

impl DeleteOptionsError {
    /// Whether the right answer is HTTP 415 Unsupported Media Type (otherwise 400 Bad Request).
    pub fn is_unsupported_media_type(&self) -> bool {
        matches!(self, DeleteOptionsError::UnsupportedMediaType(_))
    }
}

/// Decode the body of a `DELETE` into the JSON form of `DeleteOptions`
/// (`gracePeriodSeconds`, `preconditions.{uid,resourceVersion}`, `orphanDependents`,
/// `propagationPolicy`, `dryRun`). An empty body means default options (`{}`).
///
/// `content_type` is the request's `Content-Type` header, parameters included. YAML bodies
/// are not decoded here (no client sends DeleteOptions as YAML); the caller may convert them
/// to JSON first.
pub fn decode_delete_options(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, DeleteOptionsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut v = match media.as_str() {
        "application/json" | "" | "*/*" => serde_json::from_slice::<Value>(body)
            .map_err(|e| DeleteOptionsError::Json(e.to_string()))?,
        protobuf::CONTENT_TYPE => protobuf::decode_object(body).map_err(|e| match e {
            ProtobufError::UnsupportedKind { kind, .. } => DeleteOptionsError::WrongKind(kind),
            other => DeleteOptionsError::Protobuf(other),
        })?,
        other => return Err(DeleteOptionsError::UnsupportedMediaType(other.to_string())),
    };
    if v.is_null() {
        // Go decodes `null` into a zero-value struct: default options.
        return Ok(Value::Object(Map::new()));
    }
    let Some(m) = v.as_object_mut() else {
        return Err(DeleteOptionsError::NotAnObject);
    };
    match m.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k == "DeleteOptions" => {}
        Some(other) => {
            let k = other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string());
            return Err(DeleteOptionsError::WrongKind(k));
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // --- a minimal protobuf encoder, written the way gogo-protobuf marshals these messages.

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn key(tag: u64, wt: u64, out: &mut Vec<u8>) {
        varint(tag << 3 | wt, out);
    }
    fn bytes(tag: u64, b: &[u8], out: &mut Vec<u8>) {
        key(tag, 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }
    fn uint(tag: u64, v: u64, out: &mut Vec<u8>) {
        key(tag, 0, out);
        varint(v, out);
    }

    /// `k8s\0` + runtime.Unknown{typeMeta{apiVersion, kind}, raw, contentEncoding: "", contentType: ""}:
    /// gogo emits every non-pointer field of Unknown, strings included even when empty.
    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        bytes(1, api_version.as_bytes(), &mut tm);
        bytes(2, kind.as_bytes(), &mut tm);
        let mut unk = Vec::new();
        bytes(1, &tm, &mut unk);
        bytes(2, raw, &mut unk);
        bytes(3, b"", &mut unk);
        bytes(4, b"", &mut unk);
        let mut out = b"k8s\0".to_vec();
        out.extend_from_slice(&unk);
        out
    }

    /// The DeleteOptions client-go builds for
    /// `{GracePeriodSeconds: &0, Preconditions: {UID, ResourceVersion}, PropagationPolicy: &Foreground, DryRun: ["All"]}`.
    fn full_options() -> Vec<u8> {
        let mut pre = Vec::new();
        bytes(1, b"6a3c8a0e-1111-4c3b-9d1e-0123456789ab", &mut pre);
        bytes(2, b"42", &mut pre);
        let mut raw = Vec::new();
        uint(1, 0, &mut raw);
        bytes(2, &pre, &mut raw);
        bytes(4, b"Foreground", &mut raw);
        bytes(5, b"All", &mut raw);
        raw
    }

    #[test]
    fn protobuf_delete_options_from_client_go() {
        let body = envelope("apps/v1", "DeleteOptions", &full_options());
        let got = decode_delete_options(Some("application/vnd.kubernetes.protobuf"), &body)
            .expect("decodes");
        assert_eq!(
            got,
            json!({
                "apiVersion": "apps/v1", "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "6a3c8a0e-1111-4c3b-9d1e-0123456789ab", "resourceVersion": "42"},
                "propagationPolicy": "Foreground",
                "dryRun": ["All"],
            })
        );
    }

    #[test]
    fn protobuf_orphan_dependents_and_negative_grace() {
        let mut raw = Vec::new();
        uint(1, (-5i64) as u64, &mut raw);
        uint(3, 1, &mut raw);
        let body = envelope("v1", "DeleteOptions", &raw);
        let got = decode_delete_options(Some("application/vnd.kubernetes.protobuf"), &body)
            .expect("decodes");
        assert_eq!(got["gracePeriodSeconds"], json!(-5));
        assert_eq!(got["orphanDependents"], json!(true));
    }

    #[test]
    fn empty_protobuf_options_are_defaults() {
        // `Body(&metav1.DeleteOptions{})`: an empty raw message.
        let body = envelope("v1", "DeleteOptions", &[]);
        let got = decode_delete_options(Some("application/vnd.kubernetes.protobuf"), &body)
            .expect("decodes");
        assert_eq!(got, json!({"apiVersion": "v1", "kind": "DeleteOptions"}));
        assert_eq!(
            decode_delete_options(Some("application/vnd.kubernetes.protobuf"), b"").unwrap(),
            json!({})
        );
    }

    #[test]
    fn protobuf_of_another_kind_is_refused() {
        let body = envelope("v1", "ConfigMap", &[]);
        assert!(matches!(
            decode_delete_options(Some("application/vnd.kubernetes.protobuf"), &body),
            Err(DeleteOptionsError::WrongKind(k)) if k == "ConfigMap"
        ));
        let body = envelope("v1", "Frobnicator", &[]);
        assert!(matches!(
            decode_delete_options(Some("application/vnd.kubernetes.protobuf"), &body),
            Err(DeleteOptionsError::WrongKind(k)) if k == "Frobnicator"
        ));
    }

    #[test]
    fn malformed_protobuf_is_an_error_not_a_panic() {
        let mut body = envelope("v1", "DeleteOptions", &full_options());
        body.truncate(body.len() - 3);
        assert!(matches!(
            decode_delete_options(Some("application/vnd.kubernetes.protobuf"), &body),
            Err(DeleteOptionsError::Protobuf(_))
        ));
        assert!(matches!(
            decode_delete_options(Some("application/vnd.kubernetes.protobuf"), b"{}"),
            Err(DeleteOptionsError::Protobuf(ProtobufError::BadMagic))
        ));
    }

    #[test]
    fn json_bodies() {
        let got = decode_delete_options(
            Some("application/json; charset=utf-8"),
            br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#,
        )
        .unwrap();
        assert_eq!(got["propagationPolicy"], "Background");
        assert_eq!(decode_delete_options(None, b"  \n").unwrap(), json!({}));
        assert_eq!(decode_delete_options(None, b"null").unwrap(), json!({}));
        assert!(matches!(
            decode_delete_options(None, b"{"),
            Err(DeleteOptionsError::Json(_))
        ));
        assert_eq!(
            decode_delete_options(None, b"[1]"),
            Err(DeleteOptionsError::NotAnObject)
        );
        assert_eq!(
            decode_delete_options(None, br#"{"kind":"Pod"}"#),
            Err(DeleteOptionsError::WrongKind("Pod".into()))
        );
        let e = decode_delete_options(Some("text/plain"), b"x").unwrap_err();
        assert!(e.is_unsupported_media_type());
    }
}
