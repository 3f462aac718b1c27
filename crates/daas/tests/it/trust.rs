//! End-to-end, as an adversary: credential audiences, who may ask the validate endpoint, and
//! attestation pinned by the ledger (real `daas up`, `daas master`, `daas` CLI and kubectl).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{daas, daas_ok, server_url_of, stderr, stdout, Cluster};

/// A staked user-tier key with a seal token; returns (key path, address).
fn staked_user(c: &Cluster, chain: &str, name: &str) -> (PathBuf, String) {
    c.staker(chain, name, &["--amount", "200", "--role", "user"])
}

/// POST a credential to the validate endpoint with the identity of `kubeconfig`.
fn validate_as(c: &Cluster, kubeconfig: &Path, cred: &str) -> Output {
    let body = c.dir.path().join("validate.json");
    std::fs::write(&body, serde_json::json!({ "token": cred }).to_string()).unwrap();
    c.kubectl_as(
        kubeconfig,
        &[
            "create",
            "--raw",
            "/api/v1/seal-token/validate",
            "-f",
            body.to_str().unwrap(),
        ],
    )
}

#[test]
fn audience_and_validate_endpoint_authorization() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
    ]);
    let chain = c.chain_url();
    let master = server_url_of(&c.kubeconfig());
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let aud = c.audience();
    assert!(
        aud.starts_with("k3s-daas:") && aud.len() > "k3s-daas:".len(),
        "{aud}"
    );
    let (alice_key, alice) = staked_user(&c, &chain, "alice");
    let (bob_key, _bob) = staked_user(&c, &chain, "bob");
    let ak = alice_key.to_str().unwrap();
    let ns = daas_master::auth::user_namespace(&alice.parse().unwrap());

    // Minting needs the audience.
    let o = daas(&["token", "--chain", &chain, "--key", ak]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--audience is required"),
        "{}",
        stderr(&o)
    );
    let o = daas(&["token", "--chain", &chain, "--key", ak, "--audience", ""]);
    assert!(
        !o.status.success() && stderr(&o).contains("--audience is required"),
        "{}",
        stderr(&o)
    );
    let cred = daas_ok(&["token", "--chain", &chain, "--key", ak, "--audience", &aud])
        .trim()
        .to_string();

    // Unauthenticated: 401 Status, with no Authorization header at all (curl) and with a bearer
    // that authenticates nobody (the admin kubeconfig with its token replaced).
    let ca = c.data_dir().join("tls").join("ca.crt");
    let body = serde_json::json!({ "token": cred }).to_string();
    let url = format!("{master}/api/v1/seal-token/validate");
    let o = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-d",
            &body,
            &url,
        ])
        .output()
        .unwrap();
    let out = stdout(&o);
    let (status, code) = out.rsplit_once('\n').unwrap();
    assert_eq!(code, "401", "{out}");
    let status: serde_json::Value = serde_json::from_str(status).unwrap();
    assert_eq!(
        (
            status["kind"].as_str(),
            status["reason"].as_str(),
            status["code"].as_u64()
        ),
        (Some("Status"), Some("Unauthorized"), Some(401)),
        "{status}"
    );
    let anon = c.dir.path().join("anon.kubeconfig");
    let kc = std::fs::read_to_string(c.kubeconfig()).unwrap();
    let admin_token = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string();
    std::fs::write(&anon, kc.replace(&admin_token, "not-a-valid-token")).unwrap();
    let o = validate_as(&c, &anon, &cred);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Unauthorized"), "{}", stderr(&o));

    // The admin gets the full answer, and asking has no side effect: alice's namespace does not
    // exist until alice herself uses the API.
    let o = validate_as(&c, &c.kubeconfig(), &cred);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["valid"].as_bool(), v["username"].as_str()),
        (Some(true), Some(format!("daas:user:{alice}").as_str())),
        "{v}"
    );
    assert!(c.fails(&["get", "namespace", &ns]).contains("NotFound"));

    // Join writes the cluster's audience into the kubeconfig's exec args.
    let alice_kc = c.dir.path().join("alice.kubeconfig");
    daas_ok(&[
        "join",
        "--chain",
        &chain,
        "--key",
        ak,
        "--server",
        &master,
        "--trust-root",
        root.to_str().unwrap(),
        "--out",
        alice_kc.to_str().unwrap(),
    ]);
    let kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&alice_kc).unwrap()).unwrap();
    let args: Vec<&str> = kc["users"][0]["user"]["exec"]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--audience", aud.as_str()]),
        "{args:?}"
    );
    let bob_kc = c.dir.path().join("bob.kubeconfig");
    daas_ok(&[
        "join",
        "--chain",
        &chain,
        "--key",
        bob_key.to_str().unwrap(),
        "--server",
        &master,
        "--trust-root",
        root.to_str().unwrap(),
        "--out",
        bob_kc.to_str().unwrap(),
    ]);

    // Bob may not ask about alice's credential: 403, whatever its state.
    let o = validate_as(&c, &bob_kc, &cred);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Forbidden") && stderr(&o).contains("cannot post path"),
        "{}",
        stderr(&o)
    );
    let o = validate_as(&c, &bob_kc, "daas1.garbage.x");
    assert!(
        !o.status.success() && stderr(&o).contains("Forbidden"),
        "{}",
        stderr(&o)
    );
    // Alice may ask about her own.
    let o = validate_as(&c, &alice_kc, &cred);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");

    // Her first real API request provisions her namespace.
    let o = c.kubectl_as(&alice_kc, &["get", "configmaps"]);
    assert!(o.status.success(), "{}", stderr(&o));
    c.ok(&["get", "namespace", &ns]);

    // A credential for another cluster's audience is refused: the validate answer says why, and
    // the API answers 401.
    let other = daas_ok(&[
        "token",
        "--chain",
        &chain,
        "--key",
        ak,
        "--audience",
        "k3s-daas:0123456789abcdef",
    ])
    .trim()
    .to_string();
    let v: serde_json::Value =
        serde_json::from_slice(&validate_as(&c, &c.kubeconfig(), &other).stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("k3s-daas:0123456789abcdef")
            && v["error"].as_str().unwrap().contains(&aud),
        "{v}"
    );
    let o = c.kubectl_as(&anon, &["--token", &other, "get", "configmaps", "-n", &ns]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Unauthorized"), "{}", stderr(&o));

    // A credential with an empty audience (hand-signed with alice's key) is refused the same way.
    let key = daas_ledger::keys::SuiKeypair::load(&alice_key).unwrap();
    let claims = daas_ledger::credential::claims_unverified(&cred).unwrap();
    let empty = daas_ledger::credential::sign(
        &key,
        &daas_ledger::credential::Claims {
            aud: String::new(),
            ..claims.clone()
        },
    );
    let v: serde_json::Value =
        serde_json::from_slice(&validate_as(&c, &c.kubeconfig(), &empty).stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no audience"), "{v}");
    let o = c.kubectl_as(&anon, &["--token", &empty, "get", "configmaps", "-n", &ns]);
    assert!(
        !o.status.success() && stderr(&o).contains("Unauthorized"),
        "{}",
        stderr(&o)
    );
    // The same claims with the right audience work (so the refusals above are about the audience).
    let good = daas_ledger::credential::sign(
        &key,
        &daas_ledger::credential::Claims {
            aud: aud.clone(),
            ..claims
        },
    );
    let o = c.kubectl_as(&anon, &["--token", &good, "get", "configmaps", "-n", &ns]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A `daas master` (no ledger, never registered) with its own data dir and measurement.
struct Impostor {
    child: Child,
    dir: PathBuf,
}

impl Impostor {
    fn start(dir: PathBuf, measurement: &str) -> Impostor {
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("master.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_daas"))
            .args([
                "master",
                "--listen",
                "127.0.0.1:0",
                "--enclave-measurement",
                measurement,
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let m = Impostor { child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !m.dir.join("data/kubeconfig.yaml").exists() {
            assert!(
                Instant::now() < deadline,
                "impostor did not start: {}",
                std::fs::read_to_string(m.dir.join("master.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn attestation_is_pinned_by_the_ledger() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let chain = c.chain_url();
    let master = server_url_of(&c.kubeconfig());
    let root = c.data_dir().join("tee").join("trusted-root.pem");
    let (alice_key, _) = staked_user(&c, &chain, "alice");
    let ak = alice_key.to_str().unwrap();

    // The real master: PCRs from the ledger, no --expect-pcr needed.
    let v: serde_json::Value = serde_json::from_str(&daas_ok(&[
        "attest",
        "--server",
        &master,
        "--chain",
        &chain,
        "--trust-root",
        root.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["verified"], true);
    assert!(
        v["measurement_pinned_by"]["ledger"]["enclave_config"]
            .as_str()
            .is_some(),
        "{v}"
    );
    assert_eq!(v["audience"], c.audience());

    // Another master, with another measurement than the one registered on this ledger (its dev
    // root is trusted, so only the measurement can stop it): attest and join refuse it.
    let imp = Impostor::start(c.dir.path().join("impostor"), &"ab".repeat(48));
    let imp_url = server_url_of(&imp.dir.join("data/kubeconfig.yaml"));
    let imp_root = imp.dir.join("data/tee/trusted-root.pem");
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let o = daas(&[
            "attest",
            "--server",
            &imp_url,
            "--chain",
            &chain,
            "--trust-root",
            imp_root.to_str().unwrap(),
        ]);
        if !stderr(&o).contains("cannot reach master") || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!out.status.success(), "impostor accepted: {}", stdout(&out));
    assert!(stderr(&out).contains("PCR0 mismatch"), "{}", stderr(&out));
    let kc = c.dir.path().join("impostor.kubeconfig");
    let o = daas(&[
        "join",
        "--chain",
        &chain,
        "--key",
        ak,
        "--server",
        &imp_url,
        "--trust-root",
        imp_root.to_str().unwrap(),
        "--out",
        kc.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("PCR0 mismatch"), "{}", stderr(&o));
    assert!(
        !kc.exists(),
        "a kubeconfig was written for a refused master"
    );
    // With only explicit pins (no ledger) it is the user's own choice, and it verifies.
    let imp_pcr0 = hex::encode(
        daas_tee::SimulatedEnclave::pcrs_for_measurement(&[0xab; 48])
            .get(0)
            .unwrap(),
    );
    let o = daas(&[
        "attest",
        "--server",
        &imp_url,
        "--trust-root",
        imp_root.to_str().unwrap(),
        "--expect-pcr",
        &format!("0={imp_pcr0}"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Join against the real master still works, pinned by the ledger.
    let kc = c.dir.path().join("alice.kubeconfig");
    daas_ok(&[
        "join",
        "--chain",
        &chain,
        "--key",
        ak,
        "--server",
        &master,
        "--trust-root",
        root.to_str().unwrap(),
        "--out",
        kc.to_str().unwrap(),
    ]);
    let o = c.kubectl_as(&kc, &["get", "configmaps"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
