//! What the master's node proxy and the agent's kubelet API agree on: the node annotation that
//! publishes the agent's serving-certificate hash, and how the master signs each request it
//! forwards (the agent verifies the signature against the attested enclave key).

/// Node annotation: hex SHA-256 of the agent's serving certificate (the master pins it).
pub const KUBELET_CERT_ANNOTATION: &str = "k3s-daas.io/kubelet-cert-sha256";
/// Base64 Ed25519 signature of [`request_message`] by the master's enclave key.
pub const SIGNATURE_HEADER: &str = "x-daas-signature";
/// Milliseconds since the epoch at which the master signed the request.
pub const TIMESTAMP_HEADER: &str = "x-daas-timestamp";

/// Bytes the master signs for a request to an agent.
pub fn request_message(method: &str, path_and_query: &str, timestamp_ms: u64) -> Vec<u8> {
    format!("k3s-daas-node-request\n{method}\n{path_and_query}\n{timestamp_ms}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_binds_method_path_and_time() {
        let m = request_message("GET", "/containerLogs/ns/p/c?tailLines=5", 42);
        assert_eq!(
            m,
            b"k3s-daas-node-request\nGET\n/containerLogs/ns/p/c?tailLines=5\n42".to_vec()
        );
        assert_ne!(
            m,
            request_message("POST", "/containerLogs/ns/p/c?tailLines=5", 42)
        );
        assert_ne!(m, request_message("GET", "/containerLogs/ns/p/c", 42));
        assert_ne!(
            m,
            request_message("GET", "/containerLogs/ns/p/c?tailLines=5", 43)
        );
    }
}
