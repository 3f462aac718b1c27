//! The Node object (capacity, conditions, addresses, the serving-certificate annotation) and the
//! node Lease the heartbeat renews.

use std::time::Duration;

use daas_protocol::nodeproxy::KUBELET_CERT_ANNOTATION;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::{now_rfc3339, AgentError};
use crate::config::AgentConfig;
use crate::runtime::{NodeImage, Runtime};

pub(crate) fn mem_total_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The kubelet's default hard eviction threshold `memory.available<100Mi`.
pub const EVICTION_MEMORY_AVAILABLE: u64 = 100 * 1024 * 1024;
/// `nodefs.available<10%` (and `imagefs.available<15%`, the same filesystem here).
pub const EVICTION_NODEFS_PERCENT: u64 = 10;
/// PIDs available below this share of `pid_max` is PID pressure.
pub const EVICTION_PID_PERCENT: u64 = 10;

/// What the host reports, read at each status update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    pub cpus: u64,
    pub mem_total: u64,
    pub mem_available: u64,
    /// Filesystem of the agent's data dir (the kubelet's nodefs).
    pub fs_capacity: u64,
    pub fs_available: u64,
    pub pid_max: u64,
    pub pids_in_use: u64,
    pub images: Vec<NodeImage>,
    /// `containerd://<version>` as CRI reports it; empty when the runtime did not answer.
    pub runtime_version: String,
}

fn statvfs(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let f = st.f_frsize as u64;
    Some((st.f_blocks as u64 * f, st.f_bavail as u64 * f))
}

impl HostFacts {
    pub async fn gather(cfg: &AgentConfig, runtime: &dyn Runtime) -> HostFacts {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem = crate::stats::node_memory(&meminfo);
        let (fs_capacity, fs_available) = statvfs(&cfg.data_dir).unwrap_or((0, 0));
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        // /proc/loadavg: "0.00 0.01 0.05 1/123 4567": 123 scheduling entities (threads) exist.
        let pids_in_use = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok())
            .unwrap_or(0);
        let images = match runtime.list_images().await {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(error = %e, "listing images for the node status failed");
                Vec::new()
            }
        };
        let runtime_version = runtime.runtime_version().await.unwrap_or_default();
        HostFacts {
            runtime_version,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(1),
            mem_total: mem_total_bytes(),
            mem_available: mem.and_then(|m| m.available_bytes).unwrap_or(0),
            fs_capacity,
            fs_available,
            pid_max,
            pids_in_use,
            images,
        }
    }
}

/// (type, under pressure, reason, message) of MemoryPressure, DiskPressure and PIDPressure, with
/// the kubelet's default hard eviction thresholds.
pub fn pressure_conditions(h: &HostFacts) -> [(&'static str, bool, &'static str, String); 3] {
    let mem = h.mem_total > 0 && h.mem_available < EVICTION_MEMORY_AVAILABLE;
    let disk = h.fs_capacity > 0 && h.fs_available * 100 < h.fs_capacity * EVICTION_NODEFS_PERCENT;
    let pid_avail = h.pid_max.saturating_sub(h.pids_in_use);
    let pid = h.pid_max > 0 && pid_avail * 100 < h.pid_max * EVICTION_PID_PERCENT;
    [
        if mem {
            (
                "MemoryPressure",
                true,
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available".to_string(),
            )
        } else {
            (
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available".to_string(),
            )
        },
        if disk {
            (
                "DiskPressure",
                true,
                "KubeletHasDiskPressure",
                "kubelet has disk pressure".to_string(),
            )
        } else {
            (
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure".to_string(),
            )
        },
        if pid {
            (
                "PIDPressure",
                true,
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available".to_string(),
            )
        } else {
            (
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available".to_string(),
            )
        },
    ]
}

/// Capacity and allocatable (capacity minus the system reservation and the hard eviction thresholds).
/// `reserved` is the host's (millicores, bytes) (`system_reserved_*` in the staker config).
pub fn capacity_allocatable(reserved: (u64, u64), h: &HostFacts) -> (Value, Value) {
    let capacity = json!({
        "cpu": h.cpus.to_string(),
        "memory": format!("{}Ki", h.mem_total / 1024),
        "ephemeral-storage": format!("{}Ki", h.fs_capacity / 1024),
        "pods": "110",
    });
    let cpu_m = (h.cpus * 1000).saturating_sub(reserved.0);
    let mem = h
        .mem_total
        .saturating_sub(reserved.1)
        .saturating_sub(EVICTION_MEMORY_AVAILABLE);
    let eph = h.fs_capacity - h.fs_capacity * EVICTION_NODEFS_PERCENT / 100;
    let allocatable = json!({
        "cpu": if cpu_m.is_multiple_of(1000) { (cpu_m / 1000).to_string() } else { format!("{cpu_m}m") },
        "memory": format!("{}Ki", mem / 1024),
        "ephemeral-storage": eph.to_string(),
        "pods": "110",
    });
    (capacity, allocatable)
}

/// Remembers when each node condition last changed status (for `lastTransitionTime`).
#[derive(Debug, Default)]
pub struct ConditionTimes(std::collections::BTreeMap<String, (bool, String)>);

impl ConditionTimes {
    fn since(&mut self, ty: &str, status: bool, now: &str) -> String {
        match self.0.get(ty) {
            Some((s, t)) if *s == status => t.clone(),
            _ => {
                self.0.insert(ty.to_string(), (status, now.to_string()));
                now.to_string()
            }
        }
    }
}

/// The status patch of a node going down (graceful node shutdown): its Ready condition turns
/// False, as the kubelet reports it, with the other conditions left as they are (a strategic
/// merge by condition type).
pub(super) fn shutting_down_status() -> Value {
    let now = now_rfc3339();
    json!({"status": {"conditions": [{
        "type": "Ready", "status": "False", "reason": "KubeletNotReady",
        "message": "node is shutting down",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }]}})
}

pub(super) fn node_status(
    cfg: &AgentConfig,
    kubelet_port: u16,
    ready: bool,
    host: &HostFacts,
    times: &mut ConditionTimes,
) -> Value {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let (capacity, allocatable) = capacity_allocatable(
        (
            cfg.system_reserved_cpu_millis,
            cfg.system_reserved_memory_bytes,
        ),
        host,
    );
    let now = now_rfc3339();
    let mut conditions: Vec<Value> = pressure_conditions(host)
        .into_iter()
        .map(|(ty, on, reason, message)| {
            json!({
                "type": ty,
                "status": if on { "True" } else { "False" },
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": times.since(ty, on, &now),
            })
        })
        .collect();
    conditions.push(json!({
        "type": "Ready",
        "status": if ready { "True" } else { "False" },
        "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
        "message": if ready { "daas agent is posting ready status" } else { "container runtime is not ready" },
        "lastHeartbeatTime": now,
        "lastTransitionTime": times.since("Ready", ready, &now),
    }));
    // Largest first, at most 50, as the kubelet reports them.
    let mut images = host.images.clone();
    images.sort_by_key(|i| std::cmp::Reverse(i.size_bytes));
    let images: Vec<Value> = images
        .iter()
        .filter(|i| !i.names.is_empty())
        .take(50)
        .map(|i| json!({"names": i.names, "sizeBytes": i.size_bytes}))
        .collect();
    let os_image = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "K3s-DaaS staker host".to_string());
    let machine_id = std::fs::read_to_string("/etc/machine-id")
        .unwrap_or_default()
        .trim()
        .to_string();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .trim()
        .to_string();
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": cfg.node_ip.to_string()},
            {"type": "Hostname", "address": cfg.node_id},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "images": images,
        "nodeInfo": {
            "machineID": machine_id, "systemUUID": "", "bootID": boot_id,
            "kernelVersion": kernel,
            "osImage": os_image,
            "containerRuntimeVersion": host.runtime_version,
            "kubeletVersion": format!("v1.33.0-daas.{}", env!("CARGO_PKG_VERSION")),
            "kubeProxyVersion": "",
            "operatingSystem": std::env::consts::OS,
            "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        },
    })
}

pub(super) async fn register_node(
    api: &Api<Node>,
    cfg: &AgentConfig,
    port: u16,
    cert_sha: &[u8; 32],
    host: &HostFacts,
    times: &mut ConditionTimes,
) -> Result<(), AgentError> {
    let meta = json!({
        "name": cfg.node_id,
        "labels": {
            "kubernetes.io/hostname": cfg.node_id,
            "kubernetes.io/os": std::env::consts::OS,
        },
        "annotations": {
            KUBELET_CERT_ANNOTATION: hex::encode(cert_sha),
        },
    });
    match api.get_opt(&cfg.node_id).await? {
        None => {
            // Without a configured pod CIDR the master's nodeipam controller assigns one.
            let spec = match &cfg.pod_cidr {
                Some(c) => json!({"podCIDR": c, "podCIDRs": [c]}),
                None => json!({}),
            };
            let node: Node = serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec}),
            )
            .map_err(|e| AgentError::Other(e.to_string()))?;
            api.create(&PostParams::default(), &node).await?;
        }
        Some(_) => {
            api.patch(
                &cfg.node_id,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": meta, "spec": {"unschedulable": null}})),
            )
            .await?;
        }
    }
    api.patch_status(
        &cfg.node_id,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": node_status(cfg, port, true, host, times)})),
    )
    .await?;
    Ok(())
}

pub(super) async fn renew_lease(
    api: &Api<Lease>,
    node: &str,
    duration: Duration,
) -> Result<(), AgentError> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let secs = (duration.as_secs() * 4).max(10);
    match api.get_opt(node).await? {
        Some(_) => {
            api.patch(node, &PatchParams::default(), &Patch::Merge(json!({"spec": {"holderIdentity": node, "renewTime": now, "leaseDurationSeconds": secs}})))
                .await?;
        }
        None => {
            let lease: Lease = serde_json::from_value(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": secs, "acquireTime": now, "renewTime": now}}))
            .map_err(|e| AgentError::Other(e.to_string()))?;
            api.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts {
            cpus: 2,
            mem_total: 4 << 30,
            mem_available: 2 << 30,
            fs_capacity: 100 << 30,
            fs_available: 50 << 30,
            pid_max: 1000,
            pids_in_use: 100,
            images: Vec::new(),
            runtime_version: String::new(),
        }
    }

    #[test]
    fn pressure_follows_eviction_thresholds() {
        let ok = pressure_conditions(&facts());
        assert!(ok.iter().all(|c| !c.1), "{ok:?}");
        assert_eq!(ok[0].2, "KubeletHasSufficientMemory");
        let mut h = facts();
        h.mem_available = 99 << 20;
        h.fs_available = 9 << 30;
        h.pids_in_use = 950;
        let bad = pressure_conditions(&h);
        assert!(bad.iter().all(|c| c.1), "{bad:?}");
        assert_eq!(
            [bad[0].2, bad[1].2, bad[2].2],
            [
                "KubeletHasInsufficientMemory",
                "KubeletHasDiskPressure",
                "KubeletHasInsufficientPID"
            ]
        );
        // Exactly at the thresholds is no pressure.
        h.mem_available = 100 << 20;
        h.fs_available = 10 << 30;
        h.pids_in_use = 900;
        assert!(pressure_conditions(&h).iter().all(|c| !c.1));
    }

    #[test]
    fn allocatable_is_capacity_minus_reservation_and_eviction() {
        let (cap, alloc) = capacity_allocatable((0, 0), &facts());
        assert_eq!(cap["cpu"], "2");
        assert_eq!(cap["memory"], "4194304Ki");
        assert_eq!(cap["ephemeral-storage"], "104857600Ki");
        assert_eq!(cap["pods"], "110");
        assert_eq!(alloc["cpu"], "2");
        // 4Gi - memory.available<100Mi.
        assert_eq!(
            alloc["memory"],
            format!("{}Ki", 4 * 1024 * 1024 - 100 * 1024)
        );
        // 90% of the filesystem (nodefs.available<10%).
        assert_eq!(alloc["ephemeral-storage"], (90u64 << 30).to_string());
        let (_, alloc) = capacity_allocatable((250, 512 << 20), &facts());
        assert_eq!(alloc["cpu"], "1750m");
        assert_eq!(
            alloc["memory"],
            format!("{}Ki", 4 * 1024 * 1024 - 612 * 1024)
        );
        // A reservation larger than the host leaves nothing, never a negative quantity.
        let (_, alloc) = capacity_allocatable((5000, 8 << 30), &facts());
        assert_eq!(
            (alloc["cpu"].as_str(), alloc["memory"].as_str()),
            (Some("0"), Some("0Ki"))
        );
    }

    #[test]
    fn condition_transition_times_are_kept() {
        let mut t = ConditionTimes::default();
        assert_eq!(t.since("Ready", true, "t1"), "t1");
        assert_eq!(t.since("Ready", true, "t2"), "t1");
        assert_eq!(t.since("Ready", false, "t3"), "t3");
        assert_eq!(t.since("Ready", false, "t4"), "t3");
    }
}
