//! In-process: the namespace controller empties a deleted namespace through the API (built-in
//! and custom resources), reports its deletion conditions as upstream, waits for content held by
//! finalizers and then lets the namespace go.

use std::time::{Duration, Instant};

use daas_apiserver::LocalClient;
use daas_controllers::ControllerOptions;
use serde_json::{json, Value};

use crate::common;

async fn env() -> common::Env {
    common::with_controllers(ControllerOptions {
        resync: Duration::from_secs(1),
        ..Default::default()
    })
    .await
}

async fn create_ns(c: &LocalClient, ns: &str) {
    c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await
    .unwrap();
}

async fn gone(c: &LocalClient, path: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while c.get_opt(path).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "{path} still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cond(ns: &Value, ty: &str) -> Value {
    ns["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == ty)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contents_built_in_and_custom_are_deleted_then_the_namespace() {
    use daas_controllers::rootca::{RootCaPublisher, CONFIG_MAP_NAME};
    use daas_controllers::serviceaccounts::ServiceAccountsController;
    let mut e = env().await;
    // As in the master: the publishers of per-namespace content run beside the namespace
    // controller and must not bring content back into a Terminating namespace.
    let opts = ControllerOptions {
        resync: Duration::from_millis(200),
        ..Default::default()
    };
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBns\n-----END CERTIFICATE-----\n";
    e.tasks.push(daas_controllers::spawn_controller(
        e.c.clone(),
        RootCaPublisher::new(e.c.clone(), PEM),
        &opts,
    ));
    e.tasks.push(daas_controllers::spawn_controller(
        e.c.clone(),
        ServiceAccountsController::new(e.c.clone()),
        &opts,
    ));
    let c = &e.c;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.ops.example.com"},
        "spec": {"group": "ops.example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    c.create(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &crd,
    )
    .await
    .unwrap();
    create_ns(c, "shop").await;
    for p in ["a", "b"] {
        c.create(
            "/api/v1/namespaces/shop/pods",
            &json!({"metadata": {"name": p}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await
        .unwrap();
    }
    c.create(
        "/api/v1/namespaces/shop/services",
        &json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await
    .unwrap();
    // The CRD may take a moment to be served.
    let widgets = "/apis/ops.example.com/v1/namespaces/shop/widgets";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c
            .create(
                widgets,
                &json!({"apiVersion": "ops.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
            )
            .await
        {
            Ok(_) => break,
            Err(err) => assert!(Instant::now() < deadline, "{}", err.message),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in [
        format!("/api/v1/namespaces/shop/configmaps/{CONFIG_MAP_NAME}"),
        "/api/v1/namespaces/shop/serviceaccounts/default".to_string(),
    ] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.get_opt(&p).await.unwrap().is_none() {
            assert!(Instant::now() < deadline, "{p} not published");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // DELETE answers 200 with the namespace, marked Terminating.
    let ns = c.delete("/api/v1/namespaces/shop").await.unwrap();
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(!ns["metadata"]["deletionTimestamp"].is_null());
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    gone(c, "/api/v1/namespaces/shop", 30).await;
    for path in [
        "/api/v1/namespaces/shop/pods/a",
        "/api/v1/namespaces/shop/pods/b",
        "/api/v1/namespaces/shop/services/web",
    ] {
        assert!(c.get_opt(path).await.unwrap().is_none(), "{path}");
    }
    assert!(c
        .list("/apis/ops.example.com/v1/widgets")
        .await
        .unwrap()
        .is_empty());
    // A namespace of the same name made afterwards is a new, active one.
    create_ns(c, "shop").await;
    let ns = c.get("/api/v1/namespaces/shop").await.unwrap();
    assert_eq!(ns["status"]["phase"], "Active");
    assert!(ns["metadata"]["deletionTimestamp"].is_null());
    c.create(
        "/api/v1/namespaces/shop/configmaps",
        &json!({"metadata": {"name": "fresh"}}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(c
        .get_opt("/api/v1/namespaces/shop/configmaps/fresh")
        .await
        .unwrap()
        .is_some());
    // ... and gets its published content again.
    let ca = format!("/api/v1/namespaces/shop/configmaps/{CONFIG_MAP_NAME}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.get_opt(&ca).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "root CA not published again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_with_a_finalizer_keeps_the_namespace_terminating() {
    let e = env().await;
    let c = &e.c;
    create_ns(c, "held").await;
    let cm = "/api/v1/namespaces/held/configmaps/kept";
    c.create(
        "/api/v1/namespaces/held/configmaps",
        &json!({"metadata": {"name": "kept", "finalizers": ["example.com/keep"]}}),
    )
    .await
    .unwrap();
    c.create(
        "/api/v1/namespaces/held/secrets",
        &json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    )
    .await
    .unwrap();
    c.delete("/api/v1/namespaces/held").await.unwrap();
    // The conditions say what holds the namespace.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ns = loop {
        let ns = c.get("/api/v1/namespaces/held").await.unwrap();
        if cond(&ns, "NamespaceFinalizersRemaining")["status"] == "True" {
            break ns;
        }
        assert!(Instant::now() < deadline, "no conditions: {ns}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ns["status"]["phase"], "Terminating");
    let f = cond(&ns, "NamespaceFinalizersRemaining");
    assert_eq!(f["reason"], "SomeFinalizerRemain");
    assert_eq!(
        f["message"],
        "Some finalizers are remaining: example.com/keep in 1 resource instances"
    );
    let r = cond(&ns, "NamespaceContentRemaining");
    assert_eq!(r["status"], "True");
    assert_eq!(r["reason"], "SomeResourcesRemain");
    assert_eq!(
        r["message"],
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    for (ty, reason) in [
        ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered"),
        (
            "NamespaceDeletionGroupVersionParsingFailure",
            "ParsedGroupVersions",
        ),
        ("NamespaceDeletionContentFailure", "ContentDeleted"),
    ] {
        let c = cond(&ns, ty);
        assert_eq!(c["status"], "False", "{ty}: {c}");
        assert_eq!(c["reason"], reason, "{ty}");
    }
    // The rest is gone; the held object is marked for deletion; no new content is accepted.
    assert!(c
        .get_opt("/api/v1/namespaces/held/secrets/s")
        .await
        .unwrap()
        .is_none());
    let kept = c.get(cm).await.unwrap();
    assert!(!kept["metadata"]["deletionTimestamp"].is_null());
    let err = c
        .create(
            "/api/v1/namespaces/held/configmaps",
            &json!({"metadata": {"name": "late"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "unable to create new content in namespace held because it is being terminated"
    );
    // A second DELETE answers with the Terminating namespace again.
    let again = c.delete("/api/v1/namespaces/held").await.unwrap();
    assert_eq!(again["status"]["phase"], "Terminating");
    // Releasing the finalizer lets the object and then the namespace go.
    c.merge_patch(cm, &json!({"metadata": {"finalizers": null}}))
        .await
        .unwrap();
    gone(c, cm, 10).await;
    gone(c, "/api/v1/namespaces/held", 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_finalizer_keeps_the_emptied_namespace_until_finalized() {
    let e = env().await;
    let c = &e.c;
    create_ns(c, "ext").await;
    let ns = c.get("/api/v1/namespaces/ext").await.unwrap();
    let mut fin = ns.clone();
    fin["spec"]["finalizers"] = json!(["kubernetes", "e2e.example.com/fakeFinalizer"]);
    c.update("/api/v1/namespaces/ext/finalize", &fin)
        .await
        .unwrap();
    c.create(
        "/api/v1/namespaces/ext/configmaps",
        &json!({"metadata": {"name": "cm"}}),
    )
    .await
    .unwrap();
    c.delete("/api/v1/namespaces/ext").await.unwrap();
    // The controller removes only its own finalizer.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ns = loop {
        let ns = c.get("/api/v1/namespaces/ext").await.unwrap();
        if ns["spec"]["finalizers"] == json!(["e2e.example.com/fakeFinalizer"]) {
            break ns;
        }
        assert!(Instant::now() < deadline, "kubernetes finalizer kept: {ns}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(cond(&ns, "NamespaceContentRemaining")["status"], "False");
    assert!(c
        .get_opt("/api/v1/namespaces/ext/configmaps/cm")
        .await
        .unwrap()
        .is_none());
    // Writes of the Terminating namespace (no metadata.finalizers) do not remove it early.
    let mut w = c.get("/api/v1/namespaces/ext").await.unwrap();
    w["metadata"]["labels"] = json!({"touched": "yes"});
    c.update("/api/v1/namespaces/ext/status", &w).await.unwrap();
    c.merge_patch(
        "/api/v1/namespaces/ext",
        &json!({"metadata": {"annotations": {"a": "b"}}}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut done = c.get("/api/v1/namespaces/ext").await.unwrap();
    assert_eq!(done["metadata"]["labels"]["touched"], "yes");
    assert_eq!(done["status"]["phase"], "Terminating");
    done["spec"]["finalizers"] = json!([]);
    c.update("/api/v1/namespaces/ext/finalize", &done)
        .await
        .unwrap();
    assert!(c.get_opt("/api/v1/namespaces/ext").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_pods_get_their_grace_period_and_hold_the_namespace() {
    let e = env().await;
    let c = &e.c;
    create_ns(c, "run").await;
    let pod = "/api/v1/namespaces/run/pods/busy";
    c.create(
        "/api/v1/namespaces/run/pods",
        &json!({"metadata": {"name": "busy"}, "spec": {"nodeName": "n1",
            "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await
    .unwrap();
    c.delete("/api/v1/namespaces/run").await.unwrap();
    // The pod is deleted gracefully (its node finishes the deletion), not removed at once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = c.get(pod).await.unwrap();
        if !p["metadata"]["deletionTimestamp"].is_null() {
            break p;
        }
        assert!(Instant::now() < deadline, "pod not marked: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 30);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ns = c.get("/api/v1/namespaces/run").await.unwrap();
        let r = cond(&ns, "NamespaceContentRemaining");
        if r["status"] == "True" {
            assert_eq!(
                r["message"],
                "Some resources are remaining: pods. has 1 resource instances"
            );
            // Waiting for a grace period is no failure.
            assert_eq!(
                cond(&ns, "NamespaceDeletionContentFailure")["status"],
                "False"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no remaining content reported: {ns}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The node's final DELETE (grace period 0) lets the namespace go.
    c.call_delete_with(pod, &json!({"gracePeriodSeconds": 0}))
        .await
        .unwrap();
    gone(c, "/api/v1/namespaces/run", 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_finalizers_of_the_namespace_are_honoured_too() {
    let e = env().await;
    let c = &e.c;
    c.create(
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "meta", "finalizers": ["example.com/meta"]}}),
    )
    .await
    .unwrap();
    c.create(
        "/api/v1/namespaces/meta/configmaps",
        &json!({"metadata": {"name": "cm"}}),
    )
    .await
    .unwrap();
    c.delete("/api/v1/namespaces/meta").await.unwrap();
    // The controller empties it, marks it Terminating and drops its own finalizer; the
    // metadata finalizer keeps the namespace.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ns = loop {
        let ns = c.get("/api/v1/namespaces/meta").await.unwrap();
        if ns["spec"]["finalizers"]
            .as_array()
            .is_none_or(|a| a.is_empty())
        {
            break ns;
        }
        assert!(Instant::now() < deadline, "not finalized: {ns}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(c
        .get_opt("/api/v1/namespaces/meta/configmaps/cm")
        .await
        .unwrap()
        .is_none());
    c.merge_patch(
        "/api/v1/namespaces/meta",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await
    .unwrap();
    gone(c, "/api/v1/namespaces/meta", 10).await;
}
