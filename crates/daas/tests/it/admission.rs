//! End-to-end: admission webhooks and ValidatingAdmissionPolicies driven by the real kubectl
//! against a real `daas up` process.

use crate::common;

use common::Cluster;

const UNREACHABLE: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: unreachable}
webhooks:
- name: never.e2e.example
  clientConfig: {url: "https://127.0.0.1:1/never"}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  objectSelector: {matchLabels: {guarded: "yes"}}
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 2
"#;

const GUARDED: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: guarded, labels: {guarded: "yes"}}
data: {a: "1"}
"#;

const POLICY: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-secrets}
spec:
  matchConstraints:
    resourceRules: [{operations: [CREATE, UPDATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  validations:
  - expression: "!has(object.data) || !('secret' in object.data)"
    message: no secrets in config maps
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-secrets-binding}
spec:
  policyName: no-secrets
  validationActions: [Deny]
"#;

#[test]
fn kubectl_webhooks_and_policies() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], UNREACHABLE);
    let out = c.ok(&["get", "validatingwebhookconfigurations"]);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().take(2).eq(["unreachable", "1"])),
        "{out}"
    );

    // Not matched: no call.
    c.ok(&["create", "configmap", "free", "--from-literal=a=1"]);
    // Matched, and the webhook cannot be reached: failurePolicy Fail refuses the write.
    let out = c.kubectl_stdin(&["create", "-f", "-"], GUARDED);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Internal error occurred: failed calling webhook \"never.e2e.example\""),
        "{err}"
    );

    // The configuration itself is never subject to webhooks and can go.
    c.ok(&["delete", "validatingwebhookconfiguration", "unreachable"]);
    c.ok_stdin(&["create", "-f", "-"], GUARDED);

    // A CEL policy bound with Deny.
    c.ok_stdin(&["create", "-f", "-"], POLICY);
    let out = c.ok(&["get", "validatingadmissionpolicies"]);
    assert!(
        out.lines().any(|l| l
            .split_whitespace()
            .take(3)
            .eq(["no-secrets", "1", "<unset>"])),
        "{out}"
    );
    let err = c.fails(&["create", "configmap", "leaky", "--from-literal=secret=x"]);
    assert!(
        err.contains("ValidatingAdmissionPolicy 'no-secrets' with binding 'no-secrets-binding' denied request: no secrets in config maps"),
        "{err}"
    );
    c.ok(&["create", "configmap", "fine", "--from-literal=public=x"]);
}
