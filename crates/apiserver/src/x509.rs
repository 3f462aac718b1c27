//! Client-certificate authentication, as upstream's x509 authenticator
//! (staging/src/k8s.io/apiserver/pkg/authentication/request/x509): a certificate chain that
//! verifies against the client CA (the cluster CA, which also signs approved
//! `kubernetes.io/kube-apiserver-client` CSRs) authenticates as user = subject CN, groups =
//! subject O.
//!
//! The TLS handshake only asks for a certificate and checks that the client holds its key
//! ([`RequestClientCert`]); the chain itself is judged per request ([`ClientCertAuthenticator`]),
//! so an expired or foreign certificate is answered with 401 as upstream, rather than a
//! handshake alert, and clients without a certificate (bearer tokens) are unaffected.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::server::User;

#[derive(Debug, thiserror::Error)]
pub enum X509Error {
    #[error("client CA: {0}")]
    Ca(String),
    #[error("verifying certificate: {0}")]
    Verify(#[from] rustls::Error),
    #[error("parsing certificate: {0}")]
    Parse(String),
    #[error("certificate has no common name")]
    NoCommonName,
}

pub use daas_protocol::serve::PeerCertificates;

fn webpki_verifier(ca_pem: &str) -> Result<Arc<dyn ClientCertVerifier>, X509Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let c = c.map_err(|e| X509Error::Ca(e.to_string()))?;
        roots
            .add(c)
            .map_err(|e| X509Error::Ca(format!("adding CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(X509Error::Ca("no CA certificate".into()));
    }
    WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| X509Error::Ca(e.to_string()))
}

/// Verifies client chains against the client CA and maps them to users.
pub struct ClientCertAuthenticator {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCertAuthenticator {
    /// Trust the CA certificates in `ca_pem`.
    pub fn from_ca_pem(ca_pem: &str) -> Result<Self, X509Error> {
        Ok(ClientCertAuthenticator {
            verifier: webpki_verifier(ca_pem)?,
        })
    }

    /// The user a presented chain stands for: the leaf must chain to the CA, be within its
    /// validity window now and allow client authentication; CN is the name, each O a group.
    pub fn authenticate(&self, chain: &[CertificateDer<'_>]) -> Result<User, X509Error> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| X509Error::Parse("empty certificate chain".into()))?;
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())?;
        user_of(leaf)
    }
}

/// CN → name, O → groups (upstream's `CommonNameUserConversion`).
fn user_of(leaf: &CertificateDer<'_>) -> Result<User, X509Error> {
    let (_, cert) =
        X509Certificate::from_der(leaf.as_ref()).map_err(|e| X509Error::Parse(e.to_string()))?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(X509Error::NoCommonName);
    }
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(String::from)
        .collect();
    Ok(User::new(name, groups))
}

/// The handshake side: asks for an optional client certificate (hinting the client CA) and
/// checks the client's signature with the certificate's key; the chain is accepted here and
/// judged per request by [`ClientCertAuthenticator`].
#[derive(Debug)]
pub struct RequestClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl RequestClientCert {
    pub fn from_ca_pem(ca_pem: &str) -> Result<Self, X509Error> {
        Ok(RequestClientCert {
            inner: webpki_verifier(ca_pem)?,
        })
    }
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };

    fn ca(cn: &str) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        (p.self_signed(&key).unwrap(), key)
    }

    fn leaf(
        ca: &(rcgen::Certificate, KeyPair),
        cn: &str,
        orgs: &[&str],
        days: (i64, i64),
    ) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        if !cn.is_empty() {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        for o in orgs {
            p.distinguished_name.push(DnType::OrganizationName, *o);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now + time::Duration::days(days.0);
        p.not_after = now + time::Duration::days(days.1);
        p.signed_by(&key, &ca.0, &ca.1).unwrap().der().clone()
    }

    #[test]
    fn maps_verified_chains_and_refuses_the_rest() {
        let ours = ca("ours");
        let auth = ClientCertAuthenticator::from_ca_pem(&ours.0.pem()).unwrap();
        let u = auth
            .authenticate(&[leaf(&ours, "alice", &["dev"], (-1, 1))])
            .unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.groups, ["dev"]);
        // Expired, not yet valid, foreign CA, no CN, nothing.
        for (what, chain) in [
            ("expired", vec![leaf(&ours, "alice", &[], (-3, -1))]),
            ("not yet valid", vec![leaf(&ours, "alice", &[], (1, 3))]),
            ("foreign", vec![leaf(&ca("other"), "alice", &[], (-1, 1))]),
            ("no CN", vec![leaf(&ours, "", &["dev"], (-1, 1))]),
            ("empty", vec![]),
        ] {
            assert!(auth.authenticate(&chain).is_err(), "{what}");
        }
        assert!(ClientCertAuthenticator::from_ca_pem("").is_err());
    }
}
