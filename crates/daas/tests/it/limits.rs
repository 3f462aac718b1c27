//! Abuse limits against a real `daas up`, driven with real curl (HTTP/1.1 and HTTP/2):
//! - a user-tier staker over `--max-watches-per-user` gets 429 `TooManyRequests` with
//!   `Retry-After` and a Status, while a staked node's watch and the admin's watch still open;
//!   a closed watch frees its slot (close one, the next opens);
//! - oversized bodies get upstream's 413 `RequestEntityTooLarge` Status on create, update and
//!   patch (declared length, chunked, far over the limit) and on the master's endpoints outside
//!   the Kubernetes API (seal-token validation, staking, key shares, snapshots);
//! - a flood of forged tokens from one address is refused with 429 (after its failed
//!   authentication allowance) while a real user on another address is served; the flooding
//!   address is served again once its allowance refills.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Cluster;

/// The token a joined kubeconfig's credential plugin hands kubectl.
fn token_of(kubeconfig: &Path) -> String {
    crate::flowcontrol::exec_token(kubeconfig)
}

fn admin_token(c: &Cluster) -> String {
    let kc: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(c.kubeconfig()).unwrap()).unwrap();
    kc["users"][0]["user"]["token"]
        .as_str()
        .expect("admin token")
        .to_string()
}

/// A curl call's status, headers and body (`-i`); `extra` are further curl arguments.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not a Status ({e}): {} {}", self.head, self.body))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// Assert upstream's 429: Retry-After header, Status with details.retryAfterSeconds.
    fn assert_429(&self, what: &str) {
        assert_eq!(self.status, 429, "{what}: {} {}", self.head, self.body);
        let secs: u64 = self
            .header("retry-after")
            .unwrap_or_else(|| panic!("{what}: no Retry-After: {}", self.head))
            .parse()
            .expect("Retry-After seconds");
        assert!(secs >= 1, "{what}: Retry-After {secs}");
        let st = self.status_json();
        assert_eq!(st["kind"], "Status", "{what}");
        assert_eq!(st["reason"], "TooManyRequests", "{what}");
        assert_eq!(st["code"], 429, "{what}");
        assert_eq!(st["details"]["retryAfterSeconds"], secs, "{what}");
    }

    fn assert_413(&self, what: &str) {
        assert_eq!(self.status, 413, "{what}: {} {}", self.head, self.body);
        let st = self.status_json();
        assert_eq!(st["kind"], "Status", "{what}");
        assert_eq!(st["reason"], "RequestEntityTooLarge", "{what}");
        assert_eq!(st["code"], 413, "{what}");
        assert_eq!(
            st["message"], "Request entity too large: limit is 3145728",
            "{what}"
        );
    }
}

fn parse(out: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(out).into_owned();
    // The last response (curl -i prints a 100 Continue first when it sent Expect).
    let start = text.rfind("HTTP/").unwrap_or(0);
    let text = &text[start..];
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn curl(token: &str, method: &str, url: &str, extra: &[&str]) -> Answer {
    let (a, err) = curl_raw(token, method, url, extra);
    assert!(a.status != 0, "{method} {url} {extra:?}: no answer: {err}");
    a
}

/// curl's answer (status 0: none) and its error output.
fn curl_raw(token: &str, method: &str, url: &str, extra: &[&str]) -> (Answer, String) {
    let out = Command::new("curl")
        .args(["-sSk", "-i", "-m", "60", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    (
        parse(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An open watch: a curl process streaming into a file.
struct Watch {
    child: Child,
    out: PathBuf,
}

impl Watch {
    /// Start a watch of `url` (HTTP/2 or HTTP/1.1) and wait for its answer's status line.
    fn open(dir: &Path, name: &str, token: &str, url: &str, http2: bool) -> (Watch, Answer) {
        let out = dir.join(format!("watch-{name}.out"));
        let child = Command::new("curl")
            .args(["-sSk", "-i", "-N"])
            .arg(if http2 { "--http2" } else { "--http1.1" })
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg("-o")
            .arg(&out)
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn curl");
        let mut w = Watch { child, out };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read(&w.out).unwrap_or_default();
            let a = parse(&text);
            let exited = w.child.try_wait().ok().flatten().is_some();
            // A refusal ends the response; an open watch has its headers out.
            if a.status != 0
                && (exited || a.status == 200 && text.windows(4).any(|x| x == b"\r\n\r\n"))
            {
                return (w, a);
            }
            if exited && a.status == 0 {
                panic!("watch {name}: curl exited without an answer");
            }
            assert!(Instant::now() < deadline, "watch {name}: no answer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_open(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_user_over_the_watch_limit_gets_429_while_node_and_admin_watches_open() {
    // Three watches per user, three in all for users: alice alone fills both budgets.
    let c = Cluster::start_with(&[
        "--max-watches-per-user",
        "3",
        "--max-watches",
        "3",
        "--bookmark-seconds",
        "1",
    ]);
    let chain = c.chain_url();
    let (alice_kc, ns) = c.joined_user(&chain, "alice");
    let (bob_key, _) = c.staker(
        &chain,
        "bob",
        &[
            "--amount",
            "1000",
            "--role",
            "node",
            "--node-id",
            "bob-node",
        ],
    );
    let (bob_kc, _) = c.join(&chain, &bob_key);
    let alice = token_of(&alice_kc);
    let bob = token_of(&bob_kc);
    let admin = admin_token(&c);
    let server = c.server_url();
    let cms =
        format!("{server}/api/v1/namespaces/{ns}/configmaps?watch=true&allowWatchBookmarks=true");
    let dir = c.dir.path().to_path_buf();

    // Two watches over HTTP/1.1, one over HTTP/2: the count is per request, whatever the
    // connection.
    let mut held = Vec::new();
    for (i, h2) in [false, false, true].into_iter().enumerate() {
        let (w, a) = Watch::open(&dir, &format!("alice-{i}"), &alice, &cms, h2);
        assert_eq!(a.status, 200, "alice's watch {i}: {} {}", a.head, a.body);
        held.push(w);
    }
    for h2 in [false, true] {
        let (_w, a) = Watch::open(&dir, &format!("alice-over-{h2}"), &alice, &cms, h2);
        a.assert_429(&format!("alice's fourth watch (http2 {h2})"));
        assert!(
            a.body.contains("watches open"),
            "the refusal names the watch limit: {}",
            a.body
        );
    }
    // Several watches on one HTTP/2 connection (curl multiplexing): still refused.
    let out = Command::new("curl")
        .args(["-sSk", "--http2", "-Z", "--parallel-immediate", "-m", "20"])
        .args(["-H", &format!("Authorization: Bearer {alice}")])
        .args(["-o", "/dev/null", "-w", "%{http_code}\n"])
        .args(["-o", "/dev/null", "-w", "%{http_code}\n"])
        .arg(&cms)
        .arg(&cms)
        .output()
        .expect("curl");
    let codes = String::from_utf8_lossy(&out.stdout);
    assert!(
        codes.lines().all(|l| l.trim() == "429") && codes.lines().count() == 2,
        "multiplexed watches over the limit: {codes:?}"
    );
    // The node watches its own Node, the admin watches anything: both still open.
    let node_watch =
        format!("{server}/api/v1/nodes?fieldSelector=metadata.name%3Dbob-node&watch=true&allowWatchBookmarks=true");
    let (_bw, a) = Watch::open(&dir, "bob", &bob, &node_watch, false);
    assert_eq!(a.status, 200, "the node's watch: {} {}", a.head, a.body);
    let (_bw2, a) = Watch::open(&dir, "bob-h2", &bob, &node_watch, true);
    assert_eq!(
        a.status, 200,
        "the node's HTTP/2 watch: {} {}",
        a.head, a.body
    );
    let (_aw, a) = Watch::open(
        &dir,
        "admin",
        &admin,
        &format!("{server}/api/v1/configmaps?watch=true&allowWatchBookmarks=true"),
        true,
    );
    assert_eq!(a.status, 200, "the admin's watch: {} {}", a.head, a.body);
    // Alice's non-watch requests are not limited by her watches.
    let list = curl(
        &alice,
        "GET",
        &format!("{server}/api/v1/namespaces/{ns}/configmaps"),
        &[],
    );
    assert_eq!(list.status, 200, "alice's list: {}", list.body);

    // Closing a watch frees its slot: close the HTTP/1.1 one and the HTTP/2 one in turn.
    for idx in [2usize, 0] {
        let mut w = held.remove(idx);
        assert!(w.is_open(), "alice's watch was still open");
        drop(w);
        let deadline = Instant::now() + Duration::from_secs(15);
        let reopened = loop {
            let (w, a) = Watch::open(&dir, &format!("alice-re-{idx}"), &alice, &cms, idx == 2);
            if a.status == 200 {
                break w;
            }
            a.assert_429("a watch while the closed one is being released");
            assert!(
                Instant::now() < deadline,
                "the closed watch's slot was not freed"
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        held.push(reopened);
    }
    let (_w, a) = Watch::open(&dir, "alice-over-again", &alice, &cms, false);
    a.assert_429("alice at her limit again");
}

#[test]
fn oversized_bodies_get_413_on_every_endpoint() {
    let c = Cluster::start();
    let chain = c.chain_url();
    let (alice_kc, ns) = c.joined_user(&chain, "alice");
    let alice = token_of(&alice_kc);
    let admin = admin_token(&c);
    let server = c.server_url();
    let dir = c.dir.path();
    // A JSON object just over the limit, and one far over it.
    let over = dir.join("over.json");
    let mut body =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":""#
            .to_vec();
    body.resize(3 * 1024 * 1024 + 10, b'a');
    body.extend_from_slice(br#""}}"#);
    std::fs::write(&over, &body).unwrap();
    let huge = dir.join("huge.json");
    std::fs::write(&huge, vec![b' '; 12 * 1024 * 1024]).unwrap();
    let json = ["-H", "Content-Type: application/json"];
    let at = |p: &Path| format!("@{}", p.display());
    let (over_at, huge_at) = (at(&over), at(&huge));

    // A small configmap to update and patch.
    let cms = format!("{server}/api/v1/namespaces/{ns}/configmaps");
    let small =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":"1"}}"#;
    let a = curl(
        &alice,
        "POST",
        &cms,
        &[json[0], json[1], "--data-binary", small],
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let cm = format!("{cms}/big");

    for (who, token) in [("alice", &alice), ("admin", &admin)] {
        let cases: Vec<(&str, &str, Vec<&str>)> = vec![
            ("create", &cms, vec!["--data-binary", &over_at]),
            (
                "create, chunked",
                &cms,
                vec![
                    "--http1.1",
                    "-H",
                    "Transfer-Encoding: chunked",
                    "--data-binary",
                    &over_at,
                ],
            ),
            ("update", &cm, vec!["-X", "PUT", "--data-binary", &over_at]),
            (
                "patch",
                &cm,
                vec![
                    "-X",
                    "PATCH",
                    "-H",
                    "Content-Type: application/merge-patch+json",
                    "--data-binary",
                    &over_at,
                ],
            ),
            (
                "create, 12 MiB",
                &cms,
                vec!["--http1.1", "--data-binary", &huge_at],
            ),
            (
                "create, 12 MiB chunked",
                &cms,
                vec![
                    "--http1.1",
                    "-H",
                    "Transfer-Encoding: chunked",
                    "--data-binary",
                    &huge_at,
                ],
            ),
        ];
        for (what, url, args) in cases {
            let method = if args.contains(&"PUT") {
                "PUT"
            } else if args.contains(&"PATCH") {
                "PATCH"
            } else {
                "POST"
            };
            let args: Vec<&str> = args
                .into_iter()
                .filter(|a| *a != "-X" && *a != "PUT" && *a != "PATCH")
                .collect();
            let mut all = vec![json[0], json[1]];
            all.extend(args);
            let (a, err) = curl_raw(token, method, url, &all);
            // A chunked body far over the limit is cut once past the drain window: the client
            // reads the 413, or finds the connection closed while it still sends.
            if matches!(a.status, 0 | 100) && what.ends_with("MiB chunked") {
                assert!(
                    err.contains("Send failure")
                        || err.contains("reset")
                        || err.contains("Recv failure")
                        || err.contains("Empty reply"),
                    "{who}: {what}: {err}"
                );
                continue;
            }
            a.assert_413(&format!("{who}: {what} ({err})"));
        }
    }
    // Over HTTP/2 a body declared far over the limit is answered at once and its stream reset
    // (NO_ERROR): curl reports the reset instead of the 413; either way nothing is read.
    let (a, err) = curl_raw(
        &alice,
        "POST",
        &cms,
        &[json[0], json[1], "--http2", "--data-binary", &huge_at],
    );
    if a.status != 0 {
        a.assert_413("alice: create, 12 MiB over HTTP/2");
    } else {
        assert!(err.contains("HTTP/2"), "12 MiB over HTTP/2: {err}");
    }
    // Nothing was written.
    let a = curl(&admin, "GET", &cm, &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.status_json()["data"]["x"], "1");

    // The master's endpoints outside the Kubernetes API (some unauthenticated): 413 Status too.
    for path in [
        "/api/v1/seal-token/validate",
        "/api/v1/stake",
        "/api/v1/nodes/bob-node/heartbeat",
        "/api/v1/tee/keyshare/nonce",
        "/api/v1/tee/keyshare",
        "/api/v1/snapshots",
    ] {
        for (what, extra) in [
            ("declared", vec!["--data-binary", over_at.as_str()]),
            (
                "chunked",
                vec![
                    "--http1.1",
                    "-H",
                    "Transfer-Encoding: chunked",
                    "--data-binary",
                    over_at.as_str(),
                ],
            ),
        ] {
            let mut all = vec![json[0], json[1]];
            all.extend(extra);
            let a = curl(&admin, "POST", &format!("{server}{path}"), &all);
            a.assert_413(&format!("POST {path} ({what})"));
        }
    }
}

#[test]
fn a_forged_token_flood_is_refused_with_429_while_a_real_user_is_served() {
    let c = Cluster::start();
    let chain = c.chain_url();
    let (alice_kc, ns) = c.joined_user(&chain, "alice");
    let alice = token_of(&alice_kc);
    let admin = admin_token(&c);
    let server = c.server_url();
    let url = format!("{server}/api/v1/namespaces/default/configmaps");
    // The flood: forged tokens from 127.0.0.2, many requests per curl (one connection each).
    let flood_for = Duration::from_secs(6);
    let started = Instant::now();
    let mut flood = Vec::new();
    for t in 0..4 {
        let url = url.clone();
        flood.push(std::thread::spawn(move || {
            let mut codes: Vec<u16> = Vec::new();
            let mut n = 0;
            while started.elapsed() < flood_for {
                let mut cmd = Command::new("curl");
                cmd.args(["-sk", "--interface", "127.0.0.2", "-m", "30"]);
                for i in 0..50 {
                    n += 1;
                    cmd.args([
                        "-H",
                        &format!("Authorization: Bearer forged-{t}-{n}-{i}"),
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}\n",
                        &url,
                    ]);
                    if i < 49 {
                        cmd.arg("--next");
                        cmd.args(["-sk", "--interface", "127.0.0.2", "-m", "30"]);
                    }
                }
                let out = cmd.output().expect("curl");
                codes.extend(
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .filter_map(|l| l.trim().parse::<u16>().ok()),
                );
            }
            codes
        }));
    }
    // Meanwhile alice (127.0.0.1) is served, one request after the other.
    let mine = format!("{server}/api/v1/namespaces/{ns}/configmaps");
    let mut served = 0;
    let mut forged_refused = None;
    let mut blocked = None;
    while started.elapsed() < flood_for {
        let a = curl(&alice, "GET", &mine, &[]);
        assert_eq!(
            a.status, 200,
            "alice during the flood: {} {}",
            a.head, a.body
        );
        served += 1;
        // Once the flood has drained the address's allowance, a forged token from it is
        // refused with 429 (a token may refill now and then: 401 is allowed too) ...
        if started.elapsed() > Duration::from_secs(2) && forged_refused.is_none() {
            let a = curl("forged", "GET", &url, &["--interface", "127.0.0.2"]);
            match a.status {
                429 => forged_refused = Some(a),
                401 => {}
                s => panic!("a forged token during the flood: {s} {}", a.body),
            }
        }
        // ... and even a valid token from it gets 429: its credentials are not checked again
        // until the allowance refills.
        if started.elapsed() > Duration::from_secs(3) && blocked.is_none() {
            blocked = Some(curl(&admin, "GET", &url, &["--interface", "127.0.0.2"]));
        }
    }
    let blocked = blocked.expect("a valid token from the flooding address was tried");
    let codes: Vec<u16> = flood
        .into_iter()
        .flat_map(|f| f.join().expect("flood thread"))
        .collect();
    let unauthorized = codes.iter().filter(|c| **c == 401).count();
    let refused = codes.iter().filter(|c| **c == 429).count();
    eprintln!(
        "forged flood: {} requests, {unauthorized} 401, {refused} 429; alice served {served}",
        codes.len()
    );
    assert!(
        codes.iter().all(|c| *c == 401 || *c == 429),
        "the forged flood got something else: {codes:?}"
    );
    assert!(unauthorized > 0, "no forged token was even checked");
    assert!(
        refused > unauthorized,
        "the flood was not refused: {unauthorized} 401, {refused} 429"
    );
    assert!(served > 0);
    forged_refused
        .expect("no forged token from the flooding address was refused with 429")
        .assert_429("a forged token from the flooding address");
    match blocked.status {
        429 => blocked.assert_429("a valid token from the flooding address"),
        // (A token of the allowance may just have refilled.)
        200 => {}
        s => panic!(
            "a valid token from the flooding address: {s} {}",
            blocked.body
        ),
    }
    // The allowance refills (10 per second): the address is served again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = curl(&admin, "GET", &url, &["--interface", "127.0.0.2"]);
        if a.status == 200 {
            break;
        }
        a.assert_429("the flooding address while it waits");
        assert!(Instant::now() < deadline, "the address stayed refused");
        std::thread::sleep(Duration::from_millis(200));
    }
    // An unauthenticated refusal is still 401 for a fresh address.
    let a = curl("forged", "GET", &url, &["--interface", "127.0.0.3"]);
    assert_eq!(a.status, 401, "{}", a.body);
}

/// The threads of process `pid` by name (`comm`, at most 15 bytes): their scheduling.
fn threads_of(pid: u32) -> Vec<(String, daas_sched::ThreadScheduling)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let e = e.expect("task");
        let Ok(tid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else {
            continue; // ended meanwhile
        };
        if let Ok(s) = daas_sched::of_thread(tid) {
            out.push((comm.trim().to_string(), s));
        }
    }
    out
}

/// `daas up` schedules its threads by role: the main runtime's workers (the admin's, the
/// nodes' and the control plane's requests), the store committer, the audit writer and the
/// leader elections run at nice 0, the threads of users' requests at nice 10; all with the
/// short slice, which their children do not inherit. With `--low-priority-cpu off` there are
/// no low-priority threads.
#[test]
fn the_masters_threads_are_scheduled_by_role() {
    use daas_sched::{Policy, SHORT_SLICE};
    let c = Cluster::start();
    let threads = threads_of(c.pid().expect("running"));
    let table = format!("{threads:#?}");
    let named = |n: &str| -> Vec<&daas_sched::ThreadScheduling> {
        threads
            .iter()
            .filter(|(name, _)| name == n)
            .map(|(_, s)| s)
            .collect()
    };
    let short = if daas_sched::kernel_has_custom_slices() {
        Some(SHORT_SLICE)
    } else {
        None
    };
    for (role, nice) in [
        ("daas", 0),
        ("tokio-rt-worker", 0),
        ("daas-store-comm", 0),
        ("audit-log", 0),
        ("daas-leader-ele", 0),
        ("daas-low-priori", 10),
    ] {
        let ts = named(role);
        assert!(!ts.is_empty(), "no {role} thread: {table}");
        for t in ts {
            assert_eq!(
                (t.policy, t.nice, t.slice, t.reset_on_fork),
                (Policy::Normal, nice, short, true),
                "{role}: {table}"
            );
        }
    }
    drop(c);

    let off = Cluster::start_with(&["--low-priority-cpu", "off"]);
    let threads = threads_of(off.pid().expect("running"));
    assert!(
        threads.iter().all(|(n, _)| n != "daas-low-priori"),
        "{threads:#?}"
    );
}
