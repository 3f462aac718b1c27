#!/usr/bin/env bash
# Master CPU spent by a small rollout (issue 15, controllers at scale): `daas up --no-agent`, N
# hollow nodes (default 4), then `kubectl apply` of P pods (default 20) from one Deployment;
# reports the master's CPU seconds (utime+stime of the `daas up` process, from /proc) from the
# apply until every pod is Running, and the wall time. With BEFORE_BIN=path it runs the same
# against that binary first and prints the ratio (after/before) as the last line.
# DAAS_BIN=path skips the debug build; ROUNDS (default 3) rollouts per binary, each its own
# Deployment (created, Running, deleted). Per-round lines go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-4}
P=${P:-20}
ROUNDS=${ROUNDS:-3}
if [ -n "${DAAS_BIN:-}" ]; then BIN=$DAAS_BIN; else CARGO_INCREMENTAL=0 cargo build -q -p daas; BIN=$PWD/target/debug/daas; fi
TCK=$(getconf CLK_TCK)

run() { # binary -> prints "cpu_s wall_s" per round, then "mean cpu_s"
  local bin=$1 T UP_PID HOLLOW_PID
  T=$(mktemp -d)
  "$bin" up --no-agent --data-dir "$T/m" --listen 127.0.0.1:0 --chain-listen 127.0.0.1:0 > "$T/up.log" 2>&1 & UP_PID=$!
  trap 'kill $HOLLOW_PID $UP_PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' RETURN
  for _ in $(seq 600); do [ -f "$T/m/kubeconfig.yaml" ] && [ -f "$T/m/chain-url" ] && break; sleep 0.1; done
  sleep 1
  local SERVER
  SERVER=$(sed -n 's/^ *server: //p' "$T/m/kubeconfig.yaml" | head -1)
  "$bin" hollow --source-ip-base 127.1.0.1 --chain "$(cat "$T/m/chain-url")" --server "$SERVER" \
    --trust-root "$T/m/tee/trusted-root.pem" --data-dir "$T/h" --name-prefix h --count "$N" \
    > "$T/h.out" 2> "$T/h.log" & HOLLOW_PID=$!
  for _ in $(seq 3000); do grep -q "nodes ready" "$T/h.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "nodes ready" "$T/h.out" || { echo "hollow nodes did not get ready"; tail "$T/h.log"; return 1; }
  export KUBECONFIG=$T/m/kubeconfig.yaml HOME=$T
  sleep 5
  local total=0
  for r in $(seq "$ROUNDS"); do
    local manifest="apiVersion: apps/v1
kind: Deployment
metadata: {name: cpu$r}
spec:
  replicas: $P
  selector: {matchLabels: {app: cpu$r}}
  template:
    metadata: {labels: {app: cpu$r}}
    spec:
      containers: [{name: c, image: busybox, resources: {requests: {cpu: 10m, memory: 8Mi}}}]"
    local c0 w0 c1 w1
    c0=$(awk '{print $14+$15}' "/proc/$UP_PID/stat"); w0=$(date +%s.%N)
    echo "$manifest" | kubectl apply -f - > /dev/null
    for _ in $(seq 6000); do
      [ "$(kubectl get pods -l "app=cpu$r" --field-selector=status.phase=Running -o name 2>/dev/null | wc -l)" -ge "$P" ] && break
      sleep 0.05
    done
    c1=$(awk '{print $14+$15}' "/proc/$UP_PID/stat"); w1=$(date +%s.%N)
    python3 -c "print(f'  round $r: master CPU {($c1-$c0)/$TCK:.2f} s, apply -> {$P} Running {$w1-$w0:.2f} s')" >&2
    total=$(python3 -c "print($total + ($c1-$c0)/$TCK)")
    kubectl delete deploy "cpu$r" --wait=false > /dev/null
    sleep 5
  done
  python3 -c "print(f'mean {$total/$ROUNDS:.3f}')"
}

if [ -n "${BEFORE_BIN:-}" ]; then
  echo "before ($BEFORE_BIN), load: $(cut -d' ' -f1-3 /proc/loadavg)"
  before=$(run "$BEFORE_BIN" | sed -n 's/^mean //p')
fi
echo "after ($BIN), load: $(cut -d' ' -f1-3 /proc/loadavg)"
after=$(run "$BIN" | sed -n 's/^mean //p')
if [ -n "${BEFORE_BIN:-}" ]; then
  python3 -c "print(f'master CPU per {$P}-pod rollout: {$after:.2f} s vs {$before:.2f} s before: {$after/$before:.2f}x')"
else
  echo "master CPU per $P-pod rollout: $after s"
fi
