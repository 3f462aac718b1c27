#!/usr/bin/env bash
# List benchmark (issue 10): N ConfigMaps (default 10,000) in one namespace, then, in the same run,
#  - a full list in pages of `limit=500` (what kubectl and client-go informers do) next to one unpaged list,
#  - list and get throughput with protobuf responses next to the same requests with JSON,
# each printed as a ratio. Every request goes over one keep-alive TLS connection to `daas up`.
# Needs only python3 (standard library). N=2000 for a quick run; DAAS_BIN=path skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
GETS=${GETS:-2000}
if [ -n "${DAAS_BIN:-}" ]; then BIN=$DAAS_BIN; else cargo build --release -q -p daas; BIN=$PWD/target/release/daas; fi
T=$(mktemp -d)
UP_PID=""
cleanup() {
  set +e
  [ -n "$UP_PID" ] && { kill "$UP_PID"; wait "$UP_PID"; }
  rm -rf "$T"
}
trap cleanup EXIT
"$BIN" up --no-agent --data-dir "$T/m" --listen 127.0.0.1:0 --chain-listen 127.0.0.1:0 > "$T/up.log" 2>&1 & UP_PID=$!
for _ in $(seq 300); do [ -f "$T/m/kubeconfig.yaml" ] && break; sleep 0.1; done
sleep 1
N=$N GETS=$GETS python3 - "$T/m/kubeconfig.yaml" <<'PY'
import base64, http.client, json, os, re, ssl, sys, tempfile, threading, time

cfg = open(sys.argv[1]).read()
server = re.search(r"server: https://([^\s]+)", cfg).group(1)
host, port = server.rsplit(":", 1)
ca = base64.b64decode(re.search(r"certificate-authority-data: (\S+)", cfg).group(1))
token = re.search(r"token: (\S+)", cfg).group(1)
caf = tempfile.NamedTemporaryFile(delete=False, suffix=".pem")
caf.write(ca); caf.close()
ctx = ssl.create_default_context(cafile=caf.name)
ctx.check_hostname = False
N, GETS = int(os.environ["N"]), int(os.environ["GETS"])
NS = "bench"
JSON, PROTO = "application/json", "application/vnd.kubernetes.protobuf"

def conn():
    return http.client.HTTPSConnection(host, int(port), context=ctx, timeout=120)

def call(c, method, path, body=None, accept=JSON):
    h = {"Authorization": "Bearer " + token, "Accept": accept}
    if body is not None:
        h["Content-Type"] = "application/json"
        body = json.dumps(body)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
    return r, data

c = conn()
call(c, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})

def create(lo, hi):
    c = conn()
    for i in range(lo, hi):
        call(c, "POST", f"/api/v1/namespaces/{NS}/configmaps",
             {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}", "labels": {"bench": "list"}},
              "data": {"key": "v" * 64, "index": str(i)}})

t0 = time.perf_counter()
step = (N + 7) // 8
ths = [threading.Thread(target=create, args=(k, min(N, k + step))) for k in range(0, N, step)]
for t in ths: t.start()
for t in ths: t.join()
print(f"created {N} ConfigMaps in {time.perf_counter() - t0:.2f} s (8 clients)")

def full_list(accept):
    r, data = call(c, "GET", f"/api/v1/namespaces/{NS}/configmaps?labelSelector=bench%3Dlist", accept=accept)
    return r.getheader("Content-Type"), len(data)

def paged_list(limit):
    items, cont, pages = 0, "", 0
    while True:
        q = f"?labelSelector=bench%3Dlist&limit={limit}" + (f"&continue={cont}" if cont else "")
        _, data = call(c, "GET", f"/api/v1/namespaces/{NS}/configmaps{q}")
        body = json.loads(data)
        items += len(body["items"]); pages += 1
        cont = body["metadata"].get("continue", "")
        if not cont:
            return items, pages

def timed(f, reps):
    f()  # warm
    t0 = time.perf_counter()
    for _ in range(reps): out = f()
    return (time.perf_counter() - t0) / reps, out

REPS = 5
tp, (items, pages) = timed(lambda: paged_list(500), REPS)
tf, (ct, size) = timed(lambda: full_list(JSON), REPS)
assert items == N, f"paged list saw {items} of {N} items"
print(f"paged list limit=500: {items} items in {pages} pages, {tp*1000:.1f} ms per full walk")
print(f"unpaged list (JSON):  {tf*1000:.1f} ms ({size/1e6:.1f} MB)")
print(f"ratio paged/unpaged:  {tp/tf:.2f}")

tpj, (ctj, sj) = timed(lambda: full_list(JSON), REPS)
tpp, (ctp, sp) = timed(lambda: full_list(PROTO), REPS)
print(f"list JSON:     {tpj*1000:.1f} ms, {sj/1e6:.2f} MB, Content-Type {ctj}")
print(f"list protobuf: {tpp*1000:.1f} ms, {sp/1e6:.2f} MB, Content-Type {ctp}")
print(f"ratio list throughput protobuf/JSON: {tpj/tpp:.2f}  (size ratio {sp/sj:.2f})")

def gets(accept):
    t0 = time.perf_counter()
    for i in range(GETS):
        r, _ = call(c, "GET", f"/api/v1/namespaces/{NS}/configmaps/cm-{i % N:05d}", accept=accept)
    return GETS / (time.perf_counter() - t0), r.getheader("Content-Type")

gets(JSON)
gj, ctj = gets(JSON)
gp, ctp = gets(PROTO)
print(f"get JSON:     {gj:.0f}/s ({ctj})")
print(f"get protobuf: {gp:.0f}/s ({ctp})")
print(f"ratio get throughput protobuf/JSON: {gp/gj:.2f}")
PY
