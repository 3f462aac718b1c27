//! Small helpers over JSON objects shared by the controllers.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use daas_apiserver::{ApiError, LocalClient};
use serde_json::{json, Value};

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

pub fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

pub fn is_deleting(o: &Value) -> bool {
    !o["metadata"]["deletionTimestamp"].is_null()
}

/// The ownerReference with `controller: true`, if any.
pub fn controller_ref(o: &Value) -> Option<&Value> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

pub fn controlled_by(o: &Value, owner_uid: &str) -> bool {
    controller_ref(o)
        .map(|r| r["uid"].as_str() == Some(owner_uid))
        .unwrap_or(false)
}

/// An ownerReference pointing at `owner` as its managing controller.
pub fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Pod condition of the given type is "True".
pub fn condition_true(o: &Value, ty: &str) -> bool {
    condition(o, ty)
        .map(|c| c["status"] == "True")
        .unwrap_or(false)
}

pub fn condition<'a>(o: &'a Value, ty: &str) -> Option<&'a Value> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

pub fn pod_terminated(p: &Value) -> bool {
    matches!(
        p["status"]["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    )
}

/// Pods that count toward a controller's replicas: not terminated, not being deleted.
pub fn pod_active(p: &Value) -> bool {
    !pod_terminated(p) && !is_deleting(p)
}

pub fn pod_ready(p: &Value) -> bool {
    condition_true(p, "Ready")
}

/// Is the pod available (ready for at least `min_ready` seconds)? When it is ready but not yet
/// available, also returns how long until it will be.
pub fn pod_available(p: &Value, min_ready: i64, now: DateTime<Utc>) -> (bool, Option<Duration>) {
    if !pod_ready(p) {
        return (false, None);
    }
    if min_ready <= 0 {
        return (true, None);
    }
    let since = condition(p, "Ready").and_then(|c| parse_time(&c["lastTransitionTime"]));
    match since {
        None => (false, Some(Duration::from_secs(1))),
        Some(t) => {
            let at = t + chrono::Duration::seconds(min_ready);
            if at <= now {
                (true, None)
            } else {
                let left = (at - now).to_std().unwrap_or(Duration::from_secs(1));
                (false, Some(left + Duration::from_millis(50)))
            }
        }
    }
}

/// Append `key=value` list of a JSON string map, for messages.
pub fn str_map(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Canonical JSON text: object keys sorted at every level (stable whatever the map order).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            let mut first = true;
            for k in keys {
                let val = &m[k];
                if val.is_null() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(val, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// 32-bit FNV-1a.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// 64-bit FNV-1a.
pub fn fnv64a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Map a string onto the consonant/digit alphabet Kubernetes uses for generated names (no vowels,
/// so no accidental words; no look-alike characters).
pub fn safe_encode(s: &str) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHA[(b as usize) % ALPHA.len()] as char)
        .collect()
}

/// Path of a namespaced collection or object.
pub fn path(prefix: &str, ns: &str, plural: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{prefix}/namespaces/{ns}/{plural}/{n}"),
        None => format!("{prefix}/namespaces/{ns}/{plural}"),
    }
}

pub const CORE: &str = "/api/v1";
pub const APPS: &str = "/apis/apps/v1";

/// Record a core/v1 Event about `involved`. The event name is derived from the involved object,
/// reason and message, so repeats bump `count` and `lastTimestamp` of one Event instead of
/// creating new ones.
pub async fn record_event(
    client: &LocalClient,
    involved: &Value,
    ty: &str,
    reason: &str,
    message: &str,
    component: &str,
) -> Result<(), ApiError> {
    let ns = match namespace(involved) {
        "" => "default",
        n => n,
    };
    let key = format!("{}/{}/{}/{}", uid(involved), ty, reason, message);
    let ev_name = format!("{}.{:016x}", name(involved), fnv64a(key.as_bytes()));
    let ev_path = path(CORE, ns, "events", Some(&ev_name));
    let now = now_rfc3339();
    if let Some(existing) = client.get_opt(&ev_path).await? {
        let count = existing["count"].as_i64().unwrap_or(1) + 1;
        client
            .merge_patch(&ev_path, &json!({"count": count, "lastTimestamp": now}))
            .await?;
        return Ok(());
    }
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": ev_name, "namespace": ns},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": name(involved),
            "namespace": involved["metadata"]["namespace"],
            "uid": uid(involved),
            "resourceVersion": involved["metadata"]["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "type": ty,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    match client.create(&path(CORE, ns, "events", None), &ev).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => client
            .merge_patch(&ev_path, &json!({"lastTimestamp": now}))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    }
}

/// Objects grouped by namespace, for passes that sync each owner against its namespace's objects.
pub fn by_namespace<T: std::borrow::Borrow<Value>>(objs: &[T]) -> HashMap<&str, Vec<&Value>> {
    let mut m: HashMap<&str, Vec<&Value>> = HashMap::new();
    for o in objs {
        let o: &Value = o.borrow();
        m.entry(namespace(o)).or_default().push(o);
    }
    m
}

/// The outcome of a pass that syncs many objects: it goes on after a failure, keeps the first
/// error, and asks to run again at the earliest requeue any object wanted.
#[derive(Debug, Default)]
pub struct Pass {
    requeue: Option<Duration>,
    err: Option<ApiError>,
}

impl Pass {
    /// Record one object's sync result (`kind` names the controller in the log).
    pub fn record(&mut self, kind: &str, obj: &Value, r: Result<Option<Duration>, ApiError>) {
        match r {
            Ok(Some(d)) => self.requeue = Some(self.requeue.map_or(d, |r| r.min(d))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(kind, name = name(obj), namespace = namespace(obj), error = %e.message, "sync failed");
                self.err.get_or_insert(e);
            }
        }
    }

    /// The pass's result: the first error, else the earliest requeue.
    pub fn finish(self) -> Result<Option<Duration>, ApiError> {
        match self.err {
            Some(e) => Err(e),
            None => Ok(self.requeue),
        }
    }
}

/// Log-and-continue wrapper for best-effort writes (events).
pub async fn best_effort(what: &str, r: Result<(), ApiError>) {
    if let Err(e) = r {
        tracing::debug!(what, error = %e.message, code = e.code, "best-effort write failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":null}}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"y":[1,{"c":3,"d":2}]},"b":1}"#);
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv32a(b""), 0x811c9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c292c);
        assert_eq!(fnv64a(b"a"), 0xaf63dc4c8601ec8c);
    }
}
