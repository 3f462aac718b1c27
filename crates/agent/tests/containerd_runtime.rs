//! Integration tests of the containerd runtime layer. They need root, containerd, runc, CNI plugins and a static
//! busybox (see DESIGN.md "Known machine facts"); without them they FAIL with a message saying what is missing.
//! Each test runs its own ManagedContainerd in a temp dir (own bridge and pod CIDR) and cleans up after itself,
//! also when it fails. Tests are serialized.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use daas_agent::runtime::pullsecrets::PullKeyring;
use daas_agent::runtime::{
    image::OciImageBuilder, mounts_under, parse_cri_log_line, read_messages, unmount_all_under,
    ContainerSpecLite, ContainerState, ContainerdRuntime, CriLogReader, ManagedContainerd,
    ManagedContainerdConfig, PodRuntimeStatus, PodSpecLite, PullPolicy, ResourceLimits,
    RestartPolicy, Runtime, RuntimeError, SandboxState, BUSYBOX_IMAGE, PAUSE_IMAGE,
};
use futures::future::LocalBoxFuture;
use futures::FutureExt;

static SERIAL: Mutex<()> = Mutex::new(());

fn require_environment() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "containerd runtime tests must run as root (CI runs as root); euid = {euid}"
    );
    let mut missing = Vec::new();
    for p in [
        "/usr/bin/containerd",
        "/usr/bin/ctr",
        "/bin/busybox",
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/usr/lib/cni/loopback",
        "/usr/lib/cni/portmap",
        "/usr/bin/docker-registry",
        "/usr/bin/skopeo",
    ] {
        if !Path::new(p).exists() {
            missing.push(p.to_string());
        }
    }
    let runc = std::process::Command::new("runc").arg("--version").output();
    if !runc.map(|o| o.status.success()).unwrap_or(false) {
        missing.push("runc (in PATH)".into());
    }
    assert!(
        missing.is_empty(),
        "containerd runtime tests need {missing:?}: apt-get install containerd runc containernetworking-plugins \
         busybox-static docker-registry skopeo"
    );
}

struct Fixture {
    dir: tempfile::TempDir,
    config: ManagedContainerdConfig,
    mc: Option<ManagedContainerd>,
    rt: ContainerdRuntime,
}

impl Fixture {
    async fn start(n: u8, customize: impl FnOnce(&Path, &mut ManagedContainerdConfig)) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("daas-agent-rt")
            .tempdir()
            .expect("tempdir");
        let mut config = ManagedContainerdConfig::new(dir.path().join("agent"));
        config.pod_cidr = Some(format!("10.242.{n}.0/24"));
        config.bridge_name = format!("daast{n}");
        customize(dir.path(), &mut config);
        let t = Instant::now();
        let mc = ManagedContainerd::start(config.clone())
            .await
            .expect("start managed containerd");
        eprintln!("managed containerd ready in {:?}", t.elapsed());
        let rt = mc.runtime().await.expect("connect CRI");
        Fixture {
            dir,
            config,
            mc: Some(mc),
            rt,
        }
    }

    async fn restart_hard(&mut self) {
        if let Some(mut mc) = self.mc.take() {
            mc.kill_hard();
        }
        let mc = ManagedContainerd::start(self.config.clone())
            .await
            .expect("restart managed containerd");
        self.rt = mc.runtime().await.expect("reconnect CRI");
        self.mc = Some(mc);
    }

    async fn cleanup(mut self) {
        if let Ok(pods) = self.rt.list_pods().await {
            for p in pods {
                if let Err(e) = self.rt.remove_pod(&p.uid).await {
                    eprintln!("cleanup: remove_pod {}: {e}", p.uid);
                }
            }
        }
        if let Some(mut mc) = self.mc.take() {
            mc.shutdown().await;
        }
        kill_our_shims(&self.config.socket_path());
        let root = self
            .dir
            .path()
            .canonicalize()
            .unwrap_or_else(|_| self.dir.path().to_path_buf());
        unmount_all_under(&root);
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.config.bridge_name])
            .output();
        let left = mounts_under(&root);
        assert!(
            left.is_empty(),
            "mounts left under {}: {left:?}",
            root.display()
        );
    }
}

/// Kills containerd-shim processes started for our socket (left only if a test failed before removing pods).
fn kill_our_shims(socket: &Path) {
    let sock = socket.to_string_lossy().into_owned();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("containerd-shim") && cmd.contains(&sock) {
            // SAFETY: kill(2) on a shim of our own containerd.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Runs `body` with a fresh fixture, cleans up whatever happens, re-raises the body's panic.
fn with_fixture<F>(n: u8, body: F)
where
    F: for<'a> FnOnce(&'a mut Fixture) -> LocalBoxFuture<'a, ()>,
{
    with_fixture_cfg(n, |_, _| {}, body)
}

fn with_fixture_cfg<F>(n: u8, customize: impl FnOnce(&Path, &mut ManagedContainerdConfig), body: F)
where
    F: for<'a> FnOnce(&'a mut Fixture) -> LocalBoxFuture<'a, ()>,
{
    require_environment();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _ = tracing_subscriber::fmt()
        .with_env_filter("daas_agent=debug")
        .with_test_writer()
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let t = Instant::now();
        let mut fx = Fixture::start(n, customize).await;
        let result = std::panic::AssertUnwindSafe(body(&mut fx))
            .catch_unwind()
            .await;
        fx.cleanup().await;
        eprintln!("test body + cleanup took {:?}", t.elapsed());
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    });
}

fn busybox(name: &str, command: &[&str], args: &[&str]) -> ContainerSpecLite {
    ContainerSpecLite {
        name: name.into(),
        image: BUSYBOX_IMAGE.into(),
        pull_policy: PullPolicy::IfNotPresent,
        command: command.iter().map(|s| s.to_string()).collect(),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn pod(
    uid: &str,
    name: &str,
    restart: RestartPolicy,
    containers: Vec<ContainerSpecLite>,
) -> PodSpecLite {
    PodSpecLite {
        uid: uid.into(),
        namespace: "default".into(),
        name: name.into(),
        containers,
        restart_policy: restart,
        ..Default::default()
    }
}

async fn wait_for(
    rt: &ContainerdRuntime,
    uid: &str,
    what: &str,
    pred: impl Fn(&PodRuntimeStatus) -> bool,
) -> PodRuntimeStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = rt.pod_status(uid).await.expect("pod_status");
        if pred(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last status {st:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn exited(st: &PodRuntimeStatus, name: &str) -> Option<(i32, String)> {
    st.containers
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| match &c.state {
            ContainerState::Exited { code, reason, .. } => Some((*code, reason.clone())),
            _ => None,
        })
}

fn running(st: &PodRuntimeStatus, name: &str) -> bool {
    st.containers
        .iter()
        .any(|c| c.name == name && matches!(c.state, ContainerState::Running { .. }))
}

fn cgroup_file(uid: &str, container_id: &str, controller: &str, file: &str) -> PathBuf {
    let id = container_id.trim_start_matches("containerd://");
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("daas")
        .join(format!("pod{uid}"))
        .join(id)
        .join(file)
}

#[test]
fn images_and_pod_to_completion_with_logs_env_args_restart() {
    with_fixture(1, |fx| {
        Box::pin(async move {
            let rt = &fx.rt;
            // Local images are present and never pulled for IfNotPresent/Never ("localhost/..." has no registry).
            for img in [PAUSE_IMAGE, BUSYBOX_IMAGE] {
                let r = rt
                    .ensure_image(img, PullPolicy::Never, &PullKeyring::default())
                    .await
                    .expect("local image present");
                assert!(r.id.starts_with("sha256:"), "{r:?}");
                rt.ensure_image(img, PullPolicy::IfNotPresent, &PullKeyring::default())
                    .await
                    .expect("present, no pull");
            }
            match rt
                .ensure_image(
                    "localhost/k3s-daas/absent:1",
                    PullPolicy::Never,
                    &PullKeyring::default(),
                )
                .await
            {
                Err(RuntimeError::ImageNotPresent(_)) => {}
                other => panic!("expected ImageNotPresent, got {other:?}"),
            }

            let mut hello = busybox(
                "hello",
                &["sh", "-c"],
                &["echo hello-$GREETING from $(pwd); echo oops >&2"],
            );
            hello.env = vec![daas_agent::runtime::EnvVarLite::literal(
                "GREETING", "world",
            )];
            hello.working_dir = Some("/tmp".into());
            let fail = busybox("fail", &["sh", "-c", "echo attempt; exit 3"], &[]);
            let spec = pod(
                "uid-hello-1",
                "hello",
                RestartPolicy::Never,
                vec![hello, fail],
            );
            let handle = rt.run_pod(&spec).await.expect("run_pod");
            assert_eq!(handle.uid, "uid-hello-1");

            let st = wait_for(rt, &spec.uid, "both containers exited", |s| {
                exited(s, "hello").is_some() && exited(s, "fail").is_some()
            })
            .await;
            assert_eq!(exited(&st, "hello"), Some((0, "Completed".to_string())));
            assert_eq!(exited(&st, "fail"), Some((3, "Error".to_string())));
            let c = st
                .containers
                .iter()
                .find(|c| c.name == "hello")
                .expect("hello status");
            assert_eq!(c.image, BUSYBOX_IMAGE);
            assert!(c.image_id.contains("sha256:"), "{c:?}");
            assert!(c.container_id.starts_with("containerd://"), "{c:?}");
            assert_eq!(c.restart_count, 0);

            let log = rt.log_path(&spec.uid, "hello").await.expect("log_path");
            assert!(log.starts_with(fx.config.log_root()), "{}", log.display());
            let text = std::fs::read_to_string(&log).expect("read log");
            let first = text
                .lines()
                .find(|l| l.contains(" stdout "))
                .expect("stdout line");
            assert!(first.contains("hello-world from /tmp"), "raw log: {text}");
            let parsed = parse_cri_log_line(first).expect("CRI log line");
            assert_eq!(parsed.message, "hello-world from /tmp");
            let msgs = read_messages(&log).await.expect("messages");
            assert!(
                msgs.iter()
                    .any(|m| m.message == "oops"
                        && m.stream == daas_agent::runtime::LogStream::Stderr)
            );

            // The caller applies restartPolicy; restart_container creates attempt 1 with its own log file.
            rt.restart_container(&spec, "fail")
                .await
                .expect("restart_container");
            let st = wait_for(rt, &spec.uid, "restarted container exited", |s| {
                s.containers
                    .iter()
                    .any(|c| c.name == "fail" && c.restart_count == 1)
                    && exited(s, "fail").is_some()
            })
            .await;
            assert_eq!(exited(&st, "fail"), Some((3, "Error".to_string())));
            let log1 = rt
                .log_path(&spec.uid, "fail")
                .await
                .expect("log path attempt 1");
            assert!(log1.ends_with("fail/1.log"), "{}", log1.display());

            rt.stop_pod(&spec.uid, Duration::from_secs(1))
                .await
                .expect("stop_pod");
            rt.remove_pod(&spec.uid).await.expect("remove_pod");
            assert!(rt.list_pods().await.expect("list").is_empty());
            assert!(!log.exists(), "logs removed with the pod");
        })
    });
}

#[test]
fn long_running_pod_gets_ip_limits_follows_logs_and_is_removed() {
    with_fixture(2, |fx| {
        Box::pin(async move {
            let rt = &fx.rt;
            let mut ticker = busybox(
                "ticker",
                &[
                    "sh",
                    "-c",
                    "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done",
                ],
                &[],
            );
            ticker.limits = ResourceLimits {
                cpu_request_millis: Some(250),
                cpu_millis: Some(250),
                memory_bytes: Some(64 << 20),
            };
            let spec = pod(
                "uid-ticker-2",
                "ticker",
                RestartPolicy::Always,
                vec![ticker],
            );
            rt.run_pod(&spec).await.expect("run_pod");
            // run_pod is idempotent for a pod that is already running.
            rt.run_pod(&spec).await.expect("run_pod again");
            let st = wait_for(rt, &spec.uid, "running", |s| running(s, "ticker")).await;
            assert_eq!(st.sandbox_state, SandboxState::Ready);
            assert_eq!(st.containers.len(), 1);
            let ip = st.ip.clone().expect("pod ip");
            assert!(
                ip.starts_with("10.242.2."),
                "pod ip {ip} not in 10.242.2.0/24"
            );

            let cid = &st.containers[0].container_id;
            let mem = cgroup_file(&spec.uid, cid, "memory", "memory.limit_in_bytes");
            let mem_v2 = cgroup_file(&spec.uid, cid, "unified", "memory.max");
            let limit = std::fs::read_to_string(&mem)
                .or_else(|_| std::fs::read_to_string(&mem_v2))
                .unwrap_or_else(|e| panic!("read {} / {}: {e}", mem.display(), mem_v2.display()));
            assert_eq!(limit.trim(), (64u64 << 20).to_string());
            let quota = cgroup_file(&spec.uid, cid, "cpu", "cpu.cfs_quota_us");
            if let Ok(q) = std::fs::read_to_string(&quota) {
                assert_eq!(q.trim(), "25000");
            }

            let log = rt.log_path(&spec.uid, "ticker").await.expect("log_path");
            let mut reader = CriLogReader::open(&log, true)
                .await
                .expect("open log")
                .with_poll_interval(Duration::from_millis(50));
            for i in 0..3 {
                let m = tokio::time::timeout(Duration::from_secs(10), reader.next_message())
                    .await
                    .expect("log line in time")
                    .expect("read")
                    .expect("line");
                assert_eq!(m.message, format!("tick {i}"));
            }

            let pods = rt.list_pods().await.expect("list_pods");
            assert!(pods
                .iter()
                .any(|p| p.uid == spec.uid && p.name == "ticker" && p.namespace == "default"));

            let t = Instant::now();
            rt.stop_pod(&spec.uid, Duration::from_secs(2))
                .await
                .expect("stop_pod");
            eprintln!("stop_pod took {:?}", t.elapsed());
            let st = rt.pod_status(&spec.uid).await.expect("status after stop");
            assert_eq!(st.sandbox_state, SandboxState::NotReady);
            assert!(exited(&st, "ticker").is_some(), "{st:#?}");
            rt.remove_pod(&spec.uid).await.expect("remove_pod");
            assert!(
                rt.list_pods().await.expect("list").is_empty(),
                "no sandboxes left"
            );
            assert!(matches!(
                rt.pod_status(&spec.uid).await,
                Err(RuntimeError::PodNotFound(_))
            ));
            assert!(!Path::new("/sys/fs/cgroup/memory/daas")
                .join(format!("pod{}", spec.uid))
                .exists());
            let netns: Vec<_> = mounts_under(&fx.config.data_dir)
                .into_iter()
                .filter(|m| m.to_string_lossy().contains("netns"))
                .collect();
            assert!(netns.is_empty(), "netns left: {netns:?}");
        })
    });
}

#[test]
fn pods_survive_containerd_crash_and_are_readopted() {
    with_fixture(3, |fx| {
        Box::pin(async move {
            let spec = pod(
                "uid-survivor-3",
                "survivor",
                RestartPolicy::Always,
                vec![busybox("sleeper", &["sleep", "3600"], &[])],
            );
            fx.rt.run_pod(&spec).await.expect("run_pod");
            let before = wait_for(&fx.rt, &spec.uid, "running", |s| running(s, "sleeper")).await;
            let pid = fx
                .mc
                .as_ref()
                .and_then(|m| m.pid())
                .expect("containerd pid");

            fx.restart_hard().await;
            let new_pid = fx
                .mc
                .as_ref()
                .and_then(|m| m.pid())
                .expect("containerd pid");
            assert_ne!(pid, new_pid);

            let pods = fx.rt.list_pods().await.expect("list_pods after restart");
            let p = pods
                .iter()
                .find(|p| p.uid == spec.uid)
                .expect("pod re-adopted after containerd restart");
            assert_eq!(
                (p.namespace.as_str(), p.name.as_str(), p.state),
                ("default", "survivor", SandboxState::Ready)
            );
            let after = fx
                .rt
                .pod_status(&spec.uid)
                .await
                .expect("pod_status after restart");
            assert!(running(&after, "sleeper"), "{after:#?}");
            assert_eq!(
                after.containers[0].container_id,
                before.containers[0].container_id
            );
            assert_eq!(after.ip, before.ip);
        })
    });
}

/// A docker-registry (distribution) on 127.0.0.1:<free port>, killed on drop.
struct Registry {
    child: std::process::Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        Self::start_with_auth(dir, None)
    }

    /// With `basic`: htpasswd (bcrypt) basic auth for that user and password.
    fn start_with_auth(dir: &Path, basic: Option<(&str, &str)>) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.join("registry-data");
        std::fs::create_dir_all(&storage).expect("registry dir");
        let cfg = dir.join("registry.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        if let Some((user, password)) = basic {
            let hash = bcrypt::hash(password, 5).expect("bcrypt");
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&cfg, yaml).expect("registry config");
        let child = std::process::Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn airgap_archives_imported_and_registry_pull() {
    require_environment();
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(tmp.path());
    let reg = registry.addr.clone();
    let reg_cfg = reg.clone();
    with_fixture_cfg(
        4,
        |dir, cfg| {
            let airgap = dir.join("airgap");
            std::fs::create_dir_all(&airgap).expect("airgap dir");
            OciImageBuilder::new("localhost/airgap/hello:1")
                .file("hello.txt", 0o644, b"hi".to_vec())
                .cmd(&["/nothing"])
                .write_to(&airgap.join("hello.tar"))
                .expect("write air-gap archive");
            std::fs::write(airgap.join("README"), "not an image").expect("write");
            cfg.images_dir = Some(airgap);
            cfg.insecure_registries = vec![reg_cfg];
        },
        |fx| {
            Box::pin(async move {
                let rt = &fx.rt;
                let hello = rt
                    .ensure_image(
                        "localhost/airgap/hello:1",
                        PullPolicy::Never,
                        &PullKeyring::default(),
                    )
                    .await
                    .expect("air-gap image");
                assert!(hello.id.starts_with("sha256:"));

                // Push the locally built busybox archive into the registry, then pull it through CRI.
                let archive = fx.config.data_dir.join("images").join("busybox.tar");
                let remote = format!("{reg}/daas/busybox:pulled");
                let out = std::process::Command::new("skopeo")
                    .args(["copy", "--dest-tls-verify=false"])
                    .arg(format!("oci-archive:{}", archive.display()))
                    .arg(format!("docker://{remote}"))
                    .output()
                    .expect("run skopeo");
                assert!(
                    out.status.success(),
                    "skopeo copy: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                match rt
                    .ensure_image(&remote, PullPolicy::Never, &PullKeyring::default())
                    .await
                {
                    Err(RuntimeError::ImageNotPresent(_)) => {}
                    other => panic!("expected ImageNotPresent before the pull, got {other:?}"),
                }
                let local = rt
                    .ensure_image(BUSYBOX_IMAGE, PullPolicy::Never, &PullKeyring::default())
                    .await
                    .expect("busybox");
                let pulled = rt
                    .ensure_image(&remote, PullPolicy::IfNotPresent, &PullKeyring::default())
                    .await
                    .expect("pull from registry");
                assert_eq!(pulled.id, local.id, "same config digest");
                assert!(
                    pulled
                        .repo_digests
                        .iter()
                        .any(|d| d.starts_with(&format!("{reg}/daas/busybox@sha256:"))),
                    "{pulled:?}"
                );

                let mut c = busybox("remote", &["sh", "-c", "echo from-registry"], &[]);
                c.image = remote.clone();
                c.pull_policy = PullPolicy::Always;
                let spec = pod("uid-remote-4", "remote", RestartPolicy::Never, vec![c]);
                rt.run_pod(&spec)
                    .await
                    .expect("run_pod with registry image");
                let st = wait_for(rt, &spec.uid, "exited", |s| exited(s, "remote").is_some()).await;
                assert_eq!(exited(&st, "remote"), Some((0, "Completed".to_string())));
                assert_eq!(st.containers[0].image, remote);
            })
        },
    );
    drop(registry);
}

fn keyring(auths: &[(&str, &str, &str)]) -> PullKeyring {
    let mut k = PullKeyring::default();
    for (server, user, password) in auths {
        let cfg = serde_json::json!({"auths": {*server: {"username": user, "password": password}}});
        let data = std::collections::BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            cfg.to_string().into_bytes(),
        )]);
        k.add_secret("kubernetes.io/dockerconfigjson", &data)
            .expect("pull secret");
    }
    k
}

#[test]
fn pull_secrets_authenticate_to_a_basic_auth_registry() {
    require_environment();
    let tmp = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start_with_auth(tmp.path(), Some(("puller", "s3cret")));
    let reg = registry.addr.clone();
    let reg_cfg = reg.clone();
    with_fixture_cfg(
        5,
        |_, cfg| cfg.insecure_registries = vec![reg_cfg],
        |fx| {
            Box::pin(async move {
                let rt = &fx.rt;
                let archive = fx.config.data_dir.join("images").join("busybox.tar");
                let remote = format!("{reg}/private/busybox:1");
                let push = |creds: Option<&str>| {
                    let mut cmd = std::process::Command::new("skopeo");
                    cmd.args(["copy", "--dest-tls-verify=false"]);
                    if let Some(c) = creds {
                        cmd.arg(format!("--dest-creds={c}"));
                    }
                    cmd.arg(format!("oci-archive:{}", archive.display()))
                        .arg(format!("docker://{remote}"))
                        .output()
                        .expect("run skopeo")
                };
                assert!(!push(None).status.success(), "anonymous push refused");
                let out = push(Some("puller:s3cret"));
                assert!(
                    out.status.success(),
                    "skopeo copy: {}",
                    String::from_utf8_lossy(&out.stderr)
                );

                let is_pull_error = |r: Result<_, RuntimeError>| {
                    matches!(
                        r,
                        Err(RuntimeError::Cri {
                            call: "PullImage",
                            ..
                        })
                    )
                };
                // No credentials, credentials for another registry (anonymous), a wrong password.
                for k in [
                    PullKeyring::default(),
                    keyring(&[("other.example.com", "puller", "s3cret")]),
                    keyring(&[(&reg, "puller", "wrong")]),
                    keyring(&[(&format!("{reg}/elsewhere"), "puller", "s3cret")]),
                ] {
                    let r = rt.ensure_image(&remote, PullPolicy::Always, &k).await;
                    assert!(is_pull_error(r), "pull with {k:?} must fail");
                }
                // A wrong one first, then the right one (longer path first): the right one wins.
                let k = keyring(&[
                    (&format!("http://{reg}/private"), "puller", "wrong"),
                    (&reg, "puller", "s3cret"),
                ]);
                assert_eq!(k.lookup(&remote).len(), 2);
                let pulled = rt
                    .ensure_image(&remote, PullPolicy::Always, &k)
                    .await
                    .expect("pull with the pull secret");
                assert!(pulled.id.starts_with("sha256:"), "{pulled:?}");

                // Through a pod: the spec's keyring is used for its containers' pulls.
                let mut c = busybox("private", &["sh", "-c", "echo authed"], &[]);
                c.image = remote.clone();
                c.pull_policy = PullPolicy::Always;
                let mut spec = pod("uid-private-5", "private", RestartPolicy::Never, vec![c]);
                spec.pull_keyring = keyring(&[(&reg, "puller", "s3cret")]);
                rt.run_pod(&spec).await.expect("run_pod with pull secret");
                let st =
                    wait_for(rt, &spec.uid, "exited", |s| exited(s, "private").is_some()).await;
                assert_eq!(exited(&st, "private"), Some((0, "Completed".to_string())));
            })
        },
    );
    drop(registry);
}
