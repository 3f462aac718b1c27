//! A private test network: a "LAN" network namespace holding a bridge (`br0`, 172.30.0.1/24) on
//! which the master listens, and one network namespace per node, wired to the bridge by a veth
//! pair (`eth0` in the node, 172.30.0.<10+i>/24, default route via the LAN). Every address, route,
//! bridge, pod network and firewall rule lives inside namespaces this lab made, so parallel tests
//! never collide and the host's network is untouched; dropping the [`Lab`] deletes them all.
//!
//! The master runs in the LAN namespace ([`Cluster::start_in`]); the test's kubectl runs there too
//! (the LAN is "the host network" of the cluster: NodePorts and ingress are reached from it).
//! Agents run in their node's namespace ([`start_agent_in`]) with their own containerd.
//!
//! Processes enter a namespace with `nsenter --net=/run/netns/<name>` (network only: mounts stay
//! in the host's mount namespace, so the usual cleanup of an agent's mounts applies).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use super::agent::{unsafe_is_root, write_agent_config, Agent};
use super::{stderr, Cluster};

/// The master's address on the LAN.
pub const LAN_GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 1);

static LABS: AtomicU32 = AtomicU32::new(0);

pub struct Lab {
    /// Prefix of this lab's namespace names (unique per test process and lab).
    pub prefix: String,
    /// The LAN namespace's name.
    pub lan: String,
    nodes: Vec<String>,
}

/// Run `ip` with `args`; panics with its stderr on failure.
#[track_caller]
fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
}

impl Lab {
    /// A new LAN namespace with its bridge up at [`LAN_GATEWAY`]. Needs root.
    pub fn new() -> Lab {
        assert!(unsafe_is_root(), "the network lab needs root");
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("dl{}x{n}", std::process::id());
        let lan = format!("{prefix}-lan");
        let lab = Lab {
            prefix,
            lan: lan.clone(),
            nodes: Vec::new(),
        };
        ip(&["netns", "add", &lan]);
        ip(&["-n", &lan, "link", "set", "lo", "up"]);
        ip(&["-n", &lan, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &lan,
            "addr",
            "add",
            &format!("{LAN_GATEWAY}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &lan, "link", "set", "br0", "up"]);
        lab
    }

    /// The namespace name of node `i` (1-based).
    pub fn node_ns(&self, i: u8) -> String {
        format!("{}-n{i}", self.prefix)
    }

    /// Node `i`'s address on the LAN.
    pub fn node_ip(i: u8) -> Ipv4Addr {
        Ipv4Addr::new(172, 30, 0, 10 + i)
    }

    /// Make node `i`'s namespace: `lo` up, `eth0` on the LAN bridge, default route via the LAN.
    /// Returns the namespace's name.
    pub fn add_node(&mut self, i: u8) -> String {
        let ns = self.node_ns(i);
        ip(&["netns", "add", &ns]);
        self.nodes.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        let port = format!("vn{i}");
        ip(&[
            "-n", &self.lan, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ]);
        ip(&["-n", &self.lan, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &self.lan, "link", "set", &port, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", Self::node_ip(i)),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &LAN_GATEWAY.to_string(),
        ]);
        ns
    }

    /// A command that runs `program` inside namespace `ns`.
    pub fn cmd_in(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{ns}"))
            .arg("--")
            .arg(program);
        c
    }

    /// Run `program args` in namespace `ns` and return its output.
    pub fn run_in(ns: &str, program: &str, args: &[&str]) -> Output {
        Self::cmd_in(ns, program)
            .args(args)
            .output()
            .expect("run in netns")
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    /// Deleting a namespace takes its interfaces, addresses, routes and nftables rules with it
    /// (once no process holds it: agents and clusters are dropped before their lab).
    fn drop(&mut self) {
        for ns in self.nodes.iter().chain(std::iter::once(&self.lan)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Cluster {
    /// `daas up` (no local agent) inside the lab's LAN namespace, listening on [`LAN_GATEWAY`];
    /// this cluster's kubectl runs there too.
    pub fn start_in(lab: &Lab, extra: &[&str]) -> Cluster {
        let mut args: Vec<&str> = vec![
            "--listen",
            "172.30.0.1:0",
            "--chain-listen",
            "172.30.0.1:0",
            "--tls-san",
            "172.30.0.1",
        ];
        args.extend_from_slice(extra);
        Cluster::start_netns(&args, &lab.lan)
    }
}

/// Stake a fresh node key and start an agent for `node` in the lab's node namespace `i` (made
/// here), with more staker-config keys in `extra` (an object).
pub fn start_agent_in(
    c: &Cluster,
    lab: &mut Lab,
    node: &str,
    i: u8,
    extra: serde_json::Value,
) -> Agent {
    let ns = lab.add_node(i);
    let (dir, path) = write_agent_config(
        c,
        node,
        serde_json::json!({
            "node_ip": Lab::node_ip(i).to_string(),
            "kubelet_port": 10250,
            "pod_cidr": format!("10.42.{i}.0/24"),
            "bridge_name": "daas0",
        }),
        extra,
    );
    let mut a = Agent {
        child: None,
        dir,
        config: path,
        bridge: "daas0".into(),
        claim: PathBuf::new(),
        pod_prefix: format!("10.42.{i}."),
        netns: Some(ns),
    };
    a.spawn();
    a
}
