//! Attested TLS, client side: before a worker or user sends any credential to a master, it opens
//! TLS, asks the master for a fresh attestation document (with its own nonce), verifies the document
//! against pinned roots and expected PCRs, and checks that the document's user_data is the SHA-256 of
//! the very certificate the TLS handshake presented. Only then is the master's CA trusted.
//!
//! Expected measurement (PCR0..2): taken from the LEDGER by default. The master's answer names its
//! `Enclave` object (an index, nothing more); the client reads that object and the
//! `EnclaveConfig` it was registered under from the ledger, checks the registration is current
//! and is the deployment's current configuration, and requires the document to carry the
//! configuration's PCRs and the registered enclave key. A master that names no enclave is held to
//! the deployment's current configuration. Without a registered configuration the client refuses,
//! unless the user pinned PCRs explicitly (`--expect-pcr`); explicit values are required in
//! addition to the ledger's.
//!
//! The cluster id (credential audience `k3s-daas:<id>`) comes with the answer on the same attested
//! connection.

use std::sync::{Arc, Mutex};

use base64::Engine;
use daas_ledger::contract::{ContractObject, Enclave, EnclaveConfig};
use daas_ledger::Ledger;
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
    #[error("attestation user_data / report_data does not bind the TLS certificate presented by the master")]
    TlsBinding,
    #[error("the master's TLS certificate does not chain to the CA it presented: {0}")]
    Chain(String),
    #[error("no enclave configuration is registered on the ledger and no PCR values were given (--expect-pcr / --expect-measurement): refusing to trust an unpinned measurement")]
    Unpinned,
    #[error("ledger: {0}")]
    Ledger(#[from] daas_ledger::LedgerError),
    #[error("the master names enclave {0}, which is not an Enclave object on the ledger")]
    NoSuchEnclave(String),
    #[error("enclave configuration {0} is not on the ledger")]
    NoSuchConfig(String),
    #[error("the master's enclave {enclave} is registered under configuration {config}, but the ledger's current configuration is {current}")]
    NotCurrentConfig {
        enclave: String,
        config: String,
        current: String,
    },
    #[error("the master's enclave {enclave} was registered under version {registered} of configuration {config}, which is now at version {current}")]
    StaleRegistration {
        enclave: String,
        config: String,
        registered: u64,
        current: u64,
    },
    #[error("PCR{index} pinned with --expect-pcr ({explicit}) disagrees with the ledger's registered configuration ({ledger})")]
    PinConflict {
        index: u16,
        explicit: String,
        ledger: String,
    },
    #[error("the attested enclave key is not the key registered on the ledger for enclave {0}")]
    EnclaveKey(String),
    #[error("the master announced no valid cluster id")]
    ClusterId,
    #[error("the master attests as {0:?}: attested TLS verifies nitro, sev-snp and tdx")]
    UnsupportedPlatform(String),
    #[error("attestation evidence rejected: {0}")]
    Evidence(daas_tee::EvidenceError),
    #[error("the master's enclave {enclave} is registered on the ledger as {ledger}, but the master attests as {answered}")]
    PlatformMismatch {
        enclave: String,
        ledger: String,
        answered: String,
    },
    #[error("{platform} {register} is {actual}, expected {expected}")]
    Measurement {
        platform: String,
        register: String,
        expected: String,
        actual: String,
    },
    #[error("{register} pinned with --expect-measurement ({explicit}) disagrees with the ledger's registered configuration ({ledger})")]
    MeasurementPinConflict {
        register: String,
        explicit: String,
        ledger: String,
    },
}

/// What the client trusts: roots for attestation documents, PCR values pinned explicitly, and the
/// ledger whose registered enclave configuration gives the expected PCRs.
#[derive(Clone)]
pub struct AttestationPolicy {
    pub roots: Vec<RootCert>,
    /// Explicit pins (`--expect-pcr`), required in addition to the ledger's.
    pub expected_pcrs: ExpectedPcrs,
    /// The ledger of the cluster's deployment (None: explicit pins only).
    pub ledger: Option<Arc<dyn Ledger>>,
    /// SEV-SNP / TDX masters: explicit pins, verifiers, verification time.
    pub platforms: crate::attested_platform::PlatformPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Root {
        path: String,
        source: daas_tee::AttestationError,
    },
    #[error("expected PCR{index}: {source}")]
    Pcr {
        index: u16,
        source: hex::FromHexError,
    },
}

impl AttestationPolicy {
    /// The AWS Nitro root, plus `extra_root` (a PEM file, e.g. the simulated enclave's dev root)
    /// when given, the explicitly expected PCR values (hex), and the ledger to read the
    /// registered enclave configuration from.
    pub fn from_options<'a>(
        extra_root: Option<&std::path::Path>,
        expected: impl IntoIterator<Item = (u16, &'a str)>,
        ledger: Option<Arc<dyn Ledger>>,
    ) -> Result<Self, PolicyError> {
        let mut roots = vec![RootCert::aws_nitro()];
        if let Some(p) = extra_root {
            let path = p.display().to_string();
            let pem = std::fs::read_to_string(p).map_err(|source| PolicyError::Read {
                path: path.clone(),
                source,
            })?;
            roots.push(
                RootCert::from_pem(&pem).map_err(|source| PolicyError::Root { path, source })?,
            );
        }
        let mut expected_pcrs = ExpectedPcrs::none();
        for (index, v) in expected {
            expected_pcrs = expected_pcrs
                .with_hex(index, v)
                .map_err(|source| PolicyError::Pcr { index, source })?;
        }
        Ok(AttestationPolicy {
            roots,
            expected_pcrs,
            ledger,
            platforms: Default::default(),
        })
    }
}

/// Where the expected measurement came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeasurementSource {
    /// The ledger's EnclaveConfig (and, when the master named one, its registered Enclave).
    Ledger {
        config: String,
        enclave: Option<String>,
    },
    /// Only `--expect-pcr` values (no configuration registered on the ledger).
    Explicit,
}

/// The PCRs (and enclave key) the ledger requires of this master.
pub struct LedgerPins {
    pub config: EnclaveConfig,
    pub enclave: Option<Enclave>,
}

async fn read_config(
    ledger: &dyn Ledger,
    id: daas_ledger::ObjectId,
) -> Result<EnclaveConfig, AttestError> {
    match ledger
        .get_object(id)
        .await?
        .as_ref()
        .and_then(|o| o.as_contract())
    {
        Some(ContractObject::EnclaveConfig(c)) => Ok(c.clone()),
        _ => Err(AttestError::NoSuchConfig(id.to_string())),
    }
}

/// Read the expected measurement from the ledger (see the module docs). `named`: the Enclave
/// object id the master's answer names, if any.
pub async fn ledger_pins(
    ledger: &dyn Ledger,
    named: Option<&str>,
) -> Result<Option<LedgerPins>, AttestError> {
    let current = ledger.deployment().await?.enclave_config.map(|r| r.id);
    let Some(named) = named else {
        return match current {
            Some(id) => Ok(Some(LedgerPins {
                config: read_config(ledger, id).await?,
                enclave: None,
            })),
            None => Ok(None),
        };
    };
    let id: daas_ledger::ObjectId = named
        .parse()
        .map_err(|_| AttestError::NoSuchEnclave(named.to_string()))?;
    let enclave = match ledger
        .get_object(id)
        .await?
        .as_ref()
        .and_then(|o| o.as_contract())
    {
        Some(ContractObject::Enclave(e)) => e.clone(),
        _ => return Err(AttestError::NoSuchEnclave(named.to_string())),
    };
    if let Some(cur) = current.filter(|c| *c != enclave.config_id) {
        return Err(AttestError::NotCurrentConfig {
            enclave: enclave.id.to_string(),
            config: enclave.config_id.to_string(),
            current: cur.to_string(),
        });
    }
    let config = read_config(ledger, enclave.config_id).await?;
    if !daas_ledger::contract::is_current(&enclave, &config) {
        return Err(AttestError::StaleRegistration {
            enclave: enclave.id.to_string(),
            config: config.id.to_string(),
            registered: enclave.config_version,
            current: config.version,
        });
    }
    Ok(Some(LedgerPins {
        config,
        enclave: Some(enclave),
    }))
}

/// Explicit pins plus the ledger's PCR0..2; refuses when nothing pins the measurement.
pub fn merge_pins(
    explicit: &ExpectedPcrs,
    pins: Option<&LedgerPins>,
) -> Result<ExpectedPcrs, AttestError> {
    let Some(p) = pins else {
        return if explicit.0.is_empty() {
            Err(AttestError::Unpinned)
        } else {
            Ok(explicit.clone())
        };
    };
    let mut out = explicit.clone();
    for (index, v) in [
        (0u16, &p.config.pcr0),
        (1, &p.config.pcr1),
        (2, &p.config.pcr2),
    ] {
        let value: [u8; daas_tee::PCR_LEN] = v.as_slice().try_into().map_err(|_| {
            AttestError::Response(format!(
                "the ledger's configuration {} holds a malformed PCR{index}",
                p.config.id
            ))
        })?;
        if let Some(e) = explicit.0.get(&index).filter(|e| **e != value) {
            return Err(AttestError::PinConflict {
                index,
                explicit: hex::encode(e),
                ledger: hex::encode(value),
            });
        }
        out = out.with(index, value);
    }
    Ok(out)
}

/// A master whose attestation verified, and the TLS trust it yields.
#[derive(Debug, Clone)]
pub struct AttestedMaster {
    pub url: String,
    /// The TEE platform the master attested as.
    pub platform: daas_tee::Platform,
    /// Nitro: the verified document; SEV-SNP / TDX: the same fields from the report (pcrs = the
    /// measurement registers in order, user_data = the 64-byte report data, module_id = the
    /// platform name).
    pub attestation: VerifiedAttestation,
    /// The serving certificate (bound by the attestation).
    pub server_cert_der: Vec<u8>,
    /// The cluster CA (PEM) that signed the serving certificate, to put in kubeconfigs.
    pub ca_pem: String,
    /// The cluster id announced over the attested connection (audience `k3s-daas:<id>`).
    pub cluster_id: String,
    /// Where the expected measurement came from.
    pub measurement_source: MeasurementSource,
}

impl AttestedMaster {
    /// The audience credentials for this cluster carry.
    pub fn audience(&self) -> String {
        daas_ledger::credential::audience(&self.cluster_id)
    }
}

fn host_port(url: &str) -> Result<(String, u16), AttestError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| AttestError::Url(url.into()))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>().map_err(|_| AttestError::Url(url.into()))?,
        ),
        None => (hostport, 443),
    };
    if host.is_empty() {
        return Err(AttestError::Url(url.into()));
    }
    Ok((
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        port,
    ))
}

/// Verify the master at `url` as described in the module docs.
pub async fn attest(url: &str, policy: &AttestationPolicy) -> Result<AttestedMaster, AttestError> {
    attest_at(
        url,
        policy,
        policy.platforms.at_ms.unwrap_or_else(crate::now_ms),
    )
    .await
}

pub async fn attest_at(
    url: &str,
    policy: &AttestationPolicy,
    now_ms: u64,
) -> Result<AttestedMaster, AttestError> {
    let (host, port) = host_port(url)?;
    // Accept the handshake without judging the certificate (that happens after attestation),
    // but record the chain it was shown.
    let chain_seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));
    let record = chain_seen.clone();
    let cfg = crate::tlsverify::CertCheck::new(
        Arc::new(rustls::crypto::ring::default_provider()),
        move |leaf, rest| {
            if let Ok(mut c) = record.lock() {
                *c = std::iter::once(leaf.to_vec())
                    .chain(rest.iter().map(|c| c.to_vec()))
                    .collect();
            }
            Ok(())
        },
    )
    .client_config()
    .map_err(|e| AttestError::Connect(e.to_string()))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| AttestError::Connect(e.to_string()))?;
    let name = ServerName::try_from(host.clone()).map_err(|_| AttestError::Url(url.into()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| AttestError::Connect(format!("tls: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| AttestError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let nonce: [u8; 32] = rand::random();
    let req = hyper::Request::get(format!(
        "/api/v1/tee/attestation?nonce={}",
        hex::encode(nonce)
    ))
    .header("host", format!("{host}:{port}"))
    .body(http_body_util::Empty::<bytes::Bytes>::new())
    .map_err(|e| AttestError::Connect(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| AttestError::Connect(e.to_string()))?;
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| AttestError::Connect(e.to_string()))?
        .to_bytes();
    if code != 200 {
        return Err(AttestError::Http {
            code,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| AttestError::Response(e.to_string()))?;
    let chain = chain_seen.lock().map(|c| c.clone()).unwrap_or_default();
    let leaf = chain.first().cloned().ok_or(AttestError::TlsBinding)?;
    // The answer names its TEE platform (absent: Nitro, as masters before the field).
    let platform = match v["platform"].as_str().unwrap_or("nitro") {
        "nitro" => daas_tee::Platform::Nitro,
        other => other
            .parse::<daas_tee::Platform>()
            .map_err(|_| AttestError::UnsupportedPlatform(other.to_string()))?,
    };
    let (verified, measurement_source) = match platform {
        daas_tee::Platform::Nitro => verify_nitro(&v, policy, &leaf, &nonce, now_ms).await?,
        p => crate::attested_platform::verify_answer(&v, p, policy, &leaf, &nonce, now_ms).await?,
    };
    let cluster_id = v["cluster_id"]
        .as_str()
        .filter(|c| daas_ledger::credential::valid_cluster_id(c))
        .ok_or(AttestError::ClusterId)?
        .to_string();
    // The CA is the last certificate of the presented chain; the leaf must chain to it for this host.
    let ca_der = chain
        .last()
        .filter(|_| chain.len() > 1)
        .cloned()
        .ok_or_else(|| AttestError::Chain("the master presented no CA certificate".into()))?;
    check_chain(&leaf, &ca_der, &host)?;
    let ca_pem = pem_encode(&ca_der);
    Ok(AttestedMaster {
        url: url.to_string(),
        platform,
        attestation: verified,
        server_cert_der: leaf,
        ca_pem,
        cluster_id,
        measurement_source,
    })
}

/// A Nitro answer: the document against the pinned roots and the ledger's / explicit PCRs, our
/// nonce, the registered enclave key and user_data = SHA-256(TLS leaf).
async fn verify_nitro(
    v: &serde_json::Value,
    policy: &AttestationPolicy,
    leaf: &[u8],
    nonce: &[u8],
    now_ms: u64,
) -> Result<(VerifiedAttestation, MeasurementSource), AttestError> {
    let doc = v["document"]
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .ok_or_else(|| AttestError::Response("missing or invalid document".into()))?;
    let pins = match &policy.ledger {
        Some(l) => ledger_pins(l.as_ref(), v["enclave_object_id"].as_str()).await?,
        None => None,
    };
    let expected = merge_pins(&policy.expected_pcrs, pins.as_ref())?;
    let verified = verify_attestation(&doc, &policy.roots, now_ms, &expected)?;
    if verified.nonce.as_deref() != Some(nonce) {
        return Err(AttestError::Nonce);
    }
    if let Some(e) = pins.as_ref().and_then(|p| p.enclave.as_ref()) {
        if verified.public_key.as_deref() != Some(e.pk.as_slice()) {
            return Err(AttestError::EnclaveKey(e.id.to_string()));
        }
    }
    let measurement_source = match &pins {
        Some(p) => MeasurementSource::Ledger {
            config: p.config.id.to_string(),
            enclave: p.enclave.as_ref().map(|e| e.id.to_string()),
        },
        None => MeasurementSource::Explicit,
    };
    let binding = crate::tls_binding(leaf);
    if verified.user_data.as_deref() != Some(&binding[..]) {
        return Err(AttestError::TlsBinding);
    }
    Ok((verified, measurement_source))
}

fn check_chain(leaf: &[u8], ca: &[u8], host: &str) -> Result<(), AttestError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.to_vec()))
        .map_err(|e| AttestError::Chain(e.to_string()))?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| AttestError::Chain(e.to_string()))?;
    let name =
        ServerName::try_from(host.to_string()).map_err(|e| AttestError::Chain(e.to_string()))?;
    verifier
        .verify_server_cert(
            &CertificateDer::from(leaf.to_vec()),
            &[],
            &name,
            &[],
            UnixTime::now(),
        )
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
        assert_eq!(
            host_port("https://127.0.0.1:6443").unwrap(),
            ("127.0.0.1".into(), 6443)
        );
        assert_eq!(
            host_port("https://master.local/x").unwrap(),
            ("master.local".into(), 443)
        );
        assert!(host_port("http://x:1").is_err());
        assert!(host_port("https://:1").is_err());
    }
}
