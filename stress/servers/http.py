"""A small HTTP/1.1 keep-alive server on mn_runtime.net, for wrk/ab.

    python -m stress.servers.http --listen 127.0.0.1:8080 --procs 2 [--parser h11]

GET/HEAD / answers "hello, world"; GET /bytes/N answers N bytes (N <= 1 MiB); POST /echo echoes its
body (Content-Length or chunked). Keep-alive and pipelining (HTTP/1.1), "Connection: close"
honoured, HTTP/1.0 closes unless it asks for keep-alive (with --parser h11, HTTP/1.0 always closes).

Requests are parsed by stress/servers/http_parser.py, a strict incremental RFC 9112 parser, or with
--parser h11 by h11 (pip install -e '.[servers]'); this file is about connections and limits.
Hostile input is contained per connection (docs/netpoller.md, "Servers under hostile clients"): a
header block over 8 KiB gets 431, a malformed request line or header, conflicting Content-Length
headers or a missing Host 400, a body over --max-body 413, each followed by closing that
connection; lines ending in a bare "\n" are accepted, as RFC 9112 2.2 allows. Per connection
(stress/servers/serving.py): once --max-output response bytes wait to be written the server stops reading
and parsing that client's pipeline until they are written; a write that makes no progress for
--write-timeout seconds closes the connection; a request must arrive whole within
--request-timeout seconds of its first byte (plus 1 s per --min-rate bytes), and a client that
sends nothing for --idle-timeout seconds (default 10) is dropped. Every client is its own
goroutine, so the others keep being served.

It prints "listening on HOST:PORT" on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
from typing import Any

from .http_parser import HttpError, RequestParser
from .serving import Conn, accept_loop, add_limit_options, check_limits

try:
    import h11
except ImportError:  # the optional extra "servers"; main() says how to install it
    h11 = None  # type: ignore[assignment]

MAX_HEADER = 8 * 1024
HELLO = b"hello, world\n"
_REASONS = {
    100: b"Continue",
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    505: b"HTTP Version Not Supported",
}
NEEDS_H11 = "stress.servers.http --parser h11 needs the h11 package: pip install -e '.[servers]'"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# A body at least this large goes out by reference, not copied into its response.
BIG = 16 * 1024


def route(method: bytes, target: bytes, body: bytes) -> tuple[int, bytes]:
    if target == b"/":
        if method in (b"GET", b"HEAD"):
            return 200, HELLO
        return 405, b"method not allowed\n"
    if target.startswith(b"/bytes/"):
        n = target[7:]
        if not n.isdigit() or len(n) > 8 or int(n) > 1 << 20:
            return 400, b"bad size\n"
        return 200, b"x" * int(n)
    if target == b"/echo":
        if method != b"POST":
            return 405, b"method not allowed\n"
        return 200, body
    return 404, b"not found\n"


def response(status: int, body: bytes, keep: bool, head: bool = False) -> bytes | list[bytes]:
    hdr = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\nConnection: %s\r\n\r\n" % (
        status,
        _REASONS[status],
        len(body),
        b"keep-alive" if keep else b"close",
    )
    if head or not body:
        return hdr
    if len(body) >= BIG:
        return [hdr, body]
    return hdr + body


async def serve_conn(c: object, opts: argparse.Namespace) -> None:
    """serve_conn serves one connection with stress/servers/http_parser.py."""
    conn = Conn(c, opts)
    p = RequestParser(MAX_HEADER, opts.max_body)
    out = conn.out
    with conn.c:
        while True:
            try:
                while (req := p.next()) is not None:
                    status, body = route(req.method, req.target, req.body)
                    out.add(response(status, body, req.keep_alive, req.method == b"HEAD"))
                    if not req.keep_alive:
                        await conn.flush()
                        return
                    if out.full and not await conn.flush():
                        return
                if p.expects_continue:
                    out.add(CONTINUE)
                    p.expects_continue = False
            except HttpError as e:
                out.add(response(e.status, str(e).encode() + b"\n", False))
                await conn.flush()
                return
            if not await conn.flush():
                return
            d = await conn.read(p.partial, p.requests)
            if not d:
                return
            p.feed(d)


def respond(hc: Any, conn: Conn, status: int, body: bytes, head: bool = False, close: bool = False) -> None:
    """respond queues a whole response on conn's outbox (h11 adds "Connection: close" when it is
    going to close)."""
    headers = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"%d" % len(body))]
    if close:
        headers.append((b"Connection", b"close"))
    out = conn.out
    out.add(hc.send(h11.Response(status_code=status, headers=headers, reason=_REASONS[status])))
    if body and not head:
        out.add(hc.send_with_data_passthrough(h11.Data(data=body)))
    out.add(hc.send(h11.EndOfMessage()))


def header_bytes(req: Any) -> int:
    """header_bytes is the size of a request's head as sent (near enough: h11 drops extra spaces)."""
    return len(req.method) + len(req.target) + 12 + sum(len(k) + len(v) + 4 for k, v in req.headers.raw_items())


async def serve_conn_h11(c: object, opts: argparse.Namespace) -> None:
    """serve_conn_h11 serves one connection with h11 (--parser h11)."""
    conn = Conn(c, opts)
    hc = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER)
    req: Any = None
    body = bytearray()
    done = 0  # requests answered
    fed = 0  # bytes received since the last request was complete
    with conn.c:
        while True:
            try:
                ev = hc.next_event()
            except h11.RemoteProtocolError as e:
                if hc.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    respond(hc, conn, e.error_status_hint, str(e).encode() + b"\n", close=True)
                await conn.flush()
                return
            t = type(ev)
            if ev is h11.NEED_DATA:
                if not await conn.flush():
                    return
                busy = fed > 0 or hc.their_state is not h11.IDLE or bool(hc.trailing_data[0])
                d = await conn.read(fed if busy else 0, done)
                if not d:
                    return
                fed += len(d)
                hc.receive_data(d)
            elif t is h11.Request:
                req = ev
                body.clear()
                if header_bytes(ev) > MAX_HEADER:
                    respond(hc, conn, 431, b"header block too large\n", close=True)
                    await conn.flush()
                    return
                # h11 has checked it: digits, and one value however many times it is sent.
                cl = next((v for k, v in ev.headers if k == b"content-length"), None)
                if cl is not None and (len(cl) > 18 or int(cl) > opts.max_body):
                    respond(hc, conn, 413, b"body too large\n", close=True)
                    await conn.flush()
                    return
                if hc.they_are_waiting_for_100_continue:
                    conn.out.add(hc.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
            elif t is h11.Data:
                body += ev.data
                if len(body) > opts.max_body:  # a chunked body has no length up front
                    respond(hc, conn, 413, b"body too large\n", close=True)
                    await conn.flush()
                    return
            elif t is h11.EndOfMessage:
                status, rbody = route(req.method, req.target, bytes(body))
                respond(hc, conn, status, rbody, head=req.method == b"HEAD")
                done += 1
                fed = 0
                if hc.our_state is h11.MUST_CLOSE:
                    await conn.flush()
                    return
                hc.start_next_cycle()
                if conn.out.full and not await conn.flush():
                    return
            else:  # ConnectionClosed, or PAUSED (never: each request is answered before the next)
                await conn.flush()
                return


async def serve(opts: argparse.Namespace) -> None:
    await accept_loop(opts.listen, serve_conn_h11 if opts.parser == "h11" else serve_conn, opts)


def options(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m stress.servers.http", description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:8080", help="host:port (default %(default)s; port 0 picks one)")
    ap.add_argument("--procs", type=int, default=None, help="mn_runtime Ps (default: CPU count)")
    ap.add_argument(
        "--parser",
        choices=("builtin", "h11"),
        default="builtin",
        help="stress/servers/http_parser.py (default), or h11 (the optional extra 'servers')",
    )
    ap.add_argument("--max-body", type=int, default=1 << 20, help="largest request body, bytes (default 1 MiB)")
    add_limit_options(ap, idle=10.0, request=10.0)
    opts = ap.parse_args(argv)
    if opts.max_body < 0:
        ap.error(f"--max-body must be >= 0, not {opts.max_body}")
    check_limits(ap, opts)
    return opts


def main(argv: list[str] | None = None) -> None:
    import mn_runtime as mn

    opts = options(argv)
    if opts.parser == "h11" and h11 is None:
        raise SystemExit(NEEDS_H11)
    try:
        mn.run(serve, opts, procs=opts.procs)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
