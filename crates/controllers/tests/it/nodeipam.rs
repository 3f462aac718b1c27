//! The nodeipam controller against the real API server: pod CIDRs for Nodes that register
//! without one, kept for those that bring their own, freed with the Node, the
//! `CIDRNotAvailable` event when the range is exhausted; and that nobody changes a pod CIDR
//! once it is set.

use std::time::Duration;

use daas_apiserver::{LocalClient, User};
use daas_controllers::nodeipam::{NodeIpamController, CLUSTER_CIDR_ANNOTATION};
use daas_controllers::ControllerOptions;
use serde_json::{json, Value};

use crate::common;

fn user(token: &str, name: &str, groups: &[&str]) -> (String, User) {
    (
        token.to_string(),
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        },
    )
}

fn node(name: &str, cidr: Option<&str>) -> Value {
    let mut n = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    if let Some(c) = cidr {
        n["spec"] = json!({"podCIDR": c});
    }
    n
}

async fn wait_cidr(c: &LocalClient, name: &str) -> String {
    for _ in 0..100 {
        let n = c.get(&format!("/api/v1/nodes/{name}")).await.unwrap();
        if let Some(s) = n["spec"]["podCIDR"].as_str() {
            if n["metadata"]["annotations"][CLUSTER_CIDR_ANNOTATION] == "10.42.0.0/23" {
                return s.to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node {name} got no pod CIDR");
}

fn code<T>(r: Result<T, daas_apiserver::ApiError>) -> (u16, String) {
    match r {
        Ok(_) => (200, String::new()),
        Err(e) => (e.code, e.message),
    }
}

#[tokio::test]
async fn nodes_get_pod_cidrs_that_nobody_changes_afterwards() {
    let mut env = common::api_with_users(vec![
        user("n1", "system:node:n1", &["system:nodes"]),
        user(
            "alice",
            "daas:user:0xa11ce",
            &["daas:users", "daas:namespace:u-alice"],
        ),
    ])
    .await;
    let opts = ControllerOptions {
        resync: Duration::from_millis(200),
        ..Default::default()
    };
    // A small cluster CIDR: two /24s.
    env.tasks.push(daas_controllers::spawn_controller(
        env.c.clone(),
        NodeIpamController::new(env.c.clone(), "10.42.0.0/23", 24).unwrap(),
        &opts,
    ));
    let c = env.c.clone();
    let n1 = LocalClient::new(env.app.clone(), "n1");
    // n2 brings its own pod CIDR (inside the cluster CIDR); then n1 registers itself without
    // one. (In the other order the allocator may hand n1 the first range before n2 exists.)
    c.create("/api/v1/nodes", &node("n2", Some("10.42.0.0/24")))
        .await
        .unwrap();
    assert_eq!(wait_cidr(&c, "n2").await, "10.42.0.0/24");
    n1.create("/api/v1/nodes", &node("n1", None)).await.unwrap();
    assert_eq!(wait_cidr(&c, "n1").await, "10.42.1.0/24");
    let got = c.get("/api/v1/nodes/n1").await.unwrap();
    assert_eq!(got["spec"]["podCIDRs"], json!(["10.42.1.0/24"]));

    // Nobody changes a pod CIDR once set: the node itself (422: immutable), another node's
    // (403), the admin (422), another tenant (403), no credential (401).
    let change = json!({"spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}});
    let (status, msg) = code(n1.merge_patch("/api/v1/nodes/n1", &change).await);
    assert_eq!(status, 422, "{msg}");
    assert!(
        msg.contains("spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"),
        "{msg}"
    );
    assert_eq!(
        code(n1.merge_patch("/api/v1/nodes/n2", &change).await).0,
        403
    );
    assert_eq!(
        code(c.merge_patch("/api/v1/nodes/n1", &change).await).0,
        422
    );
    let alice = LocalClient::new(env.app.clone(), "alice");
    assert_eq!(
        code(alice.merge_patch("/api/v1/nodes/n1", &change).await).0,
        403
    );
    let nobody = LocalClient::new(env.app.clone(), "no-such-token");
    assert_eq!(
        code(nobody.merge_patch("/api/v1/nodes/n1", &change).await).0,
        401
    );
    let got = c.get("/api/v1/nodes/n1").await.unwrap();
    assert_eq!(got["spec"]["podCIDR"], "10.42.1.0/24");

    // The range is full: n3 waits with upstream's event.
    c.create("/api/v1/nodes", &node("n3", None)).await.unwrap();
    let mut seen = false;
    for _ in 0..100 {
        let events = c.list("/api/v1/namespaces/default/events").await.unwrap();
        if events.iter().any(|e| {
            e["reason"] == "CIDRNotAvailable"
                && e["involvedObject"]["name"] == "n3"
                && e["message"] == "Node n3 status is now: CIDRNotAvailable"
        }) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "no CIDRNotAvailable event for n3");
    let n3 = c.get("/api/v1/nodes/n3").await.unwrap();
    assert!(n3["spec"]["podCIDR"].is_null(), "{n3}");

    // n2 leaves: its range goes to n3.
    c.delete("/api/v1/nodes/n2").await.unwrap();
    assert_eq!(wait_cidr(&c, "n3").await, "10.42.0.0/24");
}
