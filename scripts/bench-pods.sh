#!/usr/bin/env bash
# Pod start-up benchmark: time from `kubectl apply` to Running for N pods (default 20) on one
# `daas agent`, reported as p50/p99, next to a peer run in the same go: the same containers
# started directly with `ctr run` on the agent's own containerd (no API server, scheduler or
# kubelet logic). Needs root, containerd, runc, CNI plugins and busybox-static (see scripts/test.sh).
#
#   scripts/bench-pods.sh [--pods N] [--debug]
#
# --pods N (env N): pods per run (default 20). --debug (env PROFILE=debug): use the debug build
# instead of building the release binary; DAAS_BIN=<path> uses that binary as is.
# Besides the totals it prints where the time goes: the `daas::podstart` marks the API server
# (created), the scheduler (bound) and the agent (seen, volumes, sandbox, started, running)
# log, as p50/p99 seconds since the apply started and p50/p99 of each stage's own share (the
# agent creates the sandbox while it reads the volumes, so those two shares overlap; "agent
# total" is seen -> running), and the CPU seconds the master, the agent and its containerd
# spent between the apply and the last Running. The last line is the ratio against the peer.
# Running is observed through one `kubectl get -w` (not a polling loop, whose process starts
# would compete with the pods for the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20}
PROFILE=${PROFILE:-release}
while [ $# -gt 0 ]; do
  case "$1" in
    --pods) N=$2; shift 2 ;;
    --pods=*) N=${1#--pods=}; shift ;;
    --debug) PROFILE=debug; shift ;;
    *) echo "usage: $0 [--pods N] [--debug]" >&2; exit 2 ;;
  esac
done
if [ -n "${DAAS_BIN:-}" ]; then
  BIN=$DAAS_BIN
elif [ "$PROFILE" = debug ]; then
  CARGO_INCREMENTAL=0 cargo build -q -p daas
  BIN=$PWD/target/debug/daas
else
  CARGO_INCREMENTAL=0 cargo build --release -q -p daas
  BIN=$PWD/target/release/daas
fi
export RUST_LOG=${RUST_LOG:-info}
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
for _ in $(seq 1200); do [ -f "$T/m/chain-url" ] && break; kill -0 "$UP_PID" 2>/dev/null || { cat "$T/up.log" >&2; exit 1; }; sleep 0.1; done
[ -f "$T/m/chain-url" ] || { echo "master not up within 120 s" >&2; exit 1; }
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
exec 3< <(exec kubectl get pods -l bench=daas -w -o 'jsonpath={.metadata.name} {.status.phase}{"\n"}')
WATCH_PID=$!
sleep 1
# CPU seconds (user + system) the master, the agent and its containerd spend on the run.
CONTAINERD_PID=""
for p in $(pgrep -f -- "$T/agent/runtime" || true); do
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = containerd ] && CONTAINERD_PID=$p
done
cpu() { [ -n "$1" ] && awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
CPU0="$(cpu "$UP_PID") $(cpu "$AGENT_PID") $(cpu "$CONTAINERD_PID")"
START=$(now)
kubectl apply -f "$T/pods.yaml" >/dev/null
declare -A DONE=()
while [ ${#DONE[@]} -lt "$N" ]; do
  if ! read -r -t 600 -u 3 name phase; then echo "pods not Running within 600 s" >&2; exit 1; fi
  if [ "$phase" = Running ] && [ -z "${DONE[$name]:-}" ]; then DONE[$name]=$(now); fi
done
CPU1="$(cpu "$UP_PID") $(cpu "$AGENT_PID") $(cpu "$CONTAINERD_PID")"
DAAS_END=$(now)
kill "$WATCH_PID" 2>/dev/null || true
exec 3<&-
for k in "${!DONE[@]}"; do echo "${DONE[$k]} - $START" | bc; done | sort -n > "$T/daas.txt"
APPLY=$START

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
PEER_END=$(now)
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

# Where the time goes: each bench pod's first mark per stage, from both logs.
cat "$T/up.log" "$T/agent.log" | sed 's/\x1b\[[0-9;]*m//g' | { grep 'daas::podstart' || true; } \
  | awk -v start="$APPLY" '{
      pod=""; st=""; t="";
      for (i=1; i<=NF; i++) {
        gsub(/"/, "", $i);
        if ($i ~ /^pod=default\/bench-/) pod=substr($i, 13);
        else if ($i ~ /^stage=/) st=substr($i, 7);
        else if ($i ~ /^t=/) t=substr($i, 3);
      }
      if (pod != "" && st != "" && t != "" && !((pod, st) in seen)) { seen[pod, st]=1; print pod, st, t - start }
    }' > "$T/marks.txt"
STAGES="created bound seen volumes sandbox started running"
if [ -s "$T/marks.txt" ]; then
  printf '%-34s %8s %8s %8s %8s\n' "stage (s since apply; own share)" p50 p99 "share50" "share99"
  prev=""
  for st in $STAGES; do
    awk -v s="$st" '$2==s {print $3}' "$T/marks.txt" | sort -n > "$T/stage-$st.txt"
    [ -s "$T/stage-$st.txt" ] || continue
    if [ -n "$prev" ]; then
      awk -v s="$st" -v p="$prev" '$2==p {a[$1]=$3} $2==s {b[$1]=$3} END {for (k in b) if (k in a) print b[k]-a[k]}' \
        "$T/marks.txt" | sort -n > "$T/share-$st.txt"
    else
      cp "$T/stage-$st.txt" "$T/share-$st.txt"
    fi
    printf '%-34s %8s %8s %8s %8s\n' "  $st ($(wc -l < "$T/stage-$st.txt") pods)" \
      "$(pct "$T/stage-$st.txt" 50)" "$(pct "$T/stage-$st.txt" 99)" \
      "$(pct "$T/share-$st.txt" 50)" "$(pct "$T/share-$st.txt" 99)"
    prev=$st
  done
  # The agent's whole share (its stages overlap: the sandbox comes up while volumes are read).
  awk '$2=="seen" {a[$1]=$3} $2=="running" {b[$1]=$3} END {for (k in b) if (k in a) print b[k]-a[k]}' \
    "$T/marks.txt" | sort -n > "$T/share-agent.txt"
  if [ -s "$T/share-agent.txt" ]; then
    printf '%-34s %8s %8s %8s %8s\n' "  agent total (seen -> running)" "" "" \
      "$(pct "$T/share-agent.txt" 50)" "$(pct "$T/share-agent.txt" 99)"
  fi
fi
echo "$CPU0 $CPU1" | awk '{printf "CPU seconds during the run: master %.2f, agent %.2f, containerd %.2f\n", $4-$1, $5-$2, $6-$3}'
D50=$(pct "$T/daas.txt" 50); D99=$(pct "$T/daas.txt" 99)
C50=$(pct "$T/ctr.txt" 50); C99=$(pct "$T/ctr.txt" 99)
printf '%-34s %8s %8s\n' "$N pods, seconds from start" p50 p99
printf '%-34s %8s %8s\n' "daas (kubectl apply -> Running)" "$D50" "$D99"
printf '%-34s %8s %8s\n' "peer (ctr run on same containerd)" "$C50" "$C99"
# The two windows in wall-clock seconds, to cut a system-wide profile (`perf record -a -k
# CLOCK_REALTIME`, then `perf report --time A,B`) to the run and to its peer.
printf 'windows (epoch s): daas %s %s peer %s %s\n' "$APPLY" "$DAAS_END" "$START" "$PEER_END"
printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %8s %8s\n' "ratio daas/peer" "$(echo "scale=2; $D50/$C50" | bc)" "$(echo "scale=2; $D99/$C99" | bc)"
