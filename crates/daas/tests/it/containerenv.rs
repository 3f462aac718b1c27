//! End-to-end: what a container sees of its pod, with one real `daas agent` (containerd, runc,
//! CNI) and real kubectl: `$(VAR)` expansion, service and downward API variables (with
//! `status.podIP`), the managed `/etc/hosts` with hostAliases, subPath and subPathExpr mounts,
//! runAsUser/runAsGroup/supplementalGroups/fsGroup, a read-only root filesystem, the memory limit
//! in the container's cgroup, a memory-backed emptyDir, termination messages (file and
//! FallbackToLogsOnError), and the Waiting reasons of pods the node cannot run. Needs root.

use crate::common;

use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stdout, Cluster};

const BUSYBOX: &str = "localhost/k3s-daas/busybox:latest";

fn value<'a>(log: &'a str, key: &str) -> Option<&'a str> {
    log.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn jsonpath(c: &Cluster, pod: &str, path: &str) -> String {
    stdout(&c.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]))
}

#[test]
fn containers_see_their_environment_mounts_and_limits() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-env", 9);
    wait_node_ready(&c, &a, "worker-env");
    let setup = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, 1invalid: skipped}
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 8765, protocol: TCP}]
"#;
    c.ok_stdin(&["apply", "-f", "-"], setup);
    wait_for(
        &c,
        "backend service has a cluster IP",
        Duration::from_secs(30),
        || !jsonpath_svc(&c).is_empty(),
        &a,
    );
    let svc_ip = jsonpath_svc(&c);

    let script = [
        "echo URL=$URL",
        "echo POD_IP=$POD_IP",
        "echo HOST_IP=$HOST_IP",
        "echo NODE=$NODE",
        "echo MEM=$MEM_LIMIT",
        "echo GREET=$CFG_greeting",
        "echo OPT=${OPT-unset}",
        "echo INVALID=$(env | grep -c 1invalid=)",
        "echo PLAIN=$greeting",
        "echo SVC_HOST=$BACKEND_SERVICE_HOST",
        "echo SVC_PORT=$BACKEND_SERVICE_PORT_HTTP",
        "echo SVC_LINK=$BACKEND_PORT_8765_TCP",
        "echo K8S=${KUBERNETES_SERVICE_HOST-unset}",
        // Expanded by the kubelet before the shell runs.
        "echo ARG=$(CFG_greeting)-$(POD_IP)",
        "echo ID=`id`",
        "echo HOSTS_ALIAS=`grep -c 'foo.remote' /etc/hosts`",
        "echo HOSTS_SELF=`grep -c \"^$POD_IP\tenv$\" /etc/hosts`",
        "echo HOSTNAME=`hostname`",
        "echo x > /byname/marker && echo y > /fixed/marker",
        "echo SUBEXPR=`cat /scratch/env/marker`",
        "echo SUBPATH=`cat /scratch/fixed/marker`",
        "echo FILESUB=`cat /etc/greeting`",
        "echo SCRATCH_GROUP=`stat -c %g /scratch`",
        "touch /rootfile 2>/dev/null && echo ROOTFS=writable || echo ROOTFS=readonly",
        "echo MEMCG=`cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes`",
        "echo TMPFS=`grep ' /mem ' /proc/mounts | cut -d' ' -f1,3`",
        "echo TMPFS_SIZE=`df -k /mem | tail -1 | awk '{print $2}'`",
        "echo DONE-$CFG_greeting > /dev/termination-log",
        "echo ==done==",
    ]
    .join("; ");
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: env}}
spec:
  restartPolicy: Never
  hostAliases: [{{ip: 123.45.67.89, hostnames: [foo.remote, bar.remote]}}]
  securityContext: {{runAsUser: 1234, runAsGroup: 2345, supplementalGroups: [3456], fsGroup: 4567}}
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sh, -c]
    args: [{script:?}]
    securityContext: {{readOnlyRootFilesystem: true}}
    resources:
      limits: {{memory: 64Mi, cpu: 500m}}
    envFrom: [{{prefix: CFG_, configMapRef: {{name: cfg}}}}, {{configMapRef: {{name: cfg}}}}]
    env:
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: HOST_IP, valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}}}
    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    - {{name: MEM_LIMIT, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: URL, value: "http://$(POD_IP):80/$(CFG_greeting)"}}
    - {{name: OPT, valueFrom: {{configMapKeyRef: {{name: cfg, key: nope, optional: true}}}}}}
    volumeMounts:
    - {{name: scratch, mountPath: /scratch}}
    - {{name: scratch, mountPath: /byname, subPathExpr: "$(POD_NAME)"}}
    - {{name: scratch, mountPath: /fixed, subPath: fixed}}
    - {{name: cfgvol, mountPath: /etc/greeting, subPath: greeting}}
    - {{name: mem, mountPath: /mem}}
  volumes:
  - {{name: scratch, emptyDir: {{}}}}
  - {{name: mem, emptyDir: {{medium: Memory, sizeLimit: 16Mi}}}}
  - {{name: cfgvol, configMap: {{name: cfg}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: fails}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: IfNotPresent
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, "echo first-line; echo oops-from-the-log; exit 3"]
---
apiVersion: v1
kind: Pod
metadata: {{name: nokey}}
spec:
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    env: [{{name: X, valueFrom: {{configMapKeyRef: {{name: cfg, key: nope}}}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: rootimage}}
spec:
  securityContext: {{runAsNonRoot: true}}
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
---
apiVersion: v1
kind: Pod
metadata: {{name: badimage}}
spec:
  containers:
  - name: main
    image: "localhost/Bad/Image"
    command: [sleep, "3600"]
"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod);
    wait_for(
        &c,
        "pod env finished",
        Duration::from_secs(90),
        || jsonpath(&c, "env", "{.status.phase}") == "Succeeded",
        &a,
    );
    let log = stdout(&c.kubectl(&["logs", "env"]));
    assert!(log.contains("==done=="), "{log}");
    let pod_ip = jsonpath(&c, "env", "{.status.podIP}");
    assert!(!pod_ip.is_empty());
    let v = |k: &str| value(&log, k).unwrap_or_else(|| panic!("{k} missing in\n{log}"));
    assert_eq!(v("POD_IP"), pod_ip, "{log}");
    assert_eq!(v("URL"), format!("http://{pod_ip}:80/hello"));
    assert_eq!(v("ARG"), format!("hello-{pod_ip}"));
    assert_eq!(v("HOST_IP"), jsonpath(&c, "env", "{.status.hostIP}"));
    assert_eq!(v("NODE"), "worker-env");
    assert_eq!(v("MEM"), "64");
    assert_eq!(v("GREET"), "hello");
    assert_eq!(v("OPT"), "unset");
    // CFG_1invalid is a valid name, 1invalid is not (skipped).
    assert_eq!(v("INVALID"), "1");
    assert_eq!(v("PLAIN"), "hello");
    assert_eq!(v("SVC_HOST"), svc_ip);
    assert_eq!(v("SVC_PORT"), "8765");
    assert_eq!(v("SVC_LINK"), format!("tcp://{svc_ip}:8765"));
    assert_ne!(v("K8S"), "unset");
    let id = v("ID");
    assert!(id.starts_with("uid=1234 gid=2345"), "{id}");
    assert!(id.contains("3456") && id.contains("4567"), "{id}");
    assert_eq!(v("HOSTS_ALIAS"), "1");
    assert_eq!(v("HOSTS_SELF"), "1");
    assert_eq!(v("HOSTNAME"), "env");
    assert_eq!(v("SUBEXPR"), "x");
    assert_eq!(v("SUBPATH"), "y");
    assert_eq!(v("FILESUB"), "hello");
    assert_eq!(v("SCRATCH_GROUP"), "4567");
    assert_eq!(v("ROOTFS"), "readonly");
    assert_eq!(v("MEMCG"), (64u64 << 20).to_string());
    assert_eq!(v("TMPFS"), "tmpfs tmpfs");
    assert_eq!(v("TMPFS_SIZE"), "16384");
    assert_eq!(
        jsonpath(
            &c,
            "env",
            "{.status.containerStatuses[0].state.terminated.message}"
        ),
        "DONE-hello\n"
    );
    assert_eq!(jsonpath(&c, "env", "{.status.qosClass}"), "Guaranteed");

    wait_for(
        &c,
        "pod fails finished",
        Duration::from_secs(60),
        || jsonpath(&c, "fails", "{.status.phase}") == "Failed",
        &a,
    );
    assert_eq!(
        jsonpath(
            &c,
            "fails",
            "{.status.containerStatuses[0].state.terminated.message}"
        ),
        "first-line\noops-from-the-log\n"
    );

    let waiting = |pod: &str| {
        (
            jsonpath(
                &c,
                pod,
                "{.status.containerStatuses[0].state.waiting.reason}",
            ),
            jsonpath(
                &c,
                pod,
                "{.status.containerStatuses[0].state.waiting.message}",
            ),
        )
    };
    for (pod, reason, message) in [
        (
            "nokey",
            "CreateContainerConfigError",
            "couldn't find key nope in ConfigMap default/cfg",
        ),
        (
            "rootimage",
            "CreateContainerConfigError",
            "container has runAsNonRoot and image will run as root",
        ),
        (
            "badimage",
            "InvalidImageName",
            "couldn't parse image reference \"localhost/Bad/Image\": invalid reference format",
        ),
    ] {
        wait_for(
            &c,
            &format!("{pod} waits with {reason}"),
            Duration::from_secs(60),
            || waiting(pod).0 == reason,
            &a,
        );
        let (_, m) = waiting(pod);
        assert!(m.contains(message), "{pod}: {m}");
        assert_eq!(jsonpath(&c, pod, "{.status.phase}"), "Pending");
    }
}

fn jsonpath_svc(c: &Cluster) -> String {
    stdout(&c.kubectl(&[
        "get",
        "service",
        "backend",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]))
}
