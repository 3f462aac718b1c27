//! The master reaching a node's agent (`kubectl logs`). The agent's serving certificate is pinned
//! by the SHA-256 the node published on its Node object (only the node itself may write that
//! object), and every request carries a signature by the master's enclave key, which the agent
//! learned when it verified the master's attestation.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::response::Response;
use base64::Engine;
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

impl AgentProxy {
    /// A signed `GET path` to the agent of `node` over TLS pinned to its published certificate.
    async fn signed_get(
        &self,
        node: &Value,
        path: &str,
    ) -> ApiResult<hyper::Response<hyper::body::Incoming>> {
        let (addr, port, pin) = node_endpoint(node)?;
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
        let tcp = tokio::net::TcpStream::connect((addr.as_str(), port))
            .await
            .map_err(unavailable)?;
        let server_name = ServerName::try_from(addr.clone()).map_err(unavailable)?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(server_name, tcp)
            .await
            .map_err(unavailable)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(unavailable)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let ts = crate::now_ms();
        let sig = self.enclave.sign(&request_message("GET", path, ts));
        let req = hyper::Request::get(path)
            .header("host", format!("{addr}:{port}"))
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(
                SIGNATURE_HEADER,
                base64::engine::general_purpose::STANDARD.encode(sig),
            )
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(unavailable)?;
        sender.send_request(req).await.map_err(unavailable)
    }
}

#[async_trait]
impl NodeProxy for AgentProxy {
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
