//! The garbage collector: background cascading deletion by ownerReferences (an object all of
//! whose owners are gone, by uid, is deleted; dangling references next to live owners are
//! dropped), plus the `orphan` and `foregroundDeletion` finalizers that the API server sets for
//! `propagationPolicy: Orphan` / `Foreground`.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{name, namespace, uid};
use crate::Controller;

pub const ORPHAN_FINALIZER: &str = "orphan";
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// Kinds the collector knows: (apiVersion, kind, collection over all namespaces, namespaced, plural path prefix).
struct Kind {
    api_version: &'static str,
    kind: &'static str,
    prefix: &'static str,
    plural: &'static str,
    namespaced: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        api_version: "apps/v1",
        kind: "Deployment",
        prefix: "/apis/apps/v1",
        plural: "deployments",
        namespaced: true,
    },
    Kind {
        api_version: "apps/v1",
        kind: "ReplicaSet",
        prefix: "/apis/apps/v1",
        plural: "replicasets",
        namespaced: true,
    },
    Kind {
        api_version: "v1",
        kind: "ReplicationController",
        prefix: "/api/v1",
        plural: "replicationcontrollers",
        namespaced: true,
    },
    Kind {
        api_version: "v1",
        kind: "Pod",
        prefix: "/api/v1",
        plural: "pods",
        namespaced: true,
    },
    Kind {
        api_version: "v1",
        kind: "Service",
        prefix: "/api/v1",
        plural: "services",
        namespaced: true,
    },
    Kind {
        api_version: "v1",
        kind: "ConfigMap",
        prefix: "/api/v1",
        plural: "configmaps",
        namespaced: true,
    },
    Kind {
        api_version: "v1",
        kind: "Secret",
        prefix: "/api/v1",
        plural: "secrets",
        namespaced: true,
    },
    Kind {
        api_version: "v1",
        kind: "Endpoints",
        prefix: "/api/v1",
        plural: "endpoints",
        namespaced: true,
    },
    Kind {
        api_version: "coordination.k8s.io/v1",
        kind: "Lease",
        prefix: "/apis/coordination.k8s.io/v1",
        plural: "leases",
        namespaced: true,
    },
    Kind {
        api_version: "v1",
        kind: "Node",
        prefix: "/api/v1",
        plural: "nodes",
        namespaced: false,
    },
];

fn kind_of(api_version: &str, kind: &str) -> Option<&'static Kind> {
    let group = |av: &str| {
        av.rsplit_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    KINDS
        .iter()
        .find(|k| k.kind == kind && group(k.api_version) == group(api_version))
}

/// A collection the collector lists: a built-in kind of [`KINDS`] or a custom resource served
/// now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Collection {
    kind: &'static str,
    prefix: String,
    plural: &'static str,
    namespaced: bool,
}

impl From<&'static Kind> for Collection {
    fn from(k: &'static Kind) -> Self {
        Collection {
            kind: k.kind,
            prefix: k.prefix.to_string(),
            plural: k.plural,
            namespaced: k.namespaced,
        }
    }
}

/// Every collection to list: the built-in kinds and each custom resource (one served version per
/// group and resource; objects are the same in every version).
fn collections() -> Vec<Collection> {
    let mut out: Vec<Collection> = KINDS.iter().map(Collection::from).collect();
    let mut seen: HashSet<(&'static str, &'static str)> = HashSet::new();
    for d in daas_apiserver::registry::customresource::served() {
        if seen.insert((d.group, d.plural)) {
            out.push(Collection {
                kind: d.kind,
                prefix: format!("/apis/{}", d.api_version()),
                plural: d.plural,
                namespaced: d.namespaced,
            });
        }
    }
    out
}

fn object_path(k: &Collection, ns: &str, n: &str) -> String {
    if k.namespaced {
        format!("{}/namespaces/{ns}/{}/{n}", k.prefix, k.plural)
    } else {
        format!("{}/{}/{n}", k.prefix, k.plural)
    }
}

/// The path of an owner that is a custom resource served now (its group and kind; the version
/// of the reference when served, else any served version of the kind).
fn custom_owner_path(api_version: &str, kind: &str, ns: &str, name: &str) -> Option<String> {
    let (group, version) = api_version.rsplit_once('/')?;
    let defs = daas_apiserver::resources::all();
    let candidates: Vec<_> = defs
        .into_iter()
        .filter(|d| d.group == group && d.kind == kind && !d.group.is_empty())
        .collect();
    let def = candidates
        .iter()
        .find(|d| d.version == version)
        .or_else(|| candidates.first())?;
    Some(if def.namespaced {
        format!(
            "/apis/{}/namespaces/{ns}/{}/{name}",
            def.api_version(),
            def.plural
        )
    } else {
        format!("/apis/{}/{}/{name}", def.api_version(), def.plural)
    })
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().any(|x| x == f))
        .unwrap_or(false)
}

fn refs_to(o: &Value, owner_uid: &str) -> bool {
    o["metadata"]["ownerReferences"]
        .as_array()
        .map(|a| a.iter().any(|r| r["uid"].as_str() == Some(owner_uid)))
        .unwrap_or(false)
}

pub struct GarbageCollector {
    client: LocalClient,
    informers: crate::informer::Informers,
}

impl GarbageCollector {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

struct Obj {
    kind: Collection,
    v: std::sync::Arc<Value>,
}

impl GarbageCollector {
    pub fn new(client: LocalClient) -> Self {
        GarbageCollector {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
        }
    }

    /// Is the referenced owner really gone? Checked live, so objects created after our list
    /// are never mistaken for missing.
    async fn owner_absent(
        &self,
        dependent_ns: &str,
        r: &Value,
        known: &HashSet<String>,
    ) -> Result<bool, ApiError> {
        let owner_uid = r["uid"].as_str().unwrap_or("");
        if known.contains(owner_uid) {
            return Ok(false);
        }
        let Some(owner_name) = r["name"].as_str().filter(|n| !n.is_empty()) else {
            return Ok(false);
        };
        let av = r["apiVersion"].as_str().unwrap_or("");
        let kind = r["kind"].as_str().unwrap_or("");
        let path = match kind_of(av, kind) {
            Some(k) => object_path(&Collection::from(k), dependent_ns, owner_name),
            // Custom resources: the kinds the API server serves now.
            None => match custom_owner_path(av, kind, dependent_ns, owner_name) {
                Some(p) => p,
                None => return Ok(false), // A kind we cannot look up: assume it exists.
            },
        };
        match self.client.get_opt(&path).await? {
            None => Ok(true),
            Some(o) => Ok(uid(&o) != owner_uid),
        }
    }

    /// Set `o`'s owner references to `keep`, on the version this pass read. `Ok(false)` when `o`
    /// changed since (409): the caller must not act as if the references were written.
    async fn patch_refs(&self, o: &Obj, keep: Vec<Value>) -> Result<bool, ApiError> {
        let patch = json!({"metadata": {"ownerReferences": keep, "resourceVersion": o.v["metadata"]["resourceVersion"]}});
        match self
            .client
            .merge_patch(&object_path(&o.kind, namespace(&o.v), name(&o.v)), &patch)
            .await
        {
            Ok(_) => Ok(true),
            // Gone: nothing left to orphan.
            Err(e) if e.code == 404 => Ok(true),
            Err(e) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn remove_finalizer(&self, o: &Obj, f: &str) -> Result<(), ApiError> {
        let keep: Vec<Value> = o.v["metadata"]["finalizers"]
            .as_array()
            .map(|a| a.iter().filter(|x| *x != f).cloned().collect())
            .unwrap_or_default();
        let patch = json!({"metadata": {"finalizers": keep, "resourceVersion": o.v["metadata"]["resourceVersion"]}});
        match self
            .client
            .merge_patch(&object_path(&o.kind, namespace(&o.v), name(&o.v)), &patch)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Controller for GarbageCollector {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        vec![(
            "/api/v1/pods".into(),
            crate::wakefilter::ownership_or_deletion(),
        )]
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "garbage-collector"
    }

    fn watches(&self) -> Vec<String> {
        vec![
            "/apis/apps/v1/deployments".into(),
            "/apis/apps/v1/replicasets".into(),
            "/api/v1/replicationcontrollers".into(),
            "/api/v1/pods".into(),
        ]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let mut objs: Vec<Obj> = Vec::new();
        let builtin = KINDS.len();
        for (i, k) in collections().into_iter().enumerate() {
            let path = format!("{}/{}", k.prefix, k.plural);
            // Built-in kinds from the shared caches; custom resources (which come and go)
            // listed directly.
            let listed = if i < builtin {
                self.informers.list(&path).await
            } else {
                self.client.list(&path).await.map(|items| {
                    crate::informer::Snapshot::new(
                        items.into_iter().map(std::sync::Arc::new).collect(),
                        0,
                    )
                })
            };
            let items = match listed {
                Ok(items) => items,
                // A custom resource whose CRD went away since: nothing to collect there.
                Err(e) if e.code == 404 => continue,
                Err(e) => return Err(e),
            };
            for v in items {
                objs.push(Obj { kind: k.clone(), v });
            }
        }
        let known: HashSet<String> = objs.iter().map(|o| uid(&o.v).to_string()).collect();
        let mut again = false;

        // Owners being deleted with a propagation policy that needs the collector.
        for owner in objs.iter().filter(|o| crate::util::is_deleting(&o.v)) {
            let owner_uid = uid(&owner.v);
            let same_scope =
                |d: &&Obj| !owner.kind.namespaced || namespace(&d.v) == namespace(&owner.v);
            let deps: Vec<&Obj> = objs
                .iter()
                .filter(same_scope)
                .filter(|d| refs_to(&d.v, owner_uid))
                .collect();
            if has_finalizer(&owner.v, ORPHAN_FINALIZER) {
                // The owner may go only once every dependent really lost its reference: a
                // dependent that changed since this pass read it (409) is retried on the next
                // pass, or, with the owner gone, it would be collected as an orphan's dependent.
                let mut all_orphaned = true;
                for d in &deps {
                    let keep: Vec<Value> = d.v["metadata"]["ownerReferences"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|r| r["uid"].as_str() != Some(owner_uid))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    all_orphaned &= self.patch_refs(d, keep).await?;
                }
                if !all_orphaned {
                    again = true;
                    continue;
                }
                tracing::info!(
                    kind = owner.kind.kind,
                    name = name(&owner.v),
                    orphaned = deps.len(),
                    "orphaned dependents"
                );
                self.remove_finalizer(owner, ORPHAN_FINALIZER).await?;
            } else if has_finalizer(&owner.v, FOREGROUND_FINALIZER) {
                if deps.is_empty() {
                    self.remove_finalizer(owner, FOREGROUND_FINALIZER).await?;
                } else {
                    again = true;
                    for d in deps.iter().filter(|d| !crate::util::is_deleting(&d.v)) {
                        self.client
                            .delete_ignore_missing(&object_path(
                                &d.kind,
                                namespace(&d.v),
                                name(&d.v),
                            ))
                            .await?;
                    }
                }
            }
        }

        // Dependents whose owners are gone.
        for d in &objs {
            let refs: Vec<Value> = d.v["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if refs.is_empty() || crate::util::is_deleting(&d.v) {
                continue;
            }
            let mut alive = Vec::new();
            for r in &refs {
                if !self.owner_absent(namespace(&d.v), r, &known).await? {
                    alive.push(r.clone());
                }
            }
            if alive.is_empty() {
                tracing::info!(
                    kind = d.kind.kind,
                    namespace = namespace(&d.v),
                    name = name(&d.v),
                    "deleting object whose owners are gone"
                );
                self.client
                    .delete_ignore_missing(&object_path(&d.kind, namespace(&d.v), name(&d.v)))
                    .await?;
                again = true;
            } else if alive.len() < refs.len() {
                // A conflict is retried on a later pass (this one's copy is stale).
                if !self.patch_refs(d, alive).await? {
                    again = true;
                }
            }
        }
        // Cascades take several passes (Deployment → ReplicaSets → Pods); run again soon.
        Ok(again.then(|| Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_resolve_by_group() {
        assert_eq!(
            kind_of("apps/v1", "ReplicaSet").map(|k| k.plural),
            Some("replicasets")
        );
        assert_eq!(kind_of("v1", "Pod").map(|k| k.plural), Some("pods"));
        assert_eq!(
            kind_of("v1", "ReplicationController").map(|k| k.plural),
            Some("replicationcontrollers")
        );
        assert!(kind_of("example.com/v1", "Pod").is_none());
        let node = Collection::from(kind_of("v1", "Node").unwrap());
        assert_eq!(object_path(&node, "ignored", "n1"), "/api/v1/nodes/n1");
        assert_eq!(
            object_path(
                &Collection::from(kind_of("apps/v1", "Deployment").unwrap()),
                "ns",
                "web"
            ),
            "/apis/apps/v1/namespaces/ns/deployments/web"
        );
    }
}
