//! `daas hollow` processes for e2e tests: simulated staked nodes (real stake, seal token,
//! attested join, Node, Lease and pod status; no containers).

use std::process::{Child, Command, Stdio};

use super::Cluster;

/// A `daas hollow` process, killed when dropped (also when the test fails).
pub struct Hollow(Child);

impl Hollow {
    /// `count` nodes named `<prefix>-<i>`, each from its own loopback address counted up from
    /// `source_ip_base`, renewing their Leases every 2 s and writing pod status every
    /// `status_every` seconds.
    pub fn start(
        c: &Cluster,
        prefix: &str,
        count: usize,
        source_ip_base: &str,
        status_every: u32,
    ) -> Hollow {
        let log = std::fs::File::create(c.dir.path().join(format!("hollow-{prefix}.log")))
            .expect("log file");
        let root = c.data_dir().join("tee").join("trusted-root.pem");
        let child = Command::new(env!("CARGO_BIN_EXE_daas"))
            .args([
                "hollow",
                "--chain",
                &c.chain_url(),
                "--server",
                &c.server_url(),
            ])
            .args(["--count", &count.to_string(), "--name-prefix", prefix])
            .args(["--heartbeat-seconds", "2"])
            .args(["--status-every", &status_every.to_string()])
            .args(["--source-ip-base", source_ip_base])
            .arg("--trust-root")
            .arg(root)
            .arg("--data-dir")
            .arg(c.dir.path().join(format!("hollow-{prefix}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daas hollow");
        Hollow(child)
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Hollow {
    fn drop(&mut self) {
        self.kill();
    }
}
