//! Closed-loop HTTP/1.1 load client for `scripts/bench-token.sh`: C keep-alive TLS connections,
//! each sending one request after the other for a fixed time, then one JSON line with the rate
//! and latency percentiles (and the client's own CPU time, so a saturated client shows).
//!
//! ```text
//! token_bench --url https://127.0.0.1:6443 --ca ca.pem [--method GET] [--path /api/v1/health]
//!             [--bearer-file F] [--body-file F] [--connections 16] [--seconds 5] [--warmup 1]
//!             [--expect 200] [--name health]
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

struct Opts {
    url: String,
    ca: String,
    method: Method,
    path: String,
    bearer: Option<String>,
    body: Bytes,
    connections: usize,
    seconds: f64,
    warmup: f64,
    expect: u16,
    name: String,
}

fn usage(msg: &str) -> ! {
    eprintln!("token_bench: {msg}");
    std::process::exit(2)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| usage(&format!("{path}: {e}")))
        .trim()
        .to_string()
}

fn opts() -> Opts {
    let mut o = Opts {
        url: String::new(),
        ca: String::new(),
        method: Method::GET,
        path: "/api/v1/health".into(),
        bearer: None,
        body: Bytes::new(),
        connections: 16,
        seconds: 5.0,
        warmup: 1.0,
        expect: 200,
        name: String::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let v = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let num = |v: &str| -> f64 { v.parse().unwrap_or_else(|_| usage(&format!("{flag} {v}"))) };
        match flag.as_str() {
            "--url" => o.url = v,
            "--ca" => o.ca = read(&v),
            "--method" => {
                o.method = v
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--method {v}")))
            }
            "--path" => o.path = v,
            "--bearer-file" => o.bearer = Some(read(&v)),
            "--body-file" => o.body = Bytes::from(read(&v)),
            "--connections" => o.connections = num(&v) as usize,
            "--seconds" => o.seconds = num(&v),
            "--warmup" => o.warmup = num(&v),
            "--expect" => o.expect = num(&v) as u16,
            "--name" => o.name = v,
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    if o.url.is_empty() || o.ca.is_empty() {
        usage("--url and --ca are required");
    }
    if o.name.is_empty() {
        o.name = o.path.clone();
    }
    o
}

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is 0, utime 11, stime 12; clock ticks are 100/s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

struct Worker {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn worker(
    o: Arc<Opts>,
    tls: tokio_rustls::TlsConnector,
    host: String,
    port: u16,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Worker {
    let mut w = Worker {
        latencies_us: Vec::with_capacity(1 << 16),
        errors: 0,
        first_error: None,
    };
    let fail = |w: &mut Worker, e: String| {
        w.errors += 1;
        w.first_error.get_or_insert(e);
    };
    'conn: while !stop.load(Ordering::Relaxed) {
        let tcp = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
            Ok(t) => t,
            Err(e) => {
                fail(&mut w, format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.clone()).unwrap_or_else(|e| usage(&e.to_string()));
        let stream = match tls.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                fail(&mut w, format!("tls: {e}"));
                continue;
            }
        };
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(x) => x,
                Err(e) => {
                    fail(&mut w, format!("handshake: {e}"));
                    continue;
                }
            };
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let authority = format!("{host}:{port}");
        while !stop.load(Ordering::Relaxed) {
            let mut req = Request::builder()
                .method(o.method.clone())
                .uri(o.path.as_str())
                .header(hyper::header::HOST, authority.as_str())
                .header(hyper::header::ACCEPT, "application/json");
            if let Some(b) = &o.bearer {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {b}"));
            }
            if !o.body.is_empty() {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = match req.body(Full::new(o.body.clone())) {
                Ok(r) => r,
                Err(e) => usage(&e.to_string()),
            };
            let t0 = Instant::now();
            let resp = match sender.send_request(req).await {
                Ok(r) => r,
                Err(e) => {
                    fail(&mut w, format!("send: {e}"));
                    continue 'conn;
                }
            };
            let status = resp.status().as_u16();
            let body = match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    fail(&mut w, format!("body: {e}"));
                    continue 'conn;
                }
            };
            let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
            if !measuring.load(Ordering::Relaxed) {
                continue;
            }
            if status != o.expect {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                fail(&mut w, format!("status {status}: {text}"));
            } else {
                w.latencies_us.push(us);
            }
        }
    }
    w
}

fn pct(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

fn main() {
    let o = Arc::new(opts());
    let rest = o
        .url
        .strip_prefix("https://")
        .unwrap_or_else(|| usage("--url must be https://host:port"));
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| usage("--url needs a port"));
    let port: u16 = port.parse().unwrap_or_else(|_| usage("bad port"));
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(o.ca.as_bytes()) {
        let c = c.unwrap_or_else(|e| usage(&format!("--ca: {e}")));
        roots
            .add(c)
            .unwrap_or_else(|e| usage(&format!("--ca: {e}")));
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| usage(&e.to_string()))
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    // One runtime thread: the client shares the machine with the server and should take as
    // little of it as it can (its CPU time is reported).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&e.to_string()));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (workers, elapsed, cpu) = rt.block_on(async {
        let handles: Vec<_> = (0..o.connections)
            .map(|_| {
                tokio::spawn(worker(
                    o.clone(),
                    tls.clone(),
                    host.to_string(),
                    port,
                    measuring.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs_f64(o.warmup)).await;
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs_f64(o.seconds)).await;
        measuring.store(false, Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        stop.store(true, Ordering::Relaxed);
        let mut out = Vec::new();
        for h in handles {
            if let Ok(w) = h.await {
                out.push(w);
            }
        }
        (out, elapsed, cpu)
    });
    let mut lat: Vec<u32> = workers
        .iter()
        .flat_map(|w| w.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let errors: u64 = workers.iter().map(|w| w.errors).sum();
    let first_error = workers.iter().find_map(|w| w.first_error.clone());
    let line = serde_json::json!({
        "name": o.name,
        "requests": lat.len(),
        "rps": lat.len() as f64 / elapsed,
        "p50_ms": pct(&lat, 0.50),
        "p99_ms": pct(&lat, 0.99),
        "max_ms": lat.last().map(|m| *m as f64 / 1000.0),
        "errors": errors,
        "first_error": first_error,
        "client_cpu_s": cpu,
        "seconds": elapsed,
    });
    println!("{line}");
}
