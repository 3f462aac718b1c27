//! The HTTP ledger API (`daas_ledger::http::router`) over an embedded ledger, driven through
//! `RemoteLedger` as a `dyn Ledger`: the full stake → seal token → unstake flow, and bad input.

use std::sync::Arc;

use daas_ledger::contract::{ROLE_NODE, STATUS_ACTIVE, STATUS_UNBONDING};
use daas_ledger::http::{self, ErrorBody};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::tx::{self, SignedTransaction, TxContext, TxError};
use daas_ledger::{EmbeddedLedger, GenesisConfig, Ledger, LedgerError, RemoteLedger};
use serde_json::json;
use sui_sdk_types::Address;

struct Env {
    remote: Arc<dyn Ledger>,
    embedded: EmbeddedLedger,
    base: String,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

async fn start(admin: &SuiKeypair) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut genesis = GenesisConfig::new(admin.address());
    genesis.master_endpoint = "https://master.test:6443".into();
    let embedded = EmbeddedLedger::open(dir.path().join("ledger.redb"), &genesis).unwrap();
    let app = http::router(Arc::new(embedded.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let base = format!("http://{addr}");
    let remote: Arc<dyn Ledger> = Arc::new(RemoteLedger::new(&format!("{base}/")).unwrap());
    Env {
        remote,
        embedded,
        base,
        _dir: dir,
        _server: server,
    }
}

async fn tcx(l: &dyn Ledger, who: &SuiKeypair) -> TxContext {
    let coins = l.gas_coins(who.address()).await.unwrap();
    assert!(!coins.is_empty(), "no gas for {}", who.address());
    TxContext::new(who.address(), vec![coins[0].0.clone()])
}

/// Raw POST returning (status, JSON body).
async fn post_raw(base: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let req = hyper::Request::post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }));
    (status, v)
}

async fn get_raw(base: &str, path: &str) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let req = hyper::Request::get(format!("{base}{path}"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }));
    (status, v)
}

#[tokio::test]
async fn full_flow_over_http() {
    let admin = SuiKeypair::from_seed([11; 32]);
    let worker = SuiKeypair::from_seed([12; 32]);
    let env = start(&admin).await;
    let l = env.remote.as_ref();

    // Reads of the fresh ledger.
    let d = l.deployment().await.unwrap();
    assert_eq!(d, env.embedded.deployment_now().unwrap());
    assert_eq!(l.epoch().await.unwrap(), 0);
    assert_eq!(
        l.reference_gas_price().await.unwrap(),
        tx::REFERENCE_GAS_PRICE
    );
    let pool = l.get_object(d.pool.id).await.unwrap().unwrap();
    assert_eq!(pool, env.embedded.object(&d.pool.id).unwrap().unwrap());
    assert!(l
        .get_object(Address::from([0xab; 32]))
        .await
        .unwrap()
        .is_none());
    assert!(l.stake(worker.address()).await.unwrap().is_none());
    assert!(l.gas_coins(worker.address()).await.unwrap().is_empty());

    // Faucet.
    let coin = l.faucet(worker.address(), 1_000_000_000).await.unwrap();
    let coins = l.gas_coins(worker.address()).await.unwrap();
    assert_eq!(coins, vec![(coin, 1_000_000_000)]);

    // Stake as a node.
    let stake_tx = tx::stake(&tcx(l, &worker).await, &d, 5_000, ROLE_NODE, "node-1").unwrap();
    let signed = tx::sign(&stake_tx, &worker).unwrap();
    let fx = l.execute(signed.clone()).await.unwrap();
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(fx.digest, tx::digest(&stake_tx));
    assert_eq!(l.transaction(fx.digest).await.unwrap(), Some(fx.clone()));
    let rec = l.stake(worker.address()).await.unwrap().unwrap();
    assert_eq!(
        (rec.amount, rec.status, rec.role, rec.node_id.as_str()),
        (5_000, STATUS_ACTIVE, ROLE_NODE, "node-1")
    );

    // The node-id index over HTTP (node ids are percent-encoded path segments).
    let (owner, rec) = l.node_stake("node-1").await.unwrap().unwrap();
    assert_eq!((owner, rec.amount), (worker.address(), 5_000));
    assert!(l.node_stake("node-2").await.unwrap().is_none());
    assert!(l.node_stake("node 1/../x?y#z").await.unwrap().is_none());
    let (status, body) = get_raw(&env.base, "/v1/node-stakes/node-2").await;
    assert_eq!((status, body["kind"].as_str()), (404, Some("not_found")));
    // The enclave config reads through get_object.
    if let Some(cfg) = d.enclave_config {
        let c = l.enclave_config(cfg.id).await.unwrap().unwrap();
        assert_eq!(c.anchored_revision, 0);
    }

    // Replay of the same signed transaction: refused, 409, state unchanged.
    let before = l.gas_coins(worker.address()).await.unwrap();
    match l.execute(signed).await {
        Err(LedgerError::AlreadyExecuted(dg)) => assert_eq!(dg, fx.digest),
        Err(LedgerError::StaleObject { .. }) => {}
        other => panic!("replay: {other:?}"),
    }
    assert_eq!(l.gas_coins(worker.address()).await.unwrap(), before);
    assert_eq!(
        l.stake(worker.address()).await.unwrap().unwrap().amount,
        5_000
    );

    // Issue a seal token.
    let issue = tx::issue_seal_token(&tcx(l, &worker).await, &d).unwrap();
    let fx = l.execute(tx::sign(&issue, &worker).unwrap()).await.unwrap();
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let tokens = l.seal_tokens_of(worker.address()).await.unwrap();
    assert_eq!(tokens.len(), 1);
    let token = &tokens[0];
    assert_eq!(token.owner, worker.address());
    assert_eq!(token.node_id, "node-1");
    assert_eq!(token.master_endpoint, "https://master.test:6443");
    assert!(fx.created_ids().contains(&token.id));
    assert_eq!(l.seal_token(token.id).await.unwrap().as_ref(), Some(token));
    assert!(l.seal_token_valid(token.id).await.unwrap());
    assert!(!l.seal_token_valid(Address::from([0xcd; 32])).await.unwrap());
    assert!(l
        .seal_token(Address::from([0xcd; 32]))
        .await
        .unwrap()
        .is_none());
    assert!(l.seal_tokens_of(admin.address()).await.unwrap().is_empty());

    // Request unstake: the token stops validating.
    let unstake = tx::request_unstake(&tcx(l, &worker).await, &d).unwrap();
    let fx = l
        .execute(tx::sign(&unstake, &worker).unwrap())
        .await
        .unwrap();
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        l.stake(worker.address()).await.unwrap().unwrap().status,
        STATUS_UNBONDING
    );
    assert!(!l.seal_token_valid(token.id).await.unwrap());

    // A Move abort is an executed transaction (200) with a Failure status.
    let again = tx::request_unstake(&tcx(l, &worker).await, &d).unwrap();
    let fx = l.execute(tx::sign(&again, &worker).unwrap()).await.unwrap();
    assert!(!fx.status.is_success());
    assert!(fx.status.abort().is_some(), "{:?}", fx.status);

    // Unknown transaction digest.
    assert!(l
        .transaction(tx::digest(&stake_tx_for(&admin, &d)))
        .await
        .unwrap()
        .is_none());
}

fn stake_tx_for(who: &SuiKeypair, d: &tx::Deployment) -> sui_sdk_types::Transaction {
    let gas = sui_sdk_types::ObjectReference::new(
        Address::from([7; 32]),
        1,
        sui_sdk_types::Digest::from([9; 32]),
    );
    tx::stake(&TxContext::new(who.address(), vec![gas]), d, 100, 0, "").unwrap()
}

#[tokio::test]
async fn bad_input_is_4xx_and_changes_nothing() {
    let admin = SuiKeypair::from_seed([21; 32]);
    let worker = SuiKeypair::from_seed([22; 32]);
    let env = start(&admin).await;
    let l = env.remote.as_ref();
    l.faucet(worker.address(), 1_000_000_000).await.unwrap();
    let d = l.deployment().await.unwrap();
    let coins_before = l.gas_coins(worker.address()).await.unwrap();
    let pool_before = l.get_object(d.pool.id).await.unwrap();

    // Malformed base64.
    let (status, body) = post_raw(
        &env.base,
        "/v1/transactions",
        r#"{"tx_bytes":"!!!not base64","signatures":["AA=="]}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["kind"], "invalid_transaction");
    assert_eq!(body["tx_kind"], "base64");
    // Through the trait: a SignedTransaction can't carry bad base64, but RemoteLedger maps the body back.
    let e = daas_ledger::remote::body_to_error(serde_json::from_value::<ErrorBody>(body).unwrap());
    assert!(
        matches!(e, LedgerError::InvalidTransaction(TxError::Base64(_))),
        "{e:?}"
    );

    // Malformed tx bytes (valid base64).
    let garbage = SignedTransaction {
        tx_bytes: vec![1, 2, 3, 4, 5],
        signatures: vec![vec![0; 97]],
    };
    let (status, body) = post_raw(
        &env.base,
        "/v1/transactions",
        &serde_json::to_string(&http::ExecuteRequest::from(&garbage)).unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["kind"], "invalid_transaction");
    match l.execute(garbage).await {
        Err(LedgerError::InvalidTransaction(_)) => {}
        other => panic!("garbage tx: {other:?}"),
    }

    // Valid transaction signed by the wrong key.
    let stake = tx::stake(&tcx(l, &worker).await, &d, 5_000, ROLE_NODE, "n").unwrap();
    let wrong = tx::sign(&stake, &admin).unwrap();
    match l.execute(wrong).await {
        Err(LedgerError::InvalidTransaction(TxError::WrongSigner { expected, actual })) => {
            assert_eq!((expected, actual), (worker.address(), admin.address()));
        }
        other => panic!("wrong signer: {other:?}"),
    }

    // Not JSON / missing fields.
    let (status, body) = post_raw(&env.base, "/v1/transactions", "not json").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, body) = post_raw(&env.base, "/v1/faucet", r#"{"address":"0x12"}"#).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );

    // Bad path and query parameters.
    for path in [
        "/v1/objects/not-an-id",
        "/v1/coins/0xzz",
        "/v1/stakes/xyz",
        "/v1/tokens/0x/valid",
        "/v1/tokens?owner=nope",
        "/v1/tokens",
        "/v1/transactions/0OIl",
    ] {
        let (status, body) = get_raw(&env.base, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["kind"], "bad_request", "{path}");
    }
    let (status, body) = get_raw(&env.base, "/v1/nothing").await;
    assert_eq!((status, body["kind"].as_str()), (404, Some("no_route")));

    // Replay: execute once, then again.
    let signed = tx::sign(&stake, &worker).unwrap();
    let fx = l.execute(signed.clone()).await.unwrap();
    assert!(fx.status.is_success());
    let coins_after = l.gas_coins(worker.address()).await.unwrap();
    let pool_after = l.get_object(d.pool.id).await.unwrap();
    let (status, body) = post_raw(
        &env.base,
        "/v1/transactions",
        &serde_json::to_string(&http::ExecuteRequest::from(&signed)).unwrap(),
    )
    .await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(
        body["kind"] == "already_executed" || body["kind"] == "stale_object",
        "{body}"
    );
    assert!(l.execute(signed).await.is_err());

    // Nothing changed by any of the refused requests.
    assert_ne!(coins_before, coins_after);
    assert_eq!(l.gas_coins(worker.address()).await.unwrap(), coins_after);
    assert_eq!(l.get_object(d.pool.id).await.unwrap(), pool_after);
    assert_ne!(pool_before, pool_after);
    assert_eq!(
        l.stake(worker.address()).await.unwrap().unwrap().amount,
        5_000
    );
}

#[tokio::test]
async fn remote_ledger_rejects_bad_urls_and_reports_unreachable() {
    assert!(RemoteLedger::new("https://example.com").is_err());
    assert!(RemoteLedger::new("127.0.0.1:1").is_err());
    assert!(RemoteLedger::new("not a url").is_err());
    // Nothing listens on port 1.
    let r = RemoteLedger::new("http://127.0.0.1:1").unwrap();
    assert!(matches!(r.epoch().await, Err(LedgerError::Backend(_))));
}
