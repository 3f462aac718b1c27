//! Parsing of Kubernetes REST paths, query parameters, bodies and Accept headers.

use std::collections::HashMap;

use axum::http::HeaderMap;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceDef};

/// What a `/api/...` or `/apis/...` path addresses.
#[derive(Debug)]
pub enum Target {
    /// `/api/v1` or `/apis/{g}/{v}`: resource discovery.
    GroupVersion {
        group: String,
        version: String,
    },
    /// `/apis/{g}`.
    Group {
        group: String,
    },
    Resource(ResourceTarget),
}

#[derive(Debug, Clone)]
pub struct ResourceTarget {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

pub fn parse_path(path: &str) -> ApiResult<Target> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g] => {
            return Ok(Target::Group {
                group: g.to_string(),
            })
        }
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Err(ApiError::not_found_path()),
    };
    if rest.is_empty() {
        if resources::in_group_version(group, version).next().is_none() {
            return Err(ApiError::not_found_path());
        }
        return Ok(Target::GroupVersion {
            group: group.into(),
            version: version.into(),
        });
    }
    let lookup =
        |plural: &str| resources::find(group, version, plural).ok_or_else(ApiError::not_found_path);
    let t = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if resources::find(group, version, plural).is_some() =>
        {
            let def = lookup(plural)?;
            if !def.namespaced {
                return Err(ApiError::not_found_path());
            }
            // `.../<name>/proxy/<path...>`: the path goes to the pod (see `crate::proxy`).
            if tail.len() > 2 && tail.get(1) != Some(&"proxy") {
                return Err(ApiError::not_found_path());
            }
            ResourceTarget {
                def,
                namespace: Some(ns.to_string()),
                name: tail.first().map(|s| s.to_string()),
                sub: tail.get(1).map(|s| s.to_string()),
            }
        }
        [plural, tail @ ..] => {
            let def = lookup(plural)?;
            if tail.len() > 2 {
                return Err(ApiError::not_found_path());
            }
            ResourceTarget {
                def,
                namespace: None,
                name: tail.first().map(|s| s.to_string()),
                sub: tail.get(1).map(|s| s.to_string()),
            }
        }
        [] => return Err(ApiError::not_found_path()),
    };
    if t.def.namespaced && t.name.is_some() && t.namespace.is_none() {
        // e.g. /api/v1/pods/foo: namespaced objects are only addressable inside a namespace.
        return Err(ApiError::not_found_path());
    }
    Ok(Target::Resource(t))
}

pub fn query_map(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.insert(pct_decode(k), pct_decode(v));
        }
    }
    out
}

pub(crate) use daas_protocol::query::pct_decode;

/// The header prefix naming one impersonated `extra` key (upstream's `Impersonate-Extra-`).
pub const IMPERSONATE_EXTRA_PREFIX: &str = "impersonate-extra-";

/// Go's `url.PathUnescape`: `%XX` escapes decoded (`+` stays `+`); `None` on a malformed
/// escape or a result that is not UTF-8.
fn path_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `extra` an impersonating request asks for: one entry per `Impersonate-Extra-<key>` header
/// (each header line one value, in order), the key lower-cased and then percent-decoded as
/// upstream does (a key that does not decode is used as sent). Keys come back sorted.
pub fn impersonated_extra(headers: &HeaderMap) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in headers {
        let Some(encoded) = name.as_str().strip_prefix(IMPERSONATE_EXTRA_PREFIX) else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            continue;
        };
        let lower = encoded.to_ascii_lowercase();
        let key = path_unescape(&lower).unwrap_or(lower);
        out.entry(key).or_default().push(value.trim().to_string());
    }
    out
}

/// Requested response representation, from the Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Object,
    Table,
    PartialMetadata,
}

/// The view (object, Table, partial metadata) the `Accept` header asks for; see
/// [`crate::negotiation`] for the serialization and the 406 rules.
pub fn negotiate(headers: &HeaderMap) -> As {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    crate::negotiation::choose(accept, crate::negotiation::BUILTIN, false)
        .map(|c| c.view)
        .unwrap_or(As::Object)
}

/// Decode a request body (JSON or YAML by Content-Type) into a JSON object.
/// The media types a built-in kind's create/update body may have, in upstream's order.
pub const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// The media types a custom resource's body may have.
pub const CUSTOM_RESOURCE_BODY_TYPES: &[&str] = &["application/json", "application/yaml"];

/// Upstream's 415 for a body in a media type the endpoint does not decode.
fn unknown_format(accepted: &[&str]) -> ApiError {
    ApiError::unsupported_media(format!(
        "the body of the request was in an unknown format - accepted media types include: {}",
        accepted.join(", ")
    ))
}

pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let v: Value = match media {
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))?,
        "application/json" | "" | "*/*" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}")))?,
        "application/vnd.kubernetes.protobuf" => {
            use daas_apimachinery::protobuf::{
                decode_object, is_builtin_api_version, ProtobufError as P,
            };
            decode_object(body).map_err(|e| match e {
                // Custom resources have no protobuf form: upstream's serializer for them
                // offers JSON and YAML only.
                P::UnsupportedKind {
                    ref api_version, ..
                } if !is_builtin_api_version(api_version) => {
                    unknown_format(CUSTOM_RESOURCE_BODY_TYPES)
                }
                P::UnsupportedKind { .. }
                | P::UnsupportedEncoding(_)
                | P::UnsupportedContentType(_) => {
                    ApiError::unsupported_media(format!("{e}; send the object as application/json"))
                }
                other => ApiError::bad_request(format!("error decoding protobuf body: {other}")),
            })?
        }
        _ => return Err(unknown_format(BODY_TYPES)),
    };
    let mut v = v;
    check_shape(&mut v)?;
    Ok(v)
}

/// The `DeleteOptions` of a `DELETE` (one object or a collection): JSON or protobuf by
/// Content-Type; an empty body means the defaults (`{}`).
pub fn delete_options(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    daas_apimachinery::decode_delete_options(ct, body).map_err(|e| {
        if e.is_unsupported_media_type() {
            ApiError::unsupported_media(e.to_string())
        } else {
            ApiError::bad_request(e.to_string())
        }
    })
}

/// An object body must be a map whose `metadata` (if any) is a map; a null metadata becomes `{}`.
pub fn check_shape(v: &mut Value) -> ApiResult<()> {
    let Some(m) = v.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    };
    match m.get("metadata") {
        None | Some(Value::Null) => {
            m.insert("metadata".into(), Value::Object(Default::default()));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn impersonated_extra_keys_are_lowercased_and_unescaped() {
        let mut h = HeaderMap::new();
        h.append("Impersonate-Extra-Scopes", HeaderValue::from_static("view"));
        h.append(
            "impersonate-extra-scopes",
            HeaderValue::from_static("development"),
        );
        h.append(
            "Impersonate-Extra-Example.com%2fProject",
            HeaderValue::from_static("p1"),
        );
        h.append("impersonate-extra-bad%zz", HeaderValue::from_static("x"));
        h.append("impersonate-user", HeaderValue::from_static("jane"));
        let extra = impersonated_extra(&h);
        assert_eq!(extra.len(), 3, "{extra:?}");
        assert_eq!(extra["scopes"], ["view", "development"]);
        assert_eq!(extra["example.com/project"], ["p1"]);
        assert_eq!(extra["bad%zz"], ["x"]);
        assert_eq!(path_unescape("a%2Fb+c").as_deref(), Some("a/b+c"));
        assert_eq!(path_unescape("a%2"), None);
    }

    fn rt(p: &str) -> ResourceTarget {
        match parse_path(p).unwrap() {
            Target::Resource(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths() {
        let t = rt("/api/v1/namespaces/default/pods/web-1/status");
        assert_eq!(
            (
                t.def.plural,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.sub.as_deref()
            ),
            ("pods", Some("default"), Some("web-1"), Some("status"))
        );
        let t = rt("/api/v1/namespaces/kube-system");
        assert_eq!(
            (t.def.plural, t.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let t = rt("/api/v1/namespaces/foo/status");
        assert_eq!(
            (t.def.plural, t.name.as_deref(), t.sub.as_deref()),
            ("namespaces", Some("foo"), Some("status"))
        );
        let t = rt("/apis/apps/v1/deployments");
        assert_eq!((t.def.kind, t.namespace), ("Deployment", None));
        assert!(matches!(
            parse_path("/apis/apps/v1"),
            Ok(Target::GroupVersion { .. })
        ));
        assert_eq!(parse_path("/api/v1/widgets").unwrap_err().code, 404);
        assert_eq!(parse_path("/api/v1/pods/x").unwrap_err().code, 404);
        assert_eq!(parse_path("/api/v2").unwrap_err().code, 404);
        assert_eq!(
            parse_path("/api/v1/namespaces/a/pods/b/c/d")
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn unknown_body_media_type_is_upstreams_415() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let e = decode_body(&h, b"{}").unwrap_err();
        assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
        assert_eq!(
            e.message,
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
        // A custom resource in protobuf: JSON and YAML only, as upstream's CR endpoint.
        h.insert(
            "content-type",
            HeaderValue::from_static("application/vnd.kubernetes.protobuf"),
        );
        // `k8s\0` + Unknown{typeMeta{example.com/v1, Widget}, raw: ""}.
        let mut tm = Vec::new();
        for (tag, s) in [(1u8, "example.com/v1"), (2u8, "Widget")] {
            tm.push(tag << 3 | 2);
            tm.push(s.len() as u8);
            tm.extend_from_slice(s.as_bytes());
        }
        let mut body = b"k8s\0".to_vec();
        body.push(1 << 3 | 2);
        body.push(tm.len() as u8);
        body.extend_from_slice(&tm);
        body.extend_from_slice(&[2 << 3 | 2, 0]);
        let e = decode_body(&h, &body).unwrap_err();
        assert_eq!(e.code, 415);
        assert_eq!(
            e.message,
            "the body of the request was in an unknown format - accepted media types include: \
             application/json, application/yaml"
        );
    }

    #[test]
    fn query_decoding() {
        let q = query_map(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x"));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(query_map(Some("a=%zz%4"))["a"], "%zz%4");
    }

    #[test]
    fn accept_negotiation() {
        let mut h = HeaderMap::new();
        h.insert("accept", HeaderValue::from_static(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert_eq!(negotiate(&h), As::Table);
        h.insert(
            "accept",
            HeaderValue::from_static(
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            ),
        );
        assert_eq!(negotiate(&h), As::Object);
        h.insert(
            "accept",
            HeaderValue::from_static(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
            ),
        );
        assert_eq!(negotiate(&h), As::PartialMetadata);
    }

    #[test]
    fn bodies() {
        let mut h = HeaderMap::new();
        assert!(decode_body(&h, b"{\"a\":1}").is_ok());
        assert_eq!(decode_body(&h, b"{\"a\":").unwrap_err().code, 400);
        assert_eq!(decode_body(&h, b"[1]").unwrap_err().code, 400);
        h.insert("content-type", HeaderValue::from_static("application/yaml"));
        assert_eq!(
            decode_body(&h, b"kind: Pod\nmetadata: {name: a}\n").unwrap()["kind"],
            "Pod"
        );
        assert_eq!(decode_body(&h, b"kind: [\n").unwrap_err().code, 400);
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(decode_body(&h, b"{}").unwrap_err().code, 415);
    }
}
