//! Pod Security Standards (the `baseline` and `restricted` levels, version "latest") as the
//! upstream `pod-security-admission` plugin evaluates them, with the same check names and
//! message texts.
//!
//! The namespace label `pod-security.kubernetes.io/enforce` picks the level a Pod must meet
//! (`privileged` when absent); user-tier namespaces (`k3s-daas.io/tier=user`) are always enforced
//! at `restricted`. `pod-security.kubernetes.io/warn`, and the enforce level applied to the pod
//! templates of workload objects, only produce `Warning` headers.

use std::collections::BTreeSet;

use serde_json::Value;

pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const WARN_LABEL: &str = "pod-security.kubernetes.io/warn";
pub const TIER_LABEL: &str = "k3s-daas.io/tier";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// Parse a label value; `None` for an unknown level.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
}

/// The levels a namespace asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespacePolicy {
    pub enforce: Level,
    pub warn: Level,
}

impl NamespacePolicy {
    /// Read the policy from a Namespace object (absent namespace: everything privileged). An
    /// unknown level value fails closed (restricted), as upstream does.
    pub fn of(ns: Option<&Value>) -> NamespacePolicy {
        let labels = ns.map(|n| &n["metadata"]["labels"]);
        let level = |key: &str| match labels.and_then(|l| l[key].as_str()) {
            None => Level::Privileged,
            Some(v) => Level::parse(v).unwrap_or(Level::Restricted),
        };
        let user_tier = labels.and_then(|l| l[TIER_LABEL].as_str()) == Some("user");
        let enforce = if user_tier {
            Level::Restricted
        } else {
            level(ENFORCE_LABEL)
        };
        NamespacePolicy {
            enforce,
            warn: level(WARN_LABEL),
        }
    }
}

/// One failed check: upstream's ForbiddenReason and ForbiddenDetail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{} ({})", self.reason, self.detail)
        }
    }
}

/// `violates PodSecurity "restricted:latest": a (x), b (y)` (without the leading verb part).
pub fn describe(level: Level, violations: &[Violation]) -> String {
    let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    format!(
        "PodSecurity \"{}:latest\": {}",
        level.as_str(),
        list.join(", ")
    )
}

fn pluralize<'a>(one: &'a str, many: &'a str, n: usize) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Every container of a pod spec: init containers, containers, ephemeral containers.
fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| spec[k].as_array().map(|a| a.iter()).into_iter().flatten())
}

fn cname(c: &Value) -> String {
    c["name"].as_str().unwrap_or("").to_string()
}

fn is_true(v: &Value) -> bool {
    v.as_bool() == Some(true)
}

// ---------------------------------------------------------------- baseline checks

fn host_namespaces(spec: &Value) -> Option<Violation> {
    let set: Vec<&str> = [
        ("hostIPC", "hostIPC=true"),
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
    ]
    .into_iter()
    .filter(|(k, _)| is_true(&spec[*k]))
    .map(|(_, s)| s)
    .collect();
    (!set.is_empty()).then(|| Violation {
        reason: "host namespaces".into(),
        detail: set.join(", "),
    })
}

fn privileged(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = containers(spec)
        .filter(|c| is_true(&c["securityContext"]["privileged"]))
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "privileged".into(),
        detail: format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    })
}

const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn added_caps(c: &Value) -> impl Iterator<Item = &str> {
    c["securityContext"]["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
}

fn capabilities_baseline(spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let mut any = false;
        for cap in added_caps(c).filter(|cap| !BASELINE_CAPS.contains(cap)) {
            caps.insert(cap.to_string());
            any = true;
        }
        if any {
            bad.push(cname(c));
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "non-default capabilities".into(),
        detail: format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps.into_iter().collect::<Vec<_>>())
        ),
    })
}

fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["volumes"].as_array().into_iter().flatten()
}

fn host_path_volumes(spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = volumes(spec)
        .filter(|v| !v["hostPath"].is_null())
        .map(|v| v["name"].as_str().unwrap_or("").to_string())
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPath volumes".into(),
        detail: format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    })
}

fn host_ports(spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        let mut any = false;
        for p in c["ports"].as_array().into_iter().flatten() {
            if let Some(hp) = p["hostPort"].as_i64().filter(|hp| *hp != 0) {
                ports.insert(hp.to_string());
                any = true;
            }
        }
        if any {
            bad.push(cname(c));
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPort".into(),
        detail: format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
    })
}

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn app_armor(meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    if let Some(ann) = meta["annotations"].as_object() {
        for (k, v) in ann {
            let v = v.as_str().unwrap_or("");
            let allowed = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
            if k.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed {
                bad.push(format!("{k}=\"{v}\""));
            }
        }
    }
    let unconfined = |sc: &Value| sc["appArmorProfile"]["type"].as_str() == Some("Unconfined");
    if unconfined(&spec["securityContext"]) {
        bad.push("pod securityContext.appArmorProfile.type=\"Unconfined\"".to_string());
    }
    for c in containers(spec).filter(|c| unconfined(&c["securityContext"])) {
        bad.push(format!(
            "container \"{}\" securityContext.appArmorProfile.type=\"Unconfined\"",
            cname(c)
        ));
    }
    bad.sort();
    (!bad.is_empty()).then(|| Violation {
        reason: pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad.len(),
        )
        .into(),
        detail: bad.join(", "),
    })
}

fn se_linux_options(spec: &Value) -> Option<Violation> {
    const ALLOWED_TYPES: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut check = |o: &Value| -> bool {
        if o.is_null() {
            return true;
        }
        let mut ok = true;
        let ty = o["type"].as_str().unwrap_or("");
        if !ALLOWED_TYPES.contains(&ty) {
            bad_types.insert(ty.to_string());
            ok = false;
        }
        if !o["user"].as_str().unwrap_or("").is_empty() {
            set_user = true;
            ok = false;
        }
        if !o["role"].as_str().unwrap_or("").is_empty() {
            set_role = true;
            ok = false;
        }
        ok
    };
    let mut setters = Vec::new();
    if !check(&spec["securityContext"]["seLinuxOptions"]) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| !check(&c["securityContext"]["seLinuxOptions"]))
        .map(cname)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    Some(Violation {
        reason: "seLinuxOptions".into(),
        detail: format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    })
}

fn proc_mount(spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut kinds = BTreeSet::new();
    for c in containers(spec) {
        if let Some(pm) = c["securityContext"]["procMount"]
            .as_str()
            .filter(|pm| *pm != "Default")
        {
            kinds.insert(pm.to_string());
            bad.push(cname(c));
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "procMount".into(),
        detail: format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&kinds.into_iter().collect::<Vec<_>>())
        ),
    })
}

fn seccomp_baseline(spec: &Value) -> Option<Violation> {
    let unconfined = |sc: &Value| sc["seccompProfile"]["type"].as_str() == Some("Unconfined");
    let mut setters = Vec::new();
    if unconfined(&spec["securityContext"]) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| unconfined(&c["securityContext"]))
        .map(cname)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| Violation {
        reason: "seccompProfile".into(),
        detail: format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            setters.join(" and ")
        ),
    })
}

pub use daas_protocol::sysctl::SAFE_SYSCTLS;

fn sysctls(spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = spec["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "forbidden sysctls".into(),
        detail: bad.join(", "),
    })
}

fn windows_host_process(spec: &Value) -> Option<Violation> {
    let hp = |sc: &Value| is_true(&sc["windowsOptions"]["hostProcess"]);
    let mut setters = Vec::new();
    if hp(&spec["securityContext"]) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| hp(&c["securityContext"]))
        .map(cname)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| Violation {
        reason: "hostProcess".into(),
        detail: format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    })
}

// ---------------------------------------------------------------- restricted checks

fn allow_privilege_escalation(spec: &Value) -> Option<Violation> {
    // Ephemeral containers are included; a pod of a Windows OS is exempt upstream.
    if spec["os"]["name"].as_str() == Some("windows") {
        return None;
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false))
        .map(cname)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "allowPrivilegeEscalation != false".into(),
        detail: format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    })
}

/// Volume source keys a restricted pod may use.
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];
/// Volume source keys Kubernetes knows (anything else is reported as "unknown").
const KNOWN_VOLUME_TYPES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes(spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut kinds = BTreeSet::new();
    for v in volumes(spec) {
        let Some(m) = v.as_object() else { continue };
        let sources: Vec<&str> = m
            .iter()
            .filter(|(k, val)| k.as_str() != "name" && !val.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        if sources.iter().any(|s| RESTRICTED_VOLUME_TYPES.contains(s)) {
            continue;
        }
        let kind = sources
            .iter()
            .find(|s| KNOWN_VOLUME_TYPES.contains(s))
            .copied()
            .unwrap_or("unknown");
        kinds.insert(kind.to_string());
        bad.push(v["name"].as_str().unwrap_or("").to_string());
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "restricted volume types".into(),
        detail: format!(
            "{} {} {} {}",
            format_args!(
                "{} {}",
                pluralize("volume", "volumes", bad.len()),
                join_quote(&bad)
            ),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                kinds.len()
            ),
            join_quote(&kinds.into_iter().collect::<Vec<_>>())
        ),
    })
}

fn run_as_non_root(spec: &Value) -> Option<Violation> {
    let pod = &spec["securityContext"]["runAsNonRoot"];
    let mut setters = Vec::new();
    if pod.as_bool() == Some(false) {
        setters.push("pod".to_string());
    }
    let pod_ok = pod.as_bool() == Some(true);
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        match c["securityContext"]["runAsNonRoot"].as_bool() {
            Some(false) => explicit.push(cname(c)),
            Some(true) => {}
            None if !pod_ok => implicit.push(cname(c)),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return Some(Violation {
            reason: "runAsNonRoot != true".into(),
            detail: format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        });
    }
    (!implicit.is_empty()).then(|| Violation {
        reason: "runAsNonRoot != true".into(),
        detail: format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            containers_phrase(&implicit)
        ),
    })
}

fn run_as_user(spec: &Value) -> Option<Violation> {
    let mut setters = Vec::new();
    if spec["securityContext"]["runAsUser"].as_i64() == Some(0) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = containers(spec)
        .filter(|c| c["securityContext"]["runAsUser"].as_i64() == Some(0))
        .map(cname)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    (!setters.is_empty()).then(|| Violation {
        reason: "runAsUser=0".into(),
        detail: format!("{} must not set runAsUser=0", setters.join(" and ")),
    })
}

fn seccomp_restricted(spec: &Value) -> Option<Violation> {
    if spec["os"]["name"].as_str() == Some("windows") {
        return None;
    }
    let valid = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let pod_profile = &spec["securityContext"]["seccompProfile"];
    let mut pod_set = false;
    if !pod_profile.is_null() {
        let t = pod_profile["type"].as_str().unwrap_or("");
        if valid(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            bad_values.insert(t.to_string());
        }
    }
    let (mut explicit, mut implicit) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        let p = &c["securityContext"]["seccompProfile"];
        if !p.is_null() {
            let t = p["type"].as_str().unwrap_or("");
            if !valid(t) {
                explicit.push(cname(c));
                bad_values.insert(t.to_string());
            }
        } else if !pod_set {
            implicit.push(cname(c));
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return Some(Violation {
            reason: "seccompProfile".into(),
            detail: format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&bad_values.into_iter().collect::<Vec<_>>())
            ),
        });
    }
    (!implicit.is_empty()).then(|| Violation {
        reason: "seccompProfile".into(),
        detail: format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ),
    })
}

fn capabilities_restricted(spec: &Value) -> Option<Violation> {
    if spec["os"]["name"].as_str() == Some("windows") {
        return None;
    }
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let drops_all = c["securityContext"]["capabilities"]["drop"]
            .as_array()
            .map(|d| d.iter().any(|x| x.as_str() == Some("ALL")))
            .unwrap_or(false);
        if !drops_all {
            missing_drop.push(cname(c));
        }
        let mut any = false;
        for cap in added_caps(c).filter(|cap| *cap != "NET_BIND_SERVICE") {
            caps.insert(cap.to_string());
            any = true;
        }
        if any {
            adding.push(cname(c));
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&caps.into_iter().collect::<Vec<_>>())
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "unrestricted capabilities".into(),
        detail: details.join("; "),
    })
}

/// Evaluate a pod's metadata and spec against `level`; the violations come in upstream's check
/// order (by check ID), with the restricted checks replacing the baseline ones they override.
pub fn check(level: Level, meta: &Value, spec: &Value) -> Vec<Violation> {
    type Check = fn(&Value, &Value) -> Option<Violation>;
    // (check ID, minimum level, overridden at restricted by another check, function)
    let checks: [(&str, Level, bool, Check); 17] = [
        (
            "allowPrivilegeEscalation",
            Level::Restricted,
            false,
            |_, s| allow_privilege_escalation(s),
        ),
        ("appArmorProfile", Level::Baseline, false, app_armor),
        ("capabilities_baseline", Level::Baseline, true, |_, s| {
            capabilities_baseline(s)
        }),
        (
            "capabilities_restricted",
            Level::Restricted,
            false,
            |_, s| capabilities_restricted(s),
        ),
        ("hostNamespaces", Level::Baseline, false, |_, s| {
            host_namespaces(s)
        }),
        ("hostPathVolumes", Level::Baseline, true, |_, s| {
            host_path_volumes(s)
        }),
        ("hostPorts", Level::Baseline, false, |_, s| host_ports(s)),
        ("privileged", Level::Baseline, false, |_, s| privileged(s)),
        ("procMount", Level::Baseline, false, |_, s| proc_mount(s)),
        ("restrictedVolumes", Level::Restricted, false, |_, s| {
            restricted_volumes(s)
        }),
        ("runAsNonRoot", Level::Restricted, false, |_, s| {
            run_as_non_root(s)
        }),
        ("runAsUser", Level::Restricted, false, |_, s| run_as_user(s)),
        ("seLinuxOptions", Level::Baseline, false, |_, s| {
            se_linux_options(s)
        }),
        ("seccompProfile_baseline", Level::Baseline, true, |_, s| {
            seccomp_baseline(s)
        }),
        (
            "seccompProfile_restricted",
            Level::Restricted,
            false,
            |_, s| seccomp_restricted(s),
        ),
        ("sysctls", Level::Baseline, false, |_, s| sysctls(s)),
        ("windowsHostProcess", Level::Baseline, false, |_, s| {
            windows_host_process(s)
        }),
    ];
    checks
        .iter()
        .filter(|(_, min, overridden, _)| {
            level >= *min && !(level == Level::Restricted && *overridden)
        })
        .filter_map(|(_, _, _, f)| f(meta, spec))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(level: Level, pod: Value) -> Vec<String> {
        check(level, &pod["metadata"], &pod["spec"])
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    fn compliant() -> Value {
        json!({"metadata": {"name": "ok"}, "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "c", "image": "busybox", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "cfg", "configMap": {"name": "x"}}, {"name": "tmp", "emptyDir": {}}]}})
    }

    #[test]
    fn compliant_pod_passes_every_level() {
        for l in [Level::Privileged, Level::Baseline, Level::Restricted] {
            assert!(
                msgs(l, compliant()).is_empty(),
                "{l:?}: {:?}",
                msgs(l, compliant())
            );
        }
    }

    #[test]
    fn root_pod_message_matches_upstream() {
        let pod = json!({"metadata": {"name": "x"}, "spec": {
            "hostNetwork": true, "hostPID": true,
            "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}});
        assert_eq!(
            msgs(Level::Baseline, pod.clone()),
            vec![
                "host namespaces (hostNetwork=true, hostPID=true)",
                "hostPath volumes (volume \"root\")",
                "privileged (container \"c\" must not set securityContext.privileged=true)",
            ]
        );
        let v = check(Level::Restricted, &pod["metadata"], &pod["spec"]);
        assert_eq!(
            describe(Level::Restricted, &v),
            "PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), \
unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), \
host namespaces (hostNetwork=true, hostPID=true), \
privileged (container \"c\" must not set securityContext.privileged=true), \
restricted volume types (volume \"root\" uses restricted volume type \"hostPath\"), \
runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true), \
seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(msgs(Level::Privileged, pod).is_empty());
    }

    #[test]
    fn each_check_trips_on_its_field() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut p = compliant();
            f(&mut p);
            p
        };
        let cases: Vec<(Value, Level, &str)> = vec![
            (with(&|p| p["spec"]["hostIPC"] = json!(true)), Level::Baseline, "host namespaces (hostIPC=true)"),
            (
                with(&|p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 8080}])),
                Level::Baseline,
                "hostPort (container \"c\" uses hostPort 8080)",
            ),
            (
                with(&|p| p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["SYS_ADMIN"])),
                Level::Baseline,
                "non-default capabilities (container \"c\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add)",
            ),
            (
                with(&|p| p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["CHOWN"])),
                Level::Restricted,
                "unrestricted capabilities (container \"c\" must not include \"CHOWN\" in securityContext.capabilities.add)",
            ),
            (
                with(&|p| p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = json!(true)),
                Level::Restricted,
                "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)",
            ),
            (
                with(&|p| p["spec"]["securityContext"]["runAsNonRoot"] = json!(false)),
                Level::Restricted,
                "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
            ),
            (
                with(&|p| p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0)),
                Level::Restricted,
                "runAsUser=0 (container \"c\" must not set runAsUser=0)",
            ),
            (
                with(&|p| p["spec"]["securityContext"]["seccompProfile"]["type"] = json!("Unconfined")),
                Level::Baseline,
                "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")",
            ),
            (
                with(&|p| p["spec"]["containers"][0]["securityContext"]["procMount"] = json!("Unmasked")),
                Level::Baseline,
                "procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")",
            ),
            (
                with(&|p| p["spec"]["securityContext"]["sysctls"] = json!([{"name": "kernel.msgmax", "value": "1"}])),
                Level::Baseline,
                "forbidden sysctls (kernel.msgmax)",
            ),
            (
                with(&|p| p["metadata"]["annotations"] = json!({"container.apparmor.security.beta.kubernetes.io/c": "unconfined"})),
                Level::Baseline,
                "forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c=\"unconfined\")",
            ),
            (
                with(&|p| p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "spc_t", "user": "root"})),
                Level::Baseline,
                "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user may not be set)",
            ),
            (
                with(&|p| p["spec"]["volumes"] = json!([{"name": "n", "nfs": {"server": "s", "path": "/"}}])),
                Level::Restricted,
                "restricted volume types (volume \"n\" uses restricted volume type \"nfs\")",
            ),
        ];
        for (pod, level, want) in cases {
            assert_eq!(msgs(level, pod), vec![want.to_string()]);
        }
    }

    #[test]
    fn init_and_ephemeral_containers_are_checked() {
        let mut p = compliant();
        p["spec"]["initContainers"] =
            json!([{"name": "i", "image": "x", "securityContext": {"privileged": true}}]);
        p["spec"]["ephemeralContainers"] =
            json!([{"name": "e", "image": "x", "securityContext": {"privileged": true}}]);
        let m = msgs(Level::Baseline, p);
        assert_eq!(
            m,
            vec![
                "privileged (containers \"i\", \"e\" must not set securityContext.privileged=true)"
            ]
        );
    }

    #[test]
    fn namespace_policy() {
        let ns = |labels: Value| json!({"metadata": {"name": "n", "labels": labels}});
        assert_eq!(NamespacePolicy::of(None).enforce, Level::Privileged);
        assert_eq!(
            NamespacePolicy::of(Some(&ns(json!({})))).enforce,
            Level::Privileged
        );
        assert_eq!(
            NamespacePolicy::of(Some(&ns(json!({ENFORCE_LABEL: "baseline"})))).enforce,
            Level::Baseline
        );
        assert_eq!(
            NamespacePolicy::of(Some(&ns(json!({ENFORCE_LABEL: "bogus"})))).enforce,
            Level::Restricted
        );
        // A user namespace is restricted whatever its labels say.
        let user =
            ns(json!({TIER_LABEL: "user", ENFORCE_LABEL: "privileged", WARN_LABEL: "baseline"}));
        assert_eq!(
            NamespacePolicy::of(Some(&user)),
            NamespacePolicy {
                enforce: Level::Restricted,
                warn: Level::Baseline
            }
        );
    }
}
