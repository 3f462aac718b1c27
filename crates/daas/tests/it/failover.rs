//! End-to-end: several masters in `daas join`, `daas attest` and the agent's failover client,
//! against real `daas up` masters.
//!
//! Two masters of ONE cluster need the HA work (shared etcd); the lead's HA test covers that.
//! Here the second "master" of a cluster is a second network path to the same real master (a TCP
//! forwarder the test owns and can cut, closing every connection through it, as a killed master
//! would), and masters of two different clusters are two real `daas up` made to share a dev
//! root.

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{daas, daas_ok, stderr, stdout, Cluster};
use daas_agent::agent::masters::{Bearer, FailoverConfig, MasterSet, MastersError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;

/// A TCP path to a master that the test can cut.
struct Forwarder {
    addr: SocketAddr,
    target: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Forwarder {
    async fn start(target: SocketAddr, at: Option<SocketAddr>) -> Forwarder {
        let bind = at.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let mut listener = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(bind).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let listener = listener.expect("bind forwarder");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            // Dropped with the task: every forwarded connection closes.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Forwarder {
            addr,
            target,
            task: Some(task),
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Cut the path: the listener and every connection through it close.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The `daas` binary with extra environment variables.
fn daas_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_daas"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run daas")
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .expect("master address")
}

fn root_of(c: &Cluster) -> String {
    c.data_dir()
        .join("tee")
        .join("trusted-root.pem")
        .display()
        .to_string()
}

fn join(
    c: &Cluster,
    chain: &str,
    key: &Path,
    servers: &[&str],
    out: &Path,
) -> std::process::Output {
    let root = root_of(c);
    let mut args = vec![
        "join",
        "--chain",
        chain,
        "--key",
        key.to_str().expect("utf-8"),
        "--trust-root",
        &root,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    for s in servers {
        args.extend(["--server", s]);
    }
    daas(&args)
}

/// `daas join --server A --server B` attests both and writes one context per master (same
/// user); each context works; kubectl does not fail over inside a context, the other context
/// does the job; `daas attest` takes several servers; an unreachable server fails `daas join`
/// before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_attest_take_several_masters() {
    let c = Cluster::start();
    let chain = c.chain_url();
    let direct = c.server_url();
    let mut fwd = Forwarder::start(addr_of(&direct), None).await;
    let (key, _addr) = c.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let kc = c.dir.path().join("alice.kubeconfig");

    // One server unreachable: refused, naming it, and no kubeconfig is written.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("https://{}", l.local_addr().expect("addr"))
    };
    let o = join(&c, &chain, &key, &[&direct, &dead], &kc);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&dead) && stderr(&o).contains("cannot reach master"),
        "{}",
        stderr(&o)
    );
    assert!(!kc.exists());

    let o = join(&c, &chain, &key, &[&fwd.url(), &direct], &kc);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&fwd.url()) && stdout(&o).contains(&direct),
        "{}",
        stdout(&o)
    );
    let v: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&kc).expect("kubeconfig")).expect("yaml");
    assert_eq!(v["current-context"].as_str(), Some("k3s-daas"));
    let servers: Vec<&str> = v["clusters"]
        .as_sequence()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["cluster"]["server"].as_str())
        .collect();
    assert_eq!(servers, [fwd.url().as_str(), direct.as_str()]);
    let users: BTreeSet<&str> = v["contexts"]
        .as_sequence()
        .expect("contexts")
        .iter()
        .filter_map(|c| c["context"]["user"].as_str())
        .collect();
    assert_eq!(users.len(), 1);
    assert_eq!(v["users"].as_sequence().map(|u| u.len()), Some(1));

    for ctx in ["k3s-daas", "k3s-daas-1"] {
        let o = c.kubectl_as(&kc, &["--context", ctx, "get", "configmaps"]);
        assert!(o.status.success(), "{ctx}: {}", stderr(&o));
    }
    // kubectl cannot fail over inside one context: with the first master gone the current
    // context fails, the other context works.
    fwd.stop().await;
    let o = c.kubectl_as(&kc, &["get", "configmaps", "--request-timeout", "5s"]);
    assert!(!o.status.success());
    let o = c.kubectl_as(&kc, &["--context", "k3s-daas-1", "get", "configmaps"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // `daas attest` with several servers: one report per master, one cluster id.
    let fwd = Forwarder::start(addr_of(&direct), None).await;
    let out = daas_ok(&[
        "attest",
        "--chain",
        &chain,
        "--trust-root",
        &root_of(&c),
        "--server",
        &fwd.url(),
        "--server",
        &direct,
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let reports = v.as_array().expect("one report per master");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["server"], fwd.url());
    assert_eq!(reports[1]["server"], direct);
    assert_eq!(reports[0]["cluster_id"], reports[1]["cluster_id"]);
    assert_eq!(reports[0]["verified"], true);
    // NAUTILUS_ENDPOINT takes a comma-separated list too.
    let o = daas_env(
        &["attest", "--chain", &chain, "--trust-root", &root_of(&c)],
        &[("NAUTILUS_ENDPOINT", &format!("{},{direct}", fwd.url()))],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .expect("json")
            .as_array()
            .map(|a| a.len()),
        Some(2)
    );
}

/// Two real masters of two different clusters that both verify (same dev root, same
/// measurement): `daas attest`, `daas join` and the agent's client refuse to use them together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masters_of_different_clusters_are_refused() {
    let c1 = Cluster::start();
    let mut c2 = Cluster::start();
    // Let c2's simulated enclave sign with c1's dev root: both attest under one trust root.
    c2.kill();
    let (t1, t2) = (c1.data_dir().join("tee"), c2.data_dir().join("tee"));
    for f in ["dev-root.pem", "dev-root.key", "trusted-root.pem"] {
        if t1.join(f).exists() {
            std::fs::copy(t1.join(f), t2.join(f)).expect("copy dev root");
        }
    }
    c2.spawn();
    let (u1, u2) = (c1.server_url(), c2.server_url());
    let root = root_of(&c1);
    let one: serde_json::Value = serde_json::from_str(&daas_ok(&[
        "attest",
        "--server",
        &u1,
        "--trust-root",
        &root,
        "--chain",
        &c1.chain_url(),
    ]))
    .expect("json");
    let pcr0 = one["pcrs"]["0"].as_str().expect("pcr0").to_string();
    // Each verifies on its own under the shared root and explicit PCRs...
    for u in [&u1, &u2] {
        daas_ok(&[
            "attest",
            "--server",
            u,
            "--trust-root",
            &root,
            "--expect-pcr",
            &format!("0={pcr0}"),
        ]);
    }
    // ...but not together.
    let o = daas(&[
        "attest",
        "--server",
        &u1,
        "--server",
        &u2,
        "--trust-root",
        &root,
        "--expect-pcr",
        &format!("0={pcr0}"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("different clusters"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&u2), "{}", stderr(&o));

    // The agent's client refuses too, before any credential is sent.
    let policy = daas_protocol::attested::AttestationPolicy::from_options(
        Some(Path::new(&root)),
        [(0u16, pcr0.as_str())],
        None,
    )
    .expect("policy");
    let e = MasterSet::attest(
        &[u1.clone(), u2.clone()],
        policy,
        Bearer::None,
        FailoverConfig::default(),
    )
    .await
    .expect_err("two clusters");
    assert!(
        matches!(
            e,
            MastersError::Cluster(daas_protocol::cluster::ClusterError::ClusterMismatch { .. })
        ),
        "{e}"
    );
}

/// The agent's failover client on a real master reached over two paths: during a stream of
/// writes the first path is cut; writes continue on the second within 5 s, every acknowledged
/// write is there, the watch is re-established and sees them all; when the first path is back
/// the client returns to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_client_fails_over_during_writes() {
    let c = Cluster::start();
    let chain = c.chain_url();
    let direct = c.server_url();
    let mut fwd = Forwarder::start(addr_of(&direct), None).await;
    let first = fwd.url();
    let (key, addr) = c.staker(&chain, "bob", &["--amount", "200", "--role", "user"]);
    let ledger: Arc<dyn daas_ledger::Ledger> =
        Arc::new(daas_ledger::remote::RemoteLedger::new(&chain).expect("ledger"));
    let policy = daas_protocol::attested::AttestationPolicy::from_options(
        Some(Path::new(&root_of(&c))),
        [],
        Some(ledger),
    )
    .expect("policy");
    let token = c.dir.path().join("bob.token");
    let set = MasterSet::attest(
        &[first.clone(), direct.clone()],
        policy,
        Bearer::File(token.clone()),
        FailoverConfig::default(),
    )
    .await
    .expect("attest both paths");
    assert_eq!(set.attested().len(), 2);
    assert_eq!(c.audience(), set.audience());
    let cred = daas_ok(&[
        "token",
        "--chain",
        &chain,
        "--key",
        key.to_str().expect("utf-8"),
        "--audience",
        &set.audience(),
    ]);
    std::fs::write(&token, cred.trim()).expect("token");
    let prober = set.spawn_prober();
    let client = set.kube_client();
    let ns = daas_master::auth::user_namespace(&addr.parse().expect("address"));
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    // The user's namespace is created on first use.
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.list(&ListParams::default()).await.is_err() {
        assert!(Instant::now() < deadline, "namespace {ns} not usable");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let watch = {
        let (api, seen) = (api.clone(), seen.clone());
        tokio::spawn(async move {
            let mut s = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = s.next().await {
                if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev {
                    if let Some(n) = o.metadata.name {
                        seen.lock().expect("seen").insert(n);
                    }
                }
            }
        })
    };

    // A stream of writes; each is retried until acknowledged (409: an earlier attempt landed).
    let acked = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (api, acked, stop, failed) = (api.clone(), acked.clone(), stop.clone(), failed.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let name = format!("w-{i:04}");
                let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name}, "data": {"i": i.to_string()}}))
                .expect("cm");
                loop {
                    match api.create(&PostParams::default(), &cm).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(e)) if e.code == 409 => break,
                        Err(_) => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                    }
                }
                acked.lock().expect("acked").push((name, Instant::now()));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(set.current_url(), first);
    let before = acked.lock().expect("acked").len();
    assert!(before > 5, "only {before} writes before the cut");
    let cut = Instant::now();
    fwd.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.expect("writer");
    let acked: Vec<(String, Instant)> = acked.lock().expect("acked").clone();
    // Writes resumed within 5 s of the cut, on the other path.
    let resumed = acked
        .iter()
        .find(|(_, t)| *t > cut)
        .map(|(_, t)| t.duration_since(cut))
        .expect("no write after the cut");
    eprintln!(
        "failover: {} writes acknowledged ({before} before the cut), first acknowledged write {resumed:?} after the cut, {} failed attempts retried by the caller",
        acked.len(),
        failed.load(std::sync::atomic::Ordering::SeqCst)
    );
    assert!(
        resumed < Duration::from_secs(5),
        "writes resumed after {resumed:?}"
    );
    assert_eq!(set.current_url(), direct);
    assert!(set.is_down(&first));
    // No acknowledged write is lost, and the re-established watch saw every one.
    let stored: BTreeSet<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    let names: BTreeSet<String> = acked.iter().map(|(n, _)| n.clone()).collect();
    assert!(names.len() > before, "no write after the cut");
    assert!(
        names.is_subset(&stored),
        "lost: {:?}",
        names.difference(&stored)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let missing: Vec<String> = names
            .difference(&seen.lock().expect("seen"))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the watch missed {missing:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The first path comes back: the prober returns to it.
    let _back = Forwarder::start(fwd.target, Some(fwd.addr)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while set.current_url() != first {
        assert!(Instant::now() < deadline, "did not return to {first}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.get(&names.iter().next().cloned().unwrap_or_default())
        .await
        .expect("get through the first path");
    watch.abort();
    prober.abort();
}

/// A real `daas agent` (root, containerd) configured with two paths to its master
/// (`nautilus_endpoint` as a list, the first current): the first path is cut while it runs; its
/// Lease keeps being renewed (the node stays Ready), a pod created afterwards is started, a pod
/// deleted afterwards is stopped (the agent's watches came back on the other path), and the
/// master still reaches it for logs.
#[test]
fn agent_keeps_its_node_ready_when_its_master_goes_away() {
    use common::agent::{start_agent_with, wait_for, wait_node_ready, wait_pods_ready};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let c = Cluster::start_with(&["--token-cache-seconds", "2"]);
    let direct = c.server_url();
    let mut fwd = rt.block_on(Forwarder::start(addr_of(&direct), None));
    let a = start_agent_with(
        &c,
        "fo-worker",
        41,
        serde_json::json!({"nautilus_endpoint": [fwd.url(), direct]}),
    );
    wait_node_ready(&c, &a, "fo-worker");
    let pod = |name: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: fo-worker
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo {name} up; sleep 3600"]
"#
        )
    };
    c.ok_stdin(&["apply", "-f", "-"], &pod("before"));
    wait_pods_ready(&c, &a, &["before"]);
    let renew = || {
        c.ok(&[
            "get",
            "lease",
            "fo-worker",
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.spec.renewTime}",
        ])
    };

    let last = renew();
    let cut = Instant::now();
    rt.block_on(fwd.stop());
    // The heartbeat (every 2 s) goes on through the other path within 5 s of the cut.
    wait_for(
        &c,
        "a Lease renewal after the cut",
        Duration::from_secs(5),
        || renew() != last,
        &a,
    );
    let renewed_after = cut.elapsed();
    // Pods are still served: a new one starts, an old one is stopped on delete.
    c.ok_stdin(&["apply", "-f", "-"], &pod("after"));
    wait_pods_ready(&c, &a, &["after"]);
    c.ok(&["delete", "pod", "before", "--wait=false"]);
    wait_for(
        &c,
        "the deleted pod gone",
        Duration::from_secs(30),
        || !stdout(&c.kubectl(&["get", "pods", "-o", "name"])).contains("pod/before"),
        &a,
    );
    // The master still reaches the node (its requests are signed by its attested enclave key).
    wait_for(
        &c,
        "logs of the new pod",
        Duration::from_secs(20),
        || stdout(&c.kubectl(&["logs", "after"])).contains("after up"),
        &a,
    );
    // And the node stayed Ready all along.
    let ready = c.ok(&[
        "get",
        "node",
        "fo-worker",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready, "True");
    assert!(a.log().contains("master down; failing over"), "{}", a.log());
    eprintln!("failover: first Lease renewal {renewed_after:?} after the cut");
}
