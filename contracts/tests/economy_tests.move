#[test_only]
module k3s_daas::economy_tests;

use k3s_daas::economy::{Self, Market};
use k3s_daas::enclave::{Self, Enclave, EnclaveConfig};
use k3s_daas::staking::{Self, AdminCap, StakingPool};
use std::string::String;
use sui::coin::{Self, Coin};
use sui::sui::SUI;
use sui::test_scenario::{Self as ts, Scenario};

const ADMIN: address = @0xAD;
const MASTER: address = @0x3A57E2;
/// The user (escrow owner). As BCS: 29 zero bytes then 0x0a 0x11 0xce.
const USER: address = @0xA11CE;
/// Holder of node id "worker-1" (the slash vectors' node).
const NODE_ADDR: address = @0xB0B;
/// Holder of node id "worker-2".
const NODE2_ADDR: address = @0xB0C;

const NODE: u8 = 1;
const DEPOSIT: u64 = 1_000_000;
const MAX_U64: u64 = 18446744073709551615;

// Test vectors, made offline with contracts/scripts/gen_test_vectors.py (Python `cryptography`),
// signed by the test enclave key (seed = sha256(b"k3s-daas test enclave key")):
//   msg = u8 intent (3) | u64 LE timestamp_ms | 32-byte market id | u64 LE period
//         | u64 LE period_start_ms | u64 LE period_end_ms | vector<address> users
//         | vector<String> node_ids | vector<u64> generations, cpu_ms, mem_mib_s, pod_s, uptime_ms
// The market is the first object created in the scenario's first transaction (`setup`): its id is
// blake2b256(0xf1 || tx hash of hint 0 (32 zero bytes) || u64 LE 0) = MARKET_ADDR.
// (crates/ledger's contract tests check MARKET_ADDR and USAGE_P1_SIG against the Rust port.)
const MARKET_ADDR: address = @0x034401905bebdf8c04f3cd5f04f442a39372c8dc321c29edfb4f9cb30b23ab96;
const ENCLAVE_PK: vector<u8> = x"01587362fbad6081caa0b4be42f01a5b8c6fda02cf8fbd16e3b4445876132371";
/// Some other Ed25519 key (the Nautilus weather example enclave's).
const OTHER_PK: vector<u8> = x"e8e62201dbe293b703c759f653107acbc2c911fa1d2e66f2c747bec95971a2af";
const TIMESTAMP_MS: u64 = 1_700_000_000_000;
// USAGE_P1: period 1 [0, 60000): USER on worker-1 (gen 1) cpu 1500 mem 2500 pod 60,
//           USER on worker-2 (gen 1) cpu 999 mem 1 pod 1; uptime 60000 each.
const USAGE_P1_SIG: vector<u8> =
    x"3811ef3b1ad8af22b3e9f2722ae111262d6f47e62bfdb599408f67484d902cce4503af53805748dd7de48bda73e11b1d738bb4709a0f8db5255a618bc2aeaa06";
// USAGE_P2: period 2 [60000, 120000): USER on worker-1 and worker-2 (gen 1), cpu 1000 each.
const USAGE_P2_SIG: vector<u8> =
    x"8dc97383e4c93931f27599faa314e1bd93f45f99b23b1bf8b79d9fccf7541d5374969de2bf184c91bc9b9419671d83192ee568658e69ab371af2a4074485b409";
// USAGE_MISMATCH: period 3, one line but two pod_s entries.
const USAGE_MISMATCH_SIG: vector<u8> =
    x"99111933855eb718a9f250919d17f6ae0c89f0332d088754fcb82ef8c94ae1eddc32eb6790c39c0826335e76dc11b724d5d0e7a28b1d9d5f7e28760c0ec3cb01";
// USAGE_OVERFLOW: period 3, three lines on worker-2; the third has cpu_ms = pod_s = u64::MAX.
const USAGE_OVERFLOW_SIG: vector<u8> =
    x"90d8a6523b12d5a6b44f696e1cccc88ea9b81abfa44d85ba86a88968b2e0ccfe8185dace9116b4720be675eeffb2774fca070c99da5f3c67f6833f8923bf9d00";
// slash_tests.move's SIG_G1_N0_E0: slashes NODE_ADDR ("worker-1", generation 1, nonce 0, epoch 0).
const REASON: vector<u8> = b"missed heartbeats";
const SIG_G1_N0_E0: vector<u8> =
    x"59ea889caf35f17859a6d510e740eb7d37b0f2c7bfc4198e5d882e68bfb9b1e757a4513be599ebd745378346ed340b1fe822107532de159023522113e9757408";

/// The arguments of one `settle` call (without market, objects, timestamp and signature).
public struct Lines has copy, drop {
    period: u64,
    start: u64,
    end: u64,
    users: vector<address>,
    node_ids: vector<String>,
    generations: vector<u64>,
    cpu_ms: vector<u64>,
    mem_mib_s: vector<u64>,
    pod_s: vector<u64>,
    uptime_ms: vector<u64>,
}

fun p1(): Lines {
    Lines {
        period: 1,
        start: 0,
        end: 60_000,
        users: vector[USER, USER],
        node_ids: vector[b"worker-1".to_string(), b"worker-2".to_string()],
        generations: vector[1, 1],
        cpu_ms: vector[1500, 999],
        mem_mib_s: vector[2500, 1],
        pod_s: vector[60, 1],
        uptime_ms: vector[60_000, 60_000],
    }
}

fun p2(): Lines {
    Lines {
        period: 2,
        start: 60_000,
        end: 120_000,
        users: vector[USER, USER],
        node_ids: vector[b"worker-1".to_string(), b"worker-2".to_string()],
        generations: vector[1, 1],
        cpu_ms: vector[1000, 1000],
        mem_mib_s: vector[0, 0],
        pod_s: vector[0, 0],
        uptime_ms: vector[60_000, 60_000],
    }
}

fun mismatch(): Lines {
    Lines {
        period: 3,
        start: 120_000,
        end: 180_000,
        users: vector[USER],
        node_ids: vector[b"worker-2".to_string()],
        generations: vector[1],
        cpu_ms: vector[1000],
        mem_mib_s: vector[0],
        pod_s: vector[0, 0],
        uptime_ms: vector[60_000],
    }
}

fun overflow(): Lines {
    let w2 = b"worker-2".to_string();
    Lines {
        period: 3,
        start: 120_000,
        end: 180_000,
        users: vector[USER, USER, USER],
        node_ids: vector[w2, w2, w2],
        generations: vector[1, 1, 1],
        cpu_ms: vector[1000, 1000, MAX_U64],
        mem_mib_s: vector[0, 0, 0],
        pod_s: vector[0, 0, MAX_U64],
        uptime_ms: vector[60_000, 60_000, 60_000],
    }
}

// === Helpers ===

fun stake_as(scenario: &mut Scenario, who: address, node_id: vector<u8>) {
    scenario.next_tx(who);
    let mut pool = scenario.take_shared<StakingPool>();
    let payment = coin::mint_for_testing<SUI>(10_000, scenario.ctx());
    staking::stake(&mut pool, payment, NODE, node_id.to_string(), scenario.ctx());
    ts::return_shared(pool);
}

fun deposit_as(scenario: &mut Scenario, market: &mut Market, who: address, amount: u64) {
    scenario.next_tx(who);
    let payment = coin::mint_for_testing<SUI>(amount, scenario.ctx());
    economy::deposit(market, payment, scenario.ctx());
}

/// The market (not shared: kept by the test), the pool, an enclave config, an enclave with `pk`
/// registered against it, two staked nodes ("worker-1" by NODE_ADDR, "worker-2" by NODE2_ADDR)
/// and USER's escrow of DEPOSIT.
fun setup_with_enclave_pk(pk: vector<u8>): (Scenario, Market) {
    let mut scenario = ts::begin(ADMIN);
    // First object of the first transaction: the id the usage vectors were signed for.
    let mut market = economy::new_market_for_testing(scenario.ctx());
    assert!(object::id_to_address(&object::id(&market)) == MARKET_ADDR);
    staking::init_for_testing(scenario.ctx());
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    staking::create_enclave_config(&cap, b"k3s-daas master".to_string(), x"00", x"01", x"02", scenario.ctx());
    scenario.return_to_sender(cap);
    scenario.next_tx(MASTER);
    let config = scenario.take_shared<EnclaveConfig>();
    enclave::register_enclave_for_testing(&config, pk, scenario.ctx());
    ts::return_shared(config);
    stake_as(&mut scenario, NODE_ADDR, b"worker-1");
    stake_as(&mut scenario, NODE2_ADDR, b"worker-2");
    deposit_as(&mut scenario, &mut market, USER, DEPOSIT);
    (scenario, market)
}

fun setup(): (Scenario, Market) { setup_with_enclave_pk(ENCLAVE_PK) }

/// MASTER submits `l` with `signature` (anyone may submit a report).
fun settle(scenario: &mut Scenario, market: &mut Market, l: Lines, signature: vector<u8>) {
    scenario.next_tx(MASTER);
    let pool = scenario.take_shared<StakingPool>();
    let enclave = scenario.take_shared<Enclave>();
    let config = scenario.take_shared_by_id<EnclaveConfig>(enclave.config_id());
    economy::settle(
        market,
        &pool,
        &config,
        &enclave,
        l.period,
        l.start,
        l.end,
        l.users,
        l.node_ids,
        l.generations,
        l.cpu_ms,
        l.mem_mib_s,
        l.pod_s,
        l.uptime_ms,
        TIMESTAMP_MS,
        signature,
        scenario.ctx(),
    );
    ts::return_shared(config);
    ts::return_shared(enclave);
    ts::return_shared(pool);
}

fun update_pcrs_as_admin(scenario: &mut Scenario) {
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut config = scenario.take_shared<EnclaveConfig>();
    staking::update_pcrs(&cap, &mut config, x"10", x"11", x"12");
    ts::return_shared(config);
    scenario.return_to_sender(cap);
}

fun slash_node_1(scenario: &mut Scenario) {
    scenario.next_tx(MASTER);
    let mut pool = scenario.take_shared<StakingPool>();
    let enclave = scenario.take_shared<Enclave>();
    let config = scenario.take_shared_by_id<EnclaveConfig>(enclave.config_id());
    staking::slash(
        &mut pool,
        &config,
        &enclave,
        NODE_ADDR,
        b"worker-1".to_string(),
        1,
        0,
        REASON.to_string(),
        TIMESTAMP_MS,
        SIG_G1_N0_E0,
        scenario.ctx(),
    );
    ts::return_shared(config);
    ts::return_shared(enclave);
    ts::return_shared(pool);
}

/// The coin `who` received last has `value`.
fun received(scenario: &mut Scenario, who: address, value: u64) {
    scenario.next_tx(who);
    let c = scenario.take_from_sender<Coin<SUI>>();
    assert!(c.value() == value);
    scenario.return_to_sender(c);
}

fun finish(scenario: Scenario, market: Market) {
    economy::destroy_market_for_testing(market);
    scenario.end();
}

// === market, deposit, withdrawals ===

#[test]
fun new_market_has_default_prices() {
    let (scenario, market) = setup();
    let (cpu, mem, pod) = market.prices();
    assert!(cpu == 1000 && mem == 1 && pod == 1000);
    assert!(market.last_period() == 0);
    assert!(market.escrow_value() == DEPOSIT);
    assert!(market.payouts_value() == 0);
    finish(scenario, market);
}

#[test]
fun init_shares_a_market() {
    let mut scenario = ts::begin(ADMIN);
    economy::init_for_testing(scenario.ctx());
    scenario.next_tx(ADMIN);
    let market = scenario.take_shared<Market>();
    assert!(market.last_period() == 0 && market.escrow_value() == 0);
    ts::return_shared(market);
    scenario.end();
}

#[test]
fun deposit_top_up_and_withdraw_escrow() {
    let (mut scenario, mut market) = setup();
    let (balance, deposited, spent, _, _) = market.account_of(USER);
    assert!(balance == DEPOSIT && deposited == DEPOSIT && spent == 0);
    deposit_as(&mut scenario, &mut market, USER, 500);
    assert!(market.balance_of(USER) == DEPOSIT + 500);
    let (_, deposited, _, _, _) = market.account_of(USER);
    assert!(deposited == DEPOSIT + 500);
    scenario.next_tx(USER);
    economy::withdraw_escrow(&mut market, 700, scenario.ctx());
    received(&mut scenario, USER, 700);
    assert!(market.balance_of(USER) == DEPOSIT - 200);
    assert!(market.escrow_value() == DEPOSIT - 200);
    // everything can be withdrawn
    scenario.next_tx(USER);
    economy::withdraw_escrow(&mut market, DEPOSIT - 200, scenario.ctx());
    assert!(market.balance_of(USER) == 0 && market.escrow_value() == 0);
    assert!(market.has_account(USER));
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EInsufficientBalance)]
fun withdraw_escrow_above_balance_aborts() {
    let (mut scenario, mut market) = setup();
    scenario.next_tx(USER);
    economy::withdraw_escrow(&mut market, DEPOSIT + 1, scenario.ctx());
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EZeroAmount)]
fun withdraw_escrow_zero_aborts() {
    let (mut scenario, mut market) = setup();
    scenario.next_tx(USER);
    economy::withdraw_escrow(&mut market, 0, scenario.ctx());
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EZeroAmount)]
fun deposit_zero_aborts() {
    let (mut scenario, mut market) = setup();
    deposit_as(&mut scenario, &mut market, USER, 0);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EOverflow)]
fun deposit_overflow_aborts() {
    let (mut scenario, mut market) = setup();
    deposit_as(&mut scenario, &mut market, USER, MAX_U64 - DEPOSIT + 1);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::ENoAccount)]
fun withdraw_escrow_without_account_aborts() {
    let (mut scenario, mut market) = setup();
    scenario.next_tx(NODE_ADDR);
    economy::withdraw_escrow(&mut market, 1, scenario.ctx());
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::ENoEarnings)]
fun withdraw_earnings_without_earnings_aborts() {
    let (mut scenario, mut market) = setup();
    scenario.next_tx(USER);
    economy::withdraw_earnings(&mut market, 1, scenario.ctx());
    finish(scenario, market);
}

// === prices ===

#[test]
fun set_prices_changes_the_cost() {
    let (mut scenario, mut market) = setup();
    // default prices: 1 MIST per CPU-ms and per pod-second, 0.001 per MiB-second, rounded down
    assert!(economy::usage_cost_for_testing(&market, 1500, 2500, 60) == 1562);
    assert!(economy::usage_cost_for_testing(&market, 0, 999, 0) == 0);
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    economy::set_prices(&cap, &mut market, 2000, 10, 0);
    scenario.return_to_sender(cap);
    let (cpu, mem, pod) = market.prices();
    assert!(cpu == 2000 && mem == 10 && pod == 0);
    assert!(economy::usage_cost_for_testing(&market, 1500, 2500, 60) == 3025);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EOverflow)]
fun cost_overflow_with_huge_prices_aborts() {
    let (mut scenario, mut market) = setup();
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    economy::set_prices(&cap, &mut market, MAX_U64, MAX_U64, MAX_U64);
    scenario.return_to_sender(cap);
    economy::usage_cost_for_testing(&market, 2000, 0, 0);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EOverflow)]
fun cost_overflow_with_huge_usage_aborts() {
    let (scenario, market) = setup();
    economy::usage_cost_for_testing(&market, MAX_U64, 0, MAX_U64);
    finish(scenario, market);
}

// === settle ===

#[test]
fun settle_charges_escrow_and_pays_operators() {
    let (mut scenario, mut market) = setup();
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    // (1500*1000 + 2500*1 + 60*1000) / 1000 = 1562 (.5 kept by the user), (999*1000 + 1 + 1000) / 1000 = 1000
    assert!(market.balance_of(USER) == DEPOSIT - 2562);
    let (_, _, spent, last_period, last_charge) = market.account_of(USER);
    assert!(spent == 2562 && last_period == 1 && last_charge == 1000);
    let (balance, earned, withdrawn, uptime_ms, last_period) = market.earnings_of(NODE_ADDR);
    assert!(balance == 1562 && earned == 1562 && withdrawn == 0);
    assert!(uptime_ms == 60_000 && last_period == 1);
    assert!(market.earnings_balance(NODE2_ADDR) == 1000);
    assert!(market.escrow_value() == DEPOSIT - 2562);
    assert!(market.payouts_value() == 2562);
    assert!(market.last_period() == 1);
    // the operator withdraws
    scenario.next_tx(NODE_ADDR);
    economy::withdraw_earnings(&mut market, 1562, scenario.ctx());
    received(&mut scenario, NODE_ADDR, 1562);
    let (balance, earned, withdrawn, _, _) = market.earnings_of(NODE_ADDR);
    assert!(balance == 0 && earned == 1562 && withdrawn == 1562);
    assert!(market.payouts_value() == 1000);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EInsufficientBalance)]
fun withdraw_earnings_above_balance_aborts() {
    let (mut scenario, mut market) = setup();
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    scenario.next_tx(NODE2_ADDR);
    economy::withdraw_earnings(&mut market, 1001, scenario.ctx());
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EZeroAmount)]
fun withdraw_earnings_zero_aborts() {
    let (mut scenario, mut market) = setup();
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    scenario.next_tx(NODE2_ADDR);
    economy::withdraw_earnings(&mut market, 0, scenario.ctx());
    finish(scenario, market);
}

#[test]
fun settle_charges_at_most_the_balance() {
    let (mut scenario, mut market) = setup();
    scenario.next_tx(USER);
    economy::withdraw_escrow(&mut market, DEPOSIT - 2000, scenario.ctx());
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    // 1562 charged on the first line, the remaining 438 (not 1000) on the second
    assert!(market.balance_of(USER) == 0);
    assert!(market.earnings_balance(NODE_ADDR) == 1562);
    assert!(market.earnings_balance(NODE2_ADDR) == 438);
    finish(scenario, market);
}

#[test]
fun slashed_node_earns_nothing_and_its_stake_is_the_treasury() {
    let (mut scenario, mut market) = setup();
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    slash_node_1(&mut scenario);
    settle(&mut scenario, &mut market, p2(), USAGE_P2_SIG);
    // worker-1's line is skipped (not Active): the user is not charged for it
    assert!(market.earnings_balance(NODE_ADDR) == 1562);
    assert!(market.earnings_balance(NODE2_ADDR) == 2000);
    assert!(market.balance_of(USER) == DEPOSIT - 3562);
    assert!(market.last_period() == 2);
    // 10% of NODE_ADDR's 10_000: the admin withdraws it from the treasury
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut pool = scenario.take_shared<StakingPool>();
    assert!(pool.slashed_balance() == 1_000);
    staking::withdraw_treasury(&cap, &mut pool, 600, scenario.ctx());
    assert!(pool.slashed_balance() == 400);
    ts::return_shared(pool);
    scenario.return_to_sender(cap);
    received(&mut scenario, ADMIN, 600);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = staking::EInsufficientTreasury)]
fun withdraw_treasury_above_slashed_aborts() {
    let (mut scenario, market) = setup();
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut pool = scenario.take_shared<StakingPool>();
    staking::withdraw_treasury(&cap, &mut pool, 1, scenario.ctx());
    ts::return_shared(pool);
    scenario.return_to_sender(cap);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EReplayedReport)]
fun replayed_usage_report_aborts() {
    let (mut scenario, mut market) = setup();
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EBadUsageReport)]
fun forged_usage_report_aborts() {
    let (mut scenario, mut market) = setup();
    // P2's lines with P1's signature
    settle(&mut scenario, &mut market, p2(), USAGE_P1_SIG);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EBadUsageReport)]
fun tampered_usage_report_aborts() {
    let (mut scenario, mut market) = setup();
    let mut l = p1();
    *l.cpu_ms.borrow_mut(0) = 1;
    settle(&mut scenario, &mut market, l, USAGE_P1_SIG);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EBadUsageReport)]
fun usage_report_from_other_enclave_key_aborts() {
    let (mut scenario, mut market) = setup_with_enclave_pk(OTHER_PK);
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EStaleEnclave)]
fun usage_report_from_stale_enclave_aborts() {
    let (mut scenario, mut market) = setup();
    update_pcrs_as_admin(&mut scenario);
    // The signature is valid: only the staleness check can refuse it.
    settle(&mut scenario, &mut market, p1(), USAGE_P1_SIG);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::ELengthMismatch)]
fun usage_report_length_mismatch_aborts() {
    let (mut scenario, mut market) = setup();
    settle(&mut scenario, &mut market, mismatch(), USAGE_MISMATCH_SIG);
    finish(scenario, market);
}

#[test, expected_failure(abort_code = economy::EOverflow)]
fun usage_report_overflow_on_third_line_aborts() {
    let (mut scenario, mut market) = setup();
    // Lines 1 and 2 are charged before line 3 overflows; the abort reverts them (Move).
    settle(&mut scenario, &mut market, overflow(), USAGE_OVERFLOW_SIG);
    finish(scenario, market);
}
