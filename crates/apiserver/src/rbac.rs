//! The RBAC authorizer (upstream plugin/pkg/auth/authorizer/rbac), escalation prevention
//! (pkg/registry/rbac/escalation_check.go, validation/policy_comparator.go) and the bootstrap
//! policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), reconciled at every start.
//!
//! The stored roles and bindings are read once into a [`Policy`] and kept by [`Authorizer`] until
//! a watch on the RBAC prefix reports a change: requests do not scan the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use daas_store::Store;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, decode_kv, Ctx};
use crate::registry::rbac::{strs, GROUP};
use crate::request::ResourceTarget;
use crate::resources::{self, ResourceDef};
use crate::server::User;
use crate::watchcache::WatchCache;

/// Storage prefix of every RBAC object.
pub const PREFIX: &str = "/registry/rbac.authorization.k8s.io/";
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The metrics reader ClusterRole, and the group its bootstrap binding names (as upstream).
pub const MONITORING_ROLE: &str = "system:monitoring";
/// The ClusterRole every user-tier namespace binds for its owner group.
pub const USER_NAMESPACE_ROLE: &str = "daas:namespace-owner";
/// The ClusterRole holding the base rules of [`USER_NAMESPACE_ROLE`] (which aggregates it).
pub const USER_NAMESPACE_BASE_ROLE: &str = "daas:aggregate-to-namespace-owner";
/// The label of the ClusterRoles aggregated into [`USER_NAMESPACE_ROLE`] besides those labelled
/// as upstream's `aggregate-to-admin`/`-edit`/`-view` (the base role carries it).
pub const AGGREGATE_TO_NAMESPACE_OWNER: &str = "k3s-daas.io/aggregate-to-namespace-owner";
/// The RoleBinding (in each user namespace) of [`USER_NAMESPACE_ROLE`].
pub const USER_NAMESPACE_BINDING: &str = "daas:namespace-owner";
/// The ClusterRole (and its binding to the user tier) letting tenants read StorageClasses, which
/// they name in their claims; PersistentVolumes stay admin-only (a hostPath PV is a host escape).
pub const STORAGE_CLASS_READER_ROLE: &str = "daas:storageclass-reader";
/// The ClusterRole (and its binding to every authenticated identity) letting anyone read
/// IngressClasses, which Ingresses name; writing them stays admin-only.
pub const INGRESS_CLASS_READER_ROLE: &str = "daas:ingressclass-reader";
const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// What a request asks, as RBAC sees it (upstream `authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub resource_request: bool,
    pub namespace: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub path: String,
}

impl Attributes {
    pub fn of_target(verb: &str, t: &ResourceTarget) -> Self {
        // A Namespace is addressed inside itself (`/api/v1/namespaces/x` has namespace x).
        let namespace = match (&t.namespace, t.def.kind, &t.name) {
            (Some(ns), _, _) if t.def.namespaced => ns.clone(),
            (_, "Namespace", Some(n)) => n.clone(),
            _ => String::new(),
        };
        Attributes {
            verb: verb.into(),
            resource_request: true,
            namespace,
            group: t.def.group.into(),
            resource: t.def.plural.into(),
            subresource: t.sub.clone().unwrap_or_default(),
            name: t.name.clone().unwrap_or_default(),
            path: String::new(),
        }
    }

    pub fn non_resource(verb: &str, path: &str) -> Self {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }
}

/// The verb of a non-resource request.
pub fn non_resource_verb(method: &axum::http::Method) -> String {
    method.as_str().to_ascii_lowercase()
}

/// One policy rule (rbac/v1 `PolicyRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn owned(v: &Value) -> Vec<String> {
    strs(v).into_iter().map(String::from).collect()
}

fn has(set: &[String], x: &str) -> bool {
    set.iter().any(|s| s == x)
}

impl Rule {
    pub fn from_json(r: &Value) -> Self {
        Rule {
            verbs: owned(&r["verbs"]),
            api_groups: owned(&r["apiGroups"]),
            resources: owned(&r["resources"]),
            resource_names: owned(&r["resourceNames"]),
            non_resource_urls: owned(&r["nonResourceURLs"]),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("verbs".into(), json!(self.verbs));
        for (k, v) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !v.is_empty() {
                o.insert(k.into(), json!(v));
            }
        }
        Value::Object(o)
    }

    fn resource_matches(&self, a: &Attributes) -> bool {
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty()
                    && r.strip_prefix("*/") == Some(a.subresource.as_str()))
        })
    }

    /// Does this rule allow the request (upstream `RuleAllows`)?
    pub fn allows(&self, a: &Attributes) -> bool {
        if !(has(&self.verbs, "*") || has(&self.verbs, &a.verb)) {
            return false;
        }
        if a.resource_request {
            (has(&self.api_groups, "*") || has(&self.api_groups, &a.group))
                && self.resource_matches(a)
                && (self.resource_names.is_empty() || has(&self.resource_names, &a.name))
        } else {
            self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            })
        }
    }

    /// Upstream `ruleCovers`: does this (owner) rule grant everything `r` grants?
    pub fn covers(&self, r: &Rule) -> bool {
        let verbs = has(&self.verbs, "*") || r.verbs.iter().all(|v| has(&self.verbs, v));
        let groups =
            has(&self.api_groups, "*") || r.api_groups.iter().all(|g| has(&self.api_groups, g));
        let resources = has(&self.resources, "*")
            || r.resources.iter().all(|x| {
                has(&self.resources, x)
                    || x.split_once('/')
                        .is_some_and(|(_, sub)| has(&self.resources, &format!("*/{sub}")))
            });
        let urls = r.non_resource_urls.iter().all(|u| {
            self.non_resource_urls.iter().any(|o| {
                o == "*" || o == u || o.strip_suffix('*').is_some_and(|p| u.starts_with(p))
            })
        });
        let names = self.resource_names.is_empty()
            || (!r.resource_names.is_empty()
                && r.resource_names
                    .iter()
                    .all(|n| has(&self.resource_names, n)));
        verbs && groups && resources && urls && names
    }

    /// Upstream `BreakdownRule`: one rule per (group, resource, name, verb) or (url, verb).
    pub fn breakdown(&self) -> Vec<Rule> {
        let mut out = Vec::new();
        let one = |v: &str| vec![v.to_string()];
        for g in &self.api_groups {
            for r in &self.resources {
                for v in &self.verbs {
                    if self.resource_names.is_empty() {
                        out.push(Rule {
                            verbs: one(v),
                            api_groups: one(g),
                            resources: one(r),
                            ..Default::default()
                        });
                    }
                    for n in &self.resource_names {
                        out.push(Rule {
                            verbs: one(v),
                            api_groups: one(g),
                            resources: one(r),
                            resource_names: one(n),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        for u in &self.non_resource_urls {
            for v in &self.verbs {
                out.push(Rule {
                    verbs: one(v),
                    non_resource_urls: one(u),
                    ..Default::default()
                });
            }
        }
        out
    }

    /// Upstream `CompactString`, as escalation refusals list missing rules.
    pub fn compact_string(&self) -> String {
        let q = |v: &[String]| {
            let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
            format!("[{}]", items.join(" "))
        };
        let mut parts = Vec::new();
        for (label, v) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !v.is_empty() {
                parts.push(format!("{label}:{}", q(v)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// The rules of `requested` that no rule of `owner` covers (each broken down), upstream `Covers`.
pub fn uncovered(owner: &[Rule], requested: &[Rule]) -> Vec<Rule> {
    let mut missing = Vec::new();
    for r in requested {
        for piece in r.breakdown() {
            if !owner.iter().any(|o| o.covers(&piece)) && !missing.contains(&piece) {
                missing.push(piece);
            }
        }
    }
    missing
}

#[derive(Debug, Clone)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(o: &Value) -> Self {
        let namespace = crate::table::s(&o["metadata"]["namespace"]);
        let subjects = o["subjects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| Subject {
                        kind: crate::table::s(&x["kind"]),
                        name: crate::table::s(&x["name"]),
                        namespace: crate::table::s(&x["namespace"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Binding {
            name: crate::table::s(&o["metadata"]["name"]),
            role_kind: crate::table::s(&o["roleRef"]["kind"]),
            role_name: crate::table::s(&o["roleRef"]["name"]),
            namespace,
            subjects,
        }
    }

    /// Upstream `appliesToUser`.
    fn applies_to(&self, u: &User) -> bool {
        self.subjects.iter().any(|s| match s.kind.as_str() {
            "User" => u.name == s.name,
            "Group" => u.groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = if s.namespace.is_empty() {
                    &self.namespace
                } else {
                    &s.namespace
                };
                u.name == format!("system:serviceaccount:{ns}:{}", s.name)
            }
            _ => false,
        })
    }
}

/// A consistent view of the stored roles and bindings.
#[derive(Debug, Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<Rule>>,
    cluster_roles: HashMap<String, Vec<Rule>>,
    role_bindings: HashMap<String, Vec<Binding>>,
    cluster_bindings: Vec<Binding>,
}

fn rules_of(o: &Value) -> Vec<Rule> {
    o["rules"]
        .as_array()
        .map(|a| a.iter().map(Rule::from_json).collect())
        .unwrap_or_default()
}

impl Policy {
    /// Build from RBAC objects (any of the four kinds; others are ignored).
    pub fn from_objects<'a>(objs: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut p = Policy::default();
        for o in objs {
            let name = crate::table::s(&o["metadata"]["name"]);
            let ns = crate::table::s(&o["metadata"]["namespace"]);
            match o["kind"].as_str() {
                Some("Role") => {
                    p.roles.insert((ns, name), rules_of(o));
                }
                Some("ClusterRole") => {
                    p.cluster_roles.insert(name, rules_of(o));
                }
                Some("RoleBinding") => p
                    .role_bindings
                    .entry(ns)
                    .or_default()
                    .push(Binding::from_json(o)),
                Some("ClusterRoleBinding") => p.cluster_bindings.push(Binding::from_json(o)),
                _ => {}
            }
        }
        p
    }

    /// Read every RBAC object; also returns the revision they were read at.
    pub async fn load(store: &dyn Store) -> ApiResult<(Self, i64)> {
        let res = store.list(PREFIX).await?;
        let objs = res
            .items
            .iter()
            .map(decode_kv)
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((Policy::from_objects(&objs), res.revision))
    }

    fn role_rules(&self, b: &Binding) -> &[Rule] {
        let rules = match b.role_kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&b.role_name),
            "Role" => self.roles.get(&(b.namespace.clone(), b.role_name.clone())),
            _ => None,
        };
        rules.map(Vec::as_slice).unwrap_or(&[])
    }

    /// Why a binding's role reference yields no rules, as upstream's rule resolver reports it
    /// (`GetRoleReferenceRules`): the referenced role is missing, or the kind is unknown.
    fn role_ref_error(&self, b: &Binding) -> Option<String> {
        match b.role_kind.as_str() {
            "ClusterRole" if !self.cluster_roles.contains_key(&b.role_name) => Some(format!(
                "clusterrole.rbac.authorization.k8s.io {:?} not found",
                b.role_name
            )),
            "Role"
                if !self
                    .roles
                    .contains_key(&(b.namespace.clone(), b.role_name.clone())) =>
            {
                Some(format!(
                    "role.rbac.authorization.k8s.io {:?} not found",
                    b.role_name
                ))
            }
            "ClusterRole" | "Role" => None,
            other => Some(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// The resolution errors met while gathering `u`'s rules in `namespace` ("" = cluster-wide
    /// only): one per binding that applies to `u` but whose role cannot be resolved,
    /// ClusterRoleBindings first. Upstream RBAC reports them in a SubjectAccessReview's reason
    /// (`RBAC: <errors>`, when not allowed) and a SelfSubjectRulesReview's `evaluationError`.
    pub fn resolution_errors(&self, u: &User, namespace: &str) -> Vec<String> {
        let namespaced = (!namespace.is_empty())
            .then(|| self.role_bindings.get(namespace))
            .flatten()
            .into_iter()
            .flatten();
        self.cluster_bindings
            .iter()
            .chain(namespaced)
            .filter(|b| b.applies_to(u))
            .filter_map(|b| self.role_ref_error(b))
            .collect()
    }

    /// Visit the rules that apply to `u` in `namespace` ("" = cluster-wide only) until `f` says stop;
    /// `f` also gets the binding's name and kind (for SelfSubjectRulesReview and reasons).
    fn visit(&self, u: &User, namespace: &str, mut f: impl FnMut(&Rule) -> bool) -> bool {
        for b in self.cluster_bindings.iter().filter(|b| b.applies_to(u)) {
            if self.role_rules(b).iter().any(&mut f) {
                return true;
            }
        }
        if !namespace.is_empty() {
            if let Some(bs) = self.role_bindings.get(namespace) {
                for b in bs.iter().filter(|b| b.applies_to(u)) {
                    if self.role_rules(b).iter().any(&mut f) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Does any rule bound to `u` allow the request?
    pub fn allows(&self, u: &User, a: &Attributes) -> bool {
        self.visit(u, &a.namespace, |r| r.allows(a))
    }

    /// Every rule that applies to `u` in `namespace`.
    pub fn rules_for(&self, u: &User, namespace: &str) -> Vec<Rule> {
        let mut out = Vec::new();
        self.visit(u, namespace, |r| {
            out.push(r.clone());
            false
        });
        out
    }

    /// Names of the binding(s) granting `a` to `u`, as upstream's allow reason.
    pub fn reason(&self, u: &User, a: &Attributes) -> Option<String> {
        let cluster = self
            .cluster_bindings
            .iter()
            .find(|b| b.applies_to(u) && self.role_rules(b).iter().any(|r| r.allows(a)));
        if let Some(b) = cluster {
            return Some(format!(
                "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" to {}",
                b.name,
                b.role_name,
                subject_desc(b, u)
            ));
        }
        let bs = self.role_bindings.get(&a.namespace)?;
        let b = bs
            .iter()
            .find(|b| b.applies_to(u) && self.role_rules(b).iter().any(|r| r.allows(a)))?;
        Some(format!(
            "RBAC: allowed by RoleBinding \"{}/{}\" of {} \"{}\" to {}",
            b.name,
            b.namespace,
            b.role_kind,
            b.role_name,
            subject_desc(b, u)
        ))
    }
}

/// Upstream's `utilerrors.Aggregate` message: one error as itself, several de-duplicated and
/// joined as `[a, b]`, none as "".
pub fn aggregate_errors(errs: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errs {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn subject_desc(b: &Binding, u: &User) -> String {
    b.subjects
        .iter()
        .find(|s| match s.kind.as_str() {
            "User" => s.name == u.name,
            "Group" => u.groups.contains(&s.name),
            _ => true,
        })
        .map(|s| format!("{} \"{}\"", s.kind, s.name))
        .unwrap_or_default()
}

/// Keeps a [`Policy`] until a change under [`PREFIX`] is seen by a watch.
pub struct Authorizer {
    store: Arc<dyn Store>,
    cache: WatchCache<Policy>,
}

impl Authorizer {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Authorizer {
            store,
            cache: WatchCache::new(PREFIX),
        }
    }

    /// Drop the cached policy (after a write of an RBAC object through this server, so the
    /// writer's next request sees it without waiting for the watch).
    pub async fn invalidate(&self) {
        self.cache.invalidate().await;
    }

    /// The current policy: cached until an RBAC object changes.
    pub async fn policy(&self) -> ApiResult<Arc<Policy>> {
        let store = self.store.clone();
        self.cache
            .get(
                &self.store,
                || async move { Policy::load(store.as_ref()).await },
            )
            .await
    }
}

// ---------------------------------------------------------------- escalation prevention

fn user_desc(u: &User) -> String {
    let groups: Vec<String> = u.groups.iter().map(|g| format!("{g:?}")).collect();
    format!("user {:?} (groups=[{}])", u.name, groups.join(" "))
}

fn forbidden_object(def: &ResourceDef, name: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {why}",
        def.qualified()
    ))
    .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
}

/// Refuse a write that grants rules the requester does not hold.
fn confirm_no_escalation(
    policy: &Policy,
    u: &User,
    namespace: &str,
    requested: &[Rule],
    def: &ResourceDef,
    name: &str,
) -> ApiResult<()> {
    let owner = policy.rules_for(u, namespace);
    let missing = uncovered(&owner, requested);
    if missing.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = missing.iter().map(Rule::compact_string).collect();
    Err(forbidden_object(
        def,
        name,
        &format!(
            "{} is attempting to grant RBAC permissions not currently held:\n{}",
            user_desc(u),
            list.join("\n")
        ),
    ))
}

/// Escalation checks for a create or update of an RBAC object (upstream's `escalate` and `bind`
/// verbs bypass them, and `system:masters` is never checked).
pub async fn admit(
    ctx: &Ctx,
    user: Option<&User>,
    t: &ResourceTarget,
    obj: &Value,
) -> ApiResult<()> {
    let Some(u) = user else { return Ok(()) };
    if t.def.group != GROUP || u.groups.iter().any(|g| g == crate::authz::GROUP_MASTERS) {
        return Ok(());
    }
    let name = crate::table::s(&obj["metadata"]["name"]);
    let namespace = if t.def.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let (policy, _) = Policy::load(ctx.store.as_ref()).await?;
    let can = |verb: &str, resource: &str, res_name: &str| {
        policy.allows(
            u,
            &Attributes {
                verb: verb.into(),
                resource_request: true,
                namespace: namespace.clone(),
                group: GROUP.into(),
                resource: resource.into(),
                name: res_name.into(),
                ..Default::default()
            },
        )
    };
    match t.def.kind {
        "Role" | "ClusterRole" => {
            if can("escalate", t.def.plural, &name) {
                return Ok(());
            }
            confirm_no_escalation(&policy, u, &namespace, &rules_of(obj), t.def, &name)
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let kind = crate::table::s(&obj["roleRef"]["kind"]);
            let role = crate::table::s(&obj["roleRef"]["name"]);
            let role_resource = if kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if can("bind", role_resource, &role) {
                return Ok(());
            }
            let stored = if kind == "Role" {
                policy.roles.get(&(namespace.clone(), role.clone()))
            } else {
                policy.cluster_roles.get(&role)
            };
            let Some(rules) = stored else {
                let def = if kind == "Role" {
                    &resources::ROLES
                } else {
                    &resources::CLUSTER_ROLES
                };
                return Err(forbidden_object(
                    t.def,
                    &name,
                    &format!("{} {role:?} not found", def.qualified()),
                ));
            };
            confirm_no_escalation(&policy, u, &namespace, rules, t.def, &name)
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- bootstrap policy

fn rule(groups: &[&str], res: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": res, "verbs": verbs})
}

fn url_rule(urls: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn meta(name: &str, labels: Value) -> Value {
    let mut l = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let (Some(m), Some(extra)) = (l.as_object_mut(), labels.as_object()) {
        m.extend(extra.clone());
    }
    json!({"name": name, "labels": l, "annotations": {AUTOUPDATE: "true"}})
}

fn cluster_role(name: &str, labels: Value, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": meta(name, labels), "rules": rules})
}

fn aggregated(name: &str, labels: Value, to: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": meta(name, labels),
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}]},
        "rules": []})
}

/// Subresources a tenant may read but not write: a Service's load-balancer status is the
/// master's (ServiceLB), since the node proxies forward the addresses it lists (as upstream's
/// `edit`/`admin` roles, which only read `services/status`).
pub const USER_READ_ONLY_SUBRESOURCES: &[&str] = &["services/status", "ingresses/status"];

/// The rules of [`USER_NAMESPACE_ROLE`]: the REST verbs (not `bind`, `escalate` or
/// `impersonate`) on everything namespaced that is served, except placing
/// pods (`pods/binding`, the scheduler's), writing ResourceQuotas (the namespace's limits) and
/// writing [`USER_READ_ONLY_SUBRESOURCES`];
/// and reading the Namespace object itself (a RoleBinding grants it only for its own namespace).
pub fn user_namespace_rules() -> Vec<Value> {
    let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut read_only: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for d in resources::RESOURCES.iter().filter(|d| d.namespaced) {
        let target = if d.plural == "resourcequotas" || crate::registry::usage::is_usage(d) {
            &mut read_only
        } else {
            &mut by_group
        };
        let e = target.entry(d.group).or_default();
        if !e.contains(&d.plural.to_string()) {
            e.push(d.plural.to_string());
        }
        let mut status_reads = Vec::new();
        for s in d.discovery_entries().iter().skip(1) {
            let n = crate::table::s(&s["name"]);
            if USER_READ_ONLY_SUBRESOURCES.contains(&n.as_str()) {
                status_reads.push(n);
            } else if n != "pods/binding" && !e.contains(&n) {
                e.push(n);
            }
        }
        if !status_reads.is_empty() {
            let ro = read_only.entry(d.group).or_default();
            for n in status_reads {
                if !ro.contains(&n) {
                    ro.push(n);
                }
            }
        }
    }
    let mut rules: Vec<Value> = by_group
        .iter()
        .map(|(g, r)| json!({"apiGroups": [g], "resources": r, "verbs": resources::VERBS}))
        .collect();
    rules.extend(
        read_only
            .iter()
            .map(|(g, r)| json!({"apiGroups": [g], "resources": r, "verbs": READ})),
    );
    rules.push(rule(&[""], &["namespaces"], &["get"]));
    rules
}

/// The default ClusterRoles (upstream's bootstrap policy plus the user-tier role).
pub fn bootstrap_cluster_roles() -> Vec<Value> {
    let agg = |to: &str| json!({format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"});
    vec![
        cluster_role(
            "cluster-admin",
            json!({}),
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            json!({}),
            vec![url_rule(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        // Upstream's metrics reader: Prometheus and the like, bound to the group
        // `system:monitoring` (and to any ServiceAccount an admin binds it to).
        cluster_role(
            MONITORING_ROLE,
            json!({}),
            vec![url_rule(
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/*",
                    "/readyz",
                    "/readyz/*",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            json!({}),
            vec![url_rule(
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                &["get"],
            )],
        ),
        cluster_role(
            "system:basic-user",
            json!({}),
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        aggregated("admin", json!({}), "admin"),
        aggregated("edit", agg("admin"), "edit"),
        aggregated("view", agg("edit"), "view"),
        cluster_role(
            "system:aggregate-to-admin",
            agg("admin"),
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                    &["create"],
                ),
                rule(
                    &[GROUP],
                    &["rolebindings", "roles"],
                    &[
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                ),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            agg("edit"),
            vec![
                rule(
                    &[""],
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                    READ,
                ),
                rule(&[""], &["serviceaccounts"], &["impersonate"]),
                rule(
                    &[""],
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                    ],
                    WRITE,
                ),
                rule(&[""], &["pods/eviction"], &["create"]),
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                    WRITE,
                ),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
                rule(
                    &["apps"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                    WRITE,
                ),
                rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
                rule(&["batch"], &["cronjobs", "jobs"], WRITE),
                rule(&["policy"], &["poddisruptionbudgets"], WRITE),
                rule(
                    &["networking.k8s.io"],
                    &["ingresses", "networkpolicies"],
                    WRITE,
                ),
                rule(&["coordination.k8s.io"], &["leases"], WRITE),
            ],
        ),
        cluster_role(
            "system:aggregate-to-view",
            agg("view"),
            vec![
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                    READ,
                ),
                rule(
                    &[""],
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                    READ,
                ),
                rule(&[""], &["namespaces"], READ),
                rule(&["discovery.k8s.io"], &["endpointslices"], READ),
                rule(
                    &["apps"],
                    &[
                        "controllerrevisions",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                    READ,
                ),
                rule(
                    &["autoscaling"],
                    &[
                        "horizontalpodautoscalers",
                        "horizontalpodautoscalers/status",
                    ],
                    READ,
                ),
                rule(
                    &["batch"],
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                    READ,
                ),
                rule(
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                    READ,
                ),
                rule(
                    &["networking.k8s.io"],
                    &["ingresses", "ingresses/status", "networkpolicies"],
                    READ,
                ),
                rule(&["coordination.k8s.io"], &["leases"], READ),
            ],
        ),
        cluster_role(
            STORAGE_CLASS_READER_ROLE,
            json!({}),
            vec![rule(&["storage.k8s.io"], &["storageclasses"], READ)],
        ),
        cluster_role(
            INGRESS_CLASS_READER_ROLE,
            json!({}),
            vec![rule(&["networking.k8s.io"], &["ingressclasses"], READ)],
        ),
        cluster_role(
            USER_NAMESPACE_BASE_ROLE,
            json!({AGGREGATE_TO_NAMESPACE_OWNER: "true"}),
            user_namespace_rules(),
        ),
        user_namespace_role(),
    ]
}

/// [`USER_NAMESPACE_ROLE`]: aggregated (by the ClusterRole aggregation controller) from its base
/// role and from the ClusterRoles an admin labels `rbac.authorization.k8s.io/aggregate-to-admin`,
/// `-edit` or `-view` (as a CRD's author ships them, so that users may use its custom resources
/// in their namespaces). The bootstrap roles carrying those labels (upstream's
/// `system:aggregate-to-*`, `edit`, `view`) are left out: they would add what the user tier is
/// deliberately denied (impersonating service accounts). Created with its base rules, which the
/// aggregation keeps.
pub fn user_namespace_role() -> Value {
    let mut selectors = vec![json!({"matchLabels": {AGGREGATE_TO_NAMESPACE_OWNER: "true"}})];
    for to in ["admin", "edit", "view"] {
        selectors.push(json!({
            "matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"},
            "matchExpressions": [{"key": "kubernetes.io/bootstrapping", "operator": "DoesNotExist"}],
        }));
    }
    let mut role = cluster_role(USER_NAMESPACE_ROLE, json!({}), user_namespace_rules());
    role["aggregationRule"] = json!({ "clusterRoleSelectors": selectors });
    role
}

fn cluster_binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": GROUP, "name": g}))
        .collect();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": meta(name, json!({})),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects})
}

/// The default ClusterRoleBindings.
pub fn bootstrap_cluster_bindings() -> Vec<Value> {
    vec![
        cluster_binding(
            "cluster-admin",
            "cluster-admin",
            &[crate::authz::GROUP_MASTERS],
        ),
        cluster_binding(
            "system:discovery",
            "system:discovery",
            &[GROUP_AUTHENTICATED],
        ),
        cluster_binding(
            "system:basic-user",
            "system:basic-user",
            &[GROUP_AUTHENTICATED],
        ),
        cluster_binding(MONITORING_ROLE, MONITORING_ROLE, &[MONITORING_ROLE]),
        cluster_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[GROUP_AUTHENTICATED, GROUP_UNAUTHENTICATED],
        ),
        cluster_binding(
            STORAGE_CLASS_READER_ROLE,
            STORAGE_CLASS_READER_ROLE,
            &[crate::authz::GROUP_USERS],
        ),
        cluster_binding(
            INGRESS_CLASS_READER_ROLE,
            INGRESS_CLASS_READER_ROLE,
            &[GROUP_AUTHENTICATED],
        ),
    ]
}

/// The RoleBinding giving a user-tier namespace's owner group ([`crate::authz::NAMESPACE_GROUP_PREFIX`]
/// + namespace) the [`USER_NAMESPACE_ROLE`] inside it. An admin may change or remove it.
pub fn user_namespace_binding(ns: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": USER_NAMESPACE_BINDING, "namespace": ns,
            "labels": {"k3s-daas.io/tier": "user"}},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": USER_NAMESPACE_ROLE},
        "subjects": [{"kind": "Group", "apiGroup": GROUP,
            "name": format!("{}{ns}", crate::authz::NAMESPACE_GROUP_PREFIX)}]})
}

async fn create_object(ctx: &Ctx, def: &'static ResourceDef, obj: &Value) -> ApiResult<()> {
    let t = ResourceTarget {
        def,
        namespace: obj["metadata"]["namespace"].as_str().map(String::from),
        name: None,
        sub: None,
    };
    let mut o = obj.clone();
    let (o, _) = handlers::prepare_create(ctx, &t, &mut o, &HashMap::new()).await?;
    match handlers::store_create(ctx, def, &o).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Upstream's reconciliation of the bootstrap policy: missing objects are created; an existing
/// one whose `autoupdate` annotation is not "false" gets the rules or subjects it lacks (an admin
/// may add to them, or opt out of reconciliation).
pub async fn ensure_bootstrap_policy(ctx: &Ctx) -> ApiResult<()> {
    for (def, objs, field) in [
        (
            &resources::CLUSTER_ROLES,
            bootstrap_cluster_roles(),
            "rules",
        ),
        (
            &resources::CLUSTER_ROLE_BINDINGS,
            bootstrap_cluster_bindings(),
            "subjects",
        ),
    ] {
        for want in objs {
            let name = crate::table::s(&want["metadata"]["name"]);
            let Some(kv) = ctx.store.get(&def.key(None, &name)).await? else {
                create_object(ctx, def, &want).await?;
                continue;
            };
            let mut have = decode_kv(&kv)?;
            if have["metadata"]["annotations"][AUTOUPDATE] == "false" {
                continue;
            }
            if let Some(want_sel) = want["aggregationRule"]["clusterRoleSelectors"].as_array() {
                // An aggregated role's rules are the aggregation's; its selectors get the ones
                // it lacks (a role made before it aggregated gets its aggregationRule).
                let have_sel = have["aggregationRule"]["clusterRoleSelectors"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let missing: Vec<Value> = want_sel
                    .iter()
                    .filter(|s| !have_sel.contains(s))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    let mut all = have_sel;
                    all.extend(missing);
                    have["aggregationRule"] = json!({ "clusterRoleSelectors": all });
                    let bytes = handlers::encode(&have)?;
                    let _ = ctx.store.update(&kv.key, &bytes, kv.mod_revision).await?;
                }
                continue;
            }
            let current = have[field].as_array().cloned().unwrap_or_default();
            let missing: Vec<Value> = want[field]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|w| {
                    if field == "rules" {
                        let w = Rule::from_json(w);
                        !current.iter().any(|c| Rule::from_json(c).covers(&w))
                    } else {
                        !current
                            .iter()
                            .any(|c| c["kind"] == w["kind"] && c["name"] == w["name"])
                    }
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            let mut all = current;
            all.extend(missing);
            have[field] = Value::Array(all);
            let bytes = handlers::encode(&have)?;
            let _ = ctx.store.update(&kv.key, &bytes, kv.mod_revision).await?;
        }
    }
    for (ns, role) in bootstrap_roles() {
        let name = crate::table::s(&role["metadata"]["name"]);
        let key = resources::ROLES.key(Some(ns), &name);
        if ctx.store.get(&key).await?.is_none() {
            create_object(ctx, &resources::ROLES, &role).await?;
        }
    }
    Ok(())
}

/// The default namespaced Roles: (namespace, Role).
pub fn bootstrap_roles() -> Vec<(&'static str, Value)> {
    let mut m = meta("extension-apiserver-authentication-reader", json!({}));
    m["namespace"] = json!("kube-system");
    vec![(
        "kube-system",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": m,
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                "resourceNames": ["extension-apiserver-authentication"], "verbs": READ}]}),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    fn res(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            namespace: "ns".into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    #[test]
    fn rule_matching() {
        let pods = r(json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(pods.allows(&res("get", "", "pods", "", "p")));
        assert!(!pods.allows(&res("delete", "", "pods", "", "p")));
        assert!(!pods.allows(&res("get", "apps", "pods", "", "p")));
        // A resource does not cover its subresources.
        assert!(!pods.allows(&res("get", "", "pods", "log", "p")));
        let sub =
            r(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["pods/log", "*/status"]}));
        assert!(sub.allows(&res("get", "", "pods", "log", "")));
        assert!(sub.allows(&res("update", "apps", "deployments", "status", "d")));
        assert!(!sub.allows(&res("update", "apps", "deployments", "", "d")));
        let star = r(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(star.allows(&res("get", "x.io", "things", "sub", "")));
        let named = r(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]}),
        );
        assert!(named.allows(&res("get", "", "configmaps", "", "a")));
        assert!(!named.allows(&res("get", "", "configmaps", "", "b")));
        assert!(!named.allows(&res("get", "", "configmaps", "", "")));
        let urls = r(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        assert!(urls.allows(&Attributes::non_resource("get", "/healthz")));
        assert!(urls.allows(&Attributes::non_resource("get", "/apis/apps/v1")));
        assert!(!urls.allows(&Attributes::non_resource("get", "/api")));
        assert!(!urls.allows(&Attributes::non_resource("post", "/healthz")));
        // Resource rules never match non-resource requests and vice versa.
        assert!(!star.allows(&Attributes::non_resource("get", "/api")));
        assert!(!urls.allows(&res("get", "", "pods", "", "")));
    }

    #[test]
    fn coverage_and_breakdown() {
        let owner = vec![
            r(
                json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}),
            ),
            r(
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"]}),
            ),
            r(json!({"verbs": ["get"], "nonResourceURLs": ["/logs/*"]})),
        ];
        let ok = vec![
            r(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "pods/status"]})),
            r(
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"]}),
            ),
            r(json!({"verbs": ["get"], "nonResourceURLs": ["/logs/a"]})),
        ];
        assert!(uncovered(&owner, &ok).is_empty());
        let too_much = vec![r(
            json!({"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "secrets"]}),
        )];
        let missing: Vec<String> = uncovered(&owner, &too_much)
            .iter()
            .map(Rule::compact_string)
            .collect();
        assert_eq!(
            missing,
            vec![
                "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}",
                "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}",
                "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"delete\"]}",
            ]
        );
        let star = vec![r(
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
        )];
        assert!(uncovered(&star, &too_much).is_empty());
        // A wildcard request is only covered by a wildcard.
        assert_eq!(uncovered(&owner, &star).len(), 1);
    }

    #[test]
    fn unresolvable_role_references_are_reported_for_applicable_bindings() {
        let objs = vec![
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "gone"},
                "roleRef": {"kind": "ClusterRole", "name": "missing"},
                "subjects": [{"kind": "User", "name": "erin"}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "other"},
                "roleRef": {"kind": "ClusterRole", "name": "missing-too"},
                "subjects": [{"kind": "User", "name": "frank"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "a"},
                "roleRef": {"kind": "Role", "name": "nope"},
                "subjects": [{"kind": "User", "name": "erin"}]}),
        ];
        let p = Policy::from_objects(&objs);
        let erin = User {
            name: "erin".into(),
            groups: vec![],
            ..Default::default()
        };
        assert_eq!(
            p.resolution_errors(&erin, ""),
            vec!["clusterrole.rbac.authorization.k8s.io \"missing\" not found"]
        );
        let errs = p.resolution_errors(&erin, "a");
        assert_eq!(
            aggregate_errors(&errs),
            "[clusterrole.rbac.authorization.k8s.io \"missing\" not found, role.rbac.authorization.k8s.io \"nope\" not found]"
        );
        assert!(p.resolution_errors(&erin, "b").len() == 1);
        assert_eq!(aggregate_errors(&[]), "");
        assert_eq!(aggregate_errors(&["x".into(), "x".into()]), "x");
    }

    #[test]
    fn bindings_apply_by_subject_and_namespace() {
        let objs = vec![
            json!({"kind": "Role", "metadata": {"name": "reader", "namespace": "a"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}),
            json!({"kind": "ClusterRole", "metadata": {"name": "cm"},
                "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "a"},
                "roleRef": {"kind": "Role", "name": "reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "rb2", "namespace": "b"},
                "roleRef": {"kind": "ClusterRole", "name": "cm"},
                "subjects": [{"kind": "Group", "name": "team"}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
                "roleRef": {"kind": "ClusterRole", "name": "cm"},
                "subjects": [{"kind": "User", "name": "carol"}]}),
        ];
        let p = Policy::from_objects(&objs);
        let sa = User {
            name: "system:serviceaccount:a:sa".into(),
            groups: vec![],
            ..Default::default()
        };
        let team = User {
            name: "dave".into(),
            groups: vec!["team".into()],
            ..Default::default()
        };
        let carol = User {
            name: "carol".into(),
            groups: vec![],
            ..Default::default()
        };
        let mut a = res("get", "", "pods", "", "");
        a.namespace = "a".into();
        assert!(p.allows(&sa, &a));
        a.namespace = "b".into();
        assert!(!p.allows(&sa, &a));
        let mut l = res("list", "", "configmaps", "", "");
        l.namespace = "b".into();
        assert!(p.allows(&team, &l));
        assert_eq!(
            p.reason(&team, &l).unwrap(),
            "RBAC: allowed by RoleBinding \"rb2/b\" of ClusterRole \"cm\" to Group \"team\""
        );
        l.namespace = "a".into();
        assert!(!p.allows(&team, &l));
        l.namespace = String::new();
        assert!(p.allows(&carol, &l));
        assert_eq!(p.rules_for(&carol, "zzz").len(), 1);
    }

    #[test]
    fn user_namespace_role_forbids_binding() {
        let rules: Vec<Rule> = user_namespace_rules().iter().map(Rule::from_json).collect();
        let allowed = |a: &Attributes| rules.iter().any(|r| r.allows(a));
        assert!(allowed(&res("create", "", "pods", "", "")));
        assert!(allowed(&res("update", "", "pods", "status", "p")));
        assert!(allowed(&res("create", GROUP, "rolebindings", "", "")));
        assert!(!allowed(&res("create", "", "pods", "binding", "p")));
        assert!(!allowed(&res("update", "", "namespaces", "", "ns")));
        assert!(allowed(&res("get", "", "namespaces", "", "ns")));
        // No way around the escalation checks.
        assert!(!allowed(&res("escalate", GROUP, "roles", "", "r")));
        assert!(!allowed(&res(
            "bind",
            GROUP,
            "clusterroles",
            "",
            "cluster-admin"
        )));
    }
}
