#!/usr/bin/env python3
"""A loopback TCP relay the fault script can take away (issue #13, fault f).

Accepts on 127.0.0.1:LISTEN and copies bytes both ways to 127.0.0.1:TARGET. Stopping this
process makes the address refuse connections, as an unreachable ACME directory does, while the
server behind it keeps its state.

usage: tcp_relay.py LISTEN TARGET
"""
import asyncio
import sys

listen, target = int(sys.argv[1]), int(sys.argv[2])


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def relay(reader, writer):
    try:
        up_r, up_w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", target), 5)
    except (OSError, asyncio.TimeoutError):
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))


async def main():
    server = await asyncio.start_server(relay, "127.0.0.1", listen, reuse_address=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
