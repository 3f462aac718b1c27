//! Resource metrics end to end: a real agent with containerd runs a busy-looping pod; `kubectl top
//! node` and `kubectl top pod` show its usage (metrics.k8s.io from the agent's `/stats/summary`
//! through the master's node proxy); the Node status carries images, allocatable and pressure
//! conditions; the agent's stats endpoints refuse unsigned requests; a tenant reads neither node
//! metrics nor another namespace's pod metrics. Needs root and containerd (scripts/test.sh).

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stderr, stdout, Cluster};

/// The millicores and MiB kubectl top prints for the row starting with `name`.
fn top_row(out: &str, name: &str) -> Option<(u64, u64)> {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let cpu = f.get(1)?.strip_suffix('m')?.parse().ok()?;
    let mem = f
        .iter()
        .skip(2)
        .find_map(|x| x.strip_suffix("Mi"))?
        .parse()
        .ok()?;
    Some((cpu, mem))
}

#[test]
fn kubectl_top_shows_busy_pod_and_node() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
    ]);
    let a = start_agent(&c, "worker-m", 7);
    wait_node_ready(&c, &a, "worker-m");

    let pod = r#"apiVersion: v1
kind: Pod
metadata: {name: busy, labels: {app: busy}}
spec:
  containers:
  - name: spin
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'while :; do :; done']
    resources: {requests: {cpu: 100m, memory: 16Mi}, limits: {cpu: 500m, memory: 64Mi}}
"#;
    c.ok_stdin(&["apply", "-f", "-"], pod);
    wait_for(
        &c,
        "pod Running",
        Duration::from_secs(90),
        || c.ok(&["get", "pod", "busy", "-o", "jsonpath={.status.phase}"]) == "Running",
        &a,
    );

    // kubectl top pod: the loop burns CPU (up to its 500m limit).
    let start = Instant::now();
    let (cpu, _mem) = loop {
        let o = c.kubectl(&["top", "pod", "busy"]);
        if let Some((cpu, mem)) = top_row(&stdout(&o), "busy") {
            if cpu > 0 {
                break (cpu, mem);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "kubectl top pod: {} {}\nagent: {}",
            stdout(&o),
            stderr(&o),
            a.log()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!((50..=600).contains(&cpu), "busy loop at {cpu}m");
    let containers = c.ok(&["top", "pod", "busy", "--containers"]);
    assert!(containers.contains("spin"), "{containers}");
    let by_label = c.ok(&["top", "pod", "-l", "app=busy"]);
    assert!(by_label.contains("busy"), "{by_label}");

    let top_node = c.ok(&["top", "node"]);
    eprintln!("{containers}\n{top_node}");
    let (ncpu, nmem) = top_row(&top_node, "worker-m").unwrap_or_else(|| panic!("{top_node}"));
    assert!(ncpu > 0 && nmem > 0, "{top_node}");

    // Node status from the host.
    let node: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "node", "worker-m", "-o", "json"])).unwrap();
    let st = &node["status"];
    // DiskPressure follows the kubelet's nodefs.available<10% on the agent's filesystem (a nearly
    // full test host does have it); memory and PIDs are plentiful.
    let df = Command::new("df")
        .args(["--output=size,avail", "-B1"])
        .arg(c.dir.path())
        .output()
        .unwrap();
    let nums: Vec<u64> = stdout(&df)
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let disk_pressure = nums[1] * 10 < nums[0];
    for (ty, want) in [
        ("MemoryPressure", false),
        ("DiskPressure", disk_pressure),
        ("PIDPressure", false),
    ] {
        let cond = st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty}: {st}"));
        assert_eq!(
            cond["status"],
            if want { "True" } else { "False" },
            "{cond}"
        );
    }
    let images = st["images"].as_array().unwrap();
    assert!(
        images.iter().any(|i| i["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("k3s-daas/busybox"))
            && i["sizeBytes"].as_u64().unwrap() > 0),
        "{images:?}"
    );
    assert!(st["capacity"]["ephemeral-storage"].is_string(), "{st}");
    assert!(st["allocatable"]["memory"].is_string(), "{st}");
    assert_ne!(st["allocatable"]["memory"], st["capacity"]["memory"]);
    assert!(!st["nodeInfo"]["kernelVersion"].as_str().unwrap().is_empty());
    let rt = st["nodeInfo"]["containerRuntimeVersion"].as_str().unwrap();
    assert!(rt.starts_with("containerd://") && rt.len() > 13, "{rt}");
    let ip = c.ok(&["get", "pod", "busy", "-o", "jsonpath={.status.podIP}"]);
    assert!(ip.starts_with("10.243.7."), "{ip}");

    // The stats endpoints answer only the attested master.
    let port = c.ok(&[
        "get",
        "node",
        "worker-m",
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ]);
    for path in ["/stats/summary", "/metrics/resource"] {
        let o = Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("https://127.0.0.1:{port}{path}"),
            ])
            .output()
            .unwrap();
        assert_eq!(stdout(&o), "401", "{path}");
    }

    // A tenant: no node metrics, no pod metrics outside its namespace.
    let chain = c.chain_url();
    let (key, _) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let (alice, _) = c.join(&chain, &key);
    for args in [&["top", "node"][..], &["top", "pod", "-n", "default"][..]] {
        let o = c.kubectl_as(&alice, args);
        assert!(!o.status.success(), "{args:?}: {}", stdout(&o));
        let e = stderr(&o);
        assert!(
            e.contains("Forbidden") || e.contains("forbidden"),
            "{args:?}: {e}"
        );
    }
    let o = c.kubectl_as(
        &alice,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Forbidden"), "{}", stderr(&o));
    drop(a);
}
