//! API priority and fairness against a real `daas up` with a tiny concurrency limit
//! (`--max-requests-inflight 2 --max-mutating-requests-inflight 1`: one seat per priority
//! level): a user-tier staker floods the API with 64 concurrent slow requests (curl trickling
//! the body, so each holds its seat or queue place while it arrives); some of its
//! requests are refused with 429 `TooManyRequests` and `Retry-After`, while the admin (exempt)
//! and a staked node (node-high, its own Lease) keep being served, and the master's leader
//! Leases keep renewing (no "stopped leading", no new transition).

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Cluster;
use http_body_util::BodyExt;

const FLAGS: &[&str] = &[
    "--max-requests-inflight",
    "2",
    "--max-mutating-requests-inflight",
    "1",
    // Short leader election timings: a starved renewal would show within the flood.
    "--leader-elect-lease-duration",
    "4s",
    "--leader-elect-renew-deadline",
    "3s",
    "--leader-elect-retry-period",
    "1s",
];

async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

struct Answer {
    status: u16,
    body: serde_json::Value,
}

async fn call(
    c: &kube::Client,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Answer {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(
            body.map(|b| serde_json::to_vec(b).unwrap())
                .unwrap_or_default(),
        )
        .unwrap();
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        c.send(req.map(kube::client::Body::from)),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {path}: no answer within 60 s"))
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

fn lease(c: &Cluster, name: &str) -> serde_json::Value {
    let out = c.ok(&["get", "lease", "-n", "kube-system", name, "-o", "json"]);
    serde_json::from_str(&out).expect("lease json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_user_gets_429_while_admin_nodes_and_leader_leases_are_served() {
    let c = Cluster::start_with(FLAGS);
    let chain = c.chain_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    while lease_holder(&c, "kube-controller-manager").is_empty()
        || lease_holder(&c, "kube-scheduler").is_empty()
    {
        assert!(Instant::now() < deadline, "no leader leases: {}", c.log());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (alice_key, _) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let (alice_kc, joined) = c.join(&chain, &alice_key);
    let alice_ns = crate::common::joined_namespace(&joined);
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
    let alice = client(&alice_kc).await;
    let bob = client(&bob_kc).await;
    let admin = client(&c.kubeconfig()).await;

    // The node's own Lease (node-high).
    let bob_lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/bob-node";
    let created = call(
        &bob,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        Some(&serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "bob-node", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "bob-node", "leaseDurationSeconds": 40},
        })),
    )
    .await;
    assert_eq!(created.status, 201, "node lease create: {}", created.body);
    // Alice may read her namespace.
    let alice_list = format!("/api/v1/namespaces/{alice_ns}");
    assert_eq!(call(&alice, "GET", &alice_list, None).await.status, 200);

    let before: Vec<serde_json::Value> = ["kube-controller-manager", "kube-scheduler"]
        .iter()
        .map(|n| lease(&c, n))
        .collect();

    // The flood: 64 concurrent loops of alice, each a pod create whose body trickles in slowly
    // (curl --limit-rate): the request holds its seat, or its place in alice's queue, while
    // the body arrives (as upstream, admission comes before the body is read). The body is not
    // JSON, so the admitted ones end in 400.
    let token = exec_token(&alice_kc);
    let pods_url = format!("{}/api/v1/namespaces/{alice_ns}/pods", c.server_url());
    let body = c.dir.path().join("slow-body");
    std::fs::write(&body, vec![b'x'; 600]).unwrap();
    let flood_for = Duration::from_secs(8);
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let sample = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..64 {
        let (token, url, body) = (token.clone(), pods_url.clone(), body.clone());
        let (ok, refused, sample) = (ok.clone(), refused.clone(), sample.clone());
        flood.push(std::thread::spawn(move || {
            while started.elapsed() < flood_for {
                let out = std::process::Command::new("curl")
                    .args([
                        "-sSk",
                        "--http1.1",
                        "-i",
                        "-m",
                        "60",
                        "--limit-rate",
                        "300",
                        "-X",
                        "POST",
                    ])
                    .args(["-H", &format!("Authorization: Bearer {token}")])
                    .args(["-H", "Content-Type: application/json"])
                    .arg("--data-binary")
                    .arg(format!("@{}", body.display()))
                    .arg(&url)
                    .output()
                    .expect("run curl");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let status = text
                    .lines()
                    .find(|l| l.starts_with("HTTP/"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_string();
                match status.as_str() {
                    "400" => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    "429" => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        sample.lock().unwrap().get_or_insert(text);
                    }
                    s => panic!(
                        "alice: unexpected {s:?}: {text} ({}: {})",
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ),
                }
            }
        }));
    }
    // Meanwhile the admin and the node keep working, one request after the other.
    let mut admin_calls = 0;
    let mut node_calls = 0;
    while started.elapsed() < flood_for {
        let a = call(&admin, "GET", "/api/v1/namespaces/default/configmaps", None).await;
        assert_eq!(a.status, 200, "admin during the flood: {}", a.body);
        admin_calls += 1;
        let mut l = call(&bob, "GET", bob_lease, None).await;
        assert_eq!(l.status, 200, "node lease get during the flood: {}", l.body);
        l.body["spec"]["renewTime"] = serde_json::json!(chrono_now());
        let put = call(&bob, "PUT", bob_lease, Some(&l.body)).await;
        assert_eq!(
            put.status, 200,
            "node lease renewal during the flood: {}",
            put.body
        );
        node_calls += 1;
    }
    for f in flood {
        f.join().expect("flood thread");
    }
    let (ok, refused) = (ok.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    eprintln!(
        "flood: {ok} served, {refused} refused; admin {admin_calls}, node {node_calls} calls"
    );
    assert!(
        refused > 0,
        "no request of the flood was refused ({ok} served)"
    );
    assert!(ok > 0, "the flooding user was starved entirely");
    assert!(admin_calls > 0 && node_calls > 0);
    let s = sample.lock().unwrap().take().expect("a refused request");
    let (head, body) = s.split_once("\r\n\r\n").expect("headers and body");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case("retry-after: 1")),
        "Retry-After of a 429: {head}"
    );
    let status: serde_json::Value = serde_json::from_str(body).expect("a Status body");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["code"], 429);
    assert_eq!(status["details"]["retryAfterSeconds"], 1);

    // The leader Leases kept renewing through the flood: same holder, no transition, renewed
    // after it, and no group stopped.
    for (i, name) in ["kube-controller-manager", "kube-scheduler"]
        .iter()
        .enumerate()
    {
        let after = lease(&c, name);
        assert_eq!(
            after["spec"]["holderIdentity"], before[i]["spec"]["holderIdentity"],
            "{name}"
        );
        assert_eq!(
            after["spec"]["leaseTransitions"], before[i]["spec"]["leaseTransitions"],
            "{name} changed hands"
        );
        assert_ne!(
            after["spec"]["renewTime"], before[i]["spec"]["renewTime"],
            "{name} not renewed"
        );
    }
    let log = c.log();
    for bad in [
        "stopped leading",
        "renewing the lease timed out",
        "lost leadership",
    ] {
        assert!(!log.contains(bad), "master log has {bad:?}");
    }
    // The refusals are counted by level and flow schema.
    let metrics = c.ok(&["get", "--raw", "/metrics"]);
    assert!(
        metrics.lines().any(
            |l| l.starts_with("apiserver_flowcontrol_rejected_requests_total")
                && l.contains("priority_level=\"global-default\"")
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("leader_election_renew_duration_seconds"),
        "no renewal latency in /metrics"
    );
}

/// The bearer token a joined kubeconfig's `daas token --exec` plugin hands kubectl.
pub(crate) fn exec_token(kubeconfig: &std::path::Path) -> String {
    let kc: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).unwrap()).unwrap();
    let exec = &kc["users"][0]["user"]["exec"];
    let args: Vec<String> = exec["args"]
        .as_array()
        .expect("exec args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let out = std::process::Command::new(exec["command"].as_str().expect("exec command"))
        .args(&args)
        .output()
        .expect("run the credential plugin");
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ExecCredential");
    cred["status"]["token"].as_str().expect("token").to_string()
}

fn lease_holder(c: &Cluster, name: &str) -> String {
    let o = c.kubectl(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        name,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    common::stdout(&o).trim().to_string()
}

fn chrono_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // RFC 3339 MicroTime without a date library: seconds since the epoch as a UTC date.
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
