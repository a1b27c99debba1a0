"""http_parser: an incremental, strict parser of HTTP/1.1 requests (RFC 9112), the server's side.

    p = RequestParser(max_header=8192, max_body=1 << 20)
    p.feed(data)                       # as bytes arrive
    while (req := p.next()) is not None:
        ...                            # a whole Request, its body read (Content-Length or chunked)

What it takes and what it refuses (HttpError carries the status to answer, then close):

- lines end in CRLF, or in a bare LF (RFC 9112 2.2 allows it); a CR anywhere else is a 400; empty
  lines before a request line are skipped (2.2);
- the request line is `method SP target SP version`: the method a token, the target visible
  ASCII, the version HTTP/1.1 or HTTP/1.0 (another HTTP/x.y is 505, anything else 400);
- a header is `name ":" OWS value OWS`: the name a token with no space before the colon (5.1),
  the value without control characters; a line folded onto the previous one (obs-fold) is a 400;
- HTTP/1.1 needs exactly one Host header (3.2);
- Content-Length is digits; sent more than once, or as a list, all values must be equal (RFC 9110
  8.6), else 400 (the request smuggling that different values allow); with Transfer-Encoding too,
  400 (RFC 9112 6.1 lets a server reject it);
- Transfer-Encoding must be `chunked` (anything else is 501, and in an HTTP/1.0 request 400);
  chunk extensions and trailer fields are read and dropped;
- a header block over max_header bytes is a 431, a body over max_body a 413, as soon as either
  is known (a Content-Length over it before the body comes).

Keep-alive follows RFC 9112 9.3: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
`Connection: keep-alive`. Linear time: the search for the end of a header block or a chunk line
resumes where it stopped, a body waits for its length without re-reading, and consumed bytes are
dropped from the front once they are at least half of the buffer.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB
_HEAD_END = re.compile(rb"\n\r?\n")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?")
MAX_CHUNK_LINE = 4096


class HttpError(ValueError):
    """HttpError: the request cannot be served; answer `status` with the message and close."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status


class Request:
    """Request is one whole request. Header names are lower-cased; values as sent, OWS trimmed."""

    __slots__ = ("body", "headers", "keep_alive", "method", "target", "version")

    def __init__(
        self, method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]], keep_alive: bool
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.body = b""

    def __repr__(self) -> str:
        return f"<Request {self.method!r} {self.target!r} {self.version!r} body={len(self.body)}>"


def _lines(block: bytes) -> list[bytes]:
    """_lines splits a header block at LF, dropping a CR before it; any other CR is an error."""
    lines = block.split(b"\n")
    for i, line in enumerate(lines):
        if line.endswith(b"\r"):
            line = lines[i] = line[:-1]
        if b"\r" in line:
            raise HttpError(400, "bare CR in the request head")
    return lines


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",")}


def parse_head(block: bytes) -> tuple[Request, int | None, bool]:
    """parse_head parses a request line and its headers (the block without the blank line);
    returns the request, its Content-Length (None if none) and whether its body is chunked."""
    lines = _lines(block)
    parts = lines[0].split(b" ")
    if len(parts) != 3 or _TOKEN.fullmatch(parts[0]) is None or _TARGET.fullmatch(parts[1]) is None:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        if _VERSION.fullmatch(version):
            raise HttpError(505, "HTTP version not supported")
        raise HttpError(400, "malformed request line")
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    te: bytes | None = None
    hosts = 0
    conn = b""
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN.fullmatch(name) is None:
            if line[:1] in (b" ", b"\t"):
                raise HttpError(400, "folded header line (obs-fold)")
            raise HttpError(400, "malformed header line")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise HttpError(400, "control character in a header value")
        name = name.lower()
        headers.append((name, value))
        if name == b"content-length":
            for v in value.split(b","):
                v = v.strip(b" \t")
                if not v.isdigit() or len(v) > 18:
                    raise HttpError(400, "bad Content-Length")
                if length is not None and int(v) != length:
                    raise HttpError(400, "conflicting Content-Length headers")
                length = int(v)
        elif name == b"transfer-encoding":
            te = value if te is None else te + b"," + value
        elif name == b"host":
            hosts += 1
        elif name == b"connection":
            conn = value if not conn else conn + b"," + value
    if version == b"HTTP/1.1" and hosts != 1:
        raise HttpError(400, "missing Host header" if hosts == 0 else "more than one Host header")
    chunked = False
    if te is not None:
        if version == b"HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if length is not None:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if te.strip(b" \t").lower() != b"chunked":
            raise HttpError(501, "only the chunked transfer coding is supported")
        chunked = True
    if version == b"HTTP/1.1":
        keep = b"close" not in _tokens(conn) if conn else True
    else:
        keep = b"keep-alive" in _tokens(conn) if conn else False
    return Request(method, target, version, headers, keep), length, chunked


class RequestParser:
    """RequestParser turns a stream of bytes into Requests; see the module docstring. Owned by one
    connection's goroutine (not safe to share)."""

    __slots__ = ("_body", "_buf", "_chunk", "_length", "_pos", "_req", "_scan", "_state", "expects_continue",
                 "max_body", "max_header", "requests")  # fmt: skip

    # states
    HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, TRAILER = range(5)

    def __init__(self, max_header: int = 8192, max_body: int = 1 << 20) -> None:
        for name, v in (("max_header", max_header), ("max_body", max_body)):
            if type(v) is not int or v < 0:
                raise ValueError(f"RequestParser: {name} must be an int >= 0, not {v!r}")
        self.max_header = max_header
        self.max_body = max_body
        self.requests = 0  # requests returned so far
        self.expects_continue = False  # a request sent "Expect: 100-continue" and waits for its body
        self._buf = bytearray()
        self._pos = 0  # where the unparsed bytes start in _buf
        self._scan = 0  # where an unfinished search for a line end resumes
        self._state = self.HEAD
        self._req: Request | None = None
        self._length = 0  # BODY: the body's length; CHUNK_DATA: the chunk's
        self._body = bytearray()  # a chunked body so far
        self._chunk = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """feed appends bytes received from the client."""
        buf = self._buf
        pos = self._pos
        if pos and pos * 2 >= len(buf):
            del buf[:pos]
            self._scan = max(0, self._scan - pos)
            self._pos = 0
        buf += data

    @property
    def partial(self) -> int:
        """partial is the number of bytes received of a request not yet complete (0: none)."""
        n = len(self._buf) - self._pos
        if self._state != self.HEAD:  # past its head (consumed, so counted as one byte)
            n += 1 + len(self._body)
        return n

    def next(self) -> Request | None:
        """next returns the next whole request, or None until more bytes are fed; raises
        HttpError (then answer it and close: the stream cannot be resynchronised)."""
        buf = self._buf
        while True:
            state = self._state
            if state == self.HEAD:
                pos = self._pos
                while buf.startswith(b"\r\n", pos) or buf.startswith(b"\n", pos):  # empty lines first
                    pos += 1 if buf[pos] == 10 else 2
                self._pos = pos
                m = _HEAD_END.search(buf, max(self._scan, pos))
                if m is None:
                    if len(buf) - pos > self.max_header:
                        raise HttpError(431, "request header block too large")
                    self._scan = max(pos, len(buf) - 2)
                    return None
                if m.start() - pos > self.max_header:
                    raise HttpError(431, "request header block too large")
                req, length, chunked = parse_head(bytes(buf[pos : m.start()]))
                self._pos = self._scan = m.end()
                self._req = req
                if chunked:
                    self._state = self.CHUNK_SIZE
                    self._body = bytearray()
                elif length:
                    if length > self.max_body:
                        raise HttpError(413, "request body too large")
                    self._state = self.BODY
                    self._length = length
                else:
                    return self._done(b"")
                self.expects_continue = any(n == b"expect" and v.lower() == b"100-continue" for n, v in req.headers)
            elif state == self.BODY:
                pos = self._pos
                end = pos + self._length
                if len(buf) < end:
                    return None
                with memoryview(buf) as view:
                    body = view[pos:end].tobytes()
                self._pos = self._scan = end
                return self._done(body)
            elif state == self.CHUNK_DATA:
                pos = self._pos
                end = pos + self._length
                if len(buf) < end + 1:
                    return None
                if buf.startswith(b"\r\n", end):
                    nxt = end + 2
                elif buf[end] == 10:
                    nxt = end + 1
                elif buf[end] == 13 and len(buf) == end + 1:
                    return None  # its LF is on the way
                else:
                    raise HttpError(400, "chunk not followed by a line end")
                self._body += memoryview(buf)[pos:end]
                self._pos = self._scan = nxt
                self._state = self.CHUNK_SIZE
            else:  # CHUNK_SIZE or TRAILER: a line
                line = self._line()
                if line is None:
                    return None
                if state == self.TRAILER:
                    if not line:
                        return self._done(bytes(self._body))
                    self._length += len(line)
                    if self._length > self.max_header:
                        raise HttpError(431, "trailer fields too large")
                    continue  # a trailer field, dropped
                m = _CHUNK_SIZE.fullmatch(line)
                if m is None:
                    raise HttpError(400, "bad chunk size line")
                n = int(m.group(1), 16)
                if len(self._body) + n > self.max_body:
                    raise HttpError(413, "request body too large")
                if n == 0:
                    self._state = self.TRAILER
                    self._length = 0  # the trailer's bytes so far
                else:
                    self._length = n
                    self._state = self.CHUNK_DATA

    def _line(self) -> bytes | None:
        """_line consumes a line (chunk size or trailer field) and returns it without its end."""
        buf = self._buf
        pos = self._pos
        end = buf.find(b"\n", max(self._scan, pos))
        if end < 0:
            if len(buf) - pos > MAX_CHUNK_LINE:
                raise HttpError(400, "chunk line too long")
            self._scan = len(buf)
            return None
        if end - pos > MAX_CHUNK_LINE:
            raise HttpError(400, "chunk line too long")
        line = bytes(buf[pos:end])
        self._pos = self._scan = end + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\r" in line:
            raise HttpError(400, "bare CR in a chunk line")
        return line

    def _done(self, body: bytes) -> Request:
        req = self._req
        assert req is not None
        req.body = body
        self._req = None
        self._body = bytearray()
        self._state = self.HEAD
        self.expects_continue = False
        self.requests += 1
        return req
