//! The agent's HTTPS endpoint (the kubelet's port): container logs for `kubectl logs [-f]` and
//! exec sessions (`streaming`).
//! Only attested masters may call it: each request carries a fresh signature by the enclave key
//! of one of the cluster's masters (learned from its attestation document, see
//! `agent::masters::MasterKeys`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use daas_protocol::nodeproxy::{request_message, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use ed25519_dalek::Signature;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncSeekExt};

use crate::runtime::{parse_cri_log_line, Runtime};

/// How far the master's clock may be from ours.
const MAX_SKEW_MS: u64 = 60_000;

#[derive(Clone)]
pub struct KubeletState {
    pub runtime: Arc<dyn Runtime>,
    /// The enclave keys of the attested masters.
    pub master_keys: crate::agent::masters::MasterKeys,
    /// uid of each pod by (namespace, name), maintained by the pod sync loop.
    pub pods: Arc<std::sync::Mutex<HashMap<(String, String), String>>>,
    pub metrics: Arc<daas_protocol::metrics::Metrics>,
    /// Resource usage of the node and its pods (`/stats/summary`, `/metrics/resource`).
    pub stats: Arc<crate::stats::Collector>,
    pub node_name: String,
}

/// Serving certificate of the agent: self-signed, kept in the data dir; returns (cert PEM, key PEM, sha256 of DER).
pub fn serving_identity(
    dir: &Path,
    ip: std::net::IpAddr,
) -> std::io::Result<(String, String, [u8; 32])> {
    crate::config::ensure_private_dir(dir).map_err(std::io::Error::other)?;
    let (crt, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    if !(crt.exists() && key.exists()) {
        let kp = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .map_err(std::io::Error::other)?;
        params.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
        let cert = params.self_signed(&kp).map_err(std::io::Error::other)?;
        crate::config::write_private_file(&key, kp.serialize_pem().as_bytes())
            .map_err(std::io::Error::other)?;
        std::fs::write(&crt, cert.pem())?;
    }
    // Keys written by an older agent may be readable by others.
    crate::config::restrict_to_owner(&key).map_err(std::io::Error::other)?;
    let cert_pem = std::fs::read_to_string(&crt)?;
    let key_pem = std::fs::read_to_string(&key)?;
    let der = rustls::pki_types::pem::PemObject::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .and_then(|c: Result<rustls::pki_types::CertificateDer<'static>, _>| c.ok())
        .ok_or_else(|| std::io::Error::other("kubelet.crt holds no certificate"))?;
    Ok((cert_pem, key_pem, Sha256::digest(der.as_ref()).into()))
}

fn reject(code: StatusCode, msg: &str) -> Response {
    (code, msg.to_string()).into_response()
}

#[allow(clippy::result_large_err)] // the ready-made rejection response; built once per refused request
pub(crate) fn authorized(
    st: &KubeletState,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Response> {
    let ts: u64 = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| reject(StatusCode::UNAUTHORIZED, "missing request timestamp"))?;
    let now = daas_protocol::now_ms();
    if now.abs_diff(ts) > MAX_SKEW_MS {
        return Err(reject(
            StatusCode::UNAUTHORIZED,
            "request timestamp out of range",
        ));
    }
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| reject(StatusCode::UNAUTHORIZED, "missing or malformed signature"))?;
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    if st.master_keys.verify(&request_message("GET", pq, ts), &sig) {
        Ok(())
    } else {
        Err(reject(
            StatusCode::FORBIDDEN,
            "signature is not from an attested master",
        ))
    }
}

async fn container_logs(
    State(st): State<KubeletState>,
    UrlPath((ns, pod, container)): UrlPath<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorized(&st, &uri, &headers) {
        return r;
    }
    let uid = st
        .pods
        .lock()
        .ok()
        .and_then(|p| p.get(&(ns.clone(), pod.clone())).cloned());
    let Some(uid) = uid else {
        return reject(
            StatusCode::NOT_FOUND,
            &format!("pod {ns}/{pod} is not running on this node"),
        );
    };
    let path = match st.runtime.log_path(&uid, &container).await {
        Ok(p) => p,
        Err(e) => return reject(StatusCode::NOT_FOUND, &e.to_string()),
    };
    let previous = matches!(
        q.get("previous").map(|s| s.as_str()),
        Some("true") | Some("1")
    );
    let path = if previous {
        match previous_log(&path) {
            Some(p) => p,
            None => {
                return reject(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "previous terminated container {container:?} in pod {pod:?} not found"
                    ),
                )
            }
        }
    } else {
        path
    };
    let follow = matches!(
        q.get("follow").map(|s| s.as_str()),
        Some("true") | Some("1")
    );
    let timestamps = matches!(
        q.get("timestamps").map(|s| s.as_str()),
        Some("true") | Some("1")
    );
    let tail: Option<usize> = q.get("tailLines").and_then(|t| t.parse().ok());
    let since = q
        .get("sinceSeconds")
        .and_then(|s| s.parse::<i64>().ok())
        .map(|s| chrono::Utc::now() - chrono::Duration::seconds(s))
        .or_else(|| {
            q.get("sinceTime")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
        });
    let limit: Option<usize> = q.get("limitBytes").and_then(|t| t.parse().ok());
    let opts = LogOptions {
        follow,
        timestamps,
        tail,
        since,
        limit,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    tokio::spawn(stream_log(path, opts, tx));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap_or_else(|_| reject(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

/// The log of the instance before the one logging to `current` (`<attempt>.log` in the same
/// directory), if it exists.
fn previous_log(current: &Path) -> Option<std::path::PathBuf> {
    let attempt: u32 = current.file_stem()?.to_str()?.parse().ok()?;
    let prev = current.with_file_name(format!("{}.log", attempt.checked_sub(1)?));
    prev.exists().then_some(prev)
}

/// `kubectl logs` options the agent applies (tail first, then since, then the byte limit, as
/// the kubelet does).
#[derive(Debug, Clone, Copy, Default)]
struct LogOptions {
    follow: bool,
    timestamps: bool,
    tail: Option<usize>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    limit: Option<usize>,
}

/// Sends rendered lines until the byte limit is reached; false once nothing more may be sent.
struct LogSink {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    left: Option<usize>,
}

impl LogSink {
    async fn send(&mut self, mut s: String) -> bool {
        if let Some(left) = self.left.as_mut() {
            if s.len() >= *left {
                let mut cut = *left;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                *left = 0;
                let _ = self.tx.send(Ok(bytes::Bytes::from(s))).await;
                return false;
            }
            *left -= s.len();
        }
        self.tx.send(Ok(bytes::Bytes::from(s))).await.is_ok()
    }
}

fn render(line: &str, opts: &LogOptions) -> Option<String> {
    let timestamps = opts.timestamps;
    let l = parse_cri_log_line(line)?;
    if opts.since.is_some_and(|since| l.timestamp < since) {
        return None;
    }
    let mut out = String::new();
    if timestamps {
        out.push_str(
            &l.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        );
        out.push(' ');
    }
    out.push_str(&l.message);
    if !l.partial {
        out.push('\n');
    }
    Some(out)
}

/// Send the log file's lines (message part), then keep following it if asked.
async fn stream_log(
    path: std::path::PathBuf,
    opts: LogOptions,
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
) {
    let LogOptions { follow, tail, .. } = opts;
    let mut sink = LogSink {
        tx: tx.clone(),
        left: opts.limit,
    };
    if sink.left == Some(0) {
        return;
    }
    let Ok(file) = tokio::fs::File::open(&path).await else {
        let _ = tx.send(Ok(bytes::Bytes::new())).await;
        return;
    };
    let mut reader = tokio::io::BufReader::new(file);
    let mut lines = Vec::new();
    let mut buf = String::new();
    loop {
        buf.clear();
        match reader.read_line(&mut buf).await {
            Ok(0) => break,
            Ok(_) if buf.ends_with('\n') => lines.push(std::mem::take(&mut buf)),
            Ok(_) => {
                // A line still being written: re-read it later.
                let back = buf.len() as i64;
                let _ = reader.seek(std::io::SeekFrom::Current(-back)).await;
                break;
            }
            Err(_) => break,
        }
    }
    let skip = tail.map(|t| lines.len().saturating_sub(t)).unwrap_or(0);
    for l in &lines[skip..] {
        if let Some(s) = render(l.trim_end_matches('\n'), &opts) {
            if !sink.send(s).await {
                return;
            }
        }
    }
    if !follow {
        return;
    }
    let mut pending = String::new();
    loop {
        buf.clear();
        match reader.read_line(&mut buf).await {
            Ok(0) => {
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(_) => {
                pending.push_str(&buf);
                if pending.ends_with('\n') {
                    if let Some(s) = render(pending.trim_end_matches('\n'), &opts) {
                        if !sink.send(s).await {
                            return;
                        }
                    }
                    pending.clear();
                }
            }
            Err(_) => return,
        }
    }
}

/// `GET /metrics` (Prometheus): the agent's counters plus pods known to the runtime by sandbox
/// state. Like every other endpoint of the agent it answers only requests signed by an attested
/// master: scrapers read it through the master's `/api/v1/nodes/<node>/proxy/metrics`, which
/// requires `get` on `nodes/metrics` of this node (as the kubelet's metrics need upstream).
async fn metrics(State(st): State<KubeletState>, uri: Uri, headers: HeaderMap) -> Response {
    use daas_protocol::metrics::Gauge;
    if let Err(r) = authorized(&st, &uri, &headers) {
        return r;
    }
    let mut gauges = Vec::new();
    if let Ok(pods) = st.runtime.list_pods().await {
        let ready = pods
            .iter()
            .filter(|p| p.state == crate::runtime::SandboxState::Ready)
            .count();
        gauges.push(
            Gauge::new(
                "daas_agent_pods",
                "Pods in the container runtime by sandbox state.",
            )
            .set(&[("state", "ready")], ready as f64)
            .set(&[("state", "notready")], (pods.len() - ready) as f64),
        );
    }
    (
        [("content-type", "text/plain; version=0.0.4")],
        st.metrics.render(&gauges),
    )
        .into_response()
}

/// `GET /stats/summary`: the kubelet's Summary API (node, pods and containers; CPU and memory).
async fn stats_summary(State(st): State<KubeletState>, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&st, &uri, &headers) {
        return r;
    }
    let summary = st
        .stats
        .collect(&st.node_name, st.runtime.as_ref(), false)
        .await;
    axum::Json(summary.to_json()).into_response()
}

/// `GET /metrics/resource`: the same usage in the Prometheus text format, as the kubelet serves it.
async fn metrics_resource(
    State(st): State<KubeletState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorized(&st, &uri, &headers) {
        return r;
    }
    let summary = st
        .stats
        .collect(&st.node_name, st.runtime.as_ref(), false)
        .await;
    (
        [("content-type", "text/plain; version=0.0.4")],
        summary.to_prometheus(),
    )
        .into_response()
}

pub fn router(st: KubeletState) -> Router {
    Router::new()
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
        .route("/exec/{ns}/{pod}", get(crate::streaming::exec))
        .route("/attach/{ns}/{pod}", get(crate::streaming::attach))
        .route("/stats/summary", get(stats_summary))
        .route("/metrics/resource", get(metrics_resource))
        .route(
            "/portForward/{ns}/{pod}",
            get(crate::streaming::port_forward),
        )
        .route("/metrics", get(metrics))
        .with_state(st)
}

/// Serve the kubelet endpoint over TLS; returns the bound address.
pub async fn serve(
    listen: SocketAddr,
    cert_pem: &str,
    key_pem: &str,
    st: KubeletState,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let certs: Vec<rustls::pki_types::CertificateDer<'static>> =
        rustls::pki_types::pem::PemObject::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
    let key = <rustls::pki_types::PrivateKeyDer<'static> as rustls::pki_types::pem::PemObject>::from_pem_slice(
        key_pem.as_bytes(),
    )
    .map_err(std::io::Error::other)?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = router(st);
    let h = tokio::spawn(async move {
        let _ = daas_protocol::serve::serve_tls(listener, Arc::new(cfg), app).await;
    });
    Ok((addr, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The stats endpoints answer the attested masters' signatures only: unsigned 401, another
    /// key's or a signature over another path 403, a stale timestamp 401; the signature of any
    /// attested master of the cluster 200.
    #[tokio::test]
    async fn stats_endpoints_need_the_masters_signature() {
        use axum::http::Request;
        use ed25519_dalek::{Signer, SigningKey};
        use tower::ServiceExt;
        let master = SigningKey::from_bytes(&[7u8; 32]);
        // A second attested master of the cluster (HA): its signatures are accepted too.
        let second = SigningKey::from_bytes(&[8u8; 32]);
        let intruder = SigningKey::from_bytes(&[9u8; 32]);
        let st = KubeletState {
            runtime: Arc::new(crate::runtime::fake::FakeRuntime::new()),
            master_keys: crate::agent::masters::MasterKeys::from_keys([
                master.verifying_key(),
                second.verifying_key(),
            ]),
            pods: Default::default(),
            metrics: Arc::new(daas_protocol::metrics::Metrics::new()),
            stats: Arc::new(crate::stats::Collector::host()),
            node_name: "n1".into(),
        };
        let app = router(st);
        async fn call(
            app: &Router,
            path: &str,
            signed: Option<(&SigningKey, &str, u64)>,
        ) -> (u16, String) {
            let mut req = Request::get(path);
            if let Some((key, over, ts)) = signed {
                let sig = key.sign(&request_message("GET", over, ts));
                req = req.header(TIMESTAMP_HEADER, ts.to_string()).header(
                    SIGNATURE_HEADER,
                    base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
                );
            }
            let resp = app
                .clone()
                .oneshot(req.body(Body::empty()).expect("request"))
                .await
                .expect("response");
            let code = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .expect("body");
            (code, String::from_utf8_lossy(&body).to_string())
        }
        let now = daas_protocol::now_ms();
        for path in ["/stats/summary", "/metrics/resource", "/metrics"] {
            assert_eq!(call(&app, path, None).await.0, 401, "{path}");
            assert_eq!(
                call(&app, path, Some((&intruder, path, now))).await.0,
                403,
                "{path}"
            );
            assert_eq!(
                call(&app, path, Some((&master, "/containerLogs/a/b/c", now)))
                    .await
                    .0,
                403,
                "{path}"
            );
            assert_eq!(
                call(&app, path, Some((&master, path, now - 120_000)))
                    .await
                    .0,
                401,
                "{path}"
            );
        }
        let (code, body) = call(
            &app,
            "/stats/summary",
            Some((&master, "/stats/summary", now)),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["node"]["nodeName"], "n1");
        let (code, body) = call(
            &app,
            "/stats/summary",
            Some((&second, "/stats/summary", now)),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = call(
            &app,
            "/stats/summary",
            Some((&intruder, "/stats/summary", now)),
        )
        .await;
        assert_eq!(
            (code, body.as_str()),
            (403, "signature is not from an attested master")
        );
        let (code, body) = call(
            &app,
            "/metrics/resource",
            Some((&master, "/metrics/resource", now)),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains("# TYPE node_cpu_usage_seconds_total counter"),
            "{body}"
        );
        let (code, body) = call(&app, "/metrics", Some((&master, "/metrics", now))).await;
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains("daas_agent_pods{state=\"ready\"} 0"),
            "{body}"
        );
    }

    #[test]
    fn previous_log_is_the_attempt_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (zero, one) = (dir.path().join("0.log"), dir.path().join("1.log"));
        assert_eq!(previous_log(&zero), None);
        assert_eq!(previous_log(&one), None);
        std::fs::write(&zero, "x").expect("write");
        assert_eq!(previous_log(&one), Some(zero));
    }

    #[test]
    fn serving_key_is_private() {
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        let (_, key_pem, sha) = serving_identity(&pki, [127, 0, 0, 1].into()).expect("identity");
        assert!(key_pem.contains("PRIVATE KEY"));
        assert_eq!(mode(&pki), 0o700);
        assert_eq!(mode(&pki.join("kubelet.key")), 0o600);
        // A key left readable by an older agent is restricted on the next start; the cert is kept.
        std::fs::set_permissions(
            pki.join("kubelet.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let (_, _, again) = serving_identity(&pki, [127, 0, 0, 1].into()).expect("identity");
        assert_eq!(sha, again);
        assert_eq!(mode(&pki.join("kubelet.key")), 0o600);
    }
}
