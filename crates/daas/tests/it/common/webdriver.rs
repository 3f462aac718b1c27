//! A tiny W3C WebDriver client (HTTP + JSON through curl, like the rest of the harness) driving
//! Debian's real headless `chromium` through `chromedriver`. The driver and its browser are
//! killed when the [`Browser`] is dropped, even when the test fails.

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
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One WebDriver call: (HTTP status, JSON body).
fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    use std::io::Write;
    let mut cmd = Command::new("curl");
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
    /// master's self-signed certificate.
    pub fn start() -> Browser {
        let port = free_port();
        let profile = tempfile::tempdir().expect("profile dir");
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (Debian package chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, v) = call("GET", &format!("{base}/status"), None);
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
        let (code, v) = call("POST", &format!("{base}/session"), Some(&caps));
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
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
        let (code, v) = call(method, &self.url(tail), body.as_ref());
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
            let _ = call("DELETE", &self.url(""), None);
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
