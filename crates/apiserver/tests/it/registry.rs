//! Per-kind strategy validation through the router: object names, config keys, immutable
//! ConfigMaps/Secrets, and the Namespace status subresource.

use crate::common;

use common::{app, call, JSON, MERGE};
use serde_json::{json, Value};

fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["field"].as_str().unwrap_or("").to_string(),
                        c["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn names_follow_the_kinds_dns_rule() {
    let (_d, app) = app().await;
    // ConfigMaps allow subdomains (dots, up to 253 characters).
    let dotted = format!("{}.{}", "a".repeat(70), "b".repeat(100));
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON,
        json!({"metadata": {"name": dotted}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON,
        json!({"metadata": {"name": "a".repeat(254)}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    assert!(
        causes(&st)[0]
            .1
            .ends_with("must be no more than 253 characters"),
        "{st}"
    );
    // Services and Namespaces need labels: no dots.
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/services",
        JSON,
        json!({"metadata": {"name": "web.v1"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(causes(&st)[0].1.contains("RFC 1123 label"), "{st}");
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "team.a"}}),
    )
    .await;
    assert_eq!(code, 422);
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/secrets",
        JSON,
        json!({"metadata": {"name": "tls.web"}}),
    )
    .await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn data_keys_must_be_config_keys() {
    let (_d, app) = app().await;
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        JSON,
        json!({"metadata": {"name": "c"}, "data": {"ok.key": "1", "bad key": "2"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    let c = causes(&st);
    assert_eq!(c.len(), 1, "{st}");
    assert_eq!(c[0].0, "data[bad key]");
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert!(c[0]
        .1
        .contains("a valid config key must consist of alphanumeric characters"));
    let (code, st) = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/secrets",
        JSON,
        json!({"metadata": {"name": "s"}, "stringData": {"..": "x"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(causes(&st)[0].0, "data[..]");
}

#[tokio::test]
async fn immutable_config_maps_and_secrets_refuse_data_changes() {
    let (_d, app) = app().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, _) = call(
        &app,
        "POST",
        cms,
        JSON,
        json!({"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": true}),
    )
    .await;
    assert_eq!(code, 201);
    for patch in [
        json!({"data": {"a": "2"}}),
        json!({"binaryData": {"b": "eA=="}}),
        json!({"immutable": false}),
    ] {
        let (code, st) = call(
            &app,
            "PATCH",
            &format!("{cms}/frozen"),
            MERGE,
            patch.clone(),
        )
        .await;
        assert_eq!(code, 422, "{patch}: {st}");
        assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueForbidden");
        assert!(
            st["message"]
                .as_str()
                .unwrap()
                .contains("field is immutable when `immutable` is set"),
            "{st}"
        );
    }
    // Metadata may still change.
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{cms}/frozen"),
        MERGE,
        json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");

    let secrets = "/api/v1/namespaces/default/secrets";
    let (code, _) = call(
        &app,
        "POST",
        secrets,
        JSON,
        json!({"metadata": {"name": "frozen"}, "stringData": {"a": "1"}, "immutable": true}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{secrets}/frozen"),
        MERGE,
        json!({"stringData": {"a": "2"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(causes(&st)[0].0, "data");
    // A mutable secret may change its data, not its type.
    let (code, _) = call(
        &app,
        "POST",
        secrets,
        JSON,
        json!({"metadata": {"name": "open"}, "stringData": {"a": "1"}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = call(
        &app,
        "PATCH",
        &format!("{secrets}/open"),
        MERGE,
        json!({"stringData": {"a": "2"}}),
    )
    .await;
    assert_eq!(code, 200);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{secrets}/open"),
        MERGE,
        json!({"type": "kubernetes.io/tls"}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(causes(&st)[0].0, "type");
}

/// Upstream e2e "Namespaces should apply changes to a namespace status".
#[tokio::test]
async fn namespace_status_patch_keeps_metadata_changes() {
    let (_d, app) = app().await;
    let (code, _) = call(
        &app,
        "POST",
        "/api/v1/namespaces",
        JSON,
        json!({"metadata": {"name": "ns-status"}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, ns) = call(
        &app,
        "PATCH",
        "/api/v1/namespaces/ns-status/status",
        "application/strategic-merge-patch+json",
        json!({"metadata": {"annotations": {"e2e-patched-ns-status": "ns-status"}},
               "spec": {"finalizers": []},
               "status": {"conditions": [{"type": "StatusPatch", "status": "True", "reason": "E2E", "message": "patched"}]}}),
    )
    .await;
    assert_eq!(code, 200, "{ns}");
    assert_eq!(
        ns["metadata"]["annotations"]["e2e-patched-ns-status"],
        "ns-status"
    );
    assert_eq!(ns["status"]["conditions"][0]["type"], "StatusPatch");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    let (_, got) = call(
        &app,
        "GET",
        "/api/v1/namespaces/ns-status",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        got["metadata"]["annotations"]["e2e-patched-ns-status"],
        "ns-status"
    );
    // A status write still leaves the main resource's spec alone and the main resource still
    // ignores status.
    let mut upd = got.clone();
    upd["status"]["conditions"][0]["message"] = json!("updated");
    let (code, out) = call(
        &app,
        "PUT",
        "/api/v1/namespaces/ns-status/status",
        JSON,
        upd,
    )
    .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"]["conditions"][0]["message"], "updated");
    let (code, out) = call(
        &app,
        "PATCH",
        "/api/v1/namespaces/ns-status",
        MERGE,
        json!({"status": {"phase": "Terminating"}}),
    )
    .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["status"]["phase"], "Active");
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn pod_specs_are_validated_and_immutable() {
    let (_d, app) = app().await;
    // A mount of a volume that does not exist, a bad port and a request above its limit: all
    // reported at once, in upstream's bracketed form.
    let (code, st) = call(
        &app,
        "POST",
        PODS,
        JSON,
        json!({"metadata": {"name": "bad"}, "spec": {"containers": [{"name": "c", "image": "busybox",
            "ports": [{"containerPort": 70000}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            "resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}]}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        causes(&st),
        vec![
            (
                "spec.containers[0].ports[0].containerPort".to_string(),
                "Invalid value: 70000: must be between 1 and 65535, inclusive".to_string()
            ),
            (
                "spec.containers[0].volumeMounts[0].name".to_string(),
                "Not found: \"data\"".to_string()
            ),
            (
                "spec.containers[0].resources.requests".to_string(),
                "Invalid value: \"2Gi\": must be less than or equal to memory limit of 1Gi"
                    .to_string()
            ),
        ]
    );
    assert!(st["message"]
        .as_str()
        .unwrap()
        .starts_with("Pod \"bad\" is invalid: [spec.containers[0].ports[0].containerPort"));
    // A malformed quantity is a decoding error (400), as upstream.
    let (code, st) = call(
        &app,
        "POST",
        PODS,
        JSON,
        json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"limits": {"cpu": "lots"}}}]}}),
    )
    .await;
    assert_eq!(code, 400, "{st}");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .ends_with("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"), "{st}");

    let (code, st) = call(
        &app,
        "POST",
        PODS,
        JSON,
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1",
            "env": [{"name": "A", "value": "1"}]}]}}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    // The image may change; the environment may not. Tolerations may only be added (the ones
    // DefaultTolerationSeconds gave it stay).
    assert_eq!(
        st["spec"]["tolerations"].as_array().map(Vec::len),
        Some(2),
        "{st}"
    );
    let mut tolerations = st["spec"]["tolerations"].clone();
    tolerations
        .as_array_mut()
        .unwrap()
        .push(json!({"operator": "Exists"}));
    let path = format!("{PODS}/p");
    let (code, st) = call(
        &app,
        "PATCH",
        &path,
        MERGE,
        json!({"spec": {"activeDeadlineSeconds": 60, "tolerations": tolerations}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let (code, st) = call(
        &app,
        "PATCH",
        &path,
        "application/strategic-merge-patch+json",
        json!({"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["spec"]["containers"][0]["image"], "busybox:2");
    let (code, st) = call(
        &app,
        "PATCH",
        &path,
        "application/strategic-merge-patch+json",
        json!({"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "2"}]}]}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    let msg = st["message"].as_str().unwrap();
    assert!(msg.starts_with("Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)"), "{msg}");
    assert!(msg.contains("spec.containers[0].env[0].value"), "{msg}");
    // The deadline may only go down; tolerations may not be removed.
    let (code, st) = call(
        &app,
        "PATCH",
        &path,
        MERGE,
        json!({"spec": {"activeDeadlineSeconds": 120}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        causes(&st),
        vec![(
            "spec.activeDeadlineSeconds".to_string(),
            "Invalid value: 120: must be less than or equal to previous value".to_string()
        )]
    );
    let (code, st) = call(
        &app,
        "PATCH",
        &path,
        MERGE,
        json!({"spec": {"tolerations": null}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    // Nothing of the refused writes was stored.
    let (_, got) = call(&app, "GET", &path, JSON, Value::Null).await;
    assert_eq!(got["spec"]["containers"][0]["env"][0]["value"], "1");
    assert_eq!(got["spec"]["activeDeadlineSeconds"], 60);
}

#[tokio::test]
async fn metadata_keys_and_selectors_are_validated() {
    let (_d, app) = app().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, st) = call(
        &app,
        "POST",
        cms,
        JSON,
        json!({"metadata": {"name": "l", "labels": {"bad key!": "v"}, "annotations": {"example.com/ok": "x", "/no": "y"}}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    let c = causes(&st);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[0].0, "metadata.labels");
    assert!(
        c[0].1.starts_with(
            "Invalid value: \"bad key!\": name part must consist of alphanumeric characters"
        ),
        "{c:?}"
    );
    assert_eq!(
        c[1],
        (
            "metadata.annotations".to_string(),
            "Invalid value: \"/no\": prefix part must be non-empty".to_string()
        )
    );
    let (code, st) = call(
        &app,
        "POST",
        cms,
        JSON,
        json!({"metadata": {"name": "o", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "2", "controller": true}]}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("Only one reference can have Controller set to true"),
        "{st}"
    );

    // apps/v1 selectors are immutable.
    let deps = "/apis/apps/v1/namespaces/default/deployments";
    let dep = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d", "v": "1"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let (code, st) = call(&app, "POST", deps, JSON, dep).await;
    assert_eq!(code, 201, "{st}");
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{deps}/d"),
        MERGE,
        json!({"spec": {"selector": {"matchLabels": {"app": "d", "v": "1"}}}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(causes(&st)[0].0, "spec.selector");
    assert!(causes(&st)[0].1.ends_with("field is immutable"), "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .starts_with("Deployment.apps \"d\" is invalid"),
        "{st}"
    );
}

#[tokio::test]
async fn services_are_validated_and_keep_their_cluster_ip() {
    let (_d, app) = app().await;
    let svcs = "/api/v1/namespaces/default/services";
    let (code, st) = call(
        &app,
        "POST",
        svcs,
        JSON,
        json!({"metadata": {"name": "bad"}, "spec": {"ports": [
            {"name": "a", "port": 0}, {"name": "a", "port": 81, "nodePort": 30001}]}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        causes(&st),
        vec![
            (
                "spec.ports[0].port".to_string(),
                "Invalid value: 0: must be between 1 and 65535, inclusive".to_string()
            ),
            // (targetPort defaults to the port, as upstream, and is as invalid.)
            (
                "spec.ports[0].targetPort".to_string(),
                "Invalid value: 0: must be between 1 and 65535, inclusive".to_string()
            ),
            (
                "spec.ports[1].name".to_string(),
                "Duplicate value: \"a\"".to_string()
            ),
            (
                "spec.ports[1].nodePort".to_string(),
                "Forbidden: may not be used when `type` is 'ClusterIP'".to_string()
            ),
        ]
    );
    let (code, st) = call(
        &app,
        "POST",
        svcs,
        JSON,
        json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "clusterIP": "10.43.9.9"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        causes(&st),
        vec![
            (
                "spec.externalName".to_string(),
                "Required value".to_string()
            ),
            (
                "spec.clusterIP".to_string(),
                "Forbidden: may not be set for ExternalName services".to_string()
            ),
        ]
    );

    let (code, st) = call(
        &app,
        "POST",
        svcs,
        JSON,
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    let ip = st["spec"]["clusterIP"].as_str().unwrap().to_string();
    // A replace that leaves the allocated IP out keeps it.
    let (code, st) = call(
        &app,
        "PUT",
        &format!("{svcs}/web"),
        JSON,
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web2"}, "ports": [{"port": 80}]}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["spec"]["clusterIP"], ip.as_str());
    assert_eq!(st["spec"]["clusterIPs"], json!([ip]));
    // Changing it is refused, and nothing is written.
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{svcs}/web"),
        MERGE,
        json!({"spec": {"clusterIP": "10.43.0.99"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        causes(&st),
        vec![(
            "spec.clusterIPs[0]".to_string(),
            "Invalid value: [\"10.43.0.99\"]: may not change once set".to_string()
        )]
    );
    let (_, got) = call(&app, "GET", &format!("{svcs}/web"), JSON, Value::Null).await;
    assert_eq!(got["spec"]["clusterIP"], ip.as_str());
}

/// DELETE of a collection deletes each object as a DELETE of one would: bound pods get their
/// grace period, objects with finalizers are only marked, the rest goes; a dry run changes
/// nothing.
#[tokio::test]
async fn delete_collection_deletes_each_object_as_a_single_delete() {
    let (_d, app) = app().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    for cm in [
        json!({"metadata": {"name": "held", "finalizers": ["example.com/keep"]}}),
        json!({"metadata": {"name": "plain"}}),
    ] {
        assert_eq!(call(&app, "POST", cms, JSON, cm).await.0, 201);
    }
    let pod = json!({"metadata": {"name": "bound"}, "spec": {"nodeName": "n1",
        "terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "busybox"}]}});
    let pods = "/api/v1/namespaces/default/pods";
    let (code, body) = call(&app, "POST", pods, JSON, pod).await;
    assert_eq!(code, 201, "{body}");

    let (code, list) = call(
        &app,
        "DELETE",
        &format!("{cms}?dryRun=All"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200, "{list}");
    let (_, plain) = call(&app, "GET", &format!("{cms}/plain"), JSON, Value::Null).await;
    assert!(plain["metadata"]["deletionTimestamp"].is_null(), "{plain}");

    let (code, list) = call(&app, "DELETE", cms, JSON, Value::Null).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "ConfigMapList");
    assert_eq!(
        call(&app, "GET", &format!("{cms}/plain"), JSON, Value::Null)
            .await
            .0,
        404
    );
    let (code, held) = call(&app, "GET", &format!("{cms}/held"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{held}");
    assert!(!held["metadata"]["deletionTimestamp"].is_null(), "{held}");

    let (code, list) = call(&app, "DELETE", pods, JSON, Value::Null).await;
    assert_eq!(code, 200, "{list}");
    let (code, pod) = call(&app, "GET", &format!("{pods}/bound"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{pod}");
    assert!(!pod["metadata"]["deletionTimestamp"].is_null(), "{pod}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
}
