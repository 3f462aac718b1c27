//! The backend flags of `daas master` (and `daas up`): which enclave, which datastore, which
//! ledger. Names follow k3s where it has them (`--datastore-endpoint`, `--datastore-cafile`,
//! `--datastore-certfile`, `--datastore-keyfile`); every flag is also a `--config` file key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use daas_master::backends::{
    self, DatastoreConfig, EnclaveKind, LedgerKind, DEFAULT_DATASTORE_PREFIX,
};
use daas_master::{EnclaveHandle, Measurement};

/// Where the cluster's state lives: `daas master` and `daas snapshot restore` take the same flags.
#[derive(Args, Clone, Debug)]
pub struct DatastoreArgs {
    /// etcd client URLs of the cluster's datastore, comma-separated
    /// (`https://etcd1:2379,https://etcd2:2379`). Absent: the embedded store in the data directory.
    #[arg(long = "datastore-endpoint", value_delimiter = ',')]
    pub datastore_endpoint: Vec<String>,
    /// CA certificate (PEM) that signed etcd's serving certificate.
    #[arg(long)]
    pub datastore_cafile: Option<PathBuf>,
    /// Client certificate (PEM) this master presents to etcd (etcd's `--client-cert-auth`).
    #[arg(long)]
    pub datastore_certfile: Option<PathBuf>,
    /// Private key (PEM) of `--datastore-certfile`.
    #[arg(long)]
    pub datastore_keyfile: Option<PathBuf>,
    /// etcd key prefix every key of this cluster lives under.
    #[arg(long, default_value = DEFAULT_DATASTORE_PREFIX)]
    pub datastore_prefix: String,
}

impl DatastoreArgs {
    pub fn config(&self) -> Result<DatastoreConfig, backends::BackendError> {
        DatastoreConfig::from_flags(
            &self.datastore_endpoint,
            self.datastore_cafile.clone(),
            self.datastore_certfile.clone(),
            self.datastore_keyfile.clone(),
            Some(self.datastore_prefix.clone()),
        )
    }
}

#[derive(Args, Clone, Debug)]
pub struct BackendArgs {
    #[command(flatten)]
    pub datastore: DatastoreArgs,
    /// Enclave backend: `simulated` (development root) or `nitro` (AWS Nitro Enclave, /dev/nsm).
    #[arg(long, default_value = "simulated")]
    pub enclave: EnclaveKind,
    /// Ledger holding stakes and seal tokens: `embedded` (the `daas chain` / `daas up` HTTP API
    /// at --sui-rpc) or `sui` (a Sui fullnode's gRPC API at --sui-rpc). Absent: no ledger, only
    /// the admin token, client certificates and service accounts authenticate.
    #[arg(long)]
    pub ledger: Option<LedgerKind>,
    /// Endpoint of the ledger named by --ledger.
    #[arg(long)]
    pub sui_rpc: Option<String>,
    /// With `--ledger sui`: JSON file with the ids of the published package (`package`, `pool`,
    /// `gateway`, optionally `admin_cap`, `enclave_config`).
    #[arg(long)]
    pub sui_deployment: Option<PathBuf>,
}

impl BackendArgs {
    pub fn datastore(&self) -> Result<DatastoreConfig, backends::BackendError> {
        self.datastore.config()
    }

    /// Open the enclave and the datastore (sealed under the cluster key). The simulated
    /// enclave's dev root is kept in `dev_root` when given (`--enclave-dev-root`). With `join`
    /// (`--server`), a master that keeps no cluster key yet gets it from that running master over
    /// the attested key share before the store is opened.
    pub async fn open(
        &self,
        data_dir: &Path,
        measurement: &Measurement,
        dev_root: Option<&Path>,
        join: Option<&str>,
    ) -> anyhow::Result<(EnclaveHandle, Arc<dyn backends::Store>)> {
        use anyhow::Context;
        let ds = self.datastore()?;
        daas_master::private_dir(data_dir)?;
        let tee = data_dir.join("tee");
        let handle = backends::open_enclave(self.enclave, &tee, measurement, dev_root)?;
        if let Some(server) = join {
            daas_master::keyshare::obtain_if_absent(server, &handle, &tee)
                .await
                .with_context(|| format!("getting the cluster key from {server}"))?;
        }
        let store = backends::open_cluster_store(data_dir, &handle, &ds).await?;
        Ok((handle, store))
    }

    /// [`BackendArgs::open`], with what to do about a datastore that cannot be reached.
    pub async fn open_explained(
        &self,
        data_dir: &Path,
        measurement: &Measurement,
        dev_root: Option<&Path>,
        join: Option<&str>,
    ) -> anyhow::Result<(EnclaveHandle, Arc<dyn backends::Store>)> {
        self.open(data_dir, measurement, dev_root, join).await.map_err(|e| {
            use daas_master::MasterError;
            use daas_master::backends::StoreError;
            let hint = match e.downcast_ref::<MasterError>() {
                Some(MasterError::Backend(backends::BackendError::Datastore {
                    source: StoreError::Unseal(_),
                    ..
                })) => Some("this etcd prefix belongs to another cluster: join it from a running master, or use another --datastore-prefix"),
                Some(MasterError::Backend(backends::BackendError::Datastore { .. })) => Some(
                    "check --datastore-endpoint, and that etcd trusts the CA of --datastore-certfile (its --trusted-ca-file) and --datastore-cafile is the CA of etcd's serving certificate",
                ),
                _ => None,
            };
            match hint {
                Some(h) => crate::report::with_hint(e, h),
                None => e,
            }
        })
    }

    /// The ledger of `--ledger`/`--sui-rpc`, if any.
    pub fn ledger(&self) -> Result<Option<Arc<dyn daas_ledger::Ledger>>, backends::BackendError> {
        backends::open_ledger(
            self.ledger,
            self.sui_rpc.as_deref(),
            self.sui_deployment.as_deref(),
        )
    }

    /// Whether any ledger flag was given (`daas up` runs its own ledger and takes none).
    pub fn names_a_ledger(&self) -> bool {
        self.ledger.is_some() || self.sui_rpc.is_some() || self.sui_deployment.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::Path;

    use clap::Parser;

    use super::*;

    fn master(file: &str, typed: &[&str]) -> crate::MasterArgs {
        let file = crate::config_file::args_from_str(file, Path::new("c.yaml"), "master")
            .expect("valid config");
        let typed: Vec<OsString> = typed.iter().map(OsString::from).collect();
        let merged = crate::config_file::merge(&typed, file);
        match crate::Cli::try_parse_from(merged).expect("parses").cmd {
            crate::Cmd::Master(m) => *m,
            _ => panic!("not master"),
        }
    }

    /// The backend flags are config-file keys too; a list or a comma list of endpoints.
    #[test]
    fn backend_flags_from_the_config_file_and_the_command_line() {
        let m = master(
            "datastore-endpoint: [https://e1:2379, https://e2:2379]\ndatastore-cafile: /etc/etcd/ca.crt\ndatastore-certfile: /etc/etcd/c.crt\ndatastore-keyfile: /etc/etcd/c.key\nenclave: nitro\nledger: embedded\nsui-rpc: http://chain:9100\n",
            &["daas", "master"],
        );
        let ds = m.backends.datastore().expect("datastore");
        assert_eq!(ds.endpoints, vec!["https://e1:2379", "https://e2:2379"]);
        assert_eq!(ds.prefix, DEFAULT_DATASTORE_PREFIX);
        assert_eq!(ds.cafile.as_deref(), Some(Path::new("/etc/etcd/ca.crt")));
        assert_eq!(m.backends.enclave, EnclaveKind::Nitro);
        assert_eq!(m.backends.ledger, Some(LedgerKind::Embedded));
        assert!(m.backends.ledger().expect("ledger").is_some());
        let m = master(
            "",
            &[
                "daas",
                "master",
                "--datastore-endpoint",
                "http://a:2379,http://b:2379",
                "--datastore-prefix",
                "/other/",
            ],
        );
        let ds = m.backends.datastore().expect("datastore");
        assert_eq!(ds.endpoints, vec!["http://a:2379", "http://b:2379"]);
        assert_eq!(ds.prefix, "/other/");
        assert_eq!(m.backends.enclave, EnclaveKind::Simulated);
        assert!(m.backends.ledger().expect("no ledger").is_none());
        // Defaults: the embedded store, the simulated enclave, no ledger.
        let m = master("", &["daas", "master"]);
        assert!(m.backends.datastore().expect("datastore").is_embedded());
        assert!(!m.backends.names_a_ledger());
        let bad = crate::Cli::try_parse_from(["daas", "master", "--enclave", "sgx"]);
        assert!(bad.is_err());
    }
}
