//! How the API server reaches a pod's port: the `pods/proxy` and `services/proxy` subresources and
//! webhooks served by a Service.
//!
//! The master is not on the pod network (it runs in an enclave, possibly on a host with no route to
//! any staker's pods), so, like K3s' egress selector in "agent" mode, a connection to a pod goes
//! through the agent of the pod's node: the node proxy's port-forward stream, for which the agent
//! connects to the pod's IP from its node (the agent's certificate is pinned and every request to
//! it is signed by the enclave key). A target without a node
//! (e.g. an Endpoints address with no pod behind it) is dialled directly.

use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ApiError;
use crate::handlers::{self, Ctx};
use crate::resources;
use crate::server::NodeProxy;

/// A byte stream to a pod's port.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// Where a connection goes: a pod (reached through its node) or a bare address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub ip: String,
    pub port: u16,
    /// `(namespace, pod name, node name)` when a scheduled pod is behind the address.
    pub pod: Option<(String, String, String)>,
}

impl Target {
    /// `ip:port` (bracketed for IPv6), for messages and direct dials.
    pub fn addr(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }

    /// The pod `pod` (an object) at `port`.
    pub fn pod(pod: &Value, port: u16) -> Target {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        Target {
            ip: pod["status"]["podIP"].as_str().unwrap_or("").to_string(),
            port,
            pod: (!node.is_empty()).then(|| {
                (
                    pod["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    node.to_string(),
                )
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("dial tcp {addr}: {source}")]
    Dial {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no agent connection for node {node}: {message}")]
    Node { node: String, message: String },
}

impl From<EgressError> for ApiError {
    fn from(e: EgressError) -> Self {
        ApiError::new(503, "ServiceUnavailable", e.to_string())
    }
}

/// Open a connection to `target`: through its node's agent when a pod is behind it and a node
/// proxy is configured, else directly.
pub async fn connect(
    ctx: &Ctx,
    proxy: Option<&Arc<dyn NodeProxy>>,
    target: &Target,
) -> Result<Box<dyn Conn>, EgressError> {
    if let (Some((ns, pod, node_name)), Some(proxy)) = (&target.pod, proxy) {
        let node_err = |message: String| EgressError::Node {
            node: node_name.clone(),
            message,
        };
        let (node, _) = handlers::get_object(ctx, &resources::NODES, None, node_name)
            .await
            .map_err(|e| node_err(e.message.clone()))?;
        let stream = proxy
            .port_forward(&node, ns, pod, target.port)
            .await
            .map_err(|e| node_err(e.message.clone()))?;
        return Ok(Box::new(pipe(stream)));
    }
    let tcp = tokio::net::TcpStream::connect(target.addr())
        .await
        .map_err(|source| EgressError::Dial {
            addr: target.addr(),
            source,
        })?;
    Ok(Box::new(tcp))
}

/// The node stream as a byte stream: what is written goes to the node as messages (an empty one
/// when the writer shuts down: the half-close), what the node sends is read in order.
fn pipe(stream: crate::streaming::NodeStream) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut rd, mut wr) = tokio::io::split(theirs);
    let crate::streaming::NodeStream {
        to_node,
        mut from_node,
    } = stream;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = to_node.send(Vec::new()).await;
                    break;
                }
                Ok(n) => {
                    if to_node.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        while let Some(chunk) = from_node.recv().await {
            if chunk.is_empty() {
                continue;
            }
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    ours
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn pipe_carries_bytes_both_ways_and_the_half_close() {
        let (to_node, mut node_rx) = mpsc::channel(8);
        let (node_tx, from_node) = mpsc::channel(8);
        let mut io = pipe(crate::streaming::NodeStream { to_node, from_node });
        io.write_all(b"ping").await.unwrap();
        assert_eq!(node_rx.recv().await.unwrap(), b"ping");
        node_tx.send(b"po".to_vec()).await.unwrap();
        node_tx.send(b"ng".to_vec()).await.unwrap();
        drop(node_tx);
        let mut got = Vec::new();
        let (mut r, mut w) = tokio::io::split(io);
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"pong");
        w.shutdown().await.unwrap();
        assert_eq!(node_rx.recv().await.unwrap(), b"");
    }

    #[test]
    fn pod_target_names_its_node() {
        let pod = serde_json::json!({"metadata": {"namespace": "a", "name": "p"},
            "spec": {"nodeName": "n1"}, "status": {"podIP": "10.42.1.5"}});
        let t = Target::pod(&pod, 8080);
        assert_eq!(t.addr(), "10.42.1.5:8080");
        assert_eq!(t.pod, Some(("a".into(), "p".into(), "n1".into())));
        let v6 = Target {
            ip: "fd00::1".into(),
            port: 80,
            pod: None,
        };
        assert_eq!(v6.addr(), "[fd00::1]:80");
    }
}
