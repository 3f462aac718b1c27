//! `daas bench-flood` (hidden): the two clients of `scripts/bench-flood.sh`.
//!
//! - `probe`: the admin and a node, each on its own keep-alive HTTP/1.1 connection, paced at
//!   `--rate` requests per second: the admin lists namespaces, the node GETs its own Lease and
//!   renews it (PUT with a new renewTime). Prints one JSON line with p50/p99 and every sample
//!   per series.
//! - `flood`: ONE user identity from `--source-ip`, on one thread (so it loads the server, not the
//!   box): `--connections` closed-loop HTTP/1.1 connections cycling through cheap GETs, lists,
//!   creates and bodies over the 3 MiB limit, plus up to `--watches` watches held open (a refused
//!   one is retried after its Retry-After). Prints one JSON line with the answers by status.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use crate::bench_http::{cpu_seconds, pct, read_trimmed};

#[derive(Args, Clone)]
pub struct FloodArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Clone)]
enum Mode {
    Probe(ProbeArgs),
    Flood(FloodLoadArgs),
}

#[derive(Args, Clone)]
struct Server {
    /// `https://host:port` of the master.
    #[arg(long)]
    url: String,
    /// PEM CA bundle the server's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
}

#[derive(Args, Clone)]
struct ProbeArgs {
    #[command(flatten)]
    server: Server,
    /// File holding the admin's bearer token.
    #[arg(long)]
    admin_token_file: PathBuf,
    /// File holding the node's bearer token (its `daas1.` credential).
    #[arg(long)]
    node_token_file: PathBuf,
    /// The node's Lease (`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/<n>`).
    #[arg(long)]
    node_lease_path: String,
    /// Requests per second of each series.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long, default_value = "")]
    name: String,
}

#[derive(Args, Clone)]
struct FloodLoadArgs {
    #[command(flatten)]
    server: Server,
    /// File holding the flooding user's bearer token.
    #[arg(long)]
    token_file: PathBuf,
    /// The user's namespace.
    #[arg(long)]
    namespace: String,
    /// Closed-loop connections.
    #[arg(long, default_value_t = 48)]
    connections: usize,
    /// Watches to try to hold open at once.
    #[arg(long, default_value_t = 150)]
    watches: usize,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The address the flood's connections come from (another loopback address: another host).
    #[arg(long, default_value = "127.0.0.2")]
    source_ip: IpAddr,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

struct Conn {
    tls: tokio_rustls::TlsConnector,
    host: String,
    port: u16,
    authority: String,
    source: Option<IpAddr>,
}

impl Conn {
    fn new(s: &Server, source: Option<IpAddr>) -> Result<Conn> {
        let e = crate::bench_http::Endpoint::parse(&s.url)?;
        Ok(Conn {
            tls: crate::bench_http::tls_connector(&s.ca)?,
            host: e.host,
            port: e.port,
            authority: e.authority,
            source,
        })
    }

    async fn open(&self) -> Result<Sender> {
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .context("no address")?;
        let sock = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(ip) = self.source {
            sock.bind(std::net::SocketAddr::new(ip, 0))?;
        }
        let tcp = sock.connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(self.host.clone())?;
        let stream = self.tls.connect(name, tcp).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        if !body.is_empty() {
            r = r.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        r.body(Full::new(body)).unwrap_or_default()
    }
}

/// Send one request on `s` (reconnecting once if it is closed); status, body and latency.
async fn call(
    c: &Conn,
    s: &mut Option<Sender>,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Bytes, Duration)> {
    if s.as_ref().is_none_or(|x| x.is_closed()) {
        *s = Some(c.open().await?);
    }
    let sender = s.as_mut().context("no connection")?;
    sender.ready().await?;
    let t0 = Instant::now();
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body, t0.elapsed()))
}

#[derive(Default)]
struct Series {
    lat_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Series {
    fn fail(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    fn push(&mut self, d: Duration) {
        self.lat_us.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    fn json(mut self) -> serde_json::Value {
        self.lat_us.sort_unstable();
        serde_json::json!({
            "requests": self.lat_us.len(),
            "p50_ms": pct(&self.lat_us, 0.50),
            "p99_ms": pct(&self.lat_us, 0.99),
            "max_ms": self.lat_us.last().map(|m| *m as f64 / 1000.0),
            "errors": self.errors,
            "first_error": self.first_error,
            // Every sample (µs, sorted), so the script can pool several rounds.
            "lat_us": self.lat_us,
        })
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn probe(a: ProbeArgs) -> Result<()> {
    let conn = Arc::new(Conn::new(&a.server, None)?);
    let admin = read_trimmed(&a.admin_token_file)?;
    let node = read_trimmed(&a.node_token_file)?;
    let period = Duration::from_secs_f64(1.0 / a.rate.max(0.1));
    let until = Instant::now() + Duration::from_secs_f64(a.seconds);
    let admin_task = {
        let conn = conn.clone();
        tokio::spawn(async move {
            let mut s = None;
            let mut out = Series::default();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < until {
                tick.tick().await;
                let req = conn.request(Method::GET, "/api/v1/namespaces", &admin, Bytes::new());
                match call(&conn, &mut s, req).await {
                    Ok((200, _, d)) => out.push(d),
                    Ok((code, b, _)) => out.fail(format!(
                        "status {code}: {}",
                        String::from_utf8_lossy(&b[..b.len().min(200)])
                    )),
                    Err(e) => out.fail(e.to_string()),
                }
            }
            out
        })
    };
    let node_task = {
        let conn = conn.clone();
        let lease = a.node_lease_path.clone();
        tokio::spawn(async move {
            let mut s = None;
            let (mut get, mut put) = (Series::default(), Series::default());
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < until {
                tick.tick().await;
                let req = conn.request(Method::GET, &lease, &node, Bytes::new());
                let obj = match call(&conn, &mut s, req).await {
                    Ok((200, b, d)) => {
                        get.push(d);
                        serde_json::from_slice::<serde_json::Value>(&b).ok()
                    }
                    Ok((code, b, _)) => {
                        get.fail(format!(
                            "status {code}: {}",
                            String::from_utf8_lossy(&b[..b.len().min(200)])
                        ));
                        None
                    }
                    Err(e) => {
                        get.fail(e.to_string());
                        None
                    }
                };
                let Some(mut obj) = obj else { continue };
                obj["spec"]["renewTime"] = serde_json::json!(now_rfc3339());
                let body = Bytes::from(serde_json::to_vec(&obj).unwrap_or_default());
                let req = conn.request(Method::PUT, &lease, &node, body);
                match call(&conn, &mut s, req).await {
                    Ok((200, _, d)) => put.push(d),
                    Ok((code, b, _)) => put.fail(format!(
                        "status {code}: {}",
                        String::from_utf8_lossy(&b[..b.len().min(200)])
                    )),
                    Err(e) => put.fail(e.to_string()),
                }
            }
            (get, put)
        })
    };
    let admin = admin_task.await?;
    let (get, put) = node_task.await?;
    println!(
        "{}",
        serde_json::json!({
            "name": a.name,
            "admin_list_namespaces": admin.json(),
            "node_get_lease": get.json(),
            "node_renew_lease": put.json(),
        })
    );
    Ok(())
}

#[derive(Default)]
struct Counts {
    by_status: BTreeMap<String, u64>,
    first_other: Option<String>,
    watches_open_max: usize,
}

async fn flood(a: FloodLoadArgs) -> Result<()> {
    let conn = Arc::new(Conn::new(&a.server, Some(a.source_ip))?);
    let token: Arc<str> = read_trimmed(&a.token_file)?.into();
    let counts = Arc::new(Mutex::new(Counts::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let ns = a.namespace.clone();
    // Just over the 3 MiB limit: read (and discarded) by the server, refused with 413.
    let mut big = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"big-"},"data":{"x":""#.to_vec();
    big.resize(3 * 1024 * 1024 + 64, b'a');
    big.extend_from_slice(br#""}}"#);
    let big = Bytes::from(big);
    let small = Bytes::from_static(
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"flood-"},"data":{"k":"v"}}"#,
    );
    let record = {
        let counts = counts.clone();
        move |what: &str, r: &Result<(u16, Bytes, Duration)>| {
            let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
            let key = match r {
                Ok((code, _, _)) => format!("{what}:{code}"),
                Err(_) => format!("{what}:error"),
            };
            *c.by_status.entry(key).or_insert(0) += 1;
            if let Ok((code, b, _)) = r {
                if !matches!(code, 200 | 201 | 413 | 429) && c.first_other.is_none() {
                    c.first_other = Some(format!(
                        "{what} {code}: {}",
                        String::from_utf8_lossy(&b[..b.len().min(200)])
                    ));
                }
            } else if let Err(e) = r {
                c.first_other.get_or_insert(format!("{what}: {e}"));
            }
        }
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.connections {
        let (conn, token, stop, ns) = (conn.clone(), token.clone(), stop.clone(), ns.clone());
        let (big, small, record) = (big.clone(), small.clone(), record.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = None;
            let mut k = w;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let cms = format!("/api/v1/namespaces/{ns}/configmaps");
                let (what, req) = match k % 8 {
                    0 | 3 => (
                        "list",
                        conn.request(Method::GET, &cms, &token, Bytes::new()),
                    ),
                    1 | 4 => (
                        "get",
                        conn.request(
                            Method::GET,
                            &format!("/api/v1/namespaces/{ns}"),
                            &token,
                            Bytes::new(),
                        ),
                    ),
                    2 | 5 => (
                        "create",
                        conn.request(Method::POST, &cms, &token, small.clone()),
                    ),
                    6 => (
                        "list-all",
                        conn.request(
                            Method::GET,
                            &format!("{cms}?limit=500"),
                            &token,
                            Bytes::new(),
                        ),
                    ),
                    _ => (
                        "big-body",
                        conn.request(Method::POST, &cms, &token, big.clone()),
                    ),
                };
                let r = call(&conn, &mut s, req).await;
                if r.is_err() {
                    s = None;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                record(what, &r);
            }
        }));
    }
    // Watches: open up to `watches`, each on its own connection, held until the end.
    let open_watches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..a.watches {
        let (conn, token, stop, ns) = (conn.clone(), token.clone(), stop.clone(), ns.clone());
        let (counts, open_watches) = (counts.clone(), open_watches.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut sender) = conn.open().await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let req = conn.request(
                    Method::GET,
                    &format!(
                        "/api/v1/namespaces/{ns}/configmaps?watch=true&allowWatchBookmarks=true"
                    ),
                    &token,
                    Bytes::new(),
                );
                let Ok(resp) = sender.send_request(req).await else {
                    continue;
                };
                let code = resp.status().as_u16();
                {
                    let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                    *c.by_status.entry(format!("watch:{code}")).or_insert(0) += 1;
                }
                if code == 200 {
                    let n = open_watches.fetch_add(1, Ordering::SeqCst) + 1;
                    {
                        let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                        c.watches_open_max = c.watches_open_max.max(n);
                    }
                    let mut body = resp.into_body();
                    while !stop.load(Ordering::Relaxed) {
                        match tokio::time::timeout(Duration::from_millis(500), body.frame()).await {
                            Ok(Some(Ok(_))) | Err(_) => {}
                            _ => break,
                        }
                    }
                    open_watches.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                let wait = resp
                    .headers()
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                drop(resp);
                tokio::time::sleep(Duration::from_secs(wait.min(5))).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    for t in tasks {
        t.abort();
    }
    let c = counts.lock().unwrap_or_else(|p| p.into_inner());
    let total: u64 = c.by_status.values().sum();
    let refused: u64 = c
        .by_status
        .iter()
        .filter(|(k, _)| k.ends_with(":429"))
        .map(|(_, v)| v)
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "requests": total,
            "rps": total as f64 / elapsed,
            "refused_429": refused,
            "by_status": c.by_status,
            "watches_open_max": c.watches_open_max,
            "first_other": c.first_other,
            "client_cpu_s": cpu,
            "seconds": elapsed,
        })
    );
    Ok(())
}

/// Runs on the caller's runtime; the flood on a single-threaded one of its own (one core).
pub fn run(a: FloodArgs) -> Result<()> {
    match a.mode {
        Mode::Probe(p) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(probe(p)),
        Mode::Flood(f) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(flood(f)),
    }
}
