//! The backends a master runs on, chosen by whoever starts it (the `daas` binary from its flags,
//! tests from their fixtures) and handed to [`crate::Master::start`] inside a
//! [`crate::MasterConfig`]: the enclave, the sealed state store and the ledger.
//!
//! - Enclave: `simulated` (a real implementation under a development root) or `nitro` (`/dev/nsm`,
//!   cargo feature `nitro`).
//! - Store: the embedded redb store in the data directory, or an etcd cluster (cargo feature
//!   `etcd`), reached over TLS with a client certificate as kube-apiserver / k3s do
//!   (`--datastore-endpoint`, `--datastore-cafile`, `--datastore-certfile`, `--datastore-keyfile`).
//!   Either way every value is sealed under the cluster key ([`crate::clusterkey`]).
//! - Ledger: the embedded ledger served by `daas chain` / `daas up` over HTTP, or a Sui fullnode
//!   (cargo feature `sui`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use daas_store::{SealingKey, Store, StoreError};

use crate::enclave::{EnclaveHandle, Measurement};

/// Default etcd key prefix of the store (every key of the cluster lives under it).
pub const DEFAULT_DATASTORE_PREFIX: &str = "/registry-daas/";

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("--enclave {0:?}: expected simulated or nitro")]
    UnknownEnclave(String),
    #[error("--ledger {0:?}: expected embedded or sui")]
    UnknownLedger(String),
    #[error("--enclave nitro: this daas was built without the `nitro` feature")]
    NitroNotBuilt,
    #[error("--enclave nitro: {0}")]
    Nitro(#[source] daas_tee::TeeError),
    #[error("--enclave simulated: {0}")]
    Simulated(#[source] daas_tee::TeeError),
    #[error("--datastore-endpoint: this daas was built without the `etcd` feature")]
    EtcdNotBuilt,
    #[error("--ledger sui: this daas was built without the `sui` feature")]
    SuiNotBuilt,
    #[error("{flag} needs --datastore-endpoint (the embedded store takes no TLS files)")]
    TlsWithoutEndpoint { flag: &'static str },
    #[error("--datastore-certfile and --datastore-keyfile go together")]
    HalfIdentity,
    #[error("--datastore-endpoint {0:?}: each endpoint must be an http:// or https:// URL")]
    BadEndpoint(String),
    #[error("--datastore-prefix must not be empty")]
    EmptyPrefix,
    #[error("{flag} {path}: {source}")]
    File {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("datastore {endpoints}: {source}")]
    Datastore {
        endpoints: String,
        #[source]
        source: daas_store::StoreError,
    },
    #[error("embedded datastore {path}: {source}")]
    Embedded {
        path: PathBuf,
        #[source]
        source: daas_store::StoreError,
    },
    #[error("--ledger {kind} needs --sui-rpc URL")]
    LedgerWithoutRpc { kind: &'static str },
    #[error("--sui-rpc needs --ledger")]
    RpcWithoutLedger,
    #[error("--ledger sui needs --sui-deployment FILE (package, pool and gateway ids)")]
    SuiWithoutDeployment,
    #[error("--sui-deployment {path}: {reason}")]
    SuiDeployment { path: PathBuf, reason: String },
    #[error("ledger {url}: {source}")]
    Ledger {
        url: String,
        #[source]
        source: daas_ledger::LedgerError,
    },
}

/// Which enclave the master runs in (`--enclave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnclaveKind {
    #[default]
    Simulated,
    Nitro,
}

impl std::str::FromStr for EnclaveKind {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, BackendError> {
        match s {
            "simulated" => Ok(EnclaveKind::Simulated),
            "nitro" => Ok(EnclaveKind::Nitro),
            other => Err(BackendError::UnknownEnclave(other.to_string())),
        }
    }
}

impl std::fmt::Display for EnclaveKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnclaveKind::Simulated => "simulated",
            EnclaveKind::Nitro => "nitro",
        })
    }
}

/// Open the enclave: the simulated one keeps its secret in `tee_dir` and measures itself as
/// `measurement` says; Nitro reads its PCRs from `/dev/nsm` (the measurement is the image's).
pub fn open_enclave(
    kind: EnclaveKind,
    tee_dir: &Path,
    measurement: &Measurement,
    dev_root: Option<&Path>,
) -> Result<EnclaveHandle, BackendError> {
    match kind {
        EnclaveKind::Simulated => crate::enclave::simulated(tee_dir, measurement, dev_root)
            .map_err(BackendError::Simulated),
        EnclaveKind::Nitro => open_nitro(),
    }
}

#[cfg(feature = "nitro")]
fn open_nitro() -> Result<EnclaveHandle, BackendError> {
    let nitro = daas_tee::NitroEnclave::open().map_err(BackendError::Nitro)?;
    Ok(EnclaveHandle {
        enclave: Arc::new(nitro),
        kind: "nitro",
        root: daas_tee::RootCert::aws_nitro(),
        root_pem: daas_tee::AWS_NITRO_ROOT_PEM.to_string(),
        evidence: None,
        enclave_object: None,
    })
}

#[cfg(not(feature = "nitro"))]
fn open_nitro() -> Result<EnclaveHandle, BackendError> {
    Err(BackendError::NitroNotBuilt)
}

/// Where the sealed state lives (`--datastore-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreConfig {
    /// etcd client URLs; empty: the embedded store `<data>/state.redb`.
    pub endpoints: Vec<String>,
    /// CA of etcd's serving certificate (`--datastore-cafile`).
    pub cafile: Option<PathBuf>,
    /// Client certificate presented to etcd (`--datastore-certfile`).
    pub certfile: Option<PathBuf>,
    /// Its private key (`--datastore-keyfile`).
    pub keyfile: Option<PathBuf>,
    /// etcd key prefix (`--datastore-prefix`).
    pub prefix: String,
}

impl Default for DatastoreConfig {
    fn default() -> Self {
        DatastoreConfig {
            endpoints: Vec::new(),
            cafile: None,
            certfile: None,
            keyfile: None,
            prefix: DEFAULT_DATASTORE_PREFIX.to_string(),
        }
    }
}

impl DatastoreConfig {
    /// From `--datastore-endpoint` (comma-separated, repeatable) and the TLS files.
    pub fn from_flags(
        endpoints: &[String],
        cafile: Option<PathBuf>,
        certfile: Option<PathBuf>,
        keyfile: Option<PathBuf>,
        prefix: Option<String>,
    ) -> Result<Self, BackendError> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty())
            .collect();
        for e in &endpoints {
            let rest = e
                .strip_prefix("https://")
                .or_else(|| e.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains('/')) {
                return Err(BackendError::BadEndpoint(e.clone()));
            }
        }
        if endpoints.is_empty() {
            for (flag, set) in [
                ("--datastore-cafile", cafile.is_some()),
                ("--datastore-certfile", certfile.is_some()),
                ("--datastore-keyfile", keyfile.is_some()),
            ] {
                if set {
                    return Err(BackendError::TlsWithoutEndpoint { flag });
                }
            }
        }
        if certfile.is_some() != keyfile.is_some() {
            return Err(BackendError::HalfIdentity);
        }
        let prefix = prefix.unwrap_or_else(|| DEFAULT_DATASTORE_PREFIX.to_string());
        if prefix.is_empty() {
            return Err(BackendError::EmptyPrefix);
        }
        Ok(DatastoreConfig {
            endpoints,
            cafile,
            certfile,
            keyfile,
            prefix,
        })
    }

    pub fn is_embedded(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// A short name of the datastore for messages and logs.
    pub fn describe(&self, data_dir: &Path) -> String {
        if self.is_embedded() {
            data_dir.join("state.redb").display().to_string()
        } else {
            format!("{} (prefix {})", self.endpoints.join(","), self.prefix)
        }
    }
}

#[cfg(feature = "etcd")]
fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, BackendError> {
    std::fs::read(path).map_err(|source| BackendError::File {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// Open the embedded store `<data_dir>/state.redb` sealed under `key` (owner-only file).
pub async fn open_embedded_store(
    data_dir: &Path,
    key: SealingKey,
) -> Result<Arc<dyn Store>, BackendError> {
    let path = data_dir.join("state.redb");
    let p = path.clone();
    let store = tokio::task::spawn_blocking(move || daas_store::EmbeddedStore::open(&p, key))
        .await
        .map_err(|e| BackendError::Embedded {
            path: path.clone(),
            source: daas_store::StoreError::Backend(format!("store open task: {e}")),
        })?
        .map_err(|source| BackendError::Embedded {
            path: path.clone(),
            source,
        })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            BackendError::Embedded {
                path: path.clone(),
                source: daas_store::StoreError::Backend(format!("chmod: {e}")),
            }
        })?;
    }
    Ok(Arc::new(store))
}

/// Open the datastore `cfg` names, sealed under `key` (the cluster key). A wrong key fails here
/// with the store's `Unseal` error, before anything is written.
pub async fn open_store(
    cfg: &DatastoreConfig,
    data_dir: &Path,
    key: SealingKey,
) -> Result<Arc<dyn Store>, BackendError> {
    if cfg.is_embedded() {
        return open_embedded_store(data_dir, key).await;
    }
    open_etcd(cfg, key).await
}

#[cfg(feature = "etcd")]
async fn open_etcd(cfg: &DatastoreConfig, key: SealingKey) -> Result<Arc<dyn Store>, BackendError> {
    let tls = if cfg.cafile.is_some() || cfg.certfile.is_some() {
        let ca_pem = match &cfg.cafile {
            Some(p) => Some(read_file("--datastore-cafile", p)?),
            None => None,
        };
        let identity = match (&cfg.certfile, &cfg.keyfile) {
            (Some(c), Some(k)) => Some((
                read_file("--datastore-certfile", c)?,
                read_file("--datastore-keyfile", k)?,
            )),
            _ => None,
        };
        Some(daas_store::EtcdTls { ca_pem, identity })
    } else {
        None
    };
    let opts = daas_store::EtcdOptions {
        tls,
        ..Default::default()
    };
    let store = daas_store::EtcdStore::connect_with(&cfg.endpoints, key, cfg.prefix.clone(), &opts)
        .await
        .map_err(|source| BackendError::Datastore {
            endpoints: cfg.endpoints.join(","),
            source,
        })?;
    // Watches are served from one etcd watch through a window of recent events (the cacher).
    let cached =
        daas_store::FanoutStore::start(Arc::new(store), daas_store::fanout::DEFAULT_WINDOW)
            .await
            .map_err(|source| BackendError::Datastore {
                endpoints: cfg.endpoints.join(","),
                source,
            })?;
    Ok(Arc::new(cached))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(
    _cfg: &DatastoreConfig,
    _key: SealingKey,
) -> Result<Arc<dyn Store>, BackendError> {
    Err(BackendError::EtcdNotBuilt)
}

/// Which ledger the master asks about stakes and seal tokens (`--ledger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// The embedded ledger's HTTP API (`daas chain` / `daas up`) at `--sui-rpc`.
    Embedded,
    /// A Sui fullnode's gRPC API at `--sui-rpc`, with the package deployment of `--sui-deployment`.
    Sui,
}

impl std::str::FromStr for LedgerKind {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, BackendError> {
        match s {
            "embedded" => Ok(LedgerKind::Embedded),
            "sui" => Ok(LedgerKind::Sui),
            other => Err(BackendError::UnknownLedger(other.to_string())),
        }
    }
}

impl std::fmt::Display for LedgerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LedgerKind::Embedded => "embedded",
            LedgerKind::Sui => "sui",
        })
    }
}

/// The ledger named by `--ledger`, `--sui-rpc` and (for Sui) `--sui-deployment`; none without
/// `--ledger` (then only static tokens, client certificates and service accounts authenticate).
pub fn open_ledger(
    kind: Option<LedgerKind>,
    rpc: Option<&str>,
    sui_deployment: Option<&Path>,
) -> Result<Option<Arc<dyn daas_ledger::Ledger>>, BackendError> {
    let rpc = rpc.map(str::trim).filter(|s| !s.is_empty());
    let Some(kind) = kind else {
        return match rpc {
            Some(_) => Err(BackendError::RpcWithoutLedger),
            None => Ok(None),
        };
    };
    match kind {
        LedgerKind::Embedded => {
            let url = rpc.ok_or(BackendError::LedgerWithoutRpc { kind: "embedded" })?;
            let l = daas_ledger::remote::RemoteLedger::new(url).map_err(|source| {
                BackendError::Ledger {
                    url: url.to_string(),
                    source,
                }
            })?;
            Ok(Some(Arc::new(l)))
        }
        LedgerKind::Sui => {
            let url = rpc.ok_or(BackendError::LedgerWithoutRpc { kind: "sui" })?;
            let path = sui_deployment.ok_or(BackendError::SuiWithoutDeployment)?;
            open_sui(url, path)
        }
    }
}

/// The deployment file of `--ledger sui`: a JSON object with `package`, `pool`, `gateway` and
/// optionally `admin_cap` and `enclave_config` (object ids); its `endpoint`, if any, is replaced
/// by `--sui-rpc`.
#[cfg(feature = "sui")]
fn open_sui(url: &str, path: &Path) -> Result<Option<Arc<dyn daas_ledger::Ledger>>, BackendError> {
    let bad = |reason: String| BackendError::SuiDeployment {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    match v.as_object_mut() {
        Some(m) => {
            m.insert(
                "endpoint".into(),
                serde_json::Value::String(url.to_string()),
            );
        }
        None => return Err(bad("not a JSON object".into())),
    }
    let cfg: daas_ledger::sui::SuiConfig =
        serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
    let l = daas_ledger::sui::SuiLedger::new(cfg).map_err(|source| BackendError::Ledger {
        url: url.to_string(),
        source,
    })?;
    Ok(Some(Arc::new(l)))
}

#[cfg(not(feature = "sui"))]
fn open_sui(
    _url: &str,
    _path: &Path,
) -> Result<Option<Arc<dyn daas_ledger::Ledger>>, BackendError> {
    Err(BackendError::SuiNotBuilt)
}

/// The enclave and the sealed store of a master with data directory `data_dir`: opens the
/// enclave (`<data>/tee` for the simulator's secret and the sealed cluster key), resolves the
/// cluster key ([`crate::clusterkey::resolve`]) and opens the datastore sealed under it.
pub async fn open_enclave_and_store(
    data_dir: &Path,
    enclave: EnclaveKind,
    measurement: &Measurement,
    dev_root: Option<&Path>,
    datastore: &DatastoreConfig,
) -> Result<(EnclaveHandle, Arc<dyn Store>), crate::MasterError> {
    crate::private_dir(data_dir)?;
    let handle = open_enclave(enclave, &data_dir.join("tee"), measurement, dev_root)?;
    let store = open_cluster_store(data_dir, &handle, datastore).await?;
    Ok((handle, store))
}

/// The datastore sealed under the cluster key this enclave keeps in `<data>/tee` (its own
/// sealing key when it holds none). A master joining a running cluster saves the key it was
/// handed ([`crate::clusterkey::save`]) between [`open_enclave`] and this call.
pub async fn open_cluster_store(
    data_dir: &Path,
    enclave: &EnclaveHandle,
    datastore: &DatastoreConfig,
) -> Result<Arc<dyn Store>, crate::MasterError> {
    let key = crate::clusterkey::resolve(&data_dir.join("tee"), enclave.enclave.as_ref())?;
    let store = open_store(datastore, data_dir, key.sealing_key()).await?;
    tracing::info!(
        enclave = enclave.kind,
        datastore = %datastore.describe(data_dir),
        key_id = %key.sealing_key().key_id_hex(),
        "backends open"
    );
    Ok(store)
}

impl crate::MasterConfig {
    /// A single master as `daas up` runs it: the simulated enclave (release measurement) and the
    /// embedded store in `data_dir`, no ledger. Tests start from this and change what they need.
    pub async fn embedded(
        data_dir: PathBuf,
        listen: std::net::SocketAddr,
    ) -> Result<Self, crate::MasterError> {
        let (enclave, store) = open_enclave_and_store(
            &data_dir,
            EnclaveKind::Simulated,
            &Measurement::Release,
            None,
            &DatastoreConfig::default(),
        )
        .await?;
        Ok(crate::MasterConfig::new(data_dir, listen, store, enclave))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_flags() {
        let d = DatastoreConfig::from_flags(&[], None, None, None, None).unwrap();
        assert!(d.is_embedded());
        assert_eq!(d.prefix, DEFAULT_DATASTORE_PREFIX);
        let d = DatastoreConfig::from_flags(
            &[
                "https://a:2379, https://b:2379/".into(),
                "https://c:2379".into(),
            ],
            Some("ca.pem".into()),
            Some("c.pem".into()),
            Some("k.pem".into()),
            Some("/x/".into()),
        )
        .unwrap();
        assert_eq!(
            d.endpoints,
            vec!["https://a:2379", "https://b:2379", "https://c:2379"]
        );
        assert_eq!(d.prefix, "/x/");
        assert!(matches!(
            DatastoreConfig::from_flags(&[], Some("ca".into()), None, None, None),
            Err(BackendError::TlsWithoutEndpoint {
                flag: "--datastore-cafile"
            })
        ));
        assert!(matches!(
            DatastoreConfig::from_flags(
                &["https://a:2379".into()],
                Some("ca".into()),
                Some("c".into()),
                None,
                None
            ),
            Err(BackendError::HalfIdentity)
        ));
        for bad in ["a:2379", "ftp://a", "https://", "https://a/b"] {
            assert!(
                matches!(
                    DatastoreConfig::from_flags(&[bad.into()], None, None, None, None),
                    Err(BackendError::BadEndpoint(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            DatastoreConfig::from_flags(&["http://a:1".into()], None, None, None, Some("".into())),
            Err(BackendError::EmptyPrefix)
        ));
    }

    #[test]
    fn enclave_and_ledger_kinds() {
        assert_eq!(
            "simulated".parse::<EnclaveKind>().unwrap(),
            EnclaveKind::Simulated
        );
        assert_eq!("nitro".parse::<EnclaveKind>().unwrap(), EnclaveKind::Nitro);
        assert!(matches!(
            "sgx".parse::<EnclaveKind>(),
            Err(BackendError::UnknownEnclave(_))
        ));
        assert_eq!("sui".parse::<LedgerKind>().unwrap(), LedgerKind::Sui);
        assert!(matches!(
            "eth".parse::<LedgerKind>(),
            Err(BackendError::UnknownLedger(_))
        ));
        assert!(open_ledger(None, None, None).unwrap().is_none());
        assert!(matches!(
            open_ledger(None, Some("http://x"), None),
            Err(BackendError::RpcWithoutLedger)
        ));
        assert!(matches!(
            open_ledger(Some(LedgerKind::Embedded), None, None),
            Err(BackendError::LedgerWithoutRpc { kind: "embedded" })
        ));
        assert!(
            open_ledger(Some(LedgerKind::Embedded), Some("http://127.0.0.1:1"), None)
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            open_ledger(Some(LedgerKind::Sui), Some("https://fullnode:443"), None),
            Err(BackendError::SuiWithoutDeployment)
        ));
    }

    /// Outside a Nitro Enclave (no /dev/nsm) `--enclave nitro` fails with a clear error and
    /// never falls back to the simulator.
    #[test]
    fn nitro_without_nsm_is_refused() {
        if Path::new("/dev/nsm").exists() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        match open_enclave(EnclaveKind::Nitro, d.path(), &Measurement::Release, None) {
            Ok(_) => panic!("nitro opened without /dev/nsm"),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("--enclave nitro"), "{msg}");
                #[cfg(feature = "nitro")]
                assert!(msg.contains("/dev/nsm"), "{msg}");
            }
        }
        assert!(std::fs::read_dir(d.path()).unwrap().next().is_none());
    }

    /// The embedded store refuses a key other than the one it was sealed with.
    #[tokio::test]
    async fn embedded_store_refuses_another_key() {
        let d = tempfile::tempdir().unwrap();
        let k = SealingKey::from_bytes([1; 32]);
        let s = open_store(&DatastoreConfig::default(), d.path(), k)
            .await
            .unwrap();
        s.create("/a", b"x").await.unwrap();
        drop(s);
        match open_store(
            &DatastoreConfig::default(),
            d.path(),
            SealingKey::from_bytes([2; 32]),
        )
        .await
        {
            Err(BackendError::Embedded {
                source: daas_store::StoreError::Unseal(_),
                ..
            }) => {}
            Err(e) => panic!("expected Unseal, got {e}"),
            Ok(_) => panic!("opened with another key"),
        }
    }

    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn etcd_store_refuses_another_key_and_plain_etcd_needs_no_tls() {
        let etcd = daas_store::etcd_server::EtcdProcess::start().await.unwrap();
        let d = tempfile::tempdir().unwrap();
        let cfg = DatastoreConfig::from_flags(
            &[etcd.endpoint().to_string()],
            None,
            None,
            None,
            Some("/t/".into()),
        )
        .unwrap();
        let s = open_store(&cfg, d.path(), SealingKey::from_bytes([1; 32]))
            .await
            .unwrap();
        s.create("/a", b"x").await.unwrap();
        match open_store(&cfg, d.path(), SealingKey::from_bytes([2; 32])).await {
            Err(BackendError::Datastore {
                source: daas_store::StoreError::Unseal(_),
                endpoints,
            }) => assert_eq!(endpoints, etcd.endpoint()),
            Err(e) => panic!("expected Unseal, got {e}"),
            Ok(_) => panic!("opened with another key"),
        }
        // TLS files against an http:// endpoint are a configuration error, not a silent downgrade.
        let ca = d.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let tls =
            DatastoreConfig::from_flags(&[etcd.endpoint().to_string()], Some(ca), None, None, None)
                .unwrap();
        assert!(matches!(
            open_store(&tls, d.path(), SealingKey::from_bytes([1; 32])).await,
            Err(BackendError::Datastore { .. })
        ));
    }

    /// A second master on the same etcd opens the store only with the cluster key saved in its
    /// own enclave directory (what `--join` does after the attested handoff); with its own
    /// enclave's key it gets the Unseal error.
    #[cfg(feature = "etcd")]
    #[tokio::test]
    async fn a_second_enclave_needs_the_cluster_key() {
        let etcd = daas_store::etcd_server::EtcdProcess::start().await.unwrap();
        let ds =
            DatastoreConfig::from_flags(&[etcd.endpoint().to_string()], None, None, None, None)
                .unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let m = Measurement::Release;
        let (ea, sa) = open_enclave_and_store(a.path(), EnclaveKind::Simulated, &m, None, &ds)
            .await
            .unwrap();
        sa.create("/registry/x", b"1").await.unwrap();
        let eb = open_enclave(EnclaveKind::Simulated, &b.path().join("tee"), &m, None).unwrap();
        match open_cluster_store(b.path(), &eb, &ds).await {
            Err(crate::MasterError::Backend(BackendError::Datastore {
                source: StoreError::Unseal(_),
                ..
            })) => {}
            Err(e) => panic!("expected Unseal, got {e}"),
            Ok(_) => panic!("opened with another enclave's key"),
        }
        let key = crate::clusterkey::resolve(&a.path().join("tee"), ea.enclave.as_ref()).unwrap();
        crate::clusterkey::save(&b.path().join("tee"), eb.enclave.as_ref(), &key).unwrap();
        let sb = open_cluster_store(b.path(), &eb, &ds).await.unwrap();
        assert_eq!(sb.get("/registry/x").await.unwrap().unwrap().value, b"1");
    }
}
