# Shared helpers for the fault scripts (issue #13); sourced, never run.
# Owns: the run's work dir and clean-up (every process started here is stopped by its PID),
# free loopback ports, bounded waits, the background handshake load, phase marks, /metrics
# reads and the per-phase summary (report.py). Does not own any fault: each <fault>.sh does.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FAULTS="$ROOT/scripts/faults"
WSGATE="${WSGATE:-/work/bin/wsgate}"
WSBENCH="$(cd "${WSBENCH:-$ROOT/../shared/wsbench}" && pwd)"
B="$WSBENCH/target/release"
[ -x "$WSGATE" ] || { echo "no wsgate binary at $WSGATE (set WSGATE=)" >&2; exit 1; }
[ -x "$B/wsload" ] || { echo "no wsload in $B (build $WSBENCH --release)" >&2; exit 1; }
# Load per run of wsload: small, so the box stays usable (another job may share it).
LOAD_TOTAL=${LOAD_TOTAL:-20}; LOAD_CONC=${LOAD_CONC:-4}; LOAD_PAUSE=${LOAD_PAUSE:-0.2}
LOAD_TIMEOUT_MS=${LOAD_TIMEOUT_MS:-4000}
work="$(mktemp -d /tmp/faults.XXXXXX)"
echo "work dir: $work" >&2
# A self-signed certificate for localhost/127.0.0.1, made for this run.
"$B/gen-cert" "$work/certs" >/dev/null
CERT="$work/certs/cert.pem"; KEY="$work/certs/key.pem"
T0=$(date +%s.%N)

now() { python3 -c "import time; print(f'{time.time()-$T0:.3f}')"; }
cleanup() {
    touch "$work/stop"
    for f in "$work"/*.pid; do
        [ -f "$f" ] || continue
        local p; p=$(cat "$f")
        kill -CONT "$p" 2>/dev/null || true
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {  # port [tenths of a second]
    for _ in $(seq 1 "${2:-100}"); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "port $1 never opened" >&2; return 1
}
port_closed() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# start NAME CMD...: run in the background, output to $work/NAME.log, PID in $work/NAME.pid.
start() {
    local name=$1; shift
    "$@" >"$work/$name.log" 2>&1 &
    echo $! >"$work/$name.pid"
}
pid_of() { cat "$work/$1.pid"; }
stop() { local p; p=$(pid_of "$1"); kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; rm -f "$work/$1.pid"; }
echo_backend() {  # NAME PORT
    start "$1" "$B/echo-backend" --listen "127.0.0.1:$2" --workers 1 --max-secs 900
    wait_port "$2"
}
# wsgate NAME CONFIG: JSON logs at info, so each line can be read by level and message.
wsgate() {
    "$WSGATE" check --config "$2" >/dev/null
    start "$1" env WSGATE_LOG="${WSGATE_LOG_LEVEL:-info}" "$WSGATE" run --config "$2" --log-format json
}
metrics() { curl -fsS --max-time 3 "http://127.0.0.1:$ADMIN/metrics"; }
# metric NAME_REGEX: the matching sample lines, without comments.
metric() { metrics | grep -E "^($1)" || true; }

# mark PHASE: a phase starts now (load runs and log lines are split by these marks).
mark() {
    local lines=0
    [ -f "$work/gw.log" ] && lines=$(wc -l <"$work/gw.log")
    echo "$(now) $lines $1" >>"$work/phases"
    echo "[$(now)s] phase: $1" >&2
}
# load_loop URL [wsload args...]: handshakes back to back until the run stops; one JSON per run
# with its start and end time in load.jsonl.
load_loop() {
    local url=$1; shift
    while [ ! -f "$work/stop" ]; do
        local t0 line
        t0=$(now)
        line=$("$B/wsload" handshake --url "$url" --insecure --total "$LOAD_TOTAL" \
            --concurrency "$LOAD_CONC" --timeout-ms "$LOAD_TIMEOUT_MS" --max-secs 30 --threads 1 "$@" \
            2>/dev/null | tail -n 1) || true
        [ -n "$line" ] || line='{"errors":{"wsload_failed":1},"errors_total":1}'
        echo "{\"t0\": $t0, \"t1\": $(now), \"run\": $line}" >>"$work/load.jsonl"
        sleep "$LOAD_PAUSE"
    done
}
start_load() { load_loop "$@" >/dev/null 2>&1 & echo $! >"$work/load.pid"; }
stop_load() { touch "$work/stop"; wait "$(pid_of load)" 2>/dev/null || true; rm -f "$work/load.pid"; }
# report TITLE [RECOVERY_PHASE]: per-phase load results and wsgate's warn/error lines.
report() { python3 "$FAULTS/report.py" "$work" "$@"; }
# watch REGEX: sample the matching /metrics lines every 0.5 s into metrics.log ("t line").
watch_loop() {
    while [ ! -f "$work/stop" ]; do
        local t; t=$(now)
        metric "$1" | sed "s/^/$t /" >>"$work/metrics.log" || true
        sleep 0.5
    done
}
start_watch() { watch_loop "$1" >/dev/null 2>&1 & echo $! >"$work/watch.pid"; }
# changes NAME_REGEX: when each matching series changed value (from metrics.log).
changes() {
    awk -v re="$1" '$2 ~ re { k=$2; if (!(k in last) || last[k] != $3) { print "  t=" $1 "s " k " = " $3; last[k]=$3 } }' "$work/metrics.log"
}
