//! End-to-end: the escrow CLI (`daas deposit`, `daas withdraw-escrow`, `daas withdraw-earnings`,
//! `daas account`) against a real `daas chain` process (the embedded ledger over HTTP), with
//! real signed transactions; refusals show the Move abort code and name.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{daas, daas_ok, stderr, stdout};

/// A `daas chain` child, stopped (SIGTERM, then SIGKILL) when dropped, also on test failure.
struct Chain {
    child: Child,
    url: String,
}

impl Chain {
    fn start(dir: &Path) -> Chain {
        let mut child = Command::new(env!("CARGO_BIN_EXE_daas"))
            .args(["chain", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("chain"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("chain.log")).expect("chain.log"))
            .spawn()
            .expect("spawn daas chain");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read chain banner");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no ledger URL in {line:?}"))
            .trim_end_matches(':')
            .to_string();
        Chain { child, url }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A funded key (1 SUI, no stake: the escrow needs none): (key path, address).
fn funded(chain: &str, dir: &Path, name: &str) -> (String, String) {
    let (key, addr) = common::funded_key(chain, dir, name, "1000000000");
    (key.to_str().expect("utf-8").to_string(), addr)
}

fn account_json(chain: &str, addr: &str) -> serde_json::Value {
    serde_json::from_str(&daas_ok(&[
        "account",
        "--chain",
        chain,
        "--address",
        addr,
        "-o",
        "json",
    ]))
    .expect("account JSON")
}

/// Runs a command that must fail; returns its one-line error.
#[track_caller]
fn refused(args: &[&str]) -> String {
    let o = daas(args);
    assert!(
        !o.status.success(),
        "daas {args:?} succeeded: {}",
        stdout(&o)
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    stderr(&o)
}

#[test]
fn deposit_top_up_withdraw_and_refusals_with_abort_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Chain::start(dir.path());
    let c = chain.url.as_str();
    let (alice_key, alice) = funded(c, dir.path(), "alice");
    let (bob_key, bob) = funded(c, dir.path(), "bob");

    // Nothing yet: no account, no earnings, default prices.
    let a = account_json(c, &alice);
    assert!(a["escrow"].is_null(), "{a}");
    assert!(a["earnings"].is_null(), "{a}");
    assert_eq!(a["market"]["price_cpu"], 1000, "{a}");
    assert_eq!(a["market"]["price_mem"], 1, "{a}");
    assert_eq!(a["market"]["price_pod"], 1000, "{a}");
    assert_eq!(a["settlements"], serde_json::json!([]), "{a}");

    // Deposit, then top up.
    let out = daas_ok(&[
        "deposit", "--chain", c, "--key", &alice_key, "--amount", "5000",
    ]);
    assert!(out.contains("escrow balance 5000 MIST"), "{out}");
    let out = daas_ok(&[
        "deposit", "--chain", c, "--key", &alice_key, "--amount", "3000",
    ]);
    assert!(out.contains("escrow balance 8000 MIST"), "{out}");
    let a = account_json(c, &alice);
    assert_eq!(a["escrow"]["balance"], 8000, "{a}");
    assert_eq!(a["escrow"]["deposited"], 8000, "{a}");
    assert_eq!(a["escrow"]["spent"], 0, "{a}");
    // The human table (the default), found through the key.
    let table = daas_ok(&["account", "--chain", c, "--key", &alice_key]);
    assert!(table.contains(&alice), "{table}");
    assert!(
        table.contains("balance 8000 MIST (deposited 8000, spent 0)"),
        "{table}"
    );

    // Withdraw part.
    let out = daas_ok(&[
        "withdraw-escrow",
        "--chain",
        c,
        "--key",
        &alice_key,
        "--amount",
        "2000",
    ]);
    assert!(out.contains("escrow balance 6000 MIST"), "{out}");
    assert_eq!(account_json(c, &alice)["escrow"]["balance"], 6000);

    // Above the balance: refused by the ledger with the abort code; nothing changes.
    let err = refused(&[
        "withdraw-escrow",
        "--chain",
        c,
        "--key",
        &alice_key,
        "--amount",
        "6001",
    ]);
    assert!(
        err.contains("aborted in economy::withdraw_escrow with EInsufficientBalance (301)"),
        "{err}"
    );
    assert_eq!(account_json(c, &alice)["escrow"]["balance"], 6000);
    // Zero amounts.
    let err = refused(&[
        "deposit", "--chain", c, "--key", &alice_key, "--amount", "0",
    ]);
    assert!(err.contains("EZeroAmount (306)"), "{err}");
    let err = refused(&[
        "withdraw-escrow",
        "--chain",
        c,
        "--key",
        &alice_key,
        "--amount",
        "0",
    ]);
    assert!(err.contains("EZeroAmount (306)"), "{err}");

    // Another staker with no earnings and no escrow.
    let err = refused(&[
        "withdraw-earnings",
        "--chain",
        c,
        "--key",
        &bob_key,
        "--amount",
        "1",
    ]);
    assert!(
        err.contains("aborted in economy::withdraw_earnings with ENoEarnings (308)"),
        "{err}"
    );
    let err = refused(&[
        "withdraw-earnings",
        "--chain",
        c,
        "--key",
        &bob_key,
        "--all",
    ]);
    assert!(err.contains("ENoEarnings (308)"), "{err}");
    let err = refused(&["withdraw-escrow", "--chain", c, "--key", &bob_key, "--all"]);
    assert!(
        err.contains("aborted in economy::withdraw_escrow with ENoAccount (307)"),
        "{err}"
    );
    // Bob cannot take Alice's escrow: withdrawals are always from the sender's own account.
    assert!(account_json(c, &bob)["escrow"].is_null());
    assert_eq!(account_json(c, &alice)["escrow"]["balance"], 6000);

    // Alice withdraws the rest; her account stays, empty.
    let out = daas_ok(&[
        "withdraw-escrow",
        "--chain",
        c,
        "--key",
        &alice_key,
        "--all",
    ]);
    assert!(out.contains("withdrew 6000 MIST"), "{out}");
    let a = account_json(c, &alice);
    assert_eq!(a["escrow"]["balance"], 0, "{a}");
    assert_eq!(a["escrow"]["deposited"], 8000, "{a}");
    // --amount and --all together are a usage error.
    let o = daas(&[
        "withdraw-escrow",
        "--chain",
        c,
        "--key",
        &alice_key,
        "--all",
        "--amount",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
