//! End-to-end (issue 12, image pull secrets): `daas up` plus one real `daas agent` with
//! containerd; a real docker-registry (distribution) with htpasswd basic auth; real kubectl.
//! A pod naming the right `kubernetes.io/dockerconfigjson` secret pulls and runs (also with a
//! missing secret named before it); no secret or a wrong password ends in an image pull error;
//! a secret created after the pod is used by the next pull retry.
//! The password never shows in the agent's log. Needs root (see agent.rs).

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::agent::{start_agent_with, wait_for, wait_node_ready};
use common::{stdout, Cluster};

const PASSWORD: &str = "s3cret-Pw0rd";

/// A docker-registry on 127.0.0.1 (port 0) with one htpasswd (bcrypt) user.
struct Registry {
    child: std::process::Child,
    addr: String,
}

impl Registry {
    fn start(dir: &Path, user: &str, password: &str) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let htpasswd = dir.join("htpasswd");
        let hash = bcrypt::hash(password, 5).unwrap();
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
        let cfg = dir.join("registry.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.join("data").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn jsonpath(c: &Cluster, what: &str, path: &str) -> String {
    stdout(&c.kubectl(&["get", what, "-o", &format!("jsonpath={path}")]))
}

#[test]
fn image_pull_secrets_authenticate_pulls() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start(tmp.path(), "puller", PASSWORD);
    let reg = registry.addr.clone();
    let archive = tmp.path().join("busybox.tar");
    daas_agent::runtime::image::busybox_image(Path::new("/bin/busybox"))
        .unwrap()
        .write_to(&archive)
        .unwrap();
    let image = format!("{reg}/private/busybox:1");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("--dest-creds=puller:{PASSWORD}"))
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("docker://{image}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent_with(
        &c,
        "worker-ps",
        24,
        serde_json::json!({"insecure_registries": [reg]}),
    );
    wait_node_ready(&c, &a, "worker-ps");
    for (name, password) in [("regcred", PASSWORD), ("wrongcred", "not-the-password")] {
        c.ok(&[
            "create",
            "secret",
            "docker-registry",
            name,
            &format!("--docker-server={reg}"),
            "--docker-username=puller",
            &format!("--docker-password={password}"),
        ]);
    }
    let pod = |name: &str, secrets: &[&str]| {
        let refs: Vec<String> = secrets.iter().map(|s| format!("{{name: {s}}}")).collect();
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  imagePullSecrets: [{}]\n  containers:\n  - {{name: app, image: '{image}', imagePullPolicy: Always, command: [sh, -c, 'echo pulled-ok']}}\n",
            refs.join(", ")
        )
    };
    for (name, secrets) in [
        ("authed", &["regcred"][..]),
        ("missing-first", &["no-such-secret", "regcred"][..]),
        ("anonymous", &[][..]),
        ("wrong", &["wrongcred"][..]),
        ("late", &["latecred"][..]),
    ] {
        c.ok_stdin(&["apply", "-f", "-"], &pod(name, secrets));
    }
    for name in ["authed", "missing-first"] {
        wait_for(
            &c,
            &format!("{name} Succeeded"),
            Duration::from_secs(60),
            || jsonpath(&c, &format!("pod/{name}"), "{.status.phase}") == "Succeeded",
            &a,
        );
        assert_eq!(stdout(&c.kubectl(&["logs", name])).trim(), "pulled-ok");
    }
    for name in ["anonymous", "wrong", "late"] {
        wait_for(
            &c,
            &format!("{name} ErrImagePull"),
            Duration::from_secs(60),
            || {
                let r = jsonpath(
                    &c,
                    &format!("pod/{name}"),
                    "{.status.containerStatuses[0].state.waiting.reason}",
                );
                r == "ErrImagePull" || r == "ImagePullBackOff"
            },
            &a,
        );
        assert_eq!(
            jsonpath(&c, &format!("pod/{name}"), "{.status.phase}"),
            "Pending"
        );
    }
    // The secret is read again on each pull attempt: created now, the next retry succeeds.
    c.ok(&[
        "create",
        "secret",
        "docker-registry",
        "latecred",
        &format!("--docker-server={reg}"),
        "--docker-username=puller",
        &format!("--docker-password={PASSWORD}"),
    ]);
    wait_for(
        &c,
        "late Succeeded",
        Duration::from_secs(60),
        || jsonpath(&c, "pod/late", "{.status.phase}") == "Succeeded",
        &a,
    );
    assert_eq!(
        jsonpath(&c, "pod/anonymous", "{.status.phase}"),
        "Pending",
        "no credentials: still not pulled"
    );
    let log = a.log();
    assert!(!log.contains(PASSWORD), "password in the agent log");
    assert!(
        log.contains("imagePullSecret not found") && log.contains("no-such-secret"),
        "the missing secret is logged:\n{log}"
    );
    drop(registry);
}
