//! The Service allocation repair loop and the `kubernetes` Service reconciler.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use daas_apiserver::registry::ipalloc::{Allocators, Owner, ServiceRanges};
use daas_controllers::kubernetesservice::KubernetesServiceController;
use daas_controllers::servicerepair::ServiceRepair;
use daas_controllers::Controller;
use serde_json::{json, Value};

const SVCS: &str = "/api/v1/namespaces/default/services";

fn alloc(env: &common::Env) -> Allocators {
    Allocators::new(env.store.clone(), ServiceRanges::default())
}

async fn warnings(env: &common::Env, reason: &str) -> Vec<String> {
    env.c
        .list(&format!(
            "/api/v1/namespaces/default/events?fieldSelector=reason%3D{reason}"
        ))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e["type"] == "Warning")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn repair_restores_missing_reservations_and_frees_leaks() {
    let env = common::api().await;
    let a = alloc(&env);
    let svc = env
        .c
        .create(
            SVCS,
            &json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
                "ports": [{"port": 80, "nodePort": 30080}]}}),
        )
        .await
        .unwrap();
    let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    let uid = svc["metadata"]["uid"].as_str().unwrap().to_string();
    // Lose the Service's reservations (as a failed write or old data would).
    for r in a.list_ips().await.unwrap() {
        if r.value == ip {
            a.free_leaked_ip(&r).await.unwrap();
        }
    }
    for r in a.list_ports().await.unwrap() {
        a.free_leaked_port(&r).await.unwrap();
    }
    // Leaks: one old enough to free, one too fresh (a create in flight).
    let mut old = Owner::new("default", "gone", "uid-gone");
    old.created_at = Some(chrono::Utc::now() - chrono::Duration::hours(2));
    assert!(a
        .repair_ip(Ipv4Addr::new(10, 43, 9, 9), &old)
        .await
        .unwrap());
    assert!(a.repair_port(31111, &old).await.unwrap());
    let fresh = Owner::new("default", "coming", "uid-coming");
    assert!(a
        .repair_ip(Ipv4Addr::new(10, 43, 9, 10), &fresh)
        .await
        .unwrap());

    let mut repair = ServiceRepair::new(env.c.clone(), a.clone(), Duration::from_secs(600));
    repair.reconcile().await.unwrap();

    let ips = a.list_ips().await.unwrap();
    let mine = ips
        .iter()
        .find(|r| r.value == ip)
        .expect("IP reserved again");
    assert_eq!(mine.owner.uid, uid);
    assert!(!ips.iter().any(|r| r.value == Ipv4Addr::new(10, 43, 9, 9)));
    assert!(ips.iter().any(|r| r.value == Ipv4Addr::new(10, 43, 9, 10)));
    let ports: Vec<u16> = a
        .list_ports()
        .await
        .unwrap()
        .iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(ports, vec![30080]);
    assert_eq!(
        warnings(&env, "ClusterIPNotAllocated").await,
        vec![format!(
            "Cluster IP [IPv4]:{ip} is not allocated; repairing"
        )]
    );
    assert_eq!(
        warnings(&env, "PortNotAllocated").await,
        vec!["Port 30080 is not allocated; repairing".to_string()]
    );
    // The repaired reservation really holds: nobody else gets the IP.
    let (code, msg) = match env
        .c
        .create(
            SVCS,
            &json!({"metadata": {"name": "thief"}, "spec": {"clusterIP": ip.to_string(),
                "ports": [{"port": 80}]}}),
        )
        .await
    {
        Ok(v) => (200, v.to_string()),
        Err(e) => (e.code, e.message),
    };
    assert_eq!(code, 422, "{msg}");
    assert!(msg.ends_with("provided IP is already allocated"), "{msg}");
    // A second pass changes nothing and reports nothing new.
    repair.reconcile().await.unwrap();
    assert_eq!(warnings(&env, "ClusterIPNotAllocated").await.len(), 1);
}

#[tokio::test]
async fn repair_reports_shared_and_out_of_range_values() {
    let env = common::api().await;
    let a = alloc(&env);
    let web = env
        .c
        .create(
            SVCS,
            &json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
        )
        .await
        .unwrap();
    let ip = web["spec"]["clusterIP"].as_str().unwrap().to_string();
    // Services written straight to the store (restored from elsewhere): one with web's IP,
    // one outside the range.
    for (name, cip) in [("copy", ip.as_str()), ("far", "10.99.0.1")] {
        let obj = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"type": "ClusterIP", "clusterIP": cip, "clusterIPs": [cip],
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
        env.store
            .create(
                &format!("/registry/core/services/default/{name}"),
                &serde_json::to_vec(&obj).unwrap(),
            )
            .await
            .unwrap();
    }
    let mut repair = ServiceRepair::new(env.c.clone(), a.clone(), Duration::ZERO);
    repair.reconcile().await.unwrap();
    assert_eq!(
        warnings(&env, "ClusterIPAlreadyAllocated").await,
        vec![format!(
            "Cluster IP [IPv4]:{ip} was assigned to multiple services; please recreate service"
        )]
    );
    assert_eq!(
        warnings(&env, "ClusterIPOutOfRange").await,
        vec![
            "Cluster IP [IPv4]:10.99.0.1 is not within the configured Service CIDR 10.43.0.0/16; please recreate service"
                .to_string()
        ]
    );
    // web keeps its reservation.
    let held = a.list_ips().await.unwrap();
    let r = held.iter().find(|r| r.value.to_string() == ip).unwrap();
    assert_eq!(r.owner.uid, web["metadata"]["uid"].as_str().unwrap());
}

fn port_of(v: &Value) -> &Value {
    &v["ports"][0]["port"]
}

#[tokio::test]
async fn kubernetes_service_endpoints_and_slice_point_at_the_master() {
    let env = common::api().await;
    let addr: IpAddr = "192.0.2.10".parse().unwrap();
    let mut k = KubernetesServiceController::new(
        env.c.clone(),
        ServiceRanges::default().first_ip(),
        addr,
        7443,
    );
    k.reconcile().await.unwrap();
    let svc = env.c.get(&format!("{SVCS}/kubernetes")).await.unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(svc["spec"]["ports"][0]["name"], "https");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 7443);
    let check = |env: &common::Env| {
        let c = env.c.clone();
        async move {
            let ep = c
                .get("/api/v1/namespaces/default/endpoints/kubernetes")
                .await
                .unwrap();
            assert_eq!(ep["subsets"].as_array().unwrap().len(), 1);
            assert_eq!(ep["subsets"][0]["addresses"], json!([{"ip": "192.0.2.10"}]));
            assert_eq!(port_of(&ep["subsets"][0]), 7443);
            // As the conformance test finds it: by the service-name label.
            let slices = c
                .list("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes")
                .await
                .unwrap();
            assert_eq!(slices.len(), 1);
            assert_eq!(slices[0]["addressType"], "IPv4");
            assert_eq!(
                slices[0]["endpoints"][0]["addresses"],
                json!(["192.0.2.10"])
            );
            assert_eq!(port_of(&slices[0]), 7443);
        }
    };
    check(&env).await;
    // Edited and deleted objects come back.
    env.c
        .merge_patch(
            "/api/v1/namespaces/default/endpoints/kubernetes",
            &json!({"subsets": [{"addresses": [{"ip": "203.0.113.5"}], "ports": [{"name": "https", "port": 1}]}]}),
        )
        .await
        .unwrap();
    env.c
        .delete("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        .await
        .unwrap();
    env.c.delete(&format!("{SVCS}/kubernetes")).await.unwrap();
    // Its IP was released with it; the recreated Service gets it again.
    k.reconcile().await.unwrap();
    check(&env).await;
    let svc = env.c.get(&format!("{SVCS}/kubernetes")).await.unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
}

/// The cluster DNS Service: created at 10.43.0.10 without a selector, and repaired when its
/// ports, type, selector or labels are edited, its cluster IP changed or it is deleted.
#[tokio::test]
async fn kube_dns_service_is_kept_at_the_cluster_dns_ip() {
    use daas_controllers::kubedns::{default_cluster_dns, KubeDnsController};
    const DNS: &str = "/api/v1/namespaces/kube-system/services/kube-dns";
    let env = common::api().await;
    let ip = default_cluster_dns(ServiceRanges::default().first_ip());
    let mut k = KubeDnsController::new(env.c.clone(), ip);
    k.reconcile().await.unwrap();
    let check = |svc: &Value| {
        assert_eq!(svc["spec"]["clusterIP"], "10.43.0.10", "{svc}");
        assert_eq!(svc["spec"]["type"], "ClusterIP", "{svc}");
        assert!(
            svc["spec"]["selector"]
                .as_object()
                .is_none_or(|s| s.is_empty()),
            "{svc}"
        );
        assert_eq!(svc["metadata"]["labels"]["k8s-app"], "kube-dns", "{svc}");
        let ports: Vec<(String, String, i64)> = svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["protocol"].as_str().unwrap().to_string(),
                    p["port"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("dns".to_string(), "UDP".to_string(), 53),
                ("dns-tcp".to_string(), "TCP".to_string(), 53)
            ]
        );
    };
    check(&env.c.get(DNS).await.unwrap());
    // A second pass changes nothing.
    let rv = env.c.get(DNS).await.unwrap()["metadata"]["resourceVersion"].clone();
    k.reconcile().await.unwrap();
    assert_eq!(
        env.c.get(DNS).await.unwrap()["metadata"]["resourceVersion"],
        rv
    );
    // Edited: ports, selector, labels.
    env.c
        .merge_patch(
            DNS,
            &json!({"metadata": {"labels": {"k8s-app": "other"}},
                "spec": {"selector": {"app": "x"}, "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}}),
        )
        .await
        .unwrap();
    k.reconcile().await.unwrap();
    check(&env.c.get(DNS).await.unwrap());
    // Made a NodePort.
    env.c
        .merge_patch(DNS, &json!({"spec": {"type": "NodePort"}}))
        .await
        .unwrap();
    k.reconcile().await.unwrap();
    let svc = env.c.get(DNS).await.unwrap();
    check(&svc);
    assert!(svc["spec"]["ports"][0]["nodePort"].is_null(), "{svc}");
    // Deleted, and recreated by someone else at another IP.
    env.c.delete(DNS).await.unwrap();
    env.c
        .create(
            "/api/v1/namespaces/kube-system/services",
            &json!({"metadata": {"name": "kube-dns"}, "spec": {"clusterIP": "10.43.0.99",
                "ports": [{"port": 53, "protocol": "UDP"}]}}),
        )
        .await
        .unwrap();
    k.reconcile().await.unwrap();
    check(&env.c.get(DNS).await.unwrap());
    env.c.delete(DNS).await.unwrap();
    k.reconcile().await.unwrap();
    check(&env.c.get(DNS).await.unwrap());
}
