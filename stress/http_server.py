"""A small HTTP/1.1 keep-alive server on mn_runtime.net, for wrk/ab.

    python -m stress.http_server --listen 127.0.0.1:8080 --procs 2

GET/HEAD / answers "hello, world"; GET /bytes/N answers N bytes (N <= 1 MiB); POST /echo echoes its
body. Keep-alive and pipelining by default (HTTP/1.1), "Connection: close" honoured, HTTP/1.0 closes
unless it asks for keep-alive.

Hostile input is contained per connection: a header block over 8 KiB gets 431, a malformed request
line or header 400, a body over --max-body 413, a chunked body 501 (not supported), each followed by
closing that connection; a client that sends nothing for --idle-timeout seconds (default 10) is
dropped. Every client is its own goroutine, so the others keep being served.

It prints "listening on HOST:PORT" on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse

from .serving import accept_loop, read_some, write_or_gone

MAX_HEADER = 8 * 1024
HELLO = b"hello, world\n"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class BadRequest(Exception):
    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status


def response(status: int, body: bytes, keep: bool, head: bool = False) -> bytes:
    conn = b"keep-alive" if keep else b"close"
    hdr = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\nConnection: %s\r\n\r\n" % (
        status,
        _REASONS[status].encode(),
        len(body),
        conn,
    )
    return hdr if head else hdr + body


def parse_head(block: bytes) -> tuple[str, str, str, dict[bytes, bytes]]:
    """parse_head parses a request line and headers (without the blank line)."""
    lines = block.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith(b"/"):
        raise BadRequest(400, "malformed request line")
    method, target, version = (p.decode("latin-1") for p in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(505 if version.startswith("HTTP/") else 400, "unsupported version")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise BadRequest(400, "malformed header")
        headers[name.lower()] = value.strip()
    return method, target, version, headers


def route(method: str, target: str, body: bytes) -> tuple[int, bytes]:
    if target == "/":
        if method in ("GET", "HEAD"):
            return 200, HELLO
        return 405, b"method not allowed\n"
    if target.startswith("/bytes/"):
        n = target[7:]
        if not n.isdigit() or int(n) > 1 << 20:
            return 400, b"bad size\n"
        return 200, b"x" * int(n)
    if target == "/echo":
        if method != "POST":
            return 405, b"method not allowed\n"
        return 200, body
    return 404, b"not found\n"


async def serve_conn(c: object, opts: argparse.Namespace) -> None:
    import mn_runtime as mn

    assert isinstance(c, mn.net.Conn)
    buf = bytearray()
    with c:
        while True:
            out = bytearray()
            keep = True
            # Answer every complete request already buffered (pipelining), then write once.
            while keep:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEADER:
                        out += response(431, b"header block too large\n", False)
                        keep = False
                    break
                if end > MAX_HEADER:
                    out += response(431, b"header block too large\n", False)
                    keep = False
                    break
                try:
                    method, target, version, headers = parse_head(bytes(buf[:end]))
                    if b"transfer-encoding" in headers:
                        raise BadRequest(501, "chunked bodies are not supported")
                    cl = headers.get(b"content-length", b"0")
                    if not cl.isdigit():
                        raise BadRequest(400, "bad content-length")
                    blen = int(cl)
                    if blen > opts.max_body:
                        raise BadRequest(413, "body too large")
                except BadRequest as e:
                    out += response(e.status, str(e).encode() + b"\n", False)
                    keep = False
                    break
                if len(buf) < end + 4 + blen:
                    break  # the body is still on its way
                body = bytes(buf[end + 4 : end + 4 + blen])
                del buf[: end + 4 + blen]
                conn_hdr = headers.get(b"connection", b"").lower()
                keep = conn_hdr != b"close" if version == "HTTP/1.1" else conn_hdr == b"keep-alive"
                status, rbody = route(method, target, body)
                out += response(status, rbody, keep, method == "HEAD")
            if out and not await write_or_gone(c, out):
                return
            if not keep:
                return
            d = await read_some(c, opts.idle_timeout)
            if not d:
                return
            buf += d


async def serve(opts: argparse.Namespace) -> None:
    await accept_loop(opts.listen, serve_conn, opts)


def main(argv: list[str] | None = None) -> None:
    import mn_runtime as mn

    ap = argparse.ArgumentParser(prog="python -m stress.http_server", description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:8080", help="host:port (default %(default)s; port 0 picks one)")
    ap.add_argument("--procs", type=int, default=None, help="mn_runtime Ps (default: CPU count)")
    ap.add_argument("--max-body", type=int, default=1 << 20, help="largest request body, bytes (default 1 MiB)")
    ap.add_argument("--idle-timeout", type=float, default=10.0, help="drop clients idle this long (s; 0: never)")
    opts = ap.parse_args(argv)
    try:
        mn.run(serve, opts, procs=opts.procs)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
