//! The CSR signing controller (pkg/controller/certificates/signer): approved
//! CertificateSigningRequests for `kubernetes.io/kube-apiserver-client` and
//! `kubernetes.io/kube-apiserver-client-kubelet` get a certificate from the cluster CA in
//! `status.certificate`; a request the signer's rules refuse gets a `Failed` condition
//! (reason `SignerValidationFailure`). Denied, failed and already issued requests are left alone.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use daas_apiserver::registry::csr::{wants_signing, CsrError, SigningCa, FAILED};
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::name;
use crate::Controller;

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

pub struct CsrSigner {
    client: LocalClient,
    ca: SigningCa,
}

impl CsrSigner {
    pub fn new(client: LocalClient, ca: SigningCa) -> Self {
        CsrSigner { client, ca }
    }

    /// The `/status` write that records the outcome of signing `csr`.
    fn outcome(&self, csr: &Value) -> Value {
        let mut out = csr.clone();
        if !out["status"].is_object() {
            out["status"] = json!({});
        }
        match self.ca.sign(csr) {
            Ok(pem) => {
                out["status"]["certificate"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(pem));
            }
            Err(e) => {
                let (reason, message) = match &e {
                    CsrError::Signer(m) => ("SignerValidationFailure", m.clone()),
                    // An invalid request never passed validation; a signing error is ours.
                    other => ("SignerError", other.to_string()),
                };
                tracing::info!(csr = name(csr), error = %e, "CSR not signed");
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let mut conds = out["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                conds.push(json!({"type": FAILED, "status": "True", "reason": reason,
                    "message": message, "lastUpdateTime": now, "lastTransitionTime": now}));
                out["status"]["conditions"] = json!(conds);
            }
        }
        out
    }
}

#[async_trait]
impl Controller for CsrSigner {
    fn name(&self) -> &'static str {
        "csrsigning"
    }

    fn watches(&self) -> Vec<String> {
        vec![CSRS.to_string()]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let mut retry = false;
        for csr in self.client.list(CSRS).await? {
            if !wants_signing(&csr) {
                continue;
            }
            let update = self.outcome(&csr);
            let path = format!("{CSRS}/{}/status", name(&csr));
            match self.client.update(&path, &update).await {
                Ok(_) => {}
                // Changed or deleted meanwhile: the watch brings the next pass.
                Err(e) if e.code == 409 || e.code == 404 => retry = true,
                Err(e) => return Err(e),
            }
        }
        Ok(retry.then_some(Duration::from_secs(1)))
    }
}
