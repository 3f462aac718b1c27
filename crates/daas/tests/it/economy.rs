//! The economy end to end: `daas up` (embedded ledger) with a short settlement period and two
//! real staked agents. A user stakes, deposits escrow and runs a Deployment spread over both
//! nodes for several settlement periods; the ledger shows the escrow going down by exactly the
//! `Charged` events and each node operator's earnings going up by exactly its charged lines.
//! One node is killed and slashed and earns nothing afterwards while the other keeps earning;
//! the user withdraws the rest. The user's `daas.io/v1` Usage shows the spend (and is read-only:
//! 405); a second user without escrow is scaled to zero after the grace period with an Event
//! and the Funded=False condition, and gets the workload back after depositing. Needs root and
//! containerd (scripts/test.sh installs it).

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::agent::{start_agent, wait_for, wait_node_ready, Agent};
use common::{daas_ok, stderr, stdout, Cluster};
use daas_ledger::contract::Event;
use daas_ledger::remote::RemoteLedger;
use daas_ledger::Ledger;
use sui_sdk_types::Address;

const RESTRICTED: &str = "      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: c\n        image: localhost/k3s-daas/busybox:latest\n        imagePullPolicy: IfNotPresent\n        command: [sh, -c, \"sleep 3600\"]\n        resources: {requests: {cpu: 100m, memory: 16Mi}}\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";

fn deployment(name: &str, replicas: u32) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{RESTRICTED}")
}

struct Chain {
    rt: tokio::runtime::Runtime,
    ledger: Arc<dyn Ledger>,
    url: String,
}

impl Chain {
    fn new(url: &str) -> Chain {
        Chain {
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            ledger: Arc::new(RemoteLedger::new(url).expect("ledger")),
            url: url.to_string(),
        }
    }

    /// `daas deposit` (the CLI a user runs).
    fn deposit(&self, key: &Path, amount: u64) {
        let out = daas_ok(&[
            "deposit",
            "--chain",
            &self.url,
            "--key",
            key.to_str().unwrap(),
            "--amount",
            &amount.to_string(),
        ]);
        assert!(out.contains("escrow balance"), "{out}");
    }

    /// `daas withdraw-escrow` of `amount` (or `--all`); the abort code when refused, as the CLI
    /// prints it ("... with EName (code)").
    fn withdraw(&self, key: &Path, amount: Option<u64>) -> Result<(), Option<u64>> {
        self.cli_withdraw("withdraw-escrow", key, amount)
    }

    fn cli_withdraw(&self, cmd: &str, key: &Path, amount: Option<u64>) -> Result<(), Option<u64>> {
        let amount = amount.map(|a| a.to_string());
        let mut args = vec![cmd, "--chain", &self.url, "--key", key.to_str().unwrap()];
        match &amount {
            Some(a) => args.extend(["--amount", a.as_str()]),
            None => args.push("--all"),
        }
        let o = common::daas(&args);
        if o.status.success() {
            return Ok(());
        }
        let err = stderr(&o);
        // "... aborted in economy::<fn> with EName (code)"
        Err(err
            .split_once("aborted in ")
            .and_then(|(_, t)| t.split_once(" with "))
            .and_then(|(_, t)| t.split_once('('))
            .and_then(|(_, t)| t.split_once(')'))
            .and_then(|(c, _)| c.trim().parse().ok()))
    }

    fn account(&self, a: Address) -> Option<daas_ledger::contract::Account> {
        self.rt.block_on(self.ledger.account(a)).expect("account")
    }

    fn earned(&self, a: Address) -> u64 {
        self.rt
            .block_on(self.ledger.earnings(a))
            .expect("earnings")
            .map(|e| e.earned)
            .unwrap_or(0)
    }

    fn last_period(&self) -> u64 {
        self.rt
            .block_on(self.ledger.market())
            .expect("market")
            .expect("market exists")
            .last_period
    }

    /// Every `Charged` event for `user`: (period, node id, operator, charged).
    fn charged(&self, user: Address) -> Vec<(u64, String, Address, u64)> {
        self.rt
            .block_on(self.ledger.recent_events(100_000))
            .expect("events")
            .into_iter()
            .filter_map(|r| match r.event {
                Event::Charged {
                    period,
                    user: u,
                    node_id,
                    operator,
                    charged,
                    ..
                } if u == user => Some((period, node_id, operator, charged)),
                _ => None,
            })
            .collect()
    }

    /// Sum of every `Charged` event paying `operator` (all users).
    fn charged_to(&self, operator: Address) -> u64 {
        self.rt
            .block_on(self.ledger.recent_events(100_000))
            .expect("events")
            .into_iter()
            .filter_map(|r| match r.event {
                Event::Charged {
                    operator: o,
                    charged,
                    ..
                } if o == operator => Some(charged),
                _ => None,
            })
            .sum::<u64>()
    }

    fn wait_periods(&self, n: u64, c: &Cluster, a: &Agent) {
        let target = self.last_period() + n;
        wait_for(
            c,
            &format!("settlement period {target}"),
            Duration::from_secs(60),
            || self.last_period() >= target,
            a,
        );
    }
}

fn operator(a: &Agent) -> Address {
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a.config).unwrap()).unwrap();
    cfg["sui_wallet_address"].as_str().unwrap().parse().unwrap()
}

fn jsonpath(c: &Cluster, kc: &Path, args: &[&str]) -> String {
    let o = c.kubectl_as(kc, args);
    assert!(o.status.success(), "kubectl {args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn users_pay_nodes_earn_slashed_nodes_stop_and_dry_escrow_scales_to_zero() {
    let c = Cluster::start_with(&[
        "--chain-listen",
        "127.0.0.1:0",
        "--token-cache-seconds",
        "0",
        "--node-grace-seconds",
        "10",
        "--node-slash-delay-seconds",
        "2",
        "--default-unreachable-toleration-seconds",
        "1",
        "--settlement-period",
        "4s",
        "--metering-interval",
        "1s",
        "--escrow-grace",
        "6s",
    ]);
    let url = c.chain_url();
    let chain = Chain::new(&url);
    let mut a1 = start_agent(&c, "econ-a", 30);
    let a2 = start_agent(&c, "econ-b", 31);
    wait_node_ready(&c, &a1, "econ-a");
    wait_node_ready(&c, &a2, "econ-b");
    let (op_a, op_b) = (operator(&a1), operator(&a2));

    // ---- Alice stakes, joins and deposits escrow.
    let (alice_key, alice) = c.staker(&url, "alice", &["--amount", "200", "--role", "user"]);
    let alice: Address = alice.parse().unwrap();
    let (alice_kc, out) = c.join(&url, &alice_key);
    let ns_a = common::joined_namespace(&out);
    const DEPOSIT: u64 = 50_000_000;
    chain.deposit(&alice_key, DEPOSIT);
    // A withdrawal above the balance is refused (EInsufficientBalance).
    assert_eq!(
        chain.withdraw(&alice_key, Some(DEPOSIT + 1)),
        Err(Some(301))
    );

    let o = apply_as(&c, &alice_kc, &ns_a, &deployment("web", 2));
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(
        &c,
        "alice's 2 pods Running on both nodes",
        Duration::from_secs(120),
        || {
            let out = stdout(&c.kubectl(&[
                "get",
                "pods",
                "-n",
                &ns_a,
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName}/{.status.phase}{\"\\n\"}{end}",
            ]));
            let mut l: Vec<&str> = out.lines().collect();
            l.sort();
            l == ["econ-a/Running", "econ-b/Running"]
        },
        &a1,
    );

    // ---- Three settlement periods with both nodes charging.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ch = chain.charged(alice);
        let periods: std::collections::BTreeSet<u64> = ch.iter().map(|x| x.0).collect();
        let nodes: std::collections::BTreeSet<&str> = ch
            .iter()
            .filter(|x| x.3 > 0)
            .map(|x| x.1.as_str())
            .collect();
        if periods.len() >= 3 && nodes.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 3 settled periods on both nodes: {ch:?}\nserver log:\n{}",
            tail(&c.log())
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A consistent snapshot (no settlement between the reads).
    let (acct, charged) = loop {
        let before = chain.last_period();
        let acct = chain.account(alice).expect("alice's account");
        let ch = chain.charged(alice);
        let e = (chain.earned(op_a), chain.earned(op_b));
        if chain.last_period() == before {
            break (acct, (ch, e));
        }
    };
    let (ch, (earned_a, earned_b)) = charged;
    let total: u64 = ch.iter().map(|x| x.3).sum();
    assert!(total > 0);
    assert_eq!(acct.spent, total, "escrow spent = sum of Charged: {ch:?}");
    assert_eq!(acct.balance, DEPOSIT - total);
    let per_op = |op: Address| -> u64 { ch.iter().filter(|x| x.2 == op).map(|x| x.3).sum() };
    assert_eq!(
        earned_a,
        per_op(op_a),
        "operator a earned its charged lines"
    );
    assert_eq!(
        earned_b,
        per_op(op_b),
        "operator b earned its charged lines"
    );
    assert!(
        earned_a > 0 && earned_b > 0,
        "both nodes earn: {earned_a} {earned_b}"
    );

    // ---- Alice's Usage: her spend and Funded=True; read-only for her (405), invisible to others.
    let usage = jsonpath(
        &c,
        &alice_kc,
        &["get", "usage", "current", "-n", &ns_a, "-o", "json"],
    );
    let usage: serde_json::Value = serde_json::from_str(&usage).unwrap();
    assert!(
        usage["status"]["account"]["spent"].as_u64().unwrap() > 0,
        "{usage}"
    );
    assert_eq!(usage["status"]["conditions"][0]["type"], "Funded");
    assert_eq!(usage["status"]["conditions"][0]["status"], "True");
    assert!(
        usage["status"]["lastSettlement"]["period"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let yaml = jsonpath(
        &c,
        &alice_kc,
        &["get", "usage", "current", "-n", &ns_a, "-o", "yaml"],
    );
    assert!(
        yaml.contains("kind: Usage") && yaml.contains("type: Funded"),
        "{yaml}"
    );
    // A watch sees the object (and its updates at each settlement).
    let watched = jsonpath(
        &c,
        &alice_kc,
        &[
            "get",
            "--raw",
            &format!("/apis/daas.io/v1/namespaces/{ns_a}/usages?watch=1&timeoutSeconds=6"),
        ],
    );
    assert!(
        watched.contains("\"type\":\"ADDED\"") && watched.contains("\"type\":\"MODIFIED\""),
        "{watched}"
    );
    let table = jsonpath(&c, &alice_kc, &["get", "usage", "-n", &ns_a]);
    assert!(
        table.contains("FUNDED") && table.contains("current"),
        "{table}"
    );
    let e = c.kubectl_as(&alice_kc, &["delete", "usage", "current", "-n", &ns_a]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("MethodNotAllowed"), "{}", stderr(&e));
    let e = c.kubectl(&["delete", "usage", "current", "-n", &ns_a]);
    assert!(
        stderr(&e).contains("MethodNotAllowed"),
        "admin: {}",
        stderr(&e)
    );

    // ---- Bob: no escrow. Scaled to zero after the grace, with the Event and the condition.
    let (bob_key, _bob) = c.staker(&url, "bob", &["--amount", "200", "--role", "user"]);
    let (bob_kc, out) = c.join(&url, &bob_key);
    let ns_b = common::joined_namespace(&out);
    let e = c.kubectl_as(&bob_kc, &["get", "usage", "current", "-n", &ns_a]);
    assert!(
        stderr(&e).contains("Forbidden"),
        "bob reads alice's usage: {}",
        stderr(&e)
    );
    let o = apply_as(&c, &bob_kc, &ns_b, &deployment("api", 1));
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(
        &c,
        "bob's deployment scaled to zero",
        Duration::from_secs(60),
        || {
            stdout(&c.kubectl(&[
                "get",
                "deploy",
                "api",
                "-n",
                &ns_b,
                "-o",
                "jsonpath={.spec.replicas}/{.metadata.annotations.daas\\.io/suspended-replicas}",
            ])) == "0/1"
        },
        &a2,
    );
    let events = c.ok(&[
        "get",
        "events",
        "-n",
        &ns_b,
        "--field-selector",
        "reason=EscrowExhausted",
        "-o",
        "jsonpath={.items[*].involvedObject.kind}",
    ]);
    assert!(events.contains("Deployment"), "{events}");
    let cond = jsonpath(
        &c,
        &bob_kc,
        &["get", "usage", "current", "-n", &ns_b, "-o",
          "jsonpath={.status.conditions[?(@.type==\"Funded\")].status}/{.status.conditions[?(@.type==\"Funded\")].reason}"],
    );
    assert_eq!(cond, "False/NoAccount");
    // Bob clears the annotation and scales up: held at zero again.
    let o = c.kubectl_as(
        &bob_kc,
        &["patch", "deploy", "api", "-n", &ns_b, "--type=merge", "-p",
          r#"{"metadata":{"annotations":{"daas.io/suspended-replicas":null}},"spec":{"replicas":2}}"#],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(
        &c,
        "bob's deployment held at zero again",
        Duration::from_secs(30),
        || {
            stdout(&c.kubectl(&[
                "get",
                "deploy",
                "api",
                "-n",
                &ns_b,
                "-o",
                "jsonpath={.spec.replicas}/{.metadata.annotations.daas\\.io/suspended-replicas}",
            ])) == "0/2"
        },
        &a2,
    );
    // Bob deposits: the workload comes back.
    chain.deposit(&bob_key, 1_000_000);
    wait_for(
        &c,
        "bob's deployment restored",
        Duration::from_secs(30),
        || {
            stdout(&c.kubectl(&[
                "get",
                "deploy",
                "api",
                "-n",
                &ns_b,
                "-o",
                "jsonpath={.spec.replicas}/{.metadata.annotations.daas\\.io/suspended-replicas}",
            ])) == "2/"
        },
        &a2,
    );
    // The Event is written after the restoring patch.
    wait_for(
        &c,
        "bob's EscrowFunded event",
        Duration::from_secs(20),
        || {
            stdout(&c.kubectl(&[
                "get",
                "events",
                "-n",
                &ns_b,
                "--field-selector",
                "reason=EscrowFunded",
                "-o",
                "jsonpath={.items[*].type}",
            ]))
            .contains("Normal")
        },
        &a2,
    );
    let cond = jsonpath(
        &c,
        &bob_kc,
        &[
            "get",
            "usage",
            "current",
            "-n",
            &ns_b,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Funded\")].status}",
        ],
    );
    assert_eq!(cond, "True");
    c.ok(&["delete", "deploy", "api", "-n", &ns_b]);

    // ---- Node a is killed and slashed; afterwards it earns nothing, node b keeps earning.
    let stake_status = |a: Address| -> serde_json::Value {
        serde_json::from_str(&daas_ok(&[
            "account",
            "--chain",
            &url,
            "--address",
            &a.to_string(),
            "-o",
            "json",
        ]))
        .unwrap()
    };
    a1.kill_hard();
    wait_for(
        &c,
        "node a slashed on the ledger",
        Duration::from_secs(90),
        || stake_status(op_a)["stake"]["status"] == 2,
        &a2,
    );
    // A period that was metered before the slash may settle after it: its lines are skipped.
    chain.wait_periods(1, &c, &a2);
    let after_slash_a = chain.earned(op_a);
    let after_slash_b = chain.earned(op_b);
    chain.wait_periods(3, &c, &a2);
    assert_eq!(
        chain.earned(op_a),
        after_slash_a,
        "a slashed node earns nothing more"
    );
    assert!(
        chain.earned(op_b) > after_slash_b,
        "the live node keeps earning"
    );
    // Every Charged event naming node a's operator (any user) adds up to what it earned.
    assert_eq!(
        chain.charged_to(op_a),
        after_slash_a,
        "no Charged for the slashed node beyond what it had earned"
    );
    loop {
        let before = chain.last_period();
        let (charged_b, earned_b) = (chain.charged_to(op_b), chain.earned(op_b));
        if chain.last_period() == before {
            assert_eq!(
                charged_b, earned_b,
                "node b earned exactly its Charged lines"
            );
            break;
        }
    }

    // ---- Alice stops her workload and withdraws the rest.
    c.ok(&["delete", "deploy", "web", "-n", &ns_a]);
    wait_for(
        &c,
        "alice's pods gone",
        Duration::from_secs(60),
        || {
            stdout(&c.kubectl(&["get", "pods", "-n", &ns_a, "-o", "name"]))
                .trim()
                .is_empty()
        },
        &a2,
    );
    // The last metered usage settles (an empty period submits nothing); then the balance stays
    // put over more than two settlement periods.
    let mut rest = chain.account(alice).unwrap().balance;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_secs(9));
        let now = chain.account(alice).unwrap().balance;
        if now == rest {
            break;
        }
        assert!(Instant::now() < deadline, "alice's balance never settled");
        rest = now;
    }
    assert!(rest > 0 && rest < DEPOSIT);
    chain.withdraw(&alice_key, None).expect("withdraw the rest");
    let acct = chain.account(alice).unwrap();
    assert_eq!(acct.balance, 0, "{acct:?}");
    assert_eq!(acct.spent + rest, DEPOSIT);
    // Nothing left: a further withdrawal is refused.
    assert_eq!(chain.withdraw(&alice_key, Some(1)), Err(Some(301)));
    // `daas account` lists the settlement lines that charged her.
    let acct = daas_ok(&[
        "account",
        "--chain",
        &url,
        "--address",
        &alice.to_string(),
        "--settlements",
        "50",
        "-o",
        "json",
    ]);
    let acct: serde_json::Value = serde_json::from_str(&acct).expect("account JSON");
    assert_eq!(acct["escrow"]["balance"], 0, "{acct}");
    let settlements = acct["settlements"].to_string();
    assert!(settlements.contains("Charged"), "{acct}");

    // ---- Node b's operator takes its earnings out with `daas withdraw-earnings`; the user
    // cannot take them (she has no earnings) and the operator cannot take more than it has.
    let b_key = a2.dir.join("node.key");
    let earned = |op| {
        chain
            .rt
            .block_on(chain.ledger.earnings(op))
            .expect("earnings")
            .expect("node b has earnings")
    };
    let before = earned(op_b);
    assert!(before.balance > 0, "{before:?}");
    assert_eq!(
        chain.cli_withdraw("withdraw-earnings", &alice_key, Some(1)),
        Err(Some(308)),
        "a user with no earnings gets ENoEarnings"
    );
    assert_eq!(
        chain.cli_withdraw(
            "withdraw-earnings",
            &b_key,
            Some(before.balance + 1_000_000_000)
        ),
        Err(Some(301)),
        "above the earnings balance: EInsufficientBalance"
    );
    chain
        .cli_withdraw("withdraw-earnings", &b_key, None)
        .expect("node b withdraws its earnings");
    let after = earned(op_b);
    assert!(after.withdrawn >= before.balance, "{before:?} -> {after:?}");
    assert_eq!(after.earned, after.balance + after.withdrawn, "{after:?}");
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains("daas_settlements_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("daas_settled_mist_total"), "{metrics}");
}

fn apply_as(c: &Cluster, kc: &Path, ns: &str, yaml: &str) -> std::process::Output {
    let p = c.dir.path().join(format!("{ns}-apply.yaml"));
    std::fs::write(&p, yaml).unwrap();
    c.kubectl_as(kc, &["apply", "-n", ns, "-f", p.to_str().unwrap()])
}

fn tail(s: &str) -> String {
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(60)..].join("\n")
}
