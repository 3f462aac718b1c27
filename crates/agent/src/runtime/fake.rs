//! A recording [`Runtime`] for tests of the kubelet logic (youki's syscall test double is the
//! model): it keeps pods and containers in memory, records every call it gets, and lets a test
//! script what happens — a container exits with a code, an image cannot be pulled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::{
    ContainerRuntimeStatus, ContainerState, ExecOutput, ImageRef, PodHandle, PodRuntimeStatus,
    PodSpecLite, PodSummary, PullPolicy, Result, Runtime, RuntimeError, SandboxState,
};

/// One call the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    EnsureImage(String),
    RunPod(String),
    PodStatus(String),
    RestartContainer {
        uid: String,
        container: String,
    },
    StartContainer {
        uid: String,
        container: String,
    },
    StopContainer {
        uid: String,
        container: String,
        grace: Duration,
    },
    ExecSync {
        uid: String,
        container: String,
        cmd: Vec<String>,
    },
    StopPod {
        uid: String,
        grace: Duration,
    },
    RemovePod(String),
    ListPods,
    LogPath {
        uid: String,
        container: String,
    },
}

struct FakeContainer {
    image: String,
    state: ContainerState,
    restarts: u32,
}

struct FakePod {
    spec: PodSpecLite,
    containers: BTreeMap<String, FakeContainer>,
    ip: String,
    stopped: bool,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    pods: BTreeMap<String, FakePod>,
    unpullable: BTreeSet<String>,
    /// Exit code of commands run in (uid, container); 0 when not scripted.
    exec_codes: BTreeMap<(String, String), i32>,
}

#[derive(Default)]
pub struct FakeRuntime {
    inner: Mutex<Inner>,
    /// When set, `run_pod` waits at this gate (tests of concurrent starts).
    gate: Mutex<Option<std::sync::Arc<StartGate>>>,
}

/// Holds `run_pod` calls until released: counts those waiting, lets them through one permit
/// each.
pub struct StartGate {
    entered: std::sync::atomic::AtomicUsize,
    arrived: tokio::sync::Notify,
    release: tokio::sync::Semaphore,
}

impl Default for StartGate {
    fn default() -> StartGate {
        StartGate {
            entered: Default::default(),
            arrived: Default::default(),
            release: tokio::sync::Semaphore::new(0),
        }
    }
}

impl StartGate {
    /// Wait until `n` starts have reached the gate.
    pub async fn wait_entered(&self, n: usize) {
        loop {
            let arrived = self.arrived.notified();
            if self.entered.load(std::sync::atomic::Ordering::SeqCst) >= n {
                return;
            }
            arrived.await;
        }
    }

    /// Starts that reached the gate so far.
    pub fn entered(&self) -> usize {
        self.entered.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Let `n` starts through.
    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    async fn pass(&self) {
        self.entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.arrived.notify_waiters();
        if let Ok(p) = self.release.acquire().await {
            p.forget();
        }
    }
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hold every later `run_pod` at the returned gate until it lets it through.
    pub fn gate_starts(&self) -> std::sync::Arc<StartGate> {
        let gate = std::sync::Arc::new(StartGate::default());
        *self.gate.lock().unwrap_or_else(|e| e.into_inner()) = Some(gate.clone());
        gate
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Pulling `image` fails (as containerd reports a missing image) until [`Self::allow_pull`].
    pub fn fail_pull(&self, image: &str) {
        self.lock().unpullable.insert(image.to_string());
    }

    pub fn allow_pull(&self, image: &str) {
        self.lock().unpullable.remove(image);
    }

    /// Container `container` of pod `uid` exits with `code`.
    pub fn exit(&self, uid: &str, container: &str, code: i32) {
        if let Some(c) = self
            .lock()
            .pods
            .get_mut(uid)
            .and_then(|p| p.containers.get_mut(container))
        {
            c.state = ContainerState::Exited {
                code,
                reason: String::new(),
                finished_at: Utc::now(),
                message: None,
            };
        }
    }

    /// Commands run in container `container` of pod `uid` exit with `code` from now on.
    pub fn set_exec(&self, uid: &str, container: &str, code: i32) {
        self.lock()
            .exec_codes
            .insert((uid.to_string(), container.to_string()), code);
    }

    /// Whether `container` of pod `uid` runs now.
    pub fn running(&self, uid: &str, container: &str) -> bool {
        self.lock()
            .pods
            .get(uid)
            .and_then(|p| p.containers.get(container))
            .is_some_and(|c| matches!(c.state, ContainerState::Running { .. }))
    }

    /// Restarts of `container` so far.
    pub fn restarts(&self, uid: &str, container: &str) -> Option<u32> {
        self.lock()
            .pods
            .get(uid)
            .and_then(|p| p.containers.get(container))
            .map(|c| c.restarts)
    }

    /// Whether pod `uid` exists in the fake runtime.
    pub fn has_pod(&self, uid: &str) -> bool {
        self.lock().pods.contains_key(uid)
    }

    fn pull_error(image: &str) -> RuntimeError {
        RuntimeError::Cri {
            call: "PullImage",
            status: tonic::Status::not_found(format!(
                "failed to pull and unpack image \"{image}\": not found"
            )),
        }
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn ensure_image(
        &self,
        image: &str,
        _pull_policy: PullPolicy,
        _keyring: &super::pullsecrets::PullKeyring,
    ) -> Result<ImageRef> {
        let mut g = self.lock();
        g.calls.push(Call::EnsureImage(image.to_string()));
        if g.unpullable.contains(image) {
            return Err(Self::pull_error(image));
        }
        Ok(ImageRef {
            name: image.to_string(),
            id: format!("sha256:{}", hex::encode(image.as_bytes())),
            repo_tags: vec![image.to_string()],
            repo_digests: vec![],
            uid: None,
            username: String::new(),
        })
    }

    async fn run_pod(&self, spec: &PodSpecLite) -> Result<PodHandle> {
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        let mut g = self.lock();
        g.calls.push(Call::RunPod(spec.uid.clone()));
        if let Some(c) = spec
            .containers
            .iter()
            .find(|c| g.unpullable.contains(&c.image))
        {
            return Err(Self::pull_error(&c.image));
        }
        let n = g.pods.len() + 2;
        let app = if spec.init_containers.is_empty() {
            spec.containers.as_slice()
        } else {
            &[]
        };
        let containers = app
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    FakeContainer {
                        image: c.image.clone(),
                        state: ContainerState::Running {
                            started_at: Utc::now(),
                        },
                        restarts: 0,
                    },
                )
            })
            .collect();
        g.pods.insert(
            spec.uid.clone(),
            FakePod {
                spec: spec.clone(),
                containers,
                ip: format!("10.42.0.{n}"),
                stopped: false,
            },
        );
        Ok(PodHandle {
            uid: spec.uid.clone(),
            sandbox_id: format!("sandbox-{}", spec.uid),
        })
    }

    async fn pod_status(&self, uid: &str) -> Result<PodRuntimeStatus> {
        let mut g = self.lock();
        g.calls.push(Call::PodStatus(uid.to_string()));
        let p = g
            .pods
            .get(uid)
            .ok_or_else(|| RuntimeError::PodNotFound(uid.to_string()))?;
        Ok(PodRuntimeStatus {
            uid: uid.to_string(),
            sandbox_id: format!("sandbox-{uid}"),
            sandbox_state: if p.stopped {
                SandboxState::NotReady
            } else {
                SandboxState::Ready
            },
            ip: Some(p.ip.clone()),
            containers: p
                .containers
                .iter()
                .map(|(name, c)| ContainerRuntimeStatus {
                    name: name.clone(),
                    state: c.state.clone(),
                    restart_count: c.restarts,
                    image: c.image.clone(),
                    image_id: format!("sha256:{}", hex::encode(c.image.as_bytes())),
                    container_id: format!("containerd://{uid}-{name}-{}", c.restarts),
                    log_path: PathBuf::from(format!("/fake/{uid}/{name}/{}.log", c.restarts)),
                    last_state: None,
                })
                .collect(),
        })
    }

    async fn restart_container(&self, spec: &PodSpecLite, container: &str) -> Result<()> {
        let mut g = self.lock();
        g.calls.push(Call::RestartContainer {
            uid: spec.uid.clone(),
            container: container.to_string(),
        });
        let c = g
            .pods
            .get_mut(&spec.uid)
            .and_then(|p| p.containers.get_mut(container))
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: spec.uid.clone(),
                container: container.to_string(),
            })?;
        c.restarts += 1;
        c.state = ContainerState::Running {
            started_at: Utc::now(),
        };
        Ok(())
    }

    async fn start_container(&self, spec: &PodSpecLite, container: &str) -> Result<()> {
        let mut g = self.lock();
        g.calls.push(Call::StartContainer {
            uid: spec.uid.clone(),
            container: container.to_string(),
        });
        let c = spec
            .container(container)
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: spec.uid.clone(),
                container: container.to_string(),
            })?;
        if g.unpullable.contains(&c.image) {
            return Err(Self::pull_error(&c.image));
        }
        let image = c.image.clone();
        let p = g
            .pods
            .get_mut(&spec.uid)
            .ok_or_else(|| RuntimeError::PodNotFound(spec.uid.clone()))?;
        let state = ContainerState::Running {
            started_at: Utc::now(),
        };
        match p.containers.get_mut(container) {
            Some(c) => {
                c.restarts += 1;
                c.state = state;
            }
            None => {
                p.containers.insert(
                    container.to_string(),
                    FakeContainer {
                        image,
                        state,
                        restarts: 0,
                    },
                );
            }
        }
        Ok(())
    }

    async fn stop_container(&self, uid: &str, container: &str, grace: Duration) -> Result<()> {
        let mut g = self.lock();
        g.calls.push(Call::StopContainer {
            uid: uid.to_string(),
            container: container.to_string(),
            grace,
        });
        let c = g
            .pods
            .get_mut(uid)
            .and_then(|p| p.containers.get_mut(container))
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            })?;
        if matches!(c.state, ContainerState::Running { .. }) {
            c.state = ContainerState::Exited {
                code: 137,
                reason: String::new(),
                finished_at: Utc::now(),
                message: None,
            };
        }
        Ok(())
    }

    async fn exec_sync(
        &self,
        uid: &str,
        container: &str,
        cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecOutput> {
        let mut g = self.lock();
        g.calls.push(Call::ExecSync {
            uid: uid.to_string(),
            container: container.to_string(),
            cmd: cmd.to_vec(),
        });
        let running = g
            .pods
            .get(uid)
            .and_then(|p| p.containers.get(container))
            .is_some_and(|c| matches!(c.state, ContainerState::Running { .. }));
        if !running {
            return Err(RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            });
        }
        let code = g
            .exec_codes
            .get(&(uid.to_string(), container.to_string()))
            .copied()
            .unwrap_or(0);
        Ok(ExecOutput {
            exit_code: code,
            stdout: Vec::new(),
            stderr: if code == 0 {
                Vec::new()
            } else {
                format!("exit status {code}").into_bytes()
            },
        })
    }

    async fn stop_pod(&self, uid: &str, grace: Duration) -> Result<()> {
        let mut g = self.lock();
        g.calls.push(Call::StopPod {
            uid: uid.to_string(),
            grace,
        });
        let p = g
            .pods
            .get_mut(uid)
            .ok_or_else(|| RuntimeError::PodNotFound(uid.to_string()))?;
        p.stopped = true;
        for c in p.containers.values_mut() {
            if matches!(c.state, ContainerState::Running { .. }) {
                c.state = ContainerState::Exited {
                    code: 137,
                    reason: String::new(),
                    finished_at: Utc::now(),
                    message: None,
                };
            }
        }
        Ok(())
    }

    async fn remove_pod(&self, uid: &str) -> Result<()> {
        let mut g = self.lock();
        g.calls.push(Call::RemovePod(uid.to_string()));
        g.pods.remove(uid);
        Ok(())
    }

    async fn list_pods(&self) -> Result<Vec<PodSummary>> {
        let mut g = self.lock();
        g.calls.push(Call::ListPods);
        Ok(g.pods
            .iter()
            .map(|(uid, p)| PodSummary {
                uid: uid.clone(),
                namespace: p.spec.namespace.clone(),
                name: p.spec.name.clone(),
                sandbox_id: format!("sandbox-{uid}"),
                state: if p.stopped {
                    SandboxState::NotReady
                } else {
                    SandboxState::Ready
                },
                created_at: Utc::now(),
            })
            .collect())
    }

    async fn runtime_version(&self) -> Result<String> {
        Ok("fake://0.0.0".to_string())
    }

    async fn list_images(&self) -> Result<Vec<super::NodeImage>> {
        let g = self.lock();
        let images: BTreeSet<String> = g
            .pods
            .values()
            .flat_map(|p| p.containers.values().map(|c| c.image.clone()))
            .collect();
        Ok(images
            .into_iter()
            .map(|i| super::NodeImage {
                size_bytes: i.len() as u64 * 1024,
                names: vec![i],
            })
            .collect())
    }

    async fn log_path(&self, uid: &str, container: &str) -> Result<PathBuf> {
        let mut g = self.lock();
        g.calls.push(Call::LogPath {
            uid: uid.to_string(),
            container: container.to_string(),
        });
        let c = g
            .pods
            .get(uid)
            .and_then(|p| p.containers.get(container))
            .ok_or_else(|| RuntimeError::ContainerNotFound {
                uid: uid.to_string(),
                container: container.to_string(),
            })?;
        Ok(PathBuf::from(format!(
            "/fake/{uid}/{container}/{}.log",
            c.restarts
        )))
    }
}
