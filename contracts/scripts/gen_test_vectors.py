#!/usr/bin/env python3
"""Regenerates the Ed25519 test vectors hard-coded in tests/slash_tests.move and
tests/enclave_tests.move.

The enclave signs the BCS encoding of
    IntentMessage { intent: u8, timestamp_ms: u64, data: SlashReport { node: address, reason: String, epoch: u64 } }
which is, byte for byte:
    u8 intent | u64 LE timestamp_ms | 32-byte address | ULEB128(len(reason)) utf8(reason) | u64 LE epoch

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


def intent_message(intent: int, timestamp_ms: int, node: int, reason: str, epoch: int) -> bytes:
    reason_b = reason.encode()
    return (
        bytes([intent])
        + timestamp_ms.to_bytes(8, "little")
        + node.to_bytes(32, "big")
        + uleb128(len(reason_b))
        + reason_b
        + epoch.to_bytes(8, "little")
    )


def main() -> None:
    seed = hashlib.sha256(b"k3s-daas test enclave key").digest()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pk = sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    print(f"seed      = {seed.hex()}")
    print(f"pk        = {pk.hex()}")
    for epoch in (0, 1):
        msg = intent_message(SLASH_INTENT, TIMESTAMP_MS, NODE, REASON, epoch)
        print(f"msg_e{epoch}    = {msg.hex()}")
        print(f"sig_e{epoch}    = {sk.sign(msg).hex()}")


if __name__ == "__main__":
    main()
