#!/usr/bin/env bash
# Soak runs for wsgate (#13): wss tunnels through wsgate to an echo backend while the config is
# changed and the certificate swapped under it. Loopback only; free ports picked at run time.
#
#   scripts/soak/run.sh soak       # 1 h, 9000 tunnels, 10 %/min churn, reload every 10 s, cert swap every 60 s
#   scripts/soak/run.sh reload1s   # 10 min, 1000 tunnels echoing every second, reload every second
#   scripts/soak/run.sh leak       # heaptrack on wsgate, cycles of 500 and 2000 connections
#
# Knobs (env): DURATION CONNS CHURN PERIOD RELOAD_EVERY CERT_EVERY CYCLES HEAPTRACK=1,
# CLIENTS (client processes sharing CONNS and CHURN), OPEN_EVERY (s between first opens), KEEPALIVE (the route's session keepalive),
# WSGATE (binary), ECHO_BACKEND (binary), OUT (results dir, default /tmp/soak/<mode>).
# Output in $OUT: samples.jsonl (client, one line per 10 s), wsgate.log, backend.log,
# reloader.log, metrics-end.txt, summary.json (scripts/soak/summarize.py).
set -euo pipefail
mode=${1:?usage: run.sh soak|reload1s|leak}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WSGATE=${WSGATE:-/work/bin/wsgate}
ECHO_BACKEND=${ECHO_BACKEND:-/work/shared/wsbench/target/release/echo-backend}
case "$mode" in
    soak) : "${DURATION:=3600}" "${CONNS:=9000}" "${CHURN:=900}" "${PERIOD:=25}" \
            "${RELOAD_EVERY:=10}" "${CERT_EVERY:=60}" "${CLIENTS:=2}" ;;
    reload1s) : "${DURATION:=600}" "${CONNS:=1000}" "${CHURN:=0}" "${PERIOD:=1}" \
            "${RELOAD_EVERY:=1}" "${CERT_EVERY:=0}" ;;
    leak) : "${CYCLES:=$(printf '500,2000,%.0s' $(seq 12) | sed 's/,$//')}" "${HEAPTRACK:=1}" "${RELOAD_EVERY:=0}" \
            "${CERT_EVERY:=0}" ;;
    *) echo "unknown mode $mode" >&2; exit 64 ;;
esac
OUT=${OUT:-/tmp/soak/$mode}
CLIENTS=${CLIENTS:-1}
# wsgate pings a tunnel silent for `interval` and cuts it without a Pong within `timeout`: a
# client process starved of CPU on a shared box must not look dead.
KEEPALIVE=${KEEPALIVE:-"{ interval: 20s, timeout: 30s }"}
rm -rf "$OUT"; mkdir -p "$OUT/cfg" "$OUT/certs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "port $1 never opened" >&2; return 1
}
GW_PORT=$(free_port); ADMIN_PORT=$(free_port); BE_PORT=$(free_port)

# A CA the client trusts; every swap issues a new leaf (new key) for localhost/127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=soak-ca \
    -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
gen=0
# New leaf in certs/..gen-N, then the `..data` symlink swapped by rename: cert and key change together.
swap_cert() {
    gen=$((gen + 1))
    local d="$OUT/certs/..gen-$gen"
    mkdir -p "$d"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout "$d/key.pem" -out "$d/req.csr" 2>/dev/null
    openssl x509 -req -in "$d/req.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" -days 2 \
        -set_serial "$gen" -out "$d/cert.pem" \
        -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n') 2>/dev/null
    ln -sfn "..gen-$gen" "$OUT/certs/..data.tmp"
    mv -T "$OUT/certs/..data.tmp" "$OUT/certs/..data"
    [ "$gen" -gt 3 ] && rm -rf "$OUT/certs/..gen-$((gen - 3))"
    return 0
}
swap_cert
ln -s ..data/cert.pem "$OUT/certs/cert.pem"; ln -s ..data/key.pem "$OUT/certs/key.pem"

# Config generation k: an extra route /extra-(k mod 20) on even k only, and a limit that changes every time, so
# each write is a real change and wsgate builds a new runtime.
write_config() {
    local k=$1 extra=""
    [ $((k % 2)) -eq 0 ] && extra="  - { path: /extra-$((k % 20)), pool: echo }"
    cat >"$OUT/cfg/.wsgate.yaml.tmp" <<YAML
# soak generation $k
listeners:
  - name: soak
    bind: "127.0.0.1:$GW_PORT"
    tls: { certificates: [ { cert: $OUT/certs/cert.pem, key: $OUT/certs/key.pem } ] }
admin: { bind: "127.0.0.1:$ADMIN_PORT" }
log: { format: json, level: info }
limits:
  max_request_headers: $((100 + k % 50))
  tunnel_idle_timeout: 10m
routes:
  - { path: /echo, pool: echo, session: { keepalive: $KEEPALIVE } }
$extra
pools: { echo: { backends: [ { url: "ws://127.0.0.1:$BE_PORT" } ] } }
YAML
    mv "$OUT/cfg/.wsgate.yaml.tmp" "$OUT/cfg/wsgate.yaml"
}
write_config 0
"$WSGATE" check --config "$OUT/cfg/wsgate.yaml" >/dev/null

"$ECHO_BACKEND" --listen "127.0.0.1:$BE_PORT" --workers 1 --read-buf 4096 \
    >"$OUT/backend.log" 2>&1 &
be_pid=$!; pids+=("$be_pid")
wrap=(env ${GW_ENV:-})  # GW_ENV: environment for wsgate alone, e.g. MALLOC_ARENA_MAX=2
[ "${HEAPTRACK:-0}" = 1 ] && wrap+=(heaptrack -o "$OUT/heaptrack.wsgate")
"${wrap[@]}" "$WSGATE" run --config "$OUT/cfg/wsgate.yaml" >"$OUT/wsgate.log" 2>&1 &
launcher=$!; pids+=("$launcher")
wait_port "$BE_PORT"; wait_port "$GW_PORT"
gw_pid=$launcher
if [ "${HEAPTRACK:-0}" = 1 ]; then gw_pid=$(pgrep -P "$launcher" -x wsgate || pgrep -n -x wsgate); fi
echo "wsgate pid $gw_pid port $GW_PORT admin $ADMIN_PORT backend $BE_PORT" | tee "$OUT/ports.txt"

# The reloader: a config change every RELOAD_EVERY s, a certificate swap every CERT_EVERY s
# (offset by half a reload period so the two are separate reloads).
reloader() {
    local k=0 next_cert=$((CERT_EVERY > 0 ? SECONDS + CERT_EVERY : -1)) half
    half=$(awk -v r="$RELOAD_EVERY" 'BEGIN { print r / 2 }')
    while :; do
        sleep "$RELOAD_EVERY"
        k=$((k + 1)); write_config "$k"
        echo "$(date -u +%T) config $k"
        if [ "$next_cert" -gt 0 ] && [ "$SECONDS" -ge "$next_cert" ]; then
            sleep "$half"; swap_cert; next_cert=$((next_cert + CERT_EVERY))
            echo "$(date -u +%T) cert $gen"
        fi
    done
}
if [ "$RELOAD_EVERY" != 0 ]; then reloader >"$OUT/reloader.log" 2>&1 &
    reloader_pid=$!; pids+=("$reloader_pid"); fi

args=(--url "wss://localhost:$GW_PORT/echo" --ca "$OUT/ca.pem")
if [ "$mode" = leak ]; then
    args+=(--cycles "$CYCLES" --period 3600 --hs-conc 50)
else
    args+=(--conns $((CONNS / CLIENTS)) --duration "$DURATION" --churn $((CHURN / CLIENTS))
           --period "$PERIOD" --open-every "${OPEN_EVERY:-0}")
fi
echo "$(date -u +%T) start: $CLIENTS x wsclient.py ${args[*]}" | tee "$OUT/start.txt"
# Client 1 samples wsgate and the backend into samples.jsonl; the others write samples-N.jsonl.
cpids=()
for i in $(seq 1 "$CLIENTS"); do
    if [ "$i" = 1 ]; then
        python3 "$here/wsclient.py" "${args[@]}" --watch "wsgate=$gw_pid" --watch "backend=$be_pid" \
            >"$OUT/samples.jsonl" 2>"$OUT/client.log" &
    else
        python3 "$here/wsclient.py" "${args[@]}" >"$OUT/samples-$i.jsonl" 2>"$OUT/client-$i.log" &
    fi
    cpids+=("$!"); pids+=("$!")
done
rc=0
for p in "${cpids[@]}"; do wait "$p" || rc=$?; done
echo "$(date -u +%T) client exit $rc" | tee -a "$OUT/start.txt"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$OUT/metrics-end.txt" || true
[ -n "${reloader_pid:-}" ] && kill "$reloader_pid" 2>/dev/null
kill -TERM "$gw_pid" 2>/dev/null || true
wait "$launcher" 2>/dev/null || true
kill "$be_pid" 2>/dev/null || true
wait 2>/dev/null || true; pids=()
python3 "$here/summarize.py" "$OUT" | tee "$OUT/summary.json"
if [ "${HEAPTRACK:-0}" = 1 ]; then
    for _ in $(seq 1 120); do ls "$OUT"/heaptrack.wsgate*.zst >/dev/null 2>&1 && break; sleep 1; done
    heaptrack_print -f "$OUT"/heaptrack.wsgate*.zst -l >"$OUT/heaptrack-print.txt" 2>&1 || true
    tail -6 "$OUT/heaptrack-print.txt" | tee "$OUT/heaptrack-summary.txt"
fi
