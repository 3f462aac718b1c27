//! LimitRanges: the REST resource (validation, defaults, list/patch/delete by collection) and the
//! LimitRanger admission of pods, as the upstream [sig-scheduling] LimitRange conformance tests
//! use them.

use crate::common;

use common::{app, call, JSON, MERGE};

const SMP: &str = "application/strategic-merge-patch+json";
use serde_json::{json, Value};

const LRS: &str = "/api/v1/namespaces/default/limitranges";
const PODS: &str = "/api/v1/namespaces/default/pods";

fn limit_range(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": {"name": name, "labels": {"e2e": "limits"}},
        "spec": {"limits": [{
            "type": "Container",
            "min": {"cpu": "100m", "memory": "10Mi", "ephemeral-storage": "100Mi"},
            "max": {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi"},
            "defaultRequest": {"cpu": "100m", "memory": "200Mi", "ephemeral-storage": "200Gi"},
            "default": {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi"},
            "maxLimitRequestRatio": {}
        }]}
    })
}

fn pod(name: &str, resources: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "pause", "resources": resources}]}
    })
}

#[tokio::test]
async fn pods_get_the_defaults_and_respect_the_bounds() {
    let (_d, app) = app().await;
    let (code, lr) = call(&app, "POST", LRS, JSON, limit_range("lr")).await;
    assert_eq!(code, 201, "{lr}");

    let (code, p) = call(&app, "POST", PODS, JSON, pod("empty", json!({}))).await;
    assert_eq!(code, 201, "{p}");
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(
        res["requests"],
        json!({"cpu": "100m", "memory": "200Mi", "ephemeral-storage": "200Gi"})
    );
    assert_eq!(
        res["limits"],
        json!({"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi"})
    );
    assert_eq!(
        p["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, ephemeral-storage, memory request for container c; cpu, ephemeral-storage, memory limit for container c"
    );
    assert_eq!(p["status"]["qosClass"], "Burstable");

    // As upstream's conformance test: a limit with no request stands in for the request, so the
    // LimitRange's defaultRequest applies only where neither is given.
    let partial = json!({
        "requests": {"memory": "150Mi", "ephemeral-storage": "150Gi"},
        "limits": {"cpu": "300m"}
    });
    let (code, p) = call(&app, "POST", PODS, JSON, pod("partial", partial)).await;
    assert_eq!(code, 201, "{p}");
    let res = &p["spec"]["containers"][0]["resources"];
    assert_eq!(
        res["requests"],
        json!({"cpu": "300m", "memory": "150Mi", "ephemeral-storage": "150Gi"})
    );
    assert_eq!(
        res["limits"],
        json!({"cpu": "300m", "memory": "500Mi", "ephemeral-storage": "500Gi"})
    );

    let low = json!({"requests": {"cpu": "50m", "memory": "100Mi"}});
    let (code, st) = call(&app, "POST", PODS, JSON, pod("p", low)).await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["reason"], "Forbidden");
    assert_eq!(
        st["message"],
        "pods \"p\" is forbidden: minimum cpu usage per Container is 100m, but request is 50m"
    );
    let (code, _) = call(&app, "GET", &format!("{PODS}/p"), JSON, Value::Null).await;
    assert_eq!(code, 404, "a refused pod is not stored");

    let high = json!({"requests": {"cpu": "600m", "memory": "600Mi"}, "limits": {"cpu": "600m", "memory": "600Mi"}});
    let (code, st) = call(&app, "POST", PODS, JSON, pod("p", high)).await;
    assert_eq!(code, 403, "{st}");
    let msg = st["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with("pods \"p\" is forbidden: [maximum cpu usage per Container is 500m, but limit is 600m, "),
        "{msg}"
    );

    // A lower minimum takes effect at once.
    let (code, mut lr) = call(&app, "GET", &format!("{LRS}/lr"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    lr["spec"]["limits"][0]["min"] = json!({"cpu": "9m", "memory": "49Mi"});
    let (code, lr) = call(&app, "PUT", &format!("{LRS}/lr"), JSON, lr).await;
    assert_eq!(code, 200, "{lr}");
    let low = json!({"requests": {"cpu": "10m", "memory": "50Mi"}});
    let (code, p) = call(&app, "POST", PODS, JSON, pod("p", low)).await;
    assert_eq!(code, 201, "{p}");
    let (code, st) = call(
        &app,
        "POST",
        PODS,
        JSON,
        pod("q", json!({"requests": {"cpu": "600m"}})),
    )
    .await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(
        st["message"],
        "pods \"q\" is forbidden: maximum cpu usage per Container is 500m, but request is 600m"
    );

    // Once the LimitRange is gone, the same pod is admitted.
    let (code, _) = call(&app, "DELETE", &format!("{LRS}/lr"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    let (code, p) = call(
        &app,
        "POST",
        PODS,
        JSON,
        pod("q", json!({"requests": {"cpu": "600m"}})),
    )
    .await;
    assert_eq!(code, 201, "{p}");
    assert!(p["spec"]["containers"][0]["resources"]["limits"].is_null());
}

#[tokio::test]
async fn limit_ranges_are_defaulted_and_validated() {
    let (_d, app) = app().await;
    let only_max = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "m"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "1Mi"}}]}});
    let (code, lr) = call(&app, "POST", LRS, JSON, only_max).await;
    assert_eq!(code, 201, "{lr}");
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "1"}));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "1", "memory": "1Mi"})
    );

    let bad = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "bad"},
        "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}});
    let (code, st) = call(&app, "POST", LRS, JSON, bad).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid");
    let causes = st["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        causes
            .iter()
            .any(|c| c["field"] == "spec.limits[0].min[cpu]"
                && c["message"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("min value 2 is greater than max value 1")),
        "{st}"
    );

    let (code, disc) = call(&app, "GET", "/api/v1", JSON, Value::Null).await;
    assert_eq!(code, 200);
    let entry = disc["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "limitranges").cloned())
        .unwrap_or_default();
    assert_eq!(entry["shortNames"], json!(["limits"]), "{entry}");
    assert_eq!(entry["namespaced"], true);
}

#[tokio::test]
async fn list_patch_and_delete_by_collection() {
    let (_d, app) = app().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}});
    let (code, _) = call(&app, "POST", "/api/v1/namespaces", JSON, ns).await;
    assert_eq!(code, 201);
    for path in [LRS, "/api/v1/namespaces/other/limitranges"] {
        let (code, lr) = call(&app, "POST", path, JSON, limit_range("lr")).await;
        assert_eq!(code, 201, "{lr}");
    }
    let (code, list) = call(
        &app,
        "GET",
        "/api/v1/limitranges?labelSelector=e2e%3Dlimits",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "LimitRangeList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));

    // The conformance test's strategic merge patch: a new label and the whole limits list.
    let mut limits = limit_range("lr")["spec"]["limits"].clone();
    limits[0]["min"] = json!({"cpu": "9m", "memory": "49Mi", "ephemeral-storage": "49Gi"});
    let patch = json!({"metadata": {"labels": {"lr": "patched"}}, "spec": {"limits": limits}});
    let (code, p) = call(&app, "PATCH", &format!("{LRS}/lr"), SMP, patch).await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["metadata"]["labels"]["lr"], "patched");
    assert_eq!(
        p["spec"]["limits"][0]["min"],
        json!({"cpu": "9m", "memory": "49Mi", "ephemeral-storage": "49Gi"})
    );

    let patch = json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "50m"}, "max": {"cpu": "1"}}]}});
    let (code, p) = call(
        &app,
        "PATCH",
        "/api/v1/namespaces/other/limitranges/lr",
        MERGE,
        patch,
    )
    .await;
    assert_eq!(code, 200, "{p}");
    assert_eq!(
        p["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "1"})
    );

    let (code, _) = call(
        &app,
        "DELETE",
        &format!("{LRS}?labelSelector=lr%3Dpatched"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, list) = call(&app, "GET", "/api/v1/limitranges", JSON, Value::Null).await;
    assert_eq!(code, 200);
    let left: Vec<&Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| &i["metadata"]["namespace"])
        .collect();
    assert_eq!(left, vec!["other"], "{list}");
}

/// kubectl sends YAML's `cpu: 1` as a JSON number; it is a quantity like "1".
#[tokio::test]
async fn numeric_quantities() {
    let (_d, app) = app().await;
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "n"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": 1}}]}});
    let (code, lr) = call(&app, "POST", LRS, JSON, lr).await;
    assert_eq!(code, 201, "{lr}");
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "1"})
    );
    let (code, st) = call(
        &app,
        "POST",
        PODS,
        JSON,
        pod("p", json!({"limits": {"cpu": 2}})),
    )
    .await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(
        st["message"],
        "pods \"p\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );
    assert_eq!(
        st["details"],
        json!({"group": "", "kind": "pods", "name": "p"})
    );
}
