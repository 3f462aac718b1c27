//! The authorizer chain, as upstream's `--authorization-mode=Node,RBAC` with the privileged group:
//! - group `system:masters` (admin tier, controllers): everything;
//! - group `system:nodes` (node tier, user `system:node:<name>`): what a kubelet needs — reads of
//!   nodes, pods, services, endpoints, endpointslices, namespaces, leases, ingresses,
//!   ingressclasses and networkpolicies; its own Node and
//!   Lease, pod status, events. Secrets, ConfigMaps, ServiceAccounts and PVCs are decided by the graph in
//!   [`crate::nodeauthz`], which also adds the per-object checks (NodeRestriction);
//! - then RBAC ([`crate::rbac`]) for everyone: the stored roles and bindings. The user tier
//!   (group `daas:users`) holds what the RoleBinding of its namespace group
//!   (`daas:namespace:<ns>`) grants: by default everything inside its namespace except placing
//!   pods (`pods/binding`), and reading that Namespace object (so its labels, which pick the Pod
//!   Security level, stay the master's). Every authenticated identity gets discovery and the
//!   self reviews (`system:discovery`, `system:basic-user`).

use crate::error::ApiError;
use crate::rbac::{Attributes, Policy};
use crate::request::ResourceTarget;
use crate::server::User;

pub const GROUP_MASTERS: &str = "system:masters";
pub const GROUP_NODES: &str = "system:nodes";
pub const GROUP_USERS: &str = "daas:users";
pub const NAMESPACE_GROUP_PREFIX: &str = "daas:namespace:";
pub const NODE_USER_PREFIX: &str = "system:node:";

/// The Kubernetes verb of a request.
pub fn verb(method: &axum::http::Method, t: &ResourceTarget, watch: bool) -> &'static str {
    use axum::http::Method;
    // A stream is a create whatever the method: kubectl's WebSocket GET needs the same `create`
    // on pods/exec as the SPDY POST did (upstream's AuthorizePodWebsocketUpgradeCreatePermission).
    if matches!(t.sub.as_deref(), Some("exec" | "attach" | "portforward")) {
        return "create";
    }
    match (method, t.name.is_some()) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET | &Method::HEAD, true) => "get",
        (&Method::GET | &Method::HEAD, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

fn in_group(u: &User, g: &str) -> bool {
    u.groups.iter().any(|x| x == g)
}

/// The namespace a user-tier identity is confined to.
pub fn user_namespace(u: &User) -> Option<&str> {
    u.groups
        .iter()
        .find_map(|g| g.strip_prefix(NAMESPACE_GROUP_PREFIX))
}

pub fn node_name(u: &User) -> Option<&str> {
    if in_group(u, GROUP_NODES) {
        u.name.strip_prefix(NODE_USER_PREFIX)
    } else {
        None
    }
}

/// The authorizer's refusal, as upstream words it.
pub fn forbidden(u: &User, verb: &str, t: &ResourceTarget) -> ApiError {
    let resource = match &t.sub {
        Some(s) => format!("{}/{s}", t.def.plural),
        None => t.def.plural.to_string(),
    };
    let scope = match (&t.namespace, t.def.namespaced) {
        (Some(ns), true) => format!("in the namespace \"{ns}\""),
        _ => "at the cluster scope".to_string(),
    };
    let what = match &t.name {
        Some(n) => format!("{} \"{n}\"", t.def.qualified()),
        None => t.def.qualified(),
    };
    ApiError::forbidden(format!(
        "{what} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        u.name, t.def.group
    ))
    .with_details(serde_json::json!({"name": t.name, "group": t.def.group, "kind": t.def.plural}))
}

/// The authorizer's refusal with the reason upstream appends (`...: <reason>`).
pub fn forbidden_because(u: &User, verb: &str, t: &ResourceTarget, reason: &str) -> ApiError {
    let mut e = forbidden(u, verb, t);
    e.message = format!("{}: {reason}", e.message);
    e
}

/// Is the identity in the privileged group?
pub fn is_master(u: &User) -> bool {
    in_group(u, GROUP_MASTERS)
}

/// The static part of the Node authorizer: what a node identity may do whatever RBAC says.
pub fn node_allows(u: &User, verb: &str, t: &ResourceTarget) -> bool {
    let Some(node) = node_name(u) else {
        return false;
    };
    let read = matches!(verb, "get" | "list" | "watch");
    let own = t.name.as_deref() == Some(node);
    match t.def.kind {
        // Decided per object by the graph (crate::nodeauthz).
        k if crate::nodeauthz::is_graph_kind(k) => true,
        // Create names the object in the body: NodeRestriction checks it at admission.
        "Node" => {
            read || (own && verb != "deletecollection") || (verb == "create" && t.name.is_none())
        }
        "Lease" => {
            read || (t.namespace.as_deref() == Some(crate::nodeauthz::NODE_LEASE_NAMESPACE)
                && ((own && matches!(verb, "get" | "update" | "patch" | "delete"))
                    || (verb == "create" && t.name.is_none())))
        }
        "Pod" => {
            (read && t.sub.is_none())
                || (t.sub.as_deref() == Some("status")
                    && matches!(verb, "get" | "update" | "patch"))
                || (t.sub.is_none() && verb == "delete")
        }
        "Event" => read || matches!(verb, "create" | "update" | "patch"),
        // The node proxy follows Services through their EndpointSlices (upstream binds
        // kube-proxy to `system:node-proxier` for that).
        "Service" | "Endpoints" | "EndpointSlice" | "Namespace" => read,
        // The node's ingress proxy routes by Ingresses of its class (the TLS Secrets they name
        // are decided by the graph).
        "Ingress" | "IngressClass" => read && t.sub.is_none(),
        // The node enforces the policies of its pods (net::policy of the agent), as upstream
        // binds kube-router/Calico's node agents to read them.
        "NetworkPolicy" => read,
        _ => false,
    }
}

/// Authorize a resource request: the privileged group, then the Node authorizer, then RBAC.
pub fn authorize(
    policy: &Policy,
    u: &User,
    verb: &str,
    t: &ResourceTarget,
) -> Result<(), ApiError> {
    if is_master(u) || node_allows(u, verb, t) || policy.allows(u, &Attributes::of_target(verb, t))
    {
        Ok(())
    } else {
        Err(forbidden(u, verb, t))
    }
}

/// Authorize a non-resource request (discovery, health, OpenAPI).
pub fn authorize_path(policy: &Policy, u: &User, verb: &str, path: &str) -> Result<(), ApiError> {
    if is_master(u) || policy.allows(u, &Attributes::non_resource(verb, path)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot {verb} path \"{path}\"",
            u.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    fn t(
        group: &str,
        plural: &str,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> ResourceTarget {
        ResourceTarget {
            def: find(group, "v1", plural).unwrap(),
            namespace: ns.map(String::from),
            name: name.map(String::from),
            sub: sub.map(String::from),
        }
    }

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn tiers() {
        let mut objs = crate::rbac::bootstrap_cluster_roles();
        objs.extend(crate::rbac::bootstrap_cluster_bindings());
        objs.push(crate::rbac::user_namespace_binding("u-aaaa"));
        let p = Policy::from_objects(&objs);
        let admin = user("a", &[GROUP_MASTERS]);
        let alice = user("daas:user:0xa", &[GROUP_USERS, "daas:namespace:u-aaaa"]);
        let node = user("system:node:n1", &[GROUP_NODES]);
        let nobody = user("x", &[]);
        let pods_own = t("", "pods", Some("u-aaaa"), None, None);
        let pods_default = t("", "pods", Some("default"), None, None);
        assert!(authorize(&p, &admin, "delete", &pods_default).is_ok());
        assert!(authorize(&p, &alice, "create", &pods_own).is_ok());
        let e = authorize(&p, &alice, "list", &pods_default).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(e.message, "pods is forbidden: User \"daas:user:0xa\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
        assert!(authorize(
            &p,
            &alice,
            "get",
            &t("", "namespaces", None, Some("u-aaaa"), None)
        )
        .is_ok());
        assert!(authorize(&p, &alice, "list", &t("", "namespaces", None, None, None)).is_err());
        assert!(authorize(&p, &alice, "list", &t("", "nodes", None, None, None)).is_err());
        // A node reads Endpoints and EndpointSlices (its proxy), and writes neither.
        let slices = t(
            "discovery.k8s.io",
            "endpointslices",
            Some("default"),
            None,
            None,
        );
        let endpoints = t("", "endpoints", Some("default"), None, None);
        for verb in ["list", "watch"] {
            assert!(authorize(&p, &node, verb, &slices).is_ok());
            assert!(authorize(&p, &node, verb, &endpoints).is_ok());
        }
        // A node reads NetworkPolicies (it enforces them) and writes none; a tenant reads
        // none outside its namespace.
        let netpols = t(
            "networking.k8s.io",
            "networkpolicies",
            Some("default"),
            None,
            None,
        );
        for verb in ["get", "list", "watch"] {
            assert!(authorize(&p, &node, verb, &netpols).is_ok());
            assert_eq!(authorize(&p, &alice, verb, &netpols).unwrap_err().code, 403);
            assert_eq!(
                authorize(&p, &nobody, verb, &netpols).unwrap_err().code,
                403
            );
        }
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert_eq!(authorize(&p, &node, verb, &netpols).unwrap_err().code, 403);
        }
        for verb in ["create", "deletecollection"] {
            assert_eq!(authorize(&p, &node, verb, &slices).unwrap_err().code, 403);
            assert_eq!(
                authorize(&p, &node, verb, &endpoints).unwrap_err().code,
                403
            );
        }
        assert!(authorize(
            &p,
            &node,
            "patch",
            &t("", "nodes", None, Some("n1"), Some("status"))
        )
        .is_ok());
        assert!(authorize(
            &p,
            &node,
            "patch",
            &t("", "nodes", None, Some("n2"), Some("status"))
        )
        .is_err());
        assert!(authorize(
            &p,
            &node,
            "update",
            &t(
                "coordination.k8s.io",
                "leases",
                Some("kube-node-lease"),
                Some("n1"),
                None
            )
        )
        .is_ok());
        assert!(authorize(
            &p,
            &node,
            "update",
            &t(
                "coordination.k8s.io",
                "leases",
                Some("kube-node-lease"),
                Some("n2"),
                None
            )
        )
        .is_err());
        // Secrets and ConfigMaps are left to the graph (nodeauthz); Deployments are not a node's business.
        assert!(authorize(
            &p,
            &node,
            "get",
            &t("", "secrets", Some("default"), Some("s"), None)
        )
        .is_ok());
        assert!(authorize(
            &p,
            &node,
            "list",
            &t("apps", "deployments", Some("default"), None, None)
        )
        .is_err());
        assert!(authorize(&p, &node, "create", &pods_default).is_err());
        assert!(authorize(
            &p,
            &node,
            "create",
            &t("", "pods", Some("default"), Some("p"), Some("binding"))
        )
        .is_err());
        assert!(authorize(
            &p,
            &node,
            "update",
            &t("", "pods", Some("default"), Some("p"), None)
        )
        .is_err());
        assert!(authorize(
            &p,
            &node,
            "create",
            &t("coordination.k8s.io", "leases", Some("default"), None, None)
        )
        .is_err());
        // A node reads Ingresses and IngressClasses (its ingress proxy) and writes neither.
        let ings = ResourceTarget {
            def: find("networking.k8s.io", "v1", "ingresses").unwrap(),
            namespace: Some("default".into()),
            name: Some("web".into()),
            sub: None,
        };
        assert!(authorize(&p, &node, "get", &ings).is_ok());
        for verb in ["update", "delete"] {
            assert_eq!(authorize(&p, &node, verb, &ings).unwrap_err().code, 403);
        }
        let mut ing_status = ings.clone();
        ing_status.sub = Some("status".into());
        for verb in ["get", "patch"] {
            assert_eq!(
                authorize(&p, &node, verb, &ing_status).unwrap_err().code,
                403
            );
        }
        let classes = t("networking.k8s.io", "ingressclasses", None, None, None);
        assert!(authorize(&p, &node, "watch", &classes).is_ok());
        assert!(authorize(&p, &node, "create", &classes).is_err());
        assert!(authorize(&p, &alice, "create", &classes).is_err());
        assert!(authorize(&p, &nobody, "list", &classes).is_err());
        // Users place no pods and cannot relabel their namespace.
        let e = authorize(
            &p,
            &alice,
            "create",
            &t("", "pods", Some("u-aaaa"), Some("p"), Some("binding")),
        )
        .unwrap_err();
        assert_eq!(e.message, "pods \"p\" is forbidden: User \"daas:user:0xa\" cannot create resource \"pods/binding\" in API group \"\" in the namespace \"u-aaaa\"");
        for verb in ["patch", "update", "delete"] {
            let e = authorize(
                &p,
                &alice,
                verb,
                &t("", "namespaces", None, Some("u-aaaa"), None),
            )
            .unwrap_err();
            assert_eq!(e.message, format!("namespaces \"u-aaaa\" is forbidden: User \"daas:user:0xa\" cannot {verb} resource \"namespaces\" in API group \"\" at the cluster scope"));
        }
        assert!(authorize(
            &p,
            &alice,
            "patch",
            &t("", "namespaces", None, Some("u-aaaa"), Some("status"))
        )
        .is_err());
        assert!(authorize(&p, &nobody, "get", &pods_default).is_err());
        // Without its namespace's RoleBinding a user tier identity holds nothing there.
        let bare = Policy::from_objects(&crate::rbac::bootstrap_cluster_roles());
        assert!(authorize(&bare, &alice, "create", &pods_own).is_err());
        // Discovery for every authenticated identity, not for others.
        let carol = user("carol", &["system:authenticated"]);
        assert!(authorize_path(&p, &carol, "get", "/apis/apps/v1").is_ok());
        assert_eq!(
            authorize_path(&p, &nobody, "get", "/api")
                .unwrap_err()
                .message,
            "forbidden: User \"x\" cannot get path \"/api\""
        );
    }
}
