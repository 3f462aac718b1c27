//! Conversion of Kubernetes pods into [`PodSpecLite`] and resource quantity parsing.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSecurityContext};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::expand::expand;
use super::{
    ContainerSecurity, ContainerSpecLite, EnvValue, EnvVarLite, HostPortMapping, PodSpecLite,
    PortProtocol, PullPolicy, ResourceLimits, RestartPolicy, Result, RuntimeError,
};
use crate::security::{effective_capabilities, is_safe_sysctl};

/// Parses a Kubernetes CPU quantity (`"500m"`, `"2"`, `"0.5"`) into millicores.
pub fn parse_cpu_millis(q: &str) -> Option<u64> {
    let q = q.trim();
    if let Some(m) = q.strip_suffix('m') {
        return m.parse::<u64>().ok();
    }
    let v: f64 = q.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some((v * 1000.0).ceil() as u64)
}

/// Parses a Kubernetes memory quantity (`"128Mi"`, `"1G"`, `"1e6"`, `"1000"`) into bytes.
pub fn parse_memory_bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    for (suffix, mult) in SUFFIXES {
        if let Some(num) = q.strip_suffix(suffix) {
            let v: f64 = num.parse().ok()?;
            if !v.is_finite() || v < 0.0 {
                return None;
            }
            return Some((v * mult).ceil() as u64);
        }
    }
    let v: f64 = q.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(v.ceil() as u64)
}

fn quantity<'a>(
    limits: Option<&'a std::collections::BTreeMap<String, Quantity>>,
    key: &str,
) -> Option<&'a str> {
    limits.and_then(|l| l.get(key)).map(|q| q.0.as_str())
}

/// The container's security settings, the pod's `securityContext` filling what the container's
/// leaves unset.
fn container_security(c: &Container, pod: Option<&PodSecurityContext>) -> ContainerSecurity {
    let sc = c.security_context.as_ref();
    ContainerSecurity {
        capabilities: effective_capabilities(sc.and_then(|s| s.capabilities.as_ref())),
        run_as_user: sc
            .and_then(|s| s.run_as_user)
            .or_else(|| pod.and_then(|p| p.run_as_user)),
        run_as_group: sc
            .and_then(|s| s.run_as_group)
            .or_else(|| pod.and_then(|p| p.run_as_group)),
        run_as_non_root: sc
            .and_then(|s| s.run_as_non_root)
            .or_else(|| pod.and_then(|p| p.run_as_non_root))
            .unwrap_or(false),
        readonly_rootfs: sc
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
    }
}

fn container_lite(c: &Container, pod: Option<&PodSecurityContext>) -> Result<ContainerSpecLite> {
    let image =
        c.image.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
            RuntimeError::InvalidSpec(format!("container {} has no image", c.name))
        })?;
    let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
    let cpu_millis = match quantity(limits, "cpu") {
        Some(q) => Some(parse_cpu_millis(q).ok_or_else(|| {
            RuntimeError::InvalidSpec(format!("container {}: bad cpu limit {q:?}", c.name))
        })?),
        None => None,
    };
    let memory_bytes = match quantity(limits, "memory") {
        Some(q) => Some(parse_memory_bytes(q).ok_or_else(|| {
            RuntimeError::InvalidSpec(format!("container {}: bad memory limit {q:?}", c.name))
        })?),
        None => None,
    };
    let cpu_request_millis = match quantity(
        c.resources.as_ref().and_then(|r| r.requests.as_ref()),
        "cpu",
    ) {
        Some(q) => Some(parse_cpu_millis(q).ok_or_else(|| {
            RuntimeError::InvalidSpec(format!("container {}: bad cpu request {q:?}", c.name))
        })?),
        // As the API server defaults it: the request is the limit.
        None => cpu_millis,
    };
    let env = c
        .env
        .iter()
        .flatten()
        // valueFrom (secrets, configmaps, field refs) is resolved by the caller; only literal values here.
        .filter(|e| e.value_from.is_none())
        .map(|e| EnvVarLite::literal(&e.name, e.value.clone().unwrap_or_default()))
        .collect();
    Ok(ContainerSpecLite {
        name: c.name.clone(),
        pull_policy: PullPolicy::from_k8s(c.image_pull_policy.as_deref(), &image),
        image,
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        env,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        limits: ResourceLimits {
            cpu_request_millis,
            cpu_millis,
            memory_bytes,
        },
        mounts: Vec::new(),
        security: container_security(c, pod),
        sidecar: c.restart_policy.as_deref() == Some("Always"),
        termination_message_path: Some(
            c.termination_message_path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_TERMINATION_MESSAGE_PATH.to_string()),
        ),
        termination_message_fallback: c.termination_message_policy.as_deref()
            == Some("FallbackToLogsOnError"),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        target_container: None,
    })
}

/// An ephemeral container as the [`Container`] it is run as (the fields it shares with one;
/// ports, probes, lifecycle and resources are refused by the API server).
pub fn ephemeral_as_container(e: &EphemeralContainer) -> Container {
    Container {
        name: e.name.clone(),
        image: e.image.clone(),
        image_pull_policy: e.image_pull_policy.clone(),
        command: e.command.clone(),
        args: e.args.clone(),
        env: e.env.clone(),
        env_from: e.env_from.clone(),
        working_dir: e.working_dir.clone(),
        volume_mounts: e.volume_mounts.clone(),
        volume_devices: e.volume_devices.clone(),
        security_context: e.security_context.clone(),
        stdin: e.stdin,
        stdin_once: e.stdin_once,
        tty: e.tty,
        termination_message_path: e.termination_message_path.clone(),
        termination_message_policy: e.termination_message_policy.clone(),
        ..Default::default()
    }
}

/// Where the termination message is read from when the pod does not say.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// A container as it is created: its final environment and its command and args with `$(VAR)`
/// references expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedContainer {
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub args: Vec<String>,
}

/// The kubelet's `makeEnvironmentVariables` and `ExpandContainerCommandAndArgs`: the container's
/// variables in order (literal values expanded against the variables before them, then the
/// service variables), service variables not defined by the pod appended; then `$(VAR)` in
/// command and args expanded against the whole environment. `pod_ips`: the sandbox's IPs.
pub fn resolve_container(
    pod: &PodSpecLite,
    c: &ContainerSpecLite,
    pod_ips: &[String],
) -> ResolvedContainer {
    let mut env: Vec<(String, String)> = Vec::with_capacity(c.env.len() + pod.service_env.len());
    for e in &c.env {
        let value = match &e.value {
            EnvValue::Literal(v) => {
                let lookup = |name: &str| {
                    env.iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .or_else(|| pod.service_env.iter().find(|(n, _)| n == name))
                        .map(|(_, v)| v.clone())
                };
                expand(v, &lookup)
            }
            EnvValue::Resolved(v) => v.clone(),
            EnvValue::PodIp => pod_ips.first().cloned().unwrap_or_default(),
            EnvValue::PodIps => pod_ips.join(","),
        };
        env.retain(|(n, _)| *n != e.name);
        env.push((e.name.clone(), value));
    }
    for (k, v) in &pod.service_env {
        if !env.iter().any(|(n, _)| n == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    let lookup = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let command = c.command.iter().map(|s| expand(s, &lookup)).collect();
    let args = c.args.iter().map(|s| expand(s, &lookup)).collect();
    ResolvedContainer { env, command, args }
}

impl PodSpecLite {
    /// Derives the runtime view of a Kubernetes pod. Environment variables with `valueFrom` are skipped (the
    /// caller resolves them and appends them to `containers[i].env`).
    pub fn from_pod(pod: &Pod) -> Result<PodSpecLite> {
        let meta = &pod.metadata;
        let uid = meta
            .uid
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| RuntimeError::InvalidSpec("pod has no metadata.uid".into()))?;
        let name = meta
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| RuntimeError::InvalidSpec("pod has no metadata.name".into()))?;
        let spec = pod
            .spec
            .as_ref()
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("pod {name} has no spec")))?;
        let containers = spec
            .containers
            .iter()
            .map(|c| container_lite(c, spec.security_context.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let init_containers = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| container_lite(c, spec.security_context.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let ephemeral_containers = spec
            .ephemeral_containers
            .iter()
            .flatten()
            .map(|e| {
                let mut c =
                    container_lite(&ephemeral_as_container(e), spec.security_context.as_ref())?;
                c.target_container = e.target_container_name.clone().filter(|t| !t.is_empty());
                Ok(c)
            })
            .collect::<Result<Vec<_>>>()?;
        if containers.is_empty() {
            return Err(RuntimeError::InvalidSpec(format!(
                "pod {name} has no containers"
            )));
        }
        let host_ports = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.is_some_and(|h| h > 0))
            .map(|p| {
                let protocol = PortProtocol::from_k8s(p.protocol.as_deref()).ok_or_else(|| {
                    RuntimeError::InvalidSpec(format!(
                        "pod {name}: unsupported port protocol {:?}",
                        p.protocol.as_deref().unwrap_or("")
                    ))
                })?;
                Ok(HostPortMapping {
                    protocol,
                    container_port: p.container_port,
                    host_port: p.host_port.unwrap_or(0),
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PodSpecLite {
            uid,
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            name: name.clone(),
            init_containers,
            containers,
            ephemeral_containers,
            restart_policy: RestartPolicy::from_k8s(spec.restart_policy.as_deref()),
            labels: meta.labels.clone().unwrap_or_default(),
            // Read from the pod's imagePullSecrets when the pod is prepared (needs the API).
            pull_keyring: Default::default(),
            hostname: spec.hostname.clone().or(Some(name)),
            supplemental_groups: {
                let psc = spec.security_context.as_ref();
                let mut groups: Vec<i64> = psc
                    .and_then(|p| p.supplemental_groups.clone())
                    .unwrap_or_default();
                if let Some(g) = psc.and_then(|p| p.fs_group) {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
                groups
            },
            sysctls: spec
                .security_context
                .as_ref()
                .and_then(|p| p.sysctls.as_ref())
                .into_iter()
                .flatten()
                .filter(|s| is_safe_sysctl(&s.name))
                .map(|s| (s.name.replace('/', "."), s.value.clone()))
                .collect(),
            share_process_namespace: spec.share_process_namespace.unwrap_or(false),
            service_env: Vec::new(),
            etc_hosts: None,
            pod_dir: None,
            host_ports,
            dns: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_cpu_millis("500m"), Some(500));
        assert_eq!(parse_cpu_millis("2"), Some(2000));
        assert_eq!(parse_cpu_millis("0.25"), Some(250));
        assert_eq!(parse_cpu_millis("x"), None);
        assert_eq!(parse_memory_bytes("64Mi"), Some(64 * 1024 * 1024));
        assert_eq!(parse_memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory_bytes("1000"), Some(1000));
        assert_eq!(parse_memory_bytes("1.5Gi"), Some(1610612736));
        assert_eq!(parse_memory_bytes("-1"), None);
        assert_eq!(parse_memory_bytes("12Qi"), None);
    }

    #[test]
    fn host_ports_from_pod() {
        let pod = |ports: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "uid": "u"},
                "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]}}))
            .unwrap()
        };
        let spec = PodSpecLite::from_pod(&pod(serde_json::json!([
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "10.0.0.1"},
            {"containerPort": 9090}
        ])))
        .unwrap();
        assert_eq!(
            spec.host_ports,
            vec![
                HostPortMapping {
                    protocol: PortProtocol::Tcp,
                    container_port: 80,
                    host_port: 8080,
                    host_ip: String::new()
                },
                HostPortMapping {
                    protocol: PortProtocol::Udp,
                    container_port: 53,
                    host_port: 5353,
                    host_ip: "10.0.0.1".into()
                }
            ]
        );
        // Bad input is refused with the reason, never half-applied.
        let bad = PodSpecLite::from_pod(&pod(serde_json::json!([
            {"containerPort": 80, "hostPort": 8080, "protocol": "QUIC"}
        ])));
        assert!(
            matches!(&bad, Err(RuntimeError::InvalidSpec(m)) if m.contains("QUIC")),
            "{bad:?}"
        );
    }

    #[test]
    fn from_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "c", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["echo hi"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                    "workingDir": "/tmp",
                    "resources": {"limits": {"cpu": "250m", "memory": "32Mi"}}
                }]
            }
        }))
        .expect("pod json");
        let s = PodSpecLite::from_pod(&pod).expect("convert");
        assert_eq!(s.uid, "u1");
        assert_eq!(s.namespace, "ns");
        assert_eq!(s.restart_policy, RestartPolicy::Never);
        let c = &s.containers[0];
        assert_eq!(c.pull_policy, PullPolicy::IfNotPresent);
        assert_eq!(c.command, vec!["sh", "-c"]);
        assert_eq!(c.args, vec!["echo hi"]);
        assert_eq!(c.env, vec![EnvVarLite::literal("A", "1")]);
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert!(!c.termination_message_fallback);
        assert_eq!(c.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(
            c.limits,
            ResourceLimits {
                cpu_request_millis: Some(250),
                cpu_millis: Some(250),
                memory_bytes: Some(32 << 20)
            }
        );
        assert_eq!(c.security, ContainerSecurity::default());
        assert_eq!(c.security.capabilities.len(), 14);
        assert!(s.supplemental_groups.is_empty() && s.sysctls.is_empty());
        assert_eq!(PullPolicy::from_k8s(None, "busybox"), PullPolicy::Always);
        assert_eq!(
            PullPolicy::from_k8s(None, "localhost:5000/busybox"),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::from_k8s(None, "localhost:5000/busybox:1"),
            PullPolicy::IfNotPresent
        );
    }

    #[test]
    fn env_order_expansion_and_pod_ip() {
        let pod = PodSpecLite {
            service_env: vec![
                ("KUBERNETES_SERVICE_HOST".into(), "10.43.0.1".into()),
                ("OVERRIDDEN".into(), "from-service".into()),
            ],
            ..Default::default()
        };
        let c = ContainerSpecLite {
            env: vec![
                EnvVarLite {
                    name: "FROM_CM".into(),
                    value: EnvValue::Resolved("$(KUBERNETES_SERVICE_HOST)".into()),
                },
                EnvVarLite::literal("LATER_REF", "$(DEFINED_LATER)"),
                EnvVarLite::literal("API", "https://$(KUBERNETES_SERVICE_HOST):443"),
                EnvVarLite {
                    name: "POD_IP".into(),
                    value: EnvValue::PodIp,
                },
                EnvVarLite::literal("URL", "http://$(POD_IP):8080/$$(POD_IP)"),
                EnvVarLite::literal("DEFINED_LATER", "x"),
                EnvVarLite::literal("OVERRIDDEN", "from-pod"),
                EnvVarLite {
                    name: "IPS".into(),
                    value: EnvValue::PodIps,
                },
            ],
            command: vec!["echo".into(), "$(URL)".into()],
            args: vec!["$(OVERRIDDEN)".into(), "$(NOPE)".into(), "$(IPS)".into()],
            ..Default::default()
        };
        let ips = vec!["10.42.0.7".to_string(), "fd00::7".to_string()];
        let r = resolve_container(&pod, &c, &ips);
        let get = |k: &str| r.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        // valueFrom values are not expanded; references to later variables stay as written.
        assert_eq!(get("FROM_CM"), Some("$(KUBERNETES_SERVICE_HOST)"));
        assert_eq!(get("LATER_REF"), Some("$(DEFINED_LATER)"));
        assert_eq!(get("API"), Some("https://10.43.0.1:443"));
        assert_eq!(get("URL"), Some("http://10.42.0.7:8080/$(POD_IP)"));
        assert_eq!(get("OVERRIDDEN"), Some("from-pod"));
        assert_eq!(get("IPS"), Some("10.42.0.7,fd00::7"));
        assert_eq!(get("KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
        // The pod's variables first, in order, then the services'.
        let names: Vec<&str> = r.env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"FROM_CM"));
        assert_eq!(names.last(), Some(&"KUBERNETES_SERVICE_HOST"));
        assert_eq!(names.iter().filter(|n| **n == "OVERRIDDEN").count(), 1);
        assert_eq!(r.command, vec!["echo", "http://10.42.0.7:8080/$(POD_IP)"]);
        assert_eq!(r.args, vec!["from-pod", "$(NOPE)", "10.42.0.7,fd00::7"]);
    }

    #[test]
    fn security_context_is_merged() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {
                "shareProcessNamespace": true,
                "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "runAsNonRoot": true,
                    "supplementalGroups": [5, 6], "fsGroup": 7,
                    "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.msgmax", "value": "9"}]},
                "containers": [
                    {"name": "a", "image": "busybox:1", "securityContext": {"runAsUser": 0, "runAsNonRoot": false,
                        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}},
                    {"name": "b", "image": "busybox:1"}
                ]
            }
        }))
        .expect("pod json");
        let s = PodSpecLite::from_pod(&pod).expect("convert");
        assert!(s.share_process_namespace);
        assert_eq!(s.supplemental_groups, vec![5, 6, 7]);
        assert_eq!(
            s.sysctls.into_iter().collect::<Vec<_>>(),
            vec![("net.ipv4.tcp_syncookies".to_string(), "1".to_string())]
        );
        let a = &s.containers[0].security;
        assert_eq!(
            a,
            &ContainerSecurity {
                capabilities: vec!["NET_BIND_SERVICE".into()],
                run_as_user: Some(0),
                run_as_group: Some(2000),
                run_as_non_root: false,
                readonly_rootfs: true,
            }
        );
        let b = &s.containers[1].security;
        assert_eq!(
            (
                b.run_as_user,
                b.run_as_group,
                b.run_as_non_root,
                b.readonly_rootfs
            ),
            (Some(1000), Some(2000), true, false)
        );
        assert_eq!(b.capabilities.len(), 14);
    }
}
