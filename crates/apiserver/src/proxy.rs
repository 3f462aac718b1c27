//! The `pods/proxy` and `services/proxy` subresources: an HTTP request to
//! `/api/v1/namespaces/<ns>/pods/<[scheme:]name[:port]>/proxy/<path>` (or `services/...`) is sent
//! to the pod's port (a Service's: one of its ready endpoints, as upstream's service
//! `ResourceLocation` picks it) and the answer comes back as it is. The connection goes through
//! [`crate::egress`] (the pod's node agent). Authorization is the subresource's, by HTTP method.

use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, Request, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::Value;
use tracing::Instrument;

use crate::egress::{self, Target};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, Ctx};
use crate::request::ResourceTarget;
use crate::resources;
use crate::server::NodeProxy;

/// `[scheme:]name[:port]` as upstream's `SplitSchemeNamePort`: the scheme is `http`, `https` or
/// empty, the name non-empty.
pub fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [n] => ("", *n, ""),
        [n, p] => ("", *n, *p),
        [s, n, p] => (*s, *n, *p),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

/// Headers that belong to one hop (RFC 9110 7.6.1) and are never forwarded, plus the client's
/// credentials (the API server consumed them; upstream's authentication filter drops them).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "authorization"
    )
}

/// The path after `.../<plural>/<id>/proxy` in the request's path ("/" when there is none).
fn rest_path(path: &str, plural: &str, id: &str) -> String {
    let marker = format!("/{plural}/{id}/proxy");
    match path.find(&marker) {
        Some(i) => {
            let rest = &path[i + marker.len()..];
            if rest.is_empty() {
                "/".to_string()
            } else {
                rest.to_string()
            }
        }
        None => "/".to_string(),
    }
}

/// Where `pods/<id>/proxy` goes: the pod's IP at the named port, else the first declared
/// container port, else the scheme's default.
async fn pod_location(ctx: &Ctx, ns: &str, id: &str) -> ApiResult<(String, Target)> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid pod request {id:?}")))?;
    let (pod, _) = handlers::get_object(ctx, &resources::PODS, Some(ns), name).await?;
    let declared = || {
        pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| c["ports"][0]["containerPort"].as_u64())
    };
    let port: u16 = if port.is_empty() {
        declared()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(if scheme == "https" { 443 } else { 80 })
    } else {
        port.parse().map_err(|_| {
            ApiError::new(
                503,
                "ServiceUnavailable",
                format!("error trying to reach service: dial tcp: address {port}: invalid port"),
            )
        })?
    };
    let target = Target::pod(&pod, port);
    if target.ip.is_empty() {
        return Err(ApiError::bad_request(format!(
            "address not allowed: pod {name} has no IP address"
        )));
    }
    Ok((scheme.to_string(), target))
}

/// Where `services/<id>/proxy` goes, as upstream: the Service port (by number or name; a number
/// that is no port of the Service is 503), then a random ready address of the Service's Endpoints
/// carrying that port.
async fn service_location(ctx: &Ctx, ns: &str, id: &str) -> ApiResult<(String, Target)> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid service request {id:?}")))?;
    let (svc, _) = handlers::get_object(ctx, &resources::SERVICES, Some(ns), name).await?;
    let mut port_name = port.to_string();
    if let Ok(n) = port.parse::<i64>() {
        port_name = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"].as_i64() == Some(n))
            .map(|p| p["name"].as_str().unwrap_or("").to_string())
            .ok_or_else(|| {
                ApiError::new(
                    503,
                    "ServiceUnavailable",
                    format!("no service port {n} found for service {name:?}"),
                )
            })?;
    }
    let unavailable = |what: &str| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for service {what:?}"),
        )
    };
    let eps = match handlers::get_object(ctx, &resources::ENDPOINTS, Some(ns), name).await {
        Ok((e, _)) => e,
        Err(e) if e.code == 404 => return Err(unavailable(name)),
        Err(e) => return Err(e),
    };
    let subsets: Vec<&Value> = eps["subsets"].as_array().into_iter().flatten().collect();
    if subsets.is_empty() {
        return Err(unavailable(name));
    }
    let seed = rand::thread_rng().gen_range(0..subsets.len());
    for i in 0..subsets.len() {
        let ss = subsets[(seed + i) % subsets.len()];
        let addrs: Vec<&Value> = ss["addresses"].as_array().into_iter().flatten().collect();
        if addrs.is_empty() {
            continue;
        }
        let Some(p) = ss["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or("") == port_name)
        else {
            continue;
        };
        let Some(port) = p["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        let a = addrs[rand::thread_rng().gen_range(0..addrs.len())];
        let node = a["nodeName"].as_str().unwrap_or("");
        let pod = (a["targetRef"]["kind"] == "Pod" && !node.is_empty()).then(|| {
            (
                a["targetRef"]["namespace"]
                    .as_str()
                    .unwrap_or(ns)
                    .to_string(),
                a["targetRef"]["name"].as_str().unwrap_or("").to_string(),
                node.to_string(),
            )
        });
        return Ok((
            scheme.to_string(),
            Target {
                ip: a["ip"].as_str().unwrap_or("").to_string(),
                port,
                pod,
            },
        ));
    }
    Err(unavailable(id))
}

/// Serve one proxied request for `t` (`pods` or `services`) named `id`.
pub async fn serve(
    ctx: &Ctx,
    node_proxy: Option<&Arc<dyn NodeProxy>>,
    parts: &Parts,
    body: Body,
    max_body: usize,
    t: &ResourceTarget,
    id: &str,
) -> ApiResult<Response<Body>> {
    let ns = t.namespace.clone().unwrap_or_default();
    let (scheme, target) = if t.def.kind == "Service" {
        service_location(ctx, &ns, id).await?
    } else {
        pod_location(ctx, &ns, id).await?
    };
    let span = tracing::debug_span!("proxy", kind = t.def.kind, %ns, id, to = %target.addr());
    forward(
        ctx, node_proxy, parts, body, max_body, t, id, &scheme, &target,
    )
    .instrument(span)
    .await
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    ctx: &Ctx,
    node_proxy: Option<&Arc<dyn NodeProxy>>,
    parts: &Parts,
    body: Body,
    max_body: usize,
    t: &ResourceTarget,
    id: &str,
    scheme: &str,
    target: &Target,
) -> ApiResult<Response<Body>> {
    if parts.headers.contains_key(axum::http::header::UPGRADE) {
        return Err(ApiError::bad_request(
            "upgrade requests are not supported through the proxy subresource",
        ));
    }
    let mut path = rest_path(parts.uri.path(), t.def.plural, id);
    if let Some(q) = parts.uri.query() {
        path.push('?');
        path.push_str(q);
    }
    let body = http_body_util::Limited::new(body, max_body)
        .collect()
        .await
        .map_err(|_| ApiError::too_large(max_body))?
        .to_bytes();
    let reach = |e: String| {
        ApiError::new(
            503,
            "ServiceUnavailable",
            format!("error trying to reach service: {e}"),
        )
    };
    let conn = egress::connect(ctx, node_proxy, target)
        .await
        .map_err(|e| reach(e.to_string()))?;
    let conn: Box<dyn egress::Conn> = if scheme == "https" {
        let tls = insecure_tls().map_err(|e| reach(format!("tls: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(tls));
        let name = rustls::pki_types::ServerName::try_from(target.ip.clone())
            .map_err(|e| reach(e.to_string()))?;
        Box::new(
            tls.connect(name, conn)
                .await
                .map_err(|e| reach(format!("tls: {e}")))?,
        )
    } else {
        conn
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
        .await
        .map_err(|e| reach(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut req = Request::builder()
        .method(parts.method.clone())
        .uri(&path)
        .body(http_body_util::Full::new(body))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    copy_headers(&parts.headers, req.headers_mut());
    req.headers_mut().insert(
        axum::http::header::HOST,
        target
            .addr()
            .parse()
            .map_err(|_| ApiError::bad_request("invalid target address"))?,
    );
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| reach(e.to_string()))?;
    let (rparts, rbody) = resp.into_parts();
    let mut out = Response::builder().status(rparts.status);
    if let Some(h) = out.headers_mut() {
        copy_headers(&rparts.headers, h);
    }
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        Body::new(rbody)
    };
    out.body(body)
        .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        if !hop_by_hop(k) && k != axum::http::header::HOST {
            to.append(k.clone(), v.clone());
        }
    }
}

/// TLS to a pod without verifying its certificate, as upstream's proxy transport does for pods
/// and Services (their serving certificates are not issued for their IPs); the handshake's
/// signatures are still checked.
fn insecure_tls() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    daas_protocol::tlsverify::CertCheck::new(provider, |_, _| Ok(())).client_config()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_as_upstream() {
        assert_eq!(split_scheme_name_port("web"), Some(("", "web", "")));
        assert_eq!(split_scheme_name_port("web:80"), Some(("", "web", "80")));
        assert_eq!(
            split_scheme_name_port("https:web:443"),
            Some(("https", "web", "443"))
        );
        assert_eq!(
            split_scheme_name_port("web:http"),
            Some(("", "web", "http"))
        );
        assert_eq!(split_scheme_name_port("ftp:web:21"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn rest_is_what_follows_the_subresource() {
        let p = "/api/v1/namespaces/d/pods/web:80/proxy/a/b";
        assert_eq!(rest_path(p, "pods", "web:80"), "/a/b");
        assert_eq!(
            rest_path("/api/v1/namespaces/d/pods/web/proxy", "pods", "web"),
            "/"
        );
        assert_eq!(
            rest_path("/api/v1/namespaces/d/services/s/proxy/", "services", "s"),
            "/"
        );
    }

    #[test]
    fn credentials_and_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.insert("connection", "close".parse().unwrap());
        h.insert("x-custom", "1".parse().unwrap());
        h.insert("host", "api".parse().unwrap());
        let mut out = HeaderMap::new();
        copy_headers(&h, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-custom"], "1");
    }
}
