#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*) from real
# inputs: credentials and signed transactions made by the ledger's own code, protobuf objects
# made by the apiserver's encoder, patches of each engine, the real Nitro documents of
# crates/tee/testdata. Run from anywhere; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
out=fuzz/corpus
cargo run -q -p daas-ledger --example fuzz_seeds -- "$out"
cargo run -q -p daas-apimachinery --example fuzz_seeds -- "$out"
mkdir -p "$out/nitro"
for f in crates/tee/testdata/*.att.hex; do
  xxd -r -p "$f" >"$out/nitro/seed-$(basename "$f" .att.hex)"
done
ls -l "$out"/*
