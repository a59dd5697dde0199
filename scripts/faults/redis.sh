#!/usr/bin/env bash
# Fault (e) of issue #13: the fleet's Redis goes down, comes back, then is restarted at once (a
# bounce), while handshakes run back to back on a route whose rate limit and per-IP cap are
# `scope: fleet` (so every handshake asks Redis), and 10 tunnels echo once a second.
#
#   scripts/faults/redis.sh allow     # or: deny  (cluster.on_error)
#   BEFORE=10 DOWN=15 AFTER=15 BOUNCED=10 scripts/faults/redis.sh deny
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ON_ERROR=${1:?allow or deny}
BEFORE=${BEFORE:-10}; DOWN=${DOWN:-15}; AFTER=${AFTER:-15}; BOUNCED=${BOUNCED:-10}
BE=$(free_port); RP=$(free_port); PORT=$(free_port); ADMIN=$(free_port)
cat >"$work/gw.yaml" <<YAML
listeners:
  - { name: public, bind: "127.0.0.1:$PORT", tls: { certificates: [ { cert: $CERT, key: $KEY } ] } }
admin: { bind: "127.0.0.1:$ADMIN" }
cluster: { redis: "redis://127.0.0.1:$RP/0", prefix: "faults:", instance: gw-faults, timeout: 50ms, on_error: $ON_ERROR }
limits: { per_ip: { handshakes: "100000/s", burst: 100000, max_connections: 100000, scope: fleet } }
routes:
  - { path: /, pool: echo, rate: { handshakes: "100000/s", burst: 100000, scope: fleet } }
pools: { echo: { backends: [ { url: "ws://127.0.0.1:$BE" } ] } }
YAML
redis_up() {
    start redis redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --daemonize no
    wait_port "$RP"
}
echo_backend be "$BE"; redis_up
wsgate gw "$work/gw.yaml"; wait_port "$PORT"; wait_port "$ADMIN"
start_watch 'wsgate_redis_up'
URL="wss://127.0.0.1:$PORT/echo"
mark before
start tunnels python3 "$FAULTS/tunnels.py" "$URL" 10 $((BEFORE + DOWN + AFTER + BOUNCED)) 1 2
start_load "$URL"
sleep "$BEFORE"
metrics >"$work/m-before.prom"
mark down
stop redis
sleep "$DOWN"
metrics >"$work/m-down.prom"
mark after
redis_up
sleep "$AFTER"
mark bounced
stop redis; redis_up
sleep "$BOUNCED"
stop_load
wait "$(pid_of tunnels)" 2>/dev/null || true
metrics >"$work/m-end.prom"
echo; echo "## Redis down, back, bounced (cluster.on_error: $ON_ERROR)"; echo
report after
echo; echo "tunnels (10, opened in 'before', echo once a second):"; tail -n 1 "$work/tunnels.log"
echo; echo "wsgate_redis_up changes (from /metrics every 0.5 s):"; changes 'wsgate_redis_up'
echo; echo "fleet decisions and Redis errors at the end of before / down / the run:"
for f in before down end; do
    echo "  $f: $(grep -E '^wsgate_(fleet_decisions|redis_errors)_total' "$work/m-$f.prom" | grep -v ' 0$' | tr '\n' ' ')"
done
echo; echo "phase marks:"; cat "$work/phases"
