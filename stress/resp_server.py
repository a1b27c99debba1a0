"""A Redis-protocol (RESP2) key-value server on mn_runtime.net.

    python -m stress.resp_server --listen 127.0.0.1:6379 --procs 2

Commands: PING, ECHO, SET (EX/PX accepted, ignored), GET, DEL, EXISTS, INCR, DECR, INCRBY, MSET,
MGET, DBSIZE, FLUSHALL, CONFIG GET, COMMAND, SELECT, QUIT; pipelining and inline commands. Enough
for redis-benchmark and redis-cli.

The network is hostile: a bulk string over --max-bulk bytes, an array of over --max-args items or
an unterminated line over 64 KiB gets "-ERR Protocol error" and the connection is closed; a client
that sends nothing for --idle-timeout seconds is disconnected. Each client is its own goroutine, so
none of this stops the others. The parser and the command table are shared with the asyncio twin
(stress/asyncio_resp_server.py), so the two differ only in the I/O layer.

It prints "listening on HOST:PORT" on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

from .serving import accept_loop, read_some, write_or_gone

MAX_LINE = 64 * 1024


class ProtocolError(Exception):
    pass


def parse(buf: bytearray, pos: int, max_bulk: int, max_args: int) -> tuple[list[bytes] | None, int]:
    """parse reads one command at buf[pos:]; (None, pos) if it is not complete yet."""
    n = len(buf)
    if pos >= n:
        return None, pos
    if buf[pos] != 42:  # not '*': an inline command, as typed into telnet
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if n - pos > MAX_LINE:
                raise ProtocolError("too big inline request")
            return None, pos
        return bytes(buf[pos:end]).split(), end + 2
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if n - pos > MAX_LINE:
            raise ProtocolError("too big mbulk count string")
        return None, pos
    try:
        count = int(buf[pos + 1 : end])
    except ValueError:
        raise ProtocolError("invalid multibulk length") from None
    if count > max_args or count < 0:
        raise ProtocolError("invalid multibulk length")
    p = end + 2
    args: list[bytes] = []
    for _ in range(count):
        if p >= n:
            return None, pos
        if buf[p] != 36:  # '$'
            raise ProtocolError(f"expected '$', got '{chr(buf[p])}'")
        end = buf.find(b"\r\n", p)
        if end < 0:
            if n - p > MAX_LINE:
                raise ProtocolError("too big bulk count string")
            return None, pos
        try:
            size = int(buf[p + 1 : end])
        except ValueError:
            raise ProtocolError("invalid bulk length") from None
        if size < 0 or size > max_bulk:
            raise ProtocolError("invalid bulk length")
        start = end + 2
        if start + size + 2 > n:
            return None, pos
        args.append(bytes(buf[start : start + size]))
        p = start + size + 2
    return args, p


def bulk(v: bytes | None) -> bytes:
    if v is None:
        return b"$-1\r\n"
    return b"$%d\r\n%s\r\n" % (len(v), v)


def array(items: list[bytes | None]) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(bulk(v) for v in items)


OK = b"+OK\r\n"


def err(msg: str) -> bytes:
    return b"-ERR " + msg.encode() + b"\r\n"


class Store:
    """Store is the key space; every command runs under `lock` (Ms are threads: no GIL reliance)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[bytes, bytes] = {}

    def execute(self, args: list[bytes]) -> bytes:
        """execute runs one command and returns its encoded reply."""
        if not args:
            return b""
        name = args[0].upper()
        fn = COMMANDS.get(name)
        if fn is None:
            return err(f"unknown command '{args[0][:64].decode('latin-1')}'")
        try:
            return fn(self, args)
        except IndexError:
            return err(f"wrong number of arguments for '{name.decode().lower()}' command")


def _ping(s: Store, a: list[bytes]) -> bytes:
    return bulk(a[1]) if len(a) > 1 else b"+PONG\r\n"


def _echo(s: Store, a: list[bytes]) -> bytes:
    return bulk(a[1])


def _set(s: Store, a: list[bytes]) -> bytes:
    k, v = a[1], a[2]
    with s.lock:
        s.data[k] = v
    return OK


def _get(s: Store, a: list[bytes]) -> bytes:
    k = a[1]
    with s.lock:
        v = s.data.get(k)
    return bulk(v)


def _del(s: Store, a: list[bytes]) -> bytes:
    a[1]
    with s.lock:
        n = sum(1 for k in a[1:] if s.data.pop(k, None) is not None)
    return b":%d\r\n" % n


def _exists(s: Store, a: list[bytes]) -> bytes:
    a[1]
    with s.lock:
        n = sum(1 for k in a[1:] if k in s.data)
    return b":%d\r\n" % n


def _incrby(s: Store, k: bytes, by: int) -> bytes:
    with s.lock:
        try:
            v = int(s.data.get(k, b"0")) + by
        except ValueError:
            return err("value is not an integer or out of range")
        s.data[k] = b"%d" % v
    return b":%d\r\n" % v


def _incr(s: Store, a: list[bytes]) -> bytes:
    return _incrby(s, a[1], 1)


def _decr(s: Store, a: list[bytes]) -> bytes:
    return _incrby(s, a[1], -1)


def _incrby_cmd(s: Store, a: list[bytes]) -> bytes:
    try:
        by = int(a[2])
    except ValueError:
        return err("value is not an integer or out of range")
    return _incrby(s, a[1], by)


def _mset(s: Store, a: list[bytes]) -> bytes:
    if len(a) < 3 or len(a) % 2 == 0:
        return err("wrong number of arguments for 'mset' command")
    with s.lock:
        for i in range(1, len(a), 2):
            s.data[a[i]] = a[i + 1]
    return OK


def _mget(s: Store, a: list[bytes]) -> bytes:
    a[1]
    with s.lock:
        vals = [s.data.get(k) for k in a[1:]]
    return array(vals)


def _dbsize(s: Store, a: list[bytes]) -> bytes:
    with s.lock:
        return b":%d\r\n" % len(s.data)


def _flushall(s: Store, a: list[bytes]) -> bytes:
    with s.lock:
        s.data.clear()
    return OK


def _config(s: Store, a: list[bytes]) -> bytes:
    if a[1].upper() != b"GET":
        return err("CONFIG subcommand not supported")
    known = {b"save": b"", b"appendonly": b"no", b"databases": b"1", b"maxmemory": b"0"}
    out: list[bytes | None] = []
    for k, v in known.items():
        if any(p in (k, b"*") for p in a[2:]):
            out += [k, v]
    return array(out)


def _command(s: Store, a: list[bytes]) -> bytes:
    return b"*0\r\n"


def _select(s: Store, a: list[bytes]) -> bytes:
    return OK if a[1] == b"0" else err("DB index is out of range")


COMMANDS: dict[bytes, Callable[[Store, list[bytes]], bytes]] = {
    b"PING": _ping,
    b"ECHO": _echo,
    b"SET": _set,
    b"GET": _get,
    b"DEL": _del,
    b"EXISTS": _exists,
    b"INCR": _incr,
    b"DECR": _decr,
    b"INCRBY": _incrby_cmd,
    b"MSET": _mset,
    b"MGET": _mget,
    b"DBSIZE": _dbsize,
    b"FLUSHALL": _flushall,
    b"CONFIG": _config,
    b"COMMAND": _command,
    b"SELECT": _select,
}


def handle_bytes(store: Store, buf: bytearray, max_bulk: int, max_args: int) -> tuple[bytes, bool]:
    """handle_bytes runs every complete command in buf (consuming it); (replies, close?)."""
    out: list[bytes] = []
    pos = 0
    close = False
    try:
        while True:
            args, pos = parse(buf, pos, max_bulk, max_args)
            if args is None:
                break
            if args and args[0].upper() == b"QUIT":
                out.append(OK)
                close = True
                break
            out.append(store.execute(args))
    except ProtocolError as e:
        out.append(err(f"Protocol error: {e}"))
        close = True
    del buf[:pos]
    return b"".join(out), close


# --- the mn_runtime server ---


async def serve_conn(c: object, store: Store, opts: argparse.Namespace) -> None:
    import mn_runtime as mn

    assert isinstance(c, mn.net.Conn)
    buf = bytearray()
    with c:
        while True:
            d = await read_some(c, opts.idle_timeout)
            if not d:
                return
            buf += d
            out, close = handle_bytes(store, buf, opts.max_bulk, opts.max_args)
            if out and not await write_or_gone(c, out):
                return
            if close:
                return


async def serve(opts: argparse.Namespace) -> None:
    await accept_loop(opts.listen, serve_conn, Store(), opts)


def options(prog: str, argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:6379", help="host:port (default %(default)s; port 0 picks one)")
    ap.add_argument("--procs", type=int, default=None, help="mn_runtime Ps (default: CPU count)")
    ap.add_argument("--max-bulk", type=int, default=1 << 20, help="largest bulk string, bytes (default 1 MiB)")
    ap.add_argument("--max-args", type=int, default=1 << 16, help="most items in one command (default 65536)")
    ap.add_argument("--idle-timeout", type=float, default=60.0, help="drop clients idle this long (s; 0: never)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import mn_runtime as mn

    opts = options("python -m stress.resp_server", argv)
    try:
        mn.run(serve, opts, procs=opts.procs)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
