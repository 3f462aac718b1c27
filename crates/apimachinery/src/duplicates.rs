//! Detection of duplicate object keys in a raw JSON document, for strict field
//! validation (`fieldValidation=Strict` refuses them, `Warn` reports them), as
//! Kubernetes' strict JSON decoding does: `duplicate field "spec.replicas"`.
//!
//! `serde_json` (like Go's `encoding/json`) silently keeps the last of two
//! equal keys, so this has to look at the bytes. The scan is a small JSON
//! tokenizer: it never allocates more than the paths it reports, never
//! recurses deeper than [`MAX_DEPTH`], and on malformed input simply stops
//! (the real decoder reports the syntax error).

use std::collections::HashSet;

/// Nesting deeper than this is not scanned (serde_json refuses it anyway).
pub const MAX_DEPTH: usize = 256;

/// The dotted paths (`spec.replicas`, `spec.containers[0].name`) of every
/// repeated object key in the JSON document `body`, in document order; one
/// entry per repetition.
pub fn json_duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut s = Scanner {
        b: body,
        i: 0,
        found: Vec::new(),
    };
    // A syntax error ends the scan; what was found so far is still right.
    let _ = s.value("", 0);
    s.found
}

/// The message Kubernetes uses for one duplicate field.
pub fn duplicate_field_message(path: &str) -> String {
    format!("duplicate field \"{path}\"")
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    found: Vec<String>,
}

/// Malformed or too deep: stop scanning.
struct Stop;

impl Scanner<'_> {
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Result<u8, Stop> {
        self.ws();
        self.b.get(self.i).copied().ok_or(Stop)
    }

    fn expect(&mut self, c: u8) -> Result<(), Stop> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Stop)
        }
    }

    /// A string starting at the current `"`; returns its raw bytes, quotes included.
    fn string(&mut self) -> Result<&[u8], Stop> {
        let start = self.i;
        if self.b.get(self.i) != Some(&b'"') {
            return Err(Stop);
        }
        self.i += 1;
        loop {
            match self.b.get(self.i) {
                None => return Err(Stop),
                Some(b'\\') => self.i += 2,
                Some(b'"') => {
                    self.i += 1;
                    return self.b.get(start..self.i).ok_or(Stop);
                }
                Some(_) => self.i += 1,
            }
        }
    }

    fn value(&mut self, path: &str, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop);
        }
        match self.peek()? {
            b'{' => self.object(path, depth),
            b'[' => self.array(path, depth),
            b'"' => self.string().map(|_| ()),
            _ => {
                // number, true, false, null: up to the next delimiter
                let start = self.i;
                while let Some(c) = self.b.get(self.i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    Err(Stop)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn object(&mut self, path: &str, depth: usize) -> Result<(), Stop> {
        self.expect(b'{')?;
        let mut seen: HashSet<String> = HashSet::new();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek()? != b'"' {
                return Err(Stop);
            }
            let raw = self.string()?;
            let key: String = serde_json::from_slice(raw).map_err(|_| Stop)?;
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if !seen.insert(key) {
                self.found.push(child.clone());
            }
            self.expect(b':')?;
            self.value(&child, depth + 1)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Stop),
            }
        }
    }

    fn array(&mut self, path: &str, depth: usize) -> Result<(), Stop> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        let mut idx = 0usize;
        loop {
            self.value(&format!("{path}[{idx}]"), depth + 1)?;
            idx += 1;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Stop),
            }
        }
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
