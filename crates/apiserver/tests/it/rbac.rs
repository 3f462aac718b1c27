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
        ..Default::default()
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
        self.call_with(token, &[], method, path, body).await
    }

    /// [`Env::call`] with extra request headers (impersonation).
    async fn call_with(
        &self,
        token: &str,
        headers: &[(&str, &str)],
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
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
        "RoleBinding.rbac.authorization.k8s.io \"daas:namespace-owner\" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"cluster-admin\"}: cannot change roleRef").await;
    e.refused(ADMIN, "POST", &format!("{RBAC}/clusterrolebindings"),
        json!({"metadata": {"name": "bad"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "Robot", "name": "r"}]}),
        422, "ClusterRoleBinding.rbac.authorization.k8s.io \"bad\" is invalid: subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"").await;
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
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified").await;
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

#[tokio::test]
async fn impersonating_extra_needs_userextras_per_key_and_value() {
    let e = env().await;
    let (c, b) = e
        .call(
            ADMIN,
            "POST",
            &format!("{RBAC}/clusterroles"),
            json!({"metadata": {"name": "scoped-impersonator"}, "rules": [
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["jane"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"],
                 "verbs": ["impersonate"], "resourceNames": ["view", "development"]},
            ]}),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    let (c, b) = e
        .call(
            ADMIN,
            "POST",
            &format!("{RBAC}/clusterrolebindings"),
            json!({"metadata": {"name": "carol-impersonates"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "scoped-impersonator"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    let whoami = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    // Allowed values of an allowed key: the impersonated identity carries them.
    let (c, b) = e
        .call_with(
            CAROL,
            &[
                ("impersonate-user", "jane"),
                ("Impersonate-Extra-Scopes", "view"),
                ("impersonate-extra-scopes", "development"),
            ],
            "POST",
            whoami,
            review.clone(),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    assert_eq!(b["status"]["userInfo"]["username"], "jane");
    assert_eq!(
        b["status"]["userInfo"]["extra"],
        json!({"scopes": ["view", "development"]})
    );
    // One value not allowed: the whole request is refused, naming the value and the key.
    let (c, b) = e
        .call_with(
            CAROL,
            &[
                ("impersonate-user", "jane"),
                ("impersonate-extra-scopes", "view"),
                ("impersonate-extra-scopes", "admin"),
            ],
            "POST",
            whoami,
            review.clone(),
        )
        .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["reason"], "Forbidden");
    assert_eq!(b["message"], "userextras.authentication.k8s.io \"admin\" is forbidden: User \"carol\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope");
    // Another key (percent-encoded in the header name, decoded as upstream) is not granted.
    let (c, b) = e
        .call_with(
            CAROL,
            &[
                ("impersonate-user", "jane"),
                ("impersonate-extra-example.com%2fproject", "p1"),
            ],
            "POST",
            whoami,
            review.clone(),
        )
        .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["message"], "userextras.authentication.k8s.io \"p1\" is forbidden: User \"carol\" cannot impersonate resource \"userextras/example.com/project\" in API group \"authentication.k8s.io\" at the cluster scope");
    // The admin may set any key; the decoded key is what the identity carries.
    let (c, b) = e
        .call_with(
            ADMIN,
            &[
                ("impersonate-user", "jane"),
                ("impersonate-extra-example.com%2fproject", "p1"),
            ],
            "POST",
            whoami,
            review.clone(),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    assert_eq!(
        b["status"]["userInfo"]["extra"],
        json!({"example.com/project": ["p1"]})
    );
    // The user tier and a node may not impersonate extras.
    for (token, who) in [(ALICE, "daas:user:0xa11ce"), (NODE, "system:node:n1")] {
        let (c, b) = e
            .call_with(
                token,
                &[
                    ("impersonate-user", who),
                    ("impersonate-extra-scopes", "view"),
                ],
                "POST",
                whoami,
                review.clone(),
            )
            .await;
        assert_eq!(c, 403, "{b}");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .contains("cannot impersonate resource"),
            "{b}"
        );
    }
    // Extras without a user to impersonate: upstream's internal error.
    let (c, b) = e
        .call_with(
            ADMIN,
            &[("impersonate-extra-scopes", "view")],
            "POST",
            whoami,
            review.clone(),
        )
        .await;
    assert_eq!(c, 500, "{b}");
    assert!(b["message"]
        .as_str()
        .unwrap()
        .contains("without impersonating a user"));
    // Unauthenticated: 401 before impersonation is considered.
    let (c, _) = e
        .call_with(
            "",
            &[
                ("impersonate-user", "jane"),
                ("impersonate-extra-scopes", "view"),
            ],
            "POST",
            whoami,
            review,
        )
        .await;
    assert_eq!(c, 401);
}

#[tokio::test]
async fn review_status_reports_denials_and_unresolvable_roles() {
    let e = env().await;
    // The Node authorizer's graph refuses outright: denied.
    let st = e.ssar(NODE, json!({"resourceAttributes": {"verb": "get", "resource": "secrets", "name": "s", "namespace": "u-alice"}})).await;
    assert_eq!(st["allowed"], false, "{st}");
    assert_eq!(st["denied"], true, "{st}");
    assert!(
        st["reason"]
            .as_str()
            .unwrap()
            .contains("no relationship found between node 'n1' and this object"),
        "{st}"
    );
    // RBAC has no opinion: not allowed, not denied.
    let st = e.ssar(ALICE, json!({"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "u-bob"}})).await;
    assert_eq!(st, json!({"allowed": false}));
    // Bindings of carol to roles that do not exist.
    let (c, b) = e
        .call(ADMIN, "POST", &format!("{RBAC}/namespaces/u-alice/rolebindings"),
            json!({"metadata": {"name": "to-ghost"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ghost"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}))
        .await;
    assert_eq!(c, 201, "{b}");
    let (c, b) = e
        .call(ADMIN, "POST", &format!("{RBAC}/clusterrolebindings"),
            json!({"metadata": {"name": "to-phantom"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "phantom"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}))
        .await;
    assert_eq!(c, 201, "{b}");
    let both = "[clusterrole.rbac.authorization.k8s.io \"phantom\" not found, role.rbac.authorization.k8s.io \"ghost\" not found]";
    let st = e.ssar(CAROL, json!({"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "u-alice"}})).await;
    assert_eq!(st["allowed"], false, "{st}");
    assert!(st.get("denied").is_none(), "{st}");
    assert_eq!(st["reason"], format!("RBAC: {both}"));
    assert!(st.get("evaluationError").is_none(), "{st}");
    // The admin's SubjectAccessReview about carol says the same.
    let (c, b) = e
        .call(ADMIN, "POST", &format!("{AUTHZ}/subjectaccessreviews"),
            json!({"spec": {"user": "carol", "resourceAttributes": {"verb": "get", "resource": "pods"}}}))
        .await;
    assert_eq!(c, 201, "{b}");
    assert_eq!(
        b["status"]["reason"],
        "RBAC: clusterrole.rbac.authorization.k8s.io \"phantom\" not found"
    );
    // Rules reviews: the unresolvable references make the list incomplete, with the error.
    let rules = |token: &'static str, ns: &'static str| {
        let e = &e;
        async move {
            let (c, b) = e
                .call(token, "POST", &format!("{AUTHZ}/selfsubjectrulesreviews"),
                    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                        "spec": {"namespace": ns}}))
                .await;
            assert_eq!(c, 201, "{b}");
            b["status"].clone()
        }
    };
    let st = rules(CAROL, "u-alice").await;
    assert_eq!(st["incomplete"], true, "{st}");
    assert_eq!(st["evaluationError"], both);
    let st = rules(CAROL, "u-bob").await;
    assert_eq!(
        st["evaluationError"],
        "clusterrole.rbac.authorization.k8s.io \"phantom\" not found"
    );
    let st = rules(NODE, "u-alice").await;
    assert_eq!(st["incomplete"], true, "{st}");
    assert_eq!(
        st["evaluationError"],
        "node authorizer does not support user rule resolution"
    );
    let st = rules(ALICE, "u-alice").await;
    assert_eq!(st["incomplete"], false, "{st}");
    assert!(st.get("evaluationError").is_none(), "{st}");
}

/// The user role aggregates (its base rules in their own role), and a cluster bootstrapped
/// before it did gets its aggregationRule on the next start, keeping the rules it has.
#[tokio::test]
async fn the_user_role_aggregates_and_older_clusters_are_reconciled_to_it() {
    use daas_apiserver::rbac::{USER_NAMESPACE_BASE_ROLE, USER_NAMESPACE_ROLE};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let auth = Arc::new(StaticTokens::new(vec![(
        ADMIN.into(),
        User {
            name: "admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        },
    )]));
    let e = Env {
        _dir: dir,
        app: router(store.clone(), auth, ServerOptions::default()),
    };
    let path = format!("{RBAC}/clusterroles/{USER_NAMESPACE_ROLE}");
    let (c, mut role) = e.call(ADMIN, "GET", &path, Value::Null).await;
    assert_eq!(c, 200, "{role}");
    let sel = role["aggregationRule"]["clusterRoleSelectors"].clone();
    assert_eq!(sel.as_array().unwrap().len(), 4, "{sel}");
    assert_eq!(
        sel[1]["matchLabels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
        "true"
    );
    let (c, base) = e
        .call(
            ADMIN,
            "GET",
            &format!("{RBAC}/clusterroles/{USER_NAMESPACE_BASE_ROLE}"),
            Value::Null,
        )
        .await;
    assert_eq!(c, 200, "{base}");
    assert_eq!(base["rules"], role["rules"], "created with its base rules");
    // As an older cluster stored it: no aggregationRule.
    role.as_object_mut().unwrap().remove("aggregationRule");
    let (c, b) = e.call(ADMIN, "PUT", &path, role.clone()).await;
    assert_eq!(c, 200, "{b}");
    assert!(b["aggregationRule"].is_null());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let (_, after) = e.call(ADMIN, "GET", &path, Value::Null).await;
    assert_eq!(after["aggregationRule"]["clusterRoleSelectors"], sel);
    assert_eq!(after["rules"], role["rules"]);
}

fn csr_for(name: &str, cn: &str, orgs: &[&str], signer: &str) -> Value {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, *o);
    }
    let pem = p.serialize_request(&key).unwrap().pem().unwrap();
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": signer, "usages": ["digital signature", "client auth"]}})
}

/// A user-tier staker must not obtain a node or `system:masters` identity through a CSR: it may
/// not create CSRs at all by default; granted create and the approval/status subresources, it
/// still needs `approve`/`sign` on the signer (upstream's CertificateApproval and
/// CertificateSigning admission), and no one may ask the kube-apiserver-client signer for
/// `system:masters` (CertificateSubjectRestriction).
#[tokio::test]
async fn csrs_cannot_mint_node_or_master_identities() {
    const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    const CLIENT: &str = "kubernetes.io/kube-apiserver-client";
    let e = env().await;
    let node_csr = csr_for("node-x", "system:node:x", &["system:nodes"], CLIENT);
    let masters_csr = csr_for("root", "root", &["system:masters"], CLIENT);
    // By default the user tier, a node and a plain user cannot even ask.
    for (token, who) in [
        (ALICE, "daas:user:0xa11ce"),
        (NODE, "system:node:n1"),
        (CAROL, "carol"),
    ] {
        let (c, b) = e.call(token, "POST", CSRS, node_csr.clone()).await;
        assert_eq!(c, 403, "{who}: {b}");
        assert_eq!(b["message"], format!("certificatesigningrequests.certificates.k8s.io is forbidden: User \"{who}\" cannot create resource \"certificatesigningrequests\" in API group \"certificates.k8s.io\" at the cluster scope"));
    }
    // Alice is granted requesting and writing approval and status, nothing on signers.
    let (c, b) = e
        .call(ADMIN, "POST", &format!("{RBAC}/clusterroles"), json!({
            "metadata": {"name": "csr-requester"}, "rules": [
                {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
                 "verbs": ["create", "get", "list"]},
                {"apiGroups": ["certificates.k8s.io"],
                 "resources": ["certificatesigningrequests/approval", "certificatesigningrequests/status"],
                 "verbs": ["update"]}]}))
        .await;
    assert_eq!(c, 201, "{b}");
    for (name, user) in [("alice-csr", "daas:user:0xa11ce"), ("carol-csr", "carol")] {
        let (c, b) = e
            .call(ADMIN, "POST", &format!("{RBAC}/clusterrolebindings"), json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "csr-requester"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}))
            .await;
        assert_eq!(c, 201, "{b}");
    }
    let (c, created) = e.call(ALICE, "POST", CSRS, node_csr.clone()).await;
    assert_eq!(c, 201, "{created}");
    assert_eq!(created["spec"]["username"], "daas:user:0xa11ce");
    let mut approve = created.clone();
    approve["status"] = json!({"conditions": [{"type": "Approved", "status": "True",
        "reason": "Self", "message": "self-approved"}]});
    let (c, b) = e
        .call(
            ALICE,
            "PUT",
            &format!("{CSRS}/node-x/approval"),
            approve.clone(),
        )
        .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["reason"], "Forbidden");
    assert_eq!(b["message"], "certificatesigningrequests.certificates.k8s.io \"node-x\" is forbidden: user not permitted to approve requests with signerName \"kubernetes.io/kube-apiserver-client\"");
    // Nor may she put a certificate of her own making in the status of an approved request.
    let (c, other) = e
        .call(
            ALICE,
            "POST",
            CSRS,
            csr_for("node-y", "system:node:y", &["system:nodes"], CLIENT),
        )
        .await;
    assert_eq!(c, 201, "{other}");
    let mut approve_y = other.clone();
    approve_y["status"] = approve["status"].clone();
    let (c, approved_y) = e
        .call(ADMIN, "PUT", &format!("{CSRS}/node-y/approval"), approve_y)
        .await;
    assert_eq!(c, 200, "{approved_y}");
    let forged = {
        use base64::Engine;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:y");
        base64::engine::general_purpose::STANDARD.encode(p.self_signed(&key).unwrap().pem())
    };
    let mut signed = approved_y.clone();
    signed["status"]["certificate"] = json!(forged);
    let (c, b) = e
        .call(ALICE, "PUT", &format!("{CSRS}/node-y/status"), signed)
        .await;
    assert_eq!(c, 403, "{b}");
    assert_eq!(b["message"], "certificatesigningrequests.certificates.k8s.io \"node-y\" is forbidden: user not permitted to sign requests with signerName \"kubernetes.io/kube-apiserver-client\"");
    let (_, still) = e
        .call(ADMIN, "GET", &format!("{CSRS}/node-y"), Value::Null)
        .await;
    assert!(still["status"]["certificate"].is_null(), "{still}");
    let (_, still) = e
        .call(ADMIN, "GET", &format!("{CSRS}/node-x"), Value::Null)
        .await;
    assert!(still["status"]["conditions"].is_null(), "{still}");
    // system:masters through the client signer: refused for everyone, the admin included.
    for token in [ALICE, ADMIN] {
        let (c, b) = e.call(token, "POST", CSRS, masters_csr.clone()).await;
        assert_eq!(c, 403, "{b}");
        assert_eq!(b["message"], "certificatesigningrequests.certificates.k8s.io \"root\" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed");
    }
    // The control: `approve` on the signer's domain wildcard lets carol approve.
    let (c, b) = e
        .call(
            ADMIN,
            "POST",
            &format!("{RBAC}/clusterroles"),
            json!({
            "metadata": {"name": "kube-approver"}, "rules": [
                {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
                 "resourceNames": ["kubernetes.io/*"], "verbs": ["approve"]}]}),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    let (c, b) = e
        .call(ADMIN, "POST", &format!("{RBAC}/clusterrolebindings"), json!({
            "metadata": {"name": "carol-approves"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kube-approver"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]}))
        .await;
    assert_eq!(c, 201, "{b}");
    let (c, b) = e
        .call(CAROL, "PUT", &format!("{CSRS}/node-x/approval"), approve)
        .await;
    assert_eq!(c, 200, "{b}");
    assert_eq!(b["status"]["conditions"][0]["type"], "Approved");
}

/// An impersonated uid and extras reach what records the requester: a CSR's `spec.uid` and
/// `spec.extra`.
#[tokio::test]
async fn user_extra_is_recorded_on_csrs() {
    let e = env().await;
    let (c, b) = e
        .call_with(
            ADMIN,
            &[
                ("impersonate-user", "jane"),
                ("impersonate-group", "system:masters"),
                ("impersonate-uid", "u-123"),
                ("impersonate-extra-scopes", "view"),
            ],
            "POST",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests",
            csr_for("jane", "jane", &[], "example.com/signer"),
        )
        .await;
    assert_eq!(c, 201, "{b}");
    assert_eq!(b["spec"]["username"], "jane");
    assert_eq!(b["spec"]["uid"], "u-123");
    assert_eq!(b["spec"]["extra"], json!({"scopes": ["view"]}));
}
