#!/usr/bin/env python3
"""Regenerates the Ed25519 test vectors hard-coded in tests/slash_tests.move and
tests/enclave_tests.move.

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


if __name__ == "__main__":
    anchor_vectors()
    main()
