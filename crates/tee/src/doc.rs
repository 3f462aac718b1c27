//! The attestation document payload (AWS "AttestationDocument" CBOR map).

use std::collections::BTreeMap;

use ciborium::value::Value;

use crate::cose::decode_one;
use crate::verify::AttestationError;

/// Raw fields of an attestation document payload, type- and size-checked but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationFields {
    pub module_id: String,
    pub digest: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    pub pcrs: BTreeMap<u16, Vec<u8>>,
    /// Leaf certificate (DER).
    pub certificate: Vec<u8>,
    /// CA bundle (DER), root first.
    pub cabundle: Vec<Vec<u8>>,
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
}

/// PCR indices that every Nitro document carries (as required by Sui's verifier).
pub(crate) const REQUIRED_PCRS: [u16; 6] = [0, 1, 2, 3, 4, 8];
const MAX_PCRS: usize = 32;
const MAX_CERT_LEN: usize = 1024;
const MAX_PUBLIC_KEY_LEN: usize = 1024;
pub(crate) const MAX_USER_DATA_LEN: usize = 512;
pub(crate) const MAX_NONCE_LEN: usize = 512;
/// Longest cabundle accepted (bounds the verification work).
pub(crate) const MAX_CABUNDLE: usize = 9;

fn field_err(field: &'static str, reason: impl Into<String>) -> AttestationError {
    AttestationError::InvalidField {
        field,
        reason: reason.into(),
    }
}

fn bytes_in(
    field: &'static str,
    v: Value,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, AttestationError> {
    match v {
        Value::Bytes(b) if (min..=max).contains(&b.len()) => Ok(b),
        Value::Bytes(b) => Err(field_err(
            field,
            format!("length {} outside {min}..={max}", b.len()),
        )),
        _ => Err(field_err(field, "not a byte string")),
    }
}

fn optional_bytes(
    field: &'static str,
    v: Option<Value>,
    min: usize,
    max: usize,
) -> Result<Option<Vec<u8>>, AttestationError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => bytes_in(field, v, min, max).map(Some),
    }
}

impl AttestationFields {
    /// Decode and type/size-check a payload.
    pub fn parse(payload: &[u8]) -> Result<Self, AttestationError> {
        let Value::Map(entries) = decode_one(payload, "attestation payload")? else {
            return Err(field_err("payload", "not a map"));
        };
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in entries {
            let Value::Text(k) = k else {
                return Err(field_err("payload", "non-text key"));
            };
            if map.insert(k.clone(), v).is_some() {
                return Err(field_err("payload", format!("duplicate key {k}")));
            }
        }
        let mut take = |k: &'static str| map.remove(k);

        let module_id = match take("module_id") {
            Some(Value::Text(s)) if !s.is_empty() => s,
            Some(Value::Text(_)) => return Err(field_err("module_id", "empty")),
            Some(_) => return Err(field_err("module_id", "not a text string")),
            None => return Err(field_err("module_id", "missing")),
        };
        let digest = match take("digest") {
            Some(Value::Text(s)) => s,
            Some(_) => return Err(field_err("digest", "not a text string")),
            None => return Err(field_err("digest", "missing")),
        };
        let timestamp = match take("timestamp") {
            Some(Value::Integer(i)) => match u64::try_from(i) {
                Ok(t) if t > 0 => t,
                _ => return Err(field_err("timestamp", "not a positive u64")),
            },
            Some(_) => return Err(field_err("timestamp", "not an integer")),
            None => return Err(field_err("timestamp", "missing")),
        };
        let pcrs = match take("pcrs") {
            Some(Value::Map(m)) => {
                if m.is_empty() || m.len() > MAX_PCRS {
                    return Err(field_err(
                        "pcrs",
                        format!("{} entries, expected 1..={MAX_PCRS}", m.len()),
                    ));
                }
                let mut pcrs = BTreeMap::new();
                for (k, v) in m {
                    let idx = match k {
                        Value::Integer(i) => match u16::try_from(i) {
                            Ok(i) if usize::from(i) < MAX_PCRS => i,
                            _ => return Err(field_err("pcrs", "index outside 0..32")),
                        },
                        _ => return Err(field_err("pcrs", "index is not an integer")),
                    };
                    let val = match v {
                        Value::Bytes(b) if matches!(b.len(), 32 | 48 | 64) => b,
                        Value::Bytes(b) => {
                            return Err(field_err(
                                "pcrs",
                                format!("PCR{idx} has length {}", b.len()),
                            ))
                        }
                        _ => {
                            return Err(field_err("pcrs", format!("PCR{idx} is not a byte string")))
                        }
                    };
                    if pcrs.insert(idx, val).is_some() {
                        return Err(field_err("pcrs", format!("duplicate index {idx}")));
                    }
                }
                for i in REQUIRED_PCRS {
                    if !pcrs.contains_key(&i) {
                        return Err(field_err("pcrs", format!("PCR{i} missing")));
                    }
                }
                pcrs
            }
            Some(_) => return Err(field_err("pcrs", "not a map")),
            None => return Err(field_err("pcrs", "missing")),
        };
        let certificate = match take("certificate") {
            Some(v) => bytes_in("certificate", v, 1, MAX_CERT_LEN)?,
            None => return Err(field_err("certificate", "missing")),
        };
        let cabundle = match take("cabundle") {
            Some(Value::Array(a)) => {
                if a.is_empty() || a.len() > MAX_CABUNDLE {
                    return Err(field_err(
                        "cabundle",
                        format!("{} entries, expected 1..={MAX_CABUNDLE}", a.len()),
                    ));
                }
                a.into_iter()
                    .map(|v| bytes_in("cabundle", v, 1, MAX_CERT_LEN))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => return Err(field_err("cabundle", "not an array")),
            None => return Err(field_err("cabundle", "missing")),
        };
        let public_key = optional_bytes("public_key", take("public_key"), 1, MAX_PUBLIC_KEY_LEN)?;
        let user_data = optional_bytes("user_data", take("user_data"), 0, MAX_USER_DATA_LEN)?;
        let nonce = optional_bytes("nonce", take("nonce"), 0, MAX_NONCE_LEN)?;
        Ok(Self {
            module_id,
            digest,
            timestamp,
            pcrs,
            certificate,
            cabundle,
            public_key,
            user_data,
            nonce,
        })
    }

    /// Encode as the CBOR map (field order as produced by the NSM).
    pub fn to_cbor(&self) -> Result<Vec<u8>, String> {
        let opt = |b: &Option<Vec<u8>>| match b {
            Some(b) => Value::Bytes(b.clone()),
            None => Value::Null,
        };
        let v = Value::Map(vec![
            (
                Value::Text("module_id".into()),
                Value::Text(self.module_id.clone()),
            ),
            (
                Value::Text("digest".into()),
                Value::Text(self.digest.clone()),
            ),
            (
                Value::Text("timestamp".into()),
                Value::Integer(self.timestamp.into()),
            ),
            (
                Value::Text("pcrs".into()),
                Value::Map(
                    self.pcrs
                        .iter()
                        .map(|(k, v)| (Value::Integer((*k).into()), Value::Bytes(v.clone())))
                        .collect(),
                ),
            ),
            (
                Value::Text("certificate".into()),
                Value::Bytes(self.certificate.clone()),
            ),
            (
                Value::Text("cabundle".into()),
                Value::Array(
                    self.cabundle
                        .iter()
                        .map(|c| Value::Bytes(c.clone()))
                        .collect(),
                ),
            ),
            (Value::Text("public_key".into()), opt(&self.public_key)),
            (Value::Text("user_data".into()), opt(&self.user_data)),
            (Value::Text("nonce".into()), opt(&self.nonce)),
        ]);
        crate::cose::encode(&v)
    }
}
