//! A minimal one-shot HTTP/1.1 client (plain HTTP, or HTTPS verified against the public web
//! roots or a pinned CA) for the blob store and the snapshot CLI.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Which certificates an HTTPS server must chain to.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The public web's roots (webpki-roots).
    WebPki,
    /// The CA certificates of a PEM bundle (e.g. a kubeconfig's certificate-authority-data).
    CaPem(String),
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: {msg}")]
    Transport { url: String, msg: String },
    #[error("{url}: TLS: {msg}")]
    Tls { url: String, msg: String },
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: timed out after {0:?}", .timeout)]
    Timeout { url: String, timeout: Duration },
}

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

struct Target {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> Result<Target, HttpError> {
    let bad = |reason: &str| HttpError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad("scheme must be http or https"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("missing host (or userinfo, which is not supported)"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| bad("unterminated IPv6 literal"))?;
        let port = v6[end + 1..].strip_prefix(':');
        (v6[..end].to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("invalid port"))?,
        None if https => 443,
        None => 80,
    };
    Ok(Target {
        https,
        host,
        port,
        path: path.to_string(),
    })
}

fn tls_config(trust: &Trust, url: &str) -> Result<rustls::ClientConfig, HttpError> {
    let tls = |msg: String| HttpError::Tls {
        url: url.to_string(),
        msg,
    };
    let mut roots = rustls::RootCertStore::empty();
    match trust {
        Trust::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Trust::CaPem(pem) => {
            for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let c = c.map_err(|e| tls(format!("CA bundle: {e}")))?;
                roots.add(c).map_err(|e| tls(format!("CA bundle: {e}")))?;
            }
            if roots.is_empty() {
                return Err(tls("CA bundle holds no certificate".into()));
            }
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Send one request and read the whole answer (at most `limit` bytes), within `timeout`.
#[allow(clippy::too_many_arguments)]
pub async fn call(
    method: Method,
    url: &str,
    trust: &Trust,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
    limit: usize,
    timeout: Duration,
) -> Result<Reply, HttpError> {
    match tokio::time::timeout(
        timeout,
        call_inner(method, url, trust, bearer, content_type, body, limit),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout {
            url: url.to_string(),
            timeout,
        }),
    }
}

/// One HTTP/1.1 request over an established connection (plain TCP or TLS).
async fn send<S>(
    io: S,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await
}

async fn call_inner(
    method: Method,
    url: &str,
    trust: &Trust,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Reply, HttpError> {
    let t = parse(url)?;
    let transport = |msg: String| HttpError::Transport {
        url: url.to_string(),
        msg,
    };
    let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| transport(e.to_string()))?;
    let host_header = if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let mut req = Request::builder()
        .method(method)
        .uri(&t.path)
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::CONTENT_LENGTH, body.len());
    if let Some(b) = bearer {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {b}"));
    }
    if let Some(ct) = content_type {
        req = req.header(hyper::header::CONTENT_TYPE, ct);
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| transport(e.to_string()))?;
    let resp = if t.https {
        let name = ServerName::try_from(t.host.clone()).map_err(|e| HttpError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls_config(trust, url)?))
            .connect(name, tcp)
            .await
            .map_err(|e| HttpError::Tls {
                url: url.to_string(),
                msg: e.to_string(),
            })?;
        send(stream, req).await
    } else {
        send(tcp, req).await
    }
    .map_err(|e| transport(e.to_string()))?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                HttpError::TooLarge {
                    url: url.to_string(),
                    limit,
                }
            } else {
                transport(e.to_string())
            }
        })?
        .to_bytes();
    Ok(Reply { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse("https://pub.example:8443/v1/blobs?epochs=5").unwrap();
        assert!(t.https);
        assert_eq!((t.host.as_str(), t.port), ("pub.example", 8443));
        assert_eq!(t.path, "/v1/blobs?epochs=5");
        let t = parse("http://127.0.0.1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = parse("http://[::1]:9/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        assert!(matches!(parse("ftp://x"), Err(HttpError::Url { .. })));
        assert!(matches!(parse("http://u@x/"), Err(HttpError::Url { .. })));
    }
}
