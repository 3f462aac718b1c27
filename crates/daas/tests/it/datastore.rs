//! End-to-end: `daas master` on a real (Debian) etcd that requires TLS client certificates
//! (`--datastore-endpoint https://... --datastore-cafile/-certfile/-keyfile`), and what it
//! refuses: no or a foreign client certificate, a sealing key other than the one the etcd prefix
//! was sealed with, `--enclave nitro` outside a Nitro Enclave.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::common::{self, stderr, stdout};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ca {
        cert: p.self_signed(&key).expect("self-signed"),
        key,
    }
}

/// A leaf certificate under `ca`, written to `dir/<name>.{crt,key}`; returns the two paths.
fn leaf(ca: &Ca, dir: &Path, name: &str, server: bool) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    p.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = if server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    let cert = p.signed_by(&key, &ca.cert, &ca.key).expect("sign");
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).expect("write cert");
    std::fs::write(&k, key.serialize_pem()).expect("write key");
    (c, k)
}

/// One etcd member serving clients over TLS and requiring a client certificate signed by the
/// test CA (`--client-cert-auth --trusted-ca-file`). Killed when dropped.
struct TlsEtcd {
    child: Child,
    data: PathBuf,
    log: PathBuf,
    url: String,
}

impl TlsEtcd {
    fn start(dir: &Path, ca_file: &Path, cert: &Path, key: &Path) -> TlsEtcd {
        let (cport, pport) = (free_port(), free_port());
        let url = format!("https://127.0.0.1:{cport}");
        let peer = format!("http://127.0.0.1:{pport}");
        let data = dir.join("etcd-data");
        let log = dir.join("etcd.log");
        let child = Command::new("etcd")
            .args(["--name", "m1", "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("m1={peer}")])
            .args(["--initial-cluster-state", "new"])
            .arg("--cert-file")
            .arg(cert)
            .arg("--key-file")
            .arg(key)
            .arg("--client-cert-auth")
            .arg("--trusted-ca-file")
            .arg(ca_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("etcd log"))
            .spawn()
            .expect("spawn etcd (Debian package etcd-server)");
        let mut e = TlsEtcd {
            child,
            data,
            log,
            url,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = e.child.try_wait() {
                panic!("etcd exited ({st}): {}", e.log());
            }
            if e.log().contains("serving client traffic securely")
                || e.log().contains("ready to serve client requests")
                    && std::net::TcpStream::connect(("127.0.0.1", cport)).is_ok()
            {
                return e;
            }
            assert!(Instant::now() < deadline, "etcd not ready: {}", e.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `daas master` process with its own data directory. Killed when dropped.
struct MasterProc {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
}

impl MasterProc {
    fn spawn(dir: &Path, args: &[String]) -> MasterProc {
        std::fs::create_dir_all(dir).expect("master dir");
        let log = dir.with_extension("log");
        let _ = std::fs::remove_file(dir.join("kubeconfig.yaml"));
        let child = Command::new(env!("CARGO_BIN_EXE_daas"))
            .arg("master")
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("master log"))
            .spawn()
            .expect("spawn daas master");
        MasterProc {
            child: Some(child),
            dir: dir.to_path_buf(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig.yaml")
    }

    /// Waits for the kubeconfig and `/readyz`.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("daas master exited ({st}):\n{}", self.log());
            }
            if self.kubeconfig().exists()
                && kubectl(&self.kubeconfig(), &["get", "--raw", "/readyz"])
                    .status
                    .success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daas master not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for the process to exit by itself (it must, within `timeout`); returns its log.
    fn wait_exit(&mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                return (st, self.log());
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!(
                    "daas master still running after {timeout:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the pid of our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
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

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout", "20s"])
        .args(args)
        .output()
        .expect("run kubectl")
}

#[track_caller]
fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let o = kubectl(kubeconfig, args);
    assert!(o.status.success(), "kubectl {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// Every file under `dir` that holds `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if common::file_contains(&p, needle) {
                out.push(p);
            }
        }
    }
    out
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

#[test]
fn master_on_tls_etcd_keeps_state_sealed_and_refuses_wrong_credentials_and_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let etcd_ca = ca("etcd-test-ca");
    let ca_file = t.join("etcd-ca.crt");
    std::fs::write(&ca_file, etcd_ca.cert.pem()).expect("ca file");
    let (srv_crt, srv_key) = leaf(&etcd_ca, t, "etcd-server", true);
    let (cli_crt, cli_key) = leaf(&etcd_ca, t, "daas-master", false);
    let rogue_ca = ca("rogue-ca");
    let (rogue_crt, rogue_key) = leaf(&rogue_ca, t, "rogue", false);
    let etcd = TlsEtcd::start(t, &ca_file, &srv_crt, &srv_key);

    let datastore = |cert: Option<(&Path, &Path)>| -> Vec<String> {
        let mut a = vec![
            "--datastore-endpoint".to_string(),
            etcd.url.clone(),
            "--datastore-cafile".into(),
            s(&ca_file),
        ];
        if let Some((c, k)) = cert {
            a.extend([
                "--datastore-certfile".into(),
                s(c),
                "--datastore-keyfile".into(),
                s(k),
            ]);
        }
        a
    };

    // The master on etcd: kubectl writes a Secret and a ConfigMap holding a canary.
    let dir_a = t.join("master-a");
    let mut m = MasterProc::spawn(&dir_a, &datastore(Some((&cli_crt, &cli_key))));
    m.wait_ready();
    assert!(
        !dir_a.join("state.redb").exists(),
        "the embedded store was opened although --datastore-endpoint was given"
    );
    let kc = m.kubeconfig();
    let canary = format!("canary-{}", std::process::id());
    kubectl_ok(
        &kc,
        &[
            "create",
            "secret",
            "generic",
            "s1",
            &format!("--from-literal=v={canary}"),
        ],
    );
    kubectl_ok(
        &kc,
        &[
            "create",
            "configmap",
            "c1",
            &format!("--from-literal=v={canary}"),
        ],
    );
    let rv_before = kubectl_ok(
        &kc,
        &[
            "get",
            "configmap",
            "c1",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );

    // The host operator reads etcd's data directory: no canary (plain or base64, as a Secret's
    // data is), no admin token, no cluster CA key: every value is sealed.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(canary.as_bytes());
    let kc_text = std::fs::read_to_string(&kc).expect("kubeconfig");
    let admin_token = kc_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("admin token in kubeconfig")
        .to_string();
    // etcd has the writes on disk (its WAL) before we look.
    assert!(
        !files_containing(&etcd.data, b"/registry-daas/").is_empty(),
        "etcd's data dir holds no key of the store: wrong directory?"
    );
    for needle in [
        canary.as_str(),
        b64.as_str(),
        admin_token.as_str(),
        "PRIVATE KEY",
    ] {
        let hits = files_containing(&etcd.data, needle.as_bytes());
        assert!(hits.is_empty(), "{needle:?} in the clear in {hits:?}");
    }
    // Nor is the CA key on the master's disk (it lives only in the sealed store).
    assert!(!dir_a.join("tls").join("ca.key").exists());

    // Restart: the objects come back from etcd, same resourceVersion; the kubeconfig written
    // before still works (same CA, same admin token).
    let kc_saved = t.join("kubeconfig-before-restart.yaml");
    std::fs::copy(&kc, &kc_saved).expect("save kubeconfig");
    m.stop();
    let mut m = MasterProc::spawn(&dir_a, &datastore(Some((&cli_crt, &cli_key))));
    m.wait_ready();
    let kc = m.kubeconfig();
    let got = kubectl_ok(&kc, &["get", "secret", "s1", "-o", "jsonpath={.data.v}"]);
    assert_eq!(got.trim(), b64);
    let got = kubectl_ok(&kc, &["get", "configmap", "c1", "-o", "jsonpath={.data.v}"]);
    assert_eq!(got.trim(), canary);
    let rv_after = kubectl_ok(
        &kc,
        &[
            "get",
            "configmap",
            "c1",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    assert_eq!(rv_before, rv_after);
    let new_server = common::server_url_of(&kc);
    let old_text = std::fs::read_to_string(&kc_saved).expect("old kubeconfig");
    let old_server = common::server_url_of(&kc_saved);
    std::fs::write(&kc_saved, old_text.replace(&old_server, &new_server)).expect("rewrite");
    kubectl_ok(&kc_saved, &["get", "configmap", "c1"]);

    // Refusals. No client certificate: etcd refuses the handshake; the master exits naming
    // the datastore.
    let mut no_cert = MasterProc::spawn(&t.join("master-nocert"), &datastore(None));
    let (st, log) = no_cert.wait_exit(Duration::from_secs(90));
    eprintln!("without a client certificate: {}", log.trim());
    assert!(!st.success());
    assert!(log.contains(&format!("datastore {}", etcd.url)), "{log}");
    // A client certificate from another CA: the same.
    let mut rogue = MasterProc::spawn(
        &t.join("master-rogue"),
        &datastore(Some((&rogue_crt, &rogue_key))),
    );
    let (st, log) = rogue.wait_exit(Duration::from_secs(90));
    eprintln!("with a foreign client certificate: {}", log.trim());
    assert!(!st.success());
    assert!(log.contains(&format!("datastore {}", etcd.url)), "{log}");
    // A valid client certificate but another enclave (its own sealing key, no cluster key
    // handed over): the prefix was sealed with another key, so it exits with the Unseal error
    // before writing anything.
    let rev_before = kubectl_ok(
        &kc,
        &[
            "get",
            "configmap",
            "c1",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    let mut stranger = MasterProc::spawn(
        &t.join("master-stranger"),
        &datastore(Some((&cli_crt, &cli_key))),
    );
    let (st, log) = stranger.wait_exit(Duration::from_secs(60));
    eprintln!("with another sealing key: {}", log.trim());
    assert!(!st.success());
    assert!(log.contains("wrong sealing key"), "{log}");
    assert!(log.contains(&format!("datastore {}", etcd.url)), "{log}");
    assert!(!t.join("master-stranger").join("kubeconfig.yaml").exists());
    let rev_after = kubectl_ok(
        &kc,
        &[
            "get",
            "configmap",
            "c1",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    assert_eq!(rev_before, rev_after);
    // The running master was not disturbed.
    kubectl_ok(&kc, &["get", "secret", "s1"]);
    m.stop();
}

/// `--enclave nitro` outside a Nitro Enclave: a clear error, no fallback to the simulator, no
/// state written.
#[test]
fn enclave_nitro_without_nsm_is_refused() {
    if Path::new("/dev/nsm").exists() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut m = MasterProc::spawn(&dir, &["--enclave".to_string(), "nitro".to_string()]);
    let (st, log) = m.wait_exit(Duration::from_secs(30));
    assert!(!st.success());
    assert!(log.contains("--enclave nitro"), "{log}");
    assert!(log.contains("/dev/nsm"), "{log}");
    assert!(!dir.join("state.redb").exists());
    assert!(!dir.join("kubeconfig.yaml").exists());
}

/// Backend flags that do not fit together are refused at start, before anything is opened.
#[test]
fn inconsistent_backend_flags_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (args, want) in [
        (
            vec!["--datastore-cafile", "/nonexistent/ca.pem"],
            "--datastore-cafile needs --datastore-endpoint",
        ),
        (vec!["--enclave", "sgx"], "expected simulated or nitro"),
        (
            vec!["--ledger", "embedded"],
            "--ledger embedded needs --sui-rpc",
        ),
        (
            vec!["--ledger", "sui", "--sui-rpc", "https://f:443"],
            "--sui-deployment",
        ),
        (
            vec!["--datastore-endpoint", "etcd1:2379"],
            "must be an http:// or https:// URL",
        ),
    ] {
        let dir = tmp.path().join("d");
        let o = Command::new(env!("CARGO_BIN_EXE_daas"))
            .arg("master")
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .expect("run daas master");
        assert!(!o.status.success(), "{args:?} accepted");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!dir.join("kubeconfig.yaml").exists());
    }
    // `daas up` runs its own ledger.
    let o = common::daas(&[
        "up",
        "--data-dir",
        &s(&tmp.path().join("up")),
        "--ledger",
        "embedded",
        "--sui-rpc",
        "http://127.0.0.1:1",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("daas up runs its own embedded ledger"),
        "{}",
        stderr(&o)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// Two masters of one cluster on one etcd share the cluster CA and the admin token through the
/// sealed store, each with its own serving certificate: a kubeconfig written by master A works
/// against master B, and what one writes the other serves. (Master B shares A's simulated
/// enclave secret here, standing in for the attested key handoff of `--join`.)
#[test]
fn masters_on_one_etcd_share_the_cluster_ca_and_admin_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let etcd_ca = ca("etcd-test-ca");
    let ca_file = t.join("etcd-ca.crt");
    std::fs::write(&ca_file, etcd_ca.cert.pem()).expect("ca file");
    let (srv_crt, srv_key) = leaf(&etcd_ca, t, "etcd-server", true);
    let (cli_crt, cli_key) = leaf(&etcd_ca, t, "daas-master", false);
    let etcd = TlsEtcd::start(t, &ca_file, &srv_crt, &srv_key);
    let args = vec![
        "--datastore-endpoint".to_string(),
        etcd.url.clone(),
        "--datastore-cafile".into(),
        s(&ca_file),
        "--datastore-certfile".into(),
        s(&cli_crt),
        "--datastore-keyfile".into(),
        s(&cli_key),
    ];
    let (dir_a, dir_b) = (t.join("a"), t.join("b"));
    let mut a = MasterProc::spawn(&dir_a, &args);
    a.wait_ready();
    copy_dir(&dir_a.join("tee"), &dir_b.join("tee"));
    let mut b = MasterProc::spawn(
        &dir_b,
        &[
            args.clone(),
            vec!["--tls-san".into(), "master-b.example".into()],
        ]
        .concat(),
    );
    b.wait_ready();

    let read = |p: PathBuf| std::fs::read_to_string(p).expect("read");
    assert_eq!(
        read(dir_a.join("tls/ca.crt")),
        read(dir_b.join("tls/ca.crt")),
        "one cluster CA"
    );
    assert_ne!(
        read(dir_a.join("tls/server.crt")),
        read(dir_b.join("tls/server.crt")),
        "each master has its own serving certificate"
    );
    assert_eq!(
        read(dir_a.join("admin.token")),
        read(dir_b.join("admin.token"))
    );

    // A's kubeconfig pointed at B (and B's at A): the CA verifies the other's certificate and
    // the admin token authenticates.
    let (url_a, url_b) = (
        common::server_url_of(&a.kubeconfig()),
        common::server_url_of(&b.kubeconfig()),
    );
    let a_at_b = t.join("a-at-b.yaml");
    std::fs::write(&a_at_b, read(a.kubeconfig()).replace(&url_a, &url_b)).expect("write");
    let b_at_a = t.join("b-at-a.yaml");
    std::fs::write(&b_at_a, read(b.kubeconfig()).replace(&url_b, &url_a)).expect("write");
    kubectl_ok(
        &a.kubeconfig(),
        &["create", "configmap", "from-a", "--from-literal=k=a"],
    );
    kubectl_ok(
        &a_at_b,
        &["create", "configmap", "from-b", "--from-literal=k=b"],
    );
    let got = kubectl_ok(
        &b_at_a,
        &["get", "configmap", "from-a", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(got.trim(), "a");
    let got = kubectl_ok(
        &a.kubeconfig(),
        &["get", "configmap", "from-b", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(got.trim(), "b");
    // A token of another cluster is refused by both.
    let forged = t.join("forged.yaml");
    let token = read(dir_a.join("admin.token"));
    std::fs::write(
        &forged,
        read(a_at_b.clone()).replace(token.trim(), &"f".repeat(64)),
    )
    .expect("write");
    let o = kubectl(&forged, &["get", "configmap", "from-a"]);
    assert!(!o.status.success());
    // kubectl's wording of a 401.
    assert!(
        stderr(&o).contains("the server has asked for the client to provide credentials"),
        "{}",
        stderr(&o)
    );
    a.stop();
    b.stop();
}

/// `daas master --ledger embedded --sui-rpc URL` asks the embedded ledger served by another
/// process (`daas up` here) about seal tokens: a staker's credential for this master's cluster
/// authenticates; one minted for another cluster (audience) is refused with 401.
#[test]
fn master_takes_the_embedded_ledger_over_http() {
    let c = common::Cluster::start();
    let chain = c.chain_url();
    let (key, _) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let dir = c.dir.path().join("master-2");
    let mut m = MasterProc::spawn(
        &dir,
        &[
            "--ledger".to_string(),
            "embedded".into(),
            "--sui-rpc".into(),
            chain.clone(),
            // Another cluster on the same ledger: its own enclave configuration (the store
            // revision anchored on the ledger is the first cluster's).
            "--enclave-measurement".into(),
            "ab".repeat(48),
        ],
    );
    m.wait_ready();
    let health: serde_json::Value = serde_json::from_str(&kubectl_ok(
        &m.kubeconfig(),
        &["get", "--raw", "/api/v1/health"],
    ))
    .expect("health JSON");
    let audience = health["audience"].as_str().expect("audience").to_string();
    assert_ne!(audience, c.audience(), "a second cluster");
    let admin_kc = std::fs::read_to_string(m.kubeconfig()).expect("kubeconfig");
    let admin_token = std::fs::read_to_string(dir.join("admin.token")).expect("token");
    let as_alice = |aud: &str| -> Output {
        let cred = common::daas_ok(&[
            "token",
            "--chain",
            &chain,
            "--key",
            key.to_str().expect("utf-8"),
            "--audience",
            aud,
        ]);
        let kc = c.dir.path().join("alice-at-master-2.yaml");
        std::fs::write(&kc, admin_kc.replace(admin_token.trim(), cred.trim())).expect("write");
        kubectl(&kc, &["get", "--raw", "/api"])
    };
    let o = as_alice(&audience);
    assert!(o.status.success(), "{}\n{}", stderr(&o), m.log());
    let o = as_alice(&c.audience());
    assert!(!o.status.success());
    // kubectl's wording of a 401 on a raw request.
    assert!(stderr(&o).contains("(Unauthorized)"), "{}", stderr(&o));
    m.stop();
}
