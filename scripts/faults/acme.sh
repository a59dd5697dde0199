#!/usr/bin/env bash
# Fault (f) of issue #13: automatic certificates (ACME, TLS-ALPN-01 against a private pebble)
# while handshakes run on the listener, verified against pebble's root. Pebble issues
# 300-second certificates and wsgate renews 290 s before expiry, so a renewal is due ~10 s
# after each issue: the faults meet real renewals within seconds.
#   ca    the ACME directory unreachable (the relay in front of pebble stopped: refused)
#   full  the state directory full (a 256 KiB tmpfs filled up)
#   ro    the state directory read-only (the tmpfs remounted read-only)
# "full" and "ro" need root (mount); "ca" does not. After the fault, the run waits (bounded)
# for the next successful order.
#
#   scripts/faults/acme.sh ca        # BEFORE=25 FAULT=50 RECOVER_MAX=100
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MODE=${1:?ca, full or ro}
BEFORE=${BEFORE:-25}; FAULT=${FAULT:-50}; RECOVER_MAX=${RECOVER_MAX:-100}
LOAD_PAUSE=${LOAD_PAUSE_ACME:-0.5}
AP=$(free_port); MP=$(free_port); RELAY=$(free_port); PORT=$(free_port); ADMIN=$(free_port); BE=$(free_port)
state="$work/state"; mkdir -p "$state"
if [ "$MODE" != ca ]; then
    [ "$(id -u)" = 0 ] || { echo "$MODE needs root (a tmpfs mount)" >&2; exit 2; }
    mount -t tmpfs -o size=256k,mode=0700 tmpfs "$state"
    trap 'umount "$state" 2>/dev/null || umount -l "$state" 2>/dev/null || true; cleanup' EXIT
fi
cat >"$work/pebble.json" <<JSON
{ "pebble": { "listenAddress": "127.0.0.1:$AP", "managementListenAddress": "127.0.0.1:$MP",
  "certificate": "$CERT", "privateKey": "$KEY", "httpPort": $(free_port), "tlsPort": $PORT,
  "ocspResponderURL": "", "externalAccountBindingRequired": false,
  "certificateValidityPeriod": 300 } }
JSON
start pebble env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config "$work/pebble.json"
wait_port "$AP"; wait_port "$MP"
start relay python3 "$FAULTS/tcp_relay.py" "$RELAY" "$AP"; wait_port "$RELAY"
curl -fsS --cacert "$CERT" "https://localhost:$MP/roots/0" >"$work/root.pem"
cat >"$work/gw.yaml" <<YAML
listeners:
  - name: public
    bind: "127.0.0.1:$PORT"
    tls:
      acme: { domains: [localhost], email: ops@example.com, directory: "https://localhost:$RELAY/dir",
              ca: "$CERT", state_dir: "$state", renew_before: 290s }
admin: { bind: "127.0.0.1:$ADMIN" }
routes: [ { path: /, pool: echo } ]
pools: { echo: { backends: [ { url: "ws://127.0.0.1:$BE" } ] } }
YAML
echo_backend be "$BE"
wsgate gw "$work/gw.yaml"; wait_port "$PORT"; wait_port "$ADMIN"
orders_ok() { metric 'wsgate_acme_orders_total\{result="ok"' | awk '{print $2}'; }
for _ in $(seq 1 60); do [ "$(orders_ok)" = 1 ] && break; sleep 0.5; done
[ "$(orders_ok)" = 1 ] || { echo "no first certificate within 30 s"; tail -n 20 "$work/gw.log"; exit 1; }
start_watch 'wsgate_(acme_orders_total|certificate_expiry_days)'
serial_loop() {
    while [ ! -f "$work/stop" ]; do
        s=$(openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null 2>/dev/null |
            openssl x509 -noout -serial 2>/dev/null | cut -d= -f2) || true
        echo "$(now) ${s:-none}" >>"$work/serials"
        sleep 2
    done
}
serial_loop & echo $! >"$work/serials.pid"
mark before
start_load "wss://localhost:$PORT/" --ca "$work/root.pem" --sni localhost
sleep "$BEFORE"
mark fault
case $MODE in
    ca) stop relay ;;
    full) dd if=/dev/zero of="$state/fill" bs=4k 2>/dev/null || true; df -h "$state" | tail -n 1 ;;
    ro) mount -o remount,ro "$state" ;;
esac
ok_at_fault=$(orders_ok)
sleep "$FAULT"
mark after
case $MODE in
    ca) start relay python3 "$FAULTS/tcp_relay.py" "$RELAY" "$AP"; wait_port "$RELAY" ;;
    full) rm -f "$state/fill" ;;
    ro) mount -o remount,rw "$state" ;;
esac
ok_before_after=$(orders_ok); t_after=$(now); recovered=""
for _ in $(seq 1 $((RECOVER_MAX * 2))); do
    if [ "$(orders_ok)" != "$ok_before_after" ]; then
        recovered="next successful order $(python3 -c "print(f'{$(now)-$t_after:.1f}')") s after the fault ended"
        break
    fi
    sleep 0.5
done
sleep 5
stop_load
echo; echo "## ACME: $MODE"; echo
report after
echo; echo "${recovered:-no successful order within $RECOVER_MAX s after the fault ended}"
echo "orders ok when the fault began: $ok_at_fault; when it ended: $ok_before_after; at the end: $(orders_ok)"
echo "orders by result at the end: $(metric 'wsgate_acme_orders_total' | tr '\n' ' ')"
echo; echo "acme log lines (all levels, time since start):"
python3 - "$work/gw.log" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    f = r.get("fields", {})
    if str(f.get("message", "")).startswith("acme:"):
        extra = {k: v for k, v in f.items() if k in ("error", "retry_in", "renewal")}
        print(f"  {r.get('timestamp', '')[11:23]} {r.get('level')} {f['message']} {extra}")
PY
echo; echo "served certificate serial by time (changes only):"
awk '$2 != last { print "  t=" $1 "s " $2; last = $2 }' "$work/serials"
echo; echo "phase marks:"; cat "$work/phases"
