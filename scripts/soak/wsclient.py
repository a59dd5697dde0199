#!/usr/bin/env python3
"""Soak client for wsgate: holds many wss tunnels, churns them, checks echoes, samples processes.

Modes:
  hold    keep --conns tunnels open for --duration s; every tunnel sends one small message every
          --period s (first one at a random offset, so the load is spread) and checks its echo;
          each second --churn/60 random tunnels are closed normally by the client ("asked") and
          as many new ones opened.
  cycles  for each size in --cycles: open that many tunnels, echo once on each, close them all
          normally; then the next size.

Every --sample-every s one JSON line goes to stdout: counters and, for each --watch NAME=PID,
that process's open fds and RSS. The last line has "final": true. A tunnel that ends without
being asked to (a close from the other side, a reset, an echo that never comes) is "dropped";
the first 50 are logged on stderr with their cause.
"""

import argparse
import asyncio
import gc
import hashlib
import json
import os
import random
import ssl
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

COUNTERS = (
    "opened", "hs_failed", "asked_closed", "dropped", "echo_ok", "echo_late", "echo_failed",
    "echo_bad",
)


class Run:
    def __init__(self, args):
        self.args = args
        self.c = dict.fromkeys(COUNTERS, 0)
        self.live = []  # asyncio.Event per open tunnel (set = asked to close)
        self.tasks = set()
        self.certs = set()  # fingerprints of the server certificates seen
        self.sem = asyncio.Semaphore(args.hs_conc)
        self.ctx = ssl.create_default_context(cafile=args.ca)
        self.errors = {}
        self.t0 = time.monotonic()
        self.stopping = False
        self.lag_max = 0.0  # this interval's worst event-loop delay (client starved or busy)
        self.stalled_s = 0.0  # total time lost to event-loop delays over 1 s
        self.echo_max = 0.0  # this interval's slowest echo

    def note(self, kind, err):
        key = f"{kind}: {type(err).__name__}: {err}"[:160]
        self.errors[key] = self.errors.get(key, 0) + 1
        if sum(self.errors.values()) <= 50:
            print(f"{time.strftime('%H:%M:%S')} {key}", file=sys.stderr, flush=True)

    def spawn(self, first_delay):
        task = asyncio.create_task(self.tunnel(first_delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def tunnel(self, first_delay):
        a, c = self.args, self.c
        try:
            async with self.sem:
                ws = await asyncio.wait_for(
                    connect(a.url, ssl=self.ctx, server_hostname="localhost", ping_interval=None,
                            max_size=1 << 16, open_timeout=None, close_timeout=a.timeout),
                    a.timeout)
        except Exception as err:  # noqa: BLE001 - every failure counts as a failed handshake
            c["hs_failed"] += 1
            self.note("handshake", err)
            return
        c["opened"] += 1
        sslobj = ws.transport.get_extra_info("ssl_object")
        if sslobj is not None:
            self.certs.add(hashlib.sha256(sslobj.getpeercert(binary_form=True)).hexdigest()[:16])
        asked = asyncio.Event()
        if self.stopping:
            asked.set()
        else:
            self.live.append(asked)
        seq = 0
        try:
            delay = first_delay
            while True:
                if delay > 0:
                    try:
                        await asyncio.wait_for(asked.wait(), delay)
                    except TimeoutError:
                        pass
                if asked.is_set():
                    break
                delay = a.period
                msg = f"{id(ws):x}:{seq}:" + "x" * a.size
                seq += 1
                start = time.monotonic()
                await ws.send(msg)
                try:
                    reply = await asyncio.wait_for(ws.recv(), a.timeout)
                except TimeoutError as err:
                    c["echo_failed"] += 1
                    c["dropped"] += 1
                    self.note("echo timeout", err)
                    await ws.close(1000)
                    return
                took = time.monotonic() - start
                self.echo_max = max(self.echo_max, took)
                if reply != msg:
                    c["echo_bad"] += 1
                elif took > a.late:
                    c["echo_late"] += 1
                else:
                    c["echo_ok"] += 1
            if ws.state is not State.OPEN:
                raise ConnectionClosed(ws.protocol.close_rcvd, ws.protocol.close_sent)
            await ws.close(1000, "asked")
            c["asked_closed"] += 1
        except ConnectionClosed as err:
            c["dropped"] += 1
            self.note("closed by peer", err)
        except Exception as err:  # noqa: BLE001
            c["dropped"] += 1
            self.note("tunnel", err)
        finally:
            self.forget(asked)

    def forget(self, asked):
        try:
            i = self.live.index(asked)
        except ValueError:
            return
        self.live[i] = self.live[-1]
        self.live.pop()

    def ask(self, n):
        """Ask n random open tunnels to close (they leave `live` now)."""
        for _ in range(min(n, len(self.live))):
            i = random.randrange(len(self.live))
            self.live[i], self.live[-1] = self.live[-1], self.live[i]
            self.live.pop().set()

    def sample(self, final=False):
        row = {"t": round(time.monotonic() - self.t0, 1), "utc": time.strftime("%H:%M:%S"),
               "open": len(self.live), **self.c, "certs_seen": len(self.certs),
               "echo_max_ms": round(self.echo_max * 1000), "loop_lag_max_ms": round(self.lag_max * 1000),
               "client_stalled_s": round(self.stalled_s, 1)}
        self.lag_max = self.echo_max = 0.0
        for name, pid in self.args.watch:
            row[f"{name}_fds"], row[f"{name}_rss_kb"], row[f"{name}_cpu_s"] = proc(pid)
        _, row["client_rss_kb"], row["client_cpu_s"] = proc(os.getpid(), fds=False)
        if final:
            row["final"] = True
            row["errors"] = self.errors
        print(json.dumps(row), flush=True)


def proc(pid, fds=True):
    try:
        n = len(os.listdir(f"/proc/{pid}/fd")) if fds else None
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
        return n, rss, cpu
    except (OSError, StopIteration):
        return None, None, None


async def lag_monitor(run):
    """How late the event loop wakes up: a late echo while the client itself was late is the
    client's, not the gateway's."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(0.1)
        lag = time.monotonic() - start - 0.1
        run.lag_max = max(run.lag_max, lag)
        if lag > 1.0:
            run.stalled_s += lag


async def sampler(run):
    while True:
        await asyncio.sleep(run.args.sample_every)
        run.sample()


async def hold(run):
    a = run.args
    for _ in range(a.conns):
        run.spawn(random.uniform(0, a.period))
        if a.open_every:
            await asyncio.sleep(a.open_every)
    end = time.monotonic() + a.duration
    per_s, acc = a.churn / 60.0, 0.0
    frozen = False
    while time.monotonic() < end:
        await asyncio.sleep(1)
        if time.monotonic() - run.t0 < a.ramp:
            continue
        if not frozen:
            # The tunnels opened so far live long: keep them out of the collector's full passes,
            # which otherwise stall the loop for seconds on a busy box.
            gc.collect()
            gc.freeze()
            frozen = True
        acc += per_s
        n, acc = int(acc), acc - int(acc)
        run.ask(n)
        for _ in range(n):
            run.spawn(random.uniform(0, a.period))


async def cycles(run):
    for size in run.args.cycles:
        base = run.c["opened"] + run.c["hs_failed"]
        for _ in range(size):
            run.spawn(0)
        deadline = time.monotonic() + 120
        while (run.c["opened"] + run.c["hs_failed"] < base + size
               or run.c["echo_ok"] + run.c["echo_late"] < run.c["opened"] - run.c["dropped"]):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await drain(run, 60)
        run.sample()
        await asyncio.sleep(run.args.pause)


async def drain(run, secs):
    """Ask every tunnel to close, also those whose handshake is still in flight; wait for all."""
    run.stopping = True
    run.ask(len(run.live))
    if run.tasks:
        await asyncio.wait(set(run.tasks), timeout=secs)
    run.stopping = False


async def main(args):
    run = Run(args)
    s = asyncio.create_task(sampler(run))
    lag = asyncio.create_task(lag_monitor(run))
    if args.cycles:
        await cycles(run)
    else:
        await hold(run)
        await drain(run, 60)
    s.cancel()
    lag.cancel()
    run.sample(final=True)
    return 0 if run.c["dropped"] == 0 and run.c["hs_failed"] == 0 else 1


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True, help="PEM CA that signs the server certificates")
    p.add_argument("--conns", type=int, default=1000)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--open-every", type=float, default=0,
                   help="hold: seconds between opening the first --conns tunnels (0: at once)")
    p.add_argument("--churn", type=int, default=0, help="tunnels closed and reopened per minute")
    p.add_argument("--ramp", type=float, default=60, help="no churn during the first N s")
    p.add_argument("--period", type=float, default=25, help="seconds between a tunnel's messages")
    p.add_argument("--size", type=int, default=32, help="message padding")
    p.add_argument("--timeout", type=float, default=10, help="handshake and echo timeout")
    p.add_argument("--late", type=float, default=1.0, help="an echo slower than this is late")
    p.add_argument("--hs-conc", type=int, default=100, help="handshakes in flight at most")
    p.add_argument("--cycles", type=lambda s: [int(x) for x in s.split(",")], default=None)
    p.add_argument("--pause", type=float, default=5, help="cycles: pause after each cycle")
    p.add_argument("--sample-every", type=float, default=10)
    p.add_argument("--watch", action="append", default=[],
                   type=lambda s: tuple(s.split("=", 1)), help="NAME=PID to sample")
    return p.parse_args()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(main(parse())))
