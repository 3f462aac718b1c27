//! End-to-end: staking on the embedded ledger, seal tokens, and kubectl with a seal-token
//! credential (exec plugin), through real `daas` processes and the real kubectl.

use crate::common;

use std::time::{Duration, Instant};

use common::{daas, daas_ok, stderr, stdout, Cluster};

#[test]
fn stake_token_and_kubectl_with_seal_token() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
    ]);
    let chain = c.chain_url();
    let master = c.server_url();
    let aud = c.audience();
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let dir = c.dir.path();
    let alice_key = dir.join("alice.key");
    let alice = daas_ok(&["keygen", "--out", alice_key.to_str().unwrap()])
        .trim()
        .to_string();
    let k = alice_key.to_str().unwrap();
    daas_ok(&[
        "faucet",
        "--chain",
        &chain,
        "--address",
        &alice,
        "--amount",
        "5000000000",
    ]);

    // Tiered minimums: 50 MIST is below the user minimum (100).
    let o = daas(&[
        "stake", "--chain", &chain, "--key", k, "--amount", "50", "--role", "user",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("below the minimum stake"),
        "{}",
        stderr(&o)
    );
    // No token without an active stake.
    let o = daas(&["token", "issue", "--chain", &chain, "--key", k]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no active stake"), "{}", stderr(&o));

    daas_ok(&[
        "stake", "--chain", &chain, "--key", k, "--amount", "200", "--role", "user",
    ]);
    let token = daas_ok(&["token", "issue", "--chain", &chain, "--key", k])
        .trim()
        .to_string();
    assert!(token.starts_with("0x"), "{token}");

    // The credential validates on the master (seed endpoint) as a user-tier identity.
    let cred = daas_ok(&["token", "--chain", &chain, "--key", k, "--audience", &aud])
        .trim()
        .to_string();
    assert!(cred.starts_with("daas1."));
    let exec: serde_json::Value = serde_json::from_str(&daas_ok(&[
        "token",
        "--exec",
        "--chain",
        &chain,
        "--key",
        k,
        "--audience",
        &aud,
    ]))
    .unwrap();
    assert_eq!(exec["kind"], "ExecCredential");
    assert!(exec["status"]["token"]
        .as_str()
        .unwrap()
        .starts_with("daas1."));

    // Join: attested TLS, then a kubeconfig whose user is the exec plugin.
    let kc = dir.join("alice.kubeconfig");
    let out = daas_ok(&[
        "join",
        "--chain",
        &chain,
        "--key",
        k,
        "--server",
        &master,
        "--trust-root",
        root.to_str().unwrap(),
        "--out",
        kc.to_str().unwrap(),
    ]);
    let ns = crate::common::joined_namespace(&out);
    assert!(ns.starts_with("u-"), "{out}");
    let o = c.kubectl_as(&kc, &["create", "configmap", "mine", "--from-literal=a=b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = c.kubectl_as(&kc, &["get", "configmaps", "-o", "name"]);
    assert!(
        stdout(&o).contains("configmap/mine"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    // The user tier is confined to its namespace.
    let o = c.kubectl_as(&kc, &["get", "pods", "-n", "default"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("forbidden"), "{}", stderr(&o));
    assert_eq!(
        c.ok(&["get", "cm", "mine", "-n", &ns, "-o", "jsonpath={.data.a}"]),
        "b"
    );

    // A forged credential (someone else's key claiming alice's token) is refused.
    let mallory_key = dir.join("mallory.key");
    daas_ok(&["keygen", "--out", mallory_key.to_str().unwrap()]);
    let o = daas(&[
        "token",
        "--chain",
        &chain,
        "--key",
        mallory_key.to_str().unwrap(),
        "--token",
        &token,
        "--audience",
        &aud,
    ]);
    assert!(o.status.success());
    let forged = stdout(&o).trim().to_string();
    let validate = |cred: &str| {
        let body = dir.join("validate.json");
        std::fs::write(&body, serde_json::json!({"token": cred}).to_string()).unwrap();
        c.kubectl(&[
            "create",
            "--raw",
            "/api/v1/seal-token/validate",
            "-f",
            body.to_str().unwrap(),
        ])
    };
    let o = validate(&cred);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["username"], format!("daas:user:{alice}"));
    assert_eq!(v["seal_token"], token);
    // The answer is signed by the enclave key the attestation vouches for (Nautilus IntentMessage).
    let health: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/api/v1/health"])).unwrap();
    let pk: [u8; 32] = hex::decode(health["enclave"]["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let msg = daas_master::seed::validation_message(
        v["timestamp_ms"].as_u64().unwrap(),
        &token.parse().unwrap(),
        &alice.parse().unwrap(),
        true,
        0,
        v["expiry_epoch"].as_u64().unwrap(),
    );
    let sig = hex::decode(v["enclave_signature"].as_str().unwrap()).unwrap();
    assert!(
        daas_tee::verify_enclave_signature(&pk, &msg, &sig),
        "enclave signature does not verify"
    );
    let o = validate(&forged);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(
        v["valid"],
        false,
        "forged credential accepted: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        v["error"].as_str().unwrap_or("").contains("not owned by"),
        "{v}"
    );

    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(metrics.contains("daas_stake_total_mist 200"), "{metrics}");
    assert!(
        metrics.contains("daas_stakers_active{role=\"user\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("daas_token_validations_total{result=\"valid\"}"),
        "{metrics}"
    );

    // Unstaking revokes the token at once.
    daas_ok(&["unstake", "--chain", &chain, "--key", k]);
    let o = c.kubectl_as(&kc, &["get", "configmaps"]);
    assert!(
        !o.status.success(),
        "revoked token still works: {}",
        stdout(&o)
    );
    let o = daas(&["withdraw", "--chain", &chain, "--key", k]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("locked"), "{}", stderr(&o));
}

#[test]
fn silent_node_is_tainted_evicted_and_slashed() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
        // Long enough for the node's checks below on a loaded machine (each kubectl call can take
        // a second there), short enough to wait out: at 3 s the node was declared dead, slashed and
        // its token refused halfway through them.
        "--node-grace-seconds",
        "10",
        "--node-slash-delay-seconds",
        "2",
        "--default-unreachable-toleration-seconds",
        "0",
    ]);
    let chain = c.chain_url();
    let master = c.server_url();
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let dir = c.dir.path();
    let key = dir.join("bob.key");
    let bob = daas_ok(&["keygen", "--out", key.to_str().unwrap()])
        .trim()
        .to_string();
    let k = key.to_str().unwrap();
    daas_ok(&[
        "faucet",
        "--chain",
        &chain,
        "--address",
        &bob,
        "--amount",
        "5000000000",
    ]);
    let o = daas(&[
        "stake",
        "--chain",
        &chain,
        "--key",
        k,
        "--amount",
        "999",
        "--role",
        "node",
        "--node-id",
        "bob-node",
    ]);
    assert!(
        stderr(&o).contains("below the minimum stake"),
        "{}",
        stderr(&o)
    );
    daas_ok(&[
        "stake",
        "--chain",
        &chain,
        "--key",
        k,
        "--amount",
        "1000",
        "--role",
        "node",
        "--node-id",
        "bob-node",
    ]);
    daas_ok(&["token", "issue", "--chain", &chain, "--key", k]);
    // Another staker cannot take over bob's node name: node ids are unique among live stakes.
    let mallory_key = dir.join("mallory.key");
    let mallory = daas_ok(&["keygen", "--out", mallory_key.to_str().unwrap()])
        .trim()
        .to_string();
    daas_ok(&[
        "faucet",
        "--chain",
        &chain,
        "--address",
        &mallory,
        "--amount",
        "5000000000",
    ]);
    let mk = mallory_key.to_str().unwrap();
    let o = daas(&[
        "stake",
        "--chain",
        &chain,
        "--key",
        mk,
        "--amount",
        "5000",
        "--role",
        "node",
        "--node-id",
        "bob-node",
    ]);
    assert!(
        !o.status.success(),
        "a second staker took bob-node: {}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("another address holds a live stake for this --node-id"),
        "{}",
        stderr(&o)
    );
    let o = daas(&["token", "issue", "--chain", &chain, "--key", mk]);
    assert!(
        !o.status.success(),
        "mallory got a seal token without a stake: {}",
        stdout(&o)
    );
    let kc = dir.join("bob.kubeconfig");
    daas_ok(&[
        "join",
        "--chain",
        &chain,
        "--key",
        k,
        "--server",
        &master,
        "--trust-root",
        root.to_str().unwrap(),
        "--out",
        kc.to_str().unwrap(),
    ]);

    // As the node: register the Node and its Lease, then fall silent.
    // (k3s-daas.io/* labels are the master's to set: NodeRestriction refuses them from a node.)
    let node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: bob-node\n";
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["apply", "-f", "-"])
        .env("KUBECONFIG", &kc)
        .env("HOME", dir.join("home"));
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(node.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = c.kubectl_as(&kc,
        &[
            "patch",
            "node",
            "bob-node",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady"}]}}"#,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // NodeRestriction: the node cannot touch another node.
    let o = c.kubectl_as(&kc, &["label", "node", "bob-node", "x=y"]);
    assert!(o.status.success(), "{}", stderr(&o));
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata: {name: other-node}\n",
    );
    let o = c.kubectl_as(&kc, &["label", "node", "other-node", "x=y"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("forbidden"), "{}", stderr(&o));
    // other-node stays alive (Ready, Lease renewed): with every node silent the master would
    // assume it is the one cut off and neither evict nor slash anyone.
    c.ok(&[
        "patch",
        "node",
        "other-node",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady"}]}}"#,
    ]);
    let _alive = crate::lifecycle::KeepAlive::start(&c, "other-node");
    // The seed heartbeat endpoint renews the node's Lease; only that node may call it.
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    let o = c.kubectl_as(
        &kc,
        &[
            "create",
            "--raw",
            "/api/v1/nodes/bob-node/heartbeat",
            "-f",
            empty.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"status\":\"ok\""), "{}", stdout(&o));
    assert_eq!(
        c.ok(&[
            "get",
            "lease",
            "bob-node",
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.spec.holderIdentity}"
        ]),
        "bob-node"
    );
    let o = c.kubectl_as(
        &kc,
        &[
            "create",
            "--raw",
            "/api/v1/nodes/other-node/heartbeat",
            "-f",
            empty.to_str().unwrap(),
        ],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("cannot heartbeat"),
        "{}",
        stderr(&o)
    );

    // A pod bound to the node, to be evicted.
    c.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: victim}\nspec:\n  nodeName: bob-node\n  containers: [{name: c, image: busybox}]\n");
    // NodeRestriction on pods: status of its own pods only.
    // (Bound to a node name with no Node, so no node lifecycle action races with the checks below.)
    c.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata: {name: elsewhere}\nspec:\n  nodeName: ghost-node\n  containers: [{name: c, image: busybox}]\n");
    let running = r#"{"status":{"phase":"Running"}}"#;
    let o = c.kubectl_as(
        &kc,
        &[
            "patch",
            "pod",
            "victim",
            "--subresource=status",
            "--type=merge",
            "-p",
            running,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = c.kubectl_as(
        &kc,
        &[
            "patch",
            "pod",
            "elsewhere",
            "--subresource=status",
            "--type=merge",
            "-p",
            running,
        ],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("bound to itself"),
        "{}",
        stderr(&o)
    );
    let o = c.kubectl_as(&kc, &["delete", "pod", "elsewhere"]);
    assert!(
        !o.status.success() && stderr(&o).contains("forbidden"),
        "{}",
        stderr(&o)
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = c.ok(&[
            "get",
            "node",
            "bob-node",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        let slashed = c.ok(&[
            "get",
            "node",
            "bob-node",
            "-o",
            "jsonpath={.metadata.annotations.k3s-daas\\.io/failure-reported-at}",
        ]);
        if ready == "Unknown" && !slashed.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node not declared dead: ready={ready} reported={slashed}\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let taints = c.ok(&[
        "get",
        "node",
        "bob-node",
        "-o",
        "jsonpath={.spec.taints[*].key}",
    ]);
    assert!(
        taints.contains("node.kubernetes.io/unreachable"),
        "{taints}"
    );
    assert!(c.fails(&["get", "pod", "victim"]).contains("NotFound"));
    assert!(
        c.ok(&["get", "node"]).contains("NotReady")
            || c.ok(&["get", "node", "bob-node"]).contains("Unknown")
    );

    // The ledger shows the slashed stake (10% by default) and the token no longer validates.
    let acct: serde_json::Value = serde_json::from_str(&daas_ok(&[
        "account",
        "--chain",
        &chain,
        "--address",
        &bob,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(acct["stake"]["status"], 2, "{acct}");
    assert_eq!(acct["stake"]["amount"], 900, "{acct}");
    assert_eq!(acct["stake"]["slashed_total"], 100, "{acct}");
    assert_eq!(acct["seal_tokens"][0]["valid"], false, "{acct}");
    let o = c.kubectl_as(&kc, &["get", "nodes"]);
    assert!(!o.status.success(), "slashed node's credential still works");
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains("daas_slashing_events_total{node=\"bob-node\"} 1"),
        "{metrics}"
    );
}
