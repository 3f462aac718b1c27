#!/usr/bin/env bash
# Installs what the tests need (Debian packages, as root) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have etcd || need+=(etcd-server)
have protoc || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
# Worker agent: containerd via CRI, runc, CNI plugins, a static busybox for local images.
have containerd || need+=(containerd)
have runc || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -x /bin/busybox ] || need+=(busybox-static)
have skopeo || need+=(skopeo)
have umoci || need+=(umoci)
have docker-registry || need+=(docker-registry)
have curl || need+=(curl)
have bc || need+=(bc)
have ip || need+=(iproute2)
have pgrep || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "missing packages: ${need[*]} (run as root to install them with apt-get)" >&2
    exit 1
  fi
fi
have kubectl || { echo "kubectl is required (expected at /usr/bin/kubectl)" >&2; exit 1; }
have node && have npm || { echo "node and npm are required for the @mysten/sui cross-check" >&2; exit 1; }

cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast "$@"
else
  cargo test --workspace --all-features --no-fail-fast "$@"
fi
