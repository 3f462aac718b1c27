//! A key plus a ledger: picks gas, builds, signs and submits transactions, and turns Move aborts
//! into readable errors. Used by the CLI, the worker agent and the master.

use std::sync::Arc;

use sui_sdk_types::{Address, Transaction};

use crate::keys::SuiKeypair;
use crate::tx::{self, Deployment, TxContext, TxError, DEFAULT_GAS_BUDGET};
use crate::types::{ExecutionStatus, Owner, TransactionEffects};
use crate::{Ledger, LedgerError};

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error("{address} has no SUI to pay gas (needs {needed} MIST)")]
    NoGas { address: Address, needed: u64 },
    /// The transaction executed but its commands failed (gas was charged).
    #[error("transaction {digest} failed: {reason}")]
    Failed {
        digest: String,
        reason: String,
        effects: Box<TransactionEffects>,
    },
}

impl WalletError {
    /// The Move abort (module, code) behind a failed transaction, if any.
    pub fn abort(&self) -> Option<(String, u64)> {
        match self {
            WalletError::Failed { effects, .. } => {
                effects.status.abort().map(|(m, c)| (m.to_string(), c))
            }
            _ => None,
        }
    }
}

pub fn describe_failure(status: &ExecutionStatus) -> String {
    match status {
        ExecutionStatus::Success => "success".into(),
        ExecutionStatus::Failure { error, .. } => format!("{error:?}"),
    }
}

#[derive(Clone)]
pub struct Wallet {
    pub ledger: Arc<dyn Ledger>,
    pub key: SuiKeypair,
}

impl Wallet {
    pub fn new(ledger: Arc<dyn Ledger>, key: SuiKeypair) -> Self {
        Wallet { ledger, key }
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Gas context: the largest coin pays, at the reference gas price.
    pub async fn context(&self, budget: u64) -> Result<TxContext, WalletError> {
        let price = self.ledger.reference_gas_price().await?;
        let coins = self.ledger.gas_coins(self.address()).await?;
        let Some((coin, value)) = coins.first() else {
            return Err(WalletError::NoGas {
                address: self.address(),
                needed: budget,
            });
        };
        if *value < budget {
            return Err(WalletError::NoGas {
                address: self.address(),
                needed: budget,
            });
        }
        Ok(TxContext::new(self.address(), vec![coin.clone()])
            .with_budget(budget)
            .with_price(price))
    }

    /// Build with `build(ctx, deployment)`, sign, execute; Ok only if the commands succeeded.
    pub async fn execute(
        &self,
        build: impl FnOnce(&TxContext, &Deployment) -> Result<Transaction, TxError>,
    ) -> Result<TransactionEffects, WalletError> {
        self.execute_with_budget(DEFAULT_GAS_BUDGET, build).await
    }

    pub async fn execute_with_budget(
        &self,
        budget: u64,
        build: impl FnOnce(&TxContext, &Deployment) -> Result<Transaction, TxError>,
    ) -> Result<TransactionEffects, WalletError> {
        let d = self.ledger.deployment().await?;
        let ctx = self.context(budget).await?;
        let t = build(&ctx, &d)?;
        let signed = tx::sign(&t, &self.key)?;
        let effects = self.ledger.execute(signed).await?;
        if effects.status.is_success() {
            Ok(effects)
        } else {
            Err(WalletError::Failed {
                digest: effects.digest.to_string(),
                reason: describe_failure(&effects.status),
                effects: Box::new(effects),
            })
        }
    }
}

/// First created object that is shared, as a `SharedRef` (e.g. a new EnclaveConfig or Enclave).
pub fn created_shared(effects: &TransactionEffects) -> Option<tx::SharedRef> {
    effects.created.iter().find_map(|(r, o)| match o {
        Owner::Shared {
            initial_shared_version,
        } => Some(tx::SharedRef {
            id: *r.object_id(),
            initial_shared_version: *initial_shared_version,
        }),
        _ => None,
    })
}

/// First created object owned by `owner`.
pub fn created_owned(
    effects: &TransactionEffects,
    owner: Address,
) -> Option<sui_sdk_types::ObjectReference> {
    effects.created.iter().find_map(|(r, o)| match o {
        Owner::Address(a) if *a == owner => Some(r.clone()),
        _ => None,
    })
}
