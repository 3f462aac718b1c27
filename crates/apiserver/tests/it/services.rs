//! Service cluster-IP and node-port allocation through the API: reservations in the store,
//! upstream's messages for out-of-range and taken values, releases on type changes, delete,
//! dry run and failed creates.

use crate::common;

use common::*;
use daas_apiserver::registry::ipalloc::{IP_PREFIX, PORT_PREFIX};
use serde_json::{json, Value};

const SVCS: &str = "/api/v1/namespaces/default/services";

async fn create(app: &axum::Router, body: Value) -> (u16, Value) {
    call(app, "POST", SVCS, JSON, body).await
}

fn svc(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name}, "spec": spec})
}

fn message(st: &Value) -> String {
    st["message"].as_str().unwrap_or("").to_string()
}

async fn reserved(store: &std::sync::Arc<dyn daas_store::Store>, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = store
        .list(prefix)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| kv.key[prefix.len()..].to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn cluster_ips_are_reserved_checked_and_released() {
    let (_d, store, app) = app_with_store().await;
    // The kubernetes Service holds the first address.
    assert_eq!(reserved(&store, IP_PREFIX).await, vec!["10.43.0.1"]);
    let ports = json!([{"port": 80}]);

    let (code, st) = create(
        &app,
        svc("out", json!({"clusterIP": "10.44.0.5", "ports": ports})),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        message(&st),
        "Service \"out\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.44.0.5\"}: \
         failed to allocate IP 10.44.0.5: the provided IP (10.44.0.5) is not in the valid range. \
         The range of valid IPs is 10.43.0.0/16"
    );
    let (code, st) = create(
        &app,
        svc("dup", json!({"clusterIP": "10.43.0.1", "ports": ports})),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        message(&st),
        "Service \"dup\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.43.0.1\"}: \
         failed to allocate IP 10.43.0.1: provided IP is already allocated"
    );

    // A dry run reports but reserves nothing.
    let (code, st) = call(
        &app,
        "POST",
        &format!("{SVCS}?dryRun=All"),
        JSON,
        svc("a", json!({"clusterIP": "10.43.7.7", "ports": ports})),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    let (code, st) = call(
        &app,
        "POST",
        &format!("{SVCS}?dryRun=All"),
        JSON,
        svc("auto", json!({"ports": ports})),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    assert!(st["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .starts_with("10.43."));
    assert_eq!(reserved(&store, IP_PREFIX).await, vec!["10.43.0.1"]);

    let (code, st) = create(
        &app,
        svc("a", json!({"clusterIP": "10.43.7.7", "ports": ports})),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    assert_eq!(st["spec"]["clusterIPs"], json!(["10.43.7.7"]));
    // A failed create (the name is taken) gives back the IP it reserved.
    let (code, st) = create(
        &app,
        svc("a", json!({"clusterIP": "10.43.7.8", "ports": ports})),
    )
    .await;
    assert_eq!(code, 409, "{st}");
    assert_eq!(
        reserved(&store, IP_PREFIX).await,
        vec!["10.43.0.1", "10.43.7.7"]
    );
    // Headless and ExternalName Services hold no IP.
    let (code, st) = create(
        &app,
        svc("hl", json!({"clusterIP": "None", "ports": ports})),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    assert_eq!(st["spec"]["clusterIPs"], json!(["None"]));
    let (code, st) = create(
        &app,
        svc(
            "ext",
            json!({"type": "ExternalName", "externalName": "example.com"}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    assert!(st["spec"]["clusterIP"].is_null(), "{st}");
    assert_eq!(reserved(&store, IP_PREFIX).await.len(), 2);

    // ClusterIP -> ExternalName releases; ExternalName -> ClusterIP allocates.
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{SVCS}/a"),
        MERGE,
        json!({"spec": {"type": "ExternalName", "externalName": "example.org"}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert!(st["spec"]["clusterIP"].is_null(), "{st}");
    assert_eq!(reserved(&store, IP_PREFIX).await, vec!["10.43.0.1"]);
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{SVCS}/ext"),
        MERGE,
        json!({"spec": {"type": "ClusterIP", "externalName": null, "ports": ports}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let ip = st["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert_eq!(reserved(&store, IP_PREFIX).await.len(), 2);
    assert!(reserved(&store, IP_PREFIX).await.contains(&ip));
    // Delete releases, and the IP can be taken again.
    let (code, st) = call(&app, "DELETE", &format!("{SVCS}/ext"), JSON, Value::Null).await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(reserved(&store, IP_PREFIX).await, vec!["10.43.0.1"]);
    let (code, st) = create(&app, svc("again", json!({"clusterIP": ip, "ports": ports}))).await;
    assert_eq!(code, 201, "{st}");
}

#[tokio::test]
async fn concurrent_creates_get_distinct_ips() {
    let (_d, store, app) = app_with_store().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..24 {
        let app = app.clone();
        set.spawn(async move {
            create(
                &app,
                svc(&format!("s{i}"), json!({"ports": [{"port": 80}]})),
            )
            .await
        });
    }
    let mut ips = std::collections::BTreeSet::new();
    while let Some(r) = set.join_next().await {
        let (code, st) = r.unwrap();
        assert_eq!(code, 201, "{st}");
        assert!(ips.insert(st["spec"]["clusterIP"].as_str().unwrap().to_string()));
    }
    assert_eq!(ips.len(), 24);
    let held = reserved(&store, IP_PREFIX).await;
    assert_eq!(held.len(), 25);
    assert!(ips.iter().all(|ip| held.contains(ip)));
    // The same requested IP asked for by many at once goes to exactly one.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let app = app.clone();
        set.spawn(async move {
            create(
                &app,
                svc(
                    &format!("want{i}"),
                    json!({"clusterIP": "10.43.200.1", "ports": [{"port": 80}]}),
                ),
            )
            .await
            .0
        });
    }
    let mut codes = Vec::new();
    while let Some(r) = set.join_next().await {
        codes.push(r.unwrap());
    }
    codes.sort();
    assert_eq!(codes, vec![201, 422, 422, 422, 422, 422, 422, 422]);
}

#[tokio::test]
async fn node_ports_are_allocated_checked_and_released() {
    let (_d, store, app) = app_with_store().await;
    let (code, st) = create(
        &app,
        svc(
            "np",
            json!({"type": "NodePort", "ports": [
                {"name": "a", "port": 80, "nodePort": 30080},
                {"name": "b", "port": 81}]}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    assert_eq!(st["spec"]["ports"][0]["nodePort"], 30080);
    let auto = st["spec"]["ports"][1]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&auto) && auto != 30080, "{auto}");
    assert_eq!(reserved(&store, PORT_PREFIX).await, {
        let mut v = vec!["30080".to_string(), auto.to_string()];
        v.sort();
        v
    });

    // Taken, and out of range; a failed create releases the port it had reserved (30100).
    let (code, st) = create(
        &app,
        svc(
            "clash",
            json!({"type": "NodePort", "ports": [
                {"name": "a", "port": 80, "nodePort": 30100},
                {"name": "b", "port": 81, "nodePort": 30080}]}),
        ),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        message(&st),
        "Service \"clash\" is invalid: spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    let (code, st) = create(
        &app,
        svc(
            "far",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}),
        ),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        message(&st),
        "Service \"far\" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is \
         not in the valid range. The range of valid ports is 30000-32767"
    );
    assert_eq!(reserved(&store, PORT_PREFIX).await.len(), 2);
    let (code, st) = create(
        &app,
        svc(
            "lb",
            json!({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30100}]}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{st}");

    // An added port gets a node port; the kept ones stay.
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{SVCS}/np"),
        MERGE,
        json!({"spec": {"ports": [
            {"name": "a", "port": 80}, {"name": "b", "port": 81}, {"name": "c", "port": 82}]}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(st["spec"]["ports"][1]["nodePort"], auto);
    let added = st["spec"]["ports"][2]["nodePort"].as_i64().unwrap();
    assert_eq!(reserved(&store, PORT_PREFIX).await.len(), 4);
    assert!(reserved(&store, PORT_PREFIX)
        .await
        .contains(&added.to_string()));

    // NodePort -> ClusterIP releases every node port (the request may still carry them).
    let (code, st) = call(&app, "GET", &format!("{SVCS}/np"), JSON, Value::Null).await;
    assert_eq!(code, 200);
    let mut body = st.clone();
    body["spec"]["type"] = json!("ClusterIP");
    let (code, st) = call(&app, "PUT", &format!("{SVCS}/np"), JSON, body).await;
    assert_eq!(code, 200, "{st}");
    assert!(st["spec"]["ports"][0]["nodePort"].is_null(), "{st}");
    assert_eq!(reserved(&store, PORT_PREFIX).await, vec!["30100"]);
    // ... so another Service can have 30080 now.
    let (code, st) = create(
        &app,
        svc(
            "next",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{st}");
    // A dry-run update to NodePort reserves nothing.
    let (code, st) = call(
        &app,
        "PATCH",
        &format!("{SVCS}/np?dryRun=All"),
        MERGE,
        json!({"spec": {"type": "NodePort"}}),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    assert!(
        st["spec"]["ports"][0]["nodePort"].as_i64().is_some(),
        "{st}"
    );
    assert_eq!(reserved(&store, PORT_PREFIX).await, vec!["30080", "30100"]);
    // Deleting Services through a collection delete (as the namespace controller does)
    // releases everything they held (the `kubernetes` Service's IP too: its reconciler in the
    // master recreates it).
    let (code, st) = call(&app, "DELETE", SVCS, JSON, Value::Null).await;
    assert_eq!(code, 200, "{st}");
    assert!(reserved(&store, PORT_PREFIX).await.is_empty());
    assert!(reserved(&store, IP_PREFIX).await.is_empty());
}

/// The ranges are configuration: a server started with other ranges allocates from them, gives
/// the `kubernetes` Service the first address, and reports a full range as upstream does.
#[tokio::test]
async fn configured_ranges_are_used_and_a_full_range_is_reported() {
    use daas_apiserver::registry::ipalloc::ServiceRanges;
    use daas_apiserver::{router, ServerOptions, StaticTokens, User};
    use daas_store::{EmbeddedStore, SealingKey, Store};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    let ranges = ServiceRanges::parse("10.96.0.0/29", "31000-31001").unwrap();
    daas_apiserver::bootstrap_with(&store, &ranges)
        .await
        .unwrap();
    let auth = Arc::new(StaticTokens::new(vec![(
        TOKEN.into(),
        User {
            name: "admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        },
    )]));
    let app = router(
        store.clone(),
        auth,
        ServerOptions {
            service_ranges: ranges,
            ..Default::default()
        },
    );
    let (_, k) = call(
        &app,
        "GET",
        &format!("{SVCS}/kubernetes"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
    // 10.96.0.0/29: .1 to .6 are usable, .1 is taken.
    for i in 0..5 {
        let (code, st) = create(
            &app,
            svc(&format!("s{i}"), json!({"ports": [{"port": 80}]})),
        )
        .await;
        assert_eq!(code, 201, "{st}");
        assert!(st["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.0."));
    }
    let (code, st) = create(&app, svc("s5", json!({"ports": [{"port": 80}]}))).await;
    assert_eq!(code, 500, "{st}");
    assert_eq!(
        message(&st),
        "failed to allocate a serviceIP: range is full"
    );
    let (code, st) = create(
        &app,
        svc(
            "bcast",
            json!({"clusterIP": "10.96.0.7", "ports": [{"port": 80}]}),
        ),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(message(&st).ends_with(
        "the provided IP (10.96.0.7) is not in the valid range. The range of valid IPs is 10.96.0.0/29"
    ));
    // Two node ports in the range: a NodePort Service with three ports fails and keeps none.
    call(&app, "DELETE", &format!("{SVCS}/s0"), JSON, Value::Null).await;
    let (code, st) = create(
        &app,
        svc(
            "np",
            json!({"type": "NodePort", "ports": [
                {"name": "a", "port": 80}, {"name": "b", "port": 81}, {"name": "c", "port": 82}]}),
        ),
    )
    .await;
    assert_eq!(code, 500, "{st}");
    assert_eq!(message(&st), "failed to allocate a nodePort: range is full");
    assert!(reserved(&store, PORT_PREFIX).await.is_empty());
    let (code, st) = create(
        &app,
        svc(
            "np",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
        ),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert!(
        message(&st).ends_with("The range of valid ports is 31000-31001"),
        "{st}"
    );
    // The IP a failed create reserved was given back: the freed .x slot is still free.
    let (code, st) = create(&app, svc("last", json!({"ports": [{"port": 80}]}))).await;
    assert_eq!(code, 201, "{st}");
}

/// Callers who may not create Services (unauthenticated, a user without RBAC grants) are
/// refused before anything is reserved.
#[tokio::test]
async fn refused_callers_reserve_nothing() {
    use axum::body::Body;
    use axum::http::Request;
    use daas_apiserver::{router, ServerOptions, StaticTokens, User};
    use tower::ServiceExt;
    let (_d, store, _) = app_with_store().await;
    let auth = std::sync::Arc::new(StaticTokens::new(vec![(
        "nobody-token".into(),
        User {
            name: "nobody".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        },
    )]));
    let app = router(store.clone(), auth, ServerOptions::default());
    let body = svc(
        "grab",
        json!({"type": "NodePort", "clusterIP": "10.43.5.5",
            "ports": [{"port": 80, "nodePort": 30555}]}),
    );
    for (token, want) in [(None, 401u16), (Some("nobody-token"), 403)] {
        let mut req = Request::builder()
            .method("POST")
            .uri(SVCS)
            .header("content-type", JSON);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want);
    }
    assert_eq!(reserved(&store, IP_PREFIX).await, vec!["10.43.0.1"]);
    assert!(reserved(&store, PORT_PREFIX).await.is_empty());
}
