//! End-to-end with the `kube` crate: typed client, watcher, raw bad-input requests.

use crate::common;

use std::time::Duration;

use common::Cluster;
use futures::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

async fn client(c: &Cluster) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

/// The test's own ConfigMaps: every namespace also holds the root CA publisher's `kube-root-ca.crt`.
fn own_configmaps() -> ListParams {
    ListParams::default().fields("metadata.name!=kube-root-ca.crt")
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"watched": "yes"}},
        "data": {"v": v},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watcher_sees_create_update_delete() {
    let c = Cluster::start_with(&["--bookmark-seconds", "1"]);
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("before", "0"))
        .await
        .unwrap();

    let cfg = watcher::Config::default().labels("watched=yes");
    let mut stream = watcher(api.clone(), cfg).boxed();
    let mut log = Vec::new();
    macro_rules! next {
        () => {
            match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                Ok(Some(Ok(ev))) => ev,
                Ok(Some(Err(e))) => panic!("watcher error: {e}"),
                Ok(None) => panic!("watcher ended"),
                Err(_) => panic!("watcher timed out"),
            }
        };
    }
    // Initial list.
    loop {
        match next!() {
            watcher::Event::InitApply(o) => log.push(format!("init:{}", o.metadata.name.unwrap())),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(log, ["init:before"]);

    api.create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    // Unlabelling "before" takes it out of the selector: the watcher must see a delete.
    api.patch(
        "before",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"watched": null}}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        match next!() {
            watcher::Event::Apply(o) => seen.push(format!(
                "apply:{}:{}",
                o.metadata.name.unwrap(),
                o.data
                    .unwrap_or_default()
                    .get("v")
                    .cloned()
                    .unwrap_or_default()
            )),
            watcher::Event::Delete(o) => seen.push(format!("delete:{}", o.metadata.name.unwrap())),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        ["apply:a:1", "apply:a:2", "delete:a", "delete:before"]
    );

    // Conflicting update with a stale resourceVersion is refused with 409.
    let mut stale = api.get("before").await.unwrap();
    api.patch(
        "before",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"v": "3"}})),
    )
    .await
    .unwrap();
    stale.data = Some([("v".to_string(), "stale".to_string())].into());
    match api.replace("before", &PostParams::default(), &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409, "{s:?}"),
        other => panic!("expected conflict, got {other:?}"),
    }
    let list = api.list(&own_configmaps()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].data.as_ref().unwrap()["v"], "3");
}

async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    ct: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ct)
        .body(body.into())
        .unwrap();
    let resp = client.send(req).await.expect("send");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::json!({"raw": String::from_utf8_lossy(&bytes)}));
    (code, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_status_errors_and_loses_nothing() {
    let c = Cluster::start();
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("precious", "keep"))
        .await
        .unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    let json = "application/json";

    // (method, path, content type, body, expected code, expected reason)
    type Case<'a> = (&'a str, String, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            cms.into(),
            json,
            b"{\"metadata\": {\"name\": ".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            "application/yaml",
            b"metadata: [unclosed".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":7}}"#
                .to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"metadata":{"name":"Bad_Name"}}"#.to_vec(),
            422,
            "Invalid",
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"metadata":{"name":"precious"}}"#.to_vec(),
            409,
            "AlreadyExists",
        ),
        (
            "POST",
            cms.into(),
            json,
            vec![b' '; 4 * 1024 * 1024],
            413,
            "RequestEntityTooLarge",
        ),
        (
            "POST",
            cms.into(),
            "text/plain",
            b"hello".to_vec(),
            415,
            "UnsupportedMediaType",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/widgets".into(),
            json,
            vec![],
            404,
            "NotFound",
        ),
        (
            "GET",
            "/apis/nope.example.com/v1/things".into(),
            json,
            vec![],
            404,
            "NotFound",
        ),
        (
            "POST",
            "/api/v1/namespaces/missing/configmaps".into(),
            json,
            br#"{"metadata":{"name":"x"}}"#.to_vec(),
            404,
            "NotFound",
        ),
        (
            "PUT",
            format!("{cms}/precious"),
            json,
            br#"{"metadata":{"name":"other"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "PUT",
            format!("{cms}/precious"),
            json,
            br#"{"metadata":{"name":"precious","resourceVersion":"1"},"data":{"v":"lost"}}"#
                .to_vec(),
            409,
            "Conflict",
        ),
        (
            "PATCH",
            format!("{cms}/precious"),
            "application/merge-patch+json",
            b"[not json".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("{cms}/precious"),
            "application/json-patch+json",
            br#"[{"op":"remove","path":"/nope/x"}]"#.to_vec(),
            422,
            "Invalid",
        ),
        (
            "PATCH",
            format!("{cms}/precious"),
            "application/strategic-merge-patch+json",
            br#"{"data":{"v":{"nested":1}}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            format!("{cms}/precious"),
            json,
            br#"{}"#.to_vec(),
            415,
            "UnsupportedMediaType",
        ),
        (
            "DELETE",
            format!("{cms}/precious"),
            json,
            br#"{"preconditions":{"uid":"not-the-uid"}}"#.to_vec(),
            409,
            "Conflict",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods?labelSelector=a%20in%20(".into(),
            json,
            vec![],
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods?watch=1&resourceVersion=abc".into(),
            json,
            vec![],
            400,
            "BadRequest",
        ),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let (got, status) = raw(&client, method, &path, ct, body).await;
        assert_eq!(got, code, "{method} {path}: {status}");
        assert_eq!(status["kind"], "Status", "{method} {path}: {status}");
        assert_eq!(status["reason"], reason, "{method} {path}: {status}");
        assert_eq!(status["code"], code, "{method} {path}: {status}");
    }
    // Nothing was lost or changed, and the server still serves.
    let got = api.get("precious").await.unwrap();
    assert_eq!(got.data.unwrap()["v"], "keep");
    assert_eq!(api.list(&own_configmaps()).await.unwrap().items.len(), 1);
    assert!(!c.log().contains("panicked"), "{}", c.log());

    // Unauthenticated requests are refused.
    let kc = kube::config::Kubeconfig::read_from(c.kubeconfig()).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    cfg.auth_info.token = Some("wrong".to_string().into());
    let anon = kube::Client::try_from(cfg).unwrap();
    let (code, status) = raw(&anon, "GET", cms, json, vec![]).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (401, Some("Unauthorized"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_compacted_revision_is_gone() {
    let c = Cluster::start_with(&["--compact-seconds", "1", "--retain-revisions", "1"]);
    let client = client(&c).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), "x"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, ev) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(ev["type"], "ERROR", "{ev}");
    assert_eq!(ev["object"]["code"], 410, "{ev}");
    assert_eq!(ev["object"]["reason"], "Expired", "{ev}");
    // The list is whole, and a watch from its resourceVersion works.
    let list = api.list(&own_configmaps()).await.unwrap();
    assert_eq!(list.items.len(), 5);
}
