//! Response content negotiation, as the Kubernetes API server does it.
//!
//! The `Accept` header is parsed into media ranges (parameters, `q` values);
//! ranges are tried by descending `q` (more specific first on a tie, header
//! order otherwise) against the media types the endpoint can write:
//! `application/json`, `application/yaml` and
//! `application/vnd.kubernetes.protobuf` for built-in kinds, JSON and YAML
//! only for custom resources. A range's parameters must be acceptable:
//! `as`/`g`/`v` may only ask for `Table` (JSON or YAML; a Table has no
//! protobuf form) or `PartialObjectMetadata[List]` of `meta.k8s.io/v1`;
//! `stream=watch` needs a streaming format (JSON or protobuf). An empty
//! header means JSON; nothing acceptable is `406 NotAcceptable` with
//! upstream's message.
//!
//! Handlers always produce JSON. [`finish`] turns a JSON response into
//! protobuf or YAML after the fact: a single object becomes
//! `k8s\0`+`runtime.Unknown`, a watch stream (one JSON event per line)
//! becomes length-prefixed `WatchEvent` frames whose objects are encoded the
//! same way. A kind without a protobuf schema falls back to JSON when the
//! client accepts JSON, else the client gets 406.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use daas_apimachinery::protobuf;
use futures::StreamExt;
use serde_json::Value;

use crate::error::ApiError;
use crate::request::As;

pub const JSON: &str = "application/json";
pub const YAML: &str = "application/yaml";
pub const PROTOBUF: &str = protobuf::CONTENT_TYPE;
/// Content-Type of a protobuf watch stream.
pub const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// A serialization the server writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Protobuf,
}

impl Format {
    fn media_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::Yaml => YAML,
            Format::Protobuf => PROTOBUF,
        }
    }
    fn streams(self) -> bool {
        !matches!(self, Format::Yaml)
    }
}

/// Formats of built-in kinds, in upstream's order (the first one answers `*/*`).
pub const BUILTIN: &[Format] = &[Format::Json, Format::Yaml, Format::Protobuf];
/// Formats of custom resources (no protobuf schema).
pub const CUSTOM: &[Format] = &[Format::Json, Format::Yaml];

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    pub ty: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    pub q: f32,
}

impl MediaRange {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    }
    fn specificity(&self) -> u8 {
        match (self.ty.as_str(), self.subtype.as_str()) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2,
        }
    }
}

/// Parse an `Accept` header; ranges come back in the order they are tried.
pub fn parse_accept(header: &str) -> Vec<MediaRange> {
    let mut out = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let Some((ty, subtype)) = media.split_once('/') else {
            // "*" alone is what some clients send for */*.
            if media == "*" {
                out.push(MediaRange {
                    ty: "*".into(),
                    subtype: "*".into(),
                    params: Vec::new(),
                    q: 1.0,
                });
            }
            continue;
        };
        let (ty, subtype) = (ty.trim(), subtype.trim());
        if ty.is_empty() || subtype.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        let mut params = Vec::new();
        for p in pieces {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches('"').to_string();
            if k == "q" {
                q = v.parse().unwrap_or(0.0);
            } else {
                params.push((k, v));
            }
        }
        if q <= 0.0 {
            continue;
        }
        out.push(MediaRange {
            ty: ty.to_string(),
            subtype: subtype.to_string(),
            params,
            q,
        });
    }
    // Stable: equal q and specificity keep header order.
    out.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.specificity().cmp(&a.specificity()))
    });
    out
}

/// The negotiated representation of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub format: Format,
    pub view: As,
}

impl Choice {
    const DEFAULT: Choice = Choice {
        format: Format::Json,
        view: As::Object,
    };
}

/// Pick the representation for `accept` among `formats`; `None` is 406.
pub fn choose(accept: &str, formats: &[Format], watch: bool) -> Option<Choice> {
    choose_for(accept, formats, watch, true)
}

/// [`choose`] for an endpoint that may have no Table form (`tables` false):
/// upstream's create-only resources (the reviews, TokenRequest, Eviction,
/// Binding) have no table convertor, so `as=Table` is not acceptable there.
pub fn choose_for(accept: &str, formats: &[Format], watch: bool, tables: bool) -> Option<Choice> {
    if accept.trim().is_empty() {
        return Some(Choice::DEFAULT);
    }
    for range in parse_accept(accept) {
        for &format in formats {
            let (ty, sub) = format
                .media_type()
                .split_once('/')
                .unwrap_or(("application", "json"));
            let matches = (range.ty == ty && (range.subtype == sub || range.subtype == "*"))
                || (range.ty == "*" && range.subtype == "*");
            if !matches || (watch && !format.streams()) {
                continue;
            }
            match acceptable(&range, format) {
                Some(As::Table) if !tables => {}
                Some(view) => return Some(Choice { format, view }),
                None => {}
            }
        }
    }
    None
}

/// The view a range's parameters ask for, if the server can give it in `format`.
fn acceptable(range: &MediaRange, format: Format) -> Option<As> {
    if let Some(stream) = range.param("stream").filter(|s| !s.is_empty()) {
        if stream != "watch" || !format.streams() {
            return None;
        }
    }
    let (a, g, v) = (range.param("as"), range.param("g"), range.param("v"));
    if a.is_none() && g.is_none() && v.is_none() {
        return Some(As::Object);
    }
    match (a?, g?, v?) {
        ("Table", "meta.k8s.io", "v1") if format != Format::Protobuf => Some(As::Table),
        ("PartialObjectMetadata" | "PartialObjectMetadataList", "meta.k8s.io", "v1") => {
            Some(As::PartialMetadata)
        }
        _ => None,
    }
}

/// Which aggregated discovery document (`v2` or `v2beta1`, JSON or protobuf) an `Accept` header
/// asks for, if it asks for one before anything the legacy document satisfies. Ranges are tried
/// in order as upstream negotiates: a JSON or protobuf range (or `*/*`, which is JSON) with
/// `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io` and a served `v` picks the aggregated
/// document; a range without `as`/`g`/`v` that JSON, YAML or protobuf satisfies picks the
/// legacy one (`None`); anything else (an unknown version, YAML, another type) is skipped.
pub fn aggregated_discovery(accept: &str) -> Option<(Format, &'static str)> {
    for range in parse_accept(accept) {
        let (a, g, v) = (range.param("as"), range.param("g"), range.param("v"));
        if a.is_none() && g.is_none() && v.is_none() {
            let legacy = BUILTIN.iter().any(|f| {
                let (ty, sub) = f.media_type().split_once('/').unwrap_or(("", ""));
                (range.ty == ty && (range.subtype == sub || range.subtype == "*"))
                    || (range.ty == "*" && range.subtype == "*")
            });
            if legacy {
                return None;
            }
            continue;
        }
        let format = match (range.ty.as_str(), range.subtype.as_str()) {
            ("application", "json") | ("*", "*") => Format::Json,
            ("application", "vnd.kubernetes.protobuf") => Format::Protobuf,
            _ => continue,
        };
        if a != Some("APIGroupDiscoveryList") || g != Some("apidiscovery.k8s.io") {
            continue;
        }
        if let Some(version) = crate::discovery::AGGREGATED_VERSIONS
            .iter()
            .find(|served| Some(**served) == v)
        {
            return Some((format, version));
        }
    }
    None
}

/// Upstream's 406 for an endpoint writing `formats`.
pub fn not_acceptable(formats: &[Format], watch: bool) -> ApiError {
    let types: Vec<String> = formats
        .iter()
        .filter(|f| !watch || f.streams())
        .map(|f| {
            if watch {
                format!("{};stream=watch", f.media_type())
            } else {
                f.media_type().to_string()
            }
        })
        .collect();
    ApiError::new(
        406,
        "NotAcceptable",
        format!(
            "only the following media types are accepted: {}",
            types.join(", ")
        ),
    )
}

/// What a request negotiated, decided before the handler runs.
#[derive(Debug, Clone)]
pub struct Negotiated {
    accept: String,
    formats: &'static [Format],
    watch: bool,
    /// Paths outside `/api` and `/apis` (version, health, OpenAPI) are
    /// written as their handlers write them.
    negotiable: bool,
    /// Discovery documents are never refused; they fall back to JSON.
    discovery: bool,
    /// Does the endpoint have a Table form? (Not the create-only ones.)
    tables: bool,
}

impl Negotiated {
    pub fn new(method: &Method, path: &str, query: Option<&str>, headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let watch = method == Method::GET
            && crate::request::query_map(query)
                .get("watch")
                .is_some_and(|w| w == "true" || w == "1");
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let negotiable = matches!(segments.first(), Some(&"api" | &"apis"));
        let (discovery, builtin) = match segments.as_slice() {
            ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _] => (true, true),
            ["api", "v1", ..] => (false, true),
            ["apis", g, v, ..] => (false, is_builtin(g, v)),
            _ => (false, true),
        };
        let tables = !negotiable || discovery || has_tables(path);
        Negotiated {
            accept,
            formats: if builtin { BUILTIN } else { CUSTOM },
            watch,
            negotiable,
            discovery,
            tables,
        }
    }

    /// The chosen representation, or 406 (checked once the caller is authenticated,
    /// before anything is executed).
    pub fn choice(&self) -> Result<Choice, ApiError> {
        if !self.negotiable || self.discovery {
            return Ok(choose(&self.accept, self.formats, self.watch).unwrap_or(Choice::DEFAULT));
        }
        choose_for(&self.accept, self.formats, self.watch, self.tables)
            .ok_or_else(|| not_acceptable(self.formats, self.watch))
    }

    fn json_acceptable(&self) -> bool {
        self.discovery || choose(&self.accept, &[Format::Json], self.watch).is_some()
    }
}

/// Whether the resource at `path` can be written as a Table: not a create-only
/// resource (reviews) nor a create-only subresource (token, eviction, binding),
/// which upstream serves without a table convertor. Unknown paths say yes (the
/// handler answers them).
fn has_tables(path: &str) -> bool {
    use crate::request::{parse_path, Target};
    match parse_path(path) {
        Ok(Target::Resource(t)) => {
            let create_only_sub =
                matches!(t.sub.as_deref(), Some("token" | "eviction" | "binding"));
            !create_only_sub && t.def.strategy.verbs().contains(&"get")
        }
        _ => true,
    }
}

/// Whether `group/version` is served by built-in kinds (everything else under
/// `/apis` is a custom resource).
fn is_builtin(group: &str, version: &str) -> bool {
    crate::resources::RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
        || protobuf::is_builtin_api_version(&format!("{group}/{version}"))
}

/// Rewrite a handler's JSON response in the negotiated format.
pub async fn finish(neg: &Negotiated, resp: Response) -> Response {
    if !neg.negotiable {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or("").trim() == JSON);
    let aggregated = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("as=APIGroupDiscoveryList"));
    if !is_json || aggregated {
        return resp;
    }
    let format = match neg.choice() {
        Ok(c) => c.format,
        // A 406 is itself written as JSON.
        Err(_) => return resp,
    };
    if format == Format::Json {
        return resp;
    }
    if neg.watch && resp.status() == StatusCode::OK {
        return match format {
            Format::Protobuf => protobuf_watch(resp),
            _ => resp,
        };
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::internal(format!("error reading the response: {e}")).into_response()
        }
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        // Not a JSON document after all: pass it on untouched.
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    let encoded = match format {
        Format::Protobuf => protobuf::encode_object(&value)
            .map(|b| (b, PROTOBUF))
            .map_err(|e| e.to_string()),
        Format::Yaml => serde_yaml::to_string(&value)
            .map(|s| (s.into_bytes(), YAML))
            .map_err(|e| e.to_string()),
        Format::Json => Ok((bytes.to_vec(), JSON)),
    };
    match encoded {
        Ok((body, ct)) => {
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        // No protobuf form of this kind: JSON if the client takes it.
        Err(_) if neg.json_acceptable() => Response::from_parts(parts, Body::from(bytes)),
        Err(e) => {
            tracing::debug!(error = %e, "response has no protobuf form");
            let mut err = not_acceptable(&[Format::Json, Format::Yaml], false);
            if let Some(kind) = value.get("kind").and_then(Value::as_str) {
                err.message = format!("{}; kind {kind} cannot be encoded as protobuf", err.message);
            }
            err.into_response()
        }
    }
}

/// Re-frame a JSON watch stream (one event per line) as protobuf frames.
fn protobuf_watch(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let mut pending = BytesMut::new();
    let mut ended = false;
    let stream = body.into_data_stream().flat_map(move |chunk| {
        let mut frames: Vec<Result<Bytes, Infallible>> = Vec::new();
        if ended {
            return futures::stream::iter(frames);
        }
        match chunk {
            Ok(data) => pending.extend_from_slice(&data),
            Err(_) => {
                ended = true;
                return futures::stream::iter(frames);
            }
        }
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line = pending.split_to(pos + 1);
            let line = &line[..pos];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            frames.push(Ok(Bytes::from(watch_event_frame(line))));
        }
        futures::stream::iter(frames)
    });
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROTOBUF_WATCH),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// One JSON watch event as a protobuf frame; an event that cannot be encoded
/// becomes an ERROR event carrying a Status, as upstream reports encoding failures.
fn watch_event_frame(line: &[u8]) -> Vec<u8> {
    let encoded = serde_json::from_slice::<Value>(line)
        .map_err(|e| format!("watch event is not JSON: {e}"))
        .and_then(|ev| {
            let ty = ev
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let object = ev.get("object").cloned().unwrap_or(Value::Null);
            let obj = protobuf::encode_object(&object).map_err(|e| e.to_string())?;
            protobuf::watch_frame(&ty, &obj).map_err(|e| e.to_string())
        });
    match encoded {
        Ok(frame) => frame,
        Err(msg) => {
            let status = ApiError::internal(msg).to_status();
            protobuf::encode_object(&status)
                .and_then(|obj| protobuf::watch_frame("ERROR", &obj))
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_q_values_and_parameters() {
        let r = parse_accept(
            "application/json;q=0.5, application/vnd.kubernetes.protobuf;stream=watch, */*;q=0.1, text/html;q=0",
        );
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].subtype, "vnd.kubernetes.protobuf");
        assert_eq!(r[0].param("stream"), Some("watch"));
        assert_eq!(r[1].subtype, "json");
        assert_eq!(r[2].ty, "*");
    }

    #[test]
    fn aggregated_discovery_is_picked_in_range_order() {
        let agg = |v: &str| {
            format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList")
        };
        assert_eq!(aggregated_discovery(&agg("v2")), Some((Format::Json, "v2")));
        assert_eq!(
            aggregated_discovery(&format!("{},application/json", agg("v2beta1"))),
            Some((Format::Json, "v2beta1"))
        );
        // Unknown versions and YAML are skipped; a plain range first means the legacy document.
        assert_eq!(
            aggregated_discovery(&format!("{},{}", agg("v3"), agg("v2"))),
            Some((Format::Json, "v2"))
        );
        assert_eq!(
            aggregated_discovery(&format!("application/json,{}", agg("v2"))),
            None
        );
        assert_eq!(
            aggregated_discovery(
                "application/yaml;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            ),
            None
        );
        assert_eq!(
            aggregated_discovery(
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
            ),
            Some((Format::Protobuf, "v2"))
        );
        // A wrong `as` or group is not the aggregated document.
        assert_eq!(
            aggregated_discovery("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupList"),
            None
        );
        assert_eq!(aggregated_discovery(""), None);
    }

    #[test]
    fn client_go_protobuf_default_picks_protobuf() {
        let c = choose("application/vnd.kubernetes.protobuf, */*", BUILTIN, false);
        assert_eq!(
            c,
            Some(Choice {
                format: Format::Protobuf,
                view: As::Object
            })
        );
        let c = choose("application/vnd.kubernetes.protobuf, */*", CUSTOM, false);
        assert_eq!(c.map(|c| c.format), Some(Format::Json));
    }

    #[test]
    fn table_is_json_only() {
        let c = choose(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            BUILTIN,
            false,
        );
        assert_eq!(
            c,
            Some(Choice {
                format: Format::Json,
                view: As::Table
            })
        );
        let c = choose(
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
            BUILTIN,
            false,
        );
        assert_eq!(c, None);
        let c = choose(
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json",
            BUILTIN,
            false,
        );
        assert_eq!(
            c.map(|c| (c.format, c.view)),
            Some((Format::Json, As::Object))
        );
    }

    #[test]
    fn partial_metadata_in_protobuf() {
        let c = choose(
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
            BUILTIN,
            false,
        );
        assert_eq!(
            c,
            Some(Choice {
                format: Format::Protobuf,
                view: As::PartialMetadata
            })
        );
    }

    #[test]
    fn q_values_order_and_yaml() {
        let c = choose("application/json;q=0.9, application/yaml", BUILTIN, false);
        assert_eq!(c.map(|c| c.format), Some(Format::Yaml));
        // YAML has no stream serializer.
        let c = choose("application/yaml, application/json;q=0.1", BUILTIN, true);
        assert_eq!(c.map(|c| c.format), Some(Format::Json));
        assert_eq!(choose("application/yaml", BUILTIN, true), None);
    }

    #[test]
    fn create_only_endpoints_have_no_table_form() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
        assert_eq!(choose_for(table, BUILTIN, false, false), None);
        // A fallback range still answers.
        let c = choose_for(&format!("{table}, application/json"), BUILTIN, false, false);
        assert_eq!(c, Some(Choice::DEFAULT));
        assert_eq!(
            choose_for(table, BUILTIN, false, true).map(|c| c.view),
            Some(As::Table)
        );
        assert!(!has_tables(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        ));
        assert!(!has_tables("/apis/authentication.k8s.io/v1/tokenreviews"));
        assert!(!has_tables(
            "/api/v1/namespaces/default/serviceaccounts/sa/token"
        ));
        assert!(!has_tables("/api/v1/namespaces/default/pods/p/eviction"));
        assert!(has_tables("/api/v1/namespaces/default/pods"));
        assert!(has_tables("/api/v1/namespaces/default/pods/p/status"));
        assert!(has_tables(
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/c/approval"
        ));
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(table));
        let neg = Negotiated::new(
            &Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            None,
            &h,
        );
        assert_eq!(neg.choice().unwrap_err().code, 406);
    }

    #[test]
    fn unknown_conversions_and_types_are_not_acceptable() {
        assert_eq!(choose("text/html", BUILTIN, false), None);
        assert_eq!(
            choose("application/json;as=Foo;g=example.com;v=v1", BUILTIN, false),
            None
        );
        assert_eq!(
            choose("application/json;stream=other", BUILTIN, false),
            None
        );
        assert_eq!(choose("", CUSTOM, true), Some(Choice::DEFAULT));
        let e = not_acceptable(BUILTIN, false);
        assert_eq!(e.code, 406);
        assert_eq!(e.reason, "NotAcceptable");
        assert_eq!(
            e.message,
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        assert_eq!(
            not_acceptable(BUILTIN, true).message,
            "only the following media types are accepted: application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch"
        );
    }

    fn negotiated(method: Method, path: &str, query: Option<&str>, accept: &str) -> Negotiated {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        Negotiated::new(&method, path, query, &h)
    }

    #[test]
    fn endpoints_decide_the_formats() {
        // A custom resource has no protobuf form: refused up front, with its own list.
        let n = negotiated(
            Method::POST,
            "/apis/example.com/v1/namespaces/default/widgets",
            None,
            PROTOBUF,
        );
        let e = n.choice().unwrap_err();
        assert_eq!(e.code, 406);
        assert_eq!(
            e.message,
            "only the following media types are accepted: application/json, application/yaml"
        );
        let n = negotiated(
            Method::GET,
            "/apis/example.com/v1/widgets",
            Some("watch=1"),
            &format!("{PROTOBUF}, */*"),
        );
        assert_eq!(n.choice().unwrap().format, Format::Json);
        // Built-in groups (also ones whose kinds are only in the protobuf schema).
        for path in [
            "/api/v1/pods",
            "/apis/apps/v1/deployments",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        ] {
            let n = negotiated(Method::GET, path, None, PROTOBUF);
            assert_eq!(n.choice().unwrap().format, Format::Protobuf, "{path}");
        }
        // Discovery is never refused.
        let n = negotiated(Method::GET, "/apis/apps/v1", None, "text/html");
        assert_eq!(n.choice().unwrap(), Choice::DEFAULT);
        // Non-API paths are left alone.
        let n = negotiated(Method::GET, "/version", None, "text/html");
        assert!(!n.negotiable);
        // watch only counts on GET.
        let n = negotiated(Method::DELETE, "/api/v1/pods", Some("watch=true"), PROTOBUF);
        assert!(!n.watch);
    }

    #[test]
    fn unencodable_watch_event_becomes_error_status_frame() {
        let frame = watch_event_frame(
            br#"{"type":"ADDED","object":{"apiVersion":"example.com/v1","kind":"Widget"}}"#,
        );
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len() - 4);
        // WatchEvent{1: "ERROR", 2: {1: k8s\0 + Unknown(v1 Status)}}
        assert_eq!(&frame[4..11], b"\x0a\x05ERROR");
        let pos = frame
            .windows(4)
            .position(|w| w == b"k8s\0")
            .expect("embedded object");
        let status = protobuf::decode_object(&frame[pos..]).expect("Status");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 500);
        assert!(status["message"]
            .as_str()
            .is_some_and(|m| m.contains("Widget")));
    }
}
