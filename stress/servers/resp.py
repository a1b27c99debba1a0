"""A Redis-protocol (RESP2) key-value server on mn_runtime.net.

    python -m stress.servers.resp --listen 127.0.0.1:6379 --procs 2

Commands: PING, ECHO, SET (EX/PX accepted, ignored), GET, DEL, EXISTS, INCR, DECR, INCRBY, DECRBY,
MSET, MGET, DBSIZE, FLUSHALL, CONFIG GET, COMMAND, SELECT, QUIT; pipelining and inline commands.
Enough for redis-benchmark and redis-cli.

The network is hostile (docs/netpoller.md, "Servers under hostile clients"). Requests are parsed
by stress/servers/resp_parser.py, incrementally and in linear time, taking what Redis takes: a bulk string
over --max-bulk bytes, a command of over --max-args items or over --max-command bytes, a malformed
length or an unterminated line over 64 KiB gets "-ERR Protocol error: ..." and the connection is
closed. Per connection (stress/servers/serving.py): once --max-output reply bytes wait to be written the
server stops reading and parsing that client's pipeline until they are written; a write that makes
no progress for --write-timeout seconds closes the connection; a command must arrive whole within
--request-timeout seconds of its first byte (plus 1 s per --min-rate bytes), and a client that
sends nothing for --idle-timeout seconds is disconnected. Each client is its own goroutine, so
none of this stops the others. The parser and the command table are shared with the asyncio twin
(stress/servers/asyncio_resp.py), so the two differ only in the I/O layer.

It prints "listening on HOST:PORT" on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

from .resp_parser import INT64_MAX, INT64_MIN, ProtocolError, RespParser, parse_int64
from .serving import Conn, Outbox, accept_loop, add_limit_options, check_limits

Reply = bytes | list[bytes]  # a reply, whole or in pieces (large values are queued by reference)

# A value at least this large goes into the reply by reference, not copied into it: GET and MGET
# of large values then cost the output cap's worth of memory, not the reply's size.
BIG = 16 * 1024


def bulk(v: bytes | None) -> bytes:
    if v is None:
        return b"$-1\r\n"
    return b"$%d\r\n%s\r\n" % (len(v), v)


def bulk_reply(v: bytes | None) -> Reply:
    if v is not None and len(v) >= BIG:
        return [b"$%d\r\n" % len(v), v, b"\r\n"]
    return bulk(v)


def array(items: list[bytes | None]) -> Reply:
    parts = [b"*%d\r\n" % len(items)]
    for v in items:
        if v is not None and len(v) >= BIG:
            parts += (b"$%d\r\n" % len(v), v, b"\r\n")
        else:
            parts.append(bulk(v))
    return parts


OK = b"+OK\r\n"
QUIT_OK = bytes(bytearray(OK))  # QUIT's reply: the same bytes as OK, told apart by identity


def err(msg: str) -> bytes:
    return b"-ERR " + msg.encode() + b"\r\n"


class Store:
    """Store is the key space; every command runs under `lock` (Ms are threads: no GIL reliance)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[bytes, bytes] = {}

    def execute(self, args: list[bytes]) -> Reply:
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


def _ping(s: Store, a: list[bytes]) -> Reply:
    return bulk_reply(a[1]) if len(a) > 1 else b"+PONG\r\n"


def _echo(s: Store, a: list[bytes]) -> Reply:
    return bulk_reply(a[1])


def _set(s: Store, a: list[bytes]) -> bytes:
    k, v = a[1], a[2]
    with s.lock:
        s.data[k] = v
    return OK


def _get(s: Store, a: list[bytes]) -> Reply:
    k = a[1]
    with s.lock:
        v = s.data.get(k)
    return bulk_reply(v)


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
    """_incrby adds by to the 64-bit integer at k, with Redis's errors for a value that is not one
    and for a result outside the signed 64-bit range."""
    with s.lock:
        old = s.data.get(k)
        v = 0 if old is None else parse_int64(old)
        if v is None:
            return err("value is not an integer or out of range")
        v += by
        if v > INT64_MAX or v < INT64_MIN:
            return err("increment or decrement would overflow")
        s.data[k] = b"%d" % v
    return b":%d\r\n" % v


def _incr(s: Store, a: list[bytes]) -> bytes:
    return _incrby(s, a[1], 1)


def _decr(s: Store, a: list[bytes]) -> bytes:
    return _incrby(s, a[1], -1)


def _incrby_cmd(s: Store, a: list[bytes]) -> bytes:
    by = parse_int64(a[2])
    if by is None:
        return err("value is not an integer or out of range")
    return _incrby(s, a[1], by)


def _decrby_cmd(s: Store, a: list[bytes]) -> bytes:
    by = parse_int64(a[2])
    if by is None:
        return err("value is not an integer or out of range")
    if by == INT64_MIN:  # its negation is not a 64-bit integer
        return err("decrement would overflow")
    return _incrby(s, a[1], -by)


def _mset(s: Store, a: list[bytes]) -> bytes:
    if len(a) < 3 or len(a) % 2 == 0:
        return err("wrong number of arguments for 'mset' command")
    with s.lock:
        for i in range(1, len(a), 2):
            s.data[a[i]] = a[i + 1]
    return OK


def _mget(s: Store, a: list[bytes]) -> Reply:
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


def _config(s: Store, a: list[bytes]) -> Reply:
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


def _quit(s: Store, a: list[bytes]) -> bytes:
    return QUIT_OK


def _select(s: Store, a: list[bytes]) -> bytes:
    return OK if a[1] == b"0" else err("DB index is out of range")


COMMANDS: dict[bytes, Callable[[Store, list[bytes]], Reply]] = {
    b"PING": _ping,
    b"ECHO": _echo,
    b"SET": _set,
    b"GET": _get,
    b"DEL": _del,
    b"EXISTS": _exists,
    b"INCR": _incr,
    b"DECR": _decr,
    b"INCRBY": _incrby_cmd,
    b"DECRBY": _decrby_cmd,
    b"MSET": _mset,
    b"MGET": _mget,
    b"DBSIZE": _dbsize,
    b"FLUSHALL": _flushall,
    b"CONFIG": _config,
    b"COMMAND": _command,
    b"SELECT": _select,
    b"QUIT": _quit,
}


class Session:
    """Session is one client's protocol state, without I/O (shared by the mn_runtime server and
    its asyncio twin): its parser, and whether it must be closed."""

    __slots__ = ("closing", "parser", "store")

    def __init__(self, store: Store, opts: argparse.Namespace) -> None:
        self.store = store
        self.parser = RespParser(opts.max_bulk, opts.max_args, opts.max_command)
        self.closing = False

    def run(self, out: Outbox) -> bool:
        """run executes the complete commands received, queuing their replies on out, until out is
        full (True: more may be waiting; write out before going on) or none is left (False). A
        protocol error or QUIT queues its reply and sets closing."""
        parser = self.parser
        execute = self.store.execute
        pieces = out.pieces  # Outbox.add, inlined: this loop runs once per command
        size = out.size
        cap = out.cap
        try:
            while True:
                args = parser.next()
                if args is None:
                    return False
                reply = execute(args)
                if type(reply) is bytes:
                    pieces.append(reply)
                    size += len(reply)
                    if reply is QUIT_OK:
                        self.closing = True
                        return False
                else:
                    pieces += reply
                    size += sum(map(len, reply))
                if size >= cap:
                    return True
        except ProtocolError as e:
            reply = err(f"Protocol error: {e}")
            pieces.append(reply)
            size += len(reply)
            self.closing = True
            return False
        finally:
            out.size = size


# --- the mn_runtime server ---


async def serve_conn(c: object, store: Store, opts: argparse.Namespace) -> None:
    conn = Conn(c, opts)
    sess = Session(store, opts)
    parser = sess.parser
    with conn.c:
        while True:
            more = sess.run(conn.out)
            if not await conn.flush() or sess.closing:
                return
            if more:
                continue
            d = await conn.read(parser.partial, parser.commands)
            if not d:
                return
            parser.feed(d)


async def serve(opts: argparse.Namespace) -> None:
    await accept_loop(opts.listen, serve_conn, Store(), opts)


def options(prog: str, argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:6379", help="host:port (default %(default)s; port 0 picks one)")
    ap.add_argument("--procs", type=int, default=None, help="mn_runtime Ps (default: CPU count)")
    ap.add_argument("--max-bulk", type=int, default=1 << 20, help="largest bulk string, bytes (default 1 MiB)")
    ap.add_argument("--max-args", type=int, default=1 << 16, help="most items in one command (default 65536)")
    ap.add_argument("--max-command", type=int, default=128 << 20, help="largest command, bytes (default 128 MiB)")
    add_limit_options(ap, idle=60.0, request=10.0)
    opts = ap.parse_args(argv)
    for name in ("max_bulk", "max_args", "max_command"):
        if getattr(opts, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, not {getattr(opts, name)}")
    check_limits(ap, opts)
    return opts


def main(argv: list[str] | None = None) -> None:
    import mn_runtime as mn

    opts = options("python -m stress.servers.resp", argv)
    try:
        mn.run(serve, opts, procs=opts.procs)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
