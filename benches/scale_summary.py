#!/usr/bin/env python3
"""Summarise benches/scale.sh: per target, RSS and proxy CPU at each N (medians over
repetitions) and KiB per held session from the least-squares slope of RSS over N."""
import json
import os
import statistics
import sys
from collections import defaultdict


def slope(points):
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


def main(path):
    runs = defaultdict(lambda: defaultdict(list))
    for line in open(path):
        r = json.loads(line)
        if r.get("scenario") != "hold-used" or "proxy_rss_kb_peak" not in r:
            continue
        n = r["load"]["opened"]
        if n != r["load"]["conns"]:
            print(f"warning: {r['target']} opened {n} of {r['load']['conns']}", file=sys.stderr)
        runs[r["target"]][r["load"]["conns"]].append(r)
    sizes = sorted({n for t in runs.values() for n in t})
    print("# Cost curve of held sessions\n")
    print("`benches/scale.sh`: one wsbench run per size (hold-used: TLS 1.3, one 16 KiB echo per")
    print("session, then idle; targets interleaved), peak RSS of all proxy processes while the")
    print("sessions are held (medians over repetitions), and KiB per session from the least-squares")
    print("slope of RSS over N. CPU-s is the proxy's CPU to open, hold and close the N sessions.")
    print(f"Raw data: `{os.path.basename(path)}`.\n")
    print("| target | " + " | ".join(f"RSS at {n:,} MiB" for n in sizes)
          + " | KiB/session (slope) | " + " | ".join(f"CPU-s at {n:,}" for n in sizes) + " |")
    print("|---" * (2 + 2 * len(sizes)) + "|")
    for target, by_n in runs.items():
        rss = {n: statistics.median(r["proxy_rss_kb_peak"] for r in rs) for n, rs in by_n.items()}
        cpu = {n: statistics.median(r["proxy_cpu_s"] for r in rs) for n, rs in by_n.items()}
        points = [(n, r["proxy_rss_kb_peak"]) for n, rs in by_n.items() for r in rs]
        cells = [f"{rss[n] / 1024:.1f}" if n in rss else "–" for n in sizes]
        cpus = [f"{cpu[n]:.2f}" if n in cpu else "–" for n in sizes]
        print(f"| {target} | " + " | ".join(cells) + f" | **{slope(points):.1f}** | "
              + " | ".join(cpus) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
