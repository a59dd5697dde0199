#!/usr/bin/env bash
# Handshake cost of fleet-wide limits (issue #11), in ONE run, interleaved:
#   local   JWT ES256 + route rate + per-IP rate and cap + per-subject cap, all `scope: local`
#   fleet   the same with `scope: fleet` on the route rate, per_ip and per_subject, and a
#           `cluster:` block pointing at a redis-server this script starts on loopback
# Limits are set high enough never to refuse: the cost of asking Redis is what is measured.
# Round trips per handshake are read from each wsgate's /metrics (admin listener) before and
# after every measured run: `wsgate_redis_call_duration_seconds_count` for the calls a
# handshake waits for (`admit`, `subject`) and, separately, the background ones (heartbeat,
# touch, register, release, publish, fleet), divided by the `upgraded` handshakes.
# A serial pass (concurrency 1) per config and rep gives the latency without queueing.
# Writes benches/results/fleet-<date>.md. Needs the wsbench harness (../shared/wsbench) and
# redis-server on PATH.
#
#   benches/fleet.sh            # REPS=3 HS_TOTAL=4000 HS_CONC=50 LAT_TOTAL=300
#   REPS=1 HS_TOTAL=200 LAT_TOTAL=50 OUT=/tmp/fleet-dry.md benches/fleet.sh   # dry run
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WSBENCH="$(cd "${WSBENCH:-$here/../shared/wsbench}" && pwd)"
REPS=${REPS:-3}; HS_TOTAL=${HS_TOTAL:-4000}; HS_CONC=${HS_CONC:-50}; LAT_TOTAL=${LAT_TOTAL:-300}
SETTLE=${SETTLE:-0.5}   # seconds between the end of a run and the "after" scrape (late releases)
out="${OUT:-$here/benches/results/fleet-${STAMP:-$(date -u +%Y-%m-%d)}.md}"
work="$(mktemp -d)"
cleanup() {
    for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$here" && cargo build --release --bin wsgate --example mint_token)
    (cd "$WSBENCH" && cargo build --release)
fi
B="$WSBENCH/target/release"
[ -f "$WSBENCH/certs/cert.pem" ] || "$B/gen-cert" "$WSBENCH/certs" >/dev/null

BUSY=$(pgrep -x cargo >/dev/null || pgrep rustc >/dev/null && echo yes || echo no)
[ "$BUSY" = yes ] && echo "warning: cargo/rustc is running: numbers will be noisy" >&2
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

BACKEND_PORT=${BACKEND_PORT:-9012}
REDIS_PORT=${REDIS_PORT:-$(free_port)}
declare -A PORT=([local]=8471 [fleet]=8472) ADMIN=([local]=9471 [fleet]=9472)
CONFIGS=(local fleet)

"$B/echo-backend" --listen "127.0.0.1:$BACKEND_PORT" --workers 1 --max-secs 1800 >"$work/backend.log" 2>&1 &
echo $! >"$work/backend.pid"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    >"$work/redis.log" 2>&1 &
echo $! >"$work/redis.pid"
wait_port "$REDIS_PORT"
REDIS_PID=$(cat "$work/redis.pid")
REDIS_VERSION=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')

TOKEN=$("$here/target/release/examples/mint_token" ES256 "$work")
jwt="{ jwt: { keys: [ { file: $work/ES256.pem, alg: ES256 } ], issuer: wsgate-bench, audience: bench, require: { scope: chat } } }"
for name in "${CONFIGS[@]}"; do
    scope=""; cluster=""
    if [ "$name" = fleet ]; then
        scope=", scope: fleet"
        cluster="cluster: { redis: \"redis://127.0.0.1:$REDIS_PORT/0\", prefix: \"bench:\", instance: gw-bench, timeout: 50ms }"
    fi
    cat >"$work/$name.yaml" <<YAML
listeners:
  - name: bench
    bind: "127.0.0.1:${PORT[$name]}"
    tls: { certificates: [ { cert: $WSBENCH/certs/cert.pem, key: $WSBENCH/certs/key.pem } ], min_version: "1.3" }
admin: { bind: "127.0.0.1:${ADMIN[$name]}" }
$cluster
limits: { per_ip: { handshakes: "1000000/s", burst: 1000000, max_connections: 100000$scope } }
routes:
  - path: /echo
    pool: echo
    auth: $jwt
    rate: { handshakes: "1000000/s", burst: 1000000$scope }
    per_subject: { max_sessions: 100000$scope }
pools: { echo: { backends: [ { url: "ws://127.0.0.1:$BACKEND_PORT" } ] } }
YAML
    "$here/target/release/wsgate" check --config "$work/$name.yaml" >/dev/null
    WSGATE_LOG=warn "$here/target/release/wsgate" run --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
    echo $! >"$work/$name.pid"
done
for name in "${CONFIGS[@]}"; do wait_port "${PORT[$name]}"; wait_port "${ADMIN[$name]}"; done
sleep 1   # let the fleet instance register and send its first heartbeat

scrape() { curl -fsS "http://127.0.0.1:${ADMIN[$1]}/metrics" >"$2"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# One measured run: $1 config, $2 rep, $3 kind (load|serial), $4 total, $5 concurrency.
# Appends one JSON object to $work/runs.jsonl.
measure() {
    local name=$1 rep=$2 kind=$3 total=$4 conc=$5
    local pid; pid=$(cat "$work/$name.pid")
    scrape "$name" "$work/before.prom"
    local c0 r0 c1 r1 line
    c0=$(cpu_ticks "$pid"); r0=$(cpu_ticks "$REDIS_PID")
    line=$("$B/wsload" handshake --url "wss://localhost:${PORT[$name]}/echo" --insecure --sni localhost \
        --total "$total" --concurrency "$conc" --header "Authorization:Bearer $TOKEN" --max-secs 120 | tail -n 1)
    sleep "$SETTLE"
    c1=$(cpu_ticks "$pid"); r1=$(cpu_ticks "$REDIS_PID")
    scrape "$name" "$work/after.prom"
    python3 - "$work/before.prom" "$work/after.prom" "$line" "$name" "$rep" "$kind" \
        "$c0" "$c1" "$r0" "$r1" "$TCK" >>"$work/runs.jsonl" <<'PY'
import json, re, sys
before, after, line, name, rep, kind, c0, c1, r0, r1, tck = sys.argv[1:]
def load(path):
    out = {}
    for l in open(path):
        if l.startswith("#") or not l.strip():
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', l)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out
a, b = load(after), load(before)
def total(d, metric, **want):
    return sum(v for lab, v in d.get(metric, []) if all(lab.get(k) == x for k, x in want.items()))
def delta(metric, **want):
    return total(a, metric, **want) - total(b, metric, **want)
calls = {}
for lab, _ in a.get("wsgate_redis_call_duration_seconds_count", []):
    c = lab.get("call", "?")
    calls[c] = delta("wsgate_redis_call_duration_seconds_count", call=c)
sums = {c: delta("wsgate_redis_call_duration_seconds_sum", call=c) for c in calls}
decisions = {}
for lab, _ in a.get("wsgate_fleet_decisions_total", []):
    k = f'{lab.get("check")}/{lab.get("outcome")}'
    decisions[k] = delta("wsgate_fleet_decisions_total", check=lab.get("check"), outcome=lab.get("outcome"))
outcomes = {}
for lab, _ in a.get("wsgate_handshakes_total", []):
    o = lab.get("outcome")
    outcomes[o] = outcomes.get(o, 0) + delta("wsgate_handshakes_total", route=lab.get("route"), outcome=o)
redis_errors = {lab.get("kind"): delta("wsgate_redis_errors_total", kind=lab.get("kind"))
                for lab, _ in a.get("wsgate_redis_errors_total", [])}
w = json.loads(line)
tck = int(tck)
print(json.dumps({
    "config": name, "rep": int(rep), "kind": kind,
    "total": w["total"], "concurrency": w["concurrency"], "ok": w["ok"],
    "hs_per_s": w["handshakes_per_s"], "latency_ms": w["latency_ms"],
    "errors_total": w["errors_total"], "errors": w["errors"],
    "proxy_cpu_s": (int(c1) - int(c0)) / tck, "redis_cpu_s": (int(r1) - int(r0)) / tck,
    "upgraded": outcomes.get("upgraded", 0), "outcomes": {k: v for k, v in outcomes.items() if v},
    "calls": {k: v for k, v in calls.items() if v}, "call_sum_s": {k: v for k, v in sums.items() if v},
    "decisions": {k: v for k, v in decisions.items() if v},
    "redis_errors": {k: v for k, v in redis_errors.items() if v},
}))
PY
    tail -n 1 "$work/runs.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); up = r["upgraded"] or 1
adm = sum(v for k, v in r["calls"].items() if k in ("admit", "subject"))
print("%-5s rep %d %-6s: %.0f hs/s, p50 %s ms, upgraded %d, admission RT/hs %.3f, calls %s, errors %d" % (
    r["config"], r["rep"], r["kind"], r["hs_per_s"], r["latency_ms"].get("p50"), r["upgraded"], adm / up,
    r["calls"], r["errors_total"]))'
}

for rep in $(seq 1 "$REPS"); do
    for name in "${CONFIGS[@]}"; do
        measure "$name" "$rep" load "$HS_TOTAL" "$HS_CONC"
    done
    for name in "${CONFIGS[@]}"; do
        measure "$name" "$rep" serial "$LAT_TOTAL" 1
    done
done
scrape local "$work/final-local.prom"
scrape fleet "$work/final-fleet.prom"
grep -E '^wsgate_(fleet_decisions_total|redis_errors_total|redis_up)' "$work/final-fleet.prom" >"$work/final-fleet.txt" || true
redis-cli -p "$REDIS_PORT" info commandstats >"$work/redis-commandstats.txt" 2>/dev/null || true

python3 - "$work/runs.jsonl" "$out" "$work/final-fleet.txt" "$work/redis-commandstats.txt" <<PY
import json, os, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
out, final, cstats = sys.argv[2], open(sys.argv[3]).read().strip(), open(sys.argv[4]).read()
CONFIGS = ["local", "fleet"]
ADMISSION = ("admit", "subject")
def adm(r): return sum(v for k, v in r["calls"].items() if k in ADMISSION)
def bg(r): return sum(v for k, v in r["calls"].items() if k not in ADMISSION)
def per_k(x, r): return x * 1e6 / r["upgraded"] if r["upgraded"] else float("nan")  # CPU-s -> CPU-ms / 1000 hs
def med(xs): return statistics.median(xs) if xs else float("nan")
L = []
p = L.append
p("# Fleet-wide limits: handshake cost with Redis (same run, interleaved) — #11")
p("")
p("Command: \`benches/fleet.sh\` (REPS=$REPS, $HS_TOTAL handshakes at concurrency $HS_CONC, then $LAT_TOTAL serial"
  " handshakes at concurrency 1, per config and rep; TLS 1.3 full handshakes, JWT ES256).")
p("")
p("- **local**: route \`auth.jwt\` (ES256, issuer/audience/require), route \`rate\` 1000000/s burst 1000000,"
  " \`per_subject.max_sessions\` 100000, \`limits.per_ip\` 1000000/s burst 1000000 + \`max_connections\` 100000,"
  " all \`scope: local\`.")
p("- **fleet**: the same with \`scope: fleet\` on the route rate, \`per_ip\` and \`per_subject\`, and"
  " \`cluster: { redis: redis://127.0.0.1:PORT/0, prefix: \"bench:\", instance: gw-bench, timeout: 50ms }\`;"
  " redis-server $REDIS_VERSION on loopback, same box, no persistence.")
p("- Round trips (RT) from each wsgate's \`/metrics\`, delta over each run:"
  " \`wsgate_redis_call_duration_seconds_count\`; *admission* = calls \`admit\` + \`subject\` (the ones a"
  " handshake waits for), *background* = every other call; both divided by the"
  " \`wsgate_handshakes_total{outcome=\"upgraded\"}\` delta. Proxy and redis CPU from /proc (utime+stime).")
p(f"- Box: {os.cpu_count()} CPUs shared by the load generator, wsgate, the echo backend and redis-server;"
  f" cargo/rustc running at start: $BUSY.")
p("")
p("## Load runs ($HS_TOTAL handshakes, concurrency $HS_CONC)")
p("")
p("| config | rep | handshakes/s | p50 ms | p99 ms | proxy CPU-ms / 1000 hs | redis CPU-ms / 1000 hs | admission RT / hs | background RT / hs | mean admission RT µs | upgraded | errors |")
p("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in [r for r in runs if r["kind"] == "load"]:
    a = adm(r); s = sum(v for k, v in r["call_sum_s"].items() if k in ADMISSION)
    mean_us = f"{s / a * 1e6:.0f}" if a else "–"
    p(f"| {r['config']} | {r['rep']} | {r['hs_per_s']:.0f} | {r['latency_ms'].get('p50')} | {r['latency_ms'].get('p99')}"
      f" | {per_k(r['proxy_cpu_s'], r):.0f} | {per_k(r['redis_cpu_s'], r):.0f}"
      f" | {a / r['upgraded']:.3f} | {bg(r) / r['upgraded']:.3f} | {mean_us} | {r['upgraded']:.0f} | {r['errors_total']} |")
p("")
p("Medians over the reps:")
p("")
p("| config | handshakes/s | vs local | p50 ms | p99 ms | proxy CPU-ms / 1000 hs | redis CPU-ms / 1000 hs | proxy+redis CPU-ms / 1000 hs | admission RT / hs | background RT / hs |")
p("|---|---|---|---|---|---|---|---|---|---|")
M = {}
for c in CONFIGS:
    rs = [r for r in runs if r["kind"] == "load" and r["config"] == c]
    M[c] = dict(
        rate=med([r["hs_per_s"] for r in rs]),
        p50=med([r["latency_ms"].get("p50", float("nan")) for r in rs]),
        p99=med([r["latency_ms"].get("p99", float("nan")) for r in rs]),
        cpu=med([per_k(r["proxy_cpu_s"], r) for r in rs]),
        rcpu=med([per_k(r["redis_cpu_s"], r) for r in rs]),
        both=med([per_k(r["proxy_cpu_s"] + r["redis_cpu_s"], r) for r in rs]),
        adm=med([adm(r) / r["upgraded"] for r in rs]),
        bg=med([bg(r) / r["upgraded"] for r in rs]),
    )
for c in CONFIGS:
    m = M[c]
    p(f"| {c} | {m['rate']:.0f} | {m['rate'] / M['local']['rate']:.2f}x | {m['p50']} | {m['p99']} | {m['cpu']:.0f}"
      f" | {m['rcpu']:.0f} | {m['both']:.0f} | {m['adm']:.3f} | {m['bg']:.3f} |")
p("")
p(f"**Ratio fleet / local (median handshakes/s): {M['fleet']['rate'] / M['local']['rate']:.2f}**;"
  f" proxy CPU per handshake fleet / local: {M['fleet']['cpu'] / M['local']['cpu']:.2f}."
  f" Proxy+redis CPU per handshake fleet / local: {M['fleet']['both'] / M['local']['both']:.2f}."
  f" Admission round trips per upgraded handshake (fleet, median): **{M['fleet']['adm']:.3f}** (target ≤ 2).")
p("")
p("## Serial latency ($LAT_TOTAL handshakes, concurrency 1: no queueing)")
p("")
p("| config | rep | handshakes/s | p50 ms | p90 ms | p99 ms | max ms | admission RT / hs | mean admission RT µs | errors |")
p("|---|---|---|---|---|---|---|---|---|---|")
for r in [r for r in runs if r["kind"] == "serial"]:
    l = r["latency_ms"]; a = adm(r); s = sum(v for k, v in r["call_sum_s"].items() if k in ADMISSION)
    mean_us = f"{s / a * 1e6:.0f}" if a else "–"
    p(f"| {r['config']} | {r['rep']} | {r['hs_per_s']:.0f} | {l.get('p50')} | {l.get('p90')} | {l.get('p99')} | {l.get('max')}"
      f" | {a / r['upgraded']:.3f} | {mean_us} | {r['errors_total']} |")
S = {c: med([r["latency_ms"].get("p50", float("nan")) for r in runs if r["kind"] == "serial" and r["config"] == c]) for c in CONFIGS}
p("")
p(f"Median serial p50: local {S['local']} ms, fleet {S['fleet']} ms (+{(S['fleet'] - S['local']) * 1000:.0f} µs).")
p("")
p("## Redis calls by name (fleet, all runs together)")
p("")
p("| call | kind | calls | per upgraded handshake | mean µs |")
p("|---|---|---|---|---|")
fl = [r for r in runs if r["config"] == "fleet"]
up = sum(r["upgraded"] for r in fl)
names = sorted({k for r in fl for k in r["calls"]}, key=lambda k: (k not in ADMISSION, k))
for k in names:
    n = sum(r["calls"].get(k, 0) for r in fl); s = sum(r["call_sum_s"].get(k, 0) for r in fl)
    p(f"| {k} | {'admission' if k in ADMISSION else 'background'} | {n:.0f} | {n / up:.3f} | {s / n * 1e6:.0f} |")
p(f"| (upgraded handshakes) | | {up:.0f} | | |")
lo = [r for r in runs if r["config"] == "local"]
p("")
p(f"The local instance made {sum(sum(r['calls'].values()) for r in lo):.0f} Redis calls (it has no \`cluster:\`).")
p("")
p("Fleet decisions and Redis errors (fleet instance, whole process lifetime, final scrape):")
p("")
p("\`\`\`")
p(final or "(no series)")
p("\`\`\`")
other = {}
for r in runs:
    for k, v in r["outcomes"].items():
        if k != "upgraded":
            other[f"{r['config']}/{k}"] = other.get(f"{r['config']}/{k}", 0) + v
p("")
p(f"Handshake outcomes other than \`upgraded\` during the measured runs: {other or 'none'};"
  f" wsload errors: {sum(r['errors_total'] for r in runs)}.")
cmds = [l for l in cstats.splitlines() if l.startswith("cmdstat_")]
if cmds:
    p("")
    p("redis-server \`INFO commandstats\` at the end (whole run, fleet instance only; EVALSHA = one script call"
      " inside a pipeline, so several per round trip are possible):")
    p("")
    p("\`\`\`")
    L.extend(cmds)
    p("\`\`\`")
open(out, "w").write("\n".join(L) + "\n")
PY
echo "wrote $out"
