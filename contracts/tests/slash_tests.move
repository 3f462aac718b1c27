#[test_only]
module k3s_daas::slash_tests;

use k3s_daas::enclave::{Self, Enclave, EnclaveConfig};
use k3s_daas::k8s_gateway::{Self, Gateway, SealToken};
use k3s_daas::staking::{Self, AdminCap, StakingPool};
use sui::coin::{Self, Coin};
use sui::sui::SUI;
use sui::test_scenario::{Self as ts, Scenario};

const ADMIN: address = @0xAD;
const MASTER: address = @0x3A57E2;
/// The slashed node. As BCS: 30 zero bytes then 0x0b 0x0b.
const NODE_ADDR: address = @0xB0B;

const NODE: u8 = 1;
const ACTIVE: u8 = 0;
const SLASHED: u8 = 2;

// Test vectors, made offline with contracts/scripts/gen_test_vectors.py (Python `cryptography`):
//   seed = sha256(b"k3s-daas test enclave key")
//        = 4cd9c59825bc57baf0a0e07d811146e74fdc407c4369754369e7269a9af396cd
//   sk = Ed25519PrivateKey.from_private_bytes(seed); pk = raw public key
//   msg  = u8 intent (1) | u64 LE timestamp_ms | 32-byte node address
//          | ULEB128(len(node_id)) node_id | u64 LE generation | u64 LE nonce
//          | ULEB128(len(reason)) reason | u64 LE epoch
//   SIG_G<generation>_N<nonce>_E<epoch> = sk.sign(msg) for node_id "worker-1";
//   SIG_NONE_E0 for an address without a record (node_id "", generation 0, nonce 0).
// (crates/ledger's contract tests check SIG_G1_N0_E0 against the Rust port's message bytes.)
const ENCLAVE_PK: vector<u8> = x"01587362fbad6081caa0b4be42f01a5b8c6fda02cf8fbd16e3b4445876132371";
const TIMESTAMP_MS: u64 = 1_700_000_000_000;
const REASON: vector<u8> = b"missed heartbeats";
// SIG_G1_N0_E0: node_id 'worker-1', generation 1, nonce 0, epoch 0
// msg = 010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3101000000000000000000000000000000116d697373656420686561727462656174730000000000000000
const SIG_G1_N0_E0: vector<u8> =
    x"59ea889caf35f17859a6d510e740eb7d37b0f2c7bfc4198e5d882e68bfb9b1e757a4513be599ebd745378346ed340b1fe822107532de159023522113e9757408";
// SIG_G1_N0_E1: node_id 'worker-1', generation 1, nonce 0, epoch 1
// msg = 010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3101000000000000000000000000000000116d697373656420686561727462656174730100000000000000
const SIG_G1_N0_E1: vector<u8> =
    x"61751f050f0510cb763d2913875c35f7a6fe284fc8d947a768e75145c2dbed824076a63ebfbc2067d7ddba685fc1aff177ce4d9bf4783b37c29ccfdb2491d308";
// SIG_G1_N1_E0: node_id 'worker-1', generation 1, nonce 1, epoch 0
// msg = 010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3101000000000000000100000000000000116d697373656420686561727462656174730000000000000000
const SIG_G1_N1_E0: vector<u8> =
    x"bcd222a1148645330de283fc03c15f594cec639351ffe7d9b102b265028326dc1b50237cc8c69408db2eaf07401cbd462ca7c9339f0d5af4aeb6982b9ebbf70f";
// SIG_G1_N1_E1: node_id 'worker-1', generation 1, nonce 1, epoch 1
// msg = 010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3101000000000000000100000000000000116d697373656420686561727462656174730100000000000000
const SIG_G1_N1_E1: vector<u8> =
    x"6ef4d50ffc4d1eca3dc517b36815649ac9bbf7e452ac4dac2ab97ddf1c003d8ee1aa227988fb97dbc634196a02e7886020733ba89e3fcfb6df396d833330c00e";
// SIG_G2_N0_E0: node_id 'worker-1', generation 2, nonce 0, epoch 0
// msg = 010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3102000000000000000000000000000000116d697373656420686561727462656174730000000000000000
const SIG_G2_N0_E0: vector<u8> =
    x"f0b477c1ab33440b72efd948772cc040c5dc8b3b95df06c5ff7c8826c834f2a1e83955523b5d1d775097627ef1759b2db28b6b35ade09445f3b1d536759b8c0f";
// SIG_G2_N1_E0: node_id 'worker-1', generation 2, nonce 1, epoch 0
// msg = 010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3102000000000000000100000000000000116d697373656420686561727462656174730000000000000000
const SIG_G2_N1_E0: vector<u8> =
    x"2b7d22332ed3b25be689b753ccec100c90bd91824eb49f4e9f04253f4c02826cd786a9f6e44e2d2bed458c71b6c2f0b98eeab27207fe8ad0c96128014c027401";
// SIG_NONE_E0: node_id '', generation 0, nonce 0, epoch 0
// msg = 010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b0000000000000000000000000000000000116d697373656420686561727462656174730000000000000000
const SIG_NONE_E0: vector<u8> =
    x"cb39afcd843a62a5f004c1f63f4bb5045497061ea0b2c419afa25c76cadb53a391c633761b39cfb6c4aad962c63b6a551f34904dfff3c57810991f23ba126406";
/// Some other Ed25519 key (the Nautilus weather example enclave's).
const OTHER_PK: vector<u8> = x"e8e62201dbe293b703c759f653107acbc2c911fa1d2e66f2c747bec95971a2af";

// === Helpers ===

/// ADMIN creates an `EnclaveConfig` (x"00", x"01", x"02") in a new transaction.
fun create_config_as_admin(scenario: &mut Scenario) {
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let name = b"k3s-daas master".to_string();
    staking::create_enclave_config(&cap, name, x"00", x"01", x"02", scenario.ctx());
    scenario.return_to_sender(cap);
}

/// Pool, gateway, one enclave config, and an enclave with `pk` registered against it (version 0).
fun setup_with_enclave_pk(pk: vector<u8>): Scenario {
    let mut scenario = ts::begin(ADMIN);
    staking::init_for_testing(scenario.ctx());
    k8s_gateway::init_for_testing(scenario.ctx());
    create_config_as_admin(&mut scenario);
    scenario.next_tx(MASTER);
    let config = scenario.take_shared<EnclaveConfig>();
    enclave::register_enclave_for_testing(&config, pk, scenario.ctx());
    ts::return_shared(config);
    scenario
}

fun setup(): Scenario { setup_with_enclave_pk(ENCLAVE_PK) }

fun stake_as(scenario: &mut Scenario, who: address, amount: u64, role: u8, node_id: vector<u8>) {
    scenario.next_tx(who);
    let mut pool = scenario.take_shared<StakingPool>();
    let payment = coin::mint_for_testing<SUI>(amount, scenario.ctx());
    staking::stake(&mut pool, payment, role, node_id.to_string(), scenario.ctx());
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

fun token_is_valid(scenario: &mut Scenario, owner: address): bool {
    scenario.next_tx(owner);
    let token = scenario.take_from_sender<SealToken>();
    let pool = scenario.take_shared<StakingPool>();
    let valid = k8s_gateway::is_valid(&token, &pool, scenario.ctx());
    ts::return_shared(pool);
    scenario.return_to_sender(token);
    valid
}

/// MASTER submits a slashing report in a new transaction (epoch unchanged), passing the enclave
/// and the config it was registered against, about `node`'s current record (its node id,
/// generation and slash count; "", 0, 0 without a record).
fun slash_with(scenario: &mut Scenario, node: address, reason: vector<u8>, signature: vector<u8>) {
    scenario.next_tx(MASTER);
    let pool = scenario.take_shared<StakingPool>();
    let (node_id, generation, nonce) =
        (pool.stake_node_id(node), pool.stake_generation(node), pool.stake_slash_count(node));
    ts::return_shared(pool);
    slash_report(scenario, node, node_id, generation, nonce, reason, signature);
}

/// MASTER submits a slashing report with explicit node id, generation and nonce.
fun slash_report(
    scenario: &mut Scenario,
    node: address,
    node_id: std::string::String,
    generation: u64,
    nonce: u64,
    reason: vector<u8>,
    signature: vector<u8>,
) {
    scenario.next_tx(MASTER);
    let mut pool = scenario.take_shared<StakingPool>();
    let enclave = scenario.take_shared<Enclave>();
    let config = scenario.take_shared_by_id<EnclaveConfig>(enclave.config_id());
    staking::slash(
        &mut pool,
        &config,
        &enclave,
        node,
        node_id,
        generation,
        nonce,
        reason.to_string(),
        TIMESTAMP_MS,
        signature,
        scenario.ctx(),
    );
    ts::return_shared(enclave);
    ts::return_shared(config);
    ts::return_shared(pool);
}

fun set_lockup_as_admin(scenario: &mut Scenario, lockup_epochs: u64) {
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut pool = scenario.take_shared<StakingPool>();
    staking::set_config(&cap, &mut pool, 100, 1_000, 10_000, lockup_epochs, 1_000);
    ts::return_shared(pool);
    scenario.return_to_sender(cap);
}

fun stake_node_10k(scenario: &mut Scenario) {
    stake_as(scenario, NODE_ADDR, 10_000, NODE, b"worker-1");
}

// === slash ===

#[test]
fun slash_takes_slash_bps_and_revokes_tokens() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    issue_as(&mut scenario, NODE_ADDR);
    assert!(token_is_valid(&mut scenario, NODE_ADDR));

    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);

    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_amount(NODE_ADDR) == 9_000); // 10% of 10_000 taken
    assert!(pool.stake_slashed_total(NODE_ADDR) == 1_000);
    assert!(pool.stake_status(NODE_ADDR) == SLASHED);
    assert!(!pool.is_active(NODE_ADDR));
    assert!(pool.stake_unlock_epoch(NODE_ADDR) == 2); // epoch 0 + lockup 2
    assert!(pool.stake_slashed_epoch(NODE_ADDR) == 0);
    assert!(pool.stake_generation(NODE_ADDR) == 1);
    assert!(pool.total_staked() == 9_000);
    assert!(pool.slashed_balance() == 1_000);
    ts::return_shared(pool);

    assert!(!token_is_valid(&mut scenario, NODE_ADDR));
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_with_tampered_reason_aborts() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, b"missed heartbeat", SIG_G1_N0_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_with_report_for_other_epoch_aborts() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    // Signed for epoch 1, submitted in epoch 0.
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E1);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_for_other_node_aborts() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    stake_as(&mut scenario, @0xC0FFEE, 10_000, NODE, b"worker-2");
    slash_with(&mut scenario, @0xC0FFEE, REASON, SIG_G1_N0_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_with_other_enclave_key_aborts() {
    let mut scenario = setup_with_enclave_pk(OTHER_PK);
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_with_malformed_signature_aborts() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, x"00");
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_with_stale_enclave_aborts() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    // New PCRs: version 1, the enclave was registered under version 0.
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut config = scenario.take_shared<EnclaveConfig>();
    staking::update_pcrs(&cap, &mut config, x"10", x"11", x"12");
    ts::return_shared(config);
    scenario.return_to_sender(cap);
    // The signature is valid: only the staleness check can refuse it.
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_with_other_config_aborts() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    // A second config, also at version 0, that the enclave was not registered against.
    create_config_as_admin(&mut scenario);
    let effects = scenario.next_tx(MASTER);
    let shared = effects.shared();
    assert!(shared.length() == 1);
    let mut pool = scenario.take_shared<StakingPool>();
    let other = scenario.take_shared_by_id<EnclaveConfig>(*shared.borrow(0));
    let enclave = scenario.take_shared<Enclave>();
    assert!(enclave.config_id() != object::id(&other));
    assert!(enclave.config_version() == other.config_version_of());
    staking::slash(
        &mut pool,
        &other,
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
    ts::return_shared(enclave);
    ts::return_shared(other);
    ts::return_shared(pool);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EBadReport)]
fun slash_without_stake_with_bad_signature_aborts_bad_report() {
    // The report is checked before the record: EBadReport, not ENoStake.
    let mut scenario = setup();
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::ENoStake)]
fun slash_without_stake_aborts() {
    let mut scenario = setup();
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_NONE_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EAlreadySlashed)]
fun slash_twice_in_one_epoch_aborts() {
    // A fresh report (nonce 1) in the epoch of the first slash.
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N1_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EStaleReport)]
fun replayed_slash_report_aborts() {
    // The same signed report again (nonce 0, while the record's slash count is now 1).
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_report(&mut scenario, NODE_ADDR, b"worker-1".to_string(), 1, 0, REASON, SIG_G1_N0_E0);
    slash_report(&mut scenario, NODE_ADDR, b"worker-1".to_string(), 1, 0, REASON, SIG_G1_N0_E0);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EStaleReport)]
fun replayed_slash_report_in_a_later_epoch_aborts() {
    // Validly signed for epoch 1, but about the record's first slash (nonce 0), already taken.
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    scenario.next_epoch(MASTER); // epoch 1
    slash_report(&mut scenario, NODE_ADDR, b"worker-1".to_string(), 1, 0, REASON, SIG_G1_N0_E1);
    scenario.end();
}

#[test, expected_failure(abort_code = staking::EStaleReport)]
fun slash_report_for_other_generation_aborts() {
    // Validly signed, but for generation 2 while the record is at generation 1.
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_report(&mut scenario, NODE_ADDR, b"worker-1".to_string(), 2, 0, REASON, SIG_G2_N0_E0);
    scenario.end();
}

#[test]
fun slash_counts_reports() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_slash_count(NODE_ADDR) == 1);
    assert!(pool.stake_generation(NODE_ADDR) == 1);
    ts::return_shared(pool);
    scenario.end();
}

#[test]
fun slash_again_in_a_later_epoch() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    scenario.next_epoch(MASTER); // epoch 1
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N1_E1);

    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_amount(NODE_ADDR) == 8_100);
    assert!(pool.stake_slashed_total(NODE_ADDR) == 1_900);
    assert!(pool.stake_unlock_epoch(NODE_ADDR) == 3);
    assert!(pool.stake_slashed_epoch(NODE_ADDR) == 1);
    assert!(pool.total_staked() == 8_100);
    assert!(pool.slashed_balance() == 1_900);
    ts::return_shared(pool);
    scenario.end();
}

#[test]
fun slash_in_later_epoch_after_lockup_change() {
    // EAlreadySlashed looks at the epoch of the last slash, not at unlock_epoch: slashed in
    // epoch 0 with lockup 2 (unlock_epoch 2), lockup lowered to 1, slashed again in epoch 1
    // (where epoch + lockup == 2 == unlock_epoch).
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    set_lockup_as_admin(&mut scenario, 1);
    scenario.next_epoch(MASTER); // epoch 1
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N1_E1);

    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_amount(NODE_ADDR) == 8_100);
    assert!(pool.stake_slashed_epoch(NODE_ADDR) == 1);
    assert!(pool.stake_unlock_epoch(NODE_ADDR) == 2);
    ts::return_shared(pool);
    scenario.end();
}

#[test]
fun slash_restake_and_slash_again_in_the_same_epoch() {
    // Only a record that is still Slashed from this epoch is refused; after a re-stake it is
    // Active again and can be slashed in the same epoch.
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    stake_as(&mut scenario, NODE_ADDR, 0, NODE, b"worker-1");
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G2_N1_E0);

    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(NODE_ADDR) == SLASHED);
    assert!(pool.stake_generation(NODE_ADDR) == 2);
    assert!(pool.stake_amount(NODE_ADDR) == 8_100);
    assert!(pool.stake_slashed_total(NODE_ADDR) == 1_900);
    ts::return_shared(pool);
    scenario.end();
}

#[test]
fun slash_unbonding_stake() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    scenario.next_tx(NODE_ADDR);
    let mut pool = scenario.take_shared<StakingPool>();
    staking::request_unstake(&mut pool, scenario.ctx());
    ts::return_shared(pool);

    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);

    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(NODE_ADDR) == SLASHED);
    assert!(pool.stake_amount(NODE_ADDR) == 9_000);
    ts::return_shared(pool);
    scenario.end();
}

// === after a slash: lockup, withdraw, re-stake ===

#[test, expected_failure(abort_code = staking::ELocked)]
fun withdraw_slashed_before_unlock_aborts() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0); // unlock_epoch 2
    scenario.next_epoch(NODE_ADDR); // epoch 1
    let mut pool = scenario.take_shared<StakingPool>();
    staking::withdraw(&mut pool, scenario.ctx());
    ts::return_shared(pool);
    scenario.end();
}

#[test]
fun withdraw_slashed_remainder_after_unlock() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0); // unlock_epoch 2
    scenario.next_epoch(NODE_ADDR); // epoch 1
    scenario.next_epoch(NODE_ADDR); // epoch 2
    let mut pool = scenario.take_shared<StakingPool>();
    staking::withdraw(&mut pool, scenario.ctx());
    ts::return_shared(pool);

    scenario.next_tx(NODE_ADDR);
    let payout = scenario.take_from_sender<Coin<SUI>>();
    assert!(payout.value() == 9_000);
    payout.burn_for_testing();
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(NODE_ADDR) == 255);
    assert!(pool.total_staked() == 0);
    assert!(pool.slashed_balance() == 1_000);
    ts::return_shared(pool);
    scenario.end();
}

#[test]
fun restake_after_slash_bumps_generation() {
    let mut scenario = setup();
    stake_node_10k(&mut scenario);
    issue_as(&mut scenario, NODE_ADDR);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);
    // 9_000 left >= node minimum, so a zero top-up re-activates the record.
    stake_as(&mut scenario, NODE_ADDR, 0, NODE, b"worker-1");

    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(NODE_ADDR) == ACTIVE);
    assert!(pool.stake_generation(NODE_ADDR) == 2);
    assert!(pool.stake_unlock_epoch(NODE_ADDR) == 0);
    assert!(pool.stake_amount(NODE_ADDR) == 9_000);
    // The slashing history survives the re-stake.
    assert!(pool.stake_slashed_total(NODE_ADDR) == 1_000);
    assert!(pool.stake_slashed_epoch(NODE_ADDR) == 0);
    ts::return_shared(pool);

    // The token issued for generation 1 stays revoked.
    assert!(!token_is_valid(&mut scenario, NODE_ADDR));
    scenario.end();
}

#[test]
fun withdraw_after_full_slash_pays_a_zero_coin() {
    let mut scenario = setup();
    // slash_bps 10_000 (100%), lockup 0.
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut pool = scenario.take_shared<StakingPool>();
    staking::set_config(&cap, &mut pool, 100, 1_000, 10_000, 0, 10_000);
    ts::return_shared(pool);
    scenario.return_to_sender(cap);
    stake_node_10k(&mut scenario);
    slash_with(&mut scenario, NODE_ADDR, REASON, SIG_G1_N0_E0);

    scenario.next_tx(NODE_ADDR);
    let mut pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_amount(NODE_ADDR) == 0);
    staking::withdraw(&mut pool, scenario.ctx());
    ts::return_shared(pool);

    scenario.next_tx(NODE_ADDR);
    let payout = scenario.take_from_sender<Coin<SUI>>();
    assert!(payout.value() == 0);
    payout.burn_for_testing();
    let pool = scenario.take_shared<StakingPool>();
    assert!(pool.stake_status(NODE_ADDR) == 255);
    assert!(pool.total_staked() == 0);
    assert!(pool.slashed_balance() == 10_000);
    ts::return_shared(pool);
    scenario.end();
}
