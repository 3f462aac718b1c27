//! Shared lists for the in-process client: the master's controllers all list the same
//! collections (every pod, every node) on every change; when several ask for the same path at
//! the same time, one list serves them all. Linearizable as a list of its own: a caller only
//! takes the result of a list that *started after* the caller asked, so the result holds every
//! write acknowledged before the call. The coalescing is [`daas_apimachinery::singleflight`].

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use daas_apimachinery::singleflight::Singleflight;
use serde_json::Value;

use crate::error::ApiError;

/// Per-path list coalescing (see the module docs).
#[derive(Default)]
pub(crate) struct ListShare {
    /// Results are shared behind an `Arc` (the list is copied once per caller, not per joiner).
    flights: Singleflight<String, Arc<Result<Vec<Value>, ApiError>>>,
}

impl ListShare {
    /// The list of `path`, run by `fetch` or shared with a list that started after this call.
    pub(crate) async fn list<F, Fut>(&self, path: &str, fetch: F) -> Result<Vec<Value>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Value>, ApiError>>,
    {
        let out = self
            .flights
            .run(path.to_string(), Instant::now(), || async {
                Arc::new(fetch().await)
            })
            .await;
        (*out).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_callers_share_a_list_that_started_after_them() {
        let share = Arc::new(ListShare::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (share, fetches) = (share.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                share
                    .list("/api/v1/pods", || async {
                        let n = fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(vec![json!({ "n": n })])
                    })
                    .await
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap().unwrap()[0]["n"].as_u64().unwrap());
        }
        // The first caller runs a list; the others, queued behind it, share the second.
        let runs = fetches.load(Ordering::SeqCst);
        assert!(runs <= 2, "{runs} lists for 8 concurrent callers");
        assert!(seen.iter().all(|n| u64::from(runs) > *n));
    }

    #[tokio::test]
    async fn a_later_caller_never_gets_an_older_list() {
        let share = ListShare::default();
        let a = share.list("p", || async { Ok(vec![json!(1)]) }).await;
        // The earlier result is not reused: this call started after that list.
        let b = share.list("p", || async { Ok(vec![json!(2)]) }).await;
        assert_eq!((a.unwrap(), b.unwrap()), (vec![json!(1)], vec![json!(2)]));
        let e = share
            .list("p", || async { Err(ApiError::internal("down")) })
            .await;
        assert_eq!(e.unwrap_err().code, 500);
    }
}
