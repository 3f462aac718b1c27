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
        let server_cert = sp.signed_by(&server_key, &ca_cert, &ca_key)?;

        let m = TlsMaterial {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            dir: dir.to_path_buf(),
        };
        write_private(&dir.join("ca.key"), &ca_key.serialize_pem())?;
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
}
