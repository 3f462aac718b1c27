//! Create-only virtual resources that answer questions about access (pkg/registry/authorization,
//! pkg/registry/authentication/selfsubjectreview): SubjectAccessReview,
//! SelfSubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview (all
//! `authorization.k8s.io/v1`) and SelfSubjectReview (`authentication.k8s.io/v1`). A POST returns
//! the object with its status filled in; nothing is stored.

use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::{authentication::v1 as authn, authorization::v1 as authz};
use serde_json::{json, Value};

use super::{decode_as, Cause, Strategy};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{json_response, Ctx};
use crate::rbac::{Attributes, Policy, Rule};
use crate::request::ResourceTarget;
use crate::resources::{self, ResourceDef};
use crate::server::User;
use crate::table::s;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Review {
    Subject,
    SelfSubject,
    Local,
    Rules,
    Whoami,
}

#[derive(Debug)]
pub struct ReviewStrategy(Review);

const fn review(
    group: &'static str,
    kind: &'static str,
    list_kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    which: &'static ReviewStrategy,
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        kind,
        list_kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        has_spec: false,
        strategy: which,
    }
}

const AUTHZ: &str = "authorization.k8s.io";

pub const SUBJECT_ACCESS_REVIEWS: ResourceDef = review(
    AUTHZ,
    "SubjectAccessReview",
    "SubjectAccessReviewList",
    "subjectaccessreviews",
    "subjectaccessreview",
    false,
    &ReviewStrategy(Review::Subject),
);
pub const SELF_SUBJECT_ACCESS_REVIEWS: ResourceDef = review(
    AUTHZ,
    "SelfSubjectAccessReview",
    "SelfSubjectAccessReviewList",
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    false,
    &ReviewStrategy(Review::SelfSubject),
);
pub const LOCAL_SUBJECT_ACCESS_REVIEWS: ResourceDef = review(
    AUTHZ,
    "LocalSubjectAccessReview",
    "LocalSubjectAccessReviewList",
    "localsubjectaccessreviews",
    "localsubjectaccessreview",
    true,
    &ReviewStrategy(Review::Local),
);
pub const SELF_SUBJECT_RULES_REVIEWS: ResourceDef = review(
    AUTHZ,
    "SelfSubjectRulesReview",
    "SelfSubjectRulesReviewList",
    "selfsubjectrulesreviews",
    "selfsubjectrulesreview",
    false,
    &ReviewStrategy(Review::Rules),
);
pub const SELF_SUBJECT_REVIEWS: ResourceDef = review(
    "authentication.k8s.io",
    "SelfSubjectReview",
    "SelfSubjectReviewList",
    "selfsubjectreviews",
    "selfsubjectreview",
    false,
    &ReviewStrategy(Review::Whoami),
);

impl Strategy for ReviewStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        match self.0 {
            Review::Subject => decode_as::<authz::SubjectAccessReview>(obj),
            Review::SelfSubject => decode_as::<authz::SelfSubjectAccessReview>(obj),
            Review::Local => decode_as::<authz::LocalSubjectAccessReview>(obj),
            Review::Rules => decode_as::<authz::SelfSubjectRulesReview>(obj),
            Review::Whoami => decode_as::<authn::SelfSubjectReview>(obj),
        }
    }

    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        let (res, non) = (&spec["resourceAttributes"], &spec["nonResourceAttributes"]);
        match self.0 {
            Review::Subject | Review::SelfSubject | Review::Local => {
                if res.is_object() && non.is_object() {
                    causes.push((
                        "spec.nonResourceAttributes".into(),
                        format!(
                            "Invalid value: {}: cannot be specified in combination with resourceAttributes",
                            go_non_resource(non)
                        ),
                    ));
                } else if !res.is_object() && !non.is_object() {
                    causes.push((
                        "spec.resourceAttributes".into(),
                        "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
                    ));
                }
            }
            Review::Rules | Review::Whoami => {}
        }
        if matches!(self.0, Review::Subject | Review::Local)
            && s(&spec["user"]).is_empty()
            && spec["groups"].as_array().map(Vec::is_empty).unwrap_or(true)
        {
            causes.push((
                "spec.user".into(),
                "Invalid value: \"\": at least one of user or group must be specified".into(),
            ));
        }
        if self.0 == Review::Local && non.is_object() {
            causes.push((
                "spec.nonResourceAttributes".into(),
                format!(
                    "Invalid value: {}: disallowed on this kind of request",
                    go_non_resource(non)
                ),
            ));
        }
    }
}

fn go_non_resource(v: &Value) -> String {
    format!(
        "&authorization.NonResourceAttributes{{Path:{:?}, Verb:{:?}}}",
        s(&v["path"]),
        s(&v["verb"])
    )
}

/// Is this resource one of the reviews (served only by [`create`])?
pub fn is_review(def: &ResourceDef) -> bool {
    which(def).is_some()
}

fn which(def: &ResourceDef) -> Option<Review> {
    [
        (&SUBJECT_ACCESS_REVIEWS, Review::Subject),
        (&SELF_SUBJECT_ACCESS_REVIEWS, Review::SelfSubject),
        (&LOCAL_SUBJECT_ACCESS_REVIEWS, Review::Local),
        (&SELF_SUBJECT_RULES_REVIEWS, Review::Rules),
        (&SELF_SUBJECT_REVIEWS, Review::Whoami),
    ]
    .into_iter()
    .find(|(d, _)| d.kind == def.kind && d.group == def.group)
    .map(|(_, r)| r)
}

/// The whole authorizer chain's answer for `attrs` asked by `u`: (allowed, reason). Node
/// identities are decided by the Node authorizer (graph included) as a real request would be.
pub async fn decide(
    ctx: &Ctx,
    policy: &Policy,
    u: &User,
    a: &Attributes,
) -> ApiResult<(bool, String)> {
    if crate::authz::is_master(u) {
        return Ok((true, String::new()));
    }
    if a.resource_request && crate::authz::node_name(u).is_some() {
        if let Some(def) = resources::RESOURCES
            .iter()
            .find(|d| d.group == a.group && d.plural == a.resource)
        {
            let t = ResourceTarget {
                def,
                namespace: (def.namespaced && !a.namespace.is_empty()).then(|| a.namespace.clone()),
                name: (!a.name.is_empty()).then(|| a.name.clone()),
                sub: (!a.subresource.is_empty()).then(|| a.subresource.clone()),
            };
            if crate::authz::node_allows(u, &a.verb, &t) {
                let q = std::collections::HashMap::new();
                return Ok(
                    match crate::nodeauthz::authorize(ctx, u, &a.verb, &t, &q).await {
                        Ok(()) => (true, String::new()),
                        Err(e) if e.code == 403 => (false, e.message),
                        Err(e) => return Err(e),
                    },
                );
            }
        }
    }
    Ok(match policy.reason(u, a) {
        Some(r) => (true, r),
        None => (false, String::new()),
    })
}

fn attributes_of(spec: &Value) -> Attributes {
    let r = &spec["resourceAttributes"];
    if r.is_object() {
        Attributes {
            verb: s(&r["verb"]),
            resource_request: true,
            namespace: s(&r["namespace"]),
            group: s(&r["group"]),
            resource: s(&r["resource"]),
            subresource: s(&r["subresource"]),
            name: s(&r["name"]),
            path: String::new(),
        }
    } else {
        let n = &spec["nonResourceAttributes"];
        Attributes::non_resource(&s(&n["verb"]), &s(&n["path"]))
    }
}

/// Rules as SelfSubjectRulesReview reports them.
fn rules_status(rules: &[Rule], incomplete: bool) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if !r.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        } else {
            let mut o =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                o["resourceNames"] = json!(r.resource_names);
            }
            resource_rules.push(o);
        }
    }
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
        "incomplete": incomplete})
}

/// `POST` of a review: decode and validate the body, answer with its status.
pub async fn create(
    ctx: &Ctx,
    policy: &Policy,
    user: &User,
    t: &ResourceTarget,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let Some(kind) = which(t.def) else {
        return Err(ApiError::not_found_path());
    };
    let raw = crate::request::decode_body(headers, body)?;
    let mut obj = t
        .def
        .strategy
        .decode(&raw)
        .map_err(|e| ApiError::bad_request(format!("error decoding {}: {e}", t.def.kind)))?;
    if !obj["spec"].is_object() && kind != Review::Whoami {
        obj["spec"] = json!({});
    }
    let mut causes = Vec::new();
    t.def.strategy.validate(&obj, &mut causes);
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            t.def,
            &s(&obj["metadata"]["name"]),
            causes,
        ));
    }
    if kind == Review::Local {
        let ns = t.namespace.clone().unwrap_or_default();
        let asked = s(&obj["spec"]["resourceAttributes"]["namespace"]);
        if asked != ns {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {ns}"
            )));
        }
    }
    let status = match kind {
        Review::Subject | Review::Local => {
            let spec = &obj["spec"];
            let subject = User {
                name: s(&spec["user"]),
                groups: spec["groups"]
                    .as_array()
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            let (allowed, reason) = decide(ctx, policy, &subject, &attributes_of(spec)).await?;
            access_status(allowed, reason)
        }
        Review::SelfSubject => {
            let (allowed, reason) = decide(ctx, policy, user, &attributes_of(&obj["spec"])).await?;
            access_status(allowed, reason)
        }
        Review::Rules => {
            let ns = s(&obj["spec"]["namespace"]);
            let rules = policy.rules_for(user, &ns);
            let mut st = rules_status(&rules, crate::authz::node_name(user).is_some());
            if crate::authz::is_master(user) && rules.is_empty() {
                st = rules_status(
                    &[
                        Rule::from_json(
                            &json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
                        ),
                        Rule::from_json(&json!({"verbs": ["*"], "nonResourceURLs": ["*"]})),
                    ],
                    false,
                );
            }
            st
        }
        Review::Whoami => json!({"userInfo": {"username": user.name, "groups": user.groups}}),
    };
    obj["apiVersion"] = json!(t.def.api_version());
    obj["kind"] = json!(t.def.kind);
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["creationTimestamp"] = Value::Null;
    obj["status"] = status;
    Ok(json_response(StatusCode::CREATED, &obj))
}

fn access_status(allowed: bool, reason: String) -> Value {
    let mut st = json!({"allowed": allowed});
    if !reason.is_empty() {
        st["reason"] = json!(reason);
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let st = ReviewStrategy(Review::Subject);
        let mut c = Vec::new();
        st.validate(&json!({"spec": {}}), &mut c);
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, vec!["spec.resourceAttributes", "spec.user"]);
        let mut c = Vec::new();
        ReviewStrategy(Review::Local).validate(
            &json!({"spec": {"user": "a", "nonResourceAttributes": {"path": "/x", "verb": "get"}}}),
            &mut c,
        );
        assert_eq!(c.len(), 1);
        assert!(
            c[0].1.ends_with("disallowed on this kind of request"),
            "{c:?}"
        );
        let mut c = Vec::new();
        ReviewStrategy(Review::SelfSubject).validate(
            &json!({"spec": {"resourceAttributes": {"verb": "get"}}}),
            &mut c,
        );
        assert!(c.is_empty());
        assert_eq!(
            SELF_SUBJECT_REVIEWS.discovery_entries()[0]["verbs"],
            json!(["create"])
        );
    }
}
