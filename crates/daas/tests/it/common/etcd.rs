//! A throw-away etcd cluster of Debian `etcd` members on 127.0.0.1 (free ports, a temp dir each),
//! killed and removed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct EtcdMember {
    pub name: String,
    pub client_url: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
}

pub struct EtcdCluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<EtcdMember>,
}

/// `n` distinct free ports: every listener is held until all are chosen, so the kernel cannot hand
/// the same ephemeral port out twice (it did: two members on one peer URL).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// `GET /health` on a member's client URL answers `{"health":"true"}` once it has a leader.
fn healthy(client_url: &str) -> bool {
    let addr = client_url.trim_start_matches("http://");
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("\"health\":\"true\"")
}

impl EtcdCluster {
    /// Start `n` members forming one cluster and wait until every one is healthy.
    pub fn start(n: usize) -> EtcdCluster {
        let dir = tempfile::Builder::new()
            .prefix("daas-etcd-cluster-")
            .tempdir()
            .unwrap();
        let token = format!(
            "daas-test-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let free = free_ports(2 * n);
        let ports: Vec<(u16, u16)> = free.chunks(2).map(|c| (c[0], c[1])).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("m{i}=http://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, (c, p)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let data_dir = dir.path().join(&name);
            let client_url = format!("http://127.0.0.1:{c}");
            let peer_url = format!("http://127.0.0.1:{p}");
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
            let child = Command::new(std::env::var_os("ETCD_BIN").unwrap_or_else(|| "etcd".into()))
                .args(["--name", &name, "--data-dir"])
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token])
                .args(["--log-level", "warn"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn etcd (Debian package etcd-server)");
            members.push(EtcdMember {
                name,
                client_url,
                data_dir,
                child: Some(child),
            });
        }
        let c = EtcdCluster { dir, members };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c.members.iter().all(|m| healthy(&m.client_url)) {
            assert!(
                Instant::now() < deadline,
                "etcd cluster not healthy in 30 s:\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    }

    /// Comma-separated client URLs (`--datastore-endpoint`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn data_dirs(&self) -> Vec<&Path> {
        self.members.iter().map(|m| m.data_dir.as_path()).collect()
    }

    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let l = std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name)))
                    .unwrap_or_default();
                let tail: String = l
                    .chars()
                    .rev()
                    .take(1500)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("--- {} ---\n{tail}", m.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
