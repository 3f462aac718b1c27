//! End-to-end storage: `daas up` plus one real `daas agent`; real kubectl creates a claim of the
//! default (local-path) class, a pod writes into it, the pod is deleted and recreated and the
//! file is still there; deleting the claim removes the volume and its data on the node.
//! Needs root and containerd/runc/containernetworking-plugins/busybox-static (scripts/test.sh
//! installs them).

use crate::common;

use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stdout, Cluster};

fn pod(name: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "{script}; sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: data}}
"#
    )
}

#[test]
fn local_path_claim_keeps_data_across_pods_and_is_reclaimed() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let mut a = start_agent(&c, "worker-1", 1);
    wait_node_ready(&c, &a, "worker-1");
    let sc = c.ok(&["get", "storageclass"]);
    assert!(sc.contains("local-path (default)"), "{sc}");
    assert!(sc.contains("k3s-daas.io/local-path"), "{sc}");
    assert!(sc.contains("WaitForFirstConsumer"), "{sc}");

    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
"#,
    );
    let pvc = c.ok(&["get", "pvc", "data"]);
    assert!(
        pvc.contains("Pending") && pvc.contains("local-path"),
        "{pvc}"
    );

    c.ok_stdin(
        &["apply", "-f", "-"],
        &pod("writer", "echo persisted > /data/file"),
    );
    wait_for(
        &c,
        "writer Running",
        Duration::from_secs(90),
        || c.ok(&["get", "pod", "writer", "-o", "jsonpath={.status.phase}"]) == "Running",
        &a,
    );
    let pv = c.ok(&["get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}"]);
    assert!(pv.starts_with("pvc-"), "{pv}");
    let pvs = c.ok(&["get", "pv"]);
    assert!(
        pvs.contains(&pv) && pvs.contains("Bound") && pvs.contains("default/data"),
        "{pvs}"
    );
    let header = |out: &str| {
        out.lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        header(&pvs),
        "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS REASON AGE"
    );
    assert_eq!(
        header(&c.ok(&["get", "pvc"])),
        "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS AGE"
    );
    assert_eq!(
        header(&sc),
        "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE"
    );
    let ar = c.ok(&["api-resources"]);
    for want in [
        "persistentvolumeclaims pvc v1 true PersistentVolumeClaim",
        "persistentvolumes pv v1 false PersistentVolume",
        "storageclasses sc storage.k8s.io/v1 false StorageClass",
    ] {
        assert!(
            ar.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want),
            "{want} missing from:\n{ar}"
        );
    }
    let host_dir = a.dir.join("data").join("storage").join(&pv);
    wait_for(
        &c,
        "the file on the node",
        Duration::from_secs(30),
        || std::fs::read_to_string(host_dir.join("file")).is_ok_and(|s| s == "persisted\n"),
        &a,
    );

    c.ok(&["delete", "pod", "writer", "--wait=true"]);
    c.ok_stdin(&["apply", "-f", "-"], &pod("reader", "cat /data/file"));
    wait_for(
        &c,
        "the recreated pod reads the file",
        Duration::from_secs(90),
        || stdout(&c.kubectl(&["logs", "reader"])).contains("persisted"),
        &a,
    );

    // An admin's hostPath volume outside the agent's storage directory is refused by the agent.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: v1
kind: PersistentVolume
metadata: {name: escape}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /etc}
  claimRef: {namespace: default, name: evil}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: evil}
spec:
  storageClassName: ""
  volumeName: escape
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"#,
    );
    let escaper = pod("escaper", "ls /data").replace("claimName: data", "claimName: evil");
    c.ok_stdin(&["apply", "-f", "-"], &escaper);
    wait_for(
        &c,
        "the escaping volume refused",
        Duration::from_secs(60),
        || {
            let w = c.ok(&[
                "get",
                "pod",
                "escaper",
                "-o",
                "jsonpath={.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}",
            ]);
            w.contains("CreateContainerConfigError")
                && w.contains("path \"/etc\" is outside the agent's storage directory")
        },
        &a,
    );
    c.ok(&["delete", "pod", "escaper", "--wait=true"]);
    c.ok(&["delete", "pvc", "evil", "--wait=true"]);
    c.ok(&["delete", "pv", "escape", "--wait=true"]);

    c.ok(&["delete", "pod", "reader", "--wait=true"]);
    c.ok(&["delete", "pvc", "data", "--wait=true"]);
    wait_for(
        &c,
        "the volume and its data removed",
        Duration::from_secs(60),
        || {
            stdout(&c.kubectl(&["get", "pv", "-o", "name"]))
                .trim()
                .is_empty()
                && !host_dir.exists()
        },
        &a,
    );
    a.stop();
}
