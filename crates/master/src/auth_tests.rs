//! The seal-token authenticator against the embedded ledger: warm cache without ledger calls,
//! revocation within the TTL, and credentials that must never be served from the cache.

use std::sync::Arc;
use std::time::Duration;

use daas_apiserver::Authenticator;
use daas_ledger::credential::{self, Claims, CredentialError};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::wallet::{created_owned, Wallet};
use daas_ledger::{tx, EmbeddedLedger, GenesisConfig, Ledger};
use sui_sdk_types::{Address, ObjectReference};

use super::{AuthError, SealTokenAuthenticator};
use crate::metrics::Metrics;

const AUD: &str = "k3s-daas:cluster-a";
const OTHER_AUD: &str = "k3s-daas:cluster-b";

fn ledger() -> Arc<EmbeddedLedger> {
    let admin = SuiKeypair::generate();
    Arc::new(EmbeddedLedger::in_memory(&GenesisConfig::new(admin.address())).unwrap())
}

struct Staker {
    wallet: Wallet,
    token: Address,
    token_ref: ObjectReference,
}

impl Staker {
    async fn new(l: &Arc<EmbeddedLedger>, role: u8, node_id: &str, amount: u64) -> Staker {
        let key = SuiKeypair::generate();
        l.mint(key.address(), 1_000_000_000_000).unwrap();
        let wallet = Wallet::new(l.clone() as Arc<dyn Ledger>, key);
        wallet
            .execute(|ctx, d| tx::stake(ctx, d, amount, role, node_id))
            .await
            .unwrap();
        let eff = wallet.execute(tx::issue_seal_token).await.unwrap();
        let token_ref = created_owned(&eff, wallet.address()).unwrap();
        Staker {
            token: *token_ref.object_id(),
            token_ref,
            wallet,
        }
    }

    fn credential(&self, audience: &str, ttl_ms: u64) -> String {
        credential::issue(
            &self.wallet.key,
            self.token,
            audience,
            crate::now_ms(),
            ttl_ms,
        )
        .unwrap()
    }
}

fn authenticator(l: &Arc<EmbeddedLedger>, aud: &str, ttl: Duration) -> SealTokenAuthenticator {
    SealTokenAuthenticator::new(
        l.clone() as Arc<dyn Ledger>,
        aud.to_string(),
        ttl,
        Arc::new(Metrics::new()),
    )
}

/// The same credential with one character of its signature changed.
fn tamper_signature(cred: &str) -> String {
    let mut b = cred.as_bytes().to_vec();
    let i = b.len() - 5;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[tokio::test]
async fn warm_cache_asks_the_ledger_once_and_keeps_identities_apart() {
    let l = ledger();
    let node = Staker::new(&l, 1, "n1", 1_000).await;
    let user = Staker::new(&l, 0, "", 100).await;
    let a = authenticator(&l, AUD, Duration::from_secs(60));
    let cn = node.credential(AUD, 600_000);
    let cu = user.credential(AUD, 600_000);

    let (c, fresh) = a.check(&cn).await.unwrap();
    assert!(fresh);
    assert_eq!(c.validated.user.name, "system:node:n1");
    assert_eq!(c.validated.token.id, node.token);
    assert_eq!(a.ledger_calls(), 2, "seal_token + seal_token_valid");
    for _ in 0..100 {
        let (c, fresh) = a.check(&cn).await.unwrap();
        assert!(!fresh);
        assert_eq!(c.validated.user.name, "system:node:n1");
    }
    assert_eq!(a.ledger_calls(), 2, "a warm cache makes no ledger call");
    assert_eq!(a.cache_hits(), 100);
    assert_eq!(
        a.authenticate(&cn).await.unwrap().name,
        "system:node:n1",
        "the authenticator serves the cached identity"
    );

    // Another identity gets its own entry, never the node's.
    let (c, fresh) = a.check(&cu).await.unwrap();
    assert!(fresh);
    assert_eq!(
        c.validated.user.name,
        format!("daas:user:{}", user.wallet.address())
    );
    assert_eq!(c.validated.token.id, user.token);
    assert_eq!(a.check(&cn).await.unwrap().0.validated.token.id, node.token);
    assert_eq!(a.check(&cu).await.unwrap().0.validated.token.id, user.token);
    // A second credential for the same token is another key: checked on its own.
    std::thread::sleep(Duration::from_millis(2));
    let cn2 = node.credential(AUD, 600_000);
    assert_ne!(cn, cn2);
    assert!(a.check(&cn2).await.unwrap().1);
    assert_eq!(a.cached_credentials(), 3);

    // The hits reach /metrics when it is rendered.
    let hits_before = a.cache_hits();
    a.publish_metrics();
    let text = a.metrics.render(&[]);
    assert!(
        text.contains(&format!(
            "daas_token_validations_total{{result=\"cache_hit\"}} {hits_before}"
        )),
        "{text}"
    );
    assert!(text.contains("daas_token_ledger_calls_total 6"), "{text}");
    a.publish_metrics();
    assert!(a.metrics.render(&[]).contains(&format!(
        "daas_token_validations_total{{result=\"cache_hit\"}} {hits_before}"
    )));
}

#[tokio::test]
async fn revocation_takes_effect_within_the_ttl() {
    let l = ledger();
    let ttl = Duration::from_millis(800);
    let a = authenticator(&l, AUD, ttl);

    // Token revoked by its owner.
    let node = Staker::new(&l, 1, "n1", 1_000).await;
    let cred = node.credential(AUD, 600_000);
    assert!(
        a.authenticate(&cred).await.is_some(),
        "accepted before revocation"
    );
    let r = node.token_ref.clone();
    node.wallet
        .execute(|ctx, d| tx::revoke_seal_token(ctx, d, &r))
        .await
        .unwrap();
    assert!(!l.seal_token_valid(node.token).await.unwrap());
    let revoked_at = std::time::Instant::now();
    loop {
        match a.check(&cred).await {
            Ok(_) => assert!(
                revoked_at.elapsed() < ttl,
                "still accepted {:?} after revocation (ttl {ttl:?})",
                revoked_at.elapsed()
            ),
            Err(e) => {
                assert!(
                    matches!(e, AuthError::Revoked(_) | AuthError::UnknownToken(_)),
                    "{e}"
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And it stays refused: a refusal is never cached as valid.
    for _ in 0..3 {
        assert!(a.authenticate(&cred).await.is_none());
    }

    // Stake withdrawn (unstake started): refused within the TTL too.
    let user = Staker::new(&l, 0, "", 100).await;
    let cred = user.credential(AUD, 600_000);
    assert!(a.check(&cred).await.is_ok());
    user.wallet.execute(tx::request_unstake).await.unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    assert!(matches!(a.check(&cred).await, Err(AuthError::Revoked(_))));

    // The master's own revocations (slashing) clear the cache at once.
    let node2 = Staker::new(&l, 1, "n2", 1_000).await;
    let cred = node2.credential(AUD, 600_000);
    assert!(a.check(&cred).await.is_ok());
    node2.wallet.execute(tx::request_unstake).await.unwrap();
    a.invalidate_all();
    assert!(matches!(a.check(&cred).await, Err(AuthError::Revoked(_))));
}

#[tokio::test]
async fn forged_tampered_expired_and_foreign_credentials_never_hit_the_cache() {
    let l = ledger();
    let node = Staker::new(&l, 1, "n1", 1_000).await;
    let a = authenticator(&l, AUD, Duration::from_secs(60));
    let good = node.credential(AUD, 600_000);
    assert!(a.check(&good).await.is_ok());
    let calls = a.ledger_calls();

    // A tampered signature, while the genuine credential is cached: refused before the ledger.
    let bad = tamper_signature(&good);
    for _ in 0..3 {
        assert!(matches!(a.check(&bad).await, Err(AuthError::Credential(_))));
        assert!(a.authenticate(&bad).await.is_none());
    }
    // Tampered claims (another expiry) under the genuine signature.
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = credential::claims_unverified(&good).unwrap();
    claims.exp += 1;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged_claims = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(&b64, serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert!(matches!(
        a.check(&forged_claims).await,
        Err(AuthError::Credential(CredentialError::Signature(_)))
    ));
    // Expired (signed by the owner, window in the past).
    let now = crate::now_ms();
    let expired = credential::sign(
        &node.wallet.key,
        &Claims {
            v: 1,
            token: node.token,
            owner: node.wallet.address(),
            aud: AUD.into(),
            iat: now - 700_000,
            exp: now - 100_000,
        },
    );
    assert!(matches!(
        a.check(&expired).await,
        Err(AuthError::Credential(CredentialError::Expired))
    ));
    // For another cluster: refused here, and a master of that cluster refuses ours.
    let foreign = node.credential(OTHER_AUD, 600_000);
    assert!(matches!(
        a.check(&foreign).await,
        Err(AuthError::Credential(CredentialError::Audience { .. }))
    ));
    let b = authenticator(&l, OTHER_AUD, Duration::from_secs(60));
    assert!(matches!(
        b.check(&good).await,
        Err(AuthError::Credential(CredentialError::Audience { .. }))
    ));
    assert!(b.check(&foreign).await.is_ok());
    assert_eq!(
        a.ledger_calls(),
        calls,
        "no ledger call for a bad credential"
    );

    // Someone else's key claiming the token: the ledger says the owner differs, every time.
    let mallory = SuiKeypair::generate();
    let stolen = credential::issue(&mallory, node.token, AUD, crate::now_ms(), 600_000).unwrap();
    for _ in 0..2 {
        assert!(matches!(
            a.check(&stolen).await,
            Err(AuthError::NotOwner { .. })
        ));
    }
    assert_eq!(a.ledger_calls(), calls + 2, "refusals are not cached");
    assert_eq!(
        a.cached_credentials(),
        1,
        "only the genuine credential is cached"
    );

    // A cached credential stops working when it expires, whatever the cache TTL.
    let short = node.credential(AUD, 1_500);
    assert!(a.check(&short).await.is_ok());
    assert!(!a.check(&short).await.unwrap().1, "cached");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(matches!(
        a.check(&short).await,
        Err(AuthError::Credential(CredentialError::Expired))
    ));
    assert!(a.authenticate("not-a-credential").await.is_none());
}

#[test]
fn keys_are_full_digests() {
    // Credentials differing in one character have unrelated keys.
    let a = "daas1.eyJ2IjoxfQ.c2ln";
    let b = "daas1.eyJ2IjoxfQ.c2lo";
    assert_ne!(super::key(a), super::key(b));
    assert_eq!(super::key(a), super::key(a));
    assert_eq!(super::key(a).len(), 32);
}
