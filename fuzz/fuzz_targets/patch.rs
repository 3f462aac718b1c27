//! The patch engine a PATCH request reaches: JSON patch (RFC 6902), JSON merge patch
//! (RFC 7386), strategic merge patch (per built-in kind) and server-side apply (with the
//! object's managed fields), the bytes split by `arbitrary` into document, patch and options.
#![no_main]

use arbitrary::Arbitrary;
use daas_apimachinery::{apply, patch};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "Service",
    "ConfigMap",
    "Node",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "Unknown",
];

#[derive(Debug, Arbitrary)]
enum Engine {
    Json,
    Merge,
    Strategic,
    Apply { force: bool, status: bool },
    Pointer,
}

/// The header (engine, its options, the kind) comes from `arbitrary`; the rest of the input is
/// the live object and the patch, separated by a NUL byte (so real JSON files make the seeds).
#[derive(Debug)]
struct Input<'a> {
    engine: Engine,
    kind: u8,
    document: &'a str,
    patch: &'a str,
}

impl<'a> Arbitrary<'a> for Input<'a> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let engine = Engine::arbitrary(u)?;
        let kind = u8::arbitrary(u)?;
        let rest = u.bytes(u.len())?;
        let text = std::str::from_utf8(rest).map_err(|_| arbitrary::Error::IncorrectFormat)?;
        let (document, patch) = text.split_once('\0').unwrap_or(("{}", text));
        Ok(Input {
            engine,
            kind,
            document,
            patch,
        })
    }
}

fuzz_target!(|input: Input<'_>| {
    let kind = KINDS[usize::from(input.kind) % KINDS.len()];
    if let Engine::Pointer = input.engine {
        let _ = patch::parse_json_pointer(input.patch);
        return;
    }
    let Ok(doc) = serde_json::from_str::<Value>(input.document) else {
        return;
    };
    let Ok(p) = serde_json::from_str::<Value>(input.patch) else {
        return;
    };
    match input.engine {
        Engine::Json => {
            let _ = patch::json_patch(&doc, &p);
        }
        Engine::Merge => {
            let out = patch::merge_patch(&doc, &p);
            // RFC 7386: a merge patch applied twice changes nothing more.
            assert_eq!(patch::merge_patch(&out, &p), out);
        }
        Engine::Strategic => {
            let _ = patch::strategic_merge_patch(&doc, &p, kind);
        }
        Engine::Apply { force, status } => {
            let scope = if status {
                apply::Scope::Status
            } else {
                apply::Scope::MainWithoutStatus
            };
            let entries =
                apply::decode_managed_fields(&doc["metadata"]["managedFields"]).unwrap_or_default();
            let w = apply::Writer {
                manager: "fuzz",
                subresource: "",
                api_version: "v1",
                now: "2026-01-01T00:00:00Z",
                schema: apply::Schema::Builtin,
            };
            if apply::check_duplicates(&p).is_err() {
                return;
            }
            if let Ok(applied) = apply::apply(Some(&doc), &p, entries.clone(), &w, force, scope) {
                let _ = apply::encode_managed_fields(&applied.managed);
            }
            let _ = apply::update(Some(&doc), &p, entries, &w, scope);
        }
        Engine::Pointer => {}
    }
});
