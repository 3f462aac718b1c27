#!/usr/bin/env bash
# Scale benchmark (issue 15): `daas up --no-agent`, then N hollow nodes (`daas hollow`: real
# stakers, seal tokens, Nodes, Leases every 10 s, pods reported Running without containers), then
# P pods from Deployments of 100 replicas. Reports, in one run:
#  - API latency p50/p99 of mutating calls (ConfigMap create/patch/delete) and read calls (get pod,
#    get node, list pods limit=500), measured by a python3 client during the rollout;
#  - scheduler throughput (pods bound per second) and saturation pod startup (create -> Running)
#    p50/p99 of the P pods, from a watch on the pods;
#  - latency pods, as upstream's density test (test/e2e/scalability/density.go, ClusterLoader2's
#    PodStartupLatency): once the P saturation pods run, LATENCY_PODS (200) single pods are
#    created at LATENCY_QPS (5) per second in their own namespace; their startup (POST sent ->
#    Running seen by the watch) p50/p99 is what the pod startup SLO checks, then they are deleted;
#  - the master's RSS (VmRSS of the `daas up` process: master plus embedded ledger);
#  - token validations per second (the master's /metrics counter daas_token_validations_total);
#  - node failure: one more hollow node in its own process is killed (SIGKILL); time to
#    Ready=Unknown and until its pods run elsewhere (the master runs with
#    UNREACHABLE_TOLERATION=0, `--default-unreachable-toleration-seconds`: pods leave an
#    unreachable node at once instead of after upstream's 300 s);
# and checks the Kubernetes SLOs as the last line: mutating API p99 < 1 s, pod startup p99 < 5 s
# (of the latency pods; of the saturation pods with LATENCY_PODS=0).
# N=100 P=1000 for a quick run; DAAS_BIN=path skips the release build; NODE_GRACE (seconds, 40);
# JOIN_TIMEOUT (seconds, 3600) bounds the join; ROLLOUT_TIMEOUT (seconds, max(600, P/5)) the
# wait for every pod Running; LOG_DIR=dir keeps the master's and the hollow
# processes' logs. Every phase is bounded and the SLO line is printed even when one times out.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
P=${P:-10000}
NODE_GRACE=${NODE_GRACE:-40}
UNREACHABLE_TOLERATION=${UNREACHABLE_TOLERATION:-0}
JOIN_TIMEOUT=${JOIN_TIMEOUT:-3600}
if [ -n "${DAAS_BIN:-}" ]; then BIN=$DAAS_BIN; else cargo build --release -q -p daas; BIN=$PWD/target/release/daas; fi
T=$(mktemp -d)
UP_PID="" HOLLOW_PID="" VICTIM_PID=""
cleanup() {
  set +e
  if [ -n "${LOG_DIR:-}" ]; then mkdir -p "$LOG_DIR" && cp "$T"/*.log "$T"/*.out "$LOG_DIR"/ 2>/dev/null; fi
  for p in "$VICTIM_PID" "$HOLLOW_PID" "$UP_PID"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
"$BIN" up --no-agent --data-dir "$T/m" --listen 127.0.0.1:0 --chain-listen 127.0.0.1:0 \
  --cluster-cidr 10.0.0.0/8 --node-cidr-mask-size 24 --node-grace-seconds "$NODE_GRACE" \
  --default-unreachable-toleration-seconds "$UNREACHABLE_TOLERATION" > "$T/up.log" 2>&1 & UP_PID=$!
for _ in $(seq 600); do [ -f "$T/m/kubeconfig.yaml" ] && [ -f "$T/m/chain-url" ] && break; sleep 0.1; done
sleep 1
CHAIN=$(cat "$T/m/chain-url")
SERVER=$(sed -n 's/^ *server: //p' "$T/m/kubeconfig.yaml" | head -1)
hollow() { # prefix count source-ip-base (each node its own loopback address)
  exec "$BIN" hollow --source-ip-base "$3" --chain "$CHAIN" --server "$SERVER" --trust-root "$T/m/tee/trusted-root.pem" \
    --data-dir "$T/h-$1" --name-prefix "$1" --count "$2" --join-concurrency 16 > "$T/h-$1.out" 2> "$T/h-$1.log"
}
wait_ready() { # prefix
  local end=$(( $(date +%s) + JOIN_TIMEOUT ))
  while [ "$(date +%s)" -lt "$end" ]; do
    grep -q "nodes ready" "$T/h-$1.out" 2>/dev/null && { cat "$T/h-$1.out"; return 0; }
    # The hollow process gave up (e.g. the master did not attest in time): stop waiting.
    grep -q "^error:" "$T/h-$1.log" 2>/dev/null && break
    sleep 0.1
  done
  local joined
  joined=$(grep -c "hollow node registered" "$T/h-$1.log" 2>/dev/null || true)
  echo "hollow $1 did not get ready: ${joined:-0} nodes registered after $(( $(date +%s) - ${t0%.*} )) s"
  tail -5 "$T/h-$1.log"
  [ -n "$UP_PID" ] && echo "master RSS: $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' /proc/$UP_PID/status 2>/dev/null)"
  echo "SLO ($N nodes, $P pods): join FAIL (${joined:-0}/$N nodes); mutating API p99 n/a FAIL; pod startup p99 n/a FAIL; node failure n/a FAIL"
  exit 1
}
t0=$(date +%s.%N)
hollow h "$N" 127.1.0.1 & HOLLOW_PID=$!
wait_ready h
echo "joined $N hollow nodes in $(python3 -c "t=$(date +%s.%N)-$t0; print(f'{t:.1f} s ({$N/t:.2f} nodes/s)')") (stake, seal token, attested join, Node, Lease)"
hollow victim 1 127.200.0.1 & VICTIM_PID=$!
wait_ready victim
DATA_DIR=$T/m N=$N P=$P LATENCY_PODS=${LATENCY_PODS:-200} LATENCY_QPS=${LATENCY_QPS:-5} ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-} UP_PID=$UP_PID VICTIM_PID=$VICTIM_PID NODE_GRACE=$NODE_GRACE python3 - "$T/m/kubeconfig.yaml" <<'PY'
import base64, http.client, json, os, re, signal, ssl, sys, tempfile, threading, time

cfg = open(sys.argv[1]).read()
server = re.search(r"server: https://([^\s]+)", cfg).group(1)
host, port = server.rsplit(":", 1)
ca = base64.b64decode(re.search(r"certificate-authority-data: (\S+)", cfg).group(1))
token = re.search(r"token: (\S+)", cfg).group(1)
caf = tempfile.NamedTemporaryFile(delete=False, suffix=".pem")
caf.write(ca); caf.close()
ctx = ssl.create_default_context(cafile=caf.name)
ctx.check_hostname = False
N, P = int(os.environ["N"]), int(os.environ["P"])
UP_PID, VICTIM_PID = int(os.environ["UP_PID"]), int(os.environ["VICTIM_PID"])
GRACE = int(os.environ["NODE_GRACE"])
NS = "scale"
LAT_NS = "scale-latency"
LAT_PODS, LAT_QPS = int(os.environ["LATENCY_PODS"]), float(os.environ["LATENCY_QPS"])
REPLICAS = 100

def conn():
    return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=300)

def call(c, method, path, body=None, ctype="application/json", ok=(200, 201, 202, 404, 409)):
    h = {"Authorization": "Bearer " + token, "Accept": "application/json"}
    if body is not None:
        h["Content-Type"] = ctype
        body = json.dumps(body)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
    except (OSError, http.client.HTTPException):
        # The server closed an idle keep-alive connection: reconnect once (same object).
        c.close()
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
    data = r.read()
    if r.status not in ok:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return r.status, data

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

def rss_mb():
    for l in open(f"/proc/{UP_PID}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) / 1024
    return float("nan")

def validations():
    c = conn()
    _, data = call(c, "GET", "/metrics")
    total = 0.0
    for l in data.decode().splitlines():
        if l.startswith("daas_token_validations_total"):
            total += float(l.rsplit(" ", 1)[1])
    return total

c = conn()
call(c, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
call(c, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LAT_NS}})

# Steady state before the rollout: token validations per second from N renewing nodes.
v0, tv0 = validations(), time.time()
time.sleep(20)
v1, tv1 = validations(), time.time()
print(f"token validations: {(v1 - v0) / (tv1 - tv0):.1f}/s idle with {N + 1} nodes (Lease every 10 s each)")
rss_idle = rss_mb()

# Pod timeline from a watch: created (ADDED), bound (nodeName set), Running.
created, bound, running, node_of = {}, {}, {}, {}
lock = threading.Lock()
stop = threading.Event()

lat_created, lat_bound, lat_running, lat_node = {}, {}, {}, {}

def watch(ns=NS, created=created, bound=bound, running=running, node_of=node_of, record_created=True):
    while not stop.is_set():
        c = conn()
        h = {"Authorization": "Bearer " + token, "Accept": "application/json"}
        c.request("GET", f"/api/v1/namespaces/{ns}/pods?watch=1&allowWatchBookmarks=false", headers=h)
        r = c.getresponse()
        buf = b""
        try:
            while not stop.is_set():
                line = r.readline()
                if not line:
                    break
                ev = json.loads(line)
                o = ev.get("object", {})
                name = o.get("metadata", {}).get("name")
                if not name or ev.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                now = time.time()
                with lock:
                    if record_created:
                        created.setdefault(name, now)
                    n = o.get("spec", {}).get("nodeName")
                    if n and name not in bound:
                        bound[name] = now
                        node_of[name] = n
                    if o.get("status", {}).get("phase") == "Running" and name not in running:
                        running[name] = now
        except Exception:
            pass

wt = threading.Thread(target=watch, daemon=True)
wt.start()
threading.Thread(target=watch, daemon=True, kwargs=dict(ns=LAT_NS, created=lat_created, bound=lat_bound,
                 running=lat_running, node_of=lat_node, record_created=False)).start()
time.sleep(1)

# API load: mutating and read calls during the rollout (2 clients each).
mut, rd = [], []
def mutator(k):
    c, i = conn(), 0
    while not stop.is_set():
        name = f"load-{k}-{i}"
        for m, p, b, ct in (
            ("POST", f"/api/v1/namespaces/{NS}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}, "application/json"),
            ("PATCH", f"/api/v1/namespaces/{NS}/configmaps/{name}", {"data": {"k": "w"}}, "application/merge-patch+json"),
            ("DELETE", f"/api/v1/namespaces/{NS}/configmaps/{name}", None, "application/json"),
        ):
            t = time.perf_counter(); call(c, m, p, b, ct); mut.append(time.perf_counter() - t)
        i += 1
        time.sleep(0.05)

def reader(k):
    c = conn()
    while not stop.is_set():
        with lock:
            some = next(iter(node_of.items()), None)
        paths = [f"/api/v1/namespaces/{NS}/pods?limit=500", f"/api/v1/nodes/h-{k}"]
        if some:
            paths.append(f"/api/v1/namespaces/{NS}/pods/{some[0]}")
        for p in paths:
            t = time.perf_counter(); call(c, "GET", p); rd.append(time.perf_counter() - t)
        time.sleep(0.05)

loaders = [threading.Thread(target=f, args=(k,), daemon=True) for f in (mutator, reader) for k in range(2)]
for t in loaders: t.start()

deps = (P + REPLICAS - 1) // REPLICAS
va, ta = validations(), time.time()
t_start = time.time()
for d in range(deps):
    reps = min(REPLICAS, P - d * REPLICAS)
    try:
      call(c, "POST", f"/apis/apps/v1/namespaces/{NS}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"d{d}"},
        "spec": {"replicas": reps, "selector": {"matchLabels": {"app": f"d{d}"}},
                 "template": {"metadata": {"labels": {"app": f"d{d}"}},
                              "spec": {"containers": [{"name": "c", "image": "registry.local/pause:1"}]}}}})
    except (SystemExit, OSError, http.client.HTTPException) as e:
        # Measure what was created; the SLO line below still reports (and fails) the rest.
        print(f"creating Deployment d{d} failed: {e}")
        break
print(f"created {deps} Deployments ({P} pods) in {time.time() - t_start:.1f} s")
deadline = time.time() + (int(os.environ["ROLLOUT_TIMEOUT"]) if os.environ.get("ROLLOUT_TIMEOUT") else max(600, P * 0.2))
while time.time() < deadline:
    with lock:
        if len(running) >= P:
            break
    time.sleep(1)
vb, tb = validations(), time.time()
rollout = time.time() - t_start
rss_loaded = rss_mb()
with lock:
    b_times = sorted(bound.values())
    c_times = sorted(created.values())
    startup = [running[n] - created[n] for n in running if n in created]
    nr = len(running)
sched = (len(b_times) - 1) / (b_times[-1] - b_times[0]) if len(b_times) > 1 else float("nan")
rs_rate = (len(c_times) - 1) / (c_times[-1] - c_times[0]) if len(c_times) > 1 else float("nan")
print(f"ReplicaSet controller: {rs_rate:.1f} pods/s created ({len(c_times)} pods)")
print(f"{nr}/{P} pods Running after {rollout:.1f} s; scheduler {sched:.1f} pods/s bound ({len(b_times)} bound)")
print(f"saturation pod startup ({nr} pods created by Deployments as fast as the ReplicaSet controller goes; watch ADDED -> Running): "
      f"p50 {pct(startup, .5):.2f} s, p99 {pct(startup, .99):.2f} s")
print(f"API mutating: p50 {pct(mut, .5)*1000:.1f} ms, p99 {pct(mut, .99)*1000:.1f} ms ({len(mut)} calls); "
      f"read: p50 {pct(rd, .5)*1000:.1f} ms, p99 {pct(rd, .99)*1000:.1f} ms ({len(rd)} calls)")
print(f"token validations: {(vb - va) / (tb - ta):.1f}/s during the rollout")
print(f"master RSS (daas up: master + embedded ledger): {rss_idle:.0f} MB with {N + 1} nodes idle, {rss_loaded:.0f} MB with {nr} pods")
try:
    _, data = call(c, "GET", "/api/v1/events?limit=1")
    meta = json.loads(data).get("metadata", {})
    nev = int(meta.get("remainingItemCount", 0)) + len(json.loads(data).get("items", []))
    store_mb = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.environ["DATA_DIR"])
                   for f in fs if f.endswith((".redb", ".wal"))) / 1e6
    print(f"store: {nev} Events kept (expire after 1 h), master data files {store_mb:.0f} MB")
except Exception as e:
    print(f"store figures unavailable: {e}")

# Latency pods (upstream density test): with the saturation pods running, single pods at a low
# steady rate; startup = POST sent -> Running seen by the watch. Then deleted.
lat = []
if LAT_PODS > 0 and nr >= P:
    t_lat = time.time()
    for i in range(LAT_PODS):
        due = t_lat + i / LAT_QPS
        if due > time.time():
            time.sleep(due - time.time())
        name = f"latency-{i}"
        with lock:
            lat_created[name] = time.time()
        try:
            call(c, "POST", f"/api/v1/namespaces/{LAT_NS}/pods", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"type": "latency-pod"}},
                "spec": {"containers": [{"name": "c", "image": "registry.local/pause:1"}]}})
        except (SystemExit, OSError, http.client.HTTPException) as e:
            print(f"creating latency pod {name} failed: {e}")
            break
    lat_deadline = time.time() + 120
    while time.time() < lat_deadline:
        with lock:
            if len(lat_running) >= len(lat_created):
                break
        time.sleep(0.5)
    with lock:
        lat = [lat_running[n] - lat_created[n] for n in lat_running if n in lat_created]
        lat_sched = [lat_bound[n] - lat_created[n] for n in lat_bound if n in lat_created]
        lat_nodes = len(set(lat_node.values()))
        nlat = len(lat_created)
    print(f"latency pods ({nlat} single pods at {LAT_QPS:g}/s after saturation, POST -> Running; upstream density method): "
          f"p50 {pct(lat, .5):.2f} s, p99 {pct(lat, .99):.2f} s, {len(lat)}/{nlat} Running on {lat_nodes} nodes; "
          f"create -> bound p50 {pct(lat_sched, .5):.2f} s, p99 {pct(lat_sched, .99):.2f} s")
    for i in range(nlat):
        try:
            call(c, "DELETE", f"/api/v1/namespaces/{LAT_NS}/pods/latency-{i}?gracePeriodSeconds=0")
        except (SystemExit, OSError, http.client.HTTPException):
            pass
elif LAT_PODS > 0:
    print(f"latency pods: not run ({nr}/{P} saturation pods Running)")

# Node failure: the victim's process dies; its node must become Unknown and its pods move.
with lock:
    victim_pods = [n for n, node in node_of.items() if node == "victim-0"]
os.kill(VICTIM_PID, signal.SIGKILL)
tk = time.time()
unknown_after = None
moved_after = None
while time.time() - tk < GRACE + 300:
    if unknown_after is None:
        _, data = call(c, "GET", "/api/v1/nodes/victim-0")
        conds = json.loads(data).get("status", {}).get("conditions", [])
        if any(x.get("type") == "Ready" and x.get("status") == "Unknown" for x in conds):
            unknown_after = time.time() - tk
    if unknown_after is not None:
        _, data = call(c, "GET", f"/api/v1/namespaces/{NS}/pods?fieldSelector=spec.nodeName%3Dvictim-0")
        left = len(json.loads(data)["items"])
        _, data = call(c, "GET", f"/apis/apps/v1/namespaces/{NS}/deployments")
        ready = sum(d.get("status", {}).get("readyReplicas", 0) for d in json.loads(data)["items"])
        if left == 0 and ready >= P:
            moved_after = time.time() - tk
            break
    time.sleep(0.5)
stop.set()
fmt = lambda x: f"{x:.1f} s" if x is not None else "never"
print(f"node failure: victim-0 ({len(victim_pods)} pods) Unknown after {fmt(unknown_after)} (grace {GRACE} s), "
      f"its pods running elsewhere after {fmt(moved_after)}")
mp99, sp99 = pct(mut, .99), pct(startup, .99)
ok_m = mp99 < 1.0
if LAT_PODS > 0:
    lp99 = pct(lat, .99)
    ok_s = lp99 < 5.0 and nr >= P and len(lat) >= LAT_PODS
    startup_slo = (f"pod startup p99 of {len(lat)}/{LAT_PODS} latency pods {lp99:.2f} s < 5 s {'PASS' if ok_s else 'FAIL'} "
                   f"(saturation pods p99 {sp99:.2f} s, {nr}/{P} Running)")
else:
    ok_s = sp99 < 5.0 and nr >= P
    startup_slo = f"pod startup p99 of the {nr}/{P} saturation pods {sp99:.2f} s < 5 s {'PASS' if ok_s else 'FAIL'}"
ok_f = unknown_after is not None and unknown_after <= GRACE + 10 and moved_after is not None
print(f"SLO ({N} nodes, {P} pods): mutating API p99 {mp99*1000:.0f} ms over the whole run ({len(mut)} calls) < 1000 ms {'PASS' if ok_m else 'FAIL'}; "
      f"{startup_slo}; "
      f"node failure detected and pods moved {'PASS' if ok_f else 'FAIL'}")
PY
