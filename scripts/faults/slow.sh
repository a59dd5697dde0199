#!/usr/bin/env bash
# Fault (c) of issue #13: a backend that answers one byte per second. Route /slow goes to it,
# route /echo to a normal echo backend. While handshakes run back to back on /echo, CLIENTS
# clients at a time upgrade on /slow. Shows the status and time of every /slow answer, whether
# /echo kept its latency, whether wsgate let go of the slow backend's connections (the backend
# counts them) and wsgate's open connections, and the warn/error lines.
#
#   scripts/faults/slow.sh        # BEFORE=10 DURING=25 AFTER=10 CLIENTS=20
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BEFORE=${BEFORE:-10}; DURING=${DURING:-25}; AFTER=${AFTER:-10}; CLIENTS=${CLIENTS:-20}
BE=$(free_port); SLOW=$(free_port); PORT=$(free_port); ADMIN=$(free_port)
cat >"$work/gw.yaml" <<YAML
listeners:
  - { name: public, bind: "127.0.0.1:$PORT", tls: { certificates: [ { cert: $CERT, key: $KEY } ] } }
admin: { bind: "127.0.0.1:$ADMIN" }
routes: [ { path: /echo, pool: echo }, { path: /slow, pool: slow } ]
pools:
  echo: { backends: [ { url: "ws://127.0.0.1:$BE" } ] }
  slow: { backends: [ { url: "ws://127.0.0.1:$SLOW" } ] }
YAML
echo_backend be "$BE"
start slow python3 "$FAULTS/slow_backend.py" "$SLOW"; wait_port "$SLOW"
wsgate gw "$work/gw.yaml"; wait_port "$PORT"; wait_port "$ADMIN"
start_watch 'wsgate_connections_open'
# One slow client: upgrade on /slow, record "start_s status seconds".
slow_client() {
    local t; t=$(now)
    local r
    r=$(curl -ks --http1.1 --max-time 60 -o /dev/null -w '%{http_code} %{time_total}' \
        -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
        -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "https://127.0.0.1:$PORT/slow") || true
    echo "$t $r" >>"$work/slow.txt"
}
slow_loop() { while [ ! -f "$work/slow-stop" ]; do slow_client; done; }
mark before
start_load "wss://127.0.0.1:$PORT/echo"
sleep "$BEFORE"
mark during
for i in $(seq 1 "$CLIENTS"); do slow_loop & echo $! >"$work/slowc$i.pid"; done
sleep "$DURING"
touch "$work/slow-stop"
mark after
for i in $(seq 1 "$CLIENTS"); do wait "$(pid_of "slowc$i")" 2>/dev/null || true; rm -f "$work/slowc$i.pid"; done
sleep "$AFTER"
stop_load
echo; echo "## slow backend (one byte per second; $CLIENTS clients at a time on /slow)"; echo
report after
echo; echo "/slow answers (status: count, min/median/max seconds):"
awk '{n[$2]++; t[$2]=t[$2] " " $3} END {for (s in n) print s, n[s], t[s]}' "$work/slow.txt" |
    while read -r s c rest; do
        echo "  $s: $c, $(echo "$rest" | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {printf "%s / %s / %s s", a[1], a[int((NR+1)/2)], a[NR]}')"
    done
echo; echo "slow backend's own count (open now / accepted), sampled each second:"
awk 'NR % 5 == 1' "$work/slow.log" | tail -n 12 | sed 's/^/  /'
echo "  last: $(tail -n 1 "$work/slow.log")"
echo; echo "wsgate_connections_open over time (changes):"; changes 'wsgate_connections_open' | tail -n 25
echo; echo "phase marks:"; cat "$work/phases"
