#[test_only]
module k3s_daas::staking_tests;

use k3s_daas::staking::{Self, AdminCap, StakingPool};
use std::string::String;
use sui::coin::{Self, Coin};
use sui::sui::SUI;
use sui::test_scenario::{Self as ts, Scenario};

const ADMIN: address = @0xAD;
const ALICE: address = @0xA11CE;
const BOB: address = @0xB0B;

const USER: u8 = 0;
const NODE: u8 = 1;
const ADMIN_ROLE: u8 = 2;

const ACTIVE: u8 = 0;
const UNBONDING: u8 = 1;
const NONE: u8 = 255;

// === Helpers ===

fun setup(): Scenario {
    let mut scenario = ts::begin(ADMIN);
    staking::init_for_testing(scenario.ctx());
    scenario
}

fun s(bytes: vector<u8>): String { bytes.to_string() }

/// `who` stakes `amount` MIST with `role` / `node_id` in a new transaction.
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

fun withdraw_as(scenario: &mut Scenario, who: address) {
    scenario.next_tx(who);
    let mut pool = scenario.take_shared<StakingPool>();
    staking::withdraw(&mut pool, scenario.ctx());
    ts::return_shared(pool);
}

fun set_config_as_admin(
    scenario: &mut Scenario,
    min_user: u64,
    min_node: u64,
    min_admin: u64,
    lockup_epochs: u64,
    slash_bps: u64,
) {
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut pool = scenario.take_shared<StakingPool>();
    staking::set_config(&cap, &mut pool, min_user, min_node, min_admin, lockup_epochs, slash_bps);
    ts::return_shared(pool);
    scenario.return_to_sender(cap);
}

// === init ===

#[test]
fun init_creates_pool_with_defaults_and_admin_cap() {
    let mut scenario = setup();
    scenario.next_tx(ADMIN);
    assert!(scenario.has_most_recent_for_sender<AdminCap>());
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.min_stake(USER) == 100);
    assert!(pool.min_stake(NODE) == 1_000);
    assert!(pool.min_stake(ADMIN_ROLE) == 10_000);
    assert!(pool.lockup_epochs() == 2);
    assert!(pool.slash_bps() == 1_000);
    assert!(pool.total_staked() == 0);
    assert!(pool.stake_status(ALICE) == NONE);
    assert!(pool.stake_amount(ALICE) == 0);
    assert!(pool.stake_generation(ALICE) == 0);
    assert!(pool.stake_role(ALICE) == NONE);
    assert!(!pool.is_active(ALICE));
    ts::return_shared(pool);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInvalidRole)]
fun min_stake_invalid_role_aborts() {
    let mut scenario = setup();
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    pool.min_stake(3);
    ts::return_shared(pool);
    scenario.end();
}

// === stake: new records ===

#[test]
fun stake_at_minimum_per_role() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-1");
    stake_as(&mut scenario, ADMIN, 10_000, ADMIN_ROLE, b"");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_amount(ALICE) == 100);
    assert!(pool.stake_role(ALICE) == USER);
    assert!(pool.stake_status(ALICE) == ACTIVE);
    assert!(pool.stake_generation(ALICE) == 1);
    assert!(pool.is_active(ALICE));
    assert!(pool.stake_amount(BOB) == 1_000);
    assert!(pool.stake_role(BOB) == NODE);
    assert!(pool.stake_node_id(BOB) == s(b"worker-1"));
    assert!(pool.stake_unlock_epoch(BOB) == 0);
    assert!(pool.stake_role(ADMIN) == ADMIN_ROLE);
    assert!(pool.total_staked() == 11_100);
    ts::return_shared(pool);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInsufficientStake)]
fun stake_below_user_minimum_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 99, USER, b"");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInsufficientStake)]
fun stake_below_node_minimum_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, BOB, 999, NODE, b"worker-1");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInsufficientStake)]
fun stake_below_admin_minimum_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ADMIN, 9_999, ADMIN_ROLE, b"");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInvalidRole)]
fun stake_invalid_role_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 1_000_000, 3, b"");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EMissingNodeId)]
fun stake_node_without_node_id_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, BOB, 1_000, NODE, b"");
    scenario.end();
}

// === stake: top-up ===

#[test]
fun top_up_adds_to_active_record() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    stake_as(&mut scenario, ALICE, 50, USER, b"");
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-1");
    stake_as(&mut scenario, BOB, 1, NODE, b"worker-1");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_amount(ALICE) == 150);
    assert!(pool.stake_generation(ALICE) == 1);
    assert!(pool.stake_status(ALICE) == ACTIVE);
    assert!(pool.stake_amount(BOB) == 1_001);
    assert!(pool.stake_generation(BOB) == 1);
    assert!(pool.total_staked() == 1_151);
    ts::return_shared(pool);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ERoleMismatch)]
fun top_up_with_other_role_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    stake_as(&mut scenario, ALICE, 10_000, ADMIN_ROLE, b"");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ERoleMismatch)]
fun top_up_node_with_other_node_id_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-1");
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-2");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInsufficientStake)]
fun top_up_still_below_raised_minimum_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    set_config_as_admin(&mut scenario, 500, 1_000, 10_000, 2, 1_000);
    // 100 + 10 < 500: the SPEC's "new total must be >= min(role)" is enforced literally.
    stake_as(&mut scenario, ALICE, 10, USER, b"");
    scenario.end();
}

// === unstake / withdraw / lockup ===

#[test]
fun request_unstake_sets_unbonding_and_unlock_epoch() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    scenario.next_epoch(ADMIN); // epoch 1
    unstake_as(&mut scenario, ALICE);
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(ALICE) == UNBONDING);
    assert!(!pool.is_active(ALICE));
    assert!(pool.stake_unlock_epoch(ALICE) == 3); // 1 + lockup 2
    assert!(pool.stake_amount(ALICE) == 100);
    assert!(pool.total_staked() == 100);
    ts::return_shared(pool);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ENoStake)]
fun request_unstake_without_stake_aborts() {
    let mut scenario = setup();
    unstake_as(&mut scenario, ALICE);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ENotActive)]
fun request_unstake_twice_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    unstake_as(&mut scenario, ALICE);
    unstake_as(&mut scenario, ALICE);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ENoStake)]
fun withdraw_without_stake_aborts() {
    let mut scenario = setup();
    withdraw_as(&mut scenario, ALICE);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EStillActive)]
fun withdraw_while_active_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    scenario.next_epoch(ALICE);
    scenario.next_epoch(ALICE);
    scenario.next_epoch(ALICE);
    withdraw_as(&mut scenario, ALICE);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ELocked)]
fun withdraw_in_unstake_epoch_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    unstake_as(&mut scenario, ALICE); // epoch 0, unlock_epoch 2
    withdraw_as(&mut scenario, ALICE);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ELocked)]
fun withdraw_one_epoch_before_unlock_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    unstake_as(&mut scenario, ALICE); // epoch 0, unlock_epoch 2
    scenario.next_epoch(ALICE); // epoch 1
    withdraw_as(&mut scenario, ALICE);
    scenario.end();
}

#[test]
fun withdraw_at_unlock_epoch_pays_out_and_removes_record() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    stake_as(&mut scenario, ALICE, 25, USER, b"");
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-1");
    unstake_as(&mut scenario, ALICE); // epoch 0, unlock_epoch 2
    scenario.next_epoch(ALICE); // epoch 1
    scenario.next_epoch(ALICE); // epoch 2
    withdraw_as(&mut scenario, ALICE);

    scenario.next_tx(ALICE);
    let payout = scenario.take_from_sender<Coin<SUI>>();
    assert!(payout.value() == 125);
    payout.burn_for_testing();
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(ALICE) == NONE);
    assert!(pool.stake_amount(ALICE) == 0);
    assert!(pool.total_staked() == 1_000);
    ts::return_shared(pool);
    scenario.end();
}

// === re-stake ===

#[test]
fun restake_after_unbonding_bumps_generation() {
    let mut scenario = setup();
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-1");
    unstake_as(&mut scenario, BOB);
    // Re-stake with another role: remaining 1_000 + 9_000 >= admin minimum 10_000.
    stake_as(&mut scenario, BOB, 9_000, ADMIN_ROLE, b"");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(BOB) == ACTIVE);
    assert!(pool.stake_generation(BOB) == 2);
    assert!(pool.stake_role(BOB) == ADMIN_ROLE);
    assert!(pool.stake_node_id(BOB) == s(b""));
    assert!(pool.stake_unlock_epoch(BOB) == 0);
    assert!(pool.stake_amount(BOB) == 10_000);
    assert!(pool.total_staked() == 10_000);
    ts::return_shared(pool);

    // Unbond and re-stake once more: generation 3.
    unstake_as(&mut scenario, BOB);
    stake_as(&mut scenario, BOB, 0, ADMIN_ROLE, b"");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_generation(BOB) == 3);
    assert!(pool.stake_amount(BOB) == 10_000);
    ts::return_shared(pool);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInsufficientStake)]
fun restake_below_minimum_aborts() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 100, USER, b"");
    unstake_as(&mut scenario, ALICE);
    // 100 + 800 < node minimum 1_000.
    stake_as(&mut scenario, ALICE, 800, NODE, b"worker-9");
    scenario.end();
}

// === set_config ===

#[test]
fun set_config_updates_minimums_lockup_and_slash_rate() {
    let mut scenario = setup();
    set_config_as_admin(&mut scenario, 5, 5, 7, 0, 10_000);
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.min_stake(USER) == 5);
    assert!(pool.min_stake(NODE) == 5);
    assert!(pool.min_stake(ADMIN_ROLE) == 7);
    assert!(pool.lockup_epochs() == 0);
    assert!(pool.slash_bps() == 10_000);
    ts::return_shared(pool);

    // The new minimum applies; with lockup 0 a withdrawal works in the unstake epoch.
    stake_as(&mut scenario, ALICE, 5, USER, b"");
    unstake_as(&mut scenario, ALICE);
    withdraw_as(&mut scenario, ALICE);
    scenario.next_tx(ALICE);
    let payout = scenario.take_from_sender<Coin<SUI>>();
    assert!(payout.value() == 5);
    payout.burn_for_testing();
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInsufficientStake)]
fun stake_below_raised_minimum_aborts() {
    let mut scenario = setup();
    set_config_as_admin(&mut scenario, 200, 1_000, 10_000, 2, 1_000);
    stake_as(&mut scenario, ALICE, 199, USER, b"");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInvalidConfig)]
fun set_config_user_above_node_aborts() {
    let mut scenario = setup();
    set_config_as_admin(&mut scenario, 1_001, 1_000, 10_000, 2, 1_000);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInvalidConfig)]
fun set_config_node_above_admin_aborts() {
    let mut scenario = setup();
    set_config_as_admin(&mut scenario, 100, 10_001, 10_000, 2, 1_000);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EInvalidConfig)]
fun set_config_slash_bps_above_10000_aborts() {
    let mut scenario = setup();
    set_config_as_admin(&mut scenario, 100, 1_000, 10_000, 2, 10_001);
    scenario.end();
}

// === node-id uniqueness (node_owners) ===

#[test, expected_failure(abort_code = staking::ENodeIdTaken)]
fun second_address_cannot_stake_a_taken_node_id() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 1_000, NODE, b"worker-1");
    stake_as(&mut scenario, BOB, 5_000, NODE, b"worker-1");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ENodeIdTaken)]
fun unbonding_holder_keeps_the_node_id() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 1_000, NODE, b"worker-1");
    unstake_as(&mut scenario, ALICE);
    stake_as(&mut scenario, BOB, 5_000, NODE, b"worker-1");
    scenario.end();
}

#[test]
fun node_id_is_released_by_withdraw() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 1_000, NODE, b"worker-1");
    // A user stake does not claim the node id it names.
    stake_as(&mut scenario, BOB, 100, USER, b"worker-1");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.node_owner(s(b"worker-1")) == option::some(ALICE));
    assert!(pool.node_owner(s(b"worker-2")) == option::none());
    ts::return_shared(pool);

    unstake_as(&mut scenario, ALICE);
    scenario.next_epoch(ALICE);
    scenario.next_epoch(ALICE);
    withdraw_as(&mut scenario, ALICE);
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.node_owner(s(b"worker-1")) == option::none());
    ts::return_shared(pool);

    let carol = @0xCA201;
    stake_as(&mut scenario, carol, 1_000, NODE, b"worker-1");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.node_owner(s(b"worker-1")) == option::some(carol));
    ts::return_shared(pool);
    scenario.end();
}

#[test]
fun restake_under_another_node_id_releases_the_old_one() {
    let mut scenario = setup();
    stake_as(&mut scenario, ALICE, 1_000, NODE, b"worker-1");
    // The holder may top up its own node id.
    stake_as(&mut scenario, ALICE, 10, NODE, b"worker-1");
    unstake_as(&mut scenario, ALICE);
    stake_as(&mut scenario, ALICE, 0, NODE, b"worker-2");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.node_owner(s(b"worker-1")) == option::none());
    assert!(pool.node_owner(s(b"worker-2")) == option::some(ALICE));
    ts::return_shared(pool);
    // worker-1 is free for another address now.
    stake_as(&mut scenario, BOB, 1_000, NODE, b"worker-1");
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.node_owner(s(b"worker-1")) == option::some(BOB));
    ts::return_shared(pool);
    scenario.end();
}
