//! Attested TLS with masters on SEV-SNP and TDX: real `daas master --tee sev-snp|tdx` processes
//! whose configfs-tsm is a TEST DOUBLE (a temporary directory laid out like
//! `/sys/kernel/config/tsm/report/<entry>/`, written by the test, which plays the kernel and the
//! host) serving the real SEV-SNP / TDX fixtures. The fixtures cannot bind these masters' fresh
//! TLS keys, so `daas attest` gets through the platform dispatch, the AMD / Intel chain and the
//! measurement pins and then refuses with the binding error (not "unsupported platform"); it
//! refuses a platform or measurement that disagrees with the ledger's registration, an unpinned
//! measurement, a VCEK the host swapped, a report with a debug policy and expired collateral,
//! while the Nitro (simulated) master of the same ledger keeps attesting.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{daas, daas_ok, server_url_of, stderr, Cluster};

const SNP_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
/// A time inside the TDX collateral's validity (Unix seconds).
const TDX_AT: &str = "1751000000";
const BINDING_ERR: &str = "does not bind the TLS certificate";

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tee/tests/fixtures")
        .join(p)
}

/// The configfs-tsm double: `report/k3s-daas/{provider,generation,outblob[,auxblob]}`.
struct TsmDouble {
    root: PathBuf,
}

impl TsmDouble {
    fn new(root: PathBuf, provider: &str, outblob: &[u8]) -> TsmDouble {
        let d = TsmDouble { root };
        std::fs::create_dir_all(d.entry()).expect("tsm double");
        d.write("provider", format!("{provider}\n").as_bytes());
        d.write("generation", b"1\n");
        d.write("outblob", outblob);
        d
    }
    fn entry(&self) -> PathBuf {
        self.root.join("report").join("k3s-daas")
    }
    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.entry().join(name), data).expect("write tsm double");
    }
}

/// A `daas master` process (killed on drop).
struct Master {
    child: Option<Child>,
    data: PathBuf,
    log: PathBuf,
}

impl Master {
    fn spawn(dir: &Path, name: &str, extra: &[&str]) -> Master {
        let data = dir.join(name);
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_daas"))
            .args(["master", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn daas master");
        Master {
            child: Some(child),
            data,
            log,
        }
    }

    fn start(dir: &Path, name: &str, extra: &[&str]) -> Master {
        let mut m = Self::spawn(dir, name, extra);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !m.data.join("kubeconfig.yaml").exists() {
            if let Some(st) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("master {name} exited with {st}:\n{}", m.log());
            }
            assert!(
                Instant::now() < deadline,
                "master {name} did not start:\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// The process must exit by itself with a failure.
    fn wait_failure(&mut self) -> String {
        let c = self.child.as_mut().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                self.child = None;
                assert!(!st.success(), "master exited successfully");
                return self.log();
            }
            assert!(
                Instant::now() < deadline,
                "master did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        server_url_of(&self.data.join("kubeconfig.yaml"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `daas attest` must fail; returns its stderr.
#[track_caller]
fn refused(args: &[&str]) -> String {
    let mut all = vec!["attest"];
    all.extend_from_slice(args);
    let out = daas(&all);
    let err = stderr(&out);
    assert!(!out.status.success(), "daas {all:?} succeeded: {err}");
    assert!(
        !err.contains("attests as \""),
        "refused as an unsupported platform: {err}"
    );
    err
}

/// The Nitro (simulated) master of `c` attests against the ledger; returns its Enclave object.
fn nitro_master_attests(c: &Cluster, chain: &str) -> String {
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let out = daas_ok(&[
        "attest",
        "--server",
        &c.server_url(),
        "--chain",
        chain,
        "--trust-root",
        root.to_str().expect("utf-8"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("attest JSON");
    assert_eq!(v["platform"], "nitro", "{v}");
    assert_eq!(v["verified"], true);
    v["measurement_pinned_by"]["ledger"]["enclave"]
        .as_str()
        .expect("registered enclave")
        .to_string()
}

/// An SEV-SNP certificate table holding `cert` under the VCEK GUID.
fn cert_table(cert: &[u8]) -> Vec<u8> {
    let mut t = vec![
        0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
        0xcd,
    ];
    t.extend_from_slice(&48u32.to_le_bytes());
    t.extend_from_slice(&(cert.len() as u32).to_le_bytes());
    t.extend_from_slice(&[0u8; 24]);
    t.extend_from_slice(cert);
    t
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("pem")
}

#[test]
fn sev_snp_master_is_verified_and_refused_for_its_binding() {
    let c = Cluster::start();
    let chain = c.chain_url();
    let enclave = nitro_master_attests(&c, &chain);

    let report = std::fs::read(fixture("sev-snp/report_milan.bin")).expect("report");
    let vcek = std::fs::read(fixture("sev-snp/vcek_milan.der")).expect("vcek");
    let tsm = TsmDouble::new(c.dir.path().join("tsm"), "sev_guest", &report);
    tsm.write("auxblob", &cert_table(&vcek));
    // The master names the Nitro enclave the ledger registered for the cluster.
    let m = Master::start(
        c.dir.path(),
        "snp",
        &[
            "--tee",
            "sev-snp",
            "--tsm-dir",
            tsm.root.to_str().expect("utf-8"),
            "--enclave-object",
            &enclave,
        ],
    );
    let url = m.url();
    let pin = format!("sev-snp:measurement={SNP_MEASUREMENT}");

    // The master asks the "kernel" for report data = SHA-256(its TLS leaf) || SHA-256(nonce ||
    // its enclave key), and answers with the report and the VCEK from the host's table.
    let answer = Command::new("kubectl")
        .args(["get", "--raw", "/api/v1/tee/attestation?nonce=00ff"])
        .env("KUBECONFIG", m.data.join("kubeconfig.yaml"))
        .output()
        .expect("kubectl");
    assert!(answer.status.success(), "{}", stderr(&answer));
    let v: serde_json::Value = serde_json::from_slice(&answer.stdout).expect("answer JSON");
    assert_eq!(v["platform"], "sev-snp", "{v}");
    assert_eq!(v["enclave_object_id"], enclave.as_str(), "{v}");
    let hex32 = |k: &str| -> [u8; 32] {
        hex::decode(v[k].as_str().expect(k))
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    };
    let want = daas_tee::report_data_binding(
        &hex32("tls_certificate_sha256"),
        Some(&[0x00, 0xff]),
        &hex32("public_key"),
    );
    assert_eq!(
        std::fs::read(tsm.entry().join("inblob")).expect("inblob"),
        want
    );
    let evidence = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(v["evidence"].as_str().expect("evidence"))
            .expect("base64")
    };
    assert_eq!(evidence, [report.as_slice(), vcek.as_slice()].concat());
    // Pinned to the fixture's measurement: chain, signature, TCB and measurement pass; the
    // report (another TEE's, replayed by this master) does not bind this master's certificate.
    let err = refused(&["--server", &url, "--expect-measurement", &pin]);
    assert!(err.contains(BINDING_ERR), "{err}");
    assert_eq!(
        std::fs::read(tsm.entry().join("inblob"))
            .expect("inblob")
            .len(),
        64
    );

    // Nothing pins the measurement (no ledger, no flag).
    let err = refused(&["--server", &url]);
    assert!(err.contains("unpinned"), "{err}");
    // Another measurement pinned explicitly.
    let other = format!("sev-snp:measurement={}", "00".repeat(48));
    let err = refused(&["--server", &url, "--expect-measurement", &other]);
    assert!(err.contains("sev-snp measurement is 7a1e5c26"), "{err}");
    // The ledger registers the named enclave as Nitro: platform mismatch.
    let err = refused(&[
        "--server",
        &url,
        "--chain",
        &chain,
        "--expect-measurement",
        &pin,
    ]);
    assert!(
        err.contains("registered on the ledger as nitro, but the master attests as sev-snp"),
        "{err}"
    );

    // The host operator swaps the VCEK in its certificate table (for the AMD ASK): the chain
    // no longer verifies.
    let ask = pem_der(daas_tee::sevsnp::AMD_MILAN_ASK_PEM);
    tsm.write("auxblob", &cert_table(&ask));
    let err = refused(&["--server", &url, "--expect-measurement", &pin]);
    assert!(err.contains("attestation evidence rejected"), "{err}");
    // No certificate table and no --sev-vcek: the master cannot answer (500).
    tsm.write("auxblob", &[0u8; 24]);
    let err = refused(&["--server", &url, "--expect-measurement", &pin]);
    assert!(err.contains("500") && err.contains("VCEK"), "{err}");
    tsm.write("auxblob", &cert_table(&vcek));
    // A report whose guest policy allows debugging (bit 19): a host cannot produce it with a
    // valid AMD signature, so it is refused by the report signature (a genuinely signed debug
    // report fails the policy check, tested in daas-tee).
    let mut debug = report.clone();
    debug[0x0A] |= 1 << 3;
    tsm.write("outblob", &debug);
    let err = refused(&["--server", &url, "--expect-measurement", &pin]);
    assert!(err.contains("attestation evidence rejected"), "{err}");
    // A kernel whose provider is TDX: the SNP master refuses to answer.
    tsm.write("outblob", &report);
    tsm.write("provider", b"tdx_guest\n");
    let err = refused(&["--server", &url, "--expect-measurement", &pin]);
    assert!(err.contains("500") && err.contains("tdx_guest"), "{err}");
    tsm.write("provider", b"sev_guest\n");
    let err = refused(&["--server", &url, "--expect-measurement", &pin]);
    assert!(err.contains(BINDING_ERR), "{err}");

    // The Nitro master of the same ledger keeps attesting.
    nitro_master_attests(&c, &chain);
}

#[test]
fn tdx_master_is_verified_and_refused_for_its_binding() {
    let c = Cluster::start();
    let chain = c.chain_url();
    nitro_master_attests(&c, &chain);

    let quote = std::fs::read(fixture("tdx/tdx_quote.bin")).expect("quote");
    let collateral = fixture("tdx/tdx_quote_collateral.json");
    let tsm = TsmDouble::new(c.dir.path().join("tsm"), "tdx_guest", &quote);
    let tsm_dir = tsm.root.to_str().expect("utf-8").to_string();

    // TDX needs the collateral: the master refuses to start without it.
    let mut bad = Master::spawn(
        c.dir.path(),
        "tdx-nocoll",
        &["--tee", "tdx", "--tsm-dir", &tsm_dir],
    );
    let log = bad.wait_failure();
    assert!(log.contains("--tdx-collateral"), "{log}");

    let m = Master::start(
        c.dir.path(),
        "tdx",
        &[
            "--tee",
            "tdx",
            "--tsm-dir",
            &tsm_dir,
            "--tdx-collateral",
            collateral.to_str().expect("utf-8"),
        ],
    );
    let url = m.url();
    let pin = format!("tdx:mrtd={MRTD}");
    // At a time the collateral is valid, everything but the binding passes.
    let err = refused(&[
        "--server",
        &url,
        "--expect-measurement",
        &pin,
        "--verify-at",
        TDX_AT,
    ]);
    assert!(err.contains(BINDING_ERR), "{err}");
    // Now the collateral (30-day TCB info, QE identity, CRLs) has expired.
    let err = refused(&["--server", &url, "--expect-measurement", &pin]);
    assert!(
        err.contains("attestation evidence rejected") && err.contains("expired"),
        "{err}"
    );
    // RTMR3 pinned to another value.
    let rtmr = format!("tdx:mrtd={MRTD},rtmr3={}", "11".repeat(48));
    let err = refused(&[
        "--server",
        &url,
        "--expect-measurement",
        &rtmr,
        "--verify-at",
        TDX_AT,
    ]);
    assert!(err.contains("tdx rtmr3 is"), "{err}");
    // The master names no enclave: held to the ledger's current configuration, whose pcr0
    // (MRTD) is the Nitro image's.
    let err = refused(&["--server", &url, "--chain", &chain, "--verify-at", TDX_AT]);
    assert!(err.contains("tdx mrtd is 91eb2b44"), "{err}");

    // The host operator serves edited collateral (TCB info claiming another status): Intel's
    // signature over it fails.
    let text = std::fs::read_to_string(&collateral).expect("collateral");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let tcb = v["tcb_info"]
        .as_str()
        .expect("tcb_info")
        .replacen("UpToDate", "OutOfDate", 1);
    v["tcb_info"] = serde_json::Value::String(tcb);
    let swapped = c.dir.path().join("swapped-collateral.json");
    std::fs::write(&swapped, v.to_string()).expect("write");
    let m2 = Master::start(
        c.dir.path(),
        "tdx-swapped",
        &[
            "--tee",
            "tdx",
            "--tsm-dir",
            &tsm_dir,
            "--tdx-collateral",
            swapped.to_str().expect("utf-8"),
        ],
    );
    let err = refused(&[
        "--server",
        &m2.url(),
        "--expect-measurement",
        &pin,
        "--verify-at",
        TDX_AT,
    ]);
    assert!(err.contains("attestation evidence rejected"), "{err}");

    nitro_master_attests(&c, &chain);
}
