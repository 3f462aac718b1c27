//! End-to-end: the real kubectl against a real `daas up` process, reading the OpenAPI documents
//! (`kubectl explain`, client-side validation).

use crate::common;

use common::Cluster;

/// kubectl explain reads the OpenAPI v3 documents; kubectl's client-side validation (used for
/// `kind: List`, whose items the server-side fieldValidation check cannot cover) reads the v2
/// document as protobuf.
#[test]
fn kubectl_explain_and_client_side_validation() {
    let c = Cluster::start();
    let out = c.ok(&["explain", "pod.spec.containers"]);
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("FIELD: containers <[]Container>"), "{out}");
    assert!(
        out.contains("List of containers belonging to the pod."),
        "{out}"
    );
    assert!(out.contains("image\t<string>"), "{out}");
    assert!(out.contains("name\t<string> -required-"), "{out}");

    let out = c.ok(&["explain", "deployments.spec.replicas"]);
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
    assert!(out.contains("Number of desired pods."), "{out}");

    let out = c.ok(&["explain", "deployment", "--recursive"]);
    assert!(out.contains("metadata\t<ObjectMeta>\n"), "{out}");
    assert!(
        out.contains("containers\t<[]Container> -required-"),
        "{out}"
    );
    assert!(out.contains("maxSurge\t<IntOrString>"), "{out}");

    // The v2 template (openapi v2 via protobuf) answers too.
    let out = c.ok(&[
        "explain",
        "services.spec.ports.targetPort",
        "--output=plaintext-openapiv2",
    ]);
    assert!(out.contains("FIELD:    targetPort <string>"), "{out}");

    let out = c.fails(&["explain", "pods.spec.nope"]);
    assert!(out.contains("field \"nope\" does not exist"), "{out}");

    let list = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm1}
  data: {a: b}
  bogus: 1
"#;
    let out = c.kubectl_stdin(&["create", "-f", "-"], list);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains(r#"unknown field "bogus" in io.k8s.api.core.v1.ConfigMap"#),
        "{err}"
    );
    c.ok_stdin(&["create", "-f", "-"], &list.replace("  bogus: 1\n", ""));
    assert!(c
        .ok(&["get", "configmap", "cm1", "-o", "name"])
        .contains("configmap/cm1"));

    // Outside a List, kubectl leaves strict validation to the server.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p1}\nspec:\n  containers:\n  - {name: c, image: busybox, foo: bar}\n";
    let out = c.kubectl_stdin(&["create", "-f", "-"], pod);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.containers[0].foo""#),
        "{err}"
    );
}
