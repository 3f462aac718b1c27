//! What a master runs besides the API: the controller groups under leader election, and the
//! per-master tasks.
//!
//! - Lease `kube-system/kube-controller-manager`: every controller (workloads, garbage collector,
//!   node lifecycle with the slasher, ServiceRepair, nodeipam, root CA, service accounts, CSR
//!   signing, staked nodes, kube-dns), the store compactor and the ledger anchorer;
//! - Lease `kube-system/kube-scheduler`: the scheduler;
//! - every master, leader or not: its identity Lease `kube-system/kube-apiserver-<id>` (renewed
//!   every 10 s, address and port in annotations, stale peers' Leases collected), the `kubernetes`
//!   Service's endpoint reconciler over the fresh identity Leases, and the user-namespace
//!   controller (its demand is recorded by this master's authenticator, in memory).
//!
//! A single master wins both elections at once and behaves as without election; restarted
//! after a crash (same host and data directory, so the same master id) it reclaims the Leases
//! of its previous run at once instead of waiting for them to expire.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use daas_apiserver::{ApiError, LocalClient};
use daas_controllers::cronjob::{Clock, SystemClock};
use daas_controllers::informer::Informers;
use daas_controllers::kubernetesservice::{
    self, ADDRESS_ANNOTATION, IDENTITY_LABEL, IDENTITY_LABEL_VALUE, PORT_ANNOTATION,
};
use daas_controllers::leaderelection::{
    self, micro_time, run_elected_on, Elected, ElectionConfig, ElectionRuntime,
};
use daas_controllers::{spawn_controller, ControllerOptions};
use daas_store::Store;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

pub use daas_controllers::leaderelection::{parse_duration, Timings as ElectionTimings};

/// Leader election and API server identity settings (`daas master --leader-elect-*`).
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// `--leader-elect-lease-duration`, `--leader-elect-renew-deadline`,
    /// `--leader-elect-retry-period` (15 s, 10 s, 2 s).
    pub timings: ElectionTimings,
    /// How often this master renews its identity Lease (upstream 10 s).
    pub identity_renew_interval: Duration,
    /// An identity Lease renewed within this long puts its master in the `kubernetes`
    /// Endpoints (upstream's master endpoint TTL, 15 s).
    pub endpoint_ttl: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            timings: ElectionTimings::default(),
            identity_renew_interval: Duration::from_secs(10),
            endpoint_ttl: Duration::from_secs(15),
        }
    }
}

/// Upstream's identity Lease duration: a Lease not renewed for an hour is garbage.
pub const IDENTITY_LEASE_SECONDS: i64 = 3600;
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The stable id of a master: 16 hex digits of SHA-256 over the host name and the data
/// directory (two masters on one host differ; a restarted master keeps its id).
pub fn master_id(data_dir: &Path) -> String {
    use sha2::Digest;
    let dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    let mut h = sha2::Sha256::new();
    h.update(hostname().as_bytes());
    h.update([0]);
    h.update(dir.to_string_lossy().as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The leader-election identity of this process: `<master id>_<random>` (upstream:
/// `<hostname>_<uuid>`); the prefix names the master's identity Lease `kube-apiserver-<id>`.
pub fn election_identity(master_id: &str) -> String {
    format!("{master_id}_{}", crate::random_hex(8))
}

/// The controllers of the `kube-controller-manager` group and what they need; started anew on
/// every win of the Lease.
pub struct ControllerSet {
    pub client: LocalClient,
    pub opts: ControllerOptions,
    pub store: Arc<dyn Store>,
    pub compact_interval: Duration,
    pub retain_revisions: i64,
    pub service_ranges: daas_apiserver::registry::ipalloc::ServiceRanges,
    pub node_grace: Duration,
    /// Eviction rates, zone thresholds and the slash delay of the node lifecycle controller.
    pub node_eviction: daas_controllers::nodelifecycle::EvictionConfig,
    pub node_failures: Option<Arc<dyn daas_controllers::nodelifecycle::NodeFailureHandler>>,
    pub stakes: Option<Arc<dyn daas_controllers::stakednodes::StakeDirectory>>,
    pub anchorer: Option<(Arc<crate::anchor::Anchorer>, Duration)>,
    pub cluster_cidr: String,
    pub node_cidr_mask_size: u8,
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    /// Scheduled snapshots: one master of the cluster takes them.
    pub snapshots: Option<(Arc<crate::snapshot::Snapshotter>, crate::snapshot::Schedule)>,
    /// Metering and settlement: one master of the cluster bills.
    pub billing: Option<Arc<crate::billing::Billing>>,
}

impl ControllerSet {
    /// Check what [`spawn`](Self::spawn) will build (CIDRs, the CA), so a bad flag fails the
    /// start instead of every election win.
    pub fn validate(&self) -> Result<(), crate::MasterError> {
        daas_controllers::nodeipam::NodeIpamController::new(
            self.client.clone(),
            &self.cluster_cidr,
            self.node_cidr_mask_size,
        )
        .map_err(|e| {
            crate::MasterError::Config(format!("--cluster-cidr/--node-cidr-mask-size: {e}"))
        })?;
        daas_apiserver::registry::csr::SigningCa::from_pem(&self.ca_cert_pem, &self.ca_key_pem)
            .map_err(|e| crate::MasterError::Config(format!("cluster CA: {e}")))?;
        Ok(())
    }

    /// Start the group (kube-controller-manager's controllers, compactor, anchorer) on caches
    /// of its own.
    pub fn spawn(&self) -> Vec<JoinHandle<()>> {
        self.spawn_on(&Informers::new(self.client.clone()))
    }

    /// Start the group reading from the shared caches `inf` (the master hands the scheduler
    /// the same ones).
    pub fn spawn_on(&self, inf: &Informers) -> Vec<JoinHandle<()>> {
        let c = &self.client;
        let opts = &self.opts;
        let mut tasks =
            daas_controllers::spawn_controller_manager_with(inf, c.clone(), opts.clone());
        tasks.push(daas_apiserver::spawn_compactor(
            self.store.clone(),
            self.compact_interval,
            self.retain_revisions,
        ));
        // Events expire after kube-apiserver's default --event-ttl (1 h).
        tasks.push(daas_apiserver::eventttl::spawn_event_expiry(
            self.store.clone(),
            daas_apiserver::eventttl::DEFAULT_EVENT_TTL,
            Duration::from_secs(60),
        ));
        tasks.push(spawn_controller(
            c.clone(),
            daas_controllers::servicerepair::ServiceRepair::new(
                c.clone(),
                daas_apiserver::registry::ipalloc::Allocators::new(
                    self.store.clone(),
                    self.service_ranges.clone(),
                ),
                Duration::from_secs(60),
            ),
            opts,
        ));
        if let Some((a, every)) = &self.anchorer {
            tasks.push(a.clone().spawn(*every));
        }
        if let Some((s, schedule)) = &self.snapshots {
            tasks.extend(crate::snapshot::spawn(s.clone(), schedule.clone()));
        }
        if let Some(b) = &self.billing {
            tasks.push(b.clone().spawn());
        }
        if let Some(stakes) = &self.stakes {
            tasks.push(spawn_controller(
                c.clone(),
                daas_controllers::stakednodes::StakedNodeController::new(c.clone(), stakes.clone())
                    .with_informers(inf.clone()),
                opts,
            ));
        }
        match daas_controllers::nodeipam::NodeIpamController::new(
            c.clone(),
            &self.cluster_cidr,
            self.node_cidr_mask_size,
        ) {
            Ok(ipam) => tasks.push(spawn_controller(
                c.clone(),
                ipam.with_informers(inf.clone()),
                opts,
            )),
            Err(e) => tracing::error!(error = %e, "nodeipam controller not started"),
        }
        tasks.push(spawn_controller(
            c.clone(),
            daas_controllers::nodelifecycle::NodeLifecycleController::new(
                c.clone(),
                self.node_grace,
                self.node_failures.clone(),
            )
            .with_eviction(self.node_eviction.clone())
            .with_informers(inf.clone()),
            opts,
        ));
        tasks.push(spawn_controller(
            c.clone(),
            daas_controllers::rootca::RootCaPublisher::new(c.clone(), self.ca_cert_pem.clone()),
            opts,
        ));
        tasks.push(spawn_controller(
            c.clone(),
            daas_controllers::serviceaccounts::ServiceAccountsController::new(c.clone()),
            opts,
        ));
        match daas_apiserver::registry::csr::SigningCa::from_pem(
            &self.ca_cert_pem,
            &self.ca_key_pem,
        ) {
            Ok(ca) => tasks.push(spawn_controller(
                c.clone(),
                daas_controllers::csrsigning::CsrSigner::new(c.clone(), ca),
                opts,
            )),
            Err(e) => tracing::error!(error = %e, "CSR signer not started"),
        }
        tasks.push(spawn_controller(
            c.clone(),
            daas_controllers::kubedns::KubeDnsController::new(
                c.clone(),
                daas_controllers::kubedns::default_cluster_dns(self.service_ranges.first_ip()),
            ),
            opts,
        ));
        tasks
    }
}

/// Where this master is reached, for its identity Lease and the `kubernetes` Endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Advertise {
    pub cluster_ip: Ipv4Addr,
    pub address: IpAddr,
    pub port: u16,
}

/// The running control plane of one master: both elections and the per-master tasks.
pub struct ControlPlane {
    /// `holderIdentity` this master writes into the Leases it leads.
    pub identity: String,
    /// Name of this master's identity Lease in `kube-system` (`kube-apiserver-<id>`).
    pub identity_lease: String,
    client: LocalClient,
    elections: Mutex<Vec<Elected>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ControlPlane {
    /// Start the elections and the per-master tasks. `per_master` are further tasks every
    /// master runs (e.g. the user-namespace controller).
    pub fn start(
        set: ControllerSet,
        le: &LeaderElection,
        master_id: &str,
        advertise: Advertise,
        per_master: Vec<JoinHandle<()>>,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Result<ControlPlane, crate::MasterError> {
        le.timings
            .validate()
            .map_err(|e| crate::MasterError::Config(e.to_string()))?;
        if le.identity_renew_interval.is_zero() || le.endpoint_ttl <= le.identity_renew_interval {
            return Err(crate::MasterError::Config(
                "the endpoint TTL must be longer than the identity lease renew interval".into(),
            ));
        }
        set.validate()?;
        let identity = election_identity(master_id);
        let identity_lease = format!("kube-apiserver-{master_id}");
        let client = set.client.clone();
        let opts = set.opts.clone();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut tasks = per_master;
        tasks.push(tokio::spawn(identity_loop(
            client.clone(),
            identity_lease.clone(),
            advertise,
            le.identity_renew_interval,
            clock.clone(),
        )));
        tasks.push(spawn_controller(
            client.clone(),
            kubernetesservice::KubernetesServiceController::new(
                client.clone(),
                advertise.cluster_ip,
                advertise.address,
                advertise.port,
            )
            .with_peers(le.endpoint_ttl, clock.clone()),
            &opts,
        ));
        // One set of shared caches (pods, nodes, ...) for both groups: each collection is
        // listed, watched and held once in this master.
        let informers = Informers::new(client.clone());
        let cm_informers = informers.clone();
        // The elections renew on a runtime of their own: a loaded main runtime cannot make
        // them miss the renew deadline.
        let election_rt = ElectionRuntime::start("daas-leader-election").map_err(|source| {
            crate::MasterError::Io {
                context: "starting the leader election thread".into(),
                source,
            }
        })?;
        let election = |name: &str| {
            let cfg = ElectionConfig::new(name, identity.clone())
                .with_timings(le.timings)
                .with_clock(clock.clone())
                .with_reclaim_prefix(format!("{master_id}_"));
            match &metrics {
                Some(m) => cfg.with_metrics(m.clone()),
                None => cfg,
            }
        };
        let cm = run_elected_on(
            &election_rt,
            client.clone(),
            election(leaderelection::CONTROLLER_MANAGER_LEASE),
            move || set.spawn_on(&cm_informers),
        );
        let sched = run_elected_on(
            &election_rt,
            client.clone(),
            election(leaderelection::SCHEDULER_LEASE),
            move || vec![daas_controllers::spawn_scheduler_with(&informers, &opts)],
        );
        tracing::info!(%identity, %identity_lease, "control plane started");
        Ok(ControlPlane {
            identity,
            identity_lease,
            client,
            elections: Mutex::new(vec![cm, sched]),
            tasks: Mutex::new(tasks),
        })
    }

    /// Does this master run the controllers (hold `kube-controller-manager`)?
    pub fn leads_controllers(&self) -> bool {
        self.leads(leaderelection::CONTROLLER_MANAGER_LEASE)
    }

    /// Does this master run the scheduler (hold `kube-scheduler`)?
    pub fn leads_scheduler(&self) -> bool {
        self.leads(leaderelection::SCHEDULER_LEASE)
    }

    fn leads(&self, name: &str) -> bool {
        let lease = format!("{}/{name}", leaderelection::LEASE_NAMESPACE);
        self.elections
            .lock()
            .map(|e| e.iter().any(|x| x.lease() == lease && x.is_leader()))
            .unwrap_or(false)
    }

    /// Graceful stop: the groups stop and their Leases are released (the other master takes
    /// over at once), the per-master tasks stop and the identity Lease is deleted (the other
    /// masters drop this one from the `kubernetes` Endpoints).
    pub async fn shutdown(&self) {
        let elections = self
            .elections
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default();
        futures::future::join_all(elections.into_iter().map(Elected::shutdown)).await;
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Err(e) = self
            .client
            .delete_ignore_missing(&format!("{LEASES}/{}", self.identity_lease))
            .await
        {
            tracing::warn!(error = %e, "deleting the identity lease failed");
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            for t in tasks.iter() {
                t.abort();
            }
        }
    }
}

/// The identity Lease as it should be at `now` (keeping `acquireTime` of `current`).
fn identity_lease(name: &str, a: Advertise, now: DateTime<Utc>, current: Option<&Value>) -> Value {
    let stamp = micro_time(now);
    let acquire = current
        .and_then(|c| c["spec"]["acquireTime"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| stamp.clone());
    let mut lease = current.cloned().unwrap_or_else(|| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": leaderelection::LEASE_NAMESPACE}})
    });
    lease["metadata"]["labels"][IDENTITY_LABEL] = json!(IDENTITY_LABEL_VALUE);
    lease["metadata"]["labels"]["kubernetes.io/hostname"] = json!(hostname());
    lease["metadata"]["annotations"][ADDRESS_ANNOTATION] = json!(a.address.to_string());
    lease["metadata"]["annotations"][PORT_ANNOTATION] = json!(a.port.to_string());
    lease["spec"] = json!({
        "holderIdentity": name,
        "leaseDurationSeconds": IDENTITY_LEASE_SECONDS,
        "acquireTime": acquire,
        "renewTime": stamp,
    });
    lease
}

/// Create or renew this master's identity Lease; delete identity Leases expired for good.
pub async fn renew_identity(
    client: &LocalClient,
    name: &str,
    a: Advertise,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let path = format!("{LEASES}/{name}");
    match client.get_opt(&path).await? {
        None => match client
            .create(LEASES, &identity_lease(name, a, now, None))
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        },
        Some(cur) => match client
            .update(&path, &identity_lease(name, a, now, Some(&cur)))
            .await
        {
            Ok(_) => {}
            // Somebody else wrote it meanwhile; the next round renews again.
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        },
    }
    // Upstream's apiserver lease garbage collector.
    for l in client
        .list(&kubernetesservice::identity_leases_path())
        .await?
    {
        if leaderelection::live_holder(&l, now).is_none() {
            if let Some(n) = l["metadata"]["name"].as_str().filter(|n| *n != name) {
                tracing::info!(lease = n, "deleting an expired API server identity lease");
                client
                    .delete_ignore_missing(&format!("{LEASES}/{n}"))
                    .await?;
            }
        }
    }
    Ok(())
}

async fn identity_loop(
    client: LocalClient,
    name: String,
    a: Advertise,
    every: Duration,
    clock: Arc<dyn Clock>,
) {
    loop {
        if let Err(e) = renew_identity(&client, &name, a, clock.now()).await {
            tracing::warn!(lease = %name, error = %e, "renewing the identity lease failed");
        }
        tokio::time::sleep(every).await;
    }
}
