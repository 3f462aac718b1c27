use super::*;
use crate::keys::SuiKeypair;
use crate::tx::TxContext as Tcx;
use sui_crypto::ed25519::Ed25519PrivateKey;
use sui_crypto::Signer;
use sui_sdk_types::{Ed25519Signature, Transaction};

const FEE: u64 = 1_000_000;
const START: u64 = 1_000_000_000;

struct Env {
    ledger: EmbeddedLedger,
    admin: SuiKeypair,
    alice: SuiKeypair,
    bob: SuiKeypair,
}

fn genesis(admin: &SuiKeypair, alice: &SuiKeypair, bob: &SuiKeypair) -> GenesisConfig {
    let mut g = GenesisConfig::new(admin.address());
    g.master_endpoint = "https://master:6443".into();
    g.coins = vec![
        (admin.address(), START),
        (alice.address(), START),
        (bob.address(), START),
    ];
    g.enclave_config = Some(GenesisEnclaveConfig {
        name: "master".into(),
        pcr0: vec![0; 48],
        pcr1: vec![1; 48],
        pcr2: vec![2; 48],
    });
    g
}

fn env() -> Env {
    let admin = SuiKeypair::from_seed([1; 32]);
    let alice = SuiKeypair::from_seed([2; 32]);
    let bob = SuiKeypair::from_seed([3; 32]);
    let ledger = EmbeddedLedger::in_memory(&genesis(&admin, &alice, &bob)).unwrap();
    Env {
        ledger,
        admin,
        alice,
        bob,
    }
}

impl Env {
    fn gas(&self, who: &SuiKeypair) -> Vec<ObjectReference> {
        vec![self.ledger.coins_of(&who.address()).unwrap()[0].0.clone()]
    }

    fn tcx(&self, who: &SuiKeypair) -> Tcx {
        Tcx::new(who.address(), self.gas(who))
    }

    fn d(&self) -> Deployment {
        self.ledger.deployment_now().unwrap()
    }

    fn run(&self, who: &SuiKeypair, tx: Transaction) -> TransactionEffects {
        self.ledger
            .execute_signed(&tx::sign(&tx, who).unwrap())
            .unwrap()
    }

    fn balance(&self, who: &SuiKeypair) -> u64 {
        self.ledger
            .coins_of(&who.address())
            .unwrap()
            .iter()
            .map(|c| c.1)
            .sum()
    }

    fn stake(&self, who: &SuiKeypair, amount: u64, role: u8, node: &str) -> TransactionEffects {
        self.run(
            who,
            tx::stake(&self.tcx(who), &self.d(), amount, role, node).unwrap(),
        )
    }

    fn issue(&self, who: &SuiKeypair) -> (TransactionEffects, Option<SealToken>) {
        let fx = self.run(
            who,
            tx::issue_seal_token(&self.tcx(who), &self.d()).unwrap(),
        );
        let token = fx
            .created_ids()
            .iter()
            .find_map(|id| self.ledger.seal_token_by_id(id).unwrap());
        (fx, token)
    }

    /// The slash report about `node`'s current record.
    fn report(&self, node: Address, reason: &str, epoch: u64) -> contract::SlashReport {
        let rec = self
            .ledger
            .stake_record(&node)
            .unwrap()
            .expect("a stake record");
        contract::SlashReport::for_record(node, &rec, reason, epoch)
    }

    fn snapshot(&self) -> Vec<LedgerObject> {
        self.ledger
            .lock()
            .unwrap()
            .objects
            .values()
            .cloned()
            .collect()
    }
}

#[test]
fn genesis_layout() {
    let e = env();
    let d = e.d();
    let pkg = e.ledger.object(&d.package).unwrap().unwrap();
    assert_eq!(pkg.owner, Owner::Immutable);
    assert_eq!(d.pool.initial_shared_version, 1);
    let cap = d.admin_cap.clone().unwrap();
    let cap_obj = e.ledger.object(cap.object_id()).unwrap().unwrap();
    assert_eq!(cap_obj.owner, Owner::Address(e.admin.address()));
    assert_eq!(cap_obj.kind(), ObjectKind::AdminCap);
    assert!(cap_obj
        .type_name(&d.package)
        .ends_with("::staking::AdminCap"));
    assert!(d.enclave_config.is_some());
    assert_eq!(e.balance(&e.alice), START);
    assert_eq!(e.ledger.current_epoch().unwrap(), 0);
    // Deterministic: same genesis, same ids.
    let again = EmbeddedLedger::in_memory(&genesis(&e.admin, &e.alice, &e.bob)).unwrap();
    assert_eq!(again.deployment_now().unwrap(), d);
    assert_eq!(
        e.ledger
            .owned_objects(&e.admin.address(), None)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn stake_below_minimum_aborts_and_charges_gas() {
    let e = env();
    let fx = e.stake(&e.alice, 999, 1, "node-a");
    assert_eq!(fx.status.abort(), Some(("staking", 1)));
    assert_eq!(fx.gas_used, FEE);
    assert!(fx.events.is_empty() && fx.created.is_empty());
    assert_eq!(e.ledger.stake_record(&e.alice.address()).unwrap(), None);
    assert_eq!(e.balance(&e.alice), START - FEE);
    assert_eq!(e.ledger.pool().unwrap().total_staked, 0);
    // the shared pool was still a mutable input: bumped, unchanged contents
    assert!(fx
        .mutated
        .iter()
        .any(|(r, _)| *r.object_id() == e.d().pool.id));
    assert_eq!(e.ledger.effects(&fx.digest).unwrap(), Some(fx));

    let fx = e.stake(&e.alice, 1000, 1, "");
    assert_eq!(fx.status.abort(), Some(("staking", 3)));
    let fx = e.stake(&e.alice, 1000, 7, "n");
    assert_eq!(fx.status.abort(), Some(("staking", 2)));
    assert_eq!(e.balance(&e.alice), START - 3 * FEE);
}

#[test]
fn stake_issue_unstake_lockup_withdraw() {
    let e = env();
    let a = e.alice.address();
    let fx = e.stake(&e.alice, 5000, 1, "node-a");
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert!(matches!(
        &fx.events[..],
        [contract::Event::Staked {
            amount: 5000,
            total: 5000,
            generation: 1,
            ..
        }]
    ));
    // the split coin is consumed by stake: neither created nor deleted
    assert!(fx.created.is_empty() && fx.deleted.is_empty());
    assert_eq!(e.balance(&e.alice), START - 5000 - FEE);
    let rec = e.ledger.stake_record(&a).unwrap().unwrap();
    assert_eq!(
        (rec.amount, rec.role, rec.node_id.as_str(), rec.status),
        (5000, 1, "node-a", 0)
    );

    let (fx, token) = e.issue(&e.alice);
    assert!(fx.status.is_success());
    let token = token.unwrap();
    assert_eq!(token.owner, a);
    assert_eq!(token.expiry_epoch, 30);
    assert_eq!(token.master_endpoint, "https://master:6443");
    assert_eq!(fx.created[0].1, Owner::Address(a));
    assert!(e.ledger.is_seal_token_valid(&token.id).unwrap());
    assert_eq!(e.ledger.seal_tokens_owned(&a).unwrap(), vec![token.clone()]);

    let fx = e.run(&e.alice, tx::withdraw(&e.tcx(&e.alice), &e.d()).unwrap());
    assert_eq!(fx.status.abort(), Some(("staking", 7)));
    let fx = e.run(
        &e.alice,
        tx::request_unstake(&e.tcx(&e.alice), &e.d()).unwrap(),
    );
    assert!(fx.status.is_success());
    assert!(!e.ledger.is_seal_token_valid(&token.id).unwrap());
    let fx = e.run(&e.alice, tx::withdraw(&e.tcx(&e.alice), &e.d()).unwrap());
    assert_eq!(fx.status.abort(), Some(("staking", 8)));
    assert_eq!(e.ledger.advance_epoch().unwrap(), 1);
    let fx = e.run(&e.alice, tx::withdraw(&e.tcx(&e.alice), &e.d()).unwrap());
    assert_eq!(fx.status.abort(), Some(("staking", 8)));
    e.ledger.advance_epoch().unwrap();
    let fx = e.run(&e.alice, tx::withdraw(&e.tcx(&e.alice), &e.d()).unwrap());
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(fx.epoch, 2);
    assert_eq!(fx.created.len(), 1);
    let payout = e
        .ledger
        .object(fx.created[0].0.object_id())
        .unwrap()
        .unwrap();
    assert_eq!(payout.coin_value(), Some(5000));
    assert_eq!(e.balance(&e.alice), START - 7 * FEE);
    assert_eq!(e.ledger.stake_record(&a).unwrap(), None);

    // revoke the old token; only its owner may
    let tref = e.ledger.object(&token.id).unwrap().unwrap().object_ref();
    let fx = e.run(
        &e.alice,
        tx::revoke_seal_token(&e.tcx(&e.alice), &e.d(), &tref).unwrap(),
    );
    assert!(fx.status.is_success());
    assert_eq!(fx.deleted.len(), 1);
    assert!(e.ledger.object(&token.id).unwrap().is_none());
}

#[test]
fn revoke_by_non_owner_after_transfer() {
    let e = env();
    e.stake(&e.alice, 100, 0, "");
    let (_, token) = e.issue(&e.alice);
    let token = token.unwrap();
    // transfer the token object to bob with a hand-built PTB
    let tref = e.ledger.object(&token.id).unwrap().unwrap().object_ref();
    let mut b = sui_transaction_builder::TransactionBuilder::new();
    b.set_sender(e.alice.address());
    b.set_gas_budget(tx::DEFAULT_GAS_BUDGET);
    b.set_gas_price(1000);
    let g = e.gas(&e.alice)[0].clone();
    b.add_gas_objects([sui_transaction_builder::ObjectInput::owned(
        *g.object_id(),
        g.version(),
        *g.digest(),
    )]);
    let t = b.object(sui_transaction_builder::ObjectInput::owned(
        *tref.object_id(),
        tref.version(),
        *tref.digest(),
    ));
    let to = b.pure_bytes(tx::pure_address(&e.bob.address()));
    b.transfer_objects(vec![t], to);
    let fx = e.run(&e.alice, b.try_build().unwrap());
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        e.ledger.seal_tokens_owned(&e.bob.address()).unwrap().len(),
        1
    );
    let tref = e.ledger.object(&token.id).unwrap().unwrap().object_ref();
    let fx = e.run(
        &e.bob,
        tx::revoke_seal_token(&e.tcx(&e.bob), &e.d(), &tref).unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("k8s_gateway", 102)));
    assert!(e.ledger.object(&token.id).unwrap().is_some());
    // alice can no longer use it as an input
    let err = e.ledger.execute_signed(
        &tx::sign(
            &tx::revoke_seal_token(&e.tcx(&e.alice), &e.d(), &tref).unwrap(),
            &e.alice,
        )
        .unwrap(),
    );
    assert!(matches!(err, Err(LedgerError::NotOwned { .. })), "{err:?}");
}

#[test]
fn token_expiry_and_admin_config() {
    let e = env();
    // non-admin cannot use the AdminCap
    let admin_cap = e.d().admin_cap.unwrap();
    let err = e.ledger.execute_signed(
        &tx::sign(
            &tx::set_gateway(&e.tcx(&e.alice), &e.d(), "x", 1).unwrap(),
            &e.alice,
        )
        .unwrap(),
    );
    assert!(
        matches!(err, Err(LedgerError::NotOwned { id, .. }) if id == *admin_cap.object_id()),
        "{err:?}"
    );
    let fx = e.run(
        &e.admin,
        tx::set_gateway(&e.tcx(&e.admin), &e.d(), "https://m2", 0).unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("k8s_gateway", 103)));
    let fx = e.run(
        &e.admin,
        tx::set_gateway(&e.tcx(&e.admin), &e.d(), "https://m2", 1).unwrap(),
    );
    assert!(fx.status.is_success());
    let fx = e.run(
        &e.admin,
        tx::set_config(&e.tcx(&e.admin), &e.d(), 5, 4, 6, 1, 100).unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("staking", 9)));

    let (fx, _) = e.issue(&e.alice);
    assert_eq!(fx.status.abort(), Some(("k8s_gateway", 101)));
    e.stake(&e.alice, 100, 0, "");
    let (_, token) = e.issue(&e.alice);
    let token = token.unwrap();
    assert_eq!((token.issued_epoch, token.expiry_epoch), (0, 1));
    assert_eq!(token.master_endpoint, "https://m2");
    assert_eq!(token.permissions, vec!["namespace:own".to_string()]);
    e.ledger.advance_epoch().unwrap();
    assert!(e.ledger.is_seal_token_valid(&token.id).unwrap());
    e.ledger.advance_epoch().unwrap();
    assert!(!e.ledger.is_seal_token_valid(&token.id).unwrap());
}

#[test]
fn slash_with_enclave_signature() {
    let e = env();
    let enclave_key = Ed25519PrivateKey::new([9; 32]);
    let enclave = e
        .ledger
        .insert_enclave_for_tests(*enclave_key.public_key().inner())
        .unwrap();
    let config = e.d().enclave_config.unwrap();
    let node = e.bob.address();
    e.stake(&e.bob, 2000, 1, "node-b");
    let (_, token) = e.issue(&e.bob);
    let token = token.unwrap();
    e.ledger.advance_epoch().unwrap();
    let rep = e.report(node, "NotReady", 1);
    let msg = contract::slash_report_message(&rep, 1234);
    let sig: Ed25519Signature = enclave_key.sign(&msg);
    // anyone may submit the report; a wrong signature aborts with EBadReport
    let bad = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &config,
        &enclave,
        &rep,
        1235,
        sig.inner(),
    )
    .unwrap();
    assert_eq!(e.run(&e.admin, bad).status.abort(), Some(("staking", 10)));
    let good = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &config,
        &enclave,
        &rep,
        1234,
        sig.inner(),
    )
    .unwrap();
    let fx = e.run(&e.admin, good);
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        fx.events,
        vec![contract::Event::Slashed {
            staker: node,
            penalty: 200,
            remaining: 1800,
            reason: "NotReady".into(),
            epoch: 1
        }]
    );
    // the enclave and its config (shared immutable inputs) are untouched
    assert!(!fx.mutated.iter().any(|(r, _)| *r.object_id() == enclave.id));
    assert!(!fx.mutated.iter().any(|(r, _)| *r.object_id() == config.id));
    let rec = e.ledger.stake_record(&node).unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.amount, rec.unlock_epoch, rec.slashed_epoch),
        (2, 1800, 3, 1)
    );
    assert!(!e.ledger.is_seal_token_valid(&token.id).unwrap());
    let again = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &config,
        &enclave,
        &rep,
        1234,
        sig.inner(),
    )
    .unwrap();
    // replaying the report: its nonce is used up (EStaleReport), whatever the epoch
    assert_eq!(e.run(&e.admin, again).status.abort(), Some(("staking", 13)));
    assert_eq!(e.ledger.stake_record(&node).unwrap().unwrap().amount, 1800);
    // updating the PCRs makes the enclave stale
    let fx = e.run(
        &e.admin,
        tx::update_pcrs(&e.tcx(&e.admin), &e.d(), &[5; 48], &[1; 48], &[2; 48]).unwrap(),
    );
    assert!(fx.status.is_success());
    e.ledger.advance_epoch().unwrap();
    let rep = e.report(node, "x", 2);
    let sig: Ed25519Signature = enclave_key.sign(&contract::slash_report_message(&rep, 1));
    let stale = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &config,
        &enclave,
        &rep,
        1,
        sig.inner(),
    )
    .unwrap();
    assert_eq!(e.run(&e.admin, stale).status.abort(), Some(("staking", 10)));
}

/// A PTB with a single MoveCall `<package>::module::function(args)` paid with `who`'s gas coin.
fn single_call(
    e: &Env,
    who: &SuiKeypair,
    module: &'static str,
    function: &'static str,
    args: impl FnOnce(
        &mut sui_transaction_builder::TransactionBuilder,
    ) -> Vec<sui_transaction_builder::Argument>,
) -> Transaction {
    let mut b = sui_transaction_builder::TransactionBuilder::new();
    b.set_sender(who.address());
    b.set_gas_budget(tx::DEFAULT_GAS_BUDGET);
    b.set_gas_price(1000);
    let g = e.gas(who)[0].clone();
    b.add_gas_objects([sui_transaction_builder::ObjectInput::owned(
        *g.object_id(),
        g.version(),
        *g.digest(),
    )]);
    let args = args(&mut b);
    b.move_call(
        sui_transaction_builder::Function::new(
            e.d().package,
            sui_sdk_types::Identifier::from_static(module),
            sui_sdk_types::Identifier::from_static(function),
        ),
        args,
    );
    b.try_build().unwrap()
}

#[test]
fn slash_takes_the_config_from_the_ptb() {
    let e = env();
    let enclave_key = Ed25519PrivateKey::new([9; 32]);
    let enclave = e
        .ledger
        .insert_enclave_for_tests(*enclave_key.public_key().inner())
        .unwrap();
    let first = e.d().enclave_config.unwrap();
    let node = e.bob.address();
    e.stake(&e.bob, 2000, 1, "node-b");
    let rep = e.report(node, "x", 0);
    let sig: Ed25519Signature = enclave_key.sign(&contract::slash_report_message(&rep, 1));
    // A second config (version 0, same PCRs) that the enclave was not registered against.
    let fx = e.run(
        &e.admin,
        tx::create_enclave_config(
            &e.tcx(&e.admin),
            &e.d(),
            "other",
            &[0; 48],
            &[1; 48],
            &[2; 48],
        )
        .unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let second = e.d().enclave_config.unwrap();
    assert_ne!(second.id, first.id);
    let wrong = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &second,
        &enclave,
        &rep,
        1,
        sig.inner(),
    )
    .unwrap();
    assert_eq!(e.run(&e.admin, wrong).status.abort(), Some(("staking", 10)));
    // Not an EnclaveConfig at all: an argument error.
    let gateway = e.d().gateway;
    let not_config = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &gateway,
        &enclave,
        &rep,
        1,
        sig.inner(),
    )
    .unwrap();
    let status = e.run(&e.admin, not_config).status;
    assert!(
        matches!(
            status,
            ExecutionStatus::Failure {
                command: Some(0),
                error: ExecutionFailure::CommandArgumentError { arg: 1, .. }
            }
        ),
        "{status:?}"
    );
    // The old six-argument shape (no config) is refused.
    let d = e.d();
    let old = single_call(&e, &e.admin, "staking", "slash", |b| {
        let pool = b.object(sui_transaction_builder::ObjectInput::shared(
            d.pool.id,
            d.pool.initial_shared_version,
            true,
        ));
        let enc = b.object(sui_transaction_builder::ObjectInput::shared(
            enclave.id,
            enclave.initial_shared_version,
            false,
        ));
        let mut args = vec![pool, enc];
        for p in [
            tx::pure_address(&node),
            tx::pure_string("x"),
            tx::pure_u64(1),
            tx::pure_bytes(sig.inner()),
        ] {
            args.push(b.pure_bytes(p));
        }
        args
    });
    let status = e.run(&e.admin, old).status;
    assert!(
        matches!(
            status,
            ExecutionStatus::Failure {
                error: ExecutionFailure::CommandArgumentError { arg: 0, .. },
                ..
            }
        ),
        "{status:?}"
    );
    assert_eq!(e.ledger.stake_record(&node).unwrap().unwrap().amount, 2000);
    // With the config it was registered against.
    let good = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &first,
        &enclave,
        &rep,
        1,
        sig.inner(),
    )
    .unwrap();
    let fx = e.run(&e.admin, good);
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let rec = e.ledger.stake_record(&node).unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.amount, rec.slashed_total, rec.slashed_epoch),
        (2, 1800, 200, 0)
    );
}

#[test]
fn enclave_config_admin_calls_live_in_staking() {
    let e = env();
    for function in ["create_enclave_config", "update_pcrs"] {
        let d = e.d();
        let cap = d.admin_cap.clone().unwrap();
        let config = d.enclave_config.unwrap();
        let call = single_call(&e, &e.admin, "enclave", function, |b| {
            let mut args = vec![b.object(sui_transaction_builder::ObjectInput::owned(
                *cap.object_id(),
                cap.version(),
                *cap.digest(),
            ))];
            if function == "update_pcrs" {
                args.push(b.object(sui_transaction_builder::ObjectInput::shared(
                    config.id,
                    config.initial_shared_version,
                    true,
                )));
            } else {
                args.push(b.pure_bytes(tx::pure_string("m")));
            }
            for pcr in [[0u8; 48], [1; 48], [2; 48]] {
                args.push(b.pure_bytes(tx::pure_bytes(&pcr)));
            }
            args
        });
        let status = e.run(&e.admin, call).status;
        assert_eq!(
            status,
            ExecutionStatus::Failure {
                command: Some(0),
                error: ExecutionFailure::FunctionNotFound {
                    module: "enclave".into(),
                    function: function.into(),
                }
            }
        );
    }
    // The same calls in `staking` work.
    let fx = e.run(
        &e.admin,
        tx::update_pcrs(&e.tcx(&e.admin), &e.d(), &[7; 48], &[1; 48], &[2; 48]).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let id = e.d().enclave_config.unwrap().id;
    match e.ledger.object(&id).unwrap().unwrap().data {
        ObjectData::Move(ContractObject::EnclaveConfig(c)) => {
            assert_eq!((c.version, c.pcr0), (1, vec![7; 48]))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn register_enclave_raw_needs_a_verifier() {
    let e = env();
    let fx = e.run(
        &e.alice,
        tx::register_enclave_raw(&e.tcx(&e.alice), &e.d(), b"doc").unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("nitro_attestation", 0)));
    struct Accept;
    impl contract::AttestationVerifier for Accept {
        fn verify(
            &self,
            document: &[u8],
            _now_ms: u64,
        ) -> Result<contract::AttestedEnclave, String> {
            if document != b"doc" {
                return Err("bad document".into());
            }
            Ok(contract::AttestedEnclave {
                pcr0: vec![0; 48],
                pcr1: vec![1; 48],
                pcr2: vec![2; 48],
                public_key: vec![4; 32],
                platform: contract::PLATFORM_NITRO,
            })
        }
    }
    e.ledger.set_attestation_verifier(Arc::new(Accept));
    let fx = e.run(
        &e.alice,
        tx::register_enclave_raw(&e.tcx(&e.alice), &e.d(), b"nope").unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("nitro_attestation", 2)));
    let fx = e.run(
        &e.alice,
        tx::register_enclave_raw(&e.tcx(&e.alice), &e.d(), b"doc").unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let (r, owner) = fx.created[0].clone();
    assert_eq!(
        owner,
        Owner::Shared {
            initial_shared_version: fx.lamport_version
        }
    );
    let o = e.ledger.object(r.object_id()).unwrap().unwrap();
    assert!(
        matches!(o.data, ObjectData::Move(ContractObject::Enclave(ref en)) if en.pk == vec![4; 32] && en.owner == e.alice.address())
    );
}

#[test]
fn create_enclave_config_updates_deployment() {
    let e = env();
    let before = e.d().enclave_config;
    let fx = e.run(
        &e.admin,
        tx::create_enclave_config(&e.tcx(&e.admin), &e.d(), "m2", &[1], &[2], &[3]).unwrap(),
    );
    assert!(fx.status.is_success());
    let now = e.d().enclave_config.unwrap();
    assert_ne!(Some(now), before);
    assert_eq!(now.initial_shared_version, fx.lamport_version);
}

#[test]
fn replay_wrong_signer_malformed_and_gas_refusals() {
    let e = env();
    let signed = tx::sign(
        &tx::stake(&e.tcx(&e.alice), &e.d(), 100, 0, "").unwrap(),
        &e.alice,
    )
    .unwrap();
    let fx = e.ledger.execute_signed(&signed).unwrap();
    assert!(fx.status.is_success());
    let snap = e.snapshot();
    assert!(
        matches!(e.ledger.execute_signed(&signed), Err(LedgerError::AlreadyExecuted(d)) if d == fx.digest)
    );

    // signed by bob for alice's transaction
    let t = tx::request_unstake(&e.tcx(&e.alice), &e.d()).unwrap();
    let mut forged = tx::sign(&t, &e.bob).unwrap();
    assert!(matches!(
        e.ledger.execute_signed(&forged),
        Err(LedgerError::InvalidTransaction(
            tx::TxError::WrongSigner { .. }
        ))
    ));
    forged.signatures = tx::sign(&t, &e.alice).unwrap().signatures;
    forged.tx_bytes.push(0);
    assert!(matches!(
        e.ledger.execute_signed(&forged),
        Err(LedgerError::InvalidTransaction(_))
    ));
    let garbage = SignedTransaction {
        tx_bytes: vec![0xff; 40],
        signatures: vec![vec![0; 97]],
    };
    assert!(matches!(
        e.ledger.execute_signed(&garbage),
        Err(LedgerError::InvalidTransaction(_))
    ));
    assert_eq!(e.snapshot(), snap);

    // stale gas version: the first gas ref was used above
    let stale = tx::request_unstake(
        &Tcx::new(e.alice.address(), vec![signed_gas(&signed)]),
        &e.d(),
    )
    .unwrap();
    let err = e
        .ledger
        .execute_signed(&tx::sign(&stale, &e.alice).unwrap());
    assert!(
        matches!(err, Err(LedgerError::StaleObject { .. })),
        "{err:?}"
    );

    // budget below the fee, price below the RGP, budget above the balance
    let low = tx::request_unstake(&e.tcx(&e.alice).with_budget(FEE - 1), &e.d()).unwrap();
    assert!(matches!(
        e.ledger.execute_signed(&tx::sign(&low, &e.alice).unwrap()),
        Err(LedgerError::GasBudgetTooLow { fee: FEE, .. })
    ));
    let cheap = tx::request_unstake(&e.tcx(&e.alice).with_price(999), &e.d()).unwrap();
    assert!(matches!(
        e.ledger
            .execute_signed(&tx::sign(&cheap, &e.alice).unwrap()),
        Err(LedgerError::GasPriceTooLow { .. })
    ));
    let big = tx::request_unstake(&e.tcx(&e.alice).with_budget(START), &e.d()).unwrap();
    assert!(matches!(
        e.ledger.execute_signed(&tx::sign(&big, &e.alice).unwrap()),
        Err(LedgerError::InsufficientGas { .. })
    ));
    // someone else's coin as gas
    let theirs = tx::request_unstake(&Tcx::new(e.alice.address(), e.gas(&e.bob)), &e.d()).unwrap();
    assert!(matches!(
        e.ledger
            .execute_signed(&tx::sign(&theirs, &e.alice).unwrap()),
        Err(LedgerError::NotOwned { .. })
    ));
    // unknown package / wrong shared version
    let mut d = e.d();
    d.pool.initial_shared_version = 7;
    let wrong = tx::request_unstake(&e.tcx(&e.alice), &d).unwrap();
    assert!(matches!(
        e.ledger
            .execute_signed(&tx::sign(&wrong, &e.alice).unwrap()),
        Err(LedgerError::SharedVersionMismatch { .. })
    ));
    let mut d = e.d();
    d.package = Address::new([0x42; 32]);
    let wrong = tx::request_unstake(&e.tcx(&e.alice), &d).unwrap();
    assert!(matches!(
        e.ledger
            .execute_signed(&tx::sign(&wrong, &e.alice).unwrap()),
        Err(LedgerError::PackageNotFound(_))
    ));
    assert_eq!(e.snapshot(), snap);
}

fn signed_gas(signed: &SignedTransaction) -> ObjectReference {
    let t: Transaction = bcs::from_bytes(&signed.tx_bytes).unwrap();
    t.gas_payment.objects[0].clone()
}

#[test]
fn coins_split_merge_transfer_and_versions() {
    let e = env();
    let a = e.alice.address();
    e.ledger.mint(a, 500).unwrap();
    let coins = e.ledger.coins_of(&a).unwrap();
    assert_eq!(coins.len(), 2);
    // transfer_sui: split from gas and send to bob
    let fx = e.run(
        &e.alice,
        tx::transfer_sui(&e.tcx(&e.alice), &e.bob.address(), 777).unwrap(),
    );
    assert!(fx.status.is_success());
    assert_eq!(fx.created.len(), 1);
    assert_eq!(fx.created[0].1, Owner::Address(e.bob.address()));
    assert_eq!(e.balance(&e.bob), START + 777);
    assert_eq!(e.balance(&e.alice), START + 500 - 777 - FEE);
    let max_in = coins[0].0.version();
    assert_eq!(fx.lamport_version, max_in + 1);
    assert_eq!(fx.gas_object.version(), fx.lamport_version);

    // two gas coins are smashed into the first
    let gas: Vec<_> = e
        .ledger
        .coins_of(&a)
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    let fx = e.run(
        &e.alice,
        tx::request_unstake(&Tcx::new(a, gas.clone()), &e.d()).unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("staking", 5)));
    assert_eq!(fx.deleted.len(), 1);
    assert_eq!(*fx.deleted[0].object_id(), *gas[1].object_id());
    assert_eq!(e.ledger.coins_of(&a).unwrap().len(), 1);
    assert_eq!(e.balance(&e.alice), START + 500 - 777 - 2 * FEE);

    // a split coin left unused is an error (Coin has no drop), gas still charged
    let mut b = sui_transaction_builder::TransactionBuilder::new();
    b.set_sender(a);
    b.set_gas_budget(tx::DEFAULT_GAS_BUDGET);
    b.set_gas_price(1000);
    let g = e.gas(&e.alice)[0].clone();
    b.add_gas_objects([sui_transaction_builder::ObjectInput::owned(
        *g.object_id(),
        g.version(),
        *g.digest(),
    )]);
    let gas_arg = b.gas();
    let amt = b.pure_bytes(tx::pure_u64(5));
    b.split_coins(gas_arg, vec![amt]);
    let fx = e.run(&e.alice, b.try_build().unwrap());
    assert!(matches!(
        fx.status,
        ExecutionStatus::Failure {
            error: ExecutionFailure::UnusedValueWithoutDrop { .. },
            ..
        }
    ));
    assert!(fx.created.is_empty());
    assert_eq!(e.balance(&e.alice), START + 500 - 777 - 3 * FEE);

    // splitting more than the gas coin holds (minus the reserved budget) fails
    let fx = e.run(
        &e.alice,
        tx::transfer_sui(&e.tcx(&e.alice), &e.bob.address(), START).unwrap(),
    );
    assert!(matches!(
        fx.status,
        ExecutionStatus::Failure {
            error: ExecutionFailure::InsufficientCoinBalance,
            ..
        }
    ));
    assert_eq!(e.balance(&e.bob), START + 777);
}

#[test]
fn bad_pure_arguments_fail_execution() {
    let e = env();
    let d = e.d();
    let mut b = sui_transaction_builder::TransactionBuilder::new();
    b.set_sender(e.alice.address());
    b.set_gas_budget(tx::DEFAULT_GAS_BUDGET);
    b.set_gas_price(1000);
    let g = e.gas(&e.alice)[0].clone();
    b.add_gas_objects([sui_transaction_builder::ObjectInput::owned(
        *g.object_id(),
        g.version(),
        *g.digest(),
    )]);
    let gas_arg = b.gas();
    let amt = b.pure_bytes(tx::pure_u64(100));
    let coins = b.split_coins(gas_arg, vec![amt]);
    let pool = b.object(sui_transaction_builder::ObjectInput::shared(
        d.pool.id,
        d.pool.initial_shared_version,
        true,
    ));
    let role = b.pure_bytes(vec![0, 0]); // not a u8
    let node = b.pure_bytes(tx::pure_string(""));
    let mut args = vec![pool];
    args.extend(coins);
    args.extend([role, node]);
    b.move_call(
        sui_transaction_builder::Function::new(
            d.package,
            sui_sdk_types::Identifier::from_static("staking"),
            sui_sdk_types::Identifier::from_static("stake"),
        ),
        args,
    );
    let fx = e.run(&e.alice, b.try_build().unwrap());
    assert!(
        matches!(
            fx.status,
            ExecutionStatus::Failure {
                command: Some(1),
                error: ExecutionFailure::CommandArgumentError { arg: 2, .. }
            }
        ),
        "{:?}",
        fx.status
    );
    assert_eq!(e.balance(&e.alice), START - FEE);
    assert_eq!(e.ledger.pool().unwrap().total_staked, 0);
}

#[test]
fn persistence_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let admin = SuiKeypair::from_seed([1; 32]);
    let alice = SuiKeypair::from_seed([2; 32]);
    let bob = SuiKeypair::from_seed([3; 32]);
    let g = genesis(&admin, &alice, &bob);
    let (digest, signed, token_id, d) = {
        let ledger = EmbeddedLedger::open(&path, &g).unwrap();
        let e = Env {
            ledger,
            admin: admin.clone(),
            alice: alice.clone(),
            bob: bob.clone(),
        };
        let signed = tx::sign(
            &tx::stake(&e.tcx(&e.alice), &e.d(), 1000, 1, "n").unwrap(),
            &e.alice,
        )
        .unwrap();
        let fx = e.ledger.execute_signed(&signed).unwrap();
        let (_, token) = e.issue(&e.alice);
        e.ledger.advance_epoch().unwrap();
        e.ledger.mint(bob.address(), 5).unwrap();
        (fx.digest, signed, token.unwrap().id, e.d())
    };
    let other = GenesisConfig::new(Address::new([9; 32]));
    let ledger = EmbeddedLedger::open(&path, &other).unwrap();
    let e = Env {
        ledger,
        admin,
        alice,
        bob,
    };
    assert_eq!(e.d(), d);
    assert_eq!(e.ledger.current_epoch().unwrap(), 1);
    assert!(e.ledger.effects(&digest).unwrap().is_some());
    assert!(matches!(
        e.ledger.execute_signed(&signed),
        Err(LedgerError::AlreadyExecuted(_))
    ));
    assert_eq!(
        e.ledger
            .stake_record(&e.alice.address())
            .unwrap()
            .unwrap()
            .amount,
        1000
    );
    assert!(e.ledger.is_seal_token_valid(&token_id).unwrap());
    assert_eq!(e.balance(&e.bob), START + 5);
    // keeps working after reopen; new mints get fresh ids
    e.ledger.mint(e.bob.address(), 6).unwrap();
    assert_eq!(e.ledger.coins_of(&e.bob.address()).unwrap().len(), 3);
    let fx = e.run(
        &e.alice,
        tx::request_unstake(&e.tcx(&e.alice), &e.d()).unwrap(),
    );
    assert!(fx.status.is_success());
}

struct ManualClock(std::sync::atomic::AtomicU64);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn epoch_clock_advances_with_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock(std::sync::atomic::AtomicU64::new(10_000)));
    let mut g = GenesisConfig::new(Address::new([1; 32]));
    g.epoch_duration = Some(Duration::from_secs(60));
    let l = EmbeddedLedger::open_with_clock(dir.path().join("l"), &g, clock.clone()).unwrap();
    assert_eq!(l.current_epoch().unwrap(), 0);
    clock
        .0
        .store(10_000 + 59_999, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(l.current_epoch().unwrap(), 0);
    clock
        .0
        .store(10_000 + 60_000 * 3 + 5, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(l.current_epoch().unwrap(), 3);
    assert_eq!(l.advance_epoch().unwrap(), 4);
    // a manual advance starts a full new epoch
    clock.0.store(
        10_000 + 60_000 * 3 + 5 + 59_999,
        std::sync::atomic::Ordering::SeqCst,
    );
    assert_eq!(l.current_epoch().unwrap(), 4);
    clock
        .0
        .store(10_000 + 60_000 * 4 + 5, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(l.current_epoch().unwrap(), 5);
}

#[tokio::test]
async fn ledger_trait_object() {
    let e = env();
    let ledger: Box<dyn Ledger> = Box::new(e.ledger.clone());
    assert_eq!(ledger.reference_gas_price().await.unwrap(), 1000);
    assert_eq!(ledger.epoch().await.unwrap(), 0);
    let d = ledger.deployment().await.unwrap();
    let gas = ledger.gas_coins(e.alice.address()).await.unwrap();
    assert_eq!(gas[0].1, START);
    let t = tx::stake(
        &Tcx::new(e.alice.address(), vec![gas[0].0.clone()]),
        &d,
        100,
        0,
        "",
    )
    .unwrap();
    let fx = ledger
        .execute(tx::sign(&t, &e.alice).unwrap())
        .await
        .unwrap();
    assert!(fx.status.is_success());
    assert_eq!(ledger.transaction(fx.digest).await.unwrap(), Some(fx));
    assert_eq!(
        ledger
            .stake(e.alice.address())
            .await
            .unwrap()
            .unwrap()
            .amount,
        100
    );
    assert!(ledger
        .seal_tokens_of(e.alice.address())
        .await
        .unwrap()
        .is_empty());
    let r = ledger.faucet(e.alice.address(), 9).await.unwrap();
    assert_eq!(
        ledger
            .get_object(*r.object_id())
            .await
            .unwrap()
            .unwrap()
            .coin_value(),
        Some(9)
    );
    assert!(ledger.seal_token(*r.object_id()).await.unwrap().is_none());
    assert!(!ledger.seal_token_valid(*r.object_id()).await.unwrap());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Stake(u8, u64, u8),
        Unstake(u8),
        Withdraw(u8),
        Issue(u8),
        Transfer(u8, u8, u64),
        Advance,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..3, 0u64..3000, 0u8..3).prop_map(|(w, a, r)| Op::Stake(w, a, r)),
            1 => (0u8..3).prop_map(Op::Unstake),
            1 => (0u8..3).prop_map(Op::Withdraw),
            1 => (0u8..3).prop_map(Op::Issue),
            1 => (0u8..3, 0u8..3, 0u64..2_000_000).prop_map(|(a, b, v)| Op::Transfer(a, b, v)),
            1 => Just(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Executed transactions conserve SUI: coins + staked + slashed + fees == minted.
        #[test]
        fn executor_conserves_sui(ops in proptest::collection::vec(op(), 1..25)) {
            let e = env();
            let keys = [&e.admin, &e.alice, &e.bob];
            let mut fees = 0u64;
            for op in ops {
                let fx = match op {
                    Op::Stake(w, a, r) => Some(e.stake(keys[w as usize], a, r, "node")),
                    Op::Unstake(w) => Some(e.run(keys[w as usize], tx::request_unstake(&e.tcx(keys[w as usize]), &e.d()).unwrap())),
                    Op::Withdraw(w) => Some(e.run(keys[w as usize], tx::withdraw(&e.tcx(keys[w as usize]), &e.d()).unwrap())),
                    Op::Issue(w) => Some(e.issue(keys[w as usize]).0),
                    Op::Transfer(a, b, v) => {
                        let t = tx::transfer_sui(&e.tcx(keys[a as usize]), &keys[b as usize].address(), v).unwrap();
                        Some(e.run(keys[a as usize], t))
                    }
                    Op::Advance => { e.ledger.advance_epoch().unwrap(); None }
                };
                if let Some(fx) = fx {
                    prop_assert_eq!(fx.gas_used, FEE);
                    fees += fx.gas_used;
                    if !fx.status.is_success() {
                        prop_assert!(fx.created.is_empty() && fx.events.is_empty());
                    }
                }
                let pool = e.ledger.pool().unwrap();
                let coins: u64 = keys.iter().map(|k| e.balance(k)).sum();
                prop_assert_eq!(coins + pool.staked + pool.slashed + fees, 3 * START);
                let sum: u64 = pool.stakes.values().map(|r| r.amount).sum();
                prop_assert_eq!(pool.total_staked, sum);
                // every stored object's digest matches its contents
                for o in e.snapshot() {
                    prop_assert_eq!(o.digest, o.compute_digest());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// issue 9: node-id uniqueness, single-use slash reports, state anchors (real signed transactions)

#[tokio::test]
async fn second_key_cannot_stake_a_taken_node_id_until_the_holder_withdrew() {
    let e = env();
    let fx = e.stake(&e.alice, 1000, 1, "worker-7");
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let ledger: &dyn Ledger = &e.ledger;
    let (owner, rec) = ledger.node_stake("worker-7").await.unwrap().unwrap();
    assert_eq!(
        (owner, rec.node_id.as_str(), rec.amount),
        (e.alice.address(), "worker-7", 1000)
    );
    assert!(ledger.node_stake("worker-8").await.unwrap().is_none());

    // bob, with more stake, tries to take over alice's node identity
    let fx = e.stake(&e.bob, 5000, 1, "worker-7");
    match &fx.status {
        ExecutionStatus::Failure {
            error:
                ExecutionFailure::MoveAbort {
                    module, code, name, ..
                },
            ..
        } => assert_eq!(
            (module.as_str(), *code, name.as_str()),
            ("staking", 12, "ENodeIdTaken")
        ),
        other => panic!("expected ENodeIdTaken, got {other:?}"),
    }
    assert!(e.ledger.stake_record(&e.bob.address()).unwrap().is_none());
    // while alice unbonds the node id stays hers
    let fx = e.run(
        &e.alice,
        tx::request_unstake(&e.tcx(&e.alice), &e.d()).unwrap(),
    );
    assert!(fx.status.is_success());
    assert_eq!(
        e.stake(&e.bob, 5000, 1, "worker-7").status.abort(),
        Some(("staking", 12))
    );
    e.ledger.advance_epoch().unwrap();
    e.ledger.advance_epoch().unwrap();
    let fx = e.run(&e.alice, tx::withdraw(&e.tcx(&e.alice), &e.d()).unwrap());
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert!(ledger.node_stake("worker-7").await.unwrap().is_none());
    // released: bob may stake it now, and alice is the one refused
    let fx = e.stake(&e.bob, 5000, 1, "worker-7");
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let (owner, _) = ledger.node_stake("worker-7").await.unwrap().unwrap();
    assert_eq!(owner, e.bob.address());
    assert_eq!(
        e.stake(&e.alice, 1000, 1, "worker-7").status.abort(),
        Some(("staking", 12))
    );
}

#[test]
fn slash_report_for_the_wrong_generation_is_refused() {
    let e = env();
    let enclave_key = Ed25519PrivateKey::new([9; 32]);
    let enclave = e
        .ledger
        .insert_enclave_for_tests(*enclave_key.public_key().inner())
        .unwrap();
    let config = e.d().enclave_config.unwrap();
    let node = e.bob.address();
    e.stake(&e.bob, 2000, 1, "node-b");
    let current = e.report(node, "dead", 0);
    for wrong in [
        contract::SlashReport {
            generation: current.generation + 1,
            ..current.clone()
        },
        contract::SlashReport {
            generation: 0,
            ..current.clone()
        },
        contract::SlashReport {
            node_id: "node-a".into(),
            ..current.clone()
        },
    ] {
        let sig: Ed25519Signature = enclave_key.sign(&contract::slash_report_message(&wrong, 5));
        let t = tx::slash(
            &e.tcx(&e.admin),
            &e.d(),
            &config,
            &enclave,
            &wrong,
            5,
            sig.inner(),
        )
        .unwrap();
        assert_eq!(
            e.run(&e.admin, t).status.abort(),
            Some(("staking", 13)),
            "{wrong:?}"
        );
    }
    assert_eq!(e.ledger.stake_record(&node).unwrap().unwrap().amount, 2000);
    let sig: Ed25519Signature = enclave_key.sign(&contract::slash_report_message(&current, 5));
    let t = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &config,
        &enclave,
        &current,
        5,
        sig.inner(),
    )
    .unwrap();
    assert!(e.run(&e.admin, t).status.is_success());
    let rec = e.ledger.stake_record(&node).unwrap().unwrap();
    assert_eq!((rec.amount, rec.slash_count), (1800, 1));
}

#[tokio::test]
async fn anchor_state_transactions() {
    let e = env();
    let enclave_key = Ed25519PrivateKey::new([9; 32]);
    let enclave = e
        .ledger
        .insert_enclave_for_tests(*enclave_key.public_key().inner())
        .unwrap();
    let config = e.d().enclave_config.unwrap();
    let anchor = |revision: u64, ts: u64, signed_revision: u64| {
        let sig: Ed25519Signature = enclave_key.sign(&contract::state_anchor_message(
            config.id,
            signed_revision,
            ts,
        ));
        let t = tx::anchor_state(
            &e.tcx(&e.alice),
            &e.d(),
            &config,
            &enclave,
            revision,
            ts,
            sig.inner(),
        )
        .unwrap();
        e.run(&e.alice, t)
    };
    let fx = anchor(40, 1000, 40);
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        fx.events,
        vec![contract::Event::StateAnchored {
            config_id: config.id,
            revision: 40,
            timestamp_ms: 1000
        }]
    );
    assert!(fx.mutated.iter().any(|(r, _)| *r.object_id() == config.id));
    let ledger: &dyn Ledger = &e.ledger;
    let c = ledger.enclave_config(config.id).await.unwrap().unwrap();
    assert_eq!((c.anchored_revision, c.anchored_at_ms), (40, 1000));
    // lower revision: ERevisionRollback; signature over another revision: EBadAnchor
    assert_eq!(anchor(39, 1001, 39).status.abort(), Some(("enclave", 205)));
    assert_eq!(anchor(50, 1001, 49).status.abort(), Some(("enclave", 204)));
    assert!(anchor(40, 1002, 40).status.is_success());
    assert!(anchor(41, 1003, 41).status.is_success());
    assert_eq!(
        ledger
            .enclave_config(config.id)
            .await
            .unwrap()
            .unwrap()
            .anchored_revision,
        41
    );
    // not a config
    assert!(matches!(
        ledger.enclave_config(enclave.id).await,
        Err(LedgerError::Backend(_))
    ));
    assert!(ledger
        .enclave_config(Address::new([0x42; 32]))
        .await
        .unwrap()
        .is_none());
    // a stale enclave cannot anchor
    let fx = e.run(
        &e.admin,
        tx::update_pcrs(&e.tcx(&e.admin), &e.d(), &[5; 48], &[1; 48], &[2; 48]).unwrap(),
    );
    assert!(fx.status.is_success());
    assert_eq!(anchor(60, 1004, 60).status.abort(), Some(("enclave", 203)));
    assert_eq!(
        ledger
            .enclave_config(config.id)
            .await
            .unwrap()
            .unwrap()
            .anchored_revision,
        41
    );
}

// ---------------------------------------------------------------------------------------------
// issue 16: the economy (escrow, settlement, earnings, treasury) with real signed transactions

/// An env with an enclave, two staked nodes (bob: "node-b", carol: "node-c") and alice's escrow.
struct Econ {
    e: Env,
    carol: SuiKeypair,
    enclave_key: Ed25519PrivateKey,
    enclave: SharedRef,
    config: SharedRef,
}

const ECON_DEPOSIT: u64 = 1_000_000;

fn econ() -> Econ {
    let e = env();
    let carol = SuiKeypair::from_seed([4; 32]);
    e.ledger.mint(carol.address(), START).unwrap();
    let enclave_key = Ed25519PrivateKey::new([9; 32]);
    let enclave = e
        .ledger
        .insert_enclave_for_tests(*enclave_key.public_key().inner())
        .unwrap();
    let config = e.d().enclave_config.unwrap();
    assert!(e.stake(&e.bob, 2000, 1, "node-b").status.is_success());
    assert!(e.stake(&carol, 2000, 1, "node-c").status.is_success());
    let fx = e.run(
        &e.alice,
        tx::deposit(&e.tcx(&e.alice), &e.d(), ECON_DEPOSIT).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    Econ {
        e,
        carol,
        enclave_key,
        enclave,
        config,
    }
}

fn line(
    user: Address,
    node: &str,
    generation: u64,
    cpu: u64,
    mem: u64,
    pod: u64,
) -> contract::UsageLine {
    contract::UsageLine {
        user,
        node_id: node.into(),
        generation,
        cpu_ms: cpu,
        mem_mib_s: mem,
        pod_s: pod,
        uptime_ms: 60_000,
    }
}

impl Econ {
    fn market_id(&self) -> ObjectId {
        self.e.d().market.expect("market").id
    }

    fn report(&self, period: u64, lines: Vec<contract::UsageLine>) -> contract::UsageReport {
        let mut r = contract::UsageReport::new(
            self.market_id(),
            period,
            period * 60_000,
            (period + 1) * 60_000,
        );
        for l in lines {
            r.push(l);
        }
        r
    }

    /// `settle` of `report` signed by `key`, submitted by the admin (anyone may submit).
    fn settle_signed_by(
        &self,
        report: &contract::UsageReport,
        key: &Ed25519PrivateKey,
    ) -> TransactionEffects {
        let ts = 1_700_000_000_000 + report.period;
        let sig: Ed25519Signature = key.sign(&report.signing_bytes(ts));
        let t = tx::settle(
            &self.e.tcx(&self.e.admin),
            &self.e.d(),
            &self.config,
            &self.enclave,
            report,
            ts,
            sig.inner(),
        )
        .unwrap();
        self.e.run(&self.e.admin, t)
    }

    fn settle(&self, report: &contract::UsageReport) -> TransactionEffects {
        self.settle_signed_by(report, &self.enclave_key)
    }

    fn account(&self, who: &SuiKeypair) -> Option<contract::Account> {
        self.e.ledger.account_of(&who.address()).unwrap()
    }

    fn earnings(&self, who: &SuiKeypair) -> Option<contract::Earnings> {
        self.e.ledger.earnings_of(&who.address()).unwrap()
    }
}

#[test]
fn market_at_genesis_has_default_prices() {
    let e = env();
    let d = e.d();
    let m = d.market.expect("market in the deployment");
    assert_eq!(m.initial_shared_version, 1);
    let market = e.ledger.market_now().unwrap();
    assert_eq!(market.id, m.id);
    assert_eq!(
        (market.price_cpu, market.price_mem, market.price_pod),
        (1000, 1, 1000)
    );
    assert_eq!(
        (market.last_period, market.escrow, market.payouts),
        (0, 0, 0)
    );
    let o = e.ledger.object(&m.id).unwrap().unwrap();
    assert_eq!(o.kind(), ObjectKind::Market);
    assert!(o.type_name(&d.package).ends_with("::economy::Market"));
}

#[test]
fn deposit_top_up_and_withdraw_escrow() {
    let e = env();
    let before = e.balance(&e.alice);
    let fx = e.run(
        &e.alice,
        tx::deposit(&e.tcx(&e.alice), &e.d(), 5000).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        fx.events,
        vec![contract::Event::Deposited {
            user: e.alice.address(),
            amount: 5000,
            balance: 5000
        }]
    );
    let fx = e.run(
        &e.alice,
        tx::deposit(&e.tcx(&e.alice), &e.d(), 3000).unwrap(),
    );
    assert!(fx.status.is_success());
    let acct = e.ledger.account_of(&e.alice.address()).unwrap().unwrap();
    assert_eq!((acct.balance, acct.deposited, acct.spent), (8000, 8000, 0));
    assert_eq!(e.balance(&e.alice), before - 8000 - 2 * FEE);
    // withdraw part
    let fx = e.run(
        &e.alice,
        tx::withdraw_escrow(&e.tcx(&e.alice), &e.d(), 2000).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        fx.events,
        vec![contract::Event::EscrowWithdrawn {
            user: e.alice.address(),
            amount: 2000,
            balance: 6000
        }]
    );
    assert_eq!(e.balance(&e.alice), before - 6000 - 3 * FEE);
    assert_eq!(e.ledger.market_now().unwrap().escrow, 6000);
    // refusals: above the balance, zero, no account, no earnings; nothing changes
    let market = e.ledger.market_now().unwrap();
    type Build = fn(&Tcx, &Deployment) -> Result<Transaction, tx::TxError>;
    let cases: [(&SuiKeypair, Build, u64); 5] = [
        (&e.alice, |c, d| tx::withdraw_escrow(c, d, 6001), 301),
        (&e.alice, |c, d| tx::withdraw_escrow(c, d, 0), 306),
        (&e.alice, |c, d| tx::deposit(c, d, 0), 306),
        (&e.bob, |c, d| tx::withdraw_escrow(c, d, 1), 307),
        (&e.alice, |c, d| tx::withdraw_earnings(c, d, 1), 308),
    ];
    for (who, build, abort) in cases {
        let fx = e.run(who, build(&e.tcx(who), &e.d()).unwrap());
        assert_eq!(
            fx.status.abort(),
            Some(("economy", abort)),
            "{:?}",
            fx.status
        );
        assert!(fx.events.is_empty() && fx.created.is_empty());
    }
    assert_eq!(e.ledger.market_now().unwrap(), market);
    // the refused withdrawal names the abort
    let fx = e.run(
        &e.alice,
        tx::withdraw_escrow(&e.tcx(&e.alice), &e.d(), 10_000).unwrap(),
    );
    match fx.status {
        ExecutionStatus::Failure {
            error: ExecutionFailure::MoveAbort { function, name, .. },
            ..
        } => assert_eq!(
            (function.as_str(), name.as_str()),
            ("withdraw_escrow", "EInsufficientBalance")
        ),
        other => panic!("{other:?}"),
    }
    // everything can be withdrawn
    let fx = e.run(
        &e.alice,
        tx::withdraw_escrow(&e.tcx(&e.alice), &e.d(), 6000).unwrap(),
    );
    assert!(fx.status.is_success());
    assert_eq!(e.ledger.market_now().unwrap().escrow, 0);
}

#[test]
fn deposit_overflow_is_eoverflow() {
    let e = env();
    // Alice's escrow close to u64::MAX, then one more deposit overflows the account balance.
    e.ledger.mint(e.alice.address(), u64::MAX - START).unwrap();
    let big = u64::MAX - START;
    let coins = e.ledger.coins_of(&e.alice.address()).unwrap();
    let fx = e.run(
        &e.alice,
        tx::deposit(
            &Tcx::new(e.alice.address(), vec![coins[0].0.clone()]),
            &e.d(),
            big - DEFAULT_GAS_BUDGET_MARGIN,
        )
        .unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let have = e
        .ledger
        .account_of(&e.alice.address())
        .unwrap()
        .unwrap()
        .balance;
    // a second coin large enough to overflow the account
    e.ledger.mint(e.alice.address(), u64::MAX - 10).unwrap();
    let coins = e.ledger.coins_of(&e.alice.address()).unwrap();
    let amount = u64::MAX - have + 1;
    assert!(coins[0].1 > amount + DEFAULT_GAS_BUDGET_MARGIN);
    let fx = e.run(
        &e.alice,
        tx::deposit(
            &Tcx::new(e.alice.address(), vec![coins[0].0.clone()]),
            &e.d(),
            amount,
        )
        .unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("economy", 305)), "{:?}", fx.status);
    assert_eq!(
        e.ledger
            .account_of(&e.alice.address())
            .unwrap()
            .unwrap()
            .balance,
        have
    );
}

const DEFAULT_GAS_BUDGET_MARGIN: u64 = 2 * tx::DEFAULT_GAS_BUDGET;

#[test]
fn settle_charges_escrow_and_pays_operators_with_documented_rounding() {
    let x = econ();
    let e = &x.e;
    let alice = e.alice.address();
    // line 1: (1500*1000 + 2500*1 + 60*1000) / 1000 = 1562.5 -> 1562
    // line 2: (999*1000 + 1*1 + 1*1000) / 1000 = 1000.001 -> 1000
    let r = x.report(
        1,
        vec![
            line(alice, "node-b", 1, 1500, 2500, 60),
            line(alice, "node-c", 1, 999, 1, 1),
        ],
    );
    let fx = x.settle(&r);
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let epoch = e.ledger.current_epoch().unwrap();
    assert_eq!(
        fx.events,
        vec![
            contract::Event::Charged {
                period: 1,
                user: alice,
                node_id: "node-b".into(),
                operator: e.bob.address(),
                cost: 1562,
                charged: 1562
            },
            contract::Event::Charged {
                period: 1,
                user: alice,
                node_id: "node-c".into(),
                operator: x.carol.address(),
                cost: 1000,
                charged: 1000
            },
            contract::Event::Settled {
                period: 1,
                lines: 2,
                charged_total: 2562,
                epoch
            },
        ]
    );
    let acct = x.account(&e.alice).unwrap();
    assert_eq!(
        (acct.balance, acct.spent, acct.last_period, acct.last_charge),
        (ECON_DEPOSIT - 2562, 2562, 1, 1000)
    );
    let b = x.earnings(&e.bob).unwrap();
    assert_eq!(
        (b.balance, b.earned, b.uptime_ms, b.last_period),
        (1562, 1562, 60_000, 1)
    );
    assert_eq!(x.earnings(&x.carol).unwrap().balance, 1000);
    let m = e.ledger.market_now().unwrap();
    assert_eq!(
        (m.escrow, m.payouts, m.last_period),
        (ECON_DEPOSIT - 2562, 2562, 1)
    );
    // the console / CLI view: newest first
    let recent = e.ledger.recent_events_now(3).unwrap();
    assert_eq!(recent.len(), 3);
    assert!(matches!(
        recent[0].event,
        contract::Event::Settled { period: 1, .. }
    ));
    assert_eq!(recent[0].digest, fx.digest);
    assert!(matches!(
        recent[2].event,
        contract::Event::Charged { cost: 1562, .. }
    ));

    // replaying the same signed report: EReplayedReport, nothing changes
    let fx = x.settle(&r);
    assert_eq!(fx.status.abort(), Some(("economy", 303)));
    // a forged report (signed by another key): EBadUsageReport
    let forged = x.report(2, vec![line(alice, "node-b", 1, 1_000_000, 0, 0)]);
    let fx = x.settle_signed_by(&forged, &Ed25519PrivateKey::new([7; 32]));
    assert_eq!(fx.status.abort(), Some(("economy", 302)));
    // a report signed for another market id: EBadUsageReport
    let mut other = forged.clone();
    other.market_id = e.d().pool.id;
    let fx = x.settle(&other);
    assert_eq!(fx.status.abort(), Some(("economy", 302)));
    assert_eq!(e.ledger.market_now().unwrap(), m);

    // operators withdraw their earnings; above the balance is refused
    let before = e.balance(&e.bob);
    let fx = e.run(
        &e.bob,
        tx::withdraw_earnings(&e.tcx(&e.bob), &e.d(), 1563).unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("economy", 301)));
    let fx = e.run(
        &e.bob,
        tx::withdraw_earnings(&e.tcx(&e.bob), &e.d(), 1562).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(e.balance(&e.bob), before + 1562 - 2 * FEE);
    let b = x.earnings(&e.bob).unwrap();
    assert_eq!((b.balance, b.earned, b.withdrawn), (0, 1562, 1562));
    assert_eq!(e.ledger.market_now().unwrap().payouts, 1000);
}

#[test]
fn settle_skips_slashed_nodes_stale_generations_and_users_without_account() {
    let x = econ();
    let e = &x.e;
    let alice = e.alice.address();
    // slash carol's node
    e.ledger.advance_epoch().unwrap();
    let rep = e.report(x.carol.address(), "NotReady", 1);
    let sig: Ed25519Signature = x.enclave_key.sign(&contract::slash_report_message(&rep, 5));
    let t = tx::slash(
        &e.tcx(&e.admin),
        &e.d(),
        &x.config,
        &x.enclave,
        &rep,
        5,
        sig.inner(),
    )
    .unwrap();
    assert!(e.run(&e.admin, t).status.is_success());
    let r = x.report(
        1,
        vec![
            line(alice, "node-b", 1, 1000, 0, 0),
            line(alice, "node-c", 1, 1000, 0, 0),
            line(alice, "node-b", 2, 1000, 0, 0),
            line(e.bob.address(), "node-b", 1, 1000, 0, 0),
            line(alice, "node-x", 1, 1000, 0, 0),
        ],
    );
    let fx = x.settle(&r);
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let skipped: Vec<_> = fx
        .events
        .iter()
        .filter_map(|ev| match ev {
            contract::Event::UsageSkipped {
                node_id, reason, ..
            } => Some((node_id.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("node-c", "not_active"),
            ("node-b", "generation"),
            ("node-b", "no_account"),
            ("node-x", "no_stake"),
        ]
    );
    assert_eq!(x.account(&e.alice).unwrap().balance, ECON_DEPOSIT - 1000);
    assert_eq!(x.earnings(&e.bob).unwrap().balance, 1000);
    assert!(
        x.earnings(&x.carol).is_none(),
        "a slashed node earns nothing"
    );
    // the slashed stake is the treasury; only the AdminCap holder withdraws it
    let slashed = e.ledger.pool().unwrap().slashed;
    assert_eq!(slashed, 200);
    let fx = e.run(
        &e.admin,
        tx::withdraw_treasury(&e.tcx(&e.admin), &e.d(), slashed + 1).unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("staking", 14)));
    // bob names the admin's cap: refused before execution (not his object)
    let t = tx::withdraw_treasury(&e.tcx(&e.bob), &e.d(), 1).unwrap();
    assert!(matches!(
        e.ledger.execute_signed(&tx::sign(&t, &e.bob).unwrap()),
        Err(LedgerError::NotOwned { .. })
    ));
    let before = e.balance(&e.admin);
    let fx = e.run(
        &e.admin,
        tx::withdraw_treasury(&e.tcx(&e.admin), &e.d(), 150).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        fx.events,
        vec![contract::Event::TreasuryWithdrawn {
            recipient: e.admin.address(),
            amount: 150,
            remaining: 50
        }]
    );
    assert_eq!(e.balance(&e.admin), before + 150 - FEE);
    assert_eq!(e.ledger.pool().unwrap().slashed, 50);
}

#[test]
fn settle_charges_at_most_the_balance() {
    let x = econ();
    let e = &x.e;
    let alice = e.alice.address();
    // cost 2_000_000 > deposit: the whole balance is charged
    let r = x.report(1, vec![line(alice, "node-b", 1, 2_000_000, 0, 0)]);
    let fx = x.settle(&r);
    assert!(fx.status.is_success());
    assert!(fx.events.contains(&contract::Event::Charged {
        period: 1,
        user: alice,
        node_id: "node-b".into(),
        operator: e.bob.address(),
        cost: 2_000_000,
        charged: ECON_DEPOSIT
    }));
    assert_eq!(x.account(&e.alice).unwrap().balance, 0);
    assert_eq!(x.earnings(&e.bob).unwrap().balance, ECON_DEPOSIT);
}

#[test]
fn settle_refusals_stale_enclave_length_mismatch_overflow() {
    let x = econ();
    let e = &x.e;
    let alice = e.alice.address();
    let m0 = e.ledger.market_now().unwrap();
    // length mismatch
    let mut r = x.report(1, vec![line(alice, "node-b", 1, 1, 1, 1)]);
    r.pod_s.push(5);
    assert_eq!(x.settle(&r).status.abort(), Some(("economy", 309)));
    // overflow with huge usage: (MAX*1000 + MAX*1000) / 1000 > u64::MAX
    let r = x.report(1, vec![line(alice, "node-b", 1, u64::MAX, 0, u64::MAX)]);
    assert_eq!(x.settle(&r).status.abort(), Some(("economy", 305)));
    // overflow with huge prices
    let fx = e.run(
        &e.admin,
        tx::set_prices(&e.tcx(&e.admin), &e.d(), u64::MAX, u64::MAX, u64::MAX).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    assert_eq!(
        fx.events,
        vec![contract::Event::PricesSet {
            price_cpu: u64::MAX,
            price_mem: u64::MAX,
            price_pod: u64::MAX
        }]
    );
    let r = x.report(1, vec![line(alice, "node-b", 1, 2000, 0, 0)]);
    assert_eq!(x.settle(&r).status.abort(), Some(("economy", 305)));
    // only the AdminCap holder sets prices
    let t = tx::set_prices(&e.tcx(&e.alice), &e.d(), 1, 1, 1).unwrap();
    assert!(matches!(
        e.ledger.execute_signed(&tx::sign(&t, &e.alice).unwrap()),
        Err(LedgerError::NotOwned { .. })
    ));
    let fx = e.run(
        &e.admin,
        tx::set_prices(&e.tcx(&e.admin), &e.d(), 1000, 1, 1000).unwrap(),
    );
    assert!(fx.status.is_success());
    // stale enclave after update_pcrs (checked before the signature)
    let fx = e.run(
        &e.admin,
        tx::update_pcrs(&e.tcx(&e.admin), &e.d(), &[5; 48], &[1; 48], &[2; 48]).unwrap(),
    );
    assert!(fx.status.is_success());
    let r = x.report(1, vec![line(alice, "node-b", 1, 1000, 0, 0)]);
    assert_eq!(x.settle(&r).status.abort(), Some(("economy", 304)));
    let forged = x.settle_signed_by(&r, &Ed25519PrivateKey::new([7; 32]));
    assert_eq!(forged.status.abort(), Some(("economy", 304)));
    let m = e.ledger.market_now().unwrap();
    assert_eq!(
        (m.escrow, m.payouts, m.last_period, &m.accounts, &m.earnings),
        (
            m0.escrow,
            m0.payouts,
            m0.last_period,
            &m0.accounts,
            &m0.earnings
        )
    );
}

#[test]
fn settle_aborting_on_the_third_line_changes_nothing() {
    let x = econ();
    let e = &x.e;
    let alice = e.alice.address();
    let market = e.ledger.market_now().unwrap();
    let pool = e.ledger.pool().unwrap();
    let r = x.report(
        1,
        vec![
            line(alice, "node-b", 1, 1000, 0, 0),
            line(alice, "node-c", 1, 1000, 0, 0),
            line(alice, "node-b", 1, u64::MAX, 0, u64::MAX),
        ],
    );
    let fx = x.settle(&r);
    assert_eq!(fx.status.abort(), Some(("economy", 305)));
    assert_eq!(
        fx.status,
        ExecutionStatus::Failure {
            command: Some(0),
            error: ExecutionFailure::MoveAbort {
                module: "economy".into(),
                function: "settle".into(),
                code: 305,
                name: "EOverflow".into(),
                message: contract::ContractError::Overflow.to_string(),
            }
        }
    );
    assert!(fx.events.is_empty());
    assert_eq!(e.ledger.market_now().unwrap(), market);
    assert_eq!(e.ledger.pool().unwrap(), pool);
    assert!(x.earnings(&e.bob).is_none() && x.earnings(&x.carol).is_none());
    assert_eq!(x.account(&e.alice).unwrap().balance, ECON_DEPOSIT);
    // the same period settles once the report is valid
    let r = x.report(1, vec![line(alice, "node-b", 1, 1000, 0, 0)]);
    assert!(x.settle(&r).status.is_success());
}

#[tokio::test]
async fn economy_reads_through_the_ledger_trait_and_http() {
    let x = econ();
    let e = &x.e;
    let r = x.report(1, vec![line(e.alice.address(), "node-b", 1, 1000, 0, 0)]);
    assert!(x.settle(&r).status.is_success());
    let local: Arc<dyn Ledger> = Arc::new(e.ledger.clone());
    let app = crate::http::router(local.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let remote = crate::RemoteLedger::new(&format!("http://{addr}")).unwrap();
    for l in [local, Arc::new(remote) as Arc<dyn Ledger>] {
        let m = l.market().await.unwrap().unwrap();
        assert_eq!(m, e.ledger.market_now().unwrap());
        let a = l.account(e.alice.address()).await.unwrap().unwrap();
        assert_eq!(a.balance, ECON_DEPOSIT - 1000);
        assert!(l.account(e.bob.address()).await.unwrap().is_none());
        assert_eq!(
            l.earnings(e.bob.address()).await.unwrap().unwrap().earned,
            1000
        );
        assert!(l.earnings(e.alice.address()).await.unwrap().is_none());
        let ev = l.recent_events(2).await.unwrap();
        assert_eq!(ev, e.ledger.recent_events_now(2).unwrap());
        assert!(matches!(ev[0].event, contract::Event::Settled { .. }));
        assert_eq!(l.deployment().await.unwrap().market, e.d().market);
    }
    server.abort();
}

#[test]
fn market_survives_reopen_and_old_ledgers_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let admin = SuiKeypair::from_seed([1; 32]);
    let alice = SuiKeypair::from_seed([2; 32]);
    let bob = SuiKeypair::from_seed([3; 32]);
    let g = genesis(&admin, &alice, &bob);
    let market_id;
    {
        let l = EmbeddedLedger::open(&path, &g).unwrap();
        let d = l.deployment_now().unwrap();
        market_id = d.market.unwrap().id;
        let gas = vec![l.coins_of(&alice.address()).unwrap()[0].0.clone()];
        let t = tx::deposit(&Tcx::new(alice.address(), gas), &d, 777).unwrap();
        assert!(l
            .execute_signed(&tx::sign(&t, &alice).unwrap())
            .unwrap()
            .status
            .is_success());
    }
    let l = EmbeddedLedger::open(&path, &g).unwrap();
    assert_eq!(l.deployment_now().unwrap().market.unwrap().id, market_id);
    assert_eq!(
        l.account_of(&alice.address()).unwrap().unwrap().balance,
        777
    );
    assert_eq!(l.recent_events_now(10).unwrap().len(), 1);
    // a ledger written before the economy (no market key): the market appears on open
    drop(l);
    {
        let db = Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut m = w.open_table(META).unwrap();
            m.remove(MARKET_KEY).unwrap();
            let mut t = w.open_table(OBJECTS).unwrap();
            t.remove(market_id.as_bytes()).unwrap();
        }
        w.commit().unwrap();
    }
    let l = EmbeddedLedger::open(&path, &g).unwrap();
    let m = l.market_now().unwrap();
    assert_eq!(m.id, market_id, "same deterministic id");
    assert!(m.accounts.is_empty());
}

/// SEV-SNP / TDX registration through the embedded ledger's native verifier, and the admin path
/// (the Sui form for platforms Sui cannot verify).
#[test]
fn platform_enclaves_are_registered_with_their_platform() {
    let e = env();
    struct Snp;
    impl contract::AttestationVerifier for Snp {
        fn verify(&self, _d: &[u8], _n: u64) -> Result<contract::AttestedEnclave, String> {
            Err("nitro not accepted here".into())
        }
        fn verify_platform(
            &self,
            platform: u8,
            evidence: &[u8],
            _now_ms: u64,
        ) -> Result<contract::AttestedEnclave, String> {
            if platform != contract::PLATFORM_SEV_SNP || evidence != b"report" {
                return Err("bad evidence".into());
            }
            Ok(contract::AttestedEnclave {
                pcr0: vec![0; 48],
                pcr1: vec![1; 48],
                pcr2: vec![2; 48],
                public_key: vec![6; 32],
                platform,
            })
        }
    }
    e.ledger.set_attestation_verifier(Arc::new(Snp));
    let fx = e.run(
        &e.alice,
        tx::register_enclave_platform_raw(&e.tcx(&e.alice), &e.d(), 7, b"report").unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("enclave", 206)));
    let fx = e.run(
        &e.alice,
        tx::register_enclave_platform_raw(&e.tcx(&e.alice), &e.d(), 2, b"report").unwrap(),
    );
    assert_eq!(fx.status.abort(), Some(("nitro_attestation", 2)));
    let fx = e.run(
        &e.alice,
        tx::register_enclave_platform_raw(&e.tcx(&e.alice), &e.d(), 1, b"report").unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let o = e
        .ledger
        .object(fx.created[0].0.object_id())
        .unwrap()
        .unwrap();
    assert!(
        matches!(o.data, ObjectData::Move(ContractObject::Enclave(ref en)) if en.platform == 1 && en.pk == vec![6; 32])
    );

    // Admin path: alice holds no AdminCap; the admin can.
    let tx = tx::register_attested_enclave(&e.tcx(&e.alice), &e.d(), 2, &[8; 32]).unwrap();
    match e.ledger.execute_signed(&tx::sign(&tx, &e.alice).unwrap()) {
        Ok(fx) => assert!(!fx.status.is_success(), "a non-admin registered an enclave"),
        Err(err) => assert!(
            err.to_string().contains("is not owned by the sender"),
            "{err}"
        ),
    }
    let fx = e.run(
        &e.admin,
        tx::register_attested_enclave(&e.tcx(&e.admin), &e.d(), 2, &[8; 32]).unwrap(),
    );
    assert!(fx.status.is_success(), "{:?}", fx.status);
    let o = e
        .ledger
        .object(fx.created[0].0.object_id())
        .unwrap()
        .unwrap();
    assert!(
        matches!(o.data, ObjectData::Move(ContractObject::Enclave(ref en)) if en.platform == 2 && en.owner == e.admin.address())
    );
}
