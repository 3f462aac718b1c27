#!/usr/bin/env python3
"""Regenerates the Ed25519 test vectors hard-coded in tests/slash_tests.move,
tests/enclave_tests.move and tests/economy_tests.move (usage reports, intent 3).

The enclave signs the BCS encoding of
    IntentMessage { intent: u8, timestamp_ms: u64, data: SlashReport { node: address, node_id: String,
                    generation: u64, nonce: u64, reason: String, epoch: u64 } }
which is, byte for byte:
    u8 intent | u64 LE timestamp_ms | 32-byte address | ULEB128(len(node_id)) utf8(node_id)
    | u64 LE generation | u64 LE nonce | ULEB128(len(reason)) utf8(reason) | u64 LE epoch

Usage: python3 scripts/gen_test_vectors.py   (needs the `cryptography` package)
"""
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SLASH_INTENT = 1
TIMESTAMP_MS = 1_700_000_000_000
NODE = 0xB0B
REASON = "missed heartbeats"


def uleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def bcs_string(s: str) -> bytes:
    b = s.encode()
    return uleb128(len(b)) + b


def intent_message(
    intent: int, timestamp_ms: int, node: int, node_id: str, generation: int, nonce: int, reason: str, epoch: int
) -> bytes:
    return (
        bytes([intent])
        + timestamp_ms.to_bytes(8, "little")
        + node.to_bytes(32, "big")
        + bcs_string(node_id)
        + generation.to_bytes(8, "little")
        + nonce.to_bytes(8, "little")
        + bcs_string(reason)
        + epoch.to_bytes(8, "little")
    )


# (constant name, node_id, generation, nonce, epoch) of the vectors in tests/slash_tests.move.
VECTORS = [
    ("SIG_G1_N0_E0", "worker-1", 1, 0, 0),
    ("SIG_G1_N0_E1", "worker-1", 1, 0, 1),
    ("SIG_G1_N1_E0", "worker-1", 1, 1, 0),
    ("SIG_G1_N1_E1", "worker-1", 1, 1, 1),
    ("SIG_G2_N0_E0", "worker-1", 2, 0, 0),
    ("SIG_G2_N1_E0", "worker-1", 2, 1, 0),
    ("SIG_NONE_E0", "", 0, 0, 0),
]


def main() -> None:
    seed = hashlib.sha256(b"k3s-daas test enclave key").digest()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    print(f"seed      = {seed.hex()}")
    print(f"pk        = {pk.hex()}")
    for name, node_id, generation, nonce, epoch in VECTORS:
        msg = intent_message(SLASH_INTENT, TIMESTAMP_MS, NODE, node_id, generation, nonce, REASON, epoch)
        print(f"// {name}: node_id {node_id!r}, generation {generation}, nonce {nonce}, epoch {epoch}")
        print(f"// msg = {msg.hex()}")
        print(f'const {name}: vector<u8> =\n    x"{sk.sign(msg).hex()}";')


STATE_ANCHOR_INTENT = 2
ANCHOR_CONFIG_ID = 0xC0F16  # enclave_tests.move's dummy_config_id()
ANCHOR_REVISION = 42


def anchor_message(timestamp_ms: int, config_id: int, revision: int) -> bytes:
    """BCS(IntentMessage { 2, timestamp_ms, StateAnchor { config_id: ID, revision: u64 } })."""
    return (
        bytes([STATE_ANCHOR_INTENT])
        + timestamp_ms.to_bytes(8, "little")
        + config_id.to_bytes(32, "big")
        + revision.to_bytes(8, "little")
    )


def anchor_vectors() -> None:
    seed = hashlib.sha256(b"k3s-daas test enclave key").digest()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    msg = anchor_message(TIMESTAMP_MS, ANCHOR_CONFIG_ID, ANCHOR_REVISION)
    print(f'const ANCHOR_MSG: vector<u8> =\n    x"{msg.hex()}";')
    print(f'const ANCHOR_SIG: vector<u8> =\n    x"{sk.sign(msg).hex()}";')


USAGE_INTENT = 3
MAX_U64 = 2**64 - 1
USER = 0xA11CE  # economy_tests.move's USER


def market_id_of_first_object() -> bytes:
    """The id of the first object created in a test scenario's first transaction.

    `test_scenario::begin` uses `tx_context::new_from_hint(sender, 0, ..)` whose tx hash is
    bcs(0u64) padded with zeros (32 zero bytes); Sui derives object ids as
    blake2b256(0xf1 || tx_hash || u64 LE ids_created).
    """
    return hashlib.blake2b(bytes([0xF1]) + bytes(32) + (0).to_bytes(8, "little"), digest_size=32).digest()


def bcs_vec(items, enc) -> bytes:
    return uleb128(len(items)) + b"".join(enc(i) for i in items)


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def usage_message(
    timestamp_ms, market_id, period, start, end, users, node_ids, generations, cpu, mem, pod, uptime
) -> bytes:
    """BCS(IntentMessage { 3, timestamp_ms, UsageReport { market_id: ID, period, period_start_ms,
    period_end_ms, users, node_ids, generations, cpu_ms, mem_mib_s, pod_s, uptime_ms } })."""
    return (
        bytes([USAGE_INTENT])
        + u64(timestamp_ms)
        + market_id
        + u64(period)
        + u64(start)
        + u64(end)
        + bcs_vec(users, lambda a: a.to_bytes(32, "big"))
        + bcs_vec(node_ids, bcs_string)
        + bcs_vec(generations, u64)
        + bcs_vec(cpu, u64)
        + bcs_vec(mem, u64)
        + bcs_vec(pod, u64)
        + bcs_vec(uptime, u64)
    )


# (constant name, period, start, end, users, node_ids, generations, cpu_ms, mem_mib_s, pod_s,
#  uptime_ms) of the vectors in tests/economy_tests.move.
USAGE_VECTORS = [
    ("USAGE_P1", 1, 0, 60_000, [USER, USER], ["worker-1", "worker-2"], [1, 1], [1500, 999],
     [2500, 1], [60, 1], [60_000, 60_000]),
    ("USAGE_P2", 2, 60_000, 120_000, [USER, USER], ["worker-1", "worker-2"], [1, 1], [1000, 1000],
     [0, 0], [0, 0], [60_000, 60_000]),
    ("USAGE_MISMATCH", 3, 120_000, 180_000, [USER], ["worker-2"], [1], [1000], [0], [0, 0],
     [60_000]),
    ("USAGE_OVERFLOW", 3, 120_000, 180_000, [USER, USER, USER], ["worker-2"] * 3, [1, 1, 1],
     [1000, 1000, MAX_U64], [0, 0, 0], [0, 0, MAX_U64], [60_000] * 3),
]


def usage_vectors() -> None:
    seed = hashlib.sha256(b"k3s-daas test enclave key").digest()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    market_id = market_id_of_first_object()
    print(f"// market id = {market_id.hex()}")
    for name, *fields in USAGE_VECTORS:
        msg = usage_message(TIMESTAMP_MS, market_id, *fields)
        print(f"// {name}: msg = {msg.hex()}")
        print(f'const {name}_SIG: vector<u8> =\n    x"{sk.sign(msg).hex()}";')


if __name__ == "__main__":
    anchor_vectors()
    main()
    usage_vectors()
