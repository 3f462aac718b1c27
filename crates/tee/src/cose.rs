//! Minimal COSE_Sign1 (RFC 8152) as used by AWS Nitro attestation documents:
//! `[protected: bstr({1: -35}), unprotected: {}, payload: bstr, signature: bstr(96)]`,
//! optionally wrapped in CBOR tag 18.

use ciborium::value::{Integer, Value};

use crate::verify::AttestationError;

/// COSE tag for COSE_Sign1.
const COSE_SIGN1_TAG: u64 = 18;
/// COSE algorithm identifier of ECDSA w/ SHA-384 (ES384).
const ALG_ES384: i64 = -35;
/// Upper bound on a whole attestation document (NSM responses are at most 16 KiB of payload).
pub(crate) const MAX_DOCUMENT_LEN: usize = 32 * 1024;
/// Payload must be 1..MAX_PAYLOAD_LEN bytes (as in Sui's native).
const MAX_PAYLOAD_LEN: usize = 16 * 1024;
/// ES384 raw signature r || s.
pub(crate) const ES384_SIG_LEN: usize = 96;

#[derive(Debug, Clone)]
pub(crate) struct CoseSign1 {
    pub protected: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Decode exactly one CBOR item from `bytes`, rejecting trailing data.
pub(crate) fn decode_one(bytes: &[u8], what: &str) -> Result<Value, AttestationError> {
    let mut rest = bytes;
    let v: Value = ciborium::de::from_reader(&mut rest)
        .map_err(|e| AttestationError::Cbor(format!("{what}: {e}")))?;
    if !rest.is_empty() {
        return Err(AttestationError::Cbor(format!(
            "{what}: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(v)
}

pub(crate) fn encode(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The serialized protected header `{1: -35}`.
pub(crate) fn es384_protected_header() -> Vec<u8> {
    // a1 (map of 1) 01 (key 1 = alg) 38 22 (negative int -35)
    vec![0xa1, 0x01, 0x38, 0x22]
}

impl CoseSign1 {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, AttestationError> {
        if bytes.is_empty() || bytes.len() > MAX_DOCUMENT_LEN {
            return Err(AttestationError::CoseStructure(format!(
                "document length {} outside 1..={MAX_DOCUMENT_LEN}",
                bytes.len()
            )));
        }
        let value = decode_one(bytes, "COSE_Sign1")?;
        let value = match value {
            Value::Tag(COSE_SIGN1_TAG, inner) => *inner,
            Value::Tag(t, _) => {
                return Err(AttestationError::CoseStructure(format!(
                    "unexpected CBOR tag {t} (COSE_Sign1 is 18)"
                )))
            }
            other => other,
        };
        let Value::Array(items) = value else {
            return Err(AttestationError::CoseStructure(
                "COSE_Sign1 is not an array".into(),
            ));
        };
        let [protected, unprotected, payload, signature]: [Value; 4] =
            items.try_into().map_err(|v: Vec<Value>| {
                AttestationError::CoseStructure(format!(
                    "COSE_Sign1 has {} elements, expected 4",
                    v.len()
                ))
            })?;
        let Value::Bytes(protected) = protected else {
            return Err(AttestationError::CoseStructure(
                "protected header is not a byte string".into(),
            ));
        };
        if !matches!(unprotected, Value::Map(_)) {
            return Err(AttestationError::CoseStructure(
                "unprotected header is not a map".into(),
            ));
        }
        let Value::Bytes(payload) = payload else {
            return Err(AttestationError::CoseStructure(
                "payload is not a byte string".into(),
            ));
        };
        let Value::Bytes(signature) = signature else {
            return Err(AttestationError::CoseStructure(
                "signature is not a byte string".into(),
            ));
        };
        check_protected_header(&protected)?;
        if payload.is_empty() || payload.len() >= MAX_PAYLOAD_LEN {
            return Err(AttestationError::CoseStructure(format!(
                "payload length {} outside 1..{MAX_PAYLOAD_LEN}",
                payload.len()
            )));
        }
        if signature.len() != ES384_SIG_LEN {
            return Err(AttestationError::CoseStructure(format!(
                "signature length {} != {ES384_SIG_LEN}",
                signature.len()
            )));
        }
        Ok(Self {
            protected,
            payload,
            signature,
        })
    }

    /// `Sig_structure = ["Signature1", protected, external_aad = h'', payload]`, the bytes signed.
    pub(crate) fn sig_structure(protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
        encode(&Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected.to_vec()),
            Value::Bytes(Vec::new()),
            Value::Bytes(payload.to_vec()),
        ]))
    }

    /// Serialize untagged, as the NSM does.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, String> {
        encode(&Value::Array(vec![
            Value::Bytes(self.protected.clone()),
            Value::Map(Vec::new()),
            Value::Bytes(self.payload.clone()),
            Value::Bytes(self.signature.clone()),
        ]))
    }
}

fn check_protected_header(bytes: &[u8]) -> Result<(), AttestationError> {
    let v = decode_one(bytes, "protected header")?;
    let Value::Map(entries) = v else {
        return Err(AttestationError::UnsupportedAlgorithm(
            "protected header is not a map".into(),
        ));
    };
    match entries.as_slice() {
        [(Value::Integer(k), Value::Integer(alg))]
            if *k == Integer::from(1) && *alg == Integer::from(ALG_ES384) =>
        {
            Ok(())
        }
        _ => Err(AttestationError::UnsupportedAlgorithm(format!(
            "protected header must be exactly {{1: -35}} (ES384), got {entries:?}"
        ))),
    }
}
