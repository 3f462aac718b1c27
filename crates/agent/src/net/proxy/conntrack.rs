//! Stale UDP conntrack entries (kube-proxy's `conntrack -D`): UDP has no connection end, so a
//! client that keeps sending from the same source port keeps its conntrack entry, and with it
//! the NAT decision made for its first datagram, long after the backend is gone (or after a
//! reject cached while the Service had no endpoints). After the rules change, the proxy deletes:
//!
//! - when a UDP Service port gets its first endpoint: the entries whose original destination is
//!   its cluster IP (and external IPs) and port, and those to its node port;
//! - when an endpoint of a UDP Service port goes away (or the port itself does): the entries
//!   whose reply source is that endpoint's address.
//!
//! [`stale_flushes`] computes these from two generations of [`ServicePort`]s (pure);
//! [`Conntrack`] runs them, with [`ConntrackCli`] (the `conntrack` binary of the Debian package
//! `conntrack`) and [`RecordingConntrack`] for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::model::{Proto, ServicePort};

/// One deletion of conntrack entries (always protocol UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flush {
    /// Entries whose original destination is `ip:port` (a Service address).
    OrigDst { ip: Ipv4Addr, port: u16 },
    /// Entries whose original destination port is `port`, any address (a node port).
    OrigDstPort { port: u16 },
    /// Entries whose reply source is `ip` (a removed endpoint).
    ReplySrc { ip: Ipv4Addr },
}

impl Flush {
    /// The `conntrack` arguments deleting these entries.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = ["-D", "-p", "udp"].map(String::from).into();
        match self {
            Flush::OrigDst { ip, port } => a.extend([
                "--orig-dst".into(),
                ip.to_string(),
                "--orig-port-dst".into(),
                port.to_string(),
            ]),
            Flush::OrigDstPort { port } => a.extend(["--orig-port-dst".into(), port.to_string()]),
            Flush::ReplySrc { ip } => a.extend(["--reply-src".into(), ip.to_string()]),
        }
        a
    }
}

/// The deletions a change from `old` to `new` calls for, sorted and without duplicates.
pub fn stale_flushes(old: &[ServicePort], new: &[ServicePort]) -> Vec<Flush> {
    let udp = |ports: &[ServicePort]| -> BTreeMap<String, ServicePort> {
        ports
            .iter()
            .filter(|p| p.proto == Proto::Udp)
            .map(|p| (p.id(), p.clone()))
            .collect()
    };
    let (old, new) = (udp(old), udp(new));
    let mut out = BTreeSet::new();
    for (id, p) in &new {
        let before = old.get(id);
        let had = before.map(|b| !b.endpoints.is_empty()).unwrap_or(false);
        if !had && !p.endpoints.is_empty() {
            out.insert(Flush::OrigDst {
                ip: p.cluster_ip,
                port: p.port,
            });
            for ip in &p.external_ips {
                out.insert(Flush::OrigDst {
                    ip: *ip,
                    port: p.port,
                });
            }
            if let Some(port) = p.node_port {
                out.insert(Flush::OrigDstPort { port });
            }
        }
    }
    for (id, b) in &old {
        let still: BTreeSet<(Ipv4Addr, u16)> = new
            .get(id)
            .map(|p| p.endpoints.iter().map(|e| (e.ip, e.port)).collect())
            .unwrap_or_default();
        for e in &b.endpoints {
            if !still.contains(&(e.ip, e.port)) {
                out.insert(Flush::ReplySrc { ip: e.ip });
            }
        }
    }
    out.into_iter().collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("running {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("conntrack {args:?} failed: {stderr}")]
    Refused { args: Vec<String>, stderr: String },
}

/// Where conntrack entries are deleted.
#[async_trait]
pub trait Conntrack: Send + Sync {
    /// Delete the entries `flush` names (no error when there are none).
    async fn flush(&self, flush: &Flush) -> Result<(), ConntrackError>;
}

/// The real one: the `conntrack` binary, in the agent's network namespace.
#[derive(Debug, Clone)]
pub struct ConntrackCli {
    pub bin: PathBuf,
}

impl Default for ConntrackCli {
    fn default() -> Self {
        ConntrackCli {
            bin: "conntrack".into(),
        }
    }
}

#[async_trait]
impl Conntrack for ConntrackCli {
    async fn flush(&self, flush: &Flush) -> Result<(), ConntrackError> {
        let args = flush.args();
        let out = tokio::process::Command::new(&self.bin)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| ConntrackError::Spawn {
                bin: self.bin.clone(),
                source,
            })?;
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        // Nothing matched: exit 1 with "0 flow entries have been deleted".
        if out.status.success() || stderr.contains("0 flow entries") {
            Ok(())
        } else {
            Err(ConntrackError::Refused { args, stderr })
        }
    }
}

/// Records the deletions asked for (for unit tests).
#[derive(Debug, Default)]
pub struct RecordingConntrack {
    pub flushed: Mutex<Vec<Flush>>,
}

impl RecordingConntrack {
    /// Everything flushed so far, and forget it.
    pub fn take(&self) -> Vec<Flush> {
        self.flushed
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default()
    }
}

#[async_trait]
impl Conntrack for RecordingConntrack {
    async fn flush(&self, flush: &Flush) -> Result<(), ConntrackError> {
        if let Ok(mut f) = self.flushed.lock() {
            f.push(*flush);
        }
        Ok(())
    }
}

/// Run `flushes`, logging (not failing on) each error: a stale entry is a degraded client, not a
/// reason to stop programming rules.
pub async fn run_flushes(ct: &dyn Conntrack, flushes: &[Flush]) -> usize {
    let mut failed = 0;
    for f in flushes {
        if let Err(e) = ct.flush(f).await {
            failed += 1;
            tracing::warn!(error = %e, "deleting stale UDP conntrack entries failed");
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::super::model::Endpoint;
    use super::*;

    fn port(proto: Proto, eps: &[(u8, u16)]) -> ServicePort {
        ServicePort {
            namespace: "ns".into(),
            name: "dns".into(),
            port_name: "".into(),
            proto,
            port: 53,
            cluster_ip: Ipv4Addr::new(10, 43, 0, 20),
            node_port: Some(30053),
            external_ips: vec![Ipv4Addr::new(172, 30, 0, 11)],
            affinity_seconds: None,
            external_local: false,
            internal_local: false,
            endpoints: eps
                .iter()
                .map(|(last, port)| Endpoint {
                    ip: Ipv4Addr::new(10, 42, 1, *last),
                    port: *port,
                    local: true,
                })
                .collect(),
        }
    }

    #[test]
    fn a_first_endpoint_flushes_the_service_addresses() {
        let f = stale_flushes(&[port(Proto::Udp, &[])], &[port(Proto::Udp, &[(5, 53)])]);
        assert_eq!(
            f,
            vec![
                Flush::OrigDst {
                    ip: Ipv4Addr::new(10, 43, 0, 20),
                    port: 53
                },
                Flush::OrigDst {
                    ip: Ipv4Addr::new(172, 30, 0, 11),
                    port: 53
                },
                Flush::OrigDstPort { port: 30053 },
            ]
        );
        // Also when the Service is new.
        assert_eq!(stale_flushes(&[], &[port(Proto::Udp, &[(5, 53)])]).len(), 3);
    }

    #[test]
    fn a_removed_endpoint_flushes_its_replies_only() {
        let old = [port(Proto::Udp, &[(5, 53), (6, 53)])];
        let new = [port(Proto::Udp, &[(6, 53), (7, 53)])];
        assert_eq!(
            stale_flushes(&old, &new),
            vec![Flush::ReplySrc {
                ip: Ipv4Addr::new(10, 42, 1, 5)
            }]
        );
        // A changed target port counts as a removal.
        let new = [port(Proto::Udp, &[(5, 54), (6, 53)])];
        assert_eq!(
            stale_flushes(&old, &new),
            vec![Flush::ReplySrc {
                ip: Ipv4Addr::new(10, 42, 1, 5)
            }]
        );
        // The last endpoint gone, or the whole Service.
        assert_eq!(
            stale_flushes(&[port(Proto::Udp, &[(5, 53)])], &[port(Proto::Udp, &[])]),
            vec![Flush::ReplySrc {
                ip: Ipv4Addr::new(10, 42, 1, 5)
            }]
        );
        assert_eq!(
            stale_flushes(&[port(Proto::Udp, &[(5, 53)])], &[]),
            vec![Flush::ReplySrc {
                ip: Ipv4Addr::new(10, 42, 1, 5)
            }]
        );
    }

    #[test]
    fn unchanged_added_and_tcp_endpoints_flush_nothing() {
        let old = [port(Proto::Udp, &[(5, 53)])];
        assert!(stale_flushes(&old, &old).is_empty());
        // Another endpoint next to a working one: existing flows stay.
        assert!(stale_flushes(&old, &[port(Proto::Udp, &[(5, 53), (6, 53)])]).is_empty());
        // TCP closes its connections itself.
        assert!(stale_flushes(
            &[port(Proto::Tcp, &[(5, 53)])],
            &[port(Proto::Tcp, &[(6, 53)])]
        )
        .is_empty());
        assert!(stale_flushes(&[], &[port(Proto::Tcp, &[(6, 53)])]).is_empty());
    }

    #[test]
    fn cli_arguments() {
        assert_eq!(
            Flush::OrigDst {
                ip: Ipv4Addr::new(10, 43, 0, 20),
                port: 53
            }
            .args()
            .join(" "),
            "-D -p udp --orig-dst 10.43.0.20 --orig-port-dst 53"
        );
        assert_eq!(
            Flush::OrigDstPort { port: 30053 }.args().join(" "),
            "-D -p udp --orig-port-dst 30053"
        );
        assert_eq!(
            Flush::ReplySrc {
                ip: Ipv4Addr::new(10, 42, 1, 5)
            }
            .args()
            .join(" "),
            "-D -p udp --reply-src 10.42.1.5"
        );
    }
}
