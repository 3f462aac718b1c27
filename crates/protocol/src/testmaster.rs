//! A stand-in master for tests of the client side of attested TLS and master failover: a real
//! HTTPS server with a serving certificate signed by a test cluster CA, a simulated enclave that
//! answers `/api/v1/tee/attestation` exactly as the master does (fresh nonce, user_data = the
//! serving certificate's hash), `/api/v1/health`, and a minimal ConfigMap API that says which
//! master served each request (GET/POST/PATCH of one object, list, and a watch that stays open).
//! `stop` closes the listener and every open connection at once, as a killed process would.
//!
//! Only for tests (feature `testmaster`): the real master is `daas-master`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use daas_tee::{Enclave, ExpectedPcrs, SimulatedEnclave, PCR_LEN};
use futures::StreamExt;
use serde_json::json;

use crate::attested::AttestationPolicy;

/// The measurement [`TestMaster::start`] runs with.
pub const TEST_MEASUREMENT: [u8; PCR_LEN] = [1; PCR_LEN];

/// A test cluster CA.
pub struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("ca key");
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "test-cluster-ca");
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("ca cert");
        TestCa { key, cert }
    }

    /// A serving certificate for 127.0.0.1 and localhost: (chain DER [leaf, ca], key DER).
    fn serving(&self) -> (Vec<Vec<u8>>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        p.subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("leaf");
        (
            vec![cert.der().to_vec(), self.cert.der().to_vec()],
            key.serialize_der(),
        )
    }
}

#[derive(Clone)]
struct St {
    name: String,
    cluster_id: String,
    enclave: Arc<SimulatedEnclave>,
    binding: [u8; 32],
    requests: Arc<AtomicUsize>,
}

/// A running (or stopped) test master.
pub struct TestMaster {
    pub url: String,
    pub addr: SocketAddr,
    pub name: String,
    pub cluster_id: String,
    pub enclave: Arc<SimulatedEnclave>,
    /// API requests served (not counting attestation and health).
    pub requests: Arc<AtomicUsize>,
    /// The serving certificate (DER).
    pub cert_der: Vec<u8>,
    measurement: [u8; PCR_LEN],
    tls: Arc<rustls::ServerConfig>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestMaster {
    /// A master named `name` of cluster `cluster_id` with [`TEST_MEASUREMENT`]; `dir` holds the
    /// simulated enclave state (share it between masters: same dev root, own enclave keys).
    pub async fn start(ca: &TestCa, dir: &Path, cluster_id: &str, name: &str) -> TestMaster {
        Self::start_with_measurement(ca, dir, cluster_id, name, TEST_MEASUREMENT).await
    }

    pub async fn start_with_measurement(
        ca: &TestCa,
        dir: &Path,
        cluster_id: &str,
        name: &str,
        measurement: [u8; PCR_LEN],
    ) -> TestMaster {
        Self::start_at(ca, dir, cluster_id, name, measurement, None).await
    }

    /// A master on a given address (`None`: a free port): e.g. another process, with its own
    /// certificate and enclave, where a stopped master was.
    pub async fn start_at(
        ca: &TestCa,
        dir: &Path,
        cluster_id: &str,
        name: &str,
        measurement: [u8; PCR_LEN],
        addr: Option<SocketAddr>,
    ) -> TestMaster {
        // The sealed enclave state is bound to the measurement; another measurement gets its
        // own directory holding the same dev root (so only the measurement differs).
        let tee = if measurement == TEST_MEASUREMENT {
            dir.join("tee")
        } else {
            let d = dir.join(format!("tee-{}", hex::encode(&measurement[..4])));
            std::fs::create_dir_all(&d).expect("tee dir");
            for f in [daas_tee::DEV_ROOT_CERT_FILE, daas_tee::DEV_ROOT_KEY_FILE] {
                if dir.join("tee").join(f).exists() && !d.join(f).exists() {
                    std::fs::copy(dir.join("tee").join(f), d.join(f)).expect("copy dev root");
                }
            }
            d
        };
        let enclave = Arc::new(
            SimulatedEnclave::open_with_measurement(tee, measurement).expect("simulated enclave"),
        );
        let (chain, key) = ca.serving();
        let certs: Vec<rustls::pki_types::CertificateDer<'static>> = chain
            .iter()
            .map(|c| rustls::pki_types::CertificateDer::from(c.clone()))
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        let listener = bind(addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))).await;
        let addr = listener.local_addr().expect("addr");
        let mut m = TestMaster {
            url: format!("https://127.0.0.1:{}", addr.port()),
            addr,
            name: name.to_string(),
            cluster_id: cluster_id.to_string(),
            enclave,
            requests: Arc::new(AtomicUsize::new(0)),
            cert_der: chain[0].clone(),
            measurement,
            tls: Arc::new(tls),
            task: None,
        };
        m.serve(listener);
        m
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let st = St {
            name: self.name.clone(),
            cluster_id: self.cluster_id.clone(),
            enclave: self.enclave.clone(),
            binding: crate::tls_binding(&self.cert_der),
            requests: self.requests.clone(),
        };
        let app = Router::new()
            .route("/api/v1/tee/attestation", get(attestation))
            .route("/api/v1/health", get(health))
            .fallback(api)
            .with_state(st);
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        self.task = Some(tokio::spawn(async move {
            // Dropping this task (stop) drops the set, which aborts every connection.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
                });
                while conns.try_join_next().is_some() {}
            }
        }));
    }

    /// Close the listener and every connection (a killed master); returns once they are closed.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Serve again on the same address with the same certificate and enclave.
    pub async fn restart(&mut self) {
        self.stop().await;
        let l = bind(self.addr).await;
        self.serve(l);
    }

    /// The policy a client uses for masters of [`TEST_MEASUREMENT`]: this enclave's dev root and
    /// PCR0..2 pinned explicitly (no ledger).
    pub fn policy(&self) -> AttestationPolicy {
        let pcrs = SimulatedEnclave::pcrs_for_measurement(&TEST_MEASUREMENT);
        let mut expected = ExpectedPcrs::none();
        for i in 0..3 {
            if let Some(v) = pcrs.get(i) {
                expected = expected.with(i, *v);
            }
        }
        AttestationPolicy {
            roots: vec![self.enclave.dev_root()],
            expected_pcrs: expected,
            ledger: None,
            platforms: Default::default(),
        }
    }

    /// The image measurement this master runs with.
    pub fn measurement(&self) -> [u8; PCR_LEN] {
        self.measurement
    }

    /// Sign a kubelet request as this master's enclave does (`nodeproxy`).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.enclave.sign(msg)
    }
}

/// Bind `addr`; a just-stopped master's listener is released asynchronously, so retry briefly.
async fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr}");
}

impl Drop for TestMaster {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn attestation(
    State(st): State<St>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let nonce = q.get("nonce").and_then(|n| hex::decode(n).ok());
    match st.enclave.attestation(Some(&st.binding), nonce.as_deref()) {
        Ok(doc) => Json(json!({
            "kind": "simulated",
            "platform": "nitro",
            "document": base64::engine::general_purpose::STANDARD.encode(doc),
            "cluster_id": st.cluster_id,
            "enclave_object_id": null,
        }))
        .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn health() -> Response {
    Json(json!({"status": "healthy"})).into_response()
}

fn configmap(st: &St, name: &str, method: &Method, headers: &HeaderMap) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "1",
            "uid": format!("uid-{}", st.name)},
        "data": {
            "served-by": st.name,
            "method": method.as_str(),
            "authorization": headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or(""),
        }
    })
}

/// `/api/v1/namespaces/default/configmaps[/<name>]`: one object per request naming this master;
/// `?watch=1` sends one ADDED event and stays open.
async fn api(State(st): State<St>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let path = uri.path();
    let Some(rest) = path.strip_prefix("/api/v1/namespaces/default/configmaps") else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    if (rest.is_empty() || rest == "/") && method == Method::POST {
        return (
            StatusCode::CREATED,
            Json(configmap(&st, "created", &method, &headers)),
        )
            .into_response();
    }
    if rest.is_empty() || rest == "/" {
        if watch {
            let ev =
                json!({"type": "ADDED", "object": configmap(&st, &st.name, &method, &headers)});
            // One event, then the watch stays open.
            let first = futures::stream::once(async move {
                Ok::<_, std::io::Error>(bytes::Bytes::from(format!("{ev}\n")))
            })
            .chain(futures::stream::pending());
            return Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(first))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        return Json(json!({
            "apiVersion": "v1", "kind": "ConfigMapList",
            "metadata": {"resourceVersion": "1"},
            "items": [configmap(&st, &st.name, &method, &headers)],
        }))
        .into_response();
    }
    let name = rest.trim_start_matches('/');
    let code = if method == Method::POST {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (code, Json(configmap(&st, name, &method, &headers))).into_response()
}
