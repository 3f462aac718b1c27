//! Cluster-key handoff between real `daas master` processes: master B started with `--server A`
//! gets A's cluster key only after A verified B's attestation (same measurement, fresh nonce,
//! shared simulated platform root), keeps it sealed under its own enclave key, and can open A's
//! sealed store with it; a master of another measurement, an enclave of another platform and
//! unauthenticated clients are refused; the key is never in the clear on disk or on the wire.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use daas_master::clusterkey;
use daas_master::keyshare::{self, Joiner, ShareResponse};
use daas_tee::{Enclave, SimulatedEnclave};

use crate::common::{server_url_of, stderr};

/// A `daas master` process with its own data dir on the shared simulated platform `root`.
struct MasterProc {
    child: Option<Child>,
    data: PathBuf,
    log: PathBuf,
}

impl MasterProc {
    fn spawn(dir: &Path, name: &str, root: &Path, extra: &[&str]) -> MasterProc {
        let data = dir.join(name);
        let log = dir.join(format!("{name}.log"));
        let _ = std::fs::remove_file(data.join("kubeconfig.yaml"));
        let child = Command::new(env!("CARGO_BIN_EXE_daas"))
            .args(["master", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--enclave-dev-root")
            .arg(root)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn daas master");
        MasterProc {
            child: Some(child),
            data,
            log,
        }
    }

    /// Start and wait until the API answers.
    fn start(dir: &Path, name: &str, root: &Path, extra: &[&str]) -> MasterProc {
        let m = Self::spawn(dir, name, root, extra);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if m.kubeconfig().exists() {
                let o = m.kubectl(&["get", "--raw", "/readyz"]);
                if o.status.success() {
                    return m;
                }
            }
            assert!(
                Instant::now() < deadline,
                "master {name} did not start:\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the process to exit on its own (it must, within `timeout`).
    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let c = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "master did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM (graceful) and wait.
    fn stop(&mut self) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on the pid of our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let st = self.wait_exit(Duration::from_secs(30));
            assert!(st.success(), "master stopped with {st}:\n{}", self.log());
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig.yaml")
    }

    fn url(&self) -> String {
        server_url_of(&self.kubeconfig())
    }

    fn tee(&self) -> PathBuf {
        self.data.join("tee")
    }

    /// The log, without terminal colour codes.
    fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // CSI: ESC [ parameters final-byte
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .output()
            .expect("kubectl")
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.kubectl(args);
        assert!(o.status.success(), "kubectl {args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn health(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["get", "--raw", "/api/v1/health"])).expect("health json")
    }
}

impl Drop for MasterProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The simulated enclave of a master's data dir, as that master opens it (release measurement
/// unless `m` is given, dev root in `root`).
fn enclave_of(tee: &Path, root: &Path, m: Option<[u8; 48]>) -> SimulatedEnclave {
    let m = m.unwrap_or_else(daas_master::enclave::release_measurement);
    SimulatedEnclave::open_with_root(tee, m, root).expect("open enclave")
}

/// The encodings a key could leak in.
fn encodings(key: &[u8; 32]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        key.to_vec(),
        hex::encode(key).into_bytes(),
        b64.encode(key).into_bytes(),
    ]
}

fn leaks(hay: &[u8], key: &[u8; 32]) -> bool {
    encodings(key)
        .iter()
        .any(|n| hay.windows(n.len()).any(|w| w == n.as_slice()))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// POST `body` to `url` + `path` with curl (no client credentials); (status, body).
fn post(url: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut child = Command::new("curl")
        .args(["-sk", "-X", "POST", "-H", "content-type: application/json"])
        .args(["--data-binary", "@-", "-w", "\n%{http_code}"])
        .arg(format!("{url}{path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write body");
    let o = child.wait_with_output().expect("curl");
    let text = o.stdout;
    let split = text.iter().rposition(|b| *b == b'\n').expect("status line");
    let code = String::from_utf8_lossy(&text[split + 1..])
        .trim()
        .parse()
        .expect("status code");
    (code, text[..split].to_vec())
}

fn nonce(url: &str) -> Vec<u8> {
    let (code, body) = post(url, keyshare::NONCE_PATH, b"");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    hex::decode(v["nonce"].as_str().expect("nonce")).expect("hex")
}

/// A TCP relay to `target` recording every byte in both directions (what a network observer sees).
fn relay(target: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind relay");
    let addr = l.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for client in l.incoming().flatten() {
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        rec.lock().expect("lock").extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (format!("https://{addr}"), seen)
}

#[test]
fn a_joining_master_gets_the_cluster_key_only_from_an_attested_master() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let platform = dir.join("platform");
    let mut a = MasterProc::start(dir, "a", &platform, &[]);
    let a_url = a.url();
    a.ok(&[
        "create",
        "configmap",
        "canary",
        "--from-literal=k=handoff-canary",
    ]);
    let a_cluster = a.health()["cluster_id"].as_str().expect("id").to_string();
    // A's cluster key is its own enclave's key (first master).
    let a_key = enclave_of(&a.tee(), &platform, None).sealing_key();
    assert!(!a.tee().join(clusterkey::CLUSTER_KEY_FILE).exists());

    // B joins through a relay that records the wire.
    let target = a_url
        .strip_prefix("https://")
        .expect("https")
        .parse()
        .expect("addr");
    let (relay_url, wire) = relay(target);
    let mut b = MasterProc::start(dir, "b", &platform, &["--server", &relay_url]);
    assert!(
        b.log().contains("cluster key received"),
        "B did not fetch the key:\n{}",
        b.log()
    );
    let key_id = clusterkey::ClusterKey::from_bytes(a_key)
        .sealing_key()
        .key_id_hex();
    assert!(b.log().contains(&format!("key_id={key_id}")), "{}", b.log());
    assert!(
        a.log()
            .contains("cluster key shared with an attested enclave")
            && a.log().contains(&format!("key_id={key_id}")),
        "{}",
        a.log()
    );
    // B's kept key unseals, in B's own enclave, to A's key; B's enclave key is another one.
    let b_enclave = enclave_of(&b.tee(), &platform, None);
    assert_ne!(b_enclave.sealing_key(), a_key);
    let kept = clusterkey::load(&b.tee(), &b_enclave)
        .expect("unseal")
        .expect("B keeps a cluster key");
    assert_eq!(kept.bytes(), &a_key);
    // ...and nothing else opens it: another enclave (same measurement, another machine's
    // sealed secret) given the file.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        b.tee().join(clusterkey::CLUSTER_KEY_FILE),
        elsewhere.path().join(clusterkey::CLUSTER_KEY_FILE),
    )
    .expect("copy");
    let other = enclave_of(elsewhere.path(), &platform, None);
    assert!(matches!(
        clusterkey::load(elsewhere.path(), &other),
        Err(clusterkey::ClusterKeyError::Unseal { .. })
    ));

    // The key in the clear: on no byte of the wire, in no file of B's data dir, in no log.
    let seen = wire.lock().expect("lock").clone();
    assert!(seen.len() > 1000, "the relay saw only {} bytes", seen.len());
    assert!(
        !leaks(&seen, &a_key),
        "the key crossed the network in the clear"
    );
    let mut files = Vec::new();
    files_under(&b.data, &mut files);
    assert!(files.iter().any(|f| f.ends_with("tee/cluster.key")));
    for f in &files {
        let data = std::fs::read(f).unwrap_or_default();
        assert!(
            !leaks(&data, &a_key),
            "{} holds the key in the clear",
            f.display()
        );
    }
    assert!(!leaks(a.log().as_bytes(), &a_key) && !leaks(b.log().as_bytes(), &a_key));

    // A second start of B needs no --server (the key is kept) and serves.
    b.stop();
    let mut b = MasterProc::start(dir, "b", &platform, &[]);
    assert!(!b.log().contains("cluster key received"));

    // A master of another measurement asking A: A's attestation does not carry its PCRs, so it
    // refuses A and exits before opening any store.
    let mut c = MasterProc::spawn(
        dir,
        "c",
        &platform,
        &[
            "--server",
            &a_url,
            "--enclave-measurement",
            &"ab".repeat(48),
        ],
    );
    let st = c.wait_exit(Duration::from_secs(60));
    assert!(!st.success());
    let log = c.log();
    assert!(
        log.contains(&format!("getting the cluster key from {a_url}"))
            && log.contains("PCR0 mismatch"),
        "{log}"
    );
    assert!(!c.tee().join(clusterkey::CLUSTER_KEY_FILE).exists());
    assert!(!c.data.join("state.redb").exists());

    // The same refusal from A's side, for enclaves that would skip that check.
    // - unauthenticated, malformed: 400 Status;
    let (code, body) = post(&a_url, keyshare::SHARE_PATH, b"{\"document\": 5}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("status json");
    assert_eq!(
        (code, v["kind"].as_str(), v["reason"].as_str()),
        (400, Some("Status"), Some("BadRequest"))
    );
    // - an enclave of another measurement on the same platform: 403;
    let d = tempfile::tempdir().expect("tempdir");
    let wrong = enclave_of(d.path(), &platform, Some([0xab; 48]));
    let (_, req) = Joiner::new(&wrong, &nonce(&a_url)).expect("joiner");
    let (code, body) = post(
        &a_url,
        keyshare::SHARE_PATH,
        &serde_json::to_vec(&req).unwrap(),
    );
    let v: serde_json::Value = serde_json::from_slice(&body).expect("status json");
    assert_eq!(
        (code, v["reason"].as_str()),
        (403, Some("Forbidden")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap_or_default().contains("PCR0"),
        "{v}"
    );
    // - an enclave of the right measurement on another platform (its own root): 403;
    let d2 = tempfile::tempdir().expect("tempdir");
    let foreign = enclave_of(d2.path(), d2.path(), None);
    let (_, req) = Joiner::new(&foreign, &nonce(&a_url)).expect("joiner");
    let (code, body) = post(
        &a_url,
        keyshare::SHARE_PATH,
        &serde_json::to_vec(&req).unwrap(),
    );
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("pinned root"));
    // - a nonce A never issued: 403.
    let d3 = tempfile::tempdir().expect("tempdir");
    let good = enclave_of(d3.path(), &platform, None);
    let (_, req) = Joiner::new(&good, &[9u8; 32]).expect("joiner");
    let (code, body) = post(
        &a_url,
        keyshare::SHARE_PATH,
        &serde_json::to_vec(&req).unwrap(),
    );
    assert_eq!(code, 403);
    assert!(String::from_utf8_lossy(&body).contains("not issued"));
    // A genuine enclave gets the key, encrypted: the HTTP body itself (inside TLS) holds it in
    // no encoding; the replay of its request is refused.
    let (j, req) = Joiner::new(&good, &nonce(&a_url)).expect("joiner");
    let req = serde_json::to_vec(&req).unwrap();
    let (code, body) = post(&a_url, keyshare::SHARE_PATH, &req);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert!(!leaks(&body, &a_key));
    let resp: ShareResponse = serde_json::from_slice(&body).expect("share json");
    assert_eq!(j.finish(&resp).expect("decrypt").bytes(), &a_key);
    let (code, body) = post(&a_url, keyshare::SHARE_PATH, &req);
    assert_eq!(code, 403);
    assert!(String::from_utf8_lossy(&body).contains("already used"));

    // B holds A's key for real: given a copy of A's sealed store, B serves A's objects; a master
    // with its own key cannot open that copy.
    a.stop();
    b.stop();
    // The store is `state.redb` and its write-ahead log.
    for f in ["state.redb", "state.redb.wal"] {
        std::fs::copy(a.data.join(f), b.data.join(f)).expect("copy store");
    }
    let b = MasterProc::start(dir, "b", &platform, &[]);
    assert_eq!(b.health()["cluster_id"], a_cluster.as_str());
    let v = b.ok(&["get", "configmap", "canary", "-o", "jsonpath={.data.k}"]);
    assert_eq!(v, "handoff-canary");
    drop(b);
    // E: a first master of its own (its own key), then given A's store.
    let mut e = MasterProc::start(dir, "e", &platform, &[]);
    e.stop();
    for f in ["state.redb", "state.redb.wal"] {
        std::fs::copy(a.data.join(f), e.data.join(f)).expect("copy store");
    }
    let mut e = MasterProc::spawn(dir, "e", &platform, &[]);
    let st = e.wait_exit(Duration::from_secs(60));
    assert!(
        !st.success() && e.log().contains("wrong sealing key"),
        "a master with its own key opened A's store:\n{}",
        e.log()
    );
}
