//! TLS of the ingress proxy: the certificate of a connection is chosen by SNI among the Secrets
//! (`kubernetes.io/tls`: `tls.crt`, `tls.key`) named by the `spec.tls` entries of the Ingresses
//! served here, for the hosts each entry lists (exact or `*.` wildcard); a TLS entry without
//! hosts, or else the first certificate, serves clients that send no matching name.

use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::routes::host_matches;
use super::IngressError;

/// Parse a PEM certificate chain and key into a key rustls serves with.
pub fn certified_key(secret: &str, crt: &[u8], key: &[u8]) -> Result<CertifiedKey, IngressError> {
    let bad = |reason: String| IngressError::BadCertificate {
        secret: secret.to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(crt)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("tls.crt: {e}")))?;
    if certs.is_empty() {
        return Err(bad("tls.crt holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad(format!("tls.key: {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad(format!("tls.key: {e}")))?;
    Ok(CertifiedKey::new(certs, signer))
}

/// One served certificate and the hosts it is for (empty: the default).
#[derive(Debug, Clone)]
pub struct Served {
    pub hosts: Vec<String>,
    pub key: Arc<CertifiedKey>,
}

/// Chooses the certificate by SNI; updated in place as Ingresses and Secrets change.
#[derive(Debug, Default)]
pub struct SniResolver {
    certs: RwLock<Vec<Served>>,
}

impl SniResolver {
    pub fn set(&self, certs: Vec<Served>) {
        *self.certs.write().unwrap_or_else(|p| p.into_inner()) = certs;
    }

    /// The certificate for `name`: an entry listing it exactly, then one matching it as a
    /// wildcard, then a host-less entry, then the first.
    pub fn choose(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.read().unwrap_or_else(|p| p.into_inner());
        let name = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        if let Some(n) = &name {
            let exact = certs.iter().find(|c| c.hosts.iter().any(|h| h == n));
            let wild = || {
                certs.iter().find(|c| {
                    c.hosts
                        .iter()
                        .any(|h| h.starts_with("*.") && host_matches(h, n))
                })
            };
            if let Some(c) = exact.or_else(wild) {
                return Some(c.key.clone());
            }
        }
        certs
            .iter()
            .find(|c| c.hosts.is_empty())
            .or_else(|| certs.first())
            .map(|c| c.key.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(host: &str) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec![host.to_string()]).unwrap();
        (c.cert.pem(), c.key_pair.serialize_pem())
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_default() {
        let served = |hosts: &[&str]| {
            let (crt, key) = make(hosts.first().copied().unwrap_or("default.test"));
            Served {
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                key: Arc::new(certified_key("s", crt.as_bytes(), key.as_bytes()).unwrap()),
            }
        };
        let (a, w, d) = (
            served(&["a.example.com"]),
            served(&["*.example.com"]),
            served(&[]),
        );
        let r = SniResolver::default();
        assert!(r.choose(Some("a.example.com")).is_none());
        r.set(vec![w.clone(), a.clone(), d.clone()]);
        let is =
            |got: Option<Arc<CertifiedKey>>, want: &Served| Arc::ptr_eq(&got.unwrap(), &want.key);
        assert!(is(r.choose(Some("a.example.com")), &a));
        assert!(is(r.choose(Some("A.Example.com.")), &a));
        assert!(is(r.choose(Some("b.example.com")), &w));
        assert!(is(r.choose(Some("x.b.example.com")), &d));
        assert!(is(r.choose(None), &d));
    }

    #[test]
    fn bad_pem_is_a_typed_error() {
        let (crt, _) = make("a.test");
        let e = certified_key("ns/s", crt.as_bytes(), b"not a key").unwrap_err();
        assert!(matches!(e, IngressError::BadCertificate { ref secret, .. } if secret == "ns/s"));
        let e = certified_key("ns/s", b"", b"").unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
