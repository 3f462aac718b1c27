//! A cheap test that skips decoding a store event a filtered watch cannot be interested in. Every
//! node's agent (and every hollow node) watches `pods?fieldSelector=spec.nodeName=<node>`; with a
//! thousand nodes, each pod write would otherwise be parsed (object and previous state) once per
//! node. A stored pod is compact JSON, so a pod on node X contains the bytes `"nodeName":"X"`; an
//! event whose object and previous state both lack them matches the selector neither now nor
//! before, and yields no watch event. A false positive only costs the full decode.

use memchr::memmem::Finder;

use daas_apimachinery::selector::FieldOperator;

use crate::handlers::Filter;
use crate::resources::ResourceDef;

/// The bytes every matching stored object contains, when the watch has such a test.
pub(crate) fn needle(def: &ResourceDef, filter: &Filter) -> Option<Finder<'static>> {
    if def.plural != "pods" || !def.group.is_empty() {
        return None;
    }
    let req = filter.fields.as_ref()?.requirements().iter().find(|r| {
        r.field == "spec.nodeName" && r.operator == FieldOperator::Equals && !r.value.is_empty()
    })?;
    // Only values JSON writes as they are (node names are DNS names).
    if !req
        .value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
    {
        return None;
    }
    let bytes = format!("\"nodeName\":\"{}\"", req.value).into_bytes();
    Some(Finder::new(&bytes).into_owned())
}

/// Whether the event may concern the watch (else it can be skipped without decoding).
pub(crate) fn may_match(needle: &Finder<'_>, value: &[u8], prev: Option<&[u8]>) -> bool {
    needle.find(value).is_some() || prev.is_some_and(|p| needle.find(p).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_node_name_in_compact_json_only_for_that_node() {
        let pod = |node: &str| {
            serde_json::to_vec(
                &json!({"metadata": {"name": "p", "annotations": {"x": "\"nodeName\":\"n1\""}},
                "spec": {"containers": [], "nodeName": node}}),
            )
            .unwrap()
        };
        let n1 = Finder::new(b"\"nodeName\":\"n1\"").into_owned();
        let n10 = Finder::new(b"\"nodeName\":\"n10\"").into_owned();
        assert!(may_match(&n1, &pod("n1"), None));
        assert!(!may_match(&n10, &pod("n1"), None));
        assert!(!may_match(&n10, &pod("n100"), None));
        assert!(may_match(&n10, &pod("n2"), Some(&pod("n10"))));
    }
}
