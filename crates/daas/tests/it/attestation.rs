//! End-to-end: attested TLS against a real `daas up` (simulated enclave) and the seed endpoints.

use crate::common;

use common::{daas, Cluster};

#[test]
fn attested_tls_and_seed_endpoints() {
    let c = Cluster::start();
    let url = c.server_url();
    let chain = c.chain_url();
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let ca_out = c.dir.path().join("ca.pem");

    // Without trusting the dev root the simulated enclave is refused (only the AWS root is pinned).
    let out = daas(&["attest", "--server", &url, "--chain", &chain]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("root"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a ledger to read the registered measurement from and without --expect-pcr, nothing
    // pins the measurement: refused.
    let out = daas(&[
        "attest",
        "--server",
        &url,
        "--trust-root",
        root.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--expect-pcr"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Trusting it explicitly, the document verifies against the PCRs registered on the ledger and
    // binds the TLS certificate.
    let out = daas(&[
        "attest",
        "--server",
        &url,
        "--chain",
        &chain,
        "--trust-root",
        root.to_str().unwrap(),
        "--ca-out",
        ca_out.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["tls_certificate_bound"], true);
    assert!(
        v["measurement_pinned_by"]["ledger"]["enclave"]
            .as_str()
            .unwrap()
            .starts_with("0x"),
        "{v}"
    );
    let pcr0 = v["pcrs"]["0"].as_str().unwrap().to_string();
    assert_eq!(pcr0.len(), 96);
    let cluster_id = v["cluster_id"].as_str().unwrap().to_string();
    assert_eq!(cluster_id.len(), 32, "{v}");
    assert_eq!(v["audience"], format!("k3s-daas:{cluster_id}"));
    // The CA learned through attestation is the cluster CA kubectl trusts.
    let ca = std::fs::read_to_string(&ca_out).unwrap();
    assert_eq!(
        ca.trim(),
        std::fs::read_to_string(c.data_dir().join("tls").join("ca.crt"))
            .unwrap()
            .trim()
    );

    // Explicit PCRs alone (no ledger) are enforced.
    let ok = daas(&[
        "attest",
        "--server",
        &url,
        "--trust-root",
        root.to_str().unwrap(),
        "--expect-pcr",
        &format!("0={pcr0}"),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["measurement_pinned_by"], "expect-pcr");
    let bad = daas(&[
        "attest",
        "--server",
        &url,
        "--trust-root",
        root.to_str().unwrap(),
        "--expect-pcr",
        &format!("0={}", "00".repeat(48)),
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .to_lowercase()
            .contains("pcr"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // An explicit pin contradicting the ledger's registered configuration is refused too.
    let bad = daas(&[
        "attest",
        "--server",
        &url,
        "--chain",
        &chain,
        "--trust-root",
        root.to_str().unwrap(),
        "--expect-pcr",
        &format!("0={}", "00".repeat(48)),
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("disagrees with the ledger"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // Seed endpoints next to the Kubernetes API (kubectl --raw goes through the same TLS and auth).
    let health: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/api/v1/health"])).unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["enclave"]["kind"], "simulated");
    assert_eq!(health["enclave"]["pcrs"]["0"], pcr0.as_str());
    // The cluster id is stable: the same in health and attestation, and across a restart.
    assert_eq!(health["cluster_id"], cluster_id.as_str());
    let att: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/api/v1/tee/attestation?nonce=00ff"]))
            .unwrap();
    assert!(att["document"].as_str().unwrap().len() > 1000);
    assert_eq!(att["cluster_id"], cluster_id.as_str());
    let err = c.fails(&["get", "--raw", "/api/v1/tee/attestation?nonce=zz"]);
    assert!(err.contains("BadRequest") || err.contains("hex"), "{err}");
    c.ok(&["get", "pods", "-A"]);
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains("# TYPE apiserver_request_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("apiserver_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("daas_nodes{condition=\"Ready\",status=\"True\"} 0"),
        "{metrics}"
    );

    let mut c = c;
    c.kill();
    c.spawn();
    let health: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/api/v1/health"])).unwrap();
    assert_eq!(
        health["cluster_id"],
        cluster_id.as_str(),
        "cluster id changed across a restart"
    );
}
