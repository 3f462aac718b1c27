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
    /// `pods/exec` (a WebSocket stream to the node).
    Exec,
    /// `pods/attach` (a WebSocket stream to the running container's own stdio).
    Attach,
    /// `pods/ephemeralcontainers` (get/update/patch the pod; only adds ephemeral containers).
    EphemeralContainers,
    /// `pods/portforward` (SPDY/3.1, plain or tunneled in a WebSocket).
    PortForward,
    /// `pods/proxy`, `services/proxy`: HTTP to the pod (a Service's endpoint) through its node.
    Proxy,
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
        if let Some(shared) = self.strategy.storage_resource() {
            return shared.prefix(namespace);
        }
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
            let proxy_kind = format!("{}ProxyOptions", self.kind);
            let (name, kind, verbs): (&str, &str, Vec<&str>) = match s {
                Subresource::Status => ("status", self.kind, vec!["get", "patch", "update"]),
                Subresource::Scale => ("scale", "Scale", vec!["get", "patch", "update"]),
                Subresource::Log => ("log", self.kind, vec!["get"]),
                Subresource::Binding => ("binding", "Binding", vec!["create"]),
                Subresource::Approval => ("approval", self.kind, vec!["get", "patch", "update"]),
                Subresource::Token => ("token", "TokenRequest", vec!["create"]),
                Subresource::Eviction => ("eviction", "Eviction", vec!["create"]),
                Subresource::Finalize => ("finalize", self.kind, vec!["update"]),
                Subresource::Exec => ("exec", "PodExecOptions", vec!["create", "get"]),
                Subresource::Attach => ("attach", "PodAttachOptions", vec!["create", "get"]),
                Subresource::EphemeralContainers => (
                    "ephemeralcontainers",
                    self.kind,
                    vec!["get", "patch", "update"],
                ),
                Subresource::PortForward => (
                    "portforward",
                    "PodPortForwardOptions",
                    vec!["create", "get"],
                ),
                Subresource::Proxy => (
                    "proxy",
                    proxy_kind.as_str(),
                    vec!["create", "delete", "get", "patch", "update"],
                ),
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
pub const STATEFUL_SETS: ResourceDef = registry::statefulset::RESOURCE;
pub const DAEMON_SETS: ResourceDef = registry::daemonset::RESOURCE;
pub const CONTROLLER_REVISIONS: ResourceDef = registry::controllerrevision::RESOURCE;
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
pub const CUSTOM_RESOURCE_DEFINITIONS: ResourceDef = registry::crd::RESOURCE;
pub const JOBS: ResourceDef = registry::job::RESOURCE;
pub const CRON_JOBS: ResourceDef = registry::cronjob::RESOURCE;
pub const HORIZONTAL_POD_AUTOSCALERS: ResourceDef = registry::hpa::RESOURCE;
pub const HORIZONTAL_POD_AUTOSCALERS_V1: ResourceDef = registry::hpa::RESOURCE_V1;
pub const PERSISTENT_VOLUMES: ResourceDef = registry::persistentvolume::PERSISTENT_VOLUMES;
pub const PERSISTENT_VOLUME_CLAIMS: ResourceDef =
    registry::persistentvolume::PERSISTENT_VOLUME_CLAIMS;
pub const STORAGE_CLASSES: ResourceDef = registry::storageclass::RESOURCE;
pub const INGRESSES: ResourceDef = registry::ingress::INGRESSES;
pub const INGRESS_CLASSES: ResourceDef = registry::ingress::INGRESS_CLASSES;
pub const NETWORK_POLICIES: ResourceDef = registry::networkpolicy::RESOURCE;

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
    STATEFUL_SETS,
    DAEMON_SETS,
    CONTROLLER_REVISIONS,
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
    CUSTOM_RESOURCE_DEFINITIONS,
    JOBS,
    CRON_JOBS,
    // autoscaling/v2 first: discovery lists a built-in group's versions in this order, and v2
    // is the preferred version (as upstream).
    HORIZONTAL_POD_AUTOSCALERS,
    HORIZONTAL_POD_AUTOSCALERS_V1,
    PERSISTENT_VOLUMES,
    PERSISTENT_VOLUME_CLAIMS,
    STORAGE_CLASSES,
    INGRESSES,
    INGRESS_CLASSES,
    NETWORK_POLICIES,
    registry::metrics::NODE_METRICS,
    registry::metrics::POD_METRICS,
    registry::usage::RESOURCE,
];

/// Every resource served now: the built-in kinds, then the custom resources of established CRDs.
pub fn all() -> Vec<&'static ResourceDef> {
    RESOURCES
        .iter()
        .chain(registry::customresource::served())
        .collect()
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
        .or_else(|| {
            registry::customresource::served()
                .into_iter()
                .find(|r| r.group == group && r.version == version && r.plural == plural)
        })
}

pub fn by_kind(kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

/// Group names served under /apis, in discovery order.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in all() {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

/// Kubernetes' version priority (GA > beta > alpha > other, higher numbers first), as
/// discovery orders the versions of a group.
fn version_priority(v: &str) -> (u8, u64, u64, String) {
    let parse = |s: &str| -> Option<(u64, u8, u64)> {
        let rest = s.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 3, 0));
        }
        for (pre, rank) in [("beta", 2u8), ("alpha", 1u8)] {
            if let Some(n) = tail.strip_prefix(pre) {
                let minor: u64 = n.parse().ok()?;
                return Some((major, rank, minor));
            }
        }
        None
    };
    match parse(v) {
        Some((major, rank, minor)) => (rank, major, minor, String::new()),
        None => (0, 0, 0, v.to_string()),
    }
}

/// Order of versions in discovery: highest priority first.
pub fn by_version_priority(a: &str, b: &str) -> std::cmp::Ordering {
    let (pa, pb) = (version_priority(a), version_priority(b));
    (pb.0, pb.1, pb.2)
        .cmp(&(pa.0, pa.1, pa.2))
        .then_with(|| pa.3.cmp(&pb.3))
}

pub fn group_versions(group: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in all().into_iter().filter(|r| r.group == group) {
        if !out.contains(&r.version) {
            out.push(r.version);
        }
    }
    if !RESOURCES.iter().any(|r| r.group == group) {
        out.sort_by(|a, b| by_version_priority(a, b));
    }
    out
}

pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceDef> + 'a {
    all()
        .into_iter()
        .filter(move |r| r.group == group && r.version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_kubernetes_priority() {
        let mut v = vec!["v1alpha1", "v2beta1", "v1", "v1beta2", "foo", "v2"];
        v.sort_by(|a, b| by_version_priority(a, b));
        assert_eq!(v, vec!["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }

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
                "pods/eviction",
                "pods/exec",
                "pods/attach",
                "pods/portforward",
                "pods/proxy",
                "pods/ephemeralcontainers"
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
                "events.k8s.io",
                "apiextensions.k8s.io",
                "batch",
                "autoscaling",
                "storage.k8s.io",
                "networking.k8s.io",
                "metrics.k8s.io",
                "daas.io"
            ]
        );
    }
}
