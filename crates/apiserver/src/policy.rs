//! ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) with CEL, as upstream's
//! staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating: every binding whose policy
//! exists, and whose policy's `matchConstraints` and own `matchResources` match the request
//! (resource rules with their exclusions and resource names, namespace and object selectors),
//! evaluates the policy's `matchConditions`, `variables` and `validations` with the CEL variables
//! `object`, `oldObject`, `request`, `params`, `namespaceObject` and `variables`. A failed
//! validation denies the request (binding action `Deny`), becomes a warning (`Warn`) or is logged
//! (`Audit`); an expression that does not evaluate to a bool fails per the policy's
//! `failurePolicy`.

use std::collections::{BTreeMap, HashMap};

use std::sync::{Arc, OnceLock};

use cel::{Context, Env, Program, Value as Cel};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::{self, Ctx, Filter};
use crate::registry::admissionregistration::{BINDINGS, POLICIES};
use crate::resources;
use crate::webhook::{self, Attributes};

/// Why one CEL expression gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    #[error("compilation failed: {0}")]
    Compile(String),
    #[error("expression '{expr}' resulted in error: {msg}")]
    Eval { expr: String, msg: String },
    #[error("expression '{expr}' resulted in {got}, expected bool")]
    NotBool { expr: String, got: String },
}

/// The CEL environment of admission expressions: the standard library with the strings, lists
/// and math extensions (as Kubernetes' environment has cel-go's).
fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        for ext in [
            cel::extensions::strings as fn(&mut Env) -> _,
            cel::extensions::lists,
            cel::extensions::math,
        ] {
            if let Err(e) = env.add_extension(ext) {
                tracing::error!(error = ?e, "CEL extension not loaded");
            }
        }
        Arc::new(env)
    })
    .clone()
}

thread_local! {
    /// CEL compilations made on this thread (tests count them).
    static COMPILATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many CEL expressions this thread compiled so far.
pub fn compilations() -> u64 {
    COMPILATIONS.with(|c| c.get())
}

/// Compile `expr`; the message upstream reports for an expression that does not compile.
pub fn compile(expr: &str) -> Result<Program, ExprError> {
    COMPILATIONS.with(|c| c.set(c.get() + 1));
    env()
        .compile(expr)
        .map_err(|e| ExprError::Compile(e.to_string()))
}

/// CEL programs compiled once per generation of the cached policies or webhook configurations
/// (see [`crate::watchcache`]), by expression text. An expression that does not compile is not
/// kept: evaluating it compiles it again and reports the error.
#[derive(Default)]
pub struct Programs(HashMap<String, Arc<Program>>);

impl Programs {
    /// Compile `expr` unless it already is.
    pub fn add(&mut self, expr: &str) {
        if expr.is_empty() || self.0.contains_key(expr) {
            return;
        }
        if let Ok(p) = compile(expr) {
            self.0.insert(expr.to_string(), Arc::new(p));
        }
    }

    /// The `expression` (and `messageExpression`) of every entry of `list`.
    pub fn add_all(&mut self, list: &Value) {
        for e in list.as_array().into_iter().flatten() {
            for f in ["expression", "messageExpression"] {
                if let Some(x) = e[f].as_str() {
                    self.add(x);
                }
            }
        }
    }

    fn get(&self, expr: &str) -> Option<Arc<Program>> {
        self.0.get(expr).cloned()
    }
}

/// The bindings (in name order) and policies, as cached with their compiled programs.
pub struct PolicySet {
    bindings: Vec<Value>,
    policies: Vec<Value>,
    programs: Arc<Programs>,
}

impl PolicySet {
    /// Read the policies and bindings; the revision to watch from is the earlier of the two
    /// reads (both are under [`crate::watchcache::ADMISSION_PREFIX`]).
    async fn load(ctx: &Ctx) -> ApiResult<(PolicySet, i64)> {
        let all = Filter {
            labels: None,
            fields: None,
        };
        let (mut bindings, brev) = handlers::list_objects(ctx, &BINDINGS, None, &all).await?;
        bindings.sort_by(|x, y| {
            x["metadata"]["name"]
                .as_str()
                .cmp(&y["metadata"]["name"].as_str())
        });
        let (policies, prev) = handlers::list_objects(ctx, &POLICIES, None, &all).await?;
        let mut programs = Programs::default();
        for p in &policies {
            for f in ["variables", "matchConditions", "validations"] {
                programs.add_all(&p["spec"][f]);
            }
        }
        Ok((
            PolicySet {
                bindings,
                policies,
                programs: Arc::new(programs),
            },
            brev.min(prev),
        ))
    }
}

/// The CEL variables of one evaluation.
pub struct Vars {
    vars: BTreeMap<&'static str, Value>,
    /// `variables.<name>` of the policy, evaluated in order.
    variables: serde_json::Map<String, Value>,
    /// Compiled programs to use instead of compiling.
    programs: Option<Arc<Programs>>,
}

impl Vars {
    pub fn new(object: Value, old: Value, request: Value, params: Value, ns: Value) -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("object", object);
        vars.insert("oldObject", old);
        vars.insert("request", request);
        vars.insert("params", params);
        vars.insert("namespaceObject", ns);
        Vars {
            vars,
            variables: serde_json::Map::new(),
            programs: None,
        }
    }

    /// Evaluate with the programs compiled in `programs` (others are compiled when evaluated).
    pub fn with_programs(mut self, programs: Arc<Programs>) -> Self {
        self.programs = Some(programs);
        self
    }

    fn context(&self) -> Result<Context<'static, 'static>, String> {
        let mut c = Context::with_env(env());
        for (k, v) in &self.vars {
            c.add_variable(*k, v).map_err(|e| e.to_string())?;
        }
        c.add_variable("variables", &self.variables)
            .map_err(|e| e.to_string())?;
        Ok(c)
    }

    /// Evaluate `expr` to a CEL value.
    pub fn eval(&self, expr: &str) -> Result<Cel, ExprError> {
        let p = match self.programs.as_ref().and_then(|ps| ps.get(expr)) {
            Some(p) => p,
            None => Arc::new(compile(expr)?),
        };
        let eval_err = |msg: String| ExprError::Eval {
            expr: expr.to_string(),
            msg,
        };
        let c = self.context().map_err(eval_err)?;
        p.execute(&c).map_err(|e| eval_err(e.to_string()))
    }

    /// Evaluate `expr`, which must give a bool.
    pub fn eval_bool(&self, expr: &str) -> Result<bool, ExprError> {
        match self.eval(expr)? {
            Cel::Bool(b) => Ok(b),
            other => Err(ExprError::NotBool {
                expr: expr.to_string(),
                got: format!("{other:?}"),
            }),
        }
    }

    /// Evaluate the policy variable `name = expr` and make it visible as `variables.<name>`.
    fn define(&mut self, name: &str, expr: &str) -> Result<(), ExprError> {
        let v = self.eval(expr)?;
        let j = cel_to_json(&v).ok_or_else(|| ExprError::Eval {
            expr: expr.to_string(),
            msg: format!("variable {name} has a value of unsupported type {v:?}"),
        })?;
        self.variables.insert(name.to_string(), j);
        Ok(())
    }
}

fn cel_to_json(v: &Cel) -> Option<Value> {
    Some(match v {
        Cel::Null => Value::Null,
        Cel::Bool(b) => json!(b),
        Cel::Int(i) => json!(i),
        Cel::UInt(u) => json!(u),
        Cel::Float(f) => json!(f),
        Cel::String(s) => json!(s.as_str()),
        Cel::List(l) => Value::Array(l.iter().map(cel_to_json).collect::<Option<_>>()?),
        Cel::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    cel::objects::Key::Int(i) => i.to_string(),
                    cel::objects::Key::Uint(u) => u.to_string(),
                    cel::objects::Key::Bool(b) => b.to_string(),
                };
                out.insert(key, cel_to_json(v)?);
            }
            Value::Object(out)
        }
        _ => return None,
    })
}

/// The `request` variable: the admission request's attributes as upstream gives them.
pub fn request_var(a: &Attributes<'_>) -> Value {
    let mut r = webhook::review(a, "", None)["request"].clone();
    if let Some(m) = r.as_object_mut() {
        m.remove("object");
        m.remove("oldObject");
    }
    // CEL sees a typed UserInfo: `extra` is a map even when empty.
    if let Some(info) = r["userInfo"].as_object_mut() {
        info.entry("extra").or_insert_with(|| json!({}));
    }
    r
}

/// Do the match resources `m` (a policy's matchConstraints or, with `binding`, a binding's
/// matchResources) match?
async fn resources_match(
    ctx: &Ctx,
    m: &Value,
    binding: bool,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> ApiResult<bool> {
    let named_match = |r: &Value| {
        webhook::rule_matches(r, a)
            && r["resourceNames"]
                .as_array()
                .filter(|n| !n.is_empty())
                .map(|n| n.iter().any(|x| x == a.name))
                .unwrap_or(true)
    };
    let rules = m["resourceRules"]
        .as_array()
        .map(|r| r.as_slice())
        .unwrap_or(&[]);
    // A binding's matchResources without resourceRules narrows only by its selectors.
    let any_resource = binding && rules.is_empty();
    if !any_resource && !rules.iter().any(named_match) {
        return Ok(false);
    }
    let excluded = m["excludeResourceRules"]
        .as_array()
        .map(|r| r.iter().any(named_match))
        .unwrap_or(false);
    if excluded {
        return Ok(false);
    }
    webhook::selectors_match(ctx, &m["namespaceSelector"], &m["objectSelector"], a, obj).await
}

/// One failed validation of one binding.
struct Failure {
    policy: String,
    binding: String,
    message: String,
    reason: String,
}

/// Evaluate the policies bound to this request. Returns warnings, or the first denial.
pub async fn validate(
    ctx: &Ctx,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> ApiResult<Vec<String>> {
    if !a.admissible() {
        return Ok(Vec::new());
    }
    let set = ctx
        .admission
        .policies
        .get(&ctx.store, || PolicySet::load(ctx))
        .await?;
    if set.bindings.is_empty() {
        return Ok(Vec::new());
    }
    let (bindings, policies) = (&set.bindings, &set.policies);
    let mut warnings = Vec::new();
    for b in bindings {
        let bname = b["metadata"]["name"].as_str().unwrap_or("");
        let Some(p) = policies
            .iter()
            .find(|p| p["metadata"]["name"] == b["spec"]["policyName"])
        else {
            continue;
        };
        let pname = p["metadata"]["name"].as_str().unwrap_or("");
        if !resources_match(ctx, &p["spec"]["matchConstraints"], false, a, obj).await? {
            continue;
        }
        if b["spec"]["matchResources"].is_object()
            && !resources_match(ctx, &b["spec"]["matchResources"], true, a, obj).await?
        {
            continue;
        }
        let actions: Vec<&str> = b["spec"]["validationActions"]
            .as_array()
            .map(|xs| xs.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let params = match params_of(ctx, p, b, a).await? {
            Params::Some(v) => v,
            Params::Skip => continue,
            Params::Missing(msg) => {
                let f = Failure {
                    policy: pname.into(),
                    binding: bname.into(),
                    message: msg,
                    reason: "Invalid".into(),
                };
                if actions.contains(&"Deny") {
                    return Err(deny_error(a, &f));
                }
                continue;
            }
        };
        let ns_obj = namespace_object(ctx, a).await?;
        let mut vars = Vars::new(
            obj.cloned().unwrap_or(Value::Null),
            a.old.cloned().unwrap_or(Value::Null),
            request_var(a),
            params,
            ns_obj,
        )
        .with_programs(set.programs.clone());
        for f in evaluate(p, &mut vars, pname, bname) {
            if actions.contains(&"Deny") {
                return Err(deny_error(a, &f));
            }
            if actions.contains(&"Warn") {
                warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                    f.policy, f.binding, f.message
                ));
            }
            if actions.contains(&"Audit") {
                tracing::info!(policy = %f.policy, binding = %f.binding, message = %f.message, "validation failed (audit)");
            }
        }
    }
    Ok(warnings)
}

enum Params {
    Some(Value),
    /// No params and the binding allows that: the policy does not apply.
    Skip,
    /// No params and the binding denies that.
    Missing(String),
}

async fn params_of(ctx: &Ctx, p: &Value, b: &Value, a: &Attributes<'_>) -> ApiResult<Params> {
    let pk = &p["spec"]["paramKind"];
    let pr = &b["spec"]["paramRef"];
    if pk.is_null() {
        return Ok(Params::Some(Value::Null));
    }
    let missing = || {
        if pr["parameterNotFoundAction"] == "Allow" {
            Params::Skip
        } else {
            Params::Missing(
                "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction".into(),
            )
        }
    };
    if pr.is_null() {
        return Ok(Params::Missing(
            "failed to configure binding: no paramRef for a policy with a paramKind".into(),
        ));
    }
    let av = pk["apiVersion"].as_str().unwrap_or("");
    let kind = pk["kind"].as_str().unwrap_or("");
    let Some(def) = resources::RESOURCES
        .iter()
        .find(|d| d.kind == kind && d.api_version() == av)
    else {
        return Ok(Params::Missing(format!(
            "failed to configure policy: paramKind {av}, Kind={kind} is not served"
        )));
    };
    let ns = match pr["namespace"].as_str().filter(|s| !s.is_empty()) {
        Some(ns) => Some(ns.to_string()),
        None if def.namespaced => a.namespace.map(|s| s.to_string()),
        None => None,
    };
    if def.namespaced && ns.is_none() {
        return Ok(missing());
    }
    if let Some(name) = pr["name"].as_str().filter(|s| !s.is_empty()) {
        return match handlers::get_object(ctx, def, ns.as_deref(), name).await {
            Ok((o, _)) => Ok(Params::Some(o)),
            Err(e) if e.code == 404 => Ok(missing()),
            Err(e) => Err(e),
        };
    }
    let labels = match pr["selector"].is_null() {
        true => None,
        false => Some(
            daas_apimachinery::selector::LabelSelector::from_json(&pr["selector"])
                .map_err(|e| ApiError::internal(format!("paramRef.selector: {}", e.message())))?,
        ),
    };
    let filter = Filter {
        labels,
        fields: None,
    };
    let (mut items, _) = handlers::list_objects(ctx, def, ns.as_deref(), &filter).await?;
    // Several params: the policy is evaluated against each; here against the first that fails
    // is the same as against all of them in order, so they are handed one by one.
    match items.len() {
        0 => Ok(missing()),
        1 => Ok(Params::Some(items.remove(0))),
        _ => Ok(Params::Some(Value::Array(items))),
    }
}

async fn namespace_object(ctx: &Ctx, a: &Attributes<'_>) -> ApiResult<Value> {
    let Some(ns) = a.namespace.filter(|_| a.def.namespaced) else {
        return Ok(Value::Null);
    };
    match handlers::get_object(ctx, &resources::NAMESPACES, None, ns).await {
        Ok((o, _)) => Ok(o),
        Err(e) if e.code == 404 => Ok(Value::Null),
        Err(e) => Err(e),
    }
}

/// The failures of policy `p` (or none when its matchConditions exclude the request).
fn evaluate(p: &Value, vars: &mut Vars, pname: &str, bname: &str) -> Vec<Failure> {
    // Params given as a list (a paramRef selector matching several): every one must pass.
    if let Value::Array(list) = vars.vars["params"].clone() {
        let mut out = Vec::new();
        for one in list {
            vars.vars.insert("params", one);
            out.extend(evaluate(p, vars, pname, bname));
        }
        return out;
    }
    let fail_open = p["spec"]["failurePolicy"] == "Ignore";
    let failure = |message: String, reason: &str| Failure {
        policy: pname.into(),
        binding: bname.into(),
        message,
        reason: reason.into(),
    };
    let error = |e: ExprError| (!fail_open).then(|| failure(e.to_string(), "Invalid"));
    for v in p["spec"]["variables"].as_array().into_iter().flatten() {
        let (name, expr) = (
            v["name"].as_str().unwrap_or(""),
            v["expression"].as_str().unwrap_or(""),
        );
        if let Err(e) = vars.define(name, expr) {
            // A variable is evaluated lazily upstream; one that fails fails the validations
            // that use it. Here it fails them all.
            return error(e).into_iter().collect();
        }
    }
    for mc in p["spec"]["matchConditions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match vars.eval_bool(mc["expression"].as_str().unwrap_or("")) {
            Ok(true) => {}
            Ok(false) => return Vec::new(),
            Err(e) => return error(e).into_iter().collect(),
        }
    }
    let mut out = Vec::new();
    for v in p["spec"]["validations"].as_array().into_iter().flatten() {
        let expr = v["expression"].as_str().unwrap_or("");
        let reason = v["reason"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("Invalid");
        match vars.eval_bool(expr) {
            Ok(true) => {}
            Ok(false) => {
                let msg = v["messageExpression"]
                    .as_str()
                    .and_then(|me| match vars.eval(me) {
                        Ok(Cel::String(s)) if !s.trim().is_empty() => Some(s.to_string()),
                        _ => None,
                    })
                    .or_else(|| {
                        v["message"]
                            .as_str()
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                    })
                    .unwrap_or_else(|| format!("failed expression: {expr}"));
                out.push(failure(msg, reason));
            }
            Err(e) => out.extend(error(e)),
        }
    }
    out
}

fn reason_code(reason: &str) -> (u16, &'static str) {
    match reason {
        "Forbidden" => (403, "Forbidden"),
        "Unauthorized" => (401, "Unauthorized"),
        "RequestEntityTooLarge" => (413, "RequestEntityTooLarge"),
        _ => (422, "Invalid"),
    }
}

/// Upstream's denial: `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with
/// binding '<b>' denied request: <message>`, with the validation's reason and its code.
fn deny_error(a: &Attributes<'_>, f: &Failure) -> ApiError {
    let message = format!(
        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {}",
        f.policy, f.binding, f.message
    );
    let (code, reason) = reason_code(&f.reason);
    let resource = match a.subresource {
        Some(s) => format!("{}/{s}", a.def.qualified()),
        None => a.def.qualified(),
    };
    ApiError::new(
        code,
        reason,
        format!("{resource} \"{}\" is forbidden: {message}", a.name),
    )
    .with_details(json!({
        "name": a.name,
        "group": a.def.group,
        "kind": a.def.plural,
        "causes": [{"message": message}],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(object: Value) -> Vars {
        Vars::new(
            object,
            Value::Null,
            json!({"operation": "CREATE"}),
            json!({"max": 3}),
            Value::Null,
        )
    }

    #[test]
    fn programs_are_compiled_once_and_reused() {
        let mut ps = Programs::default();
        ps.add_all(&json!([
            {"expression": "object.a == 1", "messageExpression": "'a is ' + string(object.a)"},
            {"expression": "object.("},
        ]));
        ps.add("object.a == 1");
        let ps = Arc::new(ps);
        let before = compilations();
        let v = vars(json!({"a": 1})).with_programs(ps.clone());
        for _ in 0..3 {
            assert!(v.eval_bool("object.a == 1").unwrap());
            assert!(
                matches!(v.eval("'a is ' + string(object.a)"), Ok(Cel::String(s)) if *s == "a is 1")
            );
        }
        assert_eq!(compilations(), before, "no compilation for kept programs");
        // One that did not compile is compiled (and reported) when evaluated; others too.
        assert!(matches!(v.eval("object.("), Err(ExprError::Compile(_))));
        assert!(v.eval_bool("object.a != 1").is_ok_and(|b| !b));
        assert_eq!(compilations(), before + 2);
    }

    #[test]
    fn cel_sees_the_request() {
        let v = vars(json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}}));
        assert!(v.eval_bool("object.spec.replicas > params.max").unwrap());
        assert!(v.eval_bool("request.operation == 'CREATE'").unwrap());
        assert!(v
            .eval_bool("object.metadata.name.startsWith('we')")
            .unwrap());
        assert!(!v.eval_bool("has(object.spec.paused)").unwrap());
        // The strings extension.
        assert!(v
            .eval_bool("object.metadata.name.upperAscii() == 'WEB'")
            .unwrap());
        assert!(v.eval_bool("oldObject == null").unwrap());
        let e = v.eval_bool("object.spec.replicas").unwrap_err();
        assert!(matches!(e, ExprError::NotBool { .. }), "{e}");
        assert!(matches!(
            compile("object.(").unwrap_err(),
            ExprError::Compile(_)
        ));
    }

    #[test]
    fn validations_give_messages_and_reasons() {
        let p = json!({"spec": {
        "failurePolicy": "Fail",
        "variables": [{"name": "r", "expression": "object.spec.replicas"}],
        "validations": [
            {"expression": "variables.r <= params.max", "messageExpression": "'replicas ' + string(variables.r) + ' > ' + string(params.max)", "reason": "Forbidden"},
            {"expression": "object.metadata.name != 'web'"},
            {"expression": "object.metadata.name != 'web'", "message": "not web"},
            {"expression": "object.nope.deeper"},
        ]}});
        let mut v = vars(json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}}));
        let f = evaluate(&p, &mut v, "p", "b");
        let msgs: Vec<(&str, &str)> = f
            .iter()
            .map(|f| (f.message.as_str(), f.reason.as_str()))
            .collect();
        assert_eq!(msgs[0], ("replicas 5 > 3", "Forbidden"));
        assert_eq!(
            msgs[1],
            (
                "failed expression: object.metadata.name != 'web'",
                "Invalid"
            )
        );
        assert_eq!(msgs[2], ("not web", "Invalid"));
        assert!(
            msgs[3]
                .0
                .starts_with("expression 'object.nope.deeper' resulted in error"),
            "{}",
            msgs[3].0
        );
        // Ignore: errors are dropped, failed validations are not.
        let mut p2 = p.clone();
        p2["spec"]["failurePolicy"] = json!("Ignore");
        assert_eq!(
            evaluate(
                &p2,
                &mut vars(json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}})),
                "p",
                "b"
            )
            .len(),
            3
        );
        // matchConditions that do not hold: the policy does not apply.
        let mut p3 = p.clone();
        p3["spec"]["matchConditions"] =
            json!([{"name": "only-db", "expression": "object.metadata.name == 'db'"}]);
        assert!(evaluate(
            &p3,
            &mut vars(json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}})),
            "p",
            "b"
        )
        .is_empty());
    }
}
