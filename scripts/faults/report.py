#!/usr/bin/env python3
"""Per-phase summary of one fault run (issue #13): the handshake load split by phase marks,
time to recover after a mark, and wsgate's warn/error log lines grouped by message per phase.

usage: report.py WORKDIR [RECOVERY_PHASE]
Reads WORKDIR/phases ("t log_lines name" per line), WORKDIR/load.jsonl (one wsload run per
line with t0/t1) and WORKDIR/gw.log (wsgate's JSON log). Prints markdown.
"""
import collections
import json
import sys

work = sys.argv[1]
recovery_phase = sys.argv[2] if len(sys.argv) > 2 else None
phases = []
for line in open(f"{work}/phases"):
    t, n, name = line.split(maxsplit=2)
    phases.append((float(t), int(n), name.strip()))
try:
    runs = [json.loads(l) for l in open(f"{work}/load.jsonl")]
except FileNotFoundError:
    runs = []
try:
    log = open(f"{work}/gw.log", errors="replace").read().splitlines()
except FileNotFoundError:
    log = []


def phase_of(t):
    name = None
    for start, _, p in phases:
        if t >= start:
            name = p
    return name


print("| phase | from (s) | wsload runs | handshakes ok | failed | errors by kind | latency p50 / p99 / max (ms) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for i, (start, _, name) in enumerate(phases):
    mine = [r for r in runs if phase_of(r["t0"]) == name]
    ok = sum(r["run"].get("ok", 0) for r in mine)
    errs = collections.Counter()
    for r in mine:
        errs.update(r["run"].get("errors", {}))
    lat = [r["run"].get("latency_ms", {}) for r in mine if r["run"].get("ok")]
    p50 = sorted(l.get("p50", 0) for l in lat)
    p99 = max((l.get("p99", 0) for l in lat), default=0)
    mx = max((l.get("max", 0) for l in lat), default=0)
    med = p50[len(p50) // 2] if p50 else 0
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(errs.items())) or "-"
    print(f"| {name} | {start:.1f} | {len(mine)} | {ok} | {sum(errs.values())} | {kinds} | {med} / {p99} / {mx} |")

if recovery_phase:
    mark = next((t for t, _, p in phases if p == recovery_phase), None)
    after = [r for r in runs if mark is not None and r["t0"] >= mark]
    first_ok = next((r for r in after if r["run"].get("errors_total", 1) == 0), None)
    bad = [r for r in after if r["run"].get("errors_total", 1) != 0]
    print()
    if first_ok:
        print(f"Recovery after `{recovery_phase}`: first clean wsload run ended "
              f"{first_ok['t1'] - mark:.1f} s after the mark", end="")
        if bad:
            print(f"; last run with errors ended {bad[-1]['t1'] - mark:.1f} s after it", end="")
        print(f" ({len(after) - len(bad)} of {len(after)} runs clean).")
    else:
        print(f"No clean run after `{recovery_phase}` ({len(after)} runs).")

print()
print("wsgate log lines at warn/error, by phase and message (count):")
print()
bounds = [(p, n) for _, n, p in phases] + [(None, len(log))]
for (name, lo), (_, hi) in zip(bounds, bounds[1:]):
    counts = collections.Counter()
    for line in log[lo:hi]:
        try:
            rec = json.loads(line)
        except ValueError:
            counts[("RAW", line[:120])] += 1
            continue
        level = rec.get("level", "")
        if level in ("WARN", "ERROR"):
            fields = rec.get("fields", {})
            counts[(level, fields.get("message", ""))] += 1
    shown = "; ".join(f"{lvl} \"{msg}\" x{n}" for (lvl, msg), n in counts.most_common()) or "none"
    print(f"- {name}: {shown}")

print()
print("sessions (wsgate::session records) by phase and backend:")
print()
for (name, lo), (_, hi) in zip(bounds, bounds[1:]):
    per = collections.Counter()
    for line in log[lo:hi]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("target") == "wsgate::session":
            f = rec.get("fields", {})
            per[f.get("backend") or rec.get("span", {}).get("backend") or "?"] += 1
    print(f"- {name}: " + (", ".join(f"{b} {n}" for b, n in sorted(per.items())) or "none"))
