//! HA control plane: three Debian etcd members, two `daas master` processes on them (the second
//! gets the cluster key from the first over the attested key share), one staked agent and
//! kubectl with both masters in its kubeconfig. The leader master is SIGKILLed during a stream of
//! writes: the other keeps serving kubectl and the agent within 5 s, the controllers resume there,
//! no acknowledged write is lost and etcd's data holds no plaintext.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::common::agent::{claim_index, unsafe_is_root, Agent};
use super::common::etcd::EtcdCluster;
use super::common::{file_contains, funded_key, server_url_of, stderr, stdout};

/// The fixed enclave measurement both masters run with (the same code).
const MEASUREMENT: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Leader election timings of the test masters (upstream's defaults are 15 s / 10 s / 2 s).
const LEASE_ARGS: [&str; 10] = [
    "--leader-elect-lease-duration",
    "3s",
    "--leader-elect-renew-deadline",
    "2s",
    "--leader-elect-retry-period",
    "500ms",
    "--identity-lease-renew-interval",
    "1s",
    "--endpoint-ttl",
    "3s",
];

struct Proc {
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
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

/// `daas chain` (the embedded ledger alone); returns it and its URL.
fn start_chain(dir: &Path) -> (Proc, String) {
    let log = dir.join("chain.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_daas"))
        .args(["chain", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("chain"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no ledger URL in {line:?}"))
        .trim_end_matches(':')
        .to_string();
    (
        Proc {
            child: Some(child),
            log,
        },
        url,
    )
}

struct MasterProc {
    proc_: Proc,
    data: PathBuf,
}

impl MasterProc {
    fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig.yaml")
    }
    fn url(&self) -> String {
        server_url_of(&self.kubeconfig())
    }
}

fn start_master(
    dir: &Path,
    name: &str,
    etcd: &EtcdCluster,
    chain: &str,
    join: Option<&str>,
) -> MasterProc {
    let data = dir.join(name);
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_daas"));
    cmd.args(["master", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--datastore-endpoint", &etcd.endpoints()])
        .args(["--ledger", "embedded", "--sui-rpc", chain])
        .args([
            "--enclave",
            "simulated",
            "--enclave-measurement",
            MEASUREMENT,
        ])
        .arg("--enclave-dev-root")
        .arg(dir.join("platform"))
        .args(["--node-grace-seconds", "20"])
        .args(LEASE_ARGS);
    if let Some(url) = join {
        cmd.args(["--server", url]);
    }
    let child = cmd
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let m = MasterProc {
        proc_: Proc {
            child: Some(child),
            log,
        },
        data,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if m.kubeconfig().exists() {
            let o = kubectl(&m.kubeconfig(), None, &["get", "--raw", "/readyz"]);
            if o.status.success() {
                return m;
            }
        }
        assert!(
            Instant::now() < deadline,
            "master {name} not ready; log:\n{}",
            m.proc_.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kubectl(kubeconfig: &Path, context: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new("kubectl");
    if let Some(ctx) = context {
        c.args(["--context", ctx]);
    }
    c.args(["--request-timeout", "5s"])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap()
}

/// One kubeconfig with a context per master (`m0`, `m1`), the admin token both accept.
fn write_kubeconfig(path: &Path, masters: &[&MasterProc]) {
    let first = std::fs::read_to_string(masters[0].kubeconfig()).unwrap();
    let doc: serde_json::Value = serde_yaml_ng(&first);
    let ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap()
        .to_string();
    let token = doc["users"][0]["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut clusters = Vec::new();
    let mut contexts = Vec::new();
    for (i, m) in masters.iter().enumerate() {
        clusters.push(serde_json::json!({"name": format!("m{i}"), "cluster": {"server": m.url(), "certificate-authority-data": ca}}));
        contexts.push(serde_json::json!({"name": format!("m{i}"), "context": {"cluster": format!("m{i}"), "user": "admin", "namespace": "default"}}));
    }
    let kc = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": clusters, "contexts": contexts,
        "users": [{"name": "admin", "user": {"token": token}}],
        "current-context": "m0",
    });
    std::fs::write(path, serde_json::to_vec_pretty(&kc).unwrap()).unwrap();
}

/// The kubeconfig YAML as JSON (kubeconfigs written by the master are plain YAML maps).
fn serde_yaml_ng(s: &str) -> serde_json::Value {
    let v: serde_yaml::Value = serde_yaml::from_str(s).unwrap();
    serde_json::to_value(v).unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "kubectl failed: {}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap()
}

#[test]
fn killing_the_leader_master_loses_no_write_and_the_other_takes_over() {
    if !unsafe_is_root() {
        eprintln!("skipped: needs root (containerd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let etcd = EtcdCluster::start(3);
    let (_chain, chain) = start_chain(dir.path());
    let m0 = start_master(dir.path(), "m0", &etcd, &chain, None);
    let m1 = start_master(dir.path(), "m1", &etcd, &chain, Some(&m0.url()));
    let mut masters = [Some(m0), Some(m1)];
    let kc = dir.path().join("kubeconfig");
    write_kubeconfig(
        &kc,
        &[masters[0].as_ref().unwrap(), masters[1].as_ref().unwrap()],
    );
    // Both masters serve the same cluster: an object written through one is read through the other.
    assert!(
        kubectl(&kc, Some("m0"), &["create", "configmap", "through-m0"])
            .status
            .success()
    );
    let o = kubectl(
        &kc,
        Some("m1"),
        &["get", "configmap", "through-m0", "-o", "json"],
    );
    assert_eq!(json(&o)["metadata"]["name"], "through-m0");

    // A canary in a Secret and a ConfigMap, to look for in etcd's files later.
    let canary = format!("ha-canary-{}", std::process::id());
    for kind in ["secret generic", "configmap"] {
        let mut args: Vec<&str> = vec!["create"];
        args.extend(kind.split(' '));
        let lit = format!("--from-literal=k={canary}");
        args.extend(["canary", lit.as_str()]);
        let o = kubectl(&kc, Some("m0"), &args);
        assert!(o.status.success(), "{}", stderr(&o));
    }

    // Who leads the controllers? (The master killed below.)
    let leader = leading_master(&kc, "m0", &masters);
    let other = 1 - leader;
    eprintln!("m{leader} leads the controllers");

    // A staked agent that knows both masters, the leader first (the one it uses while it is up).
    let agent = start_ha_agent(dir.path(), &chain, &masters, leader);
    wait(
        "the node is Ready",
        Duration::from_secs(90),
        || node_ready(&kc, "m0", "ha-node"),
        &agent,
    );
    let other_ctx = format!("m{other}");

    // A stream of writes, alternating masters, failing over on errors: acknowledged names recorded.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, kc) = (acked.clone(), stop.clone(), kc.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            let mut ctx = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("w-{i}");
                let o = kubectl(
                    &kc,
                    Some(&format!("m{ctx}")),
                    &["create", "configmap", &name, "--from-literal=i=1"],
                );
                if o.status.success() {
                    acked.lock().unwrap().push(name);
                    i += 1;
                } else if stderr(&o).contains("AlreadyExists") {
                    // Written before a lost answer: it is there, so it counts.
                    acked.lock().unwrap().push(name);
                    i += 1;
                } else {
                    ctx = 1 - ctx;
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let lease_before = node_lease_renew(&kc, &other_ctx, "ha-node");

    // SIGKILL the leader.
    masters[leader].as_mut().unwrap().proc_.kill9();
    let killed = Instant::now();

    // kubectl through the other master answers and writes within 5 s.
    let mut served = None;
    while killed.elapsed() < Duration::from_secs(5) {
        let o = kubectl(
            &kc,
            Some(&other_ctx),
            &["create", "configmap", "after-kill"],
        );
        if o.status.success() {
            served = Some(killed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let served = served.unwrap_or_else(|| {
        panic!(
            "the other master did not serve a write within 5 s; its log:\n{}",
            masters[other].as_ref().unwrap().proc_.log()
        )
    });
    eprintln!(
        "write through the surviving master {:?} after the kill",
        served
    );

    // The agent renews its node Lease through the other master within 5 s of the kill.
    let deadline = killed + Duration::from_secs(5) + Duration::from_secs(2);
    loop {
        let now = node_lease_renew(&kc, &other_ctx, "ha-node");
        if now != lease_before && !now.is_empty() {
            eprintln!(
                "node Lease renewed through the surviving master {:?} after the kill",
                killed.elapsed()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not renew its Lease through the surviving master; agent log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Controllers resume on the other master: a ReplicaSet created now gets its pod, scheduled
    // onto the agent's node and running.
    let rs = r#"{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"after-failover"},
      "spec":{"replicas":1,"selector":{"matchLabels":{"app":"af"}},
      "template":{"metadata":{"labels":{"app":"af"}},"spec":{"containers":[{"name":"c",
      "image":"localhost/k3s-daas/busybox:latest","imagePullPolicy":"IfNotPresent",
      "command":["sleep","3600"]}]}}}}"#;
    let mut child = Command::new("kubectl")
        .args(["--context", &other_ctx, "apply", "-f", "-"])
        .env("KUBECONFIG", &kc)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rs.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    wait(
        "the ReplicaSet's pod runs after the failover",
        Duration::from_secs(90),
        || {
            let o = kubectl(
                &kc,
                Some(&other_ctx),
                &["get", "pods", "-l", "app=af", "-o", "json"],
            );
            o.status.success()
                && json(&o)["items"]
                    .as_array()
                    .map(|a| a.iter().any(|p| p["status"]["phase"] == "Running"))
                    .unwrap_or(false)
        },
        &agent,
    );
    assert_eq!(
        leading_master(&kc, &other_ctx, &masters),
        other,
        "the surviving master leads the controllers now"
    );

    // No acknowledged write is lost.
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 5,
        "the stream wrote too little: {}",
        acked.len()
    );
    let o = kubectl(&kc, Some(&other_ctx), &["get", "configmaps", "-o", "json"]);
    let names: std::collections::HashSet<String> = json(&o)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str().map(String::from))
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|n| !names.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    eprintln!("{} acknowledged writes, none lost", acked.len());

    // etcd's data holds no plaintext.
    for d in etcd.data_dirs() {
        for f in walk(d) {
            assert!(
                !file_contains(&f, canary.as_bytes()),
                "canary in the clear in {}",
                f.display()
            );
        }
    }
    drop(agent);
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Which master holds the controller Lease: its holder is `<master id>_<random>`, and the
/// master's identity Lease `kube-apiserver-<master id>` names the port it serves on.
fn leading_master(kc: &Path, ctx: &str, masters: &[Option<MasterProc>; 2]) -> usize {
    let holder = lease_holder(kc, ctx, "kube-controller-manager");
    let id = holder
        .rsplit_once('_')
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("lease holder {holder:?} is not <master id>_<random>"));
    let o = kubectl(
        kc,
        Some(ctx),
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            &format!("kube-apiserver-{id}"),
            "-o",
            "json",
        ],
    );
    let port = json(&o)["metadata"]["annotations"]["k3s-daas.io/advertise-port"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    masters
        .iter()
        .position(|m| {
            m.as_ref()
                .map(|m| m.url().ends_with(&format!(":{port}")))
                .unwrap_or(false)
        })
        .unwrap_or_else(|| panic!("lease holder {holder:?} (port {port:?}) is neither master"))
}

fn lease_holder(kc: &Path, ctx: &str, name: &str) -> String {
    let o = kubectl(
        kc,
        Some(ctx),
        &["get", "lease", "-n", "kube-system", name, "-o", "json"],
    );
    json(&o)["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn node_lease_renew(kc: &Path, ctx: &str, node: &str) -> String {
    let o = kubectl(
        kc,
        Some(ctx),
        &["get", "lease", "-n", "kube-node-lease", node, "-o", "json"],
    );
    if !o.status.success() {
        return String::new();
    }
    json(&o)["spec"]["renewTime"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn node_ready(kc: &Path, ctx: &str, node: &str) -> bool {
    let o = kubectl(kc, Some(ctx), &["get", "node", node, "-o", "json"]);
    o.status.success()
        && json(&o)["status"]["conditions"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .unwrap_or(false)
}

fn wait(what: &str, timeout: Duration, f: impl Fn() -> bool, a: &Agent) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what}: timed out; agent log:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn start_ha_agent(
    dir: &Path,
    chain: &str,
    masters: &[Option<MasterProc>; 2],
    first: usize,
) -> Agent {
    let (index, claim) = claim_index(60);
    let bridge = format!("daase{index}");
    let adir = dir.join("agent");
    std::fs::create_dir_all(&adir).unwrap();
    let (key, addr) = funded_key(chain, &adir, "node", "5000000000");
    let m: [u8; 48] = hex::decode(MEASUREMENT).unwrap().try_into().unwrap();
    let pcrs = daas_tee::SimulatedEnclave::pcrs_for_measurement(&m);
    let expected: serde_json::Map<String, serde_json::Value> = (0u16..3)
        .map(|i| {
            (
                i.to_string(),
                serde_json::Value::String(hex::encode(pcrs.get(i).unwrap())),
            )
        })
        .collect();
    let endpoints: Vec<String> = [first, 1 - first]
        .iter()
        .map(|i| masters[*i].as_ref().unwrap().url())
        .collect();
    let config = serde_json::json!({
        "node_id": "ha-node",
        "sui_wallet_address": addr,
        "sui_key_file": key,
        "sui_rpc_endpoint": chain,
        "stake_amount": 1000,
        "min_stake_amount": 1000,
        "nautilus_endpoint": endpoints,
        "container_runtime": "containerd",
        "data_dir": adir.join("data"),
        "trust_root": dir.join("platform").join("dev-root.pem"),
        "expected_pcrs": expected,
        "heartbeat_seconds": 1,
        "kubelet_port": 0,
        "pod_cidr": format!("10.243.{index}.0/24"),
        "bridge_name": bridge,
        "service_proxy": false,
        "disable_network_policy": true,
        "ingress_http_port": 0,
        "ingress_https_port": 0,
    });
    let path = adir.join("staker-config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let mut a = Agent {
        child: None,
        dir: adir,
        config: path,
        bridge,
        claim,
        pod_prefix: format!("10.243.{index}."),
        netns: None,
    };
    a.spawn();
    a
}
