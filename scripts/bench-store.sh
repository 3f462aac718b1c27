#!/usr/bin/env bash
# Build the store benchmark in release mode and run it: embedded redb store vs a real etcd
# (started on 127.0.0.1 with a temporary data dir, killed at the end).
# Usage: scripts/bench-store.sh [--ops N] [--value-size BYTES] [--concurrency C] [--rounds R]
# The concurrent-create row is re-run --rounds times (default 7), embedded and etcd alternating;
# the last line is the median ratio of those rounds against the 1.5x target.
# Needs: etcd (PATH or $ETCD_BIN), protoc + libprotobuf-dev (etcd-client builds its protos).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
manifest="${BENCH_MANIFEST_PATH:-$root/crates/store/Cargo.toml}"
target="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TARGET_DIR="$target"
command -v "${ETCD_BIN:-etcd}" >/dev/null || { echo "etcd not found (set ETCD_BIN)" >&2; exit 1; }
cargo build --release --manifest-path "$manifest" -p daas-store --features etcd --bin store-bench
exec "$target/release/store-bench" "$@"
