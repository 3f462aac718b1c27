//! Test harness: starts a real `daas up` process on 127.0.0.1 and runs the real kubectl against it.
#![allow(dead_code)]

pub mod agent;
pub mod curl;
pub mod etcd;
pub mod hollow;
pub mod netlab;
pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub extra_args: Vec<String>,
    /// Let `daas up` start its local worker (default: `--no-agent`, so tests stay independent
    /// of the host's containerd and do not collide on its bridge and ports).
    pub local_agent: bool,
    /// The network namespace the server and this cluster's kubectl run in (a [`netlab::Lab`]'s
    /// LAN); none: the host's, on 127.0.0.1.
    pub netns: Option<String>,
}

/// A new key `<dir>/<name>.key` funded with `amount` MIST from the ledger's faucet at `chain`:
/// (key path, address). [`Cluster::staker`] also stakes it and issues its seal token.
pub fn funded_key(chain: &str, dir: &Path, name: &str, amount: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let addr = daas_ok(&["keygen", "--out", key.to_str().expect("utf-8 path")])
        .trim()
        .to_string();
    daas_ok(&[
        "faucet",
        "--chain",
        chain,
        "--address",
        &addr,
        "--amount",
        amount,
    ]);
    (key, addr)
}

impl Cluster {
    /// Apply [`TWO_STAKED_NODES`] and report both nodes Ready (the test plays their kubelets).
    pub fn add_ready_staked_nodes(&self) {
        self.ok_stdin(&["apply", "-f", "-"], TWO_STAKED_NODES);
        for n in ["node-1", "node-2"] {
            self.ok(&[
                "patch",
                "node",
                n,
                "--subresource=status",
                "--type=merge",
                "-p",
                NODE_STATUS,
            ]);
        }
    }

    pub fn start() -> Cluster {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Cluster {
        Self::start_opts(extra, false)
    }

    /// `daas up` with its local staked worker (needs root and containerd).
    pub fn start_with_local_agent(extra: &[&str]) -> Cluster {
        Self::start_opts(extra, true)
    }

    fn start_opts(extra: &[&str], local_agent: bool) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        let mut c = Cluster {
            dir,
            child: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            local_agent,
            netns: None,
        };
        c.spawn();
        c
    }

    /// A cluster whose data directory exists but whose server is not started yet (prepare the
    /// data directory, e.g. restore a snapshot into it, then call [`Cluster::spawn`]).
    pub fn unstarted(extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        Cluster {
            dir,
            child: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            local_agent: false,
            netns: None,
        }
    }

    /// `daas up --no-agent` with `args` (which name the listen addresses) in namespace `netns`.
    pub fn start_netns(args: &[&str], netns: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        let mut c = Cluster {
            dir,
            child: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            local_agent: false,
            netns: Some(netns.to_string()),
        };
        c.spawn();
        c
    }

    /// A command running `program` in this cluster's network namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            Some(ns) => netlab::Lab::cmd_in(ns, program),
            None => Command::new(program),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("kubeconfig.yaml")
    }

    /// Start (or restart) the server process and wait until it answers.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let has = |flag: &str| self.extra_args.iter().any(|a| a == flag);
        let child = self
            .command(env!("CARGO_BIN_EXE_daas"))
            .arg("up")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(if has("--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .args(if has("--chain-listen") {
                &[][..]
            } else {
                &["--chain-listen", "127.0.0.1:0"][..]
            })
            .args(if self.local_agent {
                &[][..]
            } else {
                &["--no-agent"][..]
            })
            .args(&self.extra_args)
            .env("RUST_LOG", "info,daas_apiserver=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daas up");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.kubeconfig().exists() {
            assert!(
                Instant::now() < deadline,
                "daas up did not write a kubeconfig; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server not ready: {}\n{}",
                stderr(&out),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGINT (Ctrl-C) the server; returns its exit status once it exited (panics after
    /// `timeout`).
    pub fn interrupt(&mut self, timeout: Duration) -> std::process::ExitStatus {
        self.signal(libc::SIGINT, timeout)
    }

    /// Sends `sig` to the server; returns its exit status once it exited (panics after `timeout`).
    pub fn signal(&mut self, sig: i32, timeout: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server running");
        // SAFETY: kill(2) on the pid of our own child.
        unsafe {
            libc::kill(c.id() as i32, sig);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = c.try_wait().expect("wait for daas up") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "daas up did not exit within {timeout:?} of signal {sig}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's process id (while it runs), e.g. to SIGSTOP it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL the server (no graceful shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The credential audience of this cluster (`k3s-daas:<cluster id>`, from /api/v1/health).
    pub fn audience(&self) -> String {
        let health: serde_json::Value =
            serde_json::from_str(&self.ok(&["get", "--raw", "/api/v1/health"]))
                .expect("health JSON");
        health["audience"]
            .as_str()
            .expect("audience in health")
            .to_string()
    }

    /// The embedded ledger's URL (`daas up` writes it once the ledger API is serving).
    pub fn chain_url(&self) -> String {
        let p = self.data_dir().join("chain-url");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !p.exists() {
            assert!(
                Instant::now() < deadline,
                "no chain-url; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::read_to_string(p)
            .expect("chain-url")
            .trim()
            .to_string()
    }

    /// The master's URL (from the admin kubeconfig).
    pub fn server_url(&self) -> String {
        server_url_of(&self.kubeconfig())
    }

    /// kubectl with another identity's kubeconfig.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        self.command("kubectl")
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .output()
            .expect("run kubectl")
    }

    /// A funded key staked with `stake` (e.g. `["--amount", "200", "--role", "user"]`) holding a
    /// seal token; returns the key file and the address.
    pub fn staker(&self, chain: &str, name: &str, stake: &[&str]) -> (PathBuf, String) {
        let (key, addr) = funded_key(chain, self.dir.path(), name, "5000000000");
        let k = key.to_str().expect("utf-8 path");
        let mut args = vec!["stake", "--chain", chain, "--key", k];
        args.extend_from_slice(stake);
        daas_ok(&args);
        daas_ok(&["token", "issue", "--chain", chain, "--key", k]);
        (key, addr)
    }

    /// `daas join` with `key` (attested against the cluster's dev root); returns the kubeconfig
    /// written and the command's output.
    pub fn join(&self, chain: &str, key: &Path) -> (PathBuf, String) {
        let name = key.file_stem().and_then(|s| s.to_str()).unwrap_or("joined");
        let kc = self.dir.path().join(format!("{name}.kubeconfig"));
        let root = self.data_dir().join("tee").join("trusted-root.pem");
        let out = daas_ok(&[
            "join",
            "--chain",
            chain,
            "--key",
            key.to_str().expect("utf-8 path"),
            "--server",
            &self.server_url(),
            "--trust-root",
            root.to_str().expect("utf-8 path"),
            "--out",
            kc.to_str().expect("utf-8 path"),
        ]);
        (kc, out)
    }

    /// A user-tier staker (stake 200) joined to the cluster: its kubeconfig and its namespace.
    pub fn joined_user(&self, chain: &str, name: &str) -> (PathBuf, String) {
        let (key, _) = self.staker(chain, name, &["--amount", "200", "--role", "user"]);
        let (kc, joined) = self.join(chain, &key);
        (kc, joined_namespace(&joined))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.command("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path().join("home"))
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args).output().expect("run kubectl")
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// Run kubectl, assert success, return stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nserver log:\n{}",
            stderr(&out),
            tail(&self.log())
        );
        stdout(&out)
    }

    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        let out = self.kubectl_stdin(args, input);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nserver log:\n{}",
            stderr(&out),
            tail(&self.log())
        );
        stdout(&out)
    }

    /// Run kubectl, assert failure, return stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            stdout(&out)
        );
        stderr(&out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill();
        if self.local_agent {
            // A failed test may leave the local worker's containerd, shims and mounts behind.
            for pid in pids_with(&self.dir.path().to_string_lossy()) {
                // SAFETY: kill(2) on a pid whose command line names this test's directory.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            daas_agent::runtime::unmount_all_under(self.dir.path());
            if let Some(i) = self.extra_args.iter().position(|a| a == "--bridge-name") {
                if let Some(b) = self.extra_args.get(i + 1) {
                    let _ = Command::new("ip").args(["link", "del", b]).output();
                }
            }
        }
        // DAAS_KEEP_TEST_DIRS=1 keeps the data dirs and logs of a run for a post-mortem.
        if std::env::var_os("DAAS_KEEP_TEST_DIRS").is_some() {
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            eprintln!("kept test dir {}", dir.keep().display());
        }
    }
}

/// Pids of the processes (other than this one) whose command line contains `needle`.
pub fn pids_with(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if pid != me && String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Run the `daas` binary under test.
pub fn daas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daas"))
        .args(args)
        .output()
        .expect("run daas")
}

/// Run the `daas` binary under test; it must succeed. Returns stdout.
#[track_caller]
pub fn daas_ok(args: &[&str]) -> String {
    let o = daas(args);
    assert!(
        o.status.success(),
        "daas {args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `daas account` of `addr` on the cluster's ledger, as JSON.
#[track_caller]
pub fn account(c: &Cluster, addr: &str) -> serde_json::Value {
    let out = daas_ok(&[
        "account",
        "--chain",
        &c.chain_url(),
        "--address",
        addr,
        "-o",
        "json",
    ]);
    serde_json::from_str(&out).expect("account JSON")
}

/// The status of a Node's Ready condition ("True", "False", "Unknown"; empty if none).
pub fn node_ready(c: &Cluster, node: &str) -> String {
    let o = c.kubectl(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    stdout(&o).trim().to_string()
}

/// The API server URL a kubeconfig names.
pub fn server_url_of(kubeconfig: &Path) -> String {
    let kc = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    kc.lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server in kubeconfig")
        .to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A long-running kubectl (e.g. `get -w`) whose stdout lines arrive on a channel.
pub struct Streaming {
    child: Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Streaming {
    pub fn start(c: &Cluster, args: &[&str]) -> Streaming {
        let mut child = c
            .kubectl_cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kubectl");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Streaming { child, lines: rx }
    }

    /// Wait for a line satisfying `pred`; returns every line seen up to and including it.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = pred(&l);
                    seen.push(l);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => panic!("timed out waiting for a matching line; saw {seen:?}"),
            }
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn file_contains(path: &Path, needle: &[u8]) -> bool {
    let data = std::fs::read(path).unwrap_or_default();
    data.windows(needle.len()).any(|w| w == needle)
}

/// Two staked Node objects (node-1, node-2) for tests that play kubelet themselves.
pub const TWO_STAKED_NODES: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {k3s-daas.io/staked: "true", kubernetes.io/hostname: node-1}
---
apiVersion: v1
kind: Node
metadata:
  name: node-2
  labels: {k3s-daas.io/staked: "true", kubernetes.io/hostname: node-2}
"#;

/// The status of a ready node, for tests that play its kubelet.
pub const NODE_STATUS: &str = r#"{"status":{"capacity":{"cpu":"4","memory":"8Gi","pods":"110"},"allocatable":{"cpu":"4","memory":"8Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}"#;

/// Play the kubelet of the `node-*` nodes until `stop`, for controller tests without a real agent:
/// pods bound to them get `pod_status` (a status merge patch), terminating ones finish.
pub fn play_kubelet(
    c: &Cluster,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pod_status: &'static str,
) -> std::thread::JoinHandle<()> {
    let kubeconfig = c.kubeconfig();
    let home = c.dir.path().join("home");
    std::thread::spawn(move || {
        let kubectl = |args: &[&str]| {
            std::process::Command::new("kubectl")
                .args(args)
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &home)
                .output()
        };
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok(out) = kubectl(&[
                "get",
                "pods",
                "-o",
                r#"jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}"#,
            ]) else {
                break;
            };
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() == 4 && f[1].starts_with("node-") {
                    let _ = kubectl(&[
                        "delete",
                        "pod",
                        f[0],
                        "--grace-period=0",
                        "--force",
                        "--wait=false",
                    ]);
                } else if f.len() == 3 && f[1].starts_with("node-") && f[2] != "Running" {
                    let _ = kubectl(&[
                        "patch",
                        "pod",
                        f[0],
                        "--subresource=status",
                        "--type=merge",
                        "-p",
                        pod_status,
                    ]);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    })
}

/// The user-tier namespace `daas join` reports ("... (namespace u-...)").
pub fn joined_namespace(join_output: &str) -> String {
    join_output
        .split("namespace ")
        .nth(1)
        .unwrap_or_else(|| panic!("no user namespace in the join output: {join_output}"))
        .trim_end_matches([')', '\n'])
        .to_string()
}
