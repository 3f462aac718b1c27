//! A real HTTPS JSON server on 127.0.0.1 for webhook tests (admission and conversion webhooks):
//! a fresh test CA, a serving certificate for the given name, and every request's path and JSON
//! body recorded before `answer` replies.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// A running server: its address, the CA bundle (base64 PEM, as `caBundle` takes it) and the
/// (path, body) of every request it got.
pub struct HookServer {
    pub addr: SocketAddr,
    pub ca: String,
    pub seen: Arc<Mutex<Vec<(String, Value)>>>,
}

/// Start a server whose certificate names `san`, replying with `answer(path, body)`.
pub async fn start<F, Fut>(san: rcgen::SanType, answer: F) -> HookServer
where
    F: Fn(String, Value) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Value> + Send,
{
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![san];
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let recorded = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let recorded = recorded.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let recorded = recorded.clone();
                    let answer = answer.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        recorded
                            .lock()
                            .unwrap()
                            .push((path.clone(), review.clone()));
                        let out = answer(path, review).await;
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(bytes::Bytes::from(
                            serde_json::to_vec(&out).unwrap(),
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    HookServer {
        addr,
        ca: base64::engine::general_purpose::STANDARD.encode(ca.pem()),
        seen,
    }
}
