//! End-to-end: service-account tokens, TokenReview, OIDC discovery and CSRs with the real
//! kubectl against a real `daas up`.

use crate::common;

use common::Cluster;

fn csr_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.serialize_request(&key).expect("csr").pem().expect("pem")
}

fn csr_manifest(name: &str, cn: &str) -> String {
    use base64::Engine;
    let req = base64::engine::general_purpose::STANDARD.encode(csr_pem(cn));
    format!(
        r#"{{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
  "metadata": {{"name": "{name}"}},
  "spec": {{"request": "{req}", "signerName": "kubernetes.io/kube-apiserver-client",
    "expirationSeconds": 86400, "usages": ["client auth"]}}}}"#
    )
}

/// Add an Approved/Denied condition through `certificatesigningrequests/{name}/approval`.
fn decide(c: &Cluster, name: &str, ty: &str) {
    let mut csr: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "csr", name, "-o", "json"])).expect("CSR JSON");
    csr["status"]["conditions"] = serde_json::json!([{"type": ty, "status": "True",
        "reason": "KubectlE2E", "message": "decided by the e2e test"}]);
    c.ok_stdin(
        &[
            "replace",
            "--raw",
            &format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"),
            "-f",
            "-",
        ],
        &csr.to_string(),
    );
}

#[test]
fn kubectl_service_account_tokens_and_csrs() {
    let c = Cluster::start();
    c.ok(&["create", "serviceaccount", "robot", "-n", "default"]);
    let token = c
        .ok(&[
            "create",
            "token",
            "robot",
            "-n",
            "default",
            "--duration=10m",
        ])
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");

    // The token authenticates; the identity is the service account's.
    let tok_arg = format!("--token={token}");
    c.ok(&[&tok_arg, "get", "--raw", "/api"]);
    let err = c.fails(&[&tok_arg, "get", "secrets", "-n", "default"]);
    assert!(err.contains("system:serviceaccount:default:robot"), "{err}");

    // TokenReview.
    let review = format!(
        r#"{{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {{"token": "{token}"}}}}"#
    );
    let out = c.ok_stdin(&["create", "-f", "-", "-o", "json"], &review);
    let v: serde_json::Value = serde_json::from_str(&out).expect("TokenReview JSON");
    assert_eq!(v["status"]["authenticated"], true, "{out}");
    assert_eq!(
        v["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );

    // OIDC discovery.
    let doc: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/.well-known/openid-configuration"]))
            .expect("discovery JSON");
    assert_eq!(
        doc["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    let jwks: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/openid/v1/jwks"])).expect("JWKS");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");

    // Deleting the service account revokes its tokens.
    c.ok(&["delete", "serviceaccount", "robot", "-n", "default"]);
    let err = c.fails(&[&tok_arg, "get", "--raw", "/api"]);
    assert!(err.contains("Unauthorized"), "{err}");

    // CSRs: approve -> issued by the cluster CA; deny -> no certificate.
    c.ok_stdin(&["create", "-f", "-"], &csr_manifest("alice", "alice"));
    c.ok_stdin(&["create", "-f", "-"], &csr_manifest("mallory", "mallory"));
    // (`kubectl certificate approve` sends the CSR as protobuf, which the protobuf decoder does
    // not know yet: decide through the approval subresource with JSON.)
    decide(&c, "alice", "Approved");
    decide(&c, "mallory", "Denied");
    let mut issued = String::new();
    for _ in 0..100 {
        issued = c.ok(&[
            "get",
            "csr",
            "alice",
            "-o",
            "jsonpath={.status.certificate}",
        ]);
        if !issued.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(issued.trim())
        .expect("certificate base64");
    assert!(String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE"));
    let table = c.ok(&["get", "csr"]);
    assert!(table.contains("Approved,Issued"), "{table}");
    assert!(table.contains("Denied"), "{table}");
    let denied = c.ok(&[
        "get",
        "csr",
        "mallory",
        "-o",
        "jsonpath={.status.certificate}",
    ]);
    assert!(denied.is_empty());
}
