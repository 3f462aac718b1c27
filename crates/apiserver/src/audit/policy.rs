//! audit.k8s.io/v1 `Policy`: which requests are logged and at which level (upstream's
//! `staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go` semantics: the first matching rule
//! wins; no match means `None`).

use serde::Deserialize;

use super::{Level, Stage};
use crate::server::User;

/// A policy file that cannot be used; the master refuses to start with it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("audit policy: cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("audit policy {path}: {source}")]
    Yaml {
        path: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("audit policy {path}: apiVersion {api_version:?} kind {kind:?} is not audit.k8s.io/v1 Policy")]
    Kind {
        path: String,
        api_version: String,
        kind: String,
    },
    #[error("audit policy {path}: rule {rule}: {reason}")]
    Rule {
        path: String,
        rule: usize,
        reason: String,
    },
    #[error("audit policy {path}: a policy needs at least one rule")]
    NoRules { path: String },
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupResources {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default, rename = "resourceNames")]
    pub resource_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    pub level: Level,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default, rename = "userGroups")]
    pub user_groups: Vec<String>,
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    #[serde(default, rename = "omitStages")]
    pub omit_stages: Vec<Stage>,
    /// Accepted for compatibility; managed fields are never logged (no response bodies).
    #[serde(default, rename = "omitManagedFields")]
    pub omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Option<serde_yaml::Value>,
    #[serde(default)]
    rules: Vec<PolicyRule>,
    #[serde(default, rename = "omitStages")]
    omit_stages: Vec<Stage>,
    #[serde(default, rename = "omitManagedFields")]
    omit_managed_fields: Option<bool>,
}

/// What a policy is asked about one request.
#[derive(Debug, Clone, Default)]
pub struct Attributes<'a> {
    /// The authenticated user (before impersonation); None for none.
    pub user: Option<&'a User>,
    pub verb: &'a str,
    /// Resource requests: (apiGroup, resource, subresource, namespace, name); None: a
    /// non-resource request.
    pub resource: Option<ResourceAttrs<'a>>,
    pub path: &'a str,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceAttrs<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The level and omitted stages for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub rules: Vec<PolicyRule>,
    pub omit_stages: Vec<Stage>,
}

/// The built-in policy (no `--audit-policy-file`): authentication failures (evaluated as the
/// anonymous user), every request on a streaming subresource (exec/attach/portforward/proxy, a
/// `get` over WebSocket) and every mutating request at Metadata; reads at None. Secrets,
/// ConfigMaps and TokenReviews stay at Metadata (their bodies carry secrets).
pub const DEFAULT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["system:unauthenticated"]
- level: Metadata
  resources:
  - group: ""
    resources: ["pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy", "nodes/proxy"]
- level: None
  verbs: ["get", "list", "watch"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps"]
  - group: "authentication.k8s.io"
    resources: ["tokenreviews"]
- level: Metadata
"#;

impl Policy {
    /// The built-in default ([`DEFAULT_POLICY`]).
    pub fn default_policy() -> Policy {
        match Policy::parse("<built-in>", DEFAULT_POLICY) {
            Ok(p) => p,
            // The constant is tested below; a broken build-in falls back to "log everything".
            Err(_) => Policy {
                rules: vec![PolicyRule::catch_all(Level::Metadata)],
                omit_stages: Vec::new(),
            },
        }
    }

    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Policy::parse(&path.display().to_string(), &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Policy, PolicyError> {
        let f: PolicyFile = serde_yaml::from_str(text).map_err(|source| PolicyError::Yaml {
            path: path.into(),
            source,
        })?;
        let _ = (&f.metadata, f.omit_managed_fields);
        if !matches!(
            f.api_version.as_str(),
            "audit.k8s.io/v1" | "audit.k8s.io/v1beta1"
        ) || f.kind != "Policy"
        {
            return Err(PolicyError::Kind {
                path: path.into(),
                api_version: f.api_version,
                kind: f.kind,
            });
        }
        if f.rules.is_empty() {
            return Err(PolicyError::NoRules { path: path.into() });
        }
        for (i, r) in f.rules.iter().enumerate() {
            let bad = |reason: &str| PolicyError::Rule {
                path: path.into(),
                rule: i + 1,
                reason: reason.into(),
            };
            if !r.non_resource_urls.is_empty()
                && (!r.resources.is_empty() || !r.namespaces.is_empty())
            {
                return Err(bad(
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            for u in &r.non_resource_urls {
                if !u.starts_with('/') && u != "*" {
                    return Err(bad(&format!(
                        "nonResourceURLs {u:?}: must start with '/' or be '*'"
                    )));
                }
                if u.len() > 1 && u[..u.len() - 1].contains('*') {
                    return Err(bad(&format!(
                        "nonResourceURLs {u:?}: '*' is only allowed at the end"
                    )));
                }
            }
            for g in &r.resources {
                for res in &g.resources {
                    if res.is_empty() || res.split('/').count() > 2 {
                        return Err(bad(&format!(
                            "resources {res:?}: not resource[/subresource]"
                        )));
                    }
                }
                if !g.resource_names.is_empty()
                    && g.resources.iter().any(|r| r == "*" || r.ends_with("/*"))
                {
                    return Err(bad("resourceNames cannot be combined with '*' resources"));
                }
            }
        }
        Ok(Policy {
            rules: f.rules,
            omit_stages: f.omit_stages,
        })
    }

    /// The first matching rule's level and omitted stages (with the policy's own); `None` level
    /// when no rule matches.
    pub fn evaluate(&self, a: &Attributes<'_>) -> Decision {
        for r in &self.rules {
            if r.matches(a) {
                let mut omit = self.omit_stages.clone();
                omit.extend(r.omit_stages.iter().copied());
                return Decision {
                    level: r.level,
                    omit_stages: omit,
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: self.omit_stages.clone(),
        }
    }

    /// Whether some rule logs request bodies (so the server keeps a copy of them).
    pub fn wants_bodies(&self) -> bool {
        self.rules.iter().any(|r| r.level >= Level::Request)
    }
}

impl PolicyRule {
    fn catch_all(level: Level) -> PolicyRule {
        PolicyRule {
            level,
            users: vec![],
            user_groups: vec![],
            verbs: vec![],
            resources: vec![],
            namespaces: vec![],
            non_resource_urls: vec![],
            omit_stages: vec![],
            omit_managed_fields: None,
        }
    }

    pub fn matches(&self, a: &Attributes<'_>) -> bool {
        if !self.users.is_empty() && !a.user.is_some_and(|u| self.users.contains(&u.name)) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !a
                .user
                .is_some_and(|u| u.groups.iter().any(|g| self.user_groups.contains(g)))
        {
            return false;
        }
        if !self.verbs.is_empty() && !self.verbs.iter().any(|v| v == a.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(a);
        }
        if !self.non_resource_urls.is_empty() {
            return a.resource.is_none()
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(a.path, spec));
        }
        true
    }

    fn matches_resource(&self, a: &Attributes<'_>) -> bool {
        let Some(r) = a.resource else {
            return false;
        };
        // Cluster-scoped resources match the empty namespace.
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|n| n == r.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if r.subresource.is_empty() {
            r.resource.to_string()
        } else {
            format!("{}/{}", r.resource, r.subresource)
        };
        for gr in self.resources.iter().filter(|g| g.group == r.group) {
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !gr.resource_names.iter().any(|n| n == r.name) {
                continue;
            }
            for res in &gr.resources {
                if *res == combined || res == "*" {
                    return true;
                }
                if let Some(sub) = res.strip_prefix("*/") {
                    if !r.subresource.is_empty() && sub == r.subresource {
                        return true;
                    }
                }
                if let Some(resource) = res.strip_suffix("/*") {
                    if resource == r.resource {
                        return true;
                    }
                }
            }
        }
        false
    }
}

fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || spec
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User::new(name, groups.iter().map(|g| g.to_string()).collect())
    }

    fn res<'a>(
        group: &'a str,
        resource: &'a str,
        sub: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> Option<ResourceAttrs<'a>> {
        Some(ResourceAttrs {
            group,
            resource,
            subresource: sub,
            namespace: ns,
            name,
        })
    }

    fn level(p: &Policy, a: &Attributes<'_>) -> Level {
        p.evaluate(a).level
    }

    #[test]
    fn default_policy_logs_writes_and_auth_failures_not_reads() {
        let p = Policy::parse("default", DEFAULT_POLICY).unwrap();
        let alice = user("alice", &["system:authenticated"]);
        let anon = user("system:anonymous", &["system:unauthenticated"]);
        let pods = res("", "pods", "", "default", "web");
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            let a = Attributes {
                user: Some(&alice),
                verb,
                resource: pods,
                path: "/api/v1/namespaces/default/pods/web",
            };
            assert_eq!(level(&p, &a), Level::Metadata, "{verb}");
        }
        for verb in ["get", "list", "watch"] {
            let a = Attributes {
                user: Some(&alice),
                verb,
                resource: pods,
                path: "/api/v1/namespaces/default/pods",
            };
            assert_eq!(level(&p, &a), Level::None, "{verb}");
        }
        // Authentication failures, reads included.
        let a = Attributes {
            user: Some(&anon),
            verb: "get",
            resource: pods,
            path: "/api/v1/namespaces/default/pods",
        };
        assert_eq!(level(&p, &a), Level::Metadata);
        // exec over WebSocket is a `get` ... no: a create on pods/exec; both logged.
        for verb in ["get", "create"] {
            let a = Attributes {
                user: Some(&alice),
                verb,
                resource: res("", "pods", "exec", "default", "web"),
                path: "/api/v1/namespaces/default/pods/web/exec",
            };
            assert_eq!(level(&p, &a), Level::Metadata);
        }
        // Secrets never above Metadata, and nothing is at Request in the default.
        let a = Attributes {
            user: Some(&alice),
            verb: "create",
            resource: res("", "secrets", "", "default", ""),
            path: "/api/v1/namespaces/default/secrets",
        };
        assert_eq!(level(&p, &a), Level::Metadata);
        assert!(!p.wants_bodies());
        assert_eq!(p.evaluate(&a).omit_stages, vec![Stage::RequestReceived]);
        // Non-resource reads at None, writes at Metadata.
        let a = Attributes {
            user: Some(&alice),
            verb: "get",
            resource: None,
            path: "/openapi/v2",
        };
        assert_eq!(level(&p, &a), Level::None);
        assert_eq!(Policy::default_policy().rules.len(), 5);
    }

    const CUSTOM: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["quiet"]
- level: None
  userGroups: ["system:nodes"]
  verbs: ["update", "patch"]
- level: Request
  resources:
  - group: ""
    resources: ["pods/log", "configmaps"]
  namespaces: ["team-a"]
- level: RequestResponse
  resources:
  - group: "apps"
    resources: ["deployments"]
    resourceNames: ["web"]
- level: Metadata
  resources:
  - group: ""
    resources: ["*/status"]
  omitStages: [ResponseComplete]
- level: Metadata
  resources:
  - group: "batch"
    resources: ["jobs/*"]
- level: Metadata
  nonResourceURLs: ["/healthz*", "/version"]
- level: None
"#;

    #[test]
    fn each_rule_field_matches_first_rule_wins() {
        let p = Policy::parse("custom", CUSTOM).unwrap();
        assert!(p.wants_bodies());
        let quiet = user("quiet", &["system:masters"]);
        let alice = user("alice", &["team"]);
        let node = user("system:node:n1", &["system:nodes"]);
        let at = |u: &User,
                  verb: &'static str,
                  r: Option<ResourceAttrs<'static>>,
                  path: &'static str| {
            let a = Attributes {
                user: Some(u),
                verb,
                resource: r,
                path,
            };
            p.evaluate(&a)
        };
        // users: the first rule wins even where a later one would log at Request.
        assert_eq!(
            at(
                &quiet,
                "create",
                res("", "configmaps", "", "team-a", "x"),
                "/"
            )
            .level,
            Level::None
        );
        assert_eq!(
            at(
                &alice,
                "create",
                res("", "configmaps", "", "team-a", "x"),
                "/"
            )
            .level,
            Level::Request
        );
        // namespaces: another namespace does not match the Request rule.
        assert_eq!(
            at(
                &alice,
                "create",
                res("", "configmaps", "", "team-b", "x"),
                "/"
            )
            .level,
            Level::None
        );
        // userGroups + verbs.
        assert_eq!(
            at(
                &node,
                "patch",
                res("", "pods", "status", "team-a", "p"),
                "/"
            )
            .level,
            Level::None
        );
        let d = at(&node, "get", res("", "pods", "status", "team-a", "p"), "/");
        assert_eq!(d.level, Level::Metadata);
        assert_eq!(
            d.omit_stages,
            vec![Stage::RequestReceived, Stage::ResponseComplete]
        );
        // The subresource form `pods/log`, and that `pods` alone does not match it.
        assert_eq!(
            at(&alice, "get", res("", "pods", "log", "team-a", "p"), "/").level,
            Level::Request
        );
        assert_eq!(
            at(&alice, "get", res("", "pods", "", "team-a", "p"), "/").level,
            Level::None
        );
        // resourceNames and group.
        assert_eq!(
            at(
                &alice,
                "update",
                res("apps", "deployments", "", "x", "web"),
                "/"
            )
            .level,
            Level::RequestResponse
        );
        assert_eq!(
            at(
                &alice,
                "update",
                res("apps", "deployments", "", "x", "db"),
                "/"
            )
            .level,
            Level::None
        );
        assert_eq!(
            at(
                &alice,
                "update",
                res("", "deployments", "", "x", "web"),
                "/"
            )
            .level,
            Level::None
        );
        // `resource/*` matches the resource and each subresource.
        assert_eq!(
            at(&alice, "get", res("batch", "jobs", "status", "x", "j"), "/").level,
            Level::Metadata
        );
        // nonResourceURLs with a `*` suffix; never for resource requests.
        assert_eq!(
            at(&alice, "get", None, "/healthz/etcd").level,
            Level::Metadata
        );
        assert_eq!(at(&alice, "get", None, "/version").level, Level::Metadata);
        assert_eq!(at(&alice, "get", None, "/versions").level, Level::None);
        // No user (an unauthenticated request) never matches users/userGroups rules.
        let a = Attributes {
            user: None,
            verb: "create",
            resource: res("", "configmaps", "", "team-a", "x"),
            path: "/",
        };
        assert_eq!(p.evaluate(&a).level, Level::Request);
    }

    #[test]
    fn no_rule_matches_means_none() {
        let p = Policy::parse(
            "p",
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verbs: [delete]\n",
        )
        .unwrap();
        let a = Attributes {
            user: None,
            verb: "create",
            resource: None,
            path: "/x",
        };
        assert_eq!(p.evaluate(&a).level, Level::None);
    }

    #[test]
    fn bad_policies_are_clear_errors() {
        let cases = [
            ("kind: Policy\nrules: [{level: None}]\n", "is not audit.k8s.io/v1 Policy"),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n",
                "unknown variant `Loud`",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, user: [a]}]\n",
                "unknown field `user`",
            ),
            ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "at least one rule"),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  nonResourceURLs: [/x]\n  namespaces: [a]\n",
                "rule 1: rules cannot apply to both",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  omitStages: [Later]\n",
                "unknown variant `Later`",
            ),
            (
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  nonResourceURLs: [\"/a*b\"]\n",
                "only allowed at the end",
            ),
        ];
        for (text, want) in cases {
            let e = Policy::parse("p.yaml", text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("p.yaml"), "{e}");
        }
    }
}
