//! admissionregistration.k8s.io/v1: Validating/MutatingWebhookConfigurations and
//! ValidatingAdmissionPolicies with their bindings (pkg/registry/admissionregistration;
//! pkg/apis/admissionregistration/validation). The webhooks they declare are called by
//! [`crate::webhook`]; the policies are evaluated by [`crate::policy`].

use k8s_openapi::api::admissionregistration::v1 as ar;
use serde_json::{json, Value};

use super::{decode_as, Cause, Strategy};
use crate::resources::ResourceDef;

const GROUP: &str = "admissionregistration.k8s.io";

/// Which of the two webhook configuration kinds a strategy serves.
#[derive(Debug)]
pub struct WebhookConfigStrategy {
    mutating: bool,
}

pub const VALIDATING_WEBHOOKS: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "ValidatingWebhookConfiguration",
    list_kind: "ValidatingWebhookConfigurationList",
    plural: "validatingwebhookconfigurations",
    singular: "validatingwebhookconfiguration",
    namespaced: false,
    short_names: &[],
    categories: &["api-extensions"],
    subresources: &[],
    has_spec: false,
    strategy: &WebhookConfigStrategy { mutating: false },
};

pub const MUTATING_WEBHOOKS: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "MutatingWebhookConfiguration",
    list_kind: "MutatingWebhookConfigurationList",
    plural: "mutatingwebhookconfigurations",
    singular: "mutatingwebhookconfiguration",
    namespaced: false,
    short_names: &[],
    categories: &["api-extensions"],
    subresources: &[],
    has_spec: false,
    strategy: &WebhookConfigStrategy { mutating: true },
};

#[derive(Debug)]
pub struct PolicyStrategy;

pub const POLICIES: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "ValidatingAdmissionPolicy",
    list_kind: "ValidatingAdmissionPolicyList",
    plural: "validatingadmissionpolicies",
    singular: "validatingadmissionpolicy",
    namespaced: false,
    short_names: &[],
    categories: &["api-extensions"],
    subresources: &[crate::resources::Subresource::Status],
    has_spec: true,
    strategy: &PolicyStrategy,
};

#[derive(Debug)]
pub struct BindingStrategy;

pub const BINDINGS: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: "ValidatingAdmissionPolicyBinding",
    list_kind: "ValidatingAdmissionPolicyBindingList",
    plural: "validatingadmissionpolicybindings",
    singular: "validatingadmissionpolicybinding",
    namespaced: false,
    short_names: &[],
    categories: &["api-extensions"],
    subresources: &[],
    has_spec: true,
    strategy: &BindingStrategy,
};

/// Is `r` one of the resources whose writes no webhook or policy sees (as upstream, so that a
/// broken webhook can always be removed)?
pub fn exempt(def: &ResourceDef) -> bool {
    def.group == GROUP
}

fn list(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn quote_list(xs: &[&str]) -> String {
    xs.iter()
        .map(|x| format!("\"{x}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_of(v: &Value, path: &str, allowed: &[&str], causes: &mut Vec<Cause>) {
    if let Some(s) = v.as_str() {
        if !allowed.contains(&s) {
            causes.push((
                path.into(),
                format!(
                    "Unsupported value: \"{s}\": supported values: {}",
                    quote_list(allowed)
                ),
            ));
        }
    }
}

/// Upstream's webhook name rule: a qualified name with at least three dot-separated segments.
fn validate_webhook_name(name: &str, path: &str, causes: &mut Vec<Cause>) {
    if name.is_empty() {
        causes.push((path.into(), "Required value".into()));
        return;
    }
    if !super::is_dns_subdomain(name) {
        causes.push((
            path.into(),
            format!(
                "Invalid value: \"{name}\": {}",
                super::name_errors(super::NameRule::Subdomain, name).join(", ")
            ),
        ));
    }
    if name.split('.').count() < 3 {
        causes.push((
            path.into(),
            format!("Invalid value: \"{name}\": should be a domain with at least three segments separated by dots"),
        ));
    }
}

/// `rules[i]` of a webhook (RuleWithOperations) or a policy's resource rule.
fn validate_rule(r: &Value, path: &str, causes: &mut Vec<Cause>) {
    let ops = list(&r["operations"]);
    if ops.is_empty() {
        causes.push((format!("{path}.operations"), "Required value".into()));
    }
    if ops.len() > 1 && ops.iter().any(|o| o.as_str() == Some("*")) {
        causes.push((
            format!("{path}.operations"),
            "Invalid value: if '*' is present, must not specify other operations".into(),
        ));
    }
    for (i, o) in ops.iter().enumerate() {
        one_of(
            o,
            &format!("{path}.operations[{i}]"),
            &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"],
            causes,
        );
    }
    for f in ["apiGroups", "apiVersions"] {
        let xs = list(&r[f]);
        if xs.is_empty() {
            causes.push((format!("{path}.{f}"), "Required value".into()));
        }
        if xs.len() > 1 && xs.iter().any(|x| x.as_str() == Some("*")) {
            causes.push((
                format!("{path}.{f}"),
                "Invalid value: if '*' is present, must not specify other API groups".into(),
            ));
        }
    }
    for (i, v) in list(&r["apiVersions"]).iter().enumerate() {
        if v.as_str().unwrap_or("").is_empty() {
            causes.push((format!("{path}.apiVersions[{i}]"), "Required value".into()));
        }
    }
    let res = list(&r["resources"]);
    if res.is_empty() {
        causes.push((format!("{path}.resources"), "Required value".into()));
    }
    for (i, x) in res.iter().enumerate() {
        let s = x.as_str().unwrap_or("");
        let p = format!("{path}.resources[{i}]");
        if s.is_empty() {
            causes.push((p, "Required value".into()));
            continue;
        }
        let mut parts = s.splitn(3, '/');
        let (res_part, sub) = (parts.next().unwrap_or(""), parts.next());
        if parts.next().is_some() || res_part.is_empty() || sub == Some("") {
            causes.push((
                p,
                format!("Invalid value: \"{s}\": resources must be of the form 'resource', 'resource/subresource', '*', '*/*', 'resource/*' or '*/subresource'"),
            ));
        }
    }
    one_of(
        &r["scope"],
        &format!("{path}.scope"),
        &["*", "Cluster", "Namespaced"],
        causes,
    );
}

fn validate_selector(sel: &Value, path: &str, causes: &mut Vec<Cause>) {
    if sel.is_null() {
        return;
    }
    if let Err(e) = daas_apimachinery::selector::LabelSelector::from_json(sel) {
        causes.push((path.into(), format!("Invalid value: {}", e.message())));
    }
}

fn validate_match_conditions(mcs: &Value, path: &str, causes: &mut Vec<Cause>) {
    let mut seen = std::collections::HashSet::new();
    for (i, mc) in list(mcs).iter().enumerate() {
        let name = mc["name"].as_str().unwrap_or("");
        if name.is_empty() {
            causes.push((format!("{path}[{i}].name"), "Required value".into()));
        } else if !seen.insert(name.to_string()) {
            causes.push((
                format!("{path}[{i}].name"),
                format!("Duplicate value: \"{name}\""),
            ));
        }
        compiles(
            &mc["expression"],
            &format!("{path}[{i}].expression"),
            causes,
        );
    }
}

/// A CEL expression: present and compiling.
fn compiles(expr: &Value, path: &str, causes: &mut Vec<Cause>) {
    let e = expr.as_str().unwrap_or("");
    if e.trim().is_empty() {
        causes.push((path.into(), "Required value".into()));
    } else if let Err(err) = crate::policy::compile(e) {
        causes.push((path.into(), format!("Invalid value: {e:?}: {err}")));
    }
}

fn validate_client_config(cc: &Value, path: &str, causes: &mut Vec<Cause>) {
    match (cc["url"].as_str(), cc["service"].is_object()) {
        (Some(_), true) | (None, false) => causes.push((
            path.into(),
            "Required value: exactly one of url or service is required".into(),
        )),
        (Some(url), false) => {
            let p = format!("{path}.url");
            match url.parse::<axum::http::Uri>() {
                Ok(u) if u.scheme_str() == Some("https") => {
                    if u.host().unwrap_or("").is_empty() {
                        causes.push((
                            p,
                            format!("Invalid value: \"{url}\": host must be specified"),
                        ));
                    } else if url.contains('#') {
                        causes.push((
                            p,
                            format!(
                                "Invalid value: \"{url}\": fragments are not permitted in the URL"
                            ),
                        ));
                    } else if u.query().is_some() {
                        causes.push((p, format!("Invalid value: \"{url}\": query parameters are not permitted in the URL")));
                    } else if u
                        .authority()
                        .map(|a| a.as_str().contains('@'))
                        .unwrap_or(false)
                    {
                        causes.push((p, format!("Invalid value: \"{url}\": user information is not permitted in the URL")));
                    }
                }
                Ok(u) => causes.push((
                    p,
                    format!(
                        "Unsupported value: \"{}\": supported values: \"https\"",
                        u.scheme_str().unwrap_or("")
                    ),
                )),
                Err(e) => causes.push((
                    p,
                    format!("Invalid value: \"{url}\": host must be specified ({e})"),
                )),
            }
        }
        (None, true) => {
            let s = &cc["service"];
            for f in ["name", "namespace"] {
                let v = s[f].as_str().unwrap_or("");
                if v.is_empty() {
                    causes.push((
                        format!("{path}.service.{f}"),
                        "Required value: service {f} is required".replace("{f}", f),
                    ));
                } else if !super::is_dns_label(v) {
                    causes.push((
                        format!("{path}.service.{f}"),
                        format!("Invalid value: \"{v}\": a lowercase RFC 1123 label is required"),
                    ));
                }
            }
            if let Some(p) = s["path"].as_str() {
                if !p.starts_with('/') {
                    causes.push((
                        format!("{path}.service.path"),
                        format!("Invalid value: \"{p}\": must start with a '/'"),
                    ));
                }
            }
            if let Some(port) = s["port"].as_i64() {
                if !(1..=65535).contains(&port) {
                    causes.push((
                        format!("{path}.service.port"),
                        format!("Invalid value: {port}: port is not valid: must be between 1 and 65535, inclusive"),
                    ));
                }
            }
        }
    }
    if let Some(ca) = cc["caBundle"].as_str() {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD
            .decode(ca)
            .is_err()
        {
            causes.push((
                format!("{path}.caBundle"),
                "Invalid value: not base64".into(),
            ));
        }
    }
}

fn validate_webhook(w: &Value, path: &str, mutating: bool, causes: &mut Vec<Cause>) {
    validate_webhook_name(
        w["name"].as_str().unwrap_or(""),
        &format!("{path}.name"),
        causes,
    );
    for (i, r) in list(&w["rules"]).iter().enumerate() {
        validate_rule(r, &format!("{path}.rules[{i}]"), causes);
    }
    one_of(
        &w["failurePolicy"],
        &format!("{path}.failurePolicy"),
        &["Fail", "Ignore"],
        causes,
    );
    one_of(
        &w["matchPolicy"],
        &format!("{path}.matchPolicy"),
        &["Equivalent", "Exact"],
        causes,
    );
    match w["sideEffects"].as_str() {
        None => causes.push((
            format!("{path}.sideEffects"),
            "Required value: must specify one of None, NoneOnDryRun".into(),
        )),
        Some(_) => one_of(
            &w["sideEffects"],
            &format!("{path}.sideEffects"),
            &["None", "NoneOnDryRun"],
            causes,
        ),
    }
    if let Some(t) = w["timeoutSeconds"].as_i64() {
        if !(1..=30).contains(&t) {
            causes.push((
                format!("{path}.timeoutSeconds"),
                format!("Invalid value: {t}: the timeout value must be between 1 and 30 seconds"),
            ));
        }
    }
    let versions = list(&w["admissionReviewVersions"]);
    if versions.is_empty() {
        causes.push((
            format!("{path}.admissionReviewVersions"),
            "Required value: must specify one of v1, v1beta1".into(),
        ));
    } else if !versions
        .iter()
        .any(|v| matches!(v.as_str(), Some("v1" | "v1beta1")))
    {
        causes.push((
            format!("{path}.admissionReviewVersions"),
            format!(
                "Invalid value: {}: must include at least one of v1, v1beta1",
                w["admissionReviewVersions"]
            ),
        ));
    }
    validate_selector(
        &w["namespaceSelector"],
        &format!("{path}.namespaceSelector"),
        causes,
    );
    validate_selector(
        &w["objectSelector"],
        &format!("{path}.objectSelector"),
        causes,
    );
    validate_client_config(&w["clientConfig"], &format!("{path}.clientConfig"), causes);
    validate_match_conditions(
        &w["matchConditions"],
        &format!("{path}.matchConditions"),
        causes,
    );
    if mutating {
        one_of(
            &w["reinvocationPolicy"],
            &format!("{path}.reinvocationPolicy"),
            &["IfNeeded", "Never"],
            causes,
        );
    }
}

fn default_rules(rules: &mut Value) {
    if let Some(rs) = rules.as_array_mut() {
        for r in rs {
            if r["scope"].is_null() {
                r["scope"] = json!("*");
            }
        }
    }
}

impl Strategy for WebhookConfigStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        if self.mutating {
            decode_as::<ar::MutatingWebhookConfiguration>(obj)
        } else {
            decode_as::<ar::ValidatingWebhookConfiguration>(obj)
        }
    }

    fn defaults(&self, obj: &mut Value) {
        let Some(ws) = obj["webhooks"].as_array_mut() else {
            return;
        };
        for w in ws {
            for (k, v) in [
                ("failurePolicy", json!("Fail")),
                ("matchPolicy", json!("Equivalent")),
                ("namespaceSelector", json!({})),
                ("objectSelector", json!({})),
                ("timeoutSeconds", json!(10)),
            ] {
                if w[k].is_null() {
                    w[k] = v;
                }
            }
            if self.mutating && w["reinvocationPolicy"].is_null() {
                w["reinvocationPolicy"] = json!("Never");
            }
            if let Some(svc) = w["clientConfig"]["service"].as_object_mut() {
                svc.entry("port").or_insert(json!(443));
            }
            default_rules(&mut w["rules"]);
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let mut seen = std::collections::HashSet::new();
        for (i, w) in list(&obj["webhooks"]).iter().enumerate() {
            let name = w["name"].as_str().unwrap_or("");
            if !name.is_empty() && !seen.insert(name.to_string()) {
                causes.push((
                    format!("webhooks[{i}].name"),
                    format!("Duplicate value: \"{name}\""),
                ));
            }
            validate_webhook(w, &format!("webhooks[{i}]"), self.mutating, causes);
        }
    }

    fn columns(&self) -> Vec<super::Column> {
        vec![super::NAME, ("Webhooks", "integer", 0), super::AGE]
    }

    fn cells(&self, o: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
        let (name, age) = super::name_and_age(o, now);
        vec![name, json!(list(&o["webhooks"]).len()), age]
    }
}

fn default_match_resources(m: &mut Value) {
    if m.is_null() {
        return;
    }
    for (k, v) in [
        ("namespaceSelector", json!({})),
        ("objectSelector", json!({})),
        ("matchPolicy", json!("Equivalent")),
    ] {
        if m[k].is_null() {
            m[k] = v;
        }
    }
    for k in ["resourceRules", "excludeResourceRules"] {
        if let Some(r) = m.get_mut(k) {
            default_rules(r);
        }
    }
}

fn validate_match_resources(m: &Value, path: &str, required: bool, causes: &mut Vec<Cause>) {
    if m.is_null() {
        if required {
            causes.push((path.into(), "Required value".into()));
        }
        return;
    }
    let rules = list(&m["resourceRules"]);
    if required && rules.is_empty() {
        causes.push((format!("{path}.resourceRules"), "Required value".into()));
    }
    for (i, r) in rules.iter().enumerate() {
        validate_rule(r, &format!("{path}.resourceRules[{i}]"), causes);
    }
    for (i, r) in list(&m["excludeResourceRules"]).iter().enumerate() {
        validate_rule(r, &format!("{path}.excludeResourceRules[{i}]"), causes);
    }
    validate_selector(
        &m["namespaceSelector"],
        &format!("{path}.namespaceSelector"),
        causes,
    );
    validate_selector(
        &m["objectSelector"],
        &format!("{path}.objectSelector"),
        causes,
    );
    one_of(
        &m["matchPolicy"],
        &format!("{path}.matchPolicy"),
        &["Equivalent", "Exact"],
        causes,
    );
}

impl Strategy for PolicyStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<ar::ValidatingAdmissionPolicy>(obj)
    }

    fn columns(&self) -> Vec<super::Column> {
        vec![
            super::NAME,
            ("Validations", "integer", 0),
            ("ParamKind", "string", 0),
            super::AGE,
        ]
    }

    fn cells(&self, o: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
        let (name, age) = super::name_and_age(o, now);
        let pk = &o["spec"]["paramKind"];
        let param_kind = if pk.is_null() {
            "<unset>".to_string()
        } else {
            format!(
                "{}/{}",
                crate::table::s(&pk["apiVersion"]),
                crate::table::s(&pk["kind"])
            )
        };
        vec![
            name,
            json!(list(&o["spec"]["validations"]).len()),
            json!(param_kind),
            age,
        ]
    }

    fn defaults(&self, obj: &mut Value) {
        if obj["spec"]["failurePolicy"].is_null() && obj["spec"].is_object() {
            obj["spec"]["failurePolicy"] = json!("Fail");
        }
        default_match_resources(&mut obj["spec"]["matchConstraints"]);
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        if list(&spec["validations"]).is_empty() && list(&spec["auditAnnotations"]).is_empty() {
            causes.push((
                "spec.validations".into(),
                "Required value: validations or auditAnnotations must contain at least one item"
                    .into(),
            ));
        }
        for (i, v) in list(&spec["validations"]).iter().enumerate() {
            compiles(
                &v["expression"],
                &format!("spec.validations[{i}].expression"),
                causes,
            );
            if !v["messageExpression"].is_null() {
                compiles(
                    &v["messageExpression"],
                    &format!("spec.validations[{i}].messageExpression"),
                    causes,
                );
            }
            if let Some(m) = v["message"].as_str() {
                if m.contains('\n') {
                    causes.push((
                        format!("spec.validations[{i}].message"),
                        format!("Invalid value: {m:?}: message must not contain line breaks"),
                    ));
                }
            }
            one_of(
                &v["reason"],
                &format!("spec.validations[{i}].reason"),
                &[
                    "Forbidden",
                    "Invalid",
                    "RequestEntityTooLarge",
                    "Unauthorized",
                ],
                causes,
            );
        }
        one_of(
            &spec["failurePolicy"],
            "spec.failurePolicy",
            &["Fail", "Ignore"],
            causes,
        );
        validate_match_resources(
            &spec["matchConstraints"],
            "spec.matchConstraints",
            true,
            causes,
        );
        validate_match_conditions(&spec["matchConditions"], "spec.matchConditions", causes);
        for (i, v) in list(&spec["variables"]).iter().enumerate() {
            if v["name"].as_str().unwrap_or("").is_empty() {
                causes.push((format!("spec.variables[{i}].name"), "Required value".into()));
            }
            compiles(
                &v["expression"],
                &format!("spec.variables[{i}].expression"),
                causes,
            );
        }
        let pk = &spec["paramKind"];
        if !pk.is_null() {
            for f in ["apiVersion", "kind"] {
                if pk[f].as_str().unwrap_or("").is_empty() {
                    causes.push((format!("spec.paramKind.{f}"), "Required value".into()));
                }
            }
        }
    }
}

impl Strategy for BindingStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<ar::ValidatingAdmissionPolicyBinding>(obj)
    }

    fn columns(&self) -> Vec<super::Column> {
        vec![
            super::NAME,
            ("PolicyName", "string", 0),
            ("ParamRef", "string", 0),
            super::AGE,
        ]
    }

    fn cells(&self, o: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
        let (name, age) = super::name_and_age(o, now);
        let pr = &o["spec"]["paramRef"];
        let param_ref = match (pr["namespace"].as_str(), pr["name"].as_str()) {
            _ if pr.is_null() => "<unset>".to_string(),
            (Some(ns), Some(n)) if !ns.is_empty() && !n.is_empty() => format!("{ns}/{n}"),
            (_, Some(n)) if !n.is_empty() => format!("*/{n}"),
            _ if !pr["selector"].is_null() => crate::table::selector_string(&pr["selector"]),
            _ => "<unset>".to_string(),
        };
        vec![
            name,
            json!(crate::table::s(&o["spec"]["policyName"])),
            json!(param_ref),
            age,
        ]
    }

    fn defaults(&self, obj: &mut Value) {
        default_match_resources(&mut obj["spec"]["matchResources"]);
        let pr = &mut obj["spec"]["paramRef"];
        if pr.is_object() && pr["parameterNotFoundAction"].is_null() {
            pr["parameterNotFoundAction"] = json!("Deny");
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        if spec["policyName"].as_str().unwrap_or("").is_empty() {
            causes.push(("spec.policyName".into(), "Required value".into()));
        }
        let actions = list(&spec["validationActions"]);
        if actions.is_empty() {
            causes.push((
                "spec.validationActions".into(),
                "Required value: at least one validation action is required".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, a) in actions.iter().enumerate() {
            let p = format!("spec.validationActions[{i}]");
            one_of(a, &p, &["Audit", "Deny", "Warn"], causes);
            if let Some(s) = a.as_str() {
                if !seen.insert(s) {
                    causes.push((p, format!("Duplicate value: \"{s}\"")));
                }
            }
        }
        if seen.contains("Deny") && seen.contains("Warn") {
            causes.push((
                "spec.validationActions".into(),
                format!("Invalid value: {}: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)", spec["validationActions"]),
            ));
        }
        validate_match_resources(
            &spec["matchResources"],
            "spec.matchResources",
            false,
            causes,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> Value {
        json!({
            "name": "deny.example.com",
            "clientConfig": {"url": "https://127.0.0.1:8443/validate"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        })
    }

    fn causes_of(w: Value) -> Vec<Cause> {
        let mut obj = json!({"metadata": {"name": "c"}, "webhooks": [w]});
        let s = WebhookConfigStrategy { mutating: true };
        s.defaults(&mut obj);
        let mut causes = Vec::new();
        s.validate(&obj, &mut causes);
        causes
    }

    #[test]
    fn webhook_defaults() {
        let mut obj = json!({"webhooks": [webhook()]});
        WebhookConfigStrategy { mutating: true }.defaults(&mut obj);
        let w = &obj["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["rules"][0]["scope"], "*");
        assert!(
            causes_of(webhook()).is_empty(),
            "{:?}",
            causes_of(webhook())
        );
    }

    #[test]
    fn webhook_validation_matches_upstream() {
        let mut w = webhook();
        w["name"] = json!("deny");
        w["sideEffects"] = Value::Null;
        w["admissionReviewVersions"] = json!(["v2"]);
        w["timeoutSeconds"] = json!(31);
        w["clientConfig"] = json!({"url": "http://x.example.com/a"});
        let c = causes_of(w);
        let fields: Vec<&str> = c.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "webhooks[0].name",
                "webhooks[0].sideEffects",
                "webhooks[0].timeoutSeconds",
                "webhooks[0].admissionReviewVersions",
                "webhooks[0].clientConfig.url",
            ],
            "{c:?}"
        );
        assert!(c[0].1.contains("at least three segments"));
        assert_eq!(
            c[2].1,
            "Invalid value: 31: the timeout value must be between 1 and 30 seconds"
        );
        let mut w = webhook();
        w["clientConfig"]["service"] = json!({"name": "s", "namespace": "n"});
        assert_eq!(
            causes_of(w)[0].1,
            "Required value: exactly one of url or service is required"
        );
        let mut w = webhook();
        w["rules"] = json!([{"operations": ["*", "CREATE"], "apiGroups": [], "apiVersions": ["v1"], "resources": ["a/b/c"], "scope": "Everywhere"}]);
        let fields: Vec<String> = causes_of(w).into_iter().map(|c| c.0).collect();
        assert_eq!(
            fields,
            vec![
                "webhooks[0].rules[0].operations",
                "webhooks[0].rules[0].apiGroups",
                "webhooks[0].rules[0].resources[0]",
                "webhooks[0].rules[0].scope",
            ]
        );
    }

    #[test]
    fn table_cells_as_kubectl_prints_them() {
        let now = chrono::Utc::now();
        let p = json!({"metadata": {"name": "p"}, "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, "validations": [{}, {}]}});
        let c = PolicyStrategy.cells(&p, now);
        assert_eq!(
            (c[1].clone(), c[2].clone()),
            (json!(2), json!("v1/ConfigMap"))
        );
        let b = |pr: Value| {
            BindingStrategy.cells(
                &json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": pr}}),
                now,
            )[2]
            .clone()
        };
        assert_eq!(b(Value::Null), json!("<unset>"));
        assert_eq!(b(json!({"name": "x", "namespace": "n"})), json!("n/x"));
        assert_eq!(b(json!({"name": "x"})), json!("*/x"));
        assert_eq!(
            b(json!({"selector": {"matchLabels": {"a": "b"}}})),
            json!("a=b")
        );
        let w = json!({"metadata": {"name": "w"}, "webhooks": [{}, {}, {}]});
        assert_eq!(
            WebhookConfigStrategy { mutating: false }.cells(&w, now)[1],
            json!(3)
        );
    }

    #[test]
    fn binding_actions() {
        let mut causes = Vec::new();
        BindingStrategy.validate(
            &json!({"spec": {"policyName": "p", "validationActions": ["Deny", "Warn", "Nope"]}}),
            &mut causes,
        );
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert!(causes[0].1.starts_with("Unsupported value: \"Nope\""));
        assert!(causes[1].1.contains("must not contain both Deny and Warn"));
    }
}
