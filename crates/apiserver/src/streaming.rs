//! `pods/exec` and `pods/attach`: options validated as upstream, then a WebSocket
//! (`v5.channel.k8s.io`, or `v4.channel.k8s.io`) from the client is joined to a stream the
//! [`NodeProxy`](crate::NodeProxy) opens to the pod's node. Messages pass through unchanged: each
//! binary message is one channel byte (0 stdin, 1 stdout, 2 stderr, 3 error Status, 4 resize,
//! 255 close) followed by its data. Clients that speak SPDY/3.1 instead are served by
//! [`crate::spdyexec`].

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};

/// WebSocket subprotocols served for exec and attach, preferred first.
pub const CHANNEL_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// Which pod subresource a stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Exec,
    Attach,
}

impl StreamKind {
    pub fn path(self) -> &'static str {
        match self {
            StreamKind::Exec => "exec",
            StreamKind::Attach => "attach",
        }
    }
}

/// `PodExecOptions` / `PodAttachOptions` from the query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub container: Option<String>,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

pub use daas_protocol::query::query_pairs;

fn flag(name: &str, v: &str) -> ApiResult<bool> {
    match v {
        "" | "true" | "1" | "True" | "TRUE" => Ok(true),
        "false" | "0" | "False" | "FALSE" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid value {v:?} for {name}: must be a boolean"
        ))),
    }
}

impl StreamOptions {
    /// Parse and validate as the API server does (`pkg/registry/core/pod/rest/subresources.go`).
    pub fn parse(kind: StreamKind, raw: &str) -> ApiResult<StreamOptions> {
        let mut o = StreamOptions::default();
        for (k, v) in query_pairs(raw) {
            match k.as_str() {
                "container" => o.container = Some(v).filter(|c| !c.is_empty()),
                "command" => o.command.push(v),
                "stdin" => o.stdin = flag("stdin", &v)?,
                "stdout" => o.stdout = flag("stdout", &v)?,
                "stderr" => o.stderr = flag("stderr", &v)?,
                "tty" => o.tty = flag("tty", &v)?,
                _ => {}
            }
        }
        if !(o.stdin || o.stdout || o.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        if kind == StreamKind::Exec && o.command.is_empty() {
            return Err(ApiError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        if kind == StreamKind::Attach {
            o.command.clear();
        }
        // A terminal merges stderr into stdout.
        if o.tty {
            o.stderr = false;
        }
        Ok(o)
    }

    /// The query the node gets: the validated options, container resolved.
    pub fn node_query(&self, container: &str) -> String {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let mut q = format!(
            "container={}&stdin={}&stdout={}&stderr={}&tty={}",
            enc(container),
            self.stdin,
            self.stdout,
            self.stderr,
            self.tty
        );
        for c in &self.command {
            q.push_str("&command=");
            q.push_str(&enc(c));
        }
        q
    }
}

/// A bidirectional stream to a node: channel-framed messages both ways. Dropping `to_node`
/// ends the session on the node; `from_node` ends when the node closes it.
pub struct NodeStream {
    pub to_node: mpsc::Sender<Vec<u8>>,
    pub from_node: mpsc::Receiver<Vec<u8>>,
}

/// The client's WebSocket upgrade, or 400 as upstream for a request that is not one (a SPDY
/// upgrade is served by [`crate::spdyexec`] instead).
pub fn upgrade(parts: &mut Parts) -> ApiResult<WebSocketUpgrade> {
    let fut = WebSocketUpgrade::from_request_parts(parts, &());
    // The extractor only inspects headers and extensions; it never waits.
    match futures::FutureExt::now_or_never(fut) {
        Some(Ok(ws)) => Ok(ws),
        _ => Err(ApiError::bad_request("Upgrade request required")),
    }
}

/// Answer the upgrade and pass messages between the client and the node until either side ends.
pub fn join(ws: WebSocketUpgrade, node: NodeStream) -> Response {
    ws.protocols(CHANNEL_PROTOCOLS)
        .max_message_size(crate::limits::MAX_STREAM_MESSAGE)
        .max_frame_size(crate::limits::MAX_STREAM_MESSAGE)
        .on_upgrade(move |socket| relay(socket, node))
}

async fn relay(socket: WebSocket, node: NodeStream) {
    let NodeStream {
        to_node,
        mut from_node,
    } = node;
    let (mut client_tx, mut client_rx) = socket.split();
    let up = async move {
        while let Some(Ok(msg)) = client_rx.next().await {
            let data = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            if to_node.send(data).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        while let Some(data) = from_node.recv().await {
            if client_tx.send(Message::Binary(data.into())).await.is_err() {
                return;
            }
        }
        let _ = client_tx
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: axum::extract::ws::close_code::NORMAL,
                reason: Default::default(),
            })))
            .await;
    };
    // The node's end (process exited, error Status sent) finishes the session; the client's
    // going away drops `to_node`, which ends it on the node.
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_options_validated_as_upstream() {
        let o = StreamOptions::parse(
            StreamKind::Exec,
            "command=sh&command=-c&command=echo%20hi%3B%20exit%203&container=c&stdout=true&stderr=true",
        )
        .expect("valid");
        assert_eq!(o.command, vec!["sh", "-c", "echo hi; exit 3"]);
        assert_eq!(o.container.as_deref(), Some("c"));
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let e = StreamOptions::parse(StreamKind::Exec, "command=ls").expect_err("no streams");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("at least 1 of stdin, stdout, stderr"));
        let e = StreamOptions::parse(StreamKind::Exec, "stdout=true").expect_err("no command");
        assert_eq!(e.code, 400);
        let e =
            StreamOptions::parse(StreamKind::Exec, "stdout=maybe&command=ls").expect_err("flag");
        assert_eq!(e.code, 400);
        // Attach needs no command; a tty has no separate stderr.
        let o = StreamOptions::parse(StreamKind::Attach, "stdin=1&stdout=1&stderr=1&tty=1")
            .expect("attach");
        assert!(o.command.is_empty() && o.tty && !o.stderr);
    }

    #[test]
    fn node_query_round_trips() {
        let o = StreamOptions::parse(
            StreamKind::Exec,
            "command=sh&command=-c&command=a%20b%26c%3D&stdin=true&stdout=true&tty=true",
        )
        .expect("valid");
        let back = StreamOptions::parse(StreamKind::Exec, &o.node_query("main")).expect("again");
        assert_eq!(back.command, o.command);
        assert_eq!(back.container.as_deref(), Some("main"));
        assert!(back.stdin && back.stdout && back.tty);
    }
}
