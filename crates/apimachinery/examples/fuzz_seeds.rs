//! Writes the seed corpora of the `protobuf` and `patch` fuzz targets (fuzz/): real objects
//! encoded by the apiserver's own protobuf encoder, and real patches of each engine.
//!
//! `cargo run -p daas-apimachinery --example fuzz_seeds -- fuzz/corpus` (scripts/fuzz-seeds.sh).

use std::path::{Path, PathBuf};

use daas_apimachinery::protobuf;
use serde_json::{json, Value};

fn write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("seed-{name}")), data)
}

fn objects() -> Vec<(&'static str, Value)> {
    let meta = json!({"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
        "creationTimestamp": "2026-01-02T03:04:05Z", "labels": {"app": "web"},
        "annotations": {"a": "b"}, "finalizers": ["x/y"],
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
            "uid": "u-0", "controller": true}]});
    let pod_spec = json!({"containers": [{"name": "c", "image": "nginx:1",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "env": [{"name": "A", "value": "1"}],
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]});
    vec![
        (
            "pod",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": pod_spec, "status": {"phase": "Running", "podIP": "10.42.0.5"}}),
        ),
        (
            "deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}}),
        ),
        (
            "service",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.9", "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
        ),
        (
            "configmap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {"k": "v"}, "binaryData": {"b": "AAEC"}}),
        ),
        (
            "secret",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta,
            "type": "Opaque", "data": {"p": "cGFzcw=="}}),
        ),
        (
            "node",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "spec": {"podCIDR": "10.42.0.0/24", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "2", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True",
                    "lastHeartbeatTime": "2026-01-02T03:04:05Z"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}),
        ),
        (
            "job",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": {"backoffLimit": 3, "template": {"spec": pod_spec}}}),
        ),
        (
            "podlist",
            json!({"apiVersion": "v1", "kind": "PodList",
            "metadata": {"resourceVersion": "9"},
            "items": [{"metadata": {"name": "a"}, "spec": pod_spec}]}),
        ),
    ]
}

/// The `arbitrary` header of fuzz/fuzz_targets/patch.rs: the engine variant (a u32 scaled to
/// the 5 variants), the Apply flags, the kind index.
fn header(engine: u32, kind: u8) -> Vec<u8> {
    let raw = u32::try_from((u64::from(engine) << 32).div_ceil(5)).unwrap_or(u32::MAX);
    let mut v = raw.to_le_bytes().to_vec();
    if engine == 3 {
        v.extend([1, 0]);
    }
    v.push(kind);
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let objs = objects();
    for (name, obj) in &objs {
        match protobuf::encode_object(obj) {
            Ok(bytes) => write(&out.join("protobuf"), name, &bytes)?,
            Err(e) => eprintln!("{name}: no protobuf encoding: {e}"),
        }
    }
    let pod = &objs[0].1;
    let deploy = &objs[1].1;
    let patches: [(&str, u32, u8, &Value, Value); 6] = [
        (
            "json",
            0,
            0,
            pod,
            json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "x"},
            {"op": "add", "path": "/metadata/labels/b", "value": "c"},
            {"op": "test", "path": "/metadata/name", "value": "web"},
            {"op": "move", "from": "/metadata/annotations/a", "path": "/metadata/annotations/z"},
            {"op": "remove", "path": "/spec/tolerations/0"}]),
        ),
        (
            "merge",
            1,
            0,
            pod,
            json!({"metadata": {"labels": {"app": null, "n": "1"}},
            "spec": {"containers": [{"name": "d"}]}}),
        ),
        (
            "strategic-pod",
            2,
            0,
            pod,
            json!({"spec": {"containers": [{"name": "c", "image": "y"},
            {"name": "side", "image": "z"}], "$setElementOrder/containers": [{"name": "side"}, {"name": "c"}]},
            "metadata": {"finalizers": ["a/b"], "$deleteFromPrimitiveList/finalizers": ["x/y"]}}),
        ),
        (
            "strategic-deploy",
            2,
            1,
            deploy,
            json!({"spec": {"template": {"spec": {"containers":
            [{"name": "c", "$patch": "delete"}]}}, "replicas": 3}}),
        ),
        (
            "apply",
            3,
            1,
            deploy,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 5}}),
        ),
        ("pointer", 4, 0, pod, json!("/spec/containers/0/~1a~0b")),
    ];
    for (name, engine, kind, doc, patch) in patches {
        let mut v = header(engine, kind);
        v.extend_from_slice(doc.to_string().as_bytes());
        v.push(0);
        match patch {
            Value::String(s) => v.extend_from_slice(s.as_bytes()),
            p => v.extend_from_slice(p.to_string().as_bytes()),
        }
        write(&out.join("patch"), name, &v)?;
    }
    Ok(())
}
