//! End-to-end: CustomResourceDefinitions with the real kubectl and with kube-rs's
//! `#[derive(CustomResource)]` against a real `daas up` process.

use crate::common;

use std::time::Duration;

use common::Cluster;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::CustomResource;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string, pattern: '^(\S+ ){4}\S+$'}
              image: {type: string}
              replicas: {type: integer, minimum: 1, default: 1}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
"#;

const CRONTAB: &str = r#"apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: nightly
  namespace: default
spec:
  cronSpec: "0 3 * * *"
  image: backup:1
"#;

/// Poll `kubectl args` until it succeeds (the CRD is served once established).
#[track_caller]
fn poll_ok(c: &Cluster, args: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.kubectl(args);
        if out.status.success() {
            return common::stdout(&out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl {args:?}: {}",
            common::stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kubectl_custom_resources() {
    let mut c = Cluster::start();
    let out = c.ok_stdin(&["apply", "-f", "-"], CRD);
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created"
        ),
        "{out}"
    );
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/crontabs.stable.example.com",
        "--timeout=30s",
    ]);
    // Discovery lists the CRD kind and the new resource with its short names.
    let ar = c.ok(&["api-resources"]);
    let rows: Vec<Vec<&str>> = ar.lines().map(|l| l.split_whitespace().collect()).collect();
    for want in [
        vec![
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            "false",
            "CustomResourceDefinition",
        ],
        vec!["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"],
    ] {
        assert!(rows.contains(&want), "{want:?} missing from:\n{ar}");
    }
    let out = c.ok_stdin(&["apply", "-f", "-"], CRONTAB);
    assert!(
        out.contains("crontab.stable.example.com/nightly created"),
        "{out}"
    );
    let table = poll_ok(&c, &["get", "crontabs"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SPEC", "REPLICAS", "AGE"], "{table}");
    let row = lines.next().unwrap();
    assert!(row.starts_with("nightly"), "{table}");
    assert!(row.contains("0 3 * * *"), "{table}");
    // The short name and the schema default.
    assert_eq!(
        c.ok(&["get", "ct", "nightly", "-o", "jsonpath={.spec.replicas}"]),
        "1"
    );
    // Schema validation is the server's.
    let bad = CRONTAB
        .replace("nightly", "broken")
        .replace("0 3 * * *", "never");
    let out = c.kubectl_stdin(&["create", "-f", "-"], &bad);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("spec.cronSpec"), "{err}");
    // A restarted master serves the stored CRDs and their objects again.
    c.kill();
    c.spawn();
    let out = poll_ok(
        &c,
        &[
            "get",
            "crontab",
            "nightly",
            "-o",
            "jsonpath={.spec.cronSpec}",
        ],
    );
    assert_eq!(out, "0 3 * * *");
    // A second apply patches (kubectl sends a merge patch for custom resources).
    let out = c.ok_stdin(
        &["apply", "-f", "-"],
        &CRONTAB.replace("backup:1", "backup:2"),
    );
    assert!(
        out.contains("crontab.stable.example.com/nightly configured"),
        "{out}"
    );
    assert_eq!(
        c.ok(&["get", "crontab", "nightly", "-o", "jsonpath={.spec.image}"]),
        "backup:2"
    );
    // kubectl patch (merge) and delete.
    c.ok(&[
        "patch",
        "crontab",
        "nightly",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "crontab",
            "nightly",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    assert!(c
        .ok(&["delete", "crontab", "nightly"])
        .contains("crontab.stable.example.com \"nightly\" deleted"));
    assert!(!c.ok(&["get", "crontabs"]).contains("nightly"));
    // Deleting the CRD takes the resource type away.
    c.ok(&["delete", "crd", "crontabs.stable.example.com"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.kubectl(&["get", "crontabs"]);
        if !out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "crontabs still served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A custom resource type as operators declare it with kube-rs.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "ops.example.com",
    version = "v1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    shortname = "bk"
)]
pub struct BackupSpec {
    pub schedule: String,
    pub keep: i32,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, Default)]
pub struct BackupStatus {
    pub last: Option<String>,
}

async fn client(c: &Cluster) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_derive_custom_resource() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let c = Cluster::start();
    let client = client(&c).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let created = crds
        .create(&PostParams::default(), &Backup::crd())
        .await
        .expect("create CRD from the derived schema");
    let established = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);

    let api: Api<Backup> = Api::namespaced(client, "default");
    let b = Backup::new(
        "db",
        BackupSpec {
            schedule: "@daily".into(),
            keep: 3,
        },
    );
    let made = api.create(&PostParams::default(), &b).await.unwrap();
    assert_eq!(made.spec.keep, 3);
    assert_eq!(made.metadata.generation, Some(1));
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].spec.schedule, "@daily");

    let p = serde_json::json!({"spec": {"keep": 5}});
    let patched = api
        .patch("db", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(patched.spec.keep, 5);
    assert_eq!(patched.metadata.generation, Some(2));
    let s = serde_json::json!({"status": {"last": "2024-01-01"}});
    let st = api
        .patch_status("db", &PatchParams::default(), &Patch::Merge(&s))
        .await
        .unwrap();
    assert_eq!(st.status.unwrap().last.as_deref(), Some("2024-01-01"));
    // A wrongly typed field is refused with the schema's message.
    let bad = serde_json::json!({"spec": {"keep": "many"}});
    let err = api
        .patch("db", &PatchParams::default(), &Patch::Merge(&bad))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(s.message.contains("spec.keep"), "{}", s.message);
        }
        other => panic!("{other}"),
    }
    api.delete("db", &DeleteParams::default()).await.unwrap();
    assert!(api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}
