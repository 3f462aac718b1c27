//! Cross-checks every transaction kind built and signed by `daas_ledger::tx` against the official
//! Sui TypeScript SDK (`@mysten/sui`, pinned in tests/js/package.json): BCS parsing and
//! re-serialization, transaction digest, signature validity and signer address, personal-message
//! signatures and the `suiprivkey` key encoding.
//!
//! Needs `node` and `npm` on PATH (CI has them); fails with a clear message otherwise.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use daas_ledger::keys::SuiKeypair;
use daas_ledger::tx::{self, Deployment, SharedRef, TxContext, TxError};
use serde_json::{json, Value};
use sui_sdk_types::{Address, Digest, ObjectReference, Transaction};

fn addr(b: u8) -> Address {
    Address::new([b; 32])
}

fn oref(b: u8, version: u64) -> ObjectReference {
    ObjectReference::new(addr(b), version, Digest::new([b.wrapping_mul(3); 32]))
}

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("js")
}

fn require_tool(tool: &str) {
    match Command::new(tool).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{tool} --version` failed ({}): the JS cross-check needs Node.js 20+ and npm on PATH",
            out.status
        ),
        Err(e) => panic!(
            "`{tool}` is not available ({e}): the JS cross-check against @mysten/sui needs Node.js 20+ \
             and npm on PATH (install them; CI has them). This test does not skip."
        ),
    }
}

fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules")
        .join("@mysten")
        .join("sui")
        .join("package.json")
        .exists()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run `npm ci --prefix {}`: {e}", dir.display()));
    assert!(
        status.success(),
        "`npm ci --prefix {}` failed: {status}",
        dir.display()
    );
}

struct Case {
    name: String,
    tx: Transaction,
    signer: SuiKeypair,
    /// Sender key (the signer, unless this is a negative case).
    sender: SuiKeypair,
    calls: Vec<&'static str>,
    pure: Vec<(&'static str, String)>,
}

fn cases() -> Vec<Case> {
    let alice = SuiKeypair::from_seed([0x5a; 32]);
    let admin = SuiKeypair::generate();
    let d = Deployment {
        package: addr(0x0a),
        pool: SharedRef {
            id: addr(0xb0),
            initial_shared_version: 3,
        },
        gateway: SharedRef {
            id: addr(0xb1),
            initial_shared_version: 4,
        },
        admin_cap: Some(oref(0xb2, 5)),
        enclave_config: Some(SharedRef {
            id: addr(0xb3),
            initial_shared_version: 6,
        }),
        market: Some(SharedRef {
            id: addr(0xb5),
            initial_shared_version: 8,
        }),
    };
    let config = d.enclave_config.expect("enclave config");
    let enclave = SharedRef {
        id: addr(0xb4),
        initial_shared_version: 7,
    };
    let user = TxContext::new(alice.address(), vec![oref(0x11, 9)]);
    let adm = TxContext::new(admin.address(), vec![oref(0x12, 10), oref(0x13, 11)])
        .with_budget(50_000_000)
        .with_price(1_500);
    let b = |t: Result<Transaction, TxError>| t.expect("build");
    let hexs = |v: &[u8]| hex::encode(v);
    let node = addr(0x33);
    let report_sig = [0x42u8; 64];
    let report = daas_ledger::contract::SlashReport {
        node,
        node_id: "worker-ü-1".into(),
        generation: 3,
        nonce: 2,
        reason: "missed heartbeats".into(),
        epoch: 9,
    };
    let doc: Vec<u8> = (0..1200u32).map(|i| (i % 251) as u8).collect();
    let mut out = vec![
        (
            "stake",
            &alice,
            b(tx::stake(&user, &d, 1_000_000, 1, "worker-ü-1")),
            vec!["staking::stake"],
            vec![
                ("u64", "1000000".to_string()),
                ("u8", "1".into()),
                ("string", "worker-ü-1".into()),
            ],
        ),
        (
            "request_unstake",
            &alice,
            b(tx::request_unstake(&user, &d)),
            vec!["staking::request_unstake"],
            vec![],
        ),
        (
            "withdraw",
            &alice,
            b(tx::withdraw(&user, &d)),
            vec!["staking::withdraw"],
            vec![],
        ),
        (
            "issue_seal_token",
            &alice,
            b(tx::issue_seal_token(&user, &d)),
            vec!["k8s_gateway::issue_seal_token"],
            vec![],
        ),
        (
            "revoke_seal_token",
            &alice,
            b(tx::revoke_seal_token(&user, &d, &oref(0x22, 15))),
            vec!["k8s_gateway::revoke_seal_token"],
            vec![],
        ),
        (
            "slash",
            &admin,
            b(tx::slash(
                &adm,
                &d,
                &config,
                &enclave,
                &report,
                1_700_000_000_123,
                &report_sig,
            )),
            vec!["staking::slash"],
            vec![
                ("address", node.to_string()),
                ("string", "worker-ü-1".into()),
                ("u64", "3".into()),
                ("u64", "2".into()),
                ("string", "missed heartbeats".into()),
                ("u64", "1700000000123".into()),
                ("vector<u8>", hexs(&report_sig)),
            ],
        ),
        (
            "anchor_state",
            &admin,
            b(tx::anchor_state(
                &adm,
                &d,
                &config,
                &enclave,
                4_294_967_301,
                1_700_000_000_456,
                &report_sig,
            )),
            vec!["enclave::anchor_state"],
            vec![
                ("u64", "4294967301".into()),
                ("u64", "1700000000456".into()),
                ("vector<u8>", hexs(&report_sig)),
            ],
        ),
        (
            "set_config",
            &admin,
            b(tx::set_config(&adm, &d, 100, 1000, 10000, 2, 999)),
            vec!["staking::set_config"],
            vec![
                ("u64", "100".into()),
                ("u64", "1000".into()),
                ("u64", "10000".into()),
                ("u64", "2".into()),
                ("u64", "999".into()),
            ],
        ),
        (
            "set_gateway",
            &admin,
            b(tx::set_gateway(&adm, &d, "https://10.0.0.1:6443", 30)),
            vec!["k8s_gateway::set_gateway"],
            vec![
                ("string", "https://10.0.0.1:6443".into()),
                ("u64", "30".into()),
            ],
        ),
        (
            "create_enclave_config",
            &admin,
            b(tx::create_enclave_config(
                &adm,
                &d,
                "k3s-daas-master",
                &[1; 48],
                &[2; 48],
                &[3; 48],
            )),
            vec!["staking::create_enclave_config"],
            vec![
                ("string", "k3s-daas-master".into()),
                ("vector<u8>", hexs(&[1; 48])),
                ("vector<u8>", hexs(&[2; 48])),
                ("vector<u8>", hexs(&[3; 48])),
            ],
        ),
        (
            "update_pcrs",
            &admin,
            b(tx::update_pcrs(&adm, &d, &[4; 48], &[5; 48], &[])),
            vec!["staking::update_pcrs"],
            vec![
                ("vector<u8>", hexs(&[4; 48])),
                ("vector<u8>", hexs(&[5; 48])),
                ("vector<u8>", String::new()),
            ],
        ),
        (
            "register_enclave_raw",
            &admin,
            b(tx::register_enclave_raw(&adm, &d, &doc)),
            vec!["enclave::register_enclave_raw"],
            vec![("vector<u8>", hexs(&doc))],
        ),
        (
            "transfer_sui",
            &admin,
            b(tx::transfer_sui(&adm, &alice.address(), 5_000_000_000)),
            vec![],
            vec![
                ("u64", "5000000000".into()),
                ("address", alice.address().to_string()),
            ],
        ),
    ]
    .into_iter()
    .map(|(name, key, tx, calls, pure)| Case {
        name: name.to_string(),
        tx,
        signer: key.clone(),
        sender: key.clone(),
        calls,
        pure,
    })
    .collect::<Vec<_>>();
    // Negative case: alice's transaction signed by the admin key.
    out.push(Case {
        name: "wrong_signer".into(),
        tx: b(tx::withdraw(&user, &d)),
        signer: admin.clone(),
        sender: alice.clone(),
        calls: vec!["staking::withdraw"],
        pure: vec![],
    });
    out
}

#[test]
fn crosscheck_with_mysten_sui_typescript_sdk() {
    require_tool("node");
    require_tool("npm");
    let dir = js_dir();
    ensure_node_modules(&dir);

    let cases = cases();
    let mut input = Vec::new();
    for c in &cases {
        let signed = tx::sign(&c.tx, &c.signer).expect("sign");
        let rust_verdict = tx::verify(&signed.tx_bytes, &signed.signatures);
        let valid = c.signer == c.sender;
        match (&rust_verdict, valid) {
            (Ok(v), true) => {
                assert_eq!(v.sender, c.sender.address(), "{}", c.name);
                assert_eq!(v.digest, c.tx.digest(), "{}", c.name);
            }
            (Err(TxError::WrongSigner { .. }), false) => {}
            (other, _) => panic!("{}: unexpected Rust verdict {other:?}", c.name),
        }
        let message = format!("k3s-daas credential for {} at 1700000000", c.name).into_bytes();
        let personal_sig = tx::sign_personal_message(&message, &c.signer);
        assert_eq!(
            tx::verify_personal_message(&message, &personal_sig).expect("personal"),
            c.signer.address()
        );
        let pure: Vec<Value> = c
            .pure
            .iter()
            .map(|(t, v)| json!({"type": t, "value": v}))
            .collect();
        let mut case = json!({
            "name": c.name,
            "tx_bytes_b64": signed.tx_bytes_base64(),
            "signature_b64": signed.signatures_base64()[0],
            "digest": c.tx.digest().to_string(),
            "sender": c.sender.address().to_string(),
            "expect_valid": valid,
            "personal_message_b64": tx::b64_encode(&message),
            "personal_signature_b64": tx::b64_encode(&personal_sig),
            "calls": c.calls,
            "pure": pure,
        });
        if valid {
            case["suiprivkey"] = json!(c.sender.to_suiprivkey());
            case["seed_hex"] = json!(c.sender.to_hex());
        }
        input.push(case);
    }
    let input = serde_json::to_vec(&input).expect("json");

    let mut child = Command::new("node")
        .arg(dir.join("crosscheck.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node crosscheck.mjs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write cases");
    let out = child.wait_with_output().expect("node output");
    assert!(
        out.status.success(),
        "node crosscheck.mjs failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "crosscheck output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(results.len(), cases.len());
    if std::env::var_os("DAAS_CROSSCHECK_VERBOSE").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }

    let t = |r: &Value, k: &str| r.get(k).and_then(Value::as_bool) == Some(true);
    let mut failures = Vec::new();
    for (c, r) in cases.iter().zip(&results) {
        assert_eq!(r["name"], json!(c.name));
        let valid = c.signer == c.sender;
        let mut expect = vec![
            "parsed",
            "digest_match",
            "tx_digest_match",
            "rebuilt_bytes_match",
            "sender_match",
            "gas_owner_match",
            "calls_match",
            "pure_match",
            "signature_valid",
            "personal_valid",
        ];
        if valid {
            expect.extend([
                "signer_matches_sender",
                "sdk_address_check",
                "personal_signer_matches_sender",
                "key_seed_match",
                "key_address_match",
                "key_reencode_match",
            ]);
        }
        for k in expect {
            if !t(r, k) {
                failures.push(format!(
                    "{}: {k} is {}",
                    c.name,
                    r.get(k).unwrap_or(&Value::Null)
                ));
            }
        }
        if let Some(errors) = r["errors"].as_array() {
            for e in errors {
                failures.push(format!("{}: SDK error {e}", c.name));
            }
        }
        // The SDK recovers the actual signer.
        if r["signer"] != json!(c.signer.address().to_string()) {
            failures.push(format!(
                "{}: SDK signer {} != {}",
                c.name,
                r["signer"],
                c.signer.address()
            ));
        }
        if !valid && t(r, "signer_matches_sender") {
            failures.push(format!(
                "{}: SDK accepted a signature from the wrong key",
                c.name
            ));
        }
    }

    // A tampered signature must be refused by both sides.
    let name = "tampered_signature";
    let key = SuiKeypair::from_seed([0x77; 32]);
    let ctx = TxContext::new(key.address(), vec![oref(0x14, 2)]);
    let signed =
        tx::sign(&tx::transfer_sui(&ctx, &addr(1), 1).expect("build"), &key).expect("sign");
    let mut bad = signed.signatures[0].clone();
    bad[7] ^= 0x10;
    assert!(matches!(
        tx::verify(&signed.tx_bytes, std::slice::from_ref(&bad)),
        Err(TxError::BadSignature(_))
    ));
    let neg = json!([{
        "name": name,
        "tx_bytes_b64": signed.tx_bytes_base64(),
        "signature_b64": tx::b64_encode(&bad),
        "digest": sui_sdk_types::hash::Hasher::digest(b"unused").to_string(),
        "sender": key.address().to_string(),
        "expect_valid": false,
    }]);
    let mut child = Command::new("node")
        .arg(dir.join("crosscheck.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn node");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(&neg).expect("json"))
        .expect("write");
    let out = child.wait_with_output().expect("node output");
    assert!(out.status.success());
    let r: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    if r[0]["signature_valid"] != json!(false) {
        failures.push(format!(
            "{name}: SDK accepted a tampered signature: {}",
            r[0]
        ));
    }

    assert!(
        failures.is_empty(),
        "cross-check against @mysten/sui failed:\n{}",
        failures.join("\n")
    );
    eprintln!(
        "cross-checked {} transactions + 1 tampered signature against @mysten/sui",
        cases.len()
    );
}
