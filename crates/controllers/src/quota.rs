//! The resource quota controller (pkg/controller/resourcequota): keeps every ResourceQuota's
//! `status.hard` equal to its `spec.hard` and `status.used` equal to what the objects of its
//! namespace use (evaluated by [`daas_apiserver::quota`], which the quota admission shares).
//! It is woken by changes of quotas and of the kinds they count, so status follows within a
//! debounce interval rather than a resync period.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use daas_apimachinery::quantity::value_milli;
use daas_apiserver::quota::{kind_of, usage_of, used_json};
use daas_apiserver::resources::{self, ResourceDef};
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{name, namespace, path, uid, CORE};
use crate::Controller;

pub struct QuotaController {
    client: LocalClient,
    informers: crate::informer::Informers,
    /// Lowered usage per quota (by uid) seen in one pass and not yet written: admission charges
    /// a quota just before the object is stored, so a pass between the two sees usage that seems
    /// released. A decrease is written only when the next pass, [`CONFIRM`] later, computes it
    /// again.
    pending: HashMap<String, Value>,
    /// Per quota (by uid): the `spec.hard` and usage of the last pass that synced it, and when.
    /// While neither changed, the status is left alone (as upstream, which recalculates on
    /// spec changes and object changes, not on status writes by others) until [`FULL_RESYNC`].
    synced: HashMap<String, (Value, Value, Instant)>,
}

impl QuotaController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

/// How long a quota's status may differ from the computed one without any change of its spec
/// or its namespace's objects before it is rewritten anyway.
pub const FULL_RESYNC: Duration = Duration::from_secs(60);

/// How long a computed decrease of usage must stand before it is written.
pub const CONFIRM: Duration = Duration::from_millis(250);

impl QuotaController {
    pub fn new(client: LocalClient) -> Self {
        QuotaController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
            pending: HashMap::new(),
            synced: HashMap::new(),
        }
    }
}

/// Does `want` lower any resource of `have` (both `status.used` maps)?
fn lowers(have: &Value, want: &Value) -> bool {
    want.as_object().into_iter().flatten().any(|(k, w)| {
        match (value_milli(&have[k]), value_milli(w)) {
            (Some(h), Some(w)) => w < h,
            _ => false,
        }
    })
}

/// The API path prefix (`/api/v1`, `/apis/<group>/<version>`) of a kind.
fn api_prefix(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        format!("/api/{}", def.version)
    } else {
        format!("/apis/{}/{}", def.group, def.version)
    }
}

/// Kinds whose changes can alter quota usage: stored kinds that can be watched (not the
/// create-only reviews), high-churn bookkeeping kinds excluded.
fn counted_kinds() -> impl Iterator<Item = &'static ResourceDef> {
    resources::RESOURCES.iter().filter(|d| {
        d.namespaced
            && d.strategy.verbs().contains(&"watch")
            && !["events", "leases", "endpoints", "endpointslices"].contains(&d.plural)
    })
}

/// The status a quota should have for `used` (formatted like its `spec.hard`).
pub fn desired_status(quota: &Value, used: &Value) -> Value {
    json!({"hard": quota["spec"]["hard"].clone(), "used": used})
}

impl QuotaController {
    /// Usage of every quota of namespace `ns`; each kind is listed once. Returns whether a
    /// decrease awaits confirmation.
    async fn sync_namespace(&mut self, ns: &str, quotas: &[Value]) -> Result<bool, ApiError> {
        let mut waiting = false;
        let mut kinds: BTreeSet<(String, String)> = BTreeSet::new();
        for q in quotas {
            for k in q["spec"]["hard"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|e| e.0)
            {
                if let Some(kind) = kind_of(k) {
                    kinds.insert(kind);
                }
            }
        }
        let mut objects: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for (g, p) in kinds {
            let Some(def) = resources::RESOURCES
                .iter()
                .find(|d| d.group == g && d.plural == p && d.namespaced)
            else {
                // Not served here: nothing of it can exist, so its usage is zero.
                continue;
            };
            let items = self
                .client
                .list(&path(&api_prefix(def), ns, def.plural, None))
                .await?;
            objects.insert((g, p), items);
        }
        for q in quotas {
            let all = objects
                .iter()
                .flat_map(|((g, p), os)| os.iter().map(move |o| (g.as_str(), p.as_str(), o)));
            let used = used_json(q, &usage_of(q, all));
            let want = desired_status(q, &used);
            let unchanged = self.synced.get(uid(q)).is_some_and(|(hard, u, at)| {
                *hard == q["spec"]["hard"] && *u == used && at.elapsed() < FULL_RESYNC
            });
            if unchanged {
                continue;
            }
            if same_status(&q["status"], &want) {
                self.synced.insert(
                    uid(q).to_string(),
                    (q["spec"]["hard"].clone(), used, Instant::now()),
                );
                self.pending.remove(uid(q));
                continue;
            }
            if lowers(&q["status"]["used"], &used) && self.pending.get(uid(q)) != Some(&used) {
                self.pending.insert(uid(q).to_string(), used);
                waiting = true;
                continue;
            }
            self.pending.remove(uid(q));
            let mut nq = q.clone();
            nq["status"] = want;
            let p = path(CORE, ns, "resourcequotas", Some(name(q))) + "/status";
            match self.client.update(&p, &nq).await {
                Ok(_) => {
                    self.synced.insert(
                        uid(q).to_string(),
                        (q["spec"]["hard"].clone(), used, Instant::now()),
                    );
                }
                // Changed or gone meanwhile: the watch brings the next pass.
                Err(e) if e.code == 409 || e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(waiting)
    }
}

/// Is the stored status already the desired one? (Quantities are written canonically, so
/// textual equality is value equality.)
fn same_status(have: &Value, want: &Value) -> bool {
    have["hard"] == want["hard"] && have["used"] == want["used"]
}

#[async_trait]
impl Controller for QuotaController {
    fn wake_filters(&self) -> Vec<(String, crate::wakefilter::WakeFilter)> {
        // An object counts only where a ResourceQuota is (a new or deleted quota itself always
        // wakes the controller).
        let quotas = format!("{CORE}/resourcequotas");
        self.watches()
            .into_iter()
            .filter(|p| *p != quotas)
            .map(|p| {
                let f = crate::wakefilter::in_namespaces_with(&self.informers, &quotas);
                (p, f)
            })
            .collect()
    }

    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "resourcequota"
    }

    fn watches(&self) -> Vec<String> {
        counted_kinds()
            .map(|d| format!("{}/{}", api_prefix(d), d.plural))
            .collect()
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let quotas = self
            .informers
            .list(&format!("{CORE}/resourcequotas"))
            .await?;
        let mut by_ns: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for q in quotas {
            by_ns
                .entry(namespace(&q).to_string())
                .or_default()
                .push((*q).clone());
        }
        let live: BTreeSet<String> = by_ns
            .values()
            .flatten()
            .map(|q| uid(q).to_string())
            .collect();
        self.pending.retain(|u, _| live.contains(u));
        self.synced.retain(|u, _| live.contains(u));
        let mut waiting = false;
        for (ns, qs) in by_ns {
            waiting |= self.sync_namespace(&ns, &qs).await?;
        }
        Ok(waiting.then_some(CONFIRM))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_comparison_is_exact() {
        let a = json!({"hard": {"pods": "2"}, "used": {"pods": "1"}});
        assert!(same_status(&a, &a.clone()));
        assert!(!same_status(
            &a,
            &json!({"hard": {"pods": "2"}, "used": {"pods": "0"}})
        ));
        assert!(!same_status(&json!(null), &a));
        assert!(counted_kinds().any(|d| d.plural == "pods"));
        assert!(!counted_kinds().any(|d| d.plural == "events"));
        // Create-only reviews cannot be watched: watching them failed every second.
        assert!(!counted_kinds().any(|d| d.plural == "localsubjectaccessreviews"));
        assert!(counted_kinds().all(|d| d.strategy.verbs().contains(&"watch")));
        assert!(lowers(&json!({"pods": "2"}), &json!({"pods": "1"})));
        assert!(!lowers(
            &json!({"pods": "1"}),
            &json!({"pods": "2", "cpu": "1"})
        ));
    }
}
