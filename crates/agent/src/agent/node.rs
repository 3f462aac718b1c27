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

pub(super) fn node_status(cfg: &AgentConfig, kubelet_port: u16, ready: bool) -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_ki = mem_total_bytes() / 1024;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let capacity = json!({"cpu": cpus.to_string(), "memory": format!("{mem_ki}Ki"), "pods": "110"});
    let now = now_rfc3339();
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "message": if ready { "daas agent is posting ready status" } else { "container runtime is not ready" },
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }],
        "addresses": [
            {"type": "InternalIP", "address": cfg.node_ip.to_string()},
            {"type": "Hostname", "address": cfg.node_id},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": kernel,
            "osImage": "K3s-DaaS staker host",
            "containerRuntimeVersion": "containerd://1.6",
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
            let node: Node = serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": meta,
                "spec": {"podCIDR": cfg.pod_cidr, "podCIDRs": [cfg.pod_cidr]}}),
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
        &Patch::Merge(json!({"status": node_status(cfg, port, true)})),
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
