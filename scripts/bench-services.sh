#!/usr/bin/env bash
# Service benchmark (prints numbers and ratios, asserts nothing). Needs root, nft, ip, curl and
# busybox (static). Everything runs in network namespaces made here and removed at exit.
#
# 1. Rule programming for COUNT (default 1000) Services with two endpoints each: the agent's
#    own model, generation and nft apply of table `ip daas-proxy` (the bench_proxy_rules example
#    of crates/agent), a re-apply after one endpoint changed, and a drift check.
# 2. Pod to pod through a ClusterIP vs the pod IP, in one run: two "pods" (namespaces on a
#    bridge of a "node" namespace, as the CNI bridge plugin wires them) and the node's table
#    from step 1, whose Service 0 (10.43.200.1:80) goes to the server pod. Connection setup rate
#    (REQS short HTTP requests, one connection each) and throughput (a SIZE_MB file, best of 3).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-1000}
REQS=${REQS:-500}
SIZE_MB=${SIZE_MB:-256}
BUSYBOX=${BUSYBOX:-/bin/busybox}
P="dbs$$"
NODE="$P-node" CLI="$P-cli" SRV="$P-srv"
WWW=$(mktemp -d)
HTTPD_PID=""

cleanup() {
    [ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null || true
    for ns in "$CLI" "$SRV" "$NODE"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WWW"
}
trap cleanup EXIT

export CARGO_INCREMENTAL=0
# PROFILE=release for optimized generation numbers (nft's own time dominates either way).
PROFILE=${PROFILE:-dev}
cargo build -q --profile "$PROFILE" -p daas-agent --example bench_proxy_rules
BENCH=target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/examples/bench_proxy_rules

ip netns add "$NODE"; ip netns add "$CLI"; ip netns add "$SRV"
ip -n "$NODE" link set lo up
ip -n "$NODE" link add br0 type bridge
ip -n "$NODE" addr add 10.42.9.1/24 dev br0
ip -n "$NODE" link set br0 up
ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1
pod() { # pod <ns> <ip> <port name>
    ip -n "$NODE" link add "$3" type veth peer name eth0 netns "$1"
    ip -n "$NODE" link set "$3" master br0 up
    ip -n "$1" link set lo up
    ip -n "$1" addr add "$2/24" dev eth0
    ip -n "$1" link set eth0 up
    ip -n "$1" route add default via 10.42.9.1
}
pod "$SRV" 10.42.9.2 vsrv
pod "$CLI" 10.42.9.3 vcli

echo "== rule programming: $COUNT Services (2 endpoints each, every 10th a NodePort)"
"$BENCH" "$NODE" "$COUNT" 10.42.9.2:8080

echo ok > "$WWW/index.html"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/zero > "$WWW/big"
ip netns exec "$SRV" "$BUSYBOX" httpd -f -p 8080 -h "$WWW" &
HTTPD_PID=$!
for _ in $(seq 50); do
    ip netns exec "$CLI" curl -s -m 1 -o /dev/null http://10.42.9.2:8080/ && break
    sleep 0.1
done

rate() { # requests per second to base URL $1
    local start end
    start=$(date +%s.%N)
    ip netns exec "$CLI" curl -s -o /dev/null "$1/index.html?[1-$REQS]"
    end=$(date +%s.%N)
    echo "$REQS / ($end - $start)" | bc -l
}
tput() { # best of 3, MB/s
    local best=0 s
    for _ in 1 2 3; do
        s=$(ip netns exec "$CLI" curl -s -o /dev/null -w '%{speed_download}' "$1/big")
        best=$(echo "if ($s > $best) $s else $best" | bc -l)
    done
    echo "$best / 1048576" | bc -l
}
DIRECT=http://10.42.9.2:8080
CLUSTER=http://10.43.200.1:80
echo "== pod to pod: direct pod IP vs ClusterIP (same node, one run)"
rd=$(rate "$DIRECT"); rc=$(rate "$CLUSTER")
printf 'connections/s  direct=%.0f clusterip=%.0f ratio(clusterip/direct)=%.3f\n' "$rd" "$rc" "$(echo "$rc / $rd" | bc -l)"
td=$(tput "$DIRECT"); tc=$(tput "$CLUSTER")
printf 'throughput MB/s direct=%.0f clusterip=%.0f ratio(clusterip/direct)=%.3f\n' "$td" "$tc" "$(echo "$tc / $td" | bc -l)"
