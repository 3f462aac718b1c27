//! Multi-tenancy through the real router: each identity (user tier, node tier, admin) tries what
//! it must not do; the refusals are checked for their status code, reason and message.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use daas_apiserver::{router, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "admin-token";
const ALICE: &str = "alice-token";
const NODE: &str = "node-token";

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

struct Resp {
    code: u16,
    body: Value,
    warnings: Vec<String>,
}

impl Resp {
    #[track_caller]
    fn refused(&self, code: u16, message: &str) {
        assert_eq!(self.code, code, "{}", self.body);
        assert_eq!(self.body["kind"], "Status", "{}", self.body);
        let reason = match code {
            403 => "Forbidden",
            404 => "NotFound",
            _ => self.body["reason"].as_str().unwrap_or(""),
        };
        assert_eq!(self.body["reason"], reason, "{}", self.body);
        assert_eq!(self.body["message"], message, "{}", self.body);
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let user = |name: &str, groups: &[&str]| User {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    };
    let auth = Arc::new(StaticTokens::new(vec![
        (ADMIN.into(), user("admin", &["system:masters"])),
        (
            ALICE.into(),
            user(
                "daas:user:0xa11ce",
                &[
                    "daas:users",
                    "daas:namespace:u-alice",
                    "system:authenticated",
                ],
            ),
        ),
        (
            NODE.into(),
            user("system:node:n1", &["system:nodes", "system:authenticated"]),
        ),
    ]));
    let e = Env {
        _dir: dir,
        app: router(store, auth, ServerOptions::default()),
    };
    for (ns, labels) in [
        (
            "u-alice",
            json!({"k3s-daas.io/tier": "user", "pod-security.kubernetes.io/enforce": "privileged"}),
        ),
        ("u-bob", json!({"k3s-daas.io/tier": "user"})),
        (
            "base",
            json!({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"}),
        ),
    ] {
        let r = e
            .call(
                ADMIN,
                "POST",
                "/api/v1/namespaces",
                json!({"metadata": {"name": ns, "labels": labels}}),
            )
            .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    // The user tier's access is RBAC: its namespace's owner RoleBinding (as the master creates it).
    for ns in ["u-alice", "u-bob"] {
        let r = e
            .call(
                ADMIN,
                "POST",
                &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
                daas_apiserver::rbac::user_namespace_binding(ns),
            )
            .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    for (ns, name) in [
        ("kube-system", "root-secret"),
        ("u-bob", "bob-secret"),
        ("u-alice", "db"),
        ("u-alice", "unrelated"),
    ] {
        let r = e
            .call(
                ADMIN,
                "POST",
                &format!("/api/v1/namespaces/{ns}/secrets"),
                json!({"metadata": {"name": name}, "stringData": {"k": "v"}}),
            )
            .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    for name in ["app", "other"] {
        let r = e
            .call(
                ADMIN,
                "POST",
                "/api/v1/namespaces/u-alice/configmaps",
                json!({"metadata": {"name": name}, "data": {"k": "v"}}),
            )
            .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    // The serviceaccount controller's `default` account (no controllers run here).
    let r = e
        .call(
            ADMIN,
            "POST",
            "/api/v1/namespaces/u-alice/serviceaccounts",
            json!({"metadata": {"name": "default"}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    // A restricted pod on n1 that uses Secret "db" and ConfigMap "app"; one on n2 that uses "unrelated".
    let mut p = restricted_pod("web");
    p["spec"]["nodeName"] = json!("n1");
    p["spec"]["volumes"] = json!([{"name": "db", "secret": {"secretName": "db"}}]);
    p["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": "app"}}]);
    let r = e
        .call(ADMIN, "POST", "/api/v1/namespaces/u-alice/pods", p)
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let mut p = restricted_pod("elsewhere");
    p["spec"]["nodeName"] = json!("n2");
    p["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "unrelated"}}]);
    let r = e
        .call(ADMIN, "POST", "/api/v1/namespaces/u-alice/pods", p)
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    e
}

impl Env {
    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> Resp {
        self.call_ct(token, method, path, "application/json", body)
            .await
    }

    async fn call_ct(&self, token: &str, method: &str, path: &str, ct: &str, body: Value) -> Resp {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", ct)
            .body(Body::from(bytes))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let code = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            code,
            body: serde_json::from_slice(&b).unwrap_or(Value::Null),
            warnings,
        }
    }
}

fn restricted_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": "busybox", "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}})
}

fn root_pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "hostNetwork": true, "hostPID": true,
        "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}})
}

const ROOT_POD_RESTRICTED: &str = "violates PodSecurity \"restricted:latest\": \
allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
host namespaces (hostNetwork=true, hostPID=true), \
privileged (container \"c\" must not set securityContext.privileged=true), \
restricted volume types (volume \"root\" uses restricted volume type \"hostPath\"), \
runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")";

#[tokio::test]
async fn user_cannot_run_root_pods_or_place_them() {
    let e = env().await;
    let pods = "/api/v1/namespaces/u-alice/pods";
    // The user namespace says "privileged", but user namespaces are always restricted.
    e.call(ALICE, "POST", pods, root_pod("root")).await.refused(
        403,
        &format!("pods \"root\" is forbidden: {ROOT_POD_RESTRICTED}"),
    );
    // Even the admin cannot put such a pod into a user namespace (nor launder it via a controller).
    e.call(ADMIN, "POST", pods, root_pod("root")).await.refused(
        403,
        &format!("pods \"root\" is forbidden: {ROOT_POD_RESTRICTED}"),
    );
    // Init containers are checked as well.
    let mut p = restricted_pod("init");
    p["spec"]["initContainers"] = json!([{"name": "i", "image": "busybox", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}}]);
    e.call(ALICE, "POST", pods, p).await.refused(403, "pods \"init\" is forbidden: violates PodSecurity \"restricted:latest\": unrestricted capabilities (container \"i\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)");

    let r = e.call(ALICE, "POST", pods, restricted_pod("ok")).await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // Updates cannot make the pod privileged: a running pod's spec is immutable (upstream's
    // validation refuses the change before Pod Security sees it).
    let r = e.call_ct(ALICE, "PATCH", &format!("{pods}/ok"), "application/json-patch+json",
        json!([{"op": "add", "path": "/spec/containers/0/securityContext/privileged", "value": true}])).await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap_or("").starts_with(
        "Pod \"ok\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"), "{}", r.body);
    // ... while a metadata-only change is fine.
    let r = e
        .call_ct(
            ALICE,
            "PATCH",
            &format!("{pods}/ok"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);

    // Placement: spec.nodeName on create or update, and pods/binding.
    let mut p = restricted_pod("pinned");
    p["spec"]["nodeName"] = json!("n1");
    e.call(ALICE, "POST", pods, p).await.refused(403, "pods \"pinned\" is forbidden: spec.nodeName: Forbidden: user \"daas:user:0xa11ce\" may not choose the node of a pod (\"n1\"); pods are placed by the scheduler");
    let r = e
        .call_ct(
            ALICE,
            "PATCH",
            &format!("{pods}/ok"),
            "application/merge-patch+json",
            json!({"spec": {"nodeName": "n1"}}),
        )
        .await;
    // (On update, a pod's nodeName is immutable for everyone: upstream's validation refuses it.)
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("spec.nodeName: null -> \"n1\""),
        "{}",
        r.body
    );
    let r = e.call(ALICE, "POST", &format!("{pods}/ok/binding"), json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "ok"}, "target": {"kind": "Node", "name": "n1"}})).await;
    r.refused(403, "pods \"ok\" is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"pods/binding\" in API group \"\" in the namespace \"u-alice\"");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}}});
    e.call(ALICE, "POST", "/apis/apps/v1/namespaces/u-alice/deployments", d).await.refused(403,
        "deployments.apps \"d\" is forbidden: spec.template.spec.nodeName: Forbidden: user \"daas:user:0xa11ce\" may not choose the node of a pod (\"n1\"); pods are placed by the scheduler");
    // The admin (the scheduler's identity) still binds.
    let r = e.call(ADMIN, "POST", &format!("{pods}/ok/binding"), json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "ok"}, "target": {"kind": "Node", "name": "n1"}})).await;
    assert_eq!(r.code, 201, "{}", r.body);

    // The namespace labels (which pick the level) are the master's: the user may only read them.
    let r = e
        .call(ALICE, "GET", "/api/v1/namespaces/u-alice", Value::Null)
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = e
        .call_ct(
            ALICE,
            "PATCH",
            "/api/v1/namespaces/u-alice",
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"k3s-daas.io/tier": null}}}),
        )
        .await;
    r.refused(403, "namespaces \"u-alice\" is forbidden: User \"daas:user:0xa11ce\" cannot patch resource \"namespaces\" in API group \"\" at the cluster scope");
    let r = e
        .call(
            ALICE,
            "POST",
            "/api/v1/namespaces",
            json!({"metadata": {"name": "mine"}}),
        )
        .await;
    r.refused(403, "namespaces is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"namespaces\" in API group \"\" at the cluster scope");
    // Other namespaces stay out of reach.
    e.call(ALICE, "GET", "/api/v1/namespaces/u-bob/secrets/bob-secret", Value::Null).await.refused(403,
        "secrets \"bob-secret\" is forbidden: User \"daas:user:0xa11ce\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-bob\"");
}

#[tokio::test]
async fn workload_templates_and_warn_label_give_warnings() {
    let e = env().await;
    // A Deployment whose template violates the enforced level is accepted with a warning; its
    // pods are refused when the controller creates them.
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"hostPID": true, "containers": [{"name": "c", "image": "busybox"}]}}}});
    let r = e
        .call(
            ALICE,
            "POST",
            "/apis/apps/v1/namespaces/u-alice/deployments",
            d.clone(),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].starts_with("299 - \"would violate PodSecurity \\\"restricted:latest\\\": allowPrivilegeEscalation != false"), "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("host namespaces (hostPID=true)"),
        "{:?}",
        r.warnings
    );

    // Namespace "base": enforce baseline, warn restricted.
    let r = e
        .call(
            ADMIN,
            "POST",
            "/api/v1/namespaces/base/serviceaccounts",
            json!({"metadata": {"name": "default"}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = e.call(ADMIN, "POST", "/api/v1/namespaces/base/pods", json!({"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("would violate PodSecurity \\\"restricted:latest\\\": allowPrivilegeEscalation != false (container \\\"c\\\""), "{:?}", r.warnings);
    e.call(ADMIN, "POST", "/api/v1/namespaces/base/pods", root_pod("root")).await.refused(403,
        "pods \"root\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"root\"), privileged (container \"c\" must not set securityContext.privileged=true)");
    let r = e
        .call(
            ADMIN,
            "POST",
            "/apis/apps/v1/namespaces/base/deployments",
            d,
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("restricted:latest") && r.warnings[1].contains("baseline:latest"),
        "{:?}",
        r.warnings
    );

    // Unlabelled system namespaces stay privileged for the admin.
    let r = e
        .call(
            ADMIN,
            "POST",
            "/api/v1/namespaces/kube-system/serviceaccounts",
            json!({"metadata": {"name": "default"}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = e
        .call(
            ADMIN,
            "POST",
            "/api/v1/namespaces/kube-system/pods",
            root_pod("agent"),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
}

#[tokio::test]
async fn node_reads_only_what_its_pods_reference() {
    let e = env().await;
    let nr = "no relationship found between node 'n1' and this object";
    let r = e
        .call(
            NODE,
            "GET",
            "/api/v1/namespaces/u-alice/secrets/db",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["name"], "db");
    let r = e
        .call(
            NODE,
            "GET",
            "/api/v1/namespaces/u-alice/configmaps/app",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    e.call(NODE, "GET", "/api/v1/namespaces/kube-system/secrets/root-secret", Value::Null).await.refused(403,
        &format!("secrets \"root-secret\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"kube-system\": {nr}"));
    e.call(NODE, "GET", "/api/v1/namespaces/u-bob/secrets/bob-secret", Value::Null).await.refused(403,
        &format!("secrets \"bob-secret\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-bob\": {nr}"));
    // Referenced only by a pod on another node.
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets/unrelated", Value::Null).await.refused(403,
        &format!("secrets \"unrelated\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/configmaps/other", Value::Null).await.refused(403,
        &format!("configmaps \"other\" is forbidden: User \"system:node:n1\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"u-alice\": {nr}"));
    // Lists and watches: only narrowed to a referenced object.
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets", Value::Null).await.refused(403,
        "secrets is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" in the namespace \"u-alice\": No Object name found");
    e.call(NODE, "GET", "/api/v1/secrets", Value::Null).await.refused(403,
        "secrets is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" at the cluster scope: No Object name found");
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/configmaps?watch=true", Value::Null).await.refused(403,
        "configmaps is forbidden: User \"system:node:n1\" cannot watch resource \"configmaps\" in API group \"\" in the namespace \"u-alice\": No Object name found");
    let r = e
        .call(
            NODE,
            "GET",
            "/api/v1/namespaces/u-alice/secrets?fieldSelector=metadata.name%3Ddb",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets?fieldSelector=metadata.name%3Dunrelated", Value::Null).await.refused(403,
        &format!("secrets \"unrelated\" is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
    // Writes to secrets are never a node's.
    e.call_ct(NODE, "PATCH", "/api/v1/namespaces/u-alice/secrets/db", "application/merge-patch+json", json!({"data": {}})).await.refused(403,
        "secrets \"db\" is forbidden: User \"system:node:n1\" cannot patch resource \"secrets\" in API group \"\" in the namespace \"u-alice\": can only read resources of this type");
    // Once the pod is gone, so is the access.
    let r = e
        .call(
            ADMIN,
            "DELETE",
            "/api/v1/namespaces/u-alice/pods/web?gracePeriodSeconds=0",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets/db", Value::Null).await.refused(403,
        &format!("secrets \"db\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
}

#[tokio::test]
async fn node_writes_only_its_own_node_lease_and_pods() {
    let e = env().await;
    let node = |name: &str, labels: Value| json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}});
    e.call(NODE, "POST", "/api/v1/nodes", node("n2", json!({})))
        .await
        .refused(
            403,
            "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\"",
        );
    e.call(NODE, "POST", "/api/v1/nodes", node("n1", json!({"kubernetes.io/hostname": "n1", "k3s-daas.io/staked": "true", "node-role.kubernetes.io/worker": ""}))).await.refused(403,
        "nodes \"n1\" is forbidden: node \"n1\" is not allowed to set the following labels: k3s-daas.io/staked, node-role.kubernetes.io/worker");
    let r = e.call(NODE, "POST", "/api/v1/nodes", node("n1", json!({"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": "z"}))).await;
    assert_eq!(r.code, 201, "{}", r.body);
    // The master (admin) marks it staked; the node can neither change nor remove that.
    let r = e
        .call_ct(
            ADMIN,
            "PATCH",
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"k3s-daas.io/staked": "true"}}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let patch = |labels: Value| json!({"metadata": {"labels": labels}});
    let r = e
        .call_ct(
            NODE,
            "PATCH",
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            patch(json!({"node-role.kubernetes.io/master": ""})),
        )
        .await;
    r.refused(403, "nodes \"n1\" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/master");
    let r = e
        .call_ct(
            NODE,
            "PATCH",
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            patch(json!({"k3s-daas.io/staked": null})),
        )
        .await;
    r.refused(
        403,
        "nodes \"n1\" is forbidden: is not allowed to modify labels: k3s-daas.io/staked",
    );
    let r = e
        .call_ct(
            NODE,
            "PATCH",
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            patch(json!({"node-restriction.kubernetes.io/pool": "gpu"})),
        )
        .await;
    r.refused(403, "nodes \"n1\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool");
    let r = e
        .call_ct(
            NODE,
            "PATCH",
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            json!({"spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]}}),
        )
        .await;
    r.refused(
        403,
        "nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints",
    );
    // Allowed: kubelet labels and plain labels (the staked label stays as the master set it).
    let r = e
        .call_ct(
            NODE,
            "PATCH",
            "/api/v1/nodes/n1",
            "application/merge-patch+json",
            patch(json!({"kubernetes.io/arch": "amd64", "team": "a"})),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["labels"]["k3s-daas.io/staked"], "true");
    // Status writes keep the labels the master set.
    let r = e.call_ct(NODE, "PATCH", "/api/v1/nodes/n1/status", "application/merge-patch+json",
        json!({"metadata": {"labels": {"k3s-daas.io/staked": "false"}}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})).await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["labels"]["k3s-daas.io/staked"], "true");
    // Other nodes are out of reach.
    let r = e
        .call(ADMIN, "POST", "/api/v1/nodes", node("n2", json!({})))
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = e
        .call_ct(
            NODE,
            "PATCH",
            "/api/v1/nodes/n2",
            "application/merge-patch+json",
            patch(json!({"x": "y"})),
        )
        .await;
    r.refused(403, "nodes \"n2\" is forbidden: User \"system:node:n1\" cannot patch resource \"nodes\" in API group \"\" at the cluster scope");
    e.call(NODE, "DELETE", "/api/v1/nodes/n2", Value::Null).await.refused(403,
        "nodes \"n2\" is forbidden: User \"system:node:n1\" cannot delete resource \"nodes\" in API group \"\" at the cluster scope");

    // Leases: its own, in kube-node-lease.
    let lease = |name: &str| json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}, "spec": {"holderIdentity": name}});
    let r = e
        .call(
            NODE,
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            lease("n1"),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    e.call(NODE, "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease("n2")).await.refused(403,
        "leases.coordination.k8s.io \"n2\" is forbidden: can only access node lease with the same name as the requesting node");
    e.call(NODE, "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", lease("n1")).await.refused(403,
        "leases.coordination.k8s.io is forbidden: User \"system:node:n1\" cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\"");

    // Pods: status and delete for its own pods only; no creating or binding.
    let r = e
        .call_ct(
            NODE,
            "PATCH",
            "/api/v1/namespaces/u-alice/pods/web/status",
            "application/merge-patch+json",
            json!({"status": {"phase": "Running"}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    e.call_ct(
        NODE,
        "PATCH",
        "/api/v1/namespaces/u-alice/pods/elsewhere/status",
        "application/merge-patch+json",
        json!({"status": {"phase": "Running"}}),
    )
    .await
    .refused(
        403,
        "pods \"elsewhere\" is forbidden: node \"n1\" can only patch pods bound to itself",
    );
    e.call(
        NODE,
        "DELETE",
        "/api/v1/namespaces/u-alice/pods/elsewhere",
        Value::Null,
    )
    .await
    .refused(
        403,
        "pods \"elsewhere\" is forbidden: node \"n1\" can only delete pods bound to itself",
    );
    e.call(NODE, "POST", "/api/v1/namespaces/u-alice/pods", restricted_pod("mine")).await.refused(403,
        "pods is forbidden: User \"system:node:n1\" cannot create resource \"pods\" in API group \"\" in the namespace \"u-alice\"");
    e.call_ct(NODE, "PATCH", "/api/v1/namespaces/u-alice/pods/web", "application/merge-patch+json", json!({"metadata": {"labels": {"a": "b"}}})).await.refused(403,
        "pods \"web\" is forbidden: User \"system:node:n1\" cannot patch resource \"pods\" in API group \"\" in the namespace \"u-alice\"");
    // Nor other tenants' workloads.
    e.call(NODE, "GET", "/apis/apps/v1/deployments", Value::Null).await.refused(403,
        "deployments.apps is forbidden: User \"system:node:n1\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope");
    // What the agent needs stays allowed.
    for path in [
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1",
        "/api/v1/nodes/n1",
        "/api/v1/services",
        "/api/v1/namespaces/u-alice/pods/web",
    ] {
        let r = e.call(NODE, "GET", path, Value::Null).await;
        assert_eq!(r.code, 200, "{path}: {}", r.body);
    }
}

/// Deleting or finalizing a namespace is the admin's (and the namespace controller's): a user
/// tier, even in its own namespace, a node and an unknown caller are refused; an admin's DELETE
/// only marks the namespace Terminating, which then refuses the owner's new content.
#[tokio::test]
async fn namespace_deletion_and_finalize_are_refused_to_tenants_and_nodes() {
    let e = env().await;
    e.call(ALICE, "DELETE", "/api/v1/namespaces/u-alice", Value::Null).await.refused(403,
        "namespaces \"u-alice\" is forbidden: User \"daas:user:0xa11ce\" cannot delete resource \"namespaces\" in API group \"\" at the cluster scope");
    e.call(NODE, "DELETE", "/api/v1/namespaces/u-bob", Value::Null).await.refused(403,
        "namespaces \"u-bob\" is forbidden: User \"system:node:n1\" cannot delete resource \"namespaces\" in API group \"\" at the cluster scope");
    let fin = json!({"metadata": {"name": "u-alice"}, "spec": {"finalizers": []}});
    e.call(ALICE, "PUT", "/api/v1/namespaces/u-alice/finalize", fin.clone()).await.refused(403,
        "namespaces \"u-alice\" is forbidden: User \"daas:user:0xa11ce\" cannot update resource \"namespaces/finalize\" in API group \"\" at the cluster scope");
    e.call(NODE, "PUT", "/api/v1/namespaces/u-alice/finalize", fin.clone()).await.refused(403,
        "namespaces \"u-alice\" is forbidden: User \"system:node:n1\" cannot update resource \"namespaces/finalize\" in API group \"\" at the cluster scope");
    let r = e
        .call(
            "no-such-token",
            "DELETE",
            "/api/v1/namespaces/u-alice",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 401, "{}", r.body);
    // The system namespaces may not be deleted, not even by the admin.
    for ns in ["default", "kube-system", "kube-public"] {
        e.call(
            ADMIN,
            "DELETE",
            &format!("/api/v1/namespaces/{ns}"),
            Value::Null,
        )
        .await
        .refused(
            403,
            &format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted"),
        );
    }
    // Nothing of that changed the namespace.
    let r = e
        .call(ADMIN, "GET", "/api/v1/namespaces/u-alice", Value::Null)
        .await;
    assert_eq!(r.body["status"]["phase"], "Active");
    assert!(r.body["metadata"]["deletionTimestamp"].is_null());
    let r = e
        .call(ADMIN, "DELETE", "/api/v1/namespaces/u-alice", Value::Null)
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["status"]["phase"], "Terminating");
    e.call(
        ALICE,
        "POST",
        "/api/v1/namespaces/u-alice/configmaps",
        json!({"metadata": {"name": "late"}}),
    )
    .await
    .refused(
        403,
        "unable to create new content in namespace u-alice because it is being terminated",
    );
    // Its contents stay until the namespace controller removes them.
    let r = e
        .call(
            ADMIN,
            "GET",
            "/api/v1/namespaces/u-alice/configmaps/app",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    // The finalize subresource is refused to the owner on the Terminating namespace as well.
    e.call(ALICE, "PUT", "/api/v1/namespaces/u-alice/finalize", fin).await.refused(403,
        "namespaces \"u-alice\" is forbidden: User \"daas:user:0xa11ce\" cannot update resource \"namespaces/finalize\" in API group \"\" at the cluster scope");
}

/// batch/v1: a tenant runs Jobs and CronJobs in its own namespace only; nodes run none; the
/// anonymous caller nothing; a template may not pick its node; validation answers 422.
#[tokio::test]
async fn jobs_and_cronjobs_stay_in_the_tenants_namespace() {
    let e = env().await;
    let job = |name: &str| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
    };
    let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"}, "spec": {
        "schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
            "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    let r = e
        .call(
            ALICE,
            "POST",
            "/apis/batch/v1/namespaces/u-alice/jobs",
            job("mine"),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["spec"]["backoffLimit"], 6);
    let r = e
        .call(
            ALICE,
            "POST",
            "/apis/batch/v1/namespaces/u-alice/cronjobs",
            cj.clone(),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    e.call(ALICE, "POST", "/apis/batch/v1/namespaces/u-bob/jobs", job("theirs")).await.refused(403,
        "jobs.batch is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"u-bob\"");
    e.call(ALICE, "POST", "/apis/batch/v1/namespaces/u-bob/cronjobs", cj.clone()).await.refused(403,
        "cronjobs.batch is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"cronjobs\" in API group \"batch\" in the namespace \"u-bob\"");
    e.call(ALICE, "GET", "/apis/batch/v1/jobs", Value::Null).await.refused(403,
        "jobs.batch is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"jobs\" in API group \"batch\" at the cluster scope");
    e.call(NODE, "POST", "/apis/batch/v1/namespaces/u-alice/jobs", job("n")).await.refused(403,
        "jobs.batch is forbidden: User \"system:node:n1\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"u-alice\"");
    e.call(NODE, "DELETE", "/apis/batch/v1/namespaces/u-alice/jobs/mine", Value::Null).await.refused(403,
        "jobs.batch \"mine\" is forbidden: User \"system:node:n1\" cannot delete resource \"jobs\" in API group \"batch\" in the namespace \"u-alice\"");
    let r = e
        .call(
            "no-such-token",
            "POST",
            "/apis/batch/v1/namespaces/u-alice/jobs",
            job("anon"),
        )
        .await;
    assert_eq!(r.code, 401, "{}", r.body);
    let mut pinned = job("pinned");
    pinned["spec"]["template"]["spec"]["nodeName"] = json!("n1");
    e.call(ALICE, "POST", "/apis/batch/v1/namespaces/u-alice/jobs", pinned).await.refused(403,
        "jobs.batch \"pinned\" is forbidden: spec.template.spec.nodeName: Forbidden: user \"daas:user:0xa11ce\" may not choose the node of a pod (\"n1\"); pods are placed by the scheduler");
    let mut pinned = cj.clone();
    pinned["metadata"]["name"] = json!("pinned");
    pinned["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nodeName"] = json!("n1");
    e.call(ALICE, "POST", "/apis/batch/v1/namespaces/u-alice/cronjobs", pinned).await.refused(403,
        "cronjobs.batch \"pinned\" is forbidden: spec.jobTemplate.spec.template.spec.nodeName: Forbidden: user \"daas:user:0xa11ce\" may not choose the node of a pod (\"n1\"); pods are placed by the scheduler");
    let mut always = job("always");
    always["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let r = e
        .call(
            ALICE,
            "POST",
            "/apis/batch/v1/namespaces/u-alice/jobs",
            always,
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(r.body["reason"], "Invalid");
    assert_eq!(r.body["message"], "Job.batch \"always\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"");
    // The template is immutable once the Job exists.
    let r = e.call_ct(ALICE, "PATCH", "/apis/batch/v1/namespaces/u-alice/jobs/mine", "application/merge-patch+json",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})).await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("spec.template: Invalid value: "),
        "{}",
        r.body
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .ends_with("field is immutable"),
        "{}",
        r.body
    );
    // A tenant can still suspend its Job.
    let r = e
        .call_ct(
            ALICE,
            "PATCH",
            "/apis/batch/v1/namespaces/u-alice/jobs/mine",
            "application/merge-patch+json",
            json!({"spec": {"suspend": true}}),
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let mut bad = cj.clone();
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["schedule"] = json!("every now and then");
    let r = e
        .call(
            ALICE,
            "POST",
            "/apis/batch/v1/namespaces/u-alice/cronjobs",
            bad,
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().starts_with("CronJob.batch \"bad\" is invalid: spec.schedule: Invalid value: \"every now and then\": "), "{}", r.body);
}

#[tokio::test]
async fn node_reads_the_image_pull_secrets_of_its_pods_only() {
    let e = env().await;
    let nr = "no relationship found between node 'n1' and this object";
    let auths =
        json!({"auths": {"reg.example.com": {"username": "u", "password": "p"}}}).to_string();
    for name in ["regcred", "sa-regcred", "other-regcred", "pending-regcred"] {
        let r = e
            .call(
                ADMIN,
                "POST",
                "/api/v1/namespaces/u-alice/secrets",
                json!({"metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
                       "stringData": {".dockerconfigjson": auths}}),
            )
            .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    let r = e
        .call(
            ADMIN,
            "POST",
            "/api/v1/namespaces/u-alice/serviceaccounts",
            json!({"metadata": {"name": "robot"}, "imagePullSecrets": [{"name": "sa-regcred"}]}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    // On n1: one naming its pull secret, one getting it from its ServiceAccount (admission);
    // on n2 and unscheduled: the others.
    for (pod, node, secret) in [
        ("pulls", Some("n1"), Some("regcred")),
        ("sa-pulls", Some("n1"), None),
        ("pulls-elsewhere", Some("n2"), Some("other-regcred")),
        ("pending", None, Some("pending-regcred")),
    ] {
        let mut p = restricted_pod(pod);
        if let Some(n) = node {
            p["spec"]["nodeName"] = json!(n);
        }
        match secret {
            Some(s) => p["spec"]["imagePullSecrets"] = json!([{"name": s}]),
            None => p["spec"]["serviceAccountName"] = json!("robot"),
        }
        let r = e
            .call(ADMIN, "POST", "/api/v1/namespaces/u-alice/pods", p)
            .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    for name in ["regcred", "sa-regcred"] {
        let r = e
            .call(
                NODE,
                "GET",
                &format!("/api/v1/namespaces/u-alice/secrets/{name}"),
                Value::Null,
            )
            .await;
        assert_eq!(r.code, 200, "{name}: {}", r.body);
        assert_eq!(r.body["type"], "kubernetes.io/dockerconfigjson");
    }
    for name in ["other-regcred", "pending-regcred"] {
        e.call(NODE, "GET", &format!("/api/v1/namespaces/u-alice/secrets/{name}"), Value::Null).await.refused(403,
            &format!("secrets \"{name}\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
    }
    let r = e
        .call(
            "no-such-token",
            "GET",
            "/api/v1/namespaces/u-alice/secrets/regcred",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 401, "{}", r.body);
    // Once the pod is gone, so is the access to its pull secret.
    let r = e
        .call(
            ADMIN,
            "DELETE",
            "/api/v1/namespaces/u-alice/pods/pulls?gracePeriodSeconds=0",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets/regcred", Value::Null).await.refused(403,
        &format!("secrets \"regcred\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
}

/// Ingresses and IngressClasses: tenants own Ingresses in their namespace (defaulted to the
/// default class) but not their status; IngressClasses are read by everyone and written by
/// admins only; a node reads Ingresses and exactly the TLS Secrets that Ingresses of the built-in
/// class name, and no other Secret.
#[tokio::test]
async fn ingresses_are_tenant_owned_classes_admin_only_and_nodes_read_only_their_tls_secrets() {
    use daas_apiserver::registry::ingress::daas_class;
    let e = env().await;
    let nr = "no relationship found between node 'n1' and this object";
    let classes = "/apis/networking.k8s.io/v1/ingressclasses";
    let ing = |name: &str, class: Option<&str>, secret: &str| {
        let mut i = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {"tls": [{"hosts": ["a.example.com"], "secretName": secret}],
                "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        if let Some(c) = class {
            i["spec"]["ingressClassName"] = json!(c);
        }
        i
    };
    // Only an admin writes IngressClasses.
    e.call(ALICE, "POST", classes, daas_class()).await.refused(403,
        "ingressclasses.networking.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"ingressclasses\" in API group \"networking.k8s.io\" at the cluster scope");
    e.call(NODE, "POST", classes, daas_class()).await.refused(403,
        "ingressclasses.networking.k8s.io is forbidden: User \"system:node:n1\" cannot create resource \"ingressclasses\" in API group \"networking.k8s.io\" at the cluster scope");
    let r = e.call(ADMIN, "POST", classes, daas_class()).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let mut other = daas_class();
    other["metadata"] = json!({"name": "other"});
    other["spec"]["controller"] = json!("example.com/other");
    let r = e.call(ADMIN, "POST", classes, other).await;
    assert_eq!(r.code, 201, "{}", r.body);
    e.call(ALICE, "DELETE", &format!("{classes}/daas"), Value::Null).await.refused(403,
        "ingressclasses.networking.k8s.io \"daas\" is forbidden: User \"daas:user:0xa11ce\" cannot delete resource \"ingressclasses\" in API group \"networking.k8s.io\" at the cluster scope");
    // ... and everyone authenticated reads them; anonymous callers are refused.
    for who in [ALICE, NODE] {
        let r = e.call(who, "GET", classes, Value::Null).await;
        assert_eq!(r.code, 200, "{}", r.body);
        assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    }
    assert_eq!(
        e.call("no-such-token", "GET", classes, Value::Null)
            .await
            .code,
        401
    );

    let r = e
        .call(
            ALICE,
            "POST",
            "/api/v1/namespaces/u-alice/secrets",
            json!({"metadata": {"name": "web-tls"}, "stringData": {"k": "v"}}),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    // Before any Ingress names it, the node cannot read it.
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets/web-tls", Value::Null).await.refused(403,
        &format!("secrets \"web-tls\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
    // A tenant's Ingress without a class gets the default one; one naming another class keeps it.
    let mine = "/apis/networking.k8s.io/v1/namespaces/u-alice/ingresses";
    let r = e
        .call(ALICE, "POST", mine, ing("web", None, "web-tls"))
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["spec"]["ingressClassName"], "daas");
    let r = e
        .call(
            ALICE,
            "POST",
            mine,
            ing("foreign", Some("other"), "unrelated"),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["spec"]["ingressClassName"], "other");
    // Upstream validation, 422.
    let mut bad = ing("bad", None, "web-tls");
    bad["spec"]["rules"][0]["http"]["paths"][0]["path"] = json!("relative");
    let r = e.call(ALICE, "POST", mine, bad).await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "Ingress.networking.k8s.io \"bad\" is invalid: spec.rules[0].http.paths[0].path: Invalid value: \"relative\": must be an absolute path"
    );
    // Not in another tenant's namespace, and not its own status (the controller's).
    e.call(ALICE, "POST", "/apis/networking.k8s.io/v1/namespaces/u-bob/ingresses", ing("web", None, "bob-secret")).await.refused(403,
        "ingresses.networking.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"ingresses\" in API group \"networking.k8s.io\" in the namespace \"u-bob\"");
    e.call_ct(ALICE, "PATCH", &format!("{mine}/web/status"), "application/merge-patch+json",
        json!({"status": {"loadBalancer": {"ingress": [{"ip": "6.6.6.6"}]}}})).await.refused(403,
        "ingresses.networking.k8s.io \"web\" is forbidden: User \"daas:user:0xa11ce\" cannot patch resource \"ingresses/status\" in API group \"networking.k8s.io\" in the namespace \"u-alice\"");
    let r = e
        .call(ALICE, "GET", &format!("{mine}/web/status"), Value::Null)
        .await;
    assert_eq!(r.code, 200, "{}", r.body);

    // A node lists Ingresses everywhere (its proxy) but writes none.
    let r = e
        .call(
            NODE,
            "GET",
            "/apis/networking.k8s.io/v1/ingresses",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    e.call(NODE, "POST", mine, ing("n", None, "web-tls")).await.refused(403,
        "ingresses.networking.k8s.io is forbidden: User \"system:node:n1\" cannot create resource \"ingresses\" in API group \"networking.k8s.io\" in the namespace \"u-alice\"");
    e.call_ct(NODE, "PATCH", &format!("{mine}/web/status"), "application/merge-patch+json",
        json!({"status": {"loadBalancer": {"ingress": [{"ip": "6.6.6.6"}]}}})).await.refused(403,
        "ingresses.networking.k8s.io \"web\" is forbidden: User \"system:node:n1\" cannot patch resource \"ingresses/status\" in API group \"networking.k8s.io\" in the namespace \"u-alice\"");
    // The TLS Secret of a `daas` Ingress is readable by the node (get, or a list narrowed to it).
    let r = e
        .call(
            NODE,
            "GET",
            "/api/v1/namespaces/u-alice/secrets/web-tls",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = e
        .call(
            NODE,
            "GET",
            "/api/v1/namespaces/u-alice/secrets?fieldSelector=metadata.name%3Dweb-tls",
            Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    // Not a Secret named only by an Ingress of another class, nor one in another namespace,
    // nor all Secrets at once.
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets/unrelated", Value::Null).await.refused(403,
        &format!("secrets \"unrelated\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
    e.call(NODE, "GET", "/api/v1/namespaces/u-bob/secrets/db", Value::Null).await.refused(403,
        &format!("secrets \"db\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-bob\": {nr}"));
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets", Value::Null).await.refused(403,
        "secrets is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" in the namespace \"u-alice\": No Object name found");
    // Once the Ingress is gone, so is the access.
    let r = e
        .call(ALICE, "DELETE", &format!("{mine}/web"), Value::Null)
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    e.call(NODE, "GET", "/api/v1/namespaces/u-alice/secrets/web-tls", Value::Null).await.refused(403,
        &format!("secrets \"web-tls\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"u-alice\": {nr}"));
}
