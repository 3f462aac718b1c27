//! The real curl as an outside HTTP client of a cluster (no kubeconfig, `-k`: the cluster CA is
//! not installed on the host), shared by the console and monitoring tests; and the busybox pod
//! they both run.

use std::process::Command;

use super::stdout;

/// GET `url` with an optional bearer token (20 s at most): (status, body). Status 0: no answer.
pub fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "-m", "20", "-w", "\n%{http_code}"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let text = stdout(&cmd.arg(url).output().expect("curl"));
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Response headers of an unauthenticated GET, lower-cased.
pub fn headers(url: &str) -> String {
    let o = Command::new("curl")
        .args(["-sk", "-m", "20", "-D", "-", "-o", "/dev/null", url])
        .output()
        .expect("curl");
    stdout(&o).to_ascii_lowercase()
}

/// A busybox pod `name` in `namespace` that sleeps an hour (the image `daas up` imports),
/// with small limits and a 1 s grace period so it deletes quickly.
pub fn sleeping_busybox_pod(name: &str, namespace: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "sleep 3600"]
    resources: {{limits: {{memory: 32Mi, cpu: 100m}}}}
"#
    )
}
