#!/usr/bin/python3
"""A TCP forwarder on 127.0.0.1 that delays every byte by a fixed time each
way (a long path without netem): bench/latency.sh --delay-ms.

  delay_fwd.py LISTEN_PORT TARGET_PORT DELAY_MS

Each accepted connection gets its own connection to 127.0.0.1:TARGET_PORT;
bytes read at time t are written at t + DELAY_MS, in order; an EOF is passed
on after the bytes before it. Runs until killed. Not for throughput (one
read at a time, 64 KiB), for round trips.
"""
import asyncio
import sys

HOST = "127.0.0.1"


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def sender():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return

    task = asyncio.ensure_future(sender())
    try:
        while True:
            data = await reader.read(65536)
            q.put_nowait((loop.time() + delay, data if data else None))
            if not data:
                break
    except OSError:
        q.put_nowait((loop.time() + delay, None))
    await task


async def handle(cr, cw, target, delay):
    try:
        sr, sw = await asyncio.open_connection(HOST, target)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw, delay), pipe(sr, cw, delay), return_exceptions=True)
    cw.close()
    sw.close()


async def main(listen, target, delay):
    srv = await asyncio.start_server(lambda r, w: handle(r, w, target, delay), HOST, listen)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000.0))
