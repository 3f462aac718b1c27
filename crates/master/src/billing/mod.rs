//! Billing: the master side of the economy. Every `metering_interval` the [`meter::Meter`]
//! integrates each verified node's stats summary per (user namespace, node); every
//! `settlement_period` the [`Billing`] loop turns the period into a usage report (lines sorted by
//! user, then node, each with the node's current stake generation), which the
//! [`ledger::BillingLedger`] signs with the enclave key (intent 3) and submits as
//! `economy::settle`. The period number is the market's `last_period + 1`, read before every
//! settlement, so a restarted master never replays one. A refused settlement is logged with its
//! abort code and its usage is carried into the next report. After each settlement every user
//! namespace's `daas.io/v1` Usage `current` is refreshed and the [`enforcer`] scales dry
//! namespaces to zero after the grace period (and back when funded).

pub mod adapter;
pub mod enforcer;
pub mod ledger;
pub mod meter;
pub mod stats;
pub mod usage;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use daas_apiserver::LocalClient;
use sui_sdk_types::Address;
use tokio::sync::Mutex;

use crate::metrics::Metrics;
use enforcer::{Action, Funding};
use ledger::{BillingLedger, BillingLedgerError, Report, ReportLine};
use meter::{Meter, Metered, StatsSource};

/// Billing's flags (`--settlement-period`, `--metering-interval`, `--escrow-grace`).
#[derive(Debug, Clone)]
pub struct BillingConfig {
    pub settlement_period: Duration,
    pub metering_interval: Duration,
    pub escrow_grace: Duration,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            settlement_period: Duration::from_secs(60),
            metering_interval: Duration::from_secs(10),
            escrow_grace: Duration::from_secs(600),
        }
    }
}

/// Which user address owns which user namespace (`u-` + the first 16 hex digits of the
/// address). The namespace name alone does not give the address the ledger needs: the
/// seal-token authenticator records each user it validates, and the Usage objects (written only
/// by the master) keep it across restarts.
#[derive(Clone, Default)]
pub struct Owners(Arc<RwLock<HashMap<String, Address>>>);

impl Owners {
    pub fn record(&self, owner: Address) {
        let ns = crate::auth::user_namespace(&owner);
        if self.get(&ns) == Some(owner) {
            return;
        }
        if let Ok(mut m) = self.0.write() {
            m.insert(ns, owner);
        }
    }

    pub fn get(&self, ns: &str) -> Option<Address> {
        self.0.read().ok().and_then(|m| m.get(ns).copied())
    }
}

/// What the last accepted settlement charged one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCharge {
    pub period: u64,
    pub charged: u64,
    pub at_ms: u64,
}

struct Inner {
    meter: Meter,
    period_start_ms: u64,
    funding: HashMap<String, Funding>,
    /// Per user namespace: the last settlement that included it.
    last: HashMap<String, LastCharge>,
}

pub struct Billing {
    pub config: BillingConfig,
    ledger: Arc<dyn BillingLedger>,
    stats: Arc<dyn StatsSource>,
    client: LocalClient,
    owners: Owners,
    metrics: Arc<Metrics>,
    inner: Mutex<Inner>,
}

impl Billing {
    pub fn new(
        config: BillingConfig,
        ledger: Arc<dyn BillingLedger>,
        stats: Arc<dyn StatsSource>,
        client: LocalClient,
        owners: Owners,
        metrics: Arc<Metrics>,
    ) -> Self {
        Billing {
            config,
            ledger,
            stats,
            client,
            owners,
            metrics,
            inner: Mutex::new(Inner {
                meter: Meter::new(),
                period_start_ms: crate::now_ms(),
                funding: HashMap::new(),
                last: HashMap::new(),
            }),
        }
    }

    /// One metering pass.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn meter(&self, now_ms: u64) {
        let mut g = self.inner.lock().await;
        if let Err(e) = g.meter.pass(self.stats.as_ref(), now_ms).await {
            tracing::warn!(error = %e, "metering pass failed");
        }
    }

    /// The owner of a user namespace: recorded by the authenticator, else the one its Usage
    /// object names (written by the master only).
    async fn owner(&self, ns: &str) -> Option<Address> {
        if let Some(a) = self.owners.get(ns) {
            return Some(a);
        }
        let u = self.client.get_opt(&usage::path(ns)).await.ok().flatten()?;
        let a: Address = u["status"]["user"].as_str()?.parse().ok()?;
        (crate::auth::user_namespace(&a) == ns).then(|| {
            self.owners.record(a);
            a
        })
    }

    /// Build the report of `metered`: lines whose namespace has a known owner (the others are
    /// returned to be carried over), each with its node's stake generation; a node's uptime goes
    /// on its first line.
    async fn report(
        &self,
        period: u64,
        start_ms: u64,
        end_ms: u64,
        metered: &Metered,
    ) -> Result<(Report, Metered, HashMap<Address, String>), BillingLedgerError> {
        let mut lines = Vec::new();
        let mut carry = Metered::default();
        let mut names = HashMap::new();
        let mut gens: BTreeMap<String, u64> = BTreeMap::new();
        for l in &metered.lines {
            let Some(user) = self.owner(&l.namespace).await else {
                carry.lines.push(l.clone());
                continue;
            };
            names.insert(user, l.namespace.clone());
            let generation = match gens.get(&l.node) {
                Some(g) => *g,
                None => {
                    // A node no stake holds: the ledger skips the line (nothing charged).
                    let g = self.ledger.node_generation(&l.node).await?.unwrap_or(0);
                    gens.insert(l.node.clone(), g);
                    g
                }
            };
            lines.push(ReportLine {
                user,
                node_id: l.node.clone(),
                generation,
                cpu_ms: l.units.cpu_ms,
                mem_mib_s: l.units.mem_mib_s,
                pod_s: l.units.pod_s,
                uptime_ms: 0,
            });
        }
        lines.sort_by(|a, b| (a.user, &a.node_id).cmp(&(b.user, &b.node_id)));
        let mut paid_uptime = std::collections::HashSet::new();
        for l in lines.iter_mut() {
            if paid_uptime.insert(l.node_id.clone()) {
                l.uptime_ms = metered.uptime_ms.get(&l.node_id).copied().unwrap_or(0);
            }
        }
        Ok((
            Report {
                period,
                period_start_ms: start_ms,
                period_end_ms: end_ms,
                lines,
            },
            carry,
            names,
        ))
    }

    /// End the period: settle it on the ledger (or carry it over), then refresh the Usage
    /// objects and enforce dry escrow.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn settle(&self, now_ms: u64) {
        let mut g = self.inner.lock().await;
        let metered = g.meter.take();
        let start = g.period_start_ms;
        let result = self.settle_metered(&mut g, &metered, start, now_ms).await;
        match result {
            Ok(Some(period)) => {
                g.period_start_ms = now_ms;
                tracing::info!(period, "usage settled");
            }
            Ok(None) => {
                g.period_start_ms = now_ms;
            }
            Err(e) => {
                // Carried into the next report: nothing metered is lost.
                g.meter.restore(&metered);
                let code = match &e {
                    BillingLedgerError::Aborted { code } => code.to_string(),
                    _ => String::new(),
                };
                self.metrics.inc(
                    "daas_settlements_total",
                    "Usage settlements submitted to the ledger, by result.",
                    &[("result", "refused")],
                    1.0,
                );
                tracing::warn!(error = %e, abort = %code, "settlement refused; usage carried over");
            }
        }
        drop(g);
        self.publish(now_ms).await;
    }

    async fn settle_metered(
        &self,
        g: &mut Inner,
        metered: &Metered,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<Option<u64>, BillingLedgerError> {
        let market = self
            .ledger
            .market()
            .await?
            .ok_or(BillingLedgerError::NoMarket)?;
        let period = market.last_period + 1;
        let (report, carry, names) = self.report(period, start_ms, end_ms, metered).await?;
        g.meter.restore(&carry);
        if report.lines.is_empty() {
            return Ok(None);
        }
        let settled = self.ledger.settle(&report).await?;
        self.metrics.inc(
            "daas_settlements_total",
            "Usage settlements submitted to the ledger, by result.",
            &[("result", "ok")],
            1.0,
        );
        self.metrics.inc(
            "daas_settled_mist_total",
            "MIST charged to users' escrow by accepted settlements.",
            &[],
            settled.total as f64,
        );
        for (user, ns) in names {
            let charged = settled.charged.get(&user).copied().unwrap_or(0);
            g.last.insert(
                ns,
                LastCharge {
                    period,
                    charged,
                    at_ms: end_ms,
                },
            );
        }
        tracing::info!(period, lines = report.lines.len(), charged = settled.total, tx = %settled.digest, "settlement accepted");
        Ok(Some(period))
    }

    /// Refresh every user namespace's Usage and enforce dry escrow.
    pub async fn publish(&self, now_ms: u64) {
        let namespaces = match self
            .client
            .list(&format!(
                "/api/v1/namespaces?labelSelector={}%3Duser",
                daas_controllers::usernamespaces::TIER_LABEL
            ))
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "listing user namespaces");
                return;
            }
        };
        let market = self
            .ledger
            .market()
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let current = self.inner.lock().await.meter.peek();
        for ns in namespaces {
            if daas_controllers::util::is_deleting(&ns) {
                continue;
            }
            let ns = daas_controllers::util::name(&ns).to_string();
            if !meter::billed_namespace(&ns) {
                continue;
            }
            if let Err(e) = self.publish_one(&ns, now_ms, &market, &current).await {
                tracing::warn!(namespace = %ns, error = %e, "usage not refreshed");
            }
        }
    }

    async fn publish_one(
        &self,
        ns: &str,
        now_ms: u64,
        market: &ledger::MarketView,
        current: &Metered,
    ) -> Result<(), PublishError> {
        // A namespace whose user is not known yet (no authentication seen since this master
        // started, no Usage object naming it) is neither judged nor published: unknown is not
        // "no account".
        let Some(owner) = self.owner(ns).await else {
            return Ok(());
        };
        let account = self.ledger.account(owner).await?;
        let funded = account.is_some_and(|a| a.balance > 0);
        let (running, suspended) = enforcer::survey(&self.client, ns).await?;
        let action = {
            let mut g = self.inner.lock().await;
            let state = *g.funding.entry(ns.to_string()).or_insert(if suspended {
                // A restarted master finds the suspension in the annotations.
                Funding::Suspended
            } else {
                Funding::Ok
            });
            let (next, action) = enforcer::step(
                state,
                funded,
                running,
                now_ms,
                u64::try_from(self.config.escrow_grace.as_millis()).unwrap_or(u64::MAX),
            );
            g.funding.insert(ns.to_string(), next);
            action
        };
        let why = if account.is_none() {
            "the user has no escrow account on the ledger"
        } else {
            "the user's escrow balance is 0"
        };
        if action != Action::None {
            let n = enforcer::apply(&self.client, ns, action, why).await?;
            tracing::info!(namespace = ns, ?action, objects = n, "dry escrow enforced");
        }
        let last = self.inner.lock().await.last.get(ns).copied();
        let status = usage::Status {
            user: Some(owner),
            account,
            prices: market.prices,
            period: market.last_period + 1,
            current: current
                .lines
                .iter()
                .filter(|l| l.namespace == ns)
                .cloned()
                .collect(),
            last,
            funded,
        };
        usage::write(&self.client, ns, &status, now_ms).await?;
        Ok(())
    }

    /// Run the metering and settlement loops until the task is dropped.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut meter_tick = tokio::time::interval(self.config.metering_interval);
            meter_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut settle_tick = tokio::time::interval_at(
                tokio::time::Instant::now() + self.config.settlement_period,
                self.config.settlement_period,
            );
            settle_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            self.inner.lock().await.period_start_ms = crate::now_ms();
            loop {
                tokio::select! {
                    _ = meter_tick.tick() => self.meter(crate::now_ms()).await,
                    _ = settle_tick.tick() => {
                        // The period ends with a last look at the nodes.
                        let now = crate::now_ms();
                        self.meter(now).await;
                        self.settle(now).await;
                    }
                }
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Ledger(#[from] BillingLedgerError),
    #[error("api: {0}")]
    Api(#[from] daas_apiserver::ApiError),
}

/// The master's billing, when configured and it has a ledger, a Sui key (pays for settlements)
/// and the seal-token authenticator (which knows the users behind the user namespaces).
pub fn build(
    cfg: &crate::MasterConfig,
    seal_tokens: &Option<Arc<crate::auth::SealTokenAuthenticator>>,
    client: &LocalClient,
    enclave: &crate::EnclaveHandle,
    registration: &Arc<RwLock<Option<crate::registration::Registration>>>,
    metrics: &Arc<Metrics>,
) -> Option<Arc<Billing>> {
    let (Some(config), Some(ledger), Some(key), Some(tokens)) =
        (&cfg.billing, &cfg.ledger, &cfg.sui_key, seal_tokens)
    else {
        return None;
    };
    let real = adapter::LedgerBilling {
        wallet: daas_ledger::wallet::Wallet::new(ledger.clone(), key.clone()),
        enclave: enclave.clone(),
        registration: registration.clone(),
    };
    let stats = stats::ClusterStats::new(
        client.clone(),
        Arc::new(crate::nodeproxy::AgentProxy {
            enclave: enclave.enclave.clone(),
        }),
    );
    Some(Arc::new(Billing::new(
        config.clone(),
        Arc::new(real),
        Arc::new(stats),
        client.clone(),
        tokens.owners(),
        metrics.clone(),
    )))
}

#[cfg(test)]
mod tests;
