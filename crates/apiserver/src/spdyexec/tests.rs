use super::*;

use tokio::io::BufReader;

fn parts_with(offers: &[&str]) -> Parts {
    let mut b = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/pods/p/exec?command=ls&stdout=true")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1");
    for o in offers {
        b = b.header(PROTOCOL_HEADER, *o);
    }
    b.body(()).expect("request").into_parts().0
}

#[test]
fn negotiation_follows_the_clients_order() {
    let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // client-go's SPDY executor offers v4 first; v5 exists only over WebSocket.
    let p = parts_with(&[
        "v5.channel.k8s.io",
        "v4.channel.k8s.io, v3.channel.k8s.io",
        "v2.channel.k8s.io,channel.k8s.io",
    ]);
    assert_eq!(offers(&p).len(), 5);
    assert_eq!(negotiate(&offers(&p)), Some(Version::V4));
    assert_eq!(
        negotiate(&o(&["v2.channel.k8s.io", "v4.channel.k8s.io"])),
        Some(Version::V2)
    );
    assert_eq!(negotiate(&o(&["channel.k8s.io"])), Some(Version::V1));
    assert_eq!(negotiate(&o(&["v9.channel.k8s.io"])), None);
}

#[test]
fn handshake_refusals_as_upstream() {
    // No offer at all: 400.
    let e = match handshake(&mut parts_with(&[])) {
        Err(e) => e,
        Ok(_) => panic!("no offer must be refused"),
    };
    assert_eq!(e.code, 400);
    assert_eq!(
        e.message,
        "unable to upgrade: X-Stream-Protocol-Version is required"
    );
    // Only unknown versions: 403 listing what the server accepts.
    let resp = match handshake(&mut parts_with(&["v5.channel.k8s.io", "bogus"])) {
        Ok(Handshake::Refused(r)) => r,
        _ => panic!("unknown versions must be refused"),
    };
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let accepted: Vec<_> = resp
        .headers()
        .get_all(ACCEPTED_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(accepted, PROTOCOLS);
    // A known version but no upgradable connection (not served by hyper): 400.
    let e = match handshake(&mut parts_with(&["v4.channel.k8s.io"])) {
        Err(e) => e,
        Ok(_) => panic!("nothing to upgrade"),
    };
    assert_eq!(e.code, 400);
}

#[test]
fn resize_json_is_split_into_values() {
    let mut b = br#"{"Width":80,"Height":24}
{"Width":1"#
        .to_vec();
    let got = take_sizes(&mut b).expect("json");
    assert_eq!(got, vec![br#"{"Height":24,"Width":80}"#.to_vec()]);
    assert_eq!(b, br#"{"Width":1"#.to_vec());
    b.extend_from_slice(b"00,\"Height\":50}\n");
    let got = take_sizes(&mut b).expect("json");
    assert_eq!(got, vec![br#"{"Height":50,"Width":100}"#.to_vec()]);
    assert!(b.is_empty());
    assert!(take_sizes(&mut b"not json".to_vec()).is_err());
}

#[test]
fn error_stream_per_version() {
    let fail = br#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","message":"command terminated with non-zero exit code: exit code 3"}"#;
    let ok = br#"{"metadata":{},"status":"Success"}"#;
    assert_eq!(
        error_stream_bytes(Version::V4, fail).as_deref(),
        Some(&fail[..])
    );
    assert_eq!(
        error_stream_bytes(Version::V4, ok).as_deref(),
        Some(&ok[..])
    );
    assert_eq!(
        error_stream_bytes(Version::V3, fail).as_deref(),
        Some(&b"command terminated with non-zero exit code: exit code 3"[..])
    );
    assert_eq!(error_stream_bytes(Version::V2, ok), None);
}

/// A SPDY client on an in-memory pipe.
struct Client {
    r: BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    w: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    enc: spdy::HeaderEncoder,
    dec: spdy::HeaderDecoder,
}

impl Client {
    async fn send(&mut self, f: Frame) {
        let mut b = Vec::new();
        spdy::write_frame(&mut b, &f, &mut self.enc).expect("write");
        self.w.write_all(&b).await.expect("send");
    }

    async fn open(&mut self, id: u32, ty: &str) {
        self.send(Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: vec![("streamtype".into(), ty.into())],
        })
        .await;
    }

    async fn next(&mut self) -> Option<Frame> {
        tokio::time::timeout(
            Duration::from_secs(5),
            spdy::read_frame(&mut self.r, &mut self.dec),
        )
        .await
        .expect("timely frame")
        .expect("frame")
    }
}

type Started = (Client, mpsc::Receiver<Vec<u8>>, mpsc::Sender<Vec<u8>>);

fn start(version: Version, opts: StreamOptions) -> Started {
    start_with(version, opts, STREAM_CREATION_TIMEOUT)
}

fn start_with(version: Version, opts: StreamOptions, creation_timeout: Duration) -> Started {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (to_node, node_in) = mpsc::channel(16);
    let (node_out, from_node) = mpsc::channel(16);
    tokio::spawn(session(
        server,
        version,
        opts,
        NodeStream { to_node, from_node },
        creation_timeout,
    ));
    let (r, w) = tokio::io::split(client);
    let c = Client {
        r: BufReader::new(r),
        w,
        enc: spdy::HeaderEncoder::new().expect("enc"),
        dec: spdy::HeaderDecoder::default(),
    };
    (c, node_in, node_out)
}

#[tokio::test]
async fn tty_session_relays_resize_stdin_and_status() {
    let opts = StreamOptions {
        stdin: true,
        stdout: true,
        tty: true,
        command: vec!["sh".into()],
        ..Default::default()
    };
    assert_eq!(expected_streams(Version::V4, &opts), 4);
    assert_eq!(expected_streams(Version::V2, &opts), 3);
    let (mut c, mut node_in, node_out) = start(Version::V4, opts);
    for (id, ty) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")] {
        c.open(id, ty).await;
        assert!(
            matches!(c.next().await, Some(Frame::SynReply { stream_id, .. }) if stream_id == id)
        );
    }
    c.send(Frame::Data {
        stream_id: 7,
        flags: 0,
        data: br#"{"Width":80,"Hei"#.to_vec(),
    })
    .await;
    c.send(Frame::Data {
        stream_id: 7,
        flags: 0,
        data: b"ght\":24}\n".to_vec(),
    })
    .await;
    assert_eq!(
        node_in.recv().await.expect("resize"),
        [&[RESIZE][..], br#"{"Height":24,"Width":80}"#].concat()
    );
    c.send(Frame::Data {
        stream_id: 3,
        flags: FLAG_FIN,
        data: b"ls\n".to_vec(),
    })
    .await;
    assert_eq!(node_in.recv().await.expect("stdin"), b"\0ls\n".to_vec());
    assert_eq!(node_in.recv().await.expect("close"), vec![CLOSE, STDIN]);
    node_out.send(b"\x01a b\n".to_vec()).await.expect("out");
    let status = br#"{"metadata":{},"status":"Success"}"#;
    node_out
        .send([&[ERROR][..], status].concat())
        .await
        .expect("status");
    drop(node_out);
    let mut got = Vec::new();
    while let Some(f) = c.next().await {
        got.push(f);
    }
    let data = |stream_id: u32, flags: u8, d: &[u8]| Frame::Data {
        stream_id,
        flags,
        data: d.to_vec(),
    };
    assert_eq!(
        got,
        vec![
            data(5, 0, b"a b\n"),
            data(5, FLAG_FIN, b""),
            data(1, 0, status),
            data(1, FLAG_FIN, b""),
        ]
    );
}

#[tokio::test]
async fn output_waits_for_all_expected_streams_and_v2_writes_the_message() {
    let opts = StreamOptions {
        stdout: true,
        stderr: true,
        command: vec!["false".into()],
        ..Default::default()
    };
    let (mut c, _node_in, node_out) = start(Version::V2, opts);
    node_out.send(b"\x02bad\n".to_vec()).await.expect("err");
    let fail = br#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","message":"command terminated with non-zero exit code: exit 1","details":{"causes":[{"reason":"ExitCode","message":"1"}]}}"#;
    node_out
        .send([&[ERROR][..], fail].concat())
        .await
        .expect("status");
    drop(node_out);
    // An unknown stream type is accepted but does not count.
    c.open(1, "bogus").await;
    c.open(3, "error").await;
    c.open(5, "stdout").await;
    for id in [1, 3, 5] {
        assert!(
            matches!(c.next().await, Some(Frame::SynReply { stream_id, .. }) if stream_id == id)
        );
    }
    // Nothing is written before the stderr stream exists.
    let early = tokio::time::timeout(
        Duration::from_millis(200),
        spdy::read_frame(&mut c.r, &mut c.dec),
    )
    .await;
    assert!(early.is_err(), "frame before all streams: {early:?}");
    c.open(7, "stderr").await;
    let mut got = Vec::new();
    while let Some(f) = c.next().await {
        got.push(f);
    }
    let data = |stream_id: u32, flags: u8, d: &[u8]| Frame::Data {
        stream_id,
        flags,
        data: d.to_vec(),
    };
    assert_eq!(
        got,
        vec![
            Frame::SynReply {
                stream_id: 7,
                flags: 0,
                headers: Vec::new()
            },
            data(7, 0, b"bad\n"),
            data(5, FLAG_FIN, b""),
            data(7, FLAG_FIN, b""),
            data(3, 0, b"command terminated with non-zero exit code: exit 1"),
            data(3, FLAG_FIN, b""),
        ]
    );
}

#[tokio::test]
async fn client_going_away_ends_the_node_stream() {
    let opts = StreamOptions {
        stdin: true,
        stdout: true,
        command: vec!["cat".into()],
        ..Default::default()
    };
    let (mut c, mut node_in, _node_out) = start(Version::V4, opts);
    c.open(1, "error").await;
    c.send(Frame::Ping { id: 9 }).await;
    assert!(matches!(c.next().await, Some(Frame::SynReply { .. })));
    assert_eq!(c.next().await, Some(Frame::Ping { id: 9 }));
    drop(c);
    // The session drops its sender to the node.
    let end = tokio::time::timeout(Duration::from_secs(5), node_in.recv())
        .await
        .expect("node stream ends");
    assert!(end.is_none());
}

#[tokio::test]
async fn a_client_that_never_creates_its_streams_is_disconnected() {
    let opts = StreamOptions {
        stdin: true,
        stdout: true,
        command: vec!["cat".into()],
        ..Default::default()
    };
    let (mut c, mut node_in, node_out) = start_with(Version::V4, opts, Duration::from_millis(200));
    node_out
        .send(b"\x01never seen".to_vec())
        .await
        .expect("out");
    // Only the error stream: stdin and stdout never come.
    c.open(1, "error").await;
    assert!(matches!(c.next().await, Some(Frame::SynReply { .. })));
    // The connection ends without output, and the node's stream is let go.
    assert_eq!(c.next().await, None);
    let end = tokio::time::timeout(Duration::from_secs(5), node_in.recv())
        .await
        .expect("node stream ends");
    assert!(end.is_none());
}
