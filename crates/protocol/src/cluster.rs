//! Several masters of one cluster: attest each of them (same policy, fresh nonce each) and check
//! that they all announce the same cluster id before any credential is sent to one of them.
//!
//! Used by `daas join` / `daas attest` (every listed master must verify) and by the agent (at
//! least one must verify at join; the others are attested when they first become reachable, see
//! `daas_agent::agent::masters`).

use std::time::Duration;

use crate::attested::{attest, AttestError, AttestationPolicy, AttestedMaster};

/// How long one attestation (TCP connect, TLS, the document, the ledger reads) may take before
/// the master counts as unreachable.
pub const ATTEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no master URL given")]
    NoMasters,
    #[error("master URL {0} is listed twice")]
    Duplicate(String),
    #[error("master {url} announces cluster {found:?}, but {first_url} announces cluster {expected:?}: refusing to use masters of different clusters")]
    ClusterMismatch {
        url: String,
        found: String,
        first_url: String,
        expected: String,
    },
    #[error("master {url}: attestation failed, refusing to send credentials: {source}")]
    Attestation {
        url: String,
        #[source]
        source: AttestError,
    },
    #[error("no master could be reached and attested: {0}")]
    NoneReachable(String),
}

/// Whether an attestation failure only says the master is not there (yet): nothing was verified
/// or refused, so trying again later is right. Anything else is a verdict about the master.
pub fn is_unreachable(e: &AttestError) -> bool {
    match e {
        AttestError::Connect(_) => true,
        AttestError::Http { code, .. } => *code >= 500,
        _ => false,
    }
}

/// [`attest`] bounded by [`ATTEST_TIMEOUT`] (a timeout is reported as [`AttestError::Connect`]).
pub async fn attest_bounded(
    url: &str,
    policy: &AttestationPolicy,
) -> Result<AttestedMaster, AttestError> {
    match tokio::time::timeout(ATTEST_TIMEOUT, attest(url, policy)).await {
        Ok(r) => r,
        Err(_) => Err(AttestError::Connect(format!(
            "attestation did not complete within {}s",
            ATTEST_TIMEOUT.as_secs()
        ))),
    }
}

/// The outcome of attesting a list of masters.
#[derive(Debug)]
pub struct AttestedCluster {
    /// The cluster id every attested master announced.
    pub cluster_id: String,
    /// Attested masters, in the order given.
    pub attested: Vec<AttestedMaster>,
    /// Masters that could not be reached (to attest later, before they are used), in the order
    /// given.
    pub unreachable: Vec<(String, AttestError)>,
}

/// Checks that `m` belongs to the cluster `expected` (first announced by `first_url`).
pub fn same_cluster(
    first_url: &str,
    expected: &str,
    m: &AttestedMaster,
) -> Result<(), ClusterError> {
    if m.cluster_id == expected {
        Ok(())
    } else {
        Err(ClusterError::ClusterMismatch {
            url: m.url.clone(),
            found: m.cluster_id.clone(),
            first_url: first_url.to_string(),
            expected: expected.to_string(),
        })
    }
}

/// Attest every master of `urls` concurrently with the same `policy`. A master that verifies
/// badly (wrong measurement, replayed nonce, unbound certificate, ...) or announces another
/// cluster id than the first attested one fails the whole call. Unreachable masters are an error
/// when `require_all`; otherwise they are returned to be attested later, and at least one master
/// must have verified.
pub async fn attest_all(
    urls: &[String],
    policy: &AttestationPolicy,
    require_all: bool,
) -> Result<AttestedCluster, ClusterError> {
    if urls.is_empty() {
        return Err(ClusterError::NoMasters);
    }
    for (i, u) in urls.iter().enumerate() {
        if urls[..i].contains(u) {
            return Err(ClusterError::Duplicate(u.clone()));
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, u) in urls.iter().enumerate() {
        let (u, p) = (u.clone(), policy.clone());
        set.spawn(async move { (i, attest_bounded(&u, &p).await) });
    }
    let mut results: Vec<Option<Result<AttestedMaster, AttestError>>> =
        (0..urls.len()).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        if let Ok((i, r)) = r {
            results[i] = Some(r);
        }
    }
    let mut attested: Vec<AttestedMaster> = Vec::new();
    let mut unreachable = Vec::new();
    for (url, r) in urls.iter().zip(results) {
        match r.unwrap_or_else(|| Err(AttestError::Connect("attestation task failed".into()))) {
            Ok(m) => {
                if let Some(first) = attested.first() {
                    same_cluster(&first.url, &first.cluster_id, &m)?;
                }
                attested.push(m);
            }
            Err(e) if is_unreachable(&e) && !require_all => unreachable.push((url.clone(), e)),
            Err(source) => {
                return Err(ClusterError::Attestation {
                    url: url.clone(),
                    source,
                })
            }
        }
    }
    let Some(first) = attested.first() else {
        return Err(ClusterError::NoneReachable(
            unreachable
                .iter()
                .map(|(u, e)| format!("{u}: {e}"))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    };
    Ok(AttestedCluster {
        cluster_id: first.cluster_id.clone(),
        attested,
        unreachable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testmaster::{TestCa, TestMaster};

    #[tokio::test]
    async fn masters_of_one_cluster_are_attested_and_another_cluster_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        let a = TestMaster::start(&ca, dir.path(), "cluster-one", "a").await;
        let b = TestMaster::start(&ca, dir.path(), "cluster-one", "b").await;
        let policy = a.policy();
        let c = attest_all(&[a.url.clone(), b.url.clone()], &policy, true)
            .await
            .expect("attest");
        assert_eq!(c.cluster_id, "cluster-one");
        assert_eq!(c.attested.len(), 2);
        assert_eq!(c.attested[1].url, b.url);
        // Each master has its own enclave key.
        assert_ne!(
            c.attested[0].attestation.public_key,
            c.attested[1].attestation.public_key
        );

        // A master of another cluster (same CA, same measurement) is refused by name.
        let other = TestMaster::start(&ca, dir.path(), "cluster-two", "x").await;
        let e = attest_all(&[a.url.clone(), other.url.clone()], &policy, false)
            .await
            .expect_err("mismatch");
        match &e {
            ClusterError::ClusterMismatch {
                url,
                found,
                expected,
                ..
            } => {
                assert_eq!(
                    (url.as_str(), found.as_str(), expected.as_str()),
                    (other.url.as_str(), "cluster-two", "cluster-one")
                );
            }
            e => panic!("unexpected {e}"),
        }
        assert!(e.to_string().contains("different clusters"), "{e}");

        // A master with another measurement fails attestation: a verdict, not "unreachable".
        let bad =
            TestMaster::start_with_measurement(&ca, dir.path(), "cluster-one", "m", [9; 48]).await;
        let e = attest_all(&[a.url.clone(), bad.url.clone()], &policy, false)
            .await
            .expect_err("bad measurement");
        assert!(
            matches!(&e, ClusterError::Attestation { url, .. } if *url == bad.url),
            "{e}"
        );

        // An unreachable master is deferred (agent) or refused (require_all); none reachable fails.
        let mut down = TestMaster::start(&ca, dir.path(), "cluster-one", "d").await;
        down.stop().await;
        let c = attest_all(&[down.url.clone(), a.url.clone()], &policy, false)
            .await
            .expect("one reachable");
        assert_eq!(c.attested.len(), 1);
        assert_eq!(c.unreachable.len(), 1);
        assert_eq!(c.unreachable[0].0, down.url);
        let e = attest_all(&[down.url.clone(), a.url.clone()], &policy, true)
            .await
            .expect_err("require all");
        assert!(matches!(e, ClusterError::Attestation { .. }), "{e}");
        let e = attest_all(std::slice::from_ref(&down.url), &policy, false)
            .await
            .expect_err("none");
        assert!(matches!(e, ClusterError::NoneReachable(_)), "{e}");
        let e = attest_all(&[a.url.clone(), a.url.clone()], &policy, false)
            .await
            .expect_err("dup");
        assert!(matches!(e, ClusterError::Duplicate(_)), "{e}");
        assert!(matches!(
            attest_all(&[], &policy, false).await,
            Err(ClusterError::NoMasters)
        ));
    }
}
