//! Lists in pages through the router: `limit`/`continue` over one revision, expired and bad
//! tokens, `resourceVersion`/`resourceVersionMatch` on lists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use daas_apiserver::paging::{EXPIRED_LIST, INCONSISTENT_CONTINUE};
use daas_apiserver::{router, ServerOptions, StaticTokens, User};
use daas_store::{EmbeddedStore, SealingKey, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "t0ken";
const NS: &str = "paging";
const CMS: &str = "/api/v1/namespaces/paging/configmaps";

struct App {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    router: axum::Router,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap());
    daas_apiserver::bootstrap(&store).await.unwrap();
    let auth = Arc::new(StaticTokens::new(vec![(
        TOKEN.into(),
        User {
            name: "admin".into(),
            groups: vec!["system:masters".into()],
            ..Default::default()
        },
    )]));
    let app = App {
        _dir: dir,
        store: store.clone(),
        router: router(store, auth, ServerOptions::default()),
    };
    let (code, body) = app
        .call(
            "POST",
            "/api/v1/namespaces",
            json!({"metadata": {"name": NS}}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    app
}

impl App {
    async fn request(&self, method: &str, path: &str, accept: &str, body: Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.request(method, path, "application/json", body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, Value::Null).await
    }

    async fn create_cm(&self, name: &str, labels: Value) -> Value {
        let (code, body) = self
            .call(
                "POST",
                CMS,
                json!({"metadata": {"name": name, "labels": labels}, "data": {"k": name}}),
            )
            .await;
        assert_eq!(code, 201, "{body}");
        body
    }
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn cont(list: &Value) -> String {
    list["metadata"]["continue"].as_str().unwrap().to_string()
}

fn enc(token: &str) -> String {
    // Tokens are URL-safe base64 without padding: nothing to escape.
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    token.to_string()
}

#[tokio::test]
async fn pages_of_500_return_all_1200_objects_at_one_revision() {
    let app = app().await;
    for i in 0..1200 {
        app.create_cm(&format!("cm-{i:04}"), json!({})).await;
    }

    let (code, p1) = app.get(&format!("{CMS}?limit=500")).await;
    assert_eq!(code, 200, "{p1}");
    assert_eq!(names(&p1).len(), 500);
    assert_eq!(p1["metadata"]["remainingItemCount"], 700);
    let rv = p1["metadata"]["resourceVersion"].clone();

    // Writes between pages do not show up in the rest of a paged list.
    app.create_cm("cm-9999-late", json!({})).await;
    let (code, _) = app
        .call("DELETE", &format!("{CMS}/cm-0700"), Value::Null)
        .await;
    assert_eq!(code, 200);

    let (code, p2) = app
        .get(&format!("{CMS}?limit=500&continue={}", enc(&cont(&p1))))
        .await;
    assert_eq!(code, 200, "{p2}");
    assert_eq!(p2["metadata"]["resourceVersion"], rv);
    assert_eq!(p2["metadata"]["remainingItemCount"], 200);
    // kubectl asks for Tables; the continue token works the same there.
    let (code, p3) = app
        .request(
            "GET",
            &format!("{CMS}?limit=500&continue={}", enc(&cont(&p2))),
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            Value::Null,
        )
        .await;
    assert_eq!(code, 200, "{p3}");
    assert_eq!(p3["kind"], "Table");
    assert_eq!(p3["metadata"]["resourceVersion"], rv);
    assert!(
        p3["metadata"].get("continue").is_none(),
        "{}",
        p3["metadata"]
    );
    assert!(p3["metadata"].get("remainingItemCount").is_none());
    let rows = p3["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 200);

    let mut all = names(&p1);
    all.extend(names(&p2));
    all.extend(rows.iter().map(|r| {
        r["object"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string()
    }));
    let expected: Vec<String> = (0..1200).map(|i| format!("cm-{i:04}")).collect();
    assert_eq!(all, expected);

    // A fresh list sees the writes.
    let (_, fresh) = app.get(CMS).await;
    let fresh = names(&fresh);
    assert_eq!(fresh.len(), 1200);
    assert!(fresh.contains(&"cm-9999-late".to_string()));
    assert!(!fresh.contains(&"cm-0700".to_string()));
    assert!(fresh.is_sorted());

    // A limit above the size returns everything without a token.
    let (_, whole) = app.get(&format!("{CMS}?limit=1201")).await;
    assert_eq!(names(&whole).len(), 1200);
    assert!(whole["metadata"].get("continue").is_none());
}

#[tokio::test]
async fn selectors_filter_within_pages() {
    let app = app().await;
    for i in 0..20 {
        let colour = if i % 2 == 0 { "red" } else { "blue" };
        app.create_cm(&format!("cm-{i:02}"), json!({"colour": colour}))
            .await;
    }
    let mut seen = Vec::new();
    let mut path = format!("{CMS}?limit=3&labelSelector=colour%3Dred");
    let mut pages = 0;
    loop {
        let (code, page) = app.get(&path).await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        let n = names(&page);
        assert!(n.len() <= 3);
        // Upstream knows no remaining count under a selector.
        assert!(page["metadata"].get("remainingItemCount").is_none());
        seen.extend(n);
        match page["metadata"].get("continue").and_then(|c| c.as_str()) {
            Some(c) => path = format!("{CMS}?limit=3&labelSelector=colour%3Dred&continue={c}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..20).step_by(2).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 4);

    // A field selector pages the same way.
    let (_, page) = app
        .get(&format!(
            "{CMS}?limit=1&fieldSelector=metadata.name%3Dcm-05"
        ))
        .await;
    assert_eq!(names(&page), vec!["cm-05"]);
    let (_, rest) = app
        .get(&format!(
            "{CMS}?limit=1&fieldSelector=metadata.name%3Dcm-05&continue={}",
            cont(&page)
        ))
        .await;
    assert!(names(&rest).is_empty());
    assert!(rest["metadata"].get("continue").is_none());
}

#[tokio::test]
async fn sparse_selectors_read_on_in_growing_chunks_and_exact_ends_need_no_continue() {
    let app = app().await;
    for i in 0..60 {
        let tier = if i % 15 == 7 { "gold" } else { "lead" };
        app.create_cm(&format!("cm-{i:02}"), json!({"tier": tier}))
            .await;
    }
    // Four matches among 60 objects (and the namespace's kube-root-ca.crt): each page of two
    // reads on past many non-matching keys.
    let (code, one) = app
        .get(&format!("{CMS}?limit=2&labelSelector=tier%3Dgold"))
        .await;
    assert_eq!(code, 200, "{one}");
    assert_eq!(names(&one), vec!["cm-07", "cm-22"]);
    let (_, two) = app
        .get(&format!(
            "{CMS}?limit=2&labelSelector=tier%3Dgold&continue={}",
            cont(&one)
        ))
        .await;
    assert_eq!(names(&two), vec!["cm-37", "cm-52"]);
    assert_eq!(
        one["metadata"]["resourceVersion"],
        two["metadata"]["resourceVersion"]
    );

    // Without a selector, a page that takes the last objects carries no continue token.
    let (_, all) = app.get(CMS).await;
    let total = names(&all).len();
    let (_, head) = app.get(&format!("{CMS}?limit={}", total - 3)).await;
    assert_eq!(head["metadata"]["remainingItemCount"], 3);
    let (_, tail) = app
        .get(&format!("{CMS}?limit=3&continue={}", cont(&head)))
        .await;
    assert_eq!(names(&tail).len(), 3);
    assert!(tail["metadata"].get("continue").is_none(), "{tail}");
    assert!(tail["metadata"].get("remainingItemCount").is_none());
}

#[tokio::test]
async fn compacted_continue_is_410_with_an_inconsistent_token() {
    let app = app().await;
    for i in 0..10 {
        app.create_cm(&format!("cm-{i}"), json!({})).await;
    }
    let (_, p1) = app.get(&format!("{CMS}?limit=4")).await;
    assert_eq!(names(&p1), vec!["cm-0", "cm-1", "cm-2", "cm-3"]);
    let first_rv = p1["metadata"]["resourceVersion"].clone();

    app.create_cm("cm-5a", json!({})).await;
    let now = app.store.current_revision().await.unwrap();
    app.store.compact(now).await.unwrap();

    let (code, status) = app
        .get(&format!("{CMS}?limit=4&continue={}", cont(&p1)))
        .await;
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["message"], INCONSISTENT_CONTINUE);
    let inconsistent = cont(&status);

    // The token from the error continues after the same key, at the latest revision.
    let (code, p2) = app
        .get(&format!("{CMS}?limit=4&continue={inconsistent}"))
        .await;
    assert_eq!(code, 200, "{p2}");
    assert_ne!(p2["metadata"]["resourceVersion"], first_rv);
    assert_eq!(p2["metadata"]["resourceVersion"], now.to_string());
    assert_eq!(names(&p2), vec!["cm-4", "cm-5", "cm-5a", "cm-6"]);
    assert_eq!(p2["metadata"]["remainingItemCount"], 3);
    let (_, p3) = app
        .get(&format!("{CMS}?limit=4&continue={}", cont(&p2)))
        .await;
    assert_eq!(names(&p3), vec!["cm-7", "cm-8", "cm-9"]);
    assert_eq!(p3["metadata"]["resourceVersion"], now.to_string());
}

#[tokio::test]
async fn bad_continue_and_bad_option_combinations() {
    let app = app().await;
    app.create_cm("a", json!({})).await;
    app.create_cm("b", json!({})).await;
    let (_, p1) = app.get(&format!("{CMS}?limit=1")).await;
    let token = cont(&p1);

    let (code, st) = app.get(&format!("{CMS}?continue=not-a-token")).await;
    assert_eq!((code, st["reason"].as_str()), (400, Some("BadRequest")));
    assert!(st["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid continue token: continue key is not valid"));

    let (code, st) = app
        .get(&format!("{CMS}?continue={token}&resourceVersion=5"))
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        st["message"],
        "specifying resource version is not allowed when using continue"
    );
    // resourceVersion=0 is tolerated with continue, as upstream.
    let (code, p2) = app
        .get(&format!("{CMS}?continue={token}&resourceVersion=0"))
        .await;
    assert_eq!(code, 200);
    assert_eq!(names(&p2), vec!["b"]);

    let (code, st) = app.get(&format!("{CMS}?resourceVersionMatch=Exact")).await;
    assert_eq!((code, st["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(
        st["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
    );
    assert_eq!(st["details"]["kind"], "ListOptions");
    let (code, _) = app
        .get(&format!(
            "{CMS}?resourceVersion=1&resourceVersionMatch=Sometimes"
        ))
        .await;
    assert_eq!(code, 422);
    let (code, _) = app.get(&format!("{CMS}?limit=lots")).await;
    assert_eq!(code, 400);
    let (code, _) = app.get(&format!("{CMS}?resourceVersion=abc")).await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn exact_lists_read_the_past_and_expire() {
    let app = app().await;
    let a = app.create_cm("a", json!({})).await;
    let b = app.create_cm("b", json!({})).await;
    let rv_b = b["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = app
        .call(
            "PUT",
            &format!("{CMS}/a"),
            json!({"metadata": {"name": "a", "resourceVersion": a["metadata"]["resourceVersion"]}, "data": {"k": "changed"}}),
        )
        .await;
    assert_eq!(code, 200);
    app.create_cm("c", json!({})).await;

    for q in [
        format!("resourceVersion={rv_b}&resourceVersionMatch=Exact"),
        // Legacy: a paged list with a resourceVersion reads exactly that revision.
        format!("resourceVersion={rv_b}&limit=10"),
    ] {
        let (code, then) = app.get(&format!("{CMS}?{q}")).await;
        assert_eq!(code, 200, "{q}: {then}");
        assert_eq!(then["metadata"]["resourceVersion"], rv_b);
        assert_eq!(names(&then), vec!["a", "b"]);
        assert_eq!(then["items"][0]["data"]["k"], "a");
    }
    // NotOlderThan reads the current state.
    let (_, now) = app
        .get(&format!(
            "{CMS}?resourceVersion={rv_b}&resourceVersionMatch=NotOlderThan"
        ))
        .await;
    assert_eq!(names(&now), vec!["a", "b", "c"]);
    assert_eq!(now["items"][0]["data"]["k"], "changed");

    let cur = app.store.current_revision().await.unwrap();
    let (code, st) = app
        .get(&format!(
            "{CMS}?resourceVersion={}&resourceVersionMatch=Exact",
            cur + 100
        ))
        .await;
    assert_eq!((code, st["reason"].as_str()), (504, Some("Timeout")));
    assert_eq!(
        st["message"],
        format!(
            "Timeout: Too large resource version: {}, current: {cur}",
            cur + 100
        )
    );
    assert_eq!(
        st["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );

    app.store.compact(cur).await.unwrap();
    let (code, st) = app
        .get(&format!(
            "{CMS}?resourceVersion={rv_b}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!((code, st["reason"].as_str()), (410, Some("Expired")));
    assert_eq!(st["message"], EXPIRED_LIST);
}

#[tokio::test]
async fn not_older_than_waits_for_the_revision_then_times_out() {
    let app = app().await;
    let cur = app.store.current_revision().await.unwrap();

    // Reached while waiting: answered with the fresh state.
    let store = app.store.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store
            .create(
                "/registry/core/configmaps/paging/late",
                br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late","namespace":"paging"}}"#,
            )
            .await
            .unwrap();
    });
    let (code, list) = app
        .get(&format!(
            "{CMS}?resourceVersion={}&resourceVersionMatch=NotOlderThan",
            cur + 1
        ))
        .await;
    writer.await.unwrap();
    assert_eq!(code, 200, "{list}");
    assert_eq!(names(&list), vec!["late"]);

    // Never reached: 504 after the wait.
    let started = Instant::now();
    let (code, st) = app
        .get(&format!("{CMS}?resourceVersion={}", cur + 50))
        .await;
    assert_eq!(code, 504, "{st}");
    assert_eq!(st["reason"], "Timeout");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(st["message"].as_str().unwrap().starts_with(&format!(
        "Timeout: Too large resource version: {}",
        cur + 50
    )));
}
