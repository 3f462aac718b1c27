//! End-to-end server-side apply: `kubectl apply --server-side` (changes, a conflict after
//! `kubectl scale`, `--force-conflicts`) and kube-rs `Patch::Apply`.

use crate::common;

use common::{stderr, Cluster};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

fn deployment(replicas: u32, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: {image}
"#
    )
}

#[test]
fn kubectl_server_side_apply_conflicts_and_force() {
    let c = Cluster::start();
    let out = c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(2, "nginx:1.27"),
    );
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let out = c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(2, "nginx:1.28"),
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let image = c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.28");
    // managedFields are served; kubectl shows them only when asked.
    let plain = c.ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");
    let shown = c.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(shown.contains("managedFields"), "{shown}");
    assert!(shown.contains("operation: Apply"), "{shown}");

    // kubectl scale takes .spec.replicas: re-applying another value conflicts.
    c.ok(&["scale", "deploy", "web", "--replicas=5"]);
    let out = c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        &deployment(2, "nginx:1.28"),
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl"),
        "{err}"
    );
    assert!(err.contains(".spec.replicas"), "{err}");
    let replicas = c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "5");

    // --force-conflicts takes the field back.
    c.ok_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &deployment(2, "nginx:1.28"),
    );
    let replicas = c.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_patch_apply_creates_conflicts_and_forces() {
    let c = Cluster::start();
    let kc = kube::config::Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(cfg).expect("client");
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = |v: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "applied"}, "data": {"k": v}})
    };
    let created = api
        .patch(
            "applied",
            &PatchParams::apply("mgr"),
            &Patch::Apply(cm("1")),
        )
        .await
        .expect("apply creates");
    let mf = created.metadata.managed_fields.expect("managedFields");
    assert_eq!(mf[0].manager.as_deref(), Some("mgr"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    let err = api
        .patch(
            "applied",
            &PatchParams::apply("other"),
            &Patch::Apply(cm("2")),
        )
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 409);
            assert_eq!(e.reason, "Conflict");
            assert_eq!(
                e.message,
                "Apply failed with 1 conflict: conflict with \"mgr\": .data.k"
            );
        }
        other => panic!("unexpected error {other}"),
    }
    let forced = api
        .patch(
            "applied",
            &PatchParams::apply("other").force(),
            &Patch::Apply(cm("2")),
        )
        .await
        .expect("force");
    assert_eq!(forced.data.unwrap()["k"], "2");
}

#[test]
fn kubectl_client_side_apply_upgrades_to_server_side() {
    let c = Cluster::start();
    let cm = |v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"{v}\"\n  b: keep\n")
    };
    c.ok_stdin(&["apply", "-f", "-"], &cm("1"));
    let shown = c.ok(&["get", "cm", "cfg", "-o", "yaml", "--show-managed-fields"]);
    assert!(
        shown.contains("manager: kubectl-client-side-apply"),
        "{shown}"
    );
    // kubectl moves the client-side apply ownership to its server-side manager: no conflict.
    let out = c.ok_stdin(&["apply", "--server-side", "-f", "-"], &cm("2"));
    assert!(out.contains("configmap/cfg serverside-applied"), "{out}");
    let a = c.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data.a}"]);
    assert_eq!(a, "2");
    // Dropping b from the applied config removes it: kubectl now owns it through Apply.
    c.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"2\"\n",
    );
    let data = c.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data}"]);
    assert_eq!(data, r#"{"a":"2"}"#);
}
