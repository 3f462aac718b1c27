use super::*;
use proptest::prelude::*;
use sui_crypto::ed25519::Ed25519PrivateKey;
use sui_crypto::Signer;

fn addr(b: u8) -> Address {
    Address::new([b; 32])
}

fn ctx(sender: Address, epoch: u64) -> TxContext {
    TxContext::new(
        sender,
        epoch,
        1_700_000_000_000,
        Digest::new([epoch as u8; 32]),
    )
}

fn coin(value: u64) -> Coin {
    Coin {
        id: addr(0xcc),
        value,
    }
}

fn setup() -> (AdminCap, StakingPool, Gateway) {
    let mut c = ctx(addr(0xad), 0);
    let (cap, pool) = staking_init(&mut c);
    let gw = gateway_init("https://master:6443".into(), &mut c);
    (cap, pool, gw)
}

fn enclave_key() -> Ed25519PrivateKey {
    Ed25519PrivateKey::new([7; 32])
}

fn enclave_setup(cap: &AdminCap) -> (EnclaveConfig, Enclave) {
    let mut c = ctx(addr(0xad), 0);
    create_enclave_config(
        cap,
        "master".into(),
        vec![0; 48],
        vec![1; 48],
        vec![2; 48],
        &mut c,
    );
    let Some(NewObject::Shared(ContractObject::EnclaveConfig(config))) = c.new_objects.pop() else {
        panic!("config not shared")
    };
    let doc = AttestedEnclave {
        pcr0: vec![0; 48],
        pcr1: vec![1; 48],
        pcr2: vec![2; 48],
        public_key: enclave_key().public_key().inner().to_vec(),
        platform: PLATFORM_NITRO,
    };
    register_enclave(&config, &doc, &mut c).unwrap();
    let Some(NewObject::Shared(ContractObject::Enclave(enclave))) = c.new_objects.pop() else {
        panic!("enclave not shared")
    };
    (config, enclave)
}

/// The report about `node`'s current record (node id, generation and slash count from the pool;
/// empty/zero when it has no record).
fn report_now(pool: &StakingPool, node: Address, reason: &str, epoch: u64) -> SlashReport {
    match pool.stakes.get(&node) {
        Some(r) => SlashReport::for_record(node, r, reason, epoch),
        None => SlashReport {
            node,
            node_id: String::new(),
            generation: 0,
            nonce: 0,
            reason: reason.into(),
            epoch,
        },
    }
}

fn sign(report: &SlashReport, ts: u64) -> Vec<u8> {
    let sig: Ed25519Signature = enclave_key().sign(&slash_report_message(report, ts));
    sig.inner().to_vec()
}

fn sign_report(pool: &StakingPool, node: Address, reason: &str, ts: u64, epoch: u64) -> Vec<u8> {
    sign(&report_now(pool, node, reason, epoch), ts)
}

/// `slash` with the node id, generation and nonce of `node`'s current record.
#[allow(clippy::too_many_arguments)]
fn slash_now(
    pool: &mut StakingPool,
    config: &EnclaveConfig,
    enclave: &Enclave,
    node: Address,
    reason: String,
    ts: u64,
    sig: &[u8],
    c: &mut TxContext,
) -> Result<(), ContractError> {
    let r = report_now(pool, node, &reason, c.epoch);
    slash(
        pool,
        config,
        enclave,
        node,
        r.node_id,
        r.generation,
        r.nonce,
        reason,
        ts,
        sig,
        c,
    )
}

fn do_slash(
    pool: &mut StakingPool,
    enclave: &Enclave,
    config: &EnclaveConfig,
    node: Address,
    epoch: u64,
) -> Result<(), ContractError> {
    let sig = sign_report(pool, node, "missed heartbeats", 42, epoch);
    slash_now(
        pool,
        config,
        enclave,
        node,
        "missed heartbeats".into(),
        42,
        &sig,
        &mut ctx(addr(0xee), epoch),
    )
}

#[test]
fn abort_codes_and_modules() {
    assert_eq!(ContractError::InsufficientStake.code(), Some(1));
    assert_eq!(ContractError::AlreadySlashed.code(), Some(11));
    assert_eq!(ContractError::NoActiveStake.module(), "k8s_gateway");
    assert_eq!(ContractError::InvalidTtl.code(), Some(103));
    assert_eq!(ContractError::InvalidPk.module(), "enclave");
    assert_eq!(ContractError::InvalidPk.code(), Some(202));
    assert_eq!(ContractError::InvalidPcrs.name(), "EInvalidPCRs");
    assert_eq!(
        ContractError::Arithmetic {
            module: "staking".into()
        }
        .code(),
        None
    );
}

#[test]
fn defaults() {
    let (_, pool, gw) = setup();
    assert_eq!(min_stake(&pool, 0), Ok(100));
    assert_eq!(min_stake(&pool, 1), Ok(1000));
    assert_eq!(min_stake(&pool, 2), Ok(10000));
    assert_eq!(min_stake(&pool, 3), Err(ContractError::InvalidRole));
    assert_eq!(pool.lockup_epochs, 2);
    assert_eq!(pool.slash_bps, 1000);
    assert_eq!(gw.token_ttl_epochs, 30);
    assert_eq!(stake_status(&pool, &addr(1)), STATUS_NONE);
    assert_eq!(stake_amount(&pool, &addr(1)), 0);
    assert!(!is_active(&pool, &addr(1)));
}

#[test]
fn stake_validation() {
    let (_, mut pool, _) = setup();
    let a = addr(1);
    assert_eq!(
        stake(&mut pool, coin(5000), 3, "".into(), &mut ctx(a, 0)),
        Err(ContractError::InvalidRole)
    );
    assert_eq!(
        stake(&mut pool, coin(5000), 1, "".into(), &mut ctx(a, 0)),
        Err(ContractError::MissingNodeId)
    );
    assert_eq!(
        stake(&mut pool, coin(999), 1, "n1".into(), &mut ctx(a, 0)),
        Err(ContractError::InsufficientStake)
    );
    assert_eq!(
        stake(&mut pool, coin(99), 0, "".into(), &mut ctx(a, 0)),
        Err(ContractError::InsufficientStake)
    );
    assert_eq!(
        stake(&mut pool, coin(9999), 2, "".into(), &mut ctx(a, 0)),
        Err(ContractError::InsufficientStake)
    );
    assert_eq!(pool.total_staked, 0);
    let mut c = ctx(a, 4);
    stake(&mut pool, coin(1000), 1, "n1".into(), &mut c).unwrap();
    assert_eq!(c.deleted, vec![addr(0xcc)]);
    assert_eq!(
        c.events,
        vec![Event::Staked {
            staker: a,
            role: 1,
            node_id: "n1".into(),
            amount: 1000,
            total: 1000,
            generation: 1
        }]
    );
    let r = &pool.stakes[&a];
    assert_eq!(
        (r.status, r.generation, r.staked_epoch, r.amount),
        (STATUS_ACTIVE, 1, 4, 1000)
    );
    assert_eq!(pool.total_staked, 1000);
    assert_eq!(pool.staked, 1000);
    assert!(is_active(&pool, &a));
    assert_eq!(stake_role(&pool, &a), 1);
    assert_eq!(stake_generation(&pool, &a), 1);
}

#[test]
fn top_up_rules() {
    let (_, mut pool, _) = setup();
    let a = addr(1);
    stake(&mut pool, coin(1000), 1, "n1".into(), &mut ctx(a, 0)).unwrap();
    assert_eq!(
        stake(&mut pool, coin(10), 0, "".into(), &mut ctx(a, 1)),
        Err(ContractError::RoleMismatch)
    );
    assert_eq!(
        stake(&mut pool, coin(10), 1, "n2".into(), &mut ctx(a, 1)),
        Err(ContractError::RoleMismatch)
    );
    let mut c = ctx(a, 1);
    stake(&mut pool, coin(10), 1, "n1".into(), &mut c).unwrap();
    let r = &pool.stakes[&a];
    assert_eq!((r.amount, r.generation, r.staked_epoch), (1010, 1, 0));
    assert_eq!(pool.total_staked, 1010);
    assert!(matches!(
        c.events[0],
        Event::Staked {
            amount: 10,
            total: 1010,
            ..
        }
    ));
    // users: node id is not compared
    let b = addr(2);
    stake(&mut pool, coin(100), 0, "x".into(), &mut ctx(b, 0)).unwrap();
    stake(&mut pool, coin(1), 0, "y".into(), &mut ctx(b, 0)).unwrap();
    assert_eq!(pool.stakes[&b].node_id, "x");
    assert_eq!(pool.stakes[&b].amount, 101);
}

#[test]
fn unstake_lockup_withdraw() {
    let (_, mut pool, _) = setup();
    let a = addr(1);
    assert_eq!(
        request_unstake(&mut pool, &mut ctx(a, 0)),
        Err(ContractError::NoStake)
    );
    assert_eq!(
        withdraw(&mut pool, &mut ctx(a, 0)),
        Err(ContractError::NoStake)
    );
    stake(&mut pool, coin(500), 0, "".into(), &mut ctx(a, 0)).unwrap();
    assert_eq!(
        withdraw(&mut pool, &mut ctx(a, 0)),
        Err(ContractError::StillActive)
    );
    let mut c = ctx(a, 5);
    request_unstake(&mut pool, &mut c).unwrap();
    assert_eq!(
        c.events,
        vec![Event::UnstakeRequested {
            staker: a,
            unlock_epoch: 7
        }]
    );
    assert_eq!(stake_status(&pool, &a), STATUS_UNBONDING);
    assert_eq!(
        request_unstake(&mut pool, &mut ctx(a, 5)),
        Err(ContractError::NotActive)
    );
    assert_eq!(
        withdraw(&mut pool, &mut ctx(a, 6)),
        Err(ContractError::Locked)
    );
    let mut c = ctx(a, 7);
    withdraw(&mut pool, &mut c).unwrap();
    assert_eq!(
        c.events,
        vec![Event::Withdrawn {
            staker: a,
            amount: 500
        }]
    );
    match &c.new_objects[..] {
        [NewObject::Transferred {
            object: ContractObject::Coin(coin),
            recipient,
        }] => {
            assert_eq!(coin.value, 500);
            assert_eq!(*recipient, a);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(pool.stakes.is_empty());
    assert_eq!((pool.total_staked, pool.staked), (0, 0));
}

#[test]
fn restake_after_unbonding_bumps_generation() {
    let (_, mut pool, _) = setup();
    let a = addr(1);
    stake(&mut pool, coin(100), 0, "".into(), &mut ctx(a, 0)).unwrap();
    request_unstake(&mut pool, &mut ctx(a, 0)).unwrap();
    // remaining 100 + 899 < 1000 for a node
    assert_eq!(
        stake(&mut pool, coin(899), 1, "n".into(), &mut ctx(a, 1)),
        Err(ContractError::InsufficientStake)
    );
    stake(&mut pool, coin(900), 1, "n".into(), &mut ctx(a, 3)).unwrap();
    let r = &pool.stakes[&a];
    assert_eq!(
        (
            r.status,
            r.role,
            r.node_id.as_str(),
            r.amount,
            r.generation,
            r.unlock_epoch
        ),
        (0, 1, "n", 1000, 2, 0)
    );
    assert_eq!(r.staked_epoch, 3);
    assert_eq!(pool.total_staked, 1000);
}

#[test]
fn set_config_rules() {
    let (cap, mut pool, _) = setup();
    assert_eq!(
        set_config(&cap, &mut pool, 10, 5, 20, 1, 0),
        Err(ContractError::InvalidConfig)
    );
    assert_eq!(
        set_config(&cap, &mut pool, 1, 5, 4, 1, 0),
        Err(ContractError::InvalidConfig)
    );
    assert_eq!(
        set_config(&cap, &mut pool, 1, 5, 5, 1, 10001),
        Err(ContractError::InvalidConfig)
    );
    set_config(&cap, &mut pool, 5, 5, 5, 0, 10000).unwrap();
    assert_eq!(
        (
            pool.min_user_stake,
            pool.min_node_stake,
            pool.min_admin_stake
        ),
        (5, 5, 5)
    );
    assert_eq!((pool.lockup_epochs, pool.slash_bps), (0, 10000));
}

#[test]
fn slash_rules() {
    let (cap, mut pool, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    let n = addr(9);
    assert_eq!(
        do_slash(&mut pool, &enclave, &config, n, 3),
        Err(ContractError::NoStake)
    );
    stake(&mut pool, coin(1999), 1, "n9".into(), &mut ctx(n, 0)).unwrap();
    // bad signatures
    let good = sign_report(&pool, n, "r", 42, 3);
    let mut c = ctx(addr(0xee), 3);
    assert_eq!(
        slash_now(
            &mut pool,
            &config,
            &enclave,
            n,
            "other".into(),
            42,
            &good,
            &mut c
        ),
        Err(ContractError::BadReport)
    );
    assert_eq!(
        slash_now(
            &mut pool,
            &config,
            &enclave,
            n,
            "r".into(),
            43,
            &good,
            &mut c
        ),
        Err(ContractError::BadReport)
    );
    // report for a different epoch
    let mut c4 = ctx(addr(0xee), 4);
    assert_eq!(
        slash_now(
            &mut pool,
            &config,
            &enclave,
            n,
            "r".into(),
            42,
            &good,
            &mut c4
        ),
        Err(ContractError::BadReport)
    );
    assert_eq!(
        slash_now(
            &mut pool,
            &config,
            &enclave,
            n,
            "r".into(),
            42,
            &good[..63],
            &mut c
        ),
        Err(ContractError::BadReport)
    );
    assert!(c.events.is_empty());
    assert_eq!(pool.stakes[&n].amount, 1999);

    let mut c = ctx(addr(0xee), 3);
    slash_now(
        &mut pool,
        &config,
        &enclave,
        n,
        "r".into(),
        42,
        &good,
        &mut c,
    )
    .unwrap();
    assert_eq!(
        c.events,
        vec![Event::Slashed {
            staker: n,
            penalty: 199,
            remaining: 1800,
            reason: "r".into(),
            epoch: 3
        }]
    );
    let r = &pool.stakes[&n];
    assert_eq!(
        (
            r.status,
            r.amount,
            r.slashed_total,
            r.unlock_epoch,
            r.slashed_epoch
        ),
        (STATUS_SLASHED, 1800, 199, 5, 3)
    );
    assert_eq!(
        (pool.total_staked, pool.staked, pool.slashed),
        (1800, 1800, 199)
    );
    assert_eq!(
        do_slash(&mut pool, &enclave, &config, n, 3),
        Err(ContractError::AlreadySlashed)
    );
    // a later epoch may slash again
    do_slash(&mut pool, &enclave, &config, n, 4).unwrap();
    assert_eq!(pool.stakes[&n].amount, 1620);
    assert_eq!(pool.stakes[&n].unlock_epoch, 6);
    assert_eq!(pool.stakes[&n].slashed_epoch, 4);
    assert_eq!(
        withdraw(&mut pool, &mut ctx(n, 5)),
        Err(ContractError::Locked)
    );
    assert_eq!(
        request_unstake(&mut pool, &mut ctx(n, 5)),
        Err(ContractError::NotActive)
    );
    let mut c = ctx(n, 6);
    withdraw(&mut pool, &mut c).unwrap();
    assert_eq!(
        c.events,
        vec![Event::Withdrawn {
            staker: n,
            amount: 1620
        }]
    );
    assert_eq!((pool.total_staked, pool.staked, pool.slashed), (0, 0, 379));
}

#[test]
fn slash_refuses_stale_enclave() {
    let (cap, mut pool, _) = setup();
    let (mut config, enclave) = enclave_setup(&cap);
    let n = addr(9);
    stake(&mut pool, coin(1000), 1, "n9".into(), &mut ctx(n, 0)).unwrap();
    update_pcrs(&cap, &mut config, vec![3; 48], vec![1; 48], vec![2; 48]).unwrap();
    assert_eq!(config.version, 1);
    assert_eq!(
        do_slash(&mut pool, &enclave, &config, n, 1),
        Err(ContractError::BadReport)
    );
    let mut other = config.clone();
    other.id = addr(0x77);
    other.version = 0;
    assert!(!is_current(&enclave, &other));
    assert_eq!(
        do_slash(&mut pool, &enclave, &other, n, 1),
        Err(ContractError::BadReport)
    );
    // staleness is checked before the record: EBadReport, not ENoStake
    assert_eq!(
        do_slash(&mut pool, &enclave, &config, addr(0x55), 1),
        Err(ContractError::BadReport)
    );
    assert_eq!(pool.stakes[&n].amount, 1000);
}

#[test]
fn slash_checks_report_before_record() {
    let (cap, mut pool, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    assert!(is_current(&enclave, &config));
    let n = addr(9);
    let sig = sign_report(&pool, n, "r", 42, 0);
    let mut c = ctx(addr(0xee), 0);
    assert_eq!(
        slash_now(
            &mut pool,
            &config,
            &enclave,
            n,
            "other".into(),
            42,
            &sig,
            &mut c
        ),
        Err(ContractError::BadReport)
    );
    assert_eq!(
        slash_now(
            &mut pool,
            &config,
            &enclave,
            n,
            "r".into(),
            42,
            &sig,
            &mut c
        ),
        Err(ContractError::NoStake)
    );
}

#[test]
fn already_slashed_is_about_the_slash_epoch() {
    let (cap, mut pool, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    let n = addr(9);
    stake(&mut pool, coin(10_000), 1, "n9".into(), &mut ctx(n, 0)).unwrap();
    assert_eq!(pool.stakes[&n].slashed_epoch, 0);
    // slashed in epoch 0 with lockup 2 (unlock_epoch 2); lockup lowered to 1; in epoch 1,
    // epoch + lockup == unlock_epoch, but the last slash was in epoch 0: allowed.
    do_slash(&mut pool, &enclave, &config, n, 0).unwrap();
    set_config(&cap, &mut pool, 100, 1000, 10000, 1, 1000).unwrap();
    do_slash(&mut pool, &enclave, &config, n, 1).unwrap();
    let r = &pool.stakes[&n];
    assert_eq!(
        (r.amount, r.slashed_total, r.unlock_epoch, r.slashed_epoch),
        (8100, 1900, 2, 1)
    );
    assert_eq!(
        do_slash(&mut pool, &enclave, &config, n, 1),
        Err(ContractError::AlreadySlashed)
    );
    // re-staked (Active again) in the same epoch: may be slashed again in that epoch
    stake(&mut pool, coin(0), 1, "n9".into(), &mut ctx(n, 1)).unwrap();
    let r = &pool.stakes[&n];
    assert_eq!(
        (r.status, r.generation, r.slashed_total, r.slashed_epoch),
        (STATUS_ACTIVE, 2, 1900, 1)
    );
    do_slash(&mut pool, &enclave, &config, n, 1).unwrap();
    assert_eq!(pool.stakes[&n].amount, 7290);
    assert_eq!(pool.stakes[&n].status, STATUS_SLASHED);
}

#[test]
fn withdraw_of_nothing_pays_a_zero_coin() {
    let (cap, mut pool, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    set_config(&cap, &mut pool, 100, 1000, 10000, 0, 10000).unwrap();
    let n = addr(9);
    stake(&mut pool, coin(1000), 1, "n9".into(), &mut ctx(n, 0)).unwrap();
    do_slash(&mut pool, &enclave, &config, n, 0).unwrap();
    assert_eq!(pool.stakes[&n].amount, 0);
    let mut c = ctx(n, 0);
    withdraw(&mut pool, &mut c).unwrap();
    assert_eq!(
        c.events,
        vec![Event::Withdrawn {
            staker: n,
            amount: 0
        }]
    );
    assert!(matches!(
        &c.new_objects[..],
        [NewObject::Transferred { object: ContractObject::Coin(Coin { value: 0, .. }), recipient }] if *recipient == n
    ));
    assert!(pool.stakes.is_empty());
    assert_eq!((pool.total_staked, pool.slashed), (0, 1000));
}

#[test]
fn no_record_reads() {
    let (_, pool, _) = setup();
    assert_eq!(stake_generation(&pool, &addr(1)), 0);
    assert_eq!(stake_role(&pool, &addr(1)), 255);
    assert_eq!(stake_status(&pool, &addr(1)), 255);
}

#[test]
fn slash_then_restake_and_unbonding_slash() {
    let (cap, mut pool, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    let n = addr(9);
    stake(&mut pool, coin(1000), 1, "n9".into(), &mut ctx(n, 0)).unwrap();
    request_unstake(&mut pool, &mut ctx(n, 0)).unwrap();
    do_slash(&mut pool, &enclave, &config, n, 1).unwrap();
    assert_eq!(pool.stakes[&n].amount, 900);
    // re-stake: 900 + 99 < 1000
    assert_eq!(
        stake(&mut pool, coin(99), 1, "n9".into(), &mut ctx(n, 1)),
        Err(ContractError::InsufficientStake)
    );
    stake(&mut pool, coin(100), 1, "n9b".into(), &mut ctx(n, 1)).unwrap();
    let r = &pool.stakes[&n];
    assert_eq!(
        (
            r.status,
            r.generation,
            r.amount,
            r.node_id.as_str(),
            r.slashed_total
        ),
        (0, 2, 1000, "n9b", 100)
    );
    // slashing history survives the re-stake
    assert_eq!(r.slashed_epoch, 1);
}

#[test]
fn seal_tokens() {
    let (cap, mut pool, mut gw) = setup();
    let a = addr(1);
    assert_eq!(
        issue_seal_token(&mut gw, &pool, &mut ctx(a, 0)),
        Err(ContractError::NoActiveStake)
    );
    stake(&mut pool, coin(1000), 1, "n1".into(), &mut ctx(a, 0)).unwrap();
    let mut c = ctx(a, 3);
    let id = issue_seal_token(&mut gw, &pool, &mut c).unwrap();
    let token = match c.new_objects.pop() {
        Some(NewObject::Transferred {
            object: ContractObject::SealToken(t),
            recipient,
        }) => {
            assert_eq!(recipient, a);
            t
        }
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(token.id, id);
    assert_eq!(token.permissions, vec!["node:self".to_string()]);
    assert_eq!(
        (
            token.issued_epoch,
            token.expiry_epoch,
            token.stake_generation
        ),
        (3, 33, 1)
    );
    assert_eq!(token.master_endpoint, "https://master:6443");
    assert_eq!(gw.tokens_issued, 1);
    assert_eq!(
        c.events,
        vec![Event::SealTokenIssued {
            token_id: id,
            owner: a,
            role: 1,
            node_id: "n1".into(),
            expiry_epoch: 33
        }]
    );
    assert!(is_valid(&token, &pool, 3));
    assert!(is_valid(&token, &pool, 33));
    assert!(!is_valid(&token, &pool, 34));
    // unstake revokes at once, re-stake does not revive the old token
    request_unstake(&mut pool, &mut ctx(a, 4)).unwrap();
    assert!(!is_valid(&token, &pool, 4));
    assert_eq!(
        issue_seal_token(&mut gw, &pool, &mut ctx(a, 4)),
        Err(ContractError::NoActiveStake)
    );
    stake(&mut pool, coin(1), 1, "n1".into(), &mut ctx(a, 5)).unwrap();
    assert!(!is_valid(&token, &pool, 5));

    assert_eq!(
        revoke_seal_token(token.clone(), &mut ctx(addr(2), 5)),
        Err(ContractError::NotOwner)
    );
    let mut c = ctx(a, 5);
    revoke_seal_token(token.clone(), &mut c).unwrap();
    assert_eq!(c.deleted, vec![token.id]);
    assert_eq!(
        c.events,
        vec![Event::SealTokenRevoked {
            token_id: token.id,
            owner: a
        }]
    );

    assert_eq!(
        set_gateway(&cap, &mut gw, "x".into(), 0),
        Err(ContractError::InvalidTtl)
    );
    set_gateway(&cap, &mut gw, "https://m2".into(), 1).unwrap();
    assert_eq!(
        (gw.master_endpoint.as_str(), gw.token_ttl_epochs),
        ("https://m2", 1)
    );
}

#[test]
fn permissions_by_role() {
    assert_eq!(permissions_for_role(0), vec!["namespace:own"]);
    assert_eq!(permissions_for_role(2), vec!["cluster-admin"]);
}

#[test]
fn fresh_ids_are_distinct_and_deterministic() {
    let mut a = ctx(addr(1), 0);
    let mut b = ctx(addr(1), 0);
    let ids: Vec<_> = (0..3).map(|_| a.fresh_id()).collect();
    assert_eq!(ids, (0..3).map(|_| b.fresh_id()).collect::<Vec<_>>());
    assert_ne!(ids[0], ids[1]);
    assert_eq!(a.ids_created(), 3);
}

#[test]
fn enclave_registration() {
    let (cap, _, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    assert_eq!(enclave.config_version, 0);
    assert_eq!(enclave.config_id, config.id);
    assert_eq!(enclave.owner, addr(0xad));
    let mut c = ctx(addr(1), 0);
    let mut doc = AttestedEnclave {
        pcr0: vec![0; 48],
        pcr1: vec![1; 48],
        pcr2: vec![9; 48],
        public_key: vec![1; 32],
        platform: PLATFORM_NITRO,
    };
    assert_eq!(
        register_enclave(&config, &doc, &mut c),
        Err(ContractError::InvalidPcrs)
    );
    doc.pcr2 = vec![2; 48];
    doc.public_key = vec![];
    assert_eq!(
        register_enclave(&config, &doc, &mut c),
        Err(ContractError::InvalidPk)
    );
    doc.public_key = vec![1; 33];
    assert_eq!(
        register_enclave(&config, &doc, &mut c),
        Err(ContractError::InvalidPk)
    );
    assert!(c.new_objects.is_empty());
    assert_eq!(
        register_enclave_raw(&config, b"doc", None, &mut c),
        Err(ContractError::AttestationUnsupported)
    );

    struct Fixed(AttestedEnclave);
    impl AttestationVerifier for Fixed {
        fn verify(&self, document: &[u8], now_ms: u64) -> Result<AttestedEnclave, String> {
            if document == b"good" && now_ms > 0 {
                Ok(self.0.clone())
            } else {
                Err("bad signature".into())
            }
        }
    }
    doc.public_key = vec![5; 32];
    let v = Fixed(doc);
    let err = register_enclave_raw(&config, b"bad", Some(&v), &mut c).unwrap_err();
    assert_eq!((err.module(), err.code()), ("nitro_attestation", Some(2)));
    let id = register_enclave_raw(&config, b"good", Some(&v), &mut c).unwrap();
    assert_eq!(
        c.events,
        vec![Event::EnclaveRegistered {
            enclave_id: id,
            pk: vec![5; 32],
            config_version: 0
        }]
    );
}

#[test]
fn verify_signature_is_bcs_intent_message() {
    let (cap, _, _) = setup();
    let (_, enclave) = enclave_setup(&cap);
    let report = SlashReport {
        node: addr(3),
        node_id: "n".into(),
        generation: 5,
        nonce: 6,
        reason: "x".into(),
        epoch: 8,
    };
    let mut expected = vec![SLASH_INTENT];
    expected.extend(77u64.to_le_bytes());
    expected.extend([3u8; 32]);
    expected.extend([1u8, b'n']);
    expected.extend(5u64.to_le_bytes());
    expected.extend(6u64.to_le_bytes());
    expected.extend([1u8, b'x']);
    expected.extend(8u64.to_le_bytes());
    assert_eq!(slash_report_message(&report, 77), expected);
    let sig: Ed25519Signature = enclave_key().sign(&expected);
    assert!(verify_signature(
        &enclave,
        SLASH_INTENT,
        77,
        &report,
        sig.inner()
    ));
    assert!(!verify_signature(&enclave, 2, 77, &report, sig.inner()));
}

// ---------------------------------------------------------------------------------------------
// Property tests

#[derive(Debug, Clone)]
enum Op {
    Stake {
        who: u8,
        amount: u64,
        role: u8,
        node: bool,
    },
    Unstake {
        who: u8,
    },
    Withdraw {
        who: u8,
    },
    Slash {
        who: u8,
    },
    Advance {
        epochs: u64,
    },
    Config {
        lockup: u64,
        bps: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u64..3000, 0u8..4, any::<bool>()).prop_map(|(who, amount, role, node)| Op::Stake { who, amount, role, node }),
        2 => (0u8..4).prop_map(|who| Op::Unstake { who }),
        2 => (0u8..4).prop_map(|who| Op::Withdraw { who }),
        2 => (0u8..4).prop_map(|who| Op::Slash { who }),
        2 => (0u64..3).prop_map(|epochs| Op::Advance { epochs }),
        1 => (0u64..4, 0u64..=10000).prop_map(|(lockup, bps)| Op::Config { lockup, bps }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conservation(ops in proptest::collection::vec(op(), 1..60)) {
        let (cap, mut pool, mut gw) = setup();
        let (config, enclave) = enclave_setup(&cap);
        let mut epoch = 0u64;
        let mut paid_in = 0u64;
        let mut withdrawn = 0u64;
        for op in ops {
            let before = pool.clone();
            let result = match op {
                Op::Stake { who, amount, role, node } => {
                    // two addresses per node id, so that the index refuses some node stakes
                    let node_id = if node { format!("n{}", who % 2) } else { String::new() };
                    let r = stake(&mut pool, coin(amount), role, node_id, &mut ctx(addr(who), epoch));
                    if r.is_ok() { paid_in += amount; }
                    r
                }
                Op::Unstake { who } => request_unstake(&mut pool, &mut ctx(addr(who), epoch)),
                Op::Withdraw { who } => {
                    let mut c = ctx(addr(who), epoch);
                    let r = withdraw(&mut pool, &mut c);
                    for o in &c.new_objects {
                        if let NewObject::Transferred { object: ContractObject::Coin(coin), recipient } = o {
                            prop_assert_eq!(*recipient, addr(who));
                            withdrawn += coin.value;
                        }
                    }
                    r
                }
                Op::Slash { who } => do_slash(&mut pool, &enclave, &config, addr(who), epoch),
                Op::Advance { epochs } => { epoch += epochs; Ok(()) }
                Op::Config { lockup, bps } => set_config(&cap, &mut pool, 100, 1000, 10000, lockup, bps),
            };
            if result.is_err() {
                // the port decides before it writes: an abort leaves the pool untouched
                prop_assert_eq!(&pool, &before);
            }
            let sum: u64 = pool.stakes.values().map(|r| r.amount).sum();
            prop_assert_eq!(pool.total_staked, sum);
            prop_assert_eq!(pool.staked, pool.total_staked);
            prop_assert_eq!(pool.staked + pool.slashed + withdrawn, paid_in);
            let slashed_sum: u64 = pool.stakes.values().map(|r| r.slashed_total).sum();
            prop_assert!(slashed_sum <= pool.slashed);
            for (a, r) in &pool.stakes {
                prop_assert_eq!(*a, r.staker);
                prop_assert!(r.generation >= 1);
                prop_assert!(r.status <= STATUS_SLASHED);
                if r.status == STATUS_ACTIVE { prop_assert_eq!(r.unlock_epoch, 0); }
                prop_assert!(r.slashed_epoch <= epoch);
                if r.status == STATUS_SLASHED { prop_assert!(r.unlock_epoch >= r.slashed_epoch); }
                if r.role == ROLE_NODE { prop_assert_eq!(pool.node_owners.get(&r.node_id), Some(a)); }
            }
            // the index holds exactly the node records' node ids
            let node_records = pool.stakes.values().filter(|r| r.role == ROLE_NODE).count();
            prop_assert_eq!(pool.node_owners.len(), node_records);
            // tokens issued now are valid now and only while the record stays put
            if let Some((a, _)) = pool.stakes.iter().find(|(_, r)| r.is_active()) {
                let mut c = ctx(*a, epoch);
                issue_seal_token(&mut gw, &pool, &mut c).unwrap();
                if let Some(NewObject::Transferred { object: ContractObject::SealToken(t), .. }) = c.new_objects.pop() {
                    prop_assert!(is_valid(&t, &pool, epoch));
                }
            }
        }
    }

    #[test]
    fn slash_penalty_bounds(amount in 0u64..u64::MAX / 2, bps in 0u64..=10000) {
        let (cap, mut pool, _) = setup();
        let (config, enclave) = enclave_setup(&cap);
        set_config(&cap, &mut pool, 0, 0, 0, 2, bps).unwrap();
        stake(&mut pool, coin(amount), 0, String::new(), &mut ctx(addr(1), 0)).unwrap();
        do_slash(&mut pool, &enclave, &config, addr(1), 0).unwrap();
        let r = &pool.stakes[&addr(1)];
        prop_assert_eq!(r.amount + pool.slashed, amount);
        prop_assert_eq!(pool.slashed as u128, amount as u128 * bps as u128 / 10000);
    }
}

// ---------------------------------------------------------------------------------------------
// issue 9: node-id uniqueness, single-use slash reports, state anchors

#[test]
fn node_id_is_unique_among_live_stakes() {
    let (cap, mut pool, _) = setup();
    let (a, b) = (addr(1), addr(2));
    stake(
        &mut pool,
        coin(1000),
        ROLE_NODE,
        "worker-1".into(),
        &mut ctx(a, 0),
    )
    .unwrap();
    assert_eq!(node_owner(&pool, "worker-1"), Some(a));
    // a second address cannot take the node id, as a new record or by re-staking
    let before = pool.clone();
    assert_eq!(
        stake(
            &mut pool,
            coin(5000),
            ROLE_NODE,
            "worker-1".into(),
            &mut ctx(b, 0)
        ),
        Err(ContractError::NodeIdTaken)
    );
    assert_eq!(pool, before);
    assert_eq!(ContractError::NodeIdTaken.code(), Some(12));
    assert_eq!(ContractError::NodeIdTaken.name(), "ENodeIdTaken");
    // a user or admin stake does not claim node ids
    stake(
        &mut pool,
        coin(100),
        ROLE_USER,
        "worker-1".into(),
        &mut ctx(b, 0),
    )
    .unwrap();
    assert_eq!(node_owner(&pool, "worker-1"), Some(a));
    // the holder may top up
    stake(
        &mut pool,
        coin(10),
        ROLE_NODE,
        "worker-1".into(),
        &mut ctx(a, 0),
    )
    .unwrap();
    // unbonding and slashed records keep their node id
    request_unstake(&mut pool, &mut ctx(a, 0)).unwrap();
    let c = addr(3);
    assert_eq!(
        stake(
            &mut pool,
            coin(1000),
            ROLE_NODE,
            "worker-1".into(),
            &mut ctx(c, 1)
        ),
        Err(ContractError::NodeIdTaken)
    );
    // released by the withdrawal
    withdraw(&mut pool, &mut ctx(a, 2)).unwrap();
    assert_eq!(node_owner(&pool, "worker-1"), None);
    stake(
        &mut pool,
        coin(1000),
        ROLE_NODE,
        "worker-1".into(),
        &mut ctx(c, 2),
    )
    .unwrap();
    assert_eq!(node_owner(&pool, "worker-1"), Some(c));
    assert_eq!(
        node_stake(&pool, "worker-1").map(|(o, r)| (o, r.amount)),
        Some((c, 1000))
    );
    // the old holder now is the one refused
    assert_eq!(
        stake(
            &mut pool,
            coin(1000),
            ROLE_NODE,
            "worker-1".into(),
            &mut ctx(a, 2)
        ),
        Err(ContractError::NodeIdTaken)
    );
    // a re-stake under another node id (or role) releases the old one
    request_unstake(&mut pool, &mut ctx(c, 2)).unwrap();
    stake(
        &mut pool,
        coin(0),
        ROLE_NODE,
        "worker-2".into(),
        &mut ctx(c, 3),
    )
    .unwrap();
    assert_eq!(node_owner(&pool, "worker-1"), None);
    assert_eq!(node_owner(&pool, "worker-2"), Some(c));
    request_unstake(&mut pool, &mut ctx(c, 3)).unwrap();
    stake(&mut pool, coin(0), ROLE_USER, String::new(), &mut ctx(c, 4)).unwrap();
    assert_eq!(node_owner(&pool, "worker-2"), None);
    assert!(pool.node_owners.is_empty());
    let _ = cap;
}

#[test]
fn slash_reports_are_bound_to_the_stake_and_single_use() {
    let (cap, mut pool, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    let n = addr(9);
    stake(
        &mut pool,
        coin(2000),
        ROLE_NODE,
        "n9".into(),
        &mut ctx(n, 0),
    )
    .unwrap();
    let first = report_now(&pool, n, "dead", 1);
    assert_eq!((first.generation, first.nonce), (1, 0));
    let sig = sign(&first, 42);
    let run = |pool: &mut StakingPool, r: &SlashReport, sig: &[u8], epoch: u64| {
        slash(
            pool,
            &config,
            &enclave,
            r.node,
            r.node_id.clone(),
            r.generation,
            r.nonce,
            r.reason.clone(),
            42,
            sig,
            &mut ctx(addr(0xee), epoch),
        )
    };
    // signed fields that differ from the record: EStaleReport
    for wrong in [
        SlashReport {
            node_id: "other".into(),
            ..first.clone()
        },
        SlashReport {
            generation: 2,
            ..first.clone()
        },
        SlashReport {
            nonce: 1,
            ..first.clone()
        },
    ] {
        let before = pool.clone();
        assert_eq!(
            run(&mut pool, &wrong, &sign(&wrong, 42), 1),
            Err(ContractError::StaleReport)
        );
        assert_eq!(pool, before);
    }
    assert_eq!(ContractError::StaleReport.code(), Some(13));
    // a signature over another report is EBadReport, before the record is looked at
    assert_eq!(
        run(
            &mut pool,
            &SlashReport {
                nonce: 1,
                ..first.clone()
            },
            &sig,
            1
        ),
        Err(ContractError::BadReport)
    );
    run(&mut pool, &first, &sig, 1).unwrap();
    assert_eq!(pool.stakes[&n].slash_count, 1);
    assert_eq!(pool.stakes[&n].amount, 1800);
    // replaying the report, even in a later epoch where a fresh report would be accepted: refused
    assert_eq!(
        run(&mut pool, &first, &sig, 1),
        Err(ContractError::StaleReport)
    );
    let replay_later = SlashReport {
        epoch: 2,
        ..first.clone()
    };
    assert_eq!(
        run(&mut pool, &replay_later, &sign(&replay_later, 42), 2),
        Err(ContractError::StaleReport)
    );
    assert_eq!(pool.stakes[&n].amount, 1800);
    // re-stake: generation 2, slash_count kept; the report for generation 1 stays refused
    stake(&mut pool, coin(0), ROLE_NODE, "n9".into(), &mut ctx(n, 3)).unwrap();
    let r = &pool.stakes[&n];
    assert_eq!((r.generation, r.slash_count), (2, 1));
    let old_gen = SlashReport {
        nonce: 1,
        epoch: 3,
        ..first.clone()
    };
    assert_eq!(
        run(&mut pool, &old_gen, &sign(&old_gen, 42), 3),
        Err(ContractError::StaleReport)
    );
    let fresh = report_now(&pool, n, "dead", 3);
    run(&mut pool, &fresh, &sign(&fresh, 42), 3).unwrap();
    assert_eq!(pool.stakes[&n].slash_count, 2);
}

fn sign_anchor(config_id: ObjectId, revision: u64, ts: u64) -> Vec<u8> {
    let sig: Ed25519Signature = enclave_key().sign(&state_anchor_message(config_id, revision, ts));
    sig.inner().to_vec()
}

#[test]
fn anchor_state_is_monotonic_and_signed_by_a_current_enclave() {
    let (cap, _, _) = setup();
    let (mut config, enclave) = enclave_setup(&cap);
    assert_eq!((config.anchored_revision, config.anchored_at_ms), (0, 0));
    let cid = config.id;
    let mut c = ctx(addr(0xee), 0);
    anchor_state(
        &mut config,
        &enclave,
        10,
        1000,
        &sign_anchor(cid, 10, 1000),
        &mut c,
    )
    .unwrap();
    assert_eq!(
        (config.anchored_revision, config.anchored_at_ms),
        (10, 1000)
    );
    assert_eq!(
        c.events,
        vec![Event::StateAnchored {
            config_id: config.id,
            revision: 10,
            timestamp_ms: 1000
        }]
    );
    // the same revision again is accepted, a lower one is a rollback
    anchor_state(
        &mut config,
        &enclave,
        10,
        1001,
        &sign_anchor(cid, 10, 1001),
        &mut c,
    )
    .unwrap();
    let before = config.clone();
    let err = anchor_state(
        &mut config,
        &enclave,
        9,
        1002,
        &sign_anchor(cid, 9, 1002),
        &mut c,
    )
    .unwrap_err();
    assert_eq!(
        (err, config.clone()),
        (ContractError::RevisionRollback, before.clone())
    );
    assert_eq!(
        (
            ContractError::RevisionRollback.module(),
            ContractError::RevisionRollback.code()
        ),
        ("enclave", Some(205))
    );
    // signature over another revision, timestamp or config, or another intent: EBadAnchor
    for sig in [
        sign_anchor(cid, 11, 1003),
        sign_anchor(addr(0x77), 12, 1003),
        sign(&report_now(&setup().1, addr(1), "x", 0), 1003),
    ] {
        assert_eq!(
            anchor_state(&mut config, &enclave, 12, 1003, &sig, &mut c),
            Err(ContractError::BadAnchor)
        );
    }
    assert_eq!(config, before);
    // a stale enclave (PCRs updated since it registered) cannot anchor
    update_pcrs(&cap, &mut config, vec![9; 48], vec![1; 48], vec![2; 48]).unwrap();
    assert_eq!(config.anchored_revision, 10, "update_pcrs keeps the anchor");
    assert_eq!(
        anchor_state(
            &mut config,
            &enclave,
            20,
            1004,
            &sign_anchor(cid, 20, 1004),
            &mut c
        ),
        Err(ContractError::StaleEnclave)
    );
    assert_eq!(config.anchored_revision, 10);
}

#[test]
fn state_anchor_message_layout() {
    let mut expected = vec![STATE_ANCHOR_INTENT];
    expected.extend(77u64.to_le_bytes());
    expected.extend([4u8; 32]);
    expected.extend(41u64.to_le_bytes());
    assert_eq!(state_anchor_message(addr(4), 41, 77), expected);
}

/// The Move tests' hard-coded vectors (contracts/scripts/gen_test_vectors.py) are the Rust
/// port's messages, signed by the test enclave key.
#[test]
fn move_test_vectors_match_the_port() {
    let seed: [u8; 32] =
        hex::decode("4cd9c59825bc57baf0a0e07d811146e74fdc407c4369754369e7269a9af396cd")
            .unwrap()
            .try_into()
            .unwrap();
    let key = Ed25519PrivateKey::new(seed);
    assert_eq!(
        hex::encode(key.public_key().inner()),
        "01587362fbad6081caa0b4be42f01a5b8c6fda02cf8fbd16e3b4445876132371"
    );
    let mut node = [0u8; 32];
    node[30] = 0x0b;
    node[31] = 0x0b;
    let report = SlashReport {
        node: Address::new(node),
        node_id: "worker-1".into(),
        generation: 1,
        nonce: 0,
        reason: "missed heartbeats".into(),
        epoch: 0,
    };
    let msg = slash_report_message(&report, 1_700_000_000_000);
    assert_eq!(hex::encode(&msg), "010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3101000000000000000000000000000000116d697373656420686561727462656174730000000000000000");
    let sig: Ed25519Signature = key.sign(&msg);
    assert_eq!(hex::encode(sig.inner()), "59ea889caf35f17859a6d510e740eb7d37b0f2c7bfc4198e5d882e68bfb9b1e757a4513be599ebd745378346ed340b1fe822107532de159023522113e9757408");
    let mut cfg = [0u8; 32];
    cfg[29..].copy_from_slice(&[0x0c, 0x0f, 0x16]);
    let anchor = state_anchor_message(Address::new(cfg), 42, 1_700_000_000_000);
    assert_eq!(
        hex::encode(&anchor),
        "020068e5cf8b01000000000000000000000000000000000000000000000000000000000000000c0f162a00000000000000"
    );
    let sig: Ed25519Signature = key.sign(&anchor);
    assert_eq!(hex::encode(sig.inner()), "56a1d20e6ad4f0a753b64711e2f95cab5889d500be220912e9f4f4f38ee684b01122bcb538e850860d33c0e5de49c8310da8f9ca48516ec06e48a7114ef2e00b");
}

// ---------------------------------------------------------------------------------------------
// economy (issue 16)

fn market() -> Market {
    market_init(&mut ctx(addr(0xad), 0))
}

#[test]
fn economy_abort_codes_and_modules() {
    use ContractError::*;
    for (e, code, name) in [
        (InsufficientBalance, 301, "EInsufficientBalance"),
        (BadUsageReport, 302, "EBadUsageReport"),
        (ReplayedReport, 303, "EReplayedReport"),
        (StaleUsageEnclave, 304, "EStaleEnclave"),
        (Overflow, 305, "EOverflow"),
        (ZeroAmount, 306, "EZeroAmount"),
        (NoAccount, 307, "ENoAccount"),
        (NoEarnings, 308, "ENoEarnings"),
        (LengthMismatch, 309, "ELengthMismatch"),
    ] {
        assert_eq!(
            (e.module(), e.code(), e.name()),
            ("economy", Some(code), name)
        );
    }
    assert_eq!(
        (
            InsufficientTreasury.module(),
            InsufficientTreasury.code(),
            InsufficientTreasury.name()
        ),
        ("staking", Some(14), "EInsufficientTreasury")
    );
}

#[test]
fn usage_cost_rounds_down_per_line_and_overflows_to_eoverflow() {
    let m = market();
    assert_eq!((m.price_cpu, m.price_mem, m.price_pod), (1000, 1, 1000));
    // 1 MIST per CPU-ms and per pod-second at the default prices
    assert_eq!(m.cost(1, 0, 0), Ok(1));
    assert_eq!(m.cost(0, 0, 1), Ok(1));
    // 999 MiB-seconds cost 0.999 MIST: rounded down to 0
    assert_eq!(m.cost(0, 999, 0), Ok(0));
    assert_eq!(m.cost(1500, 2500, 60), Ok(1562));
    assert_eq!(m.cost(u64::MAX, 0, 0), Ok(u64::MAX));
    assert_eq!(m.cost(u64::MAX, 1000, 0), Err(ContractError::Overflow));
    assert_eq!(
        usage_cost(u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX),
        Err(ContractError::Overflow)
    );
    assert_eq!(usage_cost(u64::MAX, 0, 0, 1000, 0, 0), Ok(u64::MAX));
}

#[test]
fn deposit_and_withdrawals_keep_escrow_equal_to_balances() {
    let mut m = market();
    let alice = addr(0xa1);
    let mut c = ctx(alice, 0);
    assert_eq!(
        deposit(&mut m, coin(0), &mut c),
        Err(ContractError::ZeroAmount)
    );
    deposit(&mut m, coin(500), &mut c).unwrap();
    deposit(&mut m, coin(700), &mut c).unwrap();
    assert_eq!(c.deleted, vec![addr(0xcc), addr(0xcc)]);
    assert_eq!(m.escrow, 1200);
    assert_eq!(balance_of(&m, &alice), 1200);
    assert_eq!(
        withdraw_escrow(&mut m, 1201, &mut c),
        Err(ContractError::InsufficientBalance)
    );
    assert_eq!(
        withdraw_escrow(&mut m, 0, &mut c),
        Err(ContractError::ZeroAmount)
    );
    withdraw_escrow(&mut m, 200, &mut c).unwrap();
    assert!(matches!(
        c.new_objects.last(),
        Some(NewObject::Transferred { object: ContractObject::Coin(Coin { value: 200, .. }), recipient }) if *recipient == alice
    ));
    assert_eq!((m.escrow, balance_of(&m, &alice)), (1000, 1000));
    let mut other = ctx(addr(0xb2), 0);
    assert_eq!(
        withdraw_escrow(&mut m, 1, &mut other),
        Err(ContractError::NoAccount)
    );
    assert_eq!(
        withdraw_earnings(&mut m, 1, &mut other),
        Err(ContractError::NoEarnings)
    );
    // overflow of the account balance
    m.accounts.get_mut(&alice).unwrap().balance = u64::MAX - 5;
    m.escrow = u64::MAX - 5;
    assert_eq!(
        deposit(&mut m, coin(6), &mut c),
        Err(ContractError::Overflow)
    );
    assert_eq!(balance_of(&m, &alice), u64::MAX - 5);
}

#[test]
fn usage_report_message_layout() {
    let r = UsageReport::new(addr(9), 7, 100, 200).with_line(UsageLine {
        user: addr(1),
        node_id: "n".into(),
        generation: 2,
        cpu_ms: 3,
        mem_mib_s: 4,
        pod_s: 5,
        uptime_ms: 6,
    });
    let mut expected = vec![USAGE_INTENT];
    expected.extend(77u64.to_le_bytes());
    expected.extend([9u8; 32]);
    for v in [7u64, 100, 200] {
        expected.extend(v.to_le_bytes());
    }
    expected.push(1);
    expected.extend([1u8; 32]);
    expected.extend([1, 1, b'n']);
    for v in [2u64, 3, 4, 5, 6] {
        expected.push(1);
        expected.extend(v.to_le_bytes());
    }
    assert_eq!(r.signing_bytes(77), expected);
    assert_eq!(usage_report_message(&r, 77), expected);
    assert_eq!(r.lines(), Some(1));
    let mut bad = r.clone();
    bad.pod_s.clear();
    assert_eq!(bad.lines(), None);
}

#[test]
fn settle_in_the_port_is_atomic_and_ordered() {
    let (cap, mut pool, _) = setup();
    let (config, enclave) = enclave_setup(&cap);
    let node = addr(0xb0);
    stake(
        &mut pool,
        coin(2000),
        ROLE_NODE,
        "w1".into(),
        &mut ctx(node, 0),
    )
    .unwrap();
    let mut m = market();
    let user = addr(0xa1);
    deposit(&mut m, coin(10_000), &mut ctx(user, 0)).unwrap();
    let line = |cpu: u64, pod: u64| UsageLine {
        user,
        node_id: "w1".into(),
        generation: 1,
        cpu_ms: cpu,
        mem_mib_s: 0,
        pod_s: pod,
        uptime_ms: 1000,
    };
    let report = UsageReport::new(m.id, 1, 0, 1000)
        .with_line(line(100, 0))
        .with_line(line(200, 0))
        .with_line(line(u64::MAX, u64::MAX));
    let sig = |r: &UsageReport| {
        let s: Ed25519Signature = enclave_key().sign(&r.signing_bytes(5));
        s.inner().to_vec()
    };
    let before = m.clone();
    let mut c = ctx(addr(0xad), 0);
    assert_eq!(
        settle(
            &mut m,
            &pool,
            &config,
            &enclave,
            &report,
            5,
            &sig(&report),
            &mut c
        ),
        Err(ContractError::Overflow)
    );
    assert_eq!(m, before);
    assert!(c.events.is_empty());
    // the signature covers the market id and the timestamp
    let ok = UsageReport::new(m.id, 1, 0, 1000).with_line(line(100, 0));
    assert_eq!(
        settle(&mut m, &pool, &config, &enclave, &ok, 6, &sig(&ok), &mut c),
        Err(ContractError::BadUsageReport)
    );
    settle(&mut m, &pool, &config, &enclave, &ok, 5, &sig(&ok), &mut c).unwrap();
    assert_eq!(
        (balance_of(&m, &user), earnings_balance(&m, &node)),
        (9900, 100)
    );
    assert_eq!(
        settle(&mut m, &pool, &config, &enclave, &ok, 5, &sig(&ok), &mut c),
        Err(ContractError::ReplayedReport)
    );
}

/// tests/economy_tests.move's market id and usage-report signatures
/// (contracts/scripts/gen_test_vectors.py) are the Rust port's.
#[test]
fn move_usage_vectors_match_the_port() {
    // The first object of a test scenario's first transaction: tx hash = 32 zero bytes.
    let market_id = TxContext::new(addr(0xad), 0, 0, Digest::new([0; 32])).fresh_id();
    assert_eq!(
        hex::encode(market_id.as_bytes()),
        "034401905bebdf8c04f3cd5f04f442a39372c8dc321c29edfb4f9cb30b23ab96"
    );
    let mut user = [0u8; 32];
    user[29..].copy_from_slice(&[0x0a, 0x11, 0xce]);
    let user = Address::new(user);
    let l = |node: &str, cpu: u64, mem: u64, pod: u64| UsageLine {
        user,
        node_id: node.into(),
        generation: 1,
        cpu_ms: cpu,
        mem_mib_s: mem,
        pod_s: pod,
        uptime_ms: 60_000,
    };
    let p1 = UsageReport::new(market_id, 1, 0, 60_000)
        .with_line(l("worker-1", 1500, 2500, 60))
        .with_line(l("worker-2", 999, 1, 1));
    let msg = p1.signing_bytes(1_700_000_000_000);
    assert_eq!(hex::encode(&msg), "030068e5cf8b010000034401905bebdf8c04f3cd5f04f442a39372c8dc321c29edfb4f9cb30b23ab960100000000000000000000000000000060ea0000000000000200000000000000000000000000000000000000000000000000000000000a11ce00000000000000000000000000000000000000000000000000000000000a11ce0208776f726b65722d3108776f726b65722d32020100000000000000010000000000000002dc05000000000000e70300000000000002c4090000000000000100000000000000023c0000000000000001000000000000000260ea00000000000060ea000000000000");
    let seed: [u8; 32] =
        hex::decode("4cd9c59825bc57baf0a0e07d811146e74fdc407c4369754369e7269a9af396cd")
            .unwrap()
            .try_into()
            .unwrap();
    let sig: Ed25519Signature = Ed25519PrivateKey::new(seed).sign(&msg);
    assert_eq!(hex::encode(sig.inner()), "3811ef3b1ad8af22b3e9f2722ae111262d6f47e62bfdb599408f67484d902cce4503af53805748dd7de48bda73e11b1d738bb4709a0f8db5255a618bc2aeaa06");
}

/// A verifier that knows every platform: evidence `b"<platform>:good"` verifies as `as_platform`.
struct PlatformVerifier {
    as_platform: u8,
    doc: AttestedEnclave,
}

impl AttestationVerifier for PlatformVerifier {
    fn verify(&self, document: &[u8], now_ms: u64) -> Result<AttestedEnclave, String> {
        self.verify_platform(PLATFORM_NITRO, document, now_ms)
    }
    fn verify_platform(
        &self,
        platform: u8,
        evidence: &[u8],
        _now_ms: u64,
    ) -> Result<AttestedEnclave, String> {
        if evidence != format!("{platform}:good").as_bytes() {
            return Err("bad evidence".into());
        }
        Ok(AttestedEnclave {
            platform: self.as_platform,
            ..self.doc.clone()
        })
    }
}

fn good_doc() -> AttestedEnclave {
    AttestedEnclave {
        pcr0: vec![0; 48],
        pcr1: vec![1; 48],
        pcr2: vec![2; 48],
        public_key: vec![5; 32],
        platform: PLATFORM_NITRO,
    }
}

#[test]
fn nitro_registration_records_platform_zero() {
    let (cap, _, _) = setup();
    let (_, enclave) = enclave_setup(&cap);
    assert_eq!(enclave.platform, PLATFORM_NITRO);
}

#[test]
fn platform_registration_records_the_platform() {
    let (cap, _, _) = setup();
    let (config, _) = enclave_setup(&cap);
    for platform in [PLATFORM_SEV_SNP, PLATFORM_TDX] {
        let mut c = ctx(addr(1), 0);
        let v = PlatformVerifier {
            as_platform: platform,
            doc: good_doc(),
        };
        let ev = format!("{platform}:good");
        let id = register_enclave_platform_raw(&config, platform, ev.as_bytes(), Some(&v), &mut c)
            .unwrap();
        let Some(NewObject::Shared(ContractObject::Enclave(e))) = c.new_objects.pop() else {
            panic!("no enclave shared")
        };
        assert_eq!(
            (e.id, e.platform, e.pk.clone()),
            (id, platform, vec![5; 32])
        );
    }
}

#[test]
fn platform_registration_refusals() {
    let (cap, _, _) = setup();
    let (config, _) = enclave_setup(&cap);
    let mut c = ctx(addr(1), 0);
    // Unknown platform code, before any verification.
    assert_eq!(
        register_enclave_platform_raw(&config, 3, b"3:good", None, &mut c),
        Err(ContractError::InvalidPlatform)
    );
    assert_eq!(ContractError::InvalidPlatform.code(), Some(206));
    assert_eq!(ContractError::InvalidPlatform.module(), "enclave");
    // No verifier.
    assert_eq!(
        register_enclave_platform_raw(&config, 1, b"1:good", None, &mut c),
        Err(ContractError::AttestationUnsupported)
    );
    // Evidence that does not verify.
    let v = PlatformVerifier {
        as_platform: PLATFORM_SEV_SNP,
        doc: good_doc(),
    };
    assert!(matches!(
        register_enclave_platform_raw(&config, 1, b"1:bad", Some(&v), &mut c),
        Err(ContractError::AttestationInvalid(_))
    ));
    // Evidence verified as another platform than the one claimed.
    assert_eq!(
        register_enclave_platform_raw(&config, 2, b"2:good", Some(&v), &mut c),
        Err(ContractError::InvalidPlatform)
    );
    // Nitro's raw path refuses evidence its verifier reports as another platform.
    let v = PlatformVerifier {
        as_platform: PLATFORM_TDX,
        doc: good_doc(),
    };
    assert_eq!(
        register_enclave_raw(&config, b"0:good", Some(&v), &mut c),
        Err(ContractError::InvalidPlatform)
    );
    // Measurements still have to match the config.
    let v = PlatformVerifier {
        as_platform: PLATFORM_TDX,
        doc: AttestedEnclave {
            pcr0: vec![7; 48],
            ..good_doc()
        },
    };
    assert_eq!(
        register_enclave_platform_raw(&config, 2, b"2:good", Some(&v), &mut c),
        Err(ContractError::InvalidPcrs)
    );
    // The default verifier (Nitro only) refuses other platforms as invalid evidence.
    struct NitroOnly;
    impl AttestationVerifier for NitroOnly {
        fn verify(&self, _d: &[u8], _n: u64) -> Result<AttestedEnclave, String> {
            Ok(good_doc())
        }
    }
    assert!(matches!(
        register_enclave_platform_raw(&config, 1, b"x", Some(&NitroOnly), &mut c),
        Err(ContractError::AttestationInvalid(_))
    ));
    assert!(c.new_objects.is_empty());
}

#[test]
fn admin_registers_an_attested_enclave() {
    let (cap, _, _) = setup();
    let (config, _) = enclave_setup(&cap);
    let mut c = ctx(addr(1), 0);
    assert_eq!(
        register_attested_enclave(&cap, &config, 9, vec![5; 32], &mut c),
        Err(ContractError::InvalidPlatform)
    );
    assert_eq!(
        register_attested_enclave(&cap, &config, PLATFORM_TDX, vec![5; 31], &mut c),
        Err(ContractError::InvalidPk)
    );
    let id = register_attested_enclave(&cap, &config, PLATFORM_TDX, vec![5; 32], &mut c).unwrap();
    let Some(NewObject::Shared(ContractObject::Enclave(e))) = c.new_objects.pop() else {
        panic!()
    };
    assert_eq!((e.id, e.platform, e.config_version), (id, PLATFORM_TDX, 0));
}
