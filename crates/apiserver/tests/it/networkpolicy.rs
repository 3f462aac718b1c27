//! networking.k8s.io/v1 NetworkPolicies through the real router: served, defaulted and validated
//! as upstream; a tenant manages them in its own namespace only; a node reads them (it enforces
//! them) and writes none; an anonymous client gets nothing.

use serde_json::{json, Value};

use crate::common::{call_as, tenancy_app, ADMIN, ALICE, JSON, NODE};

const ALICE_NP: &str = "/apis/networking.k8s.io/v1/namespaces/u-alice/networkpolicies";
const BOB_NP: &str = "/apis/networking.k8s.io/v1/namespaces/u-bob/networkpolicies";

fn policy(name: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                         "ports": [{"port": 5432}]}]
        }
    })
}

#[tokio::test]
async fn tenants_own_their_policies_and_nodes_only_read_them() {
    let (_dir, app) = tenancy_app().await;

    // Discovery lists the kind with its short name.
    let (code, body) = call_as(
        &app,
        ALICE,
        "GET",
        "/apis/networking.k8s.io/v1",
        "",
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let np = body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "networkpolicies")
        .cloned()
        .unwrap_or_default();
    assert_eq!(np["kind"], "NetworkPolicy", "{body}");
    assert_eq!(np["namespaced"], true);
    assert_eq!(np["shortNames"], json!(["netpol"]));

    // The tenant creates one in its namespace: defaulted as upstream.
    let (code, body) = call_as(&app, ALICE, "POST", ALICE_NP, JSON, policy("db")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(body["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");

    // An invalid one is refused with upstream's field errors (422).
    let mut bad = policy("bad");
    bad["spec"]["ingress"][0]["from"] =
        json!([{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}, "podSelector": {}}]);
    bad["spec"]["ingress"][0]["ports"] = json!([{"port": "http", "endPort": 90}]);
    let (code, body) = call_as(&app, ALICE, "POST", ALICE_NP, JSON, bad).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    let msg = body["message"].as_str().unwrap_or("");
    for part in [
        "NetworkPolicy.networking.k8s.io \"bad\" is invalid",
        "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
        "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer",
        "spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
    ] {
        assert!(msg.contains(part), "{part} not in {msg}");
    }

    // Another tenant's namespace: 403 for every verb.
    let (code, body) = call_as(&app, ALICE, "POST", BOB_NP, JSON, policy("x")).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "networkpolicies.networking.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"networkpolicies\" in API group \"networking.k8s.io\" in the namespace \"u-bob\""
    );
    let (code, _) = call_as(&app, ADMIN, "POST", BOB_NP, JSON, policy("bobs")).await;
    assert_eq!(code, 201);
    for (method, path) in [
        ("GET", BOB_NP.to_string()),
        ("GET", format!("{BOB_NP}/bobs")),
        ("DELETE", format!("{BOB_NP}/bobs")),
        (
            "GET",
            "/apis/networking.k8s.io/v1/networkpolicies".to_string(),
        ),
    ] {
        let (code, body) = call_as(&app, ALICE, method, &path, JSON, Value::Null).await;
        assert_eq!(code, 403, "{method} {path}: {body}");
    }

    // A node reads every namespace's policies (it enforces them) and writes none.
    let (code, body) = call_as(
        &app,
        NODE,
        "GET",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "",
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    let (code, body) = call_as(&app, NODE, "POST", ALICE_NP, JSON, policy("n")).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = call_as(
        &app,
        NODE,
        "DELETE",
        &format!("{ALICE_NP}/db"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 403, "{body}");

    // Unauthenticated: 401.
    let (code, body) = call_as(&app, "", "GET", ALICE_NP, "", Value::Null).await;
    assert_eq!(code, 401, "{body}");

    // The tenant deletes its own.
    let (code, body) = call_as(
        &app,
        ALICE,
        "DELETE",
        &format!("{ALICE_NP}/db"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");

    // Namespaces carry upstream's name label (what namespaceSelectors match on).
    let (code, body) = call_as(
        &app,
        ADMIN,
        "GET",
        "/api/v1/namespaces/u-bob",
        "",
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "u-bob"
    );
    assert_eq!(body["metadata"]["labels"]["k3s-daas.io/tier"], "user");
}
