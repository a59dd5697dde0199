#!/usr/bin/env bash
# Fault (d) of issue #13: the JWKS URL of a route with `auth.jwt` goes down (connection
# refused), then serves garbage, then a good set again (with a new key k2 beside k1). Handshakes
# with a k1 token run back to back the whole time; in the last phase a k2 token is tried every
# 0.5 s until it is accepted (that is when wsgate has the new set). `refresh: 10s` (the least).
# Near the end of the down phase wsgate is reloaded (SIGHUP, same file), as a certificate swap
# or an unrelated edit would do while the identity provider is out.
#
#   scripts/faults/jwks.sh          # BEFORE=12 DOWN=25 RELOADED=10 GARBAGE=25 AFTER=25
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BEFORE=${BEFORE:-12}; DOWN=${DOWN:-25}; RELOADED=${RELOADED:-10}; GARBAGE=${GARBAGE:-25}; AFTER=${AFTER:-25}
BE=$(free_port); JW=$(free_port); PORT=$(free_port); ADMIN=$(free_port)
mkdir -p "$work/jwks"; python3 "$FAULTS/jwt_keys.py" "$work/jwks"
cp "$work/jwks/good.json" "$work/jwks/serve"
cat >"$work/gw.yaml" <<YAML
listeners:
  - { name: public, bind: "127.0.0.1:$PORT", tls: { certificates: [ { cert: $CERT, key: $KEY } ] } }
admin: { bind: "127.0.0.1:$ADMIN" }
routes:
  - path: /
    pool: echo
    auth: { jwt: { keys: [ { jwks_url: "http://127.0.0.1:$JW/jwks.json", refresh: 10s } ] } }
pools: { echo: { backends: [ { url: "ws://127.0.0.1:$BE" } ] } }
YAML
echo_backend be "$BE"
jwks_up() { start jwks python3 "$FAULTS/jwks_server.py" "$JW" "$work/jwks"; wait_port "$JW"; }
jwks_up
wsgate gw "$work/gw.yaml"; wait_port "$PORT"; wait_port "$ADMIN"
URL="wss://127.0.0.1:$PORT/"
one() {  # one handshake with token $1: prints ok or the error kinds
    "$B/wsload" handshake --url "$URL" --insecure --total 1 --concurrency 1 --timeout-ms 4000 \
        --max-secs 10 --threads 1 --header "Authorization:Bearer $(cat "$work/jwks/$1")" |
        tail -n 1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print("ok" if r["ok"] else r["errors"])'
}
echo "k2 token before the rotation: $(one token-k2) (expected: refused, 401)"
mark before
start_load "$URL" --header "Authorization:Bearer $(cat "$work/jwks/token-k1")"
sleep "$BEFORE"
mark down
stop jwks; cat "$work/jwks.log" >>"$work/jwks-all.log"
sleep "$DOWN"
mark down-reloaded
kill -HUP "$(pid_of gw)"   # a reload (same file) while the URL is still down
sleep "$RELOADED"
mark garbage
cp "$work/jwks/garbage.json" "$work/jwks/serve"; jwks_up
sleep "$GARBAGE"
mark after
cp "$work/jwks/rotated.json" "$work/jwks/serve"
t_after=$(now); k2=""
for _ in $(seq 1 $((AFTER * 2))); do
    r=$(one token-k2)
    if [ "$r" = ok ]; then k2="k2 token accepted $(python3 -c "print(f'{$(now)-$t_after:.1f}')") s after the good set came back"; break; fi
    sleep 0.5
done
sleep "$(python3 -c "print(max(0, $AFTER - ($(now) - $t_after)))")"
stop_load
cat "$work/jwks.log" >>"$work/jwks-all.log"
echo; echo "## JWKS down, then garbage, then good again (refresh: 10s)"; echo
report after
echo; echo "${k2:-k2 token never accepted within $AFTER s}"
echo; echo "JWKS fetches by phase (the server's log; none while it was down):"
python3 - "$work/phases" "$work/jwks-all.log" "$T0" <<'PY'
import sys
phases = [(float(l.split()[0]), l.split()[2]) for l in open(sys.argv[1])]
t0 = float(sys.argv[3])
counts = {}
for line in open(sys.argv[2]):
    t = float(line.split()[0]) - t0
    name = [p for s, p in phases if t >= s][-1] if any(t >= s for s, _ in phases) else "start"
    counts.setdefault(name, []).append(round(t, 1))
for name, ts in counts.items():
    print(f"  {name}: {len(ts)} at {ts}")
PY
echo; echo "phase marks:"; cat "$work/phases"
