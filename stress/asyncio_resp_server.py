"""The asyncio twin of stress/resp_server.py: same parser, same command table, same limits; only
the I/O layer differs (asyncio streams, or uvloop's with --uvloop). Used to compare throughput.

    python -m stress.asyncio_resp_server --listen 127.0.0.1:6380 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .resp_server import Store, handle_bytes, options


async def serve_conn(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, store: Store, opts: argparse.Namespace
) -> None:
    buf = bytearray()
    try:
        while True:
            try:
                if opts.idle_timeout > 0:
                    d = await asyncio.wait_for(reader.read(65536), opts.idle_timeout)
                else:
                    d = await reader.read(65536)
            except (TimeoutError, ConnectionResetError):
                return
            if not d:
                return
            buf += d
            out, close = handle_bytes(store, buf, opts.max_bulk, opts.max_args)
            if out:
                writer.write(out)
                await writer.drain()
            if close:
                return
    except (ConnectionResetError, BrokenPipeError):
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
    opts = options("python -m stress.asyncio_resp_server", args)
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
