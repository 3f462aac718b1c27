//! RBAC through the real router: the bootstrap policy, refusals with upstream's messages for the
//! user, node and unknown identities, escalation prevention, binding immutability, policy
//! changes taking effect at once (the authorizer's cache), and the access reviews.

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
const CAROL: &str = "carol-token";
const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const AUTHZ: &str = "/apis/authorization.k8s.io/v1";
const ALICE_GROUPS: &str =
    "groups=[\"daas:users\" \"daas:namespace:u-alice\" \"system:authenticated\"]";

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let user = |name: &str, groups: &[&str]| User {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let auth = Arc::new(StaticTokens::new(vec![
        (ADMIN.into(), user("admin", &["system:masters"])),
        (
            ALICE.into(),
            user(
                "daas:user:0xa11ce",
                &["daas:users", "daas:namespace:u-alice"],
            ),
        ),
        (NODE.into(), user("system:node:n1", &["system:nodes"])),
        (CAROL.into(), user("carol", &[])),
    ]));
    let e = Env {
        _dir: dir,
        app: router(store, auth, ServerOptions::default()),
    };
    for ns in ["u-alice", "u-bob"] {
        let (c, b) = e
            .call(
                ADMIN,
                "POST",
                "/api/v1/namespaces",
                json!({"metadata": {"name": ns, "labels": {"k3s-daas.io/tier": "user"}}}),
            )
            .await;
        assert_eq!(c, 201, "{b}");
        let (c, b) = e
            .call(
                ADMIN,
                "POST",
                &format!("{RBAC}/namespaces/{ns}/rolebindings"),
                daas_apiserver::rbac::user_namespace_binding(ns),
            )
            .await;
        assert_eq!(c, 201, "{b}");
    }
    e
}

impl Env {
    async fn call(&self, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(if body.is_null() {
                Body::empty()
            } else {
                Body::from(serde_json::to_vec(&body).unwrap())
            })
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn refused(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
        code: u16,
        msg: &str,
    ) {
        let (c, b) = self.call(token, method, path, body).await;
        assert_eq!(c, code, "{b}");
        assert_eq!(b["kind"], "Status", "{b}");
        assert_eq!(b["message"], msg, "{b}");
    }

    async fn ssar(&self, token: &str, attrs: Value) -> Value {
        let (c, b) = self
            .call(
                token,
                "POST",
                &format!("{AUTHZ}/selfsubjectaccessreviews"),
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": attrs}),
            )
            .await;
        assert_eq!(c, 201, "{b}");
        assert_eq!(b["kind"], "SelfSubjectAccessReview");
        b["status"].clone()
    }
}

fn role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name}, "rules": rules})
}

#[tokio::test]
async fn bootstrap_policy_is_served_and_admin_changeable() {
    let e = env().await;
    let (c, b) = e
        .call(ADMIN, "GET", &format!("{RBAC}/clusterroles"), Value::Null)
        .await;
    assert_eq!(c, 200);
    let names: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    for n in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "daas:namespace-owner",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let (c, b) = e
        .call(
            ADMIN,
            "GET",
            &format!("{RBAC}/clusterrolebindings/system:discovery"),
            Value::Null,
        )
        .await;
    assert_eq!(c, 200, "{b}");
    assert_eq!(b["subjects"][0]["name"], "system:authenticated");
    let (c, b) = e
        .call(
            ADMIN,
            "GET",
            &format!(
                "{RBAC}/namespaces/kube-system/roles/extension-apiserver-authentication-reader"
            ),
            Value::Null,
        )
        .await;
    assert_eq!(c, 200, "{b}");
    assert_eq!(
        b["rules"][0]["resourceNames"],
        json!(["extension-apiserver-authentication"])
    );
    // Discovery lists the reviews as create-only.
    let (_, d) = e.call(ADMIN, "GET", AUTHZ, Value::Null).await;
    let ssar = d["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "selfsubjectaccessreviews")
        .unwrap();
    assert_eq!(ssar["verbs"], json!(["create"]));
    // A binding's roleRef cannot change; the name rule allows ':'.
    let (c, mut rb) = e
        .call(
            ADMIN,
            "GET",
            &format!("{RBAC}/namespaces/u-alice/rolebindings/daas:namespace-owner"),
            Value::Null,
        )
        .await;
    assert_eq!(c, 200, "{rb}");
    rb["roleRef"]["name"] = json!("cluster-admin");
    e.refused(ADMIN, "PUT", &format!("{RBAC}/namespaces/u-alice/rolebindings/daas:namespace-owner"), rb, 422,
        "RoleBinding \"daas:namespace-owner\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"cluster-admin\"}: cannot change roleRef").await;
    e.refused(ADMIN, "POST", &format!("{RBAC}/clusterrolebindings"),
        json!({"metadata": {"name": "bad"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "Robot", "name": "r"}]}),
        422, "ClusterRoleBinding \"bad\" is invalid: subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"").await;
    // Removing the owner binding takes the user's access away at once; restoring it gives it back.
    let pods = "/api/v1/namespaces/u-alice/pods";
    assert_eq!(e.call(ALICE, "GET", pods, Value::Null).await.0, 200);
    let (c, _) = e
        .call(
            ADMIN,
            "DELETE",
            &format!("{RBAC}/namespaces/u-alice/rolebindings/daas:namespace-owner"),
            Value::Null,
        )
        .await;
    assert_eq!(c, 200);
    e.refused(ALICE, "GET", pods, Value::Null, 403,
        "pods is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"pods\" in API group \"\" in the namespace \"u-alice\"").await;
    let (c, _) = e
        .call(
            ADMIN,
            "POST",
            &format!("{RBAC}/namespaces/u-alice/rolebindings"),
            daas_apiserver::rbac::user_namespace_binding("u-alice"),
        )
        .await;
    assert_eq!(c, 201);
    assert_eq!(e.call(ALICE, "GET", pods, Value::Null).await.0, 200);
}

#[tokio::test]
async fn refusals_by_identity() {
    let e = env().await;
    // Users: nothing cluster-wide, nothing in other namespaces, no RBAC outside their namespace.
    e.refused(ALICE, "GET", &format!("{RBAC}/clusterroles"), Value::Null, 403,
        "clusterroles.rbac.authorization.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope").await;
    e.refused(ALICE, "POST", &format!("{RBAC}/namespaces/u-bob/roles"), role("r", json!([])), 403,
        "roles.rbac.authorization.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"roles\" in API group \"rbac.authorization.k8s.io\" in the namespace \"u-bob\"").await;
    e.refused(ALICE, "POST", &format!("{AUTHZ}/subjectaccessreviews"),
        json!({"spec": {"user": "x", "resourceAttributes": {"verb": "get", "resource": "pods"}}}), 403,
        "subjectaccessreviews.authorization.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope").await;
    // Nodes: no RBAC objects.
    e.refused(NODE, "GET", &format!("{RBAC}/namespaces/u-alice/rolebindings"), Value::Null, 403,
        "rolebindings.rbac.authorization.k8s.io is forbidden: User \"system:node:n1\" cannot list resource \"rolebindings\" in API group \"rbac.authorization.k8s.io\" in the namespace \"u-alice\"").await;
    // An authenticated identity with no bindings: discovery and self reviews only.
    assert_eq!(e.call(CAROL, "GET", "/apis", Value::Null).await.0, 200);
    assert_eq!(e.call(CAROL, "GET", "/api/v1", Value::Null).await.0, 200);
    e.refused(CAROL, "GET", "/api/v1/namespaces/default/configmaps", Value::Null, 403,
        "configmaps is forbidden: User \"carol\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"").await;
    let st = e.ssar(CAROL, json!({"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"}})).await;
    assert_eq!(st["allowed"], false);
    // Unauthenticated: 401 as before.
    let req = Request::builder()
        .uri("/api/v1/namespaces")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        e.app.clone().oneshot(req).await.unwrap().status().as_u16(),
        401
    );
}

#[tokio::test]
async fn escalation_is_refused_unless_held_bound_or_escalate() {
    let e = env().await;
    let roles = format!("{RBAC}/namespaces/u-alice/roles");
    let bindings = format!("{RBAC}/namespaces/u-alice/rolebindings");
    // A role with rules the user holds in its namespace is fine.
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &roles,
            role(
                "pod-reader",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
            ),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    // Rules it does not hold (placing pods, nodes) are not.
    e.refused(ALICE, "POST", &roles,
        role("binder", json!([{"apiGroups": [""], "resources": ["pods/binding", "pods"], "verbs": ["create"]}])), 403,
        &format!("roles.rbac.authorization.k8s.io \"binder\" is forbidden: user \"daas:user:0xa11ce\" ({ALICE_GROUPS}) is attempting to grant RBAC permissions not currently held:\n{{APIGroups:[\"\"], Resources:[\"pods/binding\"], Verbs:[\"create\"]}}")).await;
    // Nor by updating a role it may write.
    let (_, mut pr) = e
        .call(ALICE, "GET", &format!("{roles}/pod-reader"), Value::Null)
        .await;
    pr["rules"][0]["resources"] = json!(["*"]);
    let (c, b) = e
        .call(ALICE, "PUT", &format!("{roles}/pod-reader"), pr)
        .await;
    assert_eq!(c, 403, "{b}");
    assert!(b["message"].as_str().unwrap().ends_with("{APIGroups:[\"\"], Resources:[\"*\"], Verbs:[\"get\"]}\n{APIGroups:[\"\"], Resources:[\"*\"], Verbs:[\"list\"]}"), "{b}");
    // Binding a role whose rules it holds: fine; binding cluster-admin: refused.
    let bind = |name: &str, kind: &str, role: &str| {
        json!({"metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "User", "name": "friend"}]})
    };
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &bindings,
            bind("friend-reads", "Role", "pod-reader"),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &bindings,
            bind("friend-view", "ClusterRole", "view"),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &bindings,
            bind("friend-admin", "ClusterRole", "cluster-admin"),
        )
        .await;
    assert_eq!(c, 403, "{b}");
    assert!(b["message"].as_str().unwrap().starts_with(&format!("rolebindings.rbac.authorization.k8s.io \"friend-admin\" is forbidden: user \"daas:user:0xa11ce\" ({ALICE_GROUPS}) is attempting to grant RBAC permissions not currently held:\n{{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}}")), "{b}");
    // The admin grants `bind` on cluster-admin in u-alice: now allowed.
    let (c, b) = e
        .call(ADMIN, "POST", &roles, role("may-bind", json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["cluster-admin"]}])))
        .await;
    assert_eq!(c, 201, "{b}");
    let grant = json!({"metadata": {"name": "alice-may-bind"}, "roleRef": {"kind": "Role", "name": "may-bind"},
        "subjects": [{"kind": "User", "name": "daas:user:0xa11ce"}]});
    let (c, b) = e.call(ADMIN, "POST", &bindings, grant).await;
    assert_eq!(c, 201, "{b}");
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &bindings,
            bind("friend-admin", "ClusterRole", "cluster-admin"),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    // `escalate` lets a role be written with rules not held.
    let (c, _) = e
        .call(ADMIN, "POST", &roles, role("may-escalate", json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}])))
        .await;
    assert_eq!(c, 201);
    let (c, _) = e
        .call(ADMIN, "POST", &bindings, json!({"metadata": {"name": "alice-may-escalate"}, "roleRef": {"kind": "Role", "name": "may-escalate"},
            "subjects": [{"kind": "Group", "name": "daas:namespace:u-alice"}]}))
        .await;
    assert_eq!(c, 201);
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &roles,
            role(
                "binder",
                json!([{"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["create"]}]),
            ),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    // A binding to a role that does not exist is refused.
    e.refused(ALICE, "POST", &bindings, bind("b", "Role", "missing"), 403,
        "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: roles.rbac.authorization.k8s.io \"missing\" not found").await;
    e.refused(CAROL, "GET", &bindings, Value::Null, 403,
        "rolebindings.rbac.authorization.k8s.io is forbidden: User \"carol\" cannot list resource \"rolebindings\" in API group \"rbac.authorization.k8s.io\" in the namespace \"u-alice\"").await;
}

#[tokio::test]
async fn access_reviews_answer_for_each_identity() {
    let e = env().await;
    let allowed = |v: &Value| v["allowed"].as_bool().unwrap();
    let own = json!({"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "u-alice"}});
    let st = e.ssar(ALICE, own.clone()).await;
    assert!(allowed(&st), "{st}");
    assert_eq!(st["reason"], "RBAC: allowed by RoleBinding \"daas:namespace-owner/u-alice\" of ClusterRole \"daas:namespace-owner\" to Group \"daas:namespace:u-alice\"");
    assert!(!allowed(&e.ssar(ALICE, json!({"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "u-bob"}})).await));
    assert!(!allowed(&e.ssar(ALICE, json!({"resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "binding", "namespace": "u-alice"}})).await));
    assert!(allowed(
        &e.ssar(
            ALICE,
            json!({"nonResourceAttributes": {"verb": "get", "path": "/apis"}})
        )
        .await
    ));
    assert!(allowed(
        &e.ssar(
            ADMIN,
            json!({"resourceAttributes": {"verb": "delete", "resource": "nodes"}})
        )
        .await
    ));
    // Nodes are answered by the Node authorizer, graph included.
    assert!(allowed(
        &e.ssar(
            NODE,
            json!({"resourceAttributes": {"verb": "get", "resource": "nodes", "name": "n1"}})
        )
        .await
    ));
    let st = e.ssar(NODE, json!({"resourceAttributes": {"verb": "get", "resource": "secrets", "name": "s", "namespace": "u-alice"}})).await;
    assert!(!allowed(&st), "{st}");
    // Invalid reviews.
    e.refused(ALICE, "POST", &format!("{AUTHZ}/selfsubjectaccessreviews"), json!({"spec": {}}), 422,
        "SelfSubjectAccessReview \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified").await;
    e.refused(
        ADMIN,
        "GET",
        &format!("{AUTHZ}/selfsubjectaccessreviews"),
        Value::Null,
        405,
        "the server does not allow this method on the requested resource (GET)",
    )
    .await;
    // SubjectAccessReview (admin) about the user; LocalSubjectAccessReview by the user in its namespace.
    let (c, b) = e
        .call(ADMIN, "POST", &format!("{AUTHZ}/subjectaccessreviews"),
            json!({"spec": {"user": "daas:user:0xa11ce", "groups": ["daas:namespace:u-alice"],
                "resourceAttributes": {"verb": "delete", "resource": "secrets", "namespace": "u-alice"}}}))
        .await;
    assert_eq!(c, 201, "{b}");
    assert_eq!(b["status"]["allowed"], true, "{b}");
    let lsar = |ns: &str| json!({"spec": {"user": "friend", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": ns}}});
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &format!("{AUTHZ}/namespaces/u-alice/localsubjectaccessreviews"),
            lsar("u-alice"),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    assert_eq!(b["status"]["allowed"], false, "{b}");
    e.refused(
        ALICE,
        "POST",
        &format!("{AUTHZ}/namespaces/u-alice/localsubjectaccessreviews"),
        lsar("u-bob"),
        400,
        "spec.resourceAttributes.namespace must match namespace: u-alice",
    )
    .await;
    // Rules review and whoami.
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            &format!("{AUTHZ}/selfsubjectrulesreviews"),
            json!({"spec": {"namespace": "u-alice"}}),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    let rr = b["status"]["resourceRules"].as_array().unwrap();
    assert!(
        rr.iter().any(
            |r| r["resources"].as_array().unwrap().contains(&json!("pods"))
                && r["verbs"].as_array().unwrap().contains(&json!("create"))
        ),
        "{b}"
    );
    assert!(
        !rr.iter().any(|r| r["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("pods/binding"))),
        "{b}"
    );
    assert!(b["status"]["nonResourceRules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["nonResourceURLs"]
            .as_array()
            .unwrap()
            .contains(&json!("/apis/*"))));
    assert_eq!(b["status"]["incomplete"], false);
    let (c, b) = e
        .call(
            ALICE,
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    assert_eq!(b["status"]["userInfo"]["username"], "daas:user:0xa11ce");
    assert_eq!(
        b["status"]["userInfo"]["groups"],
        json!([
            "daas:users",
            "daas:namespace:u-alice",
            "system:authenticated"
        ])
    );
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb() {
    let e = env().await;
    let call_as =
        |token: &'static str, user: &'static str, groups: &'static [&'static str], path: String| {
            let app = e.app.clone();
            async move {
                let mut req = Request::builder()
                    .uri(path)
                    .header("authorization", format!("Bearer {token}"))
                    .header("impersonate-user", user);
                for g in groups {
                    req = req.header("impersonate-group", *g);
                }
                let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
                let code = resp.status().as_u16();
                let bytes = resp.into_body().collect().await.unwrap().to_bytes();
                (
                    code,
                    serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
                )
            }
        };
    // The admin acts as the user: the user's permissions apply.
    let (c, _) = call_as(
        ADMIN,
        "daas:user:0xa11ce",
        &["daas:namespace:u-alice"],
        "/api/v1/namespaces/u-alice/pods".into(),
    )
    .await;
    assert_eq!(c, 200);
    let (c, b) = call_as(
        ADMIN,
        "daas:user:0xa11ce",
        &["daas:namespace:u-alice"],
        "/api/v1/namespaces/u-bob/pods".into(),
    )
    .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["message"], "pods is forbidden: User \"daas:user:0xa11ce\" cannot list resource \"pods\" in API group \"\" in the namespace \"u-bob\"");
    // A service account holds what is bound to it (nothing here).
    let (c, b) = call_as(
        ADMIN,
        "system:serviceaccount:u-alice:default",
        &[],
        "/api/v1/namespaces/u-alice/pods".into(),
    )
    .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["message"], "pods is forbidden: User \"system:serviceaccount:u-alice:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"u-alice\"");
    // The user may not impersonate anyone.
    let (c, b) = call_as(
        ALICE,
        "admin",
        &[],
        "/api/v1/namespaces/u-alice/pods".into(),
    )
    .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["message"], "users \"admin\" is forbidden: User \"daas:user:0xa11ce\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope");
    let (c, b) = call_as(
        ALICE,
        "system:serviceaccount:u-alice:default",
        &[],
        "/api/v1/namespaces/u-alice/pods".into(),
    )
    .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["message"], "serviceaccounts \"default\" is forbidden: User \"daas:user:0xa11ce\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"u-alice\"");
}
