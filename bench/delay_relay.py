#!/usr/bin/python3
"""A TCP relay that adds a fixed one-way delay in each direction, for
bench/ws_setup.sh (loopback has no netem here): every chunk read is written
to the other side DELAY_MS after it was read, in order.

    delay_relay.py LISTEN_PORT TARGET_PORT DELAY_MS PORTFILE
"""
import asyncio
import sys


async def pipe(r, w, delay):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()

    async def writer():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    w.write_eof()
                except OSError:
                    pass
                return
            w.write(data)
            await w.drain()

    t = asyncio.create_task(writer())
    try:
        while True:
            data = await r.read(65536)
            q.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await t
    except (OSError, asyncio.CancelledError):
        t.cancel()
    finally:
        try:
            w.close()
        except OSError:
            pass


async def main(lport, tport, delay_ms, portfile):
    delay = delay_ms / 1000.0

    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", tport)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, uw, delay), pipe(ur, cw, delay))

    srv = await asyncio.start_server(handle, "127.0.0.1", lport)
    with open(portfile, "w") as f:
        f.write("ready\n")
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
