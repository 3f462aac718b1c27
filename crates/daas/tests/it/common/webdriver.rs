//! A tiny W3C WebDriver client (HTTP + JSON through curl, like the rest of the harness) driving
//! Debian's real headless `chromium` through `chromedriver`. The driver and its browser are
//! killed when the [`Browser`] is dropped, even when the test fails.
//!
//! The browser runs in a network namespace of its own holding only `lo`: Chromium aborts every
//! request in flight (`ERR_NETWORK_CHANGED`) when an interface of its namespace changes, and the
//! agents of parallel tests add and remove pod veths on the host all the time. The ports the page
//! must reach (the master's) are forwarded from the browser's 127.0.0.1 to the host's 127.0.0.1
//! at the same port numbers, so URLs are unchanged.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    net: BrowserNet,
    _profile: tempfile::TempDir,
}

/// The browser's private network namespace (`ip netns`), deleted on drop.
struct BrowserNet {
    name: String,
}

impl BrowserNet {
    /// A fresh namespace with `lo` up, and `forward`'s ports of its 127.0.0.1 relayed to the
    /// same ports of the host's 127.0.0.1.
    fn new(forward: &[u16]) -> BrowserNet {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "wd{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        for args in [
            vec!["netns", "add", name.as_str()],
            vec!["-n", name.as_str(), "link", "set", "lo", "up"],
        ] {
            let o = Command::new("ip").args(&args).output().expect("run ip");
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let net = BrowserNet { name };
        for &port in forward {
            net.forward(port);
        }
        net
    }

    /// Accept on `port` inside the namespace (a thread that entered it) and connect to the host's
    /// `port` from a thread that stayed in the host's namespace.
    fn forward(&self, port: u16) {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::os::fd::AsRawFd;
        let ns = std::fs::File::open(format!("/run/netns/{}", self.name)).expect("open netns");
        let (conns_tx, conns_rx) = std::sync::mpsc::channel::<TcpStream>();
        let (bound_tx, bound_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        std::thread::spawn(move || {
            // SAFETY: setns on this thread only; the fd is a valid open netns file.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                let _ = bound_tx.send(Err(std::io::Error::last_os_error().to_string()));
                return;
            }
            let l = match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => l,
                Err(e) => {
                    let _ = bound_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = bound_tx.send(Ok(()));
            for s in l.incoming().flatten() {
                if conns_tx.send(s).is_err() {
                    return;
                }
            }
        });
        bound_rx
            .recv()
            .expect("forwarder thread")
            .unwrap_or_else(|e| panic!("forward port {port} into the browser's namespace: {e}"));
        std::thread::spawn(move || {
            for inner in conns_rx {
                let Ok(outer) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (inner.try_clone(), outer.try_clone()),
                    (outer.try_clone(), inner.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
    }

    /// `program` run inside the namespace.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name))
            .arg(program);
        c
    }
}

impl Drop for BrowserNet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A port free on the host (the browser's namespace has nothing listening at all).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One WebDriver call, made from inside the browser's namespace: (HTTP status, JSON body).
fn call(net: &BrowserNet, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    use std::io::Write;
    let mut cmd = net.cmd("curl");
    cmd.args(["-s", "-m", "120", "-X", method, "-w", "\n%{http_code}", url]);
    if body.is_some() {
        cmd.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run curl");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(b) = body {
            stdin
                .write_all(b.to_string().as_bytes())
                .expect("write body");
        }
    }
    let out = child.wait_with_output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

impl Browser {
    /// Start chromedriver on a free port and a fresh headless chromium session that accepts the
    /// master's self-signed certificate, in a network namespace of their own that reaches the
    /// host's 127.0.0.1 only at the ports in `forward`.
    pub fn start(forward: &[u16]) -> Browser {
        let net = BrowserNet::new(forward);
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        let driver = net
            .cmd("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (Debian package chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, v) = call(&net, "GET", &format!("{base}/status"), None);
            if code == 200 && v["value"]["ready"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let (code, v) = call(&net, "POST", &format!("{base}/session"), Some(&caps));
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            net,
            _profile: profile,
        };
        assert_eq!(code, 200, "new session: {v}");
        b.session = v["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        b
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/session/{}{tail}", self.base, self.session)
    }

    /// A WebDriver command that must succeed; its `value`.
    pub fn cmd(&self, method: &str, tail: &str, body: Option<Value>) -> Value {
        let (code, v) = call(&self.net, method, &self.url(tail), body.as_ref());
        assert_eq!(code, 200, "{method} {tail}: {v}");
        v["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Run `script` (a function body; `arguments` holds `args`) in the page.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Poll `script` until it returns true.
    pub fn wait_js(&self, what: &str, timeout: Duration, script: &str, args: Value) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.js(script, args.clone()) == true {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; page text:\n{}",
                self.js("return document.body.innerText", json!([]))
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The id of the element `css` matches.
    pub fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().expect("element reference").to_string()
    }

    /// Type `text` as key strokes into whatever has the focus (W3C actions, a keyboard source).
    /// `\u{E007}` is Enter, `\u{E004}` Tab.
    pub fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for ch in text.chars() {
            actions.push(json!({"type": "keyDown", "value": ch.to_string()}));
            actions.push(json!({"type": "keyUp", "value": ch.to_string()}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// Resize the window (CSS pixels of the outer window).
    pub fn window(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// Save a PNG screenshot of the viewport.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("decode screenshot");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("artifact dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = call(&self.net, "DELETE", &self.url(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where tests put artifacts: `$DAAS_TEST_ARTIFACTS`, default `<workspace>/target/test-artifacts`.
pub fn artifacts_dir() -> std::path::PathBuf {
    std::env::var_os("DAAS_TEST_ARTIFACTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
        })
}
