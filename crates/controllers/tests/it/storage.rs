//! Storage in-process: the PV binder, WaitForFirstConsumer scheduling with the local-path
//! provisioner, reclaiming, the protection finalizers, and who may touch volumes.

use std::time::{Duration, Instant};

use daas_apiserver::{LocalClient, User};
use daas_controllers::persistentvolume::{CLEANUP_FINALIZER, LOCAL_PATH_PREFIX, SELECTED_NODE};
use daas_controllers::{ControllerOptions, STAKED};
use serde_json::{json, Value};

use crate::common;

fn opts() -> ControllerOptions {
    ControllerOptions {
        resync: Duration::from_secs(1),
        event_interval: Duration::from_millis(300),
        ..Default::default()
    }
}

async fn add_node(c: &LocalClient, name: &str) {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name,
        "labels": {"kubernetes.io/hostname": name, STAKED: "true"}}});
    c.create("/api/v1/nodes", &node).await.unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    c.merge_patch(&format!("/api/v1/nodes/{name}/status"), &json!({"status": {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now, "lastTransitionTime": now}]}}))
        .await
        .unwrap();
}

async fn until<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match check().await {
            Ok(t) => return t,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn claim(name: &str, class: Option<&str>, size: &str) -> Value {
    let mut c = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}});
    if let Some(cl) = class {
        c["spec"]["storageClassName"] = json!(cl);
    }
    c
}

fn pod_using(name: &str, claim: &str, node_selector: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}});
    if let Some(n) = node_selector {
        p["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": n});
    }
    p
}

const PVCS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";
const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn local_path_waits_for_the_first_consumer_provisions_on_its_node_and_reclaims() {
    let node_user = |n: &str| {
        (
            n.to_string(),
            User {
                name: format!("system:node:{n}"),
                groups: vec!["system:nodes".into(), "system:authenticated".into()],
                ..Default::default()
            },
        )
    };
    let mut env = common::api_with_users(vec![node_user("n1"), node_user("n2")]).await;
    env.tasks = daas_controllers::spawn(env.c.clone(), opts());
    let c = &env.c;
    add_node(c, "n1").await;
    add_node(c, "n2").await;
    // The default class (local-path, WaitForFirstConsumer) is given to a claim without one.
    let pvc = c.create(PVCS, &claim("data", None, "1Gi")).await.unwrap();
    assert_eq!(pvc["spec"]["storageClassName"], "local-path");
    assert_eq!(pvc["status"]["phase"], "Pending");
    assert_eq!(
        pvc["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pvc = c.get(&format!("{PVCS}/data")).await.unwrap();
    assert_eq!(pvc["status"]["phase"], "Pending", "no consumer yet");
    assert!(c
        .list("/api/v1/persistentvolumes")
        .await
        .unwrap()
        .is_empty());

    c.create(PODS, &pod_using("writer", "data", Some("n2")))
        .await
        .unwrap();
    let pod = until("the pod bound after its claim", || async {
        let p = c
            .get(&format!("{PODS}/writer"))
            .await
            .map_err(|e| e.message)?;
        match p["spec"]["nodeName"].as_str() {
            Some(n) => Ok(p.clone()).map(|p| (n.to_string(), p)),
            None => Err("not bound".to_string()),
        }
    })
    .await;
    assert_eq!(pod.0, "n2");
    let pvc = c.get(&format!("{PVCS}/data")).await.unwrap();
    assert_eq!(pvc["metadata"]["annotations"][SELECTED_NODE], "n2");
    assert_eq!(pvc["status"]["phase"], "Bound");
    assert_eq!(pvc["status"]["capacity"]["storage"], "1Gi");
    let pv_name = pvc["spec"]["volumeName"].as_str().unwrap().to_string();
    let uid = pvc["metadata"]["uid"].as_str().unwrap();
    assert_eq!(pv_name, format!("pvc-{uid}"));
    let pv = c
        .get(&format!("/api/v1/persistentvolumes/{pv_name}"))
        .await
        .unwrap();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(
        pv["spec"]["local"]["path"],
        format!("{LOCAL_PATH_PREFIX}/{pv_name}")
    );
    assert_eq!(pv["spec"]["claimRef"]["uid"], uid);
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
            ["values"],
        json!(["n2"])
    );

    // A second pod using the claim goes only where the volume is, whatever it would prefer.
    c.create(PODS, &pod_using("reader", "data", None))
        .await
        .unwrap();
    until("the second pod on n2", || async {
        let p = c
            .get(&format!("{PODS}/reader"))
            .await
            .map_err(|e| e.message)?;
        match p["spec"]["nodeName"].as_str() {
            Some("n2") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mut pinned = pod_using("elsewhere", "data", Some("n1"));
    pinned["metadata"]["name"] = json!("elsewhere");
    c.create(PODS, &pinned).await.unwrap();
    until("a pod pinned to the other node unschedulable", || async {
        let p = c
            .get(&format!("{PODS}/elsewhere"))
            .await
            .map_err(|e| e.message)?;
        let msg = p["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if msg.contains("1 node(s) had volume node affinity conflict") {
            Ok(())
        } else {
            Err(msg)
        }
    })
    .await;

    // pvc-protection: the claim stays while pods use it.
    c.delete(&format!("{PVCS}/data")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pvc = c.get(&format!("{PVCS}/data")).await.unwrap();
    assert!(!pvc["metadata"]["deletionTimestamp"].is_null());
    for p in ["writer", "reader", "elsewhere"] {
        c.call_delete_with(&format!("{PODS}/{p}"), &json!({"gracePeriodSeconds": 0}))
            .await
            .unwrap();
    }
    until("the claim removed once unused", || async {
        match c.get_opt(&format!("{PVCS}/data")).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Reclaim Delete: the volume is Released and deleted, but stays until the node cleaned up.
    let pv_path = format!("/api/v1/persistentvolumes/{pv_name}");
    let pv = until("the volume released and being deleted", || async {
        let pv = c.get(&pv_path).await.map_err(|e| e.message)?;
        if pv["status"]["phase"] == "Released"
            && !pv["metadata"]["deletionTimestamp"].is_null()
            && pv["metadata"]["finalizers"] == json!([CLEANUP_FINALIZER])
        {
            Ok(pv)
        } else {
            Err(pv.to_string())
        }
    })
    .await;
    // Only the node's cleanup finalizer is left (pv-protection went with the binding).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c.get_opt(&pv_path).await.unwrap().is_some());
    // Only the node the volume is pinned to may clear the finalizer, and change nothing else.
    let n1 = LocalClient::new(env.app.clone(), "n1");
    let n2 = LocalClient::new(env.app.clone(), "n2");
    let mut done = pv.clone();
    done["metadata"]["finalizers"] = json!([]);
    assert_eq!(n1.update(&pv_path, &done).await.unwrap_err().code, 403);
    let mut sneaky = done.clone();
    sneaky["spec"]["persistentVolumeReclaimPolicy"] = json!("Retain");
    let e = n2.update(&pv_path, &sneaky).await.unwrap_err();
    assert_eq!(e.code, 403, "{}", e.message);
    assert_eq!(n2.get(&pv_path).await.unwrap()["metadata"]["name"], pv_name);
    n2.update(&pv_path, &done).await.unwrap();
    assert!(c.get_opt(&pv_path).await.unwrap().is_none());
}

#[tokio::test]
async fn static_volumes_bind_by_size_and_class_and_retain() {
    let env = common::with_controllers(opts()).await;
    let c = &env.c;
    let pv = |name: &str, size: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "manual", "hostPath": {"path": format!("/srv/{name}")}}})
    };
    let created = c
        .create("/api/v1/persistentvolumes", &pv("small", "1Gi"))
        .await
        .unwrap();
    assert_eq!(created["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(created["spec"]["volumeMode"], "Filesystem");
    assert_eq!(
        created["metadata"]["finalizers"],
        json!(["kubernetes.io/pv-protection"])
    );
    c.create("/api/v1/persistentvolumes", &pv("big", "10Gi"))
        .await
        .unwrap();
    until("volumes available", || async {
        let all = c
            .list("/api/v1/persistentvolumes")
            .await
            .map_err(|e| e.message)?;
        if all.iter().all(|p| p["status"]["phase"] == "Available") {
            Ok(())
        } else {
            Err(format!("{all:?}"))
        }
    })
    .await;
    c.create(PVCS, &claim("want5", Some("manual"), "5Gi"))
        .await
        .unwrap();
    c.create(PVCS, &claim("want50", Some("manual"), "50Gi"))
        .await
        .unwrap();
    until("the 5Gi claim bound to the 10Gi volume", || async {
        let p = c
            .get(&format!("{PVCS}/want5"))
            .await
            .map_err(|e| e.message)?;
        if p["status"]["phase"] == "Bound" && p["spec"]["volumeName"] == "big" {
            Ok(())
        } else {
            Err(p.to_string())
        }
    })
    .await;
    let big = c.get("/api/v1/persistentvolumes/big").await.unwrap();
    assert_eq!(big["status"]["phase"], "Bound");
    assert_eq!(big["spec"]["claimRef"]["name"], "want5");
    let p = c.get(&format!("{PVCS}/want50")).await.unwrap();
    assert_eq!(p["status"]["phase"], "Pending", "no volume is big enough");
    // A bound volume being deleted keeps pv-protection.
    c.delete("/api/v1/persistentvolumes/big").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c
        .get_opt("/api/v1/persistentvolumes/big")
        .await
        .unwrap()
        .is_some());
    // Retain: the claim's deletion releases the volume, which then goes (it was being deleted).
    c.delete(&format!("{PVCS}/want5")).await.unwrap();
    until(
        "the retained volume released and its deletion finished",
        || async {
            match c.get_opt("/api/v1/persistentvolumes/big").await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    // The small volume, never claimed, stays Available.
    let small = c.get("/api/v1/persistentvolumes/small").await.unwrap();
    assert_eq!(small["status"]["phase"], "Available");
}

#[tokio::test]
async fn tenants_and_nodes_reach_only_what_they_may() {
    let tenant = User {
        name: "daas:user:0xa".into(),
        groups: vec![
            "daas:users".into(),
            "daas:namespace:default".into(),
            "system:authenticated".into(),
        ],
        ..Default::default()
    };
    let node = User {
        name: "system:node:n1".into(),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        ..Default::default()
    };
    let env = common::api_with_users(vec![("tenant".into(), tenant), ("node".into(), node)]).await;
    let admin = &env.c;
    let t = LocalClient::new(env.app.clone(), "tenant");
    let n = LocalClient::new(env.app.clone(), "node");
    let hostpath = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "escape"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/"}}});
    let e = t
        .create("/api/v1/persistentvolumes", &hostpath)
        .await
        .unwrap_err();
    assert_eq!(e.code, 403, "{}", e.message);
    assert_eq!(
        t.list("/api/v1/persistentvolumes").await.unwrap_err().code,
        403
    );
    // StorageClasses are readable by tenants, not writable.
    let scs = t
        .list("/apis/storage.k8s.io/v1/storageclasses")
        .await
        .unwrap();
    assert_eq!(scs.len(), 1);
    let e = t
        .create(
            "/apis/storage.k8s.io/v1/storageclasses",
            &json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "mine"}, "provisioner": "x.io/y"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, 403);

    // A node reads a claim and its volume only through a pod bound to it that uses the claim.
    admin
        .create("/api/v1/persistentvolumes", &hostpath)
        .await
        .unwrap();
    admin
        .create(PVCS, &claim("data", Some(""), "1Gi"))
        .await
        .unwrap();
    let mut bind = admin.get(&format!("{PVCS}/data")).await.unwrap();
    bind["spec"]["volumeName"] = json!("escape");
    let bound = admin.update(&format!("{PVCS}/data"), &bind).await.unwrap();
    admin
        .merge_patch(
            "/api/v1/persistentvolumes/escape",
            &json!({"spec": {"claimRef": {"namespace": "default", "name": "data",
                "uid": bound["metadata"]["uid"]}}}),
        )
        .await
        .unwrap();
    let e = n.get(&format!("{PVCS}/data")).await.unwrap_err();
    assert_eq!(e.code, 403);
    assert!(
        e.message
            .contains("no relationship found between node 'n1' and this object"),
        "{}",
        e.message
    );
    assert_eq!(
        n.get("/api/v1/persistentvolumes/escape")
            .await
            .unwrap_err()
            .code,
        403
    );
    let mut pod = pod_using("user", "data", None);
    pod["spec"]["nodeName"] = json!("n1");
    admin.create(PODS, &pod).await.unwrap();
    n.get(&format!("{PVCS}/data")).await.unwrap();
    n.get("/api/v1/persistentvolumes/escape").await.unwrap();
    assert_eq!(
        n.list("/api/v1/persistentvolumes").await.unwrap_err().code,
        403,
        "a node may not list every volume"
    );
    assert_eq!(
        n.delete("/api/v1/persistentvolumes/escape")
            .await
            .unwrap_err()
            .code,
        403
    );
}
