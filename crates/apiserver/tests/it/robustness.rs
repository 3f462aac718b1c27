//! The API server never panics and never loses data, whatever the request body.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use daas_apiserver::{router, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use proptest::prelude::*;
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
    rt: tokio::runtime::Runtime,
}

const TOKEN: &str = "t0ken";

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap(),
        );
        daas_apiserver::bootstrap(&store).await.unwrap();
        let auth = Arc::new(StaticTokens::new(vec![(
            TOKEN.into(),
            User {
                name: "admin".into(),
                groups: vec!["system:masters".into()],
                ..Default::default()
            },
        )]));
        router(store, auth, ServerOptions::default())
    });
    Env { _dir: dir, app, rt }
}

impl Env {
    fn call(
        &self,
        method: &str,
        path: &str,
        ct: &str,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        self.rt.block_on(async {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", ct)
                .body(Body::from(body))
                .unwrap();
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let code = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            (
                code,
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
            )
        })
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-zA-Z0-9$/:._ -]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("metadata".to_string()),
                    Just("spec".to_string()),
                    Just("data".to_string()),
                    Just("name".to_string()),
                    Just("containers".to_string()),
                    Just("$patch".to_string()),
                    Just("kind".to_string()),
                    Just("apiVersion".to_string()),
                    Just("labels".to_string()),
                    "[a-z$/]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

const PATHS: &[&str] = &[
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/pods",
    "/apis/apps/v1/namespaces/default/deployments",
    "/api/v1/nodes",
    "/api/v1/namespaces",
];
const CTS: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn random_requests_never_break_the_server(
        ops in prop::collection::vec((0usize..5, 0usize..5, 0usize..4, arb_json(), prop::collection::vec(any::<u8>(), 0..64), any::<bool>()), 1..8)
    ) {
        let e = env();
        let (code, _) = e.call("POST", "/api/v1/namespaces/default/configmaps", "application/json",
            br#"{"metadata":{"name":"keep"},"data":{"k":"v"}}"#.to_vec());
        prop_assert_eq!(code, StatusCode::CREATED);
        for (p, ct, verb, json, raw, use_raw) in ops {
            let body = if use_raw { raw } else { serde_json::to_vec(&json).unwrap() };
            let (method, path) = match verb {
                0 => ("POST", PATHS[p].to_string()),
                1 => ("PATCH", format!("{}/keep", PATHS[p])),
                2 => ("PUT", format!("{}/keep", PATHS[p])),
                _ => ("PATCH", format!("{}/keep/status", PATHS[p])),
            };
            let (code, status) = e.call(method, &path, CTS[ct], body);
            prop_assert!(code.as_u16() < 500, "{} {} -> {} {}", method, path, code, status);
            if !code.is_success() {
                prop_assert_eq!(&status["kind"], "Status");
                prop_assert_eq!(status["code"].as_u64(), Some(code.as_u16() as u64));
            }
        }
        // The object created first is still readable (possibly changed by a valid write, never corrupt).
        let (code, obj) = e.call("GET", "/api/v1/namespaces/default/configmaps/keep", "application/json", vec![]);
        if code == StatusCode::OK {
            prop_assert_eq!(&obj["metadata"]["name"], "keep");
        } else {
            prop_assert_eq!(code, StatusCode::NOT_FOUND);
        }
        let (code, list) = e.call("GET", "/api/v1/namespaces", "application/json", vec![]);
        prop_assert_eq!(code, StatusCode::OK);
        prop_assert!(list["items"].as_array().map(|a| a.len() >= 4).unwrap_or(false));
    }
}
