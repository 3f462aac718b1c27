//! [`Runtime`] over CRI v1 (containerd's CRI plugin) on a unix socket.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cri_api as cri;
use super::cri_api::image_service_client::ImageServiceClient;
use super::cri_api::runtime_service_client::RuntimeServiceClient;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::security::{is_safe_sysctl, normalize_capability, RUNTIME_DEFAULT_CAPABILITIES};

use super::log::read_messages;
use super::podfiles::{etc_hosts_content, log_tail, read_at_most, MAX_TERMINATION_MESSAGE_BYTES};
use super::pullsecrets::PullKeyring;
use super::spec::resolve_container;
use super::{
    ContainerRuntimeStatus, ContainerSpecLite, ContainerState, ExecOutput, ImageRef, MountLite,
    PodHandle, PodRuntimeStatus, PodSpecLite, PodSummary, PullPolicy, Result, Runtime,
    RuntimeError, SandboxState, LABEL_CONTAINER_NAME, LABEL_MANAGED_BY, LABEL_POD_NAME,
    LABEL_POD_NAMESPACE, LABEL_POD_UID, MANAGED_BY_VALUE,
};

/// Annotation carrying the image as written in the pod spec.
const ANNOTATION_IMAGE: &str = "k3s-daas.io/image";
/// Annotations carrying the termination message settings (as the kubelet's).
const ANNOTATION_TERMINATION_PATH: &str = "io.kubernetes.container.terminationMessagePath";
const ANNOTATION_TERMINATION_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
/// cgroupfs parent of all pods (`/sys/fs/cgroup/<controller>/daas/pod<uid>/<container id>`).
const CGROUP_ROOT: &str = "/daas";
const CPU_PERIOD: i64 = 100_000;

/// The deprecated CRI spelling of the RuntimeDefault seccomp profile, set next to `seccomp` for
/// runtimes that only read the old field.
const SECCOMP_RUNTIME_DEFAULT: &str = "runtime/default";

fn runtime_default_seccomp() -> cri::SecurityProfile {
    cri::SecurityProfile {
        profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
        localhost_ref: String::new(),
    }
}

/// Network and IPC shared by the pod, PID per container (or per pod with
/// `shareProcessNamespace`); never the node's.
fn namespace_options(spec: &PodSpecLite) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod as i32,
        pid: if spec.share_process_namespace {
            cri::NamespaceMode::Pod as i32
        } else {
            cri::NamespaceMode::Container as i32
        },
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// The always-on hardening of every container: never privileged, `no_new_privs`, RuntimeDefault
/// seccomp, pod-scoped namespaces, exactly the granted capabilities (all others dropped; none
/// outside the runtime default set even if asked for), and the user/group/read-only root asked for.
#[allow(deprecated)] // seccomp_profile_path: also set for runtimes reading only the old field
fn container_security_context(
    spec: &PodSpecLite,
    c: &ContainerSpecLite,
) -> cri::LinuxContainerSecurityContext {
    let add: Vec<String> = c
        .security
        .capabilities
        .iter()
        .map(|cap| normalize_capability(cap))
        .filter(|cap| RUNTIME_DEFAULT_CAPABILITIES.contains(&cap.as_str()))
        .collect();
    cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: add,
            drop_capabilities: vec!["ALL".to_string()],
            add_ambient_capabilities: Vec::new(),
        }),
        privileged: false,
        namespace_options: Some(namespace_options(spec)),
        run_as_user: c
            .security
            .run_as_user
            .map(|value| cri::Int64Value { value }),
        run_as_group: c
            .security
            .run_as_group
            .map(|value| cri::Int64Value { value }),
        readonly_rootfs: c.security.readonly_rootfs,
        supplemental_groups: spec.supplemental_groups.clone(),
        no_new_privs: true,
        seccomp: Some(runtime_default_seccomp()),
        seccomp_profile_path: SECCOMP_RUNTIME_DEFAULT.to_string(),
        ..Default::default()
    }
}

/// The kubelet's `runAsNonRoot` check: the container must not run as uid 0, neither by its
/// `runAsUser` nor by the image's user; a non-numeric image user cannot be verified.
fn verify_run_as_non_root(
    spec: &PodSpecLite,
    c: &ContainerSpecLite,
    image: &ImageRef,
) -> Result<()> {
    if !c.security.run_as_non_root {
        return Ok(());
    }
    let pod = format!("{}_{}({})", spec.name, spec.namespace, spec.uid);
    if let Some(uid) = c.security.run_as_user {
        if uid == 0 {
            return Err(RuntimeError::NonRootPolicy(format!(
                "container's runAsUser breaks non-root policy (pod: {pod:?}, container: {})",
                c.name
            )));
        }
        return Ok(());
    }
    match (image.uid, image.username.as_str()) {
        (Some(0), _) | (None, "") => Err(RuntimeError::NonRootPolicy(format!(
            "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {})",
            c.name
        ))),
        (None, user) => Err(RuntimeError::NonRootPolicy(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod:?}, container: {})",
            c.name
        ))),
        (Some(_), _) => Ok(()),
    }
}

/// The kubelet's termination message of an exited container: the runtime's message, then the
/// file at `terminationMessagePath` (its last 4096 bytes), or under `FallbackToLogsOnError` and a
/// non-zero exit with an empty file, the log's tail.
async fn termination_message(st: &cri::ContainerStatus) -> Option<String> {
    let path = st.annotations.get(ANNOTATION_TERMINATION_PATH);
    let fallback = st
        .annotations
        .get(ANNOTATION_TERMINATION_POLICY)
        .is_some_and(|p| p == "FallbackToLogsOnError")
        && st.exit_code != 0
        && st.reason != "ContainerCannotRun";
    let mut text = path
        .and_then(|p| st.mounts.iter().find(|m| &m.container_path == p))
        .map(|m| read_at_most(Path::new(&m.host_path), MAX_TERMINATION_MESSAGE_BYTES))
        .unwrap_or_default();
    if text.is_empty() && fallback && !st.log_path.is_empty() {
        if let Ok(lines) = read_messages(&st.log_path).await {
            let lines: Vec<String> = lines.into_iter().map(|l| l.message).collect();
            text = log_tail(&lines);
        }
    }
    let mut message = st.message.clone();
    if !text.is_empty() {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    (!message.is_empty()).then_some(message)
}

/// A CRI container status in the runtime's terms.
async fn runtime_state(st: &cri::ContainerStatus) -> ContainerState {
    match st.state() {
        cri::ContainerState::ContainerRunning => ContainerState::Running {
            started_at: nanos_to_time(st.started_at),
        },
        cri::ContainerState::ContainerExited => ContainerState::Exited {
            code: st.exit_code,
            reason: if st.reason.is_empty() {
                if st.exit_code == 0 {
                    "Completed".into()
                } else {
                    "Error".into()
                }
            } else {
                st.reason.clone()
            },
            finished_at: nanos_to_time(st.finished_at),
            message: termination_message(st).await,
        },
        cri::ContainerState::ContainerCreated => ContainerState::Waiting {
            reason: "ContainerCreated".into(),
        },
        cri::ContainerState::ContainerUnknown => ContainerState::Waiting {
            reason: "Unknown".into(),
        },
    }
}

/// CRI v1 client for containerd.
#[derive(Clone)]
pub struct ContainerdRuntime {
    channel: Channel,
    socket: PathBuf,
    log_root: PathBuf,
    /// containerd's `ctr`, which runs exec sessions (see [`Runtime::exec_command`]).
    ctr: PathBuf,
}

fn nanos_to_time(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(
        n.div_euclid(1_000_000_000),
        n.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s != "."
        && s != ".."
}

fn validate(spec: &PodSpecLite) -> Result<()> {
    for (what, v) in [
        ("uid", &spec.uid),
        ("namespace", &spec.namespace),
        ("name", &spec.name),
    ] {
        if !valid_name(v) {
            return Err(RuntimeError::InvalidSpec(format!(
                "pod {what} {v:?} is not a valid name"
            )));
        }
    }
    if spec.containers.is_empty() {
        return Err(RuntimeError::InvalidSpec(format!(
            "pod {} has no containers",
            spec.name
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for c in spec.init_containers.iter().chain(spec.containers.iter()) {
        if !valid_name(&c.name) || !seen.insert(c.name.as_str()) {
            return Err(RuntimeError::InvalidSpec(format!(
                "bad or duplicate container name {:?}",
                c.name
            )));
        }
        if c.image.is_empty() {
            return Err(RuntimeError::InvalidSpec(format!(
                "container {} has no image",
                c.name
            )));
        }
    }
    Ok(())
}

impl ContainerdRuntime {
    /// Connects to the CRI endpoint at `socket`; container logs go below `log_root`
    /// (`<log_root>/<namespace>_<name>_<uid>/<container>/<attempt>.log`).
    pub async fn connect(socket: impl Into<PathBuf>, log_root: impl Into<PathBuf>) -> Result<Self> {
        let socket = socket.into();
        let path = socket.clone();
        let channel = Endpoint::from_static("http://localhost")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .map_err(|e| RuntimeError::Connect {
                path: socket.clone(),
                message: e.to_string(),
            })?;
        Ok(ContainerdRuntime {
            channel,
            socket,
            log_root: log_root.into(),
            ctr: "/usr/bin/ctr".into(),
        })
    }

    /// Use this `ctr` binary for exec sessions (default `/usr/bin/ctr`).
    pub fn with_ctr(mut self, ctr: impl Into<PathBuf>) -> Self {
        self.ctr = ctr.into();
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn log_root(&self) -> &Path {
        &self.log_root
    }

    fn rt(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    fn img(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone())
    }

    /// Runtime name and version as CRI reports them.
    pub async fn version(&self) -> Result<(String, String)> {
        let v = self
            .rt()
            .version(cri::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(|s| RuntimeError::cri("Version", s))?
            .into_inner();
        Ok((v.runtime_name, v.runtime_version))
    }

    /// Ok when CRI reports both `RuntimeReady` and `NetworkReady`.
    pub async fn ready(&self) -> Result<()> {
        self.ready_conditions(&["RuntimeReady", "NetworkReady"])
            .await
    }

    /// Whether each of the CRI status conditions `want` is true.
    pub async fn ready_conditions(&self, want: &[&str]) -> Result<()> {
        let st = self
            .rt()
            .status(cri::StatusRequest { verbose: false })
            .await
            .map_err(|s| RuntimeError::cri("Status", s))?
            .into_inner();
        let conds = st.status.map(|s| s.conditions).unwrap_or_default();
        for want in want {
            match conds.iter().find(|c| c.r#type == *want) {
                Some(c) if c.status => {}
                Some(c) => {
                    return Err(RuntimeError::Containerd(format!(
                        "{want} is false: {} {}",
                        c.reason, c.message
                    )))
                }
                None => {
                    return Err(RuntimeError::Containerd(format!(
                        "{want} condition missing"
                    )))
                }
            }
        }
        Ok(())
    }

    fn pod_log_dir(&self, spec: &PodSpecLite) -> PathBuf {
        self.log_root
            .join(format!("{}_{}_{}", spec.namespace, spec.name, spec.uid))
    }

    fn ids(spec: &PodSpecLite) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_POD_UID.to_string(), spec.uid.clone()),
            (LABEL_POD_NAME.to_string(), spec.name.clone()),
            (LABEL_POD_NAMESPACE.to_string(), spec.namespace.clone()),
            (LABEL_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        ])
    }

    fn sandbox_config(&self, spec: &PodSpecLite, attempt: u32) -> cri::PodSandboxConfig {
        Self::build_sandbox_config(self.pod_log_dir(spec), spec, attempt)
    }

    #[allow(deprecated)] // seccomp_profile_path, see container_security_context
    fn build_sandbox_config(
        log_dir: PathBuf,
        spec: &PodSpecLite,
        attempt: u32,
    ) -> cri::PodSandboxConfig {
        let mut labels: HashMap<String, String> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend(Self::ids(spec));
        let hostname = spec.hostname.clone().unwrap_or_else(|| spec.name.clone());
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: spec.name.clone(),
                uid: spec.uid.clone(),
                namespace: spec.namespace.clone(),
                attempt,
            }),
            hostname: hostname.chars().take(63).collect(),
            log_directory: log_dir.to_string_lossy().into_owned(),
            // hostPorts: the CNI portmap plugin DNATs them to the pod.
            port_mappings: spec
                .host_ports
                .iter()
                .map(|p| cri::PortMapping {
                    protocol: match p.protocol {
                        super::PortProtocol::Tcp => cri::Protocol::Tcp,
                        super::PortProtocol::Udp => cri::Protocol::Udp,
                        super::PortProtocol::Sctp => cri::Protocol::Sctp,
                    } as i32,
                    container_port: p.container_port,
                    host_port: p.host_port,
                    host_ip: p.host_ip.clone(),
                })
                .collect(),
            labels,
            annotations: Self::ids(spec),
            dns_config: spec.dns.as_ref().map(|d| cri::DnsConfig {
                servers: d.servers.clone(),
                searches: d.searches.clone(),
                options: d.options.clone(),
            }),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{CGROUP_ROOT}/pod{}", spec.uid),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(namespace_options(spec)),
                    privileged: false,
                    supplemental_groups: spec.supplemental_groups.clone(),
                    seccomp: Some(runtime_default_seccomp()),
                    seccomp_profile_path: SECCOMP_RUNTIME_DEFAULT.to_string(),
                    ..Default::default()
                }),
                sysctls: spec
                    .sysctls
                    .iter()
                    .filter(|(k, _)| is_safe_sysctl(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The CRI config of one container instance. `pod_ips`: the sandbox's IPs (for
    /// `status.podIP` env and `$(VAR)` expansion); `termination_file`: the host file mounted at
    /// the container's `terminationMessagePath`.
    fn container_config(
        spec: &PodSpecLite,
        c: &ContainerSpecLite,
        attempt: u32,
        pod_ips: &[String],
        termination_file: Option<&Path>,
    ) -> cri::ContainerConfig {
        let mut labels = Self::ids(spec);
        labels.insert(LABEL_CONTAINER_NAME.to_string(), c.name.clone());
        let mut annotations = labels.clone();
        annotations.insert(ANNOTATION_IMAGE.to_string(), c.image.clone());
        // Upstream MilliCPUToShares: the request (none: the minimum of 2), quota from the limit.
        let mut resources = cri::LinuxContainerResources {
            cpu_shares: c
                .limits
                .cpu_request_millis
                .map(|m| ((m as i64) * 1024 / 1000).max(2))
                .unwrap_or(2),
            ..Default::default()
        };
        if let Some(m) = c.limits.cpu_millis {
            resources.cpu_period = CPU_PERIOD;
            resources.cpu_quota = ((m as i64) * CPU_PERIOD / 1000).max(1000);
        }
        if let Some(b) = c.limits.memory_bytes {
            resources.memory_limit_in_bytes = b.min(i64::MAX as u64) as i64;
        }
        let resolved = resolve_container(spec, c, pod_ips);
        let mut mounts: Vec<MountLite> = c.mounts.clone();
        if let (Some(path), Some(file)) = (&c.termination_message_path, termination_file) {
            annotations.insert(ANNOTATION_TERMINATION_PATH.to_string(), path.clone());
            mounts.push(MountLite {
                host_path: file.to_path_buf(),
                container_path: path.clone(),
                readonly: false,
            });
        }
        annotations.insert(
            ANNOTATION_TERMINATION_POLICY.to_string(),
            if c.termination_message_fallback {
                "FallbackToLogsOnError"
            } else {
                "File"
            }
            .to_string(),
        );
        if let Some(h) = &spec.etc_hosts {
            // The pod's own mount at /etc/hosts wins, as upstream.
            if !mounts.iter().any(|m| m.container_path == "/etc/hosts") {
                mounts.push(MountLite {
                    host_path: h.path.clone(),
                    container_path: "/etc/hosts".into(),
                    readonly: false,
                });
            }
        }
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: c.name.clone(),
                attempt,
            }),
            image: Some(cri::ImageSpec {
                image: c.image.clone(),
                ..Default::default()
            }),
            command: resolved.command,
            args: resolved.args,
            working_dir: c.working_dir.clone().unwrap_or_default(),
            envs: resolved
                .env
                .into_iter()
                .map(|(key, value)| cri::KeyValue { key, value })
                .collect(),
            labels,
            annotations,
            log_path: format!("{}/{attempt}.log", c.name),
            mounts: mounts
                .iter()
                .map(|m| cri::Mount {
                    container_path: m.container_path.clone(),
                    host_path: m.host_path.display().to_string(),
                    readonly: m.readonly,
                    selinux_relabel: false,
                    propagation: cri::MountPropagation::PropagationPrivate as i32,
                    ..Default::default()
                })
                .collect(),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(resources),
                security_context: Some(container_security_context(spec, c)),
            }),
            stdin: c.stdin,
            stdin_once: c.stdin_once,
            tty: c.tty,
            ..Default::default()
        }
    }

    /// Sandboxes of this agent, optionally only those of one pod uid; newest first.
    async fn sandboxes(&self, uid: Option<&str>) -> Result<Vec<cri::PodSandbox>> {
        let mut selector =
            HashMap::from([(LABEL_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string())]);
        if let Some(uid) = uid {
            selector.insert(LABEL_POD_UID.to_string(), uid.to_string());
        }
        let mut items = self
            .rt()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: selector,
                    ..Default::default()
                }),
            })
            .await
            .map_err(|s| RuntimeError::cri("ListPodSandbox", s))?
            .into_inner()
            .items;
        items.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(items)
    }

    /// The sandbox to act on: the newest ready one, else the newest.
    async fn current_sandbox(&self, uid: &str) -> Result<cri::PodSandbox> {
        let all = self.sandboxes(Some(uid)).await?;
        let ready = all
            .iter()
            .position(|s| s.state() == cri::PodSandboxState::SandboxReady);
        let idx = ready.unwrap_or(0);
        all.into_iter()
            .nth(idx)
            .ok_or_else(|| RuntimeError::PodNotFound(uid.to_string()))
    }

    async fn containers_of(&self, sandbox_id: &str) -> Result<Vec<cri::Container>> {
        Ok(self
            .rt()
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    pod_sandbox_id: sandbox_id.to_string(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|s| RuntimeError::cri("ListContainers", s))?
            .into_inner()
            .containers)
    }

    /// Latest instance (highest attempt, then newest) of each container name.
    fn latest_by_name(containers: Vec<cri::Container>) -> BTreeMap<String, cri::Container> {
        let mut out: BTreeMap<String, cri::Container> = BTreeMap::new();
        for c in containers {
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let key = |c: &cri::Container| {
                (
                    c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                    c.created_at,
                )
            };
            match out.get(&name) {
                Some(prev) if key(prev) >= key(&c) => {}
                _ => {
                    out.insert(name, c);
                }
            }
        }
        out
    }

    /// The sandbox's IPs (primary first).
    async fn sandbox_ips(&self, sandbox_id: &str) -> Result<Vec<String>> {
        let st = self
            .rt()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                verbose: false,
            })
            .await
            .map_err(|s| RuntimeError::cri("PodSandboxStatus", s))?
            .into_inner()
            .status;
        Ok(st
            .and_then(|s| s.network)
            .map(|n| {
                std::iter::once(n.ip)
                    .chain(n.additional_ips.into_iter().map(|i| i.ip))
                    .filter(|ip| !ip.is_empty())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// A fresh, world-writable termination-message file for one container instance (upstream
    /// creates one per instance under the pod's directory).
    fn termination_file(
        spec: &PodSpecLite,
        c: &ContainerSpecLite,
        attempt: u32,
    ) -> Result<Option<PathBuf>> {
        let (Some(dir), Some(_)) = (&spec.pod_dir, &c.termination_message_path) else {
            return Ok(None);
        };
        let dir = dir.join("containers").join(&c.name);
        std::fs::create_dir_all(&dir).map_err(|e| RuntimeError::io(&dir, e))?;
        let file = dir.join(format!("{attempt}"));
        std::fs::write(&file, b"").map_err(|e| RuntimeError::io(&file, e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| RuntimeError::io(&file, e))?;
        Ok(Some(file))
    }

    #[allow(clippy::too_many_arguments)]
    /// The pod's ready sandbox, created (with a new attempt, dead ones removed) when there is
    /// none, and its config.
    async fn ensure_sandbox(&self, spec: &PodSpecLite) -> Result<(String, cri::PodSandboxConfig)> {
        let existing = self.sandboxes(Some(&spec.uid)).await?;
        let ready = existing
            .iter()
            .find(|s| s.state() == cri::PodSandboxState::SandboxReady);
        // The ready sandbox's own attempt, or the next one for a new sandbox.
        let attempt = match ready {
            Some(s) => s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            None => existing
                .iter()
                .filter_map(|s| s.metadata.as_ref())
                .map(|m| m.attempt + 1)
                .max()
                .unwrap_or(0),
        };
        let sandbox_config = self.sandbox_config(spec, attempt);
        let sandbox_id = match ready {
            Some(s) => s.id.clone(),
            None => {
                // Dead sandboxes of this pod (e.g. after a host reboot) are replaced by a new attempt.
                for old in &existing {
                    tracing::info!(pod = %spec.uid, sandbox = %old.id, "removing dead sandbox");
                    self.rt()
                        .stop_pod_sandbox(cri::StopPodSandboxRequest {
                            pod_sandbox_id: old.id.clone(),
                        })
                        .await
                        .map_err(|s| RuntimeError::cri("StopPodSandbox", s))?;
                    self.rt()
                        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                            pod_sandbox_id: old.id.clone(),
                        })
                        .await
                        .map_err(|s| RuntimeError::cri("RemovePodSandbox", s))?;
                }
                let log_dir = self.pod_log_dir(spec);
                std::fs::create_dir_all(&log_dir).map_err(|e| RuntimeError::io(&log_dir, e))?;
                let id = self
                    .rt()
                    .run_pod_sandbox(cri::RunPodSandboxRequest {
                        config: Some(sandbox_config.clone()),
                        runtime_handler: String::new(),
                    })
                    .await
                    .map_err(|s| RuntimeError::cri("RunPodSandbox", s))?
                    .into_inner()
                    .pod_sandbox_id;
                tracing::info!(pod = %spec.uid, name = %spec.name, sandbox = %id, "sandbox running");
                daas_protocol::podstart::mark(&spec.namespace, &spec.name, "sandbox");
                id
            }
        };
        Ok((sandbox_id, sandbox_config))
    }

    async fn create_and_start(
        &self,
        sandbox_id: &str,
        sandbox_config: &cri::PodSandboxConfig,
        spec: &PodSpecLite,
        c: &ContainerSpecLite,
        attempt: u32,
        pod_ips: &[String],
    ) -> Result<String> {
        if !super::valid_image_reference(&c.image) {
            return Err(RuntimeError::InvalidImageName(c.image.clone()));
        }
        let image = self
            .ensure_image(&c.image, c.pull_policy, &spec.pull_keyring)
            .await?;
        verify_run_as_non_root(spec, c, &image)?;
        let termination_file = Self::termination_file(spec, c, attempt)?;
        let mut config =
            Self::container_config(spec, c, attempt, pod_ips, termination_file.as_deref());
        if let Some(target) = &c.target_container {
            // An ephemeral container with a target joins the target's PID namespace (as the
            // kubelet does with NamespaceMode TARGET).
            let running = Self::latest_by_name(self.containers_of(sandbox_id).await?)
                .remove(target)
                .filter(|t| t.state() == cri::ContainerState::ContainerRunning)
                .ok_or_else(|| RuntimeError::ContainerNotRunning {
                    container: target.clone(),
                })?;
            if let Some(ns) = config
                .linux
                .as_mut()
                .and_then(|l| l.security_context.as_mut())
                .and_then(|sc| sc.namespace_options.as_mut())
            {
                ns.pid = cri::NamespaceMode::Target as i32;
                ns.target_id = running.id;
            }
        }
        let id = self
            .rt()
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(sandbox_config.clone()),
            })
            .await
            .map_err(|s| RuntimeError::cri("CreateContainer", s))?
            .into_inner()
            .container_id;
        self.rt()
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(|s| RuntimeError::cri("StartContainer", s))?;
        tracing::debug!(pod = %spec.uid, container = %c.name, attempt, id = %id, "container started");
        Ok(id)
    }

    async fn stop_container_id(&self, id: &str, grace: Duration) -> Result<()> {
        self.rt()
            .stop_container(cri::StopContainerRequest {
                container_id: id.to_string(),
                timeout: grace.as_secs() as i64,
            })
            .await
            .map_err(|s| RuntimeError::cri("StopContainer", s))?;
        Ok(())
    }

    /// Replaces the latest instance of `container` (init or app) by a new one and starts it.
    async fn replace_container(&self, spec: &PodSpecLite, container: &str) -> Result<()> {
        validate(spec)?;
        let c = spec
            .container(container)
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: spec.uid.clone(),
                container: container.to_string(),
            })?;
        let sb = self.current_sandbox(&spec.uid).await?;
        if sb.state() != cri::PodSandboxState::SandboxReady {
            return Err(RuntimeError::Containerd(format!(
                "sandbox of pod {} is not ready",
                spec.uid
            )));
        }
        let all = self.containers_of(&sb.id).await?;
        let mine: Vec<cri::Container> = all
            .into_iter()
            .filter(|x| x.metadata.as_ref().is_some_and(|m| m.name == container))
            .collect();
        let latest = Self::latest_by_name(mine.clone()).remove(container);
        let attempt = latest
            .as_ref()
            .and_then(|l| l.metadata.as_ref())
            .map(|m| m.attempt + 1)
            .unwrap_or(0);
        if let Some(l) = &latest {
            if l.state() == cri::ContainerState::ContainerRunning {
                self.stop_container_id(&l.id, Duration::from_secs(10))
                    .await?;
            }
        }
        // Keep the latest instance (for `logs --previous`), remove older ones.
        for old in mine
            .iter()
            .filter(|x| Some(&x.id) != latest.as_ref().map(|l| &l.id))
        {
            self.rt()
                .remove_container(cri::RemoveContainerRequest {
                    container_id: old.id.clone(),
                })
                .await
                .map_err(|s| RuntimeError::cri("RemoveContainer", s))?;
        }
        let attempt0 = sb.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
        let sandbox_config = self.sandbox_config(spec, attempt0);
        let pod_ips = self.sandbox_ips(&sb.id).await?;
        self.create_and_start(&sb.id, &sandbox_config, spec, c, attempt, &pod_ips)
            .await?;
        Ok(())
    }

    fn remove_pod_cgroups(uid: &str) {
        let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        let rel = format!("{}/pod{uid}", CGROUP_ROOT.trim_start_matches('/'));
        let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path().join(&rel)).collect();
        // cgroup v2 (pure or hybrid "unified") layout.
        dirs.push(Path::new("/sys/fs/cgroup").join(&rel));
        for d in dirs {
            if d.is_dir() {
                if let Err(e) = std::fs::remove_dir(&d) {
                    tracing::debug!(dir = %d.display(), error = %e, "pod cgroup not removed");
                }
            }
        }
    }

    async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus> {
        self.rt()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(|s| RuntimeError::cri("ContainerStatus", s))?
            .into_inner()
            .status
            .ok_or_else(|| RuntimeError::Containerd(format!("no status for container {id}")))
    }

    async fn pull_once(
        &self,
        image: &str,
        auth: Option<cri::AuthConfig>,
    ) -> std::result::Result<String, tonic::Status> {
        Ok(self
            .img()
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                auth,
                sandbox_config: None,
            })
            .await?
            .into_inner()
            .image_ref)
    }

    async fn image_status(&self, image: &str) -> Result<Option<cri::Image>> {
        Ok(self
            .img()
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .map_err(|s| RuntimeError::cri("ImageStatus", s))?
            .into_inner()
            .image)
    }
}

fn image_ref(name: &str, img: cri::Image) -> ImageRef {
    ImageRef {
        name: name.to_string(),
        id: img.id,
        repo_tags: img.repo_tags,
        repo_digests: img.repo_digests,
        uid: img.uid.map(|u| u.value),
        username: img.username,
    }
}

#[async_trait]
impl Runtime for ContainerdRuntime {
    async fn ensure_image(
        &self,
        image: &str,
        pull_policy: PullPolicy,
        keyring: &PullKeyring,
    ) -> Result<ImageRef> {
        if pull_policy != PullPolicy::Always {
            if let Some(img) = self.image_status(image).await? {
                return Ok(image_ref(image, img));
            }
            if pull_policy == PullPolicy::Never {
                return Err(RuntimeError::ImageNotPresent(image.to_string()));
            }
        }
        let creds = keyring.lookup(image);
        tracing::info!(image, credentials = creds.len(), "pulling image");
        // As the kubelet: each matching credential in turn, the first success wins; none
        // matching: anonymous.
        let auths: Vec<Option<cri::AuthConfig>> = if creds.is_empty() {
            vec![None]
        } else {
            creds
                .iter()
                .map(|c| {
                    Some(cri::AuthConfig {
                        username: c.username.clone(),
                        password: c.password.clone(),
                        identity_token: c.identity_token.clone(),
                        // Left empty as the kubelet does: containerd drops credentials whose
                        // server address differs from the host it resolved.
                        ..Default::default()
                    })
                })
                .collect()
        };
        let mut attempts = auths.into_iter();
        let mut res = self.pull_once(image, attempts.next().flatten()).await;
        for auth in attempts {
            match &res {
                Ok(_) => break,
                Err(s) => tracing::debug!(image, error = %s.message(), "pull attempt failed"),
            }
            res = self.pull_once(image, auth).await;
        }
        let pulled = res.map_err(|s| RuntimeError::cri("PullImage", s))?;
        match self.image_status(&pulled).await? {
            Some(img) => Ok(image_ref(image, img)),
            None => Ok(ImageRef {
                name: image.to_string(),
                id: pulled,
                repo_tags: vec![],
                repo_digests: vec![],
                uid: None,
                username: String::new(),
            }),
        }
    }

    async fn prepare_sandbox(&self, spec: &PodSpecLite) -> Result<()> {
        validate(spec)?;
        self.ensure_sandbox(spec).await.map(|_| ())
    }

    async fn run_pod(&self, spec: &PodSpecLite) -> Result<PodHandle> {
        validate(spec)?;
        let (sandbox_id, sandbox_config) = self.ensure_sandbox(spec).await?;
        let pod_ips = self.sandbox_ips(&sandbox_id).await?;
        if let Some(h) = &spec.etc_hosts {
            let content = etc_hosts_content(h, &pod_ips);
            std::fs::write(&h.path, content).map_err(|e| RuntimeError::io(&h.path, e))?;
        }
        let have = Self::latest_by_name(self.containers_of(&sandbox_id).await?);
        // Init containers come first, one at a time: the caller drives them.
        let app = if spec.init_containers.is_empty() {
            spec.containers.as_slice()
        } else {
            &[]
        };
        for c in app {
            if have.contains_key(&c.name) {
                continue;
            }
            self.create_and_start(&sandbox_id, &sandbox_config, spec, c, 0, &pod_ips)
                .await?;
        }
        Ok(PodHandle {
            uid: spec.uid.clone(),
            sandbox_id,
        })
    }

    async fn pod_fingerprints(&self) -> Result<Option<HashMap<String, u64>>> {
        use std::hash::{Hash, Hasher};
        let mut rt = self.rt();
        let (sandboxes, containers) = tokio::join!(
            self.sandboxes(None),
            rt.list_containers(cri::ListContainersRequest { filter: None })
        );
        let containers = containers
            .map_err(|s| RuntimeError::cri("ListContainers", s))?
            .into_inner()
            .containers;
        // (sandbox id or container's sandbox id, id, state, attempt), sorted, per pod uid.
        let mut by_uid: HashMap<String, Vec<(String, String, i32, u32)>> = HashMap::new();
        let mut uid_of: HashMap<String, String> = HashMap::new();
        for sb in sandboxes? {
            let Some(uid) = sb.metadata.as_ref().map(|m| m.uid.clone()) else {
                continue;
            };
            let attempt = sb.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
            uid_of.insert(sb.id.clone(), uid.clone());
            by_uid
                .entry(uid)
                .or_default()
                .push((sb.id.clone(), String::new(), sb.state, attempt));
        }
        for c in containers {
            let Some(uid) = uid_of.get(&c.pod_sandbox_id) else {
                continue;
            };
            let attempt = c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
            by_uid.entry(uid.clone()).or_default().push((
                c.pod_sandbox_id.clone(),
                c.id.clone(),
                c.state,
                attempt,
            ));
        }
        Ok(Some(
            by_uid
                .into_iter()
                .map(|(uid, mut items)| {
                    items.sort();
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    items.hash(&mut h);
                    (uid, h.finish())
                })
                .collect(),
        ))
    }

    async fn pod_status(&self, uid: &str) -> Result<PodRuntimeStatus> {
        let sb = self.current_sandbox(uid).await?;
        let sst = self
            .rt()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sb.id.clone(),
                verbose: false,
            })
            .await
            .map_err(|s| RuntimeError::cri("PodSandboxStatus", s))?
            .into_inner()
            .status;
        let ip = sst
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .filter(|ip| !ip.is_empty());
        let all = self.containers_of(&sb.id).await?;
        let mut containers = Vec::new();
        for (name, c) in Self::latest_by_name(all.clone()) {
            let st = self.container_status(&c.id).await?;
            let state = runtime_state(&st).await;
            // The previous instance (kept for `logs --previous`) gives lastState.
            let attempt = c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
            let previous = Self::latest_by_name(
                all.iter()
                    .filter(|x| {
                        x.metadata
                            .as_ref()
                            .is_some_and(|m| m.name == name && m.attempt < attempt)
                    })
                    .cloned()
                    .collect(),
            )
            .remove(&name);
            let last_state = match previous {
                Some(p) => match self.container_status(&p.id).await {
                    Ok(pst) => Some(runtime_state(&pst).await),
                    Err(_) => None,
                },
                None => None,
            };
            let image = st
                .annotations
                .get(ANNOTATION_IMAGE)
                .cloned()
                .or_else(|| st.image.as_ref().map(|i| i.image.clone()))
                .unwrap_or_default();
            containers.push(ContainerRuntimeStatus {
                name,
                state,
                restart_count: st.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                image,
                image_id: st.image_ref.clone(),
                container_id: format!("containerd://{}", st.id),
                log_path: PathBuf::from(&st.log_path),
                last_state,
            });
        }
        Ok(PodRuntimeStatus {
            uid: uid.to_string(),
            sandbox_id: sb.id.clone(),
            sandbox_state: if sb.state() == cri::PodSandboxState::SandboxReady {
                SandboxState::Ready
            } else {
                SandboxState::NotReady
            },
            ip,
            containers,
        })
    }

    async fn restart_container(&self, spec: &PodSpecLite, container: &str) -> Result<()> {
        self.replace_container(spec, container).await
    }

    async fn start_container(&self, spec: &PodSpecLite, container: &str) -> Result<()> {
        self.replace_container(spec, container).await
    }

    async fn stop_container(&self, uid: &str, container: &str, grace: Duration) -> Result<()> {
        let sb = self.current_sandbox(uid).await?;
        let latest = Self::latest_by_name(self.containers_of(&sb.id).await?).remove(container);
        match latest {
            Some(c) if c.state() == cri::ContainerState::ContainerRunning => {
                self.stop_container_id(&c.id, grace).await
            }
            Some(_) => Ok(()),
            None => Err(RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            }),
        }
    }

    async fn exec_sync(
        &self,
        uid: &str,
        container: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let sb = self.current_sandbox(uid).await?;
        let c = Self::latest_by_name(self.containers_of(&sb.id).await?)
            .remove(container)
            .filter(|c| c.state() == cri::ContainerState::ContainerRunning)
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            })?;
        let secs = timeout.as_secs().max(1);
        let mut rt = self.rt();
        let call = rt.exec_sync(cri::ExecSyncRequest {
            container_id: c.id.clone(),
            cmd: cmd.to_vec(),
            timeout: secs as i64,
        });
        // containerd enforces the timeout; this one only guards against a hung CRI call.
        let r = tokio::time::timeout(Duration::from_secs(secs + 5), call)
            .await
            .map_err(|_| RuntimeError::Timeout(format!("exec in {container} after {secs}s")))?
            .map_err(|s| RuntimeError::cri("ExecSync", s))?
            .into_inner();
        Ok(ExecOutput {
            exit_code: r.exit_code,
            stdout: r.stdout,
            stderr: r.stderr,
        })
    }

    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<()> {
        for sb in self.sandboxes(Some(uid)).await? {
            let containers = self.containers_of(&sb.id).await?;
            let stops = containers
                .iter()
                .filter(|c| c.state() == cri::ContainerState::ContainerRunning)
                .map(|c| self.stop_container_id(&c.id, grace));
            for r in futures::future::join_all(stops).await {
                r?;
            }
            self.rt()
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await
                .map_err(|s| RuntimeError::cri("StopPodSandbox", s))?;
            tracing::info!(pod = %uid, sandbox = %sb.id, "pod stopped");
        }
        Ok(())
    }

    async fn remove_pod(&self, uid: &str) -> Result<()> {
        let sandboxes = self.sandboxes(Some(uid)).await?;
        let mut log_dirs = Vec::new();
        for sb in &sandboxes {
            if let Some(m) = &sb.metadata {
                log_dirs.push(
                    self.log_root
                        .join(format!("{}_{}_{}", m.namespace, m.name, m.uid)),
                );
            }
            self.rt()
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await
                .map_err(|s| RuntimeError::cri("StopPodSandbox", s))?;
            self.rt()
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await
                .map_err(|s| RuntimeError::cri("RemovePodSandbox", s))?;
            tracing::info!(pod = %uid, sandbox = %sb.id, "pod removed");
        }
        for d in log_dirs {
            match std::fs::remove_dir_all(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RuntimeError::io(&d, e)),
            }
        }
        Self::remove_pod_cgroups(uid);
        Ok(())
    }

    async fn list_pods(&self) -> Result<Vec<PodSummary>> {
        Ok(self
            .sandboxes(None)
            .await?
            .into_iter()
            .map(|s| {
                let m = s.metadata.clone().unwrap_or_default();
                let get = |k: &str, fallback: &str| {
                    s.annotations
                        .get(k)
                        .or_else(|| s.labels.get(k))
                        .cloned()
                        .unwrap_or_else(|| fallback.to_string())
                };
                PodSummary {
                    uid: get(LABEL_POD_UID, &m.uid),
                    namespace: get(LABEL_POD_NAMESPACE, &m.namespace),
                    name: get(LABEL_POD_NAME, &m.name),
                    sandbox_id: s.id.clone(),
                    state: if s.state() == cri::PodSandboxState::SandboxReady {
                        SandboxState::Ready
                    } else {
                        SandboxState::NotReady
                    },
                    created_at: nanos_to_time(s.created_at),
                }
            })
            .collect())
    }

    /// `ctr task exec` in containerd's CRI namespace: unlike the CRI streaming server of
    /// containerd 1.6 (SPDY, or WebSocket up to v4 which cannot half-close stdin) it passes stdin
    /// EOF on, and it exits with the process's exit code.
    async fn exec_command(
        &self,
        uid: &str,
        container: &str,
        command: &[String],
        tty: bool,
    ) -> Result<tokio::process::Command> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let st = self.pod_status(uid).await?;
        let c = st
            .containers
            .into_iter()
            .find(|c| c.name == container)
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            })?;
        if !matches!(c.state, ContainerState::Running { .. }) {
            return Err(RuntimeError::ContainerNotRunning {
                container: container.to_string(),
            });
        }
        let id = c
            .container_id
            .strip_prefix("containerd://")
            .unwrap_or(&c.container_id)
            .to_string();
        let exec_id = format!(
            "daas-exec-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut cmd = tokio::process::Command::new(&self.ctr);
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["--namespace", "k8s.io", "task", "exec", "--exec-id"])
            .arg(exec_id);
        if tty {
            cmd.arg("--tty");
        }
        cmd.arg("--").arg(id).args(command).kill_on_drop(true);
        Ok(cmd)
    }

    /// CRI `Attach`: containerd's streaming server URL for this container's stdio.
    async fn attach_url(
        &self,
        uid: &str,
        container: &str,
        streams: super::AttachStreams,
    ) -> Result<String> {
        let st = self.pod_status(uid).await?;
        let c = st
            .containers
            .into_iter()
            .find(|c| c.name == container)
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            })?;
        if !matches!(c.state, ContainerState::Running { .. }) {
            return Err(RuntimeError::ContainerNotRunning {
                container: container.to_string(),
            });
        }
        let id = c
            .container_id
            .strip_prefix("containerd://")
            .unwrap_or(&c.container_id)
            .to_string();
        Ok(self
            .rt()
            .attach(cri::AttachRequest {
                container_id: id,
                stdin: streams.stdin,
                tty: streams.tty,
                stdout: streams.stdout,
                stderr: streams.stderr && !streams.tty,
            })
            .await
            .map_err(|s| RuntimeError::cri("Attach", s))?
            .into_inner()
            .url)
    }

    async fn runtime_version(&self) -> Result<String> {
        let (name, version) = self.version().await?;
        Ok(format!("{name}://{}", version.trim_start_matches('v')))
    }

    async fn list_images(&self) -> Result<Vec<super::NodeImage>> {
        let images = self
            .img()
            .list_images(cri::ListImagesRequest { filter: None })
            .await
            .map_err(|s| RuntimeError::cri("ListImages", s))?
            .into_inner()
            .images;
        Ok(images
            .into_iter()
            .map(|i| super::NodeImage {
                names: i.repo_digests.into_iter().chain(i.repo_tags).collect(),
                size_bytes: i.size,
            })
            .collect())
    }

    async fn log_path(&self, uid: &str, container: &str) -> Result<PathBuf> {
        let st = self.pod_status(uid).await?;
        st.containers
            .into_iter()
            .find(|c| c.name == container)
            .map(|c| c.log_path)
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ContainerSecurity, MountLite};

    fn pod(containers: Vec<ContainerSpecLite>) -> PodSpecLite {
        PodSpecLite {
            uid: "u1".into(),
            namespace: "default".into(),
            name: "p".into(),
            containers,
            supplemental_groups: vec![4000],
            sysctls: BTreeMap::from([
                ("net.ipv4.tcp_syncookies".to_string(), "1".to_string()),
                // Never passed on, even if it got here.
                ("kernel.core_pattern".to_string(), "|/evil".to_string()),
            ]),
            ..Default::default()
        }
    }

    fn container() -> ContainerSpecLite {
        ContainerSpecLite {
            name: "c".into(),
            image: "busybox".into(),
            mounts: vec![MountLite {
                host_path: "/srv/data".into(),
                container_path: "/data".into(),
                readonly: true,
            }],
            ..Default::default()
        }
    }

    #[test]
    #[allow(deprecated)]
    fn sandbox_is_hardened() {
        let spec = pod(vec![container()]);
        let cfg = ContainerdRuntime::build_sandbox_config(PathBuf::from("/logs/p"), &spec, 0);
        let linux = cfg.linux.expect("linux");
        let sc = linux.security_context.expect("security context");
        assert!(!sc.privileged);
        let ns = sc.namespace_options.expect("namespaces");
        assert_eq!(ns.network, cri::NamespaceMode::Pod as i32);
        assert_eq!(ns.ipc, cri::NamespaceMode::Pod as i32);
        assert_eq!(ns.pid, cri::NamespaceMode::Container as i32);
        let seccomp = sc.seccomp.expect("seccomp");
        assert_eq!(
            seccomp.profile_type,
            cri::security_profile::ProfileType::RuntimeDefault as i32
        );
        assert_eq!(sc.seccomp_profile_path, "runtime/default");
        assert_eq!(sc.supplemental_groups, vec![4000]);
        assert_eq!(
            linux.sysctls,
            HashMap::from([("net.ipv4.tcp_syncookies".to_string(), "1".to_string())])
        );
        let shared = PodSpecLite {
            share_process_namespace: true,
            ..spec
        };
        let cfg = ContainerdRuntime::build_sandbox_config(PathBuf::from("/logs/p"), &shared, 0);
        let ns = cfg
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options)
            .expect("namespaces");
        assert_eq!(ns.pid, cri::NamespaceMode::Pod as i32);
    }

    #[test]
    fn dns_becomes_the_sandbox_dns_config() {
        let plain = ContainerdRuntime::build_sandbox_config(PathBuf::from("/l"), &pod(vec![]), 0);
        assert_eq!(plain.dns_config, None);
        let spec = PodSpecLite {
            dns: Some(crate::resolvconf::PodDns {
                servers: vec!["10.43.0.10".into()],
                searches: vec!["ns.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            ..pod(vec![])
        };
        let cfg = ContainerdRuntime::build_sandbox_config(PathBuf::from("/l"), &spec, 0);
        assert_eq!(
            cfg.dns_config,
            Some(cri::DnsConfig {
                servers: vec!["10.43.0.10".into()],
                searches: vec!["ns.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            })
        );
    }

    #[test]
    fn host_ports_become_the_sandbox_port_mappings() {
        let spec = PodSpecLite {
            host_ports: vec![super::super::HostPortMapping {
                protocol: super::super::PortProtocol::Udp,
                container_port: 53,
                host_port: 5353,
                host_ip: "10.0.0.1".into(),
            }],
            ..pod(vec![container()])
        };
        let cfg = ContainerdRuntime::build_sandbox_config(PathBuf::from("/logs/p"), &spec, 0);
        assert_eq!(
            cfg.port_mappings,
            vec![cri::PortMapping {
                protocol: cri::Protocol::Udp as i32,
                container_port: 53,
                host_port: 5353,
                host_ip: "10.0.0.1".into(),
            }]
        );
    }

    #[test]
    fn container_stdio_settings_reach_cri() {
        let mut c = container();
        let cfg = ContainerdRuntime::container_config(&pod(vec![c.clone()]), &c, 0, &[], None);
        assert!(!cfg.stdin && !cfg.stdin_once && !cfg.tty);
        c.stdin = true;
        c.stdin_once = true;
        c.tty = true;
        let cfg = ContainerdRuntime::container_config(&pod(vec![c.clone()]), &c, 0, &[], None);
        assert!(cfg.stdin && cfg.stdin_once && cfg.tty);
    }

    #[test]
    #[allow(deprecated)]
    fn container_is_hardened() {
        let mut c = container();
        c.security = ContainerSecurity {
            // Anything outside the default set is never granted, whoever put it there.
            capabilities: vec![
                "NET_BIND_SERVICE".into(),
                "SYS_ADMIN".into(),
                "cap_chown".into(),
            ],
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            run_as_non_root: true,
            readonly_rootfs: true,
        };
        let spec = pod(vec![c.clone()]);
        let cfg = ContainerdRuntime::container_config(&spec, &c, 2, &[], None);
        let sc = cfg
            .linux
            .and_then(|l| l.security_context)
            .expect("security context");
        assert!(!sc.privileged);
        assert!(sc.no_new_privs);
        let caps = sc.capabilities.expect("capabilities");
        assert_eq!(caps.drop_capabilities, vec!["ALL"]);
        assert_eq!(caps.add_capabilities, vec!["NET_BIND_SERVICE", "CHOWN"]);
        assert!(caps.add_ambient_capabilities.is_empty());
        assert_eq!(
            sc.seccomp.map(|s| s.profile_type),
            Some(cri::security_profile::ProfileType::RuntimeDefault as i32)
        );
        assert_eq!(sc.seccomp_profile_path, "runtime/default");
        let ns = sc.namespace_options.expect("namespaces");
        assert_ne!(ns.network, cri::NamespaceMode::Node as i32);
        assert_ne!(ns.pid, cri::NamespaceMode::Node as i32);
        assert_ne!(ns.ipc, cri::NamespaceMode::Node as i32);
        assert_eq!(sc.run_as_user.map(|v| v.value), Some(1000));
        assert_eq!(sc.run_as_group.map(|v| v.value), Some(3000));
        assert!(sc.readonly_rootfs);
        assert_eq!(sc.supplemental_groups, vec![4000]);
        let m = &cfg.mounts[0];
        assert!(m.readonly);
        assert_eq!(
            m.propagation,
            cri::MountPropagation::PropagationPrivate as i32
        );

        // Defaults: the runtime default capability set, root, writable root filesystem.
        let plain = container();
        let cfg = ContainerdRuntime::container_config(&spec, &plain, 0, &[], None);
        let sc = cfg
            .linux
            .and_then(|l| l.security_context)
            .expect("security context");
        let caps = sc.capabilities.expect("capabilities");
        assert_eq!(
            caps.add_capabilities,
            RUNTIME_DEFAULT_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        );
        assert!(sc.no_new_privs && !sc.privileged && !sc.readonly_rootfs);
        assert_eq!(sc.run_as_user, None);
    }

    #[test]
    fn container_env_resources_and_pod_files() {
        use crate::runtime::{EnvValue, EnvVarLite, EtcHosts, ResourceLimits};
        let mut c = container();
        c.command = vec!["sh".into(), "-c".into()];
        c.args = vec!["echo $(POD_IP) $(KUBERNETES_SERVICE_HOST) $$(X)".into()];
        c.env = vec![EnvVarLite {
            name: "POD_IP".into(),
            value: EnvValue::PodIp,
        }];
        c.limits = ResourceLimits {
            cpu_request_millis: Some(250),
            cpu_millis: Some(500),
            memory_bytes: Some(64 << 20),
        };
        c.termination_message_path = Some("/dev/termination-log".into());
        c.termination_message_fallback = true;
        let mut spec = pod(vec![c.clone()]);
        spec.service_env = vec![("KUBERNETES_SERVICE_HOST".into(), "10.43.0.1".into())];
        spec.etc_hosts = Some(EtcHosts {
            path: "/pods/u/etc-hosts".into(),
            hostname: "p".into(),
            ..Default::default()
        });
        let ips = vec!["10.42.0.9".to_string()];
        let cfg = ContainerdRuntime::container_config(
            &spec,
            &c,
            0,
            &ips,
            Some(Path::new("/pods/u/containers/c/0")),
        );
        assert_eq!(cfg.args, vec!["echo 10.42.0.9 10.43.0.1 $(X)"]);
        let env: BTreeMap<_, _> = cfg.envs.iter().map(|kv| (&kv.key, &kv.value)).collect();
        assert_eq!(
            env.get(&"POD_IP".to_string()).map(|s| s.as_str()),
            Some("10.42.0.9")
        );
        let r = cfg.linux.and_then(|l| l.resources).expect("resources");
        assert_eq!(r.cpu_shares, 256);
        assert_eq!((r.cpu_quota, r.cpu_period), (50_000, 100_000));
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        let mount = |p: &str| cfg.mounts.iter().find(|m| m.container_path == p).cloned();
        assert_eq!(
            mount("/dev/termination-log").map(|m| m.host_path),
            Some("/pods/u/containers/c/0".to_string())
        );
        assert_eq!(
            mount("/etc/hosts").map(|m| m.host_path),
            Some("/pods/u/etc-hosts".to_string())
        );
        assert_eq!(
            cfg.annotations
                .get(ANNOTATION_TERMINATION_POLICY)
                .map(|s| s.as_str()),
            Some("FallbackToLogsOnError")
        );

        // No request: BestEffort's minimal shares, no quota; a pod's own /etc/hosts mount wins.
        let mut plain = container();
        plain.mounts.push(MountLite {
            host_path: "/srv/hosts".into(),
            container_path: "/etc/hosts".into(),
            readonly: true,
        });
        let cfg = ContainerdRuntime::container_config(&spec, &plain, 0, &ips, None);
        let r = cfg.linux.and_then(|l| l.resources).expect("resources");
        assert_eq!((r.cpu_shares, r.cpu_quota), (2, 0));
        let hosts: Vec<_> = cfg
            .mounts
            .iter()
            .filter(|m| m.container_path == "/etc/hosts")
            .collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].host_path, "/srv/hosts");
    }

    #[tokio::test]
    async fn termination_message_from_file_or_log() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("t");
        let log = tmp.path().join("0.log");
        std::fs::write(
            &log,
            "2024-01-01T00:00:00.000000000Z stdout F first\n2024-01-01T00:00:01.000000000Z stderr F boom\n",
        )
        .unwrap();
        let status = |policy: &str, code: i32| cri::ContainerStatus {
            exit_code: code,
            log_path: log.display().to_string(),
            annotations: HashMap::from([
                (
                    ANNOTATION_TERMINATION_PATH.to_string(),
                    "/dev/termination-log".to_string(),
                ),
                (
                    ANNOTATION_TERMINATION_POLICY.to_string(),
                    policy.to_string(),
                ),
            ]),
            mounts: vec![cri::Mount {
                container_path: "/dev/termination-log".into(),
                host_path: file.display().to_string(),
                ..Default::default()
            }],
            ..Default::default()
        };
        std::fs::write(&file, "").unwrap();
        assert_eq!(termination_message(&status("File", 1)).await, None);
        assert_eq!(
            termination_message(&status("FallbackToLogsOnError", 1))
                .await
                .as_deref(),
            Some("first\nboom\n")
        );
        // Success: the log is not used.
        assert_eq!(
            termination_message(&status("FallbackToLogsOnError", 0)).await,
            None
        );
        // The file wins over the log.
        std::fs::write(&file, "DONE").unwrap();
        assert_eq!(
            termination_message(&status("FallbackToLogsOnError", 1))
                .await
                .as_deref(),
            Some("DONE")
        );
    }

    #[test]
    fn run_as_non_root_is_verified() {
        let img = |uid: Option<i64>, user: &str| ImageRef {
            name: "i".into(),
            id: "sha256:x".into(),
            repo_tags: vec![],
            repo_digests: vec![],
            uid,
            username: user.into(),
        };
        let mut c = container();
        let spec = pod(vec![c.clone()]);
        // Not asked: anything goes.
        assert!(verify_run_as_non_root(&spec, &c, &img(None, "")).is_ok());
        c.security.run_as_non_root = true;
        let err = |c: &ContainerSpecLite, i: ImageRef| match verify_run_as_non_root(&spec, c, &i) {
            Err(RuntimeError::NonRootPolicy(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(&c, img(None, "")),
            "container has runAsNonRoot and image will run as root (pod: \"p_default(u1)\", container: c)"
        );
        assert!(err(&c, img(Some(0), "")).contains("image will run as root"));
        assert!(err(&c, img(None, "nobody")).contains("non-numeric user (nobody)"));
        assert!(verify_run_as_non_root(&spec, &c, &img(Some(65534), "")).is_ok());
        c.security.run_as_user = Some(0);
        assert!(err(&c, img(Some(1000), ""))
            .starts_with("container's runAsUser breaks non-root policy"));
        c.security.run_as_user = Some(1000);
        assert!(verify_run_as_non_root(&spec, &c, &img(None, "")).is_ok());
    }
}
