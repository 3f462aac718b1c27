//! The attestation answer of a master on SEV-SNP or TDX (`daas master --tee sev-snp|tdx`): a
//! fresh report / quote from the [`daas_tee::EvidenceProvider`] the master was started with,
//! whose 64-byte report data is [`daas_tee::report_data_binding`]`(SHA-256(TLS leaf DER),
//! nonce, enclave Ed25519 key)`, plus what the client needs to verify it offline (SNP: the
//! VCEK; TDX: the DCAP collateral), encoded as [`daas_tee::Evidence::encode`].
//!
//! Answer fields: `platform` (`sev-snp` / `tdx`), `evidence` (base64), `public_key` (the
//! enclave's Ed25519 key, hex), `tls_certificate_sha256`, `cluster_id`, `audience`,
//! `enclave_object_id` (an index into the ledger, as on Nitro).

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use daas_tee::EvidenceProvider;
use serde_json::json;

use crate::seed::SeedState;

/// The 64-byte report data this master asks its platform for.
pub fn report_data(st: &SeedState, nonce: Option<&[u8]>) -> [u8; 64] {
    daas_tee::report_data_binding(&st.tls_cert_sha256, nonce, &st.enclave.enclave.public_key())
}

#[tracing::instrument(skip_all, fields(platform = %provider.platform()))]
pub(crate) async fn answer(
    st: &SeedState,
    provider: Arc<dyn EvidenceProvider>,
    nonce: Option<Vec<u8>>,
) -> Response {
    let rd = report_data(st, nonce.as_deref());
    let platform = provider.platform();
    let evidence = tokio::task::spawn_blocking(move || provider.evidence(&rd)).await;
    match evidence {
        Ok(Ok(e)) => Json(json!({
            "kind": st.enclave.kind,
            "platform": platform.name(),
            "evidence": base64::engine::general_purpose::STANDARD.encode(e.encode()),
            "public_key": hex::encode(st.enclave.enclave.public_key()),
            "tls_certificate_sha256": hex::encode(st.tls_cert_sha256),
            "cluster_id": st.cluster_id,
            "audience": daas_ledger::credential::audience(&st.cluster_id),
            "enclave_object_id": st.enclave_object_id(),
        }))
        .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "platform evidence failed");
            daas_apiserver::ApiError::internal(format!("attestation failed: {e}")).into_response()
        }
        Err(e) => daas_apiserver::ApiError::internal(e.to_string()).into_response(),
    }
}
