//! `kubectl exec` (and `kubectl attach`, see [`attach`]) on the agent: a WebSocket from the master (signed like every request to the
//! agent) carrying `v5.channel.k8s.io` messages: 0 stdin, 1 stdout, 2 stderr, 3 the final
//! Status, 4 terminal size, 255 close (`[255, 0]` ends stdin). The process runs through
//! [`Runtime::exec_command`](crate::runtime::Runtime::exec_command).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::server::{authorized, KubeletState};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// Options the master passes on (already validated there).
#[derive(Debug, Default)]
struct ExecOptions {
    container: String,
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn parse(raw: &str) -> ExecOptions {
    let mut o = ExecOptions::default();
    for (k, v) in daas_protocol::query::query_pairs(raw) {
        let on = v == "true" || v == "1";
        match k.as_str() {
            "container" => o.container = v,
            "command" => o.command.push(v),
            "stdin" => o.stdin = on,
            "stdout" => o.stdout = on,
            "stderr" => o.stderr = on,
            "tty" => o.tty = on,
            _ => {}
        }
    }
    o
}

fn reject(code: StatusCode, msg: String) -> Response {
    (code, msg).into_response()
}

/// The uid of pod `ns/pod` on this node.
fn pod_uid(st: &KubeletState, ns: &str, pod: &str) -> Option<String> {
    st.pods
        .lock()
        .ok()
        .and_then(|p| p.get(&(ns.to_string(), pod.to_string())).cloned())
}

/// The 404 the master relays for a pod this node does not run.
fn not_on_node(ns: &str, pod: &str) -> Response {
    reject(
        StatusCode::NOT_FOUND,
        format!("pod {ns}/{pod} is not running on this node"),
    )
}

/// A runtime error opening a stream as the answer: no such container 404, not running 400.
fn runtime_refusal(e: crate::runtime::RuntimeError) -> Response {
    use crate::runtime::RuntimeError as E;
    let code = match e {
        E::ContainerNotFound { .. } => StatusCode::NOT_FOUND,
        E::ContainerNotRunning { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reject(code, e.to_string())
}

/// `GET /exec/{ns}/{pod}?container=..&command=..&stdin=..&stdout=..&stderr=..&tty=..` (WebSocket).
pub async fn exec(
    State(st): State<KubeletState>,
    UrlPath((ns, pod)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The signature is checked before anything else, upgrade or not.
    if let Err(r) = authorized(&st, &uri, &headers) {
        return r;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let opts = parse(uri.query().unwrap_or(""));
    if opts.command.is_empty() || opts.container.is_empty() {
        return reject(
            StatusCode::BAD_REQUEST,
            "a container and a command are required".into(),
        );
    }
    let Some(uid) = pod_uid(&st, &ns, &pod) else {
        return not_on_node(&ns, &pod);
    };
    let cmd = match st
        .runtime
        .exec_command(&uid, &opts.container, &opts.command, opts.tty)
        .await
    {
        Ok(c) => c,
        Err(e) => return runtime_refusal(e),
    };
    ws.on_upgrade(move |socket| session(socket, cmd, opts))
}

/// `GET /attach/{ns}/{pod}?container=..&stdin=..&stdout=..&stderr=..&tty=..` (WebSocket): the
/// running container's own stdio, through the runtime's streaming server (CRI `Attach`, a
/// `v4.channel.k8s.io` WebSocket on the node's loopback). Messages pass through with their
/// channel byte; v4 has no half-close, so the end of the client's stdin becomes the terminal's
/// EOF character on a tty and is otherwise dropped (the session ends when the container's
/// output does, or when the client goes away).
pub async fn attach(
    State(st): State<KubeletState>,
    UrlPath((ns, pod)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(r) = authorized(&st, &uri, &headers) {
        return r;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let opts = parse(uri.query().unwrap_or(""));
    if opts.container.is_empty() || !(opts.stdin || opts.stdout || opts.stderr) {
        return reject(
            StatusCode::BAD_REQUEST,
            "a container and at least one of stdin, stdout, stderr are required".into(),
        );
    }
    let Some(uid) = pod_uid(&st, &ns, &pod) else {
        return not_on_node(&ns, &pod);
    };
    let streams = crate::runtime::AttachStreams {
        stdin: opts.stdin,
        stdout: opts.stdout,
        stderr: opts.stderr,
        tty: opts.tty,
    };
    let url = match st.runtime.attach_url(&uid, &opts.container, streams).await {
        Ok(u) => u,
        Err(e) => return runtime_refusal(e),
    };
    let runtime_ws = match connect_stream_server(&url).await {
        Ok(w) => w,
        Err(e) => {
            return reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("attaching to container {}: {e}", opts.container),
            )
        }
    };
    let tty = opts.tty;
    ws.on_upgrade(move |socket| relay_attach(socket, runtime_ws, tty))
}

type RuntimeSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Open the runtime's streaming-server URL (`http://127.0.0.1:PORT/attach/TOKEN`) as a
/// `v4.channel.k8s.io` WebSocket. Only loopback plain-HTTP URLs are followed.
async fn connect_stream_server(url: &str) -> Result<RuntimeSocket, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unexpected streaming URL {url:?}"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: std::net::SocketAddr = authority
        .parse()
        .map_err(|_| format!("unexpected streaming server address {authority:?}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("streaming server {addr} is not on the loopback"));
    }
    let mut req = format!("ws://{authority}{path}")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        http::HeaderValue::from_static("v4.channel.k8s.io"),
    );
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn relay_attach(socket: WebSocket, runtime: RuntimeSocket, tty: bool) {
    use tokio_tungstenite::tungstenite::Message as RtMessage;
    let (mut master_tx, mut master_rx) = socket.split();
    let (mut rt_tx, mut rt_rx) = runtime.split();
    let up = async move {
        while let Some(Ok(msg)) = master_rx.next().await {
            let data = match msg {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            let out = match data.split_first() {
                Some((&CLOSE, [STDIN, ..])) if tty => vec![STDIN, 4],
                Some((&CLOSE, _)) => continue,
                Some((&STDIN | &RESIZE, _)) => data,
                _ => continue,
            };
            if rt_tx.send(RtMessage::Binary(out.into())).await.is_err() {
                break;
            }
        }
        let _ = rt_tx.send(RtMessage::Close(None)).await;
    };
    let down = async move {
        while let Some(Ok(msg)) = rt_rx.next().await {
            let data = match msg {
                RtMessage::Binary(b) => b.to_vec(),
                RtMessage::Text(t) => t.as_bytes().to_vec(),
                RtMessage::Close(_) => break,
                _ => continue,
            };
            if master_tx.send(Message::Binary(data.into())).await.is_err() {
                return;
            }
        }
        let _ = master_tx
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: axum::extract::ws::close_code::NORMAL,
                reason: Default::default(),
            })))
            .await;
    };
    // The container's output ending (its process exited; the runtime sent the final Status)
    // ends the session; so does the master going away.
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

/// `GET /portForward/{ns}/{pod}?port=N` (WebSocket): one TCP connection to the pod's port.
/// Binary messages carry the bytes both ways; an empty message from the master half-closes
/// the connection (kubectl's end of input); the socket closes when the pod's side does. The
/// connection is made before the upgrade, so a closed port is refused with its error.
pub async fn port_forward(
    State(st): State<KubeletState>,
    UrlPath((ns, pod)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Err(r) = authorized(&st, &uri, &headers) {
        return r;
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    let port = daas_protocol::query::query_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "port")
        .and_then(|(_, v)| v.parse::<u16>().ok())
        .filter(|p| *p > 0);
    let Some(port) = port else {
        return reject(
            StatusCode::BAD_REQUEST,
            "a port between 1 and 65535 is required".into(),
        );
    };
    let Some(uid) = pod_uid(&st, &ns, &pod) else {
        return not_on_node(&ns, &pod);
    };
    let ip = match st.runtime.pod_status(&uid).await {
        Ok(s) => s.ip.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()),
        Err(e) => return reject(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Some(ip) = ip else {
        return reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("pod {ns}/{pod} has no IP address"),
        );
    };
    let tcp = match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((ip, port)),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to connect to {ip}:{port} of pod {ns}/{pod}: {e}"),
            )
        }
        Err(_) => {
            return reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("timed out connecting to {ip}:{port} of pod {ns}/{pod}"),
            )
        }
    };
    ws.on_upgrade(move |socket| relay_tcp(socket, tcp))
}

async fn relay_tcp(socket: WebSocket, tcp: tokio::net::TcpStream) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (mut rd, mut wr) = tcp.into_split();
    let up = async move {
        while let Some(Ok(msg)) = ws_rx.next().await {
            match msg {
                Message::Binary(b) if b.is_empty() => {
                    let _ = wr.shutdown().await;
                }
                Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                Message::Binary(_) => {}
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx
                        .send(Message::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = ws_tx
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: axum::extract::ws::close_code::NORMAL,
                reason: Default::default(),
            })))
            .await;
    };
    // The pod closing its side ends the forwarded connection; so does the master going away.
    tokio::select! {
        _ = down => {}
        _ = up => {}
    }
}

/// The final Status (channel 3), as the kubelet writes it.
fn exit_status(command: &[String], code: Option<i32>, spawn_error: Option<String>) -> Vec<u8> {
    let status = match (code, spawn_error) {
        (_, Some(e)) => json!({"metadata": {}, "status": "Failure", "reason": "InternalError",
            "message": format!("error executing command {command:?}: {e}")}),
        (Some(0), None) => json!({"metadata": {}, "status": "Success"}),
        (code, None) => {
            let n = code.unwrap_or(137);
            json!({"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                "message": format!("command terminated with non-zero exit code: error executing command {command:?}, exit code {n}"),
                "details": {"causes": [{"reason": "ExitCode", "message": n.to_string()}]}})
        }
    };
    let mut out = vec![ERROR];
    out.extend_from_slice(status.to_string().as_bytes());
    out
}

/// A pseudo-terminal: (controller, terminal) ends.
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (mut m, mut s) = (0, 0);
    // SAFETY: openpty writes two descriptors into the out-parameters; the rest are null (defaults).
    let r = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) })
}

fn set_size(fd: i32, width: u16, height: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer; fd is a pty the caller owns.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Forward a reader to the socket as `channel` messages until it ends.
fn pump(
    mut r: impl AsyncRead + Unpin + Send + 'static,
    channel: u8,
    tx: mpsc::Sender<Vec<u8>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf[0] = channel;
                    if tx.send(buf[..=n].to_vec()).await.is_err() {
                        return;
                    }
                }
            }
        }
    })
}

async fn session(socket: WebSocket, mut cmd: tokio::process::Command, opts: ExecOptions) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if ws_tx.send(Message::Binary(m.into())).await.is_err() {
                return;
            }
        }
        let _ = ws_tx
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: axum::extract::ws::close_code::NORMAL,
                reason: Default::default(),
            })))
            .await;
    });
    let mut pty_fd = None;
    let mut stdin: Option<Box<dyn tokio::io::AsyncWrite + Unpin + Send>> = None;
    let mut pumps = Vec::new();
    let spawned = if opts.tty {
        match open_pty() {
            Ok((controller, terminal)) => {
                let spawn = (|| {
                    let t = |f: &OwnedFd| f.try_clone().map(Stdio::from);
                    cmd.stdin(t(&terminal)?)
                        .stdout(t(&terminal)?)
                        .stderr(t(&terminal)?);
                    // SAFETY: only async-signal-safe calls between fork and exec.
                    unsafe {
                        cmd.pre_exec(|| {
                            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    cmd.spawn()
                })();
                drop(terminal);
                drop(cmd);
                spawn.and_then(|child| {
                    pty_fd = Some(controller.as_raw_fd());
                    let file = std::fs::File::from(controller);
                    let w = tokio::fs::File::from_std(file.try_clone()?);
                    let r = tokio::fs::File::from_std(file);
                    if opts.stdout {
                        pumps.push(pump(r, STDOUT, out_tx.clone()));
                    }
                    if opts.stdin {
                        stdin = Some(Box::new(w));
                    }
                    Ok(child)
                })
            }
            Err(e) => Err(e),
        }
    } else {
        cmd.stdin(if opts.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if opts.stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(if opts.stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.spawn().map(|mut child| {
            if let Some(o) = child.stdout.take() {
                pumps.push(pump(o, STDOUT, out_tx.clone()));
            }
            if let Some(e) = child.stderr.take() {
                pumps.push(pump(e, STDERR, out_tx.clone()));
            }
            if let Some(i) = child.stdin.take() {
                stdin = Some(Box::new(i));
            }
            child
        })
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let _ = out_tx
                .send(exit_status(&opts.command, None, Some(e.to_string())))
                .await;
            drop(out_tx);
            let _ = writer.await;
            return;
        }
    };
    let code = loop {
        tokio::select! {
            st = child.wait() => break st.ok().and_then(|s| s.code()),
            msg = ws_rx.next() => {
                let data = match msg {
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(_)) => continue,
                    // The client went away: end the process.
                    Some(Err(_)) | None => {
                        let _ = child.start_kill();
                        break child.wait().await.ok().and_then(|s| s.code());
                    }
                };
                match data.split_first() {
                    Some((&STDIN, rest)) => {
                        if let Some(w) = stdin.as_mut() {
                            if w.write_all(rest).await.is_err() || w.flush().await.is_err() {
                                stdin = None;
                            }
                        }
                    }
                    Some((&RESIZE, rest)) => {
                        let size: HashMap<String, u16> =
                            serde_json::from_slice(rest).unwrap_or_default();
                        if let (Some(fd), Some(w), Some(h)) =
                            (pty_fd, size.get("Width"), size.get("Height"))
                        {
                            set_size(fd, *w, *h);
                        }
                    }
                    Some((&CLOSE, [STDIN, ..])) => {
                        if opts.tty {
                            // End of input on a terminal is its EOF character.
                            if let Some(w) = stdin.as_mut() {
                                let _ = w.write_all(&[4]).await;
                                let _ = w.flush().await;
                            }
                        } else {
                            stdin = None;
                        }
                    }
                    _ => {}
                }
            }
        }
    };
    drop(stdin);
    for p in pumps {
        // A terminal's controller end may stay readable while a background process holds it.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), p).await;
    }
    let _ = out_tx.send(exit_status(&opts.command, code, None)).await;
    drop(out_tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_in_status_causes() {
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let s = exit_status(&cmd, Some(3), None);
        assert_eq!(s[0], ERROR);
        let v: serde_json::Value = serde_json::from_slice(&s[1..]).expect("json");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        let ok: serde_json::Value =
            serde_json::from_slice(&exit_status(&cmd, Some(0), None)[1..]).expect("json");
        assert_eq!(ok["status"], "Success");
    }

    #[tokio::test]
    async fn only_loopback_stream_server_urls_are_followed() {
        for url in [
            "https://127.0.0.1:1/attach/x",
            "http://10.0.0.1:1/attach/x",
            "http://example.com:80/attach/x",
            "file:///etc/passwd",
        ] {
            assert!(connect_stream_server(url).await.is_err(), "{url}");
        }
        // A loopback server that is not there: a connection error, not a panic.
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = free.local_addr().expect("addr").port();
        drop(free);
        let e = connect_stream_server(&format!("http://127.0.0.1:{port}/attach/x"))
            .await
            .expect_err("nothing listens");
        assert!(!e.is_empty());
    }

    #[test]
    fn options_from_query() {
        let o = parse("container=c&stdin=true&stdout=true&stderr=false&tty=true&command=sh&command=-c&command=a%20b");
        assert_eq!(o.container, "c");
        assert_eq!(o.command, vec!["sh", "-c", "a b"]);
        assert!(o.stdin && o.stdout && !o.stderr && o.tty);
    }
}
