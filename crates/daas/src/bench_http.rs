//! `daas bench-http` (hidden): the closed-loop HTTP/1.1 load client of `scripts/bench-token.sh`.
//! C keep-alive TLS connections (the server verified against `--ca`), each sending one request
//! after the other for a fixed time after a warm-up, then one JSON line with the rate, latency
//! percentiles and the client's own CPU time (so a saturated client shows).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// `https://host:port` of the server.
    #[arg(long)]
    url: String,
    /// PEM CA bundle the server's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    #[arg(long, default_value = "GET")]
    method: String,
    #[arg(long, default_value = "/api/v1/health")]
    path: String,
    /// File holding a bearer token.
    #[arg(long)]
    bearer_file: Option<PathBuf>,
    /// File holding a JSON request body.
    #[arg(long)]
    body_file: Option<PathBuf>,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// The status every measured answer must have (others count as errors).
    #[arg(long, default_value_t = 200)]
    expect: u16,
    #[arg(long, default_value = "")]
    name: String,
}

struct Target {
    method: Method,
    path: String,
    authority: String,
    bearer: Option<String>,
    body: Bytes,
    expect: u16,
}

/// User + system CPU seconds of this process.
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command: state is field 0, utime 11, stime 12 (100 clock ticks per second).
    (ticks(11) + ticks(12)) / 100.0
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn fail(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

async fn worker(
    t: Arc<Target>,
    tls: tokio_rustls::TlsConnector,
    host: String,
    port: u16,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut w = Tally::default();
    'conn: while !stop.load(Ordering::Relaxed) {
        let tcp = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
            Ok(t) => t,
            Err(e) => {
                w.fail(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(name) = ServerName::try_from(host.clone()) else {
            w.fail(format!("bad server name {host}"));
            return w;
        };
        let stream = match tls.connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                w.fail(format!("tls: {e}"));
                continue;
            }
        };
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(x) => x,
                Err(e) => {
                    w.fail(format!("handshake: {e}"));
                    continue;
                }
            };
        tokio::spawn(async move {
            let _ = conn.await;
        });
        while !stop.load(Ordering::Relaxed) {
            let mut req = Request::builder()
                .method(t.method.clone())
                .uri(t.path.as_str())
                .header(hyper::header::HOST, t.authority.as_str())
                .header(hyper::header::ACCEPT, "application/json");
            if let Some(b) = &t.bearer {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {b}"));
            }
            if !t.body.is_empty() {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = match req.body(Full::new(t.body.clone())) {
                Ok(r) => r,
                Err(e) => {
                    w.fail(format!("request: {e}"));
                    return w;
                }
            };
            let t0 = Instant::now();
            let resp = match sender.send_request(req).await {
                Ok(r) => r,
                Err(e) => {
                    w.fail(format!("send: {e}"));
                    continue 'conn;
                }
            };
            let status = resp.status().as_u16();
            let body = match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    w.fail(format!("body: {e}"));
                    continue 'conn;
                }
            };
            let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
            if !measuring.load(Ordering::Relaxed) {
                continue;
            }
            if status != t.expect {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                w.fail(format!("status {status}: {text}"));
            } else {
                w.latencies_us.push(us);
            }
        }
    }
    w
}

pub(crate) fn pct(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

pub(crate) fn read_trimmed(p: &std::path::Path) -> Result<String> {
    Ok(std::fs::read_to_string(p)
        .with_context(|| format!("reading {}", p.display()))?
        .trim()
        .to_string())
}

/// The authority, host and port of an `https://host:port[/...]` URL.
pub(crate) struct Endpoint {
    pub authority: String,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Endpoint> {
        let rest = url
            .strip_prefix("https://")
            .context("--url must be https://host:port")?;
        let authority = rest.split('/').next().unwrap_or(rest).to_string();
        let (host, port) = authority.rsplit_once(':').context("--url needs a port")?;
        Ok(Endpoint {
            host: host.to_string(),
            port: port.parse().context("--url port")?,
            authority,
        })
    }
}

/// A TLS connector trusting only the CA certificates of the PEM file `ca`.
pub(crate) fn tls_connector(ca: &std::path::Path) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.context("--ca")?).context("--ca")?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

pub async fn run(a: BenchArgs) -> Result<()> {
    let Endpoint {
        authority,
        host,
        port,
    } = Endpoint::parse(&a.url)?;
    let tls = tls_connector(&a.ca)?;
    let target = Arc::new(Target {
        method: a.method.parse().context("--method")?,
        path: a.path.clone(),
        authority: authority.clone(),
        bearer: a.bearer_file.as_deref().map(read_trimmed).transpose()?,
        body: match &a.body_file {
            Some(p) => Bytes::from(read_trimmed(p)?),
            None => Bytes::new(),
        },
        expect: a.expect,
    });
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..a.connections)
        .map(|_| {
            tokio::spawn(worker(
                target.clone(),
                tls.clone(),
                host.to_string(),
                port,
                measuring.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(a.warmup)).await;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let mut tallies = Vec::new();
    for h in handles {
        if let Ok(w) = h.await {
            tallies.push(w);
        }
    }
    let mut lat: Vec<u32> = tallies
        .iter()
        .flat_map(|w| w.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let errors: u64 = tallies.iter().map(|w| w.errors).sum();
    let first_error = tallies.iter().find_map(|w| w.first_error.clone());
    let name = if a.name.is_empty() { &a.path } else { &a.name };
    println!(
        "{}",
        serde_json::json!({
            "name": name,
            "requests": lat.len(),
            "rps": lat.len() as f64 / elapsed,
            "p50_ms": pct(&lat, 0.50),
            "p99_ms": pct(&lat, 0.99),
            "max_ms": lat.last().map(|m| *m as f64 / 1000.0),
            "errors": errors,
            "first_error": first_error,
            "client_cpu_s": cpu,
            "seconds": elapsed,
        })
    );
    Ok(())
}
