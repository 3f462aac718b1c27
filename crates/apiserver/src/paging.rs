//! Lists in pages (`limit`/`continue`) over one consistent revision, and the list semantics of
//! `resourceVersion`/`resourceVersionMatch`, as the upstream API server serves them from etcd.
//!
//! A continue token is upstream's `storage.EncodeContinue`: unpadded URL-safe base64 of
//! `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<key after the list prefix>"}`, where the key is
//! the last scanned key followed by `\0` (the smallest key after it). The next page lists from that
//! key at the token's revision; once that revision is compacted the request fails with 410 and a
//! token with `rv: -1`, which continues at the latest revision (an inconsistent list).

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use daas_store::{ListResult, Revision, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{decode_kv, Ctx, Filter};

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// How long a `NotOlderThan` list waits for the store to reach a future resource version
/// (upstream's watch cache waits 3 s before answering "Too large resource version").
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// Message of the 410 for a continue token whose revision has been compacted (upstream's).
pub const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Message of the 410 for an exact list at a compacted revision (upstream's).
pub const EXPIRED_LIST: &str = "The resourceVersion for the provided list is too old.";

/// Why a continue token was refused (the texts of upstream's `DecodeContinue` errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContinueError {
    #[error("continue key is not valid: {0}")]
    Malformed(String),
    #[error("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")]
    InvalidStartRv,
    #[error("continue key is not valid: encoded start key empty (version meta.k8s.io/v1)")]
    EmptyStartKey,
    #[error("continue key is not valid: {0}")]
    UncleanKey(String),
    #[error("continue key is not valid: server does not recognize this encoded version {0}")]
    UnrecognizedVersion(String),
    #[error("unable to encode next field: the key and key prefix do not match {prefix} {key}")]
    KeyOutsidePrefix { prefix: String, key: String },
}

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: i64,
    start: String,
}

/// The token resuming a list under `prefix` at `key` (inclusive) and `revision`.
pub fn encode_continue(key: &str, prefix: &str, revision: i64) -> Result<String, ContinueError> {
    let start = match key.strip_prefix(prefix) {
        Some(s) if !s.is_empty() || prefix.is_empty() => s,
        _ => {
            return Err(ContinueError::KeyOutsidePrefix {
                prefix: prefix.to_string(),
                key: key.to_string(),
            })
        }
    };
    let token = Token {
        v: TOKEN_VERSION.to_string(),
        rv: revision,
        start: start.to_string(),
    };
    let raw = serde_json::to_vec(&token)
        .map_err(|e| ContinueError::Malformed(format!("encoding token: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// The absolute key to resume at and the token's revision.
pub fn decode_continue(token: &str, prefix: &str) -> Result<(String, i64), ContinueError> {
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|e| ContinueError::Malformed(e.to_string()))?;
    let t: Token =
        serde_json::from_slice(&raw).map_err(|e| ContinueError::Malformed(e.to_string()))?;
    if t.v != TOKEN_VERSION {
        return Err(ContinueError::UnrecognizedVersion(t.v));
    }
    if t.rv == 0 {
        return Err(ContinueError::InvalidStartRv);
    }
    if t.start.is_empty() {
        return Err(ContinueError::EmptyStartKey);
    }
    // As upstream (path.Clean must not change the key): no climbing out of the list's prefix.
    let key = if t.start.starts_with('/') {
        t.start.clone()
    } else {
        format!("/{}", t.start)
    };
    if !is_clean_path(&key) {
        return Err(ContinueError::UncleanKey(t.start));
    }
    Ok((format!("{prefix}{}", &key[1..]), t.rv))
}

/// Whether Go's `path.Clean` leaves an absolute path unchanged.
fn is_clean_path(p: &str) -> bool {
    if p == "/" {
        return true;
    }
    if p.ends_with('/') {
        return false;
    }
    p[1..]
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Which revision a list reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// The current state.
    Latest,
    /// Exactly this revision (410 once compacted).
    Exact(Revision),
    /// The current state, which must be at least this revision.
    NotOlderThan(Revision),
    /// A continued list at its first page's revision.
    Continue(Revision),
}

/// The list options of a request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub limit: Option<usize>,
    pub read: ReadAt,
    /// Absolute key the page starts at (inclusive), from a continue token.
    pub start_key: Option<String>,
}

fn param<'a>(q: &'a HashMap<String, String>, k: &str) -> &'a str {
    q.get(k).map(|s| s.as_str()).unwrap_or("")
}

/// `ListOptions.meta.k8s.io "" is invalid: ...` (upstream's `ValidateListOptions`, a 422).
fn invalid_list_options(causes: Vec<(&'static str, String)>) -> ApiError {
    let rendered: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    let msg = if rendered.len() == 1 {
        rendered[0].clone()
    } else {
        format!("[{}]", rendered.join(", "))
    };
    let causes_json: Vec<Value> = causes
        .iter()
        .map(|(f, m)| {
            let reason = if m.starts_with("Unsupported value") {
                "FieldValueNotSupported"
            } else {
                "FieldValueForbidden"
            };
            json!({"reason": reason, "message": m, "field": f})
        })
        .collect();
    ApiError::new(
        422,
        "Invalid",
        format!("ListOptions.meta.k8s.io \"\" is invalid: {msg}"),
    )
    .with_details(json!({
        "name": "", "group": "meta.k8s.io", "kind": "ListOptions", "causes": causes_json
    }))
}

/// A `resourceVersion` as upstream's `ParseResourceVersion` reads it ("" and "0" are 0).
fn parse_rv(rv: &str) -> ApiResult<Revision> {
    if rv.is_empty() {
        return Ok(0);
    }
    let why = match rv.parse::<u64>() {
        Ok(v) if v <= i64::MAX as u64 => return Ok(v as Revision),
        Ok(_) => "value out of range",
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => "value out of range",
        Err(_) => "invalid syntax",
    };
    Err(ApiError::bad_request(format!(
        "invalid resource version: resourceVersion: Invalid value: \"{rv}\": strconv.ParseUint: parsing \"{rv}\": {why}"
    )))
}

impl ListParams {
    /// Parse and validate `limit`, `continue`, `resourceVersion` and `resourceVersionMatch`
    /// of a list under `prefix`.
    pub fn from_query(q: &HashMap<String, String>, prefix: &str) -> ApiResult<ListParams> {
        let limit = match param(q, "limit") {
            "" => None,
            s => {
                let n: i64 = s.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "strconv.ParseInt: parsing \"{s}\": invalid syntax"
                    ))
                })?;
                // Upstream pages only for a positive limit.
                usize::try_from(n).ok().filter(|n| *n > 0)
            }
        };
        let cont = param(q, "continue");
        let rv = param(q, "resourceVersion");
        let matching = param(q, "resourceVersionMatch");

        if !matching.is_empty() {
            let mut causes = Vec::new();
            if rv.is_empty() {
                causes.push((
                    "resourceVersionMatch",
                    "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
                        .to_string(),
                ));
            }
            if !cont.is_empty() {
                causes.push((
                    "resourceVersionMatch",
                    "Forbidden: resourceVersionMatch is forbidden when continue is provided"
                        .to_string(),
                ));
            }
            if matching != "Exact" && matching != "NotOlderThan" {
                causes.push((
                    "resourceVersionMatch",
                    format!(
                        "Unsupported value: \"{matching}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
                    ),
                ));
            }
            if matching == "Exact" && rv == "0" {
                causes.push((
                    "resourceVersionMatch",
                    "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
                        .to_string(),
                ));
            }
            if !causes.is_empty() {
                return Err(invalid_list_options(causes));
            }
        }

        if !cont.is_empty() {
            let (start, crv) = decode_continue(cont, prefix)
                .map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))?;
            if !rv.is_empty() && rv != "0" {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let read = if crv > 0 {
                ReadAt::Continue(crv)
            } else {
                ReadAt::Latest
            };
            return Ok(ListParams {
                limit,
                read,
                start_key: Some(start),
            });
        }

        let rev = parse_rv(rv)?;
        let read = match matching {
            "Exact" => ReadAt::Exact(rev),
            "NotOlderThan" if rev > 0 => ReadAt::NotOlderThan(rev),
            // Legacy: a paged list with a resourceVersion other than "0" is an exact read.
            "" if rev > 0 && limit.is_some() => ReadAt::Exact(rev),
            "" if rev > 0 => ReadAt::NotOlderThan(rev),
            _ => ReadAt::Latest,
        };
        Ok(ListParams {
            limit,
            read,
            start_key: None,
        })
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    /// Objects after this page, when known (only without selectors, as upstream).
    pub remaining_item_count: Option<i64>,
}

impl Page {
    /// `metadata` of the list object.
    pub fn list_meta(&self) -> Value {
        let mut md = json!({"resourceVersion": self.revision.to_string()});
        if let Some(c) = &self.continue_token {
            md["continue"] = json!(c);
        }
        if let Some(n) = self.remaining_item_count {
            md["remainingItemCount"] = json!(n);
        }
        md
    }
}

fn too_large(requested: Revision, current: Revision) -> ApiError {
    ApiError::new(
        504,
        "Timeout",
        format!("Timeout: Too large resource version: {requested}, current: {current}"),
    )
    .with_details(json!({
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1
    }))
}

/// A store error of a list read as the API reports it.
fn read_error(e: StoreError, prefix: &str, p: &ListParams) -> ApiError {
    match (e, &p.read) {
        (StoreError::Compacted { .. }, ReadAt::Continue(_)) => {
            let start = p.start_key.as_deref().unwrap_or(prefix);
            let err = ApiError::gone(INCONSISTENT_CONTINUE);
            // rv -1: continue from the same key at the latest revision.
            match encode_continue(start, prefix, -1) {
                Ok(token) => err.with_continue(token),
                Err(_) => err,
            }
        }
        (StoreError::Compacted { .. }, _) => ApiError::gone(EXPIRED_LIST),
        (StoreError::FutureRevision { requested, current }, _) => too_large(requested, current),
        (e, _) => e.into(),
    }
}

/// Wait (up to [`FRESHNESS_WAIT`]) until the store has reached `min`.
async fn wait_for(ctx: &Ctx, min: Revision) -> ApiResult<()> {
    let deadline = tokio::time::Instant::now() + FRESHNESS_WAIT;
    loop {
        let current = ctx.store.current_revision().await?;
        if current >= min {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(too_large(min, current));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The revision a read is pinned to (`None`: the latest).
async fn pinned(ctx: &Ctx, p: &ListParams) -> ApiResult<Option<Revision>> {
    Ok(match p.read {
        ReadAt::Latest => None,
        ReadAt::NotOlderThan(min) => {
            wait_for(ctx, min).await?;
            None
        }
        ReadAt::Exact(rev) | ReadAt::Continue(rev) => Some(rev),
    })
}

async fn read_all(ctx: &Ctx, prefix: &str, p: &ListParams) -> ApiResult<ListResult> {
    let res = match pinned(ctx, p).await? {
        None => ctx.store.list(prefix).await,
        Some(rev) => ctx.store.list_at(prefix, rev).await,
    };
    res.map_err(|e| read_error(e, prefix, p))
}

/// Largest number of keys read from the store at once while filling a filtered page
/// (upstream's etcd3 store grows its chunk the same way, up to 10,000).
const MAX_CHUNK: usize = 10_000;

/// One page of the objects under `prefix` that pass `filter`. A page is filled up to the limit,
/// reading the store in chunks from the start key at one revision, as far as the selectors need;
/// `continue` is set when unscanned objects remain. Only the keys a page scans are read, so
/// walking a large list page by page reads each object once.
pub async fn list_page(
    ctx: &Ctx,
    prefix: &str,
    filter: &Filter,
    p: &ListParams,
    present: &(dyn Fn(&mut Value) + Sync),
) -> ApiResult<Page> {
    let Some(limit) = p.limit else {
        let res = read_all(ctx, prefix, p).await?;
        // A continue token without a limit lists the rest of the range.
        let first = match &p.start_key {
            Some(start) => res
                .items
                .partition_point(|kv| kv.key.as_str() < start.as_str()),
            None => 0,
        };
        let mut items = Vec::new();
        for kv in &res.items[first..] {
            let mut obj = decode_kv(kv)?;
            present(&mut obj);
            if filter.matches(&obj) {
                items.push(obj);
            }
        }
        return Ok(Page {
            items,
            revision: res.revision,
            continue_token: None,
            remaining_item_count: None,
        });
    };
    let mut revision = pinned(ctx, p).await?;
    let mut start = p.start_key.clone().unwrap_or_else(|| prefix.to_string());
    let mut chunk = limit;
    let mut items = Vec::new();
    loop {
        let res = ctx
            .store
            .list_range(prefix, &start, chunk, revision)
            .await
            .map_err(|e| read_error(e, prefix, p))?;
        revision = Some(res.revision);
        let mut scanned: Option<&str> = None;
        for (i, kv) in res.items.iter().enumerate() {
            if items.len() >= limit {
                // The page is full and objects remain: continue after the last scanned key.
                let last = scanned.unwrap_or(start.as_str());
                let last = if scanned.is_some() {
                    format!("{last}\0")
                } else {
                    last.to_string()
                };
                let token = encode_continue(&last, prefix, res.revision)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                let unfiltered = filter.labels.is_none() && filter.fields.is_none();
                let left = (res.items.len() - i + res.remaining) as i64;
                return Ok(Page {
                    items,
                    revision: res.revision,
                    continue_token: Some(token),
                    remaining_item_count: unfiltered.then_some(left),
                });
            }
            let mut obj = decode_kv(kv)?;
            present(&mut obj);
            if filter.matches(&obj) {
                items.push(obj);
            }
            scanned = Some(kv.key.as_str());
        }
        let Some(last) = scanned else {
            // Nothing left in the range.
            return Ok(Page {
                items,
                revision: res.revision,
                continue_token: None,
                remaining_item_count: None,
            });
        };
        if res.remaining == 0 {
            return Ok(Page {
                items,
                revision: res.revision,
                continue_token: None,
                remaining_item_count: None,
            });
        }
        start = format!("{last}\0");
        if items.len() >= limit {
            // Full exactly at the end of a chunk with keys left: next request continues here.
            let token = encode_continue(&start, prefix, res.revision)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let unfiltered = filter.labels.is_none() && filter.fields.is_none();
            return Ok(Page {
                items,
                revision: res.revision,
                continue_token: Some(token),
                remaining_item_count: unfiltered.then_some(res.remaining as i64),
            });
        }
        chunk = (chunk * 2).min(MAX_CHUNK).max(limit - items.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/registry/core/configmaps/ns/";

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn token_round_trips_and_matches_upstream_encoding() {
        let t = encode_continue(&format!("{PREFIX}cm-1\0"), PREFIX, 42).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            v,
            json!({"v": "meta.k8s.io/v1", "rv": 42, "start": "cm-1\u{0}"})
        );
        assert!(!t.contains('='), "unpadded");
        assert_eq!(
            decode_continue(&t, PREFIX).unwrap(),
            (format!("{PREFIX}cm-1\0"), 42)
        );
        // A token made by Go: base64.RawURLEncoding of {"v":"meta.k8s.io/v1","rv":7,"start":"a\u0000"}.
        let go = URL_SAFE_NO_PAD.encode(br#"{"v":"meta.k8s.io/v1","rv":7,"start":"a\u0000"}"#);
        assert_eq!(
            decode_continue(&go, PREFIX).unwrap(),
            (format!("{PREFIX}a\0"), 7)
        );
    }

    #[test]
    fn bad_tokens_are_refused_with_upstream_messages() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s.as_bytes());
        assert!(matches!(
            decode_continue("%%%", PREFIX),
            Err(ContinueError::Malformed(_))
        ));
        assert!(matches!(
            decode_continue(&enc("not json"), PREFIX),
            Err(ContinueError::Malformed(_))
        ));
        let e = decode_continue(&enc(r#"{"v":"x/v9","rv":1,"start":"a"}"#), PREFIX).unwrap_err();
        assert_eq!(
            e.to_string(),
            "continue key is not valid: server does not recognize this encoded version x/v9"
        );
        let e = decode_continue(&enc(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#), PREFIX)
            .unwrap_err();
        assert_eq!(e, ContinueError::InvalidStartRv);
        let e = decode_continue(&enc(r#"{"v":"meta.k8s.io/v1","rv":3,"start":""}"#), PREFIX)
            .unwrap_err();
        assert_eq!(e, ContinueError::EmptyStartKey);
        for bad in ["../other/x", "a/../../b", "a//b", "./a", "a/"] {
            let tok = enc(&format!(
                r#"{{"v":"meta.k8s.io/v1","rv":3,"start":"{bad}"}}"#
            ));
            assert_eq!(
                decode_continue(&tok, PREFIX),
                Err(ContinueError::UncleanKey(bad.to_string())),
                "{bad}"
            );
        }
        assert!(encode_continue("/elsewhere/x", PREFIX, 1).is_err());
    }

    #[test]
    fn resource_version_semantics() {
        let p = |pairs: &[(&str, &str)]| ListParams::from_query(&q(pairs), PREFIX);
        assert_eq!(p(&[]).unwrap().read, ReadAt::Latest);
        assert_eq!(p(&[("resourceVersion", "0")]).unwrap().read, ReadAt::Latest);
        assert_eq!(
            p(&[("resourceVersion", "9")]).unwrap().read,
            ReadAt::NotOlderThan(9)
        );
        // Legacy exact read for a paged list.
        let legacy = p(&[("resourceVersion", "9"), ("limit", "5")]).unwrap();
        assert_eq!((legacy.read, legacy.limit), (ReadAt::Exact(9), Some(5)));
        assert_eq!(
            p(&[("resourceVersion", "9"), ("resourceVersionMatch", "Exact")])
                .unwrap()
                .read,
            ReadAt::Exact(9)
        );
        assert_eq!(
            p(&[
                ("resourceVersion", "9"),
                ("resourceVersionMatch", "NotOlderThan"),
                ("limit", "5")
            ])
            .unwrap()
            .read,
            ReadAt::NotOlderThan(9)
        );
        assert_eq!(p(&[("limit", "0")]).unwrap().limit, None);
        assert_eq!(p(&[("limit", "-3")]).unwrap().limit, None);
        let e = p(&[("limit", "ten")]).unwrap_err();
        assert_eq!(e.code, 400);
        let e = p(&[("resourceVersion", "abc")]).unwrap_err();
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        assert!(e.message.contains("invalid syntax"), "{}", e.message);
    }

    #[test]
    fn invalid_combinations_are_422_on_list_options() {
        let p = |pairs: &[(&str, &str)]| ListParams::from_query(&q(pairs), PREFIX).unwrap_err();
        let e = p(&[("resourceVersionMatch", "Exact")]);
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(
            e.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        let e = p(&[("resourceVersion", "0"), ("resourceVersionMatch", "Exact")]);
        assert!(e
            .message
            .ends_with("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""));
        let e = p(&[("resourceVersion", "1"), ("resourceVersionMatch", "Newest")]);
        assert_eq!(
            e.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\""
        );
        assert_eq!(
            e.details.unwrap()["causes"][0]["reason"],
            "FieldValueNotSupported"
        );
        let tok = encode_continue(&format!("{PREFIX}a\0"), PREFIX, 5).unwrap();
        let e = p(&[("continue", &tok), ("resourceVersionMatch", "Exact")]);
        assert!(e
            .message
            .starts_with("ListOptions.meta.k8s.io \"\" is invalid: ["));
        assert!(e.message.contains("forbidden when continue is provided"));
        // continue with a resourceVersion other than "0": 400 as upstream.
        let e = p(&[("continue", &tok), ("resourceVersion", "5")]);
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        assert_eq!(
            e.message,
            "specifying resource version is not allowed when using continue"
        );
        let ok =
            ListParams::from_query(&q(&[("continue", &tok), ("resourceVersion", "0")]), PREFIX)
                .unwrap();
        assert_eq!(ok.read, ReadAt::Continue(5));
        assert_eq!(
            ok.start_key.as_deref(),
            Some(format!("{PREFIX}a\0").as_str())
        );
        let e = p(&[("continue", "garbage!")]);
        assert_eq!(e.code, 400);
        assert!(e
            .message
            .starts_with("invalid continue token: continue key is not valid"));
    }
}
