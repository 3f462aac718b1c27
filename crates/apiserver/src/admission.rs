//! Validating admission, run on every create and on every update/patch of an object's main
//! resource, after decoding, defaulting and validation and before the write:
//! - Pod Security ([`crate::podsecurity`]) for Pods (enforced) and pod templates (warnings);
//! - placement: a user-tier identity may not choose a pod's node (`spec.nodeName`);
//! - NodeRestriction ([`crate::nodeauthz::admit`]) for writes by nodes.
//! - ResourceQuota ([`crate::quota::admit`]), last: the object must fit its namespace's quotas,
//!   whose `status.used` it is then charged to.
//!
//! Mutating admission runs first: LimitRanger ([`crate::limitranger`]) fills a new pod's missing
//! requests and limits from its namespace's LimitRanges and enforces their bounds; ServiceAccount
//! ([`crate::saadmission`]) defaults a new pod's ServiceAccount and mounts its token;
//! DefaultTolerationSeconds ([`crate::defaulttolerations`]) gives it bounded tolerations of the
//! not-ready and unreachable NoExecute taints; then the
//! mutating admission webhooks ([`crate::webhook`]), whose changes are validated again by the
//! kind's strategy. ValidatingAdmissionPolicies ([`crate::policy`]) and then the validating
//! admission webhooks run last.

use serde_json::{json, Value};

use crate::authz;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, Ctx};
use crate::podsecurity::{self, Level, NamespacePolicy};
use crate::registry::PodSpecAt;
use crate::request::ResourceTarget;
use crate::resources::{self, ResourceDef};
use crate::server::User;
use crate::webhook::{self, Operation};

/// Who is writing. `user` is `None` for requests without an identity (none reach writes today).
#[derive(Clone, Copy, Default)]
pub struct Attrs<'a> {
    pub user: Option<&'a User>,
    /// `dryRun=All`: webhooks are told, and nothing is persisted.
    pub dry_run: bool,
}

impl<'a> Attrs<'a> {
    /// The webhook attributes of a write of `t` named `name` (`old`: the stored object).
    pub fn webhook(
        &self,
        t: &'a ResourceTarget,
        op: Operation,
        name: &'a str,
        old: Option<&'a Value>,
    ) -> webhook::Attributes<'a> {
        webhook::Attributes {
            def: t.def,
            subresource: t.sub.as_deref(),
            operation: op,
            name,
            namespace: handlers::ns_of(t),
            kind: None,
            user: self.user,
            old,
            dry_run: self.dry_run,
        }
    }
}

/// Validate again what mutating webhooks changed, as the kind's strategy validates any write:
/// typed decoding (pruning what the kind does not know), defaults and validation.
/// `before` is the object as it was sent to the webhooks: its identity (name, namespace, uid)
/// is not theirs to change.
fn revalidate(
    def: &ResourceDef,
    old: Option<&Value>,
    before: &Value,
    obj: &mut Value,
) -> ApiResult<()> {
    for f in ["name", "namespace", "uid"] {
        if before["metadata"][f] != obj["metadata"][f] {
            return Err(ApiError::internal(format!(
                "Internal error occurred: admission webhooks may not change metadata.{f}"
            )));
        }
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let (mut typed, _) = crate::typed::roundtrip(def, obj).map_err(|e| {
        ApiError::internal(format!(
            "Internal error occurred: the object mutated by admission webhooks cannot be handled as a {}: {e}",
            def.kind
        ))
    })?;
    def.strategy.normalize(&mut typed);
    def.strategy.defaults(&mut typed);
    let mut causes = handlers::validate(def, &typed);
    if let Some(o) = old {
        def.strategy.validate_update(o, &typed, &mut causes);
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, &name, causes));
    }
    *obj = typed;
    Ok(())
}

/// Webhooks and policies for a write of the `scale` subresource: they see the autoscaling/v1
/// Scale (`old`: the current one) and may change `new`'s replicas.
pub async fn admit_scale(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    old: &Value,
    new: &mut Value,
) -> ApiResult<Vec<String>> {
    let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
    let mut wa = attrs.webhook(t, Operation::Update, &name, Some(old));
    wa.kind = Some(("autoscaling", "v1", "Scale"));
    let mut warnings = webhook::mutate(ctx, &wa, Some(new)).await?;
    warnings.extend(crate::policy::validate(ctx, &wa, Some(new)).await?);
    warnings.extend(webhook::validate(ctx, &wa, Some(new)).await?);
    Ok(warnings)
}

/// Mutating then validating webhooks for a write that changes no main resource: a
/// subresource update (`pods/status`) or a DELETE (`new == None`).
pub async fn admit_other(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    op: Operation,
    old: &Value,
    mut new: Option<&mut Value>,
) -> ApiResult<Vec<String>> {
    let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
    let wa = attrs.webhook(t, op, &name, Some(old));
    let before = new.as_deref().cloned();
    let mut warnings = webhook::mutate(ctx, &wa, new.as_deref_mut()).await?;
    if let Some(n) = new.as_deref_mut() {
        if Some(&*n) != before.as_ref() {
            let before = before.as_ref().unwrap_or(&Value::Null);
            revalidate(t.def, Some(old), before, n)?;
        }
    }
    warnings.extend(crate::policy::validate(ctx, &wa, new.as_deref()).await?);
    warnings.extend(webhook::validate(ctx, &wa, new.as_deref()).await?);
    Ok(warnings)
}

fn is_user_tier(u: &User) -> bool {
    u.groups.iter().any(|g| g == authz::GROUP_USERS)
        && !u.groups.iter().any(|g| g == authz::GROUP_MASTERS)
}

pub(crate) fn forbidden(t: &ResourceTarget, name: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {why}",
        t.def.qualified()
    ))
    .with_details(json!({"name": name, "group": t.def.group, "kind": t.def.plural}))
}

/// Where `obj` keeps the pod spec whose node a user may not choose, with its field path.
fn placed_spec<'v>(def: &ResourceDef, obj: &'v Value) -> Option<(&'v Value, &'static str)> {
    match def.strategy.pod_spec_at()? {
        PodSpecAt::Pod => Some((&obj["spec"], "spec.nodeName")),
        PodSpecAt::Template => Some((
            &obj["spec"]["template"]["spec"],
            "spec.template.spec.nodeName",
        )),
        PodSpecAt::JobTemplate => Some((
            &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "spec.jobTemplate.spec.template.spec.nodeName",
        )),
    }
}

/// The pod template (metadata, spec) of a workload object.
fn pod_template<'v>(def: &ResourceDef, obj: &'v Value) -> Option<(&'v Value, &'v Value)> {
    match def.strategy.pod_spec_at()? {
        PodSpecAt::Template => {
            let t = &obj["spec"]["template"];
            Some((&t["metadata"], &t["spec"]))
        }
        PodSpecAt::JobTemplate => {
            let t = &obj["spec"]["jobTemplate"]["spec"]["template"];
            Some((&t["metadata"], &t["spec"]))
        }
        PodSpecAt::Pod => None,
    }
}

fn node_name_of(spec: &Value) -> Option<&str> {
    spec["nodeName"].as_str().filter(|n| !n.is_empty())
}

/// Admit a create (`old == None`) or an update of `t`'s main resource, which mutating
/// admission may change. Returns warnings.
pub async fn admit(
    ctx: &Ctx,
    attrs: Attrs<'_>,
    t: &ResourceTarget,
    old: Option<&Value>,
    new: &mut Value,
) -> ApiResult<Vec<String>> {
    if old.is_none() && t.def.strategy.pod_spec_at() == Some(PodSpecAt::Pod) {
        if let Some(ns) = t.namespace.as_deref().filter(|_| t.def.namespaced) {
            crate::limitranger::admit_pod(ctx, ns, new).await?;
            crate::saadmission::admit_pod(ctx, t, ns, new).await?;
            ctx.default_tolerations.admit_pod(new);
            // Derived fields (a pod's QoS class) follow the requests and limits just set.
            t.def.strategy.defaults(new);
        }
    }
    if old.is_none() && t.def.kind == crate::registry::csr::RESOURCE.kind {
        crate::registry::csr::stamp_requester(new, attrs.user);
        crate::registry::csr::restrict_subject(new)?;
    }
    let name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
    let op = if old.is_some() {
        Operation::Update
    } else {
        Operation::Create
    };
    let wa = attrs.webhook(t, op, &name, old);
    let before = new.clone();
    let mut warnings = webhook::mutate(ctx, &wa, Some(new)).await?;
    if *new != before {
        revalidate(t.def, old, &before, new)?;
    }
    let new = &*new;
    let name = name.as_str();
    t.def.strategy.admit(ctx, old, new).await?;
    crate::rbac::admit(ctx, attrs.user, t, new).await?;
    if let Some(u) = attrs.user {
        if is_user_tier(u) {
            if let Some((spec, field)) = placed_spec(t.def, new) {
                let before = old
                    .and_then(|o| placed_spec(t.def, o))
                    .and_then(|(s, _)| node_name_of(s));
                if let Some(n) = node_name_of(spec).filter(|n| Some(*n) != before) {
                    return Err(forbidden(
                        t,
                        name,
                        &format!(
                            "{field}: Forbidden: user \"{}\" may not choose the node of a pod (\"{n}\"); pods are placed by the scheduler",
                            u.name
                        ),
                    ));
                }
            }
        }
        if let Some(node) = authz::node_name(u) {
            crate::nodeauthz::admit(node, t, old, new)?;
        }
    }
    warnings.extend(pod_security(ctx, t, old, new).await?);
    warnings.extend(crate::policy::validate(ctx, &wa, Some(new)).await?);
    warnings.extend(webhook::validate(ctx, &wa, Some(new)).await?);
    // ResourceQuota runs last, as upstream's admission chain orders it.
    if let Some(ns) = t.namespace.as_deref().filter(|_| t.def.namespaced) {
        crate::quota::admit(ctx, t.def, ns, old, new, !attrs.dry_run).await?;
    }
    Ok(warnings)
}

async fn namespace_policy(ctx: &Ctx, ns: &str) -> ApiResult<NamespacePolicy> {
    let def = &resources::NAMESPACES;
    match handlers::read_object(ctx, def, None, ns).await {
        Ok(obj) => Ok(NamespacePolicy::of(Some(&obj))),
        Err(e) if e.code == 404 => Ok(NamespacePolicy::of(None)),
        Err(e) => Err(e),
    }
}

/// Only changes that can alter the outcome are re-evaluated on update, as upstream does.
fn significant_update(old: &Value, new: &Value) -> bool {
    old["spec"] != new["spec"] || old["metadata"]["annotations"] != new["metadata"]["annotations"]
}

async fn pod_security(
    ctx: &Ctx,
    t: &ResourceTarget,
    old: Option<&Value>,
    new: &Value,
) -> ApiResult<Vec<String>> {
    let name = new["metadata"]["name"].as_str().unwrap_or("");
    let Some(ns) = t.namespace.as_deref().filter(|_| t.def.namespaced) else {
        return Ok(Vec::new());
    };
    let is_pod = t.def.strategy.pod_spec_at() == Some(PodSpecAt::Pod);
    let template = pod_template(t.def, new);
    if !is_pod && template.is_none() {
        return Ok(Vec::new());
    }
    if let Some(o) = old {
        let changed = if is_pod {
            significant_update(o, new)
        } else {
            pod_template(t.def, o).map(|(m, s)| (m.clone(), s.clone()))
                != template.map(|(m, s)| (m.clone(), s.clone()))
        };
        if !changed {
            return Ok(Vec::new());
        }
    }
    let policy = namespace_policy(ctx, ns).await?;
    let mut warnings = Vec::new();
    if is_pod {
        let enforced = podsecurity::check(policy.enforce, &new["metadata"], &new["spec"]);
        if !enforced.is_empty() {
            return Err(forbidden(
                t,
                name,
                &format!(
                    "violates {}",
                    podsecurity::describe(policy.enforce, &enforced)
                ),
            ));
        }
        if policy.warn > policy.enforce {
            let v = podsecurity::check(policy.warn, &new["metadata"], &new["spec"]);
            if !v.is_empty() {
                warnings.push(format!(
                    "would violate {}",
                    podsecurity::describe(policy.warn, &v)
                ));
            }
        }
    } else if let Some((meta, spec)) = template {
        let mut levels = vec![policy.enforce, policy.warn];
        levels.sort();
        levels.dedup();
        for level in levels.into_iter().rev().filter(|l| *l != Level::Privileged) {
            let v = podsecurity::check(level, meta, spec);
            if !v.is_empty() {
                warnings.push(format!(
                    "would violate {}",
                    podsecurity::describe(level, &v)
                ));
            }
        }
    }
    Ok(warnings)
}
