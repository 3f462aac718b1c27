//! End-to-end: `daas up` plus one real `daas agent` (its own containerd, runc, CNI); real kubectl
//! runs a busybox pod, reads its logs (also with -f), and deleting the pod stops the container.
//! Needs root and containerd/runc/containernetworking-plugins/busybox-static (scripts/test.sh
//! installs them).

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::agent::{daas_ok, start_agent, wait_for, wait_node_ready};
use common::{stderr, stdout, Cluster, Streaming};

fn process_running(marker: &str) -> bool {
    let o = Command::new("pgrep").args(["-f", marker]).output().unwrap();
    o.status.success()
}

#[test]
fn agent_runs_busybox_pod_with_logs() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "2",
    ]);
    let mut a = start_agent(&c, "worker-1", 1);
    wait_node_ready(&c, &a, "worker-1");
    let nodes = c.ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        nodes.contains("worker-1") && nodes.contains("Ready"),
        "{nodes}"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "lease",
            "worker-1",
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.spec.holderIdentity}"
        ]),
        "worker-1"
    );

    let pod = r#"apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo hello from $GREETING; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done; sleep 3607"]
    env: [{name: GREETING, value: k3s-daas}]
    resources: {limits: {memory: 64Mi, cpu: 250m}}
"#;
    c.ok_stdin(&["apply", "-f", "-"], pod);
    wait_for(
        &c,
        "pod Running",
        Duration::from_secs(90),
        || c.ok(&["get", "pod", "hello", "-o", "jsonpath={.status.phase}"]) == "Running",
        &a,
    );
    let wide = c.ok(&["get", "pod", "hello", "-o", "wide"]);
    assert!(
        wide.contains("worker-1") && wide.contains(&a.pod_prefix),
        "{wide}"
    );
    assert!(wide.contains("1/1"), "{wide}");

    wait_for(
        &c,
        "log line",
        Duration::from_secs(30),
        || stdout(&c.kubectl(&["logs", "hello"])).contains("hello from k3s-daas"),
        &a,
    );
    let f = Streaming::start(&c, &["logs", "-f", "hello"]);
    f.wait_for(Duration::from_secs(20), |l| l.starts_with("tick "));
    let before = f.wait_for(Duration::from_secs(20), |l| l.starts_with("tick "));
    assert!(!before.is_empty());
    drop(f);

    // The agent's Prometheus endpoint answers only the attested master: anonymous 401; readers
    // go through the master's node proxy (`nodes/metrics`).
    let port = c.ok(&[
        "get",
        "node",
        "worker-1",
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ]);
    let direct = Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("https://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&direct).trim(), "401");
    let m = c.ok(&["get", "--raw", "/api/v1/nodes/worker-1/proxy/metrics"]);
    assert!(m.contains("daas_agent_pod_starts_total 1"), "{m}");
    assert!(m.contains("daas_agent_pods{state=\"ready\"} 1"), "{m}");
    assert!(
        m.contains("daas_agent_lease_renewals_total{result=\"ok\"}"),
        "{m}"
    );
    // The log endpoint refuses callers that are not the attested master.
    let o = Command::new("curl")
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("https://127.0.0.1:{port}/containerLogs/default/hello/main"),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "401");

    // The agent survives its own crash (SIGKILL) and containerd's: the pod keeps running, untouched.
    let cid = c.ok(&[
        "get",
        "pod",
        "hello",
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
    ]);
    a.kill_hard();
    a.spawn();
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("pkill")
        .arg("-9")
        .arg("-f")
        .arg(format!(
            "containerd --config {}",
            a.dir.join("data/runtime/containerd/config.toml").display()
        ))
        .status();
    wait_for(
        &c,
        "agent back after restarts",
        Duration::from_secs(60),
        || {
            a.log().contains("containerd exited; restarting it")
                || a.log().matches("node registered").count() >= 2
        },
        &a,
    );
    std::thread::sleep(Duration::from_secs(4));
    wait_for(
        &c,
        "pod still Running with the same container",
        Duration::from_secs(60),
        || {
            c.ok(&["get", "pod", "hello", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}"])
            == format!("Running {cid} 0")
        },
        &a,
    );
    wait_for(
        &c,
        "logs after restart",
        Duration::from_secs(30),
        || stdout(&c.kubectl(&["logs", "hello", "--tail=1"])).starts_with("tick "),
        &a,
    );

    // A pod that runs to completion.
    c.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: once}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: c, image: localhost/k3s-daas/busybox:latest, imagePullPolicy: IfNotPresent, command: [sh, -c, 'echo done; exit 0']}\n");
    wait_for(
        &c,
        "pod Succeeded",
        Duration::from_secs(60),
        || c.ok(&["get", "pod", "once", "-o", "jsonpath={.status.phase}"]) == "Succeeded",
        &a,
    );
    assert!(stdout(&c.kubectl(&["logs", "once"])).contains("done"));

    // Deleting the pod stops its container.
    let o = c.kubectl(&["delete", "pod", "hello", "--wait", "--timeout=60s"]);
    assert!(o.status.success(), "{}\nagent:\n{}", stderr(&o), a.log());
    assert!(c.fails(&["get", "pod", "hello"]).contains("NotFound"));
    wait_for(
        &c,
        "container gone",
        Duration::from_secs(20),
        || !process_running("hello from"),
        &a,
    );
    c.ok(&["delete", "pod", "once", "--wait", "--timeout=60s"]);

    // Env from ConfigMap/Secret/fieldRef and configMap/secret/emptyDir volumes. The ConfigMap does
    // not exist yet: the pod waits with CreateContainerConfigError, then starts once it does.
    c.ok_stdin(&["apply", "-f", "-"], r#"apiVersion: v1
kind: Pod
metadata: {name: withvol}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: cfg, configMap: {name: app-cfg}}
  - {name: creds, secret: {secretName: app-secret}}
  - {name: scratch, emptyDir: {}}
  containers:
  - name: c
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo "file=$(cat /cfg/greeting) secret=$(cat /creds/password) env=$MODE pw=$PW me=$ME"; echo ok > /scratch/f; cat /scratch/f; sleep 3612']
    env:
    - {name: MODE, valueFrom: {configMapKeyRef: {name: app-cfg, key: mode}}}
    - {name: PW, valueFrom: {secretKeyRef: {name: app-secret, key: password}}}
    - {name: ME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    volumeMounts:
    - {name: cfg, mountPath: /cfg}
    - {name: creds, mountPath: /creds, readOnly: true}
    - {name: scratch, mountPath: /scratch}
"#);
    wait_for(
        &c,
        "CreateContainerConfigError",
        Duration::from_secs(30),
        || {
            c.ok(&["get", "pod", "withvol"])
                .contains("CreateContainerConfigError")
        },
        &a,
    );
    c.ok(&[
        "create",
        "configmap",
        "app-cfg",
        "--from-literal=greeting=hi",
        "--from-literal=mode=fast",
    ]);
    c.ok(&[
        "create",
        "secret",
        "generic",
        "app-secret",
        "--from-literal=password=s3cret",
    ]);
    wait_for(
        &c,
        "volume pod logs",
        Duration::from_secs(90),
        || {
            stdout(&c.kubectl(&["logs", "withvol"]))
                .contains("file=hi secret=s3cret env=fast pw=s3cret me=withvol")
        },
        &a,
    );
    assert!(stdout(&c.kubectl(&["logs", "withvol"])).contains("\nok"));
    c.ok(&["delete", "pod", "withvol", "--wait", "--timeout=60s"]);

    // Leaving: cordon, evict, unstake (the lockup keeps the stake until it ends).
    c.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: last}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: c, image: localhost/k3s-daas/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, '3611']}\n");
    wait_for(
        &c,
        "pod last Running",
        Duration::from_secs(60),
        || c.ok(&["get", "pod", "last", "-o", "jsonpath={.status.phase}"]) == "Running",
        &a,
    );
    let out = daas_ok(&["leave", "--config", a.config.to_str().unwrap()]);
    assert!(out.contains("drained"), "{out}");
    assert!(c
        .ok(&["get", "node", "worker-1"])
        .contains("SchedulingDisabled"));
    assert!(c.fails(&["get", "pod", "last"]).contains("NotFound"));
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a.config).unwrap()).unwrap();
    let chain = cfg["sui_rpc_endpoint"].as_str().unwrap();
    let acct: serde_json::Value = serde_json::from_str(&daas_ok(&[
        "account",
        "--chain",
        chain,
        "--address",
        cfg["sui_wallet_address"].as_str().unwrap(),
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(acct["stake"]["status"], 1, "unbonding: {acct}");
    let o = Command::new(env!("CARGO_BIN_EXE_daas"))
        .args([
            "withdraw",
            "--chain",
            chain,
            "--key",
            cfg["sui_key_file"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("locked"),
        "{}",
        stderr(&o)
    );
}

fn node_of_pods(c: &Cluster) -> Vec<(String, String, String)> {
    c.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{"\n"}{end}"#,
    ])
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3).then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
    })
    .collect()
}

#[test]
fn killed_node_is_slashed_and_its_pods_move() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
        "--node-grace-seconds",
        "10",
        "--node-slash-delay-seconds",
        "2",
        // Pods tolerate the unreachable node for 1 s (upstream's default: 300 s).
        "--default-unreachable-toleration-seconds",
        "1",
    ]);
    let chain = std::fs::read_to_string(c.data_dir().join("chain-url"))
        .unwrap()
        .trim()
        .to_string();
    let mut a1 = start_agent(&c, "worker-a", 2);
    let a2 = start_agent(&c, "worker-b", 3);
    wait_node_ready(&c, &a1, "worker-a");
    wait_node_ready(&c, &a2, "worker-b");

    let deploy = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: localhost/k3s-daas/busybox:latest
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "echo serving; sleep 3609"]
        resources: {requests: {cpu: 10m, memory: 16Mi}}
"#;
    c.ok_stdin(&["apply", "-f", "-"], deploy);
    let out = c.kubectl(&["rollout", "status", "deploy/web", "--timeout=120s"]);
    assert!(
        out.status.success(),
        "{}{}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        a1.log(),
        a2.log()
    );
    let pods = node_of_pods(&c);
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(pods.iter().all(|p| p.2 == "Running"), "{pods:?}");
    let nodes: std::collections::BTreeSet<&str> = pods.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(nodes.len(), 2, "spread over both nodes: {pods:?}");

    // Node a's key, to find its stake on the ledger.
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a1.config).unwrap()).unwrap();
    let addr_a = cfg["sui_wallet_address"].as_str().unwrap().to_string();
    let aud = c.audience();
    let cred_a = daas_ok(&[
        "token",
        "--chain",
        &chain,
        "--key",
        cfg["sui_key_file"].as_str().unwrap(),
        "--audience",
        &aud,
    ])
    .trim()
    .to_string();

    // SIGKILL agent a: its lease stops, the master declares it dead.
    a1.kill_hard();
    wait_for(
        &c,
        "worker-a NotReady, tainted",
        Duration::from_secs(60),
        || {
            let ready = c.ok(&[
                "get",
                "node",
                "worker-a",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            let taints = c.ok(&[
                "get",
                "node",
                "worker-a",
                "-o",
                "jsonpath={.spec.taints[*].key}",
            ]);
            ready == "Unknown" && taints.contains("node.kubernetes.io/unreachable")
        },
        &a2,
    );
    // Its pods are recreated on worker-b and run there.
    wait_for(
        &c,
        "all 3 replicas Running on worker-b",
        Duration::from_secs(90),
        || {
            let pods = node_of_pods(&c);
            pods.len() == 3 && pods.iter().all(|p| p.1 == "worker-b" && p.2 == "Running")
        },
        &a2,
    );
    let out = c.kubectl(&["rollout", "status", "deploy/web", "--timeout=60s"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The ledger shows the slashed stake, and the killed node's credential is refused.
    wait_for(
        &c,
        "slash on the ledger",
        Duration::from_secs(30),
        || {
            let acct: serde_json::Value = serde_json::from_str(&daas_ok(&[
                "account",
                "--chain",
                &chain,
                "--address",
                &addr_a,
                "-o",
                "json",
            ]))
            .unwrap();
            acct["stake"]["status"] == 2 && acct["stake"]["amount"] == 900
        },
        &a2,
    );
    let body = c.dir.path().join("v.json");
    std::fs::write(&body, serde_json::json!({"token": cred_a}).to_string()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&c.ok(&[
        "create",
        "--raw",
        "/api/v1/seal-token/validate",
        "-f",
        body.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["valid"], false, "{v}");
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains("daas_slashing_events_total{node=\"worker-a\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("daas_nodes{condition=\"Ready\",status=\"Unknown\"} 1"),
        "{metrics}"
    );
    c.ok(&["delete", "deploy", "web"]);
    wait_for(
        &c,
        "pods gone",
        Duration::from_secs(60),
        || node_of_pods(&c).is_empty(),
        &a2,
    );
}

/// The text of `log` between the lines `==<name>==` and `==end-<name>==`.
fn section(log: &str, name: &str) -> Option<String> {
    let start = format!("=={name}==\n");
    let end = format!("\n==end-{name}==");
    let from = log.find(&start)? + start.len();
    let to = from + log[from..].find(&end)?;
    Some(log[from..to].to_string())
}

fn token_review(c: &Cluster, token: &str) -> serde_json::Value {
    let review = serde_json::json!({"apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview", "spec": {"token": token}});
    let out = c.ok_stdin(&["create", "-f", "-", "-o", "json"], &review.to_string());
    serde_json::from_str(&out).expect("TokenReview JSON")
}

#[test]
fn pod_gets_its_service_account_token_and_downward_api() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-1", 1);
    wait_node_ready(&c, &a, "worker-1");
    // The serviceaccount and root-CA controllers fill the namespace.
    wait_for(
        &c,
        "default ServiceAccount and kube-root-ca.crt",
        Duration::from_secs(30),
        || {
            c.kubectl(&["get", "serviceaccount", "default"])
                .status
                .success()
                && c.kubectl(&["get", "configmap", "kube-root-ca.crt"])
                    .status
                    .success()
        },
        &a,
    );
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: creds, labels: {{app: creds, tier: back-end}}}}
spec:
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "for f in namespace ca.crt token; do echo ==$f==; cat {sa}/$f; echo; echo ==end-$f==; done; echo ==labels==; cat /etc/podinfo/labels; echo; echo ==end-labels==; sleep 3600"]
    volumeMounts: [{{name: podinfo, mountPath: /etc/podinfo}}]
  volumes:
  - name: podinfo
    downwardAPI:
      items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]
"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod);
    wait_for(
        &c,
        "pod printed its credentials",
        Duration::from_secs(90),
        || stdout(&c.kubectl(&["logs", "creds"])).contains("==end-labels=="),
        &a,
    );
    let log = stdout(&c.kubectl(&["logs", "creds"]));
    let spec = c.ok(&["get", "pod", "creds", "-o", "json"]);
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(spec["spec"]["serviceAccountName"], "default");
    assert!(spec["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"].as_str().unwrap().starts_with("kube-api-access-")));

    assert_eq!(
        section(&log, "namespace").as_deref(),
        Some("default"),
        "{log}"
    );
    let ca = c.ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ]);
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");
    assert_eq!(section(&log, "ca.crt").unwrap().trim(), ca.trim(), "{log}");
    assert_eq!(
        section(&log, "labels").as_deref(),
        Some("app=\"creds\"\ntier=\"back-end\""),
        "{log}"
    );
    let token = section(&log, "token").unwrap();
    let v = token_review(&c, &token);
    assert_eq!(v["status"]["authenticated"], true, "{v}");
    assert_eq!(
        v["status"]["user"]["username"], "system:serviceaccount:default:default",
        "{v}"
    );
    assert_eq!(
        v["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        serde_json::json!(["creds"]),
        "{v}"
    );

    // A pod opting out gets no credentials.
    let quiet = r#"apiVersion: v1
kind: Pod
metadata: {name: quiet}
spec:
  automountServiceAccountToken: false
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "ls /var/run/secrets/kubernetes.io/serviceaccount || echo no-credentials; sleep 3600"]
"#;
    c.ok_stdin(&["apply", "-f", "-"], quiet);
    wait_for(
        &c,
        "opted-out pod ran",
        Duration::from_secs(90),
        || stdout(&c.kubectl(&["logs", "quiet"])).contains("no-credentials"),
        &a,
    );

    // The token dies with its pod.
    c.ok(&["delete", "pod", "creds", "--wait=true", "--timeout=60s"]);
    wait_for(
        &c,
        "token of the deleted pod refused",
        Duration::from_secs(90),
        || token_review(&c, &token)["status"]["authenticated"] != true,
        &a,
    );
}
