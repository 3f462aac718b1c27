//! End-to-end: `kubectl attach` (a container's own stdio through the master, the agent and
//! containerd's CRI streaming server), `kubectl run -i --rm`, and `kubectl debug` (an
//! ephemeral container in the target's PID namespace), with real kubectl and a real containerd
//! agent. Needs root (see tests/agent.rs).

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::{stderr, stdout, Cluster};

const IMAGE: &str = "localhost/k3s-daas/busybox:latest";

/// A kubectl command (argv[1:]) driven through a pseudo-terminal: type a line, read its
/// output and the terminal size, then exit the shell (which ends the container and the session).
const PTY_DRIVER: &str = r#"
import os, pty, sys, time, select, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    os.execvp("timeout", ["timeout", "60", "kubectl"] + sys.argv[1:])
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
time.sleep(2.0)
# kubectl attach/debug first sends a size one larger than the terminal's, then the real one (to
# force a redraw): wait for the real one to arrive before printing it.
os.write(fd, b"echo typed-$((40+2)); for i in 1 2 3 4 5 6 7 8 9 10; do [ \"$(stty size)\" = \"$((32+1)) $((110+1))\" ] && break; sleep 0.3; done; stty size; ps; echo done-$((1+1))\r")
# done-2 comes after all of ps's lines (the typed line echoes "done-$((1+1))", not "done-2").
ok = read_until(b"typed-42", 20) and read_until(b"33 111", 10) and read_until(b"done-2", 10)
ok = ok and b"PID" in out
os.write(fd, b"exit 0\r")
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(0 if ok else 1)
"#;

fn pty_kubectl(c: &Cluster, args: &[&str]) -> Output {
    Command::new("python3")
        .args(["-c", PTY_DRIVER])
        .args(args)
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path().join("home"))
        .output()
        .expect("python3")
}

fn kubectl_timed(c: &Cluster, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new("timeout")
        .arg("90")
        .arg("kubectl")
        .args(args)
        .env("KUBECONFIG", c.kubeconfig())
        .env("HOME", c.dir.path().join("home"))
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    if let Some(i) = input {
        let mut w = child.stdin.take().expect("stdin");
        w.write_all(i.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("kubectl output")
}

#[test]
fn attach_run_and_debug_through_the_agent() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let a = start_agent(&c, "worker-at", 14);
    wait_node_ready(&c, &a, "worker-at");
    let pods = format!(
        r#"apiVersion: v1
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
---
apiVersion: v1
kind: Pod
metadata: {{name: tty}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    stdin: true
    tty: true
    command: [sh]
---
apiVersion: v1
kind: Pod
metadata: {{name: target}}
spec:
  containers:
  - name: app
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
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
                "echoer",
                "tty",
                "target",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ]) == "Running Running Running"
        },
        &a,
    );

    // Attach without a terminal: stdin reaches the container, stdout and stderr come back
    // apart; the container's exit ends the session.
    let o = kubectl_timed(&c, &["attach", "-i", "echoer"], Some("ping\nquit\n"));
    assert!(o.status.success(), "{}\n{}", stderr(&o), a.log());
    assert_eq!(stdout(&o), "echo:ping\necho:quit\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("err:ping"), "{}", stderr(&o));
    wait_for(
        &c,
        "echoer Succeeded",
        Duration::from_secs(30),
        || c.ok(&["get", "pod", "echoer", "-o", "jsonpath={.status.phase}"]) == "Succeeded",
        &a,
    );
    // A finished pod cannot be attached to.
    let o = kubectl_timed(&c, &["attach", "echoer"], None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("in a completed pod; current phase is Succeeded"),
        "{}",
        stderr(&o)
    );

    // Attach with a terminal (and its size, channel 4).
    let o = pty_kubectl(&c, &["attach", "-it", "tty"]);
    assert!(
        o.status.success(),
        "{}\n{}\n{}",
        stdout(&o),
        stderr(&o),
        a.log()
    );

    // `kubectl run -i --rm`: waits for the pod, attaches, prints the reply, deletes the pod.
    let o = kubectl_timed(
        &c,
        &[
            "run",
            "-i",
            "--rm",
            "--restart=Never",
            "--image",
            IMAGE,
            "--image-pull-policy=IfNotPresent",
            "asker",
            "--",
            "sh",
            "-c",
            "read l; sleep 1; echo got $l",
        ],
        Some("hello\n"),
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), a.log());
    assert!(
        stdout(&o).contains("got hello"),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("pod \"asker\" deleted"),
        "{}",
        stdout(&o)
    );

    // (`sleep 1` after reading and before exiting: see the echoer.)
    // `kubectl debug`: an ephemeral container in the target container's PID namespace sees
    // its pid 1; it runs once and is reported in ephemeralContainerStatuses.
    let o = kubectl_timed(
        &c,
        &[
            "debug",
            "-i",
            "target",
            "--image",
            IMAGE,
            "--image-pull-policy=IfNotPresent",
            "--target=app",
            "-c",
            "dbg",
            "--",
            "sh",
            "-c",
            "read go; sleep 1; ps; sleep 1",
        ],
        Some("go\n"),
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), a.log());
    let ps = stdout(&o);
    assert!(
        ps.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("sleep 3600")),
        "{ps}\n{}",
        stderr(&o)
    );
    wait_for(
        &c,
        "ephemeral container terminated",
        Duration::from_secs(30),
        || {
            c.ok(&[
                "get",
                "pod",
                "target",
                "-o",
                "jsonpath={.status.ephemeralContainerStatuses[0].state.terminated.exitCode}",
            ]) == "0"
        },
        &a,
    );
    // Never restarted; the app keeps running.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        c.ok(&[
            "get",
            "pod",
            "target",
            "-o",
            "jsonpath={.status.ephemeralContainerStatuses[0].restartCount} {.status.phase} {.status.containerStatuses[0].restartCount}",
        ]),
        "0 Running 0"
    );
    // `kubectl debug -it`: a terminal in a second ephemeral container.
    let o = pty_kubectl(
        &c,
        &[
            "debug",
            "-it",
            "target",
            "--image",
            IMAGE,
            "--image-pull-policy=IfNotPresent",
            "--target=app",
            "-c",
            "dbg-tty",
            "--",
            "sh",
        ],
    );
    assert!(
        o.status.success(),
        "{}\n{}\n{}",
        stdout(&o),
        stderr(&o),
        a.log()
    );
    assert!(stdout(&o).contains("sleep 3600"), "{}", stdout(&o));
    // An ephemeral container cannot be removed.
    let o = c.kubectl(&[
        "patch",
        "pod",
        "target",
        "--subresource=ephemeralcontainers",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/ephemeralContainers/0"}]"#,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("existing ephemeral containers \"dbg\" may not be removed"),
        "{}",
        stderr(&o)
    );
}
