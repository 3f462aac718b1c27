//! In-process: the garbage collector follows owner references to custom resources.

use std::time::{Duration, Instant};

use daas_controllers::ControllerOptions;
use serde_json::json;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_a_deleted_custom_resource_are_collected() {
    let e = common::with_controllers(ControllerOptions {
        resync: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let c = &e.c;

    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "apps.ops.example.com"},
        "spec": {"group": "ops.example.com", "scope": "Namespaced",
            "names": {"plural": "apps", "kind": "App"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    c.create(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await
    .unwrap();
    let app = c
        .create(
            "/apis/ops.example.com/v1/namespaces/default/apps",
            &json!({"apiVersion": "ops.example.com/v1", "kind": "App", "metadata": {"name": "shop"}, "spec": {"x": 1}}),
        )
        .await
        .unwrap();
    let owner = json!([{"apiVersion": "ops.example.com/v1", "kind": "App", "name": "shop",
        "uid": app["metadata"]["uid"], "controller": true}]);
    c.create(
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "shop-config", "ownerReferences": owner}, "data": {"a": "1"}}),
    )
    .await
    .unwrap();
    // While the owner exists, the dependent stays.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cm = "/api/v1/namespaces/default/configmaps/shop-config";
    assert!(c.get_opt(cm).await.unwrap().is_some());
    c.delete("/apis/ops.example.com/v1/namespaces/default/apps/shop")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.get_opt(cm).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "dependent not collected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
