//! End-to-end: `kubectl exec` (WebSocket v5 through the master to the real agent and
//! containerd), `kubectl cp` both ways, `kubectl logs` options, and who may not exec. One cluster
//! with one agent for all checks. Needs root (see tests/agent.rs).

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stderr, stdout, Cluster};

const PF_PATH: &str = "/api/v1/namespaces/default/pods/web/portforward";
const EXEC_PATH: &str = "/api/v1/namespaces/default/pods/shell/exec";

/// `kubectl exec -it shell -- sh` driven through a pseudo-terminal: type a line, read its echo.
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execvp("kubectl", ["kubectl", "exec", "-it", "shell", "--", "sh"])
out = b""
def read_until(needle, secs):
    global out
    end = time.time() + secs
    while time.time() < end and needle not in out:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return needle in out
time.sleep(1.0)
os.write(fd, b"echo typed-$((40+2)); stty size\r")
ok = read_until(b"typed-42", 20)
os.write(fd, b"exit 7\r")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(0 if ok and os.WEXITSTATUS(status) == 7 else 1)
"#;

#[test]
fn exec_cp_and_logs_through_the_agent() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-1", 1);
    wait_node_ready(&c, &a, "worker-1");
    let pod = r#"apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  containers:
  - name: main
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo first; echo second; echo third; sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: httpd
    image: localhost/k3s-daas/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo served-by-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#;
    c.ok_stdin(&["apply", "-f", "-"], pod);
    wait_for(
        &c,
        "pod Running",
        Duration::from_secs(90),
        || {
            c.ok(&[
                "get",
                "pod",
                "shell",
                "web",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ]) == "Running Running"
        },
        &a,
    );
    port_forward_checks(&c);

    // Output on both streams and the exit code.
    let o = c.kubectl(&[
        "exec",
        "shell",
        "--",
        "sh",
        "-c",
        "echo hi; echo oops >&2; exit 3",
    ]);
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("oops"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = c.kubectl(&["exec", "shell", "-c", "main", "--", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Piped stdin reaches the process and its end closes the process's stdin.
    let o = c.kubectl_stdin(
        &[
            "exec",
            "-i",
            "shell",
            "--",
            "sh",
            "-c",
            "wc -l; cat /etc/hostname",
        ],
        "a\nb\nc\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "3\nshell\n");

    // An interactive terminal.
    let o = c
        .kubectl_cmd(&["version", "--client"])
        .output()
        .expect("kubectl");
    assert!(o.status.success());
    let o = Command::new("python3")
        .args(["-c", PTY_DRIVER])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path().join("home"))
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));

    // kubectl cp both ways (tar over exec).
    let local = c.dir.path().join("upload.txt");
    std::fs::write(&local, "copied in\n").expect("write");
    c.ok(&[
        "cp",
        local.to_str().expect("utf-8"),
        "shell:/tmp/upload.txt",
    ]);
    assert_eq!(
        c.ok(&["exec", "shell", "--", "cat", "/tmp/upload.txt"]),
        "copied in\n"
    );
    c.ok(&[
        "exec",
        "shell",
        "--",
        "sh",
        "-c",
        "echo from the pod > /tmp/down.txt",
    ]);
    let down = c.dir.path().join("down.txt");
    c.ok(&["cp", "shell:/tmp/down.txt", down.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read_to_string(&down).expect("copied"),
        "from the pod\n"
    );

    // Refusals: bad options and a missing container (400).
    let raw = |q: &str| format!("{EXEC_PATH}?{q}");
    let e = c.fails(&[
        "create",
        "--raw",
        &raw("command=ls&container=main"),
        "-f",
        "/dev/null",
    ]);
    assert!(
        e.contains("you must specify at least 1 of stdin, stdout, stderr"),
        "{e}"
    );
    let e = c.fails(&["create", "--raw", &raw("stdout=true"), "-f", "/dev/null"]);
    assert!(e.contains("at least one command"), "{e}");
    let e = c.fails(&["exec", "shell", "-c", "nope", "--", "ls"]);
    assert!(
        e.contains("container nope is not valid for pod shell"),
        "{e}"
    );
    // Not an upgrade at all: 400 after authorization.
    let e = c.fails(&[
        "create",
        "--raw",
        &raw("command=ls&stdout=true"),
        "-f",
        "/dev/null",
    ]);
    assert!(e.contains("Upgrade request required"), "{e}");

    // A node identity may not exec (403).
    let e = c.fails(&[
        "--as",
        "system:node:worker-1",
        "--as-group",
        "system:nodes",
        "create",
        "--raw",
        &raw("command=ls&stdout=true"),
        "-f",
        "/dev/null",
    ]);
    assert!(e.contains("Forbidden") || e.contains("forbidden"), "{e}");
    assert!(e.contains("pods/exec"), "{e}");
    // Nor may a staked tenant into another namespace's pod (403).
    let chain = std::fs::read_to_string(c.data_dir().join("chain-url"))
        .expect("chain url")
        .trim()
        .to_string();
    let (key, _) = c.staker(&chain, "tenant", &["--amount", "200", "--role", "user"]);
    let (kc, _) = c.join(&chain, &key);
    let o = c.kubectl_as(
        &kc,
        &[
            "create",
            "--raw",
            &raw("command=ls&stdout=true"),
            "-f",
            "/dev/null",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("forbidden"), "{}", stderr(&o));
    // Nor forward a port of another namespace's pod (403; kubectl's own port-forward already
    // stops at reading the pod).
    let o = c.kubectl_as(&kc, &["create", "--raw", PF_PATH, "-f", "/dev/null"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("forbidden"), "{}", stderr(&o));
    assert!(stderr(&o).contains("pods/portforward"), "{}", stderr(&o));
    // Unauthenticated: 401.
    let code = |url: &str| {
        let o = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", url])
            .stdin(Stdio::null())
            .output()
            .expect("curl");
        stdout(&o)
    };
    assert_eq!(
        code(&format!(
            "{}{EXEC_PATH}?command=ls&stdout=true",
            c.server_url()
        )),
        "401"
    );
    // The agent refuses an exec that the master did not sign.
    let port = c.ok(&[
        "get",
        "node",
        "worker-1",
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ]);
    assert_eq!(
        code(&format!(
            "https://127.0.0.1:{port}/exec/default/shell?container=main&command=ls&stdout=true"
        )),
        "401"
    );
    // Nor a port-forward the master did not sign.
    assert_eq!(
        code(&format!(
            "https://127.0.0.1:{port}/portForward/default/web?port=8080"
        )),
        "401"
    );

    // kubectl logs options.
    let logs = |args: &[&str]| {
        let mut all = vec!["logs", "shell"];
        all.extend_from_slice(args);
        c.ok(&all)
    };
    assert_eq!(logs(&[]), "first\nsecond\nthird\n");
    assert_eq!(logs(&["--tail=1"]), "third\n");
    assert_eq!(logs(&["--limit-bytes=8"]), "first\nse");
    assert_eq!(logs(&["--since=1h"]), "first\nsecond\nthird\n");
    assert_eq!(logs(&["--since-time=2099-01-01T00:00:00Z"]), "");
    let ts = logs(&["--timestamps", "--tail=1"]);
    let (stamp, line) = ts.trim_end().split_once(' ').expect("timestamped");
    assert_eq!(line, "third");
    assert!(
        stamp.len() > 20 && stamp.contains('T') && stamp.ends_with('Z'),
        "{stamp}"
    );
    // No earlier instance: upstream's 400.
    let e = c.fails(&["logs", "shell", "--previous"]);
    assert!(
        e.contains("previous terminated container \"main\" in pod \"shell\" not found"),
        "{e}"
    );
    drop(a);
    let _ = std::io::stdout().flush();
}

/// A running `kubectl port-forward`: its local port, and its stderr in a file.
struct PortForward {
    child: std::process::Child,
    port: u16,
    stderr: std::path::PathBuf,
}

impl PortForward {
    /// `kubectl port-forward pod/web :<remote>`; with `websockets` false kubectl speaks plain
    /// SPDY (its fallback) instead of SPDY tunneled in a WebSocket.
    fn start(c: &Cluster, remote: u16, websockets: bool) -> PortForward {
        use std::io::BufRead;
        let stderr = c.dir.path().join(format!("pf-{remote}-{websockets}.err"));
        let mut child = c
            .kubectl_cmd(&["port-forward", "pod/web", &format!(":{remote}")])
            .env(
                "KUBECTL_PORT_FORWARD_WEBSOCKETS",
                if websockets { "true" } else { "false" },
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("kubectl port-forward");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read");
        // "Forwarding from 127.0.0.1:NNNNN -> 8080"
        let port = line
            .split_whitespace()
            .nth(2)
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no local port in {line:?}: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        // Keep draining stdout ("Handling connection for ...") so kubectl never blocks.
        std::thread::spawn(move || for _ in out.lines() {});
        PortForward {
            child,
            port,
            stderr,
        }
    }

    /// One HTTP/1.0 GET through the forwarded port: the whole response.
    fn get(&self) -> String {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(b"GET /index.html HTTP/1.0\r\nHost: web\r\n\r\n")
            .expect("request");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_forward_checks(c: &Cluster) {
    // Both of kubectl's transports, two connections each.
    for websockets in [true, false] {
        let pf = PortForward::start(c, 8080, websockets);
        for _ in 0..2 {
            let resp = pf.get();
            assert!(
                resp.starts_with("HTTP/1.") && resp.contains(" 200 "),
                "websockets={websockets}: {resp:?}; {}",
                pf.stderr()
            );
            assert!(resp.ends_with("served-by-web\n"), "{resp:?}");
        }
    }
    // Nothing listens on 81: kubectl reports the node's error for the connection.
    let pf = PortForward::start(c, 81, true);
    let resp = pf.get();
    assert!(resp.is_empty(), "{resp:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !pf.stderr().contains("error forwarding port 81") && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let e = pf.stderr();
    assert!(e.contains("an error occurred forwarding"), "{e}");
    assert!(
        e.contains("error forwarding port 81 to pod default/web") && e.contains("refused"),
        "{e}"
    );
    drop(pf);

    // Not an upgrade: 400 after authorization; a bad port: 400.
    let e = c.fails(&["create", "--raw", PF_PATH, "-f", "/dev/null"]);
    assert!(e.contains("Upgrade request required"), "{e}");
    let e = c.fails(&[
        "create",
        "--raw",
        &format!("{PF_PATH}?ports=0"),
        "-f",
        "/dev/null",
    ]);
    assert!(e.contains("must be > 0"), "{e}");
    // A node identity may not forward (403).
    let e = c.fails(&[
        "--as",
        "system:node:worker-1",
        "--as-group",
        "system:nodes",
        "port-forward",
        "pod/web",
        ":8080",
    ]);
    assert!(e.contains("forbidden"), "{e}");
    assert!(e.contains("pods/portforward"), "{e}");
    // Unauthenticated: 401.
    let o = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!("{}{PF_PATH}", c.server_url()))
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    assert_eq!(stdout(&o), "401");
}
