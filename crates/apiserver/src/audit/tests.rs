//! Unit tests of the chain, the verifier (each kind of tampering), the writer and the middleware.

use super::chain::*;
use super::writer::*;
use super::*;
use std::time::Duration;

fn event(n: usize) -> Event {
    Event {
        kind: "Event".into(),
        api_version: "audit.k8s.io/v1".into(),
        level: Level::Metadata,
        audit_id: format!("00000000-0000-0000-0000-{n:012}"),
        stage: Stage::ResponseComplete,
        request_uri: format!("/api/v1/namespaces/default/configmaps/c{n}"),
        verb: "update".into(),
        user: UserInfo {
            username: "alice".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        },
        impersonated_user: None,
        source_ips: vec!["127.0.0.1".into()],
        user_agent: "test".into(),
        object_ref: None,
        response_status: Some(json!({"metadata": {}, "code": 200, "status": "Success"})),
        request_object: if n.is_multiple_of(3) {
            Some(json!({"data": {"x": 1.5, "y": [1, "two"]}, "kind": "ConfigMap"}))
        } else {
            None
        },
        request_received_timestamp: "2026-01-01T00:00:00.000000Z".into(),
        stage_timestamp: "2026-01-01T00:00:00.000100Z".into(),
        annotations: if n.is_multiple_of(2) {
            [(DECISION_ANNOTATION.to_string(), "allow".to_string())].into()
        } else {
            Default::default()
        },
    }
}

/// A log of `n` events with a checkpoint every `every` events and a final shutdown one.
fn log(signer: &dyn CheckpointSigner, n: usize, every: usize) -> Vec<u8> {
    let mut c = Chainer::new(None);
    let mut out = c.checkpoint_line(signer, CheckpointReason::Start, chrono::Utc::now(), false);
    for i in 0..n {
        out.extend(c.event_line(event_value(&event(i))));
        if (i + 1).is_multiple_of(every) {
            out.extend(c.checkpoint_line(
                signer,
                CheckpointReason::Interval,
                chrono::Utc::now(),
                true,
            ));
        }
    }
    out.extend(c.checkpoint_line(signer, CheckpointReason::Shutdown, chrono::Utc::now(), true));
    out
}

fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8(b.to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(l: &[String]) -> Vec<u8> {
    let mut s = l.join("\n");
    s.push('\n');
    s.into_bytes()
}

fn verify(data: Vec<u8>, key: [u8; 32]) -> Result<VerifyReport, VerifyError> {
    verify_files(&[("audit.log".to_string(), data)], &[key])
}

#[test]
fn intact_log_verifies() {
    let s = Ed25519Signer::generate();
    let r = verify(log(&s, 10, 4), s.public_key()).unwrap();
    assert_eq!(r.events, 10);
    assert_eq!(r.checkpoints, 4);
    assert_eq!(r.origin, Origin::Genesis);
    assert_eq!(r.last_checkpoint.reason, "shutdown");
    assert_eq!(r.last_checkpoint.events, 10);
    assert_eq!(r.last_checkpoint.line, 14);
}

#[test]
fn checkpoint_message_is_the_enclave_intent_layout() {
    let m = checkpoint_message(&[7; 32], 3, 0x0102);
    assert_eq!(m[0], CHECKPOINT_INTENT);
    assert_eq!(&m[1..9], &0x0102u64.to_le_bytes());
    assert_eq!(m[9] as usize, b"daas-audit-checkpoint-v1".len());
    assert_eq!(&m[m.len() - 8..], &3u64.to_le_bytes());
}

#[test]
fn canonical_json_sorts_keys_recursively() {
    let v = json!({"b": 1, "a": {"d": [true, null, "x\"y"], "c": 1.5}});
    assert_eq!(
        String::from_utf8(canonical(&v)).unwrap(),
        r#"{"a":{"c":1.5,"d":[true,null,"x\"y"]},"b":1}"#
    );
}

#[test]
fn edited_line_breaks_the_chain() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 6, 3));
    l[2] = l[2].replace("alice", "mallory");
    assert_eq!(
        verify(join(&l), s.public_key()).unwrap_err(),
        VerifyError::ChainBroken {
            file: "audit.log".into(),
            line: 3
        }
    );
}

#[test]
fn deleted_line_breaks_the_chain_at_the_next_line() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 6, 3));
    l.remove(2);
    assert!(matches!(
        verify(join(&l), s.public_key()).unwrap_err(),
        VerifyError::ChainBroken { line: 3, .. }
    ));
}

#[test]
fn inserted_line_breaks_the_chain() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 6, 3));
    let copy = l[2].clone();
    l.insert(4, copy);
    assert!(matches!(
        verify(join(&l), s.public_key()).unwrap_err(),
        VerifyError::ChainBroken { line: 5, .. }
    ));
}

#[test]
fn reordered_lines_break_the_chain() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 6, 3));
    l.swap(1, 2);
    assert!(matches!(
        verify(join(&l), s.public_key()).unwrap_err(),
        VerifyError::ChainBroken { line: 2, .. }
    ));
}

/// Rewrites every chain value after an edit, as a host operator who read this code would.
fn rechain(l: &mut [String]) {
    let mut prev: Option<[u8; 32]> = None;
    for line in l.iter_mut() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["kind"] == "Checkpoint" {
            let p = match v.get("prev") {
                Some(p) => hex::decode(p.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
                None => prev.unwrap(),
            };
            let mut body = v.as_object().unwrap().clone();
            body.remove("chain");
            body.remove("signature");
            let c = link(&p, &canonical(&Value::Object(body)));
            v["chain"] = json!(hex::encode(c));
            prev = Some(c);
        } else {
            let ann = v["annotations"].as_object_mut().unwrap();
            ann.remove(CHAIN_ANNOTATION);
            if ann.is_empty() {
                v.as_object_mut().unwrap().remove("annotations");
            }
            let c = link(&prev.unwrap(), &canonical(&v));
            let m = v.as_object_mut().unwrap();
            let a = m.entry("annotations").or_insert(json!({}));
            a[CHAIN_ANNOTATION] = json!(hex::encode(c));
            prev = Some(c);
        }
        *line = serde_json::to_string(&v).unwrap();
    }
}

#[test]
fn recomputed_chain_fails_the_next_checkpoint_signature() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 6, 3));
    // Unchanged re-chaining is a no-op (the helper is right) ...
    let mut same = l.clone();
    rechain(&mut same);
    assert!(verify(join(&same), s.public_key()).is_ok());
    // ... an edit then re-chaining is caught by the next checkpoint's signature.
    l[2] = l[2].replace("alice", "mallory");
    rechain(&mut l);
    assert_eq!(
        verify(join(&l), s.public_key()).unwrap_err(),
        VerifyError::BadCheckpointSignature {
            file: "audit.log".into(),
            line: 5
        }
    );
}

#[test]
fn truncation_after_the_last_checkpoint_is_an_unsigned_tail() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 5, 3));
    // start, e0 e1 e2, cp, e3 e4, shutdown: drop the shutdown checkpoint.
    l.pop();
    let e = verify(join(&l), s.public_key()).unwrap_err();
    assert!(
        matches!(e, VerifyError::UnsignedTail { count: 2, .. }),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("2 unsigned trailing events"),
        "{e}"
    );
}

#[test]
fn another_key_is_refused() {
    let s = Ed25519Signer::generate();
    let other = Ed25519Signer::generate();
    assert!(matches!(
        verify(log(&s, 2, 5), other.public_key()).unwrap_err(),
        VerifyError::WrongKey { line: 1, .. }
    ));
    // A log entirely forged with another key (chain recomputed from its genesis) too.
    assert!(matches!(
        verify(log(&other, 2, 5), s.public_key()).unwrap_err(),
        VerifyError::WrongKey { line: 1, .. }
    ));
}

#[test]
fn garbage_is_bad_json() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 2, 5));
    l.insert(2, "{not json".into());
    assert!(matches!(
        verify(join(&l), s.public_key()).unwrap_err(),
        VerifyError::BadJson { line: 3, .. }
    ));
    assert_eq!(
        verify(Vec::new(), s.public_key()).unwrap_err(),
        VerifyError::Empty
    );
}

#[test]
fn a_file_must_start_with_its_checkpoint() {
    let s = Ed25519Signer::generate();
    let mut l = lines(&log(&s, 3, 5));
    l.remove(0);
    assert!(matches!(
        verify(join(&l), s.public_key()).unwrap_err(),
        VerifyError::ChainBroken { line: 1, .. }
    ));
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn writer_checkpoints_rotates_and_continues_the_chain() {
    let dir = tmpdir();
    let path = dir.path().join("audit.log");
    let signer = Arc::new(Ed25519Signer::generate());
    let key = signer.public_key();
    let mut cfg = AuditLogConfig::new(&path);
    cfg.max_size_mb = 1;
    cfg.max_backups = 0;
    cfg.checkpoint_events = 50;
    let w = AuditLog::open(cfg.clone(), signer.clone()).unwrap();
    // ~4 KiB events: about 250 per MiB; 600 of them rotate twice.
    let mut big = event(1);
    big.request_object = Some(json!({"pad": "x".repeat(4000)}));
    for _ in 0..600 {
        w.write(big.clone()).await;
    }
    w.close().await;
    let mut files = backups(&path);
    assert_eq!(files.len(), 2, "{files:?}");
    files.push(path.clone());
    let loaded: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    for (_, d) in &loaded {
        assert!(d.len() <= 1024 * 1024 + 8192, "{}", d.len());
    }
    let r = verify_files(&loaded, &[key]).unwrap();
    assert_eq!(r.events, 600);
    assert_eq!(r.origin, Origin::Genesis);
    assert_eq!(r.last_checkpoint.reason, "shutdown");
    // The newest file alone verifies as a continuation; without its predecessor the middle
    // file's start cannot be checked but the chain inside it can.
    let r = verify_files(&loaded[2..], &[key]).unwrap();
    assert!(matches!(r.origin, Origin::Continues(_)));
    // Dropping the middle file breaks the link between the first and the last.
    let gap = vec![loaded[0].clone(), loaded[2].clone()];
    assert!(matches!(
        verify_files(&gap, &[key]).unwrap_err(),
        VerifyError::ChainBroken { line: 1, .. }
    ));

    // A restart (new enclave key) appends a session chained to the last line.
    let signer2 = Arc::new(Ed25519Signer::generate());
    let w = AuditLog::open(cfg.clone(), signer2.clone()).unwrap();
    w.write(event(2)).await;
    w.close().await;
    let mut loaded = loaded;
    loaded[2].1 = std::fs::read(&path).unwrap();
    let r = verify_files(&loaded, &[key, signer2.public_key()]).unwrap();
    assert_eq!(r.events, 601);
    assert!(matches!(
        verify_files(&loaded, &[key]).unwrap_err(),
        VerifyError::WrongKey { .. }
    ));
}

#[tokio::test]
async fn writer_signs_after_the_interval() {
    let dir = tmpdir();
    let path = dir.path().join("a.log");
    let signer = Arc::new(Ed25519Signer::generate());
    let mut cfg = AuditLogConfig::new(&path);
    cfg.checkpoint_interval = Duration::from_millis(200);
    let w = AuditLog::open(cfg, signer.clone()).unwrap();
    w.write(event(1)).await;
    let data = (0..50)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            let d = std::fs::read(&path).unwrap();
            (lines(&d).len() == 3).then_some(d)
        })
        .expect("an interval checkpoint");
    let r = verify(data, signer.public_key()).unwrap();
    assert_eq!(
        (r.events, r.last_checkpoint.reason.as_str()),
        (1, "interval")
    );
    w.close().await;
}

#[tokio::test]
async fn full_buffer_makes_the_request_wait() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    /// A sink that takes one event per `release`.
    struct Slow(tokio::sync::Semaphore, AtomicUsize);
    #[async_trait]
    impl AuditSink for Slow {
        async fn write(&self, _: Event) {
            if let Ok(p) = self.0.acquire().await {
                p.forget();
            }
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let sink = Arc::new(Slow(tokio::sync::Semaphore::new(0), AtomicUsize::new(0)));
    let (app, _dir) = router_with(sink.clone(), Policy::default_policy()).await;
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/configmaps")
        .body(axum::body::Body::empty())
        .unwrap();
    let call = tokio::spawn(tower::ServiceExt::oneshot(app, req));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!call.is_finished(), "the request did not wait for the sink");
    sink.0.add_permits(1);
    let resp = call.await.unwrap().unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(sink.1.load(Ordering::SeqCst), 1);
}

async fn router_with(
    sink: Arc<dyn AuditSink>,
    policy: Policy,
) -> (axum::Router, tempfile::TempDir) {
    let dir = tmpdir();
    let store: Arc<dyn daas_store::Store> = Arc::new(
        daas_store::EmbeddedStore::open(
            &dir.path().join("s.redb"),
            daas_store::SealingKey::generate(),
        )
        .unwrap(),
    );
    crate::bootstrap(&store).await.unwrap();
    let admin = User::new("admin", vec!["system:masters".into()]);
    let alice = User::new("alice", vec![]);
    let auth = Arc::new(crate::server::StaticTokens::new(vec![
        ("admin-token".into(), admin),
        ("alice-token".into(), alice),
    ]));
    let app = crate::server::router(
        store,
        auth,
        crate::server::ServerOptions {
            audit: Some(Arc::new(Auditor::new(policy, sink))),
            object_cache_bytes: 0,
            ..Default::default()
        },
    );
    (app, dir)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Value,
) -> Response {
    let mut b = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("user-agent", "unit/1.0");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = b
        .body(axum::body::Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    tower::ServiceExt::oneshot(app.clone(), req).await.unwrap()
}

#[tokio::test]
async fn events_carry_user_verb_object_status_and_decision() {
    let sink = Arc::new(MemorySink::default());
    let (app, _dir) = router_with(sink.clone(), Policy::default_policy()).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"k": "secret-ish"}});
    let r = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("admin-token"),
        cm.clone(),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = r.headers()[AUDIT_ID_HEADER].to_str().unwrap().to_string();
    // A read: not logged by the default policy, but it has an audit ID.
    let r = call(
        &app,
        "GET",
        "/api/v1/namespaces/default/configmaps/c1",
        Some("admin-token"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key(AUDIT_ID_HEADER));
    // alice may not create: 403 with the decision.
    let r = call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=All",
        Some("alice-token"),
        cm.clone(),
    )
    .await;
    assert_eq!(r.status(), 403);
    // A forged token: 401, as the anonymous user, with no token anywhere.
    let r = call(
        &app,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/c1",
        Some("forged-token-123"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status(), 401);
    let ev = sink.events();
    assert_eq!(ev.len(), 3, "{ev:#?}");
    let created = &ev[0];
    assert_eq!(created.audit_id, id);
    assert_eq!(created.verb, "create");
    assert_eq!(created.level, Level::Metadata);
    assert_eq!(created.stage, Stage::ResponseComplete);
    assert_eq!(created.user.username, "admin");
    assert_eq!(created.user_agent, "unit/1.0");
    assert_eq!(created.annotations[DECISION_ANNOTATION], "allow");
    assert!(created.request_object.is_none());
    let o = created.object_ref.as_ref().unwrap();
    assert_eq!(
        (
            o.resource.as_str(),
            o.namespace.as_str(),
            o.api_version.as_str()
        ),
        ("configmaps", "default", "v1")
    );
    assert_eq!(created.response_status.as_ref().unwrap()["code"], 201);
    let forbidden = &ev[1];
    assert_eq!(forbidden.user.username, "alice");
    assert_eq!(forbidden.annotations[DECISION_ANNOTATION], "forbid");
    assert!(
        forbidden.annotations[REASON_ANNOTATION].contains("cannot create"),
        "{forbidden:?}"
    );
    let st = forbidden.response_status.as_ref().unwrap();
    assert_eq!(
        (st["code"].as_u64(), st["reason"].as_str()),
        (Some(403), Some("Forbidden"))
    );
    assert_eq!(
        forbidden.request_uri,
        "/api/v1/namespaces/default/configmaps?dryRun=All"
    );
    let failed = &ev[2];
    assert_eq!(failed.user.username, ANONYMOUS);
    assert_eq!(failed.verb, "delete");
    assert_eq!(failed.response_status.as_ref().unwrap()["code"], 401);
    assert_eq!(
        failed.annotations[AUTHN_ANNOTATION],
        "failed, attempted: bearer"
    );
    let all = serde_json::to_string(&ev).unwrap();
    assert!(!all.contains("forged-token-123") && !all.contains("admin-token"));
    assert!(!all.contains("secret-ish"));
}

#[tokio::test]
async fn request_level_logs_the_body_but_never_for_secrets() {
    let sink = Arc::new(MemorySink::default());
    let policy = Policy::parse(
        "p",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [alice]\n- level: Request\n",
    )
    .unwrap();
    let (app, _dir) = router_with(sink.clone(), policy).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"k": "v"}});
    call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("admin-token"),
        cm,
    )
    .await;
    let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}, "stringData": {"password": "hunter2"}});
    call(
        &app,
        "POST",
        "/api/v1/namespaces/default/secrets",
        Some("admin-token"),
        s,
    )
    .await;
    call(
        &app,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("alice-token"),
        json!({}),
    )
    .await;
    // Impersonation: the admin acting as bob.
    let req = axum::http::Request::builder()
        .method("GET")
        .uri("/api/v1/namespaces/default/configmaps")
        .header("authorization", "Bearer admin-token")
        .header("impersonate-user", "bob")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    assert_eq!(r.status(), 403);
    let ev = sink.events();
    assert_eq!(ev.len(), 3, "{ev:#?}");
    assert_eq!(ev[0].level, Level::Request);
    assert_eq!(ev[0].request_object.as_ref().unwrap()["data"]["k"], "v");
    assert_eq!(ev[1].level, Level::Metadata);
    assert!(ev[1].request_object.is_none());
    assert!(!serde_json::to_string(&ev).unwrap().contains("hunter2"));
    assert_eq!(ev[2].user.username, "admin");
    assert_eq!(ev[2].impersonated_user.as_ref().unwrap().username, "bob");
    assert_eq!(ev[2].verb, "list");
}

#[test]
fn verbs_follow_kubernetes_not_http() {
    let c = |m: Method, p: &str, q: Option<&str>| classify(&m, p, q).0;
    assert_eq!(c(Method::POST, "/api/v1/namespaces/a/pods", None), "create");
    assert_eq!(
        c(Method::PUT, "/api/v1/namespaces/a/pods/p", None),
        "update"
    );
    assert_eq!(
        c(Method::PATCH, "/api/v1/namespaces/a/pods/p", None),
        "patch"
    );
    assert_eq!(
        c(Method::DELETE, "/api/v1/namespaces/a/pods/p", None),
        "delete"
    );
    assert_eq!(
        c(Method::DELETE, "/api/v1/namespaces/a/pods", None),
        "deletecollection"
    );
    assert_eq!(c(Method::GET, "/api/v1/namespaces/a/pods", None), "list");
    assert_eq!(
        c(Method::GET, "/api/v1/namespaces/a/pods", Some("watch=1")),
        "watch"
    );
    assert_eq!(c(Method::GET, "/api/v1/namespaces/a/pods/p", None), "get");
    assert_eq!(
        c(Method::POST, "/api/v1/namespaces/a/pods/p/eviction", None),
        "create"
    );
    assert_eq!(c(Method::GET, "/healthz", None), "get");
    let (_, o) = classify(
        &Method::POST,
        "/api/v1/namespaces/a/serviceaccounts/s/token",
        None,
    );
    let o = o.unwrap();
    assert_eq!(
        (o.resource.as_str(), o.subresource.as_str(), o.name.as_str()),
        ("serviceaccounts", "token", "s")
    );
}

fn meta(method: Method, uri: &str, code: u16) -> Meta {
    Meta {
        audit_id: "id".into(),
        received: chrono::Utc::now(),
        method,
        uri: uri.into(),
        user_agent: String::new(),
        source_ips: vec![],
        attempted: "failed, no credentials".into(),
        code,
        content_type: String::new(),
    }
}

#[test]
fn a_handler_that_never_returned_is_the_panic_stage() {
    let p = Policy::default_policy();
    let s = RecordState {
        user: Some(User::new("admin", vec!["system:masters".into()])),
        ..Default::default()
    };
    let e = build_event(&p, meta(Method::POST, "/api/v1/namespaces/a/pods", 500), s).unwrap();
    assert_eq!(e.stage, Stage::Panic);
    assert_eq!(e.response_status.unwrap()["message"], "APIServer panic'd");
    // A handler's own 500 is a completed response.
    let s = RecordState {
        user: Some(User::new("admin", vec![])),
        error: Some((500, "InternalError".into(), "boom".into())),
        completed: true,
        ..Default::default()
    };
    let e = build_event(&p, meta(Method::POST, "/api/v1/namespaces/a/pods", 500), s).unwrap();
    assert_eq!(e.stage, Stage::ResponseComplete);
    // omitStages drops the stage.
    let p = Policy::parse(
        "p",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Panic]\nrules: [{level: Metadata}]\n",
    )
    .unwrap();
    let s = RecordState {
        user: Some(User::new("admin", vec![])),
        ..Default::default()
    };
    assert!(build_event(&p, meta(Method::POST, "/api/v1/namespaces/a/pods", 500), s).is_none());
}

#[test]
fn public_paths_are_not_authentication_failures() {
    let p = Policy::default_policy();
    // /version without credentials: a read by no one, not logged.
    assert!(build_event(
        &p,
        meta(Method::GET, "/version", 200),
        RecordState::default()
    )
    .is_none());
    // The same path refused for lack of credentials would be.
    let e = build_event(
        &p,
        meta(Method::GET, "/api/v1/pods", 401),
        RecordState {
            error: Some((401, "Unauthorized".into(), "Unauthorized".into())),
            completed: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(e.user.username, ANONYMOUS);
    assert_eq!(e.annotations[AUTHN_ANNOTATION], "failed, no credentials");
}

#[test]
fn protobuf_bodies_are_logged_as_json() {
    let pod = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}});
    let pb = daas_apimachinery::protobuf::encode_object(&pod).unwrap();
    let v = decode_object(&pb, "application/vnd.kubernetes.protobuf").unwrap();
    assert_eq!(v["data"]["a"], "b");
    assert_eq!(
        decode_object(b"kind: X\n", "application/yaml").unwrap()["kind"],
        "X"
    );
    assert!(decode_object(b"  ", "application/json").is_none());
}
