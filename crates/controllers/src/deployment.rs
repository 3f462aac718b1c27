//! The Deployment controller: one ReplicaSet per pod template (`<deploy>-<pod-template-hash>`),
//! rolling updates within maxSurge/maxUnavailable, Recreate, scaling, revision annotations,
//! history cleanup and the status/conditions `kubectl rollout status` reads.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use daas_apimachinery::selector::LabelSelector;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::util::{
    self, best_effort, canonical_json, controlled_by, controller_ref, name, namespace, uid, APPS,
    CORE,
};
use crate::Controller;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const COMPONENT: &str = "deployment-controller";

fn strip_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            if let Some(md) = t["metadata"].as_object_mut() {
                md.remove("labels");
            }
        }
    }
    t
}

/// The `pod-template-hash` of a pod template: FNV-32a over its canonical JSON (plus the
/// collision count), spelled in the consonant/digit alphabet. Stable across restarts.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut data = canonical_json(&strip_hash(template));
    if let Some(c) = collision_count.filter(|c| *c > 0) {
        data.push_str(&c.to_string());
    }
    util::safe_encode(&util::fnv32a(data.as_bytes()).to_string())
}

pub fn templates_equal_ignoring_hash(a: &Value, b: &Value) -> bool {
    canonical_json(&strip_hash(a)) == canonical_json(&strip_hash(b))
}

/// An int-or-percent value scaled against `total` (percentages round up or down).
pub fn int_or_percent(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            if let Some(p) = s.strip_suffix('%') {
                let p: i64 = p.trim().parse().ok()?;
                let x = p * total;
                Some(if round_up {
                    (x + 99).div_euclid(100)
                } else {
                    x.div_euclid(100)
                })
            } else {
                s.trim().parse().ok()
            }
        }
        _ => None,
    }
}

/// maxSurge (rounded up) and maxUnavailable (rounded down) for `replicas`; both zero would
/// deadlock a rollout, so maxUnavailable becomes 1 then, like Kubernetes.
pub fn resolve_fenceposts(max_surge: &Value, max_unavailable: &Value, replicas: i64) -> (i64, i64) {
    let default = json!("25%");
    let surge = int_or_percent(
        if max_surge.is_null() {
            &default
        } else {
            max_surge
        },
        replicas,
        true,
    )
    .unwrap_or(0)
    .max(0);
    let unavailable = int_or_percent(
        if max_unavailable.is_null() {
            &default
        } else {
            max_unavailable
        },
        replicas,
        false,
    )
    .unwrap_or(0)
    .max(0);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// Replicas for the new ReplicaSet during a rolling update.
pub fn rolling_new_replicas(replicas: i64, surge: i64, all_spec_total: i64, new_spec: i64) -> i64 {
    let max_total = replicas + surge;
    if all_spec_total >= max_total {
        return new_spec.min(replicas.max(0));
    }
    let up = (max_total - all_spec_total).min(replicas - new_spec);
    (new_spec + up).max(0)
}

/// Scale-down of old ReplicaSets during a rolling update. `olds` are (spec replicas, available),
/// oldest first; returns their new spec replicas.
pub fn rolling_scale_down(
    replicas: i64,
    max_unavailable: i64,
    olds: &[(i64, i64)],
    new_spec: i64,
    new_available: i64,
) -> Vec<i64> {
    let mut specs: Vec<i64> = olds.iter().map(|(s, _)| *s).collect();
    let all: i64 = specs.iter().sum::<i64>() + new_spec;
    let min_available = replicas - max_unavailable.min(replicas);
    let new_unavailable = (new_spec - new_available).max(0);
    let max_scaled_down = all - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return specs;
    }
    // First drop old pods that are not available anyway.
    let mut cleaned = 0;
    for (i, (spec, avail)) in olds.iter().enumerate() {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = (spec - avail).max(0);
        if unhealthy == 0 {
            continue;
        }
        let n = unhealthy.min(max_scaled_down - cleaned);
        specs[i] -= n;
        cleaned += n;
    }
    // Then available ones, as long as minAvailable stays satisfied.
    let available: i64 = olds.iter().map(|(_, a)| *a).sum::<i64>() + new_available;
    if available <= min_available {
        return specs;
    }
    let mut left = (available - min_available).min(max_scaled_down - cleaned);
    for s in specs.iter_mut() {
        if left <= 0 {
            break;
        }
        let n = (*s).min(left);
        *s -= n;
        left -= n;
    }
    specs
}

/// One active ReplicaSet as proportional scaling sees it: its spec replicas and the
/// `max-replicas` annotation (the Deployment's replicas + maxSurge when it was last scaled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProportionInput {
    pub spec: i64,
    pub max_replicas: Option<i64>,
}

/// How many replicas one ReplicaSet gets or gives up when a rolling Deployment is resized in the
/// middle of a rollout: its share of the Deployment's new maximum size, by the ratio of its size
/// to the maximum it was last scaled for, never more than what is left to hand out.
fn proportion(
    rs: ProportionInput,
    d_replicas: i64,
    max_surge: i64,
    d_status_replicas: i64,
    to_add: i64,
    added: i64,
) -> i64 {
    if rs.spec == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if d_replicas == 0 {
        -rs.spec
    } else {
        let max_now = d_replicas + max_surge;
        let before = match rs.max_replicas.filter(|m| *m > 0) {
            Some(m) => m,
            // Scaled by hand (no annotation): the Deployment's current size is the best guess.
            None if d_status_replicas > 0 => d_status_replicas,
            None => max_now,
        };
        let scaled = (rs.spec as f64) * (max_now as f64) / (before as f64);
        scaled.round() as i64 - rs.spec
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// New sizes for the active ReplicaSets of a rolling Deployment resized during a rollout.
/// `rss` are the active ReplicaSets oldest first; the result is in the same order. The
/// difference between the allowed size (replicas + maxSurge) and the current total is spread
/// proportionally to their sizes, larger ones first (newer first among equals when growing,
/// older first when shrinking); the rounding leftover goes to the first of that order.
pub fn proportional_targets(
    d_replicas: i64,
    max_surge: i64,
    d_status_replicas: i64,
    rss: &[ProportionInput],
) -> Vec<i64> {
    let mut targets: Vec<i64> = rss.iter().map(|r| r.spec).collect();
    if rss.is_empty() {
        return targets;
    }
    let total: i64 = targets.iter().sum();
    let allowed = if d_replicas > 0 {
        d_replicas + max_surge
    } else {
        0
    };
    let to_add = allowed - total;
    if to_add == 0 {
        return targets;
    }
    let mut order: Vec<usize> = (0..rss.len()).collect();
    if to_add > 0 {
        order.sort_by(|&a, &b| rss[b].spec.cmp(&rss[a].spec).then(b.cmp(&a)));
    } else {
        order.sort_by(|&a, &b| rss[b].spec.cmp(&rss[a].spec).then(a.cmp(&b)));
    }
    let mut added = 0;
    for &i in &order {
        let p = proportion(
            rss[i],
            d_replicas,
            max_surge,
            d_status_replicas,
            to_add,
            added,
        );
        targets[i] += p;
        added += p;
    }
    let first = order[0];
    targets[first] = (targets[first] + to_add - added).max(0);
    targets
}

fn annotation_i64(o: &Value, key: &str) -> Option<i64> {
    o["metadata"]["annotations"][key]
        .as_str()
        .and_then(|s| s.trim().parse().ok())
}

fn revision_of(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(o: &Value) -> i64 {
    o["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn st(o: &Value, f: &str) -> i64 {
    o["status"][f].as_i64().unwrap_or(0)
}

/// Replace or add a Deployment condition, keeping lastTransitionTime when the status is unchanged
/// and leaving an identical condition untouched (unless `touch`).
fn set_condition(
    conds: &mut Vec<Value>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    touch: bool,
) {
    let now = util::now_rfc3339();
    if let Some(c) = conds.iter_mut().find(|c| c["type"] == ty) {
        if c["status"] == status && c["reason"] == reason && c["message"] == message && !touch {
            return;
        }
        let transition = if c["status"] == status {
            c["lastTransitionTime"].clone()
        } else {
            json!(now)
        };
        *c = json!({"type": ty, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": transition});
        return;
    }
    conds.push(
        json!({"type": ty, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now}),
    );
}

pub struct DeploymentController {
    client: LocalClient,
    informers: crate::informer::Informers,
}

impl DeploymentController {
    /// Read the collections the shared caches serve from them (and write through their client,
    /// so reads see this controller's own writes).
    pub fn with_informers(mut self, informers: crate::informer::Informers) -> Self {
        self.client = informers.client();
        self.informers = informers;
        self
    }
}

struct Rs {
    obj: Value,
    spec: i64,
}

impl DeploymentController {
    pub fn new(client: LocalClient) -> Self {
        DeploymentController {
            informers: crate::informer::Informers::direct(client.clone()),
            client,
        }
    }

    /// Set a ReplicaSet's size, and its desired/max-replicas annotations to the Deployment's
    /// current replicas (and + maxSurge), so a later resize of the Deployment can be told apart
    /// and spread proportionally. Writes nothing when both are already right.
    async fn scale(&self, d: &Value, rs: &mut Rs, to: i64, max_surge: i64) -> Result<(), ApiError> {
        let d_replicas = spec_replicas(d);
        let annotations_right = annotation_i64(&rs.obj, DESIRED_REPLICAS) == Some(d_replicas)
            && annotation_i64(&rs.obj, MAX_REPLICAS) == Some(d_replicas + max_surge);
        if rs.spec == to && (annotations_right || to == 0) {
            return Ok(());
        }
        let p = util::path(APPS, namespace(&rs.obj), "replicasets", Some(name(&rs.obj)));
        let patch = json!({"metadata": {"annotations": {
                DESIRED_REPLICAS: d_replicas.to_string(), MAX_REPLICAS: (d_replicas + max_surge).to_string()}},
            "spec": {"replicas": to}});
        rs.obj = self.client.merge_patch(&p, &patch).await?;
        if rs.spec == to {
            return Ok(());
        }
        let dir = if to > rs.spec { "up" } else { "down" };
        let msg = format!(
            "Scaled {dir} replica set {} from {} to {to}",
            name(&rs.obj),
            rs.spec
        );
        best_effort(
            "event",
            util::record_event(
                &self.client,
                d,
                "Normal",
                "ScalingReplicaSet",
                &msg,
                COMPONENT,
            )
            .await,
        )
        .await;
        rs.spec = to;
        Ok(())
    }

    /// The Deployment was resized (or is paused): bring its ReplicaSets to the new size without
    /// advancing a rollout. One active ReplicaSet (or none: the newest) takes the whole size; a
    /// saturated new ReplicaSet makes the old ones go to zero; otherwise, for a rolling update,
    /// the difference is spread proportionally over the active ReplicaSets.
    async fn scale_to_size(
        &self,
        d: &Value,
        new_rs: &mut Option<Rs>,
        olds: &mut [Rs],
        surge: i64,
        rolling: bool,
    ) -> Result<(), ApiError> {
        let replicas = spec_replicas(d).max(0);
        let new_uid = new_rs.as_ref().map(|n| uid(&n.obj).to_string());
        // All ReplicaSets, oldest first.
        let mut all: Vec<&mut Rs> = olds.iter_mut().chain(new_rs.iter_mut()).collect();
        all.sort_by(|a, b| {
            a.obj["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&b.obj["metadata"]["creationTimestamp"].as_str())
                .then_with(|| name(&a.obj).cmp(name(&b.obj)))
        });
        let is_new = |r: &Rs| Some(uid(&r.obj)) == new_uid.as_deref();
        let active = all.iter().filter(|r| r.spec > 0).count();
        if active <= 1 {
            let pick = if active == 1 {
                all.iter().position(|r| r.spec > 0)
            } else {
                all.iter()
                    .position(|r| is_new(r))
                    .or_else(|| all.len().checked_sub(1))
            };
            if let Some(i) = pick {
                self.scale(d, all[i], replicas, surge).await?;
            }
            return Ok(());
        }
        let saturated = all.iter().any(|r| {
            is_new(r)
                && annotation_i64(&r.obj, DESIRED_REPLICAS) == Some(replicas)
                && r.spec == replicas
                && st(&r.obj, "availableReplicas") == replicas
        });
        if saturated {
            for r in all.into_iter().filter(|r| !is_new(r) && r.spec > 0) {
                self.scale(d, r, 0, surge).await?;
            }
            return Ok(());
        }
        if !rolling {
            return Ok(());
        }
        let mut active: Vec<&mut Rs> = all.into_iter().filter(|r| r.spec > 0).collect();
        let inputs: Vec<ProportionInput> = active
            .iter()
            .map(|r| ProportionInput {
                spec: r.spec,
                max_replicas: annotation_i64(&r.obj, MAX_REPLICAS),
            })
            .collect();
        let targets = proportional_targets(replicas, surge, st(d, "replicas"), &inputs);
        for (r, t) in active.iter_mut().zip(targets) {
            self.scale(d, r, t, surge).await?;
        }
        Ok(())
    }

    /// Create the ReplicaSet for the current template. Ok(None) on a hash collision (the
    /// collision count was bumped; the next pass uses a new name).
    async fn create_new_rs(
        &self,
        d: &Value,
        replicas: i64,
        revision: i64,
        surge: i64,
    ) -> Result<Option<Value>, ApiError> {
        let ns = namespace(d);
        let collision = d["status"]["collisionCount"].as_i64();
        let tpl = &d["spec"]["template"];
        let hash = template_hash(tpl, collision);
        let mut template = tpl.clone();
        template["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let mut annotations = json!({
            REVISION: revision.to_string(),
            DESIRED_REPLICAS: spec_replicas(d).to_string(),
            MAX_REPLICAS: (spec_replicas(d) + surge).to_string(),
        });
        if let Some(cc) = d["metadata"]["annotations"][CHANGE_CAUSE].as_str() {
            annotations[CHANGE_CAUSE] = json!(cc);
        }
        let rs_name = format!("{}-{hash}", name(d));
        let rs = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": ns, "labels": template["metadata"]["labels"].clone(),
                "annotations": annotations, "ownerReferences": [util::owner_ref(d, "apps/v1", "Deployment")]},
            "spec": {"replicas": replicas, "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector, "template": template},
        });
        match self
            .client
            .create(&util::path(APPS, ns, "replicasets", None), &rs)
            .await
        {
            Ok(created) => {
                let msg = format!("Scaled up replica set {rs_name} from 0 to {replicas}");
                best_effort(
                    "event",
                    util::record_event(
                        &self.client,
                        d,
                        "Normal",
                        "ScalingReplicaSet",
                        &msg,
                        COMPONENT,
                    )
                    .await,
                )
                .await;
                Ok(Some(created))
            }
            Err(e) if e.code == 409 => {
                let existing = self
                    .client
                    .get_opt(&util::path(APPS, ns, "replicasets", Some(&rs_name)))
                    .await?;
                if let Some(ex) = existing {
                    let same = ex["metadata"]["labels"][HASH_LABEL].as_str() == Some(hash.as_str())
                        || templates_equal_ignoring_hash(&ex["spec"]["template"], tpl);
                    if controlled_by(&ex, uid(d)) && same {
                        return Ok(Some(ex));
                    }
                }
                let next = collision.unwrap_or(0) + 1;
                tracing::info!(deployment = name(d), replicaset = %rs_name, collision_count = next, "pod-template-hash collision");
                let p = format!(
                    "{}/status",
                    util::path(APPS, ns, "deployments", Some(name(d)))
                );
                self.client
                    .merge_patch(&p, &json!({"status": {"collisionCount": next}}))
                    .await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn sync(
        &self,
        d: &Value,
        rss: &[&Value],
        pods: &[&Value],
    ) -> Result<Option<Duration>, ApiError> {
        if util::is_deleting(d) {
            return Ok(None);
        }
        let ns = namespace(d);
        let selector = match LabelSelector::from_json(&d["spec"]["selector"]) {
            Ok(s) if !s.is_everything() => s,
            Ok(_) => {
                tracing::warn!(
                    deployment = name(d),
                    "empty selector selects everything; not managing"
                );
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(deployment = name(d), error = %e.message(), "invalid selector");
                return Ok(None);
            }
        };
        let d_uid = uid(d);
        let mut owned: Vec<Rs> = Vec::new();
        for rs in rss.iter().filter(|rs| !util::is_deleting(rs)) {
            if controlled_by(rs, d_uid) {
                owned.push(Rs {
                    spec: spec_replicas(rs),
                    obj: (*rs).clone(),
                });
            } else if controller_ref(rs).is_none() && selector.matches_object(rs) {
                let mut refs: Vec<Value> = rs["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                refs.push(util::owner_ref(d, "apps/v1", "Deployment"));
                let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rs["metadata"]["resourceVersion"]}});
                match self
                    .client
                    .merge_patch(&util::path(APPS, ns, "replicasets", Some(name(rs))), &patch)
                    .await
                {
                    Ok(v) => owned.push(Rs {
                        spec: spec_replicas(&v),
                        obj: v,
                    }),
                    Err(e) => {
                        tracing::debug!(replicaset = name(rs), error = %e.message, "adoption failed")
                    }
                }
            }
        }
        owned.sort_by(|a, b| {
            a.obj["metadata"]["creationTimestamp"]
                .as_str()
                .cmp(&b.obj["metadata"]["creationTimestamp"].as_str())
                .then_with(|| name(&a.obj).cmp(name(&b.obj)))
        });
        let tpl = &d["spec"]["template"];
        // The current ReplicaSet: made from this template (by hash, which survives server-side
        // defaulting of the copy), or with an identical template (e.g. after a rollback).
        let hash = template_hash(tpl, d["status"]["collisionCount"].as_i64());
        let new_idx = owned
            .iter()
            .position(|rs| rs.obj["metadata"]["labels"][HASH_LABEL].as_str() == Some(hash.as_str()))
            .or_else(|| {
                owned
                    .iter()
                    .position(|rs| templates_equal_ignoring_hash(&rs.obj["spec"]["template"], tpl))
            });
        let mut new_rs: Option<Rs> = new_idx.map(|i| owned.remove(i));
        let mut olds = owned;
        let max_old_rev = olds.iter().map(|r| revision_of(&r.obj)).max().unwrap_or(0);

        let replicas = spec_replicas(d).max(0);
        let recreate = d["spec"]["strategy"]["type"] == "Recreate";
        let (surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            let ru = &d["spec"]["strategy"]["rollingUpdate"];
            resolve_fenceposts(&ru["maxSurge"], &ru["maxUnavailable"], replicas)
        };
        let paused = d["spec"]["paused"].as_bool() == Some(true);
        let mut created_new = false;

        // A resize: some active ReplicaSet was last scaled for another Deployment size.
        let active_count = olds
            .iter()
            .chain(new_rs.iter())
            .filter(|r| r.spec > 0)
            .count();
        let scaling_event = olds.iter().chain(new_rs.iter()).any(|r| {
            r.spec > 0
                && annotation_i64(&r.obj, DESIRED_REPLICAS).is_some_and(|want| want != replicas)
        });
        if paused || (scaling_event && (!recreate || active_count <= 1)) {
            self.scale_to_size(d, &mut new_rs, &mut olds, surge, !recreate)
                .await?;
        } else if recreate {
            for o in olds.iter_mut() {
                self.scale(d, o, 0, 0).await?;
            }
            let old_uids: Vec<&str> = olds.iter().map(|o| uid(&o.obj)).collect();
            let old_pods_running = pods.iter().any(|p| {
                !util::pod_terminated(p)
                    && controller_ref(p)
                        .and_then(|r| r["uid"].as_str())
                        .map(|u| old_uids.contains(&u))
                        .unwrap_or(false)
            });
            if !old_pods_running {
                match new_rs.as_mut() {
                    Some(n) => self.scale(d, n, replicas, 0).await?,
                    None => {
                        if let Some(c) = self.create_new_rs(d, replicas, max_old_rev + 1, 0).await?
                        {
                            created_new = true;
                            new_rs = Some(Rs {
                                spec: spec_replicas(&c),
                                obj: c,
                            });
                        }
                    }
                }
            }
        } else {
            let old_total: i64 = olds.iter().map(|o| o.spec).sum();
            let mut scaled_up = false;
            match new_rs.as_mut() {
                None => {
                    let want = rolling_new_replicas(replicas, surge, old_total, 0);
                    if let Some(c) = self.create_new_rs(d, want, max_old_rev + 1, surge).await? {
                        created_new = true;
                        new_rs = Some(Rs {
                            spec: spec_replicas(&c),
                            obj: c,
                        });
                    }
                }
                Some(n) => {
                    let want = rolling_new_replicas(replicas, surge, old_total + n.spec, n.spec);
                    if want > n.spec {
                        scaled_up = true;
                    }
                    self.scale(d, n, want, surge).await?;
                }
            }
            if !scaled_up {
                if let Some(n) = new_rs.as_ref() {
                    let pairs: Vec<(i64, i64)> = olds
                        .iter()
                        .map(|o| (o.spec, st(&o.obj, "availableReplicas")))
                        .collect();
                    let targets = rolling_scale_down(
                        replicas,
                        max_unavailable,
                        &pairs,
                        n.spec,
                        st(&n.obj, "availableReplicas"),
                    );
                    for (o, t) in olds.iter_mut().zip(targets) {
                        self.scale(d, o, t, surge).await?;
                    }
                }
            }
        }

        // Revisions: the current ReplicaSet always carries the highest one.
        let mut revision = new_rs.as_ref().map(|n| revision_of(&n.obj)).unwrap_or(0);
        if let Some(n) = new_rs.as_mut() {
            if revision <= max_old_rev {
                revision = max_old_rev + 1;
                let p = util::path(APPS, ns, "replicasets", Some(name(&n.obj)));
                let v = self
                    .client
                    .merge_patch(
                        &p,
                        &json!({"metadata": {"annotations": {REVISION: revision.to_string()}}}),
                    )
                    .await?;
                n.obj = v;
            }
        }
        if revision > 0
            && d["metadata"]["annotations"][REVISION].as_str()
                != Some(revision.to_string().as_str())
        {
            let p = util::path(APPS, ns, "deployments", Some(name(d)));
            match self
                .client
                .merge_patch(
                    &p,
                    &json!({"metadata": {"annotations": {REVISION: revision.to_string()}}}),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => return Ok(None),
                Err(e) => return Err(e),
            }
        }

        // Status.
        let all: Vec<&Rs> = olds.iter().chain(new_rs.iter()).collect();
        let total: i64 = all.iter().map(|r| st(&r.obj, "replicas")).sum();
        let ready: i64 = all.iter().map(|r| st(&r.obj, "readyReplicas")).sum();
        let available: i64 = all.iter().map(|r| st(&r.obj, "availableReplicas")).sum();
        let spec_total: i64 = all.iter().map(|r| r.spec).sum();
        let updated = new_rs.as_ref().map(|n| st(&n.obj, "replicas")).unwrap_or(0);
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
        let cur = &d["status"];
        let mut conds: Vec<Value> = cur["conditions"].as_array().cloned().unwrap_or_default();
        let min_available = replicas - max_unavailable.min(replicas);
        if available >= min_available {
            set_condition(
                &mut conds,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                false,
            );
        } else {
            set_condition(
                &mut conds,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                false,
            );
        }
        let new_name = new_rs
            .as_ref()
            .map(|n| name(&n.obj).to_string())
            .unwrap_or_default();
        let complete =
            updated == replicas && total == replicas && available == replicas && new_rs.is_some();
        if !d["spec"]["progressDeadlineSeconds"].is_null() && !paused {
            let old_cur = st(d, "replicas") - st(d, "updatedReplicas");
            let progressing = updated > st(d, "updatedReplicas")
                || (total - updated) < old_cur
                || ready > st(d, "readyReplicas")
                || available > st(d, "availableReplicas");
            let deadline = d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600);
            if complete {
                set_condition(
                    &mut conds,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
                    false,
                );
            } else if created_new {
                set_condition(
                    &mut conds,
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    &format!("Created new replica set \"{new_name}\""),
                    true,
                );
            } else if progressing {
                set_condition(
                    &mut conds,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{new_name}\" is progressing."),
                    true,
                );
            } else {
                let cond = conds.iter().find(|c| c["type"] == "Progressing").cloned();
                match cond {
                    None => set_condition(
                        &mut conds,
                        "Progressing",
                        "True",
                        "ReplicaSetUpdated",
                        &format!("ReplicaSet \"{new_name}\" is progressing."),
                        false,
                    ),
                    Some(c) if c["reason"] == "NewReplicaSetAvailable" && !new_name.is_empty() => {
                        // A scale event after completion.
                        set_condition(
                            &mut conds,
                            "Progressing",
                            "True",
                            "ReplicaSetUpdated",
                            &format!("ReplicaSet \"{new_name}\" is progressing."),
                            true,
                        );
                    }
                    Some(c) => {
                        let since = util::parse_time(&c["lastUpdateTime"]);
                        if since
                            .map(|t| Utc::now() - t > chrono::Duration::seconds(deadline))
                            .unwrap_or(false)
                            && c["reason"] != "ProgressDeadlineExceeded"
                        {
                            set_condition(
                                &mut conds,
                                "Progressing",
                                "False",
                                "ProgressDeadlineExceeded",
                                &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                                false,
                            );
                        }
                    }
                }
            }
        }
        let mut status = json!({
            "observedGeneration": generation,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": (spec_total.max(replicas) - available).max(0),
            "conditions": conds,
        });
        if let Some(c) = cur["collisionCount"].as_i64() {
            status["collisionCount"] = json!(c);
        }
        let changed = [
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ]
        .iter()
        .any(|f| cur[*f].as_i64().unwrap_or(0) != status[*f].as_i64().unwrap_or(0))
            || canonical_json(&cur["conditions"]) != canonical_json(&status["conditions"]);
        if changed {
            let p = format!(
                "{}/status",
                util::path(APPS, ns, "deployments", Some(name(d)))
            );
            match self
                .client
                .merge_patch(&p, &json!({"status": status}))
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => return Ok(None),
                Err(e) => return Err(e),
            }
        }

        // History cleanup once the rollout is complete.
        if complete {
            let limit = d["spec"]["revisionHistoryLimit"]
                .as_i64()
                .unwrap_or(10)
                .max(0) as usize;
            let mut dead: Vec<&Rs> = olds
                .iter()
                .filter(|o| o.spec == 0 && st(&o.obj, "replicas") == 0)
                .collect();
            if dead.len() > limit {
                dead.sort_by_key(|o| revision_of(&o.obj));
                let n = dead.len() - limit;
                for o in dead.into_iter().take(n) {
                    tracing::info!(
                        deployment = name(d),
                        replicaset = name(&o.obj),
                        "cleaning up old replica set"
                    );
                    self.client
                        .delete_ignore_missing(&util::path(
                            APPS,
                            ns,
                            "replicasets",
                            Some(name(&o.obj)),
                        ))
                        .await?;
                }
            }
        }
        // Re-check the progress deadline in time.
        Ok((!complete).then(|| Duration::from_secs(5)))
    }
}

#[async_trait]
impl Controller for DeploymentController {
    fn informers(&self) -> Option<&crate::informer::Informers> {
        self.informers.is_shared().then_some(&self.informers)
    }

    fn name(&self) -> &'static str {
        "deployment"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{APPS}/deployments"), format!("{APPS}/replicasets")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let deploys = self.informers.list(&format!("{APPS}/deployments")).await?;
        if deploys.is_empty() {
            return Ok(None);
        }
        let rss = self.informers.list(&format!("{APPS}/replicasets")).await?;
        let need_pods = deploys
            .iter()
            .any(|d| d["spec"]["strategy"]["type"] == "Recreate");
        let pods = if need_pods {
            self.informers.list(&format!("{CORE}/pods")).await?
        } else {
            crate::informer::Snapshot::default()
        };
        let rs_by_ns = util::by_namespace(&rss);
        let pods_by_ns = util::by_namespace(&pods);
        let empty = Vec::new();
        let mut pass = util::Pass::default();
        for d in &deploys {
            let ns = namespace(d);
            let (rss, pods) = (
                rs_by_ns.get(ns).unwrap_or(&empty),
                pods_by_ns.get(ns).unwrap_or(&empty),
            );
            pass.record("deployment", d, self.sync(d, rss, pods).await);
        }
        pass.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_unavailable_rounds_down() {
        assert_eq!(resolve_fenceposts(&json!("25%"), &json!("25%"), 10), (3, 2));
        assert_eq!(resolve_fenceposts(&json!("25%"), &json!("25%"), 3), (1, 0));
        assert_eq!(resolve_fenceposts(&json!(1), &json!(0), 3), (1, 0));
        assert_eq!(
            resolve_fenceposts(&json!(0), &json!(0), 3),
            (0, 1),
            "both zero → one unavailable"
        );
        assert_eq!(resolve_fenceposts(&json!("10%"), &json!("10%"), 1), (1, 0));
        assert_eq!(
            resolve_fenceposts(&json!("0%"), &json!("10%"), 5),
            (0, 1),
            "rounded down to 0 with 0 surge"
        );
        assert_eq!(resolve_fenceposts(&json!(null), &json!(null), 4), (1, 1));
        assert_eq!(resolve_fenceposts(&json!("50%"), &json!("50%"), 5), (3, 2));
        assert_eq!(int_or_percent(&json!("3"), 10, true), Some(3));
    }

    #[test]
    fn rolling_math_keeps_availability() {
        // 3 replicas, maxSurge 1, maxUnavailable 0: one new pod first.
        assert_eq!(rolling_new_replicas(3, 1, 3, 0), 1);
        // At the surge limit: nothing more.
        assert_eq!(rolling_new_replicas(3, 1, 4, 1), 1);
        // New one not available yet: old stays.
        assert_eq!(rolling_scale_down(3, 0, &[(3, 3)], 1, 0), vec![3]);
        // New one available: one old goes.
        assert_eq!(rolling_scale_down(3, 0, &[(3, 3)], 1, 1), vec![2]);
        // Unhealthy old pods go first, without waiting.
        assert_eq!(rolling_scale_down(3, 1, &[(3, 1)], 1, 0), vec![2]);
        // Two old generations: oldest scaled first.
        assert_eq!(
            rolling_scale_down(4, 0, &[(2, 2), (2, 2)], 2, 2),
            vec![0, 2]
        );
        // Scale-up of the plain (non-rollout) case jumps straight to replicas.
        assert_eq!(rolling_new_replicas(5, 2, 3, 3), 5);
        // Scale-down below the current size.
        assert_eq!(rolling_new_replicas(1, 1, 5, 5), 1);
    }

    fn input(spec: i64, max: Option<i64>) -> ProportionInput {
        ProportionInput {
            spec,
            max_replicas: max,
        }
    }

    #[test]
    fn resize_during_rollout_is_spread_proportionally() {
        // The upstream conformance case: 10 replicas, maxSurge 3, a stuck rollout at 8 old + 5
        // new (both annotated max-replicas 13), then resized to 30: 8→20 and 5→13.
        let rss = [input(8, Some(13)), input(5, Some(13))];
        assert_eq!(proportional_targets(30, 3, 10, &rss), vec![20, 13]);
        // And back down to 10: 20→8, 13→5.
        let rss = [input(20, Some(33)), input(13, Some(33))];
        assert_eq!(proportional_targets(10, 3, 33, &rss), vec![8, 5]);
        // Scaling to zero empties every ReplicaSet.
        assert_eq!(proportional_targets(0, 3, 33, &rss), vec![0, 0]);
        // Nothing to add: sizes stay.
        assert_eq!(
            proportional_targets(10, 3, 13, &[input(8, Some(13)), input(5, Some(13))]),
            vec![8, 5]
        );
        // Rounding leftovers go to the largest ReplicaSet; among equals the newest when growing
        // (3 each, max 6 → 9: 3*9/6 = 4.5 rounds to 5 → +2 for the newer first, +1 left for the
        // older), the oldest when shrinking.
        assert_eq!(
            proportional_targets(8, 1, 6, &[input(3, Some(6)), input(3, Some(6))]),
            vec![4, 5]
        );
        assert_eq!(
            proportional_targets(4, 1, 6, &[input(3, Some(6)), input(3, Some(6))]),
            vec![2, 3]
        );
        // No annotation (scaled by hand): the Deployment's status replicas stand in for it.
        assert_eq!(
            proportional_targets(30, 3, 13, &[input(8, None), input(5, None)]),
            vec![20, 13]
        );
        // Never more than allowed in total, never below zero.
        let t = proportional_targets(
            7,
            0,
            3,
            &[input(1, Some(2)), input(1, Some(2)), input(1, Some(2))],
        );
        assert_eq!(t.iter().sum::<i64>(), 7, "{t:?}");
        assert!(t.iter().all(|x| *x >= 0), "{t:?}");
        assert!(proportional_targets(5, 1, 0, &[]).is_empty());
    }

    #[test]
    fn hash_is_stable_and_ignores_the_hash_label() {
        let t: Value = serde_json::from_str(r#"{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx:1"}]}}"#).unwrap();
        let h = template_hash(&t, None);
        assert_eq!(h, template_hash(&t, None));
        assert!(
            h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{h}"
        );
        let mut labelled = t.clone();
        labelled["metadata"]["labels"][HASH_LABEL] = json!(h.clone());
        assert_eq!(template_hash(&labelled, None), h);
        assert!(templates_equal_ignoring_hash(&t, &labelled));
        // Key order does not matter.
        let reordered: Value = serde_json::from_str(r#"{"spec":{"containers":[{"image":"nginx:1","name":"c"}]},"metadata":{"labels":{"app":"web"}}}"#).unwrap();
        assert_eq!(template_hash(&reordered, None), h);
        let mut changed = t.clone();
        changed["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_ne!(template_hash(&changed, None), h);
        assert_ne!(
            template_hash(&t, Some(1)),
            h,
            "collision count changes the hash"
        );
    }
}
