//! End-to-end: the seal-token validation cache through a real `daas up` and the real kubectl. A
//! node's credential is served from the cache (no ledger read on a warm cache, visible in
//! /metrics), revocation (unstake) takes effect within `--token-cache-seconds`, and tampered,
//! foreign-audience and missing credentials are refused with 401.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{daas_ok, stderr, stdout, Cluster};

const TTL_SECONDS: u64 = 10;

/// A copy of the admin kubeconfig with `token` as its bearer token.
fn kubeconfig_with(c: &Cluster, name: &str, token: Option<&str>) -> PathBuf {
    let admin = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let kc: String = admin
        .lines()
        .filter_map(|l| match (l.trim().strip_prefix("token: "), token) {
            (Some(_), Some(t)) => Some(format!(
                "{}token: {t}",
                &l[..l.len() - l.trim_start().len()]
            )),
            (Some(_), None) => None,
            (None, _) => Some(l.to_string()),
        })
        .map(|l| l + "\n")
        .collect();
    assert!(token.is_none() || kc.contains(token.unwrap_or_default()));
    let p = c.dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(&p, kc).expect("write kubeconfig");
    p
}

/// `daas_token_ledger_calls_total` from the master's /metrics.
fn ledger_calls(c: &Cluster) -> f64 {
    c.ok(&["get", "--raw", "/metrics"])
        .lines()
        .filter(|l| l.starts_with("daas_token_ledger_calls_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn get_node(c: &Cluster, kc: &Path, node: &str) -> std::process::Output {
    c.kubectl_as(kc, &["get", "--raw", &format!("/api/v1/nodes/{node}")])
}

#[test]
fn warm_cache_no_ledger_calls_revocation_within_ttl_and_refusals() {
    let ttl = TTL_SECONDS.to_string();
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        &ttl,
    ]);
    let chain = c.chain_url();
    let aud = c.audience();
    let node = "tok-node";
    let (key, addr) = c.staker(
        &chain,
        "tok-node",
        &["--amount", "2000", "--role", "node", "--node-id", node],
    );
    let k = key.to_str().unwrap();
    let mint = |audience: &str| {
        daas_ok(&[
            "token",
            "--chain",
            &chain,
            "--key",
            k,
            "--audience",
            audience,
        ])
        .trim()
        .to_string()
    };
    let cred = mint(&aud);
    c.ok_stdin(
        &["create", "-f", "-"],
        &serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
            .to_string(),
    );
    let kc = kubeconfig_with(&c, "node", Some(&cred));

    // Cold: the ledger is asked (seal token and its validity); warm: it is not.
    let before = ledger_calls(&c);
    let o = get_node(&c, &kc, node);
    assert!(o.status.success(), "{}", stderr(&o));
    let filled = Instant::now();
    let after_cold = ledger_calls(&c);
    assert!(after_cold >= before + 2.0, "{before} -> {after_cold}");
    for _ in 0..5 {
        let o = get_node(&c, &kc, node);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let warm = ledger_calls(&c);
    if filled.elapsed() < Duration::from_secs(TTL_SECONDS) {
        assert_eq!(warm, after_cold, "ledger asked on a warm cache");
    }

    // The node validating its own credential: answered from the same confirmation (one
    // signature per ledger check, timestamped when the ledger confirmed it).
    let body = c.dir.path().join("validate.json");
    std::fs::write(&body, serde_json::json!({"token": cred}).to_string()).unwrap();
    let validate = |kc: &Path| {
        c.kubectl_as(
            kc,
            &[
                "create",
                "--raw",
                "/api/v1/seal-token/validate",
                "-f",
                body.to_str().unwrap(),
            ],
        )
    };
    let o = validate(&kc);
    assert!(o.status.success(), "{}", stderr(&o));
    let v1: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v1["valid"], true, "{v1}");
    assert_eq!(v1["username"], format!("system:node:{node}"));
    assert_eq!(v1["owner"], addr);
    let o = validate(&c.kubeconfig());
    let v2: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let now = daas_master::now_ms();
    let ts = v1["timestamp_ms"].as_u64().unwrap();
    assert!(
        ts <= now && now - ts < (TTL_SECONDS + 30) * 1000,
        "{ts} vs {now}"
    );
    if filled.elapsed() < Duration::from_secs(TTL_SECONDS) {
        assert_eq!(v1["enclave_signature"], v2["enclave_signature"]);
        assert_eq!(v1["timestamp_ms"], v2["timestamp_ms"]);
    }

    // Refusals: a tampered signature, another cluster's audience.
    let mut tampered = cred.clone().into_bytes();
    let i = tampered.len() - 4;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = mint("k3s-daas:another-cluster");
    for (what, bad) in [("tampered", &tampered), ("foreign audience", &foreign)] {
        let kc = kubeconfig_with(&c, "bad", Some(bad));
        for _ in 0..2 {
            let o = get_node(&c, &kc, node);
            assert!(
                !o.status.success(),
                "{what} credential accepted: {}",
                stdout(&o)
            );
            assert!(
                stderr(&o).contains("Unauthorized"),
                "{what}: {}",
                stderr(&o)
            );
        }
    }

    // Revocation: unstaking invalidates the token on the ledger; the master refuses it within
    // the cache TTL (and accepted it until then).
    let o = get_node(&c, &kc, node);
    assert!(o.status.success(), "{}", stderr(&o));
    daas_ok(&["unstake", "--chain", &chain, "--key", k]);
    let revoked = Instant::now();
    loop {
        let o = get_node(&c, &kc, node);
        if !o.status.success() {
            assert!(stderr(&o).contains("Unauthorized"), "{}", stderr(&o));
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(TTL_SECONDS + 5),
            "revoked credential still accepted after {:?} (cache TTL {TTL_SECONDS} s)",
            revoked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let o = validate(&c.kubeconfig());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(v["valid"], false, "{}{}", stdout(&o), stderr(&o));
}
