#[test_only]
module k3s_daas::gateway_tests;

use k3s_daas::k8s_gateway::{Self, Gateway, SealToken};
use k3s_daas::staking::{Self, AdminCap, StakingPool};
use sui::coin;
use sui::sui::SUI;
use sui::test_scenario::{Self as ts, Scenario};

const ADMIN: address = @0xAD;
const ALICE: address = @0xA11CE;
const BOB: address = @0xB0B;
const MALLORY: address = @0xBAD;

const USER: u8 = 0;
const NODE: u8 = 1;
const ADMIN_ROLE: u8 = 2;

// === Helpers ===

fun setup(): Scenario {
    let mut scenario = ts::begin(ADMIN);
    staking::init_for_testing(scenario.ctx());
    k8s_gateway::init_for_testing(scenario.ctx());
    scenario
}

fun stake_as(scenario: &mut Scenario, who: address, amount: u64, role: u8, node_id: vector<u8>) {
    scenario.next_tx(who);
    let mut pool = scenario.take_shared<StakingPool>();
    let payment = coin::mint_for_testing<SUI>(amount, scenario.ctx());
    staking::stake(&mut pool, payment, role, node_id.to_string(), scenario.ctx());
    ts::return_shared(pool);
}

fun unstake_as(scenario: &mut Scenario, who: address) {
    scenario.next_tx(who);
    let mut pool = scenario.take_shared<StakingPool>();
    staking::request_unstake(&mut pool, scenario.ctx());
    ts::return_shared(pool);
}

fun issue_as(scenario: &mut Scenario, who: address) {
    scenario.next_tx(who);
    let mut gateway = scenario.take_shared<Gateway>();
    let pool = scenario.take_shared<StakingPool>();
    k8s_gateway::issue_seal_token(&mut gateway, &pool, scenario.ctx());
    ts::return_shared(pool);
    ts::return_shared(gateway);
}

fun set_gateway_as_admin(scenario: &mut Scenario, endpoint: vector<u8>, ttl: u64) {
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut gateway = scenario.take_shared<Gateway>();
    k8s_gateway::set_gateway(&cap, &mut gateway, endpoint.to_string(), ttl);
    ts::return_shared(gateway);
    scenario.return_to_sender(cap);
}

/// is_valid of `owner`'s most recent token, in a new transaction sent by `owner`.
fun token_is_valid(scenario: &mut Scenario, owner: address): bool {
    scenario.next_tx(owner);
    let token = scenario.take_from_sender<SealToken>();
    let pool = scenario.take_shared<StakingPool>();
    let valid = k8s_gateway::is_valid(&token, &pool, scenario.ctx());
    ts::return_shared(pool);
    scenario.return_to_sender(token);
    valid
}

// === init / set_gateway ===

#[test]
fun init_shares_gateway_with_defaults() {
    let mut scenario = setup();
    scenario.next_tx(ADMIN);
    let gateway = scenario.take_shared<Gateway>();
    assert!(gateway.token_ttl_epochs() == 30);
    assert!(gateway.tokens_issued() == 0);
    assert!(gateway.master_endpoint() == b"".to_string());
    ts::return_shared(gateway);
    scenario.end();
}

#[test]
fun set_gateway_updates_endpoint_and_ttl() {
    let mut scenario = setup();
    set_gateway_as_admin(&mut scenario, b"https://10.0.0.1:6443", 5);
    scenario.next_tx(ADMIN);
    let gateway = scenario.take_shared<Gateway>();
    assert!(gateway.master_endpoint() == b"https://10.0.0.1:6443".to_string());
    assert!(gateway.token_ttl_epochs() == 5);
    ts::return_shared(gateway);
    scenario.end();
}

#[test, expected_failure(abort_code = k8s_gateway::EInvalidTtl)]
fun set_gateway_zero_ttl_aborts() {
    let mut scenario = setup();
    set_gateway_as_admin(&mut scenario, b"https://10.0.0.1:6443", 0);
    scenario.end();
}

// === issue ===

#[test]
fun issue_node_token_carries_record_and_gateway_fields() {
    let mut scenario = setup();
    set_gateway_as_admin(&mut scenario, b"https://10.0.0.1:6443", 30);
    scenario.next_epoch(ADMIN); // epoch 1
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-1");
    issue_as(&mut scenario, BOB);

    scenario.next_tx(BOB);
    let token = scenario.take_from_sender<SealToken>();
    assert!(token.owner() == BOB);
    assert!(token.role() == NODE);
    assert!(token.node_id() == b"worker-1".to_string());
    assert!(token.permissions() == vector[b"node:self".to_string()]);
    assert!(token.stake_generation() == 1);
    assert!(token.issued_epoch() == 1);
    assert!(token.expiry_epoch() == 31);
    assert!(token.token_master_endpoint() == b"https://10.0.0.1:6443".to_string());
    let pool = scenario.take_shared<StakingPool>();
    assert!(k8s_gateway::is_valid(&token, &pool, scenario.ctx()));
    ts::return_shared(pool);
    scenario.return_to_sender(token);

    let gateway = scenario.take_shared<Gateway>();
    assert!(gateway.tokens_issued() == 1);
    ts::return_shared(gateway);
    scenario.end();
}

#[test]
fun permissions_by_role() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    issue_as(&mut scenario, ALICE);
    stake_as(&mut scenario, ADMIN, 10_000, ADMIN_ROLE, b"");
    issue_as(&mut scenario, ADMIN);

    scenario.next_tx(ALICE);
    let token = scenario.take_from_sender<SealToken>();
    assert!(token.role() == USER);
    assert!(token.permissions() == vector[b"namespace:own".to_string()]);
    scenario.return_to_sender(token);

    scenario.next_tx(ADMIN);
    let token = scenario.take_from_sender<SealToken>();
    assert!(token.role() == ADMIN_ROLE);
    assert!(token.permissions() == vector[b"cluster-admin".to_string()]);
    scenario.return_to_sender(token);

    scenario.next_tx(ADMIN);
    let gateway = scenario.take_shared<Gateway>();
    assert!(gateway.tokens_issued() == 2);
    ts::return_shared(gateway);
    assert!(k8s_gateway::permissions_for(3) == vector[]);
    scenario.end();
}

#[test, expected_failure(abort_code = k8s_gateway::ENoActiveStake)]
fun issue_without_stake_aborts() {
    let mut scenario = setup();
    issue_as(&mut scenario, ALICE);
    scenario.end();
}

#[test, expected_failure(abort_code = k8s_gateway::ENoActiveStake)]
fun issue_while_unbonding_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    unstake_as(&mut scenario, ALICE);
    issue_as(&mut scenario, ALICE);
    scenario.end();
}

// === is_valid ===

#[test]
fun token_expires_after_expiry_epoch() {
    let mut scenario = setup();
    set_gateway_as_admin(&mut scenario, b"https://master", 2);
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    issue_as(&mut scenario, ALICE); // epoch 0, expiry_epoch 2
    assert!(token_is_valid(&mut scenario, ALICE));
    scenario.next_epoch(ALICE); // epoch 1
    assert!(token_is_valid(&mut scenario, ALICE));
    scenario.next_epoch(ALICE); // epoch 2 == expiry_epoch: still valid
    assert!(token_is_valid(&mut scenario, ALICE));
    scenario.next_epoch(ALICE); // epoch 3
    assert!(!token_is_valid(&mut scenario, ALICE));
    scenario.end();
}

#[test]
fun unstake_invalidates_token() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    issue_as(&mut scenario, ALICE);
    assert!(token_is_valid(&mut scenario, ALICE));
    unstake_as(&mut scenario, ALICE);
    assert!(!token_is_valid(&mut scenario, ALICE));
    scenario.end();
}

#[test]
fun restake_invalidates_earlier_token() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    issue_as(&mut scenario, ALICE);
    scenario.next_tx(ALICE);
    let old_id = scenario.most_recent_id_for_sender<SealToken>().destroy_some();
    unstake_as(&mut scenario, ALICE);
    stake_as(&mut scenario, ALICE, 0, USER, b""); // generation 2
    issue_as(&mut scenario, ALICE);

    scenario.next_tx(ALICE);
    let pool = scenario.take_shared<StakingPool>();
    let old_token = scenario.take_from_sender_by_id<SealToken>(old_id);
    assert!(old_token.stake_generation() == 1);
    assert!(!k8s_gateway::is_valid(&old_token, &pool, scenario.ctx()));
    let new_token = scenario.take_from_sender<SealToken>();
    assert!(new_token.stake_generation() == 2);
    assert!(k8s_gateway::is_valid(&new_token, &pool, scenario.ctx()));
    scenario.return_to_sender(old_token);
    scenario.return_to_sender(new_token);
    ts::return_shared(pool);
    scenario.end();
}

// === revoke ===

#[test]
fun owner_revokes_token() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    issue_as(&mut scenario, ALICE);
    scenario.next_tx(ALICE);
    let token = scenario.take_from_sender<SealToken>();
    k8s_gateway::revoke_seal_token(token, scenario.ctx());
    scenario.next_tx(ALICE);
    assert!(!scenario.has_most_recent_for_sender<SealToken>());
    scenario.end();
}

#[test, expected_failure(abort_code = k8s_gateway::ENotOwner)]
fun revoke_by_non_owner_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    issue_as(&mut scenario, ALICE);
    // The token has `store`, so it can end up with another address; that holder cannot revoke it.
    scenario.next_tx(ALICE);
    let token = scenario.take_from_sender<SealToken>();
    transfer::public_transfer(token, MALLORY);
    scenario.next_tx(MALLORY);
    let token = scenario.take_from_sender<SealToken>();
    k8s_gateway::revoke_seal_token(token, scenario.ctx());
    scenario.end();
}
