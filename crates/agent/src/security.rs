//! Node-side admission: the staker host's own check of every pod before anything of it is
//! started, independent of what the master admitted. A pod that could reach the host (privileged
//! containers, host namespaces, host ports, extra capabilities, privilege escalation, unconfined
//! seccomp, unmasked /proc, unsafe sysctls, hostPath volumes over the agent's own files) is refused
//! as the kubelet refuses pods it cannot admit: phase `Failed`, reason `Forbidden`, message
//! `Pod was rejected: ...` listing every violation.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Capabilities, Pod, SeccompProfile, SecurityContext};

/// The capabilities a container gets from the runtime by default (containerd's and Docker's set).
pub const RUNTIME_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SYS_CHROOT",
    "MKNOD",
    "AUDIT_WRITE",
    "SETFCAP",
];

pub use daas_protocol::sysctl::SAFE_SYSCTLS;

/// The `reason` of a refused pod's status and event.
pub const REJECT_REASON: &str = "Forbidden";

/// Whether `name` (with `.` or `/` separators) is one of [`SAFE_SYSCTLS`].
pub fn is_safe_sysctl(name: &str) -> bool {
    let dotted = name.replace('/', ".");
    SAFE_SYSCTLS.contains(&dotted.as_str())
}

/// A capability name as the runtime wants it: upper case, without the `CAP_` prefix.
pub fn normalize_capability(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// The capability set a container runs with: the runtime default set (or nothing when `drop`
/// holds `ALL`), plus the adds that belong to the default set, minus the drops. Adds outside the
/// default set are never granted, whatever admission decided.
pub fn effective_capabilities(caps: Option<&Capabilities>) -> Vec<String> {
    let add: Vec<String> = caps
        .and_then(|c| c.add.as_ref())
        .into_iter()
        .flatten()
        .map(|c| normalize_capability(c))
        .collect();
    let drop: Vec<String> = caps
        .and_then(|c| c.drop.as_ref())
        .into_iter()
        .flatten()
        .map(|c| normalize_capability(c))
        .collect();
    let drop_all = drop.iter().any(|d| d == "ALL");
    RUNTIME_DEFAULT_CAPABILITIES
        .iter()
        .filter(|c| !drop_all || add.iter().any(|a| a == *c))
        .filter(|c| !drop.iter().any(|d| d == *c))
        .map(|c| c.to_string())
        .collect()
}

/// Where a container is declared in the pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Container,
    InitContainer,
    EphemeralContainer,
}

impl fmt::Display for ContainerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerKind::Container => "container",
            ContainerKind::InitContainer => "initContainer",
            ContainerKind::EphemeralContainer => "ephemeralContainer",
        })
    }
}

/// A container named in a violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    pub kind: ContainerKind,
    pub name: String,
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind, self.name)
    }
}

/// Where a seccomp profile was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompScope {
    Pod,
    Container(ContainerRef),
}

/// One reason the node refuses a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Privileged(ContainerRef),
    HostNetwork,
    HostPid,
    HostIpc,
    HostPort {
        container: ContainerRef,
        port: i32,
    },
    /// Capabilities added outside the runtime default set.
    Capabilities {
        container: ContainerRef,
        capabilities: Vec<String>,
    },
    AllowPrivilegeEscalation(ContainerRef),
    /// A seccomp profile other than `RuntimeDefault` (`Unconfined` or `Localhost`).
    Seccomp {
        scope: SeccompScope,
        profile: String,
    },
    ProcMount {
        container: ContainerRef,
        proc_mount: String,
    },
    Sysctls(Vec<String>),
    /// A hostPath that is, contains or lies inside a path the node protects.
    HostPath {
        volume: String,
        path: String,
        protected: PathBuf,
        what: &'static str,
    },
    /// A hostPath that is not an absolute path.
    HostPathNotAbsolute {
        volume: String,
        path: String,
    },
}

impl Violation {
    /// The Pod Security Standards name of the check this violation fails.
    pub fn category(&self) -> &'static str {
        match self {
            Violation::Privileged(_) => "privileged",
            Violation::HostNetwork | Violation::HostPid | Violation::HostIpc => "host namespaces",
            Violation::HostPort { .. } => "hostPort",
            Violation::Capabilities { .. } => "non-default capabilities",
            Violation::AllowPrivilegeEscalation(_) => "allowPrivilegeEscalation",
            Violation::Seccomp { .. } => "seccompProfile",
            Violation::ProcMount { .. } => "procMount",
            Violation::Sysctls(_) => "forbidden sysctls",
            Violation::HostPath { .. } | Violation::HostPathNotAbsolute { .. } => {
                "hostPath volumes"
            }
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Privileged(c) => {
                write!(f, "{c} must not set securityContext.privileged=true")
            }
            Violation::HostNetwork => f.write_str("hostNetwork=true"),
            Violation::HostPid => f.write_str("hostPID=true"),
            Violation::HostIpc => f.write_str("hostIPC=true"),
            Violation::HostPort { container, port } => {
                write!(f, "{container} uses hostPort {port}")
            }
            Violation::Capabilities {
                container,
                capabilities,
            } => {
                let list: Vec<String> = capabilities.iter().map(|c| format!("{c:?}")).collect();
                write!(
                    f,
                    "{container} must not include {} in securityContext.capabilities.add",
                    list.join(", ")
                )
            }
            Violation::AllowPrivilegeEscalation(c) => {
                write!(
                    f,
                    "{c} must not set securityContext.allowPrivilegeEscalation=true"
                )
            }
            Violation::Seccomp { scope, profile } => {
                match scope {
                    SeccompScope::Pod => f.write_str("pod")?,
                    SeccompScope::Container(c) => write!(f, "{c}")?,
                }
                write!(
                    f,
                    " must not set securityContext.seccompProfile.type to {profile:?}"
                )
            }
            Violation::ProcMount {
                container,
                proc_mount,
            } => write!(
                f,
                "{container} must not set securityContext.procMount to {proc_mount:?}"
            ),
            Violation::Sysctls(names) => f.write_str(&names.join(", ")),
            Violation::HostPath {
                volume,
                path,
                protected,
                what,
            } => write!(
                f,
                "volume {volume:?} with path {path:?} exposes {what} {}",
                protected.display()
            ),
            Violation::HostPathNotAbsolute { volume, path } => {
                write!(f, "volume {volume:?} path {path:?} is not an absolute path")
            }
        }
    }
}

/// Every violation of a refused pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Rejection {
    pub violations: Vec<Violation>,
}

impl Rejection {
    /// The event message: the violations grouped by check, Pod Security style
    /// (`privileged (container "c" must not ...), host namespaces (hostNetwork=true, hostPID=true)`).
    pub fn message(&self) -> String {
        let mut groups: Vec<(&'static str, Vec<String>)> = Vec::new();
        for v in &self.violations {
            let detail = v.to_string();
            match groups.iter_mut().find(|(c, _)| *c == v.category()) {
                Some((_, details)) => details.push(detail),
                None => groups.push((v.category(), vec![detail])),
            }
        }
        let parts: Vec<String> = groups
            .into_iter()
            .map(|(c, d)| format!("{c} ({})", d.join(", ")))
            .collect();
        format!(
            "the node refuses pods that can reach the host: {}",
            parts.join(", ")
        )
    }

    /// The pod status message, shaped like the kubelet's `rejectPod`.
    pub fn status_message(&self) -> String {
        format!("Pod was rejected: {}", self.message())
    }
}

/// A host path pods must not see, with what it is (for the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedPath {
    pub path: PathBuf,
    pub what: &'static str,
}

/// Lexically normalise an absolute path (`.` dropped, `..` popped), then resolve symlinks of its
/// longest existing prefix, so `/tmp/link-to-root/..` or a symlink to `/` cannot hide a path.
pub fn resolve_host_path(path: &Path) -> PathBuf {
    let mut lexical = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => lexical.push(n),
            Component::ParentDir => {
                lexical.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    // The longest existing prefix, canonicalised; the rest appended as written.
    let mut existing = lexical.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return lexical,
        }
    }
}

/// The node's admission check; see the module docs.
#[derive(Debug, Clone)]
pub struct NodeAdmission {
    protected: Vec<ProtectedPath>,
    /// The staker lets pods publish host ports (`allow_host_ports`).
    host_ports: bool,
}

impl NodeAdmission {
    /// Protects `paths` (resolved now) plus the host's kernel interfaces and the default
    /// containerd locations.
    pub fn new(paths: impl IntoIterator<Item = ProtectedPath>) -> NodeAdmission {
        let mut protected: Vec<ProtectedPath> = Vec::new();
        let defaults = [
            ("/var/lib/containerd", "the containerd state"),
            ("/run/containerd", "the containerd state"),
            ("/var/run/containerd", "the containerd state"),
            ("/proc", "the host's /proc"),
            ("/sys", "the host's /sys"),
            ("/dev", "the host's /dev"),
        ];
        let all = paths
            .into_iter()
            .chain(defaults.into_iter().map(|(p, what)| ProtectedPath {
                path: PathBuf::from(p),
                what,
            }));
        for p in all {
            for path in [p.path.clone(), resolve_host_path(&p.path)] {
                if path.is_absolute() && !protected.iter().any(|q| q.path == path) {
                    protected.push(ProtectedPath { path, what: p.what });
                }
            }
        }
        NodeAdmission {
            protected,
            host_ports: false,
        }
    }

    /// Also admit pods publishing `hostPort`s on the node (the staker's opt-in).
    pub fn allowing_host_ports(mut self, allow: bool) -> NodeAdmission {
        self.host_ports = allow;
        self
    }

    /// The admission of an agent with this data directory, key file and containerd socket.
    pub fn for_agent(
        data_dir: &Path,
        key_file: Option<&Path>,
        config_file: Option<&Path>,
        containerd_socket: Option<&Path>,
    ) -> NodeAdmission {
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir().unwrap_or_default().join(p)
            }
        };
        let mut paths = vec![ProtectedPath {
            path: abs(data_dir),
            what: "the agent's data directory",
        }];
        if let Some(k) = key_file {
            paths.push(ProtectedPath {
                path: abs(k),
                what: "the node's key file",
            });
        }
        if let Some(c) = config_file {
            paths.push(ProtectedPath {
                path: abs(c),
                what: "the agent's configuration",
            });
        }
        if let Some(s) = containerd_socket {
            paths.push(ProtectedPath {
                path: abs(s),
                what: "the containerd socket",
            });
        }
        NodeAdmission::new(paths)
    }

    pub fn protected(&self) -> &[ProtectedPath] {
        &self.protected
    }

    /// The violation of a hostPath volume at `path`, if any: not absolute, `/`, or a path that
    /// is, contains or lies inside a protected path (after resolving `..` and symlinks).
    pub fn check_host_path(&self, volume: &str, path: &str) -> Option<Violation> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Some(Violation::HostPathNotAbsolute {
                volume: volume.to_string(),
                path: path.to_string(),
            });
        }
        let resolved = resolve_host_path(p);
        let lexical = {
            let mut l = PathBuf::from("/");
            for c in p.components() {
                match c {
                    Component::Normal(n) => l.push(n),
                    Component::ParentDir => {
                        l.pop();
                    }
                    _ => {}
                }
            }
            l
        };
        if resolved == Path::new("/") || lexical == Path::new("/") {
            return Some(Violation::HostPath {
                volume: volume.to_string(),
                path: path.to_string(),
                protected: PathBuf::from("/"),
                what: "the host's root filesystem",
            });
        }
        for prot in &self.protected {
            for cand in [&resolved, &lexical] {
                if prot.path.starts_with(cand) || cand.starts_with(&prot.path) {
                    return Some(Violation::HostPath {
                        volume: volume.to_string(),
                        path: path.to_string(),
                        protected: prot.path.clone(),
                        what: prot.what,
                    });
                }
            }
        }
        None
    }

    /// Checks the pod; `Err` lists every violation.
    pub fn check(&self, pod: &Pod) -> Result<(), Rejection> {
        let mut v = Vec::new();
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(());
        };
        if spec.host_network == Some(true) {
            v.push(Violation::HostNetwork);
        }
        if spec.host_pid == Some(true) {
            v.push(Violation::HostPid);
        }
        if spec.host_ipc == Some(true) {
            v.push(Violation::HostIpc);
        }
        let psc = spec.security_context.as_ref();
        if let Some(profile) = psc.and_then(|s| s.seccomp_profile.as_ref()) {
            if let Some(bad) = forbidden_seccomp(profile) {
                v.push(Violation::Seccomp {
                    scope: SeccompScope::Pod,
                    profile: bad,
                });
            }
        }
        let containers = spec
            .containers
            .iter()
            .map(|c| {
                (
                    ContainerKind::Container,
                    &c.name,
                    c.security_context.as_ref(),
                    c.ports.as_deref(),
                )
            })
            .chain(spec.init_containers.iter().flatten().map(|c| {
                (
                    ContainerKind::InitContainer,
                    &c.name,
                    c.security_context.as_ref(),
                    c.ports.as_deref(),
                )
            }))
            .chain(spec.ephemeral_containers.iter().flatten().map(|c| {
                (
                    ContainerKind::EphemeralContainer,
                    &c.name,
                    c.security_context.as_ref(),
                    c.ports.as_deref(),
                )
            }));
        for (kind, name, sc, ports) in containers {
            let cref = ContainerRef {
                kind,
                name: name.clone(),
            };
            check_container(&cref, sc, &mut v);
            for p in ports.into_iter().flatten() {
                if let Some(port) = p.host_port.filter(|p| *p != 0 && !self.host_ports) {
                    v.push(Violation::HostPort {
                        container: cref.clone(),
                        port,
                    });
                }
            }
        }
        let bad_sysctls: Vec<String> = psc
            .and_then(|s| s.sysctls.as_ref())
            .into_iter()
            .flatten()
            .filter(|s| !is_safe_sysctl(&s.name))
            .map(|s| s.name.clone())
            .collect();
        if !bad_sysctls.is_empty() {
            v.push(Violation::Sysctls(bad_sysctls));
        }
        for vol in spec.volumes.iter().flatten() {
            if let Some(h) = &vol.host_path {
                if let Some(bad) = self.check_host_path(&vol.name, &h.path) {
                    v.push(bad);
                }
            }
        }
        if v.is_empty() {
            Ok(())
        } else {
            Err(Rejection { violations: v })
        }
    }
}

fn forbidden_seccomp(p: &SeccompProfile) -> Option<String> {
    match p.type_.as_str() {
        "RuntimeDefault" => None,
        other => Some(other.to_string()),
    }
}

fn check_container(c: &ContainerRef, sc: Option<&SecurityContext>, v: &mut Vec<Violation>) {
    let Some(sc) = sc else { return };
    if sc.privileged == Some(true) {
        v.push(Violation::Privileged(c.clone()));
    }
    let extra: Vec<String> = sc
        .capabilities
        .as_ref()
        .and_then(|caps| caps.add.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| !RUNTIME_DEFAULT_CAPABILITIES.contains(&normalize_capability(a).as_str()))
        .cloned()
        .collect();
    if !extra.is_empty() {
        v.push(Violation::Capabilities {
            container: c.clone(),
            capabilities: extra,
        });
    }
    if sc.allow_privilege_escalation == Some(true) {
        v.push(Violation::AllowPrivilegeEscalation(c.clone()));
    }
    if let Some(bad) = sc.seccomp_profile.as_ref().and_then(forbidden_seccomp) {
        v.push(Violation::Seccomp {
            scope: SeccompScope::Container(c.clone()),
            profile: bad,
        });
    }
    if let Some(pm) = sc.proc_mount.as_deref().filter(|pm| *pm != "Default") {
        v.push(Violation::ProcMount {
            container: c.clone(),
            proc_mount: pm.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": spec,
        }))
        .expect("pod json")
    }

    fn admission(dir: &Path) -> NodeAdmission {
        NodeAdmission::for_agent(
            &dir.join("data"),
            Some(&dir.join("node.key")),
            Some(&dir.join("staker-config.json")),
            None,
        )
    }

    fn violations(a: &NodeAdmission, spec: serde_json::Value) -> Vec<Violation> {
        match a.check(&pod(spec)) {
            Ok(()) => Vec::new(),
            Err(r) => r.violations,
        }
    }

    fn c(name: &str) -> ContainerRef {
        ContainerRef {
            kind: ContainerKind::Container,
            name: name.into(),
        }
    }

    #[test]
    fn plain_pod_is_admitted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = admission(dir.path());
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).expect("mkdir");
        let ok = pod(serde_json::json!({
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "runAsNonRoot": true,
                "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}]},
            "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
                "securityContext": {"allowPrivilegeEscalation": false, "privileged": false,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CAP_CHOWN"]},
                    "procMount": "Default"}}],
            "volumes": [{"name": "s", "hostPath": {"path": scratch}}, {"name": "e", "emptyDir": {}}],
        }));
        assert_eq!(a.check(&ok), Ok(()));
    }

    #[test]
    fn host_ports_only_when_the_staker_allows_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = serde_json::json!({"containers": [{"name": "c", "image": "x",
            "ports": [{"containerPort": 80, "hostPort": 8080}]}]});
        assert_eq!(
            violations(&admission(dir.path()), spec.clone()),
            vec![Violation::HostPort {
                container: c("c"),
                port: 8080
            }]
        );
        let allowing = admission(dir.path()).allowing_host_ports(true);
        assert_eq!(violations(&allowing, spec), vec![]);
        // The opt-in is about ports only: the host's network stays refused.
        let v = violations(
            &allowing,
            serde_json::json!({"hostNetwork": true, "containers": [{"name": "c", "image": "x"}]}),
        );
        assert_eq!(v, vec![Violation::HostNetwork]);
    }

    #[test]
    fn every_escape_is_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = admission(dir.path());
        let v = violations(
            &a,
            serde_json::json!({
                "hostNetwork": true, "hostPID": true, "hostIPC": true,
                "securityContext": {"seccompProfile": {"type": "Unconfined"},
                    "sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                                {"name": "kernel/shm_rmid_forced", "value": "1"}, {"name": "net.core.somaxconn", "value": "1"}]},
                "initContainers": [{"name": "i", "image": "x", "securityContext": {"privileged": true}}],
                "containers": [{"name": "c", "image": "x",
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                    "securityContext": {"privileged": true, "allowPrivilegeEscalation": true,
                        "capabilities": {"add": ["SYS_ADMIN", "NET_RAW", "cap_net_admin"]},
                        "seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"},
                        "procMount": "Unmasked"}}],
                "ephemeralContainers": [{"name": "e", "image": "x", "securityContext": {"privileged": true}}],
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            }),
        );
        let init = ContainerRef {
            kind: ContainerKind::InitContainer,
            name: "i".into(),
        };
        let eph = ContainerRef {
            kind: ContainerKind::EphemeralContainer,
            name: "e".into(),
        };
        let expected = vec![
            Violation::HostNetwork,
            Violation::HostPid,
            Violation::HostIpc,
            Violation::Seccomp {
                scope: SeccompScope::Pod,
                profile: "Unconfined".into(),
            },
            Violation::Privileged(c("c")),
            Violation::Capabilities {
                container: c("c"),
                capabilities: vec!["SYS_ADMIN".into(), "cap_net_admin".into()],
            },
            Violation::AllowPrivilegeEscalation(c("c")),
            Violation::Seccomp {
                scope: SeccompScope::Container(c("c")),
                profile: "Localhost".into(),
            },
            Violation::ProcMount {
                container: c("c"),
                proc_mount: "Unmasked".into(),
            },
            Violation::HostPort {
                container: c("c"),
                port: 8080,
            },
            Violation::Privileged(init),
            Violation::Privileged(eph),
            Violation::Sysctls(vec!["kernel.msgmax".into(), "net.core.somaxconn".into()]),
            Violation::HostPath {
                volume: "root".into(),
                path: "/".into(),
                protected: "/".into(),
                what: "the host's root filesystem",
            },
        ];
        assert_eq!(v, expected);
        let r = Rejection { violations: v };
        let msg = r.status_message();
        assert!(
            msg.starts_with("Pod was rejected: the node refuses pods that can reach the host: "),
            "{msg}"
        );
        for part in [
            "privileged (container \"c\" must not set securityContext.privileged=true, initContainer \"i\" must not set securityContext.privileged=true, ephemeralContainer \"e\" must not set securityContext.privileged=true)",
            "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
            "hostPort (container \"c\" uses hostPort 8080)",
            "non-default capabilities (container \"c\" must not include \"SYS_ADMIN\", \"cap_net_admin\" in securityContext.capabilities.add)",
            "allowPrivilegeEscalation (container \"c\" must not set securityContext.allowPrivilegeEscalation=true)",
            "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\", container \"c\" must not set securityContext.seccompProfile.type to \"Localhost\")",
            "procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")",
            "forbidden sysctls (kernel.msgmax, net.core.somaxconn)",
            "hostPath volumes (volume \"root\" with path \"/\" exposes the host's root filesystem /)",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg}");
        }
    }

    #[test]
    fn host_paths_over_the_agents_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("pki")).expect("mkdir");
        let a = admission(dir.path());
        let d = dir.path().display().to_string();
        let refused = |p: &str| a.check_host_path("v", p);
        // The data dir itself, a parent of it, something inside it.
        for p in [
            format!("{d}/data"),
            d.clone(),
            format!("{d}/data/pki"),
            format!("{d}/data/not-yet/created"),
            format!("{d}/node.key"),
            format!("{d}/staker-config.json"),
            format!("{d}/scratch/../data"),
            format!("{d}/./data/"),
            "/".into(),
            "/..".into(),
            "/var/lib/containerd".into(),
            "/run/containerd/containerd.sock".into(),
            "/proc/1".into(),
            "/sys".into(),
        ] {
            assert!(refused(&p).is_some(), "{p} must be refused");
        }
        match refused(&format!("{d}/data/pki")) {
            Some(Violation::HostPath { what, .. }) => {
                assert_eq!(what, "the agent's data directory")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            refused("relative/dir"),
            Some(Violation::HostPathNotAbsolute { .. })
        ));
        // A symlink does not hide the data directory (nor the root).
        std::os::unix::fs::symlink(&data, dir.path().join("link")).expect("symlink");
        std::os::unix::fs::symlink("/", dir.path().join("rootlink")).expect("symlink");
        assert!(refused(&format!("{d}/link")).is_some());
        assert!(refused(&format!("{d}/link/pki")).is_some());
        assert!(refused(&format!("{d}/rootlink")).is_some());
        // Unrelated paths are fine, including siblings with a common name prefix.
        for p in [
            format!("{d}/scratch"),
            format!("{d}/data2"),
            format!("{d}/node.key.d"),
        ] {
            assert_eq!(refused(&p), None, "{p}");
        }
    }

    #[test]
    fn capabilities_are_the_default_set_minus_drop_plus_allowed_add() {
        let caps = |v: serde_json::Value| -> Vec<String> {
            let c: Capabilities = serde_json::from_value(v).expect("caps");
            effective_capabilities(Some(&c))
        };
        let all: Vec<String> = RUNTIME_DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(effective_capabilities(None), all);
        assert_eq!(
            caps(serde_json::json!({"drop": ["ALL"]})),
            Vec::<String>::new()
        );
        assert_eq!(
            caps(serde_json::json!({"drop": ["all"], "add": ["net_bind_service", "SYS_ADMIN"]})),
            vec!["NET_BIND_SERVICE"]
        );
        let minus_raw = caps(
            serde_json::json!({"drop": ["CAP_NET_RAW", "MKNOD"], "add": ["SYS_ADMIN", "NET_ADMIN"]}),
        );
        assert_eq!(minus_raw.len(), 12);
        assert!(!minus_raw
            .iter()
            .any(|c| c == "NET_RAW" || c == "MKNOD" || c == "SYS_ADMIN" || c == "NET_ADMIN"));
        // Add and drop of the same capability: dropped (as containerd does).
        assert_eq!(
            caps(serde_json::json!({"drop": ["ALL", "CHOWN"], "add": ["CHOWN", "KILL"]})),
            vec!["KILL"]
        );
    }

    #[test]
    fn sysctl_names() {
        assert!(is_safe_sysctl("net.ipv4.ip_local_port_range"));
        assert!(is_safe_sysctl("net/ipv4/tcp_syncookies"));
        assert!(!is_safe_sysctl("kernel.core_pattern"));
        assert!(!is_safe_sysctl("net.ipv4.ip_forward"));
    }
}
