//! Container probes (startup, readiness, liveness) and lifecycle hooks (postStart, preStop).
//!
//! Each running container instance with a probe or a postStart hook gets its own task (so a slow
//! probe never holds up the pod loop). The task runs postStart, then the startup probe until it
//! passes, then readiness and liveness side by side; it writes its verdicts into [`Prober`]'s
//! shared table, which the pod worker reads on every pass: `started`/`ready` feed the container
//! statuses and the Ready condition, and a `kill` asks the worker to stop the container (the
//! restart policy then decides what comes next). Probe failures become `Unhealthy` events the
//! worker records.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, LifecycleHandler, Pod, Probe,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::runtime::{ContainerState, PodRuntimeStatus, Runtime};

/// What a probe or hook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// Run a command in the container; exit 0 passes.
    Exec(Vec<String>),
    /// HTTP GET; a status in 200..400 passes.
    HttpGet {
        scheme: String,
        host: Option<String>,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// A TCP connection that opens passes.
    TcpSocket { host: Option<String>, port: u16 },
    /// grpc.health.v1 Health/Check answering SERVING passes.
    Grpc { port: u16, service: String },
    /// preStop `sleep`.
    Sleep(Duration),
    /// A handler that cannot run (e.g. a named port the container does not declare).
    Invalid(String),
}

/// One probe of a container, defaults filled in as the API server does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub handler: Handler,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of the probe (liveness/startup kills).
    pub termination_grace: Option<Duration>,
}

/// The probes and hooks of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerProbes {
    pub startup: Option<ProbeSpec>,
    pub readiness: Option<ProbeSpec>,
    pub liveness: Option<ProbeSpec>,
    pub post_start: Option<Handler>,
    pub pre_stop: Option<Handler>,
}

impl ContainerProbes {
    /// Whether the container needs a probe task (else it is started and ready while it runs).
    fn needs_task(&self) -> bool {
        self.startup.is_some()
            || self.readiness.is_some()
            || self.liveness.is_some()
            || self.post_start.is_some()
    }
}

fn secs(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(min) as u64)
}

fn resolve_port(port: &IntOrString, ports: Option<&Vec<ContainerPort>>) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port number {n}")),
        IntOrString::String(s) => {
            if let Ok(n) = s.parse::<u16>() {
                return Ok(n);
            }
            ports
                .into_iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("couldn't find port: {s} in container"))
        }
    }
}

fn http_handler(h: &HTTPGetAction, c: &Container) -> Handler {
    match resolve_port(&h.port, c.ports.as_ref()) {
        Ok(port) => Handler::HttpGet {
            scheme: h.scheme.clone().unwrap_or_else(|| "HTTP".into()),
            host: h.host.clone().filter(|h| !h.is_empty()),
            port,
            path: match h.path.as_deref() {
                None | Some("") => "/".into(),
                Some(p) if p.starts_with('/') => p.into(),
                Some(p) => format!("/{p}"),
            },
            headers: h
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        },
        Err(e) => Handler::Invalid(e),
    }
}

fn probe_handler(p: &Probe, c: &Container) -> Option<Handler> {
    if let Some(e) = &p.exec {
        return Some(Handler::Exec(e.command.clone().unwrap_or_default()));
    }
    if let Some(h) = &p.http_get {
        return Some(http_handler(h, c));
    }
    if let Some(t) = &p.tcp_socket {
        return Some(match resolve_port(&t.port, c.ports.as_ref()) {
            Ok(port) => Handler::TcpSocket {
                host: t.host.clone().filter(|h| !h.is_empty()),
                port,
            },
            Err(e) => Handler::Invalid(e),
        });
    }
    if let Some(g) = &p.grpc {
        return Some(match u16::try_from(g.port).ok().filter(|p| *p > 0) {
            Some(port) => Handler::Grpc {
                port,
                service: g.service.clone().unwrap_or_default(),
            },
            None => Handler::Invalid(format!("invalid port number {}", g.port)),
        });
    }
    None
}

fn probe_spec(p: &Probe, c: &Container) -> Option<ProbeSpec> {
    Some(ProbeSpec {
        handler: probe_handler(p, c)?,
        initial_delay: secs(p.initial_delay_seconds, 0, 0),
        period: secs(p.period_seconds, 10, 1),
        timeout: secs(p.timeout_seconds, 1, 1),
        success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
        failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
        termination_grace: p
            .termination_grace_period_seconds
            .map(|s| Duration::from_secs(s.max(1) as u64)),
    })
}

fn lifecycle_handler(h: &LifecycleHandler, c: &Container) -> Option<Handler> {
    if let Some(e) = &h.exec {
        return Some(Handler::Exec(e.command.clone().unwrap_or_default()));
    }
    if let Some(g) = &h.http_get {
        return Some(http_handler(g, c));
    }
    if let Some(s) = &h.sleep {
        return Some(Handler::Sleep(Duration::from_secs(s.seconds.max(0) as u64)));
    }
    None
}

/// The probes and hooks of container `c`.
pub fn container_probes(c: &Container) -> ContainerProbes {
    let lc = c.lifecycle.as_ref();
    ContainerProbes {
        startup: c.startup_probe.as_ref().and_then(|p| probe_spec(p, c)),
        readiness: c.readiness_probe.as_ref().and_then(|p| probe_spec(p, c)),
        liveness: c.liveness_probe.as_ref().and_then(|p| probe_spec(p, c)),
        post_start: lc
            .and_then(|l| l.post_start.as_ref())
            .and_then(|h| lifecycle_handler(h, c)),
        pre_stop: lc
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| lifecycle_handler(h, c)),
    }
}

/// Does any container of `pod` (init, app or ephemeral) have a startup, readiness or liveness
/// probe or a postStart hook (their results reach the status on the next sync)?
pub fn has_probes(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let eph = spec.ephemeral_containers.iter().flatten().any(|c| {
        c.startup_probe.is_some()
            || c.readiness_probe.is_some()
            || c.liveness_probe.is_some()
            || c.lifecycle.as_ref().is_some_and(|l| l.post_start.is_some())
    });
    eph || spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .any(|c| {
            c.startup_probe.is_some()
                || c.readiness_probe.is_some()
                || c.liveness_probe.is_some()
                || c.lifecycle.as_ref().is_some_and(|l| l.post_start.is_some())
        })
}

/// The init (sidecar) or app container of `pod` named `name`.
pub fn k8s_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == name)
}

/// What one run of a handler gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

fn join_host(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn http_get(
    scheme: &str,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Outcome {
    let addr = join_host(host, port);
    let url = format!("{}://{addr}{path}", scheme.to_ascii_lowercase());
    if !scheme.eq_ignore_ascii_case("HTTP") {
        return Outcome::Failure(format!(
            "Get \"{url}\": scheme {scheme} is not supported by this agent"
        ));
    }
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        let mut req = format!("GET {path} HTTP/1.1\r\n");
        if !has("host") {
            req.push_str(&format!("Host: {addr}\r\n"));
        }
        if !has("user-agent") {
            req.push_str("User-Agent: kube-probe/1.30\r\n");
        }
        if !has("accept") {
            req.push_str("Accept: */*\r\n");
        }
        for (k, v) in headers {
            if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
                return Err(format!("invalid header {k:?}"));
            }
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("Connection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // Only the status line matters; read until it is complete.
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        while !buf.contains(&b'\n') && buf.len() < 4096 {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&buf);
        let code = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| "malformed HTTP response".to_string())?;
        Ok::<u16, String>(code)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Outcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => Outcome::Failure(format!("Get \"{url}\": {e}")),
        Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
        Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
    }
}

/// grpc.health.v1 messages (hand-written: two fields).
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

async fn grpc_check(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = join_host(host, port);
    let attempt = async {
        let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout)
            .timeout(timeout);
        let ch = ep
            .connect()
            .await
            .map_err(|e| format!("failed to connect service {addr:?} within {timeout:?}: {e}"))?;
        let mut g = tonic::client::Grpc::new(ch);
        g.ready().await.map_err(|e| e.to_string())?;
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let r = g
            .unary(
                tonic::Request::new(HealthCheckRequest {
                    service: service.to_string(),
                }),
                http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check"),
                codec,
            )
            .await
            .map_err(|s| format!("rpc error: code = {:?} desc = {}", s.code(), s.message()))?;
        Ok::<i32, String>(r.into_inner().status)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {timeout:?}"
        )),
        Ok(Err(e)) => Outcome::Failure(e),
        Ok(Ok(1)) => Outcome::Success,
        Ok(Ok(s)) => {
            let name = match s {
                0 => "UNKNOWN",
                2 => "NOT_SERVING",
                3 => "SERVICE_UNKNOWN",
                _ => "UNKNOWN",
            };
            Outcome::Failure(format!("service unhealthy (responded with \"{name}\")"))
        }
    }
}

/// Where a handler runs.
#[derive(Clone)]
pub struct Target {
    pub runtime: Arc<dyn Runtime>,
    pub uid: String,
    pub container: String,
    pub pod_ip: Option<String>,
}

/// Runs `handler` once against `target`, giving up after `timeout`.
pub async fn run_handler(handler: &Handler, target: &Target, timeout: Duration) -> Outcome {
    let host = |h: &Option<String>| h.clone().or_else(|| target.pod_ip.clone());
    match handler {
        Handler::Exec(cmd) => {
            match target
                .runtime
                .exec_sync(&target.uid, &target.container, cmd, timeout)
                .await
            {
                Ok(o) if o.exit_code == 0 => Outcome::Success,
                Ok(o) => {
                    let mut out = String::from_utf8_lossy(&o.stdout).into_owned();
                    out.push_str(&String::from_utf8_lossy(&o.stderr));
                    let out = out.trim();
                    Outcome::Failure(if out.is_empty() {
                        format!("command {cmd:?} exited with {}", o.exit_code)
                    } else {
                        out.to_string()
                    })
                }
                Err(e) => Outcome::Failure(e.to_string()),
            }
        }
        Handler::HttpGet {
            scheme,
            host: h,
            port,
            path,
            headers,
        } => match host(h) {
            Some(host) => http_get(scheme, &host, *port, path, headers, timeout).await,
            None => Outcome::Failure("the pod has no IP yet".into()),
        },
        Handler::TcpSocket { host: h, port } => match host(h) {
            Some(host) => {
                let addr = join_host(&host, *port);
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
                    Ok(Ok(_)) => Outcome::Success,
                    Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: {e}")),
                    Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
                }
            }
            None => Outcome::Failure("the pod has no IP yet".into()),
        },
        Handler::Grpc { port, service } => match target.pod_ip.clone() {
            Some(host) => grpc_check(&host, *port, service, timeout).await,
            None => Outcome::Failure("the pod has no IP yet".into()),
        },
        Handler::Sleep(d) => {
            tokio::time::sleep((*d).min(timeout)).await;
            Outcome::Success
        }
        Handler::Invalid(why) => Outcome::Failure(why.clone()),
    }
}

/// The worker's view of one container instance's probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// postStart done and the startup probe (if any) passed.
    pub started: bool,
    /// Started and the readiness probe (if any) passes.
    pub ready: bool,
    /// The container must be stopped (failed liveness/startup probe or postStart hook).
    pub kill: Option<Kill>,
}

/// A request to stop a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// Message of the `Killing` event.
    pub message: String,
    /// Grace period override (the probe's `terminationGracePeriodSeconds`).
    pub grace: Option<Duration>,
}

/// An event a probe task wants recorded on the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    pub uid: String,
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Default)]
struct Shared {
    /// container id → state.
    states: HashMap<String, ProbeState>,
    events: Vec<ProbeEvent>,
}

type SharedRef = Arc<Mutex<Shared>>;

fn with<R>(shared: &SharedRef, f: impl FnOnce(&mut Shared) -> R) -> R {
    f(&mut shared.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Runs the probe tasks of the running containers and keeps their verdicts.
pub struct Prober {
    runtime: Arc<dyn Runtime>,
    shared: SharedRef,
    /// pod uid → container id → task (none for a container without probes or hooks).
    tasks: HashMap<String, HashMap<String, Option<JoinHandle<()>>>>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        for t in self.tasks.values().flat_map(|m| m.values()).flatten() {
            t.abort();
        }
    }
}

impl Prober {
    pub fn new(runtime: Arc<dyn Runtime>) -> Prober {
        Prober {
            runtime,
            shared: Arc::default(),
            tasks: HashMap::new(),
        }
    }

    /// Start tasks for newly running containers of the pod, end those of containers that stopped.
    pub fn sync(&mut self, pod: &Pod, rs: &PodRuntimeStatus) {
        let tasks = self.tasks.entry(rs.uid.clone()).or_default();
        let running: BTreeMap<&str, &str> = rs
            .containers
            .iter()
            .filter(|c| matches!(c.state, ContainerState::Running { .. }))
            .map(|c| (c.container_id.as_str(), c.name.as_str()))
            .collect();
        let shared = &self.shared;
        tasks.retain(|id, t| {
            let keep = running.contains_key(id.as_str());
            if !keep {
                if let Some(t) = t {
                    t.abort();
                }
                with(shared, |s| s.states.remove(id));
            }
            keep
        });
        for (id, name) in running {
            if tasks.contains_key(id) {
                continue;
            }
            let probes = k8s_container(pod, name)
                .map(container_probes)
                .unwrap_or_default();
            if !probes.needs_task() {
                with(&self.shared, |s| {
                    s.states.insert(
                        id.to_string(),
                        ProbeState {
                            started: true,
                            ready: true,
                            kill: None,
                        },
                    )
                });
                tasks.insert(id.to_string(), None);
                continue;
            }
            with(&self.shared, |s| {
                s.states.insert(id.to_string(), ProbeState::default())
            });
            let target = Target {
                runtime: self.runtime.clone(),
                uid: rs.uid.clone(),
                container: name.to_string(),
                pod_ip: rs.ip.clone(),
            };
            let task = tokio::spawn(container_task(
                target,
                id.to_string(),
                probes,
                self.shared.clone(),
            ));
            tasks.insert(id.to_string(), Some(task));
        }
    }

    /// The probe state of each running container of the pod (by name); kill requests are handed
    /// out once.
    pub fn view(&self, rs: &PodRuntimeStatus) -> BTreeMap<String, ProbeState> {
        with(&self.shared, |s| {
            rs.containers
                .iter()
                .filter(|c| matches!(c.state, ContainerState::Running { .. }))
                .filter_map(|c| {
                    let st = s.states.get_mut(&c.container_id)?;
                    let out = st.clone();
                    st.kill = None;
                    Some((c.name.clone(), out))
                })
                .collect()
        })
    }

    /// The events the tasks produced for pod `uid` since the last call.
    pub fn take_events(&self, uid: &str) -> Vec<ProbeEvent> {
        with(&self.shared, |s| {
            let (mine, rest) = std::mem::take(&mut s.events)
                .into_iter()
                .partition(|e| e.uid == uid);
            s.events = rest;
            mine
        })
    }

    /// The pod is gone: end its tasks.
    pub fn forget(&mut self, uid: &str) {
        if let Some(tasks) = self.tasks.remove(uid) {
            with(&self.shared, |s| {
                for (id, t) in tasks {
                    if let Some(t) = t {
                        t.abort();
                    }
                    s.states.remove(&id);
                }
            });
        }
    }
}

fn update(shared: &SharedRef, id: &str, f: impl FnOnce(&mut ProbeState)) {
    with(shared, |s| {
        if let Some(st) = s.states.get_mut(id) {
            f(st)
        }
    })
}

fn event(
    shared: &SharedRef,
    target: &Target,
    warning: bool,
    reason: &'static str,
    message: String,
) {
    with(shared, |s| {
        s.events.push(ProbeEvent {
            uid: target.uid.clone(),
            warning,
            reason,
            message,
        })
    });
}

/// postStart, then startup, then readiness and liveness, for one container instance.
async fn container_task(target: Target, id: String, probes: ContainerProbes, shared: SharedRef) {
    let name = target.container.clone();
    if let Some(h) = &probes.post_start {
        // The hook has no timeout of its own; the kubelet bounds it by the grace period.
        if let Outcome::Failure(msg) = run_handler(h, &target, Duration::from_secs(30)).await {
            let what = match h {
                Handler::Exec(cmd) => format!(
                    "Exec lifecycle hook ({cmd:?}) for Container {name:?} failed - error: {msg}"
                ),
                _ => format!("HTTP lifecycle hook for Container {name:?} failed - error: {msg}"),
            };
            event(&shared, &target, true, "FailedPostStartHook", what);
            update(&shared, &id, |s| {
                s.kill = Some(Kill {
                    message: "FailedPostStartHook".into(),
                    grace: None,
                })
            });
            return;
        }
    }
    if let Some(p) = &probes.startup {
        tokio::time::sleep(p.initial_delay).await;
        let mut failures = 0;
        loop {
            match run_handler(&p.handler, &target, p.timeout).await {
                Outcome::Success => break,
                Outcome::Failure(msg) => {
                    failures += 1;
                    event(
                        &shared,
                        &target,
                        true,
                        "Unhealthy",
                        format!("Startup probe failed: {msg}"),
                    );
                    if failures >= p.failure_threshold {
                        update(&shared, &id, |s| {
                            s.kill = Some(Kill {
                                message: format!(
                                    "Container {name} failed startup probe, will be restarted"
                                ),
                                grace: p.termination_grace,
                            })
                        });
                        return;
                    }
                }
            }
            tokio::time::sleep(p.period).await;
        }
    }
    update(&shared, &id, |s| {
        s.started = true;
        s.ready = probes.readiness.is_none();
    });
    let readiness = async {
        let Some(p) = &probes.readiness else {
            return std::future::pending::<()>().await;
        };
        tokio::time::sleep(p.initial_delay).await;
        let (mut ok, mut bad) = (0u32, 0u32);
        loop {
            match run_handler(&p.handler, &target, p.timeout).await {
                Outcome::Success => {
                    (ok, bad) = (ok + 1, 0);
                    if ok >= p.success_threshold {
                        update(&shared, &id, |s| s.ready = true);
                    }
                }
                Outcome::Failure(msg) => {
                    (ok, bad) = (0, bad + 1);
                    event(
                        &shared,
                        &target,
                        true,
                        "Unhealthy",
                        format!("Readiness probe failed: {msg}"),
                    );
                    if bad >= p.failure_threshold {
                        update(&shared, &id, |s| s.ready = false);
                    }
                }
            }
            tokio::time::sleep(p.period).await;
        }
    };
    let liveness = async {
        let Some(p) = &probes.liveness else {
            return std::future::pending::<()>().await;
        };
        tokio::time::sleep(p.initial_delay).await;
        let mut bad = 0u32;
        loop {
            match run_handler(&p.handler, &target, p.timeout).await {
                Outcome::Success => bad = 0,
                Outcome::Failure(msg) => {
                    bad += 1;
                    event(
                        &shared,
                        &target,
                        true,
                        "Unhealthy",
                        format!("Liveness probe failed: {msg}"),
                    );
                    if bad >= p.failure_threshold {
                        update(&shared, &id, |s| {
                            s.ready = false;
                            s.kill = Some(Kill {
                                message: format!(
                                    "Container {name} failed liveness probe, will be restarted"
                                ),
                                grace: p.termination_grace,
                            })
                        });
                        return;
                    }
                }
            }
            tokio::time::sleep(p.period).await;
        }
    };
    tokio::select! {
        _ = readiness => {}
        _ = liveness => {}
    }
}

/// Runs the preStop hooks of the pod's running containers side by side, each bounded by `grace`;
/// how many there were.
pub async fn run_pre_stop(
    runtime: Arc<dyn Runtime>,
    pod: &Pod,
    rs: &PodRuntimeStatus,
    grace: Duration,
) -> usize {
    let hooks = rs
        .containers
        .iter()
        .filter(|c| matches!(c.state, ContainerState::Running { .. }))
        .filter_map(|c| {
            let h = k8s_container(pod, &c.name)
                .map(container_probes)?
                .pre_stop?;
            Some((c.name.clone(), h))
        })
        .map(|(name, h)| {
            let target = Target {
                runtime: runtime.clone(),
                uid: rs.uid.clone(),
                container: name.clone(),
                pod_ip: rs.ip.clone(),
            };
            async move {
                match tokio::time::timeout(grace, run_handler(&h, &target, grace)).await {
                    Ok(Outcome::Success) => {}
                    Ok(Outcome::Failure(msg)) => {
                        tracing::info!(container = %name, error = %msg, "preStop hook failed")
                    }
                    Err(_) => {
                        tracing::info!(container = %name, "preStop hook outlived the grace period")
                    }
                }
            }
        });
    futures::future::join_all(hooks).await.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: serde_json::Value) -> Container {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn probes_get_api_defaults_and_named_ports() {
        let c = container(json!({
            "name": "c", "image": "x",
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": "http", "path": "healthz",
                "httpHeaders": [{"name": "X-A", "value": "b"}]}},
            "livenessProbe": {"tcpSocket": {"port": "nope"}, "periodSeconds": 2,
                "failureThreshold": 1, "terminationGracePeriodSeconds": 3},
            "startupProbe": {"exec": {"command": ["true"]}},
            "lifecycle": {"preStop": {"sleep": {"seconds": 4}}, "postStart": {"exec": {"command": ["sh"]}}},
        }));
        let p = container_probes(&c);
        let r = p.readiness.unwrap();
        assert_eq!(
            r.handler,
            Handler::HttpGet {
                scheme: "HTTP".into(),
                host: None,
                port: 8080,
                path: "/healthz".into(),
                headers: vec![("X-A".into(), "b".into())],
            }
        );
        assert_eq!(
            (
                r.period,
                r.timeout,
                r.success_threshold,
                r.failure_threshold
            ),
            (Duration::from_secs(10), Duration::from_secs(1), 1, 3)
        );
        let l = p.liveness.unwrap();
        assert_eq!(
            l.handler,
            Handler::Invalid("couldn't find port: nope in container".into())
        );
        assert_eq!(l.termination_grace, Some(Duration::from_secs(3)));
        assert_eq!(
            p.startup.unwrap().handler,
            Handler::Exec(vec!["true".into()])
        );
        assert_eq!(p.pre_stop, Some(Handler::Sleep(Duration::from_secs(4))));
        assert_eq!(p.post_start, Some(Handler::Exec(vec!["sh".into()])));
    }

    async fn serve_once(status: u16) -> (u16, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let t = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, t)
    }

    fn target() -> Target {
        Target {
            runtime: Arc::new(crate::runtime::fake::FakeRuntime::new()),
            uid: "u".into(),
            container: "c".into(),
            pod_ip: Some("127.0.0.1".into()),
        }
    }

    #[tokio::test]
    async fn http_get_passes_on_2xx_3xx_and_sends_headers() {
        let (port, t) = serve_once(302).await;
        let h = Handler::HttpGet {
            scheme: "HTTP".into(),
            host: None,
            port,
            path: "/ready".into(),
            headers: vec![("X-Probe".into(), "yes".into())],
        };
        assert_eq!(
            run_handler(&h, &target(), Duration::from_secs(2)).await,
            Outcome::Success
        );
        let req = t.await.unwrap();
        assert!(req.starts_with("GET /ready HTTP/1.1\r\n"), "{req}");
        assert!(
            req.contains("X-Probe: yes\r\n") && req.contains("User-Agent: kube-probe/"),
            "{req}"
        );

        let (port, _t) = serve_once(500).await;
        let h = Handler::HttpGet {
            scheme: "HTTP".into(),
            host: None,
            port,
            path: "/".into(),
            headers: vec![],
        };
        assert_eq!(
            run_handler(&h, &target(), Duration::from_secs(2)).await,
            Outcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
    }

    #[tokio::test]
    async fn tcp_socket_fails_on_a_closed_port() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let h = Handler::TcpSocket { host: None, port };
        assert_eq!(
            run_handler(&h, &target(), Duration::from_secs(2)).await,
            Outcome::Success
        );
        drop(l);
        let Outcome::Failure(msg) = run_handler(&h, &target(), Duration::from_secs(2)).await else {
            panic!("a closed port passed");
        };
        assert!(
            msg.starts_with(&format!("dial tcp 127.0.0.1:{port}")),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn grpc_fails_without_a_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let h = Handler::Grpc {
            port,
            service: String::new(),
        };
        assert!(matches!(
            run_handler(&h, &target(), Duration::from_secs(2)).await,
            Outcome::Failure(_)
        ));
    }
}
