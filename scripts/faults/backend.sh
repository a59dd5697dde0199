#!/usr/bin/env bash
# Faults (a) and (b) of issue #13: one of two echo backends in a pool is SIGKILLed (then started
# again) or SIGSTOPped (then SIGCONTed) while handshakes run back to back and 20 tunnels echo once
# a second. Prints, per phase, what the clients saw, wsgate's warn/error lines, which backend each
# session went to, and when wsgate marked the backend down and up again.
#
#   scripts/faults/backend.sh kill     # or: stop
#   BEFORE=10 DURING=20 AFTER=20 HEALTH=1 scripts/faults/backend.sh stop
# HEALTH=0 leaves active checks out (passive ejection only).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MODE=${1:?kill or stop}
BEFORE=${BEFORE:-10}; DURING=${DURING:-20}; AFTER=${AFTER:-20}; HEALTH=${HEALTH:-1}
BA=$(free_port); BB=$(free_port); PORT=$(free_port); ADMIN=$(free_port)
health=""
[ "$HEALTH" = 1 ] && health="health: { interval: 1s, timeout: 500ms, rise: 2, fall: 2, check: { websocket: /health } }"
cat >"$work/gw.yaml" <<YAML
listeners:
  - { name: public, bind: "127.0.0.1:$PORT", tls: { certificates: [ { cert: $CERT, key: $KEY } ] } }
admin: { bind: "127.0.0.1:$ADMIN" }
routes: [ { path: /, pool: echo } ]
pools:
  echo:
    backends: [ { url: "ws://127.0.0.1:$BA" }, { url: "ws://127.0.0.1:$BB" } ]
    $health
    passive: { failures: 3, cooldown: 10s }
YAML
echo_backend a "$BA"; echo_backend b "$BB"
wsgate gw "$work/gw.yaml"; wait_port "$PORT"; wait_port "$ADMIN"
start_watch 'wsgate_backend_(up|tunnels_open)'
URL="wss://127.0.0.1:$PORT/echo"
mark before
start tunnels python3 "$FAULTS/tunnels.py" "$URL" 20 $((BEFORE + DURING + AFTER)) 1 2
start_load "$URL"
sleep "$BEFORE"
echo "tunnels per backend before the fault:"; metric wsgate_backend_tunnels_open
mark during
case $MODE in
    kill) kill -KILL "$(pid_of a)"; wait "$(pid_of a)" 2>/dev/null || true; rm -f "$work/a.pid" ;;
    stop) kill -STOP "$(pid_of a)" ;;
esac
sleep "$DURING"
mark after
case $MODE in
    kill) echo_backend a "$BA" ;;
    stop) kill -CONT "$(pid_of a)" ;;
esac
sleep "$AFTER"
stop_load
wait "$(pid_of tunnels)" 2>/dev/null || true
echo; echo "## backend $MODE (backend A = 127.0.0.1:$BA, B = 127.0.0.1:$BB; health checks: $HEALTH)"; echo
report after
echo; echo "tunnels (20, opened in 'before', echo once a second):"; tail -n 1 "$work/tunnels.log"
echo; echo "backend state changes (from /metrics every 0.5 s):"; changes 'wsgate_backend_up'
echo; echo "phase marks:"; cat "$work/phases"
