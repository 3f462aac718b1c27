//! K3s-DaaS ledger: the k3s_daas Move package's semantics (contracts/SPEC.md) behind a `Ledger`
//! trait, with an embedded ledger that executes real signed Sui programmable transactions and a
//! backend for a real Sui fullnode.
