//! The CSR signer against the real router: approve -> certificate from the cluster CA; deny ->
//! nothing; a request the signer's rules refuse -> Failed.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use daas_apiserver::registry::csr::{
    SigningCa, KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET,
};
use daas_apiserver::{LocalClient, TlsMaterial};
use daas_controllers::csrsigning::CsrSigner;
use daas_controllers::ControllerOptions;
use serde_json::{json, Value};

use crate::common;

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

fn csr(name: &str, signer: &str, cn: &str, org: Option<&str>, usages: &[&str]) -> Value {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    if let Some(o) = org {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, o);
    }
    let pem = p.serialize_request(&key).unwrap().pem().unwrap();
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": STANDARD.encode(pem), "signerName": signer, "usages": usages}})
}

async fn decide(c: &LocalClient, name: &str, ty: &str) {
    let mut o = c.get(&format!("{CSRS}/{name}")).await.unwrap();
    o["status"] = json!({"conditions": [{"type": ty, "status": "True", "reason": "Test", "message": "by the test"}]});
    c.update(&format!("{CSRS}/{name}/approval"), &o)
        .await
        .unwrap();
}

async fn wait_for(c: &LocalClient, name: &str, f: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let o = c.get(&format!("{CSRS}/{name}")).await.unwrap();
        if f(&o) {
            return o;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "timed out: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn approved_requests_are_signed_by_the_cluster_ca() {
    let mut e = common::api().await;
    let c = e.c.clone();
    let dir = e.dir.path().to_path_buf();
    let tls = TlsMaterial::load_or_generate(&dir.join("tls"), &[]).unwrap();
    let key = std::fs::read_to_string(dir.join("tls/ca.key")).unwrap();
    let ca = SigningCa::from_pem(&tls.ca_cert_pem, &key).unwrap();
    let opts = ControllerOptions {
        resync: Duration::from_millis(200),
        ..Default::default()
    };
    e.tasks.push(daas_controllers::spawn_controller(
        c.clone(),
        CsrSigner::new(c.clone(), ca),
        &opts,
    ));

    for o in [
        csr(
            "alice",
            KUBE_APISERVER_CLIENT,
            "alice",
            Some("devs"),
            &["digital signature", "client auth"],
        ),
        csr(
            "node",
            KUBE_APISERVER_CLIENT_KUBELET,
            "system:node:n1",
            Some("system:nodes"),
            &["client auth"],
        ),
        csr(
            "denied",
            KUBE_APISERVER_CLIENT,
            "mallory",
            None,
            &["client auth"],
        ),
        csr(
            "server",
            KUBE_APISERVER_CLIENT,
            "srv",
            None,
            &["server auth", "client auth"],
        ),
        csr(
            "pending",
            KUBE_APISERVER_CLIENT,
            "later",
            None,
            &["client auth"],
        ),
        csr("custom", "example.com/custom", "x", None, &["client auth"]),
    ] {
        c.create(CSRS, &o).await.unwrap();
    }
    decide(&c, "alice", "Approved").await;
    decide(&c, "node", "Approved").await;
    decide(&c, "denied", "Denied").await;
    decide(&c, "server", "Approved").await;
    decide(&c, "custom", "Approved").await;

    for n in ["alice", "node"] {
        let o = wait_for(&c, n, |o| o["status"]["certificate"].is_string()).await;
        let pem = String::from_utf8(
            STANDARD
                .decode(o["status"]["certificate"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    }
    let o = wait_for(&c, "server", |o| {
        o["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Failed"))
    })
    .await;
    let failed = o["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap();
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert!(o["status"]["certificate"].is_null());
    // Give the signer a few more passes: denied, pending and foreign-signer requests stay unsigned.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for n in ["denied", "pending", "custom"] {
        let o = c.get(&format!("{CSRS}/{n}")).await.unwrap();
        assert!(o["status"]["certificate"].is_null(), "{o}");
    }
}
