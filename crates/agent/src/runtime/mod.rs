//! Container runtime layer of the worker agent.
//!
//! [`Runtime`] is the seam between the kubelet logic (pod sync, restart policy, status reporting) and the
//! containers, expressed in pod terms. [`ContainerdRuntime`] implements it with CRI v1 over containerd's unix
//! socket; [`ManagedContainerd`] runs a private containerd for the agent (generated config, CNI conflist,
//! locally built sandbox image, air-gap image import).

mod containerd;
mod cri;
pub mod cri_api;
pub mod expand;
#[cfg(test)]
pub mod fake;
pub mod image;
pub mod log;
pub mod podfiles;
pub mod pullsecrets;
mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use containerd::{mounts_under, unmount_all_under, ManagedContainerd, ManagedContainerdConfig};
pub use cri::ContainerdRuntime;
pub use image::{valid_image_reference, BUSYBOX_IMAGE, PAUSE_IMAGE};
pub use log::{parse_cri_log_line, read_messages, CriLogLine, CriLogReader, LogStream};
pub use spec::{
    ephemeral_as_container, parse_cpu_millis, parse_memory_bytes, resolve_container,
    ResolvedContainer,
};

/// Label/annotation keys put on sandboxes and containers so a restarted agent can re-adopt its pods.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const LABEL_MANAGED_BY: &str = "k3s-daas.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "daas-agent";

/// Errors of the runtime layer.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("io error at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CRI call {call} failed: {status}")]
    Cri {
        call: &'static str,
        #[source]
        status: tonic::Status,
    },
    #[error("cannot connect to containerd at {path}: {message}")]
    Connect { path: PathBuf, message: String },
    #[error("containerd: {0}")]
    Containerd(String),
    #[error("command `{command}` failed: {message}")]
    Command { command: String, message: String },
    /// The image is not a valid reference (the kubelet's InvalidImageName).
    #[error("Failed to apply default image tag {0:?}: couldn't parse image reference {0:?}: invalid reference format")]
    InvalidImageName(String),
    #[error("image {0} is not present and pull policy is Never")]
    ImageNotPresent(String),
    #[error("pod {0} not found")]
    PodNotFound(String),
    #[error("container {container} of pod {uid} not found")]
    ContainerNotFound { uid: String, container: String },
    /// `runAsNonRoot` cannot be honoured (the kubelet's CreateContainerConfigError).
    #[error("{0}")]
    NonRootPolicy(String),
    #[error("invalid pod spec: {0}")]
    InvalidSpec(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("container {container} is not running")]
    ContainerNotRunning { container: String },
    #[error("this runtime does not support {0}")]
    Unsupported(&'static str),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn cri(call: &'static str, status: tonic::Status) -> Self {
        RuntimeError::Cri { call, status }
    }
}

/// Kubernetes `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// Parses the Kubernetes value; `None`/unknown falls back to the Kubernetes default for `image`
    /// (`Always` for `:latest` or untagged images, `IfNotPresent` otherwise).
    pub fn from_k8s(value: Option<&str>, image: &str) -> PullPolicy {
        match value {
            Some("Always") => PullPolicy::Always,
            Some("IfNotPresent") => PullPolicy::IfNotPresent,
            Some("Never") => PullPolicy::Never,
            _ => {
                let last = image.rsplit('/').next().unwrap_or(image);
                let tagged = last.contains(':') && !last.ends_with(":latest");
                if tagged || image.contains('@') {
                    PullPolicy::IfNotPresent
                } else {
                    PullPolicy::Always
                }
            }
        }
    }
}

/// Kubernetes `restartPolicy` (the caller applies it; the runtime only reports and restarts on request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn from_k8s(value: Option<&str>) -> RestartPolicy {
        match value {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container that exited with `exit_code` should be restarted under this policy.
    pub fn should_restart(&self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// Resource limits of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// CPU request in millicores (the cgroup's cpu shares; none: the minimum, as BestEffort).
    pub cpu_request_millis: Option<u64>,
    /// CPU limit in millicores (`500m` = 500, `2` = 2000).
    pub cpu_millis: Option<u64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
}

/// A host directory or file bind-mounted into a container (volumes are prepared by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountLite {
    pub host_path: PathBuf,
    pub container_path: String,
    pub readonly: bool,
}

/// The effective security settings of one container (pod-level `securityContext` merged in).
/// Whatever these say, the runtime never runs a container privileged, always sets `no_new_privs`
/// and the runtime's default seccomp profile, and grants no capability outside
/// [`RUNTIME_DEFAULT_CAPABILITIES`](crate::security::RUNTIME_DEFAULT_CAPABILITIES).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSecurity {
    /// Capabilities granted (without the `CAP_` prefix); see
    /// [`effective_capabilities`](crate::security::effective_capabilities).
    pub capabilities: Vec<String>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    /// Refuse to start the container if it would run as uid 0.
    pub run_as_non_root: bool,
    pub readonly_rootfs: bool,
}

impl Default for ContainerSecurity {
    fn default() -> Self {
        ContainerSecurity {
            capabilities: crate::security::effective_capabilities(None),
            run_as_user: None,
            run_as_group: None,
            run_as_non_root: false,
            readonly_rootfs: false,
        }
    }
}

/// Where the value of one environment variable comes from, as far as the runtime must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `env[].value`: `$(VAR)` references are expanded against the variables defined before it
    /// and the service variables.
    Literal(String),
    /// Resolved from `envFrom` or `valueFrom`: used as is.
    Resolved(String),
    /// `status.podIP`: known once the sandbox has its network.
    PodIp,
    /// `status.podIPs`: all the pod's IPs, comma-separated.
    PodIps,
}

/// One environment variable of a container, in the order the pod declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVarLite {
    pub name: String,
    pub value: EnvValue,
}

impl EnvVarLite {
    pub fn literal(name: impl Into<String>, value: impl Into<String>) -> EnvVarLite {
        EnvVarLite {
            name: name.into(),
            value: EnvValue::Literal(value.into()),
        }
    }
}

/// The part of a Kubernetes container the runtime needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpecLite {
    pub name: String,
    pub image: String,
    pub pull_policy: PullPolicy,
    /// Kubernetes `command` (overrides the image entrypoint).
    pub command: Vec<String>,
    /// Kubernetes `args` (overrides the image cmd).
    pub args: Vec<String>,
    /// envFrom, then env, in order (a later definition of a name replaces the earlier one); see
    /// [`resolve_container`].
    pub env: Vec<EnvVarLite>,
    pub working_dir: Option<String>,
    pub limits: ResourceLimits,
    pub mounts: Vec<MountLite>,
    pub security: ContainerSecurity,
    /// An init container with `restartPolicy: Always` (a sidecar): started in order with the
    /// other init containers, kept running and restarted, never waited on for completion.
    pub sidecar: bool,
    /// `terminationMessagePath`: a per-instance file under [`PodSpecLite::pod_dir`] is mounted
    /// there and read when the container exits.
    pub termination_message_path: Option<String>,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub termination_message_fallback: bool,
    /// `stdin`: the container gets a stdin stream (that `kubectl attach` can write to).
    pub stdin: bool,
    /// `stdinOnce`: stdin is closed when the first attached client detaches.
    pub stdin_once: bool,
    /// `tty`: the container's stdio is a terminal.
    pub tty: bool,
    /// An ephemeral container's `targetContainerName`: it joins that container's PID namespace.
    pub target_container: Option<String>,
}

/// The part of a Kubernetes pod the runtime needs; see [`PodSpecLite::from_pod`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSpecLite {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// `initContainers`, in order (the kubelet logic starts them one at a time).
    pub init_containers: Vec<ContainerSpecLite>,
    pub containers: Vec<ContainerSpecLite>,
    /// `ephemeralContainers` (`kubectl debug`): started once in the running sandbox, never
    /// restarted, not counted for the pod's phase or readiness.
    pub ephemeral_containers: Vec<ContainerSpecLite>,
    pub restart_policy: RestartPolicy,
    /// Extra labels copied to the sandbox (the pod's labels).
    pub labels: BTreeMap<String, String>,
    pub hostname: Option<String>,
    /// `securityContext.supplementalGroups` (plus `fsGroup`) of the pod.
    pub supplemental_groups: Vec<i64>,
    /// Safe sysctls of the pod (others are refused by node admission and never passed on).
    pub sysctls: BTreeMap<String, String>,
    /// `shareProcessNamespace`: one PID namespace for the pod instead of one per container.
    pub share_process_namespace: bool,
    /// `<SVC>_SERVICE_HOST`, ... of the services the pod sees (enableServiceLinks), sorted.
    pub service_env: Vec<(String, String)>,
    /// The kubelet-managed `/etc/hosts`, written and mounted once the pod IP is known.
    pub etc_hosts: Option<EtcHosts>,
    /// Host directory for the pod's per-container files (termination messages).
    pub pod_dir: Option<PathBuf>,
    /// Registry credentials from the pod's `imagePullSecrets` (in memory only; `Debug` shows
    /// only the registries).
    pub pull_keyring: pullsecrets::PullKeyring,
    /// Container ports published on the node (`hostPort`).
    pub host_ports: Vec<HostPortMapping>,
    /// The pod's resolv.conf from its `dnsPolicy` and `dnsConfig` (none: the runtime copies the
    /// host's).
    pub dns: Option<crate::resolvconf::PodDns>,
}

/// A container port published on the node (`hostPort`): the CNI `portmap` plugin forwards
/// `host_ip:host_port` (every node address when `host_ip` is empty) to the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPortMapping {
    pub protocol: PortProtocol,
    pub container_port: i32,
    pub host_port: i32,
    pub host_ip: String,
}

/// A container port's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortProtocol {
    Tcp,
    Udp,
    Sctp,
}

impl PortProtocol {
    /// `TCP` (the default), `UDP` or `SCTP`.
    pub fn from_k8s(p: Option<&str>) -> Option<PortProtocol> {
        match p.unwrap_or("TCP") {
            "TCP" => Some(PortProtocol::Tcp),
            "UDP" => Some(PortProtocol::Udp),
            "SCTP" => Some(PortProtocol::Sctp),
            _ => None,
        }
    }
}

/// The kubelet-managed `/etc/hosts` of a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcHosts {
    /// Host file mounted at `/etc/hosts` in every container.
    pub path: PathBuf,
    pub hostname: String,
    /// `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>` when the pod has a subdomain.
    pub fqdn: Option<String>,
    /// `hostAliases`: IP and its names.
    pub aliases: Vec<(String, Vec<String>)>,
}

impl PodSpecLite {
    /// The init, app or ephemeral container named `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerSpecLite> {
        self.init_containers
            .iter()
            .chain(self.containers.iter())
            .chain(self.ephemeral_containers.iter())
            .find(|c| c.name == name)
    }
}

/// What a command run in a container by [`Runtime::exec_sync`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Reference to an image present in the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The name it was asked for (as normalised by the runtime when it reports tags).
    pub name: String,
    /// Image id (`sha256:<config digest>`).
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Numeric user the image runs as, if its config names one.
    pub uid: Option<i64>,
    /// Non-numeric user name the image runs as, if any.
    pub username: String,
}

/// A pod created by [`Runtime::run_pod`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodHandle {
    pub uid: String,
    pub sandbox_id: String,
}

/// State of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Running {
        started_at: DateTime<Utc>,
    },
    Exited {
        code: i32,
        reason: String,
        finished_at: DateTime<Utc>,
        /// The termination message (the file at `terminationMessagePath`, or the log's tail
        /// under `FallbackToLogsOnError`).
        message: Option<String>,
    },
    Waiting {
        reason: String,
    },
}

/// Status of the latest instance (attempt) of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRuntimeStatus {
    pub name: String,
    pub state: ContainerState,
    /// Number of restarts so far (= CRI attempt of the latest instance).
    pub restart_count: u32,
    /// Image as given in the spec.
    pub image: String,
    /// Resolved image (`sha256:...` id or repo digest).
    pub image_id: String,
    /// `containerd://<id>` as Kubernetes reports it.
    pub container_id: String,
    /// CRI log file of this instance.
    pub log_path: PathBuf,
    /// The state of the previous instance, if it is still there (Kubernetes `lastState`).
    pub last_state: Option<ContainerState>,
}

/// Sandbox state as CRI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Ready,
    NotReady,
}

/// Status of a pod as seen by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRuntimeStatus {
    pub uid: String,
    pub sandbox_id: String,
    pub sandbox_state: SandboxState,
    pub ip: Option<String>,
    pub containers: Vec<ContainerRuntimeStatus>,
}

/// A pod found in the runtime by [`Runtime::list_pods`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub sandbox_id: String,
    pub state: SandboxState,
    pub created_at: DateTime<Utc>,
}

/// An image present in the runtime (for the Node's `status.images`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    /// Repo digests then tags, as the kubelet lists them.
    pub names: Vec<String>,
    pub size_bytes: u64,
}

/// Which of a container's streams an attach wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The seam between the kubelet logic and containers.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Makes sure `image` is present according to `pull_policy` (IfNotPresent/Never never touch the network if
    /// the image is present). A pull tries the `keyring`'s credentials matching `image` in turn (the
    /// first success wins), or pulls anonymously when none match.
    async fn ensure_image(
        &self,
        image: &str,
        pull_policy: PullPolicy,
        keyring: &pullsecrets::PullKeyring,
    ) -> Result<ImageRef>;

    /// Creates the pod sandbox (with CNI networking), then creates and starts all app containers (pulling their
    /// images according to their pull policy). A pod with init containers gets only its sandbox: the caller starts
    /// the init containers and then the app containers one at a time with [`Runtime::start_container`].
    async fn run_pod(&self, spec: &PodSpecLite) -> Result<PodHandle>;

    /// Creates the pod sandbox (with CNI networking) ahead of [`Runtime::run_pod`], which then
    /// reuses it, so the sandbox can come up while the pod's volumes are read. `spec` needs what
    /// the sandbox is made of (hostname, DNS, ports, security context), not the volumes or env.
    /// Default: nothing (run_pod creates the sandbox).
    async fn prepare_sandbox(&self, spec: &PodSpecLite) -> Result<()> {
        let _ = spec;
        Ok(())
    }

    /// A fingerprint of each pod's sandboxes and containers (ids, states, attempts), by pod
    /// uid, from one listing of all of them (the kubelet's PLEG relist): a pod whose fingerprint
    /// has not changed had no sandbox or container created, started, exited or removed.
    /// `None`: not supported (then every pod is synced on every tick).
    async fn pod_fingerprints(&self) -> Result<Option<std::collections::HashMap<String, u64>>> {
        Ok(None)
    }

    /// Status of the pod with this uid (latest sandbox; latest instance of each container).
    async fn pod_status(&self, uid: &str) -> Result<PodRuntimeStatus>;

    /// Replaces the (exited) container `container` of the pod by a new instance with attempt + 1 and starts it.
    /// The caller decides when, according to the restart policy and back-off.
    async fn restart_container(&self, spec: &PodSpecLite, container: &str) -> Result<()>;

    /// Creates and starts a new instance (attempt + 1, or 0 for the first) of the init or app container
    /// `container` in the pod's existing sandbox. A running instance is stopped first.
    async fn start_container(&self, spec: &PodSpecLite, container: &str) -> Result<()>;

    /// Stops the running instance of `container` (SIGTERM, SIGKILL after `grace`); the instance is kept
    /// (it reports its exit), a no-op if it does not run.
    async fn stop_container(&self, uid: &str, container: &str, grace: Duration) -> Result<()>;

    /// Runs `cmd` in the running instance of `container` and waits for it (at most `timeout`).
    async fn exec_sync(
        &self,
        uid: &str,
        container: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput>;

    /// Stops all containers (SIGTERM, SIGKILL after `grace`) and the sandbox (network torn down).
    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<()>;

    /// Removes the pod's sandboxes, containers, logs and cgroups. Stops them first if needed.
    async fn remove_pod(&self, uid: &str) -> Result<()>;

    /// All pods this agent created that the runtime knows, for re-adoption after an agent restart.
    async fn list_pods(&self) -> Result<Vec<PodSummary>>;

    /// CRI log file of the latest instance of `container` in the pod.
    async fn log_path(&self, uid: &str, container: &str) -> Result<PathBuf>;

    /// A command that, when spawned, runs `command` in the running `container` of the pod (its
    /// stdio is the process's stdio; with `tty` its stdin must be a terminal) and exits with the
    /// process's exit code.
    async fn exec_command(
        &self,
        _uid: &str,
        _container: &str,
        _command: &[String],
        _tty: bool,
    ) -> Result<tokio::process::Command> {
        Err(RuntimeError::Unsupported("exec"))
    }

    /// The URL of the runtime's streaming server that attaches to the stdio of the running
    /// `container` of the pod (CRI `Attach`): a single-use WebSocket (`v4.channel.k8s.io`)
    /// endpoint. `tty` must be the container's own setting.
    async fn attach_url(
        &self,
        _uid: &str,
        _container: &str,
        _streams: AttachStreams,
    ) -> Result<String> {
        Err(RuntimeError::Unsupported("attach"))
    }
    /// Images present in the runtime with their sizes.
    async fn list_images(&self) -> Result<Vec<NodeImage>>;

    /// `<name>://<version>` of the runtime, as the Node's `nodeInfo.containerRuntimeVersion`.
    async fn runtime_version(&self) -> Result<String>;
}
