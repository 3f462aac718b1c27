#!/usr/bin/env bash
# HA write benchmark (issue 14): the same stream of ConfigMap creates (C concurrent clients, N writes in all)
# against
#  - 1 master on the embedded store (`daas up --no-agent`), and
#  - 2 masters on a 3-member Debian etcd cluster (clients spread over both masters),
# in one run; prints writes/s and p50/p99 latency of each and the ratios (HA / single) as the last line.
# Needs etcd (Debian etcd-server) and python3. DAAS_BIN=path skips the release build; N=2000 C=8 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
C=${C:-8}
if [ -n "${DAAS_BIN:-}" ]; then BIN=$DAAS_BIN; else cargo build --release -q -p daas; BIN=$PWD/target/release/daas; fi
ETCD=${ETCD_BIN:-etcd}
T=$(mktemp -d)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_file() { for _ in $(seq 600); do [ -f "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; for f in "$T"/*.log; do echo "== $f" >&2; tail -n 5 "$f" >&2; done; exit 1; }

# 1 master, embedded store.
"$BIN" up --no-agent --data-dir "$T/single" --listen 127.0.0.1:0 --chain-listen 127.0.0.1:0 > "$T/single.log" 2>&1 &
PIDS+=($!)
wait_file "$T/single/kubeconfig.yaml"

# 3 etcd members.
INITIAL=""; CLIENTS=""
declare -a CP PP
for i in 0 1 2; do CP[$i]=$(port); PP[$i]=$(port); INITIAL+="${INITIAL:+,}e$i=http://127.0.0.1:${PP[$i]}"; CLIENTS+="${CLIENTS:+,}http://127.0.0.1:${CP[$i]}"; done
for i in 0 1 2; do
  "$ETCD" --name "e$i" --data-dir "$T/etcd$i" --listen-client-urls "http://127.0.0.1:${CP[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${CP[$i]}" --listen-peer-urls "http://127.0.0.1:${PP[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${PP[$i]}" --initial-cluster "$INITIAL" \
    --initial-cluster-state new --initial-cluster-token "bench-$$" --log-level warn > "$T/etcd$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 0 1 2; do
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:${CP[$i]}/health" | grep -q true && break; sleep 0.1; done
done

# The ledger, then two masters sharing the cluster key (the second joins the first).
"$BIN" chain --data-dir "$T/chain" --listen 127.0.0.1:0 > "$T/chain.out" 2> "$T/chain.log" &
PIDS+=($!)
for _ in $(seq 300); do grep -q http "$T/chain.out" 2>/dev/null && break; sleep 0.1; done
CHAIN=$(grep -o 'http://[0-9.]*:[0-9]*' "$T/chain.out" | head -1)
common=(--listen 127.0.0.1:0 --datastore-endpoint "$CLIENTS" --ledger embedded --sui-rpc "$CHAIN"
        --enclave-dev-root "$T/platform")
"$BIN" master --data-dir "$T/m0" "${common[@]}" > "$T/m0.log" 2>&1 &
PIDS+=($!)
wait_file "$T/m0/kubeconfig.yaml"
M0=$(grep -o 'server: https://[^ ]*' "$T/m0/kubeconfig.yaml" | cut -d' ' -f2)
sleep 1
"$BIN" master --data-dir "$T/m1" "${common[@]}" --server "$M0" > "$T/m1.log" 2>&1 &
PIDS+=($!)
wait_file "$T/m1/kubeconfig.yaml"
sleep 2

N=$N C=$C python3 - "$T/single/kubeconfig.yaml" "$T/m0/kubeconfig.yaml" "$T/m1/kubeconfig.yaml" <<'PY'
import base64, http.client, json, os, re, ssl, sys, tempfile, threading, time

N, C = int(os.environ["N"]), int(os.environ["C"])

def target(path):
    cfg = open(path).read()
    host, port = re.search(r"server: https://([^\s]+)", cfg).group(1).rsplit(":", 1)
    ca = base64.b64decode(re.search(r"certificate-authority-data: (\S+)", cfg).group(1))
    f = tempfile.NamedTemporaryFile(delete=False, suffix=".pem"); f.write(ca); f.close()
    ctx = ssl.create_default_context(cafile=f.name); ctx.check_hostname = False
    return host, int(port), ctx, re.search(r"token: (\S+)", cfg).group(1)

def call(c, tok, method, path, body):
    c.request(method, path, body=json.dumps(body),
              headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")

def run(name, targets):
    host, port, ctx, tok = targets[0]
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=60)
    call(c, tok, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-ha"}})
    time.sleep(1)
    lat = []; lock = threading.Lock()
    def worker(k):
        host, port, ctx, tok = targets[k % len(targets)]
        c = http.client.HTTPSConnection(host, port, context=ctx, timeout=60)
        mine = []
        for i in range(k, N, C):
            t = time.perf_counter()
            call(c, tok, "POST", "/api/v1/namespaces/bench-ha/configmaps",
                 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:06d}"}, "data": {"v": "x" * 256}})
            mine.append(time.perf_counter() - t)
        with lock: lat.extend(mine)
    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(C)]
    for t in ths: t.start()
    for t in ths: t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    r = (N / wall, p(0.50), p(0.99))
    print(f"{name:32s} {r[0]:8.0f} writes/s  p50 {r[1]:7.1f} ms  p99 {r[2]:7.1f} ms")
    return r

single = run("1 master, embedded store", [target(sys.argv[1])])
ha = run("2 masters, 3 etcd members", [target(sys.argv[2]), target(sys.argv[3])])
print(f"HA/single: throughput {ha[0]/single[0]:.2f}x, p50 latency {ha[1]/single[1]:.2f}x, p99 latency {ha[2]/single[2]:.2f}x")
PY
