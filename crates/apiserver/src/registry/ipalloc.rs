//! Service cluster-IP and NodePort allocators (upstream pkg/registry/core/service/ipallocator
//! and portallocator), with their reservations kept in the store.
//!
//! Model: one store key per allocated IP (`/registry/daas/serviceips/<ip>`) and per allocated
//! node port (`/registry/daas/servicenodeports/<port>`), as upstream's newer IPAddress objects
//! (networking.k8s.io) do, rather than its older single bitmap object in etcd. Reasons: a
//! reservation is one atomic `create` of its key (the store refuses a second one), so concurrent
//! Service creates never get the same IP and never contend on one hot object (a bitmap would make
//! every allocation a compare-and-swap retry loop on the same key); each reservation records its
//! owner (namespace, name, uid), so a release deletes only what that Service holds and the repair
//! controller can tell leaked reservations from live ones by listing one prefix.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use daas_store::{Store, StoreError};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Where cluster-IP reservations live.
pub const IP_PREFIX: &str = "/registry/daas/serviceips/";
/// Where node-port reservations live.
pub const PORT_PREFIX: &str = "/registry/daas/servicenodeports/";

/// Default `--service-cluster-ip-range`.
pub const DEFAULT_CLUSTER_IP_RANGE: &str = "10.43.0.0/16";
/// Default `--service-node-port-range`.
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("invalid service cluster IP range {0:?}: expected an IPv4 CIDR such as 10.43.0.0/16 with a prefix of /8 to /30")]
    Cidr(String),
    #[error("invalid service node port range {0:?}: expected FIRST-LAST such as 30000-32767")]
    Ports(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    IpNotInRange { ip: String, range: String },
    #[error("provided IP is already allocated")]
    IpAllocated,
    #[error("provided port is not in the valid range. The range of valid ports is {range}")]
    PortNotInRange { range: String },
    #[error("provided port is already allocated")]
    PortAllocated,
    #[error("range is full")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The service cluster-IP range (IPv4 CIDR) and the node-port range of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRanges {
    network: Ipv4Addr,
    prefix: u8,
    /// First and last node port, inclusive.
    pub node_ports: (u16, u16),
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges::parse(DEFAULT_CLUSTER_IP_RANGE, DEFAULT_NODE_PORT_RANGE).unwrap_or(
            ServiceRanges {
                network: Ipv4Addr::new(10, 43, 0, 0),
                prefix: 16,
                node_ports: (30000, 32767),
            },
        )
    }
}

impl ServiceRanges {
    /// Parse `--service-cluster-ip-range` and `--service-node-port-range` values.
    pub fn parse(cidr: &str, ports: &str) -> Result<Self, RangeError> {
        let bad_cidr = || RangeError::Cidr(cidr.to_string());
        let (addr, len) = cidr.split_once('/').ok_or_else(bad_cidr)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad_cidr())?;
        let prefix: u8 = len.parse().map_err(|_| bad_cidr())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad_cidr());
        }
        let mask = u32::MAX << (32 - prefix);
        let network = Ipv4Addr::from(u32::from(addr) & mask);
        let bad_ports = || RangeError::Ports(ports.to_string());
        let (a, b) = ports.split_once('-').ok_or_else(bad_ports)?;
        let first: u16 = a.trim().parse().map_err(|_| bad_ports())?;
        let last: u16 = b.trim().parse().map_err(|_| bad_ports())?;
        if first == 0 || first > last {
            return Err(bad_ports());
        }
        Ok(ServiceRanges {
            network,
            prefix,
            node_ports: (first, last),
        })
    }

    /// The CIDR as upstream prints it in messages ("10.43.0.0/16").
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }

    /// The node-port range as upstream prints it ("30000-32767").
    pub fn ports(&self) -> String {
        format!("{}-{}", self.node_ports.0, self.node_ports.1)
    }

    /// The first usable address: the `kubernetes` Service's cluster IP.
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    /// Is `ip` allocatable: inside the CIDR, neither its network nor its broadcast address.
    pub fn contains_ip(&self, ip: Ipv4Addr) -> bool {
        let (n, i) = (u32::from(self.network), u32::from(ip));
        i > n && i < n + self.size() - 1
    }

    pub fn contains_port(&self, port: i64) -> bool {
        port >= i64::from(self.node_ports.0) && port <= i64::from(self.node_ports.1)
    }
}

/// Who holds a reservation (the value stored under its key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl Owner {
    pub fn new(namespace: &str, name: &str, uid: &str) -> Self {
        Owner {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            created_at: Some(Utc::now()),
        }
    }

    fn same(&self, other: &Owner) -> bool {
        self.uid == other.uid && self.namespace == other.namespace && self.name == other.name
    }
}

/// One stored reservation.
#[derive(Clone, Debug)]
pub struct Reservation<T> {
    pub value: T,
    pub owner: Owner,
    pub mod_revision: i64,
}

/// Both allocators over one store.
#[derive(Clone)]
pub struct Allocators {
    store: Arc<dyn Store>,
    pub ranges: ServiceRanges,
}

impl std::fmt::Debug for Allocators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allocators")
            .field("ranges", &self.ranges)
            .finish_non_exhaustive()
    }
}

impl Allocators {
    pub fn new(store: Arc<dyn Store>, ranges: ServiceRanges) -> Self {
        Allocators { store, ranges }
    }

    fn ip_key(ip: Ipv4Addr) -> String {
        format!("{IP_PREFIX}{ip}")
    }

    fn port_key(port: u16) -> String {
        format!("{PORT_PREFIX}{port}")
    }

    /// Create `key` for `owner`; a key already held by the same owner counts as reserved.
    async fn reserve_key(&self, key: &str, owner: &Owner) -> Result<bool, AllocError> {
        let value = serde_json::to_vec(owner)
            .map_err(|e| StoreError::Backend(format!("encoding reservation: {e}")))?;
        match self.store.create(key, &value).await {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists(_)) => {
                let held = self.store.get(key).await?;
                Ok(held
                    .and_then(|kv| serde_json::from_slice::<Owner>(&kv.value).ok())
                    .map(|o| o.same(owner))
                    .unwrap_or(false))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reserve `key` for `owner`, or with `check_only` only tell whether it could be.
    async fn claim(&self, key: &str, owner: &Owner, check_only: bool) -> Result<bool, AllocError> {
        if !check_only {
            return self.reserve_key(key, owner).await;
        }
        Ok(self
            .held_by(key)
            .await?
            .map(|o| o.same(owner))
            .unwrap_or(true))
    }

    /// The values (key suffixes) reserved under `prefix`.
    async fn used(&self, prefix: &str) -> Result<HashSet<String>, AllocError> {
        Ok(self
            .store
            .list(prefix)
            .await?
            .items
            .into_iter()
            .map(|kv| kv.key[prefix.len()..].to_string())
            .collect())
    }

    async fn held_by(&self, key: &str) -> Result<Option<Owner>, AllocError> {
        Ok(self
            .store
            .get(key)
            .await?
            .and_then(|kv| serde_json::from_slice::<Owner>(&kv.value).ok()))
    }

    /// Delete `key` if `owner` (by uid) holds it.
    async fn release_key(&self, key: &str, uid: &str) -> Result<(), AllocError> {
        let Some(kv) = self.store.get(key).await? else {
            return Ok(());
        };
        let owned = serde_json::from_slice::<Owner>(&kv.value)
            .map(|o| o.uid == uid)
            .unwrap_or(false);
        if owned {
            match self.store.delete(key, Some(kv.mod_revision)).await {
                Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reserve a requested cluster IP (`check_only`: only report whether it could be).
    pub async fn reserve_ip(
        &self,
        ip: Ipv4Addr,
        owner: &Owner,
        check_only: bool,
    ) -> Result<(), AllocError> {
        if !self.ranges.contains_ip(ip) {
            return Err(AllocError::IpNotInRange {
                ip: ip.to_string(),
                range: self.ranges.cidr(),
            });
        }
        let key = Self::ip_key(ip);
        if self.claim(&key, owner, check_only).await? {
            Ok(())
        } else {
            Err(AllocError::IpAllocated)
        }
    }

    /// Reserve a free cluster IP, starting at a random offset (`check_only`: pick one, reserve
    /// nothing).
    pub async fn allocate_ip(
        &self,
        owner: &Owner,
        check_only: bool,
    ) -> Result<Ipv4Addr, AllocError> {
        let used = self.used(IP_PREFIX).await?;
        let base = u32::from(self.ranges.network);
        let usable = self.ranges.size() - 2;
        let start = rand::thread_rng().gen_range(0..usable);
        for i in 0..usable {
            let ip = Ipv4Addr::from(base + 1 + (start + i) % usable);
            if used.contains(&ip.to_string()) {
                continue;
            }
            if check_only || self.reserve_key(&Self::ip_key(ip), owner).await? {
                return Ok(ip);
            }
        }
        Err(AllocError::Full)
    }

    pub async fn release_ip(&self, ip: Ipv4Addr, uid: &str) -> Result<(), AllocError> {
        self.release_key(&Self::ip_key(ip), uid).await
    }

    /// Reserve a requested node port (`check_only`: only report whether it could be).
    pub async fn reserve_port(
        &self,
        port: i64,
        owner: &Owner,
        check_only: bool,
    ) -> Result<(), AllocError> {
        if !self.ranges.contains_port(port) {
            return Err(AllocError::PortNotInRange {
                range: self.ranges.ports(),
            });
        }
        let key = Self::port_key(port as u16);
        if self.claim(&key, owner, check_only).await? {
            Ok(())
        } else {
            Err(AllocError::PortAllocated)
        }
    }

    /// Reserve a free node port (`check_only`: pick one, reserve nothing); `skip` are ports
    /// this request already holds.
    pub async fn allocate_port(
        &self,
        owner: &Owner,
        skip: &HashSet<u16>,
        check_only: bool,
    ) -> Result<u16, AllocError> {
        let used = self.used(PORT_PREFIX).await?;
        let (first, last) = self.ranges.node_ports;
        let n = u32::from(last - first) + 1;
        let start = rand::thread_rng().gen_range(0..n);
        for i in 0..n {
            let port = first + ((start + i) % n) as u16;
            if used.contains(&port.to_string()) || skip.contains(&port) {
                continue;
            }
            if check_only || self.reserve_key(&Self::port_key(port), owner).await? {
                return Ok(port);
            }
        }
        Err(AllocError::Full)
    }

    pub async fn release_port(&self, port: u16, uid: &str) -> Result<(), AllocError> {
        self.release_key(&Self::port_key(port), uid).await
    }

    /// Every cluster-IP reservation (unparsable entries are skipped).
    pub async fn list_ips(&self) -> Result<Vec<Reservation<Ipv4Addr>>, AllocError> {
        self.list(IP_PREFIX).await
    }

    /// Every node-port reservation.
    pub async fn list_ports(&self) -> Result<Vec<Reservation<u16>>, AllocError> {
        self.list(PORT_PREFIX).await
    }

    async fn list<T: std::str::FromStr>(
        &self,
        prefix: &str,
    ) -> Result<Vec<Reservation<T>>, AllocError> {
        Ok(self
            .store
            .list(prefix)
            .await?
            .items
            .into_iter()
            .filter_map(|kv| {
                Some(Reservation {
                    value: kv.key[prefix.len()..].parse().ok()?,
                    owner: serde_json::from_slice(&kv.value).ok()?,
                    mod_revision: kv.mod_revision,
                })
            })
            .collect())
    }

    /// Reserve for `owner` (repair of a Service whose reservation is missing). True only when
    /// this call created the reservation (false: someone, maybe `owner`, holds it already).
    pub async fn repair_ip(&self, ip: Ipv4Addr, owner: &Owner) -> Result<bool, AllocError> {
        self.create_new(&Self::ip_key(ip), owner).await
    }

    pub async fn repair_port(&self, port: u16, owner: &Owner) -> Result<bool, AllocError> {
        self.create_new(&Self::port_key(port), owner).await
    }

    async fn create_new(&self, key: &str, owner: &Owner) -> Result<bool, AllocError> {
        let value = serde_json::to_vec(owner)
            .map_err(|e| StoreError::Backend(format!("encoding reservation: {e}")))?;
        match self.store.create(key, &value).await {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove a leaked reservation, unless it changed since it was listed.
    pub async fn free_leaked_ip(&self, r: &Reservation<Ipv4Addr>) -> Result<(), AllocError> {
        self.free(&Self::ip_key(r.value), r.mod_revision).await
    }

    pub async fn free_leaked_port(&self, r: &Reservation<u16>) -> Result<(), AllocError> {
        self.free(&Self::port_key(r.value), r.mod_revision).await
    }

    async fn free(&self, key: &str, rev: i64) -> Result<(), AllocError> {
        match self.store.delete(key, Some(rev)).await {
            Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bounds() {
        let r = ServiceRanges::default();
        assert_eq!(r.cidr(), "10.43.0.0/16");
        assert_eq!(r.ports(), "30000-32767");
        assert_eq!(r.first_ip(), Ipv4Addr::new(10, 43, 0, 1));
        assert!(!r.contains_ip(Ipv4Addr::new(10, 43, 0, 0)));
        assert!(!r.contains_ip(Ipv4Addr::new(10, 43, 255, 255)));
        assert!(r.contains_ip(Ipv4Addr::new(10, 43, 255, 254)));
        assert!(!r.contains_ip(Ipv4Addr::new(10, 44, 0, 1)));
        assert!(r.contains_port(30000) && r.contains_port(32767));
        assert!(!r.contains_port(29999) && !r.contains_port(32768));
        let s = ServiceRanges::parse("192.168.7.9/24", "100-200").unwrap();
        assert_eq!(s.cidr(), "192.168.7.0/24");
        assert_eq!(
            ServiceRanges::parse("10.0.0.0", "1-2"),
            Err(RangeError::Cidr("10.0.0.0".into()))
        );
        assert!(ServiceRanges::parse("10.0.0.0/31", "1-2").is_err());
        assert_eq!(
            ServiceRanges::parse("10.0.0.0/24", "5-1"),
            Err(RangeError::Ports("5-1".into()))
        );
    }
}
