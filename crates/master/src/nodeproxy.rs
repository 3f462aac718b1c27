//! The master reaching a node's agent (`kubectl logs`, `kubectl exec` over a WebSocket). The agent's serving certificate is pinned
//! by the SHA-256 the node published on its Node object (only the node itself may write that
//! object), and every request carries a signature by the master's enclave key, which the agent
//! learned when it verified the master's attestation.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use daas_apiserver::streaming::{NodeStream, StreamKind};
use daas_apiserver::{ApiError, ApiResult, NodeProxy};
use daas_tee::Enclave;
use rustls::pki_types::ServerName;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use daas_protocol::nodeproxy::{
    request_message, KUBELET_CERT_ANNOTATION, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

pub struct AgentProxy {
    pub enclave: Arc<dyn Enclave>,
}

fn node_endpoint(node: &Value) -> ApiResult<(String, u16, [u8; 32])> {
    let name = node["metadata"]["name"].as_str().unwrap_or("");
    let addr = node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
        .and_then(|x| x["address"].as_str())
        .ok_or_else(|| {
            ApiError::new(
                503,
                "ServiceUnavailable",
                format!("node {name} has no InternalIP"),
            )
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0 && *p <= u16::MAX as u64)
        .ok_or_else(|| {
            ApiError::new(
                503,
                "ServiceUnavailable",
                format!("node {name} has no kubelet endpoint"),
            )
        })?;
    let pin = node["metadata"]["annotations"][KUBELET_CERT_ANNOTATION]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            ApiError::new(
                503,
                "ServiceUnavailable",
                format!("node {name} has not published its serving certificate"),
            )
        })?;
    Ok((addr.to_string(), port as u16, pin))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        503,
        "ServiceUnavailable",
        format!("cannot reach the node: {e}"),
    )
}

/// TLS to the agent at `addr:port`, accepting only the certificate whose SHA-256 is `pin`.
async fn connect_pinned(
    addr: &str,
    port: u16,
    pin: [u8; 32],
) -> ApiResult<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let cfg = crate::tlsverify::CertCheck::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        move |leaf, _| {
            let got: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
            if got == pin {
                Ok(())
            } else {
                Err(rustls::Error::General(
                    "node certificate does not match the pinned SHA-256".into(),
                ))
            }
        },
    )
    .client_config()
    .map_err(unavailable)?;
    let tcp = tokio::net::TcpStream::connect((addr, port))
        .await
        .map_err(unavailable)?;
    let server_name = ServerName::try_from(addr.to_string()).map_err(unavailable)?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(server_name, tcp)
        .await
        .map_err(unavailable)
}

impl AgentProxy {
    /// Signature headers for a GET of `path_and_query`.
    fn sign_get(&self, path_and_query: &str) -> (String, String) {
        let ts = crate::now_ms();
        let sig = self
            .enclave
            .sign(&request_message("GET", path_and_query, ts));
        (
            ts.to_string(),
            base64::engine::general_purpose::STANDARD.encode(sig),
        )
    }

    /// A signed `GET path` to the agent of `node` over TLS pinned to its published certificate.
    async fn signed_get(
        &self,
        node: &Value,
        path: &str,
    ) -> ApiResult<hyper::Response<hyper::body::Incoming>> {
        let (addr, port, pin) = node_endpoint(node)?;
        let tls = connect_pinned(&addr, port, pin).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(unavailable)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let (ts, sig) = self.sign_get(path);
        let req = hyper::Request::get(path)
            .header("host", format!("{addr}:{port}"))
            .header(TIMESTAMP_HEADER, ts)
            .header(SIGNATURE_HEADER, sig)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(unavailable)?;
        sender.send_request(req).await.map_err(unavailable)
    }
}

/// The agent's answer to a refused request, as the Status the client gets.
fn refused(status: u16, body: Option<Vec<u8>>) -> ApiError {
    let msg = body
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("the node refused the stream (HTTP {status})"));
    match status {
        400 => ApiError::bad_request(msg),
        404 => ApiError::new(404, "NotFound", msg),
        _ => ApiError::new(500, "InternalError", format!("error from the node: {msg}")),
    }
}

impl AgentProxy {
    /// A signed WebSocket to the agent at `path`: each binary message one way is one message
    /// on the [`NodeStream`].
    async fn open_stream(&self, node: &Value, path: &str) -> ApiResult<NodeStream> {
        use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};
        let (addr, port, pin) = node_endpoint(node)?;
        let tls = connect_pinned(&addr, port, pin).await?;
        let (ts, sig) = self.sign_get(path);
        let mut req = format!("wss://{addr}:{port}{path}")
            .into_client_request()
            .map_err(unavailable)?;
        let h = req.headers_mut();
        h.insert(TIMESTAMP_HEADER, ts.parse().map_err(unavailable)?);
        h.insert(SIGNATURE_HEADER, sig.parse().map_err(unavailable)?);
        let (ws, _) = match tokio_tungstenite::client_async(req, tls).await {
            Ok(ok) => ok,
            Err(tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                return Err(refused(status, resp.into_body()));
            }
            Err(e) => return Err(unavailable(e)),
        };
        let (to_node, mut to_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        let (from_tx, from_node) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        tokio::spawn(async move {
            use futures::{SinkExt, StreamExt};
            let (mut tx, mut rx) = ws.split();
            let up = async move {
                while let Some(data) = to_rx.recv().await {
                    if tx.send(Message::Binary(data.into())).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(Message::Close(None)).await;
            };
            let down = async move {
                while let Some(Ok(msg)) = rx.next().await {
                    let data = match msg {
                        Message::Binary(b) => b.to_vec(),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if from_tx.send(data).await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = up => {}
                _ = down => {}
            }
        });
        Ok(NodeStream { to_node, from_node })
    }
}

#[async_trait]
impl NodeProxy for AgentProxy {
    async fn container_stream(
        &self,
        node: &Value,
        kind: StreamKind,
        ns: &str,
        pod: &str,
        query: &str,
    ) -> ApiResult<NodeStream> {
        let path = format!("/{}/{ns}/{pod}?{query}", kind.path());
        self.open_stream(node, &path).await
    }

    async fn port_forward(
        &self,
        node: &Value,
        ns: &str,
        pod: &str,
        port: u16,
    ) -> ApiResult<NodeStream> {
        self.open_stream(node, &format!("/portForward/{ns}/{pod}?port={port}"))
            .await
    }

    async fn container_logs(
        &self,
        node: &Value,
        ns: &str,
        pod: &str,
        container: &str,
        query: &str,
    ) -> ApiResult<Response> {
        let mut path = format!("/containerLogs/{ns}/{pod}/{container}");
        if !query.is_empty() {
            path.push('?');
            path.push_str(query);
        }
        let resp = self.signed_get(node, &path).await?;
        let status = resp.status();
        if !status.is_success() {
            // The agent's refusal (e.g. no previous instance) becomes the Status kubectl shows.
            use http_body_util::BodyExt;
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().to_vec())
                .ok();
            return Err(refused(status.as_u16(), body));
        }
        let (parts, body) = resp.into_parts();
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = status;
        if let Some(ct) = parts.headers.get(axum::http::header::CONTENT_TYPE) {
            out.headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, ct.clone());
        }
        Ok(out)
    }

    async fn node_get(&self, node: &Value, path: &str) -> ApiResult<Vec<u8>> {
        use http_body_util::BodyExt;
        let resp = self.signed_get(node, path).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(unavailable)?
            .to_bytes();
        if !status.is_success() {
            return Err(unavailable(format!(
                "{path}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )));
        }
        Ok(body.to_vec())
    }
}
