//! End-to-end: `kubectl exec` and `kubectl attach` over SPDY/3.1 (kubectl's fallback, forced
//! with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`; the transport of client-go's SPDY executor)
//! through the master to a real agent and containerd: piped stdin, output on both streams, the
//! exit code. Needs root (see tests/agent.rs).

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stderr, stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

/// `kubectl exec -it shell -- sh` over SPDY in a pseudo-terminal of 33 rows and 111 columns:
/// the shell sees that size (the resize stream), echoes a typed line, and exits 7.
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    os.execvp("timeout", ["timeout", "60", "kubectl", "exec", "-it", "shell", "--", "sh"])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
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
ok = read_until(b"typed-42", 20) and read_until(b"33 111", 10)
os.write(fd, b"exit 7\r")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(0 if ok and os.WEXITSTATUS(status) == 7 else 1)
"#;

/// kubectl with WebSocket remote command turned off (SPDY only), stdin piped from `input`.
fn spdy_kubectl(c: &Cluster, args: &[&str], input: Option<&str>) -> Output {
    let mut cmd = c.kubectl_cmd(&[&["--request-timeout=0"][..], args].concat());
    cmd.env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run kubectl");
    if let Some(i) = input {
        let mut w = child.stdin.take().expect("stdin");
        w.write_all(i.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("kubectl output")
}

#[test]
fn exec_and_attach_over_spdy_through_the_agent() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-spdy", 23);
    wait_node_ready(&c, &a, "worker-spdy");
    let pods = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: shell}}
spec:
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
---
apiVersion: v1
kind: Pod
metadata: {{name: echoer}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    stdin: true
    # `sleep 1` (before answering and before exiting): containerd (1.6) wires an attach's stdin
    # before its stdout and drops the last stdout of a container that exits at once, so what the
    # container writes at once in answer to input can miss the stdout of that attach.
    command: [sh, -c, 'while read l; do sleep 1; echo "echo:$l"; echo "err:$l" >&2; [ "$l" = quit ] && sleep 1 && exit 0; done']
"#
    );
    c.ok_stdin(&["apply", "-f", "-"], &pods);
    wait_for(
        &c,
        "pods Running",
        Duration::from_secs(90),
        || {
            c.ok(&[
                "get",
                "pod",
                "shell",
                "echoer",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ]) == "Running Running"
        },
        &a,
    );

    // Piped stdin through `cat`; kubectl's log shows the SPDY upgrade it made.
    let o = spdy_kubectl(
        &c,
        &["-v=8", "exec", "-i", "shell", "--", "cat"],
        Some("one\ntwo\n"),
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), a.log());
    assert_eq!(stdout(&o), "one\ntwo\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("SPDY/3.1"), "{}", stderr(&o));

    // Output on both streams and the exit code.
    let o = spdy_kubectl(
        &c,
        &[
            "exec",
            "shell",
            "--",
            "sh",
            "-c",
            "echo hi; echo oops >&2; exit 3",
        ],
        None,
    );
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("oops"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    // A terminal: its size reaches the shell, typed input comes back, the exit code too.
    let o = Command::new("python3")
        .args(["-c", PTY_DRIVER])
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path().join("home"))
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));

    // kubectl cp (tar over exec) both ways with 1 MiB: large stdin and stdout over SPDY.
    let big: String = (0..16384).map(|i| format!("{i:063}\n")).collect();
    let local = c.dir.path().join("big.txt");
    std::fs::write(&local, &big).expect("write");
    let o = spdy_kubectl(
        &c,
        &["cp", local.to_str().expect("utf-8"), "shell:/tmp/big.txt"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = spdy_kubectl(
        &c,
        &["exec", "shell", "--", "sh", "-c", "wc -c < /tmp/big.txt"],
        None,
    );
    assert_eq!(stdout(&o).trim(), "1048576", "{}", stderr(&o));
    let back = c.dir.path().join("back.txt");
    let o = spdy_kubectl(
        &c,
        &["cp", "shell:/tmp/big.txt", back.to_str().expect("utf-8")],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&back).expect("copied back") == big,
        "1 MiB did not round-trip"
    );

    // Attach: stdin reaches the container, its exit ends the session.
    let o = spdy_kubectl(&c, &["attach", "-i", "echoer"], Some("ping\nquit\n"));
    assert!(o.status.success(), "{}\n{}", stderr(&o), a.log());
    assert_eq!(stdout(&o), "echo:ping\necho:quit\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("err:ping"), "{}", stderr(&o));

    // A node identity may not exec over SPDY either.
    let o = spdy_kubectl(
        &c,
        &[
            "--as",
            "system:node:worker-spdy",
            "--as-group",
            "system:nodes",
            "exec",
            "shell",
            "--",
            "true",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot create resource \"pods/exec\""),
        "{}",
        stderr(&o)
    );
    drop(a);
}
