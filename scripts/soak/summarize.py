#!/usr/bin/env python3
"""Summarise one soak run directory (scripts/soak/run.sh output) as JSON on stdout.

Final client counters, wsgate fds/RSS first/last/min/max and their least-squares slope per hour
over the steady part (samples from --skip s on, default 120 s: after the ramp), warn/error lines
in wsgate's log by message, reloads from the metrics scraped at the end.

  summarize.py DIR [SKIP_S]          the summary
  summarize.py --csv-header          CSV header for the samples
  summarize.py --csv NAME DIR        DIR's client-1 samples as CSV rows, first column NAME
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

COUNTERS = ("opened", "hs_failed", "asked_closed", "dropped", "echo_ok", "echo_late",
            "echo_failed", "echo_bad")


def slope_per_hour(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if len(pts) < 3:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    return round(sxy / sxx * 3600, 1) if sxx else None


def series(rows, key, skip):
    steady = [r for r in rows if r["t"] >= skip and not r.get("final")]
    xs = [r["t"] for r in steady]
    ys = [r.get(key) for r in steady]
    vals = [y for y in ys if y is not None]
    if not vals:
        return None
    return {"first": vals[0], "last": vals[-1], "min": min(vals), "max": max(vals),
            "slope_per_h": slope_per_hour(xs, ys), "samples": len(vals)}


def log_levels(path):
    """Lines by level, warn/error lines by message, session records by closed_by/end/code."""
    levels, msgs, ends = Counter(), Counter(), Counter()
    if not path.exists():
        return {}, {}, {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            levels["non-json"] += 1
            msgs[line[:120]] += 1
            continue
        lvl = str(rec.get("level", "?")).upper()
        levels[lvl] += 1
        f = rec.get("fields", {})
        if isinstance(f, dict) and f.get("message") == "session closed":
            ends[f"{f.get('closed_by')}/{f.get('end')}/{f.get('close_code')}"] += 1
        if lvl in ("WARN", "ERROR"):
            fields = rec.get("fields", {})
            msg = fields.get("message", "") if isinstance(fields, dict) else ""
            msgs[f"{lvl} {rec.get('target', '')}: {msg}"[:160]] += 1
    return dict(levels), dict(msgs.most_common(20)), dict(ends)


def metrics(path):
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        m = re.match(r'(wsgate_config_reloads_total\{[^}]*\}|wsgate_tunnels_open\S*|'
                     r'wsgate_tls_handshake_failures_total\S*)\s+(\S+)', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def main(d, skip=120.0):
    d = Path(d)
    rows = [json.loads(x) for x in (d / "samples.jsonl").read_text().splitlines() if x.strip()]
    final = next((r for r in reversed(rows) if r.get("final")), rows[-1] if rows else {})
    levels, warn_msgs, ends = log_levels(d / "wsgate.log")
    reloader = (d / "reloader.log")
    lines = reloader.read_text().splitlines() if reloader.exists() else []
    # Other client processes (samples-N.jsonl): their final counters are added to client 1's.
    total = {k: v for k, v in final.items() if isinstance(v, (int, float))}
    for extra in sorted(d.glob("samples-*.jsonl")):
        extra_rows = [json.loads(x) for x in extra.read_text().splitlines() if x.strip()]
        if extra_rows:
            for k in ("open", *COUNTERS, "client_stalled_s"):
                total[k] = total.get(k, 0) + (extra_rows[-1].get(k) or 0)
    out = {
        "duration_s": final.get("t"),
        "clients_total": {k: total.get(k) for k in ("open", *COUNTERS, "client_stalled_s")},
        "client_final": {k: v for k, v in final.items() if k not in ("errors",)},
        "client_errors": final.get("errors", {}),
        "config_writes": sum(" config " in x for x in lines),
        "cert_swaps": sum(" cert " in x for x in lines),
        "wsgate_log_levels": levels,
        "wsgate_warn_error": warn_msgs,
        "sessions_closed_by_end_code": ends,
        "metrics_end": metrics(d / "metrics-end.txt"),
    }
    for key in ("wsgate_fds", "wsgate_rss_kb", "backend_fds", "backend_rss_kb", "open",
                "client_rss_kb"):
        out[key] = series(rows, key, skip)
    cpu = [r for r in rows if r.get("wsgate_cpu_s") is not None]
    if len(cpu) >= 2 and cpu[-1]["t"] > cpu[0]["t"]:
        out["wsgate_cpu_pct"] = round(100 * (cpu[-1]["wsgate_cpu_s"] - cpu[0]["wsgate_cpu_s"])
                                      / (cpu[-1]["t"] - cpu[0]["t"]), 1)
    print(json.dumps(out, indent=1))


CSV_COLUMNS = ("t", "utc", "open", *COUNTERS, "certs_seen", "echo_max_ms", "loop_lag_max_ms",
               "client_stalled_s", "wsgate_fds", "wsgate_rss_kb", "wsgate_cpu_s", "backend_fds",
               "backend_rss_kb", "client_rss_kb", "client_cpu_s")


def csv_rows(name, d):
    """Client 1's samples of run directory `d` as CSV lines, first column the run's name."""
    for x in (Path(d) / "samples.jsonl").read_text().splitlines():
        if x.strip():
            r = json.loads(x)
            print(",".join([name, *("" if r.get(k) is None else str(r[k]) for k in CSV_COLUMNS)]))


if __name__ == "__main__":
    if sys.argv[1] == "--csv-header":
        print(",".join(["run", *CSV_COLUMNS]))
    elif sys.argv[1] == "--csv":
        csv_rows(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], *(float(x) for x in sys.argv[2:]))
