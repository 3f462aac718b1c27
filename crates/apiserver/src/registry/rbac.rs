//! `rbac.authorization.k8s.io/v1`: Role, ClusterRole, RoleBinding, ClusterRoleBinding
//! (pkg/registry/rbac/*, pkg/apis/rbac/validation, the v1 defaults and the kubectl printers).
//! Escalation prevention runs at admission ([`crate::rbac::admit`]).

use chrono::{DateTime, Utc};
use daas_apimachinery::selector::LabelSelector;
use k8s_openapi::api::rbac::v1 as rbac;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, NameRule, Strategy, AGE, NAME};
use crate::resources::ResourceDef;
use crate::table::s;

pub const GROUP: &str = "rbac.authorization.k8s.io";

#[derive(Debug)]
pub struct RoleStrategy {
    cluster: bool,
}

#[derive(Debug)]
pub struct BindingStrategy {
    cluster: bool,
}

pub const ROLES: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "Role",
    list_kind: "RoleList",
    plural: "roles",
    singular: "role",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &RoleStrategy { cluster: false },
};

pub const CLUSTER_ROLES: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "ClusterRole",
    list_kind: "ClusterRoleList",
    plural: "clusterroles",
    singular: "clusterrole",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &RoleStrategy { cluster: true },
};

pub const ROLE_BINDINGS: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "RoleBinding",
    list_kind: "RoleBindingList",
    plural: "rolebindings",
    singular: "rolebinding",
    namespaced: true,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &BindingStrategy { cluster: false },
};

pub const CLUSTER_ROLE_BINDINGS: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "ClusterRoleBinding",
    list_kind: "ClusterRoleBindingList",
    plural: "clusterrolebindings",
    singular: "clusterrolebinding",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: false,
    strategy: &BindingStrategy { cluster: true },
};

/// Go's `%#v` of a string slice, as field errors show invalid values.
pub(crate) fn go_strings(v: &Value) -> String {
    let items: Vec<String> = strs(v).iter().map(|x| format!("{x:?}")).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// The strings of a JSON array (missing or non-string items are skipped).
pub(crate) fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn not_supported(v: &str, supported: &[&str]) -> String {
    let list: Vec<String> = supported.iter().map(|x| format!("{x:?}")).collect();
    format!(
        "Unsupported value: {v:?}: supported values: {}",
        list.join(", ")
    )
}

/// Upstream `ValidateRBACName` (path segment names): the messages for an invalid name.
pub fn path_segment_errors(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name == "." || name == ".." {
        out.push(format!("may not be '{name}'"));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            out.push(format!("may not contain '{bad}'"));
        }
    }
    out
}

/// Upstream `ValidatePolicyRule`.
fn validate_rule(rule: &Value, namespaced: bool, path: &str, causes: &mut Vec<Cause>) {
    if strs(&rule["verbs"]).is_empty() {
        causes.push((
            format!("{path}.verbs"),
            "Required value: verbs must contain at least one value".into(),
        ));
    }
    let urls = &rule["nonResourceURLs"];
    if !strs(urls).is_empty() {
        if namespaced {
            causes.push((
                format!("{path}.nonResourceURLs"),
                format!(
                    "Invalid value: {}: namespaced rules cannot apply to non-resource URLs",
                    go_strings(urls)
                ),
            ));
        }
        let mixed = ["apiGroups", "resources", "resourceNames"]
            .iter()
            .any(|f| !strs(&rule[*f]).is_empty());
        if mixed {
            causes.push((
                format!("{path}.nonResourceURLs"),
                format!(
                    "Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
                    go_strings(urls)
                ),
            ));
        }
        return;
    }
    if rule["apiGroups"]
        .as_array()
        .map(Vec::is_empty)
        .unwrap_or(true)
    {
        causes.push((
            format!("{path}.apiGroups"),
            "Required value: resource rules must supply at least one api group".into(),
        ));
    }
    if strs(&rule["resources"]).is_empty() {
        causes.push((
            format!("{path}.resources"),
            "Required value: resource rules must supply at least one resource".into(),
        ));
    }
}

/// The `roleRef` as upstream's field errors print it.
fn role_ref_string(r: &Value) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        s(&r["apiGroup"]),
        s(&r["kind"]),
        s(&r["name"])
    )
}

impl Strategy for RoleStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        if self.cluster {
            decode_as::<rbac::ClusterRole>(obj)
        } else {
            decode_as::<rbac::Role>(obj)
        }
    }

    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        if let Some(rules) = obj["rules"].as_array() {
            for (i, r) in rules.iter().enumerate() {
                validate_rule(r, !self.cluster, &format!("rules[{i}]"), causes);
            }
        }
        let agg = &obj["aggregationRule"];
        if self.cluster && agg.is_object() {
            match agg["clusterRoleSelectors"].as_array() {
                Some(sels) if !sels.is_empty() => {
                    for (i, sel) in sels.iter().enumerate() {
                        if let Err(e) = LabelSelector::from_json(sel) {
                            causes.push((
                                format!("aggregationRule.clusterRoleSelectors[{i}]"),
                                format!("Invalid value: {e}"),
                            ));
                        }
                    }
                }
                _ => causes.push((
                    "aggregationRule.clusterRoleSelectors".into(),
                    "Required value: at least one clusterRoleSelector required if aggregationRule is non-nil".into(),
                )),
            }
        }
    }
}

impl Strategy for BindingStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        if self.cluster {
            decode_as::<rbac::ClusterRoleBinding>(obj)
        } else {
            decode_as::<rbac::RoleBinding>(obj)
        }
    }

    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }

    /// v1 defaults: `roleRef.apiGroup` and the API group of User and Group subjects.
    fn defaults(&self, obj: &mut Value) {
        if obj["roleRef"].is_object() && s(&obj["roleRef"]["apiGroup"]).is_empty() {
            obj["roleRef"]["apiGroup"] = json!(GROUP);
        }
        if let Some(subjects) = obj["subjects"].as_array_mut() {
            for sub in subjects {
                if sub.is_object() && s(&sub["apiGroup"]).is_empty() {
                    match sub["kind"].as_str() {
                        Some("User" | "Group") => sub["apiGroup"] = json!(GROUP),
                        Some("ServiceAccount") => sub["apiGroup"] = json!(""),
                        _ => {}
                    }
                }
            }
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let r = &obj["roleRef"];
        let api_group = s(&r["apiGroup"]);
        if api_group != GROUP {
            causes.push((
                "roleRef.apiGroup".into(),
                not_supported(&api_group, &[GROUP]),
            ));
        }
        let kind = s(&r["kind"]);
        let kinds: &[&str] = if self.cluster {
            &["ClusterRole"]
        } else {
            &["Role", "ClusterRole"]
        };
        if !kinds.contains(&kind.as_str()) {
            causes.push(("roleRef.kind".into(), not_supported(&kind, kinds)));
        }
        let name = s(&r["name"]);
        if name.is_empty() {
            causes.push(("roleRef.name".into(), "Required value".into()));
        } else {
            for msg in path_segment_errors(&name) {
                causes.push((
                    "roleRef.name".into(),
                    format!("Invalid value: {name:?}: {msg}"),
                ));
            }
        }
        if let Some(subjects) = obj["subjects"].as_array() {
            for (i, sub) in subjects.iter().enumerate() {
                validate_subject(sub, !self.cluster, &format!("subjects[{i}]"), causes);
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["roleRef"] != new["roleRef"] {
            causes.push((
                "roleRef".into(),
                format!(
                    "Invalid value: {}: cannot change roleRef",
                    role_ref_string(&new["roleRef"])
                ),
            ));
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Role", "", 0),
            AGE,
            ("Users", "", 1),
            ("Groups", "", 1),
            ("ServiceAccounts", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, age) = name_and_age(o, now);
        let subjects = o["subjects"].as_array().cloned().unwrap_or_default();
        let of_kind = |k: &str| -> String {
            subjects
                .iter()
                .filter(|x| x["kind"] == k)
                .map(|x| {
                    if k == "ServiceAccount" {
                        format!("{}/{}", s(&x["namespace"]), s(&x["name"]))
                    } else {
                        s(&x["name"])
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            name,
            json!(format!(
                "{}/{}",
                s(&o["roleRef"]["kind"]),
                s(&o["roleRef"]["name"])
            )),
            age,
            json!(of_kind("User")),
            json!(of_kind("Group")),
            json!(of_kind("ServiceAccount")),
        ]
    }
}

/// Upstream `ValidateRoleBindingSubject`.
fn validate_subject(sub: &Value, namespaced: bool, path: &str, causes: &mut Vec<Cause>) {
    let name = s(&sub["name"]);
    if name.is_empty() {
        causes.push((format!("{path}.name"), "Required value".into()));
    }
    let api_group = s(&sub["apiGroup"]);
    match sub["kind"].as_str().unwrap_or("") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for msg in super::name_errors(NameRule::Subdomain, &name) {
                    causes.push((
                        format!("{path}.name"),
                        format!("Invalid value: {name:?}: {msg}"),
                    ));
                }
            }
            if !api_group.is_empty() {
                causes.push((format!("{path}.apiGroup"), not_supported(&api_group, &[""])));
            }
            if !namespaced && s(&sub["namespace"]).is_empty() {
                causes.push((format!("{path}.namespace"), "Required value".into()));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                causes.push((
                    format!("{path}.apiGroup"),
                    not_supported(&api_group, &[GROUP]),
                ));
            }
        }
        other => causes.push((
            format!("{path}.kind"),
            not_supported(other, &["ServiceAccount", "User", "Group"]),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes(st: &dyn Strategy, obj: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        st.validate(obj, &mut c);
        c
    }

    #[test]
    fn role_rules() {
        let role = RoleStrategy { cluster: false };
        let c = causes(
            &role,
            &json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, {"verbs": []}]}),
        );
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "rules[0].nonResourceURLs",
                "rules[1].verbs",
                "rules[1].apiGroups",
                "rules[1].resources"
            ]
        );
        assert_eq!(
            c[0].1,
            "Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs"
        );
        let cr = RoleStrategy { cluster: true };
        assert!(causes(
            &cr,
            &json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]}]})
        )
        .is_empty());
        let c = causes(
            &cr,
            &json!({"rules": [{"verbs": ["get"], "resources": ["pods"], "nonResourceURLs": ["/x"]}]}),
        );
        assert!(c[0]
            .1
            .ends_with("rules cannot apply to both regular resources and non-resource URLs"));
        let c = causes(&cr, &json!({"aggregationRule": {}}));
        assert_eq!(c[0].0, "aggregationRule.clusterRoleSelectors");
    }

    #[test]
    fn bindings() {
        let rb = BindingStrategy { cluster: false };
        let mut b = json!({"roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "default"},
                         {"kind": "Robot", "name": "r2"}]});
        rb.defaults(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], GROUP);
        assert_eq!(b["subjects"][0]["apiGroup"], GROUP);
        let c = causes(&rb, &b);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].0, "subjects[2].kind");
        assert_eq!(
            c[0].1,
            "Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\""
        );
        // A cluster binding needs the service account's namespace and a ClusterRole.
        let crb = BindingStrategy { cluster: true };
        let mut b2 = json!({"roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}]});
        crb.defaults(&mut b2);
        let c = causes(&crb, &b2);
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, vec!["roleRef.kind", "subjects[0].namespace"]);
        // roleRef is immutable.
        let mut c = Vec::new();
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("edit");
        rb.validate_update(&b, &changed, &mut c);
        assert_eq!(c[0].0, "roleRef");
        assert_eq!(
            c[0].1,
            "Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
        );
        let mut c = Vec::new();
        rb.validate_update(&b, &b, &mut c);
        assert!(c.is_empty());
    }

    #[test]
    fn names_and_cells() {
        assert!(path_segment_errors("system:discovery").is_empty());
        assert_eq!(path_segment_errors("a/b"), vec!["may not contain '/'"]);
        assert_eq!(path_segment_errors(".."), vec!["may not be '..'"]);
        let rb = BindingStrategy { cluster: false };
        let cells = rb.cells(
            &json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"},
                    {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]}),
            Utc::now(),
        );
        assert_eq!(cells[1], "ClusterRole/view");
        assert_eq!(cells[3], "a, b");
        assert_eq!(cells[5], "ns/sa");
    }
}
