//! `daas account`, `daas deposit`, `daas withdraw-escrow`, `daas withdraw-earnings`: a user's
//! escrow and a node operator's earnings on the ledger's `economy::Market`, plus the stake, seal
//! tokens and the last settlements touching an address.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use daas_ledger::contract::{Account, Earnings, Event, Market, StakeRecord};
use daas_ledger::keys::SuiKeypair;
use daas_ledger::types::ExecutionFailure;
use daas_ledger::wallet::{Wallet, WalletError};
use daas_ledger::{EventRecord, Ledger, LedgerError};
use serde_json::{json, Value};
use sui_sdk_types::Address;

/// How many of the ledger's recent events `daas account` scans for the address.
const EVENT_SCAN: usize = 500;

#[derive(Args, Clone)]
pub struct LedgerRef {
    /// Ledger endpoint (`daas chain` / `daas up` HTTP API).
    #[arg(long, env = "SUI_RPC_ENDPOINT")]
    pub chain: String,
}

#[derive(Args, Clone)]
pub struct AccountArgs {
    #[command(flatten)]
    pub chain: LedgerRef,
    /// The address to show (default: the address of --key).
    #[arg(long)]
    pub address: Option<String>,
    /// Sui key file (`daas keygen`) whose address to show when --address is not given.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_parser = ["table", "json"], default_value = "table")]
    pub output: String,
    /// How many settlement lines touching the address to show.
    #[arg(long, default_value_t = 10)]
    pub settlements: usize,
}

#[derive(Args, Clone)]
pub struct DepositArgs {
    #[command(flatten)]
    pub chain: LedgerRef,
    /// Sui key file (`daas keygen`) of the user.
    #[arg(long)]
    pub key: PathBuf,
    /// Amount in MIST moved from the key's SUI into its escrow.
    #[arg(long)]
    pub amount: u64,
}

#[derive(Args, Clone)]
pub struct WithdrawArgs {
    #[command(flatten)]
    pub chain: LedgerRef,
    /// Sui key file (`daas keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// Amount in MIST.
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub amount: Option<u64>,
    /// Withdraw the whole balance.
    #[arg(long)]
    pub all: bool,
}

fn remote(chain: &LedgerRef) -> Result<Arc<dyn Ledger>> {
    Ok(Arc::new(
        daas_ledger::remote::RemoteLedger::new(&chain.chain).map_err(|e| anyhow::anyhow!("{e}"))?,
    ))
}

fn wallet(chain: &LedgerRef, key: &PathBuf) -> Result<Wallet> {
    let key = SuiKeypair::load(key).with_context(|| format!("reading key {}", key.display()))?;
    Ok(Wallet::new(remote(chain)?, key))
}

/// "aborted in economy::withdraw_escrow with EInsufficientBalance (301): <hint>".
pub fn explain(e: WalletError, what: &str) -> anyhow::Error {
    if let WalletError::Failed { effects, .. } = &e {
        if let daas_ledger::ExecutionStatus::Failure {
            error:
                ExecutionFailure::MoveAbort {
                    module,
                    function,
                    code,
                    name,
                    ..
                },
            ..
        } = &effects.status
        {
            let hint = match (module.as_str(), *code) {
                ("economy", 301) => "the amount is above the balance",
                ("economy", 305) => "the balance would overflow",
                ("economy", 306) => "the amount must be positive",
                ("economy", 307) => "this address has no escrow account (`daas deposit` first)",
                ("economy", 308) => {
                    "this address has no earnings (only node operators paid by a settlement have)"
                }
                ("staking", 14) => "the amount is above the treasury",
                _ => "refused",
            };
            return anyhow::anyhow!(
                "{what} refused by the ledger: aborted in {module}::{function} with {name} ({code}): {hint}"
            );
        }
    }
    match e {
        WalletError::Ledger(LedgerError::Unsupported(m)) => {
            anyhow::anyhow!("{what}: the ledger does not support this: {m}")
        }
        e => anyhow::Error::new(e).context(format!("{what} failed")),
    }
}

/// `Ok(None)` for a backend that cannot answer (`Unsupported`), so `daas account` still shows the
/// rest.
fn optional<T>(r: Result<T, LedgerError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(LedgerError::Unsupported(_)) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

/// Whether `e` is a settlement line or a money movement of `addr`.
fn touches(e: &Event, addr: &Address) -> bool {
    match e {
        Event::Charged { user, operator, .. } => user == addr || operator == addr,
        Event::UsageSkipped { user, .. } => user == addr,
        _ => false,
    }
}

fn status_name(s: u8) -> &'static str {
    match s {
        0 => "Active",
        1 => "Unbonding",
        2 => "Slashed",
        _ => "none",
    }
}

fn role_name(r: u8) -> &'static str {
    match r {
        0 => "user",
        1 => "node",
        2 => "admin",
        _ => "?",
    }
}

pub async fn run_account(a: AccountArgs) -> Result<()> {
    let addr: Address = match (&a.address, &a.key) {
        (Some(s), _) => s.parse().map_err(|e| anyhow::anyhow!("--address: {e}"))?,
        (None, Some(k)) => SuiKeypair::load(k)
            .with_context(|| format!("reading key {}", k.display()))?
            .address(),
        (None, None) => anyhow::bail!("give --address or --key"),
    };
    let l = remote(&a.chain)?;
    let stake: Option<StakeRecord> = l
        .stake(addr)
        .await
        .map_err(anyhow::Error::new)
        .with_context(|| {
            format!(
                "reading the stake of {addr} from the ledger at {}",
                a.chain.chain
            )
        })?;
    let mut tokens = Vec::new();
    for t in l
        .seal_tokens_of(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        let valid = l
            .seal_token_valid(t.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tokens.push(json!({"token": t, "valid": valid}));
    }
    let epoch = l.epoch().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let escrow: Option<Account> = optional(l.account(addr).await)?.flatten();
    let earnings: Option<Earnings> = optional(l.earnings(addr).await)?.flatten();
    let market: Option<Market> = optional(l.market().await)?.flatten();
    let events: Option<Vec<EventRecord>> = optional(l.recent_events(EVENT_SCAN).await)?;
    let settlements: Vec<&EventRecord> = events
        .iter()
        .flatten()
        .filter(|r| touches(&r.event, &addr))
        .take(a.settlements)
        .collect();
    let prices = market.as_ref().map(|m| {
        json!({
            "price_cpu": m.price_cpu, "price_mem": m.price_mem, "price_pod": m.price_pod,
            "last_period": m.last_period,
        })
    });
    if a.output == "json" {
        let doc = json!({
            "address": addr,
            "epoch": epoch,
            "stake": stake,
            "seal_tokens": tokens,
            "escrow": escrow,
            "earnings": earnings,
            "market": prices,
            "settlements": settlements,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    print!(
        "{}",
        table(
            &addr,
            epoch,
            stake.as_ref(),
            &tokens,
            escrow.as_ref(),
            earnings.as_ref(),
            market.as_ref(),
            events.is_some(),
            &settlements
        )
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn table(
    addr: &Address,
    epoch: u64,
    stake: Option<&StakeRecord>,
    tokens: &[Value],
    escrow: Option<&Account>,
    earnings: Option<&Earnings>,
    market: Option<&Market>,
    have_events: bool,
    settlements: &[&EventRecord],
) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12}{v}\n"));
    line("ADDRESS", addr.to_string());
    line("EPOCH", epoch.to_string());
    line(
        "STAKE",
        match stake {
            Some(r) => format!(
                "{} MIST, {}{}, {}, generation {}",
                r.amount,
                role_name(r.role),
                if r.node_id.is_empty() {
                    String::new()
                } else {
                    format!(" {}", r.node_id)
                },
                status_name(r.status),
                r.generation
            ),
            None => "none".into(),
        },
    );
    line(
        "SLASHES",
        match stake {
            Some(r) => format!(
                "{} (slashed_total {} MIST, last in epoch {})",
                r.slash_count, r.slashed_total, r.slashed_epoch
            ),
            None => "0".into(),
        },
    );
    let valid = tokens.iter().filter(|t| t["valid"] == true).count();
    line("SEAL TOKENS", format!("{} ({} valid)", tokens.len(), valid));
    line(
        "ESCROW",
        match escrow {
            Some(a) => format!(
                "balance {} MIST (deposited {}, spent {})",
                a.balance, a.deposited, a.spent
            ),
            None => "no account".into(),
        },
    );
    line(
        "EARNINGS",
        match earnings {
            Some(e) => format!(
                "balance {} MIST (earned {}, withdrawn {}, uptime {}s)",
                e.balance,
                e.earned,
                e.withdrawn,
                e.uptime_ms / 1000
            ),
            None => "none".into(),
        },
    );
    if let Some(m) = market {
        line(
            "PRICES",
            format!(
                "{} MIST/CPU-s, {} MIST/1000 MiB-s, {} MIST/1000 pod-s; last settled period {}",
                m.price_cpu, m.price_mem, m.price_pod, m.last_period
            ),
        );
    }
    out.push('\n');
    if !have_events {
        out.push_str("(this ledger backend cannot list recent settlements)\n");
        return out;
    }
    if settlements.is_empty() {
        out.push_str("no settlements touching this address among the recent events\n");
        return out;
    }
    out.push_str(&format!(
        "{:<8}{:<10}{:<20}{:>12}{:>12}  {}\n",
        "PERIOD", "AS", "NODE", "COST", "CHARGED", "TX"
    ));
    for r in settlements {
        let (period, role, node, cost, charged) = match &r.event {
            Event::Charged {
                period,
                user,
                node_id,
                cost,
                charged,
                ..
            } => (
                *period,
                if user == addr { "user" } else { "operator" },
                node_id.clone(),
                cost.to_string(),
                charged.to_string(),
            ),
            Event::UsageSkipped {
                period,
                node_id,
                reason,
                ..
            } => (
                *period,
                "user",
                node_id.clone(),
                format!("skip:{reason}"),
                "0".into(),
            ),
            _ => continue,
        };
        out.push_str(&format!(
            "{period:<8}{role:<10}{node:<20}{cost:>12}{charged:>12}  {}\n",
            r.digest
        ));
    }
    out
}

pub async fn run_deposit(a: DepositArgs) -> Result<()> {
    let w = wallet(&a.chain, &a.key)?;
    let eff = w
        .execute(|ctx, d| daas_ledger::tx::deposit(ctx, d, a.amount))
        .await
        .map_err(|e| explain(e, "deposit"))?;
    let balance = eff.events.iter().find_map(|e| match e {
        Event::Deposited { balance, .. } => Some(*balance),
        _ => None,
    });
    println!(
        "deposited {} MIST from {}: escrow balance {} MIST (tx {})",
        a.amount,
        w.address(),
        balance.unwrap_or_default(),
        eff.digest
    );
    Ok(())
}

/// `--amount`, or with `--all` the current balance read by `balance` (0 without a record, which
/// the ledger then refuses with ENoAccount / ENoEarnings).
async fn amount_of(
    a: &WithdrawArgs,
    balance: impl std::future::Future<Output = Result<Option<u64>, LedgerError>>,
) -> Result<u64> {
    match a.amount {
        Some(n) => Ok(n),
        None => Ok(balance
            .await
            .map_err(anyhow::Error::new)
            .context("reading the balance")?
            .unwrap_or(0)),
    }
}

pub async fn run_withdraw_escrow(a: WithdrawArgs) -> Result<()> {
    let w = wallet(&a.chain, &a.key)?;
    let me = w.address();
    let l = w.ledger.clone();
    let amount = amount_of(
        &a,
        async move { Ok(l.account(me).await?.map(|x| x.balance)) },
    )
    .await?;
    let eff = w
        .execute(|ctx, d| daas_ledger::tx::withdraw_escrow(ctx, d, amount))
        .await
        .map_err(|e| explain(e, "withdraw-escrow"))?;
    let balance = eff.events.iter().find_map(|e| match e {
        Event::EscrowWithdrawn { balance, .. } => Some(*balance),
        _ => None,
    });
    println!(
        "withdrew {amount} MIST of escrow to {me}: escrow balance {} MIST (tx {})",
        balance.unwrap_or_default(),
        eff.digest
    );
    Ok(())
}

pub async fn run_withdraw_earnings(a: WithdrawArgs) -> Result<()> {
    let w = wallet(&a.chain, &a.key)?;
    let me = w.address();
    let l = w.ledger.clone();
    let amount = amount_of(
        &a,
        async move { Ok(l.earnings(me).await?.map(|x| x.balance)) },
    )
    .await?;
    let eff = w
        .execute(|ctx, d| daas_ledger::tx::withdraw_earnings(ctx, d, amount))
        .await
        .map_err(|e| explain(e, "withdraw-earnings"))?;
    let balance = eff.events.iter().find_map(|e| match e {
        Event::EarningsWithdrawn { balance, .. } => Some(*balance),
        _ => None,
    });
    println!(
        "withdrew {amount} MIST of earnings to {me}: earnings balance {} MIST (tx {})",
        balance.unwrap_or_default(),
        eff.digest
    );
    Ok(())
}
