//! Pods (pkg/registry/core/pod/strategy.go).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use daas_store::StoreError;
use k8s_openapi::api::core::v1 as core;
use serde_json::{json, Value};

use super::{
    decode_as, name_and_age, validate_pod_spec, Cause, Column, PodSpecAt, Strategy, AGE, NAME,
};
use crate::error::{ApiError, ApiResult};
use crate::handlers::{
    encode, get_object, json_response, now_rfc3339, ns_of, Ctx, TapMsg, UPDATE_RETRIES,
};
use crate::request::ResourceTarget;
use crate::resources::{ResourceDef, Subresource::*};
use crate::table::{int, or_none, s};
use crate::typed::{default_key, default_pod_spec, obj_mut, qos_class};

#[derive(Debug)]
pub struct PodStrategy;

/// The REST shape of Pods, with their strategy.
pub const RESOURCE: ResourceDef = ResourceDef {
    group: "",
    version: "v1",
    kind: "Pod",
    list_kind: "PodList",
    plural: "pods",
    singular: "pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    subresources: &[
        Status,
        Log,
        Binding,
        Eviction,
        Exec,
        Attach,
        PortForward,
        Proxy,
        EphemeralContainers,
    ],
    has_spec: true,
    strategy: &PodStrategy,
};

#[async_trait::async_trait]
impl Strategy for PodStrategy {
    fn decode(&self, obj: &Value) -> Result<Value, String> {
        super::podspec::check_quantities(&obj["spec"])?;
        decode_as::<core::Pod>(obj)
    }

    /// The RuntimeClass admission plugin's mutation (overhead, node selector, tolerations).
    async fn allocate(&self, ctx: &Ctx, obj: &mut Value) -> ApiResult<()> {
        super::runtimeclass::admit_pod(ctx, obj).await
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }

    fn defaults(&self, obj: &mut Value) {
        default_pod_spec(obj_mut(obj, "spec"));
        default_requests_to_limits(&mut obj["spec"]);
        let status = obj_mut(obj, "status");
        default_key(status, "phase", json!("Pending"));
        let qos = qos_class(obj);
        obj_mut(obj, "status").insert("qosClass".into(), json!(qos));
    }

    fn validate(&self, obj: &Value, causes: &mut Vec<Cause>) {
        validate_pod_spec(&obj["spec"], "spec", causes);
    }

    /// Ephemeral containers are only added through `pods/ephemeralcontainers`.
    fn validate_create(&self, obj: &Value, causes: &mut Vec<Cause>) {
        if obj["spec"]["ephemeralContainers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            causes.push((
                "spec.ephemeralContainers".into(),
                "Forbidden: cannot create pods with ephemeral containers".into(),
            ));
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<Cause>) {
        super::podspec::validate_pod_update(old, new, causes);
    }

    /// A pod running on a node is deleted gracefully: it gets a deletionTimestamp and its grace
    /// period; the node's agent stops the containers and then deletes it with grace period 0.
    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let bound = obj["spec"]["nodeName"]
            .as_str()
            .map(|n| !n.is_empty())
            .unwrap_or(false);
        let terminal = matches!(
            obj["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        if !bound || terminal {
            return None;
        }
        let grace = requested.unwrap_or_else(|| {
            obj["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30)
        });
        Some(grace.max(0))
    }

    fn delete_returns_object(&self) -> bool {
        true
    }

    fn pod_spec_at(&self) -> Option<PodSpecAt> {
        Some(PodSpecAt::Pod)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            NAME,
            ("Ready", "", 0),
            ("Status", "", 0),
            ("Restarts", "", 0),
            AGE,
            ("IP", "", 1),
            ("Node", "", 1),
            ("Nominated Node", "", 1),
            ("Readiness Gates", "", 1),
        ]
    }

    fn cells(&self, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
        let (name, created) = name_and_age(o, now);
        let (ready, status, restarts) = pod_status(o);
        let gates = o["spec"]["readinessGates"]
            .as_array()
            .map(|g| g.len())
            .unwrap_or(0);
        vec![
            name,
            json!(ready),
            json!(status),
            json!(restarts),
            created,
            json!(or_none(s(&o["status"]["podIP"]))),
            json!(or_none(s(&o["spec"]["nodeName"]))),
            json!(or_none(s(&o["status"]["nominatedNodeName"]))),
            json!(if gates == 0 {
                "<none>".to_string()
            } else {
                format!("0/{gates}")
            }),
        ]
    }
}

/// `POST pods/{name}/binding`: assign a pending pod to a node (what the scheduler does).
pub async fn bind(
    ctx: &Ctx,
    t: &ResourceTarget,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<Response> {
    let binding = crate::request::decode_body(headers, body)?;
    if binding["kind"]
        .as_str()
        .map(|k| k != "Binding")
        .unwrap_or(false)
    {
        return Err(ApiError::bad_request(
            "the body of a pods/binding request must be a Binding",
        ));
    }
    let node = binding["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                t.def,
                name,
                vec![("target.name".into(), "Required value".into())],
            )
        })?;
    for _ in 0..UPDATE_RETRIES {
        let (old, kv) = get_object(ctx, t.def, ns_of(t), name).await?;
        if let Some(cur) = old["spec"]["nodeName"].as_str().filter(|s| !s.is_empty()) {
            return Err(ApiError::conflict(t.def, name)
                .tap_msg(format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{cur}\"")));
        }
        if !old["metadata"]["deletionTimestamp"].is_null() {
            return Err(ApiError::conflict(t.def, name).tap_msg(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        let mut conds: Vec<Value> = new["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conds.retain(|c| c["type"] != "PodScheduled");
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}));
        new["status"]["conditions"] = json!(conds);
        match ctx
            .store
            .update(&kv.key, &encode(&new)?, kv.mod_revision)
            .await
        {
            Ok(_) => {
                return Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(t.def, name)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(t.def, name))
}

/// READY, STATUS and RESTARTS as kubectl prints them (printers.go printPod).
fn pod_status(pod: &Value) -> (String, String, i64) {
    let st = &pod["status"];
    let mut reason = st["reason"]
        .as_str()
        .unwrap_or_else(|| st["phase"].as_str().unwrap_or("Pending"))
        .to_string();
    let total = pod["spec"]["containers"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let mut ready = 0;
    let mut restarts = 0;
    let mut init_reason = None;
    if let Some(ics) = st["initContainerStatuses"].as_array() {
        let n = ics.len();
        for (i, c) in ics.iter().enumerate() {
            restarts += int(&c["restartCount"]);
            let state = &c["state"];
            if state["terminated"].is_object() && int(&state["terminated"]["exitCode"]) == 0 {
                continue;
            }
            if let Some(r) = state["terminated"]["reason"].as_str() {
                init_reason = Some(format!("Init:{r}"));
            } else if let Some(r) = state["waiting"]["reason"]
                .as_str()
                .filter(|r| *r != "PodInitializing")
            {
                init_reason = Some(format!("Init:{r}"));
            } else {
                init_reason = Some(format!("Init:{i}/{n}"));
            }
            break;
        }
    }
    if let Some(r) = init_reason {
        reason = r;
    } else if let Some(cs) = st["containerStatuses"].as_array() {
        let mut has_running = false;
        for c in cs.iter().rev() {
            restarts += int(&c["restartCount"]);
            let state = &c["state"];
            if let Some(r) = state["waiting"]["reason"].as_str() {
                reason = r.to_string();
            } else if state["terminated"].is_object() {
                reason = match state["terminated"]["reason"].as_str() {
                    Some(r) => r.to_string(),
                    None => match state["terminated"]["signal"].as_i64() {
                        Some(sig) if sig != 0 => format!("Signal:{sig}"),
                        _ => format!("ExitCode:{}", int(&state["terminated"]["exitCode"])),
                    },
                };
            } else if state["running"].is_object() && c["ready"].as_bool() == Some(true) {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        reason = if st["reason"].as_str() == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    (format!("{ready}/{total}"), reason, restarts)
}

/// Upstream `SetDefaults_Pod` (pods only, not templates): a container's limit stands in for its
/// missing request of the same resource.
fn default_requests_to_limits(spec: &mut Value) {
    for field in ["containers", "initContainers"] {
        for c in spec[field].as_array_mut().into_iter().flatten() {
            let Some(limits) = c["resources"]["limits"].as_object().cloned() else {
                continue;
            };
            let res = &mut c["resources"];
            if !res["requests"].is_object() {
                res["requests"] = json!({});
            }
            if let Some(req) = res["requests"].as_object_mut() {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cells_reflect_container_state() {
        let pod = json!({"metadata":{"name":"p","creationTimestamp":"2020-01-01T00:00:00Z"},
            "spec":{"containers":[{"name":"a"},{"name":"b"}],"nodeName":"n1"},
            "status":{"phase":"Running","podIP":"10.42.0.5","containerStatuses":[
                {"name":"a","ready":true,"restartCount":1,"state":{"running":{}}},
                {"name":"b","ready":false,"restartCount":2,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}});
        let c = PodStrategy.cells(&pod, Utc::now());
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], 3);
        assert_eq!(c[5], "10.42.0.5");
        assert_eq!(c[6], "n1");
    }

    #[test]
    fn limits_stand_in_for_missing_requests() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "300m", "memory": "1Gi"}, "requests": {"memory": "150Mi"}}},
            {"name": "b"}
        ], "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "1"}}}]}});
        PodStrategy.defaults(&mut pod);
        let c = &pod["spec"]["containers"];
        assert_eq!(
            c[0]["resources"]["requests"],
            json!({"cpu": "300m", "memory": "150Mi"})
        );
        assert!(c[1]["resources"]["requests"].is_null());
        assert_eq!(
            pod["spec"]["initContainers"][0]["resources"]["requests"],
            json!({"cpu": "1"})
        );
    }

    #[test]
    fn only_running_pods_delete_gracefully() {
        let pending = json!({"spec":{}});
        assert_eq!(PodStrategy.grace_period(&pending, Some(30)), None);
        let running = json!({"spec":{"nodeName":"n1","terminationGracePeriodSeconds":5},"status":{"phase":"Running"}});
        assert_eq!(PodStrategy.grace_period(&running, None), Some(5));
        assert_eq!(PodStrategy.grace_period(&running, Some(-3)), Some(0));
        let done = json!({"spec":{"nodeName":"n1"},"status":{"phase":"Succeeded"}});
        assert_eq!(PodStrategy.grace_period(&done, None), None);
    }

    #[test]
    fn pod_defaults() {
        let mut pod = json!({"spec":{"containers":[{"name":"c","image":"busybox:1.36"},{"name":"d","image":"nginx"}]}});
        PodStrategy.defaults(&mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["spec"]["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
    }
}
