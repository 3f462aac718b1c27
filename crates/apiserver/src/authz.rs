//! Authorization by identity tier (what a seal token's role grants):
//! - group `system:masters` (admin tier, controllers): everything;
//! - group `daas:users` (user tier): everything inside its own namespace (group
//!   `daas:namespace:<ns>`) except placing pods (`pods/binding`), and reading that Namespace
//!   object (so its labels, which pick the Pod Security level, stay the master's);
//! - group `system:nodes` (node tier, user `system:node:<name>`): what a kubelet needs — reads of
//!   nodes, pods, services, endpoints, namespaces, leases; its own Node and Lease, pod status,
//!   events. Secrets, ConfigMaps, ServiceAccounts and PVCs are decided by the graph in
//!   [`crate::nodeauthz`], which also adds the per-object checks (NodeRestriction);
//! - anyone else: nothing beyond discovery.

use crate::error::ApiError;
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
    match (method, t.name.is_some()) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
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

pub fn authorize(u: &User, verb: &str, t: &ResourceTarget) -> Result<(), ApiError> {
    if in_group(u, GROUP_MASTERS) {
        return Ok(());
    }
    if let Some(ns) = user_namespace(u).filter(|_| in_group(u, GROUP_USERS)) {
        let inside = t.def.namespaced && t.namespace.as_deref() == Some(ns);
        // Placing pods is the scheduler's job: users may not bind.
        let binding = t.def.kind == "Pod" && t.sub.as_deref() == Some("binding");
        let own_ns_read = t.def.kind == "Namespace"
            && t.name.as_deref() == Some(ns)
            && t.sub.is_none()
            && verb == "get";
        return if (inside && !binding) || own_ns_read {
            Ok(())
        } else {
            Err(forbidden(u, verb, t))
        };
    }
    if let Some(node) = node_name(u) {
        let read = matches!(verb, "get" | "list" | "watch");
        let own = t.name.as_deref() == Some(node);
        let ok = match t.def.kind {
            // Decided per object by the graph (crate::nodeauthz).
            k if crate::nodeauthz::is_graph_kind(k) => true,
            // Create names the object in the body: NodeRestriction checks it at admission.
            "Node" => {
                read || (own && verb != "deletecollection")
                    || (verb == "create" && t.name.is_none())
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
            "Service" | "Endpoints" | "Namespace" => read,
            _ => false,
        };
        return if ok {
            Ok(())
        } else {
            Err(forbidden(u, verb, t))
        };
    }
    Err(forbidden(u, verb, t))
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
        }
    }

    #[test]
    fn tiers() {
        let admin = user("a", &[GROUP_MASTERS]);
        let alice = user("daas:user:0xa", &[GROUP_USERS, "daas:namespace:u-aaaa"]);
        let node = user("system:node:n1", &[GROUP_NODES]);
        let nobody = user("x", &[]);
        let pods_own = t("", "pods", Some("u-aaaa"), None, None);
        let pods_default = t("", "pods", Some("default"), None, None);
        assert!(authorize(&admin, "delete", &pods_default).is_ok());
        assert!(authorize(&alice, "create", &pods_own).is_ok());
        let e = authorize(&alice, "list", &pods_default).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(e.message, "pods is forbidden: User \"daas:user:0xa\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
        assert!(authorize(
            &alice,
            "get",
            &t("", "namespaces", None, Some("u-aaaa"), None)
        )
        .is_ok());
        assert!(authorize(&alice, "list", &t("", "namespaces", None, None, None)).is_err());
        assert!(authorize(&alice, "list", &t("", "nodes", None, None, None)).is_err());
        assert!(authorize(
            &node,
            "patch",
            &t("", "nodes", None, Some("n1"), Some("status"))
        )
        .is_ok());
        assert!(authorize(
            &node,
            "patch",
            &t("", "nodes", None, Some("n2"), Some("status"))
        )
        .is_err());
        assert!(authorize(
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
            &node,
            "get",
            &t("", "secrets", Some("default"), Some("s"), None)
        )
        .is_ok());
        assert!(authorize(
            &node,
            "list",
            &t("apps", "deployments", Some("default"), None, None)
        )
        .is_err());
        assert!(authorize(&node, "create", &pods_default).is_err());
        assert!(authorize(
            &node,
            "create",
            &t("", "pods", Some("default"), Some("p"), Some("binding"))
        )
        .is_err());
        assert!(authorize(
            &node,
            "update",
            &t("", "pods", Some("default"), Some("p"), None)
        )
        .is_err());
        assert!(authorize(
            &node,
            "create",
            &t("coordination.k8s.io", "leases", Some("default"), None, None)
        )
        .is_err());
        // Users place no pods and cannot relabel their namespace.
        let e = authorize(
            &alice,
            "create",
            &t("", "pods", Some("u-aaaa"), Some("p"), Some("binding")),
        )
        .unwrap_err();
        assert_eq!(e.message, "pods \"p\" is forbidden: User \"daas:user:0xa\" cannot create resource \"pods/binding\" in API group \"\" in the namespace \"u-aaaa\"");
        for verb in ["patch", "update", "delete"] {
            let e = authorize(
                &alice,
                verb,
                &t("", "namespaces", None, Some("u-aaaa"), None),
            )
            .unwrap_err();
            assert_eq!(e.message, format!("namespaces \"u-aaaa\" is forbidden: User \"daas:user:0xa\" cannot {verb} resource \"namespaces\" in API group \"\" at the cluster scope"));
        }
        assert!(authorize(
            &alice,
            "patch",
            &t("", "namespaces", None, Some("u-aaaa"), Some("status"))
        )
        .is_err());
        assert!(authorize(&nobody, "get", &pods_default).is_err());
    }
}
