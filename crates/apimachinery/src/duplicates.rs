//! Detection of duplicate object keys in a request body, for strict field
//! validation (`fieldValidation=Strict` refuses them, `Warn` reports them), as
//! Kubernetes' strict decoding does: `duplicate field "spec.replicas"`.
//!
//! `serde_json` (like Go's `encoding/json`) silently keeps the last of two
//! equal keys, so the check walks the document once more through any serde
//! [`Deserializer`] (JSON here, YAML in the API server) without building it,
//! remembering the keys of each object. Depth is bounded by the
//! deserializer's own recursion limit (128 for `serde_json` and
//! `serde_yaml`); on malformed input the walk stops, keeping what it found
//! (the real decoder reports the syntax error).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

/// The dotted paths (`spec.replicas`, `spec.containers[0].name`) of every
/// repeated object key in the JSON document `body`, in document order; one
/// entry per repetition.
pub fn json_duplicate_fields(body: &[u8]) -> Vec<String> {
    duplicate_fields_in(&mut serde_json::Deserializer::from_slice(body))
}

/// [`json_duplicate_fields`] for a document read by any serde deserializer
/// (e.g. `serde_yaml::Deserializer::from_slice`). Keys that are scalars other
/// than strings (YAML `1:`, `true:`) are compared in their text form.
pub fn duplicate_fields_in<'de, D: Deserializer<'de>>(d: D) -> Vec<String> {
    let walk = Walk::default();
    // A syntax error ends the walk; what was found so far is still right.
    let _ = Node {
        path: String::new(),
        walk: &walk,
    }
    .deserialize(d);
    walk.found.into_inner()
}

/// At most this many repeated keys are located (each costs one more walk of the document).
pub const MAX_LOCATED: usize = 32;

/// Each repeated key of a document (up to [`MAX_LOCATED`]), in document order, as Go's
/// `%#v` shows it (`"foo"`, `true`, `1`), with the error the deserializer raised when the walk
/// stopped at that key: a deserializer that knows positions (`serde_yaml`) puts the key's
/// location in it, for messages such as YAML's `line 11: key "foo" already set in map`.
/// `make` opens the document afresh for each walk.
pub fn located_duplicate_keys<'de, D, F>(mut make: F) -> Vec<(String, D::Error)>
where
    D: Deserializer<'de>,
    F: FnMut() -> D,
{
    let total = duplicate_fields_in(make()).len().min(MAX_LOCATED);
    let mut out = Vec::with_capacity(total);
    for n in 0..total {
        let walk = Walk {
            stop_at: Some(n),
            ..Walk::default()
        };
        let res = Node {
            path: String::new(),
            walk: &walk,
        }
        .deserialize(make());
        match (res, walk.stopped.into_inner()) {
            (Err(e), Some(key)) => out.push((key, e)),
            _ => break,
        }
    }
    out
}

/// The state of one walk: the duplicate paths found, and, when the walk is to stop at the
/// `stop_at`-th duplicate key, that key once reached.
#[derive(Default)]
struct Walk {
    found: RefCell<Vec<String>>,
    stop_at: Option<usize>,
    stopped: RefCell<Option<String>>,
}

/// The message Kubernetes uses for one duplicate field.
pub fn duplicate_field_message(path: &str) -> String {
    format!("duplicate field \"{path}\"")
}

/// A value at `path`; walking it records the duplicate keys below it.
struct Node<'a> {
    path: String,
    walk: &'a Walk,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! ignore_scalars {
    ($($f:ident: $t:ty),*) => {$(
        fn $f<E: de::Error>(self, _: $t) -> Result<(), E> {
            Ok(())
        }
    )*};
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    ignore_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
        visit_u128: u128, visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let child = Node {
                path: format!("{}[{i}]", self.path),
                walk: self.walk,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            let stop = self.walk.stop_at == Some(self.walk.found.borrow().len());
            let seed = Key {
                stop_on: stop.then_some((&seen, self.walk)),
            };
            let Some(key) = map.next_key_seed(seed)? else {
                break;
            };
            let child = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.walk.found.borrow_mut().push(child.clone());
            }
            map.next_value_seed(Node {
                path: child,
                walk: self.walk,
            })?;
        }
        Ok(())
    }

    /// A YAML tagged value (`!Tag value`): walk the value.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (_, variant): (de::IgnoredAny, _) = data.variant()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

/// An object key, as text. With `stop_on`, a key already in the set ends the walk with an
/// error raised at it, after noting it (as Go's `%#v` shows it) in the walk.
struct Key<'a> {
    stop_on: Option<(&'a HashSet<String>, &'a Walk)>,
}

impl Key<'_> {
    fn key<E: de::Error>(self, text: String, go: impl FnOnce() -> String) -> Result<String, E> {
        if let Some((seen, walk)) = self.stop_on {
            if seen.contains(&text) {
                *walk.stopped.borrow_mut() = Some(go());
                return Err(E::custom("duplicate key"));
            }
        }
        Ok(text)
    }
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        let quoted = || serde_json::to_string(v).unwrap_or_else(|_| format!("{v:?}"));
        self.key(v.to_string(), quoted)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.key(v.to_string(), || v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.key(v.to_string(), || v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.key(v.to_string(), || v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.key(v.to_string(), || v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        self.key("null".to_string(), || "<nil>".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_conformance_deployment() {
        let body = br#"{
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "my-dep", "labels": {"app": "nginx"}},
            "spec": {"unknownField": "foo", "replicas": 2, "replicas": 3,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}}}"#;
        assert_eq!(json_duplicate_fields(body), ["spec.replicas"]);
        assert_eq!(
            duplicate_field_message("spec.replicas"),
            r#"duplicate field "spec.replicas""#
        );
    }

    #[test]
    fn paths_through_arrays_maps_and_escapes() {
        let body = br#"{"kind":"Pod","kind":"Pod","spec":{"containers":[{"name":"a"},
            {"name":"b","image":"x","name":"c","env":[{"name":"E","value":"1","value":"2"}]}]},
            "metadata":{"labels":{"a\u002eb":"1","a.b":"2"}},"x":[[{"k":1,"k":2}]],"k":{"k":1}}"#;
        assert_eq!(
            json_duplicate_fields(body),
            [
                "kind",
                "spec.containers[1].name",
                "spec.containers[1].env[0].value",
                "metadata.labels.a.b",
                "x[0][0].k",
            ]
        );
    }

    #[test]
    fn no_duplicates_and_same_keys_in_different_objects() {
        assert!(
            json_duplicate_fields(br#"{"a":{"n":1},"b":{"n":1},"c":[{"n":1},{"n":2}]}"#).is_empty()
        );
        assert!(json_duplicate_fields(b"[]").is_empty());
        assert!(json_duplicate_fields(b"").is_empty());
        assert!(
            json_duplicate_fields(br#"{"s":"a \" \\ } ] , :","t":-1.5e3,"u":null}"#).is_empty()
        );
    }

    #[test]
    fn three_times_is_two_repetitions() {
        assert_eq!(json_duplicate_fields(br#"{"a":1,"a":2,"a":3}"#), ["a", "a"]);
    }

    #[test]
    fn malformed_input_stops_without_panicking() {
        assert_eq!(json_duplicate_fields(br#"{"a":1,"a":2,"b":"#), ["a"]);
        assert!(json_duplicate_fields(br#"{"a" 1}"#).is_empty());
        assert!(json_duplicate_fields(b"\"\\").is_empty());
        let deep = "[".repeat(100_000);
        assert!(json_duplicate_fields(deep.as_bytes()).is_empty());
        let deep = format!("{}1{}", "[".repeat(127), "]".repeat(127));
        assert!(json_duplicate_fields(deep.as_bytes()).is_empty());
        let deep = "{\"a\":".repeat(100_000);
        assert!(json_duplicate_fields(deep.as_bytes()).is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = json_duplicate_fields(&bytes);
        }

        #[test]
        fn serialized_maps_have_no_duplicates(m in proptest::collection::btree_map("[a-z\"\\\\.]{0,4}", 0i64..9, 0..8)) {
            let body = serde_json::to_vec(&serde_json::json!({"outer": m, "list": [m.clone()]})).unwrap();
            prop_assert!(json_duplicate_fields(&body).is_empty());
        }
    }
}
