//! A cheap test that skips decoding a store event a filtered watch cannot be interested in. Every
//! node's agent (and every hollow node) watches `pods?fieldSelector=spec.nodeName=<node>`; with a
//! thousand nodes, each pod write would otherwise be parsed (object and previous state) once per
//! node. A stored pod is compact JSON, so a pod on node X contains the bytes `"nodeName":"X"`; an
//! event whose object and previous state both lack them matches the selector neither now nor
//! before, and yields no watch event. A false positive only costs the full decode.
//!
//! The same test, handed to the store as a [`WatchRoute`], lets the store offer a pod event only
//! to the watches of the nodes it names (found in a map), instead of to every node's watch: one
//! pod write costs O(1) node watches, not O(nodes). The prefilter stays for the events a store
//! offers anyway (a replay from history, a backend that does not route).

use memchr::memmem::Finder;

use daas_apimachinery::selector::FieldOperator;
use daas_store::WatchRoute;

use crate::handlers::Filter;
use crate::resources::ResourceDef;

/// The store route of a watch on one node's pods (see the module documentation).
pub(crate) fn route(def: &ResourceDef, filter: &Filter) -> Option<WatchRoute> {
    WatchRoute::new("nodeName", node_of(def, filter)?)
}

/// The node a pod watch is restricted to by `spec.nodeName=<node>`, when it is one JSON writes
/// as it is (node names are DNS names).
fn node_of<'a>(def: &ResourceDef, filter: &'a Filter) -> Option<&'a str> {
    if def.plural != "pods" || !def.group.is_empty() {
        return None;
    }
    let req = filter.fields.as_ref()?.requirements().iter().find(|r| {
        r.field == "spec.nodeName" && r.operator == FieldOperator::Equals && !r.value.is_empty()
    })?;
    req.value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
        .then_some(req.value.as_str())
}

/// The bytes every matching stored object contains, when the watch has such a test.
pub(crate) fn needle(def: &ResourceDef, filter: &Filter) -> Option<Finder<'static>> {
    let bytes = format!("\"nodeName\":\"{}\"", node_of(def, filter)?).into_bytes();
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
