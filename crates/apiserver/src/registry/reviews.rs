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

/// The whole authorizer chain's answer to an access review.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// An authorizer refused outright (no later authorizer is asked). In this chain only the
    /// Node authorizer's graph does that: a node identity's request for a graph kind is refused
    /// by it even where RBAC would allow (upstream's Node authorizer answers "no opinion" and
    /// RBAC follows, but no RBAC rule is bound to nodes there). RBAC itself never denies.
    pub denied: bool,
    pub reason: String,
    /// An authorizer could not evaluate the request. RBAC reports unresolvable role references
    /// in `reason` instead (as upstream's RBAC authorizer does), so this stays empty today.
    pub evaluation_error: String,
}

/// The whole authorizer chain's answer for `attrs` asked by `u`. Node identities are decided by
/// the Node authorizer (graph included) as a real request would be.
pub async fn decide(ctx: &Ctx, policy: &Policy, u: &User, a: &Attributes) -> ApiResult<Decision> {
    if crate::authz::is_master(u) {
        return Ok(Decision {
            allowed: true,
            ..Default::default()
        });
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
                        Ok(()) => Decision {
                            allowed: true,
                            ..Default::default()
                        },
                        Err(e) if e.code == 403 => Decision {
                            denied: true,
                            reason: e.message,
                            ..Default::default()
                        },
                        Err(e) => return Err(e),
                    },
                );
            }
        }
    }
    Ok(match policy.reason(u, a) {
        Some(reason) => Decision {
            allowed: true,
            reason,
            ..Default::default()
        },
        None => {
            // Upstream RBAC's "no opinion" names the role references it could not resolve.
            let errs = policy.resolution_errors(u, &a.namespace);
            Decision {
                reason: if errs.is_empty() {
                    String::new()
                } else {
                    format!("RBAC: {}", crate::rbac::aggregate_errors(&errs))
                },
                ..Default::default()
            }
        }
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
                uid: s(&spec["uid"]),
                extra: spec["extra"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                let vals = v
                                    .as_array()
                                    .map(|a| {
                                        a.iter()
                                            .filter_map(|x| x.as_str().map(String::from))
                                            .collect()
                                    })
                                    .unwrap_or_default();
                                (k.clone(), vals)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            access_status(decide(ctx, policy, &subject, &attributes_of(spec)).await?)
        }
        Review::SelfSubject => {
            access_status(decide(ctx, policy, user, &attributes_of(&obj["spec"])).await?)
        }
        Review::Rules => {
            let ns = s(&obj["spec"]["namespace"]);
            let rules = policy.rules_for(user, &ns);
            // As upstream's union of the Node and RBAC authorizers: a node's rules are never
            // fully enumerated; unresolvable role references make the list incomplete too.
            let mut errs = Vec::new();
            if crate::authz::node_name(user).is_some() {
                errs.push("node authorizer does not support user rule resolution".to_string());
            }
            errs.extend(policy.resolution_errors(user, &ns));
            let mut st = rules_status(&rules, !errs.is_empty());
            if !errs.is_empty() {
                st["evaluationError"] = json!(crate::rbac::aggregate_errors(&errs));
            }
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
        Review::Whoami => {
            let info = user.user_info();
            json!({"userInfo": info})
        }
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

/// A `SubjectAccessReviewStatus`: `denied`, `reason` and `evaluationError` only when set
/// (upstream's omitempty).
fn access_status(d: Decision) -> Value {
    let mut st = json!({"allowed": d.allowed});
    if d.denied {
        st["denied"] = json!(true);
    }
    if !d.reason.is_empty() {
        st["reason"] = json!(d.reason);
    }
    if !d.evaluation_error.is_empty() {
        st["evaluationError"] = json!(d.evaluation_error);
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
