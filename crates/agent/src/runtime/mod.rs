//! Container runtime layer of the worker agent.
//!
//! [`Runtime`] is the seam between the kubelet logic (pod sync, restart policy, status reporting) and the
//! containers, expressed in pod terms. [`ContainerdRuntime`] implements it with CRI v1 over containerd's unix
//! socket; [`ManagedContainerd`] runs a private containerd for the agent (generated config, CNI conflist,
//! locally built sandbox image, air-gap image import).

mod containerd;
mod cri;
pub mod cri_api;
#[cfg(test)]
pub mod fake;
pub mod image;
pub mod log;
mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use containerd::{mounts_under, unmount_all_under, ManagedContainerd, ManagedContainerdConfig};
pub use cri::ContainerdRuntime;
pub use image::{BUSYBOX_IMAGE, PAUSE_IMAGE};
pub use log::{parse_cri_log_line, read_messages, CriLogLine, CriLogReader, LogStream};
pub use spec::{parse_cpu_millis, parse_memory_bytes};

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
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub limits: ResourceLimits,
    pub mounts: Vec<MountLite>,
    pub security: ContainerSecurity,
}

/// The part of a Kubernetes pod the runtime needs; see [`PodSpecLite::from_pod`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSpecLite {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub containers: Vec<ContainerSpecLite>,
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

/// The seam between the kubelet logic and containers.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Makes sure `image` is present according to `pull_policy` (IfNotPresent/Never never touch the network if
    /// the image is present).
    async fn ensure_image(&self, image: &str, pull_policy: PullPolicy) -> Result<ImageRef>;

    /// Creates the pod sandbox (with CNI networking), then creates and starts all containers (pulling their images
    /// according to their pull policy).
    async fn run_pod(&self, spec: &PodSpecLite) -> Result<PodHandle>;

    /// Status of the pod with this uid (latest sandbox; latest instance of each container).
    async fn pod_status(&self, uid: &str) -> Result<PodRuntimeStatus>;

    /// Replaces the (exited) container `container` of the pod by a new instance with attempt + 1 and starts it.
    /// The caller decides when, according to the restart policy and back-off.
    async fn restart_container(&self, spec: &PodSpecLite, container: &str) -> Result<()>;

    /// Stops all containers (SIGTERM, SIGKILL after `grace`) and the sandbox (network torn down).
    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<()>;

    /// Removes the pod's sandboxes, containers, logs and cgroups. Stops them first if needed.
    async fn remove_pod(&self, uid: &str) -> Result<()>;

    /// All pods this agent created that the runtime knows, for re-adoption after an agent restart.
    async fn list_pods(&self) -> Result<Vec<PodSummary>>;

    /// CRI log file of the latest instance of `container` in the pod.
    async fn log_path(&self, uid: &str, container: &str) -> Result<PathBuf>;

    /// Images present in the runtime with their sizes.
    async fn list_images(&self) -> Result<Vec<NodeImage>>;

    /// `<name>://<version>` of the runtime, as the Node's `nodeInfo.containerRuntimeVersion`.
    async fn runtime_version(&self) -> Result<String>;
}
