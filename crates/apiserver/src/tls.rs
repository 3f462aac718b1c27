//! Generated cluster CA and serving certificate, persisted in the data directory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("tls file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tls material in {0} is unreadable: {1}")]
    Parse(PathBuf, String),
    #[error("client CA: {0}")]
    ClientCa(#[from] crate::x509::X509Error),
    #[error("rustls configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// PEM material for the cluster CA and the API server's serving certificate.
#[derive(Clone)]
pub struct TlsMaterial {
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub dir: PathBuf,
}

fn write(path: &Path, data: &str) -> Result<(), TlsError> {
    std::fs::write(path, data).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write a private key, owner-only from creation on.
fn write_private(path: &Path, data: &str) -> Result<(), TlsError> {
    crate::files::write_private(path, data.as_bytes()).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl TlsMaterial {
    /// Load `dir/{ca.crt,server.crt,server.key}`, or generate a fresh CA and serving certificate
    /// (valid for `localhost`, 127.0.0.1 and the given extra names) when they are absent.
    pub fn load_or_generate(dir: &Path, extra_sans: &[String]) -> Result<Self, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (ca_p, crt_p, key_p) = (
            dir.join("ca.crt"),
            dir.join("server.crt"),
            dir.join("server.key"),
        );
        if ca_p.exists() && crt_p.exists() && key_p.exists() {
            return Ok(TlsMaterial {
                ca_cert_pem: read(&ca_p)?,
                server_cert_pem: read(&crt_p)?,
                server_key_pem: read(&key_p)?,
                dir: dir.to_path_buf(),
            });
        }
        let (ca_cert, ca_key) = new_ca()?;
        let (server_cert_pem, server_key_pem) = issue_server(&ca_cert, &ca_key, extra_sans)?;
        let m = TlsMaterial {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem,
            server_key_pem,
            dir: dir.to_path_buf(),
        };
        write_private(&dir.join("ca.key"), &ca_key.serialize_pem())?;
        write_private(&key_p, &m.server_key_pem)?;
        write(&crt_p, &m.server_cert_pem)?;
        write(&ca_p, &m.ca_cert_pem)?;
        Ok(m)
    }

    /// This API server's serving material under the cluster CA `ca` (shared by every master of
    /// the cluster): `dir/server.{crt,key}` are reused while `dir/ca.crt` is `ca`'s certificate,
    /// else a serving certificate for `localhost`, 127.0.0.1, the `kubernetes` Service names and
    /// `extra_sans` is issued and written. The CA key is never written to `dir`.
    pub fn load_or_issue(
        dir: &Path,
        ca: &ClusterCa,
        extra_sans: &[String],
    ) -> Result<Self, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (ca_p, crt_p, key_p) = (
            dir.join("ca.crt"),
            dir.join("server.crt"),
            dir.join("server.key"),
        );
        let same_ca = std::fs::read_to_string(&ca_p)
            .map(|c| c.trim() == ca.cert_pem.trim())
            .unwrap_or(false);
        if same_ca && crt_p.exists() && key_p.exists() {
            return Ok(TlsMaterial {
                ca_cert_pem: ca.cert_pem.clone(),
                server_cert_pem: read(&crt_p)?,
                server_key_pem: read(&key_p)?,
                dir: dir.to_path_buf(),
            });
        }
        let signing = crate::registry::csr::SigningCa::from_pem(&ca.cert_pem, &ca.key_pem)
            .map_err(|e| TlsError::Parse(dir.to_path_buf(), format!("cluster CA: {e}")))?;
        let (ca_cert, ca_key) = signing.issuer();
        let (server_cert_pem, server_key_pem) = issue_server(ca_cert, ca_key, extra_sans)?;
        let m = TlsMaterial {
            ca_cert_pem: ca.cert_pem.clone(),
            server_cert_pem,
            server_key_pem,
            dir: dir.to_path_buf(),
        };
        write_private(&key_p, &m.server_key_pem)?;
        write(&crt_p, &m.server_cert_pem)?;
        write(&ca_p, &m.ca_cert_pem)?;
        Ok(m)
    }

    /// DER of the serving (leaf) certificate: what attestation binds via its SHA-256.
    pub fn server_cert_der(&self) -> Result<Vec<u8>, TlsError> {
        let mut it =
            rustls::pki_types::pem::PemObject::pem_slice_iter(self.server_cert_pem.as_bytes());
        match it.next() {
            Some(Ok(c)) => {
                let c: rustls::pki_types::CertificateDer<'static> = c;
                Ok(c.to_vec())
            }
            Some(Err(e)) => Err(TlsError::Parse(self.dir.clone(), e.to_string())),
            None => Err(TlsError::Parse(
                self.dir.clone(),
                "no certificate in server.crt".into(),
            )),
        }
    }

    /// The authenticator of client certificates issued by the cluster CA.
    pub fn client_cert_authenticator(
        &self,
    ) -> Result<Arc<crate::x509::ClientCertAuthenticator>, TlsError> {
        Ok(Arc::new(crate::x509::ClientCertAuthenticator::from_ca_pem(
            &self.ca_cert_pem,
        )?))
    }

    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        // Serve the chain [leaf, CA]: attested clients learn the CA from the handshake.
        let chain_pem = format!("{}{}", self.server_cert_pem, self.ca_cert_pem);
        let certs: Vec<rustls::pki_types::CertificateDer<'static>> =
            rustls::pki_types::pem::PemObject::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| TlsError::Parse(self.dir.clone(), e.to_string()))?;
        let key = <rustls::pki_types::PrivateKeyDer<'static> as rustls::pki_types::pem::PemObject>::from_pem_slice(
            self.server_key_pem.as_bytes(),
        )
        .map_err(|e| TlsError::Parse(self.dir.clone(), e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            // Client certificates are optional (tokens keep working); the chain is judged per
            // request against the cluster CA (crate::x509).
            .with_client_cert_verifier(Arc::new(crate::x509::RequestClientCert::from_ca_pem(
                &self.ca_cert_pem,
            )?))
            .with_single_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// A fresh cluster CA (self-signed, `CN=k3s-daas-ca`).
fn new_ca() -> Result<(rcgen::Certificate, KeyPair), TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "k3s-daas-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    Ok((ca_cert, ca_key))
}

/// A serving certificate (PEM certificate, PEM key) signed by the CA.
fn issue_server(
    ca_cert: &rcgen::Certificate,
    ca_key: &KeyPair,
    extra_sans: &[String],
) -> Result<(String, String), TlsError> {
    let mut names = vec![
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ];
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    for n in extra_sans {
        match n.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => names.push(n.clone()),
        }
    }
    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(names)?;
    sp.distinguished_name
        .push(DnType::CommonName, "k3s-daas-apiserver");
    for ip in ips {
        sp.subject_alt_names.push(SanType::IpAddress(ip));
    }
    sp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, ca_cert, ca_key)?;
    Ok((server_cert.pem(), server_key.serialize_pem()))
}

/// The cluster CA (certificate and key, PEM): one per cluster, kept in the sealed store and
/// shared by every master; each master signs its own serving certificate with it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

impl ClusterCa {
    pub fn generate() -> Result<Self, TlsError> {
        let (cert, key) = new_ca()?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA a single-master data directory generated before it was kept in the store
    /// (`dir/ca.crt` and `dir/ca.key`), if both are there.
    pub fn load_legacy(dir: &Path) -> Result<Option<Self>, TlsError> {
        let (c, k) = (dir.join("ca.crt"), dir.join("ca.key"));
        if !(c.exists() && k.exists()) {
            return Ok(None);
        }
        Ok(Some(ClusterCa {
            cert_pem: read(&c)?,
            key_pem: read(&k)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let a =
            TlsMaterial::load_or_generate(dir.path(), &["10.0.0.5".into(), "master.local".into()])
                .unwrap();
        let b = TlsMaterial::load_or_generate(dir.path(), &[]).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.server_key_pem, b.server_key_pem);
        #[cfg(unix)]
        for f in ["ca.key", "server.key"] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f} mode {mode:o}");
        }
        assert!(a.server_config().is_ok());
    }

    /// In-cluster clients reach the API server as `kubernetes.default.svc` (and the other names
    /// of the `kubernetes` Service) or by its IP, given as an extra SAN.
    #[test]
    fn serving_certificate_names_the_kubernetes_service() {
        let dir = tempfile::tempdir().unwrap();
        let m = TlsMaterial::load_or_generate(dir.path(), &["10.43.0.1".into()]).unwrap();
        let der = x509_parser::pem::parse_x509_pem(m.server_cert_pem.as_bytes())
            .unwrap()
            .1
            .contents;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<String> = san
            .general_names
            .iter()
            .map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(ip) => format!("{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        for want in [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "[10, 43, 0, 1]",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
    }

    /// Two masters of one cluster: one CA, two serving certificates, each chaining to the CA;
    /// the serving material is reused until the CA changes. The CA key never lands in `dir`.
    #[test]
    fn serving_certificates_under_a_shared_ca() {
        let ca = ClusterCa::generate().unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ma = TlsMaterial::load_or_issue(a.path(), &ca, &["10.0.0.1".into()]).unwrap();
        let mb = TlsMaterial::load_or_issue(b.path(), &ca, &["10.0.0.2".into()]).unwrap();
        assert_eq!(ma.ca_cert_pem, mb.ca_cert_pem);
        assert_ne!(ma.server_cert_pem, mb.server_cert_pem);
        assert!(!a.path().join("ca.key").exists());
        let ca_der = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes())
            .unwrap()
            .1
            .contents;
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        for m in [&ma, &mb] {
            let der = m.server_cert_der().unwrap();
            let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
            c.verify_signature(Some(ca_cert.public_key())).unwrap();
            assert_eq!(c.issuer(), ca_cert.subject());
            assert!(m.server_config().is_ok());
        }
        let again = TlsMaterial::load_or_issue(a.path(), &ca, &[]).unwrap();
        assert_eq!(again.server_cert_pem, ma.server_cert_pem);
        // Another CA (a restored or re-created cluster): a new serving certificate.
        let other = ClusterCa::generate().unwrap();
        let re = TlsMaterial::load_or_issue(a.path(), &other, &[]).unwrap();
        assert_ne!(re.server_cert_pem, ma.server_cert_pem);
        assert_eq!(re.ca_cert_pem, other.cert_pem);
        // A CA a single-master data directory made before is picked up from there.
        let legacy = tempfile::tempdir().unwrap();
        let old = TlsMaterial::load_or_generate(legacy.path(), &[]).unwrap();
        let adopted = ClusterCa::load_legacy(legacy.path()).unwrap().unwrap();
        assert_eq!(adopted.cert_pem, old.ca_cert_pem);
        assert!(ClusterCa::load_legacy(a.path()).unwrap().is_none());
    }
}
