#!/usr/bin/env bash
# Memory per idle WebSocket session through wsgate: streams on shared HTTP/2 connections
# (RFC 8441) beside one WebSocket per HTTP/1.1 connection. Writes
# benches/results/h2hold-<date>.md.
#
#   benches/h2hold.sh                                   # ~3 min after the builds
#   SCENARIOS="h2:20x1 h2:20x100" SERVERS=serve HOLD_SECS=2 benches/h2hold.sh
#
# Every scenario gets a fresh server, so memory a previous one freed but kept cannot hide a
# cost. Each scenario runs twice: under `wsgate run` (the release binary; the kernel's view,
# VmRSS and RssAnon from /proc/PID/status) and under `h2hold serve` (the same Gateway in a
# process whose allocator counts live heap bytes, by size class: the allocator's view). A
# server is warmed (2 h2 connections x 2 streams and 2 h1 connections, opened and closed)
# before "before" is read; "at N" is read SETTLE seconds after all N sessions echoed once.
# Everything stays on 127.0.0.1; ports are whatever the kernel gave (read back with ss);
# only processes this script started are stopped, by PID.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stamp="${STAMP:-$(date -u +%Y-%m-%d)}"
SCENARIOS="${SCENARIOS:-h2:1x1 h2:1x100 h2:40x1 h2:40x50 h2:40x100 h1:4000}"
SERVERS="${SERVERS:-run serve}"
HOLD_SECS="${HOLD_SECS:-3}"
SETTLE="${SETTLE:-2}"
out="${OUT_MD:-$here/benches/results/h2hold-$stamp.md}"

cd "$here"
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --bin wsgate
    cargo build --release --example h2hold --example echo_backend
fi
bin="$here/target/release"
ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d)"
started=()
cleanup() {
    local rc=$?
    for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ "$rc" != 0 ] && [ -s "$work/echo.err" ]; then tail -5 "$work/echo.err" >&2; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The TCP port PID listens on, once it listens (10 s at most).
port_of() {
    local i p
    for i in $(seq 100); do
        p=$(ss -Hltnp 2>/dev/null | awk -v pid="pid=$1," 'index($0, pid) { n = split($4, a, ":"); print a[n]; exit }')
        if [ -n "$p" ]; then echo "$p"; return; fi
        sleep 0.1
    done
    echo "no listening port for PID $1" >&2
    return 1
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# Wait (bounded) until FILE exists.
wait_file() {
    local i
    for i in $(seq $((10 * $2))); do [ -s "$1" ] && return 0; sleep 0.1; done
    echo "timed out waiting for $1" >&2
    return 1
}

"$bin/examples/h2hold" cert "$work"
"$bin/examples/echo_backend" 127.0.0.1:0 >/dev/null 2>"$work/echo.err" &
backend=$!
started+=("$backend")
backend_port=$(port_of "$backend")
cat >"$work/wsgate.yaml" <<YAML
listeners:
  - name: bench
    bind: "127.0.0.1:0"
    tls:
      certificates: [ { cert: cert.pem, key: key.pem } ]
log: { level: warn }
limits: { tunnel_idle_timeout: 1h }
routes: [ { path: /echo, pool: echo } ]
pools: { echo: { backends: [ { url: "ws://127.0.0.1:$backend_port" } ] } }
YAML

results="$work/results"
: >"$results"
# One scenario on one fresh server: appends
# `server spec n rss_before rss_at anon_before anon_at heap_before heap_at sessions_at`.
measure() {
    local server=$1 spec=$2 proto=${2%%:*} shape=${2#*:} conns streams n args pid port
    if [ "$proto" = h1 ]; then
        conns=$shape; streams=1; args=(--h1 --conns "$conns")
    else
        conns=${shape%x*}; streams=${shape#*x}; args=(--conns "$conns" --streams "$streams")
    fi
    n=$((conns * streams))
    rm -f "$work/stats" "$work/ready"
    if [ "$server" = run ]; then
        WSGATE_LOG=warn "$bin/wsgate" run --config "$work/wsgate.yaml" &
    else
        WSGATE_LOG=warn "$bin/examples/h2hold" serve --config "$work/wsgate.yaml" --stats "$work/stats" >/dev/null &
    fi
    pid=$!
    started+=("$pid")
    port=$(port_of "$pid")
    local hold=("$bin/examples/h2hold" hold --url "wss://localhost:$port/echo" --ca "$work/ca.der")
    "${hold[@]}" --conns 2 --streams 2 --secs 0 >/dev/null
    "${hold[@]}" --h1 --conns 2 --secs 0 >/dev/null
    sleep "$SETTLE"
    local rss0 anon0 heap0=- heap1=- sessions=-
    rss0=$(status_kb "$pid" VmRSS); anon0=$(status_kb "$pid" RssAnon)
    [ "$server" = serve ] && { heap0=$(stat_of "$work/stats" live_bytes); cp "$work/stats" "$work/before-$spec"; }
    "${hold[@]}" "${args[@]}" --secs "$HOLD_SECS" --ready "$work/ready" >"$work/hold.out" &
    local client=$!
    wait_file "$work/ready" 120
    sleep "$SETTLE"
    local rss1 anon1
    rss1=$(status_kb "$pid" VmRSS); anon1=$(status_kb "$pid" RssAnon)
    if [ "$server" = serve ]; then
        cp "$work/stats" "$work/at-$spec"
        heap1=$(stat_of "$work/at-$spec" live_bytes); sessions=$(stat_of "$work/at-$spec" sessions)
    fi
    wait "$client"
    local opened
    read -r opened _ <"$work/ready"
    if [ "$opened" != "$n" ]; then
        # Usually loopback ports still in TIME_WAIT from a run a minute ago: wait and rerun.
        echo "$server $spec: opened $opened of $n; $(ss -Htan state time-wait | wc -l) sockets in TIME_WAIT" >&2
        tail -1 "$work/hold.out" >&2
        exit 1
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$server $spec $n $rss0 $rss1 $anon0 $anon1 $heap0 $heap1 $sessions" | tee -a "$results"
    tail -1 "$work/hold.out" >>"$work/hold.jsonl"
}

for server in $SERVERS; do
    for spec in $SCENARIOS; do measure "$server" "$spec"; done
done

# Per-session KiB: (at N - before) / N, each column; "-" where not measured.
per_session() {
    awk '{ printf "| %s | %s | %d | %s | %s | %s | %s |\n", $1, $2, $3,
        kib($5 - $4, $3, 1024), kib($7 - $6, $3, 1024), ($8 == "-" ? "-" : kib($9 - $8, $3, 1)), $10 }
        function kib(d, n, unit) { return sprintf("%.2f", d * unit / 1024 / n) }' "$results"
}
# The extra cost of one more stream on connections that already exist:
# (delta(CxS) - delta(Cx1)) / (C x (S - 1)), per column, for the h2 pairs measured.
marginal() {
    awk '$2 ~ /^h2:/ { split(substr($2, 4), s, "x"); key = $1 " " s[1]
            d_rss = $5 - $4; d_anon = $7 - $6; d_heap = ($8 == "-" ? "" : $9 - $8)
            if (s[2] == 1) { one_rss[key] = d_rss; one_anon[key] = d_anon; one_heap[key] = d_heap }
            else { r++; rk[r] = key; rs[r] = s[2]; rr[r] = d_rss; ra[r] = d_anon; rh[r] = d_heap } }
        END { for (i = 1; i <= r; i++) { k = rk[i]; if (!(k in one_rss)) continue
            split(k, p, " "); n = p[2] * (rs[i] - 1)
            heap = (rh[i] == "" ? "-" : sprintf("%.2f", (rh[i] - one_heap[k]) / 1024 / n))
            printf "| %s | %sx1 → %sx%s | %d | %.2f | %.2f | %s |\n", p[1], p[2], p[2], rs[i], n,
                (rr[i] - one_rss[k]) / n, (ra[i] - one_anon[k]) / n, heap } }' "$results"
}
# Live heap per session by size class, at N minus before, for one scenario of `h2hold serve`.
classes() {
    local spec=$1 n
    [ -f "$work/at-$spec" ] || return 0
    n=$(awk -v s="$spec" '$1 == "serve" && $2 == s { print $3 }' "$results")
    echo
    echo "\`$spec\` ($n sessions), live heap per session by block size (at N minus before):"
    echo
    echo "| block size | blocks / session | bytes / session |"
    echo "|---|---|---|"
    awk -v n="$n" 'FNR == NR { if ($1 == "bucket") { b[$2] = $3; y[$2] = $4 }; next }
        $1 == "bucket" { db = ($3 - b[$2]) / n; dy = ($4 - y[$2]) / n; delete b[$2]
            if (dy >= 8 || dy <= -8) printf "| ≤ %d B | %.2f | %.0f |\n", $2, db, dy }' \
        "$work/before-$spec" "$work/at-$spec"
    echo
    echo "Block sizes (16-byte steps below 8 KiB) of which a session holds at least 0.5 more:"
    echo
    echo "| block size | blocks / session |"
    echo "|---|---|"
    awk -v n="$n" 'FNR == NR { if ($1 == "size") b[$2] = $3; next }
        $1 == "size" { d = ($3 - b[$2]) / n; if (d >= 0.5) printf "| %d–%d B | %.2f |\n", $2, $2 + 15, d }' \
        "$work/before-$spec" "$work/at-$spec"
}

{
    echo "# Memory per idle WebSocket session: h2 streams vs h1 connections"
    echo
    echo "Generated by \`benches/h2hold.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs,"
    echo "$(rustc --version), wsgate $(git -C "$here" rev-parse --short HEAD)."
    echo "Hold ${HOLD_SECS} s, settle ${SETTLE} s; every scenario on a fresh, warmed server."
    echo
    echo "## Per session, all in"
    echo
    echo "(at N − before) / N, in KiB. \`run\`: the release \`wsgate run\` binary (VmRSS, RssAnon);"
    echo "\`serve\`: the same Gateway under \`h2hold serve\`, whose allocator counts live heap bytes."
    echo "An h2 scenario \`CxS\` is C TLS connections with S WebSocket streams each; \`h1:N\` is N"
    echo "TLS connections with one WebSocket each. The h2 figures include the connection's share."
    echo
    echo "| server | scenario | sessions | VmRSS KiB/session | RssAnon KiB/session | live heap KiB/session | sessions seen |"
    echo "|---|---|---|---|---|---|---|"
    per_session
    echo
    echo "## One more stream on an existing connection"
    echo
    echo "(Δ(CxS) − Δ(Cx1)) / (C·(S−1)), in KiB: what an extra idle WebSocket costs once its h2"
    echo "connection exists. Target (#14): ≤ 4 KiB."
    echo
    echo "| server | pair | extra streams | VmRSS KiB/stream | RssAnon KiB/stream | live heap KiB/stream |"
    echo "|---|---|---|---|---|---|"
    marginal
    echo
    echo "## Where the heap goes"
    for spec in $(awk '$1 == "serve" && $3 >= 1000 { print $2 }' "$results"); do classes "$spec"; done
    echo
    echo "## Raw"
    echo
    echo "\`server scenario N rss_before rss_at anon_before anon_at (KiB) heap_before heap_at (B) sessions\`:"
    echo
    echo '```'
    cat "$results"
    echo '```'
    echo
    echo "Client lines (h2hold's JSON, one per scenario and server):"
    echo
    echo '```'
    cat "$work/hold.jsonl"
    echo '```'
} >"$out"
echo "wrote $out"
