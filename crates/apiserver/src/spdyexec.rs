//! `pods/exec` and `pods/attach` over SPDY/3.1, the transport client-go's
//! `remotecommand.NewSPDYExecutor` speaks (older kubectl, kubectl when WebSocket fails, the
//! upstream e2e framework). The client upgrades with `Upgrade: SPDY/3.1` and offers
//! `X-Stream-Protocol-Version`s; the API server answers the best one both know (the client's
//! order, as `httpstream.Handshake`), then waits for the client's streams, each named by its
//! `streamType` header: `error` always, `stdin`/`stdout`/`stderr` as the options ask, `resize`
//! with a terminal (v3 and later). Once all are there, the [`NodeStream`] is joined to them:
//! stdin data becomes channel 0 messages (the client's FIN the v5 close of stdin), resize JSON
//! channel 4, the node's channels 1 and 2 go to stdout and stderr, and the node's final Status
//! (channel 3) is written on the error stream: as JSON for v4, as its message text (nothing on
//! success) for v1 to v3.

use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ApiError, ApiResult};
use crate::spdy::{self, Frame, FLAG_FIN};
use crate::streaming::{NodeStream, StreamOptions};

/// `X-Stream-Protocol-Version`s served over SPDY, preferred first (the kubelet's list).
pub const PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
const PROTOCOL_HEADER: &str = "X-Stream-Protocol-Version";
const ACCEPTED_HEADER: &str = "X-Accepted-Stream-Protocol-Versions";
const SPDY_UPGRADE: &str = "SPDY/3.1";
/// How long the client has to create its streams (the kubelet's `StreamCreationTimeout`).
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest DATA frame written.
const CHUNK: usize = 32 * 1024;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// A negotiated remote command protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
    V3,
    V4,
}

impl Version {
    fn from_name(name: &str) -> Option<Version> {
        Some(match name {
            "v4.channel.k8s.io" => Version::V4,
            "v3.channel.k8s.io" => Version::V3,
            "v2.channel.k8s.io" => Version::V2,
            "channel.k8s.io" => Version::V1,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Version::V4 => PROTOCOLS[0],
            Version::V3 => PROTOCOLS[1],
            Version::V2 => PROTOCOLS[2],
            Version::V1 => PROTOCOLS[3],
        }
    }

    fn supports_resize(self) -> bool {
        self >= Version::V3
    }
}

/// Whether the request asks for `Upgrade: SPDY/3.1`.
pub fn is_spdy_upgrade(parts: &Parts) -> bool {
    crate::portforward::is_upgrade_to(parts, SPDY_UPGRADE)
}

/// The outcome of the protocol negotiation.
pub enum Handshake {
    /// Upgrade with this version once the node stream is open.
    Accepted(Version, hyper::upgrade::OnUpgrade),
    /// No version in common: the 403 to answer.
    Refused(Response),
}

/// The client's offers: every `X-Stream-Protocol-Version` header, comma-separated values split.
fn offers(parts: &Parts) -> Vec<String> {
    parts
        .headers
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim_matches(' ').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first of the client's offers the server knows (the client's preference wins).
fn negotiate(client: &[String]) -> Option<Version> {
    client.iter().find_map(|p| Version::from_name(p))
}

/// Negotiate as `httpstream.Handshake`: no offer is a 400, no common version a 403 that lists
/// the accepted versions in `X-Accepted-Stream-Protocol-Versions`.
pub fn handshake(parts: &mut Parts) -> ApiResult<Handshake> {
    let client = offers(parts);
    if client.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unable to upgrade: {PROTOCOL_HEADER} is required"
        )));
    }
    let Some(version) = negotiate(&client) else {
        let msg = format!(
            "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
            client.join(" "),
            PROTOCOLS.join(" ")
        );
        let mut resp = ApiError::new(403, "Forbidden", msg).into_response();
        for p in PROTOCOLS {
            resp.headers_mut()
                .append(ACCEPTED_HEADER, HeaderValue::from_static(p));
        }
        return Ok(Handshake::Refused(resp));
    };
    let on_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| ApiError::bad_request("Upgrade request required"))?;
    Ok(Handshake::Accepted(version, on_upgrade))
}

/// Answer 101 Switching Protocols and serve the session on the upgraded connection.
pub fn respond(
    version: Version,
    on_upgrade: hyper::upgrade::OnUpgrade,
    opts: StreamOptions,
    node: NodeStream,
) -> Response {
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                session(io, version, opts, node, STREAM_CREATION_TIMEOUT).await;
            }
            Err(e) => tracing::debug!("exec upgrade failed: {e}"),
        }
    });
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static(SPDY_UPGRADE));
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(version.name()));
    resp
}

/// The client's streams the node's output goes to.
#[derive(Debug, Default, Clone, Copy)]
struct Outputs {
    error: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
}

/// How many streams the client must create (`createHTTPStreamStreams`).
fn expected_streams(version: Version, opts: &StreamOptions) -> usize {
    1 + usize::from(opts.stdin)
        + usize::from(opts.stdout)
        + usize::from(opts.stderr)
        + usize::from(opts.tty && version.supports_resize())
}

/// Serve one upgraded connection until the command ends or the client goes away; a client that
/// has not created the expected streams within `creation_timeout` is disconnected.
pub async fn session<S>(
    io: S,
    version: Version,
    opts: StreamOptions,
    node: NodeStream,
    creation_timeout: Duration,
) where
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
                tracing::debug!("exec: {e}");
                return;
            }
            if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    let NodeStream { to_node, from_node } = node;
    let (ready_tx, ready_rx) = oneshot::channel::<Outputs>();
    let expected = expected_streams(version, &opts);
    let up = client_to_node(&mut r, out_tx.clone(), to_node, expected, ready_tx);
    let down = node_to_client(
        out_tx.clone(),
        from_node,
        ready_rx,
        version,
        creation_timeout,
    );
    drop(out_tx);
    // The node's end (command exited, Status written) or the client's finishes the session;
    // dropping `to_node` with the client's end stops the command's stream on the node.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    let _ = writer.await;
}

/// Read the client's frames: accept its streams, pass stdin and resizes to the node.
async fn client_to_node<R: AsyncRead + Unpin>(
    r: &mut R,
    out: mpsc::Sender<Frame>,
    to_node: mpsc::Sender<Vec<u8>>,
    expected: usize,
    ready: oneshot::Sender<Outputs>,
) {
    let mut dec = spdy::HeaderDecoder::default();
    let mut ready = Some(ready);
    let mut outputs = Outputs::default();
    let mut received = 0usize;
    let mut stdin: Option<u32> = None;
    let mut resize: Option<u32> = None;
    let mut resize_buf: Vec<u8> = Vec::new();
    loop {
        let frame = match spdy::read_frame(r, &mut dec).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!("exec connection: {e}");
                return;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                // Every stream is accepted (replied to); only known types count.
                let _ = out
                    .send(Frame::SynReply {
                        stream_id,
                        flags: 0,
                        headers: Vec::new(),
                    })
                    .await;
                let slot = match spdy::header(&headers, "streamtype").unwrap_or("") {
                    "error" => &mut outputs.error,
                    "stdin" => &mut stdin,
                    "stdout" => &mut outputs.stdout,
                    "stderr" => &mut outputs.stderr,
                    "resize" => &mut resize,
                    other => {
                        tracing::debug!("exec: unexpected stream type {other:?}");
                        continue;
                    }
                };
                *slot = Some(stream_id);
                received += 1;
                if received >= expected {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(outputs);
                    }
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if Some(stream_id) == stdin {
                    if !data.is_empty() {
                        let mut msg = Vec::with_capacity(data.len() + 1);
                        msg.push(STDIN);
                        msg.extend_from_slice(&data);
                        if to_node.send(msg).await.is_err() {
                            return;
                        }
                    }
                    if flags & FLAG_FIN != 0 {
                        stdin = None;
                        let _ = to_node.send(vec![CLOSE, STDIN]).await;
                    }
                } else if Some(stream_id) == resize {
                    resize_buf.extend_from_slice(&data);
                    match take_sizes(&mut resize_buf) {
                        Ok(sizes) => {
                            for s in sizes {
                                let mut msg = vec![RESIZE];
                                msg.extend_from_slice(&s);
                                if to_node.send(msg).await.is_err() {
                                    return;
                                }
                            }
                        }
                        // As the kubelet: a stream that is not JSON ends resizing.
                        Err(()) => {
                            resize = None;
                            resize_buf.clear();
                        }
                    }
                }
            }
            // A reset stdin ends the process's input as a FIN does.
            Frame::RstStream { stream_id, .. } if Some(stream_id) == stdin => {
                stdin = None;
                let _ = to_node.send(vec![CLOSE, STDIN]).await;
            }
            Frame::Ping { id } => {
                let _ = out.send(Frame::Ping { id }).await;
            }
            Frame::GoAway { .. } => return,
            _ => {}
        }
    }
}

/// The complete JSON values at the front of `buf` (each re-serialized compactly), removed from
/// it; an incomplete value stays for the next frame. `Err` if the bytes are not JSON.
fn take_sizes(buf: &mut Vec<u8>) -> Result<Vec<Vec<u8>>, ()> {
    let mut out = Vec::new();
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<serde_json::Value>();
    let mut used = 0;
    loop {
        match it.next() {
            Some(Ok(v)) => {
                used = it.byte_offset();
                out.push(serde_json::to_vec(&v).map_err(|_| ())?);
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(_)) => return Err(()),
            None => {
                used = buf.len();
                break;
            }
        }
    }
    let used = used
        + buf[used..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    buf.drain(..used);
    Ok(out)
}

/// Wait for the client's streams, then write the node's output on them and the final Status
/// on the error stream.
async fn node_to_client(
    out: mpsc::Sender<Frame>,
    mut from_node: mpsc::Receiver<Vec<u8>>,
    ready: oneshot::Receiver<Outputs>,
    version: Version,
    creation_timeout: Duration,
) {
    let outputs = match tokio::time::timeout(creation_timeout, ready).await {
        Ok(Ok(o)) => o,
        Ok(Err(_)) => return,
        Err(_) => {
            tracing::debug!("exec: timed out waiting for client to create streams");
            return;
        }
    };
    let data = |stream_id: u32, flags: u8, data: Vec<u8>| Frame::Data {
        stream_id,
        flags,
        data,
    };
    let mut status: Option<Vec<u8>> = None;
    while let Some(msg) = from_node.recv().await {
        let Some((&ch, rest)) = msg.split_first() else {
            continue;
        };
        let target = match ch {
            STDOUT => outputs.stdout,
            STDERR => outputs.stderr,
            ERROR => {
                status.get_or_insert_with(Vec::new).extend_from_slice(rest);
                continue;
            }
            _ => None,
        };
        if let Some(id) = target {
            for c in rest.chunks(CHUNK) {
                if out.send(data(id, 0, c.to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
    for id in [outputs.stdout, outputs.stderr].into_iter().flatten() {
        let _ = out.send(data(id, FLAG_FIN, Vec::new())).await;
    }
    if let Some(id) = outputs.error {
        if let Some(text) = status.and_then(|s| error_stream_bytes(version, &s)) {
            let _ = out.send(data(id, 0, text)).await;
        }
        let _ = out.send(data(id, FLAG_FIN, Vec::new())).await;
    }
}

/// What the error stream carries for the node's final Status: the Status JSON for v4; for
/// earlier versions the message of a failure, nothing on success.
fn error_stream_bytes(version: Version, status: &[u8]) -> Option<Vec<u8>> {
    if version == Version::V4 {
        return Some(status.to_vec());
    }
    let v: serde_json::Value = match serde_json::from_slice(status) {
        Ok(v) => v,
        // Not a Status: pass the node's text on.
        Err(_) => return Some(status.to_vec()),
    };
    if v["status"] == "Success" {
        return None;
    }
    let msg = v["message"].as_str().unwrap_or("error executing command");
    Some(msg.as_bytes().to_vec())
}

#[cfg(test)]
mod tests;
