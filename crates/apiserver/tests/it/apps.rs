//! apps/v1 StatefulSets, DaemonSets and ControllerRevisions through the real router: defaults,
//! upstream's validation Status, the scale subresource, tables, and who may write them.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::{self, ALICE, NODE};
const ANON: &str = "";

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

impl Env {
    async fn new() -> Env {
        let (dir, app) = common::tenancy_app().await;
        Env { _dir: dir, app }
    }

    async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        ct: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", ct);
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(bytes)).unwrap())
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn json(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(token, method, path, "application/json", body)
            .await
    }
}

fn sts(name: &str) -> Value {
    // Restricted-compliant, so pod security admission has nothing to say in user namespaces.
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"serviceName": name, "selector": {"matchLabels": {"app": name}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}}})
}

fn ds(name: &str) -> Value {
    let mut d = sts(name);
    d["kind"] = json!("DaemonSet");
    let spec = d["spec"].as_object_mut().unwrap();
    spec.remove("serviceName");
    spec.remove("volumeClaimTemplates");
    d["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("volumeMounts");
    d
}

#[track_caller]
fn status(code: u16, body: &Value, want_code: u16, reason: &str, message: &str) {
    assert_eq!(code, want_code, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["message"], message, "{body}");
}

#[tokio::test]
async fn statefulsets_defaults_validation_scale_and_table() {
    let e = Env::new().await;
    let base = "/apis/apps/v1/namespaces/u-alice/statefulsets";
    let (code, body) = e.json(ALICE, "POST", base, sts("web")).await;
    assert_eq!(code, 201, "{body}");
    let s = &body["spec"];
    assert_eq!(
        (
            &s["replicas"],
            &s["podManagementPolicy"],
            &s["revisionHistoryLimit"]
        ),
        (&json!(1), &json!("OrderedReady"), &json!(10))
    );
    assert_eq!(
        s["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        s["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );

    let mut bad = sts("bad");
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let (code, body) = e.json(ALICE, "POST", base, bad).await;
    status(code, &body, 422, "Invalid",
        "StatefulSet.apps \"bad\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`");
    assert_eq!(
        body["details"]["causes"][0]["field"],
        "spec.template.metadata.labels"
    );
    let mut never = sts("never");
    never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let (code, body) = e.json(ALICE, "POST", base, never).await;
    status(code, &body, 422, "Invalid",
        "StatefulSet.apps \"never\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"");

    // Only replicas, template, updateStrategy, ... may change.
    let (code, body) = e
        .call(
            ALICE,
            "PATCH",
            &format!("{base}/web"),
            "application/merge-patch+json",
            json!({"spec": {"serviceName": "other"}}),
        )
        .await;
    status(code, &body, 422, "Invalid",
        "StatefulSet.apps \"web\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
    let (code, body) = e
        .call(ALICE, "PATCH", &format!("{base}/web"), "application/merge-patch+json",
            json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 1}}, "minReadySeconds": 2}}))
        .await;
    assert_eq!(code, 200, "{body}");

    // Scale subresource.
    let (code, body) = e
        .json(ALICE, "GET", &format!("{base}/web/scale"), Value::Null)
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (
            &body["kind"],
            &body["spec"]["replicas"],
            &body["status"]["selector"]
        ),
        (&json!("Scale"), &json!(1), &json!("app=web"))
    );
    let (code, body) = e
        .call(
            ALICE,
            "PATCH",
            &format!("{base}/web/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (_, body) = e
        .json(ALICE, "GET", &format!("{base}/web"), Value::Null)
        .await;
    assert_eq!(body["spec"]["replicas"], 3);

    // Table as kubectl asks for it.
    let req = Request::builder()
        .uri(base)
        .header("authorization", format!("Bearer {ALICE}"))
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Body::empty())
        .unwrap();
    let resp = e.app.clone().oneshot(req).await.unwrap();
    let t: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Ready", "Age", "Containers", "Images"]);
    assert_eq!(t["rows"][0]["cells"][1], "0/3");

    // Discovery: short names and subresources.
    let (_, d) = e.json(ALICE, "GET", "/apis/apps/v1", Value::Null).await;
    let find = |n: &str| {
        d["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
    };
    assert_eq!(find("statefulsets").unwrap()["shortNames"], json!(["sts"]));
    assert_eq!(find("daemonsets").unwrap()["shortNames"], json!(["ds"]));
    assert!(find("statefulsets/scale").is_some() && find("statefulsets/status").is_some());
    assert!(find("daemonsets/status").is_some() && find("daemonsets/scale").is_none());
    assert!(find("controllerrevisions").is_some());
}

#[tokio::test]
async fn daemonsets_and_revisions_validation() {
    let e = Env::new().await;
    let base = "/apis/apps/v1/namespaces/u-alice/daemonsets";
    let (code, body) = e.json(ALICE, "POST", base, ds("agent")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        body["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(body["spec"]["revisionHistoryLimit"], 10);
    let (code, body) = e
        .call(ALICE, "PATCH", &format!("{base}/agent"), "application/merge-patch+json",
            json!({"spec": {"selector": {"matchLabels": {"app": "agent", "x": "y"}}, "template": {"metadata": {"labels": {"x": "y"}}}}}))
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"][0]["field"], "spec.selector",
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("field is immutable"),
        "{body}"
    );
    let mut both = ds("both");
    both["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}});
    let (code, body) = e.json(ALICE, "POST", base, both).await;
    status(code, &body, 422, "Invalid",
        "DaemonSet.apps \"both\" is invalid: spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero");

    let revs = "/apis/apps/v1/namespaces/u-alice/controllerrevisions";
    let (code, body) = e
        .json(
            ALICE,
            "POST",
            revs,
            json!({"metadata": {"name": "r"}, "revision": 1}),
        )
        .await;
    status(
        code,
        &body,
        422,
        "Invalid",
        "ControllerRevision.apps \"r\" is invalid: data: Required value: data is mandatory",
    );
    let (code, body) = e
        .json(
            ALICE,
            "POST",
            revs,
            json!({"metadata": {"name": "r"}, "revision": 1, "data": {"spec": {"x": 1}}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = e
        .call(
            ALICE,
            "PATCH",
            &format!("{revs}/r"),
            "application/merge-patch+json",
            json!({"revision": 4}),
        )
        .await;
    assert_eq!((code, &body["revision"]), (200, &json!(4)), "{body}");
    let (code, body) = e
        .call(
            ALICE,
            "PATCH",
            &format!("{revs}/r"),
            "application/merge-patch+json",
            json!({"data": {"spec": {"x": 2}}}),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["field"], "data", "{body}");
}

#[tokio::test]
async fn identities_that_may_not_write_workloads() {
    let e = Env::new().await;
    // A tenant in another tenant's namespace.
    for (plural, obj) in [("statefulsets", sts("web")), ("daemonsets", ds("agent"))] {
        let (code, body) = e
            .json(
                ALICE,
                "POST",
                &format!("/apis/apps/v1/namespaces/u-bob/{plural}"),
                obj,
            )
            .await;
        status(code, &body, 403, "Forbidden", &format!(
            "{plural}.apps is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"{plural}\" in API group \"apps\" in the namespace \"u-bob\""));
    }
    let (code, body) = e
        .json(
            ALICE,
            "GET",
            "/apis/apps/v1/namespaces/u-bob/controllerrevisions",
            Value::Null,
        )
        .await;
    status(code, &body, 403, "Forbidden",
        "controllerrevisions.apps is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"controllerrevisions\" in API group \"apps\" in the namespace \"u-bob\"");
    // A node creating a DaemonSet (a way onto every node) is refused.
    let (code, body) = e
        .json(
            NODE,
            "POST",
            "/apis/apps/v1/namespaces/kube-system/daemonsets",
            ds("evil"),
        )
        .await;
    status(code, &body, 403, "Forbidden",
        "daemonsets.apps is forbidden: User \"system:node:n1\" cannot create resource \"daemonsets\" in API group \"apps\" in the namespace \"kube-system\"");
    // Unauthenticated.
    let (code, body) = e
        .json(
            ANON,
            "POST",
            "/apis/apps/v1/namespaces/u-alice/statefulsets",
            sts("web"),
        )
        .await;
    assert_eq!(code, 401, "{body}");
    // The tenant itself, in its own namespace, may.
    let (code, body) = e
        .json(
            ALICE,
            "POST",
            "/apis/apps/v1/namespaces/u-alice/daemonsets",
            ds("agent"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
}
