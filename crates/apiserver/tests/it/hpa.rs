//! HorizontalPodAutoscalers through the real router: autoscaling/v2 and v1 over one store (the
//! v1 <-> v2 conversion with the round-trip annotations), defaults, validation Statuses, the
//! status subresource, `kubectl get hpa` columns, discovery, and who may write HPAs (user tier
//! only in its namespace, node identity not at all, anonymous not at all).

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::{self, ADMIN, ALICE, NODE};
const V2: &str = "/apis/autoscaling/v2/namespaces";
const V1: &str = "/apis/autoscaling/v1/namespaces";

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

impl Env {
    async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        ct: &str,
        accept: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", ct)
            .header("accept", accept);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(serde_json::to_vec(&body).unwrap())
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call_as(
            Some(token),
            method,
            path,
            "application/json",
            "application/json",
            body,
        )
        .await
    }
}

async fn env() -> Env {
    let (dir, app) = common::tenancy_app().await;
    Env { _dir: dir, app }
}

fn hpa_v2(name: &str) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 5,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "256Mi"}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}})
}

#[track_caller]
fn invalid(code: u16, body: &Value, name: &str, causes: &[(&str, &str)]) {
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    let msgs: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    assert_eq!(
        body["message"],
        format!(
            "HorizontalPodAutoscaler.autoscaling \"{name}\" is invalid: {}",
            if msgs.len() == 1 {
                msgs[0].clone()
            } else {
                format!("[{}]", msgs.join(", "))
            }
        ),
        "{body}"
    );
    let got: Vec<(String, String)> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<String> = causes.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        got.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
        want,
        "{body}"
    );
}

#[tokio::test]
async fn v2_defaults_and_v1_view_of_the_same_object() {
    let e = env().await;
    let (code, created) = e
        .call(
            ADMIN,
            "POST",
            &format!("{V2}/u-alice/horizontalpodautoscalers"),
            hpa_v2("web"),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["minReplicas"], 1);
    assert_eq!(created["metadata"]["generation"], 1);
    let b = &created["spec"]["behavior"];
    assert_eq!(b["scaleDown"]["stabilizationWindowSeconds"], 30);
    assert_eq!(
        b["scaleDown"]["policies"],
        json!([{"type": "Percent", "value": 100, "periodSeconds": 15}])
    );
    assert_eq!(
        b["scaleUp"]["policies"],
        json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}])
    );
    // The v1 view: the cpu target, the rest in annotations.
    let (code, v1) = e
        .call(
            ADMIN,
            "GET",
            &format!("{V1}/u-alice/horizontalpodautoscalers/web"),
            Value::Null,
        )
        .await;
    assert_eq!(code, 200, "{v1}");
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(v1["spec"]["minReplicas"], 1);
    let ann = &v1["metadata"]["annotations"];
    let others: Value = serde_json::from_str(
        ann["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        others,
        json!([{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "256Mi"}}])
    );
    assert!(ann["autoscaling.alpha.kubernetes.io/behavior"].is_string());
    // An update through v1 (changing the cpu target) keeps the v2-only memory metric and behavior.
    let mut upd = v1.clone();
    upd["spec"]["targetCPUUtilizationPercentage"] = json!(70);
    let (code, out) = e
        .call(
            ADMIN,
            "PUT",
            &format!("{V1}/u-alice/horizontalpodautoscalers/web"),
            upd,
        )
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["spec"]["targetCPUUtilizationPercentage"], 70);
    let (_, v2) = e
        .call(
            ADMIN,
            "GET",
            &format!("{V2}/u-alice/horizontalpodautoscalers/web"),
            Value::Null,
        )
        .await;
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert!(v2["metadata"]["annotations"].is_null(), "{v2}");
    assert_eq!(v2["metadata"]["generation"], 2);
    let metrics = v2["spec"]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2, "{v2}");
    assert_eq!(metrics[0]["resource"]["name"], "memory");
    assert_eq!(
        metrics[1]["resource"]["target"],
        json!({"type": "Utilization", "averageUtilization": 70})
    );
    assert_eq!(v2["spec"]["behavior"], created["spec"]["behavior"]);

    // Created through v1 without a cpu target: v2 shows the default 80% cpu metric.
    let (code, out) = e
        .call(
            ADMIN,
            "POST",
            &format!("{V1}/u-alice/horizontalpodautoscalers"),
            json!({"metadata": {"name": "plain"}, "spec": {"scaleTargetRef":
                {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}}),
        )
        .await;
    assert_eq!(code, 201, "{out}");
    assert_eq!(out["apiVersion"], "autoscaling/v1");
    let (_, v2) = e
        .call(
            ADMIN,
            "GET",
            &format!("{V2}/u-alice/horizontalpodautoscalers/plain"),
            Value::Null,
        )
        .await;
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );

    // Status through v2, read back through v1 (current cpu and conditions annotation).
    let status = json!({"status": {"currentReplicas": 2, "desiredReplicas": 3,
        "currentMetrics": [{"type": "Resource", "resource": {"name": "memory",
            "current": {"averageValue": "100Mi"}}}, {"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": 90, "averageValue": "90m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
            "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        "spec": {"maxReplicas": 99}});
    let (code, out) = e
        .call_as(
            Some(ADMIN),
            "PATCH",
            &format!("{V2}/u-alice/horizontalpodautoscalers/web/status"),
            "application/merge-patch+json",
            "application/json",
            status,
        )
        .await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(
        out["spec"]["maxReplicas"], 5,
        "status writes leave the spec"
    );
    let (_, v1) = e
        .call(
            ADMIN,
            "GET",
            &format!("{V1}/u-alice/horizontalpodautoscalers/web"),
            Value::Null,
        )
        .await;
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 90);
    assert_eq!(v1["status"]["desiredReplicas"], 3);
    let conds: Value = serde_json::from_str(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(conds[0]["reason"], "SucceededRescale");

    // A status write through v1: its conditions ride in the annotation, and land in v2.
    let mut st1 = v1.clone();
    st1["status"]["desiredReplicas"] = json!(4);
    st1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"] = json!(
        r#"[{"type":"ScalingActive","status":"False","reason":"FailedGetResourceMetric","message":"m","lastTransitionTime":"2026-01-02T00:00:00Z"}]"#
    );
    let (code, out) = e
        .call(
            ADMIN,
            "PUT",
            &format!("{V1}/u-alice/horizontalpodautoscalers/web/status"),
            st1,
        )
        .await;
    assert_eq!(code, 200, "{out}");
    let (_, v2) = e
        .call(
            ADMIN,
            "GET",
            &format!("{V2}/u-alice/horizontalpodautoscalers/web"),
            Value::Null,
        )
        .await;
    assert_eq!(v2["status"]["desiredReplicas"], 4, "{v2}");
    assert_eq!(
        v2["status"]["conditions"][0]["reason"],
        "FailedGetResourceMetric"
    );
    assert_eq!(v2["status"]["currentMetrics"][1]["resource"]["name"], "cpu");
    assert!(v2["metadata"]["annotations"].is_null(), "{v2}");

    // `kubectl get hpa`'s columns, through either version.
    for base in [V2, V1] {
        let (code, t) = e
            .call_as(
                Some(ADMIN),
                "GET",
                &format!("{base}/u-alice/horizontalpodautoscalers"),
                "application/json",
                "application/json;as=Table;v=v1;g=meta.k8s.io",
                Value::Null,
            )
            .await;
        assert_eq!(code, 200, "{t}");
        let cols: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            cols,
            [
                "Name",
                "Reference",
                "Targets",
                "MinPods",
                "MaxPods",
                "Replicas",
                "Age"
            ]
        );
        let rows = t["rows"].as_array().unwrap();
        let web = rows
            .iter()
            .find(|r| r["cells"][0] == "web")
            .expect("web row");
        assert_eq!(web["cells"][1], "Deployment/web");
        assert_eq!(web["cells"][2], "memory: 100Mi/256Mi, cpu: 90%/70%");
        assert_eq!(web["cells"][3], "1");
        assert_eq!(web["cells"][4], 5);
        assert_eq!(web["cells"][5], 2);
    }

    // Discovery: both versions, v2 preferred, short name hpa.
    let (_, g) = e.call(ADMIN, "GET", "/apis/autoscaling", Value::Null).await;
    assert_eq!(g["preferredVersion"]["groupVersion"], "autoscaling/v2");
    let (_, rl) = e
        .call(ADMIN, "GET", "/apis/autoscaling/v1", Value::Null)
        .await;
    let hpa = rl["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "horizontalpodautoscalers")
        .cloned()
        .expect("hpa in v1 discovery");
    assert_eq!(hpa["shortNames"], json!(["hpa"]));
    assert_eq!(hpa["namespaced"], true);
}

#[tokio::test]
async fn invalid_hpas_get_upstream_statuses() {
    let e = env().await;
    let path = format!("{V2}/u-alice/horizontalpodautoscalers");
    let mut h = hpa_v2("zero");
    h["spec"]["minReplicas"] = json!(0);
    let (code, body) = e.call(ADMIN, "POST", &path, h).await;
    invalid(
        code,
        &body,
        "zero",
        &[(
            "spec.minReplicas",
            "Invalid value: 0: must be greater than or equal to 1",
        )],
    );
    let mut h = hpa_v2("minmax");
    h["spec"]["minReplicas"] = json!(6);
    let (code, body) = e.call(ADMIN, "POST", &path, h).await;
    invalid(
        code,
        &body,
        "minmax",
        &[(
            "spec.maxReplicas",
            "Invalid value: 5: must be greater than or equal to `minReplicas`",
        )],
    );
    let mut h = hpa_v2("noref");
    h["spec"]["scaleTargetRef"] = json!({"kind": "", "name": ""});
    let (code, body) = e.call(ADMIN, "POST", &path, h).await;
    invalid(
        code,
        &body,
        "noref",
        &[
            ("spec.scaleTargetRef.kind", "Required value"),
            ("spec.scaleTargetRef.name", "Required value"),
        ],
    );
    let mut h = hpa_v2("badmetric");
    h["spec"]["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 50, "averageValue": "100m"}}}]);
    let (code, body) = e.call(ADMIN, "POST", &path, h).await;
    invalid(
        code,
        &body,
        "badmetric",
        &[(
            "spec.metrics[0].resource.target.averageValue",
            "Forbidden: may not set both a target raw value and a target utilization",
        )],
    );
    let mut h = hpa_v2("badpolicy");
    h["spec"]["behavior"] = json!({"scaleUp": {"policies": []}});
    let (code, body) = e.call(ADMIN, "POST", &path, h).await;
    invalid(
        code,
        &body,
        "badpolicy",
        &[(
            "spec.behavior.scaleUp.policies",
            "Required value: must specify at least one Policy",
        )],
    );
    // Through v1, the paths are those of the stored (v2) form, as upstream reports them.
    let (code, body) = e
        .call(
            ADMIN,
            "POST",
            &format!("{V1}/u-alice/horizontalpodautoscalers"),
            json!({"metadata": {"name": "v1bad"}, "spec": {"scaleTargetRef":
                {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                "targetCPUUtilizationPercentage": 0}}),
        )
        .await;
    invalid(
        code,
        &body,
        "v1bad",
        &[(
            "spec.metrics[0].resource.target.averageUtilization",
            "Invalid value: 0: must be greater than 0",
        )],
    );
    // A status with negative replicas is refused too.
    let (code, _) = e.call(ADMIN, "POST", &path, hpa_v2("ok")).await;
    assert_eq!(code, 201);
    let (code, body) = e
        .call_as(
            Some(ADMIN),
            "PATCH",
            &format!("{path}/ok/status"),
            "application/merge-patch+json",
            "application/json",
            json!({"status": {"currentReplicas": -1, "desiredReplicas": 0}}),
        )
        .await;
    invalid(
        code,
        &body,
        "ok",
        &[(
            "status.currentReplicas",
            "Invalid value: -1: must be greater than or equal to 0",
        )],
    );
}

#[tokio::test]
async fn only_tenants_in_their_namespace_write_hpas() {
    let e = env().await;
    // Alice may manage HPAs in her namespace (the namespace's edit-like binding).
    let (code, body) = e
        .call(
            ALICE,
            "POST",
            &format!("{V2}/u-alice/horizontalpodautoscalers"),
            hpa_v2("mine"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = e
        .call(
            ALICE,
            "POST",
            &format!("{V2}/u-bob/horizontalpodautoscalers"),
            hpa_v2("theirs"),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "horizontalpodautoscalers.autoscaling is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"horizontalpodautoscalers\" in API group \"autoscaling\" in the namespace \"u-bob\""
    );
    let (code, body) = e
        .call(
            ALICE,
            "GET",
            &format!("{V1}/u-bob/horizontalpodautoscalers"),
            Value::Null,
        )
        .await;
    assert_eq!(code, 403, "{body}");
    // A node identity may not write HPAs anywhere.
    let (code, body) = e
        .call(
            NODE,
            "POST",
            &format!("{V2}/u-alice/horizontalpodautoscalers"),
            hpa_v2("node"),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert!(
        body["message"].as_str().unwrap().starts_with(
            "horizontalpodautoscalers.autoscaling is forbidden: User \"system:node:n1\" cannot create resource \"horizontalpodautoscalers\""
        ),
        "{body}"
    );
    let (code, body) = e
        .call(
            NODE,
            "DELETE",
            &format!("{V2}/u-alice/horizontalpodautoscalers/mine"),
            Value::Null,
        )
        .await;
    assert_eq!(code, 403, "{body}");
    // Nobody unauthenticated.
    let (code, body) = e
        .call_as(
            None,
            "POST",
            &format!("{V2}/u-alice/horizontalpodautoscalers"),
            "application/json",
            "application/json",
            hpa_v2("anon"),
        )
        .await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(body["reason"], "Unauthorized");
}
