//! End-to-end multi-tenancy against a real `daas up` with the real kubectl: a staked user cannot
//! run root pods or place pods, and a staked node reads only the Secrets of pods bound to it and
//! writes only its own Node without restricted labels.

use crate::common;

use std::path::{Path, PathBuf};

use common::{stderr, stdout, Cluster};

/// kubectl as `kubeconfig` must fail; returns stderr.
#[track_caller]
fn refused(c: &Cluster, kubeconfig: &Path, args: &[&str]) -> String {
    let o = c.kubectl_as(kubeconfig, args);
    assert!(
        !o.status.success(),
        "kubectl {args:?} unexpectedly succeeded: {}",
        stdout(&o)
    );
    stderr(&o)
}

#[track_caller]
fn allowed(c: &Cluster, kubeconfig: &Path, args: &[&str]) -> String {
    let o = c.kubectl_as(kubeconfig, args);
    assert!(
        o.status.success(),
        "kubectl {args:?} failed: {}",
        stderr(&o)
    );
    stdout(&o)
}

/// Stake with `stake`, get a seal token and join; returns the kubeconfig and `daas join`'s output.
fn staked(c: &Cluster, chain: &str, name: &str, stake: &[&str]) -> (PathBuf, String) {
    let (key, _) = c.staker(chain, name, stake);
    c.join(chain, &key)
}

fn file(c: &Cluster, name: &str, content: &str) -> String {
    let p = c.dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    p.to_str().unwrap().to_string()
}

const RESTRICTED_SPEC: &str = "  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";

#[test]
fn users_and_nodes_stay_in_their_lanes() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
    ]);
    let chain = c.chain_url();

    // ---- a staked user
    let (alice, out) = staked(&c, &chain, "alice", &["--amount", "200", "--role", "user"]);
    let ns = crate::common::joined_namespace(&out);
    assert!(ns.starts_with("u-"), "{out}");

    let root = file(&c, "root.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: root}\nspec:\n  hostNetwork: true\n  hostPID: true\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {privileged: true}\n    volumeMounts: [{name: host, mountPath: /host}]\n  volumes:\n  - name: host\n    hostPath: {path: /}\n");
    let e = refused(&c, &alice, &["apply", "-f", &root]);
    assert!(e.contains("Error from server (Forbidden)"), "{e}");
    for needle in [
        "pods \"root\" is forbidden: violates PodSecurity \"restricted:latest\"",
        "privileged (container \"c\" must not set securityContext.privileged=true)",
        "host namespaces (hostNetwork=true, hostPID=true)",
        "restricted volume types (volume \"host\" uses restricted volume type \"hostPath\")",
        "allowPrivilegeEscalation != false",
        "runAsNonRoot != true",
        "seccompProfile",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in {e}");
    }

    let pinned = file(&c, "pinned.yaml", &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: pinned}}\nspec:\n  nodeName: bob-node\n{RESTRICTED_SPEC}"));
    let e = refused(&c, &alice, &["apply", "-f", &pinned]);
    assert!(
        e.contains("Error from server (Forbidden)")
            && e.contains("pods \"pinned\" is forbidden: spec.nodeName: Forbidden"),
        "{e}"
    );

    let ok = file(
        &c,
        "ok.yaml",
        &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: ok}}\nspec:\n{RESTRICTED_SPEC}"),
    );
    assert!(allowed(&c, &alice, &["create", "-f", &ok]).contains("pod/ok created"));

    let binding = file(
        &c,
        "binding.json",
        r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"ok"},"target":{"apiVersion":"v1","kind":"Node","name":"bob-node"}}"#,
    );
    let e = refused(
        &c,
        &alice,
        &[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/{ns}/pods/ok/binding"),
            "-f",
            &binding,
        ],
    );
    assert!(
        e.contains("cannot create resource \\\"pods/binding\\\"")
            || e.contains("cannot create resource \"pods/binding\""),
        "{e}"
    );
    // The user cannot relabel its namespace to escape the restricted level.
    let e = refused(
        &c,
        &alice,
        &["label", "namespace", &ns, "k3s-daas.io/tier-"],
    );
    assert!(e.contains("cannot patch resource \"namespaces\""), "{e}");

    // ---- a staked node
    let (bob, _) = staked(
        &c,
        &chain,
        "bob",
        &[
            "--amount",
            "1000",
            "--role",
            "node",
            "--node-id",
            "bob-node",
        ],
    );
    c.ok(&[
        "create",
        "secret",
        "generic",
        "root-secret",
        "-n",
        "kube-system",
        "--from-literal=k=v",
    ]);
    allowed(
        &c,
        &alice,
        &[
            "create",
            "secret",
            "generic",
            "private",
            "--from-literal=k=v",
        ],
    );
    allowed(
        &c,
        &alice,
        &[
            "create",
            "secret",
            "generic",
            "shared",
            "--from-literal=k=v",
        ],
    );
    // The scheduler's work, done by the admin: a pod of alice's bound to bob-node, using "shared".
    c.ok_stdin(&["apply", "-n", &ns, "-f", "-"], &format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: bound}}\nspec:\n  nodeName: bob-node\n  volumes: [{{name: s, secret: {{secretName: shared}}}}]\n{RESTRICTED_SPEC}"));

    let relation = "no relationship found between node 'bob-node' and this object";
    let e = refused(
        &c,
        &bob,
        &["get", "secret", "root-secret", "-n", "kube-system"],
    );
    assert!(
        e.contains("Error from server (Forbidden)")
            && e.contains("secrets \"root-secret\" is forbidden")
            && e.contains(relation),
        "{e}"
    );
    let e = refused(&c, &bob, &["get", "secret", "private", "-n", &ns]);
    assert!(
        e.contains("secrets \"private\" is forbidden") && e.contains(relation),
        "{e}"
    );
    let e = refused(&c, &bob, &["get", "secrets", "-n", &ns]);
    assert!(e.contains("cannot list resource \"secrets\""), "{e}");
    assert_eq!(
        allowed(
            &c,
            &bob,
            &[
                "get",
                "secret",
                "shared",
                "-n",
                &ns,
                "-o",
                "jsonpath={.data.k}"
            ]
        ),
        "dg=="
    );

    let e = refused(
        &c,
        &bob,
        &[
            "create",
            "-f",
            &file(
                &c,
                "other.yaml",
                "apiVersion: v1\nkind: Node\nmetadata: {name: other-node}\n",
            ),
        ],
    );
    assert!(
        e.contains("Error from server (Forbidden)")
            && e.contains("node \"bob-node\" is not allowed to modify node \"other-node\""),
        "{e}"
    );
    let e = refused(&c, &bob, &["create", "-f", &file(&c, "selfstaked.yaml", "apiVersion: v1\nkind: Node\nmetadata:\n  name: bob-node\n  labels: {k3s-daas.io/staked: \"true\"}\n")]);
    assert!(
        e.contains("is not allowed to set the following labels: k3s-daas.io/staked"),
        "{e}"
    );
    let own = file(&c, "own.yaml", "apiVersion: v1\nkind: Node\nmetadata:\n  name: bob-node\n  labels: {kubernetes.io/hostname: bob-node, kubernetes.io/os: linux}\n");
    assert!(allowed(&c, &bob, &["create", "-f", &own]).contains("node/bob-node created"));
    let e = refused(
        &c,
        &bob,
        &[
            "label",
            "--overwrite",
            "node",
            "bob-node",
            "k3s-daas.io/staked=false",
        ],
    );
    assert!(
        e.contains("is not allowed to modify labels: k3s-daas.io/staked"),
        "{e}"
    );
    let e = refused(
        &c,
        &bob,
        &[
            "label",
            "node",
            "bob-node",
            "node-role.kubernetes.io/master=",
        ],
    );
    assert!(
        e.contains("is not allowed to modify labels: node-role.kubernetes.io/master"),
        "{e}"
    );
    allowed(
        &c,
        &bob,
        &[
            "label",
            "node",
            "bob-node",
            "topology.kubernetes.io/zone=z1",
        ],
    );
    assert_eq!(
        c.ok(&[
            "get",
            "node",
            "bob-node",
            "-o",
            "jsonpath={.metadata.labels.topology\\.kubernetes\\.io/zone}"
        ]),
        "z1"
    );
    // The staked label comes from the master, which reads bob's node stake on the ledger.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let staked = c.ok(&[
            "get",
            "node",
            "bob-node",
            "-o",
            "jsonpath={.metadata.labels.k3s-daas\\.io/staked}",
        ]);
        if staked == "true" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the master never labelled bob-node staked: {staked:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
