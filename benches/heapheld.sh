#!/usr/bin/env bash
# What a held session keeps on the heap, by allocation site: heaptrack on wsgate while wsload
# holds N "used" sessions (one 16 KiB echo each, then idle); wsgate is SIGKILLed while they are
# held, so heaptrack's "leaked" is exactly what was live at that moment.
#
# heaptrack sees only the system allocator: build without the default `jemalloc` feature first,
#   cargo build --release --no-default-features --target-dir target/sysalloc
#   N=2000 BIN=target/sysalloc/release/wsgate benches/heapheld.sh
#   heaptrack_print -f $WORK/heaptrack.wsgate.zst --print-leaks 1 | grep "leaked over"
#
# Needs heaptrack (apt-get install heaptrack), openssl and the wsbench tools (../shared/wsbench).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${N:-2000}
BIN=${BIN:-$here/target/sysalloc/release/wsgate}
B=${WSBENCH_BIN:-$here/../shared/wsbench/target/release}
WORK=${WORK:-$(mktemp -d)}
echo "work dir: $WORK"
cd "$WORK"
[ -f cert.pem ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
BP=$(free_port); GP=$(free_port)
$B/echo-backend --listen 127.0.0.1:$BP --workers 1 --max-secs 600 > backend.log 2>&1 &
BPID=$!
cat > wsgate.yaml <<YAML
listeners:
  - name: bench
    bind: "127.0.0.1:$GP"
    tls:
      certificates: [ { cert: $WORK/cert.pem, key: $WORK/key.pem } ]
      min_version: "1.3"
limits: { tunnel_idle_timeout: 1h }
routes: [ { path: /echo, pool: echo } ]
pools: { echo: { backends: [ { url: "ws://127.0.0.1:$BP" } ] } }
YAML
rm -f heaptrack.*.zst ready
WSGATE_LOG=warn heaptrack -o "$WORK/heaptrack.wsgate" $BIN run --config wsgate.yaml > wsgate.log 2>&1 &
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$GP) 2>/dev/null && break; sleep 0.2; done
$B/wsload hold --url wss://localhost:$GP/echo --insecure --conns $N --secs 15 --echo-each 1 --echo-size 16384 --ready-file ready > load.json 2>load.err &
LPID=$!
for i in $(seq 300); do [ -f ready ] && break; sleep 0.2; done
sleep 5
WPID=$(pgrep -f "run --config wsgate.yaml" | tail -1)
grep -E "VmRSS|VmHWM" /proc/$WPID/status
kill -9 $WPID || true
wait $LPID || true
kill $BPID || true
sleep 2
