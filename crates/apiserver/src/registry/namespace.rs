//! Namespaces (pkg/registry/core/namespace/strategy.go).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_store::{KeyValue, StoreError};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, NameRule, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::handlers::{encode, get_object, json_response, now_rfc3339, Ctx, UPDATE_RETRIES};
use crate::request::ResourceTarget;
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::s;
use crate::typed::{default_key, obj_mut};

#[derive(Debug)]
pub struct NamespaceStrategy;

/// Namespaces that may not be deleted (upstream NamespaceLifecycle's immortal namespaces).
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

/// The label upstream keeps equal to every namespace's name.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The finalizer of the namespace controller (upstream `FinalizerKubernetes`).
pub const FINALIZER: &str = "kubernetes";

/// The REST shape of Namespaces, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "Namespace",
    list_kind: "NamespaceList",
    plural: "namespaces",
    singular: "namespace",
    namespaced: false,
    short_names: &["ns"],
    categories: &[],
    subresources: &[Status, Finalize],
    has_spec: true,
    strategy: &NamespaceStrategy,
};

#[async_trait]
impl Strategy for NamespaceStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        decode_as::<core::Namespace>(obj)
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["status.phase"]
    }

    fn defaults(&self, obj: &mut Value) {
        // Upstream sets the immutable `kubernetes.io/metadata.name` label on every namespace
        // (NetworkPolicy namespaceSelectors pick namespaces by name with it).
        if let Some(name) = obj["metadata"]["name"].as_str().map(str::to_string) {
            if !name.is_empty() {
                let meta = &mut obj["metadata"];
                obj_mut(meta, "labels").insert(NAME_LABEL.into(), json!(name));
            }
        }
        default_key(obj_mut(obj, "spec"), "finalizers", json!(["kubernetes"]));
        default_key(obj_mut(obj, "status"), "phase", json!("Active"));
    }

    /// As upstream's namespaceStatusStrategy: the spec stays as stored, everything else of the
    /// request (status, labels, annotations) is kept; server-owned metadata is restored by the
    /// generic update path.
    fn prepare_status_update(&self, old: &Value, new: Value) -> Value {
        let mut n = new;
        match old.get("spec") {
            Some(spec) => n["spec"] = spec.clone(),
            None => {
                if let Some(m) = n.as_object_mut() {
                    m.remove("spec");
                }
            }
        }
        n
    }

    /// Namespaces finalize through `spec.finalizers`, not the garbage collector's finalizers.
    fn gc_finalizers(&self) -> bool {
        false
    }

    /// The first DELETE only marks the namespace: deletionTimestamp and phase Terminating (so
    /// that nothing can create content in it any more). The namespace controller
    /// (daas-controllers `namespace`) then deletes the contents through the API and removes
    /// its `kubernetes` finalizer through `namespaces/{name}/finalize`, which removes the
    /// namespace once no finalizer is left.
    async fn before_delete(&self, ctx: &Ctx, obj: &Value, kv: KeyValue) -> ApiResult<KeyValue> {
        let Some(ns) = obj["metadata"]["name"].as_str() else {
            return Ok(kv);
        };
        if IMMORTAL.contains(&ns) {
            return Err(ApiError::forbidden(format!(
                "namespaces \"{ns}\" is forbidden: this namespace may not be deleted"
            )));
        }
        if !obj["metadata"]["deletionTimestamp"].is_null()
            && obj["status"]["phase"] == json!("Terminating")
        {
            return Ok(kv);
        }
        let mut marked = obj.clone();
        if marked["metadata"]["deletionTimestamp"].is_null() {
            marked["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        marked["status"]["phase"] = json!("Terminating");
        match ctx
            .store
            .update(&kv.key, &encode(&marked)?, kv.mod_revision)
            .await
        {
            Ok(nkv) => Ok(nkv),
            Err(StoreError::Conflict { .. }) => Err(ApiError::conflict(&RESOURCE, ns)),
            Err(StoreError::NotFound(_)) => Err(ApiError::not_found(&RESOURCE, ns)),
            Err(e) => Err(e.into()),
        }
    }

    /// A namespace stays (Terminating) while any `spec.finalizers` remain.
    fn retained_after_delete(&self, kv: &KeyValue) -> ApiResult<Option<Value>> {
        let mut obj = crate::handlers::decode_kv(kv)?;
        if !pending_spec_finalizers(&obj) {
            return Ok(None);
        }
        obj["metadata"]["resourceVersion"] = json!(kv.mod_revision.to_string());
        Ok(Some(obj))
    }

    fn pending_finalizers(&self, obj: &Value) -> bool {
        pending_spec_finalizers(obj)
    }

    fn delete_returns_object(&self) -> bool {
        true
    }

    fn columns(&self) -> Vec<Column> {
        vec![NAME, ("Status", "", 0), AGE]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        vec![name, json!(s(&o["status"]["phase"])), created]
    }
}

/// Does the namespace still wait for any of its `spec.finalizers`?
fn pending_spec_finalizers(obj: &Value) -> bool {
    obj["spec"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

/// Upstream `ValidateFinalizerName` for `spec.finalizers`: the standard `kubernetes` finalizer or
/// a domain-qualified name.
fn validate_finalizers(obj: &Value) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    for (i, f) in obj["spec"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = s(f);
        let qualified = f.split_once('/').is_some_and(|(d, n)| {
            super::is_dns_subdomain(d)
                && !n.is_empty()
                && n.len() <= 63
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        if f != FINALIZER && !qualified {
            causes.push((
                format!("spec.finalizers[{i}]"),
                format!(
                    "Invalid value: {f:?}: name is neither a standard finalizer name nor is it fully qualified"
                ),
            ));
        }
    }
    causes
}

/// `PUT namespaces/{name}/finalize`: replace the namespace's `spec.finalizers` (status and
/// server-owned metadata stay as stored). A terminating namespace left without finalizers is
/// removed.
pub async fn finalize(
    ctx: &Ctx,
    t: &ResourceTarget,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let req = crate::request::decode_body(headers, body)?;
    if req["metadata"]["name"]
        .as_str()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let causes = validate_finalizers(&req);
    if !causes.is_empty() {
        return Err(ApiError::invalid(t.def, name, causes));
    }
    for _ in 0..UPDATE_RETRIES {
        let (old, kv) = get_object(ctx, t.def, None, name).await?;
        if let Some(rv) = req["metadata"]["resourceVersion"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            if rv != kv.mod_revision.to_string() {
                return Err(ApiError::conflict(t.def, name));
            }
        }
        let mut new = old.clone();
        let finalizers = req["spec"]["finalizers"].clone();
        if finalizers.as_array().is_some_and(|a| !a.is_empty()) {
            new["spec"]["finalizers"] = finalizers;
        } else if let Some(spec) = new["spec"].as_object_mut() {
            spec.remove("finalizers");
        }
        for f in ["labels", "annotations"] {
            if !req["metadata"][f].is_null() {
                new["metadata"][f] = req["metadata"][f].clone();
            }
        }
        let done = !new["metadata"]["deletionTimestamp"].is_null()
            && !pending_spec_finalizers(&new)
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|a| a.is_empty());
        let res = if done {
            ctx.store
                .delete(&kv.key, Some(kv.mod_revision))
                .await
                .map(|_| kv.mod_revision)
        } else {
            ctx.store
                .update(&kv.key, &encode(&new)?, kv.mod_revision)
                .await
                .map(|nkv| nkv.mod_revision)
        };
        match res {
            Ok(rev) => {
                new["metadata"]["resourceVersion"] = json!(rev.to_string());
                return Ok(json_response(StatusCode::OK, &new));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(t.def, name)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(t.def, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_names_are_standard_or_qualified() {
        let ok = json!({"spec": {"finalizers": ["kubernetes", "e2e.example.com/fakeFinalizer"]}});
        assert!(validate_finalizers(&ok).is_empty());
        let bad = json!({"spec": {"finalizers": ["kubernetes", "fake"]}});
        assert_eq!(
            validate_finalizers(&bad),
            vec![(
                "spec.finalizers[1]".to_string(),
                "Invalid value: \"fake\": name is neither a standard finalizer name nor is it fully qualified".to_string()
            )]
        );
    }

    #[test]
    fn status_update_keeps_metadata_changes_and_stored_spec() {
        let old = json!({"metadata":{"name":"ns1","labels":{"a":"1"}},
            "spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}});
        let new = json!({"metadata":{"name":"ns1","labels":{"a":"1"},"annotations":{"patched":"yes"}},
            "spec":{"finalizers":[]},
            "status":{"phase":"Active","conditions":[{"type":"StatusUpdate","status":"True"}]}});
        let out = NamespaceStrategy.prepare_status_update(&old, new);
        assert_eq!(out["metadata"]["annotations"]["patched"], "yes");
        assert_eq!(out["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(out["status"]["conditions"][0]["type"], "StatusUpdate");
    }
}
