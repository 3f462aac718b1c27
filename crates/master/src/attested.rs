//! Attested TLS, client side: before a worker or user sends any credential to a master, it opens
//! TLS, asks the master for a fresh attestation document (with its own nonce), verifies the document
//! against pinned roots and expected PCRs, and checks that the document's user_data is the SHA-256 of
//! the very certificate the TLS handshake presented. Only then is the master's CA trusted.

use std::sync::{Arc, Mutex};

use base64::Engine;
use daas_tee::{verify_attestation, ExpectedPcrs, RootCert, VerifiedAttestation};
use http_body_util::BodyExt;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("invalid master URL {0}: expected https://host:port")]
    Url(String),
    #[error("cannot reach master: {0}")]
    Connect(String),
    #[error("master answered {code}: {body}")]
    Http { code: u16, body: String },
    #[error("malformed attestation response: {0}")]
    Response(String),
    #[error("attestation document rejected: {0}")]
    Document(#[from] daas_tee::AttestationError),
    #[error("attestation nonce does not match the one sent (replayed document?)")]
    Nonce,
    #[error("attestation user_data does not bind the TLS certificate presented by the master")]
    TlsBinding,
    #[error("the master's TLS certificate does not chain to the CA it presented: {0}")]
    Chain(String),
}

/// What the client trusts: roots for attestation documents and the PCR values it expects.
#[derive(Clone)]
pub struct AttestationPolicy {
    pub roots: Vec<RootCert>,
    pub expected_pcrs: ExpectedPcrs,
}

impl AttestationPolicy {
    /// The AWS Nitro root, plus `extra_root` (a PEM file, e.g. the simulated enclave's dev root)
    /// when given, and the expected PCR values (hex).
    pub fn from_options<'a>(
        extra_root: Option<&std::path::Path>,
        expected: impl IntoIterator<Item = (u16, &'a str)>,
    ) -> Result<Self, String> {
        let mut roots = vec![RootCert::aws_nitro()];
        if let Some(p) = extra_root {
            let pem = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            roots.push(RootCert::from_pem(&pem).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        let mut expected_pcrs = ExpectedPcrs::none();
        for (i, v) in expected {
            expected_pcrs = expected_pcrs.with_hex(i, v).map_err(|e| format!("expected PCR{i}: {e}"))?;
        }
        Ok(AttestationPolicy { roots, expected_pcrs })
    }
}

/// A master whose attestation verified, and the TLS trust it yields.
#[derive(Debug, Clone)]
pub struct AttestedMaster {
    pub url: String,
    pub attestation: VerifiedAttestation,
    /// The serving certificate (bound by the attestation).
    pub server_cert_der: Vec<u8>,
    /// The cluster CA (PEM) that signed the serving certificate, to put in kubeconfigs.
    pub ca_pem: String,
}

fn host_port(url: &str) -> Result<(String, u16), AttestError> {
    let rest = url.strip_prefix("https://").ok_or_else(|| AttestError::Url(url.into()))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| AttestError::Url(url.into()))?),
        None => (hostport, 443),
    };
    if host.is_empty() {
        return Err(AttestError::Url(url.into()));
    }
    Ok((host.trim_matches(|c| c == '[' || c == ']').to_string(), port))
}

/// Verify the master at `url` as described in the module docs.
pub async fn attest(url: &str, policy: &AttestationPolicy) -> Result<AttestedMaster, AttestError> {
    attest_at(url, policy, crate::now_ms()).await
}

pub async fn attest_at(url: &str, policy: &AttestationPolicy, now_ms: u64) -> Result<AttestedMaster, AttestError> {
    let (host, port) = host_port(url)?;
    // Accept the handshake without judging the certificate (that happens after attestation),
    // but record the chain it was shown.
    let chain_seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));
    let record = chain_seen.clone();
    let cfg = crate::tlsverify::CertCheck::new(Arc::new(rustls::crypto::ring::default_provider()), move |leaf, rest| {
        if let Ok(mut c) = record.lock() {
            *c = std::iter::once(leaf.to_vec()).chain(rest.iter().map(|c| c.to_vec())).collect();
        }
        Ok(())
    })
    .client_config()
    .map_err(|e| AttestError::Connect(e.to_string()))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| AttestError::Connect(e.to_string()))?;
    let name = ServerName::try_from(host.clone()).map_err(|_| AttestError::Url(url.into()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| AttestError::Connect(format!("tls: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| AttestError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let nonce: [u8; 32] = rand::random();
    let req = hyper::Request::get(format!("/api/v1/tee/attestation?nonce={}", hex::encode(nonce)))
        .header("host", format!("{host}:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| AttestError::Connect(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| AttestError::Connect(e.to_string()))?;
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| AttestError::Connect(e.to_string()))?.to_bytes();
    if code != 200 {
        return Err(AttestError::Http { code, body: String::from_utf8_lossy(&body).into_owned() });
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| AttestError::Response(e.to_string()))?;
    let doc = v["document"]
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .ok_or_else(|| AttestError::Response("missing or invalid document".into()))?;
    let verified = verify_attestation(&doc, &policy.roots, now_ms, &policy.expected_pcrs)?;
    if verified.nonce.as_deref() != Some(&nonce[..]) {
        return Err(AttestError::Nonce);
    }
    let chain = chain_seen.lock().map(|c| c.clone()).unwrap_or_default();
    let leaf = chain.first().cloned().ok_or(AttestError::TlsBinding)?;
    let binding = crate::seed::tls_binding(&leaf);
    if verified.user_data.as_deref() != Some(&binding[..]) {
        return Err(AttestError::TlsBinding);
    }
    // The CA is the last certificate of the presented chain; the leaf must chain to it for this host.
    let ca_der = chain.last().filter(|_| chain.len() > 1).cloned().ok_or_else(|| {
        AttestError::Chain("the master presented no CA certificate".into())
    })?;
    check_chain(&leaf, &ca_der, &host)?;
    let ca_pem = pem_encode(&ca_der);
    Ok(AttestedMaster { url: url.to_string(), attestation: verified, server_cert_der: leaf, ca_pem })
}

fn check_chain(leaf: &[u8], ca: &[u8], host: &str) -> Result<(), AttestError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.to_vec())).map_err(|e| AttestError::Chain(e.to_string()))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| AttestError::Chain(e.to_string()))?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| AttestError::Chain(e.to_string()))?;
    verifier
        .verify_server_cert(&CertificateDer::from(leaf.to_vec()), &[], &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| AttestError::Chain(e.to_string()))
}

fn pem_encode(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(host_port("https://127.0.0.1:6443").unwrap(), ("127.0.0.1".into(), 6443));
        assert_eq!(host_port("https://master.local/x").unwrap(), ("master.local".into(), 443));
        assert!(host_port("http://x:1").is_err());
        assert!(host_port("https://:1").is_err());
    }
}
