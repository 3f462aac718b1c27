/// Seal tokens: the on-chain credential a staker presents to the K3s-DaaS master.
///
/// A staker with an Active stake mints a `SealToken` owned by its address. The token holds no
/// secret: the holder proves possession by signing a short-lived credential with the key of
/// `owner` (Sui personal-message signature); the master checks that signature against `owner` and
/// the token with `is_valid`, which also requires the stake to be Active and of the same
/// generation (so slashing, unstaking and re-staking revoke earlier tokens).
///
/// Permissions by role: user -> ["namespace:own"], node -> ["node:self"], admin -> ["cluster-admin"].
/// The master maps them to Kubernetes identities: user -> `daas:user:<address>` limited to namespace
/// `u-<first 16 hex of address>`; node -> `system:node:<node_id>` in group `system:nodes`
/// (NodeRestriction); admin -> group `system:masters`.
module k3s_daas::k8s_gateway;

use k3s_daas::staking::{AdminCap, StakingPool};
use std::string::String;
use sui::event;

// === Errors ===

const ENoActiveStake: u64 = 101;
const ENotOwner: u64 = 102;
const EInvalidTtl: u64 = 103;

// === Constants ===

const ROLE_USER: u8 = 0;
const ROLE_NODE: u8 = 1;
const ROLE_ADMIN: u8 = 2;

const DEFAULT_TOKEN_TTL_EPOCHS: u64 = 30;

// === Objects ===

/// Shared gateway configuration.
public struct Gateway has key {
    id: UID,
    master_endpoint: String,
    token_ttl_epochs: u64,
    tokens_issued: u64,
}

/// Owned by `owner`.
public struct SealToken has key, store {
    id: UID,
    owner: address,
    role: u8,
    node_id: String,
    permissions: vector<String>,
    stake_generation: u64,
    issued_epoch: u64,
    expiry_epoch: u64,
    master_endpoint: String,
}

// === Events ===

public struct SealTokenIssued has copy, drop {
    token_id: ID,
    owner: address,
    role: u8,
    node_id: String,
    expiry_epoch: u64,
}

public struct SealTokenRevoked has copy, drop {
    token_id: ID,
    owner: address,
}

// === Init ===

fun init(ctx: &mut TxContext) {
    transfer::share_object(Gateway {
        id: object::new(ctx),
        master_endpoint: b"".to_string(),
        token_ttl_epochs: DEFAULT_TOKEN_TTL_EPOCHS,
        tokens_issued: 0,
    });
}

// === Entry functions ===

/// Mints a seal token for the sender, who must have an Active stake (`ENoActiveStake`).
#[allow(lint(self_transfer))]
public fun issue_seal_token(gateway: &mut Gateway, pool: &StakingPool, ctx: &mut TxContext) {
    let owner = ctx.sender();
    assert!(pool.is_active(owner), ENoActiveStake);

    let role = pool.stake_role(owner);
    let node_id = pool.stake_node_id(owner);
    let issued_epoch = ctx.epoch();
    let expiry_epoch = issued_epoch + gateway.token_ttl_epochs;
    let token = SealToken {
        id: object::new(ctx),
        owner,
        role,
        node_id,
        permissions: permissions_for(role),
        stake_generation: pool.stake_generation(owner),
        issued_epoch,
        expiry_epoch,
        master_endpoint: gateway.master_endpoint,
    };
    gateway.tokens_issued = gateway.tokens_issued + 1;
    event::emit(SealTokenIssued {
        token_id: object::id(&token),
        owner,
        role,
        node_id,
        expiry_epoch,
    });
    transfer::transfer(token, owner);
}

/// Deletes a seal token; only its owner may do so (`ENotOwner`).
public fun revoke_seal_token(token: SealToken, ctx: &mut TxContext) {
    assert!(ctx.sender() == token.owner, ENotOwner);
    let token_id = object::id(&token);
    let SealToken {
        id,
        owner,
        role: _,
        node_id: _,
        permissions: _,
        stake_generation: _,
        issued_epoch: _,
        expiry_epoch: _,
        master_endpoint: _,
    } = token;
    id.delete();
    event::emit(SealTokenRevoked { token_id, owner });
}

/// Admin: master endpoint written into new tokens and their lifetime in epochs (> 0).
public fun set_gateway(
    _cap: &AdminCap,
    gateway: &mut Gateway,
    master_endpoint: String,
    token_ttl_epochs: u64,
) {
    assert!(token_ttl_epochs > 0, EInvalidTtl);
    gateway.master_endpoint = master_endpoint;
    gateway.token_ttl_epochs = token_ttl_epochs;
}

// === Reads ===

/// epoch <= expiry_epoch and the owner's stake exists, is Active and has the token's generation.
public fun is_valid(token: &SealToken, pool: &StakingPool, ctx: &TxContext): bool {
    ctx.epoch() <= token.expiry_epoch
        && pool.is_active(token.owner)
        && pool.stake_generation(token.owner) == token.stake_generation
}

/// Kubernetes permissions granted to `role` (none for an unknown role).
public fun permissions_for(role: u8): vector<String> {
    if (role == ROLE_USER) vector[b"namespace:own".to_string()]
    else if (role == ROLE_NODE) vector[b"node:self".to_string()]
    else if (role == ROLE_ADMIN) vector[b"cluster-admin".to_string()]
    else vector[]
}

public fun owner(token: &SealToken): address { token.owner }

public fun role(token: &SealToken): u8 { token.role }

public fun node_id(token: &SealToken): String { token.node_id }

public fun permissions(token: &SealToken): vector<String> { token.permissions }

public fun stake_generation(token: &SealToken): u64 { token.stake_generation }

public fun issued_epoch(token: &SealToken): u64 { token.issued_epoch }

public fun expiry_epoch(token: &SealToken): u64 { token.expiry_epoch }

public fun token_master_endpoint(token: &SealToken): String { token.master_endpoint }

public fun master_endpoint(gateway: &Gateway): String { gateway.master_endpoint }

public fun token_ttl_epochs(gateway: &Gateway): u64 { gateway.token_ttl_epochs }

public fun tokens_issued(gateway: &Gateway): u64 { gateway.tokens_issued }

// === Test helpers ===

#[test_only]
public fun init_for_testing(ctx: &mut TxContext) {
    init(ctx);
}
