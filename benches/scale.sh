#!/usr/bin/env bash
# The cost curve of held sessions: wsgate beside nginx and HAProxy holding 1k, 3k and 9k "used"
# sessions (TLS 1.3, one 16 KiB echo each, then idle), in one wsbench run per size. KiB per
# session comes from the slope of RSS over N (least squares), not from one point.
#
#   benches/scale.sh                       # SIZES="1000 3000 9000" REPS=2
#   python3 benches/scale_summary.py benches/results/scale-<date>.jsonl
#
# Needs nginx and haproxy (apt-get install -y nginx haproxy) and ../shared/wsbench.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stamp="${STAMP:-$(date -u +%Y-%m-%d)}"
out="$here/benches/results/scale-$stamp.jsonl"
: >"$out"
for n in ${SIZES:-1000 3000 9000}; do
    HOLD_CONNS=$n SCENARIOS=hold-used REPS=${REPS:-2} TARGETS="${TARGETS:-nginx haproxy wsgate}" \
        STAMP="scale-$n-tmp" bash "$here/benches/wsbench.sh" >/dev/null
    cat "$here/benches/results/wsbench-scale-$n-tmp.jsonl" >>"$out"
    rm -f "$here/benches/results/wsbench-scale-$n-tmp.jsonl" "$here/benches/results/wsbench-scale-$n-tmp.md"
done
python3 "$here/benches/scale_summary.py" "$out" | tee "${out%.jsonl}.md"
