//! The encrypted pod network (`flannel_backend: "wireguard"`): a userspace WireGuard tunnel
//! (boringtun's `noise::Tunn`) between the nodes, because stakers do not trust each other's
//! networks and the host kernel may have no wireguard module.
//!
//! - Each node keeps a static X25519 key in its data dir ([`KEY_FILE`], mode 0600) and
//!   publishes the public key (base64) and its endpoint `<node_ip>:<wireguard_port>` as the
//!   Node annotations [`PUBLIC_KEY_ANNOTATION`] and [`ENDPOINT_ANNOTATION`].
//! - The TUN device [`TUN_DEVICE`] holds the node's VTEP address; each peer's pod CIDR is routed
//!   onto it. The packet loop ([`WgTunnel`]) picks the peer by the destination pod CIDR,
//!   encapsulates and sends over UDP; a datagram is accepted only from a peer's published
//!   endpoint, is authenticated against that peer's published key by the Noise handshake, and
//!   its inner packet is written to the TUN only when its source is inside that peer's pod CIDR.
//!   A key that is in no Node annotation never gets a session.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use k8s_openapi::api::core::v1::Node;

/// Node annotation with the node's WireGuard public key (base64, as `wg` prints it).
pub const PUBLIC_KEY_ANNOTATION: &str = "networking.k3s-daas.io/wireguard-public-key";
/// Node annotation with the node's WireGuard endpoint (`<node_ip>:<port>`).
pub const ENDPOINT_ANNOTATION: &str = "networking.k3s-daas.io/wireguard-endpoint";
/// The TUN device of the tunnel.
pub const TUN_DEVICE: &str = "daas-wg";
/// The default UDP port (`wireguard_port`).
pub const DEFAULT_PORT: u16 = 51820;
/// Bytes the encapsulation adds (outer IPv4 20 + UDP 8 + WireGuard 32, rounded up like wg-quick
/// does for IPv6 outer headers).
pub const OVERHEAD: u32 = 80;
/// The next hop of the route sending the whole cluster CIDR into the tunnel (a label on the
/// point-to-point TUN device, outside every pod CIDR so it is never a local address).
pub const CATCH_ALL_NEXT_HOP: Ipv4Addr = Ipv4Addr::new(169, 254, 42, 1);
/// The private key file in the agent's data dir.
pub const KEY_FILE: &str = "wireguard.key";
/// How often the tunnels' timers run (handshake retries, keepalives, rekeys).
pub const TIMER_TICK: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum WgError {
    #[error("wireguard key file {path}: {source}")]
    Key {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("wireguard key file {0}: not 32 hex-encoded bytes")]
    KeyFormat(String),
    #[error("TUN device {name}: {source}")]
    Tun {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("wireguard UDP socket on port {port}: {source}")]
    Socket {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Load the node's static key from `dir/`[`KEY_FILE`], creating it (0600) on first start.
pub fn load_or_create_key(dir: &Path) -> Result<StaticSecret, WgError> {
    let path = dir.join(KEY_FILE);
    let shown = path.display().to_string();
    let io = |source| WgError::Key {
        path: shown.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let bytes: [u8; 32] = hex::decode(s.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| WgError::KeyFormat(shown.clone()))?;
            Ok(StaticSecret::from(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut bytes))
                .map_err(io)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            f.write_all(hex::encode(bytes).as_bytes()).map_err(io)?;
            Ok(StaticSecret::from(bytes))
        }
        Err(e) => Err(io(e)),
    }
}

/// The base64 form of a public key.
pub fn encode_key(k: &PublicKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(k.as_bytes())
}

fn decode_key(s: &str) -> Option<[u8; 32]> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?
        .try_into()
        .ok()
}

/// What the tunnel holds for one other node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WgPeer {
    pub node: String,
    pub pod_cidr: String,
    /// The network address of the pod CIDR (the peer's VTEP address) and its prefix.
    pub net: Ipv4Addr,
    pub prefix: u8,
    pub public_key: [u8; 32],
    pub endpoint: SocketAddrV4,
}

impl WgPeer {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.net)
    }
}

/// The WireGuard peers of `me` among `nodes`: every other Node with an IPv4 pod CIDR, a
/// non-loopback InternalIP, a valid public key annotation and an endpoint annotation whose
/// address is that InternalIP.
pub fn peers(me: &str, my_ip: IpAddr, nodes: &[Node]) -> Vec<WgPeer> {
    let mut out: Vec<WgPeer> = nodes
        .iter()
        .filter_map(|n| {
            let p = super::peer_node(me, my_ip, n)?;
            let ann = p.annotations?;
            let public_key = decode_key(ann.get(PUBLIC_KEY_ANNOTATION)?)?;
            let endpoint: SocketAddrV4 = ann.get(ENDPOINT_ANNOTATION)?.parse().ok()?;
            (*endpoint.ip() == p.node_ip && endpoint.port() != 0).then(|| WgPeer {
                node: p.name.to_string(),
                pod_cidr: p.pod_cidr.clone(),
                net: p.net,
                prefix: p.prefix,
                public_key,
                endpoint,
            })
        })
        .collect();
    out.sort();
    out
}

/// The packet loop's side of the reconcile: the set of peers it talks to.
pub trait Tunnel: Send + Sync {
    /// This node's public key (base64).
    fn public_key(&self) -> String;
    /// Make the tunnel's peers exactly `peers` (sessions of unchanged peers are kept).
    fn set_peers(&self, peers: &[WgPeer]);
}

/// A [`Tunnel`] that only records the peers it was given (unit tests).
#[derive(Debug, Default)]
pub struct RecordingTunnel {
    pub peers: Mutex<Vec<WgPeer>>,
}

/// The public key [`RecordingTunnel`] reports.
pub const RECORDED_KEY: &str = "cmVjb3JkZWQta2V5LTAwMDAwMDAwMDAwMDAwMDAwMDA=";

impl Tunnel for RecordingTunnel {
    fn public_key(&self) -> String {
        RECORDED_KEY.into()
    }
    fn set_peers(&self, peers: &[WgPeer]) {
        if let Ok(mut g) = self.peers.lock() {
            *g = peers.to_vec();
        }
    }
}

struct PeerState {
    peer: WgPeer,
    tunn: Tunn,
}

/// The userspace tunnel: the TUN device, the UDP socket and one `Tunn` per peer.
pub struct WgTunnel {
    secret: StaticSecret,
    public: PublicKey,
    peers: Mutex<Vec<PeerState>>,
    next_index: Mutex<u32>,
    tun: File,
    udp: UdpSocket,
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn open_tun(name: &str) -> Result<File, WgError> {
    let err = |source| WgError::Tun {
        name: name.to_string(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(err)?;
    let mut req = IfReq {
        name: [0; 16],
        flags: IFF_TUN | IFF_NO_PI,
        _pad: [0; 22],
    };
    let n = name.len().min(15);
    req.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq` (40 bytes, name then flags), which
    // `IfReq` lays out; the fd is open for the whole call.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(f)
}

impl WgTunnel {
    /// Open the TUN device [`TUN_DEVICE`] and bind UDP `local:port`.
    pub fn open(secret: StaticSecret, local: Ipv4Addr, port: u16) -> Result<Arc<Self>, WgError> {
        let tun = open_tun(TUN_DEVICE)?;
        let udp = UdpSocket::bind(SocketAddrV4::new(local, port))
            .map_err(|source| WgError::Socket { port, source })?;
        let public = PublicKey::from(&secret);
        Ok(Arc::new(WgTunnel {
            secret,
            public,
            peers: Mutex::new(Vec::new()),
            next_index: Mutex::new(1),
            tun,
            udp,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PeerState>> {
        match self.peers.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Start the packet loop's threads (TUN -> UDP, UDP -> TUN, timers). They run for the
    /// life of the process.
    pub fn start(self: &Arc<Self>) -> std::io::Result<()> {
        let t = self.clone();
        std::thread::Builder::new()
            .name("wg-tun".into())
            .spawn(move || t.tun_loop())?;
        let t = self.clone();
        std::thread::Builder::new()
            .name("wg-udp".into())
            .spawn(move || t.udp_loop())?;
        let t = self.clone();
        std::thread::Builder::new()
            .name("wg-timers".into())
            .spawn(move || t.timer_loop())?;
        Ok(())
    }

    fn send(&self, to: SocketAddrV4, data: &[u8]) {
        if let Err(e) = self.udp.send_to(data, to) {
            tracing::debug!(%to, error = %e, "wireguard send failed");
        }
    }

    fn tun_loop(&self) {
        let mut buf = vec![0u8; 65536];
        let mut out = vec![0u8; 65536 + 148];
        loop {
            let n = match (&self.tun).read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the TUN device failed");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let pkt = &buf[..n];
            if n < 20 || pkt[0] >> 4 != 4 {
                continue;
            }
            let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
            let mut peers = self.lock();
            let Some(p) = peers.iter_mut().find(|p| p.peer.contains(dst)) else {
                continue;
            };
            if let TunnResult::WriteToNetwork(d) = p.tunn.encapsulate(pkt, &mut out) {
                let to = p.peer.endpoint;
                self.send(to, d);
            }
        }
    }

    fn udp_loop(&self) {
        let mut buf = vec![0u8; 65536];
        let mut out = vec![0u8; 65536];
        loop {
            let (n, from) = match self.udp.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving on the wireguard socket failed");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let SocketAddr::V4(from) = from else {
                continue;
            };
            let mut peers = self.lock();
            // Only a published endpoint of a Node with a published key is ever heard.
            let Some(p) = peers.iter_mut().find(|p| p.peer.endpoint == from) else {
                tracing::debug!(%from, "datagram from an unknown endpoint dropped");
                continue;
            };
            let mut first = true;
            loop {
                let input: &[u8] = if first { &buf[..n] } else { &[] };
                let src = first.then_some(IpAddr::V4(*from.ip()));
                first = false;
                match p.tunn.decapsulate(src, input, &mut out) {
                    TunnResult::WriteToNetwork(d) => {
                        self.send(from, d);
                        // Packets queued during the handshake follow.
                        continue;
                    }
                    TunnResult::WriteToTunnelV4(d, inner_src) => {
                        if p.peer.contains(inner_src) {
                            if let Err(e) = (&self.tun).write_all(d) {
                                tracing::debug!(error = %e, "writing to the TUN device failed");
                            }
                        } else {
                            tracing::debug!(peer = %p.peer.node, src = %inner_src, "packet from outside the peer's pod CIDR dropped");
                        }
                    }
                    TunnResult::Err(e) => {
                        tracing::debug!(peer = %p.peer.node, error = ?e, "wireguard datagram refused");
                    }
                    TunnResult::Done | TunnResult::WriteToTunnelV6(..) => {}
                }
                break;
            }
        }
    }

    fn timer_loop(&self) {
        let mut out = vec![0u8; 2048];
        loop {
            std::thread::sleep(TIMER_TICK);
            let mut peers = self.lock();
            for p in peers.iter_mut() {
                if let TunnResult::WriteToNetwork(d) = p.tunn.update_timers(&mut out) {
                    self.send(p.peer.endpoint, d);
                }
            }
        }
    }
}

impl Tunnel for WgTunnel {
    fn public_key(&self) -> String {
        encode_key(&self.public)
    }

    fn set_peers(&self, want: &[WgPeer]) {
        let mut peers = self.lock();
        peers.retain(|p| want.contains(&p.peer));
        for w in want {
            if peers.iter().any(|p| &p.peer == w) {
                continue;
            }
            let index = {
                let mut i = match self.next_index.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                *i = i.wrapping_add(1);
                *i
            };
            tracing::info!(peer = %w.node, endpoint = %w.endpoint, pod_cidr = %w.pod_cidr, "adding wireguard peer");
            peers.push(PeerState {
                peer: w.clone(),
                tunn: Tunn::new(
                    self.secret.clone(),
                    PublicKey::from(w.public_key),
                    None,
                    Some(25),
                    index,
                    None,
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(dir.path()).unwrap();
        let b = load_or_create_key(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(KEY_FILE), "zz").unwrap();
        assert!(matches!(
            load_or_create_key(dir.path()),
            Err(WgError::KeyFormat(_))
        ));
    }

    #[test]
    fn contains() {
        let p = WgPeer {
            node: "b".into(),
            pod_cidr: "10.42.2.0/24".into(),
            net: Ipv4Addr::new(10, 42, 2, 0),
            prefix: 24,
            public_key: [1; 32],
            endpoint: "172.30.0.12:51820".parse().unwrap(),
        };
        assert!(p.contains(Ipv4Addr::new(10, 42, 2, 7)));
        assert!(!p.contains(Ipv4Addr::new(10, 42, 3, 7)));
    }
}
