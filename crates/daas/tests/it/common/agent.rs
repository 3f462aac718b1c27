//! A real `daas agent` (its own containerd, runc, CNI) joined to a test [`Cluster`]. Needs root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::daas_ok;
use super::{stdout, Cluster};

pub struct Agent {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub bridge: String,
    /// This agent's claim on its bridge index (see [`claim_index`]), released on drop.
    pub claim: PathBuf,
    /// Its pod CIDR's prefix, e.g. `10.243.7.`.
    pub pod_prefix: String,
    /// The network namespace it runs in (a [`super::netlab::Lab`] node), none: the host's.
    pub netns: Option<String>,
}

/// Where test processes claim agent indexes (bridge `daase<n>`, pod CIDR `10.243.<n>.0/24`):
/// tests run in parallel processes, and two agents on one bridge would share addresses and
/// tear down each other's network.
const CLAIMS: &str = "/tmp/k3s-daas-test-agents";

/// Claim an agent index no running test holds, trying `hint` first. A claim is a file created
/// exclusively holding the claimer's pid; a claim whose process is gone is taken over.
pub fn claim_index(hint: u8) -> (u8, PathBuf) {
    std::fs::create_dir_all(CLAIMS).unwrap();
    let me = std::process::id().to_string();
    let candidates = std::iter::once(hint).chain((1..=250u8).filter(move |n| *n != hint));
    for n in candidates {
        let path = PathBuf::from(CLAIMS).join(n.to_string());
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(me.as_bytes()).unwrap();
                    return (n, path);
                }
                Err(_) => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = !owner.is_empty()
                        && std::path::Path::new(&format!("/proc/{}", owner.trim())).exists();
                    if alive {
                        break;
                    }
                    // The claimer died without releasing it: take it over (once).
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    panic!("no free agent index under {CLAIMS}");
}

impl Agent {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    pub fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("agent.log")).unwrap();
        self.child = Some(
            match &self.netns {
                Some(ns) => super::netlab::Lab::cmd_in(ns, env!("CARGO_BIN_EXE_daas")),
                None => Command::new(env!("CARGO_BIN_EXE_daas")),
            }
            .args(["agent", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        );
    }

    /// SIGKILL: the agent gets no chance to clean up (its containerd keeps running).
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM: the agent stops its containerd.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    /// Leave nothing behind, even when a test failed halfway: kill every container through the
    /// agent's containerd, stop the agent, then any shim left, unmount and drop the bridge.
    fn drop(&mut self) {
        let sock = self.dir.join("data/runtime/containerd/containerd.sock");
        if sock.exists() {
            let ctr = |args: &[&str]| {
                Command::new("ctr")
                    .arg("-a")
                    .arg(&sock)
                    .args(["-n", "k8s.io"])
                    .args(args)
                    .output()
            };
            if let Ok(o) = ctr(&["tasks", "ls", "-q"]) {
                for id in String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                {
                    let _ = ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id.trim()]);
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.stop();
        let _ = Command::new("pkill")
            .arg("-9")
            .arg("-f")
            .arg(self.dir.to_string_lossy().as_ref())
            .output();
        // A container whose shim died first (killed above) outlives it: kill what is left in
        // the cgroups of this agent's pods.
        kill_pod_cgroups(&self.dir.join("data/pods"));
        std::thread::sleep(Duration::from_millis(200));
        daas_agent::runtime::unmount_all_under(&self.dir);
        if self.netns.is_none() {
            // (A lab node's bridge goes with its namespace.)
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .output();
            // The agent's pod masquerade table in the host's namespace (see `net::podnet`).
            let _ = Command::new("nft")
                .args([
                    "delete",
                    "table",
                    "ip",
                    &daas_agent::net::podnet::table_name(&self.bridge),
                ])
                .output();
            let _ = std::fs::remove_file(&self.claim);
        }
    }
}

/// SIGKILL every process left in the cgroups (`<controller>/daas/pod<uid>/...`, cgroup v1 and
/// v2) of the pods whose log directories (`<ns>_<name>_<uid>`) are under `log_root`.
fn kill_pod_cgroups(log_root: &Path) {
    let Ok(pods) = std::fs::read_dir(log_root) else {
        return;
    };
    let uids: Vec<String> = pods
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.rsplit('_').next().map(str::to_string)
        })
        .filter(|u| !u.is_empty())
        .collect();
    let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = controllers.flatten().map(|e| e.path()).collect();
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    fn procs(dir: &Path, out: &mut Vec<i32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        if let Ok(children) = std::fs::read_dir(dir) {
            for c in children.flatten() {
                if c.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    procs(&c.path(), out);
                }
            }
        }
    }
    let mut pids = Vec::new();
    for root in &roots {
        for uid in &uids {
            procs(&root.join("daas").join(format!("pod{uid}")), &mut pids);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
    }
}

/// Stake a fresh node key and start an agent for `node`, on agent index `hint` unless another
/// running test holds it (then on a free one).
pub fn start_agent(c: &Cluster, node: &str, hint: u8) -> Agent {
    start_agent_with(c, node, hint, serde_json::json!({}))
}

/// [`start_agent`] with more staker-config keys (`extra`, an object).
pub fn start_agent_with(c: &Cluster, node: &str, hint: u8, extra: serde_json::Value) -> Agent {
    assert!(unsafe_is_root(), "the agent test needs root (containerd)");
    let (index, claim) = claim_index(hint);
    let bridge = format!("daase{index}");
    let (dir, path) = write_agent_config(
        c,
        node,
        serde_json::json!({
            "kubelet_port": 0,
            "pod_cidr": format!("10.243.{index}.0/24"),
            "bridge_name": bridge,
            // Agents in the host's network namespace share its nftables and addresses: only lab
            // agents (in their own namespaces) program Services and policies and serve ingress.
            "service_proxy": false,
            "disable_network_policy": true,
            "ingress_http_port": 0,
            "ingress_https_port": 0,
        }),
        extra,
    );
    let mut a = Agent {
        child: None,
        dir,
        config: path,
        bridge,
        claim,
        pod_prefix: format!("10.243.{index}."),
        netns: None,
    };
    a.spawn();
    a
}

/// A funded node key for `node` and its agent's staker config, written under the cluster's
/// directory: the keys every test agent shares, then `net` (where it sits on the network), then
/// the test's `extra`. The faucet runs where the cluster's kubectl does (its network namespace).
/// Returns the agent's directory and the config file.
pub fn write_agent_config(
    c: &Cluster,
    node: &str,
    net: serde_json::Value,
    extra: serde_json::Value,
) -> (PathBuf, PathBuf) {
    let chain = c.chain_url();
    let dir = c.dir.path().join(format!("agent-{node}"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("node.key");
    let addr = daas_ok(&["keygen", "--out", key.to_str().unwrap()])
        .trim()
        .to_string();
    let o = c
        .command(env!("CARGO_BIN_EXE_daas"))
        .args([
            "faucet",
            "--chain",
            &chain,
            "--address",
            &addr,
            "--amount",
            "5000000000",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "faucet: {}", super::stderr(&o));
    let mut config = serde_json::json!({
        "node_id": node,
        "sui_wallet_address": addr,
        "sui_key_file": key,
        "sui_rpc_endpoint": chain,
        "stake_amount": 1000,
        "nautilus_endpoint": c.server_url(),
        "container_runtime": "containerd",
        "min_stake_amount": 1000,
        "data_dir": dir.join("data"),
        "trust_root": c.data_dir().join("tee").join("trusted-root.pem"),
        "heartbeat_seconds": 2,
    });
    for (k, v) in net
        .as_object()
        .into_iter()
        .flatten()
        .chain(extra.as_object().into_iter().flatten())
    {
        config[k] = v.clone();
    }
    let path = dir.join("staker-config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    (dir, path)
}

pub fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn wait_node_ready(c: &Cluster, a: &Agent, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if super::node_ready(c, node) == "True" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {node} never became Ready\nagent log:\n{}\nserver log:\n{}",
            a.log(),
            c.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Wait (90 s at most) until each of `pods` is Running with its Ready condition True.
pub fn wait_pods_ready(c: &Cluster, a: &Agent, pods: &[&str]) {
    for pod in pods {
        wait_for(
            c,
            &format!("{pod} running and ready"),
            Duration::from_secs(90),
            || {
                stdout(&c.kubectl(&[
                    "get",
                    "pod",
                    pod,
                    "-o",
                    "jsonpath={.status.phase}/{.status.conditions[?(@.type==\"Ready\")].status}",
                ])) == "Running/True"
            },
            a,
        );
    }
}

pub fn wait_for(c: &Cluster, what: &str, timeout: Duration, f: impl Fn() -> bool, a: &Agent) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\nagent log:\n{}\nserver log tail:\n{}",
            a.log(),
            c.log()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
