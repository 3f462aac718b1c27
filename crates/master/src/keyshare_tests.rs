//! Key-share protocol with real simulated enclaves: the crypto, each refusal, and the routes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use daas_tee::{AttestationError, Enclave, SimulatedEnclave, PCR_LEN};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

const M1: [u8; PCR_LEN] = [0x11; PCR_LEN];
const M2: [u8; PCR_LEN] = [0x22; PCR_LEN];
const KEY: [u8; 32] = [0x5a; 32];

struct Lab {
    _dirs: Vec<tempfile::TempDir>,
    platform: std::path::PathBuf,
    server: Arc<KeyShareServer>,
}

fn enclave_on(root: &Path, m: [u8; PCR_LEN]) -> (tempfile::TempDir, SimulatedEnclave) {
    let d = tempfile::tempdir().unwrap();
    let e = SimulatedEnclave::open_with_root(d.path(), m, root).unwrap();
    (d, e)
}

fn lab() -> Lab {
    lab_with_ttl(NONCE_TTL)
}

/// A running master's key-share server (enclave of measurement M1) on a fresh platform root.
fn lab_with_ttl(ttl: Duration) -> Lab {
    let platform = tempfile::tempdir().unwrap();
    let (a_dir, a) = enclave_on(platform.path(), M1);
    let root = a.dev_root();
    let server = Arc::new(
        KeyShareServer::with_roots(Arc::new(a), vec![root], ClusterKey::from_bytes(KEY))
            .with_nonce_ttl(ttl),
    );
    Lab {
        platform: platform.path().to_path_buf(),
        _dirs: vec![platform, a_dir],
        server,
    }
}

impl Lab {
    fn joiner(&mut self, m: [u8; PCR_LEN]) -> SimulatedEnclave {
        let (d, e) = enclave_on(&self.platform, m);
        self._dirs.push(d);
        e
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_enclave_of_the_same_measurement_gets_the_key_encrypted() {
    let mut lab = lab();
    let b = lab.joiner(M1);
    let nonce = lab.server.issue_nonce().unwrap();
    let (j, req) = Joiner::new(&b, &nonce).unwrap();
    let resp = lab.server.share(&req, crate::now_ms()).unwrap();
    let key = j.finish(&resp).unwrap();
    assert_eq!(key.bytes(), &KEY);
    assert_eq!(
        resp.key_id,
        ClusterKey::from_bytes(KEY).sealing_key().key_id_hex()
    );
    // The answer holds the key in no encoding.
    let wire = serde_json::to_vec(&resp).unwrap();
    assert!(!contains(&wire, &KEY));
    assert!(!contains(&wire, hex::encode(KEY).as_bytes()));
    assert!(!contains(&wire, b64().encode(KEY).as_bytes()));
    let ct = b64().decode(&resp.ciphertext).unwrap();
    assert!(!contains(&ct, &KEY));
    assert_eq!(ct.len(), 32 + 16);
}

#[test]
fn another_measurement_is_refused() {
    let mut lab = lab();
    let b = lab.joiner(M2);
    let nonce = lab.server.issue_nonce().unwrap();
    let (_, req) = Joiner::new(&b, &nonce).unwrap();
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::Measurement { index: 0 }), "{e}");
    assert_eq!(e.status(), (403, "Forbidden"));
}

#[test]
fn a_document_from_another_dev_root_is_refused() {
    let lab = lab();
    // Same measurement, but its own platform root (another "vendor").
    let d = tempfile::tempdir().unwrap();
    let b = SimulatedEnclave::open_with_measurement(d.path(), M1).unwrap();
    let nonce = lab.server.issue_nonce().unwrap();
    let (_, req) = Joiner::new(&b, &nonce).unwrap();
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(
        matches!(
            e,
            KeyShareError::Attestation(AttestationError::UntrustedRoot)
        ),
        "{e}"
    );
    assert_eq!(e.status().0, 403);
}

#[test]
fn an_expired_document_is_refused() {
    let mut lab = lab();
    let b = lab.joiner(M1);
    let nonce = lab.server.issue_nonce().unwrap();
    let (_, req) = Joiner::new(&b, &nonce).unwrap();
    let later = crate::now_ms() + 4 * 3600 * 1000;
    let e = lab.server.share(&req, later).unwrap_err();
    assert!(
        matches!(
            e,
            KeyShareError::Attestation(AttestationError::CertificateExpired { .. })
        ),
        "{e}"
    );
}

#[test]
fn a_nonce_is_single_use() {
    let mut lab = lab();
    let b = lab.joiner(M1);
    let nonce = lab.server.issue_nonce().unwrap();
    let (_, req) = Joiner::new(&b, &nonce).unwrap();
    lab.server.share(&req, crate::now_ms()).unwrap();
    // The same request again (a replay), and a fresh document with the used nonce.
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::NonceReplayed), "{e}");
    let (_, req2) = Joiner::new(&b, &nonce).unwrap();
    let e = lab.server.share(&req2, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::NonceReplayed), "{e}");
    assert_eq!(e.status().0, 403);
}

#[test]
fn an_expired_nonce_is_refused() {
    let mut lab = lab_with_ttl(Duration::from_millis(50));
    let b = lab.joiner(M1);
    let nonce = lab.server.issue_nonce().unwrap();
    let (_, req) = Joiner::new(&b, &nonce).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::NonceExpired), "{e}");
    assert_eq!(e.status().0, 403);
}

#[test]
fn unknown_and_missing_nonces_are_refused() {
    let mut lab = lab();
    let b = lab.joiner(M1);
    let (_, req) = Joiner::new(&b, &[7u8; NONCE_LEN]).unwrap();
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::NonceUnknown), "{e}");
    // A nonce of another length is unknown too.
    let (_, req) = Joiner::new(&b, b"short").unwrap();
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::NonceUnknown), "{e}");
    // A document without a nonce.
    let (_, mut req) = Joiner::new(&b, &[7u8; NONCE_LEN]).unwrap();
    let pk = decode32("pk", &req.x25519_public_key).unwrap();
    req.document = b64().encode(b.attestation(Some(&user_data(&pk)), None).unwrap());
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::NonceMissing), "{e}");
    assert_eq!(e.status().0, 403);
}

#[test]
fn user_data_must_bind_the_offered_key() {
    let mut lab = lab();
    let b = lab.joiner(M1);
    // The document binds one key, the request offers another (a relay swapping in its own key).
    let nonce = lab.server.issue_nonce().unwrap();
    let (_, mut req) = Joiner::new(&b, &nonce).unwrap();
    req.x25519_public_key = b64().encode([9u8; 32]);
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::Binding), "{e}");
    assert_eq!(e.status().0, 403);
    // The key without the domain-separation label (a document made for something else).
    let nonce = lab.server.issue_nonce().unwrap();
    let (_, mut req) = Joiner::new(&b, &nonce).unwrap();
    let pk = decode32("pk", &req.x25519_public_key).unwrap();
    req.document = b64().encode(b.attestation(Some(&pk), Some(&nonce)).unwrap());
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::Binding), "{e}");
}

#[test]
fn a_low_order_key_is_malformed() {
    let mut lab = lab();
    let b = lab.joiner(M1);
    let nonce = lab.server.issue_nonce().unwrap();
    let zero = [0u8; 32];
    let req = ShareRequest {
        document: b64().encode(
            b.attestation(Some(&user_data(&zero)), Some(&nonce))
                .unwrap(),
        ),
        x25519_public_key: b64().encode(zero),
    };
    let e = lab.server.share(&req, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::Malformed(_)), "{e}");
    assert_eq!(e.status(), (400, "BadRequest"));
}

#[test]
fn a_tampered_or_misdirected_answer_does_not_decrypt() {
    let mut lab = lab();
    let b = lab.joiner(M1);
    let share = |lab: &Lab| {
        let nonce = lab.server.issue_nonce().unwrap();
        let (j, req) = Joiner::new(&b, &nonce).unwrap();
        (j, lab.server.share(&req, crate::now_ms()).unwrap())
    };
    // Ciphertext flipped.
    let (j, mut resp) = share(&lab);
    let mut ct = b64().decode(&resp.ciphertext).unwrap();
    ct[3] ^= 1;
    resp.ciphertext = b64().encode(ct);
    assert!(matches!(j.finish(&resp), Err(KeyShareError::Decrypt)));
    // Key id changed (it is authenticated data).
    let (j, mut resp) = share(&lab);
    resp.key_id = "00".repeat(resp.key_id.len() / 2);
    assert!(matches!(j.finish(&resp), Err(KeyShareError::Decrypt)));
    // Server key replaced.
    let (j, mut resp) = share(&lab);
    let other = x25519_dalek::PublicKey::from(&x25519_dalek::EphemeralSecret::random_from_rng(
        rand::rngs::OsRng,
    ));
    resp.server_public_key = b64().encode(other.as_bytes());
    assert!(matches!(j.finish(&resp), Err(KeyShareError::Decrypt)));
    // Another joiner's answer.
    let (j1, _) = share(&lab);
    let (_, resp2) = share(&lab);
    assert!(matches!(j1.finish(&resp2), Err(KeyShareError::Decrypt)));
}

#[test]
fn malformed_requests_are_refused_with_400() {
    let lab = lab();
    let bad = ShareRequest {
        document: "not base64!".into(),
        x25519_public_key: b64().encode([1u8; 32]),
    };
    let e = lab.server.share(&bad, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::Malformed(_)), "{e}");
    let bad = ShareRequest {
        document: b64().encode(b"\x84garbage"),
        x25519_public_key: b64().encode([1u8; 31]),
    };
    assert!(matches!(
        lab.server.share(&bad, crate::now_ms()),
        Err(KeyShareError::Malformed(_))
    ));
    let bad = ShareRequest {
        document: b64().encode(b"\x84garbage"),
        x25519_public_key: b64().encode([1u8; 32]),
    };
    let e = lab.server.share(&bad, crate::now_ms()).unwrap_err();
    assert!(matches!(e, KeyShareError::Attestation(_)), "{e}");
}

#[test]
fn outstanding_nonces_are_bounded() {
    let lab = lab();
    for _ in 0..MAX_NONCES {
        lab.server.issue_nonce().unwrap();
    }
    let e = lab.server.issue_nonce().unwrap_err();
    assert!(matches!(e, KeyShareError::TooManyNonces));
    assert_eq!(e.status(), (429, "TooManyRequests"));
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let code = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn routes_answer_with_status_codes() {
    let mut lab = lab();
    let same = lab.joiner(M1);
    let other = lab.joiner(M2);
    let app = router(lab.server.clone());

    let nonce = |v: &serde_json::Value| hex::decode(v["nonce"].as_str().unwrap()).unwrap();

    // A nonce is only handed out by POST.
    let (code, _) = call(&app, Method::GET, NONCE_PATH, vec![]).await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    let (code, v) = call(&app, Method::POST, NONCE_PATH, vec![]).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(v["expires_in_seconds"], NONCE_TTL.as_secs());
    let n1 = nonce(&v);
    assert_eq!(n1.len(), NONCE_LEN);

    // Malformed body: 400 Status.
    let (code, v) = call(
        &app,
        Method::POST,
        SHARE_PATH,
        b"{\"document\": 1}".to_vec(),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        (v["kind"].as_str(), v["reason"].as_str(), v["code"].as_u64()),
        (Some("Status"), Some("BadRequest"), Some(400))
    );

    // Another measurement: 403 Status.
    let (_, req) = Joiner::new(&other, &n1).unwrap();
    let (code, v) = call(
        &app,
        Method::POST,
        SHARE_PATH,
        serde_json::to_vec(&req).unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(v["reason"], "Forbidden");
    assert!(v["message"].as_str().unwrap().contains("PCR0"), "{v}");

    // Same measurement, fresh nonce: the key; then the replay: 403.
    let (_, v) = call(&app, Method::POST, NONCE_PATH, vec![]).await;
    let (j, req) = Joiner::new(&same, &nonce(&v)).unwrap();
    let body = serde_json::to_vec(&req).unwrap();
    let (code, v) = call(&app, Method::POST, SHARE_PATH, body.clone()).await;
    assert_eq!(code, StatusCode::OK);
    let resp: ShareResponse = serde_json::from_value(v).unwrap();
    assert_eq!(j.finish(&resp).unwrap().bytes(), &KEY);
    let (code, v) = call(&app, Method::POST, SHARE_PATH, body).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(
        v["message"].as_str().unwrap().contains("already used"),
        "{v}"
    );
}
