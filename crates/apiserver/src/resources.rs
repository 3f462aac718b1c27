//! The resource types this API server serves, with their REST shape.

use serde_json::{json, Value};

use crate::registry::{self, Strategy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    Log,
    Binding,
    Approval,
    /// `serviceaccounts/token` (TokenRequest, create only).
    Token,
    /// `pods/eviction` (POST a policy/v1 Eviction).
    Eviction,
    /// `namespaces/finalize` (PUT the namespace with its `spec.finalizers`).
    Finalize,
}

#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    /// API group ("" for core).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// Does the object carry a spec whose changes bump metadata.generation?
    pub has_spec: bool,
    /// What the generic handlers ask of this kind (see `registry`).
    pub strategy: &'static dyn Strategy,
}

pub const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` / `pods` as Kubernetes spells it in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_sub(&self, s: Subresource) -> bool {
        self.subresources.contains(&s)
    }

    /// Storage key prefix for all objects of this resource (optionally in one namespace).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        let g = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{g}/{}/{ns}/", self.plural),
            _ => format!("/registry/{g}/{}/", self.plural),
        }
    }

    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{}", self.prefix(namespace), name)
    }

    pub fn discovery_entries(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.strategy.verbs(),
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        for s in self.subresources {
            let (name, kind, verbs): (&str, &str, Vec<&str>) = match s {
                Subresource::Status => ("status", self.kind, vec!["get", "patch", "update"]),
                Subresource::Scale => ("scale", "Scale", vec!["get", "patch", "update"]),
                Subresource::Log => ("log", self.kind, vec!["get"]),
                Subresource::Binding => ("binding", "Binding", vec!["create"]),
                Subresource::Approval => ("approval", self.kind, vec!["get", "patch", "update"]),
                Subresource::Token => ("token", "TokenRequest", vec!["create"]),
                Subresource::Eviction => ("eviction", "Eviction", vec!["create"]),
                Subresource::Finalize => ("finalize", self.kind, vec!["update"]),
            };
            let mut e = json!({
                "name": format!("{}/{}", self.plural, name),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if *s == Subresource::Scale {
                e["group"] = json!("autoscaling");
                e["version"] = json!("v1");
            }
            if *s == Subresource::Token {
                e["group"] = json!("authentication.k8s.io");
                e["version"] = json!("v1");
            }
            if *s == Subresource::Eviction {
                e["group"] = json!("policy");
                e["version"] = json!("v1");
            }
            out.push(e);
        }
        out
    }
}

// The kinds served, each defined with its strategy in `registry`.
pub const NAMESPACES: ResourceDef = registry::namespace::RESOURCE;
pub const PODS: ResourceDef = registry::pod::RESOURCE;
pub const NODES: ResourceDef = registry::node::RESOURCE;
pub const SERVICES: ResourceDef = registry::service::RESOURCE;
pub const CONFIG_MAPS: ResourceDef = registry::configmap::RESOURCE;
pub const SECRETS: ResourceDef = registry::secret::RESOURCE;
pub const EVENTS: ResourceDef = registry::event::RESOURCE;
pub const SERVICE_ACCOUNTS: ResourceDef = registry::serviceaccount::RESOURCE;
pub const ENDPOINTS: ResourceDef = registry::endpoints::RESOURCE;
pub const LEASES: ResourceDef = registry::lease::RESOURCE;
pub const LIMIT_RANGES: ResourceDef = registry::limitrange::RESOURCE;
pub const DEPLOYMENTS: ResourceDef = registry::deployment::RESOURCE;
pub const REPLICA_SETS: ResourceDef = registry::replicaset::RESOURCE;
pub const REPLICATION_CONTROLLERS: ResourceDef = registry::replicationcontroller::RESOURCE;
pub const POD_TEMPLATES: ResourceDef = registry::podtemplate::RESOURCE;
pub const PRIORITY_CLASSES: ResourceDef = registry::priorityclass::RESOURCE;
pub const RUNTIME_CLASSES: ResourceDef = registry::runtimeclass::RESOURCE;
pub const ENDPOINT_SLICES: ResourceDef = registry::endpointslice::RESOURCE;
pub const VALIDATING_WEBHOOK_CONFIGURATIONS: ResourceDef =
    registry::admissionregistration::VALIDATING_WEBHOOKS;
pub const MUTATING_WEBHOOK_CONFIGURATIONS: ResourceDef =
    registry::admissionregistration::MUTATING_WEBHOOKS;
pub const VALIDATING_ADMISSION_POLICIES: ResourceDef = registry::admissionregistration::POLICIES;
pub const VALIDATING_ADMISSION_POLICY_BINDINGS: ResourceDef =
    registry::admissionregistration::BINDINGS;
pub const CERTIFICATE_SIGNING_REQUESTS: ResourceDef = registry::csr::RESOURCE;
pub const ROLES: ResourceDef = registry::rbac::ROLES;
pub const CLUSTER_ROLES: ResourceDef = registry::rbac::CLUSTER_ROLES;
pub const ROLE_BINDINGS: ResourceDef = registry::rbac::ROLE_BINDINGS;
pub const CLUSTER_ROLE_BINDINGS: ResourceDef = registry::rbac::CLUSTER_ROLE_BINDINGS;
pub const RESOURCE_QUOTAS: ResourceDef = registry::resourcequota::RESOURCE;
pub const POD_DISRUPTION_BUDGETS: ResourceDef = registry::poddisruptionbudget::RESOURCE;
pub const EVENTS_V1: ResourceDef = registry::eventv1::RESOURCE;

pub static RESOURCES: &[ResourceDef] = &[
    NAMESPACES,
    PODS,
    NODES,
    SERVICES,
    CONFIG_MAPS,
    SECRETS,
    EVENTS,
    SERVICE_ACCOUNTS,
    ENDPOINTS,
    LEASES,
    DEPLOYMENTS,
    REPLICA_SETS,
    REPLICATION_CONTROLLERS,
    POD_TEMPLATES,
    PRIORITY_CLASSES,
    RUNTIME_CLASSES,
    ENDPOINT_SLICES,
    LIMIT_RANGES,
    VALIDATING_WEBHOOK_CONFIGURATIONS,
    MUTATING_WEBHOOK_CONFIGURATIONS,
    VALIDATING_ADMISSION_POLICIES,
    VALIDATING_ADMISSION_POLICY_BINDINGS,
    CERTIFICATE_SIGNING_REQUESTS,
    crate::satoken::TOKEN_REVIEWS,
    ROLES,
    CLUSTER_ROLES,
    ROLE_BINDINGS,
    CLUSTER_ROLE_BINDINGS,
    registry::reviews::SUBJECT_ACCESS_REVIEWS,
    registry::reviews::SELF_SUBJECT_ACCESS_REVIEWS,
    registry::reviews::LOCAL_SUBJECT_ACCESS_REVIEWS,
    registry::reviews::SELF_SUBJECT_RULES_REVIEWS,
    registry::reviews::SELF_SUBJECT_REVIEWS,
    RESOURCE_QUOTAS,
    POD_DISRUPTION_BUDGETS,
    EVENTS_V1,
];

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn by_kind(kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

/// Group names served under /apis, in discovery order.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

pub fn group_versions(group: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        if !out.contains(&r.version) {
            out.push(r.version);
        }
    }
    out
}

pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceDef> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_do_not_collide_across_namespaces() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(pods.key(Some("a"), "x"), "/registry/core/pods/a/x");
        assert!(!pods
            .key(Some("ab"), "x")
            .starts_with(&pods.prefix(Some("a"))));
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key(Some("ignored"), "n1"), "/registry/core/nodes/n1");
        assert_eq!(
            find("apps", "v1", "deployments").unwrap().qualified(),
            "deployments.apps"
        );
    }

    #[test]
    fn discovery_lists_subresources() {
        let pods = find("", "v1", "pods").unwrap();
        let names: Vec<String> = pods
            .discovery_entries()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "pods",
                "pods/status",
                "pods/log",
                "pods/binding",
                "pods/eviction"
            ]
        );
        assert_eq!(
            groups(),
            vec![
                "coordination.k8s.io",
                "apps",
                "scheduling.k8s.io",
                "node.k8s.io",
                "discovery.k8s.io",
                "admissionregistration.k8s.io",
                "certificates.k8s.io",
                "authentication.k8s.io",
                "rbac.authorization.k8s.io",
                "authorization.k8s.io",
                "policy",
                "events.k8s.io"
            ]
        );
    }
}
