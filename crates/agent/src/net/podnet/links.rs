//! The kernel state the overlay programs: the VXLAN device, routes, neighbours and forwarding
//! database entries on it. [`IpCli`] drives the `ip` and `bridge` binaries (iproute2, JSON
//! output); [`RecordingLinks`] keeps the same state in memory for unit tests.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

/// The VXLAN device of a node (flannel's `flannel.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The node IP: the outer source address, and where other nodes send this node's traffic.
    pub local: Ipv4Addr,
    /// This node's VTEP address (the network address of its pod CIDR, as a /32).
    pub address: Ipv4Addr,
    pub mtu: u32,
}

/// A route to a remote node's pod CIDR via its VTEP address, on link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub dst: String,
    pub via: Ipv4Addr,
}

/// A permanent neighbour entry: a remote VTEP address and its MAC.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: String,
}

/// A forwarding database entry: frames for a remote VTEP MAC go to that node's IP.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fdb {
    pub mac: String,
    pub dst: Ipv4Addr,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("running {bin}: {source}")]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("unexpected output of {command}: {detail}")]
    Output { command: String, detail: String },
}

/// Where the overlay's kernel state lives.
#[async_trait]
pub trait Links: Send + Sync {
    /// Create the VXLAN device (or recreate it when its settings differ), set its MTU and
    /// address and bring it up. Returns its MAC address.
    async fn ensure_vxlan(&self, v: &Vxlan) -> Result<String, LinkError>;
    /// Delete a device (no error when it does not exist).
    async fn remove_link(&self, name: &str) -> Result<(), LinkError>;
    async fn routes(&self, dev: &str) -> Result<Vec<Route>, LinkError>;
    async fn replace_route(&self, dev: &str, r: &Route) -> Result<(), LinkError>;
    async fn delete_route(&self, dev: &str, r: &Route) -> Result<(), LinkError>;
    async fn neighbours(&self, dev: &str) -> Result<Vec<Neighbour>, LinkError>;
    async fn replace_neighbour(&self, dev: &str, n: &Neighbour) -> Result<(), LinkError>;
    async fn delete_neighbour(&self, dev: &str, n: &Neighbour) -> Result<(), LinkError>;
    async fn fdb(&self, dev: &str) -> Result<Vec<Fdb>, LinkError>;
    async fn replace_fdb(&self, dev: &str, f: &Fdb) -> Result<(), LinkError>;
    async fn delete_fdb(&self, dev: &str, f: &Fdb) -> Result<(), LinkError>;
    /// The MTU of the interface holding `ip` (the VXLAN device's is 50 bytes less).
    async fn mtu_of(&self, ip: Ipv4Addr) -> Result<Option<u32>, LinkError>;
    /// Set the MTU of the (already open) TUN device `name`, bring it up and give it the
    /// VTEP address `address`/32.
    async fn ensure_tun(&self, name: &str, address: Ipv4Addr, mtu: u32) -> Result<(), LinkError>;
}

/// iproute2 in the agent's network namespace.
#[derive(Debug, Clone)]
pub struct IpCli {
    pub ip: PathBuf,
    pub bridge: PathBuf,
}

impl Default for IpCli {
    fn default() -> Self {
        IpCli {
            ip: "ip".into(),
            bridge: "bridge".into(),
        }
    }
}

impl IpCli {
    async fn run(&self, bin: &PathBuf, args: &[&str]) -> Result<String, LinkError> {
        let out = tokio::process::Command::new(bin)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|source| LinkError::Spawn {
                bin: bin.clone(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(LinkError::Failed {
                command: format!("{} {}", bin.display(), args.join(" ")),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    async fn ip(&self, args: &[&str]) -> Result<String, LinkError> {
        self.run(&self.ip, args).await
    }

    async fn json(&self, bin: &PathBuf, args: &[&str]) -> Result<Vec<Value>, LinkError> {
        let out = self.run(bin, args).await?;
        if out.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str::<Vec<Value>>(&out).map_err(|e| LinkError::Output {
            command: format!("{} {}", bin.display(), args.join(" ")),
            detail: e.to_string(),
        })
    }

    /// Whether the error says the device is missing (then there is nothing to list).
    fn missing(e: &LinkError) -> bool {
        matches!(e, LinkError::Failed { stderr, .. }
            if stderr.contains("does not exist") || stderr.contains("Cannot find device"))
    }
}

#[async_trait]
impl Links for IpCli {
    async fn ensure_vxlan(&self, v: &Vxlan) -> Result<String, LinkError> {
        let current = match self
            .json(&self.ip, &["-j", "-d", "link", "show", &v.name])
            .await
        {
            Ok(l) => l.into_iter().next(),
            Err(e) if Self::missing(&e) => None,
            Err(e) => return Err(e),
        };
        let matches = current.as_ref().is_some_and(|l| {
            let d = &l["linkinfo"]["info_data"];
            l["linkinfo"]["info_kind"] == "vxlan"
                && d["id"].as_u64() == Some(u64::from(v.vni))
                && d["port"].as_u64() == Some(u64::from(v.port))
                && d["local"].as_str() == Some(&v.local.to_string())
                && d["learning"].as_bool() == Some(false)
        });
        if current.is_some() && !matches {
            tracing::info!(dev = %v.name, "VXLAN device settings differ; recreating it");
            self.ip(&["link", "del", &v.name]).await?;
        }
        if !matches {
            let (vni, port, local) = (v.vni.to_string(), v.port.to_string(), v.local.to_string());
            self.ip(&[
                "link",
                "add",
                &v.name,
                "type",
                "vxlan",
                "id",
                &vni,
                "local",
                &local,
                "dstport",
                &port,
                "nolearning",
            ])
            .await?;
        }
        self.ip(&["link", "set", &v.name, "mtu", &v.mtu.to_string(), "up"])
            .await?;
        let addr = format!("{}/32", v.address);
        // Exactly the VTEP address on the device.
        let addrs = self
            .json(&self.ip, &["-j", "-4", "addr", "show", "dev", &v.name])
            .await?;
        let mut present = false;
        for a in addrs
            .iter()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        {
            let (local, len) = (a["local"].as_str().unwrap_or(""), a["prefixlen"].as_u64());
            if local == v.address.to_string() && len == Some(32) {
                present = true;
            } else if !local.is_empty() {
                let stale = format!("{local}/{}", len.unwrap_or(32));
                self.ip(&["addr", "del", &stale, "dev", &v.name]).await?;
            }
        }
        if !present {
            self.ip(&["addr", "add", &addr, "dev", &v.name]).await?;
        }
        let l = self
            .json(&self.ip, &["-j", "link", "show", &v.name])
            .await?;
        l.first()
            .and_then(|l| l["address"].as_str())
            .map(str::to_string)
            .ok_or_else(|| LinkError::Output {
                command: format!("ip link show {}", v.name),
                detail: "no MAC address".into(),
            })
    }

    async fn remove_link(&self, name: &str) -> Result<(), LinkError> {
        match self.ip(&["link", "del", name]).await {
            Ok(_) => Ok(()),
            Err(e) if Self::missing(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn ensure_tun(&self, name: &str, address: Ipv4Addr, mtu: u32) -> Result<(), LinkError> {
        self.ip(&["link", "set", name, "mtu", &mtu.to_string(), "up"])
            .await?;
        let addr = format!("{address}/32");
        self.ip(&["addr", "replace", &addr, "dev", name]).await?;
        Ok(())
    }

    async fn routes(&self, dev: &str) -> Result<Vec<Route>, LinkError> {
        let l = match self
            .json(&self.ip, &["-j", "-4", "route", "show", "dev", dev])
            .await
        {
            Ok(l) => l,
            Err(e) if Self::missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(l.iter()
            .filter_map(|r| {
                let dst = r["dst"].as_str()?;
                // `ip route` prints a /32 without its length.
                let dst = if dst.contains('/') {
                    dst.to_string()
                } else {
                    format!("{dst}/32")
                };
                let via = r["gateway"].as_str()?.parse().ok()?;
                Some(Route { dst, via })
            })
            .collect())
    }

    async fn replace_route(&self, dev: &str, r: &Route) -> Result<(), LinkError> {
        self.ip(&[
            "route",
            "replace",
            &r.dst,
            "via",
            &r.via.to_string(),
            "dev",
            dev,
            "onlink",
        ])
        .await
        .map(|_| ())
    }

    async fn delete_route(&self, dev: &str, r: &Route) -> Result<(), LinkError> {
        self.ip(&["route", "del", &r.dst, "dev", dev])
            .await
            .map(|_| ())
    }

    async fn neighbours(&self, dev: &str) -> Result<Vec<Neighbour>, LinkError> {
        let l = match self
            .json(&self.ip, &["-j", "-4", "neigh", "show", "dev", dev])
            .await
        {
            Ok(l) => l,
            Err(e) if Self::missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(l.iter()
            .filter_map(|n| {
                let permanent = n["state"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s == "PERMANENT"));
                Some(Neighbour {
                    ip: n["dst"].as_str()?.parse().ok()?,
                    // A non-permanent entry never matches a wanted one: it gets replaced.
                    mac: if permanent {
                        n["lladdr"].as_str().unwrap_or("").to_string()
                    } else {
                        String::new()
                    },
                })
            })
            .collect())
    }

    async fn replace_neighbour(&self, dev: &str, n: &Neighbour) -> Result<(), LinkError> {
        self.ip(&[
            "neigh",
            "replace",
            &n.ip.to_string(),
            "lladdr",
            &n.mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ])
        .await
        .map(|_| ())
    }

    async fn delete_neighbour(&self, dev: &str, n: &Neighbour) -> Result<(), LinkError> {
        self.ip(&["neigh", "del", &n.ip.to_string(), "dev", dev])
            .await
            .map(|_| ())
    }

    async fn fdb(&self, dev: &str) -> Result<Vec<Fdb>, LinkError> {
        let l = match self
            .json(&self.bridge, &["-j", "fdb", "show", "dev", dev])
            .await
        {
            Ok(l) => l,
            Err(e) if Self::missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(l.iter()
            .filter_map(|f| {
                Some(Fdb {
                    mac: f["mac"].as_str()?.to_string(),
                    dst: f["dst"].as_str()?.parse().ok()?,
                })
            })
            .collect())
    }

    async fn replace_fdb(&self, dev: &str, f: &Fdb) -> Result<(), LinkError> {
        self.run(
            &self.bridge,
            &[
                "fdb",
                "replace",
                &f.mac,
                "dev",
                dev,
                "dst",
                &f.dst.to_string(),
                "self",
                "permanent",
            ],
        )
        .await
        .map(|_| ())
    }

    async fn delete_fdb(&self, dev: &str, f: &Fdb) -> Result<(), LinkError> {
        self.run(
            &self.bridge,
            &[
                "fdb",
                "del",
                &f.mac,
                "dev",
                dev,
                "dst",
                &f.dst.to_string(),
                "self",
            ],
        )
        .await
        .map(|_| ())
    }

    async fn mtu_of(&self, ip: Ipv4Addr) -> Result<Option<u32>, LinkError> {
        let l = self
            .json(
                &self.ip,
                &["-j", "-4", "addr", "show", "to", &format!("{ip}/32")],
            )
            .await?;
        Ok(l.first()
            .and_then(|l| l["mtu"].as_u64())
            .and_then(|m| u32::try_from(m).ok()))
    }
}

/// The overlay's kernel state in memory (for unit tests): what [`IpCli`] would leave behind.
#[derive(Debug, Default)]
pub struct RecordingLinks {
    pub state: Mutex<LinkState>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub device: Option<Vxlan>,
    /// The TUN device of the WireGuard backend: name, address, MTU.
    pub tun: Option<(String, Ipv4Addr, u32)>,
    pub routes: BTreeSet<Route>,
    pub neighbours: BTreeSet<Neighbour>,
    pub fdb: BTreeSet<Fdb>,
    /// Mutating calls, in order (`replace route 10.42.2.0/24`, ...).
    pub calls: Vec<String>,
}

impl RecordingLinks {
    pub fn snapshot(&self) -> LinkState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut LinkState) -> T) -> T {
        let mut g = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }
}

/// The MAC [`RecordingLinks`] gives a device.
pub const RECORDED_MAC: &str = "02:00:00:00:00:01";

#[async_trait]
impl Links for RecordingLinks {
    async fn ensure_vxlan(&self, v: &Vxlan) -> Result<String, LinkError> {
        self.with(|s| {
            if s.device.as_ref() != Some(v) {
                s.calls.push(format!("ensure {}", v.name));
                s.device = Some(v.clone());
            }
        });
        Ok(RECORDED_MAC.into())
    }

    async fn remove_link(&self, name: &str) -> Result<(), LinkError> {
        self.with(|s| {
            if s.device.take().is_some() {
                s.calls.push(format!("remove {name}"));
                // The kernel drops what was on the device with it.
                s.routes.clear();
                s.neighbours.clear();
                s.fdb.clear();
            }
        });
        Ok(())
    }

    async fn routes(&self, _dev: &str) -> Result<Vec<Route>, LinkError> {
        Ok(self.with(|s| s.routes.iter().cloned().collect()))
    }

    async fn replace_route(&self, _dev: &str, r: &Route) -> Result<(), LinkError> {
        self.with(|s| {
            s.routes.retain(|x| x.dst != r.dst);
            s.routes.insert(r.clone());
            s.calls.push(format!("replace route {}", r.dst));
        });
        Ok(())
    }

    async fn delete_route(&self, _dev: &str, r: &Route) -> Result<(), LinkError> {
        self.with(|s| {
            s.routes.remove(r);
            s.calls.push(format!("delete route {}", r.dst));
        });
        Ok(())
    }

    async fn neighbours(&self, _dev: &str) -> Result<Vec<Neighbour>, LinkError> {
        Ok(self.with(|s| s.neighbours.iter().cloned().collect()))
    }

    async fn replace_neighbour(&self, _dev: &str, n: &Neighbour) -> Result<(), LinkError> {
        self.with(|s| {
            s.neighbours.retain(|x| x.ip != n.ip);
            s.neighbours.insert(n.clone());
            s.calls.push(format!("replace neigh {}", n.ip));
        });
        Ok(())
    }

    async fn delete_neighbour(&self, _dev: &str, n: &Neighbour) -> Result<(), LinkError> {
        self.with(|s| {
            s.neighbours.retain(|x| x.ip != n.ip);
            s.calls.push(format!("delete neigh {}", n.ip));
        });
        Ok(())
    }

    async fn fdb(&self, _dev: &str) -> Result<Vec<Fdb>, LinkError> {
        Ok(self.with(|s| s.fdb.iter().cloned().collect()))
    }

    async fn replace_fdb(&self, _dev: &str, f: &Fdb) -> Result<(), LinkError> {
        self.with(|s| {
            s.fdb.retain(|x| x.mac != f.mac);
            s.fdb.insert(f.clone());
            s.calls.push(format!("replace fdb {}", f.mac));
        });
        Ok(())
    }

    async fn delete_fdb(&self, _dev: &str, f: &Fdb) -> Result<(), LinkError> {
        self.with(|s| {
            s.fdb.remove(f);
            s.calls.push(format!("delete fdb {}", f.mac));
        });
        Ok(())
    }

    async fn mtu_of(&self, _ip: Ipv4Addr) -> Result<Option<u32>, LinkError> {
        Ok(Some(1500))
    }

    async fn ensure_tun(&self, name: &str, address: Ipv4Addr, mtu: u32) -> Result<(), LinkError> {
        self.with(|s| {
            let want = (name.to_string(), address, mtu);
            if s.tun.as_ref() != Some(&want) {
                s.calls.push(format!("ensure tun {name}"));
                s.tun = Some(want);
            }
        });
        Ok(())
    }
}
