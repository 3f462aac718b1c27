//! The HorizontalPodAutoscaler controller (upstream pkg/controller/podautoscaler) for Resource
//! and ContainerResource metrics (cpu, memory; Utilization and AverageValue targets). Every sync
//! period (15 s by default) each HPA: reads its target's `scale` subresource (replicas and
//! selector), lists the selected pods and their PodMetrics through metrics.k8s.io (as upstream's
//! resource metrics client), computes the usage ratio (over the pods' requests for
//! Utilization), leaves unready and just-started pods out for cpu, keeps the replica count within
//! the tolerance (0.1), proposes `ceil(ratio * ready pods)`, stabilizes and rate-limits the
//! proposal (the `behavior` rules, or upstream's plain 5-minute downscale window and 2x/4 pod
//! scale-up limit without them), clamps it to min/max, writes it through the scale subresource,
//! and keeps the status (replicas, current metrics, lastScaleTime, the AbleToScale /
//! ScalingActive / ScalingLimited conditions with upstream's reasons) and Events.
//!
//! Time comes from a [`Clock`] (stabilization windows, scaling-policy periods, pod start times), so
//! tests can move it; the sync period is a field.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use daas_apimachinery::quantity;
use daas_apimachinery::selector::LabelSelector;
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

use crate::cronjob::{Clock, SystemClock};
use crate::util::{self, best_effort, name, namespace};
use crate::Controller;

const COMPONENT: &str = "horizontal-pod-autoscaler";
pub const HPA_PATH: &str = "/apis/autoscaling/v2";
/// Upstream `--horizontal-pod-autoscaler-sync-period`.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(15);

/// The controller's tuning (upstream's kube-controller-manager flags).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: chrono::Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: chrono::Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (HPAs without `behavior`).
    pub downscale_stabilization: chrono::Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            tolerance: 0.1,
            cpu_initialization_period: chrono::Duration::minutes(5),
            initial_readiness_delay: chrono::Duration::seconds(30),
            downscale_stabilization: chrono::Duration::minutes(5),
        }
    }
}

// ---------------------------------------------------------------- replica calculation

/// One pod's metric: the summed usage of its containers in milli-units, when it was taken and
/// over which window.
#[derive(Debug, Clone)]
pub struct PodMetric {
    pub value: i64,
    pub timestamp: DateTime<Utc>,
    pub window: chrono::Duration,
}

/// Pods as upstream's `groupPods` sorts them.
#[derive(Debug, Default)]
pub struct PodGroups {
    pub ready: usize,
    pub unready: BTreeSet<String>,
    pub missing: BTreeSet<String>,
    pub ignored: BTreeSet<String>,
}

fn condition<'a>(pod: &'a Value, ty: &str) -> Option<&'a Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// Upstream `groupPods`: deleted and failed pods are ignored, pending ones unready, those without
/// a metric missing; for cpu, pods that are not ready, or whose metric was taken before a full
/// window since they became ready within the initialization period, are unready too.
pub fn group_pods(
    pods: &[Value],
    metrics: &BTreeMap<String, PodMetric>,
    cpu: bool,
    now: DateTime<Utc>,
    tuning: &Tuning,
) -> PodGroups {
    let mut g = PodGroups::default();
    for pod in pods {
        let n = name(pod).to_string();
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        if !pod["metadata"]["deletionTimestamp"].is_null() || phase == "Failed" {
            g.ignored.insert(n);
            continue;
        }
        if phase == "Pending" || phase.is_empty() {
            g.unready.insert(n);
            continue;
        }
        let Some(metric) = metrics.get(&n) else {
            g.missing.insert(n);
            continue;
        };
        if cpu {
            let ready = condition(pod, "Ready");
            let start = util::parse_time(&pod["status"]["startTime"]);
            let unready = match (ready, start) {
                (Some(c), Some(start)) => {
                    let transition = util::parse_time(&c["lastTransitionTime"]).unwrap_or(start);
                    if start + tuning.cpu_initialization_period > now {
                        c["status"] == "False" || metric.timestamp < transition + metric.window
                    } else {
                        c["status"] == "False"
                            && start + tuning.initial_readiness_delay > transition
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(n);
                continue;
            }
        }
        g.ready += 1;
    }
    g
}

/// Upstream `calculatePodRequests`: each pod's summed request of `resource` over its containers
/// (and restartable init containers), or of one container.
pub fn pod_requests(
    pods: &[Value],
    container: Option<&str>,
    resource: &str,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let mut sum: i64 = 0;
        let sidecars = pod["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["restartPolicy"] == "Always");
        for c in pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(sidecars)
        {
            let cname = c["name"].as_str().unwrap_or("");
            if container.is_some_and(|want| want != cname) {
                continue;
            }
            match c["resources"]["requests"][resource]
                .as_str()
                .and_then(quantity::parse_milli)
            {
                Some(m) => sum = sum.saturating_add(m as i64),
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {cname} of Pod {}",
                        name(pod)
                    ))
                }
            }
        }
        out.insert(name(pod).to_string(), sum);
    }
    Ok(out)
}

/// Upstream `GetResourceUtilizationRatio`: (ratio to target, utilization %, average raw usage).
pub fn utilization_ratio(
    metrics: &BTreeMap<String, PodMetric>,
    requests: &BTreeMap<String, i64>,
    target: i64,
) -> Result<(f64, i64, i64), String> {
    let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (pod, m) in metrics {
        let Some(r) = requests.get(pod) else {
            continue;
        };
        used += m.value;
        requested += r;
        n += 1;
    }
    if requested == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = used * 100 / requested;
    Ok((utilization as f64 / target as f64, utilization, used / n))
}

fn within(ratio: f64, tolerance: f64) -> bool {
    (1.0 - tolerance) <= ratio && ratio <= (1.0 + tolerance)
}

/// A proposal: (replicas, utilization % when the target is one, average raw usage in milli-units).
pub type Proposal = (i64, Option<i64>, i64);

/// Upstream `GetResourceReplicas` (a Utilization target) and `GetRawResourceReplicas` (an
/// AverageValue target, `target_utilization == None`, `target_value` in milli-units).
#[allow(clippy::too_many_arguments)]
pub fn resource_replicas(
    current: i64,
    target_utilization: Option<i64>,
    target_value: i64,
    cpu: bool,
    pods: &[Value],
    metrics: BTreeMap<String, PodMetric>,
    requests: Option<&BTreeMap<String, i64>>,
    now: DateTime<Utc>,
    tuning: &Tuning,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let mut metrics = metrics;
    let groups = group_pods(pods, &metrics, cpu, now, tuning);
    for p in groups.ignored.iter().chain(&groups.unready) {
        metrics.remove(p);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let empty = BTreeMap::new();
    let requests = requests.unwrap_or(&empty);
    let ratio_of = |m: &BTreeMap<String, PodMetric>| -> Result<(f64, Option<i64>, i64), String> {
        match target_utilization {
            Some(t) => utilization_ratio(m, requests, t).map(|(r, u, raw)| (r, Some(u), raw)),
            None => {
                let total: i64 = m.values().map(|x| x.value).sum();
                let avg = total / m.len().max(1) as i64;
                Ok((avg as f64 / target_value as f64, None, avg))
            }
        }
    };
    let (ratio, utilization, raw) = ratio_of(&metrics)?;
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if within(ratio, tuning.tolerance) {
            return Ok((current, utilization, raw));
        }
        return Ok((
            (ratio * groups.ready as f64).ceil() as i64,
            utilization,
            raw,
        ));
    }
    let filler = |v: i64| PodMetric {
        value: v,
        timestamp: now,
        window: chrono::Duration::zero(),
    };
    if !groups.missing.is_empty() {
        for p in &groups.missing {
            let v = if ratio < 1.0 {
                match target_utilization {
                    // Missing pods count as using their full request (or the target if above 100%).
                    Some(t) => requests.get(p).copied().unwrap_or(0) * t.max(100) / 100,
                    None => target_value,
                }
            } else {
                0
            };
            if ratio != 1.0 {
                metrics.insert(p.clone(), filler(v));
            }
        }
    }
    if scale_up_with_unready {
        for p in &groups.unready {
            metrics.insert(p.clone(), filler(0));
        }
    }
    let (new_ratio, _, _) = ratio_of(&metrics)?;
    if within(new_ratio, tuning.tolerance)
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok((current, utilization, raw));
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i64;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok((current, utilization, raw));
    }
    Ok((replicas, utilization, raw))
}

// ---------------------------------------------------------------- normalization

#[derive(Debug, Clone, Copy)]
struct Recommendation {
    replicas: i64,
    at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    change: i64,
    at: DateTime<Utc>,
    outdated: bool,
}

/// What the controller remembers of one HPA between syncs (upstream keeps it in memory too).
#[derive(Debug, Default)]
pub struct History {
    recommendations: Vec<Recommendation>,
    ups: Vec<ScaleEvent>,
    downs: Vec<ScaleEvent>,
}

/// A condition to set: (type, status, reason, message).
pub type Cond = (&'static str, &'static str, &'static str, String);

fn record(recs: &mut Vec<Recommendation>, found_old: Option<usize>, r: Recommendation) {
    match found_old {
        Some(i) => recs[i] = r,
        None => recs.push(r),
    }
}

fn changes_in_period(events: &[ScaleEvent], period: i64, now: DateTime<Utc>) -> i64 {
    let cutoff = now - chrono::Duration::seconds(period);
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change)
        .sum()
}

fn policy_limit(current: i64, h: &History, rules: &Value, up: bool, now: DateTime<Utc>) -> i64 {
    let select = rules["selectPolicy"].as_str().unwrap_or("Max");
    if select == "Disabled" {
        return current;
    }
    // Scaling up, Max picks the largest proposal; scaling down, Max picks the smallest.
    let pick_max = (select == "Max") == up;
    let mut result: Option<i64> = None;
    for p in rules["policies"].as_array().into_iter().flatten() {
        let period = p["periodSeconds"].as_i64().unwrap_or(0);
        let value = p["value"].as_i64().unwrap_or(0);
        let start = current - changes_in_period(&h.ups, period, now)
            + changes_in_period(&h.downs, period, now);
        let proposed = match (p["type"].as_str(), up) {
            (Some("Pods"), true) => start + value,
            (Some("Pods"), false) => start - value,
            (_, true) => (start as f64 * (1.0 + value as f64 / 100.0)).ceil() as i64,
            (_, false) => (start as f64 * (1.0 - value as f64 / 100.0)) as i64,
        };
        result = Some(match result {
            None => proposed,
            Some(r) if pick_max => r.max(proposed),
            Some(r) => r.min(proposed),
        });
    }
    result.unwrap_or(current)
}

impl History {
    /// Upstream `normalizeDesiredReplicasWithBehaviors`: stabilize over the scale-up and
    /// scale-down windows, then hold to the scaling policies and min/max. Returns the replicas and
    /// the AbleToScale and ScalingLimited conditions.
    #[allow(clippy::too_many_arguments)]
    pub fn normalize_with_behavior(
        &mut self,
        behavior: &Value,
        current: i64,
        desired: i64,
        min: i64,
        max: i64,
        now: DateTime<Utc>,
    ) -> (i64, Cond, Cond) {
        let (up, down) = (&behavior["scaleUp"], &behavior["scaleDown"]);
        let up_cut =
            now - chrono::Duration::seconds(up["stabilizationWindowSeconds"].as_i64().unwrap_or(0));
        let down_cut = now
            - chrono::Duration::seconds(down["stabilizationWindowSeconds"].as_i64().unwrap_or(300));
        let (mut up_rec, mut down_rec) = (desired, desired);
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.at > up_cut {
                up_rec = up_rec.min(r.replicas);
            }
            if r.at > down_cut {
                down_rec = down_rec.max(r.replicas);
            }
            if r.at < up_cut && r.at < down_cut {
                old = Some(i);
            }
        }
        let stabilized = current.max(up_rec).min(down_rec);
        record(
            &mut self.recommendations,
            old,
            Recommendation {
                replicas: desired,
                at: now,
            },
        );
        let able = if stabilized != desired {
            if desired >= current {
                ("AbleToScale", "True", "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation".to_string())
            } else {
                ("AbleToScale", "True", "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".to_string())
            }
        } else {
            (
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size".to_string(),
            )
        };
        let (mut out, mut reason, mut message) = (
            stabilized,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        );
        if stabilized > current {
            let limit = policy_limit(current, self, up, true, now).max(current);
            let (allowed, r, m) = if max > limit {
                (
                    limit,
                    "ScaleUpLimit",
                    "the desired replica count is increasing faster than the maximum scale rate",
                )
            } else {
                (
                    max,
                    "TooManyReplicas",
                    "the desired replica count is more than the maximum replica count",
                )
            };
            if stabilized > allowed {
                (out, reason, message) = (allowed, r, m);
            }
        } else if stabilized < current {
            let limit = policy_limit(current, self, down, false, now).min(current);
            let (allowed, r, m) = if min < limit {
                (
                    limit,
                    "ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate",
                )
            } else {
                (
                    min,
                    "TooFewReplicas",
                    "the desired replica count is less than the minimum replica count",
                )
            };
            if stabilized < allowed {
                (out, reason, message) = (allowed, r, m);
            }
        }
        let limited = if out == stabilized { "False" } else { "True" };
        (
            out,
            able,
            ("ScalingLimited", limited, reason, message.to_string()),
        )
    }

    /// Upstream `normalizeDesiredReplicas` (an HPA without `behavior`): the highest
    /// recommendation of the downscale window, then min/max and the scale-up limit
    /// (max(2 x current, 4)).
    pub fn normalize_plain(
        &mut self,
        window: chrono::Duration,
        current: i64,
        desired: i64,
        min: i64,
        max: i64,
        now: DateTime<Utc>,
    ) -> (i64, Cond, Cond) {
        let cutoff = now - window;
        let mut stabilized = desired;
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.at < cutoff {
                old = Some(i);
            } else if r.replicas > stabilized {
                stabilized = r.replicas;
            }
        }
        record(
            &mut self.recommendations,
            old,
            Recommendation {
                replicas: desired,
                at: now,
            },
        );
        let able = if stabilized != desired {
            ("AbleToScale", "True", "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation".to_string())
        } else {
            (
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size".to_string(),
            )
        };
        let up_limit = (2 * current).max(4);
        let (allowed_max, r, m) = if max > up_limit {
            (
                up_limit,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        } else {
            (
                max,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        };
        let (out, reason, message) = if stabilized < min {
            (
                min,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        } else if stabilized > allowed_max {
            (allowed_max, r, m)
        } else {
            (
                stabilized,
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
            )
        };
        let limited = if out == stabilized { "False" } else { "True" };
        (
            out,
            able,
            ("ScalingLimited", limited, reason, message.to_string()),
        )
    }

    /// Upstream `storeScaleEvent`: remember a rescale for the policies' periods, reusing an
    /// entry older than the longest period.
    pub fn store_scale_event(
        &mut self,
        behavior: &Value,
        previous: i64,
        new: i64,
        now: DateTime<Utc>,
    ) {
        if !behavior.is_object() {
            return;
        }
        let (events, rules) = if new > previous {
            (&mut self.ups, &behavior["scaleUp"])
        } else {
            (&mut self.downs, &behavior["scaleDown"])
        };
        let longest = rules["policies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["periodSeconds"].as_i64())
            .max()
            .unwrap_or(0);
        let cutoff = now - chrono::Duration::seconds(longest);
        for e in events.iter_mut() {
            if e.at < cutoff {
                e.outdated = true;
            }
        }
        let ev = ScaleEvent {
            change: (new - previous).abs(),
            at: now,
            outdated: false,
        };
        match events.iter_mut().find(|e| e.outdated) {
            Some(slot) => *slot = ev,
            None => events.push(ev),
        }
    }
}

// ---------------------------------------------------------------- conditions

/// Upstream `setConditionInList`: the transition time moves only when the status changes.
pub fn set_condition(status: &mut Value, c: &Cond, now: &str) {
    let (ty, st, reason, message) = c;
    let mut conds: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    match conds.iter_mut().find(|x| x["type"] == *ty) {
        Some(x) => {
            if x["status"] != *st {
                x["lastTransitionTime"] = json!(now);
            }
            x["status"] = json!(st);
            x["reason"] = json!(reason);
            x["message"] = json!(message);
        }
        None => conds.push(json!({"type": ty, "status": st, "reason": reason,
            "message": message, "lastTransitionTime": now})),
    }
    status["conditions"] = json!(conds);
}

// ---------------------------------------------------------------- controller

pub struct HpaController {
    client: LocalClient,
    clock: Arc<dyn Clock>,
    sync_period: Duration,
    tuning: Tuning,
    history: HashMap<String, History>,
    /// When each HPA (by uid) was last synced, and at which generation.
    synced: HashMap<String, (tokio::time::Instant, i64)>,
}

/// Why a metric could not be computed: the condition reason, the error, and how upstream's
/// `computeReplicasForMetric` names the metric when it wraps the error.
struct MetricError {
    reason: &'static str,
    err: String,
    value: String,
}

fn parse_window(v: &Value) -> chrono::Duration {
    let s = v.as_str().unwrap_or("");
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().unwrap_or(0.0);
    let ms = match unit {
        "ms" => n,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => n * 1000.0,
    };
    chrono::Duration::milliseconds(ms as i64)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl HpaController {
    pub fn new(client: LocalClient) -> Self {
        Self::with(client, Arc::new(SystemClock), DEFAULT_SYNC_PERIOD)
    }

    /// A controller reading time from `clock` and syncing each HPA every `sync_period`.
    pub fn with(client: LocalClient, clock: Arc<dyn Clock>, sync_period: Duration) -> Self {
        HpaController {
            client,
            clock,
            sync_period,
            tuning: Tuning::default(),
            history: HashMap::new(),
            synced: HashMap::new(),
        }
    }

    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }

    async fn event(&self, hpa: &Value, ty: &str, reason: &str, msg: &str) {
        best_effort(
            "event",
            util::record_event(&self.client, hpa, ty, reason, msg, COMPONENT).await,
        )
        .await;
    }

    /// The `scale` path of the target (group from its apiVersion, as upstream's REST mapping).
    fn scale_path(ns: &str, r: &Value) -> Result<String, String> {
        let api_version = r["apiVersion"].as_str().unwrap_or("");
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let kind = r["kind"].as_str().unwrap_or("");
        let defs: Vec<_> = daas_apiserver::resources::all()
            .into_iter()
            .filter(|d| d.kind == kind && d.group == group)
            .collect();
        let def = defs
            .iter()
            .find(|d| d.version == version)
            .or(defs.first())
            .ok_or_else(|| format!("no matches for kind \"{kind}\" in group \"{group}\""))?;
        let base = if def.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/{}", def.group, def.version)
        };
        Ok(format!(
            "{base}/namespaces/{ns}/{}/{}/scale",
            def.plural,
            name_of(r)
        ))
    }

    /// PodMetrics of the selected pods: (pod -> metric) of `resource` (of one container).
    async fn pod_metrics(
        &self,
        ns: &str,
        selector: &LabelSelector,
        resource: &str,
        container: Option<&str>,
    ) -> Result<BTreeMap<String, PodMetric>, String> {
        let items = self
            .client
            .list(&format!(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"
            ))
            .await
            .map_err(|e| {
                format!(
                    "unable to fetch metrics from resource metrics API: {}",
                    e.message
                )
            })?;
        let items: Vec<&Value> = items
            .iter()
            .filter(|m| selector.matches_object(m))
            .collect();
        if items.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        let mut out = BTreeMap::new();
        for m in items {
            let containers = m["containers"].as_array().cloned().unwrap_or_default();
            let mut sum = 0i64;
            let mut missing = containers.is_empty();
            let mut found_container = container.is_none();
            for c in &containers {
                if container.is_some_and(|want| c["name"] != want) {
                    continue;
                }
                found_container = true;
                match quantity::value_milli(&c["usage"][resource]) {
                    Some(v) => sum = sum.saturating_add(v as i64),
                    None => {
                        missing = true;
                        break;
                    }
                }
            }
            if let Some(want) = container.filter(|_| !found_container) {
                return Err(format!(
                    "failed to get container metrics: container {want} not present in metrics for pod {}/{}",
                    ns,
                    name(m)
                ));
            }
            if !missing {
                out.insert(
                    name(m).to_string(),
                    PodMetric {
                        value: sum,
                        timestamp: util::parse_time(&m["timestamp"])
                            .unwrap_or_else(|| self.clock.now()),
                        window: parse_window(&m["window"]),
                    },
                );
            }
        }
        Ok(out)
    }

    /// One metric spec: (proposal, the metric's name for messages, its status).
    async fn compute_metric(
        &self,
        hpa: &Value,
        spec: &Value,
        current: i64,
        selector: &LabelSelector,
        pods: &[Value],
    ) -> Result<(i64, String, Value), MetricError> {
        let ty = spec["type"].as_str().unwrap_or("");
        let (key, container) = match ty {
            "Resource" => ("resource", None),
            "ContainerResource" => (
                "containerResource",
                spec["containerResource"]["container"].as_str(),
            ),
            other => {
                return Err(MetricError {
                    reason: "InvalidMetricSourceType",
                    err: format!("unknown metric source type {other:?}"),
                    value: format!("{other} metric value"),
                })
            }
        };
        let src = &spec[key];
        let resource = src["name"].as_str().unwrap_or("");
        let target = &src["target"];
        let reason = if ty == "Resource" {
            "FailedGetResourceMetric"
        } else {
            "FailedGetContainerResourceMetric"
        };
        let value = if ty == "Resource" {
            format!("{resource} resource metric value")
        } else {
            format!("{resource} container metric value")
        };
        let fail = |err: String| MetricError {
            reason,
            err,
            value: value.clone(),
        };
        let ns = namespace(hpa);
        let now = self.clock.now();
        let cpu = resource == "cpu";
        let status_of = |util: Option<i64>, raw: i64| {
            let mut cur = json!({"averageValue": quantity::format_milli(raw as i128, quantity::Format::DecimalSi)});
            if let Some(u) = util {
                cur["averageUtilization"] = json!(u);
            }
            let mut st = json!({"type": ty, key: {"name": resource, "current": cur}});
            if let Some(c) = container {
                st[key]["container"] = json!(c);
            }
            st
        };
        if let Some(avg) = target["averageValue"]
            .as_str()
            .and_then(quantity::parse_milli)
        {
            let metrics = self
                .pod_metrics(ns, selector, resource, container)
                .await
                .map_err(|e| fail(format!("failed to get {resource} usage: unable to get metrics for resource {resource}: {e}")))?;
            let (replicas, _, raw) = resource_replicas(
                current,
                None,
                avg as i64,
                cpu,
                pods,
                metrics,
                None,
                now,
                &self.tuning,
            )
            .map_err(|e| fail(format!("failed to get {resource} usage: {e}")))?;
            return Ok((
                replicas,
                format!("{resource} resource"),
                status_of(None, raw),
            ));
        }
        let Some(util) = target["averageUtilization"].as_i64() else {
            return Err(fail("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into()));
        };
        let metrics = self
            .pod_metrics(ns, selector, resource, container)
            .await
            .map_err(|e| fail(format!("failed to get {resource} utilization: unable to get metrics for resource {resource}: {e}")))?;
        let requests = pod_requests(pods, container, resource)
            .map_err(|e| fail(format!("failed to get {resource} utilization: {e}")))?;
        let (replicas, u, raw) = resource_replicas(
            current,
            Some(util),
            0,
            cpu,
            pods,
            metrics,
            Some(&requests),
            now,
            &self.tuning,
        )
        .map_err(|e| fail(format!("failed to get {resource} utilization: {e}")))?;
        let metric_name = match container {
            Some(c) => format!("{resource} container resource utilization (percentage of request) of container {c}"),
            None => format!("{resource} resource utilization (percentage of request)"),
        };
        Ok((replicas, metric_name, status_of(u, raw)))
    }

    async fn write_status(&self, hpa: &Value, status: Value) -> Result<(), ApiError> {
        if status == hpa["status"] {
            return Ok(());
        }
        let mut n = hpa.clone();
        n["status"] = status;
        let path = format!(
            "{}/status",
            util::path(
                HPA_PATH,
                namespace(hpa),
                "horizontalpodautoscalers",
                Some(name(hpa))
            )
        );
        match self.client.update(&path, &n).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Upstream `reconcileAutoscaler`.
    async fn sync(&mut self, hpa: &Value) -> Result<(), ApiError> {
        let now = self.clock.now();
        let ts = rfc3339(now);
        let key = format!("{}/{}", namespace(hpa), name(hpa));
        let ns = namespace(hpa).to_string();
        let spec = &hpa["spec"];
        let mut status = if hpa["status"].is_object() {
            hpa["status"].clone()
        } else {
            json!({})
        };
        let min = spec["minReplicas"].as_i64().unwrap_or(1);
        let max = spec["maxReplicas"].as_i64().unwrap_or(min);
        let reference = format!(
            "{}/{}",
            spec["scaleTargetRef"]["kind"].as_str().unwrap_or(""),
            name_of(&spec["scaleTargetRef"])
        );
        // The target's scale.
        let scale = match Self::scale_path(&ns, &spec["scaleTargetRef"]) {
            Ok(p) => self
                .client
                .get(&p)
                .await
                .map(|s| (p, s))
                .map_err(|e| e.message),
            Err(e) => Err(e),
        };
        let (scale_path, mut scale) = match scale {
            Ok(x) => x,
            Err(e) => {
                self.event(hpa, "Warning", "FailedGetScale", &e).await;
                set_condition(
                    &mut status,
                    &(
                        "AbleToScale",
                        "False",
                        "FailedGetScale",
                        format!(
                            "the HPA controller was unable to get the target's current scale: {e}"
                        ),
                    ),
                    &ts,
                );
                self.write_status(hpa, status).await?;
                return Ok(());
            }
        };
        set_condition(
            &mut status,
            &(
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale".into(),
            ),
            &ts,
        );
        let current = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        let behavior = spec["behavior"].clone();
        let mut rescale_reason = String::new();
        let mut desired = 0i64;
        let mut metric_statuses: Option<Vec<Value>> = None;
        let rescale;
        if current == 0 && min != 0 {
            rescale = false;
            set_condition(
                &mut status,
                &(
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero".into(),
                ),
                &ts,
            );
        } else if current > max {
            rescale_reason = "Current number of replicas above Spec.MaxReplicas".into();
            desired = max;
            rescale = true;
        } else if current < min {
            rescale_reason = "Current number of replicas below Spec.MinReplicas".into();
            desired = min;
            rescale = true;
        } else {
            // The metrics.
            let sel_str = scale["status"]["selector"].as_str().unwrap_or("");
            let selector = if sel_str.is_empty() {
                self.event(hpa, "Warning", "SelectorRequired", "selector is required")
                    .await;
                set_condition(
                    &mut status,
                    &(
                        "ScalingActive",
                        "False",
                        "InvalidSelector",
                        "the HPA target's scale is missing a selector".into(),
                    ),
                    &ts,
                );
                None
            } else {
                match LabelSelector::parse(sel_str) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        let msg = format!("couldn't convert selector into a corresponding internal selector object: {e}");
                        self.event(hpa, "Warning", "InvalidSelector", &msg).await;
                        set_condition(
                            &mut status,
                            &("ScalingActive", "False", "InvalidSelector", msg),
                            &ts,
                        );
                        None
                    }
                }
            };
            let Some(selector) = selector else {
                status["currentReplicas"] = json!(current);
                self.write_status(hpa, status).await?;
                return Ok(());
            };
            let pods: Vec<Value> = self
                .client
                .list(&format!("/api/v1/namespaces/{ns}/pods"))
                .await?
                .into_iter()
                .filter(|p| selector.matches_object(p))
                .collect();
            let specs = spec["metrics"].as_array().cloned().unwrap_or_default();
            let mut statuses = vec![json!({"type": ""}); specs.len()];
            let mut best: Option<(i64, String)> = None;
            let mut invalid: Vec<MetricError> = Vec::new();
            for (i, m) in specs.iter().enumerate() {
                match self.compute_metric(hpa, m, current, &selector, &pods).await {
                    Ok((r, metric, st)) => {
                        statuses[i] = st;
                        if best.as_ref().is_none_or(|(b, _)| r > *b) {
                            best = Some((r, metric));
                        }
                    }
                    Err(e) => {
                        self.event(hpa, "Warning", e.reason, &e.err).await;
                        invalid.push(e);
                    }
                }
            }
            let valid_best = best.clone();
            let all_invalid = invalid.len() >= specs.len()
                || (!invalid.is_empty() && valid_best.as_ref().is_some_and(|(r, _)| *r < current));
            if all_invalid {
                let first = &invalid[0];
                set_condition(
                    &mut status,
                    &(
                        "ScalingActive",
                        "False",
                        first.reason,
                        format!(
                            "the HPA was unable to compute the replica count: {}",
                            first.err
                        ),
                    ),
                    &ts,
                );
                let msg = format!(
                    "invalid metrics ({} invalid out of {}), first error is: failed to get {}: {}",
                    invalid.len(),
                    specs.len(),
                    first.value,
                    first.err
                );
                self.event(hpa, "Warning", "FailedComputeMetricsReplicas", &msg)
                    .await;
                status["currentReplicas"] = json!(current);
                status["currentMetrics"] = json!(statuses);
                self.write_status(hpa, status).await?;
                return Ok(());
            }
            let (proposal, metric) = valid_best.unwrap_or((0, String::new()));
            set_condition(
                &mut status,
                &(
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    format!(
                        "the HPA was able to successfully calculate a replica count from {metric}"
                    ),
                ),
                &ts,
            );
            metric_statuses = Some(statuses);
            if proposal > desired {
                desired = proposal;
            }
            if desired > current {
                rescale_reason = format!("{metric} above target");
            }
            if desired < current {
                rescale_reason = "All metrics below target".into();
            }
            let h = self.history.entry(key.clone()).or_default();
            let (n, able, limited) = if behavior.is_object() {
                h.normalize_with_behavior(&behavior, current, desired, min, max, now)
            } else {
                h.normalize_plain(
                    self.tuning.downscale_stabilization,
                    current,
                    desired,
                    min,
                    max,
                    now,
                )
            };
            set_condition(&mut status, &able, &ts);
            set_condition(&mut status, &limited, &ts);
            desired = n;
            rescale = desired != current;
        }
        if rescale {
            scale["spec"]["replicas"] = json!(desired);
            if let Err(e) = self.client.update(&scale_path, &scale).await {
                self.event(
                    hpa,
                    "Warning",
                    "FailedRescale",
                    &format!(
                        "New size: {desired}; reason: {rescale_reason}; error: {}",
                        e.message
                    ),
                )
                .await;
                set_condition(
                    &mut status,
                    &(
                        "AbleToScale",
                        "False",
                        "FailedUpdateScale",
                        format!(
                            "the HPA controller was unable to update the target scale: {}",
                            e.message
                        ),
                    ),
                    &ts,
                );
                self.write_status(hpa, status).await?;
                return Err(e);
            }
            set_condition(
                &mut status,
                &(
                    "AbleToScale",
                    "True",
                    "SucceededRescale",
                    format!("the HPA controller was able to update the target scale to {desired}"),
                ),
                &ts,
            );
            self.event(
                hpa,
                "Normal",
                "SuccessfulRescale",
                &format!("New size: {desired}; reason: {rescale_reason}"),
            )
            .await;
            self.history
                .entry(key.clone())
                .or_default()
                .store_scale_event(&behavior, current, desired, now);
            tracing::info!(hpa = %key, target = %reference, from = current, to = desired, reason = %rescale_reason, "rescaled");
            status["lastScaleTime"] = json!(ts);
        } else {
            desired = current;
        }
        status["currentReplicas"] = json!(current);
        status["desiredReplicas"] = json!(desired);
        status["currentMetrics"] = match metric_statuses {
            Some(m) if !m.is_empty() => json!(m),
            _ => Value::Null,
        };
        if status["currentMetrics"].is_null() {
            if let Some(o) = status.as_object_mut() {
                o.remove("currentMetrics");
            }
        }
        self.write_status(hpa, status).await
    }
}

fn name_of(r: &Value) -> &str {
    r["name"].as_str().unwrap_or("")
}

#[async_trait]
impl Controller for HpaController {
    fn name(&self) -> &'static str {
        "horizontal-pod-autoscaler"
    }

    fn watches(&self) -> Vec<String> {
        vec![format!("{HPA_PATH}/horizontalpodautoscalers")]
    }

    async fn reconcile(&mut self) -> Result<Option<Duration>, ApiError> {
        let hpas = self
            .client
            .list(&format!("{HPA_PATH}/horizontalpodautoscalers"))
            .await?;
        let live: BTreeSet<String> = hpas
            .iter()
            .map(|h| format!("{}/{}", namespace(h), name(h)))
            .collect();
        self.history.retain(|k, _| live.contains(k));
        let uids: BTreeSet<String> = hpas.iter().map(|h| util::uid(h).to_string()).collect();
        self.synced.retain(|k, _| uids.contains(k));
        let mut pass = util::Pass::default();
        let mut next = self.sync_period;
        for mut h in hpas {
            h["apiVersion"] = json!("autoscaling/v2");
            h["kind"] = json!("HorizontalPodAutoscaler");
            let uid = util::uid(&h).to_string();
            let generation = h["metadata"]["generation"].as_i64().unwrap_or(0);
            let tnow = tokio::time::Instant::now();
            if let Some((at, g)) = self.synced.get(&uid) {
                let since = tnow.duration_since(*at);
                if *g == generation && since < self.sync_period {
                    next = next.min(self.sync_period - since);
                    continue;
                }
            }
            if util::is_deleting(&h) {
                continue;
            }
            self.synced.insert(uid, (tnow, generation));
            let r = self.sync(&h).await.map(|_| None);
            pass.record("HorizontalPodAutoscaler", &h, r);
        }
        pass.finish().map(|_| Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn pod(name: &str, cpu_req: &str, ready: bool, started_ago_s: i64) -> Value {
        let start = rfc3339(t0() - chrono::Duration::seconds(started_ago_s));
        json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu_req}}}]},
            "status": {"phase": "Running", "startTime": start,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                    "lastTransitionTime": start}]}})
    }

    fn metrics(v: &[(&str, i64)]) -> BTreeMap<String, PodMetric> {
        v.iter()
            .map(|(n, m)| {
                (
                    n.to_string(),
                    PodMetric {
                        value: *m,
                        timestamp: t0(),
                        window: chrono::Duration::seconds(10),
                    },
                )
            })
            .collect()
    }

    fn util_replicas(
        current: i64,
        target: i64,
        pods: &[Value],
        m: &[(&str, i64)],
    ) -> Result<Proposal, String> {
        let req = pod_requests(pods, None, "cpu")?;
        resource_replicas(
            current,
            Some(target),
            0,
            true,
            pods,
            metrics(m),
            Some(&req),
            t0(),
            &Tuning::default(),
        )
    }

    #[test]
    fn ratio_tolerance_and_ceil() {
        let pods = vec![pod("a", "100m", true, 600), pod("b", "100m", true, 600)];
        // 200% of request against a 50% target: ratio 4 -> 8 replicas.
        assert_eq!(
            util_replicas(2, 50, &pods, &[("a", 200), ("b", 200)]),
            Ok((8, Some(200), 200))
        );
        // 54% against 50%: ratio 1.08 is within the 0.1 tolerance.
        assert_eq!(
            util_replicas(2, 50, &pods, &[("a", 54), ("b", 54)]),
            Ok((2, Some(54), 54))
        );
        // 56%: 1.12, out of tolerance -> ceil(1.12 * 2) = 3.
        assert_eq!(
            util_replicas(2, 50, &pods, &[("a", 56), ("b", 56)]),
            Ok((3, Some(56), 56))
        );
        // Scale down: 10% against 50% -> ceil(0.2 * 2) = 1.
        assert_eq!(
            util_replicas(2, 50, &pods, &[("a", 10), ("b", 10)]),
            Ok((1, Some(10), 10))
        );
    }

    #[test]
    fn missing_requests_and_metrics_fail() {
        let mut p = pod("a", "100m", true, 600);
        p["spec"]["containers"][0]["resources"] = json!({});
        assert_eq!(
            util_replicas(1, 50, &[p], &[("a", 10)]),
            Err("missing request for cpu in container c of Pod a".into())
        );
        assert_eq!(
            util_replicas(1, 50, &[], &[]),
            Err("no pods returned by selector while calculating replica count".into())
        );
        let pods = vec![pod("a", "100m", false, 600)];
        assert_eq!(
            util_replicas(1, 50, &pods, &[("a", 90)]),
            Err("did not receive metrics for targeted pods (pods might be unready)".into())
        );
    }

    #[test]
    fn unready_and_starting_pods_are_left_out_for_cpu() {
        // b just started (within the cpu initialization period) and its metric predates a full
        // window since it became ready: unready. Scaling up, it counts as using nothing.
        let pods = vec![pod("a", "100m", true, 600), pod("b", "100m", true, 5)];
        let g = group_pods(
            &pods,
            &metrics(&[("a", 300), ("b", 300)]),
            true,
            t0(),
            &Tuning::default(),
        );
        assert_eq!(g.ready, 1);
        assert!(g.unready.contains("b"));
        // a alone: 300% / 50% = 6; with b at 0: (300 + 0) / 200 = 150% -> 3 x 2 = 6.
        assert_eq!(
            util_replicas(2, 50, &pods, &[("a", 300), ("b", 300)]),
            Ok((6, Some(300), 300))
        );
        // Memory is not subject to readiness.
        let g = group_pods(
            &pods,
            &metrics(&[("a", 1), ("b", 1)]),
            false,
            t0(),
            &Tuning::default(),
        );
        assert_eq!(g.ready, 2);
        // A pending pod is unready; a pod without metrics is missing: on scale down it is
        // assumed to use its full request, which here reverses the direction -> no change.
        let mut pending = pod("p", "100m", false, 0);
        pending["status"]["phase"] = json!("Pending");
        let pods = vec![
            pod("a", "100m", true, 600),
            pod("m", "100m", true, 600),
            pending,
        ];
        assert_eq!(
            util_replicas(3, 50, &pods, &[("a", 40)]),
            Ok((3, Some(40), 40))
        );
    }

    #[test]
    fn average_value_targets() {
        let pods = vec![pod("a", "100m", true, 600), pod("b", "100m", true, 600)];
        // 300Mi average against 100Mi -> 6 (memory: no requests needed).
        let mi = 1024 * 1024 * 1000;
        let r = resource_replicas(
            2,
            None,
            100 * mi,
            false,
            &pods,
            metrics(&[("a", 300 * mi), ("b", 300 * mi)]),
            None,
            t0(),
            &Tuning::default(),
        );
        assert_eq!(r, Ok((6, None, 300 * mi)));
    }

    fn behavior(down_window: i64) -> Value {
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": down_window, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
        })
    }

    #[test]
    fn scale_down_is_stabilized_over_the_window() {
        let mut h = History::default();
        let b = behavior(300);
        let (r, _, _) = h.normalize_with_behavior(&b, 4, 4, 1, 10, t0());
        assert_eq!(r, 4);
        // A lower recommendation a minute later is held at the window's highest (4).
        let (r, able, _) =
            h.normalize_with_behavior(&b, 4, 1, 1, 10, t0() + chrono::Duration::seconds(60));
        assert_eq!(r, 4);
        assert_eq!(able.2, "ScaleDownStabilized");
        // After the window, the low recommendations rule.
        let (r, able, limited) =
            h.normalize_with_behavior(&b, 4, 1, 1, 10, t0() + chrono::Duration::seconds(400));
        assert_eq!((r, able.2, limited.1), (1, "ReadyForNewScale", "False"));
        // Without behavior: upstream's plain 5-minute window.
        let mut h = History::default();
        let w = chrono::Duration::minutes(5);
        assert_eq!(h.normalize_plain(w, 4, 4, 1, 10, t0()).0, 4);
        assert_eq!(
            h.normalize_plain(w, 4, 2, 1, 10, t0() + chrono::Duration::seconds(30))
                .0,
            4
        );
        assert_eq!(
            h.normalize_plain(w, 4, 2, 1, 10, t0() + chrono::Duration::seconds(400))
                .0,
            2
        );
    }

    #[test]
    fn policies_and_min_max_limit_the_rate() {
        let mut h = History::default();
        let b = behavior(0);
        // From 1, Pods+4 -> 5 vs Percent 100% -> 2: Max picks 5; desired 20 is limited.
        let (r, _, limited) = h.normalize_with_behavior(&b, 1, 20, 1, 30, t0());
        assert_eq!(r, 5);
        assert_eq!((limited.1, limited.2), ("True", "ScaleUpLimit"));
        h.store_scale_event(&b, 1, 5, t0());
        // Within the same period the budget is spent from the period's start (1): still 5.
        let (r, _, _) =
            h.normalize_with_behavior(&b, 5, 20, 1, 30, t0() + chrono::Duration::seconds(5));
        assert_eq!(r, 5);
        // After the period: from 5, +4 = 9 or x2 = 10 -> 10.
        let (r, _, _) =
            h.normalize_with_behavior(&b, 5, 20, 1, 30, t0() + chrono::Duration::seconds(20));
        assert_eq!(r, 10);
        // maxReplicas below the rate limit: TooManyReplicas.
        let mut h = History::default();
        let (r, _, limited) = h.normalize_with_behavior(&b, 2, 9, 1, 3, t0());
        assert_eq!((r, limited.2), (3, "TooManyReplicas"));
        // Scale down by at most one pod per period with a Pods policy; Min select.
        let b = json!({"scaleUp": behavior(0)["scaleUp"], "scaleDown": {"stabilizationWindowSeconds": 0,
            "selectPolicy": "Min", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60},
            {"type": "Percent", "value": 50, "periodSeconds": 60}]}});
        let mut h = History::default();
        let (r, _, limited) = h.normalize_with_behavior(&b, 6, 1, 1, 10, t0());
        assert_eq!((r, limited.2), (5, "ScaleDownLimit"));
        // Disabled: no scaling down at all.
        let mut b2 = b.clone();
        b2["scaleDown"]["selectPolicy"] = json!("Disabled");
        let mut h = History::default();
        assert_eq!(h.normalize_with_behavior(&b2, 6, 1, 1, 10, t0()).0, 6);
        // Plain normalization: min/max and the 2x/4 scale-up limit.
        let mut h = History::default();
        let w = chrono::Duration::zero();
        assert_eq!(h.normalize_plain(w, 1, 50, 1, 100, t0()).0, 4);
        assert_eq!(h.normalize_plain(w, 10, 50, 1, 100, t0()).0, 20);
        let mut h = History::default();
        let (r, _, l) = h.normalize_plain(w, 3, 0, 2, 100, t0());
        assert_eq!((r, l.2), (2, "TooFewReplicas"));
    }

    #[test]
    fn conditions_keep_transition_times() {
        let mut st = json!({});
        let c = ("AbleToScale", "True", "SucceededGetScale", "m".to_string());
        set_condition(&mut st, &c, "t1");
        set_condition(
            &mut st,
            &("AbleToScale", "True", "SucceededRescale", "x".into()),
            "t2",
        );
        assert_eq!(st["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(st["conditions"][0]["reason"], "SucceededRescale");
        set_condition(
            &mut st,
            &("AbleToScale", "False", "FailedGetScale", "y".into()),
            "t3",
        );
        assert_eq!(st["conditions"][0]["lastTransitionTime"], "t3");
        assert_eq!(parse_window(&json!("10s")), chrono::Duration::seconds(10));
        assert_eq!(parse_window(&json!("1m")), chrono::Duration::minutes(1));
    }
}
