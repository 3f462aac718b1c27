//! The audit log against a real `daas up` and real kubectl: the built-in policy logs the
//! admin's create, a user-tier staker's patch and delete, her forbidden create (403 with the
//! authorization decision), a forged token (401, no token in the file) and a Secret create at
//! Metadata without its data, but no reads; the API offers no way to read or switch off the log.
//! After a restart with a custom policy (None for the admin, Request for configmaps) the
//! staker's create carries its requestObject. `daas audit verify` accepts the log with both
//! runs' enclave keys (from attestation) and refuses, naming the first bad line, an edited,
//! a deleted, a reordered, a re-chained (signature) and a truncated (unsigned tail) copy.

use crate::common::{self, daas, daas_ok, Cluster};

use std::path::Path;
use std::time::Duration;

use daas_master::audit::chain::{canonical, link, CHAIN_ANNOTATION};
use serde_json::{json, Value};

const FORGED: &str = "forged-token-0123456789abcdef";

fn audit_log(c: &Cluster) -> std::path::PathBuf {
    c.data_dir().join("audit").join("audit.log")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("audit log")
        .lines()
        .map(str::to_string)
        .collect()
}

fn events(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|v| v["kind"] == "Event")
        .collect()
}

/// Waits until an event matching `f` is in the log (the writer is asynchronous).
fn wait_event(path: &Path, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        if let Some(e) = events(path).into_iter().find(|e| f(e)) {
            return e;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no audit event {what}; log:\n{}", lines(path).join("\n"));
}

fn is(e: &Value, user: &str, verb: &str, resource: &str, name: &str) -> bool {
    e["user"]["username"] == user
        && e["verb"] == verb
        && e["objectRef"]["resource"] == resource
        && (name.is_empty() || e["requestURI"].as_str().unwrap_or("").contains(name))
}

/// The enclave key of the running master, from `daas attest` (attested TLS).
fn enclave_key(c: &Cluster) -> String {
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let out = daas_ok(&[
        "attest",
        "--chain",
        &c.chain_url(),
        "--server",
        &c.server_url(),
        "--trust-root",
        root.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&out).expect("attest JSON");
    v["enclave_public_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no enclave key: {out}"))
        .to_string()
}

fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    (s.trim().parse().unwrap_or(0), s)
}

fn write_lines(path: &Path, l: &[String]) {
    let mut s = l.join("\n");
    s.push('\n');
    std::fs::write(path, s).unwrap();
}

/// `daas audit verify` of `file` with `keys`: (success, stdout + stderr).
fn verify(file: &Path, keys: &[&str]) -> (bool, String) {
    let mut args = vec!["audit", "verify", file.to_str().unwrap()];
    for k in keys {
        args.push("--enclave-key");
        args.push(k);
    }
    let out = daas(&args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Recompute every chain value (what a host operator who edited a line would do).
fn rechain(l: &mut [String]) {
    let mut prev: Option<[u8; 32]> = None;
    for line in l.iter_mut() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let c = if v["kind"] == "Checkpoint" {
            let p = match v.get("prev") {
                Some(p) => hex::decode(p.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
                None => prev.unwrap(),
            };
            let mut body = v.as_object().unwrap().clone();
            body.remove("chain");
            body.remove("signature");
            let c = link(&p, &canonical(&Value::Object(body)));
            v["chain"] = json!(hex::encode(c));
            c
        } else {
            let ann = v["annotations"].as_object_mut().unwrap();
            ann.remove(CHAIN_ANNOTATION);
            if ann.is_empty() {
                v.as_object_mut().unwrap().remove("annotations");
            }
            let c = link(&prev.unwrap(), &canonical(&v));
            let m = v.as_object_mut().unwrap();
            m.entry("annotations").or_insert(json!({}))[CHAIN_ANNOTATION] = json!(hex::encode(c));
            c
        };
        prev = Some(c);
        *line = serde_json::to_string(&v).unwrap();
    }
}

#[test]
fn audit_log_records_writes_and_failures_and_detects_tampering() {
    let mut c = Cluster::start_with(&["--audit-checkpoint-events", "7"]);
    let log = audit_log(&c);
    let url = c.server_url();
    let chain = c.chain_url();
    let admin = std::fs::read_to_string(c.data_dir().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let key1 = enclave_key(&c);

    // --- the admin's create, with its Audit-Id
    c.ok(&["create", "configmap", "adm-cm", "--from-literal=a=1"]);
    let e = wait_event(&log, "admin create", |e| {
        is(e, "k3s-daas-admin", "create", "configmaps", "configmaps")
            && e["objectRef"]["namespace"] == "default"
    });
    assert_eq!(e["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(e["level"], "Metadata");
    assert_eq!(e["stage"], "ResponseComplete");
    assert_eq!(e["responseStatus"]["code"], 201);
    assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "allow");
    assert_eq!(e["sourceIPs"][0], "127.0.0.1");
    assert!(
        e["userAgent"].as_str().unwrap().starts_with("kubectl/"),
        "{e}"
    );
    assert!(e.get("requestObject").is_none(), "{e}");
    let out = std::process::Command::new("curl")
        .args(["-sk", "-D", "-", "-o", "/dev/null", "-X", "DELETE"])
        .arg(format!("{url}/api/v1/namespaces/default/configmaps/adm-cm"))
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let id = headers
        .lines()
        .find_map(|l| l.strip_prefix("audit-id: "))
        .unwrap_or_else(|| panic!("no Audit-Id: {headers}"))
        .trim()
        .to_string();
    let e = wait_event(&log, "admin delete by audit id", |e| {
        e["auditID"] == id.as_str()
    });
    assert_eq!(
        (e["verb"].as_str(), e["objectRef"]["name"].as_str()),
        (Some("delete"), Some("adm-cm"))
    );

    // --- a user-tier staker: create, patch and delete in her namespace; a forbidden create
    let (key, _) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let (kc, out) = c.join(&chain, &key);
    let ns = common::joined_namespace(&out);
    as_user(
        &c,
        &kc,
        &[
            "create",
            "configmap",
            "al-cm",
            "-n",
            &ns,
            "--from-literal=a=1",
        ],
    );
    as_user(
        &c,
        &kc,
        &[
            "patch",
            "configmap",
            "al-cm",
            "-n",
            &ns,
            "-p",
            r#"{"data":{"a":"2"}}"#,
        ],
    );
    as_user(&c, &kc, &["get", "configmap", "al-cm", "-n", &ns]);
    as_user(&c, &kc, &["delete", "configmap", "al-cm", "-n", &ns]);
    // kubectl's create (the root CA publisher creates kube-root-ca.crt there too, maybe first).
    let created = wait_event(&log, "staker create", |e| {
        e["verb"] == "create"
            && e["objectRef"]["namespace"] == ns.as_str()
            && e["objectRef"]["resource"] == "configmaps"
            && e["requestURI"]
                .as_str()
                .is_some_and(|u| u.contains("fieldManager=kubectl-create"))
    });
    let alice = created["user"]["username"].as_str().unwrap().to_string();
    assert_ne!(alice, "k3s-daas-admin");
    for verb in ["patch", "delete"] {
        let e = wait_event(&log, verb, |e| is(e, &alice, verb, "configmaps", "al-cm"));
        assert_eq!(e["objectRef"]["namespace"], ns.as_str());
        assert_eq!(e["responseStatus"]["code"], 200, "{e}");
    }
    let refused = c.kubectl_as(&kc, &["create", "configmap", "evil", "-n", "default"]);
    assert!(!refused.status.success());
    let e = wait_event(&log, "forbidden create", |e| {
        is(e, &alice, "create", "configmaps", "") && e["objectRef"]["namespace"] == "default"
    });
    assert_eq!(e["responseStatus"]["code"], 403);
    assert_eq!(e["responseStatus"]["reason"], "Forbidden");
    assert_eq!(e["annotations"]["authorization.k8s.io/decision"], "forbid");
    assert!(
        e["annotations"]["authorization.k8s.io/reason"]
            .as_str()
            .unwrap()
            .contains("cannot create"),
        "{e}"
    );

    // --- a forged token: 401 logged as the anonymous user, the token nowhere
    let o = c.kubectl_as(&kc, &["--token", FORGED, "get", "pods", "-n", "default"]);
    assert!(!o.status.success());
    let e = wait_event(&log, "authentication failure", |e| {
        e["responseStatus"]["code"] == 401
    });
    assert_eq!(e["user"]["username"], "system:anonymous");
    assert_eq!(e["verb"], "list");
    assert_eq!(
        e["annotations"]["audit.daas.io/authentication"],
        "failed, attempted: bearer"
    );

    // --- a Secret at Metadata, without its data
    c.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=password=hunter2-audit",
    ]);
    let e = wait_event(&log, "secret create", |e| {
        is(e, "k3s-daas-admin", "create", "secrets", "")
    });
    assert_eq!(e["level"], "Metadata");
    assert!(e.get("requestObject").is_none());

    // --- reads are not logged (the staker's get, the admin's list)
    c.ok(&["get", "secret", "s1"]);
    c.ok(&["get", "configmaps"]);

    // --- no API identity reads or switches off the audit log
    for token in [admin.as_str(), FORGED] {
        for (m, p) in [
            ("GET", "/logs/audit/audit.log"),
            ("GET", "/audit"),
            ("GET", "/apis/audit.k8s.io/v1"),
            ("DELETE", "/apis/audit.k8s.io/v1/policies/default"),
            (
                "POST",
                "/api/v1/namespaces/kube-system/configmaps/audit-policy",
            ),
        ] {
            let (code, raw) = curl(&[
                "-X",
                m,
                &format!("{url}{p}"),
                "-H",
                &format!("Authorization: Bearer {token}"),
            ]);
            assert!(code >= 400, "{m} {p}: {raw}");
        }
    }
    let alice_token = daas_ok(&[
        "token",
        "--chain",
        &chain,
        "--key",
        key.to_str().unwrap(),
        "--audience",
        &c.audience(),
    ]);
    let (code, _) = curl(&[
        "-X",
        "GET",
        &format!("{url}/logs/audit/audit.log"),
        "-H",
        &format!("Authorization: Bearer {}", alice_token.trim()),
    ]);
    assert!(code == 403 || code == 404, "{code}");

    // --- restart with a custom policy: None for the admin, Request for configmaps
    let status = c.interrupt(Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    let policy = c.dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: None\n  users: [k3s-daas-admin]\n\
         - level: None\n  verbs: [get, list, watch]\n\
         - level: Request\n  resources:\n  - group: \"\"\n    resources: [configmaps]\n\
         - level: Metadata\n",
    )
    .unwrap();
    // A policy that does not parse is a clear startup error.
    let bad = c.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n",
    )
    .unwrap();
    let o = daas(&[
        "up",
        "--data-dir",
        c.data_dir().to_str().unwrap(),
        "--no-agent",
        "--listen",
        "127.0.0.1:0",
        "--chain-listen",
        "127.0.0.1:0",
        "--audit-policy-file",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("unknown variant `Loud`"),
        "{}",
        common::stderr(&o)
    );
    // The same ports: the staker's kubeconfig names the server and its credential plugin the
    // ledger.
    for (flag, u) in [("--listen", url.clone()), ("--chain-listen", chain.clone())] {
        let hostport = u
            .rsplit("//")
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        c.extra_args.push(flag.into());
        c.extra_args.push(hostport);
    }
    c.extra_args.push("--audit-policy-file".into());
    c.extra_args.push(policy.to_str().unwrap().into());
    c.spawn();
    let key2 = enclave_key(&c);
    assert_ne!(key1, key2, "a new enclave run has a new key");
    c.ok(&["create", "configmap", "quiet-cm", "--from-literal=a=1"]);
    as_user(
        &c,
        &kc,
        &[
            "create",
            "configmap",
            "loud-cm",
            "-n",
            &ns,
            "--from-literal=color=blue",
        ],
    );
    let e = wait_event(&log, "Request-level create", |e| {
        is(e, &alice, "create", "configmaps", "") && e.get("requestObject").is_some()
    });
    assert_eq!(e["level"], "Request");
    assert_eq!(e["requestObject"]["data"]["color"], "blue", "{e}");
    // While it runs the tail is unsigned; a copy cut at the last checkpoint verifies against
    // the key attested by --master.
    let l = lines(&log);
    let last_cp = l
        .iter()
        .rposition(|x| x.contains("\"kind\":\"Checkpoint\""))
        .unwrap();
    let cut = c.dir.path().join("cut.log");
    write_lines(&cut, &l[..=last_cp]);
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let o = daas(&[
        "audit",
        "verify",
        cut.to_str().unwrap(),
        "--master",
        &url_of(&c),
        "--trust-root",
        root.to_str().unwrap(),
        "--chain",
        &c.chain_url(),
        "--enclave-key",
        &key1,
    ]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let status = c.interrupt(Duration::from_secs(60));
    assert!(status.success(), "{status:?}");

    // Admin writes, reads and the forged token are as expected over the whole file.
    let all = std::fs::read_to_string(&log).unwrap();
    assert!(!all.contains(FORGED), "the forged token is in the log");
    assert!(!all.contains(&admin), "the admin token is in the log");
    assert!(
        !all.contains("hunter2-audit") && !all.contains("aHVudGVyMi1hdWRpdA"),
        "secret data in the log"
    );
    let evs = events(&log);
    let read = evs.iter().find(|e| {
        (e["verb"] == "get" || e["verb"] == "list") && e["responseStatus"]["code"] != 401
    });
    assert!(read.is_none(), "a read was logged: {read:?}");
    assert!(
        !evs.iter()
            .any(|e| e["requestURI"].as_str().unwrap_or("").contains("quiet-cm")),
        "None for the admin"
    );

    // --- verify: both runs' keys; one key is not enough
    let (ok_, out) = verify(&log, &[&key1, &key2]);
    assert!(ok_, "{out}");
    assert!(
        out.contains(&format!("verified {} events", evs.len())),
        "{out}"
    );
    assert!(out.contains("shutdown"), "{out}");
    let (ok_, out) = verify(&log, &[&key1]);
    assert!(!ok_ && out.contains("not a trusted key"), "{out}");

    // --- tampering, each on a copy
    let l = lines(&log);
    let ev_idx: Vec<usize> = l
        .iter()
        .enumerate()
        .filter(|(_, x)| x.contains("\"kind\":\"Event\""))
        .map(|(i, _)| i)
        .collect();
    let target = ev_idx[3];
    let copy = c.dir.path().join("tampered.log");
    let keys = [key1.as_str(), key2.as_str()];
    let expect = |l: &[String], want: &str, line: Option<usize>| {
        write_lines(&copy, l);
        let (ok_, out) = verify(&copy, &keys);
        assert!(!ok_, "tampering not detected ({want}): {out}");
        assert!(out.contains(want), "{want}: {out}");
        if let Some(n) = line {
            assert!(
                out.contains(&format!("tampered.log:{n}:")),
                "line {n}: {out}"
            );
        }
    };
    // An edited line.
    let mut t = l.clone();
    t[target] = t[target].replacen("\"verb\":\"", "\"verb\":\"x", 1);
    expect(&t, "hash chain broken", Some(target + 1));
    // A deleted line: the next one no longer chains.
    let mut t = l.clone();
    t.remove(target);
    expect(&t, "hash chain broken", Some(target + 1));
    // Two lines swapped.
    let mut t = l.clone();
    t.swap(ev_idx[1], ev_idx[2]);
    expect(&t, "hash chain broken", Some(ev_idx[1] + 1));
    // An edit with the chain recomputed: the next checkpoint's signature fails.
    let mut t = l.clone();
    t[target] = t[target].replacen("\"verb\":\"", "\"verb\":\"x", 1);
    assert_ne!(t[target], l[target]);
    rechain(&mut t);
    let next_cp = (target..t.len())
        .find(|i| t[*i].contains("\"kind\":\"Checkpoint\""))
        .unwrap();
    expect(
        &t,
        "checkpoint signature does not verify",
        Some(next_cp + 1),
    );
    // Truncated after the last checkpoint: the shutdown checkpoint is gone.
    let mut t = l.clone();
    t.pop();
    let prev_cp = t
        .iter()
        .rposition(|x| x.contains("\"kind\":\"Checkpoint\""))
        .unwrap();
    let tail = t.len() - 1 - prev_cp;
    assert!(tail > 0);
    expect(&t, &format!("{tail} unsigned trailing events"), None);
}

fn url_of(c: &Cluster) -> String {
    c.server_url()
}

fn as_user(c: &Cluster, kc: &Path, args: &[&str]) {
    let o = c.kubectl_as(kc, args);
    assert!(o.status.success(), "{args:?}: {}", common::stderr(&o));
}
