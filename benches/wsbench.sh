#!/usr/bin/env bash
# End-to-end comparison: wsgate beside nginx and HAProxy (and the no-proxy ceilings) in ONE
# wsbench run, interleaved. Writes benches/results/wsbench-<date>.{md,jsonl}.
#
#   benches/wsbench.sh                                  # full run (~12-15 min)
#   REPS=1 SCENARIOS="handshake bulk-1MiB" benches/wsbench.sh   # quick partial run
#
# Needs nginx and haproxy installed (apt-get install -y nginx haproxy); everything stays on
# loopback. wsgate logs at `warn` here (nginx and HAProxy run with access logs off;
# LOG_LEVEL=info measures the session records' cost). The URL
# names localhost because the harness sends SNI localhost and wsgate answers 421 when Host and
# SNI disagree (the anchors do not check).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WSBENCH="${WSBENCH:-$here/../shared/wsbench}"
WSBENCH="$(cd "$WSBENCH" && pwd)"
stamp="${STAMP:-$(date -u +%Y-%m-%d)}"

(cd "$here" && cargo build --release --bin wsgate)
mkdir -p "$WSBENCH/run" "$here/benches/results"
cfg="$WSBENCH/run/wsgate.yaml"
cat >"$cfg" <<YAML
listeners:
  - name: bench
    bind: "127.0.0.1:8445"
    tls:
      certificates: [ { cert: $WSBENCH/certs/cert.pem, key: $WSBENCH/certs/key.pem } ]
      min_version: "1.3"
limits: { tunnel_idle_timeout: 1h }
routes: [ { path: /echo, pool: echo } ]
pools: { echo: { backends: [ { url: "ws://${BACKEND_ADDR:-127.0.0.1:9001}" } ] } }
YAML

cd "$WSBENCH"
PUT_NAME=wsgate \
PUT_URL=wss://localhost:8445/echo \
PUT_START="env WSGATE_LOG=${LOG_LEVEL:-warn} $here/target/release/wsgate run --config $cfg" \
OUT_JSONL="$here/benches/results/wsbench-$stamp.jsonl" \
OUT_MD="$here/benches/results/wsbench-$stamp.md" \
./run-anchors.sh
