//! A containerd owned by the agent: generated config, CNI conflist, local images, start/stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cri::ContainerdRuntime;
use super::image::{self, DEFAULT_BUSYBOX, PAUSE_IMAGE};
use super::{Result, RuntimeError};

/// Settings of a [`ManagedContainerd`].
#[derive(Debug, Clone)]
pub struct ManagedContainerdConfig {
    /// Agent data directory; containerd state lives in `<data_dir>/containerd`, CNI config in `<data_dir>/cni`,
    /// pod logs in `<data_dir>/pods`.
    pub data_dir: PathBuf,
    pub containerd_bin: PathBuf,
    pub ctr_bin: PathBuf,
    pub cni_bin_dir: PathBuf,
    /// Pod CIDR of this node (host-local IPAM range), e.g. `10.42.<n>.0/24`. `None` until the
    /// master assigned it: containerd then starts without a CNI configuration (network not
    /// ready) and [`ManagedContainerdConfig::write_cni_conflist`] adds it later.
    pub pod_cidr: Option<String>,
    /// MTU of the pods' interfaces and bridge (`None`: the CNI default; the VXLAN overlay needs
    /// 50 bytes less than the node's network).
    pub mtu: Option<u32>,
    /// Linux bridge the pods attach to (at most 15 characters).
    pub bridge_name: String,
    /// Static busybox binary used for the sandbox and test images.
    pub busybox: PathBuf,
    /// Air-gap images directory: every `*.tar` in it is imported at startup.
    pub images_dir: Option<PathBuf>,
    /// Also build and import [`image::BUSYBOX_IMAGE`].
    pub import_busybox_image: bool,
    pub startup_timeout: Duration,
    /// Registries (`host:port`) reached over plain HTTP (e.g. a local registry in tests or an air-gapped mirror).
    pub insecure_registries: Vec<String>,
    /// containerd log level (`info`, `debug`, ...).
    pub log_level: String,
    /// Pods may publish `hostPort`s: the CNI chain ends with `portmap`. When false the chain is
    /// bridge only (one plugin exec less per pod start and stop), unless this data directory
    /// ever had `portmap` in its chain (see [`ManagedContainerdConfig::render_cni_conflist`]).
    pub host_ports: bool,
}

impl ManagedContainerdConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ManagedContainerdConfig {
            data_dir: data_dir.into(),
            containerd_bin: "/usr/bin/containerd".into(),
            ctr_bin: "/usr/bin/ctr".into(),
            cni_bin_dir: "/usr/lib/cni".into(),
            pod_cidr: Some("10.42.0.0/24".into()),
            mtu: None,
            bridge_name: "daas0".into(),
            busybox: DEFAULT_BUSYBOX.into(),
            images_dir: None,
            import_busybox_image: true,
            startup_timeout: Duration::from_secs(60),
            insecure_registries: Vec::new(),
            log_level: "info".into(),
            host_ports: true,
        }
    }

    /// Pod CIDR `10.42.<n>.0/24` for node index `n`.
    pub fn with_node_index(mut self, n: u8) -> Self {
        self.pod_cidr = Some(format!("10.42.{n}.0/24"));
        self
    }

    pub fn containerd_dir(&self) -> PathBuf {
        self.data_dir.join("containerd")
    }
    pub fn socket_path(&self) -> PathBuf {
        self.containerd_dir().join("containerd.sock")
    }
    pub fn config_path(&self) -> PathBuf {
        self.containerd_dir().join("config.toml")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.data_dir.join("cni").join("net.d")
    }
    pub fn log_root(&self) -> PathBuf {
        self.data_dir.join("pods")
    }
    fn pid_path(&self) -> PathBuf {
        self.containerd_dir().join("containerd.pid")
    }
    fn log_path(&self) -> PathBuf {
        self.containerd_dir().join("containerd.log")
    }

    /// The generated containerd `config.toml` (version 2).
    pub fn render_config(&self) -> String {
        let dir = self.containerd_dir();
        let q = |p: &Path| toml_str(&p.to_string_lossy());
        let mut registries = String::new();
        for r in &self.insecure_registries {
            registries.push_str(&format!(
                "    [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.{}]\n      endpoint = [{}]\n",
                toml_str(r),
                toml_str(&format!("http://{r}"))
            ));
        }
        let mut out = format!(
            r#"version = 2
root = {root}
state = {state}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = {socket}

[debug]
  level = {level}

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {opt}
  [plugins."io.containerd.grpc.v1.cri"]
    # No CAP_SYS_RESOURCE in the agent's sandbox: never lower oom_score_adj below ours.
    restrict_oom_score_adj = true
    sandbox_image = {sandbox}
    enable_cdi = false
    # Network namespaces below the state dir instead of /var/run/netns.
    netns_mounts_under_state_dir = true
    systemd_cgroup = false
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {cni_bin}
      conf_dir = {cni_conf}
      max_conf_num = 1
"#,
            root = q(&dir.join("root")),
            state = q(&dir.join("state")),
            socket = q(&self.socket_path()),
            level = toml_str(&self.log_level),
            opt = q(&dir.join("opt")),
            sandbox = toml_str(PAUSE_IMAGE),
            cni_bin = q(&self.cni_bin_dir),
            cni_conf = q(&self.cni_conf_dir()),
        );
        out.push_str(&registries);
        out
    }

    fn conflist_path(&self) -> PathBuf {
        self.cni_conf_dir().join("10-daas.conflist")
    }

    /// Marker: a conflist with `portmap` was written for this data directory. Pods started
    /// then may hold host-port rules that only `portmap`'s DEL removes, so `portmap` stays in
    /// the chain from then on, whatever `host_ports` says later.
    fn portmap_marker(&self) -> PathBuf {
        self.data_dir.join("cni").join("portmap-used")
    }

    /// Does the chain need `portmap`: host ports allowed now, or ever before on this data dir.
    fn wants_portmap(&self) -> bool {
        self.host_ports || self.portmap_marker().exists()
    }

    /// Write the CNI conflist for the pod CIDR (containerd picks up a new or changed one
    /// without a restart). Nothing to write while the pod CIDR is unknown.
    pub fn write_cni_conflist(&self) -> Result<()> {
        let Some(rendered) = self.render_cni_conflist() else {
            return Ok(());
        };
        let dir = self.cni_conf_dir();
        mkdir(&dir)?;
        if self.wants_portmap() {
            // Before the conflist: a crash in between leaves portmap in, never out.
            let marker = self.portmap_marker();
            std::fs::write(&marker, b"").map_err(|e| RuntimeError::io(&marker, e))?;
        }
        let path = self.conflist_path();
        // Write then rename: containerd never reads a half-written file.
        let tmp = dir.join(".10-daas.conflist.tmp");
        std::fs::write(&tmp, rendered).map_err(|e| RuntimeError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| RuntimeError::io(&path, e))
    }

    /// The generated CNI conflist: bridge (gateway) with host-local IPAM on the pod CIDR, then
    /// portmap when pods may publish host ports (`host_ports`, or portmap was in this data
    /// directory's chain before: its DEL must still run for pods started then); `None` while
    /// the pod CIDR is unknown. No `ipMasq`: the agent's `ip daas-podnet`
    /// table is the one owner of pod masquerading (`net::podnet`).
    /// (containerd's CRI plugin brings up `lo` in every pod itself with the `loopback` plugin from `bin_dir`.)
    pub fn render_cni_conflist(&self) -> Option<String> {
        let pod_cidr = self.pod_cidr.as_ref()?;
        let mut conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "daas-pods",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge_name,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.data_dir.join("cni").join("networks").to_string_lossy(),
                    }
                }
            ]
        });
        if self.wants_portmap() {
            if let Some(plugins) = conf["plugins"].as_array_mut() {
                plugins.push(
                    serde_json::json!({"type": "portmap", "capabilities": {"portMappings": true}}),
                );
            }
        }
        if let Some(mtu) = self.mtu {
            conf["plugins"][0]["mtu"] = serde_json::json!(mtu);
        }
        serde_json::to_string_pretty(&conf).ok()
    }
}

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A containerd process started and owned by the agent. Stopped (SIGTERM, then SIGKILL) on
/// [`shutdown`](Self::shutdown) or drop. Containers keep running under their shims across containerd restarts.
pub struct ManagedContainerd {
    config: ManagedContainerdConfig,
    child: Option<Child>,
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| RuntimeError::io(p, e))
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence/permission.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: plain kill(2) on a pid we started.
    unsafe {
        libc::kill(pid, sig);
    }
}

impl ManagedContainerd {
    /// Writes the config, starts containerd, waits until CRI reports runtime and network ready, then imports the
    /// sandbox image, the busybox image (if configured) and every air-gap archive.
    pub async fn start(config: ManagedContainerdConfig) -> Result<ManagedContainerd> {
        let dir = config.containerd_dir();
        for d in [
            dir.clone(),
            config.cni_conf_dir(),
            config.log_root(),
            config.data_dir.join("images"),
        ] {
            mkdir(&d)?;
        }
        std::fs::write(config.config_path(), config.render_config())
            .map_err(|e| RuntimeError::io(config.config_path(), e))?;
        config.write_cni_conflist()?;

        Self::kill_stale(&config).await;
        let socket = config.socket_path();
        match std::fs::remove_file(&socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RuntimeError::io(&socket, e)),
        }

        let log_path = config.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| RuntimeError::io(&log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| RuntimeError::io(&log_path, e))?;
        let child = Command::new(&config.containerd_bin)
            .arg("--config")
            .arg(config.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| RuntimeError::Command {
                command: format!(
                    "{} --config {}",
                    config.containerd_bin.display(),
                    config.config_path().display()
                ),
                message: e.to_string(),
            })?;
        let pid = child.id();
        std::fs::write(config.pid_path(), pid.to_string())
            .map_err(|e| RuntimeError::io(config.pid_path(), e))?;
        tracing::info!(pid, socket = %socket.display(), "started containerd");
        let mut me = ManagedContainerd {
            config,
            child: Some(child),
        };
        if let Err(e) = me.wait_ready().await {
            me.shutdown().await;
            return Err(e);
        }
        me.import_images().await?;
        Ok(me)
    }

    /// Kills a containerd left over from a previous (crashed) agent run on the same directories.
    async fn kill_stale(config: &ManagedContainerdConfig) {
        let Ok(s) = std::fs::read_to_string(config.pid_path()) else {
            return;
        };
        let Ok(pid) = s.trim().parse::<i32>() else {
            return;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cfg = config.config_path().to_string_lossy().into_owned();
        if pid <= 1 || !String::from_utf8_lossy(&cmdline).contains(&cfg) {
            return;
        }
        tracing::warn!(pid, "stopping stale containerd of a previous run");
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_alive(pid) && Instant::now() < deadline {
            // A zombie (not our child) counts as alive for kill(0); check /proc state too.
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if state.contains(") Z") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if pid_alive(pid) {
            signal(pid, libc::SIGKILL);
        }
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.config.log_path()).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.config.startup_timeout;
        let mut last = String::from("socket not created");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(RuntimeError::Containerd(format!(
                        "containerd exited during startup ({status}); log tail:\n{}",
                        self.log_tail()
                    )));
                }
            }
            if self.config.socket_path().exists() {
                match ContainerdRuntime::connect(self.config.socket_path(), self.config.log_root())
                    .await
                {
                    // Without a CNI configuration yet (pod CIDR not assigned), the network is
                    // not ready until the agent writes one: wait for the runtime only.
                    Ok(rt) => match rt
                        .ready_conditions(if self.config.conflist_path().exists() {
                            &["RuntimeReady", "NetworkReady"]
                        } else {
                            &["RuntimeReady"]
                        })
                        .await
                    {
                        Ok(()) => return Ok(()),
                        Err(e) => last = e.to_string(),
                    },
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() > deadline {
                return Err(RuntimeError::Timeout(format!(
                    "containerd not ready after {:?}: {last}; log tail:\n{}",
                    self.config.startup_timeout,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn import_images(&self) -> Result<()> {
        let built = self.config.data_dir.join("images");
        let pause = built.join("pause.tar");
        image::pause_image(&self.config.busybox)?.write_to(&pause)?;
        image::import_archive(&self.config.ctr_bin, &self.config.socket_path(), &pause).await?;
        if self.config.import_busybox_image {
            let bb = built.join("busybox.tar");
            image::busybox_image(&self.config.busybox)?.write_to(&bb)?;
            image::import_archive(&self.config.ctr_bin, &self.config.socket_path(), &bb).await?;
        }
        if let Some(dir) = &self.config.images_dir {
            for archive in image::airgap_archives(dir)? {
                tracing::info!(archive = %archive.display(), "importing air-gap image archive");
                image::import_archive(&self.config.ctr_bin, &self.config.socket_path(), &archive)
                    .await?;
            }
        }
        Ok(())
    }

    pub fn config(&self) -> &ManagedContainerdConfig {
        &self.config
    }

    pub fn socket_path(&self) -> PathBuf {
        self.config.socket_path()
    }

    /// Process id of containerd while it runs.
    /// True once the containerd process has exited (crashed or killed).
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A CRI client for this containerd, writing pod logs below `<data_dir>/pods`.
    pub async fn runtime(&self) -> Result<ContainerdRuntime> {
        Ok(
            ContainerdRuntime::connect(self.config.socket_path(), self.config.log_root())
                .await?
                .with_ctr(&self.config.ctr_bin),
        )
    }

    /// SIGKILLs containerd without any cleanup (simulates a crash; shims and containers keep running).
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL.
    pub async fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => {
                    signal(child.id() as i32, libc::SIGKILL);
                    let _ = child.wait();
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(self.config.pid_path());
        tracing::info!("containerd stopped");
    }

    fn shutdown_blocking(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    signal(child.id() as i32, libc::SIGKILL);
                    let _ = child.wait();
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(self.config.pid_path());
    }
}

impl Drop for ManagedContainerd {
    fn drop(&mut self) {
        self.shutdown_blocking();
    }
}

/// Mount points at or below `root` (from /proc/self/mountinfo), deepest first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(root))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmounts everything mounted at or below `root` (container rootfs, netns, shm mounts left after a
/// crash). Returns the mount points it detached.
pub fn unmount_all_under(root: &Path) -> Vec<PathBuf> {
    let mut done = Vec::new();
    for _ in 0..3 {
        let mounts = mounts_under(root);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            let Ok(c) = std::ffi::CString::new(m.to_string_lossy().as_bytes()) else {
                continue;
            };
            // SAFETY: umount2 with a valid NUL-terminated path.
            let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            if rc == 0 {
                done.push(m);
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_config_and_conflist() {
        let mut c = ManagedContainerdConfig::new("/var/lib/daas \"x\"").with_node_index(7);
        c.insecure_registries = vec!["127.0.0.1:5000".into()];
        let toml = c.render_config();
        assert!(toml.starts_with("version = 2\n"));
        assert!(
            toml.contains(r#"root = "/var/lib/daas \"x\"/containerd/root""#),
            "{toml}"
        );
        assert!(toml.contains(r#"address = "/var/lib/daas \"x\"/containerd/containerd.sock""#));
        for needle in [
            "restrict_oom_score_adj = true",
            "sandbox_image = \"localhost/k3s-daas/pause:3.9\"",
            "enable_cdi = false",
            "SystemdCgroup = false",
            "bin_dir = \"/usr/lib/cni\"",
            "conf_dir = \"/var/lib/daas \\\"x\\\"/cni/net.d\"",
            "registry.mirrors.\"127.0.0.1:5000\"]\n      endpoint = [\"http://127.0.0.1:5000\"]",
        ] {
            assert!(toml.contains(needle), "missing {needle:?} in\n{toml}");
        }
        let net: serde_json::Value =
            serde_json::from_str(&c.render_cni_conflist().expect("a pod CIDR")).expect("json");
        assert_eq!(net["plugins"][0]["type"], "bridge");
        assert_eq!(net["plugins"][0]["bridge"], "daas0");
        assert_eq!(net["plugins"][0]["isGateway"], true);
        // Masquerading is the agent's `ip daas-podnet` table's, not the bridge plugin's.
        assert_eq!(net["plugins"][0]["ipMasq"], false);
        assert!(net["plugins"][0].get("mtu").is_none());
        assert_eq!(
            net["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.42.7.0/24"
        );
        assert_eq!(net["plugins"][1]["type"], "portmap");
        c.mtu = Some(1450);
        let net: serde_json::Value =
            serde_json::from_str(&c.render_cni_conflist().expect("a pod CIDR")).expect("json");
        assert_eq!(net["plugins"][0]["mtu"], 1450);
        // No pod CIDR yet: no conflist (and nothing is written).
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = ManagedContainerdConfig::new(dir.path());
        c.pod_cidr = None;
        assert!(c.render_cni_conflist().is_none());
        c.write_cni_conflist().expect("no-op");
        assert!(!c.conflist_path().exists());
        c.pod_cidr = Some("10.42.9.0/24".into());
        c.write_cni_conflist().expect("write");
        assert!(std::fs::read_to_string(c.conflist_path())
            .expect("conflist")
            .contains("10.42.9.0/24"));
    }

    #[test]
    fn portmap_only_while_host_ports_are_or_were_allowed() {
        let plugins = |c: &ManagedContainerdConfig| -> Vec<String> {
            let net: serde_json::Value =
                serde_json::from_str(&c.render_cni_conflist().expect("a pod CIDR")).expect("json");
            net["plugins"]
                .as_array()
                .expect("plugins")
                .iter()
                .map(|p| p["type"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = ManagedContainerdConfig::new(dir.path().join("fresh"));
        c.host_ports = false;
        assert_eq!(plugins(&c), ["bridge"]);
        c.write_cni_conflist().expect("write");
        assert!(!c.portmap_marker().exists());
        let written = std::fs::read_to_string(c.conflist_path()).expect("conflist");
        assert!(!written.contains("portmap"), "{written}");

        // Host ports allowed once: portmap is in the chain and stays there when they are
        // refused later (pods started meanwhile may hold host-port rules only its DEL removes).
        let mut c = ManagedContainerdConfig::new(dir.path().join("used"));
        assert!(c.host_ports, "the default keeps portmap");
        c.write_cni_conflist().expect("write");
        assert_eq!(plugins(&c), ["bridge", "portmap"]);
        c.host_ports = false;
        assert_eq!(plugins(&c), ["bridge", "portmap"]);
        c.write_cni_conflist().expect("write");
        let written = std::fs::read_to_string(c.conflist_path()).expect("conflist");
        assert!(written.contains("portmap"), "{written}");
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
