//! Namespaces (pkg/registry/core/namespace/strategy.go).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use daas_store::{KeyValue, StoreError};
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{decode_as, name_and_age, Column, NameRule, Strategy, AGE, NAME};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{encode, now_rfc3339, Ctx};
use crate::resources;
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::s;
use crate::typed::{default_key, obj_mut};

#[derive(Debug)]
pub struct NamespaceStrategy;

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
    subresources: &[Status],
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
        default_key(obj_mut(obj, "spec"), "finalizers", json!(["kubernetes"]));
        default_key(obj_mut(obj, "status"), "phase", json!("Active"));
    }

    async fn after_create(&self, ctx: &Ctx, obj: &Value) {
        if let Some(ns) = obj["metadata"]["name"].as_str() {
            ensure_default_service_account(ctx, ns).await;
        }
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

    /// Terminating first, so that nothing (e.g. the root CA publisher) can create content in the
    /// namespace while it is being emptied; then the contents go.
    async fn before_delete(&self, ctx: &Ctx, obj: &Value, kv: KeyValue) -> ApiResult<KeyValue> {
        let Some(ns) = obj["metadata"]["name"].as_str() else {
            return Ok(kv);
        };
        let kv = if obj["metadata"]["deletionTimestamp"].is_null() {
            let mut marked = obj.clone();
            marked["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            marked["status"]["phase"] = json!("Terminating");
            match ctx
                .store
                .update(&kv.key, &encode(&marked)?, kv.mod_revision)
                .await
            {
                Ok(nkv) => nkv,
                Err(StoreError::Conflict { .. }) => return Err(ApiError::conflict(&RESOURCE, ns)),
                Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(&RESOURCE, ns)),
                Err(e) => return Err(e.into()),
            }
        } else {
            kv
        };
        delete_namespace_contents(ctx, ns).await?;
        Ok(kv)
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

/// The namespace controller's job, done inline: remove everything inside a namespace.
async fn delete_namespace_contents(ctx: &Ctx, ns: &str) -> ApiResult<()> {
    for def in resources::all().into_iter().filter(|d| d.namespaced) {
        let res = ctx.store.list(&def.prefix(Some(ns))).await?;
        for kv in res.items {
            match ctx.store.delete(&kv.key, None).await {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// The service account controller's job: every namespace has a `default` ServiceAccount.
pub async fn ensure_default_service_account(ctx: &Ctx, ns: &str) {
    let def = &resources::SERVICE_ACCOUNTS;
    let sa = json!({"apiVersion": "v1", "kind": def.kind,
        "metadata": {"name": "default", "namespace": ns, "uid": uuid::Uuid::new_v4().to_string(),
                     "creationTimestamp": now_rfc3339()}});
    if let Ok(bytes) = encode(&sa) {
        match ctx
            .store
            .create(&def.key(Some(ns), "default"), &bytes)
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => {
                tracing::warn!(namespace = ns, error = %e, "could not create default service account")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
