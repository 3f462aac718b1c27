//! ControllerRevision history shared by the StatefulSet and DaemonSet controllers
//! (pkg/controller/history): each distinct pod template of a workload is kept as a
//! ControllerRevision named `<owner>-<hash>` holding the strategic merge patch that restores it
//! (`{"spec":{"template":{...,"$patch":"replace"}}}`, which `kubectl rollout undo` applies), with
//! an increasing `revision` number. Re-applying an older template reuses its revision and bumps
//! its number, as upstream does.

use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{self, canonical_json, controlled_by, name, namespace, uid, APPS};

/// Label upstream puts on ControllerRevisions with their hash.
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// Label on pods with the revision they were made from.
pub const POD_REVISION_LABEL: &str = "controller-revision-hash";

/// The revision data for a workload's current template.
pub fn revision_data(owner: &Value) -> Value {
    let mut tpl = owner["spec"]["template"].clone();
    if let Some(m) = tpl.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": tpl}})
}

/// The pod template a revision restores.
pub fn revision_template(rev: &Value) -> Value {
    let mut tpl = rev["data"]["spec"]["template"].clone();
    if let Some(m) = tpl.as_object_mut() {
        m.remove("$patch");
    }
    tpl
}

/// Upstream HashControllerRevision: FNV-32a over the data (and the collision count), spelled in
/// the safe alphabet.
pub fn hash(data: &Value, collision_count: i64) -> String {
    let mut bytes = canonical_json(data);
    if collision_count > 0 {
        bytes.push_str(&collision_count.to_string());
    }
    util::safe_encode(&util::fnv32a(bytes.as_bytes()).to_string())
}

/// `<prefix>-<hash>`, the prefix cut so the name stays a valid subdomain (upstream
/// ControllerRevisionName).
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let p: String = prefix.chars().take(223).collect();
    format!("{p}-{hash}")
}

/// The ControllerRevisions controlled by `owner`, oldest revision first.
pub fn owned<'a>(owner: &Value, all: &'a [Value]) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = all
        .iter()
        .filter(|r| controlled_by(r, uid(owner)) && namespace(r) == namespace(owner))
        .collect();
    out.sort_by_key(|r| (r["revision"].as_i64().unwrap_or(0), name(r).to_string()));
    out
}

/// What [`ensure_update_revision`] settled on.
#[derive(Debug, Clone)]
pub struct UpdateRevision {
    pub revision: Value,
    pub hash: String,
    pub collision_count: i64,
}

/// Find or create the revision of `owner`'s current template (upstream getStatefulSetRevisions /
/// constructHistory): an equal revision is reused (renumbered to be the newest when it is not),
/// otherwise a new one is created; a name collision with different data bumps the collision count.
pub async fn ensure_update_revision(
    client: &LocalClient,
    owner: &Value,
    api_version: &str,
    kind: &str,
    revisions: &[&Value],
) -> Result<UpdateRevision, ApiError> {
    let data = revision_data(owner);
    let mut collision_count = owner["status"]["collisionCount"].as_i64().unwrap_or(0);
    let max = revisions
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .max()
        .unwrap_or(0);
    let ns = namespace(owner);
    if let Some(eq) = revisions
        .iter()
        .rev()
        .find(|r| canonical_json(&r["data"]) == canonical_json(&data))
    {
        let h = eq["metadata"]["labels"][REVISION_HASH_LABEL]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| hash(&data, collision_count));
        if eq["revision"].as_i64().unwrap_or(0) == max {
            return Ok(UpdateRevision {
                revision: (*eq).clone(),
                hash: h,
                collision_count,
            });
        }
        let p = util::path(APPS, ns, "controllerrevisions", Some(name(eq)));
        let updated = client
            .merge_patch(&p, &json!({"revision": max + 1}))
            .await?;
        return Ok(UpdateRevision {
            revision: updated,
            hash: h,
            collision_count,
        });
    }
    loop {
        let h = hash(&data, collision_count);
        let mut labels = owner["spec"]["template"]["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels[REVISION_HASH_LABEL] = json!(h);
        let rev = json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": revision_name(name(owner), &h),
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [util::owner_ref(owner, api_version, kind)],
            },
            "data": data,
            "revision": max + 1,
        });
        match client
            .create(&util::path(APPS, ns, "controllerrevisions", None), &rev)
            .await
        {
            Ok(created) => {
                return Ok(UpdateRevision {
                    revision: created,
                    hash: h,
                    collision_count,
                })
            }
            Err(e) if e.code == 409 => {
                let p = util::path(
                    APPS,
                    ns,
                    "controllerrevisions",
                    Some(&revision_name(name(owner), &h)),
                );
                let existing = client.get(&p).await?;
                if controlled_by(&existing, uid(owner))
                    && canonical_json(&existing["data"]) == canonical_json(&data)
                {
                    let updated = client
                        .merge_patch(&p, &json!({"revision": max + 1}))
                        .await?;
                    return Ok(UpdateRevision {
                        revision: updated,
                        hash: h,
                        collision_count,
                    });
                }
                collision_count += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Delete the oldest revisions beyond `spec.revisionHistoryLimit`, never one in `live` (names).
pub async fn truncate(
    client: &LocalClient,
    owner: &Value,
    revisions: &[&Value],
    live: &[&str],
) -> Result<(), ApiError> {
    let limit = owner["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let old: Vec<&&Value> = revisions
        .iter()
        .filter(|r| !live.contains(&name(r)))
        .collect();
    if old.len() <= limit {
        return Ok(());
    }
    for r in &old[..old.len() - limit] {
        client
            .delete_ignore_missing(&util::path(
                APPS,
                namespace(r),
                "controllerrevisions",
                Some(name(r)),
            ))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_the_template_and_hash_is_stable() {
        let owner = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let d = revision_data(&owner);
        assert_eq!(d["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            revision_template(&json!({"data": d})),
            owner["spec"]["template"]
        );
        assert_eq!(hash(&d, 0), hash(&d.clone(), 0));
        assert_ne!(hash(&d, 0), hash(&d, 1));
        assert!(hash(&d, 0)
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
    }
}
