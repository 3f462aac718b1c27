use super::*;

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

async fn read_all(bytes: &[u8]) -> Vec<Frame> {
    let mut dec = HeaderDecoder::default();
    let mut r = bytes;
    let mut out = Vec::new();
    while let Some(f) = read_frame(&mut r, &mut dec).await.expect("frame") {
        out.push(f);
    }
    out
}

#[test]
fn dictionary_is_the_spdy3_one() {
    assert_eq!(DICTIONARY.len(), 1423);
    assert!(DICTIONARY.starts_with(b"\x00\x00\x00\x07options"));
    assert!(DICTIONARY.ends_with(b"enq=0."));
}

#[tokio::test]
async fn every_frame_round_trips_with_one_compression_context() {
    let frames = vec![
        Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: h(&[
                ("streamtype", "error"),
                ("port", "8080"),
                ("requestid", "0"),
            ]),
        },
        Frame::SynStream {
            stream_id: 3,
            associated_to: 0,
            priority: 7,
            flags: FLAG_UNIDIRECTIONAL,
            headers: h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
        },
        Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: Vec::new(),
        },
        Frame::Headers {
            stream_id: 3,
            flags: FLAG_FIN,
            headers: h(&[("x", "a\0b")]),
        },
        Frame::RstStream {
            stream_id: 3,
            status: RST_CANCEL,
        },
        Frame::Settings {
            flags: 1,
            entries: vec![(1, 7, 65536), (0, 4, 100)],
        },
        Frame::Ping { id: 0xdead_beef },
        Frame::GoAway {
            last_good_stream_id: 3,
            status: 0,
        },
        Frame::WindowUpdate {
            stream_id: 1,
            delta: 1 << 20,
        },
        Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        },
        Frame::Data {
            stream_id: 1,
            flags: 0,
            data: vec![0xAB; 70_000],
        },
    ];
    let mut enc = HeaderEncoder::new().expect("encoder");
    let mut wire = Vec::new();
    for f in &frames {
        write_frame(&mut wire, f, &mut enc).expect("write");
    }
    assert_eq!(read_all(&wire).await, frames);
}

#[tokio::test]
async fn large_header_blocks_survive_partial_output_buffers() {
    let big: String = (0..20_000)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let headers = h(&[("big", &big), ("port", "1")]);
    let mut enc = HeaderEncoder::new().expect("encoder");
    let mut wire = Vec::new();
    for id in [1, 3, 5] {
        let f = Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: headers.clone(),
        };
        write_frame(&mut wire, &f, &mut enc).expect("write");
    }
    let got = read_all(&wire).await;
    assert_eq!(got.len(), 3);
    for f in got {
        let Frame::SynStream { headers: got, .. } = f else {
            panic!("not a SYN_STREAM")
        };
        assert_eq!(got, headers);
    }
}

/// The frames of one forwarded connection as kubectl sends them (error stream, data stream,
/// FIN of the error stream, a data frame, a PING), with header blocks compressed by C zlib
/// (Python's `zlib.compressobj(9, zdict=DICTIONARY)` with sync flushes), not by this module.
const CLIENT_SEQUENCE: &str = "800300010000003d0000000100000000000078f9e3c6a7c202253a48f95b044eea16061606409ab308125f99a074cc68004e892545a989b9d0c2863515141500000000ffff800300010000001600000003000000000000225333a8a44a04000000ffff0000000101000000000000030000000568656c6c6f800300060000000400000001";

#[tokio::test]
async fn decodes_a_foreign_zlib_client_sequence() {
    let wire: Vec<u8> = (0..CLIENT_SEQUENCE.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&CLIENT_SEQUENCE[i..i + 2], 16).expect("hex"))
        .collect();
    let frames = read_all(&wire).await;
    let syn = |id: u32, ty: &str| Frame::SynStream {
        stream_id: id,
        associated_to: 0,
        priority: 0,
        flags: 0,
        headers: h(&[("port", "8080"), ("requestid", "0"), ("streamtype", ty)]),
    };
    assert_eq!(
        frames,
        vec![
            syn(1, "error"),
            syn(3, "data"),
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Vec::new()
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: b"hello".to_vec()
            },
            Frame::Ping { id: 1 },
        ]
    );
}

#[tokio::test]
async fn bad_input_is_an_error_not_a_panic() {
    let mut dec = HeaderDecoder::default();
    // SPDY/2.
    let v2 = [0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1];
    assert!(matches!(
        read_frame(&mut &v2[..], &mut dec).await,
        Err(SpdyError::Version(2))
    ));
    // A PING too short.
    let short = [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0, 0];
    assert!(matches!(
        read_frame(&mut &short[..], &mut dec).await,
        Err(SpdyError::Invalid { .. })
    ));
    // A header block that is not zlib.
    let junk = [
        0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 1, 1, 2, 3, 4,
    ];
    assert!(matches!(
        read_frame(&mut &junk[..], &mut HeaderDecoder::default()).await,
        Err(SpdyError::Compression(_))
    ));
    // Truncated frame body.
    let cut = [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 1, 2];
    assert!(matches!(
        read_frame(&mut &cut[..], &mut dec).await,
        Err(SpdyError::Io(_))
    ));
    // Uppercase header names are refused (spdystream's rule).
    let mut enc = HeaderEncoder::new().expect("encoder");
    let mut wire = Vec::new();
    write_frame(
        &mut wire,
        &Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: Vec::new(),
        },
        &mut enc,
    )
    .expect("write");
    let block = enc.encode(&h(&[("ok", "1")])).expect("encode");
    assert!(!block.is_empty());
    assert!(parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 1, b'A', 0, 0, 0, 0]).is_err());
    assert!(parse_header_block(&[0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0]).is_err());
}
