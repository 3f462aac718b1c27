//! Ingresses and IngressClasses (networking.k8s.io/v1; pkg/registry/networking/ingress and
//! ingressclass, pkg/apis/networking/validation) and the `DefaultIngressClass` admission
//! plugin's choice of a class for new Ingresses that name none.
//!
//! Ingresses are namespaced (tenants own those of their namespace) with a status subresource
//! written by the ingress controller; IngressClasses are cluster-scoped (admins write them,
//! every authenticated identity reads them).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_apimachinery::validation as v;
use k8s_openapi::api::networking::v1 as networking;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Cause, Column, Strategy, AGE, NAME};
use crate::error::ApiResult;
use crate::handlers::{self, Ctx};
use crate::resources::{ResourceDef, Subresource::Status};
use crate::table::s;

#[derive(Debug)]
pub struct IngressStrategy;

#[derive(Debug)]
pub struct IngressClassStrategy;

/// The REST shape of Ingresses, with their strategy.
pub const INGRESSES: ResourceDef = ResourceDef {
    group: "networking.k8s.io",
    version: "v1",
    kind: "Ingress",
    list_kind: "IngressList",
    plural: "ingresses",
    singular: "ingress",
    namespaced: true,
    short_names: &["ing"],
    categories: &[],
    subresources: &[Status],
    has_spec: true,
    strategy: &IngressStrategy,
};

/// The REST shape of IngressClasses, with their strategy.
pub const INGRESS_CLASSES: ResourceDef = ResourceDef {
    group: "networking.k8s.io",
    version: "v1",
    kind: "IngressClass",
    list_kind: "IngressClassList",
    plural: "ingressclasses",
    singular: "ingressclass",
    namespaced: false,
    short_names: &[],
    categories: &[],
    subresources: &[],
    has_spec: true,
    strategy: &IngressClassStrategy,
};

/// The annotation marking the default IngressClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The deprecated annotation naming an Ingress's class (still honoured upstream).
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The built-in class, served by the node agents' ingress proxy.
pub const DAAS_CLASS: &str = "daas";
/// The controller name of the built-in class.
pub const DAAS_CONTROLLER: &str = "k3s-daas.io/ingress";

const PATH_TYPES: [&str; 3] = ["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: [&str; 2] = ["/..", "/."];
const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
/// Upstream's limit on `spec.controller` of an IngressClass.
const MAX_CONTROLLER_LEN: usize = 250;

/// Is `ic` marked as the default class?
pub fn is_default_class(ic: &Value) -> bool {
    ic["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION].as_str() == Some("true")
}

/// The class an Ingress names: `spec.ingressClassName`, else the deprecated annotation.
pub fn class_of(ing: &Value) -> Option<&str> {
    ing["spec"]["ingressClassName"]
        .as_str()
        .or_else(|| ing["metadata"]["annotations"][CLASS_ANNOTATION].as_str())
        .filter(|c| !c.is_empty())
}

/// The names of the Secrets an Ingress's `spec.tls` refers to.
pub fn tls_secret_names(ing: &Value) -> impl Iterator<Item = &str> {
    ing["spec"]["tls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["secretName"].as_str())
        .filter(|n| !n.is_empty())
}

/// `IsWildcardDNS1123Subdomain`.
fn wildcard_errors(host: &str) -> Vec<String> {
    let mut out = Vec::new();
    if host.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    let ok = host
        .strip_prefix("*.")
        .is_some_and(|rest| v::dns1123_subdomain(rest).is_empty());
    if !ok {
        out.push(WILDCARD_MSG.to_string());
    }
    out
}

/// A host of a rule or a TLS entry: a DNS subdomain, or a wildcard one when it holds a `*`.
fn host_errors(host: &str) -> Vec<String> {
    if host.contains('*') {
        wildcard_errors(host)
    } else {
        v::dns1123_subdomain(host)
    }
}

/// Upstream `validateIngressBackend`.
fn validate_backend(b: &Value, path: &str, causes: &mut Vec<Cause>) {
    let (res, svc) = (&b["resource"], &b["service"]);
    match (!res.is_null(), !svc.is_null()) {
        (true, true) => causes.push((
            path.into(),
            "Invalid value: \"\": cannot set both resource and service backends".into(),
        )),
        (true, false) => {
            let p = format!("{path}.resource");
            if let Some(g) = res["apiGroup"].as_str() {
                for m in v::dns1123_subdomain(g) {
                    causes.push((
                        format!("{p}.apiGroup"),
                        format!("Invalid value: {g:?}: {m}"),
                    ));
                }
            }
            for f in ["kind", "name"] {
                if res[f].as_str().unwrap_or("").is_empty() {
                    causes.push((format!("{p}.{f}"), "Required value".into()));
                }
            }
        }
        (false, true) => {
            let name = svc["name"].as_str().unwrap_or("");
            if name.is_empty() {
                causes.push((format!("{path}.service.name"), "Required value".into()));
            } else {
                for m in v::dns1123_label(name) {
                    causes.push((
                        format!("{path}.service.name"),
                        format!("Invalid value: {name:?}: {m}"),
                    ));
                }
            }
            let port_name = svc["port"]["name"].as_str().unwrap_or("");
            let number = svc["port"]["number"].as_i64().unwrap_or(0);
            match (!port_name.is_empty(), number != 0) {
                (true, true) => causes.push((
                    path.into(),
                    "Invalid value: \"\": cannot set both port name & port number".into(),
                )),
                (true, false) => {
                    for m in v::port_name(port_name) {
                        causes.push((
                            format!("{path}.service.port.name"),
                            format!("Invalid value: {port_name:?}: {m}"),
                        ));
                    }
                }
                (false, true) => {
                    for m in v::port_num(number) {
                        causes.push((
                            format!("{path}.service.port.number"),
                            format!("Invalid value: {number}: {m}"),
                        ));
                    }
                }
                (false, false) => causes.push((
                    path.into(),
                    "Required value: port name or number is required".into(),
                )),
            }
        }
        (false, false) => causes.push((
            path.into(),
            "Invalid value: \"\": resource or service backend is required".into(),
        )),
    }
}

/// Upstream `validateHTTPIngressPath`.
fn validate_http_path(p: &Value, at: &str, causes: &mut Vec<Cause>) {
    let Some(pt) = p["pathType"].as_str() else {
        causes.push((
            format!("{at}.pathType"),
            "Required value: pathType must be specified".into(),
        ));
        return;
    };
    let path = p["path"].as_str().unwrap_or("");
    let invalid = |why: String| {
        (
            format!("{at}.path"),
            format!("Invalid value: {path:?}: {why}"),
        )
    };
    match pt {
        "Exact" | "Prefix" => {
            if !path.starts_with('/') {
                causes.push(invalid("must be an absolute path".into()));
            }
            if !path.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if path.contains(seq) {
                        causes.push(invalid(format!("must not contain '{seq}'")));
                    }
                }
                for suf in INVALID_PATH_SUFFIXES {
                    if path.ends_with(suf) {
                        causes.push(invalid(format!("cannot end with '{suf}'")));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !path.is_empty() && !path.starts_with('/') {
                causes.push(invalid("must be an absolute path".into()));
            }
        }
        other => causes.push((
            format!("{at}.pathType"),
            format!(
                "Unsupported value: {other:?}: supported values: {}",
                PATH_TYPES.map(|t| format!("{t:?}")).join(", ")
            ),
        )),
    }
    validate_backend(&p["backend"], &format!("{at}.backend"), causes);
}

/// Upstream `ValidateIngressSpec` (with the status' load balancer entries).
fn validate_ingress(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let rules = spec["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if rules.is_empty() && spec["defaultBackend"].is_null() {
        causes.push((
            "spec".into(),
            "Invalid value: \"null\": either `defaultBackend` or `rules` must be specified".into(),
        ));
    }
    if !spec["defaultBackend"].is_null() {
        validate_backend(&spec["defaultBackend"], "spec.defaultBackend", causes);
    }
    for (i, r) in rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        let host = r["host"].as_str().unwrap_or("");
        if !host.is_empty() {
            if host.parse::<std::net::IpAddr>().is_ok() {
                causes.push((
                    format!("{at}.host"),
                    format!("Invalid value: {host:?}: must be a DNS name, not an IP address"),
                ));
            }
            for m in host_errors(host) {
                causes.push((
                    format!("{at}.host"),
                    format!("Invalid value: {host:?}: {m}"),
                ));
            }
        }
        let http = &r["http"];
        if http.is_null() {
            continue;
        }
        let paths = http["paths"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if paths.is_empty() {
            causes.push((format!("{at}.http.paths"), "Required value".into()));
        }
        for (j, p) in paths.iter().enumerate() {
            validate_http_path(p, &format!("{at}.http.paths[{j}]"), causes);
        }
    }
    for (i, t) in spec["tls"].as_array().into_iter().flatten().enumerate() {
        for (j, h) in t["hosts"].as_array().into_iter().flatten().enumerate() {
            let h = s(h);
            for m in host_errors(&h) {
                causes.push((
                    format!("spec.tls[{i}].hosts[{j}]"),
                    format!("Invalid value: {h:?}: {m}"),
                ));
            }
        }
        if let Some(name) = t["secretName"].as_str().filter(|n| !n.is_empty()) {
            for m in v::dns1123_subdomain(name) {
                causes.push((
                    format!("spec.tls[{i}].secretName"),
                    format!("Invalid value: {name:?}: {m}"),
                ));
            }
        }
    }
    if let Some(c) = spec["ingressClassName"].as_str() {
        for m in v::dns1123_subdomain(c) {
            causes.push((
                "spec.ingressClassName".into(),
                format!("Invalid value: {c:?}: {m}"),
            ));
        }
    }
    for (i, e) in obj["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("status.loadBalancer.ingress[{i}]");
        if let Some(ip) = e["ip"].as_str().filter(|x| !x.is_empty()) {
            if ip.parse::<std::net::IpAddr>().is_err() {
                causes.push((
                    format!("{at}.ip"),
                    format!("Invalid value: {ip:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
                ));
            }
        }
        if let Some(h) = e["hostname"].as_str().filter(|x| !x.is_empty()) {
            for m in v::dns1123_subdomain(h) {
                causes.push((
                    format!("{at}.hostname"),
                    format!("Invalid value: {h:?}: {m}"),
                ));
            }
            if h.parse::<std::net::IpAddr>().is_ok() {
                causes.push((
                    format!("{at}.hostname"),
                    format!("Invalid value: {h:?}: must be a DNS name, not an IP address"),
                ));
            }
        }
    }
}

/// The default class new Ingresses without one get (upstream `DefaultIngressClass`): of several
/// defaults, the newest (then the first by name).
pub async fn default_class(ctx: &Ctx) -> ApiResult<Option<String>> {
    let all = handlers::Filter {
        labels: None,
        fields: None,
    };
    let (items, _) = handlers::list_objects(ctx, &INGRESS_CLASSES, None, &all).await?;
    let mut defaults: Vec<&Value> = items.iter().filter(|c| is_default_class(c)).collect();
    defaults.sort_by(|a, b| {
        s(&b["metadata"]["creationTimestamp"])
            .cmp(&s(&a["metadata"]["creationTimestamp"]))
            .then_with(|| s(&a["metadata"]["name"]).cmp(&s(&b["metadata"]["name"])))
    });
    Ok(defaults.first().map(|c| s(&c["metadata"]["name"])))
}

/// Hosts of a rule list as kubectl shows them (`*` for a rule without host).
fn hosts_cell(o: &Value) -> String {
    let hosts: Vec<String> = o["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| match r["host"].as_str() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => "*".to_string(),
        })
        .collect();
    if hosts.is_empty() {
        "*".into()
    } else {
        hosts.join(",")
    }
}

#[async_trait]
impl Strategy for IngressStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<networking::Ingress>(obj)
    }

    fn prepare_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_ingress(obj, causes);
    }

    fn validate_create(&self, obj: &Value, causes: &mut Vec<Cause>) {
        // Upstream: the deprecated annotation and the field must agree when both are set.
        let ann = obj["metadata"]["annotations"][CLASS_ANNOTATION].as_str();
        if let (Some(a), Some(f)) = (ann, obj["spec"]["ingressClassName"].as_str()) {
            if a != f {
                causes.push((
                    format!("annotations.{CLASS_ANNOTATION}"),
                    format!("Invalid value: {a:?}: must match `ingressClassName` when both are specified"),
                ));
            }
        }
    }

    /// Upstream's `DefaultIngressClass` admission: a new Ingress naming no class (neither the
    /// field nor the deprecated annotation) gets the default IngressClass, when there is one.
    async fn allocate(&self, ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
        if class_of(obj).is_some() {
            return Ok(());
        }
        if let Some(c) = default_class(ctx).await? {
            obj["spec"]["ingressClassName"] = json!(c);
        }
        Ok(())
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Class", "", 0),
            ("Hosts", "", 0),
            ("Address", "", 0),
            ("Ports", "", 0),
            AGE,
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, age) = name_and_age(o, now);
        let class = o["spec"]["ingressClassName"]
            .as_str()
            .unwrap_or("<none>")
            .to_string();
        let address: Vec<String> = o["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e["ip"]
                    .as_str()
                    .filter(|x| !x.is_empty())
                    .or_else(|| e["hostname"].as_str())
                    .map(str::to_string)
            })
            .collect();
        let ports = if o["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        vec![
            name,
            json!(class),
            json!(hosts_cell(o)),
            json!(address.join(",")),
            json!(ports),
            age,
        ]
    }
}

/// Upstream `IsDomainPrefixedPath` (an IngressClass's controller).
fn domain_prefixed_path_errors(val: &str) -> Vec<String> {
    let Some((host, path)) = val.split_once('/') else {
        return vec![format!(
            "Invalid value: {val:?}: must be a domain-prefixed path (such as \"acme.io/foo\")"
        )];
    };
    let mut out: Vec<String> = v::dns1123_subdomain(host)
        .into_iter()
        .map(|m| format!("Invalid value: {host:?}: {m}"))
        .collect();
    let path_ok = !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
    if !path_ok {
        out.push(format!(
            "Invalid value: {path:?}: Invalid path: must match the regex [A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
        ));
    }
    out
}

impl Strategy for IngressClassStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<networking::IngressClass>(obj)
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        let spec = &obj["spec"];
        let ctl = spec["controller"].as_str().unwrap_or("");
        if ctl.is_empty() {
            causes.push(("spec.controller".into(), "Required value".into()));
        } else {
            if ctl.len() > MAX_CONTROLLER_LEN {
                causes.push((
                    "spec.controller".into(),
                    format!("Too long: may not be more than {MAX_CONTROLLER_LEN} bytes"),
                ));
            }
            for m in domain_prefixed_path_errors(ctl) {
                causes.push(("spec.controller".into(), m));
            }
        }
        let params = &spec["parameters"];
        if !params.is_null() {
            for f in ["kind", "name"] {
                if params[f].as_str().unwrap_or("").is_empty() {
                    causes.push((format!("spec.parameters.{f}"), "Required value".into()));
                }
            }
            match params["scope"].as_str() {
                None => causes.push(("spec.parameters.scope".into(), "Required value".into())),
                Some("Namespace") => {
                    if params["namespace"].is_null() {
                        causes.push((
                            "spec.parameters.namespace".into(),
                            "Required value: `parameters.scope` is set to 'Namespace'".into(),
                        ));
                    }
                }
                Some("Cluster") => {
                    if !params["namespace"].is_null() {
                        causes.push((
                            "spec.parameters.namespace".into(),
                            "Forbidden: `parameters.scope` is set to 'Cluster'".into(),
                        ));
                    }
                }
                Some(other) => causes.push((
                    "spec.parameters.scope".into(),
                    format!(
                        "Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespace\""
                    ),
                )),
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        if old["spec"]["controller"] != new["spec"]["controller"] {
            causes.push((
                "spec.controller".into(),
                format!(
                    "Invalid value: {:?}: field is immutable",
                    s(&new["spec"]["controller"])
                ),
            ));
        }
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Controller", "", 0), ("Parameters", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, age) = name_and_age(o, now);
        let p = &o["spec"]["parameters"];
        let params = if p.is_null() {
            "<none>".to_string()
        } else {
            let group = p["apiGroup"].as_str().unwrap_or("");
            let kind = if group.is_empty() {
                s(&p["kind"])
            } else {
                format!("{}.{group}", s(&p["kind"]))
            };
            format!("{kind}/{}", s(&p["name"]))
        };
        vec![name, json!(s(&o["spec"]["controller"])), json!(params), age]
    }
}

/// The built-in class (default, controller [`DAAS_CONTROLLER`]).
pub fn daas_class() -> Value {
    json!({"apiVersion": INGRESS_CLASSES.api_version(), "kind": INGRESS_CLASSES.kind,
        "metadata": {"name": DAAS_CLASS, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "spec": {"controller": DAAS_CONTROLLER}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes_of(obj: &Value) -> Vec<Cause> {
        let mut c = Vec::new();
        IngressStrategy.validate(obj, &mut c);
        IngressStrategy.validate_create(obj, &mut c);
        c
    }

    fn svc(name: &str, port: Value) -> Value {
        json!({"service": {"name": name, "port": port}})
    }

    #[test]
    fn a_valid_ingress_passes() {
        let ing = json!({"metadata": {"name": "web"}, "spec": {
            "ingressClassName": "daas",
            "defaultBackend": svc("fallback", json!({"number": 80})),
            "tls": [{"hosts": ["a.example.com", "*.example.org"], "secretName": "tls-a"}],
            "rules": [
                {"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": svc("a", json!({"name": "http"}))},
                    {"path": "/exact", "pathType": "Exact", "backend": svc("a", json!({"number": 8080}))}]}},
                {"host": "*.example.org", "http": {"paths": [
                    {"pathType": "ImplementationSpecific", "backend": svc("b", json!({"number": 80}))}]}},
                {"http": {"paths": [{"path": "/x", "pathType": "Prefix",
                    "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}}}]}}]}});
        assert_eq!(causes_of(&ing), Vec::<Cause>::new());
    }

    #[test]
    fn upstream_messages_for_invalid_specs() {
        let c = causes_of(&json!({"spec": {}}));
        assert_eq!(
            c,
            vec![(
                "spec".to_string(),
                "Invalid value: \"null\": either `defaultBackend` or `rules` must be specified"
                    .to_string()
            )]
        );
        let ing = json!({"metadata": {"annotations": {CLASS_ANNOTATION: "other"}}, "spec": {
            "ingressClassName": "daas",
            "tls": [{"hosts": ["bad_host"], "secretName": "Bad"}],
            "rules": [
                {"host": "10.0.0.1", "http": {"paths": [
                    {"path": "rel", "pathType": "Prefix", "backend": svc("a", json!({"number": 80}))},
                    {"path": "/a//b/..", "pathType": "Exact", "backend": svc("a", json!({"name": "h", "number": 80}))},
                    {"path": "/", "backend": svc("a", json!({"number": 80}))},
                    {"path": "/", "pathType": "Regex", "backend": svc("A_b", json!({}))},
                    {"path": "/", "pathType": "Prefix", "backend": {}}]}},
                {"host": "*.*.example.com", "http": {"paths": []}},
                {"host": "a.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": svc("a", json!({"number": 70000}))},
                    {"path": "/", "pathType": "Prefix", "backend": svc("a", json!({"name": "-x"}))}]}}]}});
        let c = causes_of(&ing);
        let got: Vec<String> = c.iter().map(|(p, m)| format!("{p}: {m}")).collect();
        let want_prefixes = [
            "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
            "spec.rules[0].http.paths[0].path: Invalid value: \"rel\": must be an absolute path",
            "spec.rules[0].http.paths[1].path: Invalid value: \"/a//b/..\": must not contain '//'",
            "spec.rules[0].http.paths[1].path: Invalid value: \"/a//b/..\": cannot end with '/..'",
            "spec.rules[0].http.paths[1].backend: Invalid value: \"\": cannot set both port name & port number",
            "spec.rules[0].http.paths[2].pathType: Required value: pathType must be specified",
            "spec.rules[0].http.paths[3].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
            "spec.rules[0].http.paths[3].backend.service.name: Invalid value: \"A_b\": a lowercase RFC 1123 label",
            "spec.rules[0].http.paths[3].backend: Required value: port name or number is required",
            "spec.rules[0].http.paths[4].backend: Invalid value: \"\": resource or service backend is required",
            "spec.rules[1].host: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain must start with '*.'",
            "spec.rules[1].http.paths: Required value",
            "spec.rules[2].http.paths[0].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.rules[2].http.paths[1].backend.service.port.name: Invalid value: \"-x\":",
            "spec.tls[0].hosts[0]: Invalid value: \"bad_host\": a lowercase RFC 1123 subdomain",
            "spec.tls[0].secretName: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain",
            "annotations.kubernetes.io/ingress.class: Invalid value: \"other\": must match `ingressClassName` when both are specified",
        ];
        assert_eq!(got.len(), want_prefixes.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want_prefixes) {
            assert!(g.starts_with(w), "{g}\n  should start with\n{w}");
        }
    }

    #[test]
    fn ingress_classes_need_a_domain_prefixed_immutable_controller() {
        let mut c = Vec::new();
        IngressClassStrategy.validate(&daas_class(), &mut c);
        assert!(c.is_empty(), "{c:?}");
        IngressClassStrategy.validate(&json!({"spec": {}}), &mut c);
        assert_eq!(
            c,
            vec![("spec.controller".to_string(), "Required value".to_string())]
        );
        c.clear();
        IngressClassStrategy.validate(
            &json!({"spec": {"controller": "nodomain", "parameters": {"kind": "K", "name": "n", "scope": "Cluster", "namespace": "x"}}}),
            &mut c,
        );
        assert_eq!(
            c,
            vec![
                (
                    "spec.controller".to_string(),
                    "Invalid value: \"nodomain\": must be a domain-prefixed path (such as \"acme.io/foo\")".to_string()
                ),
                (
                    "spec.parameters.namespace".to_string(),
                    "Forbidden: `parameters.scope` is set to 'Cluster'".to_string()
                )
            ]
        );
        c.clear();
        let mut other = daas_class();
        other["spec"]["controller"] = json!("example.com/other");
        IngressClassStrategy.validate_update(&daas_class(), &other, &mut c);
        assert_eq!(
            c,
            vec![(
                "spec.controller".to_string(),
                "Invalid value: \"example.com/other\": field is immutable".to_string()
            )]
        );
    }

    #[test]
    fn tables_show_class_hosts_address_and_ports() {
        let ing = json!({"metadata": {"name": "web"}, "spec": {"ingressClassName": "daas",
            "tls": [{"secretName": "t"}],
            "rules": [{"host": "a.example.com"}, {}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}}});
        let c = IngressStrategy.cells(&ing, Utc::now());
        assert_eq!(c[1], "daas");
        assert_eq!(c[2], "a.example.com,*");
        assert_eq!(c[3], "10.0.0.1,10.0.0.2");
        assert_eq!(c[4], "80, 443");
        let c = IngressClassStrategy.cells(&daas_class(), Utc::now());
        assert_eq!(c[1], DAAS_CONTROLLER);
        assert_eq!(c[2], "<none>");
    }

    #[test]
    fn class_and_tls_secrets_of_an_ingress() {
        let ing = json!({"metadata": {"annotations": {CLASS_ANNOTATION: "x"}},
            "spec": {"tls": [{"secretName": "a"}, {"hosts": ["h"]}, {"secretName": "b"}]}});
        assert_eq!(class_of(&ing), Some("x"));
        assert_eq!(tls_secret_names(&ing).collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(class_of(&json!({"spec": {}})), None);
    }
}
