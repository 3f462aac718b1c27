//! etcd v3 backend (feature `etcd`): same semantics and sealing as the embedded store, with
//! etcd's own revisions. Writes are etcd transactions comparing `mod_revision`; watches are etcd
//! watches with `prev_kv`. Every key lives under `prefix`; values are sealed with the logical key
//! (without the prefix) as AAD, like the embedded backend.
//!
//! Differences from the embedded backend: revisions are etcd's (an empty etcd is at revision 1,
//! and other users of the same etcd also move it), and a watcher that falls behind is buffered by
//! etcd rather than dropped.

use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, DeleteOptions, EventType, GetOptions,
    PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::seal::SealingKey;
use crate::{
    Event, EventKind, KeyValue, ListResult, RangeResult, Result, Revision, Store, StoreError,
    WatchReceiver,
};

const WATCH_CHANNEL_CAPACITY: usize = crate::WATCH_CHANNEL_CAPACITY;
const KEY_CHECK_AAD: &[u8] = b"\0daas-store/sealing-key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"daas-store sealing key check v1";

fn be(e: etcd_client::Error) -> StoreError {
    StoreError::Backend(format!("etcd: {e}"))
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision has been compacted")
}

fn is_future(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision is a future revision")
}

/// PEM material for a TLS connection to etcd: the CA that signed etcd's serving certificate and
/// this client's certificate and key (etcd's `--client-cert-auth`).
#[derive(Clone, Default)]
pub struct EtcdTls {
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and its private key (both PEM).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

/// How [`EtcdStore::connect_with`] reaches etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// TLS for `https://` endpoints (required for them; `http://` endpoints take none).
    pub tls: Option<EtcdTls>,
    /// Bound on connecting and the sealing-key check together.
    pub timeout: std::time::Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            tls: None,
            timeout: std::time::Duration::from_secs(20),
        }
    }
}

impl EtcdOptions {
    fn connect_options(&self, endpoints: &[String]) -> Result<etcd_client::ConnectOptions> {
        let https = endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        if https != 0 && https != endpoints.len() {
            return Err(StoreError::Backend(
                "etcd: endpoints mix http:// and https://".into(),
            ));
        }
        let opts = etcd_client::ConnectOptions::new()
            .with_connect_timeout(self.timeout)
            .with_keep_alive(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(5),
            );
        match (&self.tls, https > 0) {
            (None, false) => Ok(opts),
            (Some(_), false) => Err(StoreError::Backend(
                "etcd: TLS files given but the endpoints are not https://".into(),
            )),
            (None, true) => Err(StoreError::Backend(
                "etcd: https:// endpoints need a CA file (the CA of etcd's serving certificate)"
                    .into(),
            )),
            (Some(t), true) => {
                let ca = t.ca_pem.as_ref().ok_or_else(|| {
                    StoreError::Backend(
                        "etcd: https:// endpoints need a CA file (the CA of etcd's serving certificate)"
                            .into(),
                    )
                })?;
                let mut tls = etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(ca));
                if let Some((cert, key)) = &t.identity {
                    tls = tls.identity(etcd_client::Identity::from_pem(cert, key));
                }
                Ok(opts.with_tls(tls))
            }
        }
    }
}

/// Store backed by an etcd v3 cluster.
pub struct EtcdStore {
    client: Client,
    key: SealingKey,
    prefix: String,
    /// Highest compaction this process has seen or done (etcd does not report it directly).
    compacted_hint: AtomicI64,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The first key after every key that starts with `prefix` (etcd's `clientv3.GetPrefixRangeEnd`).
fn prefix_end(mut prefix: Vec<u8>) -> Vec<u8> {
    while let Some(last) = prefix.pop() {
        if last < 0xff {
            prefix.push(last + 1);
            return prefix;
        }
    }
    // Every byte was 0xff: the range runs to the end of the keyspace.
    vec![0]
}

fn header_rev(h: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    h.map(|h| h.revision())
        .ok_or_else(|| StoreError::Backend("etcd response without header".into()))
}

impl EtcdStore {
    /// Connect to etcd. All keys are stored under `prefix` (e.g. `/daas/`). If `prefix` is not
    /// empty, a sealed canary next to it makes a wrong sealing key fail here with `Unseal`.
    pub async fn connect<E: AsRef<str>, S: AsRef<[E]>>(
        endpoints: S,
        key: SealingKey,
        prefix: impl Into<String>,
    ) -> Result<EtcdStore> {
        Self::connect_with(endpoints, key, prefix, &EtcdOptions::default()).await
    }

    /// [`EtcdStore::connect`] with TLS (a client certificate, as kube-apiserver's
    /// `--etcd-certfile`/`--etcd-keyfile`/`--etcd-cafile`) and a bound on how long connecting
    /// and the sealing-key check may take.
    pub async fn connect_with<E: AsRef<str>, S: AsRef<[E]>>(
        endpoints: S,
        key: SealingKey,
        prefix: impl Into<String>,
        opts: &EtcdOptions,
    ) -> Result<EtcdStore> {
        let eps: Vec<String> = endpoints
            .as_ref()
            .iter()
            .map(|e| e.as_ref().to_string())
            .collect();
        if eps.is_empty() {
            return Err(StoreError::Backend("etcd: no endpoint given".into()));
        }
        let connect_opts = opts.connect_options(&eps)?;
        let timeout = opts.timeout;
        let prefix = prefix.into();
        let fut = async move {
            let client = Client::connect(&eps, Some(connect_opts))
                .await
                .map_err(be)?;
            let store = EtcdStore {
                client,
                key,
                prefix,
                compacted_hint: AtomicI64::new(0),
            };
            store.check_key().await?;
            Ok::<_, StoreError>(store)
        };
        let store = tokio::time::timeout(timeout, fut).await.map_err(|_| {
            StoreError::Backend(format!(
                "etcd: no answer within {timeout:?} (endpoint down, or TLS refused?)"
            ))
        })??;
        info!(prefix = %store.prefix, key_id = %store.key.key_id_hex(), "etcd store connected");
        Ok(store)
    }

    /// The canary lives outside the data range: the prefix with its last character replaced.
    fn key_check_key(&self) -> Option<Vec<u8>> {
        let last = self.prefix.chars().last()?;
        let mut k = self.prefix.as_bytes()[..self.prefix.len() - last.len_utf8()].to_vec();
        k.extend_from_slice(b"\0daas-store/key-check");
        Some(k)
    }

    async fn check_key(&self) -> Result<()> {
        let Some(ck) = self.key_check_key() else {
            return Ok(());
        };
        let mut c = self.client.clone();
        let sealed = self.key.seal(KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT)?;
        let txn = Txn::new()
            .when([Compare::create_revision(ck.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(ck.clone(), sealed, None)])
            .or_else([TxnOp::get(ck, None)]);
        let resp = c.txn(txn).await.map_err(be)?;
        if resp.succeeded() {
            return Ok(());
        }
        let existing = first_get(&resp).and_then(|kvs| kvs.first().map(|kv| kv.value().to_vec()));
        match existing {
            Some(v)
                if self.key.unseal(KEY_CHECK_AAD, &v).ok().as_deref()
                    == Some(KEY_CHECK_PLAINTEXT) =>
            {
                Ok(())
            }
            _ => Err(StoreError::Unseal(format!(
                "<sealing key check: etcd prefix {} was sealed with another key, given {}>",
                self.prefix,
                self.key.key_id_hex()
            ))),
        }
    }

    fn full(&self, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn logical(&self, raw: &[u8]) -> Result<String> {
        let rest = raw
            .strip_prefix(self.prefix.as_bytes())
            .ok_or_else(|| StoreError::Backend("etcd returned a key outside the prefix".into()))?;
        String::from_utf8(rest.to_vec())
            .map_err(|_| StoreError::Backend("etcd key is not UTF-8".into()))
    }

    fn to_kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        let key = self.logical(kv.key())?;
        Ok(KeyValue {
            value: self.key.unseal(key.as_bytes(), kv.value())?,
            key,
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
        })
    }

    fn convert_event(&self, ev: &etcd_client::Event) -> Result<Option<Event>> {
        let Some(kv) = ev.kv() else { return Ok(None) };
        let prev = match ev.prev_kv() {
            Some(p) => Some(self.to_kv(p)?),
            None => None,
        };
        match ev.event_type() {
            EventType::Put => {
                let kv = self.to_kv(kv)?;
                // etcd may attach a prev_kv of an older life of the key; creates have none.
                let prev = if kv.version == 1 { None } else { prev };
                Ok(Some(Event {
                    kind: EventKind::Put,
                    kv,
                    prev,
                }))
            }
            EventType::Delete => {
                let key = self.logical(kv.key())?;
                let (value, create_revision, version) = match &prev {
                    Some(p) => (p.value.clone(), p.create_revision, p.version),
                    None => (Vec::new(), 0, 0),
                };
                Ok(Some(Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key,
                        value,
                        create_revision,
                        mod_revision: kv.mod_revision(),
                        version,
                    },
                    prev,
                }))
            }
        }
    }

    /// Smallest revision etcd can still read: binary search with ranged reads at a revision.
    async fn probe_compacted(&self) -> Result<Revision> {
        let mut c = self.client.clone();
        let probe = self.full("");
        let read_at = |c: &mut Client, rev: Revision| {
            let probe = probe.clone();
            let mut c = c.clone();
            async move {
                c.get(
                    probe,
                    Some(GetOptions::new().with_revision(rev).with_count_only()),
                )
                .await
            }
        };
        match read_at(&mut c, 1).await {
            Ok(_) => return Ok(0),
            Err(e) if is_compacted(&e) => {}
            Err(e) => return Err(be(e)),
        }
        let cur = self.current_revision().await?;
        // Invariant: lo is compacted (unreadable), hi is readable.
        let (mut lo, mut hi) = (1, cur);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match read_at(&mut c, mid).await {
                Ok(_) => hi = mid,
                Err(e) if is_compacted(&e) => lo = mid,
                Err(e) => return Err(be(e)),
            }
        }
        Ok(hi)
    }

    fn cas_failure(&self, key: &str, resp: &TxnResponse, expected: Option<Revision>) -> StoreError {
        match first_get(resp).and_then(|kvs| kvs.first().map(|kv| kv.mod_revision())) {
            None => StoreError::NotFound(key.to_string()),
            Some(actual) => match expected {
                Some(expected) => StoreError::Conflict {
                    key: key.to_string(),
                    expected,
                    actual,
                },
                None => {
                    StoreError::Backend(format!("etcd transaction on {key} failed unexpectedly"))
                }
            },
        }
    }
}

fn first_get(resp: &TxnResponse) -> Option<Vec<etcd_client::KeyValue>> {
    resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => Some(g.kvs().to_vec()),
        _ => None,
    })
}

#[async_trait]
impl Store for EtcdStore {
    async fn current_revision(&self) -> Result<Revision> {
        let mut c = self.client.clone();
        let resp = c
            .get(self.full(""), Some(GetOptions::new().with_count_only()))
            .await
            .map_err(be)?;
        header_rev(resp.header())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        let probed = self.probe_compacted().await?;
        Ok(self
            .compacted_hint
            .fetch_max(probed, Ordering::AcqRel)
            .max(probed))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut c = self.client.clone();
        let resp = c.get(self.full(key), None).await.map_err(be)?;
        match resp.kvs().first() {
            Some(kv) => Ok(Some(self.to_kv(kv)?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str) -> Result<ListResult> {
        let mut c = self.client.clone();
        let resp = c
            .get(self.full(prefix), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(be)?;
        let revision = header_rev(resp.header())?;
        let items = resp
            .kvs()
            .iter()
            .map(|kv| self.to_kv(kv))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResult { items, revision })
    }

    async fn list_at(&self, prefix: &str, revision: Revision) -> Result<ListResult> {
        if revision <= 0 {
            // etcd reads revision 0 as "latest"; before the first write nothing was live.
            return Ok(ListResult {
                items: Vec::new(),
                revision,
            });
        }
        let mut c = self.client.clone();
        let resp = match c
            .get(
                self.full(prefix),
                Some(GetOptions::new().with_prefix().with_revision(revision)),
            )
            .await
        {
            Ok(resp) => resp,
            Err(e) if is_compacted(&e) => {
                return Err(StoreError::Compacted {
                    requested: revision,
                    compacted: self.compacted_revision().await?,
                })
            }
            Err(e) if is_future(&e) => {
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current: self.current_revision().await?,
                })
            }
            Err(e) => return Err(be(e)),
        };
        let items = resp
            .kvs()
            .iter()
            .map(|kv| self.to_kv(kv))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResult { items, revision })
    }

    async fn list_range(
        &self,
        prefix: &str,
        start: &str,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        if revision.is_some_and(|r| r <= 0) {
            // etcd reads revision 0 as "latest"; before the first write nothing was live.
            return Ok(RangeResult {
                items: Vec::new(),
                revision: revision.unwrap_or(0),
                remaining: 0,
            });
        }
        let from = if start > prefix { start } else { prefix };
        let end = prefix_end(self.full(prefix));
        let limit = limit.max(1);
        let mut opts = GetOptions::new()
            .with_range(end)
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        if let Some(r) = revision {
            opts = opts.with_revision(r);
        }
        let mut c = self.client.clone();
        let resp = match c.get(self.full(from), Some(opts)).await {
            Ok(resp) => resp,
            Err(e) if is_compacted(&e) => {
                return Err(StoreError::Compacted {
                    requested: revision.unwrap_or(0),
                    compacted: self.compacted_revision().await?,
                })
            }
            Err(e) if is_future(&e) => {
                return Err(StoreError::FutureRevision {
                    requested: revision.unwrap_or(0),
                    current: self.current_revision().await?,
                })
            }
            Err(e) => return Err(be(e)),
        };
        let items = resp
            .kvs()
            .iter()
            .map(|kv| self.to_kv(kv))
            .collect::<Result<Vec<_>>>()?;
        let count = usize::try_from(resp.count()).unwrap_or(0);
        Ok(RangeResult {
            remaining: count.saturating_sub(items.len()),
            revision: revision.unwrap_or(header_rev(resp.header())?),
            items,
        })
    }

    async fn create(&self, key: &str, value: &[u8]) -> Result<KeyValue> {
        let k = self.full(key);
        let sealed = self.key.seal(key.as_bytes(), value)?;
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k, sealed, None)]);
        let mut c = self.client.clone();
        let resp = c.txn(txn).await.map_err(be)?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_string()));
        }
        let rev = header_rev(resp.header())?;
        Ok(KeyValue {
            key: key.to_string(),
            value: value.to_vec(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: &[u8],
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        let k = self.full(key);
        let sealed = self.key.seal(key.as_bytes(), value)?;
        let txn = Txn::new()
            .when([
                Compare::version(k.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(k.clone(), CompareOp::Equal, expected_mod_revision),
            ])
            .and_then([TxnOp::put(
                k.clone(),
                sealed,
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let mut c = self.client.clone();
        let resp = c.txn(txn).await.map_err(be)?;
        if !resp.succeeded() {
            return Err(self.cas_failure(key, &resp, Some(expected_mod_revision)));
        }
        let rev = header_rev(resp.header())?;
        let prev = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Put(p) => p.prev_key().map(|kv| (kv.create_revision(), kv.version())),
            _ => None,
        });
        let (create_revision, prev_version) =
            prev.ok_or_else(|| StoreError::Backend("etcd update returned no previous key".into()))?;
        Ok(KeyValue {
            key: key.to_string(),
            value: value.to_vec(),
            create_revision,
            mod_revision: rev,
            version: prev_version + 1,
        })
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        let k = self.full(key);
        let mut cmp = vec![Compare::version(k.clone(), CompareOp::Greater, 0)];
        if let Some(e) = expected_mod_revision {
            cmp.push(Compare::mod_revision(k.clone(), CompareOp::Equal, e));
        }
        let txn = Txn::new()
            .when(cmp)
            .and_then([TxnOp::delete(
                k.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let mut c = self.client.clone();
        let resp = c.txn(txn).await.map_err(be)?;
        if !resp.succeeded() {
            return Err(self.cas_failure(key, &resp, expected_mod_revision));
        }
        let rev = header_rev(resp.header())?;
        let prev = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Delete(d) => d.prev_kvs().first().cloned(),
            _ => None,
        });
        let prev =
            prev.ok_or_else(|| StoreError::Backend("etcd delete returned no previous key".into()))?;
        let prev = self.to_kv(&prev)?;
        Ok(KeyValue {
            key: key.to_string(),
            value: prev.value,
            create_revision: prev.create_revision,
            mod_revision: rev,
            version: prev.version,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchReceiver> {
        let after = after.max(0);
        let hint = self.compacted_hint.load(Ordering::Acquire);
        if after < hint {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: hint,
            });
        }
        let mut c = self.client.clone();
        // One ranged read at `after` tells both "compacted" (after < etcd's compact revision)
        // and "future" (after > current).
        let probe_rev = if after == 0 { 1 } else { after };
        match c
            .get(
                self.full(""),
                Some(GetOptions::new().with_revision(probe_rev).with_count_only()),
            )
            .await
        {
            Ok(r) => {
                let cur = header_rev(r.header())?;
                if after > cur {
                    return Err(StoreError::FutureRevision {
                        requested: after,
                        current: cur,
                    });
                }
            }
            Err(e) if is_compacted(&e) => {
                let compacted = self.compacted_revision().await?;
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted,
                });
            }
            Err(e) if is_future(&e) => {
                let current = self.current_revision().await?;
                return Err(StoreError::FutureRevision {
                    requested: after,
                    current,
                });
            }
            Err(e) => return Err(be(e)),
        }
        if after == 0 && self.compacted_revision().await? > 0 {
            let compacted = self.compacted_revision().await?;
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }

        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(after + 1)
            .with_prev_key();
        let mut stream = c.watch(self.full(prefix), Some(opts)).await.map_err(be)?;
        // Wait for the creation acknowledgement so events cannot be missed by a caller that
        // writes right after `watch` returns.
        match stream.message().await.map_err(be)? {
            Some(r) if r.created() && !r.canceled() => {}
            Some(r) if r.compact_revision() != 0 => {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted: r.compact_revision(),
                });
            }
            Some(r) => {
                return Err(StoreError::Backend(format!(
                    "etcd watch not created: {}",
                    r.cancel_reason()
                )));
            }
            None => return Err(StoreError::Backend("etcd watch stream closed".into())),
        }
        let (tx, rx) = mpsc::channel(WATCH_CHANNEL_CAPACITY);
        let this = EtcdStore {
            client: self.client.clone(),
            key: self.key.clone(),
            prefix: self.prefix.clone(),
            compacted_hint: AtomicI64::new(0),
        };
        let wprefix = prefix.to_string();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = stream.message() => m,
                    _ = tx.closed() => { debug!(prefix = %wprefix, "etcd watch receiver dropped"); return; }
                };
                let resp = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) => return,
                    Err(e) => {
                        warn!(prefix = %wprefix, error = %e, "etcd watch failed; ending watch");
                        return;
                    }
                };
                if resp.compact_revision() != 0 || resp.canceled() {
                    warn!(prefix = %wprefix, compact = resp.compact_revision(), reason = resp.cancel_reason(),
                        "etcd watch canceled; ending watch");
                    return;
                }
                for ev in resp.events() {
                    match this.convert_event(ev) {
                        Ok(Some(ev)) => {
                            if tx.send(std::sync::Arc::new(ev)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            warn!(prefix = %wprefix, error = %e, "cannot decode etcd watch event; ending watch");
                            return;
                        }
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let current = self.current_revision().await?;
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= self.compacted_hint.load(Ordering::Acquire) || revision <= 0 {
            return Ok(());
        }
        let mut c = self.client.clone();
        match c
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
        {
            Ok(_) => {}
            Err(e) if is_compacted(&e) => {}
            Err(e) if is_future(&e) => {
                let current = self.current_revision().await?;
                return Err(StoreError::FutureRevision {
                    requested: revision,
                    current,
                });
            }
            Err(e) => return Err(be(e)),
        }
        self.compacted_hint.fetch_max(revision, Ordering::AcqRel);
        info!(revision, "etcd history compacted");
        Ok(())
    }
    async fn restore(
        &self,
        items: Vec<KeyValue>,
        revision: Revision,
        floor: Revision,
    ) -> Result<()> {
        let (items, target) = crate::restore_plan(items, revision, floor)?;
        let mut c = self.client.clone();
        let resp = c
            .get(
                self.full(""),
                Some(GetOptions::new().with_prefix().with_limit(1)),
            )
            .await
            .map_err(be)?;
        if let Some(kv) = resp.kvs().first() {
            return Err(StoreError::RestoreNotEmpty(format!(
                "etcd key {} exists under prefix {}",
                String::from_utf8_lossy(kv.key()),
                self.prefix
            )));
        }
        let mut current = header_rev(resp.header())?;
        if let Some(first) = items.first() {
            if current >= first.mod_revision {
                return Err(StoreError::RestoreRevision {
                    key: first.key.clone(),
                    wanted: first.mod_revision,
                    current,
                });
            }
        }
        let mut pad = Padding {
            store: self,
            scratch: self.full(RESTORE_SCRATCH_KEY),
            sealed: self.key.seal(RESTORE_SCRATCH_KEY.as_bytes(), b"")?,
            live: false,
        };
        let mut i = 0;
        while i < items.len() {
            let rev = items[i].mod_revision;
            let group_end = items[i..]
                .iter()
                .position(|kv| kv.mod_revision != rev)
                .map_or(items.len(), |n| i + n);
            pad.up_to(current, rev - 1).await?;
            let mut ops = Vec::with_capacity(group_end - i);
            for kv in &items[i..group_end] {
                let sealed = self.key.seal(kv.key.as_bytes(), &kv.value)?;
                ops.push(TxnOp::put(self.full(&kv.key), sealed, None));
            }
            let resp = c.txn(Txn::new().and_then(ops)).await.map_err(be)?;
            current = header_rev(resp.header())?;
            if current != rev {
                return Err(StoreError::Backend(format!(
                    "restore of {} landed at revision {current}, not {rev}: another client writes to this etcd",
                    items[i].key
                )));
            }
            i = group_end;
        }
        current = pad.up_to(current, target).await?;
        if pad.live {
            let resp = c.delete(pad.scratch.clone(), None).await.map_err(be)?;
            current = header_rev(resp.header())?;
        }
        info!(keys = items.len(), revision = current, prefix = %self.prefix, "snapshot restored into etcd");
        Ok(())
    }
}

/// Logical key the etcd restore pads revision gaps with (deleted at the end).
const RESTORE_SCRATCH_KEY: &str = "\u{1}daas-restore-padding";
/// Padding puts in flight at once (etcd batches their commits).
const PADDING_CONCURRENCY: i64 = 64;

struct Padding<'a> {
    store: &'a EtcdStore,
    scratch: Vec<u8>,
    sealed: Vec<u8>,
    live: bool,
}

impl Padding<'_> {
    /// Put the scratch key until etcd's revision is `until` (each put takes one revision).
    async fn up_to(&mut self, mut current: Revision, until: Revision) -> Result<Revision> {
        let padded = current < until;
        while current < until {
            let n = (until - current).min(PADDING_CONCURRENCY);
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..n {
                let mut c = self.store.client.clone();
                let (k, v) = (self.scratch.clone(), self.sealed.clone());
                set.spawn(async move { c.put(k, v, None).await });
            }
            while let Some(r) = set.join_next().await {
                let resp = r
                    .map_err(|e| StoreError::Backend(format!("padding task: {e}")))?
                    .map_err(be)?;
                current = current.max(header_rev(resp.header())?);
            }
            self.live = true;
        }
        if padded && current != until {
            return Err(StoreError::Backend(format!(
                "restore padding reached revision {current}, not {until}: another client writes to this etcd"
            )));
        }
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;
    use crate::etcd_server::EtcdProcess;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_conformance_suite() {
        let etcd = EtcdProcess::start().await.expect("start etcd");
        let store = EtcdStore::connect([etcd.endpoint()], SealingKey::generate(), "/daas-test/")
            .await
            .expect("connect");
        conformance::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_restore_conformance() {
        let (e1, e2) = (
            EtcdProcess::start().await.expect("start etcd"),
            EtcdProcess::start().await.expect("start etcd"),
        );
        let src = EtcdStore::connect([e1.endpoint()], SealingKey::generate(), "/daas/")
            .await
            .expect("connect");
        let dst = EtcdStore::connect([e2.endpoint()], SealingKey::generate(), "/daas/")
            .await
            .expect("connect");
        conformance::restore_snapshot(&src, &dst, false).await;
        // The padding key is gone and nothing readable is left in etcd.
        let mut raw = Client::connect([e2.endpoint()], None).await.expect("raw");
        let all = raw
            .get("", Some(GetOptions::new().with_all_keys()))
            .await
            .expect("raw get");
        for kv in all.kvs() {
            assert!(!kv.key().windows(7).any(|w| w == b"padding"));
            assert!(!kv.value().windows(10).any(|w| w == b"v1-updated"));
        }
    }

    /// A snapshot of a long-lived cluster has large revision gaps: padding is pipelined.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_restore_pads_large_revision_gaps() {
        let etcd = EtcdProcess::start().await.expect("start etcd");
        let store = EtcdStore::connect([etcd.endpoint()], SealingKey::generate(), "/daas/")
            .await
            .expect("connect");
        let kv = |key: &str, rev: Revision| KeyValue {
            key: key.into(),
            value: b"v".to_vec(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
        };
        let t = std::time::Instant::now();
        store
            .restore(vec![kv("/a", 10), kv("/b", 3000)], 4000, 5000)
            .await
            .expect("restore");
        let took = t.elapsed();
        eprintln!("padded ~5000 revisions in {took:?}");
        assert_eq!(
            store.get("/b").await.expect("get").expect("b").mod_revision,
            3000
        );
        assert_eq!(
            store.get("/a").await.expect("get").expect("a").mod_revision,
            10
        );
        assert!(store.current_revision().await.expect("rev") >= 5000);
        assert_eq!(store.list("").await.expect("list").items.len(), 2);
        assert!(took < Duration::from_secs(120), "{took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_values_are_sealed_and_key_checked() {
        let etcd = EtcdProcess::start().await.expect("start etcd");
        let key = SealingKey::generate();
        let store = EtcdStore::connect([etcd.endpoint()], key.clone(), "/daas/")
            .await
            .expect("connect");
        store
            .create("/secret", b"PLAINTEXT-MARKER")
            .await
            .expect("create");
        // Raw read through a plain client: sealed bytes only.
        let mut raw = Client::connect([etcd.endpoint()], None)
            .await
            .expect("raw client");
        let resp = raw.get("/daas//secret", None).await.expect("raw get");
        let v = resp.kvs().first().expect("raw kv").value().to_vec();
        assert!(!v.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
        assert_eq!(SealingKey::sealed_key_id(&v), Some(key.key_id()));
        // The canary is outside the listed range.
        assert_eq!(store.list("").await.expect("list").items.len(), 1);
        // Another key on the same prefix is refused; on another prefix it works.
        match EtcdStore::connect([etcd.endpoint()], SealingKey::generate(), "/daas/").await {
            Err(StoreError::Unseal(_)) => {}
            other => panic!("expected Unseal, got {other:?}"),
        }
        // Without a canary (empty prefix) a wrong key surfaces on read.
        let other = EtcdStore::connect([etcd.endpoint()], SealingKey::generate(), "")
            .await
            .expect("connect");
        assert!(matches!(
            other.get("/daas//secret").await,
            Err(StoreError::Unseal(_))
        ));
        drop(etcd);
    }
}
