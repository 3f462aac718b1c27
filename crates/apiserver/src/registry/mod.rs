//! The per-kind registry: one module per kind, each implementing [`Strategy`] — what the generic
//! REST handlers ask of a kind (typed decoding, defaults, create/update preparation, validation,
//! status writes, field-selector labels, table columns, delete behaviour). Modelled on the
//! strategy files of the Kubernetes apiserver (pkg/registry/*/strategy.go).
//!
//! Each kind's module also defines its REST shape (group, plural, namespaced or not,
//! subresources) as a `RESOURCE: ResourceDef`, which holds the strategy as
//! `&'static dyn Strategy`; `resources::RESOURCES` lists them all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_apimachinery::selector::LabelSelector;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

use daas_store::KeyValue;

use crate::error::ApiResult;
use crate::handlers::Ctx;
use crate::table;

pub mod admissionregistration;
pub mod configmap;
pub mod controllerrevision;
pub mod crd;
pub mod crd_conversion;
pub mod cronjob;
pub mod crschema;
pub mod csr;
pub mod customresource;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod event;
pub mod eventv1;
pub mod hpa;
pub mod ingress;
pub mod ipalloc;
pub mod job;
pub mod lease;
pub mod limitrange;
pub mod metrics;
pub mod namespace;
pub mod networkpolicy;
pub mod node;
pub mod persistentvolume;
pub mod pod;
pub mod poddisruptionbudget;
pub mod podspec;
pub mod podtemplate;
pub mod priorityclass;
pub mod rbac;
pub mod replicaset;
pub mod replicationcontroller;
pub mod resourcequota;
pub mod reviews;
pub mod runtimeclass;
pub mod secret;
pub mod service;
pub mod serviceaccount;
pub mod statefulset;
pub mod storageclass;
pub mod usage;

/// A field error: (field path, message as `field.Error` renders it after the path).
pub type Cause = (String, String);

/// A table column: (name, format, priority — 1 is shown only with `-o wide`).
pub type Column = (&'static str, &'static str, u8);

/// Which DNS rule object names of a kind follow (upstream `ValidateObjectMeta`'s name function).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: at most 253 characters, dot-separated labels.
    Subdomain,
    /// RFC 1123 label: at most 63 characters, no dots.
    Label,
    /// A path segment (upstream `ValidatePathSegmentName`, e.g. RBAC names): not `.`/`..`, no `/` or `%`.
    PathSegment,
}

/// Where an object of this kind carries the pod spec whose placement and security admission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodSpecAt {
    /// The object is a pod: `metadata` and `spec`.
    Pod,
    /// A workload with a pod template at `spec.template`.
    Template,
    /// A CronJob: the pod template at `spec.jobTemplate.spec.template`.
    JobTemplate,
}

/// What the generic handlers need to know about one kind. Every method but [`Strategy::decode`]
/// has a default fitting a plain kind without a spec (ConfigMap-like), so simple kinds are small.
#[async_trait]
pub trait Strategy: std::fmt::Debug + Send + Sync {
    /// Decode through the kind's typed struct and encode again (type checking and pruning).
    fn decode(&self, obj: &Value) -> Result<Value, String>;

    /// The verbs discovery lists for the kind's main resource; create-only virtual resources
    /// (access reviews, TokenReview) override this.
    fn verbs(&self) -> &'static [&'static str] {
        &crate::resources::VERBS
    }

    /// The rule object names must follow.
    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    /// Field-selector labels beyond `metadata.name` (and `metadata.namespace` when namespaced).
    fn field_labels(&self) -> &'static [&'static str] {
        &[]
    }

    /// Conversions applied to every write before defaults and validation (e.g. Secret stringData).
    fn normalize(&self, _obj: &mut Value) {}

    /// The openAPIV3Schema server-side apply walks objects with (list and map types), for
    /// kinds defined by a schema (custom resources); None for built-in kinds, whose list types
    /// come from their strategic-merge metadata.
    fn apply_schema(&self) -> Option<Value> {
        None
    }

    /// API defaults, applied on every write.
    fn defaults(&self, _obj: &mut Value) {}

    /// Reset what a client may not set on create (e.g. the status of a workload).
    fn prepare_create(&self, _obj: &mut Value) {}

    /// Carry over from the stored object what an update of the main resource may leave out
    /// (upstream PrepareForUpdate; e.g. a Service's allocated cluster IP).
    fn prepare_update(&self, _old: &Value, _new: &mut Value) {}

    /// Kind-specific validation of a complete object (create and update).
    fn validate(&self, _obj: &Value, _causes: &mut Vec<Cause>) {}

    /// Extra validation of an update against the stored object.
    /// Rules that hold only for a new object (after [`Strategy::validate`]).
    fn validate_create(&self, _obj: &Value, _causes: &mut Vec<Cause>) {}

    fn validate_update(&self, _old: &Value, _new: &Value, _causes: &mut Vec<Cause>) {}

    /// Server-side filling-in on create that needs the store (reservations that must be given
    /// back when the write fails belong in [`Strategy::reserve`]).
    async fn allocate(&self, _ctx: &Ctx, _obj: &mut Value) -> ApiResult<()> {
        Ok(())
    }

    /// Reserve in the store what the object being written needs (a Service's cluster IP and
    /// node ports), just before it is stored: on create (`old == None`) and on updates of the
    /// main resource. `check_only` (dry run) reserves nothing but reports what would fail.
    /// What it reserved is given back with [`Strategy::release`] when the write fails.
    async fn reserve(
        &self,
        _ctx: &Ctx,
        _old: Option<&Value>,
        _new: &mut Value,
        _check_only: bool,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// Release what `obj` holds and `keep` does not (after a delete: `keep == None`; after an
    /// update: the old object against the new one; after a failed write: the other way round).
    async fn release(&self, _ctx: &Ctx, _obj: &Value, _keep: Option<&Value>) {}

    /// Admission checks of the kind that need the store (upstream's kind-specific admission
    /// plugins, e.g. the single default PriorityClass), on create (`old == None`) and update.
    async fn admit(&self, _ctx: &Ctx, _old: Option<&Value>, _new: &Value) -> ApiResult<()> {
        Ok(())
    }

    /// Follow-up after an object was stored (e.g. a namespace's default ServiceAccount).
    async fn after_create(&self, _ctx: &Ctx, _obj: &Value) {}

    /// The object a write of the `status` subresource stores: by default the stored object with
    /// only the status taken from the request.
    fn prepare_status_update(&self, old: &Value, new: Value) -> Value {
        let mut n = old.clone();
        n["status"] = new["status"].clone();
        n
    }

    /// Rewrite an object read from the store for the endpoint it is served through (a custom
    /// resource stored under one version and read through another gets that `apiVersion`).
    fn present(&self, _obj: &mut Value) {}

    /// The resource whose storage this one shares, when it has none of its own (events.k8s.io
    /// Events live under core Events' keys, as upstream serves both from one store). Objects are
    /// kept in that resource's form: [`Strategy::to_storage`] converts on write and
    /// [`Strategy::present`] on read.
    fn storage_resource(&self) -> Option<&'static crate::resources::ResourceDef> {
        None
    }

    /// Convert an object in this resource's served form into its storage form (the identity
    /// unless [`Strategy::storage_resource`] names another resource). Must accept an object
    /// already in storage form.
    fn to_storage(&self, obj: Value) -> Value {
        obj
    }

    /// The scale subresource's view: (spec replicas, status replicas, label selector).
    fn read_scale(&self, obj: &Value) -> (i64, i64, String) {
        (
            obj["spec"]["replicas"]
                .as_i64()
                .unwrap_or(self.default_replicas()),
            obj["status"]["replicas"].as_i64().unwrap_or(0),
            table::selector_string(&obj["spec"]["selector"]),
        )
    }

    /// Set the desired replicas a write of the scale subresource asks for.
    fn write_scale(&self, obj: &mut Value, replicas: i64) {
        obj["spec"]["replicas"] = json!(replicas);
    }

    /// The Table type of a column, when the kind declares it (custom resources' printer columns).
    fn column_type(&self, _name: &str) -> Option<String> {
        None
    }

    /// Does a write of the main resource change what `metadata.generation` counts (the spec)?
    fn generation_changed(&self, old: &Value, new: &Value) -> bool {
        old.get("spec") != new.get("spec")
    }

    /// Does PATCH accept strategic merge patches (false for custom resources, as upstream)?
    fn strategic_merge(&self) -> bool {
        true
    }

    /// Follow-up after any stored change of an object of the kind (create, update, delete).
    async fn after_write(&self, _ctx: &Ctx) {}

    /// `spec.replicas` reported by the scale subresource when the object has none.
    fn default_replicas(&self) -> i64 {
        0
    }

    /// Graceful deletion: the grace period (seconds) that applies before the object may be
    /// removed, `None` when it is removed at once. `requested` is the client's grace period.
    fn grace_period(&self, _obj: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Do the garbage collector's propagation finalizers (orphan, foregroundDeletion) apply?
    fn gc_finalizers(&self) -> bool {
        true
    }

    /// Work before the object is removed from the store (e.g. a namespace's contents). Returns
    /// the stored revision the removal must match (`kv`, unless this work rewrote the object).
    async fn before_delete(&self, _ctx: &Ctx, _obj: &Value, kv: KeyValue) -> ApiResult<KeyValue> {
        Ok(kv)
    }

    /// After [`Strategy::before_delete`]: `Some(object)` when the object (stored as `kv`) must
    /// stay for now (e.g. a namespace with finalizers other than its own controller's); DELETE
    /// then answers with it instead of removing it.
    fn retained_after_delete(&self, _kv: &KeyValue) -> ApiResult<Option<Value>> {
        Ok(None)
    }

    /// Finalizers outside `metadata.finalizers` that keep an object being deleted (a
    /// namespace's `spec.finalizers`): an update that empties `metadata.finalizers` removes the
    /// object only when this is false.
    fn pending_finalizers(&self, _obj: &Value) -> bool {
        false
    }

    /// Does DELETE answer with the deleted object (true) or a `Status` (false)?
    fn delete_returns_object(&self) -> bool {
        false
    }

    /// Where the object carries a pod spec, for node-placement and pod-security admission.
    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        None
    }

    /// Columns of `kubectl get`.
    fn columns(&self) -> Vec<Column> {
        vec![("Name", "name", 0), ("Created At", "date", 0)]
    }

    /// One table row's cells, matching [`Strategy::columns`].
    fn cells(&self, o: &Value, _now: DateTime<Utc>) -> Vec<Value> {
        vec![
            json!(table::s(&o["metadata"]["name"])),
            o["metadata"]["creationTimestamp"].clone(),
        ]
    }
}

/// Decode `obj` as `T` and encode it again.
pub fn decode_as<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let t: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&t).map_err(|e| e.to_string())
}

/// The `Name` column and the `Age` of an object, which most tables start and end with.
pub(crate) fn name_and_age(o: &Value, now: DateTime<Utc>) -> (Value, Value) {
    (
        json!(table::s(&o["metadata"]["name"])),
        json!(table::age(&o["metadata"]["creationTimestamp"], now)),
    )
}

pub(crate) const NAME: Column = ("Name", "name", 0);
pub(crate) const AGE: Column = ("Age", "", 0);

// ---------------------------------------------------------------- shared validation

pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Upstream's messages for a name that breaks `rule` (empty when it is valid).
pub fn name_errors(rule: NameRule, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    match rule {
        NameRule::Label => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !is_dns_label_chars(name) {
                out.push(LABEL_MSG.to_string());
            }
        }
        NameRule::Subdomain => {
            if name.len() > 253 {
                out.push("must be no more than 253 characters".to_string());
            }
            if name.is_empty() || !name.split('.').all(is_dns_label_chars) {
                out.push(SUBDOMAIN_MSG.to_string());
            }
        }
        NameRule::PathSegment => out.extend(rbac::path_segment_errors(name)),
    }
    out
}

/// The character rule of an RFC 1123 label, without its length limit.
fn is_dns_label_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// Upstream `IsConfigMapKey`: the messages for an invalid ConfigMap/Secret data key.
pub fn config_key_errors(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if key.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        out.push(CONFIG_KEY_MSG.to_string());
    }
    if key == "." {
        out.push("must not be '.'".to_string());
    } else if key == ".." {
        out.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        out.push("must not start with '..'".to_string());
    }
    out
}

/// Validate the keys of the maps `fields` of `obj` (e.g. `data`, `binaryData`) as config keys.
pub fn validate_config_keys(obj: &Value, fields: &[&str], causes: &mut Vec<Cause>) {
    for f in fields {
        if let Some(m) = obj[*f].as_object() {
            for k in m.keys() {
                for msg in config_key_errors(k) {
                    causes.push((format!("{f}[{k}]"), format!("Invalid value: {k:?}: {msg}")));
                }
            }
        }
    }
}

/// Upstream's rule for objects with `immutable: true` (ConfigMap, Secret): once set, neither the
/// flag nor the `fields` may change.
pub fn validate_immutable(old: &Value, new: &Value, fields: &[&str], causes: &mut Vec<Cause>) {
    if old["immutable"].as_bool() != Some(true) {
        return;
    }
    const MSG: &str = "Forbidden: field is immutable when `immutable` is set";
    if new["immutable"].as_bool() != Some(true) {
        causes.push(("immutable".into(), MSG.into()));
    }
    for f in fields {
        let empty = |v: &Value| v.is_null() || v.as_object().map(|m| m.is_empty()).unwrap_or(false);
        let same = old[*f] == new[*f] || (empty(&old[*f]) && empty(&new[*f]));
        if !same {
            causes.push(((*f).to_string(), MSG.into()));
        }
    }
}

pub use podspec::validate_pod_spec;

/// apps/v1 workloads may not change their selector (upstream ValidateDeploymentUpdate and
/// ValidateReplicaSetUpdate).
pub fn validate_selector_immutable(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let (o, n) = (&old["spec"]["selector"], &new["spec"]["selector"]);
    let same = match (LabelSelector::from_json(o), LabelSelector::from_json(n)) {
        (Ok(a), Ok(b)) => a.to_string() == b.to_string(),
        _ => o == n,
    };
    if !same {
        causes.push((
            "spec.selector".into(),
            format!("Invalid value: {n}: field is immutable"),
        ));
    }
}

/// Validation shared by the workloads with a selector and a pod template (Deployment, ReplicaSet).
pub fn validate_workload(obj: &Value, causes: &mut Vec<Cause>) {
    let sel = &obj["spec"]["selector"];
    if sel.is_null() || (sel["matchLabels"].is_null() && sel["matchExpressions"].is_null()) {
        causes.push(("spec.selector".into(), "Required value".into()));
    } else {
        match LabelSelector::from_json(sel) {
            Ok(s) => {
                let labels = &obj["spec"]["template"]["metadata"]["labels"];
                let map = labels
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                if !s.matches(&map) {
                    causes.push((
                        "spec.template.metadata.labels".into(),
                        format!(
                            "Invalid value: {labels}: `selector` does not match template `labels`"
                        ),
                    ));
                }
            }
            Err(e) => causes.push(("spec.selector".into(), format!("Invalid value: {e}"))),
        }
    }
    if obj["spec"]["replicas"]
        .as_i64()
        .map(|r| r < 0)
        .unwrap_or(false)
    {
        causes.push((
            "spec.replicas".into(),
            "Invalid value: must be greater than or equal to 0".into(),
        ));
    }
    validate_pod_spec(
        &obj["spec"]["template"]["spec"],
        "spec.template.spec",
        causes,
    );
    let tpl = &obj["spec"]["template"]["spec"];
    if let Some(rp) = tpl["restartPolicy"].as_str().filter(|rp| *rp != "Always") {
        causes.push((
            "spec.template.spec.restartPolicy".into(),
            format!("Unsupported value: {rp:?}: supported values: \"Always\""),
        ));
    }
    if !tpl["activeDeadlineSeconds"].is_null() {
        causes.push((
            "spec.template.spec.activeDeadlineSeconds".into(),
            "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported".into(),
        ));
    }
    for f in ["minReadySeconds", "revisionHistoryLimit"] {
        if let Some(n) = obj["spec"][f].as_i64().filter(|n| *n < 0) {
            causes.push((
                format!("spec.{f}"),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
            ));
        }
    }
    if let Some(d) = obj["spec"]["progressDeadlineSeconds"].as_i64() {
        if d <= obj["spec"]["minReadySeconds"].as_i64().unwrap_or(0) {
            causes.push((
                "spec.progressDeadlineSeconds".into(),
                format!("Invalid value: {d}: must be greater than minReadySeconds"),
            ));
        }
    }
    validate_deployment_strategy(&obj["spec"]["strategy"], causes);
}

/// A `maxSurge`/`maxUnavailable` value: a non-negative integer or a percentage.
fn int_or_percent(path: &str, v: &Value, causes: &mut Vec<Cause>) -> Option<(i64, bool)> {
    match v {
        Value::Null => None,
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(-1);
            if n < 0 {
                causes.push((
                    path.to_string(),
                    format!("Invalid value: {n}: must be greater than or equal to 0"),
                ));
                return None;
            }
            Some((n, false))
        }
        Value::String(s) => {
            let num = s
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            match num.and_then(|d| d.parse::<i64>().ok()) {
                Some(n) => Some((n, true)),
                None => {
                    causes.push((
                        path.to_string(),
                        format!("Invalid value: {s:?}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
                    ));
                    None
                }
            }
        }
        other => {
            causes.push((
                path.to_string(),
                format!("Invalid value: {other}: must be an integer or percentage"),
            ));
            None
        }
    }
}

/// Upstream ValidateDeploymentStrategy (only set for Deployments; ReplicaSets have none).
fn validate_deployment_strategy(st: &Value, causes: &mut Vec<Cause>) {
    if st.is_null() {
        return;
    }
    let ty = st["type"].as_str().unwrap_or("RollingUpdate");
    match ty {
        "Recreate" => {
            if !st["rollingUpdate"].is_null() {
                causes.push((
                    "spec.strategy.rollingUpdate".into(),
                    "Forbidden: may not be specified when strategy `type` is 'Recreate'".into(),
                ));
            }
        }
        "RollingUpdate" => {
            let ru = &st["rollingUpdate"];
            let surge = int_or_percent(
                "spec.strategy.rollingUpdate.maxSurge",
                &ru["maxSurge"],
                causes,
            );
            let unavail = int_or_percent(
                "spec.strategy.rollingUpdate.maxUnavailable",
                &ru["maxUnavailable"],
                causes,
            );
            if let Some((u, true)) = unavail {
                if u > 100 {
                    causes.push((
                        "spec.strategy.rollingUpdate.maxUnavailable".into(),
                        format!("Invalid value: \"{u}%\": must not be greater than 100%"),
                    ));
                }
            }
            if matches!(surge, Some((0, _))) && matches!(unavail, Some((0, _))) {
                causes.push((
                    "spec.strategy.rollingUpdate.maxUnavailable".into(),
                    format!(
                        "Invalid value: {}: may not be 0 when `maxSurge` is 0",
                        ru["maxUnavailable"]
                    ),
                ));
            }
        }
        other => causes.push((
            "spec.strategy.type".into(),
            format!(
                "Unsupported value: {other:?}: supported values: \"Recreate\", \"RollingUpdate\""
            ),
        )),
    }
}

/// Cells shared by workload tables: container names, images and the selector.
pub(crate) fn workload_wide_cells(o: &Value) -> [Value; 3] {
    let (c, i) = table::containers_and_images(&o["spec"]["template"]["spec"]);
    [
        json!(c),
        json!(i),
        json!(table::selector_string(&o["spec"]["selector"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns_subdomain("web-1.example"));
        assert!(!is_dns_subdomain("Web"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label("-a"));
        assert!(is_dns_label("a1"));
        assert!(name_errors(NameRule::Subdomain, "a.b-c").is_empty());
        assert_eq!(name_errors(NameRule::Label, "a.b"), vec![LABEL_MSG]);
        let long = "a".repeat(254);
        assert_eq!(
            name_errors(NameRule::Subdomain, &long),
            vec!["must be no more than 253 characters"]
        );
        let label64 = "a".repeat(64);
        // Upstream's subdomain rule limits the whole name, not each dot-separated part.
        assert!(name_errors(NameRule::Subdomain, &format!("{label64}.b")).is_empty());
        assert_eq!(
            name_errors(NameRule::Label, &label64),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn config_keys() {
        assert!(config_key_errors("key.name").is_empty());
        assert!(config_key_errors("KEY_NAME-1").is_empty());
        assert_eq!(config_key_errors(""), vec![CONFIG_KEY_MSG]);
        assert_eq!(config_key_errors("a/b"), vec![CONFIG_KEY_MSG]);
        assert_eq!(config_key_errors(".."), vec!["must not be '..'"]);
        assert_eq!(config_key_errors("..a"), vec!["must not start with '..'"]);
        assert_eq!(
            config_key_errors(&"k".repeat(254)),
            vec!["must be no more than 253 characters"]
        );
        let mut causes = Vec::new();
        validate_config_keys(
            &json!({"data": {"ok": "1", "b d": "2"}}),
            &["data"],
            &mut causes,
        );
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].0, "data[b d]");
        assert!(causes[0]
            .1
            .starts_with("Invalid value: \"b d\": a valid config key"));
    }

    #[test]
    fn immutable_objects_refuse_changes() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let mut causes = Vec::new();
        validate_immutable(&old, &old.clone(), &["data", "binaryData"], &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        let new = json!({"immutable": false, "data": {"a": "2"}});
        validate_immutable(&old, &new, &["data", "binaryData"], &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(fields, vec!["immutable", "data"]);
        assert!(causes[0]
            .1
            .ends_with("field is immutable when `immutable` is set"));
        // Not immutable before: anything goes.
        let mut causes = Vec::new();
        validate_immutable(&json!({"data": {}}), &new, &["data"], &mut causes);
        assert!(causes.is_empty());
    }

    fn workload_causes(spec_extra: Value) -> Vec<Cause> {
        let mut d = json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        for (k, v) in spec_extra.as_object().unwrap() {
            d["spec"][k] = v.clone();
        }
        let mut causes = Vec::new();
        validate_workload(&d, &mut causes);
        causes
    }

    #[test]
    fn deployment_strategy_and_template_rules() {
        assert!(workload_causes(json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}})).is_empty());
        assert_eq!(
            workload_causes(
                json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}})
            ),
            vec![(
                "spec.strategy.rollingUpdate.maxUnavailable".to_string(),
                "Invalid value: \"0%\": may not be 0 when `maxSurge` is 0".to_string()
            )]
        );
        assert_eq!(
            workload_causes(json!({"strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}}))[0]
                .1,
            "Invalid value: \"150%\": must not be greater than 100%"
        );
        assert!(
            workload_causes(json!({"strategy": {"rollingUpdate": {"maxSurge": "x%"}}}))[0]
                .1
                .contains("a valid percent string")
        );
        assert_eq!(
            workload_causes(json!({"strategy": {"type": "Recreate", "rollingUpdate": {}}}))[0].0,
            "spec.strategy.rollingUpdate"
        );
        assert_eq!(
            workload_causes(json!({"strategy": {"type": "Blue"}}))[0].1,
            "Unsupported value: \"Blue\": supported values: \"Recreate\", \"RollingUpdate\""
        );
        assert_eq!(
            workload_causes(json!({"progressDeadlineSeconds": 5, "minReadySeconds": 10}))[0],
            (
                "spec.progressDeadlineSeconds".to_string(),
                "Invalid value: 5: must be greater than minReadySeconds".to_string()
            )
        );
        assert_eq!(
            workload_causes(json!({"revisionHistoryLimit": -1}))[0].0,
            "spec.revisionHistoryLimit"
        );
        let mut never = workload_causes(json!({}));
        assert!(never.is_empty());
        let mut d = json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
        validate_workload(&d, &mut never);
        assert_eq!(
            never,
            vec![(
                "spec.template.spec.restartPolicy".to_string(),
                "Unsupported value: \"Never\": supported values: \"Always\"".to_string()
            )]
        );
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        let mut c = Vec::new();
        validate_workload(&d, &mut c);
        assert_eq!(c[0].0, "spec.template.spec.activeDeadlineSeconds");
    }
}
