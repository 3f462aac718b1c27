//! Server-side printing: `meta.k8s.io/v1 Table` for `kubectl get`, with the columns kubectl users
//! know from Kubernetes (priority 1 columns appear with `-o wide`).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::resources::ResourceDef;

type Col = (&'static str, &'static str, u8);

fn columns(kind: &str) -> Vec<Col> {
    let name = ("Name", "name", 0);
    let age = ("Age", "", 0);
    match kind {
        "Namespace" => vec![name, ("Status", "", 0), age],
        "Pod" => vec![
            name,
            ("Ready", "", 0),
            ("Status", "", 0),
            ("Restarts", "", 0),
            age,
            ("IP", "", 1),
            ("Node", "", 1),
            ("Nominated Node", "", 1),
            ("Readiness Gates", "", 1),
        ],
        "Node" => vec![
            name,
            ("Status", "", 0),
            ("Roles", "", 0),
            age,
            ("Version", "", 0),
            ("Internal-IP", "", 1),
            ("External-IP", "", 1),
            ("OS-Image", "", 1),
            ("Kernel-Version", "", 1),
            ("Container-Runtime", "", 1),
        ],
        "Service" => vec![
            name,
            ("Type", "", 0),
            ("Cluster-IP", "", 0),
            ("External-IP", "", 0),
            ("Port(s)", "", 0),
            age,
            ("Selector", "", 1),
        ],
        "ConfigMap" => vec![name, ("Data", "", 0), age],
        "Secret" => vec![name, ("Type", "", 0), ("Data", "", 0), age],
        "ServiceAccount" => vec![name, ("Secrets", "", 0), age],
        "Endpoints" => vec![name, ("Endpoints", "", 0), age],
        "Event" => vec![
            ("Last Seen", "", 0),
            ("Type", "", 0),
            ("Reason", "", 0),
            ("Object", "", 0),
            ("Subobject", "", 1),
            ("Source", "", 1),
            ("Message", "", 0),
            ("First Seen", "", 1),
            ("Count", "", 1),
            ("Name", "", 1),
        ],
        "Lease" => vec![name, ("Holder", "", 0), age],
        "Deployment" => vec![
            name,
            ("Ready", "", 0),
            ("Up-to-date", "", 0),
            ("Available", "", 0),
            age,
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ],
        "ReplicaSet" => vec![
            name,
            ("Desired", "", 0),
            ("Current", "", 0),
            ("Ready", "", 0),
            age,
            ("Containers", "", 1),
            ("Images", "", 1),
            ("Selector", "", 1),
        ],
        _ => vec![name, ("Created At", "date", 0)],
    }
}

/// Column type as the Table schema declares it.
fn col_type(name: &str) -> &'static str {
    match name {
        "Restarts" | "Data" | "Secrets" | "Desired" | "Current" | "Up-to-date" | "Available"
        | "Count" => "integer",
        _ => "string",
    }
}

pub fn column_definitions(kind: &str) -> Value {
    Value::Array(
        columns(kind)
            .into_iter()
            .map(|(n, fmt, prio)| {
                json!({"name": n, "type": col_type(n), "format": fmt, "description": n, "priority": prio})
            })
            .collect(),
    )
}

/// Kubernetes' HumanDuration (apimachinery/pkg/util/duration).
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "0s".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        let dd = d % 365;
        if dd == 0 {
            format!("{}y", d / 365)
        } else {
            format!("{}y{dd}d", d / 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age(ts: &Value, now: DateTime<Utc>) -> String {
    match ts
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    {
        Some(t) => human_duration((now - t.with_timezone(&Utc)).num_seconds()),
        None => "<unknown>".into(),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(x: String) -> String {
    if x.is_empty() {
        "<none>".into()
    } else {
        x
    }
}

pub fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            parts.push(format!("{k}={}", s(v)));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let vals: Vec<String> = e["values"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            let key = s(&e["key"]);
            parts.push(match e["operator"].as_str().unwrap_or("") {
                "In" => format!("{key} in ({})", vals.join(",")),
                "NotIn" => format!("{key} notin ({})", vals.join(",")),
                "Exists" => key,
                "DoesNotExist" => format!("!{key}"),
                op => format!("{key} {op} ({})", vals.join(",")),
            });
        }
    }
    or_none(parts.join(","))
}

fn map_selector(sel: &Value) -> String {
    match sel.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", s(v)))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    }
}

fn containers_and_images(pod_spec: &Value) -> (String, String) {
    let cs = pod_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<String> = cs.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = cs.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

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

fn node_status(node: &Value) -> String {
    let mut parts = Vec::new();
    let conds = node["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match conds.iter().find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => parts.push("Ready".to_string()),
        Some(c) if c["status"] == "False" => parts.push("NotReady".to_string()),
        _ => parts.push("Unknown".to_string()),
    }
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        parts.push("SchedulingDisabled".into());
    }
    parts.join(",")
}

fn node_roles(node: &Value) -> String {
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = node["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                if !r.is_empty() {
                    roles.push(r.to_string());
                }
            } else if k == "kubernetes.io/role" {
                roles.push(s(v));
            }
        }
    }
    roles.sort();
    or_none(roles.join(","))
}

fn node_address(node: &Value, ty: &str) -> String {
    node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["type"] == ty))
        .map(|x| s(&x["address"]))
        .map(or_none)
        .unwrap_or_else(|| "<none>".into())
}

fn service_ports(svc: &Value) -> String {
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let out: Vec<String> = ports
        .iter()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", int(&p["port"])),
                None => format!("{}/{proto}", int(&p["port"])),
            }
        })
        .collect();
    or_none(out.join(","))
}

fn endpoints_string(ep: &Value) -> String {
    let mut out = Vec::new();
    for sub in ep["subsets"].as_array().cloned().unwrap_or_default() {
        for a in sub["addresses"].as_array().cloned().unwrap_or_default() {
            let ports = sub["ports"].as_array().cloned().unwrap_or_default();
            if ports.is_empty() {
                out.push(s(&a["ip"]));
            }
            for p in ports {
                out.push(format!("{}:{}", s(&a["ip"]), int(&p["port"])));
            }
        }
    }
    or_none(out.join(","))
}

fn count_map(v: &Value) -> i64 {
    v.as_object().map(|m| m.len() as i64).unwrap_or(0)
}

pub fn cells(kind: &str, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let md = &o["metadata"];
    let name = json!(s(&md["name"]));
    let created = age(&md["creationTimestamp"], now);
    match kind {
        "Namespace" => vec![name, json!(s(&o["status"]["phase"])), json!(created)],
        "Pod" => {
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
                json!(created),
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
        "Node" => {
            let ni = &o["status"]["nodeInfo"];
            vec![
                name,
                json!(node_status(o)),
                json!(node_roles(o)),
                json!(created),
                json!(s(&ni["kubeletVersion"])),
                json!(node_address(o, "InternalIP")),
                json!(node_address(o, "ExternalIP")),
                json!(or_none(s(&ni["osImage"]))),
                json!(or_none(s(&ni["kernelVersion"]))),
                json!(or_none(s(&ni["containerRuntimeVersion"]))),
            ]
        }
        "Service" => {
            let ext = o["spec"]["externalIPs"]
                .as_array()
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                name,
                json!(s(&o["spec"]["type"])),
                json!(or_none(s(&o["spec"]["clusterIP"]))),
                json!(or_none(ext)),
                json!(service_ports(o)),
                json!(created),
                json!(map_selector(&o["spec"]["selector"])),
            ]
        }
        "ConfigMap" => vec![
            name,
            json!(count_map(&o["data"]) + count_map(&o["binaryData"])),
            json!(created),
        ],
        "Secret" => vec![
            name,
            json!(s(&o["type"])),
            json!(count_map(&o["data"])),
            json!(created),
        ],
        "ServiceAccount" => {
            vec![
                name,
                json!(o["secrets"].as_array().map(|a| a.len()).unwrap_or(0)),
                json!(created),
            ]
        }
        "Endpoints" => vec![name, json!(endpoints_string(o)), json!(created)],
        "Event" => {
            let last = if !o["lastTimestamp"].is_null() {
                &o["lastTimestamp"]
            } else if !o["eventTime"].is_null() {
                &o["eventTime"]
            } else {
                &md["creationTimestamp"]
            };
            let first = if !o["firstTimestamp"].is_null() {
                &o["firstTimestamp"]
            } else {
                last
            };
            let io = &o["involvedObject"];
            let object = format!("{}/{}", s(&io["kind"]).to_lowercase(), s(&io["name"]));
            vec![
                json!(age(last, now)),
                json!(s(&o["type"])),
                json!(s(&o["reason"])),
                json!(object),
                json!(s(&io["fieldPath"])),
                json!(format!(
                    "{}, {}",
                    s(&o["source"]["component"]),
                    s(&o["source"]["host"])
                )
                .trim_matches(|c| c == ',' || c == ' ')
                .to_string()),
                json!(s(&o["message"]).trim().to_string()),
                json!(age(first, now)),
                json!(o["count"].as_i64().unwrap_or(1)),
                name,
            ]
        }
        "Lease" => vec![
            name,
            json!(or_none(s(&o["spec"]["holderIdentity"]))),
            json!(created),
        ],
        "Deployment" => {
            let st = &o["status"];
            let (c, i) = containers_and_images(&o["spec"]["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(&st["readyReplicas"]),
                    int(&o["spec"]["replicas"])
                )),
                json!(int(&st["updatedReplicas"])),
                json!(int(&st["availableReplicas"])),
                json!(created),
                json!(c),
                json!(i),
                json!(selector_string(&o["spec"]["selector"])),
            ]
        }
        "ReplicaSet" => {
            let st = &o["status"];
            let (c, i) = containers_and_images(&o["spec"]["template"]["spec"]);
            vec![
                name,
                json!(int(&o["spec"]["replicas"])),
                json!(int(&st["replicas"])),
                json!(int(&st["readyReplicas"])),
                json!(created),
                json!(c),
                json!(i),
                json!(selector_string(&o["spec"]["selector"])),
            ]
        }
        _ => vec![name, md["creationTimestamp"].clone()],
    }
}

/// What `includeObject` asked for on each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

pub fn partial_metadata(o: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o["metadata"].clone(),
    })
}

pub fn row(def: &ResourceDef, o: &Value, include: IncludeObject, now: DateTime<Utc>) -> Value {
    let mut r = json!({"cells": cells(def.kind, o, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => r["object"] = partial_metadata(o),
        IncludeObject::Object => r["object"] = o.clone(),
    }
    r
}

pub fn table(
    def: &ResourceDef,
    objs: &[Value],
    rv: &str,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = Utc::now();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "rows": objs.iter().map(|o| row(def, o, include, now)).collect::<Vec<_>>(),
    });
    if with_columns {
        t["columnDefinitions"] = column_definitions(def.kind);
    } else {
        t["columnDefinitions"] = json!(null);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubernetes() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(10 * 3600), "10h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
        assert_eq!(human_duration(3 * 365 * 86400), "3y");
    }

    #[test]
    fn pod_cells_reflect_container_state() {
        let pod = json!({"metadata":{"name":"p","creationTimestamp":"2020-01-01T00:00:00Z"},
            "spec":{"containers":[{"name":"a"},{"name":"b"}],"nodeName":"n1"},
            "status":{"phase":"Running","podIP":"10.42.0.5","containerStatuses":[
                {"name":"a","ready":true,"restartCount":1,"state":{"running":{}}},
                {"name":"b","ready":false,"restartCount":2,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}});
        let c = cells("Pod", &pod, Utc::now());
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], 3);
        assert_eq!(c[5], "10.42.0.5");
        assert_eq!(c[6], "n1");
    }

    #[test]
    fn deployment_wide_columns() {
        let d = json!({"metadata":{"name":"web"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},
            "template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}},
            "status":{"readyReplicas":2,"updatedReplicas":3,"availableReplicas":2}});
        let c = cells("Deployment", &d, Utc::now());
        assert_eq!(c[1], "2/3");
        assert_eq!(c[5], "nginx");
        assert_eq!(c[6], "nginx:1.27");
        assert_eq!(c[7], "app=web");
        assert_eq!(columns("Deployment").len(), c.len());
    }

    #[test]
    fn every_kind_has_matching_cell_count() {
        for def in crate::resources::RESOURCES {
            let o = json!({"metadata":{"name":"x"}});
            assert_eq!(
                cells(def.kind, &o, Utc::now()).len(),
                columns(def.kind).len(),
                "{}",
                def.kind
            );
        }
    }
}
