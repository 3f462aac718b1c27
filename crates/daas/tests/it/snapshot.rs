//! Sealed snapshots end to end: a real `daas up` master, kubectl, `daas snapshot save|ls|restore`,
//! a Walrus-style blob server started by the test, and a new master on the restored data dir.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use daas_master::blobstore::{self, BlobStore, DirBlobStore, WalrusHttp};
use daas_master::Measurement;
use daas_store::etcd_server::EtcdProcess;
use daas_store::{EtcdStore, Store};
use serde_json::Value;

use crate::common::{daas, daas_ok, file_contains, stderr, stdout, Cluster};

const CANARY: &str = "snapshot-canary-7f3a91c2";

/// A Walrus publisher+aggregator over a directory, on a free port, for the test's lifetime.
struct BlobServer {
    rt: tokio::runtime::Runtime,
    url: String,
    dir: tempfile::TempDir,
}

impl BlobServer {
    fn start() -> BlobServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirBlobStore::new(dir.path());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        rt.spawn(async move {
            let _ = blobstore::serve(listener, store).await;
        });
        BlobServer { rt, url, dir }
    }

    fn get(&self, id: &str) -> Vec<u8> {
        self.rt
            .block_on(WalrusHttp::new(None, Some(self.url.clone())).get(id))
            .expect("blob from the aggregator")
    }
}

/// name -> (resourceVersion, uid, data) of the ConfigMaps and Secrets of `ns`.
fn objects(c: &Cluster, ns: &str) -> BTreeMap<String, (String, String, Value)> {
    let list: Value =
        serde_json::from_str(&c.ok(&["get", "configmaps,secrets", "-n", ns, "-o", "json"]))
            .expect("list JSON");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        // Its data is the serving CA of the master that runs, which a controller republishes.
        .filter(|o| o["metadata"]["name"] != "kube-root-ca.crt")
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                ),
                (
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    o["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    o["data"].clone(),
                ),
            )
        })
        .collect()
}

/// The same platform: the new data dir's simulated enclave gets the dev root of the old one.
fn same_platform(from: &Cluster, to: &Path) {
    let tee = to.join("tee");
    std::fs::create_dir_all(&tee).expect("tee dir");
    for f in [daas_tee::DEV_ROOT_CERT_FILE, daas_tee::DEV_ROOT_KEY_FILE] {
        std::fs::copy(from.data_dir().join("tee").join(f), tee.join(f)).expect("copy dev root");
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn snapshot_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(daas_master::snapshot::FILE_SUFFIX))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn save_wipe_restore_brings_back_every_object_and_resource_version() {
    let blobs = BlobServer::start();
    let mut a = Cluster::start_with(&[
        "--snapshot-interval-seconds",
        "1",
        "--snapshot-retention",
        "2",
        "--snapshot-publisher",
        &blobs.url,
        "--anchor-interval-seconds",
        "1",
    ]);
    let work = tempfile::tempdir().expect("tempdir");

    // Objects, an update and a delete, so resourceVersions differ and history has gaps.
    a.ok(&["create", "namespace", "snap"]);
    for i in 0..5 {
        a.ok(&[
            "create",
            "configmap",
            &format!("canary-cm{i}"),
            "-n",
            "snap",
            &format!("--from-literal=k=v{i}"),
        ]);
    }
    a.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        "snap",
        &format!("--from-literal=password={CANARY}"),
    ]);
    a.ok(&["label", "configmap", "canary-cm1", "-n", "snap", "x=y"]);
    a.ok(&["delete", "configmap", "canary-cm2", "-n", "snap"]);
    let before = objects(&a, "snap");
    assert_eq!(before.len(), 5, "{before:?}");
    let before_ns: Value = json(&a.ok(&["get", "namespace", "snap", "-o", "json"]));

    // Who may take a snapshot: the admin only.
    let chain = a.chain_url();
    let (user_key, _) = a.staker(&chain, "alice", &["--amount", "200", "--role", "user"]);
    let (user_kc, _) = a.join(&chain, &user_key);
    let (node_key, _) = a.staker(
        &chain,
        "node",
        &[
            "--amount",
            "1000",
            "--role",
            "node",
            "--node-id",
            "snap-node",
        ],
    );
    let (node_kc, _) = a.join(&chain, &node_key);
    let raw_post = ["create", "--raw", "/api/v1/snapshots", "-f", "/dev/null"];
    for (who, kc) in [("user", &user_kc), ("node", &node_kc)] {
        let o = a.kubectl_as(kc, &raw_post);
        assert!(!o.status.success(), "{who} took a snapshot");
        assert!(
            stderr(&o).contains("Forbidden") || stderr(&o).contains("forbidden"),
            "{who}: {}",
            stderr(&o)
        );
    }
    let mut args = vec!["--token", "not-a-valid-token"];
    args.extend_from_slice(&raw_post);
    let o = a.kubectl(&args);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Unauthorized"), "{}", stderr(&o));
    // No credentials at all: 401 (raw HTTPS, the cluster CA trusted).
    let kc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(a.kubeconfig()).expect("kubeconfig"))
            .expect("kubeconfig YAML");
    let ca = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            kc["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .expect("ca"),
        )
        .expect("base64"),
    )
    .expect("pem");
    let anon = blobs
        .rt
        .block_on(daas_master::httpcall::call(
            hyper::Method::POST,
            &format!("{}/api/v1/snapshots", a.server_url()),
            &daas_master::httpcall::Trust::CaPem(ca),
            None,
            None,
            bytes::Bytes::new(),
            1 << 20,
            Duration::from_secs(10),
        ))
        .expect("anonymous request answered");
    assert_eq!(anon.status.as_u16(), 401);

    // The admin saves one (and pushes it to the cold tier).
    let file = work.path().join("manual.daas-snapshot");
    let saved = json(&daas_ok(&[
        "snapshot",
        "save",
        "--kubeconfig",
        a.kubeconfig().to_str().expect("utf-8"),
        "--out",
        file.to_str().expect("utf-8"),
        "--publisher",
        &blobs.url,
    ]));
    let blob_id = saved["blob_id"].as_str().expect("blob id").to_string();
    assert_eq!(
        blobs.get(&blob_id),
        std::fs::read(&file).expect("snapshot file")
    );
    assert!(saved["revision"].as_i64().expect("revision") > 0);
    assert!(
        saved["ledger"].is_object(),
        "a master with a ledger records it: {saved}"
    );
    // The host operator reading the snapshot or the blob store sees no secret.
    assert!(!file_contains(&file, CANARY.as_bytes()));
    for e in std::fs::read_dir(blobs.dir.path())
        .expect("blob dir")
        .flatten()
    {
        assert!(!file_contains(&e.path(), CANARY.as_bytes()));
        // An object name in the clear (a 3-byte name also turned up in ciphertext by chance).
        assert!(!file_contains(&e.path(), b"canary-cm1"));
    }

    // With a ledger, the restored revision is raised to the revision anchored there: write on,
    // let the master anchor past the snapshot, restore the older snapshot against that ledger.
    let snap_rev = saved["revision"].as_i64().expect("revision");
    for i in 0..3 {
        a.ok(&["create", "configmap", &format!("later{i}"), "-n", "default"]);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let anchored = loop {
        let m = a.ok(&["get", "--raw", "/metrics"]);
        let v = m
            .lines()
            .find_map(|l| l.strip_prefix("daas_state_anchored_revision "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as i64;
        if v > snap_rev {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "not anchored past {snap_rev}: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let floored = work.path().join("floored");
    same_platform(&a, &floored);
    let r = json(&daas_ok(&[
        "snapshot",
        "restore",
        "--from",
        file.to_str().expect("utf-8"),
        "--data-dir",
        floored.to_str().expect("utf-8"),
        "--chain",
        &chain,
    ]));
    let floor = r["floor"].as_i64().expect("floor");
    assert!(floor >= anchored, "{r} (anchored {anchored})");
    assert!(r["revision"].as_i64().expect("revision") >= floor, "{r}");

    // Scheduled snapshots: retention keeps the newest 2, each in the blob store.
    let snap_dir = a.data_dir().join("snapshots");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let index = daas_master::snapshot::read_index(&snap_dir).expect("index");
        let files = snapshot_files(&snap_dir);
        // Three scheduled ones taken at least once the index says so of two and a third exists.
        if index.len() == 2 && files.len() == 2 && index.iter().all(|e| e.blob_id.is_some()) {
            let taken = a.log().matches("scheduled snapshot kept").count();
            if taken >= 3 {
                // The next scheduled snapshot may retire the oldest between the listing and the
                // read: a file gone meanwhile means look again, not a failure.
                let mut retired = false;
                for e in &index {
                    assert!(files.contains(&e.file), "{e:?} not on disk: {files:?}");
                    let id = e.blob_id.as_deref().expect("blob id");
                    match std::fs::read(snap_dir.join(&e.file)) {
                        Ok(bytes) => assert_eq!(blobs.get(id), bytes, "blob {id}"),
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => retired = true,
                        Err(err) => panic!("{}: {err}", e.file),
                    }
                }
                if !retired {
                    break;
                }
            }
        }
        // (A new file lands before the oldest is removed.)
        assert!(
            files.len() <= 3,
            "retention 2 exceeded: {files:?}\n{}",
            a.log()
        );
        assert!(
            Instant::now() < deadline,
            "no 3 scheduled snapshots: {files:?} {index:?}\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Stop and wipe the master; keep only what the platform gives every enclave (the dev root).
    a.interrupt(Duration::from_secs(20));
    let ls = daas_ok(&[
        "snapshot",
        "ls",
        "--snapshot-dir",
        snap_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(ls.lines().count(), 3, "{ls}");
    let index = daas_master::snapshot::read_index(&snap_dir).expect("index");
    for e in &index {
        assert!(ls.contains(e.blob_id.as_deref().expect("blob id")), "{ls}");
    }
    let mut b = Cluster::unstarted(&[]);
    same_platform(&a, &b.data_dir());
    let mut c = Cluster::unstarted(&[]);
    same_platform(&a, &c.data_dir());
    let other_platform = tempfile::tempdir().expect("tempdir");
    let etcd_master = work.path().join("etcd-master");
    same_platform(&a, &etcd_master);
    drop(a);

    // Refusals: another measurement, another platform.
    let o = daas(&[
        "snapshot",
        "restore",
        "--from",
        file.to_str().expect("utf-8"),
        "--data-dir",
        work.path().join("other-m").to_str().expect("utf-8"),
        "--enclave-measurement",
        &"ab".repeat(48),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("measurement"), "{}", stderr(&o));
    let o = daas(&[
        "snapshot",
        "restore",
        "--from",
        file.to_str().expect("utf-8"),
        "--data-dir",
        other_platform.path().to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("another platform"), "{}", stderr(&o));

    // Restore into the fresh data dir and start a master there.
    let r = json(&daas_ok(&[
        "snapshot",
        "restore",
        "--from",
        file.to_str().expect("utf-8"),
        "--data-dir",
        b.data_dir().to_str().expect("utf-8"),
    ]));
    assert_eq!(r["snapshot_revision"], saved["revision"], "{r}");
    assert!(r["revision"].as_i64() >= saved["revision"].as_i64());
    // A second restore into the same (now non-empty) store is refused.
    let o = daas(&[
        "snapshot",
        "restore",
        "--from",
        file.to_str().expect("utf-8"),
        "--data-dir",
        b.data_dir().to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    b.spawn();
    let after = objects(&b, "snap");
    assert_eq!(after, before, "objects or resourceVersions changed");
    let after_ns: Value = json(&b.ok(&["get", "namespace", "snap", "-o", "json"]));
    assert_eq!(after_ns["metadata"], before_ns["metadata"]);
    // Optimistic concurrency still works on the restored resourceVersions.
    let (rv, _, _) = &before["ConfigMap/canary-cm1"];
    b.ok(&[
        "patch",
        "configmap",
        "canary-cm1",
        "-n",
        "snap",
        "--type=merge",
        "-p",
        &format!(r#"{{"metadata":{{"resourceVersion":"{rv}"}},"data":{{"k":"new"}}}}"#),
    ]);
    let stale = b.kubectl(&[
        "patch",
        "configmap",
        "canary-cm1",
        "-n",
        "snap",
        "--type=merge",
        "-p",
        &format!(r#"{{"metadata":{{"resourceVersion":"{rv}"}},"data":{{"k":"stale"}}}}"#),
    ]);
    assert!(!stale.status.success(), "{}", stdout(&stale));
    assert!(stderr(&stale).contains("modified"), "{}", stderr(&stale));
    // New writes come after the restored revision.
    let created = json(&b.ok(&["create", "configmap", "late", "-n", "snap", "-o", "json"]));
    let new_rv: i64 = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("number");
    assert!(new_rv > r["revision"].as_i64().expect("revision"));
    drop(b);

    // Restore from the cold tier (blob id + aggregator) into another fresh data dir.
    let r = json(&daas_ok(&[
        "snapshot",
        "restore",
        "--blob-id",
        &blob_id,
        "--aggregator",
        &blobs.url,
        "--data-dir",
        c.data_dir().to_str().expect("utf-8"),
    ]));
    assert_eq!(r["snapshot_revision"], saved["revision"], "{r}");
    c.spawn();
    assert_eq!(objects(&c, "snap"), before);
    // An unknown blob id is an error, not an empty restore (ids may start with '-').
    let unknown = format!("-{}", &blobstore::content_id(b"nothing")[1..]);
    let o = daas(&[
        "snapshot",
        "restore",
        "--blob-id",
        &unknown,
        "--aggregator",
        &blobs.url,
        "--data-dir",
        work.path().join("none").to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    drop(c);

    // Onto a new master set on etcd: the keys land with their mod revisions, sealed.
    let etcd = blobs.rt.block_on(EtcdProcess::start()).expect("start etcd");
    let prefix = "/snap-test/";
    let to_etcd = |extra: &[&str]| {
        let mut args = vec![
            "snapshot",
            "restore",
            "--from",
            file.to_str().expect("utf-8"),
            "--data-dir",
            etcd_master.to_str().expect("utf-8"),
            "--datastore-endpoint",
            etcd.endpoint(),
            "--datastore-prefix",
            prefix,
        ];
        args.extend_from_slice(extra);
        daas(&args)
    };
    // The embedded store's first write is revision 1; etcd is past it: refused unless shifted.
    let o = to_etcd(&[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already at revision"), "{}", stderr(&o));
    let o = to_etcd(&["--shift-revisions"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json(&stdout(&o));
    let shift = r["shifted_by"].as_i64().expect("shifted_by");
    assert!(shift > 0, "{r}");
    assert!(
        r["revision"].as_i64().expect("rev") >= saved["revision"].as_i64().expect("rev") + shift,
        "{r}"
    );
    // Read back as that master will: its enclave unseals the cluster key the restore kept.
    let enclave =
        daas_master::enclave::open_simulated(&etcd_master.join("tee"), &Measurement::Release)
            .expect("enclave");
    let key = daas_master::clusterkey::load(&etcd_master.join("tee"), enclave.enclave.as_ref())
        .expect("cluster key")
        .expect("kept by the restore");
    let store = blobs
        .rt
        .block_on(EtcdStore::connect(
            [etcd.endpoint()],
            key.sealing_key(),
            prefix,
        ))
        .expect("connect");
    let items = blobs.rt.block_on(store.list("")).expect("list").items;
    assert_eq!(items.len() as i64, saved["keys"].as_i64().expect("keys"));
    for (name, (rv, _, _)) in &before {
        let (kind, n) = name.split_once('/').expect("kind/name");
        let kv = items
            .iter()
            .find(|kv| {
                kv.key.contains(&format!("{}s/", kind.to_lowercase()))
                    && kv.key.ends_with(&format!("/snap/{n}"))
            })
            .unwrap_or_else(|| panic!("{name} not restored into etcd"));
        assert_eq!(
            kv.mod_revision - shift,
            rv.parse::<i64>().expect("rv"),
            "{name}"
        );
    }
    // And the "host operator" of etcd finds no secret in its data dir.
    let data = etcd.data_dir().expect("etcd data dir");
    let mut stack = vec![data];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(
                std::fs::read_dir(&p)
                    .expect("dir")
                    .flatten()
                    .map(|e| e.path()),
            );
        } else {
            assert!(
                !file_contains(&p, CANARY.as_bytes()),
                "{} holds the canary",
                p.display()
            );
        }
    }
    // A second master set restoring into the same (now non-empty) prefix is refused.
    let again = work.path().join("etcd-master-2");
    std::fs::create_dir_all(again.join("tee")).expect("tee");
    for f in [daas_tee::DEV_ROOT_CERT_FILE, daas_tee::DEV_ROOT_KEY_FILE] {
        std::fs::copy(etcd_master.join("tee").join(f), again.join("tee").join(f)).expect("copy");
    }
    let o = daas(&[
        "snapshot",
        "restore",
        "--from",
        file.to_str().expect("utf-8"),
        "--data-dir",
        again.to_str().expect("utf-8"),
        "--datastore-endpoint",
        etcd.endpoint(),
        "--datastore-prefix",
        prefix,
        "--shift-revisions",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}
