"""The asyncio twin of stress/servers/resp.py: same parser, same command table, same output cap and
idle and write timeouts; only the I/O layer differs (asyncio streams, or uvloop's with --uvloop).
Used to compare throughput.

    python -m stress.servers.asyncio_resp --listen 127.0.0.1:6380 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .resp import Session, Store, options
from .serving import Outbox


async def serve_conn(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, store: Store, opts: argparse.Namespace
) -> None:
    """serve_conn is resp.serve_conn over asyncio streams: the same session and output cap;
    the idle and write timeouts by wait_for (the request timeout is the mn_runtime server's only)."""
    sess = Session(store, opts)
    out = Outbox(opts.max_output)
    idle = opts.idle_timeout or None
    wt = opts.write_timeout or None
    try:
        while True:
            more = sess.run(out)
            if out.pieces:
                for seg in out.segments():
                    writer.write(seg)
                await asyncio.wait_for(writer.drain(), wt)
            if sess.closing:
                return
            if more:
                continue
            d = await asyncio.wait_for(reader.read(65536), idle)
            if not d:
                return
            sess.parser.feed(d)
    except (TimeoutError, ConnectionResetError, BrokenPipeError):
        return
    finally:
        writer.close()


async def serve(opts: argparse.Namespace) -> None:
    store = Store()
    host, _, port = opts.listen.rpartition(":")
    server = await asyncio.start_server(lambda r, w: serve_conn(r, w, store, opts), host.strip("[]"), int(port))
    sa = server.sockets[0].getsockname()
    print(f"listening on {sa[0]}:{sa[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    use_uvloop = "--uvloop" in args
    if use_uvloop:
        args.remove("--uvloop")
    opts = options("python -m stress.servers.asyncio_resp", args)
    try:
        if use_uvloop:
            import uvloop

            uvloop.run(serve(opts))
        else:
            asyncio.run(serve(opts))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
