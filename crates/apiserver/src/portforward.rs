//! `pods/portforward` (`kubectl port-forward`). kubectl speaks SPDY/3.1 ([`crate::spdy`]), first
//! tunneled in a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`), else on the connection
//! itself after `Upgrade: SPDY/3.1`. The API server terminates SPDY here, as the kubelet's
//! streaming server does: for each forwarded connection kubectl opens an `error` and a `data`
//! stream sharing a `requestid` and naming the `port`; once both exist the pod's port is reached
//! through the [`NodeProxy`](crate::NodeProxy) (one node stream per connection), bytes are
//! copied both ways, and a failure is written as text on the error stream.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::spdy::{self, Frame, FLAG_FIN};
use crate::streaming::NodeStream;

/// WebSocket subprotocol of SPDY tunneled in WebSocket binary messages.
pub const WS_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// `X-Stream-Protocol-Version` of port forwarding over plain SPDY.
pub const STREAM_PROTOCOL: &str = "portforward.k8s.io";
const SPDY_UPGRADE: &str = "SPDY/3.1";
/// Largest DATA frame written.
const CHUNK: usize = 32 * 1024;

/// Opens one connection to a port of the pod (through its node).
pub type Opener = Arc<dyn Fn(u16) -> BoxFuture<'static, ApiResult<NodeStream>> + Send + Sync>;

/// `PodPortForwardOptions`: the `ports` of the query, validated as upstream (each 1..65535).
pub fn parse_ports(raw: &str) -> ApiResult<Vec<u16>> {
    let mut ports = Vec::new();
    for (k, v) in crate::streaming::query_pairs(raw) {
        if k != "ports" {
            continue;
        }
        for p in v.split(',').filter(|p| !p.is_empty()) {
            ports.push(parse_port(p).map_err(ApiError::bad_request)?);
        }
    }
    Ok(ports)
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.trim().parse::<u32>() {
        Ok(0) => Err(format!("port {p:?} must be > 0")),
        Ok(n) => u16::try_from(n).map_err(|_| format!("port {p:?} must be <= 65535")),
        Err(e) => Err(format!("unable to parse {p:?} as a port: {e}")),
    }
}

pub(crate) fn is_upgrade_to(parts: &Parts, proto: &str) -> bool {
    parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(proto))
}

/// Answer kubectl's upgrade (WebSocket tunnel or plain SPDY) and serve forwarded connections
/// on it; 400 "Upgrade request required" for anything else.
pub fn respond(parts: &mut Parts, opener: Opener, pod: String) -> ApiResult<Response> {
    if is_upgrade_to(parts, "websocket") {
        let ws = crate::streaming::upgrade(parts)?;
        return Ok(ws
            .protocols([WS_PROTOCOL])
            .max_message_size(crate::limits::MAX_STREAM_MESSAGE)
            .max_frame_size(crate::limits::MAX_STREAM_MESSAGE)
            .on_upgrade(move |socket| tunnel(socket, opener, pod)));
    }
    if is_upgrade_to(parts, SPDY_UPGRADE) {
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or_else(|| ApiError::bad_request("Upgrade request required"))?;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    session(hyper_util::rt::TokioIo::new(upgraded), opener, pod).await;
                }
                Err(e) => tracing::debug!("port-forward upgrade failed: {e}"),
            }
        });
        let mut resp = Response::new(axum::body::Body::empty());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static(SPDY_UPGRADE));
        h.insert(
            "X-Stream-Protocol-Version",
            HeaderValue::from_static(STREAM_PROTOCOL),
        );
        return Ok(resp);
    }
    Err(ApiError::bad_request("Upgrade request required"))
}

/// SPDY bytes in WebSocket binary messages, both ways.
async fn tunnel(socket: WebSocket, opener: Opener, pod: String) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut from_spdy, mut to_spdy) = tokio::io::split(theirs);
    let (mut ws_tx, mut ws_rx) = socket.split();
    let sess = tokio::spawn(session(ours, opener, pod));
    let inbound = tokio::spawn(async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            let data = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            if to_spdy.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = to_spdy.shutdown().await;
    });
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from_spdy.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if ws_tx
                    .send(Message::Binary(buf[..n].to_vec().into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = ws_tx.send(Message::Close(None)).await;
    inbound.abort();
    let _ = sess.await;
}

/// Bytes kubectl sent on a data stream.
enum Chunk {
    Data(Vec<u8>),
    /// kubectl half-closed the stream (its local connection ended).
    Eof,
}

#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<(u32, mpsc::Receiver<Chunk>)>,
    port: String,
}

/// Serve one SPDY connection until the client ends it.
pub async fn session<S>(io: S, opener: Opener, pod: String)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, mut w) = tokio::io::split(io);
    let mut r = tokio::io::BufReader::new(r);
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(async move {
        let Ok(mut enc) = spdy::HeaderEncoder::new() else {
            return;
        };
        let mut buf = Vec::new();
        while let Some(f) = out_rx.recv().await {
            buf.clear();
            if let Err(e) = spdy::write_frame(&mut buf, &f, &mut enc) {
                tracing::debug!("port-forward: {e}");
                return;
            }
            if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    let mut dec = spdy::HeaderDecoder::default();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    // Senders of kubectl's bytes per data stream; error streams carry nothing to us.
    let mut data_in: HashMap<u32, mpsc::Sender<Chunk>> = HashMap::new();
    loop {
        let frame = match spdy::read_frame(&mut r, &mut dec).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("port-forward connection: {e}");
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                let kind = spdy::header(&headers, "streamtype").unwrap_or("");
                // Clients of the first protocol version sent no request id: one per stream pair.
                let request_id = spdy::header(&headers, "requestid")
                    .map(str::to_string)
                    .unwrap_or_else(|| (stream_id.saturating_sub(1) / 4).to_string());
                let port = spdy::header(&headers, "port").unwrap_or("").to_string();
                if kind != "error" && kind != "data" {
                    let _ = out_tx
                        .send(Frame::RstStream {
                            stream_id,
                            status: spdy::RST_PROTOCOL_ERROR,
                        })
                        .await;
                    continue;
                }
                let _ = out_tx
                    .send(Frame::SynReply {
                        stream_id,
                        flags: 0,
                        headers: Vec::new(),
                    })
                    .await;
                let pair = pairs.entry(request_id.clone()).or_default();
                pair.port = port;
                if kind == "error" {
                    pair.error = Some(stream_id);
                } else {
                    let (tx, rx) = mpsc::channel(64);
                    data_in.insert(stream_id, tx);
                    pair.data = Some((stream_id, rx));
                }
                if pair.error.is_some() && pair.data.is_some() {
                    if let Some(Pair {
                        error: Some(error_id),
                        data: Some((data_id, rx)),
                        port,
                    }) = pairs.remove(&request_id)
                    {
                        tokio::spawn(forward(
                            out_tx.clone(),
                            opener.clone(),
                            pod.clone(),
                            port,
                            error_id,
                            data_id,
                            rx,
                        ));
                    }
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if let Some(tx) = data_in.get(&stream_id) {
                    let mut ok = true;
                    if !data.is_empty() {
                        ok = tx.send(Chunk::Data(data)).await.is_ok();
                    }
                    if flags & FLAG_FIN != 0 {
                        let _ = tx.send(Chunk::Eof).await;
                        ok = false;
                    }
                    if !ok {
                        data_in.remove(&stream_id);
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                // Dropping the sender ends that connection to the pod.
                data_in.remove(&stream_id);
            }
            Frame::Ping { id } => {
                let _ = out_tx.send(Frame::Ping { id }).await;
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    drop(data_in);
    drop(out_tx);
    let _ = writer.await;
}

async fn forward(
    out: mpsc::Sender<Frame>,
    opener: Opener,
    pod: String,
    port: String,
    error_id: u32,
    data_id: u32,
    mut data_rx: mpsc::Receiver<Chunk>,
) {
    let fin = |stream_id| Frame::Data {
        stream_id,
        flags: FLAG_FIN,
        data: Vec::new(),
    };
    let result = match parse_port(&port) {
        Ok(p) => opener(p).await.map_err(|e| e.message),
        Err(e) => Err(e),
    };
    let NodeStream {
        to_node,
        mut from_node,
    } = match result {
        Ok(s) => s,
        Err(msg) => {
            let text = format!("error forwarding port {port} to pod {pod}: {msg}");
            let _ = out
                .send(Frame::Data {
                    stream_id: error_id,
                    flags: 0,
                    data: text.into_bytes(),
                })
                .await;
            let _ = out.send(fin(error_id)).await;
            let _ = out.send(fin(data_id)).await;
            return;
        }
    };
    let up = async move {
        while let Some(c) = data_rx.recv().await {
            match c {
                Chunk::Data(b) => {
                    if to_node.send(b).await.is_err() {
                        return;
                    }
                }
                Chunk::Eof => {
                    // An empty message half-closes the pod connection; keep it open for replies.
                    let _ = to_node.send(Vec::new()).await;
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    let down = {
        let out = out.clone();
        async move {
            while let Some(b) = from_node.recv().await {
                for c in b.chunks(CHUNK) {
                    let f = Frame::Data {
                        stream_id: data_id,
                        flags: 0,
                        data: c.to_vec(),
                    };
                    if out.send(f).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    let _ = out.send(fin(data_id)).await;
    let _ = out.send(fin(error_id)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_validated_as_upstream() {
        assert_eq!(
            parse_ports("ports=8080&ports=80,443").expect("ok"),
            vec![8080, 80, 443]
        );
        assert!(parse_ports("").expect("none").is_empty());
        for bad in ["ports=0", "ports=65536", "ports=http"] {
            let e = parse_ports(bad).expect_err(bad);
            assert_eq!(e.code, 400, "{bad}");
        }
    }

    /// A client on one end of an in-memory pipe, the session on the other, and an opener that
    /// echoes in upper case (port 7) or refuses (any other port).
    #[tokio::test]
    async fn forwards_pairs_and_reports_errors_on_the_error_stream() {
        let opener: Opener = Arc::new(|port: u16| {
            Box::pin(async move {
                if port != 7 {
                    return Err(ApiError::new(
                        500,
                        "InternalError",
                        format!("connection refused on {port}"),
                    ));
                }
                let (to_node, mut rx) = mpsc::channel::<Vec<u8>>(4);
                let (tx, from_node) = mpsc::channel::<Vec<u8>>(4);
                tokio::spawn(async move {
                    while let Some(b) = rx.recv().await {
                        if b.is_empty() {
                            break; // half-close: the "pod" answers and closes
                        }
                        let _ = tx.send(b.to_ascii_uppercase()).await;
                    }
                });
                Ok(NodeStream { to_node, from_node })
            }) as BoxFuture<'static, ApiResult<NodeStream>>
        });
        let (client, server) = tokio::io::duplex(1 << 16);
        tokio::spawn(session(server, opener, "default/p".into()));
        let (cr, mut cw) = tokio::io::split(client);
        let mut cr = tokio::io::BufReader::new(cr);
        let mut enc = spdy::HeaderEncoder::new().expect("enc");
        let mut dec = spdy::HeaderDecoder::default();
        let mut send = |f: Frame| {
            let mut b = Vec::new();
            spdy::write_frame(&mut b, &f, &mut enc).expect("write");
            b
        };
        let syn = |id: u32, ty: &str, port: &str, req: &str| Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: vec![
                ("streamtype".into(), ty.into()),
                ("port".into(), port.into()),
                ("requestid".into(), req.into()),
            ],
        };
        let mut wire = Vec::new();
        wire.extend(send(syn(1, "error", "7", "0")));
        wire.extend(send(syn(3, "data", "7", "0")));
        wire.extend(send(Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: b"hello".to_vec(),
        }));
        wire.extend(send(syn(5, "error", "9", "1")));
        wire.extend(send(syn(7, "data", "9", "1")));
        wire.extend(send(Frame::Ping { id: 11 }));
        cw.write_all(&wire).await.expect("send");
        let mut replies = 0;
        let mut echoed = Vec::new();
        let mut errors = String::new();
        let mut fins = std::collections::BTreeSet::new();
        let mut pong = false;
        while fins.len() < 4 || !pong {
            let f = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                spdy::read_frame(&mut cr, &mut dec),
            )
            .await
            .expect("in time")
            .expect("frame")
            .expect("open");
            match f {
                Frame::SynReply { .. } => replies += 1,
                Frame::Ping { id } => pong = id == 11,
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    match stream_id {
                        3 => echoed.extend(data),
                        5 => errors.push_str(&String::from_utf8_lossy(&data)),
                        1 | 7 => assert!(data.is_empty()),
                        other => panic!("data on stream {other}"),
                    }
                    if flags & FLAG_FIN != 0 {
                        fins.insert(stream_id);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(replies, 4);
        assert_eq!(echoed, b"HELLO");
        assert_eq!(
            errors,
            "error forwarding port 9 to pod default/p: connection refused on 9"
        );
        // An unknown stream type is reset.
        cw.write_all(&send(syn(9, "bogus", "7", "2")))
            .await
            .expect("send");
        let f = spdy::read_frame(&mut cr, &mut dec)
            .await
            .expect("frame")
            .expect("open");
        assert_eq!(
            f,
            Frame::RstStream {
                stream_id: 9,
                status: spdy::RST_PROTOCOL_ERROR
            }
        );
    }
}
