#!/usr/bin/env bash
# Regenerates the checked-in CRI v1 bindings of the agent (crates/agent/src/runtime/cri_api/)
# from the cri-api proto packaged in the k8s-cri crate (no network: it comes from the local cargo
# registry). Needs protoc (Debian: protobuf-compiler); building the agent does not.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.11.0
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
src=$(find "$registry" -maxdepth 2 -type d -name "k8s-cri-$version" | head -n1)
# k8s-cri is no dependency any more; `cargo fetch` on a checkout that still has it (or any
# project depending on k8s-cri =0.11.0) unpacks it there.
[ -n "$src" ] || { echo "k8s-cri-$version not found under $registry (unpack it with cargo fetch in a project that depends on it)" >&2; exit 1; }
command -v "${PROTOC:-protoc}" >/dev/null || { echo "protoc is required to regenerate (apt-get install protobuf-compiler)" >&2; exit 1; }

mkdir -p crates/agent/proto/runtime/v1 crates/agent/src/runtime/cri_api
cp "$src/proto/v1.proto" crates/agent/proto/runtime/v1/api.proto
cp "$src/LICENSE" crates/agent/proto/LICENSE
DAAS_REGEN_CRI=1 cargo test -q -p daas-agent --test cri_codegen
cargo test -q -p daas-agent --test cri_codegen
echo "regenerated crates/agent/src/runtime/cri_api/runtime.v1.rs"
