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
    let found = RefCell::new(Vec::new());
    // A syntax error ends the walk; what was found so far is still right.
    let _ = Node {
        path: String::new(),
        found: &found,
    }
    .deserialize(d);
    found.into_inner()
}

/// The message Kubernetes uses for one duplicate field.
pub fn duplicate_field_message(path: &str) -> String {
    format!("duplicate field \"{path}\"")
}

/// A value at `path`; walking it records the duplicate keys below it.
struct Node<'a> {
    path: String,
    found: &'a RefCell<Vec<String>>,
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
                found: self.found,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let child = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.borrow_mut().push(child.clone());
            }
            map.next_value_seed(Node {
                path: child,
                found: self.found,
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

/// An object key, as text.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok("null".to_string())
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
