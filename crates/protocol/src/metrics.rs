//! Prometheus metrics in the text exposition format (no global registry: one `Metrics` per master).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds (as the Kubernetes API server uses for request latency).
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

type Labels = Vec<(String, String)>;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, Labels), f64>>,
    histograms: Mutex<BTreeMap<(String, Labels), Histogram>>,
    /// Gauges set by their owner (rendered with the scrape-time gauges).
    gauges: Mutex<BTreeMap<String, (String, f64)>>,
    help: Mutex<BTreeMap<String, (String, &'static str)>>,
}

fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(l: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn describe(&self, name: &str, help: &str, kind: &'static str) {
        if let Ok(mut h) = self.help.lock() {
            h.entry(name.to_string())
                .or_insert_with(|| (help.to_string(), kind));
        }
    }

    pub fn inc(&self, name: &str, help: &str, l: &[(&str, &str)], by: f64) {
        self.describe(name, help, "counter");
        if let Ok(mut c) = self.counters.lock() {
            *c.entry((name.to_string(), labels(l))).or_insert(0.0) += by;
        }
    }

    /// Set an unlabelled gauge.
    pub fn set_gauge(&self, name: &str, help: &str, v: f64) {
        if let Ok(mut g) = self.gauges.lock() {
            g.insert(name.to_string(), (help.to_string(), v));
        }
    }

    pub fn observe(&self, name: &str, help: &str, l: &[(&str, &str)], d: Duration) {
        self.describe(name, help, "histogram");
        let secs = d.as_secs_f64();
        if let Ok(mut h) = self.histograms.lock() {
            let e = h.entry((name.to_string(), labels(l))).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    e.counts[i] += 1;
                }
            }
            e.sum += secs;
            e.count += 1;
        }
    }

    /// Render all counters and histograms, followed by `gauges` computed at scrape time.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        let help = self.help.lock().map(|h| h.clone()).unwrap_or_default();
        let mut last = String::new();
        let mut header = |out: &mut String, name: &str, help_text: &str, kind: &str| {
            if last != name {
                let _ = writeln!(out, "# HELP {name} {help_text}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                last = name.to_string();
            }
        };
        if let Ok(c) = self.counters.lock() {
            for ((name, l), v) in c.iter() {
                let (h, k) = help.get(name).cloned().unwrap_or_default();
                header(&mut out, name, &h, k);
                let _ = writeln!(out, "{name}{} {v}", render_labels(l, None));
            }
        }
        if let Ok(hs) = self.histograms.lock() {
            for ((name, l), h) in hs.iter() {
                let (help_text, k) = help.get(name).cloned().unwrap_or_default();
                header(&mut out, name, &help_text, k);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        render_labels(l, Some(("le", b.to_string()))),
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    render_labels(l, Some(("le", "+Inf".into()))),
                    h.count
                );
                let _ = writeln!(out, "{name}_sum{} {}", render_labels(l, None), h.sum);
                let _ = writeln!(out, "{name}_count{} {}", render_labels(l, None), h.count);
            }
        }
        if let Ok(set) = self.gauges.lock() {
            for (name, (help_text, v)) in set.iter() {
                header(&mut out, name, help_text, "gauge");
                let _ = writeln!(out, "{name} {v}");
            }
        }
        for g in gauges {
            header(&mut out, &g.name, &g.help, "gauge");
            for (l, v) in &g.values {
                let _ = writeln!(out, "{}{} {v}", g.name, render_labels(l, None));
            }
        }
        out
    }
}

/// A gauge family computed at scrape time.
pub struct Gauge {
    pub name: String,
    pub help: String,
    pub values: Vec<(Labels, f64)>,
}

impl Gauge {
    pub fn new(name: &str, help: &str) -> Self {
        Gauge {
            name: name.into(),
            help: help.into(),
            values: Vec::new(),
        }
    }

    pub fn set(mut self, l: &[(&str, &str)], v: f64) -> Self {
        self.values.push((labels(l), v));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.inc(
            "apiserver_request_total",
            "Requests.",
            &[("verb", "GET"), ("code", "200")],
            1.0,
        );
        m.inc(
            "apiserver_request_total",
            "Requests.",
            &[("verb", "GET"), ("code", "200")],
            1.0,
        );
        m.observe(
            "apiserver_request_duration_seconds",
            "Latency.",
            &[("verb", "GET")],
            Duration::from_millis(20),
        );
        let text =
            m.render(&[Gauge::new("pods", "Pods by phase.").set(&[("phase", "Running")], 3.0)]);
        assert!(text.contains("# TYPE apiserver_request_total counter"));
        assert!(text.contains("apiserver_request_total{verb=\"GET\",code=\"200\"} 2"));
        assert!(
            text.contains("apiserver_request_duration_seconds_bucket{verb=\"GET\",le=\"0.025\"} 1")
        );
        assert!(
            text.contains("apiserver_request_duration_seconds_bucket{verb=\"GET\",le=\"0.01\"} 0")
        );
        assert!(text.contains("apiserver_request_duration_seconds_count{verb=\"GET\"} 1"));
        assert!(text.contains("pods{phase=\"Running\"} 3"));
        assert_eq!(text.matches("# TYPE apiserver_request_total").count(), 1);
    }
}
