//! Event expiry, as kube-apiserver's `--event-ttl` (default 1 h): an Event that has not been
//! written for the TTL is deleted. Upstream attaches an etcd lease to every Event write; here a
//! periodic sweep deletes each Event whose newest timestamp (`lastTimestamp`, `eventTime`,
//! `series.lastObservedTime`, `metadata.creationTimestamp`) is older than the TTL. Without it,
//! Events only grow: every pod start writes a few, and a 10,000-pod rollout leaves tens of
//! thousands behind in the store and in every list of them.
//!
//! The sweep pages through the Events (no whole list held), and deletes with the mod revision it
//! read, so an Event bumped meanwhile (a repeated event's count) is kept. Events of both
//! `v1` and `events.k8s.io/v1` share one storage prefix.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use daas_store::{Store, StoreError};
use serde_json::Value;

/// kube-apiserver's default `--event-ttl`.
pub const DEFAULT_EVENT_TTL: Duration = Duration::from_secs(3600);
/// Events read per page of a sweep.
const PAGE: usize = 500;

/// Storage prefix of Events (both API groups).
pub fn events_prefix() -> String {
    crate::registry::event::RESOURCE.prefix(None)
}

/// The newest time an Event records, if any.
fn last_written(ev: &Value) -> Option<DateTime<Utc>> {
    [
        &ev["lastTimestamp"],
        &ev["eventTime"],
        &ev["series"]["lastObservedTime"],
        &ev["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .filter_map(|v| v.as_str())
    .filter_map(|s| DateTime::parse_from_rfc3339(s).ok())
    .map(|t| t.with_timezone(&Utc))
    .max()
}

/// Delete the Events under `prefix` last written before `now - ttl`; returns how many.
pub async fn expire_events(
    store: &dyn Store,
    prefix: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let cutoff = now - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let mut start = prefix.to_string();
    let mut deleted = 0;
    loop {
        let page = store.list_range(prefix, &start, PAGE, None).await?;
        for kv in &page.items {
            let Ok(ev) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            // An Event without any time is left alone (nothing says it is old).
            if last_written(&ev).is_some_and(|t| t < cutoff) {
                match store.delete(&kv.key, Some(kv.mod_revision)).await {
                    Ok(_) => deleted += 1,
                    // Written or deleted meanwhile: the next sweep looks again.
                    Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        match page.items.last() {
            Some(last) if page.remaining > 0 => start = format!("{}\0", last.key),
            _ => return Ok(deleted),
        }
    }
}

/// Sweep every `every` (see the module documentation).
pub fn spawn_event_expiry(
    store: Arc<dyn Store>,
    ttl: Duration,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let prefix = events_prefix();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match expire_events(store.as_ref(), &prefix, ttl, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, ttl_s = ttl.as_secs(), "expired events"),
                Err(e) => tracing::warn!(error = %e, "event expiry sweep failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use daas_store::{EmbeddedStore, SealingKey};
    use serde_json::json;

    fn event(name: &str, last: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "d", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "lastTimestamp": last, "count": 1}))
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn expired_events_go_the_newest_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(&dir.path().join("s.redb"), SealingKey::generate()).unwrap(),
        );
        let prefix = events_prefix();
        let now: DateTime<Utc> = "2026-01-01T12:00:00Z".parse().unwrap();
        // 1,200 old Events (more than one page), 3 recent ones, one bumped recently (its
        // lastTimestamp is new although it was created long ago), one without any time, and
        // something that is not an Event under another prefix.
        for i in 0..1200 {
            store
                .create(
                    &format!("{prefix}d/old-{i:04}"),
                    &event("o", "2026-01-01T10:00:00Z"),
                )
                .await
                .unwrap();
        }
        for i in 0..3 {
            store
                .create(
                    &format!("{prefix}d/new-{i}"),
                    &event("n", "2026-01-01T11:30:00Z"),
                )
                .await
                .unwrap();
        }
        store
            .create(
                &format!("{prefix}d/bumped"),
                &event("b", "2026-01-01T11:59:00Z"),
            )
            .await
            .unwrap();
        store
            .create(&format!("{prefix}d/timeless"), br#"{"kind":"Event"}"#)
            .await
            .unwrap();
        store
            .create(
                "/registry/core/pods/d/p",
                &event("p", "2026-01-01T00:00:00Z"),
            )
            .await
            .unwrap();
        let n = expire_events(store.as_ref(), &prefix, DEFAULT_EVENT_TTL, now)
            .await
            .unwrap();
        assert_eq!(n, 1200);
        let left: Vec<String> = store
            .list(&prefix)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|kv| kv.key.trim_start_matches(&prefix).to_string())
            .collect();
        assert_eq!(
            left,
            vec!["d/bumped", "d/new-0", "d/new-1", "d/new-2", "d/timeless"]
        );
        assert!(store
            .get("/registry/core/pods/d/p")
            .await
            .unwrap()
            .is_some());
        // An hour later the rest (with a time) expire too.
        let later = now + chrono::Duration::hours(2);
        let n = expire_events(store.as_ref(), &prefix, DEFAULT_EVENT_TTL, later)
            .await
            .unwrap();
        assert_eq!(n, 4);
    }

    #[test]
    fn the_newest_timestamp_counts() {
        let ev = json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
            "eventTime": "2026-01-01T00:00:05.000000Z",
            "series": {"count": 3, "lastObservedTime": "2026-01-01T00:09:00.000000Z"}});
        assert_eq!(
            last_written(&ev),
            Some("2026-01-01T00:09:00Z".parse().unwrap())
        );
        assert_eq!(last_written(&json!({})), None);
    }
}
