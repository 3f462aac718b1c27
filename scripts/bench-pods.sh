#!/usr/bin/env bash
# Pod start-up benchmark: time from `kubectl apply` to Running for N pods (default 20) on one
# `daas agent`, reported as p50/p99, next to a peer run in the same go: the same containers
# started directly with `ctr run` on the agent's own containerd (no API server, scheduler or
# kubelet logic). Needs root, containerd, runc, CNI plugins and busybox-static (see scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
cargo build --release -q -p daas
BIN=$PWD/target/release/daas
T=$(mktemp -d)
UP_PID=""; AGENT_PID=""
cleanup() {
  set +e
  [ -n "$AGENT_PID" ] && { KUBECONFIG=$T/m/kubeconfig.yaml HOME=$T kubectl delete pods -l bench=daas --wait=true --timeout=60s >/dev/null 2>&1; kill "$AGENT_PID"; wait "$AGENT_PID"; }
  [ -n "$UP_PID" ] && { kill "$UP_PID"; wait "$UP_PID"; }
  pkill -9 -f "$T" >/dev/null 2>&1
  ip link del daasbench >/dev/null 2>&1
  grep " $T" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l >/dev/null 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }

"$BIN" up --no-agent --data-dir "$T/m" --listen 127.0.0.1:0 --chain-listen 127.0.0.1:0 > "$T/up.log" 2>&1 & UP_PID=$!
for _ in $(seq 200); do [ -f "$T/m/chain-url" ] && break; sleep 0.1; done
export KUBECONFIG=$T/m/kubeconfig.yaml HOME=$T
CHAIN=$(cat "$T/m/chain-url")
MASTER=$(awk '/server:/{print $2}' "$KUBECONFIG")
ADDR=$("$BIN" keygen --out "$T/node.key")
"$BIN" faucet --chain "$CHAIN" --address "$ADDR" --amount 5000000000 >/dev/null
cat > "$T/staker-config.json" <<EOF
{"node_id": "bench-node", "sui_key_file": "$T/node.key", "sui_rpc_endpoint": "$CHAIN", "stake_amount": 1000,
 "nautilus_endpoint": "$MASTER", "trust_root": "$T/m/tee/trusted-root.pem", "data_dir": "$T/agent",
 "kubelet_port": 0, "pod_cidr": "10.244.9.0/24", "bridge_name": "daasbench"}
EOF
"$BIN" agent --config "$T/staker-config.json" > "$T/agent.log" 2>&1 & AGENT_PID=$!
for _ in $(seq 300); do
  [ "$(kubectl get node bench-node -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
  sleep 0.2
done

# daas: apply N pods at once, poll until each is Running.
for i in $(seq "$N"); do
  printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: bench-%s, labels: {bench: daas}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: c, image: localhost/k3s-daas/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}\n---\n' "$i"
done > "$T/pods.yaml"
START=$(now)
kubectl apply -f "$T/pods.yaml" >/dev/null
declare -A DONE=()
while [ ${#DONE[@]} -lt "$N" ]; do
  while read -r name phase; do
    if [ "$phase" = Running ] && [ -z "${DONE[$name]:-}" ]; then DONE[$name]=$(now); fi
  done < <(kubectl get pods -l bench=daas -o 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}')
  sleep 0.1
done
for k in "${!DONE[@]}"; do echo "${DONE[$k]} - $START" | bc; done | sort -n > "$T/daas.txt"

# Peer: the same containers started directly on the agent's containerd, N at once.
SOCK=$T/agent/runtime/containerd/containerd.sock
START=$(now)
PEERS=()
for i in $(seq "$N"); do
  ( ctr -a "$SOCK" -n k8s.io run -d localhost/k3s-daas/busybox:latest "peer-$i" /bin/busybox sleep 3600 >/dev/null
    echo "$(now) - $START" | bc ) &
  PEERS+=($!)
done > "$T/ctr.txt"
wait "${PEERS[@]}"
sort -n -o "$T/ctr.txt" "$T/ctr.txt"
for i in $(seq "$N"); do
  ctr -a "$SOCK" -n k8s.io tasks kill -s SIGKILL "peer-$i" >/dev/null 2>&1
done
sleep 1
for i in $(seq "$N"); do
  ctr -a "$SOCK" -n k8s.io tasks rm -f "peer-$i" >/dev/null 2>&1
  ctr -a "$SOCK" -n k8s.io containers rm "peer-$i" >/dev/null 2>&1
done

pct() { awk -v p="$2" '{a[NR]=$1} END {i=int((NR*p+99)/100); if (i<1) i=1; printf "%.3f", a[i]}' "$1"; }
D50=$(pct "$T/daas.txt" 50); D99=$(pct "$T/daas.txt" 99)
C50=$(pct "$T/ctr.txt" 50); C99=$(pct "$T/ctr.txt" 99)
printf '%-34s %8s %8s\n' "$N pods, seconds from start" p50 p99
printf '%-34s %8s %8s\n' "daas (kubectl apply -> Running)" "$D50" "$D99"
printf '%-34s %8s %8s\n' "peer (ctr run on same containerd)" "$C50" "$C99"
printf '%-34s %8s %8s\n' "ratio daas/peer" "$(echo "scale=2; $D50/$C50" | bc)" "$(echo "scale=2; $D99/$C99" | bc)"
