//! End-to-end: pods bound together start concurrently on one real `daas agent` (containerd,
//! runc, CNI) and concurrency does not break cleanup. Correctness only, nothing timed: every pod
//! reaches Running in its own sandbox with its own IP, a pod force-deleted while its sandbox is
//! being created leaves no sandbox and no IP behind, and deleting all pods at once frees all.
//! Needs root and containerd/runc/containernetworking-plugins/busybox-static.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::agent::{start_agent, wait_for, wait_node_ready, Agent};
use common::{stdout, Cluster};

const PODS: usize = 10;

fn ctr(a: &Agent, args: &[&str]) -> String {
    let sock = a.dir.join("data/runtime/containerd/containerd.sock");
    let o = Command::new("ctr")
        .arg("-a")
        .arg(&sock)
        .args(["-n", "k8s.io"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "ctr {args:?}: {}", common::stderr(&o));
    stdout(&o)
}

/// The sandbox containers of the agent's containerd, optionally those of one pod uid.
fn sandboxes(a: &Agent, pod_uid: Option<&str>) -> Vec<String> {
    let mut filter = r#"labels."io.cri-containerd.kind"==sandbox"#.to_string();
    if let Some(uid) = pod_uid {
        filter.push_str(&format!(r#",labels."io.kubernetes.pod.uid"=={uid}"#));
    }
    ctr(a, &["containers", "ls", "-q", &filter])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The host-local IPAM directory of the agent's pod network (one file per allocated IP).
fn ipam_dir(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.ends_with("cni/networks/daas-pods") {
            return Some(p);
        }
        if p.is_dir() && !p.is_symlink() {
            // Skip containerd's own trees: the IPAM directory sits near the top.
            if p.components().count() > dir.components().count() + 4 {
                continue;
            }
            if let Some(found) = ipam_dir(&p) {
                return Some(found);
            }
        }
    }
    None
}

/// The agent's CNI conflist (the one containerd's CRI plugin reads).
fn conflist(dir: &Path) -> Option<PathBuf> {
    let ipam = ipam_dir(dir)?;
    // <cni>/networks/daas-pods -> <cni>/net.d/10-daas.conflist
    let cni = ipam.parent()?.parent()?;
    Some(cni.join("net.d").join("10-daas.conflist"))
}

/// Pod IPs the agent's IPAM holds.
fn allocated_ips(a: &Agent) -> BTreeSet<String> {
    let Some(dir) = ipam_dir(&a.dir) else {
        return BTreeSet::new();
    };
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.parse::<std::net::Ipv4Addr>().is_ok())
                .collect()
        })
        .unwrap_or_default()
}

fn pod_yaml(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: many}}}}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: c, image: \
         localhost/k3s-daas/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, \
         \"3600\"]}}\n---\n"
    )
}

#[test]
fn pods_bound_together_all_run_and_a_pod_deleted_mid_start_leaves_nothing() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-ps", 5);
    wait_node_ready(&c, &a, "worker-ps");

    let mut all: String = (0..PODS).map(|i| pod_yaml(&format!("many-{i}"))).collect();
    all.push_str(&pod_yaml("doomed").replace("app: many", "app: doomed"));
    c.ok_stdin(&["apply", "-f", "-"], &all);

    // Force-delete `doomed` as soon as the agent has seen it, while its sandbox is being made.
    // (The log may be colored: match the parts, not `pod=default/doomed`.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while !a.log().lines().any(|l| {
        l.contains("daas::podstart") && l.contains("default/doomed") && l.contains("\"seen\"")
    }) {
        assert!(
            Instant::now() < deadline,
            "agent never saw doomed:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let doomed_uid = c.ok(&["get", "pod", "doomed", "-o", "jsonpath={.metadata.uid}"]);
    c.ok(&["delete", "pod", "doomed", "--grace-period=0", "--force"]);

    let names: Vec<String> = (0..PODS).map(|i| format!("many-{i}")).collect();
    wait_for(
        &c,
        "all pods Running",
        Duration::from_secs(240),
        || {
            let phases = c.ok(&[
                "get",
                "pods",
                "-l",
                "app=many",
                "-o",
                "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}",
            ]);
            phases.lines().filter(|p| *p == "Running").count() == PODS
        },
        &a,
    );
    let rows = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=many",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} \
         {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
    ]);
    let mut ips = BTreeSet::new();
    let mut containers = BTreeSet::new();
    for name in &names {
        let row = rows
            .lines()
            .find(|l| l.split(' ').next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} missing:\n{rows}"));
        let f: Vec<&str> = row.split(' ').collect();
        assert_eq!(f.len(), 5, "{row}");
        assert_eq!(f[1], "worker-ps", "{row}");
        assert!(
            f[2].starts_with(&a.pod_prefix),
            "pod IP in the node's CIDR: {row}"
        );
        assert!(f[3].starts_with("containerd://"), "{row}");
        assert_eq!(f[4], "true", "{row}");
        ips.insert(f[2].to_string());
        containers.insert(f[3].to_string());
    }
    assert_eq!(ips.len(), PODS, "distinct pod IPs:\n{rows}");
    // This agent refuses hostPorts: its CNI chain has no portmap (one plugin exec less per pod
    // start and stop); the pods got their addresses all the same, and give them back below.
    let chain = std::fs::read_to_string(conflist(&a.dir).expect("the agent's IPAM directory"))
        .expect("the agent's conflist");
    assert!(chain.contains("\"bridge\""), "{chain}");
    assert!(!chain.contains("portmap"), "{chain}");
    assert_eq!(containers.len(), PODS, "distinct containers:\n{rows}");

    // Each pod has its own sandbox; the deleted one ends with none and its IP released.
    wait_for(
        &c,
        "doomed pod's sandbox and IP gone",
        Duration::from_secs(60),
        || sandboxes(&a, Some(&doomed_uid)).is_empty() && allocated_ips(&a) == ips,
        &a,
    );
    let uids: BTreeSet<String> = names
        .iter()
        .map(|n| c.ok(&["get", "pod", n, "-o", "jsonpath={.metadata.uid}"]))
        .collect();
    assert_eq!(uids.len(), PODS);
    for uid in &uids {
        assert_eq!(
            sandboxes(&a, Some(uid)).len(),
            1,
            "one sandbox for pod {uid}"
        );
    }
    assert_eq!(sandboxes(&a, None).len(), PODS, "no extra sandbox");
    let doomed = c.kubectl(&["get", "pod", "doomed"]);
    assert!(!doomed.status.success(), "doomed still exists");
    assert!(
        common::stderr(&doomed).contains("NotFound"),
        "{}",
        common::stderr(&doomed)
    );

    // Deleting them all at once frees every sandbox and address.
    c.ok(&[
        "delete",
        "pods",
        "-l",
        "app=many",
        "--wait=true",
        "--timeout=120s",
    ]);
    wait_for(
        &c,
        "all sandboxes and IPs released",
        Duration::from_secs(60),
        || sandboxes(&a, None).is_empty() && allocated_ips(&a).is_empty(),
        &a,
    );
}

/// A pod that prints its ConfigMap volume's `who` and its ServiceAccount token, then sleeps.
fn reader_yaml(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: reader}}}}\n\
         spec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    \
         image: localhost/k3s-daas/busybox:latest\n    imagePullPolicy: IfNotPresent\n    \
         command: [sh, -c, 'echo who=$(cat /config/who); echo token=$(cat \
         /var/run/secrets/kubernetes.io/serviceaccount/token); sleep 3600']\n    \
         volumeMounts: [{{name: cfg, mountPath: /config}}]\n  \
         volumes: [{{name: cfg, configMap: {{name: shared}}}}]\n---\n"
    )
}

/// The JWT payload's claims.
fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// (who, token) a reader pod printed, once it has.
fn reader_output(c: &Cluster, ns: &str, name: &str) -> Option<(String, String)> {
    let out = c.kubectl(&["-n", ns, "logs", name]);
    let log = stdout(&out);
    let who = log.lines().find_map(|l| l.strip_prefix("who="))?;
    let token = log.lines().find_map(|l| l.strip_prefix("token="))?;
    Some((who.to_string(), token.to_string()))
}

/// The agent shares the API reads of pods started together (one ConfigMap GET, one Service
/// list per namespace): each pod still gets its own namespace's ConfigMap and its own token
/// (bound to itself, never another pod's or namespace's), and a ConfigMap changed just before a
/// pod is created reaches that pod even while other pods' reads of it are in flight.
#[test]
fn pods_started_together_get_their_own_namespaces_data_and_the_newest_configmap() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-sr", 7);
    wait_node_ready(&c, &a, "worker-sr");
    for ns in ["ns-a", "ns-b"] {
        c.ok(&["create", "namespace", ns]);
        let who = format!("who={}", &ns[3..]);
        c.ok(&[
            "-n",
            ns,
            "create",
            "configmap",
            "shared",
            &format!("--from-literal={who}"),
        ]);
    }
    // Four pods in each namespace at once, then: ns-a's ConfigMap changes and one more pod is
    // created right away, while the first ones may still be reading.
    let mut all = String::new();
    for i in 0..4 {
        all.push_str(&reader_yaml("ns-a", &format!("a-{i}")));
        all.push_str(&reader_yaml("ns-b", &format!("b-{i}")));
    }
    c.ok_stdin(&["apply", "-f", "-"], &all);
    c.ok(&[
        "-n",
        "ns-a",
        "patch",
        "configmap",
        "shared",
        "-p",
        r#"{"data":{"who":"a2"}}"#,
    ]);
    c.ok_stdin(&["apply", "-f", "-"], &reader_yaml("ns-a", "late"));

    let mut pods: Vec<(&str, String)> = Vec::new();
    for i in 0..4 {
        pods.push(("ns-a", format!("a-{i}")));
        pods.push(("ns-b", format!("b-{i}")));
    }
    pods.push(("ns-a", "late".to_string()));
    wait_for(
        &c,
        "every reader printed its data",
        Duration::from_secs(240),
        || {
            pods.iter()
                .all(|(ns, n)| reader_output(&c, ns, n).is_some())
        },
        &a,
    );
    let mut tokens = BTreeSet::new();
    for (ns, name) in &pods {
        let (who, token) = reader_output(&c, ns, name).expect("printed");
        match (*ns, name.as_str()) {
            ("ns-a", "late") => assert_eq!(who, "a2", "the late pod sees the patched ConfigMap"),
            // The first ones read before or after the patch: either, but never ns-b's.
            ("ns-a", _) => assert!(who == "a" || who == "a2", "{ns}/{name}: {who}"),
            _ => assert_eq!(who, "b", "{ns}/{name} got another namespace's ConfigMap"),
        }
        let claims = jwt_claims(&token);
        assert_eq!(
            claims["sub"].as_str(),
            Some(format!("system:serviceaccount:{ns}:default").as_str()),
            "{ns}/{name}: {claims}"
        );
        let k = &claims["kubernetes.io"];
        assert_eq!(k["namespace"].as_str(), Some(*ns), "{ns}/{name}: {claims}");
        assert_eq!(
            k["pod"]["name"].as_str(),
            Some(name.as_str()),
            "{ns}/{name}: token bound to another pod: {claims}"
        );
        let uid = c.ok(&[
            "-n",
            ns,
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        assert_eq!(k["pod"]["uid"].as_str(), Some(uid.as_str()), "{claims}");
        assert!(tokens.insert(token), "{ns}/{name} shares a token");
    }
    // Shared reads: fewer ConfigMap GETs than pods (one in flight serves those started with it).
    // Not asserted (timing); the pods' data above is what must hold.
    for ns in ["ns-a", "ns-b"] {
        c.ok(&[
            "-n",
            ns,
            "delete",
            "pods",
            "-l",
            "app=reader",
            "--wait=true",
            "--timeout=120s",
        ]);
    }
    wait_for(
        &c,
        "all sandboxes released",
        Duration::from_secs(60),
        || sandboxes(&a, None).is_empty(),
        &a,
    );
}
