//! The ingress controller against the real API server: it creates the built-in default class,
//! new Ingresses without a class get it (admission), and Ingresses of that class (only) carry the
//! addresses of the Ready staked nodes in their status, following the nodes.

use crate::common;

use std::time::{Duration, Instant};

use daas_apiserver::LocalClient;
use daas_controllers::ingress::{IngressController, NETWORKING};
use daas_controllers::{spawn_controller, ControllerOptions, STAKED};
use serde_json::{json, Value};

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn node(c: &LocalClient, name: &str, ip: &str, ready: bool) {
    c.create(
        "/api/v1/nodes",
        &json!({"metadata": {"name": name, "labels": {STAKED: "true"}}}),
    )
    .await
    .unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    c.merge_patch(
        &format!("/api/v1/nodes/{name}/status"),
        &json!({"status": {
        "addresses": [{"type": "InternalIP", "address": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "Unknown" },
            "lastHeartbeatTime": now, "lastTransitionTime": now}]}}),
    )
    .await
    .unwrap();
}

fn ingress(name: &str, class: Option<&str>) -> Value {
    let mut i = json!({"metadata": {"name": name}, "spec": {"defaultBackend":
        {"service": {"name": "web", "port": {"number": 80}}}}});
    if let Some(c) = class {
        i["spec"]["ingressClassName"] = json!(c);
    }
    i
}

fn addresses(ing: &Value) -> Vec<String> {
    ing["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["ip"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn default_class_and_load_balancer_status_follow_ready_nodes() {
    let mut env = common::api().await;
    let c = env.c.clone();
    let opts = ControllerOptions {
        resync: Duration::from_secs(60),
        ..Default::default()
    };
    env.tasks.push(spawn_controller(
        c.clone(),
        IngressController::new(c.clone(), STAKED),
        &opts,
    ));
    let class_path = format!("{NETWORKING}/ingressclasses/daas");
    until("the built-in class", || async {
        c.get_opt(&class_path).await.unwrap().is_some()
    })
    .await;
    let class = c.get(&class_path).await.unwrap();
    assert_eq!(class["spec"]["controller"], "k3s-daas.io/ingress");
    assert_eq!(
        class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
    node(&c, "n1", "172.30.0.12", true).await;
    node(&c, "n2", "172.30.0.11", true).await;
    node(&c, "n3", "172.30.0.13", false).await;
    let ings = format!("{NETWORKING}/namespaces/default/ingresses");
    let web = c.create(&ings, &ingress("web", None)).await.unwrap();
    assert_eq!(web["spec"]["ingressClassName"], "daas");
    let other = c
        .create(&ings, &ingress("other", Some("nginx")))
        .await
        .unwrap();
    assert_eq!(other["spec"]["ingressClassName"], "nginx");
    let want = |ips: &'static [&'static str]| {
        let c = c.clone();
        let path = format!("{ings}/web");
        async move {
            until(&format!("addresses {ips:?}"), || async {
                addresses(&c.get(&path).await.unwrap()) == ips
            })
            .await
        }
    };
    want(&["172.30.0.11", "172.30.0.12"]).await;
    c.delete("/api/v1/nodes/n2").await.unwrap();
    want(&["172.30.0.12"]).await;
    // Another class's Ingress is not ours.
    assert!(addresses(&c.get(&format!("{ings}/other")).await.unwrap()).is_empty());
    // A deleted built-in class comes back.
    c.delete(&class_path).await.unwrap();
    until("the class again", || async {
        c.get_opt(&class_path).await.unwrap().is_some()
    })
    .await;
}
