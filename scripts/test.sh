#!/usr/bin/env bash
# Installs what the tests need (Debian packages, as root) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have etcd || need+=(etcd-server)
have protoc || need+=(protobuf-compiler)
have c++ || need+=(g++) # scripts/fuzz.sh: libfuzzer-sys builds libFuzzer
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
have nsenter || need+=(util-linux)
# Service rules and network policies are programmed with nft.
have nft || need+=(nftables)
# Stale UDP flows of Services are deleted with conntrack.
have conntrack || need+=(conntrack)
# The UDP Service e2e test runs the host's python3 (client in a node namespace, backends from a read-only /usr).
[ -x /usr/bin/python3 ] || need+=(python3)
# The CNI portmap plugin (hostPort) programs iptables.
have iptables || need+=(iptables)
have pgrep || need+=(procps)
# `daas install` units are checked with systemd-analyze verify.
have systemd-analyze || need+=(systemd)
# The console e2e test drives headless Chromium over WebDriver.
have chromium || need+=(chromium)
have chromedriver || need+=(chromium-driver)
# The monitoring e2e test scrapes the cluster with the real Prometheus.
[ -x /usr/bin/prometheus ] || need+=(prometheus)
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

# A one-off build: incremental artifacts would only take disk (gigabytes) and time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# The daas binary's default build has the etcd datastore (`--datastore-endpoint`), whose gRPC
# bindings need protoc (protobuf-compiler, installed above). Without default features it still
# needs no system package: no protoc anywhere else in its build graph (the agent's CRI bindings
# are checked in).
if cargo tree -p daas --no-default-features -e normal,build --prefix none | grep -qE '^(prost-build|tonic-prost-build|protobuf-src) '; then
  echo "daas --no-default-features needs protoc (prost-build): only the etcd feature may" >&2
  exit 1
fi
# The agent links only what it shares with the master (daas-protocol), never the master itself,
# the API server, the store or the controllers.
if cargo tree -p daas-agent -e normal --prefix none | grep -qE '^daas-(master|apiserver|store|controllers) '; then
  echo "daas-agent depends on the master side (daas-master/apiserver/store/controllers): use daas-protocol" >&2
  exit 1
fi
cargo build -p daas
cargo clippy --workspace --all-targets --all-features -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast "$@"
else
  cargo test --workspace --all-features --no-fail-fast "$@"
fi
# Bounded fuzzing of every network parser (scripts/fuzz.sh, FUZZ_SECONDS per target) in CI.
if [ "${FUZZ:-}" = 1 ] || [ "${CI:-}" = true ]; then
  scripts/fuzz.sh
fi
