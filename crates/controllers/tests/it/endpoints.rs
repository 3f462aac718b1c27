//! The Endpoints, EndpointSlice and mirroring controllers and ServiceLB against the real API
//! server, woken by watches only (the resync is a minute, longer than any test), and who may
//! write Endpoints and EndpointSlices.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use daas_apiserver::rbac::user_namespace_binding;
use daas_apiserver::{LocalClient, User};
use daas_controllers::endpoints::{EndpointsController, TRIGGER_TIME};
use daas_controllers::endpointslice::EndpointSliceController;
use daas_controllers::endpointslicemirroring::EndpointSliceMirroringController;
use daas_controllers::servicelb::ServiceLbController;
use daas_controllers::{spawn_controller, ControllerOptions, STAKED};
use serde_json::{json, Value};

const NS: &str = "/api/v1/namespaces/default";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

fn opts() -> ControllerOptions {
    ControllerOptions {
        resync: Duration::from_secs(60),
        ..Default::default()
    }
}

/// The three endpoint controllers on `env`.
fn start_endpoints(env: &mut common::Env) {
    let o = opts();
    let c = env.c.clone();
    env.tasks.extend([
        spawn_controller(c.clone(), EndpointsController::new(c.clone()), &o),
        spawn_controller(c.clone(), EndpointSliceController::new(c.clone()), &o),
        spawn_controller(
            c.clone(),
            EndpointSliceMirroringController::new(c.clone()),
            &o,
        ),
    ]);
}

async fn until<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A pod on node n1 with `labels`, container ports `ports`, and (as the kubelet reports it)
/// `ip` and the Ready condition.
async fn pod(c: &LocalClient, name: &str, labels: Value, ports: Value, ip: &str, ready: bool) {
    pod_with(c, name, labels, ports, ip, ready, json!({})).await
}

async fn pod_with(
    c: &LocalClient,
    name: &str,
    labels: Value,
    ports: Value,
    ip: &str,
    ready: bool,
    extra_spec: Value,
) {
    let mut spec = json!({"nodeName": "n1",
        "containers": [{"name": "c", "image": "nginx", "ports": ports}]});
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    c.create(
        &format!("{NS}/pods"),
        &json!({"metadata": {"name": name, "labels": labels}, "spec": spec}),
    )
    .await
    .unwrap();
    set_ready(c, name, ip, ready).await;
}

async fn set_ready(c: &LocalClient, name: &str, ip: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    c.merge_patch(
        &format!("{NS}/pods/{name}/status"),
        &json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": status,
                "lastTransitionTime": chrono::Utc::now().to_rfc3339()}]}}),
    )
    .await
    .unwrap();
}

/// Managed slices of Service `svc`.
async fn slices_of(c: &LocalClient, svc: &str, manager: &str) -> Vec<Value> {
    c.list(&format!(
        "{SLICES}?labelSelector=kubernetes.io/service-name%3D{svc},endpointslice.kubernetes.io/managed-by%3D{manager}"
    ))
    .await
    .unwrap()
}

fn ips(addrs: &Value) -> Vec<String> {
    addrs
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["ip"].as_str().unwrap().to_string())
        .collect()
}

const MANAGER: &str = "endpointslice-controller.k8s.io";
const MIRROR: &str = "endpointslicemirroring-controller.k8s.io";

#[tokio::test]
async fn named_ports_resolve_per_pod_readiness_splits_addresses_and_terminating_pods_go() {
    let mut env = common::api().await;
    start_endpoints(&mut env);
    let c = env.c.clone();
    c.create(
        &format!("{NS}/services"),
        &json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "metrics", "port": 9100, "targetPort": 9100}]}}),
    )
    .await
    .unwrap();
    let web = json!({"app": "web"});
    pod(
        &c,
        "a",
        web.clone(),
        json!([{"name": "http", "containerPort": 8080}]),
        "10.42.0.1",
        true,
    )
    .await;
    pod(
        &c,
        "b",
        web.clone(),
        json!([{"name": "http", "containerPort": 9090}]),
        "10.42.0.2",
        false,
    )
    .await;
    // Serves the named port only over UDP: only the numeric one resolves.
    pod(
        &c,
        "u",
        web.clone(),
        json!([{"name": "http", "containerPort": 53, "protocol": "UDP"}]),
        "10.42.0.3",
        true,
    )
    .await;
    // Not selected.
    pod(
        &c,
        "other",
        json!({"app": "db"}),
        json!([]),
        "10.42.0.9",
        true,
    )
    .await;

    let ep = until("three subsets", || async {
        let ep = c.get_opt(&format!("{NS}/endpoints/web")).await.unwrap()?;
        (ep["subsets"].as_array()?.len() == 3).then_some(ep)
    })
    .await;
    assert_eq!(ep["metadata"]["labels"]["tier"], "front");
    assert!(ep["metadata"]["annotations"][TRIGGER_TIME].is_string());
    let by_ports = |ports: Value| {
        ep["subsets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["ports"] == ports)
            .cloned()
            .unwrap_or_else(|| panic!("no subset with {ports}: {ep}"))
    };
    let s8080 = by_ports(json!([
        {"name": "http", "port": 8080, "protocol": "TCP"},
        {"name": "metrics", "port": 9100, "protocol": "TCP"}]));
    assert_eq!(ips(&s8080["addresses"]), ["10.42.0.1"]);
    assert!(s8080["notReadyAddresses"].is_null());
    let a = &s8080["addresses"][0];
    assert_eq!(a["nodeName"], "n1");
    assert_eq!(a["targetRef"]["kind"], "Pod");
    assert_eq!(a["targetRef"]["name"], "a");
    assert!(a["hostname"].is_null());
    let s9090 = by_ports(json!([
        {"name": "http", "port": 9090, "protocol": "TCP"},
        {"name": "metrics", "port": 9100, "protocol": "TCP"}]));
    assert_eq!(ips(&s9090["notReadyAddresses"]), ["10.42.0.2"]);
    assert!(s9090["addresses"].is_null());
    let s_udp = by_ports(json!([{"name": "metrics", "port": 9100, "protocol": "TCP"}]));
    assert_eq!(ips(&s_udp["addresses"]), ["10.42.0.3"]);

    // The slices: one per port set, with conditions, owned by the Service. (Their controller
    // runs on its own: wait for it too.)
    let slices = until("three slices", || async {
        let s = slices_of(&c, "web", MANAGER).await;
        (s.len() == 3).then_some(s)
    })
    .await;
    for s in &slices {
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Service");
        assert_eq!(s["metadata"]["ownerReferences"][0]["name"], "web");
        assert_eq!(s["metadata"]["labels"]["tier"], "front");
        assert!(s["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        assert_eq!(s["endpoints"].as_array().unwrap().len(), 1);
    }
    let b_slice = slices
        .iter()
        .find(|s| s["endpoints"][0]["targetRef"]["name"] == "b")
        .unwrap();
    assert_eq!(b_slice["ports"][0]["port"], 9090);
    assert_eq!(
        b_slice["endpoints"][0]["conditions"],
        json!({"ready": false, "serving": false, "terminating": false})
    );
    assert!(b_slice["endpoints"][0]["hints"].is_null());

    // Pod b turns Ready: the watch, not the minute-long resync, moves it.
    set_ready(&c, "b", "10.42.0.2", true).await;
    until("b ready", || async {
        let ep = c.get(&format!("{NS}/endpoints/web")).await.unwrap();
        let s = ep["subsets"]
            .as_array()?
            .iter()
            .find(|s| s["ports"][0]["port"] == 9090)?
            .clone();
        (ips(&s["addresses"]) == ["10.42.0.2"] && s["notReadyAddresses"].is_null()).then_some(())
    })
    .await;

    // Pod a is being deleted (the kubelet has not stopped it yet): gone from the Endpoints, kept
    // in its slice as terminating and not ready.
    c.delete(&format!("{NS}/pods/a")).await.unwrap();
    until("a dropped", || async {
        let ep = c.get(&format!("{NS}/endpoints/web")).await.unwrap();
        let all: Vec<String> = ep["subsets"]
            .as_array()?
            .iter()
            .flat_map(|s| ips(&s["addresses"]))
            .collect();
        (!all.contains(&"10.42.0.1".to_string())).then_some(())
    })
    .await;
    let a_ep = until("a terminating in its slice", || async {
        slices_of(&c, "web", MANAGER)
            .await
            .iter()
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| e["targetRef"]["name"] == "a" && e["conditions"]["terminating"] == true)
    })
    .await;
    assert_eq!(
        a_ep["conditions"],
        json!({"ready": false, "serving": true, "terminating": true})
    );

    // The Service goes: its Endpoints and slices too.
    c.delete(&format!("{NS}/services/web")).await.unwrap();
    until("endpoints and slices deleted", || async {
        let ep = c.get_opt(&format!("{NS}/endpoints/web")).await.unwrap();
        (ep.is_none() && slices_of(&c, "web", MANAGER).await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn headless_hostnames_and_published_not_ready_addresses() {
    let mut env = common::api().await;
    start_endpoints(&mut env);
    let c = env.c.clone();
    c.create(
        &format!("{NS}/services"),
        &json!({"metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": true,
                "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
    )
    .await
    .unwrap();
    let db = json!({"app": "db"});
    pod_with(
        &c,
        "db-0",
        db.clone(),
        json!([]),
        "10.42.0.10",
        false,
        json!({"hostname": "db-0", "subdomain": "db"}),
    )
    .await;
    // A hostname under another subdomain is not published for this Service.
    pod_with(
        &c,
        "db-1",
        db.clone(),
        json!([]),
        "10.42.0.11",
        true,
        json!({"hostname": "db-1", "subdomain": "other"}),
    )
    .await;
    let ep = until("both published", || async {
        let ep = c.get_opt(&format!("{NS}/endpoints/db")).await.unwrap()?;
        (ep["subsets"][0]["addresses"].as_array()?.len() == 2).then_some(ep)
    })
    .await;
    assert_eq!(
        ep["metadata"]["labels"]["service.kubernetes.io/headless"],
        ""
    );
    let s = &ep["subsets"][0];
    assert!(s["notReadyAddresses"].is_null());
    assert_eq!(s["ports"], json!([{"port": 5432, "protocol": "TCP"}]));
    let addrs = s["addresses"].as_array().unwrap();
    let db0 = addrs.iter().find(|a| a["ip"] == "10.42.0.10").unwrap();
    assert_eq!(db0["hostname"], "db-0");
    let db1 = addrs.iter().find(|a| a["ip"] == "10.42.0.11").unwrap();
    assert!(db1["hostname"].is_null());

    let slices = until("the slice of both", || async {
        let s = slices_of(&c, "db", MANAGER).await;
        (s.len() == 1 && s[0]["endpoints"].as_array()?.len() == 2).then_some(s)
    })
    .await;
    assert_eq!(
        slices[0]["metadata"]["labels"]["service.kubernetes.io/headless"],
        ""
    );
    assert_eq!(
        slices[0]["ports"],
        json!([{"name": "", "port": 5432, "protocol": "TCP"}])
    );
    let e0 = slices[0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["addresses"][0] == "10.42.0.10")
        .unwrap()
        .clone();
    assert_eq!(e0["hostname"], "db-0");
    // Published although not ready: ready, but not serving.
    assert_eq!(
        e0["conditions"],
        json!({"ready": true, "serving": false, "terminating": false})
    );

    // With published not-ready addresses, a terminating pod stays listed.
    c.delete(&format!("{NS}/pods/db-1")).await.unwrap();
    let pod = c.get(&format!("{NS}/pods/db-1")).await.unwrap();
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ep = c.get(&format!("{NS}/endpoints/db")).await.unwrap();
    assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 2);

    // Without it, the not-ready pod moves to notReadyAddresses and the terminating one goes.
    c.merge_patch(
        &format!("{NS}/services/db"),
        &json!({"spec": {"publishNotReadyAddresses": false}}),
    )
    .await
    .unwrap();
    until("not ready split", || async {
        let ep = c.get(&format!("{NS}/endpoints/db")).await.unwrap();
        let s = &ep["subsets"][0];
        (s["addresses"].is_null() && ips(&s["notReadyAddresses"]) == ["10.42.0.10"]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn more_than_a_hundred_endpoints_are_split_into_slices() {
    let mut env = common::api().await;
    let c = env.c.clone();
    c.create(
        &format!("{NS}/services"),
        &json!({"metadata": {"name": "big"},
            "spec": {"selector": {"app": "big"}, "ports": [{"port": 80}]}}),
    )
    .await
    .unwrap();
    for i in 0..150 {
        pod(
            &c,
            &format!("p{i}"),
            json!({"app": "big"}),
            json!([]),
            &format!("10.42.{}.{}", i / 100, i % 100 + 1),
            true,
        )
        .await;
    }
    // Started after the pods exist (every pod event would otherwise wake a full pass).
    c.create(
        &format!("{NS}/services"),
        &json!({"metadata": {"name": "none"},
            "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}}),
    )
    .await
    .unwrap();
    start_endpoints(&mut env);
    // A Service without endpoints gets one empty placeholder slice.
    let placeholder = until("placeholder", || async {
        let s = slices_of(&c, "none", MANAGER).await;
        (s.len() == 1).then(|| s[0].clone())
    })
    .await;
    assert_eq!(placeholder["endpoints"], json!([]));
    assert_eq!(placeholder["ports"], json!([]));
    let slices = until("150 endpoints in slices", || async {
        let s = slices_of(&c, "big", MANAGER).await;
        let n: usize = s
            .iter()
            .map(|s| s["endpoints"].as_array().map_or(0, |a| a.len()))
            .sum();
        (n == 150).then_some(s)
    })
    .await;
    let mut sizes: Vec<usize> = slices
        .iter()
        .map(|s| s["endpoints"].as_array().unwrap().len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 100]);
    let addrs: BTreeSet<String> = slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap())
        .map(|e| e["addresses"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs.len(), 150);
    for s in &slices {
        assert_eq!(
            s["ports"],
            json!([{"name": "", "port": 80, "protocol": "TCP"}])
        );
    }
    let ep = c.get(&format!("{NS}/endpoints/big")).await.unwrap();
    assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 150);
}

#[tokio::test]
async fn selectorless_services_keep_user_endpoints_which_are_mirrored() {
    let mut env = common::api().await;
    start_endpoints(&mut env);
    let c = env.c.clone();
    c.create(
        &format!("{NS}/services"),
        &json!({"metadata": {"name": "ext"}, "spec": {"ports": [{"name": "pg", "port": 5432}]}}),
    )
    .await
    .unwrap();
    let user_ep = json!({"metadata": {"name": "ext", "labels": {"team": "x"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.7"}, {"ip": "192.0.2.8"}],
            "notReadyAddresses": [{"ip": "192.0.2.9"}],
            "ports": [{"name": "pg", "port": 5432}]}]});
    c.create(&format!("{NS}/endpoints"), &user_ep)
        .await
        .unwrap();
    let s = until("mirrored slice", || async {
        let s = slices_of(&c, "ext", MIRROR).await;
        (s.len() == 1).then(|| s[0].clone())
    })
    .await;
    assert_eq!(s["addressType"], "IPv4");
    assert_eq!(s["metadata"]["labels"]["team"], "x");
    assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
    assert_eq!(
        s["ports"],
        json!([{"name": "pg", "port": 5432, "protocol": "TCP"}])
    );
    let conds: Vec<(String, bool)> = s["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["addresses"][0].as_str().unwrap().to_string(),
                e["conditions"]["ready"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        conds,
        vec![
            ("192.0.2.7".into(), true),
            ("192.0.2.8".into(), true),
            ("192.0.2.9".into(), false)
        ]
    );
    // The EndpointSlice controller makes none for it, and the user's Endpoints stay as written.
    assert!(slices_of(&c, "ext", MANAGER).await.is_empty());
    let ep = c.get(&format!("{NS}/endpoints/ext")).await.unwrap();
    assert_eq!(ep["subsets"], user_ep["subsets"]);

    // An edit is mirrored.
    c.merge_patch(
        &format!("{NS}/endpoints/ext"),
        &json!({"subsets": [{"addresses": [{"ip": "192.0.2.20"}], "ports": [{"name": "pg", "port": 5432}]}]}),
    )
    .await
    .unwrap();
    until("edit mirrored", || async {
        let s = slices_of(&c, "ext", MIRROR).await;
        (s.len() == 1
            && s[0]["endpoints"].as_array()?.len() == 1
            && s[0]["endpoints"][0]["addresses"][0] == "192.0.2.20")
            .then_some(())
    })
    .await;
    // Marked skip-mirror: the mirror goes.
    c.merge_patch(
        &format!("{NS}/endpoints/ext"),
        &json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}}),
    )
    .await
    .unwrap();
    until("mirror removed", || async {
        slices_of(&c, "ext", MIRROR).await.is_empty().then_some(())
    })
    .await;
    // The Service goes: the user's Endpoints are not the controller's to delete.
    c.delete(&format!("{NS}/services/ext")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(c
        .get_opt(&format!("{NS}/endpoints/ext"))
        .await
        .unwrap()
        .is_some());
}

async fn node(c: &LocalClient, name: &str, ip: &str, staked: bool, ready: bool) {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if staked {
        labels[STAKED] = json!("true");
    }
    c.create(
        "/api/v1/nodes",
        &json!({"metadata": {"name": name, "labels": labels}}),
    )
    .await
    .unwrap();
    node_status(c, name, ip, ready).await;
}

async fn node_status(c: &LocalClient, name: &str, ip: &str, ready: bool) {
    let now = chrono::Utc::now().to_rfc3339();
    c.merge_patch(
        &format!("/api/v1/nodes/{name}/status"),
        &json!({"status": {
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "Unknown" },
            "lastHeartbeatTime": now, "lastTransitionTime": now}]}}),
    )
    .await
    .unwrap();
}

fn ingress_of(svc: &Value) -> Vec<String> {
    ips(&svc["status"]["loadBalancer"]["ingress"])
}

#[tokio::test]
async fn load_balancer_ingress_tracks_ready_staked_nodes() {
    let mut env = common::api().await;
    let c = env.c.clone();
    env.tasks.push(spawn_controller(
        c.clone(),
        ServiceLbController::new(c.clone(), STAKED),
        &opts(),
    ));
    node(&c, "n1", "172.30.0.12", true, true).await;
    node(&c, "n2", "172.30.0.11", true, true).await;
    node(&c, "n3", "172.30.0.13", false, true).await;
    let svc = c
        .create(
            &format!("{NS}/services"),
            &json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer",
                "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        )
        .await
        .unwrap();
    // The API server gives LoadBalancer Services node ports, as upstream.
    let np = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&np), "{svc}");
    let other = c
        .create(
            &format!("{NS}/services"),
            &json!({"metadata": {"name": "other"}, "spec": {"type": "LoadBalancer",
                "loadBalancerClass": "example.com/lb", "allocateLoadBalancerNodePorts": false,
                "ports": [{"port": 80}]}}),
        )
        .await
        .unwrap();
    assert!(other["spec"]["ports"][0]["nodePort"].is_null());
    let svc_path = format!("{NS}/services/lb");
    let want = |ips: &'static [&'static str]| {
        let c = c.clone();
        let path = svc_path.clone();
        async move {
            until(&format!("ingress {ips:?}"), || async {
                let s = c.get(&path).await.unwrap();
                (ingress_of(&s) == ips).then_some(())
            })
            .await
        }
    };
    want(&["172.30.0.11", "172.30.0.12"]).await;
    // n2 stops being Ready; n4 joins staked; n3 gets staked.
    node_status(&c, "n2", "172.30.0.11", false).await;
    want(&["172.30.0.12"]).await;
    node(&c, "n4", "172.30.0.2", true, true).await;
    want(&["172.30.0.2", "172.30.0.12"]).await;
    c.merge_patch(
        "/api/v1/nodes/n3",
        &json!({"metadata": {"labels": {STAKED: "true"}}}),
    )
    .await
    .unwrap();
    want(&["172.30.0.2", "172.30.0.12", "172.30.0.13"]).await;
    c.delete("/api/v1/nodes/n1").await.unwrap();
    want(&["172.30.0.2", "172.30.0.13"]).await;
    // Another class's Service is not ours.
    let other = c.get(&format!("{NS}/services/other")).await.unwrap();
    assert!(ingress_of(&other).is_empty());
    // No longer a LoadBalancer: its ingress is withdrawn.
    c.merge_patch(&svc_path, &json!({"spec": {"type": "ClusterIP"}}))
        .await
        .unwrap();
    want(&[]).await;
}

fn user(token: &str, name: &str, groups: &[&str]) -> (String, User) {
    (
        token.to_string(),
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        },
    )
}

fn code<T>(r: Result<T, daas_apiserver::ApiError>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(e) => e.code,
    }
}

#[tokio::test]
async fn tenants_and_nodes_cannot_write_others_endpoints() {
    let env = common::api_with_users(vec![
        user(
            "alice",
            "daas:user:0xa11ce",
            &["daas:users", "daas:namespace:u-alice"],
        ),
        user(
            "bob",
            "daas:user:0xb0b",
            &["daas:users", "daas:namespace:u-bob"],
        ),
        user("node", "system:node:n1", &["system:nodes"]),
    ])
    .await;
    let c = env.c.clone();
    for ns in ["u-alice", "u-bob"] {
        c.create(
            "/api/v1/namespaces",
            &json!({"metadata": {"name": ns, "labels": {"k3s-daas.io/tier": "user"}}}),
        )
        .await
        .unwrap();
        c.create(
            &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            &user_namespace_binding(ns),
        )
        .await
        .unwrap();
    }
    let alice = LocalClient::new(env.app.clone(), "alice");
    let bob = LocalClient::new(env.app.clone(), "bob");
    let node = LocalClient::new(env.app.clone(), "node");
    let nobody = LocalClient::new(env.app.clone(), "no-such-token");
    let ep = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
            "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}]}]})
    };
    let slice = |name: &str| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"]}],
            "ports": [{"port": 80}]})
    };
    let eps = |ns: &str| format!("/api/v1/namespaces/{ns}/endpoints");
    let slices = |ns: &str| format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices");
    // Bob's Service and its Endpoints/slice, in his namespace (his own writes are his right).
    bob.create(
        "/api/v1/namespaces/u-bob/services",
        &json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await
    .unwrap();
    assert_eq!(code(bob.create(&eps("u-bob"), &ep("web")).await), 200);
    assert_eq!(
        code(bob.create(&slices("u-bob"), &slice("web-1")).await),
        200
    );

    // Alice may not write (nor read) them, nor add her own to his namespace.
    let e = alice.create(&eps("u-bob"), &ep("web2")).await.unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(e.reason, "Forbidden");
    assert_eq!(
        e.message,
        "endpoints is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"endpoints\" in API group \"\" in the namespace \"u-bob\""
    );
    assert_eq!(
        code(
            alice
                .update(&format!("{}/web", eps("u-bob")), &ep("web"))
                .await
        ),
        403
    );
    assert_eq!(
        code(
            alice
                .merge_patch(&format!("{}/web", eps("u-bob")), &json!({"subsets": []}))
                .await
        ),
        403
    );
    assert_eq!(
        code(alice.delete(&format!("{}/web", eps("u-bob"))).await),
        403
    );
    let e = alice
        .create(&slices("u-bob"), &slice("web-2"))
        .await
        .unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "endpointslices.discovery.k8s.io is forbidden: User \"daas:user:0xa11ce\" cannot create resource \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"u-bob\""
    );
    assert_eq!(
        code(
            alice
                .merge_patch(
                    &format!("{}/web-1", slices("u-bob")),
                    &json!({"endpoints": []})
                )
                .await
        ),
        403
    );
    assert_eq!(code(alice.list(&slices("u-bob")).await), 403);
    // Nor set the load balancer status of his Service.
    assert_eq!(
        code(
            alice
                .merge_patch(
                    "/api/v1/namespaces/u-bob/services/web/status",
                    &json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})
                )
                .await
        ),
        403
    );
    // Nor cluster-wide.
    assert_eq!(code(alice.list("/api/v1/endpoints").await), 403);
    // In her own namespace she may (selectorless Services are hers to fill).
    assert_eq!(code(alice.create(&eps("u-alice"), &ep("mine")).await), 200);
    // But even there the load balancer status is the master's (the node proxies forward the
    // addresses it lists): she reads it, and may not write it.
    alice
        .create(
            "/api/v1/namespaces/u-alice/services",
            &json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer",
                "ports": [{"port": 80}]}}),
        )
        .await
        .unwrap();
    let st = "/api/v1/namespaces/u-alice/services/lb/status";
    assert_eq!(code(alice.get(st).await), 200);
    let e = alice
        .merge_patch(
            st,
            &json!({"status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "services \"lb\" is forbidden: User \"daas:user:0xa11ce\" cannot patch resource \"services/status\" in API group \"\" in the namespace \"u-alice\""
    );

    // A node reads endpoints and slices (its proxy needs them) but writes none.
    assert_eq!(code(node.list("/api/v1/endpoints").await), 200);
    assert_eq!(
        code(node.list("/apis/discovery.k8s.io/v1/endpointslices").await),
        200
    );
    let e = node.create(&eps("default"), &ep("x")).await.unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "endpoints is forbidden: User \"system:node:n1\" cannot create resource \"endpoints\" in API group \"\" in the namespace \"default\""
    );
    assert_eq!(
        code(
            node.update(&format!("{}/web", eps("u-bob")), &ep("web"))
                .await
        ),
        403
    );
    assert_eq!(
        code(
            node.merge_patch(&format!("{}/web", eps("u-bob")), &json!({"subsets": []}))
                .await
        ),
        403
    );
    assert_eq!(
        code(node.delete(&format!("{}/web", eps("u-bob"))).await),
        403
    );
    assert_eq!(
        code(node.create(&slices("default"), &slice("x")).await),
        403
    );
    assert_eq!(
        code(node.delete(&format!("{}/web-1", slices("u-bob"))).await),
        403
    );
    assert_eq!(
        code(
            node.merge_patch(
                "/api/v1/namespaces/u-bob/services/web/status",
                &json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})
            )
            .await
        ),
        403
    );
    // Unauthenticated: 401.
    assert_eq!(code(nobody.create(&eps("u-bob"), &ep("x")).await), 401);
    // Bob's objects are intact.
    let kept = c.get(&format!("{}/web", eps("u-bob"))).await.unwrap();
    assert_eq!(ips(&kept["subsets"][0]["addresses"]), ["10.42.0.5"]);
}
