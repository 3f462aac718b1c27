//! End-to-end: the real Prometheus (Debian `prometheus`) scrapes a `daas up` cluster and a real
//! `daas agent` every second with the repository's `deploy/monitoring/prometheus.yml` (ports and
//! paths filled in), as the metrics-reader ServiceAccount of `deploy/monitoring/rbac.yaml`.
//! Both targets are up, a master metric and an agent metric are queryable; `/metrics` refuses
//! anonymous scrapes (401) and identities without the permission (403), and `nodes/metrics`
//! reaches nothing else of the agent. The Grafana dashboard parses, every query in it is valid
//! PromQL for this Prometheus, and it names only metrics the master and agent export.
//! Needs root (the agent) and the Debian package prometheus.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::agent::{start_agent, wait_for, wait_node_ready};
use common::curl::{get, sleeping_busybox_pod};
use common::{stdout, Cluster};
use serde_json::Value;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// Metric family names in a Prometheus text exposition (histograms also by their series names).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Metric names a PromQL expression refers to: identifiers outside label matchers, ranges and
/// `by (...)`/`without (...)`/`on (...)`/`ignoring (...)` lists that are neither functions,
/// aggregations nor keywords.
fn expr_metrics(expr: &str) -> BTreeSet<String> {
    // Drop label matchers and ranges.
    let mut s = String::new();
    let mut depth = 0i32;
    for ch in expr.chars() {
        match ch {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => s.push(ch),
            _ => {}
        }
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut k = i;
        while k < chars.len() && chars[k] == ' ' {
            k += 1;
        }
        let call = k < chars.len() && chars[k] == '(';
        if call && matches!(word.as_str(), "by" | "without" | "on" | "ignoring") {
            // Skip the label list.
            while k < chars.len() && chars[k] != ')' {
                k += 1;
            }
            i = k + 1;
            continue;
        }
        // Aggregations may be followed by `by (...)` rather than their argument.
        let keyword = matches!(
            word.as_str(),
            "and"
                | "or"
                | "unless"
                | "offset"
                | "bool"
                | "sum"
                | "min"
                | "max"
                | "avg"
                | "count"
                | "group"
                | "stddev"
                | "stdvar"
                | "topk"
                | "bottomk"
                | "quantile"
                | "count_values"
        );
        if call || keyword {
            continue;
        }
        out.insert(word);
    }
    out
}

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(config: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/prometheus (Debian package prometheus)");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(&format!("{}/-/ready", p.url), None).0 != 200 {
            assert!(
                Instant::now() < deadline,
                "prometheus never became ready:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: the API's `data` (panics on an API error).
    fn query(&self, q: &str) -> Value {
        let o = Command::new("curl")
            .args(["-s", "-m", "20", "-G"])
            .arg(format!("{}/api/v1/query", self.url))
            .args(["--data-urlencode", &format!("query={q}")])
            .output()
            .expect("curl");
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap_or(Value::Null);
        assert_eq!(v["status"], "success", "query {q}: {v}");
        v["data"].clone()
    }

    fn series(&self, q: &str) -> Vec<Value> {
        self.query(q)["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn wait(&self, what: &str, timeout: Duration, f: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !f(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; targets: {}\nlog:\n{}",
                stdout(
                    &Command::new("curl")
                        .args(["-s", &format!("{}/api/v1/targets", self.url)])
                        .output()
                        .unwrap()
                ),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn expr_metric_names() {
    let m = expr_metrics(
        "histogram_quantile(0.99, sum by (le, resource) (rate(apiserver_request_duration_seconds_bucket{code=~\"5..\"}[$__rate_interval])))",
    );
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        vec!["apiserver_request_duration_seconds_bucket".to_string()]
    );
    let m = expr_metrics("daas_stake_total_mist");
    assert!(m.contains("daas_stake_total_mist"));
    let m = expr_metrics("sum by (node, state) (daas_agent_pods) and on(node) up");
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        vec!["daas_agent_pods".to_string(), "up".to_string()]
    );
}

#[test]
fn prometheus_scrapes_master_and_agent() {
    let c = Cluster::start_with(&["--chain-listen", "127.0.0.1:0"]);
    let node = "mon-1";
    let a = start_agent(&c, node, 32);
    wait_node_ready(&c, &a, node);
    let url = c.server_url();

    // The metrics reader of the repository: a ServiceAccount bound to system:monitoring and to
    // nodes/metrics.
    let rbac = std::fs::read_to_string(repo_file("deploy/monitoring/rbac.yaml")).unwrap();
    c.ok_stdin(&["apply", "-f", "-"], &rbac);
    let token = c.ok(&[
        "-n",
        "monitoring",
        "create",
        "token",
        "prometheus",
        "--duration=1h",
    ]);
    let token = token.trim().to_string();
    // Another identity without the permission.
    c.ok(&["create", "serviceaccount", "nobody"]);
    let nobody = c.ok(&["create", "token", "nobody"]).trim().to_string();

    // --- refusals, as kube-apiserver answers them
    let (code, body) = get(&format!("{url}/metrics"), None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"kind\":\"Status\""), "{body}");
    let (code, body) = get(&format!("{url}/metrics"), Some("wrong"));
    assert_eq!(code, 401, "{body}");
    let (code, body) = get(&format!("{url}/metrics"), Some(&nobody));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("cannot get path \\\"/metrics\\\""), "{body}");
    let node_metrics = format!("{url}/api/v1/nodes/{node}/proxy/metrics");
    assert_eq!(get(&node_metrics, None).0, 401);
    assert_eq!(get(&node_metrics, Some(&nobody)).0, 403);
    // The agent's own port answers only the attested master.
    let port = c.ok(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ]);
    assert_eq!(
        get(&format!("https://127.0.0.1:{port}/metrics"), Some(&token)).0,
        401
    );
    // nodes/metrics grants nothing else: no other proxied path, no logs, no exec.
    for p in [
        format!("/api/v1/nodes/{node}/proxy/stats/summary"),
        format!("/api/v1/nodes/{node}/proxy/metrics/resource"),
        "/api/v1/namespaces/default/pods".to_string(),
    ] {
        let (code, body) = get(&format!("{url}{p}"), Some(&token));
        assert!(code == 403 || code == 404, "{p}: {code} {body}");
    }
    // The reader may scrape both.
    let (code, master_text) = get(&format!("{url}/metrics"), Some(&token));
    assert_eq!(code, 200, "{master_text}");

    // A pod on the node, so the agent has pods to count.
    c.ok_stdin(
        &["create", "-f", "-"],
        &sleeping_busybox_pod("scraped", "default"),
    );
    wait_for(
        &c,
        "pod Running",
        Duration::from_secs(90),
        || c.ok(&["get", "pod", "scraped", "-o", "jsonpath={.status.phase}"]) == "Running",
        &a,
    );

    // --- the repository's scrape configuration, filled in for this cluster
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token).unwrap();
    let ca = c.data_dir().join("tls").join("ca.crt");
    let host = url.trim_start_matches("https://");
    let config = std::fs::read_to_string(repo_file("deploy/monitoring/prometheus.yml"))
        .unwrap()
        .replace("MASTER_HOST:6443", host)
        .replace("/etc/prometheus/daas/token", token_file.to_str().unwrap())
        .replace("/etc/prometheus/daas/ca.crt", ca.to_str().unwrap())
        .replace("NODE_NAME", node)
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 10s", "scrape_timeout: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    let prom = Prometheus::start(&config);
    prom.wait("both targets up", Duration::from_secs(60), |p| {
        let up = p.series("up == 1");
        ["daas-master", "daas-agents"]
            .iter()
            .all(|job| up.iter().any(|s| s["metric"]["job"] == *job))
    });
    prom.wait(
        "a master and an agent metric",
        Duration::from_secs(30),
        |p| {
            !p.series("apiserver_request_total{job=\"daas-master\"}")
                .is_empty()
                && !p
                    .series(&format!(
                        "daas_agent_pods{{job=\"daas-agents\",node=\"{node}\"}}"
                    ))
                    .is_empty()
        },
    );
    let running = prom.series(&format!(
        "daas_agent_pods{{node=\"{node}\",state=\"ready\"}}"
    ));
    assert_eq!(running[0]["value"][1], "1", "{running:?}");

    // --- the dashboard: valid JSON, valid PromQL, only exported metric names
    let (code, agent_text) = get(&node_metrics, Some(&token));
    assert_eq!(code, 200, "{agent_text}");
    let (_, master_text) = get(&format!("{url}/metrics"), Some(&token));
    let mut exported = metric_names(&master_text);
    exported.extend(metric_names(&agent_text));
    exported.insert("up".into()); // Prometheus's own per-target series
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("deploy/monitoring/grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    assert!(dash["title"].is_string() && dash["uid"].is_string());
    let panels = dash["panels"].as_array().expect("panels");
    let mut exprs = Vec::new();
    for p in panels {
        assert!(p["gridPos"]["w"].is_number(), "{p}");
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut named = BTreeSet::new();
    for e in &exprs {
        let q = e.replace("$__rate_interval", "1m");
        // Valid PromQL for this Prometheus (the query itself panics on a parse error).
        prom.query(&q);
        for m in expr_metrics(&q) {
            assert!(
                exported.contains(&m),
                "the dashboard names {m} (in {e}), which is not exported; exported: {exported:?}"
            );
            named.insert(m);
        }
    }
    for must in [
        "apiserver_request_total",
        "daas_pods",
        "daas_nodes",
        "daas_agent_pods",
    ] {
        assert!(named.contains(must), "the dashboard lacks {must}");
    }
}
