//! End-to-end: a staker's machine stays safe from whoever schedules pods on it, the cluster admin
//! included. `daas up` plus one real `daas agent` (its own containerd); the admin (not subject to
//! the master's pod security) binds pods straight to the node. Needs root, like tests/agent.rs.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready, Agent};
use common::{stdout, Cluster};

const NODE: &str = "worker-sec";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every container (sandboxes included) containerd of the agent knows.
fn containers(a: &Agent) -> Vec<String> {
    let sock = a.dir.join("data/runtime/containerd/containerd.sock");
    let o = Command::new("ctr")
        .arg("-a")
        .arg(&sock)
        .args(["-n", "k8s.io", "containers", "ls", "-q"])
        .output()
        .expect("run ctr");
    assert!(
        o.status.success(),
        "ctr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn phase(c: &Cluster, pod: &str) -> String {
    c.ok(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
}

#[test]
fn node_refuses_host_escapes_and_hardens_every_container() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "2",
    ]);
    let a = start_agent(&c, NODE, 4);
    wait_node_ready(&c, &a, NODE);

    // Files on disk: data dir 0700, keys and the credential 0600.
    let data = a.dir.join("data");
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("credential.token")), 0o600, "credential");
    assert_eq!(mode(&data.join("pki")), 0o700, "pki dir");
    assert_eq!(mode(&data.join("pki/kubelet.key")), 0o600, "kubelet key");
    assert_eq!(mode(&a.dir.join("node.key")), 0o600, "node key");

    // (a) The admin binds a pod that would own the host: refused by the node, nothing created.
    let escape = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: escape, namespace: default}}
spec:
  nodeName: {NODE}
  hostNetwork: true
  hostPID: true
  terminationGracePeriodSeconds: 1
  volumes: [{{name: host, hostPath: {{path: /}}}}]
  containers:
  - name: c
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    securityContext: {{privileged: true}}
    volumeMounts: [{{name: host, mountPath: /host}}]
"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &escape);
    // And one that only mounts the agent's own key material.
    let steal = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: steal, namespace: default}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 1
  volumes: [{{name: keys, hostPath: {{path: {pki}, type: DirectoryOrCreate}}}}]
  containers:
  - name: c
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [cat, /keys/kubelet.key]
    volumeMounts: [{{name: keys, mountPath: /keys}}]
"#,
        pki = data.join("pki").display()
    );
    c.ok_stdin(&["apply", "-f", "-"], &steal);
    for pod in ["escape", "steal"] {
        wait_for(
            &c,
            &format!("pod {pod} Failed"),
            Duration::from_secs(60),
            || phase(&c, pod) == "Failed",
            &a,
        );
    }
    let reason = c.ok(&["get", "pod", "escape", "-o", "jsonpath={.status.reason}"]);
    assert_eq!(reason, "Forbidden");
    let msg = c.ok(&["get", "pod", "escape", "-o", "jsonpath={.status.message}"]);
    assert!(msg.starts_with("Pod was rejected: "), "{msg}");
    for part in [
        "privileged (container \"c\" must not set securityContext.privileged=true)",
        "host namespaces (hostNetwork=true, hostPID=true)",
        "hostPath volumes (volume \"host\" with path \"/\" exposes the host's root filesystem /)",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg}");
    }
    let msg = c.ok(&[
        "get",
        "pod",
        "steal",
        "-o",
        "jsonpath={.status.reason} {.status.message}",
    ]);
    assert!(msg.starts_with("Forbidden Pod was rejected: "), "{msg}");
    assert!(
        msg.contains("volume \"keys\"") && msg.contains("the agent's data directory"),
        "{msg}"
    );
    // The Warning events, as the kubelet records them.
    let events: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "events", "-n", "default", "-o", "json"]))
            .expect("events json");
    for pod in ["escape", "steal"] {
        let ev = events["items"]
            .as_array()
            .and_then(|items| items.iter().find(|e| e["involvedObject"]["name"] == pod))
            .unwrap_or_else(|| panic!("no event for {pod}: {events}"));
        assert_eq!(
            (ev["type"].as_str(), ev["reason"].as_str()),
            (Some("Warning"), Some("Forbidden")),
            "{ev}"
        );
        assert!(
            ev["message"]
                .as_str()
                .unwrap_or_default()
                .contains("hostPath volumes"),
            "{ev}"
        );
    }
    // Nothing ever reached containerd: no sandbox, no container.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(containers(&a), Vec::<String>::new());
    assert_eq!(phase(&c, "escape"), "Failed");

    // (b) A plain pod gets the always-on hardening: no_new_privs, seccomp filter, default caps;
    // runAsUser/runAsGroup/supplementalGroups/readOnlyRootFilesystem/drop ALL are honoured.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: Pod
metadata: {name: status}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext: {supplementalGroups: [4000]}
  containers:
  - name: root
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [cat, /proc/self/status]
  - name: user
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'id; grep CapEff /proc/self/status; touch /written 2>&1; echo end']
    securityContext: {runAsUser: 1000, runAsGroup: 3000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"#,
    );
    wait_for(
        &c,
        "pod status Succeeded",
        Duration::from_secs(90),
        || phase(&c, "status") == "Succeeded",
        &a,
    );
    let log = c.ok(&["logs", "status", "-c", "root"]);
    let field = |name: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} missing from {log}"))
    };
    assert_eq!(field("NoNewPrivs"), "1", "{log}");
    assert_eq!(field("Seccomp"), "2", "{log}");
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
    // SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(field("CapEff"), "00000000a80425fb", "{log}");
    assert_eq!(field("CapBnd"), "00000000a80425fb", "{log}");
    let log = c.ok(&["logs", "status", "-c", "user"]);
    assert!(
        log.contains("uid=1000 gid=3000") && log.contains("4000"),
        "{log}"
    );
    assert!(log.contains("CapEff:\t0000000000000000"), "{log}");
    assert!(
        log.contains("Read-only file system") && log.contains("end"),
        "{log}"
    );

    // (c) A hostPath volume is read-only even without readOnly: true.
    let scratch = c.dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    std::fs::write(scratch.join("hello"), "from the host\n").expect("scratch file");
    let ro = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: hostdir}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  volumes: [{{name: scratch, hostPath: {{path: {scratch}}}}}]
  containers:
  - name: c
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'cat /mnt/hello; echo pwned > /mnt/new; echo pwned >> /mnt/hello; echo end']
    volumeMounts: [{{name: scratch, mountPath: /mnt}}]
"#,
        scratch = scratch.display()
    );
    c.ok_stdin(&["apply", "-f", "-"], &ro);
    wait_for(
        &c,
        "pod hostdir Succeeded",
        Duration::from_secs(60),
        || phase(&c, "hostdir") == "Succeeded",
        &a,
    );
    let log = c.ok(&["logs", "hostdir"]);
    assert!(log.contains("from the host"), "{log}");
    assert_eq!(log.matches("Read-only file system").count(), 2, "{log}");
    assert!(!scratch.join("new").exists());
    assert_eq!(
        std::fs::read_to_string(scratch.join("hello")).expect("hello"),
        "from the host\n"
    );

    for pod in ["escape", "steal", "status", "hostdir"] {
        c.ok(&["delete", "pod", pod, "--wait", "--timeout=60s"]);
    }
}
