#!/usr/bin/env python3
"""Hold N open tunnels through wsgate and say what each client saw (issue #13 fault scripts).

Each tunnel sends a 16-byte message every INTERVAL seconds and waits for its echo. Recorded per
tunnel: echoes that took over STALL seconds (stalls, with their length), and how it ended: still
open at the end, a Close from the server (code, reason), or the connection dropped without a
Close (1006) / an error. Prints one JSON object at the end.

usage: tunnels.py URL N SECONDS [INTERVAL=1] [STALL=2]
"""
import asyncio
import collections
import json
import ssl
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

url, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
interval = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
stall_after = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t0 = time.monotonic()


def now():
    return round(time.monotonic() - t0, 2)


async def tunnel(i, out):
    rec = {"id": i, "echoes": 0, "stalls": [], "end": None}
    out.append(rec)
    try:
        ws = await asyncio.wait_for(connect(url, ssl=ctx if url.startswith("wss") else None,
                                            open_timeout=5, ping_interval=None), 10)
    except Exception as e:  # noqa: BLE001 - any failure to open is the outcome
        rec["end"] = {"t": now(), "kind": "open_failed", "detail": type(e).__name__}
        return
    deadline = t0 + secs
    k = 0
    try:
        while time.monotonic() < deadline:
            k += 1
            msg = f"t{i:04d}-{k:08d}".encode()
            sent = time.monotonic()
            await ws.send(msg)
            left = max(0.1, deadline + 30 - time.monotonic())
            reply = await asyncio.wait_for(ws.recv(), left)
            took = time.monotonic() - sent
            if reply != msg:
                rec["end"] = {"t": now(), "kind": "mismatch"}
                return
            rec["echoes"] += 1
            if took > stall_after:
                rec["stalls"].append({"at": round(sent - t0, 2), "secs": round(took, 2)})
            await asyncio.sleep(max(0.0, interval - took))
        await ws.close()
        rec["end"] = {"t": now(), "kind": "open_at_end"}
    except ConnectionClosed as e:
        if e.rcvd is not None:
            rec["end"] = {"t": now(), "kind": "close", "code": e.rcvd.code, "reason": e.rcvd.reason}
        else:
            rec["end"] = {"t": now(), "kind": "dropped_no_close", "detail": str(e)[:80]}
    except asyncio.TimeoutError:
        rec["end"] = {"t": now(), "kind": "echo_timeout"}
    except Exception as e:  # noqa: BLE001
        rec["end"] = {"t": now(), "kind": "error", "detail": f"{type(e).__name__}: {e}"[:120]}


async def main():
    out = []
    # Open them one by one with a small gap: no burst.
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(tunnel(i, out)))
        await asyncio.sleep(0.02)
    print(f"TUNNELS_OPENING {n}", flush=True)
    await asyncio.gather(*tasks)
    ends = collections.Counter()
    for r in out:
        e = r["end"] or {"kind": "unknown"}
        key = e["kind"] + (f" {e['code']} {e['reason']!r}" if e["kind"] == "close" else "")
        ends[key] += 1
    stalled = [r for r in out if r["stalls"]]
    ended = [r["end"]["t"] for r in out if r["end"] and r["end"]["kind"] != "open_at_end"]
    summary = {
        "tunnels": n,
        "ends": dict(ends),
        "first_end_s": min(ended, default=None),
        "last_end_s": max(ended, default=None),
        "stalled_tunnels": len(stalled),
        "longest_stall_s": max((s["secs"] for r in stalled for s in r["stalls"]), default=0),
        "echoes": sum(r["echoes"] for r in out),
    }
    print(json.dumps(summary), flush=True)


asyncio.run(main())
