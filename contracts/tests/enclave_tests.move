#[test_only]
module k3s_daas::enclave_tests;

use k3s_daas::enclave::{Self, Enclave, EnclaveConfig};
use k3s_daas::staking::{Self, AdminCap};
use std::string::String;
use sui::clock;
use sui::nitro_attestation;
use sui::test_scenario::{Self as ts, Scenario};

const ADMIN: address = @0xAD;
const OPERATOR: address = @0x0BE2;

// Same vectors as slash_tests.move (contracts/scripts/gen_test_vectors.py).
const ENCLAVE_PK: vector<u8> = x"01587362fbad6081caa0b4be42f01a5b8c6fda02cf8fbd16e3b4445876132371";
const TIMESTAMP_MS: u64 = 1_700_000_000_000;
const NODE_ADDR: address = @0xB0B;
// SlashReport { NODE_ADDR, "worker-1", generation 1, nonce 0, "missed heartbeats", epoch 0 }.
const MSG_EPOCH_0: vector<u8> =
    x"010068e5cf8b0100000000000000000000000000000000000000000000000000000000000000000b0b08776f726b65722d3101000000000000000000000000000000116d697373656420686561727462656174730000000000000000";
const SIG_EPOCH_0: vector<u8> =
    x"59ea889caf35f17859a6d510e740eb7d37b0f2c7bfc4198e5d882e68bfb9b1e757a4513be599ebd745378346ed340b1fe822107532de159023522113e9757408";
// StateAnchor { config_id: dummy_config_id(), revision 42 } with intent 2 at TIMESTAMP_MS.
const ANCHOR_MSG: vector<u8> =
    x"020068e5cf8b01000000000000000000000000000000000000000000000000000000000000000c0f162a00000000000000";
const ANCHOR_SIG: vector<u8> =
    x"56a1d20e6ad4f0a753b64711e2f95cab5889d500be220912e9f4f4f38ee684b01122bcb538e850860d33c0e5de49c8310da8f9ca48516ec06e48a7114ef2e00b";

// A real AWS Nitro attestation document (us-east-1, 4492 bytes) from the public MystenLabs/nautilus
// weather example (shared/fixtures/nitro/nautilus-weather.att.hex); valid at clock time
// 1744684007462 ms. Its PCR0 = PCR1 = NAUTILUS_PCR01, PCR2 = NAUTILUS_PCR2 and its public_key is the
// enclave's Ed25519 key NAUTILUS_PK.
const NAUTILUS_ATTESTATION: vector<u8> = x"8444a1013822a0591120a9696d6f64756c655f69647827692d30366534623938633635343966663830332d656e633031393633373362313935666237323366646967657374665348413338346974696d657374616d701b000001963743f8f06470637273b0005830cbe1afb6ed0ff89f10295af0b802247ec5670da8f886e71a4226373b032c322f4e42c9c98288e7211682b258684505a2015830cbe1afb6ed0ff89f10295af0b802247ec5670da8f886e71a4226373b032c322f4e42c9c98288e7211682b258684505a202583021b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a0358309af4960cd10ff0ddb81dc6660d16bf92165923d7ce3cbc53b9e42257424049b55bf459ca68ba632f39ff510064293c5f045830f3e18816e8d0ba69088d034522e742f0e1909ab34d5e83a1f579ffb43c58f0f0f35d64401efc9426097565d0506a8a5f0558300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000658300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000758300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000858300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000958300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000a58300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000b58300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000c58300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000d58300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000e58300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000f58300000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006b636572746966696361746559027f3082027b30820201a00302010202100196373b195fb7230000000067fdc1ce300a06082a8648ce3d04030330818e310b30090603550406130255533113301106035504080c0a57617368696e67746f6e3110300e06035504070c0753656174746c65310f300d060355040a0c06416d617a6f6e310c300a060355040b0c034157533139303706035504030c30692d30366534623938633635343966663830332e75732d656173742d312e6177732e6e6974726f2d656e636c61766573301e170d3235303431353032313734375a170d3235303431353035313735305a308193310b30090603550406130255533113301106035504080c0a57617368696e67746f6e3110300e06035504070c0753656174746c65310f300d060355040a0c06416d617a6f6e310c300a060355040b0c03415753313e303c06035504030c35692d30366534623938633635343966663830332d656e63303139363337336231393566623732332e75732d656173742d312e6177733076301006072a8648ce3d020106052b8104002203620004490136a3059279a6f8632e540e52ed40f92f891fedf5bdfbbddc3ec066bdbe0f45e0c3e8b07e689a8c3ad57f940181b8a7d8940772290efc58e56d1a9fcc50a969e55ec546e325c09d22c9eb1ed581dd00c70e184368b2330e7ef4b94d3f3833a31d301b300c0603551d130101ff04023000300b0603551d0f0404030206c0300a06082a8648ce3d0403030368003065023100d6d67e427ae4d86ba2f9d7848aba398d89271decf60d772fb8f68a95e01aedfdfa1dc46d0e7c65d42c8328af205cfc02023037bdff62ac37852595143477c8cdf43937c4b56e7165256017c9aa6083cbe6e99365cf38c3984e2e7450d1578293f3c668636162756e646c65845902153082021130820196a003020102021100f93175681b90afe11d46ccb4e4e7f856300a06082a8648ce3d0403033049310b3009060355040613025553310f300d060355040a0c06416d617a6f6e310c300a060355040b0c03415753311b301906035504030c126177732e6e6974726f2d656e636c61766573301e170d3139313032383133323830355a170d3439313032383134323830355a3049310b3009060355040613025553310f300d060355040a0c06416d617a6f6e310c300a060355040b0c03415753311b301906035504030c126177732e6e6974726f2d656e636c617665733076301006072a8648ce3d020106052b8104002203620004fc0254eba608c1f36870e29ada90be46383292736e894bfff672d989444b5051e534a4b1f6dbe3c0bc581a32b7b176070ede12d69a3fea211b66e752cf7dd1dd095f6f1370f4170843d9dc100121e4cf63012809664487c9796284304dc53ff4a3423040300f0603551d130101ff040530030101ff301d0603551d0e041604149025b50dd90547e796c396fa729dcf99a9df4b96300e0603551d0f0101ff040403020186300a06082a8648ce3d0403030369003066023100a37f2f91a1c9bd5ee7b8627c1698d255038e1f0343f95b63a9628c3d39809545a11ebcbf2e3b55d8aeee71b4c3d6adf3023100a2f39b1605b27028a5dd4ba069b5016e65b4fbde8fe0061d6a53197f9cdaf5d943bc61fc2beb03cb6fee8d2302f3dff65902c2308202be30820245a003020102021100aca2293d4cf500edd86a7bd187ba1338300a06082a8648ce3d0403033049310b3009060355040613025553310f300d060355040a0c06416d617a6f6e310c300a060355040b0c03415753311b301906035504030c126177732e6e6974726f2d656e636c61766573301e170d3235303431313136333235355a170d3235303530313137333235355a3064310b3009060355040613025553310f300d060355040a0c06416d617a6f6e310c300a060355040b0c034157533136303406035504030c2d356139363331373264336535616338622e75732d656173742d312e6177732e6e6974726f2d656e636c617665733076301006072a8648ce3d020106052b810400220362000490c21b3f525af903e794663217497520278d2139f1d1a0b20eb8ff5355c8aed6ac269cea960f70493d0a4133b6cba128c820e80f40864bc032ac9b818e45c587f53d07eafc78fb530b2a1869858e55ef33c8e61e2dc6f370a308ad65d94ed1eea381d53081d230120603551d130101ff040830060101ff020102301f0603551d230418301680149025b50dd90547e796c396fa729dcf99a9df4b96301d0603551d0e04160414add2c2173808b510358d217b3b86fb8f1ad6b173300e0603551d0f0101ff040403020186306c0603551d1f046530633061a05fa05d865b687474703a2f2f6177732d6e6974726f2d656e636c617665732d63726c2e73332e616d617a6f6e6177732e636f6d2f63726c2f61623439363063632d376436332d343262642d396539662d3539333338636236376638342e63726c300a06082a8648ce3d040303036700306402300249f3400cd372979e8b38574f68abb0c09985ebba87d6ff7ed39565b5d60cf1219e5148ac25ec631730542aebd5c5810230615675a1d4841c819082db134b1717eb4b6676c812f09130b1cfe7a9f62a02a072b5c336425a14fbbd1d80d74b356b85590319308203153082029ba003020102021100969362d18653a5d07019712d46af35ca300a06082a8648ce3d0403033064310b3009060355040613025553310f300d060355040a0c06416d617a6f6e310c300a060355040b0c034157533136303406035504030c2d356139363331373264336535616338622e75732d656173742d312e6177732e6e6974726f2d656e636c61766573301e170d3235303431353030323331395a170d3235303432303138323331395a308189313c303a06035504030c33613833653764313231306434313335632e7a6f6e616c2e75732d656173742d312e6177732e6e6974726f2d656e636c61766573310c300a060355040b0c03415753310f300d060355040a0c06416d617a6f6e310b3009060355040613025553310b300906035504080c0257413110300e06035504070c0753656174746c653076301006072a8648ce3d020106052b81040022036200048d5a8ecd047ea37a3fb8d9e94294ae4bea46c9750e50fe1689ba34e522aa77e22a873d3369e89e7e5672ced6337ae0efbfb8a31ac3bba48b522798b2b86b033adac2e253fc2f048d7c26b9bc7c3c306451a90650305504ba3bd869c9d382027ba381ea3081e730120603551d130101ff040830060101ff020101301f0603551d23041830168014add2c2173808b510358d217b3b86fb8f1ad6b173301d0603551d0e04160414f5273e07c37b153782a854f34bf8941eb280ef6e300e0603551d0f0101ff0404030201863081800603551d1f047930773075a073a071866f687474703a2f2f63726c2d75732d656173742d312d6177732d6e6974726f2d656e636c617665732e73332e75732d656173742d312e616d617a6f6e6177732e636f6d2f63726c2f66326463623035372d333434352d343963642d626131382d3733396663666466353261632e63726c300a06082a8648ce3d0403030368003065023100a446d4c6ebe8dc4ac3196b5a7488d470128a69c843db43ce55e139cd95a1f977074066d9f23e45530b6850217b57cdf402305f358040394462762ca1094b9302a4e1e51cf61dde52a048d1de90d25a239574e0f615659945b64264b997bb5a0ccb335902c2308202be30820245a003020102021500d2582b5520ba5712e796e4f758e577ee985f5954300a06082a8648ce3d040303308189313c303a06035504030c33613833653764313231306434313335632e7a6f6e616c2e75732d656173742d312e6177732e6e6974726f2d656e636c61766573310c300a060355040b0c03415753310f300d060355040a0c06416d617a6f6e310b3009060355040613025553310b300906035504080c0257413110300e06035504070c0753656174746c65301e170d3235303431353031343333385a170d3235303431363031343333385a30818e310b30090603550406130255533113301106035504080c0a57617368696e67746f6e3110300e06035504070c0753656174746c65310f300d060355040a0c06416d617a6f6e310c300a060355040b0c034157533139303706035504030c30692d30366534623938633635343966663830332e75732d656173742d312e6177732e6e6974726f2d656e636c617665733076301006072a8648ce3d020106052b81040022036200049f84fd231f0332361556d06121290b042aba0fc8119cf62b530a34fde2ba0a5213eaf4bcd79cd240492f51702315beebedc7c29d42a72912e0add5975ff35fe8ac7b9167ad19b2984114aa5c6bc466a20d63e5f2bb5d7dc4a9e7a6400545d95fa366306430120603551d130101ff040830060101ff020100300e0603551d0f0101ff040403020204301d0603551d0e0416041431b3f2a9c91d2fbfe1230f702391caeec8567e0d301f0603551d23041830168014f5273e07c37b153782a854f34bf8941eb280ef6e300a06082a8648ce3d040303036700306402300299d6641d327fd9b5986cbfccf00ea02d95eeb7ee6f4193fd4ba28a17a329f67ba20e551ceb3b1c739df61308799d3102302ab166a5394bb64e6e6149da899acde27417ba137083bc4b6f156cde3deea56cde0bf57186c80bd6dafdeb898aeb71566a7075626c69635f6b65795820e8e62201dbe293b703c759f653107acbc2c911fa1d2e66f2c747bec95971a2af69757365725f64617461f6656e6f6e6365f65860b8397a987eb8327f75b4ab764c74dd068cbc107faa518b5d97bc074cf4ea1e8cb5cbaa0446b54d42ac55ad9c84094cedcddaa3b74b4a3b8f681a00cf311232dd663f8e3c9c67b7926e7b9dbdf697e1358e3b380a8e76d088db535d607d96b8a1";
const NAUTILUS_CLOCK_MS: u64 = 1744684007462;
const NAUTILUS_PCR01: vector<u8> =
    x"cbe1afb6ed0ff89f10295af0b802247ec5670da8f886e71a4226373b032c322f4e42c9c98288e7211682b258684505a2";
const NAUTILUS_PCR2: vector<u8> =
    x"21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a";
const NAUTILUS_PK: vector<u8> = x"e8e62201dbe293b703c759f653107acbc2c911fa1d2e66f2c747bec95971a2af";
// The weather example's enclave signature over
// BCS(IntentMessage { intent: 0, timestamp_ms: 1744683300000, data: { "San Francisco", 13 } }).
const NAUTILUS_WEATHER_SIG: vector<u8> =
    x"77b6d8be225440d00f3d6eb52e91076a8927cebfb520e58c19daf31ecf06b3798ec3d3ce9630a9eceee46d24f057794a60dd781657cb06d952269cfc5ae19500";

/// Same field layout as the Nautilus weather example's response payload.
public struct WeatherResponse has copy, drop {
    location: String,
    temperature: u64,
}

/// A config id for enclaves made without a config (signature tests only).
fun dummy_config_id(): ID { object::id_from_address(@0xC0F16) }

fun setup(): Scenario {
    let mut scenario = ts::begin(ADMIN);
    staking::init_for_testing(scenario.ctx());
    scenario
}

fun create_config_as_admin(
    scenario: &mut Scenario,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
) {
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let name = b"k3s-daas master".to_string();
    staking::create_enclave_config(&cap, name, pcr0, pcr1, pcr2, scenario.ctx());
    scenario.return_to_sender(cap);
}

// === IntentMessage / verify_signature ===

#[test]
fun intent_message_bcs_layout() {
    let reason = b"missed heartbeats".to_string();
    let report = staking::new_slash_report_for_testing(NODE_ADDR, b"worker-1".to_string(), 1, 0, reason, 0);
    assert!(enclave::intent_message_bytes(1, TIMESTAMP_MS, report) == MSG_EPOCH_0);
}

#[test]
fun verify_signature_accepts_only_the_signed_message() {
    let mut scenario = ts::begin(OPERATOR);
    enclave::create_enclave_for_testing(ENCLAVE_PK, dummy_config_id(), 0, scenario.ctx());
    scenario.next_tx(OPERATOR);
    let enclave = scenario.take_shared<Enclave>();
    assert!(*enclave.pk() == ENCLAVE_PK);
    assert!(enclave.owner() == OPERATOR);
    assert!(enclave.config_id() == dummy_config_id());
    let sig = SIG_EPOCH_0;
    let reason = b"missed heartbeats".to_string();
    let report = staking::new_slash_report_for_testing(NODE_ADDR, b"worker-1".to_string(), 1, 0, reason, 0);
    assert!(enclave.verify_signature(1, TIMESTAMP_MS, report, &sig));
    // Wrong intent scope, timestamp or payload: refused.
    assert!(!enclave.verify_signature(0, TIMESTAMP_MS, report, &sig));
    assert!(!enclave.verify_signature(1, TIMESTAMP_MS + 1, report, &sig));
    let other = staking::new_slash_report_for_testing(NODE_ADDR, b"worker-1".to_string(), 1, 0, reason, 1);
    assert!(!enclave.verify_signature(1, TIMESTAMP_MS, other, &sig));
    // The same report for another generation or nonce: refused.
    let other = staking::new_slash_report_for_testing(NODE_ADDR, b"worker-1".to_string(), 2, 0, reason, 0);
    assert!(!enclave.verify_signature(1, TIMESTAMP_MS, other, &sig));
    let other = staking::new_slash_report_for_testing(NODE_ADDR, b"worker-1".to_string(), 1, 1, reason, 0);
    assert!(!enclave.verify_signature(1, TIMESTAMP_MS, other, &sig));
    ts::return_shared(enclave);
    scenario.end();
}

#[test]
fun verify_signature_matches_nautilus_layout() {
    // An enclave signature produced by the Nautilus server verifies with our IntentMessage layout.
    let mut scenario = ts::begin(OPERATOR);
    enclave::create_enclave_for_testing(NAUTILUS_PK, dummy_config_id(), 0, scenario.ctx());
    scenario.next_tx(OPERATOR);
    let enclave = scenario.take_shared<Enclave>();
    let sig = NAUTILUS_WEATHER_SIG;
    let payload = WeatherResponse { location: b"San Francisco".to_string(), temperature: 13 };
    assert!(enclave.verify_signature(0, 1744683300000, payload, &sig));
    ts::return_shared(enclave);
    scenario.end();
}

// === EnclaveConfig ===

#[test]
fun create_and_update_enclave_config() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"00", x"01", x"02");
    scenario.next_tx(ADMIN);
    let mut config = scenario.take_shared<EnclaveConfig>();
    assert!(config.config_name() == b"k3s-daas master".to_string());
    assert!(config.config_version_of() == 0);
    let (pcr0, pcr1, pcr2) = config.config_pcrs();
    assert!(pcr0 == x"00" && pcr1 == x"01" && pcr2 == x"02");

    let cap = scenario.take_from_sender<AdminCap>();
    staking::update_pcrs(&cap, &mut config, x"10", x"11", x"12");
    assert!(config.config_version_of() == 1);
    let (pcr0, pcr1, pcr2) = config.config_pcrs();
    assert!(pcr0 == x"10" && pcr1 == x"11" && pcr2 == x"12");
    scenario.return_to_sender(cap);
    ts::return_shared(config);
    scenario.end();
}

// === register_enclave with a real Nitro attestation ===

#[test]
fun register_enclave_from_nitro_attestation() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, NAUTILUS_PCR01, NAUTILUS_PCR01, NAUTILUS_PCR2);
    // OPERATOR loads the attestation (as `load_nitro_attestation` does in a PTB) and registers it.
    // (`entry` functions are callable from #[test] functions.)
    scenario.next_tx(OPERATOR);
    let config = scenario.take_shared<EnclaveConfig>();
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(NAUTILUS_CLOCK_MS);
    let document = nitro_attestation::load_nitro_attestation(NAUTILUS_ATTESTATION, &clock);
    enclave::register_enclave(&config, document, scenario.ctx());
    clock.destroy_for_testing();
    ts::return_shared(config);

    scenario.next_tx(ADMIN);
    let enclave = scenario.take_shared<Enclave>();
    let mut config = scenario.take_shared<EnclaveConfig>();
    assert!(*enclave.pk() == NAUTILUS_PK);
    assert!(enclave.config_version() == 0);
    assert!(enclave.owner() == OPERATOR);
    assert!(enclave.config_id() == object::id(&config));
    assert!(enclave.is_current(&config));

    // New PCRs: the enclave registered under version 0 is stale.
    let cap = scenario.take_from_sender<AdminCap>();
    staking::update_pcrs(&cap, &mut config, x"aa", x"bb", x"cc");
    assert!(!enclave.is_current(&config));
    scenario.return_to_sender(cap);
    ts::return_shared(config);
    ts::return_shared(enclave);
    scenario.end();
}

#[test]
fun is_current_needs_same_config_and_version() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"00", x"01", x"02");
    let effects = scenario.next_tx(OPERATOR);
    let shared = effects.shared();
    let first_id = *shared.borrow(0);
    let first = scenario.take_shared_by_id<EnclaveConfig>(first_id);
    enclave::register_enclave_for_testing(&first, ENCLAVE_PK, scenario.ctx());
    ts::return_shared(first);
    // A second config with the same PCRs and version.
    create_config_as_admin(&mut scenario, x"00", x"01", x"02");
    let effects = scenario.next_tx(ADMIN);
    let shared = effects.shared();
    let second_id = *shared.borrow(0);
    let enclave = scenario.take_shared<Enclave>();
    let mut first = scenario.take_shared_by_id<EnclaveConfig>(first_id);
    let second = scenario.take_shared_by_id<EnclaveConfig>(second_id);
    assert!(enclave.config_id() == first_id);
    assert!(enclave.config_version() == 0);
    assert!(enclave.is_current(&first));
    assert!(!enclave.is_current(&second));
    let cap = scenario.take_from_sender<AdminCap>();
    staking::update_pcrs(&cap, &mut first, x"00", x"01", x"02");
    assert!(!enclave.is_current(&first));
    scenario.return_to_sender(cap);
    ts::return_shared(second);
    ts::return_shared(first);
    ts::return_shared(enclave);
    scenario.end();
}

#[test, expected_failure(abort_code = enclave::EInvalidPCRs)]
fun register_enclave_with_other_pcrs_aborts() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, NAUTILUS_PCR01, NAUTILUS_PCR01, NAUTILUS_PCR01);
    // OPERATOR loads the attestation (as `load_nitro_attestation` does in a PTB) and registers it.
    // (`entry` functions are callable from #[test] functions.)
    scenario.next_tx(OPERATOR);
    let config = scenario.take_shared<EnclaveConfig>();
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(NAUTILUS_CLOCK_MS);
    let document = nitro_attestation::load_nitro_attestation(NAUTILUS_ATTESTATION, &clock);
    enclave::register_enclave(&config, document, scenario.ctx());
    clock.destroy_for_testing();
    ts::return_shared(config);
    scenario.end();
}

// === State anchors ===
// (anchor_state's accepting path and ERevisionRollback need a signature over the id of a config
// created in the scenario, which cannot be produced offline; the Rust port's tests cover them with
// real signatures. Here: the signed layout, and the refusals that come before the revision check.)

#[test]
fun state_anchor_bcs_layout_and_signature() {
    let anchor = enclave::new_state_anchor_for_testing(dummy_config_id(), 42);
    assert!(enclave::intent_message_bytes(2, TIMESTAMP_MS, anchor) == ANCHOR_MSG);
    let mut scenario = ts::begin(OPERATOR);
    enclave::create_enclave_for_testing(ENCLAVE_PK, dummy_config_id(), 0, scenario.ctx());
    scenario.next_tx(OPERATOR);
    let enclave = scenario.take_shared<Enclave>();
    assert!(enclave.verify_signature(2, TIMESTAMP_MS, anchor, &ANCHOR_SIG));
    // Not as a slashing report (intent 1), not for another revision or config.
    assert!(!enclave.verify_signature(1, TIMESTAMP_MS, anchor, &ANCHOR_SIG));
    let other = enclave::new_state_anchor_for_testing(dummy_config_id(), 43);
    assert!(!enclave.verify_signature(2, TIMESTAMP_MS, other, &ANCHOR_SIG));
    let other = enclave::new_state_anchor_for_testing(object::id_from_address(@0xC0F17), 42);
    assert!(!enclave.verify_signature(2, TIMESTAMP_MS, other, &ANCHOR_SIG));
    ts::return_shared(enclave);
    scenario.end();
}

#[test]
fun new_config_has_no_anchor() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"00", x"01", x"02");
    scenario.next_tx(ADMIN);
    let config = scenario.take_shared<EnclaveConfig>();
    assert!(config.anchored_revision() == 0);
    assert!(config.anchored_at_ms() == 0);
    ts::return_shared(config);
    scenario.end();
}

#[test, expected_failure(abort_code = enclave::EBadAnchor)]
fun anchor_state_with_bad_signature_aborts() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"00", x"01", x"02");
    scenario.next_tx(OPERATOR);
    let mut config = scenario.take_shared<EnclaveConfig>();
    enclave::register_enclave_for_testing(&config, ENCLAVE_PK, scenario.ctx());
    scenario.next_tx(OPERATOR);
    let enclave = scenario.take_shared<Enclave>();
    // Signed for the dummy config id, not this config.
    enclave::anchor_state(&mut config, &enclave, 42, TIMESTAMP_MS, ANCHOR_SIG);
    ts::return_shared(enclave);
    ts::return_shared(config);
    scenario.end();
}

#[test, expected_failure(abort_code = enclave::EStaleEnclave)]
fun anchor_state_with_stale_enclave_aborts() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"00", x"01", x"02");
    scenario.next_tx(OPERATOR);
    let mut config = scenario.take_shared<EnclaveConfig>();
    enclave::register_enclave_for_testing(&config, ENCLAVE_PK, scenario.ctx());
    ts::return_shared(config);
    // New PCRs: the enclave registered under version 0 is stale.
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let mut config = scenario.take_shared<EnclaveConfig>();
    staking::update_pcrs(&cap, &mut config, x"10", x"11", x"12");
    scenario.return_to_sender(cap);
    scenario.next_tx(OPERATOR);
    let enclave = scenario.take_shared<Enclave>();
    enclave::anchor_state(&mut config, &enclave, 42, TIMESTAMP_MS, ANCHOR_SIG);
    ts::return_shared(enclave);
    ts::return_shared(config);
    scenario.end();
}

// === Platforms ===

#[test]
fun nitro_registration_records_platform_nitro() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, NAUTILUS_PCR01, NAUTILUS_PCR01, NAUTILUS_PCR2);
    scenario.next_tx(OPERATOR);
    let config = scenario.take_shared<EnclaveConfig>();
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(NAUTILUS_CLOCK_MS);
    let document = nitro_attestation::load_nitro_attestation(NAUTILUS_ATTESTATION, &clock);
    enclave::register_enclave(&config, document, scenario.ctx());
    clock.destroy_for_testing();
    ts::return_shared(config);
    scenario.next_tx(OPERATOR);
    let enclave = scenario.take_shared<Enclave>();
    assert!(enclave.platform() == enclave::platform_nitro());
    assert!(enclave::platform_nitro() == 0);
    ts::return_shared(enclave);
    scenario.end();
}

#[test]
fun admin_registers_sev_snp_and_tdx_enclaves() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"01", x"02", x"03");
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let config = scenario.take_shared<EnclaveConfig>();
    let snp = staking::register_attested_enclave(
        &cap,
        &config,
        enclave::platform_sev_snp(),
        ENCLAVE_PK,
        scenario.ctx(),
    );
    let tdx = staking::register_attested_enclave(
        &cap,
        &config,
        enclave::platform_tdx(),
        ENCLAVE_PK,
        scenario.ctx(),
    );
    scenario.return_to_sender(cap);
    ts::return_shared(config);

    scenario.next_tx(ADMIN);
    let config = scenario.take_shared<EnclaveConfig>();
    let a = scenario.take_shared_by_id<Enclave>(snp);
    let b = scenario.take_shared_by_id<Enclave>(tdx);
    assert!(a.platform() == 1 && b.platform() == 2);
    assert!(*a.pk() == ENCLAVE_PK && a.owner() == ADMIN);
    assert!(a.is_current(&config) && b.is_current(&config));
    ts::return_shared(a);
    ts::return_shared(b);
    ts::return_shared(config);
    scenario.end();
}

#[test, expected_failure(abort_code = enclave::EInvalidPlatform)]
fun register_attested_enclave_with_unknown_platform_aborts() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"01", x"02", x"03");
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let config = scenario.take_shared<EnclaveConfig>();
    staking::register_attested_enclave(&cap, &config, 3, ENCLAVE_PK, scenario.ctx());
    abort 0
}

#[test, expected_failure(abort_code = enclave::EInvalidPK)]
fun register_attested_enclave_with_bad_key_aborts() {
    let mut scenario = setup();
    create_config_as_admin(&mut scenario, x"01", x"02", x"03");
    scenario.next_tx(ADMIN);
    let cap = scenario.take_from_sender<AdminCap>();
    let config = scenario.take_shared<EnclaveConfig>();
    staking::register_attested_enclave(&cap, &config, 1, x"0102", scenario.ctx());
    abort 0
}
