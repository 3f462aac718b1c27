#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (credential, protobuf, patch, nitro, sui_tx, sevsnp, tdx,
# evidence: `cargo fuzz list`) for a bounded time (issue 17): installs cargo-fuzz if
# missing, builds all targets once, then runs each for FUZZ_SECONDS (default 20) starting from
# its committed seed corpus. A crash, panic, timeout or leak fails the script and prints the
# reproducer (fuzz/artifacts/<target>/...); replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a <target> <reproducer>   (in fuzz/).
#
# The machine has the stable toolchain only: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the nightly
# flags it needs. No sanitizer (-s none): the code is safe Rust, what the fuzzer hunts is panics,
# overflows (-a: debug assertions and overflow checks on) and runaway time or memory.
#   FUZZ_SECONDS=20   seconds per target
#   FUZZ_TARGETS="a b" only these targets (default: all of `cargo fuzz list`)
#   FUZZ_JOBS=1       parallel fuzzing processes per target
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export CARGO_INCREMENTAL=0 RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-1}
start=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
flags=(-s none -a)
targets=${FUZZ_TARGETS:-$(cargo fuzz list)}
cargo fuzz build "${flags[@]}"
echo "fuzz: build took $(($(date +%s) - start)) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
extra=()
if ((jobs > 1)); then
  extra=(-jobs="$jobs" -workers="$jobs")
fi
for t in $targets; do
  mkdir -p "$scratch/$t" "artifacts/$t"
  echo "fuzz: $t for ${seconds}s"
  # New inputs go to the scratch corpus (first directory); the committed seeds stay as they are.
  if ! cargo fuzz run "${flags[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    "${extra[@]}" -print_final_stats=1 >"$scratch/$t.log" 2>&1; then
    grep -h -A2 "panicked at\|^==[0-9]*== ERROR\|^SUMMARY" "$scratch/$t.log" | head -12 || true
    repro=$(grep -ho "artifacts/$t/[^ ]*" "$scratch/$t.log" | tail -1 || true)
    echo "fuzz: $t FAILED; reproducer: fuzz/${repro:-artifacts/$t/}" >&2
    failed+=("$t")
  else
    grep -h "^stat::number_of_executed_units\|^stat::new_units_added" "$scratch/$t.log" | tr '\n' ' ' || true
    echo
  fi
done
echo "fuzz: total $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
