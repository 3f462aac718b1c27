//! DefaultTolerationSeconds (upstream's admission plugin of that name): a new pod that does not
//! already tolerate the node lifecycle controller's NoExecute taints `node.kubernetes.io/not-ready`
//! and `node.kubernetes.io/unreachable` gets a toleration of each for a bounded time
//! (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`, 300 s
//! each upstream), so a node that stops reporting evicts its pods only after that time. A toleration
//! with an empty key (`operator: Exists`) or an empty effect counts as tolerating the taint, as
//! upstream matches it; pods keep whatever tolerations they brought.

use serde_json::{json, Value};

pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// Upstream's default for both flags.
pub const DEFAULT_SECONDS: u32 = 300;

/// The tolerationSeconds given to new pods for each taint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerations {
    pub not_ready_seconds: u32,
    pub unreachable_seconds: u32,
}

impl Default for DefaultTolerations {
    fn default() -> Self {
        DefaultTolerations {
            not_ready_seconds: DEFAULT_SECONDS,
            unreachable_seconds: DEFAULT_SECONDS,
        }
    }
}

/// Whether `toleration` covers the NoExecute taint with `key` the way upstream's plugin checks
/// it: same key or an empty key, NoExecute or an empty effect.
fn covers(toleration: &Value, key: &str) -> bool {
    let k = toleration["key"].as_str().unwrap_or("");
    let effect = toleration["effect"].as_str().unwrap_or("");
    (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
}

impl DefaultTolerations {
    /// Add the missing default tolerations to a new pod's `spec.tolerations`.
    pub fn admit_pod(&self, pod: &mut Value) {
        let have: Vec<Value> = pod["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut add = Vec::new();
        for (key, seconds) in [
            (NOT_READY_TAINT, self.not_ready_seconds),
            (UNREACHABLE_TAINT, self.unreachable_seconds),
        ] {
            if !have.iter().any(|t| covers(t, key)) {
                add.push(
                    json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": seconds}),
                );
            }
        }
        if add.is_empty() || !pod["spec"].is_object() {
            return;
        }
        let mut all = have;
        all.extend(add);
        pod["spec"]["tolerations"] = Value::Array(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerations(pod: &Value) -> Vec<(String, String, Option<i64>)> {
        pod["spec"]["tolerations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        (
                            t["key"].as_str().unwrap_or("").to_string(),
                            t["effect"].as_str().unwrap_or("").to_string(),
                            t["tolerationSeconds"].as_i64(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn adds_both_defaults_to_a_pod_without_tolerations() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        DefaultTolerations::default().admit_pod(&mut pod);
        assert_eq!(
            tolerations(&pod),
            vec![
                (NOT_READY_TAINT.into(), "NoExecute".into(), Some(300)),
                (UNREACHABLE_TAINT.into(), "NoExecute".into(), Some(300)),
            ]
        );
        assert_eq!(pod["spec"]["tolerations"][0]["operator"], "Exists");
    }

    #[test]
    fn configured_seconds_are_used() {
        let mut pod = json!({"spec": {}});
        DefaultTolerations {
            not_ready_seconds: 7,
            unreachable_seconds: 0,
        }
        .admit_pod(&mut pod);
        assert_eq!(
            tolerations(&pod),
            vec![
                (NOT_READY_TAINT.into(), "NoExecute".into(), Some(7)),
                (UNREACHABLE_TAINT.into(), "NoExecute".into(), Some(0)),
            ]
        );
    }

    #[test]
    fn existing_tolerations_are_kept_and_not_duplicated() {
        // Its own unreachable toleration (any seconds) stays; only not-ready is added.
        let mut pod = json!({"spec": {"tolerations": [
            {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}});
        DefaultTolerations::default().admit_pod(&mut pod);
        assert_eq!(
            tolerations(&pod),
            vec![
                (UNREACHABLE_TAINT.into(), "NoExecute".into(), Some(5)),
                ("dedicated".into(), "NoSchedule".into(), None),
                (NOT_READY_TAINT.into(), "NoExecute".into(), Some(300)),
            ]
        );
        // Tolerating everything (empty key, empty effect): nothing added.
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        DefaultTolerations::default().admit_pod(&mut all);
        assert_eq!(tolerations(&all).len(), 1);
        // An empty effect with the key covers the NoExecute taint; a NoSchedule one does not.
        let mut some = json!({"spec": {"tolerations": [
            {"key": NOT_READY_TAINT, "operator": "Exists"},
            {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]}});
        DefaultTolerations::default().admit_pod(&mut some);
        assert_eq!(
            tolerations(&some),
            vec![
                (NOT_READY_TAINT.into(), "".into(), None),
                (UNREACHABLE_TAINT.into(), "NoSchedule".into(), None),
                (UNREACHABLE_TAINT.into(), "NoExecute".into(), Some(300)),
            ]
        );
    }
}
