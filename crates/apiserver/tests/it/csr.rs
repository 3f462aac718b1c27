//! certificates.k8s.io/v1 CertificateSigningRequests through the router, following the
//! conformance test "Certificates API should support CSR API operations".

use crate::common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{app, call, JSON, MERGE};
use serde_json::{json, Value};

const BASE: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

fn csr_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.serialize_request(&key).unwrap().pem().unwrap()
}

fn template(signer: &str) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "e2e-example-csr-"},
        "spec": {"request": STANDARD.encode(csr_pem("e2e.example.com")), "signerName": signer,
            "expirationSeconds": 3600,
            "usages": ["digital signature", "key encipherment", "server auth"]}})
}

fn self_signed_cert() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["e2e.example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

#[tokio::test]
async fn csr_api_operations() {
    let (_d, app) = app().await;
    let (code, groups) = call(&app, "GET", "/apis", JSON, Value::Null).await;
    assert_eq!(code, 200);
    assert!(groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "certificates.k8s.io"));
    let (_, res) = call(
        &app,
        "GET",
        "/apis/certificates.k8s.io/v1",
        JSON,
        Value::Null,
    )
    .await;
    let names: Vec<&str> = res["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for n in [
        "certificatesigningrequests",
        "certificatesigningrequests/approval",
        "certificatesigningrequests/status",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }

    let signer = "example.com/e2e-csr";
    let mut created = Value::Null;
    for _ in 0..3 {
        let (code, c) = call(&app, "POST", BASE, JSON, template(signer)).await;
        assert_eq!(code, 201, "{c}");
        created = c;
    }
    // The requester is recorded from the caller.
    assert_eq!(created["spec"]["username"], "admin");
    // Every authenticated caller is also in system:authenticated, as upstream records it.
    assert_eq!(
        created["spec"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    let name = created["metadata"]["name"].as_str().unwrap().to_string();
    let one = format!("{BASE}/{name}");
    let (code, got) = call(&app, "GET", &one, JSON, Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(got["spec"]["expirationSeconds"], 3600);
    let sel = format!("{BASE}?fieldSelector=spec.signerName%3D{signer}");
    let (_, list) = call(&app, "GET", &sel, JSON, Value::Null).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    let (code, patched) = call(
        &app,
        "PATCH",
        &one,
        MERGE,
        json!({"metadata": {"annotations": {"patched": "true"}}}),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    let mut upd = patched.clone();
    upd["metadata"]["annotations"]["updated"] = json!("true");
    let (code, updated) = call(&app, "PUT", &one, JSON, upd).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["metadata"]["annotations"]["updated"], "true");

    // /approval
    let (code, appr) = call(&app, "GET", &format!("{one}/approval"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(appr["kind"], "CertificateSigningRequest");
    let (code, pa) = call(
        &app,
        "PATCH",
        &format!("{one}/approval"),
        MERGE,
        json!({"metadata":{"annotations":{"patchedapproval":"true"}},"status":{"conditions":[{"type":"ApprovalPatch","status":"True","reason":"e2e"}]}}),
    )
    .await;
    assert_eq!(code, 200, "{pa}");
    assert_eq!(pa["status"]["conditions"].as_array().unwrap().len(), 1);
    assert_eq!(pa["status"]["conditions"][0]["type"], "ApprovalPatch");
    assert_eq!(pa["metadata"]["annotations"]["patchedapproval"], "true");
    let mut ua = pa.clone();
    ua["status"]["conditions"].as_array_mut().unwrap().push(
        json!({"type": "Approved", "status": "True", "reason": "E2E", "message": "Set from an e2e test"}),
    );
    let (code, ua) = call(&app, "PUT", &format!("{one}/approval"), JSON, ua).await;
    assert_eq!(code, 200, "{ua}");
    assert_eq!(ua["status"]["conditions"][1]["type"], "Approved");

    // Approved and Denied are mutually exclusive.
    let mut both = ua.clone();
    both["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "Denied", "status": "True", "reason": "E2E"}));
    let (code, st) = call(&app, "PUT", &format!("{one}/approval"), JSON, both).await;
    assert_eq!(code, 422, "{st}");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .contains("mutually exclusive"));

    // /status
    let (code, _) = call(&app, "GET", &format!("{one}/status"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    let cert = self_signed_cert();
    let (code, ps) = call(
        &app,
        "PATCH",
        &format!("{one}/status"),
        MERGE,
        json!({"metadata":{"annotations":{"patchedstatus":"true"}},"status":{"certificate": STANDARD.encode(&cert)}}),
    )
    .await;
    assert_eq!(code, 200, "{ps}");
    assert_eq!(ps["status"]["certificate"], STANDARD.encode(&cert));
    assert_eq!(ps["metadata"]["annotations"]["patchedstatus"], "true");
    let mut us = ps.clone();
    us["status"]["conditions"].as_array_mut().unwrap().push(
        json!({"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "Set from an e2e test"}),
    );
    let n = us["status"]["conditions"].as_array().unwrap().len();
    let (code, us) = call(&app, "PUT", &format!("{one}/status"), JSON, us).await;
    assert_eq!(code, 200, "{us}");
    assert_eq!(us["status"]["conditions"].as_array().unwrap().len(), n);
    assert_eq!(us["status"]["conditions"][n - 1]["type"], "StatusUpdate");
    // The certificate cannot be replaced, and a bad certificate is refused.
    let mut bad = us.clone();
    bad["status"]["certificate"] = json!(STANDARD.encode(self_signed_cert()));
    let (code, _) = call(&app, "PUT", &format!("{one}/status"), JSON, bad).await;
    assert_eq!(code, 422);

    let (code, _) = call(&app, "DELETE", &one, JSON, Value::Null).await;
    assert_eq!(code, 200);
    let (code, _) = call(&app, "GET", &one, JSON, Value::Null).await;
    assert_eq!(code, 404);
    let (_, list) = call(&app, "GET", &sel, JSON, Value::Null).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (code, _) = call(&app, "DELETE", &sel, JSON, Value::Null).await;
    assert_eq!(code, 200);
    let (_, list) = call(&app, "GET", &sel, JSON, Value::Null).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn invalid_requests_are_refused() {
    let (_d, app) = app().await;
    let mut t = template("example.com/e2e");
    t["spec"]["request"] = json!(STANDARD.encode("not a csr"));
    let (code, st) = call(&app, "POST", BASE, JSON, t).await;
    assert_eq!(code, 422, "{st}");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .contains("PEM block type must be CERTIFICATE REQUEST"));
    let mut t = template("example.com/e2e");
    t["spec"]["usages"] = json!(["client auth", "teleport"]);
    let (code, _) = call(&app, "POST", BASE, JSON, t).await;
    assert_eq!(code, 422);
    let mut t = template("example.com/e2e");
    t["spec"]["expirationSeconds"] = json!(60);
    let (code, _) = call(&app, "POST", BASE, JSON, t).await;
    assert_eq!(code, 422);
    // Status on create is dropped; spec is immutable afterwards.
    let mut t = template("example.com/e2e");
    t["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let (code, c) = call(&app, "POST", BASE, JSON, t).await;
    assert_eq!(code, 201);
    assert!(c["status"]["conditions"].is_null(), "{c}");
    let mut u = c.clone();
    u["spec"]["signerName"] = json!("example.com/other");
    let one = format!("{BASE}/{}", c["metadata"]["name"].as_str().unwrap());
    let (code, _) = call(&app, "PUT", &one, JSON, u).await;
    assert_eq!(code, 422);
    // Conditions written through /status cannot approve.
    let mut s = c.clone();
    s["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let (code, s) = call(&app, "PUT", &format!("{one}/status"), JSON, s).await;
    assert_eq!(code, 200);
    assert_eq!(s["status"]["conditions"], json!([]));
}
