//! What the K3s-DaaS master and agent share, so the agent does not link the master, the API
//! server, the store or the controllers: the attested-TLS client, the node-proxy request
//! signing, the HTTPS accept loop, the metrics primitives, owner-only files and the safe sysctls.

pub mod attested;
pub mod attested_platform;
pub mod cluster;
pub mod files;
pub mod localpath;
pub mod metrics;
pub mod nodeproxy;
pub mod podstart;
pub mod query;
pub mod serve;
pub mod sysctl;
#[cfg(any(test, feature = "testmaster"))]
pub mod testmaster;
pub mod tlsverify;

use sha2::{Digest, Sha256};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a master's attestation document binds in its user_data: the SHA-256 of its serving
/// certificate (DER).
pub fn tls_binding(cert_der: &[u8]) -> [u8; 32] {
    Sha256::digest(cert_der).into()
}
