#!/usr/bin/env python3
"""A backend that answers one byte per second (issue #13, fault c).

Reads the upgrade request head, then sends a correct RFC 6455 101 answer one byte a second
until the peer goes away. Every second it prints "open=N total=M" (connections open now and
accepted so far), so a script can see whether the proxy lets go of the connections it gave up.

usage: slow_backend.py PORT
"""
import asyncio
import base64
import hashlib
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
state = {"open": 0, "total": 0}


async def serve(reader, writer):
    state["open"] += 1
    state["total"] += 1
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        key = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        answer = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        for i in range(len(answer)):
            writer.write(answer[i:i + 1])
            await writer.drain()
            if reader.at_eof():
                break
            try:
                # A peer that closes shows up as EOF here within the second.
                data = await asyncio.wait_for(reader.read(1), 1.0)
                if not data:
                    break
            except asyncio.TimeoutError:
                pass
        await reader.read(1)  # after the 101: hold until the peer closes
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        state["open"] -= 1
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    async with server:
        while True:
            print(f"{time.time():.1f} open={state['open']} total={state['total']}", flush=True)
            await asyncio.sleep(1)


asyncio.run(main())
