/// Attested enclaves (the Nautilus pattern) for K3s-DaaS.
///
/// The K3s-DaaS master runs inside an AWS Nitro enclave. An `EnclaveConfig` pins the expected
/// PCR0/PCR1/PCR2 measurements of the enclave image; anybody who holds a fresh Nitro attestation
/// document whose PCRs match a config can register an `Enclave`, which records the enclave's
/// ephemeral Ed25519 public key (the attestation's `public_key` field). Messages signed with that
/// key (slashing reports, see `staking::slash`) are then trusted on chain through
/// `verify_signature`.
///
/// Registering on Sui (one programmable transaction):
///   0: MoveCall 0x2::nitro_attestation::load_nitro_attestation(Pure vector<u8> document, Shared Clock 0x6)
///   1: MoveCall <pkg>::enclave::register_enclave(Shared EnclaveConfig, Result(0))
/// `load_nitro_attestation` checks the COSE_Sign1/ES384 signature and the certificate chain up to
/// the AWS Nitro root at the clock's time.
///
/// There is deliberately NO `register_enclave_raw` in Move: that variant (raw document bytes in,
/// native verification inside the function) exists only in the K3s-DaaS embedded ledger, which has
/// no `NitroAttestationDocument` value to pass between PTB commands.
///
/// Admin entry points: `create_enclave_config` and `update_pcrs` take the `staking::AdminCap`.
/// Because `staking::slash` needs this module (`Enclave`, `EnclaveConfig`, `verify_signature`),
/// this module cannot depend on `staking` (Move forbids cyclic module dependencies), so those two
/// entry functions are defined in `staking` (`staking::create_enclave_config`,
/// `staking::update_pcrs`, as SPEC.md specifies) and call the package-internal `new_config` /
/// `set_pcrs` below.
///
/// An `Enclave` remembers the id and version of the config it was registered against; `slash`
/// takes that config and refuses a stale enclave (`is_current` false) with `staking::EBadReport`.
module k3s_daas::enclave;

use std::string::String;
use sui::bcs;
use sui::ed25519;
use sui::event;
use sui::nitro_attestation::NitroAttestationDocument;

// === Errors ===

/// PCR0, PCR1 or PCR2 of the attestation document is missing or differs from the config.
const EInvalidPCRs: u64 = 201;
/// The attestation document carries no public key, or it is not a 32-byte Ed25519 key.
const EInvalidPK: u64 = 202;
/// `anchor_state`: the enclave is not current for the config (other config, or PCRs updated).
const EStaleEnclave: u64 = 203;
/// `anchor_state`: the signature is not the enclave's over the state anchor.
const EBadAnchor: u64 = 204;
/// `anchor_state`: the revision is below the anchored revision (a rolled-back store).
const ERevisionRollback: u64 = 205;
/// `register_attested`: the platform code is not `PLATFORM_NITRO`, `PLATFORM_SEV_SNP` or `PLATFORM_TDX`.
const EInvalidPlatform: u64 = 206;

// === TEE platforms (`Enclave.platform`) ===

/// AWS Nitro Enclaves: verified on chain by `sui::nitro_attestation` (`register_enclave`).
const PLATFORM_NITRO: u8 = 0;
/// AMD SEV-SNP: config pcr0 = MEASUREMENT. Sui has no SNP verifier: registered by the admin after
/// off-chain verification (`staking::register_attested_enclave`).
const PLATFORM_SEV_SNP: u8 = 1;
/// Intel TDX: config pcr0 = MRTD, pcr1 = RTMR0, pcr2 = RTMR1. Registered like SEV-SNP.
const PLATFORM_TDX: u8 = 2;

/// Intent scope of state anchors (slashing reports use 1, see `staking`).
const STATE_ANCHOR_INTENT: u8 = 2;

const ED25519_PK_LENGTH: u64 = 32;

// === Objects ===

/// Expected measurements of the K3s-DaaS master enclave image (shared).
public struct EnclaveConfig has key {
    id: UID,
    name: String,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
    /// Starts at 0, +1 on every `update_pcrs`. Enclaves registered under an older version are stale.
    version: u64,
    /// Highest revision of the cluster's sealed store anchored by a current enclave
    /// (`anchor_state`); 0 if none. A master refuses to start on a store below it.
    anchored_revision: u64,
    /// Enclave timestamp of the last anchor (ms since the Unix epoch), 0 if none.
    anchored_at_ms: u64,
}

/// A registered enclave instance (shared).
public struct Enclave has key {
    id: UID,
    /// Ed25519 public key, 32 bytes, taken from the attestation document.
    pk: vector<u8>,
    /// `EnclaveConfig.version` at registration time.
    config_version: u64,
    /// Sender of the registering transaction.
    owner: address,
    /// Id of the `EnclaveConfig` the enclave was registered against.
    config_id: ID,
    /// TEE platform: `PLATFORM_NITRO` (0), `PLATFORM_SEV_SNP` (1) or `PLATFORM_TDX` (2).
    platform: u8,
}

/// What the enclave signs: BCS(IntentMessage { intent, timestamp_ms, data }) — the Nautilus layout
/// (u8, u64 little endian, then the BCS of `data`).
public struct IntentMessage<T: drop> has copy, drop {
    intent: u8,
    timestamp_ms: u64,
    data: T,
}

/// What the enclave signs to anchor its store revision (intent `STATE_ANCHOR_INTENT`).
/// BCS: 32-byte id, u64 LE.
public struct StateAnchor has copy, drop {
    config_id: ID,
    revision: u64,
}

// === Events ===

public struct EnclaveRegistered has copy, drop {
    enclave_id: ID,
    pk: vector<u8>,
    config_version: u64,
}

public struct StateAnchored has copy, drop {
    config_id: ID,
    revision: u64,
    timestamp_ms: u64,
}

// === Config management (called by staking::create_enclave_config / staking::update_pcrs) ===

/// Creates and shares an `EnclaveConfig` with version 0. Gated by `staking::AdminCap` in the caller.
public(package) fun new_config(
    name: String,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
    ctx: &mut TxContext,
) {
    transfer::share_object(EnclaveConfig {
        id: object::new(ctx),
        name,
        pcr0,
        pcr1,
        pcr2,
        version: 0,
        anchored_revision: 0,
        anchored_at_ms: 0,
    });
}

/// Replaces the expected PCRs and bumps the version (every enclave registered before becomes stale).
public(package) fun set_pcrs(
    config: &mut EnclaveConfig,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
) {
    config.pcr0 = pcr0;
    config.pcr1 = pcr1;
    config.pcr2 = pcr2;
    config.version = config.version + 1;
}

// === Registration ===

/// Registers an enclave from a verified Nitro attestation document (produced in the same PTB by
/// `sui::nitro_attestation::load_nitro_attestation`). Shares the new `Enclave`.
/// Aborts with `EInvalidPCRs` if PCR0..2 differ from the config, `EInvalidPK` if the document has
/// no 32-byte public key.
public fun register_enclave(
    config: &EnclaveConfig,
    document: NitroAttestationDocument,
    ctx: &mut TxContext,
) {
    assert!(
        pcr_of(&document, 0) == option::some(config.pcr0)
            && pcr_of(&document, 1) == option::some(config.pcr1)
            && pcr_of(&document, 2) == option::some(config.pcr2),
        EInvalidPCRs,
    );
    let pk_opt = document.public_key();
    assert!(pk_opt.is_some(), EInvalidPK);
    let pk = *pk_opt.borrow();
    assert!(pk.length() == ED25519_PK_LENGTH, EInvalidPK);

    share_enclave(config, pk, PLATFORM_NITRO, ctx);
}

/// Registers an enclave of `platform` whose evidence the caller verified off chain (Sui has no
/// SEV-SNP / TDX verifier). Gated by `staking::AdminCap` in the caller
/// (`staking::register_attested_enclave`). Aborts with `EInvalidPlatform` for an unknown code,
/// `EInvalidPK` unless `pk` is 32 bytes. Returns the new enclave's id.
public(package) fun register_attested(
    config: &EnclaveConfig,
    platform: u8,
    pk: vector<u8>,
    ctx: &mut TxContext,
): ID {
    assert!(platform <= PLATFORM_TDX, EInvalidPlatform);
    assert!(pk.length() == ED25519_PK_LENGTH, EInvalidPK);
    share_enclave(config, pk, platform, ctx)
}

fun share_enclave(config: &EnclaveConfig, pk: vector<u8>, platform: u8, ctx: &mut TxContext): ID {
    let enclave = Enclave {
        id: object::new(ctx),
        pk,
        config_version: config.version,
        owner: ctx.sender(),
        config_id: object::id(config),
        platform,
    };
    let enclave_id = object::id(&enclave);
    event::emit(EnclaveRegistered {
        enclave_id,
        pk,
        config_version: config.version,
    });
    transfer::share_object(enclave);
    enclave_id
}

/// The value of PCR `index` in the document, if present.
fun pcr_of(document: &NitroAttestationDocument, index: u8): Option<vector<u8>> {
    let entries = document.pcrs();
    let mut i = 0;
    while (i < entries.length()) {
        let entry = entries.borrow(i);
        if (entry.index() == index) return option::some(*entry.value());
        i = i + 1;
    };
    option::none()
}

// === State anchors ===

/// Anchors revision `revision` of the cluster's sealed store on `config` (rollback detection:
/// the host can put back an older sealed store, not an older ledger). `enclave` must be current
/// for `config` (`EStaleEnclave`), `signature` its Ed25519 signature over
/// BCS(IntentMessage { 2, timestamp_ms, StateAnchor { id(config), revision } }) (`EBadAnchor`),
/// and `revision` at least the anchored revision (`ERevisionRollback`; equal is accepted).
public fun anchor_state(
    config: &mut EnclaveConfig,
    enclave: &Enclave,
    revision: u64,
    timestamp_ms: u64,
    signature: vector<u8>,
) {
    assert!(is_current(enclave, config), EStaleEnclave);
    let anchor = StateAnchor { config_id: object::id(config), revision };
    assert!(verify_signature(enclave, STATE_ANCHOR_INTENT, timestamp_ms, anchor, &signature), EBadAnchor);
    assert!(revision >= config.anchored_revision, ERevisionRollback);
    config.anchored_revision = revision;
    config.anchored_at_ms = timestamp_ms;
    event::emit(StateAnchored { config_id: object::id(config), revision, timestamp_ms });
}

// === Signatures ===

/// True iff `signature` is the enclave's Ed25519 signature over
/// BCS(IntentMessage { intent: intent_scope, timestamp_ms, data: payload }).
public fun verify_signature<P: drop>(
    enclave: &Enclave,
    intent_scope: u8,
    timestamp_ms: u64,
    payload: P,
    signature: &vector<u8>,
): bool {
    let intent_message = IntentMessage { intent: intent_scope, timestamp_ms, data: payload };
    let message = bcs::to_bytes(&intent_message);
    ed25519::ed25519_verify(signature, &enclave.pk, &message)
}

// === Reads ===

public fun pk(enclave: &Enclave): &vector<u8> { &enclave.pk }

public fun config_version(enclave: &Enclave): u64 { enclave.config_version }

public fun owner(enclave: &Enclave): address { enclave.owner }

/// Id of the `EnclaveConfig` the enclave was registered against.
public fun config_id(enclave: &Enclave): ID { enclave.config_id }

/// The enclave's TEE platform (0 Nitro, 1 SEV-SNP, 2 TDX).
public fun platform(enclave: &Enclave): u8 { enclave.platform }

public fun platform_nitro(): u8 { PLATFORM_NITRO }

public fun platform_sev_snp(): u8 { PLATFORM_SEV_SNP }

public fun platform_tdx(): u8 { PLATFORM_TDX }

/// True iff the enclave was registered against `config` under its current PCRs
/// (same config object and `enclave.config_version == config.version`).
public fun is_current(enclave: &Enclave, config: &EnclaveConfig): bool {
    enclave.config_id == object::id(config) && enclave.config_version == config.version
}

public fun config_name(config: &EnclaveConfig): String { config.name }

public fun config_version_of(config: &EnclaveConfig): u64 { config.version }

public fun anchored_revision(config: &EnclaveConfig): u64 { config.anchored_revision }

public fun anchored_at_ms(config: &EnclaveConfig): u64 { config.anchored_at_ms }

public fun config_pcrs(config: &EnclaveConfig): (vector<u8>, vector<u8>, vector<u8>) {
    (config.pcr0, config.pcr1, config.pcr2)
}

// === Test helpers ===

/// Shares an `Enclave` with a known raw Ed25519 public key (no attestation), for unit tests.
/// `config_id` / `config_version` are stored as given.
#[test_only]
public fun create_enclave_for_testing(
    pk: vector<u8>,
    config_id: ID,
    config_version: u64,
    ctx: &mut TxContext,
): ID {
    let enclave = Enclave {
        id: object::new(ctx),
        pk,
        config_version,
        owner: ctx.sender(),
        config_id,
        platform: PLATFORM_NITRO,
    };
    let enclave_id = object::id(&enclave);
    transfer::share_object(enclave);
    enclave_id
}

/// Shares an `Enclave` registered against `config` (its id and current version) with a known raw
/// Ed25519 public key, like `register_enclave` minus the attestation, for unit tests.
#[test_only]
public fun register_enclave_for_testing(
    config: &EnclaveConfig,
    pk: vector<u8>,
    ctx: &mut TxContext,
): ID {
    create_enclave_for_testing(pk, object::id(config), config.version, ctx)
}

#[test_only]
public fun new_state_anchor_for_testing(config_id: ID, revision: u64): StateAnchor {
    StateAnchor { config_id, revision }
}

/// The exact bytes `verify_signature` checks the signature against.
#[test_only]
public fun intent_message_bytes<P: drop>(intent: u8, timestamp_ms: u64, payload: P): vector<u8> {
    let intent_message = IntentMessage { intent, timestamp_ms, data: payload };
    bcs::to_bytes(&intent_message)
}
