//! Starts a throw-away single-member `etcd` on 127.0.0.1 (tests and benchmarks).
//! The process is killed and its data directory removed when the handle is dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, StoreError};

/// A running etcd child process.
pub struct EtcdProcess {
    child: Child,
    data: Option<tempfile::TempDir>,
    client_url: String,
}

fn free_port() -> Result<u16> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| StoreError::Backend(format!("bind: {e}")))?;
    let port = l
        .local_addr()
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .port();
    Ok(port)
}

impl EtcdProcess {
    /// Binary used: `$ETCD_BIN` or `etcd` from PATH.
    pub fn binary() -> PathBuf {
        std::env::var_os("ETCD_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("etcd"))
    }

    /// Start etcd on random local ports and wait until it answers on its client port.
    pub async fn start() -> Result<EtcdProcess> {
        let mut last_err = None;
        for _ in 0..3 {
            match Self::try_start().await {
                Ok(p) => return Ok(p),
                Err(e) => {
                    tracing::warn!(error = %e, "etcd start attempt failed");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| StoreError::Backend("etcd did not start".into())))
    }

    async fn try_start() -> Result<EtcdProcess> {
        let data = tempfile::Builder::new()
            .prefix("daas-etcd-")
            .tempdir()
            .map_err(|e| StoreError::Backend(format!("tempdir: {e}")))?;
        let (cport, pport) = (free_port()?, free_port()?);
        let client_url = format!("http://127.0.0.1:{cport}");
        let peer_url = format!("http://127.0.0.1:{pport}");
        let log = std::fs::File::create(data.path().join("etcd.log"))
            .map_err(|e| StoreError::Backend(format!("etcd log: {e}")))?;
        let child = Command::new(Self::binary())
            .arg("--name")
            .arg("daas-test")
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("daas-test={peer_url}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| {
                StoreError::Backend(format!("spawn etcd ({}): {e}", Self::binary().display()))
            })?;
        let mut p = EtcdProcess {
            child,
            data: Some(data),
            client_url,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                let log = p.log();
                return Err(StoreError::Backend(format!(
                    "etcd exited early ({status}): {log}"
                )));
            }
            if let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(2),
                etcd_client::Client::connect([&p.client_url], None),
            )
            .await
            {
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(2), c.get("health-probe", None)).await
                {
                    return Ok(p);
                }
            }
            if Instant::now() > deadline {
                return Err(StoreError::Backend(format!(
                    "etcd not ready in 20s: {}",
                    p.log()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        self.data
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.path().join("etcd.log")).ok())
            .map(|s| {
                s.chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.client_url
    }

    /// etcd's data directory (`--data-dir`), e.g. to check that nothing readable is stored.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data.as_ref().map(|d| d.path().join("data"))
    }

    /// Process id of the etcd child.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = self.data.take() {
            let _ = d.close();
        }
    }
}
