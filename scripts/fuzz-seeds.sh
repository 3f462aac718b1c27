#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*) from real
# inputs: credentials and signed transactions made by the ledger's own code, protobuf objects
# made by the apiserver's encoder, patches of each engine, the real Nitro documents of
# crates/tee/testdata, the real SEV-SNP report + VCEK and TDX/SGX quotes + collateral of
# crates/tee/tests/fixtures (byte-identical copies of shared/fixtures/{sev-snp,tdx}). Run from
# anywhere; commit the result.
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
fx=crates/tee/tests/fixtures
# sevsnp: report (0x4A0 bytes) || VCEK DER, Evidence::encode's layout.
mkdir -p "$out/sevsnp" "$out/tdx" "$out/evidence"
cat $fx/sev-snp/report_milan.bin $fx/sev-snp/vcek_milan.der >"$out/sevsnp/seed-milan"
# tdx: the quote alone (the fixture collateral is built into the target); the SGX quote reaches
# the non-TDX paths.
cp $fx/tdx/tdx_quote.bin "$out/tdx/seed-tdx-quote"
cp $fx/tdx/sgx_quote.bin "$out/tdx/seed-sgx-quote"
# evidence: platform code byte || Evidence::encode (TDX: u32 LE quote length || quote || JSON).
le32() { printf "%08x" "$1" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/' | xxd -r -p; }
{ printf '\x00'; cat "$out/nitro/seed-nautilus-weather"; } >"$out/evidence/seed-nitro"
{ printf '\x01'; cat "$out/sevsnp/seed-milan"; } >"$out/evidence/seed-sevsnp"
for q in tdx sgx; do
  {
    printf '\x02'
    le32 "$(stat -c %s $fx/tdx/${q}_quote.bin)"
    cat $fx/tdx/${q}_quote.bin $fx/tdx/${q}_quote_collateral.json
  } >"$out/evidence/seed-$q"
done
ls -l "$out"/*
