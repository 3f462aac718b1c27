//! Routed watches: O(1) fan-out for watchers that only want one value of one JSON field.
//!
//! Every node's agent (and every hollow node) watches `pods?fieldSelector=spec.nodeName=<node>`.
//! Offering each pod event to all of them costs one channel send, one task wake-up and one
//! filter evaluation per node: O(nodes) per pod write, and a queued copy per node while they
//! catch up. A [`WatchRoute`] tells the store that a watcher can only be interested in events
//! whose value or previous value holds the compact-JSON string member `"field":"value"` (a pod
//! bound to node X holds `"nodeName":"X"`). The store keeps such watchers in a map by value,
//! reads the field's values out of each event once, and offers the event only to the watchers
//! registered under them ([`Subscribers::deliver`]).
//!
//! A route is a hint for the store, never a filter the consumer may rely on: an event can be
//! offered to a routed watcher that does not want it (another member of that name elsewhere in
//! the object, a watch replayed from history, a backend without routing), so the consumer still
//! applies its own selector. It must never withhold an event the watcher wants: the value must
//! be one JSON writes as it is ([`WatchRoute::new`] refuses others), and the stored values must
//! be compact JSON (as the API server writes them).

use std::collections::{BTreeMap, HashMap, HashSet};

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchRoute {
    field: String,
    value: String,
}

/// A byte JSON writes unescaped and that cannot end a string or a member name.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'/')
}

impl WatchRoute {
    /// A route on the string member `field` equal to `value`; `None` when either is empty or has
    /// a byte JSON would escape (such a watch is simply not routed).
    pub fn new(field: &str, value: &str) -> Option<WatchRoute> {
        let ok = |s: &str| !s.is_empty() && s.bytes().all(plain);
        (ok(field) && ok(value)).then(|| WatchRoute {
            field: field.to_string(),
            value: value.to_string(),
        })
    }

    pub fn field(&self) -> &str {
        &self.field
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The values of every string member named `field` in compact JSON `json` (a superset: a
/// member of that name anywhere in the document counts).
pub(crate) fn member_values<'a>(json: &'a [u8], field: &str) -> Vec<&'a [u8]> {
    let needle = format!("\"{field}\":\"");
    let needle = needle.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&json[from..], needle) {
        let start = from + at + needle.len();
        let len = json[start..]
            .iter()
            .position(|b| *b == b'"')
            .unwrap_or(json.len() - start);
        out.push(&json[start..start + len]);
        from = start + len;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|b| *b == first)
        {
            Some(p) => {
                let at = i + p;
                if &hay[at..at + needle.len()] == needle {
                    return Some(at);
                }
                i = at + 1;
            }
            None => return None,
        }
    }
    None
}

/// A store's watchers: the unrouted ones in a list, the routed ones by field and value.
pub(crate) struct Subscribers<S> {
    plain: Vec<S>,
    routed: BTreeMap<String, HashMap<String, Vec<S>>>,
}

impl<S> Default for Subscribers<S> {
    fn default() -> Self {
        Subscribers {
            plain: Vec::new(),
            routed: BTreeMap::new(),
        }
    }
}

impl<S> Subscribers<S> {
    pub(crate) fn push(&mut self, route: Option<WatchRoute>, s: S) {
        match route {
            None => self.plain.push(s),
            Some(r) => self
                .routed
                .entry(r.field)
                .or_default()
                .entry(r.value)
                .or_default()
                .push(s),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.plain.len()
            + self
                .routed
                .values()
                .flat_map(|m| m.values())
                .map(Vec::len)
                .sum::<usize>()
    }

    /// Routed watchers (tests, metrics).
    pub(crate) fn routed_len(&self) -> usize {
        self.len() - self.plain.len()
    }

    pub(crate) fn clear(&mut self) {
        self.plain.clear();
        self.routed.clear();
    }

    pub(crate) fn any(&self, f: impl Fn(&S) -> bool) -> bool {
        self.plain.iter().any(&f)
            || self
                .routed
                .values()
                .flat_map(|m| m.values())
                .flatten()
                .any(&f)
    }

    /// Keep the watchers for which `f` says so (all of them are visited).
    pub(crate) fn retain_all(&mut self, mut f: impl FnMut(&mut S) -> bool) {
        self.plain.retain_mut(&mut f);
        for m in self.routed.values_mut() {
            m.retain(|_, v| {
                v.retain_mut(&mut f);
                !v.is_empty()
            });
        }
        self.routed.retain(|_, m| !m.is_empty());
    }

    /// Offer an event (its value and previous value) to every watcher it may concern: each
    /// unrouted one and the routed ones registered under a value the event holds. `f` sends and
    /// says whether to keep the watcher; the others are not visited.
    pub(crate) fn deliver(
        &mut self,
        value: &[u8],
        prev: Option<&[u8]>,
        mut f: impl FnMut(&mut S) -> bool,
    ) {
        self.plain.retain_mut(&mut f);
        let mut emptied = false;
        for (field, m) in self.routed.iter_mut() {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            let values = member_values(value, field)
                .into_iter()
                .chain(prev.map(|p| member_values(p, field)).unwrap_or_default());
            for v in values {
                if !seen.insert(v) {
                    continue;
                }
                let Ok(v) = std::str::from_utf8(v) else {
                    continue;
                };
                if let Some(subs) = m.get_mut(v) {
                    subs.retain_mut(&mut f);
                    if subs.is_empty() {
                        m.remove(v);
                    }
                }
            }
            emptied |= m.is_empty();
        }
        if emptied {
            self.routed.retain(|_, m| !m.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_plain_values() {
        assert!(WatchRoute::new("nodeName", "node-1.example").is_some());
        assert!(WatchRoute::new("nodeName", "").is_none());
        assert!(WatchRoute::new("nodeName", "a\"b").is_none());
        assert!(WatchRoute::new("node\\Name", "a").is_none());
        assert!(WatchRoute::new("", "a").is_none());
    }

    #[test]
    fn member_values_finds_every_member_of_that_name_and_no_other() {
        let doc = br#"{"metadata":{"labels":{"nodeName":"x"},"annotations":{"a":"\"nodeName\":\"y\""}},"spec":{"nodeName":"n1"},"status":{"nominatedNodeName":"n2"}}"#;
        let vals = member_values(doc, "nodeName");
        assert_eq!(vals, vec![&b"x"[..], &b"n1"[..]]);
        assert!(member_values(b"{}", "nodeName").is_empty());
        // A document cut inside the value still yields what is there.
        assert_eq!(
            member_values(br#"{"nodeName":"ab"#, "nodeName"),
            vec![&b"ab"[..]]
        );
    }

    fn pod(node: &str) -> Vec<u8> {
        format!(r#"{{"metadata":{{"name":"p"}},"spec":{{"nodeName":"{node}"}}}}"#).into_bytes()
    }

    #[test]
    fn an_event_reaches_the_unrouted_and_only_its_nodes_routed_watchers() {
        let mut s: Subscribers<(&str, Vec<u32>)> = Subscribers::default();
        s.push(None, ("all", vec![]));
        for n in ["n1", "n2", "n10"] {
            s.push(WatchRoute::new("nodeName", n), (n, vec![]));
        }
        s.push(WatchRoute::new("nodeName", "n1"), ("n1-again", vec![]));
        assert_eq!(s.len(), 5);
        assert_eq!(s.routed_len(), 4);
        let mut visited = Vec::new();
        s.deliver(&pod("n1"), None, |w| {
            visited.push(w.0);
            w.1.push(1);
            true
        });
        visited.sort();
        assert_eq!(visited, vec!["all", "n1", "n1-again"]);
        // A move from n2 to n10 (or a deletion's previous state) reaches both nodes, once each.
        let mut visited = Vec::new();
        s.deliver(&pod("n10"), Some(&pod("n2")), |w| {
            visited.push(w.0);
            true
        });
        visited.sort();
        assert_eq!(visited, vec!["all", "n10", "n2"]);
        let mut visited = Vec::new();
        s.deliver(&pod("n1"), Some(&pod("n1")), |w| {
            visited.push(w.0);
            true
        });
        assert_eq!(visited.len(), 3, "{visited:?}");
        // A watcher `f` drops is gone; empty routes are removed.
        s.deliver(&pod("n2"), None, |w| w.0 != "n2");
        assert_eq!(s.len(), 4);
        s.retain_all(|w| w.0 != "all");
        assert_eq!(s.len(), 3);
        assert!(s.any(|w| w.0 == "n10"));
        s.clear();
        assert_eq!(s.len(), 0);
        assert!(!s.any(|_| true));
    }
}
