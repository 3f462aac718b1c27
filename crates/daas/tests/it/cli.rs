//! The `daas` binary as a user meets it: one-line errors (details only with -v, never a
//! backtrace), `daas install` / `daas uninstall` into a temporary root, `--config` files.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{stderr, stdout};

fn daas_env(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_daas"))
        .args(args)
        .env("RUST_BACKTRACE", "full")
        .env("RUST_LIB_BACKTRACE", "1")
        .env_remove("SUI_RPC_ENDPOINT")
        .output()
        .expect("run daas")
}

fn assert_one_line_failure(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "{what}: succeeded: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line:\n{err}");
    assert!(err.starts_with("error: "), "{what}: {err}");
    for noise in [
        "backtrace",
        "stack backtrace",
        "panicked",
        "Caused by",
        "Stack",
    ] {
        assert!(!err.contains(noise), "{what}: {noise} in {err}");
    }
    err
}

/// A free local port nobody listens on (bound, then released).
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

const ADDRESS: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";

#[test]
fn bad_arguments_are_one_line_with_exit_code_2() {
    let o = daas_env(&["stake", "--no-such-flag"]);
    let err = assert_one_line_failure(&o, "unknown flag");
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("--no-such-flag"), "{err}");
    // -v shows clap's full usage.
    let o = daas_env(&["-v", "stake", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage:"), "{}", stderr(&o));
    // --help is not an error.
    let o = daas_env(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("install"), "{}", stdout(&o));
}

#[test]
fn unreachable_ledger_is_one_line_and_verbose_shows_the_chain() {
    let chain = dead_endpoint();
    let o = daas_env(&["account", "--chain", &chain, "--address", ADDRESS]);
    let err = assert_one_line_failure(&o, "unreachable ledger");
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("service is running"), "no hint: {err}");
    let o = daas_env(&["account", "--chain", &chain, "--address", ADDRESS, "-v"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.lines().count() > 1, "-v shows no details: {err}");
    assert!(err.contains("caused by:"), "{err}");
    assert!(!err.contains("stack backtrace"), "{err}");
}

#[test]
fn bad_input_values_are_one_line() {
    let chain = dead_endpoint();
    let o = daas_env(&["account", "--chain", &chain, "--address", "not-an-address"]);
    let err = assert_one_line_failure(&o, "bad address");
    assert!(err.contains("--address"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    let o = daas_env(&["agent", "--config", missing.to_str().expect("utf-8")]);
    let err = assert_one_line_failure(&o, "missing staker config");
    assert!(err.contains("missing.json"), "{err}");
}

#[test]
fn master_config_file_is_read_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("master.yaml");
    std::fs::write(&cfg, "lisen: 0.0.0.0:6443\n").expect("write");
    let o = daas_env(&["master", "--config", cfg.to_str().expect("utf-8")]);
    let err = assert_one_line_failure(&o, "unknown config key");
    assert!(err.contains("lisen"), "{err}");
    std::fs::write(&cfg, "listen: nowhere\n").expect("write");
    let o = daas_env(&["master", "--config", cfg.to_str().expect("utf-8")]);
    let err = assert_one_line_failure(&o, "bad config value");
    assert!(err.contains("nowhere"), "{err}");
}

fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(
                p.strip_prefix(root)
                    .expect("below root")
                    .display()
                    .to_string(),
            );
        }
    }
    out.sort();
    out
}

fn systemd_verify(root: &Path, unit: &str) {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED systemd-analyze verify: systemd-analyze is not installed (Debian package systemd)");
        return;
    }
    let path = root.join("etc/systemd/system").join(unit);
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze");
    let err = stderr(&o);
    // Only findings about our unit count (the host's other units are not ours to judge).
    let ours: Vec<&str> = err.lines().filter(|l| l.contains(unit)).collect();
    assert!(
        o.status.success() && ours.is_empty(),
        "systemd-analyze verify {unit}: {err}"
    );
}

#[test]
fn install_and_uninstall_in_a_temporary_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).expect("root");
    let r = root.to_str().expect("utf-8");
    let bin = env!("CARGO_BIN_EXE_daas");

    // An agent needs its staker config; a bad one is refused before anything is written.
    let o = daas_env(&["install", "agent", "--root", r, "--bin", bin]);
    let err = assert_one_line_failure(&o, "agent without config");
    assert!(err.contains("--config"), "{err}");
    let staker = dir.path().join("staker-config.json");
    std::fs::write(&staker, r#"{"node_id": "Bad Name"}"#).expect("write");
    let o = daas_env(&[
        "install",
        "agent",
        "--root",
        r,
        "--bin",
        bin,
        "--config",
        staker.to_str().expect("utf-8"),
    ]);
    assert_one_line_failure(&o, "bad staker config");
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));

    let o = daas_env(&["install", "master", "--root", r, "--bin", "relative/daas"]);
    assert_one_line_failure(&o, "relative --bin");

    // A valid staker config with a relative key path.
    let key = dir.path().join("node.key");
    common::daas_ok(&["keygen", "--out", key.to_str().expect("utf-8")]);
    std::fs::write(
        &staker,
        r#"{"node_id": "worker-1", "sui_key_file": "node.key", "sui_rpc_endpoint": "http://127.0.0.1:9100",
            "stake_amount": 1000000000, "nautilus_endpoint": "https://127.0.0.1:6443"}"#,
    )
    .expect("write");
    common::daas_ok(&["install", "master", "--root", r, "--bin", bin]);
    common::daas_ok(&[
        "install",
        "agent",
        "--root",
        r,
        "--bin",
        bin,
        "--config",
        staker.to_str().expect("utf-8"),
    ]);
    let files = files_under(&root);
    for f in [
        "etc/systemd/system/k3s-daas-master.service",
        "etc/systemd/system/k3s-daas-agent.service",
        "etc/k3s-daas/master.yaml",
        "etc/k3s-daas/master.env",
        "etc/k3s-daas/staker-config.json",
        "etc/k3s-daas/agent.env",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} missing: {files:?}");
    }
    assert!(
        !files.iter().any(|x| x.contains("usr/local/bin")),
        "{files:?}"
    );
    let installed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("etc/k3s-daas/staker-config.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(
        installed["sui_key_file"].as_str(),
        Some(
            std::fs::canonicalize(&key)
                .expect("key")
                .to_str()
                .expect("utf-8")
        )
    );
    assert_eq!(
        installed["data_dir"].as_str(),
        Some("/var/lib/k3s-daas/agent")
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("etc/k3s-daas/staker-config.json"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "staker config readable by others: {mode:o}"
        );
    }
    // The installed master config is what `daas master --config` reads: it parses.
    let o = daas_env(&[
        "master",
        "--config",
        root.join("etc/k3s-daas/master.yaml")
            .to_str()
            .expect("utf-8"),
        "--listen",
        "not-an-address",
    ]);
    assert_one_line_failure(&o, "command line still parsed after the config file");

    systemd_verify(&root, "k3s-daas-master.service");
    systemd_verify(&root, "k3s-daas-agent.service");

    // A file of the operator's own in our directory survives; everything of ours goes.
    let own = root.join("etc/k3s-daas/notes.txt");
    std::fs::write(&own, "mine").expect("write");
    let out = common::daas_ok(&["uninstall", "--root", r]);
    assert!(out.contains("k3s-daas-agent.service"), "{out}");
    assert_eq!(
        files_under(&root),
        vec!["etc", "etc/k3s-daas", "etc/k3s-daas/notes.txt"]
    );
    std::fs::remove_file(&own).expect("rm");
    // Uninstalling again finds nothing; with our files gone, the root is empty.
    let out = common::daas_ok(&["uninstall", "--root", r]);
    assert!(out.contains("nothing to uninstall"), "{out}");
    common::daas_ok(&["install", "master", "--root", r, "--bin", bin]);
    common::daas_ok(&["uninstall", "--root", r]);
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
}
