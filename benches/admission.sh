#!/usr/bin/env bash
# Handshake throughput with admission on, against the bare path, in ONE run, interleaved:
#   bare      no policy
#   es256     JWT ES256 (PEM key, issuer/audience/require checked) + per-IP and route rate limits
#   rs256     the same with RS256
# Rate limits are set high enough never to refuse: the cost of checking them is what is measured.
# Writes benches/results/admission-<date>.md. Needs the wsbench harness (../shared/wsbench).
#
#   benches/admission.sh            # REPS=3 HS_TOTAL=5000 HS_CONC=50
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WSBENCH="$(cd "${WSBENCH:-$here/../shared/wsbench}" && pwd)"
REPS=${REPS:-3}; HS_TOTAL=${HS_TOTAL:-5000}; HS_CONC=${HS_CONC:-50}
out="$here/benches/results/admission-${STAMP:-$(date -u +%Y-%m-%d)}.md"
work="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

(cd "$here" && cargo build --release --bin wsgate --example mint_token)
(cd "$WSBENCH" && cargo build --release)
B="$WSBENCH/target/release"
[ -f "$WSBENCH/certs/cert.pem" ] || "$B/gen-cert" "$WSBENCH/certs" >/dev/null
"$B/echo-backend" --listen 127.0.0.1:9011 --workers 1 --max-secs 900 >/dev/null 2>&1 &

declare -A TOKEN PORT=([bare]=8461 [es256]=8462 [rs256]=8463)
for alg in ES256 RS256; do
    TOKEN[${alg,,}]=$("$here/target/release/examples/mint_token" "$alg" "$work")
done
for name in bare es256 rs256; do
    policy=""; limits="{}"
    if [ "$name" != bare ]; then
        limits='{ per_ip: { handshakes: "1000000/s", burst: 1000000 } }'
        alg=${name^^}
        policy=", rate: { handshakes: \"1000000/s\", burst: 1000000 }, auth: { jwt: { keys: [ { file: $work/$alg.pem, alg: $alg } ], issuer: wsgate-bench, audience: bench, require: { scope: chat } } }"
    fi
    cat >"$work/$name.yaml" <<YAML
listeners:
  - name: bench
    bind: "127.0.0.1:${PORT[$name]}"
    tls: { certificates: [ { cert: $WSBENCH/certs/cert.pem, key: $WSBENCH/certs/key.pem } ], min_version: "1.3" }
limits: $limits
routes: [ { path: /echo, pool: echo$policy } ]
pools: { echo: { backends: [ { url: "ws://127.0.0.1:9011" } ] } }
YAML
    WSGATE_LOG=warn "$here/target/release/wsgate" run --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
    echo $! >"$work/$name.pid"
done
for name in bare es256 rs256; do
    for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/${PORT[$name]}) 2>/dev/null && break; sleep 0.1; done
done

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
{
    echo "# Handshake throughput with admission on (same run, interleaved)"
    echo
    echo "Command: \`benches/admission.sh\` (REPS=$REPS, $HS_TOTAL handshakes, concurrency $HS_CONC, TLS 1.3, full handshakes)."
    echo "es256/rs256: JWT verified (issuer, audience, require) + per-IP and route rate limits checked."
    echo
    echo "| config | rep | handshakes/s | proxy CPU-ms / 1000 hs | errors |"
    echo "|---|---|---|---|---|"
} >"$out"
declare -A RATES
for rep in $(seq 1 "$REPS"); do
    for name in bare es256 rs256; do
        pid=$(cat "$work/$name.pid")
        hdr=()
        [ "$name" != bare ] && hdr=(--header "Authorization:Bearer ${TOKEN[$name]}")
        before=$(cpu_ticks "$pid")
        line=$("$B/wsload" handshake --url "wss://localhost:${PORT[$name]}/echo" --insecure --sni localhost \
            --total "$HS_TOTAL" --concurrency "$HS_CONC" "${hdr[@]}" --max-secs 120 | tail -n 1)
        after=$(cpu_ticks "$pid")
        rate=$(python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['handshakes_per_s']))" "$line")
        errs=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['errors_total'])" "$line")
        cpu=$(python3 -c "import sys; t=$(getconf CLK_TCK); print(round(($after-$before)/t*1000/($HS_TOTAL/1000)))")
        RATES[$name]+="$rate "
        echo "| $name | $rep | $rate | $cpu | $errs |" >>"$out"
        echo "$name rep $rep: $rate hs/s, $cpu CPU-ms/1000 hs, errors $errs"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo
    echo "| config | median handshakes/s | vs bare |"
    echo "|---|---|---|"
    bare=$(echo "${RATES[bare]}" | median)
    for name in bare es256 rs256; do
        m=$(echo "${RATES[$name]}" | median)
        echo "| $name | $m | $(python3 -c "print(f'{$m/$bare:.2f}x')") |"
    done
} >>"$out"
echo "wrote $out"
