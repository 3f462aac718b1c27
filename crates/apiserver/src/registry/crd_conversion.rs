//! Conversion webhooks of custom resources (`spec.conversion.strategy: Webhook`).
//!
//! Objects are stored in the CRD's storage version. A write in another version is converted to
//! the storage version before it is stored, and a stored object read through another version is
//! converted to it, by POSTing an `apiextensions.k8s.io/v1` ConversionReview to the webhook
//! (`clientConfig`: `url` or `service`, with `caBundle`). As upstream, the webhook may change
//! only labels and annotations of the metadata; the rest of it is kept from the original.

use std::time::Duration;

use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;
use crate::resources::ResourceDef;
use crate::webhook::{self, CallError};

/// How long a conversion webhook may take (upstream's default webhook timeout).
const TIMEOUT: Duration = Duration::from_secs(30);

/// The ConversionReview versions this server speaks.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// A custom resource's conversion webhook, from its CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// `spec.conversion.webhook.clientConfig`.
    pub client_config: Value,
    /// `spec.conversion.webhook.conversionReviewVersions`.
    pub review_versions: Vec<String>,
    /// `group/version` of the storage version.
    pub storage: String,
}

impl Webhook {
    /// The webhook of a CRD, when its conversion strategy is `Webhook`.
    pub fn from_crd(crd: &Value) -> Option<Webhook> {
        let spec = &crd["spec"];
        let conv = &spec["conversion"];
        if conv["strategy"] != "Webhook" {
            return None;
        }
        let group = spec["group"].as_str()?;
        let storage = spec["versions"]
            .as_array()?
            .iter()
            .find(|v| v["storage"] == true)?["name"]
            .as_str()?;
        Some(Webhook {
            client_config: conv["webhook"]["clientConfig"].clone(),
            review_versions: conv["webhook"]["conversionReviewVersions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            storage: format!("{group}/{}", storage),
        })
    }
}

/// Why a conversion failed.
#[derive(Debug, Error)]
pub enum ConversionError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(
        "no supported conversion review versions in {0:?}, this server speaks {REVIEW_VERSIONS:?}"
    )]
    NoReviewVersion(Vec<String>),
    #[error("conversion webhook response has no response field")]
    NoResponse,
    #[error("expected response uid {expected:?}, got {got:?}")]
    Uid { expected: String, got: String },
    #[error("{0}")]
    Failed(String),
    #[error("expected {expected} converted objects, got {got}")]
    Count { expected: usize, got: usize },
    #[error("invalid converted object: {0}")]
    Invalid(String),
}

/// The ConversionReview request converting `objects` to `desired`.
pub fn review(review_version: &str, uid: &str, desired: &str, objects: &[Value]) -> Value {
    json!({
        "apiVersion": format!("apiextensions.k8s.io/{review_version}"),
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
    })
}

/// The converted objects of a ConversionReview answer, checked against the originals: one per
/// object, in the desired version, of the same kind; metadata kept but for labels and
/// annotations.
pub fn converted(
    answer: &Value,
    uid: &str,
    desired: &str,
    originals: &[Value],
) -> Result<Vec<Value>, ConversionError> {
    let resp = answer
        .get("response")
        .filter(|r| r.is_object())
        .ok_or(ConversionError::NoResponse)?;
    let got = resp["uid"].as_str().unwrap_or("");
    if got != uid {
        return Err(ConversionError::Uid {
            expected: uid.into(),
            got: got.into(),
        });
    }
    if resp["result"]["status"] != "Success" {
        let msg = resp["result"]["message"].as_str().unwrap_or("");
        return Err(ConversionError::Failed(if msg.is_empty() {
            "conversion failed".into()
        } else {
            msg.into()
        }));
    }
    let objs = resp["convertedObjects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if objs.len() != originals.len() {
        return Err(ConversionError::Count {
            expected: originals.len(),
            got: objs.len(),
        });
    }
    objs.into_iter()
        .zip(originals)
        .map(|(mut c, o)| {
            if !c.is_object() {
                return Err(ConversionError::Invalid("not an object".into()));
            }
            if c["apiVersion"] != desired {
                return Err(ConversionError::Invalid(format!(
                    "invalid apiVersion {}, expected {desired:?}",
                    c["apiVersion"]
                )));
            }
            if c["kind"] != o["kind"] {
                return Err(ConversionError::Invalid(format!(
                    "invalid kind {}, expected {}",
                    c["kind"], o["kind"]
                )));
            }
            let mut md = o["metadata"].as_object().cloned().unwrap_or_else(Map::new);
            for f in ["labels", "annotations"] {
                match &c["metadata"][f] {
                    Value::Object(m) if m.values().all(|v| v.is_string()) => {
                        md.insert(f.into(), Value::Object(m.clone()));
                    }
                    Value::Null => {
                        md.remove(f);
                    }
                    other => {
                        return Err(ConversionError::Invalid(format!(
                            "metadata.{f}: {other} is not a string map"
                        )))
                    }
                }
            }
            c["metadata"] = Value::Object(md);
            Ok(c)
        })
        .collect()
}

/// Convert `objs` (of `def`'s kind) to `desired` (`group/version`) through `hook`.
async fn call(
    ctx: &Ctx,
    hook: &Webhook,
    objs: &[Value],
    desired: &str,
) -> Result<Vec<Value>, ConversionError> {
    let rv = hook
        .review_versions
        .iter()
        .find(|v| REVIEW_VERSIONS.contains(&v.as_str()))
        .ok_or_else(|| ConversionError::NoReviewVersion(hook.review_versions.clone()))?;
    let uid = uuid::Uuid::new_v4().to_string();
    // Boxed: resolving a service reads objects, whose reads may convert.
    let review = review(rv, &uid, desired, objs);
    let answer: Result<Value, CallError> = Box::pin(webhook::post_review(
        ctx,
        &hook.client_config,
        &review,
        TIMEOUT,
    ))
    .await;
    let answer = answer?;
    converted(&answer, &uid, desired, objs)
}

/// Convert `obj` to `desired` if it is in another version and the kind has a conversion
/// webhook; failures are upstream's 500 `conversion webhook for <gvk> failed: <why>`.
async fn convert(ctx: &Ctx, def: &ResourceDef, obj: &mut Value, desired: &str) -> ApiResult<()> {
    let Some(hook) = super::customresource::conversion_webhook(def) else {
        return Ok(());
    };
    let from = obj["apiVersion"].as_str().unwrap_or("").to_string();
    if from.is_empty() || from == desired {
        return Ok(());
    }
    let kind = obj["kind"].as_str().unwrap_or(def.kind).to_string();
    let rv = obj["metadata"]["resourceVersion"].clone();
    let mut out = call(ctx, &hook, std::slice::from_ref(obj), desired)
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "conversion webhook for {from}, Kind={kind} failed: {e}"
            ))
        })?;
    if let Some(mut c) = out.pop() {
        if !rv.is_null() {
            c["metadata"]["resourceVersion"] = rv;
        }
        *obj = c;
    }
    Ok(())
}

/// Convert a stored object to the version `def` serves (for reads).
pub async fn to_served(ctx: &Ctx, def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    convert(ctx, def, obj, &def.api_version()).await
}

/// Convert stored objects to the version `def` serves in one ConversionReview (lists and the
/// initial events of a watch), as upstream converts a list in one call. The objects needing no
/// conversion are left alone; a failure is the 500 of [`to_served`], naming the first object's
/// version.
pub async fn all_to_served(ctx: &Ctx, def: &ResourceDef, objs: &mut [Value]) -> ApiResult<()> {
    let Some(hook) = super::customresource::conversion_webhook(def) else {
        return Ok(());
    };
    let desired = def.api_version();
    let idx: Vec<usize> = objs
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o["apiVersion"]
                .as_str()
                .is_some_and(|v| !v.is_empty() && v != desired)
        })
        .map(|(i, _)| i)
        .collect();
    let Some(&first) = idx.first() else {
        return Ok(());
    };
    let from = objs[first]["apiVersion"].as_str().unwrap_or("").to_string();
    let kind = objs[first]["kind"].as_str().unwrap_or(def.kind).to_string();
    let originals: Vec<Value> = idx.iter().map(|&i| objs[i].clone()).collect();
    let out = call(ctx, &hook, &originals, &desired).await.map_err(|e| {
        ApiError::internal(format!(
            "conversion webhook for {from}, Kind={kind} failed: {e}"
        ))
    })?;
    for (i, mut c) in idx.into_iter().zip(out) {
        let rv = objs[i]["metadata"]["resourceVersion"].clone();
        if !rv.is_null() {
            c["metadata"]["resourceVersion"] = rv;
        }
        objs[i] = c;
    }
    Ok(())
}

/// Convert an object of `def`'s version to the storage version (for writes).
pub async fn to_storage(ctx: &Ctx, def: &ResourceDef, obj: &mut Value) -> ApiResult<()> {
    let Some(hook) = super::customresource::conversion_webhook(def) else {
        return Ok(());
    };
    convert(ctx, def, obj, &hook.storage).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget(v: &str) -> Value {
        json!({"apiVersion": format!("example.com/{v}"), "kind": "Widget",
               "metadata": {"name": "w", "uid": "u1", "labels": {"a": "1"}}, "spec": {"x": 1}})
    }

    #[test]
    fn webhook_from_crd_and_review() {
        let crd = json!({"spec": {"group": "example.com",
            "versions": [{"name": "v1", "storage": false}, {"name": "v2", "storage": true}],
            "conversion": {"strategy": "Webhook", "webhook": {
                "clientConfig": {"url": "https://h/convert"}, "conversionReviewVersions": ["v1"]}}}});
        let h = Webhook::from_crd(&crd).unwrap();
        assert_eq!(h.storage, "example.com/v2");
        assert_eq!(h.review_versions, vec!["v1"]);
        assert_eq!(h.client_config["url"], "https://h/convert");
        let mut none = crd.clone();
        none["spec"]["conversion"] = json!({"strategy": "None"});
        assert!(Webhook::from_crd(&none).is_none());
        let r = review("v1", "u", "example.com/v2", &[widget("v1")]);
        assert_eq!(r["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(r["request"]["desiredAPIVersion"], "example.com/v2");
    }

    #[test]
    fn converted_objects_are_checked_and_keep_their_metadata() {
        let orig = [widget("v1")];
        let mut c = widget("v2");
        c["metadata"] = json!({"name": "other", "labels": {"b": "2"}});
        let ok = json!({"response": {"uid": "u", "result": {"status": "Success"},
                        "convertedObjects": [c]}});
        let out = converted(&ok, "u", "example.com/v2", &orig).unwrap();
        assert_eq!(out[0]["metadata"]["name"], "w");
        assert_eq!(out[0]["metadata"]["uid"], "u1");
        assert_eq!(out[0]["metadata"]["labels"], json!({"b": "2"}));
        assert!(matches!(
            converted(&ok, "other", "example.com/v2", &orig),
            Err(ConversionError::Uid { .. })
        ));
        assert!(matches!(
            converted(&ok, "u", "example.com/v3", &orig),
            Err(ConversionError::Invalid(_))
        ));
        let failed = json!({"response": {"uid": "u",
            "result": {"status": "Failure", "message": "nope"}}});
        let e = converted(&failed, "u", "example.com/v2", &orig).unwrap_err();
        assert_eq!(e.to_string(), "nope");
        let short = json!({"response": {"uid": "u", "result": {"status": "Success"},
                           "convertedObjects": []}});
        assert!(matches!(
            converted(&short, "u", "example.com/v2", &orig),
            Err(ConversionError::Count {
                expected: 1,
                got: 0
            })
        ));
        assert!(matches!(
            converted(&json!({}), "u", "example.com/v2", &orig),
            Err(ConversionError::NoResponse)
        ));
    }
}
