//! Files the kubelet keeps for a pod next to its containers: the managed `/etc/hosts` and the
//! per-instance termination-message files.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::EtcHosts;

/// Upstream's cap on a termination message read from the file (the file's last bytes).
pub const MAX_TERMINATION_MESSAGE_BYTES: u64 = 4096;
/// `FallbackToLogsOnError`: at most this many of the log's last lines...
pub const MAX_TERMINATION_LOG_LINES: usize = 80;
/// ...and of those, the last this many bytes.
pub const MAX_TERMINATION_LOG_BYTES: usize = 2048;

/// The kubelet-managed hosts file of a pod (upstream `managedHostsFileContent`).
pub fn etc_hosts_content(h: &EtcHosts, pod_ips: &[String]) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    for ip in pod_ips {
        match &h.fqdn {
            Some(fqdn) => out.push_str(&format!("{ip}\t{fqdn}\t{}\n", h.hostname)),
            None => out.push_str(&format!("{ip}\t{}\n", h.hostname)),
        }
    }
    if !h.aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for (ip, names) in &h.aliases {
            out.push_str(&format!("{ip}\t{}\n", names.join("\t")));
        }
    }
    out
}

/// The last `max` bytes of a file (upstream `tail.ReadAtMost`); a missing file reads empty.
pub fn read_at_most(path: &Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max && f.seek(SeekFrom::Start(len - max)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if f.take(max).read_to_end(&mut buf).is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The tail of a container's log as `FallbackToLogsOnError` reports it: the last 80 lines, of
/// which the last 2048 bytes.
pub fn log_tail(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(MAX_TERMINATION_LOG_LINES);
    let mut text = String::new();
    for l in &lines[start..] {
        text.push_str(l);
        text.push('\n');
    }
    if text.len() > MAX_TERMINATION_LOG_BYTES {
        let mut cut = text.len() - MAX_TERMINATION_LOG_BYTES;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = text[cut..].to_string();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file() {
        let h = EtcHosts {
            path: "/x".into(),
            hostname: "web-0".into(),
            fqdn: Some("web-0.web.ns.svc.cluster.local".into()),
            aliases: vec![
                (
                    "123.45.67.89".into(),
                    vec!["foo.remote".into(), "bar.remote".into()],
                ),
                ("127.0.0.1".into(), vec!["foo.local".into()]),
            ],
        };
        let s = etc_hosts_content(&h, &["10.42.0.5".to_string()]);
        assert!(s.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(
            s.contains("\n10.42.0.5\tweb-0.web.ns.svc.cluster.local\tweb-0\n"),
            "{s}"
        );
        assert!(s.ends_with(
            "\n# Entries added by HostAliases.\n123.45.67.89\tfoo.remote\tbar.remote\n127.0.0.1\tfoo.local\n"
        ));
        let plain = EtcHosts {
            hostname: "p".into(),
            ..Default::default()
        };
        let s = etc_hosts_content(&plain, &["10.42.0.6".to_string()]);
        assert!(
            s.ends_with("fe00::2\tip6-allrouters\n10.42.0.6\tp\n"),
            "{s}"
        );
        assert!(!s.contains("HostAliases"));
    }

    #[test]
    fn termination_file_is_read_from_its_end() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t");
        assert_eq!(read_at_most(&p, 4096), "");
        std::fs::write(&p, "DONE").unwrap();
        assert_eq!(read_at_most(&p, MAX_TERMINATION_MESSAGE_BYTES), "DONE");
        let big = format!("{}{}", "a".repeat(5000), "b".repeat(4096));
        std::fs::write(&p, &big).unwrap();
        assert_eq!(
            read_at_most(&p, MAX_TERMINATION_MESSAGE_BYTES),
            "b".repeat(4096)
        );
    }

    #[test]
    fn log_tail_keeps_last_lines_and_bytes() {
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let t = log_tail(&lines);
        assert!(t.starts_with("line 20\n"), "{t}");
        assert!(t.ends_with("line 99\n"));
        assert_eq!(t.lines().count(), 80);
        let long: Vec<String> = (0..10).map(|i| format!("{i}{}", "x".repeat(500))).collect();
        let t = log_tail(&long);
        assert_eq!(t.len(), MAX_TERMINATION_LOG_BYTES);
        assert!(t.ends_with(&format!("9{}\n", "x".repeat(500))));
        assert_eq!(log_tail(&[]), "");
        // A multi-byte character at the cut is not split.
        let wide = vec!["é".repeat(1500)];
        assert!(log_tail(&wide).len() <= MAX_TERMINATION_LOG_BYTES);
    }
}
